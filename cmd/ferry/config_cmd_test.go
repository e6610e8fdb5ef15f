package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testsrv"
)

func TestConfigCheck(t *testing.T) {
	srv := testsrv.StartS3(t)
	srv.CreateBucket(t, "check")
	env := cfgEnv(map[string]string{"AK": srv.AccessKey, "SK": srv.SecretKey, "BADSK": "wrong"})
	write := func(secretEnv, bucket string) string {
		p := writeConfig(t, fmt.Sprintf("[target.s3]\ntype = \"s3\"\nendpoint = %q\nbucket = %q\naccess_key_env = \"AK\"\nsecret_key_env = %q\nprefix = \"scope/\"\n[target.local]\ntype = \"fs\"\npath = \"archive\"\n[[watch]]\npath = \"in\"\ntarget = \"s3\"\n", srv.Endpoint, bucket, secretEnv))
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
	bad := writeConfig(t, "[target.t]\ntype = \"fs\"\npath = \"o\"\n[[watch]]\npath = \"in\"\ntarget = \"x\"\n")
	if code, _, errs := check("--config", bad); code != exitUsage || !strings.Contains(errs, bad+":6:") {
		t.Errorf("invalid config: exit %d, %q", code, errs)
	}
}
