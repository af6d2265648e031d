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

skip() { # skip FAILPOINT SETUP WRITER ARGS...
	local fp=$1 setup=$2 name out
	name=$(fp_file_name "$fp")
	shift 2
	rm -rf "${T:?}/$name"
	mkdir -p "$T/$name/w"
	"$setup" "$T/$name/w/s"
	if out=$(pc_check "$name" --cuts 4 --k 2 --seed 1 --expect-fail \
		--fp "$fp=error:EIO" -- "$@"); then
		echo "$out" | sed -n '1,3p'
		ok "$fp: the checker reports the missing fsync"
	else
		echo "$out"
		bad "$fp: the checker did not notice the missing fsync"
	fi
}

skip sync/skip_table_tmp seeded "$GRAPHCTL" load @S --data "$T/merge.jsonl" -q
skip sync/skip_table_dir seeded "$GRAPHCTL" load @S --data "$T/merge.jsonl" -q
skip sync/skip_format none "$GRAPHCTL" init @S --schema "$SCHEMA" -q
skip sync/skip_schema none "$GRAPHCTL" init @S --schema "$SCHEMA" -q
skip sync/skip_store_parent none "$GRAPHCTL" init @S --schema "$SCHEMA" -q
skip sync/skip_manifest_dir none "$GRAPHCTL" init @S --schema "$SCHEMA" -q
skip sync/skip_compensation back "$GRAPHCTL" recover @S -q
finish
