# tests/lib.sh - helpers for shell tests (POSIX sh; source it).
#
#   . "$top_srcdir/tests/lib.sh"
#   GRAPHFS_FP_DIR=$(mktemp -d); export GRAPHFS_FP_DIR
#   GRAPHFS_FAILPOINTS=commit/after_sidecar=park graphctl load ... &
#   pid=$(fp_wait_reached commit/after_sidecar 30) || fail "never parked"
#   ... inspect the store while the writer is parked ...
#   fp_release commit/after_sidecar
#
# A parked process announces itself with the file
# "$GRAPHFS_FP_DIR/<name with / replaced by _>.<pid>.reached" (holding its
# pid) and blocks until that file is deleted (src/failpoints.c).

# The file-name form of a failpoint name.
fp_file_name() {
	printf '%s\n' "$1" | tr '/' '_'
}

# fp_wait_reached NAME [TIMEOUT_S]: waits until a process parks at NAME and
# prints its pid; status 1 on timeout.  Polls every 10 ms.
fp_wait_reached() {
	_fp_base=$(fp_file_name "$1")
	_fp_left=$(( $(scaled "${2:-30}") * 100 ))
	while [ "$_fp_left" -gt 0 ]; do
		for _fp_f in "${GRAPHFS_FP_DIR:?GRAPHFS_FP_DIR unset}/$_fp_base".*.reached; do
			[ -e "$_fp_f" ] || continue
			_fp_pid=${_fp_f##*/}
			_fp_pid=${_fp_pid#"$_fp_base".}
			printf '%s\n' "${_fp_pid%.reached}"
			return 0
		done
		sleep 0.01
		_fp_left=$((_fp_left - 1))
	done
	echo "fp_wait_reached: nobody reached '$1' in ${2:-30}s" >&2
	return 1
}

# fp_release NAME [PID]: releases the process(es) parked at NAME.
fp_release() {
	_fp_base=$(fp_file_name "$1")
	: "${GRAPHFS_FP_DIR:?GRAPHFS_FP_DIR unset}"
	if [ -n "${2:-}" ]; then
		rm -f "$GRAPHFS_FP_DIR/$_fp_base.$2.reached"
	else
		rm -f "$GRAPHFS_FP_DIR/$_fp_base".*.reached
	fi
}

# fp_arm NAME: fires NAME once, at its next hit in any process that armed
# it with "NAME=ACTION@arm" in GRAPHFS_FAILPOINTS (src/failpoints.c).
fp_arm() {
	: >"${GRAPHFS_FP_DIR:?GRAPHFS_FP_DIR unset}/$(fp_file_name "$1").arm"
}

# scaled SECS: SECS times GRAPHFS_TEST_TIMEOUT_FACTOR (default 1), for slow
# or busy machines.  Every bounded wait of the suite goes through it.
scaled() {
	echo $(( $1 * ${GRAPHFS_TEST_TIMEOUT_FACTOR:-1} ))
}

# manifest_opt: the `graphctl init` arguments for the manifest backend under
# test, unquoted: `"$GRAPHCTL" init "$S" --schema X $(manifest_opt)`.
# Nothing by default (LMDB in STORE/manifest); with GRAPHFS_MANIFEST=etcd
# (tests/etcd/both.sh) "--manifest etcd://$GRAPHFS_TEST_ETCD_ENDPOINTS/t/ID",
# a prefix no other store of the run uses.
manifest_opt() {
	[ "${GRAPHFS_MANIFEST:-lmdb}" = etcd ] || return 0
	: "${GRAPHFS_TEST_ETCD_ENDPOINTS:?GRAPHFS_MANIFEST=etcd needs a cluster: run tests/etcd/both.sh}"
	echo "--manifest etcd://$GRAPHFS_TEST_ETCD_ENDPOINTS/t/$$-$(date +%s%N)"
}

# with_timeout SECS CMD [ARGS...]: runs CMD, killed (TERM, then KILL 5 s
# later) after SECS (scaled); status 124 on timeout as timeout(1).
with_timeout() {
	_wt_secs=$(scaled "$1")
	shift
	timeout --kill-after=5 "$_wt_secs" "$@"
}

# expect_status CODE DESC CMD...: runs CMD with stdout in $T/out and stderr
# in $T/err, then reports (ok/bad, the caller's) whether it exited CODE.
# expect_err PATTERN DESC: whether $T/err matches the extended regex.
expect_status() {
	_es_want=$1 _es_desc=$2
	shift 2
	_es_got=0
	"$@" >"$T/out" 2>"$T/err" || _es_got=$?
	if [ "$_es_got" = "$_es_want" ]; then
		ok "$_es_desc (exit $_es_got)"
	else
		bad "$_es_desc: exit $_es_got, wanted $_es_want: $(head -c 400 "$T/err")"
	fi
}
expect_err() {
	if grep -qE -- "$1" "$T/err"; then ok "$2"; else bad "$2: stderr was: $(head -c 400 "$T/err")"; fi
}

# kernel_lock: serializes the tests whose checks the kernel's caches decide
# (they count the requests the kernel sends, or the inodes it holds) with
# the tests that drop those caches (`echo 2 > /proc/sys/vm/drop_caches` is
# global to the machine), so `make -j2 check`, two build trees or two
# users' runs never interleave them.  Takes an exclusive flock on
# ${GRAPHFS_KERNEL_LOCK:-${TMPDIR:-/tmp}/graphfs-kernel-tests.lock} (fd 9,
# opened read-only, so any user may share the file) for the rest of the
# script; the kernel releases it when the script and the daemons it started
# (which inherit fd 9) are gone.  Bounded: status 1 after 600 s (scaled).
kernel_lock() {
	_kl=${GRAPHFS_KERNEL_LOCK:-${TMPDIR:-/tmp}/graphfs-kernel-tests.lock}
	[ -e "$_kl" ] || : >>"$_kl" 2>/dev/null
	exec 9<"$_kl" || return 1
	flock -w "$(scaled 600)" 9 || {
		echo "kernel_lock: $_kl still held after $(scaled 600) s" >&2
		return 1
	}
}

# wait_for SECONDS CMD...: runs CMD every 10 ms until it holds, for at most
# SECONDS (scaled) of wall time however long one try takes; then once more,
# whose status it returns.  A bounded wait for a state, never for ordering.
wait_for() {
	local end=$(( SECONDS + $(scaled "$1") )); shift
	while [ "$SECONDS" -lt "$end" ]; do "$@" && return 0; sleep 0.01; done
	"$@"
}

# stat_of MNT EXPR: a field of MNT/.graphfs/stats, EXPR a python expression
# over the parsed JSON j (e.g. 'j["notifier"]["polls"]'); empty on failure.
stat_of() {
	timeout 10 cat "$1/.graphfs/stats" 2>/dev/null |
		python3 -c "import json,sys; j=json.load(sys.stdin); print($2)" 2>/dev/null
}
