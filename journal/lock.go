package journal

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// ErrInUse is wrapped by the error Lock returns when another process (a
// running daemon, a rebuild) holds the journal.
var ErrInUse = errors.New("journal is in use")

// InUseError names the process that holds a journal's lock, as it wrote
// itself into the lock file.
type InUseError struct {
	Path   string // the journal
	Holder string // "ferry pid N on HOST since T", or what could be read
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("journal %s is in use by %s", e.Path, e.Holder)
}

func (e *InUseError) Unwrap() error { return ErrInUse }

// FileLock is the exclusive OS lock (flock on Unix, LockFileEx on Windows)
// one process holds on a journal for as long as it writes it as a daemon:
// a second daemon, or a rebuild, on the same journal is refused. It lives in
// a separate file, <journal>.lock, so SQLite's own locking is untouched;
// readers (ferry status, journal export and verify, dlq list) never take it.
// The OS drops the lock when the process ends, however it ends.
type FileLock struct {
	f *os.File
}

// LockPath is the lock file of the journal at path.
func LockPath(path string) string { return path + ".lock" }

// Lock takes the journal's lock without waiting, and writes into the lock
// file who holds it (pid, host, since). When another process holds it, the
// error is an *InUseError (errors.Is ErrInUse) that names it.
func Lock(path string) (*FileLock, error) {
	f, err := os.OpenFile(LockPath(path), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal %s: lock: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		defer f.Close()
		if !errors.Is(err, errLocked) {
			return nil, fmt.Errorf("journal %s: lock %s: %w", path, f.Name(), err)
		}
		b := make([]byte, 512)
		n, _ := f.ReadAt(b, 0)
		holder := strings.TrimSpace(string(b[:n]))
		if holder == "" {
			holder = "another process (it has not said which yet)"
		}
		return nil, &InUseError{Path: path, Holder: holder}
	}
	host, _ := os.Hostname()
	info := fmt.Sprintf("ferry pid %d on %s since %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(info), 0)
	}
	if err != nil {
		unlockFile(f)
		f.Close()
		return nil, fmt.Errorf("journal %s: lock %s: %w", path, f.Name(), err)
	}
	return &FileLock{f: f}, nil
}

// Unlock releases the lock. The lock file stays (removing it would let a
// third process lock a new file while a second still waits on the old one).
func (l *FileLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := errors.Join(unlockFile(l.f), l.f.Close())
	l.f = nil
	return err
}
