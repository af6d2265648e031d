/* table_store.c - what a table store shares between its versions: file
 * descriptors on segments and the cache of parsed B+tree pages.
 *
 * Why (issue 7): a table that spans many segment files used to thrash a
 * 32-slot fd cache (an open and a close per page read), and every page was
 * read and verified again on every request.  Now:
 *
 * 1. Each gfs_tver keeps an fd on every segment it reads from, opened on
 *    first use (seg_fd) and closed by gfs_tver_close; a version's own file
 *    is tv->fd.  All versions together hold at most ts->fd_budget of them
 *    (counted in ts->fds_held); past it, or when open() says EMFILE or
 *    ENFILE, a read borrows a slot of the store's shared cache (ts->slot,
 *    LRU), closing an idle slot to make room if it must, or else one of
 *    the version's own fds that no read is using (each is marked busy
 *    during its pread).  Running out also lowers the budget to what is
 *    held.  So a read fails for want of an fd only if none at all can be
 *    freed.
 * 2. Pages live in one cache per store keyed by (table, segment, offset):
 *    a segment's bytes never change once linked, so a page is the same for
 *    every version that references it.  A page is checksummed and parsed
 *    once, when it enters.  Entries are refcounted (a path holds one
 *    reference per page); unreferenced ones sit on an LRU list and are
 *    evicted to keep ts->bytes under ts->budget.  ts->pc_mu protects it
 *    all and is never held across a read.
 *
 * Lock order: tv->fd_mu, then ts->mu.  ts->pc_mu is taken alone.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "table.h"
#include "table_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define PC_MIN_BUCKETS 1024u

/* ---- the store -------------------------------------------------------- */

/* Half the soft fd limit: the rest is the caller's (FUSE, clients). */
static long default_fd_budget(void)
{
	struct rlimit rl;
	rlim_t half = (rlim_t)1 << 20;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 2 < half)
		half = rl.rlim_cur / 2;
	return half < 64 ? 64 : (long)half;
}

int gfs_tstore_open(const char *store_dir, struct gfs_tstore **out)
{
	struct gfs_tstore *ts;
	size_t n;

	*out = NULL;
	if (!store_dir)
		return -EINVAL;
	ts = calloc(1, sizeof *ts);
	if (!ts)
		return -ENOMEM;
	n = strlen(store_dir) + sizeof "/tables";
	ts->dir = malloc(n);
	ts->bucket = calloc(PC_MIN_BUCKETS, sizeof *ts->bucket);
	if (!ts->dir || !ts->bucket) {
		free(ts->dir);
		free(ts->bucket);
		free(ts);
		return -ENOMEM;
	}
	snprintf(ts->dir, n, "%s/tables", store_dir);
	pthread_mutex_init(&ts->mu, NULL);
	pthread_mutex_init(&ts->pc_mu, NULL);
	for (int i = 0; i < TS_SLOTS; i++)
		ts->slot[i].fd = -1;
	ts->nbucket = PC_MIN_BUCKETS;
	ts->budget = GFS_TSTORE_PAGE_CACHE_DEFAULT;
	ts->lru.lnext = ts->lru.lprev = &ts->lru;
	ts->fd_budget = default_fd_budget();
	*out = ts;
	return 0;
}

static void page_destroy(struct page *pg)
{
	free(pg->buf);
	free(pg->eo);
	free(pg);
}

/* Every version and path must be gone: cached pages are freed as they are. */
void gfs_tstore_close(struct gfs_tstore *ts)
{
	if (!ts)
		return;
	for (size_t b = 0; b < ts->nbucket; b++)
		while (ts->bucket[b]) {
			struct page *pg = ts->bucket[b];

			ts->bucket[b] = pg->hnext;
			page_destroy(pg);
		}
	for (int i = 0; i < TS_SLOTS; i++) {
		if (ts->slot[i].fd >= 0)
			close(ts->slot[i].fd);
		free(ts->slot[i].table);
	}
	for (size_t i = 0; i < ts->n_names; i++)
		free(ts->names[i]);
	free(ts->names);
	free(ts->bucket);
	pthread_mutex_destroy(&ts->pc_mu);
	pthread_mutex_destroy(&ts->mu);
	free(ts->dir);
	free(ts);
}

