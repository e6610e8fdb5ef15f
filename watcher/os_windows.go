//go:build windows

package watcher

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/ferry-data/ferry/internal/srcfile"
)

const caseInsensitive = true

func watchLimitHint(error) string { return "" }

// watchLimit: Windows has no per-user limit of watches.
func watchLimit(error) bool { return false }

// listingHasID: a listing (FindNextFile) gives size and mtime, not the identity.
const listingHasID = false

// quickStat is a listed file's size and mtime, from the listing
// (FindNextFile); its identity needs a handle, so it is not known here.
func quickStat(fi fs.FileInfo) (srcfile.Stat, bool) {
	return srcfile.Stat{Size: fi.Size(), ModTime: fi.ModTime()}, false
}

// device: Windows has no cheap device number of a folder here; an
// unmounted share's left-over folder is not told from an empty one.
func device(fs.FileInfo) (uint64, bool) { return 0, false }

func isNotDir(err error) bool {
	return errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ERROR_PATH_NOT_FOUND)
}
