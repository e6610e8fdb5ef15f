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
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// logs is a slog.Handler that keeps every record, for tests that check
// what is logged and how often.
type logs struct {
	mu   sync.Mutex
	recs []string // "LEVEL message key=value ..."
}

func (l *logs) Enabled(context.Context, slog.Level) bool { return true }
func (l *logs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logs) WithGroup(string) slog.Handler            { return l }

func (l *logs) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, b.String())
	return nil
}

// count is how many records contain every one of parts.
func (l *logs) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, r := range l.recs {
		for _, p := range parts {
			if !strings.Contains(r, p) {
				continue next
			}
		}
		n++
	}
	return n
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.recs, "\n")
}

// removeTree deletes dir, or, where that fails (Wine 8 cannot delete a
// tree, nor Windows a folder held open), moves it aside: either way the
// folder is no longer at its path.
func removeTree(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err == nil {
		return
	}
	if err := os.Rename(dir, fmt.Sprintf("%s.gone-%d", dir, time.Now().UnixNano())); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRootMissingAtStartResumesWithinSeconds: a root that does not exist
// yet is a state: the watch is down (logged once), its nearest existing
// ancestor is watched, and once the folder appears, without any event (a
// share mounted), its files are taken within RootPoll and the settle
// period, not at the next rescan (an hour away here).
func TestRootMissingAtStartResumesWithinSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent := testtmp.Dir(t)
		root := filepath.Join(parent, "share", "scope1")
		l := &logs{}
		h := start(t, Options{Root: root, Settle: time.Second, Recursive: true, RescanInterval: time.Hour, Logger: slog.New(l)})
		hl := h.w.Health()
		if hl.Up || hl.Reason != DownMissing {
			t.Fatalf("health of a missing root = %+v, want down, missing", hl)
		}
		if !slices.Contains(h.WatchList(), parent) {
			t.Errorf("the nearest existing ancestor %s is not watched: %v", parent, h.WatchList())
		}
		time.Sleep(10 * RootPoll)
		synctest.Wait()
		if n := l.count("ERROR watch folder is not usable"); n != 1 {
			t.Errorf("the missing root was logged %d times, want once:\n%s", n, l)
		}
		writeFile(t, filepath.Join(root, "run1", "a.tif"), "image")
		appeared := time.Now()
		for len(h.emitted()) == 0 && time.Since(appeared) < time.Minute {
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
		}
		took := time.Since(appeared)
		if got := h.rels(); !slices.Equal(got, []string{"run1/a.tif"}) {
			t.Fatalf("emitted %v after the root appeared, want [run1/a.tif]", got)
		}
		// RootPoll to see it, the settle period, a tick.
		if limit := RootPoll + time.Second + h.w.tick(); took > limit {
			t.Errorf("the file of the root that came back was taken after %v, want within %v", took, limit)
		}
		hl = h.w.Health()
		if !hl.Up || hl.Reason != "" || hl.Resolved != root {
			t.Errorf("health after the root came back = %+v", hl)
		}
		if slices.Contains(h.WatchList(), parent) {
			t.Errorf("the ancestor is still watched after the root came back: %v", h.WatchList())
		}
		if !slices.Contains(h.WatchList(), filepath.Join(root, "run1")) {
			t.Errorf("the root's folders are not watched after it came back: %v", h.WatchList())
		}
		if l.count("INFO watch folder is back") != 1 {
			t.Errorf("the return was not logged once:\n%s", l)
		}
	})
}

