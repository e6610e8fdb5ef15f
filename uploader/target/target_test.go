package target

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-data/ferry/internal/pace"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/gate"
	"github.com/ferry-data/ferry/uploader/sink/memsink"
	"github.com/ferry-data/ferry/uploader/sink/retry"
)

var errRefused = errors.New("connect: connection refused")

// counter is an Observer that counts.
type counter struct {
	mu       sync.Mutex
	attempts map[string]int
	failed   map[string]int
	retried  map[string]int
	chunks   int
}

func newCounter() *counter {
	return &counter{attempts: map[string]int{}, failed: map[string]int{}, retried: map[string]int{}}
}

func (c *counter) Attempt(_, op string, bytes int64, chunk bool, _ time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts[op]++
	if err != nil {
		c.failed[op]++
	}
	if chunk && err == nil {
		c.chunks++
	}
}

func (c *counter) RequestRetried(_, op string) { c.mu.Lock(); c.retried[op]++; c.mu.Unlock() }

func body(n int) ([]byte, sink.Digest) {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b, sha256.Sum256(b)
}

// The breaker opens inside a call's retries: the attempts after it are
// not sent, and the call ends at once with sink.ErrUnavailable rather than
// sleeping through its remaining backoffs.
func TestOpenBreakerEndsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := memsink.New(memsink.Options{Before: func(op, _ string, _ int) error { return sink.NewTransient(op, errRefused) }})
		obs := newCounter()
		tg := New("t", m, Options{Retry: retry.Policy{Attempts: 10, InitialDelay: time.Second, MaxDelay: time.Second},
			Breaker: gate.Policy{FailureThreshold: 3, OpenTimeout: time.Minute}, Observer: obs})
		b, sum := body(100)
		start := time.Now()
		err := tg.Sink().Put(context.Background(), "k", b, sum, false)
		if !errors.Is(err, sink.ErrUnavailable) || !errors.Is(err, gate.ErrCircuitOpen) {
			t.Fatalf("Put = %v, want the breaker's refusal", err)
		}
		if n := m.Calls(memsink.OpPut); n != 3 {
			t.Fatalf("%d Puts reached the target, want the breaker's threshold (3)", n)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("the call took %v: it slept through retries the breaker had stopped", took)
		}
		if obs.retried["Put"] != 3 || obs.failed["Put"] != 3 {
			t.Fatalf("observer: %d retries, %d failed attempts; want 3 and 3", obs.retried["Put"], obs.failed["Put"])
		}
		if tg.Gate().State() != "open" || !tg.Gate().Open() {
			t.Fatalf("gate %s", tg.Gate().State())
		}
	})
}

// A server's Retry-After to one call holds every other call to the target
// (whoever makes it: a checkpoint, the orphan sweep, an upload) until then.
func TestRetryAfterHoldsEveryCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var once atomic.Bool
		m := memsink.New(memsink.Options{Before: func(op, _ string, _ int) error {
			if op == memsink.OpListUploads && once.CompareAndSwap(false, true) {
				return &sink.Error{Class: sink.Transient, Op: op, Status: 429, RetryAfter: 5 * time.Second, Err: errors.New("slow down")}
			}
			return nil
		}})
		tg := New("t", m, Options{})
		start := time.Now()
		var swept time.Duration
		done := make(chan struct{})
		go func() {
			defer close(done)
			if _, err := tg.Sink().ListUploads(context.Background(), ""); err != nil {
				t.Errorf("ListUploads: %v", err)
			}
			swept = time.Since(start)
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		b, sum := body(10)
		if err := tg.Sink().Put(context.Background(), "k", b, sum, false); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < 5*time.Second {
			t.Fatalf("a Put went out %v after the 429 with Retry-After: 5, before the pause ended", waited)
		}
		<-done
		if swept < 5*time.Second {
			t.Fatalf("the retried ListUploads came back after %v, within the server's pause", swept)
		}
	})
}

// Bytes the target rejected against their SHA-256 are sent again when
// they still match it (damage in transit), and not when they do not (the
// caller's source changed under it).
func TestChecksumMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var flip atomic.Bool
		flip.Store(true)
		m := memsink.New(memsink.Options{Before: func(op, _ string, _ int) error {
			if op == memsink.OpPut && flip.CompareAndSwap(true, false) {
				return &sink.Error{Class: sink.Permanent, Op: op, Status: 400, Code: "BadDigest", Err: sink.ErrChecksum}
			}
			return nil
		}})
		tg := New("t", m, Options{})
		b, sum := body(1000)
		if err := tg.Sink().Put(context.Background(), "k", b, sum, false); err != nil {
			t.Fatalf("damage in transit: %v, want it sent again", err)
		}
		if n := m.Calls(memsink.OpPut); n != 2 {
			t.Fatalf("%d Puts, want 2", n)
		}
		// The bytes no longer match the hash the caller journaled.
		id, err := tg.Sink().CreateMultipart(context.Background(), "m", 1000)
		if err != nil {
			t.Fatal(err)
		}
		changed := append([]byte(nil), b...)
		changed[0] ^= 1
		_, err = tg.Sink().UploadPart(context.Background(), "m", id, sink.Part{Number: 1, Size: 1000, SHA256: sum}, changed)
		if !errors.Is(err, sink.ErrChecksum) || m.Calls(memsink.OpUploadPart) != 1 {
			t.Fatalf("changed bytes: %v after %d attempts, want ErrChecksum after 1", err, m.Calls(memsink.OpUploadPart))
		}
	})
}

