//go:build unix

package srcfile

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Whatever replaced a file at its path, opening it neither blocks nor
// reads anything but a regular file (a FIFO with no writer would block a
// plain open forever).
func TestOpenNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "queued.tif")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(fifo); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("a FIFO: %v", err)
	}
	if err := ProbeReadable(fifo); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("probing a FIFO: %v", err)
	}
	target := filepath.Join(dir, "real")
	os.WriteFile(target, []byte("x"), 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(link); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("a symlink: %v", err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("a folder: %v", err)
	}
	sock := filepath.Join(dir, "s.sock")
	if l, err := net.Listen("unix", sock); err == nil {
		defer l.Close()
		if _, err := Open(sock); err == nil || errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a socket: %v", err)
		}
	}
	if _, err := Open("/dev/null"); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("a device: %v", err)
	}
	f, err := Open(target)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if n, err := f.Read(b); n != 1 || err != nil {
		t.Fatalf("reading a regular file: %d %v", n, err)
	}
	f.Close()
}
