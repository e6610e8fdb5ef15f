package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/internal/testsrv"
)

// testDaemon is a Daemon running in a goroutine, wired as ferry run wires
// it: the logger of the configuration, whose [log] level a reload sets.
type testDaemon struct {
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// startDaemon loads the configuration at path (it must name a [log]
// file), starts the daemon, and waits until its watchers have listed the
// watched folders (the log says "watching"), so that what the test does
// next reaches it through filesystem events.
func startDaemon(t *testing.T, path string, getenv func(string) (string, bool)) *testDaemon {
	t.Helper()
	cfg, err := config.Load(path, getenv)
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	log, closeLog, err := NewLogger(cfg.Log, io.Discard, level)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{Log: log, Level: level, Getenv: getenv, Version: "ferry test"})
	if err != nil {
		closeLog.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	td := &testDaemon{cancel: cancel, done: make(chan error, 1)}
	go func() {
		_, err := d.Run(ctx, false)
		d.Close()
		closeLog.Close()
		td.done <- err
	}()
	t.Cleanup(func() {
		// A test that failed early must not leave the daemon writing into
		// temp dirs that are being removed.
		if !td.stopped {
			cancel()
			<-td.done
		}
	})
	logText := func() string { b, _ := os.ReadFile(cfg.Log.File); return string(b) }
	testsrv.Eventually(t, 20*time.Second, "the daemon to start watching", func() (bool, string) {
		select {
		case err := <-td.done:
			td.done <- err
			t.Fatalf("the daemon ended early: %v\nlog:\n%s", err, logText())
		default:
		}
		return strings.Contains(logText(), `"msg":"watching"`), logText()
	})
	return td
}

// stop cancels the daemon's context and returns what Run returned.
func (d *testDaemon) stop() error {
	d.cancel()
	d.stopped = true
	select {
	case err := <-d.done:
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the daemon did not stop within 30 s")
	}
}

// The endpoints of a running daemon: /metrics counts an upload, /healthz
// answers, /status has every documented field.
func TestMetricsEndpoints(t *testing.T) {
	addr := testsrv.FreeAddr(t)
	cfg := testcfg.Write(t, fmt.Sprintf("[journal]\npath = \"ferry.db\"\n[log]\nfile = \"ferry.log\"\n[metrics]\nlisten = %q\n[target.local]\ntype = \"fs\"\npath = \"archive\"\n[[watch]]\npath = \"in\"\ntarget = \"local\"\nsettle = \"100ms\"\n", addr))
	dir := filepath.Dir(cfg)
	d := startDaemon(t, cfg, testcfg.Env(nil))
	if err := os.WriteFile(filepath.Join(dir, "in", "a.bin"), []byte("metrics"), 0o644); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// A real daemon: poll until the file is uploaded and counted. The
	// counters move when the target acknowledged the upload, the queue
	// gauges when the journal recorded it, a moment later: a scrape in
	// between sees one without the other, so every line is waited for.
	wants := []string{
		"ferry_uploaded_files_total 1", "ferry_uploaded_bytes_total 7", "ferry_queue_files 0", "ferry_queue_bytes 0",
		"ferry_dead_letter_files 0", `ferry_breaker_state{target="local"} 0`, `ferry_chunk_upload_seconds_count{target="local"} 1`,
		"ferry_oldest_pending_seconds 0", "ferry_retries_total 0", "go_goroutines",
	}
	testsrv.Eventually(t, 15*time.Second, "the upload to be counted", func() (bool, string) {
		code, b := get("/metrics")
		if code != 200 {
			return false, b
		}
		for _, want := range wants {
			if !strings.Contains(b, want) {
				return false, fmt.Sprintf("/metrics lacks %q:\n%s", want, b)
			}
		}
		return true, ""
	})
	if code, b := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d %s", code, b)
	}
	code, b := get("/status")
	var st Status
	if err := json.Unmarshal([]byte(b), &st); code != 200 || err != nil || st.Uploaded != 1 || st.Breakers["local"] != "closed" || len(st.Watches) != 1 {
		t.Errorf("/status = %d %s (%v)", code, b, err)
	}
	// The documented names, read as a client that knows only them would.
	var js map[string]any
	if err := json.Unmarshal([]byte(b), &js); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"source": "daemon", "queue_files": 0.0, "queue_bytes": 0.0, "dead_letter_files": 0.0, "oldest_pending_seconds": 0.0,
		"uploaded_files": 1.0, "uploaded_bytes": 7.0, "in_flight": []any{}, "eta_seconds": 0.0, "last_error": nil,
		"breakers": map[string]any{"local": "closed"}, "watches": []any{filepath.Join(dir, "in")},
		"states": map[string]any{"queued": 0.0, "uploading": 0.0, "uploaded": 1.0, "failed": 0.0, "changed": 0.0, "ignored": 0.0, "vanished": 0.0, "dropped": 0.0, "held": 0.0},
	}
	for k, v := range want {
		if got, ok := js[k]; !ok || fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("/status %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if v, _ := js["version"].(string); v != "ferry test" {
		t.Errorf("/status version = %v", js["version"])
	}
	if r, _ := js["rate_bytes_per_second"].(float64); r <= 0 {
		t.Errorf("/status rate_bytes_per_second = %v, want > 0 just after an upload", js["rate_bytes_per_second"])
	}
	if u, _ := js["uptime_seconds"].(float64); u <= 0 {
		t.Errorf("/status uptime_seconds = %v", js["uptime_seconds"])
	}
	if at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(js["started_at"])); err != nil || time.Since(at) > time.Minute {
		t.Errorf("/status started_at = %v (%v)", js["started_at"], err)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
}
