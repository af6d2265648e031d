#!/bin/bash
# format_reader.sh - docs/format.md is precise enough to write a second
# reader: tests/format_reader.py (written from the document, not from src/)
# must print byte for byte what `graphctl export` prints, for every graph
# version and type of a store with multi-level trees, pages shared between
# versions, deletes (overwrite), ids holding NUL bytes (SRC/DST escaping),
# unique and composite keys, and - in a --enable-failpoints build - a
# compensation file written by `graphctl recover`.
set -euo pipefail
: "${GRAPHCTL:?}" "${top_srcdir:?}"
command -v python3 >/dev/null && command -v mdb_dump >/dev/null || {
	echo "SKIP: needs python3 and mdb_dump (lmdb-utils)"; exit 77; }
READER="python3 $top_srcdir/tests/format_reader.py"
T=$(mktemp -d /tmp/gfs-fmt.XXXXXX)
trap 'rm -rf "$T"' EXIT
S=$T/store
fails=0 checks=0
ok()  { echo "ok - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }

"$GRAPHCTL" init "$S" --schema "$top_srcdir/examples/people.pg" >/dev/null

# v2: 3000 people (some ids with NUL and non-ASCII bytes), 4 companies,
# projects with a composite key, 6000 Knows edges, WorksAt for everyone.
python3 - "$T" <<'EOF'
import json, sys
d = sys.argv[1]
def person(i, age=30):
    slug = "p%04d" % i if i % 97 else "p\u0000%04d\u00e9" % i
    return {"type": "Person", "data": {"slug": slug, "name": "Person %d" % i,
            "created": "2026-01-01T00:00:00Z", "age": age % 150,
            "email": "p%d@example.org" % i if i % 5 else None}}
def slug(i):
    return "p%04d" % i if i % 97 else "p\u0000%04d\u00e9" % i
with open(d + "/v2.jsonl", "w") as f:
    for i in range(3000):
        print(json.dumps(person(i, i)), file=f)
    for c in range(4):
        print(json.dumps({"type": "Company", "data": {"domain": "c%d.example" % c,
              "name": "C%d" % c}}), file=f)
    for p in range(20):
        print(json.dumps({"type": "Project", "data": {"org": "o%d" % (p % 3),
              "code": "k%d" % p, "title": "T", "status": "active"}}), file=f)
    for i in range(3000):
        for k in (1, 2):
            print(json.dumps({"edge": "Knows", "from": slug(i),
                  "to": slug((i * 7 + k) % 3000),
                  "data": {"id": "e%05d-%d" % (i, k)}}), file=f)
        print(json.dumps({"edge": "WorksAt", "from": slug(i),
              "to": "c%d.example" % (i % 4), "data": {"role": "r"}}), file=f)
    print(json.dumps({"edge": "WorksOn", "from": slug(1),
          "to": ["o1", "k1"], "data": {"hours": 1.5}}), file=f)
# v3: a few changed and new rows (everything else shared with v2)
with open(d + "/v3.jsonl", "w") as f:
    for i in (5, 97, 1500, 2999):
        print(json.dumps(person(i, 99)), file=f)
    for i in range(3000, 3010):
        print(json.dumps(person(i)), file=f)
    print(json.dumps({"edge": "Knows", "from": slug(3001), "to": slug(0)}), file=f)
# v4: overwrite Knows with a subset (deletes from every tree)
with open(d + "/v4.jsonl", "w") as f:
    for i in range(0, 3000, 3):
        print(json.dumps({"edge": "Knows", "from": slug(i),
              "to": slug((i * 7 + 1) % 3000), "data": {"id": "e%05d-1" % i}}), file=f)
# v5: one more merge, for the crash / compensation case
with open(d + "/v5.jsonl", "w") as f:
    print(json.dumps(person(42, 43)), file=f)
    print(json.dumps({"edge": "Knows", "from": slug(42), "to": slug(43),
          "data": {"id": "late"}}), file=f)
EOF
"$GRAPHCTL" load "$S" --data "$T/v2.jsonl" --quiet
"$GRAPHCTL" load "$S" --data "$T/v3.jsonl" --quiet
"$GRAPHCTL" load "$S" --data "$T/v4.jsonl" --mode overwrite --quiet

# A writer killed after committing one table leaves an unconfirmed sidecar;
# recover rolls it back with a compensation version (failpoint builds only).
set +e
GRAPHFS_FAILPOINTS=commit/after_table=exit "$GRAPHCTL" load "$S" --data "$T/v5.jsonl" --quiet 2>/dev/null
st=$?
set -e
if [ "$st" = 86 ]; then
	"$GRAPHCTL" recover "$S" --quiet >/dev/null
	comp=no
	for f in "$S"/tables/*/*; do
		case ${f##*/} in *[!0-9]*) continue ;; esac
		t=${f%/*}; t=${t##*/}
		if $READER "$S" --table "$t" --file-version "${f##*/}" --info | grep -q '"compensation": true'; then
			comp=yes
		fi
	done
	[ "$comp" = yes ] && ok "recover wrote a compensation file the reader parses" || bad "no compensation file found"
	"$GRAPHCTL" load "$S" --data "$T/v5.jsonl" --quiet
