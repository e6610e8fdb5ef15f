#!/bin/sh
# ferry preremove (deb prerm, rpm %preun). Arguments: deb "remove" or
# "upgrade NEW-VERSION"; rpm the number of versions left (0 on erase).
# On removal it stops a running ferry (in-flight files stay queued in the
# journal) and disables the unit; an upgrade leaves it running, and the new
# version's postinstall restarts it.
set -e

case ${1-} in
remove | 0) ;;
*) exit 0 ;;
esac

if command -v systemctl >/dev/null 2>&1; then
	if [ -d /run/systemd/system ] && systemctl is-active --quiet ferry.service; then
		systemctl stop ferry.service || true
	fi
	systemctl --no-reload disable ferry.service >/dev/null 2>&1 || true
fi
exit 0
