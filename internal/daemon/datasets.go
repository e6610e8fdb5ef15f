package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ferry-data/ferry/dataset"
	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/datasets"
	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/notify"
	"github.com/ferry-data/ferry/uploader"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/watcher"
)

// The datasets of a running daemon: a file that settles in a folder its
// watch's `dataset` pattern matches opens that dataset (in the journal,
// with the file: journal.Settled.Dataset). The dataset loop then decides,
// dataset by dataset, from the journal and the source folder:
//
//	open      its completion condition is evaluated (instrument markers,
//	          quiet periods) when a file of it settles and when a quiet
//	          period would end; when it holds, the dataset is complete
//	complete  once every file of it landed (none pending, none a dead
//	          letter) and nothing in its folder is left unsettled, the
//	          closer writes manifest-sha256.txt and then
//	          ro-crate-metadata.json (internal/datasets)
//	closing   a close that was interrupted is finished
//
// The notifications owed are queued with the close (the outbox) and sent
// by the notify loop, at least once, until each endpoint acknowledges.

// datasetRecheck bounds how long the loop sleeps without a nudge: a
// marker written by an instrument into a folder with nothing left to
// settle is seen within this time (markers are files, so they settle and
// nudge the loop themselves; this is the safety net).
const datasetRecheck = 30 * time.Second

// datasetSpacing is the least time between two passes of the dataset
// loop: a pass reads every unclosed dataset's counts from the journal.
const datasetSpacing = time.Second

// notifyTimeout bounds one delivery attempt.
const notifyTimeout = 30 * time.Second

// datasetOf is the dataset of a settled file in its watch, nil when none.
func datasetOf(wc config.WatchConfig, t config.TargetConfig, targetName, root, rel string) (*journal.DatasetRef, error) {
	ds := wc.DatasetOf(rel)
	if ds == "" {
		return nil, nil
	}
	key, err := uploader.ObjectKey(t.Prefix, ds)
	if err != nil {
		return nil, err
	}
	return &journal.DatasetRef{Watch: root, RelPath: ds, Target: targetName, KeyPrefix: key + "/", Profile: wc.Metadata}, nil
}

// reservedInDataset says why a file cannot be stored in its dataset: its
// name is one ferry writes into the dataset's folder.
func reservedInDataset(ref *journal.DatasetRef, rel string) string {
	inside, _ := strings.CutPrefix(rel, ref.RelPath+"/")
	if dataset.Reserved(inside) {
		return fmt.Sprintf("%s is a name ferry writes into every closed dataset (%s, %s): a source file by that name would collide with it",
			inside, dataset.ManifestName, dataset.CrateName)
	}
	return ""
}

// datasetLoop runs the dataset and notification work of a daemon.
type datasetLoop struct {
	d      *Daemon
	nudge  chan struct{} // a file of a dataset settled or landed
	send   chan struct{} // a notification was queued
	client *http.Client

	mu     sync.Mutex
	logged map[string]string // dataset or notification -> the last problem logged for it

	// diskFree reads a volume's free space (datasets.DiskFree; tests set
	// their own).
	diskFree func(path string) (free, total uint64, err error)
}

func newDatasetLoop(d *Daemon) *datasetLoop {
	return &datasetLoop{d: d, nudge: make(chan struct{}, 1), send: make(chan struct{}, 1),
		client: &http.Client{Timeout: notifyTimeout}, logged: map[string]string{}, diskFree: datasets.DiskFree}
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Nudge asks for a pass soon.
func (l *datasetLoop) Nudge() { poke(l.nudge) }

// logOnce logs a problem of key at Warn the first time it is seen and
// when it changes (not at every pass); ok clears it.
func (l *datasetLoop) logOnce(key, problem string, args ...any) {
	l.mu.Lock()
	same := l.logged[key] == problem
	l.logged[key] = problem
	l.mu.Unlock()
	if !same {
		l.d.log.Warn(problem, args...)
	}
}

func (l *datasetLoop) ok(key string) {
	l.mu.Lock()
	delete(l.logged, key)
	l.mu.Unlock()
}

// run passes over the unclosed datasets whenever nudged, when a quiet
// period ends, and at least every datasetRecheck, until ctx ends.
func (l *datasetLoop) run(ctx context.Context) {
	batches := l.d.j.BatchCompleted()
	t := time.NewTimer(0)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.nudge:
		case <-batches:
		}
		// While files stream in, nudges come with every batch the watcher
		// settles: passes are at least datasetSpacing apart.
		if since := l.d.clock().Sub(last); !last.IsZero() && since < datasetSpacing {
			t.Reset(datasetSpacing - since)
			continue
		}
		last = l.d.clock()
		next := l.pass(ctx)
		wait := datasetRecheck
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(l.d.clock()), 0))
		}
		t.Reset(wait)
	}
}

