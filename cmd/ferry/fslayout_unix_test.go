//go:build unix

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/uploader/sink/fssink"
)

func sumHex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// read is the content of a file under the test's folder ("" when missing).
func (e *rootEnv) read(rel string) string {
	b, _ := os.ReadFile(e.path(rel))
	return string(b)
}

func (e *rootEnv) mustFerry(want int, args ...string) string {
	e.t.Helper()
	code, out := e.ferry(args...)
	if code != want {
		e.t.Fatalf("ferry %s: exit %d, want %d\n%s\nlog:\n%s", strings.Join(args, " "), code, want, out, e.log())
	}
	return out
}

// ferryTemps lists the files named like ferry's temporary files anywhere
// in the archive.
func (e *rootEnv) ferryTemps() []string {
	var left []string
	filepath.WalkDir(e.path("archive"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), fssink.TempPrefix) {
			left = append(left, p)
		}
		return nil
	})
	return left
}

// TestFSSourceNamesNeverMeetFerrysFiles (issue 11 item 7), with the real
// binary: a source X.sha256 beside X lands intact beside it (ferry's hash
// of X is under _ferry/fs/sha256/), a source path under _ferry/ is refused
// as that file's dead letter with the reason, verify --against-target
// stays good, and journal rebuild from the new layout finds everything.
func TestFSSourceNamesNeverMeetFerrysFiles(t *testing.T) {
	e := newRootEnv(t, "in")
	// file_mode (issue 11 item 11): every file the target writes, objects
	// and ferry's own, gets it, whatever the umask.
	cfg, _ := os.ReadFile(e.cfg)
	os.WriteFile(e.cfg, []byte(strings.Replace(string(cfg), "path = \"archive\"\n", "path = \"archive\"\nfile_mode = \"0640\"\n", 1)), 0o644)
	e.write("in/run1/X", "the frame\n")
	e.write("in/run1/X.sha256", "the instrument's own checksum line\n")
	e.write("in/run1/notes.txt", "notes\n")
	fake := "_ferry/checkpoints/evil/00000000000000000001-00000000000000000001.json"
	e.write("in/"+fake, `{"format":"not ferry's"}`)
	out := e.mustFerry(exitFailed, "run", "--once", "--config", e.cfg)
	if !strings.Contains(out, "uploaded 3 files") {
		t.Fatalf("run --once: %s", out)
	}
	if got := e.read("archive/run1/X"); got != "the frame\n" {
		t.Errorf("X holds %q", got)
	}
	if got := e.read("archive/run1/X.sha256"); got != "the instrument's own checksum line\n" {
		t.Errorf("the source's X.sha256 holds %q: overwritten", got)
	}
	if got, want := e.read("archive/"+fssink.SumsDir+"/run1/X"), sumHex("the frame\n")+"  run1/X\n"; got != want {
		t.Errorf("ferry's sidecar of X: %q, want %q", got, want)
	}
	for _, rel := range []string{"run1/X", "run1/X.sha256", fssink.SumsDir + "/run1/X", fssink.LayoutFile} {
		if fi, err := os.Stat(e.path("archive/" + rel)); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: %v, %v; want mode 0640 (file_mode)", rel, fi.Mode(), err)
		}
	}
	if _, err := os.Stat(e.path("archive/_ferry/checkpoints/evil")); !os.IsNotExist(err) {
		t.Errorf("the source path under _ferry/ reached the archive: %v", err)
	}
	dlq := e.mustFerry(0, "dlq", "list", "--config", e.cfg)
	if !strings.Contains(dlq, fake) || !strings.Contains(dlq, "where ferry keeps its own files") {
		t.Errorf("dlq list does not show the refused file with its reason:\n%s", dlq)
	}
	e.mustFerry(0, "journal", "verify", "--against-target", "--config", e.cfg)

	// The journal is lost: rebuilt from the new layout's sidecars.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(e.path("state/ferry.db" + suffix))
	}
	out = e.mustFerry(0, "journal", "rebuild", "--config", e.cfg)
	if !strings.Contains(out, "3 already on their target") {
		t.Errorf("journal rebuild: %s", out)
	}
	if out := e.mustFerry(exitFailed, "run", "--once", "--config", e.cfg); !strings.Contains(out, "uploaded 0 files") {
		t.Errorf("run after the rebuild sent again: %s", out)
	}
}

