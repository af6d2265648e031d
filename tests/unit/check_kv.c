/* check_kv.c - kv.h's write-callback rule (docs/invariants.md 270-279).
 *
 * A backend may run a write callback more than once before one run commits
 * (LMDB after MDB_MAP_FULL, etcd after a conflict).  These tests make the
 * LMDB backend throw the first run of a write away, as etcd would, through
 * gfs_manifest_debug_set_rerun (store_int.h), with or without another
 * writer in between, and check that the run that commits is the one that
 * counts.  The layering itself (only kv_lmdb.c includes <lmdb.h>) is
 * tests/lint_layers.sh's.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <lmdb.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#include "kv.h"
#include "graph.h"
#include "kv_etcd.h"
#include "manifest.h"
#include "store_int.h"
#include "store_raw.h"
#include "testutil.h"
#include "util.h"

#define OP1 "01HZZZZZZZZZZZZZZZZZZZZZZ1"
#define OP2 "01HZZZZZZZZZZZZZZZZZZZZZZ2"
#define OP3 "01HZZZZZZZZZZZZZZZZZZZZZZ3"

static char dir[PATH_MAX];

static void setup(void)
{
	tu_tmpdir(dir, sizeof dir);
}

static void teardown(void)
{
	gfs_manifest_debug_set_rerun(NULL, NULL);
	tu_rmrf(dir);
}

static struct gfs_manifest *open_m(unsigned flags)
{
	struct gfs_manifest *m;
	struct gfs_diag d = { { 0 } };
	int rc = gfs_manifest_open(dir, flags, &m, &d);
	ck_assert_msg(rc == 0, "open: %s: %s", gfs_strerror(rc), d.msg);
	return m;
}

/* A store at version 1 with node:A = 1, node:B = 1. */
static struct gfs_manifest *new_store(void)
{
	struct gfs_manifest *m = open_m(GFS_MANIFEST_CREATE);
	struct gfs_pin pins[2] = { { "node:A", 1 }, { "node:B", 1 } };
	struct gfs_gv first = { .op = "init", .op_id = OP1, .actor = "test",
				.schema_id = "s1", .pins = pins, .n_pins = 2 };
	ck_assert_int_eq(gfs_manifest_init(m, &first), 0);
	return m;
}

/* A load sidecar writing node:A (post 0: the manifest reserves it). */
static void mk_sidecar(struct gfs_sidecar *sc, struct gfs_sc_table *t,
		       const char *op)
{
	memset(sc, 0, sizeof *sc);
	memset(t, 0, sizeof *t);
	sc->format = GFS_SIDECAR_FORMAT;
	snprintf(sc->op_id, sizeof sc->op_id, "%s", op);
	snprintf(sc->kind, sizeof sc->kind, "load");
	snprintf(sc->actor, sizeof sc->actor, "tester");
	sc->start_ns = 1;
	snprintf(t->table, sizeof t->table, "node:A");
	t->written = true;
	t->expected = 1;
	sc->tables = t;
	sc->n_tables = 1;
}

static int reruns;

static void count_hook(void *arg)
{
	(void)arg;
	reruns++;
}

struct rival {
	struct gfs_manifest *m;
	uint32_t post;
	int rc;
};

/* Between the thrown-away run and the next: another writer arms its own
 * sidecar on the same table (once: the hook is cleared first, so the
 * rival's own write is not rerun). */
static void rival_hook(void *arg)
{
	struct rival *r = arg;
	struct gfs_sidecar sc;
	struct gfs_sc_table t;

	gfs_manifest_debug_set_rerun(NULL, NULL);
	mk_sidecar(&sc, &t, OP3);
	r->rc = gfs_manifest_sidecar_put(r->m, &sc);
	r->post = t.post;
}

/* Invariant 271: a rerun of the arm starts from the caller's numbers.  A
 * rerun that started from the thrown-away run's number would note it
 * instead of reserving a fresh one, and two sidecars would own node:A 2. */
START_TEST(test_rerun_arm_reserves_again)
{
	struct gfs_manifest *m = new_store();
	struct rival r = { .m = m };
	struct gfs_sidecar sc, *got = NULL;
	struct gfs_sc_table t;
	struct gfs_tver_rec rec;
	uint32_t next = 0;

	mk_sidecar(&sc, &t, OP2);
	gfs_manifest_debug_set_rerun(rival_hook, &r);
	ck_assert_int_eq(gfs_manifest_sidecar_put(m, &sc), 0);
	ck_assert_int_eq(r.rc, 0);
	ck_assert_uint_eq(r.post, 2); /* the rival went first */
	ck_assert_uint_eq(t.post, 3);
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP2, &got), 0);
	ck_assert_uint_eq(got->tables[0].post, 3);
	gfs_sidecar_free(got);
	ck_assert_int_eq(gfs_manifest_tver_get(m, "node:A", 2, &rec), 0);
	ck_assert_str_eq(rec.op_id, OP3);
	ck_assert_int_eq(gfs_manifest_tver_get(m, "node:A", 3, &rec), 0);
	ck_assert_str_eq(rec.op_id, OP2);
	ck_assert_int_eq(rec.state, GFS_TVER_RESERVED);
	ck_assert_int_eq(gfs_manifest_next(m, "node:A", &next), 0);
	ck_assert_uint_eq(next, 4);
	gfs_manifest_close(m);
}
END_TEST

/* The caller's sidecar is written only by a run that committed: a failed
 * arm (here: the op id exists) leaves its numbers as they were. */
