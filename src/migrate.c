/* migrate.c - graphctl migrate: a store's manifest from one kv.h backend to
 * another (LMDB <-> etcd, or etcd -> another etcd prefix), issue 13 req. 6,
 * docs/multi-host.md §7.
 *
 *   1. refuse while writers are active: every table lock taken exclusively
 *      without waiting (held to the end, so no writer starts), the old
 *      backend's in_use (LMDB: any process with the manifest open, a mount
 *      included), no pending sidecar;
 *   2. prepare the target: empty, or recognised as this store's (its
 *      meta/migrated_from or meta/moved_to names this store's id, or it
 *      holds nothing but a new manifest's format record) and cleared;
 *      anything else is refused as init refuses a used prefix;
 *   3. open it (created), put meta/migrated_from first, then copy every
 *      sub-database in key order, in batches (opts.batch records and at
 *      most BATCH_BYTES a transaction, so etcd's --max-txn-ops and request
 *      size hold; memory holds one batch), keeping the count and digest
 *      of what was written;
 *   4. freeze the old manifest: one write transaction puts meta/moved_to,
 *      after which no write commits there (store.c invariant 9: every
 *      write transaction reads the key; on etcd one that read it before
 *      conflicts on gen/meta and runs again);
 *   5. check: read both sides back, batch by batch, and compare each
 *      sub-database's count and digest with each other and with the
 *      copy's; the old side cannot move any more, so anything committed
 *      there before the freeze and missed by the copy shows (invariant
 *      335).  On a difference, thaw (delete moved_to) and fail: nothing
 *      switched, the store writable;
 *   6. make the target's names durable (LMDB), then rewrite FORMAT (temp
 *      file, fsync, rename, directory fsync): the switch point.
 * Before 6 the old manifest is the store's (FORMAT names it); after, the
 * new one.  A crash before 4 leaves the store as it was plus a marked
 * partial copy, which a rerun clears; between 4 and 6 the store reads but
 * refuses writes ("moved to ...") until migrate runs again, which redoes
 * the copy (the old side is frozen, so it cannot move) and switches.  The
 * old manifest is never deleted here.  A check inside the freezing
 * transaction would be atomic without the thaw, but one transaction over
 * the whole manifest holds all of it on etcd (its cursors keep every
 * value they hand out until the transaction ends): batches instead.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etcd.h"
#include "failpoints.h"
#include "graph.h"
#include "kv.h"
#include "kv_etcd.h"
#include "lock.h"
#include "store_raw.h"

#define DEF_BATCH 64
/* etcd refuses a request over 1.5 MiB (--max-request-bytes); the gateway
 * carries bytes in base64 (4/3) */
#define BATCH_BYTES ((size_t)512 << 10)

_Static_assert(DEF_BATCH + 2 < 128, "a batch fits etcd's default --max-txn-ops");

static unsigned db_meta(void)
{
	for (unsigned i = 0; i < gfs_manifest_raw_n_dbs(); i++)
		if (!strcmp(gfs_manifest_raw_db_name(i), "meta"))
			return i;
	return 0;
}

static unsigned db_named(const char *name)
{
	for (unsigned i = 0; i < gfs_manifest_raw_n_dbs(); i++)
		if (!strcmp(gfs_manifest_raw_db_name(i), name))
			return i;
	return 0;
}

static bool key_is(const struct gfs_kv_val *k, const char *s)
{
	return k->size == strlen(s) && !memcmp(k->data, s, k->size);
}

/* The migration's own keys: neither copied nor compared. */
static bool is_marker(unsigned db, const struct gfs_kv_val *k)
{
	return db == db_meta() && (key_is(k, GFS_META_MOVED_TO) ||
				   key_is(k, GFS_META_MIGRATED_FROM));
}

/* ---- digests ------------------------------------------------------------ */

struct digest {
	uint64_t n, h;
};

static void digest_add(struct digest *g, const struct gfs_kv_val *k,
		       const struct gfs_kv_val *v)
{
	uint64_t hk = gfs_hash64_2(&k->size, sizeof k->size, k->data, k->size);
	uint64_t hr = gfs_hash64_2(&hk, sizeof hk, v->data, v->size);

	g->h = gfs_hash64_2(&g->h, sizeof g->h, &hr, sizeof hr);
	g->n++;
}

