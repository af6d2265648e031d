/* commit.c - the steps of the one write door (DESIGN.md §3), shared by
 * load.c and apply.c (commit.h has the calling sequence).
 *
 * Invariants this file keeps (docs/recovery.md, docs/invariants.md):
 *   1. Heal first: a writer resolves dead writers' sidecars that conflict
 *      with its lock set before it takes its locks, and again if one
 *      appears under them (gfs_commit_lock).
 *   2. The sidecar is durable before any table file exists (arm before
 *      any gfs_tbuild_*; the builders only write temp files before link),
 *      so a temp file a killed writer left belongs to a sidecar, and its
 *      resolver removes it (invariant 130): a commit never lists a table
 *      directory.
 *   3. A failure after arming is resolved by recovery's code while the
 *      locks are still held (gfs_commit_finish -> gfs_recover_own): never
 *      a sidecar left by a live writer that could have resolved it.
 *   4. The publish is one CAS over every involved table's pin.
 *   5. Table-version numbers come from the table's counter next[T], taken
 *      in the arm transaction (W3, gfs_manifest_sidecar_put) and recorded
 *      in the index tver; before arming, W2 is one stat of next[T] per
 *      involved table (check_orphans), never a listing or a header read;
 *      EEXIST on link reposts (W4', repost) and fails the write
 *      (docs/recovery.md "Version numbers").
 *
 * States: init -> locked (gfs_commit_lock) -> pinned (read_pins,
 * check_orphans, open_pinned) -> armed (gfs_commit_arm) -> confirmed
 * (gfs_commit_confirm) -> published or resolved (gfs_commit_finish).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit.h"
#include "load_int.h"

int gfs_commit_init(struct gfs_commit *c, struct gfs_graph *g,
		    const struct gfs_schema *s, const char *kind,
		    const char *actor, const char *what, struct gfs_diag *d)
{
	memset(c, 0, sizeof *c);
	c->g = g;
	c->s = s;
	c->d = d;
	c->kind = kind;
	c->actor = actor ? actor : gfs_graph_actor(g);
	c->what = what;
	c->ts = calloc(s->n_types + 1, sizeof *c->ts);
	if (!c->ts)
		return -ENOMEM;
	c->n_ts = s->n_types;
	for (size_t i = 0; i < s->n_types; i++)
		gfs_typedef_table(&s->types[i], c->ts[i].table, sizeof c->ts[i].table);
	return 0;
}

int gfs_commit_add_table(struct gfs_commit *c, const char *table, size_t *idx)
{
	struct gfs_commit_table *ts = realloc(c->ts, (c->n_ts + 2) * sizeof *ts);

	if (!ts)
		return -ENOMEM;
	c->ts = ts;
	memset(&ts[c->n_ts], 0, 2 * sizeof *ts);
	snprintf(ts[c->n_ts].table, sizeof ts[c->n_ts].table, "%s", table);
	*idx = c->n_ts++;
	return 0;
}

void gfs_commit_unlock(struct gfs_commit *c)
{
	for (size_t t = 0; c->ts && t < c->n_ts; t++) {
		gfs_tver_close(c->ts[t].tv);
		c->ts[t].tv = NULL;
	}
	gfs_lockset_free(c->locks);
	c->locks = NULL;
	gfs_gv_free(c->gv);
	c->gv = NULL;
}

void gfs_commit_release(struct gfs_commit *c)
{
	gfs_commit_unlock(c);
	free(c->ts);
	c->ts = NULL;
}

bool gfs_commit_involved(const struct gfs_commit_table *t)
{
	return t->written || t->read;
}

int gfs_commit_fp(enum gfs_fp id)
{
	int err = gfs_fp_hit(id);

	return err ? -err : 0;
}

/* ---- locks and pins ---------------------------------------------------- */

