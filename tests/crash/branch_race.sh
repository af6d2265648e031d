#!/bin/bash
# branch_race.sh - loads on two branches of one table, one killed in the
# other's window (docs/branches-design.md §7 crash matrix, invariants 141,
# 144; docs/testing.md).  The store: main and dev have each moved Person
# since the fork (dev pins an older Person version than main).  For each
# victim branch (main, dev) and each commit point (a sidecar armed, a
# table linked, confirmed, published):
#   the victim's load parks there; the other branch's load of the same
#   table starts and waits for the table lock; the victim is SIGKILLed;
#   the survivor heals it (on the victim's branch) and loads on its own.
# Then: one audit record with the decision the commit point implies, the
# victim's branch shows the old state or the new (never a mix), the
# survivor's branch shows exactly its own load, neither branch shows the
# other's rows, the two heads pin distinct Person versions, fsck clean.
. "$top_srcdir/tests/crash/crashlib.sh"

BASE=$T/base
new_store "$BASE"                                       # gv 2, main
gctl branch create "$BASE" dev -q
printf '{"type":"Person","data":{"slug":"d1","name":"dev one"}}\n' >"$T/d1.jsonl"
printf '{"type":"Person","data":{"slug":"m1","name":"main one"}}\n' >"$T/m1.jsonl"
gctl load "$BASE" --branch dev --data "$T/d1.jsonl" -q  # gv 3, dev
gctl load "$BASE" --data "$T/m1.jsonl" -q               # gv 4, main
gen_people 30 v2 >"$T/v2.jsonl"
printf '{"type":"Person","data":{"slug":"zz","name":"survivor"}}\n' >"$T/zz.jsonl"

person() { # person STORE BRANCH
	gctl export "$1" --branch "$2" --type Person
}
pin() { # pin STORE BRANCH: the Person version the branch's head pins
	gctl snapshot "$1" --branch "$2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tables"]["node:Person"]["version"])'
}
for b in main dev; do person "$BASE" "$b" >"$T/base.$b"; done

# tree_blocked PID: waits (bounded, scaled) until PID or a descendant (bg
# runs graphctl under a subshell and timeout(1)) waits for a flock.
descendants() { local c; for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done; }
tree_blocked() {
	local left=$(( $(scaled 30) * 100 )) p
	while [ "$left" -gt 0 ]; do
		for p in $(descendants "$1"); do
			grep -qE -- "-> FLOCK +ADVISORY +[A-Z]+ +$p " /proc/locks && return 0
		done
		sleep 0.01
		left=$((left - 1))
	done
	return 1
}

# commit point -> the decision a dead writer parked there gets
points="commit/after_sidecar:discard commit/after_table:roll-back table/after_link:roll-back
	commit/after_confirm:roll-forward commit/before_publish:roll-forward commit/after_publish:published"
for victim in main dev; do
	survivor=main; [ "$victim" = main ] && survivor=dev
	for pt in $points; do
		fp=${pt%%:*} want=${pt#*:} tag="$victim@$fp"
		S=$T/s; rm -rf "$S"; cp -a "$BASE" "$S"
		GRAPHFS_FAILPOINTS=$fp=park@1 bg gctl load "$S" --branch "$victim" --data "$T/v2.jsonl" -q
		vwrap=$!
		vpid=$(fp_wait_reached "$fp" 30) || { bad "$tag: the victim never parked"; continue; }
		op=$(pending_ids "$S")
		bg gctl load "$S" --branch "$survivor" --data "$T/zz.jsonl" -q
		swrap=$!
		tree_blocked "$swrap" || bad "$tag: the survivor did not wait for the table lock"
		kill -KILL "$vpid" || bad "$tag: the victim was gone before its kill"
		wait "$vwrap" 2>/dev/null || true
		fp_release "$fp"
		wait "$swrap" && ok "$tag: the survivor on $survivor healed and loaded" || bad "$tag: the survivor failed"
		if [ "$want" = published ]; then
			[ -z "$op" ] && ok "$tag: published, no sidecar left" || bad "$tag: sidecar $op after the publish"
		else
			got=$(audit_decision "$S" "$op")
			[ "$got" = "$want" ] && [ "$(audits "$S" "$op")" = 1 ] && ok "$tag: $want, audited once" ||
				bad "$tag: decision $got ($(audits "$S" "$op") records), wanted $want"
		fi
		person "$S" "$victim" >"$T/v.out"
		n=$(grep -c ' v2"' "$T/v.out" || true)
		case $want in
		roll-forward|published)
			[ "$n" = 30 ] && ok "$tag: the victim's rows are on $victim" || bad "$tag: $n of 30 rows on $victim";;
		*)
			cmp -s "$T/v.out" "$T/base.$victim" && ok "$tag: $victim as it was" || bad "$tag: $victim changed: $(diff "$T/v.out" "$T/base.$victim" | head -3)";;
		esac
		person "$S" "$survivor" | grep -v '"zz"' | cmp -s - "$T/base.$survivor" &&
			person "$S" "$survivor" | grep -q '"zz"' && ok "$tag: $survivor shows exactly its own load" ||
			bad "$tag: $survivor wrong: $(person "$S" "$survivor" | diff - "$T/base.$survivor" | head -3)"
		person "$S" "$victim" | grep -q '"zz"' && bad "$tag: the survivor's row is on $victim" || true
		[ "$(pin "$S" main)" != "$(pin "$S" dev)" ] && ok "$tag: distinct Person versions" || bad "$tag: main and dev pin one Person version"
		clean "$S" && ok "$tag: fsck clean, nothing pending" || bad "$tag: not clean"
	done
done
finish
