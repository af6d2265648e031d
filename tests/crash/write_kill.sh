#!/bin/bash
# write_kill.sh - a mount killed while it commits a write made through it
# (issue 10, requirement 10; docs/semantics.md "Writes", docs/recovery.md).
#  1. At each commit failpoint: the daemon is killed (exit action) while it
#     commits an `rm` of a node file (a cascade over two tables: Person and
#     WorksAt) and, separately, a new node file written with `cp`.  The
#     writer's command fails (the connection is gone: never a success);
#     the next mount heals the store to exactly the state before (killed
#     before the commit point) or after (killed after it, rolled forward);
#     fsck is clean, no sidecar is left, one audit record when there was a
#     sidecar to resolve.
#  2. SIGKILL in a loop: a writer copies node files one by one into the
#     mount; the daemon is SIGKILLed at a random moment, GRAPHFS_SIGKILL_N
#     times (default 4).  After each remount every file whose `cp`
#     returned 0 is there with its bytes, fsck is clean, every earlier
#     graph version exports byte-identically.  The random delay decides
#     only where the daemon dies, never the order of two processes.
. "$top_srcdir/tests/crash/crashlib.sh"
: "${GRAPHFS:?}"
if ! command -v fusermount3 >/dev/null || ! [ -r /dev/fuse ] || ! [ -w /dev/fuse ]; then
	echo "SKIP: no usable FUSE (fusermount3, /dev/fuse)"
	exit 77
fi
MNTS=()
mount_cleanup() {
	local m
	for m in "${MNTS[@]}"; do
		timeout 20 fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
}
trap 'mount_cleanup; cleanup' EXIT

# mnt STORE MNT [FAILPOINTS]: graphfs STORE MNT (read-write), bounded.
mnt() {
	mkdir -p "$2"
	MNTS+=("$2")
	GRAPHFS_FAILPOINTS=${3:-} with_timeout "$TMO" "$GRAPHFS" "$1" "$2" 2>>"$2.err"
}
# unmnt MNT: unmounts (also a dead daemon's mount: ENOTCONN).
unmnt() {
	timeout 20 fusermount3 -u "$1" 2>/dev/null || umount -l "$1" 2>/dev/null || true
	! mountpoint -q "$1"
}
# daemon_of MNT: the pid of the graphfs daemon serving MNT.
daemon_of() {
	pgrep -f -- "^$GRAPHFS .*$1\$" | head -1
}

# The two writes, done through a mount at $1.
do_rm() { rm "$1/nodes/Person/p000003.json"; }
do_cp() {
	printf '{"slug":"p999999","name":"new one","n":7}\n' >"$T/new.json"
	cp "$T/new.json" "$1/nodes/Person/p999999.json"
}

BASE=$T/base
new_store "$BASE"
gctl export "$BASE" >"$T/before"
for w in rm cp; do # the state after each write, through a mount without failpoints
	rm -rf "$T/ref"; cp -a "$BASE" "$T/ref"
	mnt "$T/ref" "$T/refm" || bad "setup: cannot mount the reference store"
	"do_$w" "$T/refm" || bad "setup: the $w through a healthy mount failed"
	unmnt "$T/refm" || bad "setup: cannot unmount the reference"
	gctl export "$T/ref" >"$T/after.$w"
	cmp -s "$T/before" "$T/after.$w" && bad "setup: the $w changed nothing"
done

