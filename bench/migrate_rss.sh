#!/bin/bash
# migrate_rss.sh - graphctl migrate's peak memory and time against the
# number of manifest records (docs/multi-host.md §7: memory holds one batch,
# so the peak must not grow with the history).  Starts its own 3-member
# cluster (tests/etcd/cluster.sh), builds an LMDB store with N graph versions
# for each N given, and migrates it LMDB -> etcd -> another etcd prefix ->
# LMDB under /usr/bin/time (elapsed s, max RSS KB).  Under ASan, set
# ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=0 or freed batches stay
# resident in the quarantine.  LMDB's map is file-backed and counts in RSS
# as its pages are touched; etcd -> etcd has no such term.
#   GRAPHCTL=build/graphctl top_srcdir=. bash bench/migrate_rss.sh 100 400
set -uo pipefail
: "${GRAPHCTL:?}" "${top_srcdir:?}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/etcd/cluster.sh"
etcd_require
T=$(etcd_tmpdir gfs-migrss)
trap 'rm -rf "$T"' EXIT
etcd_cluster_start 3 "$T/cluster" || exit 1
cat >"$T/s.pg" <<'PG'
node Person { slug: String @key  name: String  n: I64? }
node Company { domain: String @key  name: String }
PG
printf '%-8s %-8s %-16s %-16s %-16s\n' versions records "lmdb>etcd s KB" "etcd>etcd s KB" "etcd>lmdb s KB"
for n in "$@"; do
	S=$T/s$n
	"$GRAPHCTL" init "$S" --schema "$T/s.pg" -q
	for ((i = 1; i < n; i++)); do
		printf '{"type":"Person","data":{"slug":"p%d","name":"%s"}}\n{"type":"Company","data":{"domain":"c%d","name":"x"}}\n' \
			$((i % 50)) "$(printf 'v%.0s' $(seq 1 $((i % 40 + 1))))" $((i % 7)) |
			"$GRAPHCTL" load "$S" --data - -q
	done
	/usr/bin/time -f '%e %M' -o "$T/t1" "$GRAPHCTL" migrate "$S" \
		--manifest "etcd://$ETCD_ENDPOINTS/rss/$n" --json >"$T/j1"
	/usr/bin/time -f '%e %M' -o "$T/t3" "$GRAPHCTL" migrate "$S" \
		--manifest "etcd://$ETCD_ENDPOINTS/rss2/$n" -q
	/usr/bin/time -f '%e %M' -o "$T/t2" "$GRAPHCTL" migrate "$S" --manifest lmdb -q
	rec=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["records"])' "$T/j1")
	printf '%-8s %-8s %-16s %-16s %-16s\n' "$n" "$rec" "$(cat "$T/t1")" "$(cat "$T/t3")" "$(cat "$T/t2")"
done
