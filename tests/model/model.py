#!/usr/bin/env python3
"""tests/model/model.py - randomized histories checked against a reference model.

Issue 12, requirement 3.  Each *sequence* starts from a fresh store and runs
a list of random operations against the real programs (graphctl, and a real
graphfs mount for writes through files) and, independently, against the
small in-memory model of the graph below.  The model is written from
docs/format.md (canonical export lines, order), docs/semantics.md (what a
write through the mount does, merge, schema changes, compact and gc),
docs/mount.md (layout, file-name encoding, edge file names) and DESIGN.md
section 1 (load modes, validation) - never from the C code.

After every step, every graph version the model says exists is compared:
`graphctl export --version N` byte for byte, and versions/N/ in the mount
(every name listed in every directory, every file's bytes, every link's
target, manifest.json's version/branch/parents/op), plus the live root view
(main's head) and each branch's .jsonl files, `graphctl log --json` (one
line per version, removed ones reduced) and `graphctl branch list`.
Versions gc removed must be gone (export fails, versions/N is ENOENT).

Operations whose outcome the documentation leaves open (a writer killed at
a failpoint or by SIGKILL: old or new state; compact: a new version or
none) give the model several candidate states; the observed version count,
removed set and branch heads choose one, which must then agree in full.

Usage:
  model.py [--seed S] [--sequences N] [--seconds T] [--steps MIN-MAX]
  model.py --seed S --keep 0,3,7     replay the ops of sequence S kept by a
                                     shrink (printed on failure)
Environment: GRAPHCTL, GRAPHFS (programs), GRAPHFS_TEST_TIMEOUT_FACTOR.
Exit: 0 no divergence, 1 a divergence (seed and replay printed), 77 skip.
"""

import argparse
import copy
import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

FACTOR = int(os.environ.get('GRAPHFS_TEST_TIMEOUT_FACTOR', '1') or 1)
GRAPHCTL = os.environ.get('GRAPHCTL', 'graphctl')
GRAPHFS = os.environ.get('GRAPHFS', 'graphfs')
FP_EXIT = 86

# ---------------------------------------------------------------------------
# Schemas: the text given to graphctl, and the model's own reading of it.
# A property: (name, kind, required, extra).  The key property comes first.

S0_TEXT = """\
node Person { slug: String @key  name: String?  age: I32? }
node Company { name: String @key  size: U32? }
edge Knows: Person -> Person { since: Date? }
edge WorksAt: Person -> Company { role: enum(dev, ops)? }
"""
S1_TEXT = """\
node Person { slug: String @key  name: String?  age: I32?  nick: String? }
node Company { name: String @key  size: U32? }
node Tag { t: String @key }
edge Knows: Person -> Person { since: Date? }
edge WorksAt: Person -> Company { role: enum(dev, ops)? }
"""
S3_TEXT = """\
node Person { slug: String @key  name: String?  age: I32 }
node Company { name: String @key  size: U32? }
edge Knows: Person -> Person { since: Date? }
edge WorksAt: Person -> Company { role: enum(dev, ops)? }
"""


def _schema(nodes, edges):
    return {'nodes': nodes, 'edges': edges}


PERSON0 = [('slug', 'str', True), ('name', 'str', False), ('age', 'i32', False)]
COMPANY = [('name', 'str', True), ('size', 'u32', False)]
EDGES = [('Knows', 'Person', 'Person', [('since', 'date', False)]),
         ('WorksAt', 'Person', 'Company', [('role', 'enum:dev,ops', False)])]
SCHEMAS = {
    'S0': (S0_TEXT, _schema([('Person', PERSON0), ('Company', COMPANY)], EDGES)),
    'S1': (S1_TEXT, _schema([('Person', PERSON0 + [('nick', 'str', False)]),
                             ('Company', COMPANY), ('Tag', [('t', 'str', True)])],
                            EDGES)),
    'S3': (S3_TEXT, _schema([('Person', [('slug', 'str', True), ('name', 'str', False),
                                         ('age', 'i32', True)]),
                             ('Company', COMPANY)], EDGES)),
}


def node_types(sn):
    return [t for t, _ in SCHEMAS[sn][1]['nodes']]


def edge_types(sn):
    return [e[0] for e in SCHEMAS[sn][1]['edges']]


def node_props(sn, t):
    for name, props in SCHEMAS[sn][1]['nodes']:
        if name == t:
            return props
    return None


def edge_def(sn, e):
    for d in SCHEMAS[sn][1]['edges']:
        if d[0] == e:
            return d
    return None


def valid_value(kind, v):
    """The model's value check (DESIGN.md 1: types, ranges, enums, dates)."""
    if kind == 'str':
        return isinstance(v, str)
    if kind in ('i32', 'u32'):
        if not isinstance(v, int) or isinstance(v, bool):
            return False
        return -2**31 <= v < 2**31 if kind == 'i32' else 0 <= v < 2**32
    if kind == 'date':
        if not isinstance(v, str) or len(v) != 10:
            return False
        try:
            datetime.date.fromisoformat(v)
            return v[4] == '-' and v[7] == '-'
        except ValueError:
            return False
    if kind.startswith('enum:'):
        return isinstance(v, str) and v in kind[5:].split(',')
    raise AssertionError(kind)


def check_props(props_def, data, skip=()):
    """data (a JSON object) -> canonical props dict, or None if invalid."""
    known = {p[0]: p for p in props_def}
    out = {}
    for k, v in data.items():
        if k in skip:
            continue
        if k not in known:
            return None
        if v is None:
            if known[k][2]:
                return None
            continue
        if not valid_value(known[k][1], v):
            return None
        out[k] = v
    for name, _, req in props_def:
        if req and name not in out and name not in skip:
            return None
    return out