START_TEST(test_failed_arm_leaves_caller)
{
	struct gfs_manifest *m = new_store();
	struct gfs_sidecar sc;
	struct gfs_sc_table t;

	mk_sidecar(&sc, &t, OP2);
	ck_assert_int_eq(gfs_manifest_sidecar_put(m, &sc), 0);
	ck_assert_uint_eq(t.post, 2);
	t.post = 0;
	ck_assert_int_eq(gfs_manifest_sidecar_put(m, &sc), -EEXIST);
	ck_assert_uint_eq(t.post, 0);
	gfs_manifest_close(m);
}
END_TEST

static int count_audit(const struct gfs_audit *a, void *arg)
{
	(void)a;
	(*(size_t *)arg)++;
	return 0;
}

/* Invariant 270: every write of the manifest gives the same result when
 * its first run is thrown away (nothing in between): one version per
 * publish, one audit record, one reservation per arm, one branch. */
START_TEST(test_rerun_every_write)
{
	struct gfs_manifest *m;
	struct gfs_diag d = { { 0 } };
	struct gfs_sidecar sc;
	struct gfs_sc_table t;
	struct gfs_audit a = { .op_id = OP2, .decision = "roll-forward" };
	struct gfs_publish p = { .op = "load", .op_id = OP2, .actor = "t",
				 .n_tables = 1, .sidecar = OP2, .audit = &a };
	struct gfs_branch b, *list = NULL;
	struct gfs_gv *head = NULL;
	uint64_t ver = 0;
	uint32_t next = 0, newp = 0;
	size_t n = 0;
	char *val = NULL;

	reruns = 0;
	gfs_manifest_debug_set_rerun(count_hook, NULL);
	m = new_store();                                        /* 1: init */
	ck_assert_int_eq(reruns, 1);
	mk_sidecar(&sc, &t, OP2);
	ck_assert_int_eq(gfs_manifest_sidecar_put(m, &sc), 0);  /* 2 */
	ck_assert_uint_eq(t.post, 2);
	ck_assert_int_eq(gfs_manifest_sidecar_repost(m, OP2, "node:A", 2, &newp), 0); /* 3 */
	ck_assert_uint_eq(newp, 3);
	t.post = newp;
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(m, OP2), 0); /* 4 */
	p.tables = &t;
	ck_assert_msg(gfs_manifest_publish(m, &p, &ver, &d) == 0, "%s", d.msg); /* 5 */
	ck_assert_uint_eq(ver, 2);
	ck_assert_msg(gfs_manifest_branch_create(m, "dev", NULL, 0, "t", &b, &d) == 0,
		      "%s", d.msg);                             /* 6 */
	ck_assert_uint_eq(b.head, 2);
	ck_assert_int_eq(gfs_manifest_meta_put(m, "k", "v"), 0); /* 7 */
	ck_assert_int_eq(gfs_manifest_branch_delete(m, "dev", &d), 0); /* 8 */
	ck_assert_int_eq(reruns, 8);
	gfs_manifest_debug_set_rerun(NULL, NULL);

	ck_assert_uint_eq(gfs_manifest_head_version(m), 2);
	ck_assert_int_eq(gfs_manifest_head(m, &head), 0);
	ck_assert_uint_eq(gfs_gv_pin(head, "node:A"), 3);
	ck_assert_uint_eq(head->parents[0], 1);
	gfs_gv_free(head);
	ck_assert_int_eq(gfs_manifest_audit_count(m, OP2, &n), 0);
	ck_assert_uint_eq(n, 1);
	n = 0;
	ck_assert_int_eq(gfs_manifest_audit_list(m, count_audit, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(gfs_manifest_next(m, "node:A", &next), 0);
	ck_assert_uint_eq(next, 4); /* 2 (voided by the repost) and 3 */
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP2, &(struct gfs_sidecar *){ NULL }), -ENOENT);
	ck_assert_uint_eq(gfs_manifest_branches_gen(m), 2);
	ck_assert_int_eq(gfs_manifest_branch_list(m, &list, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(list[0].name, "main");
	free(list);
	ck_assert_int_eq(gfs_manifest_meta_get(m, "k", &val), 0);
	ck_assert_str_eq(val, "v");
	free(val);
	gfs_manifest_close(m);
}
END_TEST

/* Drops the branches database from the store's LMDB environment, as a
 * store made before branches has none (the upgrade's case). */
static void drop_branches(void)
{
	char mdir[PATH_MAX + 16];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;

	snprintf(mdir, sizeof mdir, "%s/manifest", dir);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
	ck_assert_int_eq(mdb_env_open(env, mdir, MDB_NOTLS, 0644), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "branches", 0, &dbi), 0);
	ck_assert_int_eq(mdb_drop(txn, dbi, 1), 0);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Invariant 272: a database created by a run that was thrown away is not
 * the store's; the next run creates it again in its own transaction.  A
 * backend that kept the thrown-away run's handle would fail the upgrade
 * (LMDB: EINVAL on the dead handle). */
START_TEST(test_rerun_db_create)
{
	struct gfs_manifest *m = new_store();
	struct gfs_branch b;
	struct gfs_diag d = { { 0 } };
	bool created = false;

	gfs_manifest_close(m);
	drop_branches();
	m = open_m(GFS_MANIFEST_UPGRADE);
	ck_assert_int_eq(gfs_manifest_branch_create(m, "dev", NULL, 0, "t", NULL, &d),
			 GFS_EFORMAT); /* no branches database yet */
	reruns = 0;
	gfs_manifest_debug_set_rerun(count_hook, NULL);
	ck_assert_int_eq(gfs_manifest_branches_upgrade(m, &created), 0);
	ck_assert_int_eq(reruns, 1);
	ck_assert(created);
	gfs_manifest_debug_set_rerun(NULL, NULL);
	ck_assert_int_eq(gfs_manifest_branch_get(m, "main", &b), 0);
	ck_assert_str_ne(b.id, "");
	ck_assert_uint_eq(b.head, 1);
	gfs_manifest_close(m);
	m = open_m(0);
	ck_assert_int_eq(gfs_manifest_branch_get(m, "main", &b), 0);
	ck_assert_str_ne(b.id, "");
	gfs_manifest_close(m);
}
END_TEST

/* GRAPHFS_KV_RERUN=1 (failpoint builds; tests/kv_rerun.sh runs the
 * manifest and recovery tests so) throws away the first run of every
 * write; without it, no write is run twice. */
START_TEST(test_rerun_env)
{
	const char *v = getenv("GRAPHFS_KV_RERUN");
	bool on = v && strcmp(v, "1") == 0;
	unsigned long before = gfs_manifest_debug_reruns();
	struct gfs_manifest *m = new_store();

	ck_assert_int_eq(gfs_manifest_meta_put(m, "k", "v"), 0);
#ifdef GFS_FAILPOINTS_ENABLED
	ck_assert_uint_eq(gfs_manifest_debug_reruns() - before, on ? 2 : 0);
#else
	(void)on;
	ck_assert_uint_eq(gfs_manifest_debug_reruns() - before, 0);
#endif
	gfs_manifest_close(m);
}
END_TEST

/* ---- the kv.h contract, on any backend ---------------------------------
 *
 * What store.c relies on, checked through the ops table alone, so a second
 * backend runs the same cases (pass its ops to contract_open). */

enum { C_PLAIN, C_DUP, C_OPT, C__COUNT };
static const char *const c_names[C__COUNT] = { "plain", "dup", "opt" };
static const unsigned c_flags[C__COUNT] = {
	[C_DUP] = GFS_KV_DB_DUPSORT, [C_OPT] = GFS_KV_DB_OPTIONAL,
};

/* The etcd cases' manifest URL: GRAPHFS_TEST_ETCD_ENDPOINTS (set by
 * tests/etcd/backend.sh, which starts a cluster) and a prefix of this
 * process; NULL (LMDB) without it. */
static char c_url[512];

static struct gfs_kv *contract_open(const struct gfs_kv_ops *ops, bool create)
{
	struct gfs_kv_open_args a = {
		.store_dir = dir, .url = ops == &gfs_kv_etcd ? c_url : NULL,
		.create = create, .db_names = c_names,
		.db_flags = c_flags, .n_dbs = C__COUNT, .user_size = sizeof(int),
	};
	struct gfs_kv *kv = NULL;
	struct gfs_diag d = { { 0 } };
	int rc = ops->open(&a, &kv, &d);

	ck_assert_msg(rc == 0, "open: %s: %s", gfs_strerror(rc), d.msg);
	return kv;
}

static struct gfs_kv_val sv(const char *s)
{
	return (struct gfs_kv_val){ strlen(s), (void *)s };
}

static bool val_is(const struct gfs_kv_val *v, const char *s)
{
	return v->size == strlen(s) && memcmp(v->data, s, v->size) == 0;
}

static int c_fill(struct gfs_kv_txn *txn, void *ctx)
{
	const char *keys[] = { "b", "a", "ab", "c" };
	int rc = 0;

	(void)ctx;
	for (size_t i = 0; !rc && i < 4; i++) {
		struct gfs_kv_val k = sv(keys[i]), v = sv(keys[i]);
		rc = gfs_kv_put(txn, C_PLAIN, &k, &v, GFS_KV_NOOVERWRITE);
	}
	for (size_t i = 0; !rc && i < 3; i++) {
		struct gfs_kv_val k = sv("op"), v = sv((const char *[]){ "2", "1", "3" }[i]);
		rc = gfs_kv_put(txn, C_DUP, &k, &v, 0);
	}
	if (!rc) {
		struct gfs_kv_val k = sv("oq"), v = sv("9");
		rc = gfs_kv_put(txn, C_DUP, &k, &v, 0);
	}
	return rc;
}

static int c_dup_key(struct gfs_kv_txn *txn, void *ctx)
{
	struct gfs_kv_val k = sv("a"), v = sv("x");
	int rc = gfs_kv_put(txn, C_PLAIN, &k, &v, GFS_KV_NOOVERWRITE);

	(void)ctx;
	ck_assert_int_eq(rc, GFS_KV_KEYEXIST);
	return rc;
}

/* Reads every ordering case store.c uses; ctx: a string of what it saw. */
static int c_read(struct gfs_kv_txn *txn, void *ctx)
{
	char *out = ctx;
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k = sv("zz"), v;
	int rc;

	ck_assert_int_eq(gfs_kv_get(txn, C_PLAIN, &k, &v), GFS_KV_NOTFOUND);
	k = sv("ab");
	ck_assert_int_eq(gfs_kv_get(txn, C_PLAIN, &k, &v), 0);
	ck_assert(val_is(&v, "ab"));
	ck_assert_int_eq(gfs_kv_cursor_open(txn, C_PLAIN, &c), 0);
	for (rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_FIRST); !rc;
	     rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT)) {
		strncat(out, k.data, k.size);
		strcat(out, ",");
	}
	ck_assert_int_eq(rc, GFS_KV_NOTFOUND);
	k = sv("aa"); /* seek >=: "ab" */
	ck_assert_int_eq(gfs_kv_cursor_get(c, &k, &v, GFS_KV_SET_RANGE), 0);
	ck_assert(val_is(&k, "ab"));
	k = sv("d");
	ck_assert_int_eq(gfs_kv_cursor_get(c, &k, &v, GFS_KV_SET_RANGE), GFS_KV_NOTFOUND);
	ck_assert_int_eq(gfs_kv_cursor_get(c, &k, &v, GFS_KV_LAST), 0);
	ck_assert(val_is(&k, "c"));
	gfs_kv_cursor_close(c);
	ck_assert_int_eq(gfs_kv_cursor_open(txn, C_DUP, &c), 0);
	k = sv("op");
	strcat(out, "|");
	for (rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_SET); !rc;
	     rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT_DUP)) {
		strncat(out, v.data, v.size);
		strcat(out, ",");
	}
	ck_assert_int_eq(rc, GFS_KV_NOTFOUND);
	gfs_kv_cursor_close(c);
	ck_assert(!gfs_kv_txn_has_db(txn, C_OPT));
	return 0;
}

