#!/bin/bash
# notify.sh - the notifier costs what changed, and directory mtimes follow
# their own entries (docs/mount.md, "The live view and the notifier").
#
# With an hour of kernel caching (only the notifier can make changes
# visible) and ~60k live inodes cached by a find, commits that change a
# node, delete one, add an edge and move an edge's end must each be
# visible through every name that shows them, while the invalidations the
# notifier sends stay a handful (counters, not timings), and the mtimes of
# directories whose entries did not change stay put.
. "$top_srcdir/tests/mount/lib_mount.sh"
# Counts what the kernel sends or caches: never beside a cache drop.
kernel_lock || { echo "FAIL - kernel_lock"; exit 1; }
S=$T/store M=$T/mnt
new_store "$S"
awk 'BEGIN {
	for (i = 0; i < 20000; i++)
		printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%05d\",\"age\":1}}\n", i
	for (i = 0; i < 20; i++)
		printf "{\"type\":\"Company\",\"data\":{\"name\":\"c%02d\"}}\n", i
	for (i = 0; i < 3000; i++)
		printf "{\"edge\":\"Knows\",\"from\":\"p%05d\",\"to\":\"p%05d\",\"data\":{\"id\":\"k%05d\"}}\n", i, (i * 7 + 1) % 20000, i
}' | load "$S" merge
mount_gfs "$S" "$M" -o live_timeout=3600 || { bad mount; finish; exit; }
P=$M/nodes/Person
st() { jq ".notifier.$1" "$M/.graphfs/stats"; }
head_is() { test "$(st head_seen)" = "$1"; }
mt() { stat -c %Y.%y "$1"; }

# Cache the live tree in the kernel (names, attributes, links).
n=$(timeout "$(scaled 300)" find "$M/nodes" "$M/edges" | wc -l)
inodes=$(jq .inodes "$M/.graphfs/stats")
echo "# $n names walked, $inodes inodes cached"
check "many inodes cached" test "$inodes" -gt 40000
cat "$P/p00005.json" "$P/p00006.json" "$M/edges/Knows/p00010/p00071.json" >/dev/null
readlink "$P/p00010/out/Knows/p00071.json" >/dev/null
t_company=$(mt "$M/nodes/Company") t_p6=$(mt "$P/p00006") t_p6out=$(mt "$P/p00006/out/Knows")
e0=$(st inval_entry) i0=$(st inval_inode) f0=$(st full_scans)

# 1. a node's bytes change, one node is deleted (overwrite of Person)
gc export "$S" --type Person | sed -e 's/"slug":"p00005","age":1/"slug":"p00005","age":2/' \
	-e '/"slug":"p19999"/d' | load "$S" overwrite
check "commit 1 seen" wait_until 30 head_is 3
check "changed node file read fresh" grep -q '"age":2' "$P/p00005.json"
check "deleted node file gone" test ! -e "$P/p19999.json"
check "deleted node dir gone" test ! -e "$P/p19999"
check "unchanged node dir keeps its mtime" test "$(mt "$P/p00006")" = "$t_p6"
check "unchanged table's dir keeps its mtime" test "$(mt "$M/nodes/Company")" = "$t_company"
check "changed node's dir takes the commit time" test "$(stat -c %Y "$P/p00005")" -ge "$(stat -c %Y "$M/versions/3")"

# 2. an edge added, an edge's bytes changed, an edge deleted (merge + overwrite of Knows)
gc export "$S" --type Knows | sed -e '/"id":"k00020"/d' > "$T/knows"
cat >> "$T/knows" <<'EOF'
{"edge":"Knows","from":"p00006","to":"p00009","data":{"id":"k99999"}}
EOF
load "$S" overwrite < "$T/knows"
check "commit 2 seen" wait_until 30 head_is 4
check "new edge file" test -f "$M/edges/Knows/p00006/p00009.json"
check "new out link" test -L "$P/p00006/out/Knows/p00009.json"
check "new in link" test -L "$P/p00009/in/Knows/p00006.json"
check "deleted edge's file gone" test ! -e "$M/edges/Knows/p00020/p00141.json"
check "its source dir gone (no edges left)" test ! -e "$M/edges/Knows/p00020"
check "its out link gone" test ! -e "$P/p00020/out/Knows/p00141.json"
check "out/Knows of p00006 takes a new mtime" test "$(mt "$P/p00006/out/Knows")" != "$t_p6out"
check "node dir of p00006 keeps its mtime (its row did not change)" test "$(mt "$P/p00006")" = "$t_p6"

# 3. an edge's end moves (same id, new target)
gc export "$S" --type Knows | sed -e 's/"from":"p00010","to":"p00071"/"from":"p00010","to":"p00072"/' | load "$S" overwrite
check "commit 3 seen" wait_until 30 head_is 5
check "moved edge: old name gone" test ! -e "$M/edges/Knows/p00010/p00071.json"
check "moved edge: new name" test -f "$M/edges/Knows/p00010/p00072.json"
check "moved edge: old out link gone" test ! -e "$P/p00010/out/Knows/p00071.json"
check "moved edge: old in link gone" test ! -e "$P/p00071/in/Knows/p00010.json"
check "moved edge: new in link" test -L "$P/p00072/in/Knows/p00010.json"

e1=$(st inval_entry) i1=$(st inval_inode) f1=$(st full_scans)
echo "# 3 commits: $((e1 - e0)) inval_entry, $((i1 - i0)) inval_inode, $((f1 - f0)) full scans, $(st rows_changed) rows changed"
check "no full scan of the vnodes" test "$f1" = "$f0"
check "invalidations cost what changed (< 100 for 3 commits, $inodes inodes cached)" test $((e1 - e0 + i1 - i0)) -lt 100
check "source dir of an untouched source keeps its mtime" test "$(mt "$M/edges/Knows/p00021")" = "$(mt "$M/versions/5/edges/Knows/p00021")"
# 4. a commit changing more rows than a mount tracks inodes takes the
# fallback scan, which must refresh a cached out/ listing too (its
# descriptor names no edge table).
M2=$T/mnt2
mount_gfs "$S" "$M2" -o live_timeout=3600 || bad "second mount"
check "out/ of p00002 lists Knows" test "$(ls "$M2/nodes/Person/p00002/out" | tr '\n' ' ')" = "Knows "
{ awk 'BEGIN { for (i = 100; i < 2200; i++)
	printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%05d\",\"age\":7}}\n", i }'
  echo '{"edge":"WorksAt","from":"p00002","to":"c02"}'; } | load "$S" merge
check "commit 4 seen by the second mount" wait_until 30 out_is 6 jq .notifier.head_seen "$M2/.graphfs/stats"
check "it took the scan" test "$(jq .notifier.full_scans "$M2/.graphfs/stats")" -ge 1
check "cached out/ listing shows the new edge type" test "$(ls "$M2/nodes/Person/p00002/out" | tr '\n' ' ')" = "Knows WorksAt "
check "commit 4 seen by the first mount" wait_until 30 head_is 6
check "live equals versions/6 (names)" diff <(cd "$M" && find nodes/Person/p0000* edges/Knows/p0001* | sort) <(cd "$M/versions/6" && find nodes/Person/p0000* edges/Knows/p0001* | sort)
finish
