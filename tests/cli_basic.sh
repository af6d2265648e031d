#!/bin/bash
# cli_basic.sh - graphctl as a user meets it: help, usage errors, a load,
# export, snapshot/log JSON, and bad input that must leave the store exactly
# as it was (same LMDB contents by mdb_dump, same table files).
set -euo pipefail
: "${GRAPHCTL:?}" "${top_srcdir:?}"
. "$top_srcdir/tests/lib.sh"
T=$(mktemp -d /tmp/gfs-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
S=$T/store
fails=0
ok()   { echo "ok - $*"; }
bad()  { echo "FAIL - $*"; fails=$((fails + 1)); }

expect_status 0 "graphctl --help" "$GRAPHCTL" --help
for c in init load export snapshot log schema fsck recover upgrade; do
	expect_status 0 "graphctl $c --help" "$GRAPHCTL" "$c" --help
	grep -q "usage: graphctl $c" "$T/out" || bad "$c --help has no usage line"
done
expect_status 2 "no command" "$GRAPHCTL"
expect_status 2 "unknown command" "$GRAPHCTL" frobnicate "$S"
expect_status 2 "load without --data" "$GRAPHCTL" load "$S"
expect_status 2 "bad --mode" "$GRAPHCTL" load "$S" --data x --mode sideways
expect_status 1 "missing store" "$GRAPHCTL" snapshot "$T/nope"
expect_err "does not exist" "missing store says so"

# a schema with a syntax error names file:line:col and creates nothing
printf 'node Person {\n  slug String @key\n}\n' >"$T/bad.pg"
expect_status 1 "init with a broken schema" "$GRAPHCTL" init "$S" --schema "$T/bad.pg"
expect_err "bad.pg:2:[0-9]+" "schema error names file:line:col"
[ ! -e "$S/FORMAT" ] && ok "broken schema created no store" || bad "store created"

expect_status 0 "init" "$GRAPHCTL" init "$S" --schema "$top_srcdir/examples/people.pg"
expect_status 1 "init twice" "$GRAPHCTL" init "$S" --schema "$top_srcdir/examples/people.pg"
expect_status 0 "load demo data" "$GRAPHCTL" load "$S" --data "$top_srcdir/examples/people.jsonl"
grep -q "graph version 2" "$T/out" && ok "load prints the version" || bad "load output: $(cat "$T/out")"

# progress: shown on a terminal (script(1) gives the load a pty), quiet otherwise
printf '{"type":"Person","data":{"slug":"p%d","name":"P","created":"2026-01-01T00:00:00Z"}}\n' $(seq 1 2000) >"$T/many.jsonl"
script -qec "$GRAPHCTL load $S --data $T/many.jsonl" "$T/tty" >/dev/null 2>&1 || true
grep -qaE "(parse|sort|write) .* rows/s" "$T/tty" && ok "progress shown on a terminal" || bad "no progress on a terminal: $(head -c 300 "$T/tty")"
grep -qaE "rows/s +[0-9.]+ MB/s" "$T/tty" && ok "progress shows rows/s and MB/s" || bad "no MB/s in the progress: $(head -c 300 "$T/tty")"
expect_status 0 "load redirected" "$GRAPHCTL" load "$S" --data "$T/many.jsonl"
[ ! -s "$T/err" ] && ok "no progress when redirected" || bad "stderr not quiet: $(head -c 200 "$T/err")"

# a reader whose pipe closes early (export | head) ends as any Unix filter
# does: killed by SIGPIPE, quietly (read commands run in a guarded child,
# which once reported that as a damaged manifest)
{ st=0; "$GRAPHCTL" export "$S" 2>"$T/err" || st=$?; echo "$st" >"$T/st"; } | head -c 1 >/dev/null
st=$(cat "$T/st")
[ "$st" = 141 ] && [ ! -s "$T/err" ] && ok "export | head: SIGPIPE, nothing on stderr" ||
	bad "export | head: exit $st: $(head -c 300 "$T/err")"

printf '{"type":"Person","data":{"slug":"q%d","name":"Q","created":"2026-01-01T00:00:00Z"}}\n' $(seq 1 500) >"$T/q.jsonl"
"$GRAPHCTL" init "$T/js" --schema "$top_srcdir/examples/people.pg" -q
expect_status 0 "load --json" "$GRAPHCTL" load "$T/js" --data "$T/q.jsonl" --json
python3 - "$T/out" "$(stat -c %s "$T/q.jsonl")" <<'PY' && ok "load --json: bytes and the time of each phase" || bad "load --json: $(cat "$T/out")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["rows"] == 500 and j["lines"] == 500 and j["bytes"] == int(sys.argv[2]), j
p = j["phases_ms"]
assert list(p) == ["parse", "sort", "lock", "validate", "write", "publish"], p
assert all(isinstance(v, (int, float)) and v >= 0 for v in p.values()), p
assert p["parse"] > 0 and p["write"] > 0, p
assert j["sort_runs"] == 0 and j["sort_bytes"] == 0, j   # fits the budget
PY
# A budget the rows cannot fit: the sort spills runs, and --json says so.
"$GRAPHCTL" init "$T/js2" --schema "$top_srcdir/examples/people.pg" -q
expect_status 0 "load --json, spilling" env GRAPHFS_LOAD_MEM_BYTES=4096 "$GRAPHCTL" load "$T/js2" --data "$T/q.jsonl" --json
python3 - "$T/out" <<'PY' && ok "load --json: sort_runs and sort_bytes of a spilling sort" || bad "load --json, spilling: $(cat "$T/out")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["sort_runs"] > 1 and j["sort_bytes"] > 500 * 60, j
PY

expect_status 0 "snapshot --json" "$GRAPHCTL" snapshot "$S" --json
python3 - "$T/out" <<'PY' && ok "snapshot --json shape" || bad "snapshot --json shape"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["version"] == 4, j
assert j["tables"]["node:Person"]["rows"] == 2004, j
assert j["tables"]["edge:Knows"]["version"] == 2, j
PY
expect_status 0 "log --json" "$GRAPHCTL" log "$S" --json
python3 - "$T/out" <<'PY' && ok "log --json lines" || bad "log --json lines"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert [l["version"] for l in lines] == [1, 2, 3, 4], lines
assert lines[1]["op"] == "load" and lines[1]["time"].endswith("Z"), lines
PY
expect_status 0 "export" "$GRAPHCTL" export "$S"
cp "$T/out" "$T/export2"
[ "$(wc -l <"$T/export2")" = 2021 ] && ok "export has every row" || bad "export rows: $(wc -l <"$T/export2")"
expect_status 0 "schema" "$GRAPHCTL" schema "$S"
cmp -s "$T/out" "$top_srcdir/examples/people.pg" && ok "schema text verbatim" || bad "schema differs"
expect_status 1 "export of a missing version" "$GRAPHCTL" export "$S" --version 99
expect_err "does not exist" "missing version named"

# ---- bad input leaves the store unchanged --------------------------------
state() {
	mdb_dump -a -n "$S/manifest/data.mdb" 2>/dev/null || mdb_dump -a "$S/manifest"
	(cd "$S/tables" && find . -type f ! -name '.tmp-*' -printf '%p %s\n' | sort && find . -type f -exec md5sum {} + | sort)
}
state >"$T/before"
check_unchanged() {
	state >"$T/after"
	cmp -s "$T/before" "$T/after" && ok "$1 leaves the store unchanged" || bad "$1 changed the store"
}
try_bad() { # try_bad DESC PATTERN MODE  (data on stdin)
	cat >"$T/in.jsonl"
	expect_status 1 "$1" "$GRAPHCTL" load "$S" --data "$T/in.jsonl" --mode "$3"
	expect_err "$2" "$1: message"
	check_unchanged "$1"
}
echo '{"type":"Person","data":{"slug":"x"' | try_bad "malformed JSON" "line 1" merge
echo '{"type":"Person","data":{"slug":"x","name":"X","created":"2026-01-01T00:00:00Z","age":"old"}}' | try_bad "wrong type" "line 1.*age" merge
echo '{"type":"Persn","data":{}}' | try_bad "unknown type" "Persn" merge
echo '{"type":"Person","data":{"slug":"x","name":"X","created":"2026-01-01T00:00:00Z","agee":1}}' | try_bad "unknown field" "agee" merge
echo '{"type":"Person","data":{"name":"X","created":"2026-01-01T00:00:00Z"}}' | try_bad "missing key" "slug" merge
echo '{"type":"Person","data":{"slug":"alice","name":"X","created":"2026-01-01T00:00:00Z"}}' | try_bad "duplicate key in append" "alice" append
echo '{"edge":"Knows","from":"alice","to":"ghost"}' | try_bad "dangling endpoint" "ghost" merge
echo '{"edge":"Owns","from":"acme.example","to":["acme","zephyr"]}' | try_bad "@card violation" "@card" merge
printf '{"type":"Person","data":{"slug":"\xff\xfe","name":"X","created":"2026-01-01T00:00:00Z"}}\n' | try_bad "invalid UTF-8" "line 1" merge
: | try_bad "empty file" "empty" merge
python3 -c 'import sys; sys.stdout.write("{\"type\":\"Chunk\",\"data\":{\"text\":\"" + "x"*(100<<20) + "\"}}\n")' | try_bad "100 MB line" "32 MiB" merge
echo '{"type":"Person","data":{"slug":"ok1","name":"fine","created":"2026-01-01T00:00:00Z"}}
{"type":"Person","data":{"slug":"ok2","name":"bad","created":"yesterday"}}' | try_bad "error on line 2 of 2" "line 2" merge

expect_status 0 "fsck clean" "$GRAPHCTL" fsck "$S"
echo
[ "$fails" = 0 ] && echo "cli_basic: all passed" || echo "cli_basic: $fails failed"
exit $((fails > 0))
