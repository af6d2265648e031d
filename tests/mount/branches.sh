#!/bin/bash
# branches.sh - branches/<name>/ in the mount (docs/mount.md, "Branches";
# docs/branches-design.md §1.2), with hour-long kernel timeouts so only the
# notifier can make a change visible:
#  1. branches/ lists every branch; branches/dev/ holds HEAD ->
#     ../../versions/N, schema.pg, manifest.json, nodes/, edges/ and no
#     versions/; cat and ls there show dev's head;
#  2. a load on dev (another process) shows up under branches/dev/ and
#     not at the root; versions/N serves it with branch and parents, and
#     log.jsonl's line N names the branch; a load on main shows at the
#     root and not under branches/dev/;
#  3. a write through branches/dev/nodes/ (create, sed -i, rm) lands on
#     dev, as graphctl sees it, and not on main;
#  4. a branch created or deleted while mounted appears and disappears,
#     also when created and deleted between two polls of the notifier;
#  5. a file open under branches/dev holds dev's head against gc (the
#     branch's head, not the root's nor the token of the branch view);
#  6. a merge keeps the target's edge names: main took b's pair x -> y
#     as two new edges (e3 first there, e7 first on b), so merging main
#     back into b, whose Knows is unchanged since the base, writes Knows
#     instead of adopting main's version, which would rename b's edges
#     (found by the model, seed 1202235).
. "$top_srcdir/tests/mount/lib_mount.sh"
S=$T/store M=$T/mnt
new_store "$S"
printf '%s\n' '{"type":"Person","data":{"slug":"ann","age":30}}' \
	'{"type":"Person","data":{"slug":"bob","age":40}}' \
	'{"edge":"Knows","from":"ann","to":"bob"}' | load "$S" merge     # gv 2
gc branch create "$S" dev -q
mount_gfs "$S" "$M" -o live_timeout=3600 || { bad mount; finish; exit; }
B=$M/branches/dev

# ---- 1. the layout ------------------------------------------------------
check "branches/ lists dev and main" out_is "dev main" bash -c "ls '$M/branches' | tr '\n' ' ' | sed 's/ \$//'"
check "branches/dev/ holds HEAD, edges, manifest.json, nodes, schema.pg" \
	out_is "HEAD edges manifest.json nodes schema.pg" bash -c "ls -A '$B' | tr '\n' ' ' | sed 's/ \$//'"
check "no versions/ of its own" test ! -e "$B/versions"
check "HEAD -> ../../versions/2" out_is ../../versions/2 readlink "$B/HEAD"
check "HEAD resolves to a directory" test -d "$B/HEAD/nodes"
check "schema.pg is the store's" cmp -s "$B/schema.pg" "$M/schema.pg"
check "manifest.json: gv 2" out_is 2 jq .version "$B/manifest.json"
check "ls nodes/Person" out_is "ann ann.json bob bob.json" bash -c "ls '$B/nodes/Person' | tr '\n' ' ' | sed 's/ \$//'"
check "cat a node file" grep -q '"age":30' "$B/nodes/Person/ann.json"
check "an edge link" test -L "$B/nodes/Person/ann/out/Knows/bob.json"
check "an unknown branch is absent" test ! -e "$M/branches/nosuch"
check "a bad name is absent" test ! -e "$M/branches/.x"
check "the root's listing has branches" bash -c "ls -A '$M' | grep -qx branches"
root_ino=$(stat -c %i "$M/nodes/Person/ann.json")
check "dev's file is another inode than the root's" test "$(stat -c %i "$B/nodes/Person/ann.json")" != "$root_ino"

# ---- 2. loads on dev and on main ------------------------------------------
ls "$B/nodes/Person" "$M/nodes/Person" >/dev/null  # listings cached
printf '%s\n' '{"type":"Person","data":{"slug":"cat","age":5}}' \
	'{"type":"Person","data":{"slug":"ann","age":31}}' | gc load "$S" --branch dev --data - -q   # gv 3
