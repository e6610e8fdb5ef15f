package s3sink

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ferry-data/ferry/uploader/sink"
)

// RetentionMode is the Object Lock mode PutRetained asks for: GOVERNANCE,
// so that the objects cannot be overwritten or deleted before their date
// except by an account explicitly granted s3:BypassGovernanceRetention (a
// COMPLIANCE lock cannot be lifted by anyone, which makes a mistaken
// retention a year-long one).
const RetentionMode = types.ObjectLockModeGovernance

// objectLock caches whether the bucket has Object Lock enabled, asked once
// (again only after a transient failure).
type objectLock struct {
	mu      sync.Mutex
	known   bool
	enabled bool
}

// ObjectLockEnabled reports whether the bucket has Object Lock enabled
// (GetObjectLockConfiguration), asking the server only the first time.
func (s *Sink) ObjectLockEnabled(ctx context.Context) (bool, error) {
	s.lock.mu.Lock()
	defer s.lock.mu.Unlock()
	if s.lock.known {
		return s.lock.enabled, nil
	}
	const op = "GetObjectLockConfiguration"
	out, err := s.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		cerr := classify(ctx, op, err)
		if !sink.IsPermanent(cerr) || errorCode(cerr) == "NoSuchBucket" {
			return false, cerr
		}
		// ObjectLockConfigurationNotFoundError (404), or a server that does
		// not implement Object Lock (501, 400...): no retention.
		s.lock.known, s.lock.enabled = true, false
		return false, nil
	}
	s.lock.known = true
	s.lock.enabled = out.ObjectLockConfiguration != nil && out.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled
	return s.lock.enabled, nil
}

// PutRetained is Put (create-only when ifAbsent) with Object Lock
// retention until retainUntil (mode RetentionMode) when the bucket has
// Object Lock enabled; on a bucket without it, the object is put without
// retention. locked says which.
func (s *Sink) PutRetained(ctx context.Context, key string, body []byte, sum sink.Digest, ifAbsent bool, retainUntil time.Time) (locked bool, err error) {
	const op = "PutRetained"
	enabled, err := s.ObjectLockEnabled(ctx)
	if err != nil {
		return false, err
	}
	if !enabled {
		return false, s.put(ctx, op, key, body, sum, ifAbsent, nil)
	}
	if !retainUntil.After(time.Now()) {
		return false, sink.NewPermanent(op, fmt.Errorf("retain-until date %s is not in the future", retainUntil.UTC().Format(time.RFC3339)))
	}
	err = s.put(ctx, op, key, body, sum, ifAbsent, func(in *s3.PutObjectInput) {
		in.ObjectLockMode = RetentionMode
		in.ObjectLockRetainUntilDate = aws.Time(retainUntil.UTC())
	})
	return err == nil, err
}
