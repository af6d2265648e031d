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
#include "manifest.h"
#include "store_int.h"
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

static struct gfs_kv *contract_open(const struct gfs_kv_ops *ops, bool create)
{
	struct gfs_kv_open_args a = {
		.store_dir = dir, .create = create, .db_names = c_names,
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
START_TEST(test_kv_contract)
{
	const struct gfs_kv_ops *ops = gfs_kv_backend(dir);
	struct gfs_kv *kv = contract_open(ops, true), *kv2;
	char seen[128] = "";
	unsigned n[2];

	ck_assert_str_eq(ops->name, "lmdb");
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
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(kv_suite());
}
