package uploader

// DefaultWorkers is Options.Workers' default (max_concurrent_uploads).
// internal/config fills the keys a configuration leaves out with the
// components' own constants (this one, DefaultChunkSize, and those of
// uploader/sink/retry and uploader/sink/gate): each default is written
// once.
const DefaultWorkers = 4
