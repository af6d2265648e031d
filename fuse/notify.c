/* notify.c - the live view's notifier (docs/mount.md, "The live view and
 * the notifier"): a thread that follows the manifest head, collects what a
 * new graph version changed under fs->ino_lock, releases it, and calls
 * fuse_lowlevel_notify_* holding no lock (those calls block in the kernel
 * on inode locks that in-flight requests may hold).  Stopping it is
 * bounded (docs/mount.md, "Shutdown").
 *
 * On LMDB it reads the head every poll_ms (a read of a local file).  On
 * etcd (docs/multi-host.md §5) it reads the manifest only when woken: by
 * an etcd watch of PREFIX/gen/ (an event on the generation key of
 * versions, branches or meta, which every publish, branch change and gc
 * rewrites), by a local write (kick, seen_wait), or by the start of the
 * watch itself.  Invariants (docs/invariants.md 320-328 has the rest):
 *   1. No commit is missed: the watch is created before the first read
 *      (a wake is set once it exists), so a commit before it is found by
 *      that read and one after it by an event; a stream that drops
 *      resumes from the last delivered revision + 1 (etcd_watch.c), one
 *      that cannot resume (compacted) is replaced by a new watch and a
 *      read.
 *   2. No periodic request to etcd while it answers: fs->polls stays 0.
 *      While it does not (a probe failed), one probe a second finds out
 *      when it is back; then the manifest is read once (what committed
 *      meanwhile becomes visible) and the report clears.
 *   3. A failed read never moves the view: the head or branches read as
 *      0 are ignored, the state kept, and the read runs again after
 *      poll_ms (or, if a probe finds etcd down, once it answers).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>

#include "etcd.h"
#include "failpoints.h"
#include "fs_int.h"
#include "holds.h"

struct inval {
	uint64_t ino, parent;
	char *name;
	bool inode;          /* inval_inode(ino): attributes, pages, listing */
	bool entry;          /* inval_entry(parent, name) */
	bool check;          /* entry only if the name now means another inode */
	struct gfs_vdesc pd; /* check: the parent, to look the name up again */
};

struct invals {
	struct inval *a;
	size_t n, cap;
	const char **tables; /* tables whose pins moved */
	size_t n_tables, cap_tables;
	bool schema_moved;
};

static void add_table(void *arg, const char *table)
{
	struct invals *iv = arg;

	for (size_t i = 0; i < iv->n_tables; i++)
		if (iv->tables[i] == table)
			return;
	const char **p = gfs_array_grow(iv->tables, &iv->cap_tables,
					iv->n_tables, sizeof *p, 16);

	if (!p) {
		iv->schema_moved = true; /* invalidate everything */
		return;
	}
	iv->tables = p;
	iv->tables[iv->n_tables++] = table;
}

/* Whether what d shows may have moved.  out/ and in/ list the edge types
 * a node has, so any moved edge table may change them. */
static bool touches(const struct invals *iv, const struct gfs_vdesc *d)
{
	bool sides = d->kind == GFS_VK_NODEOUT || d->kind == GFS_VK_NODEIN;

	if (iv->schema_moved)
		return true;
	for (size_t i = 0; i < iv->n_tables; i++)
		if (gfs_vdesc_uses(d, iv->tables[i]) ||
		    (sides && iv->tables[i][0] == 'e'))
			return true;
	return false;
}

static struct inval *inval_add(struct invals *iv)
{
	struct inval *p = gfs_array_grow(iv->a, &iv->cap, iv->n, sizeof *p, 64);

	if (!p)
		return NULL;
	iv->a = p;
	memset(&iv->a[iv->n], 0, sizeof iv->a[0]);
	return &iv->a[iv->n++];
}

/* An invalidation for vnode n; check: its entry only if the name now
 * means another inode (looked up again after the lock is released). */
static void add_vnode(struct gfs_fs *fs, struct invals *iv,
		      const struct vnode *n, bool inode, bool entry, bool check)
{
	struct inval *x = inval_add(iv);

	if (!x)
		return;
	x->ino = n->ino;
	x->parent = n->parent;
	x->inode = inode;
	x->entry = entry;
	x->check = check;
	if ((entry || check) && n->name[0])
		x->name = gfs_strdup(n->name);
	if (check) {
		struct vnode *p = fsi_vn_find_locked(fs, n->parent);

		if (!p || gfs_vdesc_copy(&x->pd, &p->d))
			x->check = false, x->entry = true; /* be safe */
	}
}

