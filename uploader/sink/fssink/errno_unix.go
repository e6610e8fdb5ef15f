//go:build !windows

package fssink

import "syscall"

// fileErrnos are the errors that say one destination path cannot be written
// (a file where a folder is needed, a folder where a file is, a name the
// target's filesystem does not take): permanent for that file, and no sign
// that the target is unwell.
var fileErrnos = []error{
	syscall.ENOTDIR,      // a path component is a file
	syscall.EISDIR,       // the object's path is a folder
	syscall.ENAMETOOLONG, // a component or the path is too long
	syscall.EINVAL,       // a name the filesystem refuses
	syscall.EILSEQ,       // a name not in the filesystem's encoding
	syscall.ELOOP,        // a symbolic link loop on the path
	syscall.ENOTEMPTY,    // a non-empty folder where the object goes
	syscall.EEXIST,       // (from rename) a folder where the object goes
}

// destReason says why err, met writing dest (a path under root), is about
// dest alone when the errno alone does not say it. Here the errnos do
// (fileErrnos), so there is nothing to look at.
func destReason(root, dest string, err error) error { return nil }
