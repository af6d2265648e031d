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
# It ends with the block "issue 9 targets": each row of issue 9's table,
# measured, its target, and met / not met.
#
# Before and after in one run: BENCH_BEFORE_GRAPHCTL=OLD/graphctl (and
# BENCH_BEFORE_GRAPHFS, default next to it) repeats load, export, mount read
# and merges with that build on a store it makes itself, right after the
# current build's, and the summary shows before, after and after/before.
#
# Environment: GRAPHCTL (default ./graphctl), BENCH_TMPDIR (default /tmp; needs
# ~7 GB free, ~12 GB with a before build), BENCH_SYNTH_NODES, BENCH_GIT=0 to
# skip the git baseline, BENCH_PKG=0 / BENCH_SYNTH=0 to skip a dataset,
# BENCH_TOLERANCE (default 1.25): "unchanged" means after <= before x this
# (times of a few ms move by more than that between runs: see the summary),
# BENCH_SAVE=FILE keeps every figure as "key value" lines, and
# BENCH_BEFORE_FILE=FILE (such a file, of a run at the same BENCH_SYNTH_NODES,
# e.g. bench/issue9-before-1M.txt) is the before column when no before build
# runs: figures of another hour, so noisier than a same-run before.  Caches are warm:
# every input is read once before it is timed, and `sync` runs before each
# timed step.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
GRAPHCTL=${GRAPHCTL:-./graphctl}
[ -x "$GRAPHCTL" ] || { echo "bench: GRAPHCTL=$GRAPHCTL is not executable (make graphctl)" >&2; exit 2; }
GRAPHFS=${GRAPHFS:-$(dirname "$GRAPHCTL")/graphfs}
OLDCTL=${BENCH_BEFORE_GRAPHCTL:-}
OLDFS=${BENCH_BEFORE_GRAPHFS:-${OLDCTL:+$(dirname "$OLDCTL")/graphfs}}
[ -z "$OLDCTL" ] || [ -x "$OLDCTL" ] || { echo "bench: BENCH_BEFORE_GRAPHCTL=$OLDCTL is not executable" >&2; exit 2; }
SYNTH_NODES=${BENCH_SYNTH_NODES:-4000000}
TOL=${BENCH_TOLERANCE:-1.25}
W=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/gfs-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT

declare -A R # every figure of the run: R[side.dataset.what], side "new" or "old"

die() { echo "bench: $*" >&2; exit 1; }
fmt() { awk -v v="$1" -v d="$2" 'BEGIN { printf "%.*f", d, v }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) b = 0.001; print a / b }'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 0.001; printf "%.1f", b / 1e6 / s }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) b = 1; printf "%.3f", 100 * a / b }'; }
size() { stat -c %s "$1"; }

