#!/usr/bin/env python3
"""powercut.py - simulated power loss for graphfs writers (issue 8, req. 1).

Runs one writer under the LD_PRELOAD recorder (tests/powercut/record.c),
then builds the on-disk states a power cut at each point of its trace may
leave, and checks every distinct one:

  model   data (write, truncate) on a file becomes durable at an fsync or
          fdatasync of that file (any descriptor of the inode); a write
          through an O_DSYNC/O_SYNC descriptor is durable when it returns;
          a name operation (create, link, rename, unlink, mkdir, rmdir)
          becomes durable at an fsync of its directory (a rename: of both
          directories).  Anything not durable at the cut may be lost, in
          any subset, independently.
  states  per cut point: everything undurable lost, nothing lost, each
          single undurable operation lost, K seeded random subsets.
  check   copy into a scratch dir, drop manifest/lock.mdb (a reboot has no
          readers), `graphctl recover`, `graphctl fsck`, then: every version
          published before the writer exports byte-identical; the head
          exports exactly the old head or exactly the new one; at or after
          the acknowledgment the new head version is there.  A deterministic
          sample of states is mounted instead (graphfs runs the sweep) and
          every table is read through the mount.

Usage (tests/powercut/powercut.sh drives it):

  powercut.py --work DIR --name NAME --recorder record.so [--seed S]
      [--cuts N|all] [--k K] [--budget N] [--mounts N] [--preload LIBS]
      [--fp SPEC] [--expect-fail] [--replay CUT:LOST] -- WRITER ARGS...

WRITER ARGS may contain @S (the store path) and @M (a mount point).  The
store must already be at DIR/w/s (or absent, for init).  On a failure it
prints the state and a replay command; --replay CUT:LOST checks one state
(LOST = comma-separated effect indices, "all" or "none") and keeps it under
DIR/replay.
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time

DIR, FILE = "d", "f"


# ---- the trace ------------------------------------------------------------

def parse_log(path):
    """Yields (tag, fields, payload) per record."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        fields = data[pos:nl].decode("utf-8", "surrogateescape").split("\t")
        pos = nl + 1
        payload = b""
        if fields[0] == "W":
            n = int(fields[4])
            payload = data[pos:pos + n]
            if len(payload) != n:
                raise SystemExit("powercut: truncated trace record")
            pos += n
        yield fields[0], fields[1:], payload


class Inode:
    def __init__(self, kind, content=b""):
        self.kind = kind
        self.base = content          # durable content before the writer
        self.entries = {}            # directories: base entries name -> ino


