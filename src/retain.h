/* retain.h - retention (issue 11, docs/branches-design.md §6.2-§6.4):
 * compact (writer kind `compact`), gc (writer kind `gc`), and what both
 * need: the closure of a table version (the version files it reads).
 *
 *     gfs_graph_compact(g, type_or_NULL, branch_or_NULL, actor, &res, &d)
 *         one fresh single-segment version per chosen table, published as
 *         one graph version with op `compact` through commit.c's door
 *     gfs_graph_gc(g, &opts, &res, &d)         see gc.c's header
 *
 * The closure comes from the manifest's `tver` index (parent,
 * content_of; docs/format.md "Table-version index") behind
 * gfs_tclosure_add.
 */
#ifndef GFS_RETAIN_H
#define GFS_RETAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"

/* A set of version numbers of one table (a bitmap). */
struct gfs_vset {
	uint8_t *bits;
	uint32_t cap; /* numbers below cap fit */
};
void gfs_vset_release(struct gfs_vset *s);
bool gfs_vset_has(const struct gfs_vset *s, uint32_t v);
int gfs_vset_add(struct gfs_vset *s, uint32_t v);

/* Adds version v of table and every version it reads pages or lines
 * from (its parent chain, and a compensation's content_of chain) to *s.
 * Versions already in *s are not read again.  -ENOENT (with d) if one
 * of them is missing. */
int gfs_tclosure_add(struct gfs_graph *g, const char *table, uint32_t v,
		     struct gfs_vset *s, struct gfs_diag *d);
/* The bytes of the version files in *s (their sizes on disk). */
int gfs_tclosure_bytes(struct gfs_tstore *ts, const char *table,
		       const struct gfs_vset *s, uint64_t *bytes);

struct gfs_compact_table {
	char table[GFS_TABLE_NAME_MAX];
	uint32_t from, to;          /* the pin before, the fresh version */
	uint64_t rows;
	uint64_t bytes_before;      /* the files the old pin read */
	uint64_t bytes_after;       /* the fresh version's file */
};

struct gfs_compact_result {
	uint64_t version;           /* graph version published, 0 if none */
	char op_id[GFS_ULID_LEN + 1];
	struct gfs_compact_table *tables; /* free() */
	size_t n_tables;
};

/* On failure *res is cleared (nothing to release).
 * Compacts, on branch (NULL: main), the head's table of type `type` (NULL: every table whose pin
 * reads more than one file).  A table that already reads one file is left
 * alone; when none is left res->version is 0 and nothing is written.
 * -ENOENT with d for an unknown type. */
int gfs_graph_compact(struct gfs_graph *g, const char *type,
		      const char *branch, const char *actor,
		      struct gfs_compact_result *res,
		      struct gfs_diag *d);
void gfs_compact_result_release(struct gfs_compact_result *res);

/* ---- gc ---------------------------------------------------------------- */

struct gfs_gc_opts {
	uint64_t keep_last;     /* >0: keep each branch's newest keep_last
				   graph versions */
	uint64_t keep_since_ns; /* >0: keep those committed at or after it */
	bool dry_run;           /* plan and report; change nothing */
	const char *actor;      /* NULL: the graph's */
};

struct gfs_gc_result {
	char op_id[GFS_ULID_LEN + 1]; /* "" if nothing was armed */
	uint64_t *removed;      /* graph versions removed (or, dry run, to be) */
	size_t n_removed;
	uint64_t *held;         /* outside the window but held open: kept */
	size_t n_held;
	size_t n_unlinked;      /* table-version files unlinked (or to be) */
	uint64_t bytes_freed;
	size_t rounds;          /* gc operations run (etcd: several when one
				 * transaction cannot remove them all; op_id
				 * is the last one's) */
};
void gfs_gc_result_release(struct gfs_gc_result *r);

/* Removes the graph versions outside the window, which is per branch
 * (gc.c's header: each branch keeps its own newest keep_last versions or
 * those since keep_since; never a branch head, a merge base of two
 * branches, a version a pending merge names, or one a mount holds:
 * lock.h), and unlinks the table-version files no
 * kept version needs (docs/branches-design.md §6.3, steps G1-G5).
 * Exactly one of keep_last, keep_since_ns is set (-EINVAL otherwise).
 * On failure *res is cleared. */
int gfs_graph_gc(struct gfs_graph *g, const struct gfs_gc_opts *o,
		 struct gfs_gc_result *res, struct gfs_diag *d);

/* G4 of a confirmed gc (its plan): unlinks each listed file in the
 * plan's order (per table, descending), ENOENT counting as done, then
 * fsyncs each table's directory; *bytes (may be NULL) sums the plan's
 * bytes.  gc itself and recovery's roll forward call it. */
int gfs_gc_unlink(struct gfs_graph *g, const struct gfs_sc_gc *plan,
		  uint64_t *bytes, struct gfs_diag *d);

#endif