void gfs_tstore_set_fd_budget(struct gfs_tstore *ts, long fds)
{
	__atomic_store_n(&ts->fd_budget, fds < 0 ? 0 : fds, __ATOMIC_RELAXED);
}

void gfs_tstore_stats(struct gfs_tstore *ts, struct gfs_tstore_stats *out)
{
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&ts->pc_mu);
	out->page_hits = ts->hits;
	out->page_misses = ts->misses;
	out->page_evictions = ts->evictions;
	out->pages = ts->npages;
	out->page_bytes = ts->bytes;
	out->page_budget = ts->budget;
	pthread_mutex_unlock(&ts->pc_mu);
	out->preads = __atomic_load_n(&ts->preads, __ATOMIC_RELAXED);
	out->fds_held = (uint64_t)__atomic_load_n(&ts->fds_held, __ATOMIC_RELAXED);
	out->fd_fallbacks = __atomic_load_n(&ts->fd_fallbacks, __ATOMIC_RELAXED);
}

/* The table's number in this store (the page cache's key), assigning the
 * next one to a name seen first. */
int tbl_table_id(struct gfs_tstore *ts, const char *table, uint32_t *tid)
{
	int rc = 0;
	size_t i;

	pthread_mutex_lock(&ts->mu);
	for (i = 0; i < ts->n_names && strcmp(ts->names[i], table); i++)
		;
	if (i == ts->n_names) {
		char **nv = gfs_array_grow(ts->names, &ts->cap_names, ts->n_names,
					   sizeof *nv, 16);
		char *s = nv ? gfs_strdup(table) : NULL;

		if (nv)
			ts->names = nv;
		if (s)
			ts->names[ts->n_names++] = s;
		else
			rc = -ENOMEM;
	}
	pthread_mutex_unlock(&ts->mu);
	*tid = (uint32_t)i;
	return rc;
}

/* ---- the shared fd cache (fallback) ------------------------------------ */

static int open_version_fd(struct gfs_tstore *ts, const char *table,
			   uint32_t v)
{
	char path[PATH_MAX];
	int rc = tbl_verpath(path, sizeof path, ts->dir, table, v);

	if (rc)
		return rc;
	rc = open(path, O_RDONLY | O_CLOEXEC);
	return rc < 0 ? gfs_io_fail("open", path, -errno) : rc;
}

static int slot_victim(struct gfs_tstore *ts)
{
	int v = -1;

	for (int i = 0; i < TS_SLOTS; i++) {
		if (ts->slot[i].fd < 0)
			return i;
		if (ts->slot[i].refs == 0 &&
		    (v < 0 || ts->slot[i].used < ts->slot[v].used))
			v = i;
	}
	return v;
}

static bool fd_shortage(int rc)
{
	return rc == -EMFILE || rc == -ENFILE;
}

/* Out of fds: closes the least recently used idle slot.  false: none. */
static bool slot_close_idle(struct gfs_tstore *ts)
{
	int v = -1;

	for (int i = 0; i < TS_SLOTS; i++)
		if (ts->slot[i].fd >= 0 && ts->slot[i].refs == 0 &&
		    (v < 0 || ts->slot[i].used < ts->slot[v].used))
			v = i;
	if (v < 0)
		return false;
	close(ts->slot[v].fd);
	ts->slot[v].fd = -1;
	free(ts->slot[v].table);
	ts->slot[v].table = NULL;
	return true;
}