/* W2 (docs/branches-design.md §2): the name next[T] must not exist.  A
 * file there is one no reservation made (an orphan: 'graphctl recover'
 * compensates it), and our reservation would collide with it.  One stat
 * per involved table, under the locks, after healing; never a listing or a
 * header read (invariant 131).  Numbers come from the counter at arm, so
 * versions settled by resolved operations need no look here. */
static int check_orphans(struct gfs_commit *c)
{
	struct gfs_manifest *m = gfs_graph_manifest(c->g);
	int rc = 0;

	for (size_t t = 0; !rc && t < c->n_ts; t++) {
		struct gfs_commit_table *ts = &c->ts[t];
		uint32_t n = 0;
		bool there = false;
		ts->next = 0; /* reserved at arm */
		if (!gfs_commit_involved(ts))
			continue;
		rc = gfs_manifest_next(m, ts->table, &n);
		if (!rc)
			rc = gfs_table_version_exists(gfs_graph_tables(c->g), ts->table,
						      n, &there);
		if (!rc && there) {
			gfs_diag_set(c->d, "recovery needed: table '%s' has version %u but the manifest shows %u (an orphan no sidecar names); run 'graphctl recover %s'",
				     ts->table, n, ts->pin, gfs_graph_dir(c->g));
			rc = GFS_ERECOVERY;
		}
	}
	return rc;
}

/* Does sidecar sc conflict with this operation: it writes a table we
 * touch, or touches one we write?  (Two readers of one table do not
 * conflict.) */
static bool conflicts(const struct gfs_commit *c, const struct gfs_sidecar *sc)
{
	for (size_t k = 0; k < sc->n_tables; k++)
		for (size_t t = 0; t < c->n_ts; t++)
			if (gfs_commit_involved(&c->ts[t]) &&
			    (sc->tables[k].written || c->ts[t].written || c->ts[t].excl) &&
			    !strcmp(sc->tables[k].table, c->ts[t].table))
				return true;
	return false;
}

/* Under our locks: a conflicting sidecar belongs to a dead writer (a live
 * one would hold a lock we hold), one that died after we healed. */
static int dead_sidecar(struct gfs_commit *c, bool *found)
{
	struct gfs_sidecar **scs = NULL;
	size_t nsc = 0;
	int rc = gfs_manifest_sidecar_list(gfs_graph_manifest(c->g), &scs, &nsc);

	*found = false;
	for (size_t i = 0; !rc && i < nsc; i++)
		*found = *found || (!scs[i]->raw && conflicts(c, scs[i]));
	for (size_t i = 0; i < nsc; i++)
		gfs_sidecar_free(scs[i]);
	free(scs);
	return rc;
}

/* The involved tables and our lock mode on each, in type order.  Returns
 * 0 or -ENOMEM; the caller frees both arrays. */
static int lock_set(const struct gfs_commit *c, const char ***names,
		    enum gfs_lock_mode **modes, size_t *n)
{
	*n = 0;
	*names = calloc(c->n_ts + 1, sizeof **names);
	*modes = calloc(c->n_ts + 1, sizeof **modes);
	if (!*names || !*modes)
		return -ENOMEM;
	for (size_t t = 0; t < c->n_ts; t++)
		if (gfs_commit_involved(&c->ts[t])) {
			(*names)[*n] = c->ts[t].table;
			(*modes)[(*n)++] = c->ts[t].written || c->ts[t].excl
					   ? GFS_LOCK_EX : GFS_LOCK_SH;
		}
	return 0;
}

/* Heal first (DESIGN.md §3): resolve dead writers' sidecars whose locks
 * conflict with ours (EX against anything, SH against EX), holding none of
 * our locks.  A writer whose locks are compatible with ours is not waited
 * for, even when it is stopped. */
static int heal(struct gfs_commit *c)
{
	const char **names;
	enum gfs_lock_mode *modes;
	size_t n;
	int rc = lock_set(c, &names, &modes, &n);

	if (!rc)
		rc = gfs_heal_tables(c->g, names, modes, n, c->d);
	free(names);
	free(modes);
	return rc;
}

