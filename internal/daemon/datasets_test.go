package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/watcher"
)

// deleteWorld is a daemon, wired and not running, with an fs target and a
// watch whose datasets are deleted after their upload; the test drives the
// dataset loop's passes itself.
type deleteWorld struct {
	t    *testing.T
	d    *Daemon
	dir  string
	in   string
	ctx  context.Context
	sink sink.Sink
}

func newDeleteWorld(t *testing.T) *deleteWorld {
	t.Helper()
	p := testcfg.Write(t, `[journal]
path = "ferry.db"
[target.local]
type = "fs"
path = "archive"
[[watch]]
path = "in"
target = "local"
dataset = "*"
complete = "marker:.done"
after_upload = "delete"
`)
	cfg, err := config.Load(p, testcfg.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{Version: "ferry test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	dir := filepath.Dir(p)
	return &deleteWorld{t: t, d: d, dir: dir, in: filepath.Join(dir, "in"), ctx: context.Background(), sink: d.now().sinks["local"]}
}

// land writes rel under the watch, journals it settled and uploads it for
// real to the fs target.
func (w *deleteWorld) land(rel, body string) {
	w.t.Helper()
	p := filepath.Join(w.in, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		w.t.Fatal(err)
	}
	st, err := srcfile.Lstat(p)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.d.record(w.ctx, []watcher.File{{Root: w.in, RelPath: rel, Path: p, Stat: st, Signal: "quiet"}}); err != nil {
		w.t.Fatal(err)
	}
	jobs, err := w.d.j.Claim(w.ctx, 10)
	if err != nil || len(jobs) != 1 {
		w.t.Fatalf("claim %s: %v %v", rel, jobs, err)
	}
	sum := sha256.Sum256([]byte(body))
	h := hex.EncodeToString(sum[:])
	if err := w.sink.Put(w.ctx, jobs[0].Key, []byte(body), sink.Digest(sum), true); err != nil {
		w.t.Fatal(err)
	}
	if err := w.d.j.RecordHashes(w.ctx, &jobs[0], h, []journal.Chunk{{Seq: 1, Size: int64(len(body)), SHA256: h}}); err != nil {
		w.t.Fatal(err)
	}
	if err := w.d.j.Complete(w.ctx, &jobs[0], h, jobs[0].Key); err != nil {
		w.t.Fatal(err)
	}
}

// closeDataset completes and closes a dataset through the loop's own close
// (the pass would go on to the deletions at once).
func (w *deleteWorld) closeDataset(rel string) {
	w.t.Helper()
	if err := w.d.j.CompleteDataset(w.ctx, w.in, rel, "marker:.done", "completed", ""); err != nil {
		w.t.Fatal(err)
	}
	ds, _ := w.d.j.Datasets(w.ctx, journal.DatasetFilter{RelPath: rel})
	wc, _ := watchOf(w.d.now().cfg, w.in)
	w.d.datasets.close(w.ctx, w.d.now(), wc, ds[0])
	ds, _ = w.d.j.Datasets(w.ctx, journal.DatasetFilter{RelPath: rel})
	if ds[0].State != journal.DatasetClosed {
		w.t.Fatalf("dataset %s not closed: %+v", rel, ds[0])
	}
}

func (w *deleteWorld) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(w.in, filepath.FromSlash(rel)))
	return err == nil
}

func (w *deleteWorld) deletions(rel string) map[string]journal.Deletion {
	w.t.Helper()
	ds, err := w.d.j.Datasets(w.ctx, journal.DatasetFilter{RelPath: rel})
	if err != nil || len(ds) != 1 {
		w.t.Fatalf("dataset %s: %v %v", rel, ds, err)
	}
	dels, err := w.d.j.DatasetDeletions(w.ctx, ds[0].ID)
	if err != nil {
		w.t.Fatal(err)
	}
	m := map[string]journal.Deletion{}
	for _, d := range dels {
		m[d.RelPath] = d
	}
	return m
}

