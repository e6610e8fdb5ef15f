#!/bin/sh
# Prints the version the deb and rpm packages carry, made from a
# `git describe --tags --always --dirty` string (the argument, or the
# repository's own when there is none). Both formats need a version that
# starts with a digit and has no "-":
#
#   v1.2.3                    1.2.3
#   v1.2.3-rc1                1.2.3~rc1              (~ sorts before 1.2.3)
#   v1.2.3-4-gabc1234         1.2.3+git4.gabc1234    (4 commits after the tag)
#   v1.2.3-4-gabc1234-dirty   1.2.3+git4.gabc1234.dirty
#   abc1234 (no tag yet)      0.0.0~gitabc1234
#   abc1234-dirty             0.0.0~gitabc1234.dirty
set -eu
d=${1-}
if [ -z "$d" ]; then
	d=$(git describe --tags --always --dirty)
fi
in=$d
dirty=
case $d in
*-dirty)
	dirty=dirty
	d=${d%-dirty}
	;;
esac
if printf '%s\n' "$d" | grep -Eq '^[0-9a-f]{7,40}$'; then
	v="0.0.0~git$d${dirty:+.$dirty}"
else
	tag=$d
	meta=
	m=$(printf '%s\n' "$d" | sed -nE 's/^(.+)-([0-9]+)-g([0-9a-f]+)$/\1 git\2.g\3/p')
	if [ -n "$m" ]; then
		tag=${m% *}
		meta=${m##* }
	fi
	meta=$meta${meta:+${dirty:+.}}$dirty
	tag=${tag#v}
	v=$(printf '%s' "$tag" | tr - '~')${meta:++$meta}
fi
if ! printf '%s\n' "$v" | grep -Eq '^[0-9][A-Za-z0-9.+~]*$'; then
	echo "pkgversion.sh: git describe gave \"$in\", which makes no package version (\"$v\"): release tags look like v1.2.3 or v1.2.3-rc1" >&2
	exit 1
fi
printf '%s\n' "$v"
