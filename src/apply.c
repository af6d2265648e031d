/* apply.c - a batch of small changes as one graph version (apply.h).
 *
 * Phases, each in the write door's order (commit.h):
 *   1. plan     per change, the tables it writes (EX) and reads (SH), from
 *               its kind and type alone: a node put writes its node table;
 *               a node delete or rename writes its node table and every
 *               edge table with that node type as an endpoint (the
 *               cascade); an edge put writes its edge table and reads its
 *               endpoints' node tables; an edge delete writes its table
 *   2. lock     heal first, flock, pins, orphans, pinned versions
 *               (commit.c, exactly as a load)
 *   3. validate each change in order against an overlay: (type, id) ->
 *               the row as the valid earlier changes left it (or deleted),
 *               on top of the pinned versions.  A change's overlay edits
 *               are journaled; a change that fails is undone from the
 *               journal, gets its own rc and message, and the next change
 *               sees the head as if it had never been asked for
 *   4. write    arm -> per written table, the overlay's rows of that type
 *               sorted by id into a builder on the pinned version ->
 *               confirm -> CAS publish with the log record (op "write");
 *               a failure after arming goes through recovery's code
 *               (gfs_commit_finish), as for a load
 *
 * The overlay is a hash table of slots keyed by (type, namespace, bytes):
 * namespace ID maps an id to its newest row; SRC and DST head a chain of
 * the edge rows ever put with that source / target (stale entries are
 * skipped: a row is current iff its id's slot still points at it); CARD
 * marks the (edge type, source) pairs the current change touched; UK+k
 * maps unique key k to the row that holds it.  Rows and slots live until
 * the batch ends; undo only resets slot values.
 *
 * Memory: O(the changes) plus, for a node delete or rename, one copy of
 * every edge incident to that node (their ids, endpoints and data): the
 * one thing that grows with the data rather than with the batch.
 * Reads go to the pinned versions (point lookups, and per touched source
 * or node the incident edges through GFS_IX_SRC / GFS_IX_DST).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "codec.h"
#include "codec_int.h"
#include "commit.h"

/* A lost CAS (a schema change, or a writer without locks) is retried
 * against the new head this many times. */
#define APPLY_TRIES 8
/* The log record lists at most this many changes (then "more": N). */
#define LOG_CHANGES_MAX 64

enum { NS_ID = 0, NS_SRC = 1, NS_DST = 2, NS_CARD = 3, NS_UK = 4 };

/* One row as the batch leaves it.  Owned copies. */
struct orow {
	uint32_t type;
	bool deleted;
	struct gfs_buf id, src, dst, line;
	uint32_t data_off, data_len;
	struct gfs_buf *uk;
	size_t nuk;
	long next_src, next_dst; /* chains of NS_SRC / NS_DST, -1 ends */
	/* an edge a node rename moved: the pair it left (gfs_rowput.pair_src) */
	struct gfs_buf psrc, pdst;
	bool renamed;
};

struct slot {
	uint32_t type, ns;
	const char *key; /* borrowed from a row, which lives as long */
	size_t len;
	uint64_t h;
	long val;        /* row index; -1: nothing (the pin decides) */
};

struct undo {
	size_t slot;
	long prev;
};

/* An edge incident to a node being deleted or renamed (copies). */
struct inc {
	uint32_t type;
	struct gfs_buf id, src, dst, data;
};

struct applier {
	struct gfs_graph *g;
	const struct gfs_schema *s;
	struct gfs_commit c;
	struct gfs_change *ch;
	size_t n;
	struct orow *rows;
	size_t nrows, caprows;
	/* Slots never move once made (the journal and the card list keep
	 * their indexes); tab maps a hash to them, -1 empty. */
	struct slot *slots;
	size_t nslots, capslots;
	long *tab;
	size_t captab;           /* a power of two */
	struct undo *undo;
	size_t nundo, capundo;
	/* The (edge type, source) pairs the current change touched: their
	 * NS_CARD slots, whose value is the change's index when listed. */
	long *cards;
	size_t ncards, capcards;
	long stamp;
	struct gfs_rowin rin;
	uint64_t rows_put, rows_deleted;
	uint64_t head;         /* the version validated against */
	bool no_cascade;       /* gfs_apply_check: a node delete with edges fails */
};

/* ---- messages --------------------------------------------------------- */

/* A printable, bounded copy of bytes for messages. */
static const char *show(const char *p, size_t len, char *buf, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (i == 48) {
			o += (size_t)snprintf(buf + o, n - o, "...");
			break;
		}
		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			o += (size_t)snprintf(buf + o, n - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	buf[o < n ? o : n - 1] = '\0';
	return buf;
}

static int change_fail(struct gfs_change *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int change_fail(struct gfs_change *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof c->msg, fmt, ap);
	va_end(ap);
	c->rc = rc;
	return rc;
}

/* "Person 'bob'" / "edge Knows 'x' (alice -> bob)" into buf. */
static const char *subject(const struct gfs_typedef *td, const char *id,
			   size_t id_len, const char *src, size_t src_len,
			   const char *dst, size_t dst_len, char *buf, size_t n)
{
	char a[200], b[200], c[200];

	if (!td->is_edge)
		snprintf(buf, n, "%s '%s'", td->name, show(id, id_len, a, sizeof a));
	else if (id)
		snprintf(buf, n, "edge %s '%s' (%s -> %s)", td->name,
			 show(id, id_len, a, sizeof a), show(src, src_len, b, sizeof b),
			 show(dst, dst_len, c, sizeof c));
	else
		snprintf(buf, n, "edge %s (%s -> %s)", td->name,
			 show(src, src_len, b, sizeof b), show(dst, dst_len, c, sizeof c));
	return buf;
}

/* ---- the overlay ------------------------------------------------------ */

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && !memcmp(a, b, alen);
}


static uint64_t slot_hash(uint32_t type, uint32_t ns, const char *key, size_t len)
{
	uint32_t tn[2] = { type, ns };

	return gfs_hash64_2(tn, sizeof tn, key, len);
}

static int tab_grow(struct applier *A)
{
	size_t cap = A->captab ? A->captab * 2 : 64;
	long *nt = malloc(cap * sizeof *nt);

	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < cap; i++)
		nt[i] = -1;
	for (size_t i = 0; i < A->nslots; i++) {
		size_t j;
		for (j = A->slots[i].h & (cap - 1); nt[j] >= 0; j = (j + 1) & (cap - 1))
			;
		nt[j] = (long)i;
	}
	free(A->tab);
	A->tab = nt;
	A->captab = cap;
	return 0;
}

/* The slot of (type, ns, key): its index, or -1 when absent and !create
 * (*si = -1), or an error.  key must outlive the batch when created. */
static int slot_find(struct applier *A, uint32_t type, uint32_t ns,
		     const char *key, size_t len, bool create, long *si)
{
	uint64_t h = slot_hash(type, ns, key, len);
	size_t j;
	void *p;
	int rc;

	*si = -1;
	if (create && (A->nslots + 1) * 2 > A->captab && (rc = tab_grow(A)))
		return rc;
	if (!A->captab)
		return 0;
	for (j = h & (A->captab - 1); A->tab[j] >= 0; j = (j + 1) & (A->captab - 1)) {
		const struct slot *s = &A->slots[A->tab[j]];
		if (s->h == h && s->type == type && s->ns == ns && s->len == len &&
		    !memcmp(s->key, key, len)) {
			*si = A->tab[j];
			return 0;
		}
	}
	if (!create)
		return 0;
	if (!(p = gfs_array_grow(A->slots, &A->capslots, A->nslots + 1, sizeof *A->slots, 64)))
		return -ENOMEM; /* A->slots still valid */
	A->slots = p;
	A->slots[A->nslots] = (struct slot){ .type = type, .ns = ns, .key = key,
					     .len = len, .h = h, .val = -1 };
	A->tab[j] = (long)A->nslots;
	*si = (long)A->nslots++;
	return 0;
}

