package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testcfg"
)

// TestArchiveKeys: [journal] archive_after takes days, archive_dir
// defaults to journal-archive beside the journal and resolves against
// the configuration's folder; bad values are refused at their line.
func TestArchiveKeys(t *testing.T) {
	fs := "[target.t]\ntype = \"fs\"\npath = \"out\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n"
	load := func(body string) (*Config, string, error) {
		p := testcfg.Write(t, body)
		os.MkdirAll(filepath.Join(filepath.Dir(p), "in"), 0o755)
		c, err := Load(p, testcfg.Env(nil))
		return c, p, err
	}
	c, p, err := load("[journal]\npath = \"state/ferry.db\"\narchive_after = \"90d\"\n" + fs)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.Journal.ArchiveAfter) != 90*24*time.Hour || c.Journal.ArchiveDir != filepath.Join(filepath.Dir(p), "state", DefaultArchiveDir) {
		t.Fatalf("archive_after %v, archive_dir %s", c.Journal.ArchiveAfter, c.Journal.ArchiveDir)
	}
	if s := c.Settings(); s["journal.archive_after"] != "90d" || s["journal.archive_dir"] != c.Journal.ArchiveDir {
		t.Fatalf("settings %q %q", s["journal.archive_after"], s["journal.archive_dir"])
	}
	c, p, err = load("[journal]\narchive_after = \"1d12h\"\narchive_dir = \"old\"\n" + fs)
	if err != nil || time.Duration(c.Journal.ArchiveAfter) != 36*time.Hour || c.Journal.ArchiveDir != filepath.Join(filepath.Dir(p), "old") {
		t.Fatalf("1d12h, old: %v %v", c.Journal, err)
	}
	if c, _, err := load(fs); err != nil || c.Journal.ArchiveAfter != 0 {
		t.Fatalf("left out: %v %v", c.Journal.ArchiveAfter, err)
	}
	for _, b := range []struct {
		body string
		line int
		want string
	}{
		{"[journal]\narchive_after = \"0d\"\n", 2, "journal.archive_after: must not be 0"},
		{"[journal]\narchive_after = \"12h\"\n", 2, "journal.archive_after: must be at least 1d (got 12h0m0s)"},
		{"[journal]\narchive_after = \"90 days\"\n", 2, "invalid duration"},
		{"[journal]\narchive_after = 90\n", 2, "invalid duration"},
		{"[journal]\narchive_dir = \"\"\n", 2, "journal.archive_dir: must not be empty"},
		{"[journal]\narchive_dir = \"in/archives\"\n", 2, "inside the watched folder"},
	} {
		_, p, err := load(b.body + fs)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s:%d:", p, b.line)) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: %v, want %q at line %d", b.body, err, b.want, b.line)
		}
	}
}