// TestRootDeletedAndRecreated: a root deleted while watched (the event
// fsnotify sends for it) is down at the next tick, its watches dropped;
// made again, its folders are watched again and a new file in it is taken
// within seconds, without waiting for the rescan.
func TestRootDeletedAndRecreated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent := testtmp.Dir(t)
		root := filepath.Join(parent, "in")
		writeFile(t, filepath.Join(root, "sub", "old.txt"), "old")
		h := start(t, Options{Root: root, Settle: time.Second, Recursive: true, RescanInterval: time.Hour})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"sub/old.txt"}) {
			t.Fatalf("emitted %v, want [sub/old.txt]", got)
		}
		removeTree(t, root)
		h.events <- fsnotify.Event{Name: root, Op: fsnotify.Remove}
		time.Sleep(time.Second)
		synctest.Wait()
		if hl := h.w.Health(); hl.Up || hl.Reason != DownMissing {
			t.Fatalf("health after the root was deleted = %+v, want down, missing", hl)
		}
		if wl := h.WatchList(); !slices.Equal(wl, []string{parent}) {
			t.Errorf("watching %v after the root was deleted, want only its parent", wl)
		}
		writeFile(t, filepath.Join(root, "sub", "new.txt"), "new")
		h.events <- fsnotify.Event{Name: root, Op: fsnotify.Create} // from the parent's watch
		time.Sleep(RootPoll + 2*time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"sub/new.txt", "sub/old.txt"}) {
			t.Fatalf("emitted %v after the root was made again, want sub/new.txt too", got)
		}
		if wl := h.WatchList(); !slices.Equal(wl, []string{root, filepath.Join(root, "sub")}) {
			t.Errorf("watching %v after the root came back, want it and sub", wl)
		}
	})
}

// TestRootReplacedBetweenLooks: a root deleted and made again with no
// event seen (events lost, or faster than a look) is another folder: the
// next look finds it replaced, watches it again and walks it.
func TestRootReplacedBetweenLooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := filepath.Join(testtmp.Dir(t), "in")
		os.MkdirAll(root, 0o755)
		l := &logs{}
		h := start(t, Options{Root: root, Settle: time.Second, Recursive: true, RescanInterval: time.Hour, Logger: slog.New(l)})
		// Moved aside (so that the new folder cannot take its identity,
		// as a deleted one's inode number can be reused) and made again.
		if err := os.Rename(root, root+".old"); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, "a.txt"), "a")
		time.Sleep(RootPoll + 2*time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"a.txt"}) {
			t.Fatalf("emitted %v, want [a.txt] from the replaced root:\n%s", got, l)
		}
		if l.count("watch folder was replaced") != 1 {
			t.Errorf("the replacement was not logged once:\n%s", l)
		}
	})
}

// TestOnceWithMissingRoot: Once returns at once for a root that is not
// there; Health says why.
func TestOnceWithMissingRoot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, err := New(Options{Root: filepath.Join(testtmp.Dir(t), "gone"), Settle: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Once(context.Background(), func(context.Context, []File) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if h := w.Health(); h.Up || h.Reason != DownMissing {
			t.Fatalf("health = %+v, want down, missing", h)
		}
	})
}

// TestSymlinkedRootIsFollowed: a watch path that is a symlink to a folder
// is walked and watched through it; files keep the configured root and a
// path through the link; Health shows the folder it resolved to.
func TestSymlinkedRootIsFollowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := testtmp.Dir(t)
		real := filepath.Join(base, "real")
		writeFile(t, filepath.Join(real, "sub", "a.raw"), "data")
		link := filepath.Join(base, "link")
		if err := os.Symlink(real, link); err != nil {
			t.Skip("symlinks unsupported:", err)
		}
		real, _ = filepath.EvalSymlinks(real)
		if r, err := filepath.EvalSymlinks(link); err != nil || r != real {
			t.Skipf("symlinks do not resolve here (Wine): %q, %v", r, err)
		}
		h := start(t, Options{Root: link, Settle: time.Second, Recursive: true})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got := h.emitted()
		if len(got) != 1 || got[0].RelPath != "sub/a.raw" || got[0].Root != link || got[0].Path != filepath.Join(link, "sub", "a.raw") {
			t.Fatalf("emitted %+v, want sub/a.raw under %s", got, link)
		}
		if hl := h.w.Health(); !hl.Up || hl.Resolved != real {
			t.Errorf("health = %+v, want up, resolved to %s", hl, real)
		}
		if !slices.Contains(h.WatchList(), filepath.Join(real, "sub")) {
			t.Errorf("the resolved folders are not watched: %v", h.WatchList())
		}
		// An event names the resolved folder (what was watched).
		h.write("sub/b.raw", "more", false) // named through the link
		p := filepath.Join(real, "sub", "c.raw")
		writeFile(t, p, "c")
		h.events <- fsnotify.Event{Name: p, Op: fsnotify.Create}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"sub/a.raw", "sub/b.raw", "sub/c.raw"}) {
			t.Fatalf("emitted %v", got)
		}
		// The link pointed elsewhere: a replaced root.
		other := filepath.Join(base, "other")
		writeFile(t, filepath.Join(other, "z.raw"), "z")
		os.Remove(link)
		os.Symlink(other, link)
		time.Sleep(RootPoll + 2*time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Contains(got, "z.raw") {
			t.Fatalf("emitted %v after the link was pointed elsewhere, want z.raw too", got)
		}
	})
}

