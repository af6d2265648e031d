/* merge_op.c - `graphctl merge`: the merge as a writer kind
 * (docs/branches-design.md §5; merge.h has the engine).
 *
 *   1. plan      the heads T (target) and S (source), their base B (the
 *                highest common ancestor over `parents`), the same schema
 *                on all three; B == S: already merged; B == T: a
 *                fast-forward (step 5)
 *   2. lock      EX on every table whose pins differ between T and S, SH
 *                on every other (the validation reads them); heal first;
 *                the target head re-read under the locks must still be T,
 *                else plan again (at most MERGE_TRIES times)
 *   3. merge     per table: keep t, adopt s, or a row-level merge
 *                (merge.c); validation; any conflict or invalid row ->
 *                GFS_ECONFLICT with the report, nothing armed
 *   4. write     when any table needs a file: arm (kind "merge"), build
 *                every table that changes on t (an adopted one too: its
 *                version is t plus the source's rows, so the sidecar is a
 *                load's and recovery needs no adopt rule), confirm,
 *                publish with parents [H, S] through gfs_commit_finish
 *   5. no file   a fast-forward, or only kept and adopted tables: one
 *                publish transaction, no sidecar: the tables that differ
 *                move to S's pins, every other pin must still be T's.
 *                A fast-forward locks and heals too (step 2; it skips
 *                step 3): a dead writer's sidecar on the target is
 *                resolved before the target's pins move under it.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "manifest.h"
#include "merge.h"

#define MERGE_TRIES 8

struct plan {
	struct gfs_branch tb, sb;
	struct gfs_gv *t, *s, *b;   /* target head, source head, base */
	const struct gfs_schema *schema;
};

static void plan_free(struct plan *p)
{
	gfs_gv_free(p->t);
	gfs_gv_free(p->s);
	gfs_gv_free(p->b);
	memset(p, 0, sizeof *p);
}

/* A frontier entry of the base search: gv n, reached from these sides. */
struct front {
	uint64_t n;
	unsigned sides; /* 1 target, 2 source */
};

static int front_add(struct front **v, size_t *n, size_t *cap, uint64_t gv, unsigned sides)
{
	struct front *p;

	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].n == gv) {
			(*v)[i].sides |= sides;
			return 0;
		}
	if (!(p = gfs_array_grow(*v, cap, *n + 1, sizeof *p, 8)))
		return -ENOMEM;
	*v = p;
	p[(*n)++] = (struct front){ gv, sides };
	return 0;
}

/* The highest-numbered common ancestor of t and s (parents point to
 * lower numbers, so the first gv taken in decreasing order that both
 * reach is it): O(gvs since the fork).  A version gc removed keeps its
 * parents in its tombstone, so the walk goes through it. */
int gfs_merge_base(struct gfs_manifest *m, uint64_t t, uint64_t s, uint64_t *base,
		   struct gfs_diag *d)
{
	struct front *v = NULL;
	size_t n = 0, cap = 0;
	int rc = front_add(&v, &n, &cap, t, 1);

	*base = 0;
	if (!rc)
		rc = front_add(&v, &n, &cap, s, 2);
	while (!rc && n && !*base) {
		size_t hi = 0;
		struct gfs_gv *gv = NULL;
		for (size_t i = 1; i < n; i++)
			if (v[i].n > v[hi].n)
				hi = i;
		struct front f = v[hi];
		v[hi] = v[--n];
		if (f.sides == 3) {
			*base = f.n;
			break;
		}
		rc = gfs_manifest_get_any(m, f.n, &gv);
		if (rc == -ENOENT)
			gfs_diag_set(d, "graph version %" PRIu64 " on the way to the merge base does not exist", f.n);
		for (size_t i = 0; !rc && i < gv->n_parents; i++)
			rc = front_add(&v, &n, &cap, gv->parents[i], f.sides);
		gfs_gv_free(gv);
	}
	free(v);
	if (!rc && !*base) {
		gfs_diag_set(d, "the branches have no common graph version");
		rc = -ENOENT;
	}
	return rc;
}

static int read_branch(struct gfs_manifest *m, const char *name, struct gfs_branch *b,
		       struct gfs_gv **gv, struct gfs_diag *d)
{
	int rc = gfs_manifest_branch_read(m, name, b, gv);

	if (rc == -ENOENT)
		gfs_diag_set(d, "no branch '%s' (see 'graphctl branch list')", name);
	return rc;
}

static int make_plan(struct gfs_graph *g, const struct gfs_merge_opts *o, struct plan *p,
		     struct gfs_diag *d)
{
	struct gfs_manifest *m = gfs_graph_manifest(g);
	uint64_t base = 0;
	int rc;

