package main

// End-to-end tests: the whole CLI (run) in-process against a real versitygw
// on loopback, asserting what landed in the bucket byte for byte, the
// sha256 metadata, exact key sets, no open multipart uploads, and the
// journal's record. Run them with
//
//	go test -race -run E2E ./cmd/ferry/
//
// One versitygw serves every subtest; each subtest has its own bucket and
// temp dir. Outside CI a missing versitygw skips them (see testsrv).

import (
	"encoding/json"
	"fmt"
	"net/http"
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

	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader"
)

func TestE2E(t *testing.T) {
	srv := testsrv.StartS3(t)

	// The daemon tests watch real time (a bursty writer against the settle
	// period, stop timings): they run alone, one after another. The others
	// run in parallel after them.
	t.Run("DaemonRestartReplace", func(t *testing.T) { e2eTestDaemonRestartReplace(t, srv) })
	t.Run("DaemonStopAbandonsStuckPart", func(t *testing.T) { e2eTestDaemonStopMidUpload(t, srv) })
	t.Run("DaemonStopFinishesInFlight", func(t *testing.T) { e2eTestDaemonStopGraceful(t, srv) })

	t.Run("OnceSizes", func(t *testing.T) { t.Parallel(); e2eTestOnceSizes(t, srv) })
	t.Run("Names", func(t *testing.T) { t.Parallel(); e2eTestNames(t, srv) })
	t.Run("UnstorableNames", func(t *testing.T) { t.Parallel(); e2eTestUnstorableNames(t, srv) })
	t.Run("IncludeExclude", func(t *testing.T) { t.Parallel(); e2eTestIncludeExclude(t, srv) })
	t.Run("OwnFilesInWatchedFolder", func(t *testing.T) { t.Parallel(); e2eTestOwnFiles(t, srv) })
	t.Run("SpecialFiles", func(t *testing.T) { t.Parallel(); e2eTestSpecialFiles(t, srv) })
	t.Run("VanishedAfterJournaled", func(t *testing.T) { t.Parallel(); e2eTestVanishedAfterJournaled(t, srv) })
	t.Run("MissingBucket", func(t *testing.T) { t.Parallel(); e2eTestMissingBucket(t, srv) })
	t.Run("ConfigErrors", func(t *testing.T) { t.Parallel(); e2eTestConfigErrors(t, srv) })
	t.Run("ChangedDuringUpload", func(t *testing.T) { t.Parallel(); e2eTestChangedDuringUpload(t, srv) })
	t.Run("CorruptionAndSlowDownRetried", func(t *testing.T) { t.Parallel(); e2eTestCorruptionAndSlowDown(t, srv) })
}

// Case 1: --once uploads files at and around the chunk boundaries.
func e2eTestOnceSizes(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "e2e-sizes", true)
	files := map[string][]byte{
		"empty.bin":          {},
		"one.bin":            e2eData(1, 1),
		"chunk.bin":          e2eData(2, e2eChunk),
		"chunk-plus-one.bin": e2eData(3, e2eChunk+1),
		"multi.bin":          e2eData(4, 3*e2eChunk+12345),
	}
	e2eWriteFiles(t, e.watch, files)
	e.writeConfig(e.config())
	e.mustOnce(len(files), e2eTotal(files))

	e2eAssertBucket(t, srv, e.bucket, e2eKeys(files))
	j := e2eReadJournal(t, e.journal)
	e2eAssertUploaded(t, j, files)
	// A file of at most one chunk goes in one request, hashed in one
	// event (file_hashed whole=true); larger ones in ceil(size/chunk)
	// parts, each hashed and acknowledged.
	for rel, parts := range map[string]int{"empty.bin": 0, "one.bin": 0, "chunk.bin": 0, "chunk-plus-one.bin": 2, "multi.bin": 4} {
		wantMP, wantHashed := 0, 0
		if parts > 0 {
			wantMP, wantHashed = 1, parts
		}
		if got := j.count("file_hashed", rel); got != 1 {
			t.Errorf("%s: %d file_hashed events, want 1", rel, got)
		}
		if got := j.count("multipart_created", rel); got != wantMP {
			t.Errorf("%s: %d multipart uploads, want %d", rel, got, wantMP)
		}
		if got := j.count("chunk_acked", rel); got != parts {
			t.Errorf("%s: %d parts acknowledged, want %d", rel, got, parts)
		}
		if got := j.count("chunk_hashed", rel); got != wantHashed {
			t.Errorf("%s: %d chunks hashed, want %d", rel, got, wantHashed)
		}
		if got := j.count("uploaded", rel); got != 1 {
			t.Errorf("%s: %d uploaded events, want 1", rel, got)
		}
	}
	if t.Failed() {
		t.Logf("journal events:\n%s", j.dump())
	}
}

// Case 2: names with spaces, non-ASCII, deep folders, a 200-byte name and
// characters that need escaping in URLs all land at prefix + relative path.
func e2eTestNames(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "e2e-names", true)
	long := strings.Repeat("n", 196) + ".bin"
	if len(long) != 200 {
		t.Fatalf("long name is %d bytes", len(long))
	}
	names := []string{
		"with space.txt",
		"größe ü.tif",
		"日本語/データ 1.bin",
		"l1/l2/l3/l4/l5/l6/l7/deep.dat",
		long,
		"long/" + long,
		"plus+equals=amp&.txt",
		"percent%41 hash# question?.txt",
		"semi;colon,comma (1) [2] {3} 'q' $d @a !b.txt",
		"tilde~caret^.dat",
	}
	files := map[string][]byte{}
	for i, n := range names {
		files[n] = e2eData(uint64(100+i), 1000+i)
	}
	e2eWriteFiles(t, e.watch, files)
	e.writeConfig(e.config())
	e.mustOnce(len(files), e2eTotal(files))

	e2eAssertBucket(t, srv, e.bucket, e2eKeys(files))
	e2eAssertUploaded(t, e2eReadJournal(t, e.journal), files)
}

