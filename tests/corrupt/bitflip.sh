#!/bin/bash
# bitflip.sh - corruption is detected, never served (issue 8, req. 3).
#
# 1. tests/corrupt/bitflip.py: seeded single-bit flips in every file kind
#    (FORMAT, schemas, table-file header/lines/pages/footer, data.mdb meta
#    pages, page headers, used bytes, free pages); after each, every
#    version exports identically or fails naming the file or key, fsck
#    reports it, nothing dies.  BITFLIP_FLIPS flips (default 90; `make
#    stress` runs 3000), seed GRAPHFS_TEST_SEED (default 20261130), both
#    printed.  Replay one flip: bitflip.py ... --replay KIND:FILE:OFF:BIT.
# 2. The two cases of the issue, by name: a flipped bit in a line of a
#    table file, and a flipped digit of a pin inside data.mdb; the export,
#    fsck and the mount (EIO on the affected files, the rest serving).
. "$top_srcdir/tests/mount/lib_mount.sh"
command -v python3 >/dev/null || { echo "SKIP: needs python3"; exit 77; }
seed=${GRAPHFS_TEST_SEED:-20261130}
flips=${BITFLIP_FLIPS:-90}
W=$T/work

# ASan would turn a fault inside LMDB into its own report and exit 1; the
# guard in graphctl must see the signal itself.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0:handle_sigbus=0

if python3 "$top_srcdir/tests/corrupt/bitflip.py" "$GRAPHCTL" \
	"$top_srcdir/examples" "$W" --seed "$seed" --flips "$flips"; then
	ok "$flips seeded bit flips (seed $seed): never served, always reported"
else
	bad "bit flips (seed $seed): see FAIL lines above"
fi
S=$W/store
[ -d "$S" ] || { finish; exit; }
gc export "$S" >"$T/head.jsonl" || bad "pristine store exports"
gc export "$S" --type Knows >"$T/knows.jsonl"
head=$(gc log "$S" | wc -l)

# ---- a flipped bit in a line of node:Person's newest table file ---------
# (the issue: export printed wrong bytes with exit 0 for 6 of 20 flips)
pin=$(gc log "$S" --json | tail -1 | jq -r '.tables["node:Person"]')
for v in $(seq "$pin" -1 1); do
	f=$S/tables/node:Person/$v
	read -r off slug < <(python3 - "$f" <<'PY'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
flen = struct.unpack_from("<I", b, len(b) - 24)[0]
lines_end = struct.unpack_from("<Q", b, len(b) - flen + 32)[0]
if lines_end <= 128:
    sys.exit(0)
line = b[128:b.index(b"\n", 128) + 1]
d = json.loads(line)["data"]
print(128 + line.index(b'"name"') + 9, d["slug"])
PY
)
	[ -n "${off:-}" ] && break
done
[ -n "${off:-}" ] || bad "no node:Person file with lines"
python3 -c "
import sys; p, o = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read()); b[o] ^= 0x02; open(p, 'wb').write(b)" "$f" "$off"
if gc export "$S" >"$T/out" 2>"$T/err"; then
	bad "export of a flipped line succeeded"
else
	grep -q "tables/node:Person/$v.*line checksum mismatch" "$T/err" \
		&& ok "export refuses the flipped line, naming file and offset" \
		|| bad "export message: $(cat "$T/err")"
fi
gc fsck "$S" >"$T/out" 2>&1 && bad "fsck missed the flipped line" \
	|| { grep -q "node:Person' version $v" "$T/out" && ok "fsck names node:Person version $v" || bad "fsck: $(cat "$T/out")"; }
