package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/uploader/sink"
)

// cmdConfig handles "ferry config check".
func cmdConfig(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: ferry config check --config FILE [--online]")
		return exitUsage
	}
	fset := flag.NewFlagSet("config check", flag.ContinueOnError)
	fset.SetOutput(stderr)
	configPath := fset.String("config", "", "configuration file (TOML)")
	online := fset.Bool("online", false, "also reach every target, check the credentials and write a small object under _ferry/")
	if err := fset.Parse(args[1:]); err != nil || fset.NArg() > 0 || *configPath == "" {
		fmt.Fprintln(stderr, "usage: ferry config check --config FILE [--online]")
		return exitUsage
	}
	cfg, err := config.Load(*configPath, getenv)
	if err != nil {
		return reportConfigError(stderr, err)
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
		if err := probeTarget(ctx, cfg, t); err != nil {
			failed = true
			fmt.Fprintf(stdout, "           NOT usable: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "           reachable, credentials accepted, writable (%s)\n", probeKey(t))
		}
	}
	if failed {
		return exitFailed
	}
	return exitOK
}

func probeKey(t config.TargetConfig) string { return t.Prefix + "_ferry/config-check" }

// probeTarget writes (and reads back) a small object under the target's
// prefix: the endpoint answers, the credentials work, ferry may write.
func probeTarget(ctx context.Context, cfg *config.Config, t config.TargetConfig) error {
	s, err := newSink(t, 1, nil, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	host, _ := os.Hostname()
	body := []byte(fmt.Sprintf("ferry config check from %s at %s\n", host, time.Now().UTC().Format(time.RFC3339)))
	sum := sink.Digest(sha256.Sum256(body))
	if err := s.Put(ctx, probeKey(t), body, sum, false); err != nil {
		return err
	}
	info, err := s.Stat(ctx, probeKey(t))
	if err != nil {
		return err
	}
	if info.Size != int64(len(body)) || info.SHA256 != sum.Hex() {
		return errors.New("the object written does not read back the same")
	}
	return nil
}
