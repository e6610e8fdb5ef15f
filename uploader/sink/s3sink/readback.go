package s3sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferry-data/ferry/uploader/sink"
)

var _ sink.Reader = (*Sink)(nil)

// ReadBack streams the object (GetObject) through SHA-256.
func (s *Sink) ReadBack(ctx context.Context, key string) (int64, string, error) {
	const op = "ReadBack"
	if err := checkKey(op, key); err != nil {
		return 0, "", err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return 0, "", classify(ctx, op, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		return 0, "", classify(ctx, op, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
