/* gc.c - `graphctl gc` (writer kind `gc`, docs/branches-design.md §6.3).
 *
 * Invariants (docs/invariants.md 150-152, 165-169):
 *   1. Never removed: the head, a version in the window, a version a mount
 *      holds (its byte of locks/versions.lock cannot be write-locked).
 *   2. Never unlinked: a version the closure of a kept graph version's
 *      pins needs, a version a pending sidecar names, a version the index
 *      does not record as published or retired (reserved, void, orphans:
 *      recovery's business).
 *   3. Nothing is unlinked before the commit point (G3), which tombstones
 *      the removed versions and confirms the sidecar in one transaction.
 *   4. Unlinks go per table in descending number order (a version before
 *      the older segments it reads), each table's directory fsynced after
 *      its unlinks; the sidecar goes (G5) only after every fsync
 *      succeeded, so a power loss that brings names back leaves the
 *      sidecar, and the next resolver unlinks them again.
 *
 * States (function for each step):
 *   G1 lock_all + fence + plan  -> G2 arm (sidecar, not confirmed)
 *   -> G3 gfs_manifest_gc_commit (tombstones + confirm: the commit point)
 *   -> G4 gfs_gc_unlink -> G5 finish (sidecar deleted, audit "gc").
 *   A failure after G2 is resolved by recovery's code (gfs_recover_own):
 *   discarded before G3, rolled forward (G4, G5) after it.
 *
 * The closure (gfs_tclosure_add) and the collectable versions
 * (collectable) come from the manifest's `tver` index: no header read,
 * no directory listing.  The window is per branch (keep_window): a graph
 * version belongs to the branch it was published on (its record's name
 * and id); each branch keeps its head and its own newest keep_last
 * versions (or those since keep_since); a version of a deleted branch is
 * in no window.  Kept whatever the window (keep_extra): every branch's
 * head, the merge base of every pair of branches (a later merge diffs
 * against it), and the graph versions a pending merge sidecar names.
 *
 * Rounds (etcd): a gc commit is one etcd Txn that compares the fence of
 * every version it removes and writes a tombstone for each, and etcd caps
 * a Txn's operations (--max-txn-ops).  So on an etcd store one round
 * removes at most `cap` versions, the oldest first, and gc runs rounds
 * (each its own sidecar, commit and audit record) until none is capped.
 * A round that the cluster refuses as too big (-E2BIG, before its commit
 * point: nothing of it stays) is planned again with half the cap.  LMDB
 * has no such limit: one round. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commit.h"
#include "load_int.h"
#include "lock.h"
#include "merge.h"
#include "retain.h"
#include "table_int.h"

/* One table of the store: what kept versions need, what may go. */
struct gtab {
	char name[GFS_TABLE_NAME_MAX];
	struct gfs_vset need;
};

struct gcer {
	struct gfs_graph *g;
	const struct gfs_gc_opts *o;
	struct gfs_gc_result *res;
	struct gfs_diag *d;
	/* The history is never held in memory: each step below is one pass
	 * over it (gfs_manifest_history, versions 1..head_v in order, removed
	 * ones too), keeping per-branch counters and the plan only. */
	uint64_t head_v;       /* the newest graph version when last read */
	struct gtab *tabs;
	size_t n_tabs;
	struct gfs_lockset *locks;
	struct gfs_vhold *vh;  /* our fences (lock.h: OFD locks, or etcd keys) */
	struct gfs_sc_gc plan;
	struct gfs_gv *head;   /* graph version head_v (owned) */
	struct gfs_branch *br; /* every branch */
	size_t n_br;
	size_t *tot, *seen;    /* per branch: its versions, those passed */
	uint64_t *keep;        /* kept whatever the window: branch heads,
				  merge bases, what merge sidecars name */
	size_t n_keep;
	size_t cap;            /* versions one round may remove (SIZE_MAX: all) */
	bool capped;           /* a version outside the window was left to
				  the next round */
	bool left;             /* a failed round's sidecar may remain */
};

