#!/usr/bin/env bash
# tests/etcd/watch.sh - live views across hosts on etcd (issue 13 req. 1
# outage, req. 4 watch; docs/multi-host.md §5; invariants 320-328).
#
# A real 3-member cluster, real mounts, each "host" a process asking its own
# member first (GRAPHFS_ETCD_FIRST):
#   1. mounts A (member 0) and B (member 1) see a load made through member 2;
#      their notifiers read the manifest by watch: polls stay 0, watch
#      events and wakeups counted; a branch created through member 2 shows
#      in B's (cached) branches/ listing by a watch wakeup; an LMDB mount
#      still polls.
#   1b. member 1 killed: B's stream resumes elsewhere, a load shows, no
#      outage is reported.
#   2. quorum lost (members 1 and 2 killed): the cached listing and file
#      still read, a branch view never read fails with EHOSTUNREACH at
#      once, a write's close fails with the client's errno (errors.jsonl);
#      .graphfs/stats says "unreachable" with the endpoints and
#      the error, .graphfs/manifest says it in a line; graphctl log, load,
#      branch list and fsck exit non-zero naming the endpoints tried.
#   3. the cluster back: the report clears, the next load shows in A and B.
#   4. quorum lost again: both mounts unmount within a bounded time.
. "$top_srcdir/tests/etcd/etcdlib.sh"
: "${GRAPHFS:?}"
etcd_test gfs-watch fuse
MA=$T/a MB=$T/b ML=$T/l
visible() { [ -e "$1/nodes/Person/$2.json" ]; }

SCHEMA=$T/s.pg
echo 'node Person { slug: String @key  name: String }' >"$SCHEMA"

etcd_cluster_start 3 "$T/cluster" || { echo "FAIL - could not start the cluster"; exit 1; }
ok "3-member cluster on $ETCD_ENDPOINTS"
S=$T/store
gctl init "$S" --schema "$SCHEMA" --manifest "etcd://$ETCD_ENDPOINTS/gfs-watch/s" -q &&
	row p0 first | gctl load "$S" --data - -q || { echo "FAIL - init/load"; exit 1; }
mkdir -p "$MA" "$MB" "$ML"
GRAPHFS_ETCD_FIRST=0 timeout "$(scaled 30)" "$GRAPHFS" "$S" "$MA" &&
GRAPHFS_ETCD_FIRST=1 timeout "$(scaled 30)" "$GRAPHFS" "$S" "$MB" ||
	{ echo "FAIL - mount"; exit 1; }

# 1. a commit through member 2 shows in both, by watch
for i in 1 2 3; do
	row "w$i" "by watch $i" | GRAPHFS_ETCD_FIRST=2 gctl load "$S" --data - -q || bad "load w$i"
	for m in "$MA" "$MB"; do
		wait_for 10 visible "$m" "w$i" || bad "w$i not visible in $m"
	done
done
ok "a load through member 2 shows in the mounts on members 0 and 1"
for m in "$MA" "$MB"; do
	mode=$(stat_of "$m" 'j["notifier"]["mode"]')
	polls=$(stat_of "$m" 'j["notifier"]["polls"]')
	ev=$(stat_of "$m" 'j["notifier"]["watch_events"]')
	wk=$(stat_of "$m" 'j["notifier"]["watch_wakeups"]')
	st=$(stat_of "$m" 'j["manifest"]["state"]')
	[ "$mode" = watch ] && [ "$polls" = 0 ] && [ "${ev:-0}" -ge 3 ] && [ "${wk:-0}" -ge 3 ] && [ "$st" = ok ] &&
		ok "$(basename "$m"): by watch (polls 0, watch events $ev, wakeups $wk, manifest ok)" ||
		bad "$(basename "$m"): mode=$mode polls=$polls events=$ev wakeups=$wk state=$st"
done
# a branch created through member 2: B's cached branches/ listing follows
ls "$MB/branches" >/dev/null
wk0=$(stat_of "$MB" 'j["notifier"]["watch_wakeups"]')
GRAPHFS_ETCD_FIRST=2 gctl branch create "$S" dev >/dev/null || bad "branch create"
has_dev() { ls "$MB/branches" | grep -qx dev; }
wait_for 10 has_dev && [ "$(stat_of "$MB" 'j["notifier"]["watch_wakeups"]')" -gt "$wk0" ] &&
	[ "$(stat_of "$MB" 'j["notifier"]["polls"]')" = 0 ] &&
	ok "b: a branch created through member 2 shows in branches/ (a watch wakeup, no poll)" ||
	bad "b: branches/ $(ls "$MB/branches" | tr '\n' ' ') wakeups $wk0 -> $(stat_of "$MB" 'j["notifier"]["watch_wakeups"]')"
