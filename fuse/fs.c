/* fs.c - libfuse low-level adapters, the inode table, open handles and
 * op counters (docs/mount.md); the notifier is in notify.c.
 *
 * Locks: fs->ino_lock protects the inode table and nothing else; handlers
 * hold it only to find, insert or forget a vnode, never across a call into
 * the view.  The notifier collects what to invalidate under ino_lock,
 * releases it, checks against the new head, then calls
 * fuse_lowlevel_notify_* holding no lock at all (those calls block in the
 * kernel on inode locks that in-flight requests may hold).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "etcd.h"
#include "fs_int.h"
#include "lock.h"
#include "holds.h"
#include "names.h"

static const char *const op_names[OP_COUNT] = {
#define X(n) [OP_##n] = #n,
	OPS(X)
#undef X
};

/* ---- inode table ------------------------------------------------------- */

static struct vnode **bucket(struct gfs_fs *fs, uint64_t ino)
{
	return &fs->buckets[ino % fs->n_buckets];
}

struct vnode *fsi_vn_find_locked(struct gfs_fs *fs, uint64_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return fs->root;
	for (struct vnode *n = *bucket(fs, ino); n; n = n->next)
		if (n->ino == ino)
			return n;
	return NULL;
}

/* The kernel holds a reference to ino for the whole request, so the vnode
 * cannot be forgotten under us. */
static struct vnode *vn_get(struct gfs_fs *fs, fuse_ino_t ino)
{
	struct vnode *n;

	pthread_mutex_lock(&fs->ino_lock);
	n = fsi_vn_find_locked(fs, ino);
	if (n)
		n->used = true;
	pthread_mutex_unlock(&fs->ino_lock);
	return n;
}

/* ---- the key index (live vnodes by the key they show) ---- */

static bool keyed(const struct vnode *n)
{
	return !gfs_vdesc_frozen(&n->d) && n->d.kind != GFS_VK_ROOT &&
	       n->d.kind != GFS_VK_GFSDIR && n->d.kind != GFS_VK_GFSFILE;
}

static size_t kslot(size_t nb, const char *key, size_t len)
{
	return gfs_hash64(len ? key : "", len) % nb;
}

struct vnode *fsi_by_key_locked(struct gfs_fs *fs, const char *key,
				size_t len)
{
	return fs->kbuckets[kslot(fs->n_buckets, key, len)];
}

static void kidx_insert_locked(struct gfs_fs *fs, struct vnode *n)
{
	struct vnode **b;

	if (!keyed(n))
		return;
	b = &fs->kbuckets[kslot(fs->n_buckets, n->d.key, n->d.key_len)];
	n->knext = *b;
	*b = n;
	n->kidx = true;
}

static void kidx_remove_locked(struct gfs_fs *fs, struct vnode *n)
{
	struct vnode **pp;

	if (!n->kidx)
		return;
	pp = &fs->kbuckets[kslot(fs->n_buckets, n->d.key, n->d.key_len)];
	for (; *pp; pp = &(*pp)->knext)
		if (*pp == n) {
			*pp = n->knext;
			break;
		}
	n->kidx = false;
}

static void vn_grow_locked(struct gfs_fs *fs)
{
	size_t nb = fs->n_buckets * 2;
	struct vnode **b = calloc(nb, sizeof *b);
	struct vnode **kb = calloc(nb, sizeof *kb);

	if (!b || !kb) {
		free(b);
		free(kb);
		return; /* keep the longer chains */
	}
	for (size_t i = 0; i < fs->n_buckets; i++) {
		while (fs->kbuckets[i]) {
			struct vnode *n = fs->kbuckets[i];
			size_t k = kslot(nb, n->d.key, n->d.key_len);

			fs->kbuckets[i] = n->knext;
			n->knext = kb[k];
			kb[k] = n;
		}
	}
	free(fs->kbuckets);
	fs->kbuckets = kb;
	for (size_t i = 0; i < fs->n_buckets; i++) {
		while (fs->buckets[i]) {
			struct vnode *n = fs->buckets[i];

			fs->buckets[i] = n->next;
			n->next = b[n->ino % nb];
			b[n->ino % nb] = n;
		}
	}
	free(fs->buckets);
	fs->buckets = b;
	fs->n_buckets = nb;
}

static uint64_t rehash(uint64_t ino)
{
	uint64_t h = gfs_hash64(&ino, sizeof ino);

	return h < 2 ? h + 2 : h;
}

/* Counts one kernel reference to d and returns its inode number.  Another
 * object with the same hash (not expected in 2^64, but handled) moves
 * this one to a rehashed number. */
static int vn_ref(struct gfs_fs *fs, const struct gfs_vdesc *d,
		  uint64_t parent, const char *name, uint64_t *ino)
{
	uint64_t h = gfs_vdesc_ino(d);
	struct vnode *n;
	int rc = 0;

	pthread_mutex_lock(&fs->ino_lock);
	while ((n = fsi_vn_find_locked(fs, h)) && !gfs_vdesc_same(&n->d, d))
		h = rehash(h);
	if (n) {
		n->nlookup++;
		n->used = true;
	} else if ((n = calloc(1, sizeof *n + strlen(name) + 1)) &&
		   gfs_vdesc_copy(&n->d, d) == 0) {
		memcpy(n->name, name, strlen(name) + 1);
		n->ino = h;
		n->nlookup = 1;
		n->parent = parent;
		n->next = *bucket(fs, h);
		*bucket(fs, h) = n;
		kidx_insert_locked(fs, n);
		if (++fs->n_vnodes > 2 * fs->n_buckets)
			vn_grow_locked(fs);
	} else {
		if (n)
			gfs_vdesc_release(&n->d);
		free(n);
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&fs->ino_lock);
	*ino = h;
	return rc;
}

static void vn_free(struct vnode *n)
{
	free(n->renamed);
	gfs_vdesc_release(&n->d);
	free(n);
}

/* The last FORGET of an inode means the kernel evicted it (memory reclaim):
 * its next use is a LOOKUP again.  Counted for versions/N so tests can
 * tell such re-lookups from a caching bug (docs/mount.md, Caching). */
