#!/bin/bash
# mount_converge.sh - concurrent read-write mounts converge (DESIGN.md §4,
# docs/recovery.md "Converge, never fail"; issue 4).
#  1. The race: a writer dies after confirming (commit/after_confirm=exit,
#     then commit/before_publish=exit).  A mount parked at
#     recover/after_classify holds the sidecar's locks; the other mounts
#     (1, then 7) find them held, leave the sidecar (busy) and come up at
#     once.  Released, the parked mount rolls forward: every mount shows the
#     data (the live view follows the head), no sidecar, one audit record
#     written by the parked mount.
#  2. The same with a load of another table (Doc) publishing inside the
#     window: the recovery publish checks only the sidecar's pins, so both
#     the load and the roll forward survive.
#  3. Fence removed (commit/skip_locks, an expired lease): two mounts
#     classify the same sidecar; one publishes, the other's publish finds it
#     gone (GFS_EGONE): both come up, one audit record, the graph advanced
#     once.  For a roll forward and a roll back (shared compensation).
#  4. Paused writers (parked after a table, SIGSTOPped after confirming):
#     mounts come up, list the sidecar and leave it; released, the writer
#     publishes (no audit record) and every mount shows its data.
#  5. A writer parked mid-commit (table/after_link): the mount's sweep
#     writes nothing; the writer finishes and its data appears.
#  6. An invariant violation (a confirmed op's version file removed): the
#     rw mount is refused naming the operation; -o ro serves the last
#     published state.
# Ordering is only by parked failpoints; every wait is bounded; every mount
# point is unmounted on exit, also on failure.
. "$top_srcdir/tests/crash/crashlib.sh"

# ---- mounts -------------------------------------------------------------
: "${GRAPHFS:?}"
if ! command -v fusermount3 >/dev/null || ! [ -r /dev/fuse ] || ! [ -w /dev/fuse ]; then
	echo "SKIP: no usable FUSE (fusermount3, /dev/fuse)"
	exit 77
fi
MNTS=()   # every mount point used (for the EXIT trap)
CUR=()    # those of the current scenario
MOUNT_PIDS=""
# Never leave a mount behind: kill whatever is still parked (a parked mount
# has not mounted; released, it would mount behind our back), let every
# graphfs parent return (a child mounts or fails first: bounded by the
# parent's timeout), then unmount every mount point we used.
mount_cleanup() {
	local f p m
	for f in "$GRAPHFS_FP_DIR"/*.reached; do
		[ -e "$f" ] || continue
		p=${f%.reached}; p=${p##*.}
		kill -KILL "$p" 2>/dev/null || true
		rm -f "$f"
	done
	for p in $MOUNT_PIDS; do wait "$p" 2>/dev/null || true; done
	for m in "${MNTS[@]}"; do
		timeout 20 fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
}
trap 'mount_cleanup; cleanup' EXIT

# mount_bg STORE MNT FAILPOINTS [OPTS...]: graphfs STORE MNT OPTS in the background with
# GRAPHFS_FAILPOINTS=FAILPOINTS for this mount only (the daemon child
# inherits it); its stderr (sweep notes, refusals) goes to MNT.err.  The
# parent's pid (it returns when the child mounted or failed) is MOUNT_PID.
mount_bg() {
	mkdir -p "$2"
	MNTS+=("$2")
	CUR+=("$2")
	GRAPHFS_FAILPOINTS=$3 timeout -k 5 120 "$GRAPHFS" "$1" "$2" "${@:4}" 2>"$2.err" &
	MOUNT_PID=$!
	MOUNT_PIDS="$MOUNT_PIDS $MOUNT_PID"
}
# serves MNT: a mount is there and answers.
serves() {
	mountpoint -q "$1" && timeout 10 ls "$1" >/dev/null
}
# shows MNT TYPE FILE: the mount's live table file equals FILE.
shows() {
	timeout 10 cmp -s "$1/nodes/$2.jsonl" "$3"
}
# head_is MNT N: the mount's live view is at graph version N.
head_is() {
	[ "$(timeout 10 cat "$1/.graphfs/head")" = "$2" ]
}
# umount_all: unmounts the current scenario's mount points.
umount_all() {
	local m
	for m in "${CUR[@]}"; do
		mountpoint -q "$m" || continue
		timeout 20 fusermount3 -u "$m" || umount -l "$m" || bad "cannot unmount $m"
	done
	CUR=()
}
# wait_for SECS CMD...: polls CMD every 10 ms until it succeeds (bounded).
wait_for() {
	local left=$(( $1 * 100 ))
	shift
	while [ "$left" -gt 0 ]; do
		"$@" 2>/dev/null && return 0
		sleep 0.01
		left=$((left - 1))
	done
	return 1
}
# parked_pids NAME: the pids parked at NAME, one a line.
parked_pids() {
	local base f
	base=$(fp_file_name "$1")
	for f in "$GRAPHFS_FP_DIR/$base".*.reached; do
		[ -e "$f" ] || continue
		f=${f##*/}; f=${f#"$base".}; echo "${f%.reached}"
	done
}
# parked_still NAME PID PARENT: PID is still parked at NAME, and the graphfs
# PARENT still waits for it.
parked_still() {
	[ -e "$GRAPHFS_FP_DIR/$(fp_file_name "$1").$2.reached" ] && kill -0 "$2" && kill -0 "$3"
}
# dead_writer STORE FAILPOINT DATA: a load that dies (exit 86) at FAILPOINT.
dead_writer() {
	local rc=0
	GRAPHFS_FAILPOINTS=$2 gctl load "$1" --data "$3" -q 2>/dev/null || rc=$?
	[ "$rc" = 86 ] && [ "$(pending "$1")" = 1 ]
}
# resolver STORE OP: who wrote OP's audit record.
resolver() {
	gctl recover "$1" --list --json | python3 -c 'import json,sys; print(" | ".join(a["resolver"] for a in json.load(sys.stdin)["audit"] if a["op_id"] == sys.argv[1]))' "$2"
}

