package uploader

import (
	"fmt"

	"github.com/ferry-data/ferry/uploader/sink"
)

// ClassTooLarge is the dead-letter class of a file larger than any target
// takes in one object (S3: 5 TiB).
const ClassTooLarge = "too_large"

// PartSize is the part size of a file of size bytes sent in at most
// maxParts parts: the configured chunk size, or, for a file larger than
// maxParts chunks, size/maxParts rounded up to a whole MiB, so that every
// file up to sink.MaxObjectSize fits. A file above sink.MaxObjectSize, or
// one that would need parts above sink.MaxPartSize, is an error.
func PartSize(size, chunk int64, maxParts int) (int64, error) {
	if size > sink.MaxObjectSize {
		return 0, fmt.Errorf("file of %d bytes is larger than the %d bytes (5 TiB) an object may have", size, int64(sink.MaxObjectSize))
	}
	if maxParts < 1 {
		maxParts = sink.DefaultMaxParts
	}
	n := int64(maxParts)
	if size <= chunk*n {
		return chunk, nil
	}
	const mib = 1 << 20
	need := (size + n - 1) / n
	need = (need + mib - 1) / mib * mib
	if need > sink.MaxPartSize {
		return 0, fmt.Errorf("file of %d bytes needs parts of %d bytes to fit %d parts, above the %d bytes (5 GiB) a part may have", size, need, n, int64(sink.MaxPartSize))
	}
	return max(need, chunk), nil
}
