//go:build windows

package fssink

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf16"

	"golang.org/x/sys/windows"
)

// fileErrnos are the errors that say one destination path cannot be written
// (a folder where a file is, a name the target's filesystem does not take):
// permanent for that file, and no sign that the target is unwell.
//
// Not here: ERROR_PATH_NOT_FOUND (which is what syscall.ENOTDIR is on
// Windows) and ERROR_FILE_NOT_FOUND. Windows answers them both for "a
// component of the path is a file" and for "the share or drive is gone",
// and Wine answers ERROR_FILE_NOT_FOUND for a name too long; destReason
// decides them by looking at the destination.
var fileErrnos = []error{
	syscall.Errno(123), // ERROR_INVALID_NAME
	syscall.Errno(161), // ERROR_BAD_PATHNAME
	syscall.Errno(206), // ERROR_FILENAME_EXCED_RANGE
	syscall.Errno(267), // ERROR_DIRECTORY (a path component is not a folder)
	syscall.Errno(145), // ERROR_DIR_NOT_EMPTY
	syscall.EISDIR,
}

// destReason says why err, met writing dest (a path under root), is about
// dest alone, and nil when that is not proven. For a "not found" answer it
// looks: a component of dest below root that is a regular file (a file
// where a folder is needed), or a component whose name is longer than the
// target's filesystem takes. Anything else, a root that is gone included,
// stays a state of the target.
func destReason(root, dest string, err error) error {
	if !errors.Is(err, windows.ERROR_PATH_NOT_FOUND) && !errors.Is(err, windows.ERROR_FILE_NOT_FOUND) &&
		!errors.Is(err, windows.ERROR_INVALID_NAME) && !errors.Is(err, windows.ERROR_FILENAME_EXCED_RANGE) {
		return nil
	}
	rel, rerr := filepath.Rel(root, dest)
	if rerr != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil
	}
	max := maxNameLength(root)
	for _, name := range strings.Split(rel, string(filepath.Separator)) {
		if n := len(utf16.Encode([]rune(name))); n > max {
			return fmt.Errorf("the name %s is too long for the target's filesystem (%d characters, at most %d): %w", shorten(name), n, max, err)
		}
	}
	if !errors.Is(err, windows.ERROR_PATH_NOT_FOUND) {
		return nil // an invalid name is in fileErrnos; a file not found is not proven
	}
	// Walk up from dest's folder to just below root.
	for p := filepath.Dir(dest); ; p = filepath.Dir(p) {
		if r, rerr := filepath.Rel(root, p); rerr != nil || r == "." || strings.HasPrefix(r, "..") {
			return nil
		}
		if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode().IsRegular() {
			return fmt.Errorf("%s is a file, not a directory: %w", p, err)
		}
	}
}

// maxNameLength is the longest name, in UTF-16 units, the filesystem
// holding root takes: what its volume says, or 255 (NTFS, exFAT, FAT32's
// long names, ReFS and SMB shares) when it cannot be asked.
func maxNameLength(root string) int {
	abs, err := filepath.Abs(root)
	if err != nil {
		return 255
	}
	p, err := windows.UTF16PtrFromString(abs)
	if err != nil {
		return 255
	}
	vol := make([]uint16, windows.MAX_PATH+1)
	if windows.GetVolumePathName(p, &vol[0], uint32(len(vol))) != nil {
		return 255
	}
	var max, flags uint32
	if windows.GetVolumeInformation(&vol[0], nil, 0, nil, &max, &flags, nil, 0) != nil || max == 0 {
		return 255
	}
	return int(max)
}

// shorten quotes a name, cut to its first 40 characters.
func shorten(name string) string {
	if r := []rune(name); len(r) > 40 {
		return fmt.Sprintf("%q…", string(r[:40]))
	}
	return fmt.Sprintf("%q", name)
}
