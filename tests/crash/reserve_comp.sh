#!/bin/bash
# reserve_comp.sh - a roll back reserves its compensation's number in the
# sidecar before it links it (invariant 143, docs/branches-design.md §3.1):
# a `graphctl recover` killed right after that reserve transaction
# (recover/after_reserve=exit) leaves the number recorded in the sidecar
# and `reserved` in the index, with no file; the next sweep writes the
# compensation at that number (no second number is taken: next[T] moves
# once), publishes it, and retires the undone version.
. "$top_srcdir/tests/crash/crashlib.sh"
if ! command -v mdb_dump >/dev/null; then
	echo "SKIP: mdb_dump (lmdb-utils) not installed"
	exit 77
fi
idx() { python3 "$top_srcdir/tests/format_reader.py" "$1" --index "$2"; }
state_of() { idx "$1" "$2" | python3 -c 'import json,sys
want = int(sys.argv[1])
for l in sys.stdin:
    r = json.loads(l)
    if r.get("v") == want: print(r["state"]); break
else: print("none")
sys.stdin.read()' "$3"; }
next_of() { idx "$1" "$2" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readlines()[0])["next"])'; }

S=$T/store
new_store "$S"
T1=node:Person
n0=$(next_of "$S" "$T1")
gen_people 10 v2 >"$T/v2.jsonl"
set +e
GRAPHFS_FAILPOINTS=commit/after_table=exit gctl load "$S" --data "$T/v2.jsonl" -q 2>/dev/null
st=$?
set -e
[ "$st" = 86 ] && [ "$(pending "$S")" = 1 ] && ok "a load died after linking p = $n0" || bad "exit $st, $(pending "$S") sidecars"
p=$n0
[ "$(state_of "$S" "$T1" "$p")" = reserved ] && [ -e "$S/tables/$T1/$p" ] && ok "p reserved and linked" || bad "p: $(state_of "$S" "$T1" "$p")"

set +e
GRAPHFS_FAILPOINTS=recover/after_reserve=exit gctl recover "$S" -q 2>/dev/null
st=$?
set -e
c=$((p + 1))
[ "$st" = 86 ] && ok "recover died after its reserve transaction" || bad "recover exit $st: failpoint not reached"
[ "$(pending "$S")" = 1 ] && ok "the sidecar is still pending" || bad "$(pending "$S") sidecars"
gctl recover "$S" --list --json | grep -q "\"comp\":$c" && ok "the sidecar records c = $c" || bad "no comp in the sidecar: $(gctl recover "$S" --list --json | head -c 400)"
[ "$(state_of "$S" "$T1" "$c")" = reserved ] && [ ! -e "$S/tables/$T1/$c" ] && ok "c reserved in the index, no file yet" || bad "c: $(state_of "$S" "$T1" "$c")"
[ "$(next_of "$S" "$T1")" = $((c + 1)) ] && ok "next is c+1" || bad "next $(next_of "$S" "$T1")"

gctl recover "$S" --json >"$T/rsum" && ok "the next sweep resolves it" || bad "recover failed: $(cat "$T/rsum")"
[ "$(summary rolled_back "$T/rsum")" = 1 ] && ok "rolled back" || bad "summary: $(cat "$T/rsum")"
[ "$(state_of "$S" "$T1" "$c")" = published ] && [ -e "$S/tables/$T1/$c" ] && ok "the compensation is at the reserved c and published" || bad "c: $(state_of "$S" "$T1" "$c")"
[ "$(state_of "$S" "$T1" "$p")" = retired ] && ok "the undone p is retired" || bad "p: $(state_of "$S" "$T1" "$p")"
[ "$(next_of "$S" "$T1")" = $((c + 1)) ] && ok "no second number was taken" || bad "next $(next_of "$S" "$T1")"
[ ! -e "$S/tables/$T1/$((c + 1))" ] && ok "nothing above c" || bad "a file above c"
clean "$S" && ok "fsck clean, nothing pending" || bad "not clean: $(cat "$T/fsck.out")"
finish
