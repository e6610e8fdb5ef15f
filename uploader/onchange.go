package uploader

import (
	"fmt"
	"path"
	"strings"
)

// OnChange is what happens to a file modified after its upload.
type OnChange string

// The on_change policies.
const (
	// Reupload overwrites the object (a versioned bucket keeps the old one).
	Reupload OnChange = "reupload"
	// Version uploads the new content beside the old, under VersionedKey.
	Version OnChange = "version"
	// Ignore leaves the target's copy as it is.
	Ignore OnChange = "ignore"
)

// ParseOnChange checks an on_change value ("" means Reupload).
func ParseOnChange(s string) (OnChange, error) {
	switch OnChange(s) {
	case "", Reupload:
		return Reupload, nil
	case Version, Ignore:
		return OnChange(s), nil
	}
	return "", fmt.Errorf("must be \"reupload\", \"version\" or \"ignore\" (got %q)", s)
}

func (u *Uploader) onChange(watch string) OnChange {
	if p, ok := u.o.OnChange[watch]; ok && p != "" {
		return p
	}
	return Reupload
}

// VersionedKey is the key under which on_change = "version" stores new
// content beside the old: the first 12 hex digits of its SHA-256 before the
// extension, after a "~" ("run1/img.tif" -> "run1/img~3fa9c2b1d0e4.tif").
// The same content always gets the same key.
func VersionedKey(key, sha string) (string, error) {
	if len(sha) < 12 {
		return "", fmt.Errorf("%w: no hash to version %q with", ErrInvalidKey, key)
	}
	dir, file := path.Split(key)
	ext := path.Ext(file)
	if ext == file || strings.Contains(ext, " ") {
		ext = "" // ".bashrc", or a dot that is not an extension
	}
	v := dir + strings.TrimSuffix(file, ext) + "~" + sha[:12] + ext
	if len(v) > MaxKeyBytes {
		return "", fmt.Errorf("%w: versioned key %d bytes long, the limit is %d", ErrInvalidKey, len(v), MaxKeyBytes)
	}
	return v, nil
}
