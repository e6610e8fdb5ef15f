// Package memsink is an in-memory sink.Sink for tests: a target that holds
// its objects and multipart uploads in maps, behaves like the real sinks
// where the uploader can tell the difference, and lets a test look inside
// and interfere.
//
// Like a real target it checks every body against the SHA-256 sent with it
// (sink.ErrChecksum, permanent), refuses create-only writes to a taken key
// (sink.ErrExists, permanent), refuses on completion a part other than the
// last below MinPartSize (S3's EntityTooSmall, permanent), reports a missing
// object or upload as sink.ErrNotFound (permanent, as s3sink classifies it),
// and fails a call whose context is done with a transient error wrapping
// ctx.Err(), as s3sink does. Each call is one attempt. Transient failures
// (a network, a busy server) it has none of its own: a test injects them
// with a Before hook.
//
// It never keeps a reference to a caller's slice, since the uploader reuses
// its buffers, and returns copies of what it holds.
//
// A Sink is safe for concurrent use. The zero value is not usable: call New.
package memsink

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ferry-data/ferry/internal/pace"
	"github.com/ferry-data/ferry/uploader/sink"
)

// Op names, as passed to a Before hook and counted by Calls: the names of
// the sink.Sink methods.
const (
	OpPut               = "Put"
	OpCreateMultipart   = "CreateMultipart"
	OpUploadPart        = "UploadPart"
	OpCompleteMultipart = "CompleteMultipart"
	OpListParts         = "ListParts"
	OpListUploads       = "ListUploads"
	OpAbortMultipart    = "AbortMultipart"
	OpStat              = "Stat"
	OpList              = "List"
	OpGet               = "Get"
)

// maxKeyLen and maxPartNumber are S3's limits, so that a key or part the
// uploader would send to S3 in vain fails here too.
const (
	maxKeyLen     = 1024
	maxPartNumber = 10000
)

// Before is a fault hook: it is called at the start of every sink.Sink call
// with the operation's name (one of the Op constants), the call's key (the
// prefix for List and ListUploads) and n, the 1-based count of calls of that
// op on this sink, this one included. A non-nil error is returned as the
// call's result, unchanged (so the hook picks its class, e.g.
// sink.NewTransient(op, err)), and the call does nothing else.
//
// The hook runs without the sink's lock held: it may block, call the sink
// (its calls are counted and hooked too) or change the world, e.g. rewrite a
// source file mid-upload. The call checks its context after the hook, so a
// hook that blocks until the caller gives up makes a call that hangs.
// Calls run concurrently, and so do their hooks.
type Before func(op, key string, n int) error

// Options configures a Sink. The zero value is a sink like fssink: parts of
// any size, the real clock, no faults.
type Options struct {
	// MinPartSize is the smallest size a part other than the last may have;
	// CompleteMultipart refuses a smaller one. 0 means 1 (any size, as
	// fssink); set s3sink.MinPartSize to act like S3.
	MinPartSize int64
	// MaxParts is the most parts of one upload; 0 means
	// sink.DefaultMaxParts. CompleteMultipart refuses more.
	MaxParts int
	// Now stamps an upload's Initiated time; nil means time.Now. Tests in a
	// testing/synctest bubble get its fake clock either way.
	Now func() time.Time
	// Before is the initial fault hook (see Before and SetBefore); nil, none.
	Before Before
}

// Sink is an in-memory target.
type Sink struct {
	min      int64
	maxParts int
	now      func() time.Time

	mu      sync.Mutex
	objects map[string]object
	uploads map[string]*upload // by upload ID
	calls   map[string]int     // by op
	before  Before
}

var _ sink.Sink = (*Sink)(nil)

type object struct {
	data []byte
	sum  string // lowercase hex SHA-256, as Stat reports it
}

type upload struct {
	key       string
	size      int64
	initiated time.Time
	parts     map[int]part // by number
}

type part struct {
	data []byte
	sum  sink.Digest
	etag string
}