grep -q '^manifest: ok (etcd' "$MA/.graphfs/manifest" && ok ".graphfs/manifest: ok" ||
	bad ".graphfs/manifest: $(cat "$MA/.graphfs/manifest")"
# an LMDB mount keeps polling
L=$T/lstore
gctl init "$L" --schema "$SCHEMA" -q && row l0 x | gctl load "$L" --data - -q &&
	timeout "$(scaled 30)" "$GRAPHFS" "$L" "$ML" || bad "LMDB mount"
wait_for 5 stat_is "$ML" 'j["notifier"]["polls"] > 0' True &&
	[ "$(stat_of "$ML" 'j["notifier"]["mode"]')" = poll ] &&
	[ "$(stat_of "$ML" 'j["manifest"]["backend"]')" = lmdb ] &&
	ok "an LMDB mount polls (mode poll, polls > 0)" || bad "LMDB mount stats: $(cat "$ML/.graphfs/stats")"
timeout 20 fusermount3 -u "$ML" || bad "unmount LMDB"

# 1b. B's member dies: its stream resumes on another member, no outage
etcd_member_kill 1
row m1 "member 1 down" | GRAPHFS_ETCD_FIRST=2 gctl load "$S" --data - -q || bad "load with member 1 down"
wait_for 15 visible "$MB" m1 && stat_is "$MB" 'j["manifest"]["state"]' ok &&
	[ "$(stat_of "$MB" 'j["notifier"]["polls"]')" = 0 ] &&
	ok "b: member 1 down: a load shows by the resumed watch, no outage reported (watch errors $(stat_of "$MB" 'j["notifier"]["watch_errors"]'))" ||
	bad "b: member 1 down: $(timeout 10 cat "$MB/.graphfs/manifest")"
etcd_member_start 1 || bad "restart member 1"

# 2. quorum lost
ls "$MA/nodes/Person" >"$T/ls_before" && cat "$MA/nodes/Person/w1.json" >"$T/f_before" ||
	bad "listing before the outage"
etcd_member_kill 1
etcd_member_kill 2
t_kill=$SECONDS
for m in "$MA" "$MB"; do
	# A's stream is on member 0, which etcd ends once that member has had
	# no leader for 3 election timeouts (hasleader); B's dropped at once
	wait_for 60 stat_is "$m" 'j["manifest"]["state"]' unreachable &&
		ok "$(basename "$m"): stats say unreachable $((SECONDS - t_kill)) s after the kill: $(stat_of "$m" 'j["manifest"]["error"]' | head -c 160)" ||
		bad "$(basename "$m"): no outage reported: $(timeout 10 cat "$m/.graphfs/stats")"
done
eps=$(stat_of "$MA" '",".join(j["manifest"]["endpoints"])')
since=$(stat_of "$MA" 'j["manifest"]["since"]')
[ "$eps" = "$ETCD_ENDPOINTS" ] && [ -n "$since" ] && ok "stats name the endpoints and since $since" ||
	bad "stats endpoints '$eps' since '$since'"
grep -q 'UNREACHABLE since' "$MA/.graphfs/manifest" && ok ".graphfs/manifest: $(head -1 "$MA/.graphfs/manifest" | head -c 160)" ||
	bad ".graphfs/manifest during the outage: $(cat "$MA/.graphfs/manifest")"
t0=$SECONDS
timeout 60 ls "$MA/nodes/Person" >"$T/ls_during" 2>"$T/ls_err"; lrc=$?
timeout 60 cat "$MA/nodes/Person/w1.json" >"$T/f_during" 2>"$T/f_err"; frc=$?
echo "# during the outage: ls rc $lrc ($(cat "$T/ls_err")), cat rc $frc ($(cat "$T/f_err")), $((SECONDS - t0)) s"
[ "$lrc" = 0 ] && cmp -s "$T/ls_before" "$T/ls_during" && ok "the cached listing still reads" ||
	bad "listing during the outage: rc $lrc $(cat "$T/ls_err")"
[ "$frc" = 0 ] && cmp -s "$T/f_before" "$T/f_during" && ok "the cached file still reads" ||
	bad "file during the outage: rc $frc $(cat "$T/f_err")"
