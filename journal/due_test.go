package journal

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	steadyclock "github.com/ferry-data/ferry/internal/clock"
	"github.com/ferry-data/ferry/internal/testtmp"
)

// A retry due in 30 s goes in 30 s although the wall clock was set back an
// hour meanwhile: due times are set and compared on a clock that does not
// step back (Options.DueNow, clock.Steady).
func TestRetryDueAfterABackwardClockStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var step atomic.Int64
		wall := func() time.Time { return time.Now().Round(0).Add(time.Duration(step.Load())) }
		due := steadyclock.Steady(wall)
		j, err := Open(filepath.Join(testtmp.Dir(t), "ferry.db"), Options{Now: wall, DueNow: due})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		if _, err := j.RecordSettled(ctx, settled("a.bin", 1)); err != nil {
			t.Fatal(err)
		}
		jobs := mustClaim(t, j, 1)
		if len(jobs) != 1 {
			t.Fatalf("claimed %d", len(jobs))
		}
		if err := j.Retry(ctx, &jobs[0], "timeout", due().Add(30*time.Second)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		step.Store(int64(-time.Hour))
		time.Sleep(24 * time.Second)
		if jobs := mustClaim(t, j, 1); len(jobs) != 0 {
			t.Fatalf("claimed after 29 s, before it was due")
		}
		time.Sleep(time.Second)
		if jobs := mustClaim(t, j, 1); len(jobs) != 1 {
			t.Fatalf("not claimed 30 s after the retry was scheduled (the wall was set back 1h)")
		}
	})
}

// CapDue brings a due time that lies further ahead than the longest
// back-off (a clock that ran ahead, corrected across a restart) back to
// MaxDueAhead, and leaves nearer ones alone.
func TestCapDue(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	now := time.Now()
	for _, f := range []struct {
		rel string
		at  time.Time
	}{{"far.bin", now.Add(5 * time.Hour)}, {"near.bin", now.Add(10 * time.Minute)}} {
		if _, err := j.RecordSettled(ctx, settled(f.rel, 1)); err != nil {
			t.Fatal(err)
		}
		jobs := mustClaim(t, j, 1)
		if err := j.Retry(ctx, &jobs[0], "timeout", f.at); err != nil {
			t.Fatal(err)
		}
	}
	n, err := j.CapDue(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("CapDue = %d, %v; want 1", n, err)
	}
	if got := dueAt(t, j, "far.bin"); got != now.Add(MaxDueAhead).UnixNano() {
		t.Errorf("far.bin due %v; want %v", time.Unix(0, got), now.Add(MaxDueAhead))
	}
	if got := dueAt(t, j, "near.bin"); got != now.Add(10*time.Minute).UnixNano() {
		t.Errorf("near.bin due %v; want unchanged", time.Unix(0, got))
	}
}

func dueAt(t *testing.T, j *Journal, rel string) int64 {
	t.Helper()
	var at int64
	if err := j.r.QueryRow(`SELECT next_attempt_at FROM files WHERE rel_path = ?`, rel).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}