static int c_del_drop(struct gfs_kv_txn *txn, void *ctx)
{
	struct gfs_kv_val k = sv("op"), v;
	int rc = gfs_kv_del(txn, C_DUP, &k);

	(void)ctx;
	if (!rc)
		rc = gfs_kv_get(txn, C_DUP, &k, &v) == GFS_KV_NOTFOUND ? 0 : -EIO;
	k = sv("nope");
	if (!rc)
		rc = gfs_kv_del(txn, C_PLAIN, &k) == GFS_KV_NOTFOUND ? 0 : -EIO;
	return rc ? rc : gfs_kv_drop(txn, C_PLAIN);
}

static int c_count(struct gfs_kv_txn *txn, void *ctx)
{
	unsigned *n = ctx;
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	int rc;

	for (unsigned db = C_PLAIN; db <= C_DUP; db++) {
		n[db] = 0;
		ck_assert_int_eq(gfs_kv_cursor_open(txn, db, &c), 0);
		for (rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_FIRST); !rc;
		     rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT))
			n[db]++;
		gfs_kv_cursor_close(c);
		ck_assert_int_eq(rc, GFS_KV_NOTFOUND);
	}
	return 0;
}

static int c_create_fail(struct gfs_kv_txn *txn, void *ctx)
{
	(void)ctx;
	ck_assert_int_eq(gfs_kv_db_create(txn, C_OPT), 0);
	ck_assert(gfs_kv_txn_has_db(txn, C_OPT));
	return -ECANCELED; /* aborted: the db must not exist afterwards */
}

