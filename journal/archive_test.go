package journal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// Verify fails naming the seq for each kind of tampering an attacker with
// the database file can do once the triggers are dropped.
func TestTamperingInTheDatabaseNamesTheSeq(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		sql  []string
		seq  string
	}{
		{"edited", []string{`DROP TRIGGER events_no_update`, `UPDATE events SET size = 99 WHERE seq = 3`}, "seq 3:"},
		{"deleted", []string{`DROP TRIGGER events_no_delete`, `DELETE FROM events WHERE seq = 3`}, "seq 4:"},
		{"deleted first", []string{`DROP TRIGGER events_no_delete`, `DELETE FROM events WHERE seq = 1`}, "seq 2:"},
		{"inserted", []string{`DROP TRIGGER events_no_update`,
			`UPDATE events SET seq = -seq WHERE seq >= 3`, `UPDATE events SET seq = 1 - seq WHERE seq < 0`,
			"INSERT INTO events (seq, time, kind, rel_path, prev_hash, hash) SELECT 3, time, 'forged', 'x', hash, 'h' FROM events WHERE seq = 2"}, "seq 3:"},
		{"swapped", []string{`DROP TRIGGER events_no_update`,
			`UPDATE events SET seq = -1 WHERE seq = 2`, `UPDATE events SET seq = 2 WHERE seq = 3`, `UPDATE events SET seq = 3 WHERE seq = -1`}, "seq 2:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(testtmp.Dir(t), "j.db")
			j, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []string{"a", "b", "c", "d", "e"} {
				j.RecordSettled(ctx, settled(r, 1))
			}
			if n, err := j.VerifyChain(ctx); err != nil || n != 5 {
				t.Fatalf("honest chain: %d %v", n, err)
			}
			j.Close()
			raw := rawDB(t, path)
			for _, q := range c.sql {
				if _, err := raw.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			raw.Close()
			j, err = Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			var ce *ChainError
			if _, err := j.VerifyChain(ctx); !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), c.seq) {
				t.Fatalf("VerifyChain = %v, want a ChainError starting %q", err, c.seq)
			}
		})
	}
}

// clock is a settable Options.Now.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func archiveFile(t *testing.T, j *Journal, before time.Time, name string) (ArchivePoint, []byte) {
	t.Helper()
	var buf bytes.Buffer
	p, err := j.WriteArchive(context.Background(), before, &buf)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	p.Point.SHA256, p.Point.Name = hex.EncodeToString(sum[:]), name
	a, err := j.CommitArchive(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return a, buf.Bytes()
}