// pass evaluates every unclosed dataset once and returns when a quiet
// period ends next (zero: none pending).
func (l *datasetLoop) pass(ctx context.Context) time.Time {
	w := l.d.now()
	l.metadataPass(ctx, w)
	ds, err := l.d.j.Datasets(ctx, journal.DatasetFilter{Unclosed: true})
	if err != nil {
		if ctx.Err() == nil {
			l.logOnce("datasets", "cannot read the journal's datasets", "error", err.Error())
		}
		return time.Time{}
	}
	var next time.Time
	for _, d := range ds {
		if ctx.Err() != nil {
			return next
		}
		wc, ok := watchOf(w.cfg, d.Watch)
		if !ok || wc.Depth() == 0 {
			continue // its watch left the configuration, or lost its datasets: it waits
		}
		if d.State == journal.DatasetOpen {
			v := wc.Conditions().Evaluate(os.DirFS(filepath.Join(d.Watch, filepath.FromSlash(d.RelPath))), d.LastSettled, l.d.clock())
			for _, n := range v.Notes {
				l.logOnce("note "+d.Watch+"/"+d.RelPath, "dataset: "+n, "dataset", d.RelPath, "watch", d.Watch)
			}
			if !v.Complete {
				if !v.Recheck.IsZero() && (next.IsZero() || v.Recheck.Before(next)) {
					next = v.Recheck
				}
				continue
			}
			if err := l.d.j.CompleteDataset(ctx, d.Watch, d.RelPath, v.Signal, v.Outcome.String(), v.Reason); err != nil {
				l.logOnce(d.Watch+"/"+d.RelPath, "cannot journal a dataset's completion", "dataset", d.RelPath, "error", err.Error())
				continue
			}
			l.d.log.Info("dataset complete", "dataset", d.RelPath, "watch", d.Watch, "signal", v.Signal, "outcome", v.Outcome.String(), "reason", v.Reason,
				"files", d.Total, "landed", d.Landed)
			d.State, d.Signal, d.Outcome, d.Reason, d.CompletedAt = journal.DatasetComplete, v.Signal, v.Outcome.String(), v.Reason, l.d.clock()
		}
		if d.State == journal.DatasetComplete {
			if d.Waiting > 0 || d.DeadLetters > 0 {
				continue
			}
			if rel, err := l.unsettled(ctx, wc, d); err != nil || rel != "" {
				if err != nil {
					l.logOnce(d.Watch+"/"+d.RelPath, "cannot read a complete dataset's folder; it stays open", "dataset", d.RelPath, "error", err.Error())
				}
				continue
			}
		}
		l.close(ctx, w, wc, d)
	}
	if l.deletePass(ctx) {
		next = l.d.clock() // more deletions are due: the next pass at once
	}
	return next
}