/* Sets a slot's value, journaled for undo. */
static int slot_set(struct applier *A, long si, long val)
{
	void *p;

	if (!(p = gfs_array_grow(A->undo, &A->capundo, A->nundo + 1, sizeof *A->undo, 64)))
		return -ENOMEM; /* A->undo still valid */
	A->undo = p;
	A->undo[A->nundo++] = (struct undo){ (size_t)si, A->slots[si].val };
	A->slots[si].val = val;
	return 0;
}

static void undo_to(struct applier *A, size_t mark)
{
	while (A->nundo > mark) {
		const struct undo *u = &A->undo[--A->nundo];
		A->slots[u->slot].val = u->prev;
	}
}

/* The overlay's row for (type, id): its index, or -1 (the pin decides). */
static long overlay_row(struct applier *A, uint32_t type, const char *id, size_t len)
{
	long si;

	if (slot_find(A, type, NS_ID, id, len, false, &si) || si < 0)
		return -1;
	return A->slots[si].val;
}

/* Is row r the current state of its id? */
static bool current(struct applier *A, long r)
{
	const struct orow *o = &A->rows[r];

	return overlay_row(A, o->type, o->id.p, o->id.len) == r && !o->deleted;
}

static struct gfs_tver *pinned(struct applier *A, uint32_t type)
{
	return A->c.ts[type].tv;
}

/* Does node/edge (type, id) exist once the earlier changes are applied?
 * 1 yes, 0 no, <0 error. */
static int exists(struct applier *A, uint32_t type, const char *id, size_t len)
{
	long r = overlay_row(A, type, id, len);
	struct gfs_row row;
	int rc;

	if (r >= 0)
		return !A->rows[r].deleted;
	if (!pinned(A, type))
		return -EINVAL; /* a table the plan did not lock: a bug */
	memset(&row, 0, sizeof row);
	rc = gfs_tver_get(pinned(A, type), id, len, &row);
	gfs_row_release(&row);
	return rc;
}

static void orow_release(struct orow *o)
{
	gfs_buf_release(&o->id);
	gfs_buf_release(&o->src);
	gfs_buf_release(&o->dst);
	gfs_buf_release(&o->line);
	gfs_buf_release(&o->psrc);
	gfs_buf_release(&o->pdst);
	gfs_codec_free_ukeys(o->uk, o->nuk);
}

/* A new row (zeroed, chains ended); *r its index. */
static int row_new(struct applier *A, uint32_t type, long *r)
{
	struct orow *o;
	void *p;

	if (!(p = gfs_array_grow(A->rows, &A->caprows, A->nrows + 1, sizeof *A->rows, 16)))
		return -ENOMEM; /* A->rows still valid */
	A->rows = p;
	o = &A->rows[A->nrows];
	memset(o, 0, sizeof *o);
	o->type = type;
	o->next_src = o->next_dst = -1;
	gfs_buf_init(&o->id);
	gfs_buf_init(&o->src);
	gfs_buf_init(&o->dst);
	gfs_buf_init(&o->line);
	gfs_buf_init(&o->psrc);
	gfs_buf_init(&o->pdst);
	*r = (long)A->nrows++;
	return 0;
}

/* Releases the unique keys the overlay's row r holds. */
static int release_keys(struct applier *A, long r)
{
	int rc = 0;

	for (size_t k = 0; !rc && k < A->rows[r].nuk; k++) {
		const struct gfs_buf *u = &A->rows[r].uk[k];
		long si;
		if (!u->len)
			continue;
		rc = slot_find(A, A->rows[r].type, NS_UK + (uint32_t)k, u->p, u->len, false, &si);
		if (!rc && si >= 0 && A->slots[si].val == r)
			rc = slot_set(A, si, -1);
	}
	return rc;
}

/* Marks (type, id) as row r, releasing the keys of the row it replaces. */
static int set_current(struct applier *A, long r)
{
	const struct orow *o = &A->rows[r];
	long si, prev;
	int rc = slot_find(A, o->type, NS_ID, o->id.p, o->id.len, true, &si);

	if (rc)
		return rc;
	prev = A->slots[si].val;
	if (prev >= 0 && !A->rows[prev].deleted)
		rc = release_keys(A, prev);
	return rc ? rc : slot_set(A, si, r);
}

/* Who holds unique key k = key of type t besides id: 1 and *owner set
 * (borrowed until the next lookup into *row), 0 nobody, <0 error. */
static int key_owner(struct applier *A, uint32_t t, unsigned k, const char *key,
		     size_t len, const struct gfs_buf *id, struct gfs_row *row,
		     const char **owner, size_t *owner_len)
{
	long si;
	int rc = slot_find(A, t, NS_UK + k, key, len, false, &si);

	if (!rc && si >= 0 && A->slots[si].val >= 0 && current(A, A->slots[si].val)) {
		const struct orow *o = &A->rows[A->slots[si].val];
		if (o->id.len != id->len || memcmp(o->id.p, id->p, id->len)) {
			*owner = o->id.p;
			*owner_len = o->id.len;
			return 1;
		}
	}
	if (rc)
		return rc;
	rc = gfs_tver_get_unique(pinned(A, t), k, key, len, row);
	if (rc != 1)
		return rc;
	if ((row->id_len == id->len && !memcmp(row->id, id->p, id->len)) ||
	    overlay_row(A, t, row->id, row->id_len) >= 0)
		return 0; /* itself, or the batch moved or deleted the owner */
	*owner = row->id;
	*owner_len = row->id_len;
	return 1;
}

/* Checks row r's unique keys, then claims them. */
static int claim_keys(struct applier *A, long r, struct gfs_change *c,
		      const char *subj)
{
	const struct gfs_typedef *td = &A->s->types[A->rows[r].type];
	struct gfs_row row;
	int rc = 0;

	memset(&row, 0, sizeof row);
	for (size_t k = 0; !rc && k < A->rows[r].nuk; k++) {
		const struct gfs_buf *u = &A->rows[r].uk[k];
		const char *owner = NULL;
		size_t olen = 0;
		char kb[200], ob[200];
		long si;
		if (!u->len)
			continue;
		rc = key_owner(A, A->rows[r].type, (unsigned)k, u->p, u->len,
			       &A->rows[r].id, &row, &owner, &olen);
		if (rc == 1)
			rc = change_fail(c, GFS_EDATA, "%s: unique value %s already belongs to %s '%s'",
					 subj, show(u->p, u->len, kb, sizeof kb),
					 td->is_edge ? "edge" : td->name,
					 show(owner, olen, ob, sizeof ob));
		if (!rc)
			rc = slot_find(A, A->rows[r].type, NS_UK + (uint32_t)k, u->p, u->len, true, &si);
		if (!rc)
			rc = slot_set(A, si, r);
	}
	gfs_row_release(&row);
	return rc;
}

/* Links edge row r into its source's and target's chains. */
static int chain_edge(struct applier *A, long r)
{
	struct orow *o = &A->rows[r];
	long si;
	int rc = slot_find(A, o->type, NS_SRC, o->src.p, o->src.len, true, &si);

	if (!rc) {
		o->next_src = A->slots[si].val;
		rc = slot_set(A, si, r);
	}
	if (!rc)
		rc = slot_find(A, o->type, NS_DST, o->dst.p, o->dst.len, true, &si);
	if (!rc) {
		o->next_dst = A->slots[si].val;
		rc = slot_set(A, si, r);
	}
	return rc;
}

/* Records that the current change touched the out-degree of edge row r's
 * source (the slot borrows the row's src, which lives as long). */
