package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/journal"
)

// reloadQuiet is how long the configuration file must be left alone before
// it is read again: an editor's save is several events (write, or write a
// copy and rename it over the original).
const reloadQuiet = 500 * time.Millisecond

// reload reads the configuration file again and applies the difference
// without a restart: watches added, removed or changed are started,
// stopped or restarted; changed targets or upload settings make a new
// uploader (the old one finishes or abandons its in-flight parts first:
// their files stay queued in the journal, which is the queue and is never
// touched by a reload). An invalid file changes nothing: the error is
// logged with FILE:LINE and counted in ferry_config_reload_failures_total,
// and the next valid edit applies.
func (d *Daemon) reload(wctx, uctx context.Context, rs *runState) {
	old := d.now()
	file := old.cfg.File()
	cfg, err := config.Load(file, d.getenv)
	if err != nil {
		d.refused(wctx, file, err)
		return
	}
	if cfg.SHA256() == old.cfg.SHA256() {
		if rulesSum(cfg) != rulesSum(old.cfg) {
			// Only a schema or vocabulary file changed: the new rules
			// apply; nothing else is restarted.
			nw := *old
			nw.cfg = cfg
			d.cur.Store(&nw)
			d.auditRules(wctx, cfg)
			return
		}
		d.log.Info("configuration unchanged; nothing to apply", "config", file, "config_sha256", cfg.SHA256())
		return
	}
	changed := config.ChangedSettings(old.cfg.Settings(), cfg.Settings())
	// What only a restart can change ([journal]: the journal stays open;
	// [log]: the log file stays open) keeps its running value.
	// [log] level applies at once.
	var later []string
	for _, k := range changed {
		if strings.HasPrefix(k, "journal.") || strings.HasPrefix(k, "log.") && k != "log.level" {
			later = append(later, k)
		}
	}
	level := cfg.Log.Level
	cfg.Journal, cfg.Log = old.cfg.Journal, old.cfg.Log
	cfg.Log.Level = level
	nw, err := d.wire(cfg, old)
	if err != nil {
		d.refused(wctx, file, err)
		return
	}
	var added, removed, restarted []string
	for root, r := range rs.watches {
		if nw.watches[root] == old.watches[root] {
			continue // same watcher, running on
		}
		r.cancel()
		<-r.done
		delete(rs.watches, root)
		if nw.watches[root] == nil {
			removed = append(removed, root)
		} else {
			restarted = append(restarted, root)
		}
	}
	newUploader := nw.up != old.up
	if newUploader {
		d.log.Info("targets or upload settings changed: the uploader restarts; files in flight stay queued and resume",
			"timeout", StopTimeout.String())
		if err := stopUploader(wctx, old.up, rs.up); err != nil {
			d.log.Error("the previous uploader ended with an error", "error", err.Error())
		}
		if wctx.Err() != nil {
			return // the daemon is stopping: nothing new is started
		}
	}
	d.cur.Store(nw)
	if d.level != nil {
		d.level.Set(logLevel(cfg.Log.Level))
	}
	if newUploader {
		rs.up = start(uctx, nw.up.Run)
	}
	for _, root := range nw.roots() {
		if rs.watches[root] == nil {
			rs.startWatch(wctx, d, nw.watches[root], false)
			if !slices.Contains(restarted, root) {
				added = append(added, root)
			}
		}
	}
	if listen := *cfg.Metrics.Listen; listen != *old.cfg.Metrics.Listen && rs.metrics != nil {
		rs.metrics.cancel()
		<-rs.metrics.done
		rs.metrics = start(wctx, func(ctx context.Context) error {
			d.metrics.serve(ctx, listen, d.log)
			return nil
		})
	}
	d.reloads.Add(1)
	slices.Sort(added)
	slices.Sort(removed)
	slices.Sort(restarted)
	d.log.Info("configuration reloaded", "config", file, "config_sha256", cfg.SHA256(), "changed_settings", changed,
		"watches_added", added, "watches_removed", removed, "watches_restarted", restarted, "uploader_restarted", newUploader)
	if _, err := d.auditConfig(wctx, cfg, journal.AuditConfigChanged); err != nil {
		d.log.Error("cannot record the configuration change in the audit log", "error", err.Error())
	}
	d.auditRules(wctx, cfg)
	if len(later) > 0 {
		d.log.Warn("some changed settings take effect only when ferry restarts; the running values are kept", "settings", later)
	}
}

