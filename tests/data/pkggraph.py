#!/usr/bin/env python3
"""pkggraph.py - the Debian package index as graphfs JSONL (tests/data/pkggraph.pg).

    pkggraph.py [--lists DIR] [--status FILE] [--max N] --out FILE --counts FILE

Reads every apt list DIR/*_Packages[.lz4|.gz|.xz|.bz2|.zst] (default
/var/lib/apt/lists); when there is none, the installed packages of dpkg's
status file (default /var/lib/dpkg/status).  Writes one JSON line per node and
edge to --out ("-" = stdout) and, to --counts, what a load of that file must
produce, counted here independently of graphfs:

    {"source":"lists","files":[...],"nodes":N,"edges":E,
     "per_type":{"node:Package":n,...},"defined":d,"virtual":v,"skipped":{...}}

Output is deterministic for the same input: nodes by type then id, edges by
type then source package then position in the field.  --max N keeps the first
N defined packages by name (and the names they reference) for a small graph.
"""
import argparse
import bz2
import glob
import gzip
import json
import lzma
import os
import re
import shutil
import subprocess
import sys

REL_FIELDS = [  # (deb822 field, edge type), in schema order
    ("Pre-Depends", "PreDepends"), ("Depends", "Depends"),
    ("Recommends", "Recommends"), ("Suggests", "Suggests"),
    ("Enhances", "Enhances"), ("Conflicts", "Conflicts"),
    ("Breaks", "Breaks"), ("Replaces", "Replaces"), ("Provides", "Provides"),
]
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")  # the schema's @check
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
ALT_RE = re.compile(
    r"^(?P<name>[^\s:(\[<]+)(?::(?P<arch>[a-z0-9-]+))?\s*"
    r"(?:\(\s*(?P<op><<|<=|>=|>>|=|<|>)\s*(?P<ver>[^\s)]+)\s*\))?\s*"
    r"(?:\[[^\]]*\]\s*)?(?:<[^>]*>\s*)*$")
# "<" and ">" are dpkg's deprecated spellings of "<=" and ">=".
OPS = {"<<": "lt", "<=": "le", "=": "eq", ">=": "ge", ">>": "gt",
       "<": "le", ">": "ge"}
PRIORITIES = {"required", "important", "standard", "optional", "extra"}
MULTI_ARCH = {"no", "same", "foreign", "allowed"}
MAINT_RE = re.compile(r"^\s*(?P<name>.*?)\s*<(?P<email>[^<>]+)>\s*$")


# ---- reading deb822 ---------------------------------------------------------

def open_text(path):
    """The text of a possibly compressed list file."""
    if path.endswith(".gz"):
        raw = gzip.open(path).read()
    elif path.endswith(".xz"):
        raw = lzma.open(path).read()
    elif path.endswith(".bz2"):
        raw = bz2.open(path).read()
    elif path.endswith((".lz4", ".zst")):
        raw = decompress_external(path)
    else:
        with open(path, "rb") as f:
            raw = f.read()
    return raw.decode("utf-8", errors="replace")


def decompress_external(path):
    """apt's own helper reads every compression apt writes; lz4cat/zstdcat
    are the fallback."""
    helper = "/usr/lib/apt/apt-helper"
    if os.access(helper, os.X_OK):
        cmd = [helper, "cat-file", path]
    else:
        tool = "lz4cat" if path.endswith(".lz4") else "zstdcat"
        if not shutil.which(tool):
            raise SystemExit("pkggraph: cannot decompress %s (no %s)" % (path, tool))
        cmd = [tool, path]
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout


def paragraphs(text):
    """Yields each deb822 paragraph as {field: value}; continuation lines are
    kept as "\\n"-joined lines with their leading space."""
    para, last = {}, None
    for line in text.split("\n"):
        if not line.strip():
            if para:
                yield para
            para, last = {}, None
        elif line[0] in " \t":
            if last is not None:
                para[last] += "\n" + line
        elif ":" in line:
            k, v = line.split(":", 1)
            last = k.strip()
            para[last] = v.strip()
    if para:
        yield para


# ---- dpkg version order (deb-version(7)) --------------------------------------

def _order(c):
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _cmp_part(a, b):
    i = j = 0
    while i < len(a) or j < len(b):
        diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not diff:
                diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if diff:
            return diff
    return 0


def _split_version(v):
    epoch, _, rest = v.partition(":") if ":" in v else ("0", "", v)
    upstream, _, rev = rest.rpartition("-") if "-" in rest else (rest, "", "")
    try:
        e = int(epoch or "0")
    except ValueError:
        e = 0
    return e, upstream, rev


def version_cmp(a, b):
    ea, ua, ra = _split_version(a)
    eb, ub, rb = _split_version(b)
    if ea != eb:
        return ea - eb
    return _cmp_part(ua, ub) or _cmp_part(ra, rb)


# ---- turning paragraphs into rows ---------------------------------------------

def collect(files, status_mode):
    """{name: paragraph}: per name the highest version (ties: first seen)."""
    best = {}
    for path in files:
        for p in paragraphs(open_text(path)):
            name = p.get("Package", "")
            if status_mode and p.get("Status", "").split()[-1:] != ["installed"]:
                continue
            cur = best.get(name)
            if cur is None or version_cmp(p.get("Version", "0"), cur.get("Version", "0")) > 0:
                best[name] = p
    return best


def description(p):
    d = p.get("Description")
    if d is None:
        return None
    lines = d.split("\n")
    out = [lines[0]]
    for l in lines[1:]:
        l = l[1:] if l[:1] in (" ", "\t") else l
        out.append("" if l == "." else l)
    return "\n".join(out)


