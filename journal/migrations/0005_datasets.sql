-- Datasets (runs): a folder of a watch that its `dataset` pattern matches,
-- moved through the dataset lifecycle (journal/datasets.go). Its files are
-- the files rows of the same watch whose batch_id is the dataset's rel_path.
CREATE TABLE datasets (
	id              INTEGER PRIMARY KEY,
	watch           TEXT    NOT NULL,            -- absolute watch root
	rel_path        TEXT    NOT NULL,            -- the dataset's folder, relative to the root: its id, and its files' batch_id
	target          TEXT    NOT NULL,
	key_prefix      TEXT    NOT NULL,            -- object key of the folder; manifest and crate go under it
	state           TEXT    NOT NULL CHECK (state IN ('open','complete','closing','closed','failed_run')),
	signal          TEXT    NOT NULL DEFAULT '', -- what completed it (CopyComplete.txt, quiet:2h0m0s, ...)
	outcome         TEXT    NOT NULL DEFAULT '', -- completed or failed_run, from the instrument
	reason          TEXT    NOT NULL DEFAULT '', -- the instrument's reason for a failed run
	files           INTEGER NOT NULL DEFAULT 0,  -- from closing: files in the manifest
	bytes           INTEGER NOT NULL DEFAULT 0,
	manifest_sha256 TEXT,
	crate_sha256    TEXT,
	opened_at       INTEGER NOT NULL,            -- unix ns
	completed_at    INTEGER,
	closing_at      INTEGER,
	closed_at       INTEGER,
	updated_at      INTEGER NOT NULL,
	UNIQUE (watch, rel_path)
) STRICT;

CREATE INDEX datasets_state ON datasets (state, id);

-- notifications is the outbox: one row per event owed to a [[notify]]
-- endpoint, delivered at least once. endpoint is the endpoint's id (its URL
-- without query or credentials, and a hash of the whole URL): no secret.
CREATE TABLE notifications (
	id              INTEGER PRIMARY KEY,
	event_id        TEXT    NOT NULL,            -- the idempotency key, also in the body
	endpoint        TEXT    NOT NULL,
	type            TEXT    NOT NULL,
	dataset_id      INTEGER REFERENCES datasets (id),
	body            TEXT    NOT NULL,
	state           TEXT    NOT NULL CHECK (state IN ('pending','delivered')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL DEFAULT 0,  -- unix ns
	last_error      TEXT,
	created_at      INTEGER NOT NULL,
	delivered_at    INTEGER,
	UNIQUE (event_id, endpoint)
) STRICT;

CREATE INDEX notifications_due ON notifications (state, next_attempt_at, id);
