-- Freeing the instrument's disk (after_upload = "delete"): one row per
-- source file ferry owes a deletion, moved through the deletion lifecycle
-- (journal/deletions.go). A deletion is planned only for a file of a
-- closed dataset whose landed content is its current version, and carried
-- out only after the checks are made again at that moment.
ALTER TABLE datasets ADD COLUMN deletions_planned_at INTEGER;

CREATE TABLE deletions (
	file_id         INTEGER PRIMARY KEY REFERENCES files (id),
	dataset_id      INTEGER NOT NULL REFERENCES datasets (id),
	generation      INTEGER NOT NULL,            -- the version planned for deletion
	state           TEXT    NOT NULL CHECK (state IN ('pending','deleted','refused')),
	bytes           INTEGER NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL DEFAULT 0,  -- unix ns
	last_error      TEXT,
	evidence        TEXT,                        -- what was checked when it was deleted or refused
	created_at      INTEGER NOT NULL,
	done_at         INTEGER
) STRICT;

CREATE INDEX deletions_due ON deletions (state, next_attempt_at, file_id);
