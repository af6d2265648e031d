#!/bin/bash
# bench/run.sh - graphfs throughput, memory and incremental-write benchmarks
# (`make bench`; docs/benchmarks.md explains every number).  Each graphctl
# timing is printed next to a baseline measured in the same run on the same
# file, and the ratio graphctl/baseline (time; lower is better):
#   load    vs  cp FILE COPY && sync COPY   (a durable copy: load fsyncs too)
#   export  vs  cat FILE > OUT
#   merge of 100 changed rows: time, and the new table-version file's size
#           against the table's total size (O(rows changed), not O(table))
#   git     (optional) git add + commit of the same JSONL, then of the file
#           with the same 100 rows changed, vs graphctl load / merge
#   mount   `cat` of the biggest whole-table file through a graphfs mount vs
#           `cat` of the same bytes from the native filesystem, with the
#           daemon's RSS after the read (bounded: streamed, not loaded)
# Datasets: the machine's package index (tests/data/pkggraph.py) and a
# synthetic graph of BENCH_SYNTH_NODES items (default 4,000,000: ~1 GB JSONL).
#
# Environment: GRAPHCTL (default ./graphctl), BENCH_TMPDIR (default /tmp; needs
# ~7 GB free), BENCH_SYNTH_NODES, BENCH_GIT=0 to skip the git baseline,
# BENCH_PKG=0 / BENCH_SYNTH=0 to skip a dataset.  Caches are warm: every input
# is read once before it is timed, and `sync` runs before each timed step.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
GRAPHCTL=${GRAPHCTL:-./graphctl}
[ -x "$GRAPHCTL" ] || { echo "bench: GRAPHCTL=$GRAPHCTL is not executable (make graphctl)" >&2; exit 2; }
SYNTH_NODES=${BENCH_SYNTH_NODES:-4000000}
W=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/gfs-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT

die() { echo "bench: $*" >&2; exit 1; }
fmt() { awk -v v="$1" -v d="$2" 'BEGIN { printf "%.*f", d, v }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) b = 0.001; print a / b }'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 0.001; printf "%.1f", b / 1e6 / s }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) b = 1; printf "%.3f", 100 * a / b }'; }
size() { stat -c %s "$1"; }

# timed OUT CMD...: runs CMD (stdout to OUT, "-" = discard); sets SECS and
# RSS_MIB.
timed() {
	sync
	python3 "$here/timeit.py" "$@" >"$W/timing" || die "failed: ${*:2}"
	read -r SECS rss_kib <"$W/timing"
	RSS_MIB=$((rss_kib / 1024))
}

# row LABEL BYTES SECS RSS_MIB BASE_LABEL BASE_SECS
row() {
	printf '  %-22s %8s s %7s MB/s  peak RSS %5s MiB | %-16s %7s s %7s MB/s | x%s\n' \
		"$1" "$(fmt "$3" 2)" "$(mbps "$2" "$3")" "$4" \
		"$5" "$(fmt "$6" 2)" "$(mbps "$2" "$6")" \
		"$(fmt "$(div "$3" "$6")" 1)"
}

# table_bytes STORE TABLE: the size of every version file of TABLE.
table_bytes() {
	find "$1/tables/$2" -maxdepth 1 -type f -regex '.*/[0-9]+$' -printf '%s\n' |
		awk '{ s += $1 } END { print s + 0 }'
}
head_file() { # the highest version file of a table
	find "$1/tables/$2" -maxdepth 1 -type f -regex '.*/[0-9]+$' -printf '%f\n' |
		sort -n | tail -1 | sed "s|^|$1/tables/$2/|"
}

