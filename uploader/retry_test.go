package uploader

import (
	"testing"
	"time"

	"github.com/ferry-data/ferry/uploader/sink/retry"
)

func ceiling(d time.Duration) time.Duration { return d } // "jitter" that returns the maximum

func TestRequeueDelay(t *testing.T) {
	for _, c := range []struct {
		attempts int
		lo, hi   time.Duration
	}{
		{1, 15 * time.Second, 30 * time.Second},
		{2, 30 * time.Second, time.Minute},
		{3, time.Minute, 2 * time.Minute},
		{20, 30 * time.Minute, time.Hour},
	} {
		for _, rnd := range []func(time.Duration) time.Duration{func(time.Duration) time.Duration { return 0 }, ceiling, retry.FullJitter} {
			if d := requeueDelay(c.attempts, rnd); d < c.lo || d > c.hi {
				t.Errorf("requeueDelay(%d) = %v, want within [%v, %v]", c.attempts, d, c.lo, c.hi)
			}
		}
	}
}
