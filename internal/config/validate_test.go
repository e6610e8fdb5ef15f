package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ferry-data/ferry/internal/testcfg"
)

// TestLoadRefusesLossOrDuplication: configurations that lose or duplicate
// data, explicit zeros that make no sense and absurd values are refused at
// their line (issue 11, item 9); credentials written into an endpoint URL
// are refused without being echoed.
func TestLoadRefusesLossOrDuplication(t *testing.T) {
	env := testcfg.Env(map[string]string{"AK": "a", "SK": "s"})
	fs := "[target.t]\ntype = \"fs\"\npath = \"out\"\n"
	watch := "[[watch]]\npath = \"in\"\ntarget = \"t\"\n"
	s3 := func(endpoint string) string {
		return fmt.Sprintf("[target.t]\ntype = \"s3\"\nendpoint = %q\nbucket = \"b\"\naccess_key_env = \"AK\"\nsecret_key_env = \"SK\"\n", endpoint)
	}
	for _, c := range []struct {
		name, body string
		line       int
		want       string
	}{
		{"target inside watch", "[target.t]\ntype = \"fs\"\npath = \"in/archive\"\n" + watch, 3, "target.t.path: the target folder"},
		{"watch inside target", "[target.t]\ntype = \"fs\"\npath = \".\"\n" + watch, 5, "watch[1].path: the watched folder " /* ... is inside the target folder */},
		{"nested watches same target", fs + watch + "[[watch]]\npath = \"in/sub\"\ntarget = \"t\"\n", 8, "every file would be stored twice"},
		{"journal in watch", "[journal]\npath = \"in/ferry.db\"\n" + fs + watch, 7, "holds the journal"},
		{"log in watch", "[log]\nfile = \"in/ferry.log\"\n" + fs + watch, 7, "holds the log"},
		{"zero workers", "[upload]\nmax_concurrent_uploads = 0\n" + fs + watch, 2, "must be between 1 and 256 (got 0"},
		{"zero chunk", "[upload]\nmax_chunk_size = 0\n" + fs + watch, 2, "max_chunk_size: must not be 0: between 64KiB and 5GiB"},
		{"zero settle", fs + watch + "settle = \"0s\"\n", 7, "watch[1].settle: must be between 10ms and 168h0m0s (got 0"},
		{"settle of 1ns", fs + watch + "settle = \"1ns\"\n", 7, "must be between 10ms and 168h0m0s (got 1ns)"},
		{"zero rescan", fs + watch + "rescan_interval = \"0s\"\n", 7, "rescan_interval: must be at least 1s (got 0"},
		{"zero retry attempts", "[upload.retry]\nattempts = 0\n" + fs + watch, 2, "attempts: must be between 1 and 100"},
		{"zero checkpoint interval", "[journal]\ncheckpoint_interval = \"0s\"\n" + fs + watch, 2, "checkpoint_interval: must not be 0"},
		{"prefix with ..", "[target.t]\ntype = \"fs\"\npath = \"out\"\nprefix = \"a/../b/\"\n" + watch, 4, "without empty, . or .. parts"},
		{"prefix under _ferry", "[target.t]\ntype = \"fs\"\npath = \"out\"\nprefix = \"_Ferry/x/\"\n" + watch, 4, "must not start with _ferry/"},
		{"file_mode not octal", fs + "file_mode = \"644\"\n" + watch, 4, "target.t.file_mode: must be four octal digits such as \"0644\""},
		{"file_mode with 8", fs + "file_mode = \"0684\"\n" + watch, 4, "target.t.file_mode: must be four octal digits"},
		{"file_mode owner cannot write", fs + "file_mode = \"0444\"\n" + watch, 4, "must let the owner read and write"},
		{"file_mode executable", fs + "file_mode = \"0755\"\n" + watch, 4, "must not make archived files executable"},
		{"file_mode on s3", s3("http://127.0.0.1:9000") + "file_mode = \"0640\"\n" + watch, 7, "file_mode: applies only to fs targets"},
		{"port above 65535", s3("http://127.0.0.1:70000") + watch, 3, "the port must be between 1 and 65535"},
		{"metrics port above 65535", "[metrics]\nlisten = \"127.0.0.1:99999\"\n" + fs + watch, 2, "the port must be between 1 and 65535"},
		{"credentials in the URL", s3("https://KEYID123:SECRETX99@s3.example.org") + watch, 3, "endpoint: credentials in the URL"},
		{"user only in the URL", s3("https://KEYID123@s3.example.org") + watch, 3, "endpoint: credentials in the URL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := testcfg.Write(t, c.body)
			os.MkdirAll(filepath.Join(filepath.Dir(p), "in", "sub"), 0o755)
			_, err := Load(p, env)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprintf("%s:%d: ", p, c.line)) || !strings.Contains(msg, c.want) {
				t.Errorf("error %q\nwant %q at %s:%d", msg, c.want, p, c.line)
			}
			for _, secret := range []string{"KEYID123", "SECRETX99"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error echoes a credential: %q", msg)
				}
			}
		})
	}
}

