package uploader

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/journal"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/gate"
	"github.com/ferry-data/ferry/uploader/sink/retry"
	"github.com/ferry-data/ferry/uploader/sink/s3sink"
)

// A file of more chunks than the target takes parts goes up in larger
// parts, through a real S3 server whose sink allows 4 parts.
func TestFileAboveMaxPartsChunksUsesLargerParts(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("versitygw, the tests' S3 server, is a Linux binary: a Windows test binary (make test-windows, under Wine) cannot start it")
	}
	srv := testsrv.StartS3(t)
	srv.CreateBucket(t, "ferry")
	s3s, err := s3sink.New(s3sink.Options{Endpoint: srv.Endpoint, Region: srv.Region, Bucket: "ferry",
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, MaxParts: 4})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	f := &faulty{Sink: s3s}
	const chunk = s3sink.MinPartSize
	e.u, err = New(withTargets(Options{Journal: e.j, Workers: 2, ChunkSize: chunk}, map[string]sink.Sink{"t": f},
		retry.Policy{Attempts: 3, InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}, gate.Policy{}))
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(4*chunk+1, 7) // 5 chunks: 4 parts of 6 MiB
	e.add("big", data)
	e.drain()
	if r := e.row("big"); r.State != journal.Uploaded {
		t.Fatalf("big: %s %q", r.State, r.Error)
	}
	if n := f.count("UploadPart"); n != 4 {
		t.Fatalf("%d parts sent, want 4", n)
	}
	if f.maxBody != 6<<20 {
		t.Fatalf("largest part %d bytes, want 6 MiB", f.maxBody)
	}
	out, err := srv.Client().GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("ferry"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	got, _ := io.ReadAll(out.Body)
	if !bytes.Equal(got, data) {
		t.Fatalf("object of %d bytes differs from the file's %d", len(got), len(data))
	}
}

// A file above 5 TiB is refused at once (too_large), before it is read;
// the others go on.
func TestFileAboveFiveTiBIsTooLarge(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.watch, "huge")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, sink.MaxObjectSize+1); err != nil {
		t.Skipf("no sparse file of 5 TiB here: %v", err)
	}
	e.record("huge", "huge")
	e.add("fine", []byte("ok"))
	e.drain()
	if r := e.row("huge"); r.State != journal.Failed || r.ErrorClass != ClassTooLarge {
		t.Fatalf("huge: %s %q %q", r.State, r.ErrorClass, r.Error)
	}
	e.landed("fine", []byte("ok"))
}