static void vn_forget(struct gfs_fs *fs, uint64_t ino, uint64_t count)
{
	struct vnode *dead = NULL;

	if (ino == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(&fs->ino_lock);
	for (struct vnode **pp = bucket(fs, ino); *pp; pp = &(*pp)->next) {
		struct vnode *n = *pp;

		if (n->ino != ino)
			continue;
		n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
		if (!n->nlookup) {
			*pp = n->next;
			kidx_remove_locked(fs, n);
			fs->n_vnodes--;
			dead = n;
		}
		break;
	}
	pthread_mutex_unlock(&fs->ino_lock);
	if (!dead)
		return;
	if (gfs_vdesc_frozen(&dead->d))
		atomic_fetch_add_explicit(&fs->forgotten_frozen, 1,
					  memory_order_relaxed);
	vn_free(dead);
}

/* ---- open handles -------------------------------------------------------- */

static struct fh *fh_new(struct gfs_fs *fs, bool dir, void *h)
{
	struct fh *x = calloc(1, sizeof *x);

	if (!x)
		return NULL;
	x->dir = dir;
	if (dir)
		x->u.d = h;
	else
		x->u.f = h;
	pthread_mutex_lock(&fs->fh_lock);
	x->next = fs->fhs.next;
	x->prev = &fs->fhs;
	fs->fhs.next->prev = x;
	fs->fhs.next = x;
	pthread_mutex_unlock(&fs->fh_lock);
	return x;
}

static struct fh *fh_of(const struct fuse_file_info *fi)
{
	return (struct fh *)(uintptr_t)fi->fh;
}

/* Closes the handle and forgets it. */
static void fh_close(struct gfs_fs *fs, struct fh *x)
{
	pthread_mutex_lock(&fs->fh_lock);
	x->prev->next = x->next;
	x->next->prev = x->prev;
	pthread_mutex_unlock(&fs->fh_lock);
	gfs_holds_unref(fs->holds, x->held);
	if (x->w)
		gfs_wr_close(fs->wr, x->w);
	else if (x->dir && x->u.d)
		gfs_view_closedir(fs->v, x->u.d);
	else
		gfs_view_close(fs->v, x->u.f);
	free(x);
}

/* ---- the pruner ----------------------------------------------------------
 *
 * The kernel keeps every inode it was told about until memory reclaim
 * makes it forget them; `ls -l` of a million nodes would make the daemon
 * track two million.  Past max_vnodes, a CLOCK sweep (the used bit is set
 * by every request on the inode) picks names not used since its last pass,
 * files and links before directories, and asks the kernel to drop them
 * (notify_inval_entry); the kernel then evicts the unused inodes and sends
 * FORGET, which frees them here.  An inode still open or in use stays. */

struct victim {
	uint64_t parent;
	char *name;
};

/* Dropping a name also drops its directory's cached listing (the kernel
 * counts the directory as changed), so names in small directories go
 * first: pass 0 takes out/ and in/ (a node's two-name directory; the
 * subtree goes with them), the edge directories and links of one node and
 * the edge files of one source; pass 1 anything but the names of the big
 * directories (a type's nodes and sources, versions/); pass 2 anything. */
static bool prunable(const struct vnode *n, int pass)
{
	switch (n->d.kind) {
	case GFS_VK_NODEOUT: case GFS_VK_NODEIN: case GFS_VK_ETDIR:
	case GFS_VK_EDGELINK: case GFS_VK_EDGEFILE:
		return true;
	case GFS_VK_NODEFILE: case GFS_VK_NODEDIR: case GFS_VK_SRCDIR:
	case GFS_VK_VDIR:
		return pass >= 2;
	default:
		return pass >= 1;
	}
}

/* Picks up to want victims, one CLOCK pass per preference (above). */
static size_t pick_locked(struct gfs_fs *fs, struct victim *v, size_t want)
{
	size_t got = 0, nb = fs->n_buckets, steps = 0;

	for (int pass = 0; pass < 3 && got < want; pass++) {
		for (size_t i = 0; i < nb && got < want; i++, steps++) {
			size_t b = (fs->clock_hand + i) % nb;

			for (struct vnode *n = fs->buckets[b]; n && got < want; n = n->next) {
				if (n->used) {
					n->used = false;
					continue;
				}
				if (!n->name[0] || !n->parent || !prunable(n, pass))
					continue;
				v[got].parent = n->parent;
				v[got].name = gfs_strdup(n->name);
				n->used = true; /* not picked again this round */
				if (v[got].name)
					got++;
			}
		}
		fs->clock_hand = (fs->clock_hand + steps) % nb;
		steps = 0;
	}
	return got;
}

void fsi_prune(struct gfs_fs *fs)
{
	struct victim *v;
	size_t want, got;

	pthread_mutex_lock(&fs->ino_lock);
	want = fs->n_vnodes > fs->o.max_vnodes ?
	       fs->n_vnodes - fs->o.max_vnodes * 9 / 10 : 0;
	pthread_mutex_unlock(&fs->ino_lock);
	if (!want)
		return;
	v = calloc(want, sizeof *v);
	if (!v)
		return;
	pthread_mutex_lock(&fs->ino_lock);
	got = pick_locked(fs, v, want);
	pthread_mutex_unlock(&fs->ino_lock);
	for (size_t i = 0; i < got; i++) {
		if (!atomic_load(&fs->stopping))
			fuse_lowlevel_notify_inval_entry(fs->se, v[i].parent,
							 v[i].name, strlen(v[i].name));
		free(v[i].name);
	}
	atomic_fetch_add(&fs->pruned, got);
	free(v);
	/* The FORGETs free the vnodes a little later, across the workers'
	 * malloc arenas: hand what is free back to the system now and then,
	 * or the peak stays in the RSS. */
	if (got >= 1024 && ++fs->trims % 16 == 0)
		malloc_trim(0);
}

/* ---- counters ---------------------------------------------------------- */

static struct gfs_fs *req_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* The kernel reads a FUSE file in requests of at most the mount's
 * readahead window (128 KiB by default); 1 MiB requests made `cat` of a
 * table file ~20% faster here (docs/benchmarks.md).  It can only be
 * raised once INIT is done (the INIT reply caps it at the window the
 * kernel had when it mounted), so the first other request does it.  Only
 * root may; a failure leaves the default. */
static void readahead_once(struct gfs_fs *fs)
{
	unsigned conn;
	char path[64], val[16];
	int fd, n;

	if (atomic_exchange(&fs->ra_done, true) || !fs->o.readahead_kb ||
	    !fs->o.mountpoint)
		return;
	conn = gfs_fs_conn_of(fs->o.mountpoint);
	if (!conn)
		return;
	snprintf(path, sizeof path, "/sys/class/bdi/0:%u/read_ahead_kb", conn);
	n = snprintf(val, sizeof val, "%u", fs->o.readahead_kb);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, val, (size_t)n) != n) {
		/* the default stays */
	}
	close(fd);
}

static void count(struct gfs_fs *fs, enum op op, const struct vnode *n)
{
	if (op != OP_init && !atomic_load_explicit(&fs->ra_done, memory_order_relaxed))
		readahead_once(fs);
	atomic_fetch_add_explicit(&fs->ops[op], 1, memory_order_relaxed);
	if (n && gfs_vdesc_frozen(&n->d))
		atomic_fetch_add_explicit(&fs->ops_frozen[op], 1,
					  memory_order_relaxed);
}

static void stats_ops(struct gfs_buf *b, atomic_uint_least64_t *ops)
{
	bool first = true;

	gfs_buf_appendc(b, '{');
	for (int i = 0; i < OP_COUNT; i++) {
		uint64_t n = ld(&ops[i]);

		gfs_buf_appendf(b, "%s\"%s\":%" PRIu64, first ? "" : ",",
				op_names[i], n);
		first = false;
	}
	gfs_buf_appendc(b, '}');
}

/* s as a JSON string (quotes, backslashes and control bytes escaped). */
static void json_str(struct gfs_buf *b, const char *s)
{
	gfs_buf_appendc(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			gfs_buf_appendf(b, "\\%c", c);
		else if (c < 0x20)
			gfs_buf_appendf(b, "\\u%04x", c);
		else
			gfs_buf_appendc(b, (char)c);
	}
	gfs_buf_appendc(b, '"');
}

static void stats_io(struct gfs_fs *fs, struct gfs_buf *b)
{
	char last[sizeof fs->last_io];

	pthread_mutex_lock(&fs->io_lock);
	memcpy(last, fs->last_io, sizeof last);
	pthread_mutex_unlock(&fs->io_lock);
	gfs_buf_appendf(b, "\"io_errors\":%" PRIu64 ",\"last_io_error\":",
			ld(&fs->io_errors));
	json_str(b, last);
	gfs_buf_appendc(b, ',');
}

