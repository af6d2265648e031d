#!/bin/bash
# merge_kill.sh - a merge killed at each of its failpoints (merge/after_plan,
# merge/after_heal, merge/after_locks) and at every commit point it passes
# (commit/after_sidecar, table/after_tmp_write, table/after_link,
# commit/after_table, commit/after_confirm, commit/before_publish,
# commit/after_publish), then `graphctl recover`:
#  - main exports either as before the merge or as the merge's result,
#    never a mix: before the confirm the old content (a roll back publishes
#    compensations), from the confirm on the merged one;
#  - a rolled-forward merge's graph version has parents [H, S] (the
#    sidecar records the merge: invariant 163);
#  - dev is byte-identical throughout, fsck is clean, no sidecar is left,
#    at most one audit record for the merge's op;
#  - merging again then gives the merged content (or "already merged");
#  - a fast-forward killed before its one transaction leaves main as it
#    was, and run again writes no table file;
#  - a fast-forward heals a dead writer's sidecar on the target first.
# The merge writes Person (rows changed on both sides) and adopts WorksAt
# (changed on dev only), so it arms and builds two tables.
. "$top_srcdir/tests/crash/crashlib.sh"

BASE=$T/base
new_store "$BASE"
gctl branch create "$BASE" dev -q >/dev/null
printf '{"type":"Person","data":{"slug":"p000001","name":"on dev"}}\n{"type":"Person","data":{"slug":"zdev","name":"new on dev"}}\n' |
	gctl load "$BASE" --branch dev --data - -q
printf '{"edge":"WorksAt","from":"zdev","to":"c00001.example","data":{"id":"wdev"}}\n' |
	gctl load "$BASE" --branch dev --data - -q
printf '{"type":"Person","data":{"slug":"p000002","name":"on main"}}\n' | gctl load "$BASE" --data - -q
gctl export "$BASE" >"$T/old"
gctl export "$BASE" --branch dev >"$T/dev"
# the expected result: a merge that is not killed
cp -a "$BASE" "$T/ref"
gctl merge "$T/ref" dev -q
gctl export "$T/ref" >"$T/new"
cmp -s "$T/old" "$T/new" && bad "the reference merge changed nothing"
grep -q '"on dev"' "$T/new" && grep -q '"on main"' "$T/new" && grep -q '"wdev"' "$T/new" \
	&& ok "reference merge: both sides' rows" || bad "reference merge: $(cat "$T/new")"

points="merge/after_plan merge/after_heal merge/after_locks commit/after_sidecar
table/after_tmp_write table/after_link commit/after_table commit/after_confirm
commit/before_publish commit/after_publish"
for p in $points; do
	S=$T/s; rm -rf "$S"; cp -a "$BASE" "$S"
	rm -f "$T/fp.log"
	st=0
	GRAPHFS_FP_LOG=$T/fp.log GRAPHFS_FAILPOINTS="$p=exit@1" gctl merge "$S" dev -q >/dev/null 2>"$T/err" || st=$?
	fired "$p" "$T/fp.log" || { bad "$p: never reached"; continue; }
	[ "$st" = 86 ] || bad "$p: merge exited $st, not by the failpoint: $(cat "$T/err")"
	op=$(pending_ids "$S" | head -1)
	gctl recover "$S" -q >/dev/null 2>"$T/err" || bad "$p: recover failed: $(cat "$T/err")"
	gctl export "$S" >"$T/now"
	case $p in
	commit/after_confirm|commit/before_publish|commit/after_publish) want=new ;;
	*) want=old ;;
	esac
	cmp -s "$T/now" "$T/$want" && ok "$p: main shows the $want content" || bad "$p: main is neither the $want content: $(diff "$T/$want" "$T/now" | head -5)"
	gctl export "$S" --branch dev | cmp -s - "$T/dev" && ok "$p: dev untouched" || bad "$p: dev changed"
	clean "$S" && ok "$p: fsck clean, no sidecar" || bad "$p: not clean"
	if [ -n "$op" ]; then
		[ "$(audits "$S" "$op")" = 1 ] && ok "$p: one audit record" || bad "$p: $(audits "$S" "$op") audit records"
	fi
	if [ "$want" = new ]; then
		gctl log "$S" --json | tail -1 | python3 -c 'import json,sys; j=json.load(sys.stdin); sys.exit(not (j["op"] == "merge" and len(j["parents"]) == 2))' \
			&& ok "$p: the merge's gv has two parents" || bad "$p: last gv: $(gctl log "$S" --json | tail -1)"
	fi
	gctl merge "$S" dev -q 2>"$T/err" || bad "$p: merging again failed: $(cat "$T/err")"
	gctl export "$S" | cmp -s - "$T/new" && ok "$p: merging again gives the merged content" || bad "$p: after merging again: $(gctl export "$S" | diff "$T/new" - | head -5)"
	clean "$S" || bad "$p: not clean at the end"