static int take_locks(struct gfs_commit *c)
{
	const char **names;
	enum gfs_lock_mode *modes;
	size_t n;
	int rc = lock_set(c, &names, &modes, &n);

	/* Test builds only: skipping the locks stands for an expired lease. */
	if (!rc && !gfs_fp_hit(GFS_FP_COMMIT_SKIP_LOCKS))
		rc = gfs_lock_tables_d(gfs_graph_dir(c->g), names, modes, n,
				       GFS_LOCK_WAIT, &c->locks, c->d);
	if (rc)
		gfs_diag_set(c->d, "cannot lock tables: %s", gfs_strerror(rc));
	free(names);
	free(modes);
	return rc;
}

/* Heal, lock, and if a writer died on our tables in between (its sidecar
 * is there under our locks), let go and heal again: never plan around
 * partial state.  Each round resolves at least that sidecar. */
#define HEAL_ROUNDS 16

int gfs_commit_lock(struct gfs_commit *c, enum gfs_fp after_heal,
		    enum gfs_fp after_locks)
{
	bool found = true;
	int rc = 0;

	for (unsigned i = 0; !rc && found && i < HEAL_ROUNDS; i++) {
		gfs_lockset_free(c->locks);
		c->locks = NULL;
		rc = heal(c);
		if (!rc)
			rc = gfs_commit_fp(after_heal);
		if (!rc)
			rc = take_locks(c);
		if (!rc)
			rc = gfs_commit_fp(after_locks);
		if (!rc)
			rc = dead_sidecar(c, &found);
	}
	if (!rc && found) {
		gfs_diag_set(c->d, "recovery needed: writers kept dying on these tables while this %s healed them; run 'graphctl recover %s'",
			     c->what, gfs_graph_dir(c->g));
		rc = GFS_ERECOVERY;
	}
	return rc;
}

static int read_pins(struct gfs_commit *c)
{
	struct gfs_manifest *m = gfs_graph_manifest(c->g);
	const char *name = c->branch ? c->branch : "main";
	struct gfs_branch b;
	int rc;

	gfs_gv_free(c->gv);
	c->gv = NULL;
	rc = gfs_manifest_branch_read(m, name, &b, &c->gv);
	if (rc == -ENOENT)
		gfs_diag_set(c->d, "no branch '%s' (see 'graphctl branch list')", name);
	if (rc)
		return rc;
	memcpy(c->branch_id, b.id, sizeof c->branch_id);
	if (strcmp(c->gv->schema_id, c->schema_old ? c->schema_old : c->s->id))
		return GFS_ECAS;
	for (size_t t = 0; t < c->n_ts; t++)
		c->ts[t].pin = gfs_gv_pin(c->gv, c->ts[t].table);
	return 0;
}

static int open_pinned(struct gfs_commit *c)
{
	int rc = 0;

	for (size_t t = 0; !rc && t < c->n_ts; t++) {
		struct gfs_commit_table *ts = &c->ts[t];
		/* pin 0: a table new in a schema apply, nothing to open */
		if (!gfs_commit_involved(ts) || ts->tv || !ts->pin)
			continue;
		rc = gfs_tver_open(gfs_graph_tables(c->g), ts->table, ts->pin,
				   &ts->tv, c->d);
		if (rc == -ENOENT) {
			gfs_diag_reset(c->d, "invariant violation: table '%s' has version %u missing, but the manifest shows it as the pin; run 'graphctl fsck %s'",
				       ts->table, ts->pin, gfs_graph_dir(c->g));
			rc = GFS_EVIOLATION;
		}
	}
	return rc;
}

int gfs_commit_pin(struct gfs_commit *c)
{
	int rc = read_pins(c);

	if (!rc)
		rc = check_orphans(c);
	if (!rc)
		rc = open_pinned(c);
	return rc;
}

/* ---- arm, confirm, publish --------------------------------------------- */

