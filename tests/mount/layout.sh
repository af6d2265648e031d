#!/bin/bash
# layout.sh - the tree of DESIGN.md §5: names, bytes, exact sizes, the
# whole-table files against `graphctl export`, symlink walking, odd keys.
. "$top_srcdir/tests/mount/lib_mount.sh"
S=$T/store M=$T/mnt
new_store "$S"
long=$(printf 'K%.0s' $(seq 1 300))
load "$S" merge <<JSONL
{"type":"Person","data":{"slug":"alice","name":"Alice","age":30}}
{"type":"Person","data":{"slug":"bob","name":"Bob"}}
{"type":"Person","data":{"slug":"a/b%c~d"}}
{"type":"Person","data":{"slug":".hidden"}}
{"type":"Person","data":{"slug":"x.json"}}
{"type":"Person","data":{"slug":"nul\u0000byte\nline"}}
{"type":"Person","data":{"slug":""}}
{"type":"Person","data":{"slug":"$long"}}
{"type":"Person","data":{"slug":"${long}2"}}
{"type":"Company","data":{"name":"Acme"}}
{"edge":"Knows","from":"alice","to":"bob"}
{"edge":"Knows","from":"alice","to":"bob","data":{"id":"k2"}}
{"edge":"Knows","from":"bob","to":"alice"}
{"edge":"Knows","from":".hidden","to":"a/b%c~d"}
{"edge":"WorksAt","from":"alice","to":"Acme","data":{"since":"2020-01-01"}}
JSONL
mount_gfs "$S" "$M" || { bad "mount"; finish; exit; }
ok "mount"

# Root layout.
want=".graphfs HEAD branches edges ingest log.jsonl manifest.json nodes schema.pg versions"
got=$(cd "$M" && ls -A | LC_ALL=C sort | tr '\n' ' ')
check "root lists $want" test "$got" = "$want "
check "HEAD -> versions/2" test "$(readlink "$M/HEAD")" = versions/2
check "schema.pg is the schema" cmp -s "$M/schema.pg" "$SCHEMA"
check "manifest.json names version 2" test "$(jq .version "$M/manifest.json")" = 2
check "manifest.json pins node:Person" test "$(jq '.tables["node:Person"]' "$M/manifest.json")" = 2
check "log.jsonl has one line per version" test "$(wc -l < "$M/log.jsonl")" = 2
check "log.jsonl line 2 = manifest.json" cmp -s <(sed -n 2p "$M/log.jsonl") "$M/manifest.json"
check ".graphfs/head" test "$(cat "$M/.graphfs/head")" = 2
check ".graphfs/stats is JSON" jq -e .requests "$M/.graphfs/stats"
check ".graphfs/options names the store" grep -q "^store=$S\$" "$M/.graphfs/options"
check ".graphfs/sidecars.jsonl is empty" test ! -s "$M/.graphfs/sidecars.jsonl"

# Whole-table files are exactly graphctl export, live and frozen.
for t in Person Company; do
	check "nodes/$t.jsonl = export" cmp -s "$M/nodes/$t.jsonl" <(gc export "$S" --type "$t")
	check "versions/2/nodes/$t.jsonl = export" cmp -s "$M/versions/2/nodes/$t.jsonl" <(gc export "$S" --version 2 --type "$t")
done
for t in Knows WorksAt; do
	check "edges/$t.jsonl = export" cmp -s "$M/edges/$t.jsonl" <(gc export "$S" --type "$t")
done
check "versions/1 tables are empty" test ! -s "$M/versions/1/nodes/Person.jsonl"

# Every file's stat size is its byte count.
n=0 badsz=0
while IFS= read -r -d '' f; do
	n=$((n + 1))
	[ "$(stat -c %s "$f")" = "$(wc -c < "$f")" ] || { badsz=$((badsz + 1)); echo "# size of $f"; }
done < <(find "$M/nodes" "$M/edges" "$M/versions" "$M/schema.pg" "$M/manifest.json" -type f -print0)
check "exact sizes ($n files)" test "$badsz" = 0 -a "$n" -gt 20

# A node file is the data object of its export line plus "\n".
check "alice.json" test "$(cat "$M/nodes/Person/alice.json")" = '{"slug":"alice","name":"Alice","age":30}'
check "node files = export data objects" cmp -s \
	<(gc export "$S" --type Person | jq -c .data | LC_ALL=C sort) \
	<(find "$M/nodes/Person" -maxdepth 1 -name '*.json' -exec cat {} + | jq -c . | LC_ALL=C sort)

