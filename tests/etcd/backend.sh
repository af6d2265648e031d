#!/bin/bash
# backend.sh - a store whose manifest is on etcd (src/kv_etcd.c), against a
# real 3-member cluster that this test starts (tests/etcd/cluster.sh):
#   1. kv.h's contract and the etcd cases of check_kv (conflict rerun, fence,
#      read-your-writes, paging, --max-txn-ops) on this cluster
#   2. init --manifest: a bad URL, an unreachable cluster (every endpoint
#      named, no FORMAT left), a prefix that holds a store: refused
#   3. init, load, export, log, snapshot, branch create + merge, fsck
#   4. a writer killed at commit/before_publish and at commit/after_table:
#      recover rolls forward / back, one audit record, fsck clean
#   5. two loaders of two tables in two processes, each asking another
#      member first, released together at the publish: both commit (one
#      reruns its manifest write), history consistent
#   6. graphfs mounts the store: versions/N and the live view after a load
#   7. a member killed: writes and reads go on with 2 of 3
# Bounded (~1 min); docs/testing.md "etcd tests".
. "$top_srcdir/tests/etcd/etcdlib.sh"
: "${GRAPHFS:?}"
etcd_test gfs-kvetcd failpoints
CHECK_KV=$top_builddir/tests/unit/check_kv
[ -x "$CHECK_KV" ] || { echo "FAIL - $CHECK_KV not built (make check builds it)"; exit 1; }
M=$T/mnt
# has STORE PATTERN: the head's export has a row matching PATTERN (no
# pipe into grep -q: pipefail would count export's SIGPIPE)
has() { gctl export "$1" >"$T/exp" && grep -q "$2" "$T/exp"; }

SCHEMA=$T/s.pg
cat >"$SCHEMA" <<'EOF'
node Person { slug: String @key  name: String  n: I64? }
node Company { domain: String @key  name: String }
edge WorksAt: Person -> Company { role: String? }
EOF
people() { # people N TAG
	awk -v n="$1" -v t="$2" 'BEGIN { for (i = 0; i < n; i++)
		printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%04d\",\"name\":\"P %s\",\"n\":%d}}\n", i, t, i }'
}
companies() { # companies N TAG
	awk -v n="$1" -v t="$2" 'BEGIN { for (i = 0; i < n; i++)
		printf "{\"type\":\"Company\",\"data\":{\"domain\":\"c%03d.example\",\"name\":\"C %s\"}}\n", i, t }'
}

etcd_cluster_start 3 "$T/cluster" || { echo "FAIL - could not start the cluster"; exit 1; }
ok "3-member cluster on $ETCD_ENDPOINTS"
EPS=$ETCD_ENDPOINTS
url() { echo "etcd://$EPS/gfs-test/$1"; }

# 1. the unit cases
if GRAPHFS_TEST_ETCD_ENDPOINTS=$EPS with_timeout 120 "$CHECK_KV" >"$T/ck" 2>&1 &&
	grep -q 'Checks: 1[3-9], Failures: 0, Errors: 0' "$T/ck"; then
	ok "check_kv: kv.h's contract and the etcd cases on the cluster"
else
	bad "check_kv on etcd: $(tail -5 "$T/ck")"
fi

# 2. init's refusals
S=$T/store
gctl init "$T/x1" --schema "$SCHEMA" --manifest "etcd://127.0.0.1/p" 2>"$T/err"
[ $? = 1 ] && grep -q "127.0.0.1" "$T/err" && [ ! -e "$T/x1" ] &&
	ok "a URL without a port: refused before anything is created ($(head -c 120 "$T/err"))" ||
	bad "bad URL: $(cat "$T/err")"
gctl init "$T/x2" --schema "$SCHEMA" --manifest "etcd://127.0.0.1:1,127.0.0.1:2/p" 2>"$T/err"
[ $? = 1 ] && grep -q "127.0.0.1:1" "$T/err" && grep -q "127.0.0.1:2" "$T/err" &&
	[ ! -e "$T/x2/FORMAT" ] &&
	ok "an unreachable cluster: the error names every endpoint, no FORMAT" ||
	bad "unreachable: $(cat "$T/err")"