// Deleting a source file happens only when every check holds at that
// moment: a file modified after its upload (not yet seen by the watcher)
// and a file whose object the target lost are kept; the others go, and
// each deletion is journaled with its evidence.
func TestDeletionChecksEverythingAtThatMoment(t *testing.T) {
	w := newDeleteWorld(t)
	for _, f := range []string{"run1/a.bin", "run1/sub/b.bin", "run1/c.bin", "run1/.done"} {
		w.land(f, "content of "+f)
	}
	w.closeDataset("run1")
	// After the close, before the deletions: b is rewritten (the watcher
	// has not seen it yet), c's object disappears from the target.
	if err := os.WriteFile(filepath.Join(w.in, "run1", "sub", "b.bin"), []byte("rewritten!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(w.dir, "archive", "run1", "c.bin")); err != nil {
		t.Fatal(err)
	}
	w.d.datasets.deletePass(w.ctx) // plans and carries out the deletions

	ds, _ := w.d.j.Datasets(w.ctx, journal.DatasetFilter{RelPath: "run1"})
	if ds[0].State != journal.DatasetClosed {
		t.Fatalf("dataset: %+v", ds[0])
	}
	dels := w.deletions("run1")
	if d := dels["run1/a.bin"]; d.State != journal.DeletionDeleted || !strings.Contains(d.Evidence, "HeadObject") || !strings.Contains(d.Evidence, "the version that landed") {
		t.Errorf("a.bin: %+v", d)
	}
	if w.exists("run1/a.bin") || w.exists("run1/.done") {
		t.Error("verified files of a closed dataset were not deleted")
	}
	if d := dels["run1/sub/b.bin"]; d.State != journal.DeletionRefused || !w.exists("run1/sub/b.bin") {
		t.Errorf("b.bin, modified after its upload: %+v (exists %v)", d, w.exists("run1/sub/b.bin"))
	}
	if b, _ := os.ReadFile(filepath.Join(w.in, "run1", "sub", "b.bin")); string(b) != "rewritten!" {
		t.Errorf("b.bin's new content: %q", b)
	}
	if d := dels["run1/c.bin"]; d.State != journal.DeletionRefused || !strings.Contains(d.LastError, "no longer holds") || !w.exists("run1/c.bin") {
		t.Errorf("c.bin, lost by the target: %+v", d)
	}
	// The objects that landed stay.
	if _, err := w.sink.Stat(w.ctx, "run1/a.bin"); err != nil {
		t.Errorf("a.bin's object: %v", err)
	}
	// No leftovers under ferry's name, and the folder holding b stays.
	ents, _ := os.ReadDir(filepath.Join(w.in, "run1"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".ferry-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	// Every step is in the chain, which verifies.
	if _, err := w.d.j.VerifyChain(w.ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := w.d.j.DeletionStats(w.ctx)
	if st.Deleted != 2 || st.Refused != 2 || st.DeletedBytes != int64(len("content of run1/a.bin")+len("content of run1/.done")) {
		t.Errorf("stats: %+v", st)
	}
}

// A dataset holding a dead letter (a file that arrived after it closed)
// deletes nothing until a person deals with it; a watch that keeps its
// files deletes nothing at all.
func TestDeletionWaitsForDeadLetters(t *testing.T) {
	w := newDeleteWorld(t)
	w.land("run2/a.bin", "a")
	w.land("run2/.done", "")
	l := w.d.datasets
	w.closeDataset("run2")
	// A late file: a dead letter (dataset_closed).
	p := filepath.Join(w.in, "run2", "late.bin")
	os.WriteFile(p, []byte("late"), 0o644)
	st, _ := srcfile.Lstat(p)
	if err := w.d.record(w.ctx, []watcher.File{{Root: w.in, RelPath: "run2/late.bin", Path: p, Stat: st, Signal: "quiet"}}); err != nil {
		t.Fatal(err)
	}
	l.deletePass(w.ctx)
	if d := w.deletions("run2")["run2/a.bin"]; d.State != journal.DeletionPending || !strings.Contains(d.LastError, "dead letter") || !w.exists("run2/a.bin") {
		t.Fatalf("a.bin beside a dead letter: %+v", d)
	}
}

// reclaim deletes the oldest closed datasets first, one at a time, and
// only while the volume is below reclaim_free_below.
func TestReclaimOldestFirstWhileBelowThreshold(t *testing.T) {
	w := newDeleteWorld(t)
	cfg := w.d.now().cfg
	cfg.Watch[0].AfterUpload, cfg.Watch[0].ReclaimFreeBelow = config.AfterUploadReclaim, "15%"
	for _, run := range []string{"run1", "run2", "run3"} {
		w.land(run+"/a.bin", "data of "+run)
		w.land(run+"/.done", "")
		w.closeDataset(run)
	}
	free := uint64(10) // percent
	w.d.datasets.diskFree = func(string) (uint64, uint64, error) { return free, 100, nil }
	more := w.d.datasets.deletePass(w.ctx)
	if !more || w.exists("run1/a.bin") || !w.exists("run2/a.bin") || !w.exists("run3/a.bin") {
		t.Fatalf("first pass below the threshold: more %v; run1 %v run2 %v", more, w.exists("run1/a.bin"), w.exists("run2/a.bin"))
	}
	if w.exists("run1") {
		t.Error("the reclaimed dataset's empty folder stays")
	}
	free = 40 // run1 freed enough
	w.d.datasets.deletePass(w.ctx)
	if !w.exists("run2/a.bin") || !w.exists("run3/a.bin") {
		t.Fatal("reclaimed above the threshold")
	}
	free = 12
	w.d.datasets.deletePass(w.ctx)
	if w.exists("run2/a.bin") || !w.exists("run3/a.bin") {
		t.Fatal("not the oldest next")
	}
}

// move:DIR: the same checks, and the file goes to DIR under its path.
func TestMoveAfterUpload(t *testing.T) {
	w := newDeleteWorld(t)
	done := filepath.Join(w.dir, "done")
	os.WriteFile(filepath.Join(w.dir, "ferry.toml"), []byte(strings.Replace(string(mustReadFile(t, filepath.Join(w.dir, "ferry.toml"))),
		`after_upload = "delete"`, `after_upload = "move:done"`, 1)), 0o644)
	cfg, err := config.Load(filepath.Join(w.dir, "ferry.toml"), testcfg.Env(nil))
	if err != nil || cfg.Watch[0].MoveDir() != done {
		t.Fatalf("move config: %v %q", err, cfg.Watch[0].MoveDir())
	}
	w.d.now().cfg.Watch[0] = cfg.Watch[0]
	w.land("run1/sub/a.bin", "moved data")
	w.land("run1/.done", "")
	w.closeDataset("run1")
	w.d.datasets.deletePass(w.ctx)
	if w.exists("run1/sub/a.bin") {
		t.Fatal("the source stays")
	}
	if b, err := os.ReadFile(filepath.Join(done, "run1", "sub", "a.bin")); err != nil || string(b) != "moved data" {
		t.Fatalf("moved file: %q %v", b, err)
	}
	if d := w.deletions("run1")["run1/sub/a.bin"]; d.State != journal.DeletionDeleted || !strings.Contains(d.Evidence, "moved to") {
		t.Fatalf("journal: %+v", d)
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verify_before_delete = "readback" reads the whole object back: an object
// whose bytes rotted on the target (its size and recorded hash intact, so
// HeadObject sees nothing) keeps its source.
func TestReadbackCatchesWhatHeadCannot(t *testing.T) {
	w := newDeleteWorld(t)
	w.d.now().cfg.Watch[0].VerifyBeforeDelete = config.VerifyReadback
	w.land("run1/good.bin", "good bytes")
	w.land("run1/rot.bin", "rot? never")
	w.land("run1/.done", "")
	w.closeDataset("run1")
	// Same size, other bytes: bit rot on the target.
	if err := os.WriteFile(filepath.Join(w.dir, "archive", "run1", "rot.bin"), []byte("rot! never"), 0o644); err != nil {
		t.Fatal(err)
	}
	if info, err := w.sink.Stat(w.ctx, "run1/rot.bin"); err != nil || info.Size != 10 {
		t.Fatalf("HeadObject should see nothing wrong: %+v %v", info, err)
	}
	w.d.datasets.deletePass(w.ctx)
	dels := w.deletions("run1")
	if d := dels["run1/rot.bin"]; d.State != journal.DeletionRefused || !strings.Contains(d.LastError, "read back is not what landed") || !w.exists("run1/rot.bin") {
		t.Fatalf("rotten object: %+v", d)
	}
	if d := dels["run1/good.bin"]; d.State != journal.DeletionDeleted || !strings.Contains(d.Evidence, "read back whole") || w.exists("run1/good.bin") {
		t.Fatalf("good object: %+v", d)
	}
}
