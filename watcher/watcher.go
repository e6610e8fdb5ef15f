// Package watcher turns filesystem activity under a folder into settled
// files: files whose size, modification time and identity have not changed
// for the settle period and that can be opened for reading.
//
// It combines fsnotify events (made recursive here: new folders are watched
// and listed, since files created before the watch existed send no events)
// with a full walk at start and every rescan interval, which finds what
// events miss: files written while ferry was down, lost events on overflow,
// network shares. The set of files waiting to settle is bounded; when it is
// full, new files are left for the next walk. Whether a file is settled is
// decided by Settle, a pure function of what was observed, a fresh stat, the
// time and the watch's Policy; the loop gathers its inputs and follows it.
//
// The watcher knows nothing of journals or uploads: it reports each settled
// file version to a callback, and asks an optional Known callback whether a
// version found by a walk was already reported in an earlier life.
package watcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/fsnotify/fsnotify"

	"github.com/ferry-data/ferry/internal/defaults"
	"github.com/ferry-data/ferry/internal/srcfile"
)

// Defaults for Options' zero values.
const (
	DefaultSettle         = 30 * time.Second
	DefaultRescanInterval = 10 * time.Minute
	DefaultMaxPending     = 100_000
	// DefaultMaxOpenWait: a day. An acquisition may keep a file open for
	// hours (a time-lapse, a long run writing one file); a writer that
	// hangs holding it must not keep its data from the archive for longer
	// than that.
	DefaultMaxOpenWait = 24 * time.Hour
)

// File is a settled file version.
type File struct {
	Root    string       // absolute watch root
	RelPath string       // slash-separated path under Root
	Path    string       // absolute path
	Stat    srcfile.Stat // the version that settled
	Signal  string       // what released it: "quiet" (the settle period passed)
}

// Options configures a Watcher. Zero values mean the documented defaults.
type Options struct {
	Root           string        // folder to watch; must exist
	Settle         time.Duration // quiet period (default 30 s)
	Recursive      bool          // watch subfolders too
	Include        []string      // doublestar globs on the relative path; empty = everything
	Exclude        []string      // doublestar globs on the relative path
	RescanInterval time.Duration // full walk period (default 10 min)
	// MaxOpenWait bounds how long an unchanged file waits for a writer
	// that holds it open (Linux: no close-after-write seen since its last
	// write; Windows: the sharing probe), from its last change; then it is
	// taken as it is (signal "timeout"). Default DefaultMaxOpenWait.
	MaxOpenWait time.Duration
	MaxPending  int // bound on files waiting to settle (default 100,000)
	// Ignore lists absolute paths (files or folders) never reported, such as
	// ferry's own journal and logs when they sit inside a watched folder. An
	// entry ending in "*" matches every path that starts with the rest (for
	// rotated logs: "/var/log/ferry/ferry-*").
	Ignore []string
	// Known reports whether a version was already taken care of; a walk
	// skips such files. Nil means nothing is known. KnownBatch, when set,
	// is asked instead, about up to KnownBatchSize files at a time; a walk
	// lets events and settling run between two batches, so that a new
	// file is not held back by a rescan of a large tree.
	Known      func(ctx context.Context, f File) (bool, error)
	KnownBatch func(ctx context.Context, fs []File) ([]bool, error)
	Logger     *slog.Logger
	// Mode is how the watch learns of changes (mode.go): ModeAuto (the
	// default: polling on network filesystems, events elsewhere),
	// ModeEvents or ModePoll. PollInterval is the period of a polling
	// watch's rounds (default DefaultPollInterval).
	Mode         Mode
	PollInterval time.Duration
	// Now is the watcher's clock; nil means time.Now. Every reading of the
	// time goes through it (timers and tickers stay real timers). Its
	// readings should carry a monotonic clock reading, as time.Now's do.
	Now func() time.Time
}

