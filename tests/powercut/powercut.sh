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
	# sampled ones, at most 20 distinct states per writer.
	OPTS=(--cuts 10 --k 1 --budget 20 --mounts 2)
	LARGE=3000
fi
echo "# seed $SEED (GRAPHFS_POWERCUT_SEED=$SEED replays this sample)"

SUMMARY=$T/summary
: >"$SUMMARY"
writer() { # writer NAME SETUP-FUNCTION [powercut.py options --] WRITER-ARGS...
	local name=$1 setup=$2 out opts=()
	shift 2
	case " $* " in *" -- "*)
		while [ "$1" != -- ]; do opts+=("$1"); shift; done
		shift ;;
	esac
	rm -rf "${T:?}/$name"
	mkdir -p "$T/$name/w"
	"$setup" "$T/$name/w/s"
	if out=$(pc_check "$name" "${OPTS[@]}" ${opts[@]+"${opts[@]}"} --seed "$SEED" -- "$@"); then
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
# orphan STORE: a node:Person version above the pin that no sidecar names
# (the same load done on a copy, its version file put into this store).
orphan() {
	local h
	new_store "$1"
	rm -rf "$T/twin"
	cp -a "$1" "$T/twin"
	gen_people 40 v2 >"$T/twin.jsonl"
	gctl load "$T/twin" --data "$T/twin.jsonl" -q
	h=$(ls "$T/twin/tables/node:Person" | grep -E '^[0-9]+$' | sort -n | tail -1)
	cp "$T/twin/tables/node:Person/$h" "$1/tables/node:Person/$h"
}
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
writer recover-orphan orphan "$GRAPHCTL" recover @S
# two loads of disjoint tables at once, one trace: before both are done the
# head may show either one alone (exports made on copies by the setup)
gen_docs 30 conc >"$T/docs.jsonl"
gen_people 30 conc >"$T/people.jsonl"
concurrent() {
	local d
	new_store "$1"
	for d in docs people; do
		rm -rf "$T/alone"
		cp -a "$1" "$T/alone"
		gctl load "$T/alone" --data "$T/$d.jsonl" -q
		gctl export "$T/alone" >"$T/alone-$d.export"
	done
}
writer two-loads concurrent --accept "$T/alone-docs.export" \
	--accept "$T/alone-people.export" -- \
	sh -c "\"\$0\" load @S --data '$T/docs.jsonl' -q & a=\$!
		\"\$0\" load @S --data '$T/people.jsonl' -q & b=\$!
		wait \$a && wait \$b" "$GRAPHCTL"
# a schema apply that rewrites node:Person (--default) and creates a
# table: schemas/<id>.pg durable before its sidecar, every state has the
# old schema with the old rows or the new one with the new rows
sed 's/n: I64?/n: I64?  level: I32/' "$SCHEMA" >"$T/schema2.pg"
printf 'node Project { code: String @key }\n' >>"$T/schema2.pg"
writer schema-apply seeded "$GRAPHCTL" schema apply @S "$T/schema2.pg" --default Person.level=1
# a load that heals a dead writer first (roll forward / roll back), then loads
writer load-heal-forward fwd "$GRAPHCTL" load @S --data "$T/append.jsonl" --mode append -q
writer load-heal-back back "$GRAPHCTL" load @S --data "$T/merge.jsonl" --json
# graphctl upgrade of the format-1 store made by the old build
# (tests/data/format1-store.tar.gz): each state is upgraded (again) first,
# as a user would have to, then recovered and checked.
format1() {
	tar -C "$T" -xzf "$top_srcdir/tests/data/format1-store.tar.gz"
	mv "$T/fixture/store" "$1"
	rm -rf "$T/fixture"
}
writer upgrade format1 --prepare upgrade -- "$GRAPHCTL" upgrade @S
# gc after a compact: it tombstones the old versions, then unlinks the old
# chain in descending order with a directory fsync per table; a cut
# anywhere leaves every kept version whole (the unlinks come after the
# commit point; names that come back are unlinked again by recovery).
gcstore() { new_store "$1"; gctl load "$1" --data "$T/merge.jsonl" -q; gctl compact "$1" -q; }
writer gc gcstore --may-remove -- "$GRAPHCTL" gc @S --keep-last 1
# compact: the same rows in fresh files, one new graph version
compactstore() { new_store "$1"; gctl load "$1" --data "$T/merge.jsonl" -q; }
writer compact compactstore "$GRAPHCTL" compact @S
if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
	writer mount-sweep back "$GRAPHFS" @S @M
	writer mount-sweep-forward fwd "$GRAPHFS" @S @M
else
	echo "# no FUSE here: the mount's sweep is not traced"
fi

pc_summary "$SUMMARY"
finish
