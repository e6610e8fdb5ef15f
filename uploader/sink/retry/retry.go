// Package retry is the decorator that retries a target's transient
// failures (transport errors, timeouts, 5xx, 408, 429): exponential
// backoff with full jitter, a server's Retry-After honoured (up to the
// policy's cap), a bounded number of attempts, and a deadline per attempt
// scaled to the bytes it carries, so that a stalled connection fails
// instead of holding its caller. Answers are never retried: a refusal
// (permanent), "not there", "already there", and a request the gate did
// not send (sink.ErrUnavailable).
package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	retrygo "github.com/avast/retry-go/v4"

	"github.com/ferry-data/ferry/internal/defaults"
	"github.com/ferry-data/ferry/uploader/sink"
)

// Policy bounds the retries of one call. Zero values mean the documented
// defaults.
type Policy struct {
	Attempts     int           // tries per call, including the first (DefaultAttempts)
	InitialDelay time.Duration // first backoff (DefaultInitialDelay)
	MaxDelay     time.Duration // backoff cap, also caps Retry-After (DefaultMaxDelay)
}

// The defaults of zero Policy fields ([upload.retry]; internal/config uses
// these same constants).
const (
	DefaultAttempts     = 5
	DefaultInitialDelay = time.Second
	DefaultMaxDelay     = 30 * time.Second
)

func (p Policy) withDefaults() Policy {
	defaults.Set(&p.Attempts, DefaultAttempts)
	defaults.Set(&p.InitialDelay, DefaultInitialDelay)
	defaults.Set(&p.MaxDelay, DefaultMaxDelay)
	return p
}

// Options are the decorator's collaborators.
type Options struct {
	// OnRetry, when set, is told of every retry: the op, its number
	// (1-based) and the error it follows.
	OnRetry func(op string, n uint, err error)
	Log     *slog.Logger // default: discard (a call's sink.CallInfo.Log first)
}

// Middleware retries each call as p says.
func Middleware(p Policy, o Options) sink.Middleware {
	p = p.withDefaults()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, c sink.Call, next func(context.Context) error) error {
		ci := sink.CallOf(ctx)
		log := ci.Log
		if log == nil {
			log = o.Log
		}
		timeout := RequestTimeout(c.Size())
		return do(ctx, p, func(n uint, err error) {
			if o.OnRetry != nil {
				o.OnRetry(c.Op, n, err)
			}
			log.Debug("request failed; retrying", "op", c.Op, "retry", n, "error", err.Error())
		}, func() error {
			actx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := next(actx)
			if err != nil && ctx.Err() == nil && actx.Err() != nil {
				err = sink.NewTransient(c.Op, fmt.Errorf("%w after %v", sink.ErrStalled, timeout))
			}
			return classify(c, ci, err)
		})
	}
}

// classify says whether another attempt can help: the error as it is when
// it can, wrapped Unrecoverable when it cannot.
func classify(c sink.Call, ci sink.CallInfo, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sink.ErrChecksum) && c.Body != nil && !sink.IsPermanent(sink.InTransit(c.Op, err, c.Body, c.SHA256)):
		// The target rejected the bytes against their SHA-256 and they
		// still match it: damaged in transit, try again (a sink that did
		// not say so itself, as s3sink does, is told here). Otherwise they
		// are not what the caller hashed (a source that changed): below.
		return sink.InTransit(c.Op, err, c.Body, c.SHA256)
	case errors.Is(err, sink.ErrNotFound) && ci.RetryNotFound:
		return sink.NewTransient(c.Op, err)
	case errors.Is(err, sink.ErrNotFound), errors.Is(err, sink.ErrExists), errors.Is(err, sink.ErrUnavailable), sink.IsPermanent(err):
		return retrygo.Unrecoverable(err)
	}
	return err
}

// RequestTimeout is the deadline of one attempt carrying n bytes: a minute,
// plus the time to send them at a floor of 256 KiB/s.
func RequestTimeout(n int64) time.Duration {
	return time.Minute + time.Duration(n/(256<<10))*time.Second
}

// backoff is the delay before retry n (1-based) of a call that failed
// with err: the server's Retry-After when it gave one, otherwise full
// jitter over an exponential ceiling, both capped at max.
func backoff(n uint, err error, initial, max time.Duration, rnd func(time.Duration) time.Duration) time.Duration {
	if ra := sink.RetryAfter(err); ra > 0 {
		return min(ra, max)
	}
	ceil := initial
	for i := uint(1); i < n && ceil < max; i++ {
		ceil *= 2
	}
	ceil = min(ceil, max)
	return rnd(ceil)
}

// FullJitter is a random duration in [0, d].
func FullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// do runs fn until it succeeds, fails for good, the context ends, or the
// attempts run out. It returns fn's last error (unwrapped from
// Unrecoverable).
func do(ctx context.Context, p Policy, onRetry func(n uint, err error), fn func() error) error {
	err := retrygo.Do(fn,
		retrygo.Context(ctx),
		retrygo.Attempts(uint(p.Attempts)),
		retrygo.LastErrorOnly(true),
		retrygo.RetryIf(func(err error) bool {
			if !retrygo.IsRecoverable(err) {
				return false
			}
			return !sink.IsPermanent(err) && ctx.Err() == nil
		}),
		retrygo.DelayType(func(n uint, err error, _ *retrygo.Config) time.Duration {
			return backoff(n+1, err, p.InitialDelay, p.MaxDelay, FullJitter)
		}),
		retrygo.OnRetry(func(n uint, err error) {
			if onRetry != nil && int(n)+1 < p.Attempts {
				onRetry(n+1, err)
			}
		}),
	)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return errors.Join(ctx.Err(), err)
	}
	return err
}
