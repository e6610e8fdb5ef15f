//go:build windows

package fssink

// syncDir is a no-op on Windows: NTFS journals renames (MoveFileEx), and a
// directory handle cannot be flushed with FlushFileBuffers without
// backup privileges.
func syncDir(dir string) error { return nil }
