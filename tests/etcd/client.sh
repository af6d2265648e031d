#!/bin/bash
# tests/etcd/client.sh - src/etcd.c (the v3 JSON gateway client) against a
# real 3-member etcd cluster that this test starts (tests/etcd/cluster.sh)
# on loopback ports picked at run time, and stops by pid whatever happens.
# The cases are in tests/etcd/etcd_client.c:
#   url       URL parsing and its errors (no cluster)
#   kv        binary-safe put/get, revisions, 1200 keys read in pages at one
#             revision (a put made mid-scan unseen), prefix delete
#   txn       a failed compare changes nothing; 3 keys in one revision;
#             --max-txn-ops 1024 honoured, 1025 refused with etcd's message
#   lease     revoke drops the key; a 2 s TTL without keepalive drops it
#             (polled, bounded); keepalive keeps another
#   watch     etcdctl's puts (another process) arrive in order; member 0,
#             the watch's endpoint, is SIGKILLed: the watch resumes on the
#             next member from the last revision + 1, nothing lost or twice
#   compact   get / watch of a compacted revision: -ESTALE, fatal callback
#   progress  an idle watch, told by progress notifications how far the
#             store got, resumes past a compaction when its member dies
#   failover  member 0 (first endpoint) down: every call goes to the next
#   down      every member down plus a silent endpoint: one clear error
#             naming all of them, within 2 rounds of the timeout
# The whole script must stay under ~60 s (docs/testing.md, "etcd tests").
set -euo pipefail
: "${top_srcdir:?}" "${top_builddir:?}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/etcd/cluster.sh"

CLIENT=$top_builddir/tests/etcd/etcd_client
etcd_require
[ -x "$CLIENT" ] || { echo "FAIL - $CLIENT not built (make check builds it)"; exit 1; }

T=$(etcd_tmpdir gfs-etcd)
trap 'rm -rf "$T"' EXIT
fails=0
ok()  { echo "ok - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }

t_start=$SECONDS
# run CASE [URL]: one case of the C program, bounded.
run() {
	local t0=$SECONDS rc=0
	echo "# case $1"
	with_timeout 60 "$CLIENT" "$@" || rc=$?
	[ "$rc" = 0 ] && ok "case $1 ($((SECONDS - t0)) s)" || bad "case $1: exit $rc"
}

run url
etcd_cluster_start 3 "$T/cluster" || { echo "FAIL - could not start the cluster"; exit 1; }
ok "3-member cluster up on $ETCD_ENDPOINTS in $((SECONDS - t_start)) s (pids $ETCD_PIDS)"
URL="etcd://$ETCD_ENDPOINTS/gfs-test/client"

run kv "$URL"
run txn "$URL"
run lease "$URL"
run compact "$URL"
# watch SIGKILLs member 0 itself (ETCD_PIDS), made the leader first so the
# survivors must elect one while the watch moves on: reap it, restart it
etcd_make_leader 0 && ok "member 0 leads" || bad "could not make member 0 the leader"
run watch "$URL"
etcd_member_kill 0 || true
etcd_member_start 0 && ok "member 0 restarted" || bad "member 0 did not come back"

etcd_make_leader 0 && ok "member 0 leads again" || bad "could not make member 0 the leader"
etcd_member_kill 0
run failover "$URL"
etcd_member_start 0 || bad "member 0 did not come back"

run progress "$URL"   # SIGKILLs member 0 (not the leader): reap it
etcd_member_kill 0 || true

etcd_cluster_stop keep
run down "$URL"

# The cluster of a failing test is stopped all the same: a child shell that
# starts a 1-member cluster and fails leaves no member and no directory.
bash -c '. "$top_srcdir/tests/lib.sh"; . "$top_srcdir/tests/etcd/cluster.sh"
	trap "rm -f \"$1/trap-ran\"" EXIT; : >"$1/trap-ran"
	etcd_cluster_start 1 "$1/c1" || exit 3
	echo "$ETCD_PIDS" >"$1/c1.pids"; false' _ "$T" && rc=0 || rc=$?
p1=$(cat "$T/c1.pids" 2>/dev/null || echo)
if [ "$rc" = 1 ] && [ -n "$p1" ] && ! kill -0 "$p1" 2>/dev/null && [ ! -e "$T/c1" ] && [ ! -e "$T/trap-ran" ]; then
	ok "a test failing with a live cluster: member $p1 stopped, its directory gone, the test's own trap ran too"
else
	bad "after a failing test: exit $rc, member '$p1' $(kill -0 "$p1" 2>/dev/null && echo alive || echo gone), dir $([ -e "$T/c1" ] && echo kept || echo gone), own trap $([ -e "$T/trap-ran" ] && echo skipped || echo ran)"
fi

took=$((SECONDS - t_start))
[ "$took" -le $(( $(scaled 90) )) ] && ok "whole test in $took s" || bad "whole test took $took s"
[ "$fails" -eq 0 ] && echo "all passed" || { echo "$fails failure(s)"; exit 1; }