// Names S3 cannot store (invalid UTF-8, control characters, a key over
// 1024 bytes) fail those files with the reason, listed by --once (exit 1),
// and hold up nothing else.
func e2eTestUnstorableNames(t *testing.T, srv *testsrv.S3) {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		t.Skip("the filesystem refuses such names")
	}
	e := e2eSetup(t, srv, "e2e-unstorable", true)
	good := map[string][]byte{"ok.bin": e2eData(15, 100)}
	e2eWriteFiles(t, e.watch, good)
	longDir := strings.Repeat(strings.Repeat("d", 200)+"/", 5) // 1005 bytes
	bad := []string{"bad\xffname.bin", "tab\there.txt", longDir + "file-name.bin"}
	if n := len(e2ePrefix + bad[2]); n <= uploader.MaxKeyBytes {
		t.Fatalf("long key is only %d bytes", n)
	}
	for i, rel := range bad {
		e2eWriteFile(t, e.watch, rel, e2eData(uint64(16+i), 10))
	}
	e.writeConfig(e.config())
	code, stdout, stderr := e.runOnce()
	want := fmt.Sprintf("uploaded 1 files (100 bytes)\n%d files not uploaded:\n", len(bad))
	if code != exitFailed || !strings.HasPrefix(stdout, want) {
		t.Fatalf("exit %d, stdout:\n%s\nwant exit 1 and %q\nstderr:\n%s", code, stdout, want, stderr)
	}
	for _, rel := range bad {
		p := filepath.Join(e.watch, filepath.FromSlash(rel))
		if !strings.Contains(stdout, "failed\t"+p+"\t") {
			t.Errorf("%q not listed as failed", rel)
		}
	}
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(good))
	j := e2eReadJournal(t, e.journal)
	for _, rel := range bad {
		f, ok := j.file(rel)
		if !ok || f.State != journal.Failed || f.ErrorClass != uploader.ClassInvalidKey || j.count("claimed", rel) != 0 {
			t.Errorf("journal row %q: %+v (%d uploads started), want failed %s and never sent", rel, f, j.count("claimed", rel), uploader.ClassInvalidKey)
		}
	}
}

// Case 3: excluded files are never uploaded (nor journaled); include globs
// restrict. Two watches in one config, both to the same target.
func e2eTestIncludeExclude(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "e2e-filters", true)
	watchB := filepath.Join(e.dir, "restricted")
	if err := os.MkdirAll(watchB, 0o755); err != nil {
		t.Fatal(err)
	}
	taken := map[string][]byte{}
	put := func(root, rel string, take bool) {
		b := e2eData(uint64(len(rel)*31+len(root)), 100+len(rel))
		e2eWriteFile(t, root, rel, b)
		if take {
			taken[rel] = b
		}
	}
	// Watch A: the example's excludes, everything included.
	for rel, take := range map[string]bool{
		"x.tmp":                  false,
		"sub/y.tmp":              false,
		"~$lock.docx":            false,
		"sub/~$lock.docx":        false,
		".DS_Store":              false,
		"sub/deeper/.DS_Store":   false,
		"keep.tif":               true,
		"sub/keep.csv":           true,
		"~not-a-lock.txt":        true,
		"x.tmp.bak":              true,
		"DS_Store.txt":           true,
		"sub/deeper/.hidden.dat": true,
	} {
		put(e.watch, rel, take)
	}
	// Watch B: only .tif files inside run-* folders.
	for rel, take := range map[string]bool{
		"run-1/a.tif":          true,
		"run-1/deep/er/b.tif":  true,
		"run-2/x.tmp.tif":      true,
		"run-1/c.txt":          false,
		"run-1/~$a.tif":        false,
		"run-1/partial.tmp":    false,
		"other/d.tif":          false,
		"e.tif":                false,
		"run-1/f.tif.tmp":      false,
		"run-1/sub/.DS_Store":  false,
		"run-3/nested/g.TIFF":  false,
		"run-3/nested/h.tiff2": false,
	} {
		put(watchB, rel, take)
	}
	c := e.config()
	c.Watches = append(c.Watches, e2eWatch{Path: watchB, Include: []string{"run-*/**/*.tif"}})
	e.writeConfig(c)
	e.mustOnce(len(taken), e2eTotal(taken))

	e2eAssertBucket(t, srv, e.bucket, e2eKeys(taken))
	e2eAssertUploaded(t, e2eReadJournal(t, e.journal), taken)
}

