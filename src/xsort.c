/* xsort.c - external sort of variable-length records (xsort.h).
 *
 * Memory: the batch (records back to back, each a 4-byte length + bytes,
 * and one 8-byte offset per record) grows up to the budget; a run on disk
 * has the same framing.  Runs are extents of one O_TMPFILE file; a group
 * merge appends its output to it (the merged extents are not given back
 * before the file is closed: a level of group merges, needed past 64 runs,
 * doubles the file; no fallocate hole punching, which the power-cut
 * recorder, tests/powercut/record.c, would have to model).
 * Stability: the batch's sort is a stable merge sort (batch_sort) and the
 * merge of runs breaks ties by run index, runs being in input order.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "xsort.h"

#define WBUF ((size_t)256 << 10) /* run write buffer */
#define RBUF ((size_t)64 << 10)  /* per-run read buffer of an iterator */
#define HDR 4                     /* record length prefix */

struct run {
	uint64_t off, len; /* extent in the run file */
};

struct gfs_xsort {
	char *dir;
	size_t budget;
	gfs_xsort_cmp cmp;
	void *arg;
	char *data; /* the batch: [u32 len][bytes]... */
	size_t dlen, dcap;
	size_t *offs; /* record offsets in data, sorted at finish/spill */
	size_t n, ocap;
	bool finished;
	int fd;          /* run file, -1 until the first spill */
	uint64_t flen;   /* its length */
	struct gfs_buf w; /* write buffer */
	struct run *runs;
	size_t nruns, rcap;
	struct gfs_xsort_stats st;
};

static uint32_t get32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

int gfs_xsort_new(const char *dir, size_t budget, gfs_xsort_cmp cmp,
		  void *arg, struct gfs_xsort **out)
{
	struct gfs_xsort *x = calloc(1, sizeof *x);

	*out = NULL;
	if (!x || !(x->dir = gfs_strdup(dir))) {
		free(x);
		return -ENOMEM;
	}
	x->budget = budget ? budget : 1;
	x->cmp = cmp;
	x->arg = arg;
	x->fd = -1;
	gfs_buf_init(&x->w);
	*out = x;
	return 0;
}

void gfs_xsort_free(struct gfs_xsort *x)
{
	if (!x)
		return;
	if (x->fd >= 0)
		close(x->fd);
	gfs_buf_release(&x->w);
	free(x->data);
	free(x->offs);
	free(x->runs);
	free(x->dir);
	free(x);
}

void gfs_xsort_stats(const struct gfs_xsort *x, struct gfs_xsort_stats *out)
{
	*out = x->st;
}

/* ---- the batch ---------------------------------------------------------- */

/* Is the record at offset a strictly before the one at b? */
static bool before(const struct gfs_xsort *x, size_t a, size_t b)
{
	const char *pa = x->data + a, *pb = x->data + b;

	return x->cmp(pa + HDR, get32(pa), pb + HDR, get32(pb), x->arg) < 0;
}

/* The end of the non-decreasing run of v that starts at i. */
static size_t run_end(const struct gfs_xsort *x, const size_t *v, size_t i,
		      size_t n)
{
	size_t j = i + 1;

	while (j < n && !before(x, v[j], v[j - 1]))
		j++;
	return j;
}

/* Sorts v[i, e) whose prefix v[i, j) is sorted, by insertion (stable). */
static void insertion(const struct gfs_xsort *x, size_t *v, size_t i,
		      size_t j, size_t e)
{
	for (size_t k = j; k < e; k++) {
		size_t o = v[k], p = k;
		while (p > i && before(x, o, v[p - 1])) {
			v[p] = v[p - 1];
			p--;
		}
		v[p] = o;
	}
}

/* Merges the sorted src[lo, mid) and src[mid, hi) into dst[lo, hi); on a
 * tie the left one comes first (stable). */
static void merge2(const struct gfs_xsort *x, const size_t *src, size_t lo,
		   size_t mid, size_t hi, size_t *dst)
{
	size_t i = lo, j = mid, k = lo;

	while (i < mid && j < hi)
		dst[k++] = before(x, src[j], src[i]) ? src[j++] : src[i++];
	while (i < mid)
		dst[k++] = src[i++];
	while (j < hi)
		dst[k++] = src[j++];
}

/* A stable natural merge sort of the batch's offsets (TimSort's idea
 * without its galloping): runs already in order are found in one pass and
 * short ones extended to MINRUN by insertion, then merged pairwise.  Rows
 * often come in order (an export, edges whose ids begin with their
 * source): a sorted batch costs n - 1 comparisons; a random one about as
 * many as any merge sort.  Extra memory: n + n / MINRUN offsets. */
