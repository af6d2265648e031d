/* table_build.c - writing a table version: the builder and its spill.
 *
 * The file format is at the top of table.c.
 *
 * Memory (why any load fits): lines go to the temp file as they
 * are put; each put becomes ops (a 32-byte struct plus key and value: the
 * PRIMARY record, about 92 + id + src + dst + sum(4 + unique key) bytes;
 * for edges a SRC and a DST op of 36 + esc(src) + esc(dst) + esc(id) + id;
 * per unique key 32 + key + id) that stay in memory only up to
 * tbl_spill_bytes (8 MiB), then go sorted to a spill file as runs that the
 * commit merges (a spiller thread sorts and writes one full batch while
 * puts fill the next: two batches at most).  Writing a tree streams it: one page per level.  What
 * still grows with the batch, slowly: one bit per PRIMARY op (PAIR_FIRST)
 * and, while a tree is written, a 64 KiB read buffer per run of it (a
 * spill holds ~25,000 edge rows: ~3 bytes a row).  Never O(line bytes).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "table.h"
#include "table_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "failpoints.h"

#define ARENA_CHUNK ((size_t)1 << 20)
#define WBUF_MAX ((size_t)1 << 20)

/* ---- builder ----------------------------------------------------------
 *
 * Every put or delete becomes ops, one per tree it changes (a PRIMARY op
 * with the row record, SRC/DST/unique ops with their index keys); the row
 * lines go straight to the temp file.  Ops wait in memory until they take
 * tbl_spill_bytes; then each tree's ops are sorted and written as one run
 * to a spill file (an O_TMPFILE in the table directory), and memory starts
 * over.  At commit each tree is written from the merge of its runs and the
 * ops still in memory, streamed into the parent's tree (see "writing
 * trees").  PRIMARY ops arrive in id order, so its runs are already sorted.
 * So a builder holds O(tbl_spill_bytes), not O(rows), whatever the batch.
 */

enum { OP_DEL = 1, OP_NEW = 2 };

/* One change to one tree: key, then the value right after it.  aux: the
 * PRIMARY op number of a new row, on its SRC put (for PAIR_FIRST). */
struct op {
	char *k;
	uint32_t klen, vlen, fl;
	uint64_t aux;
};

struct opvec {
	struct op *v;
	size_t n, cap;
};

/* A sorted run of one tree's ops in the spill file. */
struct run {
	uint64_t off, len;
};

struct runvec {
	struct run *v;
	size_t n, cap;
};

struct achunk {
	struct achunk *next;
	size_t used, cap;
	char data[];
};

/* The page being filled at one tree level while a tree is written. */
struct lvl {
	struct gfs_buf buf;
	uint32_t n;
	uint64_t count, bytes;
};

/* A parent row found while building (borrowed from the parent's pages). */
struct prow {
	const char *k, *v;
	uint32_t klen, vlen;
	struct rec r;
};

struct hdr_args {
	uint32_t version, parent, content_of;
	bool compensation;
	const char *op_id;
};

struct gfs_tbuild {
	struct gfs_tstore *ts;
	struct gfs_tver *parent;
	char *table;
	char dir[PATH_MAX], tmp[PATH_MAX];
	int fd, err, tree;
	bool tmp_exists, committed, have_last, rp_started, rp_skip;
	bool finished; /* finish done, link not yet */
	const struct rec *keep; /* compact: the put row's serial, changed, flags */
	unsigned n_unique, n_trees, flags, parent_nu;
	uint32_t version;
	uint64_t pos, next_serial;
	struct achunk *arena;
	struct opvec *ops;   /* [n_trees]: ops in memory */
	struct runvec *runs; /* [n_trees]: ops spilled */
	uint64_t *nops;      /* [n_trees]: ops ever added (0: tree untouched) */
	size_t mem;          /* bytes the ops in memory take */
	uint64_t nprim;      /* PRIMARY ops so far: the next one's number */
	int sfd;             /* spill file, -1 before the first spill */
	uint64_t spos;       /* its length */
	uint8_t *pfirst;     /* commit: bit i set = PRIMARY op i is PAIR_FIRST */
	struct gfs_buf wbuf, sbuf, scratch, last;
	struct path *pp; /* parent lookups; the REPLACE walk */
	struct path *wc; /* commit: the parent tree being merged (writing trees) */
	struct lvl *lv;
	int nlv, lv_cap;
	struct gfs_diag *d; /* commit's, for corrupt parent pages */
	/* The spill in flight: a spiller thread sorts and writes the ops of
	 * the last full batch (sops, sarena) while puts fill the next one.
	 * It alone touches sfd, sbuf, spos and runs until it is joined. */
	struct opvec *sops;   /* [n_trees]: the batch being spilled */
	struct achunk *sarena;
	pthread_t sth;
	bool spilling, sthreaded;
	int src;              /* the spill's result */
	char sio[PATH_MAX + 96]; /* its gfs_io_last, carried back */
};

/* Tests lower it to make small builds spill. */
size_t tbl_spill_bytes = (size_t)8 << 20;

#define SPILL_HDR 20u              /* klen4 vlen4 fl4 aux8, then key, value */
#define MERGE_BUF ((size_t)64 << 10) /* read buffer per run while merging */

static char *arena_alloc(struct gfs_tbuild *b, size_t n)
{
	struct achunk *c = b->arena;

	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;

		c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		if (cap == n && b->arena) { /* big one: keep the open chunk */
			c->next = b->arena->next;
			b->arena->next = c;
		} else {
			c->next = b->arena;
			b->arena = c;
		}
	}
	c->used += n;
	return c->data + c->used - n;
}

static void chunks_free(struct achunk *c)
{
	while (c) {
		struct achunk *n = c->next;

		free(c);
		c = n;
	}
}

static void arena_free(struct gfs_tbuild *b)
{
	chunks_free(b->arena);
	b->arena = NULL;
}

/* Makes room for one more op of tree t; returns it, NULL on ENOMEM. */
static struct op *op_slot(struct gfs_tbuild *b, unsigned t)
{
	struct opvec *ov = &b->ops[t];
	struct op *nv = gfs_array_grow(ov->v, &ov->cap, ov->n, sizeof *nv, 64);

	if (!nv)
		return NULL;
	ov->v = nv;
	return &ov->v[ov->n];
}

/* Records op o (its key and value already in the arena) for tree t. */
static void op_commit(struct gfs_tbuild *b, unsigned t, const struct op *o)
{
	b->ops[t].v[b->ops[t].n++] = *o;
	b->mem += sizeof *o + o->klen + o->vlen;
	b->nops[t]++;
	if (t == GFS_IX_PRIMARY)
		b->nprim++;
}

static int op_add(struct gfs_tbuild *b, unsigned t, const char *k, size_t kl,
		  const char *v, size_t vl, uint32_t fl)
{
	struct op *o = op_slot(b, t);
	char *m = o ? arena_alloc(b, kl + vl) : NULL;

	if (!m)
		return -ENOMEM;
	if (kl)
		memcpy(m, k, kl);
	if (vl)
		memcpy(m + kl, v, vl);
	op_commit(b, t, &(struct op){ m, (uint32_t)kl, (uint32_t)vl, fl, 0 });
	return 0;
}

/* A SRC/DST op: key esc(a) 00 01 esc(c) 00 01 esc(id), value id (puts),
 * built in the arena. */
static int op_add_pair(struct gfs_tbuild *b, unsigned t, const char *a,
		       size_t al, const char *c, size_t cl, const char *id,
		       size_t idl, uint32_t fl, uint64_t aux)
{
	size_t kl = tbl_esc_len(a, al) + tbl_esc_len(c, cl) + tbl_esc_len(id, idl) + 4;
	size_t vl = fl & OP_DEL ? 0 : idl;
	struct op *o = op_slot(b, t);
	char *m = o ? arena_alloc(b, kl + vl) : NULL, *q;

	if (!m)
		return -ENOMEM;
	q = tbl_esc_put(m, a, al);
	*q++ = 0;
	*q++ = 1;
	q = tbl_esc_put(q, c, cl);
	*q++ = 0;
	*q++ = 1;
	q = tbl_esc_put(q, id, idl);
	if (vl)
		memcpy(q, id, vl);
	op_commit(b, t, &(struct op){ m, (uint32_t)kl, (uint32_t)vl, fl, aux });
	return 0;
}

/* SRC/DST entries of one row going from old (NULL: new row) to nw (NULL:
 * deleted); nothing when the row keeps its endpoints.  nfl is OP_NEW for
 * a new row, whose SRC put carries its PRIMARY op number (the last one). */