// Watcher watches one folder.
type Watcher struct {
	o    Options
	root string
	log  *slog.Logger
	// readDir lists a folder (os.ReadDir; tests put failures here).
	readDir func(string) ([]fs.DirEntry, error)
	// detectFS says which filesystem a folder is on (DetectFS; tests
	// put a network filesystem here).
	detectFS func(string) (FSInfo, error)

	mu     sync.Mutex
	health Health
}

// New checks the options (the globs must be valid). The root need not
// exist: a missing root is a state of the watch (see Health), not an error.
func New(o Options) (*Watcher, error) {
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, err
	}
	for _, g := range append(append([]string(nil), o.Include...), o.Exclude...) {
		if !doublestar.ValidatePattern(g) {
			return nil, fmt.Errorf("invalid glob %q", g)
		}
	}
	defaults.Set(&o.Settle, DefaultSettle)
	defaults.Set(&o.RescanInterval, DefaultRescanInterval)
	defaults.Set(&o.MaxPending, DefaultMaxPending)
	defaults.Set(&o.MaxOpenWait, DefaultMaxOpenWait)
	if o.Mode == "" {
		o.Mode = ModeAuto
	}
	defaults.Set(&o.PollInterval, DefaultPollInterval)
	if !slices.Contains(Modes, o.Mode) {
		return nil, fmt.Errorf("invalid mode %q (auto, events or poll)", o.Mode)
	}
	o.Ignore = slices.Clone(o.Ignore)
	for i, p := range o.Ignore {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			clean := filepath.Clean(prefix)
			if strings.HasSuffix(prefix, string(filepath.Separator)) && !strings.HasSuffix(clean, string(filepath.Separator)) {
				clean += string(filepath.Separator)
			}
			o.Ignore[i] = clean + "*"
			continue
		}
		o.Ignore[i] = filepath.Clean(p)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Watcher{o: o, root: root, log: log.With("watch", root), readDir: os.ReadDir, detectFS: DetectFS, health: Health{Root: root, Resolved: root}}, nil
}

// Root is the absolute watch root.
func (w *Watcher) Root() string { return w.root }

// Emit receives settled files, in batches of at most MaxBatch, so that a
// journal can record many in one transaction. It may block (the watcher
// waits); an error stops the watcher.
type Emit func(ctx context.Context, files []File) error

// KnownBatchSize is how many files a walk asks KnownBatch about at once.
const KnownBatchSize = 500

// MaxBatch bounds the files passed to one Emit call.
const MaxBatch = 256

// Run watches until ctx ends. It returns nil on cancellation; an error
// only when emit or Known fails. A root that is missing or goes away is a
// state of the watch (Health), which Run waits out.
func (w *Watcher) Run(ctx context.Context, emit Emit) error {
	if w.o.Mode == ModePoll {
		// No event source at all: no inotify instance, no watch.
		return w.run(ctx, nil, nil, nil, emit, false)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		hint := watchLimitHint(err)
		w.log.Error("cannot start filesystem events; this watch polls instead", "error", err, "hint", hint)
		s := w.newState(nil, emit, false)
		s.fallback = "filesystem events are unavailable: " + errText(err)
		if hint != "" {
			s.fallback = "filesystem events are unavailable: " + hint
		}
		return s.loop(ctx, nil, nil)
	}
	defer fw.Close()
	return w.loop(ctx, fw, emit, false)
}

// Once takes what is in the folder now, waits for all of it to settle (or
// vanish), reports it and returns. A root that is down returns at once;
// Health says so, and which folders could not be read.
func (w *Watcher) Once(ctx context.Context, emit Emit) error {
	return w.loop(ctx, nil, emit, true)
}

// source is where events come from: fsnotify, or a fake in tests.
type source interface {
	Add(name string) error
	Remove(name string) error
	WatchList() []string
}

// tracked is a file waiting to settle.
type tracked struct {
	obs  Observation
	next time.Time // when it is worth another look (from the last Decision)
	busy bool      // a probe found it held by a writer (logged once)
}

