//go:build !linux && !windows

package watcher

// detectFS: no filesystem detection on this system; auto uses events.
func detectFS(string) (FSInfo, error) { return FSInfo{Name: "unknown"}, nil }
