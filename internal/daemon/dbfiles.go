package daemon

import (
	"errors"
	"io/fs"
	"os"

	"github.com/ferry-data/ferry/journal"
)

// The files of a SQLite database: the database, and its WAL and
// shared-memory files beside it while it is open or after a crash.

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// moveDB renames a SQLite database with its WAL and shared-memory files.
func moveDB(from, to string) error {
	os.Remove(journal.CleanPath(from)) // the clean-close marker of what was at from
	for _, suffix := range []string{"-wal", "-shm"} {
		if exists(from + suffix) {
			if err := os.Rename(from+suffix, to+suffix); err != nil {
				return err
			}
		}
	}
	return os.Rename(from, to)
}

func removeDB(path string) {
	os.Remove(journal.CleanPath(path))
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}