# Edge files: by target key, the second edge of a pair by id.
check "edges/Knows/alice/bob.json" test -f "$M/edges/Knows/alice/bob.json"
check "edges/Knows/alice/bob~k2.json" test "$(jq -r .id "$M/edges/Knows/alice/bob~k2.json")" = k2
check "edges/WorksAt/alice/Acme.json" test "$(jq -r .since "$M/edges/WorksAt/alice/Acme.json")" = 2020-01-01
check "edges/Knows/ lists sources" test "$(ls "$M/edges/Knows" | LC_ALL=C sort | tr '\n' ' ')" = "%2Ehidden alice bob "

# Odd keys: one reversible name each.
for nm in 'a%2Fb%25c%7Ed' '%2Ehidden' 'x%2Ejson' 'nul%00byte%0Aline' '%'; do
	check "odd key file $nm.json" test -f "$M/nodes/Person/$nm.json"
	check "odd key dir $nm/" test -d "$M/nodes/Person/$nm"
done
check "key a/b%c~d round-trips" test "$(jq -r .slug "$M/nodes/Person/a%2Fb%25c%7Ed.json")" = 'a/b%c~d'
check "empty key" test "$(jq -r .slug "$M/nodes/Person/%.json")" = ''
check "non-canonical name is absent" test ! -e "$M/nodes/Person/%61lice.json"
check "lower-case escape is absent" test ! -e "$M/nodes/Person/x%2ejson.json"
nlong=$(ls "$M/nodes/Person" | grep -c '%h[0-9A-F]\{16\}\.json$')
check "two hashed long names" test "$nlong" = 2
for f in "$M"/nodes/Person/K*%h*.json; do
	check "hashed name ${f##*/} <= 255 and resolves" test "${#f}" -gt 0 -a "$(jq -r .slug "$f" | wc -c)" -gt 300
done
check "name too long is ENAMETOOLONG/ENOENT" test ! -e "$M/nodes/Person/$long$long.json"

# Walking the graph through symlinks.
check "out/Knows/bob.json -> bob" test "$(readlink "$M/nodes/Person/alice/out/Knows/bob.json")" = ../../../../Person/bob.json
check "follow out link" cmp -s "$M/nodes/Person/alice/out/Knows/bob.json" "$M/nodes/Person/bob.json"
check "out/Knows/bob~k2.json" test -L "$M/nodes/Person/alice/out/Knows/bob~k2.json"
check "in/Knows/alice.json on bob" cmp -s "$M/nodes/Person/bob/in/Knows/alice.json" "$M/nodes/Person/alice.json"
check "out/WorksAt crosses types" cmp -s "$M/nodes/Person/alice/out/WorksAt/Acme.json" "$M/nodes/Company/Acme.json"
check "in/WorksAt on Company" test -L "$M/nodes/Company/Acme/in/WorksAt/alice.json"
check "Company has no out/Knows" test ! -e "$M/nodes/Company/Acme/out/Knows"
# out/ and in/ list only the edge types the node has; any type the schema
# allows there still resolves, as an empty directory.
check "alice/out lists Knows and WorksAt" test "$(ls "$M/nodes/Person/alice/out" | tr '\n' ' ')" = "Knows WorksAt "
check "bob/out lists Knows only" test "$(ls "$M/nodes/Person/bob/out" | tr '\n' ' ')" = "Knows "
check "alice/in lists Knows only" test "$(ls "$M/nodes/Person/alice/in" | tr '\n' ' ')" = "Knows "
check "Acme/out is empty" test -z "$(ls "$M/nodes/Company/Acme/out")"
check "bob/out/WorksAt still resolves" test -d "$M/nodes/Person/bob/out/WorksAt"
check "and is empty" test -z "$(ls "$M/nodes/Person/bob/out/WorksAt")"
check "versions/2 lists the same" test "$(ls "$M/versions/2/nodes/Person/bob/out" | tr '\n' ' ')" = "Knows "
check "find walks only existing edge dirs (bob, in, in/Knows, out, out/Knows)" test "$(find "$M/nodes/Person/bob" -type d | wc -l)" = 5
check "odd keys link" cmp -s "$M/nodes/Person/%2Ehidden/out/Knows/a%2Fb%25c%7Ed.json" "$M/nodes/Person/a%2Fb%25c%7Ed.json"
check "two hops: alice -> bob -> alice" cmp -s \
	"$M/nodes/Person/$(basename "$(readlink "$M/nodes/Person/alice/out/Knows/bob.json")" .json)/out/Knows/alice.json" \
	"$M/nodes/Person/alice.json"
