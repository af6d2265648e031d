/* upgrade.c - graphctl upgrade: a store of an earlier format to the current
 * one (DESIGN.md §2: every newer build opens or upgrades every earlier
 * format).
 *
 * Format 1 -> 2 (issue 8): every manifest value gains its checksum
 * (store.c, "sealed values") and FORMAT gains a check line.  Table files
 * and schemas are the same in both formats.
 *
 *   1. take every table lock LOCK_EX without waiting (a writer of any build
 *      holds one while it writes): -EBUSY naming the table otherwise;
 *   2. refuse (-EBUSY) while another process has the manifest open (the
 *      backend's in_use, kv.h): every open LMDB environment holds a read
 *      lock on byte 0 of lock.mdb, so F_GETLK for a write lock there names
 *      such a process (a mount, a long-running graphctl of the old build,
 *      which would go on writing values without checksums; kv_lmdb.c);
 *   3. rewrite the manifest in one LMDB write transaction
 *      (gfs_manifest_upgrade): a crash leaves format 1 or format 2;
 *   4. write FORMAT (temp file, fsync, rename, directory fsync).
 * A crash between 3 and 4 leaves FORMAT at 1 over a format-2 manifest:
 * every command but upgrade refuses it, and upgrade run again finds the
 * manifest current (nothing rewritten) and writes FORMAT.
 *
 * Format 2 -> 3 (issue 11, docs/branches-design.md §1.1): the manifest
 * gains the table-version counter `next` and index `tver`, built here from
 * the store in one more LMDB transaction (gfs_manifest_upgrade_index),
 * after step 3 and under the same locks:
 *   - the history gives each pinned version its first graph version
 *     (published);
 *   - pending sidecars' posts (and comps) are reserved: a sidecar of the
 *     old build is carried over and resolved by the new one (the design
 *     said refuse; that would leave a store only the old build could
 *     recover, so it is not done);
 *   - every other version file's header is read once: a compensation, or
 *     a version below the table's pin, was linked by a resolved operation
 *     (retired); anything else above the pin is an orphan and gets no
 *     record;
 *   - next[T] is the lowest orphan when there is one (so a writer's probe
 *     refuses it, as before), else one above every number seen.
 * A crash between the two transactions leaves a sealed format-2 manifest:
 * upgrade run again builds the index.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "failpoints.h"
#include "graph.h"
#include "kv.h"
#include "lock.h"
#include "table.h"

struct names {
	char **v;
	size_t n, cap;
};

static void names_free(struct names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
}

/* The names in STORE/sub ending in suffix (without it; dot files and
 * "versions.lock", the graph-version holds, left out). */
static int dir_names(const char *dir, const char *sub, const char *suffix,
		     struct names *nm)
{
	char path[PATH_MAX];
	size_t sl = strlen(suffix);
	struct dirent *de;
	DIR *dp;

	snprintf(path, sizeof path, "%s/%s", dir, sub);
	dp = opendir(path);
	if (!dp)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dp))) {
		size_t len = strlen(de->d_name);
		void *p;
		if (len <= sl || de->d_name[0] == '.' ||
		    strcmp(de->d_name + len - sl, suffix) ||
		    !strcmp(de->d_name, "versions.lock"))
			continue;
		p = gfs_array_grow(nm->v, &nm->cap, nm->n, sizeof *nm->v, 8);
		if (p)
			nm->v = p;
		if (!p || !(nm->v[nm->n] = gfs_memdup(de->d_name, len - sl))) {
			closedir(dp);
			return -ENOMEM;
		}
		nm->n++;
	}
	closedir(dp);
	return 0;
}

/* Every table a writer ever locked (a lock file) and every table of the
 * store (a directory under tables/: one no writer locked yet). */
static int lock_names(const char *dir, struct names *nm)
{
	int rc = dir_names(dir, "locks", ".lock", nm);

	return rc ? rc : dir_names(dir, "tables", "", nm);
}

int gfs_graph_lock_all(const char *dir, const char *cmd,
		       struct gfs_lockset **ls, struct gfs_diag *d)
{
	struct names nm = { 0 };
	enum gfs_lock_mode *modes = NULL;
	int rc = lock_names(dir, &nm);

	*ls = NULL;
	if (!rc && nm.n && !(modes = calloc(nm.n, sizeof *modes)))
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < nm.n; i++)
		modes[i] = GFS_LOCK_EX;
	struct gfs_diag why = { { 0 } };
	if (!rc && nm.n)
		rc = gfs_lock_tables_d(dir, (const char *const *)nm.v, modes, nm.n,
				       GFS_LOCK_TRY, ls, &why);
	if (rc == -EWOULDBLOCK) {
		/* etcd: why names the lease key and its holder (host, pid) */
		gfs_diag_set(d, "store '%s' has a writer at work (a table lock is held%s%s): stop it, then run %s again",
			     dir, why.msg[0] ? ": " : "", why.msg, cmd);
		rc = -EBUSY;
	} else if (rc) {
		gfs_diag_set(d, "cannot lock the tables of '%s': %s", dir,
			     gfs_strerror(rc));
	}
	free(modes);
	names_free(&nm);
	return rc;
}

