package watcher

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// TestRunWithRealEvents exercises the real fsnotify integration (outside a
// synctest bubble: its reader goroutine sits in a syscall). Rescans are an
// hour apart, so only events can find the files. Nothing sleeps: the test
// waits for the watcher to say it watches, then for the files it reports,
// with a deadline.
func TestRunWithRealEvents(t *testing.T) {
	root := testtmp.Dir(t)
	ready := &readyHandler{ready: make(chan struct{})}
	w, err := New(Options{Root: root, Settle: 100 * time.Millisecond, Recursive: true, RescanInterval: time.Hour, Logger: slog.New(ready)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	settled := make(chan File, 16)
	done := make(chan error, 1)
	go func() {
		done <- w.Run(ctx, func(_ context.Context, fs []File) error {
			for _, f := range fs {
				settled <- f
			}
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.After(10 * time.Second)
	select {
	case <-ready.ready: // the first walk has added its watches
	case <-deadline:
		t.Fatal("the watcher did not start watching")
	}
	deep := filepath.Join(root, "run 1", "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "ü.raw"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "top.txt"), []byte("x"), 0o644)
	got := map[string]int64{}
	for len(got) < 2 {
		select {
		case f := <-settled:
			got[f.RelPath] = f.Stat.Size
		case <-deadline:
			t.Fatalf("settled %v within 10 s, want run 1/a/b/ü.raw and top.txt", got)
		}
	}
	if got["run 1/a/b/ü.raw"] != 5 || got["top.txt"] != 1 {
		t.Fatalf("settled %v, want run 1/a/b/ü.raw (5) and top.txt (1)", got)
	}
}

// readyHandler is a slog.Handler that closes ready when the watcher logs
// that it is watching, which it does once its first walk has added the
// watches.
type readyHandler struct {
	once  sync.Once
	ready chan struct{}
}

func (h *readyHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *readyHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *readyHandler) WithGroup(string) slog.Handler            { return h }

func (h *readyHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "watching" {
		h.once.Do(func() { close(h.ready) })
	}
	return nil
}

// TestRootDeletedAndRecreatedWithRealEvents: with the real fsnotify, a
// root deleted while watched (another watch's kind of day: a share
// remounted, a folder made again) comes back by itself: a file written in
// the new folder is taken with the rescans an hour away.
func TestRootDeletedAndRecreatedWithRealEvents(t *testing.T) {
	parent := testtmp.Dir(t)
	root := filepath.Join(parent, "in")
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	ready := &readyHandler{ready: make(chan struct{})}
	w, err := New(Options{Root: root, Settle: 100 * time.Millisecond, Recursive: true, RescanInterval: time.Hour, Logger: slog.New(ready)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	settled := make(chan File, 16)
	done := make(chan error, 1)
	go func() {
		done <- w.Run(ctx, func(_ context.Context, fs []File) error {
			for _, f := range fs {
				settled <- f
			}
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.After(20 * time.Second)
	select {
	case <-ready.ready:
	case <-deadline:
		t.Fatal("the watcher did not start watching")
	}
	removeTree(t, root)
	for w.Health().Up {
		select {
		case <-deadline:
			t.Fatal("the deleted root is still up")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "sub", "deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "sub", "deeper", "new.raw"), []byte("new"), 0o644)
	select {
	case f := <-settled:
		if f.RelPath != "sub/deeper/new.raw" {
			t.Fatalf("settled %s, want sub/deeper/new.raw", f.RelPath)
		}
	case <-deadline:
		t.Fatalf("the recreated root's file was not taken; health %+v", w.Health())
	}
	// Its folders are watched again: a file made now comes by its event.
	os.WriteFile(filepath.Join(root, "sub", "later.raw"), []byte("later"), 0o644)
	select {
	case f := <-settled:
		if f.RelPath != "sub/later.raw" {
			t.Fatalf("settled %s, want sub/later.raw", f.RelPath)
		}
	case <-deadline:
		t.Fatal("a file in the recreated root's folder sent no event")
	}
}
