package main

// End-to-end benchmarks of the ferry binary: `ferry run --once` uploads
// generated files to a real versitygw on loopback, as a subprocess, so the
// figures include start-up, the journal, hashing and the S3 requests, and
// the peak RSS is that of the ferry process alone.
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./cmd/ferry   (make bench)
//
// When rclone is available (FERRY_RCLONE, or rclone on PATH), each case also
// runs `rclone copy` of the same files to the same server with matching
// settings, for comparison. FERRY_BENCH_BASELINE names another ferry binary
// (say, built from an earlier commit) that each case runs too, for a before
// and after in one run. FERRY_BENCH_PROFILE=FOLDER has ferry write a CPU
// profile of each case there. See BENCHMARKS.md.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-data/ferry/internal/cputime"
	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/uploader/sink/s3sink"
)

const (
	benchBucket    = "bench"
	benchSettle    = 200 * time.Millisecond
	benchWorkers   = 4
	benchChunk     = 16 << 20
	benchAccessEnv = "FERRY_BENCH_ACCESS_KEY"
	benchSecretEnv = "FERRY_BENCH_SECRET_KEY"
	benchBlockSize = 1 << 20
	benchRunLimit  = 15 * time.Minute // one ferry or rclone run
)

// benchExeSuffix is the executables' file name suffix: ".exe" on Windows.
var benchExeSuffix = func() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}()

// benchEnv is what every case shares.
type benchEnv struct {
	ferry  string // the ferry binary
	base   string // FERRY_BENCH_BASELINE: another ferry binary to compare; "" when not set
	rclone string // the rclone binary; "" when not available
	srv    *testsrv.S3
	block  []byte // 1 MiB of pseudo-random bytes, the files' pattern
}

// benchFile is one generated file.
type benchFile struct {
	rel    string // slash-separated, relative to the source folder
	size   int64
	sha256 string // lowercase hex
}

// benchResult is one run of an uploader.
type benchResult struct {
	wall   time.Duration
	cpu    time.Duration // user + system CPU time of the process
	rssKiB int64         // peak resident set size; -1 when the OS does not say
	rchar  int64         // bytes the process read (Linux /proc io rchar); -1 when unknown
}

func BenchmarkUpload(b *testing.B) {
	e := &benchEnv{srv: testsrv.StartS3(b)}
	e.srv.CreateBucket(b, benchBucket)
	e.ferry = benchBuild(b)
	e.base = os.Getenv("FERRY_BENCH_BASELINE")
	e.rclone = benchFindRclone(b)
	e.block = make([]byte, benchBlockSize)
	rng := rand.NewChaCha8([32]byte{'f', 'e', 'r', 'r', 'y'})
	_, _ = rng.Read(e.block)

	b.Run("100MiB", func(b *testing.B) {
		benchCase(b, e, "bytes", func(dir string) []benchFile {
			return []benchFile{benchWriteFile(b, e, dir, "run-0001/file.bin", 100<<20, 1)}
		})
	})
	b.Run("2GiB", func(b *testing.B) {
		benchCase(b, e, "bytes", func(dir string) []benchFile {
			return []benchFile{benchWriteFile(b, e, dir, "run-0001/file.bin", 2<<30, 1)}
		})
	})
	b.Run("4x256MiB", func(b *testing.B) {
		benchCase(b, e, "bytes", func(dir string) []benchFile {
			var files []benchFile
			for i := range 4 {
				files = append(files, benchWriteFile(b, e, dir, fmt.Sprintf("run-0001/file-%d.bin", i), 256<<20, uint64(i+1)))
			}
			return files
		})
	})
	// Small files, the sequencers' and imaging tiles' bread and butter:
	// issue 14's cases.
	for _, c := range []struct {
		name   string
		n      int
		size   int64
		perRun int
	}{{"10000x16KiB", 10_000, 16 << 10, 500}, {"50000x4KiB", 50_000, 4 << 10, 1000}} {
		b.Run(c.name, func(b *testing.B) {
			benchCase(b, e, "files", func(dir string) []benchFile {
				files := make([]benchFile, 0, c.n)
				for i := range c.n {
					rel := fmt.Sprintf("run-%04d/img-%06d.tif", i/c.perRun, i)
					files = append(files, benchWriteFile(b, e, dir, rel, c.size, uint64(i)))
				}
				return files
			})
		})
	}
}

