/* recover.h - the recovery sweep (DESIGN.md §4) and heal-first writers (§3).
 *
 *     struct gfs_recover_opts o = { .wait = false, .max_passes = 3 };
 *     struct gfs_recover_report r;
 *     rc = gfs_recover_sweep(g, &o, &r, &d);
 *     // rc == GFS_EVIOLATION: refuse a read-write mount, d names the
 *     // operation, tables and versions to inspect
 *
 * Sidecars are resolved oldest first, the manifest re-read before each;
 * each sidecar's locks are taken (tried, for a mount), the sidecar re-read
 * under them, each table classified (violation / no movement / ours / ours
 * compensated / foreign), then rolled forward, rolled back or refused.
 * Every recovery publish is exact: sidecar still there, pins still as seen.
 */
#ifndef GFS_RECOVER_H
#define GFS_RECOVER_H

#include <stdbool.h>
#include <stddef.h>

#include "graph.h"
#include "lock.h"

struct gfs_recover_opts {
	bool wait;           /* wait for sidecar locks (graphctl recover, heal) instead of trying */
	bool orphans;        /* also compensate orphan versions no sidecar names (graphctl recover) */
	bool temps;          /* also remove every table's ".tmp-*" files under its LOCK_EX,
				sidecar or not (graphctl recover: leftovers of older builds) */
	unsigned max_passes; /* passes over sidecars whose pins moved (0 = default 3) */
	const char *resolver;/* who resolves, for audit records (NULL = the graph's actor) */
	const char *const *only_tables; /* heal-first: only sidecars naming one of these */
	size_t n_only;
	/* Heal-first: the caller's lock mode on each only_tables[k]; only
	 * sidecars whose lock set conflicts with it are resolved (EX against
	 * anything, SH against EX).  NULL: every sidecar naming one of them. */
	const enum gfs_lock_mode *only_modes;
	/* Added for graphctl recover and the mount's log (may be NULL): one
	 * human line per operation resolved, kept or refused.  msg is
	 * borrowed for the call. */
	void (*note)(const char *msg, void *arg);
	void *note_arg;
};

struct gfs_recover_report {
	unsigned rolled_forward, rolled_back, discarded; /* resolved here */
	unsigned gone;        /* resolved by someone else meanwhile */
	unsigned busy;        /* locks held: a live writer or sweeper owns it */
	unsigned retry_left;  /* pins kept moving past max_passes */
	unsigned violations;
	unsigned orphans_compensated;
	unsigned orphans_retired;     /* orphan tables below the counter, only retired */
	unsigned temps_removed; /* dead writers' ".tmp-*" files removed */
	unsigned refused;     /* sidecars that do not parse or are newer: kept,
				 reported in d; the sweep still returns 0 */
};

/* Returns 0 (everything resolvable resolved; busy ones left alone),
 * GFS_EVIOLATION (at least one sidecar kept: d says which), or an error. */
int gfs_recover_sweep(struct gfs_graph *g, const struct gfs_recover_opts *o,
		      struct gfs_recover_report *r, struct gfs_diag *d);

#endif
