package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testsrv"
)

// TestUnmountedShareIsDown (issue 11 item 2): a watch folder that is a
// mount point (a tmpfs here, standing for a share) is unmounted under the
// running binary: what is left is an empty folder on its parent's device,
// which is down ("unmounted"), not an empty watch; mounted again, its
// files upload within seconds. Mounts send no filesystem events: the
// watch's 2 s look finds both. Needs root (mount); skipped otherwise.
func TestUnmountedShareIsDown(t *testing.T) {
	e := newRootEnv(t, "a", "share")
	share := e.path("share")
	os.MkdirAll(e.path("a"), 0o755)
	os.MkdirAll(share, 0o755)
	if err := syscall.Mount("ferry-test", share, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	mounted := true
	defer func() {
		if mounted {
			syscall.Unmount(share, syscall.MNT_DETACH)
		}
	}()
	e.write("share/1.txt", "one")
	proc := e.start()
	e.waitUploaded("1.txt", "one")

	if err := syscall.Unmount(share, 0); err != nil {
		t.Fatal(err)
	}
	mounted = false
	testsrv.Eventually(t, e2eWait, "the unmounted share down", func() (bool, string) {
		ws, all := e.watchState(share)
		return !ws.Up && strings.HasPrefix(ws.Reason, "unmounted"), all
	})
	e.write("a/2.txt", "two")
	e.waitUploaded("2.txt", "two")

	if err := syscall.Mount("ferry-test", share, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	mounted = true
	e.write("share/3.txt", "three")
	took := e.waitUploaded("3.txt", "three")
	t.Logf("a share mounted again: its new file uploaded %v after it was written", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("the remounted share's file took %v, want seconds", took)
	}
	if code := proc.stop(t); code != 0 {
		t.Fatalf("ferry ended with exit %d\n%s", code, e.log())
	}
}