static int touch_card(struct applier *A, long r)
{
	const struct orow *o = &A->rows[r];
	long si;
	void *p;
	int rc;

	if (!A->s->types[o->type].has_card)
		return 0;
	rc = slot_find(A, o->type, NS_CARD, o->src.p, o->src.len, true, &si);
	if (rc || A->slots[si].val == A->stamp)
		return rc;
	A->slots[si].val = A->stamp; /* no undo: stamps differ per change */
	if (!(p = gfs_array_grow(A->cards, &A->capcards, A->ncards + 1, sizeof *A->cards, 8)))
		return -ENOMEM; /* A->cards still valid */
	A->cards = p;
	A->cards[A->ncards++] = si;
	return 0;
}

/* Puts the parsed row A->rin as the current state of its id. */
static int put_rin(struct applier *A, struct gfs_change *c, const char *subj)
{
	const struct gfs_rowin *in = &A->rin;
	struct orow *o;
	long r;
	int rc = row_new(A, (uint32_t)in->type_idx, &r);

	if (rc)
		return rc;
	o = &A->rows[r];
	rc = gfs_buf_append(&o->id, in->id.p, in->id.len);
	if (!rc)
		rc = gfs_buf_append(&o->line, in->line.p, in->line.len);
	if (!rc && in->td->is_edge)
		rc = gfs_buf_append(&o->src, in->src.p, in->src.len);
	if (!rc && in->td->is_edge)
		rc = gfs_buf_append(&o->dst, in->dst.p, in->dst.len);
	o->data_off = (uint32_t)in->data_off;
	o->data_len = (uint32_t)in->data_len;
	if (!rc && in->n_ukeys && !(o->uk = calloc(in->n_ukeys, sizeof *o->uk)))
		rc = -ENOMEM;
	for (size_t k = 0; !rc && k < in->n_ukeys; k++) {
		gfs_buf_init(&o->uk[k]);
		o->nuk = k + 1;
		rc = gfs_buf_append(&o->uk[k], in->ukeys[k].p, in->ukeys[k].len);
	}
	if (!rc)
		rc = set_current(A, r);
	if (!rc)
		rc = claim_keys(A, r, c, subj);
	if (!rc && in->td->is_edge)
		rc = chain_edge(A, r);
	if (!rc && in->td->is_edge)
		rc = touch_card(A, r);
	return rc;
}

/* Deletes (type, id); for an edge, src names the source for @card. */
static int del_row(struct applier *A, uint32_t type, const char *id, size_t len,
		   const char *src, size_t src_len)
{
	long r;
	int rc = row_new(A, type, &r);

	if (rc)
		return rc;
	A->rows[r].deleted = true;
	rc = gfs_buf_append(&A->rows[r].id, id, len);
	if (!rc && src)
		rc = gfs_buf_append(&A->rows[r].src, src, src_len);
	if (!rc)
		rc = set_current(A, r);
	if (!rc && A->s->types[type].is_edge)
		rc = touch_card(A, r);
	return rc;
}

/* ---- reading the current state ---------------------------------------- */

/* The current row (type, id) as an orow-like view: line bytes copied into
 * line, endpoints into src/dst.  1 found, 0 absent, <0 error. */
static int current_row(struct applier *A, uint32_t type, const char *id, size_t len,
		       struct gfs_buf *line, uint32_t *data_off, uint32_t *data_len,
		       struct gfs_buf *src, struct gfs_buf *dst)
{
	long r = overlay_row(A, type, id, len);
	struct gfs_row row;
	size_t got;
	int rc;

	gfs_buf_reset(line);
	gfs_buf_reset(src);
	gfs_buf_reset(dst);
	if (r >= 0) {
		const struct orow *o = &A->rows[r];
		if (o->deleted)
			return 0;
		*data_off = o->data_off;
		*data_len = o->data_len;
		rc = gfs_buf_append(line, o->line.p, o->line.len);
		rc = rc ? rc : gfs_buf_append(src, o->src.p, o->src.len);
		rc = rc ? rc : gfs_buf_append(dst, o->dst.p, o->dst.len);
		return rc ? rc : 1;
	}
	memset(&row, 0, sizeof row);
	rc = gfs_tver_get(pinned(A, type), id, len, &row);
	if (rc == 1) {
		*data_off = row.data_off;
		*data_len = row.data_len;
		rc = gfs_buf_reserve(line, row.line_len);
		rc = rc ? rc : gfs_tver_read_row(pinned(A, type), &row, 0, line->p, row.line_len, &got);
		line->len = rc ? 0 : got;
		rc = rc ? rc : gfs_buf_append(src, row.src, row.src_len);
		rc = rc ? rc : gfs_buf_append(dst, row.dst, row.dst_len);
		rc = rc ? rc : got == row.line_len ? 1 : GFS_ECORRUPT;
	}
	gfs_row_release(&row);
	return rc;
}

struct incs {
	struct inc *v;
	size_t n, cap;
};

static void incs_release(struct incs *I)
{
	for (size_t i = 0; i < I->n; i++) {
		gfs_buf_release(&I->v[i].id);
		gfs_buf_release(&I->v[i].src);
		gfs_buf_release(&I->v[i].dst);
		gfs_buf_release(&I->v[i].data);
	}
	free(I->v);
	memset(I, 0, sizeof *I);
}

static int incs_add(struct incs *I, uint32_t type, const char *id, size_t id_len,
		    const char *src, size_t src_len, const char *dst, size_t dst_len,
		    const char *data, size_t data_len)
{
	struct inc *e;
	void *p;
	int rc;

	if (!(p = gfs_array_grow(I->v, &I->cap, I->n + 1, sizeof *I->v, 16)))
		return -ENOMEM; /* I->v still valid */
	I->v = p;
	e = &I->v[I->n++];
	e->type = type;
	gfs_buf_init(&e->id);
	gfs_buf_init(&e->src);
	gfs_buf_init(&e->dst);
	gfs_buf_init(&e->data);
	rc = gfs_buf_append(&e->id, id, id_len);
	rc = rc ? rc : gfs_buf_append(&e->src, src, src_len);
	rc = rc ? rc : gfs_buf_append(&e->dst, dst, dst_len);
	return rc ? rc : gfs_buf_append(&e->data, data, data_len);
}

/* The pinned edges of edge type e at node id on side ix (GFS_IX_SRC /
 * GFS_IX_DST) that the batch has not touched, into I; skip_loops: not
 * those whose source is id too (a walk of the sources has them). */
static int pinned_incident(struct applier *A, uint32_t e, enum gfs_index ix,
			   const char *id, size_t len, bool skip_loops, struct incs *I)
{
	struct gfs_tver *tv = pinned(A, e);
	struct gfs_titer *it = NULL;
	struct gfs_row row;
	struct gfs_buf line;
	int rc = gfs_titer_new(tv, ix, id, len, &it);

	gfs_buf_init(&line);
	while (!rc && (rc = gfs_titer_next(it, &row)) == 1) {
		const char *end = ix == GFS_IX_SRC ? row.src : row.dst;
		size_t end_len = ix == GFS_IX_SRC ? row.src_len : row.dst_len;
		size_t got;
		rc = 0;
		if (end_len != len || memcmp(end, id, len))
			break;
		if (overlay_row(A, e, row.id, row.id_len) >= 0 ||
		    (skip_loops && same(row.src, row.src_len, id, len)))
			continue;
		gfs_buf_reset(&line);
		rc = gfs_buf_reserve(&line, row.line_len);
		if (!rc)
			rc = gfs_tver_read_row(tv, &row, 0, line.p, row.line_len, &got);
		if (!rc && (got != row.line_len || row.data_off + (uint64_t)row.data_len > got))
			rc = GFS_ECORRUPT;
		if (!rc)
			rc = incs_add(I, e, row.id, row.id_len, row.src, row.src_len,
				      row.dst, row.dst_len, line.p + row.data_off, row.data_len);
	}
	gfs_titer_free(it);
	gfs_buf_release(&line);
	return rc;
}

/* The batch's current edges of type e in the chain (ns, id), into I;
 * skip_loops as for pinned_incident. */