/* What a new head may have changed about one live vnode. */
static void collect_one(struct gfs_fs *fs, struct invals *iv,
			const struct vnode *n)
{
	const struct gfs_vdesc *d = &n->d;
	bool entry = false, check = false, inode = false;

	switch (d->kind) {
	case GFS_VK_ROOT: case GFS_VK_VERSIONS: case GFS_VK_LOG:
	case GFS_VK_NODES: case GFS_VK_EDGES:
		inode = true;
		break;
	case GFS_VK_HEAD: case GFS_VK_MANIFEST:
		entry = true;
		break;
	case GFS_VK_GFSDIR: case GFS_VK_GFSFILE:
		return; /* direct I/O, sizes computed on every stat */
	default:
		if (!touches(iv, d))
			return;
		inode = gfs_vdesc_is_dir(d);
		check = true;
		break;
	}
	add_vnode(fs, iv, n, inode, entry, check);
}

static void collect(struct gfs_fs *fs, struct invals *iv)
{
	pthread_mutex_lock(&fs->ino_lock);
	collect_one(fs, iv, fs->root);
	for (size_t b = 0; b < fs->n_buckets; b++)
		for (struct vnode *n = fs->buckets[b]; n; n = n->next)
			if (!gfs_vdesc_frozen(&n->d))
				collect_one(fs, iv, n);
	pthread_mutex_unlock(&fs->ino_lock);
}

/* ---- targeted collection: what the changed rows affect --------------- */

/* A row a commit added, changed or removed (for an edge whose ends moved,
 * once with its old ends, gone, and once with its new ones). */
struct chg {
	const char *table; /* interned */
	bool edge, gone;
	char *id, *src, *dst;
	size_t id_len, src_len, dst_len;
};

struct chgs {
	struct chg *a;
	size_t n, cap, limit;
	const char *table; /* the table being diffed */
	bool full;         /* too many (or no memory): scan every vnode */
};

static int chg_add(struct chgs *cs, const struct gfs_row *r, bool gone)
{
	struct chg *c = NULL;

	if (cs->n < cs->limit)
		c = gfs_array_grow(cs->a, &cs->cap, cs->n, sizeof *c, 64);
	if (!c) {
		cs->full = true; /* too many, or no memory: scan instead */
		return 1;
	}
	cs->a = c;
	c = &cs->a[cs->n];
	memset(c, 0, sizeof *c);
	c->table = cs->table;
	c->edge = r->src != NULL;
	c->gone = gone;
	c->id = gfs_memdup(r->id, r->id_len);
	c->src = c->edge ? gfs_memdup(r->src, r->src_len) : NULL;
	c->dst = c->edge ? gfs_memdup(r->dst, r->dst_len) : NULL;
	c->id_len = r->id_len;
	c->src_len = r->src_len;
	c->dst_len = r->dst_len;
	cs->n++;
	if (!c->id || (c->edge && (!c->src || !c->dst))) {
		cs->full = true;
		return 1;
	}
	return 0;
}

static bool same_bytes(const char *a, size_t al, const char *b, size_t bl)
{
	return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

static int on_row(void *arg, const struct gfs_row *o, const struct gfs_row *n)
{
	struct chgs *cs = arg;
	int rc = 0;

	if (o && (!n || (o->src && !(same_bytes(o->src, o->src_len, n->src, n->src_len) &&
				    same_bytes(o->dst, o->dst_len, n->dst, n->dst_len)))))
		rc = chg_add(cs, o, true);
	if (!rc && n)
		rc = chg_add(cs, n, false);
	return rc;
}

static void chgs_release(struct chgs *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		free(cs->a[i].id);
		free(cs->a[i].src);
		free(cs->a[i].dst);
	}
	free(cs->a);
	memset(cs, 0, sizeof *cs);
}

static bool key_is(const struct vnode *n, const char *k, size_t kl)
{
	return same_bytes(n->d.key ? n->d.key : "", n->d.key_len, k ? k : "", kl);
}

/* Names and directories without a key: the root's neighbours, and the
 * type directories and table files of moved tables. */
static void targeted_fixed(struct gfs_fs *fs, struct invals *iv)
{
	collect_one(fs, iv, fs->root);
	for (struct vnode *n = fsi_by_key_locked(fs, "", 0); n; n = n->knext) {
		if (!key_is(n, "", 0))
			continue;
		switch (n->d.kind) {
		case GFS_VK_VERSIONS: case GFS_VK_NODES: case GFS_VK_EDGES:
		case GFS_VK_LOG: case GFS_VK_HEAD: case GFS_VK_MANIFEST:
			collect_one(fs, iv, n);
			break;
		case GFS_VK_TYPEDIR:
			if (touches(iv, &n->d))
				add_vnode(fs, iv, n, true, false, false);
			break;
		case GFS_VK_TABLEFILE:
			if (touches(iv, &n->d))
				add_vnode(fs, iv, n, false, true, false);
			break;
		default:
			break;
		}
	}
}

