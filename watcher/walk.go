package watcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Every entry of the tree that a watch does not take has a reason, which
// the walk counts (Health.Skipped) and logs once per entry: a symlink (not
// followed), a special file (FIFO, socket, device), a folder that cannot be
// read. Entries the include and exclude globs leave out, ferry's own files
// (Ignore) and, without Recursive, subfolders are not taken by request and
// are not counted.

// SkipReason is why an entry of the tree was not taken.
type SkipReason string

// The reasons.
const (
	SkipSymlink    SkipReason = "symlink"    // symlinks are not followed inside the tree
	SkipSpecial    SkipReason = "special"    // a FIFO, socket or device
	SkipUnreadable SkipReason = "unreadable" // a folder that cannot be listed
)

// SkipReasons are every reason, in the order status shows them.
var SkipReasons = []SkipReason{SkipSymlink, SkipSpecial, SkipUnreadable}

// maxSkipsLogged bounds the entries whose skip is remembered (so that each
// is logged once, not at every walk); past it, a walk logs how many more
// it skipped.
const maxSkipsLogged = 10_000

// MaxUnreadableListed bounds Health.Unreadable.
const MaxUnreadableListed = 100

// Unreadable is a folder a walk could not list.
type Unreadable struct {
	Path  string `json:"path"` // relative to the root, slash-separated
	Error string `json:"error"`
}

// Health is what a watch knows of its folder now.
type Health struct {
	Root string // the configured root
	// Resolved is the folder walked: Root with its symlinks resolved
	// (Root itself when it is no symlink); the last known while down.
	Resolved string
	Up       bool
	Since    time.Time // when Up last changed (or the first look)
	Reason   string    // why it is down ("" when up)
	// Skipped counts the entries not taken, by reason, as of the last
	// complete walk plus the folders found since.
	Skipped map[SkipReason]int
	// Unreadable are the folders the last walk could not list (at most
	// MaxUnreadableListed; Skipped[SkipUnreadable] counts them all).
	Unreadable []Unreadable
	LastWalk   time.Time // when the last complete walk ended (zero: none yet)
	// Mode is how the watch learns of changes now (ModeEvents or
	// ModePoll; "" before its folder was first up), ModeReason why (the
	// configured mode, the filesystem, or a fallback: the inotify watch
	// limit), FS the folder's filesystem (DetectFS).
	Mode       Mode
	ModeReason string
	FS         string
}

// Health is the watch's current state.
func (w *Watcher) Health() Health {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.health
	h.Skipped = maps.Clone(h.Skipped)
	h.Unreadable = slices.Clone(h.Unreadable)
	return h
}

func (w *Watcher) setHealth(f func(h *Health)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(&w.health)
}

// visitor is what a walk does with what it finds.
type visitor struct {
	onDir  func(dir string)                            // a folder, before it is listed (nil: nothing)
	onList func(dir string, entries []fs.DirEntry)     // a folder's listing, read in full (nil: nothing)
	onFile func(rel, path string, e fs.DirEntry) error // a regular file taken
	onSkip func(rel string, r SkipReason, err error)   // an entry not taken (nil: nothing)
}

// rootError is the failure to list the root a walk started at.
type rootError struct {
	root string
	err  error
}

func (e *rootError) Error() string {
	return "cannot list the watch folder " + e.root + ": " + errText(e.err)
}
func (e *rootError) Unwrap() error { return e.err }

