#!/bin/bash
# migrate.sh - graphctl migrate between the LMDB and etcd manifests (issue 13
# req. 6, src/migrate.c, docs/multi-host.md §7), on a real 3-member cluster:
#   1. an LMDB store with history, a branch, a merge and audit records (two
#      writers killed at the commit, recovered) -> etcd -> LMDB: log, export
#      (main and dev), branch list, audit log and fsck equal at every step,
#      a mount works after each, --json counts every sub-database
#   2. refusals: a writer parked holding its table lock (exit 5), a pending
#      sidecar (exit 5), a mount of an LMDB store (exit 5), an etcd store
#      whose prefix holds a lease or hold key (exit 5), a prefix with
#      foreign keys and one with another store's manifest (exit 1), the
#      store's own backend (nothing to do, exit 0); the store unchanged
#   3. migrate SIGKILLed while parked in the copy, after the copy and after
#      the old manifest was frozen (before FORMAT): the store reads the
#      same; writes work (before the freeze) or are refused naming the move
#      (after it); a rerun completes
#      a branch created between the copy and the check: the check fails,
#      nothing switched
#   4. a writer that opened the store before the switch cannot commit to the
#      old manifest after it: its load fails "moved", nothing published; a
#      mount opened before it still reads, its write fails with EROFS
# Bounded (~1 min); docs/testing.md "etcd tests".
. "$top_srcdir/tests/etcd/etcdlib.sh"
: "${GRAPHFS:?}"
etcd_test gfs-migrate failpoints
M=$T/mnt
mkdir -p "$M"

SCHEMA=$T/s.pg
cat >"$SCHEMA" <<'EOF'
node Person { slug: String @key  name: String  n: I64? }
node Company { domain: String @key  name: String }
edge WorksAt: Person -> Company { role: String? }
EOF
people() { # people N TAG [SLUGPREFIX]
	awk -v n="$1" -v t="$2" -v s="${3:-p}" 'BEGIN { for (i = 0; i < n; i++)
		printf "{\"type\":\"Person\",\"data\":{\"slug\":\"%s%04d\",\"name\":\"P %s\",\"n\":%d}}\n", s, i, t, i }'
}
companies() {
	awk -v n="$1" -v t="$2" 'BEGIN { for (i = 0; i < n; i++)
		printf "{\"type\":\"Company\",\"data\":{\"domain\":\"c%03d.example\",\"name\":\"C %s\"}}\n", i, t }'
}
head_v() { gctl snapshot "$1" --json | js 'j["version"]'; }

# state STORE OUT: everything a user sees of the store's manifest, in one
# file (the log with its times, every version's export, branches, audit)
state() {
	local s=$1 out=$2 v h
	{
		gctl log "$s" --json
		h=$(head_v "$s")
		for ((v = 1; v <= h; v++)); do
			echo "== version $v"
			gctl export "$s" --version "$v" 2>&1
		done
		echo "== dev"
		gctl export "$s" --branch dev
		gctl branch list "$s" --json
		gctl recover "$s" --list --json
	} >"$out" 2>&1
}
fsck_clean() { gctl fsck "$1" >"$T/fsck" 2>&1 && grep -q ' 0 problems' "$T/fsck"; }
# mount_reads STORE ROW: a mount of STORE shows ROW's file with its name
mount_reads() {
	local rc=1
	timeout "$(scaled 30)" "$GRAPHFS" "$1" "$M" || return 1
	timeout 20 cat "$M/nodes/Person/$2.json" >"$T/row" 2>/dev/null &&
		[ -s "$T/row" ] && rc=0
	timeout 20 fusermount3 -u "$M" || rc=1
	return $rc
}
fmt_url() { sed -n 's/^manifest //p' "$1/FORMAT"; }
parked() { [ "$(find "$GRAPHFS_FP_DIR" -name '*.reached' | wc -l)" -ge "$1" ]; }
wait_parked() {
	for _ in $(seq 1 $(( $(scaled 30) * 100 ))); do parked "${1:-1}" && return 0; sleep 0.01; done
	return 1
}

