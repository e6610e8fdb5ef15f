package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferry-data/ferry/uploader/sink"
)

// trouble logs a target's transient request failures once per change of
// state, not once per retry: the first failure and each new kind of
// failure at Warn, the recovery with counts at Info, and every attempt at
// Debug. Many workers failing against one target while it is down write
// one line, not one per attempt.
type trouble struct {
	target  string
	log     *slog.Logger
	failing atomic.Bool // fast path for ok, called after every request

	mu       sync.Mutex
	since    time.Time
	last     string         // the latest kind
	kinds    map[string]int // failures of each kind in this episode (bounded)
	failures int            // since the first
}

// maxKinds bounds the kinds one episode remembers; more are logged at Debug.
const maxKinds = 16

// fail notes a transient failure of op; log carries the file's attributes.
func (t *trouble) fail(now time.Time, op string, err error, log *slog.Logger) {
	kind := errorKind(err)
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.failing.Load() {
		t.failing.Store(true)
		t.since, t.failures, t.kinds = now, 0, map[string]int{}
	}
	t.failures++
	seen := t.kinds[kind] > 0
	if seen || len(t.kinds) < maxKinds {
		t.kinds[kind]++
	}
	prev := t.last
	t.last = kind
	switch {
	case t.failures == 1:
		log.Warn("requests to the target fail; retrying (repeats are logged at debug level until it recovers)",
			"op", op, "error", err.Error(), "error_kind", kind)
	case !seen && len(t.kinds) <= maxKinds && t.kinds[kind] == 1:
		log.Warn("requests to the target now fail differently; retrying", "op", op, "error", err.Error(),
			"error_kind", kind, "previous_kind", prev, "failures", t.failures)
	default:
		log.Debug("request failed again", "op", op, "error", err.Error(), "error_kind", kind, "failures", t.failures)
	}
}

// ok notes that a request got an answer; after failures it logs the recovery.
func (t *trouble) ok(now time.Time) {
	if !t.failing.Load() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.failing.Load() {
		return
	}
	t.failing.Store(false)
	t.log.Info("requests to the target succeed again", "target", t.target, "failures", t.failures,
		"error_kinds", len(t.kinds), "last_error_kind", t.last, "failing_for", now.Sub(t.since).Round(time.Millisecond).String())
}

// errorKind names what went wrong without the parts that vary between
// attempts (request IDs, ports): the HTTP status and code, a stall, the
// system call error, or a timeout; otherwise the innermost error's text.
func errorKind(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if se, ok := e.(*sink.Error); ok && se.Status != 0 {
			if se.Code != "" {
				return fmt.Sprintf("HTTP %d %s", se.Status, se.Code)
			}
			return fmt.Sprintf("HTTP %d", se.Status)
		}
	}
	if errors.Is(err, sink.ErrStalled) {
		return "stalled"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			return err.Error()
		}
		err = inner
	}
}
