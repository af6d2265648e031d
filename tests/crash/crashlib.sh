# tests/crash/crashlib.sh - shared setup for the crash and concurrency tests
# (bash; source it after setting nothing: it reads GRAPHCTL, top_srcdir,
# top_builddir from the test environment).
#
# Ordering between processes is only ever by failpoints that park a process
# until released (tests/lib.sh: fp_wait_reached / fp_release).  Every wait is
# bounded: commands run under with_timeout, parks are waited for with a
# timeout.  No sleep orders anything.
set -euo pipefail
: "${GRAPHCTL:?}" "${top_srcdir:?}" "${top_builddir:?}"
. "$top_srcdir/tests/lib.sh"

# Crash tests need a failpoint build: skip (77) otherwise.
if ! grep -q '^#define GFS_FAILPOINTS_ENABLED' "$top_builddir/config.h" 2>/dev/null; then
	echo "SKIP: not configured with --enable-failpoints"
	exit 77
fi

T=$(mktemp -d /tmp/gfs-crash.XXXXXX)
GRAPHFS_FP_DIR=$T/fp
mkdir -p "$GRAPHFS_FP_DIR"
export GRAPHFS_FP_DIR
unset GRAPHFS_FAILPOINTS
BG_PIDS=""
cleanup() {
	# Release anything still parked, then end our own children by pid.
	rm -f "$GRAPHFS_FP_DIR"/*.reached 2>/dev/null || true
	for p in $BG_PIDS; do kill -CONT "$p" 2>/dev/null || true; kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT
TMO=60          # seconds any one command may take
fails=0
ok()   { echo "ok - $*"; }
bad()  { echo "FAIL - $*"; fails=$((fails + 1)); }
finish() { [ "$fails" -eq 0 ] && echo "all passed" || { echo "$fails failure(s)"; exit 1; }; }

gctl() { with_timeout "$TMO" "$GRAPHCTL" "$@"; }

# A schema with three node tables and one edge table.
SCHEMA=$T/crash.pg
cat >"$SCHEMA" <<'EOF'
node Person { slug: String @key  name: String  n: I64? }
node Company { domain: String @key  name: String }
node Doc { title: String @key  body: String? }
edge WorksAt: Person -> Company { role: String? }
EOF

# blocked_on_flock PID [TIMEOUT]: waits (scaled, bounded) until PID waits
# for a flock, as /proc/locks shows a waiter ("-> FLOCK ... PID ...").
blocked_on_flock() {
	local left=$(( $(scaled "${2:-30}") * 100 ))
	while [ "$left" -gt 0 ]; do
		grep -qE -- "-> FLOCK +ADVISORY +[A-Z]+ +$1 " /proc/locks && return 0
		sleep 0.01
		left=$((left - 1))
	done
	return 1
}

# gen_people N TAG: N persons and N/10+1 companies whose values carry TAG,
# so two generations of one id differ.  Nodes only (Person, Company).
gen_people() {
	awk -v n="$1" -v tag="$2" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%06d\",\"name\":\"P %d %s\",\"n\":%d}}\n", i, i, tag, i
		for (i = 0; i <= n / 10; i++)
			printf "{\"type\":\"Company\",\"data\":{\"domain\":\"c%05d.example\",\"name\":\"C %d %s\"}}\n", i, i, tag
	}'
}
# gen_edges N TAG: edges p_i -> c_(i/10), ids w_i (merge replaces them).
gen_edges() {
	awk -v n="$1" -v tag="$2" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "{\"edge\":\"WorksAt\",\"from\":\"p%06d\",\"to\":\"c%05d.example\",\"data\":{\"id\":\"w%06d\",\"role\":\"r %s\"}}\n", i, int(i / 10), i, tag
	}'
}
gen_docs() {
	awk -v n="$1" -v tag="$2" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "{\"type\":\"Doc\",\"data\":{\"title\":\"d%04d\",\"body\":\"%s\"}}\n", i, tag
	}'
}

# new_store DIR: init + one load of people and edges (graph versions 1, 2).
new_store() {
	# shellcheck disable=SC2046 # manifest_opt's words
	gctl init "$1" --schema "$SCHEMA" $(manifest_opt) -q >/dev/null
	gen_people 50 v1 >"$T/seed.jsonl"
	gen_edges 50 v1 >>"$T/seed.jsonl"
	gctl load "$1" --data "$T/seed.jsonl" -q >/dev/null
}

# copy_store SRC DST: `cp -a` of a quiet store.  A store whose manifest is
# on etcd (GRAPHFS_MANIFEST=etcd) also gets a copy of its manifest on a
# prefix of its own (tests/etcd/etcd_copy), else the copy would share it.
copy_store() {
	cp -a "$1" "$2"
	if grep -q '^manifest etcd://' "$1/FORMAT"; then
		"$top_builddir/tests/etcd/etcd_copy" "$1" "$2" "t/$$-$(date +%s%N)"
	fi
}

# pending STORE: number of pending sidecars.
pending() {
	gctl recover "$1" --list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["pending"]))'
}
# pending_ids STORE: their op ids, one a line.
pending_ids() {
	gctl recover "$1" --list --json | python3 -c 'import json,sys; [print(s["op_id"]) for s in json.load(sys.stdin)["pending"]]'
}
# audits STORE OPID: number of audit records for OPID; audit_decision: the last one's decision.
audits() {
	gctl recover "$1" --list --json | python3 -c 'import json,sys; print(sum(a["op_id"] == sys.argv[1] for a in json.load(sys.stdin)["audit"]))' "$2"
}
audit_decision() {
	gctl recover "$1" --list --json | python3 -c 'import json,sys; print(([a["decision"] for a in json.load(sys.stdin)["audit"] if a["op_id"] == sys.argv[1]] or ["none"])[-1])' "$2"
}
# summary FIELD FILE: a field of a `recover --json` summary.
summary() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[2]))[sys.argv[1]])' "$1" "$2"
}
head_version() {
	gctl snapshot "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'
}

# exports_of STORE PREFIX: writes PREFIX.<v> for every graph version.
exports_of() {
	local v n
	n=$(head_version "$1")
	for v in $(seq 1 "$n"); do gctl export "$1" --version "$v" >"$2.$v"; done
}
# remember_versions STORE PREFIX: exports every graph version not saved yet
# to PREFIX.<v> (same_exports checks them later).
remember_versions() {
	local v
	for v in $(seq 1 "$(head_version "$1")"); do
		[ -e "$2.$v" ] || gctl export "$1" --version "$v" >"$2.$v"
	done
}
# all_versions_same STORE PREFIX: ok/bad for every version saved so far.
all_versions_same() {
	local n
	n=$(head_version "$1")
	if same_exports "$1" "$2" "$n"; then ok "all $n graph versions export byte-identically"
	else bad "an earlier version changed"; fi
}
# same_exports STORE PREFIX N: versions 1..N still export byte-identically.
same_exports() {
	local v
	for v in $(seq 1 "$3"); do
		gctl export "$1" --version "$v" | cmp -s - "$2.$v" || return 1
	done
}
# clean STORE: fsck clean and no sidecar left.
clean() {
	gctl fsck "$1" -q >"$T/fsck.out" 2>&1 || { cat "$T/fsck.out"; return 1; }
	[ "$(pending "$1")" = 0 ]
}

# wait_parked NAME COUNT [TIMEOUT]: waits until COUNT processes park at NAME.
wait_parked() {
	local base left=$(( ${3:-30} * 100 )) n
	base=$(fp_file_name "$1")
	while [ "$left" -gt 0 ]; do
		n=$(find "$GRAPHFS_FP_DIR" -maxdepth 1 -name "$base.*.reached" | wc -l)
		[ "$n" -ge "$2" ] && return 0
		sleep 0.01
		left=$((left - 1))
	done
	echo "wait_parked: only $n of $2 at $1" >&2
	return 1
}

# fired NAME LOG: did an armed NAME fire (src/failpoints.c appends
# "name action pid" to $GRAPHFS_FP_LOG each time one does)?
fired() {
	[ -e "$2" ] && grep -q "^$1 " "$2"
}

# bg CMD...: runs CMD in the background, remembers its pid in $! / BG_PIDS.
bg() {
	"$@" &
	BG_PIDS="$BG_PIDS $!"
}
