#!/bin/bash
# tests/faults/mdb_panic.sh - what a writer and a mount do when LMDB's
# commit hits an I/O error in its meta-page write, after which LMDB marks
# the environment fatal and every later transaction of that process returns
# MDB_PANIC (docs/recovery.md "I/O errors and MDB_PANIC").
#
# The shim fails the Nth write below offset 8192 of manifest/ (only LMDB's
# meta pages live there) for every N a load and a recovery sweep make:
#   writer: exit non-zero, stderr names data.mdb (and says MDB_PANIC when a
#           later transaction ran into it), nothing half published: after
#           'graphctl recover' fsck is clean, old versions are
#           byte-identical, the head is the old graph or the new one;
#   mount:  the startup sweep's meta write fails: the read-write mount is
#           refused naming data.mdb, nothing is left mounted, and after
#           recover the store mounts and serves the graph.
. "$top_srcdir/tests/crash/crashlib.sh"
. "$top_srcdir/tests/faults/faultlib.sh"
META=8192 # LMDB's two meta pages (4 KiB pages on Linux)

P=$T/pre
gctl init "$P" --schema "$SCHEMA" -q >/dev/null
{ gen_people 30 v1; gen_edges 30 v1; } >"$T/d1"
gctl load "$P" --data "$T/d1" -q >/dev/null
exports_of "$P" "$T/old"
NV=$(head_version "$P")
{ gen_people 30 v2; gen_edges 30 v2; } >"$T/d2"
cp -a "$P" "$T/ref"
gctl load "$T/ref" --data "$T/d2" -q >/dev/null
gctl export "$T/ref" >"$T/new"

# after S: recover, fsck, old versions, head old or new.
after() {
	gctl recover "$1" -q >/dev/null 2>"$T/rec.err" || { echo "recover: $(cat "$T/rec.err")"; return 1; }
	clean "$1" >/dev/null 2>&1 || { echo "fsck: $(cat "$T/fsck.out")"; return 1; }
	same_exports "$1" "$T/old" "$NV" || { echo "an old version changed"; return 1; }
	gctl export "$1" >"$T/head"
	cmp -s "$T/head" "$T/new" || cmp -s "$T/head" "$T/old.$NV" || { echo "head is neither old nor new"; return 1; }
}

# ---- the writer ---------------------------------------------------------------
n=0 panics=0 wfail=0
while :; do
	n=$((n + 1))
	S=$T/s.$n
	cp -a "$P" "$S"
	fi_env "pwrite:$n:EIO" "$S/manifest" "$T/rep"
	rm -f "$T/rep"
	set +e
	GFS_FAULT_OFFSET_MAX=$META with_timeout "$TMO" env "${FI_ENV[@]}" \
		"$GRAPHCTL" load "$S" --data "$T/d2" -q >/dev/null 2>"$T/err"
	rc=$?
	set -e
	grep -q '^fired' "$T/rep" || { [ "$rc" = 0 ] || { bad "load without a fault: exit $rc"; wfail=1; }; break; }
	[ "$n" -le 20 ] || { bad "more than 20 meta writes in one load?"; wfail=1; break; }
	why=$(fi_verdict "$rc" "$T/err" "$T/rep" pwrite) || { bad "meta write $n: $why"; wfail=1; }
	[ "$rc" != 0 ] || { bad "meta write $n failed but the load exited 0"; wfail=1; }
	grep -q 'MDB_PANIC' "$T/err" && panics=$((panics + 1))
	why=$(after "$S") || { bad "meta write $n, afterwards: $why"; wfail=1; }
	rm -rf "$S"
done
n=$((n - 1))
[ "$n" -ge 3 ] || bad "a load made only $n meta writes (sidecar, confirm, publish expected)"
[ "$panics" -gt 0 ] || bad "no failed meta write ever led to MDB_PANIC in a later transaction"
[ "$wfail" = 0 ] && ok "writer: each of $n meta writes failed in turn: non-zero exit naming data.mdb ($panics said MDB_PANIC), recover + fsck clean, nothing lost"

# ---- the mount ---------------------------------------------------------------------
if [ -z "${GRAPHFS:-}" ] || ! command -v fusermount3 >/dev/null; then
	echo "ok - # SKIP mount: no graphfs or fusermount3"
	finish
	exit
fi
S=$T/m
cp -a "$P" "$S"
set +e
GRAPHFS_FAILPOINTS=commit/after_table=exit@1 with_timeout "$TMO" "$GRAPHCTL" load "$S" --data "$T/d2" -q >/dev/null 2>&1
[ $? = 86 ] || bad "the writer did not die at commit/after_table"
set -e
[ "$(pending "$S")" = 1 ] || bad "no pending sidecar for the mount to sweep"
M=$T/mnt
mkdir -p "$M"
trap 'mountpoint -q "$M" && { timeout 20 fusermount3 -u "$M" || umount -l "$M"; }; cleanup' EXIT
fi_env "pwrite:1:EIO" "$S/manifest" "$T/rep"
rm -f "$T/rep"
set +e
GFS_FAULT_OFFSET_MAX=$META with_timeout 60 env "${FI_ENV[@]}" "$GRAPHFS" "$S" "$M" 2>"$T/err"
rc=$?
set -e
if mountpoint -q "$M"; then
	timeout "$(scaled 20)" fusermount3 -u "$M" || umount -l "$M"
	bad "mount: the sweep's meta write failed but the mount came up"
elif ! grep -q '^fired' "$T/rep"; then
	bad "mount: the fault never fired (exit $rc): $(cat "$T/err")"
elif why=$(fi_verdict "$rc" "$T/err" "$T/rep" pwrite); then
	ok "mount: a failed meta write in the startup sweep refuses the mount, naming data.mdb (exit $rc)"
else
	bad "mount: $why"
fi
why=$(after "$S") && ok "mount: afterwards recover + fsck clean, nothing lost" || bad "mount, afterwards: $why"
if with_timeout 60 "$GRAPHFS" "$S" "$M" 2>"$T/err"; then
	[ -s "$M/nodes/Person.jsonl" ] && ok "mount: mounts and serves after recovery" ||
		bad "mount after recovery serves no nodes/Person.jsonl"
	timeout "$(scaled 20)" fusermount3 -u "$M" || { umount -l "$M"; bad "unmount"; }
else
	bad "mount after recovery: $(cat "$T/err")"
fi
finish
