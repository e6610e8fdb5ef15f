//go:build !windows

package watcher

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// TestWatchLimitFallsBackToPolling: when adding a watch fails with ENOSPC
// (inotify_add_watch at fs.inotify.max_user_watches), the watch logs the
// sysctl, gives back every event watch it held, polls, and Health says
// so; its files are still taken.
func TestWatchLimitFallsBackToPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := t.TempDir()
		for _, d := range []string{"a", "b", "c"} {
			os.Mkdir(filepath.Join(root, d), 0o755)
		}
		h := &harness{t: t, addErr: func(name string) error {
			if filepath.Base(name) == "b" {
				return fmt.Errorf("add %s: %w", name, syscall.ENOSPC)
			}
			return nil
		}}
		l := &logs{}
		w, err := New(Options{Root: root, Settle: time.Second, Recursive: true, RescanInterval: time.Hour, Logger: slog.New(l)})
		if err != nil {
			t.Fatal(err)
		}
		w.detectFS = func(string) (FSInfo, error) { return FSInfo{Name: "ext4"}, nil }
		startWith(t, w, h, false)
		if n := l.count("ERROR", "fs.inotify.max_user_watches", "polls instead"); n != 1 {
			t.Fatalf("the watch limit was logged %d times, want once naming the sysctl:\n%s", n, l)
		}
		hl := w.Health()
		if hl.Mode != ModePoll || !strings.Contains(hl.ModeReason, "fs.inotify.max_user_watches") {
			t.Fatalf("health %+v, want mode poll naming the sysctl", hl)
		}
		if wl := h.WatchList(); len(wl) != 0 {
			t.Fatalf("still watching %v after falling back to polling", wl)
		}
		os.WriteFile(filepath.Join(root, "c", "late.raw"), []byte("x"), 0o644)
		time.Sleep(12 * time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"c/late.raw"}) {
			t.Fatalf("emitted %v, want [c/late.raw] found by polling", got)
		}
		if wl := h.WatchList(); len(wl) != 0 {
			t.Fatalf("polling added watches again: %v", wl)
		}
	})
}
