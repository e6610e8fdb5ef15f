package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/internal/testtmp"
)

// The command line of the service verbs: everything that must be refused
// before the service manager is touched (so none of these cases can install
// anything, whatever machine runs them).
func TestServiceCommandLine(t *testing.T) {
	dir := testtmp.Dir(t)
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.toml", "[journal]\npath = \"ferry.db\"\nbogus_key = 1\n\n[[watch]]\npath = \".\"\ntarget = \"nowhere\"\n")
	syntax := write("syntax.toml", "[journal]\npath = \n")
	missing := filepath.Join(dir, "absent.toml")
	// No --config, no FERRY_CONFIG, and no packaged configuration either.
	none := "ferry install: no configuration file: --config FILE is not given, FERRY_CONFIG is not set, and " + missing + " does not exist\nRun 'ferry install --help' for usage."
	for _, tc := range []struct {
		name string
		args []string
		want []string // in stderr
	}{
		{"install without --config", []string{"install"}, []string{none}},
		{"install with only --user", []string{"install", "--user", "ferry"}, []string{none}},
		{"install unknown flag", []string{"install", "--config", bad, "--force"}, []string{"ferry install: unknown flag: --force\nRun 'ferry install --help' for usage."}},
		{"install extra argument", []string{"install", "--config", bad, "now"}, []string{`ferry install: takes no arguments (got ["now"])`}},
		{"install unknown key and target", []string{"install", "--config", bad}, []string{bad + ":3: journal.bogus_key: unknown key", bad + `:7: watch[1].target: no target named "nowhere"`}},
		{"install syntax error", []string{"install", "--config", syntax}, []string{syntax + ":2: "}},
		{"install missing file", []string{"install", "--config", missing}, []string{missing + ": cannot read the configuration"}},
		{"uninstall extra argument", []string{"uninstall", "now"}, []string{`ferry uninstall: takes no arguments (got ["now"])`}},
		{"start unknown flag", []string{"start", "--config", bad}, []string{"ferry start: unknown flag: --config"}},
		{"stop extra argument", []string{"stop", "ferry"}, []string{"ferry stop: takes no arguments"}},
		{"restart unknown flag", []string{"restart", "-now"}, []string{"ferry restart: unknown shorthand flag: 'n' in -now"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			a := &app{stdout: &stdout, stderr: &stderr, getenv: testcfg.Env(nil), defaultConfig: missing}
			code := a.run(t.Context(), tc.args)
			if code != exitUsage {
				t.Errorf("exit %d, want %d (stderr: %s)", code, exitUsage, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout: %s", stdout.String())
			}
		})
	}
}
