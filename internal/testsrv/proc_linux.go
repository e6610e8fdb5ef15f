package testsrv

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill versitygw when the test binary dies
// without running its cleanups (e.g. on a test timeout panic).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
