//go:build !windows

package watcher

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/ferry-data/ferry/internal/srcfile"
)

const caseInsensitive = false

func watchLimitHint(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "the inotify watch limit is reached: raise the sysctl fs.inotify.max_user_watches"
	case errors.Is(err, syscall.EMFILE):
		return "the inotify instance limit is reached: raise the sysctl fs.inotify.max_user_instances"
	}
	return ""
}

// watchLimit reports whether adding a watch failed because the user's
// inotify watches are used up (fs.inotify.max_user_watches).
func watchLimit(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// listingHasID: a listing's lstat gives the identity (st_dev, st_ino).
const listingHasID = true

// quickStat is a listed file's version from its FileInfo (lstat), with
// its identity.
func quickStat(fi fs.FileInfo) (srcfile.Stat, bool) {
	s := srcfile.Stat{Size: fi.Size(), ModTime: fi.ModTime()}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return s, false
	}
	s.ID = srcfile.ID{Volume: uint64(st.Dev), Index: uint64(st.Ino)}
	return s, true
}

// device is the device a folder is on (st_dev).
func device(fi fs.FileInfo) (uint64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return uint64(st.Dev), true
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }
