package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/testtmp"
	"github.com/ferry-data/ferry/journal"
)

// uploadFiles journals n files (prefix-0 ...) settled, claimed, hashed and
// uploaded, at the journal's clock.
func uploadFiles(t *testing.T, j *journal.Journal, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	var ss []journal.Settled
	for i := range n {
		rel := fmt.Sprintf("%s/f%d", prefix, i)
		ss = append(ss, journal.Settled{Watch: "/data", RelPath: rel, Target: "t", Key: rel, BatchID: prefix,
			Version: journal.Version{Size: 1, MtimeNS: 1}, Signal: "quiet"})
	}
	if _, err := j.RecordSettledBatch(ctx, ss); err != nil {
		t.Fatal(err)
	}
	jobs, err := j.Claim(ctx, n)
	if err != nil || len(jobs) != n {
		t.Fatalf("Claim: %d, %v", len(jobs), err)
	}
	sha := strings.Repeat("c", 64)
	for i := range jobs {
		if err := j.RecordHashes(ctx, &jobs[i], sha, []journal.Chunk{{Seq: 1, Size: 1, SHA256: sha}}); err != nil {
			t.Fatal(err)
		}
		if err := j.Complete(ctx, &jobs[i], sha, jobs[i].Key); err != nil {
			t.Fatal(err)
		}
	}
}

// verifyAll checks what `ferry journal verify` checks: SQLite's integrity,
// both chains, and the file tables against a replay of the events.
func verifyAll(t *testing.T, j *journal.Journal) {
	t.Helper()
	ctx := context.Background()
	if err := j.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := j.VerifyChain(ctx); err != nil {
		t.Fatalf("VerifyChain: %v", err)
	}
	if _, err := j.VerifyAudit(ctx); err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
	if mm, _, err := j.VerifyState(ctx); err != nil || len(mm) != 0 {
		t.Fatalf("VerifyState: %v %v", mm, err)
	}
}

// TestArchiverDaily: with archive_after = 90d the daemon's archiver looks
// archiveFirst after the start, then daily; it archives on the first day
// some events are older than 90 days, into archive_dir; after it the
// journal verifies, and the archive verifies and replays on its own.
func TestArchiverDaily(t *testing.T) {
	dir := testtmp.Dir(t)
	synctest.Test(t, func(t *testing.T) {
		j, err := journal.Open(filepath.Join(dir, "ferry.db"), journal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		t0 := time.Now()
		uploadFiles(t, j, "old", 4) // 4 events a file (settled, claimed, file_hashed whole, uploaded)
		time.Sleep(30 * 24 * time.Hour)
		uploadFiles(t, j, "new", 1)
		archives := filepath.Join(dir, "archives")
		cfg := &config.Config{Journal: config.JournalConfig{ArchiveAfter: config.Age(90 * 24 * time.Hour), ArchiveDir: archives}}
		var logs bytes.Buffer
		a := &archiver{j: j, cfg: func() *config.Config { return cfg }, now: time.Now, log: slog.New(slog.NewJSONHandler(&logs, nil))}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); a.run(ctx) }()
		defer func() { cancel(); <-done }() // also when the test fails: nothing left in the bubble
		started := time.Now()
		count := func() int {
			synctest.Wait()
			es, _ := os.ReadDir(archives)
			return len(es)
		}
		// Every pass until the old files' events are 90 days old finds
		// nothing to archive.
		due := t0.Add(90 * 24 * time.Hour) // the old events are older than archive_after from then on
		var first time.Time                // the first pass at or after due
		for at := started.Add(archiveFirst); ; at = at.Add(archiveEvery) {
			if at.Add(-90 * 24 * time.Hour).Truncate(time.Second).After(t0) {
				first = at
				break
			}
		}
		time.Sleep(time.Until(first) - time.Second)
		if n := count(); n != 0 {
			t.Fatalf("%d archives before %s (due %s)", n, first, due)
		}
		time.Sleep(2 * time.Second)
		if n := count(); n != 1 {
			t.Fatalf("%d archives after the pass at %s, want 1; log:\n%s", n, first, logs.String())
		}
		before := first.Add(-90 * 24 * time.Hour).UTC().Truncate(time.Second)
		path := filepath.Join(archives, journal.ArchiveName(before))
		if !strings.Contains(logs.String(), `"msg":"journal archived"`) || !strings.Contains(logs.String(), journal.ArchiveName(before)) {
			t.Fatalf("log:\n%s", logs.String())
		}
		verifyAll(t, j)
		// The archive on its own: an intact chain that replays to the old files.
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var events []journal.Event
		v := journal.NewRangeVerifier()
		for _, line := range strings.Split(strings.TrimSpace(readAll(t, f)), "\n") {
			var e journal.Event
			if err := e.UnmarshalJSON([]byte(line)); err != nil {
				t.Fatal(err)
			}
			if err := v.Check(e); err != nil {
				t.Fatalf("the archive's chain: %v", err)
			}
			events = append(events, e)
		}
		r, err := journal.ReplayEvents(func(fn func(journal.Event) error) error {
			for _, e := range events {
				if err := fn(e); err != nil {
					return err
				}
			}
			return nil
		}, time.Time{})
		if err != nil || len(r.Files()) != 4 || int64(len(events)) != 16 {
			t.Fatalf("the archive replays %v (%d events), want the 4 old files' 16 events", err, len(events))
		}
		// The next day: nothing more is old enough; no second archive.
		time.Sleep(archiveEvery)
		if n := count(); n != 1 {
			t.Fatalf("%d archives the day after, want 1", n)
		}
	})
}

// TestArchivePostponedWhileItWouldGrowTheJournal: an archive appends one
// file state per file; while fewer events than files are old enough, the
// daemon does not archive (it would grow the journal) and says so.
func TestArchivePostponedWhileItWouldGrowTheJournal(t *testing.T) {
	dir := testtmp.Dir(t)
	synctest.Test(t, func(t *testing.T) {
		j, err := journal.Open(filepath.Join(dir, "ferry.db"), journal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		uploadFiles(t, j, "old", 1) // 4 events
		time.Sleep(60 * 24 * time.Hour)
		uploadFiles(t, j, "new", 9) // 10 files in all
		time.Sleep(31 * 24 * time.Hour)
		cfg := &config.Config{Journal: config.JournalConfig{ArchiveAfter: config.Age(90 * 24 * time.Hour), ArchiveDir: filepath.Join(dir, "archives")}}
		var logs bytes.Buffer
		if _, ok := ArchiveDue(context.Background(), j, cfg, time.Now(), slog.New(slog.NewJSONHandler(&logs, nil))); ok {
			t.Fatal("archived 4 events at the cost of 10 file states")
		}
		if !strings.Contains(logs.String(), "journal archive postponed") || !strings.Contains(logs.String(), `"events_older":4,"files":10`) {
			t.Fatalf("log:\n%s", logs.String())
		}
		if _, err := os.Stat(cfg.Journal.ArchiveDir); !os.IsNotExist(err) {
			t.Fatalf("archive_dir made: %v", err)
		}
		cfg.Journal.ArchiveAfter = 0 // off: nothing, silently
		logs.Reset()
		if _, ok := ArchiveDue(context.Background(), j, cfg, time.Now(), slog.New(slog.NewJSONHandler(&logs, nil))); ok || logs.Len() != 0 {
			t.Fatalf("archive_after 0: archived %v, log %s", ok, logs.String())
		}
	})
}

func readAll(t *testing.T, f *os.File) string {
	t.Helper()
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
