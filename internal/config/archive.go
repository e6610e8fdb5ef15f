package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The journal's growth policy: [journal] archive_after and archive_dir.
// With archive_after set, the daemon moves the events older than that to
// a JSONL archive in archive_dir once a day (internal/daemon/archive.go),
// as `ferry journal archive` does by hand; archive_dir is also where that
// command writes when it is given no --out.

// DefaultArchiveDir is [journal] archive_dir: "journal-archive" beside the
// journal.
const DefaultArchiveDir = "journal-archive"

// MinArchiveAfter is the least [journal] archive_after: the daemon looks
// once a day.
const MinArchiveAfter = 24 * time.Hour

// Age is a duration that may be written in days: "90d", "36h", "1d12h".
type Age time.Duration

// UnmarshalTOML accepts a Go duration string, optionally led by days
// ("Nd").
func (a *Age) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("invalid duration %v: want a string such as \"90d\" or \"36h\"", v)
	}
	d, err := parseAge(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (use days and units such as 90d, 1d12h, 36h)", s)
	}
	*a = Age(d)
	return nil
}

func parseAge(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, err
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	return days + d, err
}

// String writes whole days as "Nd".
func (a Age) String() string {
	d := time.Duration(a)
	if day := 24 * time.Hour; d > 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

// validateArchive checks archive_after and fills in archive_dir.
func (c *Config) validateArchive(v *checker) {
	j := &c.Journal
	switch {
	case j.ArchiveAfter == 0 && v.defined("journal", "archive_after"):
		v.badKey("journal", "archive_after", "must not be 0: at least 1d (leave the key out to archive only by hand, with ferry journal archive)")
	case j.ArchiveAfter != 0 && time.Duration(j.ArchiveAfter) < MinArchiveAfter:
		v.badKey("journal", "archive_after", "must be at least 1d (got %s): the daemon archives once a day", j.ArchiveAfter)
	}
	if j.ArchiveDir == "" {
		if v.defined("journal", "archive_dir") {
			v.badKey("journal", "archive_dir", "must not be empty (leave the key out for %s beside the journal)", DefaultArchiveDir)
		}
		j.ArchiveDir = filepath.Join(filepath.Dir(j.Path), DefaultArchiveDir)
	}
	j.ArchiveDir = c.resolve(j.ArchiveDir)
}

// validateArchiveOverlap refuses an archive_dir inside a watched folder:
// ferry would upload its own archives.
func (c *Config) validateArchiveOverlap(v *checker) {
	dir := canonical(c.Journal.ArchiveDir)
	for i, w := range c.Watch {
		root := canonical(w.Path)
		if root == "" || w.Path == "" || !watched(filepath.Join(dir, "x"), root, w.Recursive == nil || *w.Recursive) {
			continue
		}
		line := v.loc.line("journal", "archive_dir")
		if !v.defined("journal", "archive_dir") {
			line = v.loc.arrayLine("watch", i, "path")
		}
		v.bad(line, "journal.archive_dir", "the archives go to %s, inside the watched folder %s: ferry would upload them; set [journal] archive_dir outside it", c.Journal.ArchiveDir, w.Path)
	}
}
