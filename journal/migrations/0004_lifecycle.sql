-- The lifecycle table (journal/lifecycle.go) adds a state, 'vanished' (the
-- source was deleted or renamed before its upload ended), and each row
-- remembers where its last landed content is (uploaded_key, beside
-- uploaded_sha256): with on_change = "version" that is not the row's own
-- key. SQLite cannot alter a CHECK constraint: the table is rebuilt.
--
-- uploaded_key of the rows that landed something: the key their last
-- uploaded event names (its detail is "key=" and the key), else (rebuilt
-- journals, archived events) the row's own key. One pass over the events.
CREATE TEMP TABLE last_uploaded AS
	SELECT e.file_id AS id, substr(e.detail, 5) AS object_key
	FROM events e JOIN (SELECT file_id, MAX(seq) AS seq FROM events WHERE kind = 'uploaded' GROUP BY file_id) m ON e.seq = m.seq
	WHERE e.detail LIKE 'key=%';

CREATE TABLE files_new (
	id              INTEGER PRIMARY KEY,
	watch           TEXT    NOT NULL,
	rel_path        TEXT    NOT NULL,
	target          TEXT    NOT NULL,
	object_key      TEXT    NOT NULL,            -- the path's own key
	batch_id        TEXT    NOT NULL,
	size            INTEGER NOT NULL,
	mtime_ns        INTEGER NOT NULL,
	file_id         TEXT    NOT NULL,
	generation      INTEGER NOT NULL DEFAULT 1,
	state           TEXT    NOT NULL CHECK (state IN ('queued','uploading','uploaded','failed','changed','ignored','dropped','vanished')),
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
	uploaded_key    TEXT,                        -- and under which key
	UNIQUE (watch, rel_path)
) STRICT;

INSERT INTO files_new (id, watch, rel_path, target, object_key, batch_id, size, mtime_ns, file_id, generation, state, signal,
	sha256, upload_id, correlation_id, attempts, next_attempt_at, error_class, error, settled_at, updated_at, uploaded_at,
	uploaded_sha256, uploaded_key)
SELECT f.id, f.watch, f.rel_path, f.target, f.object_key, f.batch_id, f.size, f.mtime_ns, f.file_id, f.generation, f.state, f.signal,
	f.sha256, f.upload_id, f.correlation_id, f.attempts, f.next_attempt_at, f.error_class, f.error, f.settled_at, f.updated_at, f.uploaded_at,
	f.uploaded_sha256, CASE WHEN f.uploaded_sha256 IS NOT NULL THEN COALESCE(l.object_key, f.object_key) END
FROM files f LEFT JOIN last_uploaded l ON l.id = f.id;

DROP TABLE last_uploaded;
DROP TABLE files;
ALTER TABLE files_new RENAME TO files;
CREATE INDEX files_queue ON files (state, next_attempt_at, id);
CREATE INDEX files_batch ON files (batch_id, state);

-- objects: what ferry wrote on its targets, per row. A row is added when
-- ferry is about to send a content under a key (landed = 0: it may be on
-- the target) and marked landed once the target confirmed it; a
-- create-only write that finds a sent object under its key knows it is
-- ferry's own (an attempt whose end a crash kept from the journal), not a
-- conflict. The events record the same (file_hashed, modified_after_upload,
-- and every transition that names what landed).
CREATE TABLE objects (
	file_id    INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
	target     TEXT    NOT NULL,
	object_key TEXT    NOT NULL,
	sha256     TEXT    NOT NULL,
	landed     INTEGER NOT NULL DEFAULT 0 CHECK (landed IN (0, 1)),
	at         INTEGER NOT NULL,                 -- unix ns of the last change
	PRIMARY KEY (file_id, target, object_key, sha256)
) STRICT, WITHOUT ROWID;

INSERT INTO objects (file_id, target, object_key, sha256, landed, at)
SELECT id, target, uploaded_key, uploaded_sha256, 1, updated_at FROM files WHERE uploaded_sha256 IS NOT NULL;
