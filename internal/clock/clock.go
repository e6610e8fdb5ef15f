// Package clock makes the clock that retries are scheduled by: one that a
// step of the wall clock (an NTP correction, an operator setting the date)
// does not move backward, so that a retry due "in 30 s" goes in 30 s.
package clock

import (
	"sync"
	"time"
)

// Steady returns a clock that follows wall (nil: time.Now) but never runs
// backward within the process: readings that carry a monotonic clock
// reading (time.Now's do) advance by the monotonic clock from the first
// reading; for readings without one (an injected clock), a step back of
// the wall is made up from the monotonic time that passed since the
// previous reading, and the clock goes on from there. Its readings are
// wall-clock values (no monotonic reading), fit to be stored; they may
// drift from the wall by the size of the steps it absorbed.
func Steady(wall func() time.Time) func() time.Time {
	if wall == nil {
		wall = time.Now
	}
	s := &steady{wall: wall}
	return s.now
}

type steady struct {
	wall func() time.Time

	mu       sync.Mutex
	started  bool
	base     time.Time // the first reading, with its monotonic reading if it had one
	last     time.Time // the previous result
	lastMono time.Time // time.Now at the previous reading
	offset   time.Duration
}

func (s *steady) now() time.Time {
	w := s.wall()
	mono := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started, s.base, s.last, s.lastMono = true, w, w.Round(0), mono
		return s.last
	}
	var t time.Time
	if hasMono(w) && hasMono(s.base) {
		// Sub of two readings with a monotonic reading ignores the wall.
		t = s.base.Round(0).Add(w.Sub(s.base))
	} else {
		t = w.Round(0).Add(s.offset)
		if t.Before(s.last) { // the wall stepped back
			floor := s.last.Add(max(mono.Sub(s.lastMono), 0))
			s.offset += floor.Sub(t)
			t = floor
		}
	}
	if t.Before(s.last) {
		t = s.last
	}
	s.last, s.lastMono = t, mono
	return t
}

// hasMono says whether t carries a monotonic clock reading (Round(0)
// strips it, and only then changes t's String).
func hasMono(t time.Time) bool { return t != t.Round(0) }
