package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/bmatcuk/doublestar/v4"

	"github.com/ferry-data/ferry/uploader"
	"github.com/ferry-data/ferry/watcher"
)

// Config is ferry.toml.
type Config struct {
	Journal JournalConfig           `toml:"journal"`
	Log     LogConfig               `toml:"log"`
	Upload  UploadConfig            `toml:"upload"`
	Target  map[string]TargetConfig `toml:"target"`
	Watch   []WatchConfig           `toml:"watch"`
	Metrics MetricsConfig           `toml:"metrics"`

	file string // absolute path of the config file
	sum  string // SHA-256 of its bytes
}

// JournalConfig is [journal].
type JournalConfig struct {
	Path string `toml:"path"`
	// CheckpointInterval is how often a checkpoint of the chains is
	// taken and uploaded to every target (also after each completed batch).
	CheckpointInterval Duration `toml:"checkpoint_interval"`
	// CheckpointRetention is the S3 Object Lock retention of an uploaded
	// checkpoint, where the bucket has Object Lock enabled.
	CheckpointRetention Duration `toml:"checkpoint_retention"`
}

// MetricsConfig is [metrics].
type MetricsConfig struct {
	// Listen is where /metrics, /healthz and /status are served; nil means
	// the default (loopback), "" disables them.
	Listen *string `toml:"listen"`
}

// defaultMetricsListen is loopback: metrics are not for the network unless
// a person says so.
const defaultMetricsListen = "127.0.0.1:9464"

// LogConfig is [log].
type LogConfig struct {
	File  string `toml:"file"`
	Level string `toml:"level"`
	// Rotation of File: rotated at MaxSizeMB megabytes (default 100),
	// MaxBackups compressed old files kept (default 10), and, when
	// MaxAgeDays is set, none older than that (default 0: by count only).
	MaxSizeMB  int `toml:"max_size_mb"`
	MaxBackups int `toml:"max_backups"`
	MaxAgeDays int `toml:"max_age_days"`
}

// UploadConfig is [upload].
type UploadConfig struct {
	MaxConcurrentUploads int           `toml:"max_concurrent_uploads"`
	MaxChunkSize         Size          `toml:"max_chunk_size"`
	MaxInflightBytes     Size          `toml:"max_inflight_bytes"`
	MaxBandwidth         Rate          `toml:"max_bandwidth"`
	OrphanUploadTTL      Duration      `toml:"orphan_upload_ttl"`
	Retry                RetryConfig   `toml:"retry"`
	Breaker              BreakerConfig `toml:"breaker"`
}

// BreakerConfig is [upload.breaker].
type BreakerConfig struct {
	FailureThreshold int      `toml:"failure_threshold"`
	OpenTimeout      Duration `toml:"open_timeout"`
	HalfOpenProbes   int      `toml:"half_open_probes"`
}

// RetryConfig is [upload.retry].
type RetryConfig struct {
	Attempts     int      `toml:"attempts"`
	InitialDelay Duration `toml:"initial_delay"`
	MaxDelay     Duration `toml:"max_delay"`
}

// TargetConfig is one [target.NAME].
type TargetConfig struct {
	Type         string `toml:"type"`
	Endpoint     string `toml:"endpoint"`
	Bucket       string `toml:"bucket"`
	Region       string `toml:"region"`
	AccessKeyEnv string `toml:"access_key_env"`
	SecretKeyEnv string `toml:"secret_key_env"`
	Prefix       string `toml:"prefix"`
	Path         string `toml:"path"`

	// creds is a pointer so that printing a TargetConfig (%v, %+v, %#v)
	// shows an address, never the values.
	creds *credentials
}

type credentials struct {
	access, secret Secret
}

// WatchConfig is one [[watch]].
type WatchConfig struct {
	Path           string   `toml:"path"`
	Target         string   `toml:"target"`
	Settle         Duration `toml:"settle"`
	Recursive      *bool    `toml:"recursive"`
	Include        []string `toml:"include"`
	Exclude        []string `toml:"exclude"`
	RescanInterval Duration `toml:"rescan_interval"`
	OnChange       string   `toml:"on_change"`
}

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

