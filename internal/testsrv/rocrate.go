package testsrv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// ROCrateValidator is tools/rocrate/validate.js, which runs npm's RO-Crate
// validator (make test-servers installs it). Without node or the package
// the test is skipped on a developer machine and fails when CI is set.
func ROCrateValidator(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "tools", "rocrate", "validate.js")
	_, nodeErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "ro-crate"))
	if nodeErr != nil || modErr != nil {
		msg := "the RO-Crate validator needs node and `npm ci --prefix tools/rocrate` (make test-servers)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return script
}

// ValidateCrate runs the RO-Crate validator on the crate in dir and fails
// the test with its report when it finds errors.
func ValidateCrate(t testing.TB, dir string) {
	t.Helper()
	out, err := exec.Command("node", ROCrateValidator(t), dir).Output()
	if err != nil {
		t.Fatalf("RO-Crate validator on %s: %v\n%s", dir, err, out)
	}
}
