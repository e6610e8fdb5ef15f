-- audit is the second hash-chained, append-only log: what happened to
-- ferry itself rather than to a file. Schema migrations, daemon start and
-- stop, every configuration load or change (the file's SHA-256, the
-- settings that changed and the settings as loaded, never a secret),
-- validation rule changes and checkpoints. Chained like events, from its
-- own genesis hash: hash = SHA-256(prev_hash || "\n" || canonical row);
-- see AUDIT.md.
CREATE TABLE audit (
	seq           INTEGER PRIMARY KEY,
	time          TEXT    NOT NULL,            -- RFC 3339 UTC, nanoseconds
	kind          TEXT    NOT NULL,
	ferry_version TEXT    NOT NULL DEFAULT '',
	subject       TEXT    NOT NULL DEFAULT '', -- config file, migration file, host
	sha256        TEXT    NOT NULL DEFAULT '', -- of the config or migration file
	from_version  INTEGER,                     -- schema versions (migration)
	to_version    INTEGER,
	changed       TEXT    NOT NULL DEFAULT '', -- JSON array of setting names
	settings      TEXT    NOT NULL DEFAULT '', -- JSON object: the settings as loaded
	detail        TEXT    NOT NULL DEFAULT '',
	prev_hash     TEXT    NOT NULL,
	hash          TEXT    NOT NULL
) STRICT;

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- A batch (dataset) is complete when none of its files is still waiting:
-- asked on every upload, so it needs an index.
CREATE INDEX files_batch ON files (batch_id, state);
