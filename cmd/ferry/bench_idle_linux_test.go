package main

// BenchmarkIdleWatch: a watch holding many files already uploaded (issue
// 14 goal 5: 1,000,000 files in 10,000 folders). It writes the files,
// journals them as uploaded through the journal's API (settled, claimed,
// hashed, uploaded: as ferry would have), starts the real binary as a
// daemon on that journal with an fs target, and measures the time until
// the watch is walked ("watching" in the log) and until the process is
// idle, its resident memory, and how long a new file then takes to land.
//
//	FERRY_BENCH_FILES=1000000 go test -run '^$' -bench BenchmarkIdleWatch -benchtime 1x -timeout 60m ./cmd/ferry
//
// FERRY_BENCH_FILES defaults to 100,000 (100 per folder, as the goal's
// 1,000,000 in 10,000 folders). Linux only: it reads /proc.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader"
)

func BenchmarkIdleWatch(b *testing.B) {
	n := 100_000
	if v := os.Getenv("FERRY_BENCH_FILES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("FERRY_BENCH_FILES=%q: want a number of files, at least 100", v)
		}
	}
	// FERRY_BENCH_MODE=poll watches the tree with mode = "poll" (no
	// inotify watch; poll_interval 10 s): instead of waiting for idle, the
	// benchmark measures the CPU the polling takes over three rounds.
	mode := os.Getenv("FERRY_BENCH_MODE")
	if mode != "" && mode != "poll" && mode != "events" {
		b.Fatalf("FERRY_BENCH_MODE=%q: want events or poll", mode)
	}
	const perFolder = 100
	const pollInterval = 10 * time.Second
	b.StopTimer()
	bin := benchBuild(b)
	work := b.TempDir()
	root := filepath.Join(work, "in")
	archive := filepath.Join(work, "archive")

	start := time.Now()
	rels := idleWriteFiles(b, root, n, perFolder)
	b.Logf("wrote %d files in %d folders in %v", n, n/perFolder, time.Since(start).Round(time.Second))

	start = time.Now()
	dbPath := filepath.Join(work, "ferry.db")
	idleJournal(b, dbPath, root, rels)
	st, _ := os.Stat(dbPath)
	b.Logf("journaled them as uploaded in %v (%d MB)", time.Since(start).Round(time.Second), st.Size()/1e6)

	cfg := filepath.Join(work, "ferry.toml")
	logPath := filepath.Join(work, "ferry.log")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`[journal]
path = %q

[log]
file = %q
level = "info"

[metrics]
listen = ""

[target.nas]
type = "fs"
path = %q

[[watch]]
path = %q
target = "nas"
settle = "1s"
`, dbPath, logPath, archive, root)), 0o644)
	if mode == "poll" {
		f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(f, "mode = \"poll\"\npoll_interval = %q\n", pollInterval.String())
		f.Close()
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfg)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	b.StartTimer()
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	pid := cmd.Process.Pid
	logHas := func(s string) bool {
		data, _ := os.ReadFile(logPath)
		return strings.Contains(string(data), s)
	}
	wait := func(what string, limit time.Duration, cond func() bool) time.Duration {
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) {
				data, _ := os.ReadFile(logPath)
				b.Fatalf("no %s within %v; log:\n%s", what, limit, tail(string(data), 4000))
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(begin)
	}
	walked := wait("walk", 10*time.Minute, func() bool { return logHas(`"msg":"watching"`) })
	// Idle: less than 2% of a core over the last two seconds.
	var idle time.Duration
	prev, prevAt := procCPU(b, pid), time.Now()
	var pollShare float64
	if mode == "poll" {
		// Polling never idles: the share of a core over three rounds.
		time.Sleep(3 * pollInterval)
		cpu, at := procCPU(b, pid), time.Now()
		pollShare = float64(cpu-prev) / float64(at.Sub(prevAt))
		idle = time.Since(begin)
		b.ReportMetric(100*pollShare, "pollCPU-%")
		b.Logf("poll: %.1f%% of a core over three %v rounds (%v of CPU a round)", 100*pollShare, pollInterval,
			time.Duration(pollShare*float64(pollInterval)).Round(time.Millisecond))
	}
	for idle == 0 {
		time.Sleep(2 * time.Second)
		cpu, at := procCPU(b, pid), time.Now()
		if float64(cpu-prev)/float64(at.Sub(prevAt)) < 0.02 {
			idle = time.Since(begin) - 2*time.Second
		}
		prev, prevAt = cpu, at
		if time.Since(begin) > 20*time.Minute {
			b.Fatal("not idle within 20 minutes")
		}
	}
	rss, hwm := procMem(b, pid)
	cpuAll := procCPU(b, pid)

	// A new file, in a folder of the tree.
	newRel := filepath.Join(filepath.Dir(rels[n/2]), "new-file.bin")
	written := time.Now()
	if err := os.WriteFile(filepath.Join(root, newRel), []byte("a new file"), 0o644); err != nil {
		b.Fatal(err)
	}
	wait("upload of the new file", 5*time.Minute, func() bool {
		return logHas(`"msg":"uploaded"`) && logHas(filepath.ToSlash(newRel))
	})
	latency := time.Since(written)
	b.StopTimer()
	rssAfter, _ := procMem(b, pid)

	b.ReportMetric(walked.Seconds(), "walked-s")
	b.ReportMetric(idle.Seconds(), "idle-s")
	b.ReportMetric(float64(rss)/1024, "idleRSS-MiB")
	b.ReportMetric(float64(hwm)/1024, "peakRSS-MiB")
	b.ReportMetric(latency.Seconds(), "newfile-s")
	b.Logf("%d files: walked in %v, idle after %v (CPU %v until then), RSS %.1f MiB idle, peak %.1f MiB; a new file landed %v after its write (settle 1s); RSS %.1f MiB after",
		n, walked.Round(10*time.Millisecond), idle.Round(10*time.Millisecond), time.Duration(cpuAll).Round(10*time.Millisecond),
		float64(rss)/1024, float64(hwm)/1024, latency.Round(10*time.Millisecond), float64(rssAfter)/1024)
}

