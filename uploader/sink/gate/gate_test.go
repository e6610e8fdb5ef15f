package gate

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/ferry-data/ferry/uploader/sink"
)

var (
	errDown   = sink.NewTransient("Put", errors.New("connection refused"))
	errDenied = &sink.Error{Class: sink.Permanent, Op: "Put", Status: 403}
)

func testGate() *Gate {
	return New("t", Policy{FailureThreshold: 3, OpenTimeout: 10 * time.Second}, Options{})
}

func request(t *testing.T, g *Gate, result error) {
	t.Helper()
	done, err := g.enter(context.Background())
	if err != nil {
		t.Fatalf("enter: %v", err)
	}
	done(result)
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGate()
		for range 3 {
			request(t, g, errDown)
		}
		if g.cb.State() != gobreaker.StateOpen {
			t.Fatalf("after 3 transient failures: %v, want open", g.cb.State())
		}
		if _, err := g.enter(context.Background()); !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("enter while open = %v, want ErrCircuitOpen (nothing sent)", err)
		}
		time.Sleep(11 * time.Second)
		probe, err := g.enter(context.Background())
		if err != nil {
			t.Fatalf("after the open timeout, the probe: %v", err)
		}
		// A second request waits for the probe's answer.
		var waited time.Duration
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			done, err := g.enter(context.Background())
			if err != nil {
				t.Errorf("after a good probe: %v", err)
				return
			}
			waited = time.Since(start)
			done(nil)
		}()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		probe(nil)
		wg.Wait()
		if g.cb.State() != gobreaker.StateClosed || waited < 3*time.Second {
			t.Fatalf("after a good probe: %v (second request waited %v), want closed after the probe", g.cb.State(), waited)
		}
	})
}

func TestBreakerFailedProbeReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGate()
		for range 3 {
			request(t, g, errDown)
		}
		time.Sleep(11 * time.Second)
		request(t, g, errDown) // the probe fails
		if _, err := g.enter(context.Background()); !errors.Is(err, ErrCircuitOpen) {
			t.Fatalf("after a failed probe: %v, want open again", err)
		}
	})
}

func TestBreakerIgnoresRefusalsAndShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGate()
		for range 10 {
			request(t, g, errDenied)        // the server answered: it is up
			request(t, g, context.Canceled) // our own shutdown
			request(t, g, context.DeadlineExceeded)
		}
		if g.cb.State() != gobreaker.StateClosed {
			t.Fatalf("%v after refusals and cancellations, want closed", g.cb.State())
		}
		// Failures must be consecutive.
		request(t, g, errDown)
		request(t, g, errDown)
		request(t, g, nil)
		request(t, g, errDown)
		if g.cb.State() != gobreaker.StateClosed {
			t.Fatalf("%v after interrupted failures, want closed", g.cb.State())
		}
	})
}

func TestRetryAfterPausesEveryRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGate()
		start := time.Now()
		g.pause(start.Add(7 * time.Second))
		var mu sync.Mutex
		var first time.Duration = time.Hour
		var wg sync.WaitGroup
		for range 4 { // every worker, not only the one that was told
			wg.Add(1)
			go func() {
				defer wg.Done()
				done, err := g.enter(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				first = min(first, time.Since(start))
				mu.Unlock()
				done(nil)
			}()
		}
		wg.Wait()
		if first < 7*time.Second {
			t.Fatalf("a request started %v after a 7 s Retry-After", first)
		}
		// A shorter pause does not cut a longer one short.
		g.pause(time.Now().Add(5 * time.Second))
		g.pause(time.Now().Add(time.Second))
		t0 := time.Now()
		request(t, g, nil)
		if d := time.Since(t0); d < 5*time.Second {
			t.Fatalf("waited %v, want the longer pause (5 s)", d)
		}
	})
}

func TestEnterGivesUpOnShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGate()
		g.pause(time.Now().Add(time.Hour))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := g.enter(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("enter during a long pause with a cancelled context = %v", err)
		}
	})
}

func TestRateLimitBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGate()
		// Plenty left: no effect.
		g.RateLimited(sink.RateLimit{Remaining: 500, Reset: time.Now().Add(time.Minute)})
		t0 := time.Now()
		request(t, g, nil)
		request(t, g, nil)
		if time.Since(t0) != 0 {
			t.Fatalf("a generous budget slowed requests down by %v", time.Since(t0))
		}
		// 4 left for the next 8 s: one request every 2 s.
		g.RateLimited(sink.RateLimit{Remaining: 4, Reset: time.Now().Add(8 * time.Second)})
		t0 = time.Now()
		var starts []time.Duration
		for range 4 {
			request(t, g, nil)
			starts = append(starts, time.Since(t0))
		}
		for i := 1; i < len(starts); i++ {
			if gap := starts[i] - starts[i-1]; gap < 2*time.Second {
				t.Fatalf("requests %d and %d started %v apart, want the budget spread (2 s): %v", i-1, i, gap, starts)
			}
		}
		// Nothing left: wait for the reset.
		reset := time.Now().Add(30 * time.Second)
		g.RateLimited(sink.RateLimit{Remaining: 0, Reset: reset})
		request(t, g, nil)
		if now := time.Now(); now.Before(reset) {
			t.Fatalf("a request started %v before the budget's reset", reset.Sub(now))
		}
	})
}