static void stats_text(struct gfs_fs *fs, struct gfs_buf *b)
{
	struct gfs_view_stats vs;
	size_t nv;

	gfs_view_stats(fs->v, &vs);
	pthread_mutex_lock(&fs->ino_lock);
	nv = fs->n_vnodes;
	pthread_mutex_unlock(&fs->ino_lock);
	/* On etcd: the head the notifier last read (what the mount shows),
	 * so that reading stats asks etcd nothing and answers at once during
	 * an outage, not after the client's timeouts. */
	gfs_buf_appendf(b, "{\"head\":%" PRIu64 ",\"requests\":",
			fs->etcd ? ld(&fs->head_seen) : gfs_view_head(fs->v));
	stats_ops(b, fs->ops);
	gfs_buf_append(b, ",\"requests_versions\":", 21);
	stats_ops(b, fs->ops_frozen);
	gfs_buf_appendf(b, ",\"bytes_served\":%" PRIu64 ",\"inodes\":%zu,"
			"\"forgotten_versions\":%" PRIu64 ","
			"\"listings_versions\":%" PRIu64 ","
			"\"negative_entries\":%" PRIu64 ","
			"\"uncacheable_replies\":%" PRIu64 ","
			"\"pruned\":%" PRIu64 ",\"bare_entries\":%" PRIu64 ","
			"\"tver_cache\":{\"hits\":%" PRIu64 ",\"misses\":%" PRIu64
			",\"open\":%" PRIu64 "},"
			"\"gv_cache\":{\"hits\":%" PRIu64 ",\"misses\":%" PRIu64 "},"
			"\"head_reads\":%" PRIu64 ",\"head_shared\":%" PRIu64
			",\"head_reused\":%" PRIu64 ",",
			ld(&fs->bytes_served), nv, ld(&fs->forgotten_frozen),
			ld(&fs->listed_frozen),
			ld(&fs->neg_entries), ld(&fs->zero_timeouts),
			ld(&fs->pruned), ld(&fs->bare_entries),
			vs.tver_hits, vs.tver_misses, vs.tver_open, vs.gv_hits,
			vs.gv_misses, vs.head_reads, vs.head_shared, vs.head_reused);
	stats_io(fs, b);
	gfs_buf_append(b, "\"writes\":", 9);
	gfs_wr_stats(fs->wr, b);
	gfs_buf_appendc(b, ',');
	fsi_manifest_stats(fs, b);
	uint64_t achk = 0, afail = 0;
	if (fs->wd)
		gfs_etcd_watch_alive_stats(fs->wd, &achk, &afail);
	gfs_buf_appendf(b, "\"notifier\":{\"mode\":\"%s\",\"polls\":%" PRIu64
			",\"watch_events\":%" PRIu64 ",\"watch_wakeups\":%" PRIu64
			",\"watch_errors\":%" PRIu64 ",\"watch_alive_checks\":%"
			PRIu64 ",\"watch_alive_failed\":%" PRIu64 ",\"head_seen\":%"
			PRIu64 ",\"versions_seen\":%" PRIu64 ",\"inval_entry\":%"
			PRIu64 ",\"inval_inode\":%" PRIu64 ",\"rows_changed\":%"
			PRIu64 ",\"full_scans\":%" PRIu64 ",\"lag_ms_last\":%"
			PRIu64 ",\"lag_ms_max\":%" PRIu64 ",\"gcs_seen\":%" PRIu64
			"},\"holds\":%zu}\n",
			fs->etcd ? "watch" : "poll", ld(&fs->polls),
			ld(&fs->watch_events), ld(&fs->watch_wakeups),
			ld(&fs->watch_errors), achk, afail, ld(&fs->head_seen), ld(&fs->versions_seen),
			ld(&fs->inval_entry), ld(&fs->inval_inode),
			ld(&fs->rows_changed), ld(&fs->full_scans),
			ld(&fs->lag_ms_last), ld(&fs->lag_ms_max),
			ld(&fs->gcs_seen), gfs_holds_count(fs->holds));
}

static int status_cb(void *arg, enum gfs_gfsfile which, struct gfs_buf *out)
{
	struct gfs_fs *fs = arg;

	if (which == GFS_GF_STATS)
		stats_text(fs, out);
	else if (which == GFS_GF_OPTIONS && fs->o.options_text)
		gfs_buf_appendf(out, "%s", fs->o.options_text);
	else if (which == GFS_GF_SEEN)
		gfs_buf_appendf(out, "%" PRIu64 "\n", ld(&fs->head_seen));
	else if (which == GFS_GF_ERRORS)
		gfs_wr_errors(fs->wr, out);
	else if (which == GFS_GF_MANIFEST)
		fsi_manifest_text(fs, out);
	return 0;
}

/* ---- replies ----------------------------------------------------------- */

/* .graphfs/ files change by themselves (their size is computed at each
 * stat) and no notifier follows them: never cached.  The rest of the live
 * view is invalidated by the notifier; live_timeout only bounds how stale
 * it gets if the notifier fails. */
static double timeout_of(const struct gfs_fs *fs, const struct gfs_vdesc *d)
{
	if (gfs_vdesc_frozen(d))
		return FOREVER;
	/* A WFILE (write.c) becomes a node file or goes away without the
	 * notifier's help: the kernel asks again every time. */
	return d->kind == GFS_VK_GFSFILE || d->kind == GFS_VK_WFILE ? 0 :
	       fs->o.live_timeout;
}

/* An I/O error is counted, and the failing system call and file (util.h,
 * recorded by this worker thread) kept for .graphfs/stats, so a user who
 * sees EIO can find out which table file failed. */
static void note_io_error(struct gfs_fs *fs, int err)
{
	const char *m = gfs_io_last(-err);

	atomic_fetch_add_explicit(&fs->io_errors, 1, memory_order_relaxed);
	pthread_mutex_lock(&fs->io_lock);
	snprintf(fs->last_io, sizeof fs->last_io, "%s", m ? m : strerror(err));
	pthread_mutex_unlock(&fs->io_lock);
}

static void reply_err(fuse_req_t req, int rc)
{
	int err = rc < 0 ? -rc : rc;

	if (err == EIO || err == ENOSPC || err == EDQUOT)
		note_io_error(req_fs(req), err);
	fuse_reply_err(req, err);
}

/* A reply about the live view built from graph version `built` (or from
 * a later one): takes reply_lock shared until reply_end and says whether
 * its timeouts must be zero because the notifier has already begun to
 * handle a newer version (see struct gfs_fs, epoch). */
static bool reply_begin(struct gfs_fs *fs, bool live, uint64_t built)
{
	if (!live)
		return false;
	pthread_rwlock_rdlock(&fs->reply_lock);
	if (built >= atomic_load(&fs->epoch))
		return false;
	atomic_fetch_add_explicit(&fs->zero_timeouts, 1, memory_order_relaxed);
	return true;
}

static void reply_end(struct gfs_fs *fs, bool live)
{
	if (live)
		pthread_rwlock_unlock(&fs->reply_lock);
}

static uint64_t epoch_of(struct gfs_fs *fs)
{
	return atomic_load(&fs->epoch);
}

/* Fills e for child (looked up in parent) and counts the reference. */
static int make_entry(struct gfs_fs *fs, fuse_ino_t parent, const char *name,
		      const struct gfs_vdesc *child, const struct stat *st,
		      struct fuse_entry_param *e)
{
	uint64_t ino;
	int rc = vn_ref(fs, child, parent, name, &ino);

	if (rc)
		return rc;
	memset(e, 0, sizeof *e);
	e->ino = ino;
	e->attr = *st;
	e->attr.st_ino = ino;
	gfs_wr_mode(child, &e->attr);
	e->attr_timeout = timeout_of(fs, child);
	e->entry_timeout = e->attr_timeout;
	return 0;
}

/* A renamed node file's current descriptor (see struct vnode, renamed):
 * 0 and *out set (release it), or 1 if n is not renamed. */
static int renamed_desc(struct gfs_fs *fs, struct vnode *n,
			struct gfs_vdesc *out)
{
	struct gfs_vdesc pd;
	struct vnode *p;
	char *name = NULL;
	bool have = false;
	int rc;

	pthread_mutex_lock(&fs->ino_lock);
	if (n->renamed && (p = fsi_vn_find_locked(fs, n->parent)) &&
	    gfs_vdesc_copy(&pd, &p->d) == 0) {
		name = gfs_strdup(n->renamed);
		have = true;
	}
	pthread_mutex_unlock(&fs->ino_lock);
	if (!have)
		return 1;
	rc = name ? gfs_view_lookup(fs->v, &pd, name, out, NULL) : -ENOMEM;
	gfs_vdesc_release(&pd);
	free(name);
	return rc;
}

/* ---- handlers ---------------------------------------------------------- */

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct gfs_fs *fs = userdata;

	count(fs, OP_init, NULL);
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* Inode numbers change with content; attributes of one inode never
	 * change, so mtime-triggered invalidation only costs. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* No writeback cache: every WRITE must have arrived before the
	 * FLUSH that commits the handle's bytes (docs/mount.md, Writes). */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* O_TRUNC arrives with OPEN, not as a SETATTR that would commit an
	 * empty node file. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* READDIRPLUS for every batch, not only the first: find and tar read
	 * a whole directory before they descend, so in AUTO mode the later
	 * batches came as plain READDIR and each subdirectory then cost a
	 * LOOKUP.  Attributes here cost an index probe at most; past the
	 * inode budget, entries go out bare anyway. */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* The kernel opens directories itself and caches every listing
	 * (FOPEN_CACHE_DIR) until the notifier invalidates it: no OPENDIR or
	 * RELEASEDIR per directory walked (docs/mount.md, "Listings"). */
	fs->no_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) &&
			 !fs->o.with_opendir;
}

