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
		done <- run(ctx, []string{"run", "--config", cfg}, &out, &errb, cfgEnv(nil))
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
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("daemon exit %d", code)
	}
}
