/* table.c - immutable table versions as copy-on-write B+tree segments.
 *
 * FORMAT (format 1; all integers little-endian; numbers in table_int.h)
 *
 * STORE/tables/<table>/<N> is version N.  It is one segment of a set of
 * copy-on-write B+trees: it holds the row lines and the tree pages version N
 * created; everything else is referenced by (segment = version number,
 * offset[, length]) and read with pread from that older file.
 *
 *   [header 128][lines ...][pages ...][footer]
 *
 * Header (128 bytes): "GFSTBL01", u32 format=1, u32 header_len=128,
 *   u32 version, u32 parent, u32 content_of, u32 flags (bit0 compensation),
 *   u64 created_ns, op_id[26] + 6 NUL, zeros to 120, u64 xxh3(bytes 0..120).
 * Lines: the export lines (each ends in '\n') this version added or
 *   changed, back to back from offset 128 to lines_end.  Each line's xxh3
 *   is its row record's `hash`, so every line byte is checksummed.
 * Pages (lines_end..pages_end), one after another:
 *   u8 kind (1 leaf, 2 internal), u8 tree, u8 level (0 = leaf), u8 0,
 *   u32 n entries, u32 page_len, u32 seg (= this version), u64 own offset,
 *   entries, u64 xxh3(page bytes before it).
 *   Leaf entry:     u32 klen, key, u32 vlen, value.
 *   Internal entry: u32 klen, key (= the child's first key), child ref
 *                   (u32 seg, u64 off, u32 len), u64 rows below,
 *                   u64 line bytes below (PRIMARY; 0 elsewhere).
 *   Keys are unique per tree and sorted bytewise (memcmp, shorter first).
 * Trees: 0 PRIMARY key=id, value=row record (see TBL_REC_*: serial, changed,
 *   flags, hash, seg, seg_off, line_len, data_off, data_len, src_len,
 *   dst_len, n_ukeys, src, dst, n_ukeys x (u32 len, key)).
 *   1 SRC key=esc(src) 00 01 esc(dst) 00 01 esc(id), value=id.
 *   2 DST key=esc(dst) 00 01 esc(src) 00 01 esc(id), value=id.
 *   3+k UNIQUE k key=unique key bytes (empty keys are not indexed), value=id.
 *   esc() maps 00 to 00 FF, so composite keys sort like their tuples.
 * Footer: u64 rows, u64 export_bytes, u64 next_serial, u64 lines_start,
 *   u64 lines_end, u64 pages_end, u32 n_trees (= 3 + n_unique),
 *   u32 n_unique, n_trees x root (u32 seg, u32 len, u64 off; seg 0 = empty),
 *   then the trailer: u32 footer_len (all of it), u32 0,
 *   u64 xxh3(footer bytes before this field), "GFSTEND1".
 *
 * Writers never rebalance: pages left underfull by deletes stay underfull,
 * empty pages are dropped, a root left with one child is replaced by it.
 * Any page or line a version did not touch is shared with its parent.
 * A compensation file is a header plus a footer whose roots are those of
 * the version whose content it repeats.
 *
 * Builder memory (why any load fits): lines go to the temp file as they
 * are put; each put becomes ops (a 32-byte struct plus key and value: the
 * PRIMARY record, about 92 + id + src + dst + sum(4 + unique key) bytes;
 * for edges a SRC and a DST op of 36 + esc(src) + esc(dst) + esc(id) + id;
 * per unique key 32 + key + id) that stay in memory only up to
 * tbl_spill_bytes (8 MiB), then go sorted to a spill file as runs that the
 * commit merges.  Writing a tree streams it: one page per level.  What
 * still grows with the batch, slowly: one bit per PRIMARY op (PAIR_FIRST)
 * and, while a tree is written, a 64 KiB read buffer per run of it (a
 * spill holds ~25,000 edge rows: ~3 bytes a row).  Never O(line bytes).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "table.h"
#include "table_int.h"

#include <dirent.h>
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

#define TS_SLOTS 32
#define ARENA_CHUNK ((size_t)1 << 20)
#define WBUF_MAX ((size_t)1 << 20)

/* ---- small pieces ----------------------------------------------------- */

struct tref {
	uint32_t seg, len;
	uint64_t off;
};

struct page {
	char *buf;
	uint32_t len, n;
	uint8_t kind, tree, level;
	uint32_t *eo; /* entry offsets */
};

struct ient {
	const char *k;
	uint32_t klen;
	struct tref ref;
	uint64_t count, bytes;
};

struct lent {
	const char *k, *v;
	uint32_t klen, vlen;
};

struct rec {
	uint64_t serial, hash, seg_off;
	uint32_t changed, flags, seg, line_len, data_off, data_len;
	const char *src, *dst, *uk;
	uint32_t src_len, dst_len, uk_len, n_ukeys;
};

struct path {
	struct page pg[TBL_MAX_HEIGHT];
	uint32_t idx[TBL_MAX_HEIGHT];
	int depth;
	uint64_t before; /* PRIMARY: export bytes before the position */
};

struct fdslot {
	char *table;
	uint32_t ver;
	int fd;
	unsigned refs;
	uint64_t used;
};

struct gfs_tstore {
	char *dir; /* STORE/tables */
	pthread_mutex_t mu;
	struct fdslot slot[TS_SLOTS]; /* protected by mu */
	uint64_t clock;               /* protected by mu */
};

struct gfs_tver {
	struct gfs_tstore *ts;
	char *table;
	char path[PATH_MAX];
	uint32_t version;
	int fd;
	struct gfs_tver_info info;
	uint32_t n_unique, n_trees;
	struct tref *roots;
	uint64_t lines_start, lines_end, pages_end;
};

struct gfs_titer {
	struct gfs_tver *tv;
	int tree;
	bool started;
	uint32_t last_len;
	struct path p;
	struct path rowp; /* secondary indexes: the primary leaf of the row */
};