// close closes one dataset (complete, or closing after an interruption).
func (l *datasetLoop) close(ctx context.Context, w *wiring, wc config.WatchConfig, d journal.Dataset) {
	s, ok := w.sinks[d.Target]
	if !ok {
		l.logOnce(d.Watch+"/"+d.RelPath, "the dataset's target is not in the configuration; it waits", "dataset", d.RelPath, "target", d.Target)
		return
	}
	c := &datasets.Closer{
		Journal: l.d.j, Sink: s, Target: describeTarget(d.Target, w.cfg.Target[d.Target]),
		FerryVersion: l.d.version, Host: hostname(), License: wc.License,
		Notify: func(cd journal.Dataset) []journal.Notification { return datasetNotifications(w.cfg, cd, hostname()) },
	}
	if m, err := l.d.j.Metadata(ctx, d.Watch, d.RelPath); err == nil {
		c.Metadata = &m
	} else if !errors.Is(err, journal.ErrNoDataset) {
		l.logOnce(d.Watch+"/"+d.RelPath, "cannot read a dataset's metadata; it waits", "dataset", d.RelPath, "error", err.Error())
		return
	}
	closed, err := c.Close(ctx, d)
	switch {
	case errors.Is(err, journal.ErrDatasetNotReady):
		return // a file settled meanwhile: the next pass
	case err != nil:
		if ctx.Err() == nil {
			l.logOnce(d.Watch+"/"+d.RelPath, "could not close a dataset; trying again", "dataset", d.RelPath, "watch", d.Watch, "error", err.Error())
		}
		return
	}
	l.ok(d.Watch + "/" + d.RelPath)
	took := closed.ClosedAt.Sub(closed.CompletedAt)
	l.d.log.Info("dataset closed", "dataset", d.RelPath, "watch", d.Watch, "state", string(closed.State), "files", closed.Files, "bytes", closed.Bytes,
		"manifest", d.KeyPrefix+dataset.ManifestName, "crate", d.KeyPrefix+dataset.CrateName, "close_seconds", took.Seconds())
	if l.d.metrics != nil {
		l.d.metrics.observeClose(took)
	}
	poke(l.send)
}

// unsettled returns a file of d's folder that the journal does not hold in
// the version on disk (still being written, or not settled yet), "" when
// there is none: a complete dataset waits for its last files.
func (l *datasetLoop) unsettled(ctx context.Context, wc config.WatchConfig, d journal.Dataset) (string, error) {
	known, err := l.d.j.BatchVersions(ctx, d.Watch, d.RelPath)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(d.Watch, filepath.FromSlash(d.RelPath))
	found := ""
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if e.IsDir() {
			if p != dir && !*wc.Recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return nil // symlinks, FIFOs: not taken by the watcher either
		}
		rel, err := filepath.Rel(d.Watch, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !watcher.Match(rel, wc.Include, wc.Exclude) {
			return nil
		}
		st, err := srcfile.Lstat(p)
		if err != nil {
			if srcfile.IsVanished(err) {
				return nil
			}
			return err
		}
		v, ok := known[rel]
		if !ok || v.Size != st.Size || v.MtimeNS != st.ModTime.UnixNano() {
			found = rel
			return fs.SkipAll
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil // the folder is gone: nothing is left to settle in it
	}
	return found, err
}

func watchOf(c *config.Config, root string) (config.WatchConfig, bool) {
	for _, wc := range c.Watch {
		if filepath.Clean(wc.Path) == root {
			return wc, true
		}
	}
	return config.WatchConfig{}, false
}

// describeTarget names where datasets land, for the crate: never a
// credential or an endpoint's user info.
func describeTarget(name string, t config.TargetConfig) string {
	if t.Type == "s3" {
		return fmt.Sprintf("s3 target %q, bucket %q", name, t.Bucket)
	}
	return fmt.Sprintf("%s target %q", t.Type, name)
}

var hostname = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
})

// eventID is a notification's idempotency key: the same for the same
// event at every attempt, after every restart, on every endpoint.
func eventID(kind string, parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return kind + "-" + hex.EncodeToString(h[:12])
}

// datasetNotifications are the notifications owed when d closes, one per
// [[notify]] that asked for its event.
func datasetNotifications(c *config.Config, d journal.Dataset, host string) []journal.Notification {
	kind := notify.DatasetComplete
	if d.State == journal.DatasetFailedRun {
		kind = notify.DatasetFailed
	}
	e := notify.Event{
		ID: eventID(kind, d.Watch, d.RelPath), Type: kind, Time: d.ClosingAt,
		Data: map[string]any{
			"host": host, "watch": d.Watch, "dataset": d.RelPath, "state": string(d.State),
			"signal": d.Signal, "outcome": d.Outcome, "reason": d.Reason,
			"files": d.Files, "bytes": d.Bytes, "target": d.Target,
			"manifest_key": d.KeyPrefix + dataset.ManifestName, "manifest_sha256": d.ManifestSHA256,
			"crate_key": d.KeyPrefix + dataset.CrateName,
		},
	}
	return notifications(c, e)
}

