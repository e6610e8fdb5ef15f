// Package daemon is ferry running: one journal and, from the current
// configuration, one sink per target, one uploader and one watcher per
// watch, wired together (wire), started, stopped, and rewired when the
// configuration file changes (reload). Beside them it runs the
// checkpointer, the hourly sweep of orphaned uploads, and the metrics and
// status endpoints, which read the daemon through StatusSource only. It is,
// with cmd/ferry, the one place that wires concrete types together; the
// verbs of cmd/ferry that need a target or the journal's rebuild find those
// here too (NewSink, ProbeTarget, VerifyAgainstTargets, Rebuild).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferry-data/ferry/internal/clock"
	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/datasets"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader"
	"github.com/ferry-data/ferry/watcher"
)

// orphanSweep is how often a running daemon looks for orphaned uploads.
const orphanSweep = time.Hour

// fileCheck is how often a running daemon checks that its journal's path
// still names the file it has open.
const fileCheck = 2 * time.Second

// orphanSweepTimeout bounds one target's orphan sweep: the sweep runs
// beside the uploads (it never holds the start), and a target that does
// not answer is left for the next sweep.
const orphanSweepTimeout = 2 * time.Minute

// stopBudget is the time a stop takes at most, from the signal to the end
// of run: the uploader's StopTimeout and the final checkpoint share it.
const stopBudget = 9500 * time.Millisecond

// StopTimeout bounds how long a stop waits for in-flight work: then the
// parts in flight are abandoned and their files stay queued.
const StopTimeout = 8 * time.Second

// Options are what a daemon needs besides its configuration.
type Options struct {
	Log *slog.Logger
	// Level is the logger's level, which a reload sets to [log] level;
	// nil when the logger's level is fixed.
	Level *slog.LevelVar
	// Getenv reads the environment variables the targets name (the
	// credentials), at start and at each reload.
	Getenv func(string) (string, bool)
	// Version is ferry's version, recorded in the journal, the audit log
	// and the checkpoints, and shown by /status.
	Version string
	// Now is the one clock of the daemon, its journal, watchers, uploader
	// and targets; nil means time.Now.
	Now func() time.Time
}

// Daemon is ferry wired together: one journal, and, from the current
// configuration, one sink per target, one uploader and one watcher per
// watch. A configuration reload swaps the wiring while the journal (the
// queue) stays.
type Daemon struct {
	log     *slog.Logger
	level   *slog.LevelVar // the logger's level ([log] level: a reload changes it)
	j       *journal.Journal
	getenv  func(string) (string, bool)
	version string
	stats   *uploader.Stats // running totals, across reloads
	metrics *metrics
	cur     atomic.Pointer[wiring]
	started time.Time
	clock   func() time.Time // Options.Now
	// steady is the clock of retries, back-offs and breakers: Options.Now
	// made immune to steps of the wall clock (clock.Steady).
	steady func() time.Time

	gone atomic.Pointer[error] // the journal's file was deleted or replaced (watchFile)

	reloads        atomic.Int64 // configuration reloads applied
	reloadFailures atomic.Int64 // edits refused (invalid, or could not be applied)

	datasets *datasetLoop // datasets and notifications
}

