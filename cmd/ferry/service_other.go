//go:build !windows

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"

	"github.com/kardianos/service"

	"github.com/ferry-data/ferry/internal/config"
)

const (
	defaultServiceAccount = "root (read-only outside its own folders)"
	serviceEnvHint        = "the service reads credentials from /etc/ferry/ferry.env (KEY=VALUE lines, mode 0600)"
	serviceLogsHint       = "see: systemctl status ferry; journalctl -u ferry"
)

// eventLogWanted: on Linux, systemd's journal already holds ferry's stderr
// and exit status; there is no second log to feed.
const eventLogWanted = false

// exitAfterFatal needs to do nothing here: the service manager's Run
// returns when body ends (RunWait), and ferry exits with body's code.
var exitAfterFatal func(code int)

// serviceOptions are the kardianos options for Linux: ferry's own systemd
// unit.
func serviceOptions(cfg *config.Config, exec []string, user string) (service.KeyValue, error) {
	unit, err := systemdUnit(exec, user, writablePaths(cfg))
	if err != nil {
		return nil, err
	}
	return service.KeyValue{"SystemdScript": unit}, nil
}

// checkServicePlatform accepts systemd only: kardianos would otherwise
// fall back to a SysV script without ferry's restart policy and hardening.
func checkServicePlatform() error {
	if p := service.ChosenSystem(); p == nil || p.String() != "linux-systemd" {
		name := "none"
		if p != nil {
			name = p.String()
		}
		return fmt.Errorf("systemd is not running on this machine (service manager found: %s); ferry installs itself as a systemd service only. "+
			"Elsewhere, run \"ferry run --config FILE\" under your init system or supervisor (packaging/ferry.service shows the settings it needs)", name)
	}
	return nil
}

func checkPrivileged() error {
	if os.Geteuid() != 0 {
		return errors.New("managing the system service needs root")
	}
	return nil
}

func elevatedCommand(cmd string) string { return "sudo " + cmd }

// prepareServiceDirs creates the folders the service writes to when they
// do not exist yet (ProtectSystem=strict leaves it no way to create them
// itself), owned by the service's account.
func prepareServiceDirs(cfg *config.Config, account string) error {
	uid, gid := -1, -1
	if account != "" {
		u, err := user.Lookup(account)
		if err != nil {
			return fmt.Errorf("--user %s: %v (create the account first, e.g. useradd --system %s)", account, err, account)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	for _, p := range writablePaths(cfg) {
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

func afterInstall() error { return nil }

// ownUnit is where ferry install writes its unit (kardianos, system
// service).
const ownUnit = "/etc/systemd/system/ferry.service"

// packagedService explains, when ferry's installed unit is not the one
// "ferry install" writes (the .deb or .rpm ships its own under
// /usr/lib/systemd/system), that the package manages it.
func packagedService() string {
	if _, err := os.Stat(ownUnit); err == nil {
		return ""
	}
	return "its unit comes from a package, not from \"ferry install\" (there is no " + ownUnit + "): " +
		"configure /etc/ferry/ferry.toml and use systemctl, or remove the package"
}
