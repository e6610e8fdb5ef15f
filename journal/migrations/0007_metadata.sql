-- Metadata (issue 13): a dataset's captured metadata, validated against the
-- schema and vocabularies its watch's [metadata.NAME] profile registers,
-- and what that means for its files.
--
-- A new file state, 'held': a file of a dataset whose metadata is invalid
-- or drifted under on_invalid/on_drift = "hold" (or not validated yet)
-- stays local until the metadata validates or a person accepts it. SQLite
-- cannot alter a CHECK constraint: the table is rebuilt (as in 0004).
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
	state           TEXT    NOT NULL CHECK (state IN ('queued','uploading','uploaded','failed','changed','ignored','dropped','vanished','held')),
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

INSERT INTO files_new SELECT id, watch, rel_path, target, object_key, batch_id, size, mtime_ns, file_id, generation, state, signal,
	sha256, upload_id, correlation_id, attempts, next_attempt_at, error_class, error, settled_at, updated_at, uploaded_at,
	uploaded_sha256, uploaded_key FROM files;

DROP TABLE files;
ALTER TABLE files_new RENAME TO files;
CREATE INDEX files_queue ON files (state, next_attempt_at, id);
CREATE INDEX files_batch ON files (batch_id, state);

-- Every event about a file of a dataset with metadata carries the
-- dataset's validation status and schema version at that moment (beside
-- correlation_id, batch_id and chunk_sequence). Both are in the event's
-- canonical encoding when set (AUDIT.md), so older events hash as before.
ALTER TABLE events ADD COLUMN schema_version TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN validation_status TEXT NOT NULL DEFAULT '';

-- One row per dataset of a watch with a metadata profile, from the moment
-- its first file settles. status is '' until the metadata was first
-- validated (its files wait until then); hold = 1 while its files are held.
-- A handful of rows per run: the daemon reads the dirty ones each pass.
CREATE TABLE dataset_metadata (
	dataset_id      INTEGER PRIMARY KEY REFERENCES datasets (id),
	profile         TEXT    NOT NULL,
	status          TEXT    NOT NULL DEFAULT '' CHECK (status IN ('', 'valid', 'drift', 'invalid')),
	schema_version  TEXT    NOT NULL DEFAULT '',
	hold            INTEGER NOT NULL DEFAULT 1 CHECK (hold IN (0, 1)),
	marks           INTEGER NOT NULL DEFAULT 1,    -- counts what calls for a validation: a source file settled, the rules changed
	evaluated_marks INTEGER NOT NULL DEFAULT 0,    -- marks when it was last validated (dirty while marks > evaluated_marks)
	findings        TEXT    NOT NULL DEFAULT '[]', -- JSON array of findings
	document        TEXT    NOT NULL DEFAULT '{}', -- JSON: the metadata document as validated
	shape           TEXT    NOT NULL DEFAULT '{}', -- JSON: its shape, merged into the watch's once it is released
	sources         TEXT    NOT NULL DEFAULT '[]', -- JSON: what was read from where
	accepted_at     INTEGER,                       -- a person accepted it as it is (ferry metadata accept)
	accepted_reason TEXT    NOT NULL DEFAULT '',
	evaluated_at    INTEGER,
	updated_at      INTEGER NOT NULL
) STRICT;


-- What each watch has seen so far: the baseline of drift detection.
CREATE TABLE metadata_shapes (
	watch      TEXT    PRIMARY KEY,
	shape      TEXT    NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

-- The validation rules (schemas and vocabularies) last loaded, with their
-- content, so that the audit record of a change can say what changed.
CREATE TABLE metadata_rules (
	path      TEXT    PRIMARY KEY,
	kind      TEXT    NOT NULL CHECK (kind IN ('schema', 'vocabulary')),
	name      TEXT    NOT NULL,
	sha256    TEXT    NOT NULL,
	content   BLOB    NOT NULL,
	loaded_at INTEGER NOT NULL
) STRICT;