#define MINRUN 16

static int batch_sort(struct gfs_xsort *x)
{
	size_t n = x->n, nb = 0, *src = x->offs, *dst, *bounds, *tmp;

	if (n < 2)
		return 0;
	tmp = malloc(n * sizeof *tmp);
	bounds = malloc((n / MINRUN + 2) * sizeof *bounds);
	if (!tmp || !bounds) {
		free(tmp);
		free(bounds);
		return -ENOMEM;
	}
	for (size_t i = 0, j; i < n; i = j) {
		j = run_end(x, src, i, n);
		if (j - i < MINRUN && j < n) {
			size_t e = i + MINRUN < n ? i + MINRUN : n;
			insertion(x, src, i, j, e);
			j = e;
		}
		bounds[nb++] = i;
	}
	bounds[nb] = n;
	for (dst = tmp; nb > 1;) {
		size_t w = 0, *t;
		for (size_t r = 0; r < nb; r += 2) {
			size_t hi = r + 1 < nb ? bounds[r + 2] : bounds[r + 1];
			merge2(x, src, bounds[r], bounds[r + 1], hi, dst);
			bounds[w++] = bounds[r];
		}
		bounds[w] = n;
		nb = w;
		t = src;
		src = dst;
		dst = t;
	}
	if (src != x->offs)
		memcpy(x->offs, src, n * sizeof *src);
	free(tmp);
	free(bounds);
	return 0;
}

