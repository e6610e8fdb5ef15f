package journal

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// synthJournal builds a journal with n synthetic events (a realistic mix:
// 10 events per file, 100 files per batch), inserted directly in large
// transactions with correct hashes.
func synthJournal(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.db")
	j, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	j.Close()
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.Exec(`PRAGMA synchronous = OFF`)
	kinds := []string{"settled", "claimed", "chunk_hashed", "chunk_hashed", "file_hashed", "multipart_created", "chunk_acked", "chunk_acked", "uploaded", "modified_after_upload"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := GenesisHash
	const perTx = 50000
	for start := 0; start < n; start += perTx {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		st, err := tx.Prepare(`INSERT INTO events (seq, time, kind, file_id, correlation_id, batch_id, chunk_sequence, rel_path, size, sha256, detail, prev_hash, hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			b.Fatal(err)
		}
		for i := start; i < min(start+perTx, n); i++ {
			file := int64(i/10 + 1)
			e := Event{Seq: int64(i + 1), Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: Kind(kinds[i%10]), FileID: file,
				CorrelationID: fmt.Sprintf("%016x", file), BatchID: fmt.Sprintf("run-%04d", file/100), RelPath: fmt.Sprintf("run-%04d/img-%05d.tif", file/100, file),
				Size: 16 << 20, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Detail: "signal=quiet", PrevHash: prev}
			e.Hash = EventHash(e)
			prev = e.Hash
			if _, err := st.Exec(e.Seq, e.Time.Format(time.RFC3339Nano), e.Kind, e.FileID, e.CorrelationID, e.BatchID, nil, e.RelPath, e.Size, e.SHA256, e.Detail, e.PrevHash, e.Hash); err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	return path
}

// peakHeap samples HeapInuse until stop is called and returns the peak.
func peakHeap() (stop func() uint64) {
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
	}
	go func() {
		defer wg.Done()
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		return peak
	}
}

// BenchmarkExport exports a journal of 100k and of 1M synthetic events as
// JSONL (as `ferry journal export` does) to io.Discard, reporting events/s
// and the peak heap in use: the peak must not grow with the count. Run
// with -benchtime 1x (see BENCHMARKS.md).
func BenchmarkExport(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			path := synthJournal(b, n)
			j, err := Open(path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			runtime.GC()
			b.ResetTimer()
			var peak uint64
			start := time.Now()
			for range b.N {
				stop := peakHeap()
				bw := bufio.NewWriterSize(io.Discard, 256<<10)
				enc := json.NewEncoder(bw)
				count := 0
				if err := j.Events(context.Background(), EventFilter{}, func(e Event) error { count++; return enc.Encode(e) }); err != nil {
					b.Fatal(err)
				}
				bw.Flush()
				peak = max(peak, stop())
				if count != n {
					b.Fatalf("exported %d events, want %d", count, n)
				}
			}
			el := time.Since(start)
			b.ReportMetric(float64(n)*float64(b.N)/el.Seconds(), "events/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
