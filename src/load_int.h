/* load_int.h - internals shared by load.c and the recovery module.
 *
 * gfs_heal_tables() is the writer's "heal first" step (DESIGN.md §3): it
 * resolves every sidecar whose lock set conflicts with the caller's
 * (modes[k] is the caller's lock on tables[k]: EX conflicts with anything,
 * SH with EX; modes NULL = all EX), waiting for each such sidecar's locks
 * and holding none of the caller's (recover.c).  A live writer whose locks
 * do not conflict is never waited for.
 *
 * gfs_recover_own() is how a writer that failed after arming undoes (or,
 * past its commit point, finishes) its own operation while it still holds
 * its locks: the same classification and publish as the sweep. */
#ifndef GFS_LOAD_INT_H
#define GFS_LOAD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"
#include "util.h"

#include "lock.h"

int gfs_heal_tables(struct gfs_graph *g, const char *const *tables,
		    const enum gfs_lock_mode *modes, size_t n, struct gfs_diag *d);

/* The orphans of table (docs/branches-design.md §3.3): version files with
 * no tver record or a `void` one.  One listing of the directory and one
 * range read of the index; no header is read.  *orphans is a new sorted
 * array (free()), *n its length. */
int gfs_table_orphans(struct gfs_graph *g, const char *table,
		      uint32_t **orphans, size_t *n);

/* The rule before the index (docs/recovery.md, format 2): *settled when
 * head > pin and every version in (pin, head] is a compensation stamped by
 * an operation no sidecar names.  For tests only. */
int gfs_settled_above(struct gfs_graph *g, const char *table, uint32_t pin,
		      uint32_t head, bool *settled);

struct gfs_recover_own_result {
	bool resolved;    /* the sidecar is gone (rolled back, forward, discarded) */
	bool forward;     /* rolled forward: the operation is published */
	uint64_t version; /* graph version published, 0 if none */
};
/* 0 resolved; GFS_EVIOLATION / GFS_ERECOVERY / errors: the sidecar stays. */
int gfs_recover_own(struct gfs_graph *g, const char *op_id,
		    struct gfs_recover_own_result *res, struct gfs_diag *d);

#endif
