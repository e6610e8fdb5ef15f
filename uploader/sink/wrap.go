package sink

import (
	"context"
	"log/slog"
	"time"
)

// Decorators. What every request to a target must pass (the circuit
// breaker and a server's pauses, bandwidth pacing, retries, metrics) is
// not written into each caller: it is a Middleware around the target's
// Sink (restic's internal/backend/retry and sema are the model). Wrap
// turns a Middleware into a Sink that wraps another, so the decorators
// compose: uploader/target stacks them, in one place, for every caller
// (the uploader, checkpoints, the orphan sweep, config check --online).

// Call is one call to a Sink, as a Middleware sees it.
type Call struct {
	Op     string // the Sink method: "Put", "UploadPart", "Stat", ...
	Key    string
	Body   []byte // Put, PutRetained, UploadPart: the bytes sent
	SHA256 Digest // with Body: their SHA-256, as the caller gave it
}

// Size is the number of body bytes the call sends.
func (c Call) Size() int64 { return int64(len(c.Body)) }

// Middleware runs one call: it may act before and after next, which makes
// the call on the wrapped Sink (and may be run again, or not at all), and
// returns the call's error.
type Middleware func(ctx context.Context, c Call, next func(context.Context) error) error

// Wrap returns a Sink whose every call passes through mw before reaching s.
func Wrap(s Sink, mw Middleware) Sink { return &wrapped{s: s, mw: mw} }

// Chain wraps s in the middlewares, the first outermost: Chain(s, a, b)
// is Wrap(Wrap(s, b), a), so a call passes a, then b, then reaches s.
func Chain(s Sink, mws ...Middleware) Sink {
	for i := len(mws) - 1; i >= 0; i-- {
		s = Wrap(s, mws[i])
	}
	return s
}

// Retainer is a Sink that can write an object under retention (S3 Object
// Lock in compliance mode), for ferry's checkpoints.
type Retainer interface {
	// PutRetained is Put with the object retained until retainUntil; it
	// reports whether the target locked it (false: it cannot, and the
	// object was written without).
	PutRetained(ctx context.Context, key string, body []byte, sum Digest, ifAbsent bool, retainUntil time.Time) (locked bool, err error)
}

// PutRetained writes under retention where s can (Retainer), else a plain
// Put that reports locked false.
func PutRetained(ctx context.Context, s Sink, key string, body []byte, sum Digest, ifAbsent bool, retainUntil time.Time) (bool, error) {
	if r, ok := s.(Retainer); ok {
		return r.PutRetained(ctx, key, body, sum, ifAbsent, retainUntil)
	}
	return false, s.Put(ctx, key, body, sum, ifAbsent)
}

type wrapped struct {
	s  Sink
	mw Middleware
}

var (
	_ Sink     = (*wrapped)(nil)
	_ Retainer = (*wrapped)(nil)
)

func (w *wrapped) do(ctx context.Context, c Call, fn func(context.Context) error) error {
	return w.mw(ctx, c, fn)
}

func (w *wrapped) MinPartSize() int64 { return w.s.MinPartSize() }

func (w *wrapped) MaxParts() int { return w.s.MaxParts() }

func (w *wrapped) Put(ctx context.Context, key string, body []byte, sum Digest, ifAbsent bool) error {
	return w.do(ctx, Call{Op: "Put", Key: key, Body: body, SHA256: sum}, func(ctx context.Context) error {
		return w.s.Put(ctx, key, body, sum, ifAbsent)
	})
}

func (w *wrapped) PutRetained(ctx context.Context, key string, body []byte, sum Digest, ifAbsent bool, retainUntil time.Time) (locked bool, err error) {
	err = w.do(ctx, Call{Op: "Put", Key: key, Body: body, SHA256: sum}, func(ctx context.Context) error {
		var err error
		locked, err = PutRetained(ctx, w.s, key, body, sum, ifAbsent, retainUntil)
		return err
	})
	return locked, err
}

func (w *wrapped) CreateMultipart(ctx context.Context, key string, size int64) (id string, err error) {
	err = w.do(ctx, Call{Op: "CreateMultipart", Key: key}, func(ctx context.Context) error {
		var err error
		id, err = w.s.CreateMultipart(ctx, key, size)
		return err
	})
	return id, err
}

func (w *wrapped) UploadPart(ctx context.Context, key, uploadID string, p Part, body []byte) (etag string, err error) {
	err = w.do(ctx, Call{Op: "UploadPart", Key: key, Body: body, SHA256: p.SHA256}, func(ctx context.Context) error {
		var err error
		etag, err = w.s.UploadPart(ctx, key, uploadID, p, body)
		return err
	})
	return etag, err
}

