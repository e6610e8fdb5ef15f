package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/pace"
	"github.com/ferry-data/ferry/uploader"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/fssink"
	"github.com/ferry-data/ferry/uploader/sink/gate"
	"github.com/ferry-data/ferry/uploader/sink/retry"
	"github.com/ferry-data/ferry/uploader/sink/s3sink"
	"github.com/ferry-data/ferry/uploader/target"
	"github.com/ferry-data/ferry/watcher"
)

// wiring is what one configuration made: read it whole through d.now(),
// never field by field across a reload.
type wiring struct {
	cfg     *config.Config
	up      *uploader.Uploader
	targets map[string]*target.Target // by name
	// sinks are the targets' sinks, each with the decorators every request
	// passes (uploader/target): the checkpointer and the orphan sweep use
	// these, as the uploader does.
	sinks map[string]sink.Sink
	// watches are the watchers by watch root, made but not necessarily
	// running; routes gives each root its target.
	watches map[string]*watcher.Watcher
	routes  map[string]route
}

// route is where the files of one watch root go.
type route struct {
	target string
	t      config.TargetConfig
	wc     config.WatchConfig
}

// roots are the watch roots, sorted.
func (w *wiring) roots() []string { return slices.Sorted(maps.Keys(w.watches)) }

// wire makes the sinks, the uploader and the watchers of cfg, none of them
// started. With old, it reuses what cfg does not change: the uploader
// (with its sinks and breakers) when neither the targets nor the upload
// settings changed, and each watcher whose settings are the same.
func (d *Daemon) wire(cfg *config.Config, old *wiring) (*wiring, error) {
	w := &wiring{cfg: cfg, watches: map[string]*watcher.Watcher{}, routes: map[string]route{}}
	if old != nil && !uploadChanged(old.cfg, cfg) {
		w.up, w.targets, w.sinks = old.up, old.targets, old.sinks
	} else {
		var err error
		if w.targets, err = NewTargets(cfg, d.observer(), d.log, d.steady); err != nil {
			return nil, err
		}
		w.sinks = map[string]sink.Sink{}
		for name, t := range w.targets {
			w.sinks[name] = t.Sink()
		}
		onChange := map[string]uploader.OnChange{}
		for _, wc := range cfg.Watch {
			onChange[filepath.Clean(wc.Path)] = uploader.OnChange(wc.OnChange)
		}
		up, err := uploader.New(uploader.Options{
			OnChange:         onChange,
			Journal:          d.j,
			Targets:          w.targets,
			Workers:          cfg.Upload.MaxConcurrentUploads,
			ChunkSize:        int64(cfg.Upload.MaxChunkSize),
			MaxInflightBytes: int64(cfg.Upload.MaxInflightBytes),
			Logger:           d.log,
			Stats:            d.stats,
			Now:              d.steady,
		})
		if err != nil {
			return nil, err
		}
		w.up = up
	}
	for _, wc := range cfg.Watch {
		opts := watcherOptions(cfg, wc, d.known, d.log)
		opts.KnownBatch = d.knownBatch // walks ask in batches, yielding between them
		opts.Now = d.clock
		root := filepath.Clean(wc.Path)
		w.routes[root] = route{target: wc.Target, t: cfg.Target[wc.Target], wc: wc}
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
	ignore := []string{j, j + "-wal", j + "-shm", j + "-journal", j + ".rebuild*", j + ".corrupt-*", j + ".old-*", j + ".lock", j + ".new*", j + ".rescued*"}
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
		MaxOpenWait:    time.Duration(w.MaxOpenWait),
		Ignore:         ignore,
		Known:          known,
		Logger:         log,
		Mode:           watcher.Mode(w.Mode),
		PollInterval:   time.Duration(w.PollInterval),
	}
}

