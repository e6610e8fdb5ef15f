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

	"github.com/spf13/cobra"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/internal/service"
	"github.com/ferry-data/ferry/journal"
)

func (a *app) runCmd() *cobra.Command {
	var once bool
	c := a.configVerb(&cobra.Command{
		Use:   "run",
		Short: "Watch the folders and upload what settles, until stopped",
		Long: `Upload every file of the watched folders once it has settled, until stopped
(Ctrl-C, SIGTERM: within 10 s; what is in flight stays queued). A saved edit
of the configuration (or SIGHUP) is applied without a restart. With --once,
upload what is there now, then exit 0 if all landed, 1 if not (listed).`,
		Example: `  ferry run --config config.example.toml   # the built-in example: demo/incoming -> demo/archive
  ferry run --once --config /etc/ferry/ferry.toml
  FERRY_CONFIG=/etc/ferry/ferry.toml ferry run`,
	}, func(ctx context.Context, path string) int { return a.serve(ctx, path, once) })
	c.Flags().BoolVar(&once, "once", false, "upload what is in the watched folders now, then exit")
	return c
}

// serve runs ferry with the configuration at path until ctx ends or a
// signal stops it (with once: until the work is done).
func (a *app) serve(ctx context.Context, path string, once bool) int {
	if !service.Interactive() {
		return a.serveService(ctx, path, once)
	}
	cfg, code := loadConfig(path, a.getenv, a.stderr)
	if cfg == nil {
		return code
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := new(slog.LevelVar) // [log] level, which a reload may change
	log, closeLog, code := openLog(cfg, a.stderr, level)
	if log == nil {
		return code
	}
	defer closeLog.Close()
	return service.Serve(ctx, log, func(ctx context.Context, log *slog.Logger) int {
		return runDaemon(ctx, cfg, log, level, once, a.stdout, a.stderr, a.getenv)
	})
}

// runDaemon runs ferry until ctx ends (or, with once, the work is done)
// and returns its exit code.
func runDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger, level *slog.LevelVar, once bool, stdout, stderr io.Writer, getenv env) int {
	for _, w := range cfg.Warnings() {
		log.Warn("configuration", "warning", w.Error())
	}
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
	// A watch that could not be looked at whole: its files there were not
	// even seen.
	for _, ws := range r.Watches {
		if !ws.Up {
			fmt.Fprintf(w, "watch %s was not looked at: %s\n", ws.Path, ws.Reason)
			continue
		}
		fmt.Fprintf(w, "watch %s: %d folders could not be read, their files were not taken:\n", ws.Path, ws.Skipped["unreadable"])
		for _, u := range ws.Unreadable {
			fmt.Fprintf(w, "  unreadable\t%s\t%s\n", filepath.Join(ws.Path, filepath.FromSlash(u.Path)), u.Error)
		}
	}
	if len(r.Pending) == 0 && len(r.Watches) == 0 {
		return exitOK
	}
	return exitFailed
}

// serveService runs ferry under the service manager: the configuration
// is loaded inside the service's body, so that an invalid one is reported
// to the service manager's log (the Windows Event Log; the systemd
// journal through stderr) and stops the service without a restart loop
// (service.AfterBodyEnd), instead of ending the process before it has
// talked to the service manager.
func (a *app) serveService(ctx context.Context, path string, once bool) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	boot := slog.New(slog.NewJSONHandler(a.stderr, nil))
	return service.Serve(ctx, boot, func(ctx context.Context, events *slog.Logger) int {
		cfg, err := config.Load(path, a.getenv)
		if err != nil {
			// Every problem, each at its FILE:LINE; never a secret's value.
			events.Error("invalid configuration", "config", path, "error", err.Error())
			return exitUsage
		}
		level := new(slog.LevelVar)
		log, closeLog, code := openLog(cfg, a.stderr, level)
		if log == nil {
			events.Error("cannot open the log file", "config", path, "file", cfg.Log.File)
			return code
		}
		defer closeLog.Close()
		return runDaemon(ctx, cfg, service.WithEvents(log, events), level, once, a.stdout, a.stderr, a.getenv)
	})
}
