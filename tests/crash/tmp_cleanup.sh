#!/bin/bash
# tmp_cleanup.sh - a writer killed after writing its table temp file but
# before link() leaves a ".tmp-*" file in the table's directory.  It is never
# a version (readers, fsck and the next writer ignore it as one).  Builders
# create temp files only after their writer armed its sidecar, so a leftover
# belongs to a sidecar, and whoever resolves that sidecar (holding the
# table's LOCK_EX) removes it - never a commit, which would have to list the
# table directory (O(versions), issue 10; invariant 130):
#  1. heal-first: the next writer of the table resolves the dead writer's
#     sidecar and that removes the temp file; a load that fails validation
#     (before it heals) removes nothing; fsck shows it as garbage meanwhile.
#  2. a read-write mount's sweep resolves it too (skipped without FUSE).
#  3. a temp file with no sidecar (left by an older build, which removed
#     them in every commit) stays through commits, fsck reports it as
#     garbage with exit status 0, 'graphctl recover' removes it.
#  4. a fenced writer (commit/skip_locks on the sweep: its lease expired)
#     whose live temp file a recovery removes fails cleanly at link():
#     nothing of it visible, store clean, no temp file left.
. "$top_srcdir/tests/crash/crashlib.sh"

S=$T/store
new_store "$S"
gen_people 50 v2 >"$T/v2.jsonl"
printf '{"type":"Person","data":{"slug":"zz","name":"After"}}\n' >"$T/one.jsonl"
printf '{"type":"Person","data":{"slug":"bad","name":1}}\n' >"$T/bad.jsonl"
tmps() { find "$1/tables/node:Person" -maxdepth 1 -name '.tmp-*' | wc -l; }
before=$(gctl export "$S")

# ---- 1. heal-first removes it -------------------------------------------
set +e
GRAPHFS_FAILPOINTS=table/after_tmp_write=exit gctl load "$S" --data "$T/v2.jsonl" -q 2>/dev/null
st=$?
set -e
[ "$st" = 86 ] && ok "writer killed after its temp file (exit 86)" || bad "exit $st"
[ "$(tmps "$S")" -ge 1 ] && ok "it left a temp file in node:Person" || bad "no temp file left: the test proves nothing"
[ "$(pending "$S")" = 1 ] && ok "and its sidecar" || bad "$(pending "$S") sidecars"
gctl fsck "$S" >"$T/fsck1" 2>&1 || true  # the pending sidecar is a problem, the temp file is not
grep -q "^garbage: table 'node:Person': [0-9]* temp file" "$T/fsck1" && ok "fsck shows the temp file as garbage" ||
	bad "fsck does not show the temp file: $(cat "$T/fsck1")"
[ "$(gctl export "$S")" = "$before" ] && ok "nothing of it visible" || bad "export changed"
cp -a "$S" "$T/killed"   # for scenario 2

set +e
gctl load "$S" --data "$T/bad.jsonl" -q 2>/dev/null
st=$?
set -e
[ "$st" != 0 ] && ok "bad input refused" || bad "bad input loaded"
[ "$(tmps "$S")" -ge 1 ] && [ "$(pending "$S")" = 1 ] && ok "a refused load removes nothing (temp file and sidecar stay)" ||
	bad "a refused load removed the temp file or healed"

gctl load "$S" --data "$T/one.jsonl" -q && ok "the next writer loads" || bad "next load failed"
[ "$(tmps "$S")" = 0 ] && ok "healing the dead writer's sidecar removed its temp file" || bad "$(tmps "$S") temp file(s) left"
gctl export "$S" --type Person | grep '"zz"' >/dev/null && ok "its row is there" || bad "row missing"
clean "$S" && ok "store clean (fsck, no sidecar)" || bad "not clean"
grep -q garbage "$T/fsck.out" && bad "fsck still shows garbage" || ok "fsck shows no garbage"

