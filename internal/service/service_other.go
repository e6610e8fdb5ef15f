//go:build !windows

package service

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"

	kardianos "github.com/kardianos/service"

	"github.com/ferry-data/ferry/internal/config"
)

// DefaultAccount is who the service runs as without --user; EnvHint where
// it reads the credentials the configuration names; LogsHint where to look
// when the service manager reports a failure.
const (
	DefaultAccount = "root (read-only outside its own folders)"
	EnvHint        = "the service reads credentials from /etc/ferry/ferry.env (KEY=VALUE lines, mode 0600)"
	LogsHint       = "see: systemctl status ferry; journalctl -u ferry"
)

// eventLogWanted: on Linux, systemd's journal already holds ferry's stderr
// and exit status; there is no second log to feed.
const eventLogWanted = false

// exitAfterFatal needs to do nothing here: the service manager's Run
// returns when body ends (RunWait), and ferry exits with body's code.
var exitAfterFatal func(code int)

// serviceOptions are the kardianos options for Linux: ferry's own systemd
// unit.
func serviceOptions(cfg *config.Config, exec []string, user string) (kardianos.KeyValue, error) {
	unit, err := systemdUnit(exec, user, WritablePaths(cfg))
	if err != nil {
		return nil, err
	}
	return kardianos.KeyValue{"SystemdScript": unit}, nil
}

// CheckPlatform accepts systemd only: kardianos would otherwise
// fall back to a SysV script without ferry's restart policy and hardening.
func CheckPlatform() error {
	if p := kardianos.ChosenSystem(); p == nil || p.String() != "linux-systemd" {
		name := "none"
		if p != nil {
			name = p.String()
		}
		return fmt.Errorf("systemd is not running on this machine (service manager found: %s); ferry installs itself as a systemd service only. "+
			"Elsewhere, run \"ferry run --config FILE\" under your init system or supervisor (packaging/ferry.service shows the settings it needs)", name)
	}
	return nil
}

func CheckPrivileged() error {
	if os.Geteuid() != 0 {
		return errors.New("managing the system service needs root")
	}
	return nil
}

func ElevatedCommand(cmd string) string { return "sudo " + cmd }

// PrepareDirs creates the folders the service writes to when they
// do not exist yet (ProtectSystem=strict leaves it no way to create them
// itself), owned by the service's account.
func PrepareDirs(cfg *config.Config, account string) error {
	uid, gid := -1, -1
	if account != "" {
		u, err := user.Lookup(account)
		if err != nil {
			return fmt.Errorf("--user %s: %v (create the account first, e.g. useradd --system %s)", account, err, account)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	for _, p := range WritablePaths(cfg) {
		if _, err := os.Stat(p); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.MkdirAll(p, 0o750); err != nil {
			return fmt.Errorf("creating %s: %w", p, err)
		}
		if uid >= 0 {
			if err := os.Chown(p, uid, gid); err != nil {
				return fmt.Errorf("giving %s to %s: %w", p, account, err)
			}
		}
	}
	return nil
}

func AfterInstall() error { return nil }

// ownUnit is where ferry install writes its unit (kardianos, system
// service).
const ownUnit = "/etc/systemd/system/ferry.service"

// PackagedService explains, when ferry's installed unit is not the one
// "ferry install" writes (the .deb or .rpm ships its own under
// /usr/lib/systemd/system), that the package manages it.
func PackagedService() string {
	if _, err := os.Stat(ownUnit); err == nil {
		return ""
	}
	return "its unit comes from a package, not from \"ferry install\" (there is no " + ownUnit + "): " +
		"configure /etc/ferry/ferry.toml and use systemctl, or remove the package"
}
