//go:build !linux && !windows

package srcfile

// SharingProbe: no way to tell here whether a writer holds a file open.
const SharingProbe = false