BASE=$T/base
new_store "$BASE"
gen_people 40 v2 >"$T/v2.jsonl"
cp -a "$BASE" "$T/ref"
gctl load "$T/ref" --data "$T/v2.jsonl" -q
for ty in Person Company; do
	gctl export "$BASE" --type "$ty" >"$T/old.$ty"
	gctl export "$T/ref" --type "$ty" >"$T/new.$ty"
done
cmp -s "$T/old.Person" "$T/new.Person" && bad "setup: v2 does not change Person"

# race TAG N DEATH: a writer dies at DEATH after confirming; one mount parked
# at recover/after_classify, N-1 more come up meanwhile; release: converge.
race() {
	local tag=$1 n=$2 death=$3 S=$T/$1 op v0 ppid pp i rc
	local others=()
	cp -a "$BASE" "$S"
	dead_writer "$S" "$death" "$T/v2.jsonl" || { bad "$tag: writer did not die at $death"; return; }
	op=$(pending_ids "$S") v0=$(head_version "$S")
	[ -n "$op" ] || { bad "$tag: no sidecar"; return; }
	mount_bg "$S" "$T/$tag.m1" recover/after_classify=park
	pp=$MOUNT_PID
	ppid=$(fp_wait_reached recover/after_classify 30) || { bad "$tag: the first mount never parked"; return; }
	# Parked, it holds the sidecar's locks: N-1 mounts at once, none waits.
	for i in $(seq 2 "$n"); do
		mount_bg "$S" "$T/$tag.m$i" ""
		others+=("$MOUNT_PID")
	done
	i=2
	for p in "${others[@]}"; do
		wait "$p" && rc=0 || rc=$?
		[ "$rc" = 0 ] && serves "$T/$tag.m$i" && ok "$tag: mount $i came up read-write beside the parked sweep" ||
			bad "$tag: mount $i: graphfs status $rc ($(cat "$T/$tag.m$i.err"))"
		grep -q "left to their owners" "$T/$tag.m$i.err" || bad "$tag: mount $i did not report the busy sidecar"
		i=$((i + 1))
	done
	parked_still recover/after_classify "$ppid" "$pp" && ok "$tag: the first mount is still parked" ||
		bad "$tag: the first mount is no longer parked"
	[ "$(pending "$S")" = 1 ] && [ "$(audits "$S" "$op")" = 0 ] && ok "$tag: the sidecar is left to the parked sweep" ||
		bad "$tag: the sidecar was touched while its sweeper was parked"
	grep -q "\"$op\"" "$T/$tag.m2/.graphfs/sidecars.jsonl" && ok "$tag: .graphfs/sidecars.jsonl lists it" ||
		bad "$tag: .graphfs/sidecars.jsonl does not list $op"
	shows "$T/$tag.m2" Person "$T/old.Person" && ok "$tag: nothing published yet" || bad "$tag: data visible before the publish"

	fp_release recover/after_classify "$ppid"
	wait "$pp" && rc=0 || rc=$?
	[ "$rc" = 0 ] && serves "$T/$tag.m1" && ok "$tag: released, the parked mount comes up" ||
		bad "$tag: parked mount: graphfs status $rc ($(cat "$T/$tag.m1.err"))"
	converged "$tag" "$S" "$op" "$((v0 + 1))" new "$T/$tag.m1"
	umount_all
}

