/* load.c - one JSONL stream -> one graph version (DESIGN.md §1, §3).
 *
 * Phases, in order; nothing is visible before the last:
 *   1. parse    every line through the codec, chunks of lines on every
 *               core (load_parse.c), rows handed over in file order; one
 *               record per row (type, line number, id, endpoints, unique
 *               keys and the canonical line) goes to an external sorter
 *               (xsort.h)
 *   2. sort     records by (type, id, line); a pass over the merge drops
 *               all but the last line of an id (merge/overwrite) or rejects
 *               a second one (append), counts the rows, checks @unique
 *               within the file, and feeds two more sorted streams: the
 *               edges' endpoints by (node type, id) and, per row, its
 *               unique keys
 *   3. lock     heal first (recover.c resolves dead writers' sidecars on
 *               our tables), then flock: LOCK_EX on written tables, LOCK_SH
 *               on tables validation reads (healing again if a writer died
 *               in between); then the pins are read
 *   4. validate against those pins, as sort-merge joins of sorted streams:
 *               the rows with the endpoints (present in the file?), with
 *               the pinned node tables (dangling after an overwrite); per
 *               row lookups in the pins (append conflicts, @unique owners,
 *               moved edges) feed two more sorted streams, checked after:
 *               unique keys owned by ids the file does not rewrite, @card
 *               by (edge type, source)
 *   5. write    arm sidecar -> one new version per written table, fed from
 *               one more pass over the sorted rows -> confirm -> CAS
 *               publish (which deletes the sidecar); on a failure after
 *               arming, recovery's code undoes or finishes our own
 *               operation (finish_failed)
 *
 * Memory is bounded whatever the input's size: each sorter keeps records
 * in memory up to a budget (GRAPHFS_LOAD_MEM_BYTES, default 64 MiB for
 * the rows, a quarter or an eighth of it for each other stream) and
 * spills sorted runs past it to an unnamed file in STORE/staging
 * (O_TMPFILE: scratch, never fsynced, gone on a crash); a pass merges at
 * most 64 runs, 64 KiB of buffer each.  Nothing else grows with the
 * rows: lookups go to the mmap'ed pinned versions, and a table builder
 * holds a bounded batch of ops (table_build.c).  docs/decisions.md, "The
 * load sorts in bounded memory".
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "commit.h"
#include "failpoints.h"
#include "graph.h"
#include "load_int.h"
#include "load_parse.h"
#include "lock.h"
#include "xsort.h"

/* The rows' sorter budget when GRAPHFS_LOAD_MEM_BYTES is unset. */
#define LOAD_MEM_DEFAULT ((size_t)64 << 20)

struct span {
	const char *p;
	size_t len;
};

/* A row as the sorters carry it (rec_put / rec_get). */
struct rec {
	uint32_t type;
	uint64_t lineno;
	uint32_t data_off, data_len;
	bool id_generated; /* no data.id: messages name the endpoints */
	struct span id, src, dst;
	struct span uk;    /* the unique keys, each a varint length + bytes */
	uint32_t nuk;
	struct span line;  /* the canonical line ('\n' included) */
};

/* One pass over the deduplicated rows (rows_open).  The row looked
 * ahead is not copied: the sorter keeps a record valid through the next
 * call (xsort.h). */
struct rows {
	struct loader *L;
	struct gfs_xsort_iter *it;
	struct rec held;          /* the row looked ahead (the last line of an id) */
	uint64_t first;           /* the first line of held's id */
	bool have_held, check_dups;
};

struct loader {
	struct gfs_graph *g;
	const struct gfs_schema *s;
	const struct gfs_load_opts *o;
	struct gfs_diag *d;
	size_t budget;            /* the rows' sorter; others 1/4 or 1/8 */
	char staging[PATH_MAX];   /* where sorters put their runs */
	struct gfs_xsort *rows;   /* struct rec, by (type, id, line) */
	/* Endpoints, by (node type, id, line, side): sources and targets
	 * apart, as the sources often come sorted (edge ids that begin with
	 * their source), which the sorter then merges for free. */
	struct gfs_xsort *ends[2];
	struct gfs_xsort *ukeys;  /* unique keys, by (type, k, key, line) */
	struct gfs_xsort *claims; /* keys owned at the pin by another id */
	struct gfs_xsort *cards;  /* @card: (edge type, source, kind) */
	struct gfs_buf enc, ukenc; /* scratch for encoding records */
	struct gfs_xsort_stats sorted; /* summed over the sorters, at the end */
	uint64_t n;             /* rows parsed; after sorting, rows kept */
	/* The earliest error a check has seen so far (earlier()): checks that
	 * name a line report the first bad line of the file. */
	uint64_t err_line;
	uint32_t err_side;
	bool err_set;
	struct gfs_buf err_rec; /* the endpoint record named after the pass */
	struct rows w;          /* the write phase's pass */
	struct rec wrec;        /* its row not yet written */
	int wstate;             /* 1 wrec is valid, 0 end, <0 error */
	struct gfs_commit c;    /* the write door's state, c.ts per type */
	uint64_t *count;        /* per type: rows after deduplication */
	uint64_t lines, bytes;
	int phase;              /* the phase being timed, -1 none */
	uint64_t phase_t0, phase_ns[GFS_PHASE__COUNT];
};

static const char *const mode_names[] = { "merge", "append", "overwrite" };

int gfs_load_mode_parse(const char *s, enum gfs_load_mode *out)
{
	for (size_t i = 0; i < GFS_ARRAY_SIZE(mode_names); i++)
		if (!strcmp(s, mode_names[i])) {
			*out = (enum gfs_load_mode)i;
			return 0;
		}
	return -EINVAL;
}

