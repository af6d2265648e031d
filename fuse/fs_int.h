/* fs_int.h - private to fuse/fs.c and fuse/notify.c: the daemon's state.
 *
 * fs.c owns the inode table, the open handles and the request adapters;
 * notify.c owns the notifier thread that follows the manifest head and
 * invalidates the kernel's caches of the live view.
 */
#ifndef GFS_FUSE_FS_INT_H
#define GFS_FUSE_FS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs.h"
#include "view.h"
#include "write.h"

/* "Never expire" for versions/N: a century; the kernel caps it anyway. */
#define FOREVER (100.0 * 365 * 86400)

#define OPS(X) X(init) X(destroy) X(lookup) X(forget) X(forget_multi) \
	X(getattr) X(setattr) X(readlink) X(mknod) X(mkdir) X(unlink)  \
	X(rmdir) X(symlink) X(rename) X(link) X(open) X(read) X(write)  \
	X(release) X(opendir) X(readdir) X(readdirplus) X(releasedir)  \
	X(statfs) X(access) X(create) X(fallocate)            \
	X(setxattr) X(removexattr) X(flush) X(fsync)

enum op {
#define X(n) OP_##n,
	OPS(X)
#undef X
	OP_COUNT
};

struct vnode {
	struct vnode *next;   /* hash chain by ino */
	struct vnode *knext;  /* live vnodes: hash chain by key (kbuckets) */
	bool kidx;            /* on a kbuckets chain */
	bool used;            /* touched since the pruner last passed */
	uint64_t ino;
	uint64_t nlookup;     /* kernel references (lookup count) */
	uint64_t parent;      /* live view: where the kernel found it */
	/* A node file renamed through this mount (mv a.json b.json): the
	 * kernel moved its name, the identity (d) is still a's; until the
	 * notifier drops it, opens and stats resolve parent/renamed. Protected
	 * by ino_lock. */
	char *renamed;
	struct gfs_vdesc d;
	char name[];          /* the name it was found under ("" for the root) */
};

/* An open file or directory: the kernel's fi->fh.  Listed so the handles
 * still open when the session ends (the kernel sends no RELEASE then) are
 * closed by gfs_fs_free. */
struct fh {
	struct fh *prev, *next; /* protected by fs->fh_lock */
	bool dir;
	struct gfs_wobj *w;   /* a write handle (or any handle of a WFILE) */
	uint64_t held;        /* the graph version it holds (holds.h), 0 none */
	union {
		struct gfs_vfile *f;
		struct gfs_vdir *d;
	} u;
};

struct gfs_fs {
	struct gfs_graph *g;
	struct gfs_view *v;
	struct gfs_fs_opts o;

	pthread_mutex_t fh_lock;  /* protects fhs */
	struct fh fhs;            /* list head */

	/* ino_lock protects buckets, n_buckets, n_vnodes and kbuckets: the
	 * live vnodes by the key they show (a row id, an edge's end; "" for
	 * none), so the notifier finds what a changed row affects without
	 * scanning every vnode. */
	pthread_mutex_t ino_lock;
	struct vnode **kbuckets;
	struct vnode **buckets;
	size_t n_buckets, n_vnodes;
	struct vnode *root;       /* never forgotten */

	atomic_uint_least64_t ops[OP_COUNT];
	atomic_uint_least64_t ops_frozen[OP_COUNT]; /* on versions/N inodes */
	atomic_uint_least64_t bytes_served, neg_entries;
	atomic_uint_least64_t forgotten_frozen; /* versions/N inodes evicted */
	atomic_uint_least64_t listed_frozen;    /* their listings read afresh */
	atomic_uint_least64_t polls, versions_seen, inval_entry, inval_inode;
	atomic_uint_least64_t rows_changed, full_scans;
	atomic_uint_least64_t gcs_seen;         /* gc commits the notifier handled */
	atomic_uint_least64_t pruned, bare_entries;
	size_t clock_hand;        /* the pruner's position; protected by ino_lock */
	unsigned trims;           /* notifier thread only */
	bool no_opendir;          /* set once in init */
	atomic_bool ra_done;      /* readahead set (after INIT) */
	atomic_uint_least64_t lag_ms_last, lag_ms_max, head_seen;
	/* Requests answered with an I/O error (EIO, ENOSPC, EDQUOT) and the
	 * last failing system call and file, for .graphfs/stats. */
	atomic_uint_least64_t io_errors;
	pthread_mutex_t io_lock;  /* protects last_io */
	char last_io[512];

