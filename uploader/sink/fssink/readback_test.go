package fssink_test

import (
	"testing"

	"github.com/ferry-data/ferry/internal/testtmp"
	"github.com/ferry-data/ferry/uploader/sink/fssink"
	"github.com/ferry-data/ferry/uploader/sink/sinktest"
)

func TestReadBack(t *testing.T) {
	s, err := fssink.New(testtmp.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	sinktest.ReadBack(t, s)
}
