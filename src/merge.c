/* merge.c - the row-level three-way merge (merge.h).
 *
 * Per table, two diffs against the base (gfs_tver_diff: pages both
 * versions share are skipped), each kept as the rows whose content
 * changed, in id order; a merge join of the two classifies every id.
 * A row the merge takes from the source is a `take` on its diff entry;
 * what --prefer adds (an edge deleted, a node put back) is an `extra`
 * row.  The merged graph is validated by apply.c's validation
 * (gfs_apply_check) with the takes as changes, in an order in which a
 * valid merge never fails midway: node puts, edge deletes, node deletes
 * (which must leave no edge), edge puts.  The build copies every taken
 * line into the new version's own segment (invariant 149).
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "codec.h"
#include "commit.h"
#include "manifest.h"
#include "merge.h"

/* One row whose content a side changed since the base: its new state. */
struct mrow {
	struct gfs_buf id, src, dst, line; /* line: '\n' included; empty if deleted */
	bool present, was;                 /* now; in the base */
	uint64_t serial;
	uint32_t changed, data_off, data_len;
	int take;                          /* source rows: 1 taken, 2 held
					      back by an endpoint conflict */
};

struct mvec {
	struct mrow *v;
	size_t n, cap;
};

struct mtab {
	bool given;
	struct gfs_tver *b, *t, *s; /* borrowed */
	struct mvec dt, ds;         /* changes since b: target, source */
	struct mvec extra;          /* rows --prefer adds (taken) */
	uint64_t *tser;             /* new serials of target rows, sorted */
	size_t ntser, capser;
	uint64_t base_next;
	bool dropped;               /* a source change --prefer left out */
	/* the source gave a row of the same bytes another PAIR_FIRST (its
	 * name, <to>.json or <to>~<id>.json): adopting its version would
	 * rename that edge in the target, so the table is written */
	bool renames;
};

/* What an item refers to, for --prefer: its table and diff entries. */
struct iref {
	size_t t;
	long ti, si;                /* entries of dt / ds, -1: none */
};

struct gfs_merge {
	const struct gfs_schema *s;
	struct mtab *tab;
	struct gfs_merge_item *it;
	struct iref *ref;
	size_t nit, capit;
	uint64_t pages;
};

static const char *const kind_names[] = { "changed", "deleted", "endpoint", "invalid" };

const char *gfs_merge_kind_name(enum gfs_merge_kind k)
{
	return (unsigned)k < GFS_ARRAY_SIZE(kind_names) ? kind_names[k] : "?";
}

int gfs_merge_prefer_parse(const char *s, enum gfs_merge_prefer *out)
{
	if (!strcmp(s, "source"))
		*out = GFS_PREFER_SOURCE;
	else if (!strcmp(s, "target"))
		*out = GFS_PREFER_TARGET;
	else
		return -EINVAL;
	return 0;
}

/* ---- rows ------------------------------------------------------------- */

static int keycmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = al && bl ? memcmp(a, b, al < bl ? al : bl) : 0;

	return c ? c : al < bl ? -1 : al > bl;
}

static void mrow_release(struct mrow *r)
{
	gfs_buf_release(&r->id);
	gfs_buf_release(&r->src);
	gfs_buf_release(&r->dst);
	gfs_buf_release(&r->line);
}

static void mvec_release(struct mvec *v)
{
	for (size_t i = 0; i < v->n; i++)
		mrow_release(&v->v[i]);
	free(v->v);
	memset(v, 0, sizeof *v);
}

/* A new zeroed row at the end of v, or NULL (ENOMEM). */
static struct mrow *mvec_add(struct mvec *v)
{
	struct mrow *p = gfs_array_grow(v->v, &v->cap, v->n + 1, sizeof *v->v, 16);

	if (!p)
		return NULL;
	v->v = p;
	p = &v->v[v->n++];
	memset(p, 0, sizeof *p);
	gfs_buf_init(&p->id);
	gfs_buf_init(&p->src);
	gfs_buf_init(&p->dst);
	gfs_buf_init(&p->line);
	return p;
}

