package memsink_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/memsink"
	"github.com/ferry-data/ferry/uploader/sink/sinktest"
)

func harness(o memsink.Options) sinktest.Harness {
	return sinktest.Harness{
		New: func(t *testing.T) sink.Sink { return memsink.New(o) },
		Read: func(t *testing.T, s sink.Sink, key string) []byte {
			t.Helper()
			b, ok := s.(*memsink.Sink).Object(key)
			if !ok {
				t.Fatalf("no object under %q", key)
			}
			return b
		},
	}
}

func TestConformance(t *testing.T) {
	sinktest.Run(t, harness(memsink.Options{}))
}

// With a minimum part size the suite's short last parts are below it.
func TestConformanceMinPartSize(t *testing.T) {
	sinktest.Run(t, harness(memsink.Options{MinPartSize: 64 << 10}))
}

func sum(b []byte) sink.Digest { return sha256.Sum256(b) }

// parts cuts body into parts of the given sizes.
func parts(body []byte, sizes ...int64) []sink.Part {
	ps := make([]sink.Part, len(sizes))
	var off int64
	for i, n := range sizes {
		ps[i] = sink.Part{Number: i + 1, Offset: off, Size: n, SHA256: sum(body[off : off+n])}
		off += n
	}
	return ps
}

// multipart creates an upload of body and sends all its parts.
func multipart(t *testing.T, s *memsink.Sink, key string, body []byte, sizes ...int64) (string, []sink.Part) {
	t.Helper()
	ctx := t.Context()
	id, err := s.CreateMultipart(ctx, key, int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	ps := parts(body, sizes...)
	for i, p := range ps {
		if ps[i].ETag, err = s.UploadPart(ctx, key, id, p, body[p.Offset:p.Offset+p.Size]); err != nil {
			t.Fatal(err)
		}
	}
	return id, ps
}

func wantPermanent(t *testing.T, what string, err, target error) {
	t.Helper()
	if err == nil || !sink.IsPermanent(err) || target != nil && !errors.Is(err, target) {
		t.Fatalf("%s = %v, want a permanent error matching %v", what, err, target)
	}
}

func TestDefaultMinPartSizeIsFssinks(t *testing.T) {
	if n := memsink.New(memsink.Options{}).MinPartSize(); n != 1 {
		t.Fatalf("MinPartSize() = %d, want 1 (any size, as fssink)", n)
	}
	if n := memsink.New(memsink.Options{MinPartSize: 5 << 20}).MinPartSize(); n != 5<<20 {
		t.Fatalf("MinPartSize() = %d, want the configured %d", n, 5<<20)
	}
}

func TestPartBelowMinimumRefusedOnCompletion(t *testing.T) {
	s := memsink.New(memsink.Options{MinPartSize: 100})
	body := bytes.Repeat([]byte("x"), 250)
	id, ps := multipart(t, s, "small", body, 50, 200)
	err := s.CompleteMultipart(t.Context(), "small", id, ps, sum(body), false)
	wantPermanent(t, "CompleteMultipart with a short first part", err, nil)
	var e *sink.Error
	if errors.As(err, &e); e.Code != "EntityTooSmall" {
		t.Errorf("code %q, want EntityTooSmall", e.Code)
	}
	if s.Uploads() != 1 {
		t.Errorf("Uploads() = %d after the refusal, want the upload kept", s.Uploads())
	}
	// The last part may be short.
	id, ps = multipart(t, s, "ok", body, 100, 100, 50)
	if err := s.CompleteMultipart(t.Context(), "ok", id, ps, sum(body), false); err != nil {
		t.Fatal(err)
	}
}

func TestCompleteChecksTheParts(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 10)
	for name, change := range map[string]func([]sink.Part) []sink.Part{
		"wrong etag":   func(ps []sink.Part) []sink.Part { ps[0].ETag = `"x"`; return ps },
		"wrong sha256": func(ps []sink.Part) []sink.Part { ps[1].SHA256[0] ^= 1; return ps },
		"wrong offset": func(ps []sink.Part) []sink.Part { ps[1].Offset--; return ps },
		"out of order": func(ps []sink.Part) []sink.Part { ps[0], ps[1] = ps[1], ps[0]; return ps },
		"missing part": func(ps []sink.Part) []sink.Part { return ps[:1] },
		"no parts":     func(ps []sink.Part) []sink.Part { return nil },
		"never uploaded": func(ps []sink.Part) []sink.Part {
			return append(ps, sink.Part{Number: 3, Offset: 100, ETag: ps[0].ETag})
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := memsink.New(memsink.Options{})
			id, ps := multipart(t, s, "k", body, 40, 60)
			err := s.CompleteMultipart(t.Context(), "k", id, change(ps), sum(body), false)
			wantPermanent(t, "CompleteMultipart", err, nil)
			if _, ok := s.Object("k"); ok || s.Uploads() != 1 {
				t.Fatalf("after a refused completion: object stored %v, %d uploads; want none and 1", ok, s.Uploads())
			}
		})
	}
}

