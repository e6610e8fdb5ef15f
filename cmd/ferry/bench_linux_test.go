package main

import (
	"os"
	"syscall"
)

// benchMaxRSSKiB returns the peak resident set size of an exited child
// process, in KiB (Linux reports ru_maxrss in KiB).
func benchMaxRSSKiB(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return -1
}
