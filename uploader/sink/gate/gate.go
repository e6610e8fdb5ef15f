// Package gate guards one target for every caller: a circuit breaker
// (sony/gobreaker) that opens after consecutive transient failures and lets
// a probe through after its open timeout, a server's pause (Retry-After)
// and announced request budget (X-RateLimit-*) applied to every request,
// and the target's trouble logged once per change. A Gate is a
// sink.Middleware (Middleware), stacked by uploader/target with the other
// decorators.
package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/ferry-data/ferry/internal/defaults"
	"github.com/ferry-data/ferry/uploader/sink"
)

// Policy configures a target's circuit breaker. Zero values mean the
// documented defaults.
type Policy struct {
	FailureThreshold int           // consecutive transient failures that open it (DefaultFailureThreshold)
	OpenTimeout      time.Duration // how long it stays open before a probe (DefaultOpenTimeout)
	HalfOpenProbes   int           // requests let through to probe (DefaultHalfOpenProbes)
}

// The defaults of zero Policy fields ([upload.breaker]; internal/config
// uses these same constants).
const (
	DefaultFailureThreshold = 5
	DefaultOpenTimeout      = 30 * time.Second
	DefaultHalfOpenProbes   = 1
)

func (p Policy) withDefaults() Policy {
	defaults.Set(&p.FailureThreshold, DefaultFailureThreshold)
	defaults.Set(&p.OpenTimeout, DefaultOpenTimeout)
	defaults.Set(&p.HalfOpenProbes, DefaultHalfOpenProbes)
	return p
}

// Options are a Gate's collaborators. Zero values mean the defaults.
type Options struct {
	Log *slog.Logger     // default: discard
	Now func() time.Time // the clock of pauses and logs; default time.Now
}

// ErrCircuitOpen is returned, without sending anything, for a request to a
// target whose circuit breaker is open: the file goes back to the queue,
// unpenalised, and the dispatcher claims nothing for that target until the
// breaker lets a probe through.
var ErrCircuitOpen = fmt.Errorf("circuit breaker open: target unreachable, upload paused (%w)", sink.ErrUnavailable)

// Gate guards one target for the whole pipeline: every request to it first
// passes the gate, which holds it while the server asked for a pause
// (Retry-After) and while the target's circuit breaker is open. So an
// outage costs a probe per open period, not a retry storm from every
// worker, and a server's pause applies to all workers, not only to the one
// that was told.
type Gate struct {
	target string
	cb     *gobreaker.TwoStepCircuitBreaker[struct{}]
	poll   time.Duration
	log    *slog.Logger
	now    func() time.Time

	mu          sync.Mutex
	pausedUntil time.Time
	// A server's announced budget (X-RateLimit-*): request starts are
	// spread over what is left of its window.
	spacing    time.Duration
	limitUntil time.Time
	nextStart  time.Time

	openedAt  atomic.Int64 // unix ns when the breaker opened (from closed)
	openSince atomic.Int64 // unix ns of its latest move to open (a failed probe too)
	timeout   time.Duration
	held      atomic.Int64 // requests that waited while it was open
	probes    atomic.Int64 // half-open probes since it opened

	trouble *trouble // transient failures, logged once per change of state
}

// New returns the gate of the target named target.
func New(target string, p Policy, o Options) *Gate {
	p = p.withDefaults()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	g := &Gate{target: target, log: o.Log, now: o.Now, poll: min(max(p.OpenTimeout/10, 10*time.Millisecond), time.Second), timeout: p.OpenTimeout,
		trouble: &trouble{target: target, log: o.Log}}
	g.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        target,
		MaxRequests: uint32(p.HalfOpenProbes),
		Timeout:     p.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(p.FailureThreshold) },
		// The server answered, even if with a refusal or "not there": it
		// is up.
		IsSuccessful: answered,
		// Our own shutdown says nothing about the target.
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
		},
		// Runs under the breaker's lock: log only, never call back into it.
		OnStateChange: g.changed,
	})
	return g
}

// answered reports whether the target answered a request: it succeeded,
// refused for good (a 4xx), or said the object is not there or already is.
func answered(err error) bool {
	return err == nil || sink.IsPermanent(err) || errors.Is(err, sink.ErrNotFound) || errors.Is(err, sink.ErrExists)
}

// Middleware is the gate as a sink.Middleware: every attempt of every call
// passes it. It waits out a server's pause and budget, asks the breaker
// (ErrCircuitOpen, without sending, while it is open), reports the
// answer to the breaker and the trouble log, and takes in a Retry-After.
func (g *Gate) Middleware() sink.Middleware {
	return func(ctx context.Context, c sink.Call, next func(context.Context) error) error {
		done, err := g.enter(ctx)
		if err != nil {
			return err
		}
		err = next(ctx)
		ci := sink.CallOf(ctx)
		switch {
		case answered(err):
			g.trouble.ok(g.now())
		case ctx.Err() == nil:
			log := ci.Log
			if log == nil {
				log = g.log
			}
			g.trouble.fail(g.now(), c.Op, err, log)
			if ci.Failed != nil {
				ci.Failed(c.Op, err)
			}
		}
		done(err)
		if ra := sink.RetryAfter(err); ra > 0 {
			g.pause(g.now().Add(ra))
		}
		return err
	}
}

