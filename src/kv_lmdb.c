/* kv_lmdb.c - the LMDB backend of kv.h (STORE/manifest/, DESIGN.md §2).
 *
 * The only file that includes <lmdb.h>.  One LMDB environment in
 * STORE/manifest/ (data.mdb, lock.mdb); every sub-database store.c names
 * is a named LMDB database, audit_by_op with MDB_DUPSORT.  What the records
 * mean, their seals and formats, is store.c's; this file moves bytes.
 *
 * Invariants (store.c keeps its numbers for the record rules; these are
 * the LMDB ones that lived there before the kv split, same numbers):
 *  1. One MDB_env per process per environment (LMDB forbids two: closing one
 *     would drop the other's fcntl locks).  A registry keyed by the
 *     directory's device and inode shares it between handles; entries made
 *     before a fork() belong to the parent and are ignored by the child.
 *  2. Every transaction holds env->grow shared; resizing the map holds it
 *     exclusive, so mdb_env_set_mapsize() never runs beside a transaction of
 *     this process.  Transactions never nest within a thread (the lock
 *     prefers writers), which is why history and audit callbacks run between
 *     batches, outside any transaction.
 *  3. MDB_MAP_FULL aborts, grows (double), retries: the write callback runs
 *     again (kv.h's rule).  MDB_MAP_RESIZED adopts the size another process
 *     set.  -ENOSPC only when growing fails.  Every mdb_txn_begin is
 *     txn_begin's, so every transaction (the open's too) adopts a resized
 *     map; MDB_READERS_FULL clears the slots of dead processes
 *     (mdb_reader_check) and retries, READERS_FULL_RETRIES times.
 *  5. LMDB codes are translated in one place, xl(), when a read or write
 *     returns; inside a callback they pass through store.c untouched
 *     (kv.h: GFS_KV_NOTFOUND is MDB_NOTFOUND).
 *  6. MDB_NOLOCK only for a read-only open on a read-only file system
 *     (statvfs ST_RDONLY and a read-only superblock in mountinfo: a
 *     read-only bind mount of a file system written elsewhere is not
 *     one), where no writer can run; anywhere else a reader
 *     without the lock file is invisible to writers, which may then reuse
 *     the pages it reads (LMDB's documentation), so the open fails naming
 *     the access it needs.
 *  7. A database a write transaction creates (gfs_kv_db_create) exists for
 *     other transactions only once that transaction commits: its handle is
 *     the transaction's until then (an aborted or retried run leaves the
 *     environment as it was; invariant 272).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "failpoints.h"
#include "kv.h"
#include "store_int.h"
#include "util.h"

/* One constant for the whole library (DESIGN.md §2): LMDB keeps the larger
 * of this and the size recorded in the file, so it is only a floor. */
#define MAP_SIZE_INITIAL ((size_t)64 << 20)
#define MAP_SIZE_MAX ((size_t)1 << 40)
#define MAX_READERS 126
#define READERS_FULL_RETRIES 3 /* mdb_reader_check + retry, then -EAGAIN */
#define MAP_RESIZE_RETRIES 16  /* adopt another process's map size, then corrupt */
#define MAX_DBS 8

_Static_assert(GFS_KV_NOTFOUND == MDB_NOTFOUND, "kv.h passes LMDB's code through");
_Static_assert(GFS_KV_KEYEXIST == MDB_KEYEXIST, "kv.h passes LMDB's code through");
_Static_assert(GFS_KV_CODE_MIN <= MDB_KEYEXIST && MDB_LAST_ERRCODE <= GFS_KV_CODE_MAX,
	       "LMDB's codes are in kv.h's backend range");

struct env {
	struct env *next;       /* protected by registry_lock */
	int refs;               /* protected by registry_lock */
	dev_t dev;
	ino_t ino;
	pid_t pid;              /* the process that opened it */
	bool rdonly;
	MDB_env *env;
	unsigned n_dbs;
	const char *const *names; /* the open's db_names (static in store.c) */
	MDB_dbi dbi[MAX_DBS];   /* written by a committing txn that made one */
	unsigned has;           /* bit db: the database exists (committed) */
	void *user;             /* kv.h's user area, user_size bytes */
	pthread_rwlock_t grow;  /* shared: any txn; exclusive: resize the map */
};

struct lkv {
	struct gfs_kv base;
	struct env *e;
	bool rdonly;
};

/* A transaction's view of the databases: the environment's, plus the ones
 * it created (invariant 7). */
struct ltxn {
	struct gfs_kv_txn base;
	struct env *e;
	MDB_txn *txn;
	MDB_dbi dbi[MAX_DBS];
	unsigned has, created;
};

struct lcursor {
	struct gfs_kv_cursor base;
	MDB_cursor *c;
};

static const struct gfs_kv_ops *const ops = &gfs_kv_lmdb;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct env *registry;
static size_t initial_mapsize = MAP_SIZE_INITIAL; /* tests may shrink it */
static unsigned max_readers = MAX_READERS;        /* tests may shrink it */
static void (*rerun_hook)(void *arg);              /* tests: store_int.h */
static void *rerun_arg;
static unsigned long reruns;                       /* runs thrown away */