func notifications(c *config.Config, e notify.Event) []journal.Notification {
	body, err := notify.Body(e)
	if err != nil {
		return nil
	}
	var out []journal.Notification
	for _, n := range c.Notify {
		if n.Wants(e.Type) {
			out = append(out, journal.Notification{EventID: e.ID, Endpoint: n.ID(), Type: e.Type, Body: string(body)})
		}
	}
	return out
}

// queueFileFailures queues a file_failed notification for every dead
// letter (idempotent: the outbox keeps one per event and endpoint).
func (l *datasetLoop) queueFileFailures(ctx context.Context) {
	c := l.d.now().cfg
	wanted := false
	for _, n := range c.Notify {
		wanted = wanted || n.Wants(notify.FileFailed)
	}
	if !wanted {
		return
	}
	dl, err := l.d.j.DeadLetters(ctx)
	if err != nil {
		return
	}
	var notes []journal.Notification
	for _, f := range dl {
		var ds string
		if wc, ok := watchOf(c, f.Watch); ok {
			ds = wc.DatasetOf(f.RelPath)
		}
		e := notify.Event{
			// One event per failure: a file retried and failed again is
			// another event.
			ID: eventID(notify.FileFailed, f.Watch, f.RelPath, fmt.Sprint(f.FailedAt.UnixNano())), Type: notify.FileFailed, Time: f.FailedAt,
			Data: map[string]any{"host": hostname(), "watch": f.Watch, "path": f.RelPath, "dataset": ds, "target": f.Target,
				"error_class": f.ErrorClass, "error": f.Error, "size": f.Size, "attempts": f.Attempts},
		}
		notes = append(notes, notifications(c, e)...)
	}
	if len(notes) > 0 {
		if err := l.d.j.QueueNotifications(ctx, notes); err == nil {
			poke(l.send)
		}
	}
}

// sendLoop delivers the outbox, at least once, until acknowledged; it
// never holds uploads (its own goroutine, its own HTTP client).
func (l *datasetLoop) sendLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.send:
		}
		l.queueFileFailures(ctx)
		l.sendDue(ctx)
		wait := datasetRecheck
		if next, ok, err := l.d.j.NextNotification(ctx); err == nil && ok {
			wait = min(wait, max(next.Sub(l.d.clock()), 0))
		}
		t.Reset(wait)
	}
}

