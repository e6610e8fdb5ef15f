package journal

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// VerifyState replays the event chain and compares each file's replayed
// state with the files and chunks tables, in one read snapshot. It returns
// the differences (none when the tables agree with the record), the number
// of files the events made, and an error when the chain cannot be replayed
// at all. It keeps every difference: VerifyStateFunc streams them.
func (j *Journal) VerifyState(ctx context.Context) ([]Mismatch, int, error) {
	var out []Mismatch
	n, err := j.VerifyStateFunc(ctx, func(m Mismatch) { out = append(out, m) })
	if err != nil {
		return nil, 0, err
	}
	return out, n, nil
}

// VerifyStateFunc is VerifyState handing each difference to fn as it is
// found (by file id; the datasets last), in memory that does not grow with
// the journal: one file's model at a time, however many files and events.
// When it returns an error, the differences fn was given mean nothing.
//
// It reads the journal three times, in one read transaction:
//
//  1. the events in seq order: the hash chain (from the genesis, or from
//     the archive point the live chain continues), the archive's file
//     states (counted and parsed, not kept), and the datasets (whose
//     model is kept: one per dataset, not per file);
//  2. the events about files, ordered by file (file_id, then the file's
//     state at the archive point, then seq; SQLite sorts in bounded
//     memory, spilling to a temporary file), replaying one file at a time
//     by the lifecycle table exactly as a replay in seq order does, since
//     a file's transitions depend on that file's events alone;
//  3. alongside 2, the files table by id and the chunks table by file,
//     merged with the replayed files as each one ends.
//
// A replay error is the one with the lowest seq, the one a replay in seq
// order stops at.
func (j *Journal) VerifyStateFunc(ctx context.Context, fn func(Mismatch)) (int, error) {
	tx, err := j.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	p, err := scanChain(ctx, tx)
	if err != nil {
		return 0, err
	}
	replayErr := p.replayErr
	keep := func(err error) {
		var a, b *ReplayError
		if replayErr == nil || errors.As(err, &a) && errors.As(replayErr, &b) && a.Seq < b.Seq {
			replayErr = err
		}
	}
	tables, err := newTableCursor(ctx, tx)
	if err != nil {
		return 0, err
	}
	defer tables.close()
	var lo, hi int64 // the seqs of the base's file states
	if p.base != nil {
		lo, hi = p.base.Seq, p.base.Seq+int64(p.base.Files)
	}
	r := NewReplay()
	var cur int64
	var broken bool // cur's events cannot be replayed
	files := 0
	end := func() error {
		if cur == 0 {
			return nil
		}
		f := r.files[cur]
		if f != nil {
			files++
		}
		if broken {
			return tables.skip(cur)
		}
		return tables.compare(cur, f, fn)
	}
	q := `SELECT seq, time, kind, file_id, correlation_id, batch_id, COALESCE(chunk_sequence, 0), schema_version, validation_status, rel_path,
		COALESCE(size, -1), sha256, detail, '', '' FROM events WHERE file_id <> 0
		ORDER BY file_id, CASE WHEN seq > ? AND seq <= ? THEN 0 ELSE 1 END, seq`
	err = queryEvents(ctx, tx, q, []any{lo, hi}, func(e Event) error {
		if e.FileID != cur {
			if err := end(); err != nil {
				return err
			}
			cur, broken = e.FileID, false
			clear(r.files)
			r.base, r.last = p.base, 0
			if p.base != nil {
				r.last = p.base.LastSeq
			}
		}
		switch {
		case DatasetKind(e.Kind) || broken:
		case e.Kind == KindFileState && e.Seq > lo && e.Seq <= hi:
			f, err := parseFileState(e) // checked by scanChain
			if err != nil {
				return err
			}
			r.files[f.FileID] = f
		default:
			if err := r.Apply(e); err != nil {
				keep(err)
				broken = true
			}
		}
		return nil
	})
	if err == nil {
		err = end()
	}
	if err == nil {
		err = tables.rest(fn)
	}
	if err != nil {
		return 0, err
	}
	if replayErr != nil {
		return 0, replayErr
	}
	p.datasets.base = p.base
	ds, err := verifyDatasets(ctx, tx, p.datasets)
	if err != nil {
		return 0, err
	}
	for _, m := range ds {
		fn(m)
	}
	return files, nil
}