/* Up to max records of db (a missing db is empty), for questions that
 * need no more ("is it empty?", "one record or more?"): a read transaction
 * over a whole sub-database would hold all of it on etcd, whose cursors
 * keep every value they handed out until the transaction ends. */
static int count_upto(struct gfs_kv_txn *txn, unsigned db, uint64_t max,
		      uint64_t *n)
{
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	int rc;

	*n = 0;
	if (!gfs_kv_txn_has_db(txn, db))
		return 0;
	if ((rc = gfs_kv_cursor_open(txn, db, &c)))
		return rc;
	for (rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_FIRST); !rc && *n < max;
	     rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT))
		*n += !is_marker(db, &k);
	gfs_kv_cursor_close(c);
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

/* ---- copying in batches ------------------------------------------------- */

struct rec {
	size_t koff, kl, voff, vl;
	bool skip; /* a marker: read (it moves the position), not copied */
};

struct copy {
	unsigned db, max;
	struct gfs_buf buf;      /* the batch's bytes */
	struct rec *r;
	size_t n, cap;
	bool started, done;
	struct gfs_buf lk, lv;   /* the last pair read (the resume point) */
};

static int batch_add(struct copy *c, unsigned db, const struct gfs_kv_val *k,
		     const struct gfs_kv_val *v)
{
	struct rec *p = gfs_array_grow(c->r, &c->cap, c->n, sizeof *c->r, 16);

	if (!p)
		return -ENOMEM;
	c->r = p;
	p = &c->r[c->n];
	p->koff = c->buf.len;
	p->kl = k->size;
	p->voff = c->buf.len + k->size;
	p->vl = v->size;
	p->skip = is_marker(db, k);
	if (gfs_buf_append(&c->buf, k->data, k->size) ||
	    gfs_buf_append(&c->buf, v->data, v->size))
		return -ENOMEM;
	c->n++;
	return 0;
}

/* (k, v) at or before the resume point? */
static bool seen(const struct copy *c, const struct gfs_kv_val *k,
		 const struct gfs_kv_val *v)
{
	size_t n = k->size < c->lk.len ? k->size : c->lk.len;
	int r = memcmp(k->data, c->lk.p, n);

	if (!r)
		r = k->size < c->lk.len ? -1 : k->size > c->lk.len;
	if (r)
		return r < 0;
	n = v->size < c->lv.len ? v->size : c->lv.len;
	r = memcmp(v->data, c->lv.p, n);
	if (!r)
		r = v->size < c->lv.len ? -1 : v->size > c->lv.len;
	return r <= 0;
}

/* Read callback: the next batch of c->db after the resume point.  Rebuilds
 * the batch on every run. */
static int fill_txn(struct gfs_kv_txn *txn, void *arg)
{
	struct copy *c = arg;
	struct gfs_kv_cursor *cur;
	struct gfs_kv_val k, v;
	int rc;

	gfs_buf_reset(&c->buf);
	c->n = 0;
	c->done = false;
	if (!gfs_kv_txn_has_db(txn, c->db)) {
		c->done = true;
		return 0;
	}
	if ((rc = gfs_kv_cursor_open(txn, c->db, &cur)))
		return rc;
	if (c->started) {
		k = (struct gfs_kv_val){ c->lk.len, c->lk.p };
		rc = gfs_kv_cursor_get(cur, &k, &v, GFS_KV_SET_RANGE);
		while (!rc && seen(c, &k, &v))
			rc = gfs_kv_cursor_get(cur, &k, &v, GFS_KV_NEXT);
	} else {
		rc = gfs_kv_cursor_get(cur, &k, &v, GFS_KV_FIRST);
	}
	while (!rc) {
		if ((rc = batch_add(c, c->db, &k, &v)))
			break;
		if (c->n >= c->max || c->buf.len >= BATCH_BYTES)
			break;
		rc = gfs_kv_cursor_get(cur, &k, &v, GFS_KV_NEXT);
	}
	gfs_kv_cursor_close(cur);
	if (rc == GFS_KV_NOTFOUND) {
		c->done = true;
		rc = 0;
	}
	return rc;
}