/* Failpoint (test) builds: GRAPHFS_KV_RERUN=1 in the environment throws
 * away the first run of every write callback and runs it again, as an
 * optimistic backend does after a conflict (tests/kv_rerun.sh runs the
 * manifest and recovery tests so).  A default build has no trace of it. */
static bool rerun_all(void)
{
#ifdef GFS_FAILPOINTS_ENABLED
	static int on = -1;
	if (on < 0) {
		const char *v = getenv("GRAPHFS_KV_RERUN");
		on = v && strcmp(v, "1") == 0;
	}
	return on;
#else
	return false;
#endif
}

/* ---- errors ------------------------------------------------------------ */

static bool is_mdb_code(int rc)
{
	return rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE;
}

/* The one translation of LMDB return codes (STYLE.md "Errors").  Other
 * values (-errno, GFS_E*) pass through. */
static int xl(int rc)
{
	switch (rc) {
	case MDB_NOTFOUND: return -ENOENT;
	case MDB_KEYEXIST: return -EEXIST;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
		gfs_corrupt_note("manifest/data.mdb is corrupt: lmdb: %s",
				 mdb_strerror(rc));
		return GFS_ECORRUPT;
	case MDB_VERSION_MISMATCH: return GFS_EFORMAT;
	case MDB_MAP_FULL: return -ENOSPC;
	case MDB_READERS_FULL: return -EAGAIN;
	}
	if (rc > 0)
		return -rc;
	if (is_mdb_code(rc))
		return -EIO;
	return rc;
}

/* Names the manifest file and the step; also recorded as the thread's last
 * I/O failure (util.h) for callers that pass no diag.  LMDB does not say
 * which system call failed: "commit" covers its page writes, fdatasync and
 * meta write.  After MDB_PANIC the environment is unusable in this process
 * until it is closed and reopened (docs/recovery.md "MDB_PANIC"). */
static int xl_diag_dir(int rc, struct gfs_diag *d, const char *dir,
		       const char *what)
{
	char path[PATH_MAX];

	if (!rc || !(rc > 0 || is_mdb_code(rc)))
		return xl(rc);
	snprintf(path, sizeof path, "%s/data.mdb", dir ? dir : "manifest");
	gfs_diag_set(d, "manifest '%s' %s: lmdb: %s%s", path, what,
		     mdb_strerror(rc),
		     rc == MDB_PANIC ? " (the manifest is unusable in this "
				       "process after an I/O error)" : "");
	gfs_io_fail(rc == MDB_PANIC ? "lmdb environment unusable after an "
				      "earlier I/O error (MDB_PANIC), at"
				    : what, path, xl(rc));
	return xl(rc);
}

static int xl_diag(int rc, struct gfs_diag *d, struct env *e,
		   const char *what)
{
	const char *dir = NULL;

	if (e && e->env && mdb_env_get_path(e->env, &dir))
		dir = NULL;
	return xl_diag_dir(rc, d, dir, what);
}

/* ---- transactions ------------------------------------------------------- */

static int adopt_mapsize(struct env *e)
{
	pthread_rwlock_wrlock(&e->grow);
	int rc = mdb_env_set_mapsize(e->env, 0);
	pthread_rwlock_unlock(&e->grow);
	return rc;
}

/* Stale reader slots (processes that died inside a read transaction) are
 * cleared on open; a full table later means more died since, or too many
 * live readers: clear and retry a bounded number of times. */
static int readers_full(struct env *e, unsigned *tries)
{
	int dead = 0;

	if ((*tries)++ >= READERS_FULL_RETRIES)
		return MDB_READERS_FULL;
	return mdb_reader_check(e->env, &dead);
}

static size_t env_mapsize(struct env *e)
{
	MDB_envinfo info;

	return mdb_env_info(e->env, &info) ? 0 : info.me_mapsize;
}

/* MDB_MAP_RESIZED means the newest meta page names a page beyond our map:
 * another process grew it, and adopting the size its meta page records
 * makes the page fit.  If adopting changes nothing, the meta page's last
 * page number is damaged (LMDB has no checksum there): retrying would spin
 * for good (bitflip.py found one), so that is corruption.  A bound covers
 * a writer that keeps growing the map meanwhile. */
static int map_resized(struct env *e, size_t before, unsigned *resizes)
{
	int rc = adopt_mapsize(e);

	if (rc)
		return rc;
	if (env_mapsize(e) == before || ++*resizes > MAP_RESIZE_RETRIES) {
		const char *dir = NULL;

		mdb_env_get_path(e->env, &dir);
		gfs_corrupt_note("manifest '%s/data.mdb' is corrupt: its newest "
				 "meta page names a page beyond the map size it "
				 "records", dir ? dir : "manifest");
		return GFS_ECORRUPT;
	}
	return 0;
}