func (w *wrapped) CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part, sum Digest, ifAbsent bool) error {
	return w.do(ctx, Call{Op: "CompleteMultipart", Key: key}, func(ctx context.Context) error {
		return w.s.CompleteMultipart(ctx, key, uploadID, parts, sum, ifAbsent)
	})
}

func (w *wrapped) ListParts(ctx context.Context, key, uploadID string) (parts []Part, err error) {
	err = w.do(ctx, Call{Op: "ListParts", Key: key}, func(ctx context.Context) error {
		var err error
		parts, err = w.s.ListParts(ctx, key, uploadID)
		return err
	})
	return parts, err
}

func (w *wrapped) ListUploads(ctx context.Context, prefix string) (ups []Upload, err error) {
	err = w.do(ctx, Call{Op: "ListUploads", Key: prefix}, func(ctx context.Context) error {
		var err error
		ups, err = w.s.ListUploads(ctx, prefix)
		return err
	})
	return ups, err
}

func (w *wrapped) AbortMultipart(ctx context.Context, key, uploadID string) error {
	return w.do(ctx, Call{Op: "AbortMultipart", Key: key}, func(ctx context.Context) error {
		return w.s.AbortMultipart(ctx, key, uploadID)
	})
}

func (w *wrapped) Stat(ctx context.Context, key string) (info Info, err error) {
	err = w.do(ctx, Call{Op: "Stat", Key: key}, func(ctx context.Context) error {
		var err error
		info, err = w.s.Stat(ctx, key)
		return err
	})
	return info, err
}

func (w *wrapped) List(ctx context.Context, prefix string) (keys []string, err error) {
	err = w.do(ctx, Call{Op: "List", Key: prefix}, func(ctx context.Context) error {
		var err error
		keys, err = w.s.List(ctx, prefix)
		return err
	})
	return keys, err
}

func (w *wrapped) Get(ctx context.Context, key string, max int64) (b []byte, err error) {
	err = w.do(ctx, Call{Op: "Get", Key: key}, func(ctx context.Context) error {
		var err error
		b, err = w.s.Get(ctx, key, max)
		return err
	})
	return b, err
}

// CallInfo is what a caller tells the decorators about its calls, through
// the context (WithCall): who the work is for, and what to tell it. The
// zero value asks for nothing.
type CallInfo struct {
	// Log carries the attributes of the caller's work (file, correlation
	// ID) for what the decorators log about a call; nil: their own logger.
	Log *slog.Logger
	// Progress, when set, is told of the body bytes of each call that
	// succeeded, as soon as it did (upload progress, rates).
	Progress func(n int64)
	// Chunk says the calls carry a file's data (the uploader's), as
	// opposed to ferry's own small objects (checkpoints, probes): metrics
	// of chunks count only these.
	Chunk bool
	// Failed, when set, is told of each attempt that failed with a
	// transient error (what status shows as the last failure).
	Failed func(op string, err error)
	// RetryNotFound makes ErrNotFound transient for this call (an object
	// just written, not visible yet); otherwise it is an answer, never
	// retried.
	RetryNotFound bool
}

type callKey struct{}

// WithCall returns ctx carrying ci for the calls made with it.
func WithCall(ctx context.Context, ci CallInfo) context.Context {
	return context.WithValue(ctx, callKey{}, ci)
}

// CallOf returns the CallInfo ctx carries (the zero value if none).
func CallOf(ctx context.Context) CallInfo {
	ci, _ := ctx.Value(callKey{}).(CallInfo)
	return ci
}

type metaKey struct{}

// WithObjectMetadata returns ctx asking the sink to store m with the
// objects it creates with it (S3: user metadata, beside "sha256", which
// it never replaces). Keys are lowercase ASCII; a value that is not
// printable ASCII is left out (S3 user metadata is ASCII, 2 KB in all):
// issue 13's validation-status and schema-version.
func WithObjectMetadata(ctx context.Context, m map[string]string) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// ObjectMetadataOf returns the metadata ctx asks for (nil for none), only
// the printable ASCII entries.
func ObjectMetadataOf(ctx context.Context) map[string]string {
	m, _ := ctx.Value(metaKey{}).(map[string]string)
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if printableASCII(k) && printableASCII(v) && k != "" {
			out[k] = v
		}
	}
	return out
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
