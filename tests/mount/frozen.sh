#!/bin/bash
# frozen.sh - versions/N never changes: bytes, sizes, mtimes and inode
# numbers equal on every read, after a remount and on a second mount; tar
# twice is byte-identical; rsync -a reproduces it; a second find / ls -lR is
# served by the kernel (only OPENDIR/RELEASEDIR reach the daemon).
. "$top_srcdir/tests/mount/lib_mount.sh"
S=$T/store M=$T/mnt M2=$T/mnt2
new_store "$S"
awk 'BEGIN {
	for (i = 0; i < 200; i++)
		printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%03d\",\"age\":%d}}\n", i, i % 90
	for (i = 0; i < 200; i++)
		printf "{\"edge\":\"Knows\",\"from\":\"p%03d\",\"to\":\"p%03d\"}\n", i, (i * 7 + 1) % 200
	print "{\"type\":\"Company\",\"data\":{\"name\":\"Acme\"}}"
	print "{\"edge\":\"WorksAt\",\"from\":\"p001\",\"to\":\"Acme\"}"
}' | load "$S" merge
mount_gfs "$S" "$M" || { bad mount; finish; exit; }
V=$M/versions/2

snapshot() { # inode, size, mtime, mode and a content hash of every path
	(cd "$1" && find . -printf '%p %i %s %T@ %m %y %l\n' | LC_ALL=C sort) > "$2"
	(cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) >> "$2"
}
snapshot "$V" "$T/snap1"
check "tree has files" test "$(grep -c '\.json ' "$T/snap1")" -gt 400
tar -C "$V" --sort=name -cf "$T/a.tar" .
tar -C "$V" --sort=name -cf "$T/b.tar" .
check "tar twice is byte-identical" cmp -s "$T/a.tar" "$T/b.tar"

# A new version changes nothing under versions/2.
echo '{"type":"Person","data":{"slug":"p001","age":99}}' | load "$S" merge
wait_until 10 test "$(cat "$M/.graphfs/head")" = 3 || bad "head never moved"
snapshot "$V" "$T/snap2"
check "versions/2 unchanged after version 3" cmp -s "$T/snap1" "$T/snap2"

# Remount, and a second concurrent mount: same everything.
check "unmount" umount_gfs "$M"
mount_gfs "$S" "$M" || bad "remount"
mount_gfs "$S" "$M2" || bad "second mount"
snapshot "$V" "$T/snap3"
snapshot "$M2/versions/2" "$T/snap4"
check "same after remount" cmp -s "$T/snap1" "$T/snap3"
check "same on a second mount" cmp -s "$T/snap1" "$T/snap4"
tar -C "$M2/versions/2" --sort=name -cf "$T/c.tar" .
check "tar identical across mounts" cmp -s "$T/a.tar" "$T/c.tar"
check "inode numbers unique per path" test \
	"$(awk '$7 != "" || 1 {print $2}' <(grep -v '^[0-9a-f]\{64\}' "$T/snap1") | sort | uniq -d | wc -l)" = 0

# rsync -a reproduces the tree (content, mtimes, links).
rsync -a "$V/" "$T/copy/"
check "rsync -a copy equals the version" diff -r --no-dereference "$V" "$T/copy"
check "rsync kept mtimes" test "$(stat -c %Y "$T/copy/nodes/Person/p000.json")" = "$(stat -c %Y "$V/nodes/Person/p000.json")"

# Row mtime = commit time of the version that last changed it.
t2=$(jq .time_ns "$M/versions/2/manifest.json") t3=$(jq .time_ns "$M/versions/3/manifest.json")
check "p001 mtime = version 3 time (live)" test "$(stat -c %Y "$M/nodes/Person/p001.json")" = "$((t3 / 1000000000))"
check "p002 mtime = version 2 time (live)" test "$(stat -c %Y "$M/nodes/Person/p002.json")" = "$((t2 / 1000000000))"
check "p001 mtime = version 2 time in versions/2" test "$(stat -c %Y "$V/nodes/Person/p001.json")" = "$((t2 / 1000000000))"
check "atime = ctime = mtime" test "$(stat -c '%X %Z' "$V/nodes/Person/p001.json")" = "$(stat -c '%Y %Y' "$V/nodes/Person/p001.json")"
check "owner = store owner" test "$(stat -c %u:%g "$V/nodes/Person/p001.json")" = "$(stat -c %u:%g "$S")"

# Kernel caching: the second pass over versions/2 reaches the daemon only
# as OPENDIR/RELEASEDIR.
find "$V" > /dev/null; ls -lR "$V" > /dev/null; cat "$V/nodes/Person.jsonl" > /dev/null
a=$(requests_versions "$M")
find "$V" > /dev/null; ls -lR "$V" > /dev/null; cat "$V/nodes/Person.jsonl" > /dev/null
ls "$V/nodes/Person/nosuch.json" 2>/dev/null
b=$(requests_versions "$M")
extra=$(jq -n --argjson a "$a" --argjson b "$b" \
	'[$b | to_entries[] | select(.value != $a[.key]) | .key] - ["opendir","releasedir","open","release","lookup"] | join(",")')
check "second pass: no requests but opendir/releasedir/open/release (got ${extra})" test "$extra" = '""'
nl=$(jq -n --argjson a "$a" --argjson b "$b" '$b.lookup - $a.lookup')
check "second pass: at most one lookup (the new negative name), got $nl" test "$nl" -le 1
ls "$V/nodes/Person/nosuch.json" 2>/dev/null
c=$(requests_versions "$M")
check "negative entry cached" test "$(jq -n --argjson b "$b" --argjson c "$c" '$c.lookup - $b.lookup')" = 0
finish
