//go:build windows

package srcfile

import (
	"errors"
	"fmt"
)

// probeWhileWriting: on Windows a writer's open handle makes the file busy.
func probeWhileWriting(p string) error {
	if err := ProbeReadable(p); !errors.Is(err, ErrBusy) {
		return fmt.Errorf("ProbeReadable while a writer holds the file = %v, want ErrBusy", err)
	}
	return nil
}