class Trace:
    """The base tree plus the writer's effects, in order.

    effects[i] = (kind, args, durable_at) where durable_at is the index of
    the effect that made it durable (i itself for O_DSYNC writes), or None.
    """

    def __init__(self, base_dir, log, ignore_sync=""):
        self.ignore_sync = ignore_sync   # fsyncs treated as no-ops (tests)
        self.inodes = []
        self.names = {}              # inode -> a path it had (for messages)
        self.root = self._scan(base_dir, {}, "")
        self.effects = []
        self.ack = None
        self.unknown = []
        self._replay(log)

    def _new(self, kind, content=b""):
        self.inodes.append(Inode(kind, content))
        return len(self.inodes) - 1

    def _scan(self, path, seen, rel):
        st = os.lstat(path)
        if (st.st_dev, st.st_ino) in seen:
            return seen[(st.st_dev, st.st_ino)]
        if os.path.isdir(path):
            ino = self._new(DIR)
            seen[(st.st_dev, st.st_ino)] = ino
            self.names[ino] = rel
            for name in sorted(os.listdir(path)):
                self.inodes[ino].entries[name] = self._scan(
                    os.path.join(path, name), seen,
                    rel + "/" + name if rel else name)
            return ino
        with open(path, "rb") as f:
            ino = self._new(FILE, f.read())
        seen[(st.st_dev, st.st_ino)] = ino
        self.names[ino] = rel
        return ino

    # -- the sequential pass: resolves names and descriptors to inodes --

    def _lookup(self, rel):
        ino = self.root
        for part in [p for p in rel.split("/") if p not in ("", ".")]:
            ino = self.cur[ino].get(part)
            if ino is None:
                return None
        return ino

    def _parent(self, rel):
        head, _, name = rel.rpartition("/")
        d = self._lookup(head)
        if d is None or self.inodes[d].kind != DIR:
            raise ValueError("parent of '%s' unknown to the model" % rel)
        return d, name

    def _add(self, kind, args, dsync=False):
        self.effects.append([kind, args, len(self.effects) if dsync else None])

    def name(self, ino):
        """A path ino had, with a trailing / for directories ('' = root)."""
        if ino == 0:
            return ""
        p = self.names.get(ino, "<ino %d>" % ino)
        return p + "/" if self.inodes[ino].kind == DIR else p

    def _ns(self, d, name, ino, dirs=None):
        """A name change in directory d (name -> ino, None = removed)."""
        if ino is not None:
            self.names.setdefault(ino, self.name(d) + name)
        old = self.cur[d].get(name)
        if ino is None:
            self.cur[d].pop(name, None)
        else:
            self.cur[d][name] = ino
        self._add("ns", (d, name, ino, old, dirs or (d,)))

    def _replay(self, log):
        self.cur = {i: dict(n.entries) for i, n in enumerate(self.inodes)
                    if n.kind == DIR}
        fds = {}
        for tag, f, payload in parse_log(log):
            try:
                self._one(tag, f, payload, fds)
            except (ValueError, KeyError) as e:
                self.unknown.append("%s %s: %s" % (tag, "\t".join(f), e))
        del self.cur

    def _one(self, tag, f, payload, fds):
        pid = f[0]
        if tag == "O":
            fd, flags, rel = int(f[1]), int(f[2]), f[3]
            if flags & os.O_TMPFILE == os.O_TMPFILE:
                ino = self._new(FILE)
            else:
                ino = self._lookup(rel)
                if ino is None:
                    if not flags & os.O_CREAT:
                        raise ValueError("opened a name the model lacks")
                    d, name = self._parent(rel)
                    ino = self._new(FILE)
                    self._ns(d, name, ino)
                elif flags & os.O_TRUNC:
                    self._add("trunc", (ino, 0))
            fds[(pid, fd)] = (ino, bool(flags & (os.O_DSYNC | os.O_SYNC)))
        elif tag == "W":
            ino, dsync = fds[(pid, int(f[1]))]
            self._add("write", (ino, int(f[2]), payload), dsync)
        elif tag == "T":
            ino, _ = fds[(pid, int(f[1]))]
            self._add("trunc", (ino, int(f[2])))
        elif tag == "F":
            ino = fds[(pid, int(f[1]))][0]
            if not self.ignore_sync or (self.ignore_sync != "all" and
                                        not self.name(ino).endswith(self.ignore_sync)):
                self._sync(ino)
        elif tag == "S":
            self._sync(None)
        elif tag == "C":
            fds.pop((pid, int(f[1])), None)
        elif tag == "D":
            fds[(pid, int(f[2]))] = fds[(pid, int(f[1]))]
        elif tag in "LR":
            ino = self._lookup(f[1])
            if ino is None:
                raise ValueError("source name unknown to the model")
            dd, dn = self._parent(f[2])
            if tag == "L":
                self._ns(dd, dn, ino)
            else:
                sd, sn = self._parent(f[1])
                self._rename(sd, sn, dd, dn, ino)
        elif tag in "UY":
            d, name = self._parent(f[1])
            if name not in self.cur[d]:
                raise ValueError("removed a name the model lacks")
            self._ns(d, name, None)
        elif tag == "K":
            d, name = self._parent(f[1])
            ino = self._new(DIR)
            self.cur[ino] = {}
            self._ns(d, name, ino)
        elif tag == "A":
            if self.ack is None:
                self.ack = len(self.effects)
        else:
            raise ValueError("call the model does not know")

    def _rename(self, sd, sn, dd, dn, ino):
        old = self.cur[dd].get(dn)
        del self.cur[sd][sn]
        self.cur[dd][dn] = ino
        self._add("rename", (sd, sn, dd, dn, ino, old))

    def _sync(self, ino):
        """An fsync of ino (None = sync(2)) makes earlier effects durable."""
        here = len(self.effects)
        for e in self.effects:
            if e[2] is not None or e[0] == "sync":
                continue
            kind, a = e[0], e[1]
            if ino is None:
                hit = True
            elif kind in ("write", "trunc"):
                hit = a[0] == ino
            elif kind == "ns":
                hit = a[0] == ino
            else:   # rename: durable once both directories were synced
                e.append(ino)
                hit = ino in (a[0], a[2]) and \
                    {a[0], a[2]} <= set(x for x in e[3:] if x is not None)
            if hit:
                e[2] = here
        self.effects.append(["sync", (ino,), here])

    # -- states -------------------------------------------------------------

    def undurable(self, cut):
        """Indices of effects before cut that a power cut there may lose."""
        return [i for i in range(cut) if self.effects[i][0] != "sync" and
                (self.effects[i][2] is None or self.effects[i][2] >= cut)]

    def state(self, cut, lost):
        """(tree, digest): tree maps a relative path to None (a directory)
        or to its bytes; lock.mdb is left out (a reboot has no readers)."""
        ents = {i: dict(n.entries) for i, n in enumerate(self.inodes)
                if n.kind == DIR}
        data = {}
        for i in range(cut):
            if i in lost:
                continue
            kind, a = self.effects[i][0], self.effects[i][1]
            if kind == "ns":
                d, name, ino = a[0], a[1], a[2]
                if ino is None:
                    if ents.setdefault(d, {}).get(name) == a[3]:
                        ents[d].pop(name, None)
                else:
                    ents.setdefault(d, {})[name] = ino
                if ino is not None and self.inodes[ino].kind == DIR:
                    ents.setdefault(ino, {})
            elif kind == "rename":
                sd, sn, dd, dn, ino = a[:5]
                if ents.setdefault(sd, {}).get(sn) == ino:
                    del ents[sd][sn]
                ents.setdefault(dd, {})[dn] = ino
            elif kind in ("write", "trunc"):
                data.setdefault(a[0], []).append(i)
        tree = {}
        self._walk(self.root, "", ents, data, tree, set())
        h = hashlib.sha256()
        for p in sorted(tree):
            h.update(p.encode("utf-8", "surrogateescape") + b"\0")
            h.update(b"d" if tree[p] is None else
                     hashlib.sha256(tree[p]).digest())
        return tree, h.hexdigest()

    def _walk(self, d, prefix, ents, data, tree, onpath):
        onpath = onpath | {d}
        for name, ino in sorted(ents.get(d, {}).items()):
            p = prefix + name
            if p.endswith("manifest/lock.mdb") or ino in onpath:
                continue
            if self.inodes[ino].kind == DIR:
                tree[p] = None
                self._walk(ino, p + "/", ents, data, tree, onpath)
            else:
                tree[p] = self.content(ino, tuple(data.get(ino, ())))

    def content(self, ino, kept, _cache={}):
        key = (id(self), ino, kept)
        if key not in _cache:
            b = bytearray(self.inodes[ino].base)
            for i in kept:
                kind, a = self.effects[i][0], self.effects[i][1]
                if kind == "trunc":
                    del b[a[1]:]
                    b.extend(bytes(max(0, a[1] - len(b))))
                else:
                    off, p = a[1], a[2]
                    if len(b) < off:
                        b.extend(bytes(off - len(b)))
                    b[off:off + len(p)] = p
            _cache[key] = bytes(b)
        return _cache[key]


