// Package metadata captures a dataset's metadata (path template fields,
// sidecars, Illumina RunInfo.xml / RunParameters.xml / SampleSheet.csv),
// validates it against a JSON Schema (draft 2020-12) with ontology-backed
// keywords, and detects drift in its shape from the watch's previous dataset.
//
// Everything here is a pure function of files and values: no journal, no
// config, no daemon. ARCHITECTURE.md ("Metadata document") describes the
// document, the Shape and the drift rules.
package metadata

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxFileSize bounds every file this package reads (readers, sidecars,
// vocabularies, schemas). Larger files are refused, not truncated.
const MaxFileSize = 16 << 20

// FileError is a problem in an input file, at a line when one is known.
type FileError struct {
	File string
	Line int // 1-based; 0 when the problem is not tied to a line
	Msg  string
	Err  error // a sentinel it wraps (ErrTooLarge), or nil
}

func (e *FileError) Unwrap() error { return e.Err }

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

func fileErr(file string, line int, format string, args ...any) error {
	return &FileError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// ErrTooLarge is wrapped by the error for a file over MaxFileSize.
var ErrTooLarge = errors.New("file too large")

// readBounded reads a whole file of at most MaxFileSize bytes and strips a
// UTF-8 byte order mark.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return nil, &FileError{File: path, Msg: fmt.Sprintf("%v: over %d bytes", ErrTooLarge, MaxFileSize), Err: ErrTooLarge}
	}
	return stripBOM(b), nil
}

func stripBOM(b []byte) []byte {
	return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
}

// lineAt returns the 1-based line of byte offset off in b.
func lineAt(b []byte, off int64) int {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	return bytes.Count(b[:off], []byte("\n")) + 1
}
