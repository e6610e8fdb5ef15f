package service

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/testcfg"
	"github.com/ferry-data/ferry/internal/testtmp"
)

// unitLines returns the unit's settings, one "Key=Value" per line.
func unitLines(unit string) []string {
	var ls []string
	for _, l := range strings.Split(unit, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "[") {
			ls = append(ls, l)
		}
	}
	return ls
}

// verifyUnit runs systemd-analyze verify over a unit file when the tool is
// there; any complaint, warnings included, fails the test.
func verifyUnit(t *testing.T, path string) {
	t.Helper()
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not found: the unit's syntax is not verified")
		return
	}
	out, err := exec.Command(tool, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", path, err, out)
	}
}

// The unit "ferry install" writes on Linux, rendered from a sample config:
// the restart policy and hardening, ReadWritePaths from the config, and
// systemd's own verdict on it.
func TestServiceSystemdUnit(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("a systemd unit holds Linux paths")
	}
	dir := testtmp.Dir(t)
	odd := filepath.Join(dir, "100% done", "archive") // a space and a specifier, escaped
	for _, d := range []string{"in", "state", odd} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "my config.toml")
	body := `
[journal]
path = "state/ferry.db"
[log]
file = "logs/ferry.log"
[target.nas]
type = "fs"
path = "` + filepath.ToSlash(odd) + `"
[target.local]
type = "fs"
path = "out"
[[watch]]
path = "in"
target = "nas"
`
	if err := os.WriteFile(cfgPath, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, testcfg.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := systemdUnit([]string{exe, "run", "--config", cfg.File()}, "ferry", WritablePaths(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + unit)
	if strings.Contains(unit, "{{") {
		t.Error("the unit holds a template action: kardianos would not write it verbatim")
	}
	lines := unitLines(unit)
	for _, want := range []string{
		"Type=simple",
		"ExecStart=" + exe + ` run --config "` + cfgPath + `"`,
		"User=ferry",
		"Restart=on-failure",
		"RestartSec=5",
		"RestartPreventExitStatus=2",
		"ExecReload=/bin/kill -HUP $MAINPID", // systemctl reload: a configuration reload
		"After=network-online.target local-fs.target remote-fs.target",
		"Wants=network-online.target",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ProtectHome=read-only",
		"PrivateTmp=yes",
		"TimeoutStopSec=20",
		"EnvironmentFile=-/etc/ferry/ferry.env",
		"ReadWritePaths=" + strings.Join([]string{
			`"` + strings.ReplaceAll(odd, "%", "%%") + `"`, // the fs target "nas"
			filepath.Join(dir, "logs"),                     // the log file's folder
			filepath.Join(dir, "out"),                      // the fs target "local"
			filepath.Join(dir, "state"),                    // the journal's folder
		}, " "),
		"WantedBy=multi-user.target",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("unit lacks the line %q", want)
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "RestartSec=") && l != "RestartSec=5" {
			t.Errorf("unit has %q", l)
		}
	}
	// Without --user: no User= line (root).
	rootUnit, err := systemdUnit([]string{exe, "run", "--config", cfg.File()}, "", WritablePaths(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rootUnit, "User=") {
		t.Errorf("unit without --user names a user:\n%s", rootUnit)
	}
	{
		p := filepath.Join(dir, "ferry.service")
		if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
		verifyUnit(t, p)
	}

	// What cannot be written into a unit is refused, not mangled.
	for _, tc := range []struct {
		exec     []string
		user     string
		writable []string
	}{
		{[]string{exe, "run", "--config", "/etc/ferry/a\nb.toml"}, "", nil},
		{[]string{exe}, "", []string{"/srv/{{Name}}"}},
		{[]string{exe}, "bad user", nil},
	} {
		if u, err := systemdUnit(tc.exec, tc.user, tc.writable); err == nil {
			t.Errorf("systemdUnit(%q, %q, %q) accepted:\n%s", tc.exec, tc.user, tc.writable, u)
		}
	}
}

// The static unit the packages ship carries the same restart policy and
// hardening as the one ferry install writes.
func TestServicePackagingUnit(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "packaging", "ferry.service"))
	if err != nil {
		t.Fatal(err)
	}
	lines := unitLines(string(data))
	for _, want := range []string{
		"ExecStart=/usr/bin/ferry run --config /etc/ferry/ferry.toml",
		"User=ferry",
		"Restart=on-failure",
		"RestartSec=5",
		"RestartPreventExitStatus=2",
		"ExecReload=/bin/kill -HUP $MAINPID", // systemctl reload: a configuration reload
		"After=network-online.target local-fs.target remote-fs.target",
		"Wants=network-online.target",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ReadWritePaths=/var/lib/ferry /var/log/ferry",
		"ProtectHome=read-only",
		"PrivateTmp=yes",
		"TimeoutStopSec=20",
		"EnvironmentFile=-/etc/ferry/ferry.env",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("packaging/ferry.service lacks the line %q", want)
		}
	}
	if runtime.GOOS != "linux" {
		return
	}
	// systemd-analyze wants ExecStart's binary to exist: point it at this
	// test binary, and verify the rest as it is.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ferry.service")
	if err := os.WriteFile(p, bytes.ReplaceAll(data, []byte("/usr/bin/ferry"), []byte(exe)), 0o644); err != nil {
		t.Fatal(err)
	}
	verifyUnit(t, p)
}

