//go:build linux

package watcher

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
)

// holdOpen starts another process (a shell) that opens path for writing
// (appending) and keeps it open until the returned function is called,
// which closes it and waits for the process to end.
func holdOpen(t *testing.T, path string) (closeIt func()) {
	t.Helper()
	cmd := exec.Command("sh", "-c", `exec 3>>"$0"; echo open; read x; exec 3>&-`, path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "open" {
		t.Fatalf("writer process: %q %v", line, err)
	}
	done := false
	closeIt = func() {
		if done {
			return
		}
		done = true
		io.WriteString(stdin, "\n")
		stdin.Close()
		cmd.Wait()
	}
	t.Cleanup(closeIt)
	return closeIt
}

// A writer that keeps a file open and pauses longer than the settle period
// (write a frame, move the stage, write the next) does not get its file
// taken half-written: the file waits until the writer closes it, and is
// released with signal "close".
func TestHalfWrittenFileWaitsForItsWriter(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "stack.tif")
	os.WriteFile(p, []byte("frame 1\n"), 0o644)
	release := holdOpen(t, p) // another process holds it open for writing
	synctest.Test(t, func(t *testing.T) {
		w, err := New(Options{Root: dir, Settle: time.Second, Recursive: true, MaxOpenWait: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		h := startWith(t, w, &harness{t: t}, false)
		h.events <- fsnotify.Event{Name: p, Op: fsnotify.Write}
		time.Sleep(10 * time.Second) // the stage moves: far longer than settle
		synctest.Wait()
		if got := h.emitted(); len(got) != 0 {
			t.Fatalf("a file held open by its writer was taken: %+v", got)
		}
		release()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got := h.emitted()
		if len(got) != 1 || got[0].Signal != string(SignalClose) {
			t.Fatalf("after the writer closed it: %+v", got)
		}
	})
}

// A file never closed is taken after max_open_wait, and says so.
func TestNeverClosedFileIsTakenAfterMaxOpenWait(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "log.csv")
	os.WriteFile(p, []byte("t,v\n"), 0o644)
	holdOpen(t, p)
	synctest.Test(t, func(t *testing.T) {
		w, err := New(Options{Root: dir, Settle: time.Second, Recursive: true, MaxOpenWait: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		h := startWith(t, w, &harness{t: t}, false)
		h.events <- fsnotify.Event{Name: p, Op: fsnotify.Write}
		time.Sleep(50 * time.Second)
		synctest.Wait()
		if got := h.emitted(); len(got) != 0 {
			t.Fatalf("taken before max_open_wait: %+v", got)
		}
		time.Sleep(15 * time.Second)
		synctest.Wait()
		if got := h.emitted(); len(got) != 1 || got[0].Signal != string(SignalTimeout) {
			t.Fatalf("after max_open_wait: %+v", got)
		}
	})
}