/* Write callback: the batch into the target (reads nothing). */
static int put_txn(struct gfs_kv_txn *txn, void *arg)
{
	struct copy *c = arg;
	int rc = 0;

	for (size_t i = 0; !rc && i < c->n; i++) {
		const struct rec *r = &c->r[i];
		struct gfs_kv_val k = { r->kl, c->buf.p + r->koff };
		struct gfs_kv_val v = { r->vl, c->buf.p + r->voff };
		if (!r->skip)
			rc = gfs_kv_put(txn, c->db, &k, &v, 0);
	}
	return rc;
}

static int remember_last(struct copy *c)
{
	const struct rec *r = &c->r[c->n - 1];

	gfs_buf_reset(&c->lk);
	gfs_buf_reset(&c->lv);
	c->started = true;
	if (gfs_buf_append(&c->lk, c->buf.p + r->koff, r->kl) ||
	    gfs_buf_append(&c->lv, c->buf.p + r->voff, r->vl))
		return -ENOMEM;
	return 0;
}

/* Every record of db in src, batch by batch (one read transaction each:
 * memory holds one batch), into dst if not NULL (one write transaction a
 * batch); g gets the count and digest of the records (markers left out). */
static int scan_db(struct gfs_manifest *src, struct gfs_manifest *dst,
		   unsigned db, const struct gfs_migrate_opts *o,
		   struct digest *g, struct gfs_diag *d)
{
	struct copy c = { .db = db, .max = o && o->batch ? o->batch : DEF_BATCH };
	int rc = 0, err;

	gfs_buf_init(&c.buf);
	gfs_buf_init(&c.lk);
	gfs_buf_init(&c.lv);
	memset(g, 0, sizeof *g);
	while (!rc) {
		rc = gfs_kv_read(gfs_manifest_raw_kv(src), fill_txn, &c);
		if (rc) {
			gfs_diag_set(d, "cannot read sub-database '%s' of the %s manifest: %s",
				     gfs_manifest_raw_db_name(db), dst ? "old" : "",
				     gfs_strerror(rc));
			break;
		}
		if (dst && c.n && (rc = gfs_kv_write(gfs_manifest_raw_kv(dst), put_txn, &c, d)))
			break;
		for (size_t i = 0; i < c.n; i++) {
			const struct rec *r = &c.r[i];
			struct gfs_kv_val k = { r->kl, c.buf.p + r->koff };
			struct gfs_kv_val v = { r->vl, c.buf.p + r->voff };
			if (!r->skip)
				digest_add(g, &k, &v);
		}
		if (c.n && (rc = remember_last(&c)))
			break;
		if (dst && o && o->progress && c.n)
			o->progress(gfs_manifest_raw_db_name(db), g->n, o->arg);
		if (dst && (err = gfs_fp_hit(GFS_FP_MIGRATE_AFTER_BATCH)))
			rc = -err;
		if (c.done)
			break;
	}
	gfs_buf_release(&c.buf);
	gfs_buf_release(&c.lk);
	gfs_buf_release(&c.lv);
	free(c.r);
	return rc;
}

/* ---- markers ------------------------------------------------------------ */

