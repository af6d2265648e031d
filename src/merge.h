/* merge.h - the row-level three-way merge of a graph's tables
 * (docs/branches-design.md §5, docs/semantics.md "Merge").
 *
 *     struct gfs_merge *m;
 *     gfs_merge_new(schema, &m)
 *     for each type t whose pins differ (b base, tt target, sv source):
 *         gfs_merge_table(m, t, b, tt, sv)     the rows changed since b on
 *                                              each side, classified
 *     gfs_merge_resolve(m, prefer)             endpoint conflicts; --prefer
 *     gfs_merge_validate(m, &commit)           the merged graph, like a load
 *     if (gfs_merge_unresolved(m) == 0) for each t:
 *         switch (gfs_merge_action(m, t))      keep t / adopt sv / write:
 *         GFS_MERGE_WRITE: gfs_merge_build(m, t, ts, version, op_id, &d)
 *     gfs_merge_report_json(m) / _text(m)      every conflict and invalid row
 *     gfs_merge_free(m)
 *
 * Rows are matched by id.  A side "changed" a row when its presence or its
 * line differs from the base's (a new serial with the same bytes is no
 * change).  Per id: changed on one side only -> the source's change is
 * taken (a target-only change is already in the target); changed the same
 * way on both -> kept; otherwise a conflict: GFS_MC_CHANGED (both changed,
 * differently; a row added on both sides with different bytes included)
 * or GFS_MC_DELETED (deleted on one side, changed on the other).  An edge
 * one side put whose endpoint node the other side deleted is
 * GFS_MC_ENDPOINT.  The merged result is checked with apply.c's
 * validation (gfs_apply_check: @unique, @card, endpoints, types) against
 * the target's pins; what fails is GFS_MC_INVALID, which --prefer never
 * resolves.
 *
 * Cost: gfs_tver_diff skips the pages both versions reference, so a
 * table costs O(rows changed x log n) pages on each side (counted in
 * gfs_merge_pages), and memory is O(rows changed).
 *
 * The versions handed in are borrowed and must outlive m.  One thread.
 */
#ifndef GFS_MERGE_H
#define GFS_MERGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema.h"
#include "table.h"
#include "util.h"

struct gfs_merge;
struct gfs_commit;

enum gfs_merge_prefer {
	GFS_PREFER_NONE = 0,
	GFS_PREFER_SOURCE,
	GFS_PREFER_TARGET,
};
/* "source", "target" -> 0; else -EINVAL. */
int gfs_merge_prefer_parse(const char *s, enum gfs_merge_prefer *out);

enum gfs_merge_kind {
	GFS_MC_CHANGED = 0,  /* "changed": changed differently on both sides */
	GFS_MC_DELETED,      /* "deleted": deleted on one side, changed on the other */
	GFS_MC_ENDPOINT,     /* "endpoint": an edge whose endpoint the other side deleted */
	GFS_MC_INVALID,      /* "invalid": the merged result fails validation */
};
const char *gfs_merge_kind_name(enum gfs_merge_kind k);

/* One problem.  Borrowed from m. */
struct gfs_merge_item {
	enum gfs_merge_kind kind;
	size_t type;            /* index in the schema's types */
	struct gfs_buf key;     /* the row's id (node key or edge id) */
	/* The row's line on each side ('\n' stripped; len 0 = absent). */
	struct gfs_buf target, source;
	bool in_target, in_source;
	/* GFS_MC_ENDPOINT: the node one side deleted, and which side. */
	size_t node_type;
	struct gfs_buf node_key;
	bool deleted_by_source;
	bool resolved;          /* by --prefer */
	char msg[512];          /* GFS_MC_INVALID: why (as a load says it) */
};

/* What becomes of a table. */
enum gfs_merge_action {
	GFS_MERGE_KEEP = 0, /* the target's version stays */
	GFS_MERGE_ADOPT,    /* the source's version, shared: no file written */
	GFS_MERGE_WRITE,    /* a new version built on the target's */
};

/* Returns a new merge for schema s (borrowed, must outlive m); free with
 * gfs_merge_free(). */
int gfs_merge_new(const struct gfs_schema *s, struct gfs_merge **out);
void gfs_merge_free(struct gfs_merge *m);

/* Diffs type t's versions: b base, tt target, sv source (one table; any
 * two may be the same version).  Call once per type whose pins differ;
 * a type never given is kept.  Returns 0 or <0 (I/O, corruption). */
int gfs_merge_table(struct gfs_merge *m, size_t t, struct gfs_tver *b,
		    struct gfs_tver *tt, struct gfs_tver *sv);