static void ll_destroy(void *userdata)
{
	count(userdata, OP_destroy, NULL);
}

static void lookup_req(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct gfs_fs *fs = req_fs(req);
	struct vnode *p = vn_get(fs, parent);
	uint64_t e0 = epoch_of(fs);
	struct fuse_entry_param e;
	struct gfs_vdesc child;
	struct stat st;
	bool live, zero;
	int rc;

	count(fs, OP_lookup, p);
	if (!p)
		{ reply_err(req, ESTALE); return; }
	rc = gfs_wr_lookup(fs->wr, parent, &p->d, name, &child, &st);
	if (rc == 1)
		rc = gfs_view_lookup(fs->v, &p->d, name, &child, &st);
	if (rc == -ENOENT && gfs_vdesc_frozen(&p->d)) {
		/* versions/N never gains a name: cache the miss forever. */
		memset(&e, 0, sizeof e);
		e.entry_timeout = FOREVER;
		atomic_fetch_add(&fs->neg_entries, 1);
		fuse_reply_entry(req, &e);
		return;
	}
	if (!rc)
		rc = make_entry(fs, parent, name, &child, &st, &e);
	live = !rc && !gfs_vdesc_frozen(&child);
	gfs_vdesc_release(&child);
	if (rc)
		{ reply_err(req, rc); return; }
	zero = reply_begin(fs, live, e0);
	if (zero)
		e.entry_timeout = e.attr_timeout = 0;
	if (fuse_reply_entry(req, &e) == -ENOENT)
		vn_forget(fs, e.ino, 1); /* interrupted: kernel took no ref */
	reply_end(fs, live);
}

/* A LOOKUP reads main's head once (fuse/view.c gfs_view_req_begin): the
 * write layer's check of a node name and the lookup itself both need it. */
static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	gfs_view_req_begin();
	lookup_req(req, parent, name);
	gfs_view_req_end();
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct gfs_fs *fs = req_fs(req);

	count(fs, OP_forget, NULL);
	vn_forget(fs, ino, nlookup);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t n,
			    struct fuse_forget_data *f)
{
	struct gfs_fs *fs = req_fs(req);

	count(fs, OP_forget_multi, NULL);
	for (size_t i = 0; i < n; i++)
		vn_forget(fs, f[i].ino, f[i].nlookup);
	fuse_reply_none(req);
}

static void getattr_req(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct gfs_fs *fs = req_fs(req);
	struct vnode *n = vn_get(fs, ino);
	uint64_t e0 = epoch_of(fs);
	struct gfs_vdesc rd;
	struct stat st;
	bool live;

	(void)fi;
	count(fs, OP_getattr, n);
	if (!n)
		{ reply_err(req, ESTALE); return; }
	if (renamed_desc(fs, n, &rd) == 0) {
		gfs_view_getattr(fs->v, &rd, &st);
		gfs_vdesc_release(&rd);
	} else {
		gfs_view_getattr(fs->v, &n->d, &st);
	}
	if (gfs_wr_getattr(fs->wr, ino, &n->d, &st))
		{ reply_err(req, ESTALE); return; }
	gfs_wr_mode(&n->d, &st);
	st.st_ino = ino;
	live = !gfs_vdesc_frozen(&n->d);
	fuse_reply_attr(req, &st, reply_begin(fs, live, e0) ? 0 :
			timeout_of(fs, &n->d));
	reply_end(fs, live);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	gfs_view_req_begin(); /* one head read (ll_lookup) */
	getattr_req(req, ino, fi);
	gfs_view_req_end();
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct gfs_fs *fs = req_fs(req);
	struct vnode *n = vn_get(fs, ino);
	struct gfs_buf b;
	int rc;

	count(fs, OP_readlink, n);
	if (!n)
		{ reply_err(req, ESTALE); return; }
	gfs_buf_init(&b);
	rc = gfs_view_readlink(fs->v, &n->d, &b);
	if (!rc && !b.p)
		rc = -EIO;
	if (rc)
		reply_err(req, rc);
	else
		fuse_reply_readlink(req, b.p);
	gfs_buf_release(&b);
}

/* ---- writes (fuse/write.c does the work; docs/mount.md, Writes) ---------- */

static void who_of(fuse_req_t req, struct gfs_writer *who)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);

	gfs_wr_writer(c->uid, c->pid, who);
}

static struct fh *fh_new_w(struct gfs_fs *fs, struct gfs_wobj *h)
{
	struct fh *x = fh_new(fs, false, NULL);

	if (x)
		x->w = h;
	else
		gfs_wr_close(fs->wr, h);
	return x;
}

/* Write handles (and any handle of a WFILE) are served with direct I/O:
 * their bytes are the daemon's, and st_size follows them. */
static void open_write(fuse_req_t req, struct gfs_fs *fs, struct vnode *n,
		       struct fuse_file_info *fi)
{
	struct gfs_vdesc pd;
	struct gfs_wobj *h;
	struct vnode *p;
	bool have = false;
	struct fh *x;
	int rc;

	/* An edge file's endpoints come from where it was found. */
	pthread_mutex_lock(&fs->ino_lock);
	p = fsi_vn_find_locked(fs, n->parent);
	if (p && gfs_vdesc_copy(&pd, &p->d) == 0)
		have = true;
	pthread_mutex_unlock(&fs->ino_lock);
	rc = gfs_wr_open(fs->wr, n->ino, &n->d, have ? &pd : NULL, n->name,
			 fi->flags, &h);
	if (have)
		gfs_vdesc_release(&pd);

	if (rc)
		{ reply_err(req, rc); return; }
	x = fh_new_w(fs, h);
	if (!x)
		{ reply_err(req, ENOMEM); return; }
	fi->fh = (uintptr_t)x;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) == -ENOENT)
		fh_close(fs, x);
}

/* Holds graph version *ver for a handle about to open (docs/branches-
 * design.md §6.2): the lock first, then the check that it is not removed,
 * so a gc either sees the hold or removed it before.  0 or -errno
 * (-ENOENT: removed); on failure nothing is held.  *ver becomes 0 when
 * the handle is served without a hold of its own (etcd unreachable). */
static int hold(struct gfs_fs *fs, uint64_t *ver)
{
	struct gfs_gv *gv = NULL;
	int rc;

	/* etcd unreachable (docs/multi-host.md §5): asking etcd for a hold
	 * would only wait out the client's timeouts.  A version the view has
	 * read, not removed, stays readable without one (the removal needs
	 * the quorum this mount cannot reach; invariant 329); any other needs
	 * the manifest: EHOSTUNREACH, at once. */
	if (fs->etcd && gfs_view_offline(fs->v)) {
		if (!gfs_view_has_version(fs->v, *ver))
			return -EHOSTUNREACH;
		if (gfs_holds_ref_held(fs->holds, *ver))
			*ver = 0; /* no hold of its own: nothing to drop */
		return 0;
	}
	rc = gfs_holds_ref(fs->holds, *ver);
	/* 0: held already, so not removed since (gc fences what it removes) */
	if (rc <= 0)
		return rc;
	rc = gfs_manifest_get(gfs_graph_manifest(fs->g), *ver, &gv);
	gfs_gv_free(gv);
	if (rc)
		gfs_holds_unref(fs->holds, *ver);
	if (rc && fs->etcd && rc < 0 && rc > -4096)
		return rc; /* etcd's errno (ETIMEDOUT, ECONNREFUSED...), not EIO */
	return rc == -ENOENT ? -ENOENT : rc ? -EIO : 0;
}

