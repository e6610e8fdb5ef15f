package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/ferry-data/ferry/uploader"
	"github.com/ferry-data/ferry/watcher"
)

// DefaultMetricsListen is loopback: metrics are not for the network unless
// a person says so.
const DefaultMetricsListen = "127.0.0.1:9464"

// Defaults for keys left out.
const (
	defaultJournal     = "ferry.db"
	defaultWorkers     = 4
	defaultChunkSize   = 16 << 20
	minS3PartSize      = 5 << 20
	maxChunkSize       = 5 << 30
	minChunkSize       = 64 << 10
	defaultRegion      = "us-east-1"
	defaultRetryTries  = 5
	defaultRetryFirst  = time.Second
	defaultRetryMaxGap = 30 * time.Second
	defaultOrphanTTL   = 24 * time.Hour
	defaultCheckpoint  = time.Hour
	defaultCPRetention = 365 * 24 * time.Hour
)

// Log rotation defaults ([log] max_size_mb, max_backups, max_age_days).
const (
	DefaultLogMaxSizeMB  = 100
	DefaultLogMaxBackups = 10
)

// checker collects the problems of one file, each at its line.
type checker struct {
	file string
	loc  *locator
	errs Errors
}

// bad records a problem with key at line.
func (v *checker) bad(line int, key, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (c *Config) validate(v *checker, lookupEnv func(string) (string, bool)) {
	loc := v.loc
	bad := v.bad
	at := func(table, key string) int { return loc.line(table, key) }

	if c.Journal.Path == "" {
		c.Journal.Path = defaultJournal
	}
	c.Journal.Path = c.resolve(c.Journal.Path)
	if c.Journal.CheckpointInterval == 0 {
		c.Journal.CheckpointInterval = Duration(defaultCheckpoint)
	} else if c.Journal.CheckpointInterval < Duration(time.Minute) {
		bad(at("journal", "checkpoint_interval"), "journal.checkpoint_interval", "must be at least 1m (got %s)", time.Duration(c.Journal.CheckpointInterval))
	}
	if c.Journal.CheckpointRetention == 0 {
		c.Journal.CheckpointRetention = Duration(defaultCPRetention)
	} else if c.Journal.CheckpointRetention < Duration(time.Hour) {
		bad(at("journal", "checkpoint_retention"), "journal.checkpoint_retention", "must be at least 1h (got %s)", time.Duration(c.Journal.CheckpointRetention))
	}
	c.Log.File = c.resolve(c.Log.File)
	switch strings.ToLower(c.Log.Level) {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
		c.Log.Level = strings.ToLower(c.Log.Level)
	default:
		bad(at("log", "level"), "log.level", "must be one of debug, info, warn, error (got %q)", c.Log.Level)
	}
	if c.Log.MaxSizeMB == 0 {
		c.Log.MaxSizeMB = DefaultLogMaxSizeMB
	} else if c.Log.MaxSizeMB < 1 || c.Log.MaxSizeMB > 100_000 {
		bad(at("log", "max_size_mb"), "log.max_size_mb", "must be between 1 and 100000 megabytes (got %d)", c.Log.MaxSizeMB)
	}
	if c.Log.MaxBackups == 0 {
		c.Log.MaxBackups = DefaultLogMaxBackups
	} else if c.Log.MaxBackups < 1 || c.Log.MaxBackups > 10_000 {
		bad(at("log", "max_backups"), "log.max_backups", "must be between 1 and 10000 files (got %d)", c.Log.MaxBackups)
	}
	if c.Log.MaxAgeDays < 0 || c.Log.MaxAgeDays > 36_500 {
		bad(at("log", "max_age_days"), "log.max_age_days", "must be between 0 (keep by count only) and 36500 days (got %d)", c.Log.MaxAgeDays)
	}

	u := &c.Upload
	if u.MaxConcurrentUploads == 0 {
		u.MaxConcurrentUploads = defaultWorkers
	} else if u.MaxConcurrentUploads < 1 || u.MaxConcurrentUploads > 256 {
		bad(at("upload", "max_concurrent_uploads"), "upload.max_concurrent_uploads", "must be between 1 and 256 (got %d)", u.MaxConcurrentUploads)
	}
	if u.MaxChunkSize == 0 {
		u.MaxChunkSize = defaultChunkSize
	} else if u.MaxChunkSize < minChunkSize || u.MaxChunkSize > maxChunkSize {
		bad(at("upload", "max_chunk_size"), "upload.max_chunk_size", "must be between %s and %s (got %s)", Size(minChunkSize), Size(maxChunkSize), u.MaxChunkSize)
	}
	if u.MaxInflightBytes == 0 {
		u.MaxInflightBytes = Size(int64(u.MaxConcurrentUploads) * int64(u.MaxChunkSize))
	} else if u.MaxInflightBytes < u.MaxChunkSize {
		bad(at("upload", "max_inflight_bytes"), "upload.max_inflight_bytes", "must be at least max_chunk_size (%s), got %s", u.MaxChunkSize, u.MaxInflightBytes)
	}
	if u.OrphanUploadTTL == 0 {
		u.OrphanUploadTTL = Duration(defaultOrphanTTL)
	} else if u.OrphanUploadTTL < 0 {
		bad(at("upload", "orphan_upload_ttl"), "upload.orphan_upload_ttl", "must be positive")
	}
	b := &u.Breaker
	if b.FailureThreshold == 0 {
		b.FailureThreshold = 5
	} else if b.FailureThreshold < 1 || b.FailureThreshold > 1000 {
		bad(at("upload.breaker", "failure_threshold"), "upload.breaker.failure_threshold", "must be between 1 and 1000 (got %d)", b.FailureThreshold)
	}
	if b.OpenTimeout == 0 {
		b.OpenTimeout = Duration(30 * time.Second)
	} else if b.OpenTimeout < Duration(time.Second) {
		bad(at("upload.breaker", "open_timeout"), "upload.breaker.open_timeout", "must be at least 1s")
	}
	if b.HalfOpenProbes == 0 {
		b.HalfOpenProbes = 1
	} else if b.HalfOpenProbes < 1 || b.HalfOpenProbes > 100 {
		bad(at("upload.breaker", "half_open_probes"), "upload.breaker.half_open_probes", "must be between 1 and 100 (got %d)", b.HalfOpenProbes)
	}
	r := &u.Retry
	if r.Attempts == 0 {
		r.Attempts = defaultRetryTries
	} else if r.Attempts < 1 || r.Attempts > 100 {
		bad(at("upload.retry", "attempts"), "upload.retry.attempts", "must be between 1 and 100 (got %d)", r.Attempts)
	}
	if r.InitialDelay == 0 {
		r.InitialDelay = Duration(defaultRetryFirst)
	} else if r.InitialDelay < 0 {
		bad(at("upload.retry", "initial_delay"), "upload.retry.initial_delay", "must be positive")
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = Duration(defaultRetryMaxGap)
	} else if r.MaxDelay < r.InitialDelay {
		bad(at("upload.retry", "max_delay"), "upload.retry.max_delay", "must not be below initial_delay")
	}

	if c.Metrics.Listen == nil {
		l := DefaultMetricsListen
		c.Metrics.Listen = &l
	} else if l := *c.Metrics.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			bad(at("metrics", "listen"), "metrics.listen", "must be host:port, such as 127.0.0.1:9464, or \"\" to disable (got %q)", l)
		}
	}
	if len(c.Target) == 0 {
		bad(0, "target", "no targets: add at least one [target.NAME] section")
	}
	names := make([]string, 0, len(c.Target))
	for name := range c.Target {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := c.Target[name]
		tbl := "target." + name
		key := func(k string) string { return tbl + "." + k }
		switch t.Type {
		case "s3":
			for k, v := range map[string]string{"endpoint": t.Endpoint, "bucket": t.Bucket, "access_key_env": t.AccessKeyEnv, "secret_key_env": t.SecretKeyEnv} {
				if v == "" {
					bad(loc.table(tbl), key(k), "required for an s3 target")
				}
			}
			if t.Path != "" {
				bad(at(tbl, "path"), key("path"), "applies only to fs targets")
			}
			if t.Endpoint != "" {
				if eu, err := url.Parse(t.Endpoint); err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
					bad(at(tbl, "endpoint"), key("endpoint"), "must be an http:// or https:// URL (got %q)", t.Endpoint)
				}
			}
			if t.Region == "" {
				t.Region = defaultRegion
			}
			if strings.HasPrefix(t.Prefix, "/") || (t.Prefix != "" && !strings.HasSuffix(t.Prefix, "/")) {
				bad(at(tbl, "prefix"), key("prefix"), "must be empty or a relative path ending in / (got %q)", t.Prefix)
			}
			t.creds = &credentials{}
			for _, e := range []struct {
				k, name string
				dst     *Secret
			}{{"access_key_env", t.AccessKeyEnv, &t.creds.access}, {"secret_key_env", t.SecretKeyEnv, &t.creds.secret}} {
				if e.name == "" {
					continue
				}
				v, ok := lookupEnv(e.name)
				if !ok || v == "" {
					bad(at(tbl, e.k), key(e.k), "environment variable %s is not set (it must hold the credential; the TOML only names it)", e.name)
				}
				*e.dst = Secret(v)
			}
		case "fs":
			if t.Path == "" {
				bad(loc.table(tbl), key("path"), "required for an fs target")
			}
			for k, v := range map[string]string{"endpoint": t.Endpoint, "bucket": t.Bucket, "region": t.Region, "access_key_env": t.AccessKeyEnv, "secret_key_env": t.SecretKeyEnv} {
				if v != "" {
					bad(at(tbl, k), key(k), "applies only to s3 targets")
				}
			}
			if strings.HasPrefix(t.Prefix, "/") || (t.Prefix != "" && !strings.HasSuffix(t.Prefix, "/")) {
				bad(at(tbl, "prefix"), key("prefix"), "must be empty or a relative path ending in / (got %q)", t.Prefix)
			}
			t.Path = c.resolve(t.Path)
		case "":
			bad(loc.table(tbl), key("type"), `required: "s3" or "fs"`)
		default:
			bad(at(tbl, "type"), key("type"), `must be "s3" or "fs" (got %q)`, t.Type)
		}
		if t.Type == "s3" && u.MaxChunkSize < minS3PartSize {
			bad(at("upload", "max_chunk_size"), "upload.max_chunk_size", "must be at least 5MiB with an s3 target (%s: S3's minimum part size), got %s", name, u.MaxChunkSize)
		}
		c.Target[name] = t
	}

	if len(c.Watch) == 0 {
		bad(0, "watch", "no watches: add at least one [[watch]] section")
	}
	seen := map[string]int{}
	for i := range c.Watch {
		w := &c.Watch[i]
		tbl := fmt.Sprintf("watch[%d]", i+1)
		line := func(k string) int { return loc.arrayLine("watch", i, k) }
		if w.Path == "" {
			bad(loc.arrayLine("watch", i, ""), tbl+".path", "required")
		} else {
			w.Path = c.resolve(w.Path)
			if fi, err := os.Stat(w.Path); err != nil {
				bad(line("path"), tbl+".path", "watch path %s does not exist or cannot be read: %v", w.Path, unwrapPath(err))
			} else if !fi.IsDir() {
				bad(line("path"), tbl+".path", "watch path %s is not a folder", w.Path)
			}
			if j, dup := seen[filepath.Clean(w.Path)]; dup {
				bad(line("path"), tbl+".path", "the same folder is already watched by watch[%d]", j+1)
			}
			seen[filepath.Clean(w.Path)] = i
		}
		if w.Target == "" {
			bad(loc.arrayLine("watch", i, ""), tbl+".target", "required: the name of a [target.NAME] section")
		} else if _, ok := c.Target[w.Target]; !ok {
			bad(line("target"), tbl+".target", "no target named %q (targets: %s)", w.Target, strings.Join(names, ", "))
		}
		if w.Settle == 0 {
			w.Settle = Duration(watcher.DefaultSettle)
		} else if w.Settle < 0 {
			bad(line("settle"), tbl+".settle", "must be positive")
		}
		if w.RescanInterval == 0 {
			w.RescanInterval = Duration(watcher.DefaultRescanInterval)
		} else if w.RescanInterval < Duration(time.Second) {
			bad(line("rescan_interval"), tbl+".rescan_interval", "must be at least 1s")
		}
		if p, err := uploader.ParseOnChange(w.OnChange); err != nil {
			bad(line("on_change"), tbl+".on_change", "%v", err)
		} else {
			w.OnChange = string(p)
		}
		if w.Recursive == nil {
			t := true
			w.Recursive = &t
		}
		if len(w.Include) == 0 {
			w.Include = []string{"**/*"}
		}
		for k, globs := range map[string][]string{"include": w.Include, "exclude": w.Exclude} {
			for _, g := range globs {
				if !doublestar.ValidatePattern(g) || strings.Contains(g, "\\") {
					bad(line(k), tbl+"."+k, "invalid glob %q (doublestar syntax, / as separator)", g)
				}
			}
		}
	}
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
