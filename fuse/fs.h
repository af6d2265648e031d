/* fs.h - the FUSE low-level adapters of graphfs (docs/mount.md).
 *
 *     gfs_fs_new(graph, &opts, &fs)
 *     se = fuse_session_new(&args, gfs_fs_ops(), sizeof(struct fuse_lowlevel_ops), fs)
 *     fuse_session_mount(se, mnt); gfs_fs_notifier_start(fs, se)
 *     fuse_session_loop_mt(se, cfg)
 *     gfs_fs_notifier_stop(fs); fuse_session_unmount(se); ...; gfs_fs_free(fs)
 *
 * Each adapter asks fuse/view.c for the answer (0 or -errno) and sends
 * exactly one reply.  FUSE_USE_VERSION is pinned here, once.
 */
#ifndef GFS_FUSE_FS_H
#define GFS_FUSE_FS_H

#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <stdbool.h>

#include "graph.h"

struct gfs_fs_opts {
	double live_timeout;  /* entry/attr timeout in the live view, seconds */
	unsigned poll_ms;     /* notifier: manifest head poll interval */
	unsigned tver_cache;  /* unused open table versions kept */
	bool with_opendir;    /* keep OPENDIR/RELEASEDIR (no kernel listing cache) */
	unsigned readahead_kb; /* the mount's readahead (0: the kernel's) */
	size_t max_vnodes;    /* beyond this the kernel is asked to drop the
				 least recently used names (0: 200000) */
	const char *options_text; /* .graphfs/options (borrowed) */
	const char *mountpoint;   /* absolute (borrowed): to abort a wedged connection */
};

struct gfs_fs;

int gfs_fs_new(struct gfs_graph *g, const struct gfs_fs_opts *o,
	       struct gfs_fs **out);
void gfs_fs_free(struct gfs_fs *fs);
const struct fuse_lowlevel_ops *gfs_fs_ops(void);

/* The notifier thread: follows the manifest head and invalidates kernel
 * caches of the live view, holding no lock a request handler needs.
 * _stop must run while the session's workers still serve (a notify call
 * can wait for a request only a worker answers); it is bounded: if the
 * thread has not ended after GFS_NOTIFIER_STOP_S seconds, the connection
 * is aborted through /sys/fs/fuse/connections/N/abort, which fails every
 * pending request and so every blocked notify call.  Idempotent. */
#define GFS_NOTIFIER_STOP_S 10
/* The FUSE connection (the minor of the anonymous device, as in
 * /sys/fs/fuse/connections/N and /sys/class/bdi/0:N) of the newest mount
 * on mnt, read from /proc/self/mountinfo without touching the mount; 0 if
 * none. */
unsigned gfs_fs_conn_of(const char *mnt);
int gfs_fs_notifier_start(struct gfs_fs *fs, struct fuse_session *se);
void gfs_fs_notifier_stop(struct gfs_fs *fs);

#endif
