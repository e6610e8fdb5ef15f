package s3sink

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-data/ferry/internal/pace"
	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/sinktest"
)

// newServer starts versitygw with one bucket and returns it with a sink on
// that bucket.
func newServer(t *testing.T) (*testsrv.S3, *Sink) {
	t.Helper()
	srv := testsrv.StartS3(t)
	srv.CreateBucket(t, "ferry")
	return srv, newSinkFor(t, srv, "ferry")
}

func newSinkFor(t testing.TB, srv *testsrv.S3, bucket string) *Sink {
	t.Helper()
	s, err := New(Options{
		Endpoint:  srv.Endpoint,
		Region:    srv.Region,
		Bucket:    bucket,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// getObject reads key from bucket through the server's own client.
func getObject(t *testing.T, srv *testsrv.S3, bucket, key string) []byte {
	t.Helper()
	out, err := srv.Client().GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject(%q): %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GetObject(%q): reading body: %v", key, err)
	}
	return b
}

func TestConformance(t *testing.T) {
	srv, s := newServer(t) // one server and bucket for all subtests: keys are fresh
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sink.Sink { return s },
		Read: func(t *testing.T, s sink.Sink, key string) []byte {
			t.Helper()
			return getObject(t, srv, s.(*Sink).Bucket(), key)
		},
	})
}

// TestVersitygwChecksumErrors pins down how the server reports a wrong
// SHA-256: with the sink, whose SigV4 payload hash is the caller's digest,
// the signature check fails first (XAmzContentSHA256Mismatch); with a client
// that hashes the body itself, the x-amz-checksum-sha256 check fails
// (BadDigest). Both are permanent checksum errors.
func TestVersitygwChecksumErrors(t *testing.T) {
	srv, s := newServer(t)
	ctx := t.Context()
	body := []byte("some bytes")
	wrong := sink.Digest(sha256.Sum256([]byte("other bytes")))

	assertChecksum := func(what string, err error, code string) {
		t.Helper()
		var e *sink.Error
		if !errors.As(err, &e) || e.Class != sink.Permanent || e.Status != 400 || e.Code != code || !errors.Is(err, sink.ErrChecksum) {
			t.Errorf("%s: %v; want permanent HTTP 400 %s matching sink.ErrChecksum", what, err, code)
		}
	}
	assertChecksum("sink Put", s.Put(ctx, "a", body, wrong, false), "XAmzContentSHA256Mismatch")

	_, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket:         aws.String("ferry"),
		Key:            aws.String("b"),
		Body:           bytes.NewReader(body),
		ChecksumSHA256: aws.String(b64(wrong)),
	})
	assertChecksum("PutObject with a wrong x-amz-checksum-sha256", classify(ctx, "Put", err), "BadDigest")

	id, err := s.CreateMultipart(ctx, "c", int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.UploadPart(ctx, "c", id, sink.Part{Number: 1, Size: int64(len(body)), SHA256: wrong}, body)
	assertChecksum("sink UploadPart", err, "XAmzContentSHA256Mismatch")
	_, err = srv.Client().UploadPart(ctx, &s3.UploadPartInput{
		Bucket:         aws.String("ferry"),
		Key:            aws.String("c"),
		UploadId:       aws.String(id),
		PartNumber:     aws.Int32(1),
		Body:           bytes.NewReader(body),
		ChecksumSHA256: aws.String(b64(wrong)),
	})
	assertChecksum("UploadPart with a wrong x-amz-checksum-sha256", classify(ctx, "UploadPart", err), "BadDigest")

	parts, err := srv.Client().ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String("ferry"), Key: aws.String("c"), UploadId: aws.String(id)})
	if err != nil {
		t.Fatalf("ListParts: %v", err)
	}
	if len(parts.Parts) != 0 {
		t.Errorf("rejected parts were stored: %d parts", len(parts.Parts))
	}
	if err := s.AbortMultipart(ctx, "c", id); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
}

