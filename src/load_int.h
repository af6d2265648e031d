/* load_int.h - internals shared by load.c and the recovery module.
 *
 * gfs_heal_tables() is the writer's "heal first" step (DESIGN.md §3): it
 * resolves every dead writer's sidecar that names one of the tables, waiting
 * for each sidecar's locks, holding none of the caller's.  Until the recovery
 * module provides it (weak symbol), a writer refuses with GFS_ERECOVERY. */
#ifndef GFS_LOAD_INT_H
#define GFS_LOAD_INT_H

#include <stddef.h>

#include "graph.h"
#include "util.h"

int gfs_heal_tables(struct gfs_graph *g, const char *const *tables, size_t n,
		    struct gfs_diag *d);

#endif