static int sec_edges(struct gfs_tbuild *b, const char *id, size_t idl,
		     const struct rec *old, const struct rec *nw, uint32_t nfl)
{
	bool oe = old && (old->flags & TBL_REC_EDGE);
	bool ne = nw && (nw->flags & TBL_REC_EDGE);
	uint64_t seq = b->nprim ? b->nprim - 1 : 0;
	int rc = 0;

	if (oe && ne && tbl_bytes_eq(old->src, old->src_len, nw->src, nw->src_len) &&
	    tbl_bytes_eq(old->dst, old->dst_len, nw->dst, nw->dst_len))
		return 0;
	if (oe) {
		rc = op_add_pair(b, GFS_IX_SRC, old->src, old->src_len, old->dst,
				 old->dst_len, id, idl, OP_DEL, 0);
		if (!rc)
			rc = op_add_pair(b, GFS_IX_DST, old->dst, old->dst_len,
					 old->src, old->src_len, id, idl, OP_DEL, 0);
	}
	if (!rc && ne) {
		rc = op_add_pair(b, GFS_IX_SRC, nw->src, nw->src_len, nw->dst,
				 nw->dst_len, id, idl, nfl, seq);
		if (!rc)
			rc = op_add_pair(b, GFS_IX_DST, nw->dst, nw->dst_len,
					 nw->src, nw->src_len, id, idl, nfl, 0);
	}
	return rc;
}

/* Unique index entries of one row: old keys out, new keys in. Keys of
 * indexes the parent did not have count as absent, so a REPLACE that adds
 * a unique constraint indexes every row. */
static int sec_uniques(struct gfs_tbuild *b, const char *id, size_t idl,
		       const struct rec *old, const struct gfs_rowput *r)
{
	for (unsigned k = 0; k < b->n_unique; k++) {
		const char *ok = NULL, *nk = NULL;
		size_t ol = 0, nl = 0;
		int rc = 0;

		if (old && k < b->parent_nu)
			tbl_rec_ukey(old, k, &ok, &ol);
		if (r && k < r->n_ukeys) {
			nk = r->ukeys[k].p;
			nl = r->ukeys[k].len;
		}
		if (tbl_bytes_eq(ok, ol, nk, nl))
			continue;
		if (ol)
			rc = op_add(b, GFS_IX_UNIQUE0 + k, ok, ol, NULL, 0, OP_DEL);
		if (!rc && nl)
			rc = op_add(b, GFS_IX_UNIQUE0 + k, nk, nl, id, idl, 0);
		if (rc)
			return rc;
	}
	return 0;
}

static int emit_delete(struct gfs_tbuild *b, const char *id, size_t idl,
		       const struct rec *old)
{
	int rc = op_add(b, GFS_IX_PRIMARY, id, idl, NULL, 0, OP_DEL);

	if (!rc)
		rc = sec_edges(b, id, idl, old, NULL, 0);
	if (!rc)
		rc = sec_uniques(b, id, idl, old, NULL);
	return rc;
}

static int bw_flush(struct gfs_tbuild *b)
{
	int rc = b->wbuf.len ? gfs_write_all(b->fd, b->wbuf.p, b->wbuf.len) : 0;

	b->wbuf.len = 0;
	return rc;
}

/* Appends to the temp file through a 1 MiB buffer; b->pos is the offset. */
static int bw_append(struct gfs_tbuild *b, const void *p, size_t n)
{
	int rc = 0;

	if (b->wbuf.len + n > WBUF_MAX)
		rc = bw_flush(b);
	if (!rc && n)
		rc = n >= WBUF_MAX ? gfs_write_all(b->fd, p, n)
				   : gfs_buf_append(&b->wbuf, p, n);
	if (!rc)
		b->pos += n;
	return rc;
}

static int rec_encode(struct gfs_buf *out, const struct rec *r,
		      const struct gfs_rowput *rp, unsigned n_unique)
{
	char f[TBL_REC_FIXED], l4[4];
	int rc;

	tbl_put64(f + TBL_REC_SERIAL, r->serial);
	tbl_put32(f + TBL_REC_CHANGED, r->changed);
	tbl_put32(f + TBL_REC_FLAGS, r->flags);
	tbl_put64(f + TBL_REC_HASH, r->hash);
	tbl_put32(f + TBL_REC_SEG, r->seg);
	tbl_put64(f + TBL_REC_SEGOFF, r->seg_off);
	tbl_put32(f + TBL_REC_LINELEN, r->line_len);
	tbl_put32(f + TBL_REC_DATAOFF, r->data_off);
	tbl_put32(f + TBL_REC_DATALEN, r->data_len);
	tbl_put32(f + TBL_REC_SRCLEN, r->src_len);
	tbl_put32(f + TBL_REC_DSTLEN, r->dst_len);
	tbl_put32(f + TBL_REC_NUKEYS, n_unique);
	out->len = 0;
	rc = gfs_buf_append(out, f, sizeof f);
	if (!rc && r->src_len)
		rc = gfs_buf_append(out, r->src, r->src_len);
	if (!rc && r->dst_len)
		rc = gfs_buf_append(out, r->dst, r->dst_len);
	for (unsigned k = 0; k < n_unique && !rc; k++) {
		size_t l = k < rp->n_ukeys ? rp->ukeys[k].len : 0;

		tbl_put32(l4, (uint32_t)l);
		rc = gfs_buf_append(out, l4, 4);
		if (!rc && l)
			rc = gfs_buf_append(out, rp->ukeys[k].p, l);
	}
	return rc;
}

static int prow_fill(const struct path *p, struct prow *pr)
{
	struct lent e;

	tbl_path_entry(p, &e);
	pr->k = e.k;
	pr->klen = e.klen;
	pr->v = e.v;
	pr->vlen = e.vlen;
	return tbl_rec_decode(e.v, e.vlen, &pr->r) ? GFS_ECORRUPT : 1;
}

static int parent_lookup(struct gfs_tbuild *b, const char *id, size_t idl,
			 struct prow *pr)
{
	int rc;

	if (!b->parent)
		return 0;
	/* Ids come in increasing order: the path of the previous lookup
	 * usually covers the next id down to its leaf. */
	rc = tbl_path_seek_near(b->parent, GFS_IX_PRIMARY, b->pp, id, idl);
	if (rc || !tbl_path_at_key(b->pp, id, idl))
		return rc;
	return prow_fill(b->pp, pr);
}

static int maybe_spill(struct gfs_tbuild *b);

/* REPLACE: walks the parent in step with the batch, deleting every parent
 * row before id (id NULL: all the rest).  1 = the parent has id (*pr). */
static int replace_walk(struct gfs_tbuild *b, const char *id, size_t idl,
			struct prow *pr)
{
	struct path *p = b->pp;
	int rc;

	if (!b->parent)
		return 0;
	if (!b->rp_started) {
		rc = tbl_path_seek_key(b->parent, GFS_IX_PRIMARY, p, "", 0);
		if (rc)
			return rc;
		b->rp_started = true;
	}
	if (b->rp_skip && p->depth)
		p->idx[p->depth - 1]++;
	b->rp_skip = false;
	for (;;) {
		int c;

		rc = tbl_path_valid(b->parent, GFS_IX_PRIMARY, p);
		if (rc <= 0)
			return rc;
		rc = prow_fill(p, pr);
		if (rc < 0)
			return rc;
		c = id ? tbl_keycmp(pr->k, pr->klen, id, idl) : -1;
		if (c > 0)
			return 0;
		if (c == 0) {
			b->rp_skip = true;
			return 1;
		}
		rc = emit_delete(b, pr->k, pr->klen, &pr->r);
		if (!rc)
			rc = maybe_spill(b);
		if (rc)
			return rc;
		p->idx[p->depth - 1]++;
	}
}

static int parent_row(struct gfs_tbuild *b, const char *id, size_t idl,
		      struct prow *pr)
{
	if (b->flags & GFS_TBUILD_REPLACE)
		return replace_walk(b, id, idl, pr);
	return parent_lookup(b, id, idl, pr);
}

static int check_order(struct gfs_tbuild *b, const char *id, size_t idl)
{
	if (!id && idl)
		return -EINVAL;
	if (idl > TBL_MAX_KEY)
		return GFS_ETOOLONG;
	if (b->have_last && tbl_keycmp(b->last.p, b->last.len, id, idl) >= 0)
		return -EINVAL;
	b->last.len = 0;
	b->have_last = true;
	return idl ? gfs_buf_append(&b->last, id, idl) : 0;
}

static int put_check(const struct gfs_tbuild *b, const struct gfs_rowput *r)
{
	uint64_t rec = TBL_REC_FIXED + (uint64_t)r->src_len + r->dst_len;

	if (!r->line || !r->line_len || r->line_len > UINT32_MAX ||
	    (uint64_t)r->data_off + r->data_len > r->line_len ||
	    r->n_ukeys > b->n_unique || (r->n_ukeys && !r->ukeys) ||
	    (!r->src != !r->dst) || (!r->src && (r->src_len || r->dst_len)))
		return -EINVAL;
	if (r->src_len > TBL_MAX_KEY || r->dst_len > TBL_MAX_KEY)
		return GFS_ETOOLONG;
	for (size_t k = 0; k < r->n_ukeys; k++) {
		if (r->ukeys[k].len > TBL_MAX_KEY)
			return GFS_ETOOLONG;
		rec += 4 + r->ukeys[k].len;
	}
	return rec > TBL_PAGE_MAX / 4 ? GFS_ETOOLONG : 0;
}

