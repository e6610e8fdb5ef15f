package watcher

import (
	"fmt"
	"time"
)

// How a watch learns of changes: filesystem events (inotify on Linux,
// ReadDirectoryChangesW on Windows) plus a rescan now and then, or polling
// alone. Events are cheap and immediate, but they only report what passes
// through this machine's kernel: on a network share (NFS, SMB/CIFS, a
// FUSE filesystem such as sshfs, a virtual machine's 9p share) the
// instrument writes on another machine and no event arrives. Polling walks
// the tree every poll interval and compares each file's (size, mtime,
// identity) with the previous round, kept in memory: only what changed,
// appeared or went away reaches the settle machinery, and the journal is
// asked only about files that changed. Under polling the watch holds no
// event watch at all (no inotify watch), so a tree of millions of folders
// cannot exhaust fs.inotify.max_user_watches.
//
// ModeAuto decides per watch when its folder comes up: polling on a
// network filesystem (ChooseMode), events elsewhere. A watch in events
// mode that runs out of inotify watches (ENOSPC: the sysctl
// fs.inotify.max_user_watches) falls back to polling, and says so in the
// log and in Health.

// Mode is a watch's configured way of learning of changes.
type Mode string

// The modes (the config's mode key).
const (
	ModeAuto   Mode = "auto"   // poll on network filesystems, events elsewhere
	ModeEvents Mode = "events" // filesystem events plus rescans
	ModePoll   Mode = "poll"   // walk and compare every poll interval; no event watches
)

// Modes are the valid modes, in the order documentation lists them.
var Modes = []Mode{ModeAuto, ModeEvents, ModePoll}

// DefaultPollInterval is the poll interval when Options.PollInterval is 0.
const DefaultPollInterval = 10 * time.Second

// FSInfo is what is known of the filesystem a folder is on.
type FSInfo struct {
	// Name is the filesystem's type as the system names it ("ext4",
	// "nfs", "cifs", "fuse.sshfs"; on Windows "local drive", "remote
	// drive", "UNC share"), or "unknown".
	Name string
	// Remote: a network (or otherwise foreign) filesystem, where writers
	// on other machines send no events here.
	Remote bool
	// Unsure: the type does not say whether it is remote (FUSE other than
	// fuseblk): treated as remote, since polling sees every change and
	// events only those made through this machine.
	Unsure bool
}

func (f FSInfo) String() string {
	if f.Name == "" {
		return "unknown"
	}
	return f.Name
}

// ChooseMode decides a watch's mode from its configured mode and its
// folder's filesystem: poll for ModePoll, events for ModeEvents; for
// ModeAuto, poll on a remote (or unsure) filesystem, events elsewhere. It
// returns the mode chosen (ModeEvents or ModePoll) and why, for the log and
// config check.
func ChooseMode(m Mode, fs FSInfo) (Mode, string) {
	switch m {
	case ModeEvents:
		if fs.Remote {
			return ModeEvents, fmt.Sprintf("as configured, although %s is a network filesystem: changes made on other machines send no events, only rescans find them", fs)
		}
		return ModeEvents, "as configured"
	case ModePoll:
		return ModePoll, "as configured"
	}
	switch {
	case fs.Unsure:
		return ModePoll, fmt.Sprintf("%s may be a network filesystem (FUSE); set mode = \"events\" for a local one", fs)
	case fs.Remote:
		return ModePoll, fmt.Sprintf("%s is a network filesystem", fs)
	}
	return ModeEvents, fmt.Sprintf("%s is a local filesystem", fs)
}

// DetectFS says which filesystem path is on (statfs on Linux, the drive
// type or a UNC path on Windows).
func DetectFS(path string) (FSInfo, error) { return detectFS(path) }

// chooseMode decides the watch's mode as its folder comes up (its
// filesystem may differ from the last time: a share mounted on the mount
// point), switches to it, and logs the filesystem and the mode when they
// changed. A single pass (Once) neither polls nor logs.
func (s *state) chooseMode() {
	if s.once {
		return
	}
	fsi, err := s.detectFS(s.real)
	mode, why := ChooseMode(s.o.Mode, fsi)
	if s.fallback != "" && mode == ModeEvents {
		mode, why = ModePoll, s.fallback
	}
	if s.src == nil && mode == ModeEvents {
		mode, why = ModePoll, "filesystem events are unavailable"
	}
	s.setPolling(mode == ModePoll)
	s.setHealth(func(h *Health) { h.Mode, h.ModeReason, h.FS = mode, why, fsi.String() })
	if said := fsi.String() + "/" + string(mode) + "/" + why; said != s.modeSaid {
		s.modeSaid = said
		args := []any{"fs", fsi.String(), "mode", string(mode), "configured", string(s.o.Mode), "reason", why}
		if mode == ModePoll {
			args = append(args, "poll_interval", s.o.PollInterval.String())
		}
		if err != nil {
			args = append(args, "fs_error", errText(err))
		}
		s.log.Info("watch mode", args...)
	}
}

// setPolling switches between events and polling. Polling drops every
// event watch of the watch (none is held while it polls) and starts with
// an empty snapshot: its first round asks the journal about every file.
func (s *state) setPolling(on bool) {
	if on == s.polling {
		return
	}
	s.polling = on
	if !on {
		s.snap = nil
		return
	}
	s.snap = newSnapshot()
	s.unwatch()
	s.stopAncestor()
	s.degraded = false
}

// fallBack makes a watch in events mode poll because the system's limit
// of event watches is reached (Linux: ENOSPC from inotify_add_watch, the
// sysctl fs.inotify.max_user_watches), until ferry restarts. The watches
// it held are given back, for the other watches.
func (s *state) fallBack(dir string, err error) {
	hint := watchLimitHint(err)
	s.fallback = hint
	s.log.Error("cannot watch folder for events: "+hint+"; this watch polls instead", "path", dir, "error", err.Error(), "poll_interval", s.o.PollInterval.String())
	s.setPolling(true)
	s.setHealth(func(h *Health) { h.Mode, h.ModeReason = ModePoll, s.fallback })
	s.modeSaid = ""
}