static int keycmp(const char *a, size_t al, const char *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int c = m ? memcmp(a, b, m) : 0;

	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

static bool bytes_eq(const char *a, size_t al, const char *b, size_t bl)
{
	return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

static bool table_name_ok(const char *t)
{
	return t && *t && !strchr(t, '/') && strcmp(t, ".") && strcmp(t, "..") &&
	       strlen(t) < 256;
}

static int mkpath(char *out, size_t n, const char *dir, const char *table,
		  const char *name)
{
	int len;

	if (name)
		len = snprintf(out, n, "%s/%s/%s", dir, table, name);
	else
		len = snprintf(out, n, "%s/%s", dir, table);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

static int verpath(char *out, size_t n, const char *dir, const char *table,
		   uint32_t v)
{
	char name[16];

	snprintf(name, sizeof name, "%u", v);
	return mkpath(out, n, dir, table, name);
}

/* ---- store and its fd cache ------------------------------------------ */

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
	if (!ts->dir) {
		free(ts);
		return -ENOMEM;
	}
	snprintf(ts->dir, n, "%s/tables", store_dir);
	pthread_mutex_init(&ts->mu, NULL);
	for (int i = 0; i < TS_SLOTS; i++)
		ts->slot[i].fd = -1;
	*out = ts;
	return 0;
}

void gfs_tstore_close(struct gfs_tstore *ts)
{
	if (!ts)
		return;
	for (int i = 0; i < TS_SLOTS; i++) {
		if (ts->slot[i].fd >= 0)
			close(ts->slot[i].fd);
		free(ts->slot[i].table);
	}
	pthread_mutex_destroy(&ts->mu);
	free(ts->dir);
	free(ts);
}

static int open_version_fd(struct gfs_tstore *ts, const char *table,
			   uint32_t v)
{
	char path[PATH_MAX];
	int rc = verpath(path, sizeof path, ts->dir, table, v);

	if (rc)
		return rc;
	rc = open(path, O_RDONLY | O_CLOEXEC);
	return rc < 0 ? -errno : rc;
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

/* Reads len bytes at off of segment seg as seen from tv. */
static int seg_read(struct gfs_tver *tv, uint32_t seg, uint64_t off, void *buf,
		    size_t len)
{
	int fd, slot, rc;

	if (seg == 0 || seg > tv->version || off > (uint64_t)INT64_MAX - len)
		return GFS_ECORRUPT;
	if (seg == tv->version)
		return gfs_pread_all(tv->fd, buf, len, (off_t)off);
	fd = ts_acquire(tv->ts, tv->table, seg, &slot);
	if (fd < 0)
		return fd == -ENOENT ? GFS_ECORRUPT : fd;
	rc = gfs_pread_all(fd, buf, len, (off_t)off);
	ts_release(tv->ts, slot, fd);
	return rc;
}

/* ---- tables and heads ------------------------------------------------- */

int gfs_table_create(struct gfs_tstore *ts, const char *table)
{
	char path[PATH_MAX];
	char *store;
	int rc;

	if (!table_name_ok(table))
		return -EINVAL;
	store = gfs_strdup(ts->dir);
	if (!store)
		return -ENOMEM;
	*strrchr(store, '/') = '\0';
	rc = gfs_mkdir(ts->dir, 0755);
	if (!rc)
		rc = gfs_fsync_dir(store);
	free(store);
	if (!rc)
		rc = mkpath(path, sizeof path, ts->dir, table, NULL);
	if (!rc)
		rc = gfs_mkdir(path, 0755);
	if (!rc)
		rc = gfs_fsync_dir(ts->dir);
	return rc;
}

/* A version file name: decimal, no sign, no leading zero, fits u32. */
static bool parse_version_name(const char *s, uint32_t *v)
{
	uint64_t n = 0;

	if (!*s || *s == '0' || strlen(s) > 10)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	if (n >= UINT32_MAX)
		return false;
	*v = (uint32_t)n;
	return true;
}

/* Lists the directory rather than probing 1, 2, 4, ... so a future garbage
 * collector that removes old versions cannot make the head look lower. */
int gfs_table_head(struct gfs_tstore *ts, const char *table, uint32_t *head)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir;
	uint32_t v, h = 0;
	int rc;

	*head = 0;
	if (!table_name_ok(table))
		return -EINVAL;
	rc = mkpath(path, sizeof path, ts->dir, table, NULL);
	if (rc)
		return rc;
	dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dir)))
		if (parse_version_name(de->d_name, &v) && v > h)
			h = v;
	closedir(dir);
	*head = h;
	return 0;
}

/* A builder's temp file is named ".tmp-<pid>-..." in the table directory
 * (link() needs a name).  A writer killed before link() leaves it behind;
 * it is garbage, never a version.  Builders create it only while holding
 * the table's LOCK_EX, so whoever holds that lock may remove them all. */
int gfs_table_remove_tmp(struct gfs_tstore *ts, const char *table,
			 unsigned *removed)
{
	char path[PATH_MAX];
	struct dirent *de;
	unsigned n = 0;
	DIR *dir;
	int rc = 0;

	*removed = 0;
	if (!table_name_ok(table))
		return -EINVAL;
	if ((rc = mkpath(path, sizeof path, ts->dir, table, NULL)))
		return rc;
	if (!(dir = opendir(path)))
		return errno == ENOENT ? 0 : -errno;
	while (!rc && (de = readdir(dir)))
		if (!strncmp(de->d_name, ".tmp-", 5)) {
			if (unlinkat(dirfd(dir), de->d_name, 0) == 0)
				n++;
			else if (errno != ENOENT)
				rc = -errno;
		}
	closedir(dir);
	if (!rc && n)
		rc = gfs_fsync_dir(path);
	*removed = n;
	return rc;
}

/* ---- pages ------------------------------------------------------------ */

static void page_free(struct page *pg)
{
	free(pg->buf);
	free(pg->eo);
	memset(pg, 0, sizeof *pg);
}

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

/* Loads and checks the page ref points at; level -1 = any. */
static int page_load(struct gfs_tver *tv, const struct tref *ref, int tree,
		     int level, struct page *pg, struct gfs_diag *d)
{
	const char *why = NULL;
	int rc;

	memset(pg, 0, sizeof *pg);
	if (ref->len < TBL_PAGE_HDR + TBL_PAGE_CSUM || ref->len > TBL_PAGE_MAX ||
	    ref->seg == 0 || ref->seg > tv->version)
		why = "bad page reference";
	else if (ref->seg == tv->version &&
		 (ref->off < tv->lines_end || ref->off + ref->len > tv->pages_end))
		why = "page reference outside the page area";
	if (why)
		goto corrupt;
	pg->buf = malloc(ref->len);
	if (!pg->buf)
		return -ENOMEM;
	pg->len = ref->len;
	rc = seg_read(tv, ref->seg, ref->off, pg->buf, ref->len);
	if (rc && rc != GFS_ECORRUPT) {
		page_free(pg);
		return rc;
	}
	why = rc ? "page unreadable (truncated or missing file)"
		 : page_parse(pg, ref, tree, level);
	if (!why)
		return 0;
corrupt:
	page_free(pg);
	gfs_diag_set(d, "corrupt table file '%s/%s/%u' at offset %llu: %s",
		     tv->ts->dir, tv->table, ref->seg,
		     (unsigned long long)ref->off, why);
	return GFS_ECORRUPT;
}

static void lent_at(const struct page *pg, uint32_t i, struct lent *e)
{
	const char *p = pg->buf + pg->eo[i];

	e->klen = tbl_get32(p);
	e->k = p + 4;
	e->vlen = tbl_get32(e->k + e->klen);
	e->v = e->k + e->klen + 4;
}

static void ient_at(const struct page *pg, uint32_t i, struct ient *e)
{
	const char *p = pg->buf + pg->eo[i];

	e->klen = tbl_get32(p);
	e->k = p + 4;
	p = e->k + e->klen;
	e->ref.seg = tbl_get32(p);
	e->ref.off = tbl_get64(p + 4);
	e->ref.len = tbl_get32(p + 12);
	e->count = tbl_get64(p + 16);
	e->bytes = tbl_get64(p + 24);
}