// A watched folder that holds ferry's journal and log is refused.
func e2eTestOwnFiles(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "e2e-ownfiles", true)
	e.journal = filepath.Join(e.watch, "ferry.db")
	e.logFile = filepath.Join(e.watch, "logs", "ferry.log")
	files := map[string][]byte{"data/a.bin": e2eData(7, 4096), "b.bin": e2eData(8, 10)}
	e2eWriteFiles(t, e.watch, files)
	text := e.writeConfig(e.config())
	// A watched folder that holds ferry's journal or log is refused
	// (issue 11, item 9): ferry would upload its own files as they change.
	code, stdout, stderr := e.runOnce()
	line := e2eLineOf(t, text, "[[watch]]") + 1
	for _, want := range []string{
		fmt.Sprintf("%s:%d: watch[1].path: the watched folder %s holds the journal", e.cfgPath, line, e.watch),
		fmt.Sprintf("%s:%d: watch[1].path: the watched folder %s holds the log", e.cfgPath, line, e.watch),
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code != exitUsage || stdout != "" {
		t.Errorf("exit %d, stdout %q; want exit %d and nothing", code, stdout, exitUsage)
	}
	if _, err := os.Stat(e.journal); err == nil {
		t.Error("a journal was created for a refused configuration")
	}
	e2eAssertBucket(t, srv, e.bucket, map[string][]byte{})
}

// Case 7a: FIFOs and symlinks (dangling or not) are ignored without
// failing or hanging the run; an unreadable file (not when running as root,
// which reads anything) fails the run with exit 1 and is listed.
func e2eTestSpecialFiles(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "e2e-special", true)
	files := map[string][]byte{"good.bin": e2eData(9, 2048), "sub/also-good.bin": e2eData(10, 1)}
	e2eWriteFiles(t, e.watch, files)
	outside := filepath.Join(e.dir, "outside.bin")
	if err := os.WriteFile(outside, []byte("not in the watched folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if err := exec.Command("mkfifo", filepath.Join(e.watch, "pipe.fifo")).Run(); err != nil {
			t.Logf("no FIFO case: mkfifo: %v", err)
		}
	}
	symlinks := 0
	for name, target := range map[string]string{"dangling.lnk": filepath.Join(e.dir, "no-such-file"), "sub/outside.lnk": outside} {
		if err := os.Symlink(target, filepath.Join(e.watch, filepath.FromSlash(name))); err != nil {
			t.Logf("no symlink case %s: %v", name, err)
		} else {
			symlinks++
		}
	}
	unreadable := runtime.GOOS != "windows" && os.Geteuid() != 0
	secret := filepath.Join(e.watch, "secret.bin")
	if unreadable {
		e2eWriteFile(t, e.watch, "secret.bin", []byte("secret"))
		if err := os.Chmod(secret, 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(secret, 0o644) })
	} else {
		t.Log("running as root (or on Windows): the unreadable-file case is skipped")
	}
	e.writeConfig(e.config())
	code, stdout, stderr := e.runOnce()
	wantFirst := fmt.Sprintf("uploaded %d files (%d bytes)\n", len(files), e2eTotal(files))
	if unreadable {
		if code != exitFailed || !strings.HasPrefix(stdout, wantFirst) || !strings.Contains(stdout, "1 files not uploaded") ||
			!strings.Contains(stdout, "failed\t"+secret) || !strings.Contains(stdout, "permission denied") {
			t.Errorf("exit %d, stdout:\n%s\nwant exit 1, %q, secret.bin listed as failed: permission denied\nstderr:\n%s", code, stdout, wantFirst, stderr)
		}
		j := e2eReadJournal(t, e.journal)
		if f, ok := j.file("secret.bin"); !ok || f.State != journal.Failed || f.ErrorClass != uploader.ClassDenied {
			t.Errorf("journal row of secret.bin: %+v, want failed %s", f, uploader.ClassDenied)
		}
	} else if code != exitOK || stdout != wantFirst {
		t.Errorf("exit %d, stdout %q; want 0, %q\nstderr:\n%s\nlog:\n%s", code, stdout, wantFirst, stderr, e.log())
	}
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(files))
	if !unreadable {
		e2eAssertUploaded(t, e2eReadJournal(t, e.journal), files)
	}
}

// Case 7b: a file journaled as settled that is gone by the time it is
// uploaded (ferry stopped after journaling it, and the file was deleted
// meanwhile) is not reported as landed: --once exits 1 and lists it.
func e2eTestVanishedAfterJournaled(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "e2e-vanished", true)
	files := map[string][]byte{"keep.bin": e2eData(11, 777)}
	e2eWriteFiles(t, e.watch, files)
	e2eWriteFile(t, e.watch, "run-9/vanish.bin", e2eData(12, 999))
	e.writeConfig(e.config())

	// Journal vanish.bin the way ferry does when it settles, then delete it.
	p := filepath.Join(e.watch, "run-9", "vanish.bin")
	st, err := srcfile.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(e.journal, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := j.RecordSettled(t.Context(), journal.Settled{
		Watch: e.watch, RelPath: "run-9/vanish.bin", Target: "s3", Key: e2ePrefix + "run-9/vanish.bin", BatchID: "run-9",
		Version: journal.Version{Size: st.Size, MtimeNS: st.ModTime.UnixNano(), FileID: st.ID.String()}, Signal: "quiet",
	})
	if cerr := j.Close(); err != nil || cerr != nil || out != journal.Added {
		t.Fatalf("seeding the journal: %v %v %v", out, err, cerr)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}

	// A file that no longer exists is not a failure: there is nothing
	// left to send. --once lists it and exits 0; the journal says why.
	code, stdout, stderr := e.runOnce()
	wantFirst := fmt.Sprintf("uploaded 1 files (%d bytes)\n", len(files["keep.bin"]))
	if code != exitOK || !strings.HasPrefix(stdout, wantFirst) || !strings.Contains(stdout, "1 files deleted or renamed before they were uploaded:\n") ||
		!strings.Contains(stdout, "vanished\t"+p+"\t") || strings.Contains(stdout, "not uploaded") {
		t.Errorf("exit %d, stdout:\n%s\nwant exit 0, %q and %s listed as vanished\nstderr:\n%s\nlog:\n%s", code, stdout, wantFirst, p, stderr, e.log())
	}
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(files))
	jr := e2eReadJournal(t, e.journal)
	if f, ok := jr.file("run-9/vanish.bin"); !ok || f.State != journal.Vanished || !strings.Contains(f.Error, "no such file") {
		t.Errorf("journal row of vanish.bin: %+v, want vanished with the reason", f)
	}
	// The next run has nothing to say about it.
	if code, stdout, _ := e.runOnce(); code != exitOK || strings.Contains(stdout, "vanish.bin") {
		t.Errorf("the next run: exit %d\n%s", code, stdout)
	}
	if n := jr.count("uploaded", "run-9/vanish.bin"); n != 0 {
		t.Errorf("vanish.bin has %d uploaded events", n)
	}
}

