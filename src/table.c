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

/* ---- small pieces ----------------------------------------------------- */

struct gfs_titer {
	struct gfs_tver *tv;
	int tree;
	bool started;
	uint32_t last_len;
	struct path p;
	struct path rowp; /* secondary indexes: the primary leaf of the row */
};

int tbl_keycmp(const char *a, size_t al, const char *b, size_t bl)
{
	size_t m = al < bl ? al : bl;
	int c = m ? memcmp(a, b, m) : 0;

	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

bool tbl_bytes_eq(const char *a, size_t al, const char *b, size_t bl)
{
	return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

bool tbl_name_ok(const char *t)
{
	return t && *t && !strchr(t, '/') && strcmp(t, ".") && strcmp(t, "..") &&
	       strlen(t) < 256;
}

int tbl_mkpath(char *out, size_t n, const char *dir, const char *table,
		  const char *name)
{
	int len;

	if (name)
		len = snprintf(out, n, "%s/%s/%s", dir, table, name);
	else
		len = snprintf(out, n, "%s/%s", dir, table);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

int tbl_verpath(char *out, size_t n, const char *dir, const char *table,
		   uint32_t v)
{
	char name[16];

	snprintf(name, sizeof name, "%u", v);
	return tbl_mkpath(out, n, dir, table, name);
}

/* ---- tables and heads ------------------------------------------------- */

int gfs_table_create(struct gfs_tstore *ts, const char *table)
{
	char path[PATH_MAX];
	char *store;
	int rc, skip;

	if (!tbl_name_ok(table))
		return -EINVAL;
	store = gfs_strdup(ts->dir);
	if (!store)
		return -ENOMEM;
	*strrchr(store, '/') = '\0';
	skip = gfs_fp_hit(GFS_FP_SYNC_SKIP_TABLE_CREATE);
	rc = gfs_mkdir(ts->dir, GFS_DIR_MODE);
	if (!rc && !skip)
		rc = gfs_fsync_dir(store);
	free(store);
	if (!rc)
		rc = tbl_mkpath(path, sizeof path, ts->dir, table, NULL);
	if (!rc)
		rc = gfs_mkdir(path, GFS_DIR_MODE);
	if (!rc && !skip)
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
	if (!tbl_name_ok(table))
		return -EINVAL;
	rc = tbl_mkpath(path, sizeof path, ts->dir, table, NULL);
	if (rc)
		return rc;
	dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? 0 : gfs_io_fail("open directory", path, -errno);
	while ((de = readdir(dir)))
		if (parse_version_name(de->d_name, &v) && v > h)
			h = v;
	closedir(dir);
	*head = h;
	return 0;
}

int gfs_table_versions(struct gfs_tstore *ts, const char *table,
		       int (*fn)(uint32_t v, uint64_t bytes, void *arg),
		       void *arg)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *dir;
	uint32_t v;
	int rc;

	if (!tbl_name_ok(table))
		return -EINVAL;
	if ((rc = tbl_mkpath(path, sizeof path, ts->dir, table, NULL)))
		return rc;
	dir = opendir(path);
	if (!dir)
		return errno == ENOENT ? 0 : gfs_io_fail("open directory", path, -errno);
	errno = 0;
	while (!rc && (de = readdir(dir))) {
		if (!parse_version_name(de->d_name, &v))
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, 0) < 0)
			rc = errno == ENOENT ? 0 : gfs_io_fail("stat a version in", path, -errno);
		else
			rc = fn(v, (uint64_t)st.st_size, arg);
		errno = 0;
	}
	if (!rc && errno)
		rc = gfs_io_fail("read directory", path, -errno);
	closedir(dir);
	return rc;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int gfs_table_list(struct gfs_tstore *ts, const char *table, uint32_t **vers,
		   size_t *n, unsigned *tmps)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t cap = 0;
	uint32_t v;
	DIR *dir;
	int rc;

	*vers = NULL;
	*n = 0;
	*tmps = 0;
	if (!tbl_name_ok(table))
		return -EINVAL;
	if ((rc = tbl_mkpath(path, sizeof path, ts->dir, table, NULL)))
		return rc;
	if (!(dir = opendir(path)))
		return errno == ENOENT ? 0 : gfs_io_fail("open directory", path, -errno);
	errno = 0;
	while (!rc && (de = readdir(dir))) {
		void *p;
		if (!strncmp(de->d_name, ".tmp-", 5))
			(*tmps)++;
		if (!parse_version_name(de->d_name, &v))
			continue;
		if (!(p = gfs_array_grow(*vers, &cap, *n, sizeof **vers, 64)))
			rc = -ENOMEM;
		else {
			*vers = p;
			(*vers)[(*n)++] = v;
		}
		errno = 0;
	}
	if (!rc && errno)
		rc = gfs_io_fail("read directory", path, -errno);
	closedir(dir);
	if (!rc && *n)
		qsort(*vers, *n, sizeof **vers, u32_cmp);
	if (rc) {
		free(*vers);
		*vers = NULL;
		*n = 0;
	}
	return rc;
}

