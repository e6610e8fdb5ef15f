package main

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ferry-data/ferry/internal/testcfg"
)

// cli runs the command line with the environment env (nil: empty) and,
// as the packaged configuration, defaultConfig.
func cli(t *testing.T, env map[string]string, defaultConfig string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb, getenv: testcfg.Env(env), defaultConfig: defaultConfig}
	code = a.run(t.Context(), args)
	return code, out.String(), errb.String()
}

// commands is every command of ferry's tree, by path ("journal export"),
// with cobra's help and completion commands as ferry runs them.
func commands(t *testing.T) map[string]*cobra.Command {
	t.Helper()
	root := (&app{stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), getenv: testcfg.Env(nil)}).root()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	all := map[string]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		all[strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), "ferry"), " ")] = c
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return all
}

// Every command answers --help, -h and "help COMMAND" on stdout with exit 0;
// ferry's own commands show examples.
func TestHelpEverywhere(t *testing.T) {
	cmds := commands(t)
	for _, want := range []string{"", "run", "status", "config check", "journal export", "journal verify", "journal state", "journal archive",
		"journal rebuild", "dlq list", "dlq retry", "dlq drop", "install", "uninstall", "start", "stop", "restart", "version", "completion bash",
		"completion zsh", "completion fish", "completion powershell"} {
		if cmds[want] == nil {
			t.Errorf("no command %q", want)
		}
	}
	for path := range cmds {
		words := strings.Fields(path)
		for _, args := range [][]string{append(slices.Clone(words), "--help"), append(slices.Clone(words), "-h"), append([]string{"help"}, words...)} {
			code, out, errs := cli(t, nil, "", args...)
			if code != exitOK || errs != "" || !strings.Contains(out, "Usage:") {
				t.Errorf("ferry %s: exit %d, stderr %q, stdout:\n%s", strings.Join(args, " "), code, errs, out)
			}
			ours := !strings.HasPrefix(path, "completion") && path != "help"
			if ours && !strings.Contains(out, "Examples:\n  ") {
				t.Errorf("ferry %s: no examples:\n%s", strings.Join(args, " "), out)
			}
		}
	}
}