/* The graph version a handle on n resolves to: N under versions/N, else
 * the head the live view shows now, main's at the root, a branch's under
 * branches/<name>/ (a live handle stays at it; a branch view's ver is the
 * branch's token, GFS_VER_BRANCH | hash, not a version). */
static uint64_t handle_version(struct gfs_fs *fs, const struct vnode *n)
{
	return gfs_vdesc_frozen(&n->d) ? n->d.ver : gfs_view_live_head(fs->v, &n->d);
}

static void open_req(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct gfs_fs *fs = req_fs(req);
	struct vnode *n = vn_get(fs, ino);
	struct gfs_vdesc rd;
	struct gfs_vfile *f;
	struct fh *x;
	uint64_t ver;
	int rc;

	count(fs, OP_open, n);
	if (!n)
		{ reply_err(req, ESTALE); return; }
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC) ||
	    n->d.kind == GFS_VK_WFILE)
		{ open_write(req, fs, n, fi); return; }
	ver = handle_version(fs, n);
	if ((rc = hold(fs, &ver)))
		{ reply_err(req, -rc); return; }
	rc = renamed_desc(fs, n, &rd);
	if (rc == 0) {
		rc = gfs_view_open(fs->v, &rd, &f);
		gfs_vdesc_release(&rd);
	} else if (rc == 1) {
		rc = gfs_view_open(fs->v, &n->d, &f);
	}
	if (rc) {
		gfs_holds_unref(fs->holds, ver);
		reply_err(req, rc);
		return;
	}
	x = fh_new(fs, false, f);
	if (!x) {
		gfs_holds_unref(fs->holds, ver);
		gfs_view_close(fs->v, f);
		reply_err(req, ENOMEM);
		return;
	}
	x->held = fs->holds ? ver : 0;
	fi->fh = (uintptr_t)x;
	/* Nothing to commit on a read-only handle: no FLUSH at its close
	 * (a second pass over versions/N sends nothing, frozen.sh). */
	fi->noflush = 1;
	fi->direct_io = gfs_vfile_direct(f);
	/* Every inode's bytes are immutable (content-addressed numbers), so
	 * its page cache stays valid across opens. */
	fi->keep_cache = !fi->direct_io;
	if (fuse_reply_open(req, fi) == -ENOENT)
		fh_close(fs, x);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct gfs_fs *fs = req_fs(req);
	struct gfs_vfile *f = fh_of(fi)->u.f;
	struct vnode *n = vn_get(fs, ino);
	size_t got = 0;
	char *buf;
	int rc;

	count(fs, OP_read, n);
	if (off < 0)
		{ reply_err(req, EINVAL); return; }
	buf = malloc(size ? size : 1); /* bounded by max_read (1 MiB) */
	if (!buf)
		{ reply_err(req, ENOMEM); return; }
	if (fh_of(fi)->w)
		rc = gfs_wr_read(fs->wr, fh_of(fi)->w, (uint64_t)off, buf, size,
				 &got);
	else
		rc = gfs_view_read(fs->v, f, (uint64_t)off, buf, size, &got);
	if (rc) {
		reply_err(req, rc);
	} else {
		atomic_fetch_add(&fs->bytes_served, got);
		fuse_reply_buf(req, buf, got);
	}
	free(buf);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct gfs_fs *fs = req_fs(req);

	count(fs, OP_release, vn_get(fs, ino));
	fh_close(fs, fh_of(fi));
	fuse_reply_err(req, 0);
}

/* One head read (ll_lookup): the handle's version and the open itself.
 * OPEN commits nothing (a write handle commits at FLUSH). */
static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	gfs_view_req_begin();
	open_req(req, ino, fi);
	gfs_view_req_end();
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct gfs_fs *fs = req_fs(req);
	struct vnode *n = vn_get(fs, ino);
	struct gfs_vdir *dh;
	struct fh *x;
	uint64_t ver;
	int rc;

	count(fs, OP_opendir, n);
	if (fs->no_opendir)
		{ reply_err(req, ENOSYS); return; } /* the kernel takes over */
	if (!n)
		{ reply_err(req, ESTALE); return; }
	ver = gfs_vdesc_frozen(&n->d) ? n->d.ver : 0; /* versions/N... */
	if (ver && (rc = hold(fs, &ver)))
		{ reply_err(req, -rc); return; }
	if (n->d.kind == GFS_VK_INGEST)
		dh = NULL; /* write.c lists it */
	else if ((rc = gfs_view_opendir(fs->v, &n->d, &dh))) {
		gfs_holds_unref(fs->holds, ver);
		reply_err(req, rc);
		return;
	}
	if (!ver && dh) { /* a live listing stays at the version it opened */
		ver = gfs_vdir_version(dh);
		if ((rc = hold(fs, &ver))) {
			gfs_view_closedir(fs->v, dh);
			reply_err(req, rc);
			return;
		}
	}
	x = fh_new(fs, true, dh);
	if (!x) {
		gfs_holds_unref(fs->holds, ver);
		if (dh)
			gfs_view_closedir(fs->v, dh);
		reply_err(req, ENOMEM);
		return;
	}
	x->held = fs->holds ? ver : 0;
	fi->fh = (uintptr_t)x;
	/* versions/N: the kernel keeps the listing; both flags are needed. */
	fi->cache_readdir = gfs_vdesc_frozen(&n->d);
	fi->keep_cache = gfs_vdesc_frozen(&n->d);
	if (fuse_reply_open(req, fi) == -ENOENT)
		fh_close(fs, x);
}

struct rd {
	struct gfs_fs *fs;
	fuse_req_t req;
	fuse_ino_t dir;
	bool plus, zero;
	bool full;           /* an entry did not fit */
	const struct gfs_vdesc *dird; /* the directory (hides pending names) */
	char *buf;
	size_t size, used;
	uint64_t *refs;      /* readdirplus: inodes referenced, to undo */
	size_t n_refs, cap_refs;
};