int gfs_table_version_exists(struct gfs_tstore *ts, const char *table,
			     uint32_t v, bool *exists)
{
	char path[PATH_MAX];
	struct stat st;
	int rc;

	*exists = false;
	if (!tbl_name_ok(table) || v == 0)
		return -EINVAL;
	if ((rc = tbl_verpath(path, sizeof path, ts->dir, table, v)))
		return rc;
	if (stat(path, &st) == 0) {
		*exists = true;
		return 0;
	}
	return errno == ENOENT ? 0 : gfs_io_fail("stat", path, -errno);
}

int gfs_table_sync(struct gfs_tstore *ts, const char *table)
{
	char path[PATH_MAX];
	int rc;

	if (!tbl_name_ok(table))
		return -EINVAL;
	if ((rc = tbl_mkpath(path, sizeof path, ts->dir, table, NULL)))
		return rc;
	return gfs_fsync_dir(path);
}

/* A builder's temp file is named ".tmp-<pid>-..." in the table directory
 * (link() needs a name).  A writer killed before link() leaves it behind;
 * it is garbage, never a version.  Builders create it only after their
 * writer armed its sidecar and while holding the table's LOCK_EX, so
 * whoever holds that lock may remove them all: the resolver of a sidecar
 * (recover.c) and graphctl recover do.  `unlink` false only counts. */
static int scan_tmp(struct gfs_tstore *ts, const char *table, bool unlink,
		    unsigned *count)
{
	char path[PATH_MAX];
	struct dirent *de;
	unsigned n = 0;
	DIR *dir;
	int rc = 0;

	*count = 0;
	if (!tbl_name_ok(table))
		return -EINVAL;
	if ((rc = tbl_mkpath(path, sizeof path, ts->dir, table, NULL)))
		return rc;
	if (!(dir = opendir(path)))
		return errno == ENOENT ? 0 : gfs_io_fail("open directory", path, -errno);
	while (!rc && (de = readdir(dir)))
		if (!strncmp(de->d_name, ".tmp-", 5)) {
			char file[PATH_MAX];
			if (!unlink || unlinkat(dirfd(dir), de->d_name, 0) == 0)
				n++;
			else if (errno != ENOENT) {
				rc = -errno;
				rc = tbl_mkpath(file, sizeof file, ts->dir, table, de->d_name)
				     ? gfs_io_fail("unlink temp file in", path, rc)
				     : gfs_io_fail("unlink", file, rc);
			}
		}
	closedir(dir);
	if (!rc && n && unlink)
		rc = gfs_fsync_dir(path);
	*count = n;
	return rc;
}

int gfs_table_remove_tmp(struct gfs_tstore *ts, const char *table,
			 unsigned *removed)
{
	return scan_tmp(ts, table, true, removed);
}

int gfs_table_count_tmp(struct gfs_tstore *ts, const char *table,
			unsigned *count)
{
	return scan_tmp(ts, table, false, count);
}

/* ---- page entries ------------------------------------------------------ */

void tbl_lent_at(const struct page *pg, uint32_t i, struct lent *e)
{
	const char *p = pg->buf + pg->eo[i];

	e->klen = tbl_get32(p);
	e->k = p + 4;
	e->vlen = tbl_get32(e->k + e->klen);
	e->v = e->k + e->klen + 4;
}

void tbl_ient_at(const struct page *pg, uint32_t i, struct ient *e)
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

const char *tbl_entry_key(const struct page *pg, uint32_t i, uint32_t *kl)
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

int tbl_rec_decode(const char *v, uint32_t vlen, struct rec *r)
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

void tbl_rec_ukey(const struct rec *r, unsigned k, const char **p,
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
	gfs_corrupt_note("corrupt table file '%s' at offset %llu: %s", tv->path,
			 (unsigned long long)off, why);
	return GFS_ECORRUPT;
}