def materialize(tree, dest):
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    for p in sorted(tree):
        full = os.path.join(dest, p)
        if tree[p] is None:
            os.makedirs(full, exist_ok=True)
        else:
            with open(full, "wb") as f:
                f.write(tree[p])


# ---- running graphfs --------------------------------------------------------

class Tools:
    def __init__(self, args):
        self.gctl = os.environ["GRAPHCTL"]
        self.gfs = os.environ.get("GRAPHFS")
        self.tmo = 60 * int(os.environ.get("GRAPHFS_TEST_TIMEOUT_FACTOR", "1"))

    def run(self, *argv, env=None):
        try:
            p = subprocess.run(argv, capture_output=True, timeout=self.tmo,
                               env=env)
        except subprocess.TimeoutExpired:
            return 124, b"", b"timed out"
        return p.returncode, p.stdout, p.stderr

    def gc(self, *argv):
        return self.run(self.gctl, *argv)

    def versions(self, store):
        """{version: export bytes} of every graph version, and the head."""
        rc, out, err = self.gc("log", store, "--json")
        if rc:
            return None, "log: rc %d %s" % (rc, err.decode(errors="replace"))
        # a version gc removed keeps its log line ("removed": true) but no
        # longer exports
        vs = [r["version"] for r in (json.loads(l) for l in out.decode().splitlines() if l)
              if not r.get("removed")]
        ex = {}
        for v in vs:
            rc, out, err = self.gc("export", store, "--version", str(v))
            if rc:
                return None, "export --version %d: rc %d %s" % (
                    v, rc, err.decode(errors="replace").strip())
            ex[v] = out
        return (ex, max(vs) if vs else 0), None

    def mount_read(self, store, mnt):
        """Mounts store (the mount's sweep recovers it), reads every table
        file through the mount, unmounts.  Returns ({name: bytes}, err)."""
        os.makedirs(mnt, exist_ok=True)
        rc, _, err = self.run(self.gfs, store, mnt)
        if rc:
            return None, "graphfs: rc %d %s" % (rc, err.decode(errors="replace"))
        files, problem = {}, None
        try:
            for sub in ("nodes", "edges"):
                for n in sorted(os.listdir(os.path.join(mnt, sub))):
                    if n.endswith(".jsonl"):
                        with open(os.path.join(mnt, sub, n), "rb") as f:
                            files[sub + "/" + n] = f.read()
        except OSError as e:
            problem = "reading the mount: %s" % e
        finally:
            self.umount(mnt)
        return files, problem

    def umount(self, mnt):
        """Unmounts and polls (bounded, scaled) until the mount is gone."""
        r = self.run("fusermount3", "-u", mnt)[0]
        if r:
            self.run("umount", "-l", mnt)
        deadline = time.monotonic() + self.tmo / 3
        while os.path.ismount(mnt):
            if time.monotonic() > deadline:
                raise SystemExit("powercut: %s is still mounted" % mnt)
            time.sleep(0.01)


