//go:build linux

// Package packaging_test builds ferry's packages with `make package` and
// checks what they hold: the .deb is installed, upgraded and purged with
// dpkg on this machine (when the test runs as root), the Windows zip is
// listed, and the .rpm's file list is read when rpm is installed.
package packaging_test

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// skipOrFail skips the test on a developer machine and fails it in CI,
// where everything the test needs must be there.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set: this is a failure, not a skip)", why)
	}
	t.Skip(why)
}

// repoRoot is the module root: the test runs in packaging/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "Makefile")); err != nil {
		t.Fatalf("no Makefile in %s: %v", root, err)
	}
	return root
}

// run runs a command and returns its combined output; a non-zero exit fails
// the test with the output.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out, err := runErr(dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = withSbin(os.Environ())
	if name == "make" {
		// Under `make test VERSION=...`, the outer make would pass its
		// variables down: the packages are built as a plain `make package`.
		cmd.Env = slices.DeleteFunc(cmd.Env, func(kv string) bool {
			k, _, _ := strings.Cut(kv, "=")
			return k == "MAKEFLAGS" || k == "MFLAGS" || k == "MAKELEVEL" || k == "MAKEOVERRIDES"
		})
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// withSbin makes sure PATH has the system folders dpkg and the package
// scripts need (ldconfig, start-stop-daemon, useradd): a CI runner's PATH
// may lack them.
func withSbin(env []string) []string {
	out := slices.Clone(env)
	for i, kv := range out {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, d := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
				if !slices.Contains(filepath.SplitList(v), d) {
					v += string(filepath.ListSeparator) + d
				}
			}
			out[i] = "PATH=" + v
			return out
		}
	}
	return append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

func TestPkgVersion(t *testing.T) {
	root := repoRoot(t)
	for _, c := range []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-4-gabc1234", "1.2.3+git4.gabc1234"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+git4.gabc1234.dirty"},
		{"v1.2.3-rc1-12-gabc1234", "1.2.3~rc1+git12.gabc1234"},
		{"06e238a", "0.0.0~git06e238a"},
		{"06e238a-dirty", "0.0.0~git06e238a.dirty"},
	} {
		got, err := runErr(root, "sh", "packaging/pkgversion.sh", c.describe)
		if err != nil || strings.TrimSpace(got) != c.want {
			t.Errorf("pkgversion.sh %q = %q (%v), want %q", c.describe, got, err, c.want)
		}
	}
	// Tags that make no deb or rpm version are refused, naming the tag.
	for _, bad := range []string{"release-x", "v1.2_3", "beta"} {
		out, err := runErr(root, "sh", "packaging/pkgversion.sh", bad)
		if err == nil || !strings.Contains(out, `"`+bad+`"`) {
			t.Errorf("pkgversion.sh %q = %q (%v), want an error naming it", bad, out, err)
		}
	}
}

// built is what `make package` made.
type built struct {
	version    string // `ferry version` shows it (git describe)
	pkgVersion string // the deb and rpm version
	deb, rpm   string
	zip        string
}

// makePackage runs `make package` (or another packaging target) into dist,
// with extra make variables, and returns the files it made.
func makePackage(t *testing.T, root, dist, target string, vars ...string) built {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		skipOrFail(t, "make is not installed: cannot build the packages")
	}
	vars = append([]string{"DIST=" + dist}, vars...)
	out := run(t, root, "make", append([]string{"-s", "version"}, vars...)...)
	var b built
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "VERSION="); ok {
			b.version = v
		} else if v, ok := strings.CutPrefix(l, "PKG_VERSION="); ok {
			b.pkgVersion = v
		}
	}
	if b.version == "" || b.pkgVersion == "" {
		t.Fatalf("make version: %q", out)
	}
	run(t, root, "make", append([]string{"-s", target}, vars...)...)
	b.deb = filepath.Join(dist, "ferry_"+b.pkgVersion+"_amd64.deb")
	b.rpm = filepath.Join(dist, "ferry_"+b.pkgVersion+"_amd64.rpm")
	b.zip = filepath.Join(dist, "ferry_"+b.pkgVersion+"_windows_amd64.zip")
	return b
}

func TestPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the packages")
	}
	root := repoRoot(t)
	b := makePackage(t, root, t.TempDir(), "package")

	// The version is git describe's, and the package version is made from it.
	describe := strings.TrimSpace(run(t, root, "git", "describe", "--tags", "--always", "--dirty"))
	if b.version != describe {
		t.Errorf("make: VERSION=%q, want git describe's %q", b.version, describe)
	}
	if want := strings.TrimSpace(run(t, root, "sh", "packaging/pkgversion.sh", describe)); b.pkgVersion != want {
		t.Errorf("make: PKG_VERSION=%q, want %q", b.pkgVersion, want)
	}

	t.Run("zip", func(t *testing.T) { checkZip(t, root, b) })
	t.Run("deb contents", func(t *testing.T) { checkDebContents(t, b) })
	t.Run("rpm", func(t *testing.T) { checkRPM(t, b) })
	t.Run("deb", func(t *testing.T) { checkDeb(t, root, b) })
}