/* The first round's cap on etcd: 256 fences and tombstones leave room for
 * the table leases, generation keys and unlinks under the 1024 operations
 * docs/multi-host.md asks of a cluster; smaller clusters halve it. */
#define GC_ETCD_ROUND 256

void gfs_gc_result_release(struct gfs_gc_result *r)
{
	free(r->removed);
	free(r->held);
	memset(r, 0, sizeof *r);
}

static int u64_push(uint64_t **v, size_t *n, uint64_t x)
{
	uint64_t *nv = realloc(*v, (*n + 1) * sizeof *nv);

	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = x;
	*v = nv;
	return 0;
}

/* ---- history and tables ------------------------------------------------- */

static struct gtab *tab_of(struct gcer *G, const char *table, bool add)
{
	struct gtab *t;

	for (size_t i = 0; i < G->n_tabs; i++)
		if (!strcmp(G->tabs[i].name, table))
			return &G->tabs[i];
	if (!add)
		return NULL;
	t = realloc(G->tabs, (G->n_tabs + 1) * sizeof *t);
	if (!t)
		return NULL;
	G->tabs = t;
	t = &G->tabs[G->n_tabs++];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", table);
	return t;
}

/* Pass: every table any graph version pins, and the newest version. */
static int tables_one(const struct gfs_gv *gv, void *arg)
{
	struct gcer *G = arg;

	for (size_t k = 0; k < gv->n_pins; k++)
		if (!tab_of(G, gv->pins[k].table, true))
			return -ENOMEM;
	G->head_v = gv->version;
	return 0;
}

static int load_history(struct gcer *G)
{
	int rc;

	G->head_v = 0;
	gfs_gv_free(G->head);
	G->head = NULL;
	rc = gfs_manifest_history(gfs_graph_manifest(G->g), 1, 0, tables_one, G);
	if (!rc && !G->head_v)
		rc = -ENOENT;
	if (!rc)
		rc = gfs_manifest_get(gfs_graph_manifest(G->g), G->head_v, &G->head);
	return rc;
}

/* G1: heal every table, then LOCK_EX on all of them: no writer moves a
 * pin or links a version while gc plans and unlinks. */
static int lock_all(struct gcer *G)
{
	const char **names = calloc(G->n_tabs + 1, sizeof *names);
	enum gfs_lock_mode *modes = calloc(G->n_tabs + 1, sizeof *modes);
	int rc = names && modes ? 0 : -ENOMEM;

	for (size_t i = 0; !rc && i < G->n_tabs; i++) {
		names[i] = G->tabs[i].name;
		modes[i] = GFS_LOCK_EX;
	}
	if (!rc)
		rc = gfs_heal_tables(G->g, names, modes, G->n_tabs, G->d);
	if (!rc)
		rc = gfs_lock_tables(gfs_graph_dir(G->g), names, modes, G->n_tabs,
				     GFS_LOCK_WAIT, &G->locks);
	free(names);
	free(modes);
	return rc;
}

/* ---- the plan ------------------------------------------------------------ */

static bool kept(const struct gcer *G, uint64_t v)
{
	for (size_t i = 0; i < G->n_keep; i++)
		if (G->keep[i] == v)
			return true;
	return false;
}

/* The branch gv was published on, if it still exists (the same name and
 * id; records before branches have no id and are main's). */
static size_t branch_of(const struct gcer *G, const struct gfs_gv *gv)
{
	for (size_t b = 0; b < G->n_br; b++)
		if (!strcmp(G->br[b].name, gv->branch) &&
		    (!gv->branch_id[0] || !G->br[b].id[0] ||
		     !strcmp(G->br[b].id, gv->branch_id)))
			return b;
	return SIZE_MAX;
}

/* Pass: how many versions each branch has (for the window's ranks). */
static int count_one(const struct gfs_gv *gv, void *arg)
{
	struct gcer *G = arg;
	size_t b = branch_of(G, gv);

	if (b != SIZE_MAX)
		G->tot[b]++;
	return 0;
}