static const char *entry_key(const struct page *pg, uint32_t i, uint32_t *kl)
{
	const char *p = pg->buf + pg->eo[i];

	*kl = tbl_get32(p);
	return p + 4;
}

/* ---- row records ------------------------------------------------------ */

static int rec_walk_ukeys(struct rec *r)
{
	uint64_t pos = 0;

	if (r->n_ukeys > TBL_MAX_UNIQUE)
		return GFS_ECORRUPT;
	for (uint32_t k = 0; k < r->n_ukeys; k++) {
		if (pos + 4 > r->uk_len)
			return GFS_ECORRUPT;
		pos += 4 + (uint64_t)tbl_get32(r->uk + pos);
	}
	return pos == r->uk_len ? 0 : GFS_ECORRUPT;
}

static int rec_decode(const char *v, uint32_t vlen, struct rec *r)
{
	uint64_t need;

	if (vlen < TBL_REC_FIXED)
		return GFS_ECORRUPT;
	r->serial = tbl_get64(v + TBL_REC_SERIAL);
	r->changed = tbl_get32(v + TBL_REC_CHANGED);
	r->flags = tbl_get32(v + TBL_REC_FLAGS);
	r->hash = tbl_get64(v + TBL_REC_HASH);
	r->seg = tbl_get32(v + TBL_REC_SEG);
	r->seg_off = tbl_get64(v + TBL_REC_SEGOFF);
	r->line_len = tbl_get32(v + TBL_REC_LINELEN);
	r->data_off = tbl_get32(v + TBL_REC_DATAOFF);
	r->data_len = tbl_get32(v + TBL_REC_DATALEN);
	r->src_len = tbl_get32(v + TBL_REC_SRCLEN);
	r->dst_len = tbl_get32(v + TBL_REC_DSTLEN);
	r->n_ukeys = tbl_get32(v + TBL_REC_NUKEYS);
	need = (uint64_t)TBL_REC_FIXED + r->src_len + r->dst_len;
	if (need > vlen || r->line_len == 0 ||
	    (uint64_t)r->data_off + r->data_len > r->line_len)
		return GFS_ECORRUPT;
	r->src = v + TBL_REC_FIXED;
	r->dst = r->src + r->src_len;
	r->uk = v + need;
	r->uk_len = vlen - (uint32_t)need;
	return rec_walk_ukeys(r);
}

static void rec_ukey(const struct rec *r, unsigned k, const char **p,
		     size_t *len)
{
	uint32_t pos = 0;

	*p = NULL;
	*len = 0;
	if (k >= r->n_ukeys)
		return;
	for (unsigned i = 0; i < k; i++)
		pos += 4 + tbl_get32(r->uk + pos);
	*len = tbl_get32(r->uk + pos);
	*p = r->uk + pos + 4;
}

static void fill_row(struct gfs_row *row, const char *id, size_t id_len,
		     const struct rec *r, uint64_t export_off)
{
	bool edge = r->flags & TBL_REC_EDGE;

	row->id = id;
	row->id_len = id_len;
	row->src = edge ? r->src : NULL;
	row->dst = edge ? r->dst : NULL;
	row->src_len = edge ? r->src_len : 0;
	row->dst_len = edge ? r->dst_len : 0;
	row->serial = r->serial;
	row->changed = r->changed;
	row->flags = r->flags & ~TBL_REC_EDGE;
	row->hash = r->hash;
	row->line_len = r->line_len;
	row->data_off = r->data_off;
	row->data_len = r->data_len;
	row->export_off = export_off;
	row->seg = r->seg;
	row->seg_off = r->seg_off;
}

/* ---- opening a version ------------------------------------------------ */

static int hdr_corrupt(struct gfs_tver *tv, struct gfs_diag *d, uint64_t off,
		       const char *why)
{
	gfs_diag_set(d, "corrupt table file '%s' at offset %llu: %s", tv->path,
		     (unsigned long long)off, why);
	return GFS_ECORRUPT;
}

static int read_header(struct gfs_tver *tv, struct gfs_diag *d)
{
	char h[TBL_HDR_LEN];
	int rc = gfs_pread_all(tv->fd, h, sizeof h, 0);

	if (rc)
		return rc == GFS_ECORRUPT ? hdr_corrupt(tv, d, 0, "truncated header")
					  : rc;
	if (memcmp(h, TBL_MAGIC, 8))
		return hdr_corrupt(tv, d, 0, "bad magic");
	if (tbl_get64(h + 120) != gfs_hash64(h, 120))
		return hdr_corrupt(tv, d, 0, "header checksum mismatch");
	if (tbl_get32(h + 8) != TBL_FORMAT || tbl_get32(h + 12) != TBL_HDR_LEN) {
		gfs_diag_set(d, "table file '%s' has format %u, this build reads %u",
			     tv->path, tbl_get32(h + 8), TBL_FORMAT);
		return GFS_EFORMAT;
	}
	if (tbl_get32(h + 16) != tv->version)
		return hdr_corrupt(tv, d, 16, "header names another version");
	tv->info.version = tv->version;
	tv->info.parent = tbl_get32(h + 20);
	tv->info.content_of = tbl_get32(h + 24);
	tv->info.compensation = tbl_get32(h + 28) & 1;
	tv->info.created_ns = tbl_get64(h + 32);
	memcpy(tv->info.op_id, h + 40, GFS_ULID_LEN);
	tv->info.op_id[GFS_ULID_LEN] = '\0';
	return 0;
}

static const char *foot_check_roots(struct gfs_tver *tv, const char *f)
{
	for (uint32_t t = 0; t < tv->n_trees; t++) {
		const char *p = f + TBL_FOOT_FIXED + t * TBL_FOOT_ROOT;
		struct tref *r = &tv->roots[t];

		r->seg = tbl_get32(p);
		r->len = tbl_get32(p + 4);
		r->off = tbl_get64(p + 8);
		if (r->seg > tv->version || (!r->seg && (r->len || r->off)))
			return "bad root reference";
	}
	return NULL;
}

static const char *foot_parse(struct gfs_tver *tv, const char *f,
			      uint32_t flen, uint64_t size)
{
	tv->info.rows = tbl_get64(f);
	tv->info.export_bytes = tbl_get64(f + 8);
	tv->info.next_serial = tbl_get64(f + 16);
	tv->lines_start = tbl_get64(f + 24);
	tv->lines_end = tbl_get64(f + 32);
	tv->pages_end = tbl_get64(f + 40);
	tv->n_trees = tbl_get32(f + 48);
	tv->n_unique = tbl_get32(f + 52);
	if (tv->n_unique > TBL_MAX_UNIQUE || tv->n_trees != 3 + tv->n_unique ||
	    flen != TBL_FOOT_FIXED + TBL_FOOT_ROOT * tv->n_trees + TBL_TRAILER)
		return "bad footer size";
	if (tv->lines_start != TBL_HDR_LEN || tv->lines_end < tv->lines_start ||
	    tv->pages_end < tv->lines_end || tv->pages_end + flen != size)
		return "bad footer offsets";
	tv->roots = calloc(tv->n_trees, sizeof *tv->roots);
	if (!tv->roots)
		return "out of memory";
	return foot_check_roots(tv, f);
}