/* Returns an fd on (table, v) and in *slot what to hand to ts_release. */
static int ts_acquire(struct gfs_tstore *ts, const char *table, uint32_t v,
		      int *slot)
{
	int fd, i;

	pthread_mutex_lock(&ts->mu);
	for (i = 0; i < TS_SLOTS; i++) {
		struct fdslot *s = &ts->slot[i];

		if (s->fd >= 0 && s->ver == v && !strcmp(s->table, table)) {
			s->refs++;
			s->used = ++ts->clock;
			*slot = i;
			pthread_mutex_unlock(&ts->mu);
			return s->fd;
		}
	}
	fd = open_version_fd(ts, table, v);
	if (fd_shortage(fd) && slot_close_idle(ts))
		fd = open_version_fd(ts, table, v);
	i = fd < 0 ? -1 : slot_victim(ts);
	*slot = -1;
	if (i >= 0) {
		char *t = gfs_strdup(table);

		if (t) {
			struct fdslot *s = &ts->slot[i];

			if (s->fd >= 0)
				close(s->fd);
			free(s->table);
			*s = (struct fdslot){ t, v, fd, 1, ++ts->clock };
			*slot = i;
		}
	}
	pthread_mutex_unlock(&ts->mu);
	return fd;
}

static void ts_release(struct gfs_tstore *ts, int slot, int fd)
{
	if (slot < 0) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&ts->mu);
	ts->slot[slot].refs--;
	pthread_mutex_unlock(&ts->mu);
}

/* ---- per-version fds --------------------------------------------------- */

