package journal

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Retention. `ferry journal archive --before T` moves a prefix of the
// chain (seq 1..N, every event older than T) to a JSONL file and deletes
// it from the live table, in one transaction that also appends:
//
//   - an archived event: first_seq, last_seq, last_hash (the hash of event
//     N, which is event N+1's prev_hash), the archive file's SHA-256 (in
//     the sha256 column), base name and event count, and how many
//     file_state events follow;
//   - one file_state event per file: its replayed state at seq N (the
//     base a replay of the live chain starts from).
//
// The live chain then starts at N+1; verify checks that its prev_hash is
// the last_hash an archived event recorded for seq N. The archive file is
// a range export and verifies on its own. A transaction is never split:
// all events of one transaction share its time, so "older than T" cuts
// between transactions, and no file's state is lost (pending files go on
// from their file_state). The events triggers stay as 0001_init.sql made
// them: events_no_delete is dropped and recreated inside the transaction.

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

const eventColumns = `seq, time, kind, COALESCE(file_id, 0), correlation_id, batch_id, COALESCE(chunk_sequence, 0), schema_version, validation_status, rel_path,
		COALESCE(size, -1), sha256, detail, prev_hash, hash`

// scanEvents streams the events matching where (may be ""), in seq order.
func scanEvents(ctx context.Context, q querier, where string, args []any, fn func(Event) error) error {
	s := `SELECT ` + eventColumns + ` FROM events`
	if where != "" {
		s += ` WHERE ` + where
	}
	return queryEvents(ctx, q, s+` ORDER BY seq`, args, fn)
}

