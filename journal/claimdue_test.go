package journal

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// kindsOf lists the kinds of a file's events, in order.
func kindsOf(t *testing.T, j *Journal, rel string) []string {
	t.Helper()
	rs, err := j.r.Query(`SELECT kind, detail FROM events WHERE rel_path = ? ORDER BY seq`, rel)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var k, d string
		if err := rs.Scan(&k, &d); err != nil {
			t.Fatal(err)
		}
		if k == string(KindFileHashed) {
			k += "(" + d + ")"
		}
		out = append(out, k)
	}
	return out
}

// ClaimDue claims what Due saw, and journals the hashes of the files read
// whole with their claim, in one commit; a file whose version moved on, or
// that left the queue, between Due and ClaimDue is left alone. The replay
// of such a journal agrees with its tables.
func TestClaimDueWithHashes(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	for _, rel := range []string{"run/a", "run/b", "run/c", "run/d", "run/e"} {
		if _, err := j.RecordSettled(ctx, settled(rel, 10)); err != nil {
			t.Fatal(err)
		}
	}
	due, err := j.Due(ctx, 10)
	if err != nil || len(due) != 5 {
		t.Fatalf("Due = %d jobs, %v; want 5", len(due), err)
	}
	if again, _ := j.Due(ctx, 10); len(again) != 5 {
		t.Fatalf("Due claimed something: a second look sees %d", len(again))
	}
	// Meanwhile: c is rewritten (a new version settles), d is dropped.
	newer := settled("run/c", 11)
	newer.Version.MtimeNS = 2
	if _, err := j.RecordSettled(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if n, err := j.DropDeadLetters(ctx, due[3].ID); err != nil || n != 1 {
		t.Fatalf("drop d: %d, %v", n, err)
	}
	sums := []string{strings.Repeat("a", 64), "", strings.Repeat("c", 64), strings.Repeat("d", 64), strings.Repeat("e", 64)}
	before := j.commits.Load()
	jobs, from, err := j.ClaimDue(ctx, due, sums)
	if err != nil {
		t.Fatal(err)
	}
	if c := j.commits.Load() - before; c != 1 {
		t.Errorf("ClaimDue took %d commits, want 1", c)
	}
	if want := []int{0, 1, 4}; !slices.Equal(from, want) {
		t.Errorf("claimed due%v, want due%v", from, want)
	}
	var got []string
	for _, jb := range jobs {
		got = append(got, jb.RelPath)
		if jb.CorrelationID == "" || jb.Attempts != 1 || jb.SHA256 != "" {
			t.Errorf("%s: job %+v: want a correlation id, attempt 1, and no hash from an earlier attempt", jb.RelPath, jb)
		}
	}
	if want := []string{"run/a", "run/b", "run/e"}; !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want %v (c moved on, d was dropped)", got, want)
	}
	for rel, want := range map[string][]string{
		"run/a": {"settled", "claimed", "file_hashed(chunks=1 whole=true)"},
		"run/b": {"settled", "claimed"},
		"run/c": {"settled", "settled"},
		"run/d": {"settled", "dlq_drop"},
	} {
		if k := kindsOf(t, j, rel); !slices.Equal(k, want) {
			t.Errorf("%s: events %v, want %v", rel, k, want)
		}
	}
	if r := state(t, j, "run/a"); r.State != Uploading || r.SHA256 != sums[0] {
		t.Errorf("run/a after ClaimDue: %+v", r)
	}
	if r := state(t, j, "run/c"); r.State != Queued || r.SHA256 != "" {
		t.Errorf("run/c after ClaimDue: %+v", r)
	}
	// Ends, and a second version of a, hashed as a whole too.
	for i := range jobs {
		if err := j.Complete(ctx, &jobs[i], strings.Repeat("f", 64), jobs[i].Key); err != nil {
			t.Fatal(err)
		}
	}
	if diffs, n, err := j.VerifyState(ctx); err != nil || len(diffs) != 0 || n != 5 {
		t.Fatalf("VerifyState = %v, %d files, %v", diffs, n, err)
	}
	if n, err := j.VerifyChain(ctx); err != nil || n == 0 {
		t.Fatalf("VerifyChain = %d, %v", n, err)
	}
}

