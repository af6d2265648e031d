/* lock.h - per-table writer leases: flock() on STORE/locks/<table>.lock.
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
};

struct gfs_lockset;

/* Takes the locks in sorted order.  On failure holds none. */
int gfs_lock_tables(const char *store_dir, const char *const *tables,
		    const enum gfs_lock_mode *modes, size_t n, unsigned flags,
		    struct gfs_lockset **out);
void gfs_lockset_free(struct gfs_lockset *ls);

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

#endif