static int txn_begin(struct env *e, unsigned flags, MDB_txn **txn)
{
	unsigned tries = 0, resizes = 0;

	for (;;) {
		pthread_rwlock_rdlock(&e->grow);
		size_t before = env_mapsize(e);
		int rc = mdb_txn_begin(e->env, NULL, flags, txn);
		if (rc == 0)
			return 0;
		pthread_rwlock_unlock(&e->grow);
		*txn = NULL;
		if (rc == MDB_READERS_FULL)
			rc = readers_full(e, &tries);
		else if (rc == MDB_MAP_RESIZED)
			rc = map_resized(e, before, &resizes);
		if (rc)
			return rc;
	}
}

static void txn_abort(struct env *e, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&e->grow);
}

/* The map's size; the caller holds e->grow (shared or exclusive). */
static size_t map_size(struct env *e)
{
	MDB_envinfo info;
	if (mdb_env_info(e->env, &info))
		return 0;
	return info.me_mapsize;
}

/* Doubles the map unless someone already grew it past seen.  The failpoint
 * is hit before the exclusive lock, outside any transaction (§7). */
static int grow_map(struct env *e, size_t seen)
{
	int err = gfs_fp_hit(GFS_FP_STORE_MAP_GROW);
	if (err)
		return -err;
	int rc = 0;
	pthread_rwlock_wrlock(&e->grow);
	size_t cur = map_size(e);
	if (cur <= seen) {
		size_t want = seen * 2;
		if (seen == 0 || want > MAP_SIZE_MAX ||
		    mdb_env_set_mapsize(e->env, want))
			rc = -ENOSPC;
	}
	pthread_rwlock_unlock(&e->grow);
	return rc;
}

/* ---- kv.h: transactions ------------------------------------------------- */

static void ltxn_init(struct ltxn *t, struct env *e)
{
	memset(t, 0, sizeof *t);
	t->base.ops = ops;
	t->e = e;
	memcpy(t->dbi, e->dbi, sizeof t->dbi);
	t->has = e->has;
}

static void ltxn_abort(struct ltxn *t)
{
	txn_abort(t->e, t->txn);
	t->txn = NULL;
}

/* Commits; the databases the txn created are the environment's from now
 * on (invariant 7), published under e->grow like the commit itself. */
static int ltxn_commit(struct ltxn *t)
{
	struct env *e = t->e;
	int rc = mdb_txn_commit(t->txn);

	t->txn = NULL;
	if (!rc && t->created) {
		memcpy(e->dbi, t->dbi, sizeof e->dbi);
		e->has = t->has;
	}
	pthread_rwlock_unlock(&e->grow);
	return rc;
}

/* Runs fn in a write transaction, growing the map and retrying on
 * MDB_MAP_FULL (fn runs again: kv.h's rule).  fn returns 0 to commit,
 * anything else to abort. */
static int lmdb_write(struct gfs_kv *kv, gfs_kv_fn fn, void *ctx,
		      struct gfs_diag *d)
{
	struct lkv *h = (struct lkv *)kv;
	struct env *e = h->e;
	bool rerun = rerun_hook != NULL || rerun_all();

	if (h->rdonly) {
		gfs_diag_set(d, "manifest is open read-only");
		return -EROFS;
	}
	for (;;) {
		struct ltxn t;
		size_t seen;
		ltxn_init(&t, e);
		int rc = txn_begin(e, 0, &t.txn);
		if (rc)
			return xl_diag(rc, d, e, "begin");
		/* Under e->grow (held shared from txn_begin to the end of the
		 * txn): mdb_env_info reads the meta pages inside the map,
		 * which another thread's grow_map may be remapping. */
		seen = map_size(e);
		gfs_write_cb_enter();
		rc = fn(&t.base, ctx);
		gfs_write_cb_leave();
		if (rc == 0 && rerun) {
			/* a test's stand-in for a conflict: this run is
			 * thrown away, another writer may go, fn runs again */
			ltxn_abort(&t);
			rerun = false;
			__atomic_add_fetch(&reruns, 1, __ATOMIC_RELAXED);
			if (rerun_hook)
				rerun_hook(rerun_arg);
			continue;
		}
		if (rc == 0)
			rc = ltxn_commit(&t);
		else
			ltxn_abort(&t);
		if (rc != MDB_MAP_FULL)
			return xl_diag(rc, d, e, "commit");
		rc = grow_map(e, seen);
		if (rc) {
			gfs_diag_set(d, "manifest map full and cannot grow "
				     "past %zu bytes", seen);
			return rc;
		}
	}
}

static int lmdb_read(struct gfs_kv *kv, gfs_kv_fn fn, void *ctx)
{
	struct env *e = ((struct lkv *)kv)->e;
	struct ltxn t;

	ltxn_init(&t, e);
	int rc = txn_begin(e, MDB_RDONLY, &t.txn);
	if (rc)
		return xl_diag(rc, NULL, e, "begin");
	rc = fn(&t.base, ctx);
	ltxn_abort(&t);
	return xl(rc);
}

/* ---- kv.h: data ---------------------------------------------------------- */

static MDB_val mv(const struct gfs_kv_val *v)
{
	return (MDB_val){ .mv_size = v->size, .mv_data = v->data };
}

static struct gfs_kv_val kvv(const MDB_val *v)
{
	return (struct gfs_kv_val){ .size = v->mv_size, .data = v->mv_data };
}

