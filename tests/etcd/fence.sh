#!/bin/bash
# tests/etcd/fence.sh - leases and fencing in the real writer path on an
# etcd store (issue 13 req. 3, docs/multi-host.md §4): real `graphctl`
# processes, each "host" on its own member (GRAPHFS_ETCD_FIRST), a real
# 3-member cluster that this test starts and stops (tests/etcd/cluster.sh),
# lease TTL 2 s (GRAPHFS_LEASE_TTL).
#   stop     a loader parked at commit/after_table (sidecar armed, its table
#            version linked) is SIGSTOPped; `graphctl recover` on another
#            member waits for its leases to end (bounded by the TTL) and
#            rolls the op back; SIGCONT: the loader prints "lease lost",
#            exits 6, publishes nothing; one audit record; fsck clean; the
#            next writer of its tables succeeds without `graphctl recover`
#   heal     the same, but the next `graphctl load` (heal first) is the
#            recoverer, without `graphctl recover`
#   orphan   a loader stopped before it linked its version (after_sidecar):
#            recovered meanwhile (discard), resumed, it links a version no
#            live reservation owns: the next writer is not blocked by it
#   holder   the sidecar records the holder (lease name, host, pid), and
#            the lease keys exist under PREFIX/lease/<table>/x/ meanwhile
#   wait     a load waiting for a live, parked writer's leases says whom it
#            waits for (pid, host; GRAPHFS_LEASE_VERBOSE=1 stands for a
#            terminal) and publishes after it
# Invariants 300-304, 307 (docs/invariants.md).
. "$top_srcdir/tests/crash/crashlib.sh"
. "$top_srcdir/tests/etcd/cluster.sh"
etcd_require

etcd_cluster_start 3 "$T/cluster" || { echo "FAIL - could not start the cluster"; exit 1; }
ok "3-member cluster on $ETCD_ENDPOINTS"
export GRAPHFS_MANIFEST=etcd GRAPHFS_TEST_ETCD_ENDPOINTS=$ETCD_ENDPOINTS
export GRAPHFS_LEASE_TTL=2
TTL=2
ectl() { etcdctl --endpoints="$ETCD_ENDPOINTS" "$@"; }
# prefix_of STORE: the store's etcd prefix (FORMAT's manifest line).
prefix_of() { sed -n 's|^manifest etcd://[^/]*/||p' "$1/FORMAT"; }

BASE_DATA=$T/v2.jsonl
gen_people 40 v2 >"$BASE_DATA"

# stopped_loader STORE POINT: starts a load on member 0 parked at POINT,
# SIGSTOPs it, releases the park (it stays stopped) and sets WPID (the
# timeout(1) wrapper) and GPID (graphctl).
stopped_loader() {
	GRAPHFS_ETCD_FIRST=0 GRAPHFS_FAILPOINTS="$2=park@1" bg gctl load "$1" --data "$BASE_DATA" -q 2>"$T/werr"
	WPID=$!
	GPID=$(fp_wait_reached "$2" 30) || { bad "writer never parked at $2"; return 1; }
	kill -STOP "$GPID"
	fp_release "$2"
}

