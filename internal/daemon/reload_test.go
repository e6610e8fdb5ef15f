package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/journal"
)

// reloadEnv is a daemon on folder targets whose configuration the test
// edits while it runs.
type reloadEnv struct {
	t       *testing.T
	dir     string
	cfg     string
	metrics string // host:port of /metrics
	d       *testDaemon
}

func newReloadEnv(t *testing.T) *reloadEnv {
	addr := testsrv.FreeAddr(t)
	dir := t.TempDir()
	for _, d := range []string{"in1", "in2"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	return &reloadEnv{t: t, dir: dir, cfg: filepath.Join(dir, "ferry.toml"), metrics: addr}
}

// config is a configuration with the given targets (name = folder) and
// watches (folder -> target name).
func (r *reloadEnv) config(targets []string, watches [][2]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[journal]\npath = \"ferry.db\"\n\n[log]\nfile = \"ferry.log\"\n\n[metrics]\nlisten = %q\n\n", r.metrics)
	for _, t := range targets {
		fmt.Fprintf(&b, "[target.%s]\ntype = \"fs\"\npath = %q\n\n", t, "archive-"+t)
	}
	for _, w := range watches {
		fmt.Fprintf(&b, "[[watch]]\npath = %q\ntarget = %q\nsettle = \"100ms\"\n\n", w[0], w[1])
	}
	return b.String()
}

// write replaces the configuration file the way an editor saves: a new
// file renamed over the old one.
func (r *reloadEnv) write(text string) {
	r.t.Helper()
	tmp := r.cfg + ".swp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, r.cfg); err != nil {
		r.t.Fatal(err)
	}
}

func (r *reloadEnv) log() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "ferry.log"))
	return string(b)
}

func (r *reloadEnv) start() {
	r.t.Helper()
	r.d = startDaemon(r.t, r.cfg, testcfg.Env(nil))
}

// waitLog waits until the log has n lines containing all of the parts.
func (r *reloadEnv) waitLog(n int, parts ...string) {
	r.t.Helper()
	testsrv.Eventually(r.t, 15*time.Second, fmt.Sprintf("%d log lines with %q", n, parts), func() (bool, string) {
		got := 0
		for _, line := range strings.Split(r.log(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				got++
			}
		}
		return got >= n, r.log()
	})
}

// drop writes a file into a watched folder and waits until it is in the
// target folder.
func (r *reloadEnv) drop(watch, name, target string) {
	r.t.Helper()
	body := []byte("reload test " + name)
	if err := os.WriteFile(filepath.Join(r.dir, watch, name), body, 0o644); err != nil {
		r.t.Fatal(err)
	}
	dst := filepath.Join(r.dir, "archive-"+target, name)
	testsrv.Eventually(r.t, 15*time.Second, name+" in "+target, func() (bool, string) {
		got, err := os.ReadFile(dst)
		return err == nil && string(got) == string(body), r.log()
	})
}

