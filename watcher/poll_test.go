package watcher

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/internal/testtmp"
)

func TestChooseMode(t *testing.T) {
	local := FSInfo{Name: "ext4"}
	nfs := FSInfo{Name: "nfs", Remote: true}
	sshfs := FSInfo{Name: "fuse.sshfs", Remote: true, Unsure: true}
	for _, c := range []struct {
		mode Mode
		fs   FSInfo
		want Mode
		why  string
	}{
		{ModeAuto, local, ModeEvents, "ext4 is a local filesystem"},
		{ModeAuto, nfs, ModePoll, "nfs is a network filesystem"},
		{ModeAuto, sshfs, ModePoll, "fuse.sshfs may be a network filesystem"},
		{ModeAuto, FSInfo{}, ModeEvents, "unknown is a local filesystem"},
		{ModeEvents, nfs, ModeEvents, "send no events"},
		{ModeEvents, local, ModeEvents, "as configured"},
		{ModePoll, local, ModePoll, "as configured"},
	} {
		got, why := ChooseMode(c.mode, c.fs)
		if got != c.want || !strings.Contains(why, c.why) {
			t.Errorf("ChooseMode(%s, %+v) = %s, %q; want %s, containing %q", c.mode, c.fs, got, why, c.want, c.why)
		}
	}
}

func TestNewRefusesAnUnknownMode(t *testing.T) {
	if _, err := New(Options{Root: testtmp.Dir(t), Mode: "sometimes"}); err == nil || !strings.Contains(err.Error(), "sometimes") {
		t.Fatalf("New with mode sometimes: %v", err)
	}
}

// TestSnapshotRound: a version is the same only at its size, mtime and
// identity; a folder's listing forgets the files it no longer holds; a
// folder no complete round listed is forgotten at the round's end.
func TestSnapshotRound(t *testing.T) {
	s := newSnapshot()
	v1 := srcfile.Stat{Size: 1, ModTime: time.Unix(100, 5), ID: srcfile.ID{Volume: 1, Index: 2}}
	bigger, later, other := v1, v1, v1
	bigger.Size = 2
	later.ModTime = later.ModTime.Add(time.Nanosecond)
	other.ID.Index = 3
	s.begin()
	for _, rel := range []string{"a", "run/b", "run/c", "run/sub/d", "gone/e"} {
		s.put(rel, v1)
	}
	if !s.same("a", v1) || !s.same("run/sub/d", v1) || s.same("run/x", v1) || s.same("x/a", v1) {
		t.Fatal("same: the files put, at v1")
	}
	changed := []srcfile.Stat{bigger, later}
	if listingHasID {
		changed = append(changed, other)
	} else if !s.same("a", other) {
		// Windows: a listing has no identity; size and mtime decide.
		t.Error("same(a) with another identity, where listings have none")
	}
	for _, st := range changed {
		if s.same("a", st) {
			t.Errorf("same(a, %+v) after put(a, %+v)", st, v1)
		}
	}
	s.end()
	s.begin()
	s.listed("", []fs.DirEntry{fakeEntry{"a", 0}, fakeEntry{"run", fs.ModeDir}})
	// run/c gone; run/b replaced by a folder of that name
	s.listed("run", []fs.DirEntry{fakeEntry{"b", fs.ModeDir}, fakeEntry{"sub", fs.ModeDir}, fakeEntry{"new", 0}})
	s.listed("run/sub", []fs.DirEntry{fakeEntry{"d", 0}})
	s.end() // gone/ not listed
	for rel, want := range map[string]bool{"a": true, "run/b": false, "run/c": false, "run/sub/d": true, "gone/e": false} {
		if s.same(rel, v1) != want {
			t.Errorf("after a round: same(%s) = %v, want %v", rel, !want, want)
		}
	}
	if n := s.len(); n != 2 {
		t.Errorf("after a round: %d files, want 2", n)
	}
	s.forget("run/sub/d")
	if s.same("run/sub/d", v1) {
		t.Error("same after forget")
	}
	s.begin()
	s.end()
	if len(s.dirs) != 0 {
		t.Errorf("a round that listed nothing kept %d folders", len(s.dirs))
	}
}

