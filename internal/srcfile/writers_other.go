//go:build !linux

package srcfile

// OpenWriters: not available here (Windows has the sharing probe, which
// ProbeReadable uses; other systems neither).
func OpenWriters() (Writers, error) { return Writers{}, nil }
