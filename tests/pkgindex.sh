#!/bin/bash
# pkgindex.sh - a sizable real graph: the machine's Debian package index
# (tests/data/pkggraph.py: ~110k Package/Maintainer nodes and ~480k edges
# from the bookworm apt lists; just the installed packages when there are no
# lists) loads, counts match what the generator counted on its own, exports,
# round-trips byte for byte through a second store, and fsck is clean.  The
# load must stay under 200 MiB peak RSS (checked only when graphctl is not
# built with ASan, which inflates memory).  No timing assertions: timings are
# printed for the record (docs/benchmarks.md).  PKGGRAPH_MAX=N limits the
# graph to the first N packages by name (a quick run while debugging);
# PKGGRAPH_LISTS=DIR reads apt lists from DIR (an empty one: dpkg's status).
set -euo pipefail
: "${GRAPHCTL:?}" "${top_srcdir:?}"
. "$top_srcdir/tests/lib.sh"
RSS_LIMIT_KIB=$((200 * 1024))
T=$(mktemp -d /tmp/gfs-pkgindex.XXXXXX)
started=$(date +%s.%N)
trap 'rm -rf "$T"' EXIT
A=$T/store-a
B=$T/store-b
fails=0
ok()  { echo "ok - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
now() { date +%s.%N; }
took() { python3 -c 'import sys; print("%.1f s" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$(now)"; }

# run_rss OUT_KIB CMD...: runs CMD (stdout/stderr to $T/out, $T/err; killed
# after 15 min) and writes its peak RSS in KiB (getrusage of the reaped
# child) to OUT_KIB.
run_rss() {
	local out=$1; shift
	python3 - "$out" "$@" >"$T/out" 2>"$T/err" <<'PY'
import resource, subprocess, sys
try:
    rc = subprocess.call(sys.argv[2:], timeout=900)
except subprocess.TimeoutExpired:
    print("run_rss: killed after 900 s", file=sys.stderr)
    rc = 124
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)
PY
}

# Not a pipe into grep -q: under pipefail its early exit would fail the pipe.
is_asan() {
	case "$({ ldd "$GRAPHCTL"; nm "$GRAPHCTL"; } 2>/dev/null)" in
	*libasan*|*__asan_init*) return 0 ;;
	esac
	return 1
}

