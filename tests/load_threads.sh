#!/bin/bash
# load_threads.sh - the parallel parse (issue 9): a load on N threads gives
# the store a one-thread load gives, byte for byte, and reports the same
# error: the first bad line by line number, whichever chunk a worker
# finished first.  Small chunks (GRAPHFS_LOAD_CHUNK) put many chunk
# boundaries, long lines across them, blank and CRLF lines, a last line
# without '\n'; GRAPHFS_TEST_ID_SEED makes generated ids a function of the
# line, so exports compare.
set -euo pipefail
: "${GRAPHCTL:?}" "${top_srcdir:?}"
. "$top_srcdir/tests/lib.sh"
T=$(mktemp -d /tmp/gfs-threads.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok()   { echo "ok - $*"; }
bad()  { echo "FAIL - $*"; fails=$((fails + 1)); }
export GRAPHFS_TEST_ID_SEED=4242

# The demo schema has every kind of row: keyed, composite-keyed, unkeyed
# (generated ids) nodes, edges with and without ids, @unique, @card.
python3 - "$T/in.jsonl" <<'EOF'
import json, random, sys
r = random.Random(9)
out = []
n = 3000
for i in range(n):
    d = {"slug": "p%05d" % i, "name": "P %d %s" % (i, "x" * r.randrange(0, 300)),
         "created": "2026-01-%02dT10:00:00+01:00" % (1 + i % 28)}
    if i % 3 == 0:
        d["age"] = i % 150
    if i % 7 == 0:
        d["email"] = "p%d@example.org" % i
    if i % 11 == 0:
        d["tags"] = ["a", "b%d" % i]
    out.append(json.dumps({"type": "Person", "data": d}))
    if i % 50 == 0:
        out.append("")           # blank lines count as lines
    if i % 97 == 0:              # a later line of the same id wins (merge)
        d = dict(d, name="again %d" % i)
        out.append(json.dumps({"type": "Person", "data": d}))
for i in range(200):
    out.append(json.dumps({"type": "Company", "data": {"domain": "c%d.example" % i, "name": "C%d" % i}}))
    out.append(json.dumps({"type": "Project", "data": {"org": "c%d" % i, "code": "k%d" % i, "title": "T", "status": "active"}}))
for i in range(1500):            # no data.id: generated, one per line
    out.append(json.dumps({"type": "Chunk", "data": {"text": "t%d " % i + "y" * r.randrange(0, 2000), "embedding": [0.5, i, -1.25]}}))
for i in range(n):
    out.append(json.dumps({"edge": "WorksAt", "from": "p%05d" % i, "to": "c%d.example" % (i % 200), "data": {"role": "r"}}))
    if i % 2:
        out.append(json.dumps({"edge": "Knows", "from": "p%05d" % i, "to": "p%05d" % ((i * 7) % n), "data": {}}))
text = "\n".join(out)
text = text.replace("\n", "\r\n", 40)  # some CRLF lines
open(sys.argv[1], "w").write(text)   # no '\n' after the last line
EOF

"$GRAPHCTL" init "$T/ref" --schema "$top_srcdir/examples/people.pg" -q
expect_status 0 "one-thread load, one big chunk" "$GRAPHCTL" load "$T/ref" --data "$T/in.jsonl" --threads 1 --json
ref_lines=$(jq -r .lines "$T/out")
"$GRAPHCTL" export "$T/ref" >"$T/ref.export"
[ "$ref_lines" = "$(wc -l <"$T/in.jsonl" | awk '{ print $1 + 1 }')" ] &&
	ok "lines counted: $ref_lines" || bad "lines $ref_lines"

i=0
for chunk in 1 61 997 65536; do
	for threads in 1 2 3 8; do
		i=$((i + 1))
		"$GRAPHCTL" init "$T/s$i" --schema "$top_srcdir/examples/people.pg" -q
		if ! GRAPHFS_LOAD_CHUNK=$chunk "$GRAPHCTL" load "$T/s$i" --data "$T/in.jsonl" --threads $threads --json >"$T/out" 2>"$T/err"; then
			bad "load chunk=$chunk threads=$threads failed: $(cat "$T/err")"
			continue
		fi
		"$GRAPHCTL" export "$T/s$i" >"$T/s.export"
		if cmp -s "$T/ref.export" "$T/s.export" && [ "$(jq -r .lines "$T/out")" = "$ref_lines" ]; then
			ok "chunk=$chunk threads=$threads: same export, same line count"
		else
			bad "chunk=$chunk threads=$threads: the export differs from the one-thread load"
		fi
		rm -rf "$T/s$i"
	done
done

# Errors: bad lines at 1234 (invalid JSON) and later ones of other kinds;
# every thread count and chunk size must name line 1234 with the message
# of a one-thread load.
python3 - "$T/in.jsonl" "$T/bad.jsonl" <<'EOF'
import sys
lines = open(sys.argv[1]).read().split("\n")
lines[1233] = '{"type":"Person","data":{"slug":"zz",'
lines[2000] = '{"type":"Nobody","data":{}}'
lines[-5] = '{"edge":"Knows","from":"p00001","to":"nobody","data":{}}'
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
EOF
"$GRAPHCTL" init "$T/e" --schema "$top_srcdir/examples/people.pg" -q
before=$(mdb_dump -a -n "$T/e/manifest/data.mdb" 2>/dev/null | md5sum || true)
expect_status 1 "bad line, one thread" "$GRAPHCTL" load "$T/e" --data "$T/bad.jsonl" --threads 1
cp "$T/err" "$T/err.ref"
grep -q "^graphctl load: line 1234: invalid JSON" "$T/err.ref" && ok "one thread names line 1234" ||
	bad "one-thread error: $(cat "$T/err.ref")"
for round in 1 2 3; do
	for chunk in 1 200 4096 1048576; do
		for threads in 2 4; do
			if GRAPHFS_LOAD_CHUNK=$chunk "$GRAPHCTL" load "$T/e" --data "$T/bad.jsonl" --threads $threads >"$T/out" 2>"$T/err"; then
				bad "chunk=$chunk threads=$threads: a bad file loaded"
			elif ! cmp -s "$T/err" "$T/err.ref"; then
				bad "chunk=$chunk threads=$threads round $round: $(cat "$T/err")"
			fi
		done
	done
done
ok "36 bad-file loads on 2 and 4 threads (chunks of 1 B to 1 MiB) said what one thread says"
after=$(mdb_dump -a -n "$T/e/manifest/data.mdb" 2>/dev/null | md5sum || true)
[ "$before" = "$after" ] && ok "the refused loads left the manifest as it was" || bad "manifest changed"

# Only the last line is bad, and it has no newline: still found.
{ head -n 100 "$T/in.jsonl"; printf '{"type":"Person"'; } >"$T/tail.jsonl"
expect_status 1 "bad last line without newline" env GRAPHFS_LOAD_CHUNK=300 "$GRAPHCTL" load "$T/e" --data "$T/tail.jsonl" --threads 2
expect_err "^graphctl load: line 101: invalid JSON" "the unterminated last line is line 101"

# A line over the 32 MiB limit, after good lines and before a bad one:
# the long line is the error, named by its number, in bounded memory.
python3 - "$T/long.jsonl" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(5):
        f.write('{"type":"Company","data":{"domain":"l%d","name":"L"}}\n' % i)
    f.write('{"type":"Company","data":{"domain":"big","name":"' + "x" * (33 << 20) + '"}}\n')
    f.write('not json\n')
EOF
for threads in 1 2; do
	expect_status 1 "a 33 MiB line, $threads threads" "$GRAPHCTL" load "$T/e" --data "$T/long.jsonl" --threads $threads
	expect_err "^graphctl load: line 6: longer than the limit of 32 MiB per line" "the long line is line 6 ($threads threads)"
done
# The same line as the last one, without a newline (the reader's own check).
head -c $((34 << 20)) "$T/long.jsonl" >"$T/long2.jsonl"
expect_status 1 "an unterminated 33 MiB line" "$GRAPHCTL" load "$T/e" --data "$T/long2.jsonl" --threads 2
expect_err "^graphctl load: line 6: longer than the limit" "the unterminated long line is line 6"

# A read error names the input.
expect_status 1 "reading a directory" "$GRAPHCTL" load "$T/e" --data "$T" --threads 2
expect_err "reading $T: Is a directory" "the read error names the input"

# --threads is checked.
expect_status 2 "--threads 0" "$GRAPHCTL" load "$T/e" --data "$T/in.jsonl" --threads 0
expect_status 2 "--threads x" "$GRAPHCTL" load "$T/e" --data "$T/in.jsonl" --threads x

echo "# $fails failures"
[ "$fails" = 0 ]
