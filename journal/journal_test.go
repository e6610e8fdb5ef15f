package journal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
)

func open(t *testing.T) *Journal {
	t.Helper()
	j, err := Open(filepath.Join(testtmp.Dir(t), "ferry.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func settled(rel string, size int64) Settled {
	return Settled{Watch: "/data", RelPath: rel, Target: "t", Key: "p/" + rel, BatchID: strings.Split(rel, "/")[0],
		Version: Version{Size: size, MtimeNS: 1, FileID: "1:2"}, Signal: "quiet"}
}

func mustClaim(t *testing.T, j *Journal, n int) []Job {
	t.Helper()
	jobs, err := j.Claim(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func state(t *testing.T, j *Journal, rel string) FileRow {
	t.Helper()
	rows, err := j.Files(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.RelPath == rel {
			return r
		}
	}
	t.Fatalf("%s not journaled", rel)
	return FileRow{}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	out, err := j.RecordSettled(ctx, settled("run1/a.tif", 10))
	if err != nil || out != Added {
		t.Fatalf("RecordSettled = %v, %v; want Added", out, err)
	}
	if out, _ := j.RecordSettled(ctx, settled("run1/a.tif", 10)); out != Unchanged {
		t.Fatalf("same version recorded again: %v, want Unchanged", out)
	}
	known, err := j.Known(ctx, "/data", "run1/a.tif", Version{Size: 10, MtimeNS: 1, FileID: "1:2"})
	if err != nil || !known {
		t.Fatalf("Known = %v, %v", known, err)
	}
	if known, _ := j.Known(ctx, "/data", "run1/a.tif", Version{Size: 11, MtimeNS: 1, FileID: "1:2"}); known {
		t.Fatal("another version reported known")
	}
	jobs := mustClaim(t, j, 10)
	if len(jobs) != 1 || jobs[0].Attempts != 1 || jobs[0].CorrelationID == "" || jobs[0].Key != "p/run1/a.tif" {
		t.Fatalf("Claim = %+v", jobs)
	}
	if again := mustClaim(t, j, 10); len(again) != 0 {
		t.Fatalf("claimed an uploading file twice: %+v", again)
	}
	jb := &jobs[0]
	if err := j.RecordHashes(ctx, jb, "ff", []Chunk{{Seq: 1, Size: 10, SHA256: "ff"}}); err != nil {
		t.Fatal(err)
	}
	if err := j.Complete(ctx, jb, "ff", jb.Key); err != nil {
		t.Fatal(err)
	}
	if r := state(t, j, "run1/a.tif"); r.State != Uploaded || r.SHA256 != "ff" {
		t.Fatalf("after Complete: %+v", r)
	}
	// settled, claimed, file_hashed (its one chunk the whole file: no
	// chunk_hashed), uploaded.
	if n, err := j.VerifyChain(ctx); err != nil || n != 4 {
		t.Fatalf("VerifyChain = %d, %v; want 4 events intact", n, err)
	}
}

func TestNewVersionDuringUploadIsStale(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	j.RecordSettled(ctx, settled("a", 10))
	jb := mustClaim(t, j, 1)[0]
	// The file is rewritten and settles again while being uploaded.
	if out, err := j.RecordSettled(ctx, settled("a", 20)); err != nil || out != Requeued {
		t.Fatalf("RecordSettled(new version) = %v, %v", out, err)
	}
	if jobs := mustClaim(t, j, 1); len(jobs) != 0 {
		t.Fatal("a file being uploaded was claimed again for its new version")
	}
	if err := j.Complete(ctx, &jb, "aa", jb.Key); !errors.Is(err, ErrStale) {
		t.Fatalf("Complete of the old version = %v, want ErrStale", err)
	}
	r := state(t, j, "a")
	if r.State != Queued || r.Size != 20 {
		t.Fatalf("after stale completion: %+v, want the new version queued", r)
	}
	jobs := mustClaim(t, j, 1)
	if len(jobs) != 1 || jobs[0].Version.Size != 20 || jobs[0].Generation != jb.Generation+1 {
		t.Fatalf("Claim = %+v", jobs)
	}
}

func TestRetryIsDueLater(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	j, err := Open(filepath.Join(testtmp.Dir(t), "j.db"), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	j.RecordSettled(ctx, settled("a", 1))
	jb := mustClaim(t, j, 1)[0]
	if err := j.Retry(ctx, &jb, "HTTP 503", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if jobs := mustClaim(t, j, 1); len(jobs) != 0 {
		t.Fatal("claimed before it was due")
	}
	at, ok, err := j.NextDue(ctx)
	if err != nil || !ok || !at.Equal(now.Add(time.Minute)) {
		t.Fatalf("NextDue = %v %v %v", at, ok, err)
	}
	now = now.Add(time.Minute)
	jobs := mustClaim(t, j, 1)
	if len(jobs) != 1 || jobs[0].Attempts != 2 {
		t.Fatalf("Claim after due = %+v, want attempt 2", jobs)
	}
}

func TestFailReleaseAndSourceChanged(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	for _, rel := range []string{"f", "r", "c"} {
		j.RecordSettled(ctx, settled(rel, 1))
	}
	jobs := mustClaim(t, j, 3)
	by := map[string]*Job{}
	for i := range jobs {
		by[jobs[i].RelPath] = &jobs[i]
	}
	if err := j.Fail(ctx, by["f"], "vanished", "source file vanished"); err != nil {
		t.Fatal(err)
	}
	if err := j.Release(ctx, by["r"]); err != nil {
		t.Fatal(err)
	}
	if err := j.SourceChanged(ctx, by["c"], "size changed"); err != nil {
		t.Fatal(err)
	}
	if r := state(t, j, "f"); r.State != Failed || r.ErrorClass != "vanished" {
		t.Errorf("f: %+v", r)
	}
	if r := state(t, j, "r"); r.State != Queued || r.Attempts != 0 {
		t.Errorf("r: %+v, want queued with the attempt not counted", r)
	}
	if r := state(t, j, "c"); r.State != Changed {
		t.Errorf("c: %+v", r)
	}
	// A changed file is queued again when its new version settles.
	if out, _ := j.RecordSettled(ctx, settled("c", 2)); out != Requeued {
		t.Errorf("new version of a changed file: %v, want Requeued", out)
	}
	if r := state(t, j, "c"); r.State != Queued {
		t.Errorf("c after re-settle: %+v", r)
	}
}

func TestInvalidKeyIsRecordedFailed(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	s := settled("bad\x01name", 1)
	s.Invalid = "contains a control character"
	if _, err := j.RecordSettled(ctx, s); err != nil {
		t.Fatal(err)
	}
	if r := state(t, j, "bad\x01name"); r.State != Failed || r.ErrorClass != "invalid_key" {
		t.Fatalf("%+v", r)
	}
	if jobs := mustClaim(t, j, 1); len(jobs) != 0 {
		t.Fatal("claimed a file that cannot be uploaded")
	}
}

func TestRecoverRequeuesInterruptedUploads(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(testtmp.Dir(t), "j.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.RecordSettled(ctx, settled("a", 1))
	jb := mustClaim(t, j, 1)[0]
	j.SetUploadID(ctx, &jb, "up-1")
	j.Close() // the process "dies" mid-upload
	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if n, err := j.Recover(ctx); err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	jobs := mustClaim(t, j, 1)
	if len(jobs) != 1 || jobs[0].UploadID != "up-1" {
		t.Fatalf("after Recover: %+v, want the file with its upload id", jobs)
	}
	if _, err := j.VerifyChain(ctx); err != nil {
		t.Fatalf("chain broken across reopen: %v", err)
	}
}

// An upload kept for the next attempt is resumed only when it was begun
// for the file's current version: a new version settling after its
// multipart_created event makes it an earlier version's (to abort).
func TestUploadIsCurrent(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	j.RecordSettled(ctx, settled("a", 1))
	jb := mustClaim(t, j, 1)[0]
	if ok, err := j.UploadIsCurrent(ctx, &jb); err != nil || ok {
		t.Fatalf("no upload: UploadIsCurrent = %v, %v; want false", ok, err)
	}
	if err := j.SetUploadID(ctx, &jb, "up-1"); err != nil {
		t.Fatal(err)
	}
	if err := j.Finish(ctx, &jb, End{Kind: KindRetryScheduled, Class: "transient", Reason: "x", Due: time.Now()}); err != nil {
		t.Fatal(err)
	}
	jb = mustClaim(t, j, 1)[0]
	if ok, err := j.UploadIsCurrent(ctx, &jb); err != nil || !ok || jb.UploadID != "up-1" {
		t.Fatalf("the next attempt: UploadIsCurrent = %v, %v (upload %q); want true for up-1", ok, err, jb.UploadID)
	}
	other := jb
	other.UploadID = "up-0"
	if ok, err := j.UploadIsCurrent(ctx, &other); err != nil || ok {
		t.Fatalf("another upload id: UploadIsCurrent = %v, %v; want false", ok, err)
	}
	// A new version settles during the attempt: the job ends superseded,
	// the upload stays journaled, and is no longer current.
	j.RecordSettled(ctx, settled("a", 2))
	if err := j.Finish(ctx, &jb, End{Kind: KindReleased}); !errors.Is(err, ErrStale) {
		t.Fatalf("Finish after a new version: %v, want ErrStale", err)
	}
	jb = mustClaim(t, j, 1)[0]
	if ok, err := j.UploadIsCurrent(ctx, &jb); err != nil || ok || jb.UploadID != "up-1" {
		t.Fatalf("after a new version: UploadIsCurrent = %v, %v (upload %q); want false for the kept up-1", ok, err, jb.UploadID)
	}
}

// TestGroupCommit checks that transitions submitted together share
// transactions, and that each caller's change is committed when its call
// returns. The writer is held inside a transaction until all n transitions
// are queued behind it (synctest.Wait returns once every caller is blocked
// waiting for its result), so the count is exact: with the default options
// the n transitions must take ceil(n/256) commits, where one commit each
// (no group commit, or MaxBatch 1) would take n.
func TestGroupCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		path := filepath.Join(testtmp.Dir(t), "j.db")
		j, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if j != nil {
				j.Close()
			}
		})
		started, release := make(chan struct{}), make(chan struct{})
		held := j.submit(ctx, func(*Tx) error { close(started); <-release; return nil })
		<-started
		before := j.commits.Load()
		const n = 400
		errs := make(chan error, n)
		for i := range n {
			go func() {
				s := settled(filepath.ToSlash(filepath.Join("d", string(rune('a'+i%26)), strings.Repeat("x", i%7+1)+"-"+strconv.Itoa(i))), int64(i))
				if _, err := j.RecordSettled(ctx, s); err != nil {
					errs <- err
					return
				}
				// Committed by the time the call returns: another
				// connection (the read pool) sees it.
				known, err := j.Known(ctx, s.Watch, s.RelPath, s.Version)
				if err == nil && !known {
					err = fmt.Errorf("%s: not visible to another connection when RecordSettled returned", s.RelPath)
				}
				errs <- err
			}()
		}
		synctest.Wait() // all n are queued behind the held transaction
		close(release)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		commits := j.commits.Load() - before - 1 // the held transaction's own
		if want := int64((n + 255) / 256); commits != want {
			t.Fatalf("%d transitions submitted together took %d commits, want %d (batches of up to 256)", n, commits, want)
		}
		j.Close()
		j, err = Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := j.Counts(ctx)
		if c[Queued] != n {
			t.Fatalf("%d queued after reopen, want %d", c[Queued], n)
		}
		if got, err := j.VerifyChain(ctx); err != nil || got != n {
			t.Fatalf("VerifyChain = %d, %v", got, err)
		}
	})
}

// A failing transition in a batch does not take the others down.
func TestFailedOpDoesNotSpoilBatch(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	j.RecordSettled(ctx, settled("a", 1))
	jb := mustClaim(t, j, 1)[0]
	stale := jb
	stale.Generation = 99
	var wg sync.WaitGroup
	var errStale, errOK error
	wg.Add(2)
	go func() { defer wg.Done(); errStale = j.RecordHashes(ctx, &stale, "00", nil) }()
	go func() { defer wg.Done(); _, errOK = j.RecordSettled(ctx, settled("b", 1)) }()
	wg.Wait()
	if !errors.Is(errStale, ErrStale) || errOK != nil {
		t.Fatalf("stale op: %v, other op: %v", errStale, errOK)
	}
	if _, err := j.VerifyChain(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTamperingIsDetected(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(testtmp.Dir(t), "j.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"a", "b", "c"} {
		j.RecordSettled(ctx, settled(r, 1))
	}
	j.Close()

	raw := rawDB(t, path)
	if _, err := raw.Exec(`UPDATE events SET rel_path = 'x' WHERE seq = 2`); err == nil {
		t.Fatal("UPDATE on events was allowed")
	}
	if _, err := raw.Exec(`DELETE FROM events WHERE seq = 2`); err == nil {
		t.Fatal("DELETE on events was allowed")
	}
	// Someone drops the triggers and edits the record: the chain shows it.
	for _, q := range []string{`DROP TRIGGER events_no_update`, `UPDATE events SET rel_path = 'x' WHERE seq = 2`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	j, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := j.VerifyChain(ctx); err == nil || !strings.Contains(err.Error(), "seq 2") {
		t.Fatalf("VerifyChain after an edit = %v, want an error naming seq 2", err)
	}
}

func TestCorruptJournalRefusesToOpen(t *testing.T) {
	path := filepath.Join(testtmp.Dir(t), "j.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 400)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, Options{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(corrupt) = %v, want ErrCorrupt naming the file", err)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "not a database") {
		t.Fatal("the corrupt journal was modified")
	}
}

func TestEventHashIsStable(t *testing.T) {
	// The canonical encoding is a documented format: changing it breaks
	// every exported chain. This pins it.
	e := Event{Seq: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Kind: "settled", FileID: 7,
		BatchID: "run1", RelPath: "run1/a b.tif", Size: 10, Detail: "signal=quiet", PrevHash: GenesisHash}
	want := "seq=1\ntime=\"2026-01-02T03:04:05.000000006Z\"\nkind=\"settled\"\nfile_id=7\ncorrelation_id=\"\"\nbatch_id=\"run1\"\nchunk_sequence=\nrel_path=\"run1/a b.tif\"\nsize=10\nsha256=\"\"\ndetail=\"signal=quiet\"\n"
	if got := string(canonical(e)); got != want {
		t.Fatalf("canonical encoding changed:\n%s\nwant\n%s", got, want)
	}
	if h1, h2 := EventHash(e), EventHash(e); h1 != h2 || len(h1) != 64 {
		t.Fatal("EventHash is not a stable SHA-256 hex")
	}
}

func TestRecordSettledBatch(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	j.RecordSettled(ctx, settled("old", 1))
	outs, err := j.RecordSettledBatch(ctx, []Settled{settled("a", 1), settled("old", 1), settled("old", 2)})
	if err != nil {
		t.Fatal(err)
	}
	if outs[0] != Added || outs[1] != Unchanged || outs[2] != Requeued {
		t.Fatalf("outcomes %v, want [Added Unchanged Requeued]", outs)
	}
	if c, _ := j.Counts(ctx); c[Queued] != 2 {
		t.Fatalf("counts %v", c)
	}
}

func TestDeadLetters(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	for _, rel := range []string{"denied", "gone", "fine"} {
		j.RecordSettled(ctx, settled(rel, 1))
	}
	jobs := mustClaim(t, j, 3)
	by := map[string]*Job{}
	for i := range jobs {
		by[jobs[i].RelPath] = &jobs[i]
	}
	j.Fail(ctx, by["denied"], "permanent", "HTTP 403 AccessDenied")
	j.Fail(ctx, by["gone"], "vanished", "source file vanished")
	j.Complete(ctx, by["fine"], "ff", "p/fine")
	// Dead letters survive a restart untouched.
	if n, err := j.Recover(ctx); err != nil || n != 0 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	dl, err := j.DeadLetters(ctx)
	if err != nil || len(dl) != 2 || dl[0].RelPath != "denied" || dl[0].ErrorClass != "permanent" || dl[0].Attempts != 1 || dl[0].FailedAt.IsZero() {
		t.Fatalf("DeadLetters = %+v, %v", dl, err)
	}
	if _, err := j.RetryDeadLetters(ctx, by["fine"].ID); !errors.Is(err, ErrNotDeadLetter) {
		t.Fatalf("retry of an uploaded file = %v, want ErrNotDeadLetter", err)
	}
	if n, err := j.RetryDeadLetters(ctx, by["denied"].ID); err != nil || n != 1 {
		t.Fatalf("RetryDeadLetters = %d, %v", n, err)
	}
	if r := state(t, j, "denied"); r.State != Queued || r.Attempts != 0 || r.Error != "" {
		t.Fatalf("retried: %+v", r)
	}
	if n, err := j.DropDeadLetters(ctx, by["gone"].ID); err != nil || n != 1 {
		t.Fatalf("DropDeadLetters = %d, %v", n, err)
	}
	if r := state(t, j, "gone"); r.State != Dropped {
		t.Fatalf("dropped: %+v", r)
	}
	// A dropped file is still known: walks do not take it again.
	if known, _ := j.Known(ctx, "/data", "gone", Version{Size: 1, MtimeNS: 1, FileID: "1:2"}); !known {
		t.Fatal("a dropped file is not known")
	}
	if dl, _ := j.DeadLetters(ctx); len(dl) != 0 {
		t.Fatalf("dead letters left: %+v", dl)
	}
	if _, err := j.VerifyChain(ctx); err != nil {
		t.Fatal(err)
	}
}

// A journal damaged on disk (a torn write, a bad sector, a truncation) is
// refused with ErrCorrupt, and left as it is for inspection.
func TestDamagedJournalIsRefused(t *testing.T) {
	for name, damage := range map[string]func(f *os.File, size int64){
		"truncated": func(f *os.File, size int64) { f.Truncate(size / 2) },
		"scribbled": func(f *os.File, size int64) {
			junk := make([]byte, 8192)
			for i := range junk {
				junk[i] = byte(i*7 + 3)
			}
			f.WriteAt(junk, size/2)
		},
		"header": func(f *os.File, size int64) { f.WriteAt([]byte("definitely not SQLite"), 0) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(testtmp.Dir(t), "j.db")
			j, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 300 {
				j.RecordSettled(ctx, settled(fmt.Sprintf("run/%04d-%s", i, strings.Repeat("x", 100)), int64(i)))
			}
			j.Close()
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := f.Stat()
			damage(f, fi.Size())
			f.Close()
			before, _ := os.ReadFile(path)
			_, err = Open(path, Options{})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open(%s journal) = %v, want ErrCorrupt naming the file", name, err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Fatal("the damaged journal was modified")
			}
		})
	}
}

// A journal made by the first schema is migrated with its rows, chunks and
// event chain intact.
func TestMigrationFromVersion1(t *testing.T) {
	path := filepath.Join(testtmp.Dir(t), "v1.db")
	raw := rawDB(t, path)
	v1, err := migrationFS.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`,
		string(v1),
		`INSERT INTO schema_migrations VALUES (1, '0001_init.sql', 'x', '2026-11-26T00:00:00Z')`,
		`INSERT INTO files (id, watch, rel_path, target, object_key, batch_id, size, mtime_ns, file_id, state, sha256, settled_at, updated_at, uploaded_at)
			VALUES (1, '/w', 'done.tif', 't', 'k/done.tif', 'done.tif', 5, 1, '1:1', 'uploaded', 'aa', 1, 1, 2),
			       (2, '/w', 'wait.tif', 't', 'k/wait.tif', 'wait.tif', 7, 1, '1:2', 'queued', NULL, 1, 1, NULL)`,
		`INSERT INTO chunks (file_id, generation, seq, offset, size, sha256) VALUES (1, 1, 1, 0, 5, 'aa')`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	raw.Close()
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	if r := state(t, j, "done.tif"); r.State != Uploaded || r.SHA256 != "aa" {
		t.Fatalf("uploaded row after migration: %+v", r)
	}
	jobs := mustClaim(t, j, 5)
	if len(jobs) != 1 || jobs[0].RelPath != "wait.tif" || jobs[0].UploadedSHA256 != "" {
		t.Fatalf("claim after migration: %+v", jobs)
	}
	var n, uploadedSHA int
	j.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM chunks`).Scan(&n)
	j.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM files WHERE uploaded_sha256 = 'aa'`).Scan(&uploadedSHA)
	if n != 1 || uploadedSHA != 1 {
		t.Fatalf("after migration: %d chunks (want 1), %d rows with uploaded_sha256 (want 1)", n, uploadedSHA)
	}
}

// TestTwoProcessesAppendToOneChain: a command (ferry dlq, journal archive)
// appending events while the daemon has the journal open must not fork the
// chain: each writer reads the tail again under the write lock.
func TestTwoProcessesAppendToOneChain(t *testing.T) {
	ctx := context.Background()
	j1 := open(t)
	j2, err := Open(j1.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	for i, j := range []*Journal{j1, j2, j1, j2, j2, j1} {
		if _, err := j.RecordSettled(ctx, settled(fmt.Sprintf("f%d", i), 1)); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	n, err := j1.VerifyChain(ctx)
	if err != nil || n != 6 {
		t.Fatalf("chain: %d events, %v; want 6 intact", n, err)
	}
}

// TestEventHashMatchesTheFormat: the hash built in one buffer (EventHash)
// equals SHA-256 over prev_hash, a newline and the encoding as the format
// describes it, written here the plain way, for events with odd fields:
// quotes, control bytes, invalid UTF-8, Unicode, long paths, absent and
// negative numbers, metadata fields, times off UTC.
func TestEventHashMatchesTheFormat(t *testing.T) {
	plain := func(e Event) string {
		var b strings.Builder
		f := func(k, v string) { b.WriteString(k + "=" + v + "\n") }
		n := func(v int64, ok bool) string {
			if !ok {
				return ""
			}
			return strconv.FormatInt(v, 10)
		}
		f("seq", strconv.FormatInt(e.Seq, 10))
		f("time", strconv.Quote(e.Time.UTC().Format(time.RFC3339Nano)))
		f("kind", strconv.Quote(string(e.Kind)))
		f("file_id", n(e.FileID, e.FileID != 0))
		f("correlation_id", strconv.Quote(e.CorrelationID))
		f("batch_id", strconv.Quote(e.BatchID))
		f("chunk_sequence", n(int64(e.ChunkSequence), e.ChunkSequence != 0))
		if e.SchemaVersion != "" || e.ValidationStatus != "" {
			f("schema_version", strconv.Quote(e.SchemaVersion))
			f("validation_status", strconv.Quote(e.ValidationStatus))
		}
		f("rel_path", strconv.Quote(e.RelPath))
		f("size", n(e.Size, e.Size >= 0))
		f("sha256", strconv.Quote(e.SHA256))
		f("detail", strconv.Quote(e.Detail))
		sum := sha256.Sum256([]byte(e.PrevHash + "\n" + b.String()))
		return hex.EncodeToString(sum[:])
	}
	berlin := time.FixedZone("CET", 3600)
	for i, e := range []Event{
		{},
		{Seq: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, berlin), Kind: "settled", FileID: 7, Size: -1, PrevHash: GenesisHash},
		{Seq: 1 << 40, Time: time.Unix(0, 1).In(berlin), Kind: "uploaded", FileID: -3, ChunkSequence: 9, Size: 0,
			RelPath: "run \"1\"/tile\t\x00\xff.tif", Detail: "a\nb\\c", CorrelationID: "c", BatchID: "ß/日本"},
		{Seq: 2, Kind: "file_hashed", SchemaVersion: "v2", RelPath: strings.Repeat("ü/very long name ", 200), Size: 1 << 50,
			SHA256: strings.Repeat("ab", 32), PrevHash: strings.Repeat("f", 64)},
		{Seq: 3, Kind: "validated", ValidationStatus: "invalid", Detail: strings.Repeat("x", 1000)},
	} {
		if got, want := EventHash(e), plain(e); got != want {
			t.Errorf("event %d: EventHash %s, the format says %s", i, got, want)
		}
	}
}