// Secret holds a credential; it never prints.
type Secret string

func (Secret) String() string               { return "[redacted]" }
func (Secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (Secret) GoString() string             { return "[redacted]" }
func (s Secret) Reveal() string             { return string(s) }
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Size is a byte count written as an integer or as "16MiB", "512 KiB",
// "1GiB", "5MB".
type Size int64

var sizeRE = regexp.MustCompile(`^\s*([0-9]+)\s*([A-Za-z]*)\s*$`)

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
}

// ParseSize parses a size such as "16MiB".
func ParseSize(s string) (Size, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid size %q (use a number of bytes or units KiB, MiB, GiB)", s)
	}
	unit, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB)", s, m[2])
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > (1<<62)/unit {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return Size(n * unit), nil
}

// UnmarshalTOML accepts an integer or a string with a unit.
func (z *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("invalid size %d: negative", v)
		}
		*z = Size(v)
		return nil
	case string:
		s, err := ParseSize(v)
		*z = s
		return err
	}
	return fmt.Errorf("invalid size %v: want a string such as \"16MiB\" or a number of bytes", v)
}

func (z Size) String() string {
	for _, u := range []struct {
		n    int64
		name string
	}{{1 << 40, "TiB"}, {1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if int64(z) >= u.n && int64(z)%u.n == 0 {
			return fmt.Sprintf("%d%s", int64(z)/u.n, u.name)
		}
	}
	return fmt.Sprintf("%dB", int64(z))
}

// Rate is a byte rate written as "20MiB/s" (or a size, meant per second);
// 0 means no limit.
type Rate int64

// UnmarshalTOML accepts "20MiB/s", "20MiB", or a number of bytes per second.
func (r *Rate) UnmarshalTOML(v any) error {
	if s, ok := v.(string); ok {
		v = strings.TrimSuffix(strings.TrimSpace(s), "/s")
	}
	var z Size
	if err := z.UnmarshalTOML(v); err != nil {
		return fmt.Errorf("invalid rate %v: want a size per second such as \"20MiB/s\"", v)
	}
	*r = Rate(z)
	return nil
}

func (r Rate) String() string { return Size(r).String() + "/s" }

// Duration is a time.Duration written as "30s", "10m", "1h30m".
type Duration time.Duration

// UnmarshalTOML accepts a Go duration string.
func (d *Duration) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("invalid duration %v: want a string such as \"30s\" or \"10m\"", v)
	}
	x, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (use units such as 500ms, 30s, 10m, 1h)", s)
	}
	*d = Duration(x)
	return nil
}

// ConfigError is a problem with the configuration, at a place in the file.
type ConfigError struct {
	File string
	Line int // 0 when unknown
	Key  string
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ConfigErrors is every problem found, in file order.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

var lineRE = regexp.MustCompile(`line (\d+)`)

// LoadConfig reads, decodes and validates a config file. Environment
// variables named by the targets are read here (lookupEnv).
func LoadConfig(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, &ConfigError{File: path, Msg: fmt.Sprintf("cannot read the configuration: %v", err)}
	}
	c := &Config{file: abs, sum: sha256Hex(data)}
	md, err := toml.Decode(string(data), c)
	if err != nil {
		ce := &ConfigError{File: path, Msg: err.Error()}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			ce.Line, ce.Msg = pe.Position.Line, pe.Message
		} else if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
			ce.Line, _ = strconv.Atoi(m[1])
			ce.Msg = strings.TrimPrefix(err.Error(), "toml: ")
		}
		return nil, ce
	}
	loc := newLocator(data)
	var errs ConfigErrors
	for _, k := range md.Undecoded() {
		line, name := loc.keyLine(k)
		errs = append(errs, &ConfigError{File: path, Line: line, Key: name, Msg: "unknown key"})
	}
	errs = append(errs, c.validate(path, loc, lookupEnv)...)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(a, b int) bool { return errs[a].Line < errs[b].Line })
		return nil, errs
	}
	return c, nil
}