// program.Stop cancels body's context and waits for it, but never longer
// than its bound; a body that ends by itself is reported to onFatal.
func TestServiceProgramStop(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	t.Run("prompt", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := &program{parent: t.Context(), wait: StopWait, log: log,
				onFatal: func(int) { t.Error("onFatal called on a requested stop") },
				body: func(ctx context.Context, _ *slog.Logger) int {
					<-ctx.Done()
					return ExitOK
				}}
			p.Start(nil)
			start := time.Now()
			if err := p.Stop(nil); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took != 0 {
				t.Errorf("Stop took %v", took)
			}
			if c := p.exitCode(); c != ExitOK {
				t.Errorf("exit code %d", c)
			}
		})
	})
	t.Run("slow to notice", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := &program{parent: t.Context(), wait: StopWait, log: log,
				body: func(ctx context.Context, _ *slog.Logger) int {
					<-ctx.Done()
					time.Sleep(3 * time.Second) // finishing in-flight work
					return ExitOK
				}}
			p.Start(nil)
			time.Sleep(time.Minute) // runs a while
			start := time.Now()
			p.Stop(nil)
			if took := time.Since(start); took != 3*time.Second {
				t.Errorf("Stop took %v, want 3s (the body's own wind-down)", took)
			}
			if c := p.exitCode(); c != ExitOK {
				t.Errorf("exit code %d", c)
			}
		})
	})
	t.Run("ignores the stop", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			var sawCancel atomic.Bool
			p := &program{parent: t.Context(), wait: StopWait, log: log,
				body: func(ctx context.Context, _ *slog.Logger) int {
					go func() { <-ctx.Done(); sawCancel.Store(true) }()
					<-release
					return ExitOK
				}}
			p.Start(nil)
			start := time.Now()
			if err := p.Stop(nil); err != nil {
				t.Errorf("Stop after the bound: %v (a deliberate stop must not look like a failure)", err)
			}
			if took := time.Since(start); took != StopWait {
				t.Errorf("Stop took %v, want %v", took, StopWait)
			}
			synctest.Wait()
			if !sawCancel.Load() {
				t.Error("body's context was not cancelled")
			}
			if c := p.exitCode(); c != ExitFailed {
				t.Errorf("exit code %d while body still runs, want %d", c, ExitFailed)
			}
			close(release)
		})
	})
	t.Run("fails on its own", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fatal := make(chan int, 1)
			p := &program{parent: t.Context(), wait: StopWait, log: log,
				onFatal: func(code int) { fatal <- code },
				body: func(ctx context.Context, _ *slog.Logger) int {
					time.Sleep(42 * time.Second)
					return ExitFailed
				}}
			p.Start(nil)
			if code := <-fatal; code != ExitFailed {
				t.Errorf("onFatal(%d), want %d", code, ExitFailed)
			}
			<-p.done
			if c := p.exitCode(); c != ExitFailed {
				t.Errorf("exit code %d", c)
			}
		})
	})
}