static int c_create(struct gfs_kv_txn *txn, void *ctx)
{
	struct gfs_kv_val k = sv("k"), v = sv("v");

	(void)ctx;
	ck_assert(!gfs_kv_txn_has_db(txn, C_OPT));
	int rc = gfs_kv_db_create(txn, C_OPT);
	return rc ? rc : gfs_kv_put(txn, C_OPT, &k, &v, 0);
}

/* kv.h's contract on the LMDB backend: memcmp order, seek >=, LAST,
 * DUPSORT values in order under SET/NEXT_DUP, KEYEXIST inside the txn and
 * -EEXIST when the write returns, NOTFOUND inside and -ENOENT outside, del
 * of every value, drop, optional databases created only by a committed
 * db_create, and the user area shared by two handles of one store. */
static void contract_run(const struct gfs_kv_ops *ops)
{
	struct gfs_kv *kv = contract_open(ops, true), *kv2;
	char seen[128] = "";
	unsigned n[2];

	ck_assert(gfs_kv_has_db(kv, C_PLAIN) && gfs_kv_has_db(kv, C_DUP));
	ck_assert(!gfs_kv_has_db(kv, C_OPT));
	ck_assert_int_eq(gfs_kv_write(kv, c_fill, NULL, NULL), 0);
	ck_assert_int_eq(gfs_kv_write(kv, c_dup_key, NULL, NULL), -EEXIST);
	ck_assert_int_eq(gfs_kv_read(kv, c_read, seen), 0);
	ck_assert_str_eq(seen, "a,ab,b,c,|1,2,3,");
	ck_assert_int_eq(gfs_kv_write(kv, c_create_fail, NULL, NULL), -ECANCELED);
	ck_assert(!gfs_kv_has_db(kv, C_OPT));
	ck_assert_int_eq(gfs_kv_write(kv, c_create, NULL, NULL), 0);
	ck_assert(gfs_kv_has_db(kv, C_OPT));
	ck_assert_int_eq(gfs_kv_write(kv, c_del_drop, NULL, NULL), 0);
	ck_assert_int_eq(gfs_kv_read(kv, c_count, n), 0);
	ck_assert_uint_eq(n[C_PLAIN], 0);
	ck_assert_uint_eq(n[C_DUP], 1); /* "oq" */
	*(int *)gfs_kv_user(kv) = 42;
	kv2 = contract_open(ops, false);
	ck_assert_int_eq(*(int *)gfs_kv_user(kv2), 42);
	ck_assert(gfs_kv_has_db(kv2, C_OPT));
	gfs_kv_close(kv2);
	gfs_kv_close(kv);
}

START_TEST(test_kv_contract)
{
	const struct gfs_kv_ops *ops = gfs_kv_backend(dir);

	ck_assert_str_eq(ops->name, "lmdb");
	contract_run(ops);
}
END_TEST