// Case 7c: a target bucket that does not exist fails every file
// permanently (NoSuchBucket, no retries): --once exits 1 and lists them.
func e2eTestMissingBucket(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "e2e-no-such-bucket", false)
	files := map[string][]byte{"small.bin": e2eData(13, 1024), "big/multi.bin": e2eData(14, e2eChunk+1)}
	e2eWriteFiles(t, e.watch, files)
	e.writeConfig(e.config())
	start := time.Now()
	code, stdout, stderr := e.runOnce()
	elapsed := time.Since(start)
	if code != exitFailed || !strings.HasPrefix(stdout, "uploaded 0 files (0 bytes)\n2 files not uploaded:\n") {
		t.Fatalf("exit %d, stdout:\n%s\nwant exit 1 and 2 files not uploaded\nstderr:\n%s\nlog:\n%s", code, stdout, stderr, e.log())
	}
	for rel := range files {
		p := filepath.Join(e.watch, filepath.FromSlash(rel))
		line := ""
		for l := range strings.SplitSeq(stdout, "\n") {
			if strings.Contains(l, "\t"+p+"\t") {
				line = l
			}
		}
		if !strings.HasPrefix(line, "  failed\t") || !strings.Contains(line, "NoSuchBucket") {
			t.Errorf("stdout line for %s = %q, want it listed as failed with NoSuchBucket", rel, line)
		}
	}
	j := e2eReadJournal(t, e.journal)
	for rel := range files {
		f, ok := j.file(rel)
		if !ok || f.State != journal.Failed || f.ErrorClass != uploader.ClassPermanent || f.Attempts != 1 {
			t.Errorf("journal row %s: %+v, want failed %s after 1 attempt", rel, f, uploader.ClassPermanent)
		}
	}
	if n := j.count("uploaded", ""); n != 0 {
		t.Errorf("%d uploaded events, want 0", n)
	}
	// A permanent failure is not retried: with settle 300ms the run takes
	// well under the retry backoffs of a transient one (requeue: 30 s).
	if elapsed > 15*time.Second {
		t.Errorf("the run took %v", elapsed)
	}
	// ferry must not have created the bucket.
	if _, err := srv.Client().HeadBucket(t.Context(), &s3.HeadBucketInput{Bucket: aws.String(e.bucket)}); err == nil {
		t.Errorf("bucket %s exists after the run", e.bucket)
	}
	// Dead letters wait for a person, even across runs.
	if code, stdout, _ := e.runOnce(); code != exitFailed || !strings.Contains(stdout, "2 files not uploaded") {
		t.Fatalf("second run before the fix: exit %d, %q; want the dead letters still listed", code, stdout)
	}
	// A person fixes the cause and retries them.
	srv.CreateBucket(t, e.bucket)
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"dlq", "retry", "--all", "--config", e.cfgPath}, &out, &errb, e.getenv); code != 0 || out.String() != "queued 2 files again\n" {
		t.Fatalf("dlq retry --all: exit %d, %q %q", code, out.String(), errb.String())
	}
	e.mustOnce(len(files), e2eTotal(files))
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(files))
}

