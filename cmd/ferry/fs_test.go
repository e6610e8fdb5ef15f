package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/uploader/sink/fssink"
)

// copyTree copies a testdata tree into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOnceToFolderTarget runs "ferry run --once" on the sample instrument
// tree with a folder target, the setup of the built-in example.
func TestOnceToFolderTarget(t *testing.T) {
	dir := t.TempDir()
	in, archive := filepath.Join(dir, "in"), filepath.Join(dir, "archive")
	copyTree(t, "../../testdata/scope1", in)
	cfg := filepath.Join(dir, "ferry.toml")
	os.WriteFile(cfg, []byte(`
[journal]
path = "ferry.db"
[log]
file = "ferry.log"
[target.local]
type = "fs"
path = "archive"
prefix = "scope1/"
[[watch]]
path = "in"
target = "local"
settle = "100ms"
exclude = ["**/*.tmp", "**/~$*", "**/.DS_Store"]
`), 0o644)
	runOnce := func() string {
		t.Helper()
		var out, errb strings.Builder
		if code := run(t.Context(), []string{"run", "--once", "--config", cfg}, &out, &errb, testcfg.Env(nil)); code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
		}
		return out.String()
	}
	if out := runOnce(); !strings.Contains(out, "uploaded 4 files") {
		t.Fatalf("first run: %q", out)
	}
	want := []string{"notes.txt", "run 0001/images/tile 0001.pgm", "run 0001/readings.csv", "run-ü/größe-ü.tsv"}
	var got []string
	checkpoints := 0
	filepath.WalkDir(archive, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if r, _ := filepath.Rel(archive, p); strings.HasPrefix(filepath.ToSlash(r), fssink.OwnDir+"/") {
			return nil // ferry's own files: sidecars, the layout mark
		}
		rel, _ := filepath.Rel(filepath.Join(archive, "scope1"), p)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, daemon.CheckpointDir) {
			checkpoints++
			return nil
		}
		got = append(got, rel)
		src, _ := os.ReadFile(filepath.Join(in, filepath.FromSlash(rel)))
		dst, _ := os.ReadFile(p)
		if string(src) != string(dst) {
			t.Errorf("%s: bytes differ", rel)
		}
		sum := sha256.Sum256(src)
		side, err := os.ReadFile(filepath.Join(archive, filepath.FromSlash(fssink.SumsDir), "scope1", filepath.FromSlash(rel)))
		if want := hex.EncodeToString(sum[:]) + "  scope1/" + rel + "\n"; err != nil || string(side) != want {
			t.Errorf("%s: sidecar %q, want %q", rel, side, want)
		}
		return nil
	})
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("archive holds %q, want %q", got, want)
	}
	if checkpoints == 0 {
		t.Fatalf("no checkpoint under %s in the archive", daemon.CheckpointDir)
	}
	if ents, _ := os.ReadDir(filepath.Join(archive, ".ferry-uploads")); len(ents) != 0 {
		t.Fatal("staged uploads left behind")
	}
	// Nothing changed: nothing is sent again.
	if out := runOnce(); !strings.Contains(out, "uploaded 0 files") {
		t.Fatalf("second run: %q", out)
	}
	// A rewritten file is sent again, in its new form.
	p := filepath.Join(in, "notes.txt")
	os.WriteFile(p, []byte("rewritten notes\n"), 0o644)
	if out := runOnce(); !strings.Contains(out, "uploaded 1 files") {
		t.Fatalf("third run: %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(archive, "scope1", "notes.txt")); string(b) != "rewritten notes\n" {
		t.Fatalf("archive holds %q after the rewrite", b)
	}
	// The log is JSON lines with UTC timestamps and no credentials.
	logb, err := os.ReadFile(filepath.Join(dir, "ferry.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(logb)), "\n") {
		if !strings.HasPrefix(line, `{"time":"`) || !strings.Contains(line[:45], `Z"`) {
			t.Fatalf("log line not JSON with a UTC time: %s", line)
		}
	}
}
