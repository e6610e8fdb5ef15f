// Package sink defines what the uploader needs from a storage target: an
// object store that takes a small object in one request or a large one in
// numbered parts, tells what it holds under a key, and classifies every
// failure where it arises as transient (retry later) or permanent (a person
// must look).
//
// Implementations live in the packages below this one (s3sink, fssink,
// memsink) and each passes the conformance suite in sinktest.
//
// Retry contract: a Sink never retries on its own. Every method makes one
// attempt and returns an error that says whether another attempt can help
// (see Error). The uploader owns retries, backoff and the circuit breaker.
package sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Digest is a SHA-256 sum.
type Digest [32]byte

// Hex returns the lowercase hex form used in object metadata and the journal.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// ParseDigest parses a lowercase or uppercase hex SHA-256.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(d) {
		return d, fmt.Errorf("invalid sha256 %q", s)
	}
	copy(d[:], b)
	return d, nil
}

// Part is one numbered piece of a multipart upload.
type Part struct {
	Number int    // 1-based, consecutive
	Offset int64  // byte offset of the part in the object
	Size   int64  // bytes in the part
	SHA256 Digest // of the part's bytes
	ETag   string // as returned by UploadPart; needed by CompleteMultipart
}

// Upload is a multipart upload in progress.
type Upload struct {
	Key       string
	ID        string
	Initiated time.Time
	// Stale: the sink knows the upload was begun by an earlier process
	// on this host (the fs target records the host in its staging
	// folder), not by another writer: unknown to the journal, it is an
	// orphan at once, without waiting out orphan_upload_ttl.
	Stale bool
}

// RateLimit is what a server said of its request budget (the
// X-RateLimit-Remaining and X-RateLimit-Reset headers): Remaining requests
// until Reset.
type RateLimit struct {
	Remaining int
	Reset     time.Time
}

// Info is what a sink holds under a key.
type Info struct {
	Size   int64
	SHA256 string // lowercase hex of the whole object, "" when the object has none
}

// Sink stores objects under slash-separated keys.
type Sink interface {
	// MinPartSize is the smallest size a part other than the last may have.
	MinPartSize() int64

	// MaxParts is the most parts one multipart upload may have (S3:
	// DefaultMaxParts). The uploader chooses each file's part size so that
	// the file fits.
	MaxParts() int

	// Put stores body under key in one request. sum is the SHA-256 of body
	// and is stored with the object (S3: user metadata "sha256"). The sink
	// sends sum for the target to check the bytes it stores, and returns nil
	// only when the target confirmed them: a nil error verifies what landed
	// (S3 rejects a mismatch with BadDigest, and the checksum it echoes is
	// compared too). With ifAbsent, an object already under key is left as
	// it is and the error matches ErrExists (S3: If-None-Match: *). The
	// sink keeps no reference to body once Put returns.
	Put(ctx context.Context, key string, body []byte, sum Digest, ifAbsent bool) error

	// CreateMultipart starts an upload of an object of the given size. Its
	// whole-object SHA-256 is given when it is completed: the parts are sent
	// as they are read and hashed, each byte of the source read once.
	CreateMultipart(ctx context.Context, key string, size int64) (uploadID string, err error)

	// UploadPart sends one part. body holds exactly p.Size bytes whose
	// SHA-256 is p.SHA256. It returns the part's ETag. Sending a part
	// again replaces it. The sink keeps no reference to body once
	// UploadPart returns.
	UploadPart(ctx context.Context, key, uploadID string, p Part, body []byte) (etag string, err error)

	// CompleteMultipart assembles the parts, in order, into the object, and
	// stores sum, the SHA-256 of the whole object, with it (S3: the object
	// tag "sha256", set right after completing; the fs target: its
	// sidecar, written before the object appears). With ifAbsent, an object
	// already under key is left as it is and the error matches ErrExists
	// (the upload stays, to be aborted).
	//
	// Completing again an upload the target already completed from these
	// very parts (the caller lost the answer, or the hash was not stored:
	// a crash between the two) stores sum and returns nil, where the target
	// can prove the object is made of them (S3: its composite checksum);
	// parts without ETags ask only that. Otherwise the upload is gone: an
	// error matching ErrNotFound.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part, sum Digest, ifAbsent bool) error

	// ListParts returns the parts an upload holds so far, by number, with
	// their size, ETag and SHA-256 as the target reports them (Offset is
	// not known to the target and left 0). An upload that no longer exists
	// (completed, aborted or expired) is an error matching ErrNotFound.
	ListParts(ctx context.Context, key, uploadID string) ([]Part, error)

	// ListUploads returns the multipart uploads in progress under a key
	// prefix, to find the ones nobody will finish (a crash between creating
	// an upload and journaling its ID leaves one).
	ListUploads(ctx context.Context, prefix string) ([]Upload, error)

	// AbortMultipart discards an upload and its parts. Aborting an upload
	// that no longer exists is not an error.
	AbortMultipart(ctx context.Context, key, uploadID string) error

	// Stat reports what is stored under key, or an error matching
	// ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)

	// List returns the keys of the objects under a key prefix, sorted
	// (byte order), following every page of the listing. It is meant for
	// small, ferry-owned prefixes (checkpoints), not for a target's data.
	List(ctx context.Context, prefix string) ([]string, error)

	// Get returns the bytes stored under key, or an error matching
	// ErrNotFound. An object larger than max bytes is a permanent error
	// (ErrTooLarge), read no further: Get is for small objects.
	Get(ctx context.Context, key string, max int64) ([]byte, error)
}