etcd_cluster_start 3 "$T/cluster" || { echo "FAIL - could not start the cluster"; exit 1; }
ok "3-member cluster on $ETCD_ENDPOINTS"
EPS=$ETCD_ENDPOINTS
url() { echo "etcd://$EPS/gfs-mig/$1"; }

# ---- 1. LMDB -> etcd -> LMDB ---------------------------------------------
S=$T/store
gctl init "$S" --schema "$SCHEMA" -q || bad "init"
{ people 30 v1; companies 5 v1; } | gctl load "$S" --data - -q || bad "load v1"
gctl branch create "$S" dev >/dev/null || bad "branch create"
people 3 dev d | gctl load "$S" --data - --branch dev -q || bad "load on dev"
people 2 main m | gctl load "$S" --data - -q || bad "load on main"
gctl merge "$S" dev -q || bad "merge"
people 4 fwd f >"$T/f.jsonl"
GRAPHFS_FAILPOINTS=commit/before_publish=exit gctl load "$S" --data "$T/f.jsonl" -q 2>/dev/null
GRAPHFS_FAILPOINTS=commit/after_table=exit@1 gctl load "$S" --data "$T/f.jsonl" -q 2>/dev/null
gctl recover "$S" -q >/dev/null 2>&1 || gctl recover "$S" >/dev/null || bad "recover"
[ "$(gctl recover "$S" --list --json | js 'len(j["audit"])')" -ge 2 ] &&
	ok "LMDB store: history, branch dev, a merge, 2 audit records of killed writers" ||
	bad "setup: audit $(gctl recover "$S" --list --json)"
fsck_clean "$S" || bad "fsck before: $(cat "$T/fsck")"
state "$S" "$T/s0"
hv=$(head_v "$S")

# one record a batch: every resume point of every sub-database is exercised
gctl migrate "$S" --manifest "$(url a)" --batch 1 --json >"$T/j1" 2>"$T/err"
st=$?
[ "$st" = 0 ] && [ "$(js 'j["check"]' <"$T/j1")" = passed ] &&
	[ "$(fmt_url "$S")" = "$(url a)" ] && [ -e "$S/manifest/data.mdb" ] &&
	ok "LMDB -> etcd: check passed, FORMAT names the URL, the old manifest kept" ||
	bad "LMDB -> etcd: exit $st $(cat "$T/err" "$T/j1")"
[ "$(js 'j["dbs"]["versions"]' <"$T/j1")" = "$hv" ] &&
	[ "$(js 'j["dbs"]["audit"]' <"$T/j1")" -ge 2 ] &&
	[ "$(js 'j["dbs"]["audit_by_op"]' <"$T/j1")" = "$(js 'j["dbs"]["audit"]' <"$T/j1")" ] &&
	[ "$(js 'j["dbs"]["branches"]' <"$T/j1")" = 2 ] &&
	[ "$(js 'j["dbs"]["sidecars"]' <"$T/j1")" = 0 ] &&
	[ "$(js 'sum(j["dbs"].values()) == j["records"]' <"$T/j1")" = True ] &&
	ok "--json: $hv versions, audit = audit_by_op, 2 branches, 0 sidecars, counts add up" ||
	bad "counts: $(cat "$T/j1")"
n_etcd=$(etcdctl --endpoints="$EPS" get --prefix gfs-mig/a/ --keys-only | grep -c . )
[ "$n_etcd" -gt "$(js 'j["records"]' <"$T/j1")" ] && ok "etcd holds the records ($n_etcd keys)" ||
	bad "etcd holds $n_etcd keys"
state "$S" "$T/s1"
cmp -s "$T/s0" "$T/s1" && ok "on etcd: log, every version's export, dev, branches, audit equal" ||
	bad "state differs after LMDB -> etcd: $(diff "$T/s0" "$T/s1" | head -5)"
