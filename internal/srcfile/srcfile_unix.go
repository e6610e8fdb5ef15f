//go:build !windows

package srcfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Open opens path for reading. On Unix, reading never blocks a writer, and
// opening never blocks ferry: whatever is at the path (a FIFO with no
// writer, a device, a symlink put there after the file settled), the open
// does not wait (O_NONBLOCK, O_NOFOLLOW), and anything but a regular file
// is closed again and refused with ErrNotRegular.
func Open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s is a symlink: %w", path, ErrNotRegular)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s (%s): %w", path, fi.Mode().Type(), ErrNotRegular)
	}
	return f, nil
}

// ProbeReadable reports whether path can be opened for reading now. On Unix
// there is no mandatory locking, so a writer never makes a file busy.
func ProbeReadable(path string) error {
	f, err := Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

func statOf(_ string, fi fs.FileInfo) (Stat, error) { return fromInfo(fi), nil }

func fileStatOf(_ *os.File, fi fs.FileInfo) (Stat, error) { return fromInfo(fi), nil }

func fromInfo(fi fs.FileInfo) Stat {
	s := Stat{Size: fi.Size(), ModTime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ID = ID{Volume: uint64(st.Dev), Index: uint64(st.Ino)}
	}
	return s
}