# ---- stop: recover on another member while the loader is stopped ----------
S=$T/s1
new_store "$S"
gctl export "$S" >"$T/old"
P=$(prefix_of "$S")
stopped_loader "$S" commit/after_table
op=$(pending_ids "$S")
[ -n "$op" ] && ok "stop: the stopped loader's sidecar is pending ($op)" || bad "stop: no sidecar"
keys=$(ectl get --prefix "$P/lease/node:Person/x/" --keys-only | grep -c . || true)
[ "$keys" = 1 ] && ok "stop: its exclusive lease key on Person exists" || bad "stop: $keys lease keys on Person"
gctl recover "$S" --list --json | python3 -c '
import json,sys
sc=json.load(sys.stdin)["pending"][0]
h=sc.get("holder") or {}
assert h.get("name") and h.get("host") and int(h.get("pid"))==int(sys.argv[1]), sc
' "$GPID" && ok "holder: the sidecar records the lease holder, host and pid $GPID" || bad "holder: sidecar lacks the holder"
t0=$SECONDS
GRAPHFS_ETCD_FIRST=1 gctl recover "$S" --json >"$T/sum" 2>"$T/rerr" && ok "stop: recover on member 1 exits 0 ($((SECONDS - t0)) s)" || bad "stop: recover failed: $(cat "$T/rerr")"
[ "$((SECONDS - t0))" -le $(( $(scaled 5) + TTL + 5 )) ] && ok "stop: recover waited no more than TTL + margin" || bad "stop: recover took $((SECONDS - t0)) s"
[ "$(summary rolled_back "$T/sum")" = 1 ] && ok "stop: the op is rolled back" || bad "stop: $(cat "$T/sum")"
kill -CONT "$GPID"
set +e; wait "$WPID"; st=$?; set -e
[ "$st" = 6 ] && ok "stop: the resumed loader exits 6" || bad "stop: resumed loader exited $st: $(cat "$T/werr")"
grep -q "lease lost" "$T/werr" && ok "stop: it says 'lease lost'" || bad "stop: stderr: $(cat "$T/werr")"
gctl export "$S" | cmp -s - "$T/old" && ok "stop: nothing of it is published" || bad "stop: the head changed"
[ "$(audits "$S" "$op")" = 1 ] && ok "stop: exactly one audit record" || bad "stop: $(audits "$S" "$op") audit records"
clean "$S" && ok "stop: fsck clean, no sidecar" || bad "stop: not clean"
GRAPHFS_ETCD_FIRST=2 gctl load "$S" --data "$BASE_DATA" -q 2>"$T/nerr" && ok "stop: the next writer succeeds" || bad "stop: next writer: $(cat "$T/nerr")"
[ "$(gctl export "$S" --type Person | grep -c '"v2"\| v2"')" = 40 ] && ok "stop: its rows are visible" || bad "stop: next writer's rows missing"
clean "$S" && ok "stop: clean after the next writer" || bad "stop: not clean after the next writer"

# ---- heal: the next writer is the recoverer ----------------------------------
S=$T/s2
new_store "$S"
gctl export "$S" >"$T/old2"
stopped_loader "$S" commit/after_table
op=$(pending_ids "$S")
gen_docs 3 heal >"$T/heal.jsonl"
gen_people 5 healer >>"$T/heal.jsonl"
t0=$SECONDS
GRAPHFS_ETCD_FIRST=1 gctl load "$S" --data "$T/heal.jsonl" -q 2>"$T/herr" && ok "heal: the next load on member 1 heals and publishes ($((SECONDS - t0)) s)" || bad "heal: next load failed: $(cat "$T/herr")"
[ "$(pending "$S")" = 0 ] && ok "heal: no sidecar left, no 'graphctl recover'" || bad "heal: sidecars left"
[ "$(audit_decision "$S" "$op")" = roll-back ] && [ "$(audits "$S" "$op")" = 1 ] && ok "heal: the stopped op is rolled back, one audit record" || bad "heal: audit $(audit_decision "$S" "$op") x $(audits "$S" "$op")"
kill -CONT "$GPID"
set +e; wait "$WPID"; st=$?; set -e
[ "$st" = 6 ] && grep -q "lease lost" "$T/werr" && ok "heal: the resumed loader exits 6, 'lease lost'" || bad "heal: resumed loader exited $st: $(cat "$T/werr")"
[ "$(gctl export "$S" --type Person | grep -c ' healer"')" = 5 ] && [ "$(gctl export "$S" --type Person | grep -c ' v2"')" = 0 ] &&
	ok "heal: the healer's rows are there, none of the fenced loader's" || bad "heal: wrong Person rows"
clean "$S" && ok "heal: fsck clean" || bad "heal: not clean"

# ---- orphan: a fenced writer links a version after its op was resolved ---------
S=$T/s3
new_store "$S"
stopped_loader "$S" commit/after_sidecar
op=$(pending_ids "$S")
GRAPHFS_ETCD_FIRST=2 gctl recover "$S" --json >"$T/sum" 2>"$T/rerr" && [ "$(summary discarded "$T/sum")" = 1 ] &&
	ok "orphan: recover discards the stopped op (nothing linked yet)" || bad "orphan: recover: $(cat "$T/sum" "$T/rerr")"
kill -CONT "$GPID"
set +e; wait "$WPID"; st=$?; set -e
[ "$st" = 6 ] && grep -q "lease lost" "$T/werr" && ok "orphan: the resumed loader exits 6, 'lease lost'" || bad "orphan: resumed loader exited $st: $(cat "$T/werr")"
n=$(find "$S/tables/node:Person" -maxdepth 1 -name '[0-9]*' | xargs -r -n1 basename | sort -n | tail -1)
[ "$n" = 3 ] && ok "orphan: the fenced loader linked Person version 3 after its op was discarded" || bad "orphan: highest Person version $n, wanted the leftover 3"
GRAPHFS_ETCD_FIRST=1 gctl load "$S" --data "$BASE_DATA" -q 2>"$T/nerr" && ok "orphan: the next writer is not blocked by the leftover (highest file $n)" || bad "orphan: next writer: $(cat "$T/nerr")"
[ "$(gctl export "$S" --type Person | grep -c ' v2"')" = 40 ] && ok "orphan: its rows are visible" || bad "orphan: rows missing"
gctl recover "$S" -q 2>"$T/rerr" && clean "$S" && ok "orphan: recover settles the leftover; fsck clean" || bad "orphan: not clean: $(cat "$T/rerr" "$T/fsck.out")"

# ---- wait: a writer waiting for a live holder says whom it waits for ---------
S=$T/s4
new_store "$S"
GRAPHFS_ETCD_FIRST=0 GRAPHFS_FAILPOINTS="commit/after_table=park@1" bg gctl load "$S" --data "$BASE_DATA" -q 2>"$T/aerr"
apid=$!
agpid=$(fp_wait_reached commit/after_table 30) || bad "wait: writer A never parked"
gen_people 3 waiter >"$T/waiter.jsonl"
GRAPHFS_LEASE_VERBOSE=1 GRAPHFS_ETCD_FIRST=1 bg gctl load "$S" --data "$T/waiter.jsonl" -q 2>"$T/berr"
bpid=$!
left=$(( $(scaled 30) * 10 ))
while [ "$left" -gt 0 ] && ! grep -q "waiting for table 'node:" "$T/berr"; do sleep 0.1; left=$((left - 1)); done
grep -q "waiting for table 'node:[A-Za-z]*' (exclusive), held by pid $agpid on host $(hostname)" "$T/berr" &&
	ok "wait: B says it waits for A (pid $agpid on $(hostname))" || bad "wait: B's stderr: $(cat "$T/berr")"
kill -0 "$bpid" 2>/dev/null && ok "wait: B is still waiting" || bad "wait: B did not wait"
# a waiting recover leaves a live holder's sidecar: busy after TTL + 5 s, naming it
t0=$SECONDS
GRAPHFS_ETCD_FIRST=2 gctl recover "$S" >"$T/rout" 2>&1 && grep -q "1 busy" "$T/rout" &&
	[ "$((SECONDS - t0))" -le $((TTL + 5 + $(scaled 5))) ] &&
	ok "wait: recover beside a live writer: busy after $((SECONDS - t0)) s (TTL + 5 s)" || bad "wait: recover: $(cat "$T/rout")"
grep -q "held by.*\"pid\":$agpid" "$T/rout" && ok "wait: recover names the holder (pid $agpid)" || bad "wait: recover's output: $(cat "$T/rout")"
[ "$(pending "$S")" = 1 ] && ok "wait: the live writer's sidecar is left" || bad "wait: recover touched a live writer's sidecar"
fp_release commit/after_table
wait "$apid" && ok "wait: A publishes" || bad "wait: A failed: $(cat "$T/aerr")"
wait "$bpid" && ok "wait: B publishes after A" || bad "wait: B failed: $(cat "$T/berr")"
[ "$(gctl export "$S" --type Person | grep -c ' waiter"')" = 3 ] && [ "$(gctl export "$S" --type Person | grep -c ' v2"')" = 37 ] &&
	ok "wait: both writers' rows are there" || bad "wait: rows: $(gctl export "$S" --type Person | grep -c ' waiter"') waiter, $(gctl export "$S" --type Person | grep -c ' v2"') v2"
clean "$S" && ok "wait: clean" || bad "wait: not clean"

finish
