#!/bin/bash
# lint_layers.sh - the kv layering holds (src/kv.h, docs/decisions.md "The kv
# interface under store.c"): src/kv_lmdb.c is the only file of the library,
# the mount and the tools that includes <lmdb.h> or calls LMDB, so a second
# backend slots in under store.c without touching the record logic.  Tests
# may include it (they plant bytes LMDB would hold).
set -euo pipefail
: "${top_srcdir:?}"
cd "$top_srcdir"
fails=0
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }

[ -f src/kv_lmdb.c ] || bad "src/kv_lmdb.c is missing"
grep -q '#include <lmdb.h>' src/kv_lmdb.c || bad "src/kv_lmdb.c does not include <lmdb.h>: lint out of date"
while IFS= read -r hit; do
	bad "<lmdb.h> outside src/kv_lmdb.c: $hit"
done < <(grep -rnE '#[[:space:]]*include[[:space:]]*[<"]lmdb\.h[>"]' src fuse tools |
	 grep -vE '^src/kv_lmdb\.c:' || true)
while IFS= read -r hit; do
	bad "LMDB called outside src/kv_lmdb.c: $hit"
done < <(grep -rnE '\b(mdb_[a-z_]+\(|MDB_(env|txn|val|dbi|cursor)\b)' src fuse tools --include='*.c' --include='*.h' |
	 grep -vE '^src/kv_lmdb\.c:' || true)
if [ "$fails" -ne 0 ]; then
	echo "$fails layering violation(s)"
	exit 1
fi
echo "ok - only src/kv_lmdb.c talks to LMDB"