# load_export NAME FILE SCHEMA: fresh store W/NAME, load vs cp, export vs cat.
load_export() {
	local name=$1 file=$2 schema=$3 bytes
	bytes=$(size "$file")
	cat "$file" >/dev/null
	"$GRAPHCTL" init "$W/$name" --schema "$schema" >/dev/null
	timed - "$GRAPHCTL" load "$W/$name" --data "$file" --mode append
	local ls=$SECS lr=$RSS_MIB
	timed - sh -c 'cp "$1" "$2" && sync "$2"' sh "$file" "$W/copy"
	rm -f "$W/copy"
	row "load --mode append" "$bytes" "$ls" "$lr" "cp + fsync" "$SECS"
	timed "$W/export.jsonl" "$GRAPHCTL" export "$W/$name"
	local es=$SECS er=$RSS_MIB ebytes
	ebytes=$(size "$W/export.jsonl")
	rm -f "$W/export.jsonl"
	timed "$W/cat.jsonl" cat "$file"
	rm -f "$W/cat.jsonl"
	row "export" "$ebytes" "$es" "$er" "cat" "$SECS"
	printf '  store on disk: %s MB for %s MB of JSONL\n' \
		"$(fmt "$(div "$(du -sb "$W/$name" | cut -f1)" 1e6)" 1)" "$(fmt "$(div "$bytes" 1e6)" 1)"
	mount_read "$name"
}

