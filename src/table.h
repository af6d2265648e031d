/* table.h - immutable table versions (DESIGN.md §2), stored as files.
 *
 * A table ("node:Person", "edge:Knows") is a directory STORE/tables/<table>/
 * holding one file per version, named by its decimal number.  Each version
 * file is a segment of a copy-on-write B+tree: the rows and tree pages that
 * version changed, plus a root that may point into older versions' files.
 * So a new version costs O(rows changed x log n) and shares the rest.
 *
 * Reading:
 *     struct gfs_tstore *ts;           gfs_tstore_open(store_dir, &ts)
 *     struct gfs_tver *tv;             gfs_tver_open(ts, "node:Person", 3, &tv, &d)
 *     gfs_tver_get(tv, id, id_len, &row)          one row by id
 *     gfs_titer_new(tv, GFS_IX_PRIMARY, NULL, 0, &it); while (gfs_titer_next(it, &row) == 1) ...
 *     gfs_tver_read_export(tv, off, buf, len, &n)  bytes of the whole-table export
 *     gfs_tcursor_new(tv, &c); gfs_tcursor_read(c, off, buf, len, &n) ...
 *         the same, sequential reads continuing where the last one ended;
 *         gfs_tcursor_free(c)
 *     gfs_tver_close(tv); gfs_tstore_close(ts);
 *
 * Writing (the commit module calls this; nothing else does):
 *     gfs_tbuild_new(ts, table, parent_tv_or_NULL, flags, &b)
 *     gfs_tbuild_put(b, &rowput) / gfs_tbuild_del(b, id, len)   ids strictly increasing
 *     gfs_tbuild_commit(b, version, op_id, &d)   put-if-absent: tmp + fsync + link + fsync dir
 *       = gfs_tbuild_finish(b, version, op_id, &d)  trees, footer, header, fsync of the tmp
 *       + gfs_tbuild_link(b, &d)                     link + fsync dir (may run on another thread)
 *     gfs_tbuild_free(b)
 *
 * Thread safety: a gfs_tstore may be shared by threads (its fd cache and
 * page cache are locked); a gfs_tver may be shared (its lazily opened
 * segment fds are locked); iterators, cursors and builders belong to one
 * thread.
 *
 * Resources: a gfs_tver keeps an fd on every segment it has read from
 * until it is closed, within the store's fd budget (beyond it, reads share
 * the store's 32 fds); the store caches parsed B+tree pages up to a byte
 * budget shared by all its versions (docs/decisions.md, "table read path").
 */
#ifndef GFS_TABLE_H
#define GFS_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct gfs_tstore;
struct gfs_tver;
struct gfs_titer;
struct gfs_tbuild;

/* Returns a new handle on STORE/tables; free with gfs_tstore_close(). */
int gfs_tstore_open(const char *store_dir, struct gfs_tstore **out);
void gfs_tstore_close(struct gfs_tstore *ts);

/* The page cache's budget: parsed pages not in use are evicted, least
 * recently used first, to keep their bytes under it (pages in use by a
 * path stay).  Default GFS_TSTORE_PAGE_CACHE_DEFAULT; 0 disables the cache
 * (every page is read and verified on each use).  Thread-safe. */
#define GFS_TSTORE_PAGE_CACHE_DEFAULT ((size_t)16 << 20)
void gfs_tstore_set_page_cache(struct gfs_tstore *ts, size_t bytes);

/* How many fds all open versions together may hold on older segments
 * (beyond the store's 32 shared ones).  Default: half the soft
 * RLIMIT_NOFILE at gfs_tstore_open, at least 64.  Versions already over a
 * lowered budget keep their fds.  Thread-safe. */
void gfs_tstore_set_fd_budget(struct gfs_tstore *ts, long fds);

/* Counters since gfs_tstore_open (a snapshot; thread-safe). */
struct gfs_tstore_stats {
	uint64_t page_hits, page_misses, page_evictions;
	uint64_t pages, page_bytes, page_budget; /* cached now */
	uint64_t preads;        /* reads of table files (pages and lines) */
	uint64_t fds_held;      /* per-version fds open now */
	uint64_t fd_fallbacks;  /* reads that used a shared or temporary fd */
};
void gfs_tstore_stats(struct gfs_tstore *ts, struct gfs_tstore_stats *out);

/* Creates STORE/tables/<table>/ (idempotent, fsyncs the parent). */
int gfs_table_create(struct gfs_tstore *ts, const char *table);

/* The table's head: its highest existing version, 0 if none.  Does not read
 * version contents. */