// fakeEntry is a listed entry of a type, for the snapshot's tests.
type fakeEntry struct {
	name string
	typ  fs.FileMode
}

func (e fakeEntry) Name() string               { return e.name }
func (e fakeEntry) IsDir() bool                { return e.typ.IsDir() }
func (e fakeEntry) Type() fs.FileMode          { return e.typ }
func (e fakeEntry) Info() (fs.FileInfo, error) { return nil, fs.ErrInvalid }

// pollHarness starts a watcher in mode with a fake filesystem type and a
// Known that counts its calls.
func pollHarness(t *testing.T, o Options, fs FSInfo) (*harness, *atomic.Int64, *logs) {
	t.Helper()
	if o.Root == "" {
		o.Root = testtmp.Dir(t)
	}
	h := &harness{t: t}
	calls := &atomic.Int64{}
	o.Known = func(ctx context.Context, f File) (bool, error) {
		calls.Add(1)
		if strings.HasPrefix(f.RelPath, "old/") && f.Stat.Size == int64(len("known")) {
			return true, nil // the journal has these versions
		}
		return h.known(ctx, f)
	}
	l := &logs{}
	o.Logger = slog.New(l)
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	w.detectFS = func(string) (FSInfo, error) { return fs, nil }
	return startWith(t, w, h, false), calls, l
}

// TestPollModeTakesFilesWithoutEvents: under mode poll no folder is ever
// added to the event source; a file written without any event is taken
// at the next round (poll interval), not before, and settles as usual.
func TestPollModeTakesFilesWithoutEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _, l := pollHarness(t, Options{Settle: time.Second, Recursive: true, RescanInterval: time.Hour, Mode: ModePoll}, FSInfo{Name: "ext4"})
		os.MkdirAll(filepath.Join(h.w.Root(), "run1"), 0o755)
		os.WriteFile(filepath.Join(h.w.Root(), "run1", "a.raw"), []byte("data"), 0o644)
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if n := len(h.emitted()); n != 0 {
			t.Fatalf("emitted %d files before the first poll round", n)
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"run1/a.raw"}) {
			t.Fatalf("emitted %v after a poll round, want [run1/a.raw]", got)
		}
		if h.added != nil {
			t.Fatalf("mode poll added event watches: %v", h.added)
		}
		if hl := h.w.Health(); hl.Mode != ModePoll || hl.FS != "ext4" || !strings.Contains(hl.ModeReason, "as configured") {
			t.Fatalf("health %+v, want mode poll as configured on ext4", hl)
		}
		if n := l.count("watch mode", "fs=ext4", "mode=poll", "poll_interval=10s"); n != 1 {
			t.Fatalf("logged the watch mode %d times, want once:\n%s", n, l)
		}
	})
}

// TestAutoPollsOnANetworkFilesystem: mode auto on NFS polls (no event
// watch), says so once in the log and in Health; on a local filesystem it
// uses events.
func TestAutoPollsOnANetworkFilesystem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _, l := pollHarness(t, Options{Settle: time.Second, Recursive: true, RescanInterval: time.Hour, PollInterval: 5 * time.Second}, FSInfo{Name: "nfs", Remote: true})
		os.WriteFile(filepath.Join(h.w.Root(), "n.raw"), []byte("x"), 0o644)
		time.Sleep(7 * time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"n.raw"}) {
			t.Fatalf("emitted %v, want [n.raw]", got)
		}
		if h.added != nil {
			t.Fatalf("auto on nfs added event watches: %v", h.added)
		}
		if hl := h.w.Health(); hl.Mode != ModePoll || hl.FS != "nfs" || !strings.Contains(hl.ModeReason, "nfs is a network filesystem") {
			t.Fatalf("health %+v", hl)
		}
		if n := l.count("watch mode", "fs=nfs", "mode=poll", "configured=auto"); n != 1 {
			t.Fatalf("logged %d times:\n%s", n, l)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		h, _, l := pollHarness(t, Options{Settle: time.Second, Recursive: true}, FSInfo{Name: "ext4"})
		if hl := h.w.Health(); hl.Mode != ModeEvents || len(h.WatchList()) != 1 {
			t.Fatalf("auto on ext4: health %+v, watching %v", hl, h.WatchList())
		}
		if n := l.count("watch mode", "fs=ext4", "mode=events"); n != 1 {
			t.Fatalf("logged %d times:\n%s", n, l)
		}
	})
}