func TestCompleteChecksTheWholeSum(t *testing.T) {
	s := memsink.New(memsink.Options{})
	body := bytes.Repeat([]byte("0123456789"), 10)
	id, ps := multipart(t, s, "k", body, 40, 60)
	wrong := sum(body)
	wrong[0] ^= 1
	wantPermanent(t, "CompleteMultipart with a wrong whole-object sha256", s.CompleteMultipart(t.Context(), "k", id, ps, wrong, false), nil)
	if _, ok := s.Object("k"); ok || s.Uploads() != 1 {
		t.Fatalf("after a refused completion: object stored %v, %d uploads; want none and 1", ok, s.Uploads())
	}
}

func TestMultipartStatAndListParts(t *testing.T) {
	s := memsink.New(memsink.Options{})
	ctx := t.Context()
	body := []byte("a multipart object, in three parts")
	id, ps := multipart(t, s, "m", body, 10, 10, int64(len(body)-20))
	got, err := s.ListParts(ctx, "m", id)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		p.Offset = 0 // not known to a target
		if got[i] != p {
			t.Errorf("ListParts()[%d] = %+v, want %+v", i, got[i], p)
		}
		if p.ETag == p.SHA256.Hex() {
			t.Errorf("part %d: ETag is the SHA-256; want it distinct, as S3's", p.Number)
		}
	}
	if _, err := s.ListParts(ctx, "other key", id); !errors.Is(err, sink.ErrNotFound) {
		t.Errorf("ListParts under another key = %v, want sink.ErrNotFound", err)
	}
	if err := s.CompleteMultipart(ctx, "m", id, ps, sum(body), false); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(ctx, "m")
	if want := (sink.Info{Size: int64(len(body)), SHA256: sum(body).Hex()}); err != nil || info != want {
		t.Fatalf("Stat = %+v, %v; want %+v", info, err, want)
	}
	_, err = s.ListParts(ctx, "m", id)
	wantPermanent(t, "ListParts of a completed upload", err, sink.ErrNotFound)
	_, err = s.UploadPart(ctx, "m", id, ps[0], body[:10])
	wantPermanent(t, "UploadPart to a completed upload", err, sink.ErrNotFound)

	// Aborted: gone as well.
	id, _ = multipart(t, s, "a", body, int64(len(body)))
	if err := s.AbortMultipart(ctx, "a", id); err != nil {
		t.Fatal(err)
	}
	_, err = s.ListParts(ctx, "a", id)
	wantPermanent(t, "ListParts of an aborted upload", err, sink.ErrNotFound)
}