	if (!strcmp(o->source, o->into)) {
		gfs_diag_set(d, "cannot merge branch '%s' into itself", o->source);
		return -EINVAL;
	}
	rc = read_branch(m, o->into, &p->tb, &p->t, d);
	if (!rc)
		rc = read_branch(m, o->source, &p->sb, &p->s, d);
	if (!rc)
		rc = gfs_merge_base(m, p->t->version, p->s->version, &base, d);
	if (!rc && (rc = gfs_manifest_get(m, base, &p->b)) == -ENOENT)
		gfs_diag_set(d, "their common graph version %" PRIu64 " was removed by gc: cannot merge three-way", base);
	/* base == S: already merged, whatever the schemas (branches-design.md
	 * §5 step 1 checks that before the schemas); found by the model test */
	if (!rc && base != p->s->version &&
	    (strcmp(p->t->schema_id, p->s->schema_id) ||
	     strcmp(p->t->schema_id, p->b->schema_id))) {
		gfs_diag_set(d, "cannot merge across schemas: '%s' has schema %s, '%s' has %s, their base (graph version %" PRIu64 ") %s",
			     o->into, p->t->schema_id, o->source, p->s->schema_id, base, p->b->schema_id);
		rc = -EINVAL;
	}
	if (!rc)
		rc = gfs_graph_schema(g, p->t->schema_id, &p->schema, d);
	return rc;
}

/* ---- the log record --------------------------------------------------- */

static char *log_detail(const struct gfs_merge_opts *o, const struct plan *p,
			const struct gfs_merge_result *res)
{
	json_t *root = json_pack("{s:s,s:I,s:I,s:I,s:b,s:I,s:I}", "source", o->source,
				 "source_gv", (json_int_t)p->s->version,
				 "base_gv", (json_int_t)p->b->version,
				 "target_gv", (json_int_t)p->t->version,
				 "fast_forward", res->fast_forward,
				 "rows_taken", (json_int_t)res->rows_taken,
				 "conflicts_resolved", (json_int_t)res->resolved);
	char *out = NULL;

	if (root && o->prefer != GFS_PREFER_NONE)
		json_object_set_new(root, "prefer", json_string(o->prefer == GFS_PREFER_SOURCE
								 ? "source" : "target"));
	if (root)
		out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return out;
}

/* ---- no file: one transaction ----------------------------------------- */

/* Tables whose pin moves from `from` to `to` are written, every other is
 * read at from's pin: the CAS then holds the whole head to `from`. */
static struct gfs_sc_table *moves(const struct gfs_gv *from, const struct gfs_gv *to,
				  const bool *keep, size_t *n)
{
	struct gfs_sc_table *v = calloc(from->n_pins + 1, sizeof *v);

	*n = 0;
	for (size_t i = 0; v && i < from->n_pins; i++) {
		uint32_t dst = gfs_gv_pin(to, from->pins[i].table);
		struct gfs_sc_table *e = &v[(*n)++];
		snprintf(e->table, sizeof e->table, "%s", from->pins[i].table);
		e->expected = from->pins[i].version;
		e->written = dst && dst != e->expected && !(keep && keep[i]);
		e->post = e->written ? dst : e->expected;
	}
	return v;
}

static int publish_pins(struct gfs_graph *g, const struct gfs_merge_opts *o,
			const struct plan *p, const bool *keep, struct gfs_merge_result *res,
			struct gfs_diag *d)
{
	struct gfs_sc_table *tabs;
	struct gfs_publish pub;
	size_t n = 0;
	char *detail = log_detail(o, p, res);
	int rc = gfs_ulid_new(res->op_id);

	tabs = moves(p->t, p->s, keep, &n);
	if (!rc && (!tabs || !detail))
		rc = -ENOMEM;
	memset(&pub, 0, sizeof pub);
	pub.branch = o->into;
	pub.branch_id = p->tb.id;
	pub.expected_schema = p->t->schema_id;
	pub.merge_parent = p->s->version;
	pub.op = "merge";
	pub.op_id = res->op_id;
	pub.actor = o->actor ? o->actor : gfs_graph_actor(g);
	pub.detail = detail;
	pub.tables = tabs;
	pub.n_tables = n;
	if (!rc)
		rc = gfs_manifest_publish(gfs_graph_manifest(g), &pub, &res->version, d);
	free(tabs);
	free(detail);
	return rc;
}

/* ---- the row-level merge ---------------------------------------------- */

struct mop {
	struct gfs_graph *g;
	const struct gfs_merge_opts *o;
	struct plan p;
	struct gfs_commit c;
	struct gfs_merge *m;
	struct gfs_tver **bv, **sv; /* per type: base and source versions */
	struct gfs_merge_result *res;
	struct gfs_diag *d;
};

