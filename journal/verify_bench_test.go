package journal

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// realJournal builds, through the journal's own API (settled, claimed,
// hashed, uploaded: four events a file), a journal of n files, 1,000 per
// batch, and returns a copy of it for the benchmark to use. The journal is
// built once per n and kept in FERRY_BENCH_CACHE (a folder) when that is
// set, so that runs before and after a change read the same journal.
func realJournal(b *testing.B, n int) string {
	b.Helper()
	cache := os.Getenv("FERRY_BENCH_CACHE")
	if cache == "" {
		cache = b.TempDir()
	}
	built := filepath.Join(cache, fmt.Sprintf("files-%d.db", n))
	if _, err := os.Stat(built); err != nil {
		buildJournal(b, built+".tmp", n)
		if err := os.Rename(built+".tmp", built); err != nil {
			b.Fatal(err)
		}
	}
	path := filepath.Join(b.TempDir(), "ferry.db")
	src, err := os.Open(built)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

func buildJournal(b *testing.B, path string, n int) {
	ctx := context.Background()
	j, err := Open(path, Options{MaxBatch: 1024})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	const per = 1000
	sha := strings.Repeat("ab", 32)
	for start := 0; start < n; start += per {
		var ss []Settled
		for i := start; i < min(start+per, n); i++ {
			rel := fmt.Sprintf("run-%04d/img-%07d.tif", i/per, i)
			ss = append(ss, Settled{Watch: "/data", RelPath: rel, Target: "t", Key: "p/" + rel, BatchID: fmt.Sprintf("run-%04d", i/per),
				Version: Version{Size: 16 << 10, MtimeNS: 1, FileID: fmt.Sprint(i)}, Signal: "quiet"})
		}
		if _, err := j.RecordSettledBatch(ctx, ss); err != nil {
			b.Fatal(err)
		}
		due, err := j.Due(ctx, per)
		if err != nil {
			b.Fatal(err)
		}
		sums := make([]string, len(due))
		for i := range sums {
			sums[i] = sha
		}
		jobs, _, err := j.ClaimDue(ctx, due, sums)
		if err != nil {
			b.Fatal(err)
		}
		errs := make([]<-chan error, len(jobs))
		for i := range jobs {
			errs[i] = j.FinishAsync(ctx, &jobs[i], End{Kind: KindUploaded, SHA256: sha, Landed: &Landed{Key: jobs[i].Key, SHA256: sha}})
		}
		for _, c := range errs {
			if err := <-c; err != nil {
				b.Fatal(err)
			}
		}
	}
}

// peakRSS resets the process's peak resident set (Linux: clear_refs 5) and
// returns a function that reads it (VmHWM), in bytes; 0 elsewhere.
func peakRSS() func() uint64 {
	if os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) != nil {
		return func() uint64 { return 0 }
	}
	return func() uint64 {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return 0
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				var kb uint64
				fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
				return kb << 10
			}
		}
		return 0
	}
}

// BenchmarkVerifyState runs what `ferry journal verify` runs on the file
// tables (VerifyState: the replay of the events compared with the files
// and chunks tables) on journals of 10,000 and 100,000 uploaded files,
// reporting the peak Go heap in use and the peak RSS: neither may grow
// with the number of files. Run with -benchtime 1x (see BENCHMARKS.md).
func BenchmarkVerifyState(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			path := realJournal(b, n)
			j, err := Open(path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			runtime.GC()
			debug.FreeOSMemory()
			b.ResetTimer()
			var heap, rss uint64
			start := time.Now()
			for range b.N {
				stop, rssNow := peakHeap(), peakRSS()
				mm, files, err := verifyStateCount(context.Background(), j)
				heap, rss = max(heap, stop()), max(rss, rssNow())
				if err != nil || mm != 0 || files != n {
					b.Fatalf("VerifyState: %d mismatches, %d files (want %d), %v", mm, files, n, err)
				}
			}
			el := time.Since(start)
			b.ReportMetric(float64(n)*float64(b.N)/el.Seconds(), "files/s")
			b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
		})
	}
}

// BenchmarkOpen opens a journal of 100,000 uploaded files, as the daemon
// and every command that writes do at start, and reports the time it
// takes: after a clean close (the integrity check is skipped, clean.go)
// and after an unclean end (no marker: quick_check reads every page).
func BenchmarkOpen(b *testing.B) {
	path := realJournal(b, 100_000)
	for _, c := range []struct {
		name  string
		clean bool
	}{{"after-clean-close", true}, {"after-unclean-end", false}} {
		b.Run(c.name, func(b *testing.B) {
			j, err := Open(path, Options{}) // leaves the marker when it closes
			if err != nil {
				b.Fatal(err)
			}
			j.Close()
			b.ResetTimer()
			for range b.N {
				if !c.clean {
					os.Remove(CleanPath(path))
				}
				j, err := Open(path, Options{})
				if err != nil {
					b.Fatal(err)
				}
				if got := j.StartCheck() == "quick_check"; got == c.clean {
					b.Fatalf("StartCheck = %q", j.StartCheck())
				}
				j.Close()
			}
		})
	}
}

// BenchmarkArchive archives every event of a journal of 100,000 uploaded
// files (ArchiveFile), reporting the time spent writing the archive (a
// read snapshot, beside the uploads), the time of the commit (one
// transaction of the journal's writer, which the uploads' transitions wait
// for), and the peak heap and RSS.
func BenchmarkArchive(b *testing.B) {
	for range b.N {
		b.StopTimer()
		path := realJournal(b, 100_000)
		j, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		debug.FreeOSMemory()
		b.StartTimer()
		stop, rssNow := peakHeap(), peakRSS()
		start := time.Now()
		p, err := j.WriteArchive(context.Background(), time.Now().Add(time.Hour), io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		wrote := time.Since(start)
		p.Point.SHA256, p.Point.Name = strings.Repeat("0", 64), "a.jsonl"
		start = time.Now()
		if _, err := j.CommitArchive(context.Background(), p); err != nil {
			b.Fatal(err)
		}
		committed := time.Since(start)
		heap, rss := stop(), rssNow()
		b.ReportMetric(wrote.Seconds(), "write-s")
		b.ReportMetric(committed.Seconds(), "commit-s")
		b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
		j.Close()
	}
}