func TestRejectedWritesStoreNothing(t *testing.T) {
	s := memsink.New(memsink.Options{})
	ctx := t.Context()
	body := []byte("payload")
	wrong := sum([]byte("other"))
	wantPermanent(t, "Put with a wrong sum", s.Put(ctx, "p", body, wrong, false), sink.ErrChecksum)

	id, err := s.CreateMultipart(ctx, "m", int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.UploadPart(ctx, "m", id, sink.Part{Number: 1, Size: int64(len(body)), SHA256: wrong}, body)
	wantPermanent(t, "UploadPart with a wrong sum", err, sink.ErrChecksum)
	_, err = s.UploadPart(ctx, "m", id, sink.Part{Number: 1, Size: 3, SHA256: sum(body)}, body)
	wantPermanent(t, "UploadPart with a body not of the part's size", err, nil)
	if ps, err := s.ListParts(ctx, "m", id); err != nil || len(ps) != 0 {
		t.Fatalf("ListParts after rejected parts = %v, %v; want none", ps, err)
	}

	for _, key := range []string{"", "\xff", string(bytes.Repeat([]byte("k"), 1025))} {
		wantPermanent(t, fmt.Sprintf("Put(%.10q)", key), s.Put(ctx, key, body, sum(body), false), nil)
	}
	if keys := s.Keys(); len(keys) != 0 {
		t.Fatalf("Keys() = %q, want none", keys)
	}
}

func TestIfAbsentKeepsObjectAndUpload(t *testing.T) {
	s := memsink.New(memsink.Options{})
	ctx := t.Context()
	first, second := []byte("first"), []byte("second")
	if err := s.Put(ctx, "k", first, sum(first), true); err != nil {
		t.Fatal(err)
	}
	wantPermanent(t, "Put(ifAbsent) to a taken key", s.Put(ctx, "k", second, sum(second), true), sink.ErrExists)
	id, ps := multipart(t, s, "k", second, int64(len(second)))
	wantPermanent(t, "CompleteMultipart(ifAbsent) to a taken key", s.CompleteMultipart(ctx, "k", id, ps, sum(second), true), sink.ErrExists)
	if b, _ := s.Object("k"); !bytes.Equal(b, first) || s.Uploads() != 1 {
		t.Fatalf("after refusals: object %q, %d uploads; want %q and the upload kept", b, s.Uploads(), first)
	}
	// Without ifAbsent the same completion replaces the object.
	if err := s.CompleteMultipart(ctx, "k", id, ps, sum(second), false); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.Object("k"); !bytes.Equal(b, second) || s.Uploads() != 0 {
		t.Fatalf("after completing: object %q, %d uploads; want %q and none", b, s.Uploads(), second)
	}
}

// The uploader reuses its buffers: the sink must not keep them, nor hand
// out its own.
func TestCopies(t *testing.T) {
	s := memsink.New(memsink.Options{})
	ctx := t.Context()
	buf := []byte("put body")
	want := bytes.Clone(buf)
	if err := s.Put(ctx, "p", buf, sum(buf), false); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXX")

	part := []byte("part body")
	wantPart := bytes.Clone(part)
	id, err := s.CreateMultipart(ctx, "m", int64(len(part)))
	if err != nil {
		t.Fatal(err)
	}
	p := sink.Part{Number: 1, Size: int64(len(part)), SHA256: sum(part)}
	if p.ETag, err = s.UploadPart(ctx, "m", id, p, part); err != nil {
		t.Fatal(err)
	}
	copy(part, "XXXXXXXXX")
	if err := s.CompleteMultipart(ctx, "m", id, []sink.Part{p}, sum(wantPart), false); err != nil {
		t.Fatal(err)
	}

	for key, want := range map[string][]byte{"p": want, "m": wantPart} {
		got, err := s.Get(ctx, key, 100)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Get(%s) = %q, %v; want %q", key, got, err, want)
		}
		got[0] = 'Y'
		obj, _ := s.Object(key)
		if !bytes.Equal(obj, want) {
			t.Fatalf("Object(%s) = %q after changing what Get returned; want %q", key, obj, want)
		}
		obj[0] = 'Z'
		if again, _ := s.Get(ctx, key, 100); !bytes.Equal(again, want) {
			t.Fatalf("Get(%s) = %q after changing what Object returned; want %q", key, again, want)
		}
	}
}

