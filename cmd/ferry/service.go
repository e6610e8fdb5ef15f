package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kardianos/service"

	"github.com/ferry-data/ferry/internal/config"
)

// The service as the operating system's service manager knows it.
const (
	serviceName        = "ferry"
	serviceDisplayName = "ferry"
	serviceDescription = "ferry: moves settled instrument files, verified, to research storage"
)

// serviceStopWait bounds how long the service manager's Stop waits for the
// daemon to finish: in-flight parts are abandoned before that (stopTimeout)
// and their files stay queued in the journal.
const serviceStopWait = 10 * time.Second

// cmdService handles install, uninstall, start, stop and restart.
func cmdService(verb string, args []string, stdout, stderr io.Writer, getenv env) int {
	if verb == "install" {
		return cmdInstall(args, stdout, stderr, getenv)
	}
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ferry %s: takes no arguments (got %q)\n", verb, fs.Args())
		return exitUsage
	}
	s, err := newService(&service.Config{})
	if err != nil {
		fmt.Fprintf(stderr, "ferry %s: %v\n", verb, err)
		return exitFailed
	}
	if err := checkServicePlatform(); err != nil {
		fmt.Fprintf(stderr, "ferry %s: %v\n", verb, err)
		return exitFailed
	}
	if err := checkPrivileged(); err != nil {
		fmt.Fprintf(stderr, "ferry %s: %v (try: %s)\n", verb, err, elevatedCommand("ferry "+verb))
		return exitFailed
	}
	if _, err := s.Status(); errors.Is(err, service.ErrNotInstalled) {
		fmt.Fprintf(stderr, "ferry %s: ferry is not installed as a service (install it with: ferry install --config FILE)\n", verb)
		return exitFailed
	}
	if why := packagedService(); why != "" && verb == "uninstall" {
		fmt.Fprintf(stderr, "ferry uninstall: %s\n", why)
		return exitFailed
	}
	var do func() error
	switch verb {
	case "uninstall":
		do = func() error {
			_ = s.Stop() // a running service is stopped first; one already stopped is fine
			return s.Uninstall()
		}
	case "start":
		do = s.Start
	case "stop":
		do = s.Stop
	case "restart":
		do = s.Restart
	}
	if err := do(); err != nil {
		fmt.Fprintf(stderr, "ferry %s: %v\n%s\n", verb, err, serviceLogsHint)
		return exitFailed
	}
	fmt.Fprintf(stdout, "ferry %s: done\n", verb)
	return exitOK
}