M=$T/mnt
if mount_gfs "$S" "$M" -o ro; then
	ok "mounted read-only over the flipped line"
	timeout 30 cat "$M/nodes/Person.jsonl" >/dev/null 2>"$T/err" \
		&& bad "cat of the whole table served the flipped line" \
		|| { grep -q "Input/output error" "$T/err" && ok "whole-table file: EIO" || bad "whole-table file: $(cat "$T/err")"; }
	grep -q "\"last_io_error\":\"corrupt table file '[^']*node:Person/$v'" "$M/.graphfs/stats" \
		&& ok ".graphfs/stats names the damaged file" \
		|| bad ".graphfs/stats: $(grep -o '"last_io_error":"[^"]*"' "$M/.graphfs/stats")"
	timeout 30 cat "$M/nodes/Person/$slug.json" >/dev/null 2>"$T/err" \
		&& bad "cat of row '$slug' served the flipped line" \
		|| { grep -q "Input/output error" "$T/err" && ok "row file of the flipped line: EIO" || bad "row file: $(cat "$T/err")"; }
	timeout 30 cat "$M/edges/Knows.jsonl" >"$T/out" 2>/dev/null && cmp -s "$T/out" "$T/knows.jsonl" \
		&& ok "another table keeps serving, byte-identical" || bad "edges/Knows.jsonl no longer served"
	timeout 30 cat "$M/versions/1/manifest.json" >/dev/null \
		&& ok "versions/1 keeps serving" || bad "versions/1 not served"
	umount_gfs "$M" || bad "unmount"
else
	bad "mount -o ro of a store with a flipped line"
fi
python3 -c "
import sys; p, o = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read()); b[o] ^= 0x02; open(p, 'wb').write(b)" "$f" "$off"
gc fsck "$S" >/dev/null && ok "flipped back: fsck clean" || bad "flip back"

# ---- a flipped digit of a pin inside data.mdb ----------------------------
# (the issue: export --version 4 printed version 5's rows with exit 0)
gv=$((head - 2))
gc export "$S" --version "$gv" >"$T/gv.jsonl"
mdb=$S/manifest/data.mdb
cp "$mdb" "$T/data.mdb.orig"
# every copy of the record: stale copies sit in LMDB's free pages
python3 - "$mdb" "$gv" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b'"version":%s,' % sys.argv[2].encode())
while i >= 0:
    j = b.index(b'"node:Person":', i) + len(b'"node:Person":')
    b[j] ^= 0x01   # the first digit of the pin
    i = b.find(b'"version":%s,' % sys.argv[2].encode(), j)
open(p, "wb").write(bytes(b))
PY
if gc export "$S" --version "$gv" >"$T/out" 2>"$T/err"; then
	bad "export --version $gv with a flipped pin succeeded"
else
	grep -q "manifest record versions/$gv is corrupt: checksum mismatch" "$T/err" \
		&& ok "export --version $gv refuses the flipped pin, naming versions/$gv" \
		|| bad "pin message: $(cat "$T/err")"
fi
gc export "$S" >"$T/out" 2>/dev/null && cmp -s "$T/out" "$T/head.jsonl" \
	&& ok "the head still exports byte-identical" || bad "head export broken by another record's flip"
gc fsck "$S" >"$T/out" 2>&1 && bad "fsck missed the flipped pin" \
	|| { grep -q "versions/$gv is corrupt" "$T/out" && ok "fsck names versions/$gv" || bad "fsck: $(cat "$T/out")"; }
if mount_gfs "$S" "$M" -o ro; then
	timeout 30 cat "$M/versions/$gv/nodes/Person.jsonl" >/dev/null 2>"$T/err" \
		&& bad "versions/$gv served with a flipped pin" \
		|| { grep -q "Input/output error" "$T/err" && ok "versions/$gv: EIO" || bad "versions/$gv: $(cat "$T/err")"; }
	timeout 30 cat "$M/nodes/Person.jsonl" >"$T/out" 2>/dev/null \
		&& ok "the live view keeps serving" || bad "live view broken"
	timeout 30 cat "$M/versions/$head/edges/Knows.jsonl" >"$T/out" 2>/dev/null && cmp -s "$T/out" "$T/knows.jsonl" \
		&& ok "versions/$head keeps serving, byte-identical" || bad "versions/$head not served"
	umount_gfs "$M" || bad "unmount"