static int overlay_incident(struct applier *A, uint32_t e, uint32_t ns,
			    const char *id, size_t len, bool skip_loops, struct incs *I)
{
	long si, r;
	int rc = slot_find(A, e, ns, id, len, false, &si);

	for (r = si >= 0 ? A->slots[si].val : -1; !rc && r >= 0;
	     r = ns == NS_SRC ? A->rows[r].next_src : A->rows[r].next_dst) {
		const struct orow *o = &A->rows[r];
		if (!current(A, r) || (skip_loops && same(o->src.p, o->src.len, id, len)))
			continue;
		rc = incs_add(I, e, o->id.p, o->id.len, o->src.p, o->src.len,
			      o->dst.p, o->dst.len, o->line.p + o->data_off, o->data_len);
	}
	return rc;
}

/* Every current edge, of every edge type, incident to node (t, id). */
static int incident(struct applier *A, uint32_t t, const char *id, size_t len,
		    struct incs *I)
{
	int rc = 0;

	for (uint32_t e = 0; !rc && e < A->s->n_types; e++) {
		const struct gfs_typedef *td = &A->s->types[e];
		if (!td->is_edge)
			continue;
		bool loops = td->from_idx == t; /* self loops: once, as sources */
		if (td->from_idx == t)
			rc = pinned_incident(A, e, GFS_IX_SRC, id, len, false, I);
		if (!rc && td->from_idx == t)
			rc = overlay_incident(A, e, NS_SRC, id, len, false, I);
		if (!rc && td->to_idx == t)
			rc = pinned_incident(A, e, GFS_IX_DST, id, len, loops, I);
		if (!rc && td->to_idx == t)
			rc = overlay_incident(A, e, NS_DST, id, len, loops, I);
	}
	return rc;
}

/* Out-degree of src in edge type e once the changes so far are applied. */
static int out_degree(struct applier *A, uint32_t e, const char *src, size_t len,
		      uint64_t *n)
{
	struct incs I = { 0 };
	int rc = pinned_incident(A, e, GFS_IX_SRC, src, len, false, &I);

	if (!rc)
		rc = overlay_incident(A, e, NS_SRC, src, len, false, &I);
	*n = I.n;
	incs_release(&I);
	return rc;
}

static int check_cards(struct applier *A, struct gfs_change *c)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < A->ncards; i++) {
		const struct slot *sl = &A->slots[A->cards[i]];
		const struct gfs_typedef *td = &A->s->types[sl->type];
		uint64_t n = 0;
		char sb[200], max[32] = "";
		rc = out_degree(A, sl->type, sl->key, sl->len, &n);
		if (rc || n == 0 || (n >= td->card_min && n <= td->card_max))
			continue;
		if (td->card_max != UINT64_MAX)
			snprintf(max, sizeof max, "%" PRIu64, td->card_max);
		rc = change_fail(c, GFS_EDATA, "%s: source %s '%s' would have %" PRIu64 " edges, but @card(%" PRIu64 "..%s) allows %s",
				 td->name, A->s->types[td->from_idx].name,
				 show(sl->key, sl->len, sb, sizeof sb), n, td->card_min,
				 max, n < td->card_min ? "more" : "fewer");
	}
	return rc;
}

/* ---- building rows ---------------------------------------------------- */

/* The JSON value a key (or key part) of type t has, from its canonical
 * text: a string for quoted types, else the text parsed as JSON. */
static json_t *key_value(const struct gfs_type *t, const char *key, size_t len)
{
	json_t *v;

	if (gfs_codec_quoted_base(t->base))
		return json_stringn(key, len);
	v = json_loadb(key, len, JSON_DECODE_ANY, NULL);
	return v ? v : json_stringn(key, len); /* the codec names the problem */
}

/* Fills data's @key properties (or data.id) from key where absent. */
static int fill_key(const struct gfs_typedef *td, json_t *data, const char *key,
		    size_t len, struct gfs_change *c)
{
	json_t *parts = NULL;
	char kb[200];
	int rc = 0;

	if (td->n_key == 0) {
		if (!json_object_get(data, "id") &&
		    json_object_set_new(data, "id", json_stringn(key, len)))
			return change_fail(c, GFS_EDATA, "%s '%s': the key is not valid UTF-8",
					   td->name, show(key, len, kb, sizeof kb));
		return 0;
	}
	if (td->n_key > 1) {
		parts = json_loadb(key, len, 0, NULL);
		if (!json_is_array(parts) || json_array_size(parts) != td->n_key) {
			json_decref(parts);
			return change_fail(c, GFS_EDATA, "%s '%s': not the canonical id of a %s (its key has %zu parts: a JSON array)",
					   td->name, show(key, len, kb, sizeof kb), td->name, td->n_key);
		}
	}
	for (size_t i = 0; !rc && i < td->n_key; i++) {
		const struct gfs_prop *p = &td->props[td->key[i]];
		json_t *v;
		if (json_object_get(data, p->name) && !json_is_null(json_object_get(data, p->name)))
			continue;
		v = parts ? json_incref(json_array_get(parts, i)) : key_value(&p->type, key, len);
		if (!v || json_object_set_new(data, p->name, v))
			rc = change_fail(c, GFS_EDATA, "%s '%s': the key is not valid UTF-8",
					 td->name, show(key, len, kb, sizeof kb));
	}
	json_decref(parts);
	return rc;
}

/* data (NULL/0: {}) as a JSON object. */
static json_t *parse_data(const char *data, size_t len, const char *subj,
			  struct gfs_change *c)
{
	json_error_t err;
	json_t *o;

	if (!data || !len)
		return json_object();
	o = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
	if (!o) {
		change_fail(c, GFS_EDATA, "%s: not valid JSON: %s (line %d, column %d)",
			    subj, err.text, err.line, err.column);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		change_fail(c, GFS_EDATA, "%s: expected a JSON object", subj);
		return NULL;
	}
	return o;
}

/* Parses root (consumed) through the codec into A->rin. */
static int codec_parse(struct applier *A, json_t *root, struct gfs_change *c)
{
	struct gfs_diag d = {{0}};
	size_t need = json_dumpb(root, NULL, 0, JSON_COMPACT);
	char *line = need ? malloc(need) : NULL;
	int rc;

	if (!line) {
		json_decref(root);
		return need ? -ENOMEM : change_fail(c, GFS_EDATA, "cannot encode the row as JSON");
	}
	json_dumpb(root, line, need, JSON_COMPACT);
	json_decref(root);
	rc = gfs_codec_parse_line(A->s, line, need, 0, &A->rin, &d);
	free(line);
	if (rc == GFS_EDATA || rc == GFS_ETOOLONG)
		change_fail(c, GFS_EDATA, "%s", d.msg);
	return rc;
}

/* The canonical node row of type t, key key, properties data, into A->rin. */
static int node_rin(struct applier *A, uint32_t t, const char *key, size_t key_len,
		    json_t *data, struct gfs_change *c)
{
	const struct gfs_typedef *td = &A->s->types[t];
	json_t *root;
	char a[200], b[200];
	int rc = fill_key(td, data, key, key_len, c);

	if (rc) {
		json_decref(data);
		return rc;
	}
	root = json_pack("{s:s,s:o}", "type", td->name, "data", data);
	if (!root)
		return -ENOMEM;
	rc = codec_parse(A, root, c);
	if (!rc && !same(A->rin.id.p, A->rin.id.len, key, key_len))
		rc = change_fail(c, GFS_EDATA, "%s '%s': the data's %s is '%s', the name says '%s'",
				 td->name, show(key, key_len, b, sizeof b),
				 td->n_key ? "key" : "data.id",
				 show(A->rin.id.p, A->rin.id.len, a, sizeof a), b);
	return rc;
}