// New opens the journal of cfg and wires the daemon, starting nothing. A
// corrupt journal is refused with the way out (ferry journal rebuild).
func New(cfg *config.Config, o Options) (*Daemon, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	steady := clock.Steady(o.Now)
	j, err := journal.Open(cfg.Journal.Path, journal.Options{FerryVersion: o.Version, Now: o.Now, DueNow: steady, Exclusive: true})
	if err != nil {
		if errors.Is(err, journal.ErrCorrupt) {
			return nil, fmt.Errorf("%w\nferry will not start on a corrupt journal. To recover, run:\n  ferry journal rebuild --config %s\nIt keeps the corrupt file beside the new one and records as uploaded every file the target already holds, so nothing is sent twice", err, cfg.File())
		}
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Debug("journal opened", "path", cfg.Journal.Path, "integrity_check", j.StartCheck())
	d := &Daemon{log: log, level: o.Level, j: j, getenv: o.Getenv, version: o.Version, stats: new(uploader.Stats), started: o.Now(), clock: o.Now, steady: steady}
	w, err := d.wire(cfg, nil)
	if err != nil {
		j.Close()
		return nil, err
	}
	d.cur.Store(w)
	d.datasets = newDatasetLoop(d)
	d.metrics = newMetrics(d, d.clock)
	return d, nil
}

// now is the current wiring: read it whole, never field by field across a
// reload.
func (d *Daemon) now() *wiring { return d.cur.Load() }

// uploader is the current uploader.
func (d *Daemon) uploader() *uploader.Uploader { return d.now().up }

// Close closes the journal. When its file was deleted or replaced while
// the daemon ran, it first copies what the open handle still holds back to
// the path (journal.Rescue) and says where.
func (d *Daemon) Close() {
	if d.gone.Load() != nil {
		at, err := d.j.Rescue()
		if err != nil {
			d.log.Error("could not rescue the journal's history from the deleted file", "journal", d.j.Path(), "error", err.Error())
		} else {
			d.log.Error("the journal's history was copied from the deleted file", "journal", d.j.Path(), "copy", at)
		}
		return
	}
	if err := d.j.Close(); err != nil {
		d.log.Error("closing the journal", "error", err.Error())
	}
}

// watchFile checks every fileCheck that the journal's path still names the
// file the daemon has open. Once it does not (deleted, replaced), every
// step from then on would be lost at the stop: it marks the daemon
// unhealthy, logs it once, and reports it on lost (the daemon stops, and
// Close rescues the history).
func (d *Daemon) watchFile(ctx context.Context, lost chan<- error) {
	t := time.NewTicker(fileCheck)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		err := d.j.CheckFile()
		if err == nil || !errors.Is(err, journal.ErrGone) {
			continue
		}
		d.gone.Store(&err)
		d.log.Error("the journal file is gone: stopping, and copying the history ferry still holds back to its path", "journal", d.j.Path(), "error", err.Error())
		select {
		case lost <- err:
		case <-ctx.Done():
		}
		return
	}
}

func fileVersion(f watcher.File) journal.Version {
	return journal.Version{Size: f.Stat.Size, MtimeNS: f.Stat.ModTime.UnixNano(), FileID: f.Stat.ID.String()}
}

func (d *Daemon) known(ctx context.Context, f watcher.File) (bool, error) {
	return d.j.Known(ctx, f.Root, f.RelPath, fileVersion(f))
}

// knownBatch is known for the files of one walk batch (one watch), in
// one journal query per journal.MaxKnownBatch files.
func (d *Daemon) knownBatch(ctx context.Context, fs []watcher.File) ([]bool, error) {
	if len(fs) == 0 {
		return nil, nil
	}
	rels := make([]string, len(fs))
	vs := make([]journal.Version, len(fs))
	for i, f := range fs {
		if f.Root != fs[0].Root {
			return nil, fmt.Errorf("known: files of two watches in one batch (%s, %s)", fs[0].Root, f.Root)
		}
		rels[i], vs[i] = f.RelPath, fileVersion(f)
	}
	return d.j.KnownBatch(ctx, fs[0].Root, rels, vs)
}

// record journals settled files and nudges the uploader.
func (d *Daemon) record(ctx context.Context, files []watcher.File) error {
	w := d.now()
	ss := make([]journal.Settled, 0, len(files))
	for _, f := range files {
		if datasets.Quarantined(f.RelPath) {
			continue // a source file being deleted, under ferry's own name
		}
		r, ok := w.routes[f.Root]
		if !ok {
			// A watch taken out of the configuration: its watcher is
			// stopped before the new wiring is published, so this does
			// not happen; if it did, the file is found again by a walk.
			return fmt.Errorf("watch %s is not in the configuration", f.Root)
		}
		s := journal.Settled{
			Watch: f.Root, RelPath: f.RelPath, Target: r.target,
			BatchID: uploader.BatchID(f.RelPath), Version: fileVersion(f), Signal: f.Signal,
		}
		key, err := uploader.ObjectKey(r.t.Prefix, f.RelPath)
		if err != nil {
			s.Invalid = err.Error()
		}
		s.Key = key
		if ds, err := datasetOf(r.wc, r.t, r.target, f.Root, f.RelPath); err != nil && s.Invalid == "" {
			s.Invalid = err.Error()
		} else if ds != nil {
			s.Dataset, s.BatchID = ds, ds.RelPath
			if why := reservedInDataset(ds, f.RelPath); why != "" && s.Invalid == "" {
				s.Invalid = why
			}
			if ds.Profile != "" {
				s.MetadataSource = isMetadataSource(d.now().cfg.Profile(r.wc), strings.TrimPrefix(f.RelPath, ds.RelPath+"/"))
			}
		}
		ss = append(ss, s)
	}
	if len(ss) == 0 {
		return nil
	}
	outs, err := d.j.RecordSettledBatch(ctx, ss)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	queued := false
	for i, s := range ss {
		log := d.log
		if s.Dataset != nil && s.Dataset.Profile != "" && (s.Invalid != "" || d.log.Enabled(ctx, slog.LevelDebug)) {
			// A file of a dataset with metadata: its lines say how the
			// dataset validated.
			if v, st, err := d.j.Stamp(ctx, s.Watch, s.Dataset.RelPath); err == nil && (v != "" || st != "") {
				log = log.With("schema_version", v, "validation_status", st)
			}
		}
		switch {
		case s.Invalid != "":
			log.Error("file cannot be stored under its name", "path", s.RelPath, "batch_id", s.BatchID, "error", s.Invalid)
		case outs[i] != journal.Unchanged:
			log.Debug("settled", "path", s.RelPath, "batch_id", s.BatchID, "size", s.Version.Size, "signal", s.Signal, "new_version", outs[i] == journal.Requeued)
			queued = true
		}
	}
	if queued {
		d.uploader().Notify()
	}
	if d.datasets != nil {
		d.datasets.Nudge()
	}
	return nil
}