static bool lmdb_txn_has_db(struct gfs_kv_txn *txn, unsigned db)
{
	struct ltxn *t = (struct ltxn *)txn;

	return db < MAX_DBS && (t->has & 1u << db);
}

/* LMDB allows it only where no other transaction opens a database at the
 * same time: the open's setup and the upgrade, which runs alone. */
static int lmdb_db_create(struct gfs_kv_txn *txn, unsigned db)
{
	struct ltxn *t = (struct ltxn *)txn;

	if (db >= t->e->n_dbs)
		return EINVAL;
	int rc = mdb_dbi_open(t->txn, t->e->names[db], MDB_CREATE, &t->dbi[db]);
	if (!rc) {
		t->has |= 1u << db;
		t->created |= 1u << db;
	}
	return rc;
}

/* A database that does not exist keeps handle 0, LMDB's main database, as
 * before the kv split: store.c asks txn_has_db first where it may lack. */
static int lmdb_get(struct gfs_kv_txn *txn, unsigned db,
		    const struct gfs_kv_val *k, struct gfs_kv_val *v)
{
	struct ltxn *t = (struct ltxn *)txn;
	MDB_val mk = mv(k), mvv;
	int rc = mdb_get(t->txn, t->dbi[db], &mk, &mvv);

	if (!rc)
		*v = kvv(&mvv);
	return rc;
}

static int lmdb_put(struct gfs_kv_txn *txn, unsigned db,
		    const struct gfs_kv_val *k, const struct gfs_kv_val *v,
		    unsigned flags)
{
	struct ltxn *t = (struct ltxn *)txn;
	MDB_val mk = mv(k), mvv = mv(v);
	unsigned f = (flags & GFS_KV_NOOVERWRITE ? MDB_NOOVERWRITE : 0) |
		     (flags & GFS_KV_APPEND ? MDB_APPEND : 0);

	return mdb_put(t->txn, t->dbi[db], &mk, &mvv, f);
}

static int lmdb_del(struct gfs_kv_txn *txn, unsigned db,
		    const struct gfs_kv_val *k)
{
	struct ltxn *t = (struct ltxn *)txn;
	MDB_val mk = mv(k);

	return mdb_del(t->txn, t->dbi[db], &mk, NULL);
}

static int lmdb_drop(struct gfs_kv_txn *txn, unsigned db)
{
	struct ltxn *t = (struct ltxn *)txn;

	return mdb_drop(t->txn, t->dbi[db], 0);
}

static int lmdb_cursor_open(struct gfs_kv_txn *txn, unsigned db,
			    struct gfs_kv_cursor **out)
{
	struct ltxn *t = (struct ltxn *)txn;
	struct lcursor *c = malloc(sizeof *c);
	int rc = c ? mdb_cursor_open(t->txn, t->dbi[db], &c->c) : -ENOMEM;

	*out = NULL;
	if (rc) {
		free(c);
		return rc;
	}
	c->base.ops = ops;
	*out = &c->base;
	return 0;
}

static const MDB_cursor_op cursor_ops[] = {
	[GFS_KV_FIRST] = MDB_FIRST, [GFS_KV_LAST] = MDB_LAST,
	[GFS_KV_NEXT] = MDB_NEXT, [GFS_KV_SET] = MDB_SET,
	[GFS_KV_SET_RANGE] = MDB_SET_RANGE, [GFS_KV_NEXT_DUP] = MDB_NEXT_DUP,
};

static int lmdb_cursor_get(struct gfs_kv_cursor *cur, struct gfs_kv_val *k,
			   struct gfs_kv_val *v, enum gfs_kv_cursor_op op)
{
	struct lcursor *c = (struct lcursor *)cur;
	MDB_val mk = { 0, NULL }, mvv = { 0, NULL };
	int rc;

	if ((size_t)op >= GFS_ARRAY_SIZE(cursor_ops))
		return EINVAL;
	if (op == GFS_KV_SET || op == GFS_KV_SET_RANGE)
		mk = mv(k);
	rc = mdb_cursor_get(c->c, &mk, &mvv, cursor_ops[op]);
	if (!rc) {
		*k = kvv(&mk);
		*v = kvv(&mvv);
	}
	return rc;
}

static void lmdb_cursor_close(struct gfs_kv_cursor *cur)
{
	struct lcursor *c = (struct lcursor *)cur;

	mdb_cursor_close(c->c);
	free(c);
}

/* ---- test backdoors (store_int.h) --------------------------------------- */

void gfs_manifest_debug_set_maxreaders(unsigned n)
{
	pthread_mutex_lock(&registry_lock);
	max_readers = n ? n : MAX_READERS;
	pthread_mutex_unlock(&registry_lock);
}

void gfs_manifest_debug_set_initial_mapsize(size_t bytes)
{
	pthread_mutex_lock(&registry_lock);
	initial_mapsize = bytes ? bytes : MAP_SIZE_INITIAL;
	pthread_mutex_unlock(&registry_lock);
}

void gfs_manifest_debug_set_rerun(void (*hook)(void *arg), void *arg)
{
	rerun_hook = hook;
	rerun_arg = arg;
}

