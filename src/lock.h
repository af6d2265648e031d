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

#endif
