#!/bin/bash
# commit_no_listing.sh - a commit never lists a table directory (issue 10,
# invariant 131).  One version per close() gives a table one file per
# version; a listing per commit (the removal of dead writers' temp files
# did one) made every write O(versions).  Proved without timing: strace
# counts getdents64 calls on STORE/tables/* (-y names each fd's path).
#  1. graphctl load into a table holding 1,000 dummy ".tmp-*" files: no
#     getdents64 on a table directory, and the files are all still there
#     (controls: the load fdatasyncs, so strace saw it; fsck lists them).
#  2. healing a dead writer's sidecar does list (that is where temp files
#     go now): the control that the count can be non-zero for a writer.
#  3. 20 writes through a mount (strace attached to the daemon): no
#     getdents64 on a table directory (skipped without FUSE or when strace
#     cannot attach).
. "$top_srcdir/tests/crash/crashlib.sh"

if ! command -v strace >/dev/null; then
	echo "SKIP: strace not installed (scripts/deps.sh installs it)"
	exit 77
fi
# LeakSanitizer stops the world with ptrace, which a traced process cannot.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
export ASAN_OPTIONS

# listings FILE: getdents64 calls on a table directory in strace output FILE.
listings() { grep -c 'getdents64([0-9]*</[^>]*/tables/[^>/]*>' "$1" || true; }
syncs() { grep -c 'fdatasync(' "$1" || true; }
traced() { with_timeout "$TMO" strace -f -y -e trace=getdents64,fdatasync -o "$@"; }

S=$T/store
new_store "$S"
D="$S/tables/node:Person"
for i in $(seq 1 1000); do : >"$D/.tmp-99999-x$i"; done
printf '{"type":"Person","data":{"slug":"zz","name":"After"}}\n' >"$T/one.jsonl"

# ---- 1. a load ---------------------------------------------------------
traced "$T/load.st" "$GRAPHCTL" load "$S" --data "$T/one.jsonl" -q && ok "load under strace" || bad "load failed"
[ "$(syncs "$T/load.st")" -ge 1 ] && ok "strace saw the load's fdatasync calls" || bad "strace saw nothing: proves nothing"
[ "$(listings "$T/load.st")" = 0 ] && ok "the load listed no table directory" ||
	bad "the load listed table directories $(listings "$T/load.st") time(s): $(grep getdents64 "$T/load.st" | head -3)"
[ "$(find "$D" -maxdepth 1 -name '.tmp-*' | wc -l)" = 1000 ] && ok "the 1,000 temp files are untouched" || bad "temp files removed by a commit"
traced "$T/fsck.st" "$GRAPHCTL" fsck "$S" -q >/dev/null && ok "fsck: garbage is no problem" || bad "fsck failed"
[ "$(listings "$T/fsck.st")" -ge 1 ] && ok "control: fsck's listing is counted" || bad "fsck's listing not counted: the filter is wrong"

# ---- 2. healing lists ----------------------------------------------------
gen_people 20 v2 >"$T/v2.jsonl"
set +e
GRAPHFS_FAILPOINTS=table/after_tmp_write=exit gctl load "$S" --data "$T/v2.jsonl" -q 2>/dev/null
st=$?
set -e
[ "$st" = 86 ] && [ "$(pending "$S")" = 1 ] && ok "a writer died with its sidecar armed" || bad "exit $st, $(pending "$S") sidecars"
traced "$T/heal.st" "$GRAPHCTL" load "$S" --data "$T/one.jsonl" -q && ok "the next writer heals and loads" || bad "load failed"
[ "$(listings "$T/heal.st")" -ge 1 ] && ok "control: healing the sidecar listed the table (temp files go there)" ||
	bad "healing listed nothing"
[ "$(find "$D" -maxdepth 1 -name '.tmp-*' | wc -l)" = 0 ] && ok "and removed every temp file of the table" || bad "temp files left"
clean "$S" && ok "store clean" || bad "not clean"

# ---- 3. writes through a mount --------------------------------------------
if [ -z "${GRAPHFS:-}" ] || ! command -v fusermount3 >/dev/null || ! [ -r /dev/fuse ] || ! [ -w /dev/fuse ]; then
	echo "ok - scenario 3 skipped: no usable FUSE"
	finish
	exit 0
fi
M=$T/mnt
mkdir -p "$M"
SPID="" FPID=""
mnt_cleanup() {
	[ -n "$SPID" ] && kill -INT "$SPID" 2>/dev/null
	mountpoint -q "$M" && { timeout 20 fusermount3 -u "$M" 2>/dev/null || umount -l "$M" 2>/dev/null || true; }
	[ -n "$FPID" ] && { kill "$FPID" 2>/dev/null || true; wait "$FPID" 2>/dev/null || true; }
	cleanup
}
trap mnt_cleanup EXIT
# wait_for SECS CMD...: polls CMD every 10 ms until it succeeds (bounded).
wait_for() {
	local left=$(( $(scaled "$1") * 100 ))
	shift
	until "$@"; do
		[ "$left" -gt 0 ] || return 1
		sleep 0.01
		left=$((left - 1))
	done
}
"$GRAPHFS" -f "$S" "$M" 2>"$T/mnt.err" &
FPID=$!
wait_for 30 mountpoint -q "$M" || { bad "no mount: $(cat "$T/mnt.err")"; finish; }
strace -f -p "$FPID" -y -e trace=getdents64,fdatasync -o "$T/mnt.st" 2>"$T/strace.err" &
SPID=$!
attached() { grep -q attached "$T/strace.err" || ! kill -0 "$SPID" 2>/dev/null; }
wait_for 30 attached || bad "strace never attached"
if ! kill -0 "$SPID" 2>/dev/null; then
	echo "ok - scenario 3 skipped: strace cannot attach here ($(cat "$T/strace.err"))"
	SPID=""
else
	v0=$(cat "$M/.graphfs/head")
	for i in $(seq 1 20); do
		printf '{"slug":"m%02d","name":"M %d"}\n' "$i" "$i" >"$M/nodes/Person/m$(printf %02d "$i").json" || bad "write $i failed"
	done
	[ "$(cat "$M/.graphfs/head")" = $((v0 + 20)) ] && ok "20 writes through the mount, 20 versions" || bad "head $(cat "$M/.graphfs/head"), was $v0"
	kill -INT "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""
	[ "$(syncs "$T/mnt.st")" -ge 20 ] && ok "strace saw the daemon's fdatasync calls" || bad "strace saw $(syncs "$T/mnt.st") fdatasync: proves nothing"
	[ "$(listings "$T/mnt.st")" = 0 ] && ok "the daemon listed no table directory for 20 commits" ||
		bad "the daemon listed table directories $(listings "$T/mnt.st") time(s)"
fi
timeout 20 fusermount3 -u "$M" || bad "cannot unmount"
wait "$FPID" 2>/dev/null || true
FPID=""
clean "$S" && ok "store clean after the mount" || bad "not clean"
finish
