package sinktest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/ferry-data/ferry/uploader/sink"
)

// ReadBack checks a sink.Reader: an object read back whole gives its size
// and SHA-256, a large one too (in bounded memory), and a missing key
// ErrNotFound.
func ReadBack(t *testing.T, s sink.Sink) {
	t.Helper()
	r, ok := s.(sink.Reader)
	if !ok {
		t.Fatalf("%T is not a sink.Reader", s)
	}
	ctx := context.Background()
	for _, n := range []int{0, 1, 5<<20 + 17} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i * 7)
		}
		sum := sha256.Sum256(body)
		key := "readback/obj-" + hex.EncodeToString(sum[:4])
		if err := s.Put(ctx, key, body, sink.Digest(sum), false); err != nil {
			t.Fatal(err)
		}
		size, sha, err := r.ReadBack(ctx, key)
		if err != nil || size != int64(n) || sha != hex.EncodeToString(sum[:]) {
			t.Fatalf("ReadBack(%d bytes) = %d %s %v", n, size, sha, err)
		}
	}
	if _, _, err := r.ReadBack(ctx, "readback/none"); !errors.Is(err, sink.ErrNotFound) {
		t.Fatalf("ReadBack of a missing key: %v", err)
	}
}
