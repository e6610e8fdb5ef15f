package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ferry-data/ferry/internal/testsrv"
)

// inotifyInodes are the inodes the inotify watches of process pid are on
// (/proc/PID/fdinfo: one "inotify wd:N ino:HEX ..." line per watch).
func inotifyInodes(t *testing.T, pid int) map[uint64]bool {
	t.Helper()
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]bool{}
	for _, fd := range fds {
		if l, _ := os.Readlink(filepath.Join(fdDir, fd.Name())); l != "anon_inode:inotify" {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "inotify wd:") {
				continue
			}
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, "ino:"); ok {
					if n, err := strconv.ParseUint(v, 16, 64); err == nil {
						out[n] = true
					}
				}
			}
		}
	}
	return out
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestPollModeUploadsWithoutInotify (issue 14, network shares): the real
// binary with a watch in mode "poll" and one in mode "events". The polled
// watch's folders hold no inotify watch of the process (its fdinfo),
// while the events watch's do; /status says which mode each runs in and
// why; a file written into the polled folder's subfolder lands in the fs
// target; config check shows the modes; the log names the filesystem and
// the mode once per watch.
func TestPollModeUploadsWithoutInotify(t *testing.T) {
	e := newRootEnv(t)
	cfg := fmt.Sprintf("[journal]\npath = \"state/ferry.db\"\n[log]\nfile = \"logs/ferry.log\"\n[metrics]\nlisten = %q\n[target.nas]\ntype = \"fs\"\npath = \"archive\"\n"+
		"[[watch]]\npath = \"share\"\ntarget = \"nas\"\nsettle = \"200ms\"\nmode = \"poll\"\npoll_interval = \"1s\"\n"+
		"[[watch]]\npath = \"local\"\ntarget = \"nas\"\nsettle = \"200ms\"\nmode = \"events\"\n", e.listen)
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	share, local := e.path("share"), e.path("local")
	for _, d := range []string{"share/run 1", "local/sub"} {
		if err := os.MkdirAll(e.path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := e.ferry("config", "check", "--config", e.cfg); code != 0 || !strings.Contains(out, "mode poll: polling every 1s (as configured)") || !strings.Contains(out, "mode events: events (as configured)") {
		t.Fatalf("config check: exit %d\n%s", code, out)
	}
	proc := e.start()
	testsrv.Eventually(t, e2eWait, "both watches up with their modes in /status", func() (bool, string) {
		ws, all := e.watchState(share)
		wl, _ := e.watchState(local)
		return ws.Up && ws.Mode == "poll" && ws.ModeReason == "as configured" && ws.Filesystem != "" && wl.Up && wl.Mode == "events", all
	})
	e.write("share/run 1/a.raw", "polled")
	e.waitUploaded("run 1/a.raw", "polled")
	e.write("local/sub/b.raw", "evented")
	e.waitUploaded("sub/b.raw", "evented")

	watched := inotifyInodes(t, proc.cmd.Process.Pid)
	for _, d := range []string{share, filepath.Join(share, "run 1")} {
		if watched[inode(t, d)] {
			t.Errorf("mode poll: %s has an inotify watch", d)
		}
	}
	for _, d := range []string{local, filepath.Join(local, "sub")} {
		if !watched[inode(t, d)] {
			t.Errorf("mode events: %s has no inotify watch (the check sees none)", d)
		}
	}
	log := e.log()
	for _, w := range []string{share, local} {
		if n := strings.Count(log, `"msg":"watch mode","watch":"`+w+`"`); n != 1 {
			t.Errorf("watch mode of %s logged %d times, want once\n%s", w, n, log)
		}
	}
	if !strings.Contains(log, `"mode":"poll","configured":"poll"`) {
		t.Errorf("the log does not name the poll mode\n%s", log)
	}
	if code := proc.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, e.log())
	}
}