# 3. the commands
gctl init "$S" --schema "$SCHEMA" --manifest "$(url a)" -q &&
	grep -qx "manifest $(url a)" "$S/FORMAT" && [ ! -e "$S/manifest" ] &&
	ok "init: FORMAT names the manifest, no STORE/manifest" || bad "init on etcd"
gctl init "$T/x3" --schema "$SCHEMA" --manifest "$(url a)" 2>"$T/err"
[ $? = 1 ] && grep -q "already holds" "$T/err" &&
	ok "init on a prefix that holds a store: refused ($(head -c 100 "$T/err"))" ||
	bad "second init on one prefix: $(cat "$T/err")"
etcdctl --endpoints="$EPS" put gfs-test/other/x 1 >/dev/null
gctl init "$T/x4" --schema "$SCHEMA" --manifest "$(url other)" 2>"$T/err"
[ $? = 1 ] && grep -q "already holds keys" "$T/err" && ok "init on a prefix with foreign keys: refused" ||
	bad "init beside foreign keys: $(cat "$T/err")"
{ people 30 v1; companies 5 v1; } >"$T/v1.jsonl"
gctl load "$S" --data "$T/v1.jsonl" -q && ok "load" || bad "load"
[ "$(gctl export "$S" | wc -l)" = 35 ] && ok "export: 35 rows" || bad "export: $(gctl export "$S" | wc -l) rows"
[ "$(gctl snapshot "$S" --json | js 'j["version"]')" = 2 ] && ok "snapshot: version 2" || bad "snapshot"
gctl log "$S" >"$T/log" && grep -q 'load' "$T/log" && ok "log shows the load" || bad "log"
gctl branch create "$S" dev -q 2>/dev/null || gctl branch create "$S" dev >/dev/null || bad "branch create"
people 3 dev | gctl load "$S" --data - --branch dev -q || bad "load on dev"
gctl merge "$S" dev -q && ok "branch dev created, loaded, merged into main" || bad "merge"
has "$S" '"P dev"' && ok "main has dev's rows" || bad "dev's rows missing on main"
gctl fsck "$S" >"$T/out" 2>&1 && grep -q ' 0 problems' "$T/out" && ok "fsck clean" || bad "fsck: $(cat "$T/out")"
# FORMAT's check covers the manifest line: another prefix in it is refused
cp "$S/FORMAT" "$T/FORMAT.good"
sed -i 's#/gfs-test/a$#/gfs-test/b#' "$S/FORMAT"
gctl snapshot "$S" >/dev/null 2>"$T/err"
[ $? = 1 ] && grep -q "FORMAT" "$T/err" && ok "a FORMAT whose manifest line was changed fails its check" ||
	bad "tampered manifest line: $(cat "$T/err")"
cp "$T/FORMAT.good" "$S/FORMAT"

# 4. a writer killed at the commit, then recover
head_v() { gctl snapshot "$1" --json | js 'j["version"]'; }
for kind in forward back; do
	fp=commit/before_publish=exit
	[ "$kind" = back ] && fp=commit/after_table=exit@1
	v0=$(head_v "$S")
	people 30 "$kind" >"$T/k.jsonl"
	GRAPHFS_FAILPOINTS=$fp gctl load "$S" --data "$T/k.jsonl" -q 2>/dev/null
	st=$?
	[ "$st" = 86 ] || bad "$kind: the load exited $st, not at the failpoint"
	gctl recover "$S" --json >"$T/sum" || bad "$kind: recover failed"
	if [ "$kind" = forward ]; then
		[ "$(js 'j["rolled_forward"]' <"$T/sum")" = 1 ] && has "$S" '"P forward"' &&
			ok "killed after confirm: recover rolled forward, the rows are there" ||
			bad "roll forward: $(cat "$T/sum")"
	else
		[ "$(js 'j["rolled_back"]' <"$T/sum")" = 1 ] && ! has "$S" '"P back"' &&
			[ "$(head_v "$S")" -ge "$v0" ] &&
			ok "killed after a table: recover rolled back, nothing of it visible" ||
			bad "roll back: $(cat "$T/sum")"
	fi
	[ "$(gctl recover "$S" --list --json | js 'len(j["pending"])')" = 0 ] || bad "$kind: a sidecar left"
	gctl fsck "$S" >"$T/out" 2>&1 && ok "$kind: fsck clean" || bad "$kind: fsck: $(cat "$T/out")"