static int read_header(struct gfs_tver *tv, struct gfs_diag *d)
{
	char h[TBL_HDR_LEN];
	int rc = gfs_pread_all(tv->fd, h, sizeof h, 0);

	if (rc && rc != GFS_ECORRUPT)
		gfs_diag_io(d, rc);
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
	if (rc && rc != GFS_ECORRUPT)
		gfs_diag_io(d, rc);
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
	if (rc && rc != GFS_ECORRUPT) { /* EIO is not corruption: say so */
		free(f);
		gfs_diag_io(d, rc);
		return rc;
	}
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
	if (!tbl_name_ok(table) || version == 0 || version == UINT32_MAX)
		return -EINVAL;
	tv = calloc(1, sizeof *tv);
	if (!tv)
		return -ENOMEM;
	tv->ts = ts;
	tv->version = version;
	tv->fd = -1;
	pthread_mutex_init(&tv->fd_mu, NULL);
	tv->table = gfs_strdup(table);
	rc = tv->table ? tbl_verpath(tv->path, sizeof tv->path, ts->dir, table, version)
		       : -ENOMEM;
	if (!rc)
		rc = tbl_table_id(ts, table, &tv->tid);
	if (!rc) {
		tv->fd = open(tv->path, O_RDONLY | O_CLOEXEC);
		rc = tv->fd < 0 ? gfs_io_fail("open", tv->path, -errno) : 0;
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
	tbl_tver_close_fds(tv);
	pthread_mutex_destroy(&tv->fd_mu);
	free(tv->roots);
	free(tv->table);
	free(tv);
}

void gfs_tver_info(const struct gfs_tver *tv, struct gfs_tver_info *out)
{
	*out = tv->info;
}

/* ---- paths: a root-to-leaf position ----------------------------------- */

void tbl_path_clear(struct path *p)
{
	while (p->depth > 0)
		tbl_page_put(p->pg[--p->depth]);
	p->before = 0;
	p->rank = 0;
}

int tbl_path_push(struct gfs_tver *tv, struct path *p, const struct tref *ref,
		  int tree, int level)
{
	int rc;

	if (p->depth >= TBL_MAX_HEIGHT)
		return GFS_ECORRUPT;
	rc = tbl_page_get(tv, ref, tree, level, &p->pg[p->depth], NULL);
	if (rc)
		return rc;
	p->idx[p->depth++] = 0;
	return 0;
}

static void path_pop(struct path *p)
{
	tbl_page_put(p->pg[--p->depth]);
}

uint64_t tbl_leaf_bytes(const struct page *pg, uint32_t from, uint32_t to)
{
	uint64_t sum = 0;
	struct lent e;

	if (pg->tree != GFS_IX_PRIMARY)
		return 0;
	for (uint32_t i = from; i < to; i++) {
		tbl_lent_at(pg, i, &e);
		sum += tbl_get32(e.v + TBL_REC_LINELEN);
	}
	return sum;
}

/* PRIMARY: export bytes in the entries of pg before entry i. */
static uint64_t bytes_before(const struct page *pg, uint32_t i)
{
	uint64_t sum = 0;
	struct ient e;

	if (pg->tree != GFS_IX_PRIMARY)
		return 0;
	if (pg->kind == TBL_PG_LEAF)
		return tbl_leaf_bytes(pg, 0, i);
	for (uint32_t j = 0; j < i; j++) {
		tbl_ient_at(pg, j, &e);
		sum += e.bytes;
	}
	return sum;
}

/* Entries of the tree below the first i entries of pg. */
static uint64_t count_before(const struct page *pg, uint32_t i)
{
	uint64_t sum = 0;
	struct ient e;

	if (pg->kind == TBL_PG_LEAF)
		return i;
	for (uint32_t j = 0; j < i; j++) {
		tbl_ient_at(pg, j, &e);
		sum += e.count;
	}
	return sum;
}

/* Index of the child that may hold key: the last whose first key <= key. */
uint32_t tbl_child_for_key(const struct page *pg, const char *key,
			   size_t klen)
{
	uint32_t lo = 0, hi = pg->n, kl;

	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		const char *k = tbl_entry_key(pg, mid, &kl);

		if (tbl_keycmp(k, kl, key, klen) <= 0)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

uint32_t tbl_leaf_lower_bound(const struct page *pg, const char *key,
			      size_t klen)
{
	uint32_t lo = 0, hi = pg->n, kl;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const char *k = tbl_entry_key(pg, mid, &kl);

		if (tbl_keycmp(k, kl, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* From the deepest page of p down: positions p at the first entry >= key
 * (maybe one past a leaf's end), adding to p->before. */
static int path_descend(struct gfs_tver *tv, int tree, struct path *p,
			const char *key, size_t klen)
{
	for (;;) {
		struct page *pg = p->pg[p->depth - 1];
		struct ient e;
		uint32_t i;
		int rc;

		if (pg->kind == TBL_PG_LEAF) {
			i = tbl_leaf_lower_bound(pg, key, klen);
			p->before += bytes_before(pg, i);
			p->rank += i;
			p->idx[p->depth - 1] = i;
			return 0;
		}
		i = tbl_child_for_key(pg, key, klen);
		p->before += bytes_before(pg, i);
		p->rank += count_before(pg, i);
		p->idx[p->depth - 1] = i;
		tbl_ient_at(pg, i, &e);
		rc = tbl_path_push(tv, p, &e.ref, tree, pg->level - 1);
		if (rc)
			return rc;
	}
}

/* Positions p at the first entry >= key (maybe one past a leaf's end). */
int tbl_path_seek_key(struct gfs_tver *tv, int tree, struct path *p,
		      const char *key, size_t klen)
{
	struct tref root = tv->roots[tree];
	int rc;

	tbl_path_clear(p);
	if (!root.seg)
		return 0;
	rc = tbl_path_push(tv, p, &root, tree, -1);
	return rc ? rc : path_descend(tv, tree, p, key, klen);
}

/* Does child idx of pg (an internal page on p) cover key? */
static bool child_covers(const struct page *pg, uint32_t i, const char *key,
			 size_t klen)
{
	uint32_t kl;
	const char *k;

	if (i >= pg->n)
		return false;
	k = tbl_entry_key(pg, i, &kl);
	if (i > 0 && tbl_keycmp(k, kl, key, klen) > 0)
		return false;
	if (i + 1 < pg->n) {
		k = tbl_entry_key(pg, i + 1, &kl);
		if (tbl_keycmp(k, kl, key, klen) <= 0)
			return false;
	}
	return true;
}

/* As tbl_path_seek_key, keeping the pages of p whose key range holds key:
 * the deepest such page is re-searched, those below it reloaded.  A key
 * near the last one (the next row of a secondary index, the next id of a
 * batch) usually costs a search in the leaf alone. */
int tbl_path_seek_near(struct gfs_tver *tv, int tree, struct path *p,
		       const char *key, size_t klen)
{
	int keep = 0;

	if (!p->depth || p->pg[0]->tree != tree)
		return tbl_path_seek_key(tv, tree, p, key, klen);
	while (keep < p->depth - 1 &&
	       child_covers(p->pg[keep], p->idx[keep], key, klen))
		keep++;
	while (p->depth > keep + 1)
		path_pop(p);
	p->before = 0;
	p->rank = 0;
	for (int d = 0; d < keep; d++) {
		p->before += bytes_before(p->pg[d], p->idx[d]);
		p->rank += count_before(p->pg[d], p->idx[d]);
	}
	return path_descend(tv, tree, p, key, klen);
}

/* What a descent by position counts: entries (rank) or, in PRIMARY,
 * export bytes. */
enum seek_by { BY_RANK, BY_BYTES };

/* Within leaf pg: the index of the entry holding target, counting from
 * what p has already passed (pg->n if it lies beyond). */
static uint32_t leaf_index(const struct page *pg, struct path *p,
			   enum seek_by by, uint64_t target)
{
	uint32_t i = 0;

	if (by == BY_RANK) {
		i = target - p->rank < pg->n ? (uint32_t)(target - p->rank) : pg->n;
		p->before += bytes_before(pg, i);
		p->rank += i;
		return i;
	}
	for (; i < pg->n; i++) {
		uint64_t l = tbl_leaf_bytes(pg, i, i + 1);

		if (p->before + l > target)
			break;
		p->before += l;
		p->rank++;
	}
	return i;
}

/* Positions p at the entry of rank target (BY_RANK; one past the end if
 * the tree has fewer) or at the PRIMARY row whose line covers export byte
 * target (BY_BYTES; p->before is then that row's first byte), in
 * O(log n) from the counts internal entries keep. */
static int path_seek_by(struct gfs_tver *tv, int tree, struct path *p,
			enum seek_by by, uint64_t target)
{
	struct tref root = tv->roots[tree];
	int rc;

	tbl_path_clear(p);
	if (!root.seg)
		return 0;
	rc = tbl_path_push(tv, p, &root, tree, -1);
	while (!rc) {
		struct page *pg = p->pg[p->depth - 1];
		struct ient e;
		uint32_t i = 0;

		if (pg->kind == TBL_PG_LEAF) {
			p->idx[p->depth - 1] = leaf_index(pg, p, by, target);
			return 0;
		}
		for (; i + 1 < pg->n; i++) {
			tbl_ient_at(pg, i, &e);
			if ((by == BY_RANK ? p->rank + e.count : p->before + e.bytes) > target)
				break;
			p->rank += e.count;
			p->before += e.bytes;
		}
		p->idx[p->depth - 1] = i;
		tbl_ient_at(pg, i, &e);
		rc = tbl_path_push(tv, p, &e.ref, tree, pg->level - 1);
	}
	return rc;
}

static int path_seek_rank(struct gfs_tver *tv, int tree, struct path *p,
			  uint64_t rank)
{
	return path_seek_by(tv, tree, p, BY_RANK, rank);
}

static int path_seek_off(struct gfs_tver *tv, struct path *p, uint64_t off)
{
	return path_seek_by(tv, GFS_IX_PRIMARY, p, BY_BYTES, off);
}

/* Moves p to the next valid leaf entry at or after its position.
 * 1 = positioned, 0 = end, <0 error. */
int tbl_path_valid(struct gfs_tver *tv, int tree, struct path *p)
{
	while (p->depth > 0) {
		int t = p->depth - 1;
		struct page *pg = p->pg[t];
		struct ient e;
		int rc;

		if (p->idx[t] >= pg->n) {
			path_pop(p);
			if (p->depth)
				p->idx[p->depth - 1]++;
			continue;
		}
		if (pg->kind == TBL_PG_LEAF)
			return 1;
		tbl_ient_at(pg, p->idx[t], &e);
		rc = tbl_path_push(tv, p, &e.ref, tree, pg->level - 1);
		if (rc)
			return rc;
	}
	return 0;
}

void tbl_path_entry(const struct path *p, struct lent *e)
{
	tbl_lent_at(p->pg[p->depth - 1], p->idx[p->depth - 1], e);
}

bool tbl_path_at_key(const struct path *p, const char *key, size_t klen)
{
	struct lent e;

	if (!p->depth || p->idx[p->depth - 1] >= p->pg[p->depth - 1]->n)
		return false;
	tbl_path_entry(p, &e);
	return tbl_bytes_eq(e.k, e.klen, key, klen);
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
	int rc = tbl_path_seek_key(tv, GFS_IX_PRIMARY, p, id, id_len);

	if (rc || !tbl_path_at_key(p, id, id_len))
		return rc;
	tbl_path_entry(p, &e);
	if (tbl_rec_decode(e.v, e.vlen, &r))
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
	tbl_path_clear(p);
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
	rc = tbl_path_seek_key(tv, GFS_IX_PRIMARY, p, id, id_len);
	if (!rc && tbl_path_at_key(p, id, id_len)) {
		*off = p->before;
		rc = 1;
	}
	tbl_path_clear(p);
	free(p);
	return rc;
}

/* ---- serving lines: each one's xxh3 is checked before its bytes go out --
 *
 * Pages are verified once, when they enter the page cache; a line is
 * verified every time its bytes are served (issue 8: a flipped bit in a
 * line must never be exported as wrong bytes with success).  A read that
 * covers a whole line hashes what it read; one that covers part of a line
 * reads the whole line once more to check it. */

static int line_corrupt(struct gfs_tver *tv, uint32_t seg, uint64_t off,
			const char *why)
{
	gfs_corrupt_note("corrupt table file '%s/%s/%u' at offset %llu: %s",
			 tv->ts->dir, tv->table, seg, (unsigned long long)off,
			 why);
	return GFS_ECORRUPT;
}

static int line_check(struct gfs_tver *tv, uint32_t seg, uint64_t off,
		      const void *line, size_t len, uint64_t hash)
{
	if (gfs_hash64(line, len) != hash)
		return line_corrupt(tv, seg, off, "line checksum mismatch");
	return 0;
}

/* Lines longer than this are probed before their buffer is allocated. */
#define LINE_PROBE_MIN ((uint32_t)1 << 16)

/* The whole line at (seg, off), checked against hash; *out is new.  The
 * length comes from a row record: for a long one, its last byte must exist
 * before the buffer does, so a corrupt length is GFS_ECORRUPT and never an
 * allocation of up to 4 GiB (found by fuzz/fuzz_table.c). */
static int line_fetch(struct gfs_tver *tv, uint32_t seg, uint64_t off,
		      uint32_t len, uint64_t hash, char **out)
{
	char c, *b = NULL;
	int rc = 0;

	if (len > LINE_PROBE_MIN)
		rc = tbl_seg_read(tv, seg, off + len - 1, &c, 1);
	if (!rc) {
		b = malloc(len ? len : 1);
		rc = b ? tbl_seg_read(tv, seg, off, b, len) : -ENOMEM;
	}

	if (rc == GFS_ECORRUPT)
		rc = line_corrupt(tv, seg, off, "line past the end of the file");
	if (!rc)
		rc = line_check(tv, seg, off, b, len, hash);
	if (rc) {
		free(b);
		b = NULL;
	}
	*out = b;
	return rc;
}

int gfs_tver_read_row(struct gfs_tver *tv, const struct gfs_row *row,
		      uint64_t off, void *buf, size_t len, size_t *n)
{
	size_t want;
	char *line;
	int rc;

	*n = 0;
	if (off > row->line_len)
		return -EINVAL;
	want = row->line_len - off < len ? (size_t)(row->line_len - off) : len;
	if (!want)
		return 0;
	if (off == 0 && want == row->line_len) {
		rc = tbl_seg_read(tv, row->seg, row->seg_off, buf, want);
		if (rc == GFS_ECORRUPT)
			rc = line_corrupt(tv, row->seg, row->seg_off,
					  "line past the end of the file");
		else if (!rc)
			rc = line_check(tv, row->seg, row->seg_off, buf, want,
					row->hash);
	} else {
		rc = line_fetch(tv, row->seg, row->seg_off, row->line_len,
				row->hash, &line);
		if (!rc)
			memcpy(buf, line + off, want);
		free(line);
	}
	if (!rc)
		*n = want;
	return rc;
}

/* ---- the export cursor ------------------------------------------------ */

/* A line (or part of one) copied by the current read, checked once the
 * read's spans are flushed. */
struct served {
	uint32_t seg, in, want, line_len;
	uint64_t seg_off, hash;
	char *to;
};

struct gfs_tcursor {
	struct gfs_tver *tv;
	struct path p;   /* PRIMARY: the row holding byte pos, if placed */
	uint64_t pos;    /* where the last read ended */
	uint32_t in;     /* pos's offset in that row's line */
	bool placed;
	struct served *sv; /* this read's lines, to check */
	size_t nsv, capsv;
	uint32_t ok_seg; /* the last partly served line already checked whole */
	uint64_t ok_off;
};

/* Bytes of one segment that go to consecutive bytes of the caller's
 * buffer: lines back to back (one load wrote them) read as one. */
struct span {
	uint32_t seg;
	uint64_t off;
	size_t len;
	char *to;
};

static int span_flush(struct gfs_tver *tv, struct span *s)
{
	int rc = s->len ? tbl_seg_read(tv, s->seg, s->off, s->to, s->len) : 0;

	s->len = 0;
	return rc;
}

/* Adds want bytes of segment seg at off, landing at to. */
static int span_add(struct gfs_tver *tv, struct span *s, uint32_t seg,
		    uint64_t off, size_t want, char *to)
{
	int rc = 0;

	if (s->len && (s->seg != seg || s->off + s->len != off))
		rc = span_flush(tv, s);
	if (!s->len)
		*s = (struct span){ seg, off, 0, to };
	s->len += want;
	return rc;
}

/* Copies from the cursor's position on, advancing it; *done counts the
 * bytes (all read once it returns 0). */
static int served_add(struct gfs_tcursor *c, const struct rec *r,
		      size_t want, char *to)
{
	void *p = gfs_array_grow(c->sv, &c->capsv, c->nsv, sizeof *c->sv, 64);

	if (!p)
		return -ENOMEM;
	c->sv = p;
	c->sv[c->nsv++] = (struct served){ r->seg, c->in, (uint32_t)want,
					   r->line_len, r->seg_off, r->hash,
					   to };
	return 0;
}

/* A part of a line: checked whole (once per line while a reader walks
 * through it in pieces), and the bytes served are the checked ones. */
static int served_part(struct gfs_tcursor *c, const struct served *s)
{
	char *line;
	int rc;

	if (c->ok_seg == s->seg && c->ok_off == s->seg_off)
		return 0;
	rc = line_fetch(c->tv, s->seg, s->seg_off, s->line_len, s->hash,
			&line);
	if (!rc) {
		memcpy(s->to, line + s->in, s->want);
		c->ok_seg = s->seg;
		c->ok_off = s->seg_off;
	}
	free(line);
	return rc;
}

static int served_check(struct gfs_tcursor *c)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < c->nsv; i++) {
		const struct served *s = &c->sv[i];

		if (s->in == 0 && s->want == s->line_len)
			rc = line_check(c->tv, s->seg, s->seg_off, s->to,
					s->want, s->hash);
		else
			rc = served_part(c, s);
	}
	c->nsv = 0;
	return rc;
}

static int cursor_copy(struct gfs_tcursor *c, char *buf, size_t len,
		       size_t *done)
{
	struct path *p = &c->p;
	struct span s = { 0, 0, 0, NULL };
	int rc = 0;

	while (*done < len) {
		struct lent e;
		struct rec r;
		size_t want;

		rc = tbl_path_valid(c->tv, GFS_IX_PRIMARY, p);
		if (rc <= 0)
			break;
		tbl_path_entry(p, &e);
		rc = tbl_rec_decode(e.v, e.vlen, &r) || c->in >= r.line_len
			     ? GFS_ECORRUPT : 0;
		if (rc)
			break;
		want = len - *done;
		if (want > r.line_len - c->in)
			want = r.line_len - c->in;
		rc = served_add(c, &r, want, buf + *done);
		if (!rc)
			rc = span_add(c->tv, &s, r.seg, r.seg_off + c->in, want,
				      buf + *done);
		if (rc)
			break;
		*done += want;
		c->in += (uint32_t)want;
		if (c->in == r.line_len) {
			p->before += r.line_len;
			p->idx[p->depth - 1]++;
			c->in = 0;
		}
	}
	if (rc >= 0)
		rc = span_flush(c->tv, &s);
	if (rc >= 0)
		rc = served_check(c);
	c->nsv = 0;
	return rc < 0 ? rc : 0;
}

int gfs_tcursor_new(struct gfs_tver *tv, struct gfs_tcursor **out)
{
	struct gfs_tcursor *c = calloc(1, sizeof *c);

	*out = c;
	if (!c)
		return -ENOMEM;
	c->tv = tv;
	return 0;
}

void gfs_tcursor_free(struct gfs_tcursor *c)
{
	if (!c)
		return;
	tbl_path_clear(&c->p);
	free(c->sv);
	free(c);
}

int gfs_tcursor_read(struct gfs_tcursor *c, uint64_t off, void *buf,
		     size_t len, size_t *n)
{
	size_t done = 0;
	int rc = 0;

	*n = 0;
	if (off >= c->tv->info.export_bytes || !len)
		return 0;
	if (!c->placed || off != c->pos) {
		c->placed = false;
		rc = path_seek_off(c->tv, &c->p, off);
		if (rc)
			return rc;
		c->in = (uint32_t)(off - c->p.before);
		c->placed = true;
	}
	rc = cursor_copy(c, buf, len, &done);
	c->placed = !rc;
	c->pos = off + done;
	if (!rc)
		*n = done;
	return rc;
}

int gfs_tver_read_export(struct gfs_tver *tv, uint64_t off, void *buf,
			 size_t len, size_t *n)
{
	struct gfs_tcursor *c;
	int rc = gfs_tcursor_new(tv, &c);

	*n = 0;
	if (rc)
		return rc;
	rc = gfs_tcursor_read(c, off, buf, len, n);
	gfs_tcursor_free(c);
	return rc;
}

/* ---- iterators -------------------------------------------------------- */

size_t tbl_esc_len(const char *s, size_t n)
{
	size_t z = 0;

	for (size_t i = 0; i < n; i++)
		z += s[i] == 0;
	return n + z;
}

char *tbl_esc_put(char *out, const char *s, size_t n)
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
	size_t n = tbl_esc_len(a, al) + 2;
	char *k, *q;

	if (parts > 1)
		n += tbl_esc_len(b, bl) + 2;
	if (parts > 2)
		n += tbl_esc_len(c, cl);
	k = malloc(n ? n : 1);
	if (!k)
		return NULL;
	q = tbl_esc_put(k, a, al);
	*q++ = 0;
	*q++ = 1;
	if (parts > 1) {
		q = tbl_esc_put(q, b, bl);
		*q++ = 0;
		*q++ = 1;
	}
	if (parts > 2)
		tbl_esc_put(q, c, cl);
	*len = n;
	return k;
}

/* A new iterator on index ix, positioned by key (by_rank false) or by
 * rank. */
static int titer_open(struct gfs_tver *tv, enum gfs_index ix, bool by_rank,
		      const char *key, size_t klen, uint64_t rank,
		      struct gfs_titer **out)
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
	rc = by_rank ? path_seek_rank(tv, ix, &it->p, rank)
		     : tbl_path_seek_key(tv, ix, &it->p, key ? key : "",
					 key ? klen : 0);
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
		return titer_open(tv, ix, false, start, start_len, 0, out);
	k = pair_key(start, start_len, NULL, 0, NULL, 0, 1, &kl);
	if (!k)
		return -ENOMEM;
	rc = titer_open(tv, ix, false, k, kl, 0, out);
	free(k);
	return rc;
}

int gfs_titer_new_at(struct gfs_tver *tv, enum gfs_index ix, uint64_t rank,
		     struct gfs_titer **out)
{
	return titer_open(tv, ix, true, NULL, 0, rank, out);
}

uint64_t gfs_titer_rank(const struct gfs_titer *it)
{
	/* Before the first next the position is the entry it will return;
	 * after, the position is the entry last returned. */
	return it->started && it->p.depth ? it->p.rank + 1 : it->p.rank;
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
	rc = titer_open(tv, ix, false, k, kl, 0, out);
	free(k);
	return rc;
}

/* Secondary entry -> the full row, from the primary tree.  Consecutive
 * entries often name nearby ids (an edge id starts with its source), so
 * rowp is re-searched from the lowest page that still covers the id. */
static int titer_row_of(struct gfs_titer *it, const struct lent *se,
			struct gfs_row *row)
{
	struct lent e;
	struct rec r;
	int rc = tbl_path_seek_near(it->tv, GFS_IX_PRIMARY, &it->rowp, se->v,
				    se->vlen);

	if (rc)
		return rc;
	if (!tbl_path_at_key(&it->rowp, se->v, se->vlen))
		return GFS_ECORRUPT; /* index entry without its row */
	tbl_path_entry(&it->rowp, &e);
	if (tbl_rec_decode(e.v, e.vlen, &r))
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
		it->p.rank++;
	}
	it->started = true;
	it->last_len = 0;
	rc = tbl_path_valid(it->tv, it->tree, &it->p);
	if (rc <= 0)
		return rc;
	tbl_path_entry(&it->p, &e);
	if (it->tree != GFS_IX_PRIMARY)
		return titer_row_of(it, &e, row);
	if (tbl_rec_decode(e.v, e.vlen, &r))
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
	    it->p.idx[it->p.depth - 1] >= it->p.pg[it->p.depth - 1]->n)
		return;
	tbl_path_entry(&it->p, &e);
	*key = e.k;
	*len = e.klen;
}

