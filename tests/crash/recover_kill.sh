#!/bin/bash
# recover_kill.sh - a sweep killed (action exit) at every recover/* failpoint
# and Nth hit, on a roll back (load died after committing two tables) and on
# a roll forward (load died after confirming); the next sweep finishes: the
# state is old (roll back) or new (roll forward), fsck clean, no sidecar,
# exactly one audit record.  Also: a writer that fails (error injected)
# after committing some tables rolls itself back through the same code.
. "$top_srcdir/tests/crash/crashlib.sh"

BASE=$T/base
new_store "$BASE"
gctl export "$BASE" >"$T/old"
gen_people 40 v2 >"$T/v2.jsonl"
gen_edges 40 v2 >>"$T/v2.jsonl"
copy_store "$BASE" "$T/ref"
gctl load "$T/ref" --data "$T/v2.jsonl" -q
gctl export "$T/ref" >"$T/new"

POINTS="recover/after_locks recover/after_classify recover/after_reserve recover/after_compensate recover/before_audit recover/after_publish"
# ... and the catalog has no recover/* point this list misses
for p in $(sed -n 's/.*X([A-Z_]*, "\(recover\/[a-z_]*\)").*/\1/p' "$top_srcdir/src/failpoints.h"); do
	case " $POINTS " in *" $p "*) ;; *) bad "catalog point $p is not walked here" ;; esac
done

# crashed STORE KIND: a load dead before (back) or after (forward) confirm.
crashed() {
	local fp=commit/after_table=exit@3
	[ "$2" = forward ] && fp=commit/before_publish=exit
	rm -rf "$1"
	copy_store "$BASE" "$1"
	set +e
	GRAPHFS_FAILPOINTS=$fp gctl load "$1" --data "$T/v2.jsonl" -q 2>/dev/null
	local st=$?
	set -e
	[ "$st" = 86 ] || bad "setup: load exited $st"
}

# reach KIND POINT N: the sweep exited 0 before the Nth hit of POINT.  Every
# point is reached at least once on every path, except that a roll forward
# reserves and writes no compensation.
reach() {
	[ "$3" -gt 1 ] && return 0
	[ "$1 $2" = "forward recover/after_compensate" ] && return 0
	[ "$1 $2" = "forward recover/after_reserve" ] && return 0
	bad "$1 $2: never reached by the sweep (the loop expects it)"
}

for kind in back forward; do
	want=old
	[ "$kind" = forward ] && want=new
	for p in $POINTS; do
		for n in 1 2 3; do
			S=$T/s
			crashed "$S" "$kind"
			op=$(pending_ids "$S")
			rm -f "$T/fp.log"
			set +e
			GRAPHFS_FP_LOG=$T/fp.log GRAPHFS_FAILPOINTS="$p=exit@$n" gctl recover "$S" -q >/dev/null 2>"$T/err"
			st=$?
			set -e
			if [ "$st" = 0 ]; then # fewer than n hits: done with this point
				reach "$kind" "$p" "$n"
				break
			fi
			[ "$st" = 86 ] || { bad "$kind $p@$n: sweep exited $st: $(head -c 300 "$T/err")"; continue; }
			fired "$p" "$T/fp.log" || bad "$kind $p@$n: exit 86 but the failpoint log has no '$p'"
			gctl recover "$S" -q || bad "$kind $p@$n: the next sweep failed"
			gctl export "$S" | cmp -s - "$T/$want" && ok "$kind $p@$n: $want state" || bad "$kind $p@$n: not the $want state"
			clean "$S" && ok "$kind $p@$n: clean" || bad "$kind $p@$n: not clean"
			[ "$(audits "$S" "$op")" = 1 ] && ok "$kind $p@$n: one audit ($(audit_decision "$S" "$op"))" ||
				bad "$kind $p@$n: $(audits "$S" "$op") audit records"
			gctl export "$S" --version 2 | cmp -s - "$T/old" || bad "$kind $p@$n: version 2 changed"
		done
	done
done

# A writer failing after committing tables undoes its own operation.
S=$T/own
rm -rf "$S"; copy_store "$BASE" "$S"
set +e
GRAPHFS_FAILPOINTS=commit/after_table=error:EIO@2 gctl load "$S" --data "$T/v2.jsonl" -q 2>"$T/err"
st=$?
set -e
[ "$st" = 1 ] && ok "load with EIO after table 2 fails" || bad "load exited $st"
clean "$S" && ok "the failed load left no sidecar" || bad "failed load left state behind"
gctl export "$S" | cmp -s - "$T/old" && ok "the failed load left the old state" || bad "failed load changed the head"
gctl recover "$S" --list | grep -q 'roll-back' && ok "its roll back is audited" || bad "no roll-back audit"
# ... and past the commit point it finishes its own operation instead.
rm -rf "$S"; copy_store "$BASE" "$S"
GRAPHFS_FAILPOINTS=commit/before_publish=error:EIO gctl load "$S" --data "$T/v2.jsonl" -q 2>"$T/err" &&
	ok "an error after confirm rolls the load forward" || bad "load after confirm: $(cat "$T/err")"
gctl export "$S" | cmp -s - "$T/new" && ok "and its data is visible" || bad "rolled-forward data missing"
clean "$S" || bad "not clean after own roll forward"
finish
