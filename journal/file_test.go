package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// A new journal is marked as ferry's, is made 0600 (0640 in a setgid
// folder) and leaves no temporary file behind.
func TestNewJournalIsMarkedAndPrivate(t *testing.T) {
	dir := testtmp.Dir(t)
	path := filepath.Join(dir, "ferry.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	db := rawDB(t, path)
	defer db.Close()
	var id int64
	if err := db.QueryRow(`PRAGMA application_id`).Scan(&id); err != nil || id != ApplicationID {
		t.Errorf("application_id = %d, %v; want %d", id, err, ApplicationID)
	}
	if _, err := os.Stat(path + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s.new left behind: %v", path, err)
	}
	if runtime.GOOS == "windows" {
		return
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v; want 0600", fi.Mode().Perm())
	}
	shared := filepath.Join(dir, "shared")
	if err := os.Mkdir(shared, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o750|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	j, err = Open(filepath.Join(shared, "ferry.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	if fi, _ := os.Stat(filepath.Join(shared, "ferry.db")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode in a setgid folder %v; want 0640", fi.Mode().Perm())
	}
}

// A file that is not a ferry journal is refused like a corrupt one and
// left as it is; a journal from before the mark is recognised by its
// tables and marked.
func TestNotAJournalIsRefused(t *testing.T) {
	dir := testtmp.Dir(t)
	cases := map[string]func(path string){
		"an empty file": func(path string) { os.WriteFile(path, nil, 0o600) },
		"a text file":   func(path string) { os.WriteFile(path, []byte(strings.Repeat("not sqlite\n", 100)), 0o600) },
		"another database": func(path string) {
			db := rawDB(t, path)
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE photos (id INTEGER PRIMARY KEY)`); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, make := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".db")
		make(path)
		before, _ := os.ReadFile(path)
		if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not a ferry journal") && name != "a text file" {
			t.Errorf("Open of %s: %v; want ErrCorrupt, not a ferry journal", name, err)
		}
		if _, err := OpenReadOnly(path); !errors.Is(err, ErrCorrupt) {
			t.Errorf("OpenReadOnly of %s: %v; want ErrCorrupt", name, err)
		}
		if after, _ := os.ReadFile(path); string(after) != string(before) {
			t.Errorf("%s was changed by the refused open", name)
		}
	}

	// An older ferry's journal: ferry's tables, no mark.
	path := filepath.Join(dir, "old.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	db := rawDB(t, path)
	if _, err := db.Exec(`PRAGMA application_id = 0`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if j, err = OpenReadOnly(path); err != nil {
		t.Fatalf("read-only open of an unmarked ferry journal: %v", err)
	}
	j.Close()
	if j, err = Open(path, Options{}); err != nil {
		t.Fatalf("open of an unmarked ferry journal: %v", err)
	}
	j.Close()
	db = rawDB(t, path)
	defer db.Close()
	var id int64
	if db.QueryRow(`PRAGMA application_id`).Scan(&id); id != ApplicationID {
		t.Errorf("an unmarked ferry journal was not marked: application_id %d", id)
	}
}

// The lock: a second exclusive open fails naming the holder; a plain or
// read-only open works beside it; the lock is free again after Close.
func TestExclusiveOpen(t *testing.T) {
	path := filepath.Join(testtmp.Dir(t), "ferry.db")
	j, err := Open(path, Options{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	want := fmt.Sprintf("journal %s is in use by ferry pid %d on %s since ", path, os.Getpid(), host)
	_, err = Open(path, Options{Exclusive: true})
	var iu *InUseError
	if !errors.As(err, &iu) || !errors.Is(err, ErrInUse) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("second exclusive open: %v; want %q...", err, want)
	}
	if _, err := Lock(path); !errors.Is(err, ErrInUse) {
		t.Errorf("Lock beside the holder: %v", err)
	}
	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatalf("read-only open beside the holder: %v", err)
	}
	r.Close()
	j.Close()
	j, err = Open(path, Options{Exclusive: true})
	if err != nil {
		t.Fatalf("exclusive open after Close: %v", err)
	}
	j.Close()
}

// Rescue copies what a journal whose file was deleted still holds back to
// its path.
func TestRescueAfterDeletion(t *testing.T) {
	path := filepath.Join(testtmp.Dir(t), "ferry.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.RecordSettled(t.Context(), settled("a.bin", 10)); err != nil {
		t.Fatal(err)
	}
	if err := j.CheckFile(); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "windows" {
		j.Close()
		return // an open file cannot be deleted there
	}
	os.Remove(path)
	if err := j.CheckFile(); !errors.Is(err, ErrGone) {
		t.Fatalf("CheckFile after the deletion: %v", err)
	}
	at, err := j.Rescue()
	if err != nil || at != path {
		t.Fatalf("Rescue = %q, %v", at, err)
	}
	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if rows, err := r.Files(t.Context()); err != nil || len(rows) != 1 || rows[0].RelPath != "a.bin" {
		t.Errorf("rescued journal holds %v, %v; want a.bin", rows, err)
	}
}