R[new.synth.nodes]=$SYNTH_NODES
if [ -z "$OLDCTL" ] && [ -n "${BENCH_BEFORE_FILE:-}" ]; then
	# the file's own figures ("new.*") are this run's before ("old.*")
	while read -r k v; do
		case $k in new.*) R[old.${k#new.}]=$v ;; esac
	done <"$BENCH_BEFORE_FILE"
	[ "${BENCH_SYNTH:-1}" = 0 ] || [ "${R[old.synth.nodes]:-}" = "$SYNTH_NODES" ] ||
		die "BENCH_BEFORE_FILE=$BENCH_BEFORE_FILE is of a run at ${R[old.synth.nodes]:-?} items, not $SYNTH_NODES"
fi

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
	printf '  %-31s %8s s %7s MB/s  peak RSS %5s MiB | %-16s %7s s %7s MB/s | x%s\n' \
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

# use SIDE: the build the next steps run, "new" (GRAPHCTL) or "old"
# (BENCH_BEFORE_GRAPHCTL); sets CTL, FS and TAG (a label suffix).
use() {
	SIDE=$1
	if [ "$1" = old ]; then CTL=$OLDCTL FS=$OLDFS TAG=" (before)"; else CTL=$GRAPHCTL FS=$GRAPHFS TAG=; fi
}

# load_export NAME FILE SCHEMA: fresh store W/NAME with the SIDE's build,
# load vs cp, export vs cat, the store's size, a mount read.
load_export() {
	local name=$1 file=$2 schema=$3 bytes k=$SIDE.$1
	bytes=$(size "$file")
	cat "$file" >/dev/null
	"$CTL" init "$W/$name" --schema "$schema" >/dev/null
	timed - "$CTL" load "$W/$name" --data "$file" --mode append
	local ls=$SECS lr=$RSS_MIB
	timed - sh -c 'cp "$1" "$2" && sync "$2"' sh "$file" "$W/copy"
	rm -f "$W/copy"
	row "load --mode append$TAG" "$bytes" "$ls" "$lr" "cp + fsync" "$SECS"
	R[$k.load.s]=$ls R[$k.load.rss]=$lr R[$k.bytes]=$bytes R[$k.cp.s]=$SECS
	timed "$W/export.jsonl" "$CTL" export "$W/$name"
	local es=$SECS er=$RSS_MIB ebytes
	ebytes=$(size "$W/export.jsonl")
	rm -f "$W/export.jsonl"
	timed "$W/cat.jsonl" cat "$file"
	rm -f "$W/cat.jsonl"
	row "export$TAG" "$ebytes" "$es" "$er" "cat" "$SECS"
	R[$k.export.s]=$es R[$k.export.bytes]=$ebytes R[$k.cat.s]=$SECS
	R[$k.store]=$(du -sb "$W/$name" | cut -f1)
	printf '  store on disk%s: %s MB for %s MB of JSONL (x%s)\n' "$TAG" \
		"$(fmt "$(div "${R[$k.store]}" 1e6)" 1)" "$(fmt "$(div "$bytes" 1e6)" 1)" \
		"$(fmt "$(div "${R[$k.store]}" "$bytes")" 2)"
	mount_read "$name"
}

# mount_read NAME: the biggest .jsonl of the store's live view, read through
# the mount, against the same bytes read from a native file.
mount_read() {
	local name=$1 m=$W/mnt-$1 f native pid k=$SIDE.$1
	[ -x "$FS" ] || { echo "  (no graphfs at $FS: mount read skipped)"; return 0; }
	mkdir -p "$m"
	"$FS" "$W/$name" "$m" || die "graphfs $W/$name failed"
	f=$(find "$m/nodes" "$m/edges" -maxdepth 1 -name '*.jsonl' -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
	native=$W/native.jsonl
	# the same bytes, without touching the mount: its first read is timed
	"$CTL" export "$W/$name" --type "$(basename "$f" .jsonl)" >"$native"
	cat "$native" >/dev/null
	timed - cat "$f"
	local ms=$SECS bytes
	bytes=$(size "$native")
	pid=$(pgrep -f "graphfs $W/$name $m" | head -1)
	local drss
	drss=$(awk '/VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || echo "?")
	timed - cat "$native"
	row "mount cat ${f##*/}$TAG" "$bytes" "$ms" "$drss" "native cat" "$SECS"
	echo "  (peak RSS column of the mount row: the graphfs daemon's RSS after the read)"
	R[$k.mount.s]=$ms R[$k.mount.bytes]=$bytes R[$k.mount.file]=${f##*/} R[$k.native.s]=$SECS
	fusermount3 -u "$m"
	rm -f "$native"
}

# merge NAME TABLE CHANGED_FILE DESC KEY: a merge of a few changed rows.
merge() {
	local name=$1 table=$2 changed=$3 desc=$4 total newf
	timed - "$CTL" load "$W/$name" --data "$changed" --mode merge
	newf=$(head_file "$W/$name" "$table")
	total=$(table_bytes "$W/$name" "$table")
	printf '  merge %3d %-16s %6s s  peak RSS %4s MiB  new version %8s bytes = %s%% of %s (%s MB, %s versions)%s\n' \
		"$(wc -l <"$changed")" "$desc" "$(fmt "$SECS" 3)" "$RSS_MIB" "$(size "$newf")" \
		"$(pct "$(size "$newf")" "$total")" "$table" \
		"$(fmt "$(div "$total" 1e6)" 1)" "${newf##*/}" "$TAG"
	R[$SIDE.$name.merge.$5.s]=$SECS
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
	R[git.pkg.s]=$SECS
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

# sides: the builds to run, the current one first.
sides() { echo new; [ -z "$OLDCTL" ] || echo old; }

. "$here/summary.sh"

echo "graphfs benchmarks: $("$GRAPHCTL" --version 2>/dev/null | head -1 || true) $GRAPHCTL"
[ -z "$OLDCTL" ] || echo "before: $("$OLDCTL" --version 2>/dev/null | head -1 || true) $OLDCTL (rows marked (before))"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), tmp $W"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "columns: graphctl time, throughput (input MB / s), peak RSS | baseline time, throughput | graphctl time / baseline time"

if [ "${BENCH_PKG:-1}" != 0 ]; then
	echo
	python3 "$top/tests/data/pkggraph.py" --out "$W/pkg.jsonl" --counts "$W/pkg.counts"
	echo "== package index: $(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print("%d nodes, %d edges, from %s" % (c["nodes"], c["edges"], c["source"]))' "$W/pkg.counts"), $(fmt "$(div "$(size "$W/pkg.jsonl")" 1e6)" 1) MB"
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
	for s in $(sides); do
		use "$s"
		load_export pkg "$W/pkg.jsonl" "$top/tests/data/pkggraph.pg"
		merge pkg node:Package "$W/pkg.changed" "spread rows" spread
		rm -rf "$W/pkg"
	done
	[ "${BENCH_GIT:-1}" != 0 ] && git_baseline "$W/pkg.jsonl" "$W/pkg.full2"
	rm -rf "$W/pkg.jsonl" "$W/pkg.full2"
fi

if [ "${BENCH_SYNTH:-1}" != 0 ]; then
	echo
	timed - python3 "$here/synth.py" --nodes "$SYNTH_NODES" --out "$W/synth.jsonl"
	echo "== synthetic: $SYNTH_NODES Items + $((SYNTH_NODES * 3 / 2)) Links, $(fmt "$(div "$(size "$W/synth.jsonl")" 1e6)" 1) MB (generated in $(fmt "$SECS" 1) s)"
	python3 "$here/synth.py" --nodes "$SYNTH_NODES" --changed 100 --out "$W/ch1.jsonl"
	python3 "$here/synth.py" --nodes "$SYNTH_NODES" --changed 100 --clustered --out "$W/ch2.jsonl"
	for s in $(sides); do
		use "$s"
		load_export synth "$W/synth.jsonl" "$here/synth.pg"
		merge synth node:Item "$W/ch1.jsonl" "spread rows" spread
		merge synth node:Item "$W/ch2.jsonl" "adjacent rows" adjacent
		"$CTL" fsck "$W/synth" >/dev/null || die "fsck of the synthetic store ($s build) failed"
		rm -rf "$W/synth"
	done
	rm -f "$W/synth.jsonl"
fi
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
summary
if [ -n "${BENCH_SAVE:-}" ]; then
	for k in "${!R[@]}"; do printf '%s %s\n' "$k" "${R[$k]}"; done | sort >"$BENCH_SAVE"
	echo "bench: figures saved to $BENCH_SAVE"
fi
echo
echo "bench: done"
