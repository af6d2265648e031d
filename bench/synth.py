#!/usr/bin/env python3
"""synth.py - a synthetic graph for the benchmarks (bench/synth.pg).

    synth.py --nodes N [--edges-per-node F] --out FILE
    synth.py --nodes N --changed K [--clustered] [--salt S] --out FILE
                                    # K changed Item rows, for a merge;
                                    # salts 1..25 give 25 different changes

Item keys are "n%09d" so id order is numeric order; edge ids "e%010d".  Each
Item has a ~48-byte label; each Link points from item i to a pseudo-random
item.  Deterministic: same arguments, same bytes.
"""
import argparse
import sys

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo "
         "lima mike november oscar papa quebec romeo sierra tango uniform "
         "victor whiskey xray yankee zulu").split()


def label(i, salt=0):
    w = [WORDS[(i * 7 + salt + k * 5) % len(WORDS)] for k in range(6)]
    return ("%s %d" % (" ".join(w), i))[:48]


def item(i, salt=0):
    return ('{"type":"Item","data":{"key":"n%09d","n":%d,"label":"%s","score":%.3f}}\n'
            % (i, i, label(i, salt), ((i * 2654435761 + salt) % 1000) / 1000.0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, required=True)
    ap.add_argument("--edges-per-node", type=float, default=1.5)
    ap.add_argument("--changed", type=int, default=0)
    ap.add_argument("--clustered", action="store_true",
                    help="change K consecutive items, not K spread evenly")
    ap.add_argument("--salt", type=int, default=1,
                    help="with --changed: which change (1..25; 0 = the original rows)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    n = a.nodes
    with open(a.out, "w", buffering=1 << 20) as out:
        if a.changed:
            step = 1 if a.clustered else max(1, n // a.changed)
            first = n // 2 if a.clustered else 0
            out.writelines(item(i, salt=a.salt) for i in range(first, first + step * a.changed, step) if i < n)
            return
        out.writelines(item(i) for i in range(n))
        m = int(n * a.edges_per_node)
        out.writelines('{"edge":"Link","from":"n%09d","to":"n%09d","data":{"id":"e%010d","w":%d}}\n'
                       % (j % n, (j * 40503 + 17) % n, j, j % 100) for j in range(m))


if __name__ == "__main__":
    sys.exit(main())
