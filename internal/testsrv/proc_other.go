//go:build !linux

package testsrv

import "os/exec"

// setProcAttr does nothing outside Linux.
func setProcAttr(*exec.Cmd) {}
