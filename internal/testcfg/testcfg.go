// Package testcfg writes ferry configurations for tests and gives them the
// environment a configuration reads its credentials from.
package testcfg

import (
	"os"
	"path/filepath"
	"testing"
)

// Env is an environment holding only m: what a configuration's
// access_key_env and secret_key_env find.
func Env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Write writes body as ferry.toml into a new temporary folder that also
// holds an empty folder "in" (to watch), and returns the file's path.
func Write(t testing.TB, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "ferry.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Valid is a configuration that uses most keys, for Write: an s3 target
// whose credentials are the variables AK and SK, an fs target, and two
// watches ("in" and the file's own folder).
const Valid = `
[journal]
path = "state/ferry.db"

[log]
file = "logs/ferry.log"
level = "debug"

[upload]
max_concurrent_uploads = 2
max_chunk_size = "8MiB"
orphan_upload_ttl = "2h"
max_bandwidth = "20MiB/s"

[upload.retry]
attempts = 3
initial_delay = "500ms"
max_delay = "10s"

[upload.breaker]
failure_threshold = 8
open_timeout = "1m"

[target.archive]
type = "s3"
endpoint = "http://127.0.0.1:7070"
bucket = "data"
access_key_env = "AK"
secret_key_env = "SK"
prefix = "scope1/"

[target.local]
type = "fs"
path = "archive"

[[watch]]
path = "in"
target = "archive"
settle = "2s"
exclude = ["**/*.tmp"]

[[watch]]
path = "in/.."
target = "local"
recursive = false
`
