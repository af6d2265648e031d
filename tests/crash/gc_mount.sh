#!/bin/bash
# gc_mount.sh - gc with mounts open (docs/branches-design.md §6.2, §6.3;
# invariants 150-152):
#  1. a file open under versions/N keeps reading its bytes and N is kept
#     (held); an unheld versions/M that the kernel had looked up disappears
#     (the notifier drops it), and versions/ no longer lists it;
#  2. log.jsonl keeps one line per graph version, a removed one reduced;
#  3. no row file of the live view changes inode or mtime across compact
#     and gc (the commit times of removed versions stay recorded);
#  4. once the file is closed, the next gc removes N;
#  5. "SIGKILLed mount: gc removes N": a hold ends with its mount;
#  6. an open of versions/V while a gc (parked after arming) fences V
#     waits for it and then fails (V removed), while opens of other
#     versions go on meanwhile (failpoint builds only);
#  7. main's head H: its hold outlives the last live handle (a walk takes
#     no hold per file) and goes once the mount has read a newer head:
#     gc then removes H, which it does not report as held;
#  and fsck is clean after each gc.
. "$top_srcdir/tests/mount/lib_mount.sh"

S=$T/s M=$T/m
new_store "$S"
for i in 1 2 3 4 5; do
	printf '{"type":"Person","data":{"slug":"p%d","name":"gen %d","age":%d}}\n' "$i" "$i" "$i"
	printf '{"type":"Person","data":{"slug":"p1","name":"p1 gen %d"}}\n' "$i"
done | while read -r line; do echo "$line" | load "$S" merge; done
printf '{"type":"Company","data":{"name":"acme"}}\n{"edge":"WorksAt","from":"p1","to":"acme","data":{"id":"w1"}}\n' | load "$S" merge
mount_gfs "$S" "$M" || { bad "mount"; finish; exit 1; }
rows() { (cd "$M" && find nodes edges -mindepth 2 -type f -print0 | sort -z | xargs -0 stat -c '%n %i %Y %y'); }
rows >"$T/rows.before"

gc compact "$S" -q || bad "compact"
h=$(gc snapshot "$S" --json | jq .version)
wait_until 20 out_is "$h" cat "$M/.graphfs/seen" || bad "the mount never showed version $h"

# ---- 1. a held version stays, an unheld one goes ------------------------
N=3 U=4
cp "$M/versions/$N/nodes/Person/p1.json" "$T/n.bytes"
exec 7<"$M/versions/$N/nodes/Person/p1.json"
test -d "$M/versions/$U/nodes" && ok "versions/$U looked up (the kernel caches it)" || bad "versions/$U"
gc gc "$S" --keep-last 1 --json >"$T/gc1.json" || bad "gc failed: $(cat "$T/gc1.json")"
jq -e --argjson n "$N" '.held == [$n]' "$T/gc1.json" >/dev/null && ok "gc kept the held version $N" ||
	bad "gc: $(cat "$T/gc1.json")"
jq -e --argjson n "$N" --argjson u "$U" '(.removed | index($u)) and ((.removed | index($n)) | not) and .files > 0' "$T/gc1.json" >/dev/null &&
	ok "gc removed $U (and others: $(jq -c .removed "$T/gc1.json")), $(jq .files "$T/gc1.json") files, $(jq .bytes_freed "$T/gc1.json") bytes" ||
	bad "gc: $(cat "$T/gc1.json")"
cmp -s - "$T/n.bytes" <&7 && ok "the open file under versions/$N reads its bytes" || bad "open file changed"
cmp -s "$M/versions/$N/nodes/Person/p1.json" "$T/n.bytes" && ok "versions/$N still serves (reopened)" || bad "versions/$N gone"
wait_until 20 test ! -e "$M/versions/$U" && ok "versions/$U disappeared from the mount" || bad "versions/$U still there"
ls "$M/versions" | grep -qx "$U" && bad "versions/ still lists $U" || ok "versions/ does not list $U"
ls "$M/versions" | grep -qx "$N" && ok "versions/ lists the held $N" || bad "versions/ lost $N"
gc fsck "$S" -q >/dev/null && ok "fsck clean after gc" || bad "fsck: $(gc fsck "$S")"

# ---- 2. log.jsonl ----------------------------------------------------------
wait_until 10 out_is "$h" bash -c "wc -l <'$M/log.jsonl'" && ok "log.jsonl keeps $h lines" || bad "log.jsonl: $(wc -l <"$M/log.jsonl") lines"
sed -n "${U}p" "$M/log.jsonl" | jq -e --argjson u "$U" '.version == $u and .removed == true and (.tables | not)' >/dev/null &&
	ok "line $U is the reduced line of removed $U" || bad "line $U: $(sed -n "${U}p" "$M/log.jsonl")"
