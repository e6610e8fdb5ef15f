package journal

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version identifies one version of a source file.
type Version struct {
	Size    int64
	MtimeNS int64
	FileID  string // srcfile.ID.String()
}

// Settled is a file the watcher found settled.
type Settled struct {
	Watch   string // absolute watch root
	RelPath string // slash-separated path under Watch
	Target  string
	Key     string
	BatchID string
	Version Version
	Signal  string // what released it, e.g. "quiet"
	// Invalid, when set, says why the file cannot be uploaded at all (its
	// name cannot be a key): it is recorded as failed with that reason.
	Invalid string
	// Dataset, when set, is the dataset the file belongs to (BatchID is
	// its RelPath): journaled as opened with the file if it is new, and a
	// file that settles in a dataset already closing or closed is
	// recorded failed (class dataset_closed): nothing of a dataset lands
	// after its manifest and crate.
	Dataset *DatasetRef
	// MetadataSource: the file is one that the dataset's metadata profile
	// reads (RunInfo.xml, a sidecar...): its dataset's metadata is
	// validated again.
	MetadataSource bool
}

// Outcome says what RecordSettled did.
type Outcome int

// Outcomes of RecordSettled.
const (
	Unchanged Outcome = iota // the same version is already journaled
	Added                    // a new file, queued
	Requeued                 // a new version of a known file, queued
)

// File is a file version's place and identity: where it is (watch root
// and path), where it goes (target and key), its batch and its version.
type File struct {
	Watch   string // absolute watch root
	RelPath string // slash-separated path under Watch
	Target  string
	Key     string // the path's own object key
	BatchID string
	Version Version
}

// Job is a claimed file version: the uploader's unit of work.
type Job struct {
	File
	ID            int64
	Generation    int64
	Attempts      int // including this one
	CorrelationID string
	UploadID      string // a multipart upload left by an earlier attempt, "" if none
	SHA256        string // the file's hash as an earlier attempt journaled it, "" if none
	// UploadedSHA256 and UploadedKey are what this path last put on the
	// target ("" if it never did): a new version with other content is
	// then "modified after upload".
	UploadedSHA256 string
	UploadedKey    string
	// SchemaVersion and ValidationStatus: its dataset's metadata when it
	// was claimed ("" for none), for its log lines and the object's user
	// metadata.
	SchemaVersion    string
	ValidationStatus string
}

// ErrStale is returned when a job's file version was superseded while it
// was being uploaded: the job's result must not be recorded as uploaded.
var ErrStale = errors.New("file version changed while it was being uploaded")

func newCorrelationID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// rowCols are the files columns of a fileRow, in scanRow's order.
const rowCols = `id, watch, rel_path, target, object_key, batch_id, size, mtime_ns, file_id, generation, state, signal,
	COALESCE(sha256, ''), COALESCE(upload_id, ''), COALESCE(correlation_id, ''), attempts, next_attempt_at,
	COALESCE(error_class, ''), COALESCE(error, ''), settled_at, updated_at, COALESCE(uploaded_at, 0),
	COALESCE(uploaded_sha256, ''), COALESCE(uploaded_key, '')`

type scanner interface{ Scan(dest ...any) error }

func scanRow(sc scanner) (fileRow, error) {
	var r fileRow
	err := sc.Scan(&r.ID, &r.Watch, &r.RelPath, &r.Target, &r.Key, &r.BatchID, &r.Version.Size, &r.Version.MtimeNS, &r.Version.FileID,
		&r.Generation, &r.State, &r.Signal, &r.SHA256, &r.UploadID, &r.CorrelationID, &r.Attempts, &r.NextAttemptAt,
		&r.ErrorClass, &r.Error, &r.SettledAt, &r.UpdatedAt, &r.UploadedAt, &r.UploadedSHA256, &r.UploadedKey)
	return r, err
}

// null stores "" (and 0) as NULL in the columns that may be NULL.
func null[T comparable](v T) any {
	var zero T
	if v == zero {
		return nil
	}
	return v
}

// column is a files column a transition may write, with its value in a
// fileRow (NULL for an empty text or a zero time where the column may be
// NULL).
type column struct {
	name  string
	value func(r *fileRow) any
}

// columnsOf are the columns each Col flag writes: a transition writes only
// those of its rule (and state when it changes, updated_at always), so
// that a step touches no index it need not (files_queue, files_batch).
var columnsOf = map[Col][]column{
	SetVersion: {
		{"target", func(r *fileRow) any { return r.Target }}, {"object_key", func(r *fileRow) any { return r.Key }},
		{"batch_id", func(r *fileRow) any { return r.BatchID }}, {"size", func(r *fileRow) any { return r.Version.Size }},
		{"mtime_ns", func(r *fileRow) any { return r.Version.MtimeNS }}, {"file_id", func(r *fileRow) any { return r.Version.FileID }},
		{"signal", func(r *fileRow) any { return r.Signal }}, {"settled_at", func(r *fileRow) any { return r.SettledAt }},
	},
	NewGeneration:   {{"generation", func(r *fileRow) any { return r.Generation }}},
	ResetAttempts:   {colAttempts, colDue},
	CountAttempt:    {colAttempts, {"correlation_id", func(r *fileRow) any { return null(r.CorrelationID) }}},
	UncountAttempt:  {colAttempts, colDue},
	ResetDue:        {colDue},
	SetDue:          {colDue},
	SetHash:         {colHash},
	ClearHash:       {colHash},
	SetUploadID:     {colUploadID},
	ClearUploadID:   {colUploadID},
	SetError:        {colErrorClass, colError},
	ClearError:      {colErrorClass, colError},
	SetLanded:       {{"uploaded_sha256", func(r *fileRow) any { return null(r.UploadedSHA256) }}, {"uploaded_key", func(r *fileRow) any { return null(r.UploadedKey) }}},
	SetUploadedAt:   {colUploadedAt},
	ClearUploadedAt: {colUploadedAt},
}

