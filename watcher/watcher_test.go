package watcher

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// harness runs the watcher loop with an injected event channel inside a
// synctest bubble, so the settle period runs on the fake clock.
type harness struct {
	t      *testing.T
	w      *Watcher
	events chan fsnotify.Event
	errs   chan error
	mu     sync.Mutex
	got    []File
	cancel context.CancelFunc
	done   chan error
	added  []string
	// watching is what is watched now (Add, less Remove).
	watching map[string]bool
	// addErr, when set, fails an Add (a watch limit reached).
	addErr func(name string) error
}

func (h *harness) Add(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.addErr != nil {
		if err := h.addErr(name); err != nil {
			return err
		}
	}
	h.added = append(h.added, name)
	if h.watching == nil {
		h.watching = map[string]bool{}
	}
	h.watching[name] = true
	return nil
}

func (h *harness) Remove(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.watching, name)
	return nil
}

func (h *harness) WatchList() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.watching))
}

func start(t *testing.T, o Options) *harness {
	t.Helper()
	if o.Root == "" {
		o.Root = testtmp.Dir(t)
	}
	h := &harness{t: t}
	if o.Known == nil {
		o.Known = h.known
	}
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return startWith(t, w, h, false)
}

func startWith(t *testing.T, w *Watcher, h *harness, once bool) *harness {
	t.Helper()
	h.w, h.events, h.errs, h.done = w, make(chan fsnotify.Event), make(chan error), make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		h.done <- w.run(ctx, h, h.events, h.errs, func(_ context.Context, fs []File) error {
			if len(fs) == 0 || len(fs) > MaxBatch {
				t.Errorf("emitted a batch of %d files", len(fs))
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			h.got = append(h.got, fs...)
			return nil
		}, once)
	}()
	synctest.Wait()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil {
			t.Errorf("watcher: %v", err)
		}
	})
	return h
}

// known is like the journal: a version once emitted is known.
func (h *harness) known(_ context.Context, f File) (bool, error) {
	for _, g := range h.emitted() {
		if g.RelPath == f.RelPath && g.Stat.Same(f.Stat) {
			return true, nil
		}
	}
	return false, nil
}

func (h *harness) emitted() []File {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

func (h *harness) rels() []string {
	var out []string
	for _, f := range h.emitted() {
		out = append(out, f.RelPath)
	}
	slices.Sort(out)
	return out
}

// write writes (or appends) data and delivers the event fsnotify would.
func (h *harness) write(rel string, data string, appendTo bool) {
	h.t.Helper()
	p := filepath.Join(h.w.Root(), filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	flag := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if appendTo {
		flag = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(p, flag, 0o644)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		h.t.Fatal(err)
	}
	f.Close()
	h.events <- fsnotify.Event{Name: p, Op: fsnotify.Write}
	synctest.Wait()
}

func TestSettleWaitsForQuietPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Options{Settle: time.Second, Recursive: true})
		h.write("a.bin", "hello", false)
		time.Sleep(900 * time.Millisecond)
		synctest.Wait()
		if n := len(h.emitted()); n != 0 {
			t.Fatalf("emitted %d files before the settle period passed", n)
		}
		time.Sleep(1200 * time.Millisecond)
		synctest.Wait()
		got := h.emitted()
		if len(got) != 1 || got[0].RelPath != "a.bin" || got[0].Stat.Size != 5 || got[0].Signal != string(probeSignal()) {
			t.Fatalf("emitted %+v, want a.bin of 5 bytes", got)
		}
	})
}

func TestBurstyWriterSettlesOnceInFinalForm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Options{Settle: time.Second, Recursive: true})
		for i := range 8 {
			h.write("run1/data.raw", "burst-", i > 0)
			time.Sleep(600 * time.Millisecond) // pauses shorter than settle
			synctest.Wait()
			if n := len(h.emitted()); n != 0 {
				t.Fatalf("burst %d: emitted %d files while still being written", i, n)
			}
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		got := h.emitted()
		if len(got) != 1 {
			t.Fatalf("emitted %d times, want once: %+v", len(got), got)
		}
		if got[0].Stat.Size != int64(8*len("burst-")) {
			t.Fatalf("emitted size %d, want the final %d", got[0].Stat.Size, 8*len("burst-"))
		}
	})
}

func TestWalkAtStartSkipsKnownVersions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := testtmp.Dir(t)
		for _, rel := range []string{"old.txt", "new.txt", "sub/deep/new2.txt"} {
			p := filepath.Join(root, filepath.FromSlash(rel))
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte(rel), 0o644)
		}
		h := start(t, Options{Root: root, Settle: time.Second, Recursive: true,
			Known: func(_ context.Context, f File) (bool, error) { return f.RelPath == "old.txt", nil }})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got, want := h.rels(), []string{"new.txt", "sub/deep/new2.txt"}; !slices.Equal(got, want) {
			t.Fatalf("emitted %v, want %v", got, want)
		}
		if !slices.Contains(h.added, filepath.Join(root, "sub", "deep")) {
			t.Errorf("sub/deep not watched; watched %v", h.added)
		}
	})
}