unsigned long gfs_manifest_debug_reruns(void)
{
	return __atomic_load_n(&reruns, __ATOMIC_RELAXED);
}

size_t gfs_kv_lmdb_debug_mapsize(struct gfs_kv *kv)
{
	return map_size(((struct lkv *)kv)->e);
}

/* ---- the registry and open/close ---------------------------------------- */
static struct env *registry_find(const struct stat *st)
{
	for (struct env *e = registry; e; e = e->next)
		if (e->dev == st->st_dev && e->ino == st->st_ino &&
		    e->pid == getpid())
			return e;
	return NULL;
}

static int env_create(const char *dir, unsigned envflags, MDB_env **out)
{
	MDB_env *env;
	int rc = mdb_env_create(&env);
	if (rc)
		return rc;
	rc = mdb_env_set_maxdbs(env, MAX_DBS);
	if (!rc)
		rc = mdb_env_set_maxreaders(env, max_readers);
	if (!rc)
		rc = mdb_env_set_mapsize(env, initial_mapsize);
	if (!rc)
		rc = mdb_env_open(env, dir, envflags, GFS_FILE_MODE);
	if (rc) {
		mdb_env_close(env);
		env = NULL;
	}
	*out = env;
	return rc;
}

/* Is dir on a mount that is read-only (statvfs ST_RDONLY)?  That alone
 * does not keep writers away: a read-only bind mount (mount -o bind,ro) of
 * a read-write file system reports ST_RDONLY while other mounts of the same
 * file system (its superblock) are written. */
static bool mount_rdonly(const char *dir)
{
	struct statvfs sv;

	return statvfs(dir, &sv) == 0 && (sv.f_flag & ST_RDONLY);
}

/* A mount point of /proc/self/mountinfo, with its octal escapes undone. */
static void mnt_unescape(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++, w++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' &&
		    r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
			r += 3;
		} else {
			*w = *r;
		}
	}
	*w = '\0';
}

/* Is the file system under dir itself read-only: the superblock options
 * (the last field of /proc/self/mountinfo) of the mount that holds dir
 * (the longest mount point containing it; the last such line is on top)
 * include "ro"?  Only then can no process on this host write it.  Unknown
 * (no mountinfo, no matching line) is "no": never MDB_NOLOCK on a guess. */
static bool sb_rdonly(const char *dir)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0, best = 0;
	bool found = false, ro = false;
	FILE *f;

	if (!realpath(dir, path) || !(f = fopen("/proc/self/mountinfo", "re")))
		return false;
	while (getline(&line, &cap, f) > 0) {
		char *sep = strstr(line, " - "), *save = NULL, *mp, *sopts;
		size_t n;
		bool r = false;
		if (!sep)
			continue;
		*sep = '\0';
		/* id parent maj:min root mount-point ... - fstype source superopts */
		mp = strtok_r(line, " ", &save);
		for (int i = 0; mp && i < 4; i++)
			mp = strtok_r(NULL, " ", &save);
		sopts = strtok_r(sep + 3, " \n", &save);
		for (int i = 0; sopts && i < 2; i++)
			sopts = strtok_r(NULL, " \n", &save);
		if (!mp || !sopts)
			continue;
		mnt_unescape(mp);
		n = strlen(mp);
		if (n < best || !(strcmp(mp, "/") == 0 ||
				  (strncmp(path, mp, n) == 0 &&
				   (path[n] == '/' || path[n] == '\0'))))
			continue;
		for (char *o = strtok_r(sopts, ",", &save); o; o = strtok_r(NULL, ",", &save))
			r = r || strcmp(o, "ro") == 0;
		best = n;
		found = true;
		ro = r;
	}
	free(line);
	fclose(f);
	return found && ro;
}

/* The open failed for lack of access: say which access is needed.  rofs:
 * the mount is read-only; rosb: so is the file system itself. */
static void access_diag(struct gfs_diag *d, const char *dir, bool rdonly,
			bool rofs, bool rosb, int rc)
{
	if (rdonly && rofs && !rosb)
		gfs_diag_set(d, "cannot open manifest '%s' read-only: %s: this mount is read-only but the file system is writable through another mount, so writers may be active and a reader must take a slot in the lock file '%s/lock.mdb', which it cannot write here; read the store through a mount where it has write access to that lock file, or from a read-only file system",
			     dir, mdb_strerror(rc), dir);
	else if (rdonly)
		gfs_diag_set(d, "cannot open manifest '%s' read-only: %s: a reader needs read access to '%s/data.mdb' and write access to the lock file '%s/lock.mdb' (and to '%s' if it does not exist yet), so that writers see it; without them only a store on a read-only file system can be read",
			     dir, mdb_strerror(rc), dir, dir, dir);
	else if (rofs)
		gfs_diag_set(d, "cannot open manifest '%s' for writing: it is on a read-only file system; use a read-only command or mount (-o ro)",
			     dir);
	else
		gfs_diag_set(d, "cannot open manifest '%s' for writing: %s: a writer needs write access to '%s', '%s/data.mdb' and '%s/lock.mdb'",
			     dir, mdb_strerror(rc), dir, dir, dir);
}

