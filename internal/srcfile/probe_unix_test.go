//go:build !windows

package srcfile

// probeWhileWriting: Unix has no mandatory locks; a file being written can
// be read, and settling relies on the quiet period alone.
func probeWhileWriting(p string) error { return ProbeReadable(p) }
