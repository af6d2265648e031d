/* compact.c - `graphctl compact` (writer kind `compact`,
 * docs/branches-design.md §6.4): for each chosen table, one fresh version
 * with no parent and one segment holding every row of the pin, each row
 * keeping its serial and `changed` (inode numbers and mtimes do not
 * move), published as one graph version with op `compact`.
 *
 * It is a writer of commit.c's door like a load: heal, lock (EX on the
 * chosen tables), pin, arm, write, confirm, publish; a failure after arm
 * is resolved by recovery's code, and a crash is recovered as a load's
 * (the sidecar's kind names it).  The old chain's bytes are freed only by
 * a later gc, once no kept graph version needs them. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "retain.h"

#define COMPACT_TRIES 4

struct compactor {
	struct gfs_graph *g;
	const struct gfs_schema *s;
	struct gfs_commit c;
	struct gfs_compact_result *res;
	struct gfs_diag *d;
};

/* Does the pin read more than its own file? */
static int spans(struct compactor *C, size_t t, bool *more)
{
	struct gfs_tver_info info;

	gfs_tver_info(C->c.ts[t].tv, &info);
	*more = info.parent || info.content_of;
	return 0;
}

/* Chooses the written tables: type (or every type), then, under the locks
 * and with the pins read, drops those already in one file. */
static int choose(struct compactor *C, const char *type)
{
	bool any = false;

	for (size_t t = 0; t < C->s->n_types; t++) {
		C->c.ts[t].written = !type || !strcmp(C->s->types[t].name, type);
		any = any || C->c.ts[t].written;
	}
	if (!any) {
		gfs_diag_set(C->d, "type '%s' is not in the schema", type);
		return -ENOENT;
	}
	return 0;
}

static int add_table(struct compactor *C, size_t t)
{
	struct gfs_compact_result *r = C->res;
	struct gfs_compact_table *ct;
	struct gfs_vset set = { 0 };
	struct gfs_tver_info info;
	int rc;

	ct = realloc(r->tables, (r->n_tables + 1) * sizeof *ct);
	if (!ct)
		return -ENOMEM;
	r->tables = ct;
	ct = &r->tables[r->n_tables++];
	memset(ct, 0, sizeof *ct);
	snprintf(ct->table, sizeof ct->table, "%s", C->c.ts[t].table);
	ct->from = C->c.ts[t].pin; /* ct->to: reserved at arm (write_all) */
	gfs_tver_info(C->c.ts[t].tv, &info);
	ct->rows = info.rows;
	rc = gfs_tclosure_add(C->g, ct->table, ct->from, &set, C->d);
	if (!rc)
		rc = gfs_tclosure_bytes(gfs_graph_tables(C->g), ct->table, &set,
					&ct->bytes_before);
	gfs_vset_release(&set);
	return rc;
}

/* Under the locks: keep only the tables whose pin spans several files. */
static int narrow(struct compactor *C, size_t *n)
{
	int rc = 0;

	*n = 0;
	for (size_t t = 0; !rc && t < C->s->n_types; t++) {
		bool more = false;

		if (!C->c.ts[t].written)
			continue;
		rc = spans(C, t, &more);
		if (!rc && more) {
			rc = add_table(C, t);
			(*n)++;
		}
	}
	return rc;
}

static int write_one(struct compactor *C, size_t t)
{
	struct gfs_commit_table *ts = &C->c.ts[t];
	struct gfs_tstore *tst = gfs_graph_tables(C->g);
	int rc = gfs_table_write_compact(tst, ts->tv, ts->next, C->c.op_id, C->d);

	return gfs_commit_linked(&C->c, t, rc);
}

static int file_bytes(struct compactor *C)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < C->res->n_tables; i++) {
		struct gfs_compact_table *ct = &C->res->tables[i];
		struct gfs_vset set = { 0 };

		rc = gfs_vset_add(&set, ct->to);
		if (!rc)
			rc = gfs_tclosure_bytes(gfs_graph_tables(C->g), ct->table,
						&set, &ct->bytes_after);
		gfs_vset_release(&set);
	}
	return rc;
}