// TestPollRoundsAskTheJournalOnlyAboutChanges: the first round asks Known
// about every file; later rounds about none of the unchanged ones, only
// about a file changed or new since the round before.
func TestPollRoundsAskTheJournalOnlyAboutChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := testtmp.Dir(t)
		os.MkdirAll(filepath.Join(root, "old"), 0o755)
		for i := range 50 {
			os.WriteFile(filepath.Join(root, "old", fmt.Sprint(i)), []byte("known"), 0o644)
		}
		h, calls, _ := pollHarness(t, Options{Root: root, Settle: time.Second, Recursive: true, Mode: ModePoll}, FSInfo{Name: "ext4"})
		if n := calls.Load(); n != 50 {
			t.Fatalf("the first walk asked about %d files, want 50", n)
		}
		time.Sleep(35 * time.Second) // three rounds
		synctest.Wait()
		if n := calls.Load(); n != 50 {
			t.Fatalf("three rounds of an unchanged tree asked about %d more files, want none", n-50)
		}
		f, _ := os.OpenFile(filepath.Join(root, "old", "7"), os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(" and more")
		f.Close()
		os.WriteFile(filepath.Join(root, "new.txt"), []byte("new"), 0o644)
		time.Sleep(12 * time.Second)
		synctest.Wait()
		if n := calls.Load(); n != 52 {
			t.Fatalf("a round after one change and one new file asked about %d files, want 2", n-50)
		}
		if got := h.rels(); !slices.Equal(got, []string{"new.txt", "old/7"}) {
			t.Fatalf("emitted %v, want [new.txt old/7]", got)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if n := calls.Load(); n != 52 || len(h.emitted()) != 2 {
			t.Fatalf("later rounds asked about %d files and emitted %v, want nothing more", n-52, h.rels())
		}
	})
}

// TestPollingLooksAgainAtAVersionThatCameBack: a pending version the
// watcher forgets (gone when it was due) and that comes back unchanged
// (moved away and back) is taken at the next round, not skipped as
// unchanged.
func TestPollingLooksAgainAtAVersionThatCameBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _, _ := pollHarness(t, Options{Settle: time.Second, Recursive: true, Mode: ModePoll}, FSInfo{Name: "ext4"})
		p := filepath.Join(h.w.Root(), "f.raw")
		away := filepath.Join(filepath.Dir(h.w.Root()), "f.away")
		os.WriteFile(p, []byte("data"), 0o644)
		time.Sleep(10*time.Second + 100*time.Millisecond) // the round sees it
		synctest.Wait()
		if err := os.Rename(p, away); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // due: gone, forgotten
		synctest.Wait()
		if err := os.Rename(away, p); err != nil {
			t.Fatal(err)
		}
		if n := len(h.emitted()); n != 0 {
			t.Fatalf("emitted %d while it was away", n)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"f.raw"}) {
			t.Fatalf("emitted %v, want [f.raw]", got)
		}
	})
}

