//go:build !linux

package main

import "os"

// benchMaxRSSKiB returns -1: peak RSS is measured on Linux only (other
// systems report ru_maxrss in other units, or not at all).
func benchMaxRSSKiB(*os.ProcessState) int64 { return -1 }
