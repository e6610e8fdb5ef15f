// Command mkzip writes a zip archive of the files it is given, for the
// Windows package (`make package`), so that packaging needs no zip tool.
//
//	go run ./packaging/mkzip -o OUT.zip NAME=FILE...
//
// Each NAME=FILE puts FILE into the archive as NAME (slash-separated), with
// FILE's modification time; entries are in the order given. The archive is
// written to a temporary file and renamed into place, so OUT.zip is either
// complete or absent.
package main

import (
	"archive/zip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	out := flag.String("o", "", "the zip file to write")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: mkzip -o OUT.zip NAME=FILE...")
	}
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := write(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mkzip:", err)
		os.Exit(1)
	}
}

func write(out string, entries []string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".mkzip-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := zip.NewWriter(tmp)
	seen := map[string]bool{}
	for _, e := range entries {
		name, file, ok := strings.Cut(e, "=")
		if !ok || name == "" || file == "" {
			return fmt.Errorf("%q: want NAME=FILE", e)
		}
		if strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || strings.Contains("/"+name+"/", "/../") {
			return fmt.Errorf("%q: NAME must be a relative, slash-separated path", e)
		}
		if seen[name] {
			return fmt.Errorf("%q: %s is already in the archive", e, name)
		}
		seen[name] = true
		if err := add(zw, name, file); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

func add(zw *zip.Writer, name, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New(file + ": not a regular file")
	}
	h, err := zip.FileInfoHeader(fi)
	if err != nil {
		return err
	}
	h.Name = name
	h.Method = zip.Deflate
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}