/* The entry of v with this id (v is in id order), or -1. */
static long mvec_find(const struct mvec *v, const char *id, size_t len)
{
	size_t lo = 0, hi = v->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = keycmp(v->v[mid].id.p, v->v[mid].id.len, id, len);
		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int read_line(struct gfs_tver *tv, const struct gfs_row *row, struct gfs_buf *out)
{
	size_t got;
	int rc;

	gfs_buf_reset(out);
	rc = gfs_buf_reserve(out, row->line_len + 1);
	if (!rc)
		rc = gfs_tver_read_row(tv, row, 0, out->p, row->line_len, &got);
	if (!rc && got != row->line_len)
		rc = GFS_ECORRUPT;
	if (!rc) {
		out->len = got;
		out->p[got] = '\0';
	}
	return rc;
}

/* Fills r from a stored row of tv (present). */
static int mrow_fill(struct mrow *r, struct gfs_tver *tv, const struct gfs_row *row)
{
	int rc = gfs_buf_append(&r->id, row->id, row->id_len);

	if (!rc && row->src)
		rc = gfs_buf_append(&r->src, row->src, row->src_len);
	if (!rc && row->dst)
		rc = gfs_buf_append(&r->dst, row->dst, row->dst_len);
	if (!rc)
		rc = read_line(tv, row, &r->line);
	r->present = true;
	r->serial = row->serial;
	r->changed = row->changed;
	r->data_off = row->data_off;
	r->data_len = row->data_len;
	return rc;
}

static bool same_content(const struct mrow *a, const struct mrow *b)
{
	if (a->present != b->present)
		return false;
	return !a->present || (a->line.len == b->line.len &&
			       !memcmp(a->line.p, b->line.p, a->line.len));
}

/* ---- the diffs -------------------------------------------------------- */

struct dctx {
	struct mtab *mt;
	struct gfs_tver *oldv, *newv;
	struct mvec *out;
	bool target;
};

static int note_serial(struct mtab *mt, uint64_t serial)
{
	uint64_t *p = gfs_array_grow(mt->tser, &mt->capser, mt->ntser + 1, sizeof *p, 16);

	if (!p)
		return -ENOMEM;
	mt->tser = p;
	mt->tser[mt->ntser++] = serial;
	return 0;
}

/* Same bytes under another record (a new serial): no change of content. */
static int same_bytes(struct dctx *x, const struct gfs_row *old, const struct gfs_row *nw,
		      bool *same)
{
	struct gfs_buf a, b;
	int rc;

	*same = false;
	if (old->line_len != nw->line_len || old->hash != nw->hash)
		return 0;
	gfs_buf_init(&a);
	gfs_buf_init(&b);
	rc = read_line(x->oldv, old, &a);
	if (!rc)
		rc = read_line(x->newv, nw, &b);
	*same = !rc && a.len == b.len && !memcmp(a.p, b.p, a.len);
	gfs_buf_release(&a);
	gfs_buf_release(&b);
	return rc;
}

static int on_diff(void *arg, const struct gfs_row *old, const struct gfs_row *nw)
{
	struct dctx *x = arg;
	struct mrow *r;
	bool same = false;
	int rc = 0;

	if (x->target && nw && nw->serial >= x->mt->base_next)
		rc = note_serial(x->mt, nw->serial);
	if (!rc && old && nw)
		rc = same_bytes(x, old, nw, &same);
	if (!rc && same && !x->target &&
	    ((old->flags ^ nw->flags) & GFS_ROW_PAIR_FIRST))
		x->mt->renames = true;
	if (rc || same)
		return rc;
	if (!(r = mvec_add(x->out)))
		return -ENOMEM;
	r->was = old != NULL;
	if (nw)
		return mrow_fill(r, x->newv, nw);
	rc = gfs_buf_append(&r->id, old->id, old->id_len);
	if (!rc && old->src)
		rc = gfs_buf_append(&r->src, old->src, old->src_len);
	if (!rc && old->dst)
		rc = gfs_buf_append(&r->dst, old->dst, old->dst_len);
	return rc;
}

static int side_diff(struct gfs_merge *m, struct mtab *mt, struct gfs_tver *nv,
		     struct mvec *out, bool target)
{
	struct dctx x = { .mt = mt, .oldv = mt->b, .newv = nv, .out = out, .target = target };
	uint64_t pages = 0;
	int rc;
	struct gfs_tver_info bi, ni;

	gfs_tver_info(mt->b, &bi);
	gfs_tver_info(nv, &ni);
	if (bi.version == ni.version)
		return 0;
	rc = gfs_tver_diff(mt->b, nv, on_diff, &x, &pages);
	m->pages += pages;
	return rc;
}

static int u64cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ---- items ------------------------------------------------------------ */

static void item_release(struct gfs_merge_item *it)
{
	gfs_buf_release(&it->key);
	gfs_buf_release(&it->target);
	gfs_buf_release(&it->source);
	gfs_buf_release(&it->node_key);
}

static struct gfs_merge_item *item_add(struct gfs_merge *m, enum gfs_merge_kind k,
				       size_t t, long ti, long si)
{
	size_t cap = m->capit;
	struct gfs_merge_item *p = gfs_array_grow(m->it, &cap, m->nit + 1, sizeof *p, 8);
	struct iref *q;

	if (!p)
		return NULL;
	m->it = p;
	cap = m->capit;
	q = gfs_array_grow(m->ref, &cap, m->nit + 1, sizeof *q, 8);
	if (!q)
		return NULL;
	m->ref = q;
	m->capit = cap;
	m->ref[m->nit] = (struct iref){ t, ti, si };
	p = &m->it[m->nit++];
	memset(p, 0, sizeof *p);
	p->kind = k;
	p->type = t;
	gfs_buf_init(&p->key);
	gfs_buf_init(&p->target);
	gfs_buf_init(&p->source);
	gfs_buf_init(&p->node_key);
	return p;
}

/* A side's line, without its '\n', into out. */
static int put_value(struct gfs_buf *out, const struct mrow *r)
{
	size_t n = r->line.len;

	if (!r->present)
		return 0;
	return gfs_buf_append(out, r->line.p, n && r->line.p[n - 1] == '\n' ? n - 1 : n);
}

static int add_conflict(struct gfs_merge *m, size_t t, long ti, long si)
{
	const struct mrow *a = &m->tab[t].dt.v[ti], *b = &m->tab[t].ds.v[si];
	struct gfs_merge_item *it = item_add(m, a->present && b->present ? GFS_MC_CHANGED
						: GFS_MC_DELETED, t, ti, si);
	int rc;

	if (!it)
		return -ENOMEM;
	it->in_target = a->present;
	it->in_source = b->present;
	rc = gfs_buf_append(&it->key, a->id.p, a->id.len);
	if (!rc)
		rc = put_value(&it->target, a);
	return rc ? rc : put_value(&it->source, b);
}

/* The merge join of the two diffs: take one-sided source changes, list
 * the differing two-sided ones. */
static int join(struct gfs_merge *m, size_t t)
{
	struct mtab *mt = &m->tab[t];
	size_t i = 0, j = 0;
	int rc = 0;

	while (!rc && (i < mt->dt.n || j < mt->ds.n)) {
		const struct mrow *a = i < mt->dt.n ? &mt->dt.v[i] : NULL;
		struct mrow *b = j < mt->ds.n ? &mt->ds.v[j] : NULL;
		int c = !a ? 1 : !b ? -1 : keycmp(a->id.p, a->id.len, b->id.p, b->id.len);
		if (c < 0) {
			i++;
			continue;
		}
		if (c > 0)
			b->take = 1;
		else if (!same_content(a, b))
			rc = add_conflict(m, t, (long)i, (long)j);
		i += c == 0;
		j++;
	}
	return rc;
}

int gfs_merge_new(const struct gfs_schema *s, struct gfs_merge **out)
{
	struct gfs_merge *m = calloc(1, sizeof *m);

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->s = s;
	m->tab = calloc(s->n_types + 1, sizeof *m->tab);
	if (!m->tab) {
		free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void gfs_merge_free(struct gfs_merge *m)
{
	if (!m)
		return;
	for (size_t t = 0; t < m->s->n_types; t++) {
		mvec_release(&m->tab[t].dt);
		mvec_release(&m->tab[t].ds);
		mvec_release(&m->tab[t].extra);
		free(m->tab[t].tser);
	}
	for (size_t i = 0; i < m->nit; i++)
		item_release(&m->it[i]);
	free(m->it);
	free(m->ref);
	free(m->tab);
	free(m);
}

int gfs_merge_table(struct gfs_merge *m, size_t t, struct gfs_tver *b,
		    struct gfs_tver *tt, struct gfs_tver *sv)
{
	struct mtab *mt;
	struct gfs_tver_info bi, ti, si;
	int rc;

	if (t >= m->s->n_types || m->tab[t].given)
		return -EINVAL;
	mt = &m->tab[t];
	gfs_tver_info(b, &bi);
	gfs_tver_info(tt, &ti);
	gfs_tver_info(sv, &si);
	mt->given = true;
	mt->b = b;
	mt->t = tt;
	mt->s = sv;
	mt->base_next = bi.next_serial;
	if (ti.version == si.version)
		return 0; /* the same version on both sides: kept */
	rc = side_diff(m, mt, tt, &mt->dt, true);
	if (!rc)
		rc = side_diff(m, mt, sv, &mt->ds, false);
	if (!rc && mt->ntser)
		qsort(mt->tser, mt->ntser, sizeof *mt->tser, u64cmp);
	return rc ? rc : join(m, t);
}

/* ---- endpoints and --prefer ------------------------------------------- */

/* Side y put edge row e of type et; did the other side delete endpoint
 * node (nt, id)?  Then it is an endpoint conflict. */
static int check_end(struct gfs_merge *m, size_t et, size_t ei, bool y_target,
		     size_t nt, const struct gfs_buf *id)
{
	struct mtab *mt = &m->tab[et], *nm = &m->tab[nt];
	const struct mvec *x = y_target ? &nm->ds : &nm->dt;
	const struct mvec *yv = y_target ? &mt->dt : &mt->ds;
	long k = nm->given ? mvec_find(x, id->p, id->len) : -1;
	struct gfs_merge_item *it;
	struct gfs_tver *other = y_target ? mt->s : mt->t;
	struct gfs_row row;
	int rc;

	if (k < 0 || x->v[k].present || !x->v[k].was)
		return 0;
	it = item_add(m, GFS_MC_ENDPOINT, et, y_target ? (long)ei : -1, y_target ? -1 : (long)ei);
	if (!it)
		return -ENOMEM;
	it->node_type = nt;
	it->deleted_by_source = y_target;
	rc = gfs_buf_append(&it->node_key, id->p, id->len);
	if (!rc)
		rc = gfs_buf_append(&it->key, yv->v[ei].id.p, yv->v[ei].id.len);
	if (!rc)
		rc = put_value(y_target ? &it->target : &it->source, &yv->v[ei]);
	it->in_target = y_target;
	it->in_source = !y_target;
	/* the edge on the side that deleted its endpoint, as that side has it */
	memset(&row, 0, sizeof row);
	if (!rc && (rc = gfs_tver_get(other, yv->v[ei].id.p, yv->v[ei].id.len, &row)) == 1) {
		struct gfs_buf *v = y_target ? &it->source : &it->target;
		rc = read_line(other, &row, v);
		if (!rc && v->len && v->p[v->len - 1] == '\n')
			v->p[--v->len] = '\0';
		if (!rc)
			*(y_target ? &it->in_source : &it->in_target) = true;
	}
	gfs_row_release(&row);
	return rc < 0 ? rc : 0;
}

static int endpoints(struct gfs_merge *m)
{
	int rc = 0;

	for (size_t et = 0; !rc && et < m->s->n_types; et++) {
		const struct gfs_typedef *td = &m->s->types[et];
		struct mtab *mt = &m->tab[et];
		if (!td->is_edge || !mt->given)
			continue;
		for (int side = 0; !rc && side < 2; side++) {
			const struct mvec *v = side ? &mt->ds : &mt->dt;
			for (size_t i = 0; !rc && i < v->n; i++) {
				const struct mrow *e = &v->v[i];
				if (!e->present)
					continue;
				rc = check_end(m, et, i, !side, td->from_idx, &e->src);
				if (!rc && !(td->to_idx == td->from_idx &&
					     e->dst.len == e->src.len &&
					     (!e->src.len || !memcmp(e->dst.p, e->src.p, e->src.len))))
					rc = check_end(m, et, i, !side, td->to_idx, &e->dst);
			}
		}
	}
	return rc;
}

/* An extra row of table t: row id of version tv (put), or a delete. */
static int add_extra(struct mtab *mt, const struct gfs_buf *id, struct gfs_tver *tv)
{
	struct mrow *r;
	struct gfs_row row;
	int rc = 0;

	for (size_t i = 0; i < mt->extra.n; i++)
		if (mt->extra.v[i].id.len == id->len &&
		    (!id->len || !memcmp(mt->extra.v[i].id.p, id->p, id->len)))
			return 0;
	if (!(r = mvec_add(&mt->extra)))
		return -ENOMEM;
	r->was = true;
	if (!tv)
		return gfs_buf_append(&r->id, id->p, id->len);
	memset(&row, 0, sizeof row);
	rc = gfs_tver_get(tv, id->p, id->len, &row);
	if (rc == 1)
		rc = mrow_fill(r, tv, &row);
	else if (rc == 0)
		rc = GFS_ECORRUPT; /* the source's edge needs it: it exists there */
	gfs_row_release(&row);
	return rc;
}

/* Leaves the source's change of row id in table t out. */
static void drop_take(struct mtab *mt, const struct gfs_buf *id)
{
	long k = mvec_find(&mt->ds, id->p, id->len);

	if (k >= 0 && mt->ds.v[k].take) {
		mt->ds.v[k].take = 0;
		mt->dropped = true;
	}
}

static int resolve_endpoint(struct gfs_merge *m, size_t i, bool source)
{
	struct gfs_merge_item *it = &m->it[i];
	struct mtab *et = &m->tab[it->type], *nt = &m->tab[it->node_type];

	if (it->deleted_by_source && source) { /* the target's edge goes too */
		long k = mvec_find(&et->ds, it->key.p, it->key.len);
		if (k >= 0 && !et->ds.v[k].present) { /* the source deleted it: */
			et->ds.v[k].take = 1;         /* that change, once */
			return 0;
		}
		return add_extra(et, &it->key, NULL);
	}
	if (it->deleted_by_source) {         /* the node stays */
		drop_take(nt, &it->node_key);
		return 0;
	}
	if (!source) {                       /* the source's edge is left out */
		drop_take(et, &it->key);
		return 0;
	}
	/* the node comes back, as the source has it (unless its own change is
	 * taken already) */
	long k = mvec_find(&nt->ds, it->node_key.p, it->node_key.len);
	if (k >= 0 && nt->ds.v[k].take)
		return 0;
	if (k >= 0 && nt->ds.v[k].present) {
		nt->ds.v[k].take = 1;
		return 0;
	}
	return add_extra(nt, &it->node_key, nt->s);
}

/* Without --prefer an endpoint conflict's change is held back, as a
 * two-sided conflict's is, so that the validation reports the rest rather
 * than the conflict again. */
static void hold_endpoint(struct gfs_merge *m, const struct gfs_merge_item *it)
{
	struct mtab *mt = &m->tab[it->deleted_by_source ? it->node_type : it->type];
	const struct gfs_buf *id = it->deleted_by_source ? &it->node_key : &it->key;
	long k = mvec_find(&mt->ds, id->p, id->len);

	if (k >= 0 && mt->ds.v[k].take == 1)
		mt->ds.v[k].take = 2;
}

int gfs_merge_resolve(struct gfs_merge *m, enum gfs_merge_prefer prefer)
{
	int rc = endpoints(m);

	for (size_t i = 0; !rc && prefer == GFS_PREFER_NONE && i < m->nit; i++)
		if (m->it[i].kind == GFS_MC_ENDPOINT)
			hold_endpoint(m, &m->it[i]);

	for (size_t i = 0; !rc && prefer != GFS_PREFER_NONE && i < m->nit; i++) {
		bool source = prefer == GFS_PREFER_SOURCE;
		struct gfs_merge_item *it = &m->it[i];
		if (it->kind == GFS_MC_ENDPOINT)
			rc = resolve_endpoint(m, i, source);
		else if (it->kind != GFS_MC_INVALID && source)
			m->tab[m->ref[i].t].ds.v[m->ref[i].si].take = 1;
		it->resolved = !rc && it->kind != GFS_MC_INVALID;
	}
	return rc;
}

/* ---- validation ------------------------------------------------------- */

/* Taken rows of every table, as changes, in four phases. */
struct vset {
	struct gfs_change *ch;
	const struct mrow **row;
	size_t *type;
	size_t n, cap;
};

static int vset_add(struct gfs_merge *m, struct vset *v, size_t t, const struct mrow *r,
		    bool del)
{
	const struct gfs_typedef *td = &m->s->types[t];
	struct gfs_change *c;
	size_t cap = v->cap;
	void *p;

	if (!(p = gfs_array_grow(v->ch, &cap, v->n + 1, sizeof *v->ch, 16)))
		return -ENOMEM;
	v->ch = p;
	cap = v->cap;
	if (!(p = gfs_array_grow(v->row, &cap, v->n + 1, sizeof *v->row, 16)))
		return -ENOMEM;
	v->row = p;
	cap = v->cap;
	if (!(p = gfs_array_grow(v->type, &cap, v->n + 1, sizeof *v->type, 16)))
		return -ENOMEM;
	v->type = p;
	v->cap = cap;
	v->row[v->n] = r;
	v->type[v->n] = t;
	c = &v->ch[v->n++];
	memset(c, 0, sizeof *c);
	c->type = td->name;
	c->key = r->id.p;
	c->key_len = r->id.len;
	if (!r->present || del) {
		c->kind = td->is_edge ? GFS_CH_EDGE_DEL : GFS_CH_NODE_DEL;
		return 0;
	}
	c->kind = td->is_edge ? GFS_CH_EDGE_PUT : GFS_CH_NODE_PUT;
	c->data = r->line.p + r->data_off;
	c->data_len = r->data_len;
	c->from = r->src.p ? r->src.p : "";
	c->from_len = r->src.len;
	c->to = r->dst.p ? r->dst.p : "";
	c->to_len = r->dst.len;
	return 0;
}

/* Phase 0 node puts, 1 edge deletes, 2 node deletes, 3 edge puts. */
static bool in_phase(const struct gfs_typedef *td, const struct mrow *r, int ph)
{
	return ph == (td->is_edge ? (r->present ? 3 : 1) : (r->present ? 0 : 2));
}

/* 1 when r is an edge the target has under the same id with other
 * endpoints: a load may re-point an edge by id (DESIGN.md 1, merge mode),
 * and apply refuses a put that does, so the merge takes such a row as a
 * delete of the target's edge (phase 1) and a put of the source's
 * (phase 3).  0 otherwise, <0 error. */
static int repointed(const struct gfs_typedef *td, struct mtab *mt, const struct mrow *r)
{
	struct gfs_row row;
	int rc;

	if (!td->is_edge || !r->present || !mt->t)
		return 0;
	memset(&row, 0, sizeof row);
	rc = gfs_tver_get(mt->t, r->id.p, r->id.len, &row);
	if (rc == 1)
		rc = row.src_len != r->src.len || row.dst_len != r->dst.len ||
		     (row.src_len && memcmp(row.src, r->src.p, row.src_len)) ||
		     (row.dst_len && memcmp(row.dst, r->dst.p, row.dst_len));
	gfs_row_release(&row);
	return rc;
}

static int collect_row(struct gfs_merge *m, struct vset *v, size_t t, const struct mrow *r,
		       int ph)
{
	const struct gfs_typedef *td = &m->s->types[t];
	int rc = 0;

	if (in_phase(td, r, ph))
		return vset_add(m, v, t, r, false);
	if (ph == 1 && (rc = repointed(td, &m->tab[t], r)) == 1)
		return vset_add(m, v, t, r, true);
	return rc < 0 ? rc : 0;
}

static int collect(struct gfs_merge *m, struct vset *v)
{
	int rc = 0;

	for (int ph = 0; !rc && ph < 4; ph++)
		for (size_t t = 0; !rc && t < m->s->n_types; t++) {
			struct mtab *mt = &m->tab[t];
			for (size_t i = 0; !rc && i < mt->ds.n; i++)
				if (mt->ds.v[i].take == 1)
					rc = collect_row(m, v, t, &mt->ds.v[i], ph);
			for (size_t i = 0; !rc && i < mt->extra.n; i++)
				rc = collect_row(m, v, t, &mt->extra.v[i], ph);
		}
	return rc;
}

static int add_invalid(struct gfs_merge *m, size_t t, const struct mrow *r,
		       const char *msg)
{
	struct gfs_merge_item *it = item_add(m, GFS_MC_INVALID, t, -1, -1);

	if (!it)
		return -ENOMEM;
	snprintf(it->msg, sizeof it->msg, "%s", msg);
	it->in_source = r->present;
	return gfs_buf_append(&it->key, r->id.p, r->id.len) ? -ENOMEM
		: put_value(&it->source, r);
}

int gfs_merge_validate(struct gfs_merge *m, struct gfs_commit *c)
{
	struct vset v = { 0 };
	int rc = collect(m, &v);

	if (!rc && v.n)
		rc = gfs_apply_check(c, v.ch, v.n, GFS_APPLY_NO_CASCADE);
	for (size_t i = 0; !rc && i < v.n; i++)
		if (v.ch[i].rc)
			rc = add_invalid(m, v.type[i], v.row[i], v.ch[i].msg);
	free(v.ch);
	free(v.row);
	free(v.type);
	return rc;
}

/* ---- results ---------------------------------------------------------- */

size_t gfs_merge_items(const struct gfs_merge *m, const struct gfs_merge_item **items)
{
	*items = m->it;
	return m->nit;
}

size_t gfs_merge_unresolved(const struct gfs_merge *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->nit; i++)
		n += !m->it[i].resolved;
	return n;
}

static size_t taken_of(const struct mtab *mt)
{
	size_t n = mt->extra.n;

	for (size_t i = 0; i < mt->ds.n; i++)
		n += mt->ds.v[i].take == 1;
	return n;
}

uint64_t gfs_merge_taken(const struct gfs_merge *m)
{
	uint64_t n = 0;

	for (size_t t = 0; t < m->s->n_types; t++)
		n += taken_of(&m->tab[t]);
	return n;
}

uint64_t gfs_merge_pages(const struct gfs_merge *m)
{
	return m->pages;
}

enum gfs_merge_action gfs_merge_action(const struct gfs_merge *m, size_t t)
{
	const struct mtab *mt = t < m->s->n_types ? &m->tab[t] : NULL;
	struct gfs_tver_info bi, ti;

	if (!mt || !mt->given || !taken_of(mt))
		return GFS_MERGE_KEEP;
	gfs_tver_info(mt->b, &bi);
	gfs_tver_info(mt->t, &ti);
	if (bi.version == ti.version && !mt->dropped && !mt->extra.n && !mt->renames)
		return GFS_MERGE_ADOPT;
	return GFS_MERGE_WRITE;
}

/* ---- build ------------------------------------------------------------ */

static int mrow_ptr_cmp(const void *a, const void *b)
{
	const struct mrow *x = *(const struct mrow *const *)a;
	const struct mrow *y = *(const struct mrow *const *)b;

	return keycmp(x->id.p, x->id.len, y->id.p, y->id.len);
}

/* The taken rows of mt in id order (a new array, free()). */
static int taken_rows(const struct mtab *mt, const struct mrow ***out, size_t *n)
{
	const struct mrow **v = calloc(taken_of(mt) + 1, sizeof *v);

	*n = 0;
	*out = v;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < mt->ds.n; i++)
		if (mt->ds.v[i].take == 1)
			v[(*n)++] = &mt->ds.v[i];
	for (size_t i = 0; i < mt->extra.n; i++)
		v[(*n)++] = &mt->extra.v[i];
	qsort(v, *n, sizeof *v, mrow_ptr_cmp);
	for (size_t i = 1; i < *n; i++)
		if (!mrow_ptr_cmp(&v[i - 1], &v[i]))
			return -EINVAL; /* one id taken twice: a bug, never a crash */
	return 0;
}

/* The serial a taken row keeps, or a fresh one when the target gave its
 * serial to a row of its own since the base. */
static uint64_t serial_for(const struct mtab *mt, const struct mrow *r, uint64_t *fresh)
{
	if (r->serial >= mt->base_next && mt->ntser &&
	    bsearch(&r->serial, mt->tser, mt->ntser, sizeof *mt->tser, u64cmp))
		return (*fresh)++;
	return r->serial;
}

static int put_row(struct gfs_tbuild *b, const struct gfs_typedef *td,
		   const struct mrow *r, uint64_t serial)
{
	struct gfs_buf *uk = NULL;
	size_t nuk = 0;
	struct gfs_rowput rp;
	int rc = gfs_codec_ukeys_of(td, r->line.p + r->data_off, r->data_len,
				    r->src.p, r->src.len, r->dst.p, r->dst.len, &uk, &nuk);

	if (rc)
		return rc;
	rp = (struct gfs_rowput){
		.id = r->id.p, .id_len = r->id.len,
		.src = td->is_edge ? r->src.p : NULL, .src_len = r->src.len,
		.dst = td->is_edge ? r->dst.p : NULL, .dst_len = r->dst.len,
		.line = r->line.p, .line_len = r->line.len,
		.data_off = r->data_off, .data_len = r->data_len,
		.ukeys = uk, .n_ukeys = nuk,
		.serial = serial, .changed = r->changed,
	};
	if (td->is_edge && !rp.src) /* an empty endpoint id is still an edge */
		rp.src = "";
	if (td->is_edge && !rp.dst)
		rp.dst = "";
	rc = gfs_tbuild_put(b, &rp);
	gfs_codec_free_ukeys(uk, nuk);
	return rc;
}

int gfs_merge_build(struct gfs_merge *m, size_t t, struct gfs_tstore *ts,
		    uint32_t version, const char *op_id, struct gfs_diag *d)
{
	const struct gfs_typedef *td = &m->s->types[t];
	struct mtab *mt = &m->tab[t];
	const struct mrow **rows = NULL;
	struct gfs_tbuild *b = NULL;
	struct gfs_tver_info ti, si;
	char table[GFS_TABLE_NAME_MAX];
	uint64_t fresh;
	size_t n = 0;
	int rc;

	if (gfs_merge_action(m, t) == GFS_MERGE_KEEP)
		return -EINVAL;
	gfs_tver_info(mt->t, &ti);
	gfs_tver_info(mt->s, &si);
	fresh = ti.next_serial > si.next_serial ? ti.next_serial : si.next_serial;
	gfs_typedef_table(td, table, sizeof table);
	rc = taken_rows(mt, &rows, &n);
	if (!rc)
		rc = gfs_tbuild_new(ts, table, mt->t, (unsigned)gfs_codec_n_unique(td), 0, &b);
	for (size_t i = 0; !rc && i < n; i++)
		rc = rows[i]->present ? put_row(b, td, rows[i], serial_for(mt, rows[i], &fresh))
			: gfs_tbuild_del(b, rows[i]->id.p, rows[i]->id.len);
	if (!rc)
		rc = gfs_tbuild_commit(b, version, op_id, d);
	gfs_tbuild_free(b);
	free(rows);
	return rc;
}

/* ---- reports ---------------------------------------------------------- */

static json_t *jbytes(const struct gfs_buf *b)
{
	json_t *v = json_stringn(b->p ? b->p : "", b->len);

	return v ? v : json_string("(not UTF-8)");
}

static json_t *jrow(const struct gfs_buf *line, bool present)
{
	json_t *v;

	if (!present)
		return json_null();
	v = json_loadb(line->p, line->len, 0, NULL);
	return v ? v : jbytes(line);
}

static json_t *item_json(const struct gfs_merge *m, const struct gfs_merge_item *it)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "type", json_string(m->s->types[it->type].name));
	json_object_set_new(o, "key", jbytes(&it->key));
	if (it->kind == GFS_MC_INVALID) {
		json_object_set_new(o, "message", json_string(it->msg));
		json_object_set_new(o, "source", jrow(&it->source, it->in_source));
		return o;
	}
	json_object_set_new(o, "kind", json_string(gfs_merge_kind_name(it->kind)));
	json_object_set_new(o, "target", jrow(&it->target, it->in_target));
	json_object_set_new(o, "source", jrow(&it->source, it->in_source));
	json_object_set_new(o, "resolved", json_boolean(it->resolved));
	if (it->kind == GFS_MC_ENDPOINT) {
		json_object_set_new(o, "node_type", json_string(m->s->types[it->node_type].name));
		json_object_set_new(o, "node_key", jbytes(&it->node_key));
		json_object_set_new(o, "deleted_by",
				    json_string(it->deleted_by_source ? "source" : "target"));
	}
	return o;
}