done

# 5. two loaders, two processes, two members, released together
v0=$(head_v "$S")
people 20 race >"$T/ra.jsonl"
companies 20 race >"$T/rb.jsonl"
GRAPHFS_ETCD_FIRST=1 GRAPHFS_FAILPOINTS=commit/before_publish=park@1 \
	with_timeout 60 "$GRAPHCTL" load "$S" --data "$T/ra.jsonl" -q &
p1=$!
GRAPHFS_ETCD_FIRST=2 GRAPHFS_FAILPOINTS=commit/before_publish=park@1 \
	with_timeout 60 "$GRAPHCTL" load "$S" --data "$T/rb.jsonl" -q &
p2=$!
BG="$p1 $p2"
parked() { local n; n=$(find "$GRAPHFS_FP_DIR" -name '*.reached' | wc -l); [ "$n" = 2 ]; }
for _ in $(seq 1 $(( $(scaled 30) * 100 ))); do parked && break; sleep 0.01; done
parked && ok "both loaders parked before their publish" || bad "the loaders did not both park"
fp_release commit/before_publish
wait "$p1"; s1=$?
wait "$p2"; s2=$?
BG=""
[ "$s1" = 0 ] && [ "$s2" = 0 ] && ok "both loaders committed" || bad "loaders exited $s1 and $s2"
[ "$(head_v "$S")" = $((v0 + 2)) ] && ok "two new graph versions, $((v0 + 1)) and $((v0 + 2))" ||
	bad "head is $(head_v "$S"), wanted $((v0 + 2))"
n1=$(gctl export "$S" | grep -c '"P race"\|"C race"')
[ "$n1" = 40 ] && ok "the head has both loads' rows" || bad "the head has $n1 of 40 race rows"
a=$(gctl export "$S" --version $((v0 + 1)) | grep -c '"P race"\|"C race"')
[ "$a" = 20 ] && ok "version $((v0 + 1)) has exactly the first publisher's rows" || bad "version $((v0 + 1)) has $a race rows"
gctl fsck "$S" >"$T/out" 2>&1 && ok "fsck clean after the race" || bad "fsck after the race: $(cat "$T/out")"

# 6. a mount
mkdir -p "$M"
if timeout "$(scaled 30)" "$GRAPHFS" "$S" "$M"; then
	timeout 20 cat "$M/versions/2/nodes/Person/p0001.json" >"$T/row" && grep -q '"P v1"' "$T/row" &&
		ok "mount: versions/2 reads a row of the first load" || bad "mount: versions/2"
	h=$(head_v "$S")
	people 1 live | sed 's/p0000/zz01/' | gctl load "$S" --data - -q
	for _ in $(seq 1 $(( $(scaled 10) * 100 ))); do
		[ -e "$M/nodes/Person/zz01.json" ] && break
		sleep 0.01
	done
	[ -e "$M/nodes/Person/zz01.json" ] && [ "$(timeout 10 cat "$M/.graphfs/head")" = $((h + 1)) ] &&
		ok "mount: the live view follows a load made by another process" ||
		bad "mount: live view stuck at $(timeout 10 cat "$M/.graphfs/head")"
	timeout 20 fusermount3 -u "$M" || bad "unmount"
else
	bad "graphfs could not mount the store"
fi

# 7. one member down
etcd_member_kill 0
people 2 quorum | sed 's/"p000/"q000/' | gctl load "$S" --data - -q &&
	has "$S" '"P quorum"' && ok "member 0 down: a load and an export go on" ||
	bad "with 2 of 3 members"

echo "# $fails failure(s)"
[ "$fails" = 0 ]
