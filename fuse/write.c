/* write.c - writes through the live view (write.h; docs/mount.md "Writes").
 *
 * Objects: a struct gfs_wobj holds the bytes of one writable file: a node
 * file opened for writing (private to its handle: the handle starts from
 * the file's bytes and commits them on FLUSH/FSYNC), a node file created
 * and not yet committed, or a scratch file (a name in a node type
 * directory that is no node file name: editors' probes, swap files and
 * backups, sed -i's temporary).  The last two are "listed": lookup and
 * readdir of their directory find them, under a WFILE inode.
 *
 * Pending deletion: renaming node K to a scratch name (vim's backup)
 * deletes nothing; the scratch object records K and the name K looks
 * absent.  Writing K again clears it (an update: edges stay); removing the
 * scratch file while it is set, or the end of the mount, deletes K.
 *
 * Locks: w->lock protects the lists, every object's fields and bytes and
 * the error ring; it is never held across a commit.  w->q_lock protects
 * the commit queue.  The commit thread holds neither while it calls
 * gfs_graph_apply, and never waits for the notifier (fs.c does, after a
 * FLUSH, holding nothing).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "names.h"
#include "write.h"

/* ---- buffers: memory up to GFS_WR_MEM_MAX, then an O_TMPFILE ---------- */

struct wbuf {
	char *p;       /* fd < 0: the bytes */
	size_t cap;
	uint64_t size;
	int fd;        /* spilled: every byte is in the file */
};

static void wbuf_init(struct wbuf *b)
{
	memset(b, 0, sizeof *b);
	b->fd = -1;
}

static void wbuf_release(struct wbuf *b)
{
	free(b->p);
	if (b->fd >= 0)
		close(b->fd);
	wbuf_init(b);
}

