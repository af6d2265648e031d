#!/bin/bash
# make_seeds.sh BUILDDIR - regenerates the seed corpora of fuzz/corpus/
# (schema, jsonl, table, records, names) from the repository's examples,
# test schemas and error cases, and from a store built here with
# BUILDDIR's graphctl (a failpoints build: a writer is killed after its
# sidecar is confirmed, so a real sidecar is among the record seeds).
# Run by hand when the formats change; the seeds are committed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
b=$(cd "$1" && pwd)
out=$top/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"/{schema,jsonl,table,records,names}

seed() { # DIR NAME: stdin into DIR/NAME
	cat >"$out/$1/$2"
}

# schema: every .pg in the repository, plus the schema error cases the unit
# tests name (one per file).
for f in "$top"/examples/*.pg "$top"/tests/data/*.pg "$top"/tests/data/schemas/*.pg \
	 "$top"/tests/unit/*.pg "$top"/bench/*.pg; do
	[ -f "$f" ] && seed schema "$(basename "$f")" <"$f"
done
i=0
grep -h -o 'parse_bad("[^"]*' "$top"/tests/unit/check_schema.c 2>/dev/null |
	sed 's/^parse_bad("//' | while IFS= read -r s; do
	i=$((i + 1)); printf '%b' "$s" | seed schema "err-$i.pg"
done

# jsonl: the example and the codec test cases (mode byte 0 = chunk 1 byte,
# 3 = 4096), in pieces of 8 lines.
{ printf '\003'; cat "$top/examples/people.jsonl"; } | seed jsonl people
split -l 8 -d "$top/tests/unit/codec_diff.jsonl" "$tmp/cd."
n=0
for f in "$tmp"/cd.*; do
	n=$((n + 1)); { printf "\\00$((n % 4))"; cat "$f"; } | seed jsonl "codec-$n"
done

# names: keys that need escapes, long keys, edge pairs (mode 0) and names
# (mode 1).
printf '\000a/b' | seed names slash
printf '\000.hidden' | seed names dot
printf '\000x.json' | seed names json
printf '\000' | seed names empty
printf '\000%%41~\001\177' | seed names escapes
printf '\000alice\000edge-01' | seed names edge
head -c 300 /dev/zero | tr '\0' 'k' | { printf '\000'; cat; } | seed names long
head -c 100 /dev/zero | tr '\0' '/' | { printf '\000'; cat; } | seed names long-esc
printf '\001a%%2Fb' | seed names name-esc
printf '\001a%%2fb' | seed names name-lower
printf '\001%%' | seed names name-empty
printf '\001abc%%h0123456789ABCDEF' | seed names name-hashed

# table + records: a store with two loads, a branch and a killed writer.
s=$tmp/store
"$b/graphctl" init "$s" --schema "$top/examples/people.pg" >/dev/null
"$b/graphctl" load "$s" --data "$top/examples/people.jsonl" --quiet
"$b/graphctl" branch create "$s" side >/dev/null
printf '%s\n' '{"type":"Person","data":{"slug":"zed","name":"Zed","created":"2026-03-01T00:00:00Z","email":"z@e.org"}}' >"$tmp/one.jsonl"
"$b/graphctl" load "$s" --data "$tmp/one.jsonl" --quiet
GRAPHFS_FAILPOINTS=commit/after_confirm=exit "$b/graphctl" load "$s" \
	--data "$tmp/one.jsonl" --mode merge --quiet 2>/dev/null || true
for d in "$s"/tables/*/; do
	t=$(basename "$d")
	for v in "$d"[0-9]*; do
		seed table "${t#*:}-$(basename "$v")" <"$v"
	done
done
# records: [db index][key length][key][payload without its 8-byte seal],
# before the sidecar is resolved and after (its audit record).
dump_records() {
python3 - "$s/manifest" "$out/records" "$1" <<'EOF'
import subprocess, sys
env, out, tag = sys.argv[1], sys.argv[2], sys.argv[3]
dbs = ["sidecars", "versions", "audit", "branches", "tver", "next"]
for i, db in enumerate(dbs):
    r = subprocess.run(["mdb_dump", "-s", db, env], capture_output=True, text=True)
    if r.returncode:
        continue
    lines = r.stdout.split("HEADER=END\n", 1)[1].splitlines()
    pairs = [l.strip() for l in lines if l.startswith(" ")]
    for j in range(0, len(pairs) - 1, 2):
        k, v = bytes.fromhex(pairs[j]), bytes.fromhex(pairs[j + 1])[:-8]
        if len(k) > 255:
            continue
        with open(f"{out}/{db}-{tag}{j // 2}", "wb") as f:
            f.write(bytes([i, len(k)]) + k + v)
EOF
}
dump_records a
"$b/graphctl" recover "$s" --quiet
dump_records b
echo "seeds: $(find "$out"/{schema,jsonl,table,records,names} -type f | wc -l) files in $out"
