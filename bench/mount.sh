#!/bin/bash
# bench/mount.sh - the mount against its physical limits (`make bench-mount`,
# also run by `make bench`; docs/benchmarks.md, "Mount scenarios").
#
#   bench/mount.sh [--scale small|medium|large|N] [--only 1,4,10]
#
# Every scenario times graphfs and its baselines in the same run, alternating
# (baseline, graphfs, baseline, graphfs ...), BENCH_RUNS times (default 3),
# and prints medians, the ratio graphfs / reference and the goal:
#   copy      the plain copy: versions/N materialized once with `cp -a` into
#             a native directory on the same disk, the same command run on it;
#   pt        libfuse's example passthrough_ll (compiled here from
#             /usr/share/doc/libfuse3-dev/examples) over that copy,
#             -o cache=always,ro: what any FUSE daemon pays for the tree;
#   memfs     bench/memfs.c, one file served from memory: FUSE's ceiling.
# "cold" means `sync; echo 3 > /proc/sys/vm/drop_caches` before the command
# (store, copy and every mount's caches); "warm store" means the FUSE side
# was remounted and the store's files read into the page cache first.
#
# Scales (BENCH_SCALE or --scale): small = 20k nodes and a 100 MB table
# (a few minutes), medium = 200k nodes and 1 GB, large = 1M nodes and 1 GB,
# N = N nodes (table 1 GB from 100k nodes up).  The copy of versions/N takes
# about 11.5 inodes a node.
#
# Environment: GRAPHCTL, GRAPHFS (default: next to each other, ./graphctl),
# BENCH_RUNS, BENCH_SCALE, BENCH_TABLE_MB, BENCH_COMMITS (20),
# BENCH_TMPDIR (/tmp), BENCH_RESULTS (bench/results.json under the current
# directory), BENCH_FUSE_OPTS (e.g. "-o max_read=131072", given to graphfs,
# memfs and passthrough_ll alike), BENCH_KEEP=1 keeps the work directory.
# BENCH_BEFORE_GRAPHFS=OLD/graphfs (or BENCH_BEFORE_GRAPHCTL=OLD/graphctl,
# graphfs next to it; issue 9, requirement 6): the read rows 1, 2, 3 and 8
# also time that build's daemon over the same store (it must read the
# current store format), in the same runs, and rows 1v, 2v, 3v and 8v hold
# the current build against it (unchanged: <= 1.25x before).
# Scenarios needing a missing tool (rsync, restic, tar) or root (drop_caches)
# are skipped with the reason.  Every mount is unmounted by the EXIT trap.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
GRAPHCTL=${GRAPHCTL:-./graphctl}
GRAPHFS=${GRAPHFS:-$(dirname "$GRAPHCTL")/graphfs}
OLDFS=${BENCH_BEFORE_GRAPHFS:-${BENCH_BEFORE_GRAPHCTL:+$(dirname "$BENCH_BEFORE_GRAPHCTL")/graphfs}}
RUNS=${BENCH_RUNS:-3}
SCALE=${BENCH_SCALE:-small}
ONLY=
FOPTS=${BENCH_FUSE_OPTS:-}
while [ $# -gt 0 ]; do
	case $1 in
	--scale) SCALE=$2; shift 2 ;;
	--scale=*) SCALE=${1#*=}; shift ;;
	--only) ONLY=",$2,"; shift 2 ;;
	*) echo "usage: $0 [--scale small|medium|large|N] [--only 1,2,...]" >&2; exit 2 ;;
	esac
done
case $SCALE in
small) N=20000 ;;
medium) N=200000 ;;
large) N=1000000 ;;
*[!0-9]* | "") echo "bench: bad scale '$SCALE'" >&2; exit 2 ;;
*) N=$SCALE ;;
esac
TABLE_MB=${BENCH_TABLE_MB:-$([ "$N" -ge 100000 ] && echo 1024 || echo 100)}
COMMITS=${BENCH_COMMITS:-20}
RESULTS=${BENCH_RESULTS:-bench/results.json}
for x in "$GRAPHCTL" "$GRAPHFS" ${OLDFS:+"$OLDFS"}; do
	[ -x "$x" ] || { echo "bench: $x is not executable (make)" >&2; exit 2; }
done

