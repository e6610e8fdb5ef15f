package journal

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// State is where a file version stands.
type State string

// The states of a file version. A settled file is queued; the dispatcher
// claims it (uploading); it ends uploaded, or failed (permanently, for a
// person to look at), or changed (its source moved on under the upload and
// it waits to settle again).
const (
	Queued    State = "queued"
	Uploading State = "uploading"
	Uploaded  State = "uploaded"
	Failed    State = "failed"
	Changed   State = "changed"
	Ignored   State = "ignored" // modified after upload, left alone (on_change = "ignore")
	Dropped   State = "dropped" // a dead letter a person dropped (the source stays)
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
}

// Outcome says what RecordSettled did.
type Outcome int

// Outcomes of RecordSettled.
const (
	Unchanged Outcome = iota // the same version is already journaled
	Added                    // a new file, queued
	Requeued                 // a new version of a known file, queued
)

// Job is a claimed file version: the uploader's unit of work.
type Job struct {
	ID            int64
	Generation    int64
	Watch         string
	RelPath       string
	Target        string
	Key           string
	BatchID       string
	Version       Version
	Attempts      int // including this one
	CorrelationID string
	UploadID      string // a multipart upload left by an earlier attempt, "" if none
	SHA256        string // the file's hash as an earlier attempt journaled it, "" if none
	// UploadedSHA256 is the hash of what this path last put on the target,
	// "" if it never did: a new version then was "modified after upload".
	UploadedSHA256 string
}

// ErrStale is returned when a job's file version was superseded while it
// was being uploaded: the job's result must not be recorded as uploaded.
var ErrStale = errors.New("file version changed while it was being uploaded")

func newCorrelationID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Known reports whether this exact version of watch/rel is journaled, in
// any state. The watcher skips known versions on rescans.
func (j *Journal) Known(ctx context.Context, watch, rel string, v Version) (bool, error) {
	var n int
	err := j.known.QueryRowContext(ctx, watch, rel, v.Size, v.MtimeNS, v.FileID).Scan(&n)
	return n > 0, err
}

const knownQuery = `SELECT COUNT(*) FROM files WHERE watch = ? AND rel_path = ? AND size = ? AND mtime_ns = ? AND file_id = ?`

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
	out := Unchanged
	var id, gen int64
	var st State
	var v Version
	err := t.queryRow(`SELECT id, generation, state, size, mtime_ns, file_id FROM files WHERE watch = ? AND rel_path = ?`,
		s.Watch, s.RelPath).Scan(&id, &gen, &st, &v.Size, &v.MtimeNS, &v.FileID)
	now := t.now.UnixNano()
	switch {
	case errors.Is(err, sql.ErrNoRows):
		res, err := t.exec(`INSERT INTO files (watch, rel_path, target, object_key, batch_id, size, mtime_ns, file_id, state, signal, settled_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)`,
			s.Watch, s.RelPath, s.Target, s.Key, s.BatchID, s.Version.Size, s.Version.MtimeNS, s.Version.FileID, s.Signal, now, now)
		if err != nil {
			return out, err
		}
		if id, err = res.LastInsertId(); err != nil {
			return out, err
		}
		out = Added
	case err != nil:
		return out, err
	case v == s.Version:
		return out, nil
	default:
		next := Queued
		if st == Uploading {
			next = Uploading
		}
		if _, err := t.exec(`UPDATE files SET target = ?, object_key = ?, batch_id = ?, size = ?, mtime_ns = ?, file_id = ?,
			generation = generation + 1, state = ?, signal = ?, sha256 = NULL, attempts = 0, next_attempt_at = 0,
			error_class = NULL, error = NULL, settled_at = ?, updated_at = ?, uploaded_at = NULL WHERE id = ?`,
			s.Target, s.Key, s.BatchID, s.Version.Size, s.Version.MtimeNS, s.Version.FileID, next, s.Signal, now, now, id); err != nil {
			return out, err
		}
		out = Requeued
	}
	// The watch root leads the detail so that a replay of the events knows
	// the whole path (see replay.go).
	detail := watchDetail(s.Watch) + " signal=" + detailWord(s.Signal)
	if out == Requeued {
		detail += fmt.Sprintf(" previous_state=%s", st)
	}
	if err := t.event(Event{Kind: "settled", FileID: id, BatchID: s.BatchID, RelPath: s.RelPath, Size: s.Version.Size, Detail: detail}); err != nil {
		return out, err
	}
	if s.Invalid == "" {
		return out, nil
	}
	if _, err := t.exec(`UPDATE files SET state = 'failed', error_class = 'invalid_key', error = ? WHERE id = ?`, s.Invalid, id); err != nil {
		return out, err
	}
	return out, t.event(Event{Kind: "failed", FileID: id, BatchID: s.BatchID, RelPath: s.RelPath, Size: -1, Detail: "invalid_key: " + s.Invalid})
}