// New returns an empty sink.
func New(o Options) *Sink {
	s := &Sink{
		min:      max(o.MinPartSize, 1),
		maxParts: o.MaxParts,
		now:      o.Now,
		objects:  map[string]object{},
		uploads:  map[string]*upload{},
		calls:    map[string]int{},
		before:   o.Before,
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// SetBefore replaces the fault hook (nil removes it). It is safe to call
// while other goroutines use the sink; calls already past their hook are
// not affected.
func (s *Sink) SetBefore(f Before) {
	s.mu.Lock()
	s.before = f
	s.mu.Unlock()
}

// Calls returns how many times op (one of the Op constants) has been called
// on this sink, including calls that failed, whether by the hook or
// otherwise.
func (s *Sink) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Object returns a copy of the bytes stored under key, and whether there is
// an object under key.
func (s *Sink) Object(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[key]
	if !ok {
		return nil, false
	}
	return append([]byte{}, o.data...), true
}

// Keys returns the keys of all stored objects, sorted (multipart uploads in
// progress are not objects).
func (s *Sink) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.objects))
}

// Uploads returns how many multipart uploads are in progress: created and
// neither completed nor aborted.
func (s *Sink) Uploads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
}

// Delete removes the object under key, as if someone else had deleted it
// on the target (for tests; ferry never deletes an object).
func (s *Sink) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, key)
}

// MinPartSize implements sink.Sink: Options.MinPartSize, at least 1.
func (s *Sink) MinPartSize() int64 { return s.min }

// MaxParts implements sink.Sink: Options.MaxParts, 10,000 by default.
func (s *Sink) MaxParts() int {
	if s.maxParts > 0 {
		return s.maxParts
	}
	return sink.DefaultMaxParts
}

// begin counts a call, runs the hook and checks the context.
func (s *Sink) begin(ctx context.Context, op, key string) error {
	s.mu.Lock()
	s.calls[op]++
	n := s.calls[op]
	hook := s.before
	s.mu.Unlock()
	if hook != nil {
		if err := hook(op, key, n); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return sink.NewTransient(op, err)
	}
	return nil
}

// beginKey is begin for a call about one object key, which must be one S3
// could store: non-empty, valid UTF-8, at most 1024 bytes.
func (s *Sink) beginKey(ctx context.Context, op, key string) error {
	if err := s.begin(ctx, op, key); err != nil {
		return err
	}
	if key == "" || len(key) > maxKeyLen || !utf8.ValidString(key) {
		return sink.NewPermanent(op, fmt.Errorf("invalid key %q: empty, longer than %d bytes or not UTF-8", key, maxKeyLen))
	}
	return nil
}

// sent takes the time a body needs under the call's bandwidth limit
// (pace.From: the pace decorator's), as a real target's transfer would.
func sent(ctx context.Context, op string, body []byte) error {
	if err := pace.From(ctx).Wait(ctx, len(body)); err != nil {
		return sink.NewTransient(op, err)
	}
	return nil
}

// fail returns a permanent error with an S3 error code, wrapping err.
func fail(op, code string, err error) error {
	return &sink.Error{Class: sink.Permanent, Op: op, Code: code, Err: err}
}

func checkSum(op string, body []byte, want sink.Digest) error {
	if got := sink.Digest(sha256.Sum256(body)); got != want {
		return fail(op, "BadDigest", fmt.Errorf("%w: received %s, expected %s", sink.ErrChecksum, got.Hex(), want.Hex()))
	}
	return nil
}

