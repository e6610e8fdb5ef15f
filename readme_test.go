//go:build linux

// Package ferry_test holds the test of README.md: its shell commands work as
// written, on a fresh copy of the repository.
package ferry_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's commands that this test runs or leaves out, besides the
// example's two (runExample, tryIt): each with what it must answer in the
// example's state, or why it is not run here. A command in README.md that
// is not here fails the test, and so does one here that the README lost.
const (
	runExample = "make build && ./ferry run --config config.example.toml"
	makeTest   = "make test"
	tryIt      = "mkdir -p demo/incoming/run-0002 && cp README.md demo/incoming/run-0002/"
)

type expect struct {
	skip string // why it is not run here
	code int    // its exit code
	want string // in what it prints (stdout and stderr)
}

var (
	installs = "installs ferry on this machine (a system service, a package, as root): " +
		"packaging/package_test.go does these steps with FERRY_TEST_INSTALL=1 (CI), and internal/service tests the service verbs"
	metadataRuns   = "needs a watch with a metadata profile and generated run folders: cmd/ferry TestMetadataOfSequencerRuns runs both"
	readmeCommands = map[string]expect{
		makeTest:                             {skip: "the test suite that runs this test"},
		"ferry dlq list --config ferry.toml": {want: "no dead letters"},
		// The example leaves no dead letter: ferry says so, exit 2.
		"ferry dlq retry 12 17 --config ferry.toml":                                              {code: 2, want: "not a dead letter"},
		"ferry dlq drop 12 --config ferry.toml":                                                  {code: 2, want: "no file with that id"},
		"ferry journal export --config ferry.toml --since 2026-11-01 --out nov.jsonl":            {want: "exported "},
		"ferry journal export --config ferry.toml --log audit --out audit.jsonl":                 {want: "audit records to audit.jsonl"},
		"ferry journal verify --export nov.jsonl":                                                {want: "nov.jsonl: intact"},
		"ferry journal verify --config ferry.toml":                                               {want: "agree with a replay of the events"},
		"ferry journal verify --config ferry.toml --against-target":                              {want: "latest checkpoint on every target"},
		"ferry journal state --config ferry.toml --at 2026-11-01T12:00:00Z":                      {want: "files as of 2026-11-01T12:00:00Z"},
		"ferry journal archive --config ferry.toml --before 2026-01-01 --out journal-2025.jsonl": {want: "archive"},
		// Run last, on a journal scribbled over (see below).
		"ferry journal rebuild --config ferry.toml": {want: "2 already on their target"},
		"ferry metadata accept LH00001/20261202_LH00001_0043_B22XYZLT3 --reason \"species confirmed by the PI (ticket 4711)\" --config ferry.toml": {skip: metadataRuns},
		"ferry metadata check --config ferry.toml incoming/LH00001/20261202_LH00001_0043_B22XYZLT3":                                                {skip: metadataRuns},
		"sudo ferry install --config /etc/ferry/ferry.toml --user ferry":                                                                           {skip: installs},
		"sudo ferry start":                                  {skip: installs},
		"sudo ferry uninstall":                              {skip: installs},
		"sudo dpkg -i dist/ferry_*_amd64.deb":               {skip: installs},
		"sudoedit /etc/ferry/ferry.toml":                    {skip: installs},
		"ferry config check --config /etc/ferry/ferry.toml": {skip: installs},
		"sudo systemctl enable --now ferry":                 {skip: installs},
	}
)

