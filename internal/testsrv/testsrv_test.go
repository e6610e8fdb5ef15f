package testsrv

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestStartS3(t *testing.T) {
	srv := StartS3(t)
	if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("Endpoint = %q, want loopback", srv.Endpoint)
	}
	srv.CreateBucket(t, "bkt")
	if fi, err := os.Stat(filepath.Join(srv.Root, "bkt")); err != nil || !fi.IsDir() {
		t.Fatalf("bucket directory under Root: %v", err)
	}

	ctx := t.Context()
	c := srv.Client()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:   aws.String("bkt"),
		Key:      aws.String("a/b.txt"),
		Body:     strings.NewReader("hello"),
		Metadata: map[string]string{"k": "v"},
	}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("a/b.txt")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	defer got.Body.Close()
	b, err := io.ReadAll(got.Body)
	if err != nil || string(b) != "hello" {
		t.Fatalf("GetObject body = %q, %v; want hello", b, err)
	}
	if got.Metadata["k"] != "v" {
		t.Errorf("metadata = %v, want k=v (is the posix backend storing xattrs?)", got.Metadata)
	}
	if b, err := os.ReadFile(filepath.Join(srv.Root, "bkt", "a", "b.txt")); err != nil || string(b) != "hello" {
		t.Errorf("object file under Root = %q, %v", b, err)
	}
}

func TestTwoServersAreIndependent(t *testing.T) {
	a, b := StartS3(t), StartS3(t)
	if a.Endpoint == b.Endpoint || a.Root == b.Root {
		t.Fatalf("servers share endpoint or root: %+v %+v", a, b)
	}
	a.CreateBucket(t, "only-a")
	out, err := b.Client().ListBuckets(context.Background(), &s3.ListBucketsInput{})
	if err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	if len(out.Buckets) != 0 {
		t.Errorf("second server lists %d buckets, want 0", len(out.Buckets))
	}
}

func TestFindVersitygwFromEnv(t *testing.T) {
	t.Setenv("FERRY_VERSITYGW", filepath.Join(t.TempDir(), "missing"))
	if _, err := findVersitygw(); err == nil {
		t.Fatal("findVersitygw with a missing FERRY_VERSITYGW: no error")
	}
	dir := t.TempDir()
	t.Setenv("FERRY_VERSITYGW", dir)
	if _, err := findVersitygw(); err == nil {
		t.Fatal("findVersitygw with a directory: no error")
	}
}
