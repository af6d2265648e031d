/* notify.c - the live view's notifier (docs/mount.md, "The live view and
 * the notifier"): a thread that polls the manifest head, collects what a
 * new graph version changed under fs->ino_lock, releases it, and calls
 * fuse_lowlevel_notify_* holding no lock (those calls block in the kernel
 * on inode locks that in-flight requests may hold).  Stopping it is
 * bounded (docs/mount.md, "Shutdown").
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>

#include "failpoints.h"
#include "fs_int.h"

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

static bool wait_stop(struct gfs_fs *fs)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)fs->o.poll_ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&fs->stop_lock);
	if (!fs->stop)
		pthread_cond_timedwait(&fs->stop_cond, &fs->stop_lock, &ts);
	stop = fs->stop;
	pthread_mutex_unlock(&fs->stop_lock);
	return stop;
}

void fsi_notifier_kick(struct gfs_fs *fs)
{
	if (!fs->notifier_running)
		return;
	pthread_mutex_lock(&fs->stop_lock);
	pthread_cond_signal(&fs->stop_cond); /* poll now, not at poll_ms */
	pthread_mutex_unlock(&fs->stop_lock);
}

void fsi_seen_wait(struct gfs_fs *fs, uint64_t ver)
{
	struct timespec ts;

	if (!fs->notifier_running || ld(&fs->head_seen) >= ver)
		return;
	pthread_mutex_lock(&fs->stop_lock);
	pthread_cond_signal(&fs->stop_cond); /* poll now */
	pthread_mutex_unlock(&fs->stop_lock);
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
	uint64_t last = atomic_load(&fs->epoch);
	uint64_t main_last = gfs_view_main_head(fs->v);
	uint64_t sig_last = gfs_view_branches_sig(fs->v);
	uint64_t gcs = gfs_manifest_gc_gen(gfs_graph_manifest(fs->g));

	atomic_store(&fs->head_seen, last);
	while (!wait_stop(fs)) {
		uint64_t head = gfs_view_head(fs->v), main_head;
		uint64_t sig = gfs_view_branches_sig(fs->v);
		uint64_t g = gfs_manifest_gc_gen(gfs_graph_manifest(fs->g));

		atomic_fetch_add(&fs->polls, 1);
		fsi_prune(fs);
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
	}
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

