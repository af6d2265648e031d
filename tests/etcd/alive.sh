#!/usr/bin/env bash
# tests/etcd/alive.sh - a watch whose member froze (docs/multi-host.md §5,
# src/etcd_watch.c invariant 5; invariants 366-369).
#
# The cluster runs with etcd's default progress notify interval (10 min,
# ETCD_PROGRESS_NOTIFY=10m) as in production: the test cluster's usual 1 s
# would put bytes on every stream each second and so never leave one
# silent.  A real 3-member cluster, a real mount B asking member 1 first:
#   1. quiet store: B's stream stays silent past two idle intervals (5 s
#      each); the liveness checks answer, the stream is kept
#      (watch_alive_checks >= 2, watch_alive_failed 0, watch_errors 0), and
#      a load through member 2 then shows in B by that same stream.
#   2. member 1 SIGSTOPped (its TCP connections stay open, it sends
#      nothing): a load through member 2 shows in B within 30 s (scaled);
#      B's stats show the check that failed (watch_alive_failed 1), the
#      stream resumed (watch_errors 1, watch_last_error names the status
#      check), no outage reported, no polls.  Without the check B would
#      never see it.
#   3. member 1 continued: another load shows in B.
# The EXIT trap continues a stopped member before stopping the cluster
# (cluster.sh's _etcd_stop_pid sends SIGCONT after SIGTERM).
. "$top_srcdir/tests/etcd/etcdlib.sh"
: "${GRAPHFS:?}"
etcd_test gfs-alive fuse
MB=$T/b
# shown NAME HEAD: the notifier has read version HEAD (which only a watch
# event or the watch's start makes it do: a lookup of a new name reads the
# head by itself, so a file's existence would prove nothing) and the
# listing B's kernel cached shows NAME (the notifier invalidated it)
shown() {
	[ "$(nstat head_seen)" -ge "$2" ] && ls "$MB/nodes/Person" | grep -qx "$1.json"
}
nstat() { stat_of "$MB" "j['notifier']['$1']"; }
show() {
	echo "checks $(nstat watch_alive_checks) failed $(nstat watch_alive_failed) errors $(nstat watch_errors)" \
		"polls $(nstat polls) head_seen $(nstat head_seen) state $(stat_of "$MB" 'j["manifest"]["state"]')" \
		"last error: $(stat_of "$MB" 'j["manifest"]["watch_last_error"]')"
}

SCHEMA=$T/s.pg
echo 'node Person { slug: String @key  name: String }' >"$SCHEMA"

export ETCD_PROGRESS_NOTIFY=10m
etcd_cluster_start 3 "$T/cluster" ||
	{ echo "FAIL - could not start the cluster"; exit 1; }
ok "3-member cluster on $ETCD_ENDPOINTS (progress notify 10 min)"
# member 1 must not lead: freezing the leader would also stall the loads
# behind an election, which is not what this test is about
etcd_make_leader 0 || { echo "FAIL - could not move the leader to member 0"; exit 1; }
S=$T/store
gctl init "$S" --schema "$SCHEMA" --manifest "etcd://$ETCD_ENDPOINTS/gfs-alive/s" -q &&
	row p0 first | gctl load "$S" --data - -q || { echo "FAIL - init/load"; exit 1; }
mkdir -p "$MB"
GRAPHFS_ETCD_FIRST=1 timeout "$(scaled 30)" "$GRAPHFS" "$S" "$MB" || { echo "FAIL - mount"; exit 1; }
h=$(nstat head_seen)
row w0 "before" | GRAPHFS_ETCD_FIRST=2 gctl load "$S" --data - -q || bad "load w0"
wait_for 10 shown w0 $((h + 1)) || bad "w0 not shown in B: head_seen $(nstat head_seen), was $h"
[ "$(nstat mode)" = watch ] || bad "B's notifier is not by watch: $(nstat mode)"

# 1. a silent stream whose member answers is kept
wait_for 30 stat_is "$MB" 'j["notifier"]["watch_alive_checks"] >= 2' True &&
	[ "$(nstat watch_alive_failed)" = 0 ] && [ "$(nstat watch_errors)" = 0 ] &&
	ok "b: quiet store: $(nstat watch_alive_checks) liveness checks answered, the stream kept (no watch error)" ||
	bad "b: quiet store: $(show)"
h=$(nstat head_seen)
row w1 "after quiet" | GRAPHFS_ETCD_FIRST=2 gctl load "$S" --data - -q || bad "load w1"
wait_for 10 shown w1 $((h + 1)) && [ "$(nstat watch_errors)" = 0 ] && [ "$(nstat polls)" = 0 ] &&
	ok "b: a load after the quiet spell shows by the same stream" || bad "b: w1: $(show)"

# 2. member 1 frozen: its connections stay open and silent
kill -STOP "${ETCD_PID[1]}" || bad "SIGSTOP member 1"
t0=$SECONDS h=$(nstat head_seen)
row f1 "member 1 frozen" | GRAPHFS_ETCD_FIRST=2 gctl load "$S" --data - -q || bad "load with member 1 frozen"
if wait_for 30 shown f1 $((h + 1)); then
	ok "b: member 1 frozen: a load through member 2 shows in $((SECONDS - t0)) s"
else
	bad "b: member 1 frozen: the load is not visible in 30 s: $(show)"
fi
errs=$(nstat watch_errors) failed=$(nstat watch_alive_failed)
lasterr=$(stat_of "$MB" 'j["manifest"]["watch_last_error"]')
[ "$failed" = 1 ] && [ "$errs" = 1 ] && [[ $lasterr == *"$(etcd_endpoint 1)"*"no answer to a status request"* ]] &&
	ok "b: the stream resumed after one failed check: $lasterr" || bad "b: after the freeze: $(show)"
stat_is "$MB" 'j["manifest"]["state"]' ok && [ "$(nstat polls)" = 0 ] &&
	ok "b: no outage reported, no polls" || bad "b: state/polls: $(show)"
h=$(nstat head_seen)
row f2 "member 1 still frozen" | GRAPHFS_ETCD_FIRST=2 gctl load "$S" --data - -q || bad "load f2"
wait_for 10 shown f2 $((h + 1)) && [ "$(nstat watch_errors)" = 1 ] &&
	ok "b: the next load shows at once on the resumed stream" || bad "b: f2: $(show)"

# 3. member 1 continued
kill -CONT "${ETCD_PID[1]}" || bad "SIGCONT member 1"
h=$(nstat head_seen)
row c1 "member 1 back" | GRAPHFS_ETCD_FIRST=2 gctl load "$S" --data - -q || bad "load c1"
wait_for 10 shown c1 $((h + 1)) && stat_is "$MB" 'j["manifest"]["state"]' ok &&
	ok "b: member 1 continued: a load shows" || bad "b: c1: $(show)"
ls "$MB/nodes/Person" | grep "\.json$" | sort | tr '\n' ' ' >"$T/ls"
[ "$(cat "$T/ls")" = "c1.json f1.json f2.json p0.json w0.json w1.json " ] &&
	ok "b: exactly the loaded rows: $(cat "$T/ls")" || bad "b: rows: $(cat "$T/ls")"

timeout "$(scaled 30)" fusermount3 -u "$MB" && ! mountpoint -q "$MB" || bad "unmount B"
echo "# $fails failure(s)"
[ "$fails" = 0 ]
