#!/bin/bash
# crash_matrix.sh - a `graphctl load` killed (failpoint action exit) at every
# commit/* and table/* failpoint of the catalog, at its 1st, 2nd, ... hit,
# then `graphctl recover`: the head is the old state (crash before the
# commit point) or the new one (after it), never a mix; fsck is clean; no
# sidecar is left; every earlier version exports byte-identically; exactly
# one audit record for the crashed operation.  A second pass lets the next
# writer heal instead of `graphctl recover` (heal first).
. "$top_srcdir/tests/crash/crashlib.sh"

BASE=$T/base
new_store "$BASE"
exports_of "$BASE" "$T/old"
cp "$T/old.2" "$T/old"
# The load under test writes two node tables and one edge table.
gen_people 50 v2 >"$T/v2.jsonl"
gen_edges 50 v2 >>"$T/v2.jsonl"
copy_store "$BASE" "$T/ref"
gctl load "$T/ref" --data "$T/v2.jsonl" -q
gctl export "$T/ref" >"$T/new"

# Every commit/* and table/* name in the catalog, except the lease switch,
# plus the writer's own steps before arming (nothing to recover there).
POINTS=$(sed -n 's/.*X([A-Z_]*, "\(\(commit\|table\)\/[a-z_]*\)").*/\1/p' "$top_srcdir/src/failpoints.h" |
	grep -v '^commit/skip_locks$')
[ -n "$POINTS" ] || { bad "no failpoints found in the catalog"; finish; }
POINTS="load/after_locks $POINTS"

# Which state a crash at this point must leave: the commit point is confirm.
want_state() {
	case $1 in
	commit/after_confirm|commit/before_publish|commit/after_publish) echo new ;;
	*) echo old ;;
	esac
}

run_case() { # run_case POINT N HEALER(recover|load)
	local p=$1 n=$2 how=$3 S=$T/s st op want got
	rm -rf "$S"
	copy_store "$BASE" "$S"
	rm -f "$T/fp.log"
	set +e
	GRAPHFS_FP_LOG=$T/fp.log GRAPHFS_FAILPOINTS="$p=exit@$n" gctl load "$S" --data "$T/v2.jsonl" -q >/dev/null 2>"$T/err"
	st=$?
	set -e
	if [ "$st" = 0 ]; then
		# fewer than n hits: this point is done - but every point this
		# loop walks must be reached at least once
		[ "$n" -gt 1 ] || bad "$p: never reached by the load (the loop expects it)"
		! fired "$p" "$T/fp.log" || bad "$p@$n: fired but the load exited 0"
		return 1
	fi
	[ "$st" = 86 ] || { bad "$p@$n: load exited $st, wanted 86: $(head -c 300 "$T/err")"; return 0; }
	fired "$p" "$T/fp.log" || { bad "$p@$n: exit 86 but the failpoint log has no '$p'"; return 0; }
	op=$(pending_ids "$S" | head -1)
	if [ "$how" = recover ]; then
		gctl recover "$S" -q || { bad "$p@$n: recover failed"; return 0; }
	else
		# heal first: a load of another row of the same tables heals, then writes
		printf '{"type":"Person","data":{"slug":"healer","name":"H"}}\n{"type":"Company","data":{"domain":"h.example","name":"H"}}\n' >"$T/heal.jsonl"
		gctl load "$S" --data "$T/heal.jsonl" -q || { bad "$p@$n: healing load failed"; return 0; }
	fi
	want=$(want_state "$p")
	if [ "$how" = recover ]; then
		gctl export "$S" >"$T/got"
	else # the state before the healing load
		gctl export "$S" --version $(( $(head_version "$S") - 1 )) >"$T/got"
	fi
	if cmp -s "$T/got" "$T/$want"; then got=$want
	elif cmp -s "$T/got" "$T/old"; then got=old
	elif cmp -s "$T/got" "$T/new"; then got=new
	else got=mix; fi
	[ "$got" = "$want" ] && ok "$p@$n ($how): $got state" || bad "$p@$n ($how): head shows $got state, wanted $want"
	clean "$S" && ok "$p@$n ($how): fsck clean, no sidecar" || bad "$p@$n ($how): not clean"
	same_exports "$S" "$T/old" 2 && ok "$p@$n ($how): earlier versions identical" || bad "$p@$n ($how): earlier versions changed"
	if [ -n "$op" ]; then
		[ "$(audits "$S" "$op")" = 1 ] && ok "$p@$n ($how): one audit record" || bad "$p@$n ($how): $(audits "$S" "$op") audit records for $op"
	fi
	return 0
}

for how in recover load; do
	for p in $POINTS; do
		for n in 1 2 3 4 5; do
			run_case "$p" "$n" "$how" || break
		done
	done
done
finish
