package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/bmatcuk/doublestar/v4"

	"github.com/ferry-data/ferry/uploader"
	"github.com/ferry-data/ferry/uploader/sink/gate"
	"github.com/ferry-data/ferry/uploader/sink/retry"
	"github.com/ferry-data/ferry/uploader/sink/s3sink"
	"github.com/ferry-data/ferry/watcher"
)

// checker collects the problems of one file, each at its line.
type checker struct {
	file string
	loc  *locator
	md   toml.MetaData
	errs Errors
	// warns are what ferry runs with but a person should know (a watch
	// folder not there now).
	warns Errors
}

// defined says whether table.key is written in the file (an explicit zero
// is then a value, not "use the default").
func (v *checker) defined(table, key string) bool {
	return v.md.IsDefined(append(strings.Split(table, "."), key)...)
}

// zero reports table.key when it is written (its value being zero, which
// the caller knows): a zero that makes no sense is an error, never the
// default in disguise. It says whether it reported.
func (v *checker) zero(table, key string, allowed string) bool {
	if v.defined(table, key) {
		v.badKey(table, key, "must not be 0: %s (leave the key out for the default)", allowed)
		return true
	}
	return false
}

// bad records a problem with key at line.
func (v *checker) bad(line int, key, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// warn records something ferry runs with but a person should know.
func (v *checker) warn(line int, key, format string, args ...any) {
	v.warns = append(v.warns, &Error{File: v.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// badKey records a problem with table.key, at its line (or its table's).
func (v *checker) badKey(table, key, format string, args ...any) {
	v.bad(v.loc.line(table, key), table+"."+key, format, args...)
}

// intIn fills a left-out integer table.key with def, and reports one
// outside [lo, hi] (unit names what it counts, after the bounds).
func (v *checker) intIn(p *int, def, lo, hi int, table, key, unit string) {
	if *p == 0 && v.defined(table, key) {
		v.badKey(table, key, "must be between %d and %d%s (got 0; leave the key out for the default, %d)", lo, hi, unit, def)
	} else if *p == 0 {
		*p = def
	} else if *p < lo || *p > hi {
		v.badKey(table, key, "must be between %d and %d%s (got %d)", lo, hi, unit, *p)
	}
}

// validate fills in the defaults of c, resolves its paths and reports
// every problem, section by section.
func (c *Config) validate(v *checker, lookupEnv func(string) (string, bool)) {
	c.validateJournal(v)
	c.validateLog(v)
	c.Upload.validate(v)
	c.Metrics.validate(v)
	names := c.validateTargets(v, lookupEnv)
	c.validateMetadata(v)
	c.validateWatches(v, names)
	c.validateMoves(v)
	c.validateNotify(v, lookupEnv)
	c.validateOverlaps(v)
	c.validateArchiveOverlap(v)
}

// validateJournal checks [journal].
func (c *Config) validateJournal(v *checker) {
	j := &c.Journal
	if j.Path == "" {
		j.Path = DefaultJournal
	}
	j.Path = c.resolve(j.Path)
	if j.CheckpointInterval == 0 && !v.zero("journal", "checkpoint_interval", "at least 1m") {
		j.CheckpointInterval = Duration(DefaultCheckpointInterval)
	} else if j.CheckpointInterval < Duration(time.Minute) {
		v.badKey("journal", "checkpoint_interval", "must be at least 1m (got %s)", time.Duration(j.CheckpointInterval))
	}
	if j.CheckpointRetention == 0 && !v.zero("journal", "checkpoint_retention", "at least 1h") {
		j.CheckpointRetention = Duration(DefaultCheckpointRetention)
	} else if j.CheckpointRetention < Duration(time.Hour) {
		v.badKey("journal", "checkpoint_retention", "must be at least 1h (got %s)", time.Duration(j.CheckpointRetention))
	}
	c.validateArchive(v)
}

// validateLog checks [log].
func (c *Config) validateLog(v *checker) {
	l := &c.Log
	l.File = c.resolve(l.File)
	switch strings.ToLower(l.Level) {
	case "":
		l.Level = DefaultLogLevel
	case "debug", "info", "warn", "error":
		l.Level = strings.ToLower(l.Level)
	default:
		v.badKey("log", "level", "must be one of debug, info, warn, error (got %q)", l.Level)
	}
	v.intIn(&l.MaxSizeMB, DefaultLogMaxSizeMB, 1, 100_000, "log", "max_size_mb", " megabytes")
	v.intIn(&l.MaxBackups, DefaultLogMaxBackups, 1, 10_000, "log", "max_backups", " files")
	if l.MaxAgeDays < 0 || l.MaxAgeDays > 36_500 {
		v.badKey("log", "max_age_days", "must be between 0 (keep by count only) and 36500 days (got %d)", l.MaxAgeDays)
	}
}

// validate checks [upload], [upload.breaker] and [upload.retry].
func (u *UploadConfig) validate(v *checker) {
	v.intIn(&u.MaxConcurrentUploads, uploader.DefaultWorkers, 1, 256, "upload", "max_concurrent_uploads", "")
	if u.MaxChunkSize == 0 && !v.zero("upload", "max_chunk_size", fmt.Sprintf("between %s and %s", Size(minChunkSize), Size(maxChunkSize))) {
		u.MaxChunkSize = uploader.DefaultChunkSize
	} else if u.MaxChunkSize < minChunkSize || u.MaxChunkSize > maxChunkSize {
		v.badKey("upload", "max_chunk_size", "must be between %s and %s (got %s)", Size(minChunkSize), Size(maxChunkSize), u.MaxChunkSize)
	}
	if u.MaxInflightBytes == 0 && !v.zero("upload", "max_inflight_bytes", "at least max_chunk_size") {
		u.MaxInflightBytes = Size(int64(u.MaxConcurrentUploads) * int64(u.MaxChunkSize))
	} else if u.MaxInflightBytes < u.MaxChunkSize {
		v.badKey("upload", "max_inflight_bytes", "must be at least max_chunk_size (%s), got %s", u.MaxChunkSize, u.MaxInflightBytes)
	}
	if u.OrphanUploadTTL == 0 && !v.zero("upload", "orphan_upload_ttl", "a positive duration such as \"24h\"") {
		u.OrphanUploadTTL = Duration(DefaultOrphanUploadTTL)
	} else if u.OrphanUploadTTL < 0 {
		v.badKey("upload", "orphan_upload_ttl", "must be positive")
	}
	u.Breaker.validate(v)
	u.Retry.validate(v)
}

// validate checks [upload.breaker].
func (b *BreakerConfig) validate(v *checker) {
	const table = "upload.breaker"
	v.intIn(&b.FailureThreshold, gate.DefaultFailureThreshold, 1, 1000, table, "failure_threshold", "")
	if b.OpenTimeout == 0 && !v.zero(table, "open_timeout", "at least 1s") {
		b.OpenTimeout = Duration(gate.DefaultOpenTimeout)
	} else if b.OpenTimeout < Duration(time.Second) {
		v.badKey(table, "open_timeout", "must be at least 1s")
	}
	v.intIn(&b.HalfOpenProbes, gate.DefaultHalfOpenProbes, 1, 100, table, "half_open_probes", "")
}

// validate checks [upload.retry].
func (r *RetryConfig) validate(v *checker) {
	const table = "upload.retry"
	v.intIn(&r.Attempts, retry.DefaultAttempts, 1, 100, table, "attempts", "")
	if r.InitialDelay == 0 && !v.zero(table, "initial_delay", "a positive duration such as \"1s\"") {
		r.InitialDelay = Duration(retry.DefaultInitialDelay)
	} else if r.InitialDelay < 0 {
		v.badKey(table, "initial_delay", "must be positive")
	}
	if r.MaxDelay == 0 && !v.zero(table, "max_delay", "at least initial_delay") {
		r.MaxDelay = Duration(retry.DefaultMaxDelay)
	} else if r.MaxDelay < r.InitialDelay {
		v.badKey(table, "max_delay", "must not be below initial_delay")
	}
}

// validate checks [metrics].
func (m *MetricsConfig) validate(v *checker) {
	if m.Listen == nil {
		l := DefaultMetricsListen
		m.Listen = &l
	} else if l := *m.Listen; l != "" {
		if _, port, err := net.SplitHostPort(l); err != nil {
			v.badKey("metrics", "listen", "must be host:port, such as %s, or \"\" to disable (got %q)", DefaultMetricsListen, l)
		} else if msg := checkPort(port); msg != "" && port != "0" {
			// Port 0 lets the system pick a free port; ferry logs the
			// address it serves at ("serving metrics").
			v.badKey("metrics", "listen", "%s, or 0 for any free port (got %q)", msg, l)
		}
	}
}

// validateTargets checks every [target.NAME] and returns the names, sorted.
func (c *Config) validateTargets(v *checker, lookupEnv func(string) (string, bool)) []string {
	if len(c.Target) == 0 {
		v.bad(0, "target", "no targets: add at least one [target.NAME] section")
	}
	names := make([]string, 0, len(c.Target))
	for name := range c.Target {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := c.Target[name]
		c.validateTarget(v, name, &t, lookupEnv)
		c.Target[name] = t
	}
	return names
}

// validateTarget checks one [target.NAME].
func (c *Config) validateTarget(v *checker, name string, t *TargetConfig, lookupEnv func(string) (string, bool)) {
	tbl := "target." + name
	switch t.Type {
	case "s3":
		t.CredentialsFile = c.resolve(t.CredentialsFile)
		t.validateS3(v, tbl, lookupEnv)
		if c.Upload.MaxChunkSize < s3sink.MinPartSize {
			v.badKey("upload", "max_chunk_size", "must be at least %s with an s3 target (%s: S3's minimum part size), got %s",
				Size(s3sink.MinPartSize), name, c.Upload.MaxChunkSize)
		}
	case "fs":
		t.validateFS(v, tbl)
		t.Path = c.resolve(t.Path)
	case "":
		v.bad(v.loc.table(tbl), tbl+".type", `required: "s3" or "fs"`)
	default:
		v.badKey(tbl, "type", `must be "s3" or "fs" (got %q)`, t.Type)
	}
}

// validateS3 checks an s3 target and reads its credentials.
func (t *TargetConfig) validateS3(v *checker, tbl string, lookupEnv func(string) (string, bool)) {
	if t.CredentialsFile != "" {
		// With a credentials file, the names default to the usual ones.
		if t.AccessKeyEnv == "" {
			t.AccessKeyEnv = DefaultAccessKeyName
		}
		if t.SecretKeyEnv == "" {
			t.SecretKeyEnv = DefaultSecretKeyName
		}
		file := readCredentialsFile(v, tbl, t.CredentialsFile)
		env := lookupEnv
		lookupEnv = func(name string) (string, bool) {
			if value, ok := file[name]; ok {
				return value, true
			}
			return env(name)
		}
	}
	for _, k := range []struct{ key, value string }{
		{"endpoint", t.Endpoint}, {"bucket", t.Bucket}, {"access_key_env", t.AccessKeyEnv}, {"secret_key_env", t.SecretKeyEnv},
	} {
		if k.value == "" {
			v.bad(v.loc.table(tbl), tbl+"."+k.key, "required for an s3 target")
		}
	}
	if t.Path != "" {
		v.badKey(tbl, "path", "applies only to fs targets")
	}
	if t.FileMode != "" {
		v.badKey(tbl, "file_mode", "applies only to fs targets (an object store sets no file modes)")
	}
	if t.Endpoint != "" {
		eu, err := url.Parse(t.Endpoint)
		switch {
		case err == nil && eu.User != nil, strings.Contains(t.Endpoint, "@"):
			// Never echoed: the value holds a key, a secret or both.
			v.badKey(tbl, "endpoint", "credentials in the URL: remove them (user:password@) and name the credentials with access_key_env and secret_key_env or credentials_file")
			t.Endpoint = RedactURL(t.Endpoint)
		case err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "":
			v.badKey(tbl, "endpoint", "must be an http:// or https:// URL (got %q)", t.Endpoint)
		default:
			if msg := checkPort(eu.Port()); msg != "" {
				v.badKey(tbl, "endpoint", "%s (got %q)", msg, t.Endpoint)
			}
		}
	}
	if t.Region == "" {
		t.Region = s3sink.DefaultRegion
	}
	t.validatePrefix(v, tbl)
	t.creds = &credentials{}
	for _, e := range []struct {
		key, name string
		dst       *Secret
	}{{"access_key_env", t.AccessKeyEnv, &t.creds.access}, {"secret_key_env", t.SecretKeyEnv, &t.creds.secret}} {
		if e.name == "" {
			continue
		}
		value, ok := lookupEnv(e.name)
		if !ok || value == "" {
			if t.CredentialsFile != "" {
				v.badKey(tbl, e.key, "%s is neither in credentials_file %s nor in the environment", e.name, t.CredentialsFile)
			} else {
				v.badKey(tbl, e.key, "environment variable %s is not set (it must hold the credential; the TOML only names it)", e.name)
			}
		}
		*e.dst = Secret(value)
	}
}

// validateFS checks an fs target.
func (t *TargetConfig) validateFS(v *checker, tbl string) {
	if t.Path == "" {
		v.bad(v.loc.table(tbl), tbl+".path", "required for an fs target")
	}
	for _, k := range []struct{ key, value string }{
		{"endpoint", t.Endpoint}, {"bucket", t.Bucket}, {"region", t.Region}, {"access_key_env", t.AccessKeyEnv}, {"secret_key_env", t.SecretKeyEnv},
		{"credentials_file", t.CredentialsFile},
	} {
		if k.value != "" {
			v.badKey(tbl, k.key, "applies only to s3 targets")
		}
	}
	t.validatePrefix(v, tbl)
	if t.FileMode == "" {
		t.FileMode = "0644" // the documented default, shown by config check
	}
	{
		m, err := strconv.ParseUint(t.FileMode, 8, 32)
		switch {
		case err != nil || !strings.HasPrefix(t.FileMode, "0") || len(t.FileMode) != 4:
			v.badKey(tbl, "file_mode", "must be four octal digits such as \"0644\" or \"0640\" (got %q)", t.FileMode)
		case m&0o600 != 0o600:
			v.badKey(tbl, "file_mode", "must let the owner read and write (ferry rewrites what it wrote; got %q)", t.FileMode)
		case m&0o111 != 0:
			v.badKey(tbl, "file_mode", "must not make archived files executable (got %q)", t.FileMode)
		default:
			t.mode = fs.FileMode(m)
		}
	}
}

// validatePrefix checks a target's prefix: empty, or relative and ending in /.
func (t *TargetConfig) validatePrefix(v *checker, tbl string) {
	if strings.HasPrefix(t.Prefix, "/") || (t.Prefix != "" && !strings.HasSuffix(t.Prefix, "/")) {
		v.badKey(tbl, "prefix", "must be empty or a relative path ending in / (got %q)", t.Prefix)
		return
	}
	if t.Prefix == "" {
		return
	}
	for _, seg := range strings.Split(strings.TrimSuffix(t.Prefix, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." || strings.Contains(seg, "\\") {
			v.badKey(tbl, "prefix", "must be folder names separated by / without empty, . or .. parts or backslashes (got %q)", t.Prefix)
			return
		}
	}
	if first, _, _ := strings.Cut(t.Prefix, "/"); strings.EqualFold(first, "_ferry") {
		v.badKey(tbl, "prefix", "must not start with _ferry/, where ferry keeps its own files on every target (got %q)", t.Prefix)
	}
}

// validateWatches checks every [[watch]]; targets are the target names.
func (c *Config) validateWatches(v *checker, targets []string) {
	if len(c.Watch) == 0 {
		v.bad(0, "watch", "no watches: add at least one [[watch]] section")
	}
	seen := map[string]int{} // folder -> index of the watch that has it
	for i := range c.Watch {
		c.validateWatch(v, i, seen, targets)
	}
}

// validateWatch checks the i-th [[watch]].
func (c *Config) validateWatch(v *checker, i int, seen map[string]int, targets []string) {
	w := &c.Watch[i]
	tbl := fmt.Sprintf("watch[%d]", i+1)
	line := func(k string) int { return v.loc.arrayLine("watch", i, k) }
	if w.Path == "" {
		v.bad(line(""), tbl+".path", "required")
	} else {
		w.Path = c.resolve(w.Path)
		if fi, err := os.Stat(w.Path); err != nil {
			// A state of the watch, not an error: a share not mounted
			// yet, a folder the instrument makes. The other watches must
			// not wait for it (the watch is down until it appears).
			v.warn(line("path"), tbl+".path", "watch path %s is not there now (%v): ferry starts without it and takes its files once it appears", w.Path, unwrapPath(err))
		} else if !fi.IsDir() {
			v.bad(line("path"), tbl+".path", "watch path %s is not a folder", w.Path)
		}
		if j, dup := seen[filepath.Clean(w.Path)]; dup {
			v.bad(line("path"), tbl+".path", "the same folder is already watched by watch[%d]", j+1)
		}
		seen[filepath.Clean(w.Path)] = i
	}
	if w.Target == "" {
		v.bad(line(""), tbl+".target", "required: the name of a [target.NAME] section")
	} else if !slices.Contains(targets, w.Target) {
		v.bad(line("target"), tbl+".target", "no target named %q (targets: %s)", w.Target, strings.Join(targets, ", "))
	}
	written := func(k string) bool { return v.loc.arrayKey("watch", i, k) }
	switch {
	case w.Settle == 0 && written("settle"):
		v.bad(line("settle"), tbl+".settle", "must be between %s and %s (got 0; leave the key out for the default, %s)", minSettle, maxSettle, watcher.DefaultSettle)
	case w.Settle == 0:
		w.Settle = Duration(watcher.DefaultSettle)
	case w.Settle < Duration(minSettle) || w.Settle > Duration(maxSettle):
		v.bad(line("settle"), tbl+".settle", "must be between %s and %s (got %s)", minSettle, maxSettle, time.Duration(w.Settle))
	}
	if w.RescanInterval == 0 && written("rescan_interval") {
		v.bad(line("rescan_interval"), tbl+".rescan_interval", "must be at least 1s (got 0; leave the key out for the default, %s)", watcher.DefaultRescanInterval)
	} else if w.RescanInterval == 0 {
		w.RescanInterval = Duration(watcher.DefaultRescanInterval)
	} else if w.RescanInterval < Duration(time.Second) {
		v.bad(line("rescan_interval"), tbl+".rescan_interval", "must be at least 1s")
	}
	switch {
	case w.MaxOpenWait == 0 && written("max_open_wait"):
		v.bad(line("max_open_wait"), tbl+".max_open_wait", "must be at least the settle period (got 0; leave the key out for the default, %s)", watcher.DefaultMaxOpenWait)
	case w.MaxOpenWait == 0:
		w.MaxOpenWait = Duration(watcher.DefaultMaxOpenWait)
	case w.MaxOpenWait < w.Settle:
		v.bad(line("max_open_wait"), tbl+".max_open_wait", "must be at least the settle period %s (got %s)", time.Duration(w.Settle), time.Duration(w.MaxOpenWait))
	}
	if p, err := uploader.ParseOnChange(w.OnChange); err != nil {
		v.bad(line("on_change"), tbl+".on_change", "%v", err)
	} else {
		w.OnChange = string(p)
	}
	if w.Recursive == nil {
		t := true
		w.Recursive = &t
	}
	c.validateWatchMetadata(v, w, tbl, line)
	w.validateDataset(v, tbl, line, c.resolve)
	w.validateMode(v, tbl, line, written)
	if len(w.Include) == 0 {
		w.Include = []string{"**/*"}
	}
	for _, k := range []struct {
		key   string
		globs []string
	}{{"include", w.Include}, {"exclude", w.Exclude}} {
		for _, g := range k.globs {
			if !doublestar.ValidatePattern(g) || strings.Contains(g, "\\") {
				v.bad(line(k.key), tbl+"."+k.key, "invalid glob %q (doublestar syntax, / as separator)", g)
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

// checkPort is "" for an empty port or one in 1..65535, else the problem.
func checkPort(port string) string {
	if port == "" {
		return ""
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "the port must be between 1 and 65535"
	}
	return ""
}

// RedactURL is u without the user-info part (user:password@), for any
// text that may be shown or recorded; a value that does not parse is
// cut at its last @.
func RedactURL(u string) string {
	if eu, err := url.Parse(u); err == nil {
		if eu.User == nil {
			return u
		}
		eu.User = url.User("REDACTED")
		return eu.String()
	}
	if i := strings.LastIndex(u, "@"); i >= 0 {
		return "REDACTED@" + u[i+1:]
	}
	return u
}

var userinfoRE = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@"'<>]+@`)

// RedactText removes the user-info part of every URL in s (scheme://user:password@host):
// a defence for text that reaches people or the audit log.
func RedactText(s string) string {
	return userinfoRE.ReplaceAllString(s, "${1}REDACTED@")
}