// Failing reports whether the target's requests are failing now (its
// trouble is logged; repetitions go to debug level).
func (g *Gate) Failing() bool { return g.trouble.failing.Load() }

func (g *Gate) changed(_ string, from, to gobreaker.State) {
	now := g.now()
	switch to {
	case gobreaker.StateOpen:
		g.openSince.Store(now.UnixNano())
		if from == gobreaker.StateClosed {
			g.openedAt.Store(now.UnixNano())
			g.held.Store(0)
			g.probes.Store(0)
			g.log.Warn("target unreachable: circuit breaker open, uploads to it paused; work stays queued in the journal", "target", g.target)
		}
	case gobreaker.StateHalfOpen:
		// The first probe of an outage is news; the ones after a failed
		// probe are repetitions.
		if g.probes.Add(1) == 1 {
			g.log.Info("circuit breaker half-open: probing the target (further probes are logged at debug level)", "target", g.target)
		} else {
			g.log.Debug("circuit breaker half-open: probing the target again", "target", g.target, "probes", g.probes.Load())
		}
	case gobreaker.StateClosed:
		g.log.Info("target reachable again: circuit breaker closed, uploads resume", "target", g.target,
			"down_for", now.Sub(time.Unix(0, g.openedAt.Load())).Round(time.Millisecond).String(), "requests_held", g.held.Load(), "probes", g.probes.Load())
	}
}

// State is the breaker's state, for status and metrics: "closed",
// "half-open" or "open".
func (g *Gate) State() string { return g.cb.State().String() }

// Open reports whether the breaker is open (no probe due yet): the
// dispatcher claims nothing for the target.
func (g *Gate) Open() bool { return g.cb.State() == gobreaker.StateOpen }

// ProbeIn is how long until an open breaker lets a probe through.
func (g *Gate) ProbeIn(now time.Time) time.Duration {
	d := time.Unix(0, g.openSince.Load()).Add(g.timeout).Sub(now)
	return max(d+time.Millisecond, g.poll/10, time.Millisecond)
}

// enter waits until a request may start (a server's pause has passed; the
// probe of a half-open breaker has its answer) and returns the callback
// that reports its outcome to the breaker, or ErrCircuitOpen.
func (g *Gate) enter(ctx context.Context) (func(error), error) {
	waited := false
	for {
		g.mu.Lock()
		now := g.now()
		pause := g.pausedUntil.Sub(now)
		if pause <= 0 {
			pause = g.takeSlot(now)
		}
		g.mu.Unlock()
		if pause > 0 {
			if err := sleep(ctx, pause); err != nil {
				return nil, err
			}
			continue
		}
		done, err := g.cb.Allow()
		if err == nil {
			return done, nil
		}
		if errors.Is(err, gobreaker.ErrOpenState) {
			g.held.Add(1)
			return nil, ErrCircuitOpen
		}
		// Half-open, with its probes out: wait for their answer.
		if !waited {
			waited = true
			g.held.Add(1)
		}
		if err := sleep(ctx, g.poll); err != nil {
			return nil, err
		}
	}
}

// takeSlot returns how long to wait before the next request may start
// under a server's announced budget, and books the slot when it is now.
// Called with mu held.
func (g *Gate) takeSlot(now time.Time) time.Duration {
	if g.spacing <= 0 || !now.Before(g.limitUntil) {
		return 0
	}
	if wait := g.nextStart.Sub(now); wait > 0 {
		return wait
	}
	g.nextStart = now.Add(g.spacing)
	return 0
}

// lowBudget is the remaining request budget below which ferry spreads its
// requests over the server's window instead of spending it at once.
const lowBudget = 20

// RateLimited takes in a server's announced budget (s3sink's OnRateLimit):
// with nothing left, every request waits for the reset; with little left,
// requests are spread evenly until then; with plenty, nothing changes.
func (g *Gate) RateLimited(rl sink.RateLimit) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case !rl.Reset.After(now):
		g.spacing = 0
	case rl.Remaining <= 0:
		g.spacing = 0
		if rl.Reset.After(g.pausedUntil) {
			g.log.Info("the target's request budget is spent: uploads to it wait for its reset", "target", g.target,
				"until", rl.Reset.UTC().Format(time.RFC3339))
			g.pausedUntil = rl.Reset
		}
	case rl.Remaining < lowBudget:
		spacing := rl.Reset.Sub(now) / time.Duration(rl.Remaining)
		if g.spacing == 0 {
			g.log.Info("the target's request budget runs low: spreading requests", "target", g.target,
				"remaining", rl.Remaining, "reset", rl.Reset.UTC().Format(time.RFC3339), "spacing", spacing.String())
		}
		g.spacing, g.limitUntil = spacing, rl.Reset
	default:
		g.spacing = 0
	}
}

// pause holds every request to the target until the given time.
func (g *Gate) pause(until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until.After(g.pausedUntil) {
		if !g.pausedUntil.After(g.now()) {
			g.log.Info("the target asked for a pause (Retry-After): all uploads to it wait", "target", g.target, "until", until.UTC().Format(time.RFC3339Nano))
		}
		g.pausedUntil = until
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