static int count_all(struct gcer *G)
{
	G->tot = calloc(G->n_br + 1, sizeof *G->tot);
	G->seen = calloc(G->n_br + 1, sizeof *G->seen);
	if (!G->tot || !G->seen)
		return -ENOMEM;
	return gfs_manifest_history(gfs_graph_manifest(G->g), 1, G->head_v, count_one, G);
}

/* The window, per branch: kept (a head, a merge base, what a merge
 * sidecar names), or its branch's newest keep_last versions (rank: how
 * many of its branch's versions are newer; SIZE_MAX: on no branch), or
 * those at or after keep_since.  A version of a deleted branch: outside. */
static bool keep_window(const struct gcer *G, const struct gfs_gv *gv, size_t rank)
{
	if (gv->version == G->head->version || kept(G, gv->version))
		return true;
	if (rank == SIZE_MAX)
		return false;
	if (G->o->keep_last)
		return rank < G->o->keep_last;
	return gv->time_ns >= G->o->keep_since_ns;
}

static int keep_add(struct gcer *G, uint64_t v)
{
	return v && !kept(G, v) ? u64_push(&G->keep, &G->n_keep, v) : 0;
}

/* Under the locks: the branches, their heads and pairwise merge bases,
 * and the graph versions pending merge sidecars name. */
static int keep_extra(struct gcer *G)
{
	struct gfs_manifest *m = gfs_graph_manifest(G->g);
	struct gfs_sidecar **scs = NULL;
	size_t nsc = 0;
	int rc = gfs_manifest_branch_list(m, &G->br, &G->n_br);

	for (size_t a = 0; !rc && a < G->n_br; a++)
		rc = keep_add(G, G->br[a].head);
	for (size_t a = 0; !rc && a < G->n_br; a++)
		for (size_t b = a + 1; !rc && b < G->n_br; b++) {
			uint64_t base = 0;
			struct gfs_diag d = {{0}};

			if (G->br[a].head == G->br[b].head)
				continue;
			rc = gfs_merge_base(m, G->br[a].head, G->br[b].head, &base, &d);
			if (rc == -ENOENT) /* no common version: nothing to keep */
				rc = 0;
			else if (!rc)
				rc = keep_add(G, base);
		}
	if (!rc)
		rc = gfs_manifest_sidecar_list(m, &scs, &nsc);
	for (size_t i = 0; !rc && i < nsc; i++) {
		const struct gfs_sc_merge *mg = &scs[i]->merge;

		if (mg->source_gv)
			rc = keep_add(G, mg->source_gv);
		if (!rc && mg->source_gv)
			rc = keep_add(G, mg->base_gv);
		if (!rc && mg->source_gv)
			rc = keep_add(G, mg->target_gv);
	}
	for (size_t i = 0; i < nsc; i++)
		gfs_sidecar_free(scs[i]);
	free(scs);
	return rc ? rc : count_all(G);
}

/* Pass: fences (write-locks) each version outside the window; the ones
 * it cannot lock are held by a mount and kept.  plan.remove comes out in
 * ascending order (removing() searches it). */
static int fence_one(const struct gfs_gv *gv, void *arg)
{
	struct gcer *G = arg;
	size_t b = branch_of(G, gv), rank = SIZE_MAX;
	int rc;

	if (b != SIZE_MAX) /* history is in version order: the newer ones follow */
		rank = G->tot[b] - ++G->seen[b];
	if (gv->removed || keep_window(G, gv, rank))
		return 0;
	if (G->plan.n_remove >= G->cap) {
		G->capped = true; /* the next round's */
		return 0;
	}
	rc = gfs_vhold_fence(G->vh, gv->version, NULL);
	if (rc == -EWOULDBLOCK)
		return u64_push(&G->res->held, &G->res->n_held, gv->version);
	return rc ? rc : u64_push(&G->plan.remove, &G->plan.n_remove, gv->version);
}

static int fence(struct gcer *G)
{
	int rc = G->vh ? 0 : gfs_vhold_open(gfs_graph_dir(G->g), &G->vh, G->d);

	return rc ? rc : gfs_manifest_history(gfs_graph_manifest(G->g), 1, G->head_v,
					      fence_one, G);
}