static int open_runs(struct gfs_xsort *x)
{
	x->fd = open(x->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (x->fd < 0)
		return gfs_io_fail("create sort run file in", x->dir, -errno);
	return 0;
}

static int wflush(struct gfs_xsort *x)
{
	int rc = 0;

	if (x->w.len)
		rc = gfs_pwrite_all(x->fd, x->w.p, x->w.len, (off_t)x->flen);
	if (!rc) {
		x->flen += x->w.len;
		x->st.run_bytes += x->w.len;
	}
	gfs_buf_reset(&x->w);
	return rc;
}

/* Appends one framed record to the run file (through the write buffer). */
static int wrec(struct gfs_xsort *x, const char *rec, size_t len)
{
	uint32_t l = (uint32_t)len;
	int rc = 0;

	if (x->w.len + HDR + len > WBUF)
		rc = wflush(x);
	if (!rc && !x->w.cap)
		rc = gfs_buf_reserve(&x->w, WBUF);
	if (!rc)
		rc = gfs_buf_append(&x->w, &l, HDR);
	if (!rc)
		rc = gfs_buf_append(&x->w, rec, len);
	return rc;
}

static int add_run(struct gfs_xsort *x, uint64_t off, uint64_t len)
{
	struct run *r = gfs_array_grow(x->runs, &x->rcap, x->nruns, sizeof *r, 16);

	if (!r)
		return -ENOMEM;
	x->runs = r;
	x->runs[x->nruns++] = (struct run){ off, len };
	return 0;
}

/* Sorts the batch, writes it as a run, empties it. */
static int spill(struct gfs_xsort *x)
{
	uint64_t start;
	int rc = 0;

	if (x->fd < 0)
		rc = open_runs(x);
	if (rc)
		return rc;
	rc = batch_sort(x);
	start = x->flen;
	for (size_t i = 0; !rc && i < x->n; i++) {
		const char *p = x->data + x->offs[i];
		rc = wrec(x, p + HDR, get32(p));
	}
	if (!rc)
		rc = wflush(x);
	if (!rc)
		rc = add_run(x, start, x->flen - start);
	if (!rc)
		x->st.runs++;
	x->dlen = 0;
	x->n = 0;
	return rc;
}

/* Room for `need` more bytes in data, growing by doubling up to the budget
 * (or exactly to what one oversized record needs). */
static int reserve(struct gfs_xsort *x, size_t need)
{
	size_t cap = x->dcap ? x->dcap : 4096;
	char *p;

	if (x->dlen + need <= x->dcap)
		return 0;
	while (cap < x->dlen + need)
		cap *= 2;
	if (cap > x->budget)
		cap = x->budget > x->dlen + need ? x->budget : x->dlen + need;
	if (!(p = realloc(x->data, cap)))
		return -ENOMEM;
	x->data = p;
	x->dcap = cap;
	return 0;
}

int gfs_xsort_add(struct gfs_xsort *x, const void *rec, size_t len)
{
	size_t need = HDR + len, *o;
	uint32_t l = (uint32_t)len;
	int rc = 0;

	if (x->finished || len > UINT32_MAX)
		return -EINVAL;
	if (x->n && x->dlen + need + (x->n + 1) * sizeof *x->offs > x->budget)
		rc = spill(x);
	if (!rc)
		rc = reserve(x, need);
	if (rc)
		return rc;
	if (!(o = gfs_array_grow(x->offs, &x->ocap, x->n, sizeof *o, 256)))
		return -ENOMEM;
	x->offs = o;
	x->offs[x->n++] = x->dlen;
	memcpy(x->data + x->dlen, &l, HDR);
	if (len)
		memcpy(x->data + x->dlen + HDR, rec, len);
	x->dlen += need;
	x->st.records++;
	return 0;
}

/* ---- merging ------------------------------------------------------------ */

/* A run being read.  Two buffers take turns: a refill copies what is
 * left into the other one, so the record returned before stays where it
 * is (xsort.h: a record is valid through the next call). */
struct reader {
	uint64_t off, end; /* next unread byte of the run in the file, its end */
	char *buf[2];
	size_t cap[2];
	int cur;              /* the buffer in use */
	size_t pos, len;      /* buf[cur][pos, len) holds unconsumed bytes */
	const char *rec;      /* current record, NULL at the end */
	size_t rlen;
};

struct gfs_xsort_iter {
	struct gfs_xsort *x;
	size_t next;  /* in-memory mode: index in x->offs */
	struct reader *rd;
	size_t nrd;
	size_t *heap; /* reader indexes, a min-heap on (record, index) */
	size_t nheap;
	bool started;
};

/* Makes `want` bytes available at buf[pos]. */
static int grow(struct reader *r, int b, size_t cap)
{
	char *p;

	if (cap <= r->cap[b])
		return 0;
	if (!(p = realloc(r->buf[b], cap)))
		return -ENOMEM;
	r->buf[b] = p;
	r->cap[b] = cap;
	return 0;
}

/* Makes `want` bytes available at buf[cur][pos].  Bytes before pos (the
 * record returned last) are never moved: what is left goes to the other
 * buffer, unless nothing of this one was consumed yet (pos 0), which then
 * may grow in place. */
static int fill(struct gfs_xsort *x, struct reader *r, size_t want)
{
	size_t n, cap = want > RBUF ? want : RBUF;
	int rc;

	if (r->len - r->pos >= want)
		return 0;
	if (r->pos > 0 || !r->buf[r->cur]) {
		int o = !r->cur;
		if ((rc = grow(r, o, cap)))
			return rc;
		if (r->len > r->pos)
			memcpy(r->buf[o], r->buf[r->cur] + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
		r->cur = o;
	} else if ((rc = grow(r, r->cur, cap))) {
		return rc;
	}
	n = r->cap[r->cur] - r->len;
	if (n > r->end - r->off)
		n = (size_t)(r->end - r->off);
	if (r->len + n < want)
		return -EIO; /* a run shorter than its framing: cannot happen */
	rc = gfs_pread_all(x->fd, r->buf[r->cur] + r->len, n, (off_t)r->off);
	if (rc)
		return rc;
	r->off += n;
	r->len += n;
	return 0;
}

/* Advances r to its next record (r->rec NULL at the end of the run). */
static int advance(struct gfs_xsort *x, struct reader *r)
{
	uint32_t l;
	int rc;

	if (r->pos == r->len && r->off == r->end) {
		r->rec = NULL;
		return 0;
	}
	rc = fill(x, r, HDR);
	if (!rc) {
		l = get32(r->buf[r->cur] + r->pos);
		rc = fill(x, r, HDR + (size_t)l);
	}
	if (rc)
		return rc;
	r->rec = r->buf[r->cur] + r->pos + HDR;
	r->rlen = l;
	r->pos += HDR + l;
	return 0;
}

static bool heap_less(const struct gfs_xsort_iter *it, size_t a, size_t b)
{
	const struct reader *ra = &it->rd[a], *rb = &it->rd[b];
	int c = it->x->cmp(ra->rec, ra->rlen, rb->rec, rb->rlen, it->x->arg);

	return c < 0 || (c == 0 && a < b);
}

static void sift_down(struct gfs_xsort_iter *it, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < it->nheap && heap_less(it, it->heap[l], it->heap[m]))
			m = l;
		if (l + 1 < it->nheap && heap_less(it, it->heap[l + 1], it->heap[m]))
			m = l + 1;
		if (m == i)
			return;
		size_t t = it->heap[i];
		it->heap[i] = it->heap[m];
		it->heap[m] = t;
		i = m;
	}
}

