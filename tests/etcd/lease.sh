#!/bin/bash
# tests/etcd/lease.sh - src/lease_etcd.c (table leases with fencing, graph-
# version holds) against a real 3-member etcd cluster that this test starts
# (tests/etcd/cluster.sh) on loopback ports picked at run time, and stops by
# pid whatever happens.  Leases have etcd's shortest TTL, 2 s.  The cases
# are in tests/etcd/etcd_lease.c ("hosts" are separate processes of it):
#   rangecmp  how etcd 3.4 evaluates a compare over a range (empty or not)
#   excl      EX excludes EX and SH across processes, SH shares, TRY gives
#             -EWOULDBLOCK and holds none of the set
#   waitrel   WAIT wakes on the holder's release (seen waiting, and seen
#             blocked by etcdctl, first)
#   waitkill  ... and when the holder is SIGKILLed, once its TTL ran out
#   fence     A holds t and is SIGSTOPped; its key expires; a sweep with A's
#             owner-gone compares commits; B takes t and commits; A resumes:
#             its Txn with its fence compares fails, it reports the lost
#             lease, and nothing of A's after the stop is in etcd
#   holds     graph-version holds against gc's fence, WAIT woken by unfence
#   revoked   the session's lease revoked by another client: lost at the
#             next keepalive, not a TTL later
#   member    member 0 (first endpoint, not the leader) SIGKILLed while a
#             lease is held: the keepalives go on elsewhere, the lease lives
#   quorum    two members SIGKILLed: the session reports the outage
# The whole script must stay under ~60 s (docs/testing.md, "etcd tests").
set -euo pipefail
: "${top_srcdir:?}" "${top_builddir:?}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/etcd/cluster.sh"

PROG=$top_builddir/tests/etcd/etcd_lease
etcd_require
[ -x "$PROG" ] || { echo "FAIL - $PROG not built (make check builds it)"; exit 1; }

T=$(etcd_tmpdir gfs-lease)
trap 'rm -rf "$T"' EXIT
fails=0
ok()  { echo "ok - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }

t_start=$SECONDS
# run CASE: one case of the C program under its own prefix, bounded.
run() {
	local t0=$SECONDS rc=0
	echo "# case $1"
	with_timeout 60 "$PROG" "$1" "etcd://$ETCD_ENDPOINTS/gfs-test/lease-$1" || rc=$?
	[ "$rc" = 0 ] && ok "case $1 ($((SECONDS - t0)) s)" || bad "case $1: exit $rc"
}

etcd_cluster_start 3 "$T/cluster" || { echo "FAIL - could not start the cluster"; exit 1; }
ok "3-member cluster up on $ETCD_ENDPOINTS in $((SECONDS - t_start)) s (pids $ETCD_PIDS)"

run rangecmp
run excl
run waitrel
run waitkill
run fence
run holds
run revoked

# member 0 is the sessions' first endpoint; it must not lead, or the
# election alone (1.3 s timeout) could outlast a 2 s TTL (docs/multi-host.md §4)
etcd_make_leader 1 && ok "member 1 leads" || bad "could not make member 1 the leader"
run member
etcd_member_kill 0 || true
etcd_member_start 0 && ok "member 0 restarted" || bad "member 0 did not come back"

run quorum   # SIGKILLs members 0 and 1: reap them
etcd_member_kill 0 || true
etcd_member_kill 1 || true

took=$((SECONDS - t_start))
[ "$took" -le $(( $(scaled 90) )) ] && ok "whole test in $took s" || bad "whole test took $took s"
[ "$fails" -eq 0 ] && echo "all passed" || { echo "$fails failure(s)"; exit 1; }
