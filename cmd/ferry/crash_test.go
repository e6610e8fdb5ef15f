package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/journal"
)

// TestCrashKill9 is invariant 1 under fire: the real ferry binary, uploading
// to versitygw through a throttled proxy, is killed with SIGKILL at seeded
// random moments and restarted, again and again; a last "run --once" must
// then exit 0, and the bucket must hold every source file byte-identical
// with its sha256 metadata, nothing else, and no open multipart upload,
// while the bytes sent over all the runs exceed the files' total by at
// most one chunk per worker per kill (the parts in flight when it died).
//
// FERRY_CRASH_KILLS (default 20) and FERRY_CRASH_SEED (default 1) set the
// run; the long one is FERRY_CRASH_KILLS=100 (see RELIABILITY.md).
func TestCrashKill9(t *testing.T) {
	kills, seed := 20, uint64(1)
	if v, err := strconv.Atoi(os.Getenv("FERRY_CRASH_KILLS")); err == nil && v > 0 {
		kills = v
	}
	if v, err := strconv.ParseUint(os.Getenv("FERRY_CRASH_SEED"), 10, 64); err == nil {
		seed = v
	}
	const (
		chunk   = 5 << 20
		workers = 2
		bucket  = "crash"
	)
	srv := testsrv.StartS3(t)
	srv.CreateBucket(t, bucket)
	bin := benchBuild(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	dir := t.TempDir()
	watch := filepath.Join(dir, "incoming")
	files := map[string][]byte{}
	add := func(rel string, size int) {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		files[rel] = b
		p := filepath.Join(watch, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	add("run1/big.raw", 5*chunk+123)
	add("run1/medium.raw", 2*chunk+7)
	add("run2/one chunk.tif", chunk)
	add("run2/größer.bin", 3*chunk+chunk/2)
	for i := range 30 {
		add(fmt.Sprintf("run3/small-%02d.csv", i), 1000+rng.IntN(60_000))
	}
	var total int64
	for _, b := range files {
		total += int64(len(b))
	}

	// Throttle so that uploading everything once takes about 0.2 s per
	// kill: most kills then land in the middle of something.
	rate := float64(total) / (float64(kills) * 0.2)
	var sent atomic.Int64
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && r.Body != nil && !strings.Contains(r.URL.Path, daemon.CheckpointDir) {
			r.Body = &crashCountingBody{r: r.Body, n: &sent, rate: rate}
		}
		return false
	})
	cfg := filepath.Join(dir, "ferry.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[journal]
path = "state/ferry.db"
[log]
file = "logs/ferry.log"
level = "debug"
[upload]
max_concurrent_uploads = %d
max_chunk_size = "5MiB"
orphan_upload_ttl = "1ms"
[upload.retry]
attempts = 3
initial_delay = "10ms"
max_delay = "50ms"
[target.s3]
type = "s3"
endpoint = %q
bucket = %q
access_key_env = "CRASH_AK"
secret_key_env = "CRASH_SK"
prefix = "scope/"
[[watch]]
path = "incoming"
target = "s3"
settle = "100ms"
`, workers, endpoint, bucket)), 0o644)
	env := append(os.Environ(), "CRASH_AK="+srv.AccessKey, "CRASH_SK="+srv.SecretKey)

	for i := range kills {
		cmd := exec.Command(bin, "run", "--config", cfg)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A real process killed at a random moment: wall-clock waiting is
		// the point here, not a timer under test.
		time.Sleep(time.Duration(50+rng.IntN(450)) * time.Millisecond)
		cmd.Process.Kill() // SIGKILL: no chance to clean up
		cmd.Wait()
		if bytes.Contains(stderr.Bytes(), []byte("panic")) {
			t.Fatalf("kill %d: ferry panicked:\n%s", i, stderr.String())
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--once", "--config", cfg)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		logb, _ := os.ReadFile(filepath.Join(dir, "logs", "ferry.log"))
		t.Fatalf("final run --once: %v\n%s\nlog tail:\n%s", err, out, crashTail(logb, 4000))
	}

	// Every file, byte-identical, with its hash; nothing else.
	c := srv.Client()
	listed, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	data := 0
	for _, o := range listed.Contents {
		if !strings.Contains(aws.ToString(o.Key), daemon.CheckpointDir) {
			data++
		}
	}
	if data != len(files) {
		t.Errorf("bucket holds %d objects besides checkpoints, want %d", data, len(files))
	}
	for rel, want := range files {
		key := "scope/" + rel
		obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		got, _ := io.ReadAll(obj.Body)
		obj.Body.Close()
		sum := sha256.Sum256(want)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes landed, differing from the source's %d", key, len(got), len(want))
		}
		if m, err := testsrv.ObjectSHA256(ctx, c, bucket, key, obj.Metadata); err != nil || m != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: sha256 (tag, else metadata) %q, %v", key, m, err)
		}
	}
	ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("%d multipart uploads left open", len(ups.Uploads))
	}
	bound := total + int64(kills*workers*chunk)
	t.Logf("%d kills (seed %d): %d bytes sent for %d bytes of files (%.2fx); bound %d", kills, seed, sent.Load(), total, float64(sent.Load())/float64(total), bound)
	if sent.Load() > bound {
		t.Errorf("sent %d bytes, more than the files (%d) plus one chunk per worker per kill (%d)", sent.Load(), total, bound)
	}
	j, err := journal.Open(filepath.Join(dir, "state", "ferry.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if n, err := j.VerifyChain(ctx); err != nil {
		t.Errorf("event chain after %d kills: %v", kills, err)
	} else {
		t.Logf("event chain intact: %d events", n)
	}
	// The files table, written by killed processes, agrees with a replay
	// of the events.
	if diffs, _, err := j.VerifyState(ctx); err != nil || len(diffs) > 0 {
		t.Errorf("file tables vs replay after %d kills: %v %v", kills, diffs, err)
	}
}

// crashCountingBody counts the request bytes that went through and paces
// them to rate bytes per second.
type crashCountingBody struct {
	r    io.ReadCloser
	n    *atomic.Int64
	rate float64
}

func (b *crashCountingBody) Read(p []byte) (int, error) {
	if len(p) > 64<<10 {
		p = p[:64<<10]
	}
	n, err := b.r.Read(p)
	b.n.Add(int64(n))
	time.Sleep(time.Duration(float64(n) / b.rate * float64(time.Second)))
	return n, err
}

func (b *crashCountingBody) Close() error { return b.r.Close() }

func crashTail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
