#!/bin/bash
# merge.sh - graphctl merge (docs/branches-design.md §5, docs/semantics.md
# "Merge", invariants 148, 160-163):
#  1. a conflict of each kind (changed on both sides, deleted vs changed, an
#     edge whose endpoint the other side deleted) is listed in text and in
#     --json (type, key, both values), exit 1, and the store is unchanged
#     (manifest by mdb_dump, table files by content);
#  2. --prefer source / --prefer target publish one graph version on the
#     target with parents [H, S], op merge, the preferred values;
#  3. an invalid result (@unique across the sides) is refused even with
#     --prefer, the row named;
#  4. a fast-forward publishes a version whose pins are the source's and
#     writes no table file; merging again says "already merged", unchanged;
#  5. merging a branch into itself, an unknown branch, a bad --prefer:
#     clear message, exit code, nothing changed;
#  6. --into a branch other than main; fsck clean at the end;
#  7. found by tests/model/model.py: an edge a load re-pointed on the source
#     (same id, other endpoints) merges (it was refused as invalid), with
#     --prefer source too; an already-merged source across schemas is exit 0.
set -euo pipefail
: "${GRAPHCTL:?}" "${top_srcdir:?}" "${top_builddir:?}"
. "$top_srcdir/tests/lib.sh"
T=$(mktemp -d /tmp/gfs-merge.XXXXXX)
trap 'rm -rf "$T"' EXIT
S=$T/store
fails=0
ok()   { echo "ok - $*"; }
bad()  { echo "FAIL - $*"; fails=$((fails + 1)); }
gctl() { with_timeout 60 "$GRAPHCTL" "$@"; }
person() { printf '{"type":"Person","data":{"slug":"%s","name":"%s"}}\n' "$1" "$2"; }
knows() { printf '{"edge":"Knows","from":"%s","to":"%s","data":{"id":"%s"}}\n' "$2" "$3" "$1"; }
load() { # load BRANCH < lines
	gctl load "$S" --branch "$1" --data - -q
}