// Case 8: configuration errors exit 2, name the file and line, and start
// nothing (no journal, no log file).
func e2eTestConfigErrors(t *testing.T, srv *testsrv.S3) {
	tests := []struct {
		name    string
		edit    func(e *e2eEnv, c *e2eConfig, text string) string // returns the config text
		marker  string                                            // on the line to report
		message string                                            // in the message
	}{
		{
			// A missing one is a state of the watch, not an error
			// (TestWatchFolderGoesAndComesBack); a file is a mistake.
			name: "watch path is a file",
			edit: func(e *e2eEnv, c *e2eConfig, _ string) string {
				c.Watches[0].Path = filepath.Join(e.dir, "a-file-not-a-folder")
				os.WriteFile(c.Watches[0].Path, []byte("x"), 0o644)
				return c.text()
			},
			marker: "a-file-not-a-folder", message: "is not a folder",
		},
		{
			name: "unknown target name",
			edit: func(_ *e2eEnv, _ *e2eConfig, text string) string {
				return strings.Replace(text, `target = "s3"`, `target = "archvie"`, 1)
			},
			marker: `target = "archvie"`, message: `no target named "archvie"`,
		},
		{
			name: "unknown key",
			edit: func(_ *e2eEnv, _ *e2eConfig, text string) string {
				return strings.Replace(text, "max_concurrent_uploads = 4", "max_concurent_uploads = 4", 1)
			},
			marker: "max_concurent_uploads", message: "unknown key",
		},
		{
			name: "unknown key in a watch",
			edit: func(_ *e2eEnv, _ *e2eConfig, text string) string {
				return strings.Replace(text, "recursive = true", "recursive = true\nsetle = \"1s\"", 1)
			},
			marker: "setle", message: "unknown key",
		},
		{
			name: "bad size",
			edit: func(_ *e2eEnv, _ *e2eConfig, text string) string {
				return strings.Replace(text, `max_chunk_size = "5MiB"`, `max_chunk_size = "16XB"`, 1)
			},
			marker: "16XB", message: "16XB",
		},
		{
			name: "bad duration",
			edit: func(_ *e2eEnv, _ *e2eConfig, text string) string {
				return strings.Replace(text, `settle = '300ms'`, `settle = '5 seconds'`, 1)
			},
			marker: "5 seconds", message: "invalid duration",
		},
		{
			name: "TOML syntax error",
			edit: func(_ *e2eEnv, _ *e2eConfig, text string) string {
				return strings.Replace(text, "attempts = 3", "attempts = = 3", 1)
			},
			marker: "attempts = = 3", message: "",
		},
		{
			name: "credential variable not set",
			edit: func(_ *e2eEnv, _ *e2eConfig, text string) string {
				return strings.Replace(text, e2eSecretKeyEnv, "E2E_UNSET_VARIABLE", 1)
			},
			marker: "E2E_UNSET_VARIABLE", message: "E2E_UNSET_VARIABLE is not set",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e2eSetup(t, srv, "unused", false)
			c := e.config()
			text := tt.edit(e, &c, c.text())
			if err := os.WriteFile(e.cfgPath, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := e.runOnce()
			where := fmt.Sprintf("%s:%d:", e.cfgPath, e2eLineOf(t, text, tt.marker))
			if code != exitUsage || stdout != "" || !strings.Contains(stderr, where) || !strings.Contains(stderr, tt.message) {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 2, no stdout, stderr naming %q with %q\nconfig:\n%s", code, stdout, stderr, where, tt.message, text)
			}
			for _, p := range []string{e.journal, e.journal + "-wal", filepath.Dir(e.journal), e.logFile, filepath.Dir(e.logFile)} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s exists: something was started", p)
				}
			}
		})
	}
}