check "links resolve inside versions/2" cmp -s "$M/versions/2/nodes/Person/alice/out/Knows/bob.json" "$M/nodes/Person/bob.json"
check "no dangling links" test -z "$(find -L "$M/nodes" "$M/versions/2/nodes" -type l)"

# Whole-table files are read in 1 MiB requests: the mount's readahead is
# raised once INIT is done (root only; the suite runs as root).
bdi=$(awk -v m="$M" '$5 == m { print $3 }' /proc/self/mountinfo | tail -1)
if [ "$(id -u)" = 0 ]; then
	check "readahead raised to 1 MiB" test "$(cat "/sys/class/bdi/$bdi/read_ahead_kb")" = 1024
fi

# Directory and file names are unambiguous: a node dir never ends in .json.
check "no dir named *.json" test -z "$(find "$M/nodes" -type d -name '*.json')"

# The first edge of a pair is named <to>.json even when another edge of the
# pair has a smaller id: a lookup scans the pair's edges until the name
# matches (it stopped after the first, answering a bogus 1-byte file that
# open called ENOENT; found by tests/model/model.py).
S2=$T/pair M2=$T/mpair
new_store "$S2"
printf '%s\n' '{"type":"Person","data":{"slug":"x"}}' \
	'{"edge":"Knows","from":"x","to":"x","data":{"id":"k3"}}' | load "$S2" merge
printf '%s\n' '{"edge":"Knows","from":"x","to":"x","data":{"id":"k2"}}' | load "$S2" merge
# A load re-points k1 (y -> x, the first of its pair) into the pair x -> x,
# which has its first edge already: k1 joins as a new edge would (it kept
# its old flag, and two edges were both named x.json; found by the model).
printf '%s\n' '{"type":"Person","data":{"slug":"y"}}' \
	'{"edge":"Knows","from":"y","to":"x","data":{"id":"k1"}}' | load "$S2" merge
printf '%s\n' '{"edge":"Knows","from":"x","to":"x","data":{"id":"k1"}}' | load "$S2" merge
mount_gfs "$S2" "$M2" || bad "mount the pair store"
check "re-pointed: one name per edge" test "$(ls "$M2/edges/Knows/x" | tr '\n' ' ')" = "x.json x~k1.json x~k2.json "
check "re-pointed: k1 is x~k1.json" test "$(cat "$M2/edges/Knows/x/x~k1.json")" = '{"id":"k1"}'
check "re-pointed: out/ lists each once" test "$(ls "$M2/nodes/Person/x/out/Knows" | sort | uniq -d)" = ""
check "re-pointed: k1 before, under versions/4" test "$(cat "$M2/versions/4/edges/Knows/y/x.json")" = '{"id":"k1"}'
check "pair: the first edge (k3) is x.json" test "$(cat "$M2/edges/Knows/x/x.json")" = '{"id":"k3"}'
check "pair: the other is x~k2.json" test "$(cat "$M2/edges/Knows/x/x~k2.json")" = '{"id":"k2"}'
check "pair: x.json's size" test "$(stat -c %s "$M2/edges/Knows/x/x.json")" = 12
check "pair: the out/ link of k3" test "$(readlink "$M2/nodes/Person/x/out/Knows/x.json")" = ../../../../Person/x.json
check "pair: the in/ link of k3" test "$(readlink "$M2/nodes/Person/x/in/Knows/x.json")" = ../../../../Person/x.json
check "pair: the same under versions/3" test "$(cat "$M2/versions/3/edges/Knows/x/x.json")" = '{"id":"k3"}'
check "pair: and under branches/main" test "$(cat "$M2/branches/main/edges/Knows/x/x.json")" = '{"id":"k3"}'
# A rename through the mount moves the whole pair x -> x to z -> z: each
# edge keeps its name there, so k3 stays the plain z.json (the re-key
# dropped the flags and k1, the smallest id, took z.json; found by the
# model, seed 910294).
mv "$M2/nodes/Person/x.json" "$M2/nodes/Person/z.json"
check "renamed pair: k3 is still the plain name" test "$(cat "$M2/edges/Knows/z/z.json")" = '{"id":"k3"}'
check "renamed pair: the others keep ~id" test "$(ls "$M2/edges/Knows/z" | tr '\n' ' ')" = "z.json z~k1.json z~k2.json "
check "renamed pair: out/ of z the same" test "$(ls "$M2/nodes/Person/z/out/Knows" | tr '\n' ' ')" = "z.json z~k1.json z~k2.json "
check "pair: a name of no edge is ENOENT" test ! -e "$M2/edges/Knows/x/y.json"
umount_gfs "$M2"
finish