state() {
	mdb_dump -a -n "$S/manifest/data.mdb" 2>/dev/null || mdb_dump -a "$S/manifest"
	tables_state
}
tables_state() {
	(cd "$S/tables" && find . -printf '%p %y %s %m\n' | sort && find . -type f -exec md5sum {} + | sort)
}
unchanged() {
	state >"$T/after"
	cmp -s "$T/before" "$T/after" && ok "$1: store unchanged" || bad "$1 changed the store"
}
json_field() { # json_field FILE PYEXPR(j)
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
last_log() { gctl log "$S" --json | tail -1 >"$T/log.json"; }

cat >"$T/s.pg" <<'EOF'
node Person { slug: String @key  name: String?  email: String? @unique }
edge Knows: Person -> Person @card(0..3)
EOF

# A fresh store: alice, bob, carol, dave on main (gv 2), branch dev at gv 2.
fresh() {
	rm -rf "$S"
	gctl init "$S" --schema "$T/s.pg" -q
	{ person alice Alice; person bob Bob; person carol Carol; person dave Dave; } | load main
	gctl branch create "$S" dev -q >/dev/null
}

expect_status 0 "merge --help" "$GRAPHCTL" merge --help
grep -q "usage: graphctl merge STORE SOURCE" "$T/out" && ok "merge --help has a usage line" || bad "merge --help: $(cat "$T/out")"
expect_status 2 "merge without SOURCE" "$GRAPHCTL" merge "$T/nowhere"

# ---- 1. conflicts of each kind, listed; nothing changes --------------------
fresh
{ person alice "Alice S"; person erin Erin; } | load dev         # changed on both
person bob "Bob S" | load dev                                   # deleted vs changed
knows k9 dave carol | load dev                                  # endpoint: main deletes carol
person alice "Alice T" | load main
gctl load "$S" --data - --mode overwrite -q <<EOF
$(person alice "Alice T"; person dave Dave)
EOF
# main: alice changed (gv 6), bob and carol deleted (gv 7); dev at gv 5
state >"$T/before"
expect_status 1 "conflicting merge" "$GRAPHCTL" merge "$S" dev
grep -qF "conflict changed Person 'alice': target {\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"Alice T\"}} | source {\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"Alice S\"}}" "$T/out" \
	&& ok "changed on both sides: listed with both values" || bad "no changed conflict: $(cat "$T/out")"
grep -qF "conflict deleted Person 'bob': target (absent) | source {\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"name\":\"Bob S\"}}" "$T/out" \
	&& ok "deleted vs changed: listed" || bad "no deleted conflict: $(cat "$T/out")"
grep -qF "conflict endpoint Knows 'k9': the target deleted its endpoint Person 'carol'" "$T/out" \
	&& ok "edge to a node the other side deleted: listed" || bad "no endpoint conflict: $(cat "$T/out")"
expect_err "3 conflict\(s\) and 0 invalid row\(s\): nothing was published" "the refusal says nothing was published"
unchanged "conflicting merge"
expect_status 1 "conflicting merge --json" "$GRAPHCTL" merge "$S" dev --json
cp "$T/out" "$T/conf.json"
[ "$(json_field "$T/conf.json" '[(c["kind"], c["type"], c["key"]) for c in j["conflicts"]]')" = \
  "[('changed', 'Person', 'alice'), ('deleted', 'Person', 'bob'), ('endpoint', 'Knows', 'k9')]" ] \
	&& ok "--json lists the three conflicts" || bad "--json: $(cat "$T/conf.json")"
[ "$(json_field "$T/conf.json" '(j["version"], j["conflicts"][0]["target"]["data"]["name"], j["conflicts"][0]["source"]["data"]["name"], j["conflicts"][1]["target"], j["conflicts"][2]["node_key"], j["conflicts"][2]["deleted_by"])')" = \
  "(0, 'Alice T', 'Alice S', None, 'carol', 'target')" ] \
	&& ok "--json carries both values" || bad "--json values: $(cat "$T/conf.json")"
unchanged "conflicting merge --json"

# ---- 2. --prefer ----------------------------------------------------------
expect_status 2 "--prefer nonsense" "$GRAPHCTL" merge "$S" dev --prefer both
unchanged "--prefer nonsense"
cp -a "$S" "$T/store.conflict"
expect_status 0 "merge --prefer target" "$GRAPHCTL" merge "$S" dev --prefer target
gctl export "$S" >"$T/exp"
grep -q '"Alice T"' "$T/exp" && ! grep -q '"bob"\|"carol"\|k9' "$T/exp" && grep -q '"erin"' "$T/exp" \
	&& ok "--prefer target: the target's values, the source's one-sided change (erin)" || bad "--prefer target: $(cat "$T/exp")"
last_log
[ "$(json_field "$T/log.json" '(j["op"], j["branch"], j["parents"])')" = "('merge', 'main', [7, 5])" ] \
	&& ok "the merge's gv: op merge on main, parents [H, S]" || bad "log: $(cat "$T/log.json")"
rm -rf "$S" && mv "$T/store.conflict" "$S"
expect_status 0 "merge --prefer source" "$GRAPHCTL" merge "$S" dev --prefer source --json
[ "$(json_field "$T/out" '(j["resolved"], len(j["conflicts"]), j["tables_written"])')" = "(3, 3, 2)" ] \
	&& ok "--prefer source --json: 3 resolved, 2 tables written" || bad "--prefer source --json: $(cat "$T/out")"
gctl export "$S" >"$T/exp"
grep -q '"Alice S"' "$T/exp" && grep -q '"Bob S"' "$T/exp" && grep -q '"slug":"carol"' "$T/exp" && grep -q '"k9"' "$T/exp" \
	&& ok "--prefer source: the source's values, carol back for k9" || bad "--prefer source: $(cat "$T/exp")"
expect_status 0 "fsck after --prefer source" "$GRAPHCTL" fsck "$S"
state >"$T/before"
expect_status 0 "merge again" "$GRAPHCTL" merge "$S" dev
grep -q "already merged" "$T/out" && ok "merge again: already merged" || bad "merge again: $(cat "$T/out")"
unchanged "merge again"

# ---- 3. an invalid result is refused even with --prefer --------------------
fresh
printf '{"type":"Person","data":{"slug":"x","email":"e@x"}}\n' | load main
printf '{"type":"Person","data":{"slug":"y","email":"e@x"}}\n' | load dev
state >"$T/before"
expect_status 1 "merge with a @unique clash, --prefer source" "$GRAPHCTL" merge "$S" dev --prefer source
grep -q "^invalid Person 'y': .*unique.*e@x" "$T/out" && ok "the invalid row is named" || bad "invalid: $(cat "$T/out")"
expect_err "0 conflict\(s\) and 1 invalid row\(s\)" "the refusal counts the invalid row"
unchanged "invalid merge"

# ---- 4. fast-forward: no table file ----------------------------------------
fresh
{ person alice "Alice 2"; knows k2 carol dave; } | load dev
gctl snapshot "$S" --branch dev --json >"$T/dev.snap"
tables_state >"$T/tables.before"
expect_status 0 "fast-forward merge" "$GRAPHCTL" merge "$S" dev
grep -q "fast-forward" "$T/out" && ok "says fast-forward" || bad "fast-forward: $(cat "$T/out")"
tables_state >"$T/tables.after"
cmp -s "$T/tables.before" "$T/tables.after" && ok "a fast-forward writes no table file" || bad "a fast-forward changed tables/"
gctl snapshot "$S" --json >"$T/main.snap"
[ "$(json_field "$T/main.snap" 'sorted((k, v["version"]) for k, v in j["tables"].items())')" = \
  "$(json_field "$T/dev.snap" 'sorted((k, v["version"]) for k, v in j["tables"].items())')" ] \
	&& ok "main's pins are dev's" || bad "pins differ: $(cat "$T/main.snap") vs $(cat "$T/dev.snap")"
last_log
[ "$(json_field "$T/log.json" '(j["op"], j["parents"], j["detail"]["fast_forward"])')" = "('merge', [2, 3], True)" ] \
	&& ok "the fast-forward's gv: parents [T, S]" || bad "log: $(cat "$T/log.json")"

# ---- 5. errors ---------------------------------------------------------------
state >"$T/before"
expect_status 1 "merge main into main" "$GRAPHCTL" merge "$S" main
expect_err "cannot merge branch 'main' into itself" "into itself: says so"
unchanged "merge into itself"
expect_status 1 "merge dev --into dev" "$GRAPHCTL" merge "$S" dev --into dev
unchanged "merge dev --into dev"
expect_status 1 "merge an unknown branch" "$GRAPHCTL" merge "$S" nosuch
expect_err "no branch 'nosuch'" "unknown source: named"
expect_status 1 "merge --into an unknown branch" "$GRAPHCTL" merge "$S" dev --into nosuch
expect_err "no branch 'nosuch'" "unknown target: named"
unchanged "unknown branches"

# ---- 6. --into another branch -----------------------------------------------
person frank Frank | load main
person alice "Alice 3" | load dev
expect_status 0 "merge main --into dev" "$GRAPHCTL" merge "$S" main --into dev
gctl export "$S" --branch dev >"$T/exp"
grep -q '"frank"' "$T/exp" && grep -q '"Alice 3"' "$T/exp" && ok "--into dev: both sides' rows" || bad "--into dev: $(cat "$T/exp")"
gctl log "$S" --branch dev --json | tail -1 >"$T/log.json"
[ "$(json_field "$T/log.json" '(j["branch"], len(j["parents"]))')" = "('dev', 2)" ] \
	&& ok "published on dev with two parents" || bad "log: $(cat "$T/log.json")"
expect_status 0 "fsck at the end" "$GRAPHCTL" fsck "$S"

# ---- 7. found by tests/model (issue 12) ---------------------------------------
# A load re-points an edge by id (merge mode upserts the whole row); a merge
# takes that change as it takes any other: it was refused as an invalid row
# ("an edge's endpoints never change"), so a history valid on each branch
# could not be merged.
fresh
knows k1 alice bob | load main
gctl branch delete "$S" dev -q >/dev/null
gctl branch create "$S" dev -q >/dev/null
knows k1 carol dave | load dev
person erin Erin | load main
expect_status 0 "merge of an edge re-pointed on the source" "$GRAPHCTL" merge "$S" dev
gctl export "$S" --type Knows >"$T/exp"
[ "$(cat "$T/exp")" = '{"edge":"Knows","from":"carol","to":"dave","data":{"id":"k1"}}' ] \
	&& ok "the source's endpoints taken" || bad "re-pointed: $(cat "$T/exp")"
# the same with a conflict resolved for the source
knows k1 alice carol | load dev
knows k1 bob dave | load main
expect_status 1 "both sides re-point k1: a conflict" "$GRAPHCTL" merge "$S" dev
expect_status 0 "--prefer source" "$GRAPHCTL" merge "$S" dev --prefer source
gctl export "$S" --type Knows >"$T/exp"
[ "$(cat "$T/exp")" = '{"edge":"Knows","from":"alice","to":"carol","data":{"id":"k1"}}' ] \
	&& ok "--prefer source re-points k1" || bad "re-pointed: $(cat "$T/exp")"
expect_status 0 "fsck after re-pointing merges" "$GRAPHCTL" fsck "$S"

# Merging a source that is already in the target is exit 0 "already merged"
# even when the target's schema moved on (branches-design.md §5 step 1: the
# base == S test comes before the schema test); it was refused "across
# schemas".
fresh
gctl branch delete "$S" dev -q >/dev/null
printf 'node Person { slug: String @key  name: String?  email: String? @unique  nick: String? }\nedge Knows: Person -> Person @card(0..3)\n' >"$T/s2.pg"
gctl schema apply "$S" "$T/s2.pg" -q
gctl branch create "$S" old --from 2 -q >/dev/null
state >"$T/before"
expect_status 0 "merge of an ancestor across schemas" "$GRAPHCTL" merge "$S" old
grep -q "already merged" "$T/out" && ok "says already merged" || bad "already merged: $(cat "$T/out" "$T/err")"
unchanged "already merged across schemas"
person zed Zed | load old
expect_status 1 "a real merge across schemas is still refused" "$GRAPHCTL" merge "$S" old
expect_err "cannot merge across schemas" "names the schemas"

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all merge checks passed"
