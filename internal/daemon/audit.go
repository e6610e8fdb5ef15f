package daemon

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
)

// auditConfig records a configuration in the audit log: kind is
// journal.AuditConfigLoaded (at start) or journal.AuditConfigChanged (a
// running daemon applied it). The record holds the file, its SHA-256, its
// settings (Config.Settings: no secret values) and the names of those that
// changed since the last configuration the log recorded (all of them when
// there was none), which it returns. Calls must not overlap (the daemon
// makes them from one goroutine): each diffs against the one before.
func (d *Daemon) auditConfig(ctx context.Context, c *config.Config, kind string) ([]string, error) {
	last, ok, err := d.j.LastConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	settings := c.Settings()
	changed := config.ChangedSettings(last.Settings, settings)
	if !ok {
		changed = config.ChangedSettings(nil, settings)
	}
	err = d.j.Audit(ctx, journal.AuditRecord{Kind: kind, FerryVersion: d.version, Subject: c.File(), SHA256: c.SHA256(),
		Changed: changed, Settings: settings})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return changed, nil
}

// auditConfigRejected records that the configuration file at path was
// refused (cause: its errors, which name keys and lines, never values of
// secrets); the configuration in force stays.
func (d *Daemon) auditConfigRejected(ctx context.Context, path string, cause error) error {
	r := journal.AuditRecord{Kind: journal.AuditConfigRejected, FerryVersion: d.version, Subject: path, Detail: config.RedactText(cause.Error())}
	if b, err := os.ReadFile(path); err == nil {
		r.SHA256 = config.Sum(b)
	}
	return d.j.Audit(ctx, r)
}

// auditStart records the daemon's start and its configuration in the
// audit log and returns the checkpointer for run to start.
func (d *Daemon) auditStart(ctx context.Context) *checkpointer {
	w := d.now()
	err := d.j.Audit(ctx, journal.AuditRecord{Kind: journal.AuditStart, FerryVersion: d.version, Subject: CheckpointHost(),
		Detail: "config=" + w.cfg.File()})
	if err != nil {
		d.log.Error("cannot record the start in the audit log", "error", err.Error())
	}
	if changed, err := d.auditConfig(ctx, w.cfg, journal.AuditConfigLoaded); err != nil {
		d.log.Error("cannot record the configuration in the audit log", "error", err.Error())
	} else if len(changed) > 0 {
		d.log.Info("configuration recorded in the audit log", "config_sha256", w.cfg.SHA256(), "changed_settings", changed)
	}
	d.auditRules(ctx, w.cfg)
	c := newCheckpointer(w.cfg, d.j, w.sinks, d.version, d.log)
	c.now = d.clock
	// The targets of the configuration in force at each checkpoint.
	c.targets = func() (map[string]sink.Sink, map[string]string) {
		w := d.now()
		return w.sinks, targetPrefixes(w.cfg)
	}
	return c
}

// auditStop records the daemon's stop in the audit log, then takes the
// final checkpoint (which anchors that record too), uploaded until
// deadline at most.
func (d *Daemon) auditStop(cp *checkpointer, deadline time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), finalCheckpointTimeout)
	defer cancel()
	err := d.j.Audit(ctx, journal.AuditRecord{Kind: journal.AuditStop, FerryVersion: d.version, Subject: CheckpointHost(),
		Detail: fmt.Sprintf("uploaded_files=%d failed_files=%d", d.stats.Uploaded.Load(), d.stats.Failed.Load())})
	if err != nil {
		d.log.Error("cannot record the stop in the audit log", "error", err.Error())
	}
	cp.final(deadline)
}

// auditRules records changed validation rules (recordRules) and logs it.
func (d *Daemon) auditRules(ctx context.Context, cfg *config.Config) {
	changed, err := d.recordRules(ctx, cfg)
	switch {
	case err != nil:
		d.log.Error("cannot record the validation rules in the audit log", "error", err.Error())
	case len(changed) > 0:
		d.log.Info("validation rules recorded in the audit log; datasets not closed are validated again", "rules", changed)
		if d.datasets != nil {
			d.datasets.Nudge()
		}
	}
}
