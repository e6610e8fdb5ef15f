// Package service runs ferry under the operating system's service manager
// (systemd, the Windows service control manager) through
// kardianos/service, and registers it there: the command line, ferry's own
// systemd unit (restart policy, hardening, the folders it may write), and
// on Windows delayed start and recovery. Serve runs the daemon's body the
// same way in a terminal and under a manager: a stop cancels its context.
// Windows-only code sits behind build tags (service_windows.go).
package service

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	kardianos "github.com/kardianos/service"

	"github.com/ferry-data/ferry/internal/config"
)

// The service as the operating system's service manager knows it.
const (
	Name        = "ferry"
	DisplayName = "ferry"
	Description = "ferry: moves settled instrument files, verified, to research storage"
)

// Exit codes of ferry's process. The unit ferry installs relies on
// ExitUsage (no restart after a configuration error); Serve returns
// ExitFailed when the service manager cannot run ferry.
const (
	ExitOK     = 0
	ExitFailed = 1 // the run ended with files not uploaded, or a runtime error
	ExitUsage  = 2 // bad command line or configuration: nothing was started
)

// AfterEnd is what the service does when ferry's body ended on its own
// (nobody asked it to stop), decided by AfterBodyEnd.
type AfterEnd int

const (
	// EndForRecovery: the process ends as a failure, so that the service
	// manager's recovery (Restart=on-failure, Windows' recovery actions)
	// starts it again: a runtime error may pass.
	EndForRecovery AfterEnd = iota
	// EndStopped: the configuration is invalid; a restart would fail the
	// same way every 5 s. The service stops as if asked to (Windows: a
	// stop requested from the service control manager, reported STOPPED
	// with exit code 0; systemd: exit status ExitUsage, which the unit's
	// RestartPreventExitStatus names) and the reason is in the Event Log
	// or the journal.
	EndStopped
)

// AfterBodyEnd decides what follows a body that ended on its own with code.
func AfterBodyEnd(code int) AfterEnd {
	if code == ExitUsage {
		return EndStopped
	}
	return EndForRecovery
}

// StopWait bounds how long the service manager's Stop waits for the
// daemon to finish: in-flight parts are abandoned before that
// (daemon.StopTimeout) and their files stay queued in the journal.
const StopWait = 10 * time.Second

// Service is the service manager's handle on ferry; Registration is how
// ferry is registered with it (both kardianos/service's).
type (
	Service      = kardianos.Service
	Registration = kardianos.Config
)

// ErrNotInstalled is what a Service's Status returns when ferry is not
// installed as a service.
var ErrNotInstalled = kardianos.ErrNotInstalled

// InstallConfig is the service registration for cfg: this binary, run
// with the absolute config path, plus each platform's options (Linux: the
// systemd unit; Windows: delayed start and recovery).
func InstallConfig(cfg *config.Config, exe, user string) (*Registration, error) {
	args := []string{"run", "--config", cfg.File()}
	opts, err := serviceOptions(cfg, append([]string{exe}, args...), user)
	if err != nil {
		return nil, err
	}
	return &kardianos.Config{
		Name:        Name,
		DisplayName: DisplayName,
		Description: Description,
		Executable:  exe,
		Arguments:   args,
		UserName:    user,
		Option:      opts,
	}, nil
}

// New is the service manager's handle on "ferry", for commands that
// manage the service rather than run it: registered as c says (from
// InstallConfig), or, with nil, only by its name.
func New(c *Registration) (Service, error) {
	if c == nil {
		c = &kardianos.Config{}
	}
	c.Name = Name
	if c.DisplayName == "" {
		c.DisplayName = DisplayName
	}
	return kardianos.New(&program{}, c)
}

// WritablePaths are the folders the service writes to, computed from the
// configuration: the journal's folder, the log file's folder, the
// archive_dir of an archive_after outside the journal's folder, every fs
// target, and the watched folders whose source files it deletes or moves
// (after_upload) with their move:DIR folders. Everything else (the other
// watched folders included) it only reads.
func WritablePaths(cfg *config.Config) []string {
	ps := []string{filepath.Dir(cfg.Journal.Path)}
	if cfg.Log.File != "" {
		ps = append(ps, filepath.Dir(cfg.Log.File))
	}
	for _, t := range cfg.Target {
		if t.Type == "fs" {
			ps = append(ps, t.Path)
		}
	}
	// The daemon writes archives ([journal] archive_after) to archive_dir:
	// beside the journal by default, elsewhere if the configuration says.
	if a := cfg.Journal.ArchiveDir; cfg.Journal.ArchiveAfter != 0 && a != "" && !within(a, ps[0]) {
		ps = append(ps, a)
	}
	for _, w := range cfg.Watch {
		if w.Deletes() {
			ps = append(ps, w.Path)
		}
		if d := w.MoveDir(); d != "" {
			ps = append(ps, d)
		}
	}
	for i, p := range ps {
		ps[i] = filepath.Clean(p)
	}
	slices.Sort(ps)
	return slices.Compact(ps)
}