void gfs_titer_free(struct gfs_titer *it)
{
	if (!it)
		return;
	tbl_path_clear(&it->p);
	tbl_path_clear(&it->rowp);
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
	rc = tbl_path_seek_key(tv, GFS_IX_UNIQUE0 + (int)k, p, key, len);
	if (!rc && tbl_path_at_key(p, key, len)) {
		char *id;
		size_t id_len;

		tbl_path_entry(p, &e);
		id_len = e.vlen;
		id = gfs_memdup(e.v, id_len); /* get_into re-seeks p */
		rc = id ? get_into(tv, p, id, id_len, row) : -ENOMEM;
		free(id);
		if (rc == 0)
			rc = GFS_ECORRUPT; /* index entry without its row */
	}
	tbl_path_clear(p);
	free(p);
	return rc;
}

/* ---- diff of two versions ---------------------------------------------- */

/* One side of a diff: a path whose top is positioned at an item (a leaf
 * entry, or a child reference of an internal page not yet descended). */
struct dside {
	struct gfs_tver *tv;
	struct path p;
	uint64_t pages;
};

static bool ds_end(const struct dside *s)
{
	return s->p.depth == 0;
}

static struct page *ds_top(const struct dside *s)
{
	return s->p.pg[s->p.depth - 1];
}

