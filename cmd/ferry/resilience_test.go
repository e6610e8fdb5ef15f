package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/internal/testsrv"
)

// TestResilience drives the real CLI through a fault-injecting proxy in
// front of versitygw: a path that is always refused, a server that asks
// for a pause, and an outage.
func TestResilience(t *testing.T) {
	srv := testsrv.StartS3(t)
	t.Run("RefusedFileIsDeadLettered", func(t *testing.T) { resilienceRefused(t, srv) })
	t.Run("RetryAfterHoldsEveryWorker", func(t *testing.T) { resilienceRetryAfter(t, srv) })
	t.Run("OutageCostsOnlyProbes", func(t *testing.T) { resilienceOutage(t, srv) })
	t.Run("ResetMidBody", func(t *testing.T) { resilienceReset(t, srv) })
}

// The connection is reset halfway through the body of the first try of
// each upload request: they are retried and every file lands intact.
func resilienceReset(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "res-reset", true)
	var mu sync.Mutex
	resets := 0
	seen := map[string]bool{}
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || r.ContentLength < 1000 || strings.Contains(r.URL.Path, daemon.CheckpointDir) {
			return false
		}
		mu.Lock()
		if seen[r.URL.Path+"?"+r.URL.Query().Get("partNumber")] {
			mu.Unlock()
			return false
		}
		seen[r.URL.Path+"?"+r.URL.Query().Get("partNumber")] = true
		resets++
		mu.Unlock()
		io.CopyN(io.Discard, r.Body, r.ContentLength/2)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return true
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, not a polite close
		}
		conn.Close()
		return true
	})
	files := map[string][]byte{"a.bin": e2eData(120, 40_000), "b.bin": e2eData(121, 2*e2eChunk+9), "c.bin": e2eData(122, 70_000)}
	e2eWriteFiles(t, e.watch, files)
	c := e.config()
	c.Endpoint = endpoint
	e.writeConfig(c)
	e.mustOnce(len(files), e2eTotal(files))
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(files))
	e2eAssertNoMultipart(t, srv, e.bucket)
	mu.Lock()
	defer mu.Unlock()
	if resets != 4 { // a.bin, c.bin and the two large parts of b.bin
		t.Fatalf("%d connections reset, want 4", resets)
	}
}

// A 403 for one path: that file is dead-lettered after one attempt, the
// others land; dlq retry after the cause is fixed uploads it.
func resilienceRefused(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "res-refused", true)
	var mu sync.Mutex
	forbidden := true
	refused := 0
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if forbidden && strings.Contains(r.URL.Path, "secret") {
			refused++
			e2eS3Error(w, http.StatusForbidden, "AccessDenied")
			return true
		}
		return false
	})
	files := map[string][]byte{"a.bin": e2eData(70, 1000), "secret/b.bin": e2eData(71, 2000), "c.bin": e2eData(72, e2eChunk+3)}
	e2eWriteFiles(t, e.watch, files)
	c := e.config()
	c.Endpoint = endpoint
	e.writeConfig(c)
	code, stdout, _ := e.runOnce()
	if code != exitFailed || !strings.Contains(stdout, "uploaded 2 files") || !strings.Contains(stdout, "secret") {
		t.Fatalf("run: exit %d\n%s", code, stdout)
	}
	mu.Lock()
	if refused > 3 {
		t.Errorf("the refused file was tried %d times; a 403 is permanent", refused)
	}
	forbidden = false // the permissions are fixed
	mu.Unlock()
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"dlq", "retry", "--all", "--config", e.cfgPath}, &out, &errb, e.getenv); code != 0 {
		t.Fatalf("dlq retry: %d %s", code, errb.String())
	}
	e.mustOnce(1, 2000)
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(files))
}

// A 429 with Retry-After: 2 to the first upload request: once ferry has
// the answer, no upload request from any worker starts before the pause is
// over (requests already on their way when it was answered aside).
func resilienceRetryAfter(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "res-retry-after", true)
	var mu sync.Mutex
	var told, pausedUntil time.Time
	var inside []time.Duration
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || strings.Contains(r.URL.Path, daemon.CheckpointDir) {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if pausedUntil.IsZero() {
			told, pausedUntil = now, now.Add(2*time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(2))
			e2eS3Error(w, http.StatusTooManyRequests, "SlowDown")
			return true
		}
		// Slack: 200 ms for the answer to reach ferry, 50 ms at the end.
		if now.After(told.Add(200*time.Millisecond)) && now.Before(pausedUntil.Add(-50*time.Millisecond)) {
			inside = append(inside, pausedUntil.Sub(now))
		}
		return false
	})
	files := map[string][]byte{}
	for i := range 8 {
		files[fmt.Sprintf("f%d.bin", i)] = e2eData(uint64(80+i), 5000+i)
	}
	e2eWriteFiles(t, e.watch, files)
	c := e.config()
	c.Endpoint = endpoint
	e.writeConfig(c)
	e.mustOnce(len(files), e2eTotal(files))
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(files))
	mu.Lock()
	defer mu.Unlock()
	if len(inside) > 0 {
		t.Fatalf("%d upload requests started inside the Retry-After window (%v before its end)", len(inside), inside)
	}
}

// The target is unreachable for a while: the breaker opens after its
// threshold, and while it is out the daemon sends only its probes; when
// the target is back, everything lands.
func resilienceOutage(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "res-outage", true)
	var mu sync.Mutex
	down := true
	during := 0
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if !down {
			return false
		}
		during++
		e2eS3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable")
		return true
	})
	files := map[string][]byte{}
	for i := range 20 {
		files[fmt.Sprintf("run/%02d.bin", i)] = e2eData(uint64(100+i), 3000+i*7)
	}
	e2eWriteFiles(t, e.watch, files)
	c := e.config()
	c.Endpoint = endpoint
	c.BreakerThreshold = 3
	c.BreakerOpen = "1s"
	e.writeConfig(c)
	d := e.startDaemon()
	// Four seconds of outage: 3 failures open the breaker, then a probe
	// about every second (plus what was in flight as it opened).
	time.Sleep(4 * time.Second)
	mu.Lock()
	n := during
	down = false
	mu.Unlock()
	// Without the breaker: 20 files x 3 attempts = 60 or more.
	if n > 15 {
		t.Errorf("%d requests during a 4 s outage, want about the breaker's threshold (3), what was in flight (up to 4) and its probes (about 4)", n)
	}
	t.Logf("%d requests reached the target during the 4 s outage", n)
	e2eWaitObjects(t, srv, e.bucket, e2eKeys(files), e.log)
	if code, _ := d.stop(t); code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
	if !strings.Contains(e.log(), "circuit breaker open") || !strings.Contains(e.log(), "circuit breaker closed") {
		t.Errorf("the log does not tell the breaker's opening and closing:\n%s", e.log())
	}
}