func (l *datasetLoop) sendDue(ctx context.Context) {
	c := l.d.now().cfg
	due, err := l.d.j.DueNotifications(ctx, l.d.clock(), 100)
	if err != nil {
		return
	}
	for _, n := range due {
		if ctx.Err() != nil {
			return
		}
		ep, ok := endpointOf(c, n.Endpoint)
		if !ok {
			l.logOnce("notify "+n.Endpoint, "notifications wait for an endpoint no longer in the configuration", "endpoint", n.Endpoint)
			continue
		}
		var secret []byte
		if s := ep.Secret().Reveal(); s != "" {
			secret = []byte(s)
		}
		r := notify.Send(ctx, l.client, ep.URL.Reveal(), secret, notify.Event{ID: n.EventID, Type: n.Type}, []byte(n.Body), n.Attempts+1, "ferry/"+l.d.version)
		if r.Acked {
			if err := l.d.j.NotificationDelivered(ctx, n.ID); err != nil && ctx.Err() == nil {
				l.d.log.Error("cannot journal a delivered notification (it will be sent again)", "error", err.Error())
			}
			l.ok("notify " + n.Endpoint)
			l.d.log.Info("notification delivered", "event", n.Type, "event_id", n.EventID, "endpoint", n.Endpoint, "attempts", n.Attempts+1)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		next := l.d.clock().Add(notify.Backoff(n.Attempts+1, r))
		if err := l.d.j.NotificationFailed(ctx, n.ID, r.Err.Error(), next); err != nil {
			return
		}
		l.logOnce("notify "+n.Endpoint, "notification not delivered; retrying with backoff", "endpoint", n.Endpoint, "error", r.Err.Error(),
			"event", n.Type, "next_attempt", next.UTC().Format(time.RFC3339))
	}
}

func endpointOf(c *config.Config, id string) (config.NotifyConfig, bool) {
	for _, n := range c.Notify {
		if n.ID() == id {
			return n, true
		}
	}
	return config.NotifyConfig{}, false
}

// deletePass plans the deletions of closed datasets of watches with
// after_upload = "delete", and carries out the due ones, each only after
// every condition is checked again at that moment:
//
//   - the file's journal row still holds the version planned, uploaded, its
//     landed content its current version (a file modified after its upload
//     is re-settled and never matches);
//   - its dataset is closed (manifest and crate landed) and holds no dead
//     letter;
//   - the target holds the object, with the size and SHA-256 that landed
//     (HeadObject: size and the sha256 metadata);
//   - the file at the path is that version (size, modification time,
//     identity), checked after ferry took it away from the path in one
//     atomic rename (internal/datasets.RemoveSource).
//
// A check that cannot be made now (target unreachable, file locked) defers
// the deletion; one that fails for good refuses it and keeps the file.
// It reports whether more deletions are due than it took.
func (l *datasetLoop) deletePass(ctx context.Context) bool {
	w := l.d.now()
	deleting, more := false, false
	for _, wc := range w.cfg.Watch {
		if wc.Depth() == 0 || !wc.Deletes() {
			continue
		}
		deleting = true
		root := filepath.Clean(wc.Path)
		rels, err := l.d.j.DatasetsToPlan(ctx, root)
		if err != nil {
			return false
		}
		if wc.AfterUpload == config.AfterUploadReclaim && len(rels) > 0 {
			// Oldest first, one dataset at a time, only while the volume
			// is below its threshold: each pass looks again.
			low, why := l.belowThreshold(wc)
			if !low {
				continue
			}
			l.d.log.Info("reclaiming space: the oldest closed dataset's source files will be deleted", "dataset", rels[0], "watch", root, "free", why)
			rels, more = rels[:1], len(rels) > 1
		}
		for _, rel := range rels {
			n, err := l.d.j.PlanDeletions(ctx, root, rel)
			if err != nil {
				l.logOnce("plan "+root+"/"+rel, "cannot plan a dataset's source deletions", "dataset", rel, "error", err.Error())
				continue
			}
			l.d.log.Info("dataset closed: its source files will be deleted once each is checked again", "dataset", rel, "watch", root, "files", n)
		}
	}
	if !deleting {
		return false
	}
	due, err := l.d.j.DueDeletions(ctx, l.d.clock(), deleteBatch)
	if err != nil {
		return false
	}
	// Several at once: each waits on a HeadObject and a durable journal
	// write, which the journal's group commit shares between them.
	sem := make(chan struct{}, deleteParallel)
	var wg sync.WaitGroup
	for _, del := range due {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			l.deleteOne(ctx, w, del)
		}()
	}
	wg.Wait()
	return more || len(due) == deleteBatch
}

// belowThreshold reports whether the volume of a reclaim watch has less
// free space than reclaim_free_below, and says how much it has.
func (l *datasetLoop) belowThreshold(wc config.WatchConfig) (bool, string) {
	free, total, err := l.diskFree(wc.Path)
	if err != nil || total == 0 {
		l.logOnce("reclaim "+wc.Path, "cannot read the free space of a reclaim watch; nothing is reclaimed", "watch", wc.Path, "error", fmt.Sprint(err))
		return false, ""
	}
	pct := 100 * float64(free) / float64(total)
	return pct < wc.ReclaimPercent(), fmt.Sprintf("%.1f%% free, threshold %s", pct, wc.ReclaimFreeBelow)
}

// deleteParallel bounds the source deletions checked at once; deleteBatch
// is how many one pass takes.
const (
	deleteParallel = 8
	deleteBatch    = 500
)