check "dev's new node shows under branches/dev" wait_until 5 test -e "$B/nodes/Person/cat.json"
check "dev's changed node" wait_until 5 grep -q '"age":31' "$B/nodes/Person/ann.json"
check "dev's HEAD follows" wait_until 5 out_is ../../versions/3 readlink "$B/HEAD"
check "the root has not moved: no cat" test ! -e "$M/nodes/Person/cat.json"
check "the root's ann unchanged" grep -q '"age":30' "$M/nodes/Person/ann.json"
check "the root's HEAD stays versions/2" out_is versions/2 readlink "$M/HEAD"
check "the root's listing unchanged" out_is "ann ann.json bob bob.json" bash -c "ls '$M/nodes/Person' | tr '\n' ' ' | sed 's/ \$//'"
check "versions/3 is dev's" out_is '"dev" [2]' bash -c "jq -r '.branch | tojson' '$M/versions/3/manifest.json' | tr '\n' ' '; jq -c .parents '$M/versions/3/manifest.json'"
check "versions/3 serves dev's rows" test -e "$M/versions/3/nodes/Person/cat.json"
check "versions/ lists dev's version 3 (above main's head)" out_is "1 2 3" bash -c "ls '$M/versions' | tr '\n' ' ' | sed 's/ \$//'"
check "log.jsonl line 3 names dev" out_is dev bash -c "sed -n 3p '$M/log.jsonl' | jq -r .branch"
printf '%s\n' '{"type":"Person","data":{"slug":"dan"}}' | gc load "$S" --data - -q   # gv 4, main
check "main's load shows at the root" wait_until 5 test -e "$M/nodes/Person/dan.json"
check "the root's HEAD -> versions/4" wait_until 5 out_is versions/4 readlink "$M/HEAD"
check "and not under branches/dev" test ! -e "$B/nodes/Person/dan.json"
check "dev's HEAD stays at 3" out_is ../../versions/3 readlink "$B/HEAD"

# ---- 3. writes through branches/dev ---------------------------------------
P=$B/nodes/Person
check "create a node file on dev" bash -c "echo '{\"age\":7}' > '$P/eve.json'"
check "sed -i a node file on dev" sed -i 's/"age":5/"age":6/' "$P/cat.json"
check "rm a node file on dev" rm "$P/bob.json"
gc export "$S" --branch dev --type Person > "$T/dev.jsonl"
gc export "$S" --type Person > "$T/main.jsonl"
check "eve is on dev" grep -q '"eve"' "$T/dev.jsonl"
check "cat changed on dev" grep -q '"age":6' "$T/dev.jsonl"
check "bob deleted on dev" bash -c "! grep -q '\"bob\"' '$T/dev.jsonl'"
check "main has none of it" bash -c "! grep -q '\"eve\"\\|\"cat\"' '$T/main.jsonl' && grep -q '\"bob\"' '$T/main.jsonl'"
check "dev's log: three writes" out_is "write write write" bash -c "gc() { timeout 60 '$GRAPHCTL' \"\$@\"; }; gc log '$S' --branch dev --json | tail -3 | jq -r .op | tr '\n' ' ' | sed 's/ \$//'"
check "the writes show under branches/dev" wait_until 5 bash -c "test -e '$P/eve.json' && test ! -e '$P/bob.json'"
check "and not at the root" bash -c "test ! -e '$M/nodes/Person/eve.json' && test -e '$M/nodes/Person/bob.json'"
check "ln -s an edge on dev" ln -s ../../../../Person/cat.json "$P/eve/out/Knows/cat.json"
check "mv (re-key) a node on dev" mv "$P/eve.json" "$P/eva.json"
check "dev: the edge follows the re-keyed node" bash -c "timeout 60 '$GRAPHCTL' export '$S' --branch dev --type Knows | grep -q '\"from\":\"eva\",\"to\":\"cat\"'"
check "main: no such edge" bash -c "! timeout 60 '$GRAPHCTL' export '$S' --type Knows | grep -q '\"eva\"'"
# vim's backup rename on dev: ann pending deletion there, not at the root
check "mv a dev node to a scratch name" mv "$P/ann.json" "$P/ann.json~"
check "dev's ann looks absent" test ! -e "$P/ann.json"
check "the root still lists its ann (a pending deletion is per branch)" bash -c "ls '$M/nodes/Person' | grep -qx ann.json"
check "writing dev's ann again makes it an update" bash -c "cp '$P/ann.json~' '$P/ann.json' && rm '$P/ann.json~'"
check "ann kept on dev" bash -c "gc() { timeout 60 '$GRAPHCTL' \"\$@\"; }; gc export '$S' --branch dev --type Person | grep -q '\"ann\"'"

