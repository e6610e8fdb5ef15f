//go:build windows

package config

import "io/fs"

// credentialsFileOpen: on Windows, access is an ACL, which an
// administrator restricts to the service's account with icacls (README,
// "Credentials"); the file mode says nothing about it.
func credentialsFileOpen(path string, fi fs.FileInfo) string { return "" }