func TestVersitygwMultipartLeavesNoUploads(t *testing.T) {
	srv, s := newServer(t)
	ctx := t.Context()
	c := srv.Client()
	body := bytes.Repeat([]byte("ferry"), 1000)
	sum := sink.Digest(sha256.Sum256(body))

	done, err := s.CreateMultipart(ctx, "done.bin", int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	p := sink.Part{Number: 1, Size: int64(len(body)), SHA256: sum}
	if p.ETag, err = s.UploadPart(ctx, "done.bin", done, p, body); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteMultipart(ctx, "done.bin", done, []sink.Part{p}, sum, false); err != nil {
		t.Fatal(err)
	}
	aborted, err := s.CreateMultipart(ctx, "aborted.bin", int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AbortMultipart(ctx, "aborted.bin", aborted); err != nil {
		t.Fatal(err)
	}

	ups, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("ferry")})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	for _, u := range ups.Uploads {
		t.Errorf("upload left behind: key %q id %q", aws.ToString(u.Key), aws.ToString(u.UploadId))
	}
	// The whole-object SHA-256 of an object sent in parts is its tag
	// (known only once the parts were read and sent); S3's own checksum of
	// a multipart object is composite.
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("ferry"), Key: aws.String("done.bin"), ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatalf("HeadObject: %v", err)
	}
	if v, ok := head.Metadata[MetaSHA256]; ok {
		t.Errorf("metadata sha256=%s on an object sent in parts, want none (the tag holds it)", v)
	}
	if head.ChecksumType != types.ChecksumTypeComposite {
		t.Errorf("ChecksumType = %q, want COMPOSITE", head.ChecksumType)
	}
	tags, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String("ferry"), Key: aws.String("done.bin")})
	if err != nil {
		t.Fatalf("GetObjectTagging: %v", err)
	}
	if len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Key) != TagSHA256 || aws.ToString(tags.TagSet[0].Value) != sum.Hex() {
		t.Errorf("tags = %+v, want only %s=%s", tags.TagSet, TagSHA256, sum.Hex())
	}
}

// A crash between completing an upload and tagging it leaves an object
// without its SHA-256: completing again (the upload is gone) proves the
// object is made of the parts by its composite checksum and tags it;
// other parts are refused as an upload that no longer exists. An object
// sent in parts by an earlier ferry (metadata sha256, no tag) still
// reports its metadata, and a tag wins over metadata.
func TestVersitygwCompleteAgainTags(t *testing.T) {
	srv, s := newServer(t)
	ctx := t.Context()
	c := srv.Client()
	body := bytes.Repeat([]byte("ferry "), 2<<20) // 12 MiB: two parts and a tail
	sum := sink.Digest(sha256.Sum256(body))
	id, err := s.CreateMultipart(ctx, "crash.bin", int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	var parts []sink.Part
	for off, n := int64(0), 1; off < int64(len(body)); off, n = off+MinPartSize, n+1 {
		b := body[off:min(off+MinPartSize, int64(len(body)))]
		p := sink.Part{Number: n, Offset: off, Size: int64(len(b)), SHA256: sha256.Sum256(b)}
		if p.ETag, err = s.UploadPart(ctx, "crash.bin", id, p, b); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	// Completed behind the sink's back: no tag.
	cps := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		cps[i] = types.CompletedPart{PartNumber: aws.Int32(int32(p.Number)), ETag: aws.String(p.ETag), ChecksumSHA256: aws.String(b64(p.SHA256))}
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("ferry"), Key: aws.String("crash.bin"),
		UploadId: aws.String(id), MultipartUpload: &types.CompletedMultipartUpload{Parts: cps}}); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Stat(ctx, "crash.bin"); err != nil || info.SHA256 != "" || info.Size != int64(len(body)) {
		t.Fatalf("Stat of the untagged object = %+v, %v; want its size and no sha256", info, err)
	}
	// The server answers OK to completing a completed upload, whatever
	// the parts: the composite checksum refuses other parts.
	other := slices.Clone(parts)
	other[1].SHA256[0] ^= 1
	if err := s.CompleteMultipart(ctx, "crash.bin", id, other, sum, true); err == nil {
		t.Fatal("completing again with other parts succeeded")
	}
	bare := slices.Clone(parts)
	for i := range bare {
		bare[i].ETag = ""
	}
	otherBare := slices.Clone(bare)
	otherBare[1].SHA256[0] ^= 1
	if err := s.CompleteMultipart(ctx, "crash.bin", id, otherBare, sum, true); !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("completing again with other parts without ETags = %v, want sink.ErrNotFound", err)
	}
	if info, err := s.Stat(ctx, "crash.bin"); err != nil || info.SHA256 != "" {
		t.Fatalf("Stat after refusals = %+v, %v; want no sha256 yet", info, err)
	}
	if err := s.CompleteMultipart(ctx, "crash.bin", id, bare, sum, false); err != nil {
		t.Fatalf("completing again with the parts: %v", err)
	}
	if info, err := s.Stat(ctx, "crash.bin"); err != nil || info.SHA256 != sum.Hex() {
		t.Fatalf("Stat after completing again = %+v, %v; want sha256 %s", info, err, sum.Hex())
	}
	// With ETags and ifAbsent, as a retry of a completion that succeeded.
	if err := s.CompleteMultipart(ctx, "crash.bin", id, parts, sum, true); err != nil {
		t.Fatalf("retried completion, ifAbsent: %v", err)
	}

	// An earlier ferry's multipart object: metadata, no tag.
	old, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("ferry"), Key: aws.String("old.bin"),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256, Metadata: map[string]string{MetaSHA256: sum.Hex()}})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		b := body[p.Offset : p.Offset+p.Size]
		if parts[i].ETag, err = s.UploadPart(ctx, "old.bin", aws.ToString(old.UploadId), p, b); err != nil {
			t.Fatal(err)
		}
		cps[i].ETag = aws.String(parts[i].ETag)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("ferry"), Key: aws.String("old.bin"),
		UploadId: old.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: cps}}); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Stat(ctx, "old.bin"); err != nil || info.SHA256 != sum.Hex() {
		t.Fatalf("Stat of an earlier ferry's multipart object = %+v, %v; want the metadata's sha256 %s", info, err, sum.Hex())
	}
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("ferry"), Key: aws.String("old.bin"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String(TagSHA256), Value: aws.String(strings.Repeat("ab", 32))}}}}); err != nil {
		t.Fatal(err)
	}
	if info, err := s.Stat(ctx, "old.bin"); err != nil || info.SHA256 != strings.Repeat("ab", 32) {
		t.Fatalf("Stat with both = %+v, %v; want the tag's sha256", info, err)
	}
}