/* Issue 11 (h11-branch's part of the format-3 upgrade): main gets its
 * branch record (docs/branches-design.md §1.1), in a transaction of its
 * own after the rewrite: a crash between them leaves a store whose main has
 * no record, which reads as main = the highest graph version, and upgrade
 * run again writes it. */
static int upgrade_branches(struct gfs_manifest *m, struct gfs_upgrade_result *res,
			    struct gfs_diag *d)
{
	bool created = false;
	int rc = gfs_manifest_branches_upgrade(m, &created);

	if (rc)
		gfs_diag_set(d, "cannot record branch main: %s", gfs_strerror(rc));
	if (created)
		res->records++;
	return rc;
}

/* ---- the index of format 3 ---------------------------------------------- */

struct pinned {
	char table[GFS_TABLE_NAME_MAX];
	uint32_t v;
	uint64_t gv;
};

struct index {
	struct gfs_manifest *m;
	struct gfs_tstore *ts;
	struct gfs_diag *d;
	struct pinned *pins;            /* (table, v, first gv), sorted */
	size_t n_pins, cap_pins;
	struct gfs_gv *prev;            /* the previous gv (history walk) */
	struct gfs_tver_rec *recs;
	size_t n_recs, cap_recs;
	struct gfs_pin *nexts;
	size_t n_next, cap_next;
	struct gfs_sidecar **scs;
	size_t n_scs;
	struct gfs_gv *head;
	/* the table being listed */
	const char *table;
	uint32_t max_seen, lowest_orphan;
};

static int pinned_push(struct index *x, const char *table, uint32_t v,
		       uint64_t gv)
{
	void *p = gfs_array_grow(x->pins, &x->cap_pins, x->n_pins,
				 sizeof *x->pins, 64);
	if (!p)
		return -ENOMEM;
	x->pins = p;
	snprintf(x->pins[x->n_pins].table, GFS_TABLE_NAME_MAX, "%s", table);
	x->pins[x->n_pins].v = v;
	x->pins[x->n_pins++].gv = gv;
	return 0;
}

/* Each gv: the pins that differ from the previous gv's (a version's first
 * graph version is the first one that shows it). */
static int history_cb(const struct gfs_gv *gv, void *arg)
{
	struct index *x = arg;
	int rc = 0;

	for (size_t i = 0; !rc && i < gv->n_pins; i++) {
		uint32_t v = gv->pins[i].version;
		if (v && (!x->prev || gfs_gv_pin(x->prev, gv->pins[i].table) != v))
			rc = pinned_push(x, gv->pins[i].table, v, gv->version);
	}
	gfs_gv_free(x->prev);
	x->prev = calloc(1, sizeof *x->prev);
	if (!x->prev)
		return -ENOMEM;
	x->prev->pins = gv->n_pins ? malloc(gv->n_pins * sizeof *gv->pins) : NULL;
	if (gv->n_pins && !x->prev->pins)
		return -ENOMEM;
	if (gv->n_pins)
		memcpy(x->prev->pins, gv->pins, gv->n_pins * sizeof *gv->pins);
	x->prev->n_pins = gv->n_pins;
	return rc;
}

static int pinned_cmp(const void *a, const void *b)
{
	const struct pinned *x = a, *y = b;
	int c = strcmp(x->table, y->table);
	if (c)
		return c;
	if (x->v != y->v)
		return x->v < y->v ? -1 : 1;
	return x->gv < y->gv ? -1 : x->gv > y->gv;
}

