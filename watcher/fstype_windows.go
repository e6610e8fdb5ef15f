//go:build windows

package watcher

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// detectFS: a UNC path (\\server\share\...) or a drive whose type is
// DRIVE_REMOTE (a mapped network drive) is remote. The redirector delivers
// some change notifications from SMB servers, but not reliably (not for
// every server, and not when its buffer overflows): auto polls.
func detectFS(path string) (FSInfo, error) {
	vol := filepath.VolumeName(path)
	if isUNC(vol) {
		return FSInfo{Name: "UNC share", Remote: true}, nil
	}
	if vol == "" {
		return FSInfo{Name: "unknown"}, nil
	}
	p, err := windows.UTF16PtrFromString(vol + `\`)
	if err != nil {
		return FSInfo{Name: "unknown"}, err
	}
	return driveInfo(windows.GetDriveType(p)), nil
}

// isUNC reports whether a volume name is a UNC share (\\server\share),
// not a device path (\\?\C:, \\.\C:).
func isUNC(vol string) bool {
	if !strings.HasPrefix(vol, `\\`) && !strings.HasPrefix(vol, `//`) {
		return false
	}
	rest := vol[2:]
	if strings.HasPrefix(rest, `?\UNC\`) {
		return true
	}
	return !strings.HasPrefix(rest, `?\`) && !strings.HasPrefix(rest, `.\`)
}

// driveInfo names a drive type (GetDriveType).
func driveInfo(t uint32) FSInfo {
	switch t {
	case windows.DRIVE_REMOTE:
		return FSInfo{Name: "remote drive", Remote: true}
	case windows.DRIVE_FIXED:
		return FSInfo{Name: "local drive"}
	case windows.DRIVE_REMOVABLE:
		return FSInfo{Name: "removable drive"}
	case windows.DRIVE_RAMDISK:
		return FSInfo{Name: "RAM disk"}
	case windows.DRIVE_CDROM:
		return FSInfo{Name: "optical drive"}
	}
	return FSInfo{Name: "unknown"}
}