func TestHelpers(t *testing.T) {
	s := memsink.New(memsink.Options{})
	ctx := t.Context()
	if _, ok := s.Object("a"); ok || len(s.Keys()) != 0 || s.Uploads() != 0 {
		t.Fatal("a new sink is not empty")
	}
	for _, k := range []string{"b/2", "a", "b/10"} {
		if err := s.Put(ctx, k, []byte(k), sum([]byte(k)), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "empty", nil, sum(nil), false); err != nil {
		t.Fatal(err)
	}
	id, _ := multipart(t, s, "c", []byte("in progress"), 11)
	if _, err := s.CreateMultipart(ctx, "d", 1); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Keys(), []string{"a", "b/10", "b/2", "empty"}; !slices.Equal(got, want) {
		t.Errorf("Keys() = %q, want %q", got, want)
	}
	if b, ok := s.Object("b/2"); !ok || string(b) != "b/2" {
		t.Errorf("Object(b/2) = %q, %v", b, ok)
	}
	if b, ok := s.Object("empty"); !ok || b == nil || len(b) != 0 {
		t.Errorf("Object(empty) = %#v, %v; want an empty, non-nil slice", b, ok)
	}
	if _, ok := s.Object("c"); ok {
		t.Error("an upload in progress is an object")
	}
	if n := s.Uploads(); n != 2 {
		t.Errorf("Uploads() = %d, want 2", n)
	}
	if err := s.AbortMultipart(ctx, "c", id); err != nil {
		t.Fatal(err)
	}
	if n := s.Uploads(); n != 1 {
		t.Errorf("Uploads() after an abort = %d, want 1", n)
	}
	for op, want := range map[string]int{memsink.OpPut: 4, memsink.OpCreateMultipart: 2, memsink.OpUploadPart: 1, memsink.OpAbortMultipart: 1, memsink.OpGet: 0} {
		if n := s.Calls(op); n != want {
			t.Errorf("Calls(%s) = %d, want %d", op, n, want)
		}
	}
}

// call is one call of each sink.Sink method.
var call = map[string]func(ctx context.Context, s *memsink.Sink, key string) error{
	memsink.OpPut: func(ctx context.Context, s *memsink.Sink, key string) error {
		return s.Put(ctx, key, []byte("x"), sum([]byte("x")), false)
	},
	memsink.OpCreateMultipart: func(ctx context.Context, s *memsink.Sink, key string) error {
		_, err := s.CreateMultipart(ctx, key, 1)
		return err
	},
	memsink.OpUploadPart: func(ctx context.Context, s *memsink.Sink, key string) error {
		_, err := s.UploadPart(ctx, key, "id", sink.Part{Number: 1, Size: 1, SHA256: sum([]byte("x"))}, []byte("x"))
		return err
	},
	memsink.OpCompleteMultipart: func(ctx context.Context, s *memsink.Sink, key string) error {
		return s.CompleteMultipart(ctx, key, "id", []sink.Part{{Number: 1, Size: 1, ETag: "e"}}, sink.Digest{}, false)
	},
	memsink.OpListParts: func(ctx context.Context, s *memsink.Sink, key string) error {
		_, err := s.ListParts(ctx, key, "id")
		return err
	},
	memsink.OpListUploads: func(ctx context.Context, s *memsink.Sink, key string) error {
		_, err := s.ListUploads(ctx, key)
		return err
	},
	memsink.OpAbortMultipart: func(ctx context.Context, s *memsink.Sink, key string) error {
		return s.AbortMultipart(ctx, key, "id")
	},
	memsink.OpStat: func(ctx context.Context, s *memsink.Sink, key string) error {
		_, err := s.Stat(ctx, key)
		return err
	},
	memsink.OpList: func(ctx context.Context, s *memsink.Sink, key string) error {
		_, err := s.List(ctx, key)
		return err
	},
	memsink.OpGet: func(ctx context.Context, s *memsink.Sink, key string) error {
		_, err := s.Get(ctx, key, 10)
		return err
	},
}

func TestBeforeHook(t *testing.T) {
	type seen struct {
		op, key string
		n       int
	}
	var got []seen
	injected := errors.New("injected")
	s := memsink.New(memsink.Options{})
	s.SetBefore(func(op, key string, n int) error {
		got = append(got, seen{op, key, n})
		return sink.NewTransient(op, injected)
	})
	for op, f := range call {
		for range 2 {
			err := f(t.Context(), s, "key/"+op)
			var e *sink.Error
			if !errors.Is(err, injected) || !errors.As(err, &e) || e.Class != sink.Transient || e.Op != op {
				t.Errorf("%s = %v, want the hook's transient error, unchanged", op, err)
			}
		}
	}
	if len(got) != 2*len(call) {
		t.Fatalf("hook called %d times, want %d", len(got), 2*len(call))
	}
	for i := 0; i < len(got); i += 2 {
		op := got[i].op
		if want := (seen{op, "key/" + op, 1}); got[i] != want {
			t.Errorf("first call: hook saw %+v, want %+v", got[i], want)
		}
		if want := (seen{op, "key/" + op, 2}); got[i+1] != want {
			t.Errorf("second call: hook saw %+v, want %+v", got[i+1], want)
		}
	}
	// A failed call does nothing.
	if len(s.Keys()) != 0 || s.Uploads() != 0 {
		t.Fatalf("calls failed by the hook stored %q and %d uploads", s.Keys(), s.Uploads())
	}

	// The hook may fail one call and let the next through, and may use
	// the sink itself (it runs without the lock).
	s.SetBefore(func(op, key string, n int) error {
		if op == memsink.OpPut && n == 3 {
			if _, ok := s.Object(key); ok {
				t.Errorf("Object(%s) present before any Put of it went through", key)
			}
			return sink.NewTransient(op, injected)
		}
		return nil
	})
	if err := call[memsink.OpPut](t.Context(), s, "k"); !errors.Is(err, injected) {
		t.Fatalf("Put #3 = %v, want the injected error", err)
	}
	if err := call[memsink.OpPut](t.Context(), s, "k"); err != nil {
		t.Fatalf("Put #4 = %v, want it through", err)
	}
	s.SetBefore(nil)
	if err := call[memsink.OpPut](t.Context(), s, "k"); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsBefore(t *testing.T) {
	fail := errors.New("no")
	s := memsink.New(memsink.Options{Before: func(op, key string, n int) error { return fail }})
	if _, err := s.Stat(t.Context(), "k"); err != fail {
		t.Fatalf("Stat = %v, want the hook's error as it is", err)
	}
}

// A done context fails every call with a transient error wrapping
// ctx.Err(), as s3sink does, and the call does nothing.
func TestCancelledContext(t *testing.T) {
	s := memsink.New(memsink.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for op, f := range call {
		err := f(ctx, s, "k")
		var e *sink.Error
		if !errors.Is(err, context.Canceled) || !errors.As(err, &e) || e.Class != sink.Transient || e.Op != op {
			t.Errorf("%s with a cancelled context = %v, want a transient error of %s wrapping context.Canceled", op, err, op)
		}
	}
	if len(s.Keys()) != 0 || s.Uploads() != 0 {
		t.Fatalf("cancelled calls stored %q and %d uploads", s.Keys(), s.Uploads())
	}
}

// A hook that blocks until the caller gives up makes a call that hangs
// and then fails with the caller's context.
func TestHangingCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memsink.New(memsink.Options{})
		release := make(chan struct{})
		s.SetBefore(func(op, key string, n int) error { <-release; return nil })
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		go func() { <-ctx.Done(); close(release) }()
		err := s.Put(ctx, "k", []byte("x"), sum([]byte("x")), false)
		if !errors.Is(err, context.DeadlineExceeded) || sink.IsPermanent(err) {
			t.Fatalf("Put = %v, want a transient error wrapping context.DeadlineExceeded", err)
		}
	})
}

