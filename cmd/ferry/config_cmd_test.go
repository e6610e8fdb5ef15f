package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/internal/testsrv"
	"github.com/ferry-data/ferry/watcher"
)

func TestConfigCheck(t *testing.T) {
	srv := testsrv.StartS3(t)
	srv.CreateBucket(t, "check")
	env := testcfg.Env(map[string]string{"AK": srv.AccessKey, "SK": srv.SecretKey, "BADSK": "wrong"})
	write := func(secretEnv, bucket string) string {
		p := testcfg.Write(t, fmt.Sprintf("[target.s3]\ntype = \"s3\"\nendpoint = %q\nbucket = %q\naccess_key_env = \"AK\"\nsecret_key_env = %q\nprefix = \"scope/\"\n[target.local]\ntype = \"fs\"\npath = \"archive\"\n[[watch]]\npath = \"in\"\ntarget = \"s3\"\n", srv.Endpoint, bucket, secretEnv))
		return p
	}
	check := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		code := run(t.Context(), append([]string{"config", "check"}, args...), &out, &errb, env)
		return code, out.String(), errb.String()
	}
	good := write("SK", "check")
	if code, out, _ := check("--config", good); code != 0 || !strings.Contains(out, "valid") || strings.Contains(out, "reachable") {
		t.Fatalf("offline check: %d %s", code, out)
	}
	code, out, _ := check("--config", good, "--online")
	if code != 0 || strings.Count(out, "reachable, credentials accepted, writable") != 2 {
		t.Fatalf("online check: %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(good), "archive", "_ferry", "config-check")); err != nil {
		t.Errorf("the fs target's probe object is missing: %v", err)
	}
	for name, p := range map[string]string{"bad secret": write("BADSK", "check"), "no bucket": write("SK", "absent")} {
		if code, out, _ := check("--config", p, "--online"); code != exitFailed || !strings.Contains(out, "NOT usable") {
			t.Errorf("%s: exit %d\n%s", name, code, out)
		}
	}
	bad := testcfg.Write(t, "[target.t]\ntype = \"fs\"\npath = \"o\"\n[[watch]]\npath = \"in\"\ntarget = \"x\"\n")
	if code, _, errs := check("--config", bad); code != exitUsage || !strings.Contains(errs, bad+":6:") {
		t.Errorf("invalid config: exit %d, %q", code, errs)
	}
}

// TestConfigCheckGolden runs config check on each testdata/configcheck/*.toml
// (copied into a temp folder holding the watch folders in/ and in2/, and
// link-in, a symlink to in) and
// compares what it prints, the temp folder written $DIR, with NAME.golden:
// stdout for valid*.toml (exit 0), stderr for the others (exit 2).
// go test -run TestConfigCheckGolden -update rewrites the golden files.
func TestConfigCheckGolden(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("testdata", "configcheck", "*.toml"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	env := testcfg.Env(map[string]string{"AK": "access", "SK": "secret"})
	for _, src := range cases {
		name := strings.TrimSuffix(filepath.Base(src), ".toml")
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"in", "in2"} {
				if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Symlink("in", filepath.Join(dir, "link-in")); err != nil {
				t.Fatal(err)
			}
			body, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, name+".toml")
			if err := os.WriteFile(cfg, body, 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb strings.Builder
			code := run(t.Context(), []string{"config", "check", "--config", cfg}, &out, &errb, env)
			got, other, want := errb.String(), out.String(), exitUsage
			if strings.HasPrefix(name, "valid") {
				got, other, want = out.String(), errb.String(), exitOK
			}
			if code != want || other != "" {
				t.Errorf("exit %d (want %d), and on the other stream: %q", code, want, other)
			}
			// The temp folder's filesystem is the machine's: $FS.
			if fsi, err := watcher.DetectFS(dir); err == nil {
				got = strings.ReplaceAll(got, "("+fsi.Name+" is a ", "($FS is a ")
			}
			golden(t, filepath.Join("testdata", "configcheck", name+".golden"), filepath.ToSlash(strings.ReplaceAll(got, dir, "$DIR")))
		})
	}
}
