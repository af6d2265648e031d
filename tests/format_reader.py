#!/usr/bin/env python3
"""format_reader.py - an independent reader of a graphfs store.

Written from docs/format.md alone (not from src/), to prove that document
precise: it resolves graph version N -> pins -> table-version files, walks
the copy-on-write B+trees, checks every checksum it reads, cross-checks the
secondary indexes against the rows, and prints the export in load format.

    format_reader.py STORE [--version N] [--type TYPE]   # like graphctl export
    format_reader.py STORE --table node:Person --file-version 3 --info
    format_reader.py STORE --index node:Person   # next and tver (format 3)

The manifest (LMDB) is read through `mdb_dump` (lmdb-utils, hex format), xxh3 through
libxxhash's XXH3_64bits (ctypes).  Exit status 0, or 1 with a message naming
the file and offset that did not verify.
"""
import ctypes
import ctypes.util
import json
import os
import re
import struct
import subprocess
import sys

# ---- xxh3 ----------------------------------------------------------------

_lib = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
_lib.XXH3_64bits.restype = ctypes.c_uint64
_lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def xxh3(b):
    return _lib.XXH3_64bits(bytes(b), len(b))


class Corrupt(Exception):
    pass


def u32(b, o):
    return struct.unpack_from("<I", b, o)[0]


def u64(b, o):
    return struct.unpack_from("<Q", b, o)[0]


def keycmp_key(k):
    # bytewise memcmp, a proper prefix first: exactly Python's bytes order
    return k


# ---- the manifest through mdb_dump (hex) -----------------------------------
# Not `mdb_dump -p`: lmdb-utils 0.9.24 prints a raw backslash unescaped there,
# so a value holding a backslash followed by two hex digits reads back wrong (the
# checksum suffixes of format 2 hit that in about 3% of records).

def _unhex(s):
    """Decodes one mdb_dump line (without its leading space)."""
    return bytes.fromhex(s)


def unseal(db, k, v):
    """A format-2 value: payload + u64 LE xxh3(key || payload) (§2)."""
    if len(v) < 8 or u64(v, len(v) - 8) != xxh3(k + v[:-8]):
        raise Corrupt("manifest record %s/%r does not verify (checksum)"
                      % (db, k))
    return v[:-8]


def manifest_format(store):
    meta = dict(lmdb_db(store, "meta", sealed=False))
    v = meta.get(b"manifest_format")
    if v is None:
        raise Corrupt("manifest has no meta/manifest_format")
    v = unseal("meta", b"manifest_format", v)
    if v != b"3":
        raise Corrupt("manifest format %r is not 3" % v)
    head = meta.get(b"head")
    recs = lmdb_db(store, "versions")
    if head is not None and recs and \
            int(unseal("meta", b"head", head)) != struct.unpack(">Q", recs[-1][0])[0]:
        raise Corrupt("the last graph version record is not meta/head")


def lmdb_db(store, name, sealed=True):
    """[(key bytes, value bytes)] of one named database, in key order;
    sealed: values checked and stripped of their checksum."""
    out = subprocess.run(["mdb_dump", "-s", name,
                          os.path.join(store, "manifest")],
                         check=True, stdout=subprocess.PIPE).stdout
    lines = out.decode("latin-1").split("\n")
    data = lines[lines.index("HEADER=END") + 1:lines.index("DATA=END")]
    items = [_unhex(l[1:]) for l in data]
    pairs = list(zip(items[0::2], items[1::2]))
    if sealed:
        pairs = [(k, unseal(name, k, v)) for k, v in pairs]
    return pairs


