package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/journal"
)

// TestThroughputRing: bytes go to the minute they were counted in, the
// ring moves on with the clock, and an hour without a sample empties it.
func TestThroughputRing(t *testing.T) {
	var tp throughput
	t0 := time.Date(2026, 12, 3, 10, 0, 30, 0, time.UTC)
	tp.observe(t0, 1000) // the first sample is the baseline: 1000 before it
	tp.observe(t0.Add(10*time.Second), 1500)
	tp.observe(t0.Add(20*time.Second), 1700)
	s := tp.snapshot()
	if len(s.BytesPerMinute) != 60 || s.BytesPerMinute[59] != 700 || !s.End.Equal(t0.Truncate(time.Minute)) {
		t.Fatalf("after one minute: last %d, end %v, want 700 at %v", s.BytesPerMinute[59], s.End, t0.Truncate(time.Minute))
	}
	tp.observe(t0.Add(2*time.Minute), 1900) // two minutes on: one empty minute between
	s = tp.snapshot()
	if got := s.BytesPerMinute[57:]; !slices.Equal(got, []int64{700, 0, 200}) {
		t.Fatalf("two minutes on: %v, want [700 0 200]", got)
	}
	tp.observe(t0.Add(2*time.Hour), 1900)
	s = tp.snapshot()
	for i, b := range s.BytesPerMinute {
		if b != 0 {
			t.Fatalf("after an idle hour, minute %d holds %d", i, b)
		}
	}
}

// TestPageEndpoints: "/" is the page, the lists are newest first and
// bounded, and a StatusSource that is no PageSource serves empty lists.
func TestPageEndpoints(t *testing.T) {
	m := newMetrics(&fakeSource{counters: Counters{UploadedBytes: 42}}, nil)
	srv := httptest.NewServer(m.handler())
	defer srv.Close()
	get := func(path string) (int, string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, ct, body := get("/"); code != 200 || !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "ferry not reachable") {
		t.Errorf("GET /: %d %s\n%.200s", code, ct, body)
	}
	for _, p := range []string{"/deadletters", "/datasets"} {
		if code, ct, body := get(p); code != 200 || ct != "application/json" || strings.TrimSpace(body) != "[]" {
			t.Errorf("GET %s: %d %s %q, want an empty list", p, code, ct, body)
		}
	}
	code, _, body := get("/throughput")
	var tp Throughput
	if err := json.Unmarshal([]byte(body), &tp); code != 200 || err != nil || len(tp.BytesPerMinute) != 60 {
		t.Errorf("GET /throughput: %d %v %s", code, err, body)
	}
	if code, _, _ := get("/index.html"); code != 404 {
		t.Errorf("GET /index.html: %d, want 404", code)
	}

	all := []journal.DeadLetter{{ID: 1}, {ID: 2}, {ID: 3}}
	if got := newestFirst(all, 2); len(got) != 2 || got[0].ID != 3 || got[1].ID != 2 {
		t.Errorf("newestFirst(1 2 3, 2) = %+v, want 3 2", got)
	}
	if got := newestFirst(all, 10); len(got) != 3 || got[2].ID != 1 {
		t.Errorf("newestFirst(1 2 3, 10) = %+v", got)
	}
}
