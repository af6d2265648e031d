/* codec_diff.h - runs one line through both parsers of codec.c and says how
 * they differ (tests/unit/check_codec_diff.c, fuzz/fuzz_codec_diff.c).
 *
 *     struct cdiff x;
 *     cdiff_init(&x);
 *     const char *why = cdiff_line(&x, schema, line, len);
 *     // NULL: the same; else what differs (x.da / x.db hold the messages)
 *     cdiff_release(&x);
 *
 * The contract (src/codec_int.h): the fast path accepts only lines the
 * jansson path accepts, and fills the row with the same bytes;
 * gfs_codec_parse_line returns the same rc and message with it on or off.
 */
#ifndef GFS_CODEC_DIFF_H
#define GFS_CODEC_DIFF_H

#include <stdbool.h>
#include <string.h>

#include "codec.h"
#include "codec_int.h"

struct cdiff {
	struct gfs_rowin a, b, f; /* jansson only, both, fast path alone */
	struct gfs_diag da, db;
	int ra, rb;
	bool took;                 /* the fast path accepted the last line */
	unsigned long lines, fast; /* counts */
};

static inline void cdiff_init(struct cdiff *x)
{
	memset(x, 0, sizeof *x);
	gfs_rowin_init(&x->a);
	gfs_rowin_init(&x->b);
	gfs_rowin_init(&x->f);
}

static inline void cdiff_release(struct cdiff *x)
{
	gfs_rowin_release(&x->a);
	gfs_rowin_release(&x->b);
	gfs_rowin_release(&x->f);
}

static inline bool cdiff_buf_eq(const struct gfs_buf *p,
				const struct gfs_buf *q)
{
	return p->len == q->len && (!p->len || !memcmp(p->p, q->p, p->len));
}

/* Lines equal but for a generated id: 26 bytes after {"id":" in data. */
static inline bool cdiff_line_eq(const struct gfs_rowin *p,
				 const struct gfs_rowin *q)
{
	size_t at = p->data_off + 7, n = p->line.len;

	if (!p->id_generated)
		return cdiff_buf_eq(&p->line, &q->line);
	return n == q->line.len && at + GFS_ULID_LEN <= n &&
	       !memcmp(p->line.p, q->line.p, at) &&
	       !memcmp(p->line.p + at + GFS_ULID_LEN,
		       q->line.p + at + GFS_ULID_LEN, n - at - GFS_ULID_LEN);
}

static inline bool cdiff_ulid_at(const char *s)
{
	char u[GFS_ULID_LEN + 1];

	if (strnlen(s, GFS_ULID_LEN) < GFS_ULID_LEN)
		return false;
	memcpy(u, s, GFS_ULID_LEN);
	u[GFS_ULID_LEN] = '\0';
	return gfs_ulid_valid(u);
}

/* Messages equal but for generated ids ("Chunk '01J...'"): the two runs
 * draw different ones. */
static inline bool cdiff_msg_eq(const char *p, const char *q)
{
	while (*p && *p == *q) {
		bool quote = *p == '\'';

		p++;
		q++;
		if (quote && cdiff_ulid_at(p) && cdiff_ulid_at(q)) {
			p += GFS_ULID_LEN;
			q += GFS_ULID_LEN;
		}
	}
	return *p == *q;
}

/* NULL when rows p and q hold the same result. */
static inline const char *cdiff_rows(const struct gfs_rowin *p,
				     const struct gfs_rowin *q)
{
	if (p->td != q->td || p->type_idx != q->type_idx)
		return "type differs";
	if (p->id_generated != q->id_generated)
		return "id_generated differs";
	if (p->data_off != q->data_off || p->data_len != q->data_len)
		return "data_off/data_len differ";
	if (!cdiff_line_eq(p, q))
		return "canonical line differs";
	if (p->id_generated ? p->id.len != q->id.len : !cdiff_buf_eq(&p->id, &q->id))
		return "id differs";
	if (!cdiff_buf_eq(&p->src, &q->src) || !cdiff_buf_eq(&p->dst, &q->dst))
		return "src/dst differ";
	if (p->n_ukeys != q->n_ukeys)
		return "number of unique keys differs";
	for (size_t i = 0; i < p->n_ukeys; i++)
		if (!cdiff_buf_eq(&p->ukeys[i], &q->ukeys[i]))
			return "a unique key differs";
	return NULL;
}

static inline const char *cdiff_line(struct cdiff *x,
				     const struct gfs_schema *s,
				     const char *line, size_t len)
{
	bool old = gfs_codec_set_fast(false);
	int rf;

	memset(&x->da, 0, sizeof x->da);
	memset(&x->db, 0, sizeof x->db);
	x->ra = gfs_codec_parse_line(s, line, len, 7, &x->a, &x->da);
	gfs_codec_set_fast(true);
	x->rb = gfs_codec_parse_line(s, line, len, 7, &x->b, &x->db);
	gfs_codec_set_fast(old);
	/* The fast path alone, on a fresh row as gfs_codec_parse_line's
	 * reset leaves it. */
	gfs_rowin_release(&x->f);
	gfs_rowin_init(&x->f);
	rf = gfs_codec_fast_parse(s, line, len, 7, &x->f);
	x->took = rf == 1;
	x->lines++;
	x->fast += x->took;
	if (rf != 0 && rf != 1)
		return "fast path returned neither 0 nor 1";
	if (x->ra != x->rb)
		return "rc differs with the fast path on";
	if (x->ra && !cdiff_msg_eq(x->da.msg, x->db.msg))
		return "message differs with the fast path on";
	if (x->took && x->ra)
		return "fast path accepted a line the jansson path refuses";
	if (x->took && cdiff_rows(&x->a, &x->f))
		return cdiff_rows(&x->a, &x->f);
	return x->ra ? NULL : cdiff_rows(&x->a, &x->b);
}

#endif
