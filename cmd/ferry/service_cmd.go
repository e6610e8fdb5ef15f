package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferry-data/ferry/internal/service"
)

// serviceCmd is the verb that uninstalls, starts, stops or restarts the
// installed service (name says which).
func (a *app) serviceCmd(name string) *cobra.Command {
	short := map[string]string{
		"uninstall": "Stop and remove the installed ferry service",
		"start":     "Start the installed ferry service",
		"stop":      "Stop the installed ferry service (within 10 s; what is in flight stays queued)",
		"restart":   "Restart the installed ferry service",
	}[name]
	return &cobra.Command{
		Use:     name,
		Short:   short,
		Long:    short + " (systemd, or Windows' service manager), as root or administrator;\nwith the .deb or .rpm, use systemctl.",
		Example: "  sudo ferry " + name + "\n  ferry.exe " + name + "   # Windows, from an elevated prompt",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return done(a.manageService(name))
		},
	}
}

// manageService uninstalls, starts, stops or restarts the service.
func (a *app) manageService(name string) int {
	s, code := serviceHandle(name, nil, "ferry "+name, a.stderr)
	if s == nil {
		return code
	}
	if _, err := s.Status(); errors.Is(err, service.ErrNotInstalled) {
		fmt.Fprintf(a.stderr, "ferry %s: ferry is not installed as a service (install it with: ferry install --config FILE)\n", name)
		return exitFailed
	}
	if why := service.PackagedService(); why != "" && name == "uninstall" {
		fmt.Fprintf(a.stderr, "ferry uninstall: %s\n", why)
		return exitFailed
	}
	do := map[string]func() error{
		"uninstall": func() error {
			_ = s.Stop() // a running service is stopped first; one already stopped is fine
			return s.Uninstall()
		},
		"start":   s.Start,
		"stop":    s.Stop,
		"restart": s.Restart,
	}[name]
	if err := do(); err != nil {
		fmt.Fprintf(a.stderr, "ferry %s: %v\n%s\n", name, err, service.LogsHint)
		return exitFailed
	}
	fmt.Fprintf(a.stdout, "ferry %s: done\n", name)
	return exitOK
}

// serviceHandle is the service manager's handle on ferry, registered as sc
// says (nil: by name only), for verb, once this machine has the service
// manager ferry installs itself into and this user may manage services
// (elevated is the command to run elevated). On failure it has told stderr
// why and returns nil and exitFailed.
func serviceHandle(verb string, sc *service.Registration, elevated string, stderr io.Writer) (service.Service, int) {
	s, err := service.New(sc)
	if err == nil {
		err = service.CheckPlatform()
	}
	if err != nil {
		fmt.Fprintf(stderr, "ferry %s: %v\n", verb, err)
		return nil, exitFailed
	}
	if err := service.CheckPrivileged(); err != nil {
		fmt.Fprintf(stderr, "ferry %s: %v (try: %s)\n", verb, err, service.ElevatedCommand(elevated))
		return nil, exitFailed
	}
	return s, exitOK
}

func (a *app) installCmd() *cobra.Command {
	var user string
	c := a.configVerb(&cobra.Command{
		Use:   "install",
		Short: "Install ferry as a service running this binary with the configuration",
		Long: `Check the configuration (a bad one: exit 2, nothing is installed), then
register this binary with the configuration's absolute path with the service
manager (systemd, or Windows'), started at boot. As root (administrator);
credentials are read from the service's own environment.`,
		Example: `  sudo ferry install --config /etc/ferry/ferry.toml --user ferry
  ferry.exe install --config C:\ProgramData\ferry\ferry.toml --user "NT AUTHORITY\NetworkService"`,
	}, func(_ context.Context, path string) int { return a.install(path, user) })
	c.Flags().StringVar(&user, "user", "", "the account the service runs as (default: root on Linux, LocalSystem on Windows)")
	return c
}

// install validates the configuration at path and registers "ferry run
// --config FILE" with the service manager, started at boot.
func (a *app) install(path, user string) int {
	// Credentials usually live only in the service's environment
	// (/etc/ferry/ferry.env), not in the installing shell: a missing one is
	// a note here, not an error; everything else must be valid.
	var unset []string
	lookup := func(name string) (string, bool) {
		if v, ok := a.getenv(name); ok && v != "" {
			return v, true
		}
		unset = append(unset, name)
		return "unset-at-install", true
	}
	cfg, code := loadConfig(path, lookup, a.stderr)
	if cfg == nil {
		return code
	}
	fail := func(format string, args ...any) int {
		fmt.Fprintf(a.stderr, "ferry install: "+format+"\n", args...)
		return exitFailed
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return fail("cannot find this program's own path: %v", err)
	}
	sc, err := service.InstallConfig(cfg, exe, user)
	if err != nil {
		return fail("%v", err)
	}
	s, code := serviceHandle("install", sc, "ferry install --config "+cfg.File(), a.stderr)
	if s == nil {
		return code
	}
	if _, err := s.Status(); !errors.Is(err, service.ErrNotInstalled) {
		if why := service.PackagedService(); why != "" {
			return fail("ferry is already installed as a service: %s", why)
		}
		return fail("ferry is already installed as a service; to change it, run: ferry uninstall, then ferry install again")
	}
	if err := service.PrepareDirs(cfg, user); err != nil {
		return fail("%v", err)
	}
	if err := s.Install(); err != nil {
		return fail("%v", err)
	}
	if err := service.AfterInstall(); err != nil {
		return fail("installed, but %v", err)
	}
	fmt.Fprintf(a.stdout, "installed the ferry service: %s\n", strings.Join(append([]string{sc.Executable}, sc.Arguments...), " "))
	fmt.Fprintf(a.stdout, "it writes only to: %s\n", strings.Join(service.WritablePaths(cfg), ", "))
	if user == "" {
		fmt.Fprintf(a.stdout, "it runs as %s; --user NAME picks an account that can read the watched folders\n", service.DefaultAccount)
	}
	for _, name := range slices.Compact(slices.Sorted(slices.Values(unset))) {
		fmt.Fprintf(a.stdout, "note: %s is not set here; %s\n", name, service.EnvHint)
	}
	fmt.Fprintln(a.stdout, "start it with: ferry start")
	return exitOK
}