static void rec_from_put(struct rec *nr, const struct gfs_rowput *r)
{
	memset(nr, 0, sizeof *nr);
	nr->hash = gfs_hash64(r->line, r->line_len);
	nr->line_len = (uint32_t)r->line_len;
	nr->data_off = r->data_off;
	nr->data_len = r->data_len;
	nr->flags = r->src ? TBL_REC_EDGE : 0;
	nr->src = r->src;
	nr->dst = r->dst;
	nr->src_len = (uint32_t)r->src_len;
	nr->dst_len = (uint32_t)r->dst_len;
}

static bool same_line(const struct rec *a, const struct rec *b)
{
	return a->hash == b->hash && a->line_len == b->line_len &&
	       a->data_off == b->data_off && a->data_len == b->data_len;
}

static int do_put(struct gfs_tbuild *b, const struct gfs_rowput *r,
		  const struct prow *p)
{
	struct rec nr;
	uint32_t fl = 0;
	int rc = 0;

	rec_from_put(&nr, r);
	/* An edge a put re-points (same id, other endpoints: a load in merge
	 * mode, a merge taking such a row) joins its new pair as a new edge
	 * would: its old PAIR_FIRST is dropped and feed_src decides again, so
	 * two edges of one pair never share the name <to>.json (found by
	 * tests/model: the re-pointed edge kept the flag of its old pair). */
	bool moved = p && (p->r.flags & TBL_REC_EDGE) && (nr.flags & TBL_REC_EDGE) &&
		     (!tbl_bytes_eq(p->r.src, p->r.src_len, nr.src, nr.src_len) ||
		      !tbl_bytes_eq(p->r.dst, p->r.dst_len, nr.dst, nr.dst_len));
	/* A rename moves the whole pair: its edges keep their flags (found by
	 * tests/model: the renamed pair's plain name went to another edge). */
	if (moved && r->pair_src && r->pair_dst &&
	    tbl_bytes_eq(p->r.src, p->r.src_len, r->pair_src, r->pair_src_len) &&
	    tbl_bytes_eq(p->r.dst, p->r.dst_len, r->pair_dst, r->pair_dst_len))
		moved = false;
	if (p) {
		nr.serial = p->r.serial;
		if (!moved)
			nr.flags |= p->r.flags & GFS_ROW_PAIR_FIRST;
	} else if (b->keep) { /* compact: an old row, not a new one */
		nr.serial = b->keep->serial;
		nr.flags |= b->keep->flags & GFS_ROW_PAIR_FIRST;
	} else {
		nr.serial = r->serial ? r->serial : b->next_serial++;
		fl = OP_NEW;
	}
	if (r->serial) {
		nr.serial = r->serial;
		if (b->next_serial <= r->serial)
			b->next_serial = r->serial + 1;
	}
	if (p && same_line(&p->r, &nr) && (!r->changed || r->changed == p->r.changed)) {
		nr.changed = p->r.changed;
		nr.seg = p->r.seg;
		nr.seg_off = p->r.seg_off;
	} else {
		/* this version, set at commit; a kept `changed` stays
		 * (a merged row's, a compacted row's) */
		nr.changed = r->changed ? r->changed : UINT32_MAX;
		if (b->keep)
			nr.changed = b->keep->changed;
		nr.seg = UINT32_MAX;
		nr.seg_off = b->pos;
		rc = bw_append(b, r->line, r->line_len);
	}
	if (!rc)
		rc = rec_encode(&b->scratch, &nr, r, b->n_unique);
	if (!rc && (!p || !tbl_bytes_eq(p->v, p->vlen, b->scratch.p, b->scratch.len)))
		rc = op_add(b, GFS_IX_PRIMARY, r->id, r->id_len, b->scratch.p,
			    b->scratch.len, fl);
	if (!rc)
		rc = sec_edges(b, r->id, r->id_len, p ? &p->r : NULL, &nr,
			       moved ? OP_NEW : fl);
	if (!rc)
		rc = sec_uniques(b, r->id, r->id_len, p ? &p->r : NULL, r);
	return rc;
}

int gfs_tbuild_put(struct gfs_tbuild *b, const struct gfs_rowput *r)
{
	struct prow pr;
	int rc;

	if (b->err || b->committed)
		return b->err ? b->err : -EINVAL;
	rc = put_check(b, r);
	if (!rc)
		rc = check_order(b, r->id, r->id_len);
	if (rc)
		return rc;
	rc = parent_row(b, r->id, r->id_len, &pr);
	if (rc >= 0)
		rc = do_put(b, r, rc == 1 ? &pr : NULL);
	if (!rc)
		rc = maybe_spill(b);
	if (rc)
		b->err = rc;
	return rc;
}

int gfs_tbuild_del(struct gfs_tbuild *b, const char *id, size_t id_len)
{
	struct prow pr;
	int rc;

	if (b->err || b->committed)
		return b->err ? b->err : -EINVAL;
	rc = check_order(b, id, id_len);
	if (rc)
		return rc;
	rc = parent_row(b, id, id_len, &pr);
	if (rc == 1)
		rc = emit_delete(b, pr.k, pr.klen, &pr.r);
	if (rc >= 0)
		rc = maybe_spill(b);
	if (rc < 0)
		b->err = rc;
	return rc < 0 ? rc : 0;
}

static int open_tmp(struct gfs_tbuild *b)
{
	char name[32];
	int rc = tbl_mkpath(b->dir, sizeof b->dir, b->ts->dir, b->table, NULL);

	snprintf(name, sizeof name, ".tmp-%ld-XXXXXX", (long)getpid());
	if (!rc)
		rc = tbl_mkpath(b->tmp, sizeof b->tmp, b->ts->dir, b->table, name);
	if (rc)
		return rc;
	b->fd = mkostemp(b->tmp, O_CLOEXEC);
	if (b->fd < 0)
		return gfs_io_fail("create", b->tmp, -errno);
	b->tmp_exists = true;
	/* mkostemp made it 0600; what a version file gets is what open(2)
	 * would give (GFS_FILE_MODE less the umask), never wider. */
	return fchmod(b->fd, GFS_FILE_MODE & ~gfs_umask())
	       ? gfs_io_fail("chmod", b->tmp, -errno) : 0;
}

int gfs_tbuild_new(struct gfs_tstore *ts, const char *table,
		   struct gfs_tver *parent, unsigned n_unique, unsigned flags,
		   struct gfs_tbuild **out)
{
	static const char zeros[TBL_HDR_LEN];
	struct gfs_tbuild *b;
	int rc;

	*out = NULL;
	if (!tbl_name_ok(table) || n_unique > TBL_MAX_UNIQUE ||
	    (flags & ~GFS_TBUILD_REPLACE) || (parent && strcmp(parent->table, table)))
		return -EINVAL;
	/* A new unique index needs every row's key: only a REPLACE has them. */
	if (parent && n_unique > parent->n_unique && parent->info.rows &&
	    !(flags & GFS_TBUILD_REPLACE))
		return -EINVAL;
	b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->ts = ts;
	b->parent = parent;
	b->fd = b->sfd = -1;
	b->n_unique = n_unique;
	b->n_trees = 3 + n_unique;
	b->flags = flags;
	b->parent_nu = parent ? parent->n_unique : 0;
	b->next_serial = parent ? parent->info.next_serial : 1;
	gfs_buf_init(&b->wbuf);
	gfs_buf_init(&b->sbuf);
	gfs_buf_init(&b->scratch);
	gfs_buf_init(&b->last);
	b->table = gfs_strdup(table);
	b->ops = calloc(b->n_trees, sizeof *b->ops);
	b->sops = calloc(b->n_trees, sizeof *b->sops);
	b->runs = calloc(b->n_trees, sizeof *b->runs);
	b->nops = calloc(b->n_trees, sizeof *b->nops);
	b->pp = calloc(1, sizeof *b->pp);
	b->wc = calloc(1, sizeof *b->wc);
	rc = b->table && b->ops && b->sops && b->runs && b->nops && b->pp && b->wc
		     ? open_tmp(b) : -ENOMEM;
	if (!rc)
		rc = bw_append(b, zeros, sizeof zeros);
	if (rc) {
		gfs_tbuild_free(b);
		return rc;
	}
	*out = b;
	return 0;
}

static void drop_tmp(struct gfs_tbuild *b)
{
	if (b->tmp_exists && unlink(b->tmp) == 0)
		b->tmp_exists = false;
}

static void free_path(struct path *p)
{
	if (p)
		tbl_path_clear(p);
	free(p);
}

static int spill_wait(struct gfs_tbuild *b);
static void chunks_free(struct achunk *c);

