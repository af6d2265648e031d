#!/bin/bash
# hosts.sh - several "hosts" on one store whose manifest is on etcd, and the
# cluster's faults, through the real graphctl (issue 13 req. 5).  A "host"
# is a separate graphctl process that asks its own member of a real
# 3-member cluster first (GRAPHFS_ETCD_FIRST=i; tests/etcd/cluster.sh).
# Only the CLI is used, so the checks hold whether the writers exclude each
# other with flock (STORE/locks) or with etcd leases.
#   1. same tables: 3 hosts load into the same two tables, parked at
#      load/after_heal and released together; disjoint tables: 3 hosts load
#      one table each, parked at commit/before_publish (their locks do not
#      conflict) and released together, so their publishes race in etcd.
#      Each load lands or fails with a documented conflict; the history is
#      gapless, each new version holds exactly one more load, row counts
#      are exact, fsck is clean and `graphctl log` reads the same on every
#      member.
#   2. a member killed mid-load: a loader parked at commit/after_sidecar
#      (sidecar armed, nothing published), its member (a follower) SIGKILLed,
#      released: the load completes through another endpoint; likewise
#      when the member is SIGSTOPped instead (it accepts, never answers).
#      Quorum lost:
#      a loader parked at commit/before_publish, its member and another
#      SIGKILLed, released: it fails, naming the endpoints; with the members
#      back nothing of it is visible (head and export unchanged) until
#      recover resolves the sidecar (one audit record), fsck clean.
#   3. every member down: load, log, fsck and recover exit 1 naming every
#      endpoint.
# Bounded (~1-2 min under ASan); docs/testing.md "etcd tests".
. "$top_srcdir/tests/etcd/etcdlib.sh"
etcd_test gfs-hosts failpoints
# Where writers hold etcd leases (src/lock.c on an etcd store), their TTL:
# etcd's shortest, 2 s, so a dead loader's leases end within seconds (the
# default 10 s would make each quorum case wait that long twice).
GRAPHFS_LEASE_TTL=2
export GRAPHFS_LEASE_TTL
# host I CMD ARGS...: graphctl as host I (asks member I first), bounded
host() {
	local i=$1
	shift
	GRAPHFS_ETCD_FIRST=$i with_timeout 120 "$GRAPHCTL" "$@"
}
head_v() { host "${2:-0}" snapshot "$1" --json | js 'j["version"]'; }
# count STORE PATTERN [VERSION]: rows of the export matching PATTERN
count() {
	host 0 export "$1" ${3:+--version "$3"} >"$T/exp" || { echo -1; return; }
	grep -c -- "$2" "$T/exp"
}
fsck_clean() { host "${2:-0}" fsck "$1" >"$T/fsck" 2>&1 && grep -q ' 0 problems' "$T/fsck"; }
# nparked NAME: how many processes are parked at failpoint NAME
nparked() { find "$GRAPHFS_FP_DIR" -name "$(fp_file_name "$1").*.reached" | wc -l; }
# wait_parked NAME N: bounded poll until N processes are parked at NAME
wait_parked() {
	local left=$(( $(scaled 60) * 100 ))
	while [ "$left" -gt 0 ]; do
		[ "$(nparked "$1")" -ge "$2" ] && return 0
		sleep 0.01
		left=$((left - 1))
	done
	return 1
}
# The conflicts a concurrent load may end with instead of landing (the
# table in docs/multi-host.md §9.5): etcd kept refusing the publish's
# compares, a table lease held past the wait's deadline (named with its
# holder, or "timed out waiting"), or the writer's lease lost.  Anything
# else is a failure of the test.
CONFLICT='conflicted with other writers [0-9]+ times|is held by|timed out waiting for a table lease|lease lost'
# logs_agree STORE: `graphctl log --json` is byte-identical from every
# member, gapless (1..head, each version once) and ends at the head
logs_agree() {
	local i h
	for i in 0 1 2; do host "$i" log "$1" --json >"$T/log.$i" || return 1; done
	cmp -s "$T/log.0" "$T/log.1" && cmp -s "$T/log.0" "$T/log.2" || { echo "logs differ between members" >&2; return 1; }
	h=$(head_v "$1")
	python3 - "$T/log.0" "$h" <<'EOF' || return 1
import json, sys
vs = [json.loads(l)["version"] for l in open(sys.argv[1]) if l.strip()]
if vs != list(range(1, int(sys.argv[2]) + 1)):
    sys.exit("log versions %s, head %s: not gapless" % (vs, sys.argv[2]))
EOF
}

