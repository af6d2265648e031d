# tests/etcd/etcdlib.sh - the common start of the etcd tests that run their
# own graphctl processes and mounts against a cluster they start (bash):
#
#   . "$top_srcdir/tests/etcd/etcdlib.sh"
#   etcd_test gfs-NAME [fuse] [failpoints]
#   etcd_cluster_start 3 "$T/cluster" || ...
#
# Sources tests/lib.sh and tests/etcd/cluster.sh.  etcd_test skips the test
# (exit 77) without etcd, without FUSE ("fuse") or in a build without
# failpoints ("failpoints"); makes T, a temporary directory (mode 755: a
# mount's daemon and its users reach it) and, with "failpoints",
# GRAPHFS_FP_DIR=$T/fp; unsets the knobs a caller's environment could leak
# in; sets fails=0 and BG="" (pids the cleanup kills); and installs the
# EXIT trap, before the cluster's (which runs it after stopping etcd):
# parked processes released, the test's own on_cleanup run if it defines
# one, every mount under T unmounted (deepest first), the pids in BG
# killed, T removed.  So no test leaves a mount behind, even when it fails.
#
# ok/bad print a check's result with the seconds since the test began; bad
# counts failures.  gctl is graphctl bounded by a 60 s (scaled) timeout;
# js EXPR prints a python expression over the JSON object j read from
# stdin; row SLUG NAME prints a Person load line; stat_is MNT EXPR VALUE
# compares a .graphfs/stats value (stat_of, tests/lib.sh).
set -uo pipefail
: "${top_srcdir:?}" "${top_builddir:?}" "${GRAPHCTL:?}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/etcd/cluster.sh"

ok()  { echo "ok - $* ($SECONDS s)"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
gctl() { with_timeout 60 "$GRAPHCTL" "$@"; }
js() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
row() { printf '{"type":"Person","data":{"slug":"%s","name":"%s"}}\n' "$1" "$2"; }
stat_is() { [ "$(stat_of "$1" "$2")" = "$3" ]; }

etcd_test() {
	local name=$1 want fp=""
	shift
	etcd_require
	for want in "$@"; do
		case $want in
		fuse)
			if ! command -v fusermount3 >/dev/null || [ ! -e /dev/fuse ]; then
				echo "SKIP: no FUSE"
				exit 77
			fi ;;
		failpoints)
			if ! grep -q '^#define GFS_FAILPOINTS_ENABLED' "$top_builddir/config.h" 2>/dev/null; then
				echo "SKIP: not configured with --enable-failpoints"
				exit 77
			fi
			fp=1 ;;
		*) echo "etcd_test: unknown requirement '$want'" >&2; exit 99 ;;
		esac
	done
	T=$(etcd_tmpdir "$name")
	chmod 755 "$T"
	fails=0
	BG=""
	unset GRAPHFS_FAILPOINTS GRAPHFS_MANIFEST GRAPHFS_ETCD_FIRST GRAPHFS_NO_SHARED_HEAD
	if [ -n "$fp" ]; then
		GRAPHFS_FP_DIR=$T/fp
		mkdir -p "$GRAPHFS_FP_DIR"
		export GRAPHFS_FP_DIR
	fi
	trap _etcd_test_cleanup EXIT
}

_etcd_test_cleanup() {
	local m p
	if [ -n "${GRAPHFS_FP_DIR:-}" ]; then
		rm -f "$GRAPHFS_FP_DIR"/*.reached "$GRAPHFS_FP_DIR"/*.arm 2>/dev/null
	fi
	if declare -F on_cleanup >/dev/null; then on_cleanup; fi
	for m in $(awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		timeout 20 fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	for p in $BG; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$T"
}
