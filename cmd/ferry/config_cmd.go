package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/watcher"
)

func (a *app) configCmd() *cobra.Command {
	var online bool
	check := a.configVerb(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration file, reporting every problem with FILE:LINE",
		Long: `Validate the configuration as ferry run would and print what it configures;
exit 2 with every problem found, one per line: FILE:LINE: KEY: PROBLEM.
With --online, also reach every target, check its credentials and write a
small object under _ferry/ (exit 1 when one is not usable).`,
		Example: `  ferry config check --config /etc/ferry/ferry.toml
  ferry config check --online   # $FERRY_CONFIG, else /etc/ferry/ferry.toml`,
	}, func(ctx context.Context, path string) int { return a.checkConfig(ctx, path, online) })
	check.Flags().BoolVar(&online, "online", false, "also reach every target, check the credentials and write a small object under _ferry/")
	return group("config", "Check the configuration file", check)
}

// checkConfig validates the configuration at path and describes it (with
// online, each target's probe too).
func (a *app) checkConfig(ctx context.Context, path string, online bool) int {
	cfg, code := loadConfig(path, a.getenv, a.stderr)
	if cfg == nil {
		return code
	}
	names := make([]string, 0, len(cfg.Target))
	for n := range cfg.Target {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(a.stdout, "%s: valid (sha256 %s)\n", cfg.File(), cfg.SHA256())
	fmt.Fprintf(a.stdout, "  journal  %s\n", cfg.Journal.Path)
	if cfg.Log.File == "" {
		fmt.Fprintf(a.stdout, "  log      stderr (level %s)\n", cfg.Log.Level)
	} else {
		age := "by count only"
		if cfg.Log.MaxAgeDays > 0 {
			age = fmt.Sprintf("at most %d days old", cfg.Log.MaxAgeDays)
		}
		fmt.Fprintf(a.stdout, "  log      %s (level %s; rotated at %d MB, %d kept, %s)\n", cfg.Log.File, cfg.Log.Level, cfg.Log.MaxSizeMB, cfg.Log.MaxBackups, age)
	}
	if l := *cfg.Metrics.Listen; l != "" {
		fmt.Fprintf(a.stdout, "  metrics  http://%s/metrics, /healthz, /status\n", l)
	} else {
		fmt.Fprintf(a.stdout, "  metrics  disabled\n")
	}
	for _, w := range cfg.Watch {
		path := w.Path
		// A symlinked watch folder is followed: say where it leads.
		if real, err := filepath.EvalSymlinks(w.Path); err == nil && real != filepath.Clean(w.Path) {
			path += " (resolved: " + real + ")"
		}
		fmt.Fprintf(a.stdout, "  watch    %s -> %s (settle %s, recursive %v, on_change %s)\n", path, w.Target,
			time.Duration(w.Settle), *w.Recursive, w.OnChange)
		writeWatchMode(a.stdout, w)
		if w.Metadata != "" {
			from := ""
			if w.DatasetFromTemplate() {
				from = ", from the path template"
			}
			fmt.Fprintf(a.stdout, "           datasets %q%s, complete %s, metadata %s\n", w.Dataset, from, strings.Join(w.Complete, " "), w.Metadata)
		}
	}
	for _, line := range cfg.DescribeMetadata() {
		fmt.Fprintf(a.stdout, "  %s\n", line)
	}
	failed := false
	for _, n := range names {
		t := cfg.Target[n]
		where := t.Path
		if t.Type == "s3" {
			where = config.RedactURL(t.Endpoint) + "/" + t.Bucket + "/" + t.Prefix
		}
		fmt.Fprintf(a.stdout, "  target   %s: %s %s\n", n, t.Type, where)
		if !online {
			continue
		}
		if err := daemon.ProbeTarget(ctx, t); err != nil {
			failed = true
			fmt.Fprintf(a.stdout, "           NOT usable: %v\n", err)
		} else {
			fmt.Fprintf(a.stdout, "           reachable, credentials accepted, writable (%s)\n", daemon.ProbeKey(t))
		}
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(a.stdout, "warning: %s\n", w)
	}
	if failed {
		return exitFailed
	}
	return exitOK
}

// writeWatchMode prints how a watch will learn of changes: the mode chosen
// for its folder's filesystem, and why (issue 14: network shares).
func writeWatchMode(out io.Writer, w config.WatchConfig) {
	mode, why, _, known := w.ModeOf()
	switch {
	case !known:
		fmt.Fprintf(out, "           mode %s: %s\n", w.Mode, why)
	case mode == watcher.ModePoll:
		fmt.Fprintf(out, "           mode %s: polling every %s (%s)\n", w.Mode, time.Duration(w.PollInterval), why)
	default:
		fmt.Fprintf(out, "           mode %s: events (%s)\n", w.Mode, why)
	}
}
