#!/bin/bash
# shutdown.sh - the daemon always ends (docs/mount.md, "Shutdown").
#
# The reproduction of the wedge: a 1,000-row merge lands while 8 loops stat
# and list the live view with hour-long kernel timeouts (so the notifier has
# entries to invalidate, and LOOKUPs are in flight that hold directory
# locks), then the daemon is told to stop: SIGTERM, SIGINT, fusermount3 -u
# or umount -l in turn.  Each round must end the daemon within a bound.  A
# daemon that does not is freed through /sys/fs/fuse/connections/N/abort
# (so the suite never hangs) and counted as a failure.
#
# Two kinds of round:
#   parked: the notifier is parked (failpoint notifier/before_apply) with
#           its invalidations collected, the signal is sent, then it is
#           released: the stop must wait for it while workers still serve;
#   racing: no failpoint, the signal lands wherever the notifier is.
# GRAPHFS_SHUTDOWN_N rounds (default 50); GRAPHFS_SHUTDOWN_PARK=0: racing only.
. "$top_srcdir/tests/mount/lib_mount.sh"
S=$T/store M=$T/mnt
FP=0
grep -q '^#define GFS_FAILPOINTS_ENABLED' "$top_builddir/config.h" 2>/dev/null && FP=${GRAPHFS_SHUTDOWN_PARK:-1}
export GRAPHFS_FP_DIR=$T/fp
mkdir -p "$GRAPHFS_FP_DIR" "$M"
N=${GRAPHFS_SHUTDOWN_N:-50}
BOUND=$(scaled 30)

new_store "$S"
awk 'BEGIN { for (i = 0; i < 2000; i++)
	printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%05d\",\"age\":0}}\n", i }' | load "$S" merge

LOOPS=()
start_loops() {
	local k
	for k in 1 2 3 4 5 6 7 8; do
		( while :; do
			stat "$M/nodes/Person/p0000$k.json" "$M/nodes/Person/p0$k$k$k$k.json" \
				"$M/nodes/Person/p0$k$k$k$k" >/dev/null 2>&1
			ls "$M/nodes/Person/p0000$k/out" >/dev/null 2>&1
			[ $((k % 4)) = 0 ] && ls -l "$M/nodes/Person" >/dev/null 2>&1
		  done ) &
		LOOPS+=($!)
	done
}
stop_loops() {
	[ ${#LOOPS[@]} -gt 0 ] || return 0
	kill -KILL "${LOOPS[@]}" 2>/dev/null
	wait "${LOOPS[@]}" 2>/dev/null
	LOOPS=()
}

# The connection number of the mount on $M (mountinfo, never a stat).
conn_of() {
	awk -v m="$M" '$5 == m && $3 ~ /^0:/ { split($3, d, ":"); c = d[2] } END { if (c != "") print c }' /proc/self/mountinfo
}

# ends PID: the daemon is gone within BOUND seconds; if not, free it.
ends() {
	local pid=$1 i c
	for ((i = 0; i < BOUND * 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.01
	done
	c=$(conn_of)
	echo "# daemon $pid still alive after ${BOUND}s; aborting connection ${c:-?}"
	[ -d /sys/fs/fuse/connections/"$c" ] ||
		mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null
	[ -n "$c" ] && echo 1 > "/sys/fs/fuse/connections/$c/abort"
	kill -KILL "$pid" 2>/dev/null
	return 1
}

# change R: a 1,000-row merge (ages set to R) by another process.
change() {
	awk -v r="$1" 'BEGIN { for (i = 0; i < 1000; i++)
		printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%05d\",\"age\":%d}}\n", i * 2, r }' |
		load "$S" merge
}

stop_daemon() { # stop_daemon HOW PID
	case $1 in
	TERM|INT) kill -"$1" "$2" ;;
	fusermount)
		local i
		# A plain unmount is refused while a listing holds the mount
		# busy; retry (bounded), then detach like umount -l.
		for ((i = 0; i < 200; i++)); do
			fusermount3 -u "$M" 2>/dev/null && return 0
			sleep 0.01
		done
		fusermount3 -u -z "$M" ;;
	umount-l) umount -l "$M" ;;
	esac
}

hows=(TERM INT fusermount umount-l)
MNTS+=("$M")
failed_rounds=0
for ((r = 1; r <= N; r++)); do
	how=${hows[$(((r - 1) % 4))]}
	parked=0
	[ "$FP" = 1 ] && [ $((r % 2)) = 1 ] && parked=1
	env_fp=()
	[ "$parked" = 1 ] && env_fp=(env GRAPHFS_FAILPOINTS=notifier/before_apply=park@1)
	"${env_fp[@]}" "$GRAPHFS" -f "$S" "$M" -o live_timeout=3600 2>"$T/daemon.err" &
	pid=$!
	if ! wait_until 30 mountpoint -q "$M"; then
		bad "round $r: mount did not appear"; kill -KILL "$pid"; break
	fi
	start_loops
	change "$r"
	if [ "$parked" = 1 ]; then
		if ! fp_wait_reached notifier/before_apply 30 >/dev/null; then
			bad "round $r: notifier never parked"
		fi
		stop_daemon "$how" "$pid"
		fp_release notifier/before_apply
	else
		# Racing: stop it once the change is being followed or done.
		stop_daemon "$how" "$pid"
	fi
	if ! ends "$pid"; then
		bad "round $r ($how, parked=$parked): daemon wedged"
		failed_rounds=$((failed_rounds + 1))
	fi
	wait "$pid" 2>/dev/null
	st=$?
	stop_loops
	if mountpoint -q "$M"; then
		fusermount3 -u "$M" 2>/dev/null || umount -l "$M"
	fi
	case $how in
	TERM|INT) [ "$st" = 0 ] || { bad "round $r ($how): exit status $st, want 0 (clean unmount)"; tail -30 "$T/daemon.err"; } ;;
	esac
	grep -q 'Sanitizer\|runtime error' "$T/daemon.err" &&
		{ bad "round $r: sanitizer report"; tail -60 "$T/daemon.err"; }
done
[ "$failed_rounds" = 0 ] && ok "$N stop rounds (SIGTERM, SIGINT, fusermount3 -u, umount -l; parked=$FP), every daemon ended within ${BOUND}s"
check "no mount left" bash -c "! mountpoint -q '$M'"
finish
