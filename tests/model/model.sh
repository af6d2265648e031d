#!/bin/bash
# model.sh - the reference-model test (issue 12, requirement 3;
# docs/testing.md "Random histories against a model").
#
# Runs tests/model/model.py: random sequences of loads (merge, append,
# overwrite), writes through a graphfs mount (cp, rm, mv, ln -s, rm of an
# edge), branch create/delete, merge (with and without --prefer), schema
# apply, compact, gc, writers killed at a failpoint or by SIGKILL, recovery
# by `graphctl recover` or by a mount, and remounts - each step checked
# against an in-memory model (every version's export, every versions/N
# directory's names and bytes, the live view, the log and the branches).
#
#   make check: a time box of GRAPHFS_MODEL_SECONDS (default 180 s, scaled
#               by nothing: it is a budget, not a timeout)
#   make stress (GRAPHFS_STRESS=1): GRAPHFS_MODEL_SEQUENCES (default 10000)
#   seed: GRAPHFS_MODEL_SEED (default: from the clock, printed)
# A divergence prints the seed, the shrunk op list and the replay command.
set -uo pipefail
: "${GRAPHCTL:?}" "${GRAPHFS:?}" "${top_srcdir:?}" "${top_builddir:?}"
. "$top_srcdir/tests/lib.sh"

if ! grep -q '^#define GFS_FAILPOINTS_ENABLED' "$top_builddir/config.h" 2>/dev/null; then
	echo "SKIP: not configured with --enable-failpoints (the model kills writers at failpoints)"
	exit 77
fi
if [ ! -w /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "SKIP: no usable /dev/fuse or fusermount3"
	exit 77
fi

W=$(mktemp -d /tmp/gfs-modelrun.XXXXXX)
# model.py unmounts everything it mounted (also on errors); this is the
# last resort for a killed interpreter: no mount is ever left behind.
cleanup() {
	local m
	for m in "$W"/gfs-model.*/mnt; do
		[ -d "$m" ] || continue
		if mountpoint -q "$m" 2>/dev/null || grep -qF " $m " /proc/self/mountinfo; then
			timeout 20 fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		fi
	done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

args=(--workdir "$W")
[ -n "${GRAPHFS_MODEL_SEED:-}" ] && args+=(--seed "$GRAPHFS_MODEL_SEED")
if [ "${GRAPHFS_STRESS:-0}" = 1 ]; then
	args+=(--sequences "${GRAPHFS_MODEL_SEQUENCES:-10000}")
else
	args+=(--seconds "${GRAPHFS_MODEL_SECONDS:-180}")
fi
python3 "$top_srcdir/tests/model/model.py" "${args[@]}"
