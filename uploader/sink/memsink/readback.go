package memsink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/ferry-data/ferry/uploader/sink"
)

var _ sink.Reader = (*Sink)(nil)

// ReadBack hashes the object's bytes.
func (s *Sink) ReadBack(ctx context.Context, key string) (int64, string, error) {
	s.mu.Lock()
	o, ok := s.objects[key]
	s.mu.Unlock()
	if !ok {
		return 0, "", fmt.Errorf("%s: %w", key, sink.ErrNotFound)
	}
	sum := sha256.Sum256(o.data)
	return int64(len(o.data)), hex.EncodeToString(sum[:]), nil
}
