//go:build windows

package srcfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// Open opens path for reading with read, write and delete sharing, so the
// instrument software is never blocked by ferry holding the file.
func Open(path string) (*os.File, error) {
	return open(path, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE)
}

// ProbeReadable opens path sharing only reads: if a writer still has it
// open for writing, Windows reports a sharing violation, which means the
// file is not settled (ErrBusy).
func ProbeReadable(path string) error {
	f, err := open(path, windows.FILE_SHARE_READ)
	if err != nil {
		if errors.Is(err, windows.ERROR_SHARING_VIOLATION) || errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			return ErrBusy
		}
		return err
	}
	return f.Close()
}

func open(path string, share uint32) (*os.File, error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p, windows.GENERIC_READ, share, nil,
		windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL|windows.FILE_FLAG_SEQUENTIAL_SCAN, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	// Only a file on disk is read: a pipe or a device at the path is
	// closed again and refused, as on Unix.
	if t, err := windows.GetFileType(h); err != nil || t != windows.FILE_TYPE_DISK {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	return os.NewFile(uintptr(h), path), nil
}

func statOf(path string, fi fs.FileInfo) (Stat, error) {
	// The volume serial and file index need a handle; open with full
	// sharing and only FILE_READ_ATTRIBUTES so no writer is disturbed.
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return Stat{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	h, err := windows.CreateFile(p, windows.FILE_READ_ATTRIBUTES,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_OPEN_REPARSE_POINT|windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
	if err != nil {
		return Stat{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	defer windows.CloseHandle(h)
	return byHandle(h, path)
}

func fileStatOf(f *os.File, _ fs.FileInfo) (Stat, error) {
	return byHandle(windows.Handle(f.Fd()), f.Name())
}

func byHandle(h windows.Handle, path string) (Stat, error) {
	var d windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &d); err != nil {
		return Stat{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return Stat{
		Size:    int64(d.FileSizeHigh)<<32 | int64(d.FileSizeLow),
		ModTime: time.Unix(0, d.LastWriteTime.Nanoseconds()),
		ID: ID{
			Volume: uint64(d.VolumeSerialNumber),
			Index:  uint64(d.FileIndexHigh)<<32 | uint64(d.FileIndexLow),
		},
	}, nil
}

// SharingProbe: ProbeReadable's sharing probe tells whether a writer holds
// a file open.
const SharingProbe = true
