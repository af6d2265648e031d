#!/bin/bash
# bench/gc_etcd.sh [N] - gc of a long history on an etcd store: N one-row
# loads (default 1200), then `graphctl gc --keep-last 1`, timed, on a
# 3-member cluster this script starts (tests/etcd/cluster.sh, the test
# clusters' --max-txn-ops 1024).  One etcd transaction cannot remove them
# all: gc works in rounds (src/gc.c "Rounds"; docs/multi-host.md §3.3).
# Run from a build directory: cd build && bash ../bench/gc_etcd.sh 1200
set -uo pipefail
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
GRAPHCTL=${GRAPHCTL:-$PWD/graphctl}
[ -x "$GRAPHCTL" ] || { echo "gc_etcd.sh: no $GRAPHCTL (run it from a build directory)" >&2; exit 2; }
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/etcd/cluster.sh"
etcd_require
N=${1:-1200}
T=$(etcd_tmpdir gfs-gcbench)
trap 'rm -rf "$T"' EXIT
etcd_cluster_start 3 "$T/cluster" || exit 1
echo 'node Person { slug: String @key  n: I64 }' >"$T/s.pg"
"$GRAPHCTL" init "$T/s" --schema "$T/s.pg" --manifest "etcd://$ETCD_ENDPOINTS/gcbench" -q || exit 1
t0=$(date +%s%N)
for i in $(seq "$N"); do
	printf '{"type":"Person","data":{"slug":"p%d","n":%d}}\n' $((i % 5)) "$i" |
		"$GRAPHCTL" load "$T/s" --data - -q || exit 1
done
t1=$(date +%s%N)
echo "# $N one-row loads: $(( (t1 - t0) / 1000000 )) ms"
"$GRAPHCTL" gc "$T/s" --keep-last 1 --json >"$T/gc.json" || exit 1
t2=$(date +%s%N)
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("gc --keep-last 1: removed %d versions in %d rounds" % (len(j["removed"]), j["rounds"]))' "$T/gc.json"
echo "# gc: $(( (t2 - t1) / 1000000 )) ms"
"$GRAPHCTL" fsck "$T/s" -q && echo "fsck clean"
