package fssink_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-data/ferry/internal/testtmp"
	"github.com/ferry-data/ferry/uploader/sink"
	"github.com/ferry-data/ferry/uploader/sink/fssink"
	"github.com/ferry-data/ferry/uploader/sink/sinktest"
)

func TestConformance(t *testing.T) {
	roots := map[sink.Sink]string{}
	sinktest.Run(t, sinktest.Harness{
		New: func(t *testing.T) sink.Sink {
			root := testtmp.Dir(t)
			s, err := fssink.New(root)
			if err != nil {
				t.Fatal(err)
			}
			roots[s] = root
			return s
		},
		Read: func(t *testing.T, s sink.Sink, key string) []byte {
			t.Helper()
			b, err := os.ReadFile(filepath.Join(roots[s], filepath.FromSlash(key)))
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	})
}