SCHEMA=$T/s.pg
cat >"$SCHEMA" <<'EOF'
node Person { slug: String @key  name: String }
node Company { domain: String @key  name: String }
node Project { code: String @key  name: String }
EOF
# park3 NAME POINT: host i (0-2) loads $T/NAME<i>.jsonl through member i,
# parked at failpoint POINT (first hit); pids[i] its pid, all in BG.
park3() {
	local i
	pids=()
	for i in 0 1 2; do
		GRAPHFS_ETCD_FIRST=$i GRAPHFS_FAILPOINTS="$2=park@1" \
			with_timeout 120 "$GRAPHCTL" load "$S" --data "$T/$1$i.jsonl" -q 2>"$T/$1$i.err" &
		pids[$i]=$!
	done
	BG="${pids[*]}"
}
# landed3 NAME LABEL: waits for park3's loads: st[i] each exit, landed how
# many published; a failure without a documented conflict is bad.
landed3() {
	local i
	landed=0
	for i in 0 1 2; do
		wait "${pids[$i]}"; st[$i]=$?
		if [ "${st[$i]}" = 0 ]; then
			landed=$((landed + 1))
		elif ! grep -qE "$CONFLICT" "$T/$1$i.err"; then
			bad "$2: host $i exited ${st[$i]} without a documented conflict: $(head -c 300 "$T/$1$i.err")"
		fi
	done
	BG=""
}

# rows TYPE KEYPROP N TAG: N rows of TYPE with keys TAG-0000.. and name TAG
rows() {
	awk -v ty="$1" -v k="$2" -v n="$3" -v t="$4" 'BEGIN { for (i = 0; i < n; i++)
		printf "{\"type\":\"%s\",\"data\":{\"%s\":\"%s-%04d\",\"name\":\"N %s\"}}\n", ty, k, t, i, t }'
}

etcd_cluster_start 3 "$T/cluster" || { echo "FAIL - could not start the cluster"; exit 1; }
ok "3-member cluster on $ETCD_ENDPOINTS"
EPS=$ETCD_ENDPOINTS
S=$T/store
host 0 init "$S" --schema "$SCHEMA" --manifest "etcd://$EPS/gfs-hosts/a" -q || { echo "FAIL - init"; exit 1; }
{ rows Person slug 10 base; rows Company domain 10 base; rows Project code 10 base; } >"$T/base.jsonl"
host 0 load "$S" --data "$T/base.jsonl" -q || { echo "FAIL - base load"; exit 1; }

# 1a. same tables: each host loads 20 Person and 20 Company rows of its own
N=20
v0=$(head_v "$S")
for i in 0 1 2; do
	{ rows Person slug $N "same$i"; rows Company domain $N "same$i"; } >"$T/same$i.jsonl"
done
park3 same load/after_heal
wait_parked load/after_heal 3 && ok "same tables: 3 hosts parked after healing, before their locks" ||
	bad "same tables: $(nparked load/after_heal) of 3 hosts parked"
fp_release load/after_heal
landed3 same "same tables"
ok "same tables: $landed of 3 loads landed (exits ${st[*]})"
[ "$landed" -ge 1 ] || bad "same tables: no load landed"
[ "$(head_v "$S")" = $((v0 + landed)) ] && ok "same tables: head $((v0 + landed)), one version per landed load" ||
	bad "same tables: head $(head_v "$S"), wanted $((v0 + landed))"
for i in 0 1 2; do
	want=0
	[ "${st[$i]}" = 0 ] && want=$((2 * N))
	got=$(count "$S" "\"N same$i\"")
	[ "$got" = "$want" ] || bad "same tables: host $i's rows at the head: $got, wanted $want"
done
[ "$(count "$S" '"type":"Person"')" = $((10 + N * landed)) ] &&
	[ "$(count "$S" '"type":"Company"')" = $((10 + N * landed)) ] &&
	[ "$(count "$S" '"type":"Project"')" = 10 ] &&
	ok "same tables: exact row counts (Person, Company $((10 + N * landed)); Project 10)" ||
	bad "same tables: row counts $(count "$S" '"type":"Person"') $(count "$S" '"type":"Company"') $(count "$S" '"type":"Project"')"
