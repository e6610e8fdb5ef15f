package config

import "time"

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