sed -n "${N}p" "$M/log.jsonl" | jq -e --argjson n "$N" '.version == $n and .tables' >/dev/null &&
	ok "line $N is the full line of kept $N" || bad "line $N: $(sed -n "${N}p" "$M/log.jsonl")"

# ---- 3. row inodes and mtimes ----------------------------------------------
rows >"$T/rows.after"
cmp -s "$T/rows.before" "$T/rows.after" && ok "no row file changed inode or mtime across compact and gc" ||
	bad "rows moved: $(diff "$T/rows.before" "$T/rows.after" | head -4)"
# ---- 4. closed: the next gc removes N -----------------------------------------
exec 7<&-
# byte N of locks/versions.lock is no longer read-locked (reading
# .graphfs/stats would hold the head itself)
ino=$(stat -c %i "$S/locks/versions.lock")
held_n() { awk -v ino="$ino" -v n="$N" '$2 == "OFDLCK" && $4 == "READ" && $7 == n { k = split($6, a, ":"); if (a[k] == ino) f = 1 } END { exit !f }' /proc/locks; }
not_held() { ! held_n; }
wait_until 10 not_held || bad "$N still held after close"
gc gc "$S" --keep-last 1 --json >"$T/gc2.json"
jq -e --argjson n "$N" '.removed == [$n] and .held == []' "$T/gc2.json" >/dev/null && ok "closed: the next gc removes $N" ||
	bad "gc2: $(cat "$T/gc2.json")"
gc fsck "$S" -q >/dev/null && ok "fsck clean" || bad "fsck: $(gc fsck "$S")"
umount_gfs "$M" && mount_gfs "$S" "$M" || bad "remount"
rows >"$T/rows.remount"
cmp -s "$T/rows.before" "$T/rows.remount" && ok "nor for a mount started after gc" ||
	bad "rows moved after remount: $(diff "$T/rows.before" "$T/rows.remount" | head -4)"
umount_gfs "$M" || bad "umount"

# ---- 5. SIGKILLed mount: gc removes N -----------------------------------------
printf '{"type":"Person","data":{"slug":"p9","name":"late"}}\n' | load "$S" merge
printf '{"type":"Person","data":{"slug":"p9","name":"later"}}\n' | load "$S" merge
K=$(( $(gc snapshot "$S" --json | jq .version) - 1 ))
"$GRAPHFS" -f "$S" "$M" 2>"$T/daemon.err" &
pid=$!
wait_until 30 mountpoint -q "$M" || { bad "foreground mount"; kill -KILL "$pid"; finish; exit 1; }
exec 7<"$M/versions/$K/manifest.json"
gc gc "$S" --keep-last 1 --dry-run --json | jq -e --argjson k "$K" '.held == [$k]' >/dev/null &&
	ok "a live mount holds $K (gc --dry-run)" || bad "not held"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
# etcd: the dead mount's hold key lives out its lease's TTL
# (docs/multi-host.md §4.1): wait for that, bounded by the TTL
if [ "${GRAPHFS_MANIFEST:-lmdb}" = etcd ]; then
	unheld() { gc gc "$S" --keep-last 1 --dry-run --json | jq -e '.held == []' >/dev/null; }
	wait_until $(( ${GRAPHFS_LEASE_TTL:-10} + 10 )) unheld &&
		ok "etcd: the SIGKILLed mount's hold ends with its lease" || bad "etcd: still held a TTL after the kill"
fi
gc gc "$S" --keep-last 1 --json >"$T/gc3.json"
jq -e --argjson k "$K" '(.removed | index($k)) and .held == []' "$T/gc3.json" >/dev/null &&
	ok "SIGKILLed mount: gc removes $K" || bad "gc3: $(cat "$T/gc3.json")"
exec 7<&-
timeout 20 fusermount3 -u "$M" || bad "dead mount unmounts"
gc fsck "$S" -q >/dev/null && ok "fsck clean" || bad "fsck: $(gc fsck "$S")"

