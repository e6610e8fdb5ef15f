package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/journal"
)

// ferry reclaim --dry-run lists what the daemon would delete, oldest
// first, and deletes nothing; without --dry-run it refuses.
func TestReclaimDryRun(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "in"), 0o755)
	cfg := filepath.Join(dir, "ferry.toml")
	os.WriteFile(cfg, []byte(`[journal]
path = "ferry.db"
[target.local]
type = "fs"
path = "archive"
[[watch]]
path = "in"
target = "local"
dataset = "*"
complete = "marker:.done"
after_upload = "reclaim"
reclaim_free_below = "99%"
`), 0o644)
	ctx := context.Background()
	j, err := journal.Open(filepath.Join(dir, "ferry.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "in")
	for _, run := range []string{"run-old", "run-new", "run-open"} {
		ref := &journal.DatasetRef{Watch: root, RelPath: run, Target: "local", KeyPrefix: run + "/"}
		s := journal.Settled{Watch: root, RelPath: run + "/a.bin", Target: "local", Key: run + "/a.bin", BatchID: run, Dataset: ref,
			Version: journal.Version{Size: 1000, MtimeNS: 1, FileID: "1:" + run}, Signal: "quiet"}
		if _, err := j.RecordSettled(ctx, s); err != nil {
			t.Fatal(err)
		}
		jobs, _ := j.Claim(ctx, 1)
		sha := strings.Repeat("a", 64)
		j.RecordHashes(ctx, &jobs[0], sha, []journal.Chunk{{Seq: 1, Size: 1000, SHA256: sha}})
		if err := j.Complete(ctx, &jobs[0], sha, jobs[0].Key); err != nil {
			t.Fatal(err)
		}
		if run == "run-open" {
			continue
		}
		j.CompleteDataset(ctx, root, run, "marker:.done", "completed", "")
		if _, err := j.CloseDataset(ctx, root, run, func([]journal.DatasetFile) (string, error) { return strings.Repeat("m", 64), nil }); err != nil {
			t.Fatal(err)
		}
		if err := j.ClosedDataset(ctx, root, run, strings.Repeat("c", 64), nil); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()

	var out, errb bytes.Buffer
	code := run(ctx, []string{"reclaim", "--dry-run", "--config", cfg}, &out, &errb, func(string) (string, bool) { return "", false })
	text := out.String()
	if code != exitOK || !strings.Contains(text, `after_upload = "reclaim", below 99% free`) || strings.Contains(text, "run-open") {
		t.Fatalf("exit %d\n%s\n%s", code, text, errb.String())
	}
	old, recent := strings.Index(text, "run-old"), strings.Index(text, "run-new")
	if old < 0 || recent < old || !strings.Contains(text, "closed, manifest and crate landed") {
		t.Fatalf("not oldest first, or without why:\n%s", text)
	}
	out.Reset()
	if code := run(ctx, []string{"reclaim", "--config", cfg}, &out, &errb, func(string) (string, bool) { return "", false }); code != exitUsage {
		t.Fatalf("without --dry-run: exit %d", code)
	}
}