# ---- 2. a mount's sweep removes it ---------------------------------------
if [ -n "${GRAPHFS:-}" ] && command -v fusermount3 >/dev/null && [ -r /dev/fuse ] && [ -w /dev/fuse ]; then
	M=$T/mnt
	mkdir -p "$M"
	trap 'timeout 20 fusermount3 -u "$M" 2>/dev/null || umount -l "$M" 2>/dev/null || true; cleanup' EXIT
	# The parent returns once the daemon swept and mounted (or failed).
	if with_timeout "$TMO" "$GRAPHFS" "$T/killed" "$M" 2>"$T/mnt.err"; then
		[ "$(tmps "$T/killed")" = 0 ] && ok "the mount's sweep removed the temp file" ||
			bad "$(tmps "$T/killed") temp file(s) left after the mount's sweep"
		timeout 20 fusermount3 -u "$M" || bad "cannot unmount $M"
	else
		bad "mount failed: $(cat "$T/mnt.err")"
	fi
	clean "$T/killed" && ok "mounted store clean" || bad "mounted store not clean"
else
	echo "ok - scenario 2 skipped: no usable FUSE"
fi

# ---- 3. a temp file no sidecar names (an older build's) -------------------
for i in 1 2 3; do : >"$S/tables/node:Person/.tmp-99999$i-old$i"; done
gctl load "$S" --data "$T/one.jsonl" -q && ok "a writer loads beside old temp files" || bad "load failed"
[ "$(tmps "$S")" = 3 ] && ok "a commit leaves them (it does not list the directory)" || bad "$(tmps "$S") temp files after a commit"
gctl fsck "$S" >"$T/fsck3" 2>&1 && ok "fsck exit 0: garbage is no problem" || bad "fsck failed: $(cat "$T/fsck3")"
grep -q "^garbage: table 'node:Person': 3 temp files" "$T/fsck3" && ok "fsck counts 3 temp files" || bad "fsck: $(cat "$T/fsck3")"
gctl fsck "$S" --json | grep -q '^{"garbage":' && ok "fsck --json has a garbage record" || bad "fsck --json has none"
gctl recover "$S" --json >"$T/sum3" && [ "$(summary temps_removed "$T/sum3")" = 3 ] &&
	ok "graphctl recover removed the 3 (temps_removed)" || bad "recover: $(cat "$T/sum3")"
[ "$(tmps "$S")" = 0 ] && ok "none left" || bad "$(tmps "$S") left"
clean "$S" && ok "store clean" || bad "not clean"

# ---- 4. a fenced live writer's temp file removed: a clean failure --------
F=$T/fenced
new_store "$F"
fbefore=$(gctl export "$F")
GRAPHFS_FAILPOINTS=table/after_tmp_write=park@1 bg gctl load "$F" --data "$T/v2.jsonl" >"$T/w.out" 2>"$T/w.err"
wpid=$!
wait_parked table/after_tmp_write 1 30 && ok "fenced: writer parked with its temp file written" || bad "writer never parked"
[ "$(tmps "$F")" -ge 1 ] && ok "fenced: its temp file is there" || bad "fenced: no temp file: proves nothing"
GRAPHFS_FAILPOINTS=commit/skip_locks=error:EPERM gctl recover "$F" --json >"$T/sum4" &&
	[ "$(summary discarded "$T/sum4")" = 1 ] && [ "$(summary temps_removed "$T/sum4")" -ge 1 ] &&
	ok "fenced: a lockless sweep discarded its operation and removed its temp file" || bad "sweep: $(cat "$T/sum4")"
fp_release table/after_tmp_write
set +e
wait "$wpid"
st=$?
set -e
BG_PIDS=""
[ "$st" = 1 ] && ok "fenced: the writer failed (exit 1)" || bad "fenced writer exit $st: $(cat "$T/w.err")"
grep -q "temp file of version .* is gone: a recovery resolved operation" "$T/w.err" &&
	ok "fenced: it says why" || bad "fenced writer's message: $(cat "$T/w.err")"
[ "$(gctl export "$F")" = "$fbefore" ] && ok "fenced: nothing of it visible" || bad "fenced: export changed"
[ "$(tmps "$F")" = 0 ] && ok "fenced: no temp file left" || bad "fenced: $(tmps "$F") temp files left"
clean "$F" && ok "fenced: store clean" || bad "fenced: not clean"
gctl load "$F" --data "$T/v2.jsonl" -q && ok "fenced: the load succeeds when run again" || bad "fenced: load again failed"
clean "$F" && ok "fenced: clean after it" || bad "fenced: not clean after it"
finish