// TestUnreadableFolderIsCountedAndListed: a folder whose listing fails
// (injected at the walk's boundary: tests run as root, which reads any
// folder) is logged as an error once, counted and listed in Health; the
// rest of the tree is taken; it is listed again at each walk while
// unreadable, and no longer once it can be read.
func TestUnreadableFolderIsCountedAndListed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := testtmp.Dir(t)
		writeFile(t, filepath.Join(root, "locked", "x.raw"), "x")
		writeFile(t, filepath.Join(root, "ok", "y.raw"), "y")
		l := &logs{}
		w, err := New(Options{Root: root, Settle: time.Second, Recursive: true, RescanInterval: time.Minute, Logger: slog.New(l)})
		if err != nil {
			t.Fatal(err)
		}
		var locked sync.Map
		locked.Store(filepath.Join(root, "locked"), true)
		w.readDir = func(dir string) ([]fs.DirEntry, error) {
			if _, ok := locked.Load(dir); ok {
				return nil, &fs.PathError{Op: "open", Path: dir, Err: fs.ErrPermission}
			}
			return os.ReadDir(dir)
		}
		h := &harness{t: t}
		w.o.Known = h.known
		startWith(t, w, h, false)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"ok/y.raw"}) {
			t.Fatalf("emitted %v, want [ok/y.raw]", got)
		}
		hl := w.Health()
		if hl.Skipped[SkipUnreadable] != 1 || len(hl.Unreadable) != 1 || hl.Unreadable[0].Path != "locked" || hl.Unreadable[0].Error != "permission denied" {
			t.Fatalf("health = %+v, want locked unreadable (permission denied)", hl)
		}
		time.Sleep(2 * time.Minute) // two rescans
		synctest.Wait()
		if n := l.count("ERROR cannot read folder", "path=locked", "reason=unreadable", "permission denied"); n != 1 {
			t.Errorf("the unreadable folder was logged %d times, want once:\n%s", n, l)
		}
		if hl := w.Health(); hl.Skipped[SkipUnreadable] != 1 {
			t.Errorf("after rescans: %+v", hl)
		}
		locked.Delete(filepath.Join(root, "locked"))
		time.Sleep(62 * time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"locked/x.raw", "ok/y.raw"}) {
			t.Fatalf("emitted %v once the folder could be read", got)
		}
		if hl := w.Health(); hl.Skipped[SkipUnreadable] != 0 || len(hl.Unreadable) != 0 {
			t.Errorf("health once readable = %+v", hl)
		}
	})
}

// TestOnceReportsUnreadableFolder: Once takes the rest and returns; the
// unreadable folder is in Health for the caller to report.
func TestOnceReportsUnreadableFolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := testtmp.Dir(t)
		writeFile(t, filepath.Join(root, "a", "b", "x.raw"), "x")
		writeFile(t, filepath.Join(root, "y.raw"), "y")
		w, err := New(Options{Root: root, Settle: time.Second, Recursive: true})
		if err != nil {
			t.Fatal(err)
		}
		w.readDir = func(dir string) ([]fs.DirEntry, error) {
			if dir == filepath.Join(root, "a", "b") {
				return nil, &fs.PathError{Op: "readdirent", Path: dir, Err: errors.New("input/output error")}
			}
			return os.ReadDir(dir)
		}
		var got []string
		err = w.Once(context.Background(), func(_ context.Context, fs []File) error {
			for _, f := range fs {
				got = append(got, f.RelPath)
			}
			return nil
		})
		if err != nil || !slices.Equal(got, []string{"y.raw"}) {
			t.Fatalf("Once = %v, emitted %v", err, got)
		}
		if h := w.Health(); len(h.Unreadable) != 1 || h.Unreadable[0] != (Unreadable{Path: "a/b", Error: "input/output error"}) {
			t.Fatalf("health = %+v", h)
		}
	})
}

