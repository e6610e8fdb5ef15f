//go:build !windows

package config

import (
	"fmt"
	"io/fs"
)

// credentialsFileOpen refuses a credentials file that every user may read
// (mode o+r), with the fix.
func credentialsFileOpen(path string, fi fs.FileInfo) string {
	if fi.Mode().Perm()&0o004 != 0 {
		return fmt.Sprintf("%s is readable by every user (mode %04o): restrict it, such as: chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return ""
}