# ---- the checker ------------------------------------------------------------

class Checker:
    def __init__(self, args, tools, trace, old, old_heads, new):
        self.a, self.t, self.trace = args, tools, trace
        self.old, self.new = old, new      # (exports, head) or None (no store)
        self.old_heads = old_heads         # what the head may show before the ack
        self.scratch = os.path.join(args.work, "state")

    def check(self, cut, lost, tree, mount):
        materialize(tree, self.scratch)
        store = os.path.join(self.scratch, "s")
        acked = self.trace.ack is not None and cut >= self.trace.ack
        if not os.path.exists(os.path.join(store, "FORMAT")):
            if self.old is None and not acked:
                return None          # init cut before FORMAT: no store yet
            return "no FORMAT: the store is gone"
        if self.a.prepare and not acked:   # after the ack it must not need it
            rc, _, err = self.t.gc(self.a.prepare, store)
            if rc:
                return "%s: rc %d %s" % (self.a.prepare, rc,
                                         err.decode(errors="replace").strip())
        if mount:
            files, err = self.t.mount_read(store, os.path.join(self.a.work, "mnt"))
            if err:
                return err
            # The mount's sweep resolves every sidecar; orphans are left
            # to `graphctl recover` by design (DESIGN.md section 2).
            rc, out, err = self.t.gc("recover", store, "--list", "--json")
            if rc or json.loads(out or b"{}").get("pending"):
                return "the mount's sweep left sidecars: %s %s" % (
                    out.decode(errors="replace")[:300],
                    err.decode(errors="replace").strip())
            rc, _, err = self.t.gc("recover", store, "--quiet")
            if rc:
                return "recover after the mount: rc %d %s" % (
                    rc, err.decode(errors="replace").strip())
        else:
            rc, _, err = self.t.gc("recover", store, "--quiet")
            if rc:
                return "recover: rc %d %s" % (rc, err.decode(errors="replace").strip())
        rc, out, err = self.t.gc("fsck", store)
        if rc:
            return "fsck: rc %d %s %s" % (rc, out.decode(errors="replace").strip(),
                                          err.decode(errors="replace").strip())
        got, err = self.t.versions(store)
        if err:
            return err
        ex, head = got
        if self.old:
            for v, b in self.old[0].items():
                if v not in ex and self.a.may_remove and v not in self.new[0]:
                    continue  # gc: removed in the new state, maybe not yet
                if ex.get(v) != b:
                    return "version %d does not export as before the writer" % v
        heads = [self.new[0][self.new[1]]]
        if not acked:
            heads += self.old_heads
        if ex[head] not in heads:
            return "head version %d is neither the old graph nor the new one%s" % (
                head, " (acknowledged: must be the new one)" if acked else "")
        if acked and head < self.new[1]:
            return "acknowledged version %d is missing (head %d)" % (self.new[1], head)
        if acked and ex.get(self.new[1]) != self.new[0][self.new[1]]:
            return "acknowledged version %d differs" % self.new[1]
        if mount:
            return self.compare_mount(store, files)
        return None

    def compare_mount(self, store, files):
        for name, b in files.items():
            kind = name.split("/")[1][:-len(".jsonl")]
            rc, out, _ = self.t.gc("export", store, "--type", kind)
            if rc or out != b:
                return "the mount served %s differently from export" % name
        if not files:
            return "the mount showed no tables"
        return None


