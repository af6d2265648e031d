#!/usr/bin/env bash
# tests/etcd/visible.sh - a request that starts after a load returned sees
# it, on etcd as on LMDB, also when requests share one read of the head
# (docs/multi-host.md §5 "One read, many requests"; invariants 360-361).
#
# A real 3-member cluster; mount A asks member 0 first, every load goes
# through member 2 (another "host"):
#   1. 200 times: a one-row load returns, then at once the row's file is
#      looked up and read in A: present, with the row's bytes, every time
#      (a mount that answered from the head its watch last delivered
#      would miss some: the event reaches member 0 after the load's Txn
#      was acknowledged by the leader);
#   2. 4 reader processes stat names in A without pause (concurrent
#      LOOKUPs, which share head reads) while 100 loads land; each reader
#      reads the slug of the last load that returned (written only after
#      graphctl exited) before each lookup of it: never missing.  The mount
#      shared reads (head_shared > 0) and made fewer reads than lookups;
#   3. the order forced by failpoints (view/after_head_read,
#      view/head_wait, armed at the chosen moment with fp_arm): a lookup that arrives while
#      a read begun before a load returned is in flight does not take that
#      read's answer.
. "$top_srcdir/tests/etcd/etcdlib.sh"
: "${GRAPHFS:?}"
etcd_test gfs-visible fuse
MA=$T/a
on_cleanup() { [ -z "${readers:-}" ] || kill $readers 2>/dev/null; }

echo 'node Person { slug: String @key  name: String }' >"$T/s.pg"
etcd_cluster_start 3 "$T/cluster" || { echo "FAIL - could not start the cluster"; exit 1; }
ok "3-member cluster on $ETCD_ENDPOINTS"
S=$T/store
gctl init "$S" --schema "$T/s.pg" --manifest "etcd://$ETCD_ENDPOINTS/gfs-visible/s" -q &&
	printf '{"type":"Person","data":{"slug":"p0","name":"seed"}}\n' |
	gctl load "$S" --data - -q || { echo "FAIL - init/load"; exit 1; }
mkdir -p "$MA"
GRAPHFS_ETCD_FIRST=0 timeout "$(scaled 30)" "$GRAPHFS" "$S" "$MA" || { echo "FAIL - mount"; exit 1; }
ls "$MA/nodes/Person" >/dev/null

# 1. load through member 2, then at once look the row up and read it in A
miss=$(GRAPHFS_ETCD_FIRST=2 python3 - "$GRAPHCTL" "$S" "$MA" 200 <<'PY'
import json, os, subprocess, sys
ctl, store, mnt, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
miss = []
for i in range(n):
    slug, name = "v%04d" % i, "visible %d" % i
    row = json.dumps({"type": "Person", "data": {"slug": slug, "name": name}})
    subprocess.run([ctl, "load", store, "--data", "-", "-q"], input=(row + "\n").encode(),
                   check=True, timeout=60)
    # graphctl has exited: this lookup begins after the load returned
    path = os.path.join(mnt, "nodes", "Person", slug + ".json")
    try:
        got = json.load(open(path))
        if got.get("slug") != slug or got.get("name") != name:
            miss.append("%s: %r" % (slug, got))
    except OSError as e:
        miss.append("%s: %s" % (slug, e.strerror))
print(len(miss), "; ".join(miss[:5]))
PY
)
[ "${miss%% *}" = 0 ] && ok "200 loads through member 2: each row read in A (member 0) right after its load returned" ||
	bad "rows not visible right after their load returned: $miss"

# 2. concurrent lookups share head reads, and still see every load that
# returned before they began
reads0=$(stat_of "$MA" "j['head_reads']") shared0=$(stat_of "$MA" "j['head_shared']")
echo none >"$T/last"
readers=
for r in 1 2 3 4; do
	python3 - "$MA" "$T/last" "$T/stop" "$T/reader.$r" "$r" <<'PY' &
import os, sys
mnt, last, stop, out, r = sys.argv[1:6]
d = os.path.join(mnt, "nodes", "Person")
bad, checks, k = [], 0, 0
while not os.path.exists(stop):
    slug = open(last).read().strip()     # a load that has returned
    if slug != "none":
        checks += 1
        if not os.path.exists(os.path.join(d, slug + ".json")):
            bad.append(slug)
    k += 1                                # a name never there: a LOOKUP each time
    os.path.exists(os.path.join(d, "missing-%s-%d.json" % (r, k)))