int gfs_table_head(struct gfs_tstore *ts, const char *table, uint32_t *head);
/* Calls fn(v, bytes, arg) for every version file of the table (one listing
 * of its directory, one fstatat per version for its size; no header is
 * read), in directory order.  A table without a directory has none.  fn's
 * nonzero return stops and is returned. */
int gfs_table_versions(struct gfs_tstore *ts, const char *table,
		       int (*fn)(uint32_t v, uint64_t bytes, void *arg),
		       void *arg);
/* One listing of the table's directory: *vers a new sorted array of every
 * version number there (free()), *n its length, *tmps the number of temp
 * files (".tmp-*").  No header is read.  A table without a directory has
 * none. */
int gfs_table_list(struct gfs_tstore *ts, const char *table, uint32_t **vers,
		   size_t *n, unsigned *tmps);
/* Does version v's name exist (one stat; W2's probe)?  0 with *exists set,
 * or an I/O error. */
int gfs_table_version_exists(struct gfs_tstore *ts, const char *table,
			     uint32_t v, bool *exists);
/* fsyncs the table's directory: every version name in it is durable once
 * this returns 0.  Recovery calls it before publishing versions that
 * another process linked, whose own directory fsync may have failed. */
int gfs_table_sync(struct gfs_tstore *ts, const char *table);

/* Removes the temp files ("." "tmp-*") that writers killed before link()
 * left in the table's directory; *removed counts them.  The caller must
 * hold the table's LOCK_EX (lock.h): a live builder's temp file would go
 * too.  Lists the directory: O(versions).  Recovery calls it when it
 * resolves a sidecar (a leftover belongs to one), never a commit. */
int gfs_table_remove_tmp(struct gfs_tstore *ts, const char *table,
			 unsigned *removed);
/* Counts them (fsck: garbage, not corruption).  No lock needed. */
int gfs_table_count_tmp(struct gfs_tstore *ts, const char *table,
			unsigned *count);

/* Opens one version.  -ENOENT if it does not exist; GFS_ECORRUPT/GFS_EFORMAT
 * with detail in d if its header or footer does not verify. */
int gfs_tver_open(struct gfs_tstore *ts, const char *table, uint32_t version,
		  struct gfs_tver **out, struct gfs_diag *d);
void gfs_tver_close(struct gfs_tver *tv);

struct gfs_tver_info {
	uint32_t version;
	uint32_t parent;        /* version this one was built on (0 = none) */
	uint64_t rows;
	uint64_t export_bytes;  /* sum of every row's line length */
	uint64_t next_serial;
	uint64_t created_ns;
	char op_id[GFS_ULID_LEN + 1]; /* operation that created this file */
	bool compensation;      /* written by recovery to undo op_id */
	uint32_t content_of;    /* compensation: the version whose content it repeats */
};
void gfs_tver_info(const struct gfs_tver *tv, struct gfs_tver_info *out);

enum gfs_row_flags {
	/* Edge: when created, no other edge of the table had the same
	 * (src, dst); its file is "<dst>.json", other edges of the pair get a
	 * name with their id.  Never changes while the row exists. */
	GFS_ROW_PAIR_FIRST = 1 << 0,
};

/* One row as stored.  Pointers are borrowed: valid until the next call on
 * the same iterator, or the next gfs_tver_get() with the same row struct. */
struct gfs_row {
	const char *id;
	size_t id_len;
	const char *src, *dst; /* edges only, else NULL/0 */
	size_t src_len, dst_len;
	uint64_t serial;   /* stable for the row's life (inode numbers) */
	uint32_t changed;  /* table version that last changed its bytes */
	uint32_t flags;    /* enum gfs_row_flags */
	uint64_t hash;     /* gfs_hash64 of the line */
	uint32_t line_len; /* the export line, '\n' included */
	uint32_t data_off, data_len; /* the data object inside the line */
	uint64_t export_off; /* iterators on GFS_IX_PRIMARY: line offset in the export */
	/* Where the line lives (opaque to callers). */
	uint32_t seg;
	uint64_t seg_off;
	/* Private to table.c: the storage gfs_tver_get() allocated for this
	 * row (freed by the next get into it or by gfs_row_release()). */
	void *own_;
	const void *self_;
};

/* Looks a row up by id.  Returns 1 found, 0 absent, <0 error.  The row's
 * pointers stay valid until the next gfs_tver_get with the same row. Uses
 * per-row storage owned by *row: call gfs_row_release() when done (the row
 * needs no initialization before its first get; a later get into the same
 * row frees the previous storage; gfs_titer_next never touches it). */
int gfs_tver_get(struct gfs_tver *tv, const char *id, size_t id_len,
		 struct gfs_row *row);
void gfs_row_release(struct gfs_row *row);

