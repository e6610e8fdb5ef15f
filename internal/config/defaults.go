package config

import "time"

// Defaults of the keys a configuration leaves out. Where a component has
// a default of its own for a zero option, the configuration uses that very
// constant (uploader.DefaultWorkers, uploader.DefaultChunkSize, the
// uploader's retry and breaker defaults, s3sink.DefaultRegion,
// watcher.DefaultSettle, watcher.DefaultRescanInterval): each default is
// written once.
const (
	DefaultJournal             = "ferry.db"           // [journal] path, beside the configuration file
	DefaultCheckpointInterval  = time.Hour            // [journal] checkpoint_interval
	DefaultCheckpointRetention = 365 * 24 * time.Hour // [journal] checkpoint_retention
	DefaultLogLevel            = "info"               // [log] level
	DefaultLogMaxSizeMB        = 100                  // [log] max_size_mb
	DefaultLogMaxBackups       = 10                   // [log] max_backups
	DefaultOrphanUploadTTL     = 24 * time.Hour       // [upload] orphan_upload_ttl
	// DefaultMetricsListen is loopback: metrics are not for the network
	// unless a person says so.
	DefaultMetricsListen = "127.0.0.1:9464"
)

// Bounds of [upload] max_chunk_size (an s3 target also needs at least
// s3sink.MinPartSize).
const (
	minChunkSize = 64 << 10
	maxChunkSize = 5 << 30
)

// Bounds of a [[watch]] settle: below minSettle a file still being written
// looks settled; above maxSettle nothing would go out for days.
const (
	minSettle = 10 * time.Millisecond
	maxSettle = 7 * 24 * time.Hour
)