/* The first gv that pinned (table, v), 0 if none. */
static uint64_t first_gv(const struct index *x, const char *table, uint32_t v)
{
	struct pinned key = { .v = v, .gv = 0 };
	size_t lo = 0, hi = x->n_pins;

	snprintf(key.table, sizeof key.table, "%s", table);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (pinned_cmp(&x->pins[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < x->n_pins && !strcmp(x->pins[lo].table, table) &&
	    x->pins[lo].v == v)
		return x->pins[lo].gv;
	return 0;
}

static int rec_push(struct index *x, const struct gfs_tver_rec *r)
{
	void *p = gfs_array_grow(x->recs, &x->cap_recs, x->n_recs,
				 sizeof *x->recs, 64);
	if (!p)
		return -ENOMEM;
	x->recs = p;
	x->recs[x->n_recs++] = *r;
	return 0;
}

/* The pending sidecar naming (table, v) as post or comp, or NULL. */
static const struct gfs_sidecar *named_by(const struct index *x,
					  const char *table, uint32_t v,
					  bool *comp)
{
	for (size_t i = 0; i < x->n_scs; i++)
		for (size_t k = 0; !x->scs[i]->raw && k < x->scs[i]->n_tables; k++) {
			const struct gfs_sc_table *t = &x->scs[i]->tables[k];
			if (!t->written || strcmp(t->table, table))
				continue;
			if (t->post == v || (t->comp && t->comp == v)) {
				*comp = t->comp == v;
				return x->scs[i];
			}
		}
	return NULL;
}

/* One version file of x->table: its header once, then its record. */
static int version_cb(uint32_t v, uint64_t bytes, void *arg)
{
	struct index *x = arg;
	struct gfs_tver_rec r = { .v = v, .bytes = bytes };
	struct gfs_tver_info info = { 0 };
	struct gfs_diag d = {{0}};
	struct gfs_tver *tv = NULL;
	const struct gfs_sidecar *sc;
	bool comp = false;
	int rc = gfs_tver_open(x->ts, x->table, v, &tv, &d);

	if (rc && rc != GFS_ECORRUPT && rc != GFS_EFORMAT && rc != -ENOENT) {
		gfs_diag_set(x->d, "cannot index table '%s' version %u: %s",
			     x->table, v, d.msg[0] ? d.msg : gfs_strerror(rc));
		return rc;
	}
	if (tv) {
		gfs_tver_info(tv, &info);
		gfs_tver_close(tv);
	}
	if (v > x->max_seen)
		x->max_seen = v;
	snprintf(r.table, sizeof r.table, "%s", x->table);
	snprintf(r.op_id, sizeof r.op_id, "%s", info.op_id);
	r.parent = info.parent;
	r.content_of = info.content_of;
	r.compensation = info.compensation;
	r.first_gv = first_gv(x, x->table, v);
	sc = named_by(x, x->table, v, &comp);
	if (r.first_gv)
		r.state = GFS_TVER_PUBLISHED;
	else if (sc)
		return 0; /* the sidecar's reservation is recorded separately */
	else if (tv && (info.compensation || v < gfs_gv_pin(x->head, x->table)))
		r.state = GFS_TVER_RETIRED;
	else {
		/* an orphan: no record (fsck and recover --orphans find it) */
		if (!x->lowest_orphan || v < x->lowest_orphan)
			x->lowest_orphan = v;
		return 0;
	}
	return rec_push(x, &r);
}

/* The reservations of the pending sidecars. */
static int sidecar_recs(struct index *x)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < x->n_scs; i++) {
		const struct gfs_sidecar *sc = x->scs[i];
		for (size_t k = 0; !rc && !sc->raw && k < sc->n_tables; k++) {
			const struct gfs_sc_table *t = &sc->tables[k];
			struct gfs_tver_rec r = { .state = GFS_TVER_RESERVED };
			if (!t->written || first_gv(x, t->table, t->post))
				continue;
			snprintf(r.table, sizeof r.table, "%s", t->table);
			snprintf(r.op_id, sizeof r.op_id, "%s", sc->op_id);
			r.v = t->post;
			r.parent = t->expected;
			rc = rec_push(x, &r);
			if (!rc && t->comp) {
				r.v = t->comp;
				r.parent = 0;
				r.content_of = t->expected;
				r.compensation = true;
				rc = rec_push(x, &r);
			}
		}
	}
	return rc;
}

static bool table_known(const struct index *x, const char *table, size_t upto)
{
	for (size_t i = 0; i < upto; i++)
		if (!strcmp(x->pins[i].table, table))
			return true;
	return false;
}

static int next_push(struct index *x, const char *table, uint32_t n)
{
	void *p = gfs_array_grow(x->nexts, &x->cap_next, x->n_next,
				 sizeof *x->nexts, 16);
	if (!p)
		return -ENOMEM;
	x->nexts = p;
	snprintf(x->nexts[x->n_next].table, GFS_TABLE_NAME_MAX, "%s", table);
	x->nexts[x->n_next++].version = n;
	return 0;
}

/* Lists one table and sets its next. */
static int index_table(struct index *x, const char *table)
{
	int rc;

	x->table = table;
	x->max_seen = x->lowest_orphan = 0;
	rc = gfs_table_versions(x->ts, table, version_cb, x);
	for (size_t i = 0; !rc && i < x->n_recs; i++)
		if (!strcmp(x->recs[i].table, table) && x->recs[i].v > x->max_seen)
			x->max_seen = x->recs[i].v;
	if (!rc && x->max_seen == UINT32_MAX - 1)
		rc = -EOVERFLOW;
	if (!rc)
		rc = next_push(x, table, x->lowest_orphan ? x->lowest_orphan
				: x->max_seen + 1);
	return rc;
}

