//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testsrv"
)

// blackHole is a TCP listener that accepts connections and never answers:
// an S3 endpoint that hangs every request.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c) // read what comes, answer nothing
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestStartBlackHoleTarget: an S3 endpoint that accepts connections and
// never answers does not hold the start (issue 11, item 10). The real
// binary serves /status and journals the files within a few seconds, and
// SIGTERM stops it within 10 s.
func TestStartBlackHoleTarget(t *testing.T) {
	bin := benchBuild(t)
	dir := t.TempDir()
	hole := blackHole(t)
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := free.Addr().String()
	free.Close()
	incoming := filepath.Join(dir, "incoming")
	os.MkdirAll(incoming, 0o755)
	for i := range 3 {
		os.WriteFile(filepath.Join(incoming, fmt.Sprintf("f%d.dat", i)), []byte(strings.Repeat("x", 100+i)), 0o644)
	}
	cfg := filepath.Join(dir, "ferry.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[journal]
path = "state/ferry.db"
[log]
file = "logs/ferry.log"
[metrics]
listen = %q
[upload]
max_chunk_size = "5MiB"
orphan_upload_ttl = "1ms"
[target.s3]
type = "s3"
endpoint = "http://%s"
bucket = "bucket"
access_key_env = "HOLE_AK"
secret_key_env = "HOLE_SK"
[[watch]]
path = "incoming"
target = "s3"
settle = "100ms"
`, listen, hole)), 0o644)
	cmd := exec.Command(bin, "run", "--config", cfg)
	cmd.Env = append(os.Environ(), "HOLE_AK=ak", "HOLE_SK=sk")
	stderr, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr // a file: read while the process writes
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	logf := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "logs", "ferry.log"))
		e, _ := os.ReadFile(stderr.Name())
		return string(b) + "\nstderr:\n" + string(e)
	}
	client := &http.Client{Timeout: time.Second}
	testsrv.Eventually(t, 5*time.Second, "/status to answer with the files journaled", func() (bool, string) {
		resp, err := client.Get("http://" + listen + "/status")
		if err != nil {
			return false, err.Error() + "\n" + logf()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var st struct {
			States map[string]int `json:"states"`
		}
		json.Unmarshal(b, &st)
		n := 0
		for _, c := range st.States {
			n += c
		}
		return resp.StatusCode == 200 && n == 3, string(b) + "\n" + logf()
	})
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("ferry did not stop within 10 s of SIGTERM\n%s", logf())
	}
	t.Logf("stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}
