package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Metadata (issue 13). A dataset of a watch with a metadata profile gets a
// dataset_metadata row when its first file settles. Until its metadata was
// validated, and while it is invalid or drifted under "hold", its files
// are held (state held, lifecycle.go): they stay local. A validation that
// releases the dataset moves its held files back to queued
// (metadata_released); a person can release it as it is with
// AcceptMetadata, recorded in the event chain and in the audit log.
//
// Every event about a file of such a dataset carries the dataset's
// validation status and schema version at that moment (Event.
// ValidationStatus, Event.SchemaVersion).

// Metadata event kinds: about a dataset, not a file (FileID 0, batch_id
// the dataset).
const (
	KindMetadataValidated Kind = "metadata_validated"
	KindMetadataAccepted  Kind = "metadata_accepted"
)

// AuditMetadataAccepted: a person released a dataset whose metadata is
// invalid or drifted (ferry metadata accept). Subject is the watch and
// dataset, Detail the status, the schema version and the reason.
const AuditMetadataAccepted = "metadata_accepted"

func init() { auditKinds[AuditMetadataAccepted] = true }

// MetadataEvaluation is one validation of a dataset's metadata, as the
// daemon records it. The JSON fields are stored as they are.
type MetadataEvaluation struct {
	Status        string // valid, drift or invalid
	SchemaVersion string
	// Hold: the policy keeps the dataset's files local (on_invalid or
	// on_drift = "hold"). A dataset a person accepted is never held again.
	Hold     bool
	Findings json.RawMessage // JSON array
	Document json.RawMessage // JSON object
	Shape    json.RawMessage // JSON: this dataset's shape
	Sources  json.RawMessage // JSON array: what was read from where
	// Marks is the DatasetMetadata.Marks read before the capture: a source
	// that settled since keeps the dataset dirty.
	Marks int64
}

// DatasetMetadata is a dataset_metadata row with its dataset.
type DatasetMetadata struct {
	Dataset        Dataset
	Profile        string
	Status         string // "" until first validated
	SchemaVersion  string
	Hold           bool
	Marks          int64
	EvaluatedMarks int64
	Findings       json.RawMessage
	Document       json.RawMessage
	Shape          json.RawMessage
	Sources        json.RawMessage
	AcceptedAt     time.Time
	AcceptedReason string
	EvaluatedAt    time.Time
	// Held is how many of its files are held now.
	Held int
}

// Dirty reports whether the dataset's metadata is to be validated (again).
func (m DatasetMetadata) Dirty() bool { return m.Marks > m.EvaluatedMarks }

// ErrNotHeld is matched by AcceptMetadata's error for a dataset that is
// not held.
var ErrNotHeld = errors.New("dataset is not held")

const metadataColumns = `m.profile, m.status, m.schema_version, m.hold, m.marks, m.evaluated_marks, m.findings, m.document, m.shape, m.sources,
	COALESCE(m.accepted_at, 0), m.accepted_reason, COALESCE(m.evaluated_at, 0),
	(SELECT COUNT(*) FROM files f WHERE f.watch = d.watch AND f.batch_id = d.rel_path AND f.state = '` + string(Held) + `')`

func scanMetadata(sc scanner) (DatasetMetadata, error) {
	var m DatasetMetadata
	var hold int
	var findings, doc, shape, sources string
	var accepted, evaluated int64
	err := scanDataset(sc, &m.Dataset, &m.Profile, &m.Status, &m.SchemaVersion, &hold, &m.Marks, &m.EvaluatedMarks, &findings, &doc, &shape, &sources,
		&accepted, &m.AcceptedReason, &evaluated, &m.Held)
	m.Hold = hold != 0
	m.Findings, m.Document, m.Shape, m.Sources = json.RawMessage(findings), json.RawMessage(doc), json.RawMessage(shape), json.RawMessage(sources)
	if accepted != 0 {
		m.AcceptedAt = time.Unix(0, accepted).UTC()
	}
	if evaluated != 0 {
		m.EvaluatedAt = time.Unix(0, evaluated).UTC()
	}
	return m, err
}

