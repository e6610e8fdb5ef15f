package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/internal/service"
	"github.com/ferry-data/ferry/journal"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	fs, configPath := newFlags("run", stderr)
	once := fs.Bool("once", false, "upload what is in the watched folders now, then exit")
	cfg, code := parseAndLoad(fs, configPath, args, getenv, stderr, "ferry run: --config FILE is required (try: ferry run --config config.example.toml)")
	if cfg == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := new(slog.LevelVar) // [log] level, which a reload may change
	log, closeLog, code := openLog(cfg, stderr, level)
	if log == nil {
		return code
	}
	defer closeLog.Close()
	return service.Serve(ctx, log, func(ctx context.Context, log *slog.Logger) int {
		return runDaemon(ctx, cfg, log, level, *once, stdout, stderr, getenv)
	})
}

// runDaemon runs ferry until ctx ends (or, with once, the work is done)
// and returns its exit code.
func runDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger, level *slog.LevelVar, once bool, stdout, stderr io.Writer, getenv env) int {
	d, err := daemon.New(cfg, daemon.Options{Log: log, Level: level, Getenv: getenv, Version: versionString()})
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return exitFailed
	}
	defer d.Close()
	res, err := d.Run(ctx, once)
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

func reportOnce(w io.Writer, r daemon.OnceResult) int {
	fmt.Fprintf(w, "uploaded %d files (%d bytes)\n", r.Uploaded, r.Bytes)
	list := func(rows []journal.FileRow, what string) {
		if len(rows) == 0 {
			return
		}
		sort.Slice(rows, func(a, b int) bool { return rows[a].RelPath < rows[b].RelPath })
		fmt.Fprintf(w, "%d files %s:\n", len(rows), what)
		for _, f := range rows {
			msg := f.Error
			if msg == "" {
				msg = "waiting"
			}
			if f.UploadedKey != "" {
				msg += fmt.Sprintf(" (landed before: %s sha256 %s)", f.UploadedKey, f.UploadedSHA256)
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\n", f.State, filepath.Join(f.Watch, filepath.FromSlash(f.RelPath)), msg)
		}
	}
	// A file deleted or renamed before it landed is listed, but there is
	// nothing left to send for it: it does not make the run fail.
	list(r.Vanished, "deleted or renamed before they were uploaded")
	list(r.Pending, "not uploaded")
	if len(r.Pending) == 0 {
		return exitOK
	}
	return exitFailed
}