// idleWriteFiles writes n small files, perFolder to a folder, and returns
// their paths relative to root.
func idleWriteFiles(b *testing.B, root string, n, perFolder int) []string {
	rels := make([]string, n)
	for i := range rels {
		rels[i] = filepath.Join(fmt.Sprintf("run-%05d", i/perFolder), fmt.Sprintf("tile-%07d.tif", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for f := w * perFolder; f < n; f += 8 * perFolder {
				dir := filepath.Join(root, filepath.Dir(rels[f]))
				if err := os.MkdirAll(dir, 0o755); err != nil {
					errs <- err
					return
				}
				for i := f; i < min(f+perFolder, n); i++ {
					if err := os.WriteFile(filepath.Join(root, rels[i]), []byte(rels[i]), 0o644); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return rels
}

// idleJournal journals every file of root as uploaded, as a ferry that
// uploaded them would have: settled (with the version on disk), claimed,
// hashed and uploaded, 1,000 at a time.
func idleJournal(b *testing.B, path, root string, rels []string) {
	ctx := context.Background()
	j, err := journal.Open(path, journal.Options{MaxBatch: 1024})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	const per = 1000
	sha := strings.Repeat("ab", 32)
	for start := 0; start < len(rels); start += per {
		var ss []journal.Settled
		for _, rel := range rels[start:min(start+per, len(rels))] {
			st, err := srcfile.Lstat(filepath.Join(root, rel))
			if err != nil {
				b.Fatal(err)
			}
			slash := filepath.ToSlash(rel)
			key, err := uploader.ObjectKey("", slash)
			if err != nil {
				b.Fatal(err)
			}
			ss = append(ss, journal.Settled{Watch: root, RelPath: slash, Target: "nas", Key: key, BatchID: uploader.BatchID(slash),
				Version: journal.Version{Size: st.Size, MtimeNS: st.ModTime.UnixNano(), FileID: st.ID.String()}, Signal: "quiet"})
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
		done := make([]<-chan error, len(jobs))
		for i := range jobs {
			done[i] = j.FinishAsync(ctx, &jobs[i], journal.End{Kind: journal.KindUploaded, SHA256: sha, Landed: &journal.Landed{Key: jobs[i].Key, SHA256: sha}})
		}
		for _, c := range done {
			if err := <-c; err != nil {
				b.Fatal(err)
			}
		}
	}
}

// procCPU returns the user + system CPU time of pid, in nanoseconds.
func procCPU(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's closing parenthesis: state is field 3,
	// utime 14 and stime 15 (clock ticks, 100 a second on Linux).
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	return (ut + stt) * int64(time.Second/100)
}

// procMem returns the resident set of pid and its peak, in KiB.
func procMem(b *testing.B, pid int) (rss, hwm int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