static bool removing(const struct gcer *G, uint64_t v)
{
	size_t lo = 0, hi = G->plan.n_remove;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (G->plan.remove[mid] == v)
			return true;
		if (G->plan.remove[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* Pass: the closure of every kept version's pins. */
static int needs_one(const struct gfs_gv *gv, void *arg)
{
	struct gcer *G = arg;
	int rc = 0;

	if (gv->removed || removing(G, gv->version))
		return 0;
	for (size_t k = 0; !rc && k < gv->n_pins; k++) {
		struct gtab *t = tab_of(G, gv->pins[k].table, true);

		rc = t ? gfs_tclosure_add(G->g, gv->pins[k].table, gv->pins[k].version,
					  &t->need, G->d) : -ENOMEM;
	}
	return rc;
}

/* What the kept versions and pending sidecars need. */
static int needs(struct gcer *G)
{
	struct gfs_sidecar **scs = NULL;
	size_t nsc = 0;
	int rc = gfs_manifest_history(gfs_graph_manifest(G->g), 1, G->head_v,
				      needs_one, G);

	if (!rc)
		rc = gfs_manifest_sidecar_list(gfs_graph_manifest(G->g), &scs, &nsc);
	for (size_t i = 0; !rc && i < nsc; i++) {
		if (scs[i]->raw) {
			gfs_diag_set(G->d, "sidecar %s does not parse: gc cannot tell what it needs; run 'graphctl recover %s'",
				     scs[i]->op_id, gfs_graph_dir(G->g));
			rc = GFS_ERECOVERY;
		}
		for (size_t k = 0; !rc && k < scs[i]->n_tables; k++) {
			const struct gfs_sc_table *st = &scs[i]->tables[k];
			struct gtab *t = tab_of(G, st->table, true);

			rc = t ? gfs_vset_add(&t->need, st->post) : -ENOMEM;
			if (!rc && st->expected)
				rc = gfs_tclosure_add(G->g, st->table, st->expected, &t->need, G->d);
		}
	}
	for (size_t i = 0; i < nsc; i++)
		gfs_sidecar_free(scs[i]);
	free(scs);
	return rc;
}

static int unlink_add(struct gcer *G, const char *table, uint32_t v,
		      uint64_t bytes)
{
	struct gfs_sc_unlink *u = realloc(G->plan.unlink,
					  (G->plan.n_unlink + 1) * sizeof *u);

	if (!u)
		return -ENOMEM;
	G->plan.unlink = u;
	u = &u[G->plan.n_unlink++];
	snprintf(u->table, sizeof u->table, "%s", table);
	u->version = v;
	u->bytes = bytes;
	return 0;
}

static int u32_desc(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

struct coll {
	struct gtab *t;
	uint32_t *vs;
	size_t n, cap;
	int rc;
};

/* Published or retired (a file a resolved operation left) and needed by
 * nothing kept: collectable.  Reserved numbers are a pending sidecar's,
 * void ones have no file, collected ones are gone. */
static int coll_one(const struct gfs_tver_rec *r, void *arg)
{
	struct coll *c = arg;
	void *p;

	if ((r->state != GFS_TVER_PUBLISHED && r->state != GFS_TVER_RETIRED) ||
	    gfs_vset_has(&c->t->need, r->v))
		return 0;
	p = gfs_array_grow(c->vs, &c->cap, c->n, sizeof *c->vs, 16);
	if (!p)
		return c->rc = -ENOMEM;
	(c->vs = p)[c->n++] = r->v;
	return 0;
}

/* t's collectable versions from the index (no listing, no header read),
 * appended in descending order with their sizes. */
static int collectable(struct gcer *G, struct gtab *t)
{
	struct coll c = { .t = t };
	int rc = gfs_manifest_tver_list(gfs_graph_manifest(G->g), t->name, coll_one, &c);

	if (!rc)
		rc = c.rc;
	if (!rc && c.vs)
		qsort(c.vs, c.n, sizeof *c.vs, u32_desc);
	for (size_t i = 0; !rc && i < c.n; i++) {
		char path[PATH_MAX];
		struct stat st;

		st.st_size = 0;
		rc = tbl_verpath(path, sizeof path, gfs_graph_tables(G->g)->dir, t->name, c.vs[i]);
		if (!rc && stat(path, &st) && errno != ENOENT)
			rc = gfs_io_fail("stat", path, -errno);
		if (!rc)
			rc = unlink_add(G, t->name, c.vs[i], (uint64_t)st.st_size);
	}
	free(c.vs);
	return rc;
}

static int plan(struct gcer *G)
{
	int rc = keep_extra(G);

	if (!rc)
		rc = fence(G);

	if (!rc)
		rc = needs(G);
	for (size_t i = 0; !rc && i < G->n_tabs; i++)
		rc = collectable(G, &G->tabs[i]);
	for (size_t i = 0; !rc && i < G->plan.n_unlink; i++) {
		G->res->bytes_freed += G->plan.unlink[i].bytes;
		G->res->n_unlinked++;
	}
	for (size_t i = 0; !rc && i < G->plan.n_remove; i++)
		rc = u64_push(&G->res->removed, &G->res->n_removed, G->plan.remove[i]);
	return rc;
}

/* ---- G2..G5 -------------------------------------------------------------- */

/* G2: the sidecar names every table as read (so a sweep takes their
 * locks, and finds them held while this gc runs), and the plan. */
static int arm(struct gcer *G, uint64_t *rev)
{
	struct gfs_sidecar sc, *back = NULL;
	int rc = gfs_ulid_new(G->res->op_id);

	memset(&sc, 0, sizeof sc);
	sc.tables = calloc(G->n_tabs + 1, sizeof *sc.tables);
	if (!rc && !sc.tables)
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < G->n_tabs; i++) {
		struct gfs_sc_table *t = &sc.tables[i];

		snprintf(t->table, sizeof t->table, "%s", G->tabs[i].name);
		t->expected = t->post = gfs_gv_pin(G->head, G->tabs[i].name);
	}
	sc.n_tables = G->n_tabs;
	sc.format = GFS_SIDECAR_FORMAT;
	memcpy(sc.op_id, G->res->op_id, sizeof sc.op_id);
	snprintf(sc.kind, sizeof sc.kind, "gc");
	snprintf(sc.actor, sizeof sc.actor, "%s", G->o->actor ? G->o->actor : gfs_graph_actor(G->g));
	sc.start_ns = gfs_now_ns();
	sc.gc = &G->plan;
	if (gfs_lockset_holder(G->locks)) /* etcd: whose leases guard it */
		gfs_sidecar_set_holder(&sc, gfs_lockset_holder(G->locks));
	if (!rc)
		rc = gfs_manifest_sidecar_put(gfs_graph_manifest(G->g), &sc);
	if (rc == -E2BIG) {
		free(sc.tables);
		gfs_diag_set(G->d, "the gc sidecar of %zu version(s) and %zu file(s) "
			     "is more than the etcd cluster takes in one "
			     "transaction (--max-txn-ops, --max-request-bytes)",
			     G->plan.n_remove, G->plan.n_unlink);
		return rc;
	}
	free(sc.tables);
	if (!rc)
		rc = gfs_manifest_sidecar_get(gfs_graph_manifest(G->g), G->res->op_id, &back);
	if (!rc)
		*rev = back->rev;
	gfs_sidecar_free(back);
	if (rc)
		gfs_diag_set(G->d, "cannot record the gc sidecar: %s", gfs_strerror(rc));
	return rc;
}

int gfs_gc_unlink(struct gfs_graph *g, const struct gfs_sc_gc *plan,
		  uint64_t *bytes, struct gfs_diag *d)
{
	struct gfs_tstore *ts = gfs_graph_tables(g);
	int rc = 0;

	if (bytes)
		*bytes = 0;
	for (size_t i = 0; !rc && i < plan->n_unlink; i++) {
		const struct gfs_sc_unlink *u = &plan->unlink[i];
		char path[PATH_MAX];

		rc = tbl_verpath(path, sizeof path, ts->dir, u->table, u->version);
		if (!rc && unlink(path) && errno != ENOENT)
			rc = gfs_io_fail("unlink", path, -errno);
		if (!rc)
			rc = gfs_commit_fp(GFS_FP_GC_AFTER_UNLINK);
		if (!rc && bytes)
			*bytes += u->bytes;
		/* the last file of this table: its names are durable first */
		if (!rc && (i + 1 == plan->n_unlink ||
			    strcmp(plan->unlink[i + 1].table, u->table)))
			rc = gfs_table_sync(ts, u->table);
	}
	if (rc)
		gfs_diag_set(d, "gc: %s", gfs_io_last(rc) ? gfs_io_last(rc) : gfs_strerror(rc));
	return rc;
}

/* G5: the sidecar goes with the audit record "gc". */
static int finish(struct gcer *G, uint64_t rev)
{
	struct gfs_publish p;
	struct gfs_audit au;
	int rc = gfs_commit_fp(GFS_FP_GC_BEFORE_AUDIT);

	memset(&au, 0, sizeof au);
	snprintf(au.op_id, sizeof au.op_id, "%s", G->res->op_id);
	snprintf(au.decision, sizeof au.decision, "gc");
	snprintf(au.kind, sizeof au.kind, "gc");
	snprintf(au.actor, sizeof au.actor, "%s", G->o->actor ? G->o->actor : gfs_graph_actor(G->g));
	snprintf(au.resolver, sizeof au.resolver, "%s", au.actor);
	memset(&p, 0, sizeof p);
	p.no_version = true;
	p.sidecar = G->res->op_id;
	p.require_sidecar = true;
	p.sidecar_rev = rev;
	p.audit = &au;
	if (!rc)
		rc = gfs_manifest_publish(gfs_graph_manifest(G->g), &p, NULL, G->d);
	return rc;
}

/* After arming: commit, unlink, finish; any failure goes to recovery's
 * code, which discards (before the commit point) or rolls forward. */
static int run(struct gcer *G)
{
	uint64_t rev = 0, confirmed_rev;
	struct gfs_recover_own_result own;
	struct gfs_sidecar *sc = NULL;
	struct gfs_diag d2 = {{0}};
	int rc = arm(G, &rev), r2;

	if (rc)
		return rc;
	rc = gfs_commit_fp(GFS_FP_GC_AFTER_ARM);
	if (!rc)
		rc = gfs_manifest_gc_commit(gfs_graph_manifest(G->g), G->res->op_id,
					    rev, G->plan.remove, G->plan.n_remove, G->d);
	if (!rc)
		rc = gfs_commit_fp(GFS_FP_GC_AFTER_COMMIT);
	if (!rc)
		rc = gfs_gc_unlink(G->g, &G->plan, NULL, G->d);
	/* the confirmed record's revision: what G5 deletes */
	if (!rc)
		rc = gfs_manifest_sidecar_get(gfs_graph_manifest(G->g), G->res->op_id, &sc);
	confirmed_rev = sc ? sc->rev : 0;
	gfs_sidecar_free(sc);
	if (!rc)
		rc = finish(G, confirmed_rev);
	if (!rc)
		return 0;
	if (G->d)
		gfs_diag_io(G->d, rc);
	r2 = gfs_recover_own(G->g, G->res->op_id, &own, &d2);
	if (!r2 && own.forward) {
		if (G->d)
			G->d->msg[0] = '\0';
		return 0;
	}
	G->left = r2 != 0;
	if (r2 && G->d)
		gfs_diag_reset(G->d, "%s; gc %s is left for recovery ('graphctl recover %s'): %s",
			       G->d->msg[0] ? G->d->msg : gfs_strerror(rc), G->res->op_id,
			       gfs_graph_dir(G->g), d2.msg[0] ? d2.msg : gfs_strerror(r2));
	return rc;
}

static void gcer_release(struct gcer *G)
{
	gfs_gv_free(G->head);
	for (size_t i = 0; i < G->n_tabs; i++)
		gfs_vset_release(&G->tabs[i].need);
	free(G->tabs);
	gfs_vhold_close(G->vh); /* drops the fences */
	gfs_lockset_free(G->locks);
	free(G->plan.remove);
	free(G->plan.unlink);
	free(G->br);
	free(G->tot);
	free(G->seen);
	free(G->keep);
}

/* Appends round r's results to the whole run's (res). */
static int result_add(struct gfs_gc_result *res, struct gfs_gc_result *r)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < r->n_removed; i++)
		rc = u64_push(&res->removed, &res->n_removed, r->removed[i]);
	/* a version held in an earlier round may be held in this one too */
	for (size_t i = 0; !rc && i < r->n_held; i++) {
		bool seen = false;

		for (size_t j = 0; j < res->n_held && !seen; j++)
			seen = res->held[j] == r->held[i];
		if (!seen)
			rc = u64_push(&res->held, &res->n_held, r->held[i]);
	}
	res->n_unlinked += r->n_unlinked;
	res->bytes_freed += r->bytes_freed;
	if (r->op_id[0])
		memcpy(res->op_id, r->op_id, sizeof res->op_id);
	res->rounds++;
	return rc;
}

/* One round: plan under the locks, run it; *capped: versions remain. */
static int round_run(struct gfs_graph *g, const struct gfs_gc_opts *o,
		     size_t cap, struct gfs_gc_result *r, bool *capped,
		     bool *left, struct gfs_diag *d)
{
	struct gcer G = { .g = g, .o = o, .res = r, .d = d, .cap = cap };
	int rc = load_history(&G);

	if (!rc)
		rc = lock_all(&G);
	/* under the locks: the history again, the plan on it */
	if (!rc)
		rc = load_history(&G);
	if (!rc)
		rc = plan(&G);
	if (!rc && !o->dry_run && (G.plan.n_remove || G.plan.n_unlink))
		rc = run(&G);
	*capped = G.capped;
	*left = G.left;
	gcer_release(&G);
	return rc;
}

int gfs_graph_gc(struct gfs_graph *g, const struct gfs_gc_opts *o,
		 struct gfs_gc_result *res, struct gfs_diag *d)
{
	/* a dry run commits nothing: one plan over everything */
	size_t cap = gfs_manifest_etcd(gfs_graph_manifest(g)) && !o->dry_run
			     ? GC_ETCD_ROUND : SIZE_MAX;
	int rc = 0;

	memset(res, 0, sizeof *res);
	if (!o->keep_last == !o->keep_since_ns) {
		gfs_diag_set(d, "give exactly one of --keep-last N (N >= 1) and --keep-since TIME");
		return -EINVAL;
	}
	for (;;) {
		struct gfs_gc_result r;
		bool capped = false, left = false;

		memset(&r, 0, sizeof r);
		rc = round_run(g, o, cap, &r, &capped, &left, d);
		if (rc == -E2BIG && !left && cap > 1) {
			/* refused before its commit point: nothing of it
			 * stays; the same plan, half as many versions */
			gfs_gc_result_release(&r);
			if (d)
				d->msg[0] = '\0';
			cap = cap == SIZE_MAX ? GC_ETCD_ROUND : cap / 2;
			continue;
		}
		size_t n = r.n_removed;

		if (!rc)
			rc = result_add(res, &r);
		else if (res->rounds && d && d->msg[0]) {
			char msg[sizeof d->msg];

			snprintf(msg, sizeof msg, "%s", d->msg);
			gfs_diag_reset(d, "%s (after %zu round(s) that removed %zu "
				       "graph version(s); run gc again for the rest)",
				       msg, res->rounds, res->n_removed);
		}
		gfs_gc_result_release(&r);
		if (rc || !capped || !n)
			break;
	}
	if (rc) /* out-parameters are cleared on failure */
		gfs_gc_result_release(res);
	return rc;
}