// queryEvents streams the events a query selects (eventColumns), in the
// query's order.
func queryEvents(ctx context.Context, q querier, query string, args []any, fn func(Event) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil && strings.Contains(err.Error(), "no such column: schema_version") {
		// A journal opened read-only before migration 0007: its events
		// have no metadata stamps.
		rows, err = q.QueryContext(ctx, strings.Replace(query, "schema_version, validation_status,", "'', '',", 1), args...)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var ts string
		if err := rows.Scan(&e.Seq, &ts, &e.Kind, &e.FileID, &e.CorrelationID, &e.BatchID, &e.ChunkSequence, &e.SchemaVersion, &e.ValidationStatus, &e.RelPath, &e.Size, &e.SHA256, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return err
		}
		if e.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return fmt.Errorf("seq %d: bad time %q", e.Seq, ts)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// LiveVerifier returns a verifier for the live chain: from the genesis,
// or, after an archive, from the last_hash that the archived event
// recorded for the seq before the first live event. A chain that starts
// later than any archive accounts for gets a *ChainError.
func (j *Journal) LiveVerifier(ctx context.Context) (*ChainVerifier, error) {
	var first sql.NullInt64
	if err := j.r.QueryRowContext(ctx, `SELECT MIN(seq) FROM events`).Scan(&first); err != nil {
		return nil, err
	}
	if !first.Valid || first.Int64 == 1 {
		return NewChainVerifier(), nil
	}
	var anchor *ArchivePoint
	err := scanEvents(ctx, j.r, `kind = ?`, []any{KindArchived}, func(e Event) error {
		a, err := ParseArchivePoint(e)
		if err != nil {
			return err
		}
		if a.LastSeq == first.Int64-1 {
			anchor = &a
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if anchor == nil {
		return nil, &ChainError{first.Int64, fmt.Sprintf("the chain starts at seq %d and no archived event accounts for seq %d and before (events were deleted)", first.Int64, first.Int64-1)}
	}
	return &ChainVerifier{link{prev: anchor.LastHash, want: first.Int64}}, nil
}

// Replay replays the live chain up to until (zero: all of it).
func (j *Journal) Replay(ctx context.Context, until time.Time) (*Replay, error) {
	return ReplayEvents(func(fn func(Event) error) error { return scanEvents(ctx, j.r, "", nil, fn) }, until)
}

// Mismatch is a difference between the files table and the replay.
type Mismatch struct {
	FileID  int64
	Path    string
	Field   string
	Table   string // "" when the table has no row
	Replay  string // "" when the events made no file
	LastSeq int64  // the last event about the file (0 if none)
}

func (m Mismatch) String() string {
	show := func(s string) string {
		if s == "" {
			return `""`
		}
		return s
	}
	if m.FileID == 0 { // a dataset
		switch {
		case m.Field == "row" && m.Replay == "":
			return fmt.Sprintf("%s: in the datasets table, but no event opened it", m.Path)
		case m.Field == "row":
			return fmt.Sprintf("%s: the events made it (last event seq %d), the datasets table has no row", m.Path, m.LastSeq)
		}
		return fmt.Sprintf("%s: %s: the table says %s, the replay of the events says %s (last event seq %d)", m.Path, m.Field, show(m.Table), show(m.Replay), m.LastSeq)
	}
	switch {
	case m.Field == "row" && m.Replay == "":
		return fmt.Sprintf("file %s (id %d): in the files table, but no event created it", m.Path, m.FileID)
	case m.Field == "row":
		return fmt.Sprintf("file %s (id %d): the events made it (last event seq %d), the files table has no row", m.Path, m.FileID, m.LastSeq)
	}
	return fmt.Sprintf("file %s (id %d): %s: the table says %s, the replay of the events says %s (last event seq %d)",
		m.Path, m.FileID, m.Field, show(m.Table), show(m.Replay), m.LastSeq)
}

// verifyDatasets compares the datasets table with the replayed datasets.
// A dataset whose events all went to an archive is not in the replay (the
// archive's base carries file states only): the table alone knows it.
func verifyDatasets(ctx context.Context, tx *sql.Tx, r *Replay) ([]Mismatch, error) {
	rows, err := tx.QueryContext(ctx, `SELECT watch, rel_path, state FROM datasets`)
	if noDatasets(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	replayed := map[string]*DatasetReplay{}
	for _, d := range r.Datasets() {
		replayed[d.Watch+"\x00"+d.RelPath] = d
	}
	var out []Mismatch
	for rows.Next() {
		var watch, rel, state string
		if err := rows.Scan(&watch, &rel, &state); err != nil {
			return nil, err
		}
		path := "dataset " + strings.TrimSuffix(watch, "/") + "/" + rel
		d := replayed[watch+"\x00"+rel]
		delete(replayed, watch+"\x00"+rel)
		switch {
		case d == nil && r.Base() == nil:
			out = append(out, Mismatch{Path: path, Field: "row", Table: state})
		case d != nil && string(d.State) != state:
			out = append(out, Mismatch{Path: path, Field: "state", Table: state, Replay: string(d.State), LastSeq: d.LastSeq})
		}
	}
	for _, d := range replayed {
		out = append(out, Mismatch{Path: "dataset " + strings.TrimSuffix(d.Watch, "/") + "/" + d.RelPath, Field: "row", Replay: string(d.State), LastSeq: d.LastSeq})
	}
	return out, rows.Err()
}

// ArchivePlan is an archive written but not yet committed. Its file
// states wait in a spool file beside the journal (one line per file), so
// that memory does not grow with the number of files: Close removes it
// (CommitArchive does).
type ArchivePlan struct {
	Point ArchivePoint // without SHA256 and Name, which the caller sets
	spool *os.File
}

// Close removes the plan's spool.
func (p *ArchivePlan) Close() error {
	if p == nil || p.spool == nil {
		return nil
	}
	err := p.spool.Close()
	os.Remove(p.spool.Name())
	p.spool = nil
	return err
}

// ErrNothingToArchive is returned when no event is older than the cut.
var ErrNothingToArchive = errors.New("no event to archive")

// WriteArchive writes the events older than before (the longest prefix of
// the live chain whose events are all older) to w as JSONL, the export
// format, after checking the whole chain, and returns the plan for
// CommitArchive. It changes nothing in the journal.
//
// Its memory does not grow with the journal: the chain is checked in seq
// order (scanChain), the prefix written in seq order, and each file's
// state at the cut replayed from its events ordered by file (as
// VerifyStateFunc does) and spooled.
func (j *Journal) WriteArchive(ctx context.Context, before time.Time, w io.Writer) (*ArchivePlan, error) {
	tx, err := j.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	// The chain, and its link to an earlier archive (the base the prefix
	// starts from).
	c, err := scanChain(ctx, tx)
	if err == nil {
		err = c.replayErr
	}
	if err != nil {
		return nil, err
	}
	p := &ArchivePlan{}
	enc := json.NewEncoder(w)
	err = scanEvents(ctx, tx, "", nil, func(e Event) error {
		if !e.Time.Before(before) {
			return errStop
		}
		if p.Point.Count == 0 {
			p.Point.FirstSeq = e.Seq
		}
		p.Point.Count++
		p.Point.LastSeq, p.Point.LastHash, p.Point.LastTime = e.Seq, e.Hash, e.Time
		return enc.Encode(e)
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if p.Point.Count == 0 {
		return nil, ErrNothingToArchive
	}
	p.Point.Before = before
	if p.spool, err = os.CreateTemp(filepath.Dir(j.path), ".ferry-archive-states-*"); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if p.Point.Files, err = spoolStates(ctx, tx, c.base, p.Point.LastSeq, p.spool); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// spoolStates replays each file up to seq last (from base, if any), one
// file at a time, and writes each file's state to spool as a JSON line, by
// file id. It returns how many.
func spoolStates(ctx context.Context, tx *sql.Tx, base *ArchivePoint, last int64, spool io.Writer) (int, error) {
	var lo, hi int64
	if base != nil {
		lo, hi = base.Seq, base.Seq+int64(base.Files)
	}
	bw := bufio.NewWriterSize(spool, 64<<10)
	enc := json.NewEncoder(bw)
	r := NewReplay()
	var cur int64
	n := 0
	var replayErr error
	flush := func() error {
		if f := r.files[cur]; f != nil {
			n++
			return enc.Encode(f)
		}
		return nil
	}
	q := `SELECT ` + eventColumns + ` FROM events WHERE file_id <> 0 AND (seq <= ? OR (seq > ? AND seq <= ?))
		ORDER BY file_id, CASE WHEN seq > ? AND seq <= ? THEN 0 ELSE 1 END, seq`
	err := queryEvents(ctx, tx, q, []any{last, lo, hi, lo, hi}, func(e Event) error {
		if e.FileID != cur {
			if err := flush(); err != nil {
				return err
			}
			cur = e.FileID
			clear(r.files)
			r.base, r.last = base, 0
			if base != nil {
				r.last = base.LastSeq
			}
		}
		switch {
		case DatasetKind(e.Kind):
		case e.Kind == KindFileState && e.Seq > lo && e.Seq <= hi:
			f, err := parseFileState(e)
			if err != nil {
				return err
			}
			r.files[f.FileID] = f
		case e.Seq <= last:
			if err := r.Apply(e); err != nil {
				var a, b *ReplayError
				if replayErr == nil || errors.As(err, &a) && errors.As(replayErr, &b) && a.Seq < b.Seq {
					replayErr = err
				}
				delete(r.files, cur)
			}
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err == nil {
		err = replayErr
	}
	if err == nil {
		err = bw.Flush()
	}
	return n, err
}

// eventsNoDelete is the trigger exactly as migrations/0001_init.sql
// creates it.
const eventsNoDelete = `CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END`

// CommitArchive deletes the archived events from the live table and
// appends the archived event and the file states, in one transaction.
// p.Point.SHA256 and Name must name the archive file, already durable.
func (j *Journal) CommitArchive(ctx context.Context, p *ArchivePlan) (ArchivePoint, error) {
	a := p.Point
	if a.SHA256 == "" || a.Name == "" || strings.ContainsAny(a.Name, "/\\") {
		return a, fmt.Errorf("archive: the archive file's SHA-256 and base name are required")
	}
	defer p.Close()
	if p.spool == nil {
		return a, fmt.Errorf("archive: the plan was closed")
	}
	err := j.do(ctx, func(t *Tx) error {
		var first int64
		var hash string
		if err := t.tx.QueryRow(`SELECT MIN(seq) FROM events`).Scan(&first); err != nil {
			return err
		}
		if err := t.tx.QueryRow(`SELECT hash FROM events WHERE seq = ?`, a.LastSeq).Scan(&hash); err != nil || first != a.FirstSeq || hash != a.LastHash {
			return fmt.Errorf("archive: the journal changed since the archive was written (seq %d..%d): nothing was deleted", a.FirstSeq, a.LastSeq)
		}
		if _, err := t.tx.Exec(`DROP TRIGGER events_no_delete`); err != nil {
			return err
		}
		res, err := t.tx.Exec(`DELETE FROM events WHERE seq <= ?`, a.LastSeq)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != a.Count {
			return fmt.Errorf("archive: deleted %d events, the archive holds %d: nothing was deleted", n, a.Count)
		}
		if _, err := t.tx.Exec(eventsNoDelete); err != nil {
			return err
		}
		if err := t.event(Event{Kind: KindArchived, Size: -1, SHA256: a.SHA256, Detail: a.Detail()}); err != nil {
			return err
		}
		a.Seq = t.chain.seq
		if _, err := p.spool.Seek(0, io.SeekStart); err != nil {
			return err
		}
		dec := json.NewDecoder(bufio.NewReaderSize(p.spool, 64<<10))
		n := 0
		for {
			var f FileState
			if err := dec.Decode(&f); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("archive: the file states spooled in %s: %w", p.spool.Name(), err)
			}
			if err := t.event(FileStateEvent(&f)); err != nil {
				return err
			}
			n++
		}
		if n != a.Files {
			return fmt.Errorf("archive: %d file states spooled, %d announced", n, a.Files)
		}
		return nil
	})
	return a, err
}
