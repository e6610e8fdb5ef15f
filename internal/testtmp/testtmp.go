// Package testtmp gives tests a temporary folder that is removed entry by
// entry with os.Remove. testing.T.TempDir's cleanup uses os.RemoveAll,
// which fails under Wine 8, where ferry's Windows test binaries run.
package testtmp

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Dir creates a temporary folder removed when the test ends.
func Dir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ferry-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { remove(t, d) })
	return d
}

func remove(t testing.TB, root string) {
	var paths []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			os.Chmod(p, 0o700) // a test may have made something unreadable
		}
		paths = append(paths, p)
		return nil
	})
	slices.Reverse(paths) // children before their folders
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Errorf("removing test folder: %v", err)
		}
	}
}