void gfs_tbuild_free(struct gfs_tbuild *b)
{
	if (!b)
		return;
	spill_wait(b);
	chunks_free(b->sarena);
	if (b->fd >= 0)
		close(b->fd);
	if (b->sfd >= 0)
		close(b->sfd);
	if (b->tmp_exists)
		unlink(b->tmp);
	arena_free(b);
	for (unsigned t = 0; b->ops && t < b->n_trees; t++)
		free(b->ops[t].v);
	for (unsigned t = 0; b->sops && t < b->n_trees; t++)
		free(b->sops[t].v);
	free(b->sops);
	for (unsigned t = 0; b->runs && t < b->n_trees; t++)
		free(b->runs[t].v);
	free(b->ops);
	free(b->runs);
	free(b->nops);
	free(b->pfirst);
	for (int i = 0; i < b->lv_cap; i++)
		gfs_buf_release(&b->lv[i].buf);
	free(b->lv);
	free_path(b->pp);
	free_path(b->wc);
	gfs_buf_release(&b->wbuf);
	gfs_buf_release(&b->sbuf);
	gfs_buf_release(&b->scratch);
	gfs_buf_release(&b->last);
	free(b->table);
	free(b);
}

/* ---- spilling ops ----------------------------------------------------- */

static int opcmp(const void *a, const void *b)
{
	const struct op *x = a, *y = b;
	int c = tbl_keycmp(x->k, x->klen, y->k, y->klen);

	if (c)
		return c;
	return (int)(y->fl & OP_DEL) - (int)(x->fl & OP_DEL); /* deletes first */
}

/* Sorts a secondary tree's ops.  Edge ids often start with their source
 * ("<src>#n"), which leaves SRC ops in order already: check first. */
static void sort_ops(struct opvec *ov)
{
	for (size_t i = 1; i < ov->n; i++)
		if (opcmp(&ov->v[i - 1], &ov->v[i]) > 0) {
			qsort(ov->v, ov->n, sizeof *ov->v, opcmp);
			return;
		}
}

/* The spill file: invisible (O_TMPFILE), or on filesystems without it a
 * temp name unlinked at once; either way a crash leaves nothing behind. */
static int open_spill(struct gfs_tbuild *b)
{
	char path[PATH_MAX], name[40];
	int rc;

	b->sfd = open(b->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (b->sfd >= 0)
		return 0;
	snprintf(name, sizeof name, ".tmp-%ld-spill-XXXXXX", (long)getpid());
	rc = tbl_mkpath(path, sizeof path, b->ts->dir, b->table, name);
	if (rc)
		return rc;
	b->sfd = mkostemp(path, O_CLOEXEC);
	if (b->sfd < 0)
		return gfs_io_fail("create spill file", path, -errno);
	unlink(path);
	return 0;
}

static int sbuf_flush(struct gfs_tbuild *b)
{
	int rc = b->sbuf.len ? gfs_write_all(b->sfd, b->sbuf.p, b->sbuf.len) : 0;

	b->sbuf.len = 0;
	return rc;
}

static int spill_op(struct gfs_tbuild *b, const struct op *o)
{
	char h[SPILL_HDR];
	size_t n = SPILL_HDR + (size_t)o->klen + o->vlen;
	int rc = 0;

	if (b->sbuf.len && b->sbuf.len + n > WBUF_MAX)
		rc = sbuf_flush(b);
	tbl_put32(h, o->klen);
	tbl_put32(h + 4, o->vlen);
	tbl_put32(h + 8, o->fl);
	tbl_put64(h + 12, o->aux);
	if (!rc)
		rc = gfs_buf_append(&b->sbuf, h, sizeof h);
	if (!rc && n > SPILL_HDR) /* the value follows the key in the arena */
		rc = gfs_buf_append(&b->sbuf, o->k, n - SPILL_HDR);
	if (!rc)
		b->spos += n;
	return rc;
}

static int run_add(struct runvec *rv, uint64_t off, uint64_t len)
{
	struct run *nv = gfs_array_grow(rv->v, &rv->cap, rv->n, sizeof *nv, 16);

	if (!nv)
		return -ENOMEM;
	rv->v = nv;
	rv->v[rv->n++] = (struct run){ off, len };
	return 0;
}

/* Writes tree t's ops in memory as one sorted run.  PRIMARY ops come in
 * id order already. */
static int spill_tree(struct gfs_tbuild *b, struct opvec *ov, unsigned t)
{
	uint64_t start = b->spos;
	int rc = 0;

	if (!ov->n)
		return 0;
	if (t != GFS_IX_PRIMARY)
		sort_ops(ov);
	for (size_t i = 0; !rc && i < ov->n; i++)
		rc = spill_op(b, &ov->v[i]);
	if (!rc)
		rc = run_add(&b->runs[t], start, b->spos - start);
	ov->n = 0;
	return rc;
}

/* The spiller: every tree of the batch in sops as one sorted run each. */
static void *spill_run(void *arg)
{
	struct gfs_tbuild *b = arg;
	const char *io;
	int rc = 0;

	for (unsigned t = 0; !rc && t < b->n_trees; t++)
		rc = spill_tree(b, &b->sops[t], t);
	if (!rc)
		rc = sbuf_flush(b);
	if (rc && (io = gfs_io_last(rc)))
		snprintf(b->sio, sizeof b->sio, "%s", io);
	for (unsigned t = 0; t < b->n_trees; t++)
		b->sops[t].n = 0;
	chunks_free(b->sarena);
	b->sarena = NULL;
	b->src = rc;
	return NULL;
}

/* Waits for the spill in flight; its error, with its I/O message. */
static int spill_wait(struct gfs_tbuild *b)
{
	if (!b->spilling)
		return 0;
	if (b->sthreaded)
		pthread_join(b->sth, NULL);
	b->spilling = b->sthreaded = false;
	if (b->src && b->sio[0])
		gfs_io_note(b->src, b->sio);
	return b->src;
}

/* Past the budget the batch goes to the spiller, which sorts and writes
 * it while puts fill a fresh one: two batches in memory at most. */
static int maybe_spill(struct gfs_tbuild *b)
{
	struct opvec *full = b->ops;
	int rc;

	if (b->mem <= tbl_spill_bytes)
		return 0;
	rc = spill_wait(b);
	if (!rc && b->sfd < 0)
		rc = open_spill(b);
	if (rc)
		return rc; /* b->err is set: nothing reads the ops again */
	b->ops = b->sops;
	b->sops = full;
	b->sarena = b->arena;
	b->arena = NULL;
	b->mem = 0;
	b->src = 0;
	b->sio[0] = '\0';
	b->spilling = true;
	b->sthreaded = !pthread_create(&b->sth, NULL, spill_run, b);
	if (!b->sthreaded) /* no thread: spill here */
		spill_run(b);
	return 0;
}

/* ---- merging runs ------------------------------------------------------
 *
 * At commit a tree's ops are read back in order: a heap over its runs
 * (each through a MERGE_BUF buffer) and the ops still in memory.  The op
 * merge_next() returns stays valid until the next call.
 */

struct msrc {
	const struct op *mem; /* memory: the next op and how many are left */
	size_t mleft;
	uint64_t off, end;    /* a run: its next unread byte and its end */
	struct gfs_buf buf;   /* a run: bytes read; the head starts at bpos */
	size_t bpos;
	struct op cur;        /* the head op */
};

struct merge {
	struct msrc *s;
	size_t *heap;
	size_t n, live, last;
	bool started;
};

/* Makes n bytes available at s->bpos: 1, 0 at the run's end, <0 error. */
static int msrc_fill(const struct gfs_tbuild *b, struct msrc *s, size_t n)
{
	size_t have = s->buf.len - s->bpos, want = n > MERGE_BUF ? n : MERGE_BUF;
	size_t len;
	int rc;

	if (have >= n)
		return 1;
	if (!have && s->off == s->end)
		return 0;
	if (s->end - s->off < n - have)
		return -EIO; /* a record cut short: the spill file is ours */
	if (have)
		memmove(s->buf.p, s->buf.p + s->bpos, have);
	s->buf.len = have;
	s->bpos = 0;
	rc = gfs_buf_reserve(&s->buf, want - have);
	len = s->buf.cap - 1 - have;
	if (len > s->end - s->off)
		len = (size_t)(s->end - s->off);
	if (!rc)
		rc = gfs_pread_all(b->sfd, s->buf.p + have, len, (off_t)s->off);
	if (rc)
		return rc == GFS_ECORRUPT ? -EIO : rc;
	s->off += len;
	s->buf.len += len;
	return 1;
}

/* Advances s to its next op: 1, 0 when it is exhausted, <0 error. */
static int msrc_next(const struct gfs_tbuild *b, struct msrc *s)
{
	const char *h;
	uint32_t kl, vl;
	int rc;

	if (s->mem || !s->end) {
		if (!s->mleft)
			return 0;
		s->cur = *s->mem++;
		s->mleft--;
		return 1;
	}
	rc = msrc_fill(b, s, SPILL_HDR);
	if (rc <= 0)
		return rc;
	h = s->buf.p + s->bpos;
	kl = tbl_get32(h);
	vl = tbl_get32(h + 4);
	rc = msrc_fill(b, s, SPILL_HDR + (size_t)kl + vl);
	if (rc <= 0)
		return rc ? rc : -EIO;
	h = s->buf.p + s->bpos;
	s->cur = (struct op){ s->buf.p + s->bpos + SPILL_HDR, kl, vl,
			      tbl_get32(h + 8), tbl_get64(h + 12) };
	s->bpos += SPILL_HDR + (size_t)kl + vl;
	return 1;
}

static bool heap_less(const struct merge *m, size_t a, size_t b)
{
	int c = opcmp(&m->s[a].cur, &m->s[b].cur);

	return c ? c < 0 : a < b; /* equal keys: earlier run first */
}

static void heap_down(struct merge *m, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i, t;

		if (l < m->live && heap_less(m, m->heap[l], m->heap[min]))
			min = l;
		if (r < m->live && heap_less(m, m->heap[r], m->heap[min]))
			min = r;
		if (min == i)
			return;
		t = m->heap[i];
		m->heap[i] = m->heap[min];
		m->heap[min] = t;
		i = min;
	}
}

