package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testcfg"
)

func TestConfigSettings(t *testing.T) {
	p := testcfg.Write(t, testcfg.Valid)
	c, err := Load(p, testcfg.Env(map[string]string{"AK": "acc3ss", "SK": "s3cr3t"}))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Settings()
	in := filepath.Join(filepath.Dir(p), "in")
	for k, want := range map[string]string{
		"upload.max_chunk_size":                 "8MiB",
		"upload.max_concurrent_uploads":         "2",
		"upload.retry.initial_delay":            "500ms",
		"upload.max_bandwidth":                  "20MiB/s",
		"journal.checkpoint_interval":           "1h0m0s",
		"target.archive.bucket":                 "data",
		"target.archive.secret_key_env":         "SK", // the variable's name, not its value
		"target.local.path":                     filepath.Join(filepath.Dir(p), "archive"),
		"watch[" + in + "].settle":              "2s",
		"watch[" + in + "].exclude":             `["**/*.tmp"]`,
		"watch[" + in + "].recursive":           "true",
		"watch[" + filepath.Dir(p) + "].target": "local",
		"metrics.listen":                        DefaultMetricsListen,
	} {
		if m[k] != want {
			t.Errorf("%s = %q, want %q", k, m[k], want)
		}
	}
	for k, v := range m {
		if strings.Contains(v, "s3cr3t") || strings.Contains(v, "acc3ss") {
			t.Errorf("%s holds a credential", k)
		}
	}

	// Secret-bearing fields: a Secret, or a key naming a secret, is only
	// said to be set.
	var x struct {
		Token    string `toml:"token"`
		Password Secret `toml:"password_file_contents"`
		Key      Secret `toml:"key"`
		TokenEnv string `toml:"token_env"`
		Empty    string `toml:"secret"`
		hidden   string
	}
	x.Token, x.Password, x.Key, x.TokenEnv, x.hidden = "t0k", "pw", "k3y", "TOKEN", "h"
	got := map[string]string{}
	flattenSettings(got, "s", reflect.ValueOf(&x).Elem())
	want := map[string]string{"s.token": SecretSetting, "s.password_file_contents": SecretSetting, "s.key": SecretSetting, "s.token_env": "TOKEN"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("secret fields flattened to %v, want %v", got, want)
	}
}

func TestChangedSettings(t *testing.T) {
	old := map[string]string{"a": "1", "b": "2", "gone": "x"}
	new := map[string]string{"a": "1", "b": "3", "added": "y"}
	if got := ChangedSettings(old, new); !slices.Equal(got, []string{"added", "b", "gone"}) {
		t.Fatalf("changedSettings = %q", got)
	}
	if got := ChangedSettings(new, new); len(got) != 0 {
		t.Fatalf("no change: %q", got)
	}
}

// TestSettingsOfTargetType: a target's settings are those of its type, so
// the first start's audit record of an fs-only configuration names no S3
// setting as changed.
func TestSettingsOfTargetType(t *testing.T) {
	p := testcfg.Write(t, "[target.nas]\ntype = \"fs\"\npath = \"archive\"\n[[watch]]\npath = \"in\"\ntarget = \"nas\"\n")
	c, err := Load(p, testcfg.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, k := range ChangedSettings(nil, c.Settings()) {
		if strings.HasPrefix(k, "target.") {
			targets = append(targets, k)
		}
	}
	if want := []string{"target.nas.file_mode", "target.nas.path", "target.nas.prefix", "target.nas.type"}; !slices.Equal(targets, want) {
		t.Errorf("an fs target's settings: %q, want %q", targets, want)
	}

	p = testcfg.Write(t, testcfg.Valid)
	c, err = Load(p, testcfg.Env(map[string]string{"AK": "a", "SK": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Settings()
	for _, k := range []string{"target.archive.endpoint", "target.archive.bucket", "target.archive.region", "target.archive.access_key_env",
		"target.archive.secret_key_env", "target.archive.prefix", "target.local.path"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s is missing", k)
		}
	}
	for _, k := range []string{"target.archive.path", "target.local.bucket", "target.local.endpoint", "target.local.region"} {
		if v, ok := m[k]; ok {
			t.Errorf("%s = %q: it does not apply to that target's type", k, v)
		}
	}
}