// Recover runs once at start, before the uploader. It puts every file left
// uploading by an earlier process back in the queue (keeping its upload ID
// so the next attempt can resume it) and returns how many. Failed files
// (dead letters) stay failed until a person retries or drops them.
func (j *Journal) Recover(ctx context.Context) (int, error) {
	var n int
	err := j.do(ctx, func(t *Tx) error {
		n = 0
		rows, err := t.query(`SELECT id, batch_id, rel_path FROM files WHERE state = 'uploading'`)
		if err != nil {
			return err
		}
		type row struct {
			id         int64
			batch, rel string
		}
		var rs []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.batch, &r.rel); err != nil {
				rows.Close()
				return err
			}
			rs = append(rs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range rs {
			if _, err := t.exec(`UPDATE files SET state = 'queued', next_attempt_at = 0, updated_at = ? WHERE id = ?`, t.now.UnixNano(), r.id); err != nil {
				return err
			}
			if err := t.event(Event{Kind: "interrupted", FileID: r.id, BatchID: r.batch, RelPath: r.rel, Size: -1, Detail: "uploading when the previous process stopped"}); err != nil {
				return err
			}
		}
		n = len(rs)
		return nil
	})
	return n, err
}

// Claim moves up to n queued files that are due (next_attempt_at <= now),
// oldest first, to uploading and returns them as jobs; files for the
// excluded targets are left queued.
func (j *Journal) Claim(ctx context.Context, n int, exclude ...string) ([]Job, error) {
	var jobs []Job
	q := `SELECT id, generation, watch, rel_path, target, object_key, batch_id, size, mtime_ns, file_id, attempts, COALESCE(upload_id, ''), COALESCE(sha256, ''), COALESCE(uploaded_sha256, '')
			FROM files WHERE state = 'queued' AND next_attempt_at <= ?`
	args := []any{nil}
	if len(exclude) > 0 {
		// Targets not taking uploads now (circuit breaker open).
		q += ` AND target NOT IN (?` + strings.Repeat(",?", len(exclude)-1) + `)`
		for _, t := range exclude {
			args = append(args, t)
		}
	}
	q += ` ORDER BY next_attempt_at, id LIMIT ?`
	args = append(args, n)
	err := j.do(ctx, func(t *Tx) error {
		jobs = jobs[:0]
		args[0] = t.now.UnixNano()
		rows, err := t.query(q, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var jb Job
			if err := rows.Scan(&jb.ID, &jb.Generation, &jb.Watch, &jb.RelPath, &jb.Target, &jb.Key, &jb.BatchID,
				&jb.Version.Size, &jb.Version.MtimeNS, &jb.Version.FileID, &jb.Attempts, &jb.UploadID, &jb.SHA256, &jb.UploadedSHA256); err != nil {
				rows.Close()
				return err
			}
			jobs = append(jobs, jb)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range jobs {
			jb := &jobs[i]
			jb.Attempts++
			jb.CorrelationID = newCorrelationID()
			if _, err := t.exec(`UPDATE files SET state = 'uploading', attempts = ?, correlation_id = ?, updated_at = ? WHERE id = ?`,
				jb.Attempts, jb.CorrelationID, t.now.UnixNano(), jb.ID); err != nil {
				return err
			}
			if err := t.event(Event{Kind: "claimed", FileID: jb.ID, CorrelationID: jb.CorrelationID, BatchID: jb.BatchID,
				RelPath: jb.RelPath, Size: jb.Version.Size, Detail: fmt.Sprintf("attempt=%d", jb.Attempts)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return jobs, nil
}

// NextDue returns when the earliest queued file becomes due, and false when
// nothing is queued; files for the excluded targets do not count.
func (j *Journal) NextDue(ctx context.Context, exclude ...string) (time.Time, bool, error) {
	var at sql.NullInt64
	q := `SELECT MIN(next_attempt_at) FROM files WHERE state = 'queued'`
	var args []any
	if len(exclude) > 0 {
		q += ` AND target NOT IN (?` + strings.Repeat(",?", len(exclude)-1) + `)`
		for _, t := range exclude {
			args = append(args, t)
		}
	}
	if err := j.r.QueryRowContext(ctx, q, args...).Scan(&at); err != nil {
		return time.Time{}, false, err
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, at.Int64), true, nil
}

// Chunk is a chunk's hash as journaled before it is sent.
type Chunk struct {
	Seq    int // 1-based
	Offset int64
	Size   int64
	SHA256 string
}

// check asserts that the job still owns its row: same generation, uploading.
func (t *Tx) owns(jb *Job) error {
	var gen int64
	var st State
	if err := t.queryRow(`SELECT generation, state FROM files WHERE id = ?`, jb.ID).Scan(&gen, &st); err != nil {
		return err
	}
	if gen != jb.Generation || st != Uploading {
		return ErrStale
	}
	return nil
}

// RecordHashes records, before any byte is sent, the whole file's SHA-256
// and every chunk's hash, as read from the source. The target is later sent
// these same hashes with each chunk and verifies them on receipt.
func (j *Journal) RecordHashes(ctx context.Context, jb *Job, sha string, chunks []Chunk) error {
	return j.do(ctx, func(t *Tx) error {
		if err := t.owns(jb); err != nil {
			return err
		}
		return t.recordHashes(jb, sha, chunks)
	})
}

// Hashes is one file's entry for RecordHashesBatch.
type Hashes struct {
	Job    *Job
	SHA256 string
	Chunks []Chunk
}

// RecordHashesBatch records the hashes of several files in one transition.
// A file whose version moved on gets ErrStale in its slot of the returned
// slice and nothing recorded; the error result is for the batch as a whole.
func (j *Journal) RecordHashesBatch(ctx context.Context, hs []Hashes) ([]error, error) {
	errs := make([]error, len(hs))
	err := j.do(ctx, func(t *Tx) error {
		for i, h := range hs {
			errs[i] = nil
			if err := t.owns(h.Job); errors.Is(err, ErrStale) {
				errs[i] = err
				continue
			} else if err != nil {
				return err
			}
			if err := t.recordHashes(h.Job, h.SHA256, h.Chunks); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

func (t *Tx) recordHashes(jb *Job, sha string, chunks []Chunk) error {
	if _, err := t.exec(`UPDATE files SET sha256 = ?, updated_at = ? WHERE id = ?`, sha, t.now.UnixNano(), jb.ID); err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM chunks WHERE file_id = ?`, jb.ID); err != nil {
		return err
	}
	for _, c := range chunks {
		if _, err := t.exec(`INSERT INTO chunks (file_id, generation, seq, offset, size, sha256) VALUES (?, ?, ?, ?, ?, ?)`,
			jb.ID, jb.Generation, c.Seq, c.Offset, c.Size, c.SHA256); err != nil {
			return err
		}
		if err := t.event(Event{Kind: "chunk_hashed", FileID: jb.ID, CorrelationID: jb.CorrelationID, BatchID: jb.BatchID,
			ChunkSequence: c.Seq, RelPath: jb.RelPath, Size: c.Size, SHA256: c.SHA256, Detail: fmt.Sprintf("offset=%d", c.Offset)}); err != nil {
			return err
		}
	}
	return t.event(Event{Kind: "file_hashed", FileID: jb.ID, CorrelationID: jb.CorrelationID, BatchID: jb.BatchID,
		RelPath: jb.RelPath, Size: jb.Version.Size, SHA256: sha, Detail: fmt.Sprintf("chunks=%d", len(chunks))})
}

// SetUploadID records a multipart upload's ID, before its first part is sent.
func (j *Journal) SetUploadID(ctx context.Context, jb *Job, uploadID string) error {
	return j.do(ctx, func(t *Tx) error {
		if err := t.owns(jb); err != nil {
			return err
		}
		if _, err := t.exec(`UPDATE files SET upload_id = ?, updated_at = ? WHERE id = ?`, uploadID, t.now.UnixNano(), jb.ID); err != nil {
			return err
		}
		return t.event(Event{Kind: "multipart_created", FileID: jb.ID, CorrelationID: jb.CorrelationID, BatchID: jb.BatchID,
			RelPath: jb.RelPath, Size: -1, Detail: "upload_id=" + uploadID})
	})
}

// AckChunk journals that the target acknowledged a chunk, with its ETag.
func (j *Journal) AckChunk(ctx context.Context, jb *Job, seq int, etag string) error {
	return j.do(ctx, func(t *Tx) error {
		if err := t.owns(jb); err != nil {
			return err
		}
		if _, err := t.exec(`UPDATE chunks SET etag = ? WHERE file_id = ? AND seq = ?`, etag, jb.ID, seq); err != nil {
			return err
		}
		return t.event(Event{Kind: "chunk_acked", FileID: jb.ID, CorrelationID: jb.CorrelationID, BatchID: jb.BatchID,
			ChunkSequence: seq, RelPath: jb.RelPath, Size: -1, Detail: "etag=" + etag})
	})
}

// finish ends a job's ownership of its row. If the version moved on while
// the job ran, the row is queued for the new version and ErrStale returned.
func (j *Journal) finish(ctx context.Context, jb *Job, apply func(t *Tx) error) error {
	return <-j.finishAsync(ctx, jb, apply)
}

func (j *Journal) finishAsync(ctx context.Context, jb *Job, apply func(t *Tx) error) <-chan error {
	return j.submit(ctx, func(t *Tx) error {
		var gen int64
		var st State
		if err := t.queryRow(`SELECT generation, state FROM files WHERE id = ?`, jb.ID).Scan(&gen, &st); err != nil {
			return err
		}
		if st != Uploading {
			return ErrStale
		}
		if gen != jb.Generation {
			if _, err := t.exec(`UPDATE files SET state = 'queued', upload_id = NULL, updated_at = ? WHERE id = ?`, t.now.UnixNano(), jb.ID); err != nil {
				return err
			}
			if err := t.event(Event{Kind: "superseded", FileID: jb.ID, CorrelationID: jb.CorrelationID, BatchID: jb.BatchID,
				RelPath: jb.RelPath, Size: -1, Detail: "a newer version settled during the upload"}); err != nil {
				return err
			}
			return errStaleCommit
		}
		return apply(t)
	})
}

// errStaleCommit makes finish commit its requeue while reporting ErrStale:
// the writer keeps the changes of an op that fails with a *staleCommit.
var errStaleCommit = &staleCommit{}

type staleCommit struct{}

func (*staleCommit) Error() string { return ErrStale.Error() }
func (*staleCommit) Unwrap() error { return ErrStale }

// Complete records the file version as uploaded and verified, under key
// (the job's key, or a versioned one).
func (j *Journal) Complete(ctx context.Context, jb *Job, sha, key string) error {
	return <-j.CompleteAsync(ctx, jb, sha, key)
}

// CompleteAsync is Complete without the wait: the returned channel receives
// the result once it is durable. Nothing may be done on the strength of the
// file being uploaded (such as a post-upload action) before that.
func (j *Journal) CompleteAsync(ctx context.Context, jb *Job, sha, key string) <-chan error {
	jb2 := *jb
	return j.finishAsync(ctx, &jb2, func(t *Tx) error {
		if _, err := t.exec(`UPDATE files SET state = 'uploaded', sha256 = ?, uploaded_sha256 = ?, upload_id = NULL, error_class = NULL, error = NULL,
			uploaded_at = ?, updated_at = ? WHERE id = ?`, sha, sha, t.now.UnixNano(), t.now.UnixNano(), jb2.ID); err != nil {
			return err
		}
		var waiting bool
		if err := t.queryRow(`SELECT EXISTS (SELECT 1 FROM files WHERE batch_id = ? AND state IN ('queued', 'uploading', 'changed'))`,
			jb2.BatchID).Scan(&waiting); err != nil {
			return err
		}
		if !waiting {
			t.onCommit = append(t.onCommit, j.nudgeBatch)
		}
		return t.event(Event{Kind: "uploaded", FileID: jb2.ID, CorrelationID: jb2.CorrelationID, BatchID: jb2.BatchID,
			RelPath: jb2.RelPath, Size: jb2.Version.Size, SHA256: sha, Detail: "key=" + key})
	})
}

// ModifiedAfterUpload records that the file's new content (newSHA) differs
// from what it last put on the target (oldSHA), and which on_change policy
// applies.
func (j *Journal) ModifiedAfterUpload(ctx context.Context, jb *Job, oldSHA, newSHA, policy string) error {
	return j.do(ctx, func(t *Tx) error {
		if err := t.owns(jb); err != nil {
			return err
		}
		return t.event(Event{Kind: "modified_after_upload", FileID: jb.ID, CorrelationID: jb.CorrelationID, BatchID: jb.BatchID,
			RelPath: jb.RelPath, Size: jb.Version.Size, SHA256: newSHA, Detail: fmt.Sprintf("old_sha256=%s new_sha256=%s on_change=%s", oldSHA, newSHA, policy)})
	})
}

// Ignore leaves a version modified after upload alone (on_change =
// "ignore"): the target keeps the earlier content.
func (j *Journal) Ignore(ctx context.Context, jb *Job, sha string) error {
	return j.finish(ctx, jb, func(t *Tx) error {
		if _, err := t.exec(`UPDATE files SET state = 'ignored', sha256 = ?, upload_id = NULL, error_class = NULL, error = NULL, updated_at = ? WHERE id = ?`,
			sha, t.now.UnixNano(), jb.ID); err != nil {
			return err
		}
		return t.event(Event{Kind: "ignored", FileID: jb.ID, CorrelationID: jb.CorrelationID, BatchID: jb.BatchID,
			RelPath: jb.RelPath, Size: jb.Version.Size, SHA256: sha, Detail: "on_change=ignore: the target keeps the earlier content"})
	})
}

// Fail records a permanent failure: the file waits for a person.
func (j *Journal) Fail(ctx context.Context, jb *Job, class, reason string) error {
	return j.finish(ctx, jb, func(t *Tx) error {
		if _, err := t.exec(`UPDATE files SET state = 'failed', upload_id = NULL, error_class = ?, error = ?, updated_at = ? WHERE id = ?`,
			class, reason, t.now.UnixNano(), jb.ID); err != nil {
			return err
		}
		return t.event(Event{Kind: "failed", FileID: jb.ID, CorrelationID: jb.CorrelationID, BatchID: jb.BatchID,
			RelPath: jb.RelPath, Size: -1, Detail: class + ": " + reason})
	})
}

// Retry queues the file again, due at the given time, after a transient
// failure. Its multipart upload, if any, is kept for the next attempt.
func (j *Journal) Retry(ctx context.Context, jb *Job, reason string, at time.Time) error {
	return j.finish(ctx, jb, func(t *Tx) error {
		if _, err := t.exec(`UPDATE files SET state = 'queued', next_attempt_at = ?, error_class = 'transient', error = ?, updated_at = ? WHERE id = ?`,
			at.UnixNano(), reason, t.now.UnixNano(), jb.ID); err != nil {
			return err
		}
		return t.event(Event{Kind: "retry_scheduled", FileID: jb.ID, CorrelationID: jb.CorrelationID, BatchID: jb.BatchID,
			RelPath: jb.RelPath, Size: -1, Detail: fmt.Sprintf("at=%s reason=%s", at.UTC().Format(time.RFC3339), reason)})
	})
}

// Release queues the file again without counting the attempt (shutdown).
func (j *Journal) Release(ctx context.Context, jb *Job) error {
	return j.finish(ctx, jb, func(t *Tx) error {
		if _, err := t.exec(`UPDATE files SET state = 'queued', attempts = MAX(attempts - 1, 0), next_attempt_at = 0, updated_at = ? WHERE id = ?`,
			t.now.UnixNano(), jb.ID); err != nil {
			return err
		}
		return t.event(Event{Kind: "released", FileID: jb.ID, CorrelationID: jb.CorrelationID, BatchID: jb.BatchID,
			RelPath: jb.RelPath, Size: -1, Detail: "stopped before completion"})
	})
}

// SourceChanged records that the source file no longer matches the job's
// version: the file waits to settle again, and the watcher's next record of
// it queues the new version.
func (j *Journal) SourceChanged(ctx context.Context, jb *Job, reason string) error {
	return j.finish(ctx, jb, func(t *Tx) error {
		if _, err := t.exec(`UPDATE files SET state = 'changed', upload_id = NULL, error_class = NULL, error = ?, updated_at = ? WHERE id = ?`,
			reason, t.now.UnixNano(), jb.ID); err != nil {
			return err
		}
		return t.event(Event{Kind: "source_changed", FileID: jb.ID, CorrelationID: jb.CorrelationID, BatchID: jb.BatchID,
			RelPath: jb.RelPath, Size: -1, Detail: reason})
	})
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
}

// Files lists the journaled files, optionally only those in the given states.
func (j *Journal) Files(ctx context.Context, states ...State) ([]FileRow, error) {
	q := `SELECT id, watch, rel_path, target, object_key, state, size, COALESCE(sha256, ''), attempts, COALESCE(error_class, ''), COALESCE(error, '') FROM files`
	var args []any
	if len(states) > 0 {
		q += ` WHERE state IN (?` + strings.Repeat(",?", len(states)-1) + `)`
		for _, s := range states {
			args = append(args, string(s))
		}
	}
	rows, err := j.r.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FileRow
	for rows.Next() {
		var f FileRow
		if err := rows.Scan(&f.ID, &f.Watch, &f.RelPath, &f.Target, &f.Key, &f.State, &f.Size, &f.SHA256, &f.Attempts, &f.ErrorClass, &f.Error); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// Counts returns the number of files in each state.
func (j *Journal) Counts(ctx context.Context) (map[State]int, error) {
	rows, err := j.r.QueryContext(ctx, `SELECT state, COUNT(*) FROM files GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[State]int{}
	for rows.Next() {
		var s State
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		m[s] = n
	}
	return m, rows.Err()
}

// UploadIDs returns the multipart upload IDs the journal knows (files being
// or to be uploaded in parts), to tell them from orphans.
func (j *Journal) UploadIDs(ctx context.Context) (map[string]bool, error) {
	rows, err := j.r.QueryContext(ctx, `SELECT upload_id FROM files WHERE upload_id IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

// RecordFromTarget journals a file version from what the target holds, for
// rebuilding a lost or corrupt journal. When the object under the file's key
// has this very content (same), the version is recorded as uploaded. When it
// holds other content that ferry put there (targetSHA, from its sha256
// metadata), the version is queued as modified after that upload, so that
// its watch's on_change applies rather than a conflict.
func (j *Journal) RecordFromTarget(ctx context.Context, s Settled, targetSHA string, same bool, why string) error {
	return j.do(ctx, func(t *Tx) error {
		now := t.now.UnixNano()
		state, kind, uploadedAt := "queued", "recorded_modified", any(nil)
		if same {
			state, kind, uploadedAt = "uploaded", "recorded_uploaded", now
		}
		var sha any
		if same {
			sha = targetSHA
		}
		res, err := t.exec(`INSERT INTO files (watch, rel_path, target, object_key, batch_id, size, mtime_ns, file_id, state, signal, sha256, uploaded_sha256, settled_at, updated_at, uploaded_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.Watch, s.RelPath, s.Target, s.Key, s.BatchID, s.Version.Size, s.Version.MtimeNS, s.Version.FileID, state, s.Signal, sha, targetSHA, now, now, uploadedAt)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		return t.event(Event{Kind: kind, FileID: id, BatchID: s.BatchID, RelPath: s.RelPath, Size: s.Version.Size, SHA256: targetSHA,
			Detail: watchDetail(s.Watch) + " " + why})
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
	rows, err := j.r.QueryContext(ctx, `SELECT id, watch, rel_path, target, object_key, size, COALESCE(error_class, ''), COALESCE(error, ''), attempts, updated_at
		FROM files WHERE state = 'failed' ORDER BY updated_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		var d DeadLetter
		var at int64
		if err := rows.Scan(&d.ID, &d.Watch, &d.RelPath, &d.Target, &d.Key, &d.Size, &d.ErrorClass, &d.Error, &d.Attempts, &at); err != nil {
			return nil, err
		}
		d.FailedAt = time.Unix(0, at).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

// ErrNotDeadLetter is returned for an id that is not a failed file.
var ErrNotDeadLetter = errors.New("not a dead letter (no failed file with that id)")

// RetryDeadLetters queues failed files again, as new (attempts reset): the
// given ids, or every failed file when ids is empty. It returns how many.
func (j *Journal) RetryDeadLetters(ctx context.Context, ids ...int64) (int, error) {
	return j.dead(ctx, ids, "dlq_retry", `UPDATE files SET state = 'queued', attempts = 0, next_attempt_at = 0, error_class = NULL, error = NULL, updated_at = ? WHERE id = ?`)
}

// DropDeadLetters marks failed files dropped: they are not uploaded, and not
// taken again unless they change; the source files are left alone.
func (j *Journal) DropDeadLetters(ctx context.Context, ids ...int64) (int, error) {
	return j.dead(ctx, ids, "dlq_drop", `UPDATE files SET state = 'dropped', upload_id = NULL, updated_at = ? WHERE id = ?`)
}

func (j *Journal) dead(ctx context.Context, ids []int64, kind, update string) (int, error) {
	var n int
	err := j.do(ctx, func(t *Tx) error {
		n = 0
		var rows []DeadLetter
		sel := `SELECT id, batch_id, rel_path, COALESCE(error_class, '') FROM files WHERE state = 'failed'`
		var args []any
		if len(ids) > 0 {
			sel += ` AND id IN (?` + strings.Repeat(",?", len(ids)-1) + `)`
			for _, id := range ids {
				args = append(args, id)
			}
		}
		rs, err := t.query(sel, args...)
		if err != nil {
			return err
		}
		batch := map[int64]string{}
		for rs.Next() {
			var d DeadLetter
			var b string
			if err := rs.Scan(&d.ID, &b, &d.RelPath, &d.ErrorClass); err != nil {
				rs.Close()
				return err
			}
			batch[d.ID] = b
			rows = append(rows, d)
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return err
		}
		if len(ids) > 0 && len(rows) != len(ids) {
			found := map[int64]bool{}
			for _, d := range rows {
				found[d.ID] = true
			}
			for _, id := range ids {
				if !found[id] {
					return fmt.Errorf("id %d: %w", id, ErrNotDeadLetter)
				}
			}
		}
		for _, d := range rows {
			if _, err := t.exec(update, t.now.UnixNano(), d.ID); err != nil {
				return err
			}
			if err := t.event(Event{Kind: kind, FileID: d.ID, BatchID: batch[d.ID], RelPath: d.RelPath, Size: -1, Detail: "was " + d.ErrorClass}); err != nil {
				return err
			}
		}
		n = len(rows)
		return nil
	})
	return n, err
}

// QueueStats summarises what waits to be uploaded.
type QueueStats struct {
	Files       int       // queued or being uploaded
	Bytes       int64     // their size
	DeadLetters int       // failed, waiting for a person
	Oldest      time.Time // when the longest-waiting of them settled (zero if none)
}

// Queue reports what waits to be uploaded, for metrics and status.
func (j *Journal) Queue(ctx context.Context) (QueueStats, error) {
	var q QueueStats
	var oldest sql.NullInt64
	err := j.r.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(settled_at) FROM files WHERE state IN ('queued', 'uploading')`).
		Scan(&q.Files, &q.Bytes, &oldest)
	if err != nil {
		return q, err
	}
	if oldest.Valid {
		q.Oldest = time.Unix(0, oldest.Int64)
	}
	err = j.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM files WHERE state = 'failed'`).Scan(&q.DeadLetters)
	return q, err
}
