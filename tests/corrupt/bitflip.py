#!/usr/bin/env python3
"""bitflip.py - single-bit flips in every file kind of a store (issue 8).

    bitflip.py GRAPHCTL EXAMPLES_DIR WORKDIR [--seed S] [--flips N]
               [--verbose] [--replay KIND:FILE:OFFSET:BIT]

Builds a store with several graph versions (and, in a failpoint build, a
compensation and an audit record), records the export of every version,
then flips one bit at a time - FORMAT, schemas/*.pg, table-version files
(header, lines, pages, footer) and manifest/data.mdb - at offsets drawn
from a seeded generator (the seed is printed; --replay repeats one flip).
After each flip, with the bit flipped back before the next one:

  * `graphctl export --version N` of every version exits 0 with exactly
    the recorded bytes, or exits 1 with a message naming the file or the
    manifest key - never other bytes with exit 0, never a signal;
  * `graphctl fsck` reports a problem for every flip in a file whose every
    byte is covered by a checksum (FORMAT, schemas, table files), and for
    every data.mdb flip that changed what an export reads; it never dies.

Flips in data.mdb (kinds mdb-meta, mdb-page, mdb-free) land anywhere in
LMDB's pages: values (sealed by our
checksum), keys, page headers, free pages.  LMDB itself has no checksums;
what such flips do is counted by outcome and printed (docs/format.md, "What
a flipped bit does").  Exit 0 when no flip broke a rule, else 1.
"""
import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time

NAMES = re.compile(r"(tables/[^ ']+/\d+|manifest record [a-z_]+/|"
                   r"FORMAT|schemas/[0-9a-f]+\.pg|manifest)")
TIMEOUT = 60 * int(os.environ.get("GRAPHFS_TEST_TIMEOUT_FACTOR", "1"))


def run(argv, env=None):
    e = dict(os.environ)
    e.pop("GRAPHFS_FAILPOINTS", None)
    if env:
        e.update(env)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=e, timeout=TIMEOUT)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def build_store(gc, ex, work):
    s = os.path.join(work, "store")
    shutil.rmtree(s, ignore_errors=True)
    os.makedirs(work, exist_ok=True)

    def load(text, mode="merge", env=None):
        f = os.path.join(work, "in.jsonl")
        with open(f, "w") as fh:
            fh.write(text)
        return run([gc, "load", s, "--data", f, "--mode", mode, "--quiet"],
                   env)[0]

    assert run([gc, "init", s, "--schema", os.path.join(ex, "people.pg")])[0] == 0
    with open(os.path.join(ex, "people.jsonl")) as fh:
        assert load(fh.read()) == 0
    people = "".join(json.dumps({"type": "Person", "data": {
        "slug": "p%03d" % i, "name": "Person %d" % i,
        "created": "2026-01-01T00:00:00Z", "age": i % 100}}) + "\n"
        for i in range(300))
    assert load(people, "append") == 0
    knows = "".join(json.dumps({"edge": "Knows", "from": "p%03d" % i,
                                "to": "p%03d" % ((i * 7 + 1) % 300)}) + "\n"
                    for i in range(0, 300, 2))
    assert load(knows, "overwrite") == 0
    crash = json.dumps({"type": "Person", "data": {
        "slug": "zed", "name": "Zed", "created": "2026-02-02T00:00:00Z"}}) + "\n"
    # a failpoint build dies here and recovery writes a compensation and an
    # audit record; a plain build just loads it
    if load(crash, env={"GRAPHFS_FAILPOINTS": "commit/after_table=exit"}):
        assert run([gc, "recover", s, "--quiet"])[0] == 0
    assert load(json.dumps({"type": "Person", "data": {
        "slug": "p007", "name": "Seven", "created": "2026-01-01T00:00:00Z",
        "age": 77}}) + "\n") == 0
    return s


def versions(gc, s):
    rc, out, err = run([gc, "log", s, "--json"])
    assert rc == 0, err
    return [json.loads(l)["version"] for l in out.decode().splitlines()]


def table_regions(path):
    """{kind: (lo, hi)} of one table-version file (docs/format.md §3)."""
    b = open(path, "rb").read()
    flen = struct.unpack_from("<I", b, len(b) - 24)[0]
    foot = len(b) - flen
    lines_end, pages_end = struct.unpack_from("<QQ", b, foot + 32)
    r = {"header": (0, 128), "footer": (foot, len(b))}
    if lines_end > 128:
        r["lines"] = (128, lines_end)
    if pages_end > lines_end:
        r["pages"] = (lines_end, pages_end)
    return r


