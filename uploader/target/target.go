// Package target is where a configured target's sink gets the decorators
// every request to it passes, composed in this one place for every caller
// (the uploader, the checkpointer, the orphan sweep, config check
// --online), so that none of them can bypass a server's pause or an open
// circuit breaker:
//
//	retry → gate → observe → pace → the target's own sink
//
// retry (uploader/sink/retry) is outermost: each attempt it makes passes
// the gate (uploader/sink/gate: breaker, Retry-After, request budget),
// which an open breaker stops without using up retries; observe reports
// every attempt (metrics, progress, the last failure); pace
// (internal/pace) paces the bodies sent, as the sink sends them.
package target

import (
	"context"
	"log/slog"
	"time"

	"github.com/ferry-data/ferry/internal/pace"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/gate"
	"github.com/ferry-data/ferry/uploader/sink/retry"
)

// Observer is told of what happens to the requests of every target.
type Observer interface {
	// Attempt reports one attempt of a call: its op, the body bytes it
	// carried, whether they are a file's data (sink.CallInfo.Chunk), how
	// long it took, and its error (nil: it succeeded).
	Attempt(target, op string, bytes int64, chunk bool, took time.Duration, err error)
	// Retried reports that a call is tried again after a transient failure.
	RequestRetried(target, op string)
}

// Options are a target's policies and collaborators. Zero values mean the
// documented defaults.
type Options struct {
	Retry    retry.Policy
	Breaker  gate.Policy
	Limiter  *pace.Limiter // max_bandwidth, shared by every target; nil: none
	Observer Observer      // nil: none
	Log      *slog.Logger  // default: discard
	Now      func() time.Time
}

// Target is a configured target: its name, its sink with the decorators,
// and its gate (for the dispatcher and status).
type Target struct {
	name string
	sink sink.Sink
	raw  sink.Sink
	gate *gate.Gate
}

// New decorates raw, the target's own sink.
func New(name string, raw sink.Sink, o Options) *Target {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Log.With("target", name)
	g := gate.New(name, o.Breaker, gate.Options{Log: log, Now: o.Now})
	var onRetry func(op string, n uint, err error)
	if o.Observer != nil {
		onRetry = func(op string, _ uint, _ error) { o.Observer.RequestRetried(name, op) }
	}
	s := sink.Chain(raw,
		retry.Middleware(o.Retry, retry.Options{OnRetry: onRetry, Log: log}),
		g.Middleware(),
		observe(name, o.Observer, o.Now),
		pace.Middleware(o.Limiter),
	)
	return &Target{name: name, sink: s, raw: raw, gate: g}
}

// Name is the target's name in the configuration.
func (t *Target) Name() string { return t.name }

// Raw is the target's own sink, without the decorators: for what only
// some sinks offer besides sink.Sink (sink.Reader), used outside the
// upload path.
func (t *Target) Raw() sink.Sink { return t.raw }

// Sink is the target's sink, every call through the decorators.
func (t *Target) Sink() sink.Sink { return t.sink }

// Gate is the target's gate: its breaker's state, a server's pauses.
func (t *Target) Gate() *gate.Gate { return t.gate }

// observe reports every attempt to the observer, and the bytes of every
// successful one to the caller's progress (sink.CallInfo).
func observe(name string, o Observer, now func() time.Time) sink.Middleware {
	return func(ctx context.Context, c sink.Call, next func(context.Context) error) error {
		start := now()
		err := next(ctx)
		ci := sink.CallOf(ctx)
		if o != nil {
			o.Attempt(name, c.Op, c.Size(), ci.Chunk, now().Sub(start), err)
		}
		if err == nil && c.Size() > 0 && ci.Progress != nil {
			ci.Progress(c.Size())
		}
		return err
	}
}
