#!/bin/sh
# ferry preinstall (deb preinst, rpm %pre): the ferry system user and group,
# before the files they own are unpacked. Idempotent: an existing user or
# group is kept as it is.
set -e

if ! getent group ferry >/dev/null 2>&1; then
	groupadd --system ferry
fi
if ! getent passwd ferry >/dev/null 2>&1; then
	shell=/usr/sbin/nologin
	[ -x "$shell" ] || shell=/sbin/nologin
	[ -x "$shell" ] || shell=/bin/false
	useradd --system --gid ferry --no-create-home --home-dir /var/lib/ferry \
		--shell "$shell" --comment "ferry data mover" ferry
fi
exit 0