/* After every gfs_merge_table: finds the endpoint conflicts and, with
 * prefer, resolves every conflict for that side (the source: its change
 * is taken, and an edge the target put to a node the source deleted is
 * deleted, a node the target deleted is put back for the source's edge;
 * the target: the source's change is not taken).  Call once. */
int gfs_merge_resolve(struct gfs_merge *m, enum gfs_merge_prefer prefer);

/* Validates the taken changes against the target's versions that c has
 * pinned (every type open in c->ts[t].tv, read only): the result is the
 * merged graph, checked as gfs_graph_apply checks a batch; each change
 * that fails becomes a GFS_MC_INVALID item.  Returns 0 or <0. */
int gfs_merge_validate(struct gfs_merge *m, struct gfs_commit *c);

/* Items: every conflict (resolved ones flagged) and invalid row, in
 * type order then id. */
size_t gfs_merge_items(const struct gfs_merge *m,
		       const struct gfs_merge_item **items);
/* Conflicts not resolved plus invalid rows: the merge publishes nothing
 * unless this is 0. */
size_t gfs_merge_unresolved(const struct gfs_merge *m);
/* Rows the merge takes from the source (puts and deletes, all tables). */
uint64_t gfs_merge_taken(const struct gfs_merge *m);
/* Pages the diffs read. */
uint64_t gfs_merge_pages(const struct gfs_merge *m);

enum gfs_merge_action gfs_merge_action(const struct gfs_merge *m, size_t t);

/* Writes type t's merged version `version` on the target's version (for
 * GFS_MERGE_ADOPT too: the source's rows built on t, a file of its own): the
 * taken rows are copied into its own segment with their serial and
 * `changed` (a source row whose new serial the target also gave a new
 * row gets a fresh one above both sides' next_serial), put-if-absent as
 * gfs_tbuild_commit (its -EEXIST and failpoints).  Not for
 * GFS_MERGE_KEEP (-EINVAL). */
int gfs_merge_build(struct gfs_merge *m, size_t t, struct gfs_tstore *ts,
		    uint32_t version, const char *op_id, struct gfs_diag *d);

/* The items as JSON text {"conflicts":[...],"invalid":[...]}, one line:
 * each {"kind","type","key","target","source"} with the rows' JSON (null
 * when absent), "resolved", and for "endpoint" "node_type", "node_key",
 * "deleted_by"; invalid ones {"type","key","message"}.  A new string
 * (free()), NULL on ENOMEM. */
char *gfs_merge_report_json(const struct gfs_merge *m);
/* The same as lines of text, one per item, into out (appended):
 *   conflict changed Person 'alice': target {...} | source {...}
 *   invalid Person 'bob': <message> */
int gfs_merge_report_text(const struct gfs_merge *m, struct gfs_buf *out);

/* ---- the writer (merge_op.c): `graphctl merge` ------------------------
 *
 * Merges branch `source` into branch `into` as one graph version on
 * `into` with parents [H, S] (docs/branches-design.md §5).  Returns 0
 * when it published (res->version), or found nothing to do
 * (res->already_merged: the source is an ancestor of the target);
 * GFS_ECONFLICT when conflicts or invalid rows remain (nothing is
 * published; res->report_json / report_text list them all); -ENOENT an
 * unknown branch; -EINVAL merging a branch into itself or across
 * schemas; d says which.  A fast-forward (the target is the base), and a
 * merge whose every table is kept or adopted, write no table file and no
 * sidecar: one publish transaction. */
struct gfs_graph;

struct gfs_merge_opts {
	const char *source;            /* branch merged */
	const char *into;              /* branch written ("main") */
	enum gfs_merge_prefer prefer;
	const char *actor;             /* NULL = gfs_graph_actor(g) */
};

struct gfs_merge_result {
	uint64_t version;              /* published, 0 if none */
	uint64_t target_gv, source_gv, base_gv;
	bool fast_forward, already_merged;
	uint64_t rows_taken;
	size_t tables_written, tables_adopted;
	size_t conflicts, resolved, invalid;
	char op_id[GFS_ULID_LEN + 1];
	char *report_json, *report_text; /* owned: gfs_merge_result_release */
};

int gfs_graph_merge(struct gfs_graph *g, const struct gfs_merge_opts *o,
		    struct gfs_merge_result *res, struct gfs_diag *d);
void gfs_merge_result_release(struct gfs_merge_result *res);

/* The highest-numbered common ancestor of graph versions t and s, walking
 * parents (through gc's tombstones, which keep them).  -ENOENT with d when
 * they have none; the base itself may be a tombstone (the caller checks:
 * gc keeps the bases of every pair of branches). */
struct gfs_manifest;
int gfs_merge_base(struct gfs_manifest *m, uint64_t t, uint64_t s,
		   uint64_t *base, struct gfs_diag *d);

#endif
