package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/journal"
)

// auditConfig records a configuration in the audit log: kind is
// journal.AuditConfigLoaded (at start) or journal.AuditConfigChanged (a
// running daemon applied it). The record holds the file, its SHA-256, its
// settings (Config.Settings: no secret values) and the names of those that
// changed since the last configuration the log recorded (all of them when
// there was none), which it returns. Calls must not overlap (the daemon
// makes them from one goroutine): each diffs against the one before.
func auditConfig(ctx context.Context, j *journal.Journal, c *config.Config, kind string) ([]string, error) {
	last, ok, err := j.LastConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	settings := c.Settings()
	changed := config.ChangedSettings(last.Settings, settings)
	if !ok {
		changed = config.ChangedSettings(nil, settings)
	}
	err = j.Audit(ctx, journal.AuditRecord{Kind: kind, FerryVersion: versionString(), Subject: c.File(), SHA256: c.SHA256(),
		Changed: changed, Settings: settings})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return changed, nil
}

// auditConfigRejected records that the configuration file at path was
// refused (cause: its errors, which name keys and lines, never values of
// secrets); the configuration in force stays.
func auditConfigRejected(ctx context.Context, j *journal.Journal, path string, cause error) error {
	r := journal.AuditRecord{Kind: journal.AuditConfigRejected, FerryVersion: versionString(), Subject: path, Detail: cause.Error()}
	if b, err := os.ReadFile(path); err == nil {
		r.SHA256 = config.Sum(b)
	}
	return j.Audit(ctx, r)
}
