# tests/etcd/cluster.sh - a real etcd cluster for one test (bash; source it
# after tests/lib.sh, which gives `scaled`).
#
#   . "$top_srcdir/tests/lib.sh"
#   . "$top_srcdir/tests/etcd/cluster.sh"
#   etcd_cluster_start 3 "$T/etcd" || exit 99     # ETCD_ENDPOINTS=h:p,h:p,h:p
#   ... talk to "$ETCD_ENDPOINTS" ...
#   etcd_member_kill 0; ...; etcd_member_start 0   # a test that kills one
#   etcd_cluster_stop                             # also run by the EXIT trap
#
# etcd_cluster_start N DIR starts N members (default 3) of a fresh cluster on
# 127.0.0.1, with client and peer ports picked free at run time (the kernel
# gives python3 sockets bound to port 0; all 2N are held open together so
# they differ, then closed and handed to etcd).  Another process may take a
# port in between: a member that exits before the cluster is healthy makes
# the whole start retry on new ports (3 attempts).  Each member's data dir
# is DIR/mI and its log DIR/mI.log (printed on failure).
#
# Settings, and why (docs/testing.md "etcd tests"):
#  --max-txn-ops 1024: etcd refuses a transaction of more than 128
#    operations by default; a manifest publish on etcd writes each table's pin
#    and each sub-database's generation key in one Txn (docs/multi-host.md),
#    which a graph of many tables exceeds.  1024 is the test cluster's bound
#    and what docs/multi-host.md asks of a production cluster.  A test of
#    a smaller cluster sets GFS_ETCD_MAX_TXN_OPS before etcd_cluster_start
#    (not ETCD_…: etcd reads those from its environment, and a flag that
#    one shadows stops it).
#  --heartbeat-interval 100 --election-timeout 1300: a little more patience
#    than the default 1000 ms before a busy 2-core machine's late heartbeat
#    starts an election, but no more: etcd's shortest lease TTL is
#    ceil(1.5 * election timeout) seconds (minTTL in etcdserver), and the
#    tests need the 2 s TTL the issue names (1.5 * 1.3 s = 1.95 s -> 2 s).
#  --snapshot-count 10000: smaller snapshots, a test cluster lives seconds.
#  --experimental-watch-progress-notify-interval 1s (10 min by default):
#    an idle watch learns within a second how far the store has got, so a
#    test sees a watch resume past a compaction (etcd_client progress).
#    ETCD_PROGRESS_NOTIFY=10m (set before etcd_cluster_start) restores
#    etcd's default, for a test of a watch left silent (tests/etcd/alive.sh).
# Data dirs are wherever DIR is; tests put it on /dev/shm when they can
# (GRAPHFS_ETCD_TMPDIR), as fsync on a disk shared with a stress run makes
# etcd's applies slow enough to miss heartbeats.
#
# Exports: ETCD_ENDPOINTS (client "127.0.0.1:port" list, comma-separated, in
# member order), ETCD_PIDS (member pids, space-separated; a killed member's
# is "-"), ETCD_CLUSTER_DIR, and arrays ETCD_CLIENT_PORT[i], ETCD_PEER_PORT[i],
# ETCD_PID[i].  Every wait is bounded (scaled by GRAPHFS_TEST_TIMEOUT_FACTOR)
# and polls for the state it wants; nothing sleeps for ordering.
#
# Cleanup: the first etcd_cluster_start installs an EXIT trap that stops the
# cluster and then runs whatever EXIT trap the test had set before (set your
# own trap *before* starting the cluster, or call etcd_cluster_stop in it),
# and INT/TERM traps that exit so the EXIT trap runs.

ETCD_BIN=${ETCD_BIN:-etcd}
ETCDCTL_BIN=${ETCDCTL_BIN:-etcdctl}
ETCD_PIDS=""
ETCD_ENDPOINTS=""
ETCD_CLUSTER_DIR=""
ETCD_CLIENT_PORT=()
ETCD_PEER_PORT=()
ETCD_PID=()
_etcd_trap_set=""
_etcd_prev_exit=""
_etcd_initial=""
_etcd_token=""

