//go:build linux

package srcfile

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// SharingProbe: Linux has no mandatory sharing; ProbeReadable never says
// busy (OpenWriters tells instead).
const SharingProbe = false

// OpenWriters lists the regular files that other processes hold open for
// writing: each /proc/PID/fd entry whose fdinfo flags open it write-only or
// read-write. One pass over every process's descriptors: the watcher asks
// once per settle pass, and only when a file is due.
func OpenWriters() (Writers, error) {
	w := Writers{Supported: true, open: map[ID]bool{}}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return Writers{}, err
	}
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		dir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			if os.IsPermission(err) {
				w.Hidden++
			}
			continue // gone, or not ours to see
		}
		for _, fd := range fds {
			var st syscall.Stat_t
			if syscall.Stat(filepath.Join(dir, fd.Name()), &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
				continue
			}
			id := ID{Volume: uint64(st.Dev), Index: uint64(st.Ino)}
			if w.open[id] || !writable(filepath.Join("/proc", p.Name(), "fdinfo", fd.Name())) {
				continue
			}
			w.open[id] = true
		}
	}
	return w, nil
}

// writable reads an fdinfo's flags (octal): opened O_WRONLY or O_RDWR.
func writable(fdinfo string) bool {
	b, err := os.ReadFile(fdinfo)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("flags:")); ok {
			flags, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 64)
			if err != nil {
				return false
			}
			acc := flags & syscall.O_ACCMODE
			return acc == syscall.O_WRONLY || acc == syscall.O_RDWR
		}
	}
	return false
}
