package watcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// TestRescanDoesNotHoldBackNewFiles (issue 14, goal 4): a rescan of a
// tree whose journal lookups are slow (200 ms per batch of 500, on the
// fake clock: 4 s for 10,000 files) asks in batches and lets events and
// settling run between them: a file written while it runs settles within
// the settle period plus a batch, long before the rescan ends.
func TestRescanDoesNotHoldBackNewFiles(t *testing.T) {
	const files = 10_000
	root := testtmp.Dir(t)
	for i := range files / 1000 {
		dir := filepath.Join(root, fmt.Sprintf("run%d", i))
		os.Mkdir(dir, 0o755)
		for j := range 1000 {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", j)), []byte("old"), 0o644)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		var calls, asked atomic.Int64
		h := start(t, Options{Root: root, Settle: time.Second, Recursive: true, RescanInterval: time.Minute,
			KnownBatch: func(_ context.Context, fs []File) ([]bool, error) {
				calls.Add(1)
				asked.Add(int64(len(fs)))
				if len(fs) > KnownBatchSize {
					t.Errorf("asked about %d files at once", len(fs))
				}
				time.Sleep(200 * time.Millisecond) // a slow journal
				out := make([]bool, len(fs))
				for i, f := range fs {
					out[i] = filepath.Dir(f.RelPath) != "." // the run folders are journaled
				}
				return out, nil
			}})
		time.Sleep(5 * time.Second) // the walk at start: 20 batches, 4 s
		synctest.Wait()
		if n := asked.Load(); n != files {
			t.Fatalf("the walk at start asked about %d files, want %d", n, files)
		}
		before := calls.Load()
		time.Sleep(time.Minute) // the rescan started a second ago
		synctest.Wait()
		if calls.Load() == before {
			t.Fatal("no rescan running")
		}
		h.write("new.raw", "new", false) // its event is taken between two batches
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"new.raw"}) {
			t.Fatalf("1.5 s after its write, during the rescan: emitted %v, want [new.raw]", got)
		}
		if n := calls.Load() - before; n >= files/KnownBatchSize {
			t.Fatalf("the rescan had ended (%d batches): the case shows nothing", n)
		}
	})
}
