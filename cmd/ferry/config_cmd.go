package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/ferry-data/ferry/internal/daemon"
)

// cmdConfig handles "ferry config check".
func cmdConfig(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	const usage = "usage: ferry config check --config FILE [--online]"
	if len(args) == 0 || args[0] != "check" {
		return usageError(stderr, usage)
	}
	fset, configPath := newFlags("config check", stderr)
	online := fset.Bool("online", false, "also reach every target, check the credentials and write a small object under _ferry/")
	if err := fset.Parse(args[1:]); err != nil || fset.NArg() > 0 || *configPath == "" {
		return usageError(stderr, usage)
	}
	cfg, code := loadConfig(*configPath, getenv, stderr)
	if cfg == nil {
		return code
	}
	names := make([]string, 0, len(cfg.Target))
	for n := range cfg.Target {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "%s: valid (sha256 %s)\n", cfg.File(), cfg.SHA256())
	fmt.Fprintf(stdout, "  journal  %s\n", cfg.Journal.Path)
	if cfg.Log.File == "" {
		fmt.Fprintf(stdout, "  log      stderr (level %s)\n", cfg.Log.Level)
	} else {
		age := "by count only"
		if cfg.Log.MaxAgeDays > 0 {
			age = fmt.Sprintf("at most %d days old", cfg.Log.MaxAgeDays)
		}
		fmt.Fprintf(stdout, "  log      %s (level %s; rotated at %d MB, %d kept, %s)\n", cfg.Log.File, cfg.Log.Level, cfg.Log.MaxSizeMB, cfg.Log.MaxBackups, age)
	}
	if l := *cfg.Metrics.Listen; l != "" {
		fmt.Fprintf(stdout, "  metrics  http://%s/metrics, /healthz, /status\n", l)
	} else {
		fmt.Fprintf(stdout, "  metrics  disabled\n")
	}
	for _, w := range cfg.Watch {
		fmt.Fprintf(stdout, "  watch    %s -> %s (settle %s, recursive %v, on_change %s)\n", w.Path, w.Target,
			time.Duration(w.Settle), *w.Recursive, w.OnChange)
	}
	failed := false
	for _, n := range names {
		t := cfg.Target[n]
		where := t.Path
		if t.Type == "s3" {
			where = t.Endpoint + "/" + t.Bucket + "/" + t.Prefix
		}
		fmt.Fprintf(stdout, "  target   %s: %s %s\n", n, t.Type, where)
		if !*online {
			continue
		}
		if err := daemon.ProbeTarget(ctx, t); err != nil {
			failed = true
			fmt.Fprintf(stdout, "           NOT usable: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "           reachable, credentials accepted, writable (%s)\n", daemon.ProbeKey(t))
		}
	}
	if failed {
		return exitFailed
	}
	return exitOK
}