static void merge_close(struct merge *m)
{
	for (size_t i = 0; m->s && i < m->n; i++)
		gfs_buf_release(&m->s[i].buf);
	free(m->s);
	free(m->heap);
	memset(m, 0, sizeof *m);
}

/* Opens tree t's merge: its runs, then the ops in memory (sorted here). */
static int merge_open(struct gfs_tbuild *b, unsigned t, struct merge *m)
{
	const struct runvec *rv = &b->runs[t];
	struct opvec *ov = &b->ops[t];
	int rc = 0;

	memset(m, 0, sizeof *m);
	m->n = rv->n + 1;
	m->s = calloc(m->n, sizeof *m->s);
	m->heap = calloc(m->n, sizeof *m->heap);
	if (!m->s || !m->heap)
		return -ENOMEM;
	if (t != GFS_IX_PRIMARY)
		sort_ops(ov);
	for (size_t i = 0; i < rv->n; i++) {
		m->s[i].off = rv->v[i].off;
		m->s[i].end = rv->v[i].off + rv->v[i].len;
		gfs_buf_init(&m->s[i].buf);
	}
	m->s[rv->n].mem = ov->v;
	m->s[rv->n].mleft = ov->n;
	gfs_buf_init(&m->s[rv->n].buf);
	for (size_t i = 0; !rc && i < m->n; i++) {
		rc = msrc_next(b, &m->s[i]);
		if (rc == 1)
			m->heap[m->live++] = i;
		rc = rc < 0 ? rc : 0;
	}
	for (size_t i = m->live / 2; !rc && i-- > 0;)
		heap_down(m, i);
	return rc;
}

/* The next op in order: 1 (*o set), 0 at the end, <0 error. */
static int merge_next(const struct gfs_tbuild *b, struct merge *m,
		      struct op *o)
{
	if (m->started && m->live) { /* now advance what we returned last */
		int rc = msrc_next(b, &m->s[m->heap[0]]);

		if (rc < 0)
			return rc;
		if (!rc)
			m->heap[0] = m->heap[--m->live];
		heap_down(m, 0);
	}
	m->started = true;
	if (!m->live)
		return 0;
	*o = m->s[m->heap[0]].cur;
	return 1;
}

/* ---- writing trees ----------------------------------------------------
 *
 * A tree's sorted ops are streamed into the parent's tree.  Each output
 * level L has an open page (b->lv[L]) that is being filled; a full page is
 * written and its reference added to level L+1.  b->wc is the parent's
 * tree being merged, one loaded page per depth: idx is the first entry
 * (or child) not yet written, and the child at idx is open when a deeper
 * page is loaded.  A child subtree no op falls in is not read: its
 * reference goes to the output as is, after the lower levels' open pages
 * are closed (they hold the keys before it).  So only touched paths are
 * copied, and building on an empty parent is a sequential bulk load.
 * Memory: one page per level, output and parent.
 */

static int lvl_get(struct gfs_tbuild *b, int L, struct lvl **out)
{
	static const char zeros[TBL_PAGE_HDR];
	struct lvl *lv;

	if (L >= TBL_MAX_HEIGHT)
		return -E2BIG;
	if (L >= b->lv_cap) {
		lv = realloc(b->lv, (size_t)(L + 1) * sizeof *lv);
		if (!lv)
			return -ENOMEM;
		for (int i = b->lv_cap; i <= L; i++)
			gfs_buf_init(&lv[i].buf);
		b->lv = lv;
		b->lv_cap = L + 1;
	}
	for (; b->nlv <= L; b->nlv++) {
		b->lv[b->nlv].buf.len = 0;
		b->lv[b->nlv].n = 0;
		b->lv[b->nlv].count = b->lv[b->nlv].bytes = 0;
	}
	lv = &b->lv[L];
	*out = lv;
	return lv->buf.len ? 0 : gfs_buf_append(&lv->buf, zeros, sizeof zeros);
}

static int lvl_add_ref(struct gfs_tbuild *b, int L, const struct ient *e);

/* Writes level L's open page and adds its reference to level L+1. */
static int lvl_flush(struct gfs_tbuild *b, int L)
{
	struct lvl *lv = &b->lv[L];
	struct ient e;
	char *p, cs[TBL_PAGE_CSUM];
	uint32_t total;
	int rc;

	if (L >= b->nlv || !lv->n)
		return 0;
	p = lv->buf.p;
	total = (uint32_t)lv->buf.len + TBL_PAGE_CSUM;
	p[0] = L ? TBL_PG_INTERNAL : TBL_PG_LEAF;
	p[1] = (char)b->tree;
	p[2] = (char)L;
	p[3] = 0;
	tbl_put32(p + 4, lv->n);
	tbl_put32(p + 8, total);
	tbl_put32(p + 12, b->version);
	tbl_put64(p + 16, b->pos);
	tbl_put64(cs, gfs_hash64(p, lv->buf.len));
	e = (struct ient){ p + TBL_PAGE_HDR + 4, tbl_get32(p + TBL_PAGE_HDR),
			   { b->version, total, b->pos }, lv->count, lv->bytes };
	rc = bw_append(b, p, lv->buf.len);
	if (!rc)
		rc = bw_append(b, cs, sizeof cs);
	if (!rc)
		rc = lvl_add_ref(b, L + 1, &e); /* may move b->lv, not the bytes */
	lv = &b->lv[L];
	lv->buf.len = 0;
	lv->n = 0;
	lv->count = lv->bytes = 0;
	return rc;
}

static int lvl_add_ref(struct gfs_tbuild *b, int L, const struct ient *e)
{
	char kl[4], tail[TBL_IENT_FIXED - 4];
	size_t esz = TBL_IENT_FIXED + e->klen;
	struct lvl *lv;
	int rc = lvl_get(b, L, &lv);

	/* Two entries at least, so huge keys cannot make the tree a chain. */
	if (!rc && lv->n >= 2 &&
	    lv->buf.len + esz + TBL_PAGE_CSUM > TBL_PAGE_TARGET) {
		rc = lvl_flush(b, L);
		if (!rc)
			rc = lvl_get(b, L, &lv);
	}
	if (rc)
		return rc;
	tbl_put32(kl, e->klen);
	tbl_put32(tail, e->ref.seg);
	tbl_put64(tail + 4, e->ref.off);
	tbl_put32(tail + 12, e->ref.len);
	tbl_put64(tail + 16, e->count);
	tbl_put64(tail + 24, e->bytes);
	rc = gfs_buf_append(&lv->buf, kl, 4);
	if (!rc && e->klen)
		rc = gfs_buf_append(&lv->buf, e->k, e->klen);
	if (!rc)
		rc = gfs_buf_append(&lv->buf, tail, sizeof tail);
	if (rc)
		return rc;
	lv->n++;
	lv->count += e->count;
	lv->bytes += e->bytes;
	return 0;
}

/* Adds an untouched subtree at level L, after closing the open pages below
 * (they hold keys that sort before it). */
static int push_ref(struct gfs_tbuild *b, int L, const struct ient *e)
{
	for (int j = 0; j < L; j++) {
		int rc = lvl_flush(b, j);

		if (rc)
			return rc;
	}
	return lvl_add_ref(b, L, e);
}

static void patch_self(struct gfs_tbuild *b, char *r)
{
	if (tbl_get32(r + TBL_REC_CHANGED) == UINT32_MAX)
		tbl_put32(r + TBL_REC_CHANGED, b->version);
	if (tbl_get32(r + TBL_REC_SEG) == UINT32_MAX)
		tbl_put32(r + TBL_REC_SEG, b->version);
}