# ---- 1. killed at each commit failpoint ----------------------------------
for w in rm cp; do
	for p in commit/after_sidecar table/after_tmp_write table/after_link commit/after_table \
		commit/after_confirm commit/before_publish commit/after_publish; do
		S=$T/s.$w.$(fp_file_name "$p")
		M=$T/m.$w.$(fp_file_name "$p")
		rm -rf "$S"; cp -a "$BASE" "$S"
		export GRAPHFS_FP_LOG=$T/fp.log
		rm -f "$GRAPHFS_FP_LOG"
		if ! mnt "$S" "$M" "$p=exit"; then bad "$w at $p: cannot mount"; continue; fi
		st=0
		with_timeout "$TMO" bash -c "$(declare -f "do_$w"); T=$T; do_$w $M" 2>/dev/null || st=$?
		unset GRAPHFS_FP_LOG
		fired "$p" "$T/fp.log" || { bad "$w at $p: the failpoint never fired (exit $st)"; unmnt "$M"; continue; }
		[ "$st" != 0 ] || bad "$w at $p: the writer was told it succeeded while the daemon died"
		unmnt "$M" || bad "$w at $p: cannot unmount the dead mount"
		# the next mount heals
		mnt "$S" "$M" || { bad "$w at $p: the next mount failed: $(tail -3 "$M.err")"; continue; }
		timeout 10 cat "$M/nodes/Person.jsonl" >/dev/null || bad "$w at $p: the healed mount does not serve"
		unmnt "$M" || bad "$w at $p: cannot unmount"
		gctl export "$S" >"$T/now"
		case $p in
		commit/after_sidecar | table/* | commit/after_table) want=before ;;
		*) want=after ;;
		esac
		if [ "$want" = before ]; then exp=$T/before; else exp=$T/after.$w; fi
		if cmp -s "$T/now" "$exp"; then
			ok "$w killed at $p: healed to the state $want the write"
		else
			bad "$w killed at $p: not the state $want the write"
		fi
		clean "$S" || bad "$w killed at $p: fsck or sidecars not clean"
	done
done

# ---- 2. SIGKILL in a loop -------------------------------------------------
N=${GRAPHFS_SIGKILL_N:-4}
S=$T/loop
M=$T/loopm
rm -rf "$S"; cp -a "$BASE" "$S"
remember_versions "$S" "$T/v"
: >"$T/acked"
ms_now() { date +%s%3N; }
for i in $(seq 1 "$N"); do
	mnt "$S" "$M" || { bad "loop $i: cannot mount: $(tail -3 "$M.err")"; break; }
	dpid=$(daemon_of "$M")
	[ -n "$dpid" ] || { bad "loop $i: no daemon found for $M"; break; }
	# a writer: 200 files, recording each acknowledged one
	(
		for k in $(seq 1 200); do
			f=k$i.$k
			printf '{"slug":"%s","name":"loop %d file %d","n":%d}\n' "$f" "$i" "$k" "$k" >"$T/w.json"
			if timeout 20 cp "$T/w.json" "$M/nodes/Person/$f.json" 2>/dev/null; then
				echo "$f" >>"$T/acked"
			else
				exit 0
			fi
		done
	) &
	wp=$!
	BG_PIDS="$BG_PIDS $wp"
	delay=$(( RANDOM % 1500 ))
	t0=$(ms_now)
	sleep "$(printf '0.%03d' $((delay % 1000)))"
	[ "$delay" -lt 1000 ] || sleep 1
	kill -KILL "$dpid" 2>/dev/null || true
	wait "$wp" 2>/dev/null || true
	unmnt "$M" || bad "loop $i: cannot unmount the killed mount"
	mnt "$S" "$M" || { bad "loop $i: the next mount failed: $(tail -3 "$M.err")"; break; }
	miss=0
	while read -r f; do
		[ -n "$f" ] || continue
		n=${f#*.}
		want=$(printf '{"slug":"%s","name":"loop %d file %d","n":%d}' "$f" "$i" "$n" "$n")
		[ "$(timeout 10 cat "$M/nodes/Person/$f.json" 2>/dev/null)" = "$want" ] || { miss=$((miss + 1)); echo "# lost: $f"; }
	done < <(grep "^k$i\." "$T/acked")
	unmnt "$M" || bad "loop $i: cannot unmount"
	acked=$(grep -c "^k$i\." "$T/acked" || true)
	[ "$miss" = 0 ] && ok "loop $i (kill after ~${delay} ms, $(( $(ms_now) - t0 )) ms): all $acked acknowledged writes present" \
		|| bad "loop $i: $miss of $acked acknowledged writes lost"
	clean "$S" || bad "loop $i: fsck or sidecars not clean"
	remember_versions "$S" "$T/v"
done
all_versions_same "$S" "$T/v"
finish
