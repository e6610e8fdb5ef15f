// Package sinktest is the conformance suite every sink.Sink implementation
// runs from its own tests:
//
//	func TestConformance(t *testing.T) {
//		sinktest.Run(t, sinktest.Harness{New: ..., Read: ...})
//	}
//
// Each subtest works on fresh, random keys, so a Harness may hand out the same
// underlying store to several subtests.
package sinktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ferry-data/ferry/uploader/sink"
)

// opTimeout bounds each sink call so that a hung sink fails its subtest
// instead of the whole test binary.
const opTimeout = 2 * time.Minute

// Harness adapts a sink implementation to the suite.
type Harness struct {
	// New returns a sink for one subtest, failing t if it cannot. Cleanup
	// belongs in t.Cleanup.
	New func(t *testing.T) sink.Sink
	// Read returns the bytes stored under key in s (a sink returned by
	// New), failing t if there is no such object.
	Read func(t *testing.T, s sink.Sink, key string) []byte
}

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.Read == nil {
		t.Fatal("sinktest: Harness needs New and Read")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"PutThenStat", testPutThenStat},
		{"PutEmpty", testPutEmpty},
		{"Keys", testKeys},
		{"Multipart", testMultipart},
		{"StatMissing", testStatMissing},
		{"AbortMultipart", testAbortMultipart},
		{"AbortUnknownUpload", testAbortUnknownUpload},
		{"PutWrongDigest", testPutWrongDigest},
		{"UploadPartWrongDigest", testUploadPartWrongDigest},
		{"Overwrite", testOverwrite},
		{"ListParts", testListParts},
		{"ListUploads", testListUploads},
		{"IfAbsent", testIfAbsent},
		{"ListAndGet", testListAndGet},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

func testPutThenStat(t *testing.T, h Harness) {
	s := h.New(t)
	key := freshKey(t, "put/object.bin")
	body := randomBytes(t, 100_003)
	want := bytes.Clone(body)
	put(t, s, key, body)
	// The uploader reuses its buffers: what a sink stores must not change
	// with them.
	clear(body)
	checkStored(t, h, s, key, want)
}

func testPutEmpty(t *testing.T, h Harness) {
	s := h.New(t)
	key := freshKey(t, "empty.dat")
	put(t, s, key, []byte{})
	checkStored(t, h, s, key, []byte{})
}

func testKeys(t *testing.T, h Harness) {
	s := h.New(t)
	for _, name := range []string{
		"with space.txt",
		"run 1/größe ü.tif",
		"日本/データ.bin",
		"a/b/c/d/e/f/deep.raw",
		"punct+plus=eq,comma;semi@at (1)~tilde'q.txt",
		"dir.with.dots/file-name_with-dashes.tar.gz",
	} {
		t.Run(name, func(t *testing.T) {
			key := freshKey(t, name)
			body := append([]byte(key), randomBytes(t, 64)...)
			put(t, s, key, body)
			checkStored(t, h, s, key, body)
		})
	}
}