elif [ "$st" = 0 ]; then
	echo "# not a failpoint build: compensation files not exercised"
else
	bad "load of v5 exited $st"
fi

head=$("$GRAPHCTL" log "$S" --json | tail -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
[ "$head" -ge 5 ] && ok "store has $head graph versions" || bad "head is $head"
for v in $(seq 1 "$head"); do
	"$GRAPHCTL" export "$S" --version "$v" >"$T/want"
	if $READER "$S" --version "$v" >"$T/got" && cmp -s "$T/want" "$T/got"; then
		checks=$((checks + 1))
	else
		bad "graph version $v: reader differs from graphctl export ($(wc -c <"$T/want") vs $(wc -c <"$T/got") bytes)"
	fi
	for ty in Person Company Project Chunk Knows WorksAt WorksOn Owns MentionedIn; do
		"$GRAPHCTL" export "$S" --version "$v" --type "$ty" >"$T/want"
		if $READER "$S" --version "$v" --type "$ty" >"$T/got" && cmp -s "$T/want" "$T/got"; then
			checks=$((checks + 1))
		else
			bad "graph version $v type $ty: reader differs from graphctl export"
		fi
	done
done
ok "$checks exports compared byte for byte"

# The reader refuses a flipped byte (every byte is under a checksum).
f=$(ls "$S/tables/node:Person/" | sort -n | tail -n 1)
cp "$S/tables/node:Person/$f" "$T/saved"
printf 'X' | dd of="$S/tables/node:Person/$f" bs=1 seek=200 conv=notrunc 2>/dev/null
if $READER "$S" --type Person >/dev/null 2>"$T/err"; then
	bad "reader accepted a corrupted version file"
else
	grep -q corrupt "$T/err" && ok "reader refuses a corrupted byte: $(head -c 200 "$T/err")" || bad "reader failed oddly: $(head -c 300 "$T/err")"
fi
cp "$T/saved" "$S/tables/node:Person/$f"

# After compact and gc (docs/format.md: tombstones, a version with no
# parent): the reader refuses a removed version and reads the compacted
# head byte for byte.
"$GRAPHCTL" compact "$S" -q
"$GRAPHCTL" gc "$S" --keep-last 1 -q
if $READER "$S" --version 1 >/dev/null 2>"$T/err"; then
	bad "reader exported a version gc removed"
else
	grep -q "removed by gc" "$T/err" && ok "reader refuses a removed version" || bad "reader: $(head -c 300 "$T/err")"
fi
"$GRAPHCTL" export "$S" >"$T/want"
$READER "$S" >"$T/got" && cmp -s "$T/want" "$T/got" && ok "reader reads the compacted head after gc" ||
	bad "compacted head: reader differs from graphctl export"

[ "$fails" = 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all format_reader checks passed"
