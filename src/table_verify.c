/* table_verify.c - checking one version file completely: checksums, page
 * bounds, tree order, counts, export length, and that every byte between
 * header and footer belongs to exactly one reachable line or page.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "table.h"
#include "table_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- verification ----------------------------------------------------- */

struct ext {
	uint64_t off, len;
};

struct vctx {
	struct gfs_tver *tv;
	struct gfs_diag *d;
	struct ext *x; /* this file's lines and pages, to prove full cover */
	size_t nx, cx;
};

struct kbound {
	const char *k;
	uint32_t klen;
	bool set;
};

static int vfail(struct vctx *c, uint64_t off, const char *why)
{
	gfs_diag_set(c->d, "corrupt table file '%s' at offset %llu: %s",
		     c->tv->path, (unsigned long long)off, why);
	return GFS_ECORRUPT;
}

static int ext_add(struct vctx *c, uint64_t off, uint64_t len)
{
	if (c->nx == c->cx) {
		size_t cap = c->cx ? c->cx * 2 : 256;
		struct ext *nx = realloc(c->x, cap * sizeof *nx);

		if (!nx)
			return -ENOMEM;
		c->x = nx;
		c->cx = cap;
	}
	c->x[c->nx++] = (struct ext){ off, len };
	return 0;
}

static int verify_row(struct vctx *c, const struct lent *e, uint64_t at)
{
	struct gfs_tver *tv = c->tv;
	struct rec r;
	char *line;
	int rc;

	if (tbl_rec_decode(e->v, e->vlen, &r))
		return vfail(c, at, "bad row record");
	if (!r.seg || r.seg > tv->version || !r.changed ||
	    r.changed > tv->version || !r.serial ||
	    r.serial >= tv->info.next_serial)
		return vfail(c, at, "row record out of range");
	if (r.seg != tv->version)
		return 0;
	if (r.seg_off < tv->lines_start || r.seg_off + r.line_len > tv->lines_end)
		return vfail(c, at, "row line outside the line area");
	line = malloc(r.line_len);
	if (!line)
		return -ENOMEM;
	rc = gfs_pread_all(tv->fd, line, r.line_len, (off_t)r.seg_off);
	if (!rc && gfs_hash64(line, r.line_len) != r.hash)
		rc = vfail(c, r.seg_off, "row line checksum mismatch");
	free(line);
	return rc ? rc : ext_add(c, r.seg_off, r.line_len);
}

static int verify_keys(struct vctx *c, const struct page *pg, uint64_t at,
		       const struct kbound *lo, const struct kbound *hi)
{
	const char *k, *pk = NULL;
	uint32_t kl, pkl = 0;

	for (uint32_t i = 0; i < pg->n; i++) {
		k = tbl_entry_key(pg, i, &kl);
		if (i && tbl_keycmp(pk, pkl, k, kl) >= 0)
			return vfail(c, at, "keys out of order");
		pk = k;
		pkl = kl;
	}
	k = tbl_entry_key(pg, 0, &kl);
	if (lo->set && !tbl_bytes_eq(k, kl, lo->k, lo->klen))
		return vfail(c, at, "first key differs from the parent's entry");
	if (hi->set && tbl_keycmp(pk, pkl, hi->k, hi->klen) >= 0)
		return vfail(c, at, "key not below the next sibling's");
	return 0;
}

static void page_sums(const struct page *pg, uint64_t *cnt, uint64_t *bytes)
{
	struct ient e;

	if (pg->kind == TBL_PG_LEAF) {
		*cnt = pg->n;
		*bytes = tbl_leaf_bytes(pg, 0, pg->n);
		return;
	}
	*cnt = *bytes = 0;
	for (uint32_t i = 0; i < pg->n; i++) {
		tbl_ient_at(pg, i, &e);
		*cnt += e.count;
		*bytes += e.bytes;
	}
}

static int verify_node(struct vctx *c, int tree, const struct tref *ref,
		       int level, const struct kbound *lo,
		       const struct kbound *hi, uint64_t *cnt, uint64_t *bytes);

