//go:build windows

package fssink

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/ferry-data/ferry/internal/testtmp"
	"github.com/ferry-data/ferry/uploader/sink"
)

// On Windows "path not found" (and, under Wine, "file not found") is
// permanent only when the destination proves it: a component below the
// root is a file, or a name is too long. Otherwise (a share or folder that
// is gone) it stays transient.
func TestWindowsNotFoundIsPermanentOnlyWhenProven(t *testing.T) {
	root := testtmp.Dir(t)
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "blocked"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("n", 300)
	notFound := func(p string, errno windows.Errno) error { return &fs.PathError{Op: "open", Path: p, Err: errno} }
	for _, c := range []struct {
		dest      string
		errno     windows.Errno
		permanent bool
		why       string // what the reason says, besides the errno
	}{
		{`blocked\inside`, windows.ERROR_PATH_NOT_FOUND, true, `blocked is a file, not a directory`},
		{`blocked\a\b\inside`, windows.ERROR_PATH_NOT_FOUND, true, `blocked is a file, not a directory`},
		{`gone\inside`, windows.ERROR_PATH_NOT_FOUND, false, ""},
		{`inside`, windows.ERROR_PATH_NOT_FOUND, false, ""},
		{long, windows.ERROR_FILE_NOT_FOUND, true, "too long"},
		{`dir\` + long + `\inside`, windows.ERROR_PATH_NOT_FOUND, true, "too long"},
		{long, windows.ERROR_FILENAME_EXCED_RANGE, true, "too long"},
		{`short`, windows.ERROR_FILE_NOT_FOUND, false, ""},
		{`bad?name`, windows.ERROR_INVALID_NAME, true, ""},
	} {
		dest := filepath.Join(root, c.dest)
		err := s.classifyDest("Put", dest, notFound(dest, c.errno))
		if sink.IsPermanent(err) != c.permanent {
			t.Errorf("%.20s… (%d): %v, permanent %v, want %v", c.dest, c.errno, err, sink.IsPermanent(err), c.permanent)
		}
		if !errors.Is(err, c.errno) {
			t.Errorf("%.20s… (%d): %v does not wrap the errno", c.dest, c.errno, err)
		}
		if !strings.Contains(err.Error(), c.why) {
			t.Errorf("%.20s… (%d): %q does not say %q", c.dest, c.errno, err, c.why)
		}
	}
	// The root itself gone or replaced by a file: the target is unwell.
	if err := os.Remove(filepath.Join(root, "blocked")); err != nil {
		t.Fatal(err)
	}
	other := testtmp.Dir(t)
	f := filepath.Join(other, "root")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := &Sink{root: f, mode: DefaultFileMode}
	if err := s2.classifyDest("Put", filepath.Join(f, "a"), notFound(filepath.Join(f, "a"), windows.ERROR_PATH_NOT_FOUND)); sink.IsPermanent(err) {
		t.Errorf("a root that is a file: %v, want transient", err)
	}
}
