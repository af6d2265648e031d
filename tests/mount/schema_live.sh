#!/bin/bash
# schema_live.sh - a mount running across a `graphctl schema apply`: the
# live view shows the new schema, the new types' directories (listed and
# looked up, through hour-long kernel caching: the notifier invalidates),
# rows rewritten by --default with new inodes while untouched rows keep
# their inodes and mtimes; versions/N keep their old schema; a file opened
# before keeps its bytes; a write through the mount into a new type works.
# Invariant 174 (docs/invariants.md).
. "$top_srcdir/tests/mount/lib_mount.sh"
S=$T/store M=$T/mnt
new_store "$S"
printf '%s\n' '{"type":"Person","data":{"slug":"alice","age":30}}' \
	'{"type":"Person","data":{"slug":"bob"}}' \
	'{"edge":"Knows","from":"alice","to":"bob"}' | load "$S" merge
mount_gfs "$S" "$M" -o live_timeout=3600 || { bad mount; finish; exit; }
P=$M/nodes/Person
ino() { stat -c %i "$1"; }
a_ino=$(ino "$P/alice.json") b_ino=$(ino "$P/bob.json") a_mtime=$(stat -c %Y "$P/alice.json")
dir_ino=$(ino "$P") b_dino=$(ino "$P/bob")
ls "$M/nodes" "$M/edges" >/dev/null        # listings cached in the kernel
check "Project absent before" test ! -e "$M/nodes/Project"
exec 7< "$M/schema.pg"                     # held open across the apply
cp "$SCHEMA" "$T/old.pg"

NEW=$T/new.pg
sed 's/age: I32? }/age: I32?  level: I32 }/' "$SCHEMA" >"$NEW"
printf 'node Project { code: String @key  title: String? }\nedge WorksOn: Person -> Project\n' >>"$NEW"
check "the new schema differs" bash -c "! cmp -s '$NEW' '$SCHEMA'"
check "schema apply with a new required property filled" gc schema apply "$S" "$NEW" --default Person.level=1 --default Person.age=5 -q

check "HEAD follows" wait_until 5 out_is versions/3 readlink "$M/HEAD"
check "schema.pg is the new schema" wait_until 5 cmp -s "$M/schema.pg" "$NEW"
check "nodes/Project appears" wait_until 5 test -d "$M/nodes/Project"
check "and is listed in nodes/" wait_until 5 grep -qx Project <(ls "$M/nodes")
check "nodes/Project.jsonl is empty" test ! -s "$M/nodes/Project.jsonl"
check "edges/WorksOn appears" wait_until 5 test -d "$M/edges/WorksOn"
check "and is listed in edges/" wait_until 5 grep -qx WorksOn <(ls "$M/edges")
check "manifest.json names the new schema" wait_until 5 out_is "$(gc log "$S" --json | tail -1 | jq -r .schema)" jq -r .schema_id "$M/manifest.json"
check "versions/2/schema.pg is the old schema" cmp -s "$M/versions/2/schema.pg" "$T/old.pg"
check "versions/3/schema.pg is the new schema" cmp -s "$M/versions/3/schema.pg" "$NEW"
check "versions/2 has no Project" test ! -e "$M/versions/2/nodes/Project"
check "versions/2/nodes/Person/alice.json has no level" bash -c "! grep -q level '$M/versions/2/nodes/Person/alice.json'"
check "the schema.pg opened before keeps its bytes" cmp -s - "$T/old.pg" <&7
exec 7<&-
check "rewritten rows show the defaults" wait_until 5 grep -q '"age":5,"level":1' "$P/bob.json"
check "alice got level, kept age" grep -q '"age":30,"level":1' "$P/alice.json"
check "a rewritten row gets a new inode" test "$(ino "$P/bob.json")" != "$b_ino"
check "the type directory keeps its inode" test "$(ino "$P")" = "$dir_ino"
check "alice's bytes changed too: new inode" test "$(ino "$P/alice.json")" != "$a_ino"
# the row keeps its serial: its node directory's inode comes from it
check "a rewritten row keeps its serial (node directory inode)" test "$(ino "$P/bob")" = "$b_dino"
t3=$(gc log "$S" --json | sed -n 3p | jq -r .time | python3 -c 'import sys,datetime; t=sys.stdin.read().strip(); print(int(datetime.datetime.fromisoformat(t[:19]).replace(tzinfo=datetime.timezone.utc).timestamp()))')
check "a rewritten row's mtime is the apply's commit time" test "$(stat -c %Y "$P/alice.json")" = "$t3"
check "which is not the load's" test "$a_mtime" -le "$t3"

# A second apply that changes no row's bytes (a new optional property):
# every row keeps its inode and mtime.
a_ino=$(ino "$P/alice.json") a_mtime=$(stat -c %Y "$P/alice.json")
sed 's/title: String? }/title: String?  note: String? }/' "$NEW" >"$T/new2.pg"
check "a second apply" gc schema apply "$S" "$T/new2.pg" -q
check "HEAD follows again" wait_until 5 out_is versions/4 readlink "$M/HEAD"
check "unchanged row keeps its inode" test "$(ino "$P/alice.json")" = "$a_ino"
check "and its mtime" test "$(stat -c %Y "$P/alice.json")" = "$a_mtime"

# Writes through the mount use the new schema.
check "write a node of the new type through the mount" bash -c "echo '{\"title\":\"T\"}' > '$M/nodes/Project/x1.json'"
check "it is in the store" bash -c "gc() { timeout 60 '$GRAPHCTL' \"\$@\"; }; gc export '$S' --type Project | grep -q '\"code\":\"x1\"'"
check "umount" umount_gfs "$M"
check "fsck clean" gc fsck "$S"
finish