static void mop_release(struct mop *x)
{
	for (size_t t = 0; x->p.schema && t < x->p.schema->n_types; t++) {
		if (x->bv)
			gfs_tver_close(x->bv[t]);
		if (x->sv)
			gfs_tver_close(x->sv[t]);
	}
	free(x->bv);
	free(x->sv);
	gfs_merge_free(x->m);
	if (x->c.ts)
		gfs_commit_release(&x->c);
	plan_free(&x->p);
}

/* Locks: EX where T and S differ, SH elsewhere; the head under the locks
 * must still be T (else GFS_ECAS: plan again). */
static int lock_and_pin(struct mop *x)
{
	const struct gfs_schema *s = x->p.schema;
	int rc = gfs_commit_init(&x->c, x->g, s, "merge", x->o->actor, "merge", x->d);

	if (rc)
		return rc;
	x->c.branch = x->o->into;
	for (size_t t = 0; t < s->n_types; t++) {
		x->c.ts[t].written = gfs_gv_pin(x->p.t, x->c.ts[t].table) !=
				     gfs_gv_pin(x->p.s, x->c.ts[t].table);
		x->c.ts[t].read = !x->c.ts[t].written;
	}
	rc = gfs_commit_fp(GFS_FP_MERGE_AFTER_PLAN);
	if (!rc)
		rc = gfs_commit_lock(&x->c, GFS_FP_MERGE_AFTER_HEAL, GFS_FP_MERGE_AFTER_LOCKS);
	if (!rc)
		rc = gfs_commit_pin(&x->c);
	if (!rc && x->c.gv->version != x->p.t->version)
		rc = GFS_ECAS;
	return rc;
}

static int open_side(struct mop *x, const struct gfs_gv *gv, size_t t, struct gfs_tver **out)
{
	return gfs_tver_open(gfs_graph_tables(x->g), x->c.ts[t].table,
			     gfs_gv_pin(gv, x->c.ts[t].table), out, x->d);
}

static int diff_tables(struct mop *x)
{
	const struct gfs_schema *s = x->p.schema;
	int rc = gfs_merge_new(s, &x->m);

	x->bv = calloc(s->n_types + 1, sizeof *x->bv);
	x->sv = calloc(s->n_types + 1, sizeof *x->sv);
	if (!rc && (!x->bv || !x->sv))
		rc = -ENOMEM;
	for (size_t t = 0; !rc && t < s->n_types; t++) {
		if (!x->c.ts[t].written)
			continue;
		rc = open_side(x, x->p.b, t, &x->bv[t]);
		if (!rc)
			rc = open_side(x, x->p.s, t, &x->sv[t]);
		if (!rc)
			rc = gfs_merge_table(x->m, t, x->bv[t], x->c.ts[t].tv, x->sv[t]);
	}
	if (!rc)
		rc = gfs_merge_resolve(x->m, x->o->prefer);
	if (!rc)
		rc = gfs_merge_validate(x->m, &x->c);
	return rc;
}

static void count_items(struct mop *x)
{
	const struct gfs_merge_item *it;
	size_t n = gfs_merge_items(x->m, &it);

	for (size_t i = 0; i < n; i++) {
		x->res->invalid += it[i].kind == GFS_MC_INVALID;
		x->res->conflicts += it[i].kind != GFS_MC_INVALID;
		x->res->resolved += it[i].resolved;
	}
	x->res->rows_taken = gfs_merge_taken(x->m);
}

static int report(struct mop *x)
{
	struct gfs_buf txt;
	int rc;

	gfs_buf_init(&txt);
	rc = gfs_merge_report_text(x->m, &txt);
	x->res->report_json = gfs_merge_report_json(x->m);
	x->res->report_text = txt.p;
	return rc ? rc : x->res->report_json ? 0 : -ENOMEM;
}

/* Which tables get a file: those the merge changes on t.  *any: some. */
static void settle(struct mop *x, bool *any)
{
	*any = false;
	for (size_t t = 0; t < x->p.schema->n_types; t++) {
		struct gfs_commit_table *ts = &x->c.ts[t];
		enum gfs_merge_action a = gfs_merge_action(x->m, t);
		ts->written = a != GFS_MERGE_KEEP;
		ts->read = true;
		*any = *any || a == GFS_MERGE_WRITE;
		x->res->tables_written += a == GFS_MERGE_WRITE;
		x->res->tables_adopted += a == GFS_MERGE_ADOPT;
	}
}

