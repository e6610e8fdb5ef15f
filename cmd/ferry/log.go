package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// newLogger returns the process logger: JSON lines with RFC 3339 UTC
// timestamps, to the log file (rotated at 100 MB, 10 files kept, compressed)
// or, when none is configured, to stderr.
func newLogger(c LogConfig, stderr io.Writer) (*slog.Logger, io.Closer, error) {
	var w io.Writer = stderr
	var closer io.Closer = io.NopCloser(nil)
	if c.File != "" {
		if err := os.MkdirAll(filepath.Dir(c.File), 0o750); err != nil {
			return nil, nil, err
		}
		lj := &lumberjack.Logger{Filename: c.File, MaxSize: 100, MaxBackups: 10, Compress: true}
		w, closer = lj, lj
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: utcTime})), closer, nil
}

// utcTime writes the record time as RFC 3339 UTC with nanoseconds.
func utcTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		return slog.String(slog.TimeKey, a.Value.Time().UTC().Format(time.RFC3339Nano))
	}
	return a
}