/* MDB_NOLOCK only where no writer can exist (invariant 6): a read-only open
 * on a read-only file system, i.e. a read-only mount whose superblock is
 * read-only too (not a read-only bind mount of a file system writers use).
 * Elsewhere a reader takes a slot in the lock file like everyone else, and
 * stale slots are cleared. */
static int env_open_mdb(struct env *e, const char *dir, struct gfs_diag *d)
{
	unsigned flags = MDB_NOTLS | (e->rdonly ? MDB_RDONLY : 0);
	bool rofs = mount_rdonly(dir);
	bool rosb = rofs && sb_rdonly(dir);

	if (e->rdonly && rosb)
		flags |= MDB_NOLOCK;
	/* A read-only mount of a file system written elsewhere: LMDB would
	 * open it without a reader slot on its own (EROFS on lock.mdb ->
	 * lockless), invisible to the writers.  Refuse instead. */
	int rc = e->rdonly && rofs && !rosb ? EROFS
		 : env_create(dir, flags, &e->env);
	if (rc == EACCES || rc == EPERM || rc == EROFS)
		access_diag(d, dir, e->rdonly, rofs, rosb, rc);
	else if (rc)
		; /* the caller names data.mdb and the call (xl_diag_dir) */
	else if (!(flags & MDB_NOLOCK)) {
		int dead = 0;
		mdb_reader_check(e->env, &dead);
	}
	return rc;
}

/* LMDB's two meta pages carry no checksum, and LMDB opens the one with the
 * larger transaction id: one flipped bit there can make it open an older
 * snapshot and serve it as the head, with every one of our checksums
 * intact (issue 8, bitflip.py).  LMDB writes transaction t to meta page
 * t % 2, so the two ids are 0 and 0 (never committed) or consecutive with
 * page 0 even and page 1 odd.  Checked before mdb_env_open; what it cannot
 * catch is in docs/format.md ("What a flipped bit does"). */
#define META_OFF 16              /* after the page header */
#define META_MAGIC 0xBEEFC0DEu
#define META_PSIZE (META_OFF + 16 + 8) /* dbs[FREE].md_pad: the page size */
#define META_TXNID (META_OFF + 128)    /* after magic..dbs[2], mm_last_pg */

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Both meta pages as they are now; false if they do not agree. */
static bool metas_agree(const unsigned char *m0, const unsigned char *m1,
			uint64_t *t0, uint64_t *t1)
{
	*t0 = le64(m0 + META_TXNID);
	*t1 = le64(m1 + META_TXNID);
	if (le32(m0 + META_OFF) != META_MAGIC || le32(m1 + META_OFF) != META_MAGIC)
		return false;
	if (*t0 == 0 && *t1 == 0)
		return true;
	return *t0 % 2 == 0 && *t1 % 2 == 1 &&
	       (*t0 > *t1 ? *t0 - *t1 : *t1 - *t0) == 1;
}

/* A writer of another process may commit between or during our reads (a
 * meta page is rewritten in place): both pages are read with one pread and
 * a disagreement is believed only when it persists. */
static int metas_read_check(int fd, uint64_t *t0, uint64_t *t1)
{
	unsigned char b0[256], *b;
	uint32_t psize;
	int rc = gfs_pread_all(fd, b0, sizeof b0, 0);

	*t0 = *t1 = 0;
	if (rc)
		return rc;
	psize = le32(b0 + META_PSIZE);
	if (psize < 512 || psize > (1u << 16) || (psize & (psize - 1)))
		return GFS_ECORRUPT;
	b = malloc(psize + 256);
	if (!b)
		return -ENOMEM;
	rc = GFS_ECORRUPT;
	for (int i = 0; i < 8 && rc == GFS_ECORRUPT; i++) {
		rc = gfs_pread_all(fd, b, psize + 256, 0);
		if (!rc && !metas_agree(b, b + psize, t0, t1))
			rc = GFS_ECORRUPT;
	}
	free(b);
	return rc;
}

static int meta_pages_check(const char *dir, struct gfs_diag *d)
{
	char path[PATH_MAX + 16];
	uint64_t t0, t1;
	int fd, rc;

	snprintf(path, sizeof path, "%s/data.mdb", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == ENOENT || errno == EACCES || errno == EPERM))
		return 0; /* LMDB's open says what is wrong (access_diag) */
	if (fd < 0) {
		rc = gfs_io_fail("open", path, -errno);
		gfs_diag_set(d, "manifest '%s' open: %s", path, gfs_strerror(rc));
		return rc;
	}
	rc = metas_read_check(fd, &t0, &t1);
	close(fd);
	if (rc && rc != GFS_ECORRUPT) {
		gfs_io_fail("read", path, rc);
		gfs_diag_set(d, "manifest '%s' read: %s", path, gfs_strerror(rc));
	} else if (rc) {
		gfs_diag_set(d, "manifest '%s' is corrupt: LMDB meta pages do not agree (transaction %llu on page 0, %llu on page 1)",
			     path, (unsigned long long)t0, (unsigned long long)t1);
		gfs_corrupt_note("manifest '%s' is corrupt: LMDB meta pages do not agree",
				 path);
	}
	return rc;
}