else
	bad "mount -o ro of a store with a flipped pin"
fi
cp "$T/data.mdb.orig" "$mdb"
gc fsck "$S" >/dev/null && ok "restored: fsck clean" || bad "restore"

# ---- LMDB itself: a flipped key, and a page header it trusts -------------
# (LMDB has no checksums; docs/format.md "What a flipped bit does")
mdbpatch() { # mdbpatch WHAT: patches the versions leaf page of data.mdb
	python3 - "$mdb" "$1" <<'PY'
import struct, sys
p, what = sys.argv[1], sys.argv[2]
b = bytearray(open(p, "rb").read())
ps = struct.unpack_from("<I", b, 16 + 24)[0]       # meta: dbs[FREE].md_pad
n = 0
# every leaf page holding version records (stale copies sit in free pages)
for o in range(2 * ps, len(b), ps):
    pgno, _, flags, lower, upper = struct.unpack_from("<QHHHH", b, o)
    if pgno != o // ps or not flags & 0x02 or b'"version":' not in b[o:o + ps]:
        continue
    if what == "key":   # version 3's key: 00..03 -> 00 00 01 .. 03
        k = b.find(b"\0" * 7 + b"\x03" + b'{"format":1,"version":3,', o, o + ps)
        if k < 0:
            continue
        b[k + 2] ^= 0x01
    elif what == "hide":  # mp_lower - 4: the page's last 2 records vanish
        struct.pack_into("<H", b, o + 12, lower - 4)
    else:               # mp_lower: LMDB now sees ~2000 nodes on the page
        struct.pack_into("<H", b, o + 12, 0x0ff0)
    n += 1
if not n:
    sys.exit("no leaf page of versions")
open(p, "wb").write(bytes(b))
PY
}
mdbpatch key
gc export "$S" --version 3 >"$T/out" 2>"$T/err" && bad "export of a version whose key flipped succeeded" \
	|| { grep -q "versions/3 is missing below the head" "$T/err" && ok "a flipped key: version 3 missing below the head is corruption" || bad "flipped key: $(cat "$T/err")"; }
gc fsck "$S" >"$T/out" 2>&1 && bad "fsck missed the flipped key" || ok "fsck reports the flipped key"
cp "$T/data.mdb.orig" "$mdb"
# a page header that hides the last records: every seal still verifies, the
# witnesses (meta/head, main's branch record: other B-trees) do not agree
mdbpatch hide
gc export "$S" >"$T/out" 2>"$T/err" && bad "export of the head with its records hidden succeeded" \
	|| { grep -qE "meta/head says $head|versions/$head, a branch head, is missing: the manifest is corrupt" "$T/err" &&
		ok "hidden last records: the head export names the lost records" || bad "hidden head: $(cat "$T/err")"; }
gc export "$S" --version "$head" >"$T/out" 2>"$T/err" && bad "export --version $head with its record hidden succeeded" \
	|| { grep -q "versions/$head is missing below the head $head" "$T/err" && ok "hidden record: versions/$head missing" || bad "hidden record: $(cat "$T/err")"; }
gc fsck "$S" >"$T/out" 2>&1 && bad "fsck missed the hidden records" || ok "fsck reports the hidden records"
cp "$T/data.mdb.orig" "$mdb"
mdbpatch lower
st=0
gc fsck "$S" >"$T/out" 2>"$T/err" || st=$?
[ "$st" = 1 ] && grep -q "manifest/data.mdb" "$T/err" \
	&& ok "LMDB faults on a page header: fsck exits 1 naming data.mdb, no signal" \
	|| bad "page header: fsck exit $st: $(head -c 300 "$T/err")"
st=0
gc export "$S" >"$T/out" 2>"$T/err" || st=$?
[ "$st" = 1 ] && grep -qE "manifest" "$T/err" && ok "export refuses the page, naming the manifest" \
	|| bad "page header: export exit $st: $(head -c 300 "$T/err")"
cp "$T/data.mdb.orig" "$mdb"