static bool ds_internal(const struct dside *s)
{
	return ds_top(s)->kind != TBL_PG_LEAF;
}

/* Steps past the current item, popping finished pages. */
static void ds_advance(struct dside *s)
{
	s->p.idx[s->p.depth - 1]++;
	while (s->p.depth > 0 && s->p.idx[s->p.depth - 1] >= ds_top(s)->n) {
		path_pop(&s->p);
		if (s->p.depth)
			s->p.idx[s->p.depth - 1]++;
	}
}

static int ds_descend(struct dside *s)
{
	struct page *pg = ds_top(s);
	struct ient e;

	tbl_ient_at(pg, s->p.idx[s->p.depth - 1], &e);
	s->pages++;
	return tbl_path_push(s->tv, &s->p, &e.ref, GFS_IX_PRIMARY, pg->level - 1);
}

static int ds_start(struct dside *s, struct gfs_tver *tv)
{
	struct tref root = tv->roots[GFS_IX_PRIMARY];

	memset(s, 0, sizeof *s);
	s->tv = tv;
	if (!root.seg)
		return 0;
	s->pages = 1;
	return tbl_path_push(tv, &s->p, &root, GFS_IX_PRIMARY, -1);
}

/* The key of the current item (an internal item's key is a lower bound
 * of its subtree's keys). */