// Cases 4, 5 and 6: the daemon picks up new nested folders, uploads a
// bursty writer's file once in its final form, ignores a temp file renamed
// to its final name and a file that vanished while settling, uploads a
// replaced file again, and stops within 10 s of cancellation. Run --once
// after it: nothing is sent again. Files added and changed while it was
// stopped, and only those, are sent by the next run.
func e2eTestDaemonRestartReplace(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "e2e-daemon", true)
	e.writeConfig(e.config())
	d := e.startDaemon()
	want := map[string][]byte{} // relative path -> expected bytes

	// New nested folders, created after ferry started: mkdir -p, then write.
	nested := map[string][]byte{
		"a/b/c/f1.bin":     e2eData(20, 100<<10),
		"a/b/c/f1b.bin":    e2eData(21, 3),
		"a/b/f2.bin":       e2eData(22, 1024),
		"a/top.bin":        e2eData(23, 4096),
		"x/y/z/w/deep.bin": e2eData(24, e2eChunk+7), // multipart
	}
	for _, dir := range []string{"a/b/c", "x/y/z/w"} {
		if err := os.MkdirAll(filepath.Join(e.watch, filepath.FromSlash(dir)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e2eWriteFiles(t, e.watch, nested)
	for k, v := range nested {
		want[k] = v
	}
	e2eWaitObjects(t, srv, e.bucket, e2eKeys(want), e.log)

	// A bursty writer: 5 appends with pauses well inside the settle period,
	// crossing the chunk boundary, then silence.
	const burstRel = "burst/acq.bin"
	burst := e2eData(25, 5*(e2eChunk/4)+333) // 6.25 MiB: two parts
	burstPath := filepath.Join(e.watch, "burst", "acq.bin")
	if err := os.MkdirAll(filepath.Dir(burstPath), 0o755); err != nil {
		t.Fatal(err)
	}
	var maxGap time.Duration
	last := time.Now()
	for i, n := 0, len(burst)/5; i < 5; i++ {
		chunk := burst[i*n : (i+1)*n]
		if i == 4 {
			chunk = burst[i*n:]
		}
		f, err := os.OpenFile(burstPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		maxGap = max(maxGap, time.Since(last))
		last = time.Now()
		if i < 4 {
			time.Sleep(e2eSettle / 5)
		}
	}
	want[burstRel] = burst

	// An instrument writing a temp file and renaming it when done.
	img := e2eData(26, 64<<10)
	e2eWriteFile(t, e.watch, "run-7/img.tmp", img)
	if err := os.Rename(filepath.Join(e.watch, "run-7", "img.tmp"), filepath.Join(e.watch, "run-7", "img.tif")); err != nil {
		t.Fatal(err)
	}
	want["run-7/img.tif"] = img
	// A file that vanishes while it settles.
	e2eWriteFile(t, e.watch, "run-7/gone.bin", e2eData(27, 10))
	time.Sleep(e2eSettle / 10)
	if err := os.Remove(filepath.Join(e.watch, "run-7", "gone.bin")); err != nil {
		t.Fatal(err)
	}
	// Written after gone.bin was deleted: once it has landed, gone.bin's
	// settle period has long passed too.
	marker := e2eData(28, 5)
	e2eWriteFile(t, e.watch, "run-7/marker.bin", marker)
	want["run-7/marker.bin"] = marker
	e2eWaitObjects(t, srv, e.bucket, e2eKeys(want), e.log)

	// Case 6: replaced after upload: deleted and recreated (new size), and
	// rewritten in place (same size, new bytes).
	if err := os.Remove(filepath.Join(e.watch, "a", "b", "c", "f1.bin")); err != nil {
		t.Fatal(err)
	}
	want["a/b/c/f1.bin"] = e2eData(29, 90<<10)
	want["a/top.bin"] = e2eData(30, 4096)
	e2eWriteFile(t, e.watch, "a/b/c/f1.bin", want["a/b/c/f1.bin"])
	e2eWriteFile(t, e.watch, "a/top.bin", want["a/top.bin"])
	e2eWaitObjects(t, srv, e.bucket, e2eKeys(want), e.log)

	code, took := d.stop(t)
	if code != exitOK || took >= 10*time.Second {
		t.Errorf("stopping: exit %d after %v, want 0 within 10 s\nstderr:\n%s", code, took, d.stderr.String())
	}
	if d.stdout.Len() != 0 {
		t.Errorf("daemon stdout: %q", d.stdout.String())
	}
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(want))
	j := e2eReadJournal(t, e.journal)
	e2eAssertUploaded(t, j, want)
	uploads := map[string]int{"a/b/c/f1.bin": 2, "a/top.bin": 2}
	for rel := range want {
		n, ok := uploads[rel]
		if !ok {
			n = 1
		}
		if got := j.count("uploaded", rel); got != n {
			t.Errorf("%s: %d uploaded events, want %d", rel, got, n)
		}
	}
	// The bursty file settled once, in its final form, and was sent once.
	if maxGap < e2eSettle {
		for _, kind := range []string{"settled", "claimed", "uploaded"} {
			if got := j.count(kind, burstRel); got != 1 {
				t.Errorf("%s: %d %s events, want 1 (the longest pause between bursts was %v)", burstRel, got, kind, maxGap)
			}
		}
	} else {
		t.Logf("the writer was starved (a pause of %v, settle %v): not checking that the bursty file settled once", maxGap, e2eSettle)
	}
	for _, rel := range []string{"run-7/gone.bin", "run-7/img.tmp"} {
		if _, ok := j.file(rel); ok || j.count("settled", rel) != 0 {
			t.Errorf("%s was journaled", rel)
		}
	}
	if t.Failed() {
		t.Logf("journal events:\n%s\nlog:\n%s", j.dump(), e.log())
		return
	}

	// Case 5: a restart with no changes sends nothing and journals nothing.
	keys := e2eSortedKeys(e2eKeys(want))
	objects := e2eList(t, srv, e.bucket)
	mtimes := e2eBackendMtimes(t, srv, e.bucket, keys)
	e.mustOnce(0, 0)
	j2 := e2eReadJournal(t, e.journal)
	if len(j2.events) != len(j.events) {
		t.Errorf("a run with nothing to do added events:\n%s", e2eJournal{events: j2.events[len(j.events):]}.dump())
	}
	e2eAssertUnchanged(t, srv, e.bucket, keys, objects, mtimes)

	// Files added and changed while ferry was stopped, and only those.
	changed := map[string][]byte{
		"new/n1.bin":   e2eData(31, 12345),
		"a/b/c/n2.bin": e2eData(32, e2eChunk+1),
		"a/b/f2.bin":   e2eData(33, len(want["a/b/f2.bin"])), // same size, new bytes
	}
	e2eWriteFiles(t, e.watch, changed)
	e.mustOnce(len(changed), e2eTotal(changed))
	for k, v := range changed {
		want[k] = v
	}
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(want))
	j3 := e2eReadJournal(t, e.journal)
	e2eAssertUploaded(t, j3, want)
	sent := map[string]int{}
	for _, ev := range j3.events[len(j2.events):] {
		if ev.Kind == "claimed" {
			sent[ev.RelPath]++
		}
	}
	if len(sent) != len(changed) {
		t.Errorf("uploads started by the last run: %v, want one each of %q", sent, e2eSortedKeys(changed))
	}
	for rel := range changed {
		if sent[rel] != 1 {
			t.Errorf("%s: %d uploads started by the last run, want 1", rel, sent[rel])
		}
	}
	var untouched []string
	for _, k := range keys {
		if _, ok := changed[strings.TrimPrefix(k, e2ePrefix)]; !ok {
			untouched = append(untouched, k)
		}
	}
	e2eAssertUnchanged(t, srv, e.bucket, untouched, objects, mtimes)
}

// e2eAssertUnchanged checks that the objects under keys were not written
// again: same LastModified, same backend file mtime (nanoseconds).
func e2eAssertUnchanged(t *testing.T, srv *testsrv.S3, bucket string, keys []string, before map[string]e2eObject, mtimes map[string]time.Time) {
	t.Helper()
	after := e2eList(t, srv, bucket)
	now := e2eBackendMtimes(t, srv, bucket, keys)
	for _, k := range keys {
		if !after[k].LastModified.Equal(before[k].LastModified) {
			t.Errorf("%s: LastModified %v, was %v", k, after[k].LastModified, before[k].LastModified)
		}
		if !now[k].Equal(mtimes[k]) {
			t.Errorf("%s: written again (backend mtime %v, was %v)", k, now[k], mtimes[k])
		}
	}
}

// Stopping while a multipart part is in flight and never answered (a proxy
// holds it, so the timing is certain): run abandons it after its grace
// period and returns 0 within 10 s; the file stays queued in the journal
// with its upload, and the next run sends it, aborting the abandoned upload
// (none is left open).
func e2eTestDaemonStopMidUpload(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "e2e-stop-mid-upload", true)
	held := make(chan struct{})    // closed when part 2 arrived at the proxy
	release := make(chan struct{}) // closed to let requests through again
	var once sync.Once
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || r.URL.Query().Get("partNumber") != "2" {
			return false
		}
		select {
		case <-release:
			return false
		default:
		}
		once.Do(func() { close(held) })
		select {
		case <-release:
			return false
		case <-r.Context().Done(): // ferry gave up the request
			return true
		}
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	files := map[string][]byte{"run-1/big.bin": e2eData(40, 2*e2eChunk+1), "run-1/small.bin": e2eData(41, 10)}
	e2eWriteFiles(t, e.watch, files)
	c := e.config()
	c.Endpoint = endpoint
	e.writeConfig(c)

	d := e.startDaemon()
	select {
	case <-held:
	case <-time.After(e2eWait):
		t.Fatalf("part 2 of big.bin never reached the proxy\nlog:\n%s", e.log())
	}
	code, took := d.stop(t)
	if code != exitOK || took >= 10*time.Second {
		t.Errorf("stopping mid-upload: exit %d after %v, want 0 within 10 s\nstderr:\n%s", code, took, d.stderr.String())
	}
	j := e2eReadJournal(t, e.journal)
	if f, ok := j.file("run-1/big.bin"); !ok || f.State != journal.Queued {
		t.Errorf("journal row of big.bin after the stop: %+v, want queued", f)
	}
	if n := j.count("released", "run-1/big.bin"); n != 1 {
		t.Errorf("big.bin: %d released events, want 1\n%s", n, j.dump())
	}
	if n := j.count("uploaded", "run-1/big.bin"); n != 0 {
		t.Errorf("big.bin: %d uploaded events before it was sent", n)
	}
	if sha, _, ok := e2eHead(t, srv, e.bucket, e2ePrefix+"run-1/big.bin"); ok {
		t.Errorf("big.bin landed (sha256 %s) although part 2 never reached the server", sha)
	}

	close(release)
	// small.bin went first unless it was still queued at the stop.
	n, rest := 1, int64(len(files["run-1/big.bin"]))
	if j.count("uploaded", "run-1/small.bin") == 0 {
		n, rest = 2, rest+int64(len(files["run-1/small.bin"]))
	}
	e.mustOnce(n, rest)
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(files))
	j2 := e2eReadJournal(t, e.journal)
	e2eAssertUploaded(t, j2, files)
	if t.Failed() {
		t.Logf("journal events:\n%s\nlog:\n%s", j2.dump(), e.log())
	}
}

