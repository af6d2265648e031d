#!/bin/bash
# both.sh - existing tests, written for LMDB stores, run again with every
# store's manifest on etcd: one 3-member cluster (tests/etcd/cluster.sh),
# GRAPHFS_MANIFEST=etcd, and each test's stores made by the helpers that
# call tests/lib.sh's manifest_opt (crashlib.sh's and lib_mount.sh's
# new_store), each on a prefix of its own.  The same sources run on LMDB in
# the ordinary suite.  Tests that copy a store directory (cp -a: the copy
# would share the manifest) or read STORE/manifest's files stay LMDB-only
# (docs/testing.md "etcd tests"), except crash_matrix.sh and recover_kill.sh,
# which copy with copy_store.
set -uo pipefail
: "${GRAPHCTL:?}" "${GRAPHFS:?}" "${top_srcdir:?}" "${top_builddir:?}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/etcd/cluster.sh"

etcd_require
if ! grep -q '^#define GFS_FAILPOINTS_ENABLED' "$top_builddir/config.h" 2>/dev/null; then
	echo "SKIP: not configured with --enable-failpoints (the crash tests need it)"
	exit 77
fi
# crash_matrix.sh and recover_kill.sh copy their base store with
# crashlib.sh's copy_store, which gives the copy a manifest prefix of its own.
TESTS_ON_ETCD="crash/gc_branches.sh crash/gc_mount.sh mount/branches.sh mount/live.sh mount/write_race.sh mount/write_crash.sh crash/crash_matrix.sh crash/recover_kill.sh"

T=$(etcd_tmpdir gfs-both)
trap 'rm -rf "$T"' EXIT
fails=0
ok()  { echo "ok - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }

etcd_cluster_start 3 "$T/cluster" || { echo "FAIL - could not start the cluster"; exit 1; }
# A crashed writer's leases live until their TTL and every recovery of its
# operation waits for that: etcd's shortest TTL keeps the crash tests short.
export GRAPHFS_MANIFEST=etcd GRAPHFS_TEST_ETCD_ENDPOINTS=$ETCD_ENDPOINTS GRAPHFS_LEASE_TTL=2
for t in $TESTS_ON_ETCD; do
	log=$T/$(basename "$t" .sh).log
	t0=$SECONDS
	with_timeout 400 bash "$top_srcdir/tests/$t" >"$log" 2>&1
	st=$?
	n=$(grep -c '^ok' "$log")
	# a test that made no store on etcd would prove nothing
	used=$(etcdctl --endpoints="$ETCD_ENDPOINTS" get --prefix t/ --keys-only 2>/dev/null | grep -c /dbs/meta)
	if [ "$st" = 0 ] && [ "$n" -gt 0 ] && [ "$used" -gt "${prev_used:-0}" ]; then
		ok "$t on etcd: $n checks ($((SECONDS - t0)) s, $((used - ${prev_used:-0})) store(s) on etcd)"
	else
		bad "$t on etcd: exit $st, $n ok, $((used - ${prev_used:-0})) store(s) on etcd"
		grep -E '^(FAIL|not ok)' "$log" | head -5
		tail -5 "$log"
	fi
	prev_used=$used
done
echo "# $fails failure(s)"
[ "$fails" = 0 ]
