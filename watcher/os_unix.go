//go:build !windows

package watcher

import (
	"errors"
	"syscall"
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
