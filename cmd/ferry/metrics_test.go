package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testcfg"
)

func TestMetricsEndpoints(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "in"), 0o755)
	cfg := filepath.Join(dir, "ferry.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[journal]\npath = \"ferry.db\"\n[log]\nfile = \"ferry.log\"\n[metrics]\nlisten = %q\n[target.local]\ntype = \"fs\"\npath = \"archive\"\n[[watch]]\npath = \"in\"\ntarget = \"local\"\nsettle = \"100ms\"\n", addr)), 0o644)
	os.WriteFile(filepath.Join(dir, "in", "a.bin"), []byte("metrics"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		var out, errb strings.Builder
		done <- run(ctx, []string{"run", "--config", cfg}, &out, &errb, testcfg.Env(nil))
	}()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Wait (a real daemon) until the file is uploaded and counted.
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, b := get("/metrics"); code == 200 && strings.Contains(b, "ferry_uploaded_files_total 1") {
			body = b
			break
		}
	}
	for _, want := range []string{
		"ferry_uploaded_files_total 1", "ferry_uploaded_bytes_total 7", "ferry_queue_files 0", "ferry_queue_bytes 0",
		"ferry_dead_letter_files 0", `ferry_breaker_state{target="local"} 0`, `ferry_chunk_upload_seconds_count{target="local"} 1`,
		"ferry_oldest_pending_seconds 0", "ferry_retries_total 0", "go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if code, b := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d %s", code, b)
	}
	code, b := get("/status")
	var st status
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
		"states": map[string]any{"queued": 0.0, "uploading": 0.0, "uploaded": 1.0, "failed": 0.0, "changed": 0.0, "ignored": 0.0, "dropped": 0.0},
	}
	for k, v := range want {
		if got, ok := js[k]; !ok || fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("/status %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if v, _ := js["version"].(string); !strings.HasPrefix(v, "ferry ") {
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
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
}
