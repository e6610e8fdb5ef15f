package datasets

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-data/ferry/internal/srcfile"
	"github.com/ferry-data/ferry/journal"
)

// QuarantinePrefix starts the name a source file takes, in its own folder,
// between the moment ferry takes it away from its path and the moment it
// is deleted: ferry's watcher never takes such a name.
const QuarantinePrefix = ".ferry-deleting-"

// Removal is what RemoveSource did.
type Removal int

const (
	// Removed: the file at the path was the version that landed; it is gone.
	Removed Removal = iota + 1
	// Absent: nothing was at the path (someone else removed it).
	Absent
	// Kept: the file at the path is not the version that landed (changed
	// or replaced after its upload); it was put back and kept.
	Kept
)

// ErrBusy is matched when the file could not be moved or removed now (a
// writer holds it, on Windows; a permission): a later attempt may do it.
var ErrBusy = errors.New("the file cannot be removed now")

// RemoveSource deletes the file at path if, at that moment, it is exactly
// want (size, modification time, identity). It first moves the file to a
// name of ferry's own in the same folder (one atomic rename: whatever is at
// the path then is what ferry holds), checks what it moved, and only then
// deletes it; a file that is not the version that landed is moved back. A
// rename interrupted by a crash is finished by the next call with the same
// tag. evidence says what was checked.
func RemoveSource(path string, want journal.Version, tag string) (Removal, string, error) {
	return takeSource(path, want, tag, func(q string) (string, error) { return "", os.Remove(q) })
}

// MoveSource moves the file at path to dest (after_upload = "move:DIR"),
// with the same checks as RemoveSource. Across volumes it copies, syncs,
// checks the copy's SHA-256 against sha (what landed), and only then
// removes the source. A file already at dest is never replaced: the source
// is put back and kept.
func MoveSource(path string, want journal.Version, sha, tag, dest string) (Removal, string, error) {
	if _, err := os.Lstat(dest); err == nil {
		return Kept, "the destination " + dest + " already holds a file", nil
	}
	return takeSource(path, want, tag, func(q string) (string, error) {
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return "", err
		}
		if _, err := os.Lstat(dest); err == nil {
			return "", fmt.Errorf("the destination %s already holds a file", dest)
		}
		err := os.Rename(q, dest)
		if err == nil {
			return "; moved to " + dest, nil
		}
		var le *os.LinkError
		if !errors.As(err, &le) || !crossDevice(le.Err) {
			return "", err
		}
		if err := copyVerified(q, dest, sha); err != nil {
			return "", err
		}
		return "; copied to " + dest + " (another volume), its SHA-256 checked", os.Remove(q)
	})
}

// takeSource takes the file at path away to a name of ferry's own, checks
// it is want, and hands it to dispose (which removes or moves it).
func takeSource(path string, want journal.Version, tag string, dispose func(q string) (string, error)) (Removal, string, error) {
	q := filepath.Join(filepath.Dir(path), QuarantinePrefix+tag)
	if _, err := os.Lstat(q); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return 0, "", fmt.Errorf("%w: %v", ErrBusy, err)
		}
		if err := os.Rename(path, q); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return Absent, "nothing at " + path, nil
			}
			return 0, "", fmt.Errorf("%w: %v", ErrBusy, err)
		}
	}
	st, err := srcfile.Lstat(q)
	got := ""
	if err == nil {
		got = fmt.Sprintf("size=%d mtime_ns=%d file_id=%s", st.Size, st.ModTime.UnixNano(), st.ID.String())
	}
	wanted := fmt.Sprintf("size=%d mtime_ns=%d file_id=%s", want.Size, want.MtimeNS, want.FileID)
	if err == nil && got == wanted {
		done, err := dispose(q)
		if err != nil {
			return 0, "", fmt.Errorf("%w: %v", ErrBusy, err)
		}
		return Removed, "local " + got + " (the version that landed)" + done, nil
	}
	why := "local " + got + ", landed " + wanted
	if err != nil {
		why = fmt.Sprintf("local: %v; landed %s", err, wanted)
	}
	// Not the version that landed: put it back where it was, unless
	// something new took the name meanwhile (then it stays beside it,
	// under ferry's name, and the journal says where).
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(q, path); err != nil {
			return Kept, why + "; left at " + q + ": " + err.Error(), nil
		}
		return Kept, why, nil
	}
	return Kept, why + "; left at " + q + " (a new file took its name)", nil
}

// copyVerified copies src to dest (created, never replaced), syncs it, and
// checks its SHA-256 is sha.
func copyVerified(src, dest, sha string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dest + ".ferry-copy"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != sha {
		err = fmt.Errorf("the copy at %s does not have the SHA-256 that landed", tmp)
	}
	if err == nil {
		if _, serr := os.Lstat(dest); serr == nil {
			err = fmt.Errorf("the destination %s already holds a file", dest)
		} else {
			err = os.Rename(tmp, dest)
		}
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Quarantined reports whether a path relative to a watch is a file in
// RemoveSource's hands (never taken by the watcher).
func Quarantined(rel string) bool {
	return strings.HasPrefix(filepath.Base(filepath.FromSlash(rel)), QuarantinePrefix)
}

// PruneEmpty removes the empty folders from dir up to and including root
// (a dataset's folder once its files are deleted); it stops at the first
// folder that is not empty.
func PruneEmpty(dir, root string) {
	root = filepath.Clean(root)
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if rel, err := filepath.Rel(root, d); err != nil || strings.HasPrefix(rel, "..") {
			return
		}
		if os.Remove(d) != nil || d == root {
			return
		}
	}
}