/* The vnodes showing row c itself: its file, its node directory (and
 * out/, in/), an edge's file and its links. */
static void targeted_row(struct gfs_fs *fs, struct invals *iv,
			 const struct chg *c)
{
	for (struct vnode *n = fsi_by_key_locked(fs, c->id, c->id_len); n;
	     n = n->knext) {
		const struct gfs_vdesc *d = &n->d;

		if (!key_is(n, c->id, c->id_len))
			continue;
		if (!c->edge && d->table == c->table) {
			if (d->kind == GFS_VK_NODEFILE)
				add_vnode(fs, iv, n, false, true, false);
			else if (d->kind == GFS_VK_NODEDIR)
				add_vnode(fs, iv, n, true, c->gone, false);
			else if (d->kind == GFS_VK_NODEOUT || d->kind == GFS_VK_NODEIN)
				add_vnode(fs, iv, n, true, false, false);
		} else if (c->edge && ((d->kind == GFS_VK_EDGEFILE && d->table == c->table) ||
				       (d->kind == GFS_VK_EDGELINK && d->table2 == c->table))) {
			add_vnode(fs, iv, n, false, true, false);
		}
	}
}

/* The directories listing edge c at its end `side` (0 source, 1 target). */
static void targeted_end(struct gfs_fs *fs, struct invals *iv,
			 const struct chg *c, int side)
{
	const char *k = side ? c->dst : c->src;
	size_t kl = side ? c->dst_len : c->src_len;

	for (struct vnode *n = fsi_by_key_locked(fs, k, kl); n; n = n->knext) {
		const struct gfs_vdesc *d = &n->d;

		if (!key_is(n, k, kl))
			continue;
		if (!side && d->kind == GFS_VK_SRCDIR && d->table == c->table)
			add_vnode(fs, iv, n, true, false, c->gone);
		else if (d->kind == GFS_VK_ETDIR && d->table2 == c->table &&
			 d->sub == side)
			add_vnode(fs, iv, n, true, false, false);
		else if (d->kind == (side ? GFS_VK_NODEIN : GFS_VK_NODEOUT))
			add_vnode(fs, iv, n, true, false, false);
	}
}