def table_index(store, table):
    """next[table] and the tver records of table (format 3, §2 of
    docs/format.md): key = table, NUL, u32 big-endian v."""
    t = table.encode()
    nxt = 1
    for k, v in lmdb_db(store, "next"):
        if k == t:
            nxt = int(v)
    recs = []
    for k, v in lmdb_db(store, "tver"):
        if len(k) != len(t) + 5 or not k.startswith(t + b"\0"):
            continue
        n = struct.unpack(">I", k[len(t) + 1:])[0]
        r = json.loads(v)
        if r["format"] != 1 or r["state"] not in (
                "reserved", "published", "retired", "void", "collected"):
            raise Corrupt("tver record %s/%d does not verify" % (table, n))
        if n >= nxt:
            raise Corrupt("tver record %s/%d is not below next %d"
                          % (table, n, nxt))
        r["v"] = n
        recs.append(r)
    return nxt, recs


def graph_version(store, n):
    """The graph-version record n (0 = the head), as a dict."""
    recs = lmdb_db(store, "versions")
    if not recs:
        raise Corrupt("manifest has no graph version")
    if n == 0:
        k, v = recs[-1]
    else:
        key = struct.pack(">Q", n)
        found = [v for k, v in recs if k == key]
        if not found:
            raise SystemExit("graph version %d does not exist" % n)
        k, v = key, found[0]
    rec = json.loads(v)
    if rec["format"] != 1 or struct.unpack(">Q", k)[0] != rec["version"]:
        raise Corrupt("graph version record %r does not verify" % k)
    if rec.get("removed"):  # a tombstone: gc may have collected its files
        raise SystemExit("graph version %d was removed by gc" % rec["version"])
    return rec


# ---- the schema: only the order of node and edge declarations ------------

