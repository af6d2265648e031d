#!/bin/bash
# gc_branches.sh - retention with branches (issue 11 requirement 4, "per
# branch"; invariants 175-177): gc's window is per branch, it never removes
# a branch head or the merge base of two branches, a merge after a gc still
# merges three-way, a version gc removed cannot start a branch, a branch
# created at a version while gc is parked before its commit point makes
# that gc fail with nothing removed, a deleted branch's versions are in no
# window, and compact --branch publishes on that branch only.
. "$top_srcdir/tests/crash/crashlib.sh"

S=$T/s
# shellcheck disable=SC2046 # manifest_opt: words
gctl init "$S" --schema "$SCHEMA" $(manifest_opt) -q
person() { printf '{"type":"Person","data":{"slug":"%s","name":"%s"}}\n' "$1" "$2" >"$T/p.jsonl"; gctl load "$S" --data "$T/p.jsonl" -q "${@:3}"; }
gv_list() { python3 -c 'import json,sys; print(",".join(str(v) for v in json.load(open(sys.argv[1]))[sys.argv[2]]))' "$T/out" "$1"; }

# main: 2..6; dev from 4: 7, 8, 9; main again: 10
for i in 2 3 4 5 6; do person "m$i" "main $i"; done
gctl branch create "$S" dev --from 4 -q >/dev/null
for i in 7 8 9; do person "d$i" "dev $i" --branch dev; done
person m10 "main 10"
gctl export "$S" --branch dev >"$T/dev.before"
gctl export "$S" >"$T/main.before"

expect_status 0 "gc --keep-last 1 --dry-run" gctl gc "$S" --keep-last 1 --dry-run --json
[ "$(gv_list removed)" = "1,2,3,5,6,7,8" ] && ok "the plan keeps each branch's head (10, 9) and their merge base (4)" ||
	bad "planned: $(cat "$T/out")"
expect_status 0 "gc --keep-last 1" gctl gc "$S" --keep-last 1 --json
[ "$(gv_list removed)" = "1,2,3,5,6,7,8" ] && ok "removed 1,2,3,5,6,7,8" || bad "removed: $(cat "$T/out")"
gctl export "$S" --branch dev | cmp -s - "$T/dev.before" && ok "dev exports as before" || bad "dev changed"
gctl export "$S" | cmp -s - "$T/main.before" && ok "main exports as before" || bad "main changed"
gctl export "$S" --version 4 >/dev/null 2>&1 && ok "the merge base (4) still exports" || bad "version 4 is gone"
gctl fsck "$S" >"$T/fsck" 2>&1 && ok "fsck clean after gc" || bad "fsck: $(cat "$T/fsck")"

expect_status 1 "branch create --from a removed version" gctl branch create "$S" old --from 5
expect_err "5 was removed by gc" "the refusal says the version was removed"

# a merge after the gc walks through the tombstones to base 4
expect_status 0 "merge dev into main after gc" gctl merge "$S" dev --json
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["base"] == 4 and not r["fast_forward"] else 1)' "$T/out" &&
	ok "merged three-way against base 4" || bad "merge: $(cat "$T/out")"
n=$(gctl export "$S" --type Person | grep -c '"slug":"[dm]')
[ "$n" = 9 ] && ok "main has both sides' rows (m2-m6, m10, d7-d9)" || bad "main has $n rows"

# compact --branch: publishes on dev, main does not move
main_head=$(gctl snapshot "$S" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
expect_status 0 "compact --branch dev" gctl compact "$S" --branch dev --json
cv=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$T/out")
[ "$cv" -gt 0 ] && gctl log "$S" --branch dev --json | tail -1 | grep -q "\"version\":$cv,.*\"op\":\"compact\"" &&
	ok "the compaction is dev's head ($cv)" || bad "compact on dev: $(cat "$T/out"); $(gctl log "$S" --branch dev | tail -2)"
[ "$(gctl snapshot "$S" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')" = "$main_head" ] &&
	ok "main did not move" || bad "main moved"
gctl export "$S" --branch dev | cmp -s - "$T/dev.before" && ok "dev's rows unchanged by compact" || bad "dev's rows changed"
expect_status 1 "compact --branch nosuch" gctl compact "$S" --branch nosuch
expect_err "no branch 'nosuch'" "the refusal names the branch"

# a branch created at a version gc is about to remove: gc's commit fails,
# nothing is removed, the branch's head stays readable
person m20 "main 20"
person m21 "main 21"
victim=$(( $(gctl snapshot "$S" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])') - 1 ))
GRAPHFS_FAILPOINTS=gc/after_arm=park gctl gc "$S" --keep-last 1 >"$T/gc.out" 2>"$T/gc.err" &
gcpid=$!
BG_PIDS="$BG_PIDS $gcpid"
fp_wait_reached gc/after_arm >/dev/null || bad "gc did not park"
expect_status 0 "branch create at $victim while gc is parked" gctl branch create "$S" late --from "$victim"
fp_release gc/after_arm
st=0
wait "$gcpid" || st=$?
[ "$st" = 1 ] && grep -q "became the head of branch 'late'" "$T/gc.err" && ok "gc failed at its commit: $victim is late's head" ||
	bad "gc exit $st: $(cat "$T/gc.err")"
gctl export "$S" --branch late >/dev/null && ok "late's head exports" || bad "late's head is gone"
gctl log "$S" --json | grep -q '"removed":true.*' && [ "$(gctl log "$S" --json | grep -c '"removed":true')" = 7 ] &&
	ok "nothing more was removed (7 tombstones)" || bad "tombstones: $(gctl log "$S" --json | grep -c '"removed":true')"
gctl fsck "$S" >"$T/fsck" 2>&1 && ok "fsck clean after the refused gc" || bad "fsck: $(cat "$T/fsck")"
[ -z "$(gctl recover "$S" --json 2>/dev/null | grep -o '"resolved":[1-9]')" ] && ok "no sidecar left to recover" || bad "a sidecar was left"

# a deleted branch's versions are in no window
expect_status 0 "delete dev and late" gctl branch delete "$S" dev
gctl branch delete "$S" late >/dev/null
expect_status 0 "gc --keep-last 1 again" gctl gc "$S" --keep-last 1 --json
removed=$(gv_list removed)
case ",$removed," in
*",9,"*) ok "dev's old head (9) is removed once dev is deleted ($removed)" ;;
*) bad "dev's versions kept: $removed" ;;
esac
gctl fsck "$S" >"$T/fsck" 2>&1 && ok "fsck clean at the end" || bad "fsck: $(cat "$T/fsck")"
finish
