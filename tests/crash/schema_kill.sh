#!/bin/bash
# schema_kill.sh - a `graphctl schema apply` that rewrites a table
# (--default) and creates one (a new type), killed (failpoint action exit)
# at each of its own steps and every commit/* and table/* failpoint, at its
# 1st and 2nd hit; then `graphctl recover`, or the next writer healing
# first.  After each: fsck clean, no sidecar, the head has the old schema
# with the old rows (crash before the commit point) or the new schema with
# the rewritten rows (after it), never a mix; earlier versions export
# byte-identically; one audit record for an armed operation; and the apply
# run again reaches the same state as an uninterrupted one.
# Invariants 171-173 (docs/invariants.md).
. "$top_srcdir/tests/crash/crashlib.sh"

BASE=$T/base
new_store "$BASE"
exports_of "$BASE" "$T/old"
NEW=$T/new.pg
sed 's/n: I64?/n: I64?  level: I32/' "$SCHEMA" >"$NEW"
printf 'node Project { code: String @key }\n' >>"$NEW"
grep -q 'level: I32' "$NEW" || { bad "the new schema was not made"; finish; }
OPTS=(--default Person.level=1)
cp -a "$BASE" "$T/ref"
gctl schema apply "$T/ref" "$NEW" "${OPTS[@]}" -q
gctl export "$T/ref" >"$T/new.export"
cmp -s "$T/new.export" "$T/old.2" && { bad "the apply changed no row"; finish; }

POINTS="schema/after_heal schema/after_locks schema/after_file"
POINTS="$POINTS $(sed -n 's/.*X([A-Z_]*, "\(\(commit\|table\)\/[a-z_]*\)").*/\1/p' "$top_srcdir/src/failpoints.h" |
	grep -v '^commit/skip_locks$' | tr '\n' ' ')"