// running is a started watcher or uploader: cancel ends it, done says
// when it has.
type running struct {
	cancel context.CancelFunc
	done   chan error // receives the result once, then is closed
}

func start(ctx context.Context, fn func(ctx context.Context) error) *running {
	ctx, cancel := context.WithCancel(ctx)
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := fn(ctx)
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			err = nil // stopped by us
		}
		r.done <- err
		close(r.done)
	}()
	return r
}

// stopUploader makes up start nothing new, gives the parts in flight
// StopTimeout (or until ctx ends: the daemon is stopping), then cancels
// them (their files stay queued in the journal), and waits for it to end.
func stopUploader(ctx context.Context, up *uploader.Uploader, r *running) error {
	up.Stop()
	t := time.AfterFunc(StopTimeout, r.cancel)
	defer t.Stop()
	defer context.AfterFunc(ctx, r.cancel)()
	err := <-r.done
	r.cancel()
	return err
}

// Run starts the watchers and the uploader and waits until ctx ends or,
// with once, until the work that was there at start is done (its result
// says what was uploaded and what was not). Without once, edits of the
// configuration file (and SIGHUP on Unix) are applied as they come (see
// reload).
func (d *Daemon) Run(ctx context.Context, once bool) (OnceResult, error) {
	var reload chan struct{}
	if !once {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		reload = make(chan struct{}, 1)
		go watchConfig(wctx, d.now().cfg.File(), d.ruleFiles, reload, d.log)
	}
	return d.run(ctx, once, reload)
}

