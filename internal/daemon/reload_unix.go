//go:build !windows

package daemon

import (
	"os"
	"os/signal"
	"syscall"
)

const reloadHint = "; send SIGHUP (systemctl reload ferry) after editing it"

// notifyReload delivers SIGHUP, the Unix way to ask a daemon to read its
// configuration again, on c.
func notifyReload(c chan<- os.Signal) { signal.Notify(c, syscall.SIGHUP) }
