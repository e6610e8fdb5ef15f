//go:build windows

package fssink

import "syscall"

// fileErrnos are the errors that say one destination path cannot be written
// (a file where a folder is needed, a folder where a file is, a name the
// target's filesystem does not take): permanent for that file, and no sign
// that the target is unwell.
var fileErrnos = []error{
	syscall.Errno(123), // ERROR_INVALID_NAME
	syscall.Errno(161), // ERROR_BAD_PATHNAME
	syscall.Errno(206), // ERROR_FILENAME_EXCED_RANGE
	syscall.Errno(267), // ERROR_DIRECTORY (a path component is not a folder)
	syscall.Errno(145), // ERROR_DIR_NOT_EMPTY
	syscall.ENOTDIR,
	syscall.EISDIR,
}
