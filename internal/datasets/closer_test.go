package datasets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferry-data/ferry/dataset"
	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/internal/testtmp"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/memsink"
)

const watch = "/instrument/out"

// run journals a dataset whose files (path under the run → content) all
// landed in mem, and completes it.
func run(t *testing.T, j *journal.Journal, mem *memsink.Sink, rel string, files map[string]string) journal.Dataset {
	t.Helper()
	ctx := context.Background()
	if _, err := j.OpenDataset(ctx, journal.DatasetRef{Watch: watch, RelPath: rel, Target: "archive", KeyPrefix: "runs/" + rel + "/"}); err != nil {
		t.Fatal(err)
	}
	for p, body := range files {
		full := rel + "/" + p
		s := journal.Settled{Watch: watch, RelPath: full, Target: "archive", Key: "runs/" + full, BatchID: rel,
			Version: journal.Version{Size: int64(len(body)), MtimeNS: 1_700_000_000_000_000_000, FileID: "1:" + p}, Signal: "quiet"}
		if _, err := j.RecordSettled(ctx, s); err != nil {
			t.Fatal(err)
		}
		jobs, err := j.Claim(ctx, 1)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("claim %s: %v %v", full, jobs, err)
		}
		sum := sha256.Sum256([]byte(body))
		h := hex.EncodeToString(sum[:])
		if err := mem.Put(ctx, jobs[0].Key, []byte(body), sink.Digest(sum), true); err != nil {
			t.Fatal(err)
		}
		if err := j.RecordHashes(ctx, &jobs[0], h, []journal.Chunk{{Seq: 1, Size: int64(len(body)), SHA256: h}}); err != nil {
			t.Fatal(err)
		}
		if err := j.Complete(ctx, &jobs[0], h, jobs[0].Key); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.CompleteDataset(ctx, watch, rel, dataset.CopyComplete, "completed", ""); err != nil {
		t.Fatal(err)
	}
	ds, err := j.Datasets(ctx, journal.DatasetFilter{Watch: watch, RelPath: rel})
	if err != nil || len(ds) != 1 {
		t.Fatal(ds, err)
	}
	return ds[0]
}