static void iter_release(struct gfs_xsort_iter *it)
{
	for (size_t i = 0; i < it->nrd; i++) {
		free(it->rd[i].buf[0]);
		free(it->rd[i].buf[1]);
	}
	free(it->rd);
	free(it->heap);
}

/* An iterator merging runs [a, b). */
static int iter_runs(struct gfs_xsort *x, size_t a, size_t b,
		     struct gfs_xsort_iter *it)
{
	memset(it, 0, sizeof *it);
	it->x = x;
	it->nrd = b - a;
	it->rd = calloc(it->nrd + 1, sizeof *it->rd);
	it->heap = calloc(it->nrd + 1, sizeof *it->heap);
	if (!it->rd || !it->heap)
		return -ENOMEM;
	for (size_t i = 0; i < it->nrd; i++) {
		struct reader *r = &it->rd[i];
		r->off = x->runs[a + i].off;
		r->end = r->off + x->runs[a + i].len;
	}
	return 0;
}

static int merge_next(struct gfs_xsort_iter *it, const void **rec, size_t *len)
{
	int rc = 0;

	if (!it->started) {
		it->started = true;
		for (size_t i = 0; !rc && i < it->nrd; i++) {
			rc = advance(it->x, &it->rd[i]);
			if (!rc && it->rd[i].rec)
				it->heap[it->nheap++] = i;
		}
		for (size_t i = it->nheap / 2; !rc && i-- > 0;)
			sift_down(it, i);
	} else if (it->nheap) {
		/* The record returned last is consumed now, not before. */
		struct reader *r = &it->rd[it->heap[0]];
		rc = advance(it->x, r);
		if (!rc && !r->rec)
			it->heap[0] = it->heap[--it->nheap];
		if (!rc && it->nheap)
			sift_down(it, 0);
	}
	if (rc)
		return rc;
	if (!it->nheap)
		return 0;
	*rec = it->rd[it->heap[0]].rec;
	*len = it->rd[it->heap[0]].rlen;
	return 1;
}

/* Merges runs [0, FANIN) into one run that takes their place. */
static int merge_group(struct gfs_xsort *x)
{
	struct gfs_xsort_iter it;
	uint64_t start = x->flen;
	const void *rec;
	size_t len;
	int rc = iter_runs(x, 0, GFS_XSORT_FANIN, &it);

	while (!rc && (rc = merge_next(&it, &rec, &len)) == 1)
		rc = wrec(x, rec, len);
	if (!rc)
		rc = wflush(x);
	iter_release(&it);
	if (rc)
		return rc;
	x->runs[0] = (struct run){ start, x->flen - start };
	memmove(x->runs + 1, x->runs + GFS_XSORT_FANIN,
		(x->nruns - GFS_XSORT_FANIN) * sizeof *x->runs);
	x->nruns -= GFS_XSORT_FANIN - 1;
	x->st.merges++;
	return 0;
}

int gfs_xsort_finish(struct gfs_xsort *x)
{
	int rc = 0;

	if (x->finished)
		return 0;
	x->finished = true;
	if (x->nruns && x->n)
		rc = spill(x);
	else
		rc = batch_sort(x);
	/* Merge the oldest runs first: the merged run stays in input order. */
	while (!rc && x->nruns > GFS_XSORT_FANIN)
		rc = merge_group(x);
	if (x->nruns) { /* the batch memory is not needed any more */
		free(x->data);
		free(x->offs);
		x->data = NULL;
		x->offs = NULL;
		x->dcap = x->ocap = 0;
	}
	gfs_buf_release(&x->w);
	return rc;
}

int gfs_xsort_iter_new(struct gfs_xsort *x, struct gfs_xsort_iter **out)
{
	struct gfs_xsort_iter *it = calloc(1, sizeof *it);
	int rc;

	*out = NULL;
	if (!it)
		return -ENOMEM;
	if (!x->finished) {
		free(it);
		return -EINVAL;
	}
	rc = iter_runs(x, 0, x->nruns, it);
	if (rc) {
		iter_release(it);
		free(it);
		return rc;
	}
	*out = it;
	return 0;
}

int gfs_xsort_iter_next(struct gfs_xsort_iter *it, const void **rec,
			size_t *len)
{
	const struct gfs_xsort *x = it->x;

	if (x->nruns)
		return merge_next(it, rec, len);
	if (it->next >= x->n)
		return 0;
	const char *p = x->data + x->offs[it->next++];
	*rec = p + HDR;
	*len = get32(p);
	return 1;
}

void gfs_xsort_iter_free(struct gfs_xsort_iter *it)
{
	if (!it)
		return;
	iter_release(it);
	free(it);
}