type state struct {
	*Watcher
	src  source
	emit Emit
	once bool
	// events and errs are the event source's channels (nil: none, or
	// closed); walking counts the walks in progress (one nested in
	// another for a folder an event found while a walk yielded).
	events  <-chan fsnotify.Event
	errs    <-chan error
	walking int
	// lastSettle is when settle last looked at the pending files.
	lastSettle time.Time
	pending    map[string]*tracked // by relative path
	dropped    int                 // files not tracked because pending was full
	rescanSoon bool
	degraded   bool // events unavailable for some folders: rescan often
	// hiddenLogged: the processes whose open files cannot be inspected
	// were logged (once).
	hiddenLogged bool

	// The root (root.go): whether it is up, the folder it resolved to
	// and that folder's identity, whether it was seen as a mount point,
	// the ancestor watched while it is down, when it was last looked at,
	// and whether an event asks for a look at the next tick.
	up        bool
	looked    bool // looked at once at least
	real      string
	realInfo  fs.FileInfo
	mounted   bool
	ancestor  string
	lastLook  time.Time
	lookSoon  bool
	downSince time.Time

	skips skips

	// The mode (mode.go): whether the watch polls now (and then the
	// snapshot of its last round), why it polls when events were chosen
	// but could not be had (fallback, kept until ferry restarts), and the
	// filesystem and mode last logged.
	polling  bool
	snap     *snapshot
	fallback string
	modeSaid string
}

func (w *Watcher) newState(src source, emit Emit, once bool) *state {
	return &state{Watcher: w, src: src, emit: emit, once: once, pending: map[string]*tracked{}, real: w.root,
		skips: skips{seen: map[string]SkipReason{}}}
}

func (w *Watcher) policy() Policy { return Policy{Settle: w.o.Settle, MaxOpenWait: w.o.MaxOpenWait} }

func (w *Watcher) tick() time.Duration {
	return min(max(w.o.Settle/4, 10*time.Millisecond), time.Second)
}

func (w *Watcher) loop(ctx context.Context, fw *fsnotify.Watcher, emit Emit, once bool) error {
	var events <-chan fsnotify.Event
	var errs <-chan error
	var src source
	if fw != nil {
		events, errs, src = fw.Events, fw.Errors, fw
	}
	return w.run(ctx, src, events, errs, emit, once)
}

// run is the watcher's loop, with its event source injected.
func (w *Watcher) run(ctx context.Context, src source, events <-chan fsnotify.Event, errs <-chan error, emit Emit, once bool) error {
	return w.newState(src, emit, once).loop(ctx, events, errs)
}

func (s *state) loop(ctx context.Context, events <-chan fsnotify.Event, errs <-chan error) error {
	w, once, src := s.Watcher, s.once, s.src
	s.events, s.errs = events, errs
	if err := s.lookAtRoot(ctx); err != nil {
		return err
	}
	if s.up {
		w.log.Info("watching", "files_pending", len(s.pending), "settle", w.o.Settle.String(), "recursive", w.o.Recursive, "events", src != nil && !s.polling, "folder", s.real)
	}
	ticker := time.NewTicker(w.tick())
	defer ticker.Stop()
	lastWalk := w.o.Now()
	for {
		if once && (!s.up || len(s.pending) == 0 && !s.rescanSoon) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-s.events:
			if err := s.onEvent(ctx, ev, ok); err != nil {
				return err
			}
		case err, ok := <-s.errs:
			s.onError(err, ok)
		case <-ticker.C:
			if now := w.o.Now(); s.lookSoon || now.Sub(s.lastLook) >= RootPoll {
				wasUp := s.up
				if err := s.lookAtRoot(ctx); err != nil {
					return err
				}
				if s.up && !wasUp {
					lastWalk = w.o.Now() // lookAtRoot walked it
				}
			}
			if !s.up {
				continue
			}
			if err := s.settle(ctx); err != nil {
				return err
			}
			interval := w.o.RescanInterval
			if s.degraded {
				interval = min(interval, max(2*w.o.Settle, time.Minute))
			}
			if s.polling {
				interval = w.o.PollInterval // a round is a walk
			}
			if now := w.o.Now(); s.rescanSoon || now.Sub(lastWalk) >= interval {
				s.rescanSoon = false
				lastWalk = now
				dropped := s.dropped
				s.dropped = 0
				if err := s.walkAllOrDown(ctx); err != nil {
					return err
				}
				if dropped > 0 {
					w.log.Warn("pending set was full; files were left for this rescan", "dropped", dropped, "max_pending", w.o.MaxPending)
				}
			}
		}
	}
}

