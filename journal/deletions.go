package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The deletion lifecycle (after_upload = "delete"): deleting a source file
// is the most dangerous thing ferry does, so it is planned in the journal
// first (delete_planned, one row per file of a closed dataset), carried
// out by the daemon only after every condition is checked again at that
// moment, and each outcome is an event with its evidence.

// DeletionState is where a planned deletion stands.
type DeletionState string

const (
	DeletionNone    DeletionState = ""
	DeletionPending DeletionState = "pending" // planned; carried out when every check holds
	DeletionDeleted DeletionState = "deleted" // the source file was removed, with the evidence recorded
	DeletionRefused DeletionState = "refused" // a check failed for good (the file changed after upload, the target does not hold it): kept
)

// Deletion event kinds.
const (
	KindDeletePlanned  Kind = "delete_planned"
	KindDeleteDeferred Kind = "delete_deferred"
	KindSourceDeleted  Kind = "source_deleted"
	KindDeleteRefused  Kind = "delete_refused"
)

// DeletionRule is one edge set of the deletion lifecycle.
type DeletionRule struct {
	Kind Kind
	From []DeletionState
	To   DeletionState
	Doc  string
}

var deletionLifecycle = []DeletionRule{
	{KindDeletePlanned, []DeletionState{DeletionNone}, DeletionPending,
		"its dataset closed: the file's deletion is owed (after_upload = \"delete\")"},
	{KindDeleteDeferred, []DeletionState{DeletionPending}, DeletionPending,
		"a check could not be made now (target unreachable, file locked, a dead letter in the dataset): tried again later"},
	{KindSourceDeleted, []DeletionState{DeletionPending}, DeletionDeleted,
		"every check held at that moment; the file was removed"},
	{KindDeleteRefused, []DeletionState{DeletionPending}, DeletionRefused,
		"a check failed for good: the file is kept"},
}

// DeletionRules returns the deletion lifecycle table.
func DeletionRules() []DeletionRule { return append([]DeletionRule(nil), deletionLifecycle...) }