def declared_types(text):
    """[(kind, name)] of node and edge declarations in declaration order."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return re.findall(r"\b(node|edge)\s+([A-Z][A-Za-z0-9_]*)", text)


# ---- table-version files -------------------------------------------------

HDR = 128


class Version:
    def __init__(self, store, table, n, cache):
        self.store, self.table, self.n, self.cache = store, table, n, cache
        self.path = os.path.join(store, "tables", table, str(n))
        with open(self.path, "rb") as f:
            self.data = f.read()
        self._header()
        self._footer()

    def fail(self, off, why):
        raise Corrupt("%s at offset %d: %s" % (self.path, off, why))

    def _header(self):
        h = self.data[:HDR]
        if len(h) < HDR or h[:8] != b"GFSTBL01":
            self.fail(0, "bad magic")
        if u64(h, 120) != xxh3(h[:120]):
            self.fail(120, "header checksum mismatch")
        if u32(h, 8) != 1 or u32(h, 12) != HDR:
            self.fail(8, "unknown format")
        if u32(h, 16) != self.n:
            self.fail(16, "header names version %d" % u32(h, 16))
        self.parent, self.content_of = u32(h, 20), u32(h, 24)
        self.compensation = bool(u32(h, 28) & 1)
        self.created_ns = u64(h, 32)
        self.op_id = h[40:66].decode("ascii")
        if h[66:120] != bytes(54):
            self.fail(66, "header padding is not zero")

    def _footer(self):
        d = self.data
        if d[-8:] != b"GFSTEND1":
            self.fail(len(d) - 8, "no end magic (torn file?)")
        flen = u32(d, len(d) - 24)
        f = d[len(d) - flen:]
        if u64(f, flen - 16) != xxh3(f[:flen - 16]):
            self.fail(len(d) - flen, "footer checksum mismatch")
        (self.rows, self.export_bytes, self.next_serial, self.lines_start,
         self.lines_end, self.pages_end) = struct.unpack_from("<6Q", f, 0)
        self.n_trees, self.n_unique = struct.unpack_from("<II", f, 48)
        if self.n_trees != 3 + self.n_unique or \
                flen != 56 + 16 * self.n_trees + 24:
            self.fail(len(d) - flen, "bad footer size")
        if self.lines_start != HDR or self.pages_end + flen != len(d):
            self.fail(len(d) - flen, "bad footer offsets")
        self.roots = []
        for t in range(self.n_trees):
            seg, ln, off = struct.unpack_from("<IIQ", f, 56 + 16 * t)
            self.roots.append((seg, off, ln))

    # A segment is the file of an older version of the same table.
    def seg(self, s):
        if s == 0 or s > self.n:
            self.fail(0, "reference to segment %d" % s)
        if s == self.n:
            return self.data
        key = (self.table, s)
        if key not in self.cache:
            p = os.path.join(self.store, "tables", self.table, str(s))
            with open(p, "rb") as fh:
                self.cache[key] = fh.read()
        return self.cache[key]

    def page(self, ref, tree, level):
        s, off, ln = ref
        p = self.seg(s)[off:off + ln]
        where = "%s/%d page at %d" % (self.table, s, off)
        if len(p) != ln or ln < 32:
            raise Corrupt(where + ": truncated")
        if u64(p, ln - 8) != xxh3(p[:ln - 8]):
            raise Corrupt(where + ": page checksum mismatch")
        kind, ptree, plevel, pad, n, plen, pseg, poff = \
            struct.unpack_from("<BBBBIIIQ", p, 0)
        if (plen, pseg, poff) != (ln, s, off) or ptree != tree or pad:
            raise Corrupt(where + ": not the page referenced")
        if kind != (1 if plevel == 0 else 2) or \
                (level is not None and plevel != level):
            raise Corrupt(where + ": bad kind or level")
        ents, o = [], 24
        for _ in range(n):
            kl = u32(p, o)
            k = p[o + 4:o + 4 + kl]
            o += 4 + kl
            if kind == 1:
                vl = u32(p, o)
                ents.append((k, p[o + 4:o + 4 + vl]))
                o += 4 + vl
            else:
                cs, coff, cl, cnt, byt = struct.unpack_from("<IQIQQ", p, o)
                ents.append((k, (cs, coff, cl), cnt, byt))
                o += 32
        if o != ln - 8:
            raise Corrupt(where + ": entries do not fill the page")
        return kind, plevel, ents

    def walk(self, tree):
        """Yields (key, value) of one tree in key order; checks aggregates."""
        if self.roots[tree][0] == 0:
            return
        yield from self._walk(self.roots[tree], tree, None, [0, 0])

    def _walk(self, ref, tree, level, agg):
        kind, lvl, ents = self.page(ref, tree, level)
        if kind == 1:
            for k, v in ents:
                agg[0] += 1
                if tree == 0:
                    agg[1] += u32(v, 36)
                yield k, v
            return
        for k, child, cnt, byt in ents:
            sub = [0, 0]
            first = True
            for ck, cv in self._walk(child, tree, lvl - 1, sub):
                if first and ck != k:
                    raise Corrupt("%s: child's first key differs" % self.path)
                first = False
                yield ck, cv
            if sub != [cnt, byt if tree == 0 else 0]:
                raise Corrupt("%s: child aggregates differ" % self.path)
            agg[0] += cnt
            agg[1] += byt


def record(v):
    (serial, changed, flags, h, seg, seg_off, line_len, data_off, data_len,
     src_len, dst_len, n_ukeys) = struct.unpack_from("<QIIQIQIIIIII", v, 0)
    o = 60
    src, dst = v[o:o + src_len], v[o + src_len:o + src_len + dst_len]
    o += src_len + dst_len
    ukeys = []
    for _ in range(n_ukeys):
        ln = u32(v, o)
        ukeys.append(v[o + 4:o + 4 + ln])
        o += 4 + ln
    if o != len(v):
        raise Corrupt("row record has trailing bytes")
    return dict(serial=serial, changed=changed, flags=flags, hash=h, seg=seg,
                seg_off=seg_off, line_len=line_len, data_off=data_off,
                data_len=data_len, edge=bool(flags & 0x80000000),
                pair_first=bool(flags & 1), src=src, dst=dst, ukeys=ukeys)


def esc(b):
    return b.replace(b"\x00", b"\x00\xff")


def table_export(v):
    """The export bytes of one table version; cross-checks every index."""
    out = bytearray()
    rows = 0
    want = {t: set() for t in range(1, v.n_trees)}
    last = None
    for k, val in v.walk(0):
        if last is not None and not last < k:
            raise Corrupt("%s: ids out of order" % v.path)
        last = k
        r = record(val)
        line = v.seg(r["seg"])[r["seg_off"]:r["seg_off"] + r["line_len"]]
        if xxh3(line) != r["hash"] or not line.endswith(b"\n"):
            raise Corrupt("%s: line of %r does not verify" % (v.path, k))
        if not (1 <= r["changed"] <= v.n and 1 <= r["serial"] < v.next_serial):
            raise Corrupt("%s: row %r out of range" % (v.path, k))
        data = line[r["data_off"]:r["data_off"] + r["data_len"]]
        if not (data.startswith(b"{") and data.endswith(b"}")):
            raise Corrupt("%s: data span of %r is not an object" % (v.path, k))
        if r["edge"]:
            sep = b"\x00\x01"
            want[1].add((esc(r["src"]) + sep + esc(r["dst"]) + sep + esc(k), k))
            want[2].add((esc(r["dst"]) + sep + esc(r["src"]) + sep + esc(k), k))
        for i, uk in enumerate(r["ukeys"]):
            if uk:
                want[3 + i].add((uk, k))
        out += line
        rows += 1
    if rows != v.rows or len(out) != v.export_bytes:
        raise Corrupt("%s: footer counts differ from the tree" % v.path)
    for t in range(1, v.n_trees):
        got = list(v.walk(t))
        if got != sorted(got) or set(got) != want[t]:
            raise Corrupt("%s: index tree %d differs from the rows" % (v.path, t))
    return bytes(out)


# ---- the store -----------------------------------------------------------

def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store")
    ap.add_argument("--version", type=int, default=0)
    ap.add_argument("--type")
    ap.add_argument("--table")
    ap.add_argument("--file-version", type=int)
    ap.add_argument("--info", action="store_true")
    ap.add_argument("--index")
    a = ap.parse_args(argv)
    with open(os.path.join(a.store, "FORMAT"), "rb") as f:
        fmt = f.read().decode("latin-1")
    m = re.match(r"(graphfs-store 3\nid [0-7][0-9A-HJKMNP-TV-Z]{25}\n)"
                 r"check ([0-9a-f]{16})\n\Z", fmt)
    if not m or "%016x" % xxh3(m.group(1).encode("latin-1")) != m.group(2):
        raise Corrupt("FORMAT is not a valid format-3 store: %r" % fmt)
    manifest_format(a.store)
    if a.index:
        nxt, recs = table_index(a.store, a.index)
        print(json.dumps(dict(next=nxt)))
        for r in recs:
            print(json.dumps(dict(v=r["v"], state=r["state"],
                                  first_gv=r["first_gv"],
                                  compensation=r["compensation"])))
        return 0
    cache = {}
    out = sys.stdout.buffer
    if a.table:
        v = Version(a.store, a.table, a.file_version, cache)
        body = table_export(v)
        if a.info:
            print(json.dumps(dict(version=v.n, parent=v.parent,
                                  content_of=v.content_of,
                                  compensation=v.compensation, op_id=v.op_id,
                                  rows=v.rows, export_bytes=v.export_bytes,
                                  next_serial=v.next_serial,
                                  n_unique=v.n_unique)))
        else:
            out.write(body)
        return 0
    gv = graph_version(a.store, a.version)
    sid = gv["schema"]
    with open(os.path.join(a.store, "schemas", sid + ".pg"), "rb") as f:
        text = f.read()
    if "%016x" % xxh3(text) != sid:
        raise Corrupt("schema file %s does not match its id" % sid)
    types = declared_types(text.decode("utf-8"))
    if a.type and a.type not in [n for _, n in types]:
        raise SystemExit("no type %r" % a.type)
    for kind in ("node", "edge"):
        for k, name in types:
            if k != kind or (a.type and name != a.type):
                continue
            table = "%s:%s" % (k, name)
            out.write(table_export(Version(a.store, table, gv["tables"][table],
                                           cache)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Corrupt as e:
        print("format_reader: corrupt: %s" % e, file=sys.stderr)
        sys.exit(1)