/* The next and tver databases exist only from format 3 on: their handles
 * are valid only then (handle 0 would be LMDB's main database). */
/* Opens every database the store names in the open's first transaction,
 * runs the store's setup in it and commits (committing, even read-only,
 * keeps the handles for later transactions).  An optional database that
 * does not exist stays absent (has_db false); a required one that does not
 * exist means this is no graphfs manifest. */
static int dbis_open(struct env *e, const struct gfs_kv_open_args *a,
		     struct gfs_diag *d)
{
	struct ltxn t;
	int rc;

	ltxn_init(&t, e);
	rc = txn_begin(e, e->rdonly ? MDB_RDONLY : 0, &t.txn);
	if (rc)
		return rc;
	for (unsigned i = 0; i < a->n_dbs && !rc; i++) {
		bool opt = a->db_flags[i] & GFS_KV_DB_OPTIONAL;
		unsigned f = e->rdonly || opt ? 0 : MDB_CREATE;
		if (a->db_flags[i] & GFS_KV_DB_DUPSORT)
			f |= MDB_DUPSORT;
		rc = mdb_dbi_open(t.txn, a->db_names[i], f, &t.dbi[i]);
		if (rc == MDB_NOTFOUND && opt) {
			t.dbi[i] = 0;
			rc = 0;
			continue;
		}
		if (!rc)
			t.has |= 1u << i;
		if (rc == MDB_NOTFOUND) {
			gfs_diag_set(d, "manifest has no '%s' database: not a "
				     "graphfs manifest", a->db_names[i]);
			rc = GFS_ECORRUPT;
		}
	}
	t.created = t.has; /* all of them are the environment's at commit */
	if (!rc && a->setup) {
		gfs_write_cb_enter(); /* a write txn unless read-only: same rule */
		rc = a->setup(&t.base, e->user, a->setup_arg, d);
		gfs_write_cb_leave();
	}
	if (rc) {
		ltxn_abort(&t);
		return rc;
	}
	return ltxn_commit(&t);
}

/* A data.mdb shorter than its last committed page (a copy cut short, a
 * failing disk, a file system that lost writes LMDB had synced) would make
 * the first read of that page SIGBUS through the map: refuse it at open.
 * A healthy file is never shorter, since LMDB writes (and syncs) pages
 * before the meta page that names them. */
static int data_size_check(struct env *e, const char *dir, struct gfs_diag *d)
{
	char path[PATH_MAX];
	MDB_envinfo info;
	MDB_stat ms;
	struct stat st;
	int rc = mdb_env_info(e->env, &info);

	if (!rc)
		rc = mdb_env_stat(e->env, &ms);
	if (rc)
		return rc;
	if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", dir) >= sizeof path)
		return -ENAMETOOLONG;
	if (stat(path, &st) < 0)
		return -errno;
	uint64_t need = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	if ((uint64_t)st.st_size >= need)
		return 0;
	gfs_diag_set(d, "manifest '%s' is truncated: %lld bytes, but its last "
		     "committed page ends at byte %llu", path,
		     (long long)st.st_size, (unsigned long long)need);
	return GFS_ECORRUPT;
}

static void env_free(struct env *e)
{
	if (e->env)
		mdb_env_close(e->env);
	pthread_rwlock_destroy(&e->grow);
	free(e->user);
	free(e);
}

static int env_open(const char *dir, const struct stat *st,
		    const struct gfs_kv_open_args *a, struct env **out,
		    struct gfs_diag *d)
{
	pthread_rwlockattr_t attr;
	struct env *e = calloc(1, sizeof *e);
	if (!e)
		return -ENOMEM;
	if (a->n_dbs > MAX_DBS) {
		free(e);
		return -EINVAL;
	}
	e->user = calloc(1, a->user_size ? a->user_size : 1);
	if (!e->user) {
		free(e);
		return -ENOMEM;
	}
	pthread_rwlockattr_init(&attr);
	/* growth must not starve behind a stream of readers */
	pthread_rwlockattr_setkind_np(&attr,
				      PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&e->grow, &attr);
	pthread_rwlockattr_destroy(&attr);
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->pid = getpid();
	e->rdonly = a->rdonly;
	e->n_dbs = a->n_dbs;
	e->names = a->db_names;
	int rc = meta_pages_check(dir, d);
	if (rc) {
		env_free(e);
		return rc;
	}
	rc = env_open_mdb(e, dir, d);
	if (!rc)
		rc = data_size_check(e, dir, d);
	if (!rc)
		rc = dbis_open(e, a, d);
	if (rc) {
		env_free(e);
		return xl_diag_dir(rc, d, dir, "open"); /* access_diag's stays */
	}
	*out = e;
	return 0;
}