/* Index of the first entry with seg >= s.  Caller holds tv->fd_mu. */
static size_t segfd_find(const struct gfs_tver *tv, uint32_t s)
{
	size_t lo = 0, hi = tv->nsegfd;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (tv->segfd[mid].seg < s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The fd tv holds on seg, marked busy (segfd_done unmarks it); -1 if none.
 * A busy fd is never closed by segfd_steal. */
static int segfd_take(struct gfs_tver *tv, uint32_t seg)
{
	size_t i;
	int fd = -1;

	pthread_mutex_lock(&tv->fd_mu);
	i = segfd_find(tv, seg);
	if (i < tv->nsegfd && tv->segfd[i].seg == seg) {
		fd = tv->segfd[i].fd;
		tv->segfd[i].busy++;
	}
	pthread_mutex_unlock(&tv->fd_mu);
	return fd;
}

static void segfd_done(struct gfs_tver *tv, uint32_t seg)
{
	size_t i;

	pthread_mutex_lock(&tv->fd_mu);
	i = segfd_find(tv, seg);
	assert(i < tv->nsegfd && tv->segfd[i].seg == seg);
	tv->segfd[i].busy--;
	pthread_mutex_unlock(&tv->fd_mu);
}

/* Keeps fd for seg (busy), or closes it if another thread was first;
 * returns the fd to use, -1 if there was no memory to keep it. */
static int segfd_insert(struct gfs_tver *tv, uint32_t seg, int fd)
{
	struct segfd *nv;
	size_t i;

	pthread_mutex_lock(&tv->fd_mu);
	i = segfd_find(tv, seg);
	if (i < tv->nsegfd && tv->segfd[i].seg == seg) {
		close(fd);
		fd = tv->segfd[i].fd;
		tv->segfd[i].busy++;
		__atomic_fetch_sub(&tv->ts->fds_held, 1, __ATOMIC_RELAXED);
	} else if ((nv = gfs_array_grow(tv->segfd, &tv->capsegfd, tv->nsegfd,
					sizeof *nv, 8))) {
		tv->segfd = nv;
		memmove(nv + i + 1, nv + i, (tv->nsegfd - i) * sizeof *nv);
		nv[i] = (struct segfd){ seg, fd, 1 };
		tv->nsegfd++;
	} else {
		close(fd);
		fd = -1;
		__atomic_fetch_sub(&tv->ts->fds_held, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&tv->fd_mu);
	return fd;
}

/* Out of fds altogether: closes one of tv's idle fds.  false: none. */
static bool segfd_steal(struct gfs_tver *tv)
{
	bool done = false;

	pthread_mutex_lock(&tv->fd_mu);
	for (size_t i = tv->nsegfd; i-- > 0 && !done;) {
		if (tv->segfd[i].busy)
			continue;
		close(tv->segfd[i].fd);
		memmove(tv->segfd + i, tv->segfd + i + 1,
			(tv->nsegfd - i - 1) * sizeof *tv->segfd);
		tv->nsegfd--;
		__atomic_fetch_sub(&tv->ts->fds_held, 1, __ATOMIC_RELAXED);
		done = true;
	}
	pthread_mutex_unlock(&tv->fd_mu);
	return done;
}

/* Opens seg for tv to keep (busy), within the store's budget: the fd, or
 * -1 to fall back on the shared cache (over budget, out of fds, no
 * memory), or another -errno.  Running out of fds lowers the budget to
 * what is held: past that, opening would only fail again. */
static int segfd_open(struct gfs_tver *tv, uint32_t seg)
{
	struct gfs_tstore *ts = tv->ts;
	long held = __atomic_add_fetch(&ts->fds_held, 1, __ATOMIC_RELAXED);
	int fd;

	if (held > __atomic_load_n(&ts->fd_budget, __ATOMIC_RELAXED)) {
		__atomic_fetch_sub(&ts->fds_held, 1, __ATOMIC_RELAXED);
		return -1;
	}
	fd = open_version_fd(ts, tv->table, seg);
	if (fd < 0) {
		held = __atomic_sub_fetch(&ts->fds_held, 1, __ATOMIC_RELAXED);
		if (!fd_shortage(fd))
			return fd;
		__atomic_store_n(&ts->fd_budget, held, __ATOMIC_RELAXED);
		return -1;
	}
	return segfd_insert(tv, seg, fd);
}

void tbl_tver_close_fds(struct gfs_tver *tv)
{
	for (size_t i = 0; i < tv->nsegfd; i++)
		close(tv->segfd[i].fd);
	__atomic_fetch_sub(&tv->ts->fds_held, (long)tv->nsegfd,
			   __ATOMIC_RELAXED);
	free(tv->segfd);
	tv->segfd = NULL;
	tv->nsegfd = tv->capsegfd = 0;
}

/* Reads len bytes at off of segment seg as seen from tv. */
int tbl_seg_read(struct gfs_tver *tv, uint32_t seg, uint64_t off, void *buf,
		 size_t len)
{
	int fd, slot, rc;

	if (seg == 0 || seg > tv->version || off > (uint64_t)INT64_MAX - len)
		return GFS_ECORRUPT;
	__atomic_fetch_add(&tv->ts->preads, 1, __ATOMIC_RELAXED);
	if (seg == tv->version)
		return gfs_pread_all(tv->fd, buf, len, (off_t)off);
	fd = segfd_take(tv, seg);
	if (fd < 0)
		fd = segfd_open(tv, seg);
	if (fd >= 0) {
		rc = gfs_pread_all(fd, buf, len, (off_t)off);
		segfd_done(tv, seg);
		return rc;
	}
	if (fd != -1)
		return fd == -ENOENT ? GFS_ECORRUPT : fd;
	__atomic_fetch_add(&tv->ts->fd_fallbacks, 1, __ATOMIC_RELAXED);
	fd = ts_acquire(tv->ts, tv->table, seg, &slot);
	if (fd_shortage(fd) && segfd_steal(tv))
		fd = ts_acquire(tv->ts, tv->table, seg, &slot);
	if (fd < 0)
		return fd == -ENOENT ? GFS_ECORRUPT : fd;
	rc = gfs_pread_all(fd, buf, len, (off_t)off);
	ts_release(tv->ts, slot, fd);
	return rc;
}

/* ---- reading and checking pages ---------------------------------------- */

/* Bounds-checks one entry at *off; advances *off past it. */
static const char *entry_skip(const struct page *pg, uint32_t *off)
{
	uint64_t o = *off, end = pg->len - TBL_PAGE_CSUM, kl, vl;

	if (o + 4 > end)
		return "entry past the page end";
	kl = tbl_get32(pg->buf + o);
	o += 4 + kl;
	if (pg->kind == TBL_PG_INTERNAL) {
		o += TBL_IENT_FIXED - 4;
		if (o > end)
			return "entry past the page end";
		*off = (uint32_t)o;
		return NULL;
	}
	if (o + 4 > end)
		return "entry past the page end";
	vl = tbl_get32(pg->buf + o);
	o += 4 + vl;
	if (o > end)
		return "entry past the page end";
	if (pg->tree == GFS_IX_PRIMARY && vl < TBL_REC_FIXED)
		return "row record too short";
	*off = (uint32_t)o;
	return NULL;
}

/* What a reference expects of a parsed page: also checked on cache hits,
 * since another reference to the same bytes may have expected otherwise. */
static const char *page_fits(const struct page *pg, const struct tref *ref,
			     int tree, int level)
{
	if (pg->len != ref->len)
		return "page is not the one referenced";
	if (pg->tree != tree)
		return "page belongs to another tree";
	if (level >= 0 && pg->level != level)
		return "page at the wrong tree level";
	return NULL;
}

static const char *page_check_hdr(struct page *pg, const struct tref *ref,
				  int tree, int level)
{
	const char *p = pg->buf;

	if (tbl_get64(p + pg->len - 8) != gfs_hash64(p, pg->len - 8))
		return "page checksum mismatch";
	pg->kind = (uint8_t)p[0];
	pg->tree = (uint8_t)p[1];
	pg->level = (uint8_t)p[2];
	pg->n = tbl_get32(p + 4);
	if (tbl_get32(p + 8) != ref->len || tbl_get32(p + 12) != ref->seg ||
	    tbl_get64(p + 16) != ref->off)
		return "page is not the one referenced";
	if (pg->tree != tree)
		return "page belongs to another tree";
	if ((pg->kind == TBL_PG_LEAF) != (pg->level == 0) ||
	    (pg->kind != TBL_PG_LEAF && pg->kind != TBL_PG_INTERNAL))
		return "bad page kind";
	if (pg->level >= TBL_MAX_HEIGHT || (level >= 0 && pg->level != level))
		return "page at the wrong tree level";
	if (pg->n == 0 || pg->n > pg->len / 8)
		return "bad entry count";
	return NULL;
}

static const char *page_parse(struct page *pg, const struct tref *ref,
			      int tree, int level)
{
	const char *why = page_check_hdr(pg, ref, tree, level);
	uint32_t off = TBL_PAGE_HDR;

	if (why)
		return why;
	pg->eo = malloc(pg->n * sizeof *pg->eo);
	if (!pg->eo)
		return "out of memory";
	for (uint32_t i = 0; i < pg->n; i++) {
		pg->eo[i] = off;
		why = entry_skip(pg, &off);
		if (why)
			return why;
	}
	return off == pg->len - TBL_PAGE_CSUM ? NULL : "trailing bytes in page";
}

static int page_corrupt(struct gfs_tver *tv, const struct tref *ref,
			const char *why, struct gfs_diag *d)
{
	gfs_diag_set(d, "corrupt table file '%s/%s/%u' at offset %llu: %s",
		     tv->ts->dir, tv->table, ref->seg,
		     (unsigned long long)ref->off, why);
	gfs_corrupt_note("corrupt table file '%s/%s/%u' at offset %llu: %s",
			 tv->ts->dir, tv->table, ref->seg,
			 (unsigned long long)ref->off, why);
	return GFS_ECORRUPT;
}

static const char *ref_check(const struct gfs_tver *tv, const struct tref *ref)
{
	if (ref->len < TBL_PAGE_HDR + TBL_PAGE_CSUM || ref->len > TBL_PAGE_MAX ||
	    ref->seg == 0 || ref->seg > tv->version)
		return "bad page reference";
	if (ref->seg == tv->version &&
	    (ref->off < tv->lines_end || ref->off + ref->len > tv->pages_end))
		return "page reference outside the page area";
	return NULL;
}

/* Reads and checks a private page (refs 1, no cache). */
int tbl_page_read(struct gfs_tver *tv, const struct tref *ref, int tree,
		  int level, struct page **out, struct gfs_diag *d)
{
	const char *why = ref_check(tv, ref);
	struct page *pg;
	int rc;

	*out = NULL;
	if (why)
		return page_corrupt(tv, ref, why, d);
	pg = calloc(1, sizeof *pg);
	if (pg)
		pg->buf = malloc(ref->len);
	if (!pg || !pg->buf) {
		free(pg);
		return -ENOMEM;
	}
	pg->len = ref->len;
	pg->refs = 1;
	rc = tbl_seg_read(tv, ref->seg, ref->off, pg->buf, ref->len);
	if (rc && rc != GFS_ECORRUPT) {
		page_destroy(pg);
		return rc;
	}
	why = rc ? "page unreadable (truncated or missing file)"
		 : page_parse(pg, ref, tree, level);
	if (why) {
		page_destroy(pg);
		return page_corrupt(tv, ref, why, d);
	}
	*out = pg;
	return 0;
}

/* ---- the page cache ----------------------------------------------------- */

static size_t pc_hash(uint32_t tid, uint32_t seg, uint64_t off, size_t n)
{
	uint64_t h = off * 0x9E3779B97F4A7C15ull ^ ((uint64_t)seg << 32 | tid);

	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ull;
	h ^= h >> 32;
	return (size_t)h & (n - 1);
}

/* Caller holds pc_mu for these. */
static struct page **pc_slot(struct gfs_tstore *ts, uint32_t tid, uint32_t seg,
			     uint64_t off)
{
	struct page **pp = &ts->bucket[pc_hash(tid, seg, off, ts->nbucket)];

	while (*pp && ((*pp)->tid != tid || (*pp)->seg != seg || (*pp)->off != off))
		pp = &(*pp)->hnext;
	return pp;
}

static void lru_unlink(struct page *pg)
{
	pg->lprev->lnext = pg->lnext;
	pg->lnext->lprev = pg->lprev;
	pg->lprev = pg->lnext = NULL;
}

static void lru_push(struct gfs_tstore *ts, struct page *pg)
{
	pg->lnext = ts->lru.lnext;
	pg->lprev = &ts->lru;
	ts->lru.lnext->lprev = pg;
	ts->lru.lnext = pg;
}

/* Doubles the buckets when pages outnumber them; failing is harmless. */
static void pc_grow(struct gfs_tstore *ts)
{
	size_t n = ts->nbucket * 2;
	struct page **nb;

	if (ts->npages <= ts->nbucket || !(nb = calloc(n, sizeof *nb)))
		return;
	for (size_t b = 0; b < ts->nbucket; b++)
		while (ts->bucket[b]) {
			struct page *pg = ts->bucket[b];
			size_t h = pc_hash(pg->tid, pg->seg, pg->off, n);

			ts->bucket[b] = pg->hnext;
			pg->hnext = nb[h];
			nb[h] = pg;
		}
	free(ts->bucket);
	ts->bucket = nb;
	ts->nbucket = n;
}

/* Unlinks least recently used pages until the budget holds; returns them
 * chained by hnext, to free outside the lock. */
static struct page *pc_evict(struct gfs_tstore *ts)
{
	struct page *gone = NULL;

	while (ts->bytes > ts->budget && ts->lru.lprev != &ts->lru) {
		struct page *pg = ts->lru.lprev;

		lru_unlink(pg);
		*pc_slot(ts, pg->tid, pg->seg, pg->off) = pg->hnext;
		ts->bytes -= pg->cost;
		ts->npages--;
		ts->evictions++;
		pg->hnext = gone;
		gone = pg;
	}
	return gone;
}

static void destroy_chain(struct page *pg)
{
	while (pg) {
		struct page *next = pg->hnext;

		page_destroy(pg);
		pg = next;
	}
}

void gfs_tstore_set_page_cache(struct gfs_tstore *ts, size_t bytes)
{
	struct page *gone;

	pthread_mutex_lock(&ts->pc_mu);
	ts->budget = bytes;
	gone = pc_evict(ts);
	pthread_mutex_unlock(&ts->pc_mu);
	destroy_chain(gone);
}

/* A cached page with a new reference, or NULL. Caller holds pc_mu. */
static struct page *pc_ref(struct gfs_tstore *ts, uint32_t tid,
			   const struct tref *ref)
{
	struct page *pg = *pc_slot(ts, tid, ref->seg, ref->off);

	if (pg && pg->refs++ == 0)
		lru_unlink(pg);
	return pg;
}

/* Enters a freshly read page, or drops it for the copy another thread
 * entered meanwhile; returns the cached one (referenced). */
static struct page *pc_insert(struct gfs_tstore *ts, uint32_t tid,
			      struct page *pg)
{
	struct page *have, *gone;

	pthread_mutex_lock(&ts->pc_mu);
	have = pc_ref(ts, tid, &(struct tref){ pg->seg, pg->len, pg->off });
	if (!have) {
		pg->ts = ts;
		pg->tid = tid;
		pg->cost = sizeof *pg + pg->len + pg->n * sizeof *pg->eo;
		pg->hnext = ts->bucket[pc_hash(tid, pg->seg, pg->off, ts->nbucket)];
		ts->bucket[pc_hash(tid, pg->seg, pg->off, ts->nbucket)] = pg;
		ts->npages++;
		ts->bytes += pg->cost;
		pc_grow(ts);
	}
	gone = pc_evict(ts);
	pthread_mutex_unlock(&ts->pc_mu);
	destroy_chain(gone);
	if (!have)
		return pg;
	page_destroy(pg);
	return have;
}

int tbl_page_get(struct gfs_tver *tv, const struct tref *ref, int tree,
		 int level, struct page **out, struct gfs_diag *d)
{
	struct gfs_tstore *ts = tv->ts;
	const char *why = ref_check(tv, ref);
	struct page *pg;
	bool cache;
	int rc;

	*out = NULL;
	if (why)
		return page_corrupt(tv, ref, why, d);
	pthread_mutex_lock(&ts->pc_mu);
	cache = ts->budget > 0;
	pg = cache ? pc_ref(ts, tv->tid, ref) : NULL;
	if (pg)
		ts->hits++;
	else
		ts->misses++;
	pthread_mutex_unlock(&ts->pc_mu);
	if (!pg) {
		rc = tbl_page_read(tv, ref, tree, level, &pg, d);
		if (rc)
			return rc;
		pg->seg = ref->seg;
		pg->off = ref->off;
		if (cache)
			pg = pc_insert(ts, tv->tid, pg);
	}
	why = page_fits(pg, ref, tree, level);
	if (why) {
		tbl_page_put(pg);
		return page_corrupt(tv, ref, why, d);
	}
	*out = pg;
	return 0;
}

void tbl_page_put(struct page *pg)
{
	struct gfs_tstore *ts;
	struct page *gone;

	if (!pg)
		return;
	ts = pg->ts;
	if (!ts) {
		page_destroy(pg);
		return;
	}
	pthread_mutex_lock(&ts->pc_mu);
	if (--pg->refs == 0)
		lru_push(ts, pg);
	gone = pc_evict(ts);
	pthread_mutex_unlock(&ts->pc_mu);
	destroy_chain(gone);
}
