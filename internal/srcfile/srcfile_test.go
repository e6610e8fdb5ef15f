package srcfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-data/ferry/internal/testtmp"
)

func TestIdentity(t *testing.T) {
	d := testtmp.Dir(t)
	p := filepath.Join(d, "a.raw")
	if err := os.WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	s1, err := Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if s1.Size != 3 || s1.ID == (ID{}) {
		t.Fatalf("Lstat = %+v, want size 3 and an identity", s1)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := FileStat(f)
	f.Close()
	if err != nil || !s2.Same(s1) {
		t.Fatalf("FileStat = %+v, %v; want the same version as Lstat %+v", s2, err, s1)
	}
	// Replaced under the same name: a new identity.
	q := filepath.Join(d, "b.raw")
	os.WriteFile(q, []byte("two"), 0o644)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(q, p); err != nil {
		t.Fatal(err)
	}
	s3, err := Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if s3.ID == s1.ID || s3.Same(s1) {
		t.Fatalf("a replaced file kept its identity: %+v vs %+v", s3, s1)
	}
}

func TestLstatClassifies(t *testing.T) {
	d := testtmp.Dir(t)
	if _, err := Lstat(filepath.Join(d, "missing")); !IsVanished(err) {
		t.Errorf("missing file: %v, want vanished", err)
	}
	if _, err := Lstat(d); !errors.Is(err, ErrNotRegular) {
		t.Errorf("folder: %v, want ErrNotRegular", err)
	}
}

func TestOpenDoesNotBlockWriterAndProbe(t *testing.T) {
	d := testtmp.Dir(t)
	p := filepath.Join(d, "w.raw")
	os.WriteFile(p, []byte("x"), 0o644)
	if err := ProbeReadable(p); err != nil {
		t.Fatalf("ProbeReadable on a closed file: %v", err)
	}
	// ferry reading must never stop the instrument from writing,
	// renaming or deleting.
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("a writer was blocked by ferry's open handle: %v", err)
	}
	w.Write([]byte("y"))
	if err := probeWhileWriting(p); err != nil {
		t.Error(err)
	}
	w.Close()
	r.Close()
	if err := ProbeReadable(p); err != nil {
		t.Fatalf("ProbeReadable after the writer closed: %v", err)
	}
}
