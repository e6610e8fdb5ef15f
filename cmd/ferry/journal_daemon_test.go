package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/internal/testsrv"
)

// TestJournalCommandsBesideARunningDaemon: `journal archive` (which
// deletes and appends events) and `journal verify` run while the daemon
// uploads; the daemon's next events continue the chain the archive left,
// and everything verifies afterwards.
func TestJournalCommandsBesideARunningDaemon(t *testing.T) {
	cfg := testcfg.Write(t, "[journal]\npath = \"ferry.db\"\n[log]\nfile = \"ferry.log\"\n[metrics]\nlisten = \"\"\n"+
		"[target.a]\ntype = \"fs\"\npath = \"archive\"\n[[watch]]\npath = \"in\"\ntarget = \"a\"\nsettle = \"100ms\"\n")
	dir := filepath.Dir(cfg)
	e := &e2eEnv{t: t, dir: dir, cfgPath: cfg, logFile: filepath.Join(dir, "ferry.log")}
	d := e.startDaemon()
	// drop writes a file into the watched folder and waits until it is in
	// the target folder.
	drop := func(name string) {
		t.Helper()
		body := []byte("beside the daemon " + name)
		if err := os.WriteFile(filepath.Join(dir, "in", name), body, 0o644); err != nil {
			t.Fatal(err)
		}
		testsrv.Eventually(t, 15*time.Second, name+" in the target", func() (bool, string) {
			got, err := os.ReadFile(filepath.Join(dir, "archive", name))
			return err == nil && string(got) == string(body), e.log()
		})
	}
	for _, n := range []string{"1.txt", "2.txt", "3.txt"} {
		drop(n)
	}
	ferry := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := run(t.Context(), args, &out, &errb, testcfg.Env(nil))
		return code, out.String(), errb.String()
	}
	arch := filepath.Join(dir, "old.jsonl")
	before := time.Now().UTC().Format(time.RFC3339Nano)
	if code, out, errs := ferry("journal", "archive", "--config", cfg, "--before", before, "--out", arch); code != 0 {
		t.Fatalf("archive beside the daemon: %d %q %q", code, out, errs)
	}
	// The daemon goes on writing events after the archive's.
	drop("4.txt")
	drop("5.txt")
	if code, out, errs := ferry("journal", "verify", "--config", cfg); code != 0 {
		t.Fatalf("verify beside the daemon: %d %q %q\n%s", code, out, errs, e.log())
	}
	if code, _ := d.stop(t); code != exitOK {
		t.Fatalf("exit %d\n%s", code, e.log())
	}
	if strings.Contains(e.log(), `"level":"ERROR"`) {
		t.Errorf("the daemon logged errors:\n%s", e.log())
	}
	if code, out, errs := ferry("journal", "verify", "--config", cfg); code != 0 || !strings.Contains(out, "agree with a replay") {
		t.Fatalf("verify after the stop: %d %q %q", code, out, errs)
	}
	if code, out, errs := ferry("journal", "verify", "--export", arch); code != 0 {
		t.Fatalf("verify of the archive: %d %q %q", code, out, errs)
	}
}
