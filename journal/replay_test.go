package journal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDetailValue(t *testing.T) {
	for _, c := range []struct {
		detail, key, want string
		ok                bool
	}{
		{"signal=quiet", "signal", "quiet", true},
		{"signal=quiet previous_state=uploading", "previous_state", "uploading", true},
		{`watch="/data/a b" signal=quiet`, "watch", "/data/a b", true},
		{`watch="/da\"ta" signal="two words" previous_state=failed`, "previous_state", "failed", true},
		{`watch="/w" rebuild: the target holds x watch=y`, "watch", "/w", true},
		{`watch="/w" rebuild: the target holds x previous_state=y`, "previous_state", "", false},
		{"chunks=3", "chunks", "3", true},
		{"upload_id=abc", "chunks", "", false},
		{"", "x", "", false},
		{`watch="unterminated`, "watch", "", false},
	} {
		got, ok := detailValue(c.detail, c.key)
		if got != c.want || ok != c.ok {
			t.Errorf("detailValue(%q, %q) = %q, %v; want %q, %v", c.detail, c.key, got, ok, c.want, c.ok)
		}
	}
}

// ev builds the events of one file for the replay table.
func ev(kind Kind, size int64, sha, detail string) Event {
	return Event{Kind: kind, FileID: 1, RelPath: "run/a", BatchID: "run", Size: size, SHA256: sha, Detail: detail}
}

func digestOf(chunks ...[3]int64) string {
	var d [sha256.Size]byte
	for _, c := range chunks {
		ChunkDigest(&d, int(c[0]), c[1], c[2], "h")
	}
	return hex.EncodeToString(d[:])
}

// wholeDigest is the chunks digest of a file hashed as one chunk.
func wholeDigest(size int64, sha string) string {
	var d [sha256.Size]byte
	ChunkDigest(&d, 1, 0, size, sha)
	return hex.EncodeToString(d[:])
}

