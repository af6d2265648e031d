#!/bin/bash
# repost.sh - W4' (docs/recovery.md "Version numbers"): a writer whose
# reserved number p is taken, when it links, by a file that no reservation
# made (here: put there while the writer is parked after its arm).  The
# writer reposts (p void, a fresh p' in its sidecar), fails cleanly naming
# the file, and publishes nothing; its sidecar is resolved (discarded, p'
# void), so no violation is left.  The file at p is an orphan below the
# counter: fsck reports it, `graphctl recover` retires it without a graph
# version (audit orphan-retired), and the next load takes the counter's
# next number.
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
D=$S/tables/node:Person
p=$(next_of "$S" node:Person)
# a valid version p that this store never reserved: a load into a copy
cp -a "$S" "$T/copy"
printf '{"type":"Person","data":{"slug":"fenced","name":"F"}}\n' >"$T/f.jsonl"
gctl load "$T/copy" --data "$T/f.jsonl" -q
[ -e "$T/copy/tables/node:Person/$p" ] || bad "the copy's load did not write version $p"
v0=$(head_version "$S")

gen_people 10 v2 >"$T/v2.jsonl"
GRAPHFS_FAILPOINTS=commit/after_sidecar=park bg gctl load "$S" --data "$T/v2.jsonl" -q 2>"$T/err"
fp_wait_reached commit/after_sidecar 30 >/dev/null && ok "writer armed and parked" || bad "writer never parked"
[ "$(state_of "$S" node:Person "$p")" = reserved ] && ok "p = $p reserved at arm" || bad "p: $(state_of "$S" node:Person "$p")"
cp "$T/copy/tables/node:Person/$p" "$D/$p"
fp_release commit/after_sidecar
st=0
for pid in $BG_PIDS; do wait "$pid" || st=$?; done
BG_PIDS=""
[ "$st" = 1 ] && ok "the writer failed (exit 1)" || bad "writer exit $st: $(cat "$T/err")"
grep -q "version $p already exists: a file no reservation made" "$T/err" && ok "it names the file" || bad "message: $(cat "$T/err")"
[ "$(head_version "$S")" = "$v0" ] && ok "nothing published" || bad "head moved"
[ "$(pending "$S")" = 0 ] && ok "its sidecar was resolved (no violation left)" || bad "$(pending "$S") pending"
[ "$(state_of "$S" node:Person "$p")" = void ] && ok "p is void in the index" || bad "p: $(state_of "$S" node:Person "$p")"
[ "$(state_of "$S" node:Person $((p + 1)))" = void ] && ok "the reposted p' = $((p + 1)) is void (discarded)" || bad "p': $(state_of "$S" node:Person $((p + 1)))"
gctl fsck "$S" >"$T/fsck1" 2>&1 && bad "fsck clean with an orphan" || true
grep -q "orphan version $p" "$T/fsck1" && ok "fsck reports the file at p as an orphan" || bad "fsck: $(head -c 300 "$T/fsck1")"
gctl recover "$S" --json >"$T/rsum" && ok "recover" || bad "recover failed"
[ "$(summary orphans_retired "$T/rsum")" = 1 ] && [ "$(summary orphans_compensated "$T/rsum")" = 0 ] &&
	ok "summary: one orphan table retired, none compensated" || bad "summary: $(cat "$T/rsum")"
[ "$(state_of "$S" node:Person "$p")" = retired ] && ok "the orphan below the counter is retired" || bad "p: $(state_of "$S" node:Person "$p")"
[ "$(head_version "$S")" = "$v0" ] && ok "with no graph version" || bad "head moved"
gctl recover "$S" --list --json | grep -q '"decision":"orphan-retired"' && ok "audit orphan-retired" || bad "no orphan-retired audit"
clean "$S" && ok "fsck clean" || bad "not clean: $(cat "$T/fsck.out")"
gctl load "$S" --data "$T/v2.jsonl" -q && ok "the load goes through now" || bad "load failed"
[ "$(gctl snapshot "$S" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tables"]["node:Person"]["version"])')" = $((p + 2)) ] &&
	ok "at the counter's next number $((p + 2))" || bad "pin: $(gctl snapshot "$S" --json | head -c 200)"
clean "$S" && ok "fsck clean after the load" || bad "not clean: $(cat "$T/fsck.out")"
finish
