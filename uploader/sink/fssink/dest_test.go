package fssink_test

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testtmp"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/fssink"
)

// A destination the target's filesystem cannot hold (a file where a folder
// is needed, a name too long) is a permanent failure of that object, with
// a reason that says which; on Linux the errno says it, on Windows the sink
// proves it by looking at the destination.
func TestPutBadDestinationIsPermanent(t *testing.T) {
	root := testtmp.Dir(t)
	s, err := fssink.New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "blocked"), []byte("not a folder"), 0o644); err != nil {
		t.Fatal(err)
	}
	body := []byte("x")
	sum := sink.Digest(sha256.Sum256(body))
	long := strings.Repeat("n", 300)
	for _, c := range []struct{ key, why string }{
		{"blocked/inside", "not a directory"},
		{"blocked/deeper/inside", "not a directory"},
		{long, "too long"},
		{"dir/" + long, "too long"},
	} {
		err := s.Put(context.Background(), c.key, body, sum, true)
		if !sink.IsPermanent(err) {
			t.Errorf("Put %.20s…: %v, want a permanent error", c.key, err)
			continue
		}
		if !strings.Contains(err.Error(), c.why) {
			t.Errorf("Put %.20s…: %q does not say %q", c.key, err, c.why)
		}
	}
	if err := s.Put(context.Background(), "ok/a", body, sum, true); err != nil {
		t.Errorf("Put ok/a after the failures: %v", err)
	}
}
