package watcher

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Filesystem magic numbers (statfs f_type, linux/magic.h and the
// filesystems' own headers) that ferry names or treats as remote.
const (
	magicNFS    = 0x6969
	magicSMB    = 0x517B
	magicCIFS   = 0xFF534D42
	magicSMB2   = 0xFE534D42
	magicFUSE   = 0x65735546 // every FUSE filesystem: sshfs, rclone, s3fs, virtiofs, ntfs-3g (fuseblk)...
	magicAFS    = 0x5346414F // AFS (OpenAFS)
	magicKAFS   = 0x6B414653 // kAFS
	magic9P     = 0x01021997 // 9p: virtual machines' shares, WSL's drives
	magicCeph   = 0x00C36400
	magicLustre = 0x0BD00BD0
	magicGPFS   = 0x47504653
	magicCoda   = 0x73757245
	magicNCP    = 0x564C
)

// remoteMagic are the filesystems where writers on other machines send
// no inotify events here.
var remoteMagic = map[uint32]string{
	magicNFS: "nfs", magicSMB: "smbfs", magicCIFS: "cifs", magicSMB2: "smb2",
	magicAFS: "afs", magicKAFS: "afs", magic9P: "9p", magicCeph: "ceph",
	magicLustre: "lustre", magicGPFS: "gpfs", magicCoda: "coda", magicNCP: "ncpfs",
}

// localMagic names common local filesystems, for the log.
var localMagic = map[uint32]string{
	0xEF53: "ext4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs",
	0x794C7630: "overlay", 0x2FC12FC1: "zfs", 0x5346544E: "ntfs", 0x4D44: "vfat",
	0x2011BAB0: "exfat", 0xF2F52010: "f2fs", 0x858458F6: "ramfs", 0x3153464A: "jfs",
	0x52654973: "reiserfs", 0xCA451A4E: "bcachefs",
}

func detectFS(path string) (FSInfo, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return FSInfo{Name: "unknown"}, err
	}
	return classifyMagic(uint32(st.Type), func() string { return mountType(path) }), nil
}

// classifyMagic names a filesystem from its statfs magic; fuseType, asked
// only for FUSE, is the mount's type from /proc/self/mountinfo
// ("fuse.sshfs", "fuseblk"; "" when unknown).
//
// FUSE is ambiguous: sshfs, rclone mount, s3fs, gcsfuse and virtiofs are
// remote; ntfs-3g and exfat-fuse on a local disk ("fuseblk", backed by a
// block device) are local. fuseblk is taken as local; every other FUSE
// filesystem as unsure, which auto polls (polling sees every change,
// events only those made through this machine's kernel).
func classifyMagic(magic uint32, fuseType func() string) FSInfo {
	if magic == magicFUSE {
		name := fuseType()
		if name == "fuseblk" {
			return FSInfo{Name: name}
		}
		if name == "" {
			name = "fuse"
		}
		return FSInfo{Name: name, Remote: true, Unsure: true}
	}
	if n, ok := remoteMagic[magic]; ok {
		return FSInfo{Name: n, Remote: true}
	}
	if n, ok := localMagic[magic]; ok {
		return FSInfo{Name: n}
	}
	return FSInfo{Name: fmt.Sprintf("0x%X", magic)}
}

// mountType is the type of the mount holding path (/proc/self/mountinfo:
// the last mount of path's device), or "".
func mountType(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return ""
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	typ := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[2] != dev {
			continue
		}
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				typ = fields[i+1]
				break
			}
		}
	}
	return typ
}
