package journal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testtmp"
)

// upload settles, claims and completes rel with content sha.
func upload(t *testing.T, j *Journal, rel, sha string) {
	t.Helper()
	ctx := context.Background()
	if _, err := j.RecordSettled(ctx, settled(rel, 10)); err != nil {
		t.Fatal(err)
	}
	for _, jb := range mustClaim(t, j, 100) {
		if err := j.RecordHashes(ctx, &jb, sha, []Chunk{{Seq: 1, Size: 10, SHA256: sha}}); err != nil {
			t.Fatal(err)
		}
		if err := j.Complete(ctx, &jb, sha, jb.Key); err != nil {
			t.Fatal(err)
		}
	}
}

func oneDataset(t *testing.T, j *Journal, rel string) Dataset {
	t.Helper()
	ds, err := j.Datasets(context.Background(), DatasetFilter{Watch: "/data", RelPath: rel})
	if err != nil || len(ds) != 1 {
		t.Fatalf("Datasets(%s) = %+v, %v", rel, ds, err)
	}
	return ds[0]
}

func TestDatasetLifecycle(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	ref := DatasetRef{Watch: "/data", RelPath: "run1", Target: "t", KeyPrefix: "p/run1/"}
	d, err := j.OpenDataset(ctx, ref)
	if err != nil || d.State != DatasetOpen || d.ID == 0 {
		t.Fatalf("OpenDataset = %+v, %v", d, err)
	}
	// Opening again is a no-op, not a second event.
	if again, err := j.OpenDataset(ctx, ref); err != nil || again.ID != d.ID {
		t.Fatalf("second OpenDataset = %+v, %v", again, err)
	}
	upload(t, j, "run1/a.tif", strings.Repeat("a", 64))
	if _, err := j.RecordSettled(ctx, settled("run1/b.tif", 10)); err != nil {
		t.Fatal(err)
	}
	// Another watch's folder of the same name is another dataset's.
	other := settled("run1/c.tif", 10)
	other.Watch = "/elsewhere"
	if _, err := j.RecordSettled(ctx, other); err != nil {
		t.Fatal(err)
	}

	got := oneDataset(t, j, "run1")
	if got.Total != 2 || got.Landed != 1 || got.Waiting != 1 || got.TotalBytes != 20 || got.LandedBytes != 10 {
		t.Fatalf("counts: %+v", got)
	}

	manifest := func(fs []DatasetFile) (string, error) { return strings.Repeat("m", 64), nil }
	// Not complete yet: closing is refused by the table.
	if _, err := j.CloseDataset(ctx, "/data", "run1", manifest); !errors.Is(err, ErrTransition) {
		t.Fatalf("closing an open dataset: %v", err)
	}
	if err := j.CompleteDataset(ctx, "/data", "run1", "CopyComplete.txt", "failed_run", "RunErrored: I/O"); err != nil {
		t.Fatal(err)
	}
	if err := j.CompleteDataset(ctx, "/data", "run1", "again", "completed", ""); !errors.Is(err, ErrTransition) {
		t.Fatalf("completed twice: %v", err)
	}
	// b.tif has not landed: not ready.
	if _, err := j.CloseDataset(ctx, "/data", "run1", manifest); !errors.Is(err, ErrDatasetNotReady) || !strings.Contains(err.Error(), "run1/b.tif") {
		t.Fatalf("closing with a file waiting: %v", err)
	}
	// A file that vanished before its upload is not part of it.
	if _, err := j.RecordSettled(ctx, settled("run1/tmp.part", 3)); err != nil {
		t.Fatal(err)
	}
	vanish := state(t, j, "run1/tmp.part")
	if _, err := j.Vanish(ctx, "deleted by the instrument", vanish.ID); err != nil {
		t.Fatal(err)
	}
	upload(t, j, "run1/b.tif", strings.Repeat("b", 64))
	var listed []DatasetFile
	files, err := j.CloseDataset(ctx, "/data", "run1", func(fs []DatasetFile) (string, error) {
		listed = fs
		return strings.Repeat("m", 64), nil
	})
	if err != nil || len(files) != 2 || len(listed) != 2 || files[0].RelPath != "run1/a.tif" || files[1].SHA256 != strings.Repeat("b", 64) || files[0].Key != "p/run1/a.tif" {
		t.Fatalf("CloseDataset = %+v, %v", files, err)
	}
	got = oneDataset(t, j, "run1")
	if got.State != DatasetClosing || got.Files != 2 || got.Bytes != 20 || got.ManifestSHA256 != strings.Repeat("m", 64) || got.Signal != "CopyComplete.txt" {
		t.Fatalf("closing: %+v", got)
	}
	notes := []Notification{
		{EventID: "dataset_failed:/data:run1", Endpoint: "https://lims/h#1", Type: "dataset_failed", Body: `{"id":"x"}`},
		{EventID: "dataset_failed:/data:run1", Endpoint: "https://lims/h#1", Type: "dataset_failed", Body: `{"id":"x"}`}, // the same: once
		{EventID: "dataset_failed:/data:run1", Endpoint: "https://other/h#2", Type: "dataset_failed", Body: `{"id":"x"}`},
	}
	if err := j.ClosedDataset(ctx, "/data", "run1", strings.Repeat("c", 64), notes); err != nil {
		t.Fatal(err)
	}
	got = oneDataset(t, j, "run1")
	if got.State != DatasetFailedRun || !got.State.Info().Closed || got.CrateSHA256 != strings.Repeat("c", 64) || got.ClosedAt.IsZero() {
		t.Fatalf("closed: %+v", got)
	}
	pending, err := j.PendingNotifications(ctx)
	if err != nil || len(pending) != 2 || pending[0].DatasetID != got.ID {
		t.Fatalf("outbox: %+v, %v", pending, err)
	}
	if failed, _ := j.Datasets(ctx, DatasetFilter{State: DatasetFailedRun}); len(failed) != 1 {
		t.Fatalf("filter by state: %+v", failed)
	}
	if open, _ := j.Datasets(ctx, DatasetFilter{State: DatasetOpen}); len(open) != 0 {
		t.Fatalf("filter by state: %+v", open)
	}

	// Every dataset transition is an event in the chain, and the chain
	// (and the replay of the files) still verifies.
	rs, err := j.r.QueryContext(ctx, `SELECT kind, batch_id, detail FROM events WHERE kind LIKE 'dataset_%' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for rs.Next() {
		var k, b, d string
		if err := rs.Scan(&k, &b, &d); err != nil {
			t.Fatal(err)
		}
		if b != "run1" || !strings.Contains(d, `watch="/data"`) {
			t.Errorf("event %s: batch_id %q detail %q", k, b, d)
		}
		kinds = append(kinds, k)
	}
	rs.Close()
	if strings.Join(kinds, " ") != "dataset_opened dataset_completed dataset_closing dataset_failed_run" {
		t.Fatalf("dataset events: %v", kinds)
	}
	if _, err := j.VerifyChain(ctx); err != nil {
		t.Fatal(err)
	}
	if mm, _, err := j.VerifyState(ctx); err != nil || len(mm) != 0 {
		t.Fatalf("VerifyState: %v %v", mm, err)
	}
}

func TestDatasetClosingRefusesFailedAndUnhashedFiles(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	if _, err := j.OpenDataset(ctx, DatasetRef{Watch: "/data", RelPath: "run2", Target: "t", KeyPrefix: "p/run2/"}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.RecordSettled(ctx, settled("run2/x", 10)); err != nil {
		t.Fatal(err)
	}
	jb := mustClaim(t, j, 1)[0]
	if err := j.Fail(ctx, &jb, "unreadable", "permission denied"); err != nil {
		t.Fatal(err)
	}
	if err := j.CompleteDataset(ctx, "/data", "run2", "quiet:1h0m0s", "completed", ""); err != nil {
		t.Fatal(err)
	}
	d := oneDataset(t, j, "run2")
	if d.DeadLetters != 1 || d.State != DatasetComplete {
		t.Fatalf("dataset with a dead letter: %+v", d)
	}
	called := false
	_, err := j.CloseDataset(ctx, "/data", "run2", func([]DatasetFile) (string, error) { called = true; return "", nil })
	if !errors.Is(err, ErrDatasetNotReady) || called {
		t.Fatalf("a dead letter must hold the dataset: %v (manifest made: %v)", err, called)
	}
	// A manifest that cannot be made leaves the dataset complete.
	if _, err := j.DropDeadLetters(ctx, state(t, j, "run2/x").ID); err != nil {
		t.Fatal(err)
	}
	upload(t, j, "run2/y", strings.Repeat("y", 64))
	boom := errors.New("boom")
	if _, err := j.CloseDataset(ctx, "/data", "run2", func([]DatasetFile) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("manifest error: %v", err)
	}
	if d := oneDataset(t, j, "run2"); d.State != DatasetComplete {
		t.Fatalf("after a failed closing: %+v", d)
	}
	if err := j.CompleteDataset(ctx, "/data", "nope", "x", "completed", ""); !errors.Is(err, ErrNoDataset) {
		t.Fatalf("unknown dataset: %v", err)
	}
	if err := j.CompleteDataset(ctx, "/data", "run2", "x", "fine", ""); err == nil {
		t.Fatal("unknown outcome accepted")
	}
}

func TestNotificationOutbox(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	notes := []Notification{
		{EventID: "file_failed:1:1", Endpoint: "e1", Type: "file_failed", Body: "{}"},
		{EventID: "file_failed:2:1", Endpoint: "e1", Type: "file_failed", Body: "{}"},
	}
	if err := j.QueueNotifications(ctx, notes); err != nil {
		t.Fatal(err)
	}
	if err := j.QueueNotifications(ctx, notes[:1]); err != nil {
		t.Fatal(err)
	}
	now := j.now()
	due, err := j.DueNotifications(ctx, now, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("due: %+v %v", due, err)
	}
	if err := j.NotificationFailed(ctx, due[0].ID, "answered 503", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := j.NotificationDelivered(ctx, due[1].ID); err != nil {
		t.Fatal(err)
	}
	if due, _ := j.DueNotifications(ctx, now, 10); len(due) != 0 {
		t.Fatalf("due after: %+v", due)
	}
	next, ok, err := j.NextNotification(ctx)
	if err != nil || !ok || !next.Equal(now.Add(time.Minute)) {
		t.Fatalf("next: %v %v %v", next, ok, err)
	}
	p, _ := j.PendingNotifications(ctx)
	if len(p) != 1 || p[0].Attempts != 1 || p[0].LastError != "answered 503" {
		t.Fatalf("pending: %+v", p)
	}
	st, err := j.DatasetStats(ctx)
	if err != nil || st.NotificationsPending != 1 || st.NotificationsFailing != 1 || st.LastNotificationError != "answered 503" {
		t.Fatalf("stats: %+v %v", st, err)
	}
	if err := j.QueueNotifications(ctx, []Notification{{EventID: "x"}}); err == nil {
		t.Fatal("a notification without endpoint accepted")
	}
}

func TestSettledFilesOpenTheirDatasetAndNotAfterItsClose(t *testing.T) {
	ctx := context.Background()
	j := open(t)
	ref := &DatasetRef{Watch: "/data", RelPath: "run5", Target: "t", KeyPrefix: "p/run5/"}
	s := settled("run5/a", 10)
	s.Dataset = ref
	if _, err := j.RecordSettled(ctx, s); err != nil {
		t.Fatal(err)
	}
	d := oneDataset(t, j, "run5")
	if d.State != DatasetOpen || d.Total != 1 || d.LastSettled.IsZero() {
		t.Fatalf("opened by its first file: %+v", d)
	}
	if u, _ := j.Datasets(ctx, DatasetFilter{Unclosed: true}); len(u) != 1 {
		t.Fatalf("unclosed: %+v", u)
	}
	jb := mustClaim(t, j, 1)[0]
	sha := strings.Repeat("5", 64)
	if err := j.RecordHashes(ctx, &jb, sha, []Chunk{{Seq: 1, Size: 10, SHA256: sha}}); err != nil {
		t.Fatal(err)
	}
	if err := j.Complete(ctx, &jb, sha, jb.Key); err != nil {
		t.Fatal(err)
	}
	if err := j.CompleteDataset(ctx, "/data", "run5", "marker:.done", "completed", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := j.CloseDataset(ctx, "/data", "run5", func([]DatasetFile) (string, error) { return strings.Repeat("m", 64), nil }); err != nil {
		t.Fatal(err)
	}
	// A file arriving while the manifest is written, or after, is not
	// uploaded into the dataset: a dead letter that says why.
	late := settled("run5/late", 3)
	late.Dataset = ref
	if _, err := j.RecordSettled(ctx, late); err != nil {
		t.Fatal(err)
	}
	r := state(t, j, "run5/late")
	if r.State != Failed || r.ErrorClass != "dataset_closed" || !strings.Contains(r.Error, "closing") {
		t.Fatalf("late file: %+v", r)
	}
	if u, _ := j.Datasets(ctx, DatasetFilter{Unclosed: true}); len(u) != 1 || u[0].State != DatasetClosing {
		t.Fatalf("unclosed: %+v", u)
	}
}

func TestArchitectureShowsTheDatasetLifecycle(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "ARCHITECTURE.md"))
	if err != nil {
		t.Skipf("ARCHITECTURE.md: %v", err)
	}
	if want := "```mermaid\n" + DatasetMermaid() + "```"; !strings.Contains(string(b), want) {
		t.Errorf("ARCHITECTURE.md does not hold the dataset lifecycle's diagram; put this in it:\n%s", want)
	}
}

// The replay knows datasets: journal state --at shows them as they stood,
// and verify compares the datasets table with the events.
func TestDatasetReplayAndVerify(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	j, err := Open(filepath.Join(testtmp.Dir(t), "ferry.db"), Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ref := &DatasetRef{Watch: "/data", RelPath: "run6", Target: "t", KeyPrefix: "p/run6/"}
	s := settled("run6/a", 10)
	s.Dataset = ref
	if _, err := j.RecordSettled(ctx, s); err != nil {
		t.Fatal(err)
	}
	before := now()
	mu.Lock()
	clock = clock.Add(time.Minute)
	mu.Unlock()
	if err := j.CompleteDataset(ctx, "/data", "run6", "quiet:1h0m0s", "completed", ""); err != nil {
		t.Fatal(err)
	}
	r, err := j.Replay(ctx, before.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if ds := r.Datasets(); len(ds) != 1 || ds[0].State != DatasetOpen {
		t.Fatalf("as it stood before completion: %+v", ds)
	}
	r, err = j.Replay(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if ds := r.Datasets(); len(ds) != 1 || ds[0].State != DatasetComplete || ds[0].Signal != "quiet:1h0m0s" {
		t.Fatalf("now: %+v", ds)
	}
	if mm, _, err := j.VerifyState(ctx); err != nil || len(mm) != 0 {
		t.Fatalf("verify: %v %v", mm, err)
	}
	// A datasets row changed behind the journal's back is found.
	if _, err := j.w.Exec(`UPDATE datasets SET state = 'closed' WHERE rel_path = 'run6'`); err != nil {
		t.Fatal(err)
	}
	mm, _, err := j.VerifyState(ctx)
	if err != nil || len(mm) != 1 || !strings.Contains(mm[0].String(), "dataset /data/run6: state: the table says closed, the replay of the events says complete") {
		t.Fatalf("tampered dataset: %v %v", mm, err)
	}
	// A step the table does not allow is refused by the replay.
	r = NewReplay()
	bad := Event{Seq: 1, Kind: KindDatasetClosed, BatchID: "x", Detail: `watch="/data" target=t previous_state=open state=closed`}
	if err := r.Apply(bad); err == nil {
		t.Fatal("a replay accepted open -> closed")
	}
}