// run is Run, reading the configuration again at each signal on reload.
func (d *Daemon) run(ctx context.Context, once bool, reload <-chan struct{}) (OnceResult, error) {
	if n, err := d.j.Recover(ctx); err != nil {
		if ctx.Err() != nil && !once {
			return OnceResult{}, nil // stopped while starting: nothing began
		}
		return OnceResult{}, fmt.Errorf("journal: %w", err)
	} else if n > 0 {
		d.log.Info("resuming files that were being uploaded when ferry last stopped", "files", n)
	}
	// Due times outlive the process; a clock corrected since they were
	// set must not hold files back by the size of the correction.
	if n, err := d.j.CapDue(ctx, d.steady()); err != nil {
		return OnceResult{}, fmt.Errorf("journal: %w", err)
	} else if n > 0 {
		d.log.Warn("retries were due further ahead than the longest back-off (the clock was set back?): due within the hour now", "files", n, "max", journal.MaxDueAhead.String())
	}
	if n, err := d.j.CountDeadLetters(ctx); err == nil && n > 0 {
		d.log.Warn("files failed permanently and wait for a person: see ferry dlq list", "dead_letters", n)
	}
	w := d.now()
	roots := w.roots()
	d.log.Info("ferry started", "version", d.version, "config", w.cfg.File(), "config_sha256", w.cfg.SHA256(),
		"journal", w.cfg.Journal.Path, "schema_version", journal.SchemaVersion(), "watches", roots, "once", once)
	cp := d.auditStart(ctx) // audit log: start, configuration; checkpoints (below)

	// The watchers stop first, at once; the uploader gets StopTimeout to
	// finish what is in flight.
	wctx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	// A checkpoint at start anchors what an earlier process appended and
	// did not anchor (it crashed, or ferry dlq wrote); a --once run takes
	// only its final one.
	atStart := false
	if !once {
		done, err := d.j.EventsCheckpointed(ctx)
		atStart = err != nil || !done
	}
	go cp.run(wctx, atStart) // ends with the watchers; auditStop waits for it
	uctx := context.WithoutCancel(ctx)
	rs := &runState{watches: map[string]*running{}, errc: make(chan error, 1)}
	for _, root := range roots {
		rs.startWatch(wctx, d, w.watches[root], once)
	}
	var wg sync.WaitGroup
	// Orphaned multipart uploads (a crash between creating one and
	// journaling its ID) are aborted at start, beside the uploads: the
	// sweep's requests pass the same decorators (a server's pause holds
	// the uploads too; a target out of reach is retried, and does not
	// hold up the start).
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.abortOrphans(wctx)
	}()
	// An fs target: the temporary files of puts a kill interrupted go
	// before the first put; an archive of the earlier layout is migrated
	// beside the uploads (until a signal: a --once run that is done with
	// its files waits for it, so that it is done once, not begun each run).
	d.sweepFSTemp(w)
	mctx, cancelMigrate := context.WithCancel(ctx)
	defer cancelMigrate()
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.migrateFS(mctx, w)
	}()
	if once {
		// The input is done once every watcher has walked its folder.
		go func() {
			for _, r := range rs.watches {
				<-r.done
			}
			// Every dataset the run found is validated before the input
			// is done: its files are released (or held) first, so that
			// the uploader does not end with them still waiting.
			d.datasets.metadataPass(wctx, d.now())
			w.up.InputDone()
		}()
	}
	rs.up = start(uctx, w.up.Run)
	// Datasets close, and notifications go, beside the uploads; with once,
	// one last pass closes what the run completed (below).
	wg.Add(2)
	go func() { defer wg.Done(); d.datasets.run(wctx) }()
	go func() { defer wg.Done(); d.datasets.sendLoop(wctx) }()
	lost := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.watchFile(wctx, lost)
	}()
	if !once {
		rs.metrics = start(wctx, func(ctx context.Context) error {
			d.metrics.serve(ctx, *w.cfg.Metrics.Listen, d.log)
			return nil
		})
		// The journal's growth policy: archive_after, daily (archive.go).
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.archiver().run(wctx)
		}()
		// Uploads abandoned while running (an abort that failed, say) are
		// found by the same sweep, hourly.
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(orphanSweep)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					d.abortOrphans(wctx)
				case <-wctx.Done():
					return
				}
			}
		}()
	}

	var runErr error
	var stopAt time.Time // when a signal asked for the stop
loop:
	for {
		select {
		case <-ctx.Done():
			stopAt = time.Now()
			d.log.Info("stopping: finishing or abandoning in-flight uploads", "timeout", StopTimeout.String())
			break loop
		case runErr = <-rs.errc:
			break loop
		case runErr = <-lost:
			break loop
		case runErr = <-rs.up.done:
			// Done (--once) or failed; done is closed now, so the stop
			// below does not wait.
			break loop
		case <-reload:
			d.reload(wctx, uctx, rs)
		}
	}
	if once && runErr == nil && ctx.Err() == nil {
		// Every file of the run is journaled and sent: datasets complete
		// by now close, and their notifications go, before the end.
		d.datasets.pass(ctx)
		d.datasets.queueFileFailures(ctx)
		d.datasets.sendDue(ctx)
	}
	cancelWatch()
	if !once || runErr != nil {
		cancelMigrate() // a daemon's stop does not wait for it: the next start goes on
	}
	// Start nothing new; give the parts in flight a few seconds, then
	// cancel them: their files stay queued in the journal.
	if err := stopUploader(context.Background(), d.uploader(), rs.up); err != nil && runErr == nil {
		runErr = err
	}
	for _, r := range rs.watches {
		<-r.done
	}
	if rs.metrics != nil {
		<-rs.metrics.done
	}
	wg.Wait()
	// audit log: stop; a final checkpoint, whose upload has what is left
	// of the stop's budget (a signal's stop ends within 10 s).
	deadline := time.Now().Add(finalCheckpointTimeout)
	if end := stopAt.Add(stopBudget); !stopAt.IsZero() && end.Before(deadline) {
		deadline = end
	}
	d.auditStop(cp, deadline)
	d.log.Info("ferry stopped", "uploaded_files", d.stats.Uploaded.Load(), "uploaded_bytes", d.stats.Bytes.Load(), "failed_files", d.stats.Failed.Load())
	if runErr != nil {
		return OnceResult{}, runErr
	}
	if !once {
		return OnceResult{}, nil
	}
	if ctx.Err() != nil {
		return OnceResult{}, errors.New("interrupted before the work was done")
	}
	return d.onceResult(context.Background(), roots)
}