static int emit_leaf(struct gfs_tbuild *b, const char *k, uint32_t kl,
		     const char *v, uint32_t vl)
{
	size_t esz = 8 + (size_t)kl + vl;
	struct lvl *lv;
	char l4[4];
	int rc = lvl_get(b, 0, &lv);

	if (!rc && lv->n && lv->buf.len + esz + TBL_PAGE_CSUM > TBL_PAGE_TARGET) {
		rc = lvl_flush(b, 0);
		if (!rc)
			rc = lvl_get(b, 0, &lv);
	}
	tbl_put32(l4, kl);
	if (!rc)
		rc = gfs_buf_append(&lv->buf, l4, 4);
	if (!rc && kl)
		rc = gfs_buf_append(&lv->buf, k, kl);
	tbl_put32(l4, vl);
	if (!rc)
		rc = gfs_buf_append(&lv->buf, l4, 4);
	if (!rc && vl)
		rc = gfs_buf_append(&lv->buf, v, vl);
	if (rc)
		return rc;
	if (b->tree == GFS_IX_PRIMARY) {
		char *r = lv->buf.p + lv->buf.len - vl;

		patch_self(b, r);
		lv->bytes += tbl_get32(r + TBL_REC_LINELEN);
	}
	lv->n++;
	lv->count++;
	return 0;
}

static struct tref parent_root(const struct gfs_tbuild *b, unsigned t)
{
	if (b->parent && t < b->parent->n_trees)
		return b->parent->roots[t];
	return (struct tref){ 0, 0, 0 };
}

/* Loads a parent page one depth below the cursor's deepest. */
static int wc_push(struct gfs_tbuild *b, const struct tref *ref, int level)
{
	struct path *p = b->wc;
	int rc;

	if (p->depth >= TBL_MAX_HEIGHT)
		return GFS_ECORRUPT;
	rc = tbl_page_get(b->parent, ref, b->tree, level, &p->pg[p->depth], b->d);
	if (!rc)
		p->idx[p->depth++] = 0;
	return rc;
}

static int tw_begin(struct gfs_tbuild *b, unsigned t)
{
	struct tref root = parent_root(b, t);

	b->tree = (int)t;
	b->nlv = 0;
	tbl_path_clear(b->wc);
	return root.seg ? wc_push(b, &root, -1) : 0;
}

/* Writes what is left of the parent page at depth d (the open child's
 * rest first, then the later entries) and unloads it and all below. */
static int tw_close(struct gfs_tbuild *b, int d)
{
	struct path *p = b->wc;
	struct page *pg = p->pg[d];
	int rc = 0;

	if (p->depth > d + 1) {
		rc = tw_close(b, d + 1);
		p->idx[d]++;
	}
	for (; !rc && p->idx[d] < pg->n; p->idx[d]++) {
		struct lent l;
		struct ient e;

		if (pg->kind == TBL_PG_LEAF) {
			tbl_lent_at(pg, p->idx[d], &l);
			rc = emit_leaf(b, l.k, l.klen, l.v, l.vlen);
		} else {
			tbl_ient_at(pg, p->idx[d], &e);
			rc = push_ref(b, pg->level, &e);
		}
	}
	tbl_page_put(pg);
	p->depth = d;
	return rc;
}

/* At internal depth d: closes the open child if o lies past it, passes the
 * untouched children before o's child by reference, opens o's child. */
static int tw_descend(struct gfs_tbuild *b, int d, const struct op *o)
{
	struct path *p = b->wc;
	struct page *pg = p->pg[d];
	uint32_t c = tbl_child_for_key(pg, o->k, o->klen);
	struct ient e;
	int rc = 0;

	if (c < p->idx[d])
		c = p->idx[d];
	if (p->depth > d + 1 && c > p->idx[d]) {
		rc = tw_close(b, d + 1);
		p->idx[d]++;
	}
	for (; !rc && p->idx[d] < c; p->idx[d]++) {
		tbl_ient_at(pg, p->idx[d], &e);
		rc = push_ref(b, pg->level, &e);
	}
	if (!rc && p->depth == d + 1) {
		tbl_ient_at(pg, c, &e);
		rc = wc_push(b, &e.ref, pg->level - 1);
	}
	return rc;
}

/* At the leaf: the parent's entries before o, then o (a put), dropping
 * the parent's entry with o's key. */
static int tw_leaf(struct gfs_tbuild *b, struct page *pg, uint32_t *i,
		   const struct op *o)
{
	int rc = 0;

	while (!rc && *i < pg->n) {
		struct lent e;
		int c;

		tbl_lent_at(pg, *i, &e);
		c = tbl_keycmp(e.k, e.klen, o->k, o->klen);
		if (c > 0)
			break;
		(*i)++;
		if (c == 0)
			break;
		rc = emit_leaf(b, e.k, e.klen, e.v, e.vlen);
	}
	if (!rc && !(o->fl & OP_DEL))
		rc = emit_leaf(b, o->k, o->klen, o->k + o->klen, o->vlen);
	return rc;
}

/* Ops must come in key order (deletes before a put of the same key). */
static int tw_op(struct gfs_tbuild *b, const struct op *o)
{
	struct path *p = b->wc;

	if (!p->depth) /* no parent tree: a bulk build */
		return o->fl & OP_DEL ? 0
			: emit_leaf(b, o->k, o->klen, o->k + o->klen, o->vlen);
	for (int d = 0;; d++) {
		int rc;

		if (p->pg[d]->kind == TBL_PG_LEAF)
			return tw_leaf(b, p->pg[d], &p->idx[d], o);
		rc = tw_descend(b, d, o);
		if (rc)
			return rc;
	}
}

/* Closes every open page bottom-up; the last single reference is the root
 * (a root with one child is replaced by that child). */
static int finish_tree(struct gfs_tbuild *b, struct tref *root, uint64_t *cnt,
		       uint64_t *bytes)
{
	for (int j = 0;; j++) {
		struct lvl *lv;
		struct page one;
		struct ient e;
		int rc;

		if (j >= b->nlv || (j == b->nlv - 1 && !b->lv[j].n)) {
			*root = (struct tref){ 0, 0, 0 };
			*cnt = *bytes = 0;
			return 0;
		}
		lv = &b->lv[j];
		if (j == b->nlv - 1 && j > 0 && lv->n == 1) {
			uint32_t eo = TBL_PAGE_HDR;

			one = (struct page){ .buf = lv->buf.p, .n = 1, .eo = &eo };
			tbl_ient_at(&one, 0, &e);
			*root = e.ref;
			*cnt = e.count;
			*bytes = e.bytes;
			return 0;
		}
		rc = lvl_flush(b, j);
		if (rc)
			return rc;
	}
}

static int tw_end(struct gfs_tbuild *b, struct tref *root, uint64_t *cnt,
		  uint64_t *bytes)
{
	int rc = b->wc->depth ? tw_close(b, 0) : 0;

	return rc ? rc : finish_tree(b, root, cnt, bytes);
}

/* ---- the trees' op streams -------------------------------------------- */

/* Length of the esc(src) 00 01 esc(dst) 00 01 prefix of a SRC key. */
static size_t pair_prefix(const char *k, size_t kl)
{
	int seps = 0;

	for (size_t i = 0; i + 1 < kl; i++) {
		if (k[i])
			continue;
		if (k[i + 1] == 1 && ++seps == 2)
			return i + 2;
		i++;
	}
	return kl;
}

/* Does the parent keep an edge with this (src, dst) prefix after the
 * batch's ndel deletes of the pair?  Each delete names one of the
 * parent's entries, so it does if it has more than ndel of them. */
static int parent_has_pair(struct gfs_tbuild *b, const char *pre, size_t pl,
			   uint64_t ndel)
{
	struct path *p = b->pp;
	uint64_t seen = 0;
	int rc;

	if (!b->parent || b->parent->n_trees <= GFS_IX_SRC)
		return 0;
	rc = tbl_path_seek_key(b->parent, GFS_IX_SRC, p, pre, pl);
	while (rc == 0) {
		struct lent e;

		rc = tbl_path_valid(b->parent, GFS_IX_SRC, p);
		if (rc <= 0)
			return rc;
		tbl_path_entry(p, &e);
		if (e.klen < pl || memcmp(e.k, pre, pl))
			return 0;
		if (++seen > ndel)
			return 1;
		p->idx[p->depth - 1]++;
		rc = 0;
	}
	return rc;
}

/* The SRC ops of one (src, dst) pair, as they stream by. */
struct pgroup {
	struct gfs_buf pre;
	uint64_t ndel, first; /* first: PRIMARY op number of the first new row */
	bool have_first, old; /* old: an existing row puts an edge in the pair */
};

/* Ends a group: its first new edge by id gets PAIR_FIRST unless an
 * existing edge has (or moves to) the pair. */
