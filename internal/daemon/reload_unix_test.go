//go:build !windows

package daemon

import (
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testsrv"
)

// TestReloadOnSIGHUP: SIGHUP (systemctl reload) makes the daemon read its
// configuration again.
func TestReloadOnSIGHUP(t *testing.T) {
	// Keep SIGHUP's default action (exit) off this test process, whatever
	// the daemon has registered yet.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	r := newReloadEnv(t)
	r.write(r.config([]string{"a"}, [][2]string{{"in1", "a"}}))
	r.start()
	// The daemon's signal handler starts with it: send until it answers.
	testsrv.Eventually(t, 15*time.Second, "the daemon to answer SIGHUP", func() (bool, string) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(r.log(), "SIGHUP: reading the configuration again"), r.log()
	})
	r.waitLog(1, "configuration unchanged; nothing to apply")
}