static int by_ino(const void *a, const void *b)
{
	const struct inval *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* One invalidation per inode (a vnode has one parent and name). */
static void invals_merge(struct invals *iv)
{
	size_t w = 0;

	if (!iv->n) /* iv->a is NULL: qsort must not see it (UBSan) */
		return;
	qsort(iv->a, iv->n, sizeof *iv->a, by_ino);
	for (size_t r = 0; r < iv->n; r++) {
		struct inval *x = &iv->a[r];

		if (w && iv->a[w - 1].ino == x->ino) {
			struct inval *y = &iv->a[w - 1];

			y->inode |= x->inode;
			y->entry |= x->entry;
			if (!y->check && x->check) {
				y->check = true;
				y->pd = x->pd;
				memset(&x->pd, 0, sizeof x->pd);
			}
			if (!y->name) {
				y->name = x->name;
				x->name = NULL;
			}
			free(x->name);
			gfs_vdesc_release(&x->pd);
			continue;
		}
		iv->a[w++] = *x;
	}
	iv->n = w;
}

static void collect_targeted(struct gfs_fs *fs, struct invals *iv,
			     const struct chgs *cs)
{
	pthread_mutex_lock(&fs->ino_lock);
	targeted_fixed(fs, iv);
	for (size_t i = 0; i < cs->n; i++) {
		targeted_row(fs, iv, &cs->a[i]);
		if (cs->a[i].edge) {
			targeted_end(fs, iv, &cs->a[i], 0);
			targeted_end(fs, iv, &cs->a[i], 1);
		}
	}
	pthread_mutex_unlock(&fs->ino_lock);
	invals_merge(iv);
}

/* The rows every moved table changed, unless that costs more than a scan
 * of the vnodes (more rows than vnodes, a table added or dropped). */
static bool diff_tables(struct gfs_fs *fs, const struct invals *iv,
			uint64_t old, uint64_t head, struct chgs *cs)
{
	pthread_mutex_lock(&fs->ino_lock);
	cs->limit = fs->n_vnodes + 1024;
	pthread_mutex_unlock(&fs->ino_lock);
	for (size_t i = 0; i < iv->n_tables && !cs->full; i++) {
		cs->table = iv->tables[i];
		if (gfs_view_diff_rows(fs->v, cs->table, old, head, on_row, cs) < 0)
			cs->full = true;
	}
	return !cs->full;
}

/* Still the same inode under the same name at the new head? */
static bool still_same(struct gfs_fs *fs, const struct inval *x)
{
	struct gfs_vdesc child;
	struct stat st;
	bool same;

	if (gfs_view_lookup(fs->v, &x->pd, x->name, &child, &st))
		return false;
	same = (uint64_t)st.st_ino == x->ino;
	gfs_vdesc_release(&child);
	return same;
}

static bool stopping(struct gfs_fs *fs)
{
	return atomic_load(&fs->stopping);
}

/* No lock held here: notify calls wait for kernel inode locks.  Ends
 * early when the daemon stops (no notify call after the session ends). */
static void apply(struct gfs_fs *fs, struct invals *iv)
{
	for (size_t i = 0; i < iv->n && !stopping(fs); i++) {
		struct inval *x = &iv->a[i];
		bool entry = x->entry;

		if (x->check && x->name)
			entry = !still_same(fs, x);
		if (x->inode) {
			fuse_lowlevel_notify_inval_inode(fs->se, x->ino, 0, 0);
			atomic_fetch_add(&fs->inval_inode, 1);
		}
		if (entry && x->name) {
			fuse_lowlevel_notify_inval_entry(fs->se, x->parent,
							 x->name, strlen(x->name));
			atomic_fetch_add(&fs->inval_entry, 1);
		}
	}
}

static void invals_release(struct invals *iv)
{
	for (size_t i = 0; i < iv->n; i++) {
		free(iv->a[i].name);
		gfs_vdesc_release(&iv->a[i].pd);
	}
	free(iv->a);
	free(iv->tables);
	memset(iv, 0, sizeof *iv);
}

/* From the commit of graph version head (any branch's) to now. */
static void note_lag(struct gfs_fs *fs, uint64_t head)
{
	uint64_t now = gfs_now_ns(), lag, t = gfs_view_time_of(fs->v, head);

	if (!t)
		return;
	lag = now > t ? (now - t) / 1000000u : 0;
	atomic_store(&fs->lag_ms_last, lag);
	if (lag > ld(&fs->lag_ms_max))
		atomic_store(&fs->lag_ms_max, lag);
}

/* Replies built from versions before head are uncacheable from here on;
 * the barrier waits for the replies already on their way. */
static void epoch_advance(struct gfs_fs *fs, uint64_t head, uint64_t main_head)
{
	if (main_head)
		atomic_store(&fs->epoch_main, main_head);
	atomic_store(&fs->epoch, head);
	pthread_rwlock_wrlock(&fs->reply_lock);
	pthread_rwlock_unlock(&fs->reply_lock);
}

/* branches/ and every vnode of a branch's live view: any new graph
 * version may be a branch's (or a branch was created or deleted), and
 * there are few such vnodes, so they are invalidated as if everything
 * moved (docs/mount.md, "Branches"). */
static void collect_branches(struct gfs_fs *fs, struct invals *iv)
{
	bool was = iv->schema_moved;

	iv->schema_moved = true;
	pthread_mutex_lock(&fs->ino_lock);
	for (size_t b = 0; b < fs->n_buckets; b++)
		for (struct vnode *n = fs->buckets[b]; n; n = n->next)
			if (gfs_vdesc_in_branch(&n->d))
				collect_one(fs, iv, n);
	pthread_mutex_unlock(&fs->ino_lock);
	iv->schema_moved = was;
	invals_merge(iv);
}

/* A branch was created or deleted (no graph version was written):
 * branches/ and the branch views. */
static void branches_changed(struct gfs_fs *fs)
{
	struct invals iv;

	memset(&iv, 0, sizeof iv);
	collect_branches(fs, &iv);
	apply(fs, &iv);
	invals_release(&iv);
}

/* The global head moved to head; main (the root) from old to main_head. */
static void follow(struct gfs_fs *fs, uint64_t old, uint64_t main_head,
		   uint64_t head)
{
	struct chgs cs = {0};
	struct invals iv;

	memset(&iv, 0, sizeof iv);
	epoch_advance(fs, head, main_head);
	/* Without the list of moved tables, everything live may have moved. */
	iv.schema_moved = !old || !main_head ||
			  gfs_view_diff(fs->v, old, main_head, add_table, &iv) ||
			  gfs_view_schema_moved(fs->v, old, main_head);
	if (!iv.schema_moved && diff_tables(fs, &iv, old, main_head, &cs)) {
		collect_targeted(fs, &iv, &cs);
		atomic_fetch_add(&fs->rows_changed, cs.n);
	} else {
		collect(fs, &iv);
		atomic_fetch_add(&fs->full_scans, 1);
	}
	chgs_release(&cs);
	collect_branches(fs, &iv);
	/* Tests park here to stop the daemon with invalidations pending. */
	gfs_fp_hit(GFS_FP_NOTIFIER_BEFORE_APPLY);
	apply(fs, &iv);
	invals_release(&iv);
	atomic_fetch_add(&fs->versions_seen, 1);
	atomic_store(&fs->head_seen, head); /* .graphfs/seen */
	pthread_mutex_lock(&fs->seen_lock);
	pthread_cond_broadcast(&fs->seen_cond);
	pthread_mutex_unlock(&fs->seen_lock);
	note_lag(fs, head);
}

/* Waits poll_ms (on etcd: the pruner's pace, no request) or until woken;
 * *woken = a wake was asked for (and is now taken). */
static bool wait_stop(struct gfs_fs *fs, bool *woken)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)fs->o.poll_ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&fs->stop_lock);
	if (!fs->stop && !fs->wake)
		pthread_cond_timedwait(&fs->stop_cond, &fs->stop_lock, &ts);
	stop = fs->stop;
	*woken = fs->wake;
	fs->wake = false;
	pthread_mutex_unlock(&fs->stop_lock);
	return stop;
}

