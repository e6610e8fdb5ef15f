package main

import (
	"os"
	"syscall"
	"time"
)

// benchMaxRSSKiB returns the peak resident set size of an exited child
// process, in KiB (Linux reports ru_maxrss in KiB).
func benchMaxRSSKiB(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return -1
}

// benchSelfCPU is the CPU (user and system) this process has used so far;
// -1 where it cannot tell.
func benchSelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
