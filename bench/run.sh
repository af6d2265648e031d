#!/bin/bash
# bench/run.sh - graphfs throughput, memory and incremental-write benchmarks
# (`make bench`; docs/benchmarks.md explains every number).  Each graphctl
# timing is printed next to a baseline measured in the same run on the same
# file, and the ratio graphctl/baseline (time; lower is better):
#   load    vs  cp FILE COPY && sync COPY   (a durable copy: load fsyncs too)
#   export  vs  cat FILE > OUT
#   merge of 100 changed rows: time (best of BENCH_MERGE_RUNS merges, default
#           3, each a different change of the same rows), and the new
#           table-version file's size against the table's total size
#           (O(rows changed), not O(table))
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
# and merges with that build on a store it makes itself, each step right
# after the current build's (alternating, so both see the same machine),
# and the summary shows before, after and after/before.
#
# Environment: GRAPHCTL (default ./graphctl), BENCH_TMPDIR (default /tmp; needs
# ~7 GB free, ~12 GB with a before build), BENCH_SYNTH_NODES, BENCH_GIT=0 to
# skip the git baseline, BENCH_PKG=0 / BENCH_SYNTH=0 to skip a dataset,
# BENCH_MERGE_RUNS (default 3, at most 25: merges timed, the best counted),
# BENCH_READ_RUNS (default 3: exports and fresh-mount reads, the best counted),
# BENCH_LOAD_RUNS (default 1: loads into a fresh store; the best time, the
# highest peak RSS),
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
# shellcheck disable=SC2034 # used by summary.sh
TOL=${BENCH_TOLERANCE:-1.25}
MERGE_RUNS=${BENCH_MERGE_RUNS:-3}
READ_RUNS=${BENCH_READ_RUNS:-3}
LOAD_RUNS=${BENCH_LOAD_RUNS:-1}
case $LOAD_RUNS in ''|*[!0-9]*|0) echo "bench: BENCH_LOAD_RUNS=$LOAD_RUNS: expected a count" >&2; exit 2 ;; esac
case $READ_RUNS in ''|*[!0-9]*|0) echo "bench: BENCH_READ_RUNS=$READ_RUNS: expected a count" >&2; exit 2 ;; esac
case $MERGE_RUNS in ''|*[!0-9]*|0) echo "bench: BENCH_MERGE_RUNS=$MERGE_RUNS: expected a count from 1 to 25" >&2; exit 2 ;; esac
[ "$MERGE_RUNS" -le 25 ] || { echo "bench: BENCH_MERGE_RUNS=$MERGE_RUNS: expected a count from 1 to 25" >&2; exit 2; }
W=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/gfs-bench.XXXXXX")
cleanup() { # never leave a mount behind, whatever step failed
	local m
	for m in "$W"/mnt-*; do
		mountpoint -q "$m" 2>/dev/null || continue
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

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

# st NAME: the SIDE's store of dataset NAME (both sides' stores coexist, so
# that every step alternates between the builds: new, old, new, old ...)
st() { echo "$W/$1.$SIDE"; }

# load_sample NAME FILE SCHEMA: a fresh store with the SIDE's build, one load
# and one cp + fsync of the same file.
load_sample() {
	local name=$1 file=$2 schema=$3 k=$SIDE.$1 rss
	rm -rf "$(st "$name")"
	cat "$file" >/dev/null
	"$CTL" init "$(st "$name")" --schema "$schema" >/dev/null
	timed - "$CTL" load "$(st "$name")" --data "$file" --mode append
	S[$k.load]+="$SECS "
	rss=${R[$k.load.rss]:-0}
	[ "$RSS_MIB" -le "$rss" ] || R[$k.load.rss]=$RSS_MIB # the peak over samples
	timed - sh -c 'cp "$1" "$2" && sync "$2"' sh "$file" "$W/copy"
	rm -f "$W/copy"
	S[$k.cp]+="$SECS " R[$k.bytes]=$(size "$file")
}

load_report() {
	local k=$SIDE.$1
	R[$k.load.s]=$(best "${S[$k.load]}") R[$k.cp.s]=$(best "${S[$k.cp]}")
	row "load --mode append$TAG" "${R[$k.bytes]}" "${R[$k.load.s]}" "${R[$k.load.rss]}" \
		"cp + fsync" "${R[$k.cp.s]}"
	[ "$LOAD_RUNS" = 1 ] || echo "    (best of $LOAD_RUNS loads: ${S[$k.load]}s)"
}

# best "A B C ...": the smallest time.  Other processes on the machine only
# ever add time to a sample, so the best of a few is the step's own cost
# (a same-build comparison by medians still saw x1.8 at load average 5).
# shellcheck disable=SC2086 # the samples are split on purpose
best() { printf '%s\n' $1 | sort -g | head -1; }

# sides_of ROUND: the sides in the order of that round, reversed every other
# round (new old, old new, new old ...) so that neither build always goes
# first.
sides_of() { if [ $(($1 % 2)) = 0 ]; then sides | tac; else sides; fi; }

declare -A S # samples of the repeated steps: S[side.dataset.what] = "t1 t2 ..."

# export_sample NAME FILE: one export vs one cat.
export_sample() {
	local k=$SIDE.$1
	timed "$W/export.jsonl" "$CTL" export "$(st "$1")"
	S[$k.export]+="$SECS " R[$k.export.rss]=$RSS_MIB R[$k.export.bytes]=$(size "$W/export.jsonl")
	rm -f "$W/export.jsonl"
	timed "$W/cat.jsonl" cat "$2"
	S[$k.cat]+="$SECS "
	rm -f "$W/cat.jsonl"
}

# export_report NAME: the best export vs the best cat, the store's size.
export_report() {
	local k=$SIDE.$1
	R[$k.export.s]=$(best "${S[$k.export]}") R[$k.cat.s]=$(best "${S[$k.cat]}")
	row "export$TAG" "${R[$k.export.bytes]}" "${R[$k.export.s]}" "${R[$k.export.rss]}" "cat" "${R[$k.cat.s]}"
	R[$k.store]=$(du -sb "$(st "$1")" | cut -f1)
	printf '  store on disk%s: %s MB for %s MB of JSONL (x%s)\n' "$TAG" \
		"$(fmt "$(div "${R[$k.store]}" 1e6)" 1)" "$(fmt "$(div "${R[$k.bytes]}" 1e6)" 1)" \
		"$(fmt "$(div "${R[$k.store]}" "${R[$k.bytes]}")" 2)"
}

# steps NAME FILE SCHEMA: LOAD_RUNS loads, then READ_RUNS exports and mount reads, each
# step run by every side in turn; the best of each reported.
steps() {
	local s r
	for r in $(seq "$LOAD_RUNS"); do
		for s in $(sides_of "$r"); do use "$s"; load_sample "$@"; done
	done
	for s in $(sides); do use "$s"; load_report "$1"; done
	for r in $(seq "$READ_RUNS"); do
		for s in $(sides_of "$r"); do use "$s"; export_sample "$1" "$2"; done
	done
	for s in $(sides); do use "$s"; export_report "$1"; done
	[ -x "$GRAPHFS" ] || { echo "  (no graphfs at $GRAPHFS: mount read skipped)"; return 0; }
	for r in $(seq "$READ_RUNS"); do
		for s in $(sides_of "$r"); do use "$s"; mount_sample "$1"; done
	done
	for s in $(sides); do use "$s"; mount_report "$1"; done
	echo "  (peak RSS column of the mount rows: the graphfs daemon's RSS after the read)"
}

# mount_sample NAME: a fresh mount of the SIDE's store; the first read of its
# biggest .jsonl through it, and of the same bytes from a native file.
mount_sample() {
	local name=$1 m=$W/mnt-$1 f native pid k=$SIDE.$1 store
	store=$(st "$name")
	[ -x "$FS" ] || die "no graphfs at $FS (BENCH_BEFORE_GRAPHFS)"
	mkdir -p "$m"
	"$FS" "$store" "$m" || die "graphfs $store failed"
	f=$(find "$m/nodes" "$m/edges" -maxdepth 1 -name '*.jsonl' -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
	native=$W/native.jsonl
	# the same bytes, without touching the mount: its first read is timed
	"$CTL" export "$store" --type "$(basename "$f" .jsonl)" >"$native"
	cat "$native" >/dev/null
	# the store warm too (as mount.sh's row 1): the other side's steps since
	# this store was written may have pushed its files out of the page cache
	find "$store/tables" -type f -exec cat {} + >/dev/null
	timed - cat "$f"
	S[$k.mount]+="$SECS " R[$k.mount.bytes]=$(size "$native") R[$k.mount.file]=${f##*/}
	pid=$(pgrep -f "graphfs $store $m" | head -1 || true)
	R[$k.mount.rss]=$(awk '/VmRSS/ { printf "%d", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null || echo "?")
	timed - cat "$native"
	S[$k.native]+="$SECS "
	fusermount3 -u "$m"
	rm -f "$native"
}

mount_report() {
	local k=$SIDE.$1
	R[$k.mount.s]=$(best "${S[$k.mount]}") R[$k.native.s]=$(best "${S[$k.native]}")
	row "mount cat ${R[$k.mount.file]}$TAG" "${R[$k.mount.bytes]}" "${R[$k.mount.s]}" "${R[$k.mount.rss]}" \
		"native cat" "${R[$k.native.s]}"
	[ "$READ_RUNS" = 1 ] || echo "    (best of $READ_RUNS: export ${S[$k.export]}s; mount cat ${S[$k.mount]}s)"
}

# merge NAME TABLE DESC KEY CHANGED_FILE...: a merge of a few changed rows,
# once per file (each a different change of the same rows), every side in
# turn for each file; the best time goes to the summary, the size is the
# last merge's new version.
merge() {
	local name=$1 table=$2 desc=$3 key=$4 total newf bestt f s
	local -A tm=() rss=()
	shift 4
	local round=0
	for f; do
		round=$((round + 1))
		for s in $(sides_of "$round"); do
			use "$s"
			timed - "$CTL" load "$(st "$name")" --data "$f" --mode merge
			tm[$s]+="$SECS " rss[$s]=$RSS_MIB
		done
	done
	for s in $(sides); do
		use "$s"
		bestt=$(best "${tm[$s]}")
		newf=$(head_file "$(st "$name")" "$table")
		total=$(table_bytes "$(st "$name")" "$table")
		printf '  merge %3d %-16s %6s s  peak RSS %4s MiB  new version %8s bytes = %s%% of %s (%s MB, %s versions)%s\n' \
			"$(wc -l <"$1")" "$desc" "$(fmt "$bestt" 3)" "${rss[$s]}" "$(size "$newf")" \
			"$(pct "$(size "$newf")" "$total")" "$table" \
			"$(fmt "$(div "$total" 1e6)" 1)" "${newf##*/}" "$TAG"
		[ $# = 1 ] || echo "    (best of $# merges: ${tm[$s]}s)"
		R[$s.$name.merge.$key.s]=$bestt
	done
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

# shellcheck source-path=SCRIPTDIR source=summary.sh
. "$here/summary.sh"

echo "graphfs benchmarks: $("$GRAPHCTL" --version 2>/dev/null | head -1 || true) $GRAPHCTL"
[ -z "$OLDCTL" ] || echo "before: $("$OLDCTL" --version 2>/dev/null | head -1 || true) $OLDCTL (rows marked (before))"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), tmp $W"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_MAX=$(cut -d' ' -f1 /proc/loadavg)
echo "columns: graphctl time, throughput (input MB / s), peak RSS | baseline time, throughput | graphctl time / baseline time"

if [ "${BENCH_PKG:-1}" != 0 ]; then
	echo
	python3 "$top/tests/data/pkggraph.py" --out "$W/pkg.jsonl" --counts "$W/pkg.counts"
	echo "== package index: $(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print("%d nodes, %d edges, from %s" % (c["nodes"], c["edges"], c["source"]))' "$W/pkg.counts"), $(fmt "$(div "$(size "$W/pkg.jsonl")" 1e6)" 1) MB"
	# 100 Package rows spread over the table, each with a new version string.
	python3 - "$W/pkg.jsonl" "$W/pkg.changed" "$W/pkg.full2" "$MERGE_RUNS" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")[:-1]
pk = [i for i, l in enumerate(lines) if l.startswith('{"type":"Package"') and '"virtual":false' in l]
pick = pk[:: max(1, len(pk) // 100)][:100]
for run in range(int(sys.argv[4]), 0, -1):  # pkg.changed.1 last: full2 has it
    with open("%s.%d" % (sys.argv[2], run), "w", encoding="utf-8") as ch:
        for i in pick:
            o = json.loads(lines[i])
            o["data"]["version"] = o["data"].get("version", "0") + "+bench%d" % run
            ch.write(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n")
            if run == 1:
                lines[i] = json.dumps(o, ensure_ascii=False, separators=(",", ":"))
open(sys.argv[3], "w", encoding="utf-8").write("\n".join(lines) + "\n")
PY
	steps pkg "$W/pkg.jsonl" "$top/tests/data/pkggraph.pg"
	merge pkg node:Package "spread rows" spread "$W"/pkg.changed.*
	rm -rf "$W"/pkg.new "$W"/pkg.old
	[ "${BENCH_GIT:-1}" != 0 ] && git_baseline "$W/pkg.jsonl" "$W/pkg.full2"
	rm -rf "$W/pkg.jsonl" "$W/pkg.full2"
fi

if [ "${BENCH_SYNTH:-1}" != 0 ]; then
	echo
	timed - python3 "$here/synth.py" --nodes "$SYNTH_NODES" --out "$W/synth.jsonl"
	echo "== synthetic: $SYNTH_NODES Items + $((SYNTH_NODES * 3 / 2)) Links, $(fmt "$(div "$(size "$W/synth.jsonl")" 1e6)" 1) MB (generated in $(fmt "$SECS" 1) s)"
	for r in $(seq "$MERGE_RUNS"); do
		python3 "$here/synth.py" --nodes "$SYNTH_NODES" --changed 100 --salt "$r" --out "$W/ch1.$r.jsonl"
		python3 "$here/synth.py" --nodes "$SYNTH_NODES" --changed 100 --clustered --salt "$r" --out "$W/ch2.$r.jsonl"
	done
	steps synth "$W/synth.jsonl" "$here/synth.pg"
	merge synth node:Item "spread rows" spread "$W"/ch1.*.jsonl
	merge synth node:Item "adjacent rows" adjacent "$W"/ch2.*.jsonl
	for s in $(sides); do
		use "$s"
		"$CTL" fsck "$(st synth)" >/dev/null || die "fsck of the synthetic store ($s build) failed"
		rm -rf "$(st synth)"
	done
	rm -f "$W/synth.jsonl"
fi
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_MAX=$(awk -v a="$LOAD_MAX" '{ print ($1 > a) ? $1 : a }' /proc/loadavg)
summary
if [ -n "${BENCH_SAVE:-}" ]; then
	for k in "${!R[@]}"; do printf '%s %s\n' "$k" "${R[$k]}"; done | sort >"$BENCH_SAVE"
	echo "bench: figures saved to $BENCH_SAVE"
fi
echo
echo "bench: done"