# all_show TAG HEAD WANT: every mount of the scenario follows the head to
# graph version HEAD, shows the WANT state of Person and Company and lists
# no sidecar (the live view follows the head: bounded polls).
all_show() {
	local tag=$1 head=$2 want=$3 m all=1
	for m in "${CUR[@]}"; do
		wait_for 20 head_is "$m" "$head" &&
			wait_for 20 shows "$m" Person "$T/$want.Person" &&
			wait_for 20 shows "$m" Company "$T/$want.Company" &&
			wait_for 20 test ! -s "$m/.graphfs/sidecars.jsonl" ||
			{ all=0; bad "$tag: $m: head $(cat "$m/.graphfs/head"), not the $want state or a sidecar listed"; }
	done
	if [ "$all" = 1 ]; then ok "$tag: all ${#CUR[@]} mounts show the $want state at graph version $head, no sidecar listed"; fi
}
# settled TAG STORE OP HEAD AUDITS: no sidecar, AUDITS audit records for
# OP, the head at HEAD, fsck clean.
settled() {
	local tag=$1 S=$2 op=$3 head=$4 n=$5
	[ "$(pending "$S")" = 0 ] && ok "$tag: the sidecar is gone" || bad "$tag: $(pending "$S") sidecar(s) left"
	[ "$(audits "$S" "$op")" = "$n" ] && ok "$tag: $n audit record(s)" || bad "$tag: $(audits "$S" "$op") audit records, want $n"
	[ "$(head_version "$S")" = "$head" ] && ok "$tag: the graph advanced once" || bad "$tag: head $(head_version "$S"), want $head"
	clean "$S" && ok "$tag: fsck clean" || bad "$tag: not clean"
}
# converged TAG STORE OP HEAD WANT WINNER_MNT: all_show, settled with
# exactly one audit record for OP, written by the mount on WINNER_MNT.
converged() {
	all_show "$1" "$4" "$5"
	settled "$1" "$2" "$3" "$4" 1
	resolver "$2" "$3" | grep -qF "graphfs mount $6)" && ok "$1: resolved by $(basename "$6")" ||
		bad "$1: resolver '$(resolver "$2" "$3")', want $6"
}

race race2 2 commit/after_confirm=exit
race race8 8 commit/before_publish=exit

# 2. Another table's load publishes while the sweeper is parked.
S=$T/window
cp -a "$BASE" "$S"
gen_docs 5 inwindow >"$T/docs.jsonl"
if dead_writer "$S" commit/before_publish=exit "$T/v2.jsonl"; then
	op=$(pending_ids "$S") v0=$(head_version "$S")
	mount_bg "$S" "$T/w.m1" recover/after_classify=park
	pp=$MOUNT_PID
	ppid=$(fp_wait_reached recover/after_classify 30) || bad "window: the mount never parked"
	mount_bg "$S" "$T/w.m2" ""
	wait "$MOUNT_PID" && serves "$T/w.m2" && ok "window: a second mount comes up" || bad "window: second mount: $(cat "$T/w.m2.err")"
	gctl load "$S" --data "$T/docs.jsonl" -q && ok "window: a load of Doc publishes inside the window" || bad "window: the Doc load failed"
	gctl export "$S" --type Doc >"$T/docs.out"
	[ -s "$T/docs.out" ] || bad "window: Doc export empty"
	wait_for 20 shows "$T/w.m2" Doc "$T/docs.out" && ok "window: the mount shows the Doc load" || bad "window: Doc not visible"
	parked_still recover/after_classify "$ppid" "$pp" || bad "window: the sweep is no longer parked"
	fp_release recover/after_classify "$ppid"
	wait "$pp" && serves "$T/w.m1" && ok "window: released, the parked mount comes up" || bad "window: parked mount: $(cat "$T/w.m1.err")"
	converged window "$S" "$op" "$((v0 + 2))" new "$T/w.m1"
	for m in "${CUR[@]}"; do
		shows "$m" Doc "$T/docs.out" || bad "window: $m lost the Doc load"
	done
	gctl export "$S" --version "$((v0 + 1))" --type Person | cmp -s - "$T/old.Person" &&
		gctl export "$S" --version "$((v0 + 1))" --type Doc | cmp -s - "$T/docs.out" &&
		ok "window: version $((v0 + 1)) is the Doc load over the old people" || bad "window: version $((v0 + 1)) wrong"
	umount_all
else
	bad "window: writer did not die"