func (l *datasetLoop) deleteOne(ctx context.Context, w *wiring, del journal.Deletion) {
	path := filepath.Join(del.Watch, filepath.FromSlash(del.RelPath))
	log := l.d.log.With("path", del.RelPath, "watch", del.Watch)
	refuse := func(why, evidence string) {
		if err := l.d.j.DeleteRefused(ctx, del.FileID, why, evidence); err == nil {
			log.Warn("source file kept: a check before its deletion failed", "reason", why)
		}
	}
	deferIt := func(why string) {
		if err := l.d.j.DeleteDeferred(ctx, del.FileID, why); err == nil {
			l.logOnce("delete "+path, "source file not deleted yet; trying again later", "path", del.RelPath, "reason", why)
		}
	}
	wc, ok := watchOf(w.cfg, del.Watch)
	switch {
	case !ok || !wc.Deletes():
		deferIt("its watch no longer deletes source files (after_upload)")
		return
	case del.FileState != journal.Uploaded || del.FileGeneration != del.Generation || del.UploadedSHA256 == "" || del.UploadedSHA256 != del.SHA256 || del.UploadedKey == "":
		refuse(fmt.Sprintf("the journal no longer holds the version planned for deletion as landed (state %s, generation %d of %d)",
			del.FileState, del.FileGeneration, del.Generation), "")
		return
	case !del.DatasetState.Info().Closed:
		refuse("its dataset is not closed", "")
		return
	case del.DatasetDeadLetters > 0:
		deferIt(fmt.Sprintf("its dataset holds %d dead letter(s): nothing of it is deleted until they are retried or dropped", del.DatasetDeadLetters))
		return
	}
	s, ok := w.sinks[del.Target]
	if !ok {
		deferIt("its target is not in the configuration")
		return
	}
	info, err := s.Stat(ctx, del.UploadedKey)
	switch {
	case errors.Is(err, sink.ErrNotFound):
		refuse("the target no longer holds "+del.UploadedKey, "")
		return
	case err != nil:
		deferIt("cannot check the target: " + err.Error())
		return
	case info.Size != del.Version.Size || info.SHA256 != del.UploadedSHA256:
		refuse(fmt.Sprintf("the target's object %s is not what landed (size %d sha256 %q, landed size %d sha256 %s)",
			del.UploadedKey, info.Size, info.SHA256, del.Version.Size, del.UploadedSHA256), "")
		return
	}
	object := fmt.Sprintf("object %s size=%d sha256=%s (HeadObject)", del.UploadedKey, info.Size, info.SHA256)
	if wc.VerifyBeforeDelete == config.VerifyReadback {
		t := w.targets[del.Target]
		r, ok := t.Raw().(sink.Reader)
		if !ok {
			deferIt("its target cannot read an object back (verify_before_delete = \"readback\")")
			return
		}
		size, sha, err := r.ReadBack(ctx, del.UploadedKey)
		switch {
		case errors.Is(err, sink.ErrNotFound):
			refuse("the target no longer holds "+del.UploadedKey, "")
			return
		case err != nil:
			deferIt("cannot read the object back: " + err.Error())
			return
		case size != del.Version.Size || sha != del.UploadedSHA256:
			refuse(fmt.Sprintf("the object %s read back is not what landed (size %d sha256 %s, landed size %d sha256 %s)",
				del.UploadedKey, size, sha, del.Version.Size, del.UploadedSHA256), "")
			return
		}
		object += fmt.Sprintf("; read back whole: size=%d sha256=%s", size, sha)
	}
	tag := fmt.Sprintf("%d-%d", del.FileID, del.Generation)
	var got datasets.Removal
	var local string
	if dir := wc.MoveDir(); dir != "" {
		got, local, err = datasets.MoveSource(path, del.Version, del.UploadedSHA256, tag, filepath.Join(dir, filepath.FromSlash(del.RelPath)))
	} else {
		got, local, err = datasets.RemoveSource(path, del.Version, tag)
	}
	switch {
	case err != nil:
		deferIt(err.Error())
		return
	case got == datasets.Kept:
		refuse("the file at the path is not the version that landed, or its destination is taken: "+local, object+"; "+local)
		return
	}
	evidence := object + "; " + local
	if err := l.d.j.SourceDeleted(ctx, del.FileID, evidence); err != nil {
		log.Error("source file deleted but not journaled (the next start journals it)", "error", err.Error())
		return
	}
	l.ok("delete " + path)
	if got == datasets.Removed {
		log.Info("source file taken away (after_upload)", "after_upload", wc.AfterUpload, "bytes", del.Bytes, "evidence", evidence)
		if ds := wc.DatasetOf(del.RelPath); ds != "" {
			datasets.PruneEmpty(filepath.Dir(path), filepath.Join(del.Watch, filepath.FromSlash(ds)))
		}
	} else {
		log.Info("source file already gone; its deletion is recorded", "evidence", evidence)
	}
}