static int sc_table_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gfs_sc_table *)a)->table,
		      ((const struct gfs_sc_table *)b)->table);
}

/* The tables of this operation for the sidecar and the CAS, sorted: a
 * written table moves pin -> next, a read one must stay at its pin.
 * Returns a new array (free()) or NULL on ENOMEM. */
static struct gfs_sc_table *op_tables(const struct gfs_commit *c, size_t *np)
{
	struct gfs_sc_table *tabs = calloc(c->n_ts + 1, sizeof *tabs);
	size_t n = 0;

	for (size_t t = 0; tabs && t < c->n_ts; t++) {
		const struct gfs_commit_table *ts = &c->ts[t];
		if (!gfs_commit_involved(ts))
			continue;
		snprintf(tabs[n].table, sizeof tabs[n].table, "%s", ts->table);
		tabs[n].written = ts->written;
		tabs[n].expected = ts->pin;
		tabs[n].post = ts->written ? ts->next : ts->pin;
		n++;
	}
	if (tabs)
		qsort(tabs, n, sizeof *tabs, sc_table_cmp);
	*np = n;
	return tabs;
}

int gfs_commit_arm(struct gfs_commit *c)
{
	struct gfs_sidecar sc;
	struct gfs_sc_table *tabs;
	size_t n = 0;
	/* No listing of the table directories here (issue 10): temp files of
	 * dead writers go when their sidecars are resolved (recover.c,
	 * remove_tmp; heal-first does it before our locks), and graphctl
	 * recover removes any others. */
	int rc = gfs_ulid_new(c->op_id);

	if (rc)
		return rc;
	memset(&sc, 0, sizeof sc);
	sc.format = GFS_SIDECAR_FORMAT;
	memcpy(sc.op_id, c->op_id, sizeof sc.op_id);
	snprintf(sc.kind, sizeof sc.kind, "%s", c->kind);
	snprintf(sc.actor, sizeof sc.actor, "%s", c->actor);
	sc.start_ns = gfs_now_ns();
	snprintf(sc.branch, sizeof sc.branch, "%s", c->branch ? c->branch : "main");
	memcpy(sc.branch_id, c->branch_id, sizeof sc.branch_id);
	sc.merge = c->merge;
	if (c->schema_old && c->schema_new) {
		snprintf(sc.schema_old, sizeof sc.schema_old, "%s", c->schema_old);
		snprintf(sc.schema_new, sizeof sc.schema_new, "%s", c->schema_new);
	}
	if (gfs_lockset_holder(c->locks)) /* etcd: whose leases guard it */
		gfs_sidecar_set_holder(&sc, gfs_lockset_holder(c->locks));
	if (!(tabs = op_tables(c, &n)))
		return -ENOMEM;
	sc.tables = tabs;
	sc.n_tables = n;
	/* W3: written tables carry post 0, so the arm transaction reserves
	 * p = next[T]++ for each (docs/branches-design.md §2) */
	rc = gfs_manifest_sidecar_put(gfs_graph_manifest(c->g), &sc);
	for (size_t i = 0; !rc && i < n; i++)
		for (size_t t = 0; t < c->n_ts; t++)
			if (tabs[i].written && !strcmp(tabs[i].table, c->ts[t].table))
				c->ts[t].next = tabs[i].post;
	free(tabs);
	if (rc)
		gfs_diag_set(c->d, "cannot record the recovery sidecar: %s", gfs_strerror(rc));
	return rc;
}

static bool sidecar_gone(struct gfs_commit *c)
{
	struct gfs_sidecar *sc = NULL;
	int rc = gfs_manifest_sidecar_get(gfs_graph_manifest(c->g), c->op_id, &sc);

	gfs_sidecar_free(sc);
	return rc == -ENOENT;
}

