package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ferry-data/ferry/internal/service"
)

// cmdService is the verb that uninstalls, starts, stops or restarts the
// installed service (name says which).
func cmdService(name string) verb {
	return func(_ context.Context, args []string, stdout, stderr io.Writer, _ env) int {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		if err := fs.Parse(args); err != nil {
			return exitUsage
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "ferry %s: takes no arguments (got %q)\n", name, fs.Args())
			return exitUsage
		}
		s, code := serviceHandle(name, nil, "ferry "+name, stderr)
		if s == nil {
			return code
		}
		if _, err := s.Status(); errors.Is(err, service.ErrNotInstalled) {
			fmt.Fprintf(stderr, "ferry %s: ferry is not installed as a service (install it with: ferry install --config FILE)\n", name)
			return exitFailed
		}
		if why := service.PackagedService(); why != "" && name == "uninstall" {
			fmt.Fprintf(stderr, "ferry uninstall: %s\n", why)
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
			fmt.Fprintf(stderr, "ferry %s: %v\n%s\n", name, err, service.LogsHint)
			return exitFailed
		}
		fmt.Fprintf(stdout, "ferry %s: done\n", name)
		return exitOK
	}
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

// cmdInstall validates the configuration and registers "ferry run --config
// FILE" with the service manager, started at boot.
func cmdInstall(_ context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (TOML) the service runs with")
	user := fs.String("user", "", "account the service runs as (default: root on Linux, LocalSystem on Windows)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *configPath == "" || fs.NArg() > 0 {
		return usageError(stderr, "usage: ferry install --config FILE [--user NAME]")
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
	cfg, code := loadConfig(*configPath, lookup, stderr)
	if cfg == nil {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "ferry install: "+format+"\n", a...)
		return exitFailed
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return fail("cannot find this program's own path: %v", err)
	}
	sc, err := service.InstallConfig(cfg, exe, *user)
	if err != nil {
		return fail("%v", err)
	}
	s, code := serviceHandle("install", sc, "ferry install --config "+cfg.File(), stderr)
	if s == nil {
		return code
	}
	if _, err := s.Status(); !errors.Is(err, service.ErrNotInstalled) {
		if why := service.PackagedService(); why != "" {
			return fail("ferry is already installed as a service: %s", why)
		}
		return fail("ferry is already installed as a service; to change it, run: ferry uninstall, then ferry install again")
	}
	if err := service.PrepareDirs(cfg, *user); err != nil {
		return fail("%v", err)
	}
	if err := s.Install(); err != nil {
		return fail("%v", err)
	}
	if err := service.AfterInstall(); err != nil {
		return fail("installed, but %v", err)
	}
	fmt.Fprintf(stdout, "installed the ferry service: %s\n", strings.Join(append([]string{sc.Executable}, sc.Arguments...), " "))
	fmt.Fprintf(stdout, "it writes only to: %s\n", strings.Join(service.WritablePaths(cfg), ", "))
	if *user == "" {
		fmt.Fprintf(stdout, "it runs as %s; --user NAME picks an account that can read the watched folders\n", service.DefaultAccount)
	}
	for _, name := range slices.Compact(slices.Sorted(slices.Values(unset))) {
		fmt.Fprintf(stdout, "note: %s is not set here; %s\n", name, service.EnvHint)
	}
	fmt.Fprintln(stdout, "start it with: ferry start")
	return exitOK
}
