package uploader

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-data/ferry/internal/clock"
	"github.com/ferry-data/ferry/internal/testtmp"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/gate"
	"github.com/ferry-data/ferry/uploader/sink/retry"
)

// A retry scheduled before the wall clock is set back an hour goes when it
// was due, not an hour later: the uploader and the journal schedule on
// the daemon's steady clock (clock.Steady over an injected wall clock).
func TestRetryNotHeldBackByABackwardClockStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		var step atomic.Int64
		wall := func() time.Time { return time.Now().Round(0).Add(time.Duration(step.Load())) }
		steady := clock.Steady(wall)
		j, err := journal.Open(filepath.Join(testtmp.Dir(t), "step.db"), journal.Options{Now: wall, DueNow: steady})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		e.j.Close()
		e.j = j
		var failed atomic.Bool
		e.sink.before = func(op string, n int, key string) error {
			if failed.CompareAndSwap(false, true) {
				return sink.NewTransient(op, errors.New("connection reset"))
			}
			return nil
		}
		u, err := New(withTargets(Options{Journal: j, Workers: 1, ChunkSize: testChunk, Now: steady}, map[string]sink.Sink{"t": e.sink}, retry.Policy{Attempts: 1}, gate.Policy{}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- u.Run(ctx) }()
		e.add("a.bin", []byte("after a clock step"))
		u.Notify()
		synctest.Wait()
		if r := e.row("a.bin"); r.State != journal.Queued || !failed.Load() {
			t.Fatalf("after the failure: %+v, want queued for a retry", r)
		}
		due, ok, err := j.NextDue(ctx)
		if err != nil || !ok {
			t.Fatalf("NextDue = %v %v %v", due, ok, err)
		}
		in := due.Sub(steady())
		if in <= 2*time.Second || in > time.Minute {
			t.Fatalf("retry due in %v", in)
		}
		step.Store(int64(-time.Hour)) // the wall is set back an hour
		time.Sleep(in - time.Second)
		synctest.Wait()
		if r := e.row("a.bin"); r.State != journal.Queued {
			t.Fatalf("a second before it was due: %+v, want still queued", r)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if r := e.row("a.bin"); r.State != journal.Uploaded {
			t.Fatalf("a second after it was due (the wall set back 1h meanwhile): %+v, want uploaded", r)
		}
		e.landed("a.bin", []byte("after a clock step"))
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
