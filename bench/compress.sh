#!/bin/bash
# bench/compress.sh - the store-size / compression study of issue 9
# (requirement 7; `make bench-compress`; docs/benchmarks.md "Compression
# study", decision in docs/decisions.md).
#
#   bench/compress.sh [STORE...]
#
# Without arguments, makes three stores with GRAPHCTL (default ./graphctl):
# the synthetic graph of BENCH_SYNTH_NODES items (default 1,000,000; 257 MB
# of JSONL), the machine's package index (tests/data/pkggraph.py) and the
# 100 MB Doc table that bench/mount.sh reads, and runs bench/compress_study
# (built here with cc, -lzstd -llz4: Debian's libzstd-dev and liblz4-dev) on
# the newest version file of every table of
# each store.  With STORE arguments, studies those stores' tables instead.
# BENCH_TMPDIR (default /tmp) holds the stores; BENCH_RUNS (3) decompression
# runs, the best counted; COMPRESS_STUDY=path uses an already built program.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
GRAPHCTL=${GRAPHCTL:-./graphctl}
NODES=${BENCH_SYNTH_NODES:-1000000}
W=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/gfs-compress.XXXXXX")
trap 'rm -rf "$W"' EXIT
die() { echo "bench: $*" >&2; exit 1; }

STUDY=${COMPRESS_STUDY:-}
if [ -z "$STUDY" ]; then
	STUDY=$W/compress_study
	cc -O2 -Wall -o "$STUDY" "$here/compress_study.c" -lzstd -llz4 -lxxhash ||
		die "cannot build compress_study: install libzstd-dev and liblz4-dev (scripts/deps.sh)"
fi

# heads STORE: the newest version file of every table of STORE
heads() {
	local t
	for t in "$1"/tables/*/; do
		find "$t" -maxdepth 1 -type f -regex '.*/[0-9]+$' -printf '%f\n' |
			sort -n | tail -1 | sed "s|^|$t|"
	done
}

stores=("$@")
if [ ${#stores[@]} = 0 ]; then
	[ -x "$GRAPHCTL" ] || die "GRAPHCTL=$GRAPHCTL is not executable (make graphctl)"
	python3 "$here/synth.py" --nodes "$NODES" --out "$W/synth.jsonl"
	"$GRAPHCTL" init "$W/synth" --schema "$here/synth.pg" >/dev/null
	"$GRAPHCTL" load "$W/synth" --data "$W/synth.jsonl" --mode append --quiet >/dev/null
	echo "synthetic: $NODES items, $(stat -c %s "$W/synth.jsonl") bytes of JSONL, store $(du -sb "$W/synth" | cut -f1) bytes"
	rm -f "$W/synth.jsonl"
	python3 "$top/tests/data/pkggraph.py" --out "$W/pkg.jsonl" --counts "$W/pkg.counts"
	"$GRAPHCTL" init "$W/pkg" --schema "$top/tests/data/pkggraph.pg" >/dev/null
	"$GRAPHCTL" load "$W/pkg" --data "$W/pkg.jsonl" --mode append --quiet >/dev/null
	echo "package index: $(stat -c %s "$W/pkg.jsonl") bytes of JSONL, store $(du -sb "$W/pkg" | cut -f1) bytes"
	rm -f "$W/pkg.jsonl"
	# the 100 MB Doc table that bench/mount.sh's big-file rows (1, 2, 3, 9)
	# read; its bodies come from a 26-word vocabulary, so its ratios are
	# better than real text's: it is here for the cost per MB read
	python3 "$here/mbench.py" blob --bytes 100000000 --out "$W/blob.jsonl" >/dev/null
	"$GRAPHCTL" init "$W/blob" --schema "$here/blob.pg" >/dev/null
	"$GRAPHCTL" load "$W/blob" --data "$W/blob.jsonl" --mode append --quiet >/dev/null
	echo "blob (bench/mount.sh's table): $(stat -c %s "$W/blob.jsonl") bytes of JSONL, store $(du -sb "$W/blob" | cut -f1) bytes"
	rm -f "$W/blob.jsonl"
	stores=("$W/synth" "$W/pkg" "$W/blob")
fi
for s in "${stores[@]}"; do
	[ -d "$s/tables" ] || die "$s: not a store (no tables/)"
	echo
	echo "== $s"
	mapfile -t files < <(heads "$s")
	# skip empty tables (a header and a footer only)
	mapfile -t files < <(for f in "${files[@]}"; do [ "$(stat -c %s "$f")" -gt 4096 ] && echo "$f"; done)
	# many tables (the package index): the totals only, unless BENCH_VERBOSE=1
	q=; [ ${#files[@]} -le 4 ] || [ "${BENCH_VERBOSE:-0}" = 1 ] || q=-q
	"$STUDY" $q -r "${BENCH_RUNS:-3}" "${files[@]}"
done