W=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/gfs-mbench.XXXXXX")
MOUNTS=()
cleanup() {
	local m
	for m in "${MOUNTS[@]}"; do
		mountpoint -q "$m" 2>/dev/null || continue
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	[ "${BENCH_KEEP:-0}" = 1 ] && echo "bench: kept $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
mkdir -p "$W/s"
: >"$W/rows.jsonl"

die() { echo "bench: $*" >&2; exit 1; }
say() { printf '%s\n' "$*" >&2; }
want() { [ -z "$ONLY" ] || [[ $ONLY == *",$1,"* ]]; }
have() { command -v "$1" >/dev/null 2>&1; }
mb() { python3 "$here/mbench.py" "$@"; }
CAN_DROP=0
[ -w /proc/sys/vm/drop_caches ] && CAN_DROP=1
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
skip() { say "  scenario $1 skipped: $2"; echo "{\"id\":\"$1\",\"label\":\"(skipped) $2\",\"unit\":\"s\",\"gfs\":\"-\"}" >>"$W/rows.jsonl"; }

# ---- timing and results ------------------------------------------------
# t KEY CMD...: runs CMD (output discarded), appends its wall seconds to
# sample KEY and leaves them in SECS.
t() {
	local key=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>"$W/err" || { head -5 "$W/err" >&2; die "failed: $*"; }
	t1=$EPOCHREALTIME
	SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
	echo "$SECS" >>"$W/s/$key"
}
put() { echo "$2" >>"$W/s/$1"; } # put KEY VALUE: a sample measured otherwise

# row ID LABEL UNIT GFS_KEY REF 'name=key ...' 'cond;cond' TARGET [NOTE] [BYTES]
row() {
	python3 - "$@" >>"$W/rows.jsonl" <<'PY'
import json, sys
a = sys.argv[1:] + [""] * 10
bases = [b.split("=", 1) for b in a[5].split()]
print(json.dumps({"id": a[0], "label": a[1], "unit": a[2], "gfs": a[3], "ref": a[4],
                  "bases": bases, "conds": [c for c in a[6].split(";") if c],
                  "target": a[7], "note": a[8], "bytes": int(a[9] or 0)}))
PY
	say "  done: $1 $2"
}
median() { sort -g "$W/s/$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ---- mounts ------------------------------------------------------------
# mnt_gfs STORE MNT [options]: mounts graphfs, remembered for the trap.
mnt_gfs() {
	local s=$1 m=$2
	shift 2
	mkdir -p "$m"
	MOUNTS+=("$m")
	# shellcheck disable=SC2086
	"$GRAPHFS" "$s" "$m" $FOPTS "$@" || die "graphfs $s $m failed"
}
# passthrough_ll holds an O_PATH descriptor for every inode the kernel
# caches, so a tree of E entries needs E descriptors: up to fs.nr_open.
ulimit -n "$(cat /proc/sys/fs/nr_open)" 2>/dev/null || true
# pt_fits ENTRIES: whether pt can hold that many inodes (caches are dropped,
# so the kernel forgets them, before each pt command).
pt_fits() {
	[ $HAVE_PT = 1 ] || return 1
	[ "$1" -lt $(($(ulimit -n) - 100)) ] && return 0
	[ -n "${PT_SAID:-}" ] || say "  (pt skipped where a command needs more than $(ulimit -n) inodes: passthrough_ll keeps a descriptor per inode and RLIMIT_NOFILE cannot be raised here)"
	PT_SAID=1
	return 1
}
# mnt_old STORE MNT: the before build's graphfs (BENCH_BEFORE_GRAPHFS).
mnt_old() {
	mkdir -p "$2"
	MOUNTS+=("$2")
	# shellcheck disable=SC2086
	"$OLDFS" "$1" "$2" $FOPTS || die "before graphfs $OLDFS $1 $2 failed"
}
mnt_pt() { # mnt_pt SRCDIR MNT: passthrough_ll, cached like versions/N
	mkdir -p "$2"
	MOUNTS+=("$2")
	# shellcheck disable=SC2086
	"$W/passthrough_ll" -o source="$1",cache=always,ro $FOPTS "$2" || die "passthrough_ll $1 failed"
}
mnt_mem() { # mnt_mem BYTES MNT
	mkdir -p "$2"
	MOUNTS+=("$2")
	# shellcheck disable=SC2086
	"$W/memfs" -o size="$1" $FOPTS "$2" || die "memfs failed"
}
umnt() { fusermount3 -u "$1" 2>/dev/null || umount -l "$1"; }
# graphfs daemon of MNT, or nothing (no error: `set -e -o pipefail` would end the
# script silently when MNT is not mounted, e.g. row 12.0 under --only 12)
pid_of() { pgrep -f "graphfs .*$1( |\$)" | head -1 || true; }
stats() { cat "$1/.graphfs/stats" >"$2"; }
warm() { find "$1" -type f -exec cat {} + >/dev/null; } # a store into the page cache

# ---- build the baselines' servers ----------------------------------------
fuse_cc() { # fuse_cc SRC OUT
	# shellcheck disable=SC2046
	cc -O2 -g $(pkg-config --cflags fuse3) -o "$2" "$1" $(pkg-config --libs fuse3)
}
PT_SRC=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
HAVE_PT=0
if have pkg-config && pkg-config --exists fuse3 && have cc; then
	fuse_cc "$here/memfs.c" "$W/memfs" || die "cannot build bench/memfs.c"
	if [ -f "$PT_SRC" ] && fuse_cc "$PT_SRC" "$W/passthrough_ll" 2>"$W/pt.log"; then
		HAVE_PT=1
	else
		say "bench: no passthrough_ll ($PT_SRC: install libfuse3-dev): that baseline is skipped"
	fi
else
	die "need cc and libfuse3-dev (pkg-config fuse3) for bench/memfs.c"
fi

# ---- datasets ----------------------------------------------------------
# synth_store NAME NODES: bench/synth.py's graph loaded into W/NAME.
synth_store() {
	python3 "$here/synth.py" --nodes "$2" --out "$W/$1.jsonl"
	"$GRAPHCTL" init "$W/$1" --schema "$here/synth.pg" >/dev/null
	"$GRAPHCTL" load "$W/$1" --data "$W/$1.jsonl" --mode append --quiet
	rm -f "$W/$1.jsonl"
}
head_of() { "$GRAPHCTL" log "$1" --json | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'; }

echo "graphfs mount benchmarks: $("$GRAPHFS" --version 2>/dev/null | grep -m1 graphfs) ($GRAPHFS)"
[ -z "$OLDFS" ] || echo "before build: $("$OLDFS" --version 2>/dev/null | grep -m1 graphfs) ($OLDFS): rows 1v, 2v, 3v, 8v"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg), tmp $W"
echo "scale $SCALE: $N nodes, $((N * 3 / 2)) edges, table file ${TABLE_MB} MB; $RUNS runs a scenario; FUSE options '${FOPTS}'"
[ $CAN_DROP = 1 ] || say "bench: /proc/sys/vm/drop_caches is not writable (not root): cold scenarios are skipped"

G=$W/g; GM=$W/gm          # the graph store and its mount
B=$W/b; BM=$W/bm          # the big-table store and its mount
COPY=$W/copy; PTM=$W/ptm  # versions/H copied, and passthrough_ll over it
T0=$EPOCHREALTIME
ENTRIES=0 H=0
if want 4 || want 5 || want 6 || want 7 || want 8 || want 10 || want 11; then
	say "bench: loading $N nodes"
	synth_store g "$N"
	H=$(head_of "$G")
	mnt_gfs "$G" "$GM"
fi
# the plain copy, only for the scenarios that compare with it
if want 4 || want 5 || want 6 || want 7 || want 8 || want 11; then
	say "bench: copying versions/$H (cp -a)"
	mkdir -p "$COPY"
	cp -a "$GM/versions/$H/." "$COPY/"
	ENTRIES=$(find "$COPY" | wc -l)
	[ $HAVE_PT = 1 ] && mnt_pt "$COPY" "$PTM"
	echo "graph: versions/$H has $ENTRIES entries ($(du -sh "$COPY" | cut -f1) as a native copy)"
fi

# big_table: the Doc table of W/b, its native copy W/bcopy/Doc.jsonl.
big_table() {
	local rows
	rows=$(mb blob --bytes $((TABLE_MB * 1000000)) --out "$W/b.jsonl")
	"$GRAPHCTL" init "$B" --schema "$here/blob.pg" >/dev/null
	"$GRAPHCTL" load "$B" --data "$W/b.jsonl" --mode append --quiet
	rm -f "$W/b.jsonl"
	mnt_gfs "$B" "$BM"
	mkdir -p "$W/bcopy"
	cp "$BM/nodes/Doc.jsonl" "$W/bcopy/Doc.jsonl"
	BYTES=$(stat -c %s "$W/bcopy/Doc.jsonl")
	[ $HAVE_PT = 1 ] && mnt_pt "$W/bcopy" "$W/bpt"
	mnt_mem "$BYTES" "$W/mem"
	echo "table: nodes/Doc.jsonl, $rows rows, $BYTES bytes"
}

# ---- 1-3: one big table file -------------------------------------------
# Each run: copy (page cache), pt (remounted), memfs (remounted), graphfs
# (remounted, store warm); first read, then the same read again.
s_bigread() {
	local r f
	for ((r = 1; r <= RUNS; r++)); do
		cat "$W/bcopy/Doc.jsonl" >/dev/null
		t c1 cat "$W/bcopy/Doc.jsonl"
		t c3 cat "$W/bcopy/Doc.jsonl"
		if [ $HAVE_PT = 1 ]; then
			umnt "$W/bpt"; mnt_pt "$W/bcopy" "$W/bpt"
			t p1 cat "$W/bpt/Doc.jsonl"
		fi
		umnt "$W/mem"; mnt_mem "$BYTES" "$W/mem"
		t m1 cat "$W/mem/data"
		umnt "$BM"; warm "$B"; mnt_gfs "$B" "$BM"
		f=$BM/nodes/Doc.jsonl
		t g1 cat "$f"
		t g3 cat "$f"
		if [ -n "$OLDFS" ]; then
			mountpoint -q "$W/bmo" && umnt "$W/bmo"
			warm "$B"; mnt_old "$B" "$W/bmo"
			t o1 cat "$W/bmo/nodes/Doc.jsonl"
			t o3 cat "$W/bmo/nodes/Doc.jsonl"
		fi
	done
	row 1 "cat ${TABLE_MB} MB table, store warm, 1st read" s g1 memfs "memfs=m1 copy=c1 pt=p1" \
		"ratio<=1.4286;mbps>=1000" ">=0.7x memfs thr; >=1000 MB/s" "" "$BYTES"
	[ -z "$OLDFS" ] || row 1v "  1st read, vs the before build" s g1 before "before=o1" \
		"ratio<=1.25" "<=1.25x before" "" "$BYTES"
	row 3 "cat ${TABLE_MB} MB table, read again" s g3 copy "copy=c3" "ratio<=1.2" "<=1.2x copy" "" "$BYTES"
	[ -z "$OLDFS" ] || row 3v "  read again, vs the before build" s g3 before "before=o3" \
		"ratio<=1.25" "<=1.25x before" "" "$BYTES"
	[ $CAN_DROP = 1 ] || { skip 2 "needs root for drop_caches"; return; }
	for ((r = 1; r <= RUNS; r++)); do
		drop; t c2 cat "$W/bcopy/Doc.jsonl"
		[ $HAVE_PT = 1 ] && { drop; t p2 cat "$W/bpt/Doc.jsonl"; }
		drop; t g2 cat "$BM/nodes/Doc.jsonl"
		[ -z "$OLDFS" ] || { drop; t o2 cat "$W/bmo/nodes/Doc.jsonl"; }
	done
	row 2 "cat ${TABLE_MB} MB table, cold (drop_caches)" s g2 copy "copy=c2 pt=p2" \
		"ratio<=2.5;faster:pt" "<=2.5x copy; faster than pt" "" "$BYTES"
	[ -z "$OLDFS" ] || row 2v "  cold, vs the before build" s g2 before "before=o2" \
		"ratio<=1.25" "<=1.25x before" "" "$BYTES"
}

# ---- 4-5: walking versions/H -------------------------------------------
# The commands, run in the directory walked.
c_find() { (cd "$1" && find . >/dev/null); }
c_lslR() { (cd "$1" && ls -lR >/dev/null); }
c_du() { (cd "$1" && du -s . >/dev/null); }
c_tar() { (cd "$1" && tar -cf - . | cat >/dev/null); }

# walk KEY NAME CMD DIR_GFS DIR_COPY DIR_PT ID1 TARGET1 ID2 TARGET2 [COLD]: per
# run, each of copy, pt, graphfs: cold, the command, then again; the second
# pass's requests reaching graphfs come from .graphfs/stats.
walk() {
	local k=w_$1 name=$2 cmd=$3 dg=$4 dc=$5 dp=$6 r note pt=0
	shift
	pt_fits "$ENTRIES" && pt=1
	for ((r = 1; r <= RUNS; r++)); do
		drop; t "${k}_c1" "$cmd" "$dc"; t "${k}_c2" "$cmd" "$dc"
		if [ $pt = 1 ]; then
			drop; t "${k}_p1" "$cmd" "$dp"; t "${k}_p2" "$cmd" "$dp"
		fi
		drop; t "${k}_g1" "$cmd" "$dg"
		stats "$GM" "$W/st.a"
		t "${k}_g2" "$cmd" "$dg"
		stats "$GM" "$W/st.b"
	done
	note="requests in graphfs's last 2nd pass: $(mb statdelta "$W/st.a" "$W/st.b")"
	row "$6" "$name 1st pass (cold)" s "${k}_g1" copy "copy=${k}_c1 pt=${k}_p1" "$7" "$8"
	row "$9" "$name 2nd pass" s "${k}_g2" copy "copy=${k}_c2 pt=${k}_p2" "ratio<=1.2" "<=1.2x copy" "$note"
}

s_walks() {
	[ $CAN_DROP = 1 ] || { skip 4 "needs root for drop_caches"; return; }
	local v=$GM/versions/$H
	walk find "find versions/$H" c_find "$v" "$COPY" "$PTM" 4a "ratio<=2" "<=2x copy" 5a
	walk lslR "ls -lR versions/$H" c_lslR "$v" "$COPY" "$PTM" 4b "ratio<=2" "<=2x copy" 5b
	walk du "du -s versions/$H" c_du "$v" "$COPY" "$PTM" 4c "" "(no goal)" 5c
	if have tar; then
		walk tar "tar -cf - versions/$H | cat" c_tar "$v" "$COPY" "$PTM" 4d "" "(no goal)" 5d
	else
		skip 4d "tar is not installed"
	fi
}

# ---- 6: find over the live view ----------------------------------------
c_findlive() { (cd "$1" && find nodes edges >/dev/null); }
s_live() {
	[ $CAN_DROP = 1 ] || { skip 6 "needs root for drop_caches"; return; }
	local r pt=0
	pt_fits "$ENTRIES" && pt=1
	for ((r = 1; r <= RUNS; r++)); do
		drop; t l_c1 c_findlive "$COPY"; t l_c2 c_findlive "$COPY"
		if [ $pt = 1 ]; then
			drop; t l_p1 c_findlive "$PTM"; t l_p2 c_findlive "$PTM"
		fi
		drop; t l_g1 c_findlive "$GM"
		stats "$GM" "$W/st.a"
		t l_g2 c_findlive "$GM"
		stats "$GM" "$W/st.b"
	done
	row 6a "find live nodes/ edges/ 1st pass (cold)" s l_g1 copy "copy=l_c1 pt=l_p1" "ratio<=3" "<=3x copy"
	row 6b "find live nodes/ edges/ 2nd pass" s l_g2 copy "copy=l_c2 pt=l_p2" "ratio<=1.5" "<=1.5x copy" \
		"requests in graphfs's last 2nd pass: $(mb statdelta "$W/st.a" "$W/st.b")"
}

# ---- 7: ls -l of the type directory ------------------------------------
c_lsl() { ls -l "$1/nodes/Item/" >/dev/null; }
s_typedir() {
	[ $CAN_DROP = 1 ] || { skip 7 "needs root for drop_caches"; return; }
	local r pt=0
	pt_fits $((2 * N + 10)) && pt=1
	for ((r = 1; r <= RUNS; r++)); do
		drop; t d_c c_lsl "$COPY"
		[ $pt = 1 ] && { drop; t d_p c_lsl "$PTM"; }
		drop; t d_g c_lsl "$GM"
	done
	row 7 "ls -l live nodes/Item/ ($N nodes, cold)" s d_g copy "copy=d_c pt=d_p" \
		"value<=0.5;ratio<=1.5" "<=0.5 s; <=1.5x copy"
}

# ---- 8: cat of 10,000 random node files ---------------------------------
c_cats() { (cd "$1" && xargs -a "$W/sample" cat >/dev/null); }
s_nodefiles() {
	[ $CAN_DROP = 1 ] || { skip 8 "needs root for drop_caches"; return; }
	local r n pt=0
	mb sample --nodes "$N" --count 10000 >"$W/sample"
	n=$(wc -l <"$W/sample")
	pt_fits $((n + 10)) && pt=1
	[ -z "$OLDFS" ] || mnt_old "$G" "$W/gmo"
	for ((r = 1; r <= RUNS; r++)); do
		drop; t n_c c_cats "$COPY"
		[ $pt = 1 ] && { drop; t n_p c_cats "$PTM"; }
		drop; t n_g c_cats "$GM/versions/$H"
		[ -z "$OLDFS" ] || { drop; t n_o c_cats "$W/gmo/versions/$H"; }
	done
	row 8 "cat $n random node files (cold)" s n_g copy "copy=n_c pt=n_p" "ratio<=2" "<=2x copy"
	[ -z "$OLDFS" ] || row 8v "  node files, vs the before build" s n_g before "before=n_o" "ratio<=1.25" "<=1.25x before"
	[ -z "$OLDFS" ] || umnt "$W/gmo"
}

# ---- 9: two readers against one -----------------------------------------
# One dd of the whole table file, then two dds of its halves at once, each
# on a fresh mount (store warm): throughput ratio = time(1) / time(2).
c_dd1() { dd if="$1" of=/dev/null bs=1M status=none; }
c_dd2() {
	local half=$((($2 + 2097151) / 2097152))
	dd if="$1" of=/dev/null bs=1M count=$half status=none &
	dd if="$1" of=/dev/null bs=1M skip=$half status=none
	wait
}
s_concurrent() {
	local r
	for ((r = 1; r <= RUNS; r++)); do
		umnt "$W/mem"; mnt_mem "$BYTES" "$W/mem"
		t x_m1 c_dd1 "$W/mem/data"
		umnt "$W/mem"; mnt_mem "$BYTES" "$W/mem"
		t x_m2 c_dd2 "$W/mem/data" "$BYTES"
		put x_m "$(awk -v a="$(tail -1 "$W/s/x_m1")" -v b="$SECS" 'BEGIN { print a / b }')"
		umnt "$BM"; warm "$B"; mnt_gfs "$B" "$BM"
		t x_g1 c_dd1 "$BM/nodes/Doc.jsonl"
		umnt "$BM"; warm "$B"; mnt_gfs "$B" "$BM"
		t x_g2 c_dd2 "$BM/nodes/Doc.jsonl" "$BYTES"
		put x_g "$(awk -v a="$(tail -1 "$W/s/x_g1")" -v b="$SECS" 'BEGIN { print a / b }')"
	done
	row 9 "2 readers / 1 reader throughput, ${TABLE_MB} MB" x x_g "" "memfs=x_m" "value>=1.7" ">=1.7x" \
		"1 reader: graphfs $(median x_g1) s, memfs $(median x_m1) s; 2 readers: graphfs $(median x_g2) s, memfs $(median x_m2) s"
}

# ---- 10: a commit seen by another mount's live view ---------------------
# A second mount of the graph store with -o live_timeout=3600, so only the
# notifier can show a change (with the default 1 s the entry timeout would
# hide it); after find over its live view (its inodes cached), COMMITS
# commits of K rows each: the time from `graphctl load` returning until a
# changed node file, read in a loop through that mount, shows the new bytes.
s_visible() {
	local k c key lag load nl inodes m=$W/gm2
	mnt_gfs "$G" "$m" -o live_timeout=3600
	c_findlive "$m"
	inodes=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["inodes"])' "$m/.graphfs/stats")
	for k in 1 1000; do
		[ "$k" -le "$N" ] || continue
		for ((c = 1; c <= COMMITS; c++)); do
			key=$(mb changed --nodes "$N" --rows "$k" --salt $((k * 100 + c)) --out "$W/ch.jsonl")
			cat "$m/nodes/Item/$key.json" >/dev/null # cached before the commit
			read -r lag load nl < <(mb visible --graphctl "$GRAPHCTL" --store "$G" --data "$W/ch.jsonl" \
				--file "$m/nodes/Item/$key.json" --marker "\"v$((k * 100 + c)) " --stats "$m/.graphfs/stats")
			[ -n "$nl" ] || die "commit $c of $k rows: no visibility measured"
			put "v${k}" "$(awk -v s="$lag" 'BEGIN { print s * 1000 }')"
			put "v${k}_load" "$(awk -v s="$load" 'BEGIN { print s * 1000 }')"
			put "v${k}_nl" "$nl"
		done
		local p99
		p99=$(sort -g "$W/s/v$k" | awk '{ v[NR] = $1 } END { i = int(NR * 0.99 + 0.999); print v[(i > NR) ? NR : i] }')
		put "v${k}_p99" "$p99"
		row "10.$k" "commit of $k rows visible via 2nd mount, p99" ms "v${k}_p99" "" \
			"median=v${k} graphctl-load=v${k}_load notifier.lag_ms_last=v${k}_nl" \
			"value<=100" "p99 <=100 ms" "$COMMITS commits, max $(sort -g "$W/s/v$k" | tail -1) ms; inodes held by that mount: $inodes; live_timeout=3600"
	done
	umnt "$m"
}

# ---- 11: rsync of the live view after a 1% commit -----------------------
c_rsync() { rsync -a --delete --exclude=/versions --exclude=/.graphfs "$1/" "$2/"; }
s_rsync() {
	have rsync || { skip 11 "rsync is not installed"; return; }
	local r k=$((N / 100)) key files xfer rd note
	[ "$k" -ge 1 ] || k=1
	mkdir -p "$W/rs_g" "$W/rs_c"
	# the live copy: the copy brought to the head (untimed), and both mirrors
	c_rsync "$GM" "$COPY"
	c_rsync "$GM" "$W/rs_g"
	c_rsync "$COPY" "$W/rs_c"
	for ((r = 1; r <= RUNS; r++)); do
		key=$(mb changed --nodes "$N" --rows "$k" --salt $((5000 + r)) --out "$W/ch.jsonl")
		mb visible --graphctl "$GRAPHCTL" --store "$G" --data "$W/ch.jsonl" \
			--file "$GM/nodes/Item/$key.json" --marker "\"v$((5000 + r)) " --stats "$GM/.graphfs/stats" >/dev/null
		stats "$GM" "$W/st.a"
		t r_g sh -c 'rsync -a --delete --stats --exclude=/versions --exclude=/.graphfs "$1/" "$2/" >"$3"' \
			sh "$GM" "$W/rs_g" "$W/rsync.out"
		stats "$GM" "$W/st.b"
		read -r files xfer < <(tr -d , <"$W/rsync.out" | python3 -c 'import re,sys; t=sys.stdin.read(); print(re.search(r"Number of files: \d+ \(reg: (\d+)", t).group(1), re.search(r"regular files transferred: (\d+)", t).group(1))')
		rd=$(python3 -c 'import json,sys; a=json.load(open(sys.argv[1]))["requests"]; b=json.load(open(sys.argv[2]))["requests"]; print(b["readdir"]+b["readdirplus"]-a["readdir"]-a["readdirplus"])' "$W/st.a" "$W/st.b")
		put r_x "$xfer"
		put r_pct "$(awk -v a="$xfer" -v b="$files" 'BEGIN { print 100 * a / (b ? b : 1) }')"
		put r_rd "$rd"
		c_rsync "$GM" "$COPY" # the same change in the copy (untimed)
		t r_c rsync -a --delete "$COPY/" "$W/rs_c/"
	done
	note="$k Item rows changed a commit; $files files in the tree; changed directories: /, nodes/, nodes/Item/ (3)"
	row 11a "rsync -a live view after 1% commit: time" s r_g copy "copy=r_c" "" "(none)" "$note"
	row 11b "  files transferred / files (%)" "%" r_pct "" "" "value<=1" "<=1%" \
		"files transferred (last run): $xfer of $files regular files"
	row 11c "  READDIR+READDIRPLUS reaching graphfs" n r_rd "" "" "value<=3" "<= changed dirs (3)"
}

# ---- 12: daemon RSS after find, 4 scales ---------------------------------
s_rss() {
	local n i m pid
	pid=$(pid_of "$GM")
	if [ -n "$pid" ]; then
		put rss_main "$(($(ps -o rss= -p "$pid") / 1024))"
		row 12.0 "graphfs RSS, $N nodes, after scenarios 4-11" MB rss_main "" "" "value<=64" "<=64 MB"
	fi
	for i in 8 4 2 1; do
		n=$((N / i))
		synth_store "r$i" "$n"
		m=$W/rm$i
		mnt_gfs "$W/r$i" "$m"
		(cd "$m" && find . >/dev/null)
		pid=$(pid_of "$m")
		put "rss$i" "$(($(ps -o rss= -p "$pid") / 1024))"
		row "12.$i" "graphfs RSS after find, $n nodes" MB "rss$i" "" "" "value<=64" "<=64 MB"
		umnt "$m"
		rm -rf "${W:?}/r$i"
	done
}

# ---- 13: restic backup of a 20k-node type directory ----------------------
# Sources: the copy, pt over it, graphfs versions (through HEAD, so the path
# stays the same after the commit) and graphfs live.  Each run: a fresh
# repository each, first backup; then a commit changing 1% of the nodes (the
# copy gets the same change, untimed, after graphfs's second backups) and a
# second backup.
restic_backup() { # restic_backup KEY REPO DIR: times it, records what changed
	t "$1" sh -c 'restic -r "$1" backup --json "$2" >"$3"' sh "$2" "$3" "$W/restic.out"
	read -r RNEW RCHG RUNM < <(mb restic-summary <"$W/restic.out")
}
s_restic() {
	have restic || { skip 13 "restic is not installed (apt-get install restic)"; return; }
	local RN=20000 r src dir k=200 key note
	local -A dirs
	export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$W/restic-cache
	synth_store rs "$RN"
	mnt_gfs "$W/rs" "$W/rsm"
	mkdir -p "$W/rscopy"
	cp -a "$W/rsm/HEAD/nodes/Item" "$W/rscopy/"
	dirs[copy]=$W/rscopy/Item
	dirs[gver]=$W/rsm/HEAD/nodes/Item
	dirs[glive]=$W/rsm/nodes/Item
	if pt_fits "$(find "$W/rscopy" | wc -l)"; then
		mnt_pt "$W/rscopy" "$W/rspt"
		dirs[pt]=$W/rspt/Item
	fi
	for ((r = 1; r <= RUNS; r++)); do
		for src in copy pt gver glive; do
			[ -n "${dirs[$src]:-}" ] || continue
			rm -rf "$W/repo-$src"
			restic -r "$W/repo-$src" init >/dev/null 2>&1 || die "restic init failed"
			restic_backup "e1_$src" "$W/repo-$src" "${dirs[$src]}"
			note="1st: $RNEW new"
		done
		key=$(mb changed --nodes "$RN" --rows "$k" --salt $((7000 + r)) --out "$W/ch.jsonl")
		mb visible --graphctl "$GRAPHCTL" --store "$W/rs" --data "$W/ch.jsonl" \
			--file "$W/rsm/nodes/Item/$key.json" --marker "\"v$((7000 + r)) " --stats "$W/rsm/.graphfs/stats" >/dev/null
		for src in gver glive copy pt; do
			[ -n "${dirs[$src]:-}" ] || continue
			[ "$src" = copy ] && rsync -a --delete "$W/rsm/HEAD/nodes/Item/" "$W/rscopy/Item/"
			restic_backup "e2_$src" "$W/repo-$src" "${dirs[$src]}"
			echo "$src: $RNEW new, $RCHG changed, $RUNM unmodified" >"$W/restic.$src"
		done
	done
	note="2nd backups (last run): $(cat "$W/restic.gver"); $(cat "$W/restic.glive"); $(cat "$W/restic.copy")"
	row 13a "restic backup HEAD/nodes/Item ($RN), 1st" s e1_gver copy "copy=e1_copy pt=e1_pt" "ratio<=2" "<=2x copy"
	row 13b "restic backup live nodes/Item ($RN), 1st" s e1_glive copy "copy=e1_copy pt=e1_pt" "ratio<=2" "<=2x copy"
	row 13c "restic HEAD/nodes/Item after 1% commit" s e2_gver copy "copy=e2_copy pt=e2_pt" "ratio<=2" "<=2x copy" "$note"
	row 13d "restic live nodes/Item after 1% commit" s e2_glive copy "copy=e2_copy pt=e2_pt" "ratio<=2" "<=2x copy"
}

if want 1 || want 2 || want 3 || want 9; then
	say "bench: making the ${TABLE_MB} MB table"
	big_table
fi
want 1 || want 2 || want 3 && s_bigread
want 9 && s_concurrent
want 4 || want 5 && s_walks
want 6 && s_live
want 7 && s_typedir
want 8 && s_nodefiles
want 10 && s_visible
want 11 && s_rsync
want 13 && s_restic
want 12 && s_rss
python3 - "$W/meta.json" "$SCALE" "$N" "$TABLE_MB" "$RUNS" "$FOPTS" "$H" "$ENTRIES" "$T0" <<'PY'
import json, os, subprocess, sys, time
a = sys.argv
json.dump({"scale": a[2], "nodes": int(a[3]), "table_mb": int(a[4]), "runs": int(a[5]),
           "fuse_opts": a[6], "version": int(a[7]), "tree_entries": int(a[8]),
           "seconds": round(time.time() - float(a[9]), 1), "cores": os.cpu_count(),
           "kernel": os.uname().release, "load": open("/proc/loadavg").read().split()[:3],
           "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, open(a[1], "w"))
PY
mkdir -p "$(dirname "$RESULTS")"
mb report "$W" "$RESULTS"
echo "bench: done in $(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"
