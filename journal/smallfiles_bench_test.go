package journal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/cputime"
)

// BenchmarkSmallFiles drives small files through the journal as the
// daemon does (issue 14 goal 1): the watcher records them settled in
// batches, the dispatcher claims two per worker and journals the hashes of
// the preloaded ones in one transition, and four workers each finish their
// file (uploaded) without waiting for the commit. It reports the journal's
// cost per file: time (on a 2-core machine the writer's CPU), allocations,
// events, statements run by the writer and commits. synchronous=FULL, as
// the daemon runs.
//
//	go test -run '^$' -bench SmallFiles -benchmem ./journal
func BenchmarkSmallFiles(b *testing.B) {
	const workers, settleBatch = 4, 64
	ctx := context.Background()
	j, err := Open(filepath.Join(b.TempDir(), "ferry.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	n := b.N
	var seq0 int64
	if err := j.r.QueryRow(`SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&seq0); err != nil {
		b.Fatal(err)
	}
	commits0, stmts0 := j.commits.Load(), j.statements.Load()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, _ := cputime.Self()
	start := time.Now()
	// The watcher.
	settled, more := make(chan struct{}), make(chan struct{}, 1)
	go func() {
		defer close(settled)
		for i := 0; i < n; i += settleBatch {
			var ss []Settled
			for k := i; k < min(i+settleBatch, n); k++ {
				rel := fmt.Sprintf("run/cycle-%04d/tile-%07d.tif", k/1000, k)
				ss = append(ss, Settled{Watch: "/data", RelPath: rel, Target: "s3", Key: "p/" + rel, BatchID: "run",
					Version: Version{Size: 16 << 10, MtimeNS: int64(k), FileID: fmt.Sprint(k)}, Signal: "quiet"})
			}
			if _, err := j.RecordSettledBatch(ctx, ss); err != nil {
				b.Error(err)
				return
			}
			select {
			case more <- struct{}{}:
			default:
			}
		}
	}()
	// The dispatcher and the workers.
	jobs := make(chan *Job, workers)
	var wg sync.WaitGroup
	var done sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for jb := range jobs {
				done.Add(1)
				c := j.FinishAsync(ctx, jb, End{Kind: KindUploaded, SHA256: jb.SHA256, Landed: &Landed{Key: jb.Key, SHA256: jb.SHA256}})
				go func() {
					defer done.Done()
					if err := <-c; err != nil {
						b.Error(err)
					}
				}()
			}
		}()
	}
	claimedAll := 0
	for claimedAll < n {
		due, err := j.Due(ctx, 2*workers)
		if err != nil {
			b.Fatal(err)
		}
		if len(due) == 0 {
			select { // the watcher is behind
			case <-more:
			case <-settled:
			}
			continue
		}
		sums := make([]string, len(due))
		for i := range due {
			sum := sha256.Sum256([]byte(due[i].RelPath))
			sums[i] = hex.EncodeToString(sum[:])
		}
		claimed, from, err := j.ClaimDue(ctx, due, sums)
		if err != nil {
			b.Fatal(err)
		}
		for k, i := range from {
			claimed[k].SHA256 = sums[i]
		}
		for i := range claimed {
			jobs <- &claimed[i]
		}
		claimedAll += len(claimed)
	}
	close(jobs)
	wg.Wait()
	done.Wait()
	<-settled
	elapsed := time.Since(start)
	cpu1, _ := cputime.Self()
	cpu := cpu1 - cpu0
	b.StopTimer()
	var seq1 int64
	if err := j.r.QueryRow(`SELECT MAX(seq) FROM events`).Scan(&seq1); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "files/s")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/file")
	}
	b.ReportMetric(float64(seq1-seq0)/float64(n), "events/file")
	b.ReportMetric(float64(j.commits.Load()-commits0)/float64(n), "commits/file")
	b.ReportMetric(float64(j.statements.Load()-stmts0)/float64(n), "stmts/file")
}