fsck_clean "$S" && ok "fsck clean on etcd" || bad "fsck on etcd: $(cat "$T/fsck")"
mount_reads "$S" p0001 && ok "a mount of the migrated store reads a row" || bad "mount after LMDB -> etcd"
people 1 after a | gctl load "$S" --data - -q && [ "$(head_v "$S")" = $((hv + 1)) ] &&
	ok "a load on the migrated store publishes version $((hv + 1))" || bad "load after migrate"
state "$S" "$T/s2"

gctl migrate "$S" --manifest lmdb --batch 2 --json >"$T/j2" 2>"$T/err"
st=$?
[ "$st" = 0 ] && [ "$(js 'j["check"]' <"$T/j2")" = passed ] &&
	[ "$(js 'j["cleared"]' <"$T/j2")" = True ] && ! grep -q '^manifest ' "$S/FORMAT" &&
	ok "etcd -> LMDB: check passed, the frozen old STORE/manifest recognised and replaced" ||
	bad "etcd -> LMDB: exit $st $(cat "$T/err" "$T/j2")"
state "$S" "$T/s3"
cmp -s "$T/s2" "$T/s3" && ok "back on LMDB: everything equal" ||
	bad "state differs after etcd -> LMDB: $(diff "$T/s2" "$T/s3" | head -5)"
fsck_clean "$S" && ok "fsck clean back on LMDB" || bad "fsck: $(cat "$T/fsck")"
mount_reads "$S" a0000 && ok "a mount reads after the way back" || bad "mount after etcd -> LMDB"
etcdctl --endpoints="$EPS" get gfs-mig/a/meta/moved_to --print-value-only | grep -q '"to":"lmdb"' &&
	ok "the old etcd manifest is kept, marked moved_to lmdb" || bad "no moved_to in the old etcd manifest"

# ---- 2. refusals ------------------------------------------------------------
state "$S" "$T/r0"
cp "$S/FORMAT" "$T/FORMAT.r0"
unchanged() { cmp -s "$S/FORMAT" "$T/FORMAT.r0" && state "$S" "$T/r1" && cmp -s "$T/r0" "$T/r1"; }

people 2 w w | \
	GRAPHFS_FAILPOINTS=load/after_locks=park with_timeout 60 "$GRAPHCTL" load "$S" --data - -q &
BG=$!
wait_parked || bad "the writer did not park"
gctl migrate "$S" --manifest "$(url b)" 2>"$T/err"
st=$?
[ "$st" = 5 ] && grep -q "writer at work" "$T/err" && unchanged &&
	ok "a writer holding its lock: exit 5 ($(head -c 110 "$T/err"))" || bad "writer: exit $st $(cat "$T/err")"
