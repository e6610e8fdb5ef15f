package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/internal/testsrv"
)

// TestJournalRebuild: a corrupt journal stops ferry with the recovery
// command; "journal rebuild" records what the target already holds, so the
// next run sends only what is new or changed.
func TestJournalRebuild(t *testing.T) {
	srv := testsrv.StartS3(t)
	srv.CreateBucket(t, "rebuild")
	var putBytes atomic.Int64
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && !strings.Contains(r.URL.Path, daemon.CheckpointDir) {
			putBytes.Add(r.ContentLength)
		}
		return false
	})
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	copyTree(t, "../../testdata/scope1", in)
	big := make([]byte, 6<<20+11) // a multipart object too
	for i := range big {
		big[i] = byte(i * 31)
	}
	os.WriteFile(filepath.Join(in, "run 0001", "stack.raw"), big, 0o644)
	cfg := filepath.Join(dir, "ferry.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
[journal]
path = "state/ferry.db"
[log]
file = "ferry.log"
[upload]
max_chunk_size = "5MiB"
[target.s3]
type = "s3"
endpoint = %q
bucket = "rebuild"
access_key_env = "AK"
secret_key_env = "SK"
prefix = "scope1/"
[[watch]]
path = "in"
target = "s3"
settle = "100ms"
exclude = ["**/*.tmp", "**/~$*"]
`, endpoint)), 0o644)
	env := testcfg.Env(map[string]string{"AK": srv.AccessKey, "SK": srv.SecretKey})
	ferry := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := run(t.Context(), args, &out, &errb, env)
		return code, out.String(), errb.String()
	}
	if code, out, errs := ferry("run", "--once", "--config", cfg); code != 0 || !strings.Contains(out, "uploaded 5 files") {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errs)
	}

	// The journal is damaged on disk.
	db := filepath.Join(dir, "state", "ferry.db")
	f, _ := os.OpenFile(db, os.O_RDWR, 0)
	f.WriteAt([]byte("scribbled over by a bad disk"), 0)
	f.Close()
	code, _, errs := ferry("run", "--once", "--config", cfg)
	if code == 0 || !strings.Contains(errs, db) || !strings.Contains(errs, "ferry journal rebuild --config "+cfg) {
		t.Fatalf("run on a corrupt journal: exit %d, stderr:\n%s\nwant a refusal naming %s and the rebuild command", code, errs, db)
	}

	// The journal commands refuse it the same way.
	if code, _, errs := ferry("dlq", "list", "--config", cfg); code != exitFailed || !strings.Contains(errs, "ferry journal rebuild --config "+cfg) {
		t.Fatalf("dlq list on a corrupt journal: exit %d, stderr:\n%s", code, errs)
	}

	// Meanwhile a file is added and one is rewritten.
	os.WriteFile(filepath.Join(in, "new.txt"), []byte("added while the journal was broken\n"), 0o644)
	os.WriteFile(filepath.Join(in, "notes.txt"), []byte("rewritten\n"), 0o644)

	code, out, errs := ferry("journal", "rebuild", "--config", cfg)
	if code != 0 || !strings.Contains(out, "from 6 files: 4 already on their target (recorded as uploaded), 1 not there and 1 different there") {
		t.Fatalf("journal rebuild: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	kept, _ := filepath.Glob(db + ".corrupt-*")
	if len(kept) != 1 {
		t.Fatalf("old journal kept as %v, want one %s.corrupt-* file", kept, db)
	}

	putBytes.Store(0)
	if code, out, errs := ferry("run", "--once", "--config", cfg); code != 0 || !strings.Contains(out, "uploaded 2 files") {
		t.Fatalf("run after rebuild: exit %d\n%s%s", code, out, errs)
	}
	if want := int64(len("added while the journal was broken\n") + len("rewritten\n")); putBytes.Load() != want {
		t.Fatalf("after the rebuild %d bytes were sent, want only the new and the changed file's %d", putBytes.Load(), want)
	}

	// A healthy journal is not rebuilt without --force.
	if code, _, errs := ferry("journal", "rebuild", "--config", cfg); code != exitFailed || !strings.Contains(errs, "--force") {
		t.Fatalf("rebuild of a healthy journal: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := ferry("journal", "rebuild", "--force", "--config", cfg); code != 0 {
		t.Fatalf("rebuild --force: exit %d\n%s", code, errs)
	}
	if code, out, _ := ferry("run", "--once", "--config", cfg); code != 0 || !strings.Contains(out, "uploaded 0 files") {
		t.Fatalf("run after a forced rebuild: exit %d, %q", code, out)
	}
}
