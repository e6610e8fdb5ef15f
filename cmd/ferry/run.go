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
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

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
	cfg, err := LoadConfig(*configPath, getenv)
	if err != nil {
		return reportConfigError(stderr, err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log, closeLog, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: log file %s: %v\n", cfg.Log.File, err)
		return exitUsage
	}
	defer closeLog.Close()
	d, err := newDaemon(cfg, log)
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	defer d.close()
	res, err := d.run(ctx, *once)
	if err != nil {
		log.Error("stopped on error", "error", err.Error())
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	if *once {
		return reportOnce(stdout, res)
	}
	return exitOK
}

// daemon is ferry wired together: one journal, one sink per target, one
// watcher per watch, one uploader.
type daemon struct {
	cfg      *Config
	log      *slog.Logger
	j        *journal.Journal
	up       *uploader.Uploader
	watchers []*watcher.Watcher
	targets  map[string]TargetConfig // by watch root
	sinks    map[string]sink.Sink    // by target name
	metrics  *metrics
}

func newDaemon(cfg *Config, log *slog.Logger) (*daemon, error) {
	j, err := journal.Open(cfg.Journal.Path, journal.Options{FerryVersion: versionString()})
	if err != nil {
		if errors.Is(err, journal.ErrCorrupt) {
			return nil, fmt.Errorf("%w\nferry will not start on a corrupt journal. To recover, run:\n  ferry journal rebuild --config %s\nIt keeps the corrupt file beside the new one and records as uploaded every file the target already holds, so nothing is sent twice", err, cfg.file)
		}
		return nil, err
	}
	d := &daemon{cfg: cfg, log: log, j: j, targets: map[string]TargetConfig{}}
	sinks := map[string]sink.Sink{}
	d.sinks = sinks
	lim := pace.New(int64(cfg.Upload.MaxBandwidth)) // shared by every target
	for name, t := range cfg.Target {
		// A server's announced request budget slows that target's uploads
		// (the uploader is made below; responses only come once it runs).
		onRateLimit := func(rl sink.RateLimit) { d.up.RateLimited(name, rl) }
		s, err := newSink(t, cfg.Upload.MaxConcurrentUploads, lim, onRateLimit)
		if err != nil {
			j.Close()
			return nil, fmt.Errorf("target %s: %w", name, err)
		}
		sinks[name] = s
	}
	onChange := map[string]uploader.OnChange{}
	for _, w := range cfg.Watch {
		onChange[filepath.Clean(w.Path)] = uploader.OnChange(w.OnChange)
	}
	d.up, err = uploader.New(uploader.Options{
		OnChange:         onChange,
		Journal:          j,
		Sinks:            sinks,
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
		Logger: log,
		OnChunk: func(target string, size int64, took time.Duration) {
			if d.metrics != nil {
				d.metrics.observeChunk(target, size, took)
			}
		},
	})
	if err != nil {
		j.Close()
		return nil, err
	}
	d.metrics = newMetrics(d)
	for _, w := range cfg.Watch {
		wa, err := watcher.New(cfg.watcherOptions(w, d.known, log))
		if err != nil {
			j.Close()
			return nil, err
		}
		d.watchers = append(d.watchers, wa)
		d.targets[wa.Root()] = cfg.Target[w.Target]
	}
	return d, nil
}

// watcherOptions are a [[watch]]'s options for the watcher, which never
// reports ferry's own files (journal, logs, fs targets) when they sit
// inside a watched folder.
func (c *Config) watcherOptions(w WatchConfig, known func(context.Context, watcher.File) (bool, error), log *slog.Logger) watcher.Options {
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
func newSink(t TargetConfig, workers int, lim *pace.Limiter, onRateLimit func(sink.RateLimit)) (sink.Sink, error) {
	switch t.Type {
	case "fs":
		s, err := fssink.New(t.Path)
		if err != nil {
			return nil, err
		}
		return s.Pace(lim), nil
	case "s3":
		return s3sink.New(s3sink.Options{
			Endpoint:    t.Endpoint,
			Region:      t.Region,
			Bucket:      t.Bucket,
			AccessKey:   t.creds.access.Reveal(),
			SecretKey:   t.creds.secret.Reveal(),
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

func (d *daemon) targetName(root string) string {
	for _, w := range d.cfg.Watch {
		if filepath.Clean(w.Path) == root {
			return w.Target
		}
	}
	return ""
}

// record journals settled files and nudges the uploader.
func (d *daemon) record(ctx context.Context, files []watcher.File) error {
	ss := make([]journal.Settled, len(files))
	for i, f := range files {
		t := d.targets[f.Root]
		s := journal.Settled{
			Watch: f.Root, RelPath: f.RelPath, Target: d.targetName(f.Root),
			BatchID: uploader.BatchID(f.RelPath), Version: fileVersion(f), Signal: f.Signal,
		}
		key, err := uploader.ObjectKey(t.Prefix, f.RelPath)
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
		d.up.Notify()
	}
	return nil
}

// run starts the watchers and the uploader and waits until ctx ends or,
// with once, until the work that was there at start is done.
func (d *daemon) run(ctx context.Context, once bool) (onceResult, error) {
	if n, err := d.j.Recover(ctx); err != nil {
		return onceResult{}, fmt.Errorf("journal: %w", err)
	} else if n > 0 {
		d.log.Info("resuming files that were being uploaded when ferry last stopped", "files", n)
	}
	if dl, err := d.j.DeadLetters(ctx); err == nil && len(dl) > 0 {
		d.log.Warn("files failed permanently and wait for a person: see ferry dlq list", "dead_letters", len(dl))
	}
	d.abortOrphans(ctx)
	roots := make([]string, len(d.watchers))
	for i, w := range d.watchers {
		roots[i] = w.Root()
	}
	d.log.Info("ferry started", "version", versionString(), "config", d.cfg.file, "config_sha256", d.cfg.sum,
		"journal", d.cfg.Journal.Path, "schema_version", journal.SchemaVersion(), "watches", roots, "once", once)
	cp := d.auditStart(ctx) // audit log: start, configuration; checkpoints (below)

	wctx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	go cp.run(wctx) // ends with the watchers; auditStop waits for it
	errc := make(chan error, len(d.watchers)+1)
	var wg sync.WaitGroup
	for _, w := range d.watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if once {
				err = w.Once(wctx, d.record)
			} else {
				err = w.Run(wctx, d.record)
			}
			if err != nil {
				errc <- fmt.Errorf("watch %s: %w", w.Root(), err)
			}
		}()
	}
	uctx, cancelUp := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelUp()
	upDone := make(chan error, 1)
	if once {
		go func() { wg.Wait(); d.up.InputDone() }()
	}
	go func() { upDone <- d.up.Run(uctx) }()
	if !once {
		wg.Add(1)
		go func() { defer wg.Done(); d.metrics.serve(wctx, *d.cfg.Metrics.Listen, d.log) }()
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
	select {
	case <-ctx.Done():
		d.log.Info("stopping: finishing or abandoning in-flight uploads", "timeout", stopTimeout.String())
	case runErr = <-errc:
	case err := <-upDone:
		upDone <- err
	}
	cancelWatch()
	// Start nothing new; give the parts in flight a few seconds, then
	// cancel them: their files stay queued in the journal.
	d.up.Stop()
	stopTimer := time.AfterFunc(stopTimeout, cancelUp)
	defer stopTimer.Stop()
	if err := <-upDone; err != nil && runErr == nil {
		runErr = err
	}
	wg.Wait()
	d.log.Info("ferry stopped", "uploaded_files", d.up.Stats.Uploaded.Load(), "uploaded_bytes", d.up.Stats.Bytes.Load(), "failed_files", d.up.Stats.Failed.Load())
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

// abortOrphans aborts, on every target, the multipart uploads under its
// prefix that the journal does not know, once older than orphan_upload_ttl.
// A target that cannot be reached now is left for the next start.
func (d *daemon) abortOrphans(ctx context.Context) {
	known, err := d.j.UploadIDs(ctx)
	if err != nil {
		d.log.Error("cannot read the journal's uploads; orphans are left for the next start", "error", err.Error())
		return
	}
	for name, s := range d.sinks {
		n, err := uploader.AbortOrphans(ctx, s, d.cfg.Target[name].Prefix, known, time.Duration(d.cfg.Upload.OrphanUploadTTL), time.Now(), d.log.With("target", name))
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
	res := onceResult{uploaded: int(d.up.Stats.Uploaded.Load()), bytes: d.up.Stats.Bytes.Load()}
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