func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.file), filepath.FromSlash(p))
}

func (c *Config) validate(file string, loc *locator, lookupEnv func(string) (string, bool)) ConfigErrors {
	var errs ConfigErrors
	bad := func(line int, key, format string, args ...any) {
		errs = append(errs, &ConfigError{File: file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
	}
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
		c.Log.MaxSizeMB = defaultLogMaxSizeMB
	} else if c.Log.MaxSizeMB < 1 || c.Log.MaxSizeMB > 100_000 {
		bad(at("log", "max_size_mb"), "log.max_size_mb", "must be between 1 and 100000 megabytes (got %d)", c.Log.MaxSizeMB)
	}
	if c.Log.MaxBackups == 0 {
		c.Log.MaxBackups = defaultLogMaxBackups
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
		l := defaultMetricsListen
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
	return errs
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// locator finds the line of a key, since toml.MetaData has no positions.
type locator struct {
	lines []string
}

func newLocator(data []byte) *locator {
	var l locator
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l.lines = append(l.lines, sc.Text())
	}
	return &l
}

var headerRE = regexp.MustCompile(`^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?`)
var keyRE = regexp.MustCompile(`^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-.]+)\s*=`)

func normTable(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// scan calls fn for every key line with its table name and array index.
func (l *locator) scan(fn func(line int, table string, index int, key string, header bool) bool) {
	table, counts, index := "", map[string]int{}, 0
	for i, s := range l.lines {
		if m := headerRE.FindStringSubmatch(s); m != nil {
			table = normTable(m[2])
			index = 0
			if m[1] == "[[" {
				index = counts[table]
				counts[table]++
			}
			if fn(i+1, table, index, "", true) {
				return
			}
			continue
		}
		if m := keyRE.FindStringSubmatch(s); m != nil {
			if fn(i+1, table, index, normTable(m[1]), false) {
				return
			}
		}
	}
}

// line is the line of key in table (or of the table header when the key is
// absent), 0 when neither is found.
func (l *locator) line(table, key string) int {
	found, header := 0, 0
	l.scan(func(line int, t string, _ int, k string, isHeader bool) bool {
		switch {
		case isHeader && t == table && header == 0:
			header = line
		case !isHeader && t == table && k == key:
			found = line
			return true
		}
		return false
	})
	if found > 0 {
		return found
	}
	// A dotted key at top level or in a parent table: upload.retry.attempts.
	l.scan(func(line int, t string, _ int, k string, isHeader bool) bool {
		full := k
		if t != "" {
			full = t + "." + k
		}
		if !isHeader && full == table+"."+key {
			found = line
			return true
		}
		return false
	})
	if found > 0 {
		return found
	}
	return header
}

func (l *locator) table(table string) int { return l.line(table, "\x00") }

// arrayLine is the line of key in the index-th [[table]] (its header when
// key is "" or absent).
func (l *locator) arrayLine(table string, index int, key string) int {
	found, header := 0, 0
	l.scan(func(line int, t string, i int, k string, isHeader bool) bool {
		if t != table || i != index {
			return false
		}
		if isHeader {
			header = line
			return key == ""
		}
		if k == key {
			found = line
			return true
		}
		return false
	})
	if found > 0 {
		return found
	}
	return header
}

// keyLine locates an undecoded key reported by toml.MetaData and names it
// as the user wrote it ("watch[2].setle").
func (l *locator) keyLine(k toml.Key) (int, string) {
	if len(k) == 0 {
		return 0, ""
	}
	// [[watch]] keys come without an index: find the first occurrence.
	if k[0] == "watch" && len(k) >= 2 {
		found, index := 0, 0
		rest := strings.Join(k[1:], ".")
		l.scan(func(line int, t string, i int, key string, isHeader bool) bool {
			if !isHeader && t == "watch" && key == rest {
				found, index = line, i
				return true
			}
			return false
		})
		return found, fmt.Sprintf("watch[%d].%s", index+1, rest)
	}
	return l.line(strings.Join(k[:len(k)-1], "."), k[len(k)-1]), k.String()
}
