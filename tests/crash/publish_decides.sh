#!/bin/bash
# publish_decides.sh - a recovery publish decides on what it classified, and
# a roll back that loses its publish leaves nothing that blocks the next
# writer (issue 8 req 5, docs/recovery.md).  The fence is removed
# (commit/skip_locks: an expired lease) so a sweep and the writer race.
#  A. The sidecar changes between classify and publish: a sweep classifies
#     a writer's operation unconfirmed (roll back) and parks; the writer
#     confirms and parks before its publish; the sweep writes its
#     compensation, its publish finds the sidecar changed (not only
#     present) and writes nothing; its next pass rolls the confirmed
#     operation forward.  The writer then finds it published: exit 0.
#  B. The writer wins: the sweep writes its compensation and parks before
#     its publish; the writer confirms and publishes; the sweep's publish
#     finds the sidecar gone.  The compensation left above the pin is
#     settled: fsck is clean, the next load writes above it, and
#     `graphctl recover` compensates no orphan.
#  C. Above that settled version, a load that dies before its confirm is
#     rolled back and one that dies after it rolled forward: the sidecar's
#     post_commit_pin (head+1, not pin+1) is what recovery classifies by.
. "$top_srcdir/tests/crash/crashlib.sh"

BASE=$T/base
new_store "$BASE"
exports_of "$BASE" "$T/old"
v0=$(head_version "$BASE")
cp "$T/old.$v0" "$T/old"
awk 'BEGIN { for (i = 0; i < 30; i++) printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%06d\",\"name\":\"P %d v2\",\"n\":%d}}\n", i, i, i }' >"$T/v2.jsonl"
cp -a "$BASE" "$T/ref"
gctl load "$T/ref" --data "$T/v2.jsonl" -q
gctl export "$T/ref" >"$T/new"
printf '{"type":"Person","data":{"slug":"next","name":"Next"}}\n' >"$T/next.jsonl"
NOFENCE=commit/skip_locks=error:EPERM

# after_race S OP: the checks both cases share
after_race() {
	local S=$1 op=$2 c=$3
	gctl export "$S" | cmp -s - "$T/new" && ok "$c: the confirmed operation is published" || bad "$c: not the new state"
	[ "$(head_version "$S")" = $((v0 + 1)) ] && ok "$c: the graph advanced once" || bad "$c: head $(head_version "$S")"
	clean "$S" && ok "$c: fsck clean (the lost compensation is settled, not an orphan)" || bad "$c: not clean: $(cat "$T/fsck.out")"
	same_exports "$S" "$T/old" "$v0" && ok "$c: earlier versions identical" || bad "$c: earlier versions changed"
	gctl load "$S" --data "$T/next.jsonl" -q 2>"$T/err" && ok "$c: the next writer of the table proceeds" || bad "$c: next load: $(cat "$T/err")"
	gctl recover "$S" --json >"$T/rsum" && [ "$(summary orphans_compensated "$T/rsum")" = 0 ] &&
		ok "$c: recover finds no orphan" || bad "$c: recover: $(cat "$T/rsum")"
	gctl export "$S" --type Person | grep '"next"' >/dev/null && clean "$S" && ok "$c: clean after the next load" || bad "$c: final state"
}

# A. changed between classify and publish
S=$T/a; cp -a "$BASE" "$S"
GRAPHFS_FAILPOINTS="$NOFENCE,commit/after_table=park@1,commit/before_publish=park" bg gctl load "$S" --data "$T/v2.jsonl" -q
wpid=$!
fp_wait_reached commit/after_table 30 >/dev/null || bad "A: writer never parked after its table"
op=$(pending_ids "$S")
GRAPHFS_FAILPOINTS="$NOFENCE,recover/after_classify=park@1" bg gctl recover "$S" --json >"$T/sum.a"
spid=$!
fp_wait_reached recover/after_classify 30 >/dev/null || bad "A: sweep never classified"
fp_release commit/after_table
fp_wait_reached commit/before_publish 30 >/dev/null || bad "A: writer never confirmed"
fp_release recover/after_classify
wait "$spid" && ok "A: the sweep exits 0" || bad "A: sweep failed: $(cat "$T/sum.a")"
[ "$(summary rolled_forward "$T/sum.a")" = 1 ] && [ "$(summary rolled_back "$T/sum.a")" = 0 ] &&
	ok "A: its roll back publish failed (sidecar changed); the next pass rolled forward" || bad "A: sweep: $(cat "$T/sum.a")"
fp_release commit/before_publish
wait "$wpid" && ok "A: the writer finds its operation published and succeeds" || bad "A: writer failed"
[ "$(audits "$S" "$op")" = 1 ] && [ "$(audit_decision "$S" "$op")" = roll-forward ] &&
	ok "A: one audit record, roll-forward" || bad "A: audits $(audits "$S" "$op") $(audit_decision "$S" "$op")"
after_race "$S" "$op" A

# B. the writer wins; the sweep's compensation is left behind
S=$T/b; cp -a "$BASE" "$S"
GRAPHFS_FAILPOINTS="$NOFENCE,commit/after_table=park@1" bg gctl load "$S" --data "$T/v2.jsonl" -q
wpid=$!
fp_wait_reached commit/after_table 30 >/dev/null || bad "B: writer never parked after its table"
op=$(pending_ids "$S")
GRAPHFS_FAILPOINTS="$NOFENCE,recover/before_audit=park" bg gctl recover "$S" --json >"$T/sum.b"
spid=$!
fp_wait_reached recover/before_audit 30 >/dev/null || bad "B: sweep never compensated"
fp_release commit/after_table
wait "$wpid" && ok "B: the writer confirms and publishes" || bad "B: writer failed"
fp_release recover/before_audit
wait "$spid" && [ "$(summary gone "$T/sum.b")" = 1 ] && ok "B: the sweep's publish finds the sidecar gone" ||
	bad "B: sweep: $(cat "$T/sum.b")"
[ "$(audits "$S" "$op")" = 0 ] && ok "B: no audit record (the writer published)" || bad "B: $(audits "$S" "$op") audits"
cp -a "$S" "$T/settled"
after_race "$S" "$op" B

# C. crashes of a writer above the settled version
gctl export "$T/settled" >"$T/mid"
cp -a "$T/settled" "$T/ref2"
gctl load "$T/ref2" --data "$T/next.jsonl" -q
gctl export "$T/ref2" >"$T/after"
for kind in back forward; do
	S=$T/c$kind; cp -a "$T/settled" "$S"
	fp=commit/after_table=exit@1 want=mid dec=roll-back
	[ "$kind" = forward ] && fp=commit/before_publish=exit want=after dec=roll-forward
	set +e
	GRAPHFS_FAILPOINTS=$fp gctl load "$S" --data "$T/next.jsonl" -q 2>/dev/null
	st=$?
	set -e
	[ "$st" = 86 ] || bad "C $kind: load exited $st"
	op=$(pending_ids "$S")
	gctl recover "$S" -q && ok "C $kind: recover" || bad "C $kind: recover failed"
	[ "$(audit_decision "$S" "$op")" = "$dec" ] && ok "C $kind: $dec" || bad "C $kind: decision $(audit_decision "$S" "$op")"
	gctl export "$S" | cmp -s - "$T/$want" && ok "C $kind: the $want state" || bad "C $kind: not the $want state"
	clean "$S" && ok "C $kind: clean" || bad "C $kind: not clean: $(cat "$T/fsck.out")"
done
finish