char *gfs_merge_report_json(const struct gfs_merge *m)
{
	json_t *root = json_object(), *conf = json_array(), *inv = json_array();
	char *out = NULL;
	bool ok = root && conf && inv;

	for (size_t i = 0; ok && i < m->nit; i++) {
		json_t *o = item_json(m, &m->it[i]);
		ok = o && !json_array_append_new(m->it[i].kind == GFS_MC_INVALID ? inv : conf, o);
	}
	if (ok && !json_object_set(root, "conflicts", conf) &&
	    !json_object_set(root, "invalid", inv))
		out = json_dumps(root, JSON_COMPACT);
	json_decref(conf);
	json_decref(inv);
	json_decref(root);
	return out;
}

/* key as text: printable bytes, others as \xNN. */
static int show_key(struct gfs_buf *out, const struct gfs_buf *k)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < k->len; i++) {
		unsigned char c = (unsigned char)k->p[i];
		rc = c >= 0x20 && c != 0x7f ? gfs_buf_appendc(out, (char)c)
			: gfs_buf_appendf(out, "\\x%02x", c);
	}
	return rc;
}

static int side_text(struct gfs_buf *out, const char *name, const struct gfs_buf *v,
		     bool present)
{
	int rc = gfs_buf_appendf(out, "%s ", name);

	if (!rc && present)
		rc = gfs_buf_append(out, v->p, v->len);
	else if (!rc)
		rc = gfs_buf_appendf(out, "(absent)");
	return rc;
}