static char *detail_of(const struct gfs_compact_result *r)
{
	struct gfs_buf b;
	int rc;

	gfs_buf_init(&b);
	rc = gfs_buf_appendf(&b, "{\"compact\":{");
	for (size_t i = 0; !rc && i < r->n_tables; i++) {
		const struct gfs_compact_table *ct = &r->tables[i];

		rc = gfs_buf_appendf(&b, "%s", i ? "," : "");
		if (!rc)
			rc = gfs_buf_append_json_str(&b, ct->table, strlen(ct->table));
		if (!rc)
			rc = gfs_buf_appendf(&b, ":{\"from\":%u,\"to\":%u}", ct->from, ct->to);
	}
	if (!rc)
		rc = gfs_buf_appendf(&b, "}}");
	if (rc) {
		gfs_buf_release(&b);
		return NULL;
	}
	return b.p;
}

/* Arm, write each chosen table, confirm, publish. */
static int write_all(struct compactor *C)
{
	char *detail = NULL;
	int rc = gfs_commit_arm(&C->c);

	if (rc)
		return rc;
	memcpy(C->res->op_id, C->c.op_id, sizeof C->res->op_id);
	for (size_t i = 0; i < C->res->n_tables; i++) /* the numbers arm reserved */
		for (size_t t = 0; t < C->s->n_types; t++)
			if (!strcmp(C->c.ts[t].table, C->res->tables[i].table))
				C->res->tables[i].to = C->c.ts[t].next;
	rc = gfs_commit_fp(GFS_FP_COMMIT_AFTER_SIDECAR);
	for (size_t t = 0; !rc && t < C->s->n_types; t++)
		if (C->c.ts[t].written)
			rc = write_one(C, t);
	if (!rc)
		rc = gfs_commit_confirm(&C->c);
	if (!rc && !(detail = detail_of(C->res)))
		rc = -ENOMEM;
	rc = gfs_commit_finish(&C->c, rc, "compact", detail, &C->res->version);
	free(detail);
	return rc;
}

static void unchoose_unlisted(struct compactor *C)
{
	for (size_t t = 0; t < C->s->n_types; t++) {
		bool listed = false;

		for (size_t i = 0; i < C->res->n_tables; i++)
			listed = listed || !strcmp(C->res->tables[i].table, C->c.ts[t].table);
		C->c.ts[t].written = listed;
	}
}

static int attempt(struct compactor *C, const char *type, const char *branch,
		   const char *actor)
{
	struct gfs_gv *gv = NULL;
	size_t n = 0;
	int rc = gfs_manifest_branch_head(gfs_graph_manifest(C->g),
					  branch ? branch : "main", &gv);

	if (rc == -ENOENT)
		gfs_diag_set(C->d, "no branch '%s' (see 'graphctl branch list')", branch);
	if (!rc)
		rc = gfs_graph_schema(C->g, gv->schema_id, &C->s, C->d);
	gfs_gv_free(gv);
	if (!rc)
		rc = gfs_commit_init(&C->c, C->g, C->s, "compact", actor, "compact", C->d);
	C->c.branch = branch;
	if (!rc)
		rc = choose(C, type);
	if (!rc)
		rc = gfs_commit_lock(&C->c, GFS_FP_COMPACT_AFTER_HEAL, GFS_FP_COMPACT_AFTER_LOCKS);
	if (!rc)
		rc = gfs_commit_pin(&C->c);
	if (!rc)
		rc = narrow(C, &n);
	if (rc || !n)
		return rc;
	/* The tables already compact stay locked but are not written: the
	 * sidecar and the CAS name only the written ones. */
	unchoose_unlisted(C);
	rc = write_all(C);
	if (!rc)
		rc = file_bytes(C);
	return rc;
}

void gfs_compact_result_release(struct gfs_compact_result *res)
{
	free(res->tables);
	res->tables = NULL;
	res->n_tables = 0;
}

int gfs_graph_compact(struct gfs_graph *g, const char *type,
		      const char *branch, const char *actor,
		      struct gfs_compact_result *res,
		      struct gfs_diag *d)
{
	int rc = GFS_ECAS;

	memset(res, 0, sizeof *res);
	for (unsigned i = 0; rc == GFS_ECAS && i < COMPACT_TRIES; i++) {
		struct compactor C = { .g = g, .res = res, .d = d };

		gfs_compact_result_release(res);
		res->version = 0;
		rc = attempt(&C, type, branch, actor);
		gfs_commit_release(&C.c);
	}
	if (rc == GFS_ECAS)
		gfs_diag_set(d, "the schema kept changing (%d tries)", COMPACT_TRIES);
	if (rc) /* out-parameters are cleared on failure */
		gfs_compact_result_release(res);
	return rc;
}