func checkZip(t *testing.T, root string, b built) {
	zr, err := zip.OpenReader(b.zip)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		names = append(names, f.Name)
		files[f.Name] = f
	}
	if got, want := strings.Join(names, " "), "ferry.exe config.example.toml INSTALL.txt README.md grafana/ferry.json"; got != want {
		t.Errorf("%s holds %s, want %s", filepath.Base(b.zip), got, want)
	}
	read := func(name string) []byte {
		f := files[name]
		if f == nil {
			return nil
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rc); err != nil {
			t.Fatalf("%s in the zip: %v", name, err)
		}
		return buf.Bytes()
	}
	if exe := read("ferry.exe"); !bytes.HasPrefix(exe, []byte("MZ")) || !bytes.Contains(exe, []byte(b.version)) {
		t.Errorf("ferry.exe (%d bytes) is not a Windows program stamped with version %s", len(exe), b.version)
	}
	for name, src := range map[string]string{"config.example.toml": "config.example.toml", "INSTALL.txt": "packaging/windows/INSTALL.txt"} {
		want, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(read(name), want) {
			t.Errorf("%s in the zip differs from %s", name, src)
		}
	}
	notes := string(read("INSTALL.txt"))
	for _, want := range []string{"ferry.exe\" install --config", "delayed start", "UNC", "mapped drive"} {
		if !strings.Contains(notes, want) {
			t.Errorf("INSTALL.txt does not mention %q", want)
		}
	}
}

func checkRPM(t *testing.T, b built) {
	f, err := os.ReadFile(b.rpm)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(f, []byte{0xed, 0xab, 0xee, 0xdb}) {
		t.Fatalf("%s is not an rpm (lead % x)", b.rpm, f[:min(4, len(f))])
	}
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("rpm is not installed: the rpm's file list is not checked")
	}
	list := run(t, "", "rpm", "-qlp", b.rpm)
	for _, want := range append([]string{"/usr/bin/ferry", "/usr/lib/systemd/system/ferry.service", "/etc/ferry/ferry.toml", "/var/lib/ferry", "/var/log/ferry", "/usr/share/doc/ferry/README.md", "/usr/share/doc/ferry/grafana/ferry.json"}, manAndCompletion...) {
		if !strings.Contains("\n"+list, "\n"+want+"\n") {
			t.Errorf("rpm -qlp lacks %s:\n%s", want, list)
		}
	}
	if conf := run(t, "", "rpm", "-qcp", b.rpm); strings.TrimSpace(conf) != "/etc/ferry/ferry.toml" {
		t.Errorf("rpm config files = %q, want /etc/ferry/ferry.toml", conf)
	}
	if v := run(t, "", "rpm", "-qp", "--qf", "%{VERSION}", b.rpm); v != b.pkgVersion {
		t.Errorf("rpm version %q, want %q", v, b.pkgVersion)
	}
}

// manAndCompletion are some of the man pages (one per command) and the
// bash completion that both packages install.
var manAndCompletion = []string{"/usr/share/man/man1/ferry.1", "/usr/share/man/man1/ferry-run.1", "/usr/share/man/man1/ferry-journal-export.1",
	"/usr/share/man/man1/ferry-dlq-retry.1", "/usr/share/bash-completion/completions/ferry"}

// checkDebContents reads the .deb's file list (dpkg-deb -c): the man pages
// and the bash completion, generated at package time, are in it.
func checkDebContents(t *testing.T, b built) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		skipOrFail(t, "dpkg-deb is not installed: the .deb's file list is not read")
	}
	var files []string
	modes := map[string]string{}
	for _, l := range strings.Split(run(t, "", "dpkg-deb", "-c", b.deb), "\n") {
		if f := strings.Fields(l); len(f) >= 6 {
			name := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
			files = append(files, name)
			modes[name] = f[0]
		}
	}
	// The journal's folder is setgid, for the group: the journal is 0640 there.
	if got := modes["/var/lib/ferry"]; got != "drwxr-s---" {
		t.Errorf("/var/lib/ferry in the .deb: mode %q, want drwxr-s--- (2750)", got)
	}
	for _, want := range append([]string{"/usr/bin/ferry"}, manAndCompletion...) {
		if !slices.Contains(files, want) {
			t.Errorf("the .deb lacks %s; it holds:\n%s", want, strings.Join(files, "\n"))
		}
	}
	man := 0
	for _, f := range files {
		if strings.HasPrefix(f, "/usr/share/man/man1/ferry") && strings.HasSuffix(f, ".1") {
			man++
		}
	}
	if man < 20 {
		t.Errorf("the .deb holds %d man pages, want one per command (20 or more)", man)
	}
}