func jsonlEvents(b []byte) func(fn func(Event) error) error {
	return func(fn func(Event) error) error {
		for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var e Event
			if err := json.Unmarshal(l, &e); err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
}

func snapshot(r *Replay) map[int64]FileState {
	m := map[int64]FileState{}
	for _, f := range r.Files() {
		m[f.FileID] = *f
	}
	return m
}

func TestArchiveRoundTrip(t *testing.T) {
	ctx := context.Background()
	clk := &clock{time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)}
	path := filepath.Join(testtmp.Dir(t), "j.db")
	j, err := Open(path, Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { j.Close() }()
	// Batch A: one file uploaded, one still uploading, one failed, before the cut.
	for _, r := range []string{"A/done", "A/busy", "A/bad"} {
		j.RecordSettled(ctx, settled(r, 10))
	}
	jobs := mustClaim(t, j, 3)
	for i := range jobs {
		jb := &jobs[i]
		switch jb.RelPath {
		case "A/done":
			j.RecordHashes(ctx, jb, "dd", []Chunk{{Seq: 1, Size: 10, SHA256: "dd"}})
			if err := j.Complete(ctx, jb, "dd", jb.Key); err != nil {
				t.Fatal(err)
			}
		case "A/busy":
			j.RecordHashes(ctx, jb, "bb", []Chunk{{Seq: 1, Size: 5, SHA256: "b1"}, {Seq: 2, Offset: 5, Size: 5, SHA256: "b2"}})
			j.SetUploadID(ctx, jb, "up")
		case "A/bad":
			j.Fail(ctx, jb, "http", "403")
		}
	}
	cut := clk.t.Add(30 * time.Minute)
	clk.t = clk.t.Add(time.Hour)
	// After the cut: batch B, and the busy file goes on.
	j.RecordSettled(ctx, settled("B/new", 7))
	for i := range jobs {
		if jobs[i].RelPath == "A/busy" {
			if err := j.AckChunk(ctx, &jobs[i], 1, "e1"); err != nil {
				t.Fatal(err)
			}
		}
	}
	beforeArchive, err := j.Replay(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	j.r.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&total)

	a, archive := archiveFile(t, j, cut, "a1.jsonl")
	if a.FirstSeq != 1 || a.Count != a.LastSeq || a.Files != 3 || a.Seq != total+1 {
		t.Fatalf("archive point %+v (live chain had %d events)", a, total)
	}
	// (a) the live chain verifies from the archive point; (c) the replay
	// check agrees, pending files included; the states are those before.
	if _, err := j.VerifyChain(ctx); err != nil {
		t.Fatalf("VerifyChain after archiving: %v", err)
	}
	diffs, n, err := j.VerifyState(ctx)
	if err != nil || len(diffs) != 0 || n != len(beforeArchive.Files()) {
		t.Fatalf("VerifyState after archiving: %v %d files, %v", diffs, n, err)
	}
	after, err := j.Replay(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := snapshot(after), snapshot(beforeArchive); len(got) != len(want) {
		t.Fatalf("replayed %d files after archiving, %d before", len(got), len(want))
	} else {
		for id, f := range want {
			g := got[id]
			g.LastSeq, f.LastSeq = 0, 0 // the file_state events are no events of the file
			if g.State != f.State || g.SHA256 != f.SHA256 || g.Generation != f.Generation || g.ChunksDigest != f.ChunksDigest || g.Watch != f.Watch {
				t.Fatalf("file %d after archiving %+v, before %+v", id, g, f)
			}
		}
	}
	// (b) the archive verifies on its own and replays to the states at the cut.
	r, err := ReplayEvents(jsonlEvents(archive), time.Time{})
	if err != nil {
		t.Fatalf("the archive: %v", err)
	}
	if len(r.Files()) != 3 || r.Applied() != a.Count {
		t.Fatalf("the archive replays %d files from %d events", len(r.Files()), r.Applied())
	}
	// (d) a time before the last archived event is in the archive, and
	// says so; between it and the cut no event happened: the base answers.
	var ae *ArchivedError
	if _, err := j.Replay(ctx, a.LastTime.Add(-time.Nanosecond)); !errors.As(err, &ae) || !strings.Contains(err.Error(), "a1.jsonl") {
		t.Fatalf("Replay before the archive point = %v, want an ArchivedError naming a1.jsonl", err)
	}
	if r, err := j.Replay(ctx, cut.Add(-time.Minute)); err != nil || len(r.Files()) != 3 {
		t.Fatalf("Replay between the archive point and the cut: %v", err)
	}
	if r, err := j.Replay(ctx, cut); err != nil || len(r.Files()) != 3 {
		t.Fatalf("Replay at the cut: %v", err)
	}
	// The delete trigger is back, exactly as the migration made it.
	var sqlText string
	j.r.QueryRow(`SELECT sql FROM sqlite_master WHERE name = 'events_no_delete'`).Scan(&sqlText)
	if sqlText != eventsNoDelete {
		t.Fatalf("trigger after archiving:\n%s\nwant\n%s", sqlText, eventsNoDelete)
	}
	raw := rawDB(t, path)
	if _, err := raw.Exec(`DELETE FROM events WHERE seq = ?`, a.Seq); err == nil {
		t.Fatal("DELETE allowed after archiving")
	}
	raw.Close()

	// A second archive takes the first one's record with it, and the
	// chain still links: archive 2 starts where archive 1 ended.
	clk.t = clk.t.Add(time.Hour)
	for i := range jobs {
		if jobs[i].RelPath == "A/busy" {
			j.Complete(ctx, &jobs[i], "bb", jobs[i].Key)
		}
	}
	a2, archive2 := archiveFile(t, j, clk.t.Add(-time.Minute), "a2.jsonl")
	if a2.FirstSeq != a.LastSeq+1 || a2.Files != 4 {
		t.Fatalf("second archive point %+v", a2)
	}
	if _, err := ReplayEvents(jsonlEvents(archive2), time.Time{}); err != nil {
		t.Fatalf("archive 2 (starting after archive 1, holding its record): %v", err)
	}
	if _, err := ReplayEvents(jsonlEvents(append(append([]byte(nil), archive...), archive2...)), time.Time{}); err != nil {
		t.Fatalf("archive 1 + archive 2: %v", err)
	}
	if _, err := j.VerifyChain(ctx); err != nil {
		t.Fatal(err)
	}
	if diffs, n, err := j.VerifyState(ctx); err != nil || len(diffs) != 0 || n != 4 {
		t.Fatalf("VerifyState after the second archive: %v %v", diffs, err)
	}
	if n, err := j.WriteArchive(ctx, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), &bytes.Buffer{}); !errors.Is(err, ErrNothingToArchive) {
		t.Fatalf("archiving nothing: %v %v", n, err)
	}

	// Tampering with the link: deleting more than the archive recorded,
	// or editing the recorded hash.
	j.Close()
	for name, q := range map[string]string{
		"deleted after the archive": `DELETE FROM events WHERE seq = ` + strconv.FormatInt(a2.LastSeq+1, 10),
		"hash edited":               `UPDATE events SET detail = replace(detail, 'last_hash=', 'last_hash=0') WHERE seq = ` + strconv.FormatInt(a2.Seq, 10),
	} {
		t.Run(name, func(t *testing.T) {
			p2 := filepath.Join(testtmp.Dir(t), "j.db")
			raw := rawDB(t, path)
			if _, err := raw.Exec(`VACUUM INTO ?`, p2); err != nil {
				t.Fatal(err)
			}
			raw.Close()
			raw = rawDB(t, p2)
			for _, q := range []string{`DROP TRIGGER events_no_delete`, `DROP TRIGGER events_no_update`, q} {
				if _, err := raw.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			raw.Close()
			j2, err := Open(p2, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer j2.Close()
			var ce *ChainError
			if _, err := j2.VerifyChain(ctx); !errors.As(err, &ce) {
				t.Fatalf("VerifyChain = %v, want a ChainError", err)
			}
			if _, _, err := j2.VerifyState(ctx); !errors.As(err, &ce) {
				t.Fatalf("VerifyState = %v, want a ChainError", err)
			}
		})
	}
	j, _ = Open(path, Options{})
}