// TestPollingSeesAFolderReplaced: a folder moved away and made again with
// files of the same names, sizes and mtimes (a copy that keeps times) is
// looked at again, file by file (they are new files: new identities), and
// so is the folder it was moved to; an unchanged sibling is not. Where a
// listing tells no identity (Windows), size and mtime decide: the copies
// are the versions already seen.
func TestPollingSeesAFolderReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := testtmp.Dir(t)
		run := filepath.Join(root, "run")
		os.MkdirAll(run, 0o755)
		os.MkdirAll(filepath.Join(root, "other"), 0o755)
		os.WriteFile(filepath.Join(root, "other", "x"), []byte("x"), 0o644)
		names := []string{"a.tif", "b c.tif", "ü.tif"}
		mtime := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
		for _, n := range names {
			os.WriteFile(filepath.Join(run, n), []byte(n), 0o644)
			os.Chtimes(filepath.Join(run, n), mtime, mtime)
		}
		h, calls, _ := pollHarness(t, Options{Root: root, Settle: time.Second, Recursive: true, Mode: ModePoll}, FSInfo{Name: "ext4"})
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n, got := calls.Load(), len(h.emitted()); n != 4 || got != 4 {
			t.Fatalf("first walk: asked %d, emitted %d; want 4, 4", n, got)
		}
		if err := os.Rename(run, filepath.Join(root, "run.moved")); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(run, 0o755)
		for _, n := range names {
			os.WriteFile(filepath.Join(run, n), []byte(n), 0o644)
			os.Chtimes(filepath.Join(run, n), mtime, mtime)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		asked := int64(6)
		want := []string{"other/x", "run.moved/a.tif", "run.moved/b c.tif", "run.moved/ü.tif", "run/a.tif", "run/a.tif", "run/b c.tif", "run/b c.tif", "run/ü.tif", "run/ü.tif"}
		if !listingHasID {
			asked = 3
			want = []string{"other/x", "run.moved/a.tif", "run.moved/b c.tif", "run.moved/ü.tif", "run/a.tif", "run/b c.tif", "run/ü.tif"}
		}
		if n := calls.Load(); n != 4+asked {
			t.Fatalf("a round after the folder was replaced asked about %d files, want %d", n-4, asked)
		}
		if got := h.rels(); !slices.Equal(got, want) {
			t.Fatalf("emitted %v, want %v", got, want)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if n := calls.Load(); n != 4+asked {
			t.Fatalf("later rounds asked about %d more files, want none", n-4-asked)
		}
	})
}

// TestSnapshotKeepsNoListedPath: the snapshot keeps nothing of the
// strings it is given (the relative paths a round slices out of each
// file's listed path): a round's paths are garbage once it ends, whatever
// the number of files, so rounds do not grow the heap. (A Go map
// assignment to an existing string key stores the new key: a snapshot
// keyed by those slices kept every file's path alive.)
func TestSnapshotKeepsNoListedPath(t *testing.T) {
	s := newSnapshot()
	st := srcfile.Stat{Size: 1, ModTime: time.Unix(100, 0), ID: srcfile.ID{Volume: 1, Index: 2}}
	for round := range 3 {
		// Each round's listed path is an allocation of its own, as
		// filepath.Join makes.
		path := []byte("/watch/root/run/tile.tif")
		rel := unsafe.String(&path[len("/watch/root/")], len("run/tile.tif"))
		s.begin()
		if round == 0 {
			s.put(rel, st)
		} else if !s.same(rel, st) {
			t.Fatalf("round %d: not the same", round)
		}
		s.put(rel, st) // seen again (known, pending or reported)
		s.listed("run", []fs.DirEntry{fakeEntry{"tile.tif", 0}})
		s.end()
		lo := uintptr(unsafe.Pointer(&path[0]))
		hi := lo + uintptr(len(path))
		for dir := range s.dirs {
			if p := uintptr(unsafe.Pointer(unsafe.StringData(dir))); p >= lo && p < hi {
				t.Fatalf("round %d: the folder key %q points into the listed path", round, dir)
			}
		}
	}
	if !s.same("run/tile.tif", st) || s.len() != 1 {
		t.Fatalf("after three rounds: %d files", s.len())
	}
}
