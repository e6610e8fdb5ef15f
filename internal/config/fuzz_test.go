package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ferry-data/ferry/internal/testcfg"
)

// fuzzRoundTrip fuzzes parse from seeds: any string parses or is refused,
// never panics; what parses is not negative (unless negative is allowed)
// and reads back the same from format.
func fuzzRoundTrip[T ~int64](f *testing.F, seeds []string, negative bool, parse func(string) (T, error), format func(T) string) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parse(s)
		if err != nil {
			return
		}
		if v < 0 && !negative {
			t.Fatalf("%q parses as %d: negative", s, v)
		}
		if back, err := parse(format(v)); err != nil || back != v {
			t.Fatalf("%q parses as %d, which %q reads back as %d, %v", s, v, format(v), back, err)
		}
	})
}

// Sizes: "16MiB", "512 KiB", a number of bytes.
func FuzzParseSize(f *testing.F) {
	fuzzRoundTrip(f, []string{"16MiB", "16 MiB", "5mib", "1GiB", "512KiB", "1048576", "10MB", "1B", "2TiB", "", "MiB", "16XB", "-1MiB",
		"1.5MiB", "99999999999999999999TiB", "4194304TiB", "4194305TiB", " 7 k ", "0"}, false, ParseSize, Size.String)
}

// Rates: "20MiB/s", "20MiB", a number of bytes per second.
func FuzzParseRate(f *testing.F) {
	fuzzRoundTrip(f, []string{"20MiB/s", "20MiB", "1048576", "0", "fast", "/s", "1 KiB /s", "5GB/s/s"}, false, ParseRate, Rate.String)
}

// Durations: Go's syntax (negative ones parse; validation refuses them).
func FuzzParseDuration(f *testing.F) {
	fuzzRoundTrip(f, []string{"30s", "10m", "1h30m", "500ms", "-1s", "0", "soon", "1.5h", "9223372036854775807ns", "1e3s", ""}, true,
		ParseDuration, func(d Duration) string { return time.Duration(d).String() })
}

// Any bytes as a configuration file: Load never panics, succeeds or says
// why, and every line it names is a line of the file.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(testcfg.Valid))
	if b, err := os.ReadFile("../../config.example.toml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"[journal]\npath = \"x\nlevel = 3\n",
		"verbose = true\n[target.t]\ntype = \"fs\"\npath = \"out\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\ncolour = 1\n",
		"[upload]\nmax_concurrent_uploads = \"four\"\n",
		"[upload]\nmax_chunk_size = \"16XB\"\nmax_bandwidth = -1\n",
		"upload.retry.attempts = 0\n[target.\"a.b\"]\ntype = \"s3\"\n",
		"[[watch]]\n[[watch]]\npath = \"in\"\ninclude = [\"[a\"]\n[watch.x]\n",
		"a = { b = 1 }\n'quoted key' = 2\n\"x\".y = 3\n",
		"[log]\nmax_size_mb = 9999999999999999999\n",
		"\r\n[journal]\r\ncheckpoint_interval = \"1s\"\r\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "in"), 0o755); err != nil {
		f.Fatal(err)
	}
	file := filepath.Join(dir, "ferry.toml")
	env := testcfg.Env(map[string]string{"AK": "a", "SK": "s"})
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		c, err := parse(file, file, data, env)
		if err == nil {
			if c == nil || c.Metrics.Listen == nil || len(c.Watch) == 0 || len(c.Target) == 0 {
				t.Fatalf("accepted, but incomplete: %+v", c)
			}
			return
		}
		var one *Error
		var all Errors
		switch {
		case errors.As(err, &one):
			all = Errors{one}
		case errors.As(err, &all):
		default:
			t.Fatalf("error %T %v: want an Error or Errors", err, err)
		}
		for _, e := range all {
			if e.File != file || e.Line < 0 || e.Line > lines {
				t.Fatalf("error %q names line %d of a file of %d lines", e.Error(), e.Line, lines)
			}
		}
	})
}

// The locator alone, asked for any key of any table in any bytes, names a
// line of the file or none (0).
func FuzzLocator(f *testing.F) {
	f.Add([]byte(testcfg.Valid), "upload.retry", "attempts", 1)
	f.Add([]byte("upload.retry.attempts = 3\n[[watch]]\n[[watch]]\npath = 1\n"), "watch", "path", 1)
	f.Add([]byte("[ \"a.b\" . 'c' ]\nx=1\n"), "a.b.c", "x", 0)
	f.Add([]byte("[[watch]]\n[watch.x]\ny = 1\n"), "watch", "x.y", 0)
	f.Fuzz(func(t *testing.T, data []byte, table, key string, index int) {
		lines := bytes.Count(data, []byte("\n")) + 1
		l := newLocator(data)
		check := func(what string, n int) {
			if n < 0 || n > lines {
				t.Fatalf("%s = %d in a file of %d lines", what, n, lines)
			}
		}
		check("line", l.line(table, key))
		check("table", l.table(table))
		check("arrayLine", l.arrayLine(table, index, key))
		n, _ := l.keyLine(toml.Key{table, key})
		check("keyLine", n)
		n, _ = l.keyLine(toml.Key(strings.Split(key, ".")))
		check("keyLine (dotted)", n)
	})
}
