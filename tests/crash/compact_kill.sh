#!/bin/bash
# compact_kill.sh - `graphctl compact` is a writer of the commit door
# (docs/branches-design.md §6.4): killed at each of its failpoints and at
# every commit/table failpoint (and the 2nd hit of the per-table ones), the
# next `graphctl recover` leaves the old head or the compacted one, never
# a mix: the head exports the same rows either way, every earlier version
# exports byte-identically, fsck is clean, one audit record for the op.
# An injected EIO is resolved by the writer itself (nothing left pending).
# Then a compacted table reads one file (parent 0), and a second compact
# finds nothing to do.
. "$top_srcdir/tests/crash/crashlib.sh"

B=$T/base
new_store "$B"
gen_people 50 v2 | head -20 >"$T/v2.jsonl"
gctl load "$B" --data "$T/v2.jsonl" -q >/dev/null
exports_of "$B" "$T/exp"
n0=$(head_version "$B")

run_case() { # run_case SPEC EXPECTED_STATUS
	local S=$T/s st op after
	rm -rf "$S"
	cp -a "$B" "$S"
	set +e
	GRAPHFS_FAILPOINTS=$1 GRAPHFS_FP_LOG=$T/fp.log gctl compact "$S" -q 2>"$T/err"
	st=$?
	set -e
	[ "$st" = "$2" ] || { bad "$1: exit $st, expected $2: $(cat "$T/err")"; return; }
	fired "${1%%=*}" "$T/fp.log" || { bad "$1: never fired"; return; }
	op=$(pending_ids "$S" | head -1)
	gctl recover "$S" -q >/dev/null 2>&1 || { bad "$1: recover failed"; return; }
	after=$(head_version "$S")
	if ! gctl export "$S" | cmp -s - "$T/exp.$n0"; then bad "$1: the head's rows changed"; return; fi
	same_exports "$S" "$T/exp" "$n0" || { bad "$1: an earlier version changed"; return; }
	clean "$S" || { bad "$1: not clean"; return; }
	if [ -n "$op" ] && [ "$(audits "$S" "$op")" != 1 ]; then bad "$1: $(audits "$S" "$op") audit records"; return; fi
	ok "$1: exit $st, head $n0 -> $after, rows unchanged, clean${op:+, one audit ($(audit_decision "$S" "$op"))}"
	rm -f "$T/fp.log"
}

for fp in compact/after_heal compact/after_locks commit/after_sidecar \
	  table/after_tmp_write table/after_link table/after_link@2 \
	  commit/after_table commit/after_table@2 commit/after_confirm \
	  commit/before_publish commit/after_publish; do
	case $fp in
	*@*) run_case "${fp%@*}=exit@${fp#*@}" 86 ;;
	*)   run_case "$fp=exit" 86 ;;
	esac
done
run_case "commit/before_publish=error:EIO" 0
run_case "commit/after_table=error:EIO@2" 1

# A compacted table reads one file; the rows keep serial and changed (the
# mount test compares inodes and mtimes; here: a second compact finds
# nothing, and fsck verifies the fresh files).
S=$T/c
cp -a "$B" "$S"
gctl compact "$S" --json >"$T/c.json"
python3 - "$T/c.json" <<'PY' && ok "compact --json: every table, bytes before > after > 0" || bad "compact --json: $(cat "$T/c.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["version"] > 0 and r["tables"], r
for t, v in r["tables"].items():
    assert v["to"] > v["from"] and v["bytes_before"] > v["bytes_after"] > 0, (t, v)
PY
gctl compact "$S" --json | grep -q '"version":0' && ok "a second compact finds nothing to do" || bad "second compact wrote"
gctl export "$S" | cmp -s - "$T/exp.$n0" && ok "compacted head exports the same" || bad "compacted head differs"
gctl compact "$S" --type Person --json | grep -q '"version":0' && ok "--type Person: already one file" || bad "--type Person"
set +e
gctl compact "$S" --type Nope 2>"$T/err"; st=$?
set -e
[ "$st" = 1 ] && grep -q "type 'Nope' is not in the schema" "$T/err" && ok "unknown type: exit 1, named" || bad "unknown type: $st $(cat "$T/err")"
clean "$S" && ok "clean" || bad "not clean"
finish