func openJournal(t *testing.T) *journal.Journal {
	t.Helper()
	j, err := journal.Open(filepath.Join(testtmp.Dir(t), "ferry.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

var sample = map[string]string{
	"RunInfo.xml":                       "<RunInfo/>",
	"Data/Intensities/BaseCalls/L001/a": "cbcl-1",
	"Data/Intensities/BaseCalls/L001/b": "cbcl-2",
	"with space/Größe.tif":              "tile",
	dataset.CopyComplete:                "",
}

func TestCloseWritesManifestThenCrate(t *testing.T) {
	ctx := context.Background()
	j := openJournal(t)
	var order []string
	mem := memsink.New(memsink.Options{Before: func(op, key string, n int) error {
		if op == "Put" && (strings.HasSuffix(key, ".txt") || strings.HasSuffix(key, ".json")) {
			order = append(order, key)
		}
		return nil
	}})
	d := run(t, j, mem, "run1", sample)
	order = nil
	var notified atomic.Int32
	c := &Closer{Journal: j, Sink: mem, Target: `target "archive"`, FerryVersion: "v-test", Host: "seq-pc",
		Notify: func(d journal.Dataset) []journal.Notification {
			notified.Add(1)
			return []journal.Notification{{EventID: "dataset_complete:" + d.RelPath, Endpoint: "lims", Type: "dataset_complete", Body: "{}"}}
		}}
	got, err := c.Close(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != journal.DatasetClosed || got.Files != len(sample) || got.CrateSHA256 == "" {
		t.Fatalf("closed: %+v", got)
	}
	if strings.Join(order, " ") != "runs/run1/manifest-sha256.txt runs/run1/ro-crate-metadata.json" {
		t.Fatalf("writes in order %v: the manifest first, the crate last", order)
	}
	m, err := mem.Get(ctx, "runs/run1/"+dataset.ManifestName, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := dataset.ParseManifest(m)
	if err != nil || len(sums) != len(sample) {
		t.Fatalf("manifest %q: %v", m, err)
	}
	for p, body := range sample {
		s := sha256.Sum256([]byte(body))
		if sums[p] != hex.EncodeToString(s[:]) {
			t.Errorf("manifest: %s = %s", p, sums[p])
		}
	}
	cr, err := mem.Get(ctx, "runs/run1/"+dataset.CrateName, 1<<20)
	if err != nil || !json.Valid(cr) {
		t.Fatalf("crate: %v", err)
	}
	if notified.Load() != 1 {
		t.Fatalf("Notify called %d times", notified.Load())
	}
	if p, _ := j.PendingNotifications(ctx); len(p) != 1 {
		t.Fatalf("outbox: %+v", p)
	}
	// The crate, with the objects it describes, passes the RO-Crate validator.
	validate(t, mem, "runs/run1/")
}

// A crash between the manifest and the crate: the next Close makes the
// same bytes from the journal, finds its own manifest already written
// (create-only: ErrExists, then the same SHA-256) and finishes.
func TestCloseResumesAfterACrash(t *testing.T) {
	ctx := context.Background()
	j := openJournal(t)
	crash := errors.New("killed")
	var fail atomic.Bool
	fail.Store(true)
	mem := memsink.New(memsink.Options{Before: func(op, key string, n int) error {
		if op == "Put" && strings.HasSuffix(key, dataset.CrateName) && fail.Load() {
			return crash
		}
		return nil
	}})
	d := run(t, j, mem, "run2", sample)
	c := &Closer{Journal: j, Sink: mem, FerryVersion: "v-test"}
	if _, err := c.Close(ctx, d); !errors.Is(err, crash) {
		t.Fatalf("first close: %v", err)
	}
	ds, _ := j.Datasets(ctx, journal.DatasetFilter{RelPath: "run2"})
	if ds[0].State != journal.DatasetClosing {
		t.Fatalf("after the crash: %+v", ds[0])
	}
	fail.Store(false)
	got, err := c.Close(ctx, ds[0])
	if err != nil || got.State != journal.DatasetClosed {
		t.Fatalf("resumed close: %+v, %v", got, err)
	}
}

// Something else under the manifest's key is never overwritten.
func TestCloseRefusesToOverwrite(t *testing.T) {
	ctx := context.Background()
	j := openJournal(t)
	mem := memsink.New(memsink.Options{})
	d := run(t, j, mem, "run4", sample)
	other := []byte("somebody else's manifest\n")
	if err := mem.Put(ctx, "runs/run4/"+dataset.ManifestName, other, sink.Digest(sha256.Sum256(other)), false); err != nil {
		t.Fatal(err)
	}
	c := &Closer{Journal: j, Sink: mem}
	_, err := c.Close(ctx, d)
	var se *sink.Error
	if !errors.Is(err, ErrConflict) || !errors.As(err, &se) || se.Class != sink.Permanent {
		t.Fatalf("conflict: %v", err)
	}
	if b, _ := mem.Get(ctx, "runs/run4/"+dataset.ManifestName, 1<<20); string(b) != string(other) {
		t.Fatal("overwritten")
	}
	if _, err := mem.Stat(ctx, "runs/run4/"+dataset.CrateName); !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("a crate was written after a failed manifest: %v", err)
	}
}

// validate writes the objects under prefix into a folder and runs the
// RO-Crate validator on it.
func validate(t *testing.T, mem *memsink.Sink, prefix string) {
	t.Helper()
	testsrv.ROCrateValidator(t)
	dir := t.TempDir()
	for _, k := range mem.Keys() {
		p, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		b, err := mem.Get(context.Background(), k, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testsrv.ValidateCrate(t, dir)
}

// With on_change = "version" a file's content lands under key~<sha12>.ext:
// the manifest lists the object as it is on the target.
func TestManifestListsObjectsAsLanded(t *testing.T) {
	ctx := context.Background()
	j := openJournal(t)
	mem := memsink.New(memsink.Options{})
	const rel = "run7"
	if _, err := j.OpenDataset(ctx, journal.DatasetRef{Watch: watch, RelPath: rel, Target: "archive", KeyPrefix: "runs/" + rel + "/"}); err != nil {
		t.Fatal(err)
	}
	s := journal.Settled{Watch: watch, RelPath: rel + "/img.tif", Target: "archive", Key: "runs/" + rel + "/img.tif", BatchID: rel,
		Version: journal.Version{Size: 4, MtimeNS: 1, FileID: "1:1"}, Signal: "quiet"}
	if _, err := j.RecordSettled(ctx, s); err != nil {
		t.Fatal(err)
	}
	jobs, _ := j.Claim(ctx, 1)
	body := []byte("v2!!")
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	versioned := "runs/" + rel + "/img~" + h[:12] + ".tif"
	if err := mem.Put(ctx, versioned, body, sink.Digest(sum), true); err != nil {
		t.Fatal(err)
	}
	if err := j.RecordHashes(ctx, &jobs[0], h, []journal.Chunk{{Seq: 1, Size: 4, SHA256: h}}); err != nil {
		t.Fatal(err)
	}
	if err := j.Complete(ctx, &jobs[0], h, versioned); err != nil {
		t.Fatal(err)
	}
	if err := j.CompleteDataset(ctx, watch, rel, "marker:.done", "completed", ""); err != nil {
		t.Fatal(err)
	}
	ds, _ := j.Datasets(ctx, journal.DatasetFilter{RelPath: rel})
	if _, err := (&Closer{Journal: j, Sink: mem}).Close(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	m, _ := mem.Get(ctx, "runs/"+rel+"/"+dataset.ManifestName, 1<<20)
	if want := h + "  img~" + h[:12] + ".tif\n"; string(m) != want {
		t.Fatalf("manifest %q, want %q", m, want)
	}
	validate(t, mem, "runs/"+rel+"/")
}
