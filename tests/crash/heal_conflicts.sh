#!/bin/bash
# heal_conflicts.sh - heal first waits only for writers whose lock sets
# conflict with the load's (EX against anything, SH against EX), DESIGN.md
# §3, docs/recovery.md "Heal first".  Real processes, ordered by parks.
#  1. Compatible lock sets run at the same time: a WorksAt load (EX
#     edge:WorksAt, SH node:Person, SH node:Company) parks mid-commit
#     holding its locks with its sidecar armed; a Knows load (EX edge:Knows,
#     SH node:Person) completes meanwhile; released, the first publishes.
#  2. A SIGSTOPped writer (WorksAt, confirmed, locks held) blocks exactly
#     the conflicting writers: a Person load (EX node:Person) waits on its
#     flock while a Knows load completes; SIGCONT: the stopped writer
#     publishes, then the Person load.
#  3. A dead writer's sidecar on a table the load only reads is healed
#     before the load validates: a Knows load whose edges need persons that
#     only the dead writer's load has fails validation after the roll back
#     (not confirmed), and passes after the roll forward (confirmed).
. "$top_srcdir/tests/crash/crashlib.sh"

SCHEMA=$T/hc.pg
cat >"$SCHEMA" <<'PG'
node Person { slug: String @key  name: String  n: I64? }
node Company { domain: String @key  name: String }
node Doc { title: String @key  body: String? }
edge WorksAt: Person -> Company { role: String? }
edge Knows: Person -> Person
PG
BASE=$T/base
new_store "$BASE"
gen_edges 50 v2 >"$T/works.jsonl"
printf '{"edge":"Knows","from":"p000001","to":"p000002","data":{"id":"k1"}}\n' >"$T/knows.jsonl"
printf '{"type":"Person","data":{"slug":"zz","name":"Late"}}\n' >"$T/person.jsonl"
printf '{"type":"Person","data":{"slug":"new1","name":"N1"}}\n{"type":"Person","data":{"slug":"new2","name":"N2"}}\n' >"$T/newp.jsonl"
printf '{"edge":"Knows","from":"new1","to":"new2","data":{"id":"k2"}}\n' >"$T/knows_new.jsonl"
# quick: a load that must not wait for anyone, bounded well below the
# parked writers' own TMO (so waiting for them fails here, not later).
quick() { with_timeout 20 "$GRAPHCTL" "$@"; }
kc() { gctl export "$1" --type Knows | grep -c '"Knows"' || true; }

# 1. two compatible loads at the same time
S=$T/s1; cp -a "$BASE" "$S"
v0=$(head_version "$S")
GRAPHFS_FAILPOINTS=commit/after_table=park@1 bg gctl load "$S" --data "$T/works.jsonl" -q
apid=$!
fp_wait_reached commit/after_table 30 >/dev/null || bad "1: WorksAt load never parked"
[ "$(pending "$S")" = 1 ] || bad "1: no armed sidecar for the parked load"
quick load "$S" --data "$T/knows.jsonl" -q && ok "1: a Knows load completes while a WorksAt load is parked mid-commit" ||
	bad "1: the Knows load did not complete beside a compatible writer"
[ "$(head_version "$S")" = $((v0 + 1)) ] && [ "$(pending "$S")" = 1 ] &&
	ok "1: it published alone and left the live sidecar alone" || bad "1: head $(head_version "$S"), pending $(pending "$S")"
fp_release commit/after_table
wait "$apid" && ok "1: released, the WorksAt load publishes" || bad "1: WorksAt load failed"
[ "$(kc "$S")" = 1 ] && gctl export "$S" --type WorksAt | grep -c 'r v2' | grep -qx 50 &&
	ok "1: both loads' rows are there" || bad "1: rows missing"
clean "$S" && ok "1: clean" || bad "1: not clean"

# 2. a SIGSTOPped writer blocks exactly the conflicting ones
S=$T/s2; cp -a "$BASE" "$S"
v0=$(head_version "$S")
GRAPHFS_FAILPOINTS=commit/after_confirm=park bg gctl load "$S" --data "$T/works.jsonl" -q
apid=$!
gpid=$(fp_wait_reached commit/after_confirm 30) || bad "2: WorksAt load never parked"
BG_PIDS="$BG_PIDS $gpid" # the EXIT trap continues and kills it on failure
kill -STOP "$gpid"
fp_release commit/after_confirm "$gpid"
# C conflicts (EX node:Person against the stopped writer's SH): park it at
# load/after_stage only to learn graphctl's pid, then watch it block.
GRAPHFS_FAILPOINTS=load/after_stage=park bg gctl load "$S" --data "$T/person.jsonl" -q
cpid=$!
cg=$(fp_wait_reached load/after_stage 30) || bad "2: Person load never started"
fp_release load/after_stage "$cg"
blocked_on_flock "$cg" 30 && ok "2: the conflicting Person load waits on the stopped writer's locks" ||
	bad "2: the Person load never blocked"
quick load "$S" --data "$T/knows.jsonl" -q && ok "2: a compatible Knows load completes beside the stopped writer" ||
	bad "2: the Knows load did not complete"
[ "$(head_version "$S")" = $((v0 + 1)) ] && ok "2: only the Knows load published meanwhile" || bad "2: head $(head_version "$S")"
kill -0 "$cg" 2>/dev/null && ok "2: the Person load is still waiting" || bad "2: the Person load did not wait"
kill -CONT "$gpid"
wait "$apid" && ok "2: SIGCONT: the stopped writer publishes" || bad "2: stopped writer failed"
wait "$cpid" && ok "2: then the Person load publishes" || bad "2: Person load failed"
[ "$(head_version "$S")" = $((v0 + 3)) ] && gctl export "$S" --type Person | grep '"zz"' >/dev/null &&
	gctl export "$S" --type WorksAt | grep -c 'r v2' | grep -qx 50 && ok "2: all three published" || bad "2: wrong final state"
clean "$S" && ok "2: clean" || bad "2: not clean"

# 3. a dead writer on a read table is healed before validation
for kind in back forward; do
	S=$T/s3$kind; cp -a "$BASE" "$S"
	fp=commit/after_table=exit@1 dec=roll-back
	[ "$kind" = forward ] && fp=commit/before_publish=exit dec=roll-forward
	set +e
	GRAPHFS_FAILPOINTS=$fp gctl load "$S" --data "$T/newp.jsonl" -q 2>/dev/null
	set -e
	op=$(pending_ids "$S")
	[ -n "$op" ] || bad "3 $kind: the dead writer left no sidecar"
	set +e
	gctl load "$S" --data "$T/knows_new.jsonl" -q 2>"$T/err"
	rc=$?
	set -e
	[ "$(audit_decision "$S" "$op")" = "$dec" ] && ok "3 $kind: the Knows load healed the dead Person writer ($dec)" ||
		bad "3 $kind: decision $(audit_decision "$S" "$op")"
	if [ "$kind" = back ]; then
		[ "$rc" != 0 ] && grep -q new1 "$T/err" && ok "3 back: validated against the rolled-back Person: endpoint missing" ||
			bad "3 back: rc=$rc $(cat "$T/err")"
		[ "$(kc "$S")" = 0 ] || bad "3 back: an edge to a rolled-back person was published"
	else
		[ "$rc" = 0 ] && [ "$(kc "$S")" = 1 ] && ok "3 forward: validated against the rolled-forward Person" ||
			bad "3 forward: rc=$rc $(cat "$T/err")"
	fi
	clean "$S" && ok "3 $kind: clean" || bad "3 $kind: not clean"
done
finish