static void wake(struct gfs_fs *fs)
{
	pthread_mutex_lock(&fs->stop_lock);
	fs->wake = true;
	pthread_cond_signal(&fs->stop_cond); /* read now, not at poll_ms */
	pthread_mutex_unlock(&fs->stop_lock);
}

void fsi_notifier_kick(struct gfs_fs *fs)
{
	if (!fs->notifier_running)
		return;
	wake(fs);
}

/* ---- etcd: the watch, the outage report -------------------------------- */

/* The probe's and the watch's client: one try per endpoint, 1 s each, so
 * a probe of a cluster that does not answer ends within n seconds. */
#define WD_TIMEOUT_MS 1000
#define WD_CONNECT_MS 500
/* While etcd does not answer, how often the notifier asks again. */
#define PROBE_EVERY_NS (1000u * 1000000u)

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void mf_set(struct gfs_fs *fs, bool down, const char *why)
{
	pthread_mutex_lock(&fs->mf_lock);
	if (down && !fs->mf_down) {
		fs->mf_since_ns = gfs_now_ns();
		atomic_fetch_add(&fs->outages, 1);
	}
	fs->mf_down = down;
	snprintf(fs->mf_error, sizeof fs->mf_error, "%s", down && why ? why : "");
	pthread_mutex_unlock(&fs->mf_lock);
	gfs_view_set_offline(fs->v, down);
}

static bool mf_is_down(struct gfs_fs *fs)
{
	pthread_mutex_lock(&fs->mf_lock);
	bool down = fs->mf_down;
	pthread_mutex_unlock(&fs->mf_lock);
	return down;
}

/* Which generation keys wake the notifier: what a publish (versions), a
 * branch change (branches, meta's branches counter) and a gc (meta) write.
 * Sidecars, audit records and reservations move no view. */
static bool gen_moves_view(const struct gfs_etcd_kv *kv, size_t plen)
{
	static const char *const dbs[] = { "versions", "branches", "meta" };
	const char *db = kv->key + plen;
	size_t n = kv->key_len - plen;

	for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++)
		if (n == strlen(dbs[i]) && !memcmp(db, dbs[i], n))
			return true;
	return false;
}

static void on_watch(void *arg, const struct gfs_etcd_event *ev, size_t n,
		     int64_t header_rev)
{
	struct gfs_fs *fs = arg;
	size_t plen = strlen(gfs_etcd_prefix(fs->wd)) + 5; /* PREFIX/gen/ */
	bool moved = false;

	(void)header_rev;
	atomic_fetch_add(&fs->watch_events, n);
	for (size_t i = 0; i < n; i++)
		if (ev[i].kv.key_len > plen && gen_moves_view(&ev[i].kv, plen))
			moved = true;
	/* an answer from etcd: if it was down, the probe can tell now */
	if (moved || mf_is_down(fs))
		wake(fs);
}

/* The stream dropped (a member died or lost its leader; etcd_watch.c
 * reconnects by itself) or ended for good (compacted: start anew).  A
 * probe then says whether etcd as a whole answers. */
static void on_watch_error(void *arg, int rc, bool fatal, const char *msg)
{
	struct gfs_fs *fs = arg;

	(void)rc;
	atomic_fetch_add(&fs->watch_errors, 1);
	pthread_mutex_lock(&fs->mf_lock);
	snprintf(fs->mf_watch_error, sizeof fs->mf_watch_error, "%s", msg ? msg : "");
	fs->mf_probe_ns = 0; /* probe at the next wake */
	pthread_mutex_unlock(&fs->mf_lock);
	if (fatal)
		atomic_store(&fs->watch_restart, true);
	wake(fs);
}

/* One read of PREFIX/gen/versions through wd, which tries every endpoint:
 * 0, or the outage recorded with the endpoints tried and why. */
