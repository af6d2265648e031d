# tests/powercut/powercut.sh - simulated power loss (issue 8, requirement 1).
#
# Records the file-system calls of every writer kind with an LD_PRELOAD
# recorder (record.c) and checks the states a power cut may leave
# (powercut.py; the model is in docs/testing.md "Simulated power loss").
#
#   make check TESTS=tests/powercut/powercut.sh      short: sampled cut points
#   GRAPHFS_POWERCUT=full (or GRAPHFS_STRESS=1, make stress): every cut
#                                        point, K=4, 6 states mounted
#   GRAPHFS_POWERCUT_SEED=N                          another sample
#
# A failure prints the state (cut point, lost operations) and a replay
# command that rebuilds and checks that one state.
. "$top_srcdir/tests/crash/crashlib.sh"
. "$top_srcdir/tests/powercut/pclib.sh"

SEED=${GRAPHFS_POWERCUT_SEED:-$(( $(date +%s) % 100000 ))}
if [ "${GRAPHFS_POWERCUT:-short}" = full ] || [ -n "${GRAPHFS_STRESS:-}" ]; then
	OPTS=(--cuts all --k 4 --mounts 6)
	LARGE=20000     # table files written in several 1 MiB chunks
else
	# about a minute under ASan on 2 cores for all writers together:
	# the last cut point first (where a missing fsync shows), then 10
	# sampled ones, at most 24 distinct states per writer.
	OPTS=(--cuts 10 --k 1 --budget 24 --mounts 2)
	LARGE=3000
fi
echo "# seed $SEED (GRAPHFS_POWERCUT_SEED=$SEED replays this sample)"

SUMMARY=$T/summary
: >"$SUMMARY"
writer() { # writer NAME SETUP-FUNCTION WRITER-ARGS...
	local name=$1 setup=$2 out
	shift 2
	rm -rf "${T:?}/$name"
	mkdir -p "$T/$name/w"
	"$setup" "$T/$name/w/s"
	if out=$(pc_check "$name" "${OPTS[@]}" --seed "$SEED" -- "$@"); then
		echo "$out"
		ok "$name: every crash state is the old graph or the new one"
	else
		echo "$out"
		bad "$name: a power cut loses or breaks something"
	fi
	echo "$out" | grep '^[a-z-]*: seed' >>"$SUMMARY" || true
}

none() { :; }
seeded() { new_store "$1"; }
# killed FP STORE: a load killed at FP leaves a sidecar for the sweep.
killed() {
	new_store "$2"
	gen_people 30 v2 >"$T/k.jsonl"
	if GRAPHFS_FAILPOINTS=$1=exit gctl load "$2" --data "$T/k.jsonl" -q 2>/dev/null; then
		echo "load was not killed at $1" >&2; return 1
	fi
	[ "$(pending "$2")" = 1 ] || { echo "no sidecar after $1" >&2; return 1; }
}
fwd() { killed commit/after_confirm "$1"; }
back() { killed commit/after_table "$1"; }

gen_people 40 v2 >"$T/merge.jsonl"
gen_edges 40 v2 >>"$T/merge.jsonl"
gen_docs 5 new >>"$T/merge.jsonl"
# append: new ids only (persons q*, companies k*, edges x*)
gen_people 20 v3 | sed 's/"p0/"q0/; s/"c0/"k0/' >"$T/append.jsonl"
gen_edges 20 v3 | sed 's/"p0/"q0/; s/"c0/"k0/; s/"w0/"x0/' >>"$T/append.jsonl"
gen_people "$LARGE" big >"$T/large.jsonl"
gen_edges "$LARGE" big >>"$T/large.jsonl"
# overwrite with deletes: every table the file names shrinks to 10 rows
gen_people 10 v4 >"$T/over.jsonl"
gen_edges 10 v4 >>"$T/over.jsonl"

# without -q: the first write to stdout is the acknowledgment
writer init none "$GRAPHCTL" init @S --schema "$SCHEMA"
writer load-merge seeded "$GRAPHCTL" load @S --data "$T/merge.jsonl" --mode merge
writer load-append seeded "$GRAPHCTL" load @S --data "$T/append.jsonl" --mode append -q
# large enough for multi-page table files and several LMDB pages
writer load-large seeded "$GRAPHCTL" load @S --data "$T/large.jsonl" -q
writer load-overwrite seeded "$GRAPHCTL" load @S --data "$T/over.jsonl" --mode overwrite -q
writer recover-forward fwd "$GRAPHCTL" recover @S -q
writer recover-back back "$GRAPHCTL" recover @S
# a load that heals a dead writer first (roll forward / roll back), then loads
writer load-heal-forward fwd "$GRAPHCTL" load @S --data "$T/append.jsonl" --mode append -q
writer load-heal-back back "$GRAPHCTL" load @S --data "$T/merge.jsonl" --json
if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
	writer mount-sweep back "$GRAPHFS" @S @M
	writer mount-sweep-forward fwd "$GRAPHFS" @S @M
else
	echo "# no FUSE here: the mount's sweep is not traced"
fi

pc_summary "$SUMMARY"
finish