static char *marker_json(const char *id, const char *field, const char *where)
{
	json_t *o = json_pack("{s:s, s:s, s:I}", "store", id, field, where,
			      "time_ns", (json_int_t)gfs_now_ns());
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

struct put_marker {
	const char *key, *json;
};

static int put_marker_txn(struct gfs_kv_txn *txn, void *arg)
{
	const struct put_marker *p = arg;

	return gfs_manifest_raw_seal_put(txn, db_meta(), p->key, p->json);
}

/* meta/key's "store" field equals id? */
static int marker_is(struct gfs_kv_txn *txn, const char *key, const char *id,
		     bool *yes)
{
	struct gfs_kv_val k = { strlen(key), (void *)key }, v;
	json_t *o;
	int rc = gfs_kv_get(txn, db_meta(), &k, &v);

	*yes = false;
	if (rc == GFS_KV_NOTFOUND)
		return 0;
	if (rc || (rc = gfs_manifest_raw_unseal(db_meta(), &k, &v)))
		return rc;
	o = json_loadb(v.data, v.size, 0, NULL);
	*yes = json_is_string(json_object_get(o, "store")) &&
	       !strcmp(json_string_value(json_object_get(o, "store")), id);
	json_decref(o);
	return 0;
}

/* Is a manifest found at the target this store's, or a new empty one? */
struct owned {
	const char *id;
	bool ours, fresh;
	uint64_t records;
};

static int owned_txn(struct gfs_kv_txn *txn, void *arg)
{
	struct owned *w = arg;
	uint64_t n;
	bool a = false, b = false;
	int rc = marker_is(txn, GFS_META_MIGRATED_FROM, w->id, &a);

	if (!rc)
		rc = marker_is(txn, GFS_META_MOVED_TO, w->id, &b);
	w->ours = a || b;
	w->records = 0;
	for (unsigned db = 0; !rc && db < gfs_manifest_raw_n_dbs(); db++) {
		rc = count_upto(txn, db, 2, &n);
		w->records += n;
	}
	/* a new manifest holds one record: meta/manifest_format */
	w->fresh = w->records <= 1;
	return rc;
}

/* ---- the target --------------------------------------------------------- */

static int check_owned(const char *dir, const struct gfs_kv_ops *ops,
		       const char *url, const char *id, const char *where,
		       struct gfs_diag *d)
{
	struct gfs_manifest *m;
	struct gfs_diag od = { { 0 } };
	struct owned w = { .id = id };
	int rc = gfs_manifest_raw_open(dir, ops, url, GFS_MANIFEST_RDONLY, &m, &od);

	if (rc) {
		gfs_diag_set(d, "%s already holds data that is not a graphfs "
			     "manifest (%s): migrate needs a target nothing "
			     "else uses", where, od.msg[0] ? od.msg : gfs_strerror(rc));
		return -EEXIST;
	}
	rc = gfs_kv_read(gfs_manifest_raw_kv(m), owned_txn, &w);
	gfs_manifest_close(m);
	if (rc) {
		gfs_diag_set(d, "cannot read the manifest at %s: %s", where,
			     gfs_strerror(rc));
		return rc;
	}
	if (!w.ours && !w.fresh) {
		gfs_diag_set(d, "%s already holds another store's manifest "
			     "(records, none naming store %s): migrate needs a "
			     "target nothing else uses", where, id);
		return -EEXIST;
	}
	return 0;
}

static int prepare_etcd(const char *dir, const char *url, const char *id,
			struct gfs_migrate_result *res, struct gfs_diag *d)
{
	struct gfs_etcd *e;
	struct gfs_etcd_page p = { 0 };
	char *pk = NULL, *end = NULL, where[1100];
	size_t el = 0;
	int rc = gfs_etcd_open(url, NULL, &e, d);

	if (rc)
		return rc;
	size_t pl = strlen(gfs_etcd_prefix(e)) + 2;
	pk = malloc(pl);
	rc = pk ? 0 : -ENOMEM;
	if (!rc) {
		snprintf(pk, pl, "%s/", gfs_etcd_prefix(e));
		rc = gfs_etcd_prefix_end(pk, strlen(pk), &end, &el);
	}
	if (!rc)
		rc = gfs_etcd_range(e, pk, strlen(pk), end, el, 0, 1, &p, d);
	snprintf(where, sizeof where, "etcd prefix '%s' (%s)", gfs_etcd_prefix(e), url);
	if (!rc && p.n)
		rc = check_owned(dir, &gfs_kv_etcd, url, id, where, d);
	if (!rc && p.n) {
		rc = gfs_etcd_delete(e, pk, strlen(pk), end, el, NULL, NULL, d);
		res->cleared = !rc;
	}
	gfs_etcd_page_release(&p);
	free(pk);
	free(end);
	gfs_etcd_close(e);
	return rc;
}

static int prepare_lmdb(const char *dir, const char *id,
			struct gfs_migrate_result *res, struct gfs_diag *d)
{
	char mdir[PATH_MAX], data[PATH_MAX + 16], lock[PATH_MAX + 16];
	int rc;

	snprintf(mdir, sizeof mdir, "%s/manifest", dir);
	snprintf(data, sizeof data, "%s/data.mdb", mdir);
	snprintf(lock, sizeof lock, "%s/lock.mdb", mdir);
	if (access(data, F_OK) < 0)
		return errno == ENOENT ? 0 : gfs_io_fail("access", data, -errno);
	/* a process that still has the old LMDB manifest open (from before
	 * an earlier migrate) would go on reading pages we free */
	if ((rc = gfs_kv_lmdb.in_use(dir, d)))
		return rc;
	if ((rc = check_owned(dir, &gfs_kv_lmdb, NULL, id, mdir, d)))
		return rc;
	if (unlink(data) < 0)
		return gfs_io_fail("unlink", data, -errno);
	if (unlink(lock) < 0 && errno != ENOENT)
		return gfs_io_fail("unlink", lock, -errno);
	res->cleared = true;
	return gfs_fsync_dir(mdir);
}

/* ---- the old manifest --------------------------------------------------- */

/* An etcd store's writers on other hosts hold lease keys (PREFIX/lease/,
 * docs/multi-host.md §4) and its mounts hold graph versions
 * (PREFIX/hold/): any such key is a process at work, which the table
 * locks of this host cannot see.  Keys on own_lease are migrate's own
 * (its table locks are leases of this process's session). */
struct busy_scan {
	int64_t own_lease;
	bool hold;
	struct gfs_diag *d;
};

static int busy_key(void *arg, const struct gfs_etcd_kv *kv)
{
	struct busy_scan *b = arg;

	if (b->own_lease && kv->lease == b->own_lease)
		return 0;
	gfs_diag_set(b->d, "the store's etcd prefix holds %s key '%.*s' (%.*s): "
		     "a %s is at work, maybe on another host; stop it, then "
		     "run migrate again", b->hold ? "a mount's hold" : "a writer's lease",
		     (int)(kv->key_len > 200 ? 200 : kv->key_len), kv->key,
		     (int)(kv->value_len > 160 ? 160 : kv->value_len), kv->value,
		     b->hold ? "mount" : "writer");
	return -EBUSY;
}

static int etcd_busy(const char *url, const struct gfs_lockset *ls,
		     struct gfs_diag *d)
{
	static const char *const dirs[] = { "lease", "hold" };
	const char *holder = ls ? gfs_lockset_holder(ls) : NULL;
	struct busy_scan b = { .d = d };
	struct gfs_etcd *e;
	int rc = gfs_etcd_open(url, NULL, &e, d);

	/* an etcd holder is "<session lease id in hex>.<n>" */
	if (holder && strchr(holder, '.'))
		b.own_lease = (int64_t)strtoull(holder, NULL, 16);
	for (size_t i = 0; !rc && i < GFS_ARRAY_SIZE(dirs); i++) {
		char k[600], *end = NULL;
		size_t el = 0;
		snprintf(k, sizeof k, "%s/%s/", gfs_etcd_prefix(e), dirs[i]);
		b.hold = i == 1;
		rc = gfs_etcd_prefix_end(k, strlen(k), &end, &el);
		if (!rc)
			rc = gfs_etcd_range_each(e, k, strlen(k), end, el, 0, 0,
						 busy_key, &b, NULL, d);
		free(end);
	}
	gfs_etcd_close(e);
	return rc;
}

static int pending_txn(struct gfs_kv_txn *txn, void *arg)
{
	struct digest *g = arg;

	return count_upto(txn, db_named("sidecars"), 1, &g->n);
}

static int first_sidecar_txn(struct gfs_kv_txn *txn, void *arg)
{
	char *out = arg;
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	int rc = gfs_kv_cursor_open(txn, db_named("sidecars"), &c);

	if (rc)
		return rc;
	rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_FIRST);
	if (!rc)
		snprintf(out, 64, "%.*s", (int)(k.size < 40 ? k.size : 40),
			 (const char *)k.data);
	gfs_kv_cursor_close(c);
	return rc;
}