static int probe(struct gfs_fs *fs)
{
	const char *p = gfs_etcd_prefix(fs->wd);
	char key[300];
	struct gfs_etcd_kv kv;
	struct gfs_diag d = {0};
	bool found;
	int rc;

	snprintf(key, sizeof key, "%s/gen/versions", p);
	atomic_fetch_add(&fs->probes, 1);
	rc = gfs_etcd_get(fs->wd, key, strlen(key), 0, &kv, &found, NULL, &d);
	if (rc) {
		mf_set(fs, true, d.msg[0] ? d.msg : strerror(-rc));
		return rc;
	}
	if (found)
		gfs_etcd_kv_release(&kv);
	mf_set(fs, false, NULL);
	return 0;
}

static int watch_begin(struct gfs_fs *fs)
{
	const char *p = gfs_etcd_prefix(fs->wd);
	char key[300], *end = NULL;
	size_t elen;
	struct gfs_diag d = {0};
	int rc;

	snprintf(key, sizeof key, "%s/gen/", p);
	if ((rc = gfs_etcd_prefix_end(key, strlen(key), &end, &elen)))
		return rc;
	/* From now: the read that follows (a wake) covers what came before. */
	rc = gfs_etcd_watch_start(fs->wd, key, strlen(key), end, elen, 0,
				  on_watch, on_watch_error, fs, &fs->watch, &d);
	free(end);
	if (rc) {
		mf_set(fs, true, d.msg[0] ? d.msg : strerror(-rc));
		return rc;
	}
	atomic_store(&fs->watch_restart, false);
	return 0;
}

/* The notifier's own client, to the manifest's endpoints. */
static int wd_open(struct gfs_fs *fs)
{
	const struct gfs_etcd_url *u = gfs_etcd_endpoints(fs->etcd);
	struct gfs_etcd_opts o = { .timeout_ms = WD_TIMEOUT_MS,
				   .connect_timeout_ms = WD_CONNECT_MS,
				   .rounds = 1,
				   .first_endpoint = gfs_etcd_first_from_env() };
	struct gfs_buf url;
	struct gfs_diag d = {0};
	int rc;

	gfs_buf_init(&url);
	rc = gfs_buf_append(&url, "etcd://", 7);
	for (size_t i = 0; !rc && i < u->n; i++)
		rc = gfs_buf_appendf(&url, "%s%s", i ? "," : "", u->endpoints[i]);
	if (!rc)
		rc = gfs_buf_appendf(&url, "/%s", u->prefix);
	if (!rc)
		rc = gfs_buf_appendc(&url, '\0');
	if (!rc)
		rc = gfs_etcd_open(url.p, &o, &fs->wd, &d);
	gfs_buf_release(&url);
	return rc;
}

/* On etcd, after a wait: whether to read the manifest now. */
static bool etcd_due(struct gfs_fs *fs, bool woken)
{
	uint64_t now = mono_ns();
	bool down, probe_due;

	if (!fs->wd)
		return false; /* no client: the live view stays as it is */
	if (atomic_load(&fs->watch_restart)) {
		gfs_etcd_watch_stop(fs->watch);
		fs->watch = NULL;
	}
	pthread_mutex_lock(&fs->mf_lock);
	down = fs->mf_down;
	/* mf_probe_ns 0: the watch reported trouble, probe at once */
	probe_due = !fs->mf_probe_ns || (down && now - fs->mf_probe_ns >= PROBE_EVERY_NS);
	pthread_mutex_unlock(&fs->mf_lock);
	if (!fs->watch || down || (woken && probe_due)) {
		if (!probe_due)
			return false;
		pthread_mutex_lock(&fs->mf_lock);
		fs->mf_probe_ns = now;
		pthread_mutex_unlock(&fs->mf_lock);
		if (probe(fs))
			return false;
		if (!fs->watch && watch_begin(fs))
			return false;
		return true; /* back (or a new watch): read once */
	}
	return woken;
}