// stamp is the validation status and schema version of a file's dataset,
// for its events ("" when it has none).
func (t *Tx) stamp(watch, batch string) (version, status string, err error) {
	if batch == "" || !t.j.metadataInUse.Load() {
		return "", "", nil
	}
	err = t.queryRow(`SELECT m.schema_version, m.status FROM dataset_metadata m JOIN datasets d ON d.id = m.dataset_id
		WHERE d.watch = ? AND d.rel_path = ?`, watch, batch).Scan(&version, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	return version, status, err
}

// metadataOnSettle registers a settled file with its dataset's metadata
// (the row is created with the dataset's first file; a file that the
// profile reads for metadata marks the dataset for validation) and
// returns why the file is to be held ("" when it is not).
func (t *Tx) metadataOnSettle(s Settled) (string, error) {
	ref := s.Dataset
	var id int64
	if err := t.queryRow(`SELECT id FROM datasets WHERE watch = ? AND rel_path = ?`, ref.Watch, ref.RelPath).Scan(&id); err != nil {
		return "", err
	}
	now := t.now.UnixNano()
	mark := 0
	if s.MetadataSource {
		mark = 1
	}
	if _, err := t.exec(`INSERT INTO dataset_metadata (dataset_id, profile, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (dataset_id) DO UPDATE SET marks = marks + ?, profile = excluded.profile, updated_at = excluded.updated_at`,
		id, ref.Profile, now, mark); err != nil {
		return "", err
	}
	t.j.metadataInUse.Store(true)
	var hold int
	var status string
	if err := t.queryRow(`SELECT hold, status FROM dataset_metadata WHERE dataset_id = ?`, id).Scan(&hold, &status); err != nil {
		return "", err
	}
	switch {
	case hold == 0:
		return "", nil
	case status == "":
		return "its dataset's metadata is not validated yet", nil
	default:
		return "its dataset's metadata is " + status + " (held by the watch's policy: ferry dlq list shows the findings)", nil
	}
}

// DirtyMetadata lists the unclosed datasets whose metadata is to be
// validated (again).
// A dataset closing (its crate, which carries the metadata, is being
// written) or closed is not validated again: its crate must be the same
// bytes however often it is made.
func (j *Journal) DirtyMetadata(ctx context.Context) ([]DatasetMetadata, error) {
	return j.metadataRows(ctx, `m.marks > m.evaluated_marks AND d.state IN ('`+string(DatasetOpen)+`', '`+string(DatasetComplete)+`')`)
}

// Metadata returns a dataset's metadata row (ErrNoDataset when it has
// none).
func (j *Journal) Metadata(ctx context.Context, watch, rel string) (DatasetMetadata, error) {
	ms, err := j.metadataRows(ctx, `d.watch = ? AND d.rel_path = ?`, watch, rel)
	if err != nil {
		return DatasetMetadata{}, err
	}
	if len(ms) == 0 {
		return DatasetMetadata{}, fmt.Errorf("%w with metadata: %s in %s", ErrNoDataset, rel, watch)
	}
	return ms[0], nil
}

// HeldMetadata lists the datasets whose files are held, oldest first.
func (j *Journal) HeldMetadata(ctx context.Context) ([]DatasetMetadata, error) {
	return j.metadataRows(ctx, `EXISTS (SELECT 1 FROM files f WHERE f.watch = d.watch AND f.batch_id = d.rel_path AND f.state = '`+string(Held)+`')`)
}

// AllMetadata lists every dataset with metadata, oldest first.
func (j *Journal) AllMetadata(ctx context.Context) ([]DatasetMetadata, error) {
	return j.metadataRows(ctx, `1 = 1`)
}

func (j *Journal) metadataRows(ctx context.Context, where string, args ...any) ([]DatasetMetadata, error) {
	rs, err := j.r.QueryContext(ctx, `SELECT `+datasetColumns+`, `+metadataColumns+`
		FROM dataset_metadata m JOIN datasets d ON d.id = m.dataset_id WHERE `+where+` ORDER BY d.opened_at, d.id`, args...)
	if noMetadata(err) {
		return nil, nil
	}
	return collect(rs, err, scanMetadata)
}

// noMetadata: a journal opened read-only before migration 0007 has no
// metadata tables: nothing to list.
func noMetadata(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table: dataset_metadata")
}

// RecordMetadata journals one validation of a dataset's metadata. A
// dataset that is not held (the policy does not hold it, or a person
// accepted it) has its held files released, and its shape is merged into
// its watch's (merge gets the watch's shape so far, "" for none, and
// returns the new one); a held dataset's queued files are held. It
// returns how many files it released and held.
func (j *Journal) RecordMetadata(ctx context.Context, watch, rel string, ev MetadataEvaluation, merge func(watchShape []byte, datasetShape []byte) ([]byte, error)) (released, held int, err error) {
	err = j.do(ctx, func(t *Tx) error {
		released, held = 0, 0
		d, err := t.dataset(watch, rel)
		if err != nil {
			return err
		}
		var accepted int64
		if err := t.queryRow(`SELECT COALESCE(accepted_at, 0) FROM dataset_metadata WHERE dataset_id = ?`, d.ID).Scan(&accepted); err != nil {
			return fmt.Errorf("dataset %s: no metadata row: %w", rel, err)
		}
		hold := ev.Hold && accepted == 0
		holdInt := 0
		if hold {
			holdInt = 1
		}
		now := t.now.UnixNano()
		if _, err := t.exec(`UPDATE dataset_metadata SET status = ?, schema_version = ?, hold = ?, evaluated_marks = MAX(evaluated_marks, ?),
			findings = ?, document = ?, shape = ?, sources = ?, evaluated_at = ?, updated_at = ? WHERE dataset_id = ?`,
			ev.Status, ev.SchemaVersion, holdInt, ev.Marks, rawOr(ev.Findings, "[]"), rawOr(ev.Document, "{}"), rawOr(ev.Shape, "{}"),
			rawOr(ev.Sources, "[]"), now, now, d.ID); err != nil {
			return err
		}
		var nf []json.RawMessage
		_ = json.Unmarshal(ev.Findings, &nf)
		detail := fmt.Sprintf("watch=%s status=%s schema_version=%s findings=%d hold=%t", strconv.Quote(watch), detailWord(ev.Status),
			detailWord(ev.SchemaVersion), len(nf), hold)
		if err := t.event(Event{Kind: KindMetadataValidated, BatchID: rel, RelPath: rel, Size: -1, Detail: detail,
			SchemaVersion: ev.SchemaVersion, ValidationStatus: ev.Status}); err != nil {
			return err
		}
		if hold {
			held, err = t.moveDatasetFiles(watch, rel, Queued, &change{Kind: KindHeld, Detail: "metadata " + ev.Status + ": held by the watch's policy"})
			return err
		}
		if merge != nil {
			if err := t.mergeShape(watch, rawOr(ev.Shape, "{}"), merge); err != nil {
				return err
			}
		}
		released, err = t.moveDatasetFiles(watch, rel, Held, &change{Kind: KindMetadataReleased, Detail: "metadata " + ev.Status})
		return err
	})
	return released, held, err
}

// AcceptMetadata releases a held dataset as it is, for a reason a person
// gives (ferry metadata accept): recorded as a metadata_accepted event and
// in the audit log, in one transaction. The dataset is never held again.
// merge is as for RecordMetadata.
func (j *Journal) AcceptMetadata(ctx context.Context, watch, rel, reason string, merge func(watchShape []byte, datasetShape []byte) ([]byte, error)) (released int, err error) {
	if strings.TrimSpace(reason) == "" {
		return 0, errors.New("accept: a reason is required")
	}
	err = j.do(ctx, func(t *Tx) error {
		released = 0
		d, err := t.dataset(watch, rel)
		if err != nil {
			return err
		}
		var hold int
		var status, version, shape string
		err = t.queryRow(`SELECT hold, status, schema_version, shape FROM dataset_metadata WHERE dataset_id = ?`, d.ID).Scan(&hold, &status, &version, &shape)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s has no metadata profile", ErrNotHeld, rel)
		}
		if err != nil {
			return err
		}
		var heldFiles int
		if err := t.queryRow(`SELECT COUNT(*) FROM files WHERE watch = ? AND batch_id = ? AND state = ?`, watch, rel, string(Held)).Scan(&heldFiles); err != nil {
			return err
		}
		if hold == 0 && heldFiles == 0 {
			return fmt.Errorf("%w: %s (metadata %s)", ErrNotHeld, rel, orWord(status, "not validated yet"))
		}
		now := t.now.UnixNano()
		if _, err := t.exec(`UPDATE dataset_metadata SET hold = 0, accepted_at = ?, accepted_reason = ?, updated_at = ? WHERE dataset_id = ?`,
			now, reason, now, d.ID); err != nil {
			return err
		}
		detail := fmt.Sprintf("watch=%s status=%s schema_version=%s reason=%s", strconv.Quote(watch), detailWord(orWord(status, "pending")),
			detailWord(version), strconv.Quote(reason))
		if err := t.event(Event{Kind: KindMetadataAccepted, BatchID: rel, RelPath: rel, Size: -1, Detail: detail,
			SchemaVersion: version, ValidationStatus: status}); err != nil {
			return err
		}
		if _, err := t.audit(AuditRecord{Kind: AuditMetadataAccepted, Subject: watch + "/" + rel, Detail: detail}); err != nil {
			return err
		}
		if merge != nil && status != "" {
			if err := t.mergeShape(watch, shape, merge); err != nil {
				return err
			}
		}
		released, err = t.moveDatasetFiles(watch, rel, Held, &change{Kind: KindMetadataReleased, Detail: "accepted by a person: " + reason})
		return err
	})
	return released, err
}