static int c_fsync(struct gfs_kv_txn *txn, void *ctx)
{
	(void)txn;
	(void)ctx;
	return gfs_fsync_dir(dir);
}

/* Invariant 273: an fsync inside a write callback aborts (kv.h's rule is
 * asserted, not only reviewed). */
START_TEST(test_no_fsync_in_write_cb)
{
	struct gfs_kv *kv = contract_open(gfs_kv_backend(dir), true);

	ck_assert_int_eq(gfs_fsync_dir(dir), 0); /* outside: fine */
	gfs_kv_write(kv, c_fsync, NULL, NULL);
	gfs_kv_close(kv); /* not reached */
}
END_TEST

/* ---- the etcd backend (tests/etcd/backend.sh gives it a cluster) ------ */

static void etcd_setup(void)
{
	static unsigned n;
	const char *eps = getenv("GRAPHFS_TEST_ETCD_ENDPOINTS");

	setup();
	snprintf(c_url, sizeof c_url, "etcd://%s/check_kv/p%d/t%u", eps,
		 (int)getpid(), n++);
}

/* Invariants 280-282: the same contract on etcd (one revision per read,
 * read-your-writes, del of every DUPSORT value, drop, db markers only at
 * commit). */
START_TEST(test_etcd_contract)
{
	contract_run(&gfs_kv_etcd);
}
END_TEST

struct conflict {
	struct gfs_kv *kv;
	unsigned runs;
};

static int c_set5(struct gfs_kv_txn *txn, void *ctx)
{
	struct gfs_kv_val k = sv("n"), v = sv("5");

	(void)ctx;
	return gfs_kv_put(txn, C_PLAIN, &k, &v, 0);
}

/* n += 1; on its first run another writer sets n = 5 after our read */
static int c_incr(struct gfs_kv_txn *txn, void *ctx)
{
	struct conflict *c = ctx;
	struct gfs_kv_val k = sv("n"), v;
	char buf[16];
	unsigned long n = 0;
	int rc = gfs_kv_get(txn, C_PLAIN, &k, &v);

	if (rc == 0) {
		snprintf(buf, sizeof buf, "%.*s", (int)v.size, (char *)v.data);
		n = strtoul(buf, NULL, 10);
	} else if (rc != GFS_KV_NOTFOUND) {
		return rc;
	}
	if (c->runs++ == 0)
		ck_assert_int_eq(gfs_kv_write(c->kv, c_set5, NULL, NULL), 0);
	snprintf(buf, sizeof buf, "%lu", n + 1);
	v = sv(buf);
	return gfs_kv_put(txn, C_PLAIN, &k, &v, 0);
}

static int c_get_n(struct gfs_kv_txn *txn, void *ctx)
{
	struct gfs_kv_val k = sv("n"), v;
	int rc = gfs_kv_get(txn, C_PLAIN, &k, &v);

	if (!rc)
		snprintf(ctx, 16, "%.*s", (int)v.size, (char *)v.data);
	return rc;
}

/* Invariant 282: a write whose read was overtaken runs again on the new
 * revision; no update is lost (before the gen compares: n = 1, the 5 lost). */
START_TEST(test_etcd_conflict_reruns)
{
	struct conflict c = { contract_open(&gfs_kv_etcd, true), 0 };
	char got[16] = "";

	ck_assert_int_eq(gfs_kv_write(c.kv, c_incr, &c, NULL), 0);
	ck_assert_uint_eq(c.runs, 2);
	ck_assert_int_eq(gfs_kv_read(c.kv, c_get_n, got), 0);
	ck_assert_str_eq(got, "6");
	gfs_kv_close(c.kv);
}
END_TEST

static char fence_key[600];

static int fence_fn(void *arg, struct gfs_kv_etcd_cmps *out)
{
	(void)arg;
	return gfs_kv_etcd_cmps_add(out, &(struct gfs_etcd_cmp){
		.target = GFS_ETCD_VALUE, .result = GFS_ETCD_EQ,
		.key = fence_key, .key_len = strlen(fence_key),
		.value = "mine", .value_len = 4 });
}

static char busy_key[600], busy_end[600];

/* a range compare, as lease_etcd.c's: nobody under PREFIX/busy/ */
static int fence_range_fn(void *arg, struct gfs_kv_etcd_cmps *out)
{
	(void)arg;
	return gfs_kv_etcd_cmps_add(out, &(struct gfs_etcd_cmp){
		.target = GFS_ETCD_VERSION, .result = GFS_ETCD_EQ,
		.key = busy_key, .key_len = strlen(busy_key), .num = 0,
		.end = busy_end, .end_len = strlen(busy_end) });
}

/* Invariant 283: a failed fence compare ends the write with "lease lost"
 * (-ENOLCK), not a retry, and writes nothing. */