# a file A never opened, of the version it shows: served without a hold
# (asking etcd for one would wait out the client's timeouts; the removal
# that a hold keeps out needs the quorum that is gone: invariant 329)
t0=$SECONDS
timeout 60 cat "$MA/nodes/Person/w2.json" >"$T/f2" 2>"$T/f2_err"; f2rc=$?
[ "$f2rc" = 0 ] && grep -q '"w2"' "$T/f2" && [ $((SECONDS - t0)) -le "$(scaled 3)" ] &&
	ok "a: a file never opened before, of the version shown, reads in $((SECONDS - t0)) s" ||
	bad "a: w2.json during the outage: rc $f2rc in $((SECONDS - t0)) s: $(cat "$T/f2_err")"
for i in 1 2 3; do
	timeout 60 cat "$MA/.graphfs/manifest" >/dev/null 2>&1 || bad "a: .graphfs/manifest read $i during the outage"
done
# a view A never read (branch dev: only B listed it) needs the manifest:
# EHOSTUNREACH, at once (docs/multi-host.md §5)
t0=$SECONDS
ls "$MA/branches/dev" >/dev/null 2>"$T/br_err"; brc=$?
[ "$brc" != 0 ] && grep -q "No route to host" "$T/br_err" && [ $((SECONDS - t0)) -le 2 ] &&
	ok "a: a branch view never read fails with EHOSTUNREACH at once ($(cat "$T/br_err"))" ||
	bad "a: branches/dev during the outage: rc $brc in $((SECONDS - t0)) s: $(cat "$T/br_err")"
# a write through the mount: its close fails (the publish is a Txn that
# did not happen) with the client's errno within its timeouts, and says so
# in errors.jsonl; nothing appears
t0=$SECONDS
python3 - "$MA/nodes/Person/wx.json" >"$T/wr" 2>&1 <<'PY'
import errno, sys
try:
    f = open(sys.argv[1], "w")
    f.write('{"slug":"wx","name":"during the outage"}')
    f.close()
    print("closed")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
PY
wr=$(cat "$T/wr")
case $wr in ECONNREFUSED|ETIMEDOUT|EAGAIN|EHOSTUNREACH) werr=1 ;; *) werr=0 ;; esac
[ "$werr" = 1 ] && [ $((SECONDS - t0)) -le "$(scaled 10)" ] && ! visible "$MA" wx &&
	grep -q '"path":"nodes/Person/wx.json"' "$MA/.graphfs/errors.jsonl" &&
	ok "a: a write during the outage fails at close with $wr in $((SECONDS - t0)) s, in errors.jsonl" ||
	bad "a: write during the outage: '$wr' in $((SECONDS - t0)) s; errors: $(cat "$MA/.graphfs/errors.jsonl")"
one="$(etcd_endpoint 1)"
for cmd in "log $S" "load $S --data $T/one.jsonl -q" "branch list $S" "fsck $S"; do
	row o1 outage >"$T/one.jsonl"
	# shellcheck disable=SC2086
	timeout 120 "$GRAPHCTL" $cmd >"$T/out" 2>"$T/err"; rc=$?
	[ "$rc" != 0 ] && grep -q "$one" "$T/err" &&
		ok "graphctl ${cmd%% *} exits $rc naming the endpoints: $(head -c 200 "$T/err")" ||
		bad "graphctl $cmd during the outage: rc $rc: $(head -c 400 "$T/err")"
done

# 3. back
etcd_member_start 1 && etcd_member_start 2 || bad "restart members"
for m in "$MA" "$MB"; do
	wait_for 30 stat_is "$m" 'j["manifest"]["state"]' ok &&
		ok "$(basename "$m"): report cleared" || bad "$(basename "$m"): still $(timeout 10 cat "$m/.graphfs/stats")"
done
grep -q '^manifest: ok' "$MA/.graphfs/manifest" || bad ".graphfs/manifest after: $(cat "$MA/.graphfs/manifest")"
row back "after" | GRAPHFS_ETCD_FIRST=2 gctl load "$S" --data - -q || bad "load after the outage"
for m in "$MA" "$MB"; do
	wait_for 10 visible "$m" back && ok "$(basename "$m"): the next commit shows" ||
		bad "$(basename "$m"): commit after the outage not visible"
done
[ "$(stat_of "$MA" 'j["notifier"]["polls"]')" = 0 ] && ok "still no polls" || bad "polls after the outage"

# 4. unmount while etcd has no quorum
etcd_member_kill 1
etcd_member_kill 2
for m in "$MA" "$MB"; do
	t0=$SECONDS
	timeout "$(scaled 30)" fusermount3 -u "$m" && ! mountpoint -q "$m" &&
		ok "$(basename "$m"): unmounted during the outage in $((SECONDS - t0)) s" ||
		bad "$(basename "$m"): unmount during the outage"
done

echo "# $fails failure(s)"
[ "$fails" = 0 ]
