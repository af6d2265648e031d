#!/bin/bash
# tests/faults/mount_faults.sh - I/O errors under a mount (issue 8,
# requirement 2; docs/testing.md "I/O faults").
#
# A. The startup sweep: a store with a pending (unconfirmed) sidecar is
#    mounted under tests/faults/faultinj.c failing the Nth call of each kind
#    the mount makes under the store.  The mount either refuses to come up
#    (exit non-zero, stderr naming the file and the operation, nothing left
#    mounted) or comes up and serves every whole-table file as the exact
#    bytes of a clean mount or EIO, a second read is right, and unmount
#    works.  Then recover, fsck, every old version byte-identical, the
#    sidecar rolled back.
# B. Reads: with faults limited to one table's directory, the Nth open or
#    pread of that table's files fails with EIO.  That file's read fails
#    with EIO (never wrong bytes), the other table keeps serving, the next
#    read of the file is right, unmount works; at least one case must have
#    shown the reader an EIO.
#
# make check: a seeded subset (GFS_FAULT_SEED, GFS_FAULT_PICKS); make
# stress (GFS_FAULT_FULL=1): every N.
. "$top_srcdir/tests/mount/lib_mount.sh"
if ! grep -q '^#define GFS_FAILPOINTS_ENABLED' "$top_builddir/config.h" 2>/dev/null; then
	echo "SKIP: not configured with --enable-failpoints"
	exit 77
fi
. "$top_srcdir/tests/faults/faultlib.sh"

SEED=${GFS_FAULT_SEED:-8}
FULL=${GFS_FAULT_FULL:-0}
PICKS=${GFS_FAULT_PICKS:-1}
echo "# seed $SEED full=$FULL picks=$PICKS"
INJECTED=0 SURFACED=0 CRASHES=0 VLOST=0 EIO_SEEN=0
M=$T/mnt
mkdir -p "$M"

gen() { # gen TAG: 30 people, 4 companies, 30 WorksAt edges
	awk -v tag="$1" 'BEGIN {
		for (i = 0; i < 30; i++)
			printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%03d\",\"name\":\"P %d %s\",\"age\":%d}}\n", i, i, tag, i
		for (i = 0; i < 4; i++)
			printf "{\"type\":\"Company\",\"data\":{\"name\":\"c%d\"}}\n", i
		for (i = 0; i < 30; i++)
			printf "{\"edge\":\"WorksAt\",\"from\":\"p%03d\",\"to\":\"c%d\",\"data\":{\"id\":\"w%03d\"}}\n", i, i % 4, i
	}'
}

S0=$T/s0 S1=$T/s1
new_store "$S0"
gen v1 | load "$S0" merge || bad "seed load"
cp -a "$S0" "$S1"
gen v2 >"$T/v2.jsonl"
GRAPHFS_FAILPOINTS=commit/after_table=exit@1 gc load "$S1" --data "$T/v2.jsonl" -q >/dev/null 2>&1
[ $? = 86 ] || bad "the writer did not die at commit/after_table"
NV=$(gc snapshot "$S1" --json | jq -r .version)
for v in $(seq 1 "$NV"); do gc export "$S1" --version "$v" >"$T/old.$v"; done

FILES="nodes/Person.jsonl nodes/Company.jsonl edges/WorksAt.jsonl nodes/Person/p007.json"

# start_mount STORE SPEC DIR: graphfs -f under the shim in the background
# (MPID); 0 once mounted, 1 if it exited first (status in MRC).
start_mount() {
	local i
	fi_env "$2" "$3" "$T/rep"
	rm -f "$T/rep"
	timeout "$(scaled 120)" env "${FI_ENV[@]}" "$GRAPHFS" -f "$1" "$M" \
		>/dev/null 2>"$T/mnt.err" &
	MPID=$!
	FI_ENV=()
	for i in $(seq 1 $(( $(scaled 30) * 100 ))); do
		mountpoint -q "$M" && return 0
		if ! kill -0 "$MPID" 2>/dev/null; then
			wait "$MPID"; MRC=$?
			return 1
		fi
		sleep 0.01
	done
	MRC=124
	return 1
}

# stop_mount: unmounts and waits for the daemon; its status in MRC.
stop_mount() {
	timeout "$(scaled 20)" fusermount3 -u "$M" || { umount -l "$M"; MRC=125; wait "$MPID"; return 1; }
	wait "$MPID"; MRC=$?
	[ "$MRC" = 0 ]
}

