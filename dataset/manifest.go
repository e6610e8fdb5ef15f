package dataset

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

// The two files ferry writes into a closed dataset, in this order, each
// create-only and after every file of the dataset has landed.
const (
	ManifestName = "manifest-sha256.txt"
	CrateName    = "ro-crate-metadata.json"
)

// Reserved reports whether a path relative to a dataset's root is one of
// the names ferry writes there: a source file by that name cannot be
// stored without colliding with them.
func Reserved(rel string) bool {
	return strings.EqualFold(rel, ManifestName) || strings.EqualFold(rel, CrateName)
}

// File is one file of a dataset as it landed.
type File struct {
	Path    string // relative to the dataset's root, with /
	Size    int64
	SHA256  string // lower-case hex
	ModTime time.Time
}

// Manifest formats manifest-sha256.txt: a line "HASH  PATH" per file,
// sorted by path. The format is a BagIt payload manifest (RFC 8493, 2.1.3:
// a path's %, CR and LF are percent-encoded) and what `sha256sum -c` reads
// for every path without those three characters.
func Manifest(files []File) ([]byte, error) {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	var b bytes.Buffer
	for i, f := range sorted {
		if err := checkFile(f); err != nil {
			return nil, err
		}
		if i > 0 && sorted[i-1].Path == f.Path {
			return nil, fmt.Errorf("manifest: %q listed twice", f.Path)
		}
		b.WriteString(strings.ToLower(f.SHA256))
		b.WriteString("  ")
		b.WriteString(encodeManifestPath(f.Path))
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

func checkFile(f File) error {
	if f.Path == "" || path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == ".." || strings.HasPrefix(f.Path, "../") {
		return fmt.Errorf("dataset file %q: not a clean relative path", f.Path)
	}
	if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != 32 {
		return fmt.Errorf("dataset file %q: %q is not a SHA-256 in hex", f.Path, f.SHA256)
	}
	if f.Size < 0 {
		return fmt.Errorf("dataset file %q: negative size", f.Path)
	}
	return nil
}

var manifestPathEncoder = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")

func encodeManifestPath(p string) string { return manifestPathEncoder.Replace(p) }

// ParseManifest reads a manifest back: path → lower-case hex SHA-256.
func ParseManifest(data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			continue
		}
		sum, rest, ok := strings.Cut(line, " ")
		p := strings.TrimLeft(rest, " \t")
		if !ok || p == "" {
			return nil, fmt.Errorf("manifest line %d: want \"HASH  PATH\"", n)
		}
		if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
			return nil, fmt.Errorf("manifest line %d: %q is not a SHA-256 in hex", n, sum)
		}
		dec, err := url.PathUnescape(p)
		if err != nil {
			return nil, fmt.Errorf("manifest line %d: path %q: %v", n, p, err)
		}
		if _, dup := out[dec]; dup {
			return nil, fmt.Errorf("manifest line %d: %q listed twice", n, dec)
		}
		out[dec] = strings.ToLower(sum)
	}
	return out, sc.Err()
}
