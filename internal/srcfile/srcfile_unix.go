//go:build !windows

package srcfile

import (
	"io/fs"
	"os"
	"syscall"
)

// Open opens path for reading. On Unix, reading never blocks a writer.
func Open(path string) (*os.File, error) { return os.Open(path) }

// ProbeReadable reports whether path can be opened for reading now. On Unix
// there is no mandatory locking, so a writer never makes a file busy.
func ProbeReadable(path string) error {
	f, err := os.Open(path)
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
