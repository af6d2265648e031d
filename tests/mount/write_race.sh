#!/bin/bash
# write_race.sh - two read-write mounts and a `graphctl load` write one store
# at once (issue 10, requirement 9; docs/semantics.md "Writes").
#  1. Writers on both mounts create node files (each its own keys) while a
#     third process loads more rows with graphctl, and a fourth process
#     writes the SAME keys through both mounts (last writer wins, either
#     order).  Every write either succeeds or fails with an error (never a
#     success that is lost): every acknowledged file is in the store at the
#     end with the bytes written, every load that exited 0 is there.
#  2. The writing mount shows its own write as soon as close() returns
#     (no wait); the other mount shows it once its notifier has seen the
#     version (.graphfs/seen), and both live views converge on the head:
#     the same listing, the same table file bytes as `graphctl export`.
#  3. The log holds exactly the versions published: each version written
#     through a mount names its writers (uid, pid, comm); fsck is clean.
. "$top_srcdir/tests/mount/lib_mount.sh"

S=$T/s
A=$T/a
B=$T/b
new_store "$S"
printf '{"type":"Person","data":{"slug":"seed","name":"Seed"}}\n' | load "$S" merge
mount_gfs "$S" "$A" || { bad "mount A"; finish; exit; }
mount_gfs "$S" "$B" || { bad "mount B"; finish; exit; }
N=${GRAPHFS_RACE_FILES:-60}

# writer DIR TAG: N node files TAG-<i>, one cp each; acknowledged names to $T/ack.TAG
writer() {
	local d=$1 tag=$2 i
	: >"$T/ack.$tag"
	for i in $(seq 1 "$N"); do
		printf '{"slug":"%s-%d","name":"by %s","age":%d}\n' "$tag" "$i" "$tag" "$i" >"$T/in.$tag"
		if timeout "$(scaled 30)" cp "$T/in.$tag" "$d/nodes/Person/$tag-$i.json" 2>>"$T/err.$tag"; then
			echo "$tag-$i" >>"$T/ack.$tag"
		fi
	done
}
# both DIR1 DIR2: the same keys through both mounts, alternating.
both() {
	local i
	: >"$T/ack.same"
	for i in $(seq 1 "$N"); do
		printf '{"slug":"same-%d","name":"round %d","age":%d}\n' "$((i % 10))" "$i" "$i" >"$T/in.same"
		if timeout "$(scaled 30)" cp "$T/in.same" "$1/nodes/Person/same-$((i % 10)).json" 2>>"$T/err.same"; then
			echo "same-$((i % 10)) $i" >>"$T/ack.same"
		fi
		set -- "$2" "$1"
	done
}
loader() {
	local i
	: >"$T/ack.load"
	for i in $(seq 1 10); do
		awk -v i="$i" 'BEGIN { for (k = 0; k < 20; k++) printf "{\"type\":\"Person\",\"data\":{\"slug\":\"ld%d-%d\",\"name\":\"load %d\"}}\n", i, k, i }' >"$T/ld.$i.jsonl"
		if gc load "$S" --data "$T/ld.$i.jsonl" -q 2>>"$T/err.load"; then echo "$i" >>"$T/ack.load"; fi
	done
}

writer "$A" wa & p1=$!
writer "$B" wb & p2=$!
both "$A" "$B" & p3=$!
loader & p4=$!
wait $p1 $p2 $p3 $p4

acked=$(cat "$T"/ack.wa "$T"/ack.wb | wc -l)
[ "$acked" = $((2 * N)) ] && ok "every write through both mounts succeeded ($acked)" \
	|| bad "only $acked of $((2 * N)) writes succeeded: $(cat "$T"/err.wa "$T"/err.wb | head -5)"
[ "$(wc -l <"$T/ack.load")" = 10 ] && ok "every concurrent load succeeded" || bad "loads failed: $(head -5 "$T/err.load")"

# 3. the store holds every acknowledged write
gc export "$S" --type Person >"$T/person.jsonl"
lost=0
for tag in wa wb; do
	while read -r k; do
		i=${k#*-}
		grep -qxF "{\"type\":\"Person\",\"data\":{\"slug\":\"$k\",\"name\":\"by $tag\",\"age\":$i}}" "$T/person.jsonl" || { lost=$((lost + 1)); echo "# lost $k"; }
	done <"$T/ack.$tag"
done
while read -r i; do
	for k in $(seq 0 19); do grep -q "\"slug\":\"ld$i-$k\"" "$T/person.jsonl" || lost=$((lost + 1)); done
done <"$T/ack.load"
# the same keys: the last acknowledged round of each key wins (the rounds
# were sequential, so the last acknowledged one is the last one written)
for k in $(seq 0 9); do
	last=$(awk -v k="same-$k" '$1 == k { r = $2 } END { print r }' "$T/ack.same")
	[ -n "$last" ] || continue
	grep -qxF "{\"type\":\"Person\",\"data\":{\"slug\":\"same-$k\",\"name\":\"round $last\",\"age\":$last}}" "$T/person.jsonl" \
		|| { lost=$((lost + 1)); echo "# same-$k: round $last is not the stored one"; }
done
[ "$lost" = 0 ] && ok "no acknowledged write is lost" || bad "$lost acknowledged writes lost"

# 2. both live views converge on the head
head=$(gc log "$S" --json | wc -l)
wait_until 30 out_is "$head" cat "$A/.graphfs/seen" && wait_until 30 out_is "$head" cat "$B/.graphfs/seen" \
	&& ok "both mounts have seen the head ($head)" || bad "a mount did not reach the head $head"
check "mount A's table file equals the export" cmp "$A/nodes/Person.jsonl" "$T/person.jsonl"
check "mount B's table file equals the export" cmp "$B/nodes/Person.jsonl" "$T/person.jsonl"
ls "$A/nodes/Person" >"$T/la"; ls "$B/nodes/Person" >"$T/lb"
check "both listings are the same" cmp "$T/la" "$T/lb"
nfiles=$(grep -c '\.json$' "$T/la")
want=$(grep -c . "$T/person.jsonl")
[ "$nfiles" = "$want" ] && ok "the listing has one file per row ($want)" || bad "listing $nfiles files, export $want rows"

# own writes visible at once through the writing mount, then on the other
printf '{"slug":"mine","name":"at once"}\n' >"$A/nodes/Person/mine.json" || bad "write mine.json"
check "the writing mount shows its write as soon as close() returned" out_is '{"slug":"mine","name":"at once"}' cat "$A/nodes/Person/mine.json"
check "the other mount shows it once its notifier saw it" wait_until 30 out_is '{"slug":"mine","name":"at once"}' cat "$B/nodes/Person/mine.json"

# 3. the log: writers named, fsck clean
gc log "$S" --json >"$T/log.json"
python3 - "$T/log.json" <<'PY' && ok "every version written through a mount names its writers (uid, pid, comm)" || bad "a mount write without its writers in the log"
import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("op") != "write":
        continue
    d = r.get("detail") or {}
    if isinstance(d, str):
        d = json.loads(d)
    ws = d.get("writers") or []
    assert ws and all("uid" in w and "pid" in w and w.get("comm") for w in ws), r
    n += 1
assert n > 0
PY
check "fsck is clean" gc fsck "$S" -q
finish