def reference(args, tools, base):
    """The graph before the writer: its versions and head (None if there was
    no store), and what its head may show before the ack: raw, and as
    recovery leaves it (a dead writer's confirmed operation rolls forward:
    never acknowledged, but not lost either).  With --prepare (upgrade) the
    old store is read after that command, as a user would have to."""
    if not os.path.exists(os.path.join(base, "s", "FORMAT")):
        return None, []
    rec = os.path.join(args.work, "base-copy")
    shutil.rmtree(rec, ignore_errors=True)
    shutil.copytree(base, rec)
    store = os.path.join(rec, "s")
    rc, err = 0, b""
    if args.prepare:
        rc, _, err = tools.gc(args.prepare, store)
    old, verr = tools.versions(store)
    if not rc:
        rc, _, err = tools.gc("recover", store, "--quiet")
    got, verr2 = tools.versions(store)
    if rc or verr or verr2:
        raise SystemExit("powercut: the store before the writer does not "
                         "read or recover: %s %s %s" % (err, verr, verr2))
    shutil.rmtree(rec)
    return old, [old[0][old[1]], got[0][got[1]]]


def plan(trace, args, rng):
    """Candidate (cut, lost, why) in priority order."""
    n = len(trace.effects)
    cuts = list(range(n + 1))
    first = [n] + ([trace.ack] if trace.ack not in (None, n) else [])
    rest = [c for c in cuts if c not in first]
    if args.cuts != "all":
        rest = sorted(rng.sample(rest, min(int(args.cuts), len(rest))))
    for c in first + rest:
        und = trace.undurable(c)
        yield c, frozenset(und), "all undurable lost"
        yield c, frozenset(), "nothing lost"
        for i in und:
            yield c, frozenset([i]), "lost %d only" % i
        for k in range(args.k):
            if und:
                sub = frozenset(i for i in und if rng.random() < 0.5)
                yield c, sub, "random subset %d" % k


def lost_version(why):
    """Whether a failure lost (or changed) a published or acknowledged
    version, as opposed to a store that recovery or fsck refuses."""
    return why.startswith(("version ", "acknowledged", "no FORMAT", "head "))


def lost_str(lost):
    return ",".join(str(i) for i in sorted(lost)) or "none"