// Bytes damaged in transit are refused by the server (ferry sends every
// request's SHA-256) and sent again; 503 SlowDown is retried. Each request
// here is damaged on its first try and refused with 503 on its second:
// with attempts = 3 every file still lands intact in one file attempt.
func e2eTestCorruptionAndSlowDown(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "e2e-corrupt", true)
	var mu sync.Mutex
	tries := map[string]int{}
	var damaged, refused int
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || strings.Contains(r.URL.Path, daemon.CheckpointDir) {
			return false
		}
		id := r.URL.Path + "?part=" + r.URL.Query().Get("partNumber")
		mu.Lock()
		tries[id]++
		n := tries[id]
		if n <= 2 {
			damaged += 2 - n
			refused += n - 1
		}
		mu.Unlock()
		switch n {
		case 1:
			r.Body = &e2eFlipReader{r: r.Body, at: r.ContentLength / 2}
			return false
		case 2:
			e2eSlowDown(w, r)
			return true
		}
		return false
	})
	files := map[string][]byte{"small.bin": e2eData(50, 4096), "big.bin": e2eData(51, 2*e2eChunk+5)}
	e2eWriteFiles(t, e.watch, files)
	c := e.config()
	// Every request fails twice before it succeeds: a network where the
	// breaker is expected to trip. This test is about the retries, so the
	// breaker is set not to.
	c.BreakerThreshold = 1000
	c.Endpoint = endpoint
	e.writeConfig(c)
	e.mustOnce(len(files), e2eTotal(files))

	e2eAssertBucket(t, srv, e.bucket, e2eKeys(files))
	j := e2eReadJournal(t, e.journal)
	e2eAssertUploaded(t, j, files)
	for rel := range files {
		if f, _ := j.file(rel); f.Attempts != 1 {
			t.Errorf("%s: %d file attempts, want 1 (the retries are per request)", rel, f.Attempts)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// small.bin: 1 Put; big.bin: 3 UploadParts and the PutObjectTagging
	// that stores its sha256 (its tagging document damaged too).
	if damaged != 5 || refused != 5 || len(tries) != 5 {
		t.Errorf("proxy saw %v (damaged %d, refused %d), want 5 requests each damaged once and refused once", tries, damaged, refused)
	}
	// Retries are logged once per change of state, not each: every
	// failing spell ends with a recovery line that counts its failures.
	failures := 0
	for _, l := range strings.Split(e.log(), "\n") {
		var m struct {
			Msg      string `json:"msg"`
			Failures int    `json:"failures"`
		}
		if json.Unmarshal([]byte(l), &m) == nil && m.Msg == "requests to the target succeed again" {
			failures += m.Failures
		}
	}
	if failures != 10 {
		t.Errorf("the recovery lines count %d failed requests, want 10\n%s", failures, e.log())
	}
	if n := strings.Count(e.log(), `"level":"WARN","msg":"request`); n > 10 {
		t.Errorf("%d warnings for 10 failed requests\n%s", n, e.log())
	}
}

// A stop lets the uploads in flight finish and starts no new one: with all
// 4 workers busy (part 2 of each file held by a proxy until 500 ms after
// the stop began) and a fifth file queued, the four land intact, the fifth
// is not started, run returns 0 within 10 s, and the next run sends the
// fifth.
func e2eTestDaemonStopGraceful(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "e2e-stop-graceful", true)
	const workers = 4 // max_concurrent_uploads in every test config
	release := make(chan struct{})
	allHeld := make(chan struct{})
	var mu sync.Mutex
	held := 0
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || r.URL.Query().Get("partNumber") != "2" {
			return false
		}
		mu.Lock()
		held++
		if held == workers {
			close(allHeld)
		}
		mu.Unlock()
		select {
		case <-release:
			return false
		case <-r.Context().Done():
			return true
		}
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	files := map[string][]byte{}
	for i := range workers + 1 {
		files[fmt.Sprintf("g/%d.bin", i)] = e2eData(uint64(60+i), e2eChunk+1+i)
	}
	e2eWriteFiles(t, e.watch, files)
	c := e.config()
	c.Endpoint = endpoint
	e.writeConfig(c)

	d := e.startDaemon()
	select {
	case <-allHeld:
	case <-time.After(e2eWait):
		t.Fatalf("the %d uploads never reached part 2\nlog:\n%s", workers, e.log())
	}
	start := time.Now()
	d.cancel()
	time.Sleep(500 * time.Millisecond)
	close(release)
	code, took := d.wait(t, start)
	if code != exitOK || took < 500*time.Millisecond || took >= 10*time.Second {
		t.Errorf("graceful stop: exit %d after %v, want 0 after the in-flight parts were let through (500 ms) and within 10 s\nstderr:\n%s", code, took, d.stderr.String())
	}
	j := e2eReadJournal(t, e.journal)
	landed := map[string][]byte{}
	var queued []string
	for rel, b := range files {
		switch f, _ := j.file(rel); {
		case j.count("uploaded", rel) == 1 && f.State == journal.Uploaded:
			landed[rel] = b
		case j.count("chunk_hashed", rel) == 0 && f.State == journal.Queued:
			// Possibly claimed ahead of the workers, then released unread.
			queued = append(queued, rel)
		default:
			t.Errorf("%s: state %s, %d chunks hashed, %d uploaded: want either uploaded, or queued and never read", rel, f.State, j.count("chunk_hashed", rel), j.count("uploaded", rel))
		}
	}
	if len(landed) != workers || len(queued) != 1 {
		t.Fatalf("after the stop: %d files uploaded, %q queued; want %d uploaded and 1 queued\n%s", len(landed), queued, workers, j.dump())
	}
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(landed))

	e.mustOnce(1, int64(len(files[queued[0]])))
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(files))
	e2eAssertUploaded(t, e2eReadJournal(t, e.journal), files)
}

