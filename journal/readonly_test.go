package journal

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
)

func TestOpenReadOnlyBesideTheWriterAndAlone(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(testtmp.Dir(t), "ferry.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"a/1", "a/2", "a/3"} {
		if _, err := j.RecordSettled(ctx, settled(rel, 10)); err != nil {
			t.Fatal(err)
		}
	}
	jobs := mustClaim(t, j, 2)
	if err := j.Retry(ctx, &jobs[0], "HTTP 503", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := j.Fail(ctx, &jobs[1], "permission_denied", "open: denied"); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		r, err := OpenReadOnly(path)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		defer r.Close()
		c, err := r.Counts(ctx)
		if err != nil || c[Queued] != 2 || c[Failed] != 1 {
			t.Errorf("%s: counts %v, %v", when, c, err)
		}
		e, ok, err := r.LastError(ctx)
		if err != nil || !ok || e.Path != jobs[1].RelPath || e.Class != "permission_denied" || e.Message != "open: denied" || e.Watch != "/data" || e.Target != "t" || e.Time.IsZero() {
			t.Errorf("%s: last error %+v %v %v", when, e, ok, err)
		}
		if _, err := r.RecordSettled(ctx, settled("b", 1)); !errors.Is(err, ErrClosed) {
			t.Errorf("%s: a write on a read-only journal: %v, want ErrClosed", when, err)
		}
	}
	check("while the writer is open")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	check("after the writer closed")
	if _, err := OpenReadOnly(filepath.Join(testtmp.Dir(t), "none.db")); !errors.Is(err, ErrNoJournal) {
		t.Errorf("a missing journal: %v, want ErrNoJournal", err)
	}
}
