-- Two new states: 'ignored' (modified after its upload, left alone by
-- on_change = "ignore") and 'dropped' (a dead letter a person dropped; the
-- row stays so that the file is not taken again). Each row also remembers
-- the hash of what it last put on the target (uploaded_sha256), to tell
-- "modified after upload" from a first upload. SQLite cannot alter a CHECK
-- constraint: the table is rebuilt.
CREATE TABLE files_new (
	id              INTEGER PRIMARY KEY,
	watch           TEXT    NOT NULL,
	rel_path        TEXT    NOT NULL,
	target          TEXT    NOT NULL,
	object_key      TEXT    NOT NULL,
	batch_id        TEXT    NOT NULL,
	size            INTEGER NOT NULL,
	mtime_ns        INTEGER NOT NULL,
	file_id         TEXT    NOT NULL,
	generation      INTEGER NOT NULL DEFAULT 1,
	state           TEXT    NOT NULL CHECK (state IN ('queued','uploading','uploaded','failed','changed','ignored','dropped')),
	signal          TEXT    NOT NULL DEFAULT '',
	sha256          TEXT,
	upload_id       TEXT,
	correlation_id  TEXT,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL DEFAULT 0,
	error_class     TEXT,
	error           TEXT,
	settled_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	uploaded_at     INTEGER,
	uploaded_sha256 TEXT,                        -- what the target last got from this row
	UNIQUE (watch, rel_path)
) STRICT;

INSERT INTO files_new (id, watch, rel_path, target, object_key, batch_id, size, mtime_ns, file_id, generation, state, signal,
	sha256, upload_id, correlation_id, attempts, next_attempt_at, error_class, error, settled_at, updated_at, uploaded_at, uploaded_sha256)
SELECT id, watch, rel_path, target, object_key, batch_id, size, mtime_ns, file_id, generation, state, signal,
	sha256, upload_id, correlation_id, attempts, next_attempt_at, error_class, error, settled_at, updated_at, uploaded_at,
	CASE WHEN uploaded_at IS NOT NULL THEN sha256 END
FROM files;

DROP TABLE files;
ALTER TABLE files_new RENAME TO files;
CREATE INDEX files_queue ON files (state, next_attempt_at, id);