static int verify_inner(struct vctx *c, const struct page *pg, uint64_t at,
			const struct kbound *hi, uint64_t *cnt, uint64_t *bytes)
{
	*cnt = *bytes = 0;
	for (uint32_t i = 0; i < pg->n; i++) {
		struct ient e, nx;
		struct kbound clo, chi = *hi;
		uint64_t cc, cb;
		int rc;

		tbl_ient_at(pg, i, &e);
		clo = (struct kbound){ e.k, e.klen, true };
		if (i + 1 < pg->n) {
			tbl_ient_at(pg, i + 1, &nx);
			chi = (struct kbound){ nx.k, nx.klen, true };
		}
		rc = verify_node(c, pg->tree, &e.ref, pg->level - 1, &clo, &chi,
				 &cc, &cb);
		if (rc)
			return rc;
		if (cc != e.count || cb != e.bytes)
			return vfail(c, at, "child aggregates do not match");
		*cnt += cc;
		*bytes += cb;
	}
	return 0;
}

static int verify_leaf(struct vctx *c, const struct page *pg, uint64_t at)
{
	for (uint32_t i = 0; pg->tree == GFS_IX_PRIMARY && i < pg->n; i++) {
		struct lent e;
		int rc;

		tbl_lent_at(pg, i, &e);
		rc = verify_row(c, &e, at);
		if (rc)
			return rc;
	}
	return 0;
}

/* Pages of this file are checked in depth; pages of older files only as
 * far as this file's references to them (their own verify covers them). */
static int verify_node(struct vctx *c, int tree, const struct tref *ref,
		       int level, const struct kbound *lo,
		       const struct kbound *hi, uint64_t *cnt, uint64_t *bytes)
{
	struct page *pg;
	int rc = tbl_page_read(c->tv, ref, tree, level, &pg, c->d);

	if (rc)
		return rc;
	rc = verify_keys(c, pg, ref->off, lo, hi);
	if (!rc && ref->seg != c->tv->version) {
		page_sums(pg, cnt, bytes);
	} else if (!rc) {
		rc = ext_add(c, ref->off, ref->len);
		if (!rc && pg->kind == TBL_PG_LEAF) {
			page_sums(pg, cnt, bytes);
			rc = verify_leaf(c, pg, ref->off);
		} else if (!rc) {
			rc = verify_inner(c, pg, ref->off, hi, cnt, bytes);
		}
	}
	tbl_page_put(pg);
	return rc;
}

static int verify_tree(struct vctx *c, unsigned t)
{
	const struct kbound none = { NULL, 0, false };
	const struct tref *root = &c->tv->roots[t];
	uint64_t cnt = 0, by = 0;
	int rc = 0;

	if (root->seg)
		rc = verify_node(c, (int)t, root, -1, &none, &none, &cnt, &by);
	if (!rc && t == GFS_IX_PRIMARY &&
	    (cnt != c->tv->info.rows || by != c->tv->info.export_bytes))
		rc = vfail(c, c->tv->pages_end,
			   "row count or export length differs from the tree");
	return rc;
}

static int extcmp(const void *a, const void *b)
{
	const struct ext *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Every byte between the header and the footer belongs to exactly one
 * reachable line or page, so each one is under some checksum. */
static int verify_cover(struct vctx *c)
{
	uint64_t at = c->tv->lines_start;

	if (c->nx > 1)
		qsort(c->x, c->nx, sizeof *c->x, extcmp);
	for (size_t i = 0; i < c->nx; i++) {
		if (c->x[i].off != at)
			return vfail(c, at, c->x[i].off > at
					  ? "bytes not covered by any row or page"
					  : "rows or pages overlap");
		at += c->x[i].len;
	}
	if (at != c->tv->pages_end)
		return vfail(c, at, "bytes not covered by any row or page");
	return 0;
}

int gfs_tver_verify(struct gfs_tstore *ts, const char *table, uint32_t version,
		    struct gfs_diag *d)
{
	struct vctx c = { NULL, d, NULL, 0, 0 };
	int rc = gfs_tver_open(ts, table, version, &c.tv, d);

	for (unsigned t = 0; !rc && t < c.tv->n_trees; t++)
		rc = verify_tree(&c, t);
	if (!rc)
		rc = verify_cover(&c);
	free(c.x);
	gfs_tver_close(c.tv);
	return rc;
}