	/* Staleness bound (docs/mount.md, "How stale the live view can be"):
	 * epoch is the newest graph version the notifier has begun to
	 * handle.  A reply about the live view takes reply_lock shared; the
	 * notifier sets epoch, then takes reply_lock exclusively once (a
	 * barrier) before it invalidates anything.  So a reply is either in
	 * the kernel before the invalidation, or it sees the new epoch and,
	 * if it was built from an older version, carries no timeout. */
	atomic_uint_least64_t epoch;
	/* main's head when epoch was set (issue 11): a listing of the root's
	 * tree built from it is current even when another branch's version
	 * is newer (epoch is the highest graph version of any branch). */
	atomic_uint_least64_t epoch_main;
	pthread_rwlock_t reply_lock;
	atomic_uint_least64_t zero_timeouts; /* replies sent uncacheable */

	struct gfs_wr *wr;        /* writes (fuse/write.c) */
	struct gfs_holds *holds;  /* graph versions open handles hold; NULL: off */
	/* seen_lock/seen_cond: the notifier broadcasts each head_seen it
	 * reaches; a FLUSH waits there for its own version (visibility). */
	pthread_mutex_t seen_lock;
	pthread_cond_t seen_cond;

	/* A store on etcd (notify.c; docs/multi-host.md §5): the notifier
	 * reads the manifest when a watch of PREFIX/gen/ says a graph
	 * version, a branch or a counter moved (or a local write kicks it),
	 * never every poll_ms.  etcd is the manifest's client (borrowed),
	 * NULL on LMDB; wd the notifier's own client (short timeouts: a probe
	 * or a watch start never holds the notifier past
	 * GFS_NOTIFIER_STOP_S) and watch its stream, both notifier-only. */
	struct gfs_etcd *etcd, *wd;
	struct gfs_etcd_watch *watch;
	atomic_bool watch_restart;  /* the watch ended for good: start anew */
	atomic_uint_least64_t watch_events, watch_wakeups, watch_errors;
	atomic_uint_least64_t probes, outages;
	/* mf_lock protects mf_*: the manifest's reachability as the
	 * notifier last found it (.graphfs/stats "manifest", .graphfs/manifest). */
	pthread_mutex_t mf_lock;
	bool mf_down;
	uint64_t mf_since_ns;       /* CLOCK_REALTIME, when it went down */
	uint64_t mf_probe_ns;       /* notifier-only: last probe (monotonic) */
	char mf_error[600];         /* why (the last failure), "" if none */
	char mf_watch_error[400];   /* the watch stream's last trouble */

	struct fuse_session *se;
	pthread_t notifier;
	bool notifier_running;
	atomic_bool stopping;      /* notify calls end early once set */
	pthread_mutex_t stop_lock; /* protects stop */
	pthread_cond_t stop_cond;
	bool stop;
	bool wake;                 /* read the manifest now; protected by stop_lock */
};

/* .graphfs/stats' "manifest" object and .graphfs/manifest's lines
 * (notify.c). */
void fsi_manifest_stats(struct gfs_fs *fs, struct gfs_buf *b);
void fsi_manifest_text(struct gfs_fs *fs, struct gfs_buf *b);

/* What a request of an etcd store's mount waits per member (fs.c). */
#define GFS_FS_ETCD_TIMEOUT_MS 2000

/* Asks the kernel to drop the least recently used names when the daemon
 * tracks more than max_vnodes inodes (notify.c calls it; no lock held). */
void fsi_prune(struct gfs_fs *fs);

/* Wakes the notifier and waits (bounded) until it has handled graph
 * version ver; holds no lock meanwhile.  Only from FLUSH/FSYNC (no
 * directory lock held by the kernel there). */
/* Wakes the notifier without waiting for it (after UNLINK, RENAME,
 * SYMLINK: the other paths of what changed follow within its lag). */
void fsi_notifier_kick(struct gfs_fs *fs);
#define GFS_SEEN_WAIT_S 10
void fsi_seen_wait(struct gfs_fs *fs, uint64_t ver);

/* The vnode of ino, or NULL; caller holds fs->ino_lock. */
struct vnode *fsi_vn_find_locked(struct gfs_fs *fs, uint64_t ino);
/* The first live vnode whose key hashes like key (walk ->knext and
 * compare d.key); caller holds fs->ino_lock. */
struct vnode *fsi_by_key_locked(struct gfs_fs *fs, const char *key,
				size_t len);

static inline uint64_t ld(atomic_uint_least64_t *a)
{
	return atomic_load_explicit(a, memory_order_relaxed);
}

#endif