// benchCase generates the files, uploads them with ferry (and rclone, when
// available) b.N times, checks what landed, and reports the figures. unit
// "bytes" reports MB/s, "files" reports files/s (and MB/s).
func benchCase(b *testing.B, e *benchEnv, unit string, gen func(dir string) []benchFile) {
	b.StopTimer()
	src := filepath.Join(b.TempDir(), "incoming")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(src) // disk space: do not wait for the cleanups
	files := gen(src)
	var total int64
	for _, f := range files {
		total += f.size
	}
	b.Cleanup(func() { benchEmptyBucket(b, e) })

	ferry, rclone := benchResult{rssKiB: -1, rchar: -1}, benchResult{rssKiB: -1, rchar: -1}
	base, floor := benchResult{rssKiB: -1, rchar: -1}, benchResult{rssKiB: -1, rchar: -1}
	for i := range b.N {
		if unit == "files" {
			prefix := fmt.Sprintf("floor/%d/", i)
			r := benchRunFloor(b, e, src, prefix, files)
			benchCheckObjects(b, e, prefix, files, true)
			benchEmptyBucket(b, e)
			floor.wall += r.wall
			floor.cpu += r.cpu
		}
		if e.base != "" {
			prefix := fmt.Sprintf("baseline/%d/", i)
			r := benchRunFerryBin(b, e, e.base, false, src, prefix)
			benchCheckObjects(b, e, prefix, files, true)
			benchEmptyBucket(b, e)
			base.wall += r.wall
			base.cpu += r.cpu
			base.rssKiB = max(base.rssKiB, r.rssKiB)
			base.rchar = max(base.rchar, r.rchar)
		}
		prefix := fmt.Sprintf("ferry/%d/", i)
		r := benchRunFerry(b, e, src, prefix)
		benchCheckObjects(b, e, prefix, files, true)
		benchEmptyBucket(b, e)
		ferry.wall += r.wall
		ferry.cpu += r.cpu
		ferry.rssKiB = max(ferry.rssKiB, r.rssKiB)
		ferry.rchar = max(ferry.rchar, r.rchar)

		if e.rclone != "" {
			prefix := fmt.Sprintf("rclone/%d/", i)
			r := benchRunRclone(b, e, src, prefix)
			benchCheckObjects(b, e, prefix, files, false)
			benchEmptyBucket(b, e)
			rclone.wall += r.wall
			rclone.cpu += r.cpu
			rclone.rssKiB = max(rclone.rssKiB, r.rssKiB)
			rclone.rchar = max(rclone.rchar, r.rchar)
		}
	}
	n := time.Duration(b.N)
	ferry.wall /= n
	rclone.wall /= n
	ferry.cpu /= n
	rclone.cpu /= n

	// ferry waits for the settle period before it takes a file; rclone
	// does not wait at all.
	busy := max(ferry.wall-benchSettle, time.Millisecond)
	mbps := float64(total) / 1e6 / busy.Seconds()
	b.ReportMetric(ferry.wall.Seconds(), "wall-s")
	// CPU is what a busy instrument PC pays, and steadier than the wall
	// time on a shared machine.
	b.ReportMetric(ferry.cpu.Seconds(), "cpu-s")
	b.ReportMetric(mbps, "MB/s")
	fps := float64(len(files)) / busy.Seconds()
	if unit == "files" {
		b.ReportMetric(fps, "files/s")
	}
	if ferry.rssKiB >= 0 {
		b.ReportMetric(float64(ferry.rssKiB)/1024, "peakRSS-MiB")
	}
	if ferry.rchar >= 0 {
		b.ReportMetric(float64(ferry.rchar)/float64(total), "read/byte")
	}
	b.Logf("ferry:  %d files, %d bytes in %v (%v after the %v settle): %.1f MB/s, %.1f files/s, peak RSS %s, read %s",
		len(files), total, ferry.wall.Round(time.Millisecond), busy.Round(time.Millisecond), benchSettle, mbps, fps, benchRSS(ferry.rssKiB), benchRead(ferry.rchar, total))

	if e.base != "" {
		base.wall /= n
		base.cpu /= n
		bbusy := max(base.wall-benchSettle, time.Millisecond)
		bmbps := float64(total) / 1e6 / bbusy.Seconds()
		b.Logf("baseline (%s): %v, %.1f MB/s, %.1f files/s, CPU %v, peak RSS %s, read %s; ferry/baseline: throughput x%.2f, CPU x%.2f",
			e.base, base.wall.Round(time.Millisecond), bmbps, float64(len(files))/bbusy.Seconds(), base.cpu.Round(time.Millisecond),
			benchRSS(base.rssKiB), benchRead(base.rchar, total), mbps/bmbps, ferry.cpu.Seconds()/base.cpu.Seconds())
		if base.rchar >= 0 {
			b.ReportMetric(float64(base.rchar)/float64(total), "baseline-read/byte")
		}
	}
	ffps := 0.0
	if unit == "files" {
		floor.wall /= n
		floor.cpu /= n
		ffps = float64(len(files)) / floor.wall.Seconds()
		b.Logf("floor (read, SHA-256 and one PUT a file through ferry's s3sink, %d at once, no journal, in the benchmark's process): %v, %.1f files/s, CPU %v (%.0f µs a file); ferry/floor: files/s x%.2f, CPU x%.2f",
			benchWorkers, floor.wall.Round(time.Millisecond), ffps, floor.cpu.Round(time.Millisecond),
			float64(floor.cpu.Microseconds())/float64(len(files)), fps/ffps, ferry.cpu.Seconds()/floor.cpu.Seconds())
		b.ReportMetric(ffps, "floor-files/s")
		b.ReportMetric(floor.cpu.Seconds(), "floor-cpu-s")
	}
	if e.rclone == "" {
		b.Log("rclone: not found (set FERRY_RCLONE or put it on PATH): comparison skipped")
		return
	}
	rmbps := float64(total) / 1e6 / rclone.wall.Seconds()
	rfps := float64(len(files)) / rclone.wall.Seconds()
	b.ReportMetric(rclone.wall.Seconds(), "rclone-wall-s")
	b.ReportMetric(rclone.cpu.Seconds(), "rclone-cpu-s")
	b.ReportMetric(rmbps, "rclone-MB/s")
	if unit == "files" {
		b.ReportMetric(rfps, "rclone-files/s")
	}
	if rclone.rssKiB >= 0 {
		b.ReportMetric(float64(rclone.rssKiB)/1024, "rclone-peakRSS-MiB")
	}
	if rclone.rchar >= 0 {
		b.ReportMetric(float64(rclone.rchar)/float64(total), "rclone-read/byte")
	}
	b.Logf("rclone: %d files, %d bytes in %v: %.1f MB/s, %.1f files/s, peak RSS %s, read %s",
		len(files), total, rclone.wall.Round(time.Millisecond), rmbps, rfps, benchRSS(rclone.rssKiB), benchRead(rclone.rchar, total))
	ratio := fmt.Sprintf("ferry/rclone: throughput x%.2f", mbps/rmbps)
	if unit == "files" {
		ratio = fmt.Sprintf("ferry/rclone: files/s x%.2f", fps/rfps)
	}
	if rclone.cpu > 0 {
		ratio += fmt.Sprintf(", CPU x%.2f (ferry %v, rclone %v)", ferry.cpu.Seconds()/rclone.cpu.Seconds(),
			ferry.cpu.Round(time.Millisecond), rclone.cpu.Round(time.Millisecond))
	}
	if ferry.rssKiB > 0 && rclone.rssKiB > 0 {
		ratio += fmt.Sprintf(", peak RSS x%.2f", float64(ferry.rssKiB)/float64(rclone.rssKiB))
	}
	b.Log(ratio)
	if unit == "files" {
		b.Logf("floor/rclone: files/s x%.2f, CPU x%.2f (the CPU share of rclone's that ferry's request path alone takes)",
			ffps/rfps, floor.cpu.Seconds()/rclone.cpu.Seconds())
	}
}