# read_all PREFIX: cats every file of FILES to PREFIX.<n>; prints per file
# "ok", "eio" or "other:<stderr>".
read_all() {
	local f i=0
	for f in $FILES; do
		i=$((i + 1))
		if timeout "$(scaled 20)" cat "$M/$f" >"$1.$i" 2>"$T/cat.err"; then
			echo ok
		elif grep -q 'Input/output error' "$T/cat.err"; then
			echo eio
		elif grep -Eq 'No space left|Disk quota|Cannot allocate' "$T/cat.err"; then
			echo eio # the injected errno itself, passed through
		else
			echo "other:$(head -c 200 "$T/cat.err")"
		fi
	done
}

# same_as_ref PREFIX RESULTS: every "ok" file equals the clean mount's
# bytes; returns 1 naming the first that does not (wrong bytes).
same_as_ref() {
	local i=0 r
	for r in $2; do
		i=$((i + 1))
		case $r in
		ok) cmp -s "$1.$i" "$T/ref.$i" || { echo "file $i served wrong bytes"; return 1; } ;;
		eio) EIO_SEEN=$((EIO_SEEN + 1)) ;;
		*) echo "file $i: $r"; return 1 ;;
		esac
	done
}

# The reference: the bytes a clean mount of S1 serves after its sweep.
cp -a "$S1" "$T/s"
start_mount "$T/s" "" "$T/s" || bad "reference mount: $(cat "$T/mnt.err")"
read_all "$T/ref" >/dev/null
stop_mount || bad "reference unmount"
A_COUNTS=$(fi_counts "$T/rep")
echo "# startup sweep + reads, calls under the store: $(echo $A_COUNTS)"

# one_a KIND N ACT: part A, one case.  2 = the fault never fired.
one_a() {
	local kind=$1 n=$2 act=$3 s=$T/s why res v
	rm -rf "$s"; cp -a "$S1" "$s"
	if start_mount "$s" "$kind:$n:$act" "$s"; then
		res=$(read_all "$T/got")
		same_as_ref "$T/got" "$res" >"$T/why" || { stop_mount; bad "A $kind:$n:$act: $(cat "$T/why")"; return 1; }
		res=$(read_all "$T/got")
		case $res in *eio* | *other*) stop_mount; bad "A $kind:$n:$act: a read after the fault still fails ($(echo $res))"; return 1 ;; esac
		same_as_ref "$T/got" "$res" >"$T/why" || { stop_mount; bad "A $kind:$n:$act: after the fault: $(cat "$T/why")"; return 1; }
		stop_mount || { bad "A $kind:$n:$act: unmount failed (status $MRC): $(tail -3 "$T/mnt.err")"; return 1; }
		grep -q '^fired' "$T/rep" || return 2
		INJECTED=$((INJECTED + 1))
	else
		grep -q '^fired' "$T/rep" || { bad "A $kind:$n:$act: mount failed without a fault: $(cat "$T/mnt.err")"; return 1; }
		INJECTED=$((INJECTED + 1))
		why=$(fi_verdict "$MRC" "$T/mnt.err" "$T/rep" "$kind") || {
			case $why in CRASH*) CRASHES=$((CRASHES + 1)) ;; esac
			bad "A $kind:$n:$act: $why"; sed 's/^/#   /' "$T/mnt.err" | head -4; return 1; }
		mountpoint -q "$M" && { bad "A $kind:$n:$act: a failed mount left $M mounted"; return 1; }
		SURFACED=$((SURFACED + 1))
	fi
	grep -Eq 'Sanitizer|runtime error:' "$T/mnt.err" && { CRASHES=$((CRASHES + 1)); bad "A $kind:$n:$act: sanitizer report"; return 1; }
	gc recover "$s" -q >/dev/null 2>"$T/rec.err" || { bad "A $kind:$n:$act: recover after: $(cat "$T/rec.err")"; return 1; }
	gc fsck "$s" -q >/dev/null 2>&1 || { bad "A $kind:$n:$act: fsck after"; return 1; }
	for v in $(seq 1 "$NV"); do
		gc export "$s" --version "$v" | cmp -s - "$T/old.$v" || { VLOST=$((VLOST + 1)); bad "A $kind:$n:$act: version $v changed"; return 1; }
	done
	gc export "$s" | cmp -s - "$T/old.$NV" || { bad "A $kind:$n:$act: the head is not the old graph (the sweep rolls back)"; return 1; }
	return 0
}

