package uploader

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// MaxKeyBytes is the longest object key S3 accepts.
const MaxKeyBytes = 1024

// ReservedDir is the top folder of a watch (and of a target's prefix) that
// holds ferry's own files on every target: a source file under it is
// refused (in any letter case: shares and Windows fold it).
const ReservedDir = "_ferry"

// ErrInvalidKey is matched by ObjectKey's errors.
var ErrInvalidKey = errors.New("invalid object key")

// ObjectKey returns the key for a file: the target prefix followed by the
// file's slash-separated path relative to its watch root. rel must be
// relative and clean ("a/b.tif", not "./a", "../a" or "/a"). Names that S3
// cannot store (invalid UTF-8, control characters, longer than 1024 bytes)
// are an error, so the file is failed with that reason instead of retried;
// so is a path under ReservedDir.
func ObjectKey(prefix, rel string) (string, error) {
	if rel == "" || rel == "." || strings.HasPrefix(rel, "/") || path.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%w: %q is not a clean relative path", ErrInvalidKey, rel)
	}
	if first, _, _ := strings.Cut(rel, "/"); strings.EqualFold(first, ReservedDir) {
		return "", fmt.Errorf("%w: %q is under %s/, where ferry keeps its own files on every target (checkpoints, the fs target's hash sidecars): "+
			"refused rather than mixed with them; rename or exclude that folder", ErrInvalidKey, rel, ReservedDir)
	}
	key := prefix + rel
	if !utf8.ValidString(key) {
		return "", fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidKey, key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: %q contains a control character", ErrInvalidKey, key)
		}
	}
	if len(key) > MaxKeyBytes {
		return "", fmt.Errorf("%w: %d bytes long, the limit is %d", ErrInvalidKey, len(key), MaxKeyBytes)
	}
	return key, nil
}

// BatchID names the dataset a file belongs to: the first component of its
// path under the watch root (a run folder, or the file itself when it sits
// at the top).
func BatchID(rel string) string {
	first, _, _ := strings.Cut(rel, "/")
	return first
}