fp_release load/after_locks
wait "$BG" || bad "the parked writer failed"
BG=""
rm -f "$GRAPHFS_FP_DIR"/*.reached
state "$S" "$T/r0"

people 2 pend q | GRAPHFS_FAILPOINTS=commit/after_sidecar=exit gctl load "$S" --data - -q 2>/dev/null
gctl migrate "$S" --manifest "$(url b)" 2>"$T/err"
st=$?
[ "$st" = 5 ] && grep -q "pending operation" "$T/err" && grep -q "graphctl recover" "$T/err" &&
	[ "$(fmt_url "$S")" = "" ] &&
	ok "a pending sidecar: exit 5, says to recover ($(head -c 90 "$T/err"))" || bad "sidecar: exit $st $(cat "$T/err")"
gctl recover "$S" >/dev/null || bad "recover the sidecar"
state "$S" "$T/r0"

timeout "$(scaled 30)" "$GRAPHFS" "$S" "$M" || bad "mount for the refusal"
gctl migrate "$S" --manifest "$(url b)" 2>"$T/err"
st=$?
timeout 20 fusermount3 -u "$M" || bad "unmount"
[ "$st" = 5 ] && grep -q "is open in process" "$T/err" && unchanged &&
	ok "a mount of the LMDB store: exit 5 ($(head -c 100 "$T/err"))" || bad "mount: exit $st $(cat "$T/err")"

etcdctl --endpoints="$EPS" put gfs-mig/foreign/x 1 >/dev/null
gctl migrate "$S" --manifest "$(url foreign)" 2>"$T/err"
st=$?
[ "$st" = 1 ] && grep -q "already holds" "$T/err" && unchanged &&
	[ "$(etcdctl --endpoints="$EPS" get gfs-mig/foreign/x --print-value-only)" = 1 ] &&
	ok "a prefix with foreign keys: exit 1, left alone ($(head -c 100 "$T/err"))" || bad "foreign: exit $st $(cat "$T/err")"
gctl init "$T/other" --schema "$SCHEMA" --manifest "$(url other)" -q || bad "init other"
gctl migrate "$S" --manifest "$(url other)" 2>"$T/err"
st=$?
[ "$st" = 1 ] && grep -q "another store's manifest" "$T/err" && unchanged &&
	[ "$(head_v "$T/other")" = 1 ] &&
	ok "another store's manifest: exit 1, it still works ($(head -c 80 "$T/err"))" || bad "other store: exit $st $(cat "$T/err")"
gctl migrate "$S" --manifest lmdb >"$T/out" 2>&1
st=$?
[ "$st" = 0 ] && grep -q "nothing to do" "$T/out" && unchanged &&
	ok "its own backend: nothing to do, exit 0" || bad "same backend: exit $st $(cat "$T/out")"
# a URL of the same prefix spelled with other endpoints, and a nested one:
# refused before anything is touched (clearing would reach the store's keys)
gctl migrate "$S" --manifest "$(url d)" -q || bad "to prefix d"
state "$S" "$T/r0"; cp "$S/FORMAT" "$T/FORMAT.r0"
f0=$fails
for u in "etcd://$(etcd_endpoint 2)/gfs-mig/d" "etcd://$EPS/gfs-mig/d/meta" "etcd://$EPS/gfs-mig"; do
	gctl migrate "$S" --manifest "$u" 2>"$T/err"
	st=$?
	[ "$st" = 1 ] && grep -q "prefix apart" "$T/err" && unchanged ||
		bad "overlapping prefix $u: exit $st $(cat "$T/err")"
done
[ "$fails" = "$f0" ] && ok "the store's own prefix under another spelling, and nested prefixes: refused, unchanged"
# a writer on another host holds a lease key (docs/multi-host.md §4's
# layout, put by hand as another host's writer would), then a mount's hold
# of a graph version: the lease stops migrate's own table leases (the
# message names the table and its holder), the hold its scan of hold/
for k in "lease/node:Person/x/7f01.1" "hold/3/7f02"; do
	etcdctl --endpoints="$EPS" put "gfs-mig/d/$k" '{"holder":"7f01.1","pid":4242,"host":"h2"}' >/dev/null
	gctl migrate "$S" --manifest lmdb 2>"$T/err"
	st=$?
	case $k in
	lease/*) named="table 'node:Person' (exclusive) is held by" ;;
	*) named="gfs-mig/d/$k" ;;
	esac
	[ "$st" = 5 ] && grep -qF "$named" "$T/err" && grep -q '"host":"h2"' "$T/err" && unchanged &&
		ok "an etcd store with key ${k%%/*}/... of another host: exit 5 ($(head -c 100 "$T/err"))" ||
		bad "${k%%/*} key: exit $st $(cat "$T/err")"
	etcdctl --endpoints="$EPS" del "gfs-mig/d/$k" >/dev/null
done
gctl migrate "$S" --manifest lmdb -q || bad "back to LMDB"
state "$S" "$T/r0"; cp "$S/FORMAT" "$T/FORMAT.r0"
gctl migrate "$S" 2>"$T/err"; st=$?
[ "$st" = 2 ] && grep -q "missing --manifest" "$T/err" && ok "no --manifest: usage, exit 2" || bad "usage: $st"
gctl migrate --help | grep -q "old manifest is kept" && ok "--help" || bad "--help"

# ---- 3. SIGKILL at each step -----------------------------------------------
# kill_at FP[@N] TARGET: migrate parked at FP (its Nth hit), SIGKILLed (the
# pid is in the name of the file the park writes)
kill_at() {
	local f pid
	rm -f "$GRAPHFS_FP_DIR"/*.reached
	GRAPHFS_FAILPOINTS="${1%@*}=park${1#"${1%@*}"}" with_timeout 60 "$GRAPHCTL" \
		migrate "$S" --manifest "$2" --batch 4 -q >/dev/null 2>"$T/kerr" &
	BG=$!
	if wait_parked; then
		f=$(find "$GRAPHFS_FP_DIR" -name '*.reached' | head -1)
		pid=${f%.reached}
		pid=${pid##*.}
		kill -KILL "$pid"
	else
		bad "migrate did not reach $1: $(cat "$T/kerr")"
	fi
	wait "$BG" 2>/dev/null
	BG=""
	rm -f "$GRAPHFS_FP_DIR"/*.reached
}
state "$S" "$T/k0"
for fp in migrate/after_batch@3 migrate/after_copy; do
	kill_at "$fp" "$(url c)"
	state "$S" "$T/k1"
	[ "$(fmt_url "$S")" = "" ] && cmp -s "$T/k0" "$T/k1" && fsck_clean "$S" &&
		ok "killed at $fp: still on LMDB, unchanged, fsck clean" || bad "killed at $fp: $(diff "$T/k0" "$T/k1" | head -3)"
	people 1 "k$fp" "k${fp##*/}" | tr -d '@' | gctl load "$S" --data - -q &&
		ok "killed at $fp: a writer commits to the old manifest" || bad "killed at $fp: load refused"
	state "$S" "$T/k0"
