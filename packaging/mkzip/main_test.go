package main

import (
	"archive/zip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.txt")
	b := filepath.Join(dir, "b.bin")
	os.WriteFile(a, []byte("alpha"), 0o644)
	os.WriteFile(b, []byte(strings.Repeat("b", 10000)), 0o644)
	out := filepath.Join(dir, "out.zip")
	if err := write(out, []string{"A.txt=" + a, "sub/b.bin=" + b}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	got := map[string]string{}
	var order []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		got[f.Name] = string(data)
		order = append(order, f.Name)
	}
	if strings.Join(order, " ") != "A.txt sub/b.bin" || got["A.txt"] != "alpha" || got["sub/b.bin"] != strings.Repeat("b", 10000) {
		t.Errorf("archive holds %v", order)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("out.zip: %v %v, want mode 0644", fi.Mode(), err)
	}
}

// A bad entry is an error naming it, and no archive (not even a partial
// one) is left behind.
func TestWriteBad(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.txt")
	os.WriteFile(a, []byte("alpha"), 0o644)
	for _, c := range []struct {
		entry, want string
	}{
		{"noequals", "want NAME=FILE"},
		{"=" + a, "want NAME=FILE"},
		{"x=", "want NAME=FILE"},
		{"/abs=" + a, "relative, slash-separated"},
		{`win\name=` + a, "relative, slash-separated"},
		{"../up=" + a, "relative, slash-separated"},
		{"x=" + filepath.Join(dir, "missing"), "missing"},
		{"x=" + dir, "not a regular file"},
	} {
		out := filepath.Join(dir, "out.zip")
		err := write(out, []string{"ok.txt=" + a, c.entry})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one saying %q", c.entry, err, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%q: out.zip exists after a failure (%v)", c.entry, err)
		}
	}
	if err := write(filepath.Join(dir, "dup.zip"), []string{"x=" + a, "x=" + a}); err == nil || !strings.Contains(err.Error(), "already in the archive") {
		t.Errorf("a duplicate name: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".mkzip-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
