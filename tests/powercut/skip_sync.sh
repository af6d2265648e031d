# tests/powercut/skip_sync.sh - the power-cut checker catches every missing
# fsync (issue 8, requirement 1).
#
# For each durability call of the write path, a sync/skip_* failpoint makes
# the writer leave it out; the checker (powercut.py --expect-fail) must then
# report a violation.  A point that is never reached leaves nothing to
# catch, so it fails this test too.  The same writers without the skip pass
# in tests/powercut/powercut.sh.
. "$top_srcdir/tests/crash/crashlib.sh"
. "$top_srcdir/tests/powercut/pclib.sh"

gen_people 20 v2 >"$T/merge.jsonl"
gen_edges 20 v2 >>"$T/merge.jsonl"
seeded() { new_store "$1"; }
none() { :; }
back() {
	new_store "$1"
	if GRAPHFS_FAILPOINTS=commit/after_table=exit gctl load "$1" --data "$T/merge.jsonl" -q 2>/dev/null; then
		echo "load was not killed" >&2; return 1
	fi
}

skip() { # skip FAILPOINT SETUP [powercut.py options --] WRITER ARGS...
	local fp=$1 setup=$2 name out opts=()
	name=$(fp_file_name "$fp")$((++nskip))
	shift 2
	case " $* " in *" -- "*)
		while [ "$1" != -- ]; do opts+=("$1"); shift; done
		shift ;;
	esac
	rm -rf "${T:?}/$name"
	mkdir -p "$T/$name/w"
	"$setup" "$T/$name/w/s"
	if ! out=$(GRAPHFS_FP_LOG=$T/$name.fired pc_check "$name" --cuts 4 \
		--k 2 --seed 1 --expect-fail --fp "$fp=error:EIO" \
		${opts[@]+"${opts[@]}"} -- "$@"); then
		echo "$out"
		bad "$fp: the checker did not notice the missing fsync"
	elif ! fired "$fp" "$T/$name.fired"; then
		bad "$fp: never reached by the writer (nothing was skipped)"
	else
		echo "$out" | sed -n '1,3p'
		ok "$fp: the checker reports the missing fsync"
	fi
}

nskip=0
skip sync/skip_table_tmp seeded "$GRAPHCTL" load @S --data "$T/merge.jsonl" -q
skip sync/skip_table_dir seeded "$GRAPHCTL" load @S --data "$T/merge.jsonl" -q
skip sync/skip_format none "$GRAPHCTL" init @S --schema "$SCHEMA" -q
skip sync/skip_schema none "$GRAPHCTL" init @S --schema "$SCHEMA" -q
skip sync/skip_store_parent none "$GRAPHCTL" init @S --schema "$SCHEMA" -q
skip sync/skip_manifest_dir none "$GRAPHCTL" init @S --schema "$SCHEMA" -q
skip sync/skip_compensation back "$GRAPHCTL" recover @S -q
skip sync/skip_format_dir none "$GRAPHCTL" init @S --schema "$SCHEMA" -q
skip sync/skip_schema_dir none "$GRAPHCTL" init @S --schema "$SCHEMA" -q
skip sync/skip_table_create none "$GRAPHCTL" init @S --schema "$SCHEMA" -q
# schema apply writes schemas/<id>.pg through the same code as init: a
# graph version must never name a schema file a power cut can lose
sed 's/n: I64?/n: I64?  note: String?/' "$SCHEMA" >"$T/schema2.pg"
skip sync/skip_schema seeded "$GRAPHCTL" schema apply @S "$T/schema2.pg" -q
skip sync/skip_schema_dir seeded "$GRAPHCTL" schema apply @S "$T/schema2.pg" -q
# graphctl upgrade rewrites FORMAT through the same code: both of its syncs
format1() {
	tar -C "$T" -xzf "$top_srcdir/tests/data/format1-store.tar.gz"
	mv "$T/fixture/store" "$1"
	rm -rf "$T/fixture"
}
skip sync/skip_format format1 --prepare upgrade -- "$GRAPHCTL" upgrade @S
skip sync/skip_format_dir format1 --prepare upgrade -- "$GRAPHCTL" upgrade @S

# As a reviewer's LD_PRELOAD shim turning fsync/fdatasync into no-ops would:
# LMDB's fdatasync of data.mdb alone, then every one.
for what in manifest/data.mdb all; do
	name=nosync-$(fp_file_name "$what")
	mkdir -p "$T/$name/w"
	seeded "$T/$name/w/s"
	if out=$(pc_check "$name" --cuts 4 --k 2 --expect-fail --ignore-sync "$what" \
		-- "$GRAPHCTL" load @S --data "$T/merge.jsonl" -q); then
		echo "$out" | sed -n '1,2p'
		ok "fsync of $what as a no-op is caught"
	else
		echo "$out"
		bad "fsync of $what as a no-op went unnoticed"
	fi
done

# gc: its commit point (the tombstones) must be durable before the first
# unlink; with LMDB's fdatasync a no-op a cut can keep the unlinks and lose
# the tombstones, and the checker must see versions whose files are gone.
gcstore() { new_store "$1"; gctl load "$1" --data "$T/merge.jsonl" -q; gctl compact "$1" -q; }
name=nosync-gc
mkdir -p "$T/$name/w"
gcstore "$T/$name/w/s"
if out=$(pc_check "$name" --cuts all --k 1 --expect-fail --may-remove --ignore-sync manifest/data.mdb \
	-- "$GRAPHCTL" gc @S --keep-last 1 -q); then
	echo "$out" | sed -n '1,2p'
	ok "gc with LMDB's fsync as a no-op is caught"
else
	echo "$out"
	bad "gc with LMDB's fsync as a no-op went unnoticed"
fi
# The model checks itself against the writer's real tree: a trace with one
# recorded write left out, or with a call the model does not know, fails.
mkdir -p "$T/self/w"
seeded "$T/self/w/s"
pc_check self --cuts 0 --k 0 --budget 1 -- "$GRAPHCTL" load @S --data "$T/merge.jsonl" -q >/dev/null ||
	bad "the untampered trace does not check"
cp "$T/self/trace.log" "$T/self/trace.orig"
tamper() { # tamper HOW: rewrites $T/self/trace.log from trace.orig
	python3 - "$PC_DIR" "$T/self/trace.orig" "$T/self/trace.log" "$1" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from powercut import parse_log
recs = list(parse_log(sys.argv[2]))
if sys.argv[4] == "drop-write":
    last = max(i for i, r in enumerate(recs) if r[0] == "W")
    del recs[last]
else:
    recs.insert(len(recs) - 1, ("X", [recs[0][1][0], "msync"], b""))
with open(sys.argv[3], "wb") as f:
    for tag, fields, payload in recs:
        f.write("\t".join([tag] + fields).encode() + b"\n" + payload)
PY
}
for how in drop-write unknown-call; do
	tamper "$how"
	out=$(GRAPHCTL=$GRAPHCTL python3 "$PC_DIR/powercut.py" --work "$T/self" \
		--name self --replay 0:none -- x 2>&1) && rc=0 || rc=$?
	case "$how:$rc:$out" in
	drop-write:1:*"recorder missed calls"*|unknown-call:1:*"cannot follow the trace"*)
		ok "a trace with a $how is refused" ;;
	*)	echo "$out"; bad "a trace with a $how was accepted (rc $rc)" ;;
	esac
done
finish