// NewTargets makes every target of cfg: its own sink (an S3 target's
// connection pool sized to the workers: each keeps at most one request in
// flight, plus a spare), wrapped in the decorators every request passes
// (uploader/target: retry, the gate, the observer, one bandwidth limit
// shared by all). obs (nil: none) is told of every request; now (nil:
// time.Now) is their clock.
func NewTargets(cfg *config.Config, obs target.Observer, log *slog.Logger, now func() time.Time) (map[string]*target.Target, error) {
	lim := pace.New(int64(cfg.Upload.MaxBandwidth))
	out := map[string]*target.Target{}
	for name, tc := range cfg.Target {
		t, err := newTarget(name, tc, cfg.Upload, lim, obs, log, now)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

func newTarget(name string, tc config.TargetConfig, up config.UploadConfig, lim *pace.Limiter, obs target.Observer, log *slog.Logger, now func() time.Time) (*target.Target, error) {
	var t *target.Target
	var raw sink.Sink
	switch tc.Type {
	case "fs":
		s, err := fssink.NewMode(tc.Path, tc.Mode())
		if err != nil {
			return nil, err
		}
		raw = s
	case "s3":
		access, secret := tc.Credentials()
		s, err := s3sink.New(s3sink.Options{
			Endpoint:  tc.Endpoint,
			Region:    tc.Region,
			Bucket:    tc.Bucket,
			AccessKey: access.Reveal(),
			SecretKey: secret.Reveal(),
			MaxConns:  max(up.MaxConcurrentUploads, 1) + 2,
			// A server's announced request budget paces the target's
			// requests, whoever makes them.
			OnRateLimit: func(rl sink.RateLimit) { t.Gate().RateLimited(rl) },
		})
		if err != nil {
			return nil, err
		}
		raw = s
	default:
		return nil, fmt.Errorf("unknown target type %q", tc.Type)
	}
	t = target.New(name, raw, target.Options{
		Retry: retry.Policy{
			Attempts:     up.Retry.Attempts,
			InitialDelay: time.Duration(up.Retry.InitialDelay),
			MaxDelay:     time.Duration(up.Retry.MaxDelay),
		},
		Breaker: gate.Policy{
			FailureThreshold: up.Breaker.FailureThreshold,
			OpenTimeout:      time.Duration(up.Breaker.OpenTimeout),
			HalfOpenProbes:   up.Breaker.HalfOpenProbes,
		},
		Limiter:  lim,
		Observer: obs,
		Log:      log,
		Now:      now,
	})
	return t, nil
}

// observer is the daemon's target.Observer: the running totals and the
// chunk durations of the metrics.
func (d *Daemon) observer() target.Observer { return daemonObserver{d} }

type daemonObserver struct{ d *Daemon }

func (o daemonObserver) Attempt(name, op string, bytes int64, chunk bool, took time.Duration, err error) {
	if err == nil && chunk && bytes > 0 && o.d.metrics != nil {
		o.d.metrics.observeChunk(name, bytes, took)
	}
}

func (o daemonObserver) RequestRetried(name, op string) { o.d.stats.RequestRetried(name, op) }

// ProbeKey is the object ProbeTarget writes on a target.
func ProbeKey(t config.TargetConfig) string { return t.Prefix + "_ferry/config-check" }

// ProbeTarget writes (and reads back) a small object under the target's
// prefix: the endpoint answers, the credentials work, ferry may write.
// The probe passes the decorators every request does (a server's pause,
// retries of a transient failure), with the default policies.
func ProbeTarget(ctx context.Context, t config.TargetConfig) error {
	tg, err := newTarget("probe", t, config.UploadConfig{}, nil, nil, nil, nil)
	if err != nil {
		return err
	}
	s := tg.Sink()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	host, _ := os.Hostname()
	body := []byte(fmt.Sprintf("ferry config check from %s at %s\n", host, time.Now().UTC().Format(time.RFC3339)))
	sum := sink.Digest(sha256.Sum256(body))
	if err := s.Put(ctx, ProbeKey(t), body, sum, false); err != nil {
		return err
	}
	info, err := s.Stat(ctx, ProbeKey(t))
	if err != nil {
		return err
	}
	if info.Size != int64(len(body)) || info.SHA256 != sum.Hex() {
		return errors.New("the object written does not read back the same")
	}
	return nil
}