fi

# 3. Fence removed: two mounts classify one sidecar without locks.
FENCE="commit/skip_locks=error:EPERM,recover/after_classify=park,recover/before_audit=park"
for kind in forward back; do
	S=$T/fence-$kind
	cp -a "$BASE" "$S"
	death=commit/before_publish=exit want=new
	[ "$kind" = back ] && death=commit/after_table=exit@2 want=old
	dead_writer "$S" "$death" "$T/v2.jsonl" || { bad "fence-$kind: writer did not die"; continue; }
	op=$(pending_ids "$S") v0=$(head_version "$S")
	mount_bg "$S" "$T/f$kind.a" "$FENCE"
	pa=$MOUNT_PID
	a=$(fp_wait_reached recover/after_classify 30) || bad "fence-$kind: mount a never parked"
	mount_bg "$S" "$T/f$kind.b" "$FENCE"
	pb=$MOUNT_PID
	wait_parked recover/after_classify 2 30 && ok "fence-$kind: both mounts classified the sidecar" ||
		bad "fence-$kind: not both parked"
	b=$(parked_pids recover/after_classify | grep -vx "$a" || true)
	# a, then b, go as far as the resolving publish (a roll back: both write
	# the compensation); a publishes, b then finds the sidecar gone.
	fp_release recover/after_classify "$a"
	wait_parked recover/before_audit 1 30 || bad "fence-$kind: a never reached before_audit"
	fp_release recover/after_classify "$b"
	wait_parked recover/before_audit 2 30 || bad "fence-$kind: b never reached before_audit"
	fp_release recover/before_audit "$a"
	wait "$pa" && serves "$T/f$kind.a" && ok "fence-$kind: a publishes and comes up" || bad "fence-$kind: a: $(cat "$T/f$kind.a.err")"
	parked_still recover/before_audit "$b" "$pb" || bad "fence-$kind: b not parked while a published"
	fp_release recover/before_audit "$b"
	wait "$pb" && serves "$T/f$kind.b" && ok "fence-$kind: b finds it gone and comes up, no error" ||
		bad "fence-$kind: b: $(cat "$T/f$kind.b.err")"
	grep -q "operation $op .*roll-" "$T/f$kind.a.err" && ! grep -q "roll-" "$T/f$kind.b.err" &&
		ok "fence-$kind: only a reports a resolution" || bad "fence-$kind: notes: a '$(cat "$T/f$kind.a.err")' b '$(cat "$T/f$kind.b.err")'"
	converged "fence-$kind" "$S" "$op" "$((v0 + 1))" "$want" "$T/f$kind.a"
	umount_all
done
# 4. A paused writer: (a) parked after committing its first table, two
# mounts started at once; (b) SIGSTOPped after confirming, one mount.  The
# mounts come up, list its sidecar and leave it; released, it publishes
# itself (no audit record) and every mount shows its data.
for kind in parked stopped; do
	S=$T/paused-$kind
	cp -a "$BASE" "$S"
	v0=$(head_version "$S")
	fpt=commit/after_table n=2
	[ "$kind" = stopped ] && fpt=commit/after_confirm n=1
	GRAPHFS_FAILPOINTS=$fpt=park@1 bg gctl load "$S" --data "$T/v2.jsonl" -q
	wpid=$!
	gpid=$(fp_wait_reached "$fpt" 30) || { bad "paused-$kind: writer never parked"; continue; }
	if [ "$kind" = stopped ]; then
		kill -STOP "$gpid"
		fp_release "$fpt" "$gpid"
	fi
	op=$(pending_ids "$S")
	mps=()
	for i in $(seq 1 "$n"); do
		mount_bg "$S" "$T/p$kind.m$i" ""
		mps+=("$MOUNT_PID")
	done
	for i in $(seq 1 "$n"); do
		wait "${mps[$((i - 1))]}" && serves "$T/p$kind.m$i" && ok "paused-$kind: mount $i comes up beside the writer" ||
			bad "paused-$kind: mount $i: $(cat "$T/p$kind.m$i.err")"
		grep -q "\"$op\"" "$T/p$kind.m$i/.graphfs/sidecars.jsonl" && ok "paused-$kind: mount $i lists the writer's sidecar" ||
			bad "paused-$kind: mount $i does not list $op"
		shows "$T/p$kind.m$i" Person "$T/old.Person" || bad "paused-$kind: mount $i shows unpublished data"
	done
	[ "$(pending "$S")" = 1 ] && [ "$(head_version "$S")" = "$v0" ] && ok "paused-$kind: its sidecar is left alone" ||
		bad "paused-$kind: the mounts touched a live writer's sidecar"
	if [ "$kind" = stopped ]; then kill -CONT "$gpid"; else fp_release "$fpt" "$gpid"; fi
	wait "$wpid" && ok "paused-$kind: released, the writer publishes" || bad "paused-$kind: the writer failed"
	all_show "paused-$kind" "$((v0 + 1))" new
	settled "paused-$kind" "$S" "$op" "$((v0 + 1))" 0
	umount_all