// Put implements sink.Sink: it stores a copy of body once its hash checks.
func (s *Sink) Put(ctx context.Context, key string, body []byte, sum sink.Digest, ifAbsent bool) error {
	const op = OpPut
	if err := s.beginKey(ctx, op, key); err != nil {
		return err
	}
	if err := checkSum(op, body, sum); err != nil {
		return err
	}
	if err := sent(ctx, op, body); err != nil {
		return err
	}
	o := object{data: bytes.Clone(body), sum: sum.Hex()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.objects[key]; taken && ifAbsent {
		return fail(op, "PreconditionFailed", fmt.Errorf("%s: %w", key, sink.ErrExists))
	}
	s.objects[key] = o
	return nil
}

// CreateMultipart implements sink.Sink. The upload ID is random, so that an
// ID from another sink is unknown here.
func (s *Sink) CreateMultipart(ctx context.Context, key string, size int64) (string, error) {
	const op = OpCreateMultipart
	if err := s.beginKey(ctx, op, key); err != nil {
		return "", err
	}
	if size < 0 {
		return "", sink.NewPermanent(op, fmt.Errorf("negative size %d", size))
	}
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uploads[id] = &upload{key: key, size: size, initiated: s.now(), parts: map[int]part{}}
	return id, nil
}

// upload returns the upload with this ID for key, or S3's NoSuchUpload,
// matching sink.ErrNotFound, for an ID never issued, finished, or issued for
// another key. The caller holds s.mu.
func (s *Sink) upload(op, key, id string) (*upload, error) {
	u, ok := s.uploads[id]
	if !ok || u.key != key {
		return nil, fail(op, "NoSuchUpload", fmt.Errorf("upload %s of %s: %w", id, key, sink.ErrNotFound))
	}
	return u, nil
}

// UploadPart implements sink.Sink: it stores a copy of the part once its
// hash checks, replacing an earlier part with the same number (as S3
// does). The ETag is S3's: the quoted MD5 of the part's bytes.
func (s *Sink) UploadPart(ctx context.Context, key, uploadID string, p sink.Part, body []byte) (string, error) {
	const op = OpUploadPart
	if err := s.beginKey(ctx, op, key); err != nil {
		return "", err
	}
	if p.Number < 1 || p.Number > maxPartNumber {
		return "", sink.NewPermanent(op, fmt.Errorf("part number %d outside 1..%d", p.Number, maxPartNumber))
	}
	if int64(len(body)) != p.Size {
		return "", sink.NewPermanent(op, fmt.Errorf("part %d: body has %d bytes, part size is %d", p.Number, len(body), p.Size))
	}
	if err := checkSum(op, body, p.SHA256); err != nil {
		return "", err
	}
	if err := sent(ctx, op, body); err != nil {
		return "", err
	}
	md := md5.Sum(body)
	pt := part{data: bytes.Clone(body), sum: p.SHA256, etag: `"` + hex.EncodeToString(md[:]) + `"`}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.upload(op, key, uploadID)
	if err != nil {
		return "", err
	}
	u.parts[p.Number] = pt
	return pt.etag, nil
}

// CompleteMultipart implements sink.Sink. The parts must be numbered 1, 2,
// ... with the offsets, sizes, hashes and ETags they were uploaded with,
// cover the size given to CreateMultipart, and all but the last be at least
// MinPartSize; anything else is a permanent error with S3's code
// (InvalidPartOrder, InvalidPart, EntityTooSmall). With ifAbsent and a key
// taken, the upload stays.
func (s *Sink) CompleteMultipart(ctx context.Context, key, uploadID string, parts []sink.Part, sum sink.Digest, ifAbsent bool) error {
	const op = OpCompleteMultipart
	if err := s.beginKey(ctx, op, key); err != nil {
		return err
	}
	if len(parts) == 0 {
		return fail(op, "MalformedXML", errors.New("no parts"))
	}
	if len(parts) > s.MaxParts() {
		return fail(op, "InvalidArgument", fmt.Errorf("%d parts, more than the %d an upload may have", len(parts), s.MaxParts()))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.upload(op, key, uploadID)
	if err != nil {
		return err
	}
	var off int64
	for i, p := range parts {
		if p.Number != i+1 || p.Offset != off {
			return fail(op, "InvalidPartOrder", fmt.Errorf("part %d at offset %d out of order (expected part %d at %d)", p.Number, p.Offset, i+1, off))
		}
		got, ok := u.parts[p.Number]
		switch {
		case !ok:
			return fail(op, "InvalidPart", fmt.Errorf("part %d was never uploaded", p.Number))
		case got.etag != p.ETag || got.sum != p.SHA256 || int64(len(got.data)) != p.Size:
			return fail(op, "InvalidPart", fmt.Errorf("part %d: stored with ETag %s, %d bytes, sha256 %s; completing with %s, %d, %s",
				p.Number, got.etag, len(got.data), got.sum.Hex(), p.ETag, p.Size, p.SHA256.Hex()))
		case i < len(parts)-1 && p.Size < s.min:
			return fail(op, "EntityTooSmall", fmt.Errorf("part %d has %d bytes, less than %d", p.Number, p.Size, s.min))
		}
		off += p.Size
	}
	if off != u.size {
		return sink.NewPermanent(op, fmt.Errorf("parts cover %d bytes of %d", off, u.size))
	}
	if _, taken := s.objects[key]; taken && ifAbsent {
		return fail(op, "PreconditionFailed", fmt.Errorf("%s: %w", key, sink.ErrExists))
	}
	data := make([]byte, 0, u.size)
	for _, p := range parts {
		data = append(data, u.parts[p.Number].data...)
	}
	// An object store cannot check the whole object's SHA-256 (it only
	// stores it); this fake does, to catch a caller that gets it wrong.
	if got := sink.Digest(sha256.Sum256(data)); got != sum {
		return sink.NewPermanent(op, fmt.Errorf("the parts hash to sha256 %s, completing with %s", got.Hex(), sum.Hex()))
	}
	s.objects[key] = object{data: data, sum: sum.Hex()}
	delete(s.uploads, uploadID)
	return nil
}

// ListParts implements sink.Sink. Offset is left 0, as a real target
// leaves it.
func (s *Sink) ListParts(ctx context.Context, key, uploadID string) ([]sink.Part, error) {
	const op = OpListParts
	if err := s.beginKey(ctx, op, key); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.upload(op, key, uploadID)
	if err != nil {
		return nil, err
	}
	parts := make([]sink.Part, 0, len(u.parts))
	for _, n := range slices.Sorted(maps.Keys(u.parts)) {
		p := u.parts[n]
		parts = append(parts, sink.Part{Number: n, Size: int64(len(p.data)), SHA256: p.sum, ETag: p.etag})
	}
	return parts, nil
}

// ListUploads implements sink.Sink, sorted by key, then start, as S3 lists
// them.
func (s *Sink) ListUploads(ctx context.Context, prefix string) ([]sink.Upload, error) {
	const op = OpListUploads
	if err := s.begin(ctx, op, prefix); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ups []sink.Upload
	for id, u := range s.uploads {
		if strings.HasPrefix(u.key, prefix) {
			ups = append(ups, sink.Upload{Key: u.key, ID: id, Initiated: u.initiated})
		}
	}
	slices.SortFunc(ups, func(a, b sink.Upload) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		if c := a.Initiated.Compare(b.Initiated); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return ups, nil
}

// AbortMultipart implements sink.Sink. An unknown upload, or one for
// another key, is left alone and is not an error (S3: NoSuchUpload).
func (s *Sink) AbortMultipart(ctx context.Context, key, uploadID string) error {
	const op = OpAbortMultipart
	if err := s.beginKey(ctx, op, key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.upload(op, key, uploadID); err == nil {
		delete(s.uploads, uploadID)
	}
	return nil
}

// lookup returns the object under key, or a permanent NoSuchKey error
// matching sink.ErrNotFound. The caller holds s.mu.
func (s *Sink) lookup(op, key string) (object, error) {
	o, ok := s.objects[key]
	if !ok {
		return object{}, fail(op, "NoSuchKey", fmt.Errorf("%s: %w", key, sink.ErrNotFound))
	}
	return o, nil
}

// Stat implements sink.Sink. SHA256 is the sum given to Put, or to
// CreateMultipart for an object assembled from parts.
func (s *Sink) Stat(ctx context.Context, key string) (sink.Info, error) {
	const op = OpStat
	if err := s.beginKey(ctx, op, key); err != nil {
		return sink.Info{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.lookup(op, key)
	if err != nil {
		return sink.Info{}, err
	}
	return sink.Info{Size: int64(len(o.data)), SHA256: o.sum}, nil
}

// List implements sink.Sink.
func (s *Sink) List(ctx context.Context, prefix string) ([]string, error) {
	const op = OpList
	if err := s.begin(ctx, op, prefix); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.objects {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// Get implements sink.Sink; it returns a copy.
func (s *Sink) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	const op = OpGet
	if err := s.beginKey(ctx, op, key); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.lookup(op, key)
	if err != nil {
		return nil, err
	}
	if int64(len(o.data)) > max {
		return nil, sink.NewPermanent(op, fmt.Errorf("%s: %d bytes, at most %d expected: %w", key, len(o.data), max, sink.ErrTooLarge))
	}
	return append([]byte{}, o.data...), nil
}
