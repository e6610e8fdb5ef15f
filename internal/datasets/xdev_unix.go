//go:build unix

package datasets

import (
	"errors"
	"syscall"
)

func crossDevice(err error) bool { return errors.Is(err, syscall.EXDEV) }
