package journal

import (
	"fmt"
	"os"
	"path/filepath"
)

// The start-up integrity check. SQLite's quick_check reads every page of
// the journal: 0.6 s at 100,000 files, growing with the file. Open runs it
// only when the journal may have been left in a state nobody checked:
//
//   - Close, when nothing is left in a WAL (it was the last to have the
//     journal open, so SQLite checkpointed the WAL into the file and
//     deleted it), writes <journal>.clean with the file's size and
//     modification time;
//   - Open runs quick_check unless that marker is there, names the file's
//     current size and modification time exactly, and no WAL with content
//     is beside the file. Open removes the marker before anything is
//     written, so a run that does not end in Close (a crash, a power cut, a
//     kill) leaves none, and the next Open checks.
//
// So the check runs after every unclean end, after anything else wrote the
// file (a disk tool, a partial copy, a restore: its size or time changes)
// and whenever another process has it open (its WAL is there), and is
// skipped only for a journal found exactly as ferry closed it. `ferry
// journal verify` runs SQLite's full integrity_check besides the chains.

// CleanPath is the clean-close marker of the journal at path.
func CleanPath(path string) string { return path + ".clean" }

// cleanMark is what the marker says of the file: size and modification
// time (nanoseconds).
func cleanMark(fi os.FileInfo) string {
	return fmt.Sprintf("size=%d mtime_ns=%d\n", fi.Size(), fi.ModTime().UnixNano())
}

// closedCleanly reports whether the journal at path is as the last Close
// left it (see above), and removes the marker whatever the answer.
func closedCleanly(path string) bool {
	b, err := os.ReadFile(CleanPath(path))
	if err != nil {
		return false
	}
	if os.Remove(CleanPath(path)) != nil {
		return false // a marker that cannot go could outlive a crash
	}
	fi, err := os.Stat(path)
	if err != nil || string(b) != cleanMark(fi) {
		return false
	}
	if w, err := os.Stat(path + "-wal"); err == nil && w.Size() > 0 || err != nil && !os.IsNotExist(err) {
		return false
	}
	return true
}

// markClean writes the clean-close marker when nothing waits in a WAL
// beside the journal (SQLite checkpointed it: Close was the last writer).
// opened is the file Open opened: a path that names another file now is
// left alone.
func markClean(path string, opened os.FileInfo) error {
	if w, err := os.Stat(path + "-wal"); err == nil && w.Size() > 0 || err != nil && !os.IsNotExist(err) {
		return nil // the WAL holds what is not in the file yet (another process has it open): no marker
	}
	fi, err := os.Stat(path)
	if err != nil || !os.SameFile(fi, opened) {
		return err
	}
	f, err := os.OpenFile(CleanPath(path), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode(filepath.Dir(path)))
	if err != nil {
		return err
	}
	_, err = f.WriteString(cleanMark(fi))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(CleanPath(path))
	}
	return err
}

// StartCheck says how Open checked the journal's integrity: "quick_check",
// or that it skipped it because the journal was as ferry closed it.
func (j *Journal) StartCheck() string { return j.startCheck }