static int group_end(struct gfs_tbuild *b, struct pgroup *g)
{
	int rc = 0;

	if (g->have_first && !g->old)
		rc = parent_has_pair(b, g->pre.p, g->pre.len, g->ndel);
	if (rc == 0 && g->have_first && !g->old)
		b->pfirst[g->first >> 3] |= (uint8_t)(1u << (g->first & 7));
	g->ndel = 0;
	g->have_first = g->old = false;
	return rc < 0 ? rc : 0;
}

static int group_add(struct gfs_tbuild *b, struct pgroup *g, const struct op *o)
{
	size_t pl = pair_prefix(o->k, o->klen);
	int rc = 0;

	if (!tbl_bytes_eq(g->pre.p, g->pre.len, o->k, pl) || !g->pre.p) {
		rc = group_end(b, g);
		g->pre.len = 0;
		if (!rc)
			rc = gfs_buf_append(&g->pre, o->k, pl);
	}
	if (o->fl & OP_DEL)
		g->ndel++;
	else if (!(o->fl & OP_NEW))
		g->old = true;
	else if (!g->have_first) {
		g->first = o->aux;
		g->have_first = true;
	}
	return rc;
}

/* SRC: written while deciding PAIR_FIRST for the PRIMARY ops (b->pfirst),
 * so it goes first. */
static int feed_src(struct gfs_tbuild *b, struct merge *m)
{
	struct pgroup g = { .ndel = 0 };
	struct op o;
	int rc;

	gfs_buf_init(&g.pre);
	while ((rc = merge_next(b, m, &o)) == 1) {
		rc = group_add(b, &g, &o);
		if (!rc)
			rc = tw_op(b, &o);
		if (rc)
			break;
	}
	if (!rc && g.pre.p)
		rc = group_end(b, &g);
	gfs_buf_release(&g.pre);
	return rc;
}

static int feed_primary(struct gfs_tbuild *b, struct merge *m)
{
	struct op o;
	int rc;

	for (uint64_t i = 0; (rc = merge_next(b, m, &o)) == 1; i++) {
		if (b->pfirst && (b->pfirst[i >> 3] >> (i & 7) & 1) &&
		    o.vlen >= TBL_REC_FIXED) {
			char *f = o.k + o.klen + TBL_REC_FLAGS;

			tbl_put32(f, tbl_get32(f) | GFS_ROW_PAIR_FIRST);
		}
		rc = tw_op(b, &o);
		if (rc)
			break;
	}
	return rc;
}

static int dup_unique(struct gfs_tbuild *b, unsigned t, const struct op *o,
		      struct gfs_diag *d)
{
	gfs_diag_set(d, "table '%s': two rows share the key '%.*s' "
		     "of unique index %u", b->table,
		     (int)(o->klen > 64 ? 64 : o->klen), o->k, t - GFS_IX_UNIQUE0);
	return GFS_ECONFLICT;
}

/* Unique indexes: a delete and a put of one key (a key moving between
 * rows) become the put; two puts are two rows with one key.  The pending
 * op is copied, since the merge reuses its buffers. */
static int feed_unique(struct gfs_tbuild *b, unsigned t, struct merge *m,
		       struct gfs_diag *d)
{
	struct gfs_buf held;
	struct op o, pend = { 0 };
	bool have = false;
	int rc;

	gfs_buf_init(&held);
	while ((rc = merge_next(b, m, &o)) == 1) {
		if (have && tbl_bytes_eq(pend.k, pend.klen, o.k, o.klen)) {
			if (!(pend.fl & OP_DEL) && !(o.fl & OP_DEL)) {
				rc = dup_unique(b, t, &o, d);
				break;
			}
		} else if (have && (rc = tw_op(b, &pend))) {
			break;
		}
		held.len = 0;
		rc = gfs_buf_append(&held, o.k, (size_t)o.klen + o.vlen);
		if (rc)
			break;
		pend = o;
		pend.k = held.p;
		have = true;
	}
	if (!rc && have)
		rc = tw_op(b, &pend);
	gfs_buf_release(&held);
	return rc;
}

static int feed_plain(struct gfs_tbuild *b, struct merge *m)
{
	struct op o;
	int rc;

	while ((rc = merge_next(b, m, &o)) == 1 && !(rc = tw_op(b, &o)))
		;
	return rc;
}

static int feed_tree(struct gfs_tbuild *b, unsigned t, struct merge *m,
		     struct gfs_diag *d)
{
	if (t == GFS_IX_SRC)
		return feed_src(b, m);
	if (t == GFS_IX_PRIMARY)
		return feed_primary(b, m);
	if (t >= GFS_IX_UNIQUE0)
		return feed_unique(b, t, m, d);
	return feed_plain(b, m);
}

static int write_tree(struct gfs_tbuild *b, unsigned t, struct tref *root,
		      uint64_t *cnt, uint64_t *bytes, struct gfs_diag *d)
{
	struct merge m;
	int rc;

	*cnt = *bytes = 0;
	if (!b->nops[t]) { /* untouched: share the parent's tree as is */
		*root = parent_root(b, t);
		if (t == GFS_IX_PRIMARY && root->seg) {
			*cnt = b->parent->info.rows;
			*bytes = b->parent->info.export_bytes;
		}
		return 0;
	}
	rc = merge_open(b, t, &m);
	if (!rc)
		rc = tw_begin(b, t);
	if (!rc)
		rc = feed_tree(b, t, &m, d);
	if (!rc)
		rc = tw_end(b, root, cnt, bytes);
	merge_close(&m);
	tbl_path_clear(b->wc);
	return rc;
}

/* SRC first: it decides which new rows get PAIR_FIRST before PRIMARY is
 * written.  The roots land in the footer by tree number. */
static int commit_trees(struct gfs_tbuild *b, struct tref *roots,
			uint64_t *rows, uint64_t *bytes, struct gfs_diag *d)
{
	int rc = 0;

	if (b->n_trees > GFS_IX_SRC && b->nops[GFS_IX_SRC]) {
		b->pfirst = calloc(b->nprim / 8 + 1, 1);
		if (!b->pfirst)
			return -ENOMEM;
	}
	for (unsigned i = 0; i < b->n_trees && !rc; i++) {
		unsigned t = i == 0 ? GFS_IX_SRC : i == 1 ? GFS_IX_PRIMARY : i;
		uint64_t c, by;

		rc = write_tree(b, t, &roots[t], &c, &by, d);
		if (t == GFS_IX_PRIMARY) {
			*rows = c;
			*bytes = by;
		}
	}
	return rc;
}

static int write_footer(struct gfs_tbuild *b, const struct tref *roots,
			uint64_t rows, uint64_t bytes, uint64_t lines_end)
{
	size_t flen = TBL_FOOT_FIXED + TBL_FOOT_ROOT * b->n_trees + TBL_TRAILER;
	char *f = calloc(1, flen), *t;
	int rc;

	if (!f)
		return -ENOMEM;
	tbl_put64(f, rows);
	tbl_put64(f + 8, bytes);
	tbl_put64(f + 16, b->next_serial);
	tbl_put64(f + 24, TBL_HDR_LEN);
	tbl_put64(f + 32, lines_end);
	tbl_put64(f + 40, b->pos);
	tbl_put32(f + 48, b->n_trees);
	tbl_put32(f + 52, b->n_unique);
	for (unsigned i = 0; i < b->n_trees; i++) {
		char *r = f + TBL_FOOT_FIXED + i * TBL_FOOT_ROOT;

		tbl_put32(r, roots[i].seg);
		tbl_put32(r + 4, roots[i].len);
		tbl_put64(r + 8, roots[i].off);
	}
	t = f + flen - TBL_TRAILER;
	tbl_put32(t, (uint32_t)flen);
	tbl_put64(t + 8, gfs_hash64(f, flen - 16));
	memcpy(t + 16, TBL_END_MAGIC, 8);
	rc = bw_append(b, f, flen);
	free(f);
	return rc ? rc : bw_flush(b);
}

static int write_header(struct gfs_tbuild *b, const struct hdr_args *a)
{
	char h[TBL_HDR_LEN];

	memset(h, 0, sizeof h);
	memcpy(h, TBL_MAGIC, 8);
	tbl_put32(h + 8, TBL_FORMAT);
	tbl_put32(h + 12, TBL_HDR_LEN);
	tbl_put32(h + 16, a->version);
	tbl_put32(h + 20, a->parent);
	tbl_put32(h + 24, a->content_of);
	tbl_put32(h + 28, a->compensation ? 1 : 0);
	tbl_put64(h + 32, gfs_now_ns());
	memcpy(h + 40, a->op_id, GFS_ULID_LEN);
	tbl_put64(h + 120, gfs_hash64(h, 120));
	return gfs_pwrite_all(b->fd, h, sizeof h, 0);
}

/* Put-if-absent: the fsync'd temp file becomes "<version>" by link(). */
static int publish(struct gfs_tbuild *b, bool compensation,
		   struct gfs_diag *d)
{
	char final[PATH_MAX];
	int err, rc;

