package s3sink

import (
	"testing"

	"github.com/ferry-data/ferry/uploader/sink/sinktest"
)

func TestReadBack(t *testing.T) {
	_, s := newServer(t)
	sinktest.ReadBack(t, s)
}