var (
	colAttempts   = column{"attempts", func(r *fileRow) any { return r.Attempts }}
	colDue        = column{"next_attempt_at", func(r *fileRow) any { return r.NextAttemptAt }}
	colHash       = column{"sha256", func(r *fileRow) any { return null(r.SHA256) }}
	colUploadID   = column{"upload_id", func(r *fileRow) any { return null(r.UploadID) }}
	colErrorClass = column{"error_class", func(r *fileRow) any { return null(r.ErrorClass) }}
	colError      = column{"error", func(r *fileRow) any { return null(r.Error) }}
	colUploadedAt = column{"uploaded_at", func(r *fileRow) any { return null(r.UploadedAt) }}
	colState      = column{"state", func(r *fileRow) any { return string(r.State) }}
	colUpdatedAt  = column{"updated_at", func(r *fileRow) any { return r.UpdatedAt }}
)

// rowUpdate is an UPDATE of the columns a rule writes.
type rowUpdate struct {
	query string
	cols  []column
}

var rowUpdates sync.Map // [2]int64{Sets, state changes} -> *rowUpdate

// updateFor is the UPDATE for a transition setting sets (and the state
// when stateChanges), made once per combination.
func updateFor(sets Col, stateChanges bool) *rowUpdate {
	k := [2]int64{int64(sets), 0}
	if stateChanges {
		k[1] = 1
	}
	if u, ok := rowUpdates.Load(k); ok {
		return u.(*rowUpdate)
	}
	var cols []column
	seen := map[string]bool{}
	add := func(c column) {
		if !seen[c.name] {
			seen[c.name] = true
			cols = append(cols, c)
		}
	}
	for f := Col(1); f != 0 && f <= ClearUploadedAt; f <<= 1 {
		if sets&f != 0 {
			for _, c := range columnsOf[f] {
				add(c)
			}
		}
	}
	if stateChanges {
		add(colState)
	}
	add(colUpdatedAt)
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c.name + " = ?"
	}
	u := &rowUpdate{query: `UPDATE files SET ` + strings.Join(set, ", ") + ` WHERE id = ?`, cols: cols}
	rowUpdates.Store(k, u)
	return u
}

func (u *rowUpdate) args(r *fileRow) []any {
	args := make([]any, len(u.cols)+1)
	for i, c := range u.cols {
		args[i] = c.value(r)
	}
	args[len(u.cols)] = r.ID
	return args
}

// values are a new row's columns, in the order of move's INSERT.
func (r *fileRow) values() []any {
	return []any{r.Target, r.Key, r.BatchID, r.Version.Size, r.Version.MtimeNS, r.Version.FileID, r.Generation, string(r.State), r.Signal,
		null(r.SHA256), null(r.UploadID), null(r.CorrelationID), r.Attempts, r.NextAttemptAt, null(r.ErrorClass), null(r.Error),
		r.SettledAt, r.UpdatedAt, null(r.UploadedAt), null(r.UploadedSHA256), null(r.UploadedKey)}
}

// row reads the files row id in the transaction.
func (t *Tx) row(id int64) (fileRow, error) {
	return scanRow(t.queryRow(`SELECT `+rowCols+` FROM files WHERE id = ?`, id))
}