/* The canonical edge row, into A->rin.  id NULL: data.id or a new ULID. */
static int edge_rin(struct applier *A, uint32_t t, const char *id, size_t id_len,
		    const char *from, size_t from_len, const char *to, size_t to_len,
		    json_t *data, struct gfs_change *c)
{
	const struct gfs_typedef *td = &A->s->types[t];
	char ulid[GFS_ULID_LEN + 1], a[200], b[200], subj[700];
	json_t *root, *jf = json_stringn(from, from_len), *jt = json_stringn(to, to_len);
	int rc = 0;

	if (!jf || !jt) {
		json_decref(jf);
		json_decref(jt);
		json_decref(data);
		return change_fail(c, GFS_EDATA, "%s: an endpoint is not valid UTF-8",
				   subject(td, id, id_len, from, from_len, to, to_len, subj, sizeof subj));
	}
	if (!json_object_get(data, "id")) {
		json_t *v;
		if (!id && !(rc = gfs_ulid_new(ulid))) {
			id = ulid;
			id_len = GFS_ULID_LEN;
		}
		v = rc ? NULL : json_stringn(id, id_len);
		if (!rc && (!v || json_object_set_new(data, "id", v)))
			rc = change_fail(c, GFS_EDATA, "edge %s: the id '%s' is not valid UTF-8",
					 td->name, show(id, id_len, a, sizeof a));
	}
	root = rc ? NULL : json_pack("{s:s,s:o,s:o,s:o}", "edge", td->name, "from", jf,
				     "to", jt, "data", data);
	if (rc) {
		json_decref(jf);
		json_decref(jt);
		json_decref(data);
		return rc;
	}
	if (!root)
		return -ENOMEM;
	rc = codec_parse(A, root, c);
	if (!rc && id && !same(A->rin.id.p, A->rin.id.len, id, id_len))
		rc = change_fail(c, GFS_EDATA, "edge %s '%s': the data's id is '%s'",
				 td->name, show(id, id_len, b, sizeof b),
				 show(A->rin.id.p, A->rin.id.len, a, sizeof a));
	return rc;
}

/* ---- the changes ------------------------------------------------------ */

static int do_node_put(struct applier *A, uint32_t t, struct gfs_change *c)
{
	char subj[300];
	json_t *data;
	int rc;

	subject(&A->s->types[t], c->key, c->key_len, NULL, 0, NULL, 0, subj, sizeof subj);
	if (!(data = parse_data(c->data, c->data_len, subj, c)))
		return c->rc ? c->rc : -ENOMEM;
	rc = node_rin(A, t, c->key, c->key_len, data, c);
	return rc ? rc : put_rin(A, c, subj);
}

/* Deletes every current edge in I, and the node. */
static int cascade(struct applier *A, uint32_t t, const char *key, size_t len,
		   const struct incs *I)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < I->n; i++)
		rc = del_row(A, I->v[i].type, I->v[i].id.p, I->v[i].id.len,
			     I->v[i].src.p, I->v[i].src.len);
	return rc ? rc : del_row(A, t, key, len, NULL, 0);
}

static int do_node_del(struct applier *A, uint32_t t, struct gfs_change *c)
{
	struct incs I = { 0 };
	char subj[300];
	int rc = exists(A, t, c->key, c->key_len);

	if (rc == 0)
		return change_fail(c, -ENOENT, "%s: does not exist",
				   subject(&A->s->types[t], c->key, c->key_len, NULL, 0, NULL, 0, subj, sizeof subj));
	if (rc == 1)
		rc = incident(A, t, c->key, c->key_len, &I);
	if (!rc && A->no_cascade && I.n) {
		char ib[200];
		rc = change_fail(c, GFS_EDATA, "%s: still has edge %s '%s' (an edge whose endpoint is deleted)",
				 subject(&A->s->types[t], c->key, c->key_len, NULL, 0, NULL, 0, subj, sizeof subj),
				 A->s->types[I.v[0].type].name,
				 show(I.v[0].id.p, I.v[0].id.len, ib, sizeof ib));
	}
	if (!rc)
		rc = cascade(A, t, c->key, c->key_len, &I);
	incs_release(&I);
	return rc;
}

/* Edge I->v[i] again, with the endpoint(s) equal to key now key2. */
static int repoint(struct applier *A, const struct inc *e, const char *key,
		   size_t len, const char *key2, size_t len2, struct gfs_change *c)
{
	const struct gfs_buf *s = &e->src, *d = &e->dst;
	bool rs = same(s->p, s->len, key, len), rd = same(d->p, d->len, key, len);
	char subj[700];
	json_t *data = parse_data(e->data.p, e->data.len, "stored edge", c);
	int rc;

	if (!data)
		return c->rc ? c->rc : -ENOMEM;
	rc = edge_rin(A, e->type, e->id.p, e->id.len, rs ? key2 : s->p, rs ? len2 : s->len,
		      rd ? key2 : d->p, rd ? len2 : d->len, data, c);
	long r = (long)A->nrows; /* put_rin's row_new makes it first */
	if (!rc)
		rc = put_rin(A, c, subject(&A->s->types[e->type], e->id.p, e->id.len,
					    A->rin.src.p, A->rin.src.len, A->rin.dst.p,
					    A->rin.dst.len, subj, sizeof subj));
	if (!rc) { /* the pair it left, for its PAIR_FIRST (gfs_rowput) */
		struct orow *o = &A->rows[r];
		o->renamed = true;
		rc = gfs_buf_append(&o->psrc, s->p, s->len);
		if (!rc)
			rc = gfs_buf_append(&o->pdst, d->p, d->len);
	}
	return rc;
}

/* Replaces the renamed node's row by one under key2: its data with the
 * key changed. */
static int renamed_node(struct applier *A, uint32_t t, struct gfs_change *c)
{
	const struct gfs_typedef *td = &A->s->types[t];
	struct gfs_buf line, src, dst;
	uint32_t off = 0, dlen = 0;
	char subj[300];
	json_t *data = NULL;
	int rc;

	gfs_buf_init(&line);
	gfs_buf_init(&src);
	gfs_buf_init(&dst);
	rc = current_row(A, t, c->key, c->key_len, &line, &off, &dlen, &src, &dst);
	if (rc == 0) /* the caller saw it exist: a bug, never a crash */
		rc = -EIO;
	if (rc == 1 && (uint64_t)off + dlen <= line.len)
		data = parse_data(line.p + off, dlen, "stored row", c);
	else if (rc == 1)
		rc = GFS_ECORRUPT;
	if (rc == 1 && !data)
		rc = c->rc ? c->rc : -ENOMEM;
	if (rc == 1) /* first the old row goes, with the unique keys it holds */
		rc = del_row(A, t, c->key, c->key_len, NULL, 0);
	if (!rc) { /* the old key goes; fill_key puts the new one */
		for (size_t i = 0; i < td->n_key; i++)
			json_object_del(data, td->props[td->key[i]].name);
		json_object_del(data, "id");
		rc = node_rin(A, t, c->key2, c->key2_len, data, c);
		data = NULL;
	}
	json_decref(data);
	if (!rc)
		rc = put_rin(A, c, subject(td, c->key2, c->key2_len, NULL, 0, NULL, 0, subj, sizeof subj));
	gfs_buf_release(&line);
	gfs_buf_release(&src);
	gfs_buf_release(&dst);
	return rc;
}

static int do_node_rename(struct applier *A, uint32_t t, struct gfs_change *c)
{
	const struct gfs_typedef *td = &A->s->types[t];
	struct incs I = { 0 };
	char subj[300];
	int rc = exists(A, t, c->key, c->key_len);

	if (rc == 0)
		return change_fail(c, -ENOENT, "%s: does not exist",
				   subject(td, c->key, c->key_len, NULL, 0, NULL, 0, subj, sizeof subj));
	if (rc == 1 && same(c->key, c->key_len, c->key2, c->key2_len))
		return 0;
	if (rc == 1)
		rc = exists(A, t, c->key2, c->key2_len);
	if (rc == 1)
		return change_fail(c, -EEXIST, "%s: already exists (a rename does not merge two nodes)",
				   subject(td, c->key2, c->key2_len, NULL, 0, NULL, 0, subj, sizeof subj));
	if (!rc)
		rc = incident(A, t, c->key, c->key_len, &I);
	if (!rc)
		rc = renamed_node(A, t, c);
	for (size_t i = 0; !rc && i < I.n; i++)
		rc = repoint(A, &I.v[i], c->key, c->key_len, c->key2, c->key2_len, c);
	incs_release(&I);
	return rc;
}

