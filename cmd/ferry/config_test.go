package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testcfg"
)

func TestConfigErrorsExitTwoAndStartNothing(t *testing.T) {
	p := testcfg.Write(t, "[journal]\npath = \"j.db\"\n[target.t]\ntype = \"fs\"\npath = \"o\"\n[[watch]]\npath = \"in\"\ntarget = \"nope\"\n")
	var out, errb strings.Builder
	code := run(t.Context(), []string{"run", "--config", p}, &out, &errb, testcfg.Env(nil))
	if code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(errb.String(), p+":8:") {
		t.Errorf("stderr %q does not name %s:8", errb.String(), p)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(p), "j.db")); err == nil {
		t.Error("a journal was created although the configuration was rejected")
	}
}

func TestCommandLine(t *testing.T) {
	none := filepath.Join(t.TempDir(), "absent.toml")
	if code, out, _ := cli(t, nil, none, "version"); code != 0 || !strings.HasPrefix(out, "ferry ") {
		t.Errorf("version: %d %q", code, out)
	}
	for _, args := range [][]string{{"fly"}, {"run"}, nil} {
		if code, _, _ := cli(t, nil, none, args...); code != exitUsage {
			t.Errorf("ferry %q: exit %d, want %d", args, code, exitUsage)
		}
	}
}
