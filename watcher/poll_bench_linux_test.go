package watcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/cputime"
)

// BenchmarkPollRound measures one round of a polling watch over a tree of
// 100,000 files in 100 folders whose versions the journal knows (the
// first walk asked about each): a round lists every folder and stats
// every file, compares it with the snapshot and asks the journal about
// none. Besides ns/op and allocations it reports the process's CPU time
// (user+sys, garbage collection included) per round and the heap the
// watch keeps between rounds (the snapshot) after the first walk and
// after the rounds.
//
//	go test ./watcher -run '^$' -bench BenchmarkPollRound -benchmem
func BenchmarkPollRound(b *testing.B) {
	const folders, perFolder = 100, 1000
	root := b.TempDir()
	for i := range folders {
		dir := filepath.Join(root, fmt.Sprintf("run%03d", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for j := range perFolder {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("tile_%05d.tif", j)), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	asked := 0
	w, err := New(Options{Root: root, Recursive: true, Mode: ModePoll, Settle: time.Second,
		Known: func(context.Context, File) (bool, error) { asked++; return true, nil }})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s := w.newState(nil, func(context.Context, []File) error { return nil }, false)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	if err := s.lookAtRoot(ctx); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	// What the watch keeps between rounds: the snapshot.
	kept := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / (1 << 20)
	if !s.polling || asked != folders*perFolder || s.snap.len() != folders*perFolder {
		b.Fatalf("first walk: polling %v, asked %d, snapshot %d", s.polling, asked, s.snap.len())
	}
	asked = 0
	before, _ := cputime.Self()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.walkAll(ctx); err != nil {
			b.Fatal(err)
		}
	}
	after, _ := cputime.Self()
	// What it keeps after the rounds: rounds must not grow it (a map
	// assignment with a string key stores the new key, so a snapshot
	// keyed by slices of listed paths kept every file's path).
	runtime.GC()
	runtime.ReadMemStats(&m1)
	keptAfter := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / (1 << 20)
	if asked != 0 || len(s.pending) != 0 {
		b.Fatalf("rounds of an unchanged tree asked the journal %d times, %d pending", asked, len(s.pending))
	}
	b.ReportMetric((after-before).Seconds()/float64(b.N), "cpu-s/round")
	b.ReportMetric(float64(folders*perFolder), "files")
	b.ReportMetric(kept, "kept-MiB")
	b.ReportMetric(keptAfter, "keptAfter-MiB")
}