# ---- an LMDB meta page's transaction id: LMDB would open an older snapshot
# (bit 44 of the id on page 1: the case bitflip.py found, seed 2)
python3 - "$mdb" <<'PY'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
ps = struct.unpack_from("<I", b, 16 + 24)[0]
b[ps + 16 + 128 + 5] ^= 0x10
open(p, "wb").write(bytes(b))
PY
gc export "$S" >"$T/out" 2>"$T/err" && bad "export with a flipped meta-page id succeeded" \
	|| { grep -q "data.mdb' is corrupt: LMDB meta pages do not agree" "$T/err" && ok "a flipped meta-page id: refused, naming data.mdb" || bad "meta page: $(cat "$T/err")"; }
gc fsck "$S" >"$T/out" 2>&1 && bad "fsck missed the meta page" || ok "fsck reports the meta page"
cp "$T/data.mdb.orig" "$mdb"
gc fsck "$S" >/dev/null && ok "restored: fsck clean" || bad "restore after the meta page"

# ---- an LMDB meta page's last page number beyond its map size: LMDB says
# MDB_MAP_RESIZED for ever (make stress, seed 20261130, flip
# mdb-meta:manifest/data.mdb:143:2 hung export and fsck until killed)
python3 - "$mdb" <<'PY'
import struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
ps = struct.unpack_from("<I", b, 16 + 24)[0]
for page in (0, ps):             # whichever meta page is the newest
    b[page + 16 + 127] ^= 0x04   # mm_last_pg's top byte (offset 143)
open(p, "wb").write(bytes(b))
PY
st=0
with_timeout 60 "$GRAPHCTL" export "$S" --version 1 >"$T/out" 2>"$T/err" || st=$?
[ "$st" = 1 ] && grep -q "data.mdb' is corrupt: its newest meta page names a page beyond" "$T/err" \
	&& ok "a meta page's last page beyond the map: refused at once, naming data.mdb" \
	|| bad "meta last page: export exit $st (124 = hung): $(head -c 300 "$T/err")"
st=0
with_timeout 60 "$GRAPHCTL" fsck "$S" >"$T/out" 2>&1 || st=$?
[ "$st" = 1 ] && ok "fsck reports the meta page's last page" || bad "meta last page: fsck exit $st"
cp "$T/data.mdb.orig" "$mdb"

# ---- recovery never shares a damaged version into a compensation ---------
S2=$T/rstore
gc init "$S2" --schema "$top_srcdir/examples/people.pg" >/dev/null
gc load "$S2" --data "$top_srcdir/examples/people.jsonl" --quiet
printf '%s\n' '{"type":"Person","data":{"slug":"zz","name":"Z","created":"2026-01-01T00:00:00Z"}}' >"$T/z.jsonl"
if GRAPHFS_FAILPOINTS=commit/after_table=exit "$GRAPHCTL" load "$S2" --data "$T/z.jsonl" --quiet 2>/dev/null; then
	echo "# not a failpoint build: compensation case skipped"
else
	f2=$S2/tables/node:Person/2
	python3 -c "
import sys; p = sys.argv[1]
b = bytearray(open(p, 'rb').read()); b[140] ^= 0x04; open(p, 'wb').write(b)" "$f2"
	gc recover "$S2" >"$T/out" 2>"$T/err" && bad "recover compensated from a damaged version" \
		|| { grep -q "tables/node:Person/2" "$T/err" "$T/out" && ok "recover refuses to restore a damaged version, naming it" || bad "recover: $(cat "$T/out" "$T/err")"; }
	[ ! -e "$S2/tables/node:Person/4" ] && ok "no compensation written" || bad "a compensation was written"
	python3 -c "
import sys; p = sys.argv[1]
b = bytearray(open(p, 'rb').read()); b[140] ^= 0x04; open(p, 'wb').write(b)" "$f2"
	gc recover "$S2" --quiet && gc fsck "$S2" >/dev/null && ok "repaired: recover rolls back, fsck clean" || bad "recover after repair"
fi
finish
