//go:build windows

package datasets

import (
	"errors"

	"golang.org/x/sys/windows"
)

// crossDevice: MoveFile refuses a move to another volume without
// MOVEFILE_COPY_ALLOWED.
func crossDevice(err error) bool { return errors.Is(err, windows.ERROR_NOT_SAME_DEVICE) }