static const char *ds_key(const struct dside *s, uint32_t *kl)
{
	return tbl_entry_key(ds_top(s), s->p.idx[s->p.depth - 1], kl);
}

static int ds_report(struct dside *a, struct dside *b, gfs_tdiff_fn fn,
		     void *arg)
{
	struct gfs_row ra, rb;
	struct lent ea, eb;
	struct rec xa, xb;

	if (a) {
		tbl_path_entry(&a->p, &ea);
		if (tbl_rec_decode(ea.v, ea.vlen, &xa))
			return GFS_ECORRUPT;
		fill_row(&ra, ea.k, ea.klen, &xa, 0);
	}
	if (b) {
		tbl_path_entry(&b->p, &eb);
		if (tbl_rec_decode(eb.v, eb.vlen, &xb))
			return GFS_ECORRUPT;
		fill_row(&rb, eb.k, eb.klen, &xb, 0);
	}
	if (a && b && ea.vlen == eb.vlen && memcmp(ea.v, eb.v, ea.vlen) == 0)
		return 0; /* the same record: unchanged */
	return fn(arg, a ? &ra : NULL, b ? &rb : NULL);
}

/* Both sides at child references: skip a shared child, else descend the
 * higher one(s).  Shared pages sit at the same level in both trees. */
static int ds_both_internal(struct dside *a, struct dside *b)
{
	struct ient x, y;
	uint8_t la = ds_top(a)->level, lb = ds_top(b)->level;
	int rc = 0;

	tbl_ient_at(ds_top(a), a->p.idx[a->p.depth - 1], &x);
	tbl_ient_at(ds_top(b), b->p.idx[b->p.depth - 1], &y);
	if (x.ref.seg == y.ref.seg && x.ref.off == y.ref.off &&
	    x.ref.len == y.ref.len) {
		ds_advance(a);
		ds_advance(b);
		return 0;
	}
	if (la >= lb)
		rc = ds_descend(a);
	if (!rc && lb >= la)
		rc = ds_descend(b);
	return rc;
}