done

# 5. A live writer parked mid-commit (its first table version linked, not
# confirmed): a mount sweeps, leaves it alone (no compensation written),
# and shows the writer's data once it finishes.
S=$T/midcommit
cp -a "$BASE" "$S"
v0=$(head_version "$S")
GRAPHFS_FAILPOINTS=table/after_link=park@1 bg gctl load "$S" --data "$T/v2.jsonl" -q
wpid=$!
if gpid=$(fp_wait_reached table/after_link 30); then
	op=$(pending_ids "$S")
	[ -n "$op" ] || bad "midcommit: no sidecar while the writer is parked"
	files0=$(find "$S/tables" -type f | sort)
	mount_bg "$S" "$T/mid.m1" ""
	wait "$MOUNT_PID" && serves "$T/mid.m1" && ok "midcommit: the mount comes up beside the writer" ||
		bad "midcommit: mount: $(cat "$T/mid.m1.err")"
	grep -q "\"$op\"" "$T/mid.m1/.graphfs/sidecars.jsonl" && [ "$(pending "$S")" = 1 ] &&
		[ "$(find "$S/tables" -type f | sort)" = "$files0" ] && ok "midcommit: the sweep left it alone (listed, nothing written)" ||
		bad "midcommit: the sweep touched a live writer's operation"
	shows "$T/mid.m1" Person "$T/old.Person" && ok "midcommit: the old state is served" || bad "midcommit: a partial commit is visible"
	fp_release table/after_link "$gpid"
	wait "$wpid" && ok "midcommit: the writer finishes" || bad "midcommit: the writer failed"
	all_show midcommit "$((v0 + 1))" new
	settled midcommit "$S" "$op" "$((v0 + 1))" 0
	umount_all
else
	bad "midcommit: the writer never parked"
fi

# 6. An invariant violation: a confirmed operation whose Person version is
# gone (h == m, no movement).  The rw mount is refused naming the operation
# and the table; -o ro mounts the last published state; nothing is resolved.
S=$T/violation
cp -a "$BASE" "$S"
if dead_writer "$S" commit/before_publish=exit "$T/v2.jsonl"; then
	op=$(pending_ids "$S") v0=$(head_version "$S")
	post=$(gctl recover "$S" --list --json | python3 -c 'import json,sys; print([t["post"] for t in json.load(sys.stdin)["pending"][0]["tables"] if t["table"] == "node:Person"][0])')
	rm "$S/tables/node:Person/$post"
	for try in 1 2; do
		mount_bg "$S" "$T/v.rw$try" ""
		wait "$MOUNT_PID" && rc=0 || rc=$?
		[ "$rc" != 0 ] && ! mountpoint -q "$T/v.rw$try" && ok "violation: rw mount $try refused (status $rc)" ||
			bad "violation: rw mount $try came up"
		grep -q "refused" "$T/v.rw$try.err" && grep -q "operation $op" "$T/v.rw$try.err" &&
			grep -q "'node:Person' no movement" "$T/v.rw$try.err" &&
			ok "violation: the refusal names the operation and the table" || bad "violation: message: $(cat "$T/v.rw$try.err")"
	done
	mount_bg "$S" "$T/v.ro" "" -o ro
	wait "$MOUNT_PID" && serves "$T/v.ro" && ok "violation: -o ro mounts" || bad "violation: -o ro: $(cat "$T/v.ro.err")"
	head_is "$T/v.ro" "$v0" && shows "$T/v.ro" Person "$T/old.Person" && shows "$T/v.ro" Company "$T/old.Company" &&
		ok "violation: -o ro serves the last published state" || bad "violation: -o ro serves something else"
	grep -q "\"$op\"" "$T/v.ro/.graphfs/sidecars.jsonl" && ok "violation: -o ro lists the kept sidecar" ||
		bad "violation: sidecar not listed"
	[ "$(pending "$S")" = 1 ] && [ "$(audits "$S" "$op")" = 0 ] && [ "$(head_version "$S")" = "$v0" ] &&
		ok "violation: nothing resolved or published" || bad "violation: the store changed"
	umount_all
else
	bad "violation: writer did not die"
fi
finish
