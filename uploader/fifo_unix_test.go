//go:build unix

package uploader

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ferry-data/ferry/journal"
)

// A queued file replaced by a FIFO (nobody writing to it) does not block
// the worker in open(): that version vanished, and the other files go on.
func TestQueuedFileReplacedByAFIFO(t *testing.T) {
	e := newEnv(t)
	e.add("run/frame.raw", []byte("a frame"))
	e.add("run/other.raw", []byte("another"))
	p := filepath.Join(e.watch, "run", "frame.raw")
	os.Remove(p)
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	e.drain() // would hang here with a plain open
	if r := e.row("run/frame.raw"); r.State != journal.Vanished || r.UploadedKey != "" {
		t.Fatalf("the FIFO: %+v", r)
	}
	e.landed("run/other.raw", []byte("another"))
}
