#!/bin/sh
# ferry postinstall (deb postinst, rpm %post). Arguments: deb "configure"
# [OLD-VERSION] (OLD-VERSION on an upgrade); rpm the number of installed
# versions (1 install, 2 upgrade).
#
# It makes sure the ferry user owns its folders, tells systemd about the
# unit (only when systemd runs: not in a container or a chroot), and after
# an upgrade restarts a running ferry. A fresh install does not start the
# service: /etc/ferry/ferry.toml names example folders to edit first.
set -e

upgrade=
case ${1-} in
configure) [ -z "${2-}" ] || upgrade=1 ;;
*) [ "${1-0}" -ge 2 ] 2>/dev/null && upgrade=1 ;;
esac

if ! getent passwd ferry >/dev/null 2>&1; then
	echo "ferry: the ferry user is missing (the preinstall script creates it)" >&2
	exit 1
fi
chown ferry:ferry /var/lib/ferry /var/log/ferry
# setgid: a journal made there is 0640 for the ferry group (README).
chmod 2750 /var/lib/ferry
chmod 0750 /var/log/ferry

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
	if [ -n "$upgrade" ]; then
		systemctl try-restart ferry.service || true
	fi
fi

if [ -z "$upgrade" ]; then
	cat <<'MSG'
ferry is installed. Next:
  1. edit /etc/ferry/ferry.toml: the watched folder(s) and the target
  2. ferry config check --config /etc/ferry/ferry.toml
  3. systemctl enable --now ferry
MSG
fi
exit 0