func TestListUploadsInitiated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memsink.New(memsink.Options{}) // time.Now: the bubble's fake clock
		ctx := t.Context()
		start := time.Now()
		b, _ := s.CreateMultipart(ctx, "dir/b", 1)
		time.Sleep(time.Hour)
		a, _ := s.CreateMultipart(ctx, "dir/a", 1)
		if _, err := s.CreateMultipart(ctx, "dirx", 1); err != nil {
			t.Fatal(err)
		}
		ups, err := s.ListUploads(ctx, "dir/")
		if err != nil {
			t.Fatal(err)
		}
		want := []sink.Upload{{Key: "dir/a", ID: a, Initiated: start.Add(time.Hour)}, {Key: "dir/b", ID: b, Initiated: start}}
		if !slices.EqualFunc(ups, want, func(x, y sink.Upload) bool { return x.Key == y.Key && x.ID == y.ID && x.Initiated.Equal(y.Initiated) }) {
			t.Fatalf("ListUploads = %+v, want %+v", ups, want)
		}
	})

	at := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	s := memsink.New(memsink.Options{Now: func() time.Time { return at }})
	if _, err := s.CreateMultipart(t.Context(), "k", 1); err != nil {
		t.Fatal(err)
	}
	if ups, err := s.ListUploads(t.Context(), ""); err != nil || len(ups) != 1 || !ups[0].Initiated.Equal(at) {
		t.Fatalf("ListUploads = %+v, %v; want one initiated at %v (Options.Now)", ups, err, at)
	}
}