# _etcd_free_ports N: prints N distinct free TCP ports of 127.0.0.1.
_etcd_free_ports() {
	python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

_etcd_capture_trap() { _etcd_prev_exit=$2; }   # args of `trap -p`: -- CMD SIG

_etcd_on_exit() {
	etcd_cluster_stop
	if [ -n "$_etcd_prev_exit" ]; then eval "$_etcd_prev_exit"; fi
}

_etcd_install_trap() {
	[ -n "$_etcd_trap_set" ] && return 0
	local prev
	prev=$(trap -p EXIT)
	if [ -n "$prev" ]; then eval "_etcd_capture_trap ${prev#trap }"; fi
	trap _etcd_on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	_etcd_trap_set=1
}

# _etcd_launch I: starts member I in the background (new or existing data).
_etcd_launch() {
	local i=$1 state=new
	[ -d "$ETCD_CLUSTER_DIR/m$i/member" ] && state=existing
	"$ETCD_BIN" --name "m$i" --data-dir "$ETCD_CLUSTER_DIR/m$i" \
		--listen-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORT[$i]}" \
		--advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORT[$i]}" \
		--listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT[$i]}" \
		--initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT[$i]}" \
		--initial-cluster "$_etcd_initial" \
		--initial-cluster-token "$_etcd_token" \
		--initial-cluster-state "$state" \
		--max-txn-ops "${GFS_ETCD_MAX_TXN_OPS:-1024}" \
		--heartbeat-interval 100 --election-timeout 1300 \
		--snapshot-count 10000 \
		--experimental-watch-progress-notify-interval "${ETCD_PROGRESS_NOTIFY:-1s}" \
		--logger zap --log-outputs stderr \
		</dev/null >>"$ETCD_CLUSTER_DIR/m$i.log" 2>&1 &
	ETCD_PID[$i]=$!
	_etcd_export
}

_etcd_export() {
	local i eps="" pids=""
	for i in "${!ETCD_CLIENT_PORT[@]}"; do
		eps="${eps:+$eps,}127.0.0.1:${ETCD_CLIENT_PORT[$i]}"
		pids="${pids:+$pids }${ETCD_PID[$i]:--}"
	done
	ETCD_ENDPOINTS=$eps
	ETCD_PIDS=$pids
	export ETCD_ENDPOINTS ETCD_PIDS ETCD_CLUSTER_DIR
}

# _etcd_healthy ENDPOINTS: whether every listed endpoint answers healthy.
_etcd_healthy() {
	ETCDCTL_API=3 timeout 5 "$ETCDCTL_BIN" --endpoints="$1" \
		--dial-timeout=1s --command-timeout=2s endpoint health >/dev/null 2>&1
}

# _etcd_wait_health ENDPOINTS SECS [I...]: polls (every 0.1 s, bounded by
# SECS scaled) until ENDPOINTS are healthy; status 2 at once if one of the
# members I exited (a port collision, or a bad flag), 1 on timeout.
_etcd_wait_health() {
	local eps=$1 secs i
	secs=$(scaled "$2")
	shift 2
	local deadline=$((SECONDS + secs))
	while [ "$SECONDS" -lt "$deadline" ]; do
		for i in "$@"; do
			kill -0 "${ETCD_PID[$i]}" 2>/dev/null || return 2
		done
		_etcd_healthy "$eps" && return 0
		sleep 0.1
	done
	return 1
}

_etcd_show_logs() {
	local i
	for i in "${!ETCD_CLIENT_PORT[@]}"; do
		echo "--- etcd member m$i (log $ETCD_CLUSTER_DIR/m$i.log, last 15 lines)" >&2
		tail -n 15 "$ETCD_CLUSTER_DIR/m$i.log" >&2 2>/dev/null || true
	done
}

# etcd_require: exits 77 (skipped) unless etcd and etcdctl are installed.
etcd_require() {
	if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
		echo "SKIP: etcd and etcdctl not installed (scripts/deps.sh: etcd-server etcd-client)"
		exit 77
	fi
}