/* Does an edge of type e run from -> to once the earlier changes are
 * applied?  1 yes (*id its id, a copy), 0 no, <0 error. */
static int pair_edge(struct applier *A, uint32_t e, const char *from, size_t flen,
		     const char *to, size_t tlen, struct gfs_buf *id)
{
	struct incs I = { 0 };
	int rc = pinned_incident(A, e, GFS_IX_SRC, from, flen, false, &I);

	if (!rc)
		rc = overlay_incident(A, e, NS_SRC, from, flen, false, &I);
	for (size_t i = 0; !rc && i < I.n; i++)
		if (same(I.v[i].dst.p, I.v[i].dst.len, to, tlen))
			rc = gfs_buf_append(id, I.v[i].id.p, I.v[i].id.len) ? -ENOMEM : 1;
	incs_release(&I);
	return rc;
}

/* An edge's endpoint must exist once the earlier changes are applied. */
static int check_end(struct applier *A, const struct gfs_typedef *td, bool target,
		     const char *subj, struct gfs_change *c)
{
	const struct gfs_buf *id = target ? &A->rin.dst : &A->rin.src;
	uint32_t nt = (uint32_t)(target ? td->to_idx : td->from_idx);
	char ib[200];
	int rc = exists(A, nt, id->p, id->len);

	if (rc == 0)
		rc = change_fail(c, GFS_EDATA, "%s: %s %s '%s' does not exist", subj,
				 target ? "target" : "source", A->s->types[nt].name,
				 show(id->p, id->len, ib, sizeof ib));
	return rc < 0 ? rc : 0;
}

static int do_edge_put(struct applier *A, uint32_t t, struct gfs_change *c)
{
	const struct gfs_typedef *td = &A->s->types[t];
	struct gfs_buf line, src, dst;
	uint32_t off, dlen;
	char subj[700], sb[200], db[200];
	json_t *data;
	int rc;

	subject(td, c->key, c->key_len, c->from, c->from_len, c->to, c->to_len, subj, sizeof subj);
	if (!(data = parse_data(c->data, c->data_len, subj, c)))
		return c->rc ? c->rc : -ENOMEM;
	rc = edge_rin(A, t, c->key, c->key_len, c->from, c->from_len, c->to, c->to_len, data, c);
	if (rc)
		return rc;
	subject(td, A->rin.id.p, A->rin.id.len, A->rin.src.p, A->rin.src.len,
		A->rin.dst.p, A->rin.dst.len, subj, sizeof subj);
	gfs_buf_init(&line);
	gfs_buf_init(&src);
	gfs_buf_init(&dst);
	rc = current_row(A, t, A->rin.id.p, A->rin.id.len, &line, &off, &dlen, &src, &dst);
	if (rc == 1 && (!same(src.p, src.len, A->rin.src.p, A->rin.src.len) ||
			!same(dst.p, dst.len, A->rin.dst.p, A->rin.dst.len)))
		rc = change_fail(c, GFS_EDATA, "%s: the edge with this id goes %s -> %s (an edge's endpoints never change: delete it and create another)",
				 subj, show(src.p, src.len, sb, sizeof sb), show(dst.p, dst.len, db, sizeof db));
	else if (rc == 1)
		rc = 0;
	gfs_buf_release(&line);
	gfs_buf_release(&src);
	gfs_buf_release(&dst);
	if (!rc)
		rc = check_end(A, td, false, subj, c);
	if (!rc)
		rc = check_end(A, td, true, subj, c);
	if (!rc && c->first_of_pair) {
		struct gfs_buf other;
		char ob[200];

		gfs_buf_init(&other);
		rc = pair_edge(A, t, A->rin.src.p, A->rin.src.len, A->rin.dst.p,
			       A->rin.dst.len, &other);
		if (rc == 1)
			rc = change_fail(c, -EEXIST, "%s: edge '%s' goes %s -> %s already; another edge of the pair is named <to>~<id>.json, not <to>.json (write edges/%s/<from>/<to>~<id>.json to add one)",
					 subj, show(other.p, other.len, ob, sizeof ob),
					 show(A->rin.src.p, A->rin.src.len, sb, sizeof sb),
					 show(A->rin.dst.p, A->rin.dst.len, db, sizeof db),
					 td->name);
		gfs_buf_release(&other);
	}
	return rc ? rc : put_rin(A, c, subj);
}

static int do_edge_del(struct applier *A, uint32_t t, struct gfs_change *c)
{
	struct gfs_buf line, src, dst;
	uint32_t off, dlen;
	char subj[700];
	int rc;

	gfs_buf_init(&line);
	gfs_buf_init(&src);
	gfs_buf_init(&dst);
	rc = current_row(A, t, c->key, c->key_len, &line, &off, &dlen, &src, &dst);
	if (rc == 0)
		rc = change_fail(c, -ENOENT, "%s: does not exist",
				 subject(&A->s->types[t], c->key, c->key_len, "?", 1, "?", 1, subj, sizeof subj));
	else if (rc == 1)
		rc = del_row(A, t, c->key, c->key_len, src.p, src.len);
	gfs_buf_release(&line);
	gfs_buf_release(&src);
	gfs_buf_release(&dst);
	return rc;
}

/* The change's type, if it is one of the right kind: index, or -1 with
 * the change failed. */
static long change_type(const struct gfs_schema *s, struct gfs_change *c)
{
	bool edge = c->kind == GFS_CH_EDGE_PUT || c->kind == GFS_CH_EDGE_DEL;
	const struct gfs_typedef *td = c->type ? gfs_schema_find(s, c->type) : NULL;
	bool has_key = c->key || c->kind == GFS_CH_EDGE_PUT;

	if ((unsigned)c->kind > GFS_CH_EDGE_DEL)
		change_fail(c, -EINVAL, "unknown change kind %d", (int)c->kind);
	else if (!td || td->is_edge != edge)
		change_fail(c, GFS_EDATA, "unknown %s type '%s'", edge ? "edge" : "node",
			    c->type ? c->type : "(null)");
	else if (!has_key || (c->kind == GFS_CH_NODE_RENAME && !c->key2) ||
		 (c->kind == GFS_CH_EDGE_PUT && (!c->from || !c->to)))
		change_fail(c, -EINVAL, "%s: a change without its key or endpoints", td->name);
	else
		return td - s->types;
	return -1;
}

static int do_change(struct applier *A, uint32_t t, struct gfs_change *c)
{
	switch (c->kind) {
	case GFS_CH_NODE_PUT: return do_node_put(A, t, c);
	case GFS_CH_NODE_DEL: return do_node_del(A, t, c);
	case GFS_CH_NODE_RENAME: return do_node_rename(A, t, c);
	case GFS_CH_EDGE_PUT: return do_edge_put(A, t, c);
	case GFS_CH_EDGE_DEL: return do_edge_del(A, t, c);
	}
	return -EINVAL;
}

/* Validates the changes in order into the overlay.  A change that fails
 * is undone and keeps its rc; an error of the batch (I/O, memory) is
 * returned. */