func TestReplayTransitions(t *testing.T) {
	settledNew := ev("settled", 10, "", `watch="/data" signal=quiet`)
	claimed := ev("claimed", 10, "", "attempt=1")
	chunk := func(seq int, off int64) Event {
		e := ev("chunk_hashed", 5, "h", "offset="+strconv.FormatInt(off, 10))
		e.ChunkSequence = seq
		return e
	}
	for _, c := range []struct {
		name   string
		events []Event
		want   FileState // compared: Watch, State, Size, SHA256, Generation, UploadedSHA256, Chunks, ChunksDigest
		err    string
	}{
		{"settled", []Event{settledNew}, FileState{Watch: "/data", State: Queued, Size: 10, Generation: 1, ChunksDigest: digestOf()}, ""},
		{"old settled without watch", []Event{ev("settled", 10, "", "signal=quiet")}, FileState{State: Queued, Size: 10, Generation: 1, ChunksDigest: digestOf()}, ""},
		{"claimed", []Event{settledNew, claimed}, FileState{Watch: "/data", State: Uploading, Size: 10, Generation: 1, ChunksDigest: digestOf()}, ""},
		{"hashed and uploaded", []Event{settledNew, claimed, chunk(1, 0), chunk(2, 5), ev("file_hashed", 10, "ff", "chunks=2"),
			ev("multipart_created", -1, "", "upload_id=u"), ev("chunk_acked", -1, "", "etag=e"), ev("uploaded", 10, "ff", "key=k")},
			FileState{Watch: "/data", State: Uploaded, Size: 10, SHA256: "ff", Generation: 1, UploadedSHA256: "ff", Chunks: 2, ChunksDigest: digestOf([3]int64{1, 0, 5}, [3]int64{2, 5, 5})}, ""},
		{"hashed twice keeps the last set", []Event{settledNew, claimed, chunk(1, 0), chunk(2, 5), ev("file_hashed", 10, "ff", "chunks=2"),
			chunk(1, 0), ev("file_hashed", 10, "ee", "chunks=1")},
			FileState{Watch: "/data", State: Uploading, Size: 10, SHA256: "ee", Generation: 1, Chunks: 1, ChunksDigest: digestOf([3]int64{1, 0, 5})}, ""},
		{"new version while uploading", []Event{settledNew, claimed, ev("file_hashed", 10, "ff", "chunks=0"),
			ev("settled", 20, "", `watch="/data" signal=quiet previous_state=uploading`)},
			FileState{Watch: "/data", State: Uploading, Size: 20, Generation: 2, ChunksDigest: digestOf()}, ""},
		{"superseded", []Event{settledNew, claimed, ev("settled", 20, "", `watch="/data" signal=quiet previous_state=uploading`), ev("superseded", -1, "", "")},
			FileState{Watch: "/data", State: Queued, Size: 20, Generation: 2, ChunksDigest: digestOf()}, ""},
		{"new version after upload", []Event{settledNew, claimed, ev("uploaded", 10, "ff", "key=k"), ev("settled", 11, "", `watch="/data" signal=quiet previous_state=uploaded`)},
			FileState{Watch: "/data", State: Queued, Size: 11, Generation: 2, UploadedSHA256: "ff", ChunksDigest: digestOf()}, ""},
		{"modified and ignored", []Event{settledNew, claimed, ev("modified_after_upload", 10, "ee", "old_sha256=ff"), ev("ignored", 10, "ee", "")},
			FileState{Watch: "/data", State: Ignored, Size: 10, SHA256: "ee", Generation: 1, ChunksDigest: digestOf()}, ""},
		{"retry", []Event{settledNew, claimed, ev("retry_scheduled", -1, "", "at=x reason=y")}, FileState{Watch: "/data", State: Queued, Size: 10, Generation: 1, ChunksDigest: digestOf()}, ""},
		{"released", []Event{settledNew, claimed, ev("released", -1, "", "")}, FileState{Watch: "/data", State: Queued, Size: 10, Generation: 1, ChunksDigest: digestOf()}, ""},
		{"interrupted", []Event{settledNew, claimed, ev("interrupted", -1, "", "")}, FileState{Watch: "/data", State: Queued, Size: 10, Generation: 1, ChunksDigest: digestOf()}, ""},
		{"source changed", []Event{settledNew, claimed, ev("source_changed", -1, "", "")}, FileState{Watch: "/data", State: Changed, Size: 10, Generation: 1, ChunksDigest: digestOf()}, ""},
		{"failed, retried", []Event{settledNew, claimed, ev("failed", -1, "", "http: 403"), ev("dlq_retry", -1, "", "")}, FileState{Watch: "/data", State: Queued, Size: 10, Generation: 1, ChunksDigest: digestOf()}, ""},
		{"failed, dropped", []Event{settledNew, claimed, ev("failed", -1, "", "http: 403"), ev("dlq_drop", -1, "", "")}, FileState{Watch: "/data", State: Dropped, Size: 10, Generation: 1, ChunksDigest: digestOf()}, ""},
		{"recorded uploaded", []Event{ev("recorded_uploaded", 10, "aa", `watch="/w" rebuild: the target holds it`)},
			FileState{Watch: "/w", State: Uploaded, Size: 10, SHA256: "aa", UploadedSHA256: "aa", Generation: 1, ChunksDigest: digestOf()}, ""},
		{"recorded modified", []Event{ev("recorded_modified", 10, "aa", `watch="/w" rebuild: the target holds an earlier content`)},
			FileState{Watch: "/w", State: Queued, Size: 10, UploadedSHA256: "aa", Generation: 1, ChunksDigest: digestOf()}, ""},
		{"history missing", []Event{claimed}, FileState{}, "which no earlier event created"},
		{"created twice", []Event{settledNew, settledNew}, FileState{}, "created again"},
		{"unknown kind", []Event{settledNew, ev("teleported", -1, "", "")}, FileState{}, `unknown event kind "teleported"`},
		{"hashed whole in one event", []Event{settledNew, claimed, ev("file_hashed", 10, "ff", "chunks=1 whole=true"), ev("uploaded", 10, "ff", "key=k")},
			FileState{Watch: "/data", State: Uploaded, Size: 10, SHA256: "ff", Generation: 1, UploadedSHA256: "ff", Chunks: 1, ChunksDigest: wholeDigest(10, "ff")}, ""},
		{"whole after a chunk", []Event{settledNew, claimed, chunk(1, 0), ev("file_hashed", 10, "ff", "chunks=1 whole=true")}, FileState{}, "want chunks=1 and none"},
		{"whole of two chunks", []Event{settledNew, claimed, ev("file_hashed", 10, "ff", "chunks=2 whole=true")}, FileState{}, "want chunks=1 and none"},
		{"chunks miscounted", []Event{settledNew, claimed, chunk(1, 0), ev("file_hashed", 10, "ff", "chunks=2")}, FileState{}, "chunks=2, 1 chunk_hashed"},
		{"chunk without offset", []Event{settledNew, claimed, ev("chunk_hashed", 5, "h", "")}, FileState{}, "without offset"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := NewReplay()
			var err error
			for i, e := range c.events {
				e.Seq = int64(i + 1)
				if err = r.Apply(e); err != nil {
					break
				}
			}
			if c.err != "" {
				var re *ReplayError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), c.err) || re.Seq != int64(len(c.events)) {
					t.Fatalf("err = %v, want a *ReplayError at seq %d with %q", err, len(c.events), c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := r.File(1)
			got := FileState{Watch: f.Watch, State: f.State, Size: f.Size, SHA256: f.SHA256, Generation: f.Generation,
				UploadedSHA256: f.UploadedSHA256, Chunks: f.Chunks, ChunksDigest: f.ChunksDigest}
			if got != c.want {
				t.Fatalf("replayed %+v\nwant     %+v", got, c.want)
			}
			if f.LastSeq != int64(len(c.events)) || f.RelPath != "run/a" || f.BatchID != "run" {
				t.Fatalf("last seq %d, path %q, batch %q", f.LastSeq, f.RelPath, f.BatchID)
			}
		})
	}
}