static bool is_dot(const char *name)
{
	return name[0] == '.' &&
	       (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

static int rd_ref(struct rd *r, uint64_t ino)
{
	uint64_t *p = gfs_array_grow(r->refs, &r->cap_refs, r->n_refs,
				     sizeof *p, 64);

	if (!p)
		return -ENOMEM;
	r->refs = p;
	r->refs[r->n_refs++] = ino;
	return 0;
}

/* The daemon tracks as many inodes as it may: listings stop handing out
 * more (readdirplus entries go bare) until the pruner made room. */
static bool over_budget(struct gfs_fs *fs)
{
	size_t n;

	pthread_mutex_lock(&fs->ino_lock);
	n = fs->n_vnodes;
	pthread_mutex_unlock(&fs->ino_lock);
	return n >= fs->o.max_vnodes;
}

static int rd_emit(void *arg, const char *name, const struct gfs_vdesc *d,
		   const struct stat *st, uint64_t next_off)
{
	struct rd *r = arg;
	char *p = r->buf + r->used;
	size_t room = r->size - r->used, need;
	struct fuse_entry_param e;

	/* A node pending deletion (renamed to a scratch name) looks absent. */
	if (r->dird && d->kind == GFS_VK_NODEFILE &&
	    gfs_wr_pending(r->fs->wr, r->dird, name))
		return 0;
	if (!r->plus) {
		need = fuse_add_direntry(r->req, p, room, name, st, (off_t)next_off);
		if (need > room)
			return r->full = true, 1;
		r->used += need;
		return 0;
	}
	need = fuse_add_direntry_plus(r->req, NULL, 0, name, NULL, 0);
	if (need > room)
		return r->full = true, 1;
	memset(&e, 0, sizeof e);
	if (is_dot(name) || over_budget(r->fs)) {
		/* Node id 0: the kernel lists the name and instantiates
		 * nothing (so takes no reference); a stat of it will LOOKUP.
		 * "." and ".." are never instantiated anyway. */
		e.attr = *st;
		e.attr.st_ino = (ino_t)gfs_vdesc_ino(d);
		if (!is_dot(name))
			atomic_fetch_add_explicit(&r->fs->bare_entries, 1,
						  memory_order_relaxed);
	} else if (make_entry(r->fs, r->dir, name, d, st, &e)) {
		return 1;
	} else if (rd_ref(r, e.ino)) {
		vn_forget(r->fs, e.ino, 1);
		return 1;
	}
	if (r->zero)
		e.entry_timeout = e.attr_timeout = 0;
	r->used += fuse_add_direntry_plus(r->req, p, room, name, &e,
					  (off_t)next_off);
	return 0;
}

/* Scratch names (fuse/write.c) follow a node type directory's listing;
 * their offsets are SCRATCH_OFF + i: a view.c cookie of version bits 0
 * and a position no listing reaches (2^39), and off_t stays positive. */
#define SCRATCH_OFF (UINT64_C(1) << 39)
#define IS_SCRATCH_OFF(o) ((o) >= SCRATCH_OFF && (o) < 2 * SCRATCH_OFF)

static int rd_emit_scratch(void *arg, const char *name,
			   const struct gfs_vdesc *d, const struct stat *st,
			   uint64_t next)
{
	return rd_emit(arg, name, d, st, SCRATCH_OFF + next);
}

/* One READDIR(PLUS) batch into r: through the directory handle, or, when
 * the kernel opens directories itself (no handle), from the offset alone.
 * *ver: the graph version listed. */
static int rd_fill_view(struct gfs_fs *fs, struct vnode *n,
			struct fuse_file_info *fi, uint64_t off, struct rd *r,
			uint64_t *ver);

static int rd_fill(struct gfs_fs *fs, struct vnode *n,
		   struct fuse_file_info *fi, uint64_t off, struct rd *r,
		   uint64_t *ver)
{
	int rc;

	if (n && n->d.kind == GFS_VK_INGEST && !off)
		off = SCRATCH_OFF; /* only the daemon's names */
	if (IS_SCRATCH_OFF(off)) {
		*ver = atomic_load(&fs->epoch);
		return n ? gfs_wr_list(fs->wr, r->dir, &n->d, off - SCRATCH_OFF,
				       rd_emit_scratch, r) : -ESTALE;
	}
	rc = rd_fill_view(fs, n, fi, off, r, ver);
	if (!rc && !r->full && n && (n->d.kind == GFS_VK_TYPEDIR ||
				     n->d.kind == GFS_VK_SRCDIR ||
				     n->d.kind == GFS_VK_ROOT))
		rc = gfs_wr_list(fs->wr, r->dir, &n->d, 0, rd_emit_scratch, r);
	return rc;
}

static int rd_fill_view(struct gfs_fs *fs, struct vnode *n,
			struct fuse_file_info *fi, uint64_t off, struct rd *r,
			uint64_t *ver)
{
	int rc;

	if (fi->fh && fh_of(fi)->u.d) {
		struct gfs_vdir *dh = fh_of(fi)->u.d;

		rc = gfs_view_readdir(fs->v, dh, off, rd_emit, r);
		*ver = gfs_vdir_version(dh);
		return rc;
	}
	if (!n)
		return -ESTALE;
	return gfs_view_readdir_at(fs->v, &n->d, off, rd_emit, r, ver);
}

/* The version a live listing of n must be built from to be current: the
 * root's tree follows main (its versions are below the epoch whenever
 * another branch is ahead); branches/, branch views and versions/ follow
 * every branch. */
static uint64_t listing_epoch(struct gfs_fs *fs, const struct vnode *n)
{
	if (n && !gfs_vdesc_in_branch(&n->d) && n->d.kind != GFS_VK_VERSIONS)
		return atomic_load(&fs->epoch_main);
	return atomic_load(&fs->epoch);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct gfs_fs *fs = req_fs(req);
	struct vnode *n = vn_get(fs, ino);
	struct rd r = { .fs = fs, .req = req, .dir = ino, .plus = plus,
			.size = size, .dird = n ? &n->d : NULL };
	bool live = plus && n && !gfs_vdesc_frozen(&n->d);
	uint64_t ver = 0;
	int rc;

	count(fs, plus ? OP_readdirplus : OP_readdir, n);
	if (off < 0)
		{ reply_err(req, EINVAL); return; }
	/* Offset 0 on versions/N: the kernel (re)fills its listing cache,
	 * which after the first listing only memory reclaim makes it do. */
	if (off == 0 && n && gfs_vdesc_frozen(&n->d))
		atomic_fetch_add_explicit(&fs->listed_frozen, 1,
					  memory_order_relaxed);
	r.buf = malloc(size ? size : 1);
	if (!r.buf)
		{ reply_err(req, ENOMEM); return; }
	/* Held while the entries are built: they carry the listing's
	 * version, which may be older than what the notifier handled. */
	if (live)
		pthread_rwlock_rdlock(&fs->reply_lock);
	rc = rd_fill(fs, n, fi, (uint64_t)off, &r, &ver);
	if (live && r.n_refs && ver < listing_epoch(fs, n)) {
		/* Built from a version older than the notifier's epoch: send
		 * the names, but nothing the kernel may keep. */
		for (size_t i = 0; i < r.n_refs; i++)
			vn_forget(fs, r.refs[i], 1);
		r.n_refs = 0;
		r.used = 0;
		r.zero = true;
		r.full = false;
		atomic_fetch_add_explicit(&fs->zero_timeouts, 1,
					  memory_order_relaxed);
		rc = rd_fill(fs, n, fi, (uint64_t)off, &r, &ver);
	}
	/* Entries already added (and referenced) must reach the kernel; if
	 * they cannot (the request was interrupted), drop their references. */
	if (rc && r.used == 0) {
		reply_err(req, rc);
	} else if (fuse_reply_buf(req, r.buf, r.used) != 0) {
		for (size_t i = 0; i < r.n_refs; i++)
			vn_forget(fs, r.refs[i], 1);
	}
	if (live)
		pthread_rwlock_unlock(&fs->reply_lock);
	free(r.refs);
	free(r.buf);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	gfs_view_req_begin();
	do_readdir(req, ino, size, off, fi, false);
	gfs_view_req_end();
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	gfs_view_req_begin();
	do_readdir(req, ino, size, off, fi, true);
	gfs_view_req_end();
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct gfs_fs *fs = req_fs(req);

	count(fs, OP_releasedir, vn_get(fs, ino));
	fh_close(fs, fh_of(fi));
	fuse_reply_err(req, 0);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct gfs_fs *fs = req_fs(req);
	struct statvfs sv;

	count(fs, OP_statfs, NULL);
	memset(&sv, 0, sizeof sv);
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	pthread_mutex_lock(&fs->ino_lock);
	sv.f_files = fs->n_vnodes + 1;
	pthread_mutex_unlock(&fs->ino_lock);
	fuse_reply_statfs(req, &sv);
}

/* Without this the kernel takes ENOSYS as "allowed": W_OK would succeed on
 * a file every write to which fails. */
static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct gfs_fs *fs = req_fs(req);

	struct vnode *n = vn_get(fs, ino);
	struct stat st = { .st_mode = 0 };

	count(fs, OP_access, n);
	if (!n)
		{ reply_err(req, ESTALE); return; }
	if (!(mask & W_OK))
		{ fuse_reply_err(req, 0); return; }
	if (gfs_vdesc_frozen(&n->d))
		{ fuse_reply_err(req, EROFS); return; }
	gfs_wr_mode(&n->d, &st);
	fuse_reply_err(req, (st.st_mode & 0200) ? 0 : EACCES);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct gfs_fs *fs = req_fs(req);
	struct vnode *p = vn_get(fs, parent);
	struct fuse_entry_param e;
	struct gfs_vdesc child;
	struct gfs_wobj *h;
	struct stat st;
	struct fh *x;
	int rc;

	(void)mode; /* files are 0644: the node's, not the creator's */
	count(fs, OP_create, p);
	if (!p)
		{ reply_err(req, ESTALE); return; }
	rc = gfs_wr_create(fs->wr, parent, &p->d, name, &h, &child, &st);
	if (rc)
		{ reply_err(req, rc); return; }
	rc = make_entry(fs, parent, name, &child, &st, &e);
	gfs_vdesc_release(&child);
	x = rc ? NULL : fh_new_w(fs, h);
	if (!x) {
		if (!rc)
			vn_forget(fs, e.ino, 1);
		else
			gfs_wr_close(fs->wr, h);
		reply_err(req, rc ? rc : ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)x;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		vn_forget(fs, e.ino, 1);
		fh_close(fs, x);
	}
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct gfs_fs *fs = req_fs(req);
	struct fh *x = fh_of(fi);
	int rc;

	count(fs, OP_write, vn_get(fs, ino));
	if (!x->w)
		{ reply_err(req, EBADF); return; }
	if (off < 0)
		{ reply_err(req, EINVAL); return; }
	rc = gfs_wr_write(fs->wr, x->w, (uint64_t)off, buf, size);
	if (rc)
		reply_err(req, rc);
	else
		fuse_reply_write(req, size);
}

/* FLUSH (each close) and FSYNC commit the handle's bytes if they changed,
 * then wait until the notifier has shown that version to this mount's
 * readers: the kernel holds no directory lock here (docs/mount.md). */
static void commit_handle(fuse_req_t req, struct gfs_fs *fs,
			  struct fuse_file_info *fi)
{
	struct fh *x = fh_of(fi);
	struct gfs_writer who;
	uint64_t ver = 0;
	int rc;

	if (!x || !x->w)
		{ fuse_reply_err(req, 0); return; }
	who_of(req, &who);
	rc = gfs_wr_flush(fs->wr, x->w, &who, &ver);
	if (!rc && ver)
		fsi_seen_wait(fs, ver);
	reply_err(req, rc);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct gfs_fs *fs = req_fs(req);

	count(fs, OP_flush, vn_get(fs, ino));
	commit_handle(req, fs, fi);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct gfs_fs *fs = req_fs(req);

	(void)datasync;
	count(fs, OP_fsync, vn_get(fs, ino));
	commit_handle(req, fs, fi);
}

/* chmod/chown to what the file already has succeed (cp -a, rsync -a),
 * others are EPERM; times are accepted and ignored (mtimes are commit
 * times); a size truncates the handle, or commits at once (truncate(1)). */
static int setattr_do(fuse_req_t req, struct gfs_fs *fs, struct vnode *n,
		      struct stat *a, int set, struct fuse_file_info *fi,
		      struct stat *st)
{
	struct fh *x = fi ? fh_of(fi) : NULL;
	struct gfs_writer who;
	uint64_t ver = 0;
	int rc;

	gfs_view_getattr(fs->v, &n->d, st);
	rc = gfs_wr_getattr(fs->wr, n->ino, &n->d, st);
	if (rc)
		return rc;
	gfs_wr_mode(&n->d, st);
	if (gfs_wr_readonly(&n->d))
		return -EROFS;
	/* A WFILE is the daemon's (rsync fchmods its temporary to 0600
	 * first): mode and owner accepted and ignored. */
	if (n->d.kind == GFS_VK_WFILE)
		set &= ~(FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID);
	if ((set & FUSE_SET_ATTR_MODE) && (a->st_mode & 07777) != (st->st_mode & 07777))
		return -EPERM;
	if (((set & FUSE_SET_ATTR_UID) && a->st_uid != st->st_uid) ||
	    ((set & FUSE_SET_ATTR_GID) && a->st_gid != st->st_gid))
		return -EPERM;
	if (!(set & FUSE_SET_ATTR_SIZE))
		return 0;
	if (x && x->w) {
		rc = gfs_wr_truncate(fs->wr, x->w, (uint64_t)a->st_size);
		st->st_size = (off_t)gfs_wr_size(fs->wr, x->w);
		return rc;
	}
	if (S_ISDIR(st->st_mode))
		return -EISDIR;
	who_of(req, &who);
	rc = gfs_wr_truncate_path(fs->wr, n->ino, &n->d, (uint64_t)a->st_size,
				  &who, &ver);
	if (!rc) {
		st->st_size = a->st_size;
		if (ver)
			fsi_seen_wait(fs, ver);
	}
	return rc;
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *a,
		       int set, struct fuse_file_info *fi)
{
	struct gfs_fs *fs = req_fs(req);
	struct vnode *n = vn_get(fs, ino);
	struct stat st;
	int rc;

	count(fs, OP_setattr, n);
	if (!n)
		{ reply_err(req, ESTALE); return; }
	rc = setattr_do(req, fs, n, a, set, fi, &st);
	if (rc)
		{ reply_err(req, rc); return; }
	st.st_ino = ino;
	fuse_reply_attr(req, &st, 0);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct gfs_fs *fs = req_fs(req);
	struct vnode *p = vn_get(fs, parent);
	struct gfs_writer who;
	int rc;

	count(fs, OP_unlink, p);
	if (!p)
		{ reply_err(req, ESTALE); return; }
	who_of(req, &who);
	/* No wait for the notifier: the kernel holds the directory's lock
	 * and drops the name itself when this succeeds. */
	rc = gfs_wr_unlink(fs->wr, parent, &p->d, name, &who);
	if (!rc)
		fsi_notifier_kick(fs);
	reply_err(req, rc);
}

/* The inode of node file name in p, if the kernel may hold it. */
static uint64_t renamed_source(struct gfs_fs *fs, struct vnode *p,
			       const char *name)
{
	struct gfs_vdesc c;
	uint64_t ino = 0;

	if (p->d.kind != GFS_VK_TYPEDIR ||
	    gfs_view_lookup(fs->v, &p->d, name, &c, NULL))
		return 0;
	if (c.kind == GFS_VK_NODEFILE)
		ino = gfs_vdesc_ino(&c);
	gfs_vdesc_release(&c);
	return ino;
}

static void note_renamed(struct gfs_fs *fs, uint64_t ino, const char *newname)
{
	struct vnode *n;
	size_t stem;

	if (!gfs_name_is_json(newname, strlen(newname), &stem))
		return; /* to a scratch name: it keeps showing the old bytes */
	pthread_mutex_lock(&fs->ino_lock);
	n = fsi_vn_find_locked(fs, ino);
	if (n) {
		free(n->renamed);
		n->renamed = gfs_strdup(newname);
	}
	pthread_mutex_unlock(&fs->ino_lock);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct gfs_fs *fs = req_fs(req);
	struct vnode *p = vn_get(fs, parent), *np = vn_get(fs, newparent);
	struct gfs_writer who;
	uint64_t src_ino;
	int rc;

	count(fs, OP_rename, p);
	if (!p || !np)
		{ reply_err(req, ESTALE); return; }
	who_of(req, &who);
	src_ino = renamed_source(fs, p, name);
	rc = gfs_wr_rename(fs->wr, parent, &p->d, name, newparent, &np->d,
			   newname, flags, &who);
	if (!rc && src_ino)
		note_renamed(fs, src_ino, newname);
	if (!rc)
		fsi_notifier_kick(fs);
	reply_err(req, rc);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	struct gfs_fs *fs = req_fs(req);
	struct vnode *p = vn_get(fs, parent);
	struct fuse_entry_param e;
	struct gfs_writer who;
	struct gfs_vdesc child;
	struct stat st;
	int rc;

	count(fs, OP_symlink, p);
	if (!p)
		{ reply_err(req, ESTALE); return; }
	who_of(req, &who);
	rc = gfs_wr_symlink(fs->wr, &p->d, name, link, &who);
	if (!rc)
		fsi_notifier_kick(fs);
	/* The reply is the new link as the new head shows it. */
	if (!rc)
		rc = gfs_view_lookup(fs->v, &p->d, name, &child, &st);
	if (rc)
		{ reply_err(req, rc); return; }
	rc = make_entry(fs, parent, name, &child, &st, &e);
	gfs_vdesc_release(&child);
	if (rc)
		{ reply_err(req, rc); return; }
	e.entry_timeout = e.attr_timeout = 0;
	if (fuse_reply_entry(req, &e) == -ENOENT)
		vn_forget(fs, e.ino, 1);
}

/* Directories are the graph's (a type's, a node's): none is made or
 * removed by hand (docs/semantics.md, Writes). */
static int dir_op(struct gfs_fs *fs, fuse_ino_t parent)
{
	struct vnode *p = vn_get(fs, parent);

	return p && gfs_wr_readonly(&p->d) ? EROFS : EPERM;
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	(void)name; (void)mode; (void)rdev;
	count(req_fs(req), OP_mknod, NULL);
	fuse_reply_err(req, dir_op(req_fs(req), parent));
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	(void)name; (void)mode;
	count(req_fs(req), OP_mkdir, NULL);
	fuse_reply_err(req, dir_op(req_fs(req), parent));
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)name;
	count(req_fs(req), OP_rmdir, NULL);
	fuse_reply_err(req, dir_op(req_fs(req), parent));
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	(void)ino; (void)newname;
	count(req_fs(req), OP_link, NULL);
	fuse_reply_err(req, dir_op(req_fs(req), newparent));
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
			 off_t len, struct fuse_file_info *fi)
{
	(void)ino; (void)mode; (void)off; (void)len; (void)fi;
	count(req_fs(req), OP_fallocate, NULL);
	fuse_reply_err(req, EOPNOTSUPP);
}