# each new version holds exactly one more load than the one before
for ((k = 1; k <= landed; k++)); do
	got=$(count "$S" '"N same' $((v0 + k)))
	[ "$got" = $((2 * N * k)) ] || bad "same tables: version $((v0 + k)) has $got of the hosts' rows, wanted $((2 * N * k))"
done
fsck_clean "$S" && ok "same tables: fsck clean" || bad "same tables: fsck: $(cat "$T/fsck")"
logs_agree "$S" && ok "same tables: graphctl log is gapless and the same on all 3 members" ||
	bad "same tables: logs: $(diff "$T/log.0" "$T/log.1" | head -5)"

# 1b. disjoint tables: host 0 Person, host 1 Company, host 2 Project, all
# parked just before the publish (their leases do not conflict)
v0=$(head_v "$S")
rows Person slug $N disj0 >"$T/disj0.jsonl"
rows Company domain $N disj1 >"$T/disj1.jsonl"
rows Project code $N disj2 >"$T/disj2.jsonl"
park3 disj commit/before_publish
wait_parked commit/before_publish 3 && ok "disjoint tables: 3 hosts parked before their publish, sidecars confirmed" ||
	bad "disjoint tables: $(nparked commit/before_publish) of 3 hosts parked"
[ "$(host 1 recover "$S" --list --json | js 'len(j["pending"])')" = 3 ] &&
	[ "$(head_v "$S" 2)" = "$v0" ] && ok "disjoint tables: 3 sidecars pending, head still $v0" ||
	bad "disjoint tables: pending $(host 1 recover "$S" --list --json | js 'len(j["pending"])') head $(head_v "$S")"
fp_release commit/before_publish
landed3 disj "disjoint tables"
# disjoint tables never conflict on a lease, and a publish reruns after a
# lost compare: all three land
[ "$landed" = 3 ] && ok "disjoint tables: all 3 loads landed" || bad "disjoint tables: exits ${st[*]}: $(cat "$T"/disj?.err | head -c 400)"
[ "$(head_v "$S")" = $((v0 + landed)) ] && ok "disjoint tables: head $((v0 + landed))" ||
	bad "disjoint tables: head $(head_v "$S"), wanted $((v0 + landed))"
for ((k = 1; k <= landed; k++)); do
	got=$(count "$S" '"N disj' $((v0 + k)))
	[ "$got" = $((N * k)) ] || bad "disjoint tables: version $((v0 + k)) has $got of the hosts' rows, wanted $((N * k))"
done
for i in 0 1 2; do
	want=0
	[ "${st[$i]}" = 0 ] && want=$N
	got=$(count "$S" "\"N disj$i\"")
	[ "$got" = "$want" ] || bad "disjoint tables: host $i's rows: $got, wanted $want"
done
[ "$(host 0 recover "$S" --list --json | js 'len(j["pending"])')" = 0 ] || bad "disjoint tables: a sidecar left"
fsck_clean "$S" 1 && ok "disjoint tables: exact rows per version, no sidecar left, fsck clean" ||
	bad "disjoint tables: fsck: $(cat "$T/fsck")"
logs_agree "$S" && ok "disjoint tables: graphctl log is gapless and the same on all 3 members" ||
	bad "disjoint tables: logs: $(diff "$T/log.0" "$T/log.2" | head -5)"

# 2a. the loader's member killed while it is parked between its sidecar's
# arm and its publish.  Member 0 leads, so killing member 2 (a follower)
# costs no election: the load must then complete through another endpoint.
etcd_make_leader 0 || bad "could not make member 0 the leader"
v0=$(head_v "$S")
rows Person slug $N kill >"$T/kill.jsonl"
GRAPHFS_ETCD_FIRST=2 GRAPHFS_FAILPOINTS=commit/after_sidecar=park@1 \
	with_timeout 120 "$GRAPHCTL" load "$S" --data "$T/kill.jsonl" -q 2>"$T/kill.err" &
p=$!
BG=$p
wait_parked commit/after_sidecar 1 && ok "member kill: the loader (member 2 first) parked after arming its sidecar" ||
	bad "member kill: the loader did not park"
