package daemon

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mattn/go-isatty"
	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/ferry-data/ferry/internal/config"
)

// NewLogger returns the process logger: JSON lines with RFC 3339 UTC
// timestamps, to the log file (rotated at max_size_mb, max_backups
// compressed old files kept, each at most max_age_days old when that is
// set) or, when none is configured, to stderr. With a log file, a stderr
// that is a terminal gets every line too: a person running ferry by hand
// sees what it does. When lv is not nil, it is set to [log] level and is
// the logger's level from then on: a configuration reload changes it.
func NewLogger(c config.LogConfig, stderr io.Writer, lv *slog.LevelVar) (*slog.Logger, io.Closer, error) {
	return newLoggerTee(c, stderr, isTerminal(stderr), lv)
}

// newLoggerTee is NewLogger, told whether stderr is a terminal.
func newLoggerTee(c config.LogConfig, stderr io.Writer, tty bool, lv *slog.LevelVar) (*slog.Logger, io.Closer, error) {
	var w io.Writer = stderr
	var closer io.Closer = io.NopCloser(nil)
	if c.File != "" {
		if err := os.MkdirAll(filepath.Dir(c.File), 0o750); err != nil {
			return nil, nil, err
		}
		lj := &lumberjack.Logger{Filename: c.File, MaxSize: c.MaxSizeMB, MaxBackups: c.MaxBackups, MaxAge: c.MaxAgeDays, Compress: true}
		if lj.MaxSize <= 0 {
			lj.MaxSize = config.DefaultLogMaxSizeMB
		}
		if lj.MaxBackups <= 0 {
			lj.MaxBackups = config.DefaultLogMaxBackups
		}
		w, closer = lj, lj
		if tty {
			w = io.MultiWriter(lj, stderr)
		}
	}
	if lv == nil {
		lv = new(slog.LevelVar)
	}
	lv.Set(logLevel(c.Level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv, ReplaceAttr: utcTime})), closer, nil
}

// logLevel is [log] level as a slog level (info for anything else: the
// configuration has been validated).
func logLevel(s string) slog.Level {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return level
}

// isTerminal reports whether w is a terminal (a console on Windows).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// utcTime writes the record time as RFC 3339 UTC with nanoseconds.
func utcTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		return slog.String(slog.TimeKey, a.Value.Time().UTC().Format(time.RFC3339Nano))
	}
	return a
}
