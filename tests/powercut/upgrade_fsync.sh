# tests/powercut/upgrade_fsync.sh - a failing fsync during `graphctl
# upgrade` fails the upgrade and leaves a store that opens.
#
# Each fsync/fdatasync the upgrade makes fails in turn with EIO (the I/O
# fault shim tests/faults/faultinj.c).  Each time: exit 1 naming the
# operation and the file (the data is not known to be safe: no success is
# claimed), FORMAT is still there (before the fix, an EIO from the store
# directory's fsync unlinked the new FORMAT, and no command, upgrade
# included, would open the store again), a second upgrade finishes and
# fsyncs again even when FORMAT already says 2, and
# after recovery fsck is clean and every graph version exports as the
# format-1 build exported it.
. "$top_srcdir/tests/crash/crashlib.sh"

FI=$T/faultinj.so
${CC:-cc} -O1 -fPIC -shared -o "$FI" "$top_srcdir/tests/faults/faultinj.c" -ldl ||
	{ echo "cannot build the fault shim"; exit 1; }
PRE=$(ldd "$GRAPHCTL" | awk '/lib(a|ub)san/ { printf "%s:", $3 }')

fixture() { # fixture DIR
	rm -rf "$1"
	mkdir -p "$1"
	tar -C "$1" -xzf "$top_srcdir/tests/data/format1-store.tar.gz"
}
shim() { # shim STORE FAULT CMD...: runs CMD with the shim counting under STORE
	local s=$1 f=$2
	shift 2
	env GFS_FAULT_DIR="$s" GFS_FAULT_REPORT="${REPORT:-$T/report}" ${f:+GFS_FAULT=$f} \
		ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
		LD_PRELOAD="$PRE$FI" "$@"
}

fixture "$T/count"
: >"$T/report"
shim "$T/count/fixture/store" "" "$GRAPHCTL" upgrade "$T/count/fixture/store" -q ||
	bad "upgrade without faults failed"
cp "$T/report" "$T/count.report" # the faulted runs below reuse $T/report
n=0
for kind in fsync fdatasync; do
	c=$(awk -v k="kind=$kind" '$3 == k { sub("calls=", "", $4); s += $4 } END { print s + 0 }' "$T/count.report")
	[ "$c" -gt 0 ] || { bad "the upgrade made no $kind call"; continue; }
	for i in $(seq 1 "$c"); do
		fixture "$T/f"
		S=$T/f/fixture/store
		: >"$T/report"
		set +e
		shim "$S" "$kind:$i:EIO" "$GRAPHCTL" upgrade "$S" -q 2>"$T/err"
		rc=$?
		set -e
		n=$((n + 1))
		what="$kind #$i failing"
		grep -q "^fired" "$T/report" || { bad "$what: the fault never fired"; continue; }
		[ "$rc" = 1 ] || bad "$what: upgrade exit $rc, wanted 1"
		grep -q "Input/output error" "$T/err" || bad "$what: no I/O error named: $(head -c 300 "$T/err")"
		[ -e "$S/FORMAT" ] || bad "$what: FORMAT is gone"
		: >"$T/report2"
		REPORT=$T/report2 shim "$S" "" "$GRAPHCTL" upgrade "$S" -q 2>"$T/err" ||
			bad "$what: a second upgrade failed: $(head -c 300 "$T/err")"
		# Even when FORMAT already says 2, the rerun fsyncs the directory
		# the failed one could not: it never trusts the page cache.
		c=$(awk '$3 == "kind=fsync" { sub("calls=", "", $4); s += $4 } END { print s + 0 }' "$T/report2")
		[ "$c" -gt 0 ] || bad "$what: the second upgrade made no fsync (FORMAT's name left to the page cache)"
		gctl recover "$S" -q >/dev/null 2>&1 || bad "$what: recover failed"
		gctl fsck "$S" >/dev/null 2>&1 || bad "$what: fsck not clean"
		for f in "$T/f/fixture/exports"/*.jsonl; do
			v=$(basename "$f" .jsonl)
			gctl export "$S" --version "$v" | cmp -s - "$f" ||
				bad "$what: version $v differs"
		done
	done
done
[ "$fails" = 0 ] && ok "$n failing syncs of an upgrade: each fails it, the store opens, a rerun finishes"
finish
