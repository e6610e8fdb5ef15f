#!/usr/bin/env bash
# Makes this machine run Go's Windows test binaries under Wine (README.md):
# Debian's wine64 and the mingw-w64 C compiler, a Wine prefix, and the
# bcryptprimitives.dll shim built from this folder. Safe to run again.
set -euo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
export WINEPREFIX=${WINEPREFIX:-$HOME/.ferry-wine} WINEDEBUG=-all
if ! command -v wine >/dev/null 2>&1 || ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wine64 gcc-mingw-w64-x86-64 >/dev/null
fi
if [ ! -d "$WINEPREFIX/drive_c/windows/system32" ]; then
  wineboot --init >/dev/null 2>&1 || true
fi
sys32=$WINEPREFIX/drive_c/windows/system32
[ -d "$sys32" ] || { echo "wine prefix $WINEPREFIX has no system32 after wineboot" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
x86_64-w64-mingw32-gcc -shared -O2 -o "$tmp/bcryptprimitives.dll" \
  "$dir/bcryptprimitives.c" "$dir/bcryptprimitives.def"
install -m 0644 "$tmp/bcryptprimitives.dll" "$sys32/bcryptprimitives.dll"
echo "wine prefix ready: $WINEPREFIX"
