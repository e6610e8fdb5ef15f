package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testsrv"
)

// TestServerPauseToTheOrphanSweepHoldsUploads: every request to a target
// passes the same decorators, the start-up orphan sweep's included. A 429
// with Retry-After answered to its ListMultipartUploads holds the uploads
// too: none reaches the target within the pause (seen before through a
// fault proxy: 19 requests went inside such a window).
func TestServerPauseToTheOrphanSweepHoldsUploads(t *testing.T) {
	srv := testsrv.StartS3(t)
	e := e2eSetup(t, srv, "e2e-sweep-pause", true)
	const pause = 3 * time.Second
	var mu sync.Mutex
	var paused, firstPut time.Time
	var inPause int
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		_, list := r.URL.Query()["uploads"]
		switch {
		case r.Method == http.MethodGet && list && paused.IsZero():
			paused = time.Now()
			w.Header().Set("Retry-After", "3")
			e2eS3Error(w, http.StatusTooManyRequests, "SlowDown")
			return true
		case r.Method == http.MethodPut && !strings.Contains(r.URL.Path, "_ferry/"):
			if firstPut.IsZero() {
				firstPut = time.Now()
			}
			if !paused.IsZero() && time.Since(paused) < pause-100*time.Millisecond {
				inPause++
			}
		}
		return false
	})
	files := map[string][]byte{}
	for i := range 12 {
		files["run/"+string(rune('a'+i))+".bin"] = e2eData(uint64(300+i), 2000+i)
	}
	e2eWriteFiles(t, e.watch, files)
	c := e.config()
	c.Endpoint = endpoint
	e.writeConfig(c)
	e.mustOnce(len(files), e2eTotal(files))
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(files))
	mu.Lock()
	defer mu.Unlock()
	if paused.IsZero() {
		t.Fatal("the orphan sweep never listed the uploads")
	}
	if inPause > 0 || firstPut.Sub(paused) < pause-100*time.Millisecond {
		t.Errorf("%d uploads reached the target within the server's %v pause (the first %v after it)", inPause, pause, firstPut.Sub(paused))
	}
}