def targets(s):
    """[(kind, relpath, lo, hi)]: the byte ranges flips are drawn from."""
    t = [("FORMAT", "FORMAT", 0, os.path.getsize(os.path.join(s, "FORMAT")))]
    for f in sorted(os.listdir(os.path.join(s, "schemas"))):
        p = os.path.join("schemas", f)
        t.append(("schema", p, 0, os.path.getsize(os.path.join(s, p))))
    for tb in sorted(os.listdir(os.path.join(s, "tables"))):
        for v in sorted(os.listdir(os.path.join(s, "tables", tb))):
            if not v.isdigit():
                continue
            p = os.path.join("tables", tb, v)
            for kind, (lo, hi) in table_regions(os.path.join(s, p)).items():
                t.append(("table-" + kind, p, lo, hi))
    # data.mdb by LMDB page: the two meta pages, pages in use (not all
    # zero), the rest; page size from the meta page (docs/format.md §2)
    mdb = os.path.join("manifest", "data.mdb")
    b = open(os.path.join(s, mdb), "rb").read()
    ps = 4096
    for p in range(0, len(b), ps):
        if p < 2 * ps:      # magic .. txnid: what LMDB reads of a meta page
            t.append(("mdb-meta", mdb, p, p + 160))
        elif any(b[p:p + ps]):
            t.append(("mdb-page-header", mdb, p, p + 16))
            # the bytes in use: pointers, node headers, keys, values
            used = [o for o in range(p + 16, min(p + ps, len(b))) if b[o]]
            t.append(("mdb-page", mdb, used, None))
        else:
            t.append(("mdb-free", mdb, p, min(p + ps, len(b))))
    return t


def flip(path, off, bit):
    with open(path, "r+b") as f:
        f.seek(off)
        c = f.read(1)[0]
        f.seek(off)
        f.write(bytes([c ^ (1 << bit)]))


class Checker:
    def __init__(self, gc, s, verbose):
        self.gc, self.s, self.verbose = gc, s, verbose
        self.vers = versions(gc, s)
        self.base = {v: run([gc, "export", s, "--version", str(v)])[1]
                     for v in self.vers}
        self.problems = []
        self.stats = {}

    def count(self, kind, what):
        k = self.stats.setdefault(kind, {})
        k[what] = k.get(what, 0) + 1

    def bad(self, where, msg):
        self.problems.append("%s: %s" % (where, msg))
        print("FAIL - %s: %s" % (where, msg), flush=True)

    def one(self, kind, rel, off, bit):
        where = "%s:%s:%d:%d" % (kind, rel, off, bit)
        path = os.path.join(self.s, rel)
        before = hashlib.sha256(open(path, "rb").read()).digest()
        flip(path, off, bit)
        try:
            changed = self.exports(where, kind)
            self.fsck(where, kind, changed)
        finally:
            flip(path, off, bit)
        if hashlib.sha256(open(path, "rb").read()).digest() != before:
            self.bad(where, "file not restored (a read-only command wrote it)")

    def exports(self, where, kind):
        changed = False
        for v in self.vers:
            rc, out, err = run([self.gc, "export", self.s, "--version", str(v)])
            if rc < 0 or rc >= 128:
                self.bad(where, "export --version %d died (%s)" % (v, signal.Signals(-rc).name if rc < 0 else rc))
                changed = True
            elif rc == 0 and out != self.base[v]:
                self.bad(where, "export --version %d printed other bytes with exit 0" % v)
                changed = True
            elif rc != 0:
                changed = True
                if not NAMES.search(err):
                    self.bad(where, "export --version %d failed without naming a file or key: %r" % (v, err[:200]))
        self.count(kind, "refused" if changed else "served-identical")
        return changed

    def fsck(self, where, kind, changed):
        rc, out, err = run([self.gc, "fsck", self.s])
        if rc < 0 or rc >= 128:
            self.bad(where, "fsck died (%s)" % rc)
            return
        must = changed or not kind.startswith("mdb-")
        if rc == 0 and must:
            self.bad(where, "fsck reported nothing")
        if rc != 0:
            self.count(kind, "fsck-reported")
            if self.verbose:
                print("   fsck: %s" % (out.decode(errors="replace").strip()
                                       or err.strip()).splitlines()[0][:160])


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("graphctl")
    ap.add_argument("examples")
    ap.add_argument("work")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--flips", type=int, default=60)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--replay")
    a = ap.parse_args(argv)
    seed = a.seed if a.seed is not None else int(time.time()) % 100000
    print("# bitflip seed %d (replay all: --seed %d --flips %d)" %
          (seed, seed, a.flips), flush=True)
    s = build_store(a.graphctl, a.examples, a.work)
    c = Checker(a.graphctl, s, a.verbose)
    print("# store: %d graph versions" % len(c.vers), flush=True)
    if a.replay:
        kind, rel, off, bit = a.replay.rsplit(":", 3)
        c.one(kind, rel, int(off), int(bit))
    else:
        rng = random.Random(seed)
        t = targets(s)
        kinds = sorted({k for k, _, _, _ in t})
        for i in range(a.flips):
            # every kind in turn, then a file of that kind and an offset
            kind = kinds[i % len(kinds)]
            kind, rel, lo, hi = rng.choice([x for x in t if x[0] == kind])
            off = rng.choice(lo) if hi is None else rng.randrange(lo, hi)
            bit = rng.randrange(8)
            if a.verbose:
                print("flip %s:%s:%d:%d" % (kind, rel, off, bit), flush=True)
            c.one(kind, rel, off, bit)
    for kind in sorted(c.stats):
        print("# %-14s %s" % (kind, " ".join("%s=%d" % kv for kv in
                                             sorted(c.stats[kind].items()))))
    print("# %d problem(s); replay one with --replay KIND:FILE:OFFSET:BIT"
          % len(c.problems))
    return 1 if c.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