// refused logs a configuration edit that was not applied, counts it and
// records it in the audit log.
func (d *Daemon) refused(ctx context.Context, file string, err error) {
	d.reloadFailures.Add(1)
	if aerr := d.auditConfigRejected(ctx, file, err); aerr != nil {
		d.log.Error("cannot record the refused configuration in the audit log", "error", aerr.Error())
	}
	var ces config.Errors
	if errors.As(err, &ces) {
		for _, e := range ces {
			d.log.Error("configuration edit refused; ferry goes on with the previous configuration", "config", file, "error", e.Error())
		}
		return
	}
	d.log.Error("configuration edit refused; ferry goes on with the previous configuration", "config", file, "error", err.Error())
}

// watchConfig signals reload when the configuration file may have changed:
// an fsnotify event naming it (its folder is watched, since editors often
// replace the file), or SIGHUP on Unix. Bursts are coalesced (reloadQuiet).
func watchConfig(ctx context.Context, path string, rules func() []string, reload chan<- struct{}, log *slog.Logger) {
	path = filepath.Clean(path)
	// The validation rules (schemas, vocabularies) the configuration
	// names are watched too: editing one applies it like a configuration
	// edit.
	files := map[string]bool{path: true}
	dirs := map[string]bool{}
	var fw *fsnotify.Watcher
	sync := func() {
		if rules == nil || fw == nil {
			return
		}
		for _, f := range rules() {
			f = filepath.Clean(f)
			files[f] = true
			if dir := filepath.Dir(f); !dirs[dir] {
				if err := fw.Add(dir); err == nil {
					dirs[dir] = true
				}
			}
		}
	}
	edits := make(chan struct{}, 1)
	go coalesce(ctx, edits, reloadQuiet, reload)
	nudge := func() {
		select {
		case edits <- struct{}{}:
		default:
		}
	}
	hup := make(chan os.Signal, 1)
	notifyReload(hup)
	defer signal.Stop(hup)

	var events <-chan fsnotify.Event
	var errs <-chan error
	fw, err := fsnotify.NewWatcher()
	if err == nil {
		defer fw.Close()
		if err = fw.Add(filepath.Dir(path)); err == nil {
			events, errs = fw.Events, fw.Errors
			dirs[filepath.Dir(path)] = true
			sync()
		} else {
			fw = nil
		}
	}
	if err != nil {
		log.Warn("edits to the configuration file are not noticed"+reloadHint, "config", path, "error", err.Error())
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if files[filepath.Clean(ev.Name)] && !ev.Has(fsnotify.Chmod) {
				nudge()
			}
			sync() // a reload may have named other rule files
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// Events may have been lost: look at the file anyway.
			log.Debug("watching the configuration file", "error", err.Error())
			nudge()
		case <-hup:
			log.Info("SIGHUP: reading the configuration again", "config", path)
			nudge()
		case <-ctx.Done():
			return
		}
	}
}

// coalesce passes a burst of signals on in as one on out, once in has been
// quiet for the quiet period. out is never blocked on: a reload already
// pending covers this one.
func coalesce(ctx context.Context, in <-chan struct{}, quiet time.Duration, out chan<- struct{}) {
	timer := time.NewTimer(quiet)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-in:
			timer.Reset(quiet)
		case <-timer.C:
			select {
			case out <- struct{}{}:
			default:
			}
		case <-ctx.Done():
			return
		}
	}
}

// rulesSum identifies the validation rules a configuration loaded (their
// files' SHA-256): a change reloads them even when the configuration file
// itself did not change.
func rulesSum(c *config.Config) string {
	var b strings.Builder
	vocabs, schemas := c.RuleFiles()
	for _, v := range vocabs {
		b.WriteString(v.Path + " " + v.SHA256 + "\n")
	}
	for _, s := range schemas {
		b.WriteString(s.Path + " " + s.SHA256 + "\n")
	}
	return b.String()
}

// ruleFiles lists the validation rule files of the configuration in force.
func (d *Daemon) ruleFiles() []string {
	var out []string
	vocabs, schemas := d.now().cfg.RuleFiles()
	for _, v := range vocabs {
		out = append(out, v.Path)
	}
	for _, s := range schemas {
		out = append(out, s.Path)
	}
	return out
}
