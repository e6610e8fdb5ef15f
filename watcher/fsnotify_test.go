package watcher

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// TestRunWithRealEvents exercises the real fsnotify integration (outside a
// synctest bubble: its reader goroutine sits in a syscall). Rescans are an
// hour apart, so only events can find the files.
func TestRunWithRealEvents(t *testing.T) {
	root := testtmp.Dir(t)
	w, err := New(Options{Root: root, Settle: 100 * time.Millisecond, Recursive: true, RescanInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	got := map[string]int64{}
	done := make(chan error, 1)
	go func() {
		done <- w.Run(ctx, func(_ context.Context, fs []File) error {
			mu.Lock()
			for _, f := range fs {
				got[f.RelPath] = f.Stat.Size
			}
			mu.Unlock()
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(200 * time.Millisecond) // let the initial walk add its watch
	deep := filepath.Join(root, "run 1", "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deep, "ü.raw"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "top.txt"), []byte("x"), 0o644)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["run 1/a/b/ü.raw"] != 5 || got["top.txt"] != 1 {
		t.Fatalf("settled %v, want run 1/a/b/ü.raw (5) and top.txt (1)", got)
	}
}