// move applies the change c to the row r, as read in this transaction (r.State
// None: a row to create), by the lifecycle table: it writes the row and
// appends the event. A change the table does not allow is refused
// (ErrTransition) and nothing is written.
func (t *Tx) move(r *fileRow, c *change) error {
	prev := r.State
	rule, err := ruleFor(c.Kind, prev)
	if err != nil {
		return fmt.Errorf("%s: %w", r.RelPath, err)
	}
	r.apply(rule, c, t.now.UnixNano())
	// A step that sets nothing (a chunk hashed or acknowledged) writes
	// only its event.
	write := rule.Sets != 0 || rule.To != prev
	if write && prev == None {
		res, err := t.exec(`INSERT INTO files (watch, rel_path, target, object_key, batch_id, size, mtime_ns, file_id, generation, state, signal,
			sha256, upload_id, correlation_id, attempts, next_attempt_at, error_class, error, settled_at, updated_at, uploaded_at, uploaded_sha256, uploaded_key)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, append([]any{r.Watch, r.RelPath}, r.values()...)...)
		if err != nil {
			return err
		}
		if r.ID, err = res.LastInsertId(); err != nil {
			return err
		}
	} else if write {
		u := updateFor(rule.Sets, rule.To != prev)
		if _, err := t.exec(u.query, u.args(r)...); err != nil {
			return err
		}
	}
	if c.Landed != nil && rule.Sets&SetLanded != 0 {
		if err := t.wrote(r.ID, r.Target, *c.Landed, true); err != nil {
			return err
		}
	}
	if prev.Info().Pending && !rule.To.Info().Pending {
		// The file no longer holds its batch open: whether the batch is
		// complete is asked once per transaction and batch, before it
		// commits (Tx.batchesLeft), not once per file.
		if t.left == nil {
			t.left = map[string]bool{}
		}
		t.left[r.BatchID] = true
	}
	e := c.event(r, prev)
	if e.SchemaVersion, e.ValidationStatus, err = t.stamp(r.Watch, r.BatchID); err != nil {
		return err
	}
	return t.event(e)
}

// wrote records that ferry sent (landed false) or put (true) content sha
// under key for the row id. A sent object is one ferry may have written:
// a create-only write that later finds it under its key knows it is its
// own (an attempt whose end a crash kept from the journal).
func (t *Tx) wrote(id int64, target string, l Landed, landed bool) error {
	_, err := t.exec(`INSERT INTO objects (file_id, target, object_key, sha256, landed, at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (file_id, target, object_key, sha256) DO UPDATE SET landed = MAX(landed, excluded.landed), at = excluded.at`,
		id, target, l.Key, l.SHA256, landed, t.now.UnixNano())
	return err
}

// jobMove applies a job's change to its row. The row must still be the
// job's: uploading, at the job's generation. When a newer version settled
// meanwhile, a change that ends the job ends it superseded instead (the
// row is queued for the new version, keeping what landed) and returns
// ErrStale; any other change is refused with ErrStale.
func (t *Tx) jobMove(jb *Job, c *change) error {
	r, err := t.row(jb.ID)
	if err != nil {
		return err
	}
	if r.State != Uploading {
		return ErrStale
	}
	rule, err := ruleFor(c.Kind, Uploading)
	if err != nil {
		return err
	}
	if !rule.Job {
		return fmt.Errorf("%w: %s is not a worker's change", ErrTransition, c.Kind)
	}
	if r.Generation != jb.Generation {
		if !rule.Ends() {
			return ErrStale
		}
		r.CorrelationID = jb.CorrelationID
		sup := &change{Kind: KindSuperseded, Landed: c.Landed, Detail: "a newer version settled during the upload"}
		if err := t.move(&r, sup); err != nil {
			return err
		}
		return errStaleCommit
	}
	return t.move(&r, c)
}

// Known reports whether this exact version of watch/rel is journaled in a
// state that keeps it (not changed or vanished: StateInfo.Resettle). The
// watcher skips known versions on rescans.
func (j *Journal) Known(ctx context.Context, watch, rel string, v Version) (bool, error) {
	var n int
	err := j.known.QueryRowContext(ctx, watch, rel, v.Size, v.MtimeNS, v.FileID).Scan(&n)
	return n > 0, err
}

var knownQuery = `SELECT COUNT(*) FROM files WHERE watch = ? AND rel_path = ? AND size = ? AND mtime_ns = ? AND file_id = ? AND NOT ` +
	inStates(statesWhere(func(i StateInfo) bool { return i.Resettle })...)

// MaxKnownBatch bounds the files KnownBatch asks about in one query.
const MaxKnownBatch = 500

// KnownBatch is Known for several files of one watch (rels[i] at vs[i]),
// asked in one query per MaxKnownBatch files: a walk of a large tree asks
// about each file, and one query per file costs far more than the lookup
// itself.
func (j *Journal) KnownBatch(ctx context.Context, watch string, rels []string, vs []Version) ([]bool, error) {
	out := make([]bool, len(rels))
	at := make(map[string]int, min(len(rels), MaxKnownBatch))
	for start := 0; start < len(rels); start += MaxKnownBatch {
		end := min(start+MaxKnownBatch, len(rels))
		clear(at)
		args := make([]any, 0, end-start+1)
		args = append(args, watch)
		for i := start; i < end; i++ {
			at[rels[i]] = i
			args = append(args, rels[i])
		}
		q := `SELECT rel_path, size, mtime_ns, file_id FROM files WHERE watch = ? AND rel_path IN (?` +
			strings.Repeat(", ?", end-start-1) + `) AND NOT ` + inStates(statesWhere(func(i StateInfo) bool { return i.Resettle })...)
		rows, err := j.r.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var rel, id string
			var size, mtime int64
			if err := rows.Scan(&rel, &size, &mtime, &id); err != nil {
				rows.Close()
				return nil, err
			}
			if i, ok := at[rel]; ok && vs[i].Size == size && vs[i].MtimeNS == mtime && vs[i].FileID == id {
				out[i] = true
			}
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RecordSettled journals a settled file version. A version already known is
// left alone (Unchanged). A new version of a known file is queued again with
// a new generation; if that file is being uploaded right now, it stays
// uploading and the uploader's completion fails with ErrStale, which queues
// it again.
func (j *Journal) RecordSettled(ctx context.Context, s Settled) (Outcome, error) {
	outs, err := j.RecordSettledBatch(ctx, []Settled{s})
	if err != nil {
		return Unchanged, err
	}
	return outs[0], nil
}

// RecordSettledBatch journals several settled versions in one transition,
// as RecordSettled does for one.
func (j *Journal) RecordSettledBatch(ctx context.Context, ss []Settled) ([]Outcome, error) {
	outs := make([]Outcome, len(ss))
	err := j.do(ctx, func(t *Tx) error {
		for i, s := range ss {
			out, err := t.recordSettled(s)
			if err != nil {
				return fmt.Errorf("%s: %w", s.RelPath, err)
			}
			outs[i] = out
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return outs, nil
}

func (t *Tx) recordSettled(s Settled) (Outcome, error) {
	r, err := scanRow(t.queryRow(`SELECT `+rowCols+` FROM files WHERE watch = ? AND rel_path = ?`, s.Watch, s.RelPath))
	out := Requeued
	switch {
	case errors.Is(err, sql.ErrNoRows):
		r, out = fileRow{File: File{Watch: s.Watch, RelPath: s.RelPath}}, Added
	case err != nil:
		return Unchanged, err
	case r.Version == s.Version && !r.State.Info().Resettle:
		return Unchanged, nil
	}
	closed, err := t.settleInDataset(s)
	if err != nil {
		return Unchanged, err
	}
	if err := t.move(&r, &change{Kind: KindSettled, Settled: &s}); err != nil {
		return Unchanged, err
	}
	switch {
	case s.Invalid != "":
		return out, t.move(&r, &change{Kind: KindFailed, Class: "invalid_key", Reason: s.Invalid})
	case closed != "":
		return out, t.move(&r, &change{Kind: KindFailed, Class: "dataset_closed", Reason: closed})
	case s.Dataset != nil && s.Dataset.Profile != "":
		why, err := t.metadataOnSettle(s)
		if err != nil || why == "" || r.State != Queued {
			return out, err
		}
		return out, t.move(&r, &change{Kind: KindHeld, Detail: why})
	}
	return out, nil
}

// rows reads the files rows a query selects (rowCols) in the transaction.
func (t *Tx) rows(where string, args ...any) ([]fileRow, error) {
	rs, err := t.query(`SELECT `+rowCols+` FROM files WHERE `+where, args...)
	return collect(rs, err, scanRow)
}

// collect reads every row of a query's result with scan.
func collect[T any](rs *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []T
	for rs.Next() {
		v, err := scan(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// countBy reads a query of (name, count) rows into a map.
func (j *Journal) countBy(ctx context.Context, q string, args ...any) (map[string]int, error) {
	type kn struct {
		k string
		n int
	}
	rs, err := j.r.QueryContext(ctx, q, args...)
	kns, err := collect(rs, err, func(sc scanner) (kn, error) {
		var v kn
		return v, sc.Scan(&v.k, &v.n)
	})
	if err != nil {
		return nil, err
	}
	m := make(map[string]int, len(kns))
	for _, v := range kns {
		m[v.k] = v.n
	}
	return m, nil
}

// Recover runs once at start, before the uploader. It puts every file left
// uploading by an earlier process back in the queue (keeping its upload ID
// so the next attempt can resume it) and returns how many. Failed files
// (dead letters) stay failed until a person retries or drops them: the
// cause of a permanent failure (a conflict, a refused credential, an
// unreadable file) is not fixed by a restart, and a person who fixes it
// says so with ferry dlq retry.
func (j *Journal) Recover(ctx context.Context) (int, error) {
	var n int
	err := j.do(ctx, func(t *Tx) error {
		rs, err := t.rows(`state = ?`, string(Uploading))
		if err != nil {
			return err
		}
		for i := range rs {
			if err := t.move(&rs[i], &change{Kind: KindInterrupted, Detail: "uploading when the previous process stopped"}); err != nil {
				return err
			}
		}
		n = len(rs)
		return nil
	})
	return n, err
}

// excludeTargets is the SQL condition and arguments that leave out the
// given targets.
func excludeTargets(exclude []string) (string, []any) {
	if len(exclude) == 0 {
		return "", nil
	}
	args := make([]any, len(exclude))
	for i, t := range exclude {
		args[i] = t
	}
	return ` AND target NOT IN (?` + strings.Repeat(",?", len(exclude)-1) + `)`, args
}

// Claim moves up to n queued files that are due (next_attempt_at <= now),
// oldest first, to uploading and returns them as jobs; files for the
// excluded targets are left queued.
func (j *Journal) Claim(ctx context.Context, n int, exclude ...string) ([]Job, error) {
	var jobs []Job
	not, notArgs := excludeTargets(exclude)
	err := j.do(ctx, func(t *Tx) error {
		jobs = jobs[:0]
		args := append([]any{string(Queued), j.dueNow().UnixNano()}, notArgs...)
		rs, err := t.rows(dueWhere+not+dueOrder, append(args, n)...)
		if err != nil {
			return err
		}
		for i := range rs {
			jb, err := t.claim(&rs[i])
			if err != nil {
				return err
			}
			jobs = append(jobs, jb)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

// The files Claim and Due take: queued and due, oldest first.
const (
	dueWhere = `state = ? AND next_attempt_at <= ?`
	dueOrder = ` ORDER BY next_attempt_at, id LIMIT ?`
)

// claim moves a queued row to uploading (claimed) and returns its job.
func (t *Tx) claim(r *fileRow) (Job, error) {
	if err := t.move(r, &change{Kind: KindClaimed, CorrelationID: newCorrelationID()}); err != nil {
		return Job{}, err
	}
	jb := jobOf(r)
	var err error
	jb.SchemaVersion, jb.ValidationStatus, err = t.stamp(r.Watch, r.BatchID)
	return jb, err
}

// jobOf is a row's job (its correlation ID the claim's, once claimed).
func jobOf(r *fileRow) Job {
	return Job{File: r.File, ID: r.ID, Generation: r.Generation, Attempts: r.Attempts, CorrelationID: r.CorrelationID,
		UploadID: r.UploadID, SHA256: r.SHA256, UploadedSHA256: r.UploadedSHA256, UploadedKey: r.UploadedKey}
}

// Due returns up to n queued files that are due, oldest first, as Claim
// would take them, without claiming them: it only reads, and the writer
// is not involved. The dispatcher reads the small ones from their source
// before it claims them with ClaimDue, so that each file's claim and its
// hash are journaled in one transition.
func (j *Journal) Due(ctx context.Context, n int, exclude ...string) ([]Job, error) {
	not, notArgs := excludeTargets(exclude)
	args := append([]any{string(Queued), j.dueNow().UnixNano()}, notArgs...)
	st, err := j.readStmt(ctx, `SELECT `+rowCols+` FROM files WHERE `+dueWhere+not+dueOrder)
	if err != nil {
		return nil, err
	}
	rs, err := st.QueryContext(ctx, append(args, n)...)
	rows, err := collect(rs, err, scanRow)
	if err != nil {
		return nil, err
	}
	jobs := make([]Job, len(rows))
	for i := range rows {
		jobs[i] = jobOf(&rows[i])
	}
	return jobs, nil
}

// ClaimDue claims, in one transition, the files of due (from Due) that
// are still queued and due at the version Due saw (the same generation);
// the others are left as they are. sums[i], when not "", is the SHA-256 of
// due[i] read whole from its source at that version: its hash (one chunk,
// the whole file) is recorded with its claim, as RecordHashes would record
// it. It returns the claimed jobs and, for each, its index in due.
func (j *Journal) ClaimDue(ctx context.Context, due []Job, sums []string) (jobs []Job, from []int, err error) {
	err = j.do(ctx, func(t *Tx) error {
		jobs, from = jobs[:0], from[:0]
		now := j.dueNow().UnixNano()
		for i := range due {
			r, err := t.row(due[i].ID)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			if r.State != Queued || r.Generation != due[i].Generation || r.NextAttemptAt > now {
				continue
			}
			jb, err := t.claim(&r)
			if err != nil {
				return err
			}
			if i < len(sums) && sums[i] != "" {
				if err := t.recordHashesOf(&r, &jb, sums[i], []Chunk{{Seq: 1, Size: r.Version.Size, SHA256: sums[i]}}); err != nil {
					return err
				}
			}
			jobs, from = append(jobs, jb), append(from, i)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return jobs, from, nil
}

// MaxDueAhead is the furthest ahead a retry is ever scheduled (the
// uploader's longest back-off); CapDue brings due times found further
// ahead back to it.
const MaxDueAhead = time.Hour

// CapDue brings every queued file due later than now+MaxDueAhead back to
// that time, and says how many it moved. Due times are wall-clock values
// that outlive the process: a clock that ran ahead when they were set and
// was corrected before this start would otherwise hold those files back by
// the size of the correction. Only when a retry is due changes (no state:
// no event); a daemon calls it at start.
func (j *Journal) CapDue(ctx context.Context, now time.Time) (int, error) {
	var n int64
	limit := now.Add(MaxDueAhead).UnixNano()
	err := j.do(ctx, func(t *Tx) error {
		res, err := t.exec(`UPDATE files SET next_attempt_at = ? WHERE state = ? AND next_attempt_at > ?`, limit, string(Queued), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// NextDue returns when the earliest queued file becomes due, and false when
// nothing is queued; files for the excluded targets do not count.
func (j *Journal) NextDue(ctx context.Context, exclude ...string) (time.Time, bool, error) {
	var at sql.NullInt64
	not, args := excludeTargets(exclude)
	if err := j.r.QueryRowContext(ctx, `SELECT MIN(next_attempt_at) FROM files WHERE state = ?`+not,
		append([]any{string(Queued)}, args...)...).Scan(&at); err != nil {
		return time.Time{}, false, err
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, at.Int64), true, nil
}

// Chunk is a chunk's hash as journaled.
type Chunk struct {
	Seq    int // 1-based
	Offset int64
	Size   int64
	SHA256 string
	ETag   string // the target's, when the chunk was sent before it was recorded
}

// RecordHashes records the whole file's SHA-256 and every chunk's hash, as
// read from the source, before the object they make is completed: a file
// sent whole or in parts on its first upload is hashed as it is read and
// sent (each byte read once), and recorded when every part was
// acknowledged; one whose hash must be known first (an earlier content
// landed, or a key taken) is recorded before any byte is sent. The target
// checks every chunk against its hash on receipt.
func (j *Journal) RecordHashes(ctx context.Context, jb *Job, sha string, chunks []Chunk) error {
	return j.do(ctx, func(t *Tx) error { return t.recordHashes(jb, sha, chunks) })
}

// recordHashes journals the chunks and the file's hash, and that ferry is
// about to send this content under the job's key. A stale job changes
// nothing (its first chunk is refused before anything is written).
func (t *Tx) recordHashes(jb *Job, sha string, chunks []Chunk) error {
	r, err := t.row(jb.ID)
	if err != nil {
		return err
	}
	if r.State != Uploading || r.Generation != jb.Generation {
		return ErrStale
	}
	return t.recordHashesOf(&r, jb, sha, chunks)
}

// recordHashesOf is recordHashes for the job's row r, as read in the
// transaction (uploading, at the job's generation).
func (t *Tx) recordHashesOf(rp *fileRow, jb *Job, sha string, chunks []Chunk) error {
	r := *rp
	// Chunks are recorded only here, with the file's hash (SetHash), and a
	// hash is cleared only by a new version (settled: a new generation).
	// So a row of the first generation without a hash has no chunks: the
	// first hashing of a new file (every small file) deletes nothing.
	if r.Generation != 1 || r.SHA256 != "" {
		if _, err := t.exec(`DELETE FROM chunks WHERE file_id = ?`, jb.ID); err != nil {
			return err
		}
	}
	r.CorrelationID = jb.CorrelationID
	// A file read as one chunk (every small file) is hashed in one event:
	// file_hashed says its one chunk is the whole file (whole=true), and
	// the replay counts that chunk from it.
	whole := len(chunks) == 1 && chunks[0].Seq == 1 && chunks[0].Offset == 0 && chunks[0].Size == r.Version.Size && chunks[0].SHA256 == sha
	for i := range chunks {
		c := &chunks[i]
		var etag any
		if c.ETag != "" {
			etag = c.ETag
		}
		if _, err := t.exec(`INSERT INTO chunks (file_id, generation, seq, offset, size, sha256, etag) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			jb.ID, jb.Generation, c.Seq, c.Offset, c.Size, c.SHA256, etag); err != nil {
			return err
		}
		if whole {
			break
		}
		if err := t.move(&r, &change{Kind: KindChunkHashed, Chunk: c}); err != nil {
			return err
		}
	}
	detail := fmt.Sprintf("chunks=%d", len(chunks))
	if whole {
		detail += " whole=true"
	}
	if err := t.move(&r, &change{Kind: KindFileHashed, SHA256: sha, Detail: detail}); err != nil {
		return err
	}
	return t.wrote(jb.ID, jb.Target, Landed{Key: jb.Key, SHA256: sha}, false)
}

// UploadIsCurrent reports whether the multipart upload the job carries was
// begun for the job's version: the file's last multipart_created event
// names it, and no event that starts a new version of the file (a row of
// the lifecycle table with NewGeneration) came after it. An upload kept
// from an earlier version (the file changed while it was sent, or while
// ferry was down) is not current, nor is one whose event the journal no
// longer holds (archived): it is aborted, not resumed.
func (j *Journal) UploadIsCurrent(ctx context.Context, jb *Job) (bool, error) {
	if jb.UploadID == "" {
		return false, nil
	}
	var seq int64
	var detail string
	err := j.r.QueryRowContext(ctx, `SELECT seq, detail FROM events WHERE file_id = ? AND kind = ? ORDER BY seq DESC LIMIT 1`,
		jb.ID, string(KindMultipartCreated)).Scan(&seq, &detail)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if id, _ := detailValue(detail, "upload_id"); id != jb.UploadID {
		return false, nil
	}
	var later int
	err = j.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM events WHERE seq > ? AND file_id = ? AND kind IN (`+newVersionKinds+`)`,
		seq, jb.ID).Scan(&later)
	return later == 0, err
}

// newVersionKinds lists, for SQL, the kinds of the lifecycle rules that
// start a new version of a file (NewGeneration).
var newVersionKinds = func() string {
	seen := map[Kind]bool{}
	var q []string
	for _, r := range lifecycle {
		if r.Sets&NewGeneration != 0 && !seen[r.Kind] {
			seen[r.Kind] = true
			q = append(q, "'"+string(r.Kind)+"'")
		}
	}
	sort.Strings(q)
	return strings.Join(q, ", ")
}()

// SetUploadID records a multipart upload's ID, before its first part is sent.
func (j *Journal) SetUploadID(ctx context.Context, jb *Job, uploadID string) error {
	return j.do(ctx, func(t *Tx) error { return t.jobMove(jb, &change{Kind: KindMultipartCreated, UploadID: uploadID}) })
}

// AckChunk journals that the target acknowledged a chunk, with its ETag.
func (j *Journal) AckChunk(ctx context.Context, jb *Job, seq int, etag string) error {
	return j.do(ctx, func(t *Tx) error {
		if _, err := t.exec(`UPDATE chunks SET etag = ? WHERE file_id = ? AND seq = ?`, etag, jb.ID, seq); err != nil {
			return err
		}
		return t.jobMove(jb, &change{Kind: KindChunkAcked, Chunk: &Chunk{Seq: seq}, Detail: "etag=" + etag})
	})
}

// ModifiedAfterUpload records that the file's new content (newSHA) differs
// from what it last put on the target (oldSHA), which on_change policy
// applies, and the key the new content goes to ("" when it is not sent).
func (j *Journal) ModifiedAfterUpload(ctx context.Context, jb *Job, oldSHA, newSHA, policy, key string) error {
	return j.do(ctx, func(t *Tx) error {
		err := t.jobMove(jb, &change{Kind: KindModifiedAfterUpload, SHA256: newSHA,
			Detail: fmt.Sprintf("old_sha256=%s new_sha256=%s on_change=%s", oldSHA, newSHA, policy)})
		if err != nil || key == "" {
			return err
		}
		return t.wrote(jb.ID, jb.Target, Landed{Key: key, SHA256: newSHA}, false)
	})
}

// WroteObject reports whether the row id sent (or put) content sha under
// key on target: an object ferry finds there is then its own.
func (j *Journal) WroteObject(ctx context.Context, id int64, target, key, sha string) (bool, error) {
	var n int
	err := j.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM objects WHERE file_id = ? AND target = ? AND object_key = ? AND sha256 = ?`,
		id, target, key, sha).Scan(&n)
	return n > 0, err
}