def uint(s):
    return int(s) if s is not None and s.isdigit() else None


def package_row(name, p):
    d = {"name": name, "virtual": False}
    d["version"] = p.get("Version")
    d["architecture"] = p.get("Architecture")
    d["source"] = p.get("Source")
    d["section"] = p.get("Section")
    prio = p.get("Priority")
    d["priority"] = prio if prio in PRIORITIES else None
    ess = p.get("Essential")
    d["essential"] = {"yes": True, "no": False}.get(ess) if ess else None
    ma = p.get("Multi-Arch")
    d["multi_arch"] = ma if ma in MULTI_ARCH else None
    d["installed_size"] = uint(p.get("Installed-Size"))
    d["size"] = uint(p.get("Size"))
    d["maintainer"] = p.get("Maintainer")
    d["homepage"] = p.get("Homepage")
    d["description"] = description(p)
    tag = p.get("Tag")
    if tag is not None:
        d["tags"] = [t.strip() for t in tag.replace("\n", " ").split(",") if t.strip()]
    d["filename"] = p.get("Filename")
    sha = p.get("SHA256")
    d["sha256"] = sha if sha and SHA_RE.match(sha) else None
    return {k: v for k, v in d.items() if v is not None}


def relations(value, skipped):
    """Yields (clause, alt, name, op, version, arch) for each alternative."""
    value = value.replace("\n", " ")
    for ci, clause in enumerate(value.split(",")):
        if not clause.strip():
            continue
        for ai, alt in enumerate(clause.split("|")):
            m = ALT_RE.match(alt.strip())
            if not m or not NAME_RE.match(m.group("name")):
                skipped["relations"] += 1
                continue
            op = OPS.get(m.group("op")) if m.group("op") else None
            yield ci, ai, m.group("name"), op, m.group("ver"), m.group("arch")


def maintainer_of(field):
    m = MAINT_RE.match(field)
    if m:
        return m.group("email"), m.group("name") or m.group("email")
    return field.strip(), field.strip()


def build(best, limit):
    skipped = {"packages": 0, "relations": 0}
    defined = {}
    for name in sorted(best):
        if not NAME_RE.match(name):
            skipped["packages"] += 1
            continue
        if limit is not None and len(defined) >= limit:
            break
        defined[name] = best[name]
    nodes = {n: package_row(n, p) for n, p in defined.items()}
    maint, maint_edges = {}, []
    edges = {t: [] for _, t in REL_FIELDS}
    for name, p in defined.items():
        if p.get("Maintainer"):
            email, mname = maintainer_of(p["Maintainer"])
            m = maint.setdefault(email, {"email": email, "name": mname, "packages": 0})
            m["packages"] += 1
            maint_edges.append({"edge": "MaintainedBy", "from": name, "to": email,
                                "data": {"id": name}})
        for field, etype in REL_FIELDS:
            if field not in p:
                continue
            for ci, ai, target, op, ver, arch in relations(p[field], skipped):
                data = {"id": "%s#%d.%d" % (name, ci, ai), "clause": ci, "alt": ai}
                if op:
                    data["op"], data["version"] = op, ver
                if arch:
                    data["arch"] = arch
                edges[etype].append({"edge": etype, "from": name, "to": target,
                                     "data": data})
                if target not in nodes:
                    nodes[target] = {"name": target, "virtual": True}
    return nodes, maint, maint_edges, edges, skipped


def dump(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lists", default="/var/lib/apt/lists")
    ap.add_argument("--status", default="/var/lib/dpkg/status")
    ap.add_argument("--max", type=int, default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--counts", required=True)
    a = ap.parse_args()

    files = sorted(f for f in glob.glob(os.path.join(a.lists, "*_Packages*"))
                   if re.search(r"_Packages(\.(lz4|gz|xz|bz2|zst))?$", f))
    source = "lists"
    if not files:
        files, source = [a.status], "status"
        if not os.path.exists(a.status):
            raise SystemExit("pkggraph: no apt lists in %s and no %s" % (a.lists, a.status))
    best = collect(files, source == "status")
    nodes, maint, maint_edges, edges, skipped = build(best, a.max)

    per_type = {"node:Package": len(nodes), "node:Maintainer": len(maint),
                "edge:MaintainedBy": len(maint_edges)}
    out = sys.stdout if a.out == "-" else open(a.out, "w", encoding="utf-8")
    for name in sorted(nodes):
        out.write(dump({"type": "Package", "data": nodes[name]}) + "\n")
    for email in sorted(maint):
        out.write(dump({"type": "Maintainer", "data": maint[email]}) + "\n")
    for e in maint_edges:
        out.write(dump(e) + "\n")
    for _, etype in REL_FIELDS:
        per_type["edge:" + etype] = len(edges[etype])
        for e in edges[etype]:
            out.write(dump(e) + "\n")
    if out is not sys.stdout:
        out.close()

    n_nodes = sum(v for k, v in per_type.items() if k.startswith("node:"))
    counts = {"source": source, "files": files,
              "nodes": n_nodes, "edges": sum(per_type.values()) - n_nodes,
              "per_type": per_type,
              "defined": sum(1 for n in nodes.values() if not n["virtual"]),
              "virtual": sum(1 for n in nodes.values() if n["virtual"]),
              "skipped": skipped}
    with open(a.counts, "w") as f:
        f.write(json.dumps(counts, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
