package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/journal"
)

// env is how commands read the environment (credentials).
type env func(string) (string, bool)

// verb is one command: it gets its arguments (after its name), the output
// streams and the environment, and returns the exit code.
type verb func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int

// dispatch runs the verb of verbs that args[0] names; ok is false when it
// names none.
func dispatch(ctx context.Context, verbs map[string]verb, args []string, stdout, stderr io.Writer, getenv env) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	v, ok := verbs[args[0]]
	if !ok {
		return 0, false
	}
	return v(ctx, args[1:], stdout, stderr, getenv), true
}

// newFlags is a verb's flag set, which reports bad flags on stderr, with
// the --config flag.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fset := flag.NewFlagSet(name, flag.ContinueOnError)
	fset.SetOutput(stderr)
	return fset, fset.String("config", "", "configuration file (TOML)")
}

// usageError prints a verb's usage on stderr and returns exitUsage.
func usageError(stderr io.Writer, usage string) int {
	fmt.Fprintln(stderr, usage)
	return exitUsage
}

// parseAndLoad parses a verb's flags (fset, with --config at configPath)
// and loads the configuration that --config names. When it is missing or
// an argument is left over, stderr is told missing. cfg is nil when the
// verb must end, with code.
func parseAndLoad(fset *flag.FlagSet, configPath *string, args []string, getenv env, stderr io.Writer, missing string) (cfg *config.Config, code int) {
	if err := fset.Parse(args); err != nil {
		return nil, exitUsage
	}
	if *configPath == "" || fset.NArg() > 0 {
		return nil, usageError(stderr, missing)
	}
	return loadConfig(*configPath, getenv, stderr)
}

// loadConfig loads the configuration at path. On failure it has told
// stderr why (every problem, with its line) and returns nil and exitUsage.
func loadConfig(path string, getenv env, stderr io.Writer) (*config.Config, int) {
	cfg, err := config.Load(path, getenv)
	if err != nil {
		return nil, reportConfigError(stderr, err)
	}
	return cfg, exitOK
}

// reportConfigError prints a configuration problem and returns exitUsage.
func reportConfigError(stderr io.Writer, err error) int {
	var ces config.Errors
	if errors.As(err, &ces) {
		for _, e := range ces {
			fmt.Fprintf(stderr, "ferry: %v\n", e)
		}
		return exitUsage
	}
	fmt.Fprintf(stderr, "ferry: %v\n", err)
	return exitUsage
}

// openLog is the process logger of cfg ([log]; level, when set, becomes
// its level). On failure it has told stderr why and returns exitUsage.
func openLog(cfg *config.Config, stderr io.Writer, level *slog.LevelVar) (*slog.Logger, io.Closer, int) {
	log, closer, err := daemon.NewLogger(cfg.Log, stderr, level)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: log file %s: %v\n", cfg.Log.File, err)
		return nil, nil, exitUsage
	}
	return log, closer, exitOK
}

// openJournal loads the configuration and opens its journal for a
// command that works on the journal alone. On failure it has told stderr
// why and returns nil with the exit code.
func openJournal(configPath string, getenv env, stderr io.Writer) (*journal.Journal, int) {
	cfg, code := loadConfig(configPath, getenv, stderr)
	if cfg == nil {
		return nil, code
	}
	j, err := journal.Open(cfg.Journal.Path, journal.Options{FerryVersion: versionString()})
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		if errors.Is(err, journal.ErrCorrupt) {
			fmt.Fprintf(stderr, "to recover: ferry journal rebuild --config %s\n", cfg.File())
		}
		return nil, exitFailed
	}
	return j, exitOK
}