etcd_member_kill 2
fp_release commit/after_sidecar
wait "$p"; s=$?
BG=""
[ "$s" = 0 ] && [ "$(head_v "$S")" = $((v0 + 1)) ] && [ "$(count "$S" '"N kill"')" = "$N" ] &&
	ok "member kill: the load completed through another member, head $((v0 + 1)), $N rows" ||
	bad "member kill: exit $s, head $(head_v "$S"), rows $(count "$S" '"N kill"'): $(head -c 300 "$T/kill.err")"
etcd_member_start 2 || bad "member 2 did not come back"
fsck_clean "$S" 2 && logs_agree "$S" && ok "member kill: member 2 back, fsck clean, log the same on all 3" ||
	bad "member kill: after the restart: $(cat "$T/fsck")"

# 2c. the loader's member stops answering (SIGSTOP: its port still
# accepts connections, as a member cut off by a partition or frozen),
# again a follower: the requests time out there and go to the next member.
etcd_make_leader 0 || bad "could not make member 0 the leader"
v0=$(head_v "$S")
rows Person slug $N stop >"$T/stop.jsonl"
GRAPHFS_ETCD_FIRST=2 GRAPHFS_FAILPOINTS=commit/after_sidecar=park@1 \
	with_timeout 120 "$GRAPHCTL" load "$S" --data "$T/stop.jsonl" -q 2>"$T/stop.err" &
p=$!
BG=$p
wait_parked commit/after_sidecar 1 && ok "silent member: the loader (member 2 first) parked after arming its sidecar" ||
	bad "silent member: the loader did not park"
kill -STOP "${ETCD_PID[2]}"
fp_release commit/after_sidecar
t0=$SECONDS
wait "$p"; s=$?
BG=""
kill -CONT "${ETCD_PID[2]}"
[ "$s" = 0 ] && [ "$(head_v "$S")" = $((v0 + 1)) ] && [ "$(count "$S" '"N stop"')" = "$N" ] &&
	ok "silent member: the load completed through another member in $((SECONDS - t0)) s, head $((v0 + 1)), $N rows" ||
	bad "silent member: exit $s, head $(head_v "$S"), rows $(count "$S" '"N stop"'): $(head -c 300 "$T/stop.err")"
_etcd_wait_health "$(etcd_endpoint 2)" 30 2 || bad "member 2 did not answer again after SIGCONT"
fsck_clean "$S" 2 && logs_agree "$S" && ok "silent member: member 2 answers again, fsck clean, log the same on all 3" ||
	bad "silent member: after SIGCONT: $(cat "$T/fsck")"

