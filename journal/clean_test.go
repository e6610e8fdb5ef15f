package journal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// TestStartCheckSkippedOnlyAfterACleanClose: Open runs quick_check unless
// the journal is exactly as the last Close left it; a journal left open (a
// crash), still open elsewhere, or written by anything else is checked,
// and a damaged one is refused.
func TestStartCheckSkippedOnlyAfterACleanClose(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(testtmp.Dir(t), "ferry.db")
	openAs := func(want string) *Journal {
		t.Helper()
		j, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(j.StartCheck(), want) {
			t.Fatalf("StartCheck = %q, want %q", j.StartCheck(), want)
		}
		return j
	}
	j := openAs("quick_check") // new
	if _, err := j.RecordSettled(ctx, settled("a", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(CleanPath(path)); err == nil {
		t.Fatal("a clean-close marker while the journal is open")
	}
	// Opened a second time while the first is open (a command beside the
	// daemon): no marker, so it checks; closing it leaves none (the first
	// still has the WAL).
	j2 := openAs("quick_check")
	if err := j2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(CleanPath(path)); err == nil {
		t.Fatal("a clean-close marker while another user has the journal open")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatal("the WAL is still there after the last Close")
	}
	j = openAs("skipped")
	// A run that ends without Close (a crash) leaves no marker.
	if _, err := os.Stat(CleanPath(path)); err == nil {
		t.Fatal("the marker outlived the Open that read it")
	}
	j.Close()

	// Written by something else after a clean close: checked, and refused.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	page := make([]byte, 4096)
	for i := range page {
		page[i] = 0xa5
	}
	if _, err := f.WriteAt(page, fi.Size()-4096); err != nil { // the last page: a b-tree page
		t.Fatal(err)
	}
	f.Close()
	later := fi.ModTime().Add(time.Second) // coarse file clocks: the write shows in the time
	os.Chtimes(path, later, later)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a journal damaged after a clean close = %v, want ErrCorrupt", err)
	}
}