void fsi_manifest_stats(struct gfs_fs *fs, struct gfs_buf *b)
{
	const struct gfs_etcd_url *u;
	char since[40];

	if (!fs->etcd) {
		gfs_buf_appendf(b, "\"manifest\":{\"backend\":\"lmdb\",\"state\":\"ok\"},");
		return;
	}
	u = gfs_etcd_endpoints(fs->etcd);
	pthread_mutex_lock(&fs->mf_lock);
	gfs_buf_appendf(b, "\"manifest\":{\"backend\":\"etcd\",\"state\":\"%s\",",
			fs->mf_down ? "unreachable" : "ok");
	if (fs->mf_down) {
		gfs_time_format(fs->mf_since_ns, since);
		gfs_buf_appendf(b, "\"since\":\"%s\",\"error\":", since);
		gfs_buf_append_json_str(b, fs->mf_error, strlen(fs->mf_error));
		gfs_buf_appendc(b, ',');
	}
	gfs_buf_appendf(b, "\"endpoints\":[");
	for (size_t i = 0; i < u->n; i++) {
		if (i)
			gfs_buf_appendc(b, ',');
		gfs_buf_append_json_str(b, u->endpoints[i], strlen(u->endpoints[i]));
	}
	gfs_buf_appendf(b, "],\"prefix\":");
	gfs_buf_append_json_str(b, u->prefix, strlen(u->prefix));
	gfs_buf_appendf(b, ",\"outages\":%" PRIu64 ",\"probes\":%" PRIu64
			",\"watch_last_error\":", ld(&fs->outages), ld(&fs->probes));
	gfs_buf_append_json_str(b, fs->mf_watch_error, strlen(fs->mf_watch_error));
	pthread_mutex_unlock(&fs->mf_lock);
	gfs_buf_append(b, "},", 2);
}

void fsi_manifest_text(struct gfs_fs *fs, struct gfs_buf *b)
{
	const struct gfs_etcd_url *u;
	char since[40];

	if (!fs->etcd) {
		gfs_buf_appendf(b, "manifest: ok (LMDB, %s/manifest)\n",
				gfs_graph_dir(fs->g));
		return;
	}
	u = gfs_etcd_endpoints(fs->etcd);
	pthread_mutex_lock(&fs->mf_lock);
	if (fs->mf_down) {
		gfs_time_format(fs->mf_since_ns, since);
		gfs_buf_appendf(b, "manifest: etcd UNREACHABLE since %s: %s\n"
				"serving what this mount has cached (graph version %" PRIu64
				"); new commits show once etcd answers again\n",
				since, fs->mf_error, ld(&fs->head_seen));
	} else {
		gfs_buf_appendf(b, "manifest: ok (etcd, prefix %s, endpoints ", u->prefix);
		for (size_t i = 0; i < u->n; i++)
			gfs_buf_appendf(b, "%s%s", i ? "," : "", u->endpoints[i]);
		gfs_buf_appendf(b, ")\n");
	}
	pthread_mutex_unlock(&fs->mf_lock);
}

void fsi_seen_wait(struct gfs_fs *fs, uint64_t ver)
{
	struct timespec ts;

	if (!fs->notifier_running || ld(&fs->head_seen) >= ver)
		return;
	wake(fs); /* read now */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += GFS_SEEN_WAIT_S;
	pthread_mutex_lock(&fs->seen_lock);
	while (ld(&fs->head_seen) < ver && !atomic_load(&fs->stopping))
		if (pthread_cond_timedwait(&fs->seen_cond, &fs->seen_lock, &ts))
			break; /* durable anyway; only the view may lag */
	pthread_mutex_unlock(&fs->seen_lock);
}

/* A gc removed graph versions (docs/branches-design.md §6.3): their
 * versions/N entries go (each name is looked up again: a kept N keeps its
 * dentry), the versions/ listing and log.jsonl are read afresh. */
static void follow_gc(struct gfs_fs *fs)
{
	struct invals iv;

	memset(&iv, 0, sizeof iv);
	gfs_view_forget_removed(fs->v);
	pthread_mutex_lock(&fs->ino_lock);
	for (size_t b = 0; b < fs->n_buckets; b++)
		for (struct vnode *n = fs->buckets[b]; n; n = n->next)
			if (n->d.kind == GFS_VK_VDIR && n->name[0])
				add_vnode(fs, &iv, n, false, false, true);
			else if (n->d.kind == GFS_VK_VERSIONS || n->d.kind == GFS_VK_LOG)
				add_vnode(fs, &iv, n, true, false, false);
	pthread_mutex_unlock(&fs->ino_lock);
	apply(fs, &iv);
	invals_release(&iv);
	atomic_fetch_add(&fs->gcs_seen, 1);
}