static int read_footer(struct gfs_tver *tv, struct gfs_diag *d)
{
	char tr[TBL_TRAILER], *f;
	struct stat st;
	uint32_t flen;
	const char *why;
	int rc;

	if (fstat(tv->fd, &st))
		return -errno;
	if ((uint64_t)st.st_size < TBL_HDR_LEN + TBL_FOOT_FIXED + TBL_TRAILER)
		return hdr_corrupt(tv, d, (uint64_t)st.st_size, "truncated file");
	rc = gfs_pread_all(tv->fd, tr, sizeof tr, st.st_size - TBL_TRAILER);
	if (rc)
		return rc;
	flen = tbl_get32(tr);
	if (memcmp(tr + 16, TBL_END_MAGIC, 8) ||
	    flen < TBL_FOOT_FIXED + TBL_TRAILER ||
	    flen > (uint64_t)st.st_size - TBL_HDR_LEN || flen > (1u << 20))
		return hdr_corrupt(tv, d, (uint64_t)st.st_size - TBL_TRAILER,
				   "no valid trailer (truncated file?)");
	f = malloc(flen);
	if (!f)
		return -ENOMEM;
	rc = gfs_pread_all(tv->fd, f, flen, st.st_size - flen);
	why = rc ? "unreadable footer"
	    : tbl_get64(f + flen - 16) != gfs_hash64(f, flen - 16)
		? "footer checksum mismatch"
		: foot_parse(tv, f, flen, (uint64_t)st.st_size);
	free(f);
	if (why)
		return hdr_corrupt(tv, d, (uint64_t)st.st_size - flen, why);
	return 0;
}

int gfs_tver_open(struct gfs_tstore *ts, const char *table, uint32_t version,
		  struct gfs_tver **out, struct gfs_diag *d)
{
	struct gfs_tver *tv;
	int rc;

	*out = NULL;
	if (!table_name_ok(table) || version == 0 || version == UINT32_MAX)
		return -EINVAL;
	tv = calloc(1, sizeof *tv);
	if (!tv)
		return -ENOMEM;
	tv->ts = ts;
	tv->version = version;
	tv->fd = -1;
	tv->table = gfs_strdup(table);
	rc = tv->table ? verpath(tv->path, sizeof tv->path, ts->dir, table, version)
		       : -ENOMEM;
	if (!rc) {
		tv->fd = open(tv->path, O_RDONLY | O_CLOEXEC);
		rc = tv->fd < 0 ? -errno : 0;
	}
	if (!rc)
		rc = read_header(tv, d);
	if (!rc)
		rc = read_footer(tv, d);
	if (rc) {
		gfs_tver_close(tv);
		return rc;
	}
	*out = tv;
	return 0;
}

void gfs_tver_close(struct gfs_tver *tv)
{
	if (!tv)
		return;
	if (tv->fd >= 0)
		close(tv->fd);
	free(tv->roots);
	free(tv->table);
	free(tv);
}

void gfs_tver_info(const struct gfs_tver *tv, struct gfs_tver_info *out)
{
	*out = tv->info;
}

/* ---- paths: a root-to-leaf position ----------------------------------- */

static void path_clear(struct path *p)
{
	while (p->depth > 0)
		page_free(&p->pg[--p->depth]);
	p->before = 0;
}

static int path_push(struct gfs_tver *tv, struct path *p, const struct tref *ref,
		     int tree, int level)
{
	int rc;

	if (p->depth >= TBL_MAX_HEIGHT)
		return GFS_ECORRUPT;
	rc = page_load(tv, ref, tree, level, &p->pg[p->depth], NULL);
	if (rc)
		return rc;
	p->idx[p->depth++] = 0;
	return 0;
}

static uint64_t leaf_bytes(const struct page *pg, uint32_t from, uint32_t to)
{
	uint64_t sum = 0;
	struct lent e;

	if (pg->tree != GFS_IX_PRIMARY)
		return 0;
	for (uint32_t i = from; i < to; i++) {
		lent_at(pg, i, &e);
		sum += tbl_get32(e.v + TBL_REC_LINELEN);
	}
	return sum;
}

