// Package srcfile opens instrument output files the way ferry must: read-only,
// without ever blocking the instrument that writes them, and identifies a file
// by more than its path (device and inode on Unix, volume serial and file
// index on Windows), so a file replaced under the same name is seen as new.
package srcfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// ID identifies a file on its volume, independent of its name.
type ID struct {
	Volume uint64 // st_dev on Unix, volume serial number on Windows
	Index  uint64 // st_ino on Unix, file index on Windows
}

// String renders the identity as "volume:index", the form the journal stores.
func (id ID) String() string { return fmt.Sprintf("%x:%x", id.Volume, id.Index) }

// Stat is what ferry records about a file version: size, modification time
// and identity. Two Stats are the same version when all three agree.
type Stat struct {
	Size    int64
	ModTime time.Time
	ID      ID
}

// Same reports whether s and o describe the same version of a file.
func (s Stat) Same(o Stat) bool {
	return s.Size == o.Size && s.ModTime.Equal(o.ModTime) && s.ID == o.ID
}

// ErrNotRegular is returned for directories, symlinks, devices and the like.
var ErrNotRegular = errors.New("not a regular file")

// ErrBusy means another process holds the file in a way that says it is
// still being written (on Windows: opened without read sharing by the
// instrument software). The file is not settled yet.
var ErrBusy = errors.New("file is still held open by a writer")

// Lstat stats path without following a final symlink and returns its
// version. A symlink or other non-regular file yields ErrNotRegular.
func Lstat(path string) (Stat, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return Stat{}, err
	}
	if !fi.Mode().IsRegular() {
		return Stat{}, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	return statOf(path, fi)
}

// FileStat returns the version of an open file.
func FileStat(f *os.File) (Stat, error) {
	fi, err := f.Stat()
	if err != nil {
		return Stat{}, err
	}
	if !fi.Mode().IsRegular() {
		return Stat{}, fmt.Errorf("%s: %w", f.Name(), ErrNotRegular)
	}
	return fileStatOf(f, fi)
}

// IsVanished reports whether err means the file no longer exists.
func IsVanished(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// IsDenied reports whether err means ferry may not read the file.
func IsDenied(err error) bool { return errors.Is(err, fs.ErrPermission) }
