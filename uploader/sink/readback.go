package sink

import "context"

// Reader is what a sink offers besides Sink when it can read an object
// back whole, streaming: verify_before_delete = "readback" hashes what
// the target holds before a source file is deleted. It reads in bounded
// memory whatever the object's size.
type Reader interface {
	// ReadBack streams the object under key and returns its size and the
	// lowercase hex SHA-256 of its bytes, or an error matching ErrNotFound.
	ReadBack(ctx context.Context, key string) (size int64, sha256 string, err error)
}