static int write_merge(struct mop *x)
{
	struct gfs_sc_merge *mg = &x->c.merge;
	char *detail;
	int rc;

	snprintf(mg->source, sizeof mg->source, "%s", x->o->source);
	memcpy(mg->source_id, x->p.sb.id, sizeof mg->source_id);
	mg->source_gv = x->p.s->version;
	mg->base_gv = x->p.b->version;
	mg->target_gv = x->p.t->version;
	rc = gfs_commit_arm(&x->c);

	if (rc)
		return rc;
	memcpy(x->res->op_id, x->c.op_id, sizeof x->res->op_id);
	rc = gfs_commit_fp(GFS_FP_COMMIT_AFTER_SIDECAR);
	for (size_t t = 0; !rc && t < x->p.schema->n_types; t++)
		if (x->c.ts[t].written)
			rc = gfs_commit_linked(&x->c, t, gfs_merge_build(x->m, t, gfs_graph_tables(x->g),
									 x->c.ts[t].next, x->c.op_id,
									 x->d));
	if (!rc)
		rc = gfs_commit_confirm(&x->c);
	detail = rc ? NULL : log_detail(x->o, &x->p, x->res);
	if (!rc && !detail)
		rc = -ENOMEM;
	rc = gfs_commit_finish(&x->c, rc, "merge", detail, &x->res->version);
	free(detail);
	return rc;
}

/* Kept tables stay out of a no-file publish. */
static int publish_adopted(struct mop *x)
{
	const struct gfs_gv *t = x->p.t;
	bool *keep = calloc(t->n_pins + 1, sizeof *keep);
	int rc;

	if (!keep)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_pins; i++)
		for (size_t k = 0; k < x->p.schema->n_types; k++)
			if (!strcmp(x->c.ts[k].table, t->pins[i].table))
				keep[i] = gfs_merge_action(x->m, k) == GFS_MERGE_KEEP;
	rc = publish_pins(x->g, x->o, &x->p, keep, x->res, x->d);
	free(keep);
	return rc;
}

static int row_merge(struct mop *x)
{
	bool any = false;
	int rc = lock_and_pin(x);

	if (!rc && x->res->fast_forward) /* nothing to diff or validate */
		return publish_pins(x->g, x->o, &x->p, NULL, x->res, x->d);
	if (!rc)
		rc = diff_tables(x);
	if (!rc) {
		count_items(x);
		rc = report(x);
	}
	if (!rc && gfs_merge_unresolved(x->m)) {
		gfs_diag_set(x->d, "%zu conflict(s) and %zu invalid row(s): nothing was published",
			     x->res->conflicts - x->res->resolved, x->res->invalid);
		return GFS_ECONFLICT;
	}
	if (!rc)
		settle(x, &any);
	if (!rc && any) { /* adopted tables are built too (see the top) */
		x->res->tables_written += x->res->tables_adopted;
		x->res->tables_adopted = 0;
		return write_merge(x);
	}
	return rc ? rc : publish_adopted(x);
}

static int attempt(struct gfs_graph *g, const struct gfs_merge_opts *o,
		   struct gfs_merge_result *res, struct gfs_diag *d)
{
	struct mop x;
	int rc;

	memset(&x, 0, sizeof x);
	x.g = g;
	x.o = o;
	x.res = res;
	x.d = d;
	rc = make_plan(g, o, &x.p, d);
	if (!rc) {
		res->target_gv = x.p.t->version;
		res->source_gv = x.p.s->version;
		res->base_gv = x.p.b->version;
	}
	if (!rc && x.p.b->version == x.p.s->version) {
		res->already_merged = true;
	} else if (!rc) {
		res->fast_forward = x.p.b->version == x.p.t->version;
		rc = row_merge(&x);
	}
	mop_release(&x);
	return rc;
}

void gfs_merge_result_release(struct gfs_merge_result *res)
{
	free(res->report_json);
	free(res->report_text);
	memset(res, 0, sizeof *res);
}

int gfs_graph_merge(struct gfs_graph *g, const struct gfs_merge_opts *o,
		    struct gfs_merge_result *res, struct gfs_diag *d)
{
	int rc = GFS_ECAS;

	memset(res, 0, sizeof *res);
	for (unsigned i = 0; rc == GFS_ECAS && i < MERGE_TRIES; i++) {
		gfs_merge_result_release(res);
		if (d)
			d->msg[0] = '\0';
		rc = attempt(g, o, res, d);
	}
	if (rc == GFS_ECAS)
		gfs_diag_set(d, "branch '%s' kept moving (%d tries): %s", o->into, MERGE_TRIES,
			     d && d->msg[0] ? d->msg : "another writer published first");
	return rc;
}
