package datasets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/journal"
)

func versionOf(t *testing.T, p string) journal.Version {
	t.Helper()
	st, err := srcfile.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return journal.Version{Size: st.Size, MtimeNS: st.ModTime.UnixNano(), FileID: st.ID.String()}
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

func TestRemoveSourceOnlyTheVersionThatLanded(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "run1", "lane 1", "tile.cbcl")
	writeFile(t, p, "landed")
	v := versionOf(t, p)

	// The very version: removed, and says so.
	got, ev, err := RemoveSource(p, v, "1-1")
	if err != nil || got != Removed || exists(p) || !strings.Contains(ev, "size=6") {
		t.Fatalf("same version: %v %q %v (exists %v)", got, ev, err, exists(p))
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}

	// Modified after its upload (same name, other content): kept, in place.
	writeFile(t, p, "landed")
	v = versionOf(t, p)
	writeFile(t, p, "rewritten after the upload")
	got, ev, err = RemoveSource(p, v, "1-2")
	if err != nil || got != Kept || !exists(p) || !strings.Contains(ev, "landed size=6") {
		t.Fatalf("modified: %v %q %v", got, ev, err)
	}
	if b, _ := os.ReadFile(p); string(b) != "rewritten after the upload" {
		t.Fatalf("content after a refused deletion: %q", b)
	}

	// Replaced by another file of the same size (another inode): kept.
	writeFile(t, p, "AAAAAA")
	v = versionOf(t, p)
	os.Remove(p)
	writeFile(t, p, "BBBBBB")
	if got, _, err := RemoveSource(p, v, "1-3"); err != nil || got != Kept || !exists(p) {
		t.Fatalf("replaced: %v %v", got, err)
	}

	// Nothing there.
	if got, _, err := RemoveSource(filepath.Join(dir, "gone"), v, "1-4"); err != nil || got != Absent {
		t.Fatalf("absent: %v %v", got, err)
	}
}

// A crash between the rename and the removal: the next call finishes it.
func TestRemoveSourceResumes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.bin")
	writeFile(t, p, "data")
	v := versionOf(t, p)
	q := filepath.Join(dir, QuarantinePrefix+"7-1")
	if err := os.Rename(p, q); err != nil { // what a killed ferry left
		t.Fatal(err)
	}
	if got, _, err := RemoveSource(p, v, "7-1"); err != nil || got != Removed || exists(q) || exists(p) {
		t.Fatalf("resume: %v %v", got, err)
	}
	// A killed ferry left a file that was not the version, and a new file
	// took the name meanwhile: both kept, the journal told where.
	writeFile(t, p, "new file")
	writeFile(t, q, "old other")
	got, ev, err := RemoveSource(p, v, "7-1")
	if err != nil || got != Kept || !exists(p) || !exists(q) || !strings.Contains(ev, "left at") {
		t.Fatalf("kept beside: %v %q %v", got, ev, err)
	}
}

func TestPruneEmptyAndQuarantined(t *testing.T) {
	root := t.TempDir()
	run := filepath.Join(root, "run1")
	deep := filepath.Join(run, "a", "b")
	writeFile(t, filepath.Join(run, "keep.txt"), "x")
	os.MkdirAll(deep, 0o755)
	PruneEmpty(deep, run)
	if exists(filepath.Join(run, "a")) || !exists(run) {
		t.Fatal("empty folders not pruned, or the dataset folder with a file removed")
	}
	os.Remove(filepath.Join(run, "keep.txt"))
	PruneEmpty(run, run)
	if exists(run) || !exists(root) {
		t.Fatal("the empty dataset folder stays, or pruning went above it")
	}
	if !Quarantined("run1/sub/.ferry-deleting-3-1") || Quarantined("run1/.ferry-deletingx") {
		t.Fatal("Quarantined")
	}
}

func TestMoveSource(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "in", "run1", "a.bin")
	writeFile(t, p, "landed")
	v := versionOf(t, p)
	dest := filepath.Join(dir, "done", "run1", "a.bin")
	got, ev, err := MoveSource(p, v, "", "5-1", dest)
	if err != nil || got != Removed || exists(p) || !strings.Contains(ev, "moved to") {
		t.Fatalf("move: %v %q %v", got, ev, err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "landed" {
		t.Fatalf("moved content %q", b)
	}
	// Never over a file already at the destination.
	writeFile(t, p, "landed")
	v = versionOf(t, p)
	if got, ev, err := MoveSource(p, v, "", "5-2", dest); err != nil || got != Kept || !exists(p) || !strings.Contains(ev, "already holds") {
		t.Fatalf("over an existing file: %v %q %v", got, ev, err)
	}
}

// Across volumes a move is a copy whose SHA-256 is checked before the
// source goes.
func TestCopyVerified(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, src, "landed")
	const sha = "3a0c6e4eaaee6d4e52a0a5d8c0c4a7d3c6a29bb1e4a8a4d0cd52ad4a0e50e6b0" // not landed's
	if err := copyVerified(src, filepath.Join(dir, "bad"), sha); err == nil || exists(filepath.Join(dir, "bad")) || exists(filepath.Join(dir, "bad.ferry-copy")) {
		t.Fatalf("a copy with the wrong hash: %v", err)
	}
	const landed = "78ee12c65d407ba0694df910c6b815938bf6119f7288bd720a48c98e11af57bc" // SHA-256("landed")
	dest := filepath.Join(dir, "good")
	if err := copyVerified(src, dest, landed); err != nil || !exists(dest) || exists(dest+".ferry-copy") {
		t.Fatalf("a good copy: %v", err)
	}
	if err := copyVerified(src, dest, landed); err == nil {
		t.Fatal("a copy replaced a file at its destination")
	}
}