func testMultipart(t *testing.T, h Harness) {
	s := h.New(t)
	min := max(s.MinPartSize(), 1)
	key := freshKey(t, "multi/part file.bin")
	// Three parts of the minimum size and a short last part (short at
	// least for any sink whose minimum is above 12,345 bytes).
	parts, body := makeParts(t, min, min, min, 12_345)

	id := createMultipart(t, s, key, body)
	// Send the parts in reverse: a sink must not depend on arrival order.
	for i := len(parts) - 1; i >= 0; i-- {
		parts[i].ETag = uploadPart(t, s, key, id, parts[i], body)
	}
	// A part sent again (a retry after a lost answer) replaces the first.
	parts[0].ETag = uploadPart(t, s, key, id, parts[0], body)
	// Nor may a sink keep the buffers of parts.
	want := bytes.Clone(body)
	clear(body)
	ctx := testContext(t)
	if err := s.CompleteMultipart(ctx, key, id, parts, sha256.Sum256(want), false); err != nil {
		t.Fatalf("CompleteMultipart(%q): %v", key, err)
	}
	checkStored(t, h, s, key, want)
	// Completing again (a retry after a lost answer, or after a crash
	// before the hash was stored) either proves the object is these parts
	// and succeeds, or finds no such upload; the object stays as it is.
	if err := s.CompleteMultipart(ctx, key, id, parts, sha256.Sum256(want), false); err != nil && !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("CompleteMultipart of a completed upload = %v, want nil or sink.ErrNotFound", err)
	}
	for i := range parts {
		parts[i].ETag = ""
	}
	if err := s.CompleteMultipart(ctx, key, id, parts, sha256.Sum256(want), true); err != nil && !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("CompleteMultipart of a completed upload, parts without ETags = %v, want nil or sink.ErrNotFound", err)
	}
	checkStored(t, h, s, key, want)
	// Other parts are never taken for the object.
	other := slices.Clone(parts)
	other[0].SHA256[0] ^= 1
	if err := s.CompleteMultipart(ctx, key, id, other, sha256.Sum256(want), false); !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("CompleteMultipart of a completed upload with other parts = %v, want sink.ErrNotFound", err)
	}
	checkStored(t, h, s, key, want)
}

func testStatMissing(t *testing.T, h Harness) {
	s := h.New(t)
	key := freshKey(t, "never/written.bin")
	_, err := s.Stat(testContext(t), key)
	if !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("Stat(missing %q) = %v, want an error matching sink.ErrNotFound", key, err)
	}
}

func testAbortMultipart(t *testing.T, h Harness) {
	s := h.New(t)
	min := max(s.MinPartSize(), 1)
	key := freshKey(t, "aborted.bin")
	parts, body := makeParts(t, min, 10)
	id := createMultipart(t, s, key, body)
	parts[0].ETag = uploadPart(t, s, key, id, parts[0], body)

	ctx := testContext(t)
	if err := s.AbortMultipart(ctx, key, id); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("Stat after abort = %v, want sink.ErrNotFound", err)
	}
	if _, err := s.ListParts(ctx, key, id); !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("ListParts of an aborted upload = %v, want sink.ErrNotFound", err)
	}
	// The upload no longer exists: aborting it again is not an error.
	if err := s.AbortMultipart(ctx, key, id); err != nil {
		t.Fatalf("second AbortMultipart: %v", err)
	}
	if err := s.CompleteMultipart(ctx, key, id, parts[:1], sha256.Sum256(body[:parts[0].Size]), false); err == nil {
		t.Fatal("CompleteMultipart of an aborted upload succeeded")
	}
}

func testAbortUnknownUpload(t *testing.T, h Harness) {
	s := h.New(t)
	key := freshKey(t, "no-upload.bin")
	// Shaped like an upload id of many stores, but never issued.
	id := "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	if err := s.AbortMultipart(testContext(t), key, id); err != nil {
		t.Fatalf("AbortMultipart(unknown id) = %v, want nil", err)
	}
}

func testPutWrongDigest(t *testing.T, h Harness) {
	s := h.New(t)
	key := freshKey(t, "bad-digest.bin")
	body := randomBytes(t, 4096)
	wrong := sink.Digest(sha256.Sum256(append(body, 'x')))
	err := s.Put(testContext(t), key, body, wrong, false)
	checkChecksumError(t, "Put", err)
	if _, err := s.Stat(testContext(t), key); !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("Stat after rejected Put = %v, want sink.ErrNotFound", err)
	}
}

func testUploadPartWrongDigest(t *testing.T, h Harness) {
	s := h.New(t)
	min := max(s.MinPartSize(), 1)
	key := freshKey(t, "bad-part-digest.bin")
	parts, body := makeParts(t, min, 10)
	id := createMultipart(t, s, key, body)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if err := s.AbortMultipart(ctx, key, id); err != nil {
			t.Errorf("AbortMultipart: %v", err)
		}
	})

	p := parts[0]
	p.SHA256[0] ^= 0xff
	_, err := s.UploadPart(testContext(t), key, id, p, body[p.Offset:p.Offset+p.Size])
	checkChecksumError(t, "UploadPart", err)
	if got, err := s.ListParts(testContext(t), key, id); err != nil || len(got) != 0 {
		t.Fatalf("ListParts after the rejected part = %+v, %v; want none", got, err)
	}
}