const char *gfs_load_phase_name(enum gfs_load_phase p)
{
	static const char *const names[] = { "parse", "sort", "lock",
					     "validate", "write", "publish" };
	return (unsigned)p < GFS_ARRAY_SIZE(names) ? names[p] : "?";
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Ends the phase being timed (if any) and starts ph; -1 ends the last. */
static void phase_switch(struct loader *L, int ph)
{
	uint64_t now = mono_ns();

	if (L->phase >= 0)
		L->phase_ns[L->phase] += now - L->phase_t0;
	L->phase = ph;
	L->phase_t0 = now;
}

static void progress(struct loader *L, enum gfs_load_phase ph, uint64_t rows)
{
	if ((int)ph != L->phase)
		phase_switch(L, (int)ph);
	if (L->o->progress)
		L->o->progress(ph, L->bytes, rows, L->o->progress_arg);
}

/* ---- records: what the sorters carry ------------------------------------ */

/* Lengths are LEB128 varints: ids and keys are mostly under 128 bytes, so
 * a length takes one byte instead of four. */
static int put_varint(struct gfs_buf *a, uint32_t v)
{
	char b[5];
	size_t n = 0;

	do {
		b[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return gfs_buf_append(a, b, n);
}

static const char *varint_get(const char *p, uint32_t *v)
{
	uint32_t x = 0;
	unsigned sh = 0;
	unsigned char c;

	do {
		c = (unsigned char)*p++;
		x |= (uint32_t)(c & 0x7f) << sh;
		sh += 7;
	} while (c & 0x80);
	*v = x;
	return p;
}

static int put_span(struct gfs_buf *a, struct span s)
{
	int rc = put_varint(a, (uint32_t)s.len);

	return rc ? rc : gfs_buf_append(a, s.p, s.len);
}

static const char *get_span(const char *p, struct span *s)
{
	uint32_t l;

	p = varint_get(p, &l);
	*s = (struct span){ p, l };
	return p + l;
}

static uint32_t get_u32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

/* A row record: u32 type | u64 line | u32 data_off | u32 data_len |
 * u8 id_generated | id, src, dst, the unique keys (each a varint length +
 * bytes; the keys after a varint count) | the line (the rest).  A row
 * reference in the other streams is the same with no keys and no line. */
#define REC_FIXED 21

static int rec_put(struct gfs_buf *b, const struct rec *r, bool full)
{
	char h[REC_FIXED];
	int rc;

	memcpy(h, &r->type, 4);
	memcpy(h + 4, &r->lineno, 8);
	memcpy(h + 12, &r->data_off, 4);
	memcpy(h + 16, &r->data_len, 4);
	h[20] = (char)r->id_generated;
	rc = gfs_buf_append(b, h, sizeof h);
	if (!rc)
		rc = put_span(b, r->id);
	if (!rc)
		rc = put_span(b, r->src);
	if (!rc)
		rc = put_span(b, r->dst);
	if (!rc)
		rc = put_varint(b, full ? r->nuk : 0);
	if (!rc && full)
		rc = gfs_buf_append(b, r->uk.p, r->uk.len);
	if (!rc && full)
		rc = gfs_buf_append(b, r->line.p, r->line.len);
	return rc;
}

/* Decodes the record at p (len bytes); returns the end of it. */
static const char *rec_get(const char *p, size_t len, struct rec *r)
{
	const char *end = p + len, *q = p + REC_FIXED, *uk;

	memcpy(&r->type, p, 4);
	memcpy(&r->lineno, p + 4, 8);
	memcpy(&r->data_off, p + 12, 4);
	memcpy(&r->data_len, p + 16, 4);
	r->id_generated = p[20] != 0;
	q = get_span(q, &r->id);
	q = get_span(q, &r->src);
	q = get_span(q, &r->dst);
	q = varint_get(q, &r->nuk);
	uk = q;
	for (uint32_t k = 0; k < r->nuk; k++) {
		struct span s;
		q = get_span(q, &s);
	}
	r->uk = (struct span){ uk, (size_t)(q - uk) };
	r->line = (struct span){ q, (size_t)(end - q) };
	return end;
}

/* Unique key k of r (empty: not indexed). */
static struct span rec_uk(const struct rec *r, unsigned k)
{
	const char *p = r->uk.p;
	struct span s = { NULL, 0 };

	for (unsigned i = 0; i <= k && i < r->nuk; i++)
		p = get_span(p, &s);
	return k < r->nuk ? s : (struct span){ NULL, 0 };
}

static int span_cmp(struct span a, struct span b)
{
	int c = a.len && b.len ? memcmp(a.p, b.p, a.len < b.len ? a.len : b.len) : 0;

	if (c)
		return c;
	return a.len < b.len ? -1 : a.len > b.len;
}

/* Orders (type, id) pairs as the row stream does. */
static int key_cmp(uint32_t ta, struct span a, uint32_t tb, struct span b)
{
	if (ta != tb)
		return ta < tb ? -1 : 1;
	return span_cmp(a, b);
}

static int u64_cmp(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* Rows: by (type, id, line). */
static int row_cmp(const void *a, size_t alen, const void *b, size_t blen,
		   void *arg)
{
	struct span ia, ib;
	uint64_t la, lb;
	int c;

	(void)alen;
	(void)blen;
	(void)arg;
	get_span((const char *)a + REC_FIXED, &ia);
	get_span((const char *)b + REC_FIXED, &ib);
	c = key_cmp(get_u32(a), ia, get_u32(b), ib);
	if (c)
		return c;
	memcpy(&la, (const char *)a + 4, 8);
	memcpy(&lb, (const char *)b + 4, 8);
	return u64_cmp(la, lb);
}

static bool span_eq(struct span a, const char *p, size_t len)
{
	return a.len == len && (!len || !memcmp(a.p, p, len));
}

/* Printable excerpt of an id for messages (NULs and controls as '?'). */
static const char *show(struct span s, char *buf, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < s.len && k + 4 < n; i++)
		buf[k++] = (unsigned char)s.p[i] < 0x20 ? '?' : s.p[i];
	if (k + 4 >= n && s.len > k) {
		memcpy(buf + k, "...", 3);
		k += 3;
	}
	buf[k] = '\0';
	return buf;
}


/* ---- phase 1: parse ---------------------------------------------------- */

/* Takes one parsed row, line number lineno, into the rows' sorter. */
static int add_ent(struct loader *L, const struct gfs_rowin *r, uint64_t lineno)
{
	struct rec e = {
		.type = (uint32_t)r->type_idx,
		.lineno = lineno,
		.data_off = (uint32_t)r->data_off,
		.data_len = (uint32_t)r->data_len,
		.id_generated = r->id_generated,
		.id = { r->id.p, r->id.len },
		.src = { r->src.p, r->src.len },
		.dst = { r->dst.p, r->dst.len },
		.nuk = (uint32_t)r->n_ukeys,
		.line = { r->line.p, r->line.len },
	};
	int rc = 0;

	gfs_buf_reset(&L->enc);
	gfs_buf_reset(&L->ukenc);
	for (size_t k = 0; !rc && k < r->n_ukeys; k++)
		rc = put_span(&L->ukenc, (struct span){ r->ukeys[k].p, r->ukeys[k].len });
	e.uk = (struct span){ L->ukenc.p, L->ukenc.len };
	if (!rc)
		rc = rec_put(&L->enc, &e, true);
	if (!rc)
		rc = gfs_xsort_add(L->rows, L->enc.p, L->enc.len);
	if (!rc)
		L->n++;
	return rc;
}

/* The parse runs on every core (load_parse.c) and hands us the rows in
 * file order. */
static int parsed_row(void *arg, const struct gfs_rowin *r, uint64_t lineno)
{
	return add_ent(arg, r, lineno);
}

static void parsed_chunk(void *arg, uint64_t bytes, uint64_t lines)
{
	struct loader *L = arg;

	(void)lines;
	L->bytes = bytes;
	progress(L, GFS_PHASE_PARSE, L->n);
}

static int parse_stream(struct loader *L, int fd)
{
	struct gfs_parse_opts po = {
		.s = L->s, .source = L->o->source, .threads = L->o->threads,
		.row = parsed_row, .tick = parsed_chunk, .arg = L,
	};
	struct gfs_parse_stats st;
	int rc = gfs_load_parse(fd, &po, &st, L->d);

	L->lines = st.lines;
	L->bytes = st.bytes;
	return rc;
}

/* ---- phase 2: sort, deduplicate, check within the file ----------------- */

/* The other streams share one layout: u32 type | u32 k | u32 aux |
 * u64 line | one or two spans | [a row reference (rec_put, not full)].
 * The comparators read the fixed part and the spans only.
 *   ends:   node type | side (1 source, 2 target) | edge type | the edge's
 *           line | endpoint id, edge id      (no reference: kept small)
 *   ukeys:  type | k | - | line | key | reference
 *   claims: type | k | - | line | the id that owns the key at the pin,
 *           key | reference
 *   cards:  edge type | kind (0 an edge of the file, 1 a pinned edge the
 *           file replaces) | - | - | source id */
#define XFIXED 20

struct xrec {
	uint32_t type, k, aux;
	uint64_t lineno;
	struct span a, b;
	struct rec r; /* the row reference, where the stream has one */
};

/* Decodes the fixed part and nsp spans; the reference too if ref. */
static void xget(const char *p, size_t len, int nsp, bool ref, struct xrec *x)
{
	const char *q = get_span(p + XFIXED, &x->a);

	x->type = get_u32(p);
	x->k = get_u32(p + 4);
	x->aux = get_u32(p + 8);
	memcpy(&x->lineno, p + 12, 8);
	if (nsp > 1)
		q = get_span(q, &x->b);
	if (ref)
		rec_get(q, len - (size_t)(q - p), &x->r);
}

static int k_cmp(uint32_t a, uint32_t b)
{
	return a < b ? -1 : a > b;
}

/* ends: (node type, id, line, side).  The hottest comparator of a load
 * (the targets come in no order): it reads the fields in place. */
static int ends_cmp(const void *a, size_t alen, const void *b, size_t blen,
		    void *arg)
{
	const char *pa = a, *pb = b;
	struct span ia, ib;
	uint64_t la, lb;
	int c;

	(void)alen;
	(void)blen;
	(void)arg;
	get_span(pa + XFIXED, &ia);
	get_span(pb + XFIXED, &ib);
	c = key_cmp(get_u32(pa), ia, get_u32(pb), ib);
	if (c)
		return c;
	memcpy(&la, pa + 12, 8);
	memcpy(&lb, pb + 12, 8);
	c = u64_cmp(la, lb);
	return c ? c : k_cmp(get_u32(pa + 4), get_u32(pb + 4));
}

/* ukeys: (type, k, key, line) */
static int ukeys_cmp(const void *a, size_t alen, const void *b, size_t blen,
		     void *arg)
{
	struct xrec x, y;
	int c;

	(void)arg;
	xget(a, alen, 1, false, &x);
	xget(b, blen, 1, false, &y);
	c = k_cmp(x.type, y.type);
	if (!c)
		c = k_cmp(x.k, y.k);
	if (!c)
		c = span_cmp(x.a, y.a);
	return c ? c : u64_cmp(x.lineno, y.lineno);
}

/* claims: (type, owner id, line, k); cards: (edge type, source, kind) */
static int claims_cmp(const void *a, size_t alen, const void *b, size_t blen,
		      void *arg)
{
	struct xrec x, y;
	int c;

	(void)arg;
	xget(a, alen, 1, false, &x);
	xget(b, blen, 1, false, &y);
	c = key_cmp(x.type, x.a, y.type, y.a);
	if (!c)
		c = u64_cmp(x.lineno, y.lineno);
	return c ? c : k_cmp(x.k, y.k);
}

static int xadd(struct loader *L, struct gfs_xsort *s, const struct xrec *x,
		int nsp, const struct rec *ref)
{
	char h[XFIXED];
	int rc;

	memcpy(h, &x->type, 4);
	memcpy(h + 4, &x->k, 4);
	memcpy(h + 8, &x->aux, 4);
	memcpy(h + 12, &x->lineno, 8);
	gfs_buf_reset(&L->enc);
	rc = gfs_buf_append(&L->enc, h, sizeof h);
	if (!rc)
		rc = put_span(&L->enc, x->a);
	if (!rc && nsp > 1)
		rc = put_span(&L->enc, x->b);
	if (!rc && ref)
		rc = rec_put(&L->enc, ref, false);
	return rc ? rc : gfs_xsort_add(s, L->enc.p, L->enc.len);
}

static int new_sorter(struct loader *L, size_t budget, gfs_xsort_cmp cmp,
		      struct gfs_xsort **out)
{
	return gfs_xsort_new(L->staging, budget ? budget : 1, cmp, L, out);
}

static int row_error(struct loader *L, const struct rec *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Is (line, side) before the earliest error seen?  Then it becomes it,
 * and the message of the one it replaces is cleared for its own. */
static bool earlier(struct loader *L, uint64_t line, uint32_t side)
{
	if (L->err_set && (line > L->err_line ||
			   (line == L->err_line && side >= L->err_side)))
		return false;
	if (L->d)
		L->d->msg[0] = '\0';
	L->err_set = true;
	L->err_line = line;
	L->err_side = side;
	return true;
}

/* A pass over the rows in (type, id) order, the last line of each id only.
 * check_dups: a second line of an id in append mode is an error. */
static int rows_open(struct loader *L, struct rows *rs, bool check_dups)
{
	memset(rs, 0, sizeof *rs);
	rs->L = L;
	rs->check_dups = check_dups;
	return gfs_xsort_iter_new(L->rows, &rs->it);
}

static void rows_close(struct rows *rs)
{
	gfs_xsort_iter_free(rs->it);
	rs->it = NULL;
}

static int dup_error(struct loader *L, const struct rec *later, uint64_t first)
{
	char b1[80];

	gfs_diag_set(L->d, "line %" PRIu64 ": %s '%s': id already given on line %" PRIu64 " (append inserts each id once)",
		     later->lineno, L->s->types[later->type].name,
		     show(later->id, b1, sizeof b1), first);
	return GFS_ECONFLICT;
}

/* 1 = *r is the next row (valid until the next call), 0 = end, <0 error. */
static int rows_next(struct rows *rs, struct rec *r)
{
	const void *p;
	size_t len;
	int rc;

	while ((rc = gfs_xsort_iter_next(rs->it, &p, &len)) == 1) {
		struct rec n;
		rec_get(p, len, &n);
		if (rs->have_held && !key_cmp(n.type, n.id, rs->held.type, rs->held.id)) {
			/* append: an error, the earliest second line is named;
			 * merge / overwrite: the last line wins */
			if (rs->check_dups && rs->L->o->mode == GFS_LOAD_APPEND &&
			    earlier(rs->L, n.lineno, 0))
				dup_error(rs->L, &n, rs->first);
			rs->held = n; /* held's memory lasts one more call only */
			continue;
		}
		rs->first = n.lineno;
		if (rs->have_held) {
			*r = rs->held;
			rs->held = n;
			return 1;
		}
		rs->held = n;
		rs->have_held = true;
	}
	if (rc < 0 || !rs->have_held)
		return rc;
	*r = rs->held;
	rs->have_held = false;
	return 1;
}

static int add_ends(struct loader *L, const struct rec *r,
		    const struct gfs_typedef *td)
{
	struct xrec x = { .type = (uint32_t)td->from_idx, .k = 1, .aux = r->type,
			  .lineno = r->lineno, .a = r->src, .b = r->id };
	int rc = xadd(L, L->ends[0], &x, 2, NULL);

	x.type = (uint32_t)td->to_idx;
	x.k = 2;
	x.a = r->dst;
	return rc ? rc : xadd(L, L->ends[1], &x, 2, NULL);
}

/* The first pass over the sorted rows: counts them per type, and feeds
 * the endpoint and unique-key streams from the rows kept. */
static int scan_rows(struct loader *L)
{
	struct rows rs;
	struct rec r;
	int rc = rows_open(L, &rs, true);

	L->n = 0;
	L->err_set = false;
	while (!rc && (rc = rows_next(&rs, &r)) == 1) {
		const struct gfs_typedef *td = &L->s->types[r.type];
		rc = 0;
		L->n++;
		L->count[r.type]++;
		if (td->is_edge)
			rc = add_ends(L, &r, td);
		for (uint32_t k = 0; !rc && k < r.nuk; k++) {
			struct xrec x = { .type = r.type, .k = k, .lineno = r.lineno,
					  .a = rec_uk(&r, k) };
			if (x.a.len)
				rc = xadd(L, L->ukeys, &x, 1, &r);
		}
		if (!rc && L->n % 65536 == 0)
			progress(L, GFS_PHASE_SORT, L->n);
	}
	rows_close(&rs);
	return rc ? rc : L->err_set ? GFS_ECONFLICT : 0; /* append: a second line */
}

/* @unique within the file: equal keys are neighbours in the stream; of
 * all such pairs the one whose later line comes first is named. */
static int unique_in_file(struct loader *L)
{
	struct gfs_xsort_iter *it;
	struct gfs_buf prev;
	struct xrec x, px = { 0 };
	const void *p;
	size_t len;
	bool have = false;
	int rc = gfs_xsort_iter_new(L->ukeys, &it);

	gfs_buf_init(&prev);
	L->err_set = false;
	while (!rc && (rc = gfs_xsort_iter_next(it, &p, &len)) == 1) {
		rc = 0;
		xget(p, len, 1, true, &x);
		if (have && x.type == px.type && x.k == px.k && !span_cmp(x.a, px.a) &&
		    earlier(L, x.lineno, 0)) {
			char idb[80], kb[120], other[200];
			snprintf(other, sizeof other, "'%s' on line %" PRIu64,
				 show(px.r.id, idb, sizeof idb), px.lineno);
			row_error(L, &x.r, "unique value %s is also used by %s",
				  show(x.a, kb, sizeof kb), other);
		}
		gfs_buf_reset(&prev);
		rc = gfs_buf_append(&prev, p, len);
		if (!rc)
			xget(prev.p, len, 1, true, &px);
		have = !rc;
	}
	gfs_xsort_iter_free(it);
	gfs_buf_release(&prev);
	return rc ? rc : L->err_set ? GFS_ECONFLICT : 0;
}

static int sort_phase(struct loader *L)
{
	int rc;

	progress(L, GFS_PHASE_SORT, L->n);
	rc = gfs_xsort_finish(L->rows);
	if (!rc)
		rc = new_sorter(L, L->budget / 8, ends_cmp, &L->ends[0]);
	if (!rc)
		rc = new_sorter(L, L->budget / 8, ends_cmp, &L->ends[1]);
	if (!rc)
		rc = new_sorter(L, L->budget / 4, ukeys_cmp, &L->ukeys);
	if (!rc)
		rc = scan_rows(L);
	if (!rc)
		rc = gfs_xsort_finish(L->ends[0]);
	if (!rc)
		rc = gfs_xsort_finish(L->ends[1]);
	if (!rc)
		rc = gfs_xsort_finish(L->ukeys);
	if (!rc)
		rc = unique_in_file(L);
	return rc;
}

/* ---- phase 3: locks and pins ------------------------------------------- */

/* Which tables this load writes (EX) and reads (SH). */
static void plan_tables(struct loader *L)
{
	const struct gfs_schema *s = L->s;
	struct gfs_commit_table *ts = L->c.ts;

	for (size_t i = 0; i < s->n_types; i++)
		ts[i].written = L->count[i] > 0;
	for (size_t i = 0; i < s->n_types; i++) {
		const struct gfs_typedef *t = &s->types[i];
		if (!ts[i].written)
			continue;
		if (t->is_edge) {
			ts[t->from_idx].read = true;
			ts[t->to_idx].read = true;
		}
		if (t->is_edge || L->o->mode != GFS_LOAD_OVERWRITE)
			continue;
		/* An overwrite of a node table may orphan edges elsewhere. */
		for (size_t k = 0; k < s->n_types; k++) {
			const struct gfs_typedef *e = &s->types[k];
			if (e->is_edge && (e->from_idx == i || e->to_idx == i))
				ts[k].read = true;
		}
	}
}

/* ---- phase 4: validate against the pins -------------------------------- */

static int row_error(struct loader *L, const struct rec *e, const char *fmt, ...)
{
	char idb[80], msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (L->s->types[e->type].is_edge) {
		char sb[80], db[80];
		show(e->src, sb, sizeof sb);
		show(e->dst, db, sizeof db);
		if (e->id_generated)
			gfs_diag_set(L->d, "line %" PRIu64 ": %s '%s' -> '%s': %s", e->lineno,
				     L->s->types[e->type].name, sb, db, msg);
		else
			gfs_diag_set(L->d, "line %" PRIu64 ": %s '%s' ('%s' -> '%s'): %s", e->lineno,
				     L->s->types[e->type].name, show(e->id, idb, sizeof idb),
				     sb, db, msg);
		return GFS_ECONFLICT;
	}
	gfs_diag_set(L->d, "line %" PRIu64 ": %s '%s': %s", e->lineno,
		     L->s->types[e->type].name, show(e->id, idb, sizeof idb), msg);
	return GFS_ECONFLICT;
}

/* A pass over a finished sorter, remembering a copy of one key. */
struct walk {
	struct gfs_xsort_iter *it;
	const void *p;      /* current record, valid until the next step */
	size_t len;
	int state;          /* 1 p is valid, 0 end, <0 error */
	struct gfs_buf key; /* a key kept across steps */
	uint32_t key_type;
	bool have_key;
};

static int walk_open(struct gfs_xsort *s, struct walk *w)
{
	memset(w, 0, sizeof *w);
	gfs_buf_init(&w->key);
	w->state = gfs_xsort_iter_new(s, &w->it);
	if (!w->state)
		w->state = gfs_xsort_iter_next(w->it, &w->p, &w->len);
	return w->state < 0 ? w->state : 0;
}

static int walk_step(struct walk *w)
{
	w->state = gfs_xsort_iter_next(w->it, &w->p, &w->len);
	return w->state < 0 ? w->state : 0;
}

static void walk_close(struct walk *w)
{
	gfs_xsort_iter_free(w->it);
	w->it = NULL;
	gfs_buf_release(&w->key);
}

static int walk_keep(struct walk *w, uint32_t type, struct span s)
{
	gfs_buf_reset(&w->key);
	w->key_type = type;
	w->have_key = !gfs_buf_append(&w->key, s.p, s.len);
	return w->have_key ? 0 : -ENOMEM;
}

static bool walk_kept(const struct walk *w, uint32_t type, struct span s)
{
	return w->have_key && w->key_type == type && span_eq(s, w->key.p, w->key.len);
}

/* Node id of type t at the pin (1 yes, 0 no, <0 error). */
static int at_pin(struct loader *L, size_t t, struct span id)
{
	struct gfs_row row;
	int rc;

	memset(&row, 0, sizeof row);
	rc = gfs_tver_get(L->c.ts[t].tv, id.p, id.len, &row);
	gfs_row_release(&row);
	return rc;
}

/* Names the edge (type, id) of the ends stream that lacks an endpoint:
 * the stream carries no row reference, so one more pass over the rows
 * finds it (only on this error). */
static int missing_end(struct loader *L, const struct xrec *x)
{
	struct rows rs;
	struct rec r;
	char eb[80];
	int rc = rows_open(L, &rs, false);

	while (!rc && (rc = rows_next(&rs, &r)) == 1 &&
	       key_cmp(r.type, r.id, x->aux, x->b))
		rc = 0;
	if (rc == 1)
		rc = row_error(L, &r, "%s node %s '%s' does not exist (not in this file nor in the store)",
			       x->k == 1 ? "source" : "target",
			       L->s->types[x->type].name, show(x->a, eb, sizeof eb));
	else if (rc == 0)
		rc = -EIO; /* the edge is in the rows: cannot happen */
	rows_close(&rs);
	return rc;
}

/* Endpoints below (type, id) in the ends stream are not in the file: they
 * must be at the pin (unless an overwrite replaces that node table);
 * those equal to it are.  Called with the node rows in order, then with
 * type UINT32_MAX.  The last endpoint resolved is remembered: edges share
 * endpoints, and each is looked up once.  A missing one is kept if its
 * line is the earliest yet; the pass names it at the end. */
static int ends_upto(struct loader *L, struct walk *w, uint32_t type,
		     struct span id)
{
	struct xrec x;
	int rc = 0, c;

	for (; !rc && w->state == 1; rc = walk_step(w)) {
		xget(w->p, w->len, 2, false, &x);
		c = key_cmp(x.type, x.a, type, id);
		if (c > 0)
			break;
		if (c == 0 || walk_kept(w, x.type, x.a))
			continue;
		rc = L->o->mode == GFS_LOAD_OVERWRITE && L->c.ts[x.type].written ? 0 :
		     at_pin(L, x.type, x.a);
		if (rc == 0 && earlier(L, x.lineno, x.k)) {
			gfs_buf_reset(&L->err_rec);
			rc = gfs_buf_append(&L->err_rec, w->p, w->len);
		}
		if (rc >= 0)
			rc = walk_keep(w, x.type, x.a);
	}
	return rc;
}

/* An overwrite of node table t removes the pinned rows not in the file; an
 * edge of another table that still points at one of them is an error
 * (nothing cascades implicitly).  Only edge tables this load does not
 * overwrite are asked (check_removed_node), so none of their edges is in
 * the file. */
static int check_dangling_edge(struct loader *L, size_t e, enum gfs_index ix,
			       struct span id)
{
	struct gfs_titer *it;
	struct gfs_row row;
	int rc = gfs_titer_new(L->c.ts[e].tv, ix, id.p, id.len, &it);

	while (!rc && (rc = gfs_titer_next(it, &row)) == 1) {
		const char *ep = ix == GFS_IX_SRC ? row.src : row.dst;
		size_t eplen = ix == GFS_IX_SRC ? row.src_len : row.dst_len;
		char nb[80], ib[80], sb[80], db[80];
		rc = 0;
		if (!span_eq(id, ep, eplen))
			break;
		gfs_diag_set(L->d, "overwrite removes %s '%s', but edge %s '%s' (%s -> %s) still points at it; delete or overwrite that edge in the same load",
			     L->s->types[ix == GFS_IX_SRC ? L->s->types[e].from_idx : L->s->types[e].to_idx].name,
			     show(id, nb, sizeof nb), L->s->types[e].name,
			     show((struct span){ row.id, row.id_len }, ib, sizeof ib),
			     show((struct span){ row.src, row.src_len }, sb, sizeof sb),
			     show((struct span){ row.dst, row.dst_len }, db, sizeof db));
		rc = GFS_ECONFLICT;
	}
	if (it)
		gfs_titer_free(it);
	return rc;
}

static int check_removed_node(struct loader *L, size_t t, struct span id)
{
	int rc = 0;

	for (size_t e = 0; !rc && e < L->s->n_types; e++) {
		const struct gfs_typedef *td = &L->s->types[e];
		if (!td->is_edge || (L->c.ts[e].written && L->o->mode == GFS_LOAD_OVERWRITE))
			continue;
		if (td->from_idx == t)
			rc = check_dangling_edge(L, e, GFS_IX_SRC, id);
		if (!rc && td->to_idx == t)
			rc = check_dangling_edge(L, e, GFS_IX_DST, id);
	}
	return rc;
}

/* The pinned rows of an overwritten node table, walked beside the file's
 * rows of that type: the pinned ids the file lacks are removed. */
struct pinwalk {
	uint32_t type;       /* UINT32_MAX: none open */
	struct gfs_titer *it;
	struct gfs_row row;
	int state;           /* 1 row is valid, 0 end */
};

static int pin_step(struct pinwalk *pw)
{
	pw->state = gfs_titer_next(pw->it, &pw->row);
	return pw->state < 0 ? pw->state : 0;
}

/* Checks the pinned rows of pw's table below id (all when id.p is NULL),
 * skipping one equal to it. */
static int removed_upto(struct loader *L, struct pinwalk *pw, struct span id)
{
	int rc = 0;

	while (!rc && pw->state == 1) {
		struct span pid = { pw->row.id, pw->row.id_len };
		int c = id.p ? span_cmp(pid, id) : -1;
		if (c > 0)
			break;
		if (c < 0)
			rc = check_removed_node(L, pw->type, pid);
		if (!rc)
			rc = pin_step(pw);
	}
	return rc;
}

/* Called for each node row of an overwrite in order, then with type
 * UINT32_MAX to finish. */
static int dangling_upto(struct loader *L, struct pinwalk *pw, uint32_t type,
			 struct span id)
{
	int rc = 0;

	if (pw->type != type && pw->it) {
		rc = removed_upto(L, pw, (struct span){ NULL, 0 });
		gfs_titer_free(pw->it);
		pw->it = NULL;
	}
	if (!rc && pw->type != type && type != UINT32_MAX) {
		rc = gfs_titer_new(L->c.ts[type].tv, GFS_IX_PRIMARY, NULL, 0, &pw->it);
		if (!rc)
			rc = pin_step(pw);
	}
	pw->type = type;
	if (!rc && type != UINT32_MAX)
		rc = removed_upto(L, pw, id);
	return rc;
}

/* Per row lookups in the pin: append conflicts; unique keys another id
 * owns at the pin (a claim: fine if the file rewrites that id, which the
 * claims pass checks); @card's counts, with the pinned edge the row
 * replaces (its old source loses one). */
struct pinned_ctx {
	struct gfs_row prow, urow;
};

static int claim_keys(struct loader *L, const struct rec *r, struct gfs_row *urow)
{
	struct gfs_commit_table *ts = &L->c.ts[r->type];
	int rc = 0;

	for (uint32_t k = 0; !rc && k < r->nuk; k++) {
		struct span key = rec_uk(r, k);
		if (!key.len)
			continue;
		rc = gfs_tver_get_unique(ts->tv, k, key.p, key.len, urow);
		if (rc == 1 && !span_eq(r->id, urow->id, urow->id_len)) {
			struct xrec x = { .type = r->type, .k = k, .lineno = r->lineno,
					  .a = { urow->id, urow->id_len }, .b = key };
			rc = xadd(L, L->claims, &x, 2, r);
		} else if (rc == 1) {
			rc = 0;
		}
	}
	return rc;
}

static int check_pinned_row(struct loader *L, const struct rec *r,
			    struct pinned_ctx *c)
{
	const struct gfs_typedef *td = &L->s->types[r->type];
	bool overwrite = L->o->mode == GFS_LOAD_OVERWRITE;
	bool card = td->is_edge && td->has_card;
	int got = 0, rc = 0;

	if (L->o->mode == GFS_LOAD_APPEND || (card && !overwrite))
		got = gfs_tver_get(L->c.ts[r->type].tv, r->id.p, r->id.len, &c->prow);
	if (got < 0)
		return got;
	if (got == 1 && L->o->mode == GFS_LOAD_APPEND)
		return row_error(L, r, "id already exists (append mode inserts only new ids; use --mode merge to update)");
	if (!overwrite)
		rc = claim_keys(L, r, &c->urow);
	if (!rc && card) {
		struct xrec x = { .type = r->type, .k = 0, .a = r->src };
		rc = xadd(L, L->cards, &x, 1, NULL);
		x.k = 1;
		x.a = (struct span){ c->prow.src, c->prow.src_len };
		if (!rc && got == 1)
			rc = xadd(L, L->cards, &x, 1, NULL);
	}
	return rc;
}

/* Both endpoint streams up to (type, id). */
static int both_ends_upto(struct loader *L, struct walk *ends, uint32_t type,
			  struct span id)
{
	int rc = ends_upto(L, &ends[0], type, id);

	return rc ? rc : ends_upto(L, &ends[1], type, id);
}

/* The validation pass over the rows: the endpoint streams and the pinned
 * node tables of an overwrite are merged in beside it. */
static int scan_pinned(struct loader *L)
{
	struct pinned_ctx c;
	struct pinwalk pw = { .type = UINT32_MAX };
	struct walk ends[2];
	struct rows rs;
	struct rec r;
	int rc;

	memset(&c, 0, sizeof c);
	memset(&rs, 0, sizeof rs);
	memset(ends, 0, sizeof ends);
	L->err_set = false;
	rc = walk_open(L->ends[0], &ends[0]);
	if (!rc)
		rc = walk_open(L->ends[1], &ends[1]);
	if (!rc)
		rc = rows_open(L, &rs, false);
	while (!rc && (rc = rows_next(&rs, &r)) == 1) {
		bool node = !L->s->types[r.type].is_edge;
		rc = node ? both_ends_upto(L, ends, r.type, r.id) : 0;
		if (!rc)
			rc = check_pinned_row(L, &r, &c);
		if (!rc && node && L->o->mode == GFS_LOAD_OVERWRITE)
			rc = dangling_upto(L, &pw, r.type, r.id);
	}
	if (!rc)
		rc = both_ends_upto(L, ends, UINT32_MAX, (struct span){ NULL, 0 });
	if (!rc)
		rc = dangling_upto(L, &pw, UINT32_MAX, (struct span){ NULL, 0 });
	if (!rc && L->err_set) { /* the earliest missing endpoint */
		struct xrec x;
		xget(L->err_rec.p, L->err_rec.len, 2, false, &x);
		rc = missing_end(L, &x);
	}
	if (pw.it)
		gfs_titer_free(pw.it);
	rows_close(&rs);
	walk_close(&ends[0]);
	walk_close(&ends[1]);
	gfs_row_release(&c.prow);
	gfs_row_release(&c.urow);
	return rc;
}

/* Claims whose owner id the file does not rewrite are conflicts: the
 * claims, by (type, owner), merged with the rows; the earliest line is
 * named. */
static int check_claims(struct loader *L)
{
	struct walk w;
	struct rows rs;
	struct rec r;
	int have = 0, rc = walk_open(L->claims, &w);

	memset(&rs, 0, sizeof rs);
	L->err_set = false;
	if (!rc && w.state == 1) { /* claims are rare: no pass without one */
		rc = rows_open(L, &rs, false);
		have = rc ? 0 : rows_next(&rs, &r);
	}
	while (!rc && have >= 0 && w.state == 1) {
		struct xrec x;
		char kb[120], ob[80];
		xget(w.p, w.len, 2, true, &x);
		while (have == 1 && key_cmp(r.type, r.id, x.type, x.a) < 0)
			have = rows_next(&rs, &r);
		if (have >= 0 && (have == 0 || key_cmp(r.type, r.id, x.type, x.a)) &&
		    earlier(L, x.lineno, x.k))
			row_error(L, &x.r, "unique value %s already belongs to '%s'",
				  show(x.b, kb, sizeof kb), show(x.a, ob, sizeof ob));
		if (have >= 0)
			rc = walk_step(&w);
	}
	rows_close(&rs);
	walk_close(&w);
	if (!rc && have < 0)
		rc = have;
	return rc ? rc : L->err_set ? GFS_ECONFLICT : 0;
}

/* Edges of table t leaving src at the pin. */
static int pinned_out_degree(struct loader *L, size_t t, struct span src,
			     uint64_t *count)
{
	struct gfs_titer *it;
	struct gfs_row row;
	int rc;

	*count = 0;
	rc = gfs_titer_new(L->c.ts[t].tv, GFS_IX_SRC, src.p, src.len, &it);
	while (!rc && (rc = gfs_titer_next(it, &row)) == 1) {
		rc = 0;
		if (!span_eq(src, row.src, row.src_len))
			break;
		(*count)++;
	}
	if (it)
		gfs_titer_free(it);
	return rc;
}

/* Source src of edge table t: nfile edges in the file, nrep pinned edges
 * from it that the file replaces (by id); the others at the pin stay,
 * unless an overwrite replaces the table. */
static int card_source(struct loader *L, size_t t, struct span src,
		       uint64_t nfile, uint64_t nrep)
{
	const struct gfs_typedef *td = &L->s->types[t];
	uint64_t n = 0;
	int rc = L->o->mode == GFS_LOAD_OVERWRITE ? 0 :
		 pinned_out_degree(L, t, src, &n);
	char sb[80], max[32] = "";

	if (rc)
		return rc;
	n = (n > nrep ? n - nrep : 0) + nfile;
	if (n == 0 || (n >= td->card_min && n <= td->card_max))
		return 0;
	if (td->card_max != UINT64_MAX)
		snprintf(max, sizeof max, "%" PRIu64, td->card_max);
	gfs_diag_set(L->d, "%s: source %s '%s' would have %" PRIu64 " edges, but @card(%" PRIu64 "..%s) allows %s",
		     td->name, L->s->types[td->from_idx].name, show(src, sb, sizeof sb), n,
		     td->card_min, max, n < td->card_min ? "more" : "fewer");
	return GFS_ECONFLICT;
}

/* @card: every source an edge of the file leaves or reaches, in (edge
 * type, source) order. */
static int check_card(struct loader *L)
{
	struct walk w;
	uint64_t cnt[2] = { 0, 0 };
	int rc = walk_open(L->cards, &w);

	while (!rc && w.state == 1) {
		struct xrec x;
		xget(w.p, w.len, 1, false, &x);
		if (!walk_kept(&w, x.type, x.a)) {
			cnt[0] = cnt[1] = 0;
			rc = walk_keep(&w, x.type, x.a);
		}
		cnt[x.k != 0]++;
		if (!rc)
			rc = walk_step(&w);
		if (!rc && w.state == 1)
			xget(w.p, w.len, 1, false, &x);
		if (!rc && (w.state != 1 || !walk_kept(&w, x.type, x.a)))
			rc = card_source(L, w.key_type,
					 (struct span){ w.key.p, w.key.len }, cnt[0], cnt[1]);
	}
	walk_close(&w);
	return rc;
}

static int validate(struct loader *L)
{
	int rc;

	progress(L, GFS_PHASE_VALIDATE, L->n);
	rc = new_sorter(L, L->budget / 4, claims_cmp, &L->claims);
	if (!rc)
		rc = new_sorter(L, L->budget / 4, claims_cmp, &L->cards);
	if (!rc)
		rc = scan_pinned(L);
	if (!rc)
		rc = gfs_xsort_finish(L->claims);
	if (!rc)
		rc = gfs_xsort_finish(L->cards);
	if (!rc)
		rc = check_claims(L);
	if (!rc)
		rc = check_card(L);
	return rc;
}

/* ---- phase 5: arm, commit tables, confirm, publish --------------------- */

/* Feeds the builder the rows of type t: the write pass is in (type, id)
 * order and the tables are committed in type order, so each table takes
 * the rows up to the first of a later type. */
static int put_rows(struct loader *L, size_t t, struct gfs_tbuild *b)
{
	size_t nu = gfs_codec_n_unique(&L->s->types[t]);
	struct gfs_buf *uk = calloc(nu + 1, sizeof *uk);
	bool edge = L->s->types[t].is_edge;
	uint64_t i = 0;
	int rc = uk ? 0 : -ENOMEM;

	for (; !rc && L->wstate == 1 && L->wrec.type == t; i++) {
		const struct rec *e = &L->wrec;
		struct gfs_rowput rp;
		for (size_t k = 0; k < nu; k++) {
			struct span u = rec_uk(e, (unsigned)k);
			uk[k] = (struct gfs_buf){ (char *)u.p, u.len, u.len };
		}
		rp = (struct gfs_rowput){
			.id = e->id.p, .id_len = e->id.len,
			.src = e->src.len || edge ? e->src.p : NULL, .src_len = e->src.len,
			.dst = e->dst.len || edge ? e->dst.p : NULL, .dst_len = e->dst.len,
			.line = e->line.p, .line_len = e->line.len,
			.data_off = e->data_off, .data_len = e->data_len,
			.ukeys = uk, .n_ukeys = nu,
		};
		rc = gfs_tbuild_put(b, &rp);
		if (!rc)
			L->wstate = rows_next(&L->w, &L->wrec);
		if (!rc && L->wstate < 0)
			rc = L->wstate;
		if (!rc && i % 65536 == 65535)
			progress(L, GFS_PHASE_WRITE, i);
	}
	free(uk);
	return rc;
}

/* A written table between its last put and its link.  Its finish (merge
 * the builder's runs, write the trees, fsync the temp file: about half of
 * a table's write time) runs on a thread of its own while the next
 * table's rows are put; the links stay in table order on the loader's
 * thread, each followed by commit/after_table as before.  The finish
 * touches only the builder's temp file and reads the pinned version. */
struct finisher {
	struct loader *L;
	size_t t;
	struct gfs_tbuild *b; /* NULL: none pending */
	pthread_t th;
	bool threaded;
	int rc;
	struct gfs_diag d;
	char io[PATH_MAX + 96];      /* the thread's gfs_io_last */
	char corrupt[512];           /* and its gfs_corrupt_last */
};

static void *finish_run(void *arg)
{
	struct finisher *f = arg;
	const char *io;

	f->rc = gfs_tbuild_finish(f->b, f->L->c.ts[f->t].next, f->L->c.op_id, &f->d);
	if (f->rc && (io = gfs_io_last(f->rc)))
		snprintf(f->io, sizeof f->io, "%s", io);
	if (f->rc == GFS_ECORRUPT)
		snprintf(f->corrupt, sizeof f->corrupt, "%s", gfs_corrupt_last());
	return NULL;
}

static void finish_start(struct finisher *f, struct loader *L, size_t t,
			 struct gfs_tbuild *b)
{
	f->L = L;
	f->t = t;
	f->b = b;
	f->rc = 0;
	f->d.msg[0] = f->io[0] = f->corrupt[0] = '\0';
	f->threaded = !pthread_create(&f->th, NULL, finish_run, f);
	if (!f->threaded) /* no thread to be had: finish here */
		finish_run(f);
}

/* Waits for the pending finish (if any), then links it, or on `discard`
 * (an earlier failure) only frees it: the temp file goes with it. */
static int finish_end(struct finisher *f, bool discard)
{
	struct loader *L = f->L;
	int rc;

	if (!f->b)
		return 0;
	if (f->threaded)
		pthread_join(f->th, NULL);
	f->threaded = false;
	rc = f->rc;
	if (rc && !discard) { /* the thread's messages, as if it were ours */
		if (f->corrupt[0])
			gfs_corrupt_note("%s", f->corrupt);
		if (f->io[0])
			gfs_io_note(rc, f->io);
		if (f->d.msg[0])
			gfs_diag_set(L->d, "%s", f->d.msg);
	}
	if (!rc && !discard)
		rc = gfs_commit_linked(&L->c, f->t, gfs_tbuild_link(f->b, L->d));
	gfs_tbuild_free(f->b);
	f->b = NULL;
	return rc;
}

/* Puts table t's rows; the previous table is linked once they are in,
 * and t's own finish starts. */
static int commit_table(struct loader *L, size_t t, struct finisher *f)
{
	struct gfs_commit_table *ts = &L->c.ts[t];
	struct gfs_tbuild *b = NULL;
	int rc;

	rc = gfs_tbuild_new(gfs_graph_tables(L->g), ts->table, ts->tv,
			    (unsigned)gfs_codec_n_unique(&L->s->types[t]),
			    L->o->mode == GFS_LOAD_OVERWRITE ? GFS_TBUILD_REPLACE : 0, &b);
	if (!rc)
		rc = put_rows(L, t, b);
	if (rc)
		finish_end(f, true);
	else
		rc = finish_end(f, false);
	if (rc) {
		gfs_tbuild_free(b);
		return rc;
	}
	finish_start(f, L, t, b);
	return 0;
}

/* The log record's detail: mode, lines, rows, source. */
static int load_detail(struct loader *L, struct gfs_buf *detail)
{
	const char *src = L->o->source ? L->o->source : "-";
	int rc = gfs_buf_appendf(detail, "{\"mode\":\"%s\",\"lines\":%" PRIu64 ",\"rows\":%" PRIu64 ",\"source\":",
				 mode_names[L->o->mode], L->lines, L->n);

	if (!rc)
		rc = gfs_buf_append_json_str(detail, src, strlen(src));
	if (!rc)
		rc = gfs_buf_appendc(detail, '}');
	return rc;
}

/* B: one new version per written table, then confirm (the commit point). */
static int commit_tables(struct loader *L)
{
	struct finisher fin = { .L = L };
	int rc = gfs_commit_fp(GFS_FP_COMMIT_AFTER_SIDECAR);

	if (!rc)
		rc = rows_open(L, &L->w, false);
	if (!rc)
		rc = L->wstate = rows_next(&L->w, &L->wrec);
	if (rc > 0)
		rc = 0;
	for (size_t t = 0; !rc && t < L->s->n_types; t++)
		if (L->c.ts[t].written)
			rc = commit_table(L, t, &fin);
	if (rc)
		finish_end(&fin, true);
	else
		rc = finish_end(&fin, false);
	rows_close(&L->w);
	if (!rc)
		rc = gfs_commit_confirm(&L->c);
	return rc;
}

static int write_phase(struct loader *L, uint64_t *version)
{
	struct gfs_buf detail;
	int rc;

	progress(L, GFS_PHASE_WRITE, L->n);
	rc = gfs_commit_arm(&L->c);
	if (rc)
		return rc;
	gfs_buf_init(&detail);
	rc = commit_tables(L);
	progress(L, GFS_PHASE_PUBLISH, L->n);
	if (!rc)
		rc = load_detail(L, &detail);
	rc = gfs_commit_finish(&L->c, rc, "load", detail.p, version);
	gfs_buf_release(&detail);
	return rc;
}

/* ---- the whole load ---------------------------------------------------- */

/* GRAPHFS_LOAD_MEM_BYTES: the rows' sorter budget in bytes (tests make it
 * tiny to spill on every few rows); unset or unparsable: the default. */
static size_t mem_budget(void)
{
	const char *s = getenv("GRAPHFS_LOAD_MEM_BYTES");
	unsigned long long v;
	char *end;

	if (!s || !*s)
		return LOAD_MEM_DEFAULT;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > SIZE_MAX)
		return LOAD_MEM_DEFAULT;
	return (size_t)v;
}

static int setup(struct loader *L)
{
	struct gfs_gv *gv = NULL;
	const char *br = L->o->branch ? L->o->branch : "main";
	int rc = gfs_manifest_branch_head(gfs_graph_manifest(L->g), br, &gv);

	if (rc == -ENOENT)
		gfs_diag_set(L->d, "no branch '%s' (see 'graphctl branch list')", br);
	if (!rc)
		rc = gfs_graph_schema(L->g, gv->schema_id, &L->s, L->d);
	gfs_gv_free(gv);
	if (!rc && !(L->count = calloc(L->s->n_types + 1, sizeof *L->count)))
		rc = -ENOMEM;
	if (!rc)
		rc = gfs_commit_init(&L->c, L->g, L->s, "load", L->o->actor, "load", L->d);
	L->c.branch = L->o->branch;
	snprintf(L->staging, sizeof L->staging, "%s/staging", gfs_graph_dir(L->g));
	if (!rc && (rc = gfs_mkdir(L->staging, GFS_DIR_MODE)))
		gfs_diag_set(L->d, "create '%s': %s", L->staging, gfs_strerror(rc));
	L->budget = mem_budget();
	if (!rc)
		rc = new_sorter(L, L->budget, row_cmp, &L->rows);
	return rc;
}

static void sorter_free(struct loader *L, struct gfs_xsort **x)
{
	struct gfs_xsort_stats st;

	if (!*x)
		return;
	gfs_xsort_stats(*x, &st);
	L->sorted.records += st.records;
	L->sorted.runs += st.runs;
	L->sorted.run_bytes += st.run_bytes;
	L->sorted.merges += st.merges;
	gfs_xsort_free(*x);
	*x = NULL;
}

static void free_sorters(struct loader *L)
{
	sorter_free(L, &L->rows);
	sorter_free(L, &L->ends[0]);
	sorter_free(L, &L->ends[1]);
	sorter_free(L, &L->ukeys);
	sorter_free(L, &L->claims);
	sorter_free(L, &L->cards);
}

static void teardown(struct loader *L)
{
	gfs_commit_release(&L->c);
	rows_close(&L->w);
	free_sorters(L);
	free(L->count);
	gfs_buf_release(&L->enc);
	gfs_buf_release(&L->ukenc);
	gfs_buf_release(&L->err_rec);
}


static int lock_and_validate(struct loader *L)
{
	int rc;

	progress(L, GFS_PHASE_LOCK, L->n);
	rc = gfs_commit_lock(&L->c, GFS_FP_LOAD_AFTER_HEAL, GFS_FP_LOAD_AFTER_LOCKS);
	if (!rc)
		rc = gfs_commit_pin(&L->c);
	if (rc == GFS_ECAS)
		gfs_diag_set(L->d, "the schema changed while the file was read; load again");
	if (!rc)
		rc = validate(L);
	return rc;
}

int gfs_graph_load(struct gfs_graph *g, int fd, const struct gfs_load_opts *o,
		   struct gfs_load_result *res, struct gfs_diag *d)
{
	struct loader L = { .g = g, .o = o, .d = d, .phase = -1 };
	uint64_t version = 0;
	int rc;

	memset(res, 0, sizeof *res);
	phase_switch(&L, GFS_PHASE_PARSE);
	gfs_buf_init(&L.enc);
	gfs_buf_init(&L.ukenc);
	gfs_buf_init(&L.err_rec);
	rc = setup(&L);
	if (!rc)
		rc = parse_stream(&L, fd);
	if (!rc && L.n == 0) {
		gfs_diag_set(d, "%s %s: nothing to load", o->source ? o->source : "input",
			     L.lines ? "has only blank lines" : "is empty");
		rc = GFS_EDATA;
	}
	if (!rc)
		rc = gfs_commit_fp(GFS_FP_LOAD_AFTER_STAGE);
	if (!rc)
		rc = sort_phase(&L);
	if (!rc)
		plan_tables(&L);
	if (!rc)
		rc = lock_and_validate(&L);
	if (!rc)
		rc = write_phase(&L, &version);
	phase_switch(&L, -1);
	free_sorters(&L);
	if (!rc) {
		res->version = version;
		res->lines = L.lines;
		res->rows_put = L.n;
		res->bytes = L.bytes;
		memcpy(res->phase_ns, L.phase_ns, sizeof res->phase_ns);
		memcpy(res->op_id, L.c.op_id, sizeof res->op_id);
		res->sort_runs = L.sorted.runs;
		res->sort_bytes = L.sorted.run_bytes;
	}
	teardown(&L);
	return rc;
}
