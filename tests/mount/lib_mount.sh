# tests/mount/lib_mount.sh - helpers for the mount tests (bash; source it).
#
#   . "$top_srcdir/tests/mount/lib_mount.sh"
#   new_store S people         # graphctl init with the test schema
#   mount_gfs "$S" "$M"        # graphfs S M, remembered for the EXIT trap
#   check "what" test ...      # counts a failure instead of exiting
#   finish                     # exit status: number of failures > 0
#
# Every mount made through mount_gfs is unmounted on exit
# (fusermount3 -u, else umount -l); every command that could hang on a
# broken mount runs under timeout.
set -uo pipefail
: "${GRAPHCTL:?}" "${GRAPHFS:?}" "${top_srcdir:?}"
. "$top_srcdir/tests/lib.sh"

T=$(mktemp -d /tmp/gfs-mount.XXXXXX)
chmod 755 "$T"
MNTS=()
fails=0

cleanup() {
	local m
	for m in "${MNTS[@]}"; do
		timeout 20 fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT

ok()  { echo "ok - $* ($SECONDS s)"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
# check DESC CMD...: runs CMD (under timeout), ok if it succeeds.
check() {
	local desc=$1; shift
	local run=(timeout "$(scaled 60)")
	declare -F "$1" >/dev/null && run=() # shell functions bound themselves
	if "${run[@]}" "$@" >/dev/null; then ok "$desc"; else bad "$desc"; fi
}
finish() {
	echo "# $fails failure(s)"
	[ "$fails" -eq 0 ]
}

gc() { timeout "$(scaled 120)" "$GRAPHCTL" "$@"; }

SCHEMA=$T/people.pg
cat > "$SCHEMA" <<'PG'
node Person { slug: String @key  name: String?  age: I32? }
node Company { name: String @key }
edge Knows: Person -> Person
edge WorksAt: Person -> Company { since: Date? }
PG

new_store() { # new_store DIR
	# shellcheck disable=SC2046 # manifest_opt's words
	gc init "$1" --schema "$SCHEMA" $(manifest_opt) >/dev/null
}

load() { # load STORE MODE < jsonl
	gc load "$1" --data - --mode "$2" >/dev/null
}

mount_gfs() { # mount_gfs STORE MNT [graphfs options...]
	local s=$1 m=$2; shift 2
	mkdir -p "$m"
	MNTS+=("$m")
	timeout "$(scaled 30)" "$GRAPHFS" "$s" "$m" "$@"
}

umount_gfs() { # umount_gfs MNT: unmounts and waits until it is gone
	timeout 20 fusermount3 -u "$1" || return 1
	local i
	for i in $(seq 1 500); do
		mountpoint -q "$1" || return 0
		sleep 0.01
	done
	return 1
}

# wait_until SECS CMD...: polls CMD every 5 ms until it succeeds.
# out_is WANT CMD... / out_le MAX CMD...: CMD's output, read at each call,
# equals WANT / is at most MAX.  For wait_until, which runs its command again
# and again: `wait_until 5 test "$(cat F)" = 3` would read F only once.
out_is() { local want=$1; shift; [ "$("$@" 2>/dev/null)" = "$want" ]; }
out_le() { local max=$1 v; shift; v=$("$@" 2>/dev/null) && [ -n "$v" ] && [ "$v" -le "$max" ]; }

wait_until() {
	local secs i; secs=$(scaled "$1"); shift
	for i in $(seq 1 $((secs * 200))); do
		"$@" 2>/dev/null && return 0
		sleep 0.005
	done
	return 1
}

# stat_json MNT: the .graphfs/stats counters of requests on versions/N
requests_versions() {
	timeout 10 jq -c .requests_versions "$1/.graphfs/stats"
}