func TestNewFolderIsWatchedAndListed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Options{Settle: time.Second, Recursive: true})
		dir := filepath.Join(h.w.Root(), "run 2", "ü")
		os.MkdirAll(dir, 0o755)
		// Files created before the folder's watch existed send no events.
		os.WriteFile(filepath.Join(dir, "früh.tif"), []byte("x"), 0o644)
		h.events <- fsnotify.Event{Name: filepath.Join(h.w.Root(), "run 2"), Op: fsnotify.Create}
		synctest.Wait()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got, want := h.rels(), []string{"run 2/ü/früh.tif"}; !slices.Equal(got, want) {
			t.Fatalf("emitted %v, want %v", got, want)
		}
		if !slices.Contains(h.added, dir) {
			t.Errorf("%s not watched; watched %v", dir, h.added)
		}
	})
}

func TestExcludedAndIgnoredFilesAreNeverReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := testtmp.Dir(t)
		h := start(t, Options{Root: root, Settle: time.Second, Recursive: true,
			Include: []string{"**/*"}, Exclude: []string{"**/*.tmp", "**/~$*", "**/.DS_Store"},
			Ignore: []string{filepath.Join(root, "ferry.db"), filepath.Join(root, "archive"), filepath.Join(root, "logs", "ferry-*")}})
		for _, rel := range []string{"a.tmp", "x/~$lock.docx", ".DS_Store", "ferry.db", "archive/k.txt", "logs/ferry-2026-11-26T22-00-00.000.log.gz", "keep.txt", "logs/other.log"} {
			h.write(rel, "data", false)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got, want := h.rels(), []string{"keep.txt", "logs/other.log"}; !slices.Equal(got, want) {
			t.Fatalf("emitted %v, want %v", got, want)
		}
	})
}

func TestVanishedBeforeSettleIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Options{Settle: time.Second, Recursive: true})
		h.write("gone.txt", "x", false)
		os.Remove(filepath.Join(h.w.Root(), "gone.txt"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := len(h.emitted()); n != 0 {
			t.Fatalf("emitted %d files, want none", n)
		}
	})
}

func TestRewriteAfterSettleIsReportedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Options{Settle: time.Second, Recursive: true})
		h.write("a.txt", "one", false)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		h.write("a.txt", "two, longer", false)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		got := h.emitted()
		if len(got) != 2 || got[0].Stat.Size != 3 || got[1].Stat.Size != 11 {
			t.Fatalf("emitted %+v, want both versions in order", got)
		}
	})
}

func TestFullPendingSetDefersToRescan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Options{Settle: time.Second, Recursive: true, MaxPending: 2})
		for _, rel := range []string{"1", "2", "3", "4"} {
			h.write(rel, rel, false)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got, want := h.rels(), []string{"1", "2", "3", "4"}; !slices.Equal(got, want) {
			t.Fatalf("emitted %v, want %v (the overflow must be picked up by a rescan)", got, want)
		}
	})
}

func TestLostEventsTriggerRescan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Options{Settle: time.Second, Recursive: true, RescanInterval: time.Hour})
		os.WriteFile(filepath.Join(h.w.Root(), "silent.txt"), []byte("no event"), 0o644)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := len(h.emitted()); n != 0 {
			t.Fatalf("emitted %d files without an event or rescan", n)
		}
		h.errs <- fsnotify.ErrEventOverflow
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"silent.txt"}) {
			t.Fatalf("emitted %v after overflow, want [silent.txt]", got)
		}
	})
}

func TestPeriodicRescanFindsMissedFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, Options{Settle: time.Second, Recursive: true, RescanInterval: time.Minute})
		os.WriteFile(filepath.Join(h.w.Root(), "silent.txt"), []byte("no event"), 0o644)
		time.Sleep(63 * time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"silent.txt"}) {
			t.Fatalf("emitted %v after a rescan interval, want [silent.txt]", got)
		}
	})
}

// TestNowIsTheWatchersClock: every reading of the time (events, walks, the
// settle period, the rescan interval) is taken from Options.Now. The injected
// clock starts two days ahead of the ticker's and is moved on by hours, so
// a reading taken elsewhere releases a file or rescans too early, or never.
func TestNowIsTheWatchersClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ahead atomic.Int64
		ahead.Store(int64(48 * time.Hour))
		now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
		h := start(t, Options{Settle: time.Hour, Recursive: true, RescanInterval: 24 * time.Hour, Now: now})
		expect := func(when string, want ...string) {
			t.Helper()
			time.Sleep(2 * time.Second) // two ticks
			synctest.Wait()
			if got := h.rels(); !slices.Equal(got, want) {
				t.Fatalf("%s: emitted %v, want %v", when, got, want)
			}
		}
		h.write("event.txt", "x", false)
		os.WriteFile(filepath.Join(h.w.Root(), "silent.txt"), []byte("no event"), 0o644)
		expect("before the injected clock moved")
		ahead.Add(int64(time.Hour))
		expect("an hour later", "event.txt")
		ahead.Add(int64(24 * time.Hour))
		expect("a rescan interval later: found, not settled", "event.txt")
		ahead.Add(int64(time.Hour))
		expect("an hour after the rescan", "event.txt", "silent.txt")
	})
}

