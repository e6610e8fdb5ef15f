//go:build windows

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	kardianos "github.com/kardianos/service"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/ferry-data/ferry/internal/config"
	"github.com/ferry-data/ferry/internal/service"
	"github.com/ferry-data/ferry/internal/testtmp"
)

// TestMain lets the service control manager start this test binary as
// ferry itself: "ferry.test.exe run --config FILE" is "ferry run".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "run" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
	}
	os.Exit(m.Run())
}

// ferry as a Windows service, through its own verbs: install (delayed
// automatic start, restart on failure, also on a failed start), start, a
// file uploaded while it runs as a service, stop within the bound, uninstall.
// The service control manager starts this test binary, which TestMain turns
// into "ferry run". Under Wine only the registration part runs (see below).
func TestServiceWindowsLifecycle(t *testing.T) {
	if !windows.GetCurrentProcessToken().IsElevated() {
		t.Skip("installing a service needs an administrator")
	}
	probe, err := service.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probe.Status(); !errors.Is(err, kardianos.ErrNotInstalled) {
		t.Skipf("a ferry service is already installed here (%v): not touching it", err)
	}
	dir := testtmp.Dir(t)
	for _, d := range []string{"in", "out"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "ferry.toml")
	logPath := filepath.Join(dir, "ferry.log")
	cfg := `
[journal]
path = "ferry.db"
[log]
file = "ferry.log"
[metrics]
listen = ""
[target.out]
type = "fs"
path = "out"
[[watch]]
path = "in"
target = "out"
settle = "200ms"
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ferry := func(args ...string) (int, string) {
		t.Helper()
		var out bytes.Buffer
		code := run(t.Context(), args, &out, &out, os.LookupEnv)
		t.Logf("ferry %s: exit %d\n%s", strings.Join(args, " "), code, out.String())
		return code, out.String()
	}
	if code, out := ferry("stop"); code != exitFailed || !strings.Contains(out, "not installed as a service (install it with: ferry install --config FILE)") {
		t.Errorf("stop before install: exit %d", code)
	}
	// Wine 8's service control manager refuses the delayed automatic start
	// and the recovery flag for non-crash failures (ERROR_INVALID_LEVEL),
	// so there the service is registered with kardianos directly, with the
	// same command line and the options Wine knows; the rest of the test is
	// the same.
	wine := runningUnderWine()
	if wine {
		loaded, err := config.Load(cfgPath, os.LookupEnv)
		if err != nil {
			t.Fatal(err)
		}
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		sc, err := service.InstallConfig(loaded, exe, "")
		if err != nil {
			t.Fatal(err)
		}
		delete(sc.Option, "DelayedAutoStart")
		s, err := service.New(sc)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Install(); err != nil {
			t.Fatal(err)
		}
	} else if code, _ := ferry("install", "--config", cfgPath); code != exitOK {
		t.Fatal("install failed")
	}
	t.Cleanup(func() {
		if code, _ := ferry("uninstall"); code != exitOK {
			t.Error("uninstall failed")
		}
		if _, err := probe.Status(); !errors.Is(err, kardianos.ErrNotInstalled) {
			t.Errorf("after uninstall, status: %v", err)
		}
	})
	if code, out := ferry("install", "--config", cfgPath); code != exitFailed || !strings.Contains(out, "already installed") {
		t.Errorf("a second install: exit %d", code)
	}

	// What the service control manager was told.
	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(service.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var startType uint32
	var cmdLine string
	if wine {
		// Wine cannot answer the delayed-start part of s.Config().
		buf := make([]uint64, 1024)
		qc := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&buf[0]))
		var need uint32
		if err := windows.QueryServiceConfig(s.Handle, qc, uint32(len(buf)*8), &need); err != nil {
			t.Fatal(err)
		}
		startType, cmdLine = qc.StartType, windows.UTF16PtrToString(qc.BinaryPathName)
	} else {
		c, err := s.Config()
		if err != nil {
			t.Fatal(err)
		}
		if !c.DelayedAutoStart {
			t.Error("not a delayed automatic start")
		}
		startType, cmdLine = c.StartType, c.BinaryPathName
	}
	if startType != mgr.StartAutomatic {
		t.Errorf("start type %d, want automatic", startType)
	}
	if !strings.Contains(cmdLine, `run --config `) || !strings.Contains(cmdLine, cfgPath) {
		t.Errorf("command line %q", cmdLine)
	}
	if wine {
		t.Log("Wine: recovery actions cannot be read back (ERROR_INVALID_LEVEL); not checked")
	} else {
		if acts, err := s.RecoveryActions(); err != nil {
			t.Errorf("recovery actions: %v", err)
		} else if len(acts) == 0 || acts[0].Type != mgr.ServiceRestart || acts[0].Delay != 5*time.Second {
			t.Errorf("recovery actions %+v, want a restart after 5s", acts)
		}
		if on, err := s.RecoveryActionsOnNonCrashFailures(); err != nil || !on {
			t.Errorf("recovery on non-crash failures: %v, %v", on, err)
		}
	}

	if wine {
		// Wine runs services in session 1, so svc.IsWindowsService (and
		// kardianos with it) takes the service for an interactive process
		// and never calls the service control dispatcher: the start times
		// out. Starting, running and stopping as a service is for Windows.
		t.Log("Wine: the service cannot be started (IsWindowsService is false in Wine's session 1); start, upload and stop not tested")
		return
	}
	if code, _ := ferry("start"); code != exitOK {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("start failed; the service's log:\n%s", log)
	}
	if err := os.WriteFile(filepath.Join(dir, "in", "a.dat"), []byte("from the service"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second) // a real process: polling with a deadline
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "out", "a.dat")); err == nil && string(b) == "from the service" {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("the service did not upload a.dat; its log:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	if code, _ := ferry("stop"); code != exitOK {
		t.Error("stop failed")
	}
	if took := time.Since(start); took > service.StopWait+5*time.Second {
		t.Errorf("stop took %v", took)
	}
	if st, err := s.Query(); err != nil || st.State != windows.SERVICE_STOPPED {
		t.Errorf("after stop: state %d, %v", st.State, err)
	}
	log, _ := os.ReadFile(logPath)
	if !bytes.Contains(log, []byte(`"msg":"ferry stopped"`)) {
		t.Errorf("the service's log lacks its stop:\n%s", log)
	}
}

// runningUnderWine reports whether this Windows binary runs under Wine,
// whose registry has a Software\Wine key.
func runningUnderWine() bool {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `Software\Wine`, registry.QUERY_VALUE)
	if err != nil {
		return false
	}
	k.Close()
	return true
}
