/* lock.h - per-table writer leases: flock() on STORE/locks/<table>.lock
 * (an etcd store: fenced etcd leases instead, see gfs_lock_tables).
 *
 * Lock files are created once and never unlinked or renamed.  Every
 * acquisition opens its own O_CLOEXEC descriptor, so two threads of one
 * process exclude each other as two processes do; closing releases; the
 * kernel releases on death.  Callers take all their locks in one call, which
 * sorts by table name (exclusive wins when a table is named twice):
 *
 *     struct gfs_lockset *ls;
 *     rc = gfs_lock_tables(store_dir, tables, modes, n, GFS_LOCK_WAIT, &ls);
 *     ... arm, commit, publish ...
 *     gfs_lockset_free(ls);   // releases
 */
#ifndef GFS_LOCK_H
#define GFS_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gfs_lock_mode { GFS_LOCK_SH = 0, GFS_LOCK_EX = 1 };
enum gfs_lock_flags {
	GFS_LOCK_WAIT = 0,
	GFS_LOCK_TRY = 1 << 0, /* -EWOULDBLOCK if any is held elsewhere; none kept */
	/* etcd: with GFS_LOCK_WAIT, wait at most the lease TTL + 5 s
	 * (-ETIMEDOUT): a recovery waits for a dead owner's leases to end,
	 * which they do within a TTL, not for a live one.  flock(): ignored. */
	GFS_LOCK_WAIT_TTL = 1 << 1,
};

struct gfs_lockset;
struct gfs_diag;
struct gfs_kv_etcd_cmps;

/* Takes the locks in sorted order.  On failure holds none.
 *
 * On a store whose manifest is on etcd (FORMAT names "manifest etcd://")
 * the locks are etcd table leases instead (src/lease_etcd.c), taken
 * through one lease session per store and process (opened on first use,
 * TTL GRAPHFS_LEASE_TTL seconds, default 10; revoked at exit; a child
 * after fork() opens its own).  GFS_LOCK_WAIT then waits on a watch, at
 * most GRAPHFS_LOCK_WAIT_S seconds (default 120; -ETIMEDOUT naming the
 * holder), and says for whom it waits on stderr when that is a terminal.
 * While the lockset lives, every manifest write of this thread to that
 * store carries its fence compares (gfs_lock_fence_hook): a write made
 * after the leases expired fails with GFS_ELEASE ("lease lost"). */
int gfs_lock_tables(const char *store_dir, const char *const *tables,
		    const enum gfs_lock_mode *modes, size_t n, unsigned flags,
		    struct gfs_lockset **out);
/* The same, saying why in d (etcd: who holds what, lease lost). */
int gfs_lock_tables_d(const char *store_dir, const char *const *tables,
		      const enum gfs_lock_mode *modes, size_t n, unsigned flags,
		      struct gfs_lockset **out, struct gfs_diag *d);
void gfs_lockset_free(struct gfs_lockset *ls);
/* etcd: the per-request timeout (per member, rounds over the endpoints)
 * of the clients this process's lock layer opens from now on (a mount
 * bounds its requests: fuse/fs.c); 0 keeps etcd.c's defaults.  Call it
 * before the first lock or hold. */
void gfs_lock_set_etcd_timeouts(unsigned timeout_ms, unsigned rounds);

/* The lease holder a sidecar records (etcd: "<lease id>.<n>"), with this
 * process's host and pid; NULL for flock() locks (and for NULL). */
const char *gfs_lockset_holder(const struct gfs_lockset *ls);
/* Recovery of a sidecar whose holder is holder: from now on this thread's
 * writes under ls also compare that holder has no lease key left on any
 * of ls's tables (gfs_lease_gone_init), so a sweep's resolving write and
 * the owner's own publish can never both commit.  No-op for flock()
 * locks, an empty holder, or the caller's own holder. */
int gfs_lockset_owner_gone(struct gfs_lockset *ls, const char *holder);
/* 0 while ls's leases may still be held; GFS_ELEASE (why, in d) once the
 * session is lost.  Always 0 for flock() locks. */