def describe(trace, i):
    kind, a = trace.effects[i][0], trace.effects[i][1]
    n = trace.name
    if kind == "write":
        return "write of %d bytes at %d to %s" % (len(a[2]), a[1], n(a[0]))
    if kind == "trunc":
        return "truncate %s to %d" % (n(a[0]), a[1])
    if kind == "ns" and a[2] is None:
        return "unlink %s%s" % (n(a[0]), a[1])
    if kind == "ns":
        return "create name %s%s (of %s)" % (n(a[0]), a[1], n(a[2]))
    if kind == "rename":
        return "rename %s%s -> %s%s" % (n(a[0]), a[1], n(a[2]), a[3])
    return kind


def run_writer(args, tools):
    w = os.path.join(args.work, "w")
    base = os.path.join(args.work, "base")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(w, exist_ok=True)
    shutil.copytree(w, base, symlinks=True)
    lock = os.path.join(base, "s", "manifest", "lock.mdb")
    if os.path.exists(lock):
        os.unlink(lock)
    log = os.path.join(args.work, "trace.log")
    if os.path.exists(log):
        os.unlink(log)
    store, mnt = os.path.join(w, "s"), os.path.join(args.work, "wmnt")
    os.makedirs(mnt, exist_ok=True)
    argv = [x.replace("@S", store).replace("@M", mnt) for x in args.writer]
    env = dict(os.environ, GFS_PC_ROOT=w, GFS_PC_LOG=log,
               LD_PRELOAD=":".join(filter(None, [args.preload, args.recorder])))
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    if args.fp:
        env["GRAPHFS_FAILPOINTS"] = args.fp
    rc, out, err = tools.run(*argv, env=env)
    if rc:
        raise SystemExit("powercut: writer %s failed: rc %d %s" % (
            argv, rc, err.decode(errors="replace")))
    with open(log, "ab") as f:          # the acknowledgment: exit status 0
        f.write(b"A\t0\n")
    if "@M" in " ".join(args.writer):
        tools.umount(mnt)
    return base, log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--recorder", default="", help="record.so (not for --replay)")
    ap.add_argument("--preload", default="")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cuts", default="all")
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--budget", type=int, default=0, help="0 = no limit")
    ap.add_argument("--mounts", type=int, default=0)
    ap.add_argument("--fp", default="")
    ap.add_argument("--accept", action="append", default=[],
                    help="a file holding one more export the head may show "
                         "before the ack (concurrent writers: one of them "
                         "done)")
    ap.add_argument("--prepare", default="",
                    help="graphctl command run on every state before "
                         "recover (upgrade: an old-format state needs it)")
    ap.add_argument("--may-remove", action="store_true",
                    help="the writer removes graph versions (gc): an old "
                         "version may be gone, but none the new state keeps")
    ap.add_argument("--expect-fail", action="store_true")
    ap.add_argument("--ignore-sync", default="",
                    help="treat fsyncs of files whose path ends so (or 'all') "
                         "as no-ops: shows the checker notices")
    ap.add_argument("--replay", default="")
    ap.add_argument("writer", nargs="+")
    args = ap.parse_args()
    args.work = os.path.abspath(args.work)
    tools = Tools(args)

    if args.replay:
        base, log = os.path.join(args.work, "base"), os.path.join(args.work, "trace.log")
    else:
        base, log = run_writer(args, tools)
    trace = Trace(base, log, args.ignore_sync)
    if trace.unknown:
        print("%s: FAIL the model cannot follow the trace:" % args.name)
        for u in trace.unknown[:10]:
            print("  " + u)
        return 1
    final = os.path.join(args.work, "w")
    old, heads = reference(args, tools, base)
    for f in args.accept:
        with open(f, "rb") as fh:
            heads.append(fh.read())
    new, err = tools.versions(os.path.join(final, "s"))
    if err:
        print("%s: FAIL the writer's own result does not read: %s" % (args.name, err))
        return 1
    # The model must reproduce what the writer left when nothing is lost.
    tree, _ = trace.state(len(trace.effects), frozenset())
    real = {}
    Trace._scan_tree(final, "", real)
    if tree != real:
        diff = sorted(set(tree) ^ set(real)) or \
            sorted(p for p in tree if tree[p] != real.get(p))
        print("%s: FAIL the recorder missed calls: the replayed tree differs "
              "from the writer's at %s" % (args.name, diff[:5]))
        return 1
    checker = Checker(args, tools, trace, old, heads, new)
    if args.replay:
        c, l = args.replay.split(":")
        c = int(c)
        if not 0 <= c <= len(trace.effects):
            print("%s: cut %d is outside the trace (0..%d)" % (
                args.name, c, len(trace.effects)))
            return 2
        lost = frozenset(trace.undurable(c)) if l == "all" else \
            frozenset() if l in ("", "none") else frozenset(int(x) for x in l.split(","))
        tree, _ = trace.state(c, lost)
        why = checker.check(c, lost, tree, False)
        shutil.rmtree(os.path.join(args.work, "replay"), ignore_errors=True)
        shutil.copytree(checker.scratch, os.path.join(args.work, "replay"))
        for i in sorted(lost):
            print("  lost %d: %s" % (i, describe(trace, i)))
        print("%s: cut %d lost %s: %s (state kept in %s/replay)" % (
            args.name, c, lost_str(lost), why or "ok", args.work))
        return 1 if why else 0

    rng = random.Random(args.seed)
    seen, built, checked, fails, cuts = set(), 0, 0, [], set()
    # Mounted states are spread over the run: every stride-th one checked.
    stride = max(1, (args.budget or 60) // max(1, args.mounts))
    mounted = 0
    for cut, lost, why in plan(trace, args, rng):
        cuts.add(cut)
        built += 1
        tree, digest = trace.state(cut, lost)
        acked = trace.ack is not None and cut >= trace.ack
        key = (digest, acked)
        if key in seen:
            continue
        seen.add(key)
        if args.budget and checked >= args.budget:
            continue
        mount = mounted < args.mounts and checked % stride == 0
        mounted += mount
        bad = checker.check(cut, lost, tree, mount)
        checked += 1
        if bad:
            fails.append((cut, lost, why, bad, mount))
            if args.expect_fail:
                break
    print("%s: seed %d, %d ops recorded (ack after %s), %d cut points, "
          "%d states built, %d unique, %d checked (%d through a mount), "
          "%d failed, %d lost a version" % (
              args.name, args.seed, len(trace.effects), trace.ack, len(cuts),
              built, len(seen), checked, mounted,
              len(fails), sum(lost_version(f[3]) for f in fails)))
    for cut, lost, why, bad, mount in fails[:5]:
        print("  %s at cut %d (%s%s): %s" % ("VIOLATION" if not args.expect_fail
                                             else "caught", cut, why,
                                             ", mounted" if mount else "", bad))
        for i in sorted(lost)[:8]:
            print("    lost %d: %s" % (i, describe(trace, i)))
        print("  replay: " + replay_cmd(args) % (cut, lost_str(lost)))
    if args.expect_fail:
        return 0 if fails else 1
    return 1 if fails else 0


def replay_cmd(args):
    return ("GRAPHCTL=%s GRAPHFS=%s python3 %s --work %s --name %s%s%s "
            "--replay %%d:%%s -- %s" % (
                os.environ["GRAPHCTL"], os.environ.get("GRAPHFS", "graphfs"),
                os.path.abspath(__file__), args.work, args.name,
                " --prepare " + args.prepare if args.prepare else "",
                " --ignore-sync " + args.ignore_sync if args.ignore_sync else "",
                " ".join(args.writer)))


def _scan_tree(path, prefix, out):
    for name in sorted(os.listdir(path)):
        p, full = prefix + name, os.path.join(path, name)
        if p.endswith("manifest/lock.mdb"):
            continue
        if os.path.isdir(full) and not os.path.islink(full):
            out[p] = None
            _scan_tree(full, p + "/", out)
        else:
            with open(full, "rb") as f:
                out[p] = f.read()


Trace._scan_tree = staticmethod(_scan_tree)

if __name__ == "__main__":
    sys.exit(main())
