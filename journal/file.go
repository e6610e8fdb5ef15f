package journal

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ApplicationID marks a SQLite file as a ferry journal (PRAGMA
// application_id, bytes 68-71 of the file): "FRRY".
const ApplicationID = 0x46525259

// ErrGone is wrapped by CheckFile's error when the journal's path no
// longer names the file the journal has open (deleted, or replaced).
var ErrGone = errors.New("journal file is gone")

// fileMode is the mode of a new journal in dir: 0600, or 0640 when dir is
// setgid (a package made it group-owned, 2750, for a group of readers).
func fileMode(dir string) os.FileMode {
	if fi, err := os.Stat(dir); err == nil && fi.Mode()&os.ModeSetgid != 0 {
		return 0o640
	}
	return 0o600
}

// create makes a new, empty, marked journal at path: built under
// <path>.new with the journal's mode, then renamed into place, so that a
// crash never leaves a half-made file at path (migrations, each in its
// transaction, follow on the real file).
func create(path string) error {
	tmp := path + ".new"
	for _, s := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(tmp + s)
	}
	mode := fileMode(filepath.Dir(path))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	err = errors.Join(f.Chmod(mode), f.Close()) // the umask may have taken bits
	if err == nil {
		err = initFile(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// initFile stamps the empty SQLite file at path as a ferry journal in WAL
// mode, and leaves no -wal beside it.
func initFile(path string) error {
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		fmt.Sprintf(`PRAGMA application_id = %d`, ApplicationID),
		`PRAGMA journal_mode = DELETE`, // one file to rename; the writer turns WAL on
		`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`,
	} {
		if _, err := db.Exec(q); err != nil {
			return err
		}
	}
	return db.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() // not supported everywhere (Windows): best effort
		d.Close()
	}
}

// checkMark refuses a file that is not a ferry journal: an empty file, or
// a SQLite database that neither carries ferry's application_id nor has
// ferry's tables. A journal made by a ferry from before the mark (its
// tables are there, application_id 0) is stamped when stamp is set.
func checkMark(db *sql.DB, path string, stamp bool) error {
	var id int64
	if err := db.QueryRow(`PRAGMA application_id`).Scan(&id); err != nil {
		if isCorrupt(err) {
			return fmt.Errorf("%w: %s: %s", ErrCorrupt, path, err)
		}
		return fmt.Errorf("journal %s: %w", path, err)
	}
	if id == ApplicationID {
		return nil
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('schema_migrations', 'files', 'events')`).Scan(&n); err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	if id != 0 || n != 3 {
		return fmt.Errorf("%w: %s: not a ferry journal (a SQLite database with application_id %d and without ferry's tables)", ErrCorrupt, path, id)
	}
	if !stamp {
		return nil
	}
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA application_id = %d`, ApplicationID)); err != nil {
		return fmt.Errorf("journal %s: mark as a ferry journal: %w", path, err)
	}
	return nil
}

// checkFile is checkMark on a read-only connection, which changes nothing.
func checkFile(path string) error {
	db, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	defer db.Close()
	return checkMark(db, path, false)
}

// checkNotEmpty refuses an empty file at path: SQLite would take it as a
// new database, and the history it should hold would be silently lost.
func checkNotEmpty(fi fs.FileInfo, path string) error {
	if fi.Size() == 0 {
		return fmt.Errorf("%w: %s: not a ferry journal (an empty file)", ErrCorrupt, path)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s: not a ferry journal (not a regular file)", ErrCorrupt, path)
	}
	return nil
}

// CheckFile says whether the journal's path still names the file the
// journal opened: an error wrapping ErrGone when it was deleted or replaced
// (the open handle still holds the data; see Rescue).
func (j *Journal) CheckFile() error {
	fi, err := os.Stat(j.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s was deleted while ferry had it open", ErrGone, j.path)
	case err != nil:
		return fmt.Errorf("journal %s: %w", j.path, err)
	case j.file != nil && !os.SameFile(j.file, fi):
		return fmt.Errorf("%w: %s was replaced by another file while ferry had it open", ErrGone, j.path)
	}
	return nil
}

// Rescue is Close for a journal whose file is gone (CheckFile): it copies
// what the open handle still reads (VACUUM INTO) to <path>.rescued, closes
// the journal, and puts the copy at path when nothing is there; when
// another file took the path, the copy stays beside it. It returns where
// the copy is.
func (j *Journal) Rescue() (string, error) {
	if j.w == nil {
		return "", errors.New("a read-only journal has nothing to rescue")
	}
	// The writer finishes what was submitted first; VACUUM needs the one
	// writer connection outside a transaction.
	j.once.Do(func() { close(j.quit) })
	<-j.exited
	tmp := j.path + ".rescued"
	os.Remove(tmp)
	_, verr := j.w.Exec(`VACUUM INTO ?`, tmp)
	cerr := j.Close() // the last connection removes the old -wal and -shm
	if verr != nil {
		return "", errors.Join(fmt.Errorf("journal %s: rescue: %w", j.path, verr), cerr)
	}
	os.Chmod(tmp, fileMode(filepath.Dir(j.path)))
	if _, err := os.Lstat(j.path); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(tmp, j.path); err != nil {
			return tmp, err
		}
		syncDir(filepath.Dir(j.path))
		return j.path, cerr
	}
	return tmp, cerr
}
