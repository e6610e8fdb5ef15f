//go:build linux

package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/cputime"
	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/watcher"
)

// BenchmarkRescanLatency (issue 14, goal 4) measures what a rescan of a
// watch holding 100,000 journaled files costs and how long it holds back
// a new file: a real journal (SQLite) knows every file, the watch rescans
// every 5 s (so a rescan is nearly always running), and a new file is
// written every 400 ms; its latency is from the write to its report,
// settle (1 s) included. "per-file" is the watcher asking the journal one
// query per file on its own goroutine (Known: before); "batched" asks 500
// at a time (KnownBatch) and handles events and settling between batches
// (after).
//
//	go test ./internal/daemon -run '^$' -bench BenchmarkRescanLatency -benchtime 1x -timeout 30m
func BenchmarkRescanLatency(b *testing.B) {
	const folders, perFolder = 100, 1000
	dir := b.TempDir()
	root := filepath.Join(dir, "in")
	j, err := journal.Open(filepath.Join(dir, "ferry.db"), journal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	for i := range folders {
		sub := filepath.Join(root, fmt.Sprintf("run%03d", i))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		var ss []journal.Settled
		for k := range perFolder {
			rel := fmt.Sprintf("run%03d/tile_%05d.tif", i, k)
			p := filepath.Join(root, filepath.FromSlash(rel))
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
			st, err := srcfile.Lstat(p)
			if err != nil {
				b.Fatal(err)
			}
			ss = append(ss, journal.Settled{Watch: root, RelPath: rel, Target: "t", Key: rel, BatchID: rel,
				Version: journal.Version{Size: st.Size, MtimeNS: st.ModTime.UnixNano(), FileID: st.ID.String()}, Signal: "quiet"})
		}
		if _, err := j.RecordSettledBatch(ctx, ss); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "new"), 0o755); err != nil {
		b.Fatal(err)
	}
	d := &Daemon{j: j}
	for _, mode := range []string{"per-file", "batched"} {
		b.Run(mode, func(b *testing.B) {
			o := watcher.Options{Root: root, Settle: time.Second, Recursive: true, RescanInterval: 5 * time.Second, Mode: watcher.ModeEvents}
			var mu sync.Mutex
			asked := 0
			if mode == "per-file" {
				o.Known = func(ctx context.Context, f watcher.File) (bool, error) {
					mu.Lock()
					asked++
					mu.Unlock()
					return d.known(ctx, f)
				}
			} else {
				o.KnownBatch = func(ctx context.Context, fs []watcher.File) ([]bool, error) {
					mu.Lock()
					asked += len(fs)
					mu.Unlock()
					return d.knownBatch(ctx, fs)
				}
			}
			w, err := watcher.New(o)
			if err != nil {
				b.Fatal(err)
			}
			written := map[string]time.Time{}
			var lat []float64
			var wmu sync.Mutex
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- w.Run(ctx, func(_ context.Context, fs []watcher.File) error {
					now := time.Now()
					wmu.Lock()
					defer wmu.Unlock()
					for _, f := range fs {
						// The first report only: nothing journals these, so
						// each rescan finds them again.
						if t, ok := written[f.RelPath]; ok {
							lat = append(lat, now.Sub(t).Seconds())
							delete(written, f.RelPath)
						}
					}
					return nil
				})
			}()
			for w.Health().LastWalk.IsZero() { // the walk at start
				time.Sleep(50 * time.Millisecond)
			}
			mu.Lock()
			asked = 0
			mu.Unlock()
			cpu0, _ := cputime.Self()
			const n = 50
			for i := range n {
				rel := fmt.Sprintf("new/%s-%03d.raw", mode, i)
				wmu.Lock()
				written[rel] = time.Now()
				wmu.Unlock()
				if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(rel)), []byte("new"), 0o644); err != nil {
					b.Fatal(err)
				}
				time.Sleep(400 * time.Millisecond)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				wmu.Lock()
				got := len(lat)
				wmu.Unlock()
				if got == n || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			cpu1, _ := cputime.Self()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			wmu.Lock()
			defer wmu.Unlock()
			if len(lat) != n {
				b.Fatalf("%d of %d new files reported", len(lat), n)
			}
			slices.Sort(lat)
			mu.Lock()
			rescans := float64(asked) / (folders * perFolder)
			mu.Unlock()
			cpu := cpu1 - cpu0
			b.ReportMetric(lat[len(lat)/2], "p50-s")
			b.ReportMetric(lat[len(lat)*9/10], "p90-s")
			b.ReportMetric(lat[len(lat)-1], "max-s")
			b.ReportMetric(rescans, "rescans")
			if rescans > 0 {
				b.ReportMetric(cpu.Seconds()/rescans, "cpu-s/rescan")
			}
		})
	}
}
