package s3sink

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// versitygw v1.8.0 implements Object Lock for buckets created with it:
// PutRetained sets GOVERNANCE retention there, which then refuses an
// early delete, and puts plainly into a bucket without it.
func TestPutRetained(t *testing.T) {
	srv, plain := newServer(t)
	ctx := t.Context()
	if _, err := srv.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("locked"), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatalf("CreateBucket with Object Lock: %v", err)
	}
	locked := newSinkFor(t, srv, "locked")
	body := []byte(`{"checkpoint":1}`)
	until := time.Now().Add(48 * time.Hour).Truncate(time.Second)

	if on, err := plain.ObjectLockEnabled(ctx); err != nil || on {
		t.Fatalf("ObjectLockEnabled(plain bucket) = %v, %v", on, err)
	}
	got, err := plain.PutRetained(ctx, "cp/1.json", body, sha256.Sum256(body), true, until)
	if err != nil || got {
		t.Fatalf("PutRetained(plain bucket) = %v, %v; want put without retention", got, err)
	}

	if on, err := locked.ObjectLockEnabled(ctx); err != nil || !on {
		t.Fatalf("ObjectLockEnabled(locked bucket) = %v, %v", on, err)
	}
	got, err = locked.PutRetained(ctx, "cp/1.json", body, sha256.Sum256(body), true, until)
	if err != nil || !got {
		t.Fatalf("PutRetained(locked bucket) = %v, %v; want retention", got, err)
	}
	out, err := srv.Client().GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String("locked"), Key: aws.String("cp/1.json")})
	if err != nil || out.Retention == nil || out.Retention.Mode != types.ObjectLockRetentionModeGovernance || !aws.ToTime(out.Retention.RetainUntilDate).Equal(until) {
		t.Fatalf("retention = %+v, %v; want GOVERNANCE until %v", out, err, until)
	}
	if _, err := srv.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("locked"), Key: aws.String("cp/1.json")}); err == nil {
		if _, err := locked.Get(ctx, "cp/1.json", 100); err != nil {
			t.Fatalf("a retained checkpoint was deleted: %v", err)
		}
	}
	if b, err := locked.Get(ctx, "cp/1.json", 100); err != nil || string(b) != string(body) {
		t.Fatalf("Get = %q, %v", b, err)
	}
}
