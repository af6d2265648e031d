#!/usr/bin/env python3
"""mbench.py - helpers of bench/mount.sh (datasets, sampling, the commit
visibility probe, and the final table / results.json).

    mbench.py blob --bytes B --out FILE          Doc rows (~4 KB each) of bench/blob.pg
    mbench.py changed --nodes N --rows K --salt S --out FILE
                                                 K Item rows of bench/synth.py's graph,
                                                 spread evenly, each with a label that
                                                 names S; prints the last key
    mbench.py sample --nodes N --count C         C distinct node file paths, seeded
    mbench.py statdelta BEFORE AFTER             what changed in .graphfs/stats
    mbench.py visible --graphctl G --store S --data F --file P --marker M --stats ST
                                                 load F, then poll P until it holds M;
                                                 prints "visible_s load_s lag_ms_last"
    mbench.py restic-summary < restic --json     prints "new changed unmodified"
    mbench.py report DIR RESULTS_JSON            the table of DIR/rows.jsonl, samples
                                                 in DIR/s/KEY (one number a line)
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo "
         "lima mike november oscar papa quebec romeo sierra tango uniform "
         "victor whiskey xray yankee zulu").split()


def cmd_blob(a):
    """Doc rows with ~4 KB bodies of words, deterministic."""
    n = 0
    with open(a.out, "w", buffering=1 << 20) as out:
        i = 0
        while n < a.bytes:
            words = [WORDS[(i * 7 + k * 13 + (k * k * i) % 11) % len(WORDS)] for k in range(560)]
            line = '{"type":"Doc","data":{"key":"d%09d","body":"%s"}}\n' % (i, " ".join(words))
            out.write(line)
            n += len(line)
            i += 1
    print(i)


def item(i, salt):
    w = [WORDS[(i * 7 + salt + k * 5) % len(WORDS)] for k in range(6)]
    lab = ("v%d %s %d" % (salt, " ".join(w), i))[:48]
    return '{"type":"Item","data":{"key":"n%09d","n":%d,"label":"%s","score":%.3f}}\n' % (
        i, i, lab, ((i * 2654435761 + salt) % 1000) / 1000.0)


def cmd_changed(a):
    step = max(1, a.nodes // a.rows)
    last = None
    with open(a.out, "w") as out:
        for j in range(a.rows):
            i = (j * step + a.salt) % a.nodes
            out.write(item(i, a.salt))
            last = i
    print("n%09d" % last)


def cmd_sample(a):
    rng = random.Random(7)
    for i in rng.sample(range(a.nodes), min(a.count, a.nodes)):
        print("nodes/Item/n%09d.json" % i)


def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, prefix + k + "."))
        elif isinstance(v, (int, float)):
            out[prefix + k] = v
    return out


def cmd_statdelta(a):
    b = flat(json.load(open(a.before)))
    c = flat(json.load(open(a.after)))
    keep = ("requests.", "requests_versions.", "forgotten_versions", "listings_versions",
            "negative_entries")
    d = {k: c[k] - b.get(k, 0) for k in sorted(c)
         if k.startswith(keep) and c[k] - b.get(k, 0)
         and not k.endswith(("opendir", "releasedir"))}
    opendir = c.get("requests.opendir", 0) - b.get("requests.opendir", 0)
    if opendir:
        d["requests.opendir(+releasedir)"] = opendir
    print(json.dumps(d, separators=(",", ":")))


def cmd_visible(a):
    t0 = time.perf_counter()
    subprocess.run([a.graphctl, "load", a.store, "--data", a.data, "--mode", "merge", "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)
    t1 = time.perf_counter()
    marker = a.marker.encode()
    deadline = t1 + 30
    while True:
        try:
            with open(a.file, "rb") as f:
                if marker in f.read():
                    break
        except OSError:
            pass
        if time.perf_counter() > deadline:
            sys.exit("visible: %s did not show %s within 30 s" % (a.file, a.marker))
        time.sleep(0.0005)
    t2 = time.perf_counter()
    lag = json.load(open(a.stats)).get("notifier", {}).get("lag_ms_last", -1)
    print("%.6f %.6f %s" % (t2 - t1, t1 - t0, lag))


def cmd_restic_summary(a):
    s = {}
    for line in sys.stdin:
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if m.get("message_type") == "summary":
            s = m
    print(s.get("files_new", "?"), s.get("files_changed", "?"), s.get("files_unmodified", "?"))


def samples(d, key):
    try:
        with open(os.path.join(d, "s", key)) as f:
            return [float(x) for x in f.read().split()]
    except OSError:
        return []


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "s":
        return "%.3f s" % v if v < 10 else "%.1f s" % v
    if unit == "ms":
        return "%.1f ms" % v
    if unit in ("x", "%"):
        return "%.2f%s" % (v, unit)
    return "%g %s" % (round(v, 1), unit)


def check(cond, med, ref, bases, mbytes):
    """One condition: ratio<=X ratio>=X value<=X value>=X mbps>=X faster:KEY."""
    if cond.startswith("faster:"):
        b = bases.get(cond[7:])
        return None if med is None or b is None else med < b
    for op in ("<=", ">="):
        if op in cond:
            what, x = cond.split(op)
            x = float(x)
            if what == "ratio":
                v = None if med is None or not ref else med / ref
            elif what == "mbps":
                v = None if not med or not mbytes else mbytes / med
            else:
                v = med
            if v is None:
                return None
            return v <= x if op == "<=" else v >= x
    return None


def cmd_report(a):
    rows = [json.loads(l) for l in open(os.path.join(a.dir, "rows.jsonl"))]
    out = []
    print()
    line = "%-7s| %-46s| %-22s| %-40s| %-7s| %-28s| %s"
    print(line % ("#", "scenario", "graphfs (median)", "baselines (median)", "ratio", "target", "met?"))
    for r in rows:
        g = samples(a.dir, r["gfs"])
        med = statistics.median(g) if g else None
        bases = {}
        for name, key in r.get("bases", []):
            s = samples(a.dir, key)
            bases[name] = statistics.median(s) if s else None
        ref = bases.get(r.get("ref")) if r.get("ref") else None
        ratio = med / ref if med is not None and ref else None
        mb = r.get("bytes", 0) / 1e6 if r.get("bytes") else None
        verdicts = [check(c, med, ref, bases, mb) for c in r.get("conds", [])]
        met = "-" if not verdicts else ("?" if None in verdicts else
                                        ("yes" if all(verdicts) else "NO"))
        bt = ", ".join("%s %s" % (n, fmt(v, r["unit"])) for n, v in bases.items())
        gt = fmt(med, r["unit"])
        if mb and med:
            gt += " (%.0f MB/s)" % (mb / med)
        print(line % (r["id"], r["label"], gt, bt or "-", "x%.2f" % ratio if ratio else "-",
                      r.get("target", "-"), met))
        if r.get("note"):
            print("%-7s  %s" % ("", r["note"]))
        out.append({"id": r["id"], "scenario": r["label"], "unit": r["unit"],
                    "graphfs": {"median": med, "samples": g},
                    "baselines": {n: {"median": bases[n], "samples": samples(a.dir, k)}
                                  for n, k in r.get("bases", [])},
                    "ratio_to": r.get("ref"), "ratio": ratio, "bytes": r.get("bytes"),
                    "target": r.get("target"), "met": met, "note": r.get("note")})
    meta = json.load(open(os.path.join(a.dir, "meta.json")))
    with open(a.results, "w") as f:
        json.dump({"meta": meta, "rows": out}, f, indent=1)
        f.write("\n")
    print("\nresults: %s" % a.results)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("blob")
    p.add_argument("--bytes", type=int, required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("changed")
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--salt", type=int, required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("sample")
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p = sub.add_parser("statdelta")
    p.add_argument("before")
    p.add_argument("after")
    p = sub.add_parser("visible")
    for o in ("graphctl", "store", "data", "file", "marker", "stats"):
        p.add_argument("--" + o, required=True)
    sub.add_parser("restic-summary")
    p = sub.add_parser("report")
    p.add_argument("dir")
    p.add_argument("results")
    a = ap.parse_args()
    {"blob": cmd_blob, "changed": cmd_changed, "sample": cmd_sample,
     "statdelta": cmd_statdelta, "visible": cmd_visible,
     "restic-summary": cmd_restic_summary, "report": cmd_report}[a.cmd.replace("_", "-")](a)


if __name__ == "__main__":
    sys.exit(main())
