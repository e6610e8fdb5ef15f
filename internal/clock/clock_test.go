package clock

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// wallClock is an injected wall clock: the bubble's fake time, without a
// monotonic reading, shifted by step (which the test changes to set the
// clock back or forward).
type wallClock struct{ step atomic.Int64 }

func (w *wallClock) now() time.Time {
	return time.Now().Round(0).Add(time.Duration(w.step.Load()))
}

// A step of an injected wall clock does not move Steady backward: after
// the wall is set back an hour, Steady has advanced by the time that
// passed, and goes on with the wall from there.
func TestSteadyAbsorbsABackwardStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w wallClock
		s := Steady(w.now)
		t0 := s()
		if t0 != w.now() {
			t.Fatalf("first reading %v, wall %v", t0, w.now())
		}
		time.Sleep(10 * time.Second)
		w.step.Store(int64(-time.Hour))
		time.Sleep(20 * time.Second)
		if got := s().Sub(t0); got != 30*time.Second {
			t.Errorf("after a step back of 1h, Steady advanced %v since the start; want 30s", got)
		}
		time.Sleep(5 * time.Second)
		if got := s().Sub(t0); got != 35*time.Second {
			t.Errorf("5 s later Steady advanced %v; want 35s", got)
		}
		// A step forward is followed (a retry goes early, never late).
		w.step.Store(0)
		if got := s().Sub(t0); got != time.Hour+35*time.Second {
			t.Errorf("after the wall was set forward again Steady advanced %v; want 1h0m35s", got)
		}
	})
}

// Readings with a monotonic reading (time.Now's) advance by it alone.
func TestSteadyFollowsTheMonotonicClock(t *testing.T) {
	var step atomic.Int64
	wall := func() time.Time { return time.Now().Add(time.Duration(step.Load())) } // keeps the monotonic reading
	s := Steady(wall)
	t0 := s()
	step.Store(int64(-time.Hour)) // shifts the monotonic reading too: as if both moved
	if got := s(); got.Before(t0) {
		t.Errorf("Steady went back: %v after %v", got, t0)
	}
	if got := s(); got != got.Round(0) {
		t.Errorf("Steady's reading carries a monotonic reading: %v", got)
	}
}
