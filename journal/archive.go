package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

const eventColumns = `seq, time, kind, COALESCE(file_id, 0), correlation_id, batch_id, COALESCE(chunk_sequence, 0), rel_path,
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
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var ts string
		if err := rows.Scan(&e.Seq, &ts, &e.Kind, &e.FileID, &e.CorrelationID, &e.BatchID, &e.ChunkSequence, &e.RelPath, &e.Size, &e.SHA256, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
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

// ArchivePlan is an archive written but not yet committed.
type ArchivePlan struct {
	Point  ArchivePoint // without SHA256 and Name, which the caller sets
	states []*FileState
}

// ErrNothingToArchive is returned when no event is older than the cut.
var ErrNothingToArchive = errors.New("no event to archive")

// WriteArchive writes the events older than before (the longest prefix of
// the live chain whose events are all older) to w as JSONL, the export
// format, after checking the whole chain, and returns the plan for
// CommitArchive. It changes nothing in the journal.
func (j *Journal) WriteArchive(ctx context.Context, before time.Time, w io.Writer) (*ArchivePlan, error) {
	tx, err := j.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	each := func(fn func(Event) error) error { return scanEvents(ctx, tx, "", nil, fn) }
	// The replay checks the chain (and its link to an earlier archive)
	// and gives the base the prefix starts from.
	full, err := ReplayEvents(each, time.Time{})
	if err != nil {
		return nil, err
	}
	r := NewReplay()
	if b := full.Base(); b != nil {
		// Start again from the same base: ReplayEvents found it valid.
		var states []Event
		err := scanEvents(ctx, tx, `seq > ? AND seq <= ?`, []any{b.Seq, b.Seq + int64(b.Files)}, func(e Event) error {
			states = append(states, e)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if err := r.SetBase(*b, states); err != nil {
			return nil, err
		}
	}
	p := &ArchivePlan{}
	enc := json.NewEncoder(w)
	err = each(func(e Event) error {
		if !e.Time.Before(before) {
			return errStop
		}
		if p.Point.Count == 0 {
			p.Point.FirstSeq = e.Seq
		}
		if err := r.Apply(e); err != nil {
			return err
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
	p.states = r.Files()
	p.Point.Files = len(p.states)
	return p, nil
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
		for _, f := range p.states {
			if err := t.event(FileStateEvent(f)); err != nil {
				return err
			}
		}
		return nil
	})
	return a, err
}
