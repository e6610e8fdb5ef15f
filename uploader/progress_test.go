package uploader

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/gate"
	"github.com/ferry-data/ferry/uploader/sink/retry"
)

// fixedClock is a clock a test moves by hand.
type fixedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fixedClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fixedClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestInFlightReportsAcknowledgedBytes(t *testing.T) {
	e := newEnv(t)
	clock := &fixedClock{now: time.Unix(1_800_000_000, 0)}
	u, err := New(withTargets(Options{Journal: e.j, Workers: 1, ChunkSize: testChunk, Now: clock.Now}, map[string]sink.Sink{"t": e.sink}, retry.Policy{}, gate.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	e.u = u
	size := 4*testChunk + 5
	data := randBytes(size, 40)
	e.add("run/big.bin", data)
	// One worker: the parts go one after another, so when part n is about
	// to be sent, exactly n-1 parts have been acknowledged.
	var seen []Progress
	e.sink.before = func(op string, n int, key string) error {
		if op == "UploadPart" {
			seen = append(seen, u.InFlight()...)
		}
		return nil
	}
	e.drain()
	e.landed("run/big.bin", data)
	if len(seen) != 5 {
		t.Fatalf("InFlight gave %d entries over 5 parts: %+v", len(seen), seen)
	}
	for i, p := range seen {
		want := Progress{Watch: e.watch, Path: "run/big.bin", Target: "t", Key: "run/big.bin", Done: int64(i * testChunk), Size: int64(size), StartedAt: clock.Now()}
		if p != want {
			t.Errorf("before part %d: %+v, want %+v", i+1, p, want)
		}
	}
	if got := u.InFlight(); len(got) != 0 {
		t.Errorf("after the upload, InFlight = %+v, want none", got)
	}
	// Every byte was acknowledged within the same (fixed) second.
	if r := u.Rate(); r != float64(size) {
		t.Errorf("Rate = %v, want %d (all bytes within the first second)", r, size)
	}
	clock.add(RateWindow + time.Second)
	if r := u.Rate(); r != 0 {
		t.Errorf("Rate a window later = %v, want 0", r)
	}
}

func TestMeterRate(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	// fill adds 1 MB in each second from 0 to last (two chunks a second).
	fill := func(last int) *meter {
		m := &meter{}
		for s := range last + 1 {
			m.add(at(time.Duration(s)*time.Second+300*time.Millisecond), 600_000)
			m.add(at(time.Duration(s)*time.Second+700*time.Millisecond), 400_000)
		}
		return m
	}
	for _, c := range []struct {
		name       string
		m          *meter
		now, start time.Time
		want       float64
	}{
		{"steady, at the end of a second", fill(29), at(29*time.Second + 999*time.Millisecond), t0, 20_000_000 / 19.999},
		{"young: since start", fill(3), at(4 * time.Second), t0, 3_000_000 / 3.0},
		{"a first chunk counts over one second", func() *meter { m := &meter{}; m.add(at(300*time.Millisecond), 600_000); return m }(),
			at(500 * time.Millisecond), t0, 600_000},
		{"young, the bytes in the second before now", func() *meter { m := &meter{}; m.add(at(10950*time.Millisecond), 100_000); return m }(),
			at(11050 * time.Millisecond), at(10750 * time.Millisecond), 100_000},
		{"quiet for 11 s", fill(29), at(40 * time.Second), t0, 9_000_000 / 19.0},
		{"quiet for a window", fill(29), at(60 * time.Second), t0, 0},
		{"a ring lap later, old buckets do not count", fill(29), at(64*time.Second + 400*time.Millisecond), at(60 * time.Second), 0},
	} {
		if got := c.m.rate(c.now, c.start); got < c.want*0.999 || got > c.want*1.001 {
			t.Errorf("%s: rate = %.0f, want %.0f", c.name, got, c.want)
		}
	}
}

func TestLastFailure(t *testing.T) {
	e := newEnv(t)
	if _, ok := e.u.LastFailure(); ok {
		t.Fatal("a failure before any upload")
	}
	e.add("a/denied.bin", []byte("x"))
	e.sink.before = func(op string, n int, key string) error {
		return &sink.Error{Class: sink.Permanent, Op: op, Status: 403, Code: "AccessDenied", Err: errors.New("no")}
	}
	e.drain()
	f, ok := e.u.LastFailure()
	if !ok || f.Path != "a/denied.bin" || f.Watch != e.watch || f.Target != "t" || f.Class != ClassPermanent ||
		!strings.Contains(f.Message, "HTTP 403 AccessDenied") || f.Time.IsZero() {
		t.Fatalf("LastFailure = %+v, %v", f, ok)
	}
}

// logLines decodes JSON log lines.
func logLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestRepeatedFailuresAreLoggedOncePerChange(t *testing.T) {
	e := newEnv(t)
	var logs bytes.Buffer
	var mu sync.Mutex
	h := slog.NewJSONHandler(&syncWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug})
	u, err := New(withTargets(Options{Journal: e.j, Workers: 1, ChunkSize: testChunk, Logger: slog.New(h)}, map[string]sink.Sink{"t": e.sink}, retry.Policy{Attempts: 20, InitialDelay: time.Microsecond, MaxDelay: time.Microsecond}, gate.Policy{FailureThreshold: 100}))
	if err != nil {
		t.Fatal(err)
	}
	e.u = u
	e.add("burst.bin", []byte("burst"))
	const n = 12 // 503 and refused connections by turns, then only refused, then success
	e.sink.before = func(op string, call int, key string) error {
		switch {
		case call <= 8 && call%2 == 1:
			return &sink.Error{Class: sink.Transient, Op: op, Status: 503, Code: "SlowDown", Err: errors.New("req-" + key + string(rune('a'+call)))}
		case call <= n:
			return sink.NewTransient(op, errors.New("dial tcp: connect: connection refused"))
		}
		return nil
	}
	e.drain()
	e.landed("burst.bin", []byte("burst"))
	var warns, debugs []map[string]any
	var recovered map[string]any
	for _, l := range logLines(t, &logs) {
		switch l["level"] {
		case "WARN":
			warns = append(warns, l)
		case "DEBUG":
			if l["msg"] == "request failed again" {
				debugs = append(debugs, l)
			}
		case "INFO":
			if l["msg"] == "requests to the target succeed again" {
				recovered = l
			}
		}
	}
	if len(warns) != 2 || warns[0]["error_kind"] != "HTTP 503 SlowDown" || warns[1]["error_kind"] != "dial tcp: connect: connection refused" ||
		warns[0]["path"] != "burst.bin" {
		t.Fatalf("%d warnings for %d failures of two kinds, want 2 (the first of each kind):\n%s", len(warns), n, logs.String())
	}
	if len(debugs) != n-2 {
		t.Errorf("%d per-attempt debug lines, want %d", len(debugs), n-2)
	}
	if recovered == nil || recovered["failures"] != float64(n) || recovered["error_kinds"] != float64(2) || recovered["target"] != "t" {
		t.Errorf("recovery line %v, want failures %d, error_kinds 2", recovered, n)
	}
	if r := e.row("burst.bin"); r.State != journal.Uploaded || r.Attempts != 1 {
		t.Errorf("row %+v", r)
	}
}

type syncWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