// list walks dir, a folder under the resolved root real, with the watch's
// filters, watching (onDir) each folder before listing it.
func (w *Watcher) list(ctx context.Context, real, dir string, v visitor) error {
	err := w.listDir(ctx, real, dir, v, true)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (w *Watcher) listDir(ctx context.Context, real, dir string, v visitor, first bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if v.onDir != nil {
		v.onDir(dir)
	}
	entries, err := w.readDir(dir)
	if err != nil {
		if first && dir == real {
			return &rootError{root: w.root, err: err}
		}
		if errors.Is(err, fs.ErrNotExist) && len(entries) == 0 {
			return nil // gone meanwhile: nothing to take, nothing skipped
		}
		if v.onSkip != nil {
			rel, _ := relTo(real, dir)
			v.onSkip(rel, SkipUnreadable, err)
		}
	} else if v.onList != nil {
		v.onList(dir, entries)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if w.ignored(real, path) {
			continue
		}
		rel, ok := relTo(real, path)
		if !ok {
			continue
		}
		t := e.Type()
		switch {
		case t.IsDir():
			if !w.o.Recursive {
				continue
			}
			if err := w.listDir(ctx, real, path, v, false); err != nil {
				return err
			}
		case t.IsRegular():
			if !Match(rel, w.o.Include, w.o.Exclude) {
				continue
			}
			if err := v.onFile(rel, path, e); err != nil {
				return err
			}
		default:
			if !Match(rel, w.o.Include, w.o.Exclude) {
				continue
			}
			if v.onSkip != nil {
				v.onSkip(rel, skipReasonOf(t), nil)
			}
		}
	}
	return nil
}

// skipReasonOf is the reason an entry of type t is not taken.
func skipReasonOf(t fs.FileMode) SkipReason {
	if t&fs.ModeSymlink != 0 {
		return SkipSymlink
	}
	return SkipSpecial
}

// kind names a special file for the log.
func kind(t fs.FileMode) string {
	switch {
	case t&fs.ModeNamedPipe != 0:
		return "FIFO"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0:
		return "device"
	case t&fs.ModeSymlink != 0:
		return "symlink"
	case t&fs.ModeIrregular != 0:
		return "irregular file"
	}
	return "special file"
}

// relTo is path relative to base, slash-separated; false for base itself
// and paths outside it.
func relTo(base, path string) (string, bool) {
	r, err := filepath.Rel(base, path)
	if err != nil || r == "." || r == ".." || len(r) > 2 && r[:3] == ".."+string(filepath.Separator) {
		return "", false
	}
	return filepath.ToSlash(r), true
}

// skips is what the walks of one run found not taken: the entries
// remembered (each logged once), and the counts and unreadable folders
// that Health shows.
type skips struct {
	seen map[string]SkipReason // by relative path (at most maxSkipsLogged)
	// the walk in progress (a complete one replaces what Health shows)
	next       map[string]SkipReason
	counts     map[SkipReason]int
	unreadable []Unreadable
	unlogged   int // skips past maxSkipsLogged in this walk
}

// skip records an entry not taken by a walk (complete, or of a new folder)
// or an event, and logs it if it is new.
func (s *state) skip(rel string, r SkipReason, err error, complete bool) {
	sk := &s.skips
	_, known := sk.seen[rel]
	if complete {
		sk.counts[r]++
		if r == SkipUnreadable && len(sk.unreadable) < MaxUnreadableListed {
			sk.unreadable = append(sk.unreadable, Unreadable{Path: rel, Error: errText(err)})
		}
		if len(sk.next) < maxSkipsLogged {
			sk.next[rel] = r
		} else if !known {
			sk.unlogged++
			return
		}
	} else if !known {
		// Found since the last complete walk: shown at once.
		s.setHealth(func(h *Health) {
			if h.Skipped == nil {
				h.Skipped = map[SkipReason]int{}
			}
			h.Skipped[r]++
			if r == SkipUnreadable && len(h.Unreadable) < MaxUnreadableListed {
				h.Unreadable = append(h.Unreadable, Unreadable{Path: rel, Error: errText(err)})
			}
		})
		if len(sk.seen) < maxSkipsLogged {
			sk.seen[rel] = r
		}
	}
	if known {
		return
	}
	switch r {
	case SkipUnreadable:
		s.log.Error("cannot read folder: its files are not taken", "path", rel, "reason", string(r), "error", errText(err))
	case SkipSymlink:
		s.log.Warn("not taken: symlinks inside a watch are not followed", "path", rel, "reason", string(r))
	default:
		s.log.Warn("not taken: not a regular file", "path", rel, "reason", string(r), "kind", s.kindOf(rel))
	}
}

func (s *state) kindOf(rel string) string {
	fi, err := os.Lstat(filepath.Join(s.real, filepath.FromSlash(rel)))
	if err != nil {
		return "special file"
	}
	return kind(fi.Mode().Type())
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return unwrapPathErr(err).Error()
}

// beginWalk starts a complete walk's tally.
func (s *state) beginWalk() {
	s.skips.next = map[string]SkipReason{}
	s.skips.counts = map[SkipReason]int{}
	s.skips.unreadable = nil
	s.skips.unlogged = 0
}

// endWalk publishes a complete walk's tally.
func (s *state) endWalk() {
	sk := &s.skips
	if sk.unlogged > 0 {
		s.log.Warn("more entries not taken than are logged one by one", "not_logged", sk.unlogged, "counts", fmt.Sprint(sk.counts))
	}
	sk.seen, sk.next = sk.next, nil
	counts, unreadable := sk.counts, sk.unreadable
	now := s.o.Now()
	s.setHealth(func(h *Health) {
		h.Skipped, h.Unreadable, h.LastWalk = counts, unreadable, now
	})
}
