/* table_int.h - private to the table module (table.c: store, pages, paths
 * and reads; table_build.c: the builder and its spill; table_verify.c:
 * verification) and its tests.
 *
 * The version file format is described at the top of table.c; here are its
 * numbers and the little-endian accessors every encoder/decoder uses, so a
 * test can build or poke at a file without duplicating them, then the
 * structures and helpers the three files share.
 */
#ifndef GFS_TABLE_INT_H
#define GFS_TABLE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "table.h"
#include "util.h"

#define TBL_MAGIC "GFSTBL01"     /* first 8 bytes of every version file */
#define TBL_END_MAGIC "GFSTEND1" /* last 8 bytes: a torn file lacks them */
#define TBL_FORMAT 1u

#define TBL_HDR_LEN 128u      /* fixed header, checksum in its last 8 bytes */
#define TBL_FOOT_FIXED 56u    /* footer counters before the root table */
#define TBL_FOOT_ROOT 16u     /* one root reference per tree */
#define TBL_TRAILER 24u       /* footer_len, pad, checksum, end magic */

#define TBL_PAGE_HDR 24u      /* kind tree level pad n len seg off */
#define TBL_PAGE_CSUM 8u
#define TBL_PAGE_TARGET 4096u /* split point; a page may exceed it by one entry */
#define TBL_PAGE_MAX (64u << 20)
#define TBL_MAX_HEIGHT 32
#define TBL_MAX_KEY GFS_MAX_KEY /* ids, endpoint ids and unique keys (util.h) */
#define TBL_MAX_UNIQUE 64u

/* Builder memory: ops beyond this many bytes are sorted and spilled to a
 * temp file (table.c, "builder").  A variable so tests can make small
 * builds spill; nothing else changes it. */
extern size_t tbl_spill_bytes;

#define TBL_IENT_FIXED 36u    /* klen4 seg4 off8 len4 count8 bytes8 (+ key) */

/* Row record (PRIMARY leaf value) field offsets; variable part follows:
 * src, dst, then n_ukeys x (u32 len, bytes). */
#define TBL_REC_SERIAL 0u
#define TBL_REC_CHANGED 8u
#define TBL_REC_FLAGS 12u
#define TBL_REC_HASH 16u
#define TBL_REC_SEG 24u
#define TBL_REC_SEGOFF 28u
#define TBL_REC_LINELEN 36u
#define TBL_REC_DATAOFF 40u
#define TBL_REC_DATALEN 44u
#define TBL_REC_SRCLEN 48u
#define TBL_REC_DSTLEN 52u
#define TBL_REC_NUKEYS 56u
#define TBL_REC_FIXED 60u

/* Stored flag bit (never exported in gfs_row.flags): the row is an edge,
 * so an empty src/dst still means "edge with an empty endpoint id". */
#define TBL_REC_EDGE (1u << 31)

enum tbl_page_kind { TBL_PG_LEAF = 1, TBL_PG_INTERNAL = 2 };

static inline void tbl_put32(char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (char)(v >> (8 * i));
}

static inline void tbl_put64(char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (char)(v >> (8 * i));
}

static inline uint32_t tbl_get32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 |
	       (uint32_t)u[3] << 24;
}

static inline uint64_t tbl_get64(const char *p)
{
	return (uint64_t)tbl_get32(p) | (uint64_t)tbl_get32(p + 4) << 32;
}

/* ---- shared structures (table.c) -------------------------------------- */

#define TS_SLOTS 32 /* fds the store's shared cache keeps on segments */

struct tref {
	uint32_t seg, len;
	uint64_t off;
};

/* A parsed, verified B+tree page.  Pages from tbl_page_get() live in the
 * store's page cache and are shared: read-only, valid while the caller
 * holds its reference (tbl_page_put() drops it).  Pages of segment S never
 * change once written, so one copy serves every version referencing it. */
