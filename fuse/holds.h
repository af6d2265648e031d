/* holds.h - the mount's holds on graph versions (docs/branches-design.md
 * §6.2): one descriptor on STORE/locks/versions.lock and a reference count
 * per graph version N; byte N is read-locked (lock.h, gfs_hold_take) from
 * the first open handle that resolves to N to the last one's release.  The
 * kernel drops the locks when the daemon dies.
 *
 *     gfs_holds_new(store_dir, &h)      NULL h (no lock file): holds off
 *     gfs_holds_ref(h, n)               open / opendir (may wait for a gc):
 *                                       1 = the lock was taken now (the
 *                                       caller checks n is not removed),
 *                                       0 = n was held already
 *     gfs_holds_unref(h, n)             release / releasedir
 *     gfs_holds_keep(h, n)              n (main's head) stays held after
 *                                       its last release, until the next
 *                                       keep names another version
 *     gfs_holds_count(h)                versions held now (.graphfs/stats)
 *     gfs_holds_free(h)
 *
 * Thread-safe: one mutex orders the counts and the lock calls that record
 * or drop a hold, so a release never drops the lock an open just took;
 * waiting for a gc's fence happens outside it. */
#ifndef GFS_HOLDS_H
#define GFS_HOLDS_H

#include <stddef.h>
#include <stdint.h>

struct gfs_holds;

int gfs_holds_new(const char *store_dir, struct gfs_holds **out);
void gfs_holds_free(struct gfs_holds *h);
int gfs_holds_ref(struct gfs_holds *h, uint64_t n);
/* One more reference to n if this mount holds it already (0), else
 * -ENOENT and nothing taken: never asks the lock layer (etcd) anything. */
int gfs_holds_ref_held(struct gfs_holds *h, uint64_t n);
void gfs_holds_unref(struct gfs_holds *h, uint64_t n);
/* Main's head n, as the notifier last read it: its hold outlives its last
 * handle, so walking the live view takes and drops no hold per file (on
 * etcd two requests each); the previous such version's hold goes, if no
 * handle holds it.  gc never removes a branch head, so holding one on
 * keeps nothing gc would remove while it is the head; once it is not,
 * its hold goes with the next keep (the notifier's next read). */
void gfs_holds_keep(struct gfs_holds *h, uint64_t n);
size_t gfs_holds_count(struct gfs_holds *h);

#endif