// onEvent handles what the event channel gave (ok false: it closed).
func (s *state) onEvent(ctx context.Context, ev fsnotify.Event, ok bool) error {
	if !ok {
		s.events = nil
		s.degraded = true
		return nil
	}
	return s.event(ctx, ev)
}

// onError handles what the error channel gave (ok false: it closed).
func (s *state) onError(err error, ok bool) {
	if !ok {
		s.errs = nil
		return
	}
	// Events were lost (overflow or a failing watch): walk again.
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		s.log.Warn("filesystem event queue overflowed (Linux: the sysctl fs.inotify.max_queued_events); rescanning", "error", err)
	} else {
		s.log.Warn("filesystem events lost; rescanning", "error", err)
	}
	s.rescanSoon = true
	s.lookSoon = true
}

// yield lets a long walk of an up watch (a rescan of a large tree) give
// way between two batches of journal lookups: the events that came
// meanwhile are handled and the pending files that are due settle, so a
// new file waits for one batch, not for the whole walk. A walk nested in
// another (a folder made during a walk) does not yield.
func (s *state) yield(ctx context.Context) error {
	if !s.up || s.walking > 1 {
		return nil
	}
	for range maxYieldEvents {
		select {
		case ev, ok := <-s.events:
			if err := s.onEvent(ctx, ev, ok); err != nil {
				return err
			}
			continue
		case err, ok := <-s.errs:
			s.onError(err, ok)
			continue
		default:
		}
		break
	}
	if s.o.Now().Sub(s.lastSettle) >= s.tick() {
		return s.settle(ctx)
	}
	return nil
}

// maxYieldEvents bounds the events handled in one yield, so that a burst
// of events cannot stall the walk either.
const maxYieldEvents = 1024

// lookAtRoot looks at the root and follows what it finds: a root that
// went down is logged and its watches dropped (its ancestor watched
// instead); one that came back, or was replaced by another folder (made
// again, a symlink pointed elsewhere, a share mounted), is watched and
// walked at once, and is up once that walk could list it. It fails only
// when the walk does (emit, Known).
func (s *state) lookAtRoot(ctx context.Context) error {
	now := s.o.Now()
	s.lastLook, s.lookSoon = now, false
	l := s.lookRoot()
	if l.down == "" && l.devOK {
		var usable bool
		usable, s.mounted = MountCheck(s.mounted, l.dev, l.pdev)
		if !usable {
			l.down = DownUnmounted + " (the folder is a mount point with nothing mounted on it)"
		}
	}
	first := !s.looked
	s.looked = true
	if l.down == "" {
		replaced := s.up && (l.real != s.real || !os.SameFile(l.info, s.realInfo))
		if s.up && !replaced {
			return nil // up, the same folder
		}
		if replaced {
			s.log.Warn("watch folder was replaced (made again, or its link points elsewhere now): watching the new one", "folder", l.real, "was", s.real)
			s.unwatch()
			if s.snap != nil {
				s.snap.reset()
			}
		}
		s.real, s.realInfo = l.real, l.info
		s.chooseMode()
		err := s.walkAll(ctx)
		if re := (*rootError)(nil); errors.As(err, &re) {
			l.down = downReason(re.err) // there, but cannot be listed
		} else if err != nil {
			return err
		} else {
			if !s.up && !first {
				s.log.Info("watch folder is back: watching it", "folder", l.real, "down_for", now.Sub(s.downSince).Round(time.Millisecond).String())
			}
			s.up = true
			s.stopAncestor()
			s.setHealth(func(h *Health) {
				h.Up, h.Since, h.Reason, h.Resolved = true, now, "", l.real
			})
			return nil
		}
	}
	switch {
	case s.up || first:
		s.goDown(l, now)
	case l.down != s.Health().Reason:
		// Still down, for another reason: said once.
		s.log.Warn("watch folder is still not usable, for another reason", "reason", l.down)
		s.unwatch()
		s.setHealth(func(h *Health) { h.Reason = l.down })
	default:
		s.unwatch() // what a walk that could not list it added
	}
	return nil
}

