package watcher

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
)

func TestClassifyMagic(t *testing.T) {
	for _, c := range []struct {
		magic  uint32
		fuse   string
		name   string
		remote bool
		unsure bool
	}{
		{0x6969, "", "nfs", true, false},
		{0x517B, "", "smbfs", true, false},
		{0xFF534D42, "", "cifs", true, false},
		{0xFE534D42, "", "smb2", true, false},
		{0x5346414F, "", "afs", true, false},
		{0x01021997, "", "9p", true, false},
		{0x65735546, "fuse.sshfs", "fuse.sshfs", true, true},
		{0x65735546, "virtiofs", "virtiofs", true, true},
		{0x65735546, "", "fuse", true, true},
		{0x65735546, "fuseblk", "fuseblk", false, false},
		{0xEF53, "", "ext4", false, false},
		{0x01021994, "", "tmpfs", false, false},
		{0x12345678, "", "0x12345678", false, false},
	} {
		got := classifyMagic(c.magic, func() string { return c.fuse })
		if got.Name != c.name || got.Remote != c.remote || got.Unsure != c.unsure {
			t.Errorf("classifyMagic(%#x, %q) = %+v, want %s remote=%v unsure=%v", c.magic, c.fuse, got, c.name, c.remote, c.unsure)
		}
	}
}

// TestDetectFSNamesTheMount: DetectFS of a folder names its filesystem as
// /proc/self/mountinfo does (FUSE subtypes aside, where statfs says less).
func TestDetectFSNamesTheMount(t *testing.T) {
	dir := t.TempDir()
	fsi, err := DetectFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	mt := mountType(dir)
	if mt == "" {
		t.Fatalf("no mount found for %s", dir)
	}
	if fsi.Name != mt && !strings.HasPrefix(fsi.Name, "0x") {
		t.Fatalf("DetectFS(%s) = %+v; the mount's type is %s", dir, fsi, mt)
	}
}

// inotifyWatches counts the inotify watches this process holds (each
// inotify fd's fdinfo lists one "inotify wd:" line per watch).
func inotifyWatches(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if l, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); l != "anon_inode:inotify" {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		n += strings.Count(string(b), "inotify wd:")
	}
	return n
}

// runReal runs a real watcher (fsnotify, outside a bubble) until the test
// ends; it returns the files it settles and waits until it watches.
func runReal(t *testing.T, o Options) (*Watcher, chan File) {
	t.Helper()
	ready := &readyHandler{ready: make(chan struct{})}
	o.Logger = slog.New(ready)
	w, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	settled := make(chan File, 1024)
	done := make(chan error, 1)
	go func() {
		done <- w.Run(ctx, func(ctx context.Context, fs []File) error {
			for _, f := range fs {
				select {
				case settled <- f:
				case <-ctx.Done():
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case <-ready.ready:
	case <-time.After(20 * time.Second):
		t.Fatal("the watcher did not start watching")
	}
	return w, settled
}

// TestPollModeHoldsNoInotifyWatch: with the real Run, a watch in mode
// poll holds no inotify watch (counted in /proc/self/fdinfo), yet takes a
// file in a subfolder; the same tree in mode events holds one per folder.
func TestPollModeHoldsNoInotifyWatch(t *testing.T) {
	base := inotifyWatches(t)
	root := testtmp.Dir(t)
	for _, d := range []string{"a/b", "c"} {
		os.MkdirAll(filepath.Join(root, filepath.FromSlash(d)), 0o755)
	}
	w, settled := runReal(t, Options{Root: root, Settle: 50 * time.Millisecond, Recursive: true, Mode: ModePoll, PollInterval: 100 * time.Millisecond})
	if n := inotifyWatches(t) - base; n != 0 {
		t.Fatalf("mode poll holds %d inotify watches", n)
	}
	os.WriteFile(filepath.Join(root, "a", "b", "x.raw"), []byte("x"), 0o644)
	select {
	case f := <-settled:
		if f.RelPath != "a/b/x.raw" {
			t.Fatalf("settled %s", f.RelPath)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("mode poll did not take a/b/x.raw; health %+v", w.Health())
	}
	if n := inotifyWatches(t) - base; n != 0 {
		t.Fatalf("mode poll holds %d inotify watches after a round", n)
	}
	// The check sees watches where there are: events on the same tree.
	runReal(t, Options{Root: root, Settle: 50 * time.Millisecond, Recursive: true, Mode: ModeEvents, RescanInterval: time.Hour})
	if n := inotifyWatches(t) - base; n != 4 {
		t.Fatalf("mode events holds %d inotify watches, want 4 (root, a, a/b, c)", n)
	}
}

// TestRealEventOverflowRescans: with the real fsnotify, more events than
// the kernel queues (fs.inotify.max_queued_events) while ferry is busy
// overflow the queue; ferry logs it and rescans, so every file is taken
// although rescans are an hour apart.
func TestRealEventOverflowRescans(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skipf("no inotify queue limit to read: %v", err)
	}
	var queue int
	fmt.Sscan(string(b), &queue)
	files := queue/2 + 2000 // each new file sends a create and a write
	root := testtmp.Dir(t)
	l := &logs{}
	w, err := New(Options{Root: root, Settle: 50 * time.Millisecond, Recursive: true, Mode: ModeEvents, RescanInterval: time.Hour, Logger: slog.New(l)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	busy, release := make(chan struct{}), make(chan struct{})
	got := map[string]bool{}
	var taken atomic.Int64
	total := make(chan int, 1)
	done := make(chan error, 1)
	go func() {
		first := true
		done <- w.Run(ctx, func(ctx context.Context, fs []File) error {
			if first {
				// Busy (a slow journal): events pile up in the kernel.
				first = false
				close(busy)
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			for _, f := range fs {
				got[f.RelPath] = true
			}
			taken.Store(int64(len(got)))
			if len(got) == files+1 {
				total <- len(got)
			}
			return nil
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for !strings.Contains(l.String(), "watching") {
		time.Sleep(10 * time.Millisecond)
	}
	os.WriteFile(filepath.Join(root, "first"), nil, 0o644)
	select {
	case <-busy:
	case <-time.After(20 * time.Second):
		t.Fatal("the first file was not taken")
	}
	for i := range files {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("f%05d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	select {
	case <-total:
	case <-time.After(60 * time.Second):
		t.Fatalf("took %d of %d files\n%s", taken.Load(), files+1, l)
	}
	if l.count("WARN", "overflowed", "rescanning") == 0 {
		t.Fatalf("no overflow logged; the queue did not overflow:\n%s", l)
	}
}