func testOverwrite(t *testing.T, h Harness) {
	s := h.New(t)
	key := freshKey(t, "overwritten.bin")
	first := randomBytes(t, 2000)
	second := randomBytes(t, 1500)
	put(t, s, key, first)
	checkStored(t, h, s, key, first)
	put(t, s, key, second)
	checkStored(t, h, s, key, second)
}

// freshKey returns name under a random prefix unique to this call.
func freshKey(t *testing.T, name string) string {
	t.Helper()
	return "sinktest-" + hex.EncodeToString(randomBytes(t, 6)) + "/" + name
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// testContext returns a context bounded by opTimeout and t's lifetime.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, s sink.Sink, key string, body []byte) {
	t.Helper()
	if err := s.Put(testContext(t), key, body, sha256.Sum256(body), false); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(body), err)
	}
}

func createMultipart(t *testing.T, s sink.Sink, key string, body []byte) string {
	t.Helper()
	id, err := s.CreateMultipart(testContext(t), key, int64(len(body)))
	if err != nil {
		t.Fatalf("CreateMultipart(%q): %v", key, err)
	}
	if id == "" {
		t.Fatalf("CreateMultipart(%q) returned an empty upload id", key)
	}
	return id
}

func uploadPart(t *testing.T, s sink.Sink, key, id string, p sink.Part, body []byte) string {
	t.Helper()
	etag, err := s.UploadPart(testContext(t), key, id, p, body[p.Offset:p.Offset+p.Size])
	if err != nil {
		t.Fatalf("UploadPart(%q, part %d): %v", key, p.Number, err)
	}
	if etag == "" {
		t.Fatalf("UploadPart(%q, part %d) returned an empty ETag", key, p.Number)
	}
	return etag
}

// makeParts returns random bytes cut into parts of the given sizes.
func makeParts(t *testing.T, sizes ...int64) ([]sink.Part, []byte) {
	t.Helper()
	var total int64
	for _, n := range sizes {
		total += n
	}
	body := randomBytes(t, int(total))
	parts := make([]sink.Part, len(sizes))
	var off int64
	for i, n := range sizes {
		parts[i] = sink.Part{
			Number: i + 1,
			Offset: off,
			Size:   n,
			SHA256: sha256.Sum256(body[off : off+n]),
		}
		off += n
	}
	return parts, body
}

// checkStored asserts that Stat and Read agree with body.
func checkStored(t *testing.T, h Harness, s sink.Sink, key string, body []byte) {
	t.Helper()
	info, err := s.Stat(testContext(t), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	want := sink.Digest(sha256.Sum256(body)).Hex()
	if info.Size != int64(len(body)) || info.SHA256 != want {
		t.Errorf("Stat(%q) = {Size: %d, SHA256: %q}, want {Size: %d, SHA256: %q}",
			key, info.Size, info.SHA256, len(body), want)
	}
	got := h.Read(t, s, key)
	if !bytes.Equal(got, body) {
		t.Errorf("Read(%q): %d bytes with sha256 %x, want %d bytes with sha256 %s",
			key, len(got), sha256.Sum256(got), len(body), want)
	}
}

func checkChecksumError(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s with a wrong digest succeeded", op)
	}
	if !errors.Is(err, sink.ErrChecksum) {
		t.Errorf("%s with a wrong digest: %v; want an error matching sink.ErrChecksum", op, err)
	}
	if !sink.IsPermanent(err) {
		t.Errorf("%s with a wrong digest: %v; want a permanent error", op, err)
	}
}

