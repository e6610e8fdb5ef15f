-- files is the fast index of every file version ferry has taken on: one row
-- per (watch root, relative path), moved through explicit states. The events
-- table below is the record; this table is derived from it.
CREATE TABLE files (
	id              INTEGER PRIMARY KEY,
	watch           TEXT    NOT NULL,            -- absolute watch root
	rel_path        TEXT    NOT NULL,            -- slash-separated, relative to watch
	target          TEXT    NOT NULL,            -- target name from the config
	object_key      TEXT    NOT NULL,
	batch_id        TEXT    NOT NULL,
	size            INTEGER NOT NULL,
	mtime_ns        INTEGER NOT NULL,
	file_id         TEXT    NOT NULL,            -- volume:index
	generation      INTEGER NOT NULL DEFAULT 1,  -- bumped whenever the version changes
	state           TEXT    NOT NULL CHECK (state IN ('queued','uploading','uploaded','failed','changed')),
	signal          TEXT    NOT NULL DEFAULT '', -- what released the file (quiet period, ...)
	sha256          TEXT,                        -- whole file, lowercase hex
	upload_id       TEXT,                        -- multipart upload in progress
	correlation_id  TEXT,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL DEFAULT 0,  -- unix ns
	error_class     TEXT,
	error           TEXT,
	settled_at      INTEGER NOT NULL,            -- unix ns
	updated_at      INTEGER NOT NULL,
	uploaded_at     INTEGER,
	UNIQUE (watch, rel_path)
) STRICT;

CREATE INDEX files_queue ON files (state, next_attempt_at, id);

-- chunks holds each chunk's hash, journaled before the chunk is sent, and
-- its ETag once the target acknowledged it.
CREATE TABLE chunks (
	file_id    INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
	generation INTEGER NOT NULL,
	seq        INTEGER NOT NULL,                 -- 1-based part number
	offset     INTEGER NOT NULL,
	size       INTEGER NOT NULL,
	sha256     TEXT    NOT NULL,
	etag       TEXT,
	PRIMARY KEY (file_id, seq)
) STRICT;

-- events is append-only and hash-chained: hash = SHA-256(prev_hash || canonical
-- encoding of the row), so an edit, a deletion or a reordering is detectable.
CREATE TABLE events (
	seq            INTEGER PRIMARY KEY,
	time           TEXT    NOT NULL,             -- RFC 3339 UTC, nanoseconds
	kind           TEXT    NOT NULL,
	file_id        INTEGER,
	correlation_id TEXT    NOT NULL DEFAULT '',
	batch_id       TEXT    NOT NULL DEFAULT '',
	chunk_sequence INTEGER,
	rel_path       TEXT    NOT NULL DEFAULT '',
	size           INTEGER,
	sha256         TEXT    NOT NULL DEFAULT '',
	detail         TEXT    NOT NULL DEFAULT '',
	prev_hash      TEXT    NOT NULL,
	hash           TEXT    NOT NULL
) STRICT;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
