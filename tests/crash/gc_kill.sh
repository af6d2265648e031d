#!/bin/bash
# gc_kill.sh - `graphctl gc` is a crash-safe writer (kind gc,
# docs/branches-design.md §6.3): killed at gc/after_arm, gc/after_commit,
# the 1st and 3rd gc/after_unlink and gc/before_audit, the next
# `graphctl recover` discards it (before the commit point: every version
# and file stays) or rolls it forward (after: exactly the planned versions
# removed, every planned file gone).  Either way: fsck clean, one audit
# record, every kept graph version exports byte-identically, and after a
# roll forward a second gc has nothing left to do.  A recovery killed while it rolls forward is
# finished by the next one.  An injected EIO is resolved by gc itself.
. "$top_srcdir/tests/crash/crashlib.sh"

B=$T/base
new_store "$B"
for i in 2 3 4; do
	gen_people 30 "v$i" | head -12 >"$T/v$i.jsonl"
	gctl load "$B" --data "$T/v$i.jsonl" -q >/dev/null
done
gctl compact "$B" -q
exports_of "$B" "$T/exp"
n=$(head_version "$B")
gctl gc "$B" --keep-last 1 --dry-run --json >"$T/plan.json"
planned=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(len(r["removed"]), r["files"])' "$T/plan.json")
[ "${planned% *}" -gt 0 ] && [ "${planned#* }" -gt 0 ] && ok "the plan removes ${planned% *} versions and ${planned#* } files" ||
	bad "nothing planned: $(cat "$T/plan.json")"
files() { find "$1/tables" -type f ! -name '.tmp-*' | wc -l; }
f0=$(files "$B")

kept_same() { # kept_same STORE: every graph version not removed exports as before
	local v
	for v in $(seq 1 "$n"); do
		if gctl export "$1" --version "$v" >"$T/cur" 2>/dev/null; then
			cmp -s "$T/cur" "$T/exp.$v" || return 1
		fi
	done
}
removed_count() { gctl log "$1" --json | grep -c '"removed":true' || true; }

run_case() { # run_case SPEC STATUS DECISION
	local S=$T/s st op
	rm -rf "$S"; cp -a "$B" "$S"
	set +e
	GRAPHFS_FAILPOINTS=$1 GRAPHFS_FP_LOG=$T/fp.log gctl gc "$S" --keep-last 1 -q 2>"$T/err"
	st=$?
	set -e
	[ "$st" = "$2" ] || { bad "$1: exit $st, expected $2: $(cat "$T/err")"; return; }
	fired "${1%%=*}" "$T/fp.log" || { bad "$1: never fired"; return; }
	rm -f "$T/fp.log"
	op=$(pending_ids "$S" | head -1)
	if [ "$2" = 86 ]; then
		[ -n "$op" ] || { bad "$1: no sidecar left"; return; }
		gctl recover "$S" -q >/dev/null 2>&1 || { bad "$1: recover failed"; return; }
	else
		op=$(gctl recover "$S" --list --json | python3 -c 'import json,sys; print([a["op_id"] for a in json.load(sys.stdin)["audit"] if a["kind"] == "gc"][-1])')
	fi
	clean "$S" || { bad "$1: not clean"; return; }
	[ "$(audits "$S" "$op")" = 1 ] || { bad "$1: $(audits "$S" "$op") audit records"; return; }
	[ "$(audit_decision "$S" "$op")" = "$3" ] || { bad "$1: decision $(audit_decision "$S" "$op"), expected $3"; return; }
	kept_same "$S" || { bad "$1: a kept version changed"; return; }
	if [ "$3" = discard ]; then
		[ "$(removed_count "$S")" = 0 ] && [ "$(files "$S")" = "$f0" ] || { bad "$1: discarded but something went"; return; }
	else
		[ "$(removed_count "$S")" = "${planned% *}" ] && [ "$(files "$S")" = $((f0 - ${planned#* })) ] ||
			{ bad "$1: $(removed_count "$S") removed, $(files "$S") files of $f0"; return; }
	fi
	if [ "$3" != discard ]; then
		gctl gc "$S" --keep-last 1 --json | grep -q '"removed":\[\],"held":\[\],"files":0' ||
			{ bad "$1: a second gc found more"; return; }
	fi
	ok "$1: exit $st, $3, clean, one audit, kept versions unchanged"
}

run_case gc/after_arm=exit 86 discard
run_case gc/after_commit=exit 86 roll-forward
run_case gc/after_unlink=exit@1 86 roll-forward
run_case gc/after_unlink=exit@3 86 roll-forward
run_case gc/before_audit=exit 86 roll-forward
run_case gc/after_arm=error:EIO 1 discard
run_case gc/after_unlink=error:EIO@2 0 roll-forward

# A recovery killed while it rolls forward: the next one finishes.
S=$T/r
cp -a "$B" "$S"
set +e
GRAPHFS_FAILPOINTS=gc/after_unlink=exit@2 gctl gc "$S" --keep-last 1 -q 2>/dev/null
GRAPHFS_FAILPOINTS=gc/after_unlink=exit@2 gctl recover "$S" -q >/dev/null 2>&1; st=$?
set -e
[ "$st" = 86 ] && [ "$(pending "$S")" = 1 ] && ok "a recovery killed mid-unlink leaves the sidecar" || bad "recover exit $st, $(pending "$S") pending"
gctl recover "$S" -q >/dev/null && clean "$S" && [ "$(files "$S")" = $((f0 - ${planned#* })) ] &&
	ok "the next recovery finishes it: clean, every planned file gone" || bad "second recovery: $(files "$S") files"
kept_same "$S" && ok "kept versions unchanged" || bad "a kept version changed"

# Usage errors leave the store as it was.
S=$T/u
cp -a "$B" "$S"
expect_status 2 "gc without a window: usage error" gctl gc "$S"
expect_status 2 "gc with both windows: usage error" gctl gc "$S" --keep-last 1 --keep-since 2026-01-01T00:00:00Z
expect_status 2 "gc --keep-since garbage: usage error" gctl gc "$S" --keep-since yesterday
expect_status 2 "gc --keep-last 0: usage error" gctl gc "$S" --keep-last 0
[ "$(removed_count "$S")" = 0 ] && [ "$(files "$S")" = "$f0" ] && ok "nothing changed by refused commands" || bad "a refused gc changed the store"
gctl gc "$S" --keep-since "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" --json | grep -q "\"removed\":\[$(seq -s, 1 $((n - 1)))\]" &&
	ok "--keep-since in the future keeps only the head" || bad "--keep-since: $(gctl log "$S" | tail -3)"
expect_status 1 "export of a removed version fails" gctl export "$S" --version 1
expect_err "graph version 1 was removed by gc" "and says it was removed by gc"
clean "$S" && ok "clean" || bad "not clean"
finish