func TestOnceReturnsWhenEverythingSettled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := testtmp.Dir(t)
		os.MkdirAll(filepath.Join(root, "r"), 0o755)
		os.WriteFile(filepath.Join(root, "r", "a"), []byte("a"), 0o644)
		os.WriteFile(filepath.Join(root, "b"), []byte("b"), 0o644)
		w, err := New(Options{Root: root, Settle: time.Second, Recursive: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		start := time.Now()
		err = w.Once(context.Background(), func(_ context.Context, fs []File) error {
			for _, f := range fs {
				got = append(got, f.RelPath)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, []string{"b", "r/a"}) {
			t.Fatalf("Once emitted %v", got)
		}
		if d := time.Since(start); d < time.Second || d > 3*time.Second {
			t.Fatalf("Once took %v, want the settle period and little more", d)
		}
	})
}

func TestNonRecursiveIgnoresSubfolders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := testtmp.Dir(t)
		os.MkdirAll(filepath.Join(root, "sub"), 0o755)
		os.WriteFile(filepath.Join(root, "sub", "x"), []byte("x"), 0o644)
		os.WriteFile(filepath.Join(root, "top"), []byte("t"), 0o644)
		h := start(t, Options{Root: root, Settle: time.Second, Recursive: false})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := h.rels(); !slices.Equal(got, []string{"top"}) {
			t.Fatalf("emitted %v, want [top]", got)
		}
	})
}

func TestSymlinksAreNotFollowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := testtmp.Dir(t)
		outside := testtmp.Dir(t)
		os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
		if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "link")); err != nil {
			t.Skip("symlinks unsupported:", err)
		}
		os.Symlink(outside, filepath.Join(root, "dirlink"))
		h := start(t, Options{Root: root, Settle: time.Second, Recursive: true})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := h.rels(); len(got) != 0 {
			t.Fatalf("emitted %v through symlinks", got)
		}
	})
}

func TestMatch(t *testing.T) {
	inc, exc := []string{"**/*"}, []string{"**/*.tmp", "**/~$*", "**/.DS_Store"}
	for _, c := range []struct {
		rel  string
		want bool
	}{
		{"a.tif", true},
		{"run 1/größe.tif", true},
		{"run1/a.tmp", false},
		{"a.tmp", false},
		{"docs/~$report.docx", false},
		{".DS_Store", false},
		{"x/.DS_Store", false},
		{"x/y/z.raw", true},
	} {
		if got := match(c.rel, inc, exc, false); got != c.want {
			t.Errorf("match(%q) = %v, want %v", c.rel, got, c.want)
		}
	}
	if match("a.TIF", []string{"**/*.tif"}, nil, false) {
		t.Error("case-sensitive match accepted a.TIF for **/*.tif")
	}
	if !match("A.TIF", []string{"**/*.tif"}, nil, true) {
		t.Error("case-insensitive (Windows) match rejected A.TIF for **/*.tif")
	}
	if match("a.bin", []string{"**/*.tif"}, nil, false) {
		t.Error("include did not restrict")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := New(Options{Root: testtmp.Dir(t), Include: []string{"[a"}}); err == nil {
		t.Error("invalid glob accepted")
	}
	// A missing root is a state of the watch, not an error (root_test.go).
	w, err := New(Options{Root: filepath.Join(testtmp.Dir(t), "missing")})
	if err != nil {
		t.Fatalf("missing root refused: %v", err)
	}
	if h := w.Health(); h.Up {
		t.Errorf("a watch that has not looked yet is up: %+v", h)
	}
}

func TestWalkListsWhatTheWatchTakes(t *testing.T) {
	root := testtmp.Dir(t)
	for _, rel := range []string{"a.tif", "run 1/b.raw", "run 1/skip.tmp", "own/ferry.db"} {
		p := filepath.Join(root, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(rel), 0o644)
	}
	os.Symlink(filepath.Join(root, "a.tif"), filepath.Join(root, "link"))
	w, err := New(Options{Root: root, Recursive: true, Exclude: []string{"**/*.tmp"}, Ignore: []string{filepath.Join(root, "own")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := w.Walk(context.Background(), func(f File) error {
		if f.Stat.Size != int64(len(f.RelPath)) {
			t.Errorf("%s: size %d", f.RelPath, f.Stat.Size)
		}
		got = append(got, f.RelPath)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"a.tif", "run 1/b.raw"}; !slices.Equal(got, want) {
		t.Fatalf("Walk = %v, want %v", got, want)
	}
}

// probeSignal is what releases a quiet file no writer holds on this
// platform: the processes' open files on Linux ("close"), the sharing
// probe on Windows ("lock"), nothing else elsewhere ("quiet").
func probeSignal() Signal {
	switch runtime.GOOS {
	case "linux":
		return SignalClose
	case "windows":
		return SignalLock
	}
	return SignalQuiet
}