static int refuse_pending(struct gfs_manifest *src, const char *dir,
			  struct gfs_diag *d)
{
	struct digest g;
	char op[64] = "?";
	int rc = gfs_kv_read(gfs_manifest_raw_kv(src), pending_txn, &g);

	if (rc || !g.n)
		return rc;
	gfs_kv_read(gfs_manifest_raw_kv(src), first_sidecar_txn, op);
	gfs_diag_set(d, "store '%s' has pending operations (the first: the "
		     "sidecar of op %s): run 'graphctl recover %s' (or let "
		     "the writer finish), then run migrate again", dir, op, dir);
	return -EBUSY;
}

/* Write callback on the old manifest: put meta/moved_to.  It reads
 * nothing: every write transaction of store.c reads meta/moved_to, so on
 * etcd one that read before this commits conflicts on gen/meta and runs
 * again, seeing the marker; on LMDB writers are serialized. */
static int freeze_txn(struct gfs_kv_txn *txn, void *arg)
{
	const char *json = arg;

	return gfs_manifest_raw_seal_put(txn, db_meta(), GFS_META_MOVED_TO, json);
}

static int thaw_txn(struct gfs_kv_txn *txn, void *arg)
{
	struct gfs_kv_val k = { strlen(GFS_META_MOVED_TO), (void *)GFS_META_MOVED_TO };
	int rc = gfs_kv_del(txn, db_meta(), &k);

	(void)arg;
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

/* ---- the whole move ----------------------------------------------------- */

struct move {
	const char *dir, *url, *id;
	const struct gfs_kv_ops *to_ops;
	const struct gfs_migrate_opts *o;
	struct gfs_migrate_result *res;
	struct gfs_manifest *src, *dst;
};

static int copy_all(struct move *mv, struct gfs_diag *d)
{
	struct digest g;
	int rc = 0;

	mv->res->n_dbs = gfs_manifest_raw_n_dbs();
	for (unsigned db = 0; !rc && db < mv->res->n_dbs; db++) {
		mv->res->dbs[db].name = gfs_manifest_raw_db_name(db);
		rc = scan_db(mv->src, mv->dst, db, mv->o, &g, d);
		mv->res->dbs[db].records = g.n;
		mv->res->dbs[db].digest = g.h;
		mv->res->records += g.n;
	}
	return rc;
}

/* Both sides read back, sub-database by sub-database, in batches; the old
 * one is frozen by now, so what it holds can no longer move. */
static int check(struct move *mv, struct gfs_diag *d)
{
	struct digest a, b;
	int rc = 0;

	for (unsigned db = 0; !rc && db < mv->res->n_dbs; db++) {
		const struct gfs_migrate_db *w = &mv->res->dbs[db];
		rc = scan_db(mv->src, NULL, db, mv->o, &a, d);
		if (!rc)
			rc = scan_db(mv->dst, NULL, db, mv->o, &b, d);
		if (!rc && db == db_named("sidecars") && a.n) {
			gfs_diag_set(d, "a writer armed an operation during the "
				     "copy: nothing switched; run migrate again");
			rc = -EBUSY;
		} else if (!rc && (a.n != b.n || a.h != b.h || b.n != w->records ||
				   b.h != w->digest)) {
			gfs_diag_set(d, "check failed: sub-database '%s' of the "
				     "old manifest (%llu records) differs from "
				     "the copy (%llu records): something wrote "
				     "the store during the copy; nothing "
				     "switched, run migrate again", w->name,
				     (unsigned long long)a.n,
				     (unsigned long long)b.n);
			rc = -EAGAIN;
		}
	}
	return rc;
}

static int open_target(struct move *mv, struct gfs_diag *d)
{
	struct put_marker pm = { GFS_META_MIGRATED_FROM, NULL };
	char *js = marker_json(mv->id, "from", mv->res->from);
	int rc = js ? 0 : -ENOMEM;

	if (!rc)
		rc = mv->url ? prepare_etcd(mv->dir, mv->url, mv->id, mv->res, d)
			     : prepare_lmdb(mv->dir, mv->id, mv->res, d);
	if (!rc)
		rc = gfs_manifest_raw_open(mv->dir, mv->to_ops, mv->url,
					   GFS_MANIFEST_CREATE, &mv->dst, d);
	pm.json = js;
	if (!rc)
		rc = gfs_kv_write(gfs_manifest_raw_kv(mv->dst), put_marker_txn, &pm, d);
	free(js);
	return rc;
}

static int freeze_old(struct move *mv, struct gfs_diag *d)
{
	char *json = marker_json(mv->id, "to", mv->res->to);
	int rc = json ? 0 : -ENOMEM;

	if (!rc)
		rc = gfs_kv_write(gfs_manifest_raw_kv(mv->src), freeze_txn, json, d);
	free(json);
	return rc;
}

/* The check failed: the old manifest is the store's again, writable (a
 * failure here leaves it frozen, which a rerun of migrate resolves). */
static void thaw_old(struct move *mv)
{
	struct gfs_diag td = { { 0 } };

	gfs_kv_write(gfs_manifest_raw_kv(mv->src), thaw_txn, NULL, &td);
}

static int resumed_txn(struct gfs_kv_txn *txn, void *arg)
{
	struct move *mv = arg;
	bool yes = false;
	int rc = marker_is(txn, GFS_META_MOVED_TO, mv->id, &yes);

	mv->res->resumed = yes;
	return rc;
}

static int fp(enum gfs_fp id)
{
	int err = gfs_fp_hit(id);
	return err ? -err : 0;
}

/* Steps 3-6 with the writers held off. */
static int move(struct move *mv, struct gfs_diag *d)
{
	int rc = gfs_manifest_open(mv->dir, 0, &mv->src, d);

	if (!rc)
		rc = refuse_pending(mv->src, mv->dir, d);
	if (!rc)
		rc = gfs_kv_read(gfs_manifest_raw_kv(mv->src), resumed_txn, mv);
	if (!rc)
		rc = open_target(mv, d);
	if (!rc)
		rc = copy_all(mv, d);
	if (!rc)
		rc = fp(GFS_FP_MIGRATE_AFTER_COPY);
	if (!rc)
		rc = freeze_old(mv, d);
	if (!rc && (rc = check(mv, d)) && !mv->res->resumed)
		thaw_old(mv);
	if (!rc)
		rc = fp(GFS_FP_MIGRATE_AFTER_MARK);
	/* invariant 56's rule for init, here: FORMAT vouches only for
	 * durable names */
	if (!rc)
		rc = mv->to_ops->sync_created(mv->dir, d);
	gfs_manifest_close(mv->dst);
	gfs_manifest_close(mv->src);
	mv->dst = mv->src = NULL;
	if (!rc && (rc = gfs_graph_format_write_url(mv->dir, mv->id, mv->url)))
		gfs_diag_set(d, "cannot write '%s/FORMAT' (the switch; the "
			     "old manifest is frozen, run migrate again): %s",
			     mv->dir, gfs_strerror(rc));
	/* switched: a kill from here on leaves nothing to do */
	return rc ? rc : fp(GFS_FP_MIGRATE_AFTER_FORMAT);
}

/* Two etcd prefixes that are equal or nested would let the target's
 * clearing reach the store's own keys: refused whatever the endpoints say
 * (two spellings of one cluster cannot be told from two clusters). */
static int prefixes_apart(const char *cur, const char *url, struct gfs_diag *d)
{
	struct gfs_etcd_url a, b;
	size_t al, bl, n;
	int rc;

	if (!cur || !url)
		return 0;
	if ((rc = gfs_etcd_url_parse(cur, &a, d)))
		return rc;
	if ((rc = gfs_etcd_url_parse(url, &b, d))) {
		gfs_etcd_url_release(&a);
		return rc;
	}
	al = strlen(a.prefix);
	bl = strlen(b.prefix);
	n = al < bl ? al : bl;
	if (!strncmp(a.prefix, b.prefix, n) &&
	    (al == bl || (al > bl ? a.prefix[n] : b.prefix[n]) == '/')) {
		gfs_diag_set(d, "target prefix '%s' is, holds or lies inside "
			     "the store's own prefix '%s': migrate needs a "
			     "prefix apart from it", b.prefix, a.prefix);
		rc = -EINVAL;
	}
	gfs_etcd_url_release(&a);
	gfs_etcd_url_release(&b);
	return rc;
}

static int where_of(const char *url, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s", url ? url : "lmdb");
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* The store's id and where its manifest is (res->from; *cur: the URL or
 * NULL, free()), and where it goes (res->to). */
static int locate(const char *dir, const char *url, char id[GFS_ULID_LEN + 1],
		  char **cur, struct gfs_migrate_result *res, struct gfs_diag *d)
{
	struct gfs_etcd_url u;
	int ver = 0, rc = url ? gfs_etcd_url_parse(url, &u, d) : 0;

	if (rc)
		return rc;
	if (url)
		gfs_etcd_url_release(&u);
	rc = gfs_graph_format_read(dir, &ver, id, d);
	if (!rc && ver != GFS_FORMAT_VERSION) {
		gfs_diag_set(d, "store '%s' is format %d: run 'graphctl upgrade "
			     "%s' first", dir, ver, dir);
		rc = GFS_EFORMAT;
	}
	if (!rc)
		rc = gfs_kv_manifest_url(dir, cur, d);
	if (!rc)
		rc = where_of(*cur, res->from, sizeof res->from);
	return rc ? rc : where_of(url, res->to, sizeof res->to);
}

/* Step 1: no writer at work, none to start (the locks, kept in *ls). */
static int hold_off_writers(const char *dir, const char *cur,
			    struct gfs_lockset **ls, struct gfs_diag *d)
{
	int rc = gfs_graph_lock_all(dir, "migrate", ls, d);

	if (!rc)
		rc = gfs_kv_backend(dir)->in_use(dir, d);
	if (!rc && cur)
		rc = etcd_busy(cur, *ls, d);
	return rc;
}

/* Already there: lift a freeze an interrupted migrate left (FORMAT names
 * this manifest, so it is the store's, and nothing else will thaw it).
 * Under every table lock: a migrate still running holds them all, and
 * thawing under it would let writes land on a manifest it is about to
 * switch away from. */
static int cancel(const char *dir, const char *id, struct gfs_migrate_result *res,
		  struct gfs_diag *d)
{
	struct move mv = { .dir = dir, .id = id, .res = res };
	struct gfs_lockset *ls = NULL;
	int rc = gfs_manifest_open(dir, 0, &mv.src, d);

	if (!rc)
		rc = gfs_kv_read(gfs_manifest_raw_kv(mv.src), resumed_txn, &mv);
	if (!rc && res->resumed)
		rc = gfs_graph_lock_all(dir, "migrate", &ls, d);
	if (!rc && res->resumed)
		rc = gfs_kv_write(gfs_manifest_raw_kv(mv.src), thaw_txn, NULL, d);
	res->thawed = !rc && res->resumed;
	res->resumed = false;
	gfs_lockset_free(ls);
	gfs_manifest_close(mv.src);
	return rc;
}

int gfs_graph_migrate(const char *dir, const char *url,
		      const struct gfs_migrate_opts *o,
		      struct gfs_migrate_result *res, struct gfs_diag *d)
{
	char id[GFS_ULID_LEN + 1], *cur = NULL;
	struct gfs_lockset *ls = NULL;
	int rc;

	memset(res, 0, sizeof *res);
	if (url && !strcmp(url, "lmdb"))
		url = NULL;
	rc = locate(dir, url, id, &cur, res, d);
	if (!rc && !strcmp(res->from, res->to)) {
		res->already = true;
		rc = cancel(dir, id, res, d);
	} else if (!rc)
		rc = prefixes_apart(cur, url, d);
	if (!rc && !res->already)
		rc = hold_off_writers(dir, cur, &ls, d);
	if (!rc && !res->already) {
		struct move mv = { dir, url, id, url ? &gfs_kv_etcd : &gfs_kv_lmdb,
				   o, res, NULL, NULL };
		rc = move(&mv, d);
	}
	gfs_lockset_free(ls);
	free(cur);
	return rc;
}