// walkAllOrDown is a rescan: a root that cannot be listed (gone or
// locked since it was looked at) makes the watch down, not the watcher
// fail.
func (s *state) walkAllOrDown(ctx context.Context) error {
	err := s.walkAll(ctx)
	if re := (*rootError)(nil); errors.As(err, &re) {
		s.goDown(rootLook{real: s.real, down: downReason(re.err)}, s.o.Now())
		return nil
	}
	return err
}

// goDown makes the watch down: logged once, its pending files and watches
// dropped, the nearest existing ancestor watched for the root's return.
func (s *state) goDown(l rootLook, now time.Time) {
	s.log.Error("watch folder is not usable: its files are not taken until it is back (looked for every "+RootPoll.String()+")", "reason", l.down)
	s.up, s.downSince = false, now
	s.pending = map[string]*tracked{}
	if s.snap != nil {
		s.snap.reset()
	}
	s.unwatch()
	if l.real != "" {
		s.real = l.real
	}
	s.setHealth(func(h *Health) {
		h.Up, h.Since, h.Reason = false, now, l.down
		if l.real != "" {
			h.Resolved = l.real
		}
	})
	s.watchAncestor()
}

// unwatch drops the event watches of the tree (the folder they were on
// is gone or replaced).
func (s *state) unwatch() {
	if s.src == nil {
		return
	}
	for _, p := range s.src.WatchList() {
		if within(p, s.real) {
			s.src.Remove(p) // a folder deleted has lost its watch already
		}
	}
}

// watchAncestor watches the nearest existing folder above the root, whose
// events say the root may be back (a folder made, renamed, mounted).
func (s *state) watchAncestor() {
	if s.src == nil || s.polling || s.ancestor != "" {
		return
	}
	a := ancestor(s.root)
	if a == "" {
		return
	}
	if err := s.src.Add(a); err != nil {
		s.log.Debug("cannot watch the folder above the watch folder; looking every "+RootPoll.String(), "folder", a, "error", err.Error())
		return
	}
	s.ancestor = a
}

func (s *state) stopAncestor() {
	if s.src == nil || s.ancestor == "" {
		return
	}
	s.src.Remove(s.ancestor)
	s.ancestor = ""
}

// ignored reports whether path (under the resolved root real) is one of
// ferry's own files, named either way: under the resolved root or under
// the configured one.
func (w *Watcher) ignored(real, path string) bool {
	if w.ignoredPath(path) {
		return true
	}
	if real != w.root {
		if rel, ok := relTo(real, path); ok {
			return w.ignoredPath(filepath.Join(w.root, filepath.FromSlash(rel)))
		}
	}
	return false
}

