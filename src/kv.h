/* kv.h - the ordered key/value store under the manifest (store.c).
 *
 * store.c keeps the records (one-line JSON, seals, classification, CAS);
 * a backend keeps bytes: named sub-databases of binary keys in memcmp
 * order, read transactions that are snapshots, and write transactions that
 * are callbacks.  kv_lmdb.c (the only file that includes <lmdb.h>) is the
 * one backend today; a second one (etcd, issue 13) implements the same
 * struct gfs_kv_ops.  docs/decisions.md "The kv interface under store.c"
 * says why this shape.
 *
 *     ops = gfs_kv_backend(store_dir)          which backend keeps the store
 *     ops->open(&args, &kv, d)                 args.setup runs once per process
 *     gfs_kv_read(kv, fn, ctx)                 fn(txn, ctx) on a snapshot
 *     gfs_kv_write(kv, fn, ctx, d)             fn(txn, ctx), committed if 0
 *         gfs_kv_get / _put / _del / _drop      inside fn
 *         gfs_kv_cursor_open / _get / _close    inside fn, closed before it returns
 *     gfs_kv_close(kv)
 *
 * THE WRITE-CALLBACK RULE (store.c invariant 4, docs/invariants.md 270-279).
 * A backend may run a write callback more than once before one run commits:
 * LMDB runs it again after MDB_MAP_FULL grew the map, an optimistic backend
 * (etcd) again after another writer changed what it read.  Only the run that
 * commits counts.  So a write callback
 *   - reads and writes the store only through its txn (no other transaction,
 *     no file, no clock used for a decision another run could disagree with);
 *   - hits no failpoint, takes no lock, calls no fsync, sleeps never;
 *   - rebuilds from its inputs every output it reports (ctx fields it sets):
 *     it never reads back what an earlier run wrote into ctx, and never
 *     changes its caller's inputs (copy back after gfs_kv_write returns 0);
 *   - changes no state outside the txn (a db it creates exists for later
 *     transactions only once the txn commits: the backend's business).
 * A diagnostic it sets (gfs_diag_set) comes with a non-zero return, so it
 * never commits and is never retried.
 *
 * Return codes of every call: 0, -errno, GFS_E* (util.h), GFS_KV_NOTFOUND,
 * GFS_KV_KEYEXIST, or a backend code in [GFS_KV_CODE_MIN, GFS_KV_CODE_MAX]
 * or positive (LMDB's own codes and errno values).  store.c compares only
 * with GFS_KV_NOTFOUND (and 0) and passes everything else through; the
 * backend translates what a callback returns when gfs_kv_read/_write
 * return (NOTFOUND -> -ENOENT, KEYEXIST -> -EEXIST, its own codes ->
 * -errno / GFS_E*), with the diagnostic naming its files or endpoints.
 */
#ifndef GFS_KV_H
#define GFS_KV_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* LMDB's numbers, so its codes pass through unchanged (kv_lmdb.c asserts
 * it); the range is every backend's, below -errno and above GFS_E*. */
#define GFS_KV_KEYEXIST (-30799)
#define GFS_KV_NOTFOUND (-30798)
#define GFS_KV_CODE_MIN (-30999)
#define GFS_KV_CODE_MAX (-30700)

/* Bytes.  Borrowed when a call fills it: valid until the next write in
 * the txn or its end; do not free. */
struct gfs_kv_val {
	size_t size;
	void *data;
};

enum gfs_kv_put_flags {
	GFS_KV_NOOVERWRITE = 1 << 0, /* GFS_KV_KEYEXIST if the key exists */
	GFS_KV_APPEND = 1 << 1,      /* key above every key: a hint, may check */
};

enum gfs_kv_db_flags {
	/* several values per key, kept sorted (audit_by_op); a backend
	 * without them keeps key||value as the key (etcd) */
	GFS_KV_DB_DUPSORT = 1 << 0,
	/* opened if it exists; never created by open, only by
	 * gfs_kv_db_create (the setup of a new store, an upgrade) */
	GFS_KV_DB_OPTIONAL = 1 << 1,
};

enum gfs_kv_cursor_op {
	GFS_KV_FIRST,
	GFS_KV_LAST,
	GFS_KV_NEXT,
	GFS_KV_SET,       /* exactly k (its first value in a DUPSORT db) */
	GFS_KV_SET_RANGE, /* the first key >= k */
	GFS_KV_NEXT_DUP,  /* the next value of the same key (DUPSORT) */
};

/* Each backend's handles start with their ops, so the inline wrappers
 * below dispatch without knowing the backend. */
struct gfs_kv {
	const struct gfs_kv_ops *ops;
};
struct gfs_kv_txn {
	const struct gfs_kv_ops *ops;
};
struct gfs_kv_cursor {
	const struct gfs_kv_ops *ops;
};

typedef int (*gfs_kv_fn)(struct gfs_kv_txn *txn, void *ctx);

struct gfs_kv_open_args {
	const char *store_dir;
	bool create;            /* make the store's manifest if absent */
	bool rdonly;
	const char *const *db_names; /* sub-databases, numbered by index */
	const unsigned *db_flags;    /* enum gfs_kv_db_flags per db */
	unsigned n_dbs;
	/* State shared by every handle of one store in this process: user_size
	 * zeroed bytes (gfs_kv_user), filled by setup, which runs once, in the
	 * first open's first transaction (a write one unless rdonly), before
	 * it commits; its return (0 or an error) is the open's. */
	size_t user_size;
	int (*setup)(struct gfs_kv_txn *txn, void *user, void *arg,
		     struct gfs_diag *d);
	void *setup_arg;
};