START_TEST(test_etcd_fence)
{
	struct gfs_kv *kv = contract_open(&gfs_kv_etcd, true);
	struct gfs_etcd *e = gfs_kv_etcd_client(kv);
	struct gfs_diag d = { { 0 } };
	char got[16] = "";

	snprintf(fence_key, sizeof fence_key, "%s/fence", gfs_etcd_prefix(e));
	ck_assert_int_eq(gfs_etcd_put(e, fence_key, strlen(fence_key), "mine", 4,
				      0, NULL, &d), 0);
	gfs_kv_etcd_set_fence(kv, fence_fn, NULL);
	ck_assert_int_eq(gfs_kv_write(kv, c_set5, NULL, &d), 0);
	ck_assert_int_eq(gfs_etcd_put(e, fence_key, strlen(fence_key), "other", 5,
				      0, NULL, &d), 0);
	struct conflict c = { kv, 1 }; /* no rival: a plain n += 1 */
	ck_assert_int_eq(gfs_kv_write(kv, c_incr, &c, &d), -ENOLCK);
	ck_assert_msg(strstr(d.msg, "lease lost") && strstr(d.msg, "/fence"), "%s", d.msg);
	ck_assert_uint_eq(c.runs, 2); /* one run, no retry */
	ck_assert_int_eq(gfs_kv_read(kv, c_get_n, got), 0);
	ck_assert_str_eq(got, "5");
	/* the same with a compare over a range of keys */
	snprintf(busy_key, sizeof busy_key, "%s/busy/", gfs_etcd_prefix(e));
	snprintf(busy_end, sizeof busy_end, "%s/busy0", gfs_etcd_prefix(e));
	gfs_kv_etcd_set_fence(kv, fence_range_fn, NULL);
	ck_assert_int_eq(gfs_kv_write(kv, c_set5, NULL, &d), 0);
	char bk[700];
	snprintf(bk, sizeof bk, "%sother", busy_key);
	ck_assert_int_eq(gfs_etcd_put(e, bk, strlen(bk), "1", 1, 0, NULL, &d), 0);
	memset(&d, 0, sizeof d);
	c.runs = 1;
	ck_assert_int_eq(gfs_kv_write(kv, c_incr, &c, &d), -ENOLCK);
	ck_assert_msg(strstr(d.msg, "lease lost") && strstr(d.msg, "/busy/"), "%s", d.msg);
	ck_assert_uint_eq(c.runs, 2);
	gfs_kv_etcd_set_fence(kv, NULL, NULL);
	gfs_kv_close(kv);
}
END_TEST

/* A write txn sees its own puts, deletes and drop through get and every
 * cursor move, merged with the snapshot. */
static int c_ryw(struct gfs_kv_txn *txn, void *ctx)
{
	char *out = ctx;
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k = sv("a"), v = sv("A");
	int rc;

	ck_assert_int_eq(gfs_kv_del(txn, C_PLAIN, &k), 0);
	k = sv("bb");
	ck_assert_int_eq(gfs_kv_put(txn, C_PLAIN, &k, &v, GFS_KV_NOOVERWRITE), 0);
	ck_assert_int_eq(gfs_kv_put(txn, C_PLAIN, &k, &v, GFS_KV_NOOVERWRITE),
			 GFS_KV_KEYEXIST);
	k = sv("zz");
	ck_assert_int_eq(gfs_kv_put(txn, C_PLAIN, &k, &v, GFS_KV_APPEND), 0);
	k = sv("a");
	ck_assert_int_eq(gfs_kv_get(txn, C_PLAIN, &k, &v), GFS_KV_NOTFOUND);
	ck_assert_int_eq(gfs_kv_cursor_open(txn, C_PLAIN, &c), 0);
	for (rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_FIRST); !rc;
	     rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT)) {
		strncat(out, k.data, k.size);
		strcat(out, ",");
	}
	ck_assert_int_eq(rc, GFS_KV_NOTFOUND);
	ck_assert_int_eq(gfs_kv_cursor_get(c, &k, &v, GFS_KV_LAST), 0);
	ck_assert(val_is(&k, "zz"));
	gfs_kv_cursor_close(c);
	k = sv("op");
	v = sv("0");
	ck_assert_int_eq(gfs_kv_put(txn, C_DUP, &k, &v, 0), 0);
	ck_assert_int_eq(gfs_kv_get(txn, C_DUP, &k, &v), 0);
	ck_assert(val_is(&v, "0"));
	ck_assert_int_eq(gfs_kv_drop(txn, C_DUP), 0);
	k = sv("oq");
	ck_assert_int_eq(gfs_kv_get(txn, C_DUP, &k, &v), GFS_KV_NOTFOUND);
	k = sv("new");
	v = sv("1");
	return gfs_kv_put(txn, C_DUP, &k, &v, 0);
}

static int c_dump(struct gfs_kv_txn *txn, void *ctx)
{
	char *out = ctx;
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	int rc;

	for (unsigned db = C_PLAIN; db <= C_DUP; db++) {
		ck_assert_int_eq(gfs_kv_cursor_open(txn, db, &c), 0);
		for (rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_FIRST); !rc;
		     rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT)) {
			strncat(out, k.data, k.size);
			strcat(out, "=");
			strncat(out, v.data, v.size);
			strcat(out, ",");
		}
		gfs_kv_cursor_close(c);
		strcat(out, "|");
	}
	return 0;
}

START_TEST(test_etcd_read_your_writes)
{
	struct gfs_kv *kv = contract_open(&gfs_kv_etcd, true);
	char seen[256] = "", after[256] = "";

	ck_assert_int_eq(gfs_kv_write(kv, c_fill, NULL, NULL), 0);
	ck_assert_int_eq(gfs_kv_write(kv, c_ryw, seen, NULL), 0);
	ck_assert_str_eq(seen, "ab,b,bb,c,zz,");
	ck_assert_int_eq(gfs_kv_read(kv, c_dump, after), 0);
	ck_assert_str_eq(after, "ab=ab,b=b,bb=A,c=c,zz=A,|new=1,|");
	gfs_kv_close(kv);
}
END_TEST

/* Keys of many pages (cursor paging at one revision), binary keys with
 * NUL bytes in a DUPSORT db, and a write too large for the cluster's
 * --max-txn-ops: a clear error naming the limit. */