# etcd_tmpdir NAME: a new directory for a test (its path on stdout), on
# tmpfs when there is one (GRAPHFS_ETCD_TMPDIR overrides): etcd fsyncs each
# commit, and a disk shared with other tests makes that slow enough to
# cost elections.
etcd_tmpdir() {
	local root=${GRAPHFS_ETCD_TMPDIR:-/dev/shm}
	[ -d "$root" ] && [ -w "$root" ] || root=${TMPDIR:-/tmp}
	mktemp -d "$root/$1.XXXXXX"
}

# etcd_cluster_start [N] DIR: status 0 when all N members are healthy;
# otherwise 1 with the members' log tails on stderr (nothing left running).
etcd_cluster_start() {
	local n=3 dir attempt i ports rc
	if [ $# -ge 2 ]; then n=$1; dir=$2; else dir=$1; fi
	command -v "$ETCD_BIN" >/dev/null || { echo "etcd_cluster_start: no '$ETCD_BIN' (Debian: apt-get install etcd-server)" >&2; return 1; }
	command -v "$ETCDCTL_BIN" >/dev/null || { echo "etcd_cluster_start: no '$ETCDCTL_BIN' (Debian: apt-get install etcd-client)" >&2; return 1; }
	_etcd_install_trap
	for attempt in 1 2 3; do
		ETCD_CLUSTER_DIR=$dir
		rm -rf "$dir"; mkdir -p "$dir"
		ETCD_CLIENT_PORT=(); ETCD_PEER_PORT=(); ETCD_PID=()
		read -r -a ports <<<"$(_etcd_free_ports $((2 * n)))"
		[ "${#ports[@]}" = $((2 * n)) ] || { echo "etcd_cluster_start: could not pick $((2 * n)) free ports" >&2; return 1; }
		_etcd_initial=""
		for ((i = 0; i < n; i++)); do
			ETCD_CLIENT_PORT[$i]=${ports[$((2 * i))]}
			ETCD_PEER_PORT[$i]=${ports[$((2 * i + 1))]}
			_etcd_initial="${_etcd_initial:+$_etcd_initial,}m$i=http://127.0.0.1:${ETCD_PEER_PORT[$i]}"
		done
		_etcd_token="gfs-test-$$-$attempt-$RANDOM"
		for ((i = 0; i < n; i++)); do _etcd_launch "$i"; done
		rc=0
		_etcd_wait_health "$ETCD_ENDPOINTS" 30 "${!ETCD_PID[@]}" || rc=$?
		[ "$rc" = 0 ] && return 0
		if [ "$rc" = 2 ] && grep -qi "address already in use" "$dir"/m*.log 2>/dev/null; then
			echo "etcd_cluster_start: a port was taken meanwhile (attempt $attempt), retrying on new ports" >&2
			etcd_cluster_stop keep
			continue
		fi
		echo "etcd_cluster_start: $n-member cluster on $ETCD_ENDPOINTS not healthy within $(scaled 30) s" >&2
		_etcd_show_logs
		etcd_cluster_stop keep
		return 1
	done
	echo "etcd_cluster_start: ports kept colliding, 3 attempts" >&2
	return 1
}

# _etcd_stop_pid PID: TERM, then KILL after 5 s (scaled), then reap.  A
# member a test stopped (SIGSTOP) is continued, so the TERM acts now.
_etcd_stop_pid() {
	local pid=$1 left
	kill -TERM "$pid" 2>/dev/null || return 0
	kill -CONT "$pid" 2>/dev/null
	left=$(( $(scaled 5) * 20 ))
	while [ "$left" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
		sleep 0.05
		left=$((left - 1))
	done
	kill -KILL "$pid" 2>/dev/null || true
	{ wait "$pid"; } 2>/dev/null || true
}

# etcd_cluster_stop [keep]: stops every member by pid and removes the
# cluster's directory (kept with "keep", for the retry and the logs).
etcd_cluster_stop() {
	local i
	for i in "${!ETCD_PID[@]}"; do
		[ -n "${ETCD_PID[$i]}" ] && _etcd_stop_pid "${ETCD_PID[$i]}"
		ETCD_PID[$i]=""
	done
	_etcd_export
	if [ "${1:-}" != keep ] && [ -n "$ETCD_CLUSTER_DIR" ]; then
		rm -rf "$ETCD_CLUSTER_DIR"
		ETCD_CLUSTER_DIR=""
	fi
}

# etcd_member_kill I [SIG]: kills member I (SIGKILL unless SIG) and reaps it.
etcd_member_kill() {
	local i=$1 pid=${ETCD_PID[$1]:-}
	[ -n "$pid" ] || { echo "etcd_member_kill: member $i is not running" >&2; return 1; }
	kill "-${2:-KILL}" "$pid" 2>/dev/null || true
	{ wait "$pid"; } 2>/dev/null || true
	ETCD_PID[$i]=""
	_etcd_export
}

# etcd_member_start I: restarts member I on its data dir and ports; waits
# (bounded) until it is healthy again.
etcd_member_start() {
	local i=$1 rc=0
	[ -z "${ETCD_PID[$i]:-}" ] || { echo "etcd_member_start: member $i is running" >&2; return 1; }
	_etcd_launch "$i"
	_etcd_wait_health "127.0.0.1:${ETCD_CLIENT_PORT[$i]}" 30 "$i" || rc=$?
	[ "$rc" = 0 ] && return 0
	echo "etcd_member_start: member m$i not healthy within $(scaled 30) s" >&2
	tail -n 15 "$ETCD_CLUSTER_DIR/m$i.log" >&2
	return 1
}

# etcd_endpoint I: the client endpoint "127.0.0.1:port" of member I.
etcd_endpoint() { echo "127.0.0.1:${ETCD_CLIENT_PORT[$1]}"; }

# etcdctl_ [--endpoints=EPS] [ARGS...]: etcdctl against the whole cluster
# (or EPS: etcdctl would add a second --endpoints to the first), bounded.
etcdctl_() {
	local eps=$ETCD_ENDPOINTS
	case "${1:-}" in --endpoints=*) eps=${1#--endpoints=}; shift ;; esac
	ETCDCTL_API=3 timeout "$(scaled 20)" "$ETCDCTL_BIN" --endpoints="$eps" \
		--dial-timeout=2s --command-timeout=5s "$@"
}

# etcd_leader: prints the index of the member that leads (status 1 if none
# answers); etcd_make_leader I: moves the leadership to member I and waits
# (bounded) until it leads, so a test can kill the leader on purpose.
# (Member ids are uint64: parsed by python3, as jq would round them.)
_etcd_status() {  # prints "ENDPOINT MEMBER_ID_HEX LEADER_ID_HEX" per member
	etcdctl_ "$@" endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for m in json.load(sys.stdin):
    st = m["Status"]
    print(m["Endpoint"], "%x" % st["header"]["member_id"], "%x" % st.get("leader", 0))'
}

etcd_leader() {
	local ep id lead i
	while read -r ep id lead; do
		[ "$id" = "$lead" ] || continue
		for i in "${!ETCD_CLIENT_PORT[@]}"; do
			[ "$ep" = "$(etcd_endpoint "$i")" ] && { echo "$i"; return 0; }
		done
	done < <(_etcd_status)
	return 1
}

etcd_make_leader() {
	local i=$1 cur id left
	id=$(_etcd_status --endpoints="$(etcd_endpoint "$i")" | awk '{ print $2 }')
	[ -n "$id" ] || { echo "etcd_make_leader: member $i does not answer" >&2; return 1; }
	left=$(( $(scaled 20) * 10 ))
	while [ "$left" -gt 0 ]; do
		cur=$(etcd_leader) || cur=""
		[ "$cur" = "$i" ] && return 0
		if [ -n "$cur" ]; then
			etcdctl_ --endpoints="$(etcd_endpoint "$cur")" move-leader "$id" >/dev/null 2>&1 || true
		fi
		sleep 0.1
		left=$((left - 1))
	done
	echo "etcd_make_leader: member $i did not become the leader in $(scaled 20) s" >&2
	return 1
}
