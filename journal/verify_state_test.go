package journal

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestVerifyStateStreamsEveryKindOfDifference: the replay one file at a
// time, merged with the tables by id, names a row no event made, a file
// whose row is gone (first, middle and last ids), and of two files whose
// events cannot be replayed, the lowest seq (not the lowest file id), as a
// replay in seq order does.
func TestVerifyStateStreamsEveryKindOfDifference(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	for _, rel := range []string{"r/a", "r/b", "r/c", "r/d"} {
		upload(t, j, rel, strings.Repeat("a", 64))
	}
	if _, err := j.RecordSettled(ctx, settled("r/b", 99)); err != nil { // b changed: an event of b after all of d's
		t.Fatal(err)
	}
	if mm, n, err := j.VerifyState(ctx); err != nil || len(mm) != 0 || n != 4 {
		t.Fatalf("honest: %v %d %v", mm, n, err)
	}
	raw := rawDB(t, j.Path())
	defer raw.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := raw.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`PRAGMA foreign_keys = OFF`)
	exec(`DELETE FROM files WHERE rel_path IN ('r/a', 'r/c', 'r/d')`)
	exec(`CREATE TEMP TABLE x AS SELECT * FROM files WHERE rel_path = 'r/b'`)
	exec(`UPDATE x SET id = 100, rel_path = 'r/z'`)
	exec(`INSERT INTO files SELECT * FROM x`)
	var got []string
	n, err := j.VerifyStateFunc(ctx, func(m Mismatch) { got = append(got, m.String()) })
	if err != nil || n != 4 || len(got) != 4 {
		t.Fatalf("VerifyStateFunc: %d files, %v\n%s", n, err, strings.Join(got, "\n"))
	}
	for i, want := range []string{"/data/r/a (id 1): the events made it", "/data/r/c (id 3): the events made it", "/data/r/d (id 4): the events made it", "/data/r/z (id 100): in the files table, but no event created it"} {
		if !strings.Contains(got[i], want) {
			t.Errorf("difference %d: %s\nwant %s", i, got[i], want)
		}
	}
	// Two files whose events break the lifecycle: b (id 2) at its last
	// event, d (id 4) at its claim, which is earlier. Files are replayed by
	// id, b first; the error named is the earlier seq, d's, as a replay in
	// seq order names.
	exec(`DROP TRIGGER events_no_update`)
	var bSeq, dSeq int64
	raw.QueryRow(`SELECT MAX(seq) FROM events WHERE rel_path = 'r/b'`).Scan(&bSeq)
	raw.QueryRow(`SELECT MIN(seq) FROM events WHERE rel_path = 'r/d' AND kind = 'claimed'`).Scan(&dSeq)
	if dSeq >= bSeq {
		t.Fatalf("d's claim at seq %d is not before b's last event at %d", dSeq, bSeq)
	}
	exec(`UPDATE events SET kind = 'claimed' WHERE seq = ?`, bSeq)
	exec(`UPDATE events SET kind = 'settled' WHERE seq = ?`, dSeq)
	// The chain is checked first: a ChainError at the lower seq.
	var ce *ChainError
	if _, err := j.VerifyStateFunc(ctx, func(Mismatch) {}); !errors.As(err, &ce) || ce.Seq != dSeq {
		t.Fatalf("VerifyStateFunc after two edits = %v, want a ChainError at seq %d", err, dSeq)
	}
	// Hashed again (a forger's chain): the replay refuses both files'
	// events, and names the lower seq.
	var events []Event
	if err := scanEvents(ctx, raw, "", nil, func(e Event) error { events = append(events, e); return nil }); err != nil {
		t.Fatal(err)
	}
	prev := GenesisHash
	for _, e := range events {
		e.PrevHash = prev
		e.Hash = EventHash(e)
		prev = e.Hash
		exec(`UPDATE events SET prev_hash = ?, hash = ? WHERE seq = ?`, e.PrevHash, e.Hash, e.Seq)
	}
	var re *ReplayError
	if _, err := j.VerifyStateFunc(ctx, func(Mismatch) {}); !errors.As(err, &re) || re.Seq != dSeq {
		t.Fatalf("VerifyStateFunc after two rehashed edits = %v, want a ReplayError at seq %d (not %d)", err, dSeq, bSeq)
	}
}