want_state() {
	case $1 in
	commit/after_confirm|commit/before_publish|commit/after_publish) echo new ;;
	*) echo old ;;
	esac
}
armed() {
	case $1 in schema/*|commit/after_publish) return 1 ;; *) return 0 ;; esac
}

run_case() { # run_case POINT N HEALER(recover|load)
	local p=$1 n=$2 how=$3 S=$T/s st op want got
	rm -rf "$S"
	cp -a "$BASE" "$S"
	rm -f "$T/fp.log"
	set +e
	GRAPHFS_FP_LOG=$T/fp.log GRAPHFS_FAILPOINTS="$p=exit@$n" gctl schema apply "$S" "$NEW" "${OPTS[@]}" -q >/dev/null 2>"$T/err"
	st=$?
	set -e
	if [ "$st" = 0 ]; then
		[ "$n" -gt 1 ] || bad "$p: never reached by the apply"
		return 1
	fi
	[ "$st" = 86 ] || { bad "$p@$n: apply exited $st, wanted 86: $(head -c 300 "$T/err")"; return 0; }
	fired "$p" "$T/fp.log" || { bad "$p@$n: exit 86 but '$p' did not fire"; return 0; }
	op=$(pending_ids "$S" | head -1)
	if armed "$p"; then [ -n "$op" ] || { bad "$p@$n: no sidecar left"; return 0; }
	else [ -z "$op" ] || { bad "$p@$n: a sidecar before arming"; return 0; }; fi
	if [ "$how" = recover ]; then
		gctl recover "$S" -q || { bad "$p@$n: recover failed"; return 0; }
	else
		# a load of a table the apply only read (SH) heals it first; a
		# roll forward moves the schema under the load, which says so
		# and is run again (as its message asks)
		printf '{"type":"Company","data":{"domain":"heal.example","name":"H"}}\n' >"$T/heal.jsonl"
		if ! gctl load "$S" --data "$T/heal.jsonl" -q >/dev/null 2>"$T/err"; then
			grep -q "the schema changed while the file was read" "$T/err" &&
				gctl load "$S" --data "$T/heal.jsonl" -q >/dev/null 2>"$T/err" ||
				{ bad "$p@$n: the healing load failed: $(head -c 300 "$T/err")"; return 0; }
		fi
		[ -z "$op" ] || [ "$(audits "$S" "$op")" = 1 ] || { bad "$p@$n (load): not one audit record for $op"; return 0; }
	fi
	clean "$S" || { bad "$p@$n ($how): fsck not clean or sidecar left"; return 0; }
	if [ "$p" = schema/after_file ]; then
		gctl fsck "$S" >"$T/fsck.out" 2>&1
		grep -q "named by no graph version" "$T/fsck.out" ||
			{ bad "$p@$n: fsck does not note the unpublished schema file: $(head -c 300 "$T/fsck.out")"; return 0; }
	fi
	same_exports "$S" "$T/old" 2 || { bad "$p@$n ($how): an earlier version changed"; return 0; }
	want=$(want_state "$p")
	if gctl schema "$S" | cmp -s - "$NEW"; then got=new; else got=old; fi
	[ "$got" = "$want" ] || { bad "$p@$n ($how): head schema is $got, wanted $want"; return 0; }
	if [ "$how" = recover ]; then
		if [ "$got" = new ]; then gctl export "$S" | cmp -s - "$T/new.export" || { bad "$p@$n: new schema but not the new rows"; return 0; }
		else gctl export "$S" | cmp -s - "$T/old.2" || { bad "$p@$n: old schema but not the old rows"; return 0; }; fi
		if [ -n "$op" ] && [ "$(audits "$S" "$op")" != 1 ]; then bad "$p@$n: not one audit record for $op"; return 0; fi
	fi
	if [ "$got" = old ]; then
		gctl schema apply "$S" "$NEW" "${OPTS[@]}" -q 2>"$T/err" ||
			{ bad "$p@$n ($how): the apply run again failed: $(head -c 300 "$T/err")"; return 0; }
		clean "$S" || { bad "$p@$n ($how): fsck after the second apply"; return 0; }
	fi
	if [ "$how" = recover ]; then
		gctl export "$S" | cmp -s - "$T/new.export" || { bad "$p@$n: the final rows differ from an uninterrupted apply"; return 0; }
	fi
	printf '{"type":"Project","data":{"code":"x"}}\n' >"$T/proj.jsonl"
	gctl load "$S" --data "$T/proj.jsonl" -q >/dev/null 2>"$T/err" ||
		{ bad "$p@$n ($how): a load into the new type failed: $(head -c 300 "$T/err")"; return 0; }
	clean "$S" || { bad "$p@$n ($how): fsck after a load into the new type"; return 0; }
	ok "$p@$n ($how): $got state, clean"
	return 0
}

# make stress (GRAPHFS_STRESS=1): every hit up to the 6th
HITS=${SCHEMA_KILL_HITS:-$([ -n "${GRAPHFS_STRESS:-}" ] && echo 6 || echo 2)}
for p in $POINTS; do
	for n in $(seq 1 "$HITS"); do
		run_case "$p" "$n" recover || break
	done
done
for p in commit/after_table table/after_link commit/after_confirm; do
	run_case "$p" 1 load || true
done

# blocked_tree PID: PID or one of its descendants (the shell function, then
# timeout(1), then graphctl) waits for a flock.  Bounded by blocked_on_flock.
blocked_tree() {
	local p kids all frontier left=$(( $(scaled 30) * 100 ))
	while [ "$left" -gt 0 ]; do
		all=$1 frontier=$1
		for _ in 1 2 3; do
			kids=""
			for p in $frontier; do kids="$kids $(pgrep -P "$p" || true)"; done
			all="$all $kids"
			frontier=$kids
		done
		for p in $all; do
			[ "$(cat /proc/"$p"/comm 2>/dev/null)" = graphctl ] && { blocked_on_flock "$p" 30; return; }
		done
		sleep 0.01 # polling for the process to exist, bounded; orders nothing
		left=$((left - 1))
	done
	return 1
}

# Two applies at once: the second waits for the first's locks (EX on every
# table, so they exclude each other), then plans again against the schema
# the first published.  A adds Project; B's file has Project and Note.
S=$T/two
rm -rf "$S"; cp -a "$BASE" "$S"
sed 's/n: I64?/n: I64?  level: I32/' "$SCHEMA" >"$T/b.pg"
printf 'node Project { code: String @key }\nnode Note { text: String @key }\n' >>"$T/b.pg"
GRAPHFS_FAILPOINTS=schema/after_locks=park bg gctl schema apply "$S" "$NEW" "${OPTS[@]}" -q
apid=$!
fp_wait_reached schema/after_locks 30 >/dev/null || bad "apply A never parked after its locks"
bg gctl schema apply "$S" "$T/b.pg" "${OPTS[@]}" -q
bpid=$!
blocked_tree "$bpid" && ok "two applies: B waits for A's table locks" || bad "two applies: B did not block on a lock"
fp_release schema/after_locks
wait "$apid" && ok "two applies: A published" || bad "two applies: A failed"
wait "$bpid" && ok "two applies: B published after planning again" || bad "two applies: B failed"
gctl schema "$S" | cmp -s - "$T/b.pg" && ok "two applies: the head has B's schema" || bad "two applies: the head is not B's schema"
[ "$(gctl log "$S" --json | grep -c '"op":"schema"')" = 2 ] && ok "two applies: two schema versions" || bad "two applies: not two schema versions"
clean "$S" && ok "two applies: clean" || bad "two applies: fsck or sidecar"

# A load holding its locks (parked after arming) delays the apply, whose
# check then sees the loaded rows: a row the new @range rejects is listed.
S=$T/race
rm -rf "$S"; cp -a "$BASE" "$S"
sed 's/n: I64?/n: I64?  @range(n, 0..1000)/' "$SCHEMA" >"$T/r.pg"
printf '{"type":"Person","data":{"slug":"big","name":"B","n":5000}}\n' >"$T/big.jsonl"
GRAPHFS_FAILPOINTS=commit/after_sidecar=park bg gctl load "$S" --data "$T/big.jsonl" -q
lpid=$!
fp_wait_reached commit/after_sidecar 30 >/dev/null || bad "the load never parked"
bg bash -c "'$GRAPHCTL' schema apply '$S' '$T/r.pg' --json >'$T/race.out' 2>'$T/race.err'"
rpid=$!
blocked_tree "$rpid" &&
	ok "load vs apply: the apply waits for the load's locks" || bad "load vs apply: the apply did not block"
fp_release commit/after_sidecar
wait "$lpid" && ok "load vs apply: the load published" || bad "load vs apply: the load failed"
set +e; wait "$rpid"; st=$?; set -e
[ "$st" = 1 ] && grep -q '"id":"big"' "$T/race.out" &&
	ok "load vs apply: the apply checked the loaded row and refused (exit 1)" ||
	bad "load vs apply: exit $st: $(head -c 300 "$T/race.out") $(head -c 300 "$T/race.err")"
clean "$S" && ok "load vs apply: clean" || bad "load vs apply: fsck or sidecar"
finish