/* One side at a child reference, the other at a leaf entry (or done). */
static int ds_one_internal(struct dside *in, struct dside *leaf, bool in_is_a,
			   gfs_tdiff_fn fn, void *arg)
{
	uint32_t kl, ll;
	const char *k, *l;
	int rc;

	if (ds_end(leaf))
		return ds_descend(in);
	k = ds_key(in, &kl);
	l = ds_key(leaf, &ll);
	if (tbl_keycmp(l, ll, k, kl) >= 0)
		return ds_descend(in);
	/* Every key left on the internal side is >= k > l: l is on one side. */
	rc = in_is_a ? ds_report(NULL, leaf, fn, arg) : ds_report(leaf, NULL, fn, arg);
	ds_advance(leaf);
	return rc;
}

static int ds_leaves(struct dside *a, struct dside *b, gfs_tdiff_fn fn,
		     void *arg)
{
	uint32_t kl, ll;
	const char *k, *l;
	int c, rc;

	if (ds_end(a) || ds_end(b)) {
		struct dside *s = ds_end(a) ? b : a;

		rc = s == a ? ds_report(a, NULL, fn, arg) : ds_report(NULL, b, fn, arg);
		ds_advance(s);
		return rc;
	}
	k = ds_key(a, &kl);
	l = ds_key(b, &ll);
	c = tbl_keycmp(k, kl, l, ll);
	rc = ds_report(c <= 0 ? a : NULL, c >= 0 ? b : NULL, fn, arg);
	if (c <= 0)
		ds_advance(a);
	if (c >= 0)
		ds_advance(b);
	return rc;
}

int gfs_tver_diff(struct gfs_tver *a, struct gfs_tver *b, gfs_tdiff_fn fn,
		  void *arg, uint64_t *pages)
{
	struct dside x, y;
	int rc = ds_start(&x, a);

	if (!rc)
		rc = ds_start(&y, b);
	else
		memset(&y, 0, sizeof y);
	while (!rc && !(ds_end(&x) && ds_end(&y))) {
		bool ia = !ds_end(&x) && ds_internal(&x);
		bool ib = !ds_end(&y) && ds_internal(&y);

		if (ia && ib)
			rc = ds_both_internal(&x, &y);
		else if (ia)
			rc = ds_one_internal(&x, &y, true, fn, arg);
		else if (ib)
			rc = ds_one_internal(&y, &x, false, fn, arg);
		else
			rc = ds_leaves(&x, &y, fn, arg);
	}
	if (pages)
		*pages = x.pages + y.pages;
	tbl_path_clear(&x.p);
	tbl_path_clear(&y.p);
	return rc;
}
