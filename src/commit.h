/* commit.h - the steps of the one write door (DESIGN.md §3), shared by
 * every writer that publishes a graph version from table versions it
 * builds: a load (load.c) and a batch of small changes (apply.c).
 *
 *     struct gfs_commit c;
 *     gfs_commit_init(&c, g, schema, "load", actor, "load", d);
 *     for each table t it writes / reads: c.ts[t].written / .read = true
 *     gfs_commit_lock(&c, FP_x_AFTER_HEAL, FP_x_AFTER_LOCKS)
 *                                       heal first, flock sorted, heal again
 *                                       if a writer died in between
 *     gfs_commit_pin(&c)                pins of the head (GFS_ECAS if the
 *                                       schema is no longer c.s), refuse
 *                                       orphans, c.ts[t].tv for every
 *                                       involved table (NULL at pin 0: a
 *                                       table new in a schema apply)
 *     ... validate against c.ts[t].tv ...
 *     gfs_commit_arm(&c)                A: stale temp files, op id, sidecar
 *     rc = gfs_commit_fp(GFS_FP_COMMIT_AFTER_SIDECAR)
 *     for each written table: build version c.ts[t].next on c.ts[t].tv,
 *         rc = gfs_commit_linked(&c, t, rc_of_link)   (after_table)
 *     rc = gfs_commit_confirm(&c)       B: the commit point
 *     rc = gfs_commit_finish(&c, rc, op, detail, &version)
 *                                       C: CAS publish; or, after any
 *                                       failure past arm, recovery's code
 *     gfs_commit_release(&c)            pinned versions, locks, head
 *
 * Messages name the writer with `what` ("this load", "this write"). */
#ifndef GFS_COMMIT_H
#define GFS_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "failpoints.h"
#include "graph.h"
#include "lock.h"
#include "manifest.h"
#include "schema.h"
#include "table.h"
#include "util.h"

/* One schema type's table in this operation. */
struct gfs_commit_table {
	bool written, read;   /* LOCK_EX / LOCK_SH */
	bool excl;            /* LOCK_EX even if only read (schema apply: a
				 table it may rewrite, decided under the lock) */
	uint32_t pin;         /* at the head read under the locks */
	uint32_t next;        /* the version a written table gets: pin+1, or
				 head+1 above settled versions */
	struct gfs_tver *tv;  /* the pinned version (gfs_commit_pin) */
	char table[GFS_TABLE_NAME_MAX];
};

struct gfs_commit {
	struct gfs_graph *g;
	const struct gfs_schema *s;   /* borrowed from g */
	struct gfs_diag *d;
	const char *kind;             /* the sidecar's writer kind */
	const char *actor;
	const char *what;             /* "load", "write": for messages */
	struct gfs_commit_table *ts;  /* one per schema type, then the ones
					 gfs_commit_add_table appended */
	size_t n_ts;
	/* Schema apply only (NULL otherwise): the head must have schema_old
	 * (instead of s->id); the sidecar records both; the publish sets
	 * schema_new and compares schema_old in its CAS. */
	const char *schema_old, *schema_new;
	struct gfs_gv *gv;            /* the head gfs_commit_pin read */
	const char *branch;           /* the branch written; NULL = main (set
					 after gfs_commit_init) */
	char branch_id[GFS_ULID_LEN + 1]; /* its id, read with its head: the
					 publish fails if it was re-created */
	struct gfs_sc_merge merge;    /* a merge: recorded in the sidecar; its
					 source_gv is the second parent */
	struct gfs_lockset *locks;
	char op_id[GFS_ULID_LEN + 1];
};

/* Fills c; ts gets every type's table name, nothing involved yet.
 * Returns 0 or -ENOMEM. */
int gfs_commit_init(struct gfs_commit *c, struct gfs_graph *g,
		    const struct gfs_schema *s, const char *kind,
		    const char *actor, const char *what, struct gfs_diag *d);
/* Appends a table that is not a type of c->s (schema apply: a type the
 * new schema removes); *idx is its index in c->ts.  0 or -ENOMEM. */
int gfs_commit_add_table(struct gfs_commit *c, const char *table, size_t *idx);
/* Closes the pinned versions, releases the locks, frees what init took;
 * the flags stay (a retry may lock again). */
void gfs_commit_unlock(struct gfs_commit *c);
void gfs_commit_release(struct gfs_commit *c);

/* Written or read. */
bool gfs_commit_involved(const struct gfs_commit_table *t);

/* A failpoint as an error code: 0 or -errno. */
int gfs_commit_fp(enum gfs_fp id);

int gfs_commit_lock(struct gfs_commit *c, enum gfs_fp after_heal,
		    enum gfs_fp after_locks);
/* Under the locks: reads the branch head's pins (GFS_ECAS, no message, when
 * its schema is not c->s; -ENOENT with a message when the branch does not
 * exist), refuses orphans (a next version above settled
 * ones), opens the pinned version of every involved table (c->ts[t].tv). */
int gfs_commit_pin(struct gfs_commit *c);

/* A: removes dead writers' temp files of written tables, takes a new op
 * id, records the sidecar.  On failure nothing is armed. */
int gfs_commit_arm(struct gfs_commit *c);
/* After table t's version was linked (rc its outcome): names an -EEXIST,
 * hits commit/after_table. */
int gfs_commit_linked(struct gfs_commit *c, size_t t, int rc);
/* B: confirms the sidecar, then commit/after_confirm and
 * commit/before_publish. */
int gfs_commit_confirm(struct gfs_commit *c);
/* C: rc == 0 publishes (op, detail: JSON object text) and hits
 * commit/after_publish; rc != 0 (or a failed publish) resolves our own
 * sidecar through recovery's code: 0 and *version set if it rolled
 * forward, else rc.  Only after a successful arm. */
int gfs_commit_finish(struct gfs_commit *c, int rc, const char *op,
		      const char *detail, uint64_t *version);

#endif
