package retry

import (
	"errors"
	"testing"
	"time"

	"github.com/ferry-data/ferry/uploader/sink"
)

func ceiling(d time.Duration) time.Duration { return d } // "jitter" that returns the maximum

func TestBackoff(t *testing.T) {
	plain := errors.New("reset")
	ra := &sink.Error{Class: sink.Transient, Op: "Put", Status: 429, RetryAfter: 7 * time.Second}
	long := &sink.Error{Class: sink.Transient, Op: "Put", Status: 503, RetryAfter: time.Hour}
	for _, c := range []struct {
		n    uint
		err  error
		want time.Duration
	}{
		{1, plain, time.Second},
		{2, plain, 2 * time.Second},
		{3, plain, 4 * time.Second},
		{5, plain, 16 * time.Second},
		{6, plain, 30 * time.Second}, // capped
		{40, plain, 30 * time.Second},
		{1, ra, 7 * time.Second},    // the server's word
		{1, long, 30 * time.Second}, // but never beyond max
	} {
		if got := backoff(c.n, c.err, time.Second, 30*time.Second, ceiling); got != c.want {
			t.Errorf("backoff(%d, %v) = %v, want %v", c.n, c.err, got, c.want)
		}
	}
	// Full jitter: anywhere from 0 to the ceiling.
	for range 1000 {
		if d := backoff(3, plain, time.Second, 30*time.Second, FullJitter); d < 0 || d > 4*time.Second {
			t.Fatalf("jittered backoff %v outside [0, 4s]", d)
		}
	}
}
