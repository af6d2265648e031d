#!/usr/bin/env python3
"""load_budget_diff.py - the load through its in-memory sort and through a
spilling one must agree (tests/load_spill.sh; docs/testing.md).

    load_budget_diff.py GRAPHCTL WORKDIR SEED STEPS

Two stores get the same random loads (nodes and edges with duplicates,
unique values, @card, missing endpoints, bad values; modes merge, append
and overwrite), one with the default sort budget and one with
GRAPHFS_LOAD_MEM_BYTES=64, so every load of the second spills runs of a
record or two.  After each load: the same exit status, the same message
(which error a load with several reports does not depend on the budget:
docs/decisions.md) and the same export.  Edges always carry an id, so no
generated id differs between the two.  Exit 1 naming seed and step, with
the input, at the first difference.
"""
import os
import random
import shutil
import subprocess
import sys

SCHEMA = """node Person { slug: String @key  name: String  age: I32?  email: String? @unique
  @range(age, 0..150) }
node Doc { text: String  tag: String? @unique }
edge Knows: Person -> Person @card(0..2) { since: Date? @unique(src, dst) }
edge Wrote: Person -> Doc @card(1..3)
"""

P = ["p%d" % i for i in range(12)]
D = ["d%d" % i for i in range(6)]


def line(rnd):
    r = rnd.random()
    if r < 0.4:
        d = {"slug": rnd.choice(P), "name": "n%d" % rnd.randrange(3)}
        if rnd.random() < 0.4:
            d["email"] = "e%d" % rnd.randrange(20)
        if rnd.random() < 0.01:
            d["age"] = 200
        return '{"type":"Person","data":%s}' % dump(d)
    if r < 0.55:
        d = {"id": rnd.choice(D), "text": "t"}
        if rnd.random() < 0.4:
            d["tag"] = "g%d" % rnd.randrange(10)
        return '{"type":"Doc","data":%s}' % dump(d)
    if r < 0.85:
        d = {"id": "k%d" % rnd.randrange(15)}
        if rnd.random() < 0.3:
            d["since"] = "2020-01-0%d" % rnd.randrange(1, 4)
        return '{"edge":"Knows","from":"%s","to":"%s","data":%s}' % (
            "zz" if rnd.random() < 0.02 else rnd.choice(P), rnd.choice(P), dump(d))
    return '{"edge":"Wrote","from":"%s","to":"%s","data":{"id":"w%d"}}' % (
        rnd.choice(P), "dx" if rnd.random() < 0.02 else rnd.choice(D), rnd.randrange(10))


def dump(d):
    return "{" + ",".join('"%s":%s' % (k, v if isinstance(v, int) else '"%s"' % v)
                          for k, v in d.items()) + "}"


def run(args, env):
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    return p.returncode, p.stdout, p.stderr


def main():
    g, work, seed, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rnd = random.Random(seed)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with open(os.path.join(work, "s.pg"), "w") as f:
        f.write(SCHEMA)
    envs = {"mem": dict(os.environ), "spill": dict(os.environ, GRAPHFS_LOAD_MEM_BYTES="64")}
    envs["mem"].pop("GRAPHFS_LOAD_MEM_BYTES", None)
    for name, env in envs.items():
        rc, _, err = run([g, "init", os.path.join(work, name), "--schema",
                          os.path.join(work, "s.pg")], env)
        if rc:
            sys.exit("init: " + err)
    fails = 0
    for step in range(steps):
        mode = rnd.choice(["merge", "merge", "append", "overwrite"])
        rows = [line(rnd) for _ in range(rnd.randrange(1, 16))]
        if step % 10 == 0:  # every node, so that most edges find theirs
            mode = "merge"
            rows = ['{"type":"Person","data":{"slug":"%s","name":"x"}}' % p for p in P] + \
                   ['{"type":"Doc","data":{"id":"%s","text":"x"}}' % d for d in D] + rows
        data = os.path.join(work, "in.jsonl")
        with open(data, "w") as f:
            f.write("\n".join(rows) + "\n")
        out = {}
        for name, env in envs.items():
            rc, _, err = run([g, "load", os.path.join(work, name), "--data", data,
                              "--mode", mode, "-q"], env)
            exp = run([g, "export", os.path.join(work, name)], env)[1]
            out[name] = (rc, err, exp)
            if rc:
                fails += 1
        if out["mem"] != out["spill"]:
            print("FAIL - seed %d step %d (--mode %s): in memory rc %d %r, spilled rc %d %r%s"
                  % (seed, step, mode, out["mem"][0], out["mem"][1], out["spill"][0],
                     out["spill"][1], "" if out["mem"][2] == out["spill"][2] else "; exports differ"))
            print("\n".join(rows))
            return 1
    print("ok - seed %d: %d loads agree in memory and spilled (%d refused)"
          % (seed, steps, fails // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