// errStaleCommit makes a job's end commit its supersession while reporting
// ErrStale: the writer keeps the changes of an op that fails with a
// *staleCommit.
var errStaleCommit = &staleCommit{}

type staleCommit struct{}

func (*staleCommit) Error() string { return ErrStale.Error() }
func (*staleCommit) Unwrap() error { return ErrStale }

// End is how a job ended: the kind of the event that ends it (a rule of
// the lifecycle table that leaves uploading) and its values.
type End struct {
	Kind   Kind
	SHA256 string // uploaded, ignored: the content's hash
	// Class and Reason: failed (class and reason); retry_scheduled,
	// source_changed, vanished (reason).
	Class, Reason string
	Due           time.Time // retry_scheduled: when it is due again
	// Landed is what the job put on the target before it ended, if
	// anything (for uploaded: where the content is). It is recorded
	// whatever the end, so that ferry always knows what it wrote.
	Landed *Landed
	Detail string // free text for the event
}

// Finish ends a job as e says and waits until that is durable. If the
// version moved on while the job ran, the row is queued for the new
// version (keeping what landed) and ErrStale returned.
func (j *Journal) Finish(ctx context.Context, jb *Job, e End) error {
	return <-j.finish(ctx, jb, e, false)
}

// FinishAsync is Finish without the wait: the returned channel receives
// the result once it is durable. Nothing may be done on the strength of
// the end (such as counting a file uploaded) before that. The writer may
// hold the end for up to Options.Linger to commit it with others.
func (j *Journal) FinishAsync(ctx context.Context, jb *Job, e End) <-chan error {
	return j.finish(ctx, jb, e, true)
}