func (w *Watcher) ignoredPath(path string) bool {
	for _, p := range w.o.Ignore {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(path, prefix) {
				return true
			}
			continue
		}
		if path == p || strings.HasPrefix(path, p+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// Match reports whether a relative path passes the include and exclude
// globs. Matching is case-insensitive on Windows.
func Match(rel string, include, exclude []string) bool {
	return match(rel, include, exclude, caseInsensitive)
}

func match(rel string, include, exclude []string, fold bool) bool {
	if fold {
		rel = strings.ToLower(rel)
	}
	m := func(g string) bool {
		if fold {
			g = strings.ToLower(g)
		}
		ok, _ := doublestar.Match(g, rel)
		return ok
	}
	in := len(include) == 0
	for _, g := range include {
		if m(g) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, g := range exclude {
		if m(g) {
			return false
		}
	}
	return true
}

// event handles one fsnotify event.
func (s *state) event(ctx context.Context, ev fsnotify.Event) error {
	if !s.up {
		// From the ancestor (or a watch not dropped yet): the root may be
		// back. Looked at on the next tick, at most once a tick.
		s.lookSoon = true
		return nil
	}
	if within(s.real, ev.Name) {
		// The root itself (or a folder above it) deleted or renamed.
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			s.lookSoon = true
		}
		return nil
	}
	if s.ignored(s.real, ev.Name) {
		return nil
	}
	rel, ok := relTo(s.real, ev.Name)
	if !ok {
		// Named through a symlinked root (a watch added before it was
		// resolved).
		if rel, ok = relTo(s.root, ev.Name); !ok {
			return nil
		}
	}
	if ev.Has(fsnotify.Create) {
		fi, err := os.Lstat(ev.Name)
		if err == nil && fi.IsDir() {
			if s.o.Recursive {
				// Watch it, then list it: files made before the watch
				// existed send no events.
				return s.walkDir(ctx, ev.Name)
			}
			return nil
		}
		if err == nil && !fi.Mode().IsRegular() && (s.o.Recursive || !strings.Contains(rel, "/")) && Match(rel, s.o.Include, s.o.Exclude) {
			s.skip(rel, skipReasonOf(fi.Mode().Type()), nil, false)
			return nil
		}
	}
	if _, tracked := s.pending[rel]; !tracked && !s.o.Recursive && strings.Contains(rel, "/") {
		return nil
	}
	s.observe(rel, ev.Name, s.o.Now())
	return nil
}

// observe records the current version of a file that may be changing.
// It never reports a file: that is left to the ticks (settle), which probe
// for writers only when a version is due.
//
// It returns the version seen and whether it is tracked now (pending).
func (s *state) observe(rel, path string, now time.Time) (srcfile.Stat, bool) {
	st, err := srcfile.Lstat(path)
	if err != nil {
		s.forget(rel) // vanished, or not a regular file
		return st, false
	}
	if !Match(rel, s.o.Include, s.o.Exclude) {
		return st, false
	}
	f := s.pending[rel]
	if f == nil {
		if len(s.pending) >= s.o.MaxPending {
			s.dropped++
			s.rescanSoon = true
			return st, false
		}
		f = &tracked{}
		s.pending[rel] = f
	}
	if d := Settle(f.obs, Current{Stat: st}, now, s.policy()); d.Verdict == Wait {
		f.obs, f.next = d.Obs, now.Add(d.After)
	}
	// Probe: the version is unchanged and quiet; its next look stays due
	// when it was (after a writer was found holding it: a settle period
	// after that probe).
	return st, true
}

// forget stops tracking a file that was not reported (vanished, not a
// regular file): the polling snapshot forgets it too, so that a version
// coming back is looked at again.
func (s *state) forget(rel string) {
	delete(s.pending, rel)
	if s.snap != nil {
		s.snap.forget(rel)
	}
}

// settle looks at every pending file that is due and reports those that
// Settle finds settled.
func (s *state) settle(ctx context.Context) error {
	now := s.o.Now()
	s.lastSettle = now
	pol := s.policy()
	var batch []File
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.emit(ctx, batch)
		batch = batch[:0]
		if err != nil && ctx.Err() != nil {
			return nil
		}
		return err
	}
	var writers *srcfile.Writers // asked once per pass, when a file is due
	for rel, f := range s.pending {
		if now.Before(f.next) {
			continue
		}
		path := filepath.Join(s.real, filepath.FromSlash(rel))
		st, err := srcfile.Lstat(path)
		cur := Current{Stat: st, Err: err}
		d := Settle(f.obs, cur, now, pol)
		if d.Verdict == Probe {
			cur.Writer, cur.Probe = s.probeWriter(path, cur.Stat, &writers)
			d = Settle(f.obs, cur, now, pol)
		}
		switch d.Verdict {
		case Forget:
			s.forget(rel)
		case Wait:
			if cur.Writer == WriterHolds && !f.busy {
				s.log.Info("file is still held open by a writer; waiting", "path", rel)
				f.busy = true
			}
			f.obs, f.next = d.Obs, now.Add(d.After)
		case Settled:
			if d.Signal == SignalTimeout {
				s.log.Warn("file still held open by a writer after max_open_wait; taken as it is", "path", rel, "max_open_wait", pol.MaxOpenWait.String())
			}
			delete(s.pending, rel)
			batch = append(batch, File{Root: s.root, RelPath: rel, Path: s.path(rel), Stat: d.Obs.Stat, Signal: string(d.Signal)})
			if len(batch) == MaxBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// probeWriter asks whether a writer holds path open, and which probe could
// tell ("" when none). On Windows the sharing probe says so; on Linux the
// files open for writing by other processes (/proc: srcfile.OpenWriters,
// read once per pass into *ws). An unreadable file is reported too, and
// the uploader records why it failed, where a person will see it.
func (s *state) probeWriter(path string, st srcfile.Stat, ws **srcfile.Writers) (Writer, Signal) {
	err := srcfile.ProbeReadable(path)
	if errors.Is(err, srcfile.ErrBusy) {
		return WriterHolds, SignalLock
	}
	if err == nil && srcfile.SharingProbe {
		return WriterNone, SignalLock
	}
	if *ws == nil {
		w, err := srcfile.OpenWriters()
		*ws = &w
		if err == nil && w.Hidden > 0 && !s.hiddenLogged {
			s.hiddenLogged = true
			s.log.Warn("some processes' open files cannot be inspected: a writer among them is not seen, and its files settle on the quiet period alone (run ferry as root to see every writer)", "processes", w.Hidden)
		}
	}
	if (*ws).Supported {
		if (*ws).Holds(st.ID) {
			return WriterHolds, SignalClose
		}
		return WriterNone, SignalClose
	}
	return WriterNone, ""
}

// path is a file's path under the configured root (through a symlinked
// root, not around it).
func (w *Watcher) path(rel string) string { return filepath.Join(w.root, filepath.FromSlash(rel)) }

// walkAll walks the whole tree, watching each folder before listing it,
// observes every file not already known, and publishes what it did not
// take (Health).
func (s *state) walkAll(ctx context.Context) error {
	s.beginWalk()
	snap := s.snap
	if snap != nil {
		snap.begin()
	}
	err := s.walkFrom(ctx, s.real, true)
	if err != nil {
		s.skips.next = nil
		return err
	}
	if snap != nil && snap == s.snap {
		snap.end()
	}
	s.endWalk()
	return nil
}

// walkDir walks a folder found by an event (made, or moved in).
func (s *state) walkDir(ctx context.Context, dir string) error {
	return s.walkFrom(ctx, dir, false)
}

func (s *state) walkFrom(ctx context.Context, dir string, complete bool) error {
	s.walking++
	defer func() { s.walking-- }()
	// Files to ask the journal about, in batches (KnownBatch), between
	// which the walk yields.
	var batch []File
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		known, err := s.o.KnownBatch(ctx, batch)
		if err != nil {
			return fmt.Errorf("watch %s: %w", s.root, err)
		}
		if len(known) != len(batch) {
			return fmt.Errorf("watch %s: %d answers about %d files", s.root, len(known), len(batch))
		}
		now := s.o.Now()
		for i, f := range batch {
			s.taken(f.RelPath, filepath.Join(s.real, filepath.FromSlash(f.RelPath)), f.Stat, known[i], now)
		}
		batch = batch[:0]
		return s.yield(ctx)
	}
	asks := s.o.Known != nil || s.o.KnownBatch != nil
	err := s.list(ctx, s.real, dir, visitor{
		onDir: s.watch,
		onList: func(dir string, entries []fs.DirEntry) {
			if s.snap == nil {
				return
			}
			rel, ok := relTo(s.real, dir)
			if !ok && dir != s.real {
				return
			}
			s.snap.listed(rel, entries)
		},
		onSkip: func(rel string, r SkipReason, err error) {
			s.skip(rel, r, err, complete)
		},
		onFile: func(rel, path string, e fs.DirEntry) error {
			_, tracked := s.pending[rel]
			if tracked || !asks && s.snap == nil {
				s.taken(rel, path, srcfile.Stat{}, false, s.o.Now())
				return nil
			}
			if s.snap != nil && s.snap.sameEntry(rel, e) {
				return nil // polling: unchanged since the last round
			}
			st, err := srcfile.Lstat(path)
			if err != nil {
				return nil
			}
			if s.snap != nil && s.snap.same(rel, st) {
				return nil // polling: unchanged since the last round
			}
			f := File{Root: s.root, RelPath: rel, Path: s.path(rel), Stat: st}
			switch {
			case s.o.KnownBatch != nil:
				batch = append(batch, f)
				if len(batch) == KnownBatchSize {
					return flush()
				}
				return nil
			case s.o.Known != nil:
				known, err := s.o.Known(ctx, f)
				if err != nil {
					return fmt.Errorf("watch %s: %w", s.root, err)
				}
				s.taken(rel, path, st, known, s.o.Now())
				return nil
			}
			s.taken(rel, path, st, false, s.o.Now())
			return nil
		},
	})
	if err == nil {
		err = flush()
	}
	if err != nil && ctx.Err() != nil {
		return nil // stopping: the lookups were cut short
	}
	return err
}

// taken follows a walk's answer about a file at st: a known version is
// left alone (remembered by a polling snapshot), any other observed.
func (s *state) taken(rel, path string, st srcfile.Stat, known bool, now time.Time) {
	if known {
		if s.snap != nil {
			s.snap.put(rel, st)
		}
		return
	}
	if st, ok := s.observe(rel, path, now); ok && s.snap != nil {
		s.snap.put(rel, st)
	}
}

// Walk calls fn for every file the watch takes that is in the folder now
// (included, not excluded, not ignored, regular: symlinks inside the tree
// are not followed; a symlinked root is), without waiting for anything to
// settle. It is for tools that need the watch's view of the folder, such
// as a journal rebuild. A folder that cannot be read is logged and left
// out.
func (w *Watcher) Walk(ctx context.Context, fn func(File) error) error {
	l := w.lookRoot()
	if l.down != "" {
		return fmt.Errorf("watch path %s: %s", w.root, l.down)
	}
	return w.list(ctx, l.real, l.real, visitor{
		onSkip: func(rel string, r SkipReason, err error) {
			if r == SkipUnreadable {
				w.log.Warn("cannot read folder", "path", rel, "error", errText(err))
			}
		},
		onFile: func(rel, path string, _ fs.DirEntry) error {
			st, err := srcfile.Lstat(path)
			if err != nil {
				return nil // vanished meanwhile
			}
			return fn(File{Root: w.root, RelPath: rel, Path: w.path(rel), Stat: st})
		},
	})
}

// watch adds a folder to the event source.
func (s *state) watch(dir string) {
	if s.src == nil || s.polling {
		return
	}
	if err := s.src.Add(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return // gone meanwhile
		}
		if watchLimit(err) {
			s.fallBack(dir, err)
			return
		}
		if !s.degraded {
			s.log.Error("cannot watch folder for events; falling back to frequent rescans", "path", dir, "error", err, "hint", watchLimitHint(err))
		}
		s.degraded = true
	}
}