/* Index of the child that may hold key: the last whose first key <= key. */
static uint32_t child_for_key(const struct page *pg, const char *key,
			      size_t klen)
{
	uint32_t lo = 0, hi = pg->n, kl;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		const char *k = entry_key(pg, mid, &kl);

		if (keycmp(k, kl, key, klen) <= 0)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static uint32_t leaf_lower_bound(const struct page *pg, const char *key,
				 size_t klen)
{
	uint32_t lo = 0, hi = pg->n, kl;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const char *k = entry_key(pg, mid, &kl);

		if (keycmp(k, kl, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Positions p at the first entry >= key (maybe one past a leaf's end). */
static int path_seek_key(struct gfs_tver *tv, int tree, struct path *p,
			 const char *key, size_t klen)
{
	struct tref root = tv->roots[tree];
	int rc;

	path_clear(p);
	if (!root.seg)
		return 0;
	rc = path_push(tv, p, &root, tree, -1);
	while (!rc) {
		struct page *pg = &p->pg[p->depth - 1];
		struct ient e;
		uint32_t i;

		if (pg->kind == TBL_PG_LEAF) {
			i = leaf_lower_bound(pg, key, klen);
			p->before += leaf_bytes(pg, 0, i);
			p->idx[p->depth - 1] = i;
			return 0;
		}
		i = child_for_key(pg, key, klen);
		for (uint32_t j = 0; j < i; j++) {
			ient_at(pg, j, &e);
			p->before += e.bytes;
		}
		p->idx[p->depth - 1] = i;
		ient_at(pg, i, &e);
		rc = path_push(tv, p, &e.ref, tree, pg->level - 1);
	}
	return rc;
}

/* Positions p (PRIMARY) at the row whose line covers export offset off;
 * p->before is that row's first byte. */
static int path_seek_off(struct gfs_tver *tv, struct path *p, uint64_t off)
{
	struct tref root = tv->roots[GFS_IX_PRIMARY];
	int rc;

	path_clear(p);
	if (!root.seg)
		return 0;
	rc = path_push(tv, p, &root, GFS_IX_PRIMARY, -1);
	while (!rc) {
		struct page *pg = &p->pg[p->depth - 1];
		uint32_t i = 0;

		if (pg->kind == TBL_PG_LEAF) {
			for (; i < pg->n; i++) {
				uint64_t l = leaf_bytes(pg, i, i + 1);

				if (p->before + l > off)
					break;
				p->before += l;
			}
			p->idx[p->depth - 1] = i;
			return 0;
		}
		struct ient e;

		for (; i + 1 < pg->n; i++) {
			ient_at(pg, i, &e);
			if (p->before + e.bytes > off)
				break;
			p->before += e.bytes;
		}
		p->idx[p->depth - 1] = i;
		ient_at(pg, i, &e);
		rc = path_push(tv, p, &e.ref, GFS_IX_PRIMARY, pg->level - 1);
	}
	return rc;
}

/* Moves p to the next valid leaf entry at or after its position.
 * 1 = positioned, 0 = end, <0 error. */
static int path_valid(struct gfs_tver *tv, int tree, struct path *p)
{
	while (p->depth > 0) {
		int t = p->depth - 1;
		struct page *pg = &p->pg[t];
		struct ient e;
		int rc;

		if (p->idx[t] >= pg->n) {
			page_free(pg);
			p->depth--;
			if (p->depth)
				p->idx[p->depth - 1]++;
			continue;
		}
		if (pg->kind == TBL_PG_LEAF)
			return 1;
		ient_at(pg, p->idx[t], &e);
		rc = path_push(tv, p, &e.ref, tree, pg->level - 1);
		if (rc)
			return rc;
	}
	return 0;
}

static void path_entry(const struct path *p, struct lent *e)
{
	lent_at(&p->pg[p->depth - 1], p->idx[p->depth - 1], e);
}

static bool path_at_key(const struct path *p, const char *key, size_t klen)
{
	struct lent e;

	if (!p->depth || p->idx[p->depth - 1] >= p->pg[p->depth - 1].n)
		return false;
	path_entry(p, &e);
	return bytes_eq(e.k, e.klen, key, klen);
}

/* ---- point reads ------------------------------------------------------ */

static int own_row(struct gfs_row *row)
{
	size_t n = row->id_len + row->src_len + row->dst_len + 3;
	char *m = malloc(n), *q;

	if (!m)
		return -ENOMEM;
	q = m;
	memcpy(q, row->id, row->id_len);
	q[row->id_len] = '\0';
	row->id = q;
	q += row->id_len + 1;
	if (row->src) {
		memcpy(q, row->src, row->src_len);
		q[row->src_len] = '\0';
		row->src = q;
		q += row->src_len + 1;
		memcpy(q, row->dst, row->dst_len);
		q[row->dst_len] = '\0';
		row->dst = q;
	}
	if (row->self_ == row)
		free(row->own_);
	row->own_ = m;
	row->self_ = row;
	return 0;
}

/* Finds id in PRIMARY and copies it into *row's own storage. */
static int get_into(struct gfs_tver *tv, struct path *p, const char *id,
		    size_t id_len, struct gfs_row *row)
{
	struct lent e;
	struct rec r;
	int rc = path_seek_key(tv, GFS_IX_PRIMARY, p, id, id_len);

	if (rc || !path_at_key(p, id, id_len))
		return rc;
	path_entry(p, &e);
	if (rec_decode(e.v, e.vlen, &r))
		return GFS_ECORRUPT;
	fill_row(row, e.k, e.klen, &r, p->before);
	rc = own_row(row);
	return rc ? rc : 1;
}

int gfs_tver_get(struct gfs_tver *tv, const char *id, size_t id_len,
		 struct gfs_row *row)
{
	struct path *p = calloc(1, sizeof *p);
	int rc;

	if (!p)
		return -ENOMEM;
	rc = get_into(tv, p, id, id_len, row);
	path_clear(p);
	free(p);
	return rc;
}

void gfs_row_release(struct gfs_row *row)
{
	if (!row)
		return;
	if (row->self_ == row)
		free(row->own_);
	row->own_ = NULL;
	row->self_ = NULL;
	row->id = row->src = row->dst = NULL;
}

int gfs_tver_export_offset(struct gfs_tver *tv, const char *id, size_t id_len,
			   uint64_t *off)
{
	struct path *p = calloc(1, sizeof *p);
	int rc;

	if (!p)
		return -ENOMEM;
	rc = path_seek_key(tv, GFS_IX_PRIMARY, p, id, id_len);
	if (!rc && path_at_key(p, id, id_len)) {
		*off = p->before;
		rc = 1;
	}
	path_clear(p);
	free(p);
	return rc;
}

int gfs_tver_read_row(struct gfs_tver *tv, const struct gfs_row *row,
		      uint64_t off, void *buf, size_t len, size_t *n)
{
	size_t want;
	int rc;

	*n = 0;
	if (off > row->line_len)
		return -EINVAL;
	want = row->line_len - off < len ? (size_t)(row->line_len - off) : len;
	if (!want)
		return 0;
	rc = seg_read(tv, row->seg, row->seg_off + off, buf, want);
	if (!rc)
		*n = want;
	return rc;
}

static int export_copy(struct gfs_tver *tv, struct path *p, uint64_t in,
		       char *buf, size_t len, size_t *done)
{
	while (*done < len) {
		struct lent e;
		struct rec r;
		size_t want;
		int rc = path_valid(tv, GFS_IX_PRIMARY, p);

		if (rc <= 0)
			return rc;
		path_entry(p, &e);
		if (rec_decode(e.v, e.vlen, &r) || in >= r.line_len)
			return GFS_ECORRUPT;
		want = len - *done;
		if (want > r.line_len - in)
			want = (size_t)(r.line_len - in);
		rc = seg_read(tv, r.seg, r.seg_off + in, buf + *done, want);
		if (rc)
			return rc;
		*done += want;
		in = 0;
		p->idx[p->depth - 1]++;
	}
	return 0;
}

int gfs_tver_read_export(struct gfs_tver *tv, uint64_t off, void *buf,
			 size_t len, size_t *n)
{
	struct path *p;
	size_t done = 0;
	int rc;

	*n = 0;
	if (off >= tv->info.export_bytes || !len)
		return 0;
	p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	rc = path_seek_off(tv, p, off);
	if (!rc)
		rc = export_copy(tv, p, off - p->before, buf, len, &done);
	path_clear(p);
	free(p);
	if (!rc)
		*n = done;
	return rc;
}

/* ---- iterators -------------------------------------------------------- */

static size_t esc_len(const char *s, size_t n)
{
	size_t z = 0;

	for (size_t i = 0; i < n; i++)
		z += s[i] == 0;
	return n + z;
}

static char *esc_put(char *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		*out++ = s[i];
		if (!s[i])
			*out++ = (char)0xFF;
	}
	return out;
}

/* esc(a) 00 01 [esc(b) 00 01 [esc(c)]] into a new buffer. */
static char *pair_key(const char *a, size_t al, const char *b, size_t bl,
		      const char *c, size_t cl, int parts, size_t *len)
{
	size_t n = esc_len(a, al) + 2;
	char *k, *q;

	if (parts > 1)
		n += esc_len(b, bl) + 2;
	if (parts > 2)
		n += esc_len(c, cl);
	k = malloc(n ? n : 1);
	if (!k)
		return NULL;
	q = esc_put(k, a, al);
	*q++ = 0;
	*q++ = 1;
	if (parts > 1) {
		q = esc_put(q, b, bl);
		*q++ = 0;
		*q++ = 1;
	}
	if (parts > 2)
		esc_put(q, c, cl);
	*len = n;
	return k;
}

static int titer_start(struct gfs_tver *tv, enum gfs_index ix, const char *key,
		       size_t klen, struct gfs_titer **out)
{
	struct gfs_titer *it;
	int rc;

	*out = NULL;
	if ((unsigned)ix >= tv->n_trees)
		return -EINVAL;
	it = calloc(1, sizeof *it);
	if (!it)
		return -ENOMEM;
	it->tv = tv;
	it->tree = ix;
	rc = path_seek_key(tv, ix, &it->p, key ? key : "", key ? klen : 0);
	if (rc) {
		gfs_titer_free(it);
		return rc;
	}
	*out = it;
	return 0;
}

int gfs_titer_new(struct gfs_tver *tv, enum gfs_index ix, const char *start,
		  size_t start_len, struct gfs_titer **out)
{
	char *k;
	size_t kl;
	int rc;

	if ((ix != GFS_IX_SRC && ix != GFS_IX_DST) || !start)
		return titer_start(tv, ix, start, start_len, out);
	k = pair_key(start, start_len, NULL, 0, NULL, 0, 1, &kl);
	if (!k)
		return -ENOMEM;
	rc = titer_start(tv, ix, k, kl, out);
	free(k);
	return rc;
}

int gfs_titer_new_pair(struct gfs_tver *tv, enum gfs_index ix, const char *a,
		       size_t a_len, const char *b, size_t b_len,
		       struct gfs_titer **out)
{
	char *k;
	size_t kl;
	int rc;

	*out = NULL;
	if (ix != GFS_IX_SRC && ix != GFS_IX_DST)
		return -EINVAL;
	k = pair_key(a, a_len, b, b_len, NULL, 0, 2, &kl);
	if (!k)
		return -ENOMEM;
	rc = titer_start(tv, ix, k, kl, out);
	free(k);
	return rc;
}

/* Secondary entry -> the full row, from the primary tree. */
static int titer_row_of(struct gfs_titer *it, const struct lent *se,
			struct gfs_row *row)
{
	struct lent e;
	struct rec r;
	int rc = path_seek_key(it->tv, GFS_IX_PRIMARY, &it->rowp, se->v, se->vlen);

	if (rc)
		return rc;
	if (!path_at_key(&it->rowp, se->v, se->vlen))
		return GFS_ECORRUPT; /* index entry without its row */
	path_entry(&it->rowp, &e);
	if (rec_decode(e.v, e.vlen, &r))
		return GFS_ECORRUPT;
	fill_row(row, e.k, e.klen, &r, it->rowp.before);
	return 1;
}

int gfs_titer_next(struct gfs_titer *it, struct gfs_row *row)
{
	struct lent e;
	struct rec r;
	int rc;

	if (it->started && it->p.depth) {
		it->p.idx[it->p.depth - 1]++;
		it->p.before += it->last_len;
	}
	it->started = true;
	it->last_len = 0;
	rc = path_valid(it->tv, it->tree, &it->p);
	if (rc <= 0)
		return rc;
	path_entry(&it->p, &e);
	if (it->tree != GFS_IX_PRIMARY)
		return titer_row_of(it, &e, row);
	if (rec_decode(e.v, e.vlen, &r))
		return GFS_ECORRUPT;
	fill_row(row, e.k, e.klen, &r, it->p.before);
	it->last_len = r.line_len;
	return 1;
}

void gfs_titer_key(const struct gfs_titer *it, const char **key, size_t *len)
{
	struct lent e;

	*key = NULL;
	*len = 0;
	if (!it->started || !it->p.depth ||
	    it->p.idx[it->p.depth - 1] >= it->p.pg[it->p.depth - 1].n)
		return;
	path_entry(&it->p, &e);
	*key = e.k;
	*len = e.klen;
}

void gfs_titer_free(struct gfs_titer *it)
{
	if (!it)
		return;
	path_clear(&it->p);
	path_clear(&it->rowp);
	free(it);
}

int gfs_tver_get_unique(struct gfs_tver *tv, unsigned k, const char *key,
			size_t len, struct gfs_row *row)
{
	struct path *p;
	struct lent e;
	int rc;

	if (k >= tv->n_unique)
		return -EINVAL;
	if (!len)
		return 0; /* empty keys are never indexed */
	p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	rc = path_seek_key(tv, GFS_IX_UNIQUE0 + (int)k, p, key, len);
	if (!rc && path_at_key(p, key, len)) {
		char *id;
		size_t id_len;

		path_entry(p, &e);
		id_len = e.vlen;
		id = gfs_memdup(e.v, id_len); /* get_into re-seeks p */
		rc = id ? get_into(tv, p, id, id_len, row) : -ENOMEM;
		free(id);
		if (rc == 0)
			rc = GFS_ECORRUPT; /* index entry without its row */
	}
	path_clear(p);
	free(p);
	return rc;
}

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

static void arena_free(struct gfs_tbuild *b)
{
	while (b->arena) {
		struct achunk *c = b->arena;

		b->arena = c->next;
		free(c);
	}
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
	size_t kl = esc_len(a, al) + esc_len(c, cl) + esc_len(id, idl) + 4;
	size_t vl = fl & OP_DEL ? 0 : idl;
	struct op *o = op_slot(b, t);
	char *m = o ? arena_alloc(b, kl + vl) : NULL, *q;

	if (!m)
		return -ENOMEM;
	q = esc_put(m, a, al);
	*q++ = 0;
	*q++ = 1;
	q = esc_put(q, c, cl);
	*q++ = 0;
	*q++ = 1;
	q = esc_put(q, id, idl);
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

	if (oe && ne && bytes_eq(old->src, old->src_len, nw->src, nw->src_len) &&
	    bytes_eq(old->dst, old->dst_len, nw->dst, nw->dst_len))
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
			rec_ukey(old, k, &ok, &ol);
		if (r && k < r->n_ukeys) {
			nk = r->ukeys[k].p;
			nl = r->ukeys[k].len;
		}
		if (bytes_eq(ok, ol, nk, nl))
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

	path_entry(p, &e);
	pr->k = e.k;
	pr->klen = e.klen;
	pr->v = e.v;
	pr->vlen = e.vlen;
	return rec_decode(e.v, e.vlen, &pr->r) ? GFS_ECORRUPT : 1;
}

/* Ids come in increasing order, so the path of the previous lookup
 * usually still covers the next id: keep every page whose key range
 * holds it and re-descend only below the first that does not (a leaf
 * per ~50 rows instead of a root-to-leaf read per row). */
static int path_seek_fwd(struct gfs_tver *tv, int tree, struct path *p,
			 const char *key, size_t klen)
{
	int keep = 0;
	struct ient e;

	while (keep < p->depth - 1) {
		const struct page *pg = &p->pg[keep];
		uint32_t i = p->idx[keep], kl;
		const char *nk;

		if (i + 1 < pg->n && (nk = entry_key(pg, i + 1, &kl),
				      keycmp(nk, kl, key, klen) <= 0))
			break;
		keep++;
	}
	if (!p->depth)
		return path_seek_key(tv, tree, p, key, klen);
	while (p->depth > keep + 1)
		page_free(&p->pg[--p->depth]);
	for (;;) {
		struct page *pg = &p->pg[p->depth - 1];
		int rc;

		if (pg->kind == TBL_PG_LEAF) {
			p->idx[p->depth - 1] = leaf_lower_bound(pg, key, klen);
			return 0;
		}
		p->idx[p->depth - 1] = child_for_key(pg, key, klen);
		ient_at(pg, p->idx[p->depth - 1], &e);
		rc = path_push(tv, p, &e.ref, tree, pg->level - 1);
		if (rc)
			return rc;
	}
}

static int parent_lookup(struct gfs_tbuild *b, const char *id, size_t idl,
			 struct prow *pr)
{
	int rc;

	if (!b->parent)
		return 0;
	rc = path_seek_fwd(b->parent, GFS_IX_PRIMARY, b->pp, id, idl);
	if (rc || !path_at_key(b->pp, id, idl))
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
		rc = path_seek_key(b->parent, GFS_IX_PRIMARY, p, "", 0);
		if (rc)
			return rc;
		b->rp_started = true;
	}
	if (b->rp_skip && p->depth)
		p->idx[p->depth - 1]++;
	b->rp_skip = false;
	for (;;) {
		int c;

		rc = path_valid(b->parent, GFS_IX_PRIMARY, p);
		if (rc <= 0)
			return rc;
		rc = prow_fill(p, pr);
		if (rc < 0)
			return rc;
		c = id ? keycmp(pr->k, pr->klen, id, idl) : -1;
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
	if (b->have_last && keycmp(b->last.p, b->last.len, id, idl) >= 0)
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
	if (p) {
		nr.serial = p->r.serial;
		nr.flags |= p->r.flags & GFS_ROW_PAIR_FIRST;
	} else {
		nr.serial = b->next_serial++;
		fl = OP_NEW;
	}
	if (p && same_line(&p->r, &nr)) {
		nr.changed = p->r.changed;
		nr.seg = p->r.seg;
		nr.seg_off = p->r.seg_off;
	} else {
		nr.changed = nr.seg = UINT32_MAX; /* this version, set at commit */
		nr.seg_off = b->pos;
		rc = bw_append(b, r->line, r->line_len);
	}
	if (!rc)
		rc = rec_encode(&b->scratch, &nr, r, b->n_unique);
	if (!rc && (!p || !bytes_eq(p->v, p->vlen, b->scratch.p, b->scratch.len)))
		rc = op_add(b, GFS_IX_PRIMARY, r->id, r->id_len, b->scratch.p,
			    b->scratch.len, fl);
	if (!rc)
		rc = sec_edges(b, r->id, r->id_len, p ? &p->r : NULL, &nr, fl);
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
	int rc = mkpath(b->dir, sizeof b->dir, b->ts->dir, b->table, NULL);

	snprintf(name, sizeof name, ".tmp-%ld-XXXXXX", (long)getpid());
	if (!rc)
		rc = mkpath(b->tmp, sizeof b->tmp, b->ts->dir, b->table, name);
	if (rc)
		return rc;
	b->fd = mkostemp(b->tmp, O_CLOEXEC);
	if (b->fd < 0)
		return -errno;
	b->tmp_exists = true;
	return fchmod(b->fd, 0644) ? -errno : 0;
}

int gfs_tbuild_new(struct gfs_tstore *ts, const char *table,
		   struct gfs_tver *parent, unsigned n_unique, unsigned flags,
		   struct gfs_tbuild **out)
{
	static const char zeros[TBL_HDR_LEN];
	struct gfs_tbuild *b;
	int rc;

	*out = NULL;
	if (!table_name_ok(table) || n_unique > TBL_MAX_UNIQUE ||
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
	b->runs = calloc(b->n_trees, sizeof *b->runs);
	b->nops = calloc(b->n_trees, sizeof *b->nops);
	b->pp = calloc(1, sizeof *b->pp);
	b->wc = calloc(1, sizeof *b->wc);
	rc = b->table && b->ops && b->runs && b->nops && b->pp && b->wc
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
		path_clear(p);
	free(p);
}

void gfs_tbuild_free(struct gfs_tbuild *b)
{
	if (!b)
		return;
	if (b->fd >= 0)
		close(b->fd);
	if (b->sfd >= 0)
		close(b->sfd);
	if (b->tmp_exists)
		unlink(b->tmp);
	arena_free(b);
	for (unsigned t = 0; b->ops && t < b->n_trees; t++)
		free(b->ops[t].v);
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
	int c = keycmp(x->k, x->klen, y->k, y->klen);

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
	rc = mkpath(path, sizeof path, b->ts->dir, b->table, name);
	if (rc)
		return rc;
	b->sfd = mkostemp(path, O_CLOEXEC);
	if (b->sfd < 0)
		return -errno;
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
static int spill_tree(struct gfs_tbuild *b, unsigned t)
{
	struct opvec *ov = &b->ops[t];
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

static int maybe_spill(struct gfs_tbuild *b)
{
	int rc = 0;

	if (b->mem <= tbl_spill_bytes)
		return 0;
	if (b->sfd < 0)
		rc = open_spill(b);
	for (unsigned t = 0; !rc && t < b->n_trees; t++)
		rc = spill_tree(b, t);
	if (!rc)
		rc = sbuf_flush(b);
	if (rc)
		return rc; /* b->err is set: nothing reads the ops again */
	arena_free(b);
	b->mem = 0;
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
	rc = page_load(b->parent, ref, b->tree, level, &p->pg[p->depth], b->d);
	if (!rc)
		p->idx[p->depth++] = 0;
	return rc;
}

static int tw_begin(struct gfs_tbuild *b, unsigned t)
{
	struct tref root = parent_root(b, t);

	b->tree = (int)t;
	b->nlv = 0;
	path_clear(b->wc);
	return root.seg ? wc_push(b, &root, -1) : 0;
}

/* Writes what is left of the parent page at depth d (the open child's
 * rest first, then the later entries) and unloads it and all below. */
static int tw_close(struct gfs_tbuild *b, int d)
{
	struct path *p = b->wc;
	struct page *pg = &p->pg[d];
	int rc = 0;

	if (p->depth > d + 1) {
		rc = tw_close(b, d + 1);
		p->idx[d]++;
	}
	for (; !rc && p->idx[d] < pg->n; p->idx[d]++) {
		struct lent l;
		struct ient e;

		if (pg->kind == TBL_PG_LEAF) {
			lent_at(pg, p->idx[d], &l);
			rc = emit_leaf(b, l.k, l.klen, l.v, l.vlen);
		} else {
			ient_at(pg, p->idx[d], &e);
			rc = push_ref(b, pg->level, &e);
		}
	}
	page_free(pg);
	p->depth = d;
	return rc;
}

/* At internal depth d: closes the open child if o lies past it, passes the
 * untouched children before o's child by reference, opens o's child. */
static int tw_descend(struct gfs_tbuild *b, int d, const struct op *o)
{
	struct path *p = b->wc;
	struct page *pg = &p->pg[d];
	uint32_t c = child_for_key(pg, o->k, o->klen);
	struct ient e;
	int rc = 0;

	if (c < p->idx[d])
		c = p->idx[d];
	if (p->depth > d + 1 && c > p->idx[d]) {
		rc = tw_close(b, d + 1);
		p->idx[d]++;
	}
	for (; !rc && p->idx[d] < c; p->idx[d]++) {
		ient_at(pg, p->idx[d], &e);
		rc = push_ref(b, pg->level, &e);
	}
	if (!rc && p->depth == d + 1) {
		ient_at(pg, c, &e);
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

		lent_at(pg, *i, &e);
		c = keycmp(e.k, e.klen, o->k, o->klen);
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

		if (p->pg[d].kind == TBL_PG_LEAF)
			return tw_leaf(b, &p->pg[d], &p->idx[d], o);
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
			ient_at(&one, 0, &e);
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
	rc = path_seek_key(b->parent, GFS_IX_SRC, p, pre, pl);
	while (rc == 0) {
		struct lent e;

		rc = path_valid(b->parent, GFS_IX_SRC, p);
		if (rc <= 0)
			return rc;
		path_entry(p, &e);
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

	if (!bytes_eq(g->pre.p, g->pre.len, o->k, pl) || !g->pre.p) {
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
		if (have && bytes_eq(pend.k, pend.klen, o.k, o.klen)) {
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
	path_clear(b->wc);
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
static int publish(struct gfs_tbuild *b, struct gfs_diag *d)
{
	char final[PATH_MAX];
	int err, rc;

	err = gfs_fp_hit(GFS_FP_TABLE_AFTER_TMP_WRITE);
	if (err)
		return -err;
	rc = verpath(final, sizeof final, b->ts->dir, b->table, b->version);
	if (rc)
		return rc;
	if (link(b->tmp, final)) {
		rc = -errno;
		if (rc == -EEXIST)
			gfs_diag_set(d, "table '%s' version %u already exists",
				     b->table, b->version);
		else
			gfs_diag_set(d, "cannot link '%s': %s", final,
				     gfs_strerror(rc));
		return rc;
	}
	rc = gfs_fsync_dir(b->dir);
	if (rc)
		return rc;
	err = gfs_fp_hit(GFS_FP_TABLE_AFTER_LINK);
	return err ? -err : 0;
}

static int commit_ex(struct gfs_tbuild *b, const struct hdr_args *a,
		     struct gfs_diag *d)
{
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
	lines_end = b->pos;
	roots = calloc(b->n_trees, sizeof *roots);
	if (!rc)
		rc = roots ? commit_trees(b, roots, &rows, &bytes, d) : -ENOMEM;
	if (!rc)
		rc = write_footer(b, roots, rows, bytes, lines_end);
	free(roots);
	if (!rc)
		rc = write_header(b, a);
	if (!rc && fsync(b->fd))
		rc = -errno;
	if (!rc)
		rc = publish(b, d);
	drop_tmp(b);
	return rc;
}

int gfs_tbuild_commit(struct gfs_tbuild *b, uint32_t version,
		      const char *op_id, struct gfs_diag *d)
{
	struct hdr_args a = { version, b->parent ? b->parent->version : 0, 0,
			      false, op_id };

	return commit_ex(b, &a, d);
}

int gfs_table_write_compensation(struct gfs_tstore *ts, const char *table,
				 uint32_t version, uint32_t content_of,
				 const char *op_id, struct gfs_diag *d)
{
	struct hdr_args a = { version, version - 1, content_of, true, op_id };
	struct gfs_tver *src = NULL, *prev = NULL;
	struct gfs_tbuild *b = NULL;
	int rc = 0;

	if (!table_name_ok(table) || version < 2 || content_of >= version)
		return -EINVAL;
	if (content_of)
		rc = gfs_tver_open(ts, table, content_of, &src, d);
	if (!rc)
		rc = gfs_tbuild_new(ts, table, src, src ? src->n_unique : 0, 0, &b);
	/* Never hand out a serial the undone version may have shown. */
	if (!rc && !gfs_tver_open(ts, table, version - 1, &prev, NULL) &&
	    prev->info.next_serial > b->next_serial)
		b->next_serial = prev->info.next_serial;
	if (!rc)
		rc = commit_ex(b, &a, d);
	gfs_tbuild_free(b);
	gfs_tver_close(prev);
	gfs_tver_close(src);
	return rc;
}

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

	if (rec_decode(e->v, e->vlen, &r))
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
		k = entry_key(pg, i, &kl);
		if (i && keycmp(pk, pkl, k, kl) >= 0)
			return vfail(c, at, "keys out of order");
		pk = k;
		pkl = kl;
	}
	k = entry_key(pg, 0, &kl);
	if (lo->set && !bytes_eq(k, kl, lo->k, lo->klen))
		return vfail(c, at, "first key differs from the parent's entry");
	if (hi->set && keycmp(pk, pkl, hi->k, hi->klen) >= 0)
		return vfail(c, at, "key not below the next sibling's");
	return 0;
}

static void page_sums(const struct page *pg, uint64_t *cnt, uint64_t *bytes)
{
	struct ient e;

	if (pg->kind == TBL_PG_LEAF) {
		*cnt = pg->n;
		*bytes = leaf_bytes(pg, 0, pg->n);
		return;
	}
	*cnt = *bytes = 0;
	for (uint32_t i = 0; i < pg->n; i++) {
		ient_at(pg, i, &e);
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

		ient_at(pg, i, &e);
		clo = (struct kbound){ e.k, e.klen, true };
		if (i + 1 < pg->n) {
			ient_at(pg, i + 1, &nx);
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

		lent_at(pg, i, &e);
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
	struct page pg;
	int rc = page_load(c->tv, ref, tree, level, &pg, c->d);

	if (rc)
		return rc;
	rc = verify_keys(c, &pg, ref->off, lo, hi);
	if (!rc && ref->seg != c->tv->version) {
		page_sums(&pg, cnt, bytes);
	} else if (!rc) {
		rc = ext_add(c, ref->off, ref->len);
		if (!rc && pg.kind == TBL_PG_LEAF) {
			page_sums(&pg, cnt, bytes);
			rc = verify_leaf(c, &pg, ref->off);
		} else if (!rc) {
			rc = verify_inner(c, &pg, ref->off, hi, cnt, bytes);
		}
	}
	page_free(&pg);
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