static int validate(struct applier *A)
{
	for (size_t i = 0; i < A->n; i++) {
		struct gfs_change *c = &A->ch[i];
		size_t mark = A->nundo;
		long t;
		int rc;
		if (c->rc)
			continue;
		t = change_type(A->s, c);
		if (t < 0)
			continue;
		A->ncards = 0;
		A->stamp = (long)i;
		rc = do_change(A, (uint32_t)t, c);
		if (!rc)
			rc = check_cards(A, c);
		if (rc && !c->rc)
			return rc; /* the batch's (I/O, memory), not the change's */
		if (rc)
			undo_to(A, mark);
	}
	return 0;
}

/* ---- plan ------------------------------------------------------------- */

/* Marks the tables of every change whose type is valid; returns whether
 * there is any. */
static bool plan(struct applier *A)
{
	const struct gfs_schema *s = A->s;
	struct gfs_commit_table *ts = A->c.ts;
	bool any = false;

	for (size_t i = 0; i < A->n; i++) {
		struct gfs_change *c = &A->ch[i];
		long t = change_type(s, c);
		const struct gfs_typedef *td;
		if (t < 0)
			continue;
		td = &s->types[t];
		ts[t].written = any = true;
		if (c->kind == GFS_CH_EDGE_PUT) {
			ts[td->from_idx].read = true;
			ts[td->to_idx].read = true;
		}
		if (c->kind != GFS_CH_NODE_DEL && c->kind != GFS_CH_NODE_RENAME)
			continue;
		for (size_t k = 0; k < s->n_types; k++)
			if (s->types[k].is_edge && (s->types[k].from_idx == (size_t)t ||
						    s->types[k].to_idx == (size_t)t))
				ts[k].written = true;
	}
	return any;
}

/* ---- write ------------------------------------------------------------ */

static int slot_id_cmp(const void *a, const void *b, void *arg)
{
	const struct slot *sa = (const struct slot *)arg + *(const size_t *)a;
	const struct slot *sb = (const struct slot *)arg + *(const size_t *)b;
	size_t n = sa->len < sb->len ? sa->len : sb->len;
	int c = memcmp(sa->key, sb->key, n);

	return c ? c : sa->len < sb->len ? -1 : sa->len > sb->len;
}

/* The ids of type t the batch changed, sorted (a new array in *out). */
static int changed_ids(struct applier *A, uint32_t t, size_t **out, size_t *n)
{
	size_t *v = malloc((A->nslots + 1) * sizeof *v);

	*n = 0;
	*out = v;
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < A->nslots; i++)
		if (A->slots[i].type == t && A->slots[i].ns == NS_ID && A->slots[i].val >= 0)
			v[(*n)++] = i;
	qsort_r(v, *n, sizeof *v, slot_id_cmp, A->slots);
	return 0;
}

/* Does row r change table t's pinned version?  1 yes, 0 no, <0 error. */
static int effective(struct applier *A, uint32_t t, const struct orow *o)
{
	struct gfs_row row;
	struct gfs_buf line;
	size_t got;
	int rc;

	memset(&row, 0, sizeof row);
	rc = gfs_tver_get(pinned(A, t), o->id.p, o->id.len, &row);
	if (rc == 1 && !o->deleted) {
		gfs_buf_init(&line);
		rc = row.line_len != o->line.len ? 1 : gfs_buf_reserve(&line, row.line_len);
		if (!rc)
			rc = gfs_tver_read_row(pinned(A, t), &row, 0, line.p, row.line_len, &got);
		if (!rc)
			rc = got != o->line.len || memcmp(line.p, o->line.p, got);
		gfs_buf_release(&line);
	} else if (rc == 0) {
		rc = !o->deleted;
	}
	gfs_row_release(&row);
	return rc;
}

/* Which tables really change: written stays only on those (the others
 * stay locked and in the CAS as read). */
static int settle_written(struct applier *A, bool *any)
{
	int rc = 0;

	*any = false;
	for (uint32_t t = 0; !rc && t < A->s->n_types; t++) {
		size_t *ids = NULL, n = 0;
		bool w = false;
		if (!A->c.ts[t].written)
			continue;
		rc = changed_ids(A, t, &ids, &n);
		for (size_t i = 0; !rc && !w && i < n; i++) {
			rc = effective(A, t, &A->rows[A->slots[ids[i]].val]);
			w = rc == 1;
			rc = rc < 0 ? rc : 0;
		}
		free(ids);
		A->c.ts[t].written = w;
		A->c.ts[t].read = true;
		*any = *any || w;
	}
	return rc;
}

static int build_table(struct applier *A, uint32_t t)
{
	const struct gfs_typedef *td = &A->s->types[t];
	struct gfs_tbuild *b = NULL;
	size_t *ids = NULL, n = 0;
	int rc = changed_ids(A, t, &ids, &n);

	if (!rc)
		rc = gfs_tbuild_new(gfs_graph_tables(A->g), A->c.ts[t].table, A->c.ts[t].tv,
				    (unsigned)gfs_codec_n_unique(td), 0, &b);
	for (size_t i = 0; !rc && i < n; i++) {
		const struct orow *o = &A->rows[A->slots[ids[i]].val];
		struct gfs_rowput rp;
		int eff = effective(A, t, o);
		if (eff <= 0) {
			rc = eff;
			continue;
		}
		if (o->deleted) {
			A->rows_deleted++;
			rc = gfs_tbuild_del(b, o->id.p, o->id.len);
			continue;
		}
		A->rows_put++;
		rp = (struct gfs_rowput){
			.id = o->id.p, .id_len = o->id.len,
			.src = td->is_edge ? o->src.p : NULL, .src_len = o->src.len,
			.dst = td->is_edge ? o->dst.p : NULL, .dst_len = o->dst.len,
			.line = o->line.p, .line_len = o->line.len,
			.data_off = o->data_off, .data_len = o->data_len,
			.ukeys = o->uk, .n_ukeys = o->nuk,
		};
		if (o->renamed) {
			rp.pair_src = o->psrc.p ? o->psrc.p : "";
			rp.pair_src_len = o->psrc.len;
			rp.pair_dst = o->pdst.p ? o->pdst.p : "";
			rp.pair_dst_len = o->pdst.len;
		}
		rc = gfs_tbuild_put(b, &rp);
	}
	if (!rc)
		rc = gfs_commit_linked(&A->c, t, gfs_tbuild_commit(b, A->c.ts[t].next,
								  A->c.op_id, A->c.d));
	gfs_tbuild_free(b);
	free(ids);
	return rc;
}

/* ---- the log record --------------------------------------------------- */

static const char *const op_names[] = { "put", "delete", "rename", "edge-put", "edge-delete" };

static json_t *jstr(const char *p, size_t len)
{
	json_t *v = p ? json_stringn(p, len) : json_null();
	char b[200];

	return v ? v : json_string(show(p, len, b, sizeof b));
}

static bool same_writer(const struct gfs_writer *a, const struct gfs_writer *b)
{
	return a->uid == b->uid && a->pid == b->pid && !strcmp(a->comm, b->comm);
}

/* The writer's fields into o; 0 or -ENOMEM. */
static int writer_fields(json_t *o, const struct gfs_writer *w)
{
	if (json_object_set_new(o, "uid", json_integer((json_int_t)w->uid)) ||
	    json_object_set_new(o, "pid", json_integer((json_int_t)w->pid)) ||
	    json_object_set_new(o, "comm", jstr(w->comm, strnlen(w->comm, sizeof w->comm))))
		return -ENOMEM;
	return 0;
}

static int writer_json(const struct gfs_writer *w, json_t *arr)
{
	json_t *o = json_object();
	int rc = o ? writer_fields(o, w) : -ENOMEM;

	if (!rc)
		return json_array_append_new(arr, o) ? -ENOMEM : 0;
	json_decref(o);
	return rc;
}