# 2b. quorum lost while the loader is parked between its sidecar and its
# publish, twice: confirmed (parked at commit/before_publish; `recover`
# rolls it forward) and with a table written but not confirmed (parked at
# commit/after_table; the next writer of the table rolls it back while it
# heals, no `recover`).  Members 0 (the loader's) and 1 are SIGKILLed
# while it is parked, so member 2 answers but cannot serve.
for kind in forward back; do
	fp=commit/before_publish
	[ "$kind" = back ] && fp=commit/after_table
	v0=$(head_v "$S")
	host 0 export "$S" >"$T/before.export" || bad "$kind: export before the quorum case"
	na=$(host 0 recover "$S" --list --json | js 'len(j["audit"])')
	rows Person slug $N "q$kind" >"$T/q.jsonl"
	GRAPHFS_ETCD_FIRST=0 GRAPHFS_FAILPOINTS=$fp=park@1 \
		with_timeout 180 "$GRAPHCTL" load "$S" --data "$T/q.jsonl" -q 2>"$T/quorum.err" &
	p=$!
	BG=$p
	wait_parked "$fp" 1 && ok "quorum $kind: the loader (member 0 first) parked at $fp" ||
		bad "quorum $kind: the loader did not park at $fp"
	etcd_member_kill 0
	etcd_member_kill 1
	fp_release "$fp"
	t0=$SECONDS
	wait "$p"; s=$?
	BG=""
	if [ "$s" != 0 ] && [ "$s" -lt 124 ] && grep -q "left for recovery" "$T/quorum.err" &&
		grep -q "$(etcd_endpoint 0)" "$T/quorum.err" && grep -q "$(etcd_endpoint 1)" "$T/quorum.err"; then
		ok "quorum $kind: the load failed (exit $s, $((SECONDS - t0)) s) naming the endpoints: $(head -c 700 "$T/quorum.err")"
	else
		bad "quorum $kind: exit $s: $(head -c 400 "$T/quorum.err")"
	fi
	etcd_member_start 0 || bad "member 0 did not come back"
	etcd_member_start 1 || bad "member 1 did not come back"
	# nothing half-visible: the head and the export are as before the
	# load, its sidecar pending
	[ "$(head_v "$S" 1)" = "$v0" ] && host 1 export "$S" >"$T/after.export" &&
		cmp -s "$T/before.export" "$T/after.export" &&
		ok "quorum $kind: with the members back the head is still $v0 and the export unchanged" ||
		bad "quorum $kind: head $(head_v "$S" 1) (was $v0), export $(wc -l <"$T/after.export") rows (was $(wc -l <"$T/before.export"))"
	[ "$(host 2 recover "$S" --list --json | js 'len(j["pending"])')" = 1 ] &&
		ok "quorum $kind: its sidecar is pending" || bad "quorum $kind: pending $(host 2 recover "$S" --list --json)"
	if [ "$kind" = forward ]; then
		host 2 recover "$S" --json >"$T/sum" || bad "quorum: recover failed: $(cat "$T/sum")"
		[ "$(js 'j["rolled_forward"], j["rolled_back"], j["discarded"]' <"$T/sum")" = "1 0 0" ] &&
			[ "$(head_v "$S")" = $((v0 + 1)) ] && [ "$(count "$S" '"N qforward"')" = "$N" ] &&
			ok "quorum forward: recover rolled the confirmed load forward, all $N rows" ||
			bad "quorum forward: recover: $(cat "$T/sum"), head $(head_v "$S"), rows $(count "$S" '"N qforward"')"
	else
		rows Person slug $N qnext >"$T/qnext.jsonl"
		host 1 load "$S" --data "$T/qnext.jsonl" -q 2>"$T/err" &&
			[ "$(count "$S" '"N qback"')" = 0 ] && [ "$(count "$S" '"N qnext"')" = "$N" ] &&
			[ "$(count "$S" '"type":"Person"')" = $(( $(grep -c '"type":"Person"' "$T/before.export") + N )) ] &&
			ok "quorum back: the next writer (host 1) healed it: none of its rows, all $N of its own" ||
			bad "quorum back: next load: $(head -c 300 "$T/err"), rows $(count "$S" '"N qback"') / $(count "$S" '"N qnext"')"
	fi
	[ "$(host 0 recover "$S" --list --json | js 'len(j["audit"])')" = $((na + 1)) ] &&
		[ "$(host 1 recover "$S" --list --json | js 'len(j["pending"])')" = 0 ] &&
		ok "quorum $kind: exactly one audit record more, no sidecar left" ||
		bad "quorum $kind: audit/pending after the resolution: $(host 1 recover "$S" --list --json | head -c 300)"
	fsck_clean "$S" && logs_agree "$S" && ok "quorum $kind: fsck clean, log gapless and the same on all 3" ||
		bad "quorum $kind: after the resolution: $(cat "$T/fsck")"
done

# 3. every member down: each command exits 1 naming every endpoint
for i in 0 1 2; do etcd_member_kill "$i"; done
rows Person slug 1 down >"$T/down.jsonl"
for cmd in "load $S --data $T/down.jsonl -q" "log $S" "fsck $S" "recover $S"; do
	# shellcheck disable=SC2086
	host 0 $cmd >/dev/null 2>"$T/err"
	s=$?
	if [ "$s" = 1 ] && grep -q "$(etcd_endpoint 0)" "$T/err" && grep -q "$(etcd_endpoint 1)" "$T/err" &&
		grep -q "$(etcd_endpoint 2)" "$T/err"; then
		ok "etcd down: graphctl ${cmd%% *} exits 1 naming every endpoint"
	else
		bad "etcd down: graphctl ${cmd%% *} exited $s: $(head -c 300 "$T/err")"
	fi
done
echo "etcd down, e.g.: $(head -c 400 "$T/err")"

echo "# $fails failure(s)"
[ "$fails" = 0 ]
