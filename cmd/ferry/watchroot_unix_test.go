//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/internal/testsrv"
)

// rootEnv is a world for the real binary: a folder holding the watches,
// an fs target (archive), the journal and log, and the metrics address.
type rootEnv struct {
	t      *testing.T
	bin    string
	dir    string
	cfg    string
	listen string
	logf   string
}

func newRootEnv(t *testing.T, watches ...string) *rootEnv {
	t.Helper()
	e := &rootEnv{t: t, bin: benchBuild(t), dir: t.TempDir(), listen: testsrv.FreeAddr(t)}
	e.logf = filepath.Join(e.dir, "logs", "ferry.log")
	var b strings.Builder
	fmt.Fprintf(&b, "[journal]\npath = \"state/ferry.db\"\n[log]\nfile = \"logs/ferry.log\"\n[metrics]\nlisten = %q\n[target.nas]\ntype = \"fs\"\npath = \"archive\"\n", e.listen)
	for _, w := range watches {
		fmt.Fprintf(&b, "[[watch]]\npath = %q\ntarget = \"nas\"\nsettle = \"200ms\"\n", w)
	}
	e.cfg = filepath.Join(e.dir, "ferry.toml")
	if err := os.WriteFile(e.cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *rootEnv) path(rel string) string { return filepath.Join(e.dir, filepath.FromSlash(rel)) }

func (e *rootEnv) log() string {
	b, _ := os.ReadFile(e.logf)
	return string(b)
}

func (e *rootEnv) write(rel, data string) {
	e.t.Helper()
	p := e.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// rootProc is a running ferry: exited is closed once it has ended.
type rootProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// stop sends SIGTERM and returns the exit code.
func (p *rootProc) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("ferry did not stop within 15 s of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

// start runs `ferry run` and waits for /status to answer.
func (e *rootEnv) start() *rootProc {
	e.t.Helper()
	cmd := exec.Command(e.bin, "run", "--config", e.cfg)
	stderr, err := os.Create(e.path("stderr"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { stderr.Close() })
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	testsrv.Eventually(e.t, e2eWait, "/status to answer", func() (bool, string) {
		select {
		case <-exited:
			e.t.Fatalf("ferry exited: %v\n%s", cmd.ProcessState, e.log())
		default:
		}
		_, err := e.status()
		return err == nil, fmt.Sprint(err)
	})
	return &rootProc{cmd: cmd, exited: exited}
}

func (e *rootEnv) status() (daemon.Status, error) {
	var st daemon.Status
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + e.listen + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (e *rootEnv) metrics() string {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + e.listen + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// watchState is the /status watch_states entry of path.
func (e *rootEnv) watchState(path string) (daemon.WatchState, string) {
	st, err := e.status()
	if err != nil {
		return daemon.WatchState{}, err.Error()
	}
	b, _ := json.Marshal(st.WatchStates)
	for _, w := range st.WatchStates {
		if w.Path == path {
			return w, string(b)
		}
	}
	return daemon.WatchState{}, string(b)
}

// waitUploaded waits until archive/rel holds data.
func (e *rootEnv) waitUploaded(rel, data string) time.Duration {
	e.t.Helper()
	start := time.Now()
	testsrv.Eventually(e.t, e2eWait, rel+" uploaded", func() (bool, string) {
		b, err := os.ReadFile(e.path("archive/" + rel))
		return err == nil && string(b) == data, e.log()
	})
	return time.Since(start)
}

// ferry runs a verb of the real binary, in-process not needed: the same
// binary, to its end.
func (e *rootEnv) ferry(args ...string) (int, string) {
	e.t.Helper()
	out, err := exec.Command(e.bin, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return code, string(out)
}

// TestWatchFolderGoesAndComesBack (issue 11 item 2): with the real binary,
// a watch folder missing at start, made, deleted and made again never
// stops ferry or the other watch. config check warns (exit 0); run starts;
// the missing folder is down in /status, ferry status and ferry_watch_up;
// once it is there its files upload within seconds, without a rescan (an
// hour away by default).
func TestWatchFolderGoesAndComesBack(t *testing.T) {
	e := newRootEnv(t, "a", "share/b")
	a, b := e.path("a"), e.path("share/b")
	os.MkdirAll(a, 0o755)
	if code, out := e.ferry("config", "check", "--config", e.cfg); code != 0 || !strings.Contains(out, "warning: "+e.cfg+":15: watch[2].path: watch path "+b+" is not there now") {
		t.Fatalf("config check with a missing watch folder: exit %d\n%s", code, out)
	}
	proc := e.start()
	e.write("a/1.txt", "one")
	e.waitUploaded("1.txt", "one")
	testsrv.Eventually(t, e2eWait, "b down in /status and metrics", func() (bool, string) {
		ws, all := e.watchState(b)
		m := e.metrics()
		return !ws.Up && ws.Reason == "missing" && strings.Contains(m, `ferry_watch_up{watch="`+b+`"} 0`) &&
			strings.Contains(m, `ferry_watch_up{watch="`+a+`"} 1`), all + "\n" + m
	})
	if code, out := e.ferry("status", "--config", e.cfg); code != 0 || !strings.Contains(out, b+"  DOWN since ") || !strings.Contains(out, ": missing") || !strings.Contains(out, a+"  up") {
		t.Errorf("ferry status with b missing: exit %d\n%s", code, out)
	}

	// Made: its files go, within seconds.
	e.write("share/b/run1/2.txt", "two")
	took := e.waitUploaded("run1/2.txt", "two")
	t.Logf("a watch folder made while ferry ran: its file uploaded %v after it was written", took.Round(time.Millisecond))

	// Deleted: down, the other watch goes on, ferry runs on.
	if err := os.RemoveAll(b); err != nil {
		t.Fatal(err)
	}
	testsrv.Eventually(t, e2eWait, "b down again", func() (bool, string) {
		ws, all := e.watchState(b)
		return !ws.Up && ws.Reason == "missing", all
	})
	e.write("a/3.txt", "three")
	e.waitUploaded("3.txt", "three")

	// Made again: its folders are watched again, a new file goes within
	// seconds.
	e.write("share/b/run2/4.txt", "four")
	took = e.waitUploaded("run2/4.txt", "four")
	t.Logf("a watch folder deleted and made again: its new file uploaded %v after it was written", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("the recreated folder's file took %v, want seconds", took)
	}
	e.write("share/b/run2/5.txt", "five") // by its event, in a folder watched again
	e.waitUploaded("run2/5.txt", "five")
	if ws, all := e.watchState(b); !ws.Up {
		t.Errorf("b not up: %s", all)
	}

	log := e.log()
	if n := strings.Count(log, `"msg":"watch folder is not usable`); n != 2 {
		t.Errorf("the folder going down was logged %d times, want twice (missing at start, deleted):\n%s", n, log)
	}
	if n := strings.Count(log, `"msg":"watch folder is back`); n != 2 {
		t.Errorf("the folder coming back was logged %d times, want twice:\n%s", n, log)
	}
	if code := proc.stop(t); code != 0 {
		t.Fatalf("ferry ended with exit %d\n%s", code, log)
	}
}

// TestWhatIsNotTakenIsSaid (issue 11 item 3): with the real binary, a watch
// path that is a symlink to a folder is followed (config check shows where
// it leads, its files upload); inside it a symlink, a FIFO and a socket are
// not taken, each logged with its reason and counted in ferry status and
// metrics; a folder that cannot be read makes run --once exit 1 naming it.
// Root reads every folder: as root, ferry runs as nobody.
func TestWhatIsNotTakenIsSaid(t *testing.T) {
	e := newRootEnv(t, "link")
	real := e.path("real")
	e.write("real/run1/a.raw", "a")
	e.write("real/locked/hidden.raw", "h")
	e.write("outside/secret", "s")
	if err := syscall.Mkfifo(e.path("real/run1/pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink(e.path("outside/secret"), e.path("real/run1/link.raw"))
	sockDir, err := os.MkdirTemp("", "s")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	ln, err := net.Listen("unix", filepath.Join(sockDir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Rename(filepath.Join(sockDir, "s"), e.path("real/run1/sock")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, e.path("link")); err != nil {
		t.Fatal(err)
	}
	if code, out := e.ferry("config", "check", "--config", e.cfg); code != 0 || !strings.Contains(out, "watch    "+e.path("link")+" (resolved: "+real+") -> nas") {
		t.Fatalf("config check of a symlinked watch: exit %d\n%s", code, out)
	}

	// run --once, with the folder locked from ferry's user.
	os.Chmod(e.path("real/locked"), 0)
	defer os.Chmod(e.path("real/locked"), 0o755)
	once := exec.Command(e.bin, "run", "--once", "--config", e.cfg)
	if os.Geteuid() == 0 {
		asNobody(t, once, e)
	}
	out, err := once.CombinedOutput()
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != exitFailed {
		t.Fatalf("run --once with an unreadable folder: %v, want exit 1\n%s\n%s", err, out, e.log())
	}
	want := "unreadable\t" + filepath.Join(e.path("link"), "locked") + "\tpermission denied"
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "uploaded 1 files") {
		t.Errorf("run --once output does not say %q and that a.raw uploaded:\n%s", want, out)
	}
	if b, err := os.ReadFile(e.path("archive/run1/a.raw")); err != nil || string(b) != "a" {
		t.Errorf("a.raw through the symlinked root: %q, %v", b, err)
	}
	log := e.log()
	for _, w := range [][]string{
		{`"level":"ERROR","msg":"cannot read folder: its files are not taken"`, `"path":"locked","reason":"unreadable","error":"permission denied"`},
		{`"msg":"not taken: not a regular file"`, `"path":"run1/pipe","reason":"special","kind":"FIFO"`},
		{`"msg":"not taken: not a regular file"`, `"path":"run1/sock","reason":"special","kind":"socket"`},
		{`"msg":"not taken: symlinks inside a watch are not followed"`, `"path":"run1/link.raw","reason":"symlink"`},
	} {
		if n := linesWith(log, w...); n != 1 {
			t.Errorf("%d log lines with %q, want 1\n%s", n, w, log)
		}
	}
	if _, err := os.Stat(e.path("archive/run1/link.raw")); err == nil {
		t.Error("a symlink inside the watch was followed")
	}

	// The daemon counts them: /metrics and ferry status.
	os.Chmod(e.path("real/locked"), 0o755)
	e.start()
	e.waitUploaded("locked/hidden.raw", "h")
	link := e.path("link")
	testsrv.Eventually(t, e2eWait, "skipped entries in the metrics", func() (bool, string) {
		m := e.metrics()
		ok := true
		for reason, n := range map[string]int{"symlink": 1, "special": 2, "unreadable": 0} {
			ok = ok && strings.Contains(m, fmt.Sprintf(`ferry_skipped_entries{reason=%q,watch=%q} %d`, reason, link, n))
		}
		return ok && strings.Contains(m, `ferry_watch_up{watch="`+link+`"} 1`), m
	})
	code, st := e.ferry("status", "--config", e.cfg)
	if code != 0 || !strings.Contains(st, link+" (-> "+real+")  up") || !strings.Contains(st, "not taken: 1 symlink, 2 FIFOs, sockets or devices") {
		t.Errorf("ferry status: exit %d\n%s", code, st)
	}
}

// asNobody runs cmd as the user nobody (65534), with the folders of e open
// to it: the test runs as root, which reads any folder.
func asNobody(t *testing.T, cmd *exec.Cmd, e *rootEnv) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	for _, d := range []string{filepath.Dir(e.dir), e.dir, filepath.Dir(filepath.Dir(e.bin)), filepath.Dir(e.bin)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"state", "logs", "archive"} {
		os.MkdirAll(e.path(d), 0o777)
		os.Chmod(e.path(d), 0o777)
	}
}

// linesWith counts the lines of text that hold every one of parts.
func linesWith(text string, parts ...string) int {
	n := 0
next:
	for _, l := range strings.Split(text, "\n") {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		n++
	}
	return n
}