	err = gfs_fp_hit(GFS_FP_TABLE_AFTER_TMP_WRITE);
	if (err)
		return -err;
	rc = tbl_verpath(final, sizeof final, b->ts->dir, b->table, b->version);
	if (rc)
		return rc;
	if (link(b->tmp, final)) {
		rc = -errno;
		if (rc == -EEXIST)
			gfs_diag_set(d, "table '%s' version %u already exists",
				     b->table, b->version);
		else
			gfs_diag_set(d, "link '%s': %s", final,
				     gfs_strerror(rc));
		return gfs_io_fail("link", final, rc);
	}
	if (compensation || !gfs_fp_hit(GFS_FP_SYNC_SKIP_TABLE_DIR))
		rc = gfs_fsync_dir(b->dir);
	if (rc)
		return rc;
	err = gfs_fp_hit(GFS_FP_TABLE_AFTER_LINK);
	return err ? -err : 0;
}

/* Everything but the link: trees, footer, header, fsync of the temp. */
static int finish_ex(struct gfs_tbuild *b, const struct hdr_args *a,
		     struct gfs_diag *d)
{
	enum gfs_fp skip = a->compensation ? GFS_FP_SYNC_SKIP_COMPENSATION
					   : GFS_FP_SYNC_SKIP_TABLE_TMP;
	struct tref *roots;
	struct prow pr;
	uint64_t rows = 0, bytes = 0, lines_end;
	int rc;

	if (b->committed)
		return -EINVAL;
	b->committed = true;
	if (b->err)
		return b->err;
	if (!a->version || a->version == UINT32_MAX ||
	    (b->parent && a->version <= b->parent->version) || !a->op_id ||
	    !gfs_ulid_valid(a->op_id))
		return -EINVAL;
	b->version = a->version;
	b->d = d;
	rc = b->flags & GFS_TBUILD_REPLACE ? replace_walk(b, NULL, 0, &pr) : 0;
	if (!rc)
		rc = bw_flush(b);
	if (!rc) /* the runs are complete once the last spill is in */
		rc = spill_wait(b);
	lines_end = b->pos;
	roots = calloc(b->n_trees, sizeof *roots);
	if (!rc)
		rc = roots ? commit_trees(b, roots, &rows, &bytes, d) : -ENOMEM;
	if (!rc)
		rc = write_footer(b, roots, rows, bytes, lines_end);
	free(roots);
	if (!rc)
		rc = write_header(b, a);
	if (!rc && !gfs_fp_hit(skip) && fsync(b->fd))
		rc = gfs_io_fail("fsync", b->tmp, -errno);
	if (rc)
		drop_tmp(b);
	else
		b->finished = true;
	return rc;
}

static int link_ex(struct gfs_tbuild *b, bool compensation, struct gfs_diag *d)
{
	int rc;

	if (!b->finished)
		return b->err ? b->err : -EINVAL;
	b->finished = false;
	rc = publish(b, compensation, d);
	drop_tmp(b);
	return rc;
}

static int commit_ex(struct gfs_tbuild *b, const struct hdr_args *a,
		     struct gfs_diag *d)
{
	int rc = finish_ex(b, a, d);

	return rc ? rc : link_ex(b, a->compensation, d);
}

int gfs_tbuild_finish(struct gfs_tbuild *b, uint32_t version,
		      const char *op_id, struct gfs_diag *d)
{
	struct hdr_args a = { version, b->parent ? b->parent->version : 0, 0,
			      false, op_id };

	return finish_ex(b, &a, d);
}

int gfs_tbuild_link(struct gfs_tbuild *b, struct gfs_diag *d)
{
	return link_ex(b, false, d);
}

int gfs_tbuild_commit(struct gfs_tbuild *b, uint32_t version,
		      const char *op_id, struct gfs_diag *d)
{
	int rc = gfs_tbuild_finish(b, version, op_id, d);

	return rc ? rc : gfs_tbuild_link(b, d);
}

int gfs_table_write_compensation(struct gfs_tstore *ts, const char *table,
				 uint32_t version, uint32_t content_of,
				 const char *op_id, struct gfs_diag *d)
{
	return gfs_table_write_compensation_of(ts, table, version, version - 1,
					       content_of, op_id, d);
}

int gfs_table_write_compensation_of(struct gfs_tstore *ts, const char *table,
				    uint32_t version, uint32_t undone,
				    uint32_t content_of, const char *op_id,
				    struct gfs_diag *d)
{
	struct hdr_args a = { version, undone, content_of, true, op_id };
	struct gfs_tver *src = NULL, *prev = NULL;
	struct gfs_tbuild *b = NULL;
	int rc = 0;

	if (!tbl_name_ok(table) || version < 2 || content_of >= version ||
	    !undone || undone >= version)
		return -EINVAL;
	/* The restored content is shared, not copied: check all of it (every
	 * line and page) before a new version points at it (issue 8). */
	if (content_of)
		rc = gfs_tver_verify(ts, table, content_of, d);
	if (!rc && content_of)
		rc = gfs_tver_open(ts, table, content_of, &src, d);
	if (!rc)
		rc = gfs_tbuild_new(ts, table, src, src ? src->n_unique : 0, 0, &b);
	/* Never hand out a serial the undone version may have shown: a
	 * version h that exists but does not open is an error, not 0. */
	if (!rc)
		rc = gfs_tver_open(ts, table, undone, &prev, d);
	if (rc == -ENOENT && prev == NULL && b)
		rc = 0;
	if (!rc && prev && prev->info.next_serial > b->next_serial)
		b->next_serial = prev->info.next_serial;
	if (!rc)
		rc = commit_ex(b, &a, d);
	gfs_tbuild_free(b);
	gfs_tver_close(prev);
	gfs_tver_close(src);
	return rc;
}

/* ---- compact ------------------------------------------------------------ */

/* Puts the row at p's position (a PRIMARY leaf entry of src) into b,
 * keeping its serial, `changed` and PAIR_FIRST: its line is copied into
 * the new segment.  buf is scratch for the line. */
static int compact_one(struct gfs_tbuild *b, struct gfs_tver *src,
		       const struct path *p, struct gfs_buf *buf)
{
	struct gfs_buf uk[TBL_MAX_UNIQUE];
	struct gfs_rowput rp;
	struct lent e;
	struct rec r;
	int rc;

	tbl_path_entry(p, &e);
	if (tbl_rec_decode(e.v, e.vlen, &r) || r.n_ukeys > b->n_unique)
		return GFS_ECORRUPT;
	buf->len = 0;
	rc = gfs_buf_reserve(buf, r.line_len);
	if (!rc)
		rc = tbl_seg_read(src, r.seg, r.seg_off, buf->p, r.line_len);
	if (rc)
		return rc;
	for (unsigned k = 0; k < r.n_ukeys; k++) {
		const char *kp;
		size_t kl;

		tbl_rec_ukey(&r, k, &kp, &kl);
		uk[k].p = (char *)kp;
		uk[k].len = kl;
	}
	rp = (struct gfs_rowput){
		.id = e.k, .id_len = e.klen,
		.src = r.flags & TBL_REC_EDGE ? r.src : NULL, .src_len = r.src_len,
		.dst = r.flags & TBL_REC_EDGE ? r.dst : NULL, .dst_len = r.dst_len,
		.line = buf->p, .line_len = r.line_len,
		.data_off = r.data_off, .data_len = r.data_len,
		.ukeys = r.n_ukeys ? uk : NULL, .n_ukeys = r.n_ukeys,
	};
	b->keep = &r;
	rc = gfs_tbuild_put(b, &rp);
	b->keep = NULL;
	return rc;
}

static int compact_rows(struct gfs_tbuild *b, struct gfs_tver *src)
{
	struct path *p = calloc(1, sizeof *p);
	struct gfs_buf buf;
	int rc;

	if (!p)
		return -ENOMEM;
	gfs_buf_init(&buf);
	rc = tbl_path_seek_key(src, GFS_IX_PRIMARY, p, "", 0);
	while (!rc && (rc = tbl_path_valid(src, GFS_IX_PRIMARY, p)) == 1) {
		rc = compact_one(b, src, p, &buf);
		p->idx[p->depth - 1]++;
	}
	tbl_path_clear(p);
	free(p);
	gfs_buf_release(&buf);
	return rc;
}

int gfs_table_write_compact(struct gfs_tstore *ts, struct gfs_tver *src,
			    uint32_t version, const char *op_id,
			    struct gfs_diag *d)
{
	struct gfs_tbuild *b = NULL;
	int rc;

	if (version <= src->version)
		return -EINVAL;
	rc = gfs_tbuild_new(ts, src->table, NULL, src->n_unique, 0, &b);
	if (!rc) {
		b->next_serial = src->info.next_serial;
		rc = compact_rows(b, src);
	}
	if (!rc)
		rc = gfs_tbuild_commit(b, version, op_id, d);
	gfs_tbuild_free(b);
	return rc;
}