def strict_object(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError('duplicate member %r' % k)
        d[k] = v
    return d


def jstr(s):
    # docs/format.md 4: bytes pass through; " \ \n \t \r \b \f escaped,
    # other bytes below 0x20 as \u00xx (lower-case hex); DEL not escaped.
    return json.dumps(s, ensure_ascii=False)


def jval(v):
    if isinstance(v, str):
        return jstr(v)
    return str(v)


# ---------------------------------------------------------------------------
# Rows.  A row object is shared by every version in which it is unchanged;
# `first` (PAIR_FIRST, docs/decisions.md) may be None where the docs leave it
# open, and is then learned once from the mount's listing.

class Row:
    __slots__ = ('table', 'id', 'frm', 'to', 'props', 'first')

    def __init__(self, table, rid, props, frm=None, to=None, first=None):
        self.table, self.id, self.props = table, rid, props
        self.frm, self.to, self.first = frm, to, first

    def is_edge(self):
        return self.table.startswith('edge:')

    def data_json(self, sn):
        t = self.table.split(':', 1)[1]
        parts = []
        if self.is_edge():
            parts.append('"id":' + jstr(self.id))
            pdef = edge_def(sn, t)[3]
        else:
            pdef = node_props(sn, t)
        for name, _, _ in pdef:
            if name in self.props:
                parts.append(jstr(name) + ':' + jval(self.props[name]))
        return '{' + ','.join(parts) + '}'

    def line(self, sn):
        t = self.table.split(':', 1)[1]
        if self.is_edge():
            return ('{"edge":%s,"from":%s,"to":%s,"data":%s}\n'
                    % (jstr(t), jstr(self.frm), jstr(self.to), self.data_json(sn)))
        return '{"type":%s,"data":%s}\n' % (jstr(t), self.data_json(sn))


class Version:
    __slots__ = ('n', 'branch', 'binc', 'parents', 'op', 'schema', 'tables', 'removed')

    def __init__(self, n, branch, binc, parents, op, schema, tables):
        self.n, self.branch, self.binc, self.parents = n, branch, binc, parents
        self.op, self.schema, self.tables, self.removed = op, schema, tables, False


def tables_of(sn):
    return ['node:' + t for t in node_types(sn)] + ['edge:' + e for e in edge_types(sn)]


def export_text(v):
    out = []
    for tb in tables_of(v.schema):
        rows = v.tables.get(tb, {})
        for rid in sorted(rows, key=lambda s: s.encode()):
            out.append(rows[rid].line(v.schema))
    return ''.join(out)


def table_text(v, tb):
    rows = v.tables.get(tb, {})
    return ''.join(rows[r].line(v.schema) for r in sorted(rows, key=lambda s: s.encode()))


# ---------------------------------------------------------------------------
# File names (docs/mount.md, "File-name encoding")

def enc(key):
    b = key.encode()
    if b == b'':
        return '%'
    out = bytearray()
    for i, c in enumerate(b):
        if c < 0x20 or c == 0x7f or c in b'/%~' or (i == 0 and c == 0x2e):
            out += b'%%%02X' % c
        else:
            out.append(c)
    s = out.decode('utf-8', 'surrogateescape')
    if s.endswith('.json'):
        s = s[:-5] + '%2Ejson'
    assert len(s.encode()) <= 200, key
    return s


def edge_name(row, other):
    if row.first:
        return enc(other) + '.json'
    return enc(other) + '~' + enc(row.id) + '.json'


# ---------------------------------------------------------------------------
# The model

class Model:
    def __init__(self):
        self.versions = {}
        self.branches = {}      # name -> [head, incarnation]
        self.inc = 0
        self.top = 0
        self.gen_ids = 0

    def clone(self):
        m = copy.copy(self)
        m.versions = dict(self.versions)
        m.branches = {k: list(v) for k, v in self.branches.items()}
        return m

    def init(self, sn):
        self.inc += 1
        self.branches = {'main': [1, self.inc]}
        v = Version(1, 'main', self.inc, [], 'init', sn,
                    {tb: {} for tb in tables_of(sn)})
        self.versions = {1: v}
        self.top = 1

    def head(self, b):
        return self.versions[self.branches[b][0]]

    def publish(self, b, op, sn, tables, parents=None):
        self.top += 1
        h = self.branches[b][0]
        v = Version(self.top, b, self.branches[b][1], parents or [h], op, sn, tables)
        self.versions[self.top] = v
        self.branches[b][0] = self.top
        return v

    def ancestors(self, n):
        seen, todo = set(), [n]
        while todo:
            x = todo.pop()
            if x in seen:
                continue
            seen.add(x)
            todo.extend(self.versions[x].parents)
        return seen

    def merge_base(self, a, b):
        common = self.ancestors(a) & self.ancestors(b)
        return max(common) if common else None

    # -- validation shared by loads and mount writes --------------------
    def endpoints_ok(self, sn, tables, etable):
        e = etable.split(':', 1)[1]
        d = edge_def(sn, e)
        for r in tables.get(etable, {}).values():
            if r.frm not in tables.get('node:' + d[1], {}) or \
               r.to not in tables.get('node:' + d[2], {}):
                return False
        return True

    def all_endpoints_ok(self, sn, tables):
        return all(self.endpoints_ok(sn, tables, 'edge:' + e) for e in edge_types(sn))

    # -- loads (DESIGN.md 1, "Modes", "Validation order") ---------------
    def parse_line(self, sn, obj):
        """A load line -> Row, or None if invalid."""
        if not isinstance(obj, dict):
            return None
        if 'type' in obj:
            if set(obj) - {'type', 'data'}:
                return None
            t, data = obj['type'], obj.get('data', {})
            pdef = node_props(sn, t) if t in node_types(sn) else None
            if pdef is None or not isinstance(data, dict) or 'id' in data:
                return None
            props = check_props(pdef, data)
            if props is None:
                return None
            return Row('node:' + t, props[pdef[0][0]], props)
        if 'edge' in obj:
            if set(obj) - {'edge', 'from', 'to', 'data'}:
                return None
            e, data = obj['edge'], obj.get('data', {})
            if e not in edge_types(sn) or not isinstance(data, dict):
                return None
            if not isinstance(obj.get('from'), str) or not isinstance(obj.get('to'), str):
                return None
            rid = data.get('id')
            if not isinstance(rid, str):
                return None     # the generator always names its edges
            props = check_props(edge_def(sn, e)[3], data, skip=('id',))
            if props is None:
                return None
            return Row('edge:' + e, rid, props, obj['from'], obj['to'])
        return None

    def set_flags(self, old_tables, new_tables, touched):
        """PAIR_FIRST of the rows a write created (docs/decisions.md):
        set when created and no other edge of the table has its pair; rows
        whose situation the docs leave open get None (learned later)."""
        for tb in touched:
            if not tb.startswith('edge:'):
                continue
            old = old_tables.get(tb, {})
            new = new_tables.get(tb, {})
            # a row re-pointed (same id, other endpoints) joins its new
            # pair as a created one (docs/decisions.md, PAIR_FIRST)
            created = [r for rid, r in new.items() if rid not in old
                       or (old[rid].frm, old[rid].to) != (r.frm, r.to)]
            pairs = {}
            for r in created:
                pairs.setdefault((r.frm, r.to), []).append(r)
            for rid, r in new.items():
                o = old.get(rid)
                if o is not None and (o.frm, o.to) == (r.frm, r.to):
                    if r is not o:
                        r.first = o.first
                    continue
                p = (r.frm, r.to)
                if len(pairs[p]) > 1:
                    r.first = None
                    continue
                olds = [x for x in old.values() if (x.frm, x.to) == p and x.id != rid]
                if any(x.id in new and (new[x.id].frm, new[x.id].to) == p for x in olds):
                    r.first = False
                elif olds:
                    r.first = None
                else:
                    r.first = True

    def load(self, b, mode, lines):
        """-> (ok, new_tables) for a load of `lines` on branch b."""
        if b not in self.branches or not lines:
            return False, None
        hv = self.head(b)
        sn = hv.schema
        rows = []
        for obj in lines:
            r = self.parse_line(sn, obj)
            if r is None:
                return False, None
            rows.append(r)
        old = hv.tables
        new = dict(old)
        touched = []
        for r in rows:
            if r.table not in touched:
                touched.append(r.table)
        if mode == 'overwrite':
            for tb in touched:
                new[tb] = {}
        else:
            for tb in touched:
                new[tb] = dict(old[tb])
        seen = set()
        for r in rows:
            k = (r.table, r.id)
            if mode == 'append' and (r.id in old[r.table] or k in seen):
                return False, None
            if mode == 'overwrite' and k in seen:
                return None, None   # duplicate in an overwrite: not generated
            seen.add(k)
            new[r.table][r.id] = r
        if not self.all_endpoints_ok(sn, new):
            return False, None
        self.set_flags(old, new, touched)
        return True, new

    # -- writes through the mount (docs/semantics.md, "Writes") ---------
    def mount_write(self, b, w):
        """-> list of outcomes [(ok, new_tables or None)] for one write."""
        if b not in self.branches:
            return [(False, None)]
        hv = self.head(b)
        sn = hv.schema
        old = hv.tables
        a = w['a']
        if a == 'put':
            t = w['t']
            if t not in node_types(sn):
                return [(False, None)]
            pdef = node_props(sn, t)
            kp = pdef[0][0]
            data = w['data']
            if not isinstance(data, dict):
                return [(False, None)]
            if kp in data and data[kp] != w['key']:
                return [(False, None)]
            d = dict(data)
            d[kp] = w['key']
            if 'id' in d:
                return [(False, None)]
            props = check_props(pdef, d)
            if props is None:
                return [(False, None)]
            tb = 'node:' + t
            cur = old[tb].get(w['key'])
            r = Row(tb, w['key'], props)
            if cur is not None and cur.line(sn) == r.line(sn):
                return [(True, None)]       # the same bytes: nothing published
            new = dict(old)
            new[tb] = dict(old[tb])
            new[tb][w['key']] = r
            return [(True, new)]
        if a == 'rm':
            tb = 'node:' + w['t']
            if tb not in old or w['key'] not in old[tb] or w['t'] not in node_types(sn):
                return [(False, None)]
            new = dict(old)
            new[tb] = dict(old[tb])
            del new[tb][w['key']]
            for e in edge_types(sn):
                et = 'edge:' + e
                d = edge_def(sn, e)
                gone = [rid for rid, r in old[et].items()
                        if (d[1] == w['t'] and r.frm == w['key'])
                        or (d[2] == w['t'] and r.to == w['key'])]
                if gone:
                    new[et] = {k: v for k, v in old[et].items() if k not in gone}
            return [(True, new)]
        if a == 'mv':
            t, k1, k2 = w['t'], w['key'], w['to']
            tb = 'node:' + t
            if t not in node_types(sn) or k1 not in old[tb]:
                return [(False, None)]
            if k1 == k2:
                return [(True, None), (False, None)]    # mv(1) refuses on its own
            if k2 in old[tb]:
                return [(False, None)]
            new = dict(old)
            new[tb] = dict(old[tb])
            r = old[tb][k1]
            kp = node_props(sn, t)[0][0]
            props = dict(r.props)
            props[kp] = k2
            del new[tb][k1]
            new[tb][k2] = Row(tb, k2, props)
            for e in edge_types(sn):
                et = 'edge:' + e
                d = edge_def(sn, e)
                for rid, er in old[et].items():
                    f = k2 if (d[1] == t and er.frm == k1) else er.frm
                    to = k2 if (d[2] == t and er.to == k1) else er.to
                    if (f, to) != (er.frm, er.to):
                        if new[et] is old[et]:
                            new[et] = dict(old[et])
                        new[et][rid] = Row(et, rid, er.props, f, to, er.first)
            return [(True, new)]
        if a == 'ln':
            e = w['e']
            if e not in edge_types(sn):
                return [(False, None)]
            d = edge_def(sn, e)
            et = 'edge:' + e
            frm, to = w['from'], w['to']
            if frm not in old['node:' + d[1]] or to not in old['node:' + d[2]]:
                return [(False, None)]
            # the link is named <other>.json: taken if an edge of the pair
            # already has that name
            if any((r.frm, r.to) == (frm, to) and r.first for r in old[et].values()):
                return [(False, None)]
            same = any((r.frm, r.to) == (frm, to) for r in old[et].values())
            if any((r.frm, r.to) == (frm, to) and r.first is None for r in old[et].values()):
                return [(False, None), (True, 'ln')]
            if same:
                return [(False, None), (True, 'ln')]
            return [(True, 'ln')]
        if a == 'sed':
            # sed -i 's/OLD/NEW/' on a node file: its bytes edited in a
            # scratch file renamed over the node (docs/semantics.md)
            tb = 'node:' + w['t']
            if w['t'] not in node_types(sn) or w['key'] not in old.get(tb, {}):
                return [(False, None)]
            text = old[tb][w['key']].data_json(sn)
            edited = text.replace(w['old'], w['new'], 1)
            try:
                data = json.loads(edited, object_pairs_hook=strict_object)
            except ValueError:      # a duplicate member is an error (DESIGN.md 1)
                return [(False, None)]
            return self.mount_write(b, {'a': 'put', 't': w['t'], 'key': w['key'],
                                        'data': data})
        if a == 'eput':
            # a write of edges/<E>/<from>/<name>.json: the edge of that name
            # gets the data; a new <to>.json is a new edge (docs/semantics.md)
            e = w['e']
            if e not in edge_types(sn):
                return [(False, None)]
            d = edge_def(sn, e)
            et = 'edge:' + e
            data = w['data']
            props = check_props(d[3], data, skip=('id',))
            cands = sorted([r for r in old[et].values()
                            if r.frm == w['from'] and r.to == w['to']],
                           key=lambda r: r.id.encode())
            if cands:
                r = cands[w['i'] % len(cands)]
                if r.first is None:
                    return [(False, None), (True, None)]
                if 'id' in data and data['id'] != r.id or props is None:
                    return [(False, None)]
                nr = Row(et, r.id, props, r.frm, r.to, r.first)
                if nr.line(sn) == r.line(sn):
                    return [(True, None)]
                new = dict(old)
                new[et] = dict(old[et])
                new[et][r.id] = nr
                return [(True, new)]
            # edges/<E>/<from>/ exists while <from> has an edge of E
            # (docs/mount.md, "The live view": "entry if no edge is left")
            if not any(r.frm == w['from'] for r in old[et].values()):
                return [(False, None)]
            if w['from'] not in old['node:' + d[1]] or w['to'] not in old['node:' + d[2]] \
               or props is None or 'id' in data:
                return [(False, None)]
            if any((r.frm, r.to) == (w['from'], w['to']) for r in old[et].values()):
                return [(False, None), (True, ('eput', props))]
            return [(True, ('eput', props))]
        if a == 'rmedge':
            e = w['e']
            if e not in edge_types(sn):
                return [(False, None)]
            et = 'edge:' + e
            cands = sorted([r for r in old[et].values()
                            if r.frm == w['from'] and r.to == w['to']],
                           key=lambda r: r.id.encode())
            if not cands:
                return [(False, None)]
            r = cands[w['i'] % len(cands)]
            new = dict(old)
            new[et] = {k: v for k, v in old[et].items() if k != r.id}
            return [(True, new)]
        raise AssertionError(a)

    # -- merge (docs/semantics.md, "Merge") -----------------------------
    def merge(self, src, into, prefer):
        """-> list of (rc_class, model) outcomes; the model publishes."""
        if src not in self.branches or into not in self.branches or src == into:
            return [('fail', self)]
        s, t = self.branches[src][0], self.branches[into][0]
        if s in self.ancestors(t):
            return [('ok', self)]              # already merged: nothing
        sv, tv = self.versions[s], self.versions[t]
        base = self.merge_base(s, t)
        bv = self.versions[base]
        if bv.removed or not (sv.schema == tv.schema == bv.schema):
            return [('fail', self)]
        if t in self.ancestors(s):             # fast-forward
            m = self.clone()
            m.publish(into, 'merge', sv.schema, dict(sv.tables), [t, s])
            return [('ok', m)]
        sn = tv.schema
        res = {}
        conflict = False
        decided = {}       # (table, id) -> 'source'/'target' for conflicts
        for tb in tables_of(sn):
            B, T, S = bv.tables[tb], tv.tables[tb], sv.tables[tb]
            out = dict(T)
            for rid in set(B) | set(T) | set(S):
                b, tr, sr = B.get(rid), T.get(rid), S.get(rid)
                bl = b.line(sn) if b else None
                tl = tr.line(sn) if tr else None
                sl = sr.line(sn) if sr else None
                if sl == bl or sl == tl:
                    continue                    # target's already
                if tl == bl:
                    if sr is None:
                        out.pop(rid, None)
                    else:
                        out[rid] = sr
                    continue
                conflict = True
                decided[(tb, rid)] = True
            res[tb] = out
        # endpoint conflicts: an edge one side changed whose endpoint node
        # the other side deleted (present in the base, absent there)
        src_deleted = set()    # endpoint conflicts whose node the source deleted
        for e in edge_types(sn):
            et = 'edge:' + e
            d = edge_def(sn, e)
            B, T, S = bv.tables[et], tv.tables[et], sv.tables[et]
            for side, other in ((T, sv), (S, tv)):
                for rid, r in side.items():
                    b = B.get(rid)
                    if b is not None and b.line(sn) == r.line(sn):
                        continue
                    for nt, k in (('node:' + d[1], r.frm), ('node:' + d[2], r.to)):
                        if k in bv.tables[nt] and k not in other.tables[nt]:
                            conflict = True
                            decided[(et, rid)] = True
                            decided[(nt, k)] = True
                            if other is sv:
                                src_deleted.add((et, rid))
        if conflict and prefer is None:
            return [('fail', self)]
        if conflict:
            pv = sv if prefer == 'source' else tv
            for (tb, rid) in decided:
                r = pv.tables[tb].get(rid)
                if prefer == 'source' and (tb, rid) in src_deleted:
                    # "the source deleted the node: --prefer source deletes
                    # the target's edge too" (semantics.md), even where the
                    # source still has an older version of that edge
                    r = None
                if tb not in res:
                    continue
                if r is None:
                    res[tb].pop(rid, None)
                else:
                    res[tb][rid] = r
        if not self.all_endpoints_ok(sn, res):
            return [('fail', self)]
        # PAIR_FIRST of an edge the merge takes from the source
        # (docs/decisions.md): a row the target has keeps the target's flag;
        # one new to the target is created there, so it is first exactly
        # when no other edge of the target's table has its pair; open
        # cases (a re-pointed row, two new rows of one pair, a target row
        # of the pair deleted by the merge) None
        for e in edge_types(sn):
            et = 'edge:' + e
            T = tv.tables[et]
            for rid, r in list(res[et].items()):
                tr = T.get(rid)
                if tr is r:
                    continue
                if tr is not None and (tr.frm, tr.to) == (r.frm, r.to):
                    first = tr.first
                else:       # new to the target, or re-pointed: created there
                    pair = (r.frm, r.to)
                    others = [o for oid, o in res[et].items()
                              if oid != rid and (o.frm, o.to) == pair]
                    kept = [o for o in others if T.get(o.id) is o]
                    gone = [o for o in T.values() if (o.frm, o.to) == pair
                            and o.id not in res[et]]
                    if len(kept) != len(others) or gone:
                        first = None
                    elif any(o.first is None for o in kept):
                        first = None
                    else:
                        first = not kept
                if first != r.first:
                    res[et][rid] = Row(et, rid, r.props, r.frm, r.to, first)
        m = self.clone()
        m.publish(into, 'merge', sn, res, [t, s])
        return [('ok', m)]

    # -- schema apply (docs/semantics.md, "Schema changes") -------------
    def schema_apply(self, target):
        hv = self.head('main')
        cur = hv.schema
        if cur == target:
            return [('ok', self)], []       # the same schema: no change
        if set(self.branches) != {'main'}:
            return [('fail', self)], []
        opts = []
        tabs = dict(hv.tables)
        # a property removed: --drop-property, rows rewritten without it
        if cur == 'S1':
            opts += ['--drop-property', 'Person.nick']
            tabs['node:Person'] = {k: (Row(r.table, r.id, {p: v for p, v in r.props.items()
                                                              if p != 'nick'})
                                       if 'nick' in r.props else r)
                                   for k, r in tabs['node:Person'].items()}
            if tabs.get('node:Tag'):
                return [('fail', self)], opts
        if target == 'S3' and cur != 'S3':
            opts += ['--default', 'Person.age=7']
            tabs['node:Person'] = {k: (Row(r.table, r.id, dict(r.props, age=7))
                                       if 'age' not in r.props else r)
                                   for k, r in tabs['node:Person'].items()}
        if target == 'S1':
            # the empty type comes back (or is created) empty
            tabs['node:Tag'] = hv.tables.get('node:Tag', {}) or {}
        m = self.clone()
        m.publish('main', 'schema', target, tabs)
        return [('ok', m)], opts

    # -- gc (docs/branches-design.md 6.3/6.5, graphctl gc --help) -------
    def gc(self, keep):
        # the highest graph version is always kept: it is the manifest's
        # head (docs/format.md 6), whatever its branch (a deleted one too)
        kept = {self.top}
        for name, (h, inc) in self.branches.items():
            kept.add(h)
            mine = sorted(n for n, v in self.versions.items()
                          if v.branch == name and v.binc == inc)
            kept.update(mine[-keep:])
        names = sorted(self.branches)
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                mb = self.merge_base(self.branches[names[i]][0],
                                     self.branches[names[j]][0])
                if mb:
                    kept.add(mb)
        gone = [n for n, v in self.versions.items() if not v.removed and n not in kept]
        m = self.clone()
        for n in gone:
            v = copy.copy(m.versions[n])
            v.removed = True
            m.versions[n] = v
        return m, gone


# ---------------------------------------------------------------------------
# Operation generator.  Ops are plain JSON values; `apply` of the model copes
# with any state, so any subset of a sequence is a valid sequence (shrinking).

PKEYS = ['p0', 'p1', 'p2', 'p3', 'a/b', '.h', 'x.json', 'é', 't~1', '%z']
CKEYS = ['c0', 'c1', 'c 2']
TKEYS = ['t0', 't1']
EIDS = ['e%d' % i for i in range(1, 9)]
NAMES = ['Al', 'b"q', 'tab\there', 'é ü', '\u0001x', '', 'back\\slash', 'x' * 40]
LOAD_FPS = ['load/after_stage', 'load/after_heal', 'load/after_locks',
            'commit/after_sidecar', 'commit/after_table', 'commit/after_table=exit@2',
            'commit/after_confirm', 'commit/before_publish', 'commit/after_publish',
            'table/after_tmp_write', 'table/after_link']
MOUNT_FPS = ['commit/after_sidecar', 'commit/after_table', 'commit/after_confirm',
             'commit/before_publish', 'commit/after_publish', 'table/after_link']
MERGE_FPS = ['merge/after_plan', 'merge/after_heal', 'merge/after_locks',
             'commit/after_sidecar', 'commit/after_table', 'commit/after_confirm',
             'commit/before_publish', 'commit/after_publish']
SCHEMA_FPS = ['schema/after_heal', 'schema/after_locks', 'schema/after_file',
              'commit/after_sidecar', 'commit/after_table', 'commit/after_confirm',
              'commit/before_publish']
COMPACT_FPS = ['compact/after_heal', 'compact/after_locks', 'commit/after_sidecar',
               'commit/after_table', 'commit/after_confirm', 'commit/before_publish']
GC_FPS = ['gc/after_arm', 'gc/after_commit', 'gc/after_unlink', 'gc/before_audit']
RECOVER_FPS = ['recover/after_locks', 'recover/after_classify', 'recover/after_reserve',
               'recover/after_compensate', 'recover/before_audit', 'recover/after_publish']


def fp_spec(name):
    return name if '=' in name else name + '=exit'


class Gen:
    def __init__(self, rng, model):
        self.r, self.m = rng, model

    def branch(self):
        bs = sorted(self.m.branches)
        return 'main' if self.r.random() < 0.45 or len(bs) == 1 else self.r.choice(bs)

    def keys(self, b, t):
        if b not in self.m.branches:
            return []
        return sorted(self.m.head(b).tables.get('node:' + t, {}))

    def pick_key(self, b, t, pool, p_existing=0.75):
        ks = self.keys(b, t)
        if ks and self.r.random() < p_existing:
            return self.r.choice(ks)
        return self.r.choice(pool)

    def props(self, sn, t, bad_ok=True):
        r = self.r
        d = {}
        if t == 'Person':
            if r.random() < 0.5:
                d['name'] = r.choice(NAMES)
            if r.random() < (0.95 if sn == 'S3' else 0.5):
                d['age'] = r.choice([-3, 0, 7, 42, 2147483647])
            if sn == 'S1' and r.random() < 0.4:
                d['nick'] = r.choice(NAMES)
            if r.random() < 0.1:
                d['name'] = None
        elif t == 'Company':
            if r.random() < 0.5:
                d['size'] = r.choice([0, 5, 4294967295])
        if bad_ok and r.random() < 0.03:
            d[r.choice(['age', 'size', 'zzz', 'name'])] = r.choice(['x', 2**31, -1, 1.5, [1]])
        return d

    def node_line(self, b, sn, t=None, k=None):
        r = self.r
        t = t or r.choice(['Person'] * 3 + ['Company'] + (['Tag'] if sn == 'S1' else []))
        pool = {'Person': PKEYS, 'Company': CKEYS, 'Tag': TKEYS}[t]
        k = k if k is not None else self.pick_key(b, t, pool, 0.4)
        d = self.props(sn, t)
        kp = {'Person': 'slug', 'Company': 'name', 'Tag': 't'}[t]
        if t == 'Company':
            d.pop('name', None)
        d[kp] = k
        return {'type': t, 'data': d}

    def endpoint(self, b, t, pool, extra):
        ks = sorted(set(self.keys(b, t)) | set(extra.get(t, ())))
        if ks and self.r.random() < 0.93:
            return self.r.choice(ks)
        return self.r.choice(pool)

    def edge_line(self, b, sn, extra=None):
        r = self.r
        extra = extra or {}
        e = r.choice(['Knows', 'Knows', 'WorksAt'])
        frm = self.endpoint(b, 'Person', PKEYS, extra)
        to = self.endpoint(b, 'Person' if e == 'Knows' else 'Company',
                           PKEYS if e == 'Knows' else CKEYS, extra)
        rid = r.choice(EIDS)
        if b in self.m.branches:
            cur = self.m.head(b).tables.get('edge:' + e, {}).get(rid)
            if cur is not None and r.random() < 0.9:
                frm, to = cur.frm, cur.to       # same endpoints (see set_flags)
        d = {'id': rid}
        if e == 'Knows' and r.random() < 0.5:
            d['since'] = r.choice(['2020-01-02', '1999-12-31', '2020-13-01'
                                   if r.random() < 0.1 else '2024-02-29'])
        if e == 'WorksAt' and r.random() < 0.5:
            d['role'] = r.choice(['dev', 'ops', 'ops', 'boss' if r.random() < 0.1 else 'dev'])
        return {'edge': e, 'from': frm, 'to': to, 'data': d}

    def load(self):
        r = self.r
        b = self.branch()
        sn = self.m.head(b).schema if b in self.m.branches else 'S0'
        mode = r.choice(['merge', 'merge', 'append', 'overwrite'])
        n = r.randint(1, 7)
        lines = []
        extra = {}
        for _ in range(n):
            if r.random() < 0.55:
                ln = self.node_line(b, sn)
                kp = {'Person': 'slug', 'Company': 'name', 'Tag': 't'}[ln['type']]
                extra.setdefault(ln['type'], set()).add(ln['data'][kp])
                lines.append(ln)
            else:
                lines.append(self.edge_line(b, sn, extra))
        if mode == 'overwrite' and r.random() < 0.7:
            # keep the endpoints of the edges the overwrite does not touch
            for ln in list(lines):
                if 'type' in ln and ln['type'] in ('Person', 'Company'):
                    for k in self.keys(b, ln['type']):
                        if r.random() < 0.8:
                            lines.append(self.node_line(b, sn, ln['type'], k))
        r.shuffle(lines)
        if mode != 'merge':
            seen, uniq = set(), []
            for ln in lines:
                k = (ln.get('type') or ln.get('edge'),
                     (ln['data'].get('id') if 'edge' in ln else
                      ln['data'].get({'Person': 'slug', 'Company': 'name', 'Tag': 't'}[ln['type']])))
                if k not in seen:
                    seen.add(k)
                    uniq.append(ln)
            lines = uniq
        if r.random() < 0.02:
            lines.append({'type': 'Person', 'data': {'slug': 'p0'}, 'extra': 1})
        return {'k': 'load', 'b': b, 'mode': mode, 'lines': lines}

    def mount_write(self):
        r = self.r
        b = self.branch()
        sn = self.m.head(b).schema if b in self.m.branches else 'S0'
        a = r.choice(['put', 'put', 'put', 'rm', 'mv', 'ln', 'ln', 'rmedge', 'sed', 'eput'])
        if a == 'sed':
            k = self.pick_key(b, 'Person', PKEYS, 0.95)
            pairs = [('"age":42', '"age":43'), ('"age":7', '"age":-3'), ('"name":"Al"', '"name":"Bo"'),
                     ('"age":0', '"age":"x"'), ('}', ',"age":5}'), ('}', ',"name":"Zed"}'),
                     ('"slug"', '"sl"'), (':', ';')]
            o, n = r.choice(pairs)
            if b in self.m.branches and k in self.m.head(b).tables['node:Person'] and \
               r.random() < 0.5:
                row = self.m.head(b).tables['node:Person'][k]
                if 'age' in row.props:
                    o, n = '"age":%d' % row.props['age'], '"age":%d' % r.choice([1, 2, 99])
            return {'k': 'mw', 'b': b, 'a': 'sed', 't': 'Person', 'key': k, 'old': o, 'new': n}
        if a == 'eput':
            e = r.choice(['Knows', 'WorksAt'])
            es = list(self.m.head(b).tables['edge:' + e].values()) if b in self.m.branches else []
            if es and r.random() < 0.6:
                x = r.choice(es)
                frm, to = x.frm, x.to
            else:
                frm = self.pick_key(b, 'Person', PKEYS, 0.95)
                to = self.pick_key(b, 'Person' if e == 'Knows' else 'Company',
                                   PKEYS if e == 'Knows' else CKEYS, 0.95)
            d = {}
            if e == 'Knows' and r.random() < 0.7:
                d['since'] = r.choice(['2020-01-02', '1999-12-31', '2021-02-30'])
            if e == 'WorksAt' and r.random() < 0.7:
                d['role'] = r.choice(['dev', 'ops', 'boss'])
            return {'k': 'mw', 'b': b, 'a': 'eput', 'e': e, 'from': frm, 'to': to,
                    'i': r.randint(0, 3), 'data': d}
        if a in ('put', 'rm', 'mv'):
            t = r.choice(['Person', 'Person', 'Company'])
            pool = PKEYS if t == 'Person' else CKEYS
            k = self.pick_key(b, t, pool, 0.5 if a == 'put' else 0.9)
            if a == 'put':
                d = self.props(sn, t)
                if r.random() < 0.2:
                    d[{'Person': 'slug', 'Company': 'name'}[t]] = k if r.random() < 0.8 else 'zz'
                return {'k': 'mw', 'b': b, 'a': 'put', 't': t, 'key': k, 'data': d}
            if a == 'rm':
                return {'k': 'mw', 'b': b, 'a': 'rm', 't': t, 'key': k}
            to = self.pick_key(b, t, pool, 0.1)
            if to == k and r.random() < 0.9:
                to = r.choice(pool)
            return {'k': 'mw', 'b': b, 'a': 'mv', 't': t, 'key': k, 'to': to}
        e = r.choice(['Knows', 'Knows', 'WorksAt'])
        if a == 'rmedge' and b in self.m.branches:
            es = list(self.m.head(b).tables['edge:' + e].values())
            if es:
                x = r.choice(es)
                return {'k': 'mw', 'b': b, 'a': 'rmedge', 'e': e, 'from': x.frm,
                        'to': x.to, 'i': r.randint(0, 3),
                        'via': r.choice(['edges', 'out', 'in'])}
        frm = self.pick_key(b, 'Person', PKEYS, 0.95)
        to = self.pick_key(b, 'Person' if e == 'Knows' else 'Company',
                           PKEYS if e == 'Knows' else CKEYS, 0.95)
        return {'k': 'mw', 'b': b, 'a': 'ln' if a == 'ln' else 'rmedge', 'e': e,
                'from': frm, 'to': to, 'i': 0, 'via': r.choice(['out', 'in'])}

    def scenario(self):
        """Ops that make the two sides of a merge meet: a row changed on
        both, or an edge put on one side to a node the other deletes."""
        r, m = self.r, self.m
        others = [b for b in sorted(m.branches) if b != 'main']
        if not others:
            return None
        dev = r.choice(others)
        common = sorted(set(self.keys('main', 'Person')) & set(self.keys(dev, 'Person')))
        if not common:
            return None
        n = r.choice(common)
        a, b = ('main', dev) if r.random() < 0.5 else (dev, 'main')
        sn = m.head(b).schema
        if r.random() < 0.5:
            first = {'k': 'mw', 'b': a, 'a': 'rm', 't': 'Person', 'key': n}
            other = r.choice(self.keys(b, 'Person'))
            if r.random() < 0.5:
                second = {'k': 'mw', 'b': b, 'a': 'ln', 'e': 'Knows', 'from': other,
                          'to': n, 'i': 0, 'via': r.choice(['out', 'in'])}
            else:
                second = {'k': 'load', 'b': b, 'mode': 'merge', 'lines': [
                    {'edge': 'Knows', 'from': n, 'to': other,
                     'data': {'id': r.choice(EIDS)}}]}
        else:
            first = {'k': 'mw', 'b': a, 'a': 'put', 't': 'Person', 'key': n,
                     'data': self.props(m.head(a).schema, 'Person', False)}
            second = {'k': 'mw', 'b': b, 'a': 'put', 't': 'Person', 'key': n,
                      'data': self.props(sn, 'Person', False)}
        src, into = (dev, 'main') if r.random() < 0.7 else ('main', dev)
        return [first, second, {'k': 'merge', 'src': src, 'into': into,
                                'prefer': r.choice([None, 'source', 'target'])}]

    def op(self):
        r = self.r
        x = r.random()
        m = self.m
        if r.random() < 0.08:
            sc = self.scenario()
            if sc:
                return sc
        if x < 0.04:
            ld = self.load()
            return {'k': 'ingest', 'mode': ld['mode'], 'lines': ld['lines']}
        if x < 0.20:
            return self.load()
        if x < 0.40:
            return self.mount_write()
        if x < 0.46:
            name = r.choice(['dev', 'b2'])
            frm = None
            y = r.random()
            if y < 0.3:
                frm = str(r.randint(1, max(1, m.top)))
            elif y < 0.5:
                frm = r.choice(sorted(m.branches))
            return {'k': 'branch', 'name': name, 'from': frm}
        if x < 0.48:
            return {'k': 'bdel', 'name': r.choice(['dev', 'b2', 'dev', 'main'])}
        if x < 0.61:
            bs = sorted(m.branches)
            if bs == ['main']:
                return {'k': 'branch', 'name': r.choice(['dev', 'b2']), 'from': None}
            others = [x for x in bs if x != 'main'] or bs
            src, into = r.choice(others), 'main'
            if r.random() < 0.3:
                src, into = 'main', r.choice(others)
            elif r.random() < 0.1:
                src, into = r.choice(bs), r.choice(bs)
            return {'k': 'merge', 'src': src, 'into': into,
                    'prefer': r.choice([None, None, 'source', 'target'])}
        if x < 0.65:
            return {'k': 'schema', 'to': r.choice(['S0', 'S1', 'S3'])}
        if x < 0.68:
            return {'k': 'compact', 'b': self.branch()}
        if x < 0.72:
            return {'k': 'gc', 'keep': r.randint(1, 3)}
        if x < 0.80:
            inner = r.choice([self.load, self.load, self.load,
                              lambda: {'k': 'merge', 'src': r.choice(
                                  [b for b in sorted(m.branches) if b != 'main'] or ['main']),
                                       'into': 'main', 'prefer': 'source'},
                              lambda: {'k': 'schema', 'to': r.choice(['S0', 'S1', 'S3'])},
                              lambda: {'k': 'compact', 'b': 'main'},
                              lambda: {'k': 'gc', 'keep': 1}])()
            fps = {'load': LOAD_FPS, 'merge': MERGE_FPS, 'schema': SCHEMA_FPS,
                   'compact': COMPACT_FPS, 'gc': GC_FPS}[inner['k']]
            return {'k': 'kill', 'inner': inner, 'fp': r.choice(fps),
                    'rec': r.choice(['recover', 'recover', 'mount']),
                    'recfp': r.choice(RECOVER_FPS) if r.random() < 0.3 else None}
        if x < 0.84:
            return {'k': 'sigkill', 'inner': self.load(), 'us': r.randint(0, 60000),
                    'rec': r.choice(['recover', 'mount'])}
        if x < 0.90:
            w = self.mount_write()
            return {'k': 'mkill', 'inner': w, 'fp': r.choice(MOUNT_FPS),
                    'rec': r.choice(['recover', 'mount'])}
        if x < 0.95:
            return {'k': 'remount'}
        return {'k': 'recover'}


# ---------------------------------------------------------------------------
# Applying an op to the model: a list of (rc_class, model) candidates.

def model_apply(m, op):
    k = op['k']
    if k == 'load':
        ok, new = m.load(op['b'], op['mode'], op['lines'])
        if ok is None:
            return [('fail', m), ('ok', m)]
        if not ok:
            return [('fail', m)]
        m2 = m.clone()
        m2.publish(op['b'], 'load', m.head(op['b']).schema, new)
        return [('ok', m2)]
    if k == 'ingest':
        # a file closed in ingest/[append/|overwrite/]: loaded as one
        # version in that mode, op load (docs/semantics.md, Writes); an
        # empty file is not committed
        if not op['lines']:
            return [('ok', m)]
        return model_apply(m, {'k': 'load', 'b': 'main', 'mode': op['mode'],
                               'lines': op['lines']})
    if k == 'mw':
        outs = []
        for ok, new in m.mount_write(op['b'], op):
            if not ok:
                outs.append(('fail', m))
            elif new is None:
                outs.append(('ok', m))
            elif new == 'ln' or isinstance(new, tuple):
                m2 = m.clone()
                hv = m.head(op['b'])
                et = 'edge:' + op['e']
                m2.gen_ids += 1
                rid = '?gen%d' % m2.gen_ids      # learned from the export
                tabs = dict(hv.tables)
                tabs[et] = dict(tabs[et])
                same = any((r.frm, r.to) == (op['from'], op['to']) for r in tabs[et].values())
                tabs[et][rid] = Row(et, rid, new[1] if isinstance(new, tuple) else {},
                                    op['from'], op['to'], not same)
                m2.publish(op['b'], 'write', hv.schema, tabs)
                outs.append(('ok', m2))
            else:
                m2 = m.clone()
                m2.publish(op['b'], 'write', m.head(op['b']).schema, new)
                outs.append(('ok', m2))
        return outs
    if k == 'branch':
        if op['name'] in m.branches:
            return [('fail', m)]
        frm = op['from']
        if frm is None:
            at = m.branches['main'][0]
        elif frm in m.branches:
            at = m.branches[frm][0]
        elif frm.isdigit() and int(frm) in m.versions and not m.versions[int(frm)].removed:
            at = int(frm)
        else:
            return [('fail', m)]
        m2 = m.clone()
        m2.inc += 1
        m2.branches[op['name']] = [at, m2.inc]
        return [('ok', m2)]
    if k == 'bdel':
        if op['name'] == 'main' or op['name'] not in m.branches:
            return [('fail', m)]
        m2 = m.clone()
        del m2.branches[op['name']]
        return [('ok', m2)]
    if k == 'merge':
        return m.merge(op['src'], op['into'], op['prefer'])
    if k == 'schema':
        return m.schema_apply(op['to'])[0]
    if k == 'compact':
        if op['b'] not in m.branches:
            return [('fail', m)]
        m2 = m.clone()
        hv = m.head(op['b'])
        m2.publish(op['b'], 'compact', hv.schema, dict(hv.tables))
        return [('ok', m), ('ok', m2)]
    if k == 'gc':
        return [('ok', m.gc(op['keep'])[0])]
    if k in ('kill', 'sigkill', 'mkill'):
        # a killed writer: nothing happened, or it was rolled back with a
        # compensation published as a version of op `recover` with the old
        # rows (docs/format.md 2, `op`), or it was rolled forward
        outs = [('any', m)]
        inner = op['inner']
        b = inner.get('b', inner.get('into', 'main'))
        if inner['k'] != 'gc' and b in m.branches:
            m1 = m.clone()
            hv = m.head(b)
            m1.publish(b, 'recover', hv.schema, dict(hv.tables))
            outs.append(('any', m1))
        for rc, m2 in model_apply(m, op['inner']):
            if m2 is not m:
                outs.append(('any', m2))
                if k == 'mkill' and m2.top > m.top:
                    # published by the dying writer (`write`), or rolled
                    # forward under the sidecar's kind, `mount` (format.md 2)
                    m3 = m2.clone()
                    v = copy.copy(m3.versions[m3.top])
                    v.op = 'mount'
                    m3.versions[m3.top] = v
                    outs.append(('any', m3))
        return outs
    if k in ('remount', 'recover'):
        return [('ok', m)]
    raise AssertionError(k)


def generate(seed, nmin, nmax):
    rng = random.Random(seed)
    m = Model()
    m.init('S0')
    ops = []
    n = rng.randint(nmin, nmax)
    while len(ops) < n:
        got = Gen(rng, m).op()
        for op in (got if isinstance(got, list) else [got]):
            ops.append(op)
            outs = model_apply(m, op)
            # follow the success when there is one, so later ops have rows
            oks = [x for x in outs if x[1] is not m]
            m = (oks[-1] if oks else outs[0])[1]
    return ops


# ---------------------------------------------------------------------------
# The real system

class Divergence(Exception):
    pass


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout('a read through the mount took too long')


def is_mounted(path):
    with open('/proc/self/mountinfo') as f:
        for line in f:
            if line.split()[4] == path:
                return True
    return False


class Real:
    def __init__(self, root, log):
        self.root = root
        self.store = os.path.join(root, 'store')
        self.mnt = os.path.join(root, 'mnt')
        self.log = log
        self.mounted = False
        self.daemon = None
        self.daemon_fp = False
        self.nmount = 0
        self.dlog = None
        self.nfile = 0
        self.schema_files = {}
        os.makedirs(self.mnt)
        for sn, (text, _) in SCHEMAS.items():
            p = os.path.join(root, sn + '.pg')
            with open(p, 'w') as f:
                f.write(text)
            self.schema_files[sn] = p

    def ctl(self, args, env=None, timeout=120, check_rc=None):
        e = dict(os.environ)
        e.pop('GRAPHFS_FAILPOINTS', None)
        if env:
            e.update(env)
        p = subprocess.run([GRAPHCTL] + args, capture_output=True, env=e,
                           timeout=timeout * FACTOR)
        self.log('$ %sgraphctl %s -> %d%s' % (
            ''.join('%s=%s ' % kv for kv in (env or {}).items()), ' '.join(args),
            p.returncode, (': ' + p.stderr.decode(errors='replace').strip()[:300])
            if p.stderr and p.returncode else ''))
        if check_rc is not None and p.returncode != check_rc:
            raise Divergence('graphctl %s: exit %d, expected %d: %s' % (
                ' '.join(args), p.returncode, check_rc, p.stderr.decode(errors='replace')))
        return p

    def init(self):
        self.ctl(['init', self.store, '--schema', self.schema_files['S0']], check_rc=0)

    def mount(self, env=None):
        """graphfs -f, so that its exit status is seen at unmount: a
        sanitizer report, a leak or a crash of the daemon is a failure."""
        assert not self.mounted
        e = dict(os.environ)
        e.pop('GRAPHFS_FAILPOINTS', None)
        if env:
            e.update(env)
        self.nmount += 1
        self.dlog = os.path.join(self.root, 'graphfs.%d.log' % self.nmount)
        self.mounted = True     # before: an error still unmounts
        with open(self.dlog, 'wb') as errf:
            self.daemon = subprocess.Popen([GRAPHFS, self.store, self.mnt, '-f'],
                                           stdout=subprocess.DEVNULL, stderr=errf, env=e,
                                           start_new_session=True)
        self.daemon_fp = bool(env)
        deadline = time.time() + 30 * FACTOR
        while not is_mounted(self.mnt):
            if self.daemon.poll() is not None:
                self.log('$ graphfs -f store mnt%s -> %d %s' % (
                    ' (%s)' % env if env else '', self.daemon.returncode, self.daemon_tail()))
                self.unmount()
                return False
            if time.time() > deadline:
                raise Divergence('graphfs did not mount in %d s' % (30 * FACTOR))
            time.sleep(0.005)
        self.log('$ graphfs -f store mnt%s: mounted' % (' (%s)' % env if env else ''))
        return True

    def daemon_tail(self):
        try:
            with open(self.dlog, 'rb') as f:
                return f.read()[-1500:].decode(errors='replace')
        except OSError:
            return ''

    def unmount(self):
        if not self.mounted:
            return
        self.mounted = False
        for _ in range(3):
            if not is_mounted(self.mnt):
                break
            subprocess.run(['fusermount3', '-u', self.mnt], capture_output=True,
                           timeout=20 * FACTOR)
            deadline = time.time() + 10 * FACTOR
            while is_mounted(self.mnt) and time.time() < deadline:
                time.sleep(0.01)
        if is_mounted(self.mnt):
            subprocess.run(['umount', '-l', self.mnt], capture_output=True, timeout=20)
            raise Divergence('the mount would not go away (fusermount3 -u failed)')
        d, self.daemon = self.daemon, None
        if d is None:
            return
        try:
            rc = d.wait(timeout=60 * FACTOR)
        except subprocess.TimeoutExpired:
            d.kill()
            d.wait()
            raise Divergence('graphfs did not exit after its unmount: %s' % self.daemon_tail())
        if rc != 0 and not (self.daemon_fp and rc == FP_EXIT):
            raise Divergence('graphfs exited with status %d:\n%s' % (rc, self.daemon_tail()))

    def ensure_mounted(self):
        if not self.mounted:
            if not self.mount():
                raise Divergence('graphfs failed to mount the store')

    def data_file(self, lines):
        self.nfile += 1
        p = os.path.join(self.root, 'in%d.jsonl' % self.nfile)
        with open(p, 'w') as f:
            for ln in lines:
                f.write(json.dumps(ln, ensure_ascii=False) + '\n')
        return p

    def sh(self, argv, env=None):
        e = dict(os.environ)
        e.pop('GRAPHFS_FAILPOINTS', None)
        p = subprocess.run(['timeout', str(60 * FACTOR)] + argv, capture_output=True, env=e)
        self.log('$ %s -> %d %s' % (' '.join(argv), p.returncode,
                                    p.stderr.decode(errors='replace').strip()[:200]))
        return p.returncode

    def view(self, b):
        return self.mnt if b == 'main' else os.path.join(self.mnt, 'branches', b)


def run_graphctl_op(real, m, op, env=None):
    """Runs a graphctl op; returns its exit status."""
    k = op['k']
    S = real.store
    if k == 'load':
        f = real.data_file(op['lines'])
        a = ['load', S, '--data', f, '--mode', op['mode'], '--quiet']
        if op['b'] != 'main':
            a += ['--branch', op['b']]
        return real.ctl(a, env).returncode
    if k == 'merge':
        a = ['merge', S, op['src'], '--into', op['into'], '--quiet']
        if op['prefer']:
            a += ['--prefer', op['prefer']]
        return real.ctl(a, env).returncode
    if k == 'schema':
        opts = m.schema_apply(op['to'])[1]
        return real.ctl(['schema', 'apply', S, real.schema_files[op['to']], '--quiet']
                        + opts, env).returncode
    if k == 'compact':
        a = ['compact', S, '--quiet']
        if op['b'] != 'main':
            a += ['--branch', op['b']]
        return real.ctl(a, env).returncode
    if k == 'gc':
        # the checks opened files under versions/N, and a FUSE RELEASE
        # (which ends a hold) comes after close() returned: wait, bounded,
        # until gc sees no hold, so its plan is the model's
        deadline = time.time() + 20 * FACTOR
        while True:
            p = real.ctl(['gc', S, '--keep-last', str(op['keep']), '--dry-run', '--json'])
            try:
                held = json.loads(p.stdout.decode()).get('held', []) if p.returncode == 0 else []
            except ValueError:
                held = []
            if not held:
                break
            if time.time() > deadline:
                raise Divergence('versions %s stay held with no file open' % held)
            time.sleep(0.01)
        return real.ctl(['gc', S, '--keep-last', str(op['keep']), '--quiet'], env).returncode
    raise AssertionError(k)


def mount_path_ops(real, m, op):
    """The shell commands of a write through the mount (the model's state
    names the files: an edge's name depends on PAIR_FIRST and its id)."""
    V = real.view(op['b'])
    a = op['a']
    if a == 'put':
        f = os.path.join(real.root, 'put.json')
        with open(f, 'w') as fh:
            fh.write(json.dumps(op['data'], ensure_ascii=False) + '\n')
        return [['cp', f, os.path.join(V, 'nodes', op['t'], enc(op['key']) + '.json')]]
    if a == 'rm':
        return [['rm', os.path.join(V, 'nodes', op['t'], enc(op['key']) + '.json')]]
    if a == 'mv':
        d = os.path.join(V, 'nodes', op['t'])
        return [['mv', '-T', os.path.join(d, enc(op['key']) + '.json'),
                 os.path.join(d, enc(op['to']) + '.json')]]
    if a == 'sed':
        return [['sed', '-i', 's/%s/%s/' % (op['old'], op['new']),
                 os.path.join(V, 'nodes', op['t'], enc(op['key']) + '.json')]]
    e = op['e']
    to_t = 'Person' if e == 'Knows' else 'Company'
    if a == 'ln':
        if op['via'] == 'out':
            d = os.path.join(V, 'nodes', 'Person', enc(op['from']), 'out', e)
            return [['ln', '-s', '../../../../%s/%s.json' % (to_t, enc(op['to'])),
                     os.path.join(d, enc(op['to']) + '.json')]]
        d = os.path.join(V, 'nodes', to_t, enc(op['to']), 'in', e)
        return [['ln', '-s', '../../../../Person/%s.json' % enc(op['from']),
                 os.path.join(d, enc(op['from']) + '.json')]]
    if a == 'eput':
        name_to = enc(op['to']) + '.json'
        b = op['b']
        if b in m.branches:
            cands = sorted([r for r in m.head(b).tables.get('edge:' + e, {}).values()
                            if r.frm == op['from'] and r.to == op['to']],
                           key=lambda r: r.id.encode())
            if cands and cands[op['i'] % len(cands)].first is not None:
                name_to = edge_name(cands[op['i'] % len(cands)], op['to'])
        f = os.path.join(real.root, 'eput.json')
        with open(f, 'w') as fh:
            fh.write(json.dumps(op['data'], ensure_ascii=False) + '\n')
        return [['cp', f, os.path.join(V, 'edges', e, enc(op['from']), name_to)]]
    if a == 'rmedge':
        name_to = enc(op['to']) + '.json'
        b = op['b']
        if b in m.branches:
            et = 'edge:' + e
            cands = sorted([r for r in m.head(b).tables.get(et, {}).values()
                            if r.frm == op['from'] and r.to == op['to']],
                           key=lambda r: r.id.encode())
            if cands:
                r = cands[op['i'] % len(cands)]
                name_to = edge_name(r, op['to'])
        if op['via'] == 'edges':
            return [['rm', os.path.join(V, 'edges', e, enc(op['from']), name_to)]]
        if op['via'] == 'out':
            return [['rm', os.path.join(V, 'nodes', 'Person', enc(op['from']), 'out', e,
                                        name_to)]]
        name_from = enc(op['from']) + name_to[len(enc(op['to'])):]
        return [['rm', os.path.join(V, 'nodes', to_t, enc(op['to']), 'in', e, name_from)]]
    raise AssertionError(a)


# ---------------------------------------------------------------------------
# Observation and comparison

def observe(real):
    """(top, removed set, {branch: head}) from graphctl log/branch list."""
    p = real.ctl(['log', real.store, '--json'], check_rc=0)
    log = [json.loads(ln) for ln in p.stdout.decode().splitlines() if ln.strip()]
    removed = {x['version'] for x in log if x.get('removed')}
    p = real.ctl(['branch', 'list', real.store, '--json'], check_rc=0)
    br = {x['name']: x['head'] for x in json.loads(p.stdout.decode())}
    return len(log), removed, br, [x['op'] for x in log], log


def summary(m):
    return (m.top, {n for n, v in m.versions.items() if v.removed},
            {b: h[0] for b, h in m.branches.items()},
            [m.versions[n].op for n in sorted(m.versions)])


def choose(real, outs, rc):
    top, removed, br, ops, _ = observe(real)
    fits = []
    for rcc, m in outs:
        if rcc == 'ok' and rc != 0 or rcc == 'fail' and rc == 0:
            continue
        if summary(m) == (top, removed, br, ops):
            fits.append(m)
    if not fits:
        raise Divergence('no outcome the model allows: exit %d, store has top %d, removed '
                         '%s, branches %s, ops %s; the model allows %s' % (
                             rc, top, sorted(removed), br, ops,
                             ['%s top %d removed %s branches %s ops %s' % (
                                 rcc, summary(m)[0], sorted(summary(m)[1]), summary(m)[2],
                                 summary(m)[3]) for rcc, m in outs]))
    return fits[0]


def learn_ids(real, m, before_top):
    """Generated edge ids (ln -s) are learned from the export of the version
    that created them: the one edge of that table the model has not named."""
    for n in range(before_top + 1, m.top + 1):
        v = m.versions[n]
        for tb, rows in v.tables.items():
            unknown = [r for r in rows.values() if r.id.startswith('?gen')]
            if not unknown:
                continue
            assert len(unknown) == 1
            r = unknown[0]
            p = real.ctl(['export', real.store, '--version', str(n), '--type',
                          tb.split(':', 1)[1]], check_rc=0)
            ids = []
            for ln in p.stdout.decode().splitlines():
                o = json.loads(ln)
                if o['data']['id'] not in rows and o['from'] == r.frm and o['to'] == r.to:
                    ids.append(o['data']['id'])
            if len(ids) != 1:
                raise Divergence('version %d: the new %s edge %s -> %s is not in the export '
                                 '(candidates %s)' % (n, tb, r.frm, r.to, ids))
            old = r.id
            r.id = ids[0]
            # rename it in every version holding it (only this one so far)
            for x in m.versions.values():
                t = x.tables.get(tb)
                if t is not None and old in t:
                    del t[old]
                    t[r.id] = r


def expected_tree(v, live=False):
    """path -> ('d',) | ('f', bytes) | ('l', target) under a version dir."""
    sn = v.schema
    T = {}
    if not live:
        T['schema.pg'] = ('f', SCHEMAS[sn][0].encode())
    T['nodes'] = ('d',)
    T['edges'] = ('d',)
    for t in node_types(sn):
        tb = 'node:' + t
        T['nodes/%s.jsonl' % t] = ('f', table_text(v, tb).encode())
        T['nodes/' + t] = ('d',)
        for k, r in v.tables[tb].items():
            base = 'nodes/%s/%s' % (t, enc(k))
            T[base + '.json'] = ('f', (r.data_json(sn) + '\n').encode())
            T[base] = ('d',)
            T[base + '/out'] = ('d',)
            T[base + '/in'] = ('d',)
    for e in edge_types(sn):
        et = 'edge:' + e
        d = edge_def(sn, e)
        T['edges/%s.jsonl' % e] = ('f', table_text(v, et).encode())
        T['edges/' + e] = ('d',)
        for r in v.tables[et].values():
            fd = 'edges/%s/%s' % (e, enc(r.frm))
            T[fd] = ('d',)
            T[fd + '/' + edge_name(r, r.to)] = ('f', (r.data_json(sn) + '\n').encode())
            o = 'nodes/%s/%s/out/%s' % (d[1], enc(r.frm), e)
            T[o] = ('d',)
            T[o + '/' + edge_name(r, r.to)] = ('l', '../../../../%s/%s.json' % (d[2], enc(r.to)))
            i = 'nodes/%s/%s/in/%s' % (d[2], enc(r.to), e)
            T[i] = ('d',)
            T[i + '/' + edge_name(r, r.frm)] = ('l', '../../../../%s/%s.json' % (d[1], enc(r.frm)))
    return T


def actual_tree(root, top_names):
    T = {}

    def walk(rel):
        p = os.path.join(root, rel) if rel else root
        for name in sorted(os.listdir(p)):
            r = rel + '/' + name if rel else name
            if not rel and name not in top_names:
                continue
            fp = os.path.join(root, r)
            st = os.lstat(fp)
            if os.path.islink(fp):
                T[r] = ('l', os.readlink(fp))
            elif os.path.isdir(fp):
                T[r] = ('d',)
                walk(r)
            else:
                with open(fp, 'rb') as f:
                    data = f.read()
                if st.st_size != len(data):
                    T[r] = ('f', data, 'st_size %d' % st.st_size)
                else:
                    T[r] = ('f', data)
    walk('')
    return T


def learn_flags(v, act, where):
    """PAIR_FIRST the docs leave open: read it from the edge's file name."""
    for e in edge_types(v.schema):
        for r in v.tables['edge:' + e].values():
            if r.first is not None:
                continue
            base = 'edges/%s/%s/' % (e, enc(r.frm))
            with_id = base + enc(r.to) + '~' + enc(r.id) + '.json'
            plain = base + enc(r.to) + '.json'
            if with_id in act:
                r.first = False
            elif plain in act and act[plain][0] == 'f' and \
                    json.loads(act[plain][1]).get('id') == r.id:
                r.first = True
            else:
                raise Divergence('%s: edge %s %s (%s -> %s) has no file in %s' % (
                    where, e, r.id, r.frm, r.to, base))


def diff_trees(exp, act, where):
    problems = []
    for k in sorted(set(exp) | set(act)):
        if k not in act:
            problems.append('%s/%s: missing (expected %s)' % (where, k, exp[k][0]))
        elif k not in exp:
            problems.append('%s/%s: unexpected %s %r' % (where, k, act[k][0], act[k][1:][:1]))
        elif exp[k] != act[k]:
            problems.append('%s/%s: %r, expected %r' % (where, k, act[k][1:], exp[k][1:]))
        if len(problems) > 8:
            break
    if problems:
        raise Divergence('\n  '.join(problems))


def check_all(real, m, stats):
    """Every version and view against the model."""
    real.ensure_mounted()
    top, removed, br, ops, log = observe(real)
    if (top, removed, br, ops) != summary(m):
        raise Divergence('store has top %d removed %s branches %s ops %s; model %s' % (
            top, sorted(removed), br, ops, summary(m)))
    for x in log:
        v = m.versions[x['version']]
        want = {'version': v.n, 'op': v.op}
        got = {'version': x['version'], 'op': x['op']}
        if not v.removed:
            want.update(branch=v.branch, parents=v.parents)
            got.update(branch=x.get('branch'), parents=x.get('parents'))
        if want != got:
            raise Divergence('log line %d: %s, model %s' % (v.n, got, want))
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(120 * FACTOR)
    try:
        for n in sorted(m.versions):
            v = m.versions[n]
            vd = os.path.join(real.mnt, 'versions', str(n))
            if v.removed:
                p = real.ctl(['export', real.store, '--version', str(n)])
                if p.returncode == 0:
                    raise Divergence('export --version %d of a removed version succeeded' % n)
                # the notifier drops the entry when it sees meta/gc move
                # (docs/branches-design.md 6.5): bounded wait
                deadline = time.time() + 20 * FACTOR
                while os.path.exists(vd):
                    if time.time() > deadline:
                        raise Divergence('versions/%d of a removed version stays' % n)
                    time.sleep(0.005)
                continue
            p = real.ctl(['export', real.store, '--version', str(n)])
            if p.returncode != 0 or p.stdout.decode() != export_text(v):
                raise Divergence('export --version %d (exit %d) differs from the model:\n'
                                 'store:\n%smodel:\n%s' % (n, p.returncode,
                                                            p.stdout.decode(), export_text(v)))
            stats['exports'] += 1
            act = actual_tree(vd, ('schema.pg', 'nodes', 'edges'))
            learn_flags(v, act, 'versions/%d' % n)
            diff_trees(expected_tree(v), act, 'versions/%d' % n)
            with open(os.path.join(vd, 'manifest.json')) as f:
                man = json.load(f)
            got = (man.get('version'), man.get('branch'), man.get('parents'), man.get('op'))
            if got != (n, v.branch, v.parents, v.op):
                raise Divergence('versions/%d/manifest.json: %s, model %s' % (
                    n, got, (n, v.branch, v.parents, v.op)))
            stats['version_dirs'] += 1
        # the live view: main's head, once the notifier has seen the top
        deadline = time.time() + 30 * FACTOR
        while True:
            with open(os.path.join(real.mnt, '.graphfs', 'seen')) as f:
                seen = int(f.read().strip() or 0)
            if seen >= m.top:
                break
            if time.time() > deadline:
                raise Divergence('.graphfs/seen stays at %d below %d' % (seen, m.top))
            time.sleep(0.005)
        hv = m.head('main')
        diff_trees(expected_tree(hv, live=True), actual_tree(real.mnt, ('nodes', 'edges')),
                   'live view (main at %d)' % hv.n)
        # a branch create/delete publishes no version: the notifier sees it
        # at its next poll (docs/mount.md, "Branches"): bounded wait
        deadline = time.time() + 20 * FACTOR
        while True:
            names = sorted(os.listdir(os.path.join(real.mnt, 'branches')))
            if names == sorted(m.branches):
                break
            if time.time() > deadline:
                raise Divergence('branches/ lists %s, model %s' % (names, sorted(m.branches)))
            time.sleep(0.005)
        for b in m.branches:
            v = m.head(b)
            diff_trees(expected_tree(v, live=True),
                       actual_tree(os.path.join(real.mnt, 'branches', b), ('nodes', 'edges')),
                       'branches/%s (at %d)' % (b, v.n))
    finally:
        signal.alarm(0)


# ---------------------------------------------------------------------------
# Running one sequence

def recover(real, rec, recfp):
    if rec == 'recover':
        if recfp:
            p = real.ctl(['recover', real.store], env={'GRAPHFS_FAILPOINTS': fp_spec(recfp)})
            if p.returncode not in (0, FP_EXIT):
                raise Divergence('recover with %s: exit %d' % (recfp, p.returncode))
        real.ctl(['recover', real.store, '--quiet'], check_rc=0)
    elif rec == 'mount':
        real.unmount()
        real.ensure_mounted()
        # the mount resolves dead writers' sidecars; wait until it has
        deadline = time.time() + 30 * FACTOR
        while True:
            with open(os.path.join(real.mnt, '.graphfs', 'sidecars.jsonl')) as f:
                if not f.read().strip():
                    break
            if time.time() > deadline:
                raise Divergence('the mount left sidecars pending')
            time.sleep(0.01)


def run_op(real, m, op, stats):
    """Runs op against the store; returns the model chosen from its outcomes."""
    k = op['k']
    outs = model_apply(m, op)
    before = m.top
    if k in ('load', 'merge', 'schema', 'compact', 'gc'):
        rc = run_graphctl_op(real, m, op)
        if rc not in (0, 1):
            raise Divergence('%s: exit %d' % (k, rc))
    elif k == 'mw':
        real.ensure_mounted()
        rc = 0
        for argv in mount_path_ops(real, m, op):
            rc = rc or real.sh(argv)
    elif k == 'ingest':
        real.ensure_mounted()
        f = real.data_file(op['lines'])
        d = os.path.join(real.mnt, 'ingest', {'merge': '', 'append': 'append',
                                               'overwrite': 'overwrite'}[op['mode']])
        rc = real.sh(['cp', f, os.path.join(d, os.path.basename(f))])
    elif k == 'branch':
        a = ['branch', 'create', real.store, op['name']]
        if op['from'] is not None:
            a += ['--from', op['from']]
        rc = real.ctl(a).returncode
    elif k == 'bdel':
        rc = real.ctl(['branch', 'delete', real.store, op['name']]).returncode
    elif k == 'kill':
        stats['kills'] += 1
        rc = run_graphctl_op(real, m, op['inner'], env={'GRAPHFS_FAILPOINTS':
                                                         fp_spec(op['fp'])})
        if rc == FP_EXIT:
            stats['killed'] += 1
        if rc == FP_EXIT:
            p = real.ctl(['recover', real.store, '--list', '--json'])
            if p.returncode != 0:
                raise Divergence('recover --list: exit %d' % p.returncode)
        recover(real, op['rec'], op.get('recfp'))
    elif k == 'sigkill':
        stats['kills'] += 1
        inner = op['inner']
        f = real.data_file(inner['lines'])
        a = [GRAPHCTL, 'load', real.store, '--data', f, '--mode', inner['mode'], '--quiet']
        if inner['b'] != 'main':
            a += ['--branch', inner['b']]
        e = dict(os.environ)
        e.pop('GRAPHFS_FAILPOINTS', None)
        p = subprocess.Popen(a, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(op['us'] / 1e6)      # where it dies is random, not ordering
        p.send_signal(signal.SIGKILL)
        rc = p.wait(timeout=60 * FACTOR)
        real.log('$ graphctl load (SIGKILL after %d us) -> %d' % (op['us'], rc))
        if rc == -9:
            stats['killed'] += 1
        recover(real, op['rec'], None)
    elif k == 'mkill':
        stats['kills'] += 1
        real.unmount()
        up = real.mount(env={'GRAPHFS_FAILPOINTS': fp_spec(op['fp'])})
        if up:
            for argv in mount_path_ops(real, m, op['inner']):
                real.sh(argv)
            if real.daemon.poll() is not None:      # it died at the point
                stats['killed'] += 1
            real.unmount()
        rc = 0
        recover(real, op['rec'], None)
    elif k == 'remount':
        real.unmount()
        real.ensure_mounted()
        rc = 0
    elif k == 'recover':
        rc = real.ctl(['recover', real.store, '--quiet']).returncode
        if rc != 0:
            raise Divergence('recover with nothing to do: exit %d' % rc)
    else:
        raise AssertionError(k)
    if k in ('kill', 'sigkill', 'mkill'):
        rc = 0
    chosen = choose(real, outs, rc)
    learn_ids(real, chosen, before)
    kind = k if k not in ('kill', 'sigkill', 'mkill') else k + ':' + op['inner']['k']
    if k == 'mw':
        kind += ':' + op['a']
    res = 'new' if chosen.top > before else ('same' if rc == 0 else 'refused')
    if k == 'gc' and chosen is not m:
        res = 'removed' if summary(chosen)[1] != summary(m)[1] else 'same'
    if k in ('kill', 'sigkill', 'mkill'):
        res = ('rolled back' if chosen.top > before and chosen.versions[chosen.top].op ==
               'recover' else res)
    key = '%s %s' % (kind, res)
    stats['outcomes'][key] = stats['outcomes'].get(key, 0) + 1
    return chosen


def run_sequence(seed, ops, keep, workdir, stats, verbose=False, quiet_log=None):
    lines = []

    def log(s):
        lines.append(s)
        if verbose:
            print('  ' + s, flush=True)

    root = tempfile.mkdtemp(prefix='gfs-model.', dir=workdir)
    os.chmod(root, 0o755)
    real = Real(root, log)
    m = Model()
    m.init('S0')
    step = None
    try:
        real.init()
        real.ensure_mounted()
        check_all(real, m, stats)
        for i in keep:
            step = i
            op = ops[i]
            log('step %d: %s' % (i, json.dumps(op, ensure_ascii=False)))
            m = run_op(real, m, op, stats)
            check_all(real, m, stats)
            stats['steps'] += 1
        # the store is sound at the end
        real.unmount()
        p = real.ctl(['fsck', real.store])
        if p.returncode != 0:
            raise Divergence('fsck: exit %d: %s' % (p.returncode,
                                                    (p.stdout + p.stderr).decode()[-2000:]))
        return None
    except (Divergence, Timeout, subprocess.TimeoutExpired, OSError) as ex:
        return (step, '%s: %s' % (type(ex).__name__, ex), lines)
    finally:
        if os.environ.get('GRAPHFS_MODEL_HOLD'):
            # debugging by hand: leave the store (mounted); unmount it yourself
            print('# held: store %s mounted at %s' % (real.store, real.mnt), flush=True)
        else:
            try:
                real.unmount()
            except Exception as ex:   # noqa: BLE001 - report, keep cleaning
                print('# cleanup: %s' % ex, flush=True)
            if is_mounted(real.mnt):
                subprocess.run(['umount', '-l', real.mnt], capture_output=True)
            shutil.rmtree(root, ignore_errors=True)


def ddmin(seq, fails, budget):
    """Delta debugging (Zeller): a 1-minimal subsequence that still fails,
    within `budget` test runs."""
    n = 2
    runs = 0
    while len(seq) >= 2 and runs < budget:
        chunk = max(1, len(seq) // n)
        subsets = [seq[i:i + chunk] for i in range(0, len(seq), chunk)]
        reduced = False
        for i in range(len(subsets)):
            comp = [x for j, s in enumerate(subsets) if j != i for x in s]
            runs += 1
            if comp and fails(comp):
                seq, n, reduced = comp, max(n - 1, 2), True
                break
            if runs >= budget:
                break
        if not reduced:
            if n >= len(seq):
                break
            n = min(len(seq), n * 2)
    return seq


def main():
    # a TERM (make check's timeout, a ^C of the wrapper) unwinds: every
    # `finally` unmounts what it mounted
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=int)
    ap.add_argument('--sequences', type=int, default=0)
    ap.add_argument('--seconds', type=float, default=0)
    ap.add_argument('--steps', default='8-20')
    ap.add_argument('--keep', help='comma-separated op indexes (a shrunk replay)')
    ap.add_argument('--shrink-runs', type=int, default=60)
    ap.add_argument('--workdir', default=os.environ.get('TMPDIR', '/tmp'))
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    nmin, nmax = (int(x) for x in args.steps.split('-'))
    seed0 = args.seed if args.seed is not None else int(time.time()) % 1000000
    replay = args.keep is not None or (args.seed is not None and args.sequences <= 1
                                       and not args.seconds)
    stats = {'sequences': 0, 'steps': 0, 'kills': 0, 'killed': 0, 'exports': 0,
             'version_dirs': 0, 'outcomes': {}}
    me = 'GRAPHCTL=%s GRAPHFS=%s %s' % (GRAPHCTL, GRAPHFS, os.path.abspath(__file__))
    steps_opt = '' if args.steps == '8-20' else ' --steps %s' % args.steps
    t0 = time.time()
    i = 0
    div = 0
    while True:
        if replay and i == 1:
            break
        if not replay:
            if args.sequences and i >= args.sequences:
                break
            if args.seconds and time.time() - t0 >= args.seconds:
                break
            if not args.sequences and not args.seconds and i >= 1:
                break
        seed = seed0 + i
        i += 1
        ops = generate(seed, nmin, nmax)
        keep = (list(range(len(ops))) if args.keep is None else
                [int(x) for x in args.keep.split(',') if x != ''])
        res = run_sequence(seed, ops, keep, args.workdir, stats, verbose=args.verbose)
        stats['sequences'] += 1
        if res is None:
            continue
        div += 1
        step, msg, lines = res
        print('# DIVERGENCE in sequence seed %d at op %s:\n%s' % (seed, step, msg), flush=True)
        print('# its log:\n' + '\n'.join('#   ' + ln for ln in lines[-40:]), flush=True)
        print('# replay: %s --seed %d%s' % (me, seed, steps_opt), flush=True)
        upto = keep[:keep.index(step) + 1] if step in keep else keep
        shrink_stats = dict(stats)
        small = ddmin(upto, lambda sub: run_sequence(seed, ops, sub, args.workdir,
                                                     shrink_stats) is not None,
                      args.shrink_runs)
        res2 = run_sequence(seed, ops, small, args.workdir, shrink_stats)
        if res2 is not None:
            print('# shrunk from %d to %d op(s): %s' % (len(upto), len(small), res2[1]))
            for j in small:
                print('#   op %d: %s' % (j, json.dumps(ops[j], ensure_ascii=False)))
            print('# shortest replay: %s --seed %d%s --keep %s -v' % (
                me, seed, steps_opt, ','.join(map(str, small))), flush=True)
        else:
            print('# shrinking did not reproduce it (flaky); replay the whole sequence')
        break
    if args.verbose or os.environ.get('GRAPHFS_MODEL_OUTCOMES'):
        for key in sorted(stats['outcomes']):
            print('#   %-28s %d' % (key, stats['outcomes'][key]))
    print('# summary: model, sequences %d, steps %d, writers killed %d of %d tried, exports '
          'compared %d, version dirs compared %d, divergences %d, seed %d, %.0f s' % (
              stats['sequences'], stats['steps'], stats['killed'], stats['kills'],
              stats['exports'], stats['version_dirs'], div, seed0, time.time() - t0),
          flush=True)
    return 1 if div else 0


if __name__ == '__main__':
    sys.exit(main())