/* Extended attributes are not supported (ENOTSUP), and under versions/
 * nothing may be written (EROFS).  The superblock is writable without
 * -o ro (fuse/main.c, add_fsname), so the kernel no longer answers EROFS
 * first, and an unimplemented handler would make it ENOTSUP there too. */
static void xattr_write(fuse_req_t req, fuse_ino_t ino, enum op op)
{
	struct gfs_fs *fs = req_fs(req);
	struct vnode *n = vn_get(fs, ino);

	count(fs, op, n);
	fuse_reply_err(req, n && (gfs_vdesc_frozen(&n->d) ||
				  n->d.kind == GFS_VK_VERSIONS) ? EROFS : ENOTSUP);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	(void)name; (void)value; (void)size; (void)flags;
	xattr_write(req, ino, OP_setxattr);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)name;
	xattr_write(req, ino, OP_removexattr);
}

static const struct fuse_lowlevel_ops gfs_ops = {
	.init = ll_init,
	.destroy = ll_destroy,
	.lookup = ll_lookup,
	.forget = ll_forget,
	.forget_multi = ll_forget_multi,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.readlink = ll_readlink,
	.mknod = ll_mknod,
	.mkdir = ll_mkdir,
	.unlink = ll_unlink,
	.rmdir = ll_rmdir,
	.symlink = ll_symlink,
	.rename = ll_rename,
	.link = ll_link,
	.open = ll_open,
	.read = ll_read,
	.write = ll_write,
	.release = ll_release,
	.opendir = ll_opendir,
	.readdir = ll_readdir,
	.readdirplus = ll_readdirplus,
	.releasedir = ll_releasedir,
	.statfs = ll_statfs,
	.access = ll_access,
	.create = ll_create,
	.fallocate = ll_fallocate,
	.flush = ll_flush,
	.fsync = ll_fsync,
	.setxattr = ll_setxattr,
	.removexattr = ll_removexattr,
	/* getxattr/listxattr stay unimplemented: libfuse answers ENOSYS once
	 * and the kernel stops asking (DESIGN.md §5). */
};

