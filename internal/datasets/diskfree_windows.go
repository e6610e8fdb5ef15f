//go:build windows

package datasets

import "golang.org/x/sys/windows"

// DiskFree reports the bytes available to ferry and the size of the
// volume holding path.
func DiskFree(path string) (free, total uint64, err error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, 0, err
	}
	var avail, size, all uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &size, &all); err != nil {
		return 0, 0, err
	}
	return avail, size, nil
}
