package watcher

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A watch's root is a state, not a precondition: it may be missing at
// start, deleted, renamed or unmounted while ferry runs, and come back. A
// root that is not there is "down": logged once, shown by Health, and
// looked for again every RootPoll and at every event of its nearest
// existing ancestor folder (watched while the root is down), so that it
// resumes within seconds of coming back, with its folders watched again
// and a walk at once. The other watches are not affected.
//
// A symlinked root is followed: the folder walked and watched is the root
// with its symlinks resolved, looked up again at every check (a link
// pointed elsewhere is a replaced root). Inside the tree, symlinks are
// never followed.
//
// An unmounted share can leave its mount point behind as an empty folder.
// On Unix, a root seen once as a mount point (on another device than its
// parent folder) is down while it sits on its parent's device again. A
// root that was never seen mounted (ferry started while the share was
// not) cannot be told from an empty folder; on Windows there is no such
// check.

// RootPoll is how often a watch looks at its root: whether it is still
// there (and the same folder), or, while it is down, whether it is back.
// Polling covers what sends no event: unmounts, shares, a symlink
// retargeted.
const RootPoll = 2 * time.Second

// Reasons a root is down (Health.Reason starts with one of these).
const (
	DownMissing   = "missing"      // not there (deleted, renamed, never made)
	DownNotFolder = "not a folder" // something else is at the path
	DownUnmounted = "unmounted"    // an empty mount point left by a share
	DownUnusable  = "unreadable"   // there, but cannot be looked at
)

// rootLook is one look at the root.
type rootLook struct {
	real string      // the root with symlinks resolved
	info fs.FileInfo // of real, when up
	// dev, pdev: the devices of real and of its parent folder (Unix);
	// devOK when both are known.
	dev, pdev uint64
	devOK     bool
	down      string // why the root is not usable now ("" when it is)
}

// lookRoot looks at the root once.
func (w *Watcher) lookRoot() rootLook {
	real, err := filepath.EvalSymlinks(w.root)
	if err != nil {
		// Some volumes (Windows shares, folders mounted without a drive
		// letter) cannot be resolved: a folder there is used as it is.
		fi, serr := os.Stat(w.root)
		if serr != nil || !fi.IsDir() || errors.Is(err, fs.ErrNotExist) {
			return rootLook{down: downReason(err)}
		}
		real = w.root
	}
	fi, err := os.Stat(real)
	if err != nil {
		return rootLook{real: real, down: downReason(err)}
	}
	if !fi.IsDir() {
		return rootLook{real: real, down: DownNotFolder}
	}
	// On Windows os.Stat may leave the folder's identity to be read from
	// its path at the first os.SameFile: read it now, while the path
	// names this folder, not whatever is there at the next look.
	os.SameFile(fi, fi)
	l := rootLook{real: real, info: fi}
	if dev, ok := device(fi); ok {
		if pfi, err := os.Stat(filepath.Dir(real)); err == nil && filepath.Dir(real) != real {
			if pdev, ok := device(pfi); ok {
				l.dev, l.pdev, l.devOK = dev, pdev, true
			}
		}
	}
	return l
}

// downReason says why a stat of the root failed.
func downReason(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return DownMissing
	case isNotDir(err):
		// A file where a folder of the path should be.
		return DownMissing + " (" + unwrapPathErr(err).Error() + ")"
	}
	return DownUnusable + ": " + unwrapPathErr(err).Error()
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// MountCheck decides about a root from its device and its parent's: mounted
// says whether the root was seen as a mount point before (on another
// device than its parent). A root seen mounted that sits on its parent's
// device again is a share unmounted under it: not usable. It returns
// whether the root is usable and the new value of mounted.
func MountCheck(mounted bool, dev, pdev uint64) (usable, nowMounted bool) {
	if dev != pdev {
		return true, true
	}
	return !mounted, mounted
}

// ancestor is the nearest existing folder above path ("" when none).
func ancestor(path string) string {
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		if filepath.Dir(p) == p {
			return ""
		}
	}
}

// within reports whether path is dir or under it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}
