// Package config is ferry's configuration: the TOML file's types, their
// parsing (BurntSushi/toml), the defaults of left-out keys and the
// validation of every section. Every problem is reported with the file and
// line it concerns (Error), all of them at once (Errors), so that a person
// fixes the file in one pass. A Config that Load returns is complete:
// defaults filled in, relative paths resolved against the file's folder,
// credentials read from the environment variables the targets name.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ferry-data/ferry/dataset"
)

// Config is ferry.toml.
type Config struct {
	Journal JournalConfig           `toml:"journal"`
	Log     LogConfig               `toml:"log"`
	Upload  UploadConfig            `toml:"upload"`
	Target  map[string]TargetConfig `toml:"target"`
	Watch   []WatchConfig           `toml:"watch"`
	Metrics MetricsConfig           `toml:"metrics"`
	Notify  []NotifyConfig          `toml:"notify"`
	// Metadata profiles and registered vocabularies (metadata.go).
	Metadata   map[string]MetadataConfig   `toml:"metadata"`
	Vocabulary map[string]VocabularyConfig `toml:"vocabulary"`

	file     string // absolute path of the config file
	sum      string // SHA-256 of its bytes
	warnings Errors // what ferry runs with but a person should know
}

// Warnings are what ferry runs with but a person should know, each at its
// FILE:LINE (a watch folder not there now).
func (c *Config) Warnings() Errors { return c.warnings }

// File is the absolute path of the configuration file.
func (c *Config) File() string { return c.file }

// SHA256 is the hex SHA-256 of the configuration file's bytes as loaded.
func (c *Config) SHA256() string { return c.sum }

// JournalConfig is [journal].
type JournalConfig struct {
	Path string `toml:"path"`
	// CheckpointInterval is how often a checkpoint of the chains is
	// taken and uploaded to every target (also after each completed batch).
	CheckpointInterval Duration `toml:"checkpoint_interval"`
	// CheckpointRetention is the S3 Object Lock retention of an uploaded
	// checkpoint, where the bucket has Object Lock enabled.
	CheckpointRetention Duration `toml:"checkpoint_retention"`
	// ArchiveAfter: the daemon archives the events older than this once a
	// day (0: only `ferry journal archive` does). See archive.go.
	ArchiveAfter Age `toml:"archive_after"`
	// ArchiveDir is where archives are written (default journal-archive
	// beside the journal).
	ArchiveDir string `toml:"archive_dir"`
}

// MetricsConfig is [metrics].
type MetricsConfig struct {
	// Listen is where /metrics, /healthz and /status are served; nil means
	// the default (loopback), "" disables them.
	Listen *string `toml:"listen"`
}

// LogConfig is [log].
type LogConfig struct {
	File  string `toml:"file"`
	Level string `toml:"level"`
	// Rotation of File: rotated at MaxSizeMB megabytes, MaxBackups
	// compressed old files kept, and, when MaxAgeDays is set, none older
	// than that (defaults: DefaultLogMaxSizeMB, DefaultLogMaxBackups, by
	// count only).
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
	// CredentialsFile holds NAME=VALUE lines: the variables that
	// access_key_env and secret_key_env name (by default AWS_ACCESS_KEY_ID
	// and AWS_SECRET_ACCESS_KEY) are read from it before the environment.
	CredentialsFile string `toml:"credentials_file"`
	Prefix          string `toml:"prefix"`
	Path            string `toml:"path"`
	// FileMode is an fs target's file_mode: the octal permission bits of
	// every file it writes ("0644" when empty); Mode has it parsed.
	FileMode string `toml:"file_mode"`
	mode     fs.FileMode

	// creds is a pointer so that printing a TargetConfig (%v, %+v, %#v)
	// shows an address, never the values.
	creds *credentials
}

type credentials struct {
	access, secret Secret
}

// Mode is an fs target's file_mode, parsed: the permission bits of every
// file it writes (0 before validation: the fs target's default).
func (t TargetConfig) Mode() fs.FileMode { return t.mode }

// Credentials are an s3 target's access key and secret key, read from the
// environment variables it names (empty for other targets).
func (t TargetConfig) Credentials() (access, secret Secret) {
	if t.creds == nil {
		return "", ""
	}
	return t.creds.access, t.creds.secret
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
	// MaxOpenWait bounds how long a quiet file waits for a writer that
	// holds it open; then it is taken as it is (signal "timeout").
	MaxOpenWait Duration `toml:"max_open_wait"`
	OnChange    string   `toml:"on_change"`

	// Datasets (internal/config/datasets.go): which folders are datasets,
	// when one is complete, and its crate's licence.
	Dataset  string     `toml:"dataset"`
	Complete StringList `toml:"complete"`
	License  string     `toml:"license"`
	// AfterUpload: what happens to source files once their dataset closed;
	// ReclaimFreeBelow the free-space threshold of "reclaim" ("15%").
	AfterUpload      string `toml:"after_upload"`
	ReclaimFreeBelow string `toml:"reclaim_free_below"`
	// VerifyBeforeDelete: "head" (size and sha256 metadata, the default)
	// or "readback" (the whole object read back and hashed).
	VerifyBeforeDelete string `toml:"verify_before_delete"`
	// Metadata names a [metadata.NAME] profile (metadata.go).
	Metadata string `toml:"metadata"`

	// How the watch learns of changes (internal/config/watchmode.go):
	// mode "auto" (the default), "events" or "poll"; poll_interval the
	// period of a polling watch's rounds.
	Mode         string   `toml:"mode"`
	PollInterval Duration `toml:"poll_interval"`

	datasetFromTemplate bool
	conditions          dataset.Conditions
	moveDir             string // after_upload = "move:DIR", resolved
}

// Load reads, decodes and validates a config file. Environment variables
// named by the targets are read here (lookupEnv). Problems come back as an
// *Error (the file cannot be read or parsed) or as Errors (every problem
// found), each naming the file and, where it can, the line.
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read the configuration: %v", err)}
	}
	return parse(path, abs, data, lookupEnv)
}

// Sum is the hex SHA-256 of a configuration file's bytes (Config.SHA256).
func Sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

var lineRE = regexp.MustCompile(`line (\d+)`)

// parse decodes and validates data, the bytes of the file at abs, which
// errors call name (the path as the user gave it).
func parse(name, abs string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	c := &Config{file: abs, sum: Sum(data)}
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, decodeError(name, err)
	}
	loc := newLocator(data)
	v := &checker{file: name, loc: loc, md: md}
	for _, k := range md.Undecoded() {
		line, key := loc.keyLine(k)
		v.errs = append(v.errs, &Error{File: name, Line: line, Key: key, Msg: "unknown key"})
	}
	c.validate(v, lookupEnv)
	if errs := v.errs; len(errs) > 0 {
		sort.SliceStable(errs, func(a, b int) bool { return errs[a].Line < errs[b].Line })
		return nil, errs
	}
	c.warnings = v.warns
	return c, nil
}

// decodeError is a TOML syntax or type error at its line.
func decodeError(name string, err error) *Error {
	ce := &Error{File: name, Msg: err.Error()}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		ce.Line, ce.Msg = pe.Position.Line, pe.Message
	} else if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		ce.Line, _ = strconv.Atoi(m[1])
		ce.Msg = strings.TrimPrefix(err.Error(), "toml: ")
	}
	return ce
}

// resolve makes a path of the file relative to the file's folder.
func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.file), filepath.FromSlash(p))
}
