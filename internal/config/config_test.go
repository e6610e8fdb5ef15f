package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/uploader"
	"github.com/ferry-data/ferry/uploader/sink/gate"
	"github.com/ferry-data/ferry/uploader/sink/retry"
	"github.com/ferry-data/ferry/uploader/sink/s3sink"
	"github.com/ferry-data/ferry/watcher"
)

func TestLoadValid(t *testing.T) {
	p := testcfg.Write(t, testcfg.Valid)
	dir := filepath.Dir(p)
	c, err := Load(p, testcfg.Env(map[string]string{"AK": "access", "SK": "s3cr3t"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Journal.Path != filepath.Join(dir, "state", "ferry.db") || c.Log.File != filepath.Join(dir, "logs", "ferry.log") {
		t.Errorf("relative paths not resolved against the config folder: %q %q", c.Journal.Path, c.Log.File)
	}
	if c.Upload.MaxChunkSize != 8<<20 || c.Upload.MaxConcurrentUploads != 2 || c.Upload.Retry.Attempts != 3 ||
		time.Duration(c.Upload.Retry.InitialDelay) != 500*time.Millisecond || time.Duration(c.Upload.OrphanUploadTTL) != 2*time.Hour {
		t.Errorf("upload: %+v", c.Upload)
	}
	if c.Log.MaxSizeMB != 100 || c.Log.MaxBackups != 10 || c.Log.MaxAgeDays != 0 {
		t.Errorf("log rotation defaults: %+v, want 100 MB, 10 backups, no age limit", c.Log)
	}
	if c.Upload.MaxBandwidth != 20<<20 {
		t.Errorf("max_bandwidth = %v", c.Upload.MaxBandwidth)
	}
	if c.Upload.MaxInflightBytes != 16<<20 {
		t.Errorf("max_inflight_bytes default %s, want workers x chunk = 16MiB", c.Upload.MaxInflightBytes)
	}
	if b := c.Upload.Breaker; b.FailureThreshold != 8 || time.Duration(b.OpenTimeout) != time.Minute || b.HalfOpenProbes != 1 {
		t.Errorf("breaker: %+v", b)
	}
	a := c.Target["archive"]
	if a.Region != "us-east-1" || a.creds.access.Reveal() != "access" || a.creds.secret.Reveal() != "s3cr3t" {
		t.Errorf("archive target: region %q", a.Region)
	}
	if s := fmt.Sprintf("%v %+v %#v %s %v", a.creds.secret, a, a, a.creds.secret, c); strings.Contains(s, "s3cr3t") {
		t.Errorf("a secret leaked through formatting: %s", s)
	}
	if c.Target["local"].Path != filepath.Join(dir, "archive") {
		t.Errorf("fs path %q", c.Target["local"].Path)
	}
	w := c.Watch[0]
	if w.Path != filepath.Join(dir, "in") || time.Duration(w.Settle) != 2*time.Second || !*w.Recursive ||
		time.Duration(w.RescanInterval) != 10*time.Minute || len(w.Include) != 1 || w.Include[0] != "**/*" {
		t.Errorf("watch defaults: %+v", w)
	}
	if *c.Watch[1].Recursive {
		t.Error("recursive = false ignored")
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	c, err := Load("../../config.example.toml", testcfg.Env(nil))
	if err != nil {
		t.Fatalf("config.example.toml: %v", err)
	}
	if c.Target[c.Watch[0].Target].Type != "fs" {
		t.Error("the built-in example must need no cloud account")
	}
}

func TestLoadErrors(t *testing.T) {
	env := testcfg.Env(map[string]string{"AK": "a", "SK": "s"})
	base := func(extra string) string {
		return "[target.t]\ntype = \"fs\"\npath = \"out\"\n\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n" + extra
	}
	for _, c := range []struct {
		name, body string
		line       int
		want       string
	}{
		{"syntax", "[journal]\npath = \"x\nlevel = 3\n", 2, ""},
		{"unknown key", base("colour = \"blue\"\n"), 8, "watch[1].colour: unknown key"},
		{"unknown top key", "verbose = true\n" + base(""), 1, "verbose: unknown key"},
		{"unknown section key", "[upload]\nmax_uploads = 3\n" + base(""), 2, "upload.max_uploads: unknown key"},
		{"bad size", "[upload]\nmax_chunk_size = \"16XB\"\n" + base(""), 2, "16XB"},
		{"small chunk with s3", "[upload]\nmax_chunk_size = \"1MiB\"\n[target.s]\ntype = \"s3\"\nendpoint = \"http://127.0.0.1:1\"\nbucket = \"b\"\naccess_key_env = \"AK\"\nsecret_key_env = \"SK\"\n" + base(""), 2, "at least 5MiB"},
		{"bad duration", base("settle = \"soon\"\n"), 8, "invalid duration"},
		{"negative settle", base("settle = \"-1s\"\n"), 8, "must be between 10ms and 168h0m0s (got -1s)"},
		{"unknown target", "[target.t]\ntype = \"fs\"\npath = \"out\"\n[[watch]]\npath = \"in\"\ntarget = \"archive\"\n", 6, `no target named "archive"`},
		{"second watch bad target", base("[[watch]]\npath = \"in/..\"\ntarget = \"nope\"\n"), 10, `watch[2].target: no target named "nope"`},
		{"bad type", "[target.t]\ntype = \"ftp\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n", 2, `must be "s3" or "fs"`},
		{"s3 missing bucket", "[target.t]\ntype = \"s3\"\nendpoint = \"http://127.0.0.1:1\"\naccess_key_env = \"AK\"\nsecret_key_env = \"SK\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n", 1, "target.t.bucket: required"},
		{"s3 env unset", "[target.t]\ntype = \"s3\"\nendpoint = \"http://127.0.0.1:1\"\nbucket = \"b\"\naccess_key_env = \"NOPE\"\nsecret_key_env = \"SK\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n", 5, "environment variable NOPE is not set"},
		{"s3 bad endpoint", "[target.t]\ntype = \"s3\"\nendpoint = \"s3.example.org\"\nbucket = \"b\"\naccess_key_env = \"AK\"\nsecret_key_env = \"SK\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n", 3, "http:// or https://"},
		{"prefix without slash", "[target.t]\ntype = \"fs\"\npath = \"o\"\nprefix = \"scope1\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n", 4, "ending in /"},
		{"fs with bucket", "[target.t]\ntype = \"fs\"\npath = \"o\"\nbucket = \"b\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n", 4, "applies only to s3"},
		{"bad glob", base("include = [\"[a\"]\n"), 8, "invalid glob"},
		{"breaker timeout", "[upload.breaker]\nopen_timeout = \"10ms\"\n" + base(""), 2, "upload.breaker.open_timeout: must be at least 1s"},
		{"inflight below a chunk", "[upload]\nmax_chunk_size = \"16MiB\"\nmax_inflight_bytes = \"1MiB\"\n" + base(""), 3, "upload.max_inflight_bytes: must be at least max_chunk_size"},
		{"bad bandwidth", "[upload]\nmax_bandwidth = \"fast\"\n" + base(""), 2, "invalid rate"},
		{"bad metrics listen", "[metrics]\nlisten = \"9464\"\n" + base(""), 2, "metrics.listen: must be host:port"},
		{"bad on_change", base("on_change = \"keep\"\n"), 8, `must be "reupload", "version" or "ignore"`},
		{"short checkpoint interval", "[journal]\npath = \"j.db\"\ncheckpoint_interval = \"10s\"\n" + base(""), 3, "journal.checkpoint_interval: must be at least 1m"},
		{"bad checkpoint interval", "[journal]\ncheckpoint_interval = \"hourly\"\n" + base(""), 2, "invalid duration"},
		{"short checkpoint retention", "[journal]\ncheckpoint_retention = \"5m\"\n" + base(""), 2, "journal.checkpoint_retention: must be at least 1h"},
		{"bad level", "[log]\nlevel = \"loud\"\n" + base(""), 2, "log.level"},
		{"negative log size", "[log]\nlevel = \"info\"\nmax_size_mb = -5\n" + base(""), 3, "log.max_size_mb: must be between 1 and 100000 megabytes (got -5)"},
		{"absurd log backups", "[log]\nmax_backups = 1000000\n" + base(""), 2, "log.max_backups: must be between 1 and 10000"},
		{"negative log age", "[log]\nmax_age_days = -1\n" + base(""), 2, "log.max_age_days: must be between 0 (keep by count only)"},
		{"log size not a number", "[log]\nmax_size_mb = \"100MB\"\n" + base(""), 2, ""},
		{"too many workers", "[upload]\nmax_concurrent_uploads = 1000\n" + base(""), 2, "between 1 and 256"},
		{"type mismatch", "[upload]\nmax_concurrent_uploads = \"four\"\n" + base(""), 2, ""},
		{"no watches", "[target.t]\ntype = \"fs\"\npath = \"o\"\n", 0, "no watches"},
		{"duplicate watch", base("[[watch]]\npath = \"in/\"\ntarget = \"t\"\n"), 9, "already watched"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := testcfg.Write(t, c.body)
			_, err := Load(p, env)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if c.line > 0 && !strings.Contains(msg, fmt.Sprintf("%s:%d: ", p, c.line)) {
				t.Errorf("error %q does not name %s:%d", msg, p, c.line)
			}
			if c.line == 0 && !strings.Contains(msg, p) {
				t.Errorf("error %q does not name the file", msg)
			}
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not say %q", msg, c.want)
			}
			var ce *Error
			var ces Errors
			if !errors.As(err, &ce) && !errors.As(err, &ces) {
				t.Errorf("error is %T, want an Error", err)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{
		"16MiB": 16 << 20, "16 MiB": 16 << 20, "5mib": 5 << 20, "1GiB": 1 << 30, "512KiB": 512 << 10,
		"1048576": 1 << 20, "10MB": 10_000_000, "1B": 1, "2TiB": 2 << 40,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "16XB", "-1MiB", "1.5MiB", "99999999999999999999TiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	if s := Size(16 << 20).String(); s != "16MiB" {
		t.Errorf("Size.String = %q", s)
	}
}

// One file with a problem in every section: Load reports each, in file
// order, with its line, not only the first.
func TestLoadReportsEveryProblem(t *testing.T) {
	p := testcfg.Write(t, `[journal]
checkpoint_interval = "10s"
[log]
level = "loud"
[upload]
max_concurrent_uploads = 1000
[upload.breaker]
half_open_probes = 500
[upload.retry]
attempts = 101
[metrics]
listen = "9464"
[target.t]
type = "fs"
path = "out"
bucket = "b"
[[watch]]
path = "in"
target = "nope"
settle = "-1s"
`)
	_, err := Load(p, testcfg.Env(nil))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error %v (%T), want Errors", err, err)
	}
	want := []string{
		":2: journal.checkpoint_interval: must be at least 1m (got 10s)",
		":4: log.level: must be one of debug, info, warn, error",
		":6: upload.max_concurrent_uploads: must be between 1 and 256 (got 1000)",
		":8: upload.breaker.half_open_probes: must be between 1 and 100 (got 500)",
		":10: upload.retry.attempts: must be between 1 and 100 (got 101)",
		":12: metrics.listen: must be host:port, such as 127.0.0.1:9464",
		":16: target.t.bucket: applies only to s3 targets",
		":19: watch[1].target: no target named \"nope\" (targets: t)",
		":20: watch[1].settle: must be between 10ms and 168h0m0s (got -1s)",
	}
	if len(es) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(es), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(es[i].Error(), p+w) {
			t.Errorf("error %d = %q, want %q", i, es[i].Error(), p+w)
		}
	}
}

// A configuration that leaves everything out gets the defaults the
// components themselves apply to zero options.
func TestDefaultsAreTheComponents(t *testing.T) {
	p := testcfg.Write(t, "[target.t]\ntype = \"s3\"\nendpoint = \"http://127.0.0.1:1\"\nbucket = \"b\"\naccess_key_env = \"AK\"\nsecret_key_env = \"SK\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n")
	c, err := Load(p, testcfg.Env(map[string]string{"AK": "a", "SK": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	u, w := c.Upload, c.Watch[0]
	for _, d := range []struct {
		name      string
		got, want any
	}{
		{"max_concurrent_uploads", u.MaxConcurrentUploads, uploader.DefaultWorkers},
		{"max_chunk_size", int64(u.MaxChunkSize), int64(uploader.DefaultChunkSize)},
		{"retry.attempts", u.Retry.Attempts, retry.DefaultAttempts},
		{"retry.initial_delay", time.Duration(u.Retry.InitialDelay), retry.DefaultInitialDelay},
		{"retry.max_delay", time.Duration(u.Retry.MaxDelay), retry.DefaultMaxDelay},
		{"breaker.failure_threshold", u.Breaker.FailureThreshold, gate.DefaultFailureThreshold},
		{"breaker.open_timeout", time.Duration(u.Breaker.OpenTimeout), gate.DefaultOpenTimeout},
		{"breaker.half_open_probes", u.Breaker.HalfOpenProbes, gate.DefaultHalfOpenProbes},
		{"region", c.Target["t"].Region, s3sink.DefaultRegion},
		{"settle", time.Duration(w.Settle), watcher.DefaultSettle},
		{"rescan_interval", time.Duration(w.RescanInterval), watcher.DefaultRescanInterval},
		{"journal.path", c.Journal.Path, filepath.Join(filepath.Dir(p), DefaultJournal)},
		{"metrics.listen", *c.Metrics.Listen, DefaultMetricsListen},
		{"log.level", c.Log.Level, DefaultLogLevel},
	} {
		if d.got != d.want {
			t.Errorf("%s = %v, want %v", d.name, d.got, d.want)
		}
	}
}

// TestMissingWatchPathIsAWarning: a watch folder that is not there (a
// share not mounted yet) does not stop ferry or the other watches: a
// warning at its FILE:LINE, not an error. A file where the folder should
// be is a mistake: refused.
func TestMissingWatchPathIsAWarning(t *testing.T) {
	p := testcfg.Write(t, "[target.t]\ntype = \"fs\"\npath = \"out\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n[[watch]]\npath = \"nowhere\"\ntarget = \"t\"\n")
	env := testcfg.Env(nil)
	c, err := Load(p, env)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0].Error(), p+":8: watch[2].path: watch path "+filepath.Join(filepath.Dir(p), "nowhere")+" is not there now") {
		t.Fatalf("warnings %v", w)
	}
	os.WriteFile(filepath.Join(filepath.Dir(p), "nowhere"), []byte("a file"), 0o644)
	if _, err := Load(p, env); err == nil || !strings.Contains(err.Error(), p+":8: watch[2].path: watch path "+filepath.Join(filepath.Dir(p), "nowhere")+" is not a folder") {
		t.Fatalf("a file as watch path: %v", err)
	}
}