struct gfs_kv_ops {
	const char *name;
	/* A handle of the store (a new one; gfs_kv_close frees it).  Opening
	 * one store twice in a process shares one backend state (refcounted);
	 * a read-write open while it is open read-only is -EBUSY. */
	int (*open)(const struct gfs_kv_open_args *a, struct gfs_kv **out,
		    struct gfs_diag *d);
	void (*close)(struct gfs_kv *kv);
	void *(*user)(struct gfs_kv *kv);
	/* Does sub-database db exist (committed)? */
	bool (*has_db)(struct gfs_kv *kv, unsigned db);
	/* fn in a read txn (a snapshot); fn's result, translated. */
	int (*read)(struct gfs_kv *kv, gfs_kv_fn fn, void *ctx);
	/* fn in a write txn, run again as the backend needs (the rule
	 * above), committed when it returns 0; -EROFS on a read-only
	 * handle.  Durable on return 0. */
	int (*write)(struct gfs_kv *kv, gfs_kv_fn fn, void *ctx,
		     struct gfs_diag *d);

	bool (*txn_has_db)(struct gfs_kv_txn *txn, unsigned db);
	int (*db_create)(struct gfs_kv_txn *txn, unsigned db);
	int (*get)(struct gfs_kv_txn *txn, unsigned db,
		   const struct gfs_kv_val *k, struct gfs_kv_val *v);
	int (*put)(struct gfs_kv_txn *txn, unsigned db,
		   const struct gfs_kv_val *k, const struct gfs_kv_val *v,
		   unsigned flags);
	/* Every value of k (DUPSORT: all of them); GFS_KV_NOTFOUND if none. */
	int (*del)(struct gfs_kv_txn *txn, unsigned db,
		   const struct gfs_kv_val *k);
	/* Empties db (it stays). */
	int (*drop)(struct gfs_kv_txn *txn, unsigned db);
	int (*cursor_open)(struct gfs_kv_txn *txn, unsigned db,
			   struct gfs_kv_cursor **out);
	/* k is read by SET and SET_RANGE; k and v are set on 0. */
	int (*cursor_get)(struct gfs_kv_cursor *c, struct gfs_kv_val *k,
			  struct gfs_kv_val *v, enum gfs_kv_cursor_op op);
	void (*cursor_close)(struct gfs_kv_cursor *c);

	/* Without opening the store: -EBUSY (d names who) while another
	 * process has it open, else 0 or an error.  The upgrade asks before
	 * it rewrites the manifest (a process of an older build would go on
	 * writing the old format). */
	int (*in_use)(const char *store_dir, struct gfs_diag *d);
	/* After the first write of a store created by open (init): makes
	 * durable every name the backend created (LMDB: manifest/ and
	 * data.mdb), before the store's FORMAT vouches for them. */
	int (*sync_created)(const char *store_dir, struct gfs_diag *d);
};

/* The LMDB backend (kv_lmdb.c). */
extern const struct gfs_kv_ops gfs_kv_lmdb;

/* The backend that keeps the store at store_dir: LMDB, the only one. */
const struct gfs_kv_ops *gfs_kv_backend(const char *store_dir);

static inline void gfs_kv_close(struct gfs_kv *kv)
{
	if (kv)
		kv->ops->close(kv);
}

static inline void *gfs_kv_user(struct gfs_kv *kv)
{
	return kv->ops->user(kv);
}

static inline bool gfs_kv_has_db(struct gfs_kv *kv, unsigned db)
{
	return kv->ops->has_db(kv, db);
}

static inline int gfs_kv_read(struct gfs_kv *kv, gfs_kv_fn fn, void *ctx)
{
	return kv->ops->read(kv, fn, ctx);
}

static inline int gfs_kv_write(struct gfs_kv *kv, gfs_kv_fn fn, void *ctx,
			       struct gfs_diag *d)
{
	return kv->ops->write(kv, fn, ctx, d);
}

static inline bool gfs_kv_txn_has_db(struct gfs_kv_txn *txn, unsigned db)
{
	return txn->ops->txn_has_db(txn, db);
}

static inline int gfs_kv_db_create(struct gfs_kv_txn *txn, unsigned db)
{
	return txn->ops->db_create(txn, db);
}

static inline int gfs_kv_get(struct gfs_kv_txn *txn, unsigned db,
			     const struct gfs_kv_val *k, struct gfs_kv_val *v)
{
	return txn->ops->get(txn, db, k, v);
}

static inline int gfs_kv_put(struct gfs_kv_txn *txn, unsigned db,
			     const struct gfs_kv_val *k,
			     const struct gfs_kv_val *v, unsigned flags)
{
	return txn->ops->put(txn, db, k, v, flags);
}

static inline int gfs_kv_del(struct gfs_kv_txn *txn, unsigned db,
			     const struct gfs_kv_val *k)
{
	return txn->ops->del(txn, db, k);
}

static inline int gfs_kv_drop(struct gfs_kv_txn *txn, unsigned db)
{
	return txn->ops->drop(txn, db);
}

static inline int gfs_kv_cursor_open(struct gfs_kv_txn *txn, unsigned db,
				     struct gfs_kv_cursor **out)
{
	return txn->ops->cursor_open(txn, db, out);
}

static inline int gfs_kv_cursor_get(struct gfs_kv_cursor *c,
				    struct gfs_kv_val *k, struct gfs_kv_val *v,
				    enum gfs_kv_cursor_op op)
{
	return c->ops->cursor_get(c, k, v, op);
}

static inline void gfs_kv_cursor_close(struct gfs_kv_cursor *c)
{
	c->ops->cursor_close(c);
}

#endif
