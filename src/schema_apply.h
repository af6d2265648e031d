/* schema_apply.h - changing the schema of a populated store (issue 11,
 * docs/branches-design.md §6.1, docs/semantics.md "Schema changes").
 *
 *     struct gfs_schema_apply_opts o = { .drops = ..., .defaults = ... };
 *     struct gfs_schema_apply_result r;
 *     rc = gfs_schema_apply(g, text, len, "new.pg", &o, &r, &d);
 *     // rc == GFS_ESCHEMA: d = "new.pg:3:14: ..." (parse error), or
 *     //       r.n_refused changes need an option (r.changes say which)
 *     // rc == GFS_ECONFLICT: r.problems lists the rows invalid under the
 *     //       new schema (capped; r.problems_total counts them all)
 *     // rc == 0: r.version published (0: dry run, or the same schema)
 *     gfs_schema_apply_result_release(&r);
 *
 * The plan (gfs_schema_diff) compares the head's schema with the new one
 * type by type; the writer checks every row of every changed type against
 * the new schema under the table locks, rewrites the tables whose rows'
 * bytes or unique indexes change (keeping each row's serial), creates the
 * tables of new types, and publishes one graph version with the new schema
 * id through the one write door (commit.h), sidecar kind "schema".
 */
#ifndef GFS_SCHEMA_APPLY_H
#define GFS_SCHEMA_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph.h"
#include "schema.h"
#include "util.h"

struct gfs_schema_apply_opts {
	const char *const *drops;     /* "Type.prop": rewrite without it */
	size_t n_drops;
	const char *const *defaults;  /* "Type.prop=JSON": fill where absent */
	size_t n_defaults;
	bool dry_run;                 /* plan and check, write nothing */
	const char *actor;            /* NULL: the graph's */
	size_t max_problems;          /* rows listed (0: 1000); all are counted */
};

/* One difference between the old and the new schema. */
struct gfs_schange {
	char type[128];
	char prop[128];     /* "" for a type-level change */
	char what[256];     /* "new optional property", "type changed from I32 to String" */
	char hint[160];     /* refused: the option that would allow it, or "" */
	bool refused;       /* needs an option it was not given */
	bool checked;       /* checked against the rows */
};

/* One row that is not valid under the new schema. */
struct gfs_sproblem {
	char *type, *id, *prop, *value; /* prop/value may be "" */
	char *msg;
};

struct gfs_schema_apply_result {
	char old_id[17], new_id[17];
	struct gfs_schange *changes;
	size_t n_changes, n_refused;
	struct gfs_sproblem *problems;
	size_t n_problems;
	uint64_t problems_total;
	uint64_t rows_checked;     /* rows parsed under the new schema */
	uint64_t rows_rewritten;   /* rows whose bytes changed */
	size_t tables_rewritten, tables_created;
	uint64_t version;          /* published; 0 if none */
	bool unchanged;            /* the new schema is the head's */
	char op_id[GFS_ULID_LEN + 1];
	size_t cap_changes_, cap_problems_; /* private */
};
void gfs_schema_apply_result_release(struct gfs_schema_apply_result *r);

/* Publishes one graph version with the schema in text (DESIGN.md §3, the
 * one door).  Every error leaves the store as it was (a new schema file
 * that no version names may stay: fsck notes it as garbage).  Codes:
 * GFS_ESCHEMA (parse error, refused change, bad option; d says which),
 * GFS_ECONFLICT (rows invalid under the new schema, or a branch other than
 * main exists), GFS_ECAS (the head kept moving), GFS_ERECOVERY, I/O. */
int gfs_schema_apply(struct gfs_graph *g, const char *text, size_t len,
		     const char *filename,
		     const struct gfs_schema_apply_opts *o,
		     struct gfs_schema_apply_result *res, struct gfs_diag *d);

/* The plan without the store: the changes from old to new given the
 * options and, per type of old, whether its table has rows (rows_of(name)
 * true when it may have).  Appends to res->changes; sets n_refused.
 * GFS_ESCHEMA with d for an option that names nothing. */
int gfs_schema_diff(const struct gfs_schema *old, const struct gfs_schema *nw,
		    const struct gfs_schema_apply_opts *o,
		    bool (*has_rows)(const char *type, void *arg), void *arg,
		    struct gfs_schema_apply_result *res, struct gfs_diag *d);

/* The other branches that exist (schema apply is refused while any does,
 * docs/semantics.md "Schema changes").  *names: a new array of n new
 * strings (free each, then the array).  Read outside the locks: a branch
 * created from main after the check keeps the old schema, and a merge
 * across schemas is refused, so the race cannot mix schemas. */
int gfs_schema_other_branches(struct gfs_graph *g, char ***names, size_t *n);

#endif
