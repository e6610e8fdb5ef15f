package service

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/config"
)

// TestWritablePathsHoldTheArchiveDir: with [journal] archive_after the
// service may write archive_dir; it is listed unless it is inside the
// journal's folder (already writable), and not listed without the policy.
func TestWritablePathsHoldTheArchiveDir(t *testing.T) {
	root := t.TempDir()
	cfg := &config.Config{Journal: config.JournalConfig{Path: filepath.Join(root, "state", "ferry.db"), ArchiveDir: filepath.Join(root, "state", "journal-archive")}}
	if ps := WritablePaths(cfg); !slices.Equal(ps, []string{filepath.Join(root, "state")}) {
		t.Fatalf("no policy: %v", ps)
	}
	cfg.Journal.ArchiveAfter = config.Age(90 * 24 * time.Hour)
	if ps := WritablePaths(cfg); !slices.Equal(ps, []string{filepath.Join(root, "state")}) {
		t.Fatalf("archive_dir inside the journal's folder: %v", ps)
	}
	cfg.Journal.ArchiveDir = filepath.Join(root, "archives")
	if ps := WritablePaths(cfg); !slices.Contains(ps, filepath.Join(root, "archives")) {
		t.Fatalf("archive_dir elsewhere: %v", ps)
	}
	cfg.Journal.ArchiveDir = filepath.Join(root, "state-archives") // a sibling whose name starts like it
	if ps := WritablePaths(cfg); !slices.Contains(ps, filepath.Join(root, "state-archives")) {
		t.Fatalf("a sibling folder: %v", ps)
	}
}