// eventRecorder is a service.Logger that keeps what it is given, in place
// of the Windows Event Log.
type eventRecorder struct{ errors []string }

func (r *eventRecorder) Error(v ...any) error {
	r.errors = append(r.errors, fmt.Sprint(v...))
	return nil
}
func (r *eventRecorder) Warning(v ...any) error            { return nil }
func (r *eventRecorder) Info(v ...any) error               { return nil }
func (r *eventRecorder) Errorf(f string, a ...any) error   { return r.Error(fmt.Sprintf(f, a...)) }
func (r *eventRecorder) Warningf(f string, a ...any) error { return nil }
func (r *eventRecorder) Infof(f string, a ...any) error    { return nil }

// Errors logged while ferry runs as a service also reach the service
// manager's log, with their attributes; other levels stay in ferry's log.
func TestServiceEventHandler(t *testing.T) {
	var buf bytes.Buffer
	rec := &eventRecorder{}
	log := slog.New(&eventHandler{Handler: slog.NewJSONHandler(&buf, nil), events: rec}).With("target", "nas")
	log.Info("ferry started")
	log.Warn("slow")
	log.Error("cannot start", "error", "journal is corrupt")
	log.WithGroup("s3").Error("refused", "status", 403)
	if want := []string{"cannot start target=nas error=journal is corrupt", "refused target=nas s3.status=403"}; !slices.Equal(rec.errors, want) {
		t.Errorf("event log got %q, want %q", rec.errors, want)
	}
	if n := strings.Count(buf.String(), "\n"); n != 4 {
		t.Errorf("ferry's own log has %d lines, want 4:\n%s", n, buf.String())
	}
}

// An invalid configuration found inside the service body stops the
// service without a restart loop, and says why in the service manager's
// log; other failures still end the process for the recovery actions
// (issue 11, item 14).
func TestServiceInvalidConfigStopsWithoutRestart(t *testing.T) {
	for code, want := range map[int]AfterEnd{ExitUsage: EndStopped, ExitFailed: EndForRecovery, ExitOK: EndForRecovery} {
		if got := AfterBodyEnd(code); got != want {
			t.Errorf("AfterBodyEnd(%d) = %d, want %d", code, got, want)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		rec := &eventRecorder{}
		var buf bytes.Buffer
		events := slog.New(&eventHandler{Handler: slog.NewJSONHandler(&buf, nil), events: rec})
		fatal := make(chan int, 1)
		p := &program{parent: t.Context(), wait: StopWait, log: events,
			onFatal: func(code int) { fatal <- code },
			body: func(ctx context.Context, log *slog.Logger) int {
				log.Error("invalid configuration", "error", "ferry.toml:7: watch[1].settle: must be between 100ms and 168h0m0s (got 0)")
				return ExitUsage
			}}
		p.Start(nil)
		if code := <-fatal; code != ExitUsage {
			t.Errorf("onFatal(%d), want %d", code, ExitUsage)
		}
		if len(rec.errors) != 2 || !strings.Contains(rec.errors[0], "ferry.toml:7: watch[1].settle") || !strings.Contains(rec.errors[1], "stops without a restart") {
			t.Errorf("event log got %q", rec.errors)
		}
	})
	// A logger that body makes for itself (the configured log file) tees
	// its errors to the same event log.
	rec := &eventRecorder{}
	outer := slog.New(&eventHandler{Handler: slog.DiscardHandler, events: rec})
	var buf bytes.Buffer
	WithEvents(slog.New(slog.NewJSONHandler(&buf, nil)), outer).Error("journal is corrupt")
	if len(rec.errors) != 1 || !strings.Contains(buf.String(), "journal is corrupt") {
		t.Errorf("event log %q, file log %q", rec.errors, buf.String())
	}
	if l := slog.New(slog.DiscardHandler); WithEvents(l, l) != l {
		t.Error("WithEvents without an event log must return the inner logger")
	}
}
