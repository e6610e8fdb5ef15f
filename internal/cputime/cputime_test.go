package cputime

import (
	"crypto/sha256"
	"runtime"
	"testing"
)

// TestSelfGrowsWithWork: work done between two readings shows as CPU.
func TestSelfGrowsWithWork(t *testing.T) {
	before, ok := Self()
	if !ok {
		if runtime.GOOS == "windows" {
			t.Skip("not measured on Windows")
		}
		t.Fatal("no CPU time on a Unix system")
	}
	buf := make([]byte, 1<<20)
	for range 200 {
		sum := sha256.Sum256(buf)
		buf[0] = sum[0]
	}
	after, _ := Self()
	if after <= before {
		t.Fatalf("CPU %v after hashing 200 MiB, %v before", after, before)
	}
}