func deletionRuleFor(kind Kind, from DeletionState) (*DeletionRule, error) {
	for i := range deletionLifecycle {
		r := &deletionLifecycle[i]
		if r.Kind != kind {
			continue
		}
		for _, f := range r.From {
			if f == from {
				return r, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: %s from deletion state %q", ErrTransition, kind, from)
}

// Deletion is a planned deletion with what the checks need: the file's
// journaled version and what landed.
type Deletion struct {
	FileID     int64
	DatasetID  int64
	Generation int64
	State      DeletionState
	Attempts   int
	LastError  string
	Evidence   string
	Bytes      int64
	// The file as journaled now.
	Watch, RelPath, Target string
	FileState              State
	FileGeneration         int64
	Version                Version
	SHA256                 string // of the version read
	UploadedSHA256         string // what landed
	UploadedKey            string
	// Its dataset as journaled now.
	DatasetState       DatasetState
	DatasetDeadLetters int
}

const deletionSelect = `SELECT d.file_id, d.dataset_id, d.generation, d.state, d.attempts, COALESCE(d.last_error, ''), COALESCE(d.evidence, ''), d.bytes,
	f.watch, f.rel_path, f.target, f.state, f.generation, f.size, f.mtime_ns, f.file_id, COALESCE(f.sha256, ''), COALESCE(f.uploaded_sha256, ''),
	COALESCE(f.uploaded_key, ''), ds.state,
	(SELECT COUNT(*) FROM files x WHERE x.watch = ds.watch AND x.batch_id = ds.rel_path AND x.state = 'failed')
	FROM deletions d JOIN files f ON f.id = d.file_id JOIN datasets ds ON ds.id = d.dataset_id`

func scanDeletion(sc scanner) (Deletion, error) {
	var d Deletion
	err := sc.Scan(&d.FileID, &d.DatasetID, &d.Generation, &d.State, &d.Attempts, &d.LastError, &d.Evidence, &d.Bytes,
		&d.Watch, &d.RelPath, &d.Target, &d.FileState, &d.FileGeneration, &d.Version.Size, &d.Version.MtimeNS, &d.Version.FileID,
		&d.SHA256, &d.UploadedSHA256, &d.UploadedKey, &d.DatasetState, &d.DatasetDeadLetters)
	return d, err
}

// moveDeletion applies a deletion step by the table and appends its event
// (about the file: its path and batch, its id in the detail).
func (t *Tx) moveDeletion(fileID int64, kind Kind, why, evidence string) error {
	d, err := scanDeletion(t.queryRow(deletionSelect+` WHERE d.file_id = ?`, fileID))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: no deletion planned for file %d", ErrTransition, fileID)
	}
	if err != nil {
		return err
	}
	rule, err := deletionRuleFor(kind, d.State)
	if err != nil {
		return fmt.Errorf("%s: %w", d.RelPath, err)
	}
	now := t.now.UnixNano()
	switch rule.To {
	case DeletionPending:
		_, err = t.exec(`UPDATE deletions SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE file_id = ?`,
			why, t.now.Add(deleteRetry(d.Attempts+1)).UnixNano(), fileID)
	default:
		_, err = t.exec(`UPDATE deletions SET state = ?, attempts = attempts + 1, last_error = ?, evidence = ?, done_at = ? WHERE file_id = ?`,
			rule.To, nullIfEmpty(why), evidence, now, fileID)
	}
	if err != nil {
		return err
	}
	return t.event(Event{Kind: kind, RelPath: d.RelPath, BatchID: batchOf(t, d.DatasetID), Size: d.Bytes,
		SHA256: d.UploadedSHA256, Detail: fmt.Sprintf("watch=%s file_id=%d generation=%d previous_state=%s state=%s reason=%s evidence=%s",
			strconv.Quote(d.Watch), fileID, d.Generation, detailWord(string(d.State)), rule.To, strconv.Quote(why), strconv.Quote(evidence))})
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func batchOf(t *Tx, datasetID int64) string {
	var rel string
	t.queryRow(`SELECT rel_path FROM datasets WHERE id = ?`, datasetID).Scan(&rel)
	return rel
}

// deleteRetry is the wait before a deferred deletion is tried again: a
// minute, doubling, at most six hours.
func deleteRetry(attempts int) time.Duration {
	d := time.Minute
	for i := 1; i < attempts && d < 6*time.Hour; i++ {
		d *= 2
	}
	return min(d, 6*time.Hour)
}

// PlanDeletions journals the deletions a closed dataset owes: one per file
// whose landed content is its current version (uploaded, not ignored:
// a file modified after its upload is never deleted), once per dataset.
// It returns how many it planned.
func (j *Journal) PlanDeletions(ctx context.Context, watch, rel string) (int, error) {
	n := 0
	err := j.do(ctx, func(t *Tx) error {
		n = 0
		d, err := t.dataset(watch, rel)
		if err != nil {
			return err
		}
		if !d.State.Info().Closed {
			return fmt.Errorf("dataset %s: %w: deletions are planned only once it is closed (it is %s)", rel, ErrTransition, d.State)
		}
		var planned sql.NullInt64
		if err := t.queryRow(`SELECT deletions_planned_at FROM datasets WHERE id = ?`, d.ID).Scan(&planned); err != nil || planned.Valid {
			return err
		}
		rows, err := t.rows(`watch = ? AND batch_id = ? AND state = ? AND uploaded_sha256 IS NOT NULL AND uploaded_sha256 = sha256 ORDER BY rel_path`,
			watch, rel, string(Uploaded))
		if err != nil {
			return err
		}
		for _, r := range rows {
			if _, err := t.exec(`INSERT INTO deletions (file_id, dataset_id, generation, state, bytes, created_at) VALUES (?, ?, ?, 'pending', ?, ?)
				ON CONFLICT (file_id) DO NOTHING`, r.ID, d.ID, r.Generation, r.Version.Size, t.now.UnixNano()); err != nil {
				return err
			}
			if err := t.event(Event{Kind: KindDeletePlanned, RelPath: r.RelPath, BatchID: rel, Size: r.Version.Size, SHA256: r.UploadedSHA256,
				Detail: fmt.Sprintf("watch=%s file_id=%d generation=%d previous_state=%s state=%s", strconv.Quote(watch), r.ID, r.Generation,
					detailWord(""), DeletionPending)}); err != nil {
				return err
			}
			n++
		}
		_, err = t.exec(`UPDATE datasets SET deletions_planned_at = ? WHERE id = ?`, t.now.UnixNano(), d.ID)
		return err
	})
	return n, err
}

// DatasetsToPlan returns the closed datasets of a watch whose deletions
// are not planned yet.
func (j *Journal) DatasetsToPlan(ctx context.Context, watch string) ([]string, error) {
	rs, err := j.r.QueryContext(ctx, `SELECT rel_path FROM datasets WHERE watch = ? AND state IN ('closed', 'failed_run') AND deletions_planned_at IS NULL ORDER BY id`, watch)
	return collect(rs, err, func(sc scanner) (string, error) {
		var s string
		return s, sc.Scan(&s)
	})
}

// DueDeletions returns up to n pending deletions due at now, oldest
// dataset first (the order reclaim frees space in).
func (j *Journal) DueDeletions(ctx context.Context, now time.Time, n int) ([]Deletion, error) {
	rs, err := j.r.QueryContext(ctx, deletionSelect+` WHERE d.state = 'pending' AND d.next_attempt_at <= ? ORDER BY d.dataset_id, d.file_id LIMIT ?`,
		now.UnixNano(), n)
	return collect(rs, err, scanDeletion)
}

// DatasetDeletions returns every deletion of a dataset.
func (j *Journal) DatasetDeletions(ctx context.Context, datasetID int64) ([]Deletion, error) {
	rs, err := j.r.QueryContext(ctx, deletionSelect+` WHERE d.dataset_id = ? ORDER BY f.rel_path`, datasetID)
	return collect(rs, err, scanDeletion)
}

// SourceDeleted records a removed source file with its evidence.
func (j *Journal) SourceDeleted(ctx context.Context, fileID int64, evidence string) error {
	return j.do(ctx, func(t *Tx) error { return t.moveDeletion(fileID, KindSourceDeleted, "", evidence) })
}

// DeleteRefused records a deletion given up for good: the file is kept.
func (j *Journal) DeleteRefused(ctx context.Context, fileID int64, why, evidence string) error {
	return j.do(ctx, func(t *Tx) error { return t.moveDeletion(fileID, KindDeleteRefused, why, evidence) })
}

// DeleteDeferred records a deletion that could not be made now, and when
// to try again.
func (j *Journal) DeleteDeferred(ctx context.Context, fileID int64, why string) error {
	return j.do(ctx, func(t *Tx) error { return t.moveDeletion(fileID, KindDeleteDeferred, why, "") })
}

// DeletionStats counts deletions by state, and the bytes deleted.
type DeletionStats struct {
	Pending, Deleted, Refused int
	DeletedBytes              int64
}

// DeletionStats reads the counts.
func (j *Journal) DeletionStats(ctx context.Context) (DeletionStats, error) {
	var s DeletionStats
	err := j.r.QueryRowContext(ctx, `SELECT COUNT(CASE WHEN state = 'pending' THEN 1 END), COUNT(CASE WHEN state = 'deleted' THEN 1 END),
		COUNT(CASE WHEN state = 'refused' THEN 1 END), COALESCE(SUM(CASE WHEN state = 'deleted' THEN bytes END), 0) FROM deletions`).
		Scan(&s.Pending, &s.Deleted, &s.Refused, &s.DeletedBytes)
	if err != nil && strings.Contains(err.Error(), "no such table") {
		err = nil
	}
	return s, err
}
