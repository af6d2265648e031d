#!/bin/bash
# live.sh - the live view follows the head: another process's load becomes
# visible within bounded time even with hour-long kernel timeouts (the
# notifier invalidates), a file opened before keeps its bytes, inode rules,
# and find/du over 20k nodes.
. "$top_srcdir/tests/mount/lib_mount.sh"
S=$T/store M=$T/mnt
new_store "$S"
awk 'BEGIN {
	for (i = 0; i < 20000; i++)
		printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%05d\",\"age\":%d}}\n", i, i % 90
	for (i = 0; i < 2000; i++)
		printf "{\"edge\":\"Knows\",\"from\":\"p%05d\",\"to\":\"p%05d\"}\n", i, (i * 7 + 1) % 20000
}' | load "$S" merge
# An hour of kernel caching: only the notifier can make changes visible.
mount_gfs "$S" "$M" -o live_timeout=3600 || { bad mount; finish; exit; }
P=$M/nodes/Person

ino() { stat -c %i "$1"; }
dir_ino=$(ino "$P") a_ino=$(ino "$P/p00001.json") b_ino=$(ino "$P/p00002.json")
a_dino=$(ino "$P/p00001")
old=$(cat "$P/p00001.json")
exec 7< "$P/p00001.json"           # held open across the change
ls "$P" > /dev/null                 # listing cached in the kernel
check "p00099 absent before" test ! -e "$P/p99999.json"

# Another process publishes; the mount must follow, bounded, by polling.
printf '%s\n' '{"type":"Person","data":{"slug":"p00001","age":77}}' \
	'{"type":"Person","data":{"slug":"p99999"}}' | load "$S" merge
check "new head visible" wait_until 5 out_is 3 cat "$M/.graphfs/head"
check ".graphfs/seen reaches it once the notifier handled it" wait_until 5 out_is 3 cat "$M/.graphfs/seen"
check "and equals notifier.head_seen" test "$(cat "$M/.graphfs/seen")" = "$(jq .notifier.head_seen "$M/.graphfs/stats")"
check "changed node visible" wait_until 5 grep -q '"age":77' "$P/p00001.json"
check "new node visible" wait_until 5 test -e "$P/p99999.json"
check "new node listed" wait_until 5 grep -qx p99999.json <(ls "$P")
check "HEAD follows" wait_until 5 out_is versions/3 readlink "$M/HEAD"
check "manifest.json follows" wait_until 5 out_is 3 jq .version "$M/manifest.json"
check "versions/3 appears" test -d "$M/versions/3"
check "log.jsonl grows" test "$(wc -l < "$M/log.jsonl")" = 3
check "open file keeps its bytes" test "$(cat <&7)" = "$old"
exec 7<&-
check "changed file: new inode" test "$(ino "$P/p00001.json")" != "$a_ino"
check "unchanged file: same inode" test "$(ino "$P/p00002.json")" = "$b_ino"
check "directory keeps its inode" test "$(ino "$P")" = "$dir_ino"
check "node directory keeps its inode" test "$(ino "$P/p00001")" = "$a_dino"
check "table file is the new export" cmp -s "$M/nodes/Person.jsonl" <(gc export "$S" --type Person)

# Deletion through overwrite: a name goes away.
gc export "$S" --type Person | grep -v '"p19995"' | load "$S" overwrite
check "overwritten-away node disappears" wait_until 5 test ! -e "$P/p19995.json"
check "and leaves the listing" wait_until 5 bash -c "! ls '$P' | grep -qx p19995.json"

# Lag: 1000 changed rows, visible through a cached name.
for r in 1 2 3; do
	cat "$P/p00010.json" > /dev/null
	awk -v r="$r" 'BEGIN { for (i = 10; i < 1010; i++)
		printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%05d\",\"age\":%d}}\n", i, r }' > "$T/chg"
	load "$S" merge < "$T/chg"
	check "1000-row change $r visible" wait_until 5 grep -q "\"age\":$r}" "$P/p00010.json"
done
lag=$(jq .notifier.lag_ms_max "$M/.graphfs/stats")
echo "# notifier lag max ${lag} ms (commit to invalidation done)"
check "notifier lag under 1 s" test "$lag" -lt 1000

# find and du over 20k nodes.
check "find over 20k nodes" test "$(timeout 300 find "$P" -maxdepth 1 -name '*.json' | wc -l)" = 20000
check "du over versions/2/nodes/Person" test "$(timeout 300 du -s --apparent-size -B1 "$M/versions/2/nodes/Person" | cut -f1)" -gt 400000
check "find -type f under versions/2/nodes" test "$(timeout 300 find "$M/versions/2/nodes" -maxdepth 2 -type f | wc -l)" = 20002
finish