/* W4' (docs/branches-design.md §2): our reserved number p is taken by a
 * file no reservation made.  Repost in one transaction (p void, a fresh
 * p' in the sidecar), so a crash from here on is "no movement" and the
 * file at p an orphan, not our op a "foreign" violation.  The version
 * cannot be re-linked at p' (its number is inside its pages), so the
 * write then fails and is discarded; run it again. */
static void repost(struct gfs_commit *c, size_t t)
{
	uint32_t p = c->ts[t].next, np = 0;
	int rc = gfs_manifest_sidecar_repost(gfs_graph_manifest(c->g), c->op_id,
					     c->ts[t].table, p, &np);

	if (!rc)
		c->ts[t].next = np;
	gfs_diag_reset(c->d, "table '%s' version %u already exists: a file no reservation made (an orphan, see 'graphctl fsck %s'); %s",
		     c->ts[t].table, p, gfs_graph_dir(c->g),
		     rc ? "this write is left for recovery" : "nothing of this write is visible: run it again");
}

int gfs_commit_linked(struct gfs_commit *c, size_t t, int rc)
{
	if (rc == -EEXIST)
		repost(c, t);
	/* Only without the locks (the test-only skip_locks: a lease lost): a
	 * recovery resolved our sidecar and removed our temp file.  Said only
	 * when our sidecar is indeed gone; else link's own message stays. */
	if (rc == -ENOENT && c->d && sidecar_gone(c))
		gfs_diag_reset(c->d, "table '%s': the temp file of version %u is gone: a recovery resolved operation %s while this %s was writing (its table locks were not held); nothing of it is visible: %s again",
			     c->ts[t].table, c->ts[t].next, c->op_id, c->what, c->what);
	if (!rc)
		rc = gfs_commit_fp(GFS_FP_COMMIT_AFTER_TABLE);
	return rc;
}

int gfs_commit_confirm(struct gfs_commit *c)
{
	int rc = gfs_manifest_sidecar_confirm(gfs_graph_manifest(c->g), c->op_id);

	if (rc == -ENOENT) /* only when locks were skipped: a lease lost */
		gfs_diag_set(c->d, "operation %s was resolved by a recovery sweep while this %s was writing (its table locks were not held); nothing of it is visible: %s again",
			     c->op_id, c->what, c->what);
	if (!rc)
		rc = gfs_commit_fp(GFS_FP_COMMIT_AFTER_CONFIRM);
	if (!rc)
		rc = gfs_commit_fp(GFS_FP_COMMIT_BEFORE_PUBLISH);
	return rc;
}

/* A sweep that lost a race with us (only without the locks: an expired
 * lease) may have reserved a compensation in our sidecar, and linked it:
 * our publish settles it, retired if its file is there, else void
 * (docs/branches-design.md §3.1 end).  Returns a new array (free()), NULL
 * with *n 0 when there is none, or NULL with rc set. */
static struct gfs_tver_set *lost_comps(struct gfs_commit *c, size_t *n, int *rc)
{
	struct gfs_sidecar *sc = NULL;
	struct gfs_tver_set *v = NULL;

	*n = 0;
	*rc = gfs_manifest_sidecar_get(gfs_graph_manifest(c->g), c->op_id, &sc);
	if (*rc == -ENOENT || *rc == GFS_EFORMAT)
		*rc = 0;
	for (size_t i = 0; !*rc && sc && i < sc->n_tables; i++) {
		bool there = false;
		if (!sc->tables[i].comp)
			continue;
		if (!v && !(v = calloc(sc->n_tables, sizeof *v))) {
			*rc = -ENOMEM;
			break;
		}
		*rc = gfs_table_version_exists(gfs_graph_tables(c->g), sc->tables[i].table,
					       sc->tables[i].comp, &there);
		snprintf(v[*n].table, sizeof v[*n].table, "%s", sc->tables[i].table);
		v[*n].v = sc->tables[i].comp;
		v[(*n)++].state = there ? GFS_TVER_RETIRED : GFS_TVER_VOID;
	}
	gfs_sidecar_free(sc);
	if (*rc) {
		free(v);
		v = NULL;
		*n = 0;
	}
	return v;
}