// A file hashed whole by RecordHashes (the worker's path) after an earlier
// version was hashed in chunks: the chunks table and the replay agree (the
// old version's chunks are gone).
func TestWholeHashAfterChunks(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	if _, err := j.RecordSettled(ctx, settled("run/x", 30)); err != nil {
		t.Fatal(err)
	}
	jb := mustClaim(t, j, 1)[0]
	chunks := []Chunk{{Seq: 1, Offset: 0, Size: 10, SHA256: "1"}, {Seq: 2, Offset: 10, Size: 10, SHA256: "2"}, {Seq: 3, Offset: 20, Size: 10, SHA256: "3"}}
	if err := j.RecordHashes(ctx, &jb, "all", chunks); err != nil {
		t.Fatal(err)
	}
	if err := j.Retry(ctx, &jb, "network", time.Now()); err != nil {
		t.Fatal(err)
	}
	small := settled("run/x", 5)
	small.Version.MtimeNS = 2
	if _, err := j.RecordSettled(ctx, small); err != nil {
		t.Fatal(err)
	}
	jb = mustClaim(t, j, 1)[0]
	if err := j.RecordHashes(ctx, &jb, "five", []Chunk{{Seq: 1, Size: 5, SHA256: "five"}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"settled", "claimed", "chunk_hashed", "chunk_hashed", "chunk_hashed", "file_hashed(chunks=3)", "retry_scheduled",
		"settled", "claimed", "file_hashed(chunks=1 whole=true)"}
	if k := kindsOf(t, j, "run/x"); !slices.Equal(k, want) {
		t.Fatalf("events %v, want %v", k, want)
	}
	if diffs, _, err := j.VerifyState(ctx); err != nil || len(diffs) != 0 {
		t.Fatalf("VerifyState = %v, %v", diffs, err)
	}
}

// The writer holds a batch of ends nobody waits for (FinishAsync) open for
// up to Options.Linger, and commits it at once with the first transition
// somebody waits for.
func TestLingerForLazyEnds(t *testing.T) {
	dir := testtmp.Dir(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		j, err := Open(filepath.Join(dir, "ferry.db"), Options{Linger: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		for _, rel := range []string{"run/a", "run/b", "run/c"} {
			if _, err := j.RecordSettled(ctx, settled(rel, 10)); err != nil {
				t.Fatal(err)
			}
		}
		jobs := mustClaim(t, j, 3)
		end := func(i int) <-chan error {
			return j.FinishAsync(ctx, &jobs[i], End{Kind: KindUploaded, SHA256: "ff", Landed: &Landed{Key: jobs[i].Key, SHA256: "ff"}})
		}
		before := j.commits.Load()
		a := end(0)
		time.Sleep(10 * time.Second)
		b := end(1)
		time.Sleep(10 * time.Second)
		select {
		case err := <-a:
			t.Fatalf("an end was committed (%v) 20 s into a 1 min linger", err)
		default:
		}
		// Somebody waits: the batch is committed now, with the two ends.
		if _, err := j.RecordSettled(ctx, settled("run/d", 10)); err != nil {
			t.Fatal(err)
		}
		for _, c := range []<-chan error{a, b} {
			select {
			case err := <-c:
				if err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatal("an end was not committed with the transition that was waited for")
			}
		}
		if c := j.commits.Load() - before; c != 1 {
			t.Errorf("%d commits for two lingering ends and a settle, want 1", c)
		}
		// Alone, an end is committed when the linger is over.
		start := time.Now()
		if err := <-end(2); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != time.Minute {
			t.Errorf("a lone end was committed after %v, want the linger (1m0s)", waited)
		}
		// Finish (waited for) does not linger.
		if _, err := j.RecordSettled(ctx, settled("run/e", 10)); err != nil {
			t.Fatal(err)
		}
		jb := mustClaim(t, j, 1)[0]
		start = time.Now()
		if err := j.Complete(ctx, &jb, "ff", jb.Key); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("Complete waited %v", waited)
		}
	})
}