const struct fuse_lowlevel_ops *gfs_fs_ops(void)
{
	return &gfs_ops;
}

/* ---- lifecycle --------------------------------------------------------- */

int gfs_fs_new(struct gfs_graph *g, const struct gfs_fs_opts *o,
	       struct gfs_fs **out)
{
	struct gfs_view_opts vo = { .tver_cache = o->tver_cache,
				    .status = status_cb };
	struct gfs_fs *fs = calloc(1, sizeof *fs);
	int rc;

	if (!fs)
		return -ENOMEM;
	fs->g = g;
	fs->o = *o;
	if (!fs->o.poll_ms)
		fs->o.poll_ms = 20;
	if (!fs->o.max_vnodes)
		fs->o.max_vnodes = 200000;
	fs->n_buckets = 1024;
	fs->buckets = calloc(fs->n_buckets, sizeof *fs->buckets);
	fs->kbuckets = calloc(fs->n_buckets, sizeof *fs->kbuckets);
	fs->root = calloc(1, sizeof *fs->root + 1);
	vo.status_arg = fs;
	rc = fs->buckets && fs->kbuckets && fs->root ?
	     gfs_view_new(g, &vo, &fs->v) : -ENOMEM;
	if (rc) {
		free(fs->buckets);
		free(fs->kbuckets);
		free(fs->root);
		free(fs);
		return rc;
	}
	/* etcd: the lock layer's client (table leases of the mount's writes,
	 * version holds) waits no longer per member than the manifest's
	 * (below), so no request outlasts the mount's bound.  Before any
	 * lock is taken: the client is opened by the first. */
	gfs_lock_set_etcd_timeouts(GFS_FS_ETCD_TIMEOUT_MS, 1);
	rc = gfs_wr_new(g, fs->v, o->mountpoint, &fs->wr);
	/* Without the lock file (a store on a read-only file system that
	 * never had one) the mount holds nothing: a gc cannot run there. */
	if (!rc && gfs_holds_new(gfs_graph_dir(g), &fs->holds))
		fs->holds = NULL;
	if (rc) {
		gfs_view_free(fs->v);
		free(fs->buckets);
		free(fs->kbuckets);
		free(fs->root);
		free(fs);
		return rc;
	}
	pthread_mutex_init(&fs->seen_lock, NULL);
	pthread_cond_init(&fs->seen_cond, NULL);
	gfs_view_root(fs->v, &fs->root->d);
	fs->root->ino = FUSE_ROOT_ID;
	fs->root->nlookup = 1;
	pthread_mutex_init(&fs->ino_lock, NULL);
	pthread_mutex_init(&fs->fh_lock, NULL);
	pthread_mutex_init(&fs->io_lock, NULL);
	pthread_mutex_init(&fs->mf_lock, NULL);
	fs->etcd = gfs_manifest_etcd(gfs_graph_manifest(g));
	/* A request of the mount (and a read of the notifier) waits at most
	 * GFS_FS_ETCD_TIMEOUT_MS per member, each tried once, for a cluster
	 * that does not answer (6 s with three members, not graphctl's 30 s):
	 * a FUSE request blocks its caller meanwhile, and the kernel has no
	 * timeout of its own.  The mount's requests are small (a key, a page
	 * of 256), so 2 s is far above what a live cluster takes. */
	if (fs->etcd)
		gfs_etcd_set_timeouts(fs->etcd, GFS_FS_ETCD_TIMEOUT_MS, 1);
	fs->fhs.next = fs->fhs.prev = &fs->fhs;
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	/* The notifier's barrier must not wait behind a stream of readers. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fs->reply_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&fs->stop_lock, NULL);
	pthread_cond_init(&fs->stop_cond, NULL);
	*out = fs;
	return 0;
}

void gfs_fs_free(struct gfs_fs *fs)
{
	if (!fs)
		return;
	gfs_fs_notifier_stop(fs);
	while (fs->fhs.next != &fs->fhs)
		fh_close(fs, fs->fhs.next);
	gfs_wr_free(fs->wr); /* deletions still pending are done now */
	gfs_holds_free(fs->holds);
	for (size_t b = 0; b < fs->n_buckets; b++) {
		while (fs->buckets[b]) {
			struct vnode *n = fs->buckets[b];

			fs->buckets[b] = n->next;
			vn_free(n);
		}
	}
	free(fs->buckets);
	free(fs->kbuckets);
	gfs_vdesc_release(&fs->root->d);
	free(fs->root);
	gfs_view_free(fs->v);
	pthread_mutex_destroy(&fs->ino_lock);
	pthread_mutex_destroy(&fs->fh_lock);
	pthread_mutex_destroy(&fs->io_lock);
	pthread_mutex_destroy(&fs->mf_lock);
	pthread_rwlock_destroy(&fs->reply_lock);
	pthread_mutex_destroy(&fs->stop_lock);
	pthread_cond_destroy(&fs->stop_cond);
	pthread_mutex_destroy(&fs->seen_lock);
	pthread_cond_destroy(&fs->seen_cond);
	free(fs);
}
