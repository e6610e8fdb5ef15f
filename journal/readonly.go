package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// ErrNoJournal is returned by OpenReadOnly when there is no journal file.
var ErrNoJournal = errors.New("no journal")

// OpenReadOnly opens an existing journal for reading only, for commands that
// look at it while a daemon may be writing it (ferry status): it neither
// creates, migrates nor checks the file, and every transition fails with
// ErrClosed. SQLite's WAL lets it read a consistent snapshot beside the
// daemon's writer. A missing journal is ErrNoJournal (nothing is created);
// a file that is not a ferry journal is ErrCorrupt, as in Open.
func OpenReadOnly(path string) (*Journal, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s", ErrNoJournal, path)
		}
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if err := checkNotEmpty(fi, path); err != nil {
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	r.SetMaxOpenConns(2)
	if err := r.Ping(); err != nil {
		r.Close()
		if isCorrupt(err) {
			return nil, fmt.Errorf("%w: %s: %s", ErrCorrupt, path, err)
		}
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if err := checkMark(r, path, false); err != nil {
		r.Close()
		return nil, err
	}
	j := &Journal{path: path, file: fi, r: r, now: time.Now, quit: make(chan struct{}), exited: make(chan struct{})}
	if j.known, err = r.Prepare(knownQuery); err != nil {
		r.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	j.once.Do(func() { close(j.quit) }) // no writer: submissions fail at once
	close(j.exited)
	return j, nil
}

// FileError is the most recent failure recorded on a file.
type FileError struct {
	Time    time.Time
	Watch   string
	Path    string // relative to Watch
	Target  string
	Class   string // "transient" (it will be retried) or the permanent class
	Message string
}

// LastError returns the most recent failure still recorded on a file: a
// file waiting for a retry after a transient failure, or a dead letter.
// ok is false when no file carries one.
func (j *Journal) LastError(ctx context.Context) (e FileError, ok bool, err error) {
	var at int64
	err = j.r.QueryRowContext(ctx, `SELECT updated_at, watch, rel_path, target, error_class, COALESCE(error, '') FROM files
		WHERE error_class IS NOT NULL AND state IN ('queued', 'uploading', 'failed') ORDER BY updated_at DESC, id DESC LIMIT 1`).
		Scan(&at, &e.Watch, &e.Path, &e.Target, &e.Class, &e.Message)
	if errors.Is(err, sql.ErrNoRows) {
		return FileError{}, false, nil
	}
	if err != nil {
		return FileError{}, false, err
	}
	e.Time = time.Unix(0, at).UTC()
	return e, true, nil
}