/* Reads len bytes of row's line from offset off (0 <= off <= line_len),
 * *n set to the count read (short only at the end of the line). */
int gfs_tver_read_row(struct gfs_tver *tv, const struct gfs_row *row,
		      uint64_t off, void *buf, size_t len, size_t *n);

/* Reads bytes [off, off+len) of the whole-table export (every row's line in
 * id order, export_bytes long) without scanning: O(log n) to find off.
 * *n is short only at the end of the export.  For many reads use a
 * cursor: this is one read through a temporary one. */
int gfs_tver_read_export(struct gfs_tver *tv, uint64_t off, void *buf,
			 size_t len, size_t *n);

/* A position in the export.  A read at the offset where the previous one
 * ended continues without a lookup; any other offset costs O(log n).
 * Lines that lie back to back in one segment (rows one load wrote) are
 * copied with one read.  Returns a new cursor on tv (which must outlive
 * it); free with gfs_tcursor_free().  One thread at a time. */
struct gfs_tcursor;
int gfs_tcursor_new(struct gfs_tver *tv, struct gfs_tcursor **out);
/* As gfs_tver_read_export. */
int gfs_tcursor_read(struct gfs_tcursor *c, uint64_t off, void *buf,
		     size_t len, size_t *n);
void gfs_tcursor_free(struct gfs_tcursor *c);

enum gfs_index {
	GFS_IX_PRIMARY = 0, /* by id */
	GFS_IX_SRC = 1,     /* edges: by (src, dst, id) */
	GFS_IX_DST = 2,     /* edges: by (dst, src, id) */
	GFS_IX_UNIQUE0 = 3, /* GFS_IX_UNIQUE0 + k: k-th unique constraint, by key */
};

/* Iterates an index in key order from the first entry >= start (NULL = the
 * beginning).  For GFS_IX_SRC the start is a source id (and optionally
 * gfs_titer_new_pair for (src, dst)); for GFS_IX_DST a target id.  Entries
 * of secondary indexes yield the full row.  Returns a new iterator; free with
 * gfs_titer_free(). */
int gfs_titer_new(struct gfs_tver *tv, enum gfs_index ix, const char *start,
		  size_t start_len, struct gfs_titer **out);
/* Starts GFS_IX_SRC at (src, dst) or GFS_IX_DST at (dst, src). */
int gfs_titer_new_pair(struct gfs_tver *tv, enum gfs_index ix, const char *a,
		       size_t a_len, const char *b, size_t b_len,
		       struct gfs_titer **out);
/* Starts index ix at its entry of rank `rank` (0-based: the entry that
 * `rank` calls of gfs_titer_next from the beginning would skip), in
 * O(log n) from the subtree counts; past the end, the first next returns
 * 0.  Returns a new iterator; free with gfs_titer_free(). */
int gfs_titer_new_at(struct gfs_tver *tv, enum gfs_index ix, uint64_t rank,
		     struct gfs_titer **out);
/* The rank of the entry the next gfs_titer_next will return (the index's
 * entry count at the end). */
uint64_t gfs_titer_rank(const struct gfs_titer *it);
/* 1 = *row filled, 0 = end, <0 = error. */
int gfs_titer_next(struct gfs_titer *it, struct gfs_row *row);
/* For unique indexes: the key bytes of the entry last returned. */
void gfs_titer_key(const struct gfs_titer *it, const char **key, size_t *len);
void gfs_titer_free(struct gfs_titer *it);

/* What changed between two versions a and b of one table: fn is called,
 * in id order, for every row present in only one of them (the other
 * NULL) or whose record differs (its bytes, serial or `changed`).  Pages
 * both versions reference are skipped unread, so the cost is
 * O(rows changed x log n) pages, whatever the table's size.  The rows are
 * borrowed for the call.  A nonzero return from fn stops the walk and is
 * returned.  *pages (may be NULL): pages read. */
typedef int (*gfs_tdiff_fn)(void *arg, const struct gfs_row *old,
			    const struct gfs_row *new_row);
int gfs_tver_diff(struct gfs_tver *a, struct gfs_tver *b, gfs_tdiff_fn fn,
		  void *arg, uint64_t *pages);

/* Looks up unique index k by key: 1 found (*row filled), 0 absent, <0 error. */
int gfs_tver_get_unique(struct gfs_tver *tv, unsigned k, const char *key,
			size_t len, struct gfs_row *row);

/* Offset of row id in the export (for mapping); 1 found, 0 absent. */
int gfs_tver_export_offset(struct gfs_tver *tv, const char *id, size_t id_len,
			   uint64_t *off);

