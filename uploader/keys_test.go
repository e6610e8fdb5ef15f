package uploader

import (
	"errors"
	"strings"
	"testing"
)

func TestObjectKey(t *testing.T) {
	for _, c := range []struct {
		prefix, rel, want string
		bad               bool
	}{
		{"scope1/", "run1/a.tif", "scope1/run1/a.tif", false},
		{"", "a.tif", "a.tif", false},
		{"p/", "run 1/größe ü.tif", "p/run 1/größe ü.tif", false},
		{"p/", "日本語/データ.bin", "p/日本語/データ.bin", false},
		{"p/", "", "", true},
		{"p/", ".", "", true},
		{"p/", "../etc/passwd", "", true},
		{"p/", "/abs", "", true},
		{"p/", "a//b", "", true},
		{"p/", "a/./b", "", true},
		{"p/", "bad\xffutf8", "", true},
		{"p/", "tab\there", "", true},
		{"", "_ferry/checkpoints/h/1.json", "", true}, // ferry's own folder on every target (issue 11 item 7)
		{"p/", "_FERRY/fs/sha256/x", "", true},
		{"p/", "_ferry", "", true},
		{"p/", "run/_ferry/x", "p/run/_ferry/x", false}, // only the top folder is ferry's
		{"p/", "_ferry2/x", "p/_ferry2/x", false},
		{"p/", "a.tif.sha256", "p/a.tif.sha256", false},
		{"p/", strings.Repeat("x", 1023), "", true},                                // 1025 bytes
		{"p/", strings.Repeat("x", 1022), "p/" + strings.Repeat("x", 1022), false}, // exactly 1024
	} {
		got, err := ObjectKey(c.prefix, c.rel)
		if c.bad {
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("ObjectKey(%q, %q) = %q, %v; want ErrInvalidKey", c.prefix, c.rel, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ObjectKey(%q, %q) = %q, %v; want %q", c.prefix, c.rel, got, err, c.want)
		}
	}
}

func TestBatchID(t *testing.T) {
	for rel, want := range map[string]string{
		"run1/a/b.tif": "run1",
		"loose.csv":    "loose.csv",
		"r 2/x":        "r 2",
	} {
		if got := BatchID(rel); got != want {
			t.Errorf("BatchID(%q) = %q, want %q", rel, got, want)
		}
	}
}