// A bad command line: exit 2, one line saying why and one pointing at
// --help, nothing on stdout.
func TestUsageErrors(t *testing.T) {
	none := filepath.Join(t.TempDir(), "absent.toml")
	for path, c := range commands(t) {
		if path == "" || path == "help" || strings.HasPrefix(path, "completion") {
			continue
		}
		args := append(strings.Fields(path), "--no-such-flag")
		want := "ferry " + path + ": unknown flag: --no-such-flag\nRun 'ferry " + path + " --help' for usage.\n"
		if code, out, errs := cli(t, nil, none, args...); code != exitUsage || out != "" || errs != want {
			t.Errorf("ferry %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", strings.Join(args, " "), code, out, errs, want)
		}
		if c.HasSubCommands() {
			want := "ferry " + path + ": give a command: "
			if code, _, errs := cli(t, nil, none, path); code != exitUsage || !strings.HasPrefix(errs, want) {
				t.Errorf("ferry %s: exit %d, %q", path, code, errs)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fly"}, "ferry: unknown command \"fly\" for \"ferry\""},
		{[]string{"help", "fly"}, "ferry help: unknown command \"fly\" for \"ferry\""},
		{[]string{"completion"}, "ferry completion: give a command: bash, fish, powershell, zsh"},
		{[]string{"completion", "tcsh"}, "ferry completion: unknown command \"tcsh\" for \"ferry completion\""},
		{[]string{"journal", "fly"}, "ferry journal: unknown command \"fly\" for \"ferry journal\""},
		{[]string{"dlq", "list", "-all"}, "ferry dlq list: unknown shorthand flag: 'a' in -all"},
		{[]string{"dlq", "list", "--all"}, "ferry dlq list: unknown flag: --all"},
		{[]string{"dlq", "list", "12"}, `ferry dlq list: takes no arguments (got ["12"])`},
		{[]string{"dlq", "retry"}, "ferry dlq retry: give the IDs to retry, or --all"},
		{[]string{"dlq", "retry", "12", "--all"}, "ferry dlq retry: give the IDs to retry, or --all"},
		{[]string{"dlq", "drop", "x"}, `ferry dlq drop: "x" is not a dead letter's ID (see ferry dlq list)`},
		{[]string{"run", "--config"}, "ferry run: flag needs an argument: --config"},
		{[]string{"journal", "state", "--export", "x.jsonl"}, `ferry journal state: required flag(s) "at" not set`},
		{[]string{"journal", "state", "--export", "x.jsonl", "--at", "soon"}, "ferry journal state: --at: invalid time \"soon\""},
		{[]string{"journal", "verify", "--export", "x.jsonl", "--against-target"}, "ferry journal verify: --export checks a file on its own"},
		{[]string{"journal", "export", "--format", "xml"}, "ferry journal export: --format must be jsonl or csv"},
	} {
		code, out, errs := cli(t, nil, none, tc.args...)
		if code != exitUsage || out != "" || !strings.HasPrefix(errs, tc.want) || strings.Count(errs, "\n") != 2 || !strings.HasSuffix(errs, " --help' for usage.\n") {
			t.Errorf("ferry %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, out, errs, tc.want)
		}
	}
	// Without a command: what there is, on stderr.
	if code, out, errs := cli(t, nil, none); code != exitUsage || out != "" || !strings.Contains(errs, "Available Commands:") {
		t.Errorf("ferry: exit %d, %q, %q", code, out, errs)
	}
}

// The configuration: --config, else FERRY_CONFIG, else the packaged one
// if it exists; with none of them, every verb that needs one says where it
// looked, the same way.
func TestConfigFile(t *testing.T) {
	const body = "[target.t]\ntype = \"fs\"\npath = \"out\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n"
	flag, envCfg, packaged := testcfg.Write(t, body), testcfg.Write(t, body), testcfg.Write(t, body)
	none := filepath.Join(t.TempDir(), "absent.toml")
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		packaged  string
		want      string
		wantUsage bool
	}{
		{"flag first", []string{"--config", flag}, map[string]string{"FERRY_CONFIG": envCfg}, packaged, flag, false},
		{"then FERRY_CONFIG", nil, map[string]string{"FERRY_CONFIG": envCfg}, packaged, envCfg, false},
		{"then the packaged one", nil, nil, packaged, packaged, false},
		{"an empty FERRY_CONFIG is unset", nil, map[string]string{"FERRY_CONFIG": ""}, packaged, packaged, false},
		{"none", nil, nil, none, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := cli(t, tc.env, tc.packaged, append([]string{"config", "check"}, tc.args...)...)
			if tc.wantUsage {
				if code != exitUsage || !strings.Contains(errs, "no configuration file: --config FILE is not given, FERRY_CONFIG is not set, and "+none+" does not exist") {
					t.Errorf("exit %d, %q", code, errs)
				}
				return
			}
			if code != exitOK || !strings.HasPrefix(out, tc.want+": valid") {
				t.Errorf("exit %d, checked %q (want %s); %s", code, out, tc.want, errs)
			}
		})
	}
	// The same explanation from every verb that needs a configuration.
	for _, verb := range [][]string{{"run"}, {"run", "--once"}, {"status"}, {"config", "check"}, {"install"}, {"dlq", "list"},
		{"journal", "export"}, {"journal", "verify"}, {"journal", "state", "--at", "2026-01-01"}, {"journal", "rebuild"}} {
		name := strings.Join(slices.DeleteFunc(slices.Clone(verb), func(s string) bool { return strings.HasPrefix(s, "-") || strings.HasPrefix(s, "2") }), " ")
		want := "ferry " + name + ": no configuration file: --config FILE is not given, FERRY_CONFIG is not set, and " + none + " does not exist\nRun 'ferry " + name + " --help' for usage.\n"
		if code, _, errs := cli(t, nil, none, verb...); code != exitUsage || errs != want {
			t.Errorf("ferry %s: exit %d, %q; want %q", strings.Join(verb, " "), code, errs, want)
		}
	}
	// FERRY_CONFIG naming a missing file is that file's error, not a search.
	if code, _, errs := cli(t, map[string]string{"FERRY_CONFIG": none}, packaged, "status"); code != exitUsage || !strings.Contains(errs, none+": cannot read the configuration") {
		t.Errorf("FERRY_CONFIG missing: exit %d, %q", code, errs)
	}
}

// Flags written with one dash, as ferry took them before GNU flags, still
// work; a flag's value or what follows "--" is never rewritten.
func TestSingleDashFlags(t *testing.T) {
	root := (&app{stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), getenv: testcfg.Env(nil)}).root()
	got := gnuFlags(root, []string{"journal", "export", "-config", "c.toml", "--out", "-format", "-since=2026-01-01", "-h", "-x", "--", "-batch"})
	want := []string{"journal", "export", "--config", "c.toml", "--out", "-format", "--since=2026-01-01", "-h", "-x", "--", "-batch"}
	if !slices.Equal(got, want) {
		t.Errorf("gnuFlags = %q, want %q", got, want)
	}
	p := testcfg.Write(t, "[target.t]\ntype = \"fs\"\npath = \"out\"\n[[watch]]\npath = \"in\"\ntarget = \"t\"\n")
	if code, out, errs := cli(t, nil, "", "config", "check", "-config", p); code != exitOK || !strings.Contains(out, "valid") {
		t.Errorf("config check -config: exit %d, %q %q", code, out, errs)
	}
}

func TestVersionAndCompletion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		if code, out, _ := cli(t, nil, "", args...); code != exitOK || out != versionString()+"\n" {
			t.Errorf("ferry %s: exit %d, %q", args[0], code, out)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		if code, out, errs := cli(t, nil, "", "completion", shell); code != exitOK || errs != "" || !strings.Contains(out, "ferry") || len(out) < 1000 {
			t.Errorf("ferry completion %s: exit %d, %d bytes, %q", shell, code, len(out), errs)
		}
	}
}