// stallOnce is a target whose first Put hangs until its context ends: a
// connection that makes no progress.
type stallOnce struct {
	*memsink.Sink
	stalled atomic.Bool
}

func (s *stallOnce) Put(ctx context.Context, key string, body []byte, sum sink.Digest, ifAbsent bool) error {
	if s.stalled.CompareAndSwap(false, true) {
		<-ctx.Done()
		return sink.NewTransient("Put", ctx.Err())
	}
	return s.Sink.Put(ctx, key, body, sum, ifAbsent)
}

// An attempt that makes no progress fails at its deadline (scaled to its
// size) as a stall, and is retried; nothing hangs.
func TestStalledAttemptIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &stallOnce{Sink: memsink.New(memsink.Options{})}
		obs := newCounter()
		tg := New("t", m, Options{Retry: retry.Policy{InitialDelay: time.Millisecond}, Observer: obs})
		b, sum := body(1 << 20)
		start := time.Now()
		if err := tg.Sink().Put(context.Background(), "k", b, sum, false); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if took, limit := time.Since(start), retry.RequestTimeout(1<<20); took < limit {
			t.Fatalf("the stalled attempt gave up after %v, before its deadline %v", took, limit)
		}
		if obs.failed["Put"] != 1 || obs.chunks != 0 {
			t.Fatalf("observer: %d failed attempts, %d chunks; want 1 and 0 (not marked as file data)", obs.failed["Put"], obs.chunks)
		}
		if _, ok := m.Object("k"); !ok {
			t.Fatal("the retried Put did not land")
		}
	})
}

// "Not there" is an answer, never retried, unless the caller says the
// object may not be visible yet.
func TestNotFoundIsAnAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := memsink.New(memsink.Options{})
		tg := New("t", m, Options{Retry: retry.Policy{Attempts: 4, InitialDelay: time.Millisecond}})
		if _, err := tg.Sink().Stat(context.Background(), "missing"); !errors.Is(err, sink.ErrNotFound) || m.Calls(memsink.OpStat) != 1 {
			t.Fatalf("Stat: %v after %d calls, want ErrNotFound after 1", err, m.Calls(memsink.OpStat))
		}
		ctx := sink.WithCall(context.Background(), sink.CallInfo{RetryNotFound: true})
		if _, err := tg.Sink().Stat(ctx, "missing"); !errors.Is(err, sink.ErrNotFound) || m.Calls(memsink.OpStat) != 1+4 {
			t.Fatalf("Stat with RetryNotFound: %v after %d calls, want 4 more", err, m.Calls(memsink.OpStat)-1)
		}
		if tg.Gate().State() != "closed" {
			t.Fatalf("answers opened the breaker: %s", tg.Gate().State())
		}
	})
}

// The caller's progress hears of the bytes of each call that succeeded,
// once; file data is counted as chunks, ferry's own objects are not.
func TestProgressAndChunks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := memsink.New(memsink.Options{})
		obs := newCounter()
		tg := New("t", m, Options{Observer: obs})
		var got atomic.Int64
		ctx := sink.WithCall(context.Background(), sink.CallInfo{Progress: func(n int64) { got.Add(n) }, Chunk: true})
		for i := range 3 {
			b, sum := body(1000 + i)
			if err := tg.Sink().Put(ctx, fmt.Sprint(i), b, sum, false); err != nil {
				t.Fatal(err)
			}
		}
		b, sum := body(50)
		if _, err := sink.PutRetained(context.Background(), tg.Sink(), "_ferry/checkpoints/x", b, sum, true, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got.Load() != 1000+1001+1002 || obs.chunks != 3 {
			t.Fatalf("progress %d bytes, %d chunks; want 3003 and 3", got.Load(), obs.chunks)
		}
	})
}

// max_bandwidth: one limit across every caller and target, drawn by the
// bodies as they are sent.
func TestBandwidthIsShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := pace.New(1 << 20)
		a := New("a", memsink.New(memsink.Options{}), Options{Limiter: lim})
		b := New("b", memsink.New(memsink.Options{}), Options{Limiter: lim})
		start := time.Now()
		var wg sync.WaitGroup
		for i, tg := range []*Target{a, b, a, b} {
			wg.Go(func() {
				body, sum := body(1 << 20)
				if err := tg.Sink().Put(context.Background(), fmt.Sprint(i), body, sum, false); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if took := time.Since(start); took < 3900*time.Millisecond {
			t.Fatalf("4 MiB at 1 MiB/s over two targets took %v", took)
		}
	})
}