static int publish(struct gfs_commit *c, const char *op, const char *detail,
		   uint64_t *version)
{
	struct gfs_tver_set *sets;
	struct gfs_sc_table *tabs;
	struct gfs_publish p;
	size_t n = 0, ns = 0;
	int rc;

	sets = lost_comps(c, &ns, &rc);
	if (rc)
		return rc;
	tabs = op_tables(c, &n);
	if (!tabs) {
		free(sets);
		return -ENOMEM;
	}
	memset(&p, 0, sizeof p);
	p.branch = c->branch;
	p.branch_id = c->branch_id;
	p.merge_parent = c->merge.source_gv;
	p.expected_schema = c->schema_old ? c->schema_old : c->s->id;
	p.op = op;
	p.op_id = c->op_id;
	p.actor = c->actor;
	p.detail = detail;
	p.schema_id = c->schema_new;       /* NULL: keep the head's */
	p.tables = tabs;
	p.n_tables = n;
	p.sidecar = c->op_id;
	p.tver_sets = sets;
	p.n_tver_sets = ns;
	rc = gfs_manifest_publish(gfs_graph_manifest(c->g), &p, version, c->d);
	free(tabs);
	free(sets);
	return rc;
}

/* A failure after arming: resolve our own sidecar through recovery's code
 * while we still hold the locks.  Nothing committed -> discarded; some
 * tables committed -> rolled back (compensating versions); confirmed ->
 * rolled forward, i.e. published: the commit point was passed, so the
 * operation succeeds.  If that fails too the sidecar stays for the next
 * sweep. */
static int finish_failed(struct gfs_commit *c, int rc, uint64_t *version)
{
	struct gfs_recover_own_result res;
	struct gfs_diag d2 = {{0}};
	int r2;

	/* The failing system call, before recovery's own calls replace it. */
	if (c->d)
		gfs_diag_io(c->d, rc);
	r2 = gfs_recover_own(c->g, c->op_id, &res, &d2);
	if (!r2 && res.forward) {
		if (c->d)
			c->d->msg[0] = '\0';
		*version = res.version;
		return 0;
	}
	/* etcd: our leases ended (a pause past the TTL, or a write fenced):
	 * whatever failed, the cause is the lost lease, and a recovery owns
	 * the operation now (or already resolved it) */
	struct gfs_diag ld = {{0}};
	if (gfs_lockset_check(c->locks, &ld) || rc == -ENOLCK || rc == GFS_ELEASE ||
	    r2 == -ENOLCK || r2 == GFS_ELEASE) {
		if (c->d)
			gfs_diag_reset(c->d, "%s: this %s published nothing (operation %s; a recovery resolves it, or did: see 'graphctl recover %s --list')",
				       ld.msg[0] ? ld.msg : c->d->msg[0] ? c->d->msg : "lease lost",
				       c->what, c->op_id, gfs_graph_dir(c->g));
		return GFS_ELEASE;
	}
	if (r2 && c->d) {
		char first[sizeof c->d->msg];
		snprintf(first, sizeof first, "%s", c->d->msg[0] ? c->d->msg : gfs_strerror(rc));
		gfs_diag_reset(c->d, "%s; operation %s is left for recovery ('graphctl recover %s'): %s",
			       first, c->op_id, gfs_graph_dir(c->g),
			       d2.msg[0] ? d2.msg
			       : gfs_io_last(r2) ? gfs_io_last(r2) : gfs_strerror(r2));
	}
	return rc;
}

int gfs_commit_finish(struct gfs_commit *c, int rc, const char *op,
		      const char *detail, uint64_t *version)
{
	if (!rc)
		rc = publish(c, op, detail, version);
	if (rc)
		return finish_failed(c, rc, version);
	return gfs_commit_fp(GFS_FP_COMMIT_AFTER_PUBLISH);
}
