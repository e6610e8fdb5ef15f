package memsink

import (
	"testing"

	"github.com/ferry-data/ferry/uploader/sink/sinktest"
)

func TestReadBack(t *testing.T) { sinktest.ReadBack(t, New(Options{})) }
