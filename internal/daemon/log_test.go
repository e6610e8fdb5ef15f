package daemon

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/testsrv"
)

func TestLogTeesToATerminal(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name       string
		file       bool
		tty        bool
		inFile, on bool // the line lands in the file / on stderr
	}{
		{"file, stderr a terminal", true, true, true, true},
		{"file, stderr not a terminal", true, false, true, false},
		{"no file", false, false, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cfg := config.LogConfig{Level: "info"}
			if c.file {
				cfg.File = filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"), "ferry.log")
			}
			log, closer, err := newLoggerTee(cfg, &stderr, c.tty, nil)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("hello", "n", 1)
			log.Debug("below the level")
			closer.Close()
			var fromFile []byte
			if c.file {
				fromFile, _ = os.ReadFile(cfg.File)
			}
			for where, got := range map[string][]byte{"file": fromFile, "stderr": stderr.Bytes()} {
				want := (where == "file" && c.inFile) || (where == "stderr" && c.on)
				if !want {
					if len(got) > 0 {
						t.Errorf("%s got %q, want nothing", where, got)
					}
					continue
				}
				var m map[string]any
				if err := json.Unmarshal(got, &m); err != nil || m["msg"] != "hello" || m["n"] != 1.0 {
					t.Errorf("%s: %q (%v), want one JSON line", where, got, err)
					continue
				}
				if ts, _ := m["time"].(string); !strings.HasSuffix(ts, "Z") {
					t.Errorf("%s: time %q is not UTC", where, ts)
				} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
					t.Errorf("%s: time %q: %v", where, ts, err)
				}
			}
		})
	}
}

func TestLogRotationSettings(t *testing.T) {
	dir := t.TempDir()
	cfg := config.LogConfig{File: filepath.Join(dir, "ferry.log"), Level: "info", MaxSizeMB: 1, MaxBackups: 3, MaxAgeDays: 7}
	log, closer, err := newLoggerTee(cfg, &bytes.Buffer{}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	lj, ok := closer.(*lumberjack.Logger)
	if !ok {
		t.Fatalf("closer is %T", closer)
	}
	if lj.MaxSize != 1 || lj.MaxBackups != 3 || lj.MaxAge != 7 || !lj.Compress {
		t.Errorf("lumberjack %+v, want the [log] keys and Compress", lj)
	}
	// Past max_size_mb the file is rotated (the rename is synchronous;
	// compressing and pruning run in lumberjack's background goroutine).
	pad := strings.Repeat("x", 1000)
	for i := range 1200 {
		log.Info("line", "i", i, "pad", pad)
	}
	closer.Close()
	entries, _ := os.ReadDir(dir)
	var rotated int
	for _, e := range entries {
		if e.Name() != "ferry.log" && strings.HasPrefix(e.Name(), "ferry-") {
			rotated++
		}
	}
	if st, err := os.Stat(cfg.File); err != nil || st.Size() > 1<<20 || rotated == 0 {
		t.Errorf("after 1.2 MB of lines: current log %v (%v), %d rotated files; want a rotation at 1 MB", st, err, rotated)
	}
	// lumberjack compresses the rotated file in its own goroutine, after
	// Close too: wait for it, or it writes into the folder being removed.
	testsrv.Eventually(t, 10*time.Second, "the rotated log to be compressed", func() (bool, string) {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
			if e.Name() != "ferry.log" && !strings.HasSuffix(e.Name(), ".gz") {
				return false, strings.Join(names, " ")
			}
		}
		return true, ""
	})
}
