#!/bin/bash
# bench/schema_apply.sh [ROWS] - times `graphctl schema apply` on a store of
# ROWS Person nodes and ROWS Knows edges (default 200000): a new @unique and
# @range (check + unique index rewrite), a new @card (check only), a new
# required property with --default (every row rewritten).  docs/benchmarks.md
# "Schema apply".  GRAPHCTL defaults to ./graphctl (run it from a build dir).
set -euo pipefail
N=${1:-200000}
G=${GRAPHCTL:-./graphctl}
T=$(mktemp -d /tmp/gfs-bench-schema.XXXXXX)
trap 'rm -rf "$T"' EXIT
cat >"$T/v1.pg" <<'PG'
node Person { slug: String @key  name: String  age: I32?  email: String? }
edge Knows: Person -> Person
PG
awk -v n="$N" 'BEGIN {
	for (i = 0; i < n; i++)
		printf "{\"type\":\"Person\",\"data\":{\"slug\":\"p%07d\",\"name\":\"Person %d\",\"age\":%d,\"email\":\"p%d@example.org\"}}\n", i, i, i % 100, i
	for (i = 0; i < n; i++)
		printf "{\"edge\":\"Knows\",\"from\":\"p%07d\",\"to\":\"p%07d\"}\n", i, (i * 7 + 1) % n
}' >"$T/d.jsonl"
"$G" init "$T/S" --schema "$T/v1.pg" -q
/usr/bin/time -f "load: %e s, %M KB" "$G" load "$T/S" --data "$T/d.jsonl" -q
sed 's/email: String? }/email: String? @unique  @range(age, 0..200) }/' "$T/v1.pg" >"$T/v2.pg"
sed 's/edge Knows: Person -> Person/edge Knows: Person -> Person @card(0..1)/' "$T/v2.pg" >"$T/v3.pg"
sed 's/email: String? @unique/email: String? @unique  level: I32/' "$T/v3.pg" >"$T/v4.pg"
/usr/bin/time -f "@unique + @range (check, index rewrite): %e s, %M KB" "$G" schema apply "$T/S" "$T/v2.pg" -q
/usr/bin/time -f "@card (check only): %e s, %M KB" "$G" schema apply "$T/S" "$T/v3.pg" -q
/usr/bin/time -f "--default (every row rewritten): %e s, %M KB" "$G" schema apply "$T/S" "$T/v4.pg" --default Person.level=1 -q
"$G" fsck "$T/S" -q