// ListParts reports what an upload holds, so that an interrupted upload can
// resume; a finished or aborted one is not found.
func testListParts(t *testing.T, h Harness) {
	s := h.New(t)
	min := max(s.MinPartSize(), 1)
	key := freshKey(t, "resume/parts.bin")
	parts, body := makeParts(t, min, min, min, 777)
	id := createMultipart(t, s, key, body)
	ctx := testContext(t)
	if got, err := s.ListParts(ctx, key, id); err != nil || len(got) != 0 {
		t.Fatalf("ListParts of a new upload = %v, %v; want none", got, err)
	}
	// Parts 1 and 3 arrived; 2 and 4 did not (a crash in between).
	parts[0].ETag = uploadPart(t, s, key, id, parts[0], body)
	parts[2].ETag = uploadPart(t, s, key, id, parts[2], body)
	got, err := s.ListParts(ctx, key, id)
	if err != nil {
		t.Fatalf("ListParts: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("ListParts = %d parts, want 2: %+v", len(got), got)
	}
	for i, want := range []sink.Part{parts[0], parts[2]} {
		g := got[i]
		if g.Number != want.Number || g.Size != want.Size || g.SHA256 != want.SHA256 || g.ETag != want.ETag {
			t.Errorf("part %d: got number %d size %d sha256 %s etag %q; want %d %d %s %q",
				i, g.Number, g.Size, g.SHA256.Hex(), g.ETag, want.Number, want.Size, want.SHA256.Hex(), want.ETag)
		}
	}
	// Send the rest and complete with what the listing returned.
	parts[1].ETag = uploadPart(t, s, key, id, parts[1], body)
	parts[3].ETag = uploadPart(t, s, key, id, parts[3], body)
	if err := s.CompleteMultipart(ctx, key, id, parts, sha256.Sum256(body), false); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	checkStored(t, h, s, key, body)
	if _, err := s.ListParts(ctx, key, id); !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("ListParts of a completed upload = %v, want sink.ErrNotFound", err)
	}
	if _, err := s.ListParts(ctx, key, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"); !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("ListParts of an unknown upload = %v, want sink.ErrNotFound", err)
	}
}

// ListUploads finds the uploads in progress under a prefix, and only those.
func testListUploads(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	dir := freshKey(t, "orphans") + "/"
	_, body := makeParts(t, 10)
	before := time.Now().Add(-time.Minute)
	a := createMultipart(t, s, dir+"a.bin", body)
	b := createMultipart(t, s, dir+"sub/b.bin", body)
	otherKey := freshKey(t, "elsewhere.bin")
	other := createMultipart(t, s, otherKey, body)
	t.Cleanup(func() {
		for _, u := range []struct{ k, id string }{{dir + "a.bin", a}, {dir + "sub/b.bin", b}, {otherKey, other}} {
			s.AbortMultipart(context.Background(), u.k, u.id)
		}
	})
	ups, err := s.ListUploads(ctx, dir)
	if err != nil {
		t.Fatalf("ListUploads: %v", err)
	}
	got := map[string]string{}
	for _, u := range ups {
		got[u.ID] = u.Key
		if u.Initiated.Before(before) || u.Initiated.After(time.Now().Add(time.Minute)) {
			t.Errorf("upload %s initiated %v, want about now", u.ID, u.Initiated)
		}
	}
	if len(got) != 2 || got[a] != dir+"a.bin" || got[b] != dir+"sub/b.bin" {
		t.Fatalf("ListUploads(%q) = %v, want exactly %s and %s", dir, got, a, b)
	}
	if err := s.AbortMultipart(ctx, dir+"a.bin", a); err != nil {
		t.Fatal(err)
	}
	ups, err = s.ListUploads(ctx, dir)
	if err != nil || len(ups) != 1 || ups[0].ID != b {
		t.Fatalf("after aborting one: %+v, %v; want only %s", ups, err, b)
	}
}