// readmeBlocks are the commands of each ```sh block of README.md, comments
// taken off.
func readmeBlocks(t *testing.T) [][]string {
	t.Helper()
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	comment := regexp.MustCompile(`\s+#.*$`)
	var blocks [][]string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "```sh":
			in = true
			blocks = append(blocks, nil)
		case strings.HasPrefix(line, "```"):
			in = false
		case in && !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.TrimSpace(line) != "":
			blocks[len(blocks)-1] = append(blocks[len(blocks)-1], strings.TrimSpace(comment.ReplaceAllString(line, "")))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// TestREADME runs the README's commands as written, in a copy of the
// repository as a fresh clone has it (the files git tracks, or would):
// the example is built and run, takes the sample run and a file copied in
// (the "Try it" commands), stops on SIGTERM with exit 0 within 10 s, and
// leaves git status clean; then, with that ferry on the PATH and
// config.example.toml as ferry.toml, the journal and dead-letter commands
// run against the example's journal, and rebuild mends it once scribbled
// over. readmeCommands says what each must answer, or why it is not run.
func TestREADME(t *testing.T) {
	blocks := readmeBlocks(t)
	if len(blocks) == 0 || !slices.Equal(blocks[0], []string{runExample, makeTest}) {
		t.Errorf("README.md's first commands are %q, want exactly %q and %q", blocks[0], runExample, makeTest)
	}
	var ops []string
	for _, b := range blocks {
		for _, c := range b {
			if _, ok := readmeCommands[c]; !ok && c != runExample && c != tryIt {
				t.Errorf("README.md has a command this test does not know: %q (add it to readmeCommands)", c)
			}
			if e, ok := readmeCommands[c]; ok && e.skip == "" && !slices.Contains(ops, c) {
				ops = append(ops, c)
			}
		}
	}
	for c := range readmeCommands {
		if !slices.ContainsFunc(blocks, func(b []string) bool { return slices.Contains(b, c) }) {
			t.Errorf("readmeCommands has %q, which README.md no longer has", c)
		}
	}
	for _, c := range []string{runExample, tryIt} {
		if !slices.ContainsFunc(blocks, func(b []string) bool { return slices.Contains(b, c) }) {
			t.Fatalf("README.md lacks %q, which this test runs", c)
		}
	}
	if t.Failed() {
		return
	}

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	dir := freshCopy(t)
	// A person's shell: not the variables of a make that runs this test.
	environ := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "MAKEFLAGS" || k == "MFLAGS" || k == "MAKELEVEL" || k == "MAKEOVERRIDES"
	})
	sh := func(cmd string, env ...string) (int, string) {
		t.Helper()
		c := exec.CommandContext(ctx, "bash", "-c", cmd)
		c.Dir = dir
		c.Env = append(slices.Clone(environ), env...)
		out, err := c.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%s: %v", cmd, err)
		}
		return c.ProcessState.ExitCode(), string(out)
	}

	// The example, as a person runs it: build, then ferry in the
	// foreground (exec: the signal goes to ferry, as Ctrl-C would).
	build, daemon, _ := strings.Cut(runExample, " && ")
	if code, out := sh(build); code != 0 {
		t.Fatalf("%s: exit %d\n%s", build, code, out)
	}
	logFile, err := os.Create(filepath.Join(t.TempDir(), "ferry.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	log := func() string { b, _ := os.ReadFile(logFile.Name()); return string(b) }
	ferry := exec.Command("bash", "-c", "exec "+daemon)
	ferry.Dir, ferry.Env, ferry.Stdout, ferry.Stderr = dir, environ, logFile, logFile
	ferry.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := ferry.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- ferry.Wait() }()
	t.Cleanup(func() { syscall.Kill(-ferry.Process.Pid, syscall.SIGKILL) })
	landed := func(rel string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			_, err1 := os.Stat(filepath.Join(dir, "demo/archive", rel))
			_, err2 := os.Stat(filepath.Join(dir, "demo/archive/_ferry/fs/sha256", rel))
			if err1 == nil && err2 == nil {
				return
			}
			select {
			case err := <-exited:
				t.Fatalf("ferry ended (%v) before %s landed:\n%s", err, rel, log())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not land in demo/archive with its sidecar under _ferry/fs/sha256/:\n%s", rel, log())
			}
		}
	}
	landed("run-0001/sample.csv")
	if code, out := sh(tryIt); code != 0 {
		t.Fatalf("%s: exit %d\n%s", tryIt, code, out)
	}
	landed("run-0002/README.md")
	start := time.Now()
	ferry.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil || time.Since(start) > 10*time.Second {
			t.Errorf("ferry after SIGTERM: %v after %s, want exit 0 within 10 s\n%s", err, time.Since(start), log())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("ferry still runs 15 s after SIGTERM:\n%s", log())
	}
	if _, out := sh("git status --porcelain --untracked-files=all"); out != "" {
		t.Errorf("the example left git status unclean:\n%s", out)
	}

	// The verbs, as written: ferry on the PATH, its configuration ferry.toml.
	if code, out := sh("cp config.example.toml ferry.toml"); code != 0 {
		t.Fatal(out)
	}
	path := "PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH")
	for _, c := range ops {
		if strings.HasPrefix(c, "ferry journal rebuild") {
			// The journal damaged, as the README's section has it.
			scribble(t, filepath.Join(dir, "demo", "ferry.db"))
		}
		e := readmeCommands[c]
		if code, out := sh(c, path); code != e.code || !strings.Contains(out, e.want) {
			t.Errorf("%s: exit %d, want %d and %q in:\n%s", c, code, e.code, e.want, out)
		}
	}
}

// scribble damages the SQLite file at path, as a bad disk would.
func scribble(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("scribbled over by a bad disk"), 0); err != nil {
		t.Fatal(err)
	}
}

// freshCopy copies the files a clone of this working tree would have (git
// tracks them, or would: not ignored) into a new folder, as one commit of
// a new repository, and returns it.
func freshCopy(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("not a git working tree (%v): the README's commands are run in a copy of one", err)
	}
	dir := t.TempDir()
	for _, name := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if err := copyFile(name, filepath.Join(dir, name)); errors.Is(err, os.ErrNotExist) {
			continue // deleted, not yet committed
		} else if err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=readme test", "-c", "user.email=readme@test.invalid", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "a fresh clone")
	return dir
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() { // a submodule or the like
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", src, err)
	}
	return out.Close()
}