func (j *Journal) finish(ctx context.Context, jb *Job, e End, lazy bool) <-chan error {
	rule, err := ruleFor(e.Kind, Uploading)
	if err == nil && !rule.Ends() {
		err = fmt.Errorf("%w: %s does not end a job", ErrTransition, e.Kind)
	}
	if err == nil && e.Kind == KindUploaded && e.Landed == nil {
		err = errors.New("journal: an uploaded end must say where the content landed")
	}
	if err != nil {
		ch := make(chan error, 1)
		ch <- err
		return ch
	}
	jb2 := *jb
	c := &change{Kind: e.Kind, SHA256: e.SHA256, Class: e.Class, Reason: e.Reason, Due: e.Due, Landed: e.Landed, Detail: e.Detail}
	fn := func(t *Tx) error { return t.jobMove(&jb2, c) }
	if lazy {
		return j.submitLazy(ctx, fn)
	}
	return j.submit(ctx, fn)
}

// Complete records the file version as uploaded and verified, under key
// (the job's key, or a versioned one).
func (j *Journal) Complete(ctx context.Context, jb *Job, sha, key string) error {
	return j.Finish(ctx, jb, End{Kind: KindUploaded, SHA256: sha, Landed: &Landed{Key: key, SHA256: sha}})
}

// Ignore leaves a version modified after upload alone (on_change =
// "ignore"): the target keeps the earlier content.
func (j *Journal) Ignore(ctx context.Context, jb *Job, sha string) error {
	return j.Finish(ctx, jb, End{Kind: KindIgnored, SHA256: sha, Detail: "on_change=ignore: the target keeps the earlier content"})
}