static void *notifier_main(void *arg)
{
	struct gfs_fs *fs = arg;
	uint64_t last = (gfs_view_own_reads(), atomic_load(&fs->epoch));
	uint64_t main_last = gfs_view_main_head(fs->v);
	uint64_t sig_last = gfs_view_branches_sig(fs->v);
	uint64_t gcs = gfs_manifest_gc_gen(gfs_graph_manifest(fs->g));

	bool woken, again = false; /* again: the last read failed */

	gfs_holds_keep(fs->holds, main_last);
	atomic_store(&fs->head_seen, last);
	if (fs->etcd && !wd_open(fs) && !watch_begin(fs))
		wake(fs); /* invariant 1: the read after the watch exists */
	while (!wait_stop(fs, &woken)) {
		uint64_t head, main_head, sig, g;

		fsi_prune(fs);
		if (fs->wd) {
			if (!etcd_due(fs, woken || again))
				continue;
			atomic_fetch_add(&fs->watch_wakeups, 1);
		} else {
			/* LMDB; or etcd without a client of our own (out of
			 * memory at start): polling is still correct */
			atomic_fetch_add(&fs->polls, 1);
		}
		head = gfs_view_head(fs->v);
		/* invariant 3: a failed read (0: a store has version 1 from
		 * init) moves nothing; on etcd it costs one client timeout,
		 * the probe says whether etcd is down, and the read runs
		 * again after poll_ms (or once etcd answers), so no wake is
		 * lost; not at once, which would spin on a read that keeps
		 * failing while etcd answers */
		again = fs->wd && !head;
		if (again) {
			(void)probe(fs);
			continue;
		}
		sig = gfs_view_branches_sig(fs->v);
		if (fs->wd && !sig && probe(fs)) {
			again = true;
			continue;
		}
		g = gfs_manifest_gc_gen(gfs_graph_manifest(fs->g));
		if (g != gcs) {
			follow_gc(fs);
			gcs = g;
		}
		if (head && head == last && sig != sig_last)
			branches_changed(fs); /* created or deleted */
		sig_last = sig;
		if (!head || head == last)
			continue;
		/* The root shows main: diff main's heads, not the global
		 * ones (the newest version may be another branch's). */
		main_head = gfs_view_main_head(fs->v);
		follow(fs, main_last, main_head, head);
		last = head;
		main_last = main_head ? main_head : main_last;
		gfs_holds_keep(fs->holds, main_last);
	}
	gfs_etcd_watch_stop(fs->watch);
	fs->watch = NULL;
	gfs_etcd_close(fs->wd);
	fs->wd = NULL;
	return NULL;
}

int gfs_fs_notifier_start(struct gfs_fs *fs, struct fuse_session *se)
{
	sigset_t all, old;
	int rc;

	fs->se = se;
	atomic_store(&fs->epoch_main, gfs_view_main_head(fs->v));
	atomic_store(&fs->epoch, gfs_view_head(fs->v));
	/* Signals belong to the main thread and the stopper (fuse/main.c). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&fs->notifier, NULL, notifier_main, fs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return -rc;
	fs->notifier_running = true;
	return 0;
}

/* Unescapes a mountinfo field in place (\\040 and friends). */
static void mi_unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The FUSE connection number of the newest mount on mnt: the minor of
 * its anonymous device (/proc/self/mountinfo, never a stat of the mount,
 * which would ask this very daemon).  0 if not found. */
unsigned gfs_fs_conn_of(const char *mnt)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[8192], dev[64], point[4096];
	unsigned found = 0, maj, min;

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "%*s %*s %63s %*s %4095s", dev, point) != 2 ||
		    sscanf(dev, "%u:%u", &maj, &min) != 2 || maj != 0)
			continue;
		mi_unescape(point);
		if (strcmp(point, mnt) == 0 && strstr(line, " - fuse"))
			found = min;
	}
	fclose(f);
	return found;
}

/* Last resort: fail every pending request, which ends every notify call
 * waiting for one. */
static void abort_connection(struct gfs_fs *fs)
{
	unsigned conn = fs->o.mountpoint ? gfs_fs_conn_of(fs->o.mountpoint) : 0;
	char path[64];
	int fd;

	if (!conn)
		return;
	snprintf(path, sizeof path, "/sys/fs/fuse/connections/%u/abort", conn);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT &&
	    mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) == 0)
		fd = open(path, O_WRONLY | O_CLOEXEC); /* root: control fs was not mounted */
	if (fd < 0)
		return;
	if (write(fd, "1", 1) < 0) {
		/* nothing more to try */
	}
	close(fd);
}

void gfs_fs_notifier_stop(struct gfs_fs *fs)
{
	struct timespec ts;

	if (!fs->notifier_running)
		return;
	atomic_store(&fs->stopping, true);
	pthread_mutex_lock(&fs->seen_lock);
	pthread_cond_broadcast(&fs->seen_cond); /* FLUSHes waiting: go */
	pthread_mutex_unlock(&fs->seen_lock);
	pthread_mutex_lock(&fs->stop_lock);
	fs->stop = true;
	pthread_cond_signal(&fs->stop_cond);
	pthread_mutex_unlock(&fs->stop_lock);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += GFS_NOTIFIER_STOP_S;
	if (pthread_timedjoin_np(fs->notifier, NULL, &ts)) {
		abort_connection(fs);
		pthread_join(fs->notifier, NULL);
	}
	fs->notifier_running = false;
}