// TestLoadAllowsWhatDoesNotOverlap: watches whose files go to different
// targets, a non-recursive watch above another, and an fs target beside
// the watches are fine; an explicit 0 where it means something is kept.
func TestLoadAllowsWhatDoesNotOverlap(t *testing.T) {
	env := testcfg.Env(nil)
	body := `
[journal]
path = "state/ferry.db"
[log]
max_age_days = 0
[metrics]
listen = ""
[target.a]
type = "fs"
path = "out-a"
[target.b]
type = "fs"
path = "out-b"
[[watch]]
path = "in"
target = "a"
[[watch]]
path = "in/sub"
target = "b"
[[watch]]
path = "."
target = "b"
recursive = false
`
	p := testcfg.Write(t, body)
	os.MkdirAll(filepath.Join(filepath.Dir(p), "in", "sub"), 0o755)
	c, err := Load(p, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.MaxAgeDays != 0 || *c.Metrics.Listen != "" {
		t.Errorf("max_age_days %d, listen %q: an explicit zero that means something must stay", c.Log.MaxAgeDays, *c.Metrics.Listen)
	}
}

// TestOverlapThroughSymlink: a watch named through a symbolic link is
// compared by the folder it resolves to.
func TestOverlapThroughSymlink(t *testing.T) {
	p := testcfg.Write(t, "[journal]\npath = \"in/ferry.db\"\n[target.t]\ntype = \"fs\"\npath = \"out\"\n[[watch]]\npath = \"link\"\ntarget = \"t\"\n")
	dir := filepath.Dir(p)
	if err := os.Symlink(filepath.Join(dir, "in"), filepath.Join(dir, "link")); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "link")); err != nil {
		t.Skip("symbolic links do not resolve here (Wine):", err)
	}
	_, err := Load(p, testcfg.Env(nil))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s:7: watch[1].path: the watched folder", p)) || !strings.Contains(err.Error(), "holds the journal") {
		t.Fatalf("got %v, want the journal inside the watch (through the link) refused at line 7", err)
	}
}

// TestSettingsRedactURLCredentials: nothing the audit log stores can hold
// the user-info part of a URL.
func TestSettingsRedactURLCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"https://KEY:SECRET@host/x":          "https://REDACTED@host/x",
		"see http://u@h and https://a:b@c/d": "see http://REDACTED@h and https://REDACTED@c/d",
		"http://host:9000/bucket":            "http://host:9000/bucket",
	} {
		if got := RedactText(in); got != want {
			t.Errorf("RedactText(%q) = %q, want %q", in, got, want)
		}
	}
	c := &Config{Target: map[string]TargetConfig{"t": {Type: "s3", Endpoint: "https://KEY:SECRET@host"}}}
	for k, v := range c.Settings() {
		if strings.Contains(v, "SECRET") || strings.Contains(v, "KEY:") {
			t.Errorf("setting %s = %q holds a credential", k, v)
		}
	}
}

// TestCredentialsFile: an s3 target's credentials come from a
// credentials_file (NAME=VALUE lines, before the environment); a bad line
// is reported at the file's line without its value, and a file every user
// may read is refused with the fix (issue 11, item 14).
func TestCredentialsFile(t *testing.T) {
	body := "[target.t]\ntype = \"s3\"\nendpoint = \"http://127.0.0.1:1\"\nbucket = \"b\"\ncredentials_file = \"creds.env\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n"
	write := func(t *testing.T, creds string, mode os.FileMode) (string, string) {
		p := testcfg.Write(t, body)
		cp := filepath.Join(filepath.Dir(p), "creds.env")
		if err := os.WriteFile(cp, []byte(creds), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(cp, mode)
		return p, cp
	}
	t.Run("read", func(t *testing.T) {
		p, _ := write(t, "# ferry's service account\n\nAWS_ACCESS_KEY_ID = AKIAFILE\nAWS_SECRET_ACCESS_KEY=\"s3cr3t=x\"\n", 0o600)
		c, err := Load(p, testcfg.Env(map[string]string{"AWS_ACCESS_KEY_ID": "from-env"}))
		if err != nil {
			t.Fatal(err)
		}
		ak, sk := c.Target["t"].Credentials()
		if ak.Reveal() != "AKIAFILE" || sk.Reveal() != "s3cr3t=x" {
			t.Errorf("credentials %q %q, want the file's", ak.Reveal(), sk.Reveal())
		}
		for k, v := range c.Settings() {
			if strings.Contains(v, "s3cr3t") || strings.Contains(v, "AKIAFILE") {
				t.Errorf("setting %s holds a credential", k)
			}
		}
	})
	t.Run("bad line", func(t *testing.T) {
		p, cp := write(t, "AWS_ACCESS_KEY_ID=AKIAFILE\nAWS_SECRET_ACCESS_KEY s3cr3t\n", 0o600)
		_, err := Load(p, testcfg.Env(nil))
		if err == nil || !strings.Contains(err.Error(), cp+":2: expected NAME=VALUE") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("got %v, want %s:2 without the value", err, cp)
		}
	})
	if runtime.GOOS == "windows" {
		return
	}
	t.Run("readable by everyone", func(t *testing.T) {
		p, cp := write(t, "AWS_ACCESS_KEY_ID=AKIAFILE\nAWS_SECRET_ACCESS_KEY=s3cr3t\n", 0o644)
		_, err := Load(p, testcfg.Env(nil))
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s:5: target.t.credentials_file: %s is readable by every user (mode 0644): restrict it, such as: chmod 600 %s", p, cp, cp)) {
			t.Errorf("got %v", err)
		}
	})
}

// TestFileMode: an fs target's file_mode is the mode of every file it
// writes, 0644 unless set (issue 11 item 11).
func TestFileMode(t *testing.T) {
	for body, want := range map[string]os.FileMode{"": 0o644, "file_mode = \"0640\"\n": 0o640, "file_mode = \"0600\"\n": 0o600} {
		p := testcfg.Write(t, "[target.t]\ntype = \"fs\"\npath = \"out\"\n"+body+"[[watch]]\npath = \"in\"\ntarget = \"t\"\n")
		os.MkdirAll(filepath.Join(filepath.Dir(p), "in"), 0o755)
		c, err := Load(p, testcfg.Env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Target["t"].Mode(); got != want {
			t.Errorf("%q: mode %o, want %o", body, got, want)
		}
	}
}