# ---- 4. branch create and delete while mounted ----------------------------
ls "$M/branches" >/dev/null
gc branch create "$S" feat --from 2 -q
check "a new branch appears" wait_until 5 test -d "$M/branches/feat"
check "at its version" out_is ../../versions/2 readlink "$M/branches/feat/HEAD"
stat "$M/branches/feat/nodes" >/dev/null
gc branch delete "$S" feat -q
check "a deleted branch disappears" wait_until 5 test ! -e "$M/branches/feat"
check "and leaves the listing" wait_until 5 out_is "dev main" bash -c "ls '$M/branches' | tr '\n' ' ' | sed 's/ \$//'"
# created, looked up and deleted between two polls of the notifier (a
# second mount polls every 1.5 s): the branch list before and after is the
# same, only the counter (meta/branches_gen) tells the notifier that a name
# the kernel cached went away
M2=$T/mnt2
mount_gfs "$S" "$M2" -o live_timeout=3600,poll_ms=1500 || bad "second mount"
for i in 1 2; do
	gc branch create "$S" feat --from 2 -q
	check "create $i: seen at once (a lookup is not cached when it fails)" test -d "$M2/branches/feat/nodes"
	gc branch delete "$S" feat -q
	check "delete $i: the cached name goes" wait_until 6 test ! -e "$M2/branches/feat"
done
check "unmount the second mount" umount_gfs "$M2"
check "its versions stay" test -d "$M/versions/2"

# ---- 5. a file open under branches/dev holds dev's head ------------------
h=$(gc snapshot "$S" --branch dev --json | jq .version)
exec 7<"$B/nodes/Person/cat.json"
printf '%s\n' '{"type":"Person","data":{"slug":"zz","age":1}}' | gc load "$S" --branch dev --data - -q
held() { timeout 60 "$GRAPHCTL" gc "$S" --keep-last 1 --dry-run --json | jq -e --argjson h "$h" "$1" >/dev/null; }
check "an open file under branches/dev holds dev's old head ($h) against gc" held '.held | index($h) != null'
check "it reads dev's row" bash -c 'grep -q "\"slug\":\"cat\"" <&7'
exec 7<&-
check "closed: gc would remove it" wait_until 5 held '.removed | index($h) != null'

check "fsck clean" gc fsck "$S"
check "unmount" umount_gfs "$M"

# ---- 6. a merge keeps the target's edge names ----------------------------
S6=$T/s6 M6=$T/m6
new_store "$S6"
printf '%s\n' '{"type":"Person","data":{"slug":"x"}}' '{"type":"Person","data":{"slug":"y"}}' \
	'{"type":"Person","data":{"slug":"z"}}' | load "$S6" merge
gc branch create "$S6" b -q
printf '%s\n' '{"edge":"Knows","from":"x","to":"y","data":{"id":"e7"}}' | gc load "$S6" --branch b --data - -q
printf '%s\n' '{"edge":"Knows","from":"x","to":"y","data":{"id":"e3"}}' | gc load "$S6" --branch b --data - -q
# main's Knows changes first, so the merge writes it (not adopts b's):
# e7 and e3 are new there, and the first by id, e3, is y.json
printf '%s\n' '{"edge":"Knows","from":"x","to":"z","data":{"id":"e1"}}' | load "$S6" merge
gc merge "$S6" b -q
printf '%s\n' '{"type":"Person","data":{"slug":"w"}}' | gc load "$S6" --branch b --data - -q
gc merge "$S6" main --into b -q
mount_gfs "$S6" "$M6" || bad "mount the merge store"
check "merge into b: main's names are main's" out_is "y.json y~e7.json z.json" bash -c "ls '$M6/edges/Knows/x' | tr '\n' ' ' | sed 's/ \$//'"
check "merge into b: b's edges keep their names" out_is "y.json y~e3.json z.json" bash -c "ls '$M6/branches/b/edges/Knows/x' | tr '\n' ' ' | sed 's/ \$//'"
check "merge into b: y.json is still e7" out_is '{"id":"e7"}' cat "$M6/branches/b/edges/Knows/x/y.json"
check "fsck clean after the merges" gc fsck "$S6"
check "unmount the merge store" umount_gfs "$M6"
finish