enum gfs_tbuild_flags {
	GFS_TBUILD_REPLACE = 1 << 0, /* overwrite: rows not put are deleted */
};

/* One row to write.  ukeys: one per unique constraint of the table's type
 * (see codec.h: an empty key is not indexed). */
struct gfs_rowput {
	const char *id;
	size_t id_len;
	const char *src, *dst;
	size_t src_len, dst_len;
	const char *line;     /* canonical export line, '\n' included */
	size_t line_len;
	uint32_t data_off, data_len;
	const struct gfs_buf *ukeys;
	size_t n_ukeys;
	/* 0 = the builder's (the parent row's, or a fresh one).  A merge
	 * (merge.c) copies a row from another branch's version and keeps
	 * its identity: serial (the builder's next_serial goes above it)
	 * and `changed` (the version that last changed its bytes there). */
	uint64_t serial;
	uint32_t changed;
	/* A node rename (apply.c repoint) moves every edge of a pair to one
	 * new pair that no edge had (the new key did not exist): an edge
	 * whose parent row is in pair (pair_src, pair_dst) keeps its
	 * PAIR_FIRST there, so the plain name `<to>.json` moves with the
	 * rename.  NULL: a re-pointed edge joins its new pair as a new one. */
	const char *pair_src, *pair_dst;
	size_t pair_src_len, pair_dst_len;
};

/* Starts a version built on parent (NULL: an empty table).  n_unique is the
 * number of unique indexes the table keeps.  Puts and deletes must come in
 * strictly increasing id order (memcmp, then length).  A put whose line is
 * byte-identical to the parent's row keeps the row unchanged (same serial,
 * same `changed`).  A put of an existing id keeps its serial. */
int gfs_tbuild_new(struct gfs_tstore *ts, const char *table,
		   struct gfs_tver *parent, unsigned n_unique, unsigned flags,
		   struct gfs_tbuild **out);
int gfs_tbuild_put(struct gfs_tbuild *b, const struct gfs_rowput *r);
/* Deleting an absent id is not an error. */
int gfs_tbuild_del(struct gfs_tbuild *b, const char *id, size_t id_len);
/* Writes the version file: temp file in the table directory, fsync, link()
 * to "<version>" (EEXIST -> -EEXIST: someone else has that version), fsync
 * the directory, unlink the temp.  Failpoints table/after_tmp_write,
 * table/after_link.  Consumes nothing: free b afterwards either way. */
int gfs_tbuild_commit(struct gfs_tbuild *b, uint32_t version,
		      const char *op_id, struct gfs_diag *d);
/* commit in two steps: finish writes and fsyncs the temp file (the slow
 * part, which a loader runs beside its next table's puts), link makes it
 * version `version` (put-if-absent, as above).  A failed finish leaves no
 * temp file; link after a failed or without a finish is -EINVAL. */
int gfs_tbuild_finish(struct gfs_tbuild *b, uint32_t version,
		      const char *op_id, struct gfs_diag *d);
int gfs_tbuild_link(struct gfs_tbuild *b, struct gfs_diag *d);
void gfs_tbuild_free(struct gfs_tbuild *b);

/* Writes version `version` whose content equals version content_of, stamped
 * op_id and marked as a compensation, put-if-absent as above.  O(1): it
 * points at content_of's root. */
int gfs_table_write_compensation(struct gfs_tstore *ts, const char *table,
				 uint32_t version, uint32_t content_of,
				 const char *op_id, struct gfs_diag *d);
/* The same for a compensation whose number is not undone+1 (reserved from
 * the table's counter, docs/branches-design.md §3.1): undone is the
 * version it undoes (its parent; serials go above undone's). */
int gfs_table_write_compensation_of(struct gfs_tstore *ts, const char *table,
				    uint32_t version, uint32_t undone,
				    uint32_t content_of, const char *op_id,
				    struct gfs_diag *d);

/* Writes version `version` with the rows of src in one fresh segment:
 * no parent (its header says parent 0), every row keeping its serial,
 * its `changed` version and its PAIR_FIRST flag, so inode numbers and
 * mtimes do not move (graphctl compact).  Put-if-absent as
 * gfs_tbuild_commit.  O(rows) reads of src. */
int gfs_table_write_compact(struct gfs_tstore *ts, struct gfs_tver *src,
			    uint32_t version, const char *op_id,
			    struct gfs_diag *d);

/* Verifies one version file completely (checksums, page bounds, tree order,
 * counts, export length).  0 = clean, GFS_ECORRUPT with detail. */
int gfs_tver_verify(struct gfs_tstore *ts, const char *table, uint32_t version,
		    struct gfs_diag *d);

#endif
