#!/bin/bash
# paused_writer.sh - live writers are left alone.
#  1. A writer parked mid-commit (holding its locks, sidecar armed): a
#     try-lock sweep (`recover --no-wait`, as a mount does) counts it busy and
#     leaves it; released, the writer publishes; no audit record.
#  2. The same with the writer SIGSTOPped after confirming; SIGCONT: publishes.
#  3. A waiting sweep (`graphctl recover`) started while the writer is parked
#     blocks on its locks; released, the writer publishes and the sweep finds
#     the sidecar gone: nothing written, no audit record.
#  4. A sweep parked between classify and publish holds the sidecar's locks:
#     another try-lock sweep comes up at once (busy), a load of another table
#     publishes inside the window, and on release the sweep publishes: one
#     audit record, the other table's version untouched.
. "$top_srcdir/tests/crash/crashlib.sh"

BASE=$T/base
new_store "$BASE"
gctl export "$BASE" >"$T/old"
gen_people 40 v2 >"$T/v2.jsonl"
cp -a "$BASE" "$T/ref"
gctl load "$T/ref" --data "$T/v2.jsonl" -q
gctl export "$T/ref" >"$T/new"

# 1. parked writer, try-lock sweep
S=$T/s1; cp -a "$BASE" "$S"
GRAPHFS_FAILPOINTS=commit/after_table=park@1 bg gctl load "$S" --data "$T/v2.jsonl" -q
wpid=$!
fp_wait_reached commit/after_table 30 >/dev/null || bad "writer never parked"
op=$(pending_ids "$S")
gctl recover "$S" --no-wait --json >"$T/sum" && ok "no-wait sweep exits 0 beside a live writer" || bad "no-wait sweep failed"
[ "$(summary busy "$T/sum")" = 1 ] && ok "the live writer's sidecar counts busy" || bad "busy = $(summary busy "$T/sum")"
[ "$(pending "$S")" = 1 ] && ok "its sidecar is left alone" || bad "the sweep touched a live writer's sidecar"
fp_release commit/after_table
wait "$wpid" && ok "released, the writer publishes" || bad "writer failed after release"
gctl export "$S" | cmp -s - "$T/new" && ok "its data is visible" || bad "writer's data missing"
clean "$S" && ok "clean" || bad "not clean"
[ "$(audits "$S" "$op")" = 0 ] && ok "no audit for an operation its writer finished" || bad "audit written for a live writer"

# 2. SIGSTOP after confirm
S=$T/s2; cp -a "$BASE" "$S"
GRAPHFS_FAILPOINTS=commit/after_confirm=park bg gctl load "$S" --data "$T/v2.jsonl" -q
wpid=$!
fp_wait_reached commit/after_confirm 30 >/dev/null || bad "writer never parked"
# the parked process is the timeout(1) child: stop the graphctl itself
gpid=$(fp_wait_reached commit/after_confirm 1)
kill -STOP "$gpid"
fp_release commit/after_confirm
gctl recover "$S" --no-wait --json >"$T/sum" || bad "no-wait sweep beside a stopped writer failed"
[ "$(summary busy "$T/sum")" = 1 ] && [ "$(pending "$S")" = 1 ] && ok "a stopped writer is left alone" || bad "stopped writer's sidecar touched"
kill -CONT "$gpid"
wait "$wpid" && ok "SIGCONT: the writer publishes" || bad "stopped writer failed"
gctl export "$S" | cmp -s - "$T/new" && clean "$S" && ok "new state, clean" || bad "after SIGCONT: wrong state"

# 3. a waiting sweep behind a parked writer
S=$T/s3; cp -a "$BASE" "$S"
GRAPHFS_FAILPOINTS=commit/after_table=park@1 bg gctl load "$S" --data "$T/v2.jsonl" -q
wpid=$!
gpid=$(fp_wait_reached commit/after_table 30) || bad "writer never parked"
op=$(pending_ids "$S")
bg "$GRAPHCTL" recover "$S" --json >"$T/sum"
spid=$!
blocked_on_flock "$spid" 30 && ok "the waiting sweep blocks on the writer's locks" || bad "sweep never blocked"
fp_release commit/after_table
wait "$wpid" && ok "writer publishes while a sweep waits" || bad "writer failed"
wait "$spid" && [ "$(summary gone "$T/sum")" = 1 ] && ok "the waiting sweep counts it gone" || bad "waiting sweep: $(cat "$T/sum")"
gctl export "$S" | cmp -s - "$T/new" && clean "$S" && ok "new state, clean" || bad "state after waiting sweep"
[ "$(audits "$S" "$op")" = 0 ] && ok "the sweep found it gone and wrote nothing" || bad "sweep audited a finished op"

# 4. a sweep parked holding the locks; a mount-like sweep and another table's load in the window
S=$T/s4; cp -a "$BASE" "$S"
set +e
GRAPHFS_FAILPOINTS=commit/after_table=exit@1 gctl load "$S" --data "$T/v2.jsonl" -q 2>/dev/null
set -e
op=$(pending_ids "$S")
GRAPHFS_FAILPOINTS=recover/before_audit=park bg gctl recover "$S" --json >"$T/sum"
spid=$!
fp_wait_reached recover/before_audit 30 >/dev/null || bad "sweep never parked"
gctl recover "$S" --no-wait --json >"$T/sum2" && [ "$(summary busy "$T/sum2")" = 1 ] &&
	ok "a second try-lock sweep comes up at once (busy)" || bad "second sweep: $(cat "$T/sum2")"
gen_docs 5 inwindow >"$T/docs.jsonl"
gctl load "$S" --data "$T/docs.jsonl" -q && ok "a load of another table publishes inside the window" || bad "load in window failed"
gctl export "$S" --type Doc >"$T/docs.out"
fp_release recover/before_audit
wait "$spid" && [ "$(summary rolled_back "$T/sum")" = 1 ] && ok "released, the sweep rolls back" || bad "parked sweep: $(cat "$T/sum")"
[ "$(audits "$S" "$op")" = 1 ] && ok "exactly one audit record" || bad "$(audits "$S" "$op") audit records"
gctl export "$S" --type Doc | cmp -s - "$T/docs.out" && ok "the other table's version is untouched" || bad "Doc changed"
gctl export "$S" --type Person | cmp -s - <(grep '"type":"Person"' "$T/old") && ok "Person rolled back" || bad "Person not rolled back"
clean "$S" && ok "clean" || bad "not clean"
finish
