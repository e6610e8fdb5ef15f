//go:build windows

package watcher

import (
	"errors"
	"io/fs"
	"syscall"
)

const caseInsensitive = true

func watchLimitHint(error) string { return "" }

// watchLimit: Windows has no per-user limit of watches.
func watchLimit(error) bool { return false }

// device: Windows has no cheap device number of a folder here; an
// unmounted share's left-over folder is not told from an empty one.
func device(fs.FileInfo) (uint64, bool) { return 0, false }

func isNotDir(err error) bool {
	return errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ERROR_PATH_NOT_FOUND)
}