func TestReplayEventsNeedsTheWholeChainOrABase(t *testing.T) {
	// A chain built by hand: 3 events, then the same from seq 2 only.
	var chain []Event
	prev := GenesisHash
	for i, e := range []Event{ev("settled", 1, "", "signal=quiet"), ev("claimed", 1, "", ""), ev("uploaded", 1, "ff", "")} {
		e.Seq, e.Time, e.PrevHash = int64(i+1), time.Unix(int64(i), 0).UTC(), prev
		e.Hash = EventHash(e)
		prev = e.Hash
		chain = append(chain, e)
	}
	stream := func(es []Event) func(func(Event) error) error {
		return func(fn func(Event) error) error {
			for _, e := range es {
				if err := fn(e); err != nil {
					return err
				}
			}
			return nil
		}
	}
	r, err := ReplayEvents(stream(chain), time.Time{})
	if err != nil || r.File(1).State != Uploaded {
		t.Fatalf("whole chain: %v", err)
	}
	r, err = ReplayEvents(stream(chain), time.Unix(1, 0))
	if err != nil || r.File(1).State != Uploading || r.File(1).LastSeq != 2 {
		t.Fatalf("up to the second event: %+v %v", r.File(1), err)
	}
	var ce *ChainError
	if _, err := ReplayEvents(stream(chain[1:]), time.Time{}); !errors.As(err, &ce) || ce.Seq != 2 {
		t.Fatalf("a chain starting at seq 2 without an archive point: %v, want a ChainError at seq 2", err)
	}
	bad := append([]Event(nil), chain...)
	bad[1].Detail = "edited"
	if _, err := ReplayEvents(stream(bad), time.Time{}); !errors.As(err, &ce) || ce.Seq != 2 {
		t.Fatalf("an edited event: %v, want a ChainError at seq 2", err)
	}
}

