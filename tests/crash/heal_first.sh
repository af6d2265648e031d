#!/bin/bash
# heal_first.sh - writers heal dead writers' sidecars on their tables first.
#  1. A load meets a dead writer's sidecar (not confirmed) on its table:
#     rolls it back (audited, resolver = the load), then writes.
#  2. The same with a confirmed one: rolled forward, then the load on top.
#  3. A writer dies between our heal and our locks (load/after_heal parks
#     us; the other writer parks after committing and is SIGKILLed): under
#     our locks we find its sidecar, let go, heal again, then write.
#  4. A dead writer's sidecar on other tables is left alone by a load of
#     an unrelated table (and `graphctl recover` later resolves it, leaving
#     that table's new version untouched: roll back after some tables
#     committed, with a foreign version committed meanwhile elsewhere).
. "$top_srcdir/tests/crash/crashlib.sh"

BASE=$T/base
new_store "$BASE"
gctl export "$BASE" >"$T/old"
gen_people 30 v2 >"$T/v2.jsonl"
printf '{"type":"Person","data":{"slug":"zz","name":"Healer"}}\n' >"$T/one.jsonl"
person_of() { gctl export "$1" ${2:+--version "$2"} --type Person; }

# 1 and 2
for kind in back forward; do
	S=$T/$kind; cp -a "$BASE" "$S"
	fp=commit/after_table=exit@1 dec=roll-back
	[ "$kind" = forward ] && fp=commit/before_publish=exit dec=roll-forward
	set +e
	GRAPHFS_FAILPOINTS=$fp gctl load "$S" --data "$T/v2.jsonl" -q 2>/dev/null
	set -e
	op=$(pending_ids "$S")
	gctl load "$S" --data "$T/one.jsonl" -q && ok "$kind: the next writer heals and loads" || bad "$kind: next load failed"
	[ "$(audit_decision "$S" "$op")" = "$dec" ] && ok "$kind: $dec audited" || bad "$kind: decision $(audit_decision "$S" "$op")"
	gctl recover "$S" --list | grep "$op" | grep -q "resolver graphctl" && ok "$kind: resolver recorded" || bad "$kind: no resolver"
	clean "$S" && ok "$kind: clean" || bad "$kind: not clean"
	person_of "$S" | grep -q '"zz"' && ok "$kind: the healer's row is there" || bad "$kind: healer row missing"
	if [ "$kind" = forward ]; then
		person_of "$S" | grep -c ' v2"' | grep -qx 30 && ok "forward: the dead writer's rows are kept" || bad "forward: rows lost"
	else
		person_of "$S" | grep -q ' v2"' && bad "back: rolled-back rows visible" || ok "back: nothing of the dead writer visible"
	fi
done

# 3. a writer dies between our heal and our locks
S=$T/between; cp -a "$BASE" "$S"
GRAPHFS_FAILPOINTS=load/after_heal=park@1 bg gctl load "$S" --data "$T/one.jsonl" -q
apid=$!
ag=$(fp_wait_reached load/after_heal 30) || bad "A never parked after healing"
GRAPHFS_FAILPOINTS=commit/after_table=park@1 bg gctl load "$S" --data "$T/v2.jsonl" -q
bpid=$!
bg_g=$(fp_wait_reached commit/after_table 30) || bad "B never parked"
op=$(pending_ids "$S")
fp_release load/after_heal        # A now waits for B's locks (or takes them after B dies)
kill -KILL "$bg_g"                # B dies holding them, its sidecar armed
wait "$bpid" 2>/dev/null || true  # (timeout(1) re-raises the KILL: the shell may say "Killed")
fp_release commit/after_table
wait "$apid" && ok "A healed the writer that died in between, then loaded" || bad "A failed"
[ "$(audit_decision "$S" "$op")" = roll-back ] && ok "B's operation rolled back once" || bad "B: $(audit_decision "$S" "$op")"
gctl recover "$S" --list | grep "$op" | grep -q "resolver graphctl pid $ag " && ok "A resolved it (under its locks, it let go and healed)" || bad "B resolved by someone else"
clean "$S" && ok "clean" || bad "not clean"
person_of "$S" | grep -q '"zz"' && ! person_of "$S" | grep -q ' v2"' && ok "A's row in, B's rows out" || bad "wrong rows after re-heal"

# 4. unrelated tables, and a roll back with a foreign version elsewhere
S=$T/other; cp -a "$BASE" "$S"
set +e
GRAPHFS_FAILPOINTS=commit/after_table=exit@1 gctl load "$S" --data "$T/v2.jsonl" -q 2>/dev/null
set -e
op=$(pending_ids "$S")
gen_docs 4 foreign >"$T/docs.jsonl"
gctl load "$S" --data "$T/docs.jsonl" -q && ok "a load of another table ignores the sidecar" || bad "Doc load failed"
[ "$(pending "$S")" = 1 ] && ok "the unrelated sidecar is left for recovery" || bad "Doc load touched the sidecar"
gctl export "$S" --type Doc >"$T/docs.out"
gctl recover "$S" -q || bad "recover failed"
gctl export "$S" --type Doc | cmp -s - "$T/docs.out" && ok "the foreign Doc version is untouched" || bad "Doc changed by the roll back"
person_of "$S" | cmp -s - <(grep '"type":"Person"' "$T/old") && ok "Person rolled back" || bad "Person not rolled back"
clean "$S" && ok "clean" || bad "not clean"
finish
