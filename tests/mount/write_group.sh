#!/bin/bash
# write_group.sh - group commit through the mount, made deterministic with
# a failpoint (issue 10 req. 7; docs/mount.md "Group commit"): the commit
# thread parks inside its first commit (apply/after_locks); 7 good files
# and 1 bad one are closed meanwhile and wait in its queue (seen in
# .graphfs/stats); once released, the 7 good ones are published together
# as ONE version whose log record names all 7 writers, the bad close()
# alone fails with EINVAL, and fsck is clean.
. "$top_srcdir/tests/mount/lib_mount.sh"
if ! grep -q '^#define GFS_FAILPOINTS_ENABLED' "$top_builddir/config.h" 2>/dev/null; then
	echo "SKIP: not configured with --enable-failpoints"
	exit 77
fi
S=$T/store M=$T/mnt
GRAPHFS_FP_DIR=$T/fp; mkdir -p "$GRAPHFS_FP_DIR"; export GRAPHFS_FP_DIR
new_store "$S"
printf '%s\n' '{"type":"Person","data":{"slug":"alice"}}' | load "$S" merge
GRAPHFS_FAILPOINTS='apply/after_locks=park@1' mount_gfs "$S" "$M" || { bad mount; finish; exit; }
P=$M/nodes/Person
queued() { timeout 10 jq -r .writes.queued "$M/.graphfs/stats"; }

printf '{"slug":"first"}\n' > "$T/first.json"
cp "$T/first.json" "$P/first.json" & first=$!
check "the first commit parks" fp_wait_reached apply/after_locks 30
for i in 1 2 3 4 5 6 7; do
	printf '{"slug":"g%d"}\n' "$i" > "$T/g$i.json"
	( cp "$T/g$i.json" "$P/g$i.json" || echo "g$i failed" ) > "$T/out.$i" 2>&1 &
done
printf '{"slug":' > "$T/bad.json"
( cp "$T/bad.json" "$P/bad.json" 2>/dev/null && echo "bad accepted" ) > "$T/out.bad" &
check "8 closes queued behind the parked commit" wait_until 30 out_is 8 queued
fp_release apply/after_locks
wait "$first"; first_rc=$?
wait
check "the first close succeeded" test "$first_rc" = 0
check "7 good closes succeeded, the bad one failed" test -z "$(cat "$T"/out.*)"
check "versions: the load, the first file, then ONE for the 7" test "$(gc log "$S" | tail -n 1 | awk '{print $1}')" = 4
check "that version's log record names 7 writers" test "$(gc log "$S" | tail -n 1 | grep -o '"op":"put"' | wc -l)" = 7
check "all 7 nodes there" test "$(ls "$P" | grep -c '^g[1-7]\.json$')" = 7
check "the bad file left nothing" test ! -e "$P/bad.json"
check "stats: 2 batches (the first file; the 8 queued), 2 versions" test "$(timeout 10 jq -c '[.writes.batches, .writes.changes, .writes.versions]' "$M/.graphfs/stats")" = "[2,9,2]"
check "fsck clean" gc fsck "$S"
finish