// A create-only write never replaces an object: Put and CompleteMultipart
// with ifAbsent fail with ErrExists when the key is taken, and succeed when
// it is free.
func testIfAbsent(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	key := freshKey(t, "once/object.bin")
	first := randomBytes(t, 1000)
	if err := s.Put(ctx, key, first, sha256.Sum256(first), true); err != nil {
		t.Fatalf("Put(ifAbsent) to a free key: %v", err)
	}
	second := randomBytes(t, 1000)
	err := s.Put(ctx, key, second, sha256.Sum256(second), true)
	if !errors.Is(err, sink.ErrExists) || !sink.IsPermanent(err) {
		t.Fatalf("Put(ifAbsent) to a taken key = %v, want a permanent error matching sink.ErrExists", err)
	}
	checkStored(t, h, s, key, first)

	min := max(s.MinPartSize(), 1)
	parts, body := makeParts(t, min, 99)
	id := createMultipart(t, s, key, body)
	for i := range parts {
		parts[i].ETag = uploadPart(t, s, key, id, parts[i], body)
	}
	err = s.CompleteMultipart(ctx, key, id, parts, sha256.Sum256(body), true)
	if !errors.Is(err, sink.ErrExists) {
		t.Fatalf("CompleteMultipart(ifAbsent) to a taken key = %v, want sink.ErrExists", err)
	}
	checkStored(t, h, s, key, first)
	if err := s.AbortMultipart(ctx, key, id); err != nil {
		t.Fatalf("AbortMultipart after the refusal: %v", err)
	}
	free := freshKey(t, "once/free.bin")
	id = createMultipart(t, s, free, body)
	for i := range parts {
		parts[i].ETag = uploadPart(t, s, free, id, parts[i], body)
	}
	if err := s.CompleteMultipart(ctx, free, id, parts, sha256.Sum256(body), true); err != nil {
		t.Fatalf("CompleteMultipart(ifAbsent) to a free key: %v", err)
	}
	checkStored(t, h, s, free, body)
}

// List returns exactly the objects under a prefix, sorted, complete ones
// only (not a multipart upload in progress, not the sink's own files);
// Get returns an object's bytes, ErrNotFound for a missing key and a
// permanent ErrTooLarge past its limit.
func testListAndGet(t *testing.T, h Harness) {
	s := h.New(t)
	ctx := testContext(t)
	base := freshKey(t, "list")
	bodies := map[string][]byte{}
	for _, k := range []string{"b/2.json", "b/10.json", "a/1.json", "a.json"} {
		bodies[base+"/"+k] = randomBytes(t, 100)
		put(t, s, base+"/"+k, bodies[base+"/"+k])
	}
	put(t, s, base+"x/outside.json", randomBytes(t, 10)) // shares the prefix text, not the folder
	parts, body := makeParts(t, max(s.MinPartSize(), 1), 10)
	id := createMultipart(t, s, base+"/b/3.json", body)
	uploadPart(t, s, base+"/b/3.json", id, parts[0], body)
	t.Cleanup(func() { s.AbortMultipart(context.Background(), base+"/b/3.json", id) })

	list := func(prefix string) []string {
		t.Helper()
		keys, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		return keys
	}
	want := []string{base + "/a.json", base + "/a/1.json", base + "/b/10.json", base + "/b/2.json"}
	if got := list(base + "/"); !slices.Equal(got, want) {
		t.Fatalf("List(%q) = %q, want %q", base+"/", got, want)
	}
	if got := list(base + "/b/"); !slices.Equal(got, want[2:]) {
		t.Fatalf("List(%q) = %q, want %q", base+"/b/", got, want[2:])
	}
	if got := list(base + "/a"); !slices.Equal(got, want[:2]) {
		t.Fatalf("List(%q) = %q, want %q (a prefix need not end at a /)", base+"/a", got, want[:2])
	}
	if got := list(base + "/none/"); len(got) != 0 {
		t.Fatalf("List of an empty prefix = %q", got)
	}

	for _, k := range want {
		b, err := s.Get(ctx, k, 100)
		if err != nil || !bytes.Equal(b, bodies[k]) {
			t.Fatalf("Get(%s) = %d bytes, %v; want the %d bytes put", k, len(b), err, len(bodies[k]))
		}
	}
	if _, err := s.Get(ctx, base+"/missing.json", 100); !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want sink.ErrNotFound", err)
	}
	if _, err := s.Get(ctx, want[0], 99); !errors.Is(err, sink.ErrTooLarge) || !sink.IsPermanent(err) {
		t.Fatalf("Get past its limit = %v, want a permanent sink.ErrTooLarge", err)
	}
}