// Many goroutines putting objects and parts of shared uploads, with
// readers alongside; run with -race.
func TestConcurrent(t *testing.T) {
	const (
		writers  = 16
		perGo    = 20
		partSize = 1 << 10
		uploads  = 4
	)
	s := memsink.New(memsink.Options{MinPartSize: partSize})
	ctx := t.Context()
	body := bytes.Repeat([]byte("0123456789abcdef"), writers*partSize/16)
	ids := make([]string, uploads)
	for u := range ids {
		var err error
		if ids[u], err = s.CreateMultipart(ctx, fmt.Sprintf("multi/%d", u), int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	ps := parts(body, slices.Repeat([]int64{partSize}, writers)...)
	var hooked atomic.Int64 // hooks run concurrently too
	s.SetBefore(func(op, key string, n int) error {
		hooked.Add(1)
		return nil
	})

	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			buf := make([]byte, 64) // reused, as the uploader reuses its buffers
			for i := range perGo {
				copy(buf, fmt.Sprintf("object %d of goroutine %d", i, g))
				if err := s.Put(ctx, fmt.Sprintf("put/%02d/%02d", g, i), buf, sum(buf), false); err != nil {
					t.Error(err)
					return
				}
			}
			p := ps[g]
			part := bytes.Clone(body[p.Offset : p.Offset+p.Size])
			for u, id := range ids {
				if _, err := s.UploadPart(ctx, fmt.Sprintf("multi/%d", u), id, p, part); err != nil {
					t.Error(err)
					return
				}
			}
		})
		wg.Go(func() {
			for range perGo {
				s.Keys()
				s.Uploads()
				if _, err := s.List(ctx, "put/"); err != nil {
					t.Error(err)
				}
				if _, err := s.ListParts(ctx, "multi/0", ids[0]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if n := len(s.Keys()); n != writers*perGo {
		t.Fatalf("%d objects, want %d", n, writers*perGo)
	}
	for u, id := range ids {
		key := fmt.Sprintf("multi/%d", u)
		listed, err := s.ListParts(ctx, key, id)
		if err != nil || len(listed) != writers {
			t.Fatalf("ListParts(%s) = %d parts, %v; want %d", key, len(listed), err, writers)
		}
		for i := range ps {
			ps[i].ETag = listed[i].ETag
		}
		if err := s.CompleteMultipart(ctx, key, id, ps, sum(body), true); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Object(key); !bytes.Equal(got, body) {
			t.Fatalf("%s assembled wrongly", key)
		}
	}
	if n, want := s.Calls(memsink.OpUploadPart), writers*uploads; n != want {
		t.Fatalf("Calls(UploadPart) = %d, want %d", n, want)
	}
	if n, want := hooked.Load(), int64(s.Calls(memsink.OpPut)+s.Calls(memsink.OpUploadPart)+s.Calls(memsink.OpList)+s.Calls(memsink.OpListParts)+s.Calls(memsink.OpCompleteMultipart)); n != want {
		t.Fatalf("hook ran %d times, want once per call (%d)", n, want)
	}
}
