package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/internal/testsrv"
)

// lockEnv is a configuration with an fs target and the real ferry binary.
type lockEnv struct {
	t        *testing.T
	bin, cfg string
	dir      string
}

func newLockEnv(t *testing.T, metrics string) *lockEnv {
	t.Helper()
	bin := benchBuild(t)
	cfg := testcfg.Write(t, "[journal]\npath = \"ferry.db\"\n[log]\nfile = \"ferry.log\"\n[metrics]\nlisten = \""+metrics+"\"\n"+
		"[target.a]\ntype = \"fs\"\npath = \"archive\"\n[[watch]]\npath = \"in\"\ntarget = \"a\"\nsettle = \"100ms\"\n")
	return &lockEnv{t: t, bin: bin, cfg: cfg, dir: filepath.Dir(cfg)}
}

func (e *lockEnv) log() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "ferry.log"))
	return string(b)
}

// start runs `ferry run` as a process and waits until it watches.
func (e *lockEnv) start() *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command(e.bin, "run", "--config", e.cfg)
	cmd.Stderr = new(bytes.Buffer)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testsrv.Eventually(e.t, 15*time.Second, "ferry to start watching", func() (bool, string) {
		return strings.Contains(e.log(), `"msg":"watching"`), e.log()
	})
	return cmd
}

// ferry runs the binary to its end.
func (e *lockEnv) ferry(args ...string) (int, string) {
	e.t.Helper()
	out, err := exec.Command(e.bin, args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		e.t.Fatal(err)
	}
	return 0, string(out)
}

// TestOneDaemonPerJournal: a second `ferry run` (or run --once, or journal
// rebuild) on a journal a running ferry holds exits 1 naming the holder;
// the read-only verbs work beside it.
func TestOneDaemonPerJournal(t *testing.T) {
	e := newLockEnv(t, "")
	first := e.start()
	holder := "is in use by ferry pid " + strconv.Itoa(first.Process.Pid) + " on "
	for _, args := range [][]string{{"run"}, {"run", "--once"}, {"journal", "rebuild", "--force"}} {
		code, out := e.ferry(append(args, "--config", e.cfg)...)
		if code != exitFailed || !strings.Contains(out, "journal "+filepath.Join(e.dir, "ferry.db")+" "+holder) || !strings.Contains(out, " since ") {
			t.Errorf("ferry %s beside a running daemon: exit %d, %q; want 1 naming the holder (%q)", strings.Join(args, " "), code, out, holder)
		}
	}
	for _, args := range [][]string{{"status"}, {"journal", "export"}, {"journal", "verify"}, {"journal", "state", "--at", "2100-01-01"}, {"dlq", "list"}} {
		if code, out := e.ferry(append(args, "--config", e.cfg)...); code != 0 {
			t.Errorf("ferry %s beside a running daemon: exit %d, %q", strings.Join(args, " "), code, out)
		}
	}
	first.Process.Signal(syscall.SIGTERM)
	if err := first.Wait(); err != nil {
		t.Fatalf("the first daemon: %v\n%s", err, first.Stderr)
	}
	// Once it stopped, the next one starts.
	if code, out := e.ferry("run", "--once", "--config", e.cfg); code != 0 {
		t.Errorf("run --once after the stop: exit %d %q", code, out)
	}
}

// TestJournalDeletedUnderDaemon: the journal deleted under a running
// daemon makes /healthz 503 with the reason; the daemon logs it, stops with
// exit 1 and puts what it still held back at the path.
func TestJournalDeletedUnderDaemon(t *testing.T) {
	e := newLockEnv(t, "127.0.0.1:0")
	d := e.start()
	// The metrics are served beside the watchers: their line may follow
	// "watching".
	var addr string
	testsrv.Eventually(t, 15*time.Second, "the metrics address in the log", func() (bool, string) {
		for _, line := range strings.Split(e.log(), "\n") {
			var l struct{ Msg, Listen string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "serving metrics" {
				addr = l.Listen
			}
		}
		return addr != "", e.log()
	})
	os.MkdirAll(filepath.Join(e.dir, "in"), 0o755)
	os.WriteFile(filepath.Join(e.dir, "in", "a.txt"), []byte("before the deletion"), 0o644)
	testsrv.Eventually(t, 15*time.Second, "a.txt uploaded", func() (bool, string) {
		_, err := os.Stat(filepath.Join(e.dir, "archive", "a.txt"))
		return err == nil, e.log()
	})
	if err := os.Remove(filepath.Join(e.dir, "ferry.db")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "deleted") {
		t.Errorf("/healthz after the deletion = %d %q; want 503 saying it was deleted", resp.StatusCode, body)
	}
	done := make(chan error, 1)
	go func() { done <- d.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailed {
			t.Errorf("exit: %v; want 1", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon did not stop after its journal was deleted\n%s", e.log())
	}
	log := e.log()
	if !strings.Contains(log, `"level":"ERROR","msg":"the journal file is gone`) || !strings.Contains(log, "history was copied") {
		t.Errorf("the log does not say the journal was lost and rescued:\n%s", log)
	}
	// The rescued journal holds a.txt's upload and verifies.
	if code, out := e.ferry("journal", "verify", "--config", e.cfg); code != 0 {
		t.Errorf("verify of the rescued journal: exit %d %q", code, out)
	}
	if code, out := e.ferry("journal", "export", "--config", e.cfg); code != 0 || !strings.Contains(out, "a.txt") {
		t.Errorf("export of the rescued journal: exit %d %q; want a.txt in it", code, out)
	}
}

// TestReadOnlyVerbsNeedAJournal: with no journal, the verbs that only read
// refuse and create nothing; an empty file at the journal path is refused
// like a corrupt journal, by them and by run.
func TestReadOnlyVerbsNeedAJournal(t *testing.T) {
	cfg := testcfg.Write(t, "[journal]\npath = \"ferry.db\"\n[metrics]\nlisten = \"\"\n"+
		"[target.a]\ntype = \"fs\"\npath = \"archive\"\n[[watch]]\npath = \"in\"\ntarget = \"a\"\n")
	db := filepath.Join(filepath.Dir(cfg), "ferry.db")
	ferry := func(args ...string) (int, string) {
		var out, errb strings.Builder
		code := run(t.Context(), append(args, "--config", cfg), &out, &errb, testcfg.Env(nil))
		return code, out.String() + errb.String()
	}
	verbs := [][]string{{"journal", "verify"}, {"journal", "export"}, {"journal", "state", "--at", "2100-01-01"}, {"dlq", "list"}}
	for _, v := range verbs {
		if code, out := ferry(v...); code != exitFailed || !strings.Contains(out, "no journal") {
			t.Errorf("ferry %s without a journal: exit %d %q; want 1, no journal", strings.Join(v, " "), code, out)
		}
		if _, err := os.Stat(db); err == nil {
			t.Fatalf("ferry %s created %s", strings.Join(v, " "), db)
		}
	}
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v := range append(verbs, []string{"run", "--once"}) {
		if code, out := ferry(v...); code != exitFailed || !strings.Contains(out, "not a ferry journal (an empty file)") || !strings.Contains(out, "journal rebuild") {
			t.Errorf("ferry %s on an empty file: exit %d %q; want 1, not a ferry journal, rebuild", strings.Join(v, " "), code, out)
		}
	}
	if fi, err := os.Stat(db); err != nil || fi.Size() != 0 {
		t.Errorf("the empty file was changed: %v %v", fi, err)
	}
}
