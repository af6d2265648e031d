#!/bin/bash
# tests/etcd/gc_rounds.sh - gc on an etcd store removes any number of
# versions, in rounds that fit the cluster's --max-txn-ops (src/gc.c
# "Rounds", docs/multi-host.md §3.3; invariants 372-373).  A real 3-member
# cluster started with --max-txn-ops 64, so a round of 256 versions (the
# first cap) is refused and gc halves it until one fits:
#   rounds   120 one-row loads; `gc --keep-last 5` removes exactly what the
#            dry run (one plan, nothing committed) said, in several rounds,
#            one audit record each; the head exports as before; every kept
#            version exports, every removed one is gone; fsck clean; a
#            second gc finds nothing
#   crash    the same store copied; gc killed (failpoint exit) after the
#            commit point of its second round: recover rolls that round
#            forward; the next gc removes the rest: together exactly the
#            dry run's list
. "$top_srcdir/tests/crash/crashlib.sh"
. "$top_srcdir/tests/etcd/cluster.sh"
etcd_require

GFS_ETCD_MAX_TXN_OPS=64
etcd_cluster_start 3 "$T/cluster" || { echo "FAIL - could not start the cluster"; exit 1; }
ok "3-member cluster with --max-txn-ops 64 on $ETCD_ENDPOINTS"
export GRAPHFS_MANIFEST=etcd GRAPHFS_TEST_ETCD_ENDPOINTS=$ETCD_ENDPOINTS
export GRAPHFS_LEASE_TTL=2
N=120 KEEP=5

# jf FILE EXPR: a python expression over the JSON object j in FILE.
jf() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# gc_audits STORE: the number of audit records of kind gc.
gc_audits() {
	gctl recover "$1" --list --json |
		python3 -c 'import json,sys; print(sum(a.get("kind") == "gc" for a in json.load(sys.stdin)["audit"]))'
}

S=$T/s
new_store "$S"
for i in $(seq 1 $N); do
	printf '{"type":"Person","data":{"slug":"p001","name":"v%d","n":%d}}\n' "$i" "$i"
done | while read -r row; do printf '%s\n' "$row" | gctl load "$S" --data - -q; done
H=$(head_version "$S")
[ "$H" -gt $N ] && ok "rounds: $H graph versions" || bad "rounds: head $H after $N loads"
gctl export "$S" >"$T/head.before"
copy_store "$S" "$T/s2"

# ---- rounds ----------------------------------------------------------------
gctl gc "$S" --keep-last $KEEP --dry-run --json >"$T/dry.json" || bad "rounds: dry run failed"
want=$(jf "$T/dry.json" 'len(j["removed"])')
[ "$want" -ge $((H - KEEP - 1)) ] && ok "rounds: the dry run would remove $want versions" ||
	bad "rounds: the dry run would remove $want of $H"
gctl gc "$S" --keep-last $KEEP --json >"$T/gc.json" 2>"$T/gc.err" || bad "rounds: gc failed: $(cat "$T/gc.err")"
[ "$(jf "$T/gc.json" 'j["removed"]')" = "$(jf "$T/dry.json" 'j["removed"]')" ] &&
	ok "rounds: gc removed exactly the dry run's $want versions" ||
	bad "rounds: removed $(jf "$T/gc.json" 'j["removed"]') != $(jf "$T/dry.json" 'j["removed"]')"
[ "$(jf "$T/gc.json" 'j["files"]')" = "$(jf "$T/dry.json" 'j["files"]')" ] &&
	[ "$(jf "$T/gc.json" 'j["bytes_freed"]')" = "$(jf "$T/dry.json" 'j["bytes_freed"]')" ] &&
	ok "rounds: files and bytes as the dry run said" || bad "rounds: files/bytes differ from the dry run"
rounds=$(jf "$T/gc.json" 'j["rounds"]')
[ "$rounds" -ge 3 ] && ok "rounds: $rounds rounds (the cluster takes 64 operations a transaction)" ||
	bad "rounds: $rounds round(s)"
[ "$(gc_audits "$S")" = "$rounds" ] && ok "rounds: one gc audit record a round" ||
	bad "rounds: $(gc_audits "$S") gc audit records for $rounds rounds"
gctl export "$S" | cmp -s - "$T/head.before" && ok "rounds: the head exports as before" ||
	bad "rounds: the head changed"
gone=0 kept=0
for v in $(seq 1 "$H"); do
	if jf "$T/gc.json" "$v in j['removed']" | grep -q True; then
		gctl export "$S" --version "$v" >/dev/null 2>&1 && gone=$((gone + 1))
	else
		gctl export "$S" --version "$v" >/dev/null 2>&1 || kept=$((kept + 1))
	fi
done
[ "$gone" = 0 ] && [ "$kept" = 0 ] && ok "rounds: every removed version is gone, every kept one exports" ||
	bad "rounds: $gone removed versions still export, $kept kept ones do not"
clean "$S" && ok "rounds: fsck clean, no sidecar" || bad "rounds: not clean"
gctl gc "$S" --keep-last $KEEP --json >"$T/gc2.json" || bad "rounds: second gc failed"
[ "$(jf "$T/gc2.json" 'len(j["removed"]), j["rounds"]')" = "(0, 1)" ] &&
	ok "rounds: a second gc finds nothing" || bad "rounds: second gc: $(cat "$T/gc2.json")"

# ---- crash: killed after the commit point of round 2 -----------------------
S2=$T/s2
rc=0
GRAPHFS_FAILPOINTS=gc/after_commit=exit@2 gctl gc "$S2" --keep-last $KEEP --json >/dev/null 2>&1 || rc=$?
[ "$rc" = 86 ] && ok "crash: gc exited at gc/after_commit in its second round" || bad "crash: gc rc $rc"
op=$(pending_ids "$S2")
[ -n "$op" ] && ok "crash: its round's sidecar is pending" || bad "crash: no sidecar"
gctl recover "$S2" -q >/dev/null 2>"$T/rec.err" || bad "crash: recover failed: $(cat "$T/rec.err")"
[ "$(audit_decision "$S2" "$op")" = roll-forward ] && ok "crash: recover rolled the round forward" ||
	bad "crash: decision $(audit_decision "$S2" "$op")"
gctl gc "$S2" --keep-last $KEEP --json >"$T/gc3.json" || bad "crash: the next gc failed"
left=$(python3 - "$T/dry.json" "$T/gc3.json" "$H" <<'PY'
import json, sys
want = set(json.load(open(sys.argv[1]))["removed"])
now = set(json.load(open(sys.argv[2]))["removed"])
print(len(now), len(now - want))
PY
)
[ "${left#* }" = 0 ] && [ "${left% *}" -gt 0 ] && [ "${left% *}" -lt "$want" ] &&
	ok "crash: the next gc removed the rest (${left% *} versions), none outside the dry run's list" ||
	bad "crash: next gc: $left"
for v in $(jf "$T/dry.json" '" ".join(map(str, j["removed"]))'); do
	gctl export "$S2" --version "$v" >/dev/null 2>&1 && { bad "crash: version $v still exports"; break; }
done
gctl export "$S2" | cmp -s - "$T/head.before" && ok "crash: the head exports as before" ||
	bad "crash: the head changed"
clean "$S2" && ok "crash: fsck clean, no sidecar" || bad "crash: not clean"
finish