int gfs_lockset_check(struct gfs_lockset *ls, struct gfs_diag *d);

/* The kv_etcd fence hook (kv_etcd.h) that store.c installs on every etcd
 * manifest: the fence (and owner-gone) compares of this thread's live
 * locksets on the store whose client is arg. */
int gfs_lock_fence_hook(void *arg, struct gfs_kv_etcd_cmps *out);

/* etcd stores: fn(arg, false) runs (on a watch thread) after a lease key
 * of the store is deleted: a holder released, or its leases expired (a
 * dead writer's sidecar may be resolvable now).  fn(arg, true): the watch
 * ended (compaction); stop it and start a new one.  *out NULL (and 0) for
 * an LMDB store, where a dead writer's flock() ends with it. */
struct gfs_lock_watch;
int gfs_lock_watch_releases(const char *store_dir, void (*fn)(void *arg, bool ended),
			    void *arg, struct gfs_lock_watch **out, struct gfs_diag *d);
void gfs_lock_watch_stop(struct gfs_lock_watch *lw);

/* Graph-version holds (docs/branches-design.md §6.2): an OFD lock on
 * byte N of STORE/locks/versions.lock stands for graph version N.  A mount
 * read-locks byte N while any of its open handles resolves to N; gc
 * write-locks the bytes of the versions it removes from its check through
 * its commit point, so a hold is either seen by gc or comes after the
 * tombstone.  OFD locks belong to the open file description: two opens in
 * one process exclude each other, a second read lock through the same
 * description is a no-op, and the kernel drops them all when the
 * description's last fd closes (a killed mount's holds end with it).
 *
 *     int fd; gfs_holds_open(store_dir, &fd)    created once, never unlinked
 *     gfs_hold_take(fd, n)                      read lock byte n (waits for gc)
 *     gfs_hold_drop(fd, n)
 *     gfs_hold_fence(fd, n)                     gc: write lock, or -EWOULDBLOCK
 *     gfs_hold_probe(fd, n, &held)              is n held elsewhere? (nothing kept)
 *
 * The file is created with mode 0666 less the umask; a reader that cannot
 * write the store opens it read-only (read locks need no more). */
int gfs_holds_open(const char *store_dir, int *fd);
int gfs_hold_take(int fd, uint64_t n);
int gfs_hold_try(int fd, uint64_t n);  /* gfs_hold_take without waiting:
					  -EWOULDBLOCK while gc fences n */
int gfs_hold_drop(int fd, uint64_t n);
int gfs_hold_fence(int fd, uint64_t n);
int gfs_hold_probe(int fd, uint64_t n, bool *held);

/* The same holds on either backend: one handle per user (a mount's
 * holds, one gc run's fences).  LMDB: the OFD locks above on a descriptor
 * of its own.  etcd: PREFIX/hold/<N>/<session> and PREFIX/gcfence/<N>
 * keys on the process's lease session of the store (lease_etcd.h); a
 * handle's fences go into every manifest write of the thread that opened
 * it (gc's commit: a gc whose fence expired cannot commit).  Close drops
 * all of the handle's holds and fences.
 *
 *     gfs_vhold_open(store_dir, &h, d)
 *     gfs_vhold_take(h, n, GFS_LOCK_TRY or GFS_LOCK_WAIT)   -EWOULDBLOCK: gc fences n
 *     gfs_vhold_drop(h, n)
 *     gfs_vhold_fence(h, n, d)                               -EWOULDBLOCK: n is held
 *     gfs_vhold_close(h) */
struct gfs_vhold;
int gfs_vhold_open(const char *store_dir, struct gfs_vhold **out, struct gfs_diag *d);
void gfs_vhold_close(struct gfs_vhold *h);
int gfs_vhold_take(struct gfs_vhold *h, uint64_t n, unsigned flags);
int gfs_vhold_drop(struct gfs_vhold *h, uint64_t n);
int gfs_vhold_fence(struct gfs_vhold *h, uint64_t n, struct gfs_diag *d);

#endif