// cmdInstall validates the configuration and registers "ferry run --config
// FILE" with the service manager, started at boot.
func cmdInstall(args []string, stdout, stderr io.Writer, getenv env) int {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (TOML) the service runs with")
	user := fs.String("user", "", "account the service runs as (default: root on Linux, LocalSystem on Windows)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *configPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: ferry install --config FILE [--user NAME]")
		return exitUsage
	}
	// Credentials usually live only in the service's environment
	// (/etc/ferry/ferry.env), not in the installing shell: a missing one is
	// a note here, not an error; everything else must be valid.
	var unset []string
	lookup := func(name string) (string, bool) {
		if v, ok := getenv(name); ok && v != "" {
			return v, true
		}
		unset = append(unset, name)
		return "unset-at-install", true
	}
	cfg, err := config.Load(*configPath, lookup)
	if err != nil {
		return reportConfigError(stderr, err)
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferry install: cannot find this program's own path: %v\n", err)
		return exitFailed
	}
	sc, err := installConfig(cfg, exe, *user)
	if err != nil {
		fmt.Fprintf(stderr, "ferry install: %v\n", err)
		return exitFailed
	}
	s, err := newService(sc)
	if err != nil {
		fmt.Fprintf(stderr, "ferry install: %v\n", err)
		return exitFailed
	}
	if err := checkServicePlatform(); err != nil {
		fmt.Fprintf(stderr, "ferry install: %v\n", err)
		return exitFailed
	}
	if err := checkPrivileged(); err != nil {
		fmt.Fprintf(stderr, "ferry install: %v (try: %s)\n", err, elevatedCommand("ferry install --config "+cfg.File()))
		return exitFailed
	}
	if _, err := s.Status(); !errors.Is(err, service.ErrNotInstalled) {
		if why := packagedService(); why != "" {
			fmt.Fprintf(stderr, "ferry install: ferry is already installed as a service: %s\n", why)
		} else {
			fmt.Fprintln(stderr, "ferry install: ferry is already installed as a service; to change it, run: ferry uninstall, then ferry install again")
		}
		return exitFailed
	}
	if err := prepareServiceDirs(cfg, *user); err != nil {
		fmt.Fprintf(stderr, "ferry install: %v\n", err)
		return exitFailed
	}
	if err := s.Install(); err != nil {
		fmt.Fprintf(stderr, "ferry install: %v\n", err)
		return exitFailed
	}
	if err := afterInstall(); err != nil {
		fmt.Fprintf(stderr, "ferry install: installed, but %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "installed the ferry service: %s\n", strings.Join(append([]string{sc.Executable}, sc.Arguments...), " "))
	fmt.Fprintf(stdout, "it writes only to: %s\n", strings.Join(writablePaths(cfg), ", "))
	if *user == "" {
		fmt.Fprintf(stdout, "it runs as %s; --user NAME picks an account that can read the watched folders\n", defaultServiceAccount)
	}
	for _, name := range slices.Compact(slices.Sorted(slices.Values(unset))) {
		fmt.Fprintf(stdout, "note: %s is not set here; %s\n", name, serviceEnvHint)
	}
	fmt.Fprintln(stdout, "start it with: ferry start")
	return exitOK
}

// installConfig is the service registration for cfg: this binary, run
// with the absolute config path, plus each platform's options (Linux: the
// systemd unit; Windows: delayed start and recovery).
func installConfig(cfg *config.Config, exe, user string) (*service.Config, error) {
	args := []string{"run", "--config", cfg.File()}
	opts, err := serviceOptions(cfg, append([]string{exe}, args...), user)
	if err != nil {
		return nil, err
	}
	return &service.Config{
		Name:        serviceName,
		DisplayName: serviceDisplayName,
		Description: serviceDescription,
		Executable:  exe,
		Arguments:   args,
		UserName:    user,
		Option:      opts,
	}, nil
}

// newService is the service manager's handle on "ferry", for commands that
// manage the service rather than run it.
func newService(c *service.Config) (service.Service, error) {
	c.Name = serviceName
	if c.DisplayName == "" {
		c.DisplayName = serviceDisplayName
	}
	return service.New(&program{}, c)
}

// writablePaths are the folders the service writes to, computed from the
// configuration: the journal's folder, the log file's folder and every fs
// target. Everything else (the watched folders included) it only reads.
func writablePaths(cfg *config.Config) []string {
	ps := []string{filepath.Dir(cfg.Journal.Path)}
	if cfg.Log.File != "" {
		ps = append(ps, filepath.Dir(cfg.Log.File))
	}
	for _, t := range cfg.Target {
		if t.Type == "fs" {
			ps = append(ps, t.Path)
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
	w("Description=%s", serviceDescription)
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
	w("# Exit code 2 is a configuration error: restarting will not help.")
	w("RestartPreventExitStatus=2")
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

// serveOrRun runs body: directly when ferry was started from a terminal, a
// container or a plain process supervisor, and under the service manager's
// protocol (Start, Stop) when the service manager started it. Either way,
// a stop (Ctrl-C, SIGTERM, the service manager's Stop) cancels body's ctx,
// and body's exit code is ferry's.
func serveOrRun(ctx context.Context, log *slog.Logger, body func(ctx context.Context, log *slog.Logger) int) int {
	if service.Interactive() {
		return body(ctx, log)
	}
	return serveUnderManager(ctx, log, body)
}

// serveUnderManager runs body as the service manager's service. A body that
// ends on its own (a fatal error) ends the service with its exit code, so
// that systemd's Restart=on-failure and Windows' recovery actions restart it.
func serveUnderManager(ctx context.Context, log *slog.Logger, body func(ctx context.Context, log *slog.Logger) int) int {
	p := &program{parent: ctx, body: body, wait: serviceStopWait, log: log}
	s, err := service.New(p, &service.Config{
		Name: serviceName,
		// Where the service manager's Run waits for a stop (all but
		// Windows): SIGTERM, already turned into ctx by the caller, or body
		// ending by itself.
		Option: service.KeyValue{"RunWait": func() {
			select {
			case <-ctx.Done():
			case <-p.done:
			}
		}},
	})
	if err != nil {
		log.Error("cannot run under the service manager", "error", err.Error())
		return exitFailed
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
	p.log.Info("running under the service manager", "service_manager", service.Platform())
	if err := s.Run(); err != nil {
		p.log.Error("service manager", "error", err.Error())
		return exitFailed
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
	events  service.Logger // the Windows Event Log when run as a Windows service, else nil
	onFatal func(code int) // called when body ends on its own, not asked to stop

	cancel   context.CancelFunc
	done     chan struct{} // closed when body has returned
	code     int
	mu       sync.Mutex
	stopping bool
	finished bool
}

// Start begins body and returns at once.
func (p *program) Start(service.Service) error {
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
		if code != exitOK {
			// Also in the Event Log (p.log tees errors there).
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
func (p *program) Stop(service.Service) error {
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

// exitCode is body's exit code, or exitFailed when it has not returned.
func (p *program) exitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.finished {
		return exitFailed
	}
	return p.code
}

// eventHandler is a slog.Handler that also writes errors to the service
// manager's log (the Windows Event Log), where a service's administrators
// look first: the message, then key=value pairs.
type eventHandler struct {
	slog.Handler
	events service.Logger
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
