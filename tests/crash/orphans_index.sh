#!/bin/bash
# orphans_index.sh - orphans are found against the table-version index
# (invariant 147, docs/branches-design.md §3.3), without reading the
# header of every version.  A table with 40 versions gets an orphan at
# next[T]: a valid version file that no reservation of this store made
# (linked by a load into a copy of the store, as a fenced writer would).
# strace (openat, getdents64) of `graphctl recover` shows that it opens a
# handful of version files (the orphan, the pin it restores and the pages
# that pin shares, the compensation it writes), not one per version, and
# lists the table a bounded number of times.  Also: fsck reports the
# orphan before and is clean after; a writer refuses it before (W2's
# probe) and writes above it after.
. "$top_srcdir/tests/crash/crashlib.sh"
if ! command -v strace >/dev/null; then
	echo "SKIP: strace not installed (scripts/deps.sh installs it)"
	exit 77
fi
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS

S=$T/store
new_store "$S"
D=$S/tables/node:Person
for i in $(seq 2 40); do
	printf '{"type":"Person","data":{"slug":"s%03d","name":"S %d"}}\n' "$i" "$i" >"$T/one.jsonl"
	gctl load "$S" --data "$T/one.jsonl" -q
done
h=$(ls "$D" | grep -E '^[0-9]+$' | sort -n | tail -1)
[ "$h" -ge 40 ] && ok "node:Person has $h versions" || bad "only $h versions"
o=$((h + 1))
cp -a "$S" "$T/copy"
printf '{"type":"Person","data":{"slug":"fenced","name":"F"}}\n' >"$T/f.jsonl"
gctl load "$T/copy" --data "$T/f.jsonl" -q
[ -e "$T/copy/tables/node:Person/$o" ] || bad "the copy's load did not write version $o"
cp "$T/copy/tables/node:Person/$o" "$D/$o"
gctl fsck "$S" >"$T/fsck1" 2>&1 && bad "fsck clean with an orphan" || true
grep -q "orphan version $o above pin $h" "$T/fsck1" && ok "fsck reports the orphan $o" || bad "fsck: $(head -c 400 "$T/fsck1")"
printf '{"type":"Person","data":{"slug":"w","name":"W"}}\n' >"$T/w.jsonl"
set +e
gctl load "$S" --data "$T/w.jsonl" -q 2>"$T/err"
st=$?
set -e
[ "$st" = 3 ] && grep -q "has version $o" "$T/err" && ok "a writer refuses the orphan at next" || bad "load exit $st: $(cat "$T/err")"

with_timeout "$TMO" strace -f -y -e trace=openat,getdents64 -o "$T/rec.st" "$GRAPHCTL" recover "$S" --json >"$T/rsum" &&
	ok "recover under strace" || bad "recover failed: $(cat "$T/rsum")"
[ "$(summary orphans_compensated "$T/rsum")" = 1 ] && ok "one orphan table compensated" || bad "summary: $(cat "$T/rsum")"
# version files of node:Person opened by name (not the directory, not temp files)
grep -oE 'openat\([^"]*"[^"]*/tables/node:Person/[0-9]+"' "$T/rec.st" | grep -oE '[0-9]+"$' | tr -d '"' | sort -u >"$T/opened"
nopen=$(wc -l <"$T/opened")
grep -qx "$o" "$T/opened" && ok "control: strace saw the orphan opened ($(tr '\n' ' ' <"$T/opened"))" || bad "strace did not see the orphan opened: proves nothing"
[ "$nopen" -le 6 ] && ok "$nopen of $o version files opened: not one per version" || bad "$nopen version files opened: $(tr '\n' ' ' <"$T/opened" | head -c 300)"
n=$(grep -c 'getdents64([0-9]*</[^>]*/tables/node:Person>' "$T/rec.st" || true)
[ "$n" -ge 1 ] && [ "$n" -le 8 ] && ok "the table was listed $n time(s) (a few getdents64 calls, not per version)" || bad "getdents64 on the table: $n"
pin=$(gctl snapshot "$S" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tables"]["node:Person"]["version"])')
[ "$pin" = $((o + 1)) ] && ok "main's pin moved to the compensation $((o + 1))" || bad "pin $pin"
clean "$S" && ok "fsck clean after recover" || bad "not clean: $(cat "$T/fsck.out")"
gctl load "$S" --data "$T/w.jsonl" -q && ok "the writer writes now" || bad "load failed"
clean "$S" && ok "fsck clean after the load" || bad "not clean: $(cat "$T/fsck.out")"
finish
