#!/bin/bash
# retain.sh - what a mount sees of compact, and the mount's holds on graph
# versions (docs/branches-design.md §6.2, §6.4; invariants 151, 152):
#  1. compact moves no inode number and no mtime: every row file of the
#     live view has the same `stat -c '%i %Y.%y'` before and after, and the
#     rows read the same.
#  2. an open file under versions/N read-locks byte N of
#     STORE/locks/versions.lock (an OFD lock, seen in /proc/locks); its
#     release drops it; a second handle on N shares one lock; with
#     -o opendir an open directory of the live view holds the version it
#     lists, and main's head stays held after its last handle.
#  3. a SIGKILLed mount's holds end with it (inv 151).
. "$top_srcdir/tests/mount/lib_mount.sh"

S=$T/s M=$T/m
new_store "$S"
for i in 1 2 3; do
	printf '{"type":"Person","data":{"slug":"p%d","name":"v1 %d","age":%d}}\n' $i $i $i
done | load "$S" merge
printf '{"type":"Person","data":{"slug":"p2","name":"v2"}}\n{"type":"Company","data":{"name":"acme"}}\n' | load "$S" merge
printf '{"edge":"WorksAt","from":"p1","to":"acme","data":{"id":"w1"}}\n' | load "$S" merge
mount_gfs "$S" "$M" || { bad "mount"; finish; exit 1; }

# byte offsets of OFD read locks on the store's versions.lock
ino=$(stat -c %i "$S/locks/versions.lock")
held() { awk -v ino="$ino" '$2 == "OFDLCK" && $4 == "READ" { n = split($6, a, ":"); if (a[n] == ino) print $7 }' /proc/locks | sort -n | tr '\n' ' '; }
# row files (not the whole-table exports: a new table version is a new file)
statall() { (cd "$M" && find nodes edges -mindepth 2 -type f -print0 | sort -z | xargs -0 stat -c '%n %i %Y %y' && find nodes edges -mindepth 2 -type f -print0 | sort -z | xargs -0 cat); }

# ---- 1. compact keeps inodes and mtimes ---------------------------------
statall >"$T/before" || bad "stat before"
[ "$(grep -c ' ' "$T/before")" -ge 5 ] && ok "row files listed" || bad "too few files: $(cat "$T/before")"
gc compact "$S" --json >"$T/c.json" && grep -q '"node:Person"' "$T/c.json" && ok "compact wrote node:Person" || bad "compact: $(cat "$T/c.json")"
h=$(gc snapshot "$S" --json | jq .version)
wait_until 20 out_is "$h" cat "$M/.graphfs/seen" || bad "the mount never showed version $h"
statall >"$T/after" || bad "stat after"
cmp -s "$T/before" "$T/after" && ok "every row file: same inode, mtime and bytes after compact" ||
	bad "compact moved something: $(diff "$T/before" "$T/after" | head -5)"

# ---- 2. holds -------------------------------------------------------------
# main's head stays held after the live view's last handle (it lingers
# until the mount reads a newer head: branches-design.md §6.2)
[ "$(held)" = "$h " ] && ok "nothing open: only main's head $h is held" || bad "held: '$(held)', head $h"
exec 7<"$M/versions/2/nodes/Person/p1.json"
[ "$(held)" = "2 $h " ] && ok "an open file under versions/2 holds byte 2" || bad "held: '$(held)'"
exec 8<"$M/versions/2/manifest.json"
[ "$(held)" = "2 $h " ] && ok "a second handle on 2: still one lock" || bad "held: '$(held)'"
exec 7<&-
[ "$(held)" = "2 $h " ] && ok "closing one of two: still held" || bad "held: '$(held)'"
exec 8<&-
wait_until 10 out_is "$h " held && ok "the last release drops it" || bad "held after close: '$(held)'"
# ---- 3. a SIGKILLed mount's holds end -----------------------------------
umount_gfs "$M" || bad "umount"
"$GRAPHFS" -f "$S" "$M" -o opendir 2>"$T/daemon.err" &
pid=$!
wait_until 30 mountpoint -q "$M" || { bad "foreground mount"; kill -KILL "$pid"; finish; exit 1; }
exec 7<"$M/versions/3/manifest.json"
[ "$(held)" = "3 " ] && ok "foreground mount: open file holds 3" || bad "held: '$(held)'"
# With -o opendir the kernel sends OPENDIR: an open live directory holds
# the version it lists (without it the kernel lists by itself: no handle).
python3 - "$M/nodes" "$T/fifo" <<'PY' &
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
os.mkfifo(sys.argv[2] + ".tmp")
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
with open(sys.argv[2]) as f:   # wait until the test has looked
    f.read()
os.close(fd)
PY
py=$!
wait_until 10 test -p "$T/fifo" || bad "no fifo"
[ "$(held)" = "3 $h " ] && ok "-o opendir: an open live directory holds the head it lists ($h)" || bad "held: '$(held)', head $h"
echo >"$T/fifo"; wait "$py"
wait_until 10 out_is "3 $h " held && ok "closedir: the head stays held (it lingers)" || bad "held: '$(held)'"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
[ -z "$(held)" ] && ok "SIGKILL of the mount: its hold is gone (the file is still open here)" || bad "held after SIGKILL: '$(held)'"
exec 7<&-
check "dead mount unmounts" timeout 20 fusermount3 -u "$M"
finish