done

# A fast-forward killed before its one publish transaction leaves main as
# it was; run again it fast-forwards (writing no table file).
FF=$T/ffbase; rm -rf "$FF"
new_store "$FF"
gctl branch create "$FF" ff -q >/dev/null
printf '{"type":"Person","data":{"slug":"zff","name":"ff"}}\n' | gctl load "$FF" --branch ff --data - -q
gctl export "$FF" >"$T/ffold"
for p in merge/after_plan merge/after_heal merge/after_locks; do
	S=$T/ffs; rm -rf "$S"; cp -a "$FF" "$S"
	st=0
	GRAPHFS_FAILPOINTS="$p=exit" gctl merge "$S" ff -q >/dev/null 2>&1 || st=$?
	[ "$st" = 86 ] || bad "ff $p: merge exited $st"
	gctl export "$S" | cmp -s - "$T/ffold" && clean "$S" \
		&& ok "ff $p: main as before, clean" || bad "ff $p: main changed or not clean"
	(cd "$S/tables" && find . -type f | sort) >"$T/ff.files"
	gctl merge "$S" ff -q && gctl export "$S" >"$T/ffexp" && grep -q '"zff"' "$T/ffexp" \
		&& ok "ff $p: run again, it fast-forwards" || bad "ff $p: rerun failed"
	(cd "$S/tables" && find . -type f | sort) | cmp -s - "$T/ff.files" \
		&& ok "ff $p: no table file written" || bad "ff $p: table files changed"
done

# A fast-forward heals first: a load on main killed after linking a table
# left a sidecar; the merge of a branch made before it resolves it (roll
# back) under its locks, finds main moved, and merges on the new head.
S=$T/ff; rm -rf "$S"
new_store "$S"
gctl branch create "$S" ff -q >/dev/null
printf '{"type":"Person","data":{"slug":"zff","name":"ff"}}\n' | gctl load "$S" --branch ff --data - -q
gen_people 20 v2 >"$T/v2.jsonl"
st=0
GRAPHFS_FAILPOINTS=commit/after_table=exit@1 gctl load "$S" --data "$T/v2.jsonl" -q 2>/dev/null || st=$?
[ "$st" = 86 ] || bad "ff: the load was not killed ($st)"
[ "$(pending "$S")" = 1 ] && ok "ff: a dead writer's sidecar on main" || bad "ff: no pending sidecar"
gctl merge "$S" ff -q 2>"$T/err" && ok "ff: the merge succeeds" || bad "ff: merge failed: $(cat "$T/err")"
clean "$S" && ok "ff: healed, fsck clean, no sidecar" || bad "ff: not clean"
gctl export "$S" >"$T/ffexp"
grep -q '"zff"' "$T/ffexp" && ! grep -q ' v2"' "$T/ffexp" \
	&& ok "ff: the branch's row, nothing of the dead load" || bad "ff: export: $(head -3 "$T/ffexp")"
finish