# ---- 6. an open racing a gc's fence ----------------------------------------
if grep -q '^#define GFS_FAILPOINTS_ENABLED' "${top_builddir:-.}/config.h" 2>/dev/null; then
	export GRAPHFS_FP_DIR=$T/fp
	mkdir -p "$GRAPHFS_FP_DIR"
	printf '{"type":"Person","data":{"slug":"p9","name":"race"}}\n' | load "$S" merge
	printf '{"type":"Person","data":{"slug":"p9","name":"race 2"}}\n' | load "$S" merge
	V=$(( $(gc snapshot "$S" --json | jq .version) - 1 ))
	mount_gfs "$S" "$M" || bad "mount"
	GRAPHFS_FAILPOINTS=gc/after_arm=park timeout "$(scaled 60)" "$GRAPHCTL" gc "$S" --keep-last 1 --json >"$T/gc4.json" &
	gcpid=$!
	fp_wait_reached gc/after_arm 30 >/dev/null || bad "gc never parked"
	timeout "$(scaled 60)" cat "$M/versions/$V/manifest.json" >/dev/null 2>"$T/cat.err" &
	catpid=$!
	if [ "${GRAPHFS_MANIFEST:-lmdb}" = etcd ]; then
		# etcd: the fence is PREFIX/gcfence/V, the daemon waits on a watch
		pfx=$(sed -n 's|^manifest etcd://[^/]*/||p' "$S/FORMAT")
		fenced() { etcdctl --endpoints="$GRAPHFS_TEST_ETCD_ENDPOINTS" get "$pfx/gcfence/$V" --print-value-only | grep -q gcfence; }
		wait_until 10 fenced && ok "etcd: gc's fence key of version $V is there" || bad "etcd: no fence key of version $V"
	else
		ino=$(stat -c %i "$S/locks/versions.lock")
		waiting() { grep -qE -- "-> OFDLCK +ADVISORY +READ .*:$ino $V $V\$" /proc/locks; }
		wait_until 10 waiting && ok "the daemon waits for the fence on byte $V (/proc/locks)" || bad "no waiter on byte $V"
	fi
	wait_until 10 grep -q . "$M/manifest.json" && ok "an open of the head goes on while versions/$V waits for the gc" ||
		bad "the live view is stuck behind the fenced version"
	kill -0 "$catpid" 2>/dev/null && ok "the open of versions/$V waits while gc fences it" || bad "it did not wait"
	fp_release gc/after_arm
	wait "$gcpid" || bad "gc failed"
	if wait "$catpid"; then bad "versions/$V opened after gc removed it"; else ok "then it fails: versions/$V was removed"; fi
	jq -e --argjson v "$V" '.removed | index($v)' "$T/gc4.json" >/dev/null && ok "gc removed $V" || bad "gc4: $(cat "$T/gc4.json")"
	umount_gfs "$M" || bad "umount"
	gc fsck "$S" -q >/dev/null && ok "fsck clean" || bad "fsck: $(gc fsck "$S")"
else
	echo "ok - # SKIP scenario 6 needs --enable-failpoints"
fi
# ---- 7. main's head: its hold lingers until the head moves ----------------
mount_gfs "$S" "$M" || bad "mount 7"
H=$(gc snapshot "$S" --json | jq .version)
wait_until 20 out_is "$H" cat "$M/.graphfs/seen" || bad "the mount never showed version $H"
cat "$M/nodes/Person/p1.json" >/dev/null # a live handle on H, released
if [ "${GRAPHFS_MANIFEST:-lmdb}" = etcd ]; then
	pfx=$(sed -n 's|^manifest etcd://[^/]*/||p' "$S/FORMAT")
	held_h() { etcdctl --endpoints="$GRAPHFS_TEST_ETCD_ENDPOINTS" get --prefix "$pfx/hold/$1/" --keys-only | grep -q .; }
else
	ino=$(stat -c %i "$S/locks/versions.lock")
	held_h() { awk -v ino="$ino" -v n="$1" '$2 == "OFDLCK" && $4 == "READ" && $7 == n { k = split($6, a, ":"); if (a[k] == ino) f = 1 } END { exit !f }' /proc/locks; }
fi
held_h "$H" && ok "the head $H stays held after its last handle" || bad "the head $H is not held after its last handle"
printf '{"type":"Person","data":{"slug":"p9","name":"head moves"}}\n' | load "$S" merge
wait_until 20 out_is "$((H + 1))" cat "$M/.graphfs/seen" || bad "the mount never showed version $((H + 1))"
not_held_h() { ! held_h "$H"; }
wait_until 10 not_held_h && ok "the old head $H's hold went once the mount read $((H + 1))" ||
	bad "the old head $H is still held"
gc gc "$S" --keep-last 1 --json >"$T/gc5.json"
jq -e --argjson h "$H" '(.removed | index($h)) and .held == []' "$T/gc5.json" >/dev/null &&
	ok "gc removes the old head $H, not held" || bad "gc5: $(cat "$T/gc5.json")"
umount_gfs "$M" || bad "umount 7"
gc fsck "$S" -q >/dev/null && ok "fsck clean" || bad "fsck: $(gc fsck "$S")"
finish