struct page {
	char *buf;
	uint32_t len, n;
	uint8_t kind, tree, level;
	uint32_t *eo; /* entry offsets */
	/* Cache bookkeeping, protected by ts->pc_mu; ts NULL: a private page,
	 * freed by its one put. */
	struct gfs_tstore *ts;
	unsigned refs;
	uint32_t tid, seg;
	uint64_t off;
	size_t cost;                /* bytes charged to the budget */
	struct page *hnext;         /* hash chain */
	struct page *lprev, *lnext; /* LRU list of unreferenced pages */
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

/* pg[0] is the root; pg[d + 1] is child idx[d] of pg[d].  Holds one
 * reference per page (tbl_path_clear() drops them). */
struct path {
	struct page *pg[TBL_MAX_HEIGHT];
	uint32_t idx[TBL_MAX_HEIGHT];
	int depth;
	uint64_t before; /* PRIMARY: export bytes before the position */
	uint64_t rank;   /* read path: entries of the tree before the position */
};

struct fdslot {
	char *table;
	uint32_t ver;
	int fd;
	unsigned refs;
	uint64_t used;
};

/* One fd a version holds on an older segment. */
struct segfd {
	uint32_t seg;
	int fd;
	unsigned busy; /* preads using it now: it may not be closed */
};

struct gfs_tstore {
	char *dir; /* STORE/tables */
	pthread_mutex_t mu;
	struct fdslot slot[TS_SLOTS]; /* protected by mu */
	uint64_t clock;               /* protected by mu */
	char **names;                 /* table numbers (tid), protected by mu */
	size_t n_names, cap_names;    /* protected by mu */
	long fd_budget;               /* per-version fds all versions may hold */
	long fds_held;                /* atomic */
	uint64_t preads;              /* atomic */
	uint64_t fd_fallbacks;        /* atomic */
	pthread_mutex_t pc_mu;        /* the page cache: */
	struct page **bucket;         /* protected by pc_mu */
	size_t nbucket, npages;       /* protected by pc_mu */
	size_t bytes, budget;         /* protected by pc_mu */
	struct page lru;              /* sentinel; lnext = most recent; pc_mu */
	uint64_t hits, misses, evictions; /* protected by pc_mu */
};

struct gfs_tver {
	struct gfs_tstore *ts;
	char *table;
	uint32_t tid; /* the table's number in ts: the page cache's key */
	char path[PATH_MAX];
	uint32_t version;
	int fd;
	struct gfs_tver_info info;
	uint32_t n_unique, n_trees;
	struct tref *roots;
	uint64_t lines_start, lines_end, pages_end;
	pthread_mutex_t fd_mu;
	struct segfd *segfd; /* sorted by seg; protected by fd_mu.  An fd
			      * stays open until gfs_tver_close. */
	size_t nsegfd, capsegfd; /* protected by fd_mu */
};

/* ---- shared helpers (table.c) ----------------------------------------- */

/* Keys and names. */
int tbl_keycmp(const char *a, size_t al, const char *b, size_t bl);
bool tbl_bytes_eq(const char *a, size_t al, const char *b, size_t bl);
bool tbl_name_ok(const char *t);
int tbl_mkpath(char *out, size_t n, const char *dir, const char *table,
	       const char *name);
int tbl_verpath(char *out, size_t n, const char *dir, const char *table,
		uint32_t v);
size_t tbl_esc_len(const char *s, size_t n);
char *tbl_esc_put(char *out, const char *s, size_t n);

/* Segments (table_store.c).  tbl_table_id: the table's number in the
 * store.  tbl_seg_read: len bytes at off of segment seg, through tv's own
 * fds (or the store's shared ones).  tbl_tver_close_fds: gfs_tver_close's. */
int tbl_table_id(struct gfs_tstore *ts, const char *table, uint32_t *tid);
int tbl_seg_read(struct gfs_tver *tv, uint32_t seg, uint64_t off, void *buf,
		 size_t len);
void tbl_tver_close_fds(struct gfs_tver *tv);

/* Pages (table_store.c).  tbl_page_get returns the page ref points at, checked (level -1 =
 * any), from the store's cache or read and verified into it; *out holds a
 * reference until tbl_page_put.  tbl_page_read always reads the file (and
 * caches nothing): verification must see the bytes on disk.  The entry
 * accessors assume a page that passed either. */
int tbl_page_get(struct gfs_tver *tv, const struct tref *ref, int tree,
		 int level, struct page **out, struct gfs_diag *d);
int tbl_page_read(struct gfs_tver *tv, const struct tref *ref, int tree,
		  int level, struct page **out, struct gfs_diag *d);
void tbl_page_put(struct page *pg);
void tbl_lent_at(const struct page *pg, uint32_t i, struct lent *e);
void tbl_ient_at(const struct page *pg, uint32_t i, struct ient *e);
const char *tbl_entry_key(const struct page *pg, uint32_t i, uint32_t *kl);

/* Row records. */
int tbl_rec_decode(const char *v, uint32_t vlen, struct rec *r);
void tbl_rec_ukey(const struct rec *r, unsigned k, const char **p,
		  size_t *len);

/* Paths: a root-to-leaf position in one tree.  tbl_path_seek_near is
 * tbl_path_seek_key that keeps the pages whose key range holds key (a
 * neighbour of the last key costs no lookup above its leaf). */
void tbl_path_clear(struct path *p);
int tbl_path_push(struct gfs_tver *tv, struct path *p, const struct tref *ref,
		  int tree, int level);
uint64_t tbl_leaf_bytes(const struct page *pg, uint32_t from, uint32_t to);
uint32_t tbl_child_for_key(const struct page *pg, const char *key,
			   size_t klen);
uint32_t tbl_leaf_lower_bound(const struct page *pg, const char *key,
			      size_t klen);
int tbl_path_seek_key(struct gfs_tver *tv, int tree, struct path *p,
		      const char *key, size_t klen);
int tbl_path_seek_near(struct gfs_tver *tv, int tree, struct path *p,
		       const char *key, size_t klen);
int tbl_path_valid(struct gfs_tver *tv, int tree, struct path *p);
void tbl_path_entry(const struct path *p, struct lent *e);
bool tbl_path_at_key(const struct path *p, const char *key, size_t klen);

#endif