// Fail records a permanent failure: the file waits for a person.
func (j *Journal) Fail(ctx context.Context, jb *Job, class, reason string) error {
	return j.Finish(ctx, jb, End{Kind: KindFailed, Class: class, Reason: reason})
}

// Retry queues the file again, due at the given time, after a transient
// failure. Its multipart upload, if any, is kept for the next attempt.
func (j *Journal) Retry(ctx context.Context, jb *Job, reason string, at time.Time) error {
	return j.Finish(ctx, jb, End{Kind: KindRetryScheduled, Class: "transient", Reason: reason, Due: at})
}

// Release queues the file again without counting the attempt (shutdown).
func (j *Journal) Release(ctx context.Context, jb *Job) error {
	return j.Finish(ctx, jb, End{Kind: KindReleased, Detail: "stopped before completion"})
}

// SourceChanged records that the source file no longer matches the job's
// version: the file waits to settle again, and the watcher's next record of
// it queues the new version.
func (j *Journal) SourceChanged(ctx context.Context, jb *Job, reason string) error {
	return j.Finish(ctx, jb, End{Kind: KindSourceChanged, Reason: reason})
}

// Vanish records that the sources of waiting rows (queued or changed, by
// id) are gone: deleted or renamed before they could be uploaded. The
// reason says what was seen. It returns how many rows it moved (a row that
// moved on meanwhile is left alone).
func (j *Journal) Vanish(ctx context.Context, reason string, ids ...int64) (int, error) {
	var n int
	err := j.do(ctx, func(t *Tx) error {
		n = 0
		for _, id := range ids {
			r, err := t.row(id)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			} else if err != nil {
				return err
			}
			if _, err := ruleFor(KindVanished, r.State); err != nil || r.State == Uploading {
				continue
			}
			if err := t.move(&r, &change{Kind: KindVanished, Reason: reason}); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// FileRow is a file's row as reported by Files.
type FileRow struct {
	ID         int64
	Watch      string
	RelPath    string
	Target     string
	Key        string
	State      State
	Size       int64
	SHA256     string
	Attempts   int
	ErrorClass string
	Error      string
	// What the file last put on the target ("" if nothing).
	UploadedKey    string
	UploadedSHA256 string
	UpdatedAt      time.Time
}

func (r *fileRow) public() FileRow {
	return FileRow{ID: r.ID, Watch: r.Watch, RelPath: r.RelPath, Target: r.Target, Key: r.Key, State: r.State, Size: r.Version.Size,
		SHA256: r.SHA256, Attempts: r.Attempts, ErrorClass: r.ErrorClass, Error: r.Error, UploadedKey: r.UploadedKey,
		UploadedSHA256: r.UploadedSHA256, UpdatedAt: time.Unix(0, r.UpdatedAt).UTC()}
}

// readRows reads files rows from the read pool.
func (j *Journal) readRows(ctx context.Context, where string, args ...any) ([]FileRow, error) {
	rs, err := j.r.QueryContext(ctx, `SELECT `+rowCols+` FROM files `+where, args...)
	return collect(rs, err, func(sc scanner) (FileRow, error) {
		r, err := scanRow(sc)
		return r.public(), err
	})
}

// Files lists the journaled files, optionally only those in the given states.
func (j *Journal) Files(ctx context.Context, states ...State) ([]FileRow, error) {
	where := ""
	if len(states) > 0 {
		where = `WHERE ` + inStates(states...)
	}
	return j.readRows(ctx, where+` ORDER BY id`)
}

// Counts returns the number of files in each state.
func (j *Journal) Counts(ctx context.Context) (map[State]int, error) {
	m, err := j.countBy(ctx, `SELECT state, COUNT(*) FROM files GROUP BY state`)
	out := make(map[State]int, len(m))
	for k, n := range m {
		out[State(k)] = n
	}
	return out, err
}

// UploadIDs returns the multipart upload IDs the journal knows (files being
// or to be uploaded in parts), to tell them from orphans.
func (j *Journal) UploadIDs(ctx context.Context) (map[string]bool, error) {
	rs, err := j.r.QueryContext(ctx, `SELECT upload_id FROM files WHERE upload_id IS NOT NULL`)
	list, err := collect(rs, err, func(sc scanner) (string, error) {
		var id string
		return id, sc.Scan(&id)
	})
	ids := make(map[string]bool, len(list))
	for _, id := range list {
		ids[id] = true
	}
	return ids, err
}

// RecordFromTarget journals a file version from what the target holds, for
// rebuilding a lost or corrupt journal. When the object under the file's key
// has this very content (same), the version is recorded as uploaded. When it
// holds other content that ferry put there (targetSHA, from its sha256
// metadata), the version is queued as modified after that upload, so that
// its watch's on_change applies rather than a conflict.
func (j *Journal) RecordFromTarget(ctx context.Context, s Settled, targetSHA string, same bool, why string) error {
	return j.do(ctx, func(t *Tx) error {
		c := &change{Kind: KindRecordedModified, Settled: &s, Landed: &Landed{Key: s.Key, SHA256: targetSHA}, Detail: why}
		if same {
			c.Kind, c.SHA256 = KindRecordedUploaded, targetSHA
		}
		return t.move(&fileRow{File: File{Watch: s.Watch, RelPath: s.RelPath}}, c)
	})
}

// DeadLetter is a file that failed permanently, for a person to look at.
type DeadLetter struct {
	ID         int64     `json:"id"`
	Watch      string    `json:"watch"`
	RelPath    string    `json:"path"`
	Target     string    `json:"target"`
	Key        string    `json:"key"`
	Size       int64     `json:"size"`
	ErrorClass string    `json:"error_class"`
	Error      string    `json:"error"`
	Attempts   int       `json:"attempts"`
	FailedAt   time.Time `json:"failed_at"`
}

// DeadLetters lists the failed files, oldest failure first.
func (j *Journal) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	var out []DeadLetter
	err := j.EachDeadLetter(ctx, func(d DeadLetter) error { out = append(out, d); return nil })
	return out, err
}

// EachDeadLetter calls fn for each failed file, oldest failure first,
// streaming: memory does not grow with their number.
func (j *Journal) EachDeadLetter(ctx context.Context, fn func(DeadLetter) error) error {
	return j.deadLetters(ctx, `ORDER BY updated_at, id`, fn)
}

// RecentDeadLetters lists the newest n failed files, newest first.
func (j *Journal) RecentDeadLetters(ctx context.Context, n int) ([]DeadLetter, error) {
	var out []DeadLetter
	err := j.deadLetters(ctx, `ORDER BY updated_at DESC, id DESC LIMIT `+strconv.Itoa(max(n, 0)), func(d DeadLetter) error { out = append(out, d); return nil })
	return out, err
}

// CountDeadLetters is the number of failed files.
func (j *Journal) CountDeadLetters(ctx context.Context) (int, error) {
	var n int
	err := j.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM files WHERE state = ?`, string(Failed)).Scan(&n)
	return n, err
}

func (j *Journal) deadLetters(ctx context.Context, order string, fn func(DeadLetter) error) error {
	rs, err := j.r.QueryContext(ctx, `SELECT `+rowCols+` FROM files WHERE state = ? `+order, string(Failed))
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		row, err := scanRow(rs)
		if err != nil {
			return err
		}
		r := row.public()
		d := DeadLetter{ID: r.ID, Watch: r.Watch, RelPath: r.RelPath, Target: r.Target, Key: r.Key, Size: r.Size,
			ErrorClass: r.ErrorClass, Error: r.Error, Attempts: r.Attempts, FailedAt: r.UpdatedAt}
		if err := fn(d); err != nil {
			return err
		}
	}
	return rs.Err()
}

// ErrNotDeadLetter is returned for an id that is not a failed file.
var ErrNotDeadLetter = errors.New("not a dead letter (no failed file with that id)")

// ErrNoSuchFile is returned for an id that no files row has.
var ErrNoSuchFile = errors.New("no file with that id")

// RetryDeadLetters queues failed files again, as new (attempts reset): the
// given ids, or every failed file when ids is empty. It returns how many.
func (j *Journal) RetryDeadLetters(ctx context.Context, ids ...int64) (int, error) {
	return j.byPerson(ctx, KindDLQRetry, ids)
}

// DropDeadLetters marks files dropped: they are not uploaded, and not
// taken again unless they change; the source files are left alone. With
// ids, any file whose state allows it (queued, failed, changed, ignored,
// vanished: not one being uploaded or already uploaded); without, every
// failed file. It returns how many.
func (j *Journal) DropDeadLetters(ctx context.Context, ids ...int64) (int, error) {
	return j.byPerson(ctx, KindDLQDrop, ids)
}

// byPerson applies a person's change (dlq retry or drop) to the rows ids,
// or to every failed row when ids is empty. A row the change does not
// apply to fails the whole command: nothing is changed.
func (j *Journal) byPerson(ctx context.Context, kind Kind, ids []int64) (int, error) {
	var n int
	err := j.do(ctx, func(t *Tx) error {
		n = 0
		var rs []fileRow
		if len(ids) == 0 {
			var err error
			if rs, err = t.rows(`state = ? ORDER BY id`, string(Failed)); err != nil {
				return err
			}
		}
		for _, id := range ids {
			r, err := t.row(id)
			if errors.Is(err, sql.ErrNoRows) && kind == KindDLQRetry {
				return fmt.Errorf("id %d: %w", id, ErrNotDeadLetter)
			} else if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("id %d: %w", id, ErrNoSuchFile)
			} else if err != nil {
				return err
			}
			if _, err := ruleFor(kind, r.State); err != nil {
				if kind == KindDLQRetry {
					return fmt.Errorf("id %d (%s, %s): %w", id, r.RelPath, r.State, ErrNotDeadLetter)
				}
				return fmt.Errorf("id %d (%s) is %s: %w", id, r.RelPath, r.State, err)
			}
			rs = append(rs, r)
		}
		for i := range rs {
			was := string(rs[i].State)
			if rs[i].ErrorClass != "" {
				was = rs[i].ErrorClass
			}
			if err := t.move(&rs[i], &change{Kind: kind, Detail: "was " + was}); err != nil {
				return err
			}
		}
		n = len(rs)
		return nil
	})
	return n, err
}

// QueueStats summarises what waits to be uploaded.
type QueueStats struct {
	Files       int       // queued or being uploaded
	Bytes       int64     // their size
	DeadLetters int       // failed, waiting for a person
	Held        int       // held for their dataset's metadata
	Oldest      time.Time // when the longest-waiting of them settled (zero if none)
}

// Queue reports what waits to be uploaded, for metrics and status.
func (j *Journal) Queue(ctx context.Context) (QueueStats, error) {
	var q QueueStats
	var oldest sql.NullInt64
	err := j.r.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(settled_at) FROM files WHERE `+inStates(Queued, Uploading)).
		Scan(&q.Files, &q.Bytes, &oldest)
	if err != nil {
		return q, err
	}
	if oldest.Valid {
		q.Oldest = time.Unix(0, oldest.Int64)
	}
	err = j.r.QueryRowContext(ctx, `SELECT COUNT(CASE WHEN state = ? THEN 1 END), COUNT(CASE WHEN state = ? THEN 1 END) FROM files WHERE state IN (?, ?)`,
		string(Failed), string(Held), string(Failed), string(Held)).Scan(&q.DeadLetters, &q.Held)
	return q, err
}