// A file appended to while its multipart upload is in flight (part 2 held
// by a proxy until the append is done) is never completed in its old form:
// the upload is aborted, and the new version lands once, intact.
func e2eTestChangedDuringUpload(t *testing.T, srv *testsrv.S3) {
	e := e2eSetup(t, srv, "e2e-changed-mid-upload", true)
	held := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	endpoint := e2eStartProxy(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || r.URL.Query().Get("partNumber") != "2" {
			return false
		}
		first := false
		once.Do(func() { first = true; close(held) })
		if !first {
			return false
		}
		select {
		case <-release:
			return false
		case <-r.Context().Done():
			return true
		}
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	const rel = "run-1/growing.bin"
	v1 := e2eData(70, e2eChunk+100)
	e2eWriteFile(t, e.watch, rel, v1)
	c := e.config()
	c.Endpoint = endpoint
	e.writeConfig(c)
	d := e.startDaemon()
	select {
	case <-held:
	case <-time.After(e2eWait):
		t.Fatalf("part 2 never reached the proxy\nlog:\n%s", e.log())
	}
	extra := e2eData(71, 5000)
	f, err := os.OpenFile(filepath.Join(e.watch, filepath.FromSlash(rel)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(extra); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)
	v2 := append(append([]byte(nil), v1...), extra...)
	want := map[string][]byte{rel: v2}
	e2eWaitObjects(t, srv, e.bucket, e2eKeys(want), e.log)
	if code, took := d.stop(t); code != exitOK || took >= 10*time.Second {
		t.Errorf("stop: exit %d after %v", code, took)
	}
	e2eAssertBucket(t, srv, e.bucket, e2eKeys(want))
	j := e2eReadJournal(t, e.journal)
	e2eAssertUploaded(t, j, want)
	if n := j.count("uploaded", rel); n != 1 {
		t.Errorf("%d uploaded events, want 1 (the new version only)\n%s", n, j.dump())
	}
	if n := j.count("source_changed", rel) + j.count("superseded", rel); n != 1 {
		t.Errorf("%d source_changed/superseded events, want 1\n%s", n, j.dump())
	}
}