func TestVersitygwPermanentFailures(t *testing.T) {
	srv, _ := newServer(t)
	ctx := t.Context()
	body := []byte("x")
	sum := sink.Digest(sha256.Sum256(body))

	err := newSinkFor(t, srv, "no-such-bucket").Put(ctx, "k", body, sum, false)
	var e *sink.Error
	if !errors.As(err, &e) || e.Class != sink.Permanent || e.Status != 404 || e.Code != "NoSuchBucket" {
		t.Errorf("Put to a missing bucket: %v, want permanent 404 NoSuchBucket", err)
	}

	bad, err := New(Options{Endpoint: srv.Endpoint, Bucket: "ferry", AccessKey: srv.AccessKey, SecretKey: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Put(ctx, "k", body, sum, false)
	if !errors.As(err, &e) || e.Class != sink.Permanent || e.Status != 403 {
		t.Errorf("Put with a wrong secret: %v, want permanent 403", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	srv, s := newServer(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			body := bytes.Repeat([]byte{byte(i)}, 1000+i)
			errs <- s.Put(ctx, fmt.Sprintf("c/%d", i), body, sha256.Sum256(body), false)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i := range 8 {
		if got := getObject(t, srv, "ferry", fmt.Sprintf("c/%d", i)); len(got) != 1000+i || got[0] != byte(i) {
			t.Errorf("object %d: %d bytes", i, len(got))
		}
	}
}

// max_bandwidth: bodies are paced (through the pace decorator), and still
// land whole.
func TestPacedBodies(t *testing.T) {
	srv := testsrv.StartS3(t)
	srv.CreateBucket(t, "paced")
	s := sink.Wrap(newSinkFor(t, srv, "paced"), pace.Middleware(pace.New(4<<20)))
	ctx := t.Context()
	body := bytes.Repeat([]byte("ferry "), (6<<20)/6)
	sum := sha256.Sum256(body)
	start := time.Now()
	if err := s.Put(ctx, "p.bin", body, sum, false); err != nil {
		t.Fatal(err)
	}
	id, err := s.CreateMultipart(ctx, "m.bin", int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	etag, err := s.UploadPart(ctx, "m.bin", id, sink.Part{Number: 1, Size: int64(len(body)), SHA256: sum}, body)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteMultipart(ctx, "m.bin", id, []sink.Part{{Number: 1, Size: int64(len(body)), SHA256: sum, ETag: etag}}, sum, false); err != nil {
		t.Fatal(err)
	}
	// 12 MiB at 4 MiB/s: about 3 s (a real clock: this is a real server).
	if d := time.Since(start); d < 2500*time.Millisecond {
		t.Fatalf("12 MiB at 4 MiB/s took %v", d)
	}
	for _, k := range []string{"p.bin", "m.bin"} {
		if info, err := s.Stat(ctx, k); err != nil || info.Size != int64(len(body)) {
			t.Fatalf("%s: %+v, %v", k, info, err)
		}
	}
}
