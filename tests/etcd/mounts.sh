#!/bin/bash
# tests/etcd/mounts.sh - 3 read-write mounts of one etcd store, each a
# "host" on its own member (GRAPHFS_ETCD_FIRST=0/1/2), race over the
# sidecars of two writers SIGKILLed at commit failpoints (issue 13 req. 5):
#   A  a people load killed after linking its first table (armed): a roll back
#   B  a docs load killed after confirming: a roll forward
# The writers' leases (TTL 6 s) outlive them, so the mounts come up with the
# sidecars busy; when the leases expire, the mounts' lease watches fire and
# they sweep again (docs/multi-host.md §4): without `graphctl recover`, no
# sidecar is left, exactly one audit record per op (by a mount), every mount
# shows the same head as the store, fsck is clean.  Invariant 306.
. "$top_srcdir/tests/crash/crashlib.sh"
. "$top_srcdir/tests/etcd/cluster.sh"
: "${GRAPHFS:?}"
etcd_require
if ! command -v fusermount3 >/dev/null || ! [ -r /dev/fuse ] || ! [ -w /dev/fuse ]; then
	echo "SKIP: no usable FUSE (fusermount3, /dev/fuse)"
	exit 77
fi
MNTS=()
MOUNT_PIDS=""
mount_cleanup() {
	local p m
	for p in $MOUNT_PIDS; do wait "$p" 2>/dev/null || true; done
	for m in "${MNTS[@]}"; do
		timeout 20 fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
}
trap 'mount_cleanup; cleanup' EXIT

etcd_cluster_start 3 "$T/cluster" || { echo "FAIL - could not start the cluster"; exit 1; }
ok "3-member cluster on $ETCD_ENDPOINTS"
export GRAPHFS_MANIFEST=etcd GRAPHFS_TEST_ETCD_ENDPOINTS=$ETCD_ENDPOINTS
export GRAPHFS_LEASE_TTL=2

S=$T/s
new_store "$S"
gen_people 40 v2 >"$T/people.jsonl"
gen_docs 5 fwd >"$T/docs.jsonl"

# killed_writer DATA POINT: a load on member 0 with 6 s leases, parked at
# POINT, then SIGKILLed (its leases live on until their TTL).
killed_writer() {
	GRAPHFS_LEASE_TTL=6 GRAPHFS_ETCD_FIRST=0 GRAPHFS_FAILPOINTS="$2=park@1" bg gctl load "$S" --data "$1" -q 2>/dev/null
	local w=$! g
	g=$(fp_wait_reached "$2" 30) || { bad "writer never parked at $2"; return 1; }
	kill -KILL "$g"
	fp_release "$2"
	wait "$w" 2>/dev/null || true
}
killed_writer "$T/people.jsonl" commit/after_table
opa=$(pending_ids "$S")
killed_writer "$T/docs.jsonl" commit/before_publish
opb=$(pending_ids "$S" | grep -v "$opa")
[ -n "$opa" ] && [ -n "$opb" ] && ok "two dead writers' sidecars pending ($opa, $opb)" || bad "sidecars: $(pending_ids "$S" | tr '\n' ' ')"

for i in 0 1 2; do
	M=$T/m$i
	mkdir -p "$M"
	MNTS+=("$M")
	GRAPHFS_ETCD_FIRST=$i timeout -k 5 120 "$GRAPHFS" "$S" "$M" 2>"$M.err" &
	MOUNT_PIDS="$MOUNT_PIDS $!"
done
for p in $MOUNT_PIDS; do wait "$p" || bad "a mount's parent exited $?"; done
MOUNT_PIDS=""
for i in 0 1 2; do
	mountpoint -q "$T/m$i" && ok "mount $i (member $i) is up" || bad "mount $i not up: $(cat "$T/m$i.err")"
done
busy=$(cat "$T"/m?.err | grep -c "left to their owners" || true)
[ "$busy" -ge 1 ] && ok "$busy mount(s) came up with the sidecars still leased (busy)" || bad "no mount saw the sidecars busy: the watch path is untested"

left=$(( $(scaled 40) * 10 ))
while [ "$left" -gt 0 ] && [ "$(pending "$S")" != 0 ]; do sleep 0.1; left=$((left - 1)); done
[ "$(pending "$S")" = 0 ] && ok "the mounts resolved both sidecars once the leases expired (no 'graphctl recover')" || bad "sidecars left: $(pending_ids "$S" | tr '\n' ' ')"
[ "$(audits "$S" "$opa")" = 1 ] && [ "$(audit_decision "$S" "$opa")" = roll-back ] && ok "A: one audit record, roll-back" || bad "A: $(audits "$S" "$opa") x $(audit_decision "$S" "$opa")"
[ "$(audits "$S" "$opb")" = 1 ] && [ "$(audit_decision "$S" "$opb")" = roll-forward ] && ok "B: one audit record, roll-forward" || bad "B: $(audits "$S" "$opb") x $(audit_decision "$S" "$opb")"
gctl recover "$S" --list --json | python3 -c '
import json,sys
r=[a["resolver"] for a in json.load(sys.stdin)["audit"] if a["op_id"] in sys.argv[1:]]
assert len(r)==2 and all("graphfs mount" in x for x in r), r' "$opa" "$opb" && ok "both resolved by mounts" || bad "resolvers are not mounts"
h=$(head_version "$S")
for i in 0 1 2; do
	left=$(( $(scaled 20) * 10 ))
	while [ "$left" -gt 0 ] && [ "$(timeout 10 cat "$T/m$i/.graphfs/head" 2>/dev/null)" != "$h" ]; do sleep 0.1; left=$((left - 1)); done
	[ "$(timeout 10 cat "$T/m$i/.graphfs/head")" = "$h" ] && ok "mount $i shows head $h" || bad "mount $i head $(timeout 10 cat "$T/m$i/.graphfs/head")"
	[ "$(timeout 10 cat "$T/m$i/nodes/Doc.jsonl" | grep -c fwd)" = 5 ] && ok "mount $i shows B's docs" || bad "mount $i: B's docs missing"
done
gctl export "$S" --type Person | grep -q ' v2"' && bad "A's rows are visible" || ok "none of A's rows"
clean "$S" && ok "fsck clean, no sidecar" || bad "not clean: $(cat "$T/fsck.out")"
for i in 0 1 2; do timeout 20 fusermount3 -u "$T/m$i" && ok "mount $i unmounted" || bad "mount $i: unmount failed"; done
finish