// systemdUnit renders the unit ferry installs on Linux. exec is the command
// line (absolute binary, then its arguments); user is empty for root.
// kardianos/service's own unit hard-codes RestartSec=120 and none of the
// hardening, so ferry renders its own; it holds no template actions, so
// kardianos writes it as it is.
func systemdUnit(exec []string, user string, writable []string) (string, error) {
	for _, s := range append(append([]string{user}, exec...), writable...) {
		if strings.ContainsAny(s, "\n\r") || strings.Contains(s, "{{") {
			return "", fmt.Errorf("%q cannot be written into a systemd unit (a line break or \"{{\")", s)
		}
	}
	if user != "" && strings.ContainsAny(user, " \t\"'\\%$") {
		return "", fmt.Errorf("--user %q is not a valid account name", user)
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# Installed by \"ferry install\"; remove it with \"ferry uninstall\".")
	w("[Unit]")
	w("Description=%s", Description)
	w("After=network-online.target local-fs.target remote-fs.target")
	w("Wants=network-online.target")
	w("")
	w("[Service]")
	w("Type=simple")
	quoted := make([]string, len(exec))
	for i, a := range exec {
		quoted[i] = systemdQuote(a, true)
	}
	w("ExecStart=%s", strings.Join(quoted, " "))
	w("# systemctl reload: read the configuration again (edits are also noticed on save).")
	w("ExecReload=/bin/kill -HUP $MAINPID")
	if user != "" {
		w("User=%s", user)
	}
	w("# Credentials named by access_key_env / secret_key_env (mode 0600).")
	w("EnvironmentFile=-/etc/ferry/ferry.env")
	w("# ferry stops within 10 s: in-flight parts are abandoned and stay queued.")
	w("TimeoutStopSec=20")
	w("KillSignal=SIGTERM")
	w("Restart=on-failure")
	w("RestartSec=5")
	w("# Exit code %d is a configuration error: restarting will not help.", ExitUsage)
	w("RestartPreventExitStatus=%d", ExitUsage)
	w("NoNewPrivileges=yes")
	w("PrivateTmp=yes")
	w("# Read-only everywhere (watched folders are only read) but for the")
	w("# journal, the log and the fs targets named in the configuration.")
	w("ProtectSystem=strict")
	w("ProtectHome=read-only")
	quoted = quoted[:0]
	for _, p := range writable {
		quoted = append(quoted, systemdQuote(p, false))
	}
	w("ReadWritePaths=%s", strings.Join(quoted, " "))
	w("")
	w("[Install]")
	w("WantedBy=multi-user.target")
	return b.String(), nil
}

// systemdQuote writes s as one word of a unit setting: specifiers (%) are
// escaped, and in a command line so is variable expansion ($).
func systemdQuote(s string, command bool) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if command {
		s = strings.ReplaceAll(s, "$", "$$")
	}
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Serve runs body: directly when ferry was started from a terminal, a
// container or a plain process supervisor, and under the service manager's
// protocol (Start, Stop) when the service manager started it. Either way,
// a stop (Ctrl-C, SIGTERM, the service manager's Stop) cancels body's ctx,
// and body's exit code is ferry's.
func Serve(ctx context.Context, log *slog.Logger, body func(ctx context.Context, log *slog.Logger) int) int {
	if kardianos.Interactive() {
		return body(ctx, log)
	}
	return serveUnderManager(ctx, log, body)
}

// serveUnderManager runs body as the service manager's kardianos. A body that
// ends on its own (a fatal error) ends the service with its exit code, so
// that systemd's Restart=on-failure and Windows' recovery actions restart it.
// Interactive says whether ferry runs outside a service manager (a
// terminal, a container, a plain supervisor).
func Interactive() bool { return kardianos.Interactive() }

// WithEvents is inner's logger, teeing its errors to the service
// manager's event log as outer (the logger Serve gave body) does, when it
// does: body may open the log file of a configuration it loaded itself.
func WithEvents(inner, outer *slog.Logger) *slog.Logger {
	if h, ok := outer.Handler().(*eventHandler); ok {
		return slog.New(&eventHandler{Handler: inner.Handler(), events: h.events})
	}
	return inner
}

func serveUnderManager(ctx context.Context, log *slog.Logger, body func(ctx context.Context, log *slog.Logger) int) int {
	p := &program{parent: ctx, body: body, wait: StopWait, log: log}
	s, err := kardianos.New(p, &kardianos.Config{
		Name: Name,
		// Where the service manager's Run waits for a stop (all but
		// Windows): SIGTERM, already turned into ctx by the caller, or body
		// ending by itself.
		Option: kardianos.KeyValue{"RunWait": func() {
			select {
			case <-ctx.Done():
			case <-p.done:
			}
		}},
	})
	if err != nil {
		log.Error("cannot run under the service manager", "error", err.Error())
		return ExitFailed
	}
	if eventLogWanted {
		if events, err := s.Logger(nil); err != nil {
			log.Warn("cannot write to the service manager's event log", "error", err.Error())
		} else {
			p.events = events
			p.log = slog.New(&eventHandler{Handler: log.Handler(), events: events})
		}
	}
	p.onFatal = exitAfterFatal
	p.log.Info("running under the service manager", "service_manager", kardianos.Platform())
	if err := s.Run(); err != nil {
		p.log.Error("service manager", "error", err.Error())
		return ExitFailed
	}
	return p.exitCode()
}

// program is ferry as a kardianos/service Interface: Start runs body in a
// goroutine under a context that Stop cancels; Stop then waits at most wait
// for body to return.
type program struct {
	parent  context.Context
	body    func(ctx context.Context, log *slog.Logger) int
	wait    time.Duration
	log     *slog.Logger
	events  kardianos.Logger // the Windows Event Log when run as a Windows service, else nil
	onFatal func(code int)   // called when body ends on its own, not asked to stop

	cancel   context.CancelFunc
	done     chan struct{} // closed when body has returned
	code     int
	mu       sync.Mutex
	stopping bool
	finished bool
}

// Start begins body and returns at once.
func (p *program) Start(kardianos.Service) error {
	ctx, cancel := context.WithCancel(p.parent)
	p.cancel = cancel
	p.done = make(chan struct{})
	if p.events != nil {
		p.events.Info("ferry started")
	}
	go func() {
		code := p.body(ctx, p.log)
		p.mu.Lock()
		p.code, p.finished = code, true
		stopping := p.stopping
		p.mu.Unlock()
		close(p.done)
		if stopping || p.parent.Err() != nil {
			return
		}
		// Nobody asked it to stop: a fatal error (or, with --once, the end).
		// Also in the Event Log (p.log tees errors there).
		switch {
		case AfterBodyEnd(code) == EndStopped:
			p.log.Error("ferry cannot start with this configuration and stops without a restart: fix the configuration (ferry config check), then start the service", "exit_code", code)
		case code != ExitOK:
			p.log.Error("ferry stopped on an error; the service manager restarts it", "exit_code", code)
		}
		if p.onFatal != nil {
			p.onFatal(code)
		}
	}()
	return nil
}

// Stop cancels body's context and waits at most p.wait for it to return.
// A body that takes longer is left behind (its files stay queued in the
// journal); Stop still returns nil, so that a deliberate stop never looks
// like a failure that recovery actions would answer with a restart.
func (p *program) Stop(kardianos.Service) error {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	p.cancel()
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case <-p.done:
		if p.events != nil {
			p.events.Info("ferry stopped")
		}
	case <-t.C:
		p.log.Error("ferry did not stop in time; in-flight files stay queued in the journal", "waited", p.wait.String())
	}
	return nil
}

// exitCode is body's exit code, or ExitFailed when it has not returned.
func (p *program) exitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.finished {
		return ExitFailed
	}
	return p.code
}

// eventHandler is a slog.Handler that also writes errors to the service
// manager's log (the Windows Event Log), where a service's administrators
// look first: the message, then key=value pairs.
type eventHandler struct {
	slog.Handler
	events kardianos.Logger
	prefix string // attributes from WithAttrs, already formatted
	group  string // "a.b." from WithGroup
}

func (h *eventHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelError {
		var b strings.Builder
		b.WriteString(r.Message)
		b.WriteString(h.prefix)
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s%s=%v", h.group, a.Key, a.Value)
			return true
		})
		_ = h.events.Error(b.String())
	}
	return err
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range as {
		fmt.Fprintf(&b, " %s%s=%v", h.group, a.Key, a.Value)
	}
	return &eventHandler{Handler: h.Handler.WithAttrs(as), events: h.events, prefix: b.String(), group: h.group}
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	return &eventHandler{Handler: h.Handler.WithGroup(name), events: h.events, prefix: h.prefix, group: h.group + name + "."}
}

// within reports whether path is dir or inside it (cleaned, as written).
func within(path, dir string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