static int wbuf_spill(struct wbuf *b, const char *staging)
{
	int fd = open(staging, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	uint64_t done = 0;

	/* STORE/staging is made by the first load (load.c); a store that
	 * has seen none yet has no such directory: make it as the loader
	 * does (an ingest file or a big write on a fresh store failed with
	 * ENOENT at close; found by tests/model) */
	if (fd < 0 && errno == ENOENT) {
		int rc = gfs_mkdir(staging, 0755);

		if (rc)
			return rc;
		fd = open(staging, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return -errno;
	while (done < b->size) {
		ssize_t n = pwrite(fd, b->p + done, b->size - done, (off_t)done);

		if (n < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		done += (uint64_t)n;
	}
	free(b->p);
	b->p = NULL;
	b->cap = 0;
	b->fd = fd;
	return 0;
}

/* Makes room for size bytes in memory (zero-filled), or spills. */
static int wbuf_room(struct wbuf *b, uint64_t size, const char *staging)
{
	char *p;
	size_t cap;

	if (b->fd >= 0)
		return 0;
	if (size > GFS_WR_MEM_MAX)
		return wbuf_spill(b, staging);
	if (size <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap < size)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	memset(p + b->cap, 0, cap - b->cap);
	b->p = p;
	b->cap = cap;
	return 0;
}

static int wbuf_write(struct wbuf *b, uint64_t off, const void *data,
		      size_t len, const char *staging)
{
	uint64_t end = off + len;
	int rc;

	if (end < off || end > (uint64_t)INT64_MAX)
		return -EFBIG;
	rc = wbuf_room(b, end, staging);
	if (rc)
		return rc;
	if (b->fd < 0) {
		if (off > b->size)
			memset(b->p + b->size, 0, off - b->size);
		memcpy(b->p + off, data, len);
	} else {
		size_t done = 0;

		while (done < len) {
			ssize_t n = pwrite(b->fd, (const char *)data + done,
					   len - done, (off_t)(off + done));
			if (n < 0)
				return -errno;
			done += (size_t)n;
		}
	}
	if (end > b->size)
		b->size = end;
	return 0;
}

static int wbuf_truncate(struct wbuf *b, uint64_t size, const char *staging)
{
	int rc = wbuf_room(b, size, staging);

	if (rc)
		return rc;
	if (b->fd >= 0) {
		if (ftruncate(b->fd, (off_t)size))
			return -errno;
	} else if (size > b->size) {
		memset(b->p + b->size, 0, size - b->size);
	} else if (b->p && size < b->size) {
		memset(b->p + size, 0, b->size - size);
	}
	b->size = size;
	return 0;
}

static int wbuf_read(const struct wbuf *b, uint64_t off, void *buf,
		     size_t len, size_t *n)
{
	*n = 0;
	if (off >= b->size)
		return 0;
	if (len > b->size - off)
		len = (size_t)(b->size - off);
	if (b->fd < 0) {
		memcpy(buf, b->p + off, len);
		*n = len;
		return 0;
	}
	while (*n < len) {
		ssize_t r = pread(b->fd, (char *)buf + *n, len - *n,
				  (off_t)(off + *n));
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		*n += (size_t)r;
	}
	return 0;
}

/* A copy of all the bytes (for a commit); *out is new. */
static int wbuf_copy(const struct wbuf *b, char **out, size_t *len)
{
	size_t n;
	char *p;
	int rc;

	if (b->size > SIZE_MAX - 1)
		return -EFBIG;
	p = malloc((size_t)b->size + 1);
	if (!p)
		return -ENOMEM;
	rc = wbuf_read(b, 0, p, (size_t)b->size, &n);
	if (rc) {
		free(p);
		return rc;
	}
	*out = p;
	*len = n;
	return 0;
}

/* ---- objects ------------------------------------------------------------ */

enum wkind {
	WK_NODE,     /* a node file opened for writing (private) */
	WK_NEW,      /* a node file created, not committed yet (listed) */
	WK_SCRATCH,  /* a scratch file (listed) */
};

struct gfs_wobj {
	struct gfs_wobj *next;     /* all objects; protected by w->lock */
	enum wkind kind;
	int refs;                  /* open handles + 1 while listed */
	bool listed;
	bool dirty;                /* bytes differ from what was committed */
	uint64_t gen;              /* bumped by every change of the bytes */
	uint64_t serial;           /* WFILE identity */
	uint64_t ino;              /* the kernel's inode of it (0: none yet) */
	uint64_t dir_ino;          /* listed: the directory */
	char *name;                /* listed: its name */
	const char *table;         /* interned: "node:T" */
	char *key;                 /* WK_NODE / WK_NEW: node key or edge id */
	size_t key_len;
	bool edge;                 /* an edge file: table "edge:E", from/to */
	int ingest;                /* 1 + the GFS_VK_INGEST sub of an ingest file */
	char *from, *to;
	size_t from_len, to_len;
	char *pend;                /* scratch: node whose deletion is pending */
	size_t pend_len;
	uint64_t mtime_ns;
	const char *branch;        /* the branch its directory's view shows
				      (gfs_view_branch_of: owned by the
				      view), NULL for main */
	struct wbuf b;
};

/* Changes to publish on one branch (NULL: main); a batch never mixes
 * branches (take_batch_locked). */
struct wreq {
	struct wreq *next;
	const char *branch;
	struct gfs_change *ch;
	size_t n;
	bool done;
};

struct gfs_wr {
	struct gfs_graph *g;
	struct gfs_view *v;
	char *source;              /* "mount /mnt" for the log */
	char *mnt;                 /* the mount point (absolute symlink targets) */
	char *staging;             /* STORE/staging */
	uid_t uid;
	gid_t gid;
	uint64_t started_ns;

	pthread_mutex_t lock;
	struct gfs_wobj *objs;
	uint64_t serial;
	char **errs;               /* ring of JSON lines */
	size_t err_next, err_count;

	pthread_mutex_t q_lock;
	pthread_cond_t q_cond, done_cond;
	struct wreq *q_head, **q_tail;
	bool q_stop, thread_on;
	/* For .graphfs/stats (under q_lock): changes waiting for the commit
	 * thread, batches run, changes in them, versions published. */
	uint64_t queued, batches, changes, published;
	pthread_t thread;
};

/* versions/ and everything under it: never written (EROFS). */
static bool ro_desc(const struct gfs_vdesc *d)
{
	return gfs_vdesc_frozen(d) || d->kind == GFS_VK_VERSIONS;
}

bool gfs_wr_readonly(const struct gfs_vdesc *d)
{
	return ro_desc(d);
}

static const char *type_of(const char *table)
{
	const char *c = table ? strchr(table, ':') : NULL;

	return c ? c + 1 : "";
}

static bool is_node_typedir(const struct gfs_vdesc *d)
{
	return d->kind == GFS_VK_TYPEDIR && !gfs_vdesc_frozen(d) && d->table &&
	       strncmp(d->table, "node:", 5) == 0;
}

/* edges/<E>/<from>/ of the live view: table "edge:E", key = from. */
static bool is_srcdir(const struct gfs_vdesc *d)
{
	return d->kind == GFS_VK_SRCDIR && !gfs_vdesc_frozen(d);
}

static bool is_ingest(const struct gfs_vdesc *d)
{
	return d->kind == GFS_VK_INGEST;
}

/* Directories that hold scratch and created files. */
static bool is_wdir(const struct gfs_vdesc *d)
{
	return is_node_typedir(d) || is_srcdir(d) || is_ingest(d);
}

static const char *const ingest_names[3] = { "ingest", "append", "overwrite" };

static int ingest_desc(const struct gfs_wr *w, int sub, struct gfs_vdesc *d,
		       struct stat *st)
{
	memset(d, 0, sizeof *d);
	d->kind = GFS_VK_INGEST;
	d->sub = (uint8_t)sub;
	d->mtime_ns = w->started_ns;
	if (st) {
		memset(st, 0, sizeof *st);
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 1;
		st->st_uid = w->uid;
		st->st_gid = w->gid;
		st->st_blksize = 4096;
		st->st_mtim.tv_sec = (time_t)(w->started_ns / 1000000000u);
		st->st_mtim.tv_nsec = (long)(w->started_ns % 1000000000u);
		st->st_atim = st->st_ctim = st->st_mtim;
	}
	return 0;
}

static void obj_unref_locked(struct gfs_wr *w, struct gfs_wobj *o)
{
	if (--o->refs > 0)
		return;
	for (struct gfs_wobj **pp = &w->objs; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	wbuf_release(&o->b);
	free(o->name);
	free(o->key);
	free(o->from);
	free(o->to);
	free(o->pend);
	free(o);
}

static struct gfs_wobj *obj_new_locked(struct gfs_wr *w, enum wkind k,
				       const char *table)
{
	struct gfs_wobj *o = calloc(1, sizeof *o);

	if (!o)
		return NULL;
	o->kind = k;
	o->table = table;
	o->serial = ++w->serial;
	o->mtime_ns = gfs_now_ns();
	wbuf_init(&o->b);
	o->next = w->objs;
	w->objs = o;
	return o;
}

static void obj_unlist_locked(struct gfs_wr *w, struct gfs_wobj *o)
{
	if (!o->listed)
		return;
	o->listed = false;
	obj_unref_locked(w, o);
}

static struct gfs_wobj *listed_locked(struct gfs_wr *w, uint64_t dir_ino,
				      const char *name)
{
	for (struct gfs_wobj *o = w->objs; o; o = o->next)
		if (o->listed && o->dir_ino == dir_ino && !strcmp(o->name, name))
			return o;
	return NULL;
}

static struct gfs_wobj *by_serial_locked(struct gfs_wr *w, uint64_t serial)
{
	for (struct gfs_wobj *o = w->objs; o; o = o->next)
		if (o->serial == serial)
			return o;
	return NULL;
}

static bool same_branch(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

/* A deletion pending on key of table in branch's view (NULL: main's). */
static struct gfs_wobj *pending_locked(struct gfs_wr *w, const char *branch,
				       const char *table, const char *key,
				       size_t len)
{
	for (struct gfs_wobj *o = w->objs; o; o = o->next)
		if (o->listed && o->pend && o->table == table &&
		    same_branch(o->branch, branch) &&
		    o->pend_len == len && !memcmp(o->pend, key, len))
			return o;
	return NULL;
}

static void clear_pending_locked(struct gfs_wr *w, const char *branch,
				 const char *table, const char *key, size_t len)
{
	struct gfs_wobj *o;

	while ((o = pending_locked(w, branch, table, key, len))) {
		free(o->pend);
		o->pend = NULL;
		o->pend_len = 0;
	}
}

static void obj_stat(const struct gfs_wr *w, const struct gfs_wobj *o,
		     struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_uid = w->uid;
	st->st_gid = w->gid;
	st->st_size = (off_t)o->b.size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((o->b.size + 511) / 512);
	st->st_mtim.tv_sec = (time_t)(o->mtime_ns / 1000000000u);
	st->st_mtim.tv_nsec = (long)(o->mtime_ns % 1000000000u);
	st->st_atim = st->st_ctim = st->st_mtim;
}

static int obj_desc(const struct gfs_wobj *o, struct gfs_vdesc *d)
{
	memset(d, 0, sizeof *d);
	d->kind = GFS_VK_WFILE;
	d->table = o->table;
	d->serial = o->serial;
	d->key = gfs_strdup(o->name ? o->name : "");
	if (!d->key)
		return -ENOMEM;
	d->key_len = strlen(d->key);
	d->size = o->b.size;
	d->mtime_ns = o->mtime_ns;
	return 0;
}

/* ---- names -------------------------------------------------------------- */

enum wname { WN_SCRATCH, WN_NODE };

/* What name means in node type directory dir: a node file name (its key
 * in *key, new; a hashed name must match an existing node), a scratch
 * name, or -EINVAL (ends in ".json" but is not a canonical node file
 * name: %61lice.json). */
static int classify(struct gfs_wr *w, const struct gfs_vdesc *dir,
		    const char *name, char **key, size_t *klen)
{
	size_t nlen = strlen(name), stem;
	struct gfs_name_dec dec;
	struct gfs_vdesc child;
	int rc;

	*key = NULL;
	*klen = 0;
	if (!gfs_name_is_json(name, nlen, &stem))
		return WN_SCRATCH;
	if (gfs_name_decode(name, stem, &dec))
		return -EINVAL;
	if (dec.hashed) {
		gfs_name_dec_release(&dec);
		rc = gfs_view_lookup(w->v, dir, name, &child, NULL);
		if (rc)
			return rc == -ENOENT ? -EINVAL : rc;
		*key = gfs_memdup(child.key, child.key_len);
		*klen = child.key_len;
		gfs_vdesc_release(&child);
		return *key ? WN_NODE : -ENOMEM;
	}
	if (!gfs_name_matches(dec.key, dec.len, GFS_NAME_KEY_MAX, name, stem)) {
		gfs_name_dec_release(&dec);
		return -EINVAL;
	}
	*key = gfs_memdup(dec.key, dec.len);
	*klen = dec.len;
	gfs_name_dec_release(&dec);
	return *key ? WN_NODE : -ENOMEM;
}

/* Decodes a canonical name part (never a hashed one) into *out (new). */
static int decode_part(const char *p, size_t n, size_t max, char **out,
		       size_t *len)
{
	struct gfs_name_dec dec;

	if (gfs_name_decode(p, n, &dec))
		return -EINVAL;
	if (dec.hashed || !gfs_name_matches(dec.key, dec.len, max, p, n)) {
		gfs_name_dec_release(&dec);
		return -EINVAL;
	}
	*out = gfs_memdup(dec.key, dec.len);
	*len = dec.len;
	gfs_name_dec_release(&dec);
	return *out ? 0 : -ENOMEM;
}

/* An edge file name in edges/<E>/<from>/: "<to>.json" (id NULL: the
 * caller picks one) or "<to>~<id>.json"; WN_SCRATCH for other names. */
static int classify_edge(const char *name, char **to, size_t *to_len,
			 char **id, size_t *id_len)
{
	size_t nlen = strlen(name), stem, tilde;
	int rc;

	*to = *id = NULL;
	*to_len = *id_len = 0;
	if (!gfs_name_is_json(name, nlen, &stem))
		return WN_SCRATCH;
	if (!gfs_name_split_edge(name, stem, &tilde))
		return decode_part(name, stem, GFS_NAME_PART_MAX, to, to_len) ?:
		       WN_NODE;
	rc = decode_part(name, tilde, GFS_NAME_PART_MAX, to, to_len);
	if (!rc)
		rc = decode_part(name + tilde + 1, stem - tilde - 1,
				 GFS_NAME_PART_MAX, id, id_len);
	if (rc) {
		free(*to);
		*to = NULL;
		return rc;
	}
	return WN_NODE;
}

/* ---- errors ------------------------------------------------------------- */

static void note_error(struct gfs_wr *w, const char *op, const char *path,
		       int err, const char *msg)
{
	struct gfs_buf b;
	struct timespec ts;
	char when[32];
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	gfs_buf_init(&b);
	gfs_buf_appendf(&b, "{\"time\":\"%s\",\"op\":\"%s\",\"path\":", when, op);
	gfs_buf_append_json_str(&b, path, strlen(path));
	gfs_buf_appendf(&b, ",\"errno\":%d,\"error\":\"%s\",\"message\":", err,
			strerrorname_np(err) ? strerrorname_np(err) : "");
	gfs_buf_append_json_str(&b, msg, strlen(msg));
	gfs_buf_append(&b, "}\n", 3); /* with the NUL */
	gfs_log(LOG_WARNING, "%s %s: %s: %s", op, path, strerror(err), msg);
	if (!b.p)
		return;
	pthread_mutex_lock(&w->lock);
	free(w->errs[w->err_next]);
	w->errs[w->err_next] = b.p;
	w->err_next = (w->err_next + 1) % GFS_WR_ERRORS_MAX;
	if (w->err_count < GFS_WR_ERRORS_MAX)
		w->err_count++;
	pthread_mutex_unlock(&w->lock);
}

void gfs_wr_stats(struct gfs_wr *w, struct gfs_buf *out)
{
	pthread_mutex_lock(&w->q_lock);
	gfs_buf_appendf(out, "{\"queued\":%" PRIu64 ",\"batches\":%" PRIu64
			",\"changes\":%" PRIu64 ",\"versions\":%" PRIu64 "}",
			w->queued, w->batches, w->changes, w->published);
	pthread_mutex_unlock(&w->q_lock);
}

void gfs_wr_errors(struct gfs_wr *w, struct gfs_buf *out)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->err_count; i++) {
		size_t k = (w->err_next + GFS_WR_ERRORS_MAX - w->err_count + i) %
			   GFS_WR_ERRORS_MAX;
		gfs_buf_appendf(out, "%s", w->errs[k]);
	}
	pthread_mutex_unlock(&w->lock);
}

/* The path of name in node type table's directory (for messages). */
static void node_path(char *out, size_t n, const char *table, const char *name)
{
	snprintf(out, n, "nodes/%s/%s", type_of(table), name);
}

/* ---- the commit thread -------------------------------------------------- */

/* Library result -> errno (docs/semantics.md, "Writes"). */
static int to_errno(int rc)
{
	if (rc >= 0)
		return rc;
	if (rc == GFS_EDATA || rc == GFS_ECONFLICT || rc == GFS_ETOOLONG ||
	    rc == GFS_ESCHEMA)
		return -EINVAL;
	/* Other writers kept winning, or another's operation awaits its
	 * recovery: nothing is wrong with the data or the disk. */
	if (rc == GFS_ECAS || rc == GFS_ERECOVERY || rc == GFS_EGONE)
		return -EBUSY;
	/* etcd: the mount's table leases ended (a pause past the TTL, an
	 * outage): nothing was published, the next write takes new ones */
	if (rc == GFS_ELEASE)
		return -ENOLCK;
	/* graphctl migrate moved the manifest under this mount: what it
	 * serves is frozen; writing needs a new mount (invariant 336) */
	if (rc == GFS_EMOVED)
		return -EROFS;
	if (rc > -4096)
		return rc;
	return -EIO;
}

/* A change that failed with its batch: the batch's reason. */
static void batch_msg(struct gfs_change *ch, const struct gfs_diag *d)
{
	struct gfs_buf b;

	gfs_buf_init(&b);
	gfs_buf_appendf(&b, "%s%s%s", gfs_strerror(ch->rc),
			d->msg[0] ? ": " : "", d->msg);
	if (b.p)
		snprintf(ch->msg, sizeof ch->msg, "%.*s", (int)sizeof ch->msg - 1, b.p);
	gfs_buf_release(&b);
}

static uint64_t run_batch(struct gfs_wr *w, struct wreq *batch)
{
	struct gfs_apply_opts o = { .source = w->source, .branch = batch->branch };
	struct gfs_apply_result res;
	struct gfs_diag d = {{0}};
	struct gfs_change *all;
	size_t n = 0, k = 0;
	int rc;

	for (struct wreq *r = batch; r; r = r->next)
		n += r->n;
	all = calloc(n ? n : 1, sizeof *all);
	if (!all) {
		for (struct wreq *r = batch; r; r = r->next)
			for (size_t i = 0; i < r->n; i++)
				r->ch[i].rc = -ENOMEM;
		return 0;
	}
	for (struct wreq *r = batch; r; r = r->next)
		for (size_t i = 0; i < r->n; i++)
			all[k++] = r->ch[i];
	memset(&res, 0, sizeof res);
	rc = gfs_graph_apply(w->g, all, n, &o, &res, &d);
	k = 0;
	for (struct wreq *r = batch; r; r = r->next)
		for (size_t i = 0; i < r->n; i++, k++) {
			r->ch[i].rc = all[k].rc;
			r->ch[i].version = all[k].version ? all[k].version :
					   res.version;
			memcpy(r->ch[i].msg, all[k].msg, sizeof all[k].msg);
			if (rc && !r->ch[i].rc)
				r->ch[i].rc = rc;
			if (r->ch[i].rc && !r->ch[i].msg[0])
				batch_msg(&r->ch[i], &d);
		}
	free(all);
	return rc ? 0 : res.version;
}

/* The queued requests of the first one's branch, in order; the others
 * stay queued for the next batch. */
static struct wreq *take_batch_locked(struct gfs_wr *w)
{
	struct wreq *batch = NULL, **bt = &batch, *rest = NULL, **rt = &rest;
	const char *br = w->q_head->branch;

	for (struct wreq *r = w->q_head, *next; r; r = next) {
		next = r->next;
		r->next = NULL;
		if (same_branch(r->branch, br)) {
			*bt = r;
			bt = &r->next;
		} else {
			*rt = r;
			rt = &r->next;
		}
	}
	w->q_head = rest;
	w->q_tail = rest ? rt : &w->q_head;
	return batch;
}

static void *committer(void *arg)
{
	struct gfs_wr *w = arg;
	uint64_t ver;

	pthread_mutex_lock(&w->q_lock);
	for (;;) {
		struct wreq *batch;

		while (!w->q_head && !w->q_stop)
			pthread_cond_wait(&w->q_cond, &w->q_lock);
		if (!w->q_head)
			break;
		batch = take_batch_locked(w);
		for (struct wreq *r = batch; r; r = r->next)
			w->queued -= r->n, w->changes += r->n;
		w->batches++;
		pthread_mutex_unlock(&w->q_lock);
		ver = run_batch(w, batch);
		pthread_mutex_lock(&w->q_lock);
		w->published += ver != 0;
		for (struct wreq *r = batch; r; r = r->next)
			r->done = true;
		pthread_cond_broadcast(&w->done_cond);
	}
	pthread_mutex_unlock(&w->q_lock);
	return NULL;
}

/* Publishes ch[0..n) (with whatever else is queued) and waits; each
 * change's rc/msg/version are set.  Returns ch[0]'s errno. */
static int commit(struct gfs_wr *w, const char *branch, struct gfs_change *ch,
		  size_t n)
{
	struct wreq r = { .branch = branch, .ch = ch, .n = n };
	int rc = 0;

	pthread_mutex_lock(&w->q_lock);
	if (!w->thread_on && !w->q_stop) {
		rc = -pthread_create(&w->thread, NULL, committer, w);
		w->thread_on = rc == 0;
	}
	if (rc || w->q_stop) {
		pthread_mutex_unlock(&w->q_lock);
		return rc ? rc : -EROFS;
	}
	*w->q_tail = &r;
	w->q_tail = &r.next;
	w->queued += n;
	pthread_cond_signal(&w->q_cond);
	while (!r.done)
		pthread_cond_wait(&w->done_cond, &w->q_lock);
	pthread_mutex_unlock(&w->q_lock);
	return to_errno(ch[0].rc);
}

/* One change of op on path: commits it, records a failure. */
static int commit_one(struct gfs_wr *w, const char *branch,
		      struct gfs_change *ch, const char *op, const char *path)
{
	int rc = commit(w, branch, ch, 1);

	if (rc)
		note_error(w, op, path, -rc, ch->msg[0] ? ch->msg :
			   gfs_strerror(ch->rc ? ch->rc : rc));
	return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

int gfs_wr_new(struct gfs_graph *g, struct gfs_view *v, const char *mnt,
	       struct gfs_wr **out)
{
	struct gfs_wr *w = calloc(1, sizeof *w);
	struct gfs_buf b;
	struct gfs_vdesc root;
	struct stat st;

	if (!w)
		return -ENOMEM;
	gfs_buf_init(&b);
	gfs_buf_appendf(&b, "mount %s", mnt ? mnt : "?");
	w->source = b.p;
	gfs_buf_init(&b);
	gfs_buf_appendf(&b, "%s/staging", gfs_graph_dir(g));
	w->staging = b.p;
	w->errs = calloc(GFS_WR_ERRORS_MAX, sizeof *w->errs);
	if (!w->source || !w->staging || !w->errs) {
		free(w->source);
		free(w->staging);
		free(w->errs);
		free(w);
		return -ENOMEM;
	}
	w->g = g;
	w->v = v;
	w->mnt = mnt ? gfs_strdup(mnt) : NULL;
	gfs_view_root(v, &root);
	gfs_view_getattr(v, &root, &st);
	gfs_vdesc_release(&root);
	w->uid = st.st_uid;
	w->gid = st.st_gid;
	w->started_ns = gfs_now_ns();
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->q_lock, NULL);
	pthread_cond_init(&w->q_cond, NULL);
	pthread_cond_init(&w->done_cond, NULL);
	w->q_tail = &w->q_head;
	*out = w;
	return 0;
}

/* The end of the mount: a node still pending deletion is deleted now, on
 * the branch of the directory it was renamed in (one commit each: a batch
 * is one branch). */
static void flush_pending(struct gfs_wr *w)
{
	struct gfs_writer who = { .uid = getuid(), .pid = getpid() };
	struct gfs_change *ch = NULL;
	const char **br = NULL;
	size_t n = 0, cap = 0, bcap = 0;

	snprintf(who.comm, sizeof who.comm, "graphfs");
	pthread_mutex_lock(&w->lock);
	for (struct gfs_wobj *o = w->objs; o; o = o->next) {
		struct gfs_change *p;
		const char **q;

		if (!o->listed || !o->pend)
			continue;
		p = gfs_array_grow(ch, &cap, n, sizeof *ch, 8);
		if (p)
			ch = p;
		q = p ? gfs_array_grow(br, &bcap, n, sizeof *br, 8) : NULL;
		if (!q)
			break;
		br = q;
		memset(&ch[n], 0, sizeof ch[n]);
		ch[n].kind = GFS_CH_NODE_DEL;
		ch[n].type = type_of(o->table);
		ch[n].key = o->pend;
		ch[n].key_len = o->pend_len;
		ch[n].who = &who;
		br[n] = o->branch;
		n++;
	}
	pthread_mutex_unlock(&w->lock);
	for (size_t i = 0; i < n; i++)
		commit(w, br[i], &ch[i], 1);
	for (size_t i = 0; i < n; i++)
		if (ch[i].rc && ch[i].rc != -ENOENT)
			gfs_log(LOG_WARNING, "unmount: deleting '%s' (pending since its rename to a scratch name): %s",
				ch[i].key, ch[i].msg);
	free(ch);
	free(br);
}

void gfs_wr_free(struct gfs_wr *w)
{
	if (!w)
		return;
	flush_pending(w);
	pthread_mutex_lock(&w->q_lock);
	w->q_stop = true;
	pthread_cond_signal(&w->q_cond);
	pthread_mutex_unlock(&w->q_lock);
	if (w->thread_on)
		pthread_join(w->thread, NULL);
	while (w->objs) {
		w->objs->refs = 1;
		obj_unref_locked(w, w->objs);
	}
	for (size_t i = 0; i < GFS_WR_ERRORS_MAX; i++)
		free(w->errs[i]);
	free(w->errs);
	free(w->source);
	free(w->staging);
	free(w->mnt);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->q_lock);
	pthread_cond_destroy(&w->q_cond);
	pthread_cond_destroy(&w->done_cond);
	free(w);
}

void gfs_wr_writer(uid_t uid, pid_t pid, struct gfs_writer *who)
{
	char path[64];
	ssize_t n;
	int fd;

	memset(who, 0, sizeof *who);
	who->uid = uid;
	who->pid = pid;
	snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, who->comm, sizeof who->comm - 1);
	close(fd);
	if (n < 0)
		n = 0;
	who->comm[n] = '\0';
	who->comm[strcspn(who->comm, "\n")] = '\0';
}

/* ---- attributes and lookups --------------------------------------------- */

void gfs_wr_mode(const struct gfs_vdesc *d, struct stat *st)
{
	bool w = false;

	if (!gfs_vdesc_frozen(d)) {
		switch (d->kind) {
		case GFS_VK_TYPEDIR: case GFS_VK_NODEFILE: case GFS_VK_WFILE:
		case GFS_VK_SRCDIR: case GFS_VK_EDGEFILE: case GFS_VK_ETDIR:
		case GFS_VK_INGEST:
			w = true;
			break;
		default:
			break;
		}
	}
	if (w)
		st->st_mode |= S_ISDIR(st->st_mode) ? 0755 : 0644;
	if (S_ISLNK(st->st_mode))
		st->st_mode = S_IFLNK | 0777;
}

int gfs_wr_lookup(struct gfs_wr *w, uint64_t dir_ino,
		  const struct gfs_vdesc *dir, const char *name,
		  struct gfs_vdesc *child, struct stat *st)
{
	struct gfs_wobj *o;
	char *key = NULL;
	size_t klen;
	int rc = 1;

	memset(child, 0, sizeof *child); /* released by the caller in any case */
	if (dir->kind == GFS_VK_ROOT && !strcmp(name, "ingest"))
		return ingest_desc(w, 0, child, st);
	if (is_ingest(dir) && dir->sub == 0 &&
	    (!strcmp(name, "append") || !strcmp(name, "overwrite")))
		return ingest_desc(w, name[0] == 'a' ? 1 : 2, child, st);
	if (!is_wdir(dir))
		return 1;
	pthread_mutex_lock(&w->lock);
	o = listed_locked(w, dir_ino, name);
	if (o) {
		rc = obj_desc(o, child);
		if (!rc)
			obj_stat(w, o, st);
	}
	pthread_mutex_unlock(&w->lock);
	if (o || !is_node_typedir(dir))
		return o ? rc : is_ingest(dir) ? -ENOENT : 1;
	if (classify(w, dir, name, &key, &klen) != WN_NODE)
		return 1;
	pthread_mutex_lock(&w->lock);
	if (pending_locked(w, gfs_view_branch_of(w->v, dir), dir->table, key, klen))
		rc = -ENOENT;
	pthread_mutex_unlock(&w->lock);
	free(key);
	return rc;
}

bool gfs_wr_pending(struct gfs_wr *w, const struct gfs_vdesc *dir,
		    const char *name)
{
	struct gfs_name_dec dec;
	size_t stem;
	bool any = false, hit = false;

	if (!is_node_typedir(dir))
		return false;
	pthread_mutex_lock(&w->lock);
	for (struct gfs_wobj *o = w->objs; o && !any; o = o->next)
		any = o->listed && o->pend && o->table == dir->table &&
		      same_branch(o->branch, gfs_view_branch_of(w->v, dir));
	pthread_mutex_unlock(&w->lock);
	if (!any || !gfs_name_is_json(name, strlen(name), &stem) ||
	    gfs_name_decode(name, stem, &dec))
		return false;
	pthread_mutex_lock(&w->lock);
	hit = !dec.hashed && pending_locked(w, gfs_view_branch_of(w->v, dir),
					    dir->table, dec.key, dec.len);
	pthread_mutex_unlock(&w->lock);
	gfs_name_dec_release(&dec);
	return hit;
}

int gfs_wr_getattr(struct gfs_wr *w, uint64_t ino, const struct gfs_vdesc *d,
		   struct stat *st)
{
	int rc = 0;

	pthread_mutex_lock(&w->lock);
	if (d->kind == GFS_VK_WFILE) {
		struct gfs_wobj *o = by_serial_locked(w, d->serial);

		if (o)
			obj_stat(w, o, st);
		else
			rc = -ESTALE;
	} else if (d->kind == GFS_VK_NODEFILE && !gfs_vdesc_frozen(d)) {
		for (struct gfs_wobj *o = w->objs; o; o = o->next)
			if (o->ino == ino && o->kind == WK_NODE && o->dirty) {
				st->st_size = (off_t)o->b.size;
				break;
			}
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

int gfs_wr_list(struct gfs_wr *w, uint64_t dir_ino,
		const struct gfs_vdesc *dir, uint64_t pos,
		int (*emit)(void *arg, const char *name, const struct gfs_vdesc *d,
			    const struct stat *st, uint64_t next),
		void *arg)
{
	uint64_t i = 0;
	int sub = -1;

	if (dir && dir->kind == GFS_VK_ROOT && !gfs_vdesc_frozen(dir))
		sub = 0;
	else if (dir && is_ingest(dir) && dir->sub == 0)
		sub = 1;
	for (int k = sub; sub >= 0 && k <= (sub ? 2 : 0); k++) {
		struct gfs_vdesc d;
		struct stat st;

		if (i++ < pos)
			continue;
		ingest_desc(w, k, &d, &st);
		if (emit(arg, ingest_names[k], &d, &st, i))
			return 0;
	}
	if (sub == 0)
		return 0;
	/* Taken under the lock, emitted without it: emit calls back into
	 * fs.c, which may ask this module again. */
	struct lent { char *name; struct gfs_vdesc d; struct stat st; uint64_t next; } *e = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&w->lock);
	for (struct gfs_wobj *o = w->objs; o; o = o->next) {
		struct lent *p;

		if (!o->listed || o->dir_ino != dir_ino || i++ < pos)
			continue;
		p = gfs_array_grow(e, &cap, n, sizeof *e, 8);
		if (!p)
			break;
		e = p;
		e[n].name = gfs_strdup(o->name);
		if (!e[n].name || obj_desc(o, &e[n].d)) {
			free(e[n].name);
			break;
		}
		obj_stat(w, o, &e[n].st);
		e[n].next = i;
		n++;
	}
	pthread_mutex_unlock(&w->lock);
	for (size_t k = 0; k < n; k++) {
		if (!emit(arg, e[k].name, &e[k].d, &e[k].st, e[k].next))
			continue;
		/* the caller's buffer is full: the rest goes next time */
		for (size_t j = k; j < n; j++) {
			free(e[j].name);
			gfs_vdesc_release(&e[j].d);
		}
		n = k;
		break;
	}
	for (size_t k = 0; k < n; k++) {
		free(e[k].name);
		gfs_vdesc_release(&e[k].d);
	}
	free(e);
	return 0;
}

/* ---- handles ------------------------------------------------------------ */

/* The bytes of node file d, into b. */
static int read_node(struct gfs_wr *w, const struct gfs_vdesc *d,
		     struct wbuf *b)
{
	struct gfs_vfile *f;
	char buf[65536];
	uint64_t off = 0;
	size_t n;
	int rc = gfs_view_open(w->v, d, &f);

	if (rc)
		return rc;
	for (;;) {
		rc = gfs_view_read(w->v, f, off, buf, sizeof buf, &n);
		if (rc || n == 0)
			break;
		rc = wbuf_write(b, off, buf, n, w->staging);
		if (rc)
			break;
		off += n;
	}
	gfs_view_close(w->v, f);
	return rc;
}

/* Lists a new object for name in dir_ino with one handle (*h). */
static int list_new(struct gfs_wr *w, struct gfs_wobj *o, uint64_t dir_ino,
		    const char *name, struct gfs_wobj **h,
		    struct gfs_vdesc *child, struct stat *st)
{
	struct gfs_wobj *old = listed_locked(w, dir_ino, name);
	int rc;

	if (old)
		obj_unlist_locked(w, old);
	o->name = gfs_strdup(name);
	o->dir_ino = dir_ino;
	o->listed = true;
	o->refs = 2; /* listed + the handle */
	rc = o->name ? obj_desc(o, child) : -ENOMEM;
	if (!rc) {
		obj_stat(w, o, st);
		*h = o;
	} else {
		obj_unlist_locked(w, o);
		obj_unref_locked(w, o);
	}
	return rc;
}

/* An edge file (or scratch file) created in edges/<E>/<from>/.  A new
 * "<to>.json" gets its id now, so each later commit replaces that edge. */
static int create_edge(struct gfs_wr *w, uint64_t dir_ino,
		       const struct gfs_vdesc *dir, const char *name,
		       struct gfs_wobj **h, struct gfs_vdesc *child,
		       struct stat *st)
{
	char *to, *id, ulid[GFS_ULID_LEN + 1];
	size_t to_len, id_len;
	struct gfs_wobj *o;
	int k = classify_edge(name, &to, &to_len, &id, &id_len), rc;

	if (k < 0)
		return k;
	if (k == WN_NODE && !id) {
		rc = gfs_ulid_new(ulid);
		id = rc ? NULL : gfs_strdup(ulid);
		id_len = id ? GFS_ULID_LEN : 0;
		if (!id) {
			free(to);
			return rc ? rc : -ENOMEM;
		}
	}
	pthread_mutex_lock(&w->lock);
	o = obj_new_locked(w, k == WN_NODE ? WK_NEW : WK_SCRATCH, dir->table);
	if (!o) {
		pthread_mutex_unlock(&w->lock);
		free(to);
		free(id);
		return -ENOMEM;
	}
	o->branch = gfs_view_branch_of(w->v, dir);
	o->edge = true;
	o->key = id;
	o->key_len = id_len;
	o->to = to;
	o->to_len = to_len;
	o->from = gfs_memdup(dir->key, dir->key_len);
	o->from_len = dir->key_len;
	o->dirty = k == WN_NODE;
	rc = o->from ? list_new(w, o, dir_ino, name, h, child, st) : -ENOMEM;
	if (!o->from) {
		o->refs = 1;
		obj_unref_locked(w, o);
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

/* A file in ingest/: loaded when flushed (ingest_load). */
static int create_ingest(struct gfs_wr *w, uint64_t dir_ino,
			 const struct gfs_vdesc *dir, const char *name,
			 struct gfs_wobj **h, struct gfs_vdesc *child,
			 struct stat *st)
{
	struct gfs_wobj *o;
	size_t n = strlen(name);
	int rc;

	if ((n > 3 && !strcmp(name + n - 3, ".ok")) ||
	    (n > 6 && !strcmp(name + n - 6, ".error")))
		return -EACCES; /* the daemon's answers */
	pthread_mutex_lock(&w->lock);
	o = obj_new_locked(w, WK_NEW, NULL);
	if (o) {
		o->ingest = 1 + dir->sub;
		o->dirty = true;
		rc = list_new(w, o, dir_ino, name, h, child, st);
	} else {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

int gfs_wr_create(struct gfs_wr *w, uint64_t dir_ino,
		  const struct gfs_vdesc *dir, const char *name,
		  struct gfs_wobj **h, struct gfs_vdesc *child, struct stat *st)
{
	struct gfs_wobj *o, *old;
	char *key = NULL;
	size_t klen = 0;
	int k, rc;

	*h = NULL;
	if (ro_desc(dir))
		return -EROFS;
	if (is_srcdir(dir))
		return create_edge(w, dir_ino, dir, name, h, child, st);
	if (is_ingest(dir))
		return create_ingest(w, dir_ino, dir, name, h, child, st);
	if (!is_node_typedir(dir))
		return -EACCES;
	k = classify(w, dir, name, &key, &klen);
	if (k < 0)
		return k;
	pthread_mutex_lock(&w->lock);
	old = listed_locked(w, dir_ino, name);
	if (old)
		obj_unlist_locked(w, old);
	o = obj_new_locked(w, k == WN_NODE ? WK_NEW : WK_SCRATCH, dir->table);
	if (!o) {
		pthread_mutex_unlock(&w->lock);
		free(key);
		return -ENOMEM;
	}
	o->branch = gfs_view_branch_of(w->v, dir);
	o->key = key;
	o->key_len = klen;
	o->dirty = k == WN_NODE;
	rc = list_new(w, o, dir_ino, name, h, child, st);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

int gfs_wr_open(struct gfs_wr *w, uint64_t ino, const struct gfs_vdesc *d,
		const struct gfs_vdesc *dir, const char *name, int flags,
		struct gfs_wobj **h)
{
	struct gfs_wobj *o;
	int rc = 0;

	*h = NULL;
	if (ro_desc(d))
		return -EROFS;
	pthread_mutex_lock(&w->lock);
	if (d->kind == GFS_VK_WFILE) {
		o = by_serial_locked(w, d->serial);
		if (!o) {
			rc = -ESTALE;
		} else {
			o->refs++;
			o->ino = ino;
			if (flags & O_TRUNC) {
				rc = wbuf_truncate(&o->b, 0, w->staging);
				o->dirty = o->kind == WK_NEW;
				o->gen++;
			}
			*h = o;
		}
		pthread_mutex_unlock(&w->lock);
		return rc;
	}
	pthread_mutex_unlock(&w->lock);
	if (d->kind != GFS_VK_NODEFILE &&
	    (d->kind != GFS_VK_EDGEFILE || !dir || !is_srcdir(dir) || !name))
		return -EACCES;
	pthread_mutex_lock(&w->lock);
	o = obj_new_locked(w, WK_NODE, d->table);
	if (o) {
		o->branch = gfs_view_branch_of(w->v, d);
		o->refs = 1;
		o->ino = ino;
		o->key = gfs_memdup(d->key, d->key_len);
		o->key_len = d->key_len;
		o->dirty = (flags & O_TRUNC) != 0;
	}
	pthread_mutex_unlock(&w->lock);
	if (o && d->kind == GFS_VK_EDGEFILE) {
		char *id;
		size_t id_len;

		o->edge = true;
		o->name = gfs_strdup(name);
		o->from = gfs_memdup(dir->key, dir->key_len);
		o->from_len = dir->key_len;
		rc = classify_edge(name, &o->to, &o->to_len, &id, &id_len);
		free(id); /* the row's id (d->key) is the one to replace */
		rc = rc < 0 ? rc : o->name && o->from ? 0 : -ENOMEM;
	}
	if (!o || !o->key)
		rc = -ENOMEM;
	else if (!rc && !(flags & O_TRUNC))
		rc = read_node(w, d, &o->b); /* o is private until returned */
	if (rc && o) {
		pthread_mutex_lock(&w->lock);
		obj_unref_locked(w, o);
		pthread_mutex_unlock(&w->lock);
		return rc;
	}
	*h = o;
	return rc;
}

int gfs_wr_read(struct gfs_wr *w, struct gfs_wobj *h, uint64_t off,
		void *buf, size_t len, size_t *n)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	rc = wbuf_read(&h->b, off, buf, len, n);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

int gfs_wr_write(struct gfs_wr *w, struct gfs_wobj *h, uint64_t off,
		 const void *buf, size_t len)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	rc = wbuf_write(&h->b, off, buf, len, w->staging);
	h->dirty = h->kind != WK_SCRATCH;
	h->gen++;
	h->mtime_ns = gfs_now_ns();
	pthread_mutex_unlock(&w->lock);
	return rc;
}

int gfs_wr_truncate(struct gfs_wr *w, struct gfs_wobj *h, uint64_t size)
{
	int rc;

	pthread_mutex_lock(&w->lock);
	rc = wbuf_truncate(&h->b, size, w->staging);
	h->dirty = h->kind != WK_SCRATCH;
	h->gen++;
	h->mtime_ns = gfs_now_ns();
	pthread_mutex_unlock(&w->lock);
	return rc;
}

uint64_t gfs_wr_size(struct gfs_wr *w, struct gfs_wobj *h)
{
	uint64_t s;

	pthread_mutex_lock(&w->lock);
	s = h->b.size;
	pthread_mutex_unlock(&w->lock);
	return s;
}

/* Commits o's bytes as node o->key (o->table); on success o is clean
 * (unless written meanwhile), a created file stops being listed and a
 * deletion pending on that key is cleared. */
static int put_obj(struct gfs_wr *w, struct gfs_wobj *o, const char *key,
		   size_t klen, const char *path, const char *op,
		   const struct gfs_writer *who, uint64_t *version)
{
	struct gfs_change ch;
	uint64_t gen;
	size_t len = 0;
	char *data = NULL;
	int rc;

	pthread_mutex_lock(&w->lock);
	gen = o->gen;
	rc = wbuf_copy(&o->b, &data, &len);
	pthread_mutex_unlock(&w->lock);
	if (rc)
		return rc;
	memset(&ch, 0, sizeof ch);
	ch.kind = o->edge ? GFS_CH_EDGE_PUT : GFS_CH_NODE_PUT;
	ch.type = type_of(o->table);
	ch.key = key;
	ch.key_len = klen;
	ch.from = o->from;
	ch.from_len = o->from_len;
	ch.to = o->to;
	ch.to_len = o->to_len;
	ch.data = data;
	ch.data_len = len;
	ch.who = who;
	rc = commit_one(w, o->branch, &ch, op, path);
	free(data);
	if (rc)
		return rc;
	*version = ch.version;
	pthread_mutex_lock(&w->lock);
	if (o->gen == gen)
		o->dirty = false;
	clear_pending_locked(w, o->branch, o->table, key, klen);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* A listed answer file "<name><suffix>" in dir_ino holding text. */
static void answer(struct gfs_wr *w, uint64_t dir_ino, const char *name,
		   const char *suffix, const char *text)
{
	struct gfs_vdesc d;
	struct gfs_wobj *o, *h = NULL;
	struct stat st;
	char nm[NAME_MAX + 8];

	snprintf(nm, sizeof nm, "%s%s", name, suffix);
	pthread_mutex_lock(&w->lock);
	o = obj_new_locked(w, WK_SCRATCH, NULL);
	if (o && wbuf_write(&o->b, 0, text, strlen(text), w->staging) == 0 &&
	    list_new(w, o, dir_ino, nm, &h, &d, &st) == 0) {
		gfs_vdesc_release(&d);
		obj_unref_locked(w, h); /* no handle: only listed */
	} else if (o) {
		o->refs = 1;
		obj_unref_locked(w, o);
	}
	pthread_mutex_unlock(&w->lock);
}

/* Loads an ingest file's bytes as one version (gfs_graph_load, the mode
 * of its directory); "<name>.ok" gets the version and the input goes, or
 * "<name>.error" gets the messages and the close fails. */
static int ingest_flush(struct gfs_wr *w, struct gfs_wobj *h,
			const struct gfs_writer *who, uint64_t *version)
{
	static const enum gfs_load_mode modes[3] = {
		GFS_LOAD_MERGE, GFS_LOAD_APPEND, GFS_LOAD_OVERWRITE };
	struct gfs_load_opts lo = { .mode = modes[h->ingest - 1] };
	struct gfs_load_result res;
	struct gfs_diag d = {{0}};
	char actor[256], path[PATH_MAX], text[600];
	const char *name;
	int fd = -1, rc;
	bool dirty;

	pthread_mutex_lock(&w->lock);
	dirty = h->dirty && h->listed && h->b.size > 0;
	if (dirty && h->b.fd < 0)
		rc = wbuf_spill(&h->b, w->staging); /* the loader reads an fd */
	else
		rc = 0;
	if (dirty && !rc && (fd = dup(h->b.fd)) < 0)
		rc = -errno;
	name = h->name;
	pthread_mutex_unlock(&w->lock);
	if (!dirty || rc)
		return rc;
	snprintf(path, sizeof path, "ingest/%s%s", h->ingest > 1 ?
		 (h->ingest == 2 ? "append/" : "overwrite/") : "", name);
	snprintf(actor, sizeof actor, "%s uid %u pid %d (%s)", w->source,
		 (unsigned)who->uid, (int)who->pid, who->comm);
	lo.actor = actor;
	lo.source = path;
	memset(&res, 0, sizeof res);
	if (lseek(fd, 0, SEEK_SET) < 0)
		rc = -errno;
	else
		rc = gfs_graph_load(w->g, fd, &lo, &res, &d);
	close(fd);
	if (rc) {
		snprintf(text, sizeof text, "%s\n", d.msg[0] ? d.msg : gfs_strerror(rc));
		answer(w, h->dir_ino, name, ".error", text);
		note_error(w, "close", path, -to_errno(rc), d.msg[0] ? d.msg : gfs_strerror(rc));
		return to_errno(rc);
	}
	*version = res.version;
	snprintf(text, sizeof text, "%" PRIu64 "\n", res.version);
	answer(w, h->dir_ino, name, ".ok", text);
	pthread_mutex_lock(&w->lock);
	h->dirty = false;
	obj_unlist_locked(w, h); /* the input vanishes once committed */
	pthread_mutex_unlock(&w->lock);
	return 0;
}

int gfs_wr_flush(struct gfs_wr *w, struct gfs_wobj *h,
		 const struct gfs_writer *who, uint64_t *version)
{
	char path[PATH_MAX];
	bool dirty;
	int rc;

	*version = 0;
	if (h->ingest)
		return ingest_flush(w, h, who, version);
	pthread_mutex_lock(&w->lock);
	/* An empty file is no node: it is what O_TRUNC and a shell's
	 * redirection leave before the bytes come (bash closes its first
	 * descriptor of `>` before echo writes); left dirty, not committed. */
	dirty = h->dirty && h->kind != WK_SCRATCH && h->b.size > 0;
	if (dirty && h->edge)
		snprintf(path, sizeof path, "edges/%s/%.*s/%s",
			 type_of(h->table), (int)h->from_len, h->from,
			 h->name ? h->name : "");
	else if (dirty)
		node_path(path, sizeof path, h->table,
			  h->name ? h->name : "");
	pthread_mutex_unlock(&w->lock);
	if (!dirty)
		return 0;
	if (!h->name && !h->edge) {
		char nm[GFS_NAME_BUF];

		gfs_name_encode(h->key, h->key_len, GFS_NAME_KEY_MAX, nm);
		node_path(path, sizeof path, h->table, nm);
		strncat(path, ".json", sizeof path - strlen(path) - 1);
	}
	rc = put_obj(w, h, h->key, h->key_len, path, "close", who, version);
	if (!rc && h->kind == WK_NEW) {
		pthread_mutex_lock(&w->lock);
		if (!h->dirty)
			obj_unlist_locked(w, h);
		pthread_mutex_unlock(&w->lock);
	}
	return rc;
}

void gfs_wr_close(struct gfs_wr *w, struct gfs_wobj *h)
{
	pthread_mutex_lock(&w->lock);
	/* A created node file whose commit failed goes with its last handle:
	 * nothing of it was published. */
	if (h->kind == WK_NEW && h->refs == 2 && h->listed)
		obj_unlist_locked(w, h);
	obj_unref_locked(w, h);
	pthread_mutex_unlock(&w->lock);
}

int gfs_wr_truncate_path(struct gfs_wr *w, uint64_t ino,
			 const struct gfs_vdesc *d, uint64_t size,
			 const struct gfs_writer *who, uint64_t *version)
{
	struct gfs_wobj *h;
	int rc;

	*version = 0;
	if (size == 0 && d->kind == GFS_VK_NODEFILE)
		return -EINVAL; /* an empty file is no node: rm deletes one */
	rc = gfs_wr_open(w, ino, d, NULL, NULL, 0, &h);
	if (rc)
		return rc;
	rc = gfs_wr_truncate(w, h, size);
	if (!rc)
		rc = gfs_wr_flush(w, h, who, version);
	gfs_wr_close(w, h);
	return rc;
}

/* ---- unlink and rename -------------------------------------------------- */

static int del_node(struct gfs_wr *w, const char *branch, const char *table,
		    const char *key, size_t klen, const char *path,
		    const struct gfs_writer *who)
{
	struct gfs_change ch;

	memset(&ch, 0, sizeof ch);
	ch.kind = GFS_CH_NODE_DEL;
	ch.type = type_of(table);
	ch.key = key;
	ch.key_len = klen;
	ch.who = who;
	return commit_one(w, branch, &ch, "unlink", path);
}

static int unlink_edge(struct gfs_wr *w, const struct gfs_vdesc *c,
		       const char *name, const struct gfs_writer *who)
{
	const char *table = c->kind == GFS_VK_EDGELINK ? c->table2 : c->table;
	struct gfs_change ch;
	char path[PATH_MAX];

	snprintf(path, sizeof path, "edges/%s/.../%s", type_of(table), name);
	memset(&ch, 0, sizeof ch);
	ch.kind = GFS_CH_EDGE_DEL;
	ch.type = type_of(table);
	ch.key = c->key;
	ch.key_len = c->key_len;
	ch.who = who;
	return commit_one(w, gfs_view_branch_of(w->v, c), &ch, "unlink", path);
}

/* Removes scratch or created file o (listed); a deletion pending on it is
 * carried out now. */
static int unlink_obj(struct gfs_wr *w, struct gfs_wobj *o,
		      const struct gfs_writer *who)
{
	char *pend = NULL, path[PATH_MAX];
	size_t plen = 0;
	const char *table = o->table;
	int rc = 0;

	if (o->pend) {
		pend = o->pend;
		plen = o->pend_len;
		o->pend = NULL;
		node_path(path, sizeof path, table, o->name);
	}
	obj_unlist_locked(w, o);
	pthread_mutex_unlock(&w->lock);
	if (pend) {
		rc = del_node(w, o->branch, table, pend, plen, path, who);
		if (rc == -ENOENT)
			rc = 0; /* gone already: what was asked */
	}
	free(pend);
	pthread_mutex_lock(&w->lock);
	return rc;
}

int gfs_wr_unlink(struct gfs_wr *w, uint64_t dir_ino,
		  const struct gfs_vdesc *dir, const char *name,
		  const struct gfs_writer *who)
{
	struct gfs_vdesc c;
	struct gfs_wobj *o;
	char *key = NULL, path[PATH_MAX];
	size_t klen;
	int k, rc;

	if (ro_desc(dir))
		return -EROFS;
	if (is_srcdir(dir) || is_ingest(dir)) {
		pthread_mutex_lock(&w->lock);
		o = listed_locked(w, dir_ino, name);
		rc = o ? unlink_obj(w, o, who) : is_ingest(dir) ? -ENOENT : 1;
		pthread_mutex_unlock(&w->lock);
		if (rc != 1)
			return rc;
	}
	if (is_node_typedir(dir)) {
		pthread_mutex_lock(&w->lock);
		o = listed_locked(w, dir_ino, name);
		rc = o ? unlink_obj(w, o, who) : 1;
		pthread_mutex_unlock(&w->lock);
		if (rc != 1)
			return rc;
		k = classify(w, dir, name, &key, &klen);
		if (k < 0)
			return k == -EINVAL ? -ENOENT : k;
		if (k != WN_NODE)
			return -ENOENT;
		pthread_mutex_lock(&w->lock);
		rc = pending_locked(w, gfs_view_branch_of(w->v, dir), dir->table,
				    key, klen) ? -ENOENT : 0;
		pthread_mutex_unlock(&w->lock);
		node_path(path, sizeof path, dir->table, name);
		if (!rc)
			rc = del_node(w, gfs_view_branch_of(w->v, dir), dir->table,
				      key, klen, path, who);
		free(key);
		return rc;
	}
	rc = gfs_view_lookup(w->v, dir, name, &c, NULL);
	if (rc)
		return rc;
	if (c.kind == GFS_VK_EDGEFILE || c.kind == GFS_VK_EDGELINK)
		rc = unlink_edge(w, &c, name, who);
	else
		rc = gfs_vdesc_is_dir(&c) ? -EISDIR : -EACCES;
	gfs_vdesc_release(&c);
	return rc;
}

/* mv of a listed file onto node name (key): its bytes become that node. */
static int rename_obj_to_node(struct gfs_wr *w, struct gfs_wobj *o,
			      const char *key, size_t klen, const char *path,
			      const struct gfs_writer *who)
{
	uint64_t version;
	int rc;

	rc = put_obj(w, o, key, klen, path, "rename", who, &version);
	if (rc)
		return rc;
	pthread_mutex_lock(&w->lock);
	if (o->pend) { /* a backup put back under another name: delete */
		char *pend = o->pend;
		size_t plen = o->pend_len;

		o->pend = NULL;
		obj_unlist_locked(w, o);
		pthread_mutex_unlock(&w->lock);
		rc = del_node(w, o->branch, o->table, pend, plen, path, who);
		free(pend);
		return rc == -ENOENT ? 0 : rc;
	}
	obj_unlist_locked(w, o);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* mv of node key to scratch name: the scratch file holds its bytes and
 * the node is pending deletion (see the top of this file). */
static int rename_node_to_scratch(struct gfs_wr *w, uint64_t dir_ino,
				  const struct gfs_vdesc *dir,
				  const struct gfs_vdesc *node,
				  const char *nname)
{
	struct gfs_wbuf_holder { struct wbuf b; } tmp;
	struct gfs_wobj *o, *old;
	int rc;

	wbuf_init(&tmp.b);
	rc = read_node(w, node, &tmp.b);
	if (rc) {
		wbuf_release(&tmp.b);
		return rc;
	}
	pthread_mutex_lock(&w->lock);
	old = listed_locked(w, dir_ino, nname);
	if (old)
		obj_unlist_locked(w, old);
	o = obj_new_locked(w, WK_SCRATCH, dir->table);
	if (o) {
		o->branch = gfs_view_branch_of(w->v, dir);
		o->refs = 1;
		o->listed = true;
		o->dir_ino = dir_ino;
		o->name = gfs_strdup(nname);
		o->pend = gfs_memdup(node->key, node->key_len);
		o->pend_len = node->key_len;
		o->b = tmp.b;
		wbuf_init(&tmp.b);
		if (!o->name || !o->pend) {
			obj_unlist_locked(w, o);
			rc = -ENOMEM;
		}
	} else {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&w->lock);
	wbuf_release(&tmp.b);
	return rc;
}

static int rename_node(struct gfs_wr *w, const struct gfs_vdesc *dir,
		       const struct gfs_vdesc *node, const char *key2,
		       size_t klen2, const char *path,
		       const struct gfs_writer *who)
{
	struct gfs_change ch;

	memset(&ch, 0, sizeof ch);
	ch.kind = GFS_CH_NODE_RENAME;
	ch.type = type_of(node->table);
	ch.key = node->key;
	ch.key_len = node->key_len;
	ch.key2 = key2;
	ch.key2_len = klen2;
	ch.who = who;
	return commit_one(w, gfs_view_branch_of(w->v, dir), &ch, "rename", path);
}

/* Both names in node type directory dir. */
static int rename_in(struct gfs_wr *w, uint64_t dir_ino,
		     const struct gfs_vdesc *dir, const char *name,
		     const char *nname, unsigned flags,
		     const struct gfs_writer *who)
{
	struct gfs_vdesc src, dst;
	struct gfs_wobj *o, *t;
	char *key2 = NULL, path[PATH_MAX];
	size_t klen2;
	int k2, rc;

	node_path(path, sizeof path, dir->table, nname);
	k2 = classify(w, dir, nname, &key2, &klen2);
	if (k2 < 0)
		return k2;
	pthread_mutex_lock(&w->lock);
	o = listed_locked(w, dir_ino, name);
	t = listed_locked(w, dir_ino, nname);
	if (o && k2 == WN_SCRATCH) {
		/* scratch -> scratch: only the name changes */
		char *nm = gfs_strdup(nname);

		rc = nm ? 0 : -ENOMEM;
		if (nm && t && t != o) {
			if (t->pend && !o->pend) { /* keep the pending deletion */
				o->pend = t->pend;
				o->pend_len = t->pend_len;
				t->pend = NULL;
			}
			obj_unlist_locked(w, t);
		}
		if (nm) {
			free(o->name);
			o->name = nm;
			/* A node file being created, renamed to a scratch
			 * name, is scratch from now on. */
			o->kind = WK_SCRATCH;
			o->dirty = false;
		}
		pthread_mutex_unlock(&w->lock);
		return rc;
	}
	if (o) {
		o->refs++;
		if (t && t != o)
			obj_unlist_locked(w, t);
		pthread_mutex_unlock(&w->lock);
		rc = rename_obj_to_node(w, o, key2, klen2, path, who);
		pthread_mutex_lock(&w->lock);
		obj_unref_locked(w, o);
		pthread_mutex_unlock(&w->lock);
		free(key2);
		return rc;
	}
	pthread_mutex_unlock(&w->lock);
	/* The source is a node file (not pending deletion). */
	rc = gfs_wr_lookup(w, dir_ino, dir, name, &src, NULL);
	if (rc == 0) {
		gfs_vdesc_release(&src);
		rc = -ENOENT;
	}
	if (rc == 1)
		rc = gfs_view_lookup(w->v, dir, name, &src, NULL);
	if (rc) {
		free(key2);
		return rc;
	}
	if (src.kind != GFS_VK_NODEFILE) {
		rc = -EINVAL;
	} else if (k2 == WN_SCRATCH) {
		rc = rename_node_to_scratch(w, dir_ino, dir, &src, nname);
	} else if (src.key_len == klen2 && !memcmp(src.key, key2, klen2)) {
		rc = 0; /* same node */
	} else {
		rc = gfs_view_lookup(w->v, dir, nname, &dst, NULL);
		if (rc == 0) {
			gfs_vdesc_release(&dst);
			rc = -EEXIST;
			note_error(w, "rename", path, EEXIST,
				   "a node with that key exists: no merge of two nodes by mv");
		} else if (rc == -ENOENT) {
			rc = rename_node(w, dir, &src, key2, klen2, path, who);
		}
	}
	(void)flags;
	gfs_vdesc_release(&src);
	free(key2);
	return rc;
}

/* In edges/<E>/<from>/: a scratch file renamed onto an edge file name is
 * committed as that edge (sed -i); scratch -> scratch renames it; edge
 * files themselves are not renamed (EPERM: an edge file's name is its
 * endpoints and id). */
static int rename_in_src(struct gfs_wr *w, uint64_t dir_ino,
			 const struct gfs_vdesc *dir, const char *name,
			 const char *nname, const struct gfs_writer *who)
{
	char *to, *id, ulid[GFS_ULID_LEN + 1], path[PATH_MAX];
	struct gfs_vdesc ex;
	size_t to_len, id_len;
	uint64_t version;
	struct gfs_wobj *o;
	int k = classify_edge(nname, &to, &to_len, &id, &id_len), rc;

	if (k < 0)
		return k;
	if (k == WN_NODE && !id) { /* "<to>.json": the pair's first edge, or new */
		rc = gfs_view_lookup(w->v, dir, nname, &ex, NULL);
		if (rc == 0)
			id = gfs_memdup(ex.key, ex.key_len), id_len = ex.key_len;
		else if ((rc = gfs_ulid_new(ulid)) == 0)
			id = gfs_strdup(ulid), id_len = GFS_ULID_LEN;
		if (rc == 0)
			gfs_vdesc_release(&ex);
	}
	pthread_mutex_lock(&w->lock);
	o = listed_locked(w, dir_ino, name);
	rc = !o ? -EPERM : k == WN_NODE && !id ? -ENOMEM : 0;
	if (!rc && k == WN_SCRATCH) {
		char *nm = gfs_strdup(nname);

		if (nm) {
			free(o->name);
			o->name = nm;
		}
		pthread_mutex_unlock(&w->lock);
		free(to);
		return nm ? 0 : -ENOMEM;
	}
	if (!rc) {
		free(o->to);
		free(o->key);
		free(o->from);
		o->edge = true;
		o->to = to, o->to_len = to_len;
		o->key = id, o->key_len = id_len;
		o->from = gfs_memdup(dir->key, dir->key_len);
		o->from_len = dir->key_len;
		to = id = NULL;
		o->refs++;
	}
	pthread_mutex_unlock(&w->lock);
	free(to);
	free(id);
	if (rc)
		return rc;
	snprintf(path, sizeof path, "edges/%s/%s", type_of(dir->table), nname);
	rc = o->from ? put_obj(w, o, o->key, o->key_len, path, "rename", who,
			       &version) : -ENOMEM;
	pthread_mutex_lock(&w->lock);
	if (!rc)
		obj_unlist_locked(w, o);
	obj_unref_locked(w, o);
	pthread_mutex_unlock(&w->lock);
	return rc;
}

int gfs_wr_rename(struct gfs_wr *w, uint64_t dir_ino,
		  const struct gfs_vdesc *dir, const char *name,
		  uint64_t ndir_ino, const struct gfs_vdesc *ndir,
		  const char *nname, unsigned flags,
		  const struct gfs_writer *who)
{
	if (ro_desc(dir) || ro_desc(ndir))
		return -EROFS;
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT */
	if (is_srcdir(dir) && is_srcdir(ndir))
		return dir_ino == ndir_ino ?
		       rename_in_src(w, dir_ino, dir, name, nname, who) : -EXDEV;
	if (!is_node_typedir(dir) || !is_node_typedir(ndir))
		return is_node_typedir(dir) || is_node_typedir(ndir) ?
		       -EXDEV : -EPERM;
	if (dir_ino != ndir_ino)
		return -EXDEV; /* mv falls back to copy + unlink */
	if (!strcmp(name, nname))
		return 0;
	return rename_in(w, dir_ino, dir, name, nname, flags, who);
}

/* ---- symlinks: edges by graph walking ---------------------------------- */

#define LINK_DEPTH 64

/* target, read from directory comps[0..n) of the mount (or absolute under
 * the mount point), as the components of a path from the root. */
static int resolve(const struct gfs_wr *w, const char *branch, char **comps,
		   size_t n, const char *target, char **out, size_t *nout)
{
	size_t k = 0, ml = w->mnt ? strlen(w->mnt) : 0;
	const char *c = target;
	int rc = 0;

	if (target[0] == '/') {
		if (!ml || strncmp(target, w->mnt, ml) || target[ml] != '/')
			return -EINVAL;
		c = target + ml;
		if (branch) { /* absolute: MNT/branches/<name>/nodes/... */
			size_t bl = strlen(branch);
			if (strncmp(c, "/branches/", 10) || strncmp(c + 10, branch, bl) ||
			    c[10 + bl] != '/')
				return -EINVAL;
			c += 10 + bl;
		}
	} else {
		for (; k < n; k++)
			if (!(out[k] = gfs_strdup(comps[k])))
				rc = -ENOMEM;
	}
	while (!rc && *c) {
		const char *e = strchr(c, '/');
		size_t len = e ? (size_t)(e - c) : strlen(c);

		if (len == 2 && !memcmp(c, "..", 2)) {
			if (!k)
				rc = -EINVAL;
			else
				free(out[--k]);
		} else if (len && !(len == 1 && c[0] == '.')) {
			if (k == LINK_DEPTH)
				rc = -EINVAL;
			else if (!(out[k++] = gfs_memdup(c, len)))
				rc = -ENOMEM;
		}
		c += len + (e != NULL);
	}
	*nout = k;
	return rc;
}

/* Looks comps[0..n) up from the root of branch's view (NULL: the mount's
 * root, main; else branches/<branch>/): the descriptor of the last one. */
static int walk(struct gfs_wr *w, const char *branch, char **comps, size_t n,
		struct gfs_vdesc *d)
{
	struct gfs_vdesc cur, next;
	char *pre[2] = { "branches", (char *)branch };
	int rc = 0;

	gfs_view_root(w->v, &cur);
	for (size_t i = 0; branch && i < 2 && !rc; i++) {
		rc = gfs_view_lookup(w->v, &cur, pre[i], &next, NULL);
		gfs_vdesc_release(&cur);
		if (!rc)
			cur = next;
		else
			memset(&cur, 0, sizeof cur);
	}
	for (size_t i = 0; i < n && !rc; i++) {
		rc = gfs_view_lookup(w->v, &cur, comps[i], &next, NULL);
		gfs_vdesc_release(&cur);
		if (!rc)
			cur = next;
		else
			memset(&cur, 0, sizeof cur);
	}
	if (rc) {
		gfs_vdesc_release(&cur);
		return rc;
	}
	*d = cur;
	return 0;
}

/* The node key a link target names, checked: a node file of the live
 * view, of the type at the edge's other end, named like the link. */
static int link_end(struct gfs_wr *w, const struct gfs_vdesc *dir,
		    const char *name, const char *target, char **key,
		    size_t *klen, char *why, size_t wn)
{
	char enc[GFS_NAME_BUF], *mine[5], *path[LINK_DEPTH];
	const char *side = dir->sub ? "in" : "out";
	size_t n = 0, stem;
	struct gfs_vdesc f, e;
	const char *br = gfs_view_branch_of(w->v, dir);
	int rc;

	gfs_name_encode(dir->key, dir->key_len, GFS_NAME_KEY_MAX, enc);
	mine[0] = "nodes";
	mine[1] = (char *)type_of(dir->table);
	mine[2] = enc;
	mine[3] = (char *)side;
	mine[4] = (char *)type_of(dir->table2);
	rc = resolve(w, br, mine, 5, target, path, &n);
	if (!rc && (n != 3 || strcmp(path[0], "nodes") ||
		    !gfs_name_is_json(path[2], strlen(path[2]), &stem)))
		rc = -EINVAL;
	if (rc) {
		snprintf(why, wn, "'%s' is no node file of the live view", target);
		goto out;
	}
	if (strcmp(path[2], name)) {
		snprintf(why, wn, "the link's name must be its target's, '%s'", path[2]);
		rc = -EINVAL;
		goto out;
	}
	rc = walk(w, br, path, 3, &f);
	if (rc) {
		snprintf(why, wn, "no node at '%s' (%s)", target, strerror(-rc));
		rc = -EINVAL;
		goto out;
	}
	/* The other end's type: nodes/<T2>/<k2>/{in,out}/<E> exists. */
	path[2][stem] = '\0';
	mine[0] = path[0]; mine[1] = path[1]; mine[2] = path[2];
	mine[3] = dir->sub ? "out" : "in";
	mine[4] = (char *)type_of(dir->table2);
	if (f.kind != GFS_VK_NODEFILE || walk(w, br, mine, 5, &e)) {
		snprintf(why, wn, "'%s' is not a node of the type at the %s end of %s",
			 target, dir->sub ? "from" : "to", type_of(dir->table2));
		rc = -EINVAL;
	} else {
		gfs_vdesc_release(&e);
		*key = gfs_memdup(f.key, f.key_len);
		*klen = f.key_len;
		rc = *key ? 0 : -ENOMEM;
	}
	gfs_vdesc_release(&f);
out:
	for (size_t i = 0; i < n; i++)
		free(path[i]);
	return rc;
}

int gfs_wr_symlink(struct gfs_wr *w, const struct gfs_vdesc *dir,
		   const char *name, const char *target,
		   const struct gfs_writer *who)
{
	char why[512] = "", path[PATH_MAX], *key = NULL;
	struct gfs_change ch;
	size_t klen = 0;
	int rc;

	if (ro_desc(dir))
		return -EROFS;
	if (dir->kind != GFS_VK_ETDIR)
		return -EPERM;
	snprintf(path, sizeof path, "nodes/%s/.../%s/%s/%s", type_of(dir->table),
		 dir->sub ? "in" : "out", type_of(dir->table2), name);
	rc = link_end(w, dir, name, target, &key, &klen, why, sizeof why);
	if (rc) {
		note_error(w, "symlink", path, -rc, why);
		return rc;
	}
	memset(&ch, 0, sizeof ch);
	ch.kind = GFS_CH_EDGE_PUT;
	ch.type = type_of(dir->table2);
	ch.from = dir->sub ? key : dir->key;
	ch.from_len = dir->sub ? klen : dir->key_len;
	ch.to = dir->sub ? dir->key : key;
	ch.to_len = dir->sub ? dir->key_len : klen;
	ch.who = who;
	/* the link is named <to>.json: the pair's first edge or nothing (a
	 * commit whose edge got another name would answer ENOENT after it
	 * published; found by tests/model, seed 1402486) */
	ch.first_of_pair = true;
	rc = commit_one(w, gfs_view_branch_of(w->v, dir), &ch, "symlink", path);
	free(key);
	return rc;
}