func (r *reloadEnv) metric(name string) string {
	r.t.Helper()
	resp, err := http.Get("http://" + r.metrics + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	r.t.Fatalf("/metrics has no %s:\n%s", name, b)
	return ""
}

// TestReloadAppliesEditsAndKeepsRunningOnBadOnes edits the TOML of a
// running daemon: a broken edit is refused (logged with FILE:LINE, counted)
// while uploads go on under the old configuration; the next valid edit adds
// a watch with a new target, and a file dropped there lands; removing a
// watch stops it.
func TestReloadAppliesEditsAndKeepsRunningOnBadOnes(t *testing.T) {
	r := newReloadEnv(t)
	r.write(r.config([]string{"a"}, [][2]string{{"in1", "a"}}))
	r.start()
	r.drop("in1", "first.txt", "a")

	// Line 5 of the broken file has the syntax error.
	r.write("[journal]\npath = \"ferry.db\"\n\n[upload]\nmax_concurrent_uploads = = 3\n")
	r.waitLog(1, "configuration edit refused", `ferry.toml:5`)
	if v := r.metric("ferry_config_reload_failures_total"); v != "1" {
		t.Errorf("ferry_config_reload_failures_total = %s, want 1", v)
	}
	r.drop("in1", "during-bad-config.txt", "a")

	// A valid edit: a second watch with a target of its own.
	r.write(r.config([]string{"a", "b"}, [][2]string{{"in1", "a"}, {"in2", "b"}}))
	r.waitLog(1, "configuration reloaded", `"uploader_restarted":true`, `in2`)
	r.drop("in2", "new-watch.txt", "b")
	r.drop("in1", "old-watch.txt", "a")
	if v := r.metric("ferry_config_reloads_total"); v != "1" {
		t.Errorf("ferry_config_reloads_total = %s, want 1", v)
	}
	if v := r.metric("ferry_config_reload_failures_total"); v != "1" {
		t.Errorf("ferry_config_reload_failures_total = %s after a good edit, want still 1", v)
	}

	// A settle change restarts only that watch; the uploader stays.
	changed := strings.Replace(r.config([]string{"a", "b"}, [][2]string{{"in1", "a"}, {"in2", "b"}}), "settle = \"100ms\"", "settle = \"150ms\"", 1)
	r.write(changed)
	r.waitLog(1, "configuration reloaded", `"uploader_restarted":false`, `"watches_restarted":["`)
	r.drop("in1", "after-settle-change.txt", "a")

	// Removing in1: its watcher stops, in2 goes on.
	r.write(r.config([]string{"a", "b"}, [][2]string{{"in2", "b"}}))
	r.waitLog(1, "configuration reloaded", `"watches_removed":["`)
	r.drop("in2", "after-removal.txt", "b")
	if err := r.d.stop(); err != nil {
		t.Fatalf("%v\n%s", err, r.log())
	}
	if n := strings.Count(r.log(), `"level":"ERROR"`); n != 1 {
		t.Errorf("errors other than the refused edit were logged:\n%s", r.log())
	}
	// The audit log has the whole story: loaded at start, the refused
	// edit (naming the line), and each applied change with what changed.
	j, err := journal.Open(filepath.Join(r.dir, "ferry.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var got []string
	err = j.AuditRecords(context.Background(), journal.EventFilter{}, func(a journal.AuditRecord) error {
		switch a.Kind {
		case journal.AuditConfigLoaded, journal.AuditConfigChanged:
			got = append(got, a.Kind+" "+strings.Join(a.Changed, ","))
		case journal.AuditConfigRejected:
			got = append(got, fmt.Sprint(a.Kind, " ", strings.Contains(a.Detail, "ferry.toml:5")))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	has := func(i int, kind string, in []string, out []string) bool {
		if i >= len(got) || !strings.HasPrefix(got[i], kind+" ") {
			return false
		}
		for _, k := range in {
			if !strings.Contains(got[i], k) {
				return false
			}
		}
		for _, k := range out {
			if strings.Contains(got[i], k) {
				return false
			}
		}
		return true
	}
	in1, in2 := filepath.Join(r.dir, "in1"), filepath.Join(r.dir, "in2")
	if len(got) != 5 || !has(0, "config_loaded", []string{"target.a.path", "watch[" + in1 + "].settle"}, nil) ||
		got[1] != "config_rejected true" ||
		!has(2, "config_changed", []string{"target.b.path", "watch[" + in2 + "].settle"}, []string{"target.a.", in1}) ||
		got[3] != "config_changed watch["+in1+"].settle" ||
		!has(4, "config_changed", []string{"watch[" + in1 + "].path"}, []string{in2, "target."}) {
		t.Errorf("audit log config records:\n%s", strings.Join(got, "\n"))
	}
}

// TestReloadUnchangedFileDoesNothing: an editor touching the file without
// changing it, or SIGHUP without an edit, reloads nothing.
func TestReloadUnchangedFileDoesNothing(t *testing.T) {
	r := newReloadEnv(t)
	text := r.config([]string{"a"}, [][2]string{{"in1", "a"}})
	r.write(text)
	r.start()
	r.write(text)
	r.waitLog(1, "configuration unchanged; nothing to apply")
	r.drop("in1", "x.txt", "a")
	if strings.Contains(r.log(), "configuration reloaded") {
		t.Errorf("an unchanged file was reloaded:\n%s", r.log())
	}
	if v := r.metric("ferry_config_reloads_total"); v != "0" {
		t.Errorf("ferry_config_reloads_total = %s, want 0", v)
	}
}

// TestCoalesce: a burst of edits is one reload, once the file has been
// quiet for the quiet period; a reload already pending absorbs the next.
func TestCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		in, out := make(chan struct{}), make(chan struct{}, 1)
		go coalesce(ctx, in, time.Second, out)
		for range 5 {
			in <- struct{}{}
			time.Sleep(300 * time.Millisecond)
		}
		synctest.Wait()
		if len(out) != 0 {
			t.Fatal("signalled before the file was quiet")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if len(out) != 1 {
			t.Fatal("no signal after the quiet period")
		}
		// Pending and unread: another burst does not block or queue twice.
		in <- struct{}{}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if len(out) != 1 {
			t.Fatalf("%d signals pending, want 1", len(out))
		}
		<-out
		time.Sleep(time.Hour)
		synctest.Wait()
		if len(out) != 0 {
			t.Fatal("signalled without an edit")
		}
	})
}

// TestReloadLogLevel: [log] level applies at once; the log file itself
// waits for a restart (and ferry says so).
func TestReloadLogLevel(t *testing.T) {
	r := newReloadEnv(t)
	text := r.config([]string{"a"}, [][2]string{{"in1", "a"}})
	r.write(text)
	r.start()
	r.drop("in1", "at-info.txt", "a")
	if strings.Contains(r.log(), `"level":"DEBUG"`) {
		t.Fatalf("debug lines at level info:\n%s", r.log())
	}
	r.write(strings.Replace(text, "file = \"ferry.log\"\n", "file = \"ferry.log\"\nlevel = \"debug\"\nmax_backups = 3\n", 1))
	r.waitLog(1, "configuration reloaded", "log.level")
	r.waitLog(1, "take effect only when ferry restarts", `"settings":["log.max_backups"]`)
	r.drop("in1", "at-debug.txt", "a")
	r.waitLog(1, `"level":"DEBUG"`, "at-debug.txt")
}