static void index_free(struct index *x)
{
	for (size_t i = 0; i < x->n_scs; i++)
		gfs_sidecar_free(x->scs[i]);
	free(x->scs);
	free(x->pins);
	free(x->recs);
	free(x->nexts);
	gfs_gv_free(x->prev);
	gfs_gv_free(x->head);
	gfs_tstore_close(x->ts);
}

/* The tables: every one a gv or a sidecar names. */
static int index_tables(struct index *x)
{
	int rc = 0;

	/* sidecar tables join the list (a table new in a pending op) */
	for (size_t i = 0; !rc && i < x->n_scs; i++)
		for (size_t k = 0; !rc && !x->scs[i]->raw && k < x->scs[i]->n_tables; k++)
			if (!table_known(x, x->scs[i]->tables[k].table, x->n_pins))
				rc = pinned_push(x, x->scs[i]->tables[k].table, 0, 0);
	if (!rc && x->n_pins)
		qsort(x->pins, x->n_pins, sizeof *x->pins, pinned_cmp);
	for (size_t i = 0; !rc && i < x->n_pins; i++)
		if (i == 0 || strcmp(x->pins[i].table, x->pins[i - 1].table))
			rc = index_table(x, x->pins[i].table);
	return rc;
}

static int build_index(const char *dir, struct gfs_manifest *m,
		       uint64_t *records, struct gfs_diag *d)
{
	struct index x = { .m = m, .d = d };
	bool done = false;
	int rc = gfs_tstore_open(dir, &x.ts);

	if (!rc)
		rc = gfs_manifest_history(m, 1, 0, history_cb, &x);
	if (!rc && x.n_pins)
		qsort(x.pins, x.n_pins, sizeof *x.pins, pinned_cmp);
	if (!rc)
		rc = gfs_manifest_head(m, &x.head);
	if (!rc)
		rc = gfs_manifest_sidecar_list(m, &x.scs, &x.n_scs);
	if (!rc)
		rc = sidecar_recs(&x);
	if (!rc)
		rc = index_tables(&x);
	if (!rc)
		rc = gfs_manifest_upgrade_index(m, x.recs, x.n_recs, x.nexts,
						x.n_next, &done, d);
	if (!rc && done)
		*records += x.n_recs + x.n_next;
	if (rc && d && !d->msg[0])
		gfs_diag_set(d, "cannot build the table-version index of '%s': %s",
			     dir, gfs_strerror(rc));
	index_free(&x);
	return rc;
}

static int upgrade_manifest(const char *dir, struct gfs_upgrade_result *res,
			    struct gfs_diag *d)
{
	struct gfs_manifest *m;
	int rc = gfs_manifest_open(dir, GFS_MANIFEST_UPGRADE, &m, d);

	if (rc)
		return rc;
	rc = gfs_manifest_upgrade(m, &res->records, d);
	if (!rc && gfs_manifest_format(m) < 3)
		rc = build_index(dir, m, &res->records, d);
	if (!rc)
		rc = upgrade_branches(m, res, d);
	gfs_manifest_close(m);
	return rc;
}

int gfs_graph_upgrade(const char *dir, struct gfs_upgrade_result *res,
		      struct gfs_diag *d)
{
	char id[GFS_ULID_LEN + 1];
	struct gfs_lockset *ls = NULL;
	int rc, err;

	memset(res, 0, sizeof *res);
	rc = gfs_graph_format_read(dir, &res->from, id, d);
	if (rc)
		return rc;
	res->to = GFS_FORMAT_VERSION;
	rc = gfs_graph_lock_all(dir, "upgrade", &ls, d);
	if (!rc)
		rc = gfs_kv_backend(dir)->in_use(dir, d);
	if (!rc)
		rc = upgrade_manifest(dir, res, d);
	err = rc ? 0 : gfs_fp_hit(GFS_FP_UPGRADE_AFTER_MANIFEST);
	if (err)
		rc = -err;
	if (!rc && res->from != GFS_FORMAT_VERSION) {
		rc = gfs_graph_format_write(dir, id);
		if (rc)
			gfs_diag_set(d, "cannot write '%s/FORMAT': %s", dir,
				     gfs_strerror(rc));
	} else if (!rc) {
		/* Current already, but an earlier run may have failed at its
		 * directory fsync after renaming FORMAT into place: make the
		 * name durable now rather than trust the page cache. */
		rc = gfs_fsync_dir(dir);
		if (rc)
			gfs_diag_io(d, rc);
	}
	gfs_lockset_free(ls);
	return rc;
}
