//go:build windows

package service

import (
	"errors"
	"fmt"
	"os"

	kardianos "github.com/kardianos/service"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/ferry-data/ferry/internal/config"
)

// DefaultAccount is who the service runs as without --user; EnvHint where
// it reads the credentials the configuration names; LogsHint where to look
// when the service manager reports a failure.
const (
	DefaultAccount = "LocalSystem"
	EnvHint        = `set it for the service in the registry: HKLM\SYSTEM\CurrentControlSet\Services\ferry, multi-string value "Environment" (NAME=VALUE lines)`
	LogsHint       = "see: the Windows Event Log (Application, source ferry) and ferry's log file"
)

// eventLogWanted: a Windows service has no console; its start, stop and
// fatal errors go to the Event Log too.
const eventLogWanted = true

// exitAfterFatal ends the process when ferry stops on its own: the service
// control manager sees it die without reporting STOPPED and runs the
// recovery actions (restart). kardianos offers no way to report a stop
// from inside the kardianos.
var exitAfterFatal = func(code int) {
	if AfterBodyEnd(code) == EndStopped {
		// Ask the service control manager to stop us: Stop runs, Run
		// returns, and the service reports STOPPED with exit code 0,
		// which the recovery actions do not answer (no loop every 5 s).
		if err := requestStop(); err == nil {
			return
		}
	}
	if code == ExitOK {
		code = ExitFailed // ended although nobody stopped it: still a failure for recovery
	}
	os.Exit(code)
}

// Recovery: restart 5 s after every failure; the failure count resets
// after a day without one.
const (
	recoveryDelay       = "5s"
	recoveryResetPeriod = 24 * 60 * 60 // seconds
)

// serviceOptions are the kardianos options for Windows: automatic start
// once the boot has settled, and restart on failure.
func serviceOptions(cfg *config.Config, exec []string, user string) (kardianos.KeyValue, error) {
	return kardianos.KeyValue{
		"StartType":              "automatic",
		"DelayedAutoStart":       true,
		"OnFailure":              "restart",
		"OnFailureDelayDuration": recoveryDelay,
		"OnFailureResetPeriod":   recoveryResetPeriod,
	}, nil
}

func CheckPlatform() error { return nil }

func CheckPrivileged() error {
	if !windows.GetCurrentProcessToken().IsElevated() {
		return errors.New("managing the service needs an administrator")
	}
	return nil
}

func ElevatedCommand(cmd string) string {
	return "an elevated prompt (Run as administrator), then: " + cmd
}

// PackagedService: on Windows, only "ferry install" registers the kardianos.
func PackagedService() string { return "" }

func PrepareDirs(cfg *config.Config, account string) error { return nil }

// AfterInstall makes the recovery actions fire on a failed start as well
// (the process reports STOPPED with an error), not only on a crash.
func AfterInstall() error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("cannot reach the service control manager to set recovery on failed starts: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(Name)
	if err != nil {
		return fmt.Errorf("cannot open the service to set recovery on failed starts: %w", err)
	}
	defer s.Close()
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		return fmt.Errorf("cannot set recovery on failed starts: %w", err)
	}
	return nil
}

// requestStop asks the service control manager to stop this service, with
// the least rights that do it (connect; stop).
func requestStop() error {
	m, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT)
	if err != nil {
		return err
	}
	defer windows.CloseServiceHandle(m)
	name, err := windows.UTF16PtrFromString(Name)
	if err != nil {
		return err
	}
	h, err := windows.OpenService(m, name, windows.SERVICE_STOP)
	if err != nil {
		return err
	}
	defer windows.CloseServiceHandle(h)
	var st windows.SERVICE_STATUS
	return windows.ControlService(h, windows.SERVICE_CONTROL_STOP, &st)
}