// DefaultMaxParts is S3's limit on the parts of one upload.
const DefaultMaxParts = 10000

// MaxPartSize is S3's limit on the size of one part (5 GiB).
const MaxPartSize = 5 << 30

// MaxObjectSize is S3's limit on the size of one object (5 TiB).
const MaxObjectSize = 5 << 40

// Class says what a caller should do about a failure.
type Class int

const (
	// Transient failures may succeed when tried again later: transport
	// errors, timeouts, 5xx, 408, 429, throttling.
	Transient Class = iota + 1
	// Permanent failures will fail again until a person changes something:
	// other 4xx, checksum mismatches, invalid keys, missing buckets.
	Permanent
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	}
	return "unknown"
}

// Error is a classified sink failure.
type Error struct {
	Class      Class
	Op         string        // the sink operation, e.g. "UploadPart"
	Status     int           // HTTP status when there was one, else 0
	Code       string        // the server's error code when there was one (e.g. "BadDigest")
	RetryAfter time.Duration // server-requested pause (Retry-After), 0 when none
	Err        error
}

func (e *Error) Error() string {
	s := e.Op + ": " + e.Class.String()
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d", e.Status)
		if e.Code != "" {
			s += " " + e.Code
		}
		s += ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// NewTransient wraps err as a transient failure of op.
func NewTransient(op string, err error) error { return &Error{Class: Transient, Op: op, Err: err} }

// NewPermanent wraps err as a permanent failure of op.
func NewPermanent(op string, err error) error { return &Error{Class: Permanent, Op: op, Err: err} }

// ErrNotFound is matched (errors.Is) when no object exists under the key
// (Stat, Get) or the multipart upload no longer exists (ListParts).
var ErrNotFound = errors.New("object not found")

// ErrExists is matched when a create-only write (ifAbsent) found an object
// already under the key (S3: 412 Precondition Failed).
var ErrExists = errors.New("an object already exists under the key")

// ErrTooLarge is matched when Get finds an object larger than asked for.
var ErrTooLarge = errors.New("object larger than expected")

// ErrUnavailable is matched when a decorator did not send a request at all
// because the target is known to be unreachable (its circuit breaker is
// open): not an answer, nothing to retry now.
var ErrUnavailable = errors.New("target unavailable; the request was not sent")

// ErrStalled is matched by a request that made no progress within its
// deadline (a stalled connection): transient.
var ErrStalled = errors.New("request made no progress in time")

// ErrChecksum is matched when a server rejects bytes whose checksum does not
// match the one sent (S3 BadDigest). It is permanent for that attempt.
var ErrChecksum = errors.New("checksum mismatch")

// InTransit classifies a checksum mismatch (ErrChecksum) the target
// reported for body, sent with sum as its SHA-256: when body still hashes
// to sum, the bytes were damaged on the way (a transient failure of the
// attempt: sending them again can help); when it does not, they are not
// what the caller hashed (its source changed under it), and err stays as
// it is. Other errors are returned as they are.
//
// A classified error keeps its status and code; only its class changes.
func InTransit(op string, err error, body []byte, sum Digest) error {
	if err == nil || !errors.Is(err, ErrChecksum) || Digest(sha256.Sum256(body)) != sum {
		return err
	}
	var e *Error
	if !errors.As(err, &e) {
		return NewTransient(op, fmt.Errorf("damaged in transit: %w", err))
	}
	c := *e
	c.Class = Transient
	c.Err = fmt.Errorf("damaged in transit: %w", e.Err)
	return &c
}

// IsPermanent reports whether err is a classified permanent failure.
// Unclassified errors are treated as transient: retrying an unknown failure
// later is safe, dropping work is not.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Class == Permanent
}

// RetryAfter returns the server-requested pause carried by err, if any.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
