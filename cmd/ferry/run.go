package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/pace"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/fssink"
	"github.com/ferry-data/ferry/uploader/sink/s3sink"
	"github.com/ferry-data/ferry/watcher"
)

// orphanSweep is how often a running daemon looks for orphaned uploads.
const orphanSweep = time.Hour

// stopTimeout bounds how long a stop waits for in-flight work.
const stopTimeout = 8 * time.Second

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (TOML)")
	once := fs.Bool("once", false, "upload what is in the watched folders now, then exit")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *configPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "ferry run: --config FILE is required (try: ferry run --config config.example.toml)")
		return exitUsage
	}
	cfg, err := config.Load(*configPath, getenv)
	if err != nil {
		return reportConfigError(stderr, err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := new(slog.LevelVar) // [log] level, which a reload may change
	log, closeLog, err := newLogger(cfg.Log, stderr, level)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: log file %s: %v\n", cfg.Log.File, err)
		return exitUsage
	}
	defer closeLog.Close()
	return serveOrRun(ctx, log, func(ctx context.Context, log *slog.Logger) int {
		return runDaemon(ctx, cfg, log, level, *once, stdout, stderr, getenv)
	})
}

// runDaemon runs ferry until ctx ends (or, with once, the work is done)
// and returns its exit code.
func runDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger, level *slog.LevelVar, once bool, stdout, stderr io.Writer, getenv env) int {
	d, err := newDaemon(cfg, log, level, getenv)
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	defer d.close()
	var reload chan struct{}
	if !once {
		reload = make(chan struct{}, 1)
		go watchConfig(ctx, cfg.File(), reload, log)
	}
	res, err := d.run(ctx, once, reload)
	if err != nil {
		log.Error("stopped on error", "error", err.Error())
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	if once {
		return reportOnce(stdout, res)
	}
	return exitOK
}

// daemon is ferry wired together: one journal, and, from the current
// configuration, one sink per target, one uploader and one watcher per
// watch. A configuration reload swaps the wiring while the journal (the
// queue) stays.
type daemon struct {
	log     *slog.Logger
	level   *slog.LevelVar // the logger's level ([log] level: a reload changes it)
	j       *journal.Journal
	getenv  env
	stats   *uploader.Stats // running totals, across reloads
	metrics *metrics
	cur     atomic.Pointer[wiring]
	started time.Time

	reloads        atomic.Int64 // configuration reloads applied
	reloadFailures atomic.Int64 // edits refused (invalid, or could not be applied)
}

// wiring is what one configuration made: read it whole through d.now(),
// never field by field across a reload.
type wiring struct {
	cfg   *config.Config
	up    *uploader.Uploader
	sinks map[string]sink.Sink // by target name
	// watches are the watchers by watch root, made but not necessarily
	// running; routes gives each root its target.
	watches map[string]*watcher.Watcher
	routes  map[string]route
}

// route is where the files of one watch root go.
type route struct {
	target string
	t      config.TargetConfig
}

func (d *daemon) now() *wiring { return d.cur.Load() }

// uploader is the current uploader.
func (d *daemon) uploader() *uploader.Uploader { return d.now().up }

func newDaemon(cfg *config.Config, log *slog.Logger, level *slog.LevelVar, getenv env) (*daemon, error) {
	j, err := journal.Open(cfg.Journal.Path, journal.Options{FerryVersion: versionString()})
	if err != nil {
		if errors.Is(err, journal.ErrCorrupt) {
			return nil, fmt.Errorf("%w\nferry will not start on a corrupt journal. To recover, run:\n  ferry journal rebuild --config %s\nIt keeps the corrupt file beside the new one and records as uploaded every file the target already holds, so nothing is sent twice", err, cfg.File())
		}
		return nil, err
	}
	d := &daemon{log: log, level: level, j: j, getenv: getenv, stats: new(uploader.Stats), started: time.Now()}
	w, err := d.wire(cfg, nil)
	if err != nil {
		j.Close()
		return nil, err
	}
	d.cur.Store(w)
	d.metrics = newMetrics(d)
	return d, nil
}

// wire makes the sinks, the uploader and the watchers of cfg, none of them
// started. With old, it reuses what cfg does not change: the uploader
// (with its sinks and breakers) when neither the targets nor the upload
// settings changed, and each watcher whose settings are the same.
func (d *daemon) wire(cfg *config.Config, old *wiring) (*wiring, error) {
	w := &wiring{cfg: cfg, watches: map[string]*watcher.Watcher{}, routes: map[string]route{}}
	if old != nil && !uploadChanged(old.cfg, cfg) {
		w.up, w.sinks = old.up, old.sinks
	} else {
		w.sinks = map[string]sink.Sink{}
		lim := pace.New(int64(cfg.Upload.MaxBandwidth)) // shared by every target
		for name, t := range cfg.Target {
			// A server's announced request budget slows that target's
			// uploads, in whichever uploader is current when it answers.
			onRateLimit := func(rl sink.RateLimit) { d.uploader().RateLimited(name, rl) }
			s, err := newSink(t, cfg.Upload.MaxConcurrentUploads, lim, onRateLimit)
			if err != nil {
				return nil, fmt.Errorf("target %s: %w", name, err)
			}
			w.sinks[name] = s
		}
		onChange := map[string]uploader.OnChange{}
		for _, wc := range cfg.Watch {
			onChange[filepath.Clean(wc.Path)] = uploader.OnChange(wc.OnChange)
		}
		up, err := uploader.New(uploader.Options{
			OnChange:         onChange,
			Journal:          d.j,
			Sinks:            w.sinks,
			Workers:          cfg.Upload.MaxConcurrentUploads,
			ChunkSize:        int64(cfg.Upload.MaxChunkSize),
			MaxInflightBytes: int64(cfg.Upload.MaxInflightBytes),
			Breaker: uploader.BreakerPolicy{
				FailureThreshold: cfg.Upload.Breaker.FailureThreshold,
				OpenTimeout:      time.Duration(cfg.Upload.Breaker.OpenTimeout),
				HalfOpenProbes:   cfg.Upload.Breaker.HalfOpenProbes,
			},
			Retry: uploader.RetryPolicy{
				Attempts:     cfg.Upload.Retry.Attempts,
				InitialDelay: time.Duration(cfg.Upload.Retry.InitialDelay),
				MaxDelay:     time.Duration(cfg.Upload.Retry.MaxDelay),
			},
			Logger: d.log,
			Stats:  d.stats,
			OnChunk: func(target string, size int64, took time.Duration) {
				if d.metrics != nil {
					d.metrics.observeChunk(target, size, took)
				}
			},
		})
		if err != nil {
			return nil, err
		}
		w.up = up
	}
	for _, wc := range cfg.Watch {
		opts := watcherOptions(cfg, wc, d.known, d.log)
		root := filepath.Clean(wc.Path)
		w.routes[root] = route{target: wc.Target, t: cfg.Target[wc.Target]}
		if old != nil && old.watches[root] != nil && sameWatch(old.cfg, cfg, root) {
			w.watches[root] = old.watches[root]
			continue
		}
		wa, err := watcher.New(opts)
		if err != nil {
			return nil, err
		}
		w.watches[wa.Root()] = wa
	}
	return w, nil
}

// uploadChanged says whether the uploader must be made anew for cfg:
// targets, upload settings or a watch's on_change differ.
func uploadChanged(a, b *config.Config) bool {
	onChange := func(c *config.Config) map[string]string {
		m := map[string]string{}
		for _, w := range c.Watch {
			m[filepath.Clean(w.Path)] = w.OnChange
		}
		return m
	}
	return !reflect.DeepEqual(a.Upload, b.Upload) || !reflect.DeepEqual(a.Target, b.Target) ||
		!reflect.DeepEqual(onChange(a), onChange(b))
}

// sameWatch says whether the watch at root would get the same watcher
// under both configurations: the same [[watch]] settings, the same target
// prefix, and the same files of ferry's own to ignore.
func sameWatch(a, b *config.Config, root string) bool {
	find := func(c *config.Config) (config.WatchConfig, bool) {
		for _, w := range c.Watch {
			if filepath.Clean(w.Path) == root {
				return w, true
			}
		}
		return config.WatchConfig{}, false
	}
	wa, okA := find(a)
	wb, okB := find(b)
	if !okA || !okB || !reflect.DeepEqual(wa, wb) || a.Target[wa.Target].Prefix != b.Target[wb.Target].Prefix {
		return false
	}
	oa := watcherOptions(a, wa, nil, nil)
	ob := watcherOptions(b, wb, nil, nil)
	return reflect.DeepEqual(oa.Ignore, ob.Ignore)
}

// watcherOptions are a [[watch]]'s options for the watcher, which never
// reports ferry's own files (journal, logs, fs targets) when they sit
// inside a watched folder.
func watcherOptions(c *config.Config, w config.WatchConfig, known func(context.Context, watcher.File) (bool, error), log *slog.Logger) watcher.Options {
	j := c.Journal.Path
	ignore := []string{j, j + "-wal", j + "-shm", j + "-journal", j + ".rebuild*", j + ".corrupt-*", j + ".old-*"}
	if c.Log.File != "" {
		// The log and its rotated copies (lumberjack: NAME-TIMESTAMP.EXT[.gz]).
		rotated := strings.TrimSuffix(c.Log.File, filepath.Ext(c.Log.File)) + "-*"
		ignore = append(ignore, c.Log.File, rotated)
	}
	for _, t := range c.Target {
		if t.Type == "fs" {
			ignore = append(ignore, t.Path)
		}
	}
	return watcher.Options{
		Root:           w.Path,
		Settle:         time.Duration(w.Settle),
		Recursive:      *w.Recursive,
		Include:        w.Include,
		Exclude:        w.Exclude,
		RescanInterval: time.Duration(w.RescanInterval),
		Ignore:         ignore,
		Known:          known,
		Logger:         log,
	}
}

// newSink makes a target's sink; an S3 target's connection pool is sized to
// the workers (each keeps at most one request in flight, plus a spare).
func newSink(t config.TargetConfig, workers int, lim *pace.Limiter, onRateLimit func(sink.RateLimit)) (sink.Sink, error) {
	switch t.Type {
	case "fs":
		s, err := fssink.New(t.Path)
		if err != nil {
			return nil, err
		}
		return s.Pace(lim), nil
	case "s3":
		access, secret := t.Credentials()
		return s3sink.New(s3sink.Options{
			Endpoint:    t.Endpoint,
			Region:      t.Region,
			Bucket:      t.Bucket,
			AccessKey:   access.Reveal(),
			SecretKey:   secret.Reveal(),
			MaxConns:    workers + 2,
			Limiter:     lim,
			OnRateLimit: onRateLimit,
		})
	}
	return nil, fmt.Errorf("unknown target type %q", t.Type)
}

func (d *daemon) close() {
	if err := d.j.Close(); err != nil {
		d.log.Error("closing the journal", "error", err.Error())
	}
}

func fileVersion(f watcher.File) journal.Version {
	return journal.Version{Size: f.Stat.Size, MtimeNS: f.Stat.ModTime.UnixNano(), FileID: f.Stat.ID.String()}
}

func (d *daemon) known(ctx context.Context, f watcher.File) (bool, error) {
	return d.j.Known(ctx, f.Root, f.RelPath, fileVersion(f))
}

// record journals settled files and nudges the uploader.
func (d *daemon) record(ctx context.Context, files []watcher.File) error {
	w := d.now()
	ss := make([]journal.Settled, len(files))
	for i, f := range files {
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
		ss[i] = s
	}
	outs, err := d.j.RecordSettledBatch(ctx, ss)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	queued := false
	for i, s := range ss {
		switch {
		case s.Invalid != "":
			d.log.Error("file cannot be stored under its name", "path", s.RelPath, "batch_id", s.BatchID, "error", s.Invalid)
		case outs[i] != journal.Unchanged:
			d.log.Debug("settled", "path", s.RelPath, "batch_id", s.BatchID, "size", s.Version.Size, "signal", s.Signal, "new_version", outs[i] == journal.Requeued)
			queued = true
		}
	}
	if queued {
		d.uploader().Notify()
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
// stopTimeout (or until ctx ends: the daemon is stopping), then cancels
// them (their files stay queued in the journal), and waits for it to end.
func stopUploader(ctx context.Context, up *uploader.Uploader, r *running) error {
	up.Stop()
	t := time.AfterFunc(stopTimeout, r.cancel)
	defer t.Stop()
	defer context.AfterFunc(ctx, r.cancel)()
	err := <-r.done
	r.cancel()
	return err
}

// run starts the watchers and the uploader and waits until ctx ends or,
// with once, until the work that was there at start is done. Between, each
// signal on reload makes it read the configuration again (see reload).
func (d *daemon) run(ctx context.Context, once bool, reload <-chan struct{}) (onceResult, error) {
	if n, err := d.j.Recover(ctx); err != nil {
		return onceResult{}, fmt.Errorf("journal: %w", err)
	} else if n > 0 {
		d.log.Info("resuming files that were being uploaded when ferry last stopped", "files", n)
	}
	if dl, err := d.j.DeadLetters(ctx); err == nil && len(dl) > 0 {
		d.log.Warn("files failed permanently and wait for a person: see ferry dlq list", "dead_letters", len(dl))
	}
	d.abortOrphans(ctx)
	w := d.now()
	roots := w.roots()
	d.log.Info("ferry started", "version", versionString(), "config", w.cfg.File(), "config_sha256", w.cfg.SHA256(),
		"journal", w.cfg.Journal.Path, "schema_version", journal.SchemaVersion(), "watches", roots, "once", once)
	cp := d.auditStart(ctx) // audit log: start, configuration; checkpoints (below)

	// The watchers stop first, at once; the uploader gets stopTimeout to
	// finish what is in flight.
	wctx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	go cp.run(wctx) // ends with the watchers; auditStop waits for it
	uctx := context.WithoutCancel(ctx)
	rs := &runState{watches: map[string]*running{}, errc: make(chan error, 1)}
	for _, root := range roots {
		rs.startWatch(wctx, d, w.watches[root], once)
	}
	var wg sync.WaitGroup
	if once {
		// The input is done once every watcher has walked its folder.
		go func() {
			for _, r := range rs.watches {
				<-r.done
			}
			w.up.InputDone()
		}()
	}
	rs.up = start(uctx, w.up.Run)
	if !once {
		rs.metrics = start(wctx, func(ctx context.Context) error {
			d.metrics.serve(ctx, *w.cfg.Metrics.Listen, d.log)
			return nil
		})
		// Uploads abandoned while running (a version superseded mid-upload
		// whose abort failed, say) are found by the same sweep, hourly.
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
loop:
	for {
		select {
		case <-ctx.Done():
			d.log.Info("stopping: finishing or abandoning in-flight uploads", "timeout", stopTimeout.String())
			break loop
		case runErr = <-rs.errc:
			break loop
		case runErr = <-rs.up.done:
			// Done (--once) or failed; done is closed now, so the stop
			// below does not wait.
			break loop
		case <-reload:
			d.reload(wctx, uctx, rs)
		}
	}
	cancelWatch()
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
	d.log.Info("ferry stopped", "uploaded_files", d.stats.Uploaded.Load(), "uploaded_bytes", d.stats.Bytes.Load(), "failed_files", d.stats.Failed.Load())
	d.auditStop(cp) // audit log: stop; a final checkpoint
	if runErr != nil {
		return onceResult{}, runErr
	}
	if !once {
		return onceResult{}, nil
	}
	if ctx.Err() != nil {
		return onceResult{}, errors.New("interrupted before the work was done")
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
func (rs *runState) startWatch(ctx context.Context, d *daemon, w *watcher.Watcher, once bool) {
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

// roots are the watch roots, sorted.
func (w *wiring) roots() []string {
	roots := make([]string, 0, len(w.watches))
	for r := range w.watches {
		roots = append(roots, r)
	}
	sort.Strings(roots)
	return roots
}

// abortOrphans aborts, on every target, the multipart uploads under its
// prefix that the journal does not know, once older than orphan_upload_ttl.
// A target that cannot be reached now is left for the next start.
func (d *daemon) abortOrphans(ctx context.Context) {
	known, err := d.j.UploadIDs(ctx)
	if err != nil {
		d.log.Error("cannot read the journal's uploads; orphans are left for the next start", "error", err.Error())
		return
	}
	w := d.now()
	for name, s := range w.sinks {
		n, err := uploader.AbortOrphans(ctx, s, w.cfg.Target[name].Prefix, known, time.Duration(w.cfg.Upload.OrphanUploadTTL), time.Now(), d.log.With("target", name))
		if err != nil {
			d.log.Warn("could not clean up orphaned multipart uploads; trying again at the next start", "target", name, "error", err.Error())
		}
		if n > 0 {
			d.log.Info("aborted orphaned multipart uploads", "target", name, "uploads", n)
		}
	}
}

type onceResult struct {
	uploaded int
	bytes    int64
	pending  []journal.FileRow // not uploaded: queued, failed, changed
}

func (d *daemon) onceResult(ctx context.Context, roots []string) (onceResult, error) {
	res := onceResult{uploaded: int(d.stats.Uploaded.Load()), bytes: d.stats.Bytes.Load()}
	rows, err := d.j.Files(ctx, journal.Queued, journal.Uploading, journal.Failed, journal.Changed)
	if err != nil {
		return res, err
	}
	for _, r := range rows {
		for _, root := range roots {
			if r.Watch == root {
				res.pending = append(res.pending, r)
			}
		}
	}
	return res, nil
}

func reportOnce(w io.Writer, r onceResult) int {
	fmt.Fprintf(w, "uploaded %d files (%d bytes)\n", r.uploaded, r.bytes)
	if len(r.pending) == 0 {
		return exitOK
	}
	sort.Slice(r.pending, func(a, b int) bool { return r.pending[a].RelPath < r.pending[b].RelPath })
	fmt.Fprintf(w, "%d files not uploaded:\n", len(r.pending))
	for _, f := range r.pending {
		msg := f.Error
		if msg == "" {
			msg = "waiting"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", f.State, filepath.Join(f.Watch, filepath.FromSlash(f.RelPath)), msg)
	}
	return exitFailed
}
