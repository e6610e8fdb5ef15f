//go:build !linux

package main

import (
	"os"
	"time"
)

// benchMaxRSSKiB returns -1: peak RSS is measured on Linux only (other
// systems report ru_maxrss in other units, or not at all).
func benchMaxRSSKiB(*os.ProcessState) int64 { return -1 }

// benchSelfCPU returns -1: the floor's CPU is measured on Linux only.
func benchSelfCPU() time.Duration { return -1 }