// TestRootUnreadableIsDown: a root that exists but cannot be listed is
// down with the reason, not a failure of the watcher.
func TestRootUnreadableIsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := testtmp.Dir(t)
		w, err := New(Options{Root: root, Settle: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		w.readDir = func(dir string) ([]fs.DirEntry, error) {
			return nil, &fs.PathError{Op: "open", Path: dir, Err: fs.ErrPermission}
		}
		h := startWith(t, w, &harness{t: t}, false)
		if hl := h.w.Health(); hl.Up || hl.Reason != DownUnusable+": permission denied" {
			t.Fatalf("health = %+v", hl)
		}
	})
}

func TestMountCheck(t *testing.T) {
	for _, c := range []struct {
		name               string
		mounted            bool
		dev, pdev          uint64
		usable, nowMounted bool
	}{
		{"a plain folder", false, 1, 1, true, false},
		{"a mount point", false, 2, 1, true, true},
		{"still mounted", true, 2, 1, true, true},
		{"unmounted: the empty mount point on its parent's device", true, 1, 1, false, true},
		{"mounted again, maybe another share", true, 3, 1, true, true},
	} {
		usable, now := MountCheck(c.mounted, c.dev, c.pdev)
		if usable != c.usable || now != c.nowMounted {
			t.Errorf("%s: MountCheck(%v, %d, %d) = %v, %v; want %v, %v", c.name, c.mounted, c.dev, c.pdev, usable, now, c.usable, c.nowMounted)
		}
	}
}

// TestRootUnlistableAtRescan: a root that can no longer be listed (found
// by a rescan) is down, not a failure of the watcher, and stays down
// quietly while it can be stat'ed but not listed (logged once, not at
// every look); listable again, it is back within RootPoll.
func TestRootUnlistableAtRescan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := testtmp.Dir(t)
		l := &logs{}
		w, err := New(Options{Root: root, Settle: time.Second, Recursive: true, RescanInterval: time.Minute, Logger: slog.New(l)})
		if err != nil {
			t.Fatal(err)
		}
		var locked sync.Map
		w.readDir = func(dir string) ([]fs.DirEntry, error) {
			if _, ok := locked.Load(dir); ok {
				return nil, &fs.PathError{Op: "open", Path: dir, Err: fs.ErrPermission}
			}
			return os.ReadDir(dir)
		}
		h := &harness{t: t}
		w.o.Known = h.known
		startWith(t, w, h, false)
		locked.Store(root, true)
		time.Sleep(61 * time.Second)
		synctest.Wait()
		if hl := w.Health(); hl.Up || hl.Reason != DownUnusable+": permission denied" {
			t.Fatalf("health after the rescan = %+v", hl)
		}
		time.Sleep(10 * RootPoll)
		synctest.Wait()
		if n := l.count("ERROR watch folder is not usable"); n != 1 {
			t.Errorf("logged %d times, want once:\n%s", n, l)
		}
		if n := l.count("watch folder is back"); n != 0 {
			t.Errorf("flapped:\n%s", l)
		}
		writeFile(t, filepath.Join(root, "a.txt"), "a")
		locked.Delete(root)
		time.Sleep(RootPoll + 2*time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"a.txt"}) {
			t.Fatalf("emitted %v once listable, want [a.txt]", got)
		}
		if hl := w.Health(); !hl.Up {
			t.Errorf("health = %+v", hl)
		}
	})
}
