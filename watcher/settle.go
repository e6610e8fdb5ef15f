package watcher

import (
	"time"

	"github.com/ferry-data/ferry/internal/srcfile"
)

// Settling is decided by one pure function, Settle: the watcher's loop
// gathers the inputs (what it observed of a file so far, a fresh stat, what
// a probe says about writers, the time) and does what the decision says.
// Nothing in it touches the filesystem or reads a clock, so every case is a
// row in a table test.

// Signal names what released a settled file; the journal records it.
type Signal string

// The signals.
const (
	// SignalQuiet: the version did not change for the settle period and no
	// writer was found holding it (nothing on this platform could say more).
	SignalQuiet Signal = "quiet"
	// SignalClose: quiet, and the writer has closed it: no process holds
	// it open for writing (Linux: the processes' open files, /proc).
	SignalClose Signal = "close"
	// SignalLock: quiet, and the sharing probe could open it without
	// sharing writes: no writer holds it (Windows).
	SignalLock Signal = "lock"
	// SignalTimeout: the version did not change for Policy.MaxOpenWait, but
	// a writer still holds the file open.
	SignalTimeout Signal = "timeout"
)

// Policy is a watch's rule for when a file is settled.
type Policy struct {
	// Settle is the quiet period: how long a version must stay unchanged.
	Settle time.Duration
	// MaxOpenWait bounds how long an unchanged version waits for a writer
	// that holds it open, counted from its last change; then it is released
	// with SignalTimeout. Zero waits as long as the writer holds it.
	MaxOpenWait time.Duration
}

// Observation is what the watcher has seen of a pending file so far. The
// zero Observation means nothing yet: the first stat is a change.
type Observation struct {
	Stat      srcfile.Stat // the version last seen
	ChangedAt time.Time    // when that version was first seen: the last change
	// CloseWrite records that a writer closed the file after writing it,
	// since the last change (inotify IN_CLOSE_WRITE); a change of version
	// clears it.
	CloseWrite bool
}

// Writer is what is known about writers holding a file open.
type Writer uint8

const (
	// WriterUnknown: not asked. Asking may cost (opening the file, which
	// on Windows can briefly stand in a writer's way), so Settle asks for it
	// only when the answer decides: with Verdict Probe.
	WriterUnknown Writer = iota
	// WriterNone: no writer holds the file open, or the platform cannot tell
	// (Unix today: there is no sharing probe).
	WriterNone
	// WriterHolds: a writer still holds the file open (on Windows: it cannot
	// be opened without sharing writes).
	WriterHolds
)

// Current is what is true of the file now.
type Current struct {
	Stat   srcfile.Stat // valid when Err is nil
	Err    error        // the stat failed: vanished, not a regular file, unreadable
	Writer Writer
	// Probe names the probe that set Writer, when one could tell: the
	// signal a release after it carries (SignalLock, SignalClose); ""
	// when nothing could tell.
	Probe Signal
}

// Verdict is what to do with a pending file.
type Verdict uint8

const (
	// Wait: not settled; look again after Decision.After.
	Wait Verdict = iota
	// Probe: the version is quiet; find out whether a writer holds it
	// (Current.Writer) and decide again.
	Probe
	// Settled: report the version, released by Decision.Signal.
	Settled
	// Forget: the file is gone (or no longer a regular file): stop tracking
	// it. A later event or walk finds it again if it comes back.
	Forget
)

func (v Verdict) String() string {
	switch v {
	case Wait:
		return "wait"
	case Probe:
		return "probe"
	case Settled:
		return "settled"
	case Forget:
		return "forget"
	}
	return "verdict(?)"
}

// Decision is Settle's answer.
type Decision struct {
	Verdict Verdict
	Signal  Signal        // what released the file, when Settled
	After   time.Duration // when Wait: how long until the file is worth another look
	// Obs is the observation to keep from now on: Stat is the current
	// version (when the stat succeeded) and ChangedAt moves to now when the
	// version changed.
	Obs Observation
}

// Settle decides about a pending file: o is what was observed so far, cur
// what is true now, now the current time (from the watcher's clock) and p
// the watch's policy.
//
// A version is settled when it has not changed (size, mtime, identity) for
// p.Settle and no writer holds it open; a version held open is looked at
// again a settle period later, and released anyway once p.MaxOpenWait (if
// set) has passed since its last change. Readings of now should carry a
// monotonic clock reading, as time.Now's do, so that a step of the wall
// clock neither holds files back nor releases them early.
func Settle(o Observation, cur Current, now time.Time, p Policy) Decision {
	if cur.Err != nil {
		return Decision{Verdict: Forget, Obs: o}
	}
	if !cur.Stat.Same(o.Stat) {
		return Decision{Verdict: Wait, After: p.Settle, Obs: Observation{Stat: cur.Stat, ChangedAt: now}}
	}
	quiet := now.Sub(o.ChangedAt)
	if quiet < p.Settle {
		return Decision{Verdict: Wait, After: p.Settle - quiet, Obs: o}
	}
	switch cur.Writer {
	case WriterUnknown:
		return Decision{Verdict: Probe, Obs: o}
	case WriterHolds:
		if p.MaxOpenWait <= 0 {
			return Decision{Verdict: Wait, After: p.Settle, Obs: o}
		}
		if quiet >= p.MaxOpenWait {
			return Decision{Verdict: Settled, Signal: SignalTimeout, Obs: o}
		}
		return Decision{Verdict: Wait, After: min(p.Settle, p.MaxOpenWait-quiet), Obs: o}
	}
	sig := SignalQuiet
	switch {
	case cur.Probe != "":
		sig = cur.Probe
	case o.CloseWrite:
		sig = SignalClose
	}
	return Decision{Verdict: Settled, Signal: sig, Obs: o}
}