static int c_many(struct gfs_kv_txn *txn, void *ctx)
{
	unsigned n = *(unsigned *)ctx;
	int rc = 0;

	for (unsigned i = 0; !rc && i < n; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%05u", i);
		struct gfs_kv_val k = sv(key), v = sv(key);
		rc = gfs_kv_put(txn, C_PLAIN, &k, &v, 0);
	}
	return rc;
}

static int c_bin(struct gfs_kv_txn *txn, void *ctx)
{
	static const char k1[] = { 'x', 0, 'y' }, k2[] = { 'x' };
	struct gfs_kv_val a = { sizeof k1, (void *)k1 }, b = { sizeof k2, (void *)k2 };
	struct gfs_kv_val v1 = sv("1"), v2 = sv("2");
	int rc = gfs_kv_put(txn, C_DUP, &a, &v1, 0);

	(void)ctx;
	if (!rc)
		rc = gfs_kv_put(txn, C_DUP, &b, &v2, 0);
	if (!rc)
		rc = gfs_kv_put(txn, C_DUP, &b, &v1, 0);
	return rc;
}

static int c_bin_read(struct gfs_kv_txn *txn, void *ctx)
{
	char *out = ctx;
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	int rc;

	ck_assert_int_eq(gfs_kv_cursor_open(txn, C_DUP, &c), 0);
	for (rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_FIRST); !rc;
	     rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT)) {
		size_t n = strlen(out);
		out[n++] = (char)('0' + k.size);
		memcpy(out + n, v.data, v.size);
		out[n + v.size] = 0;
	}
	gfs_kv_cursor_close(c);
	return 0;
}

/* SET "x", NEXT_DUP, NEXT_DUP (no more: the cursor stays), NEXT: "x\0y" */
static int c_dup_walk(struct gfs_kv_txn *txn, void *ctx)
{
	static const char kx[] = { 'x' };
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k = { 1, (void *)kx }, v;

	(void)ctx;
	ck_assert_int_eq(gfs_kv_cursor_open(txn, C_DUP, &c), 0);
	ck_assert_int_eq(gfs_kv_cursor_get(c, &k, &v, GFS_KV_SET), 0);
	ck_assert(val_is(&v, "1"));
	ck_assert_int_eq(gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT_DUP), 0);
	ck_assert(val_is(&v, "2"));
	ck_assert_int_eq(gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT_DUP), GFS_KV_NOTFOUND);
	ck_assert_int_eq(gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT), 0);
	ck_assert(k.size == 3 && !memcmp(k.data, "x\0y", 3) && val_is(&v, "1"));
	ck_assert_int_eq(gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT_DUP), GFS_KV_NOTFOUND);
	ck_assert_int_eq(gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT), GFS_KV_NOTFOUND);
	gfs_kv_cursor_close(c);
	return 0;
}

static int c_count_plain(struct gfs_kv_txn *txn, void *ctx)
{
	unsigned n[2];
	int rc = c_count(txn, n);

	*(unsigned *)ctx = n[C_PLAIN];
	return rc;
}

struct scan_rival {
	struct gfs_kv *kv;
	unsigned seen;
	bool put;
};

static int c_put_k00000x(struct gfs_kv_txn *txn, void *ctx)
{
	struct gfs_kv_val k = sv("k00000x"), v = sv("x");

	(void)ctx;
	return gfs_kv_put(txn, C_PLAIN, &k, &v, 0);
}

/* A scan of 3 pages; after its first key another writer commits a key
 * that sorts right after it: the scan, at its first revision, never sees
 * it (invariant 280). */
static int c_scan_rival(struct gfs_kv_txn *txn, void *ctx)
{
	struct scan_rival *r = ctx;
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	int rc;

	ck_assert_int_eq(gfs_kv_cursor_open(txn, C_PLAIN, &c), 0);
	for (rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_FIRST); !rc;
	     rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT)) {
		if (!r->put) {
			r->put = true;
			ck_assert_int_eq(gfs_kv_write(r->kv, c_put_k00000x, NULL, NULL), 0);
		}
		ck_assert(!val_is(&k, "k00000x"));
		r->seen++;
	}
	gfs_kv_cursor_close(c);
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

START_TEST(test_etcd_pages_binary_limit)
{
	struct gfs_kv *kv = contract_open(&gfs_kv_etcd, true);
	struct gfs_diag d = { { 0 } };
	unsigned n = 700, seen = 0;
	char out[64] = "";

	ck_assert_int_eq(gfs_kv_write(kv, c_many, &n, &d), 0);
	ck_assert_int_eq(gfs_kv_read(kv, c_count_plain, &seen), 0);
	ck_assert_uint_eq(seen, 700); /* pages of 256 */
	struct scan_rival r = { kv, 0, false };
	ck_assert_int_eq(gfs_kv_read(kv, c_scan_rival, &r), 0);
	ck_assert_uint_eq(r.seen, 700);
	ck_assert_int_eq(gfs_kv_read(kv, c_count_plain, &seen), 0);
	ck_assert_uint_eq(seen, 701); /* the rival's key, seen by a new read */
	ck_assert_int_eq(gfs_kv_write(kv, c_bin, NULL, &d), 0);
	ck_assert_int_eq(gfs_kv_read(kv, c_bin_read, out), 0);
	/* ("x", 1) < ("x", 2) < ("x\0y", 1): the key first, then the value */
	ck_assert_str_eq(out, "111231");
	ck_assert_int_eq(gfs_kv_read(kv, c_dup_walk, NULL), 0);
	n = 1100;
	ck_assert_int_eq(gfs_kv_write(kv, c_many, &n, &d), -E2BIG); /* too big for the cluster: gc.c plans smaller */
	ck_assert_msg(strstr(d.msg, "--max-txn-ops"), "%s", d.msg);
	gfs_kv_close(kv);
}
END_TEST