int gfs_merge_report_text(const struct gfs_merge *m, struct gfs_buf *out)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < m->nit; i++) {
		const struct gfs_merge_item *it = &m->it[i];
		bool inv = it->kind == GFS_MC_INVALID;
		rc = gfs_buf_appendf(out, "%s%s%s %s '", inv ? "invalid" : "conflict ",
				     inv ? "" : gfs_merge_kind_name(it->kind),
				     it->resolved ? " (resolved)" : "",
				     m->s->types[it->type].name);
		if (!rc)
			rc = show_key(out, &it->key);
		if (!rc && inv)
			rc = gfs_buf_appendf(out, "': %s\n", it->msg);
		if (inv || rc)
			continue;
		rc = gfs_buf_appendf(out, "': ");
		if (!rc && it->kind == GFS_MC_ENDPOINT) {
			rc = gfs_buf_appendf(out, "the %s deleted its endpoint %s '",
					     it->deleted_by_source ? "source" : "target",
					     m->s->types[it->node_type].name);
			if (!rc)
				rc = show_key(out, &it->node_key);
			if (!rc)
				rc = gfs_buf_appendf(out, "'; ");
		}
		if (!rc)
			rc = side_text(out, "target", &it->target, it->in_target);
		if (!rc)
			rc = gfs_buf_appendf(out, " | ");
		if (!rc)
			rc = side_text(out, "source", &it->source, it->in_source);
		if (!rc)
			rc = gfs_buf_appendc(out, '\n');
	}
	return rc;
}