done
gctl migrate "$S" --manifest "$(url c)" --json >"$T/j3" 2>"$T/err" &&
	[ "$(js 'j["cleared"]' <"$T/j3")" = True ] && [ "$(fmt_url "$S")" = "$(url c)" ] &&
	state "$S" "$T/k1" && cmp -s "$T/k0" "$T/k1" &&
	ok "rerun: the partial copy on prefix c recognised, cleared, redone, switched; equal" ||
	bad "rerun after kills: $(cat "$T/err" "$T/j3")"

kill_at migrate/after_mark lmdb
state "$S" "$T/k2"
[ "$(fmt_url "$S")" = "$(url c)" ] && cmp -s "$T/k0" "$T/k2" &&
	ok "killed after the freeze, before FORMAT: still on etcd, reads equal" || bad "after_mark: $(diff "$T/k0" "$T/k2" | head -3)"
people 1 frozen z | gctl load "$S" --data - -q 2>"$T/err"
st=$?
[ "$st" != 0 ] && grep -q "moved" "$T/err" &&
	state "$S" "$T/k3" && cmp -s "$T/k0" "$T/k3" &&
	ok "frozen: a write is refused, naming the move ($(head -c 100 "$T/err"))" || bad "frozen write: exit $st $(cat "$T/err")"
gctl migrate "$S" --manifest lmdb --json >"$T/j4" 2>"$T/err" &&
	[ "$(js 'j["resumed"]' <"$T/j4")" = True ] && [ "$(fmt_url "$S")" = "" ] &&
	state "$S" "$T/k3" && cmp -s "$T/k0" "$T/k3" && fsck_clean "$S" &&
	ok "rerun after the freeze: completed to LMDB, equal, fsck clean" || bad "rerun after_mark: $(cat "$T/err" "$T/j4")"
people 1 unfrozen u | gctl load "$S" --data - -q && ok "writes work on the new manifest" || bad "load after rerun"
state "$S" "$T/k0"
kill_at migrate/after_format "$(url g)"
state "$S" "$T/k4"
[ "$(fmt_url "$S")" = "$(url g)" ] && cmp -s "$T/k0" "$T/k4" && fsck_clean "$S" &&
	ok "killed right after the switch: on etcd, equal, fsck clean" || bad "after_format: $(diff "$T/k0" "$T/k4" | head -3)"
gctl migrate "$S" --manifest "$(url g)" --json >"$T/j6" 2>"$T/err" &&
	[ "$(js 'j["already"]' <"$T/j6")" = True ] &&
	ok "a rerun after the switch: nothing to do" || bad "rerun after the switch: $(cat "$T/err" "$T/j6")"
