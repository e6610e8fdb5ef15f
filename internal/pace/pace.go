// Package pace shares one bandwidth limit (max_bandwidth) among every
// upload: a token bucket (golang.org/x/time/rate) that readers and writers
// draw from in small slices, so the rate stays smooth rather than bursty.
//
// The limit is a decorator of the targets' sinks (Middleware, stacked by
// uploader/target): it puts the limiter in each call's context, and a sink
// paces the body it sends with From(ctx), as it sends it.
package pace

import (
	"context"
	"io"

	"golang.org/x/time/rate"

	"github.com/ferry-data/ferry/uploader/sink"
)

type limiterKey struct{}

// Middleware makes every call through it pace its body by l (nil: no
// limit, and the middleware does nothing).
func Middleware(l *Limiter) sink.Middleware {
	return func(ctx context.Context, c sink.Call, next func(context.Context) error) error {
		if l != nil && c.Body != nil {
			ctx = context.WithValue(ctx, limiterKey{}, l)
		}
		return next(ctx)
	}
}

// From returns the limiter the call's context carries, or nil (no limit).
func From(ctx context.Context) *Limiter {
	l, _ := ctx.Value(limiterKey{}).(*Limiter)
	return l
}

// Slice is the most bytes taken from the bucket at once (WaitN fails for
// more than the burst).
const Slice = 64 << 10

// Limiter is a shared byte-rate limit. A nil *Limiter means no limit.
type Limiter struct {
	l *rate.Limiter
}

// New returns a limit of bytesPerSecond, or nil for none (<= 0).
func New(bytesPerSecond int64) *Limiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	return &Limiter{l: rate.NewLimiter(rate.Limit(bytesPerSecond), Slice)}
}

// Wait takes n bytes' worth of tokens, in slices. With no limit it only
// reports a context that is done.
func (p *Limiter) Wait(ctx context.Context, n int) error {
	if p == nil {
		return ctx.Err()
	}
	for n > 0 {
		k := min(n, Slice)
		if err := p.l.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// Reader returns r paced by p (r itself when p is nil).
func (p *Limiter) Reader(ctx context.Context, r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &reader{ctx: ctx, r: r, p: p}
}

type reader struct {
	ctx context.Context
	r   io.Reader
	p   *Limiter
}

func (r *reader) Read(b []byte) (int, error) {
	if len(b) > Slice {
		b = b[:Slice]
	}
	n, err := r.r.Read(b)
	if n > 0 {
		if werr := r.p.Wait(r.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}