# mount_read NAME: the biggest .jsonl of the store's live view, read through
# the mount, against the same bytes read from a native file.
mount_read() {
	local name=$1 m=$W/mnt-$1 f native pid
	[ -x "$GRAPHFS" ] || { echo "  (no graphfs at $GRAPHFS: mount read skipped)"; return 0; }
	mkdir -p "$m"
	"$GRAPHFS" "$W/$name" "$m" || die "graphfs $W/$name failed"
	f=$(find "$m/nodes" "$m/edges" -maxdepth 1 -name '*.jsonl' -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
	native=$W/native.jsonl
	# the same bytes, without touching the mount: its first read is timed
	"$GRAPHCTL" export "$W/$name" --type "$(basename "$f" .jsonl)" >"$native"
	cat "$native" >/dev/null
	timed - cat "$f"
	local ms=$SECS bytes
	bytes=$(size "$native")
	pid=$(pgrep -f "graphfs $W/$name $m" | head -1)
	local drss
	drss=$(awk '/VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || echo "?")
	timed - cat "$native"
	row "mount cat ${f##*/}" "$bytes" "$ms" "$drss" "native cat" "$SECS"
	echo "  (peak RSS column of the mount row: the graphfs daemon's RSS after the read)"
	fusermount3 -u "$m"
	rm -f "$native"
}

# merge NAME TABLE CHANGED_FILE DESC: a merge of a few changed rows.
merge() {
	local name=$1 table=$2 changed=$3 desc=$4 total newf
	timed - "$GRAPHCTL" load "$W/$name" --data "$changed" --mode merge
	newf=$(head_file "$W/$name" "$table")
	total=$(table_bytes "$W/$name" "$table")
	printf '  merge %3d %-16s %6s s  peak RSS %4s MiB  new version %8s bytes = %s%% of %s (%s MB, %s versions)\n' \
		"$(wc -l <"$changed")" "$desc" "$(fmt "$SECS" 3)" "$RSS_MIB" "$(size "$newf")" \
		"$(pct "$(size "$newf")" "$total")" "$table" \
		"$(fmt "$(div "$total" 1e6)" 1)" "${newf##*/}"
}

# git_baseline FILE CHANGED_FULL_FILE: commit FILE, then its changed copy.
git_baseline() {
	local repo=$W/git before after
	command -v git >/dev/null || { echo "  git: not installed, skipped"; return; }
	git init -q "$repo"
	git -C "$repo" config user.email bench@localhost
	git -C "$repo" config user.name bench
	cp "$1" "$repo/data.jsonl"
	timed - sh -c 'cd "$1" && git add data.jsonl && git commit -q -m 1' sh "$repo"
	printf '  %-22s %8s s  peak RSS %5s MiB   .git/objects %s MB\n' "git add+commit" \
		"$(fmt "$SECS" 2)" "$RSS_MIB" "$(fmt "$(div "$(du -sb "$repo/.git/objects" | cut -f1)" 1e6)" 1)"
	before=$(du -sb "$repo/.git/objects" | cut -f1)
	cp "$2" "$repo/data.jsonl"
	timed - sh -c 'cd "$1" && git add data.jsonl && git commit -q -m 2' sh "$repo"
	after=$(du -sb "$repo/.git/objects" | cut -f1)
	printf '  %-22s %8s s  peak RSS %5s MiB   .git/objects grew %s bytes (loose objects, before any gc)\n' \
		"git commit 100 changed" "$(fmt "$SECS" 2)" "$RSS_MIB" "$((after - before))"
	rm -rf "$repo"
}

GRAPHFS=${GRAPHFS:-$(dirname "$GRAPHCTL")/graphfs}
echo "graphfs benchmarks: $("$GRAPHCTL" --version 2>/dev/null | head -1 || true) $GRAPHCTL"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), tmp $W"
echo "columns: graphctl time, throughput (input MB / s), peak RSS | baseline time, throughput | graphctl time / baseline time"

if [ "${BENCH_PKG:-1}" != 0 ]; then
	echo
	python3 "$top/tests/data/pkggraph.py" --out "$W/pkg.jsonl" --counts "$W/pkg.counts"
	echo "== package index: $(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print("%d nodes, %d edges, from %s" % (c["nodes"], c["edges"], c["source"]))' "$W/pkg.counts"), $(fmt "$(div "$(size "$W/pkg.jsonl")" 1e6)" 1) MB"
	load_export pkg "$W/pkg.jsonl" "$top/tests/data/pkggraph.pg"
	# 100 Package rows spread over the table, each with a new version string.
	python3 - "$W/pkg.jsonl" "$W/pkg.changed" "$W/pkg.full2" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")[:-1]
pk = [i for i, l in enumerate(lines) if l.startswith('{"type":"Package"') and '"virtual":false' in l]
pick = pk[:: max(1, len(pk) // 100)][:100]
with open(sys.argv[2], "w", encoding="utf-8") as ch:
    for i in pick:
        o = json.loads(lines[i])
        o["data"]["version"] = o["data"].get("version", "0") + "+bench1"
        lines[i] = json.dumps(o, ensure_ascii=False, separators=(",", ":"))
        ch.write(lines[i] + "\n")
open(sys.argv[3], "w", encoding="utf-8").write("\n".join(lines) + "\n")
PY
	merge pkg node:Package "$W/pkg.changed" "spread rows"
	[ "${BENCH_GIT:-1}" != 0 ] && git_baseline "$W/pkg.jsonl" "$W/pkg.full2"
	rm -rf "$W/pkg" "$W/pkg.jsonl" "$W/pkg.full2"
fi

if [ "${BENCH_SYNTH:-1}" != 0 ]; then
	echo
	timed - python3 "$here/synth.py" --nodes "$SYNTH_NODES" --out "$W/synth.jsonl"
	echo "== synthetic: $SYNTH_NODES Items + $((SYNTH_NODES * 3 / 2)) Links, $(fmt "$(div "$(size "$W/synth.jsonl")" 1e6)" 1) MB (generated in $(fmt "$SECS" 1) s)"
	load_export synth "$W/synth.jsonl" "$here/synth.pg"
	rm -f "$W/synth.jsonl"
	python3 "$here/synth.py" --nodes "$SYNTH_NODES" --changed 100 --out "$W/ch1.jsonl"
	python3 "$here/synth.py" --nodes "$SYNTH_NODES" --changed 100 --clustered --out "$W/ch2.jsonl"
	merge synth node:Item "$W/ch1.jsonl" "spread rows"
	merge synth node:Item "$W/ch2.jsonl" "adjacent rows"
	"$GRAPHCTL" fsck "$W/synth" >/dev/null || die "fsck of the synthetic store failed"
fi
echo
echo "bench: done"