static int change_json(const struct gfs_change *c, json_t *arr)
{
	json_t *o = json_pack("{s:s,s:s,s:o}", "op", op_names[c->kind], "type", c->type,
			      "key", c->key ? jstr(c->key, c->key_len) : json_null());
	int rc = o ? 0 : -ENOMEM;

	if (!rc && c->kind == GFS_CH_NODE_RENAME)
		rc = json_object_set_new(o, "to", jstr(c->key2, c->key2_len));
	if (!rc && c->kind == GFS_CH_EDGE_PUT) {
		rc = json_object_set_new(o, "from", jstr(c->from, c->from_len));
		rc = rc ? rc : json_object_set_new(o, "to", jstr(c->to, c->to_len));
	}
	if (!rc && c->who)
		rc = writer_fields(o, c->who);
	if (!rc)
		return json_array_append_new(arr, o) ? -ENOMEM : 0;
	json_decref(o);
	return -ENOMEM;
}

/* {"source":..,"changes":[..],"more":N,"writers":[..]}: a new string
 * (free()) or NULL on ENOMEM. */
static char *log_detail(const struct applier *A, const char *source)
{
	json_t *root = json_object(), *chs = json_array(), *ws = json_array();
	size_t listed = 0, more = 0;
	char *out = NULL;
	int rc = root && chs && ws ? 0 : -ENOMEM;

	for (size_t i = 0; !rc && i < A->n; i++) {
		const struct gfs_change *c = &A->ch[i];
		bool seen = false;
		if (c->rc)
			continue;
		if (listed < LOG_CHANGES_MAX) {
			rc = change_json(c, chs);
			listed++;
		} else {
			more++;
		}
		for (size_t k = 0; c->who && k < i && !seen; k++)
			seen = !A->ch[k].rc && A->ch[k].who && same_writer(A->ch[k].who, c->who);
		if (!rc && c->who && !seen)
			rc = writer_json(c->who, ws);
	}
	if (!rc && !json_object_set_new(root, "source", json_string(source ? source : "-")) &&
	    !json_object_set(root, "changes", chs) &&
	    (!more || !json_object_set_new(root, "more", json_integer((json_int_t)more))) &&
	    !json_object_set(root, "writers", ws))
		out = json_dumps(root, JSON_COMPACT);
	json_decref(chs);
	json_decref(ws);
	json_decref(root);
	return out;
}

/* ---- the whole batch -------------------------------------------------- */

static void overlay_reset(struct applier *A)
{
	for (size_t i = 0; i < A->nrows; i++)
		orow_release(&A->rows[i]);
	A->nrows = 0;
	free(A->slots);
	A->slots = NULL;
	A->nslots = A->capslots = 0;
	free(A->tab);
	A->tab = NULL;
	A->captab = 0;
	A->nundo = 0;
	A->ncards = 0;
	A->rows_put = A->rows_deleted = 0;
}

static void applier_free(struct applier *A)
{
	overlay_reset(A);
	free(A->rows);
	free(A->undo);
	free(A->cards);
	gfs_rowin_release(&A->rin);
	gfs_commit_release(&A->c);
}

/* Arm, write the changed tables, confirm, publish. */
static int write_batch(struct applier *A, const struct gfs_apply_opts *o,
		       uint64_t *version)
{
	char *detail;
	int rc = gfs_commit_arm(&A->c);

	if (rc)
		return rc;
	rc = gfs_commit_fp(GFS_FP_COMMIT_AFTER_SIDECAR);
	for (uint32_t t = 0; !rc && t < A->s->n_types; t++)
		if (A->c.ts[t].written)
			rc = build_table(A, t);
	if (!rc)
		rc = gfs_commit_confirm(&A->c);
	detail = rc ? NULL : log_detail(A, o ? o->source : NULL);
	if (!rc && !detail)
		rc = -ENOMEM;
	rc = gfs_commit_finish(&A->c, rc, "write", detail, version);
	free(detail);
	return rc;
}

/* One attempt against the head: lock, validate, write.  *version 0 and
 * rc 0: nothing valid changed anything. */
static int attempt(struct applier *A, const struct gfs_apply_opts *o,
		   uint64_t *version, struct gfs_diag *d)
{
	struct gfs_gv *gv = NULL;
	bool any = false;
	const char *br = o && o->branch ? o->branch : "main";
	int rc = gfs_manifest_branch_head(gfs_graph_manifest(A->g), br, &gv);

	if (rc == -ENOENT)
		gfs_diag_set(d, "no branch '%s'", br);
	if (!rc)
		rc = gfs_graph_schema(A->g, gv->schema_id, &A->s, d);
	gfs_gv_free(gv);
	if (!rc)
		rc = gfs_commit_init(&A->c, A->g, A->s, "mount", o ? o->actor : NULL, "write", d);
	A->c.branch = o ? o->branch : NULL;
	if (!rc && !plan(A)) { /* no valid change: touch nothing (an empty
				 lock set would heal every table) */
		*version = 0;
		return 0;
	}
	if (!rc)
		rc = gfs_commit_lock(&A->c, GFS_FP_APPLY_AFTER_HEAL, GFS_FP_APPLY_AFTER_LOCKS);
	if (!rc)
		rc = gfs_commit_pin(&A->c);
	if (!rc)
		rc = validate(A);
	if (!rc)
		rc = settle_written(A, &any);
	if (!rc)
		A->head = A->c.gv->version;
	if (!rc && any)
		rc = write_batch(A, o, version);
	else if (!rc)
		*version = 0;
	return rc;
}

static void reset_changes(struct gfs_change *ch, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ch[i].rc = 0;
		ch[i].msg[0] = '\0';
		ch[i].version = 0;
	}
}

int gfs_apply_check(struct gfs_commit *c, struct gfs_change *changes, size_t n,
		    unsigned flags)
{
	struct applier A;
	int rc;

	for (uint32_t t = 0; t < c->s->n_types; t++)
		if (!c->ts[t].tv)
			return -EINVAL; /* every table must be pinned */
	memset(&A, 0, sizeof A);
	A.g = c->g;
	A.s = c->s;
	A.c = *c; /* borrowed: its pinned versions are read, never released here */
	A.ch = changes;
	A.n = n;
	A.no_cascade = flags & GFS_APPLY_NO_CASCADE;
	gfs_rowin_init(&A.rin);
	reset_changes(changes, n);
	rc = validate(&A);
	memset(&A.c, 0, sizeof A.c);
	applier_free(&A);
	return rc;
}

int gfs_graph_apply(struct gfs_graph *g, struct gfs_change *changes, size_t n,
		    const struct gfs_apply_opts *o, struct gfs_apply_result *res,
		    struct gfs_diag *d)
{
	struct applier A;
	uint64_t version = 0, at = 0;
	int rc = GFS_ECAS;

	memset(res, 0, sizeof *res);
	for (unsigned i = 0; rc == GFS_ECAS && i < APPLY_TRIES; i++) {
		memset(&A, 0, sizeof A);
		A.g = g;
		A.ch = changes;
		A.n = n;
		gfs_rowin_init(&A.rin);
		reset_changes(changes, n);
		if (d)
			d->msg[0] = '\0';
		rc = attempt(&A, o, &version, d);
		if (!rc) {
			res->rows_put = A.rows_put;
			res->rows_deleted = A.rows_deleted;
			memcpy(res->op_id, A.c.op_id, sizeof res->op_id);
			at = version ? version : A.head;
		}
		applier_free(&A);
	}
	if (rc == GFS_ECAS && d)
		gfs_diag_set(d, "the head kept moving (%d tries): %s", APPLY_TRIES,
			     d->msg[0] ? d->msg : "another writer published first");
	for (size_t i = 0; i < n; i++) {
		struct gfs_change *c = &changes[i];
		if (rc && !c->rc) {
			c->rc = rc;
			snprintf(c->msg, sizeof c->msg, "%s", d && d->msg[0] ? d->msg : gfs_strerror(rc));
		}
		c->version = c->rc ? 0 : at;
		if (c->rc)
			res->failed++;
		else
			res->applied++;
	}
	res->version = rc ? 0 : version;
	return rc;
}