// A journal driven through every transition: the files table and the
// replay of its events agree.
func TestVerifyStateAgreesAfterEveryTransition(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		_, err := j.RecordSettled(ctx, settled("run/"+r, 10))
		must(err)
	}
	bad := settled("run/bad\x00", 3)
	bad.Invalid = "a NUL in the name"
	_, err := j.RecordSettled(ctx, bad)
	must(err)
	jobs := mustClaim(t, j, 7)
	by := map[string]*Job{}
	for i := range jobs {
		by[jobs[i].RelPath] = &jobs[i]
	}
	a, b, c, d, e, f, g := by["run/a"], by["run/b"], by["run/c"], by["run/d"], by["run/e"], by["run/f"], by["run/g"]
	must(j.RecordHashes(ctx, a, "aa", []Chunk{{Seq: 1, Size: 5, SHA256: "a1"}, {Seq: 2, Offset: 5, Size: 5, SHA256: "a2"}}))
	must(j.SetUploadID(ctx, a, "up-1"))
	must(j.AckChunk(ctx, a, 1, "etag1"))
	must(j.AckChunk(ctx, a, 2, "etag2"))
	must(j.Complete(ctx, a, "aa", a.Key))
	must(j.RecordHashes(ctx, b, "bb", []Chunk{{Seq: 1, Size: 10, SHA256: "bb"}}))
	must(j.Fail(ctx, b, "http", "403"))
	must(j.Retry(ctx, c, "503", time.Now()))
	must(j.Release(ctx, d))
	must(j.SourceChanged(ctx, e, "size changed"))
	must(j.ModifiedAfterUpload(ctx, f, "00", "ff", "ignore", ""))
	must(j.Ignore(ctx, f, "ff"))
	// g gets a new version while it uploads: its completion is stale.
	_, err = j.RecordSettled(ctx, settled("run/g", 20))
	must(err)
	if err := j.Complete(ctx, g, "gg", g.Key); !errors.Is(err, ErrStale) {
		t.Fatalf("stale complete: %v", err)
	}
	// a gets a new version after its upload.
	_, err = j.RecordSettled(ctx, settled("run/a", 11))
	must(err)
	_, err = j.RetryDeadLetters(ctx)
	must(err)
	jobs = mustClaim(t, j, 1)
	must(j.Fail(ctx, &jobs[0], "http", "403"))
	_, err = j.DropDeadLetters(ctx)
	must(err)
	mustClaim(t, j, 1)
	_, err = j.Recover(ctx)
	must(err)
	must(j.RecordFromTarget(ctx, settled("run2/h", 4), "hh", true, "rebuild: same"))
	must(j.RecordFromTarget(ctx, settled("run2/i", 4), "ii", false, "rebuild: earlier"))

	diffs, n, err := j.VerifyState(ctx)
	if err != nil || len(diffs) != 0 {
		t.Fatalf("VerifyState on an honest journal: %v %v", diffs, err)
	}
	if n != 10 {
		t.Fatalf("VerifyState compared %d files, want 10", n)
	}
	r, err := j.Replay(ctx, time.Time{})
	if err != nil || len(r.Files()) != 10 {
		t.Fatalf("replayed %v, want 10 files", err)
	}
	states := map[State]int{}
	for _, f := range r.Files() {
		states[f.State]++
		if f.Watch != "/data" {
			t.Fatalf("replayed watch %q", f.Watch)
		}
	}
	if states[Uploaded] != 1 || states[Ignored] != 1 || states[Changed] != 1 || states[Dropped] != 1 || states[Queued] < 4 {
		t.Fatalf("replayed states %v", states)
	}

	// Rows edited behind the journal's back are named, with both values
	// and the file's last event.
	raw := rawDB(t, j.Path())
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE files SET state = 'uploaded' WHERE rel_path = 'run/c'`); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE chunks SET sha256 = 'x' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	diffs, _, err = j.VerifyState(ctx)
	if err != nil || len(diffs) != 2 {
		t.Fatalf("after two edits: %v %v", diffs, err)
	}
	var last int64
	j.r.QueryRow(`SELECT MAX(seq) FROM events WHERE rel_path = 'run/c'`).Scan(&last)
	want := "file /data/run/c (id " + strconv.FormatInt(by["run/c"].ID, 10) + "): state: the table says uploaded, the replay of the events says queued (last event seq " + strconv.FormatInt(last, 10) + ")"
	if diffs[1].String() != want && diffs[0].String() != want {
		t.Fatalf("differences:\n%s\n%s\nwant\n%s", diffs[0], diffs[1], want)
	}
	if !strings.Contains(diffs[0].String()+diffs[1].String(), "/data/run/a (id "+strconv.FormatInt(a.ID, 10)+"): chunks: ") {
		t.Fatalf("the chunk edit is not named: %v", diffs)
	}
}
