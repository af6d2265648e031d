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

HITS=${SCHEMA_KILL_HITS:-2}
for p in $POINTS; do
	for n in $(seq 1 "$HITS"); do
		run_case "$p" "$n" recover || break
	done
done
for p in commit/after_table table/after_link commit/after_confirm; do
	run_case "$p" 1 load || true
done
finish
