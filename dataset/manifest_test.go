package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// writeTree writes files under dir and returns them as a dataset's Files.
func writeTree(t *testing.T, dir string, contents map[string]string) []File {
	t.Helper()
	mt := time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC)
	var files []File
	for rel, body := range contents {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(body))
		files = append(files, File{Path: rel, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]), ModTime: mt})
	}
	return files
}

// oddNames are the names a run folder may really hold.
var oddNames = map[string]string{
	"RunInfo.xml": "<RunInfo/>",
	"Data/Intensities/BaseCalls/L001/C1.1/L001_1.cbcl": "cbcl",
	"with space/file name.tif":                         "space",
	"unicode/Größe-µm-日本.txt":                          "unicode",
	"percent%41.txt":                                   "percent",
	"back\\slash.txt":                                  "backslash",
	"colon:first.txt":                                  "colon",
	"hash#and?query.txt":                               "hash",
	strings.Repeat("l", 200) + ".dat":                  "long",
}

func TestManifestSha256sumAndBagIt(t *testing.T) {
	dir := t.TempDir()
	names := map[string]string{}
	for k, v := range oddNames {
		if runtime.GOOS == "windows" && strings.ContainsAny(k, `\:?`) {
			continue
		}
		names[k] = v
	}
	files := writeTree(t, dir, names)
	m, err := Manifest(files)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestName), m, 0o644); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(m), "\n"), "\n")
	if len(lines) != len(files) {
		t.Fatalf("%d lines for %d files", len(lines), len(files))
	}
	for i := 1; i < len(lines); i++ {
		if strings.SplitN(lines[i-1], "  ", 2)[1] > strings.SplitN(lines[i], "  ", 2)[1] {
			t.Fatalf("not sorted: %q before %q", lines[i-1], lines[i])
		}
	}
	// BagIt: % is percent-encoded; reading it back gives every path and hash.
	if !strings.Contains(string(m), "percent%2541.txt") {
		t.Fatalf("%% not encoded:\n%s", m)
	}
	back, err := ParseManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if back[f.Path] != f.SHA256 {
			t.Errorf("%q: read back %q, want %q", f.Path, back[f.Path], f.SHA256)
		}
	}
	// sha256sum -c agrees on every line without %, CR or LF.
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("no sha256sum here")
	}
	var plain []string
	for _, l := range lines {
		if !strings.Contains(l, "%") {
			plain = append(plain, l)
		}
	}
	check := filepath.Join(t.TempDir(), "check.txt")
	if err := os.WriteFile(check, []byte(strings.Join(plain, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sha256sum", "--strict", "-c", check)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	// And it fails when a file changes: the check is real.
	if err := os.WriteFile(filepath.Join(dir, "RunInfo.xml"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("sha256sum -c passed a changed file:\n%s", out)
	}
}

func TestManifestRefusesBadInput(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, f := range []File{
		{Path: "", SHA256: h},
		{Path: "/abs", SHA256: h},
		{Path: "../up", SHA256: h},
		{Path: "a//b", SHA256: h},
		{Path: "a", SHA256: "xyz"},
		{Path: "a", SHA256: h[:10]},
		{Path: "a", SHA256: h, Size: -1},
	} {
		if _, err := Manifest([]File{f}); err == nil {
			t.Errorf("Manifest accepted %+v", f)
		}
	}
	if _, err := Manifest([]File{{Path: "a", SHA256: h}, {Path: "a", SHA256: h}}); err == nil {
		t.Error("a path listed twice was accepted")
	}
	for _, bad := range []string{"nohash\n", h + "\n", "zz  a\n", h + "  a\n" + h + "  a\n"} {
		if _, err := ParseManifest([]byte(bad)); err == nil {
			t.Errorf("ParseManifest accepted %q", bad)
		}
	}
	for _, name := range []string{ManifestName, CrateName, "RO-CRATE-METADATA.JSON"} {
		if !Reserved(name) {
			t.Errorf("%q not reserved", name)
		}
	}
	if Reserved("sub/" + CrateName) {
		t.Error("a crate file in a sub-folder is the source's own")
	}
}
