#!/bin/bash
# tmp_cleanup.sh - a writer killed after writing its table temp file but
# before link() leaves a ".tmp-*" file in the table's directory.  It is never
# a version (readers, fsck and the next writer ignore it as one), and the
# next writer of that table, holding its LOCK_EX, removes it; a load that
# fails validation removes nothing (bad input leaves the store as it was).
. "$top_srcdir/tests/crash/crashlib.sh"

S=$T/store
new_store "$S"
gen_people 50 v2 >"$T/v2.jsonl"
printf '{"type":"Person","data":{"slug":"zz","name":"After"}}\n' >"$T/one.jsonl"
printf '{"type":"Person","data":{"slug":"bad","name":1}}\n' >"$T/bad.jsonl"
tmps() { find "$S/tables/node:Person" -maxdepth 1 -name '.tmp-*' | wc -l; }
before=$(gctl export "$S")

set +e
GRAPHFS_FAILPOINTS=table/after_tmp_write=exit gctl load "$S" --data "$T/v2.jsonl" -q 2>/dev/null
st=$?
set -e
[ "$st" = 86 ] && ok "writer killed after its temp file (exit 86)" || bad "exit $st"
[ "$(tmps)" -ge 1 ] && ok "it left a temp file in node:Person" || bad "no temp file left: the test proves nothing"
gctl fsck "$S" >/dev/null 2>&1 || true  # the pending sidecar is fsck's business, not the temp file
[ "$(gctl export "$S")" = "$before" ] && ok "nothing of it visible" || bad "export changed"

set +e
gctl load "$S" --data "$T/bad.jsonl" -q 2>/dev/null
st=$?
set -e
[ "$st" != 0 ] && ok "bad input refused" || bad "bad input loaded"
[ "$(tmps)" -ge 1 ] && ok "a refused load removes nothing" || bad "a refused load removed the temp file"

gctl load "$S" --data "$T/one.jsonl" -q && ok "the next writer loads" || bad "next load failed"
[ "$(tmps)" = 0 ] && ok "the next writer removed the dead writer's temp file" || bad "$(tmps) temp file(s) left"
gctl export "$S" --type Person | grep '"zz"' >/dev/null && ok "its row is there" || bad "row missing"
clean "$S" && ok "store clean (fsck, no sidecar)" || bad "not clean"
finish
