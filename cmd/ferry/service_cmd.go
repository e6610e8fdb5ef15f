package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/service"
)

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
	s, err := service.New(nil)
	if err != nil {
		fmt.Fprintf(stderr, "ferry %s: %v\n", verb, err)
		return exitFailed
	}
	if err := service.CheckPlatform(); err != nil {
		fmt.Fprintf(stderr, "ferry %s: %v\n", verb, err)
		return exitFailed
	}
	if err := service.CheckPrivileged(); err != nil {
		fmt.Fprintf(stderr, "ferry %s: %v (try: %s)\n", verb, err, service.ElevatedCommand("ferry "+verb))
		return exitFailed
	}
	if _, err := s.Status(); errors.Is(err, service.ErrNotInstalled) {
		fmt.Fprintf(stderr, "ferry %s: ferry is not installed as a service (install it with: ferry install --config FILE)\n", verb)
		return exitFailed
	}
	if why := service.PackagedService(); why != "" && verb == "uninstall" {
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
		fmt.Fprintf(stderr, "ferry %s: %v\n%s\n", verb, err, service.LogsHint)
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
	sc, err := service.InstallConfig(cfg, exe, *user)
	if err != nil {
		fmt.Fprintf(stderr, "ferry install: %v\n", err)
		return exitFailed
	}
	s, err := service.New(sc)
	if err != nil {
		fmt.Fprintf(stderr, "ferry install: %v\n", err)
		return exitFailed
	}
	if err := service.CheckPlatform(); err != nil {
		fmt.Fprintf(stderr, "ferry install: %v\n", err)
		return exitFailed
	}
	if err := service.CheckPrivileged(); err != nil {
		fmt.Fprintf(stderr, "ferry install: %v (try: %s)\n", err, service.ElevatedCommand("ferry install --config "+cfg.File()))
		return exitFailed
	}
	if _, err := s.Status(); !errors.Is(err, service.ErrNotInstalled) {
		if why := service.PackagedService(); why != "" {
			fmt.Fprintf(stderr, "ferry install: ferry is already installed as a service: %s\n", why)
		} else {
			fmt.Fprintln(stderr, "ferry install: ferry is already installed as a service; to change it, run: ferry uninstall, then ferry install again")
		}
		return exitFailed
	}
	if err := service.PrepareDirs(cfg, *user); err != nil {
		fmt.Fprintf(stderr, "ferry install: %v\n", err)
		return exitFailed
	}
	if err := s.Install(); err != nil {
		fmt.Fprintf(stderr, "ferry install: %v\n", err)
		return exitFailed
	}
	if err := service.AfterInstall(); err != nil {
		fmt.Fprintf(stderr, "ferry install: installed, but %v\n", err)
		return exitFailed
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
