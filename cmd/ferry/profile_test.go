package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// TestHeapProfileIsWritten: FERRY_MEMPROFILE names a file that gets the
// heap profile (gzip-compressed protobuf, what `go tool pprof` reads); a
// path that cannot be written costs the run nothing.
func TestHeapProfileIsWritten(t *testing.T) {
	dir := testtmp.Dir(t)
	mem := filepath.Join(dir, "mem.pprof")
	writeHeapProfile(mem)
	b, err := os.ReadFile(mem)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("not a gzip-compressed profile (%d bytes)", len(b))
	}
	missing := filepath.Join(dir, "no such folder", "p.pprof")
	writeHeapProfile(missing)
	if _, err := os.Stat(missing); err == nil {
		t.Error("a profile appeared under a folder that does not exist")
	}
}