open(out, "w").write("%d %d %s\n" % (checks, len(bad), " ".join(bad[:5])))
PY
	readers="$readers $!"
done
for i in $(seq 1 100); do
	printf '{"type":"Person","data":{"slug":"c%04d","name":"c"}}\n' "$i" |
		GRAPHFS_ETCD_FIRST=2 gctl load "$S" --data - -q || bad "load c$i"
	printf 'c%04d\n' "$i" >"$T/last.tmp" && mv "$T/last.tmp" "$T/last"
done
touch "$T/stop"
wait $readers
readers=
checks=0 missed=0
for r in 1 2 3 4; do
	read -r c m rest <"$T/reader.$r" || { bad "reader $r reported nothing"; continue; }
	checks=$((checks + c)) missed=$((missed + m))
	[ "$m" = 0 ] || bad "reader $r: $m lookups missed a load that had returned: $rest"
done
reads=$(( $(stat_of "$MA" "j['head_reads']") - reads0 ))
shared=$(( $(stat_of "$MA" "j['head_shared']") - shared0 ))
[ "$checks" -gt 100 ] && [ "$missed" = 0 ] &&
	ok "4 concurrent readers: $checks lookups of the last returned load, none missed" ||
	bad "concurrent readers: $checks checks, $missed missed"
[ "$shared" -gt 0 ] && [ "$reads" -gt 0 ] &&
	ok "head reads shared: $reads reads answered $((reads + shared)) requests ($shared shared)" ||
	bad "no head read was shared ($reads reads, $shared shared)"

# 3. the order, forced: R1's lookup has its read's answer (without "late")
# but has not given it (parked at view/after_head_read); "late" is loaded
# and returns; R2's lookup of "late" arrives while R1's read is in flight
# (parked at view/head_wait, then released).  R2 must not take R1's
# answer: it waits for R1's read to end and reads again.  Mount B arms
# both points with "@arm": each fires once, at the hit after fp_arm.
if grep -q '^#define GFS_FAILPOINTS_ENABLED' "$top_builddir/config.h" 2>/dev/null; then
	MB=$T/b FP=$T/fp
	mkdir -p "$MB" "$FP"
	export GRAPHFS_FP_DIR=$FP
	GRAPHFS_FAILPOINTS=view/after_head_read=park@arm,view/head_wait=park@arm \
		GRAPHFS_ETCD_FIRST=0 timeout "$(scaled 30)" "$GRAPHFS" "$S" "$MB" >"$T/b.log" 2>&1
	if mountpoint -q "$MB" && ls "$MB/nodes/Person" >/dev/null; then
		fp_arm view/after_head_read
		stat "$MB/nothing-here" >"$T/r1.out" 2>&1 &  # another directory: the kernel does not order it with R2
		r1=$!
		fp_wait_reached view/after_head_read 30 >/dev/null || bad "R1 never parked after its head read"
		printf '{"type":"Person","data":{"slug":"late","name":"after R1"}}\n' |
			GRAPHFS_ETCD_FIRST=2 gctl load "$S" --data - -q || bad "load late"
		fp_arm view/head_wait
		cat "$MB/nodes/Person/late.json" >"$T/r2.out" 2>"$T/r2.err" &
		r2=$!
		fp_wait_reached view/head_wait 30 >/dev/null || bad "R2 never waited behind R1's read"
		fp_release view/head_wait
		fp_release view/after_head_read
		wait $r1; wait $r2; r2rc=$?
		grep -q 'No such file' "$T/r1.out" || bad "R1: $(cat "$T/r1.out")"
		[ "$r2rc" = 0 ] && grep -q '"name":"after R1"' "$T/r2.out" &&
			ok "a lookup arriving during a read begun before the load returned reads again and sees the load" ||
			bad "R2 took the answer of a read begun before the load returned (rc $r2rc: $(cat "$T/r2.err" "$T/r2.out"))"
	else
		bad "mount B ($(tail -3 "$T/b.log"))"
	fi
	rm -f "$FP"/*.arm
	fp_release view/head_wait; fp_release view/after_head_read
	timeout 20 fusermount3 -u "$MB" || bad "unmount B"
else
	echo "# not a failpoint build: the forced order (part 3) is not checked"
fi

timeout 20 fusermount3 -u "$MA" || bad "unmount"
[ "$fails" = 0 ] && echo "PASS visible.sh" || echo "FAILED visible.sh: $fails"
exit $(( fails > 0 ))