func orWord(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func rawOr(b json.RawMessage, def string) string {
	if len(b) == 0 {
		return def
	}
	return string(b)
}

// moveDatasetFiles applies c to every file of the dataset in state from.
func (t *Tx) moveDatasetFiles(watch, rel string, from State, c *change) (int, error) {
	rs, err := t.rows(`watch = ? AND batch_id = ? AND state = ? ORDER BY id`, watch, rel, string(from))
	if err != nil {
		return 0, err
	}
	for i := range rs {
		cc := *c
		if err := t.move(&rs[i], &cc); err != nil {
			return i, err
		}
	}
	return len(rs), nil
}

func (t *Tx) mergeShape(watch, datasetShape string, merge func(watchShape []byte, datasetShape []byte) ([]byte, error)) error {
	var cur string
	err := t.queryRow(`SELECT shape FROM metadata_shapes WHERE watch = ?`, watch).Scan(&cur)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	next, err := merge([]byte(cur), []byte(datasetShape))
	if err != nil {
		return fmt.Errorf("merge the watch's metadata shape: %w", err)
	}
	_, err = t.exec(`INSERT INTO metadata_shapes (watch, shape, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (watch) DO UPDATE SET shape = excluded.shape, updated_at = excluded.updated_at`, watch, string(next), t.now.UnixNano())
	return err
}

// WatchShape is what a watch's released datasets looked like so far: the
// baseline of drift detection ("" when none was released yet).
func (j *Journal) WatchShape(ctx context.Context, watch string) ([]byte, error) {
	var s string
	err := j.r.QueryRowContext(ctx, `SELECT shape FROM metadata_shapes WHERE watch = ?`, watch).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) || noMetadataShapes(err) {
		return nil, nil
	}
	return []byte(s), err
}

