package fssink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/ferry-data/ferry/uploader/sink"
)

var _ sink.Reader = (*Sink)(nil)

// ReadBack reads the object's file through SHA-256.
func (s *Sink) ReadBack(ctx context.Context, key string) (int64, string, error) {
	p, err := s.path(key)
	if err != nil {
		return 0, "", err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "", fmt.Errorf("%s: %w", key, sink.ErrNotFound)
	}
	if err != nil {
		return 0, "", classify("ReadBack", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", classify("ReadBack", err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
