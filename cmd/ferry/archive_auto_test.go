package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/journal"
)

// TestAutomaticArchiveVerifies: after the archive the daemon makes by
// [journal] archive_after (daemon.ArchiveDue, its daily pass, here as if
// 91 days had gone by), `ferry journal verify` passes on the journal, the
// archive in the default archive_dir verifies and replays on its own, and
// the journal goes on (another run, verified again).
func TestAutomaticArchiveVerifies(t *testing.T) {
	dir, cfg, ferry := stateSetup(t)
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, []byte(strings.Replace(string(b), "[journal]\n", "[journal]\narchive_after = \"90d\"\n", 1)), 0o644)
	writeBatch(t, dir, "A", "one.bin", "two.bin")
	writeBatch(t, dir, "B", "three.bin")
	if code, out, errs := ferry("run", "--once", "--config", cfg); code != 0 {
		t.Fatalf("run: %d %s %s", code, out, errs)
	}
	c, err := config.Load(cfg, testcfg.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(c.Journal.Path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(91 * 24 * time.Hour)
	p, ok := daemon.ArchiveDue(t.Context(), j, c, now, slog.New(slog.DiscardHandler))
	j.Close()
	if !ok {
		t.Fatal("no archive 91 days on")
	}
	archive := filepath.Join(dir, config.DefaultArchiveDir, journal.ArchiveName(now.Add(-90*24*time.Hour).Truncate(time.Second)))
	if _, err := os.Stat(archive); err != nil {
		t.Fatalf("the archive is not in the default archive_dir: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".ferry-archive-states-*")); len(left) != 0 {
		t.Fatalf("the file states' spool is left: %v", left)
	}
	if code, out, errs := ferry("journal", "verify", "--config", cfg); code != 0 || !strings.Contains(out, "intact") || !strings.Contains(out, "(3 files)") {
		t.Fatalf("journal verify after the automatic archive: %d %s %s", code, out, errs)
	}
	if code, out, errs := ferry("journal", "verify", "--export", archive); code != 0 || !strings.Contains(out, fmt.Sprintf("intact, %d events", p.Count)) {
		t.Fatalf("journal verify --export of the archive: %d %s %s", code, out, errs)
	}
	if code, out, errs := ferry("journal", "state", "--export", archive, "--at", now.UTC().Format(time.RFC3339Nano), "--format", "jsonl"); code != 0 || len(jsonlStates(t, out)) != 3 {
		t.Fatalf("journal state --export of the archive: %d %s %s", code, out, errs)
	}
	writeBatch(t, dir, "C", "four.bin")
	if code, out, errs := ferry("run", "--once", "--config", cfg); code != 0 {
		t.Fatalf("run after the archive: %d %s %s", code, out, errs)
	}
	if code, out, errs := ferry("journal", "verify", "--config", cfg); code != 0 || !strings.Contains(out, "(4 files)") {
		t.Fatalf("journal verify after the archive and another run: %d %s %s", code, out, errs)
	}
	// By hand, without --out, the archive goes to the same archive_dir.
	later := now.Add(24 * time.Hour)
	if code, out, errs := ferry("journal", "archive", "--config", cfg, "--before", later.UTC().Format(time.RFC3339)); code != 0 ||
		!strings.Contains(out, filepath.Join(dir, config.DefaultArchiveDir, journal.ArchiveName(later.Truncate(time.Second)))) {
		t.Fatalf("journal archive without --out: %d %s %s", code, out, errs)
	}
}