// installEnv opts in to installing the .deb on this machine: it changes
// the machine (a system user, /etc/ferry, a systemd unit), which belongs
// in CI (.ci/run sets it), not on a developer's workstation.
const installEnv = "FERRY_TEST_INSTALL"

// checkDeb installs the .deb on this machine, checks the installed files,
// the user and the unit, upgrades to a newer build with an edited
// /etc/ferry/ferry.toml, and purges it. It needs root, dpkg, and
// FERRY_TEST_INSTALL=1.
func checkDeb(t *testing.T, root string, b built) {
	if os.Getenv(installEnv) != "1" {
		t.Skipf("%s is not 1: the .deb is not installed on this machine (.ci/run sets it)", installEnv)
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		skipOrFail(t, "dpkg is not installed: the .deb is not installed and checked")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "not root: the .deb is not installed and checked (dpkg -i needs root; CI runs as root)")
	}
	if st, err := runErr("", "dpkg-query", "-W", "-f", "${Status}", "ferry"); err == nil && strings.Contains(st, "installed") && !strings.Contains(st, "not-installed") {
		skipOrFail(t, "a ferry package is already installed here ("+st+"): the test installs and purges its own, so remove that one first")
	}
	for _, dir := range []string{"/etc/ferry", "/var/lib/ferry", "/var/log/ferry"} {
		if _, err := os.Lstat(dir); err == nil {
			skipOrFail(t, dir+" exists already: the test installs and purges ferry, so it would touch what is there")
		}
	}
	_, errUser := user.Lookup("ferry")
	_, errGroup := user.LookupGroup("ferry")
	t.Cleanup(func() {
		if out, err := runErr("", "dpkg", "--purge", "ferry"); err != nil {
			t.Errorf("cleanup: dpkg --purge ferry: %v\n%s", err, out)
		}
		os.RemoveAll("/var/lib/ferry") // the journal a purge keeps
		// Leave the machine as it was: remove the user and group the
		// package created.
		if errUser != nil {
			runErr("", "userdel", "ferry")
		}
		if errGroup != nil {
			runErr("", "groupdel", "ferry")
		}
	})

	const (
		bin  = "/usr/bin/ferry"
		conf = "/etc/ferry/ferry.toml"
		unit = "/usr/lib/systemd/system/ferry.service"
	)
	out := run(t, "", "dpkg", "-i", b.deb)
	if !strings.Contains(out, "edit /etc/ferry/ferry.toml") {
		t.Errorf("dpkg -i: the first install does not say what to do next:\n%s", out)
	}
	if v := run(t, "", "dpkg-query", "-W", "-f", "${Version}", "ferry"); v != b.pkgVersion {
		t.Errorf("installed version %q, want %q", v, b.pkgVersion)
	}
	if v := run(t, "", bin, "version"); !strings.HasPrefix(v, "ferry "+b.version+" ") {
		t.Errorf("%s version = %q, want ferry %s", bin, v, b.version)
	}
	if c := run(t, "", "dpkg-query", "-W", "-f", "${Conffiles}", "ferry"); !strings.Contains(c, conf+" ") {
		t.Errorf("%s is not a conffile: %q", conf, c)
	}
	if got, err := os.ReadFile(conf); err != nil {
		t.Error(err)
	} else if want, _ := os.ReadFile(filepath.Join(root, "packaging/ferry.toml")); !bytes.Equal(got, want) {
		t.Errorf("%s differs from packaging/ferry.toml", conf)
	}
	if got, err := os.ReadFile(unit); err != nil {
		t.Error(err)
	} else if want, _ := os.ReadFile(filepath.Join(root, "packaging/ferry.service")); !bytes.Equal(got, want) {
		t.Errorf("%s differs from packaging/ferry.service", unit)
	}
	for _, f := range append([]string{"/usr/share/doc/ferry/README.md"}, manAndCompletion...) {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}

	// The ferry system user and group, owning the journal and log folders.
	u, err := user.Lookup("ferry")
	if err != nil {
		t.Fatalf("no ferry user after install: %v", err)
	}
	if uid, _ := strconv.Atoi(u.Uid); uid >= 1000 || u.HomeDir != "/var/lib/ferry" {
		t.Errorf("ferry user: uid %s, home %s; want a system user (uid < 1000) with home /var/lib/ferry", u.Uid, u.HomeDir)
	}
	g, err := user.LookupGroup("ferry")
	if err != nil {
		t.Fatalf("no ferry group after install: %v", err)
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	if line := lineWithPrefix(string(passwd), "ferry:"); !strings.HasSuffix(line, "/nologin") && !strings.HasSuffix(line, "/false") {
		t.Errorf("the ferry user can log in: /etc/passwd has %q", line)
	}
	// The journal's folder is setgid (2750): ferry makes the journal 0640
	// there, for the ferry group.
	for dir, setgid := range map[string]os.FileMode{"/var/lib/ferry": os.ModeSetgid, "/var/log/ferry": 0} {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Error(err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if strconv.Itoa(int(st.Uid)) != u.Uid || strconv.Itoa(int(st.Gid)) != g.Gid || fi.Mode().Perm() != 0o750 || fi.Mode()&os.ModeSetgid != setgid {
			t.Errorf("%s: owner %d:%d mode %v, want ferry (%s:%s) 0750 (setgid: %v)", dir, st.Uid, st.Gid, fi.Mode(), u.Uid, g.Gid, setgid != 0)
		}
	}

	// The packaged configuration is valid as shipped: a watch folder that
	// is not there yet is a state of its watch, not an error, so ferry
	// starts and takes its files once it appears. config check names the
	// example folder, with its file:line, as the thing to edit.
	out, err = runErr("", bin, "config", "check", "--config", conf)
	if err != nil || !strings.Contains(out, "warning: "+conf+":") || !strings.Contains(out, "/srv/instrument/incoming") {
		t.Errorf("ferry config check of the shipped %s: %v\n%s\nwant it valid, with a warning naming the example watch folder", conf, err, out)
	}
	// Without --config, ferry takes the packaged configuration.
	if out, err := runErr("", bin, "config", "check"); err != nil || !strings.Contains(out, conf+": valid") {
		t.Errorf("ferry config check without --config: %v\n%s\nwant the check of %s", err, out, conf)
	}
	shipped, _ := os.ReadFile(conf)
	watch := t.TempDir()
	edited := filepath.Join(t.TempDir(), "ferry.toml")
	if err := os.WriteFile(edited, bytes.Replace(shipped, []byte(`"/srv/instrument/incoming"`), []byte(strconv.Quote(watch)), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runErr("", bin, "config", "check", "--config", edited); err != nil || strings.Contains(out, "warning") {
		t.Errorf("ferry config check of %s with an existing watch folder: %v\n%s", conf, err, out)
	}

	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		// verify also reports problems of other units on the machine: only
		// lines about ferry's unit count.
		out, err := runErr("", "systemd-analyze", "verify", unit)
		if err != nil || strings.Contains(out, "ferry.service") {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
	} else {
		t.Log("systemd-analyze is not installed: the unit is not verified")
	}

	// Upgrade to a newer build: the edited conffile stays as the user left it.
	mine := append(append([]byte{}, shipped...), "\n# edited on this machine\n"...)
	if err := os.WriteFile(conf, mine, 0o644); err != nil {
		t.Fatal(err)
	}
	b2 := makePackage(t, root, t.TempDir(), "package-deb", "VERSION="+b.version+"-next", "PKG_VERSION="+b.pkgVersion+".1")
	run(t, "", "dpkg", "-i", b2.deb)
	if v := run(t, "", "dpkg-query", "-W", "-f", "${Version}", "ferry"); v != b2.pkgVersion {
		t.Errorf("after the upgrade: version %q, want %q", v, b2.pkgVersion)
	}
	if v := run(t, "", bin, "version"); !strings.HasPrefix(v, "ferry "+b2.version+" ") {
		t.Errorf("after the upgrade: ferry version = %q, want ferry %s", v, b2.version)
	}
	if got, _ := os.ReadFile(conf); !bytes.Equal(got, mine) {
		t.Errorf("the upgrade overwrote the edited %s:\n%s", conf, got)
	}

	// Purge: everything goes but the journal (and the user).
	if err := os.WriteFile("/var/lib/ferry/ferry.db", []byte("journal"), 0o640); err != nil {
		t.Fatal(err)
	}
	out = run(t, "", "dpkg", "--purge", "ferry")
	if !strings.Contains(out, "kept /var/lib/ferry") {
		t.Errorf("dpkg --purge does not say it kept the journal:\n%s", out)
	}
	for _, gone := range []string{bin, conf, "/etc/ferry", unit, "/var/log/ferry", "/usr/share/doc/ferry"} {
		if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after dpkg --purge, %s is still there (%v)", gone, err)
		}
	}
	if _, err := os.Stat("/var/lib/ferry/ferry.db"); err != nil {
		t.Errorf("dpkg --purge removed the journal: %v", err)
	}
	if st, _ := runErr("", "dpkg-query", "-W", "-f", "${Status}", "ferry"); strings.Contains(st, " installed") || strings.Contains(st, "config-files") {
		t.Errorf("after dpkg --purge the package status is %q", st)
	}
}

func lineWithPrefix(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
