#!/bin/bash
# budget.sh - the daemon tracks a bounded number of inodes
# (docs/mount.md, "Memory"): with -o max_inodes=2000, `ls -l` and `find`
# over 20,000 nodes (40,000 names, plus a versions/N tree) still show every
# name with its exact size, while the inodes the daemon tracks settle near
# the budget: listings hand out bare names past it, and the pruner asks the
# kernel to drop least recently used names, whose FORGETs free them.
. "$top_srcdir/tests/mount/lib_mount.sh"
# Counts what the kernel sends or caches: never beside a cache drop.
kernel_lock || { echo "FAIL - kernel_lock"; exit 1; }
S=$T/store M=$T/mnt
new_store "$S"
awk 'BEGIN { for (i = 0; i < 20000; i++)
	printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%05d\",\"age\":%d}}\n", i, i % 90 }' | load "$S" merge
mount_gfs "$S" "$M" -o max_inodes=2000 || { bad mount; finish; exit; }
P=$M/nodes/Person
stat_of() { jq ".$1" "$M/.graphfs/stats"; }

ls -l "$P" > "$T/ls" || bad "ls -l"
check "ls -l lists every name" test "$(grep -c '^[-dl]' "$T/ls")" = 40000
# Every node file's size is its bytes' (ls -l would show the size the
# kernel got, bare entry or not).
awk '$1 ~ /^-/ { print $9, $5 }' "$T/ls" | sort > "$T/sizes"
(cd "$P" && for f in p*.json; do printf '%s %s\n' "$f" "$(cat "$f" | wc -c)"; done) | sort > "$T/real"
check "sizes exact" cmp -s "$T/sizes" "$T/real"
check "some entries went bare" test "$(stat_of bare_entries)" -gt 0
check "names were pruned" test "$(stat_of pruned)" -gt 0
check "find over versions/2 sees every node" test "$(find "$M/versions/2/nodes/Person" -name '*.json' | wc -l)" = 20000
# The pruner runs every poll; the count settles under budget plus what a
# poll interval can add.
check "tracked inodes settle near the budget" wait_until 30 out_le 4000 stat_of inodes
echo "# inodes $(stat_of inodes), pruned $(stat_of pruned), bare $(stat_of bare_entries)"
finish
