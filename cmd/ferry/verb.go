package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/daemon"
	"github.com/ferry-data/ferry/journal"
)

// loadConfig loads the configuration at path. On failure it has told
// stderr why (every problem, one per line: config.Errors) and returns nil
// and exitUsage.
func loadConfig(path string, getenv env, stderr io.Writer) (*config.Config, int) {
	cfg, err := config.Load(path, getenv)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "ferry: %s\n", line)
		}
		return nil, exitUsage
	}
	return cfg, exitOK
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
	return journalOpened(j, err, cfg, stderr)
}

// openJournalReadOnly is openJournal for a command that only reads (ferry
// journal export, verify and state, dlq list): it takes no lock, so it
// works beside a running daemon, and it refuses a missing journal rather
// than create an empty one.
func openJournalReadOnly(configPath string, getenv env, stderr io.Writer) (*journal.Journal, int) {
	cfg, code := loadConfig(configPath, getenv, stderr)
	if cfg == nil {
		return nil, code
	}
	j, err := journal.OpenReadOnly(cfg.Journal.Path)
	return journalOpened(j, err, cfg, stderr)
}

func journalOpened(j *journal.Journal, err error, cfg *config.Config, stderr io.Writer) (*journal.Journal, int) {
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		if errors.Is(err, journal.ErrCorrupt) || errors.Is(err, journal.ErrNoJournal) {
			fmt.Fprintf(stderr, "to recover: ferry journal rebuild --config %s\n", cfg.File())
		}
		return nil, exitFailed
	}
	return j, exitOK
}

// withJournal opens the journal of the configuration (flag, or the default
// configuration) and runs fn on it: a verb's RunE on the journal alone.
func (a *app) withJournal(flag string, fn func(*journal.Journal) int) error {
	return a.withConfig(flag, func(path string) int {
		j, code := openJournal(path, a.getenv, a.stderr)
		if j == nil {
			return code
		}
		defer j.Close()
		return fn(j)
	})
}

// withJournalReadOnly is withJournal for a verb that only reads the journal
// (openJournalReadOnly).
func (a *app) withJournalReadOnly(flag string, fn func(*journal.Journal) int) error {
	return a.withConfig(flag, func(path string) int {
		j, code := openJournalReadOnly(path, a.getenv, a.stderr)
		if j == nil {
			return code
		}
		defer j.Close()
		return fn(j)
	})
}
