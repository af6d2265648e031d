#!/bin/bash
# frozen.sh - versions/N never changes: bytes, sizes, mtimes and inode
# numbers equal on every read, after a remount and on a second mount; tar
# twice is byte-identical; rsync -a reproduces it; a second find / ls -lR is
# served by the kernel (only OPENDIR/RELEASEDIR reach the daemon).
. "$top_srcdir/tests/mount/lib_mount.sh"
# Counts what the kernel sends or caches: never beside a cache drop.
kernel_lock || { echo "FAIL - kernel_lock"; exit 1; }
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
wait_until 10 out_is 3 cat "$M/.graphfs/head" || bad "head never moved"
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
# as OPENDIR/RELEASEDIR, OPEN/RELEASE and the LOOKUP of the new negative
# name.  Memory reclaim may still take back what the kernel cached, at any
# time and with no visible pressure (docs/mount.md, Caching): an inode,
# looked up again after its FORGET (and, since Linux 6.13, given one
# GETATTR when another inode was evicted during that LOOKUP), or pages of
# a listing, a symlink or a file, read again (READDIRPLUS+READDIR, counted
# once per listing in listings_versions; READLINK; READ).  So a LOOKUP or
# GETATTR passes only with a FORGET behind it, and re-reads only if few
# (a twentieth of the tree) or matched by FORGETs (twice their number:
# reclaim that evicts inodes takes pages of the surviving ones too): reclaim
# took up to 12 listings and 25 links in 2 s here, a lost cache flag
# re-reads all 1400 listings, 400 links or 400 files.  The superblock is
# writable (no -o ro), so each such re-read marks the inode's atime stale
# and its next stat sends one GETATTR: a GETATTR passes with a FORGET or a
# re-read behind it (docs/mount.md, "A writable superblock"); a listing
# re-read is any READDIR(PLUS), since a listing whose cache pages go midway
# goes on uncached from that offset (not counted in listings_versions).
# A re-read during the first pass, after that pass's last stat of the
# inode, leaves its GETATTR to the second: those count too (seen on a busy
# machine: 4 READDIRPLUS in the second pass, 5 GETATTRs).
reclaim_seen() { # the FORGETs and listings from offset 0 on versions/N
	timeout 10 jq -c '{f: .forgotten_versions, l: .listings_versions}' "$1/.graphfs/stats"
}
pass() { # lists, stats, reads every file and link target of versions/2
	find "$V" > /dev/null; ls -lR "$V" > /dev/null
	find "$V" -type f -exec cat {} + > /dev/null
}
a0=$(requests_versions "$M")
pass
a=$(requests_versions "$M") ea=$(reclaim_seen "$M")
sleep 1.5 # outlasts live_timeout: a frozen inode cached only that long fails
pass
ls "$V/nodes/Person/nosuch.json" 2>/dev/null
b=$(requests_versions "$M") eb=$(reclaim_seen "$M")
f=$(jq -n --argjson a "$ea" --argjson b "$eb" '$b.f - $a.f')
l=$(jq -n --argjson a "$ea" --argjson b "$eb" '$b.l - $a.l')
few=$(($(find "$V" | wc -l) / 20))
extra=$(jq -n -r --argjson a0 "$a0" --argjson a "$a" --argjson b "$b" --argjson f "$f" \
	--argjson l "$l" --argjson few "$few" '
	($b | with_entries(.value -= $a[.key])) as $d
	| ($a | with_entries(.value -= $a0[.key])) as $p
	| [($d | del(.opendir, .releasedir, .open, .release, .lookup, .getattr,
		     .readdirplus, .readdir, .readlink, .read)
	    | to_entries[] | select(.value != 0) | .key),
	   (select($d.lookup > 1 + $f) | "lookup"),
	   (select($d.getattr > $f + $d.readdir + $d.readdirplus + $d.readlink + $d.read
				 + $p.readdir + $p.readdirplus + $p.readlink + $p.read) | "getattr"),
	   (select($l + $d.readlink + $d.read > 2 * $f + $few)
	    | "listings+readlink+read")]
	| join(",")')
check "second pass: no requests but opendir/releasedir/open/release and the new negative name, save what reclaim explains (got \"${extra}\"; forgotten $f, listings $l, few $few; $(jq -n -c --argjson a "$a" --argjson b "$b" '$b | with_entries(.value -= $a[.key]) | with_entries(select(.value != 0))'); first pass $(jq -n -c --argjson a "$a0" --argjson b "$a" '$b | with_entries(.value -= $a[.key]) | with_entries(select(.value != 0))'))" test -z "$extra"
ls "$V/nodes/Person/nosuch.json" 2>/dev/null
c=$(requests_versions "$M") ec=$(reclaim_seen "$M")
# A negative entry has no FORGET: with inodes evicted since the first pass,
# it may have gone too.
check "negative entry cached" test "$(jq -n --argjson b "$b" --argjson c "$c" \
	--argjson ea "$ea" --argjson ec "$ec" '$c.lookup - $b.lookup == 0 or $ec.f > $ea.f')" = true
finish