# ---- the data ----------------------------------------------------------------
if ! ls "${PKGGRAPH_LISTS:-/var/lib/apt/lists}"/*_Packages* >/dev/null 2>&1 &&
	[ ! -s /var/lib/dpkg/status ]; then
	echo "SKIP - no apt lists and no dpkg status: not a Debian machine"
	exit 77
fi
t0=$(now)
python3 "$top_srcdir/tests/data/pkggraph.py" ${PKGGRAPH_MAX:+--max "$PKGGRAPH_MAX"} \
	${PKGGRAPH_LISTS:+--lists "$PKGGRAPH_LISTS"} --out "$T/pkg.jsonl" --counts "$T/counts.json"
echo "# generated $(wc -l <"$T/pkg.jsonl") lines, $(du -m "$T/pkg.jsonl" | cut -f1) MB in $(took "$t0")"
python3 - "$T/counts.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
print("# source: %s (%d file%s)" % (c["source"], len(c["files"]), "" if len(c["files"]) == 1 else "s"))
print("# nodes %d (%d defined, %d virtual), edges %d, skipped %s"
      % (c["nodes"], c["defined"], c["virtual"], c["edges"], c["skipped"]))
print("# per type: " + ", ".join("%s=%d" % kv for kv in sorted(c["per_type"].items())))
PY
total=$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); print(c["nodes"] + c["edges"])' "$T/counts.json")
if [ "$total" = 0 ]; then
	echo "SKIP - the package index is empty"
	exit 77
fi
ok "generator produced $total rows"

# ---- load into store A ---------------------------------------------------------
"$GRAPHCTL" init "$A" --schema "$top_srcdir/tests/data/pkggraph.pg" >/dev/null
t0=$(now)
if run_rss "$T/rss" "$GRAPHCTL" load "$A" --data "$T/pkg.jsonl" --mode append; then
	ok "load --mode append ($(took "$t0"), peak RSS $(( $(cat "$T/rss") / 1024 )) MiB)"
else
	bad "load failed: $(head -c 600 "$T/err")"
fi
grep -q "loaded $total rows" "$T/out" && ok "load reports $total rows" || bad "load said: $(cat "$T/out")"
rss=$(cat "$T/rss")
if is_asan; then
	echo "# ASan build: peak RSS $((rss / 1024)) MiB not checked against $((RSS_LIMIT_KIB / 1024)) MiB"
elif [ "$rss" -le "$RSS_LIMIT_KIB" ]; then
	ok "load peak RSS $((rss / 1024)) MiB <= $((RSS_LIMIT_KIB / 1024)) MiB"
else
	bad "load peak RSS $((rss / 1024)) MiB > $((RSS_LIMIT_KIB / 1024)) MiB"
fi

# ---- counts: snapshot against the generator's own count ------------------------
"$GRAPHCTL" snapshot "$A" --json >"$T/snap.json"
python3 - "$T/snap.json" "$T/counts.json" <<'PY' && ok "snapshot rows match the generator per table" || bad "snapshot counts"
import json, sys
snap = json.load(open(sys.argv[1]))
want = json.load(open(sys.argv[2]))["per_type"]
tables = snap["tables"]
assert snap["version"] == 2, snap["version"]
assert set(want) <= set(tables), "missing tables: %s" % (set(want) - set(tables))
bad = {t: (tables[t]["rows"], want.get(t, 0)) for t in tables if tables[t]["rows"] != want.get(t, 0)}
assert not bad, "rows (got, want): %s" % bad
PY

# ---- export: exactly the generated rows ------------------------------------------
t0=$(now)
with_timeout 600 "$GRAPHCTL" export "$A" >"$T/export-a.jsonl" || bad "export A failed"
echo "# export A: $(took "$t0")"
python3 - "$T/pkg.jsonl" "$T/export-a.jsonl" "$T/snap.json" <<'PY' && ok "export holds exactly the loaded rows, bytes = snapshot bytes" || bad "export differs from the input"
import collections, json, sys, os
def rows(path):
    c = collections.Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            c[json.dumps(o, sort_keys=True)] += 1
    return c
a, b = rows(sys.argv[1]), rows(sys.argv[2])
if a != b:
    print("only in input:", list((a - b).items())[:3], file=sys.stderr)
    print("only in export:", list((b - a).items())[:3], file=sys.stderr)
    sys.exit(1)
snap = json.load(open(sys.argv[3]))
size = sum(t["bytes"] for t in snap["tables"].values())
assert size == os.path.getsize(sys.argv[2]), (size, os.path.getsize(sys.argv[2]))
PY
n=$("$GRAPHCTL" export "$A" --type Package | wc -l)
want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["per_type"]["node:Package"])' "$T/counts.json")
[ "$n" = "$want" ] && ok "export --type Package has $n rows" || bad "export --type Package: $n rows, want $want"
rm -f "$T/pkg.jsonl"

# ---- round trip: export -> new store -> export, byte-identical -------------------
"$GRAPHCTL" init "$B" --schema "$top_srcdir/tests/data/pkggraph.pg" >/dev/null
t0=$(now)
if with_timeout 900 "$GRAPHCTL" load "$B" --data "$T/export-a.jsonl" --mode append >"$T/out" 2>"$T/err"; then
	ok "export of A loads into a fresh store ($(took "$t0"))"
else
	bad "load of the export failed: $(head -c 600 "$T/err")"
fi
if with_timeout 600 "$GRAPHCTL" export "$B" | cmp -s - "$T/export-a.jsonl"; then
	ok "export of B is byte-identical to export of A"
else
	bad "round trip: export of B differs from export of A"
fi

for s in "$A" "$B"; do
	if with_timeout 600 "$GRAPHCTL" fsck "$s" >"$T/out" 2>&1; then
		ok "fsck ${s##*/} clean"
	else
		bad "fsck ${s##*/}: $(head -c 600 "$T/out")"
	fi
done

echo "# total $(took "$started")"
echo
[ "$fails" = 0 ] && echo "pkgindex: all passed" || echo "pkgindex: $fails failed"
exit $((fails > 0))
