package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferry-data/ferry/watcher"
)

// A watch's mode and poll interval (issue 14: network shares): how the
// watch learns of changes. "auto" (the default) polls on network
// filesystems (NFS, SMB/CIFS, FUSE, 9p, AFS...; on Windows a remote
// drive or a UNC path) and uses filesystem events elsewhere; "events" and
// "poll" force one. poll_interval is the period of a polling watch's
// rounds (also of a watch that falls back to polling when the inotify
// watch limit is reached).

// Bounds of poll_interval: a round walks and stats the whole tree, so
// below a second it would keep a core busy on a large one; above an hour
// a file would wait longer for its first look than any instrument run
// between two checks.
const (
	minPollInterval = time.Second
	maxPollInterval = time.Hour
)

// validateMode checks mode and poll_interval of a [[watch]].
func (w *WatchConfig) validateMode(v *checker, tbl string, line func(string) int, written func(string) bool) {
	if w.Mode == "" {
		if written("mode") {
			v.bad(line("mode"), tbl+".mode", "must be one of %s (got an empty string; leave the key out for auto)", modeNames())
		}
		w.Mode = string(watcher.ModeAuto)
	} else if !slices.Contains(watcher.Modes, watcher.Mode(w.Mode)) {
		v.bad(line("mode"), tbl+".mode", "must be one of %s (got %q)", modeNames(), w.Mode)
	}
	switch {
	case w.PollInterval == 0 && written("poll_interval"):
		v.bad(line("poll_interval"), tbl+".poll_interval", "must be between %s and %s (got 0; leave the key out for the default, %s)", minPollInterval, maxPollInterval, watcher.DefaultPollInterval)
	case w.PollInterval == 0:
		w.PollInterval = Duration(watcher.DefaultPollInterval)
	case w.PollInterval < Duration(minPollInterval) || w.PollInterval > Duration(maxPollInterval):
		v.bad(line("poll_interval"), tbl+".poll_interval", "must be between %s and %s (got %s)", minPollInterval, maxPollInterval, time.Duration(w.PollInterval))
	}
}

func modeNames() string {
	var q []string
	for _, m := range watcher.Modes {
		q = append(q, fmt.Sprintf("%q", m))
	}
	return strings.Join(q, ", ")
}

// ModeOf is how the watch will learn of changes, decided as the daemon
// does when the folder is up (watcher.ChooseMode), with the reason and
// the folder's filesystem; for a folder not there now, the filesystem is
// "unknown" and the decision waits for it.
func (w WatchConfig) ModeOf() (mode watcher.Mode, why string, fs string, known bool) {
	fsi, err := watcher.DetectFS(w.Path)
	if err != nil {
		return watcher.Mode(w.Mode), "decided when the folder is there (" + unwrapPath(err).Error() + ")", "unknown", false
	}
	mode, why = watcher.ChooseMode(watcher.Mode(w.Mode), fsi)
	return mode, why, fsi.String(), true
}
