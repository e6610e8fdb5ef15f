package uploader

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/avast/retry-go/v4"

	"github.com/ferry-data/ferry/uploader/sink"
)

// RetryPolicy bounds the retries of one request. The zero value means the
// documented defaults.
type RetryPolicy struct {
	Attempts     int           // tries per request, including the first (DefaultRetryAttempts)
	InitialDelay time.Duration // first backoff (DefaultRetryInitialDelay)
	MaxDelay     time.Duration // backoff cap, also caps Retry-After (DefaultRetryMaxDelay)
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	orDefault(&p.Attempts, DefaultRetryAttempts)
	orDefault(&p.InitialDelay, DefaultRetryInitialDelay)
	orDefault(&p.MaxDelay, DefaultRetryMaxDelay)
	return p
}

// backoff is the delay before retry n (1-based) of a request that failed
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

func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// do runs fn until it succeeds, fails permanently, the context ends, or the
// attempts run out. It returns fn's last error.
func (p RetryPolicy) do(ctx context.Context, onRetry func(n uint, err error), fn func() error) error {
	p = p.withDefaults()
	err := retry.Do(fn,
		retry.Context(ctx),
		retry.Attempts(uint(p.Attempts)),
		retry.LastErrorOnly(true),
		retry.RetryIf(func(err error) bool {
			if !retry.IsRecoverable(err) {
				return false
			}
			return !sink.IsPermanent(err) && ctx.Err() == nil
		}),
		retry.DelayType(func(n uint, err error, _ *retry.Config) time.Duration {
			return backoff(n+1, err, p.InitialDelay, p.MaxDelay, fullJitter)
		}),
		retry.OnRetry(func(n uint, err error) {
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

// requeueDelay is how long a file waits in the journal after a request ran
// out of retries: it doubles with the file's attempts, from 30 s to 1 h,
// with jitter so that files queued together do not return together.
func requeueDelay(attempts int, rnd func(time.Duration) time.Duration) time.Duration {
	const base, max = 30 * time.Second, time.Hour
	d := base
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rnd(d/2)
}
