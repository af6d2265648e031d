#!/bin/bash
# bench/verify_cost.sh OLD_GRAPHCTL NEW_GRAPHCTL [OLD_GRAPHFS NEW_GRAPHFS]
# The cost of verifying every line when it is served (issue 8): a timed
# export of a 100k-row table (bench/synth.py, ~10 MB) by two builds, each on
# a store it made itself, best of BENCH_RUNS (default 7) warm runs; with
# the graphfs binaries also `cat` of the whole-table file through a
# read-only mount (fresh mount each run, so the kernel page cache is cold
# for the FUSE file but warm for the store).  Release builds
# (../configure without --enable-asan/--enable-failpoints).  Results in
# docs/benchmarks.md ("Verifying on every read").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
old=$1 new=$2 oldfs=${3:-} newfs=${4:-}
runs=${BENCH_RUNS:-7}
W=$(mktemp -d /tmp/gfs-vcost.XXXXXX)
trap 'for m in "$W"/m*; do fusermount3 -u "$m" 2>/dev/null || true; done; rm -rf "$W"' EXIT
python3 "$here/synth.py" --nodes 100000 --edges-per-node 0 --out "$W/items.jsonl"
best() { # best CMD...: the fastest of $runs runs, in ms
	python3 - "${BEST_RUNS:-$runs}" "$@" <<'PY'
import os, subprocess, sys, time
runs, cmd = int(sys.argv[1]), sys.argv[2:]
t, cpu = [], []
for _ in range(runs):
    s = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, st, ru = os.wait4(p.pid, 0)
    assert st == 0
    t.append(time.perf_counter() - s)
    cpu.append(ru.ru_utime + ru.ru_stime)   # the machine is shared: CPU too
print("%.1f ms wall, %.1f ms CPU" % (min(t) * 1000, min(cpu) * 1000))
PY
}
for which in old new; do
	gc=${!which}
	s=$W/$which
	"$gc" init "$s" --schema "$here/synth.pg" >/dev/null
	"$gc" load "$s" --data "$W/items.jsonl" --quiet
	"$gc" export "$s" --type Item >/dev/null
	echo "$which export --type Item (100k rows, $(stat -c %s "$W/items.jsonl") bytes): $(best "$gc" export "$s" --type Item)"
	fs=${which}fs
	if [ -n "${!fs}" ]; then
		m=$W/m$which
		mkdir -p "$m"
		ms=()
		for i in $(seq "$runs"); do
			"${!fs}" "$s" "$m" -o ro
			ms+=("$(BEST_RUNS=1 best cat "$m/nodes/Item.jsonl" | cut -d' ' -f1)")
			fusermount3 -u "$m"
		done
		echo "$which mount cat nodes/Item.jsonl: $(printf '%s\n' "${ms[@]}" | sort -n | head -1) ms"
	fi
done