afail=0 acases=0
for kc in $A_COUNTS; do
	kind=${kc%=*} c=${kc#*=}
	act=$(fi_actions "$SEED.mount.$kind" "$kind" | head -1)
	if [ "$FULL" = 1 ]; then ns=$(seq 1 $((c + 1))); else ns=$(fi_picks "$SEED" "mount.$kind" "$c" "$PICKS"); fi
	for n in $ns; do
		r=0; one_a "$kind" "$n" "$act" || r=$?
		[ "$r" = 2 ] && break
		acases=$((acases + 1))
		[ "$r" = 0 ] || afail=$((afail + 1))
	done
done
[ "$afail" = 0 ] && ok "A: $acases faulted mounts with a pending sidecar: refused with the file named, or served exact bytes or EIO; store clean after"

# ---- B: reads of one table's files -------------------------------------------
PD=$S0/tables/node:Person
start_mount "$S0" "" "$PD" || bad "B counting mount"
read_all "$T/refb" >/dev/null
read_all "$T/refb" >/dev/null
stop_mount || bad "B counting unmount"
B_COUNTS=$(fi_counts "$T/rep")
echo "# reads of node:Person's files: $(echo $B_COUNTS)"
rm -rf "$T/s"; cp -a "$S0" "$T/s"
start_mount "$T/s" "" "$T/s" && { read_all "$T/ref" >/dev/null; stop_mount; } || bad "B reference mount"

bfail=0 bcases=0 EIO_SEEN=0
for kc in $B_COUNTS; do
	kind=${kc%=*} c=${kc#*=}
	case $kind in open | openat | pread | read | mmap) ;; *) continue ;; esac
	if [ "$FULL" = 1 ]; then ns=$(seq 1 "$c"); else ns=$(fi_picks "$SEED" "read.$kind" "$c" $((PICKS + 1))); fi
	for n in $ns; do
		rm -rf "$T/s"; cp -a "$S0" "$T/s"
		start_mount "$T/s" "$kind:$n:EIO" "$T/s/tables/node:Person" ||
			{ bad "B $kind:$n: mount failed: $(cat "$T/mnt.err")"; bfail=$((bfail + 1)); continue; }
		bcases=$((bcases + 1))
		res=$(read_all "$T/got")
		same_as_ref "$T/got" "$res" >"$T/why" || { bad "B $kind:$n:EIO first read: $(cat "$T/why")"; bfail=$((bfail + 1)); }
		case $res in
		*eio*)
			timeout "$(scaled 10)" cat "$M/.graphfs/stats" >"$T/stats" 2>/dev/null
			jq -e --arg d "$S0" '.io_errors >= 1 and (.last_io_error | contains("/tables/node:Person/"))' \
				"$T/stats" >/dev/null 2>&1 || {
				bad "B $kind:$n:EIO: .graphfs/stats does not count the error or name the file: $(jq -c '{io_errors,last_io_error}' "$T/stats" 2>&1)"
				bfail=$((bfail + 1)); }
			;;
		esac
		res2=$(read_all "$T/got")
		case $res2 in *eio* | *other*) bad "B $kind:$n:EIO: the read after the fault still fails ($(echo $res2))"; bfail=$((bfail + 1)) ;; esac
		same_as_ref "$T/got" "$res2" >/dev/null || { bad "B $kind:$n:EIO: wrong bytes after the fault"; bfail=$((bfail + 1)); }
		stop_mount || { bad "B $kind:$n:EIO: unmount (status $MRC)"; bfail=$((bfail + 1)); }
		grep -q '^fired' "$T/rep" && INJECTED=$((INJECTED + 1))
		grep -Eq 'Sanitizer|runtime error:' "$T/mnt.err" && { CRASHES=$((CRASHES + 1)); bad "B $kind:$n: sanitizer report"; }
	done
done
[ "$EIO_SEEN" -gt 0 ] || bad "B: no read ever saw EIO: the faults did not reach the reads"
[ "$bfail" = 0 ] && ok "B: $bcases mounts with one failed open/read of node:Person's files: EIO or exact bytes, $EIO_SEEN EIO(s) seen, other tables served, next read right"

echo "# summary: mount, faults injected $INJECTED, errors surfaced $SURFACED, reads that saw EIO $EIO_SEEN, crashes $CRASHES, versions lost $VLOST, seed $SEED"
[ "$CRASHES" = 0 ] || bad "crashes: $CRASHES"
finish
