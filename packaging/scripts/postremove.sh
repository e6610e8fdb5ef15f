#!/bin/sh
# ferry postremove (deb postrm, rpm %postun). Arguments: deb "remove",
# "purge", "upgrade", ...; rpm the number of versions left.
#
# Purge (deb only) deletes the logs. It keeps /var/lib/ferry when it holds
# a journal: that is the record of what was uploaded, for audits, and the
# way to resume; delete it by hand when it is no longer needed. The ferry
# user is kept too (files elsewhere may still belong to it).
set -e

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi

if [ "${1-}" = purge ]; then
	rm -rf /var/log/ferry
	if [ -d /var/lib/ferry ]; then
		rmdir /var/lib/ferry 2>/dev/null ||
			echo "ferry: kept /var/lib/ferry: it holds the journal (what was uploaded, for audits). Delete it by hand when no longer needed." >&2
	fi
fi
exit 0
