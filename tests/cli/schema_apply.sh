#!/bin/bash
# schema_apply.sh - graphctl schema apply (issue 11 requirement 3,
# docs/semantics.md "Schema changes"): each allowed change publishes one
# version (old versions keep their schema), each refused change and each
# kind of invalid row exits 1 with its report and leaves the store
# byte-identical, the options rewrite rows, a parse error names line and
# column, and a branch blocks an apply.  Invariants 153, 170-173 (docs/invariants.md).
set -euo pipefail
: "${GRAPHCTL:?}" "${top_srcdir:?}"
. "$top_srcdir/tests/lib.sh"
T=$(mktemp -d /tmp/gfs-schema.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok()   { echo "ok - $*"; }
bad()  { echo "FAIL - $*"; fails=$((fails + 1)); }
gctl() { with_timeout 60 "$GRAPHCTL" "$@"; }
S=$T/s

# Every file of the store with its checksum.  Not store state: LMDB's lock
# file (reader slots) and the empty lock files locks/<table>.lock, created
# by the first process that locks a table and never removed (DESIGN.md §3).
store_sum() {
	(cd "$1" && find . \( -path ./manifest/lock.mdb -o -path './locks/*.lock' \) -prune -o \( -type f -o -type d \) -print | LC_ALL=C sort |
		while read -r f; do if [ -f "$f" ]; then echo "$f $(sha256sum <"$f" | cut -c1-16)"; else echo "$f/"; fi; done)
}
# refused_unchanged DESC: the store is as $T/before says.
unchanged() {
	if store_sum "$S" | cmp -s - "$T/before"; then ok "$1: store byte-identical"
	else bad "$1: the store changed: $(store_sum "$S" | diff "$T/before" - | head -5)"; fi
}
head_version() { gctl snapshot "$S" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'; }
jfield() { python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T/out" "$1"; }

cat >"$T/v1.pg" <<'EOF'
node Person {
    slug: String @key
    age: I32?
    email: String?
    kind: enum(staff, guest)?
}
node Team { name: String @key }
node Empty { name: String @key }
edge Knows: Person -> Person
edge MemberOf: Person -> Team
EOF
gctl init "$S" --schema "$T/v1.pg" -q >/dev/null
{
	for i in $(seq 1 30); do
		printf '{"type":"Person","data":{"slug":"p%02d","age":%d,"email":"p%02d@x","kind":"staff"}}\n' "$i" $((i * 10)) "$i"
	done
	printf '{"type":"Person","data":{"slug":"noage"}}\n'
	printf '{"type":"Team","data":{"name":"core"}}\n'
	printf '{"edge":"Knows","from":"p01","to":"p02"}\n{"edge":"Knows","from":"p01","to":"p03"}\n'
	printf '{"edge":"MemberOf","from":"p01","to":"core"}\n'
} >"$T/seed.jsonl"
gctl load "$S" --data "$T/seed.jsonl" -q >/dev/null
gctl export "$S" >"$T/export.2"
V1_ID=$(gctl log "$S" --json | head -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["schema"])')
store_sum "$S" >"$T/before"

# new_schema FILE SED...: v1.pg edited by sed expressions
new_schema() { local f=$1; shift; sed "$@" "$T/v1.pg" >"$T/$f"; }

# ---- refused: nothing changes ---------------------------------------------
printf 'node Person {\n    slug: String @key\n    age I32\n}\n' >"$T/bad.pg"
expect_status 1 "a schema that does not parse" gctl schema apply "$S" "$T/bad.pg"
expect_err "bad\.pg:3:9: expected ':'" "the parse error names file, line and column"
unchanged "parse error"

refuse() { # refuse DESC FILE PATTERN [OPTIONS...]
	local desc=$1 f=$2 pat=$3
	shift 3
	expect_status 1 "refused: $desc" gctl schema apply "$S" "$T/$f" "$@"
	expect_err "$pat" "refused: $desc: the report says so"
	expect_err "schema change refused" "refused: $desc: the error line"
	unchanged "refused: $desc"
}
new_schema rm.pg '/email: String?/d'
refuse "a property removed" rm.pg "REFUSED Person\.email: property removed; allow it with --drop-property Person\.email"
new_schema ren.pg 's/email: String?/mail: String? @rename_from("email")/'
refuse "a property renamed" ren.pg "REFUSED Person\.email: property renamed to 'mail'"
new_schema req.pg 's/age: I32?/age: I32?\n    level: I32/'
refuse "a new required property without a default" req.pg "REFUSED Person\.level: new required property I32 without a default; allow it with --default Person\.level=JSON"
new_schema ty.pg 's/age: I32?/age: String?/'
refuse "a property's type changed" ty.pg "REFUSED Person\.age: type changed from I32\? to String\?"
new_schema key.pg 's/slug: String @key/slug: String/'
refuse "@key changed" key.pg "REFUSED Person: @key changed"
new_schema rmt.pg '/node Team/d; /edge MemberOf/d'
refuse "a type with rows removed" rmt.pg "REFUSED Team: type removed: its table has rows"
new_schema ends.pg 's/edge MemberOf: Person -> Team/edge MemberOf: Team -> Person/'
refuse "edge endpoints changed" ends.pg "REFUSED MemberOf: endpoints changed"
new_schema two.pg '/email: String?/d; s/age: I32?/age: U64?/'
expect_status 1 "two refused changes" gctl schema apply "$S" "$T/two.pg" --json
[ "$(jfield 'o["ok"], sum(c["refused"] for c in o["changes"])')" = "(False, 2)" ] &&
	ok "--json lists both refused changes" || bad "--json refusal: $(head -c 300 "$T/out")"
unchanged "two refused changes"

# ---- invalid rows: every one listed, nothing changes ----------------------
invalid() { # invalid DESC FILE JSONPRED
	local desc=$1 f=$2 pred=$3
	expect_status 1 "rows invalid: $desc" gctl schema apply "$S" "$T/$f" --json
	if [ "$(jfield "$pred")" = True ]; then ok "rows invalid: $desc: listed (type, id, property, value)"
	else bad "rows invalid: $desc: $(head -c 400 "$T/out")"; fi
	unchanged "rows invalid: $desc"
}
new_schema range.pg 's/kind: enum(staff, guest)?/kind: enum(staff, guest)?\n    @range(age, 0..250)/'
invalid "@range" range.pg 'o["problems_total"] == 5 and sorted(p["id"] for p in o["problems"]) == ["p26","p27","p28","p29","p30"] and all(p["type"] == "Person" and p["property"] == "age" for p in o["problems"]) and o["problems"][0]["value"] == "260"'
new_schema check.pg 's/kind: enum(staff, guest)?/kind: enum(staff, guest)?\n    @check(email, "p0[0-9]@x")/'
invalid "@check" check.pg 'o["problems_total"] == 21 and len(o["problems"]) == 21'
new_schema uniq.pg 's/slug: String @key/slug: String @key\n    k2: String? @unique/; s/kind: enum(staff, guest)?/kind: enum(staff, guest)? @unique/'
invalid "@unique" uniq.pg 'o["problems_total"] == 30 and {p["value"] for p in o["problems"]} == {"\"staff\""}'
new_schema card.pg 's/edge Knows: Person -> Person/edge Knows: Person -> Person @card(0..1)/'
invalid "@card" card.pg 'o["problems_total"] == 1 and o["problems"][0]["id"] == "p01" and o["problems"][0]["value"] == "2"'
new_schema enum.pg 's/enum(staff, guest)/enum(guest)/'
invalid "an enum value removed" enum.pg 'o["problems_total"] == 30 and o["problems"][0]["property"] == "kind" and o["problems"][0]["value"] == "\"staff\""'
new_schema nn.pg 's/age: I32?/age: I32/'
invalid "a property made required" nn.pg 'o["problems_total"] == 1 and o["problems"][0]["id"] == "noage"'
# the text report caps the rows it shows and counts the rest
expect_status 1 "30 invalid rows, text report" gctl schema apply "$S" "$T/enum.pg"
[ "$(grep -c "^  row Person 'p" "$T/err")" = 20 ] && grep -q "and 10 more rows (30 in all" "$T/err" &&
	ok "the text report shows 20 rows and counts the other 10" || bad "capped report: $(head -c 600 "$T/err")"

# ---- options and usage ----------------------------------------------------
expect_status 1 "--drop-property of a property the new schema keeps" gctl schema apply "$S" "$T/v1.pg" --drop-property Person.age
expect_err "the new schema still declares 'age'" "--drop-property: says why"
expect_status 1 "--default that is not JSON" gctl schema apply "$S" "$T/req.pg" --default 'Person.level=x{'
expect_err "is not a JSON value" "--default: says why"
expect_status 1 "--default of a value of the wrong type" gctl schema apply "$S" "$T/req.pg" --default 'Person.level="high"'
expect_status 2 "missing NEW.pg" gctl schema apply "$S"
unchanged "bad options"
expect_status 0 "the same schema" gctl schema apply "$S" "$T/v1.pg"
[ ! -s "$T/err" ] && ok "the same schema: no error" || bad "the same schema: $(cat "$T/err")"
grep -q "nothing to do" "$T/out" && ok "the same schema: nothing to do" || bad "same schema: $(cat "$T/out")"
new_schema ok1.pg 's/email: String?/email: String? @unique\n    nick: String?/'
expect_status 0 "--dry-run of a valid change" gctl schema apply "$S" "$T/ok1.pg" --dry-run
unchanged "--dry-run"

# ---- allowed changes -------------------------------------------------------
# a new optional property, a new unique constraint the rows meet, a new
# node type, a new edge type, a relaxed constraint
new_schema ok2.pg 's/email: String?/email: String? @unique\n    nick: String?/; s/kind: enum(staff, guest)?/kind: enum(staff, guest, alumni)?/'
printf 'node Project { code: String @key }\nedge WorksOn: Person -> Project { hours: I32? }\n' >>"$T/ok2.pg"
expect_status 0 "allowed: new optional property, @unique, enum value, new node and edge types" gctl schema apply "$S" "$T/ok2.pg" --json
[ "$(jfield 'o["version"], o["tables_created"], o["tables_rewritten"], o["rows_rewritten"]')" = "(3, 2, 1, 0)" ] &&
	ok "version 3; 2 tables created; Person rewritten for its new unique index, no row's bytes changed" ||
	bad "allowed: $(head -c 400 "$T/out")"
gctl schema "$S" --version 2 | cmp -s - "$T/v1.pg" && ok "version 2 keeps the old schema" || bad "version 2's schema changed"
gctl schema "$S" | cmp -s - "$T/ok2.pg" && ok "the head has the new schema" || bad "the head's schema is not the new one"
gctl export "$S" --version 2 | cmp -s - "$T/export.2" && ok "version 2 exports byte-identically" || bad "version 2's export changed"
gctl export "$S" | cmp -s - "$T/export.2" && ok "the rows are unchanged at version 3" || bad "rows changed at version 3"
gctl fsck "$S" >"$T/fsck" 2>&1 && ok "fsck clean after the apply" || bad "fsck: $(cat "$T/fsck")"
printf '{"type":"Project","data":{"code":"x1"}}\n{"edge":"WorksOn","from":"p01","to":"x1","data":{"hours":3}}\n{"type":"Person","data":{"slug":"new","nick":"N","kind":"alumni"}}\n' >"$T/l3.jsonl"
expect_status 0 "a load of the new types and property" gctl load "$S" --data "$T/l3.jsonl" -q
printf '{"type":"Person","data":{"slug":"dup","email":"p01@x"}}\n' >"$T/dup.jsonl"
expect_status 1 "the new unique index is enforced on load" gctl load "$S" --data "$T/dup.jsonl" -q
expect_err "p01@x|unique" "the load names the duplicate"

# drop a property and fill a default: rows rewritten
sed '/email: String? @unique/d; s/age: I32?/age: I32?\n    level: I32/' "$T/ok2.pg" >"$T/ok3.pg"
expect_status 0 "--drop-property and --default" gctl schema apply "$S" "$T/ok3.pg" --drop-property Person.email --default Person.level=7 --json
[ "$(jfield 'o["tables_rewritten"], o["rows_rewritten"]')" = "(1, 32)" ] && ok "Person rewritten, all 32 rows changed" || bad "rewrite: $(head -c 400 "$T/out")"
gctl export "$S" --type Person >"$T/p.jsonl"
if ! grep -q email "$T/p.jsonl" && [ "$(grep -c '"level":7' "$T/p.jsonl")" = 32 ]; then ok "every row lost email and got level 7"
else bad "rewritten rows: $(head -3 "$T/p.jsonl")"; fi
gctl export "$S" --version 4 --type Person | grep -q '"email":"p01@x"' && ok "version 4 still has the emails" || bad "version 4 lost its emails"
gctl fsck "$S" >"$T/fsck" 2>&1 && ok "fsck clean after the rewrite" || bad "fsck: $(cat "$T/fsck")"

# an empty type may be removed, and added again
sed '/node Empty/d' "$T/ok3.pg" >"$T/ok4.pg"
expect_status 0 "an empty type removed" gctl schema apply "$S" "$T/ok4.pg"
grep -q "Empty: type removed (its table is empty)" "$T/out" && ok "the report says the table was empty" || bad "report: $(cat "$T/out")"
expect_status 0 "the empty type added back" gctl schema apply "$S" "$T/ok3.pg"
printf '{"type":"Empty","data":{"name":"e"}}\n' >"$T/e.jsonl"
expect_status 0 "a load into the type added back" gctl load "$S" --data "$T/e.jsonl" -q
gctl fsck "$S" >"$T/fsck" 2>&1 && ok "fsck clean at the end" || bad "fsck: $(cat "$T/fsck")"
gctl log "$S" --json | grep -c '"op":"schema"' | grep -qx 4 && ok "four schema versions in the log" || bad "log: $(gctl log "$S")"


# ---- branches: apply refused while another exists; no merge across schemas
# (invariant 153).  A branch from version 2 has the old schema.
{ cat "$T/ok3.pg"; printf 'node Tag { name: String @key }\n'; } >"$T/ok5.pg"
expect_status 0 "a branch at version 2 (the old schema)" gctl branch create "$S" old --from 2
printf '{"type":"Team","data":{"name":"old-only"}}\n' >"$T/old.jsonl"
expect_status 0 "a load on it (so it is not merged already)" gctl load "$S" --branch old --data "$T/old.jsonl" -q
store_sum "$S" >"$T/before"
expect_status 1 "schema apply while branch 'old' exists" gctl schema apply "$S" "$T/ok5.pg"
expect_err "refused while branches other than main exist \('old'\)" "the refusal names the branch"
unchanged "schema apply refused for a branch"
expect_status 1 "merge across schemas" gctl merge "$S" old
expect_err "schema" "the merge refusal says the schemas differ"
unchanged "merge across schemas refused"
expect_status 0 "the branch deleted" gctl branch delete "$S" old
expect_status 0 "schema apply once only main is left" gctl schema apply "$S" "$T/ok5.pg"
gctl fsck "$S" >"$T/fsck" 2>&1 && ok "fsck clean after the branch case" || bad "fsck: $(cat "$T/fsck")"

[ "$fails" -eq 0 ] && echo "all passed" || { echo "$fails failure(s)"; exit 1; }
