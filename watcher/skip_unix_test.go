//go:build !windows

package watcher

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// TestSpecialEntriesHaveReasons: a symlink, a FIFO and a socket in the
// tree are not taken, and each says why: counted by reason in Health and
// logged once (not at every walk); the regular files go on.
func TestSpecialEntriesHaveReasons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := testtmp.Dir(t)
		writeFile(t, filepath.Join(root, "run", "a.raw"), "a")
		if err := syscall.Mkfifo(filepath.Join(root, "run", "pipe"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Symlink(filepath.Join(root, "run", "a.raw"), filepath.Join(root, "run", "link.raw"))
		os.Symlink(t.TempDir(), filepath.Join(root, "dirlink"))
		// A socket path must be short: made in a short folder, moved in.
		sockDir, err := os.MkdirTemp("", "s")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(sockDir)
		ln, err := net.Listen("unix", filepath.Join(sockDir, "s"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if err := os.Rename(filepath.Join(sockDir, "s"), filepath.Join(root, "run", "sock")); err != nil {
			t.Fatal(err)
		}
		l := &logs{}
		h := start(t, Options{Root: root, Settle: time.Second, Recursive: true, RescanInterval: time.Minute, Exclude: []string{"**/*.tmp"}, Logger: slog.New(l)})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"run/a.raw"}) {
			t.Fatalf("emitted %v, want [run/a.raw]", got)
		}
		want := map[SkipReason]int{SkipSymlink: 2, SkipSpecial: 2}
		if hl := h.w.Health(); !mapsEqual(hl.Skipped, want) {
			t.Fatalf("skipped %v, want %v", hl.Skipped, want)
		}
		// A FIFO that the excludes leave out is not counted; one made
		// while watched is, at once.
		syscall.Mkfifo(filepath.Join(root, "run", "x.tmp"), 0o644)
		syscall.Mkfifo(filepath.Join(root, "run", "late"), 0o644)
		h.events <- fsnotify.Event{Name: filepath.Join(root, "run", "x.tmp"), Op: fsnotify.Create}
		h.events <- fsnotify.Event{Name: filepath.Join(root, "run", "late"), Op: fsnotify.Create}
		synctest.Wait()
		want[SkipSpecial] = 3
		if hl := h.w.Health(); !mapsEqual(hl.Skipped, want) {
			t.Fatalf("skipped %v after a FIFO was made, want %v", hl.Skipped, want)
		}
		time.Sleep(3 * time.Minute) // rescans
		synctest.Wait()
		if hl := h.w.Health(); !mapsEqual(hl.Skipped, want) {
			t.Fatalf("skipped %v after rescans, want %v", hl.Skipped, want)
		}
		for _, c := range []struct{ path, reason, kind string }{
			{"run/pipe", "special", "kind=FIFO"},
			{"run/sock", "special", "kind=socket"},
			{"run/late", "special", "kind=FIFO"},
			{"run/link.raw", "symlink", "symlinks inside a watch are not followed"},
			{"dirlink", "symlink", "symlinks inside a watch are not followed"},
		} {
			if n := l.count("WARN not taken", "path="+c.path+" ", "reason="+c.reason, c.kind); n != 1 {
				t.Errorf("%s logged %d times, want once:\n%s", c.path, n, l)
			}
		}
		if n := l.count("x.tmp"); n != 0 {
			t.Errorf("an excluded FIFO was logged:\n%s", l)
		}
	})
}

func mapsEqual(a, b map[SkipReason]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}