// runState is what run started: the watchers by root, the uploader and the
// metrics server; a reload replaces some of them.
type runState struct {
	watches map[string]*running
	up      *running
	metrics *running
	errc    chan error // the first watcher failure
}

// startWatch runs w until ctx ends or the watch is stopped by a reload; a
// watcher failing on its own ends the daemon (through errc).
func (rs *runState) startWatch(ctx context.Context, d *Daemon, w *watcher.Watcher, once bool) {
	rs.watches[w.Root()] = start(ctx, func(ctx context.Context) error {
		var err error
		if once {
			err = w.Once(ctx, d.record)
		} else {
			err = w.Run(ctx, d.record)
		}
		if err != nil && ctx.Err() == nil {
			select {
			case rs.errc <- fmt.Errorf("watch %s: %w", w.Root(), err):
			default:
			}
		}
		return nil
	})
}

// abortOrphans aborts, on every target, the multipart uploads under its
// prefix that the journal does not know, once older than orphan_upload_ttl.
// A target that cannot be reached now is left for the next start.
func (d *Daemon) abortOrphans(ctx context.Context) {
	known, err := d.j.UploadIDs(ctx)
	if err != nil {
		d.log.Error("cannot read the journal's uploads; orphans are left for the next start", "error", err.Error())
		return
	}
	w := d.now()
	for name, s := range w.sinks {
		// A target that accepts connections and never answers holds
		// one sweep for orphanSweepTimeout at most, never the daemon.
		tctx, cancel := context.WithTimeout(ctx, orphanSweepTimeout)
		n, err := uploader.AbortOrphans(tctx, s, w.cfg.Target[name].Prefix, known, time.Duration(w.cfg.Upload.OrphanUploadTTL), d.clock(), d.log.With("target", name))
		cancel()
		if err != nil && ctx.Err() == nil {
			d.log.Warn("could not clean up orphaned multipart uploads; trying again at the next sweep", "target", name, "error", err.Error())
		}
		if n > 0 {
			d.log.Info("aborted orphaned multipart uploads", "target", name, "uploads", n)
		}
	}
}

// OnceResult is what a run with once did: the files uploaded (and their
// bytes), the files of its watches that are not uploaded (still pending,
// or dead letters), and those deleted or renamed during the run before
// they landed (vanished: nothing is left to send for them).
type OnceResult struct {
	Uploaded int
	Bytes    int64
	Pending  []journal.FileRow
	Vanished []journal.FileRow
	// Watches are the watches whose folder could not be looked at whole:
	// down (missing, unmounted, unreadable) or with folders that could not
	// be read. Their files there are not taken: the run did not do its work.
	Watches []WatchState
}

func (d *Daemon) onceResult(ctx context.Context, roots []string) (OnceResult, error) {
	res := OnceResult{Uploaded: int(d.stats.Uploaded.Load()), Bytes: d.stats.Bytes.Load()}
	for _, ws := range d.WatchStates() {
		if !ws.Up || len(ws.Unreadable) > 0 {
			res.Watches = append(res.Watches, ws)
		}
	}
	rows, err := d.j.Files(ctx, append(journal.PendingStates(), journal.Failed, journal.Vanished, journal.Held)...)
	if err != nil {
		return res, err
	}
	for _, r := range rows {
		for _, root := range roots {
			switch {
			case r.Watch != root:
			case r.State != journal.Vanished:
				res.Pending = append(res.Pending, r)
			case !r.UpdatedAt.Before(d.started):
				res.Vanished = append(res.Vanished, r)
			}
		}
	}
	return res, nil
}