// TestFSMigrationOfAnOldArchive (issue 11 item 7), with the real binary: an
// archive an earlier ferry wrote (sidecars KEY.sha256 beside the objects, a
// temporary file a kill left beside them) is moved to the new layout at
// start: the sidecars the journal proves are ferry's move under
// _ferry/fs/sha256/, the temporary file goes, a source's file stays.
func TestFSMigrationOfAnOldArchive(t *testing.T) {
	e := newRootEnv(t, "in")
	files := map[string]string{"run1/a.raw": "aaa", "run1/b.raw": "bbb", "run1/c.raw": "ccc", "run1/c.raw.sha256": "mine\n"}
	for rel, data := range files {
		e.write("in/"+rel, data)
	}
	e.mustFerry(0, "run", "--once", "--config", e.cfg)
	// Make it layout 1, as an earlier ferry left it (c.raw's sidecar would
	// have taken the source's name: it stays in the new place here).
	for _, rel := range []string{"run1/a.raw", "run1/b.raw"} {
		if err := os.Remove(e.path("archive/" + fssink.SumsDir + "/" + rel)); err != nil {
			t.Fatal(err)
		}
		e.write("archive/"+rel+".sha256", sumHex(files[rel])+"  "+filepath.Base(rel)+"\n")
	}
	os.Remove(e.path("archive/" + fssink.LayoutFile))
	e.write("archive/run1/.ferry-tmp-2718281828", "half a put")

	p := e.start()
	// This start's line: the first run (a new archive) logged one too.
	migration := func() string {
		log := e.log()
		log = log[strings.LastIndex(log, `"msg":"ferry started"`)+1:]
		if i := strings.Index(log, `"msg":"fs target moved to the current layout`); i >= 0 {
			return log[i:]
		}
		return ""
	}
	testsrv.Eventually(t, e2eWait, "the migration", func() (bool, string) {
		return migration() != "", e.log()
	})
	log, _, _ := strings.Cut(migration(), "\n")
	if !strings.Contains(log, `"sidecars_moved":2`) || !strings.Contains(log, `"temp_files_removed":1`) || !strings.Contains(log, `"sidecars_kept":0`) {
		t.Errorf("migration counts:\n%s", log)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, rel := range []string{"run1/a.raw", "run1/b.raw"} {
		if got, want := e.read("archive/"+fssink.SumsDir+"/"+rel), sumHex(files[rel])+"  "+rel+"\n"; got != want {
			t.Errorf("%s: sidecar %q, want %q", rel, got, want)
		}
		if _, err := os.Stat(e.path("archive/" + rel + ".sha256")); !os.IsNotExist(err) {
			t.Errorf("%s.sha256 is still beside it", rel)
		}
	}
	for rel, data := range files {
		if got := e.read("archive/" + rel); got != data {
			t.Errorf("%s holds %q, want %q", rel, got, data)
		}
	}
	if left := e.ferryTemps(); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
	if e.read("archive/"+fssink.LayoutFile) != fssink.Layout+"\n" {
		t.Error("the archive is not marked as migrated")
	}
	e.mustFerry(0, "journal", "verify", "--against-target", "--config", e.cfg)
}

// TestFSKillDuringPutsLeavesNothing (issue 11 item 11), with the real
// binary: ferry killed (SIGKILL) while it puts files into an fs target
// leaves its temporary files only in its own folder, and the next start
// removes them, saying how many, before it puts anything; every file lands.
// Whether the kill catches a put in the act is chance, so one more
// leftover, as a kill leaves it, is put there too.
func TestFSKillDuringPutsLeavesNothing(t *testing.T) {
	e := newRootEnv(t, "in")
	want := map[string]string{}
	for i := range 200 {
		rel := fmt.Sprintf("run1/f%03d.raw", i)
		want[rel] = strings.Repeat(fmt.Sprintf("%03d", i), 40000)
		e.write("in/"+rel, want[rel])
	}
	p := e.start()
	testsrv.Eventually(t, e2eWait, "some files to land", func() (bool, string) {
		ents, _ := os.ReadDir(e.path("archive/run1"))
		return len(ents) >= 5, e.log()
	})
	p.cmd.Process.Kill()
	<-p.exited
	hosts, _ := filepath.Glob(e.path("archive/" + fssink.TempDir + "/*"))
	if len(hosts) != 1 {
		t.Fatalf("folders of temporary files: %q", hosts)
	}
	e.write(strings.TrimPrefix(hosts[0], e.dir+"/")+"/"+fssink.TempPrefix+"31415926", "half a put")
	n := len(e.ferryTemps())
	// And multipart uploads staged and never journaled (a kill between
	// creating one and journaling its ID): this host's goes at the start,
	// another host's waits for orphan_upload_ttl.
	stage := func(id, host string) string {
		dir := "archive/" + fssink.UploadsDir + "/" + id
		e.write(dir+"/meta", fmt.Sprintf("key=%q\nsize=10\nsha256=%s\nhost=%s\n", "run1/big.raw", sumHex("0123456789"), host))
		e.write(dir+"/data", "01234")
		past := time.Now().Add(-time.Minute)
		os.Chtimes(e.path(dir), past, past)
		return e.path(dir)
	}
	mine := stage("0123456789abcdef0123456789abcdef", filepath.Base(hosts[0]))
	theirs := stage("fedcba9876543210fedcba9876543210", "another-host")

	out := e.mustFerry(0, "run", "--once", "--config", e.cfg)
	if !strings.Contains(out, "files") {
		t.Fatalf("run --once: %s", out)
	}
	if !strings.Contains(e.log(), fmt.Sprintf(`"msg":"removed temporary files an interrupted run left in the fs target","target":"nas","files":%d`, n)) {
		t.Errorf("no log line counting the %d temporary files removed:\n%s", n, e.log())
	}
	if left := e.ferryTemps(); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
	if _, err := os.Stat(mine); !os.IsNotExist(err) {
		t.Errorf("the upload an earlier run of this host staged is still there: %v", err)
	}
	if _, err := os.Stat(theirs); err != nil {
		t.Errorf("another host's staged upload was touched before orphan_upload_ttl: %v", err)
	}
	if !strings.Contains(e.log(), `"msg":"aborted orphaned multipart uploads","target":"nas","uploads":1`) {
		t.Errorf("no log line counting the aborted upload:\n%s", e.log())
	}
	for rel, data := range want {
		if got := e.read("archive/" + rel); got != data {
			t.Fatalf("%s: %d bytes, want %d", rel, len(got), len(data))
		}
	}
}

// TestFIFOInPlaceOfAQueuedFile (issue 11 item 4), with the real binary: a
// file queued behind a slow upload is replaced by a FIFO (nobody writes to
// it) while ferry runs. Opening it does not block: the other files land,
// the FIFO's version is recorded with its reason, and SIGTERM stops ferry
// within the documented 10 s.
func TestFIFOInPlaceOfAQueuedFile(t *testing.T) {
	e := newRootEnv(t, "in")
	f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// One upload at a time, slowly: the later files wait in the queue.
	fmt.Fprintf(f, "[upload]\nmax_concurrent_uploads = 1\nmax_bandwidth = \"1MiB/s\"\n")
	f.Close()
	big := strings.Repeat("b", 6<<20) // 6 s at 1 MiB/s: the window to swap in the FIFO
	e.write("in/run1/a-big.raw", big)
	p := e.start()
	testsrv.Eventually(t, e2eWait, "the big file's upload to begin", func() (bool, string) {
		st, err := e.status()
		return err == nil && st.Queue == 1 && st.QueueBytes == int64(len(big)), fmt.Sprint(st, err)
	})
	// Behind it, in the queue: small files, and the one to become a FIFO
	// (last, so that no worker has claimed it when it is swapped).
	small := map[string]string{}
	for i := range 4 {
		rel := fmt.Sprintf("run1/q%d.raw", i)
		small[rel] = fmt.Sprintf("small file %d\n", i)
		e.write("in/"+rel, small[rel])
	}
	testsrv.Eventually(t, e2eWait, "the small files to be queued", func() (bool, string) {
		st, err := e.status()
		return err == nil && st.Queue == 5, fmt.Sprint(st, err)
	})
	e.write("in/run1/z-frame.raw", "a frame")
	testsrv.Eventually(t, e2eWait, "the frame to be queued", func() (bool, string) {
		st, err := e.status()
		return err == nil && st.Queue == 6, fmt.Sprint(st, err)
	})
	fifo := e.path("in/run1/z-frame.raw")
	os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitUploaded("run1/a-big.raw", big)
	for rel, data := range small {
		e.waitUploaded(rel, data)
	}
	testsrv.Eventually(t, e2eWait, "the FIFO's version to be recorded", func() (bool, string) {
		st, err := e.status()
		return err == nil && st.Queue == 0, fmt.Sprint(st, err)
	})
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("ferry did not stop within 10 s of SIGTERM\n%s", e.log())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d after SIGTERM (%v)", code, time.Since(start))
	}
	if _, err := os.Stat(e.path("archive/run1/z-frame.raw")); !os.IsNotExist(err) {
		t.Errorf("something was stored for the FIFO: %v", err)
	}
	log := e.log()
	if !strings.Contains(log, `"path":"run1/z-frame.raw"`) || !strings.Contains(log, "not a regular file") {
		t.Errorf("the FIFO's version has no reason in the log:\n%s", log)
	}
}