/* Opening a URL where nothing answers names every endpoint. */
/* graphctl migrate's copy resumes after the last (key, value) pair of each
 * batch, so a DUPSORT key with several values split across batches comes
 * out whole and in order, LMDB -> etcd -> LMDB (invariant 340). */
struct dups {
	char got[8][40];
	unsigned n;
};

static int dups_txn(struct gfs_kv_txn *txn, void *arg)
{
	struct dups *x = arg;
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	unsigned db = 0;
	int rc;

	while (strcmp(gfs_manifest_raw_db_name(db), "audit_by_op"))
		db++;
	x->n = 0;
	if ((rc = gfs_kv_cursor_open(txn, db, &c)))
		return rc;
	for (rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_FIRST); !rc && x->n < 8;
	     rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT))
		/* the value's first 2 bytes: the seal follows */
		snprintf(x->got[x->n++], sizeof x->got[0], "%.*s=%.*s",
			 (int)k.size, (const char *)k.data,
			 (int)(v.size < 2 ? v.size : 2), (const char *)v.data);
	gfs_kv_cursor_close(c);
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

START_TEST(test_etcd_migrate_dupsort)
{
	static const char schema[] = "node P { k: String @key }\n";
	static const char *const want[] = {
		OP2 "=v1", OP2 "=v2", OP2 "=v3", OP2 "=v4", OP3 "=w1",
	};
	char store[PATH_MAX + 8];
	struct gfs_migrate_opts o = { .batch = 1 };
	struct gfs_migrate_result r;
	struct gfs_diag d = { { 0 } };
	struct gfs_manifest *m;
	struct dups x;
	int rc;

	snprintf(store, sizeof store, "%s/store", dir);
	ck_assert_int_eq(gfs_graph_init(store, schema, strlen(schema), "s.pg", "t", &d), 0);
	ck_assert_int_eq(gfs_manifest_open(store, 0, &m, &d), 0);
	for (unsigned i = 0; i < GFS_ARRAY_SIZE(want); i++)
		ck_assert_int_eq(gfs_manifest_debug_put_raw(m, "audit_by_op", want[i], 26,
							    want[i] + 27, 2), 0);
	gfs_manifest_close(m);

	for (int leg = 0; leg < 2; leg++) {
		o.batch = leg ? 2 : 1;
		rc = gfs_graph_migrate(store, leg ? "lmdb" : c_url, &o, &r, &d);
		ck_assert_msg(rc == 0, "migrate %d: %s: %s", leg, gfs_strerror(rc), d.msg);
		ck_assert_uint_eq(r.dbs[4].records, GFS_ARRAY_SIZE(want));
		ck_assert_str_eq(r.dbs[4].name, "audit_by_op");
		ck_assert_int_eq(gfs_manifest_open(store, GFS_MANIFEST_RDONLY, &m, &d), 0);
		ck_assert_int_eq(gfs_kv_read(gfs_manifest_raw_kv(m), dups_txn, &x), 0);
		gfs_manifest_close(m);
		ck_assert_uint_eq(x.n, GFS_ARRAY_SIZE(want));
		for (unsigned i = 0; i < x.n; i++)
			ck_assert_str_eq(x.got[i], want[i]);
	}
}
END_TEST

START_TEST(test_etcd_unreachable)
{
	struct gfs_kv_open_args a = {
		.store_dir = dir, .url = "etcd://127.0.0.1:1,127.0.0.1:2/x",
		.db_names = c_names, .db_flags = c_flags, .n_dbs = C__COUNT,
	};
	struct gfs_kv *kv = NULL;
	struct gfs_diag d = { { 0 } };
	int rc = gfs_kv_etcd.open(&a, &kv, &d);

	ck_assert_int_ne(rc, 0);
	ck_assert_msg(strstr(d.msg, "127.0.0.1:1") && strstr(d.msg, "127.0.0.1:2"),
		      "%s", d.msg);
}
END_TEST

static Suite *kv_suite(void)
{
	Suite *s = suite_create("kv");
	TCase *tc = tcase_create("rerun");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_rerun_arm_reserves_again);
	tcase_add_test(tc, test_failed_arm_leaves_caller);
	tcase_add_test(tc, test_rerun_every_write);
	tcase_add_test(tc, test_rerun_db_create);
	tcase_add_test(tc, test_rerun_env);
	tcase_add_test(tc, test_kv_contract);
#ifndef NDEBUG
	tcase_add_test_raise_signal(tc, test_no_fsync_in_write_cb, SIGABRT);
#endif
	tcase_add_test(tc, test_etcd_unreachable);
	suite_add_tcase(s, tc);
	/* the etcd cases need a cluster: tests/etcd/backend.sh starts one */
	if (getenv("GRAPHFS_TEST_ETCD_ENDPOINTS")) {
		tc = tcase_create("etcd");
		tcase_add_checked_fixture(tc, etcd_setup, teardown);
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, test_etcd_contract);
		tcase_add_test(tc, test_etcd_conflict_reruns);
		tcase_add_test(tc, test_etcd_fence);
		tcase_add_test(tc, test_etcd_read_your_writes);
		tcase_add_test(tc, test_etcd_pages_binary_limit);
		tcase_add_test(tc, test_etcd_migrate_dupsort);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	return tu_run(kv_suite());
}