func noMetadataShapes(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table: metadata_shapes")
}

// MarkMetadataDirty marks the held (or not yet validated) datasets of
// watch for validation again: the rules changed, and a dataset held under
// the old ones may validate under the new. A released dataset keeps the
// outcome its files were uploaded with (its objects and crate say how it
// validated then); it is validated again only when a source file of it
// changes. It returns how many.
func (j *Journal) MarkMetadataDirty(ctx context.Context, watch string) (int, error) {
	var n int64
	err := j.do(ctx, func(t *Tx) error {
		res, err := t.exec(`UPDATE dataset_metadata SET marks = marks + 1 WHERE (hold = 1 OR status = '') AND dataset_id IN
			(SELECT id FROM datasets WHERE watch = ? AND state IN (?, ?))`, watch, string(DatasetOpen), string(DatasetComplete))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// RuleFile is a validation rule file (a schema or a vocabulary) as ferry
// loaded it.
type RuleFile struct {
	Path    string
	Kind    string // schema or vocabulary
	Name    string // the vocabulary's name, the schema's $id
	SHA256  string
	Content []byte
}

// RuleFiles returns the rule files last recorded, by path.
func (j *Journal) RuleFiles(ctx context.Context) (map[string]RuleFile, error) {
	rs, err := j.r.QueryContext(ctx, `SELECT path, kind, name, sha256, content FROM metadata_rules`)
	if err != nil && strings.Contains(err.Error(), "no such table: metadata_rules") {
		return map[string]RuleFile{}, nil
	}
	list, err := collect(rs, err, func(sc scanner) (RuleFile, error) {
		var r RuleFile
		return r, sc.Scan(&r.Path, &r.Kind, &r.Name, &r.SHA256, &r.Content)
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]RuleFile, len(list))
	for _, r := range list {
		out[r.Path] = r
	}
	return out, nil
}

// RecordRules stores the rule files now in force (those no longer in
// force are forgotten) and appends rec (a validation_rules_changed
// record) to the audit log, in one transaction.
func (j *Journal) RecordRules(ctx context.Context, files []RuleFile, rec AuditRecord) error {
	return j.do(ctx, func(t *Tx) error {
		if _, err := t.exec(`DELETE FROM metadata_rules`); err != nil {
			return err
		}
		for _, f := range files {
			if _, err := t.exec(`INSERT INTO metadata_rules (path, kind, name, sha256, content, loaded_at) VALUES (?, ?, ?, ?, ?, ?)`,
				f.Path, f.Kind, f.Name, f.SHA256, f.Content, t.now.UnixNano()); err != nil {
				return err
			}
		}
		_, err := t.audit(rec)
		return err
	})
}

// Stamp is the validation status and schema version of a dataset of
// watch now ("" for none), for the log lines about its files.
func (j *Journal) Stamp(ctx context.Context, watch, dataset string) (version, status string, err error) {
	if dataset == "" || !j.metadataInUse.Load() {
		return "", "", nil
	}
	err = j.r.QueryRowContext(ctx, `SELECT m.schema_version, m.status FROM dataset_metadata m JOIN datasets d ON d.id = m.dataset_id
		WHERE d.watch = ? AND d.rel_path = ?`, watch, dataset).Scan(&version, &status)
	if errors.Is(err, sql.ErrNoRows) || noMetadata(err) {
		return "", "", nil
	}
	return version, status, err
}