// chainPass is what the first pass of VerifyStateFunc found.
type chainPass struct {
	base      *ArchivePoint
	datasets  *Replay // the datasets' model
	replayErr error   // the first event the datasets' model refused, or a bad file state of the base
}

// scanChain checks the chain in seq order as ReplayEvents does, finds its
// base, and replays the datasets, keeping nothing per file.
func scanChain(ctx context.Context, q querier) (*chainPass, error) {
	v := NewRangeVerifier()
	p := &chainPass{datasets: NewReplay()}
	var first Event
	var stateErr error
	collect := 0
	err := scanEvents(ctx, q, "", nil, func(e Event) error {
		if v.Count() == 0 {
			first = e
			if e.Seq > 1 {
				// A chain after an archive: datasets start from the
				// state their events say they were in (applyDataset).
				p.datasets.base = &ArchivePoint{}
			}
		}
		if err := v.Check(e); err != nil {
			return err
		}
		if collect > 0 {
			collect--
			if stateErr != nil {
				return nil
			}
			if e.Kind != KindFileState {
				stateErr = &ReplayError{e.Seq, fmt.Sprintf("a %s event where the file states of the archive at seq %d belong", e.Kind, p.base.Seq)}
			} else if _, err := parseFileState(e); err != nil {
				stateErr = err
			}
			return nil
		}
		if e.Kind == KindArchived && p.base == nil && first.Seq > 1 {
			a, err := ParseArchivePoint(e)
			if err != nil {
				return err
			}
			if a.LastSeq == first.Seq-1 {
				p.base, collect = &a, a.Files
			}
		}
		if DatasetKind(e.Kind) && p.replayErr == nil {
			p.replayErr = p.datasets.Apply(e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case v.Count() == 0:
	case first.Seq == 1 && first.PrevHash != GenesisHash:
		return nil, &ChainError{1, "the first event's prev_hash is not the genesis hash"}
	case first.Seq > 1 && p.base == nil:
		return nil, &ChainError{first.Seq, fmt.Sprintf("the chain starts at seq %d and no archived event in it accounts for seq %d and before (events were deleted, or this is a range export: replay needs the chain from seq 1 or from an archive point)", first.Seq, first.Seq-1)}
	case p.base != nil && p.base.LastHash != first.PrevHash:
		return nil, &ChainError{first.Seq, fmt.Sprintf("prev_hash does not match the last_hash the archived event at seq %d recorded", p.base.Seq)}
	case p.base != nil && collect > 0:
		return nil, &ReplayError{p.base.Seq, fmt.Sprintf("the chain ends before the %d file states of the archived event", p.base.Files)}
	case stateErr != nil:
		return nil, stateErr
	}
	return p, nil
}

// tableCursor reads the files table by id and the chunks table by file,
// for VerifyStateFunc to merge with the files it replays in the same order.
type tableCursor struct {
	files, chunks *sql.Rows
	row           FileState // the files row read ahead
	rowOK         bool
	chunk         struct {
		id, off, size int64
		seq           int
		sha           string
	}
	chunkOK bool
}

func newTableCursor(ctx context.Context, tx *sql.Tx) (*tableCursor, error) {
	c := &tableCursor{}
	var err error
	c.files, err = tx.QueryContext(ctx, `SELECT id, watch, rel_path, batch_id, state, size, COALESCE(sha256, ''), generation, COALESCE(uploaded_sha256, ''), COALESCE(uploaded_key, '') FROM files ORDER BY id`)
	if err != nil {
		return nil, err
	}
	if c.chunks, err = tx.QueryContext(ctx, `SELECT file_id, seq, offset, size, sha256 FROM chunks ORDER BY file_id, seq`); err != nil {
		c.files.Close()
		return nil, err
	}
	if err := c.nextRow(); err != nil {
		c.close()
		return nil, err
	}
	if err := c.nextChunk(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *tableCursor) close() { c.files.Close(); c.chunks.Close() }

func (c *tableCursor) nextRow() error {
	if c.rowOK = c.files.Next(); !c.rowOK {
		return c.files.Err()
	}
	t := &c.row
	*t = FileState{}
	return c.files.Scan(&t.FileID, &t.Watch, &t.RelPath, &t.BatchID, &t.State, &t.Size, &t.SHA256, &t.Generation, &t.UploadedSHA256, &t.UploadedKey)
}

func (c *tableCursor) nextChunk() error {
	if c.chunkOK = c.chunks.Next(); !c.chunkOK {
		return c.chunks.Err()
	}
	k := &c.chunk
	return c.chunks.Scan(&k.id, &k.seq, &k.off, &k.size, &k.sha)
}

// rowsBefore reports the files rows before id: in the table, but no event
// made them.
func (c *tableCursor) rowsBefore(id int64, fn func(Mismatch)) error {
	for c.rowOK && (id == 0 || c.row.FileID < id) {
		fn(Mismatch{FileID: c.row.FileID, Path: c.row.Path(), Field: "row", Table: string(c.row.State)})
		if err := c.nextRow(); err != nil {
			return err
		}
	}
	return nil
}

// chunksOf folds the chunks of file id into a digest.
func (c *tableCursor) chunksOf(id int64) (n int, d [sha256.Size]byte, err error) {
	for c.chunkOK && c.chunk.id <= id {
		if c.chunk.id == id {
			n++
			ChunkDigest(&d, c.chunk.seq, c.chunk.off, c.chunk.size, c.chunk.sha)
		}
		if err := c.nextChunk(); err != nil {
			return 0, d, err
		}
	}
	return n, d, nil
}

// skip passes over file id (and the rows before it).
func (c *tableCursor) skip(id int64) error {
	if err := c.rowsBefore(id, func(Mismatch) {}); err != nil {
		return err
	}
	if c.rowOK && c.row.FileID == id {
		return c.nextRow()
	}
	return nil
}

// compare compares file id as replayed (f; nil when its events made no
// file) with its files row and chunks.
func (c *tableCursor) compare(id int64, f *FileState, fn func(Mismatch)) error {
	if err := c.rowsBefore(id, fn); err != nil {
		return err
	}
	n, d, err := c.chunksOf(id)
	if err != nil {
		return err
	}
	has := c.rowOK && c.row.FileID == id
	switch {
	case !has && f != nil:
		fn(Mismatch{FileID: f.FileID, Path: f.Path(), Field: "row", Replay: string(f.State), LastSeq: f.LastSeq})
	case has && f == nil:
		fn(Mismatch{FileID: id, Path: c.row.Path(), Field: "row", Table: string(c.row.State)})
	case has:
		t := &c.row
		m := func(field, table, replay string) {
			if table != replay {
				fn(Mismatch{FileID: t.FileID, Path: t.Path(), Field: field, Table: table, Replay: replay, LastSeq: f.LastSeq})
			}
		}
		if f.Watch != "" {
			m("watch", t.Watch, f.Watch)
		}
		m("rel_path", t.RelPath, f.RelPath)
		m("batch_id", t.BatchID, f.BatchID)
		m("state", string(t.State), string(f.State))
		m("size", fmt.Sprint(t.Size), fmt.Sprint(f.Size))
		m("sha256", t.SHA256, f.SHA256)
		m("generation", fmt.Sprint(t.Generation), fmt.Sprint(f.Generation))
		m("uploaded_sha256", t.UploadedSHA256, f.UploadedSHA256)
		if f.UploadedKey != "" {
			// Journals rebuilt, or archived, before the lifecycle table
			// did not record the key in their events.
			m("uploaded_key", t.UploadedKey, f.UploadedKey)
		}
		m("chunks", fmt.Sprintf("%d chunks, digest %s", n, hex.EncodeToString(d[:])), fmt.Sprintf("%d chunks, digest %s", f.Chunks, f.ChunksDigest))
	}
	if has {
		return c.nextRow()
	}
	return nil
}

// rest reports the files rows after the last replayed file.
func (c *tableCursor) rest(fn func(Mismatch)) error { return c.rowsBefore(0, fn) }