static int manifest_dir(const char *store_dir, bool create, char *dir,
			size_t cap, struct stat *st, struct gfs_diag *d)
{
	int n = snprintf(dir, cap, "%s/manifest", store_dir);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	if (create) {
		int rc = gfs_mkdir(dir, GFS_DIR_MODE);
		if (rc) {
			gfs_diag_set(d, "cannot create '%s'", dir);
			return rc;
		}
	}
	char data[PATH_MAX];
	n = snprintf(data, sizeof data, "%s/data.mdb", dir);
	if (n < 0 || (size_t)n >= sizeof data)
		return -ENAMETOOLONG;
	if (stat(dir, st) || (!create && access(data, F_OK))) {
		int rc = -errno;
		gfs_diag_set(d, "no manifest at '%s': %s", dir, strerror(errno));
		return rc;
	}
	return 0;
}

static int lmdb_open(const struct gfs_kv_open_args *a, struct gfs_kv **out,
		     struct gfs_diag *d)
{
	char dir[PATH_MAX];
	struct stat st;
	*out = NULL;
	int rc = manifest_dir(a->store_dir, a->create, dir, sizeof dir, &st, d);
	if (rc)
		return rc;
	struct lkv *h = calloc(1, sizeof *h);
	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&registry_lock);
	struct env *e = registry_find(&st);
	if (e && e->rdonly && !a->rdonly) {
		gfs_diag_set(d, "manifest '%s' is already open read-only in "
			     "this process", dir);
		rc = -EBUSY;
	} else if (e) {
		e->refs++;
	} else if ((rc = env_open(dir, &st, a, &e, d)) == 0) {
		e->refs = 1;
		e->next = registry;
		registry = e;
	}
	pthread_mutex_unlock(&registry_lock);
	if (rc) {
		free(h);
		return rc;
	}
	h->base.ops = ops;
	h->e = e;
	h->rdonly = a->rdonly;
	*out = &h->base;
	return 0;
}

static void lmdb_close(struct gfs_kv *kv)
{
	struct env *e = ((struct lkv *)kv)->e;

	free(kv);
	pthread_mutex_lock(&registry_lock);
	/* an env inherited across fork() is never touched (invariant 1) */
	if (e->pid == getpid() && --e->refs == 0) {
		struct env **pp = &registry;
		while (*pp != e)
			pp = &(*pp)->next;
		*pp = e->next;
		env_free(e);
	}
	pthread_mutex_unlock(&registry_lock);
}

static void *lmdb_user(struct gfs_kv *kv)
{
	return ((struct lkv *)kv)->e->user;
}

static bool lmdb_has_db(struct gfs_kv *kv, unsigned db)
{
	return db < MAX_DBS && (((struct lkv *)kv)->e->has & 1u << db);
}

/* Another process with the manifest open holds a read lock on byte 0 of
 * lock.mdb (LMDB's liveness lock): -EBUSY naming it; 0 if none (moved from
 * upgrade.c, which asks before it rewrites the manifest). */
static int lmdb_in_use(const char *dir, struct gfs_diag *d)
{
	char path[PATH_MAX];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = 0, .l_len = 1 };
	int fd, rc = 0;

	snprintf(path, sizeof path, "%s/manifest/lock.mdb", dir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : gfs_io_fail("open", path, -errno);
	if (fcntl(fd, F_GETLK, &fl) < 0)
		rc = gfs_io_fail("fcntl(F_GETLK)", path, -errno);
	else if (fl.l_type != F_UNLCK) {
		gfs_diag_set(d, "store '%s' is open in process %d (a mount or another graphctl): stop it, then try again",
			     dir, (int)fl.l_pid);
		rc = -EBUSY;
	}
	close(fd);
	return rc;
}

/* Invariant 56 (graph.c's init: FORMAT is its commit point).  LMDB creates
 * data.mdb but fsyncs no directory: fsync manifest/ (the name data.mdb),
 * then the store directory (the name manifest/).  Moved from graph.c. */
static int lmdb_sync_created(const char *dir, struct gfs_diag *d)
{
	char mdir[PATH_MAX];
	int n = snprintf(mdir, sizeof mdir, "%s/manifest", dir);
	int rc = n < 0 || (size_t)n >= sizeof mdir ? -ENAMETOOLONG : 0;

	if (!rc && gfs_fp_hit(GFS_FP_SYNC_SKIP_MANIFEST_DIR))
		return 0;
	if (!rc && (rc = gfs_fsync_dir(mdir)))
		gfs_diag_set(d, "cannot fsync '%s': %s", mdir, gfs_strerror(rc));
	if (!rc && (rc = gfs_fsync_dir(dir)))
		gfs_diag_set(d, "cannot fsync '%s': %s", dir, gfs_strerror(rc));
	return rc;
}

const struct gfs_kv_ops gfs_kv_lmdb = {
	.name = "lmdb",
	.open = lmdb_open,
	.close = lmdb_close,
	.user = lmdb_user,
	.has_db = lmdb_has_db,
	.read = lmdb_read,
	.write = lmdb_write,
	.txn_has_db = lmdb_txn_has_db,
	.db_create = lmdb_db_create,
	.get = lmdb_get,
	.put = lmdb_put,
	.del = lmdb_del,
	.drop = lmdb_drop,
	.cursor_open = lmdb_cursor_open,
	.cursor_get = lmdb_cursor_get,
	.cursor_close = lmdb_cursor_close,
	.in_use = lmdb_in_use,
	.sync_created = lmdb_sync_created,
};