// benchRchar returns the bytes this process and its reaped children read
// (rchar of /proc/self/io: every read(2), from the page cache or a disk),
// or -1 where there is no such file.
func benchRchar() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			var n int64
			if _, err := fmt.Sscan(v, &n); err == nil {
				return n
			}
		}
	}
	return -1
}

// benchRead formats the bytes read against the files' total.
func benchRead(rchar, total int64) string {
	if rchar < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f MiB (x%.2f the files)", float64(rchar)/(1<<20), float64(rchar)/float64(total))
}

// benchRSS formats a peak RSS for the log.
func benchRSS(kib int64) string {
	if kib < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

// benchBuild builds the ferry binary once into a temporary folder.
func benchBuild(b testing.TB) string {
	b.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(b.TempDir(), "ferry"+benchExeSuffix)
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// benchFindRclone returns the rclone binary to compare with, or "" (each
// case then logs that the comparison was skipped).
func benchFindRclone(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("FERRY_RCLONE"); p != "" {
		if _, err := os.Stat(p); err != nil {
			b.Fatalf("FERRY_RCLONE=%s: %v", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("rclone"); err == nil {
		return p
	}
	return ""
}

// benchWriteFile writes size bytes under dir/rel: the 1 MiB random block
// repeated, each MiB stamped with id and its index so that no two chunks or
// files are alike. The mtime is set a minute in the past.
func benchWriteFile(b *testing.B, e *benchEnv, dir, rel string, size int64, id uint64) benchFile {
	b.Helper()
	path := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	buf := bytes.Clone(e.block)
	for off, seg := int64(0), uint64(0); off < size; off, seg = off+int64(len(buf)), seg+1 {
		binary.LittleEndian.PutUint64(buf, id<<32|seg)
		n := min(int64(len(buf)), size-off)
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			b.Fatal(err)
		}
		h.Write(buf[:n])
	}
	// Large files: get them to disk now, not during the measurement.
	if size > benchChunk {
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	if err := os.Chtimes(path, past, past); err != nil {
		b.Fatal(err)
	}
	return benchFile{rel: rel, size: size, sha256: hex.EncodeToString(h.Sum(nil))}
}

// benchConfig writes a ferry configuration for src -> the bench bucket
// under prefix, with journal and log in work, and returns its path.
func benchConfig(b *testing.B, e *benchEnv, work, src, prefix string) string {
	b.Helper()
	cfg := fmt.Sprintf(`[journal]
path = %q

[log]
file = %q
level = "info"

[upload]
max_concurrent_uploads = %d
max_chunk_size = "%dMiB"

[target.bench]
type = "s3"
endpoint = %q
bucket = %q
region = %q
access_key_env = %q
secret_key_env = %q
prefix = %q

[[watch]]
path = %q
target = "bench"
settle = %q
`, filepath.Join(work, "ferry.db"), filepath.Join(work, "ferry.log"), benchWorkers, benchChunk>>20,
		e.srv.Endpoint, benchBucket, e.srv.Region, benchAccessEnv, benchSecretEnv, prefix, src, benchSettle.String())
	path := filepath.Join(work, "ferry.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// benchRunFerry runs `ferry run --once` on src with a new journal, timing it
// with the benchmark timer, and fails b unless it exits 0.
func benchRunFerry(b *testing.B, e *benchEnv, src, prefix string) benchResult {
	return benchRunFerryBin(b, e, e.ferry, true, src, prefix)
}

// benchProfile is where ferry writes its CPU profile of a case (the
// FERRY_CPUPROFILE of cmd/ferry/main.go) when FERRY_BENCH_PROFILE names a
// folder: FOLDER/<case>.pprof, e.g. for `go tool pprof -top`.
func benchProfile(b *testing.B) []string {
	dir := os.Getenv("FERRY_BENCH_PROFILE")
	if dir == "" {
		return nil
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(b.Name())
	return []string{"FERRY_CPUPROFILE=" + filepath.Join(dir, name+".pprof")}
}

// benchRunFerryBin runs `bin run --once` on src to the bench bucket under
// prefix; timed runs make the benchmark's ns/op.
func benchRunFerryBin(b *testing.B, e *benchEnv, bin string, timed bool, src, prefix string) benchResult {
	b.Helper()
	work := b.TempDir()
	cfg := benchConfig(b, e, work, src, prefix)
	env := append(os.Environ(), benchAccessEnv+"="+e.srv.AccessKey, benchSecretEnv+"="+e.srv.SecretKey)
	if bin == e.ferry {
		env = append(env, benchProfile(b)...)
	}
	r, out, err := benchExec(b, timed, bin, env, "run", "--once", "--config", cfg)
	if err != nil {
		logTail, _ := os.ReadFile(filepath.Join(work, "ferry.log"))
		if len(logTail) > 8000 {
			logTail = logTail[len(logTail)-8000:]
		}
		b.Fatalf("ferry run --once: %v\n%s\nlog (tail):\n%s", err, out, logTail)
	}
	return r
}

// benchRunRclone runs `rclone copy` of src to the bench bucket under prefix
// with settings that match ferry's: 4 files at a time, 16 MiB parts (files
// up to 16 MiB in one request), one part at a time per file (as ferry).
func benchRunRclone(b *testing.B, e *benchEnv, src, prefix string) benchResult {
	b.Helper()
	work := b.TempDir()
	env := append(os.Environ(),
		"RCLONE_CONFIG="+filepath.Join(work, "rclone.conf"), // does not exist: remotes come from the environment
		"RCLONE_CONFIG_BENCH_TYPE=s3",
		"RCLONE_CONFIG_BENCH_PROVIDER=Other",
		"RCLONE_CONFIG_BENCH_ENDPOINT="+e.srv.Endpoint,
		"RCLONE_CONFIG_BENCH_REGION="+e.srv.Region,
		"RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="+e.srv.AccessKey,
		"RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="+e.srv.SecretKey,
		"RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true",
	)
	dst := "bench:" + benchBucket + "/" + strings.TrimSuffix(prefix, "/")
	r, out, err := benchExec(b, false, e.rclone, env, "copy", src, dst,
		"--transfers", fmt.Sprint(benchWorkers),
		"--s3-chunk-size", fmt.Sprintf("%dM", benchChunk>>20),
		"--s3-upload-cutoff", fmt.Sprintf("%dM", benchChunk>>20),
		"--s3-upload-concurrency", "4", // its default; ferry too sends a file's parts on up to max_concurrent_uploads buffers
		"--s3-no-check-bucket",
		"-q")
	if err != nil {
		b.Fatalf("rclone copy: %v\n%s", err, out)
	}
	return r
}

// benchRunFloor sends the files as ferry's request path alone would:
// each read whole, hashed (SHA-256) and sent with one PutObject through
// ferry's s3sink, benchWorkers at a time, in this process, with no
// journal, watcher or settle. Its CPU is the least ferry's design can
// spend on a file with this SDK, the yardstick for the journal's share.
func benchRunFloor(b *testing.B, e *benchEnv, src, prefix string, files []benchFile) benchResult {
	b.Helper()
	snk, err := s3sink.New(s3sink.Options{Endpoint: e.srv.Endpoint, Region: e.srv.Region, Bucket: benchBucket,
		AccessKey: e.srv.AccessKey, SecretKey: e.srv.SecretKey})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), benchRunLimit)
	defer cancel()
	next := make(chan benchFile)
	errs := make(chan error, benchWorkers)
	var wg sync.WaitGroup
	cpu0, _ := cputime.Self()
	start := time.Now()
	for range benchWorkers {
		wg.Go(func() {
			for f := range next {
				body, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(f.rel)))
				if err == nil {
					err = snk.Put(ctx, prefix+f.rel, body, sha256.Sum256(body), false)
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", f.rel, err)
					cancel()
					return
				}
			}
		})
	}
feed:
	for _, f := range files {
		select {
		case next <- f:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	wall := time.Since(start)
	cpu1, _ := cputime.Self()
	r := benchResult{wall: wall, cpu: cpu1 - cpu0, rssKiB: -1, rchar: -1}
	select {
	case err := <-errs:
		b.Fatalf("floor: %v", err)
	default:
	}
	return r
}

// benchExec runs bin with args and returns its wall time, peak RSS and
// combined output. With timed, the benchmark timer runs meanwhile (ferry's
// runs make ns/op; rclone's do not count).
func benchExec(b *testing.B, timed bool, bin string, env []string, args ...string) (benchResult, []byte, error) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchRunLimit)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdout = &out
	cmd.Stderr = &out
	if timed {
		b.StartTimer()
	}
	start := time.Now()
	rchar0 := benchRchar()
	err := cmd.Run()
	wall := time.Since(start)
	b.StopTimer()
	r := benchResult{wall: wall, rssKiB: -1, rchar: -1}
	if rchar1 := benchRchar(); rchar0 >= 0 && rchar1 >= 0 {
		// A reaped child's I/O counts in its parent's: the difference is
		// the child's reads, plus the little this process read meanwhile.
		r.rchar = rchar1 - rchar0
	}
	if cmd.ProcessState != nil {
		r.rssKiB = benchMaxRSSKiB(cmd.ProcessState)
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return r, out.Bytes(), err
}

// benchCheckObjects checks that every file landed under prefix with its
// size and, with sha, ferry's sha256 metadata.
func benchCheckObjects(b *testing.B, e *benchEnv, prefix string, files []benchFile, sha bool) {
	b.Helper()
	c := e.srv.Client()
	work := make(chan benchFile)
	errs := make(chan error, len(files))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for f := range work {
				key := prefix + f.rel
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(benchBucket), Key: aws.String(key)})
				var got string
				if err == nil && sha {
					got, err = testsrv.ObjectSHA256(ctx, c, benchBucket, key, h.Metadata)
				}
				cancel()
				switch {
				case err != nil:
					errs <- fmt.Errorf("HeadObject %s: %w", key, err)
				case aws.ToInt64(h.ContentLength) != f.size:
					errs <- fmt.Errorf("%s: size %d, want %d", key, aws.ToInt64(h.ContentLength), f.size)
				case sha && got != f.sha256:
					errs <- fmt.Errorf("%s: sha256 (tag, else metadata) %q, want %s", key, got, f.sha256)
				}
			}
		})
	}
	for _, f := range files {
		work <- f
	}
	close(work)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if len(all) > 0 {
		b.Fatalf("%d of %d objects wrong, e.g.: %v", len(all), len(files), errors.Join(all[:min(len(all), 5)]...))
	}
}

// benchEmptyBucket deletes every object in the bench bucket.
func benchEmptyBucket(b *testing.B, e *benchEnv) {
	b.Helper()
	c := e.srv.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for {
		// Deleting changes the listing: always list from the start.
		page, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(benchBucket), MaxKeys: aws.Int32(1000)})
		if err != nil {
			b.Errorf("emptying the bucket: ListObjectsV2: %v", err)
			return
		}
		if len(page.Contents) == 0 {
			return
		}
		ids := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(benchBucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err == nil && len(out.Errors) > 0 {
			err = fmt.Errorf("%d errors, e.g. %s: %s", len(out.Errors), aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
		if err != nil {
			b.Errorf("emptying the bucket: DeleteObjects: %v", err)
			return
		}
	}
}
