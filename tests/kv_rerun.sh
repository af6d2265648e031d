#!/bin/bash
# kv_rerun.sh - every write callback of the manifest survives being run
# again (kv.h's write-callback rule, docs/invariants.md 270): the manifest,
# recovery, branch, merge, gc, load and apply unit tests run with
# GRAPHFS_KV_RERUN=1, which makes the LMDB backend throw away the first run
# of every write transaction and run the callback again, as the etcd
# backend does after a conflict.  A callback that kept state from the
# thrown-away run (an output it did not rebuild, an input it changed, a
# database it created) shows up as a failing check.  Needs a failpoint
# build (./configure --enable-failpoints), where the switch exists.
set -uo pipefail
: "${top_builddir:?}"
if ! grep -q '^#define GFS_FAILPOINTS_ENABLED' "$top_builddir/config.h" 2>/dev/null; then
	echo "SKIP: GRAPHFS_KV_RERUN needs a failpoint build (--enable-failpoints)"
	exit 77
fi
fails=0
for t in check_kv check_manifest check_recover check_branches check_merge \
	 check_gc check_load check_apply; do
	prog="$top_builddir/tests/unit/$t"
	if [ ! -x "$prog" ]; then
		echo "FAIL - $prog not built (make check builds it)"
		fails=$((fails + 1))
		continue
	fi
	if out=$(GRAPHFS_KV_RERUN=1 "$prog" 2>&1); then
		echo "ok - $t with every write run twice: $(printf '%s\n' "$out" | tail -n 1)"
	else
		printf '%s\n' "$out"
		echo "FAIL - $t with GRAPHFS_KV_RERUN=1"
		fails=$((fails + 1))
	fi
done
[ "$fails" -eq 0 ] || { echo "$fails failing"; exit 1; }
