#!/bin/sh
# make_format2_store.sh OLD_GRAPHCTL OUT.tar.gz - builds the format-2
# fixture of tests/upgrade/upgrade3.sh with a graphctl of store format 2
# (the one at commit 34e2b42, configured --enable-failpoints), and records
# the export of every graph version next to it.
#
#   git worktree add --detach /tmp/gfs-f2 34e2b42
#   (cd /tmp/gfs-f2 && autoreconf -fi && mkdir b && cd b &&
#    ../configure --enable-failpoints && make graphctl)
#   tests/data/make_format2_store.sh /tmp/gfs-f2/b/graphctl \
#       tests/data/format2-store.tar.gz
#
# The store has: init; a merge load; an append; a load killed after its
# table commit (commit/after_table=exit) then rolled back by 'graphctl
# recover' (version p retired, its compensation published); a load after
# that; and a load killed after arming (commit/after_sidecar=exit) whose
# sidecar is left pending (its post reserved, nothing linked), so the
# upgrade must carry a sidecar too.
set -eu
old=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
ex=$here/../../examples
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
s=$w/fixture/store
mkdir -p "$w/fixture/exports"

"$old" init "$s" --schema "$ex/people.pg" >/dev/null
"$old" load "$s" --data "$ex/people.jsonl" --quiet
cat >"$w/append.jsonl" <<'J'
{"type":"Person","data":{"slug":"erin","name":"Erin Ng","created":"2026-04-01T09:00:00Z","age":29,"email":"erin@example.org"}}
{"edge":"Knows","from":"erin","to":"alice","data":{"since":"2025-12-24"}}
J
"$old" load "$s" --data "$w/append.jsonl" --mode append --quiet
cat >"$w/crash.jsonl" <<'J'
{"type":"Person","data":{"slug":"frank","name":"Frank","created":"2026-05-05T05:05:05Z"}}
J
GRAPHFS_FAILPOINTS=commit/after_table=exit "$old" load "$s" \
	--data "$w/crash.jsonl" --quiet 2>/dev/null && exit 1
"$old" recover "$s" --quiet
cat >"$w/merge2.jsonl" <<'J'
{"type":"Person","data":{"slug":"bob","name":"Bob Stone","created":"2026-01-03T08:00:00Z","age":42,"kind":"staff","email":"bob@example.org"}}
J
"$old" load "$s" --data "$w/merge2.jsonl" --quiet
GRAPHFS_FAILPOINTS=commit/after_sidecar=exit "$old" load "$s" \
	--data "$w/crash.jsonl" --quiet 2>/dev/null && exit 1

head=$("$old" log "$s" | wc -l)
v=1
while [ "$v" -le "$head" ]; do
	"$old" export "$s" --version "$v" >"$w/fixture/exports/$v.jsonl"
	v=$((v + 1))
done
"$old" recover "$s" --list --json >"$w/fixture/pending.json"
rm -f "$s/manifest/lock.mdb"
tar -C "$w" -czf "$out" fixture
echo "$out: $head graph versions, one pending sidecar"
