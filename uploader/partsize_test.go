package uploader

import (
	"testing"

	"github.com/ferry-data/ferry/uploader/sink"
)

func TestPartSize(t *testing.T) {
	const mib, gib, tib = int64(1 << 20), int64(1 << 30), int64(1 << 40)
	const chunk = 16 * mib
	for _, c := range []struct {
		size int64
		want int64 // 0: refused
	}{
		{0, chunk},
		{chunk, chunk},
		{10000 * chunk, chunk},         // exactly 10,000 chunks (156.25 GiB)
		{10000*chunk + 1, chunk + mib}, // one byte more: 17 MiB parts
		{156 * gib, chunk},
		{200 * gib, 21 * mib}, // 20.48 MiB rounded up
		{5 * tib, 525 * mib},  // 524.288 MiB rounded up
		{5*tib + 1, 0},
	} {
		got, err := PartSize(c.size, chunk, sink.DefaultMaxParts)
		if c.want == 0 {
			if err == nil {
				t.Errorf("size %d: part size %d, want refused", c.size, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("size %d: %d, %v; want %d", c.size, got, err, c.want)
			continue
		}
		if parts := (c.size + got - 1) / got; parts > sink.DefaultMaxParts || got > sink.MaxPartSize {
			t.Errorf("size %d: %d parts of %d", c.size, parts, got)
		}
	}
	// A target with few parts: 4 parts of at least 1 MiB.
	if got, err := PartSize(9*mib, 2*mib, 4); err != nil || got != 3*mib {
		t.Errorf("9 MiB in 4 parts of at least 2 MiB: %d, %v; want 3 MiB", got, err)
	}
	// Parts would exceed 5 GiB.
	if _, err := PartSize(5*tib, chunk, 100); err == nil {
		t.Error("5 TiB in 100 parts: accepted, want refused (parts above 5 GiB)")
	}
}