people 1 switched s | gctl load "$S" --data - -q && ok "writes work after the killed switch" || bad "load after after_format"
gctl migrate "$S" --manifest lmdb -q || bad "back to LMDB after after_format"

# an interrupted migrate cancelled: migrate to where the manifest is lifts
# the freeze
state "$S" "$T/k0"
kill_at migrate/after_mark "$(url h)"
people 1 frozen2 y | gctl load "$S" --data - -q 2>/dev/null && bad "a write went through a freeze"
# not while a migrate is still at work (it holds every table lock): parked
# after its check, the cancel is refused, and the migrate completes
rm -f "$GRAPHFS_FP_DIR"/*.reached
GRAPHFS_FAILPOINTS=migrate/after_mark=park with_timeout 60 "$GRAPHCTL" migrate "$S" \
	--manifest "$(url h)" -q 2>"$T/err2" &
BG=$!
wait_parked || bad "the second migrate did not park"
gctl migrate "$S" --manifest lmdb 2>"$T/err"
st=$?
fp_release migrate/after_mark
wait "$BG"; st2=$?
BG=""
rm -f "$GRAPHFS_FP_DIR"/*.reached
[ "$st" = 5 ] && grep -q "writer at work" "$T/err" && [ "$st2" = 0 ] && [ "$(fmt_url "$S")" = "$(url h)" ] &&
	state "$S" "$T/k5" && cmp -s "$T/k0" "$T/k5" &&
	ok "a cancel while a migrate is still at work: exit 5; the migrate completes" ||
	bad "cancel beside a running migrate: $st $st2 $(cat "$T/err" "$T/err2")"
gctl migrate "$S" --manifest lmdb -q || bad "back to LMDB before the cancel case"
state "$S" "$T/k0"
kill_at migrate/after_mark "$(url h)"
gctl migrate "$S" --manifest lmdb --json >"$T/j7" 2>"$T/err" &&
	[ "$(js 'j["thawed"]' <"$T/j7")" = True ] && [ "$(fmt_url "$S")" = "" ] &&
	state "$S" "$T/k5" && cmp -s "$T/k0" "$T/k5" &&
	people 1 thawed t | gctl load "$S" --data - -q &&
	ok "an interrupted migrate cancelled by migrating to where the store is: thawed, writable" ||
	bad "cancel: $(cat "$T/err" "$T/j7")"
gctl migrate "$S" --manifest lmdb --json | js 'j["thawed"]' | grep -qx False &&
	ok "... and only once: then nothing to do" || bad "second cancel"

# a writer that takes no table lock (branch create) commits to the old
# manifest after the copy: the check after the freeze sees it and thaws
rm -f "$GRAPHFS_FP_DIR"/*.reached
GRAPHFS_FAILPOINTS=migrate/after_copy=park with_timeout 60 "$GRAPHCTL" migrate "$S" \
	--manifest "$(url e)" --json >"$T/j5" 2>"$T/err" &
BG=$!
wait_parked || bad "migrate did not park after the copy"
gctl branch create "$S" racer >/dev/null || bad "branch create during the copy"
fp_release migrate/after_copy
wait "$BG"; st=$?
BG=""
rm -f "$GRAPHFS_FP_DIR"/*.reached
[ "$st" = 1 ] && grep -q "check failed: sub-database '[a-z_]*' of the old manifest" "$T/err" &&
	[ "$(js 'j["check"]' <"$T/j5")" = failed ] && [ "$(fmt_url "$S")" = "" ] &&
	gctl branch list "$S" --json | grep -q racer &&
	people 1 race r | gctl load "$S" --data - -q &&
	ok "a commit between copy and check: check failed, nothing switched, the store writable ($(head -c 90 "$T/err"))" ||
	bad "racing commit: exit $st $(cat "$T/err")"

# ---- 4. a writer that opened the store before the switch --------------------
# (on etcd: an LMDB store open in another process is refused, part 2)
gctl migrate "$S" --manifest "$(url d)" -q || bad "LMDB -> etcd prefix d"
timeout "$(scaled 30)" "$GRAPHFS" "$S" "$M" || bad "mount before the switch"
state "$S" "$T/w0"
people 2 late l | GRAPHFS_FAILPOINTS=load/after_stage=park \
	with_timeout 60 "$GRAPHCTL" load "$S" --data - -q 2>"$T/werr" &
BG=$!
wait_parked || bad "the early writer did not park"
gctl migrate "$S" --manifest lmdb -q 2>"$T/err" || bad "migrate beside a parked early writer: $(cat "$T/err")"
fp_release load/after_stage
wait "$BG"; st=$?
BG=""
rm -f "$GRAPHFS_FP_DIR"/*.reached
state "$S" "$T/w1"
[ "$st" != 0 ] && grep -q "moved" "$T/werr" && cmp -s "$T/w0" "$T/w1" &&
	[ "$(gctl recover "$S" --list --json | js 'len(j["pending"])')" = 0 ] &&
	ok "a writer opened before the switch cannot commit after it ($(head -c 120 "$T/werr"))" ||
	bad "early writer: exit $st $(cat "$T/werr"); $(diff "$T/w0" "$T/w1" | head -3)"
# the mount opened on etcd before the switch: reads what it had, cannot write
timeout 20 cat "$M/nodes/Person/p0001.json" >"$T/row" && grep -q '"P v1"' "$T/row" &&
	ok "a mount opened before the switch still reads" || bad "old mount: read"
python3 - "$M/nodes/Person/mnt0.json" >"$T/werr2" 2>&1 <<'PY'
import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b'{"slug":"mnt0","name":"M"}\n')
    os.close(fd)
    print("written")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
PY
grep -qx EROFS "$T/werr2" && state "$S" "$T/w2" && cmp -s "$T/w0" "$T/w2" &&
	ok "its write fails with EROFS, nothing published anywhere" ||
	bad "old mount: write gave $(cat "$T/werr2")"
timeout 20 fusermount3 -u "$M" || bad "unmount the old mount"
mount_reads "$S" p0001 && ok "mounted again: reads the new manifest" || bad "remount"
fsck_clean "$S" && ok "fsck clean at the end" || bad "fsck at the end: $(cat "$T/fsck")"

# progress on a terminal (script(1) gives migrate one), none without
if command -v script >/dev/null; then
	with_timeout 60 script -qec "$GRAPHCTL migrate $S --manifest $(url f) --batch 8" /dev/null \
		>"$T/tty" 2>&1
	grep -q "migrate: versions .* records" "$T/tty" && grep -q "check passed" "$T/tty" &&
		[ "$(fmt_url "$S")" = "$(url f)" ] && fsck_clean "$S" &&
		ok "on a terminal: a progress line per sub-database, then the summary" ||
		bad "progress: $(head -c 300 "$T/tty")"
	gctl migrate "$S" --manifest lmdb >"$T/out" 2>&1
	! grep -q "records$(printf '\r')\|migrate: versions" "$T/out" && grep -qF "etcdctl --endpoints=$EPS del --prefix 'gfs-mig/f/'" "$T/out" &&
		ok "not a terminal: no progress; the summary names how to remove the old manifest" ||
		bad "no tty: $(cat "$T/out")"
	# the removal the summary prints, run as printed: the store does not notice
	cmd=$(sed -n 's/^  etcdctl /etcdctl /p' "$T/out")
	state "$S" "$T/e0"
	[ -n "$cmd" ] && eval "$cmd" >/dev/null &&
		[ -z "$(etcdctl --endpoints="$EPS" get --prefix gfs-mig/f/ --keys-only)" ] &&
		state "$S" "$T/e1" && cmp -s "$T/e0" "$T/e1" && fsck_clean "$S" &&
		ok "the printed removal command empties the old prefix; the store reads the same" ||
		bad "removal: '$cmd'"
fi

[ "$fails" = 0 ] && { echo "all passed"; exit 0; }
echo "$fails failure(s)"
exit 1
