/* view.c - the mount's tree over the library's read API (see view.h).
 *
 * Caches, each behind its own mutex and never held across a call that can
 * block on another of them:
 *   - open table versions (struct tvent), refcounted, LRU-evicted when
 *     unused beyond opts.tver_cache;
 *   - graph version records (struct gvent), refcounted, small LRU;
 *   - the history index: for every table, the sorted (table version, commit
 *     time) pairs of the graph versions that first pinned each of its
 *     versions, and the byte offset of every line of log.jsonl.  It grows
 *     by scanning only the graph versions published since the last scan, so
 *     its memory is O(graph versions + table pin changes) (docs/mount.md).
 * Nothing here loads a table: rows are found by id or by iterator.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "names.h"
#include "view.h"
#include "failpoints.h"

#define GV_CACHE_MAX 32
#define VERSIONS_BATCH 64

struct tvent {
	struct tvent *next;
	const char *table;
	uint32_t ver;
	struct gfs_tver *tv;
	unsigned refs;
	uint64_t used;
};

struct gvent {
	struct gvent *next;
	struct gfs_gv *gv;
	unsigned refs;
	uint64_t used;
};

struct thist {
	struct thist *next;
	const char *table;
	uint32_t *tver;    /* increasing */
	uint64_t *time_ns; /* commit time of the first graph version pinning it */
	size_t n, cap;
};

struct gfs_view {
	struct gfs_graph *g;
	struct gfs_manifest *m;
	struct gfs_tstore *ts;
	struct gfs_view_opts o;
	uid_t uid;
	gid_t gid;

	pthread_mutex_t lock; /* tvs, gvs, tick, interned, stats */
	struct tvent *tvs;
	size_t n_tvs;
	struct gvent *gvs;
	size_t n_gvs;
	uint64_t tick;
	char **interned;
	size_t n_interned, cap_interned;
	struct gfs_view_stats stats;

	/* branches/<name>/ views: ver key -> name, protected by lock */
	struct bname { uint64_t key; char *name; } *bnames;
	size_t n_bnames, cap_bnames;

	/* The last head each live ver was read at (main: ver 0), protected
	 * by lock, and whether the manifest is known unreachable (the
	 * notifier says so, etcd): then a live view answers from these
	 * without asking (docs/multi-host.md §5 "Outage"). */
	struct lhead { uint64_t ver, head; } lheads[16];
	size_t n_lheads;
	atomic_bool offline;

	/* Reads of main's head shared between requests (etcd only: there a
	 * read is a request to the cluster; docs/multi-host.md §5 "One read,
	 * many requests", invariant 361).  A request takes the answer of a
	 * read that began after the request did, never of one already in
	 * flight when it arrived: started counts the reads begun, done is the
	 * last one finished (one runs at a time), rc/head its answer. */
	bool share_head;
	/* The highest graph version a live listing of this view was pinned
	 * at: every cookie it handed out names a version at or below it */
	atomic_uint_fast64_t listed_max;
	pthread_mutex_t hf_lock; /* hf_* */
	pthread_cond_t hf_cond;
	uint64_t hf_started, hf_done, hf_head;
	int hf_rc;
	bool hf_running;

	pthread_mutex_t hist_lock; /* everything below */
	struct thist *hist;
	uint64_t hist_upto;
	uint64_t *log_ver, *log_end;
	size_t log_n, log_cap;
};

static bool lhead_get(struct gfs_view *v, uint64_t ver, uint64_t *out);
static void listed_note(struct gfs_view *v, uint64_t ver);

/* The manifest's head, or while it is unreachable (etcd) main's head as
 * last read, without a request that would wait out the client's
 * timeouts (docs/multi-host.md §5). */
static uint64_t view_head_version(struct gfs_view *v)
{
	uint64_t h = 0;

	if (!atomic_load(&v->offline))
		return gfs_manifest_head_version(v->m);
	return lhead_get(v, 0, &h) ? h : 0;
}

/* ---- interned table names --------------------------------------------- */

static const char *intern_locked(struct gfs_view *v, const char *s)
{
	for (size_t i = 0; i < v->n_interned; i++)
		if (strcmp(v->interned[i], s) == 0)
			return v->interned[i];
	if (v->n_interned == v->cap_interned) {
		size_t cap = v->cap_interned ? 2 * v->cap_interned : 16;
		char **p = realloc(v->interned, cap * sizeof *p);

		if (!p)
			return NULL;
		v->interned = p;
		v->cap_interned = cap;
	}
	char *c = gfs_strdup(s);

	if (c)
		v->interned[v->n_interned++] = c;
	return c;
}

/* Table names live until gfs_view_free; NULL on ENOMEM. */
static const char *intern(struct gfs_view *v, const char *s)
{
	const char *r;

	pthread_mutex_lock(&v->lock);
	r = intern_locked(v, s);
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* ---- table version cache --------------------------------------------- */

static struct tvent *tv_find_locked(struct gfs_view *v, const char *table,
				    uint32_t ver)
{
	for (struct tvent *e = v->tvs; e; e = e->next)
		if (e->table == table && e->ver == ver)
			return e;
	return NULL;
}

/* Unlinks unused entries beyond the limit; returns them for closing. */
static struct tvent *tv_evict_locked(struct gfs_view *v)
{
	struct tvent *out = NULL;

	while (v->n_tvs > v->o.tver_cache) {
		struct tvent **victim = NULL;

		for (struct tvent **pp = &v->tvs; *pp; pp = &(*pp)->next)
			if (!(*pp)->refs &&
			    (!victim || (*pp)->used < (*victim)->used))
				victim = pp;
		if (!victim)
			break;
		struct tvent *e = *victim;

		*victim = e->next;
		e->next = out;
		out = e;
		v->n_tvs--;
	}
	return out;
}

static void tv_close_list(struct tvent *e)
{
	while (e) {
		struct tvent *n = e->next;

		gfs_tver_close(e->tv);
		free(e);
		e = n;
	}
}

/* A referenced open table version; release with tv_put. */
static int tv_get(struct gfs_view *v, const char *table, uint32_t ver,
		  struct tvent **out)
{
	struct gfs_diag d = {{0}};
	struct gfs_tver *tv;
	struct tvent *e, *dead;
	int rc;

	pthread_mutex_lock(&v->lock);
	e = tv_find_locked(v, table, ver);
	if (e) {
		e->refs++;
		e->used = ++v->tick;
		v->stats.tver_hits++;
		pthread_mutex_unlock(&v->lock);
		*out = e;
		return 0;
	}
	v->stats.tver_misses++;
	pthread_mutex_unlock(&v->lock);
	/* Opening reads the file: do it without the lock. */
	rc = gfs_tver_open(v->ts, table, ver, &tv, &d);
	if (rc)
		return rc;
	pthread_mutex_lock(&v->lock);
	e = tv_find_locked(v, table, ver);
	if (e) {
		gfs_tver_close(tv);
	} else if ((e = calloc(1, sizeof *e))) {
		e->table = table;
		e->ver = ver;
		e->tv = tv;
		e->next = v->tvs;
		v->tvs = e;
		v->n_tvs++;
	} else {
		pthread_mutex_unlock(&v->lock);
		gfs_tver_close(tv);
		return -ENOMEM;
	}
	e->refs++;
	e->used = ++v->tick;
	dead = tv_evict_locked(v);
	pthread_mutex_unlock(&v->lock);
	tv_close_list(dead);
	*out = e;
	return 0;
}

static void tv_put(struct gfs_view *v, struct tvent *e)
{
	struct tvent *dead;

	if (!e)
		return;
	pthread_mutex_lock(&v->lock);
	e->refs--;
	dead = tv_evict_locked(v);
	pthread_mutex_unlock(&v->lock);
	tv_close_list(dead);
}

/* ---- graph version cache ---------------------------------------------- */

static void gv_free_list(struct gvent *e)
{
	while (e) {
		struct gvent *n = e->next;

		gfs_gv_free(e->gv);
		free(e);
		e = n;
	}
}

static struct gvent *gv_evict_locked(struct gfs_view *v)
{
	struct gvent *out = NULL;

	while (v->n_gvs > GV_CACHE_MAX) {
		struct gvent **victim = NULL;

		for (struct gvent **pp = &v->gvs; *pp; pp = &(*pp)->next)
			if (!(*pp)->refs &&
			    (!victim || (*pp)->used < (*victim)->used))
				victim = pp;
		if (!victim)
			break;
		struct gvent *e = *victim;

		*victim = e->next;
		e->next = out;
		out = e;
		v->n_gvs--;
	}
	return out;
}

static struct gvent *gv_find_locked(struct gfs_view *v, uint64_t ver)
{
	for (struct gvent *e = v->gvs; e; e = e->next)
		if (e->gv->version == ver)
			return e;
	return NULL;
}

static int gv_get(struct gfs_view *v, uint64_t ver, struct gvent **out)
{
	struct gfs_gv *gv;
	struct gvent *e, *dead;
	int rc;

	pthread_mutex_lock(&v->lock);
	e = gv_find_locked(v, ver);
	if (e) {
		e->refs++;
		e->used = ++v->tick;
		v->stats.gv_hits++;
		pthread_mutex_unlock(&v->lock);
		*out = e;
		return 0;
	}
	v->stats.gv_misses++;
	pthread_mutex_unlock(&v->lock);
	rc = gfs_manifest_get(v->m, ver, &gv);
	if (rc)
		return rc;
	pthread_mutex_lock(&v->lock);
	e = gv_find_locked(v, ver);
	if (e) {
		gfs_gv_free(gv);
	} else if ((e = calloc(1, sizeof *e))) {
		e->gv = gv;
		e->next = v->gvs;
		v->gvs = e;
		v->n_gvs++;
	} else {
		pthread_mutex_unlock(&v->lock);
		gfs_gv_free(gv);
		return -ENOMEM;
	}
	e->refs++;
	e->used = ++v->tick;
	dead = gv_evict_locked(v);
	pthread_mutex_unlock(&v->lock);
	gv_free_list(dead);
	*out = e;
	return 0;
}

static void gv_put(struct gfs_view *v, struct gvent *e)
{
	struct gvent *dead;

	if (!e)
		return;
	pthread_mutex_lock(&v->lock);
	e->refs--;
	dead = gv_evict_locked(v);
	pthread_mutex_unlock(&v->lock);
	gv_free_list(dead);
}

static int hist_scan_locked(struct gfs_view *v);

void gfs_view_forget_removed(struct gfs_view *v)
{
	struct gvent *dead = NULL;

	pthread_mutex_lock(&v->lock);
	for (struct gvent **pp = &v->gvs; *pp;) {
		struct gvent *e = *pp;

		if (e->refs) { /* in use: held, so not removed */
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		e->next = dead;
		dead = e;
		v->n_gvs--;
	}
	pthread_mutex_unlock(&v->lock);
	gv_free_list(dead);
	/* log.jsonl's lines of removed versions got shorter: index again
	 * (the table-version times stay: the records keep their pins). */
	pthread_mutex_lock(&v->hist_lock);
	v->log_n = 0;
	v->hist_upto = 0;
	hist_scan_locked(v);
	pthread_mutex_unlock(&v->hist_lock);
}

uint64_t gfs_view_head(struct gfs_view *v)
{
	return view_head_version(v);
}

/* ---- branch views ------------------------------------------------------ */

/* The ver of branch name's live view: GFS_VER_BRANCH | 63 bits of a hash
 * of the name, so inode numbers under it are the same on every mount.  0
 * on ENOMEM or if another name has the same key (then the branch is not
 * shown: two names in 2^63). */
static uint64_t branch_key(struct gfs_view *v, const char *name)
{
	uint64_t key = GFS_VER_BRANCH | (gfs_hash64(name, strlen(name)) & ~GFS_VER_BRANCH);
	struct bname *p;

	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->n_bnames; i++)
		if (v->bnames[i].key == key) {
			if (strcmp(v->bnames[i].name, name))
				key = 0;
			pthread_mutex_unlock(&v->lock);
			return key;
		}
	p = gfs_array_grow(v->bnames, &v->cap_bnames, v->n_bnames, sizeof *p, 8);
	if (p) {
		v->bnames = p;
		p[v->n_bnames].key = key;
		p[v->n_bnames].name = gfs_strdup(name);
		if (p[v->n_bnames].name)
			v->n_bnames++;
		else
			key = 0;
	} else {
		key = 0;
	}
	pthread_mutex_unlock(&v->lock);
	return key;
}

/* The name of a branch key (borrowed until gfs_view_free), or NULL. */
static const char *branch_name(struct gfs_view *v, uint64_t key)
{
	const char *name = NULL;

	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->n_bnames && !name; i++)
		if (v->bnames[i].key == key)
			name = v->bnames[i].name;
	pthread_mutex_unlock(&v->lock);
	return name;
}

bool gfs_vdesc_in_branch(const struct gfs_vdesc *d)
{
	return (d->ver & GFS_VER_BRANCH) || d->kind == GFS_VK_BRANCHES;
}

const char *gfs_view_branch_of(struct gfs_view *v, const struct gfs_vdesc *d)
{
	return d->ver & GFS_VER_BRANCH ? branch_name(v, d->ver) : NULL;
}

/* The graph version a live ver (0: main, or a branch key) shows now:
 * 0 and -ENOENT when the branch is gone. */
static bool lhead_get(struct gfs_view *v, uint64_t ver, uint64_t *out)
{
	bool found = false;

	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->n_lheads && !found; i++)
		if (v->lheads[i].ver == ver) {
			*out = v->lheads[i].head;
			found = true;
		}
	pthread_mutex_unlock(&v->lock);
	return found;
}

static void lhead_put(struct gfs_view *v, uint64_t ver, uint64_t head)
{
	size_t i;

	pthread_mutex_lock(&v->lock);
	for (i = 0; i < v->n_lheads && v->lheads[i].ver != ver; i++)
		;
	if (i == v->n_lheads) {
		/* full: the oldest branch entry goes; main (slot 0 once read) stays */
		if (i == sizeof v->lheads / sizeof v->lheads[0]) {
			memmove(&v->lheads[1], &v->lheads[2],
				(i - 2) * sizeof v->lheads[0]);
			i--;
		} else {
			v->n_lheads++;
		}
	}
	v->lheads[i].ver = ver;
	v->lheads[i].head = head;
	pthread_mutex_unlock(&v->lock);
}

void gfs_view_set_offline(struct gfs_view *v, bool offline)
{
	atomic_store(&v->offline, offline);
}

bool gfs_view_offline(struct gfs_view *v)
{
	return atomic_load(&v->offline);
}

bool gfs_view_has_version(struct gfs_view *v, uint64_t ver)
{
	pthread_mutex_lock(&v->lock);
	struct gvent *e = gv_find_locked(v, ver);
	bool has = e && !e->gv->removed;
	pthread_mutex_unlock(&v->lock);
	return has;
}

/* Main's head as read by a request to the manifest that began after this
 * call did: one started by this call, or by another request's call that
 * arrived while a read was already in flight and so waited for the next.
 * A request that arrives while a read is in flight waits for that one to
 * end and then for the next, which begins after it arrived: whatever had
 * committed before the request began (graphctl load returned on any
 * host) is in that answer, as it is in a read of the request's own.
 * Many requests arriving together cost two reads at most, not one each. */
static _Thread_local bool own_reads;

void gfs_view_own_reads(void)
{
	own_reads = true;
}

/* The request on this thread (gfs_view_req_begin): main's head as its
 * first read found it.  That read began after the request did, so every
 * later use within the request keeps the promise, and the request sees
 * one head throughout. */
static _Thread_local struct {
	bool on, have;
	int rc;
	uint64_t head;
} req_head;

void gfs_view_req_begin(void)
{
	req_head.on = true;
	req_head.have = false;
}

void gfs_view_req_end(void)
{
	req_head.on = false;
	req_head.have = false;
}

static int main_head_shared(struct gfs_view *v, struct gfs_branch *b)
{
	uint64_t need, me;
	bool waited = false;
	int rc;

	pthread_mutex_lock(&v->hf_lock);
	need = v->hf_started + 1; /* the first read to begin from now on */
	while (v->hf_done < need) {
		if (v->hf_running) {
			if (!waited) {
				/* tests/etcd/visible.sh parks here to order
				 * this request after a read in flight */
				waited = true;
				pthread_mutex_unlock(&v->hf_lock);
				(void)gfs_fp_hit(GFS_FP_VIEW_HEAD_WAIT);
				pthread_mutex_lock(&v->hf_lock);
				continue;
			}
			pthread_cond_wait(&v->hf_cond, &v->hf_lock);
			/* The read in flight at arrival failed (etcd did not
			 * answer): share the failure rather than wait out the
			 * client's timeouts a second time.  A failure shows
			 * nothing old: the caller serves the last head read,
			 * as after a failure of its own (§5 "Outage"). */
			if (v->hf_done == need - 1 && v->hf_rc &&
			    v->hf_rc != -ENOENT)
				break;
			continue;
		}
		v->hf_running = true;
		me = ++v->hf_started;
		pthread_mutex_unlock(&v->hf_lock);
		rc = gfs_manifest_branch_get(v->m, "main", b);
		/* ... and here, a read that has its answer but not given it */
		(void)gfs_fp_hit(GFS_FP_VIEW_AFTER_HEAD_READ);
		pthread_mutex_lock(&v->hf_lock);
		v->hf_running = false;
		v->hf_done = me;
		v->hf_rc = rc;
		v->hf_head = rc ? 0 : b->head;
		pthread_cond_broadcast(&v->hf_cond);
		pthread_mutex_unlock(&v->hf_lock);
		pthread_mutex_lock(&v->lock);
		v->stats.head_reads++;
		pthread_mutex_unlock(&v->lock);
		return rc;
	}
	/* a read that began after this call did answered for it, or the
	 * one in flight at its arrival failed */
	rc = v->hf_rc;
	if (!rc) {
		memset(b, 0, sizeof *b);
		memcpy(b->name, "main", 5);
		b->head = v->hf_head;
	}
	pthread_mutex_unlock(&v->hf_lock);
	pthread_mutex_lock(&v->lock);
	v->stats.head_shared++;
	pthread_mutex_unlock(&v->lock);
	return rc;
}

/* While the manifest is unreachable: the head last read (a mount keeps
 * serving what it has), or -EHOSTUNREACH for a view never read (nothing
 * cached to serve; "no route to host" says where the trouble is, and is
 * returned at once, not after the client's timeouts). */
static int live_head(struct gfs_view *v, uint64_t ver, bool shared,
		     uint64_t *out)
{
	const char *name = ver ? branch_name(v, ver) : "main";
	struct gfs_branch b;
	int rc;

	if (atomic_load(&v->offline) && name)
		return lhead_get(v, ver, out) ? 0 : -EHOSTUNREACH;
	if (!ver && shared && v->share_head && !own_reads && req_head.have) {
		rc = req_head.rc; /* this request's read (gfs_view_req_begin) */
		memset(&b, 0, sizeof b);
		b.head = req_head.head;
		pthread_mutex_lock(&v->lock);
		v->stats.head_reused++;
		pthread_mutex_unlock(&v->lock);
	} else if (!ver && shared && v->share_head && !own_reads) {
		rc = main_head_shared(v, &b);
		if (req_head.on) {
			req_head.have = true;
			req_head.rc = rc;
			req_head.head = rc ? 0 : b.head;
		}
	} else
		rc = name ? gfs_manifest_branch_get(v->m, name, &b) : -ENOENT;
	if (!rc)
		lhead_put(v, ver, b.head);
	else if (rc != -ENOENT && name && lhead_get(v, ver, out))
		return 0; /* etcd did not answer: serve the last head read */
	*out = rc ? 0 : b.head;
	return rc;
}

uint64_t gfs_view_branches_sig(struct gfs_view *v)
{
	struct gfs_branch *bs = NULL;
	size_t n = 0;
	/* the counter: a branch created and deleted between two polls
	 * leaves the same list */
	uint64_t h = gfs_manifest_branches_gen(v->m);

	if (gfs_manifest_branch_list(v->m, &bs, &n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		h = h * 1099511628211u ^ gfs_hash64(bs[i].name, strlen(bs[i].name));
		h = h * 1099511628211u ^ gfs_hash64(bs[i].id, strlen(bs[i].id));
		h = h * 1099511628211u ^ bs[i].head;
	}
	free(bs);
	return h;
}

uint64_t gfs_view_time_of(struct gfs_view *v, uint64_t ver)
{
	struct gvent *e = NULL;
	uint64_t t = 0;

	if (gv_get(v, ver, &e) == 0)
		t = e->gv->time_ns;
	gv_put(v, e);
	return t;
}

/* The notifier's read: its own, not shared (one per wake; and a request
 * waiting for a shared read never waits for the notifier). */
uint64_t gfs_view_main_head(struct gfs_view *v)
{
	uint64_t h;

	return live_head(v, 0, false, &h) ? 0 : h;
}

uint64_t gfs_view_live_head(struct gfs_view *v, const struct gfs_vdesc *d)
{
	uint64_t h;

	return live_head(v, gfs_vdesc_frozen(d) ? 0 : d->ver, true, &h) ? 0 : h;
}

/* ---- manifest.json / log.jsonl lines ---------------------------------- */

/* One line: the manifest of gv, '\n' included.  Also log.jsonl's lines. */
static int gv_json(const struct gfs_gv *gv, struct gfs_buf *b)
{
	char t[40];
	int rc;

	gfs_time_format(gv->time_ns, t);
	rc = gfs_buf_appendf(b, "{\"version\":%" PRIu64 ",\"time\":\"%s\","
			     "\"time_ns\":%" PRIu64 ",\"op\":",
			     gv->version, t, gv->time_ns);
	if (gv->removed) { /* gc removed it: its line stays, reduced */
		rc = rc ? rc : gfs_buf_append_json_str(b, gv->op, strlen(gv->op));
		return rc ? rc : gfs_buf_append(b, ",\"removed\":true}\n", 17);
	}
	rc = rc ? rc : gfs_buf_append_json_str(b, gv->op, strlen(gv->op));
	rc = rc ? rc : gfs_buf_append(b, ",\"op_id\":", 9);
	rc = rc ? rc : gfs_buf_append_json_str(b, gv->op_id, strlen(gv->op_id));
	rc = rc ? rc : gfs_buf_append(b, ",\"actor\":", 9);
	rc = rc ? rc : gfs_buf_append_json_str(b, gv->actor, strlen(gv->actor));
	rc = rc ? rc : gfs_buf_append(b, ",\"schema_id\":", 13);
	rc = rc ? rc : gfs_buf_append_json_str(b, gv->schema_id,
					       strlen(gv->schema_id));
	rc = rc ? rc : gfs_buf_append(b, ",\"branch\":", 10);
	rc = rc ? rc : gfs_buf_append_json_str(b, gv->branch, strlen(gv->branch));
	rc = rc ? rc : gfs_buf_append(b, ",\"parents\":[", 12);
	for (size_t i = 0; !rc && i < gv->n_parents; i++)
		rc = gfs_buf_appendf(b, "%s%" PRIu64, i ? "," : "", gv->parents[i]);
	rc = rc ? rc : gfs_buf_append(b, "],\"tables\":{", 12);
	for (size_t i = 0; !rc && i < gv->n_pins; i++) {
		if (i)
			rc = gfs_buf_appendc(b, ',');
		rc = rc ? rc : gfs_buf_append_json_str(b, gv->pins[i].table,
						       strlen(gv->pins[i].table));
		rc = rc ? rc : gfs_buf_appendf(b, ":%" PRIu32,
					       gv->pins[i].version);
	}
	return rc ? rc : gfs_buf_append(b, "}}\n", 3);
}

/* ---- history index ----------------------------------------------------- */

static struct thist *thist_find(struct gfs_view *v, const char *table,
				bool create)
{
	for (struct thist *t = v->hist; t; t = t->next)
		if (t->table == table)
			return t;
	if (!create)
		return NULL;
	struct thist *t = calloc(1, sizeof *t);

	if (t) {
		t->table = table;
		t->next = v->hist;
		v->hist = t;
	}
	return t;
}

static int thist_add(struct thist *t, uint32_t tver, uint64_t time_ns)
{
	if (t->n && t->tver[t->n - 1] >= tver)
		return 0; /* already known: only the first pin counts */
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 8;
		uint32_t *a = realloc(t->tver, cap * sizeof *a);

		if (!a)
			return -ENOMEM;
		t->tver = a;
		uint64_t *b = realloc(t->time_ns, cap * sizeof *b);

		if (!b)
			return -ENOMEM;
		t->time_ns = b;
		t->cap = cap;
	}
	t->tver[t->n] = tver;
	t->time_ns[t->n++] = time_ns;
	return 0;
}

static int log_add(struct gfs_view *v, uint64_t ver, uint64_t len)
{
	if (v->log_n == v->log_cap) {
		size_t cap = v->log_cap ? 2 * v->log_cap : 64;
		uint64_t *a = realloc(v->log_ver, cap * sizeof *a);

		if (!a)
			return -ENOMEM;
		v->log_ver = a;
		uint64_t *b = realloc(v->log_end, cap * sizeof *b);

		if (!b)
			return -ENOMEM;
		v->log_end = b;
		v->log_cap = cap;
	}
	v->log_ver[v->log_n] = ver;
	v->log_end[v->log_n] = (v->log_n ? v->log_end[v->log_n - 1] : 0) + len;
	v->log_n++;
	return 0;
}

static int hist_scan_one(const struct gfs_gv *gv, void *arg)
{
	struct gfs_view *v = arg;
	struct gfs_buf b;
	int rc;

	for (size_t i = 0; i < gv->n_pins; i++) {
		const char *t = intern(v, gv->pins[i].table);
		struct thist *h = t ? thist_find(v, t, true) : NULL;

		if (!h)
			return -ENOMEM;
		rc = thist_add(h, gv->pins[i].version, gv->time_ns);
		if (rc)
			return rc;
	}
	gfs_buf_init(&b);
	rc = gv_json(gv, &b);
	if (!rc)
		rc = log_add(v, gv->version, b.len);
	gfs_buf_release(&b);
	v->hist_upto = gv->version;
	return rc;
}

/* Extends the index through the head.  Caller holds hist_lock. */
static int hist_scan_locked(struct gfs_view *v)
{
	uint64_t head = view_head_version(v);

	if (head <= v->hist_upto)
		return 0;
	return gfs_manifest_history(v->m, v->hist_upto + 1, head,
				    hist_scan_one, v);
}

static bool thist_time(const struct thist *t, uint32_t tver, uint64_t *out)
{
	size_t lo = 0, hi = t ? t->n : 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->tver[mid] < tver)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!t || lo == t->n)
		return false;
	*out = t->time_ns[lo];
	return true;
}

/* Commit time of the first graph version that pinned table version tver
 * (or the first later one: a version never pinned, e.g. rolled back,
 * shares its rows' `changed` with the next pinned one). */
static uint64_t mtime_of(struct gfs_view *v, const char *table, uint32_t tver)
{
	uint64_t t = 0;

	pthread_mutex_lock(&v->hist_lock);
	if (!thist_time(thist_find(v, table, false), tver, &t)) {
		hist_scan_locked(v);
		thist_time(thist_find(v, table, false), tver, &t);
	}
	pthread_mutex_unlock(&v->hist_lock);
	return t;
}

/* Length of log.jsonl through graph version upto. */
static uint64_t log_len(struct gfs_view *v, uint64_t upto)
{
	uint64_t len = 0;

	pthread_mutex_lock(&v->hist_lock);
	if (v->hist_upto < upto)
		hist_scan_locked(v);
	for (size_t lo = 0, hi = v->log_n; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->log_ver[mid] <= upto) {
			len = v->log_end[mid];
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	pthread_mutex_unlock(&v->hist_lock);
	return len;
}

/* The graph version whose log line holds byte off, and where it starts. */
static bool log_find(struct gfs_view *v, uint64_t off, uint64_t *ver,
		     uint64_t *start)
{
	bool found = false;

	pthread_mutex_lock(&v->hist_lock);
	size_t lo = 0, hi = v->log_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->log_end[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < v->log_n) {
		*ver = v->log_ver[lo];
		*start = lo ? v->log_end[lo - 1] : 0;
		found = true;
	}
	pthread_mutex_unlock(&v->hist_lock);
	return found;
}

/* ---- descriptors ------------------------------------------------------- */

void gfs_vdesc_release(struct gfs_vdesc *d)
{
	free(d->key);
	d->key = NULL;
	d->key_len = 0;
}

int gfs_vdesc_copy(struct gfs_vdesc *dst, const struct gfs_vdesc *src)
{
	*dst = *src;
	dst->key = NULL;
	if (src->key) {
		dst->key = gfs_memdup(src->key, src->key_len);
		if (!dst->key)
			return -ENOMEM;
	}
	return 0;
}

static int desc_set_key(struct gfs_vdesc *d, const char *key, size_t len)
{
	free(d->key);
	d->key = gfs_memdup(key ? key : "", len);
	d->key_len = len;
	return d->key ? 0 : -ENOMEM;
}

static void hash_put(struct gfs_buf *b, const void *p, size_t len)
{
	uint64_t l = len;

	gfs_buf_append(b, &l, sizeof l);
	gfs_buf_append(b, p, len);
}

/* The identity fields, length-prefixed, hashed with gfs_hash64.  0 and 1
 * are reserved (none, root) and fold to 2 and 3. */
uint64_t gfs_vdesc_ino(const struct gfs_vdesc *d)
{
	struct gfs_buf b;
	uint64_t h;
	const char *t1 = d->table ? d->table : "", *t2 = d->table2 ? d->table2 : "";

	if (d->kind == GFS_VK_ROOT)
		return 1;
	gfs_buf_init(&b);
	gfs_buf_append(&b, "gfsino1", 7);
	gfs_buf_append(&b, &d->kind, 1);
	gfs_buf_append(&b, &d->sub, 1);
	gfs_buf_append(&b, &d->ver, sizeof d->ver);
	gfs_buf_append(&b, &d->gen, sizeof d->gen);
	hash_put(&b, t1, strlen(t1));
	hash_put(&b, t2, strlen(t2));
	hash_put(&b, d->key ? d->key : "", d->key_len);
	gfs_buf_append(&b, &d->serial, sizeof d->serial);
	gfs_buf_append(&b, &d->changed, sizeof d->changed);
	h = gfs_hash64(b.p, b.len);
	gfs_buf_release(&b);
	return h < 2 ? h + 2 : h;
}

bool gfs_vdesc_same(const struct gfs_vdesc *a, const struct gfs_vdesc *b)
{
	return a->kind == b->kind && a->sub == b->sub && a->ver == b->ver &&
	       a->gen == b->gen && a->table == b->table &&
	       a->table2 == b->table2 && a->key_len == b->key_len &&
	       (a->key_len == 0 || memcmp(a->key, b->key, a->key_len) == 0) &&
	       a->serial == b->serial && a->changed == b->changed;
}

bool gfs_vdesc_frozen(const struct gfs_vdesc *d)
{
	return d->ver != 0 && !(d->ver & GFS_VER_BRANCH);
}

bool gfs_vdesc_uses(const struct gfs_vdesc *d, const char *table)
{
	return d->table == table || d->table2 == table;
}

bool gfs_vdesc_is_dir(const struct gfs_vdesc *d)
{
	switch (d->kind) {
	case GFS_VK_ROOT: case GFS_VK_VERSIONS: case GFS_VK_VDIR:
	case GFS_VK_GFSDIR: case GFS_VK_NODES: case GFS_VK_EDGES:
	case GFS_VK_TYPEDIR: case GFS_VK_NODEDIR: case GFS_VK_NODEOUT:
	case GFS_VK_NODEIN: case GFS_VK_ETDIR: case GFS_VK_SRCDIR:
	case GFS_VK_INGEST: case GFS_VK_BRANCHES: case GFS_VK_BDIR:
		return true;
	default:
		return false;
	}
}

static bool desc_is_link(const struct gfs_vdesc *d)
{
	return d->kind == GFS_VK_HEAD || d->kind == GFS_VK_EDGELINK;
}

/* ---- request context: the graph version a request reads ---------------- */

struct ctx {
	struct gvent *ge;
	const struct gfs_gv *gv;
	const struct gfs_schema *s;
};

/* ver 0: main's head at this moment; a branch key: that branch's head
 * (-ENOENT once it is deleted); else graph version ver. */
static int ctx_get(struct gfs_view *v, uint64_t ver, struct ctx *c)
{
	struct gfs_diag d = {{0}};
	int rc;

	memset(c, 0, sizeof *c);
	if (!ver || (ver & GFS_VER_BRANCH)) {
		bool branch = ver != 0;

		rc = live_head(v, ver, true, &ver);
		if (rc == -ENOENT) /* a deleted branch; main always exists */
			return branch ? -ENOENT : -EIO;
		if (rc)
			return rc;
	}
	if (!ver)
		return -EIO;
	rc = gv_get(v, ver, &c->ge);
	if (rc)
		return rc;
	c->gv = c->ge->gv;
	rc = gfs_graph_schema(v->g, c->gv->schema_id, &c->s, &d);
	if (rc) {
		gv_put(v, c->ge);
		memset(c, 0, sizeof *c);
		return rc < 0 && rc > -4096 ? rc : -EIO;
	}
	return 0;
}

static void ctx_put(struct gfs_view *v, struct ctx *c)
{
	gv_put(v, c->ge);
	memset(c, 0, sizeof *c);
}

/* The typedef named by a table ("node:T"), or NULL. */
static const struct gfs_typedef *ctx_type(const struct ctx *c,
					  const char *table)
{
	const struct gfs_typedef *t;

	if (!table || strlen(table) < 6)
		return NULL;
	t = gfs_schema_find(c->s, table + 5);
	if (!t || t->is_edge != (table[0] == 'e'))
		return NULL;
	return t;
}

static const char *type_table(struct gfs_view *v, const struct gfs_typedef *t)
{
	char buf[GFS_TABLE_NAME_MAX];

	return intern(v, gfs_typedef_table(t, buf, sizeof buf));
}

/* The pinned version of table in c, opened. */
static int ctx_tver(struct gfs_view *v, const struct ctx *c,
		    const char *table, struct tvent **out)
{
	uint32_t pin = gfs_gv_pin(c->gv, table);

	if (!pin)
		return -ENOENT;
	return tv_get(v, table, pin, out);
}

/* Corruption is answered EIO; what and where goes to the daemon's log
 * (stderr with -f or -d, else syslog: log.h), once per distinct message per thread. */
static void log_corrupt(void)
{
	static __thread char last[512];
	const char *m = gfs_corrupt_last();

	if (!m[0] || !strcmp(m, last))
		return;
	snprintf(last, sizeof last, "%s", m);
	gfs_log(LOG_ERR, "%s", m);
}

/* Library errors become errno here, once. */
static int to_errno(int rc)
{
	if (rc >= 0)
		return rc;
	if (rc > -4096)
		return rc;
	if (rc == GFS_ECORRUPT) {
		log_corrupt();
		/* so .graphfs/stats' last_io_error names the damaged file */
		if (gfs_corrupt_last()[0])
			gfs_io_note(-EIO, gfs_corrupt_last());
	}
	return -EIO;
}

/* ---- rows -------------------------------------------------------------- */

struct rowc {
	char *id, *src, *dst;
	size_t id_len, src_len, dst_len;
	uint64_t serial;
	uint32_t changed, flags, data_len;
};

static void rowc_release(struct rowc *r)
{
	free(r->id);
	free(r->src);
	free(r->dst);
	memset(r, 0, sizeof *r);
}

static int rowc_set(struct rowc *r, const struct gfs_row *row)
{
	rowc_release(r);
	r->id = gfs_memdup(row->id ? row->id : "", row->id_len);
	r->src = gfs_memdup(row->src ? row->src : "", row->src_len);
	r->dst = gfs_memdup(row->dst ? row->dst : "", row->dst_len);
	if (!r->id || !r->src || !r->dst) {
		rowc_release(r);
		return -ENOMEM;
	}
	r->id_len = row->id_len;
	r->src_len = row->src_len;
	r->dst_len = row->dst_len;
	r->serial = row->serial;
	r->changed = row->changed;
	r->flags = row->flags;
	r->data_len = row->data_len;
	return 0;
}

static bool bytes_eq(const char *a, size_t al, const char *b, size_t bl)
{
	return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

static bool has_prefix(const char *s, size_t sl, const char *p, size_t pl)
{
	return sl >= pl && (pl == 0 || memcmp(s, p, pl) == 0);
}

/* Side of an edge row: 0 = the source, 1 = the target. */
static const char *edge_end(const struct gfs_row *r, int side, size_t *len)
{
	*len = side ? r->dst_len : r->src_len;
	return side ? r->dst : r->src;
}

/* The row with exactly this id: 1 found (r filled), 0 absent, <0 error. */
static int row_by_id(struct gfs_tver *tv, const char *id, size_t len,
		     struct rowc *r)
{
	struct gfs_row row;
	int rc;

	memset(&row, 0, sizeof row);
	rc = gfs_tver_get(tv, id, len, &row);
	if (rc == 1)
		rc = rowc_set(r, &row) ? -ENOMEM : 1;
	gfs_row_release(&row);
	return rc;
}

/* The row of a (possibly hashed) encoded id: 1, 0 or <0. */
static int row_by_name(struct gfs_tver *tv, const char *name, size_t nlen,
		       size_t max, struct rowc *r)
{
	struct gfs_name_dec dec;
	struct gfs_titer *it;
	struct gfs_row row;
	int rc;

	if (gfs_name_decode(name, nlen, &dec))
		return 0;
	if (!dec.hashed) {
		rc = row_by_id(tv, dec.key, dec.len, r);
		if (rc == 1 && !gfs_name_matches(r->id, r->id_len, max, name, nlen))
			rc = 0;
		goto out;
	}
	rc = gfs_titer_new(tv, GFS_IX_PRIMARY, dec.key, dec.len, &it);
	if (rc)
		goto out;
	while ((rc = gfs_titer_next(it, &row)) == 1) {
		if (!has_prefix(row.id, row.id_len, dec.key, dec.len)) {
			rc = 0;
			break;
		}
		if (gfs_name_matches(row.id, row.id_len, max, name, nlen)) {
			rc = rowc_set(r, &row) ? -ENOMEM : 1;
			break;
		}
	}
	gfs_titer_free(it);
out:
	gfs_name_dec_release(&dec);
	return rc;
}

/* Edge file / link name: "<other>.json" for the first edge of a pair,
 * "<other>~<id>.json" otherwise.  out holds GFS_NAME_BUF bytes. */
static void edge_name(const char *other, size_t olen, const char *id,
		      size_t ilen, uint32_t flags, char *out)
{
	size_t n = gfs_name_encode(other, olen, GFS_NAME_PART_MAX, out);

	if (!(flags & GFS_ROW_PAIR_FIRST)) {
		out[n++] = '~';
		n += gfs_name_encode(id, ilen, GFS_NAME_PART_MAX, out + n);
	}
	memcpy(out + n, ".json", 6);
}

static bool edge_matches(const struct gfs_row *row, int side,
			 const char *anchor, size_t alen, const char *stem,
			 size_t slen)
{
	char nm[GFS_NAME_BUF + 8];
	size_t ol, al;
	const char *o = edge_end(row, !side, &ol), *a = edge_end(row, side, &al);

	if (!bytes_eq(a, al, anchor, alen))
		return false;
	edge_name(o, ol, row->id, row->id_len, row->flags, nm);
	return strlen(nm) == slen + 5 && memcmp(nm, stem, slen) == 0;
}

/* Scans index ix from (a, b) while the anchor is `anchor` and the other
 * end starts with bprefix; 1 with r filled if a row's name is stem. */
static int edge_scan(struct gfs_tver *tv, int side, const char *anchor,
		     size_t alen, const char *bprefix, size_t blen,
		     const char *stem, size_t slen, struct rowc *r)
{
	enum gfs_index ix = side ? GFS_IX_DST : GFS_IX_SRC;
	struct gfs_titer *it = NULL;
	struct gfs_row row;
	int rc = gfs_titer_new_pair(tv, ix, anchor, alen, bprefix, blen, &it);

	while (!rc && (rc = gfs_titer_next(it, &row)) == 1) {
		size_t al, ol;
		const char *a = edge_end(&row, side, &al);
		const char *o = edge_end(&row, !side, &ol);

		rc = 0; /* a row that is not the one: look further */
		if (!bytes_eq(a, al, anchor, alen) ||
		    !has_prefix(o, ol, bprefix, blen)) {
			rc = 0;
			break;
		}
		if (edge_matches(&row, side, anchor, alen, stem, slen)) {
			rc = rowc_set(r, &row) ? -ENOMEM : 1;
			break;
		}
	}
	if (it)
		gfs_titer_free(it);
	return rc;
}

/* Finds the edge named stem ("<other>[~<id>]") among the edges whose end
 * `side` is anchor.  1 found, 0 absent, <0 error. */
static int edge_by_name(struct gfs_tver *tv, int side, const char *anchor,
			size_t alen, const char *stem, size_t slen,
			struct rowc *r)
{
	struct gfs_name_dec dec;
	size_t tilde;
	int rc;

	if (!gfs_name_split_edge(stem, slen, &tilde)) {
		if (gfs_name_decode(stem, slen, &dec))
			return 0;
		rc = edge_scan(tv, side, anchor, alen, dec.key, dec.len, stem,
			       slen, r);
		gfs_name_dec_release(&dec);
		return rc;
	}
	/* "<other>~<id>": find the row by id, then check both ends. */
	rc = row_by_name(tv, stem + tilde + 1, slen - tilde - 1,
			 GFS_NAME_PART_MAX, r);
	if (rc != 1)
		return rc;
	struct gfs_row row = {
		.id = r->id, .id_len = r->id_len, .src = r->src,
		.src_len = r->src_len, .dst = r->dst, .dst_len = r->dst_len,
		.flags = r->flags,
	};
	if (!edge_matches(&row, side, anchor, alen, stem, slen)) {
		rowc_release(r);
		return 0;
	}
	return 1;
}

/* 1 with *key set (new) if some edge's end `side` encodes to name. */
static int anchor_by_name(struct gfs_tver *tv, int side, const char *name,
			  size_t nlen, char **key, size_t *klen)
{
	struct gfs_name_dec dec;
	struct gfs_titer *it = NULL;
	struct gfs_row row;
	int rc;

	if (gfs_name_decode(name, nlen, &dec))
		return 0;
	rc = gfs_titer_new(tv, side ? GFS_IX_DST : GFS_IX_SRC, dec.key,
			   dec.len, &it);
	while (!rc && (rc = gfs_titer_next(it, &row)) == 1) {
		size_t al;
		const char *a = edge_end(&row, side, &al);

		rc = 0; /* a row that is not the one: look further */
		if (!has_prefix(a, al, dec.key, dec.len) ||
		    (!dec.hashed && al != dec.len)) {
			rc = 0;
			break;
		}
		if (gfs_name_matches(a, al, GFS_NAME_KEY_MAX, name, nlen)) {
			*key = gfs_memdup(a, al);
			*klen = al;
			rc = *key ? 1 : -ENOMEM;
			break;
		}
	}
	if (it)
		gfs_titer_free(it);
	gfs_name_dec_release(&dec);
	return rc;
}

/* ---- building descriptors ---------------------------------------------- */

static void desc_init(struct gfs_vdesc *d, enum gfs_vkind k, uint64_t ver,
		      const struct ctx *c)
{
	memset(d, 0, sizeof *d);
	d->kind = (uint8_t)k;
	d->ver = ver;
	d->mtime_ns = c && c->gv ? c->gv->time_ns : 0;
}

static int desc_row(struct gfs_view *v, struct gfs_vdesc *d,
		    enum gfs_vkind k, uint64_t ver, const char *table,
		    uint32_t tver, const struct rowc *r)
{
	desc_init(d, k, ver, NULL);
	d->table = table;
	d->serial = r->serial;
	d->changed = r->changed;
	d->tver = tver;
	d->size = (uint64_t)r->data_len + 1;
	d->mtime_ns = mtime_of(v, table, r->changed);
	return desc_set_key(d, r->id, r->id_len);
}

/* "../../../../<Type>/<key>.json": from nodes/<T>/<key>/{out,in}/<E>/ back
 * to nodes/, then the neighbour's node file. */
static int link_target(const struct ctx *c, const char *etable, int side,
		       const char *other, size_t olen, struct gfs_buf *out)
{
	const struct gfs_typedef *et = ctx_type(c, etable);
	char nm[GFS_NAME_BUF];

	if (!et)
		return -ENOENT;
	gfs_name_encode(other, olen, GFS_NAME_KEY_MAX, nm);
	return gfs_buf_appendf(out, "../../../../%s/%s.json",
			       side ? et->from : et->to, nm);
}

static int desc_link(struct gfs_view *v, const struct ctx *c,
		     struct gfs_vdesc *d, const struct gfs_vdesc *dir,
		     uint32_t tver, const struct rowc *r)
{
	struct gfs_buf t;
	int side = dir->sub, rc;

	gfs_buf_init(&t);
	rc = link_target(c, dir->table2, side, side ? r->src : r->dst,
			 side ? r->src_len : r->dst_len, &t);
	if (!rc) {
		desc_init(d, GFS_VK_EDGELINK, dir->ver, NULL);
		d->sub = (uint8_t)side;
		d->table = dir->table;
		d->table2 = dir->table2;
		d->serial = r->serial;
		d->changed = r->changed;
		d->tver = tver;
		d->size = t.len;
		d->mtime_ns = mtime_of(v, dir->table2, r->changed);
		rc = desc_set_key(d, r->id, r->id_len);
	}
	gfs_buf_release(&t);
	return rc;
}

static int desc_dir(struct gfs_vdesc *d, enum gfs_vkind k,
		    const struct gfs_vdesc *parent, const struct ctx *c,
		    const char *key, size_t klen)
{
	desc_init(d, k, parent->ver, c);
	d->table = parent->table;
	d->table2 = parent->table2;
	d->sub = parent->sub;
	return key ? desc_set_key(d, key, klen) : 0;
}

/* ---- attributes -------------------------------------------------------- */

static void gfs_text(struct gfs_view *v, enum gfs_gfsfile which,
		     struct gfs_buf *out);

static void stat_fill(struct gfs_view *v, const struct gfs_vdesc *d,
		      struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = gfs_vdesc_ino(d);
	if (gfs_vdesc_is_dir(d))
		st->st_mode = S_IFDIR | 0555;
	else if (desc_is_link(d))
		st->st_mode = S_IFLNK | 0777;
	else
		st->st_mode = S_IFREG | 0444;
	/* Directories: 1 = "subdirectory count unknown" (find, du cope). */
	st->st_nlink = 1;
	st->st_uid = v->uid;
	st->st_gid = v->gid;
	st->st_size = gfs_vdesc_is_dir(d) ? 0 : (off_t)d->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((d->size + 511) / 512);
	st->st_mtim.tv_sec = (time_t)(d->mtime_ns / 1000000000u);
	st->st_mtim.tv_nsec = (long)(d->mtime_ns % 1000000000u);
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

/* The commit time of the version that last changed the row `key` of
 * table (0 if absent). */
static uint64_t row_mtime(struct gfs_view *v, const struct ctx *c,
			  const char *table, const char *key, size_t klen)
{
	struct rowc r = {0};
	struct tvent *te;
	uint64_t t = 0;

	if (ctx_tver(v, c, table, &te))
		return 0;
	if (row_by_id(te->tv, key, klen, &r) == 1)
		t = mtime_of(v, table, r.changed);
	rowc_release(&r);
	tv_put(v, te);
	return t;
}

/* The newest change among the edges of etable whose end `side` is key
 * (0 if none): O(edges of that node). */
static uint64_t edges_mtime(struct gfs_view *v, const struct ctx *c,
			    const char *etable, int side, const char *key,
			    size_t klen)
{
	struct gfs_titer *it = NULL;
	struct tvent *te;
	struct gfs_row row;
	uint32_t newest = 0;
	size_t al;

	if (ctx_tver(v, c, etable, &te))
		return 0;
	if (gfs_titer_new(te->tv, side ? GFS_IX_DST : GFS_IX_SRC, key, klen,
			  &it) == 0) {
		while (gfs_titer_next(it, &row) == 1) {
			const char *a = edge_end(&row, side, &al);

			if (!bytes_eq(a, al, key, klen))
				break;
			if (row.changed > newest)
				newest = row.changed;
		}
		gfs_titer_free(it);
	}
	tv_put(v, te);
	return newest ? mtime_of(v, etable, newest) : 0;
}

/* A directory's mtime at graph version c: the commit time of the last
 * change to what it lists, so incremental backups skip what did not
 * change (docs/mount.md, "Times, owners, sizes"). */
static uint64_t dir_mtime(struct gfs_view *v, const struct ctx *c,
			  const struct gfs_vdesc *d)
{
	uint64_t t = 0;
	uint32_t pin;

	switch (d->kind) {
	case GFS_VK_TYPEDIR:
		pin = gfs_gv_pin(c->gv, d->table);
		t = pin ? mtime_of(v, d->table, pin) : 0;
		break;
	case GFS_VK_NODEDIR: case GFS_VK_NODEOUT: case GFS_VK_NODEIN:
		t = row_mtime(v, c, d->table, d->key, d->key_len);
		break;
	case GFS_VK_ETDIR:
		t = edges_mtime(v, c, d->table2, d->sub, d->key, d->key_len);
		if (!t) /* no edges: the node's own time */
			t = row_mtime(v, c, d->table, d->key, d->key_len);
		break;
	case GFS_VK_SRCDIR:
		t = edges_mtime(v, c, d->table, 0, d->key, d->key_len);
		break;
	default:
		break;
	}
	return t ? t : c->gv->time_ns;
}

/* Files whose size is computed when asked (their bytes change by
 * themselves): log.jsonl and .graphfs/ files; live directories, whose
 * mtime follows the head. */
static void desc_refresh(struct gfs_view *v, struct gfs_vdesc *d)
{
	struct gfs_buf b;
	struct ctx c;

	if (d->kind == GFS_VK_LOG) {
		uint64_t head = view_head_version(v);

		d->size = log_len(v, head);
	} else if (d->kind == GFS_VK_GFSFILE) {
		gfs_buf_init(&b);
		gfs_text(v, d->sub, &b);
		d->size = b.len;
		gfs_buf_release(&b);
	}
	if (!gfs_vdesc_frozen(d) && (gfs_vdesc_is_dir(d) || d->kind == GFS_VK_LOG ||
				     d->kind == GFS_VK_GFSFILE) &&
	    ctx_get(v, d->ver, &c) == 0) {
		d->mtime_ns = gfs_vdesc_is_dir(d) ? dir_mtime(v, &c, d)
						  : c.gv->time_ns;
		ctx_put(v, &c);
	}
}

/* Attributes of a descriptor just built from the version at hand (a
 * lookup or a listing): only sizes that change by themselves are
 * computed again. */
static void fresh_attr(struct gfs_view *v, const struct gfs_vdesc *d,
		       struct stat *st)
{
	if (d->kind == GFS_VK_LOG || d->kind == GFS_VK_GFSFILE)
		gfs_view_getattr(v, d, st);
	else
		stat_fill(v, d, st);
}

int gfs_view_getattr(struct gfs_view *v, const struct gfs_vdesc *d,
		     struct stat *st)
{
	struct gfs_vdesc t = *d;

	desc_refresh(v, &t);
	stat_fill(v, &t, st);
	return 0;
}

void gfs_view_root(struct gfs_view *v, struct gfs_vdesc *out)
{
	desc_init(out, GFS_VK_ROOT, 0, NULL);
}

/* ---- lookup ------------------------------------------------------------- */

static const char *const gfs_names[GFS_GF_COUNT] = {
	[GFS_GF_HEAD] = "head",
	[GFS_GF_OPTIONS] = "options",
	[GFS_GF_STATS] = "stats",
	[GFS_GF_SIDECARS] = "sidecars.jsonl",
	[GFS_GF_AUDIT] = "audit.jsonl",
	[GFS_GF_SEEN] = "seen",
	[GFS_GF_ERRORS] = "errors.jsonl",
	[GFS_GF_MANIFEST] = "manifest",
};

static bool name_is(const char *name, size_t nlen, const char *lit)
{
	return nlen == strlen(lit) && memcmp(name, lit, nlen) == 0;
}

/* schema.pg, manifest.json, nodes, edges: in the root and in versions/N. */
static int lk_tree(struct gfs_view *v, const struct ctx *c, uint64_t ver,
		   const char *name, size_t nlen, struct gfs_vdesc *d)
{
	struct gfs_buf b;
	int rc;

	if (name_is(name, nlen, "nodes") || name_is(name, nlen, "edges")) {
		desc_init(d, name[0] == 'n' ? GFS_VK_NODES : GFS_VK_EDGES, ver, c);
		return 0;
	}
	if (name_is(name, nlen, "schema.pg")) {
		desc_init(d, GFS_VK_SCHEMA, ver, c);
		d->gen = gfs_hash64(c->gv->schema_id, strlen(c->gv->schema_id));
		d->size = c->s->text_len;
		return 0;
	}
	if (!name_is(name, nlen, "manifest.json"))
		return -ENOENT;
	desc_init(d, GFS_VK_MANIFEST, ver, c);
	d->gen = c->gv->version;
	gfs_buf_init(&b);
	rc = gv_json(c->gv, &b);
	d->size = b.len;
	gfs_buf_release(&b);
	return rc;
}

static int lk_root(struct gfs_view *v, const struct ctx *c, const char *name,
		   size_t nlen, struct gfs_vdesc *d)
{
	if (name_is(name, nlen, "HEAD")) {
		char t[32];

		desc_init(d, GFS_VK_HEAD, 0, c);
		d->gen = c->gv->version;
		d->size = (uint64_t)snprintf(t, sizeof t, "versions/%" PRIu64,
					     c->gv->version);
		return 0;
	}
	if (name_is(name, nlen, "versions")) {
		desc_init(d, GFS_VK_VERSIONS, 0, c);
		return 0;
	}
	if (name_is(name, nlen, "log.jsonl")) {
		desc_init(d, GFS_VK_LOG, 0, c);
		d->size = log_len(v, c->gv->version);
		return 0;
	}
	if (name_is(name, nlen, ".graphfs")) {
		desc_init(d, GFS_VK_GFSDIR, 0, c);
		return 0;
	}
	if (name_is(name, nlen, "branches")) {
		desc_init(d, GFS_VK_BRANCHES, 0, c);
		return 0;
	}
	return lk_tree(v, c, 0, name, nlen, d);
}

/* branches/<name>: a branch that exists now. */
static int lk_branches(struct gfs_view *v, const char *name, size_t nlen,
		       struct gfs_vdesc *d)
{
	char nm[GFS_BRANCH_NAME_MAX];
	uint64_t key;
	struct ctx c;
	int rc;

	if (nlen >= sizeof nm)
		return -ENOENT;
	memcpy(nm, name, nlen);
	nm[nlen] = '\0';
	if (!gfs_branch_name_valid(nm))
		return -ENOENT;
	key = branch_key(v, nm);
	if (!key)
		return -ENOENT;
	rc = ctx_get(v, key, &c);
	if (rc)
		return rc == -ENOENT ? -ENOENT : to_errno(rc);
	desc_init(d, GFS_VK_BDIR, key, &c);
	ctx_put(v, &c);
	return 0;
}

/* branches/<name>/: HEAD -> ../../versions/N, and the tree; no versions/,
 * log.jsonl or .graphfs/ of its own. */
static int lk_bdir(struct gfs_view *v, const struct ctx *c, uint64_t ver,
		   const char *name, size_t nlen, struct gfs_vdesc *d)
{
	if (name_is(name, nlen, "HEAD")) {
		char t[48];

		desc_init(d, GFS_VK_HEAD, ver, c);
		d->gen = c->gv->version;
		d->size = (uint64_t)snprintf(t, sizeof t, "../../versions/%" PRIu64,
					     c->gv->version);
		return 0;
	}
	return lk_tree(v, c, ver, name, nlen, d);
}

/* "N" in canonical decimal, no sign, no leading zero. */
static int lk_versions(struct gfs_view *v, const char *name, size_t nlen,
		       struct gfs_vdesc *d)
{
	struct ctx c;
	uint64_t n;
	int rc;

	if (nlen == 0 || nlen > 20 || name[0] == '0')
		return -ENOENT;
	for (size_t i = 0; i < nlen; i++)
		if (name[i] < '0' || name[i] > '9')
			return -ENOENT;
	if (gfs_parse_u64(name, &n) || n == 0 || (n & GFS_VER_BRANCH))
		return -ENOENT;
	rc = ctx_get(v, n, &c);
	if (rc)
		return rc == -ENOENT ? -ENOENT : to_errno(rc);
	desc_init(d, GFS_VK_VDIR, n, &c);
	ctx_put(v, &c);
	return 0;
}

static int lk_gfsdir(const char *name, size_t nlen, struct gfs_vdesc *d)
{
	for (int i = 0; i < GFS_GF_COUNT; i++) {
		if (name_is(name, nlen, gfs_names[i])) {
			desc_init(d, GFS_VK_GFSFILE, 0, NULL);
			d->sub = (uint8_t)i;
			return 0;
		}
	}
	return -ENOENT;
}

/* nodes/ and edges/: "<Type>/" and "<Type>.jsonl". */
static int lk_types(struct gfs_view *v, const struct ctx *c,
		    const struct gfs_vdesc *p, const char *name, size_t nlen,
		    struct gfs_vdesc *d)
{
	bool edges = p->kind == GFS_VK_EDGES, file = false;
	char tn[GFS_TABLE_NAME_MAX];
	const struct gfs_typedef *t;
	struct gfs_tver_info info;
	struct tvent *te;
	int rc;

	if (nlen > 6 && memcmp(name + nlen - 6, ".jsonl", 6) == 0) {
		nlen -= 6;
		file = true;
	}
	if (nlen + 6 >= sizeof tn)
		return -ENOENT;
	snprintf(tn, sizeof tn, "%s:%.*s", edges ? "edge" : "node", (int)nlen, name);
	t = ctx_type(c, tn);
	if (!t)
		return -ENOENT;
	const char *table = type_table(v, t);

	if (!table)
		return -ENOMEM;
	if (!file) {
		desc_init(d, GFS_VK_TYPEDIR, p->ver, c);
		d->table = table;
		return 0;
	}
	rc = ctx_tver(v, c, table, &te);
	if (rc)
		return to_errno(rc);
	gfs_tver_info(te->tv, &info);
	tv_put(v, te);
	desc_init(d, GFS_VK_TABLEFILE, p->ver, c);
	d->table = table;
	d->gen = info.version;
	d->size = info.export_bytes;
	d->mtime_ns = mtime_of(v, table, info.version);
	return 0;
}

/* 1 (found) when building the descriptor worked, else its error. */
static int found(int rc)
{
	return rc ? rc : 1;
}

/* nodes/<T>/: "<key>.json" files and "<key>/" directories; edges/<E>/:
 * "<from>/" directories. */
static int lk_typedir(struct gfs_view *v, const struct ctx *c,
		      const struct gfs_vdesc *p, const char *name, size_t nlen,
		      struct gfs_vdesc *d)
{
	struct rowc r = {0};
	struct tvent *te;
	size_t stem;
	char *key = NULL;
	size_t klen = 0;
	int rc = ctx_tver(v, c, p->table, &te);

	if (rc)
		return to_errno(rc);
	if (p->table[0] == 'e') {
		rc = anchor_by_name(te->tv, 0, name, nlen, &key, &klen);
		if (rc == 1)
			rc = found(desc_dir(d, GFS_VK_SRCDIR, p, c, key, klen));
		free(key);
	} else if (gfs_name_is_json(name, nlen, &stem)) {
		rc = row_by_name(te->tv, name, stem, GFS_NAME_KEY_MAX, &r);
		if (rc == 1)
			rc = found(desc_row(v, d, GFS_VK_NODEFILE, p->ver,
					    p->table, te->ver, &r));
	} else {
		rc = row_by_name(te->tv, name, nlen, GFS_NAME_KEY_MAX, &r);
		if (rc == 1)
			rc = found(desc_dir(d, GFS_VK_NODEDIR, p, c, r.id,
					    r.id_len));
	}
	rowc_release(&r);
	tv_put(v, te);
	return rc == 0 ? -ENOENT : to_errno(rc > 0 ? 0 : rc);
}

/* edges/<E>/<from>/<to>[~<id>].json and the links of out/<E>/, in/<E>/. */
static int lk_edges(struct gfs_view *v, const struct ctx *c,
		    const struct gfs_vdesc *p, const char *name, size_t nlen,
		    struct gfs_vdesc *d)
{
	const char *etable = p->kind == GFS_VK_SRCDIR ? p->table : p->table2;
	int side = p->kind == GFS_VK_SRCDIR ? 0 : p->sub;
	struct rowc r = {0};
	struct tvent *te;
	size_t stem;
	int rc;

	if (!gfs_name_is_json(name, nlen, &stem))
		return -ENOENT;
	rc = ctx_tver(v, c, etable, &te);
	if (rc)
		return to_errno(rc);
	rc = edge_by_name(te->tv, side, p->key, p->key_len, name, stem, &r);
	if (rc == 1 && p->kind == GFS_VK_SRCDIR)
		rc = found(desc_row(v, d, GFS_VK_EDGEFILE, p->ver, etable,
				    te->ver, &r));
	else if (rc == 1)
		rc = found(desc_link(v, c, d, p, te->ver, &r));
	rowc_release(&r);
	tv_put(v, te);
	return rc == 0 ? -ENOENT : to_errno(rc > 0 ? 0 : rc);
}

/* nodes/<T>/<key>/out/ lists edge types from T, in/ edge types to T. */
static int lk_nodeside(struct gfs_view *v, const struct ctx *c,
		       const struct gfs_vdesc *p, const char *name,
		       size_t nlen, struct gfs_vdesc *d)
{
	char tn[GFS_TABLE_NAME_MAX];
	const struct gfs_typedef *et, *nt = ctx_type(c, p->table);
	int side = p->kind == GFS_VK_NODEIN;

	if (!nt || nlen + 6 >= sizeof tn)
		return -ENOENT;
	snprintf(tn, sizeof tn, "edge:%.*s", (int)nlen, name);
	et = ctx_type(c, tn);
	if (!et || strcmp(side ? et->to : et->from, nt->name) != 0)
		return -ENOENT;
	int rc = desc_dir(d, GFS_VK_ETDIR, p, c, p->key, p->key_len);

	d->sub = (uint8_t)side;
	d->table2 = type_table(v, et);
	return rc ? rc : d->table2 ? 0 : -ENOMEM;
}

static int lk_kind(struct gfs_view *v, const struct ctx *c,
		   const struct gfs_vdesc *p, const char *name, size_t nlen,
		   struct gfs_vdesc *d)
{
	switch (p->kind) {
	case GFS_VK_ROOT:
		return lk_root(v, c, name, nlen, d);
	case GFS_VK_VDIR:
		return lk_tree(v, c, p->ver, name, nlen, d);
	case GFS_VK_VERSIONS:
		return lk_versions(v, name, nlen, d);
	case GFS_VK_BRANCHES:
		return lk_branches(v, name, nlen, d);
	case GFS_VK_BDIR:
		return lk_bdir(v, c, p->ver, name, nlen, d);
	case GFS_VK_GFSDIR:
		return lk_gfsdir(name, nlen, d);
	case GFS_VK_NODES:
	case GFS_VK_EDGES:
		return lk_types(v, c, p, name, nlen, d);
	case GFS_VK_TYPEDIR:
		return lk_typedir(v, c, p, name, nlen, d);
	case GFS_VK_SRCDIR:
	case GFS_VK_ETDIR:
		return lk_edges(v, c, p, name, nlen, d);
	case GFS_VK_NODEDIR:
		if (name_is(name, nlen, "out") || name_is(name, nlen, "in"))
			return desc_dir(d, name[0] == 'o' ? GFS_VK_NODEOUT :
					GFS_VK_NODEIN, p, c, p->key, p->key_len);
		return -ENOENT;
	case GFS_VK_NODEOUT:
	case GFS_VK_NODEIN:
		return lk_nodeside(v, c, p, name, nlen, d);
	default:
		return gfs_vdesc_is_dir(p) ? -ENOENT : -ENOTDIR;
	}
}

static int lk_dispatch(struct gfs_view *v, const struct ctx *c,
		       const struct gfs_vdesc *p, const char *name,
		       size_t nlen, struct gfs_vdesc *d)
{
	int rc = lk_kind(v, c, p, name, nlen, d);

	if (!rc && gfs_vdesc_is_dir(d) && d->kind != GFS_VK_VDIR &&
	    d->kind != GFS_VK_BDIR)
		d->mtime_ns = dir_mtime(v, c, d);
	return rc;
}

int gfs_view_lookup(struct gfs_view *v, const struct gfs_vdesc *parent,
		    const char *name, struct gfs_vdesc *child, struct stat *st)
{
	size_t nlen = strlen(name);
	struct ctx c;
	int rc;

	memset(child, 0, sizeof *child);
	if (nlen > 255)
		return -ENAMETOOLONG;
	if (!gfs_vdesc_is_dir(parent))
		return -ENOTDIR;
	rc = ctx_get(v, parent->ver, &c);
	if (rc)
		return to_errno(rc);
	rc = lk_dispatch(v, &c, parent, name, nlen, child);
	ctx_put(v, &c);
	if (rc) {
		gfs_vdesc_release(child);
		return rc;
	}
	if (st)
		fresh_attr(v, child, st);
	return 0;
}

/* ---- symlinks ---------------------------------------------------------- */

int gfs_view_readlink(struct gfs_view *v, const struct gfs_vdesc *d,
		      struct gfs_buf *out)
{
	struct rowc r = {0};
	struct tvent *te;
	struct ctx c;
	int rc;

	if (d->kind == GFS_VK_HEAD)
		return gfs_buf_appendf(out, "%sversions/%" PRIu64,
				       d->ver & GFS_VER_BRANCH ? "../../" : "", d->gen);
	if (d->kind != GFS_VK_EDGELINK)
		return -EINVAL;
	rc = ctx_get(v, d->ver, &c);
	if (rc)
		return to_errno(rc);
	rc = tv_get(v, d->table2, d->tver, &te);
	if (!rc) {
		rc = row_by_id(te->tv, d->key, d->key_len, &r);
		if (rc == 1)
			rc = link_target(&c, d->table2, d->sub,
					 d->sub ? r.src : r.dst,
					 d->sub ? r.src_len : r.dst_len, out);
		else if (rc == 0)
			rc = -ENOENT;
		tv_put(v, te);
	}
	rowc_release(&r);
	ctx_put(v, &c);
	return to_errno(rc);
}

/* ---- .graphfs/ --------------------------------------------------------- */

static int audit_line(const struct gfs_audit *a, void *arg)
{
	char *j = gfs_audit_to_json(a);

	if (!j)
		return -ENOMEM;
	gfs_buf_appendf(arg, "%s\n", j);
	free(j);
	return 0;
}

static void sidecar_lines(struct gfs_view *v, struct gfs_buf *out)
{
	struct gfs_sidecar **sc = NULL;
	size_t n = 0;

	if (gfs_manifest_sidecar_list(v->m, &sc, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		char *j = gfs_sidecar_to_json(sc[i]);

		if (j)
			gfs_buf_appendf(out, "%s\n", j);
		free(j);
		gfs_sidecar_free(sc[i]);
	}
	free(sc);
}

static void gfs_text(struct gfs_view *v, enum gfs_gfsfile which,
		     struct gfs_buf *out)
{
	switch (which) {
	case GFS_GF_HEAD:
	{
		gfs_buf_appendf(out, "%" PRIu64 "\n", view_head_version(v));
	}
		break;
	case GFS_GF_SIDECARS:
		sidecar_lines(v, out);
		break;
	case GFS_GF_AUDIT:
		gfs_manifest_audit_list(v->m, audit_line, out);
		break;
	default:
		if (v->o.status)
			v->o.status(v->o.status_arg, which, out);
		break;
	}
}

/* ---- open files -------------------------------------------------------- */

enum vfile_kind { VF_ROW, VF_TABLE, VF_BUF, VF_LOG };

struct gfs_vfile {
	enum vfile_kind kind;
	struct tvent *te;
	struct gfs_row row;
	/* VF_TABLE: the reading position, kept between READs so sequential
	 * reads continue without a lookup.  READs of one handle can run on
	 * several workers at once: the one that does not get the lock reads
	 * through a temporary cursor. */
	pthread_mutex_t cur_lock;
	struct gfs_tcursor *cur;
	uint64_t size;
	uint64_t log_upto;
	struct gfs_buf buf;
	bool direct;
};

static int open_row(struct gfs_view *v, const struct gfs_vdesc *d,
		    struct gfs_vfile *f)
{
	const char *table = d->kind == GFS_VK_EDGELINK ? d->table2 : d->table;
	int rc = tv_get(v, table, d->tver, &f->te);

	if (rc)
		return to_errno(rc);
	rc = gfs_tver_get(f->te->tv, d->key, d->key_len, &f->row);
	if (rc == 1 && (f->row.serial != d->serial ||
			f->row.changed != d->changed))
		rc = -ESTALE; /* the table version no longer holds these bytes */
	if (rc == 1) {
		f->kind = VF_ROW;
		f->size = (uint64_t)f->row.data_len + 1;
		return 0;
	}
	return rc == 0 ? -ENOENT : to_errno(rc);
}

static int open_gen(struct gfs_view *v, const struct gfs_vdesc *d,
		    struct gfs_vfile *f)
{
	struct ctx c;
	int rc;

	f->kind = VF_BUF;
	if (d->kind == GFS_VK_GFSFILE) {
		f->direct = true;
		gfs_text(v, d->sub, &f->buf);
		return 0;
	}
	rc = ctx_get(v, d->kind == GFS_VK_MANIFEST ? d->gen : d->ver, &c);
	if (rc)
		return to_errno(rc);
	if (d->kind == GFS_VK_MANIFEST)
		rc = gv_json(c.gv, &f->buf);
	else if (gfs_hash64(c.gv->schema_id, strlen(c.gv->schema_id)) != d->gen)
		rc = -ESTALE; /* live schema.pg replaced since lookup */
	else
		rc = gfs_buf_append(&f->buf, c.s->text, c.s->text_len);
	ctx_put(v, &c);
	return rc;
}

int gfs_view_open(struct gfs_view *v, const struct gfs_vdesc *d,
		  struct gfs_vfile **out)
{
	struct gfs_vfile *f = calloc(1, sizeof *f);
	int rc = 0;

	if (!f)
		return -ENOMEM;
	gfs_buf_init(&f->buf);
	pthread_mutex_init(&f->cur_lock, NULL);
	switch (d->kind) {
	case GFS_VK_NODEFILE:
	case GFS_VK_EDGEFILE:
		rc = open_row(v, d, f);
		break;
	case GFS_VK_TABLEFILE:
		rc = tv_get(v, d->table, (uint32_t)d->gen, &f->te);
		f->kind = VF_TABLE;
		f->size = d->size;
		break;
	case GFS_VK_LOG:
		f->kind = VF_LOG;
		f->direct = true;
		f->log_upto = view_head_version(v);
		f->size = log_len(v, f->log_upto);
		break;
	case GFS_VK_MANIFEST:
	case GFS_VK_SCHEMA:
	case GFS_VK_GFSFILE:
		rc = open_gen(v, d, f);
		break;
	default:
		rc = gfs_vdesc_is_dir(d) ? -EISDIR : -EINVAL;
		break;
	}
	if (rc) {
		gfs_view_close(v, f);
		return to_errno(rc);
	}
	if (f->kind == VF_BUF)
		f->size = f->buf.len;
	*out = f;
	return 0;
}

bool gfs_vfile_direct(const struct gfs_vfile *f)
{
	return f->direct;
}

void gfs_view_close(struct gfs_view *v, struct gfs_vfile *f)
{
	if (!f)
		return;
	if (f->kind == VF_ROW)
		gfs_row_release(&f->row);
	gfs_tcursor_free(f->cur);
	pthread_mutex_destroy(&f->cur_lock);
	tv_put(v, f->te);
	gfs_buf_release(&f->buf);
	free(f);
}

struct log_rd {
	uint64_t pos, off;
	char *buf;
	size_t len, n;
	struct gfs_buf line;
};

static int log_rd_one(const struct gfs_gv *gv, void *arg)
{
	struct log_rd *st = arg;
	uint64_t skip;
	int rc;

	gfs_buf_reset(&st->line);
	rc = gv_json(gv, &st->line);
	if (rc)
		return rc;
	skip = st->off > st->pos ? st->off - st->pos : 0;
	if (skip < st->line.len) {
		size_t k = st->line.len - (size_t)skip;

		if (k > st->len - st->n)
			k = st->len - st->n;
		memcpy(st->buf + st->n, st->line.p + skip, k);
		st->n += k;
	}
	st->pos += st->line.len;
	return st->n == st->len ? 1 : 0; /* 1 stops the walk: buffer full */
}

/* Streams log lines from the one holding off, never the whole log. */
static int read_log(struct gfs_view *v, struct gfs_vfile *f, uint64_t off,
		    char *buf, size_t len, size_t *n)
{
	struct log_rd st = { .off = off, .buf = buf, .len = len };
	uint64_t ver;
	int rc;

	*n = 0;
	if (!log_find(v, off, &ver, &st.pos) || ver > f->log_upto)
		return 0;
	gfs_buf_init(&st.line);
	rc = gfs_manifest_history(v->m, ver, f->log_upto, log_rd_one, &st);
	gfs_buf_release(&st.line);
	*n = st.n;
	return rc == 1 ? 0 : rc;
}

int gfs_view_read(struct gfs_view *v, struct gfs_vfile *f, uint64_t off,
		  void *buf, size_t len, size_t *n)
{
	uint64_t avail;
	size_t got = 0;
	int rc = 0;

	*n = 0;
	if (off >= f->size)
		return 0;
	avail = f->size - off;
	if (len > avail)
		len = (size_t)avail;
	switch (f->kind) {
	case VF_ROW: {
		uint64_t dl = f->row.data_len;

		if (off < dl) {
			size_t want = len < dl - off ? len : (size_t)(dl - off);

			rc = gfs_tver_read_row(f->te->tv, &f->row,
					       f->row.data_off + off, buf, want,
					       &got);
		}
		if (!rc && off + got == dl && got < len)
			((char *)buf)[got++] = '\n';
		break;
	}
	case VF_TABLE:
		if (pthread_mutex_trylock(&f->cur_lock) == 0) {
			rc = f->cur ? 0 : gfs_tcursor_new(f->te->tv, &f->cur);
			if (!rc)
				rc = gfs_tcursor_read(f->cur, off, buf, len, &got);
			pthread_mutex_unlock(&f->cur_lock);
		} else {
			rc = gfs_tver_read_export(f->te->tv, off, buf, len, &got);
		}
		break;
	case VF_BUF:
		memcpy(buf, f->buf.p + off, len);
		got = len;
		break;
	case VF_LOG:
		rc = read_log(v, f, off, buf, len, &got);
		break;
	}
	*n = got;
	return to_errno(rc);
}

/* ---- directories ------------------------------------------------------- */

enum vdir_mode { VD_STATIC, VD_NODES_T, VD_EDGES_T, VD_SRCDIR, VD_ETDIR,
		 VD_VERSIONS };

/* Listing positions ("cookies", the d_off of each entry): "." 0, ".." 1,
 * then from 2: VD_STATIC the index in the name list; VD_NODES_T 2 + 2r
 * (the node's directory) and 3 + 2r (its file) for the row of rank r;
 * VD_EDGES_T 2 + r for the first edge of each source in the SRC index;
 * VD_SRCDIR/VD_ETDIR 2 + (r - base) with base the rank of the anchor's
 * first edge; VD_VERSIONS 1 + N for versions/N.  A READDIR at offset o
 * resumes at the first entry whose position is >= o, located in O(log n)
 * (gfs_titer_new_at), never by replaying the listing. */
struct gfs_vdir {
	struct gfs_vdesc d;      /* the directory */
	struct ctx c;            /* graph version pinned at opendir */
	struct tvent *te;        /* table version listed (big dirs) */
	enum vdir_mode mode;
	char **names;            /* VD_STATIC */
	size_t n_names;
	struct gfs_titer *it;    /* next returns the entry of rank it_rank */
	uint64_t it_rank;
	uint64_t base;           /* SRCDIR/ETDIR: rank of the first edge */
	bool have_base;
	uint64_t pos;            /* where the next entry is looked for */
	bool have_cur;
	uint64_t cur_pos;        /* position of cur */
	char cur_name[GFS_NAME_BUF + 8];
	struct gfs_vdesc cur;
	struct stat cur_st;
	struct rowc row;         /* the row of rank row_rank */
	uint64_t row_rank;
	bool have_row;
	uint64_t vers[VERSIONS_BATCH], vtimes[VERSIONS_BATCH];
	size_t vn;
	uint64_t vfrom;          /* every version in [vfrom, vers[vn-1]] is in vers */
};

static int names_add(struct gfs_vdir *dh, const char *s)
{
	char **p = realloc(dh->names, (dh->n_names + 1) * sizeof *p);

	if (!p)
		return -ENOMEM;
	dh->names = p;
	p[dh->n_names] = gfs_strdup(s);
	return p[dh->n_names++] ? 0 : -ENOMEM;
}

static int names_types(struct gfs_vdir *dh, bool edges)
{
	const struct gfs_schema *s = dh->c.s;
	char buf[300];
	int rc = 0;

	for (size_t i = 0; !rc && i < s->n_types; i++) {
		if (s->types[i].is_edge != edges)
			continue;
		snprintf(buf, sizeof buf, "%s.jsonl", s->types[i].name);
		rc = names_add(dh, s->types[i].name);
		rc = rc ? rc : names_add(dh, buf);
	}
	return rc;
}

/* Whether the node `key` has an edge of etable on `side` (0 as source,
 * 1 as target) in the listed version: 1, 0 or <0. */
static int has_edge(struct gfs_view *v, const struct ctx *c,
		    const char *etable, int side, const char *key, size_t klen)
{
	struct gfs_titer *it = NULL;
	struct tvent *te;
	struct gfs_row row;
	size_t al;
	int rc = ctx_tver(v, c, etable, &te);

	if (rc)
		return rc == -ENOENT ? 0 : rc; /* no pin: no edges */
	rc = gfs_titer_new(te->tv, side ? GFS_IX_DST : GFS_IX_SRC, key, klen, &it);
	if (!rc && (rc = gfs_titer_next(it, &row)) == 1) {
		const char *a = edge_end(&row, side, &al);

		rc = bytes_eq(a, al, key, klen);
	}
	gfs_titer_free(it);
	tv_put(v, te);
	return rc;
}

/* out/ and in/ list the edge types the node has (a lookup of any type the
 * schema allows there still succeeds, as an empty directory). */
static int names_edge_types(struct gfs_view *v, struct gfs_vdir *dh, int side)
{
	const struct gfs_typedef *nt = ctx_type(&dh->c, dh->d.table);
	const struct gfs_schema *s = dh->c.s;
	int rc = 0;

	for (size_t i = 0; nt && rc >= 0 && i < s->n_types; i++) {
		const struct gfs_typedef *t = &s->types[i];
		const char *et;

		if (!t->is_edge || strcmp(side ? t->to : t->from, nt->name))
			continue;
		et = type_table(v, t);
		rc = et ? has_edge(v, &dh->c, et, side, dh->d.key,
				   dh->d.key_len) : -ENOMEM;
		if (rc == 1)
			rc = names_add(dh, t->name);
	}
	return rc < 0 ? to_errno(rc) : 0;
}

/* branches/: every branch, main too (branches/main/ shows what the root
 * shows). */
static int names_branches(struct gfs_view *v, struct gfs_vdir *dh)
{
	struct gfs_branch *bs = NULL;
	size_t n = 0;
	int rc = gfs_manifest_branch_list(v->m, &bs, &n);

	for (size_t i = 0; !rc && i < n; i++)
		rc = names_add(dh, bs[i].name);
	free(bs);
	return to_errno(rc);
}

static int dir_static_names(struct gfs_view *v, struct gfs_vdir *dh)
{
	static const char *const root[] = { ".graphfs", "HEAD", "branches",
		"edges", "log.jsonl", "manifest.json", "nodes", "schema.pg",
		"versions" };
	static const char *const vdir[] = { "edges", "manifest.json", "nodes",
		"schema.pg" };
	static const char *const bdir[] = { "HEAD", "edges", "manifest.json",
		"nodes", "schema.pg" };
	int rc = 0;

	switch (dh->d.kind) {
	case GFS_VK_BDIR:
		for (size_t i = 0; !rc && i < GFS_ARRAY_SIZE(bdir); i++)
			rc = names_add(dh, bdir[i]);
		return rc;
	case GFS_VK_BRANCHES:
		return names_branches(v, dh);
	case GFS_VK_ROOT:
		for (size_t i = 0; !rc && i < GFS_ARRAY_SIZE(root); i++)
			rc = names_add(dh, root[i]);
		return rc;
	case GFS_VK_VDIR:
		for (size_t i = 0; !rc && i < GFS_ARRAY_SIZE(vdir); i++)
			rc = names_add(dh, vdir[i]);
		return rc;
	case GFS_VK_GFSDIR:
		for (int i = 0; !rc && i < GFS_GF_COUNT; i++)
			rc = names_add(dh, gfs_names[i]);
		return rc;
	case GFS_VK_NODES:
	case GFS_VK_EDGES:
		return names_types(dh, dh->d.kind == GFS_VK_EDGES);
	case GFS_VK_NODEDIR:
		rc = names_add(dh, "in");
		return rc ? rc : names_add(dh, "out");
	case GFS_VK_NODEOUT:
	case GFS_VK_NODEIN:
		return names_edge_types(v, dh, dh->d.kind == GFS_VK_NODEIN);
	default:
		return -ENOTDIR;
	}
}

static int dir_setup(struct gfs_view *v, struct gfs_vdir *dh)
{
	const char *table = NULL;

	switch (dh->d.kind) {
	case GFS_VK_VERSIONS:
		dh->mode = VD_VERSIONS;
		return 0;
	case GFS_VK_TYPEDIR:
		dh->mode = dh->d.table[0] == 'e' ? VD_EDGES_T : VD_NODES_T;
		table = dh->d.table;
		break;
	case GFS_VK_SRCDIR:
		dh->mode = VD_SRCDIR;
		table = dh->d.table;
		break;
	case GFS_VK_ETDIR:
		dh->mode = VD_ETDIR;
		table = dh->d.table2;
		break;
	default:
		dh->mode = VD_STATIC;
		return dir_static_names(v, dh);
	}
	return to_errno(ctx_tver(v, &dh->c, table, &dh->te));
}

/* A listing of d; pinned (to d's version, or the head) when pin. */
static int dir_new(struct gfs_view *v, const struct gfs_vdesc *d, bool pin,
		   struct gfs_vdir **out)
{
	struct gfs_vdir *dh;
	int rc;

	*out = NULL;
	if (!gfs_vdesc_is_dir(d))
		return -ENOTDIR;
	dh = calloc(1, sizeof *dh);
	if (!dh)
		return -ENOMEM;
	rc = gfs_vdesc_copy(&dh->d, d);
	if (!rc && pin)
		rc = to_errno(ctx_get(v, d->ver, &dh->c));
	if (!rc && pin) {
		listed_note(v, dh->c.gv->version);
		rc = dir_setup(v, dh);
	}
	if (rc) {
		gfs_view_closedir(v, dh);
		return rc;
	}
	*out = dh;
	return 0;
}

int gfs_view_opendir(struct gfs_view *v, const struct gfs_vdesc *d,
		     struct gfs_vdir **out)
{
	return dir_new(v, d, true, out);
}

uint64_t gfs_vdir_version(const struct gfs_vdir *dh)
{
	return dh->c.gv ? dh->c.gv->version : 0;
}

static void dir_reset(struct gfs_vdir *dh)
{
	if (dh->it)
		gfs_titer_free(dh->it);
	dh->it = NULL;
	if (dh->have_cur)
		gfs_vdesc_release(&dh->cur);
	dh->have_cur = false;
	rowc_release(&dh->row);
	dh->have_row = false;
	dh->have_base = false;
	dh->pos = 0;
	dh->vn = 0;
}

void gfs_view_closedir(struct gfs_view *v, struct gfs_vdir *dh)
{
	if (!dh)
		return;
	dir_reset(dh);
	for (size_t i = 0; i < dh->n_names; i++)
		free(dh->names[i]);
	free(dh->names);
	tv_put(v, dh->te);
	if (dh->c.ge)
		ctx_put(v, &dh->c);
	gfs_vdesc_release(&dh->d);
	free(dh);
}

static int fill_static(struct gfs_view *v, struct gfs_vdir *dh)
{
	for (uint64_t i = dh->pos - 2; i < dh->n_names; i++) {
		const char *nm = dh->names[i];
		int rc = lk_dispatch(v, &dh->c, &dh->d, nm, strlen(nm), &dh->cur);

		if (rc == -ENOENT) {
			gfs_vdesc_release(&dh->cur);
			continue; /* e.g. a table without a pin */
		}
		if (rc)
			return rc;
		snprintf(dh->cur_name, sizeof dh->cur_name, "%s", nm);
		dh->cur_pos = 2 + i;
		return 1;
	}
	return 0;
}

/* The row of rank r in index ix into dh->row: 1, 0 past the end, <0.
 * Sequential ranks continue the open iterator; any other rank starts a
 * new one there in O(log n). */
static int row_at(struct gfs_vdir *dh, enum gfs_index ix, uint64_t r)
{
	struct gfs_row row;
	int rc;

	if (dh->have_row && dh->row_rank == r)
		return 1;
	if (!dh->it || dh->it_rank != r) {
		if (dh->it)
			gfs_titer_free(dh->it);
		dh->it = NULL;
		rc = gfs_titer_new_at(dh->te->tv, ix, r, &dh->it);
		if (rc)
			return rc;
		dh->it_rank = r;
	}
	rc = gfs_titer_next(dh->it, &row);
	if (rc != 1)
		return rc;
	dh->it_rank = r + 1;
	rc = rowc_set(&dh->row, &row);
	dh->have_row = rc == 0;
	dh->row_rank = r;
	return rc ? rc : 1;
}

static int fill_nodes(struct gfs_view *v, struct gfs_vdir *dh)
{
	uint64_t r = (dh->pos - 2) / 2;
	int rc = row_at(dh, GFS_IX_PRIMARY, r);
	size_t n;

	if (rc <= 0)
		return rc;
	dh->cur_pos = dh->pos;
	n = gfs_name_encode(dh->row.id, dh->row.id_len, GFS_NAME_KEY_MAX,
			    dh->cur_name);
	if ((dh->pos - 2) % 2 == 0) {
		rc = desc_dir(&dh->cur, GFS_VK_NODEDIR, &dh->d, &dh->c,
			      dh->row.id, dh->row.id_len);
		dh->cur.mtime_ns = mtime_of(v, dh->d.table, dh->row.changed);
		return rc ? rc : 1;
	}
	memcpy(dh->cur_name + n, ".json", 6);
	rc = desc_row(v, &dh->cur, GFS_VK_NODEFILE, dh->d.ver, dh->d.table,
		      dh->te->ver, &dh->row);
	return rc ? rc : 1;
}

/* edges/<E>/: one directory per source, at the rank of its first edge in
 * the SRC index; a position inside a source's run resumes at the next
 * source. */
static int fill_sources(struct gfs_view *v, struct gfs_vdir *dh)
{
	uint64_t r = dh->pos - 2;
	char *prev = NULL;
	size_t prev_len = 0;
	int rc = 0;

	if (r > 0) {
		rc = row_at(dh, GFS_IX_SRC, r - 1);
		if (rc == 1) {
			prev = gfs_memdup(dh->row.src, dh->row.src_len);
			prev_len = dh->row.src_len;
			rc = prev ? 0 : -ENOMEM;
		}
	}
	while (rc >= 0 && (rc = row_at(dh, GFS_IX_SRC, r)) == 1) {
		if (!prev || !bytes_eq(dh->row.src, dh->row.src_len, prev, prev_len))
			break;
		r++;
	}
	free(prev);
	if (rc <= 0)
		return rc;
	dh->cur_pos = 2 + r;
	gfs_name_encode(dh->row.src, dh->row.src_len, GFS_NAME_KEY_MAX,
			dh->cur_name);
	rc = desc_dir(&dh->cur, GFS_VK_SRCDIR, &dh->d, &dh->c, dh->row.src,
		      dh->row.src_len);
	if (!rc)
		dh->cur.mtime_ns = dir_mtime(v, &dh->c, &dh->cur);
	return rc ? rc : 1;
}

/* edges/<E>/<from>/ (side 0) and nodes/<T>/<key>/{out,in}/<E>/. */
static int fill_edges(struct gfs_view *v, struct gfs_vdir *dh)
{
	int side = dh->mode == VD_ETDIR ? dh->d.sub : 0;
	enum gfs_index ix = side ? GFS_IX_DST : GFS_IX_SRC;
	const char *a, *o;
	size_t al, ol;
	int rc;

	if (!dh->have_base) {
		if (dh->it)
			gfs_titer_free(dh->it);
		dh->it = NULL;
		rc = gfs_titer_new(dh->te->tv, ix, dh->d.key, dh->d.key_len,
				   &dh->it);
		if (rc)
			return rc;
		dh->base = dh->it_rank = gfs_titer_rank(dh->it);
		dh->have_base = true;
	}
	rc = row_at(dh, ix, dh->base + dh->pos - 2);
	if (rc <= 0)
		return rc;
	a = side ? dh->row.dst : dh->row.src;
	al = side ? dh->row.dst_len : dh->row.src_len;
	o = side ? dh->row.src : dh->row.dst;
	ol = side ? dh->row.src_len : dh->row.dst_len;
	if (!bytes_eq(a, al, dh->d.key, dh->d.key_len))
		return 0;
	dh->cur_pos = dh->pos;
	edge_name(o, ol, dh->row.id, dh->row.id_len, dh->row.flags,
		  dh->cur_name);
	if (dh->mode == VD_SRCDIR)
		rc = desc_row(v, &dh->cur, GFS_VK_EDGEFILE, dh->d.ver,
			      dh->d.table, dh->te->ver, &dh->row);
	else
		rc = desc_link(v, &dh->c, &dh->cur, &dh->d, dh->te->ver,
			       &dh->row);
	return rc ? rc : 1;
}

static int vbatch_one(const struct gfs_gv *gv, void *arg)
{
	struct gfs_vdir *dh = arg;

	if (gv->removed)
		return 0;

	dh->vers[dh->vn] = gv->version;
	dh->vtimes[dh->vn++] = gv->time_ns;
	return dh->vn == VERSIONS_BATCH ? 1 : 0;
}

/* versions/: the first version >= pos - 1, from a batch of the history.
 * It lists every branch's versions: up to the highest graph version, not
 * main's head (which the listing's context is). */
static int fill_versions(struct gfs_view *v, struct gfs_vdir *dh)
{
	uint64_t want = dh->pos - 1, head = view_head_version(v);
	size_t i = 0;

	while (i < dh->vn && dh->vers[i] < want)
		i++;
	if (i == dh->vn || want < dh->vfrom) {
		int rc;

		dh->vn = 0;
		dh->vfrom = want;
		if (want > head)
			return 0;
		rc = gfs_manifest_history(v->m, want, head, vbatch_one, dh);
		if (rc < 0)
			return rc;
		if (!dh->vn)
			return 0;
		i = 0;
	}
	desc_init(&dh->cur, GFS_VK_VDIR, dh->vers[i], NULL);
	dh->cur.mtime_ns = dh->vtimes[i];
	snprintf(dh->cur_name, sizeof dh->cur_name, "%" PRIu64, dh->vers[i]);
	dh->cur_pos = dh->vers[i] + 1;
	return 1;
}

/* Fills dh->cur with the first entry at a position >= dh->pos and sets
 * dh->cur_pos: 1, 0 at the end, <0. */
static int fill_next(struct gfs_view *v, struct gfs_vdir *dh)
{
	if (dh->pos < 2) {
		snprintf(dh->cur_name, sizeof dh->cur_name, "%s",
			 dh->pos ? ".." : ".");
		dh->cur_pos = dh->pos;
		return gfs_vdesc_copy(&dh->cur, &dh->d) ? -ENOMEM : 1;
	}
	switch (dh->mode) {
	case VD_STATIC:
		return fill_static(v, dh);
	case VD_NODES_T:
		return fill_nodes(v, dh);
	case VD_EDGES_T:
		return fill_sources(v, dh);
	case VD_SRCDIR:
	case VD_ETDIR:
		return fill_edges(v, dh);
	case VD_VERSIONS:
		return fill_versions(v, dh);
	}
	return 0;
}

/* Listing cookies carry the graph version they were read from, so a
 * READDIR at a cookie resumes in that (immutable) version even without a
 * directory handle (FUSE_CAP_NO_OPENDIR_SUPPORT): a listing that spans a
 * commit is one snapshot, never repeating or skipping a name.  Bits 0-39:
 * the position; bits 40-62: the version's low 23 bits (resolved to the
 * newest version <= head with those bits); 0 is "the start, at the head". */
#define POS_BITS 40
#define POS_MASK ((UINT64_C(1) << POS_BITS) - 1)
#define VER_MASK ((UINT64_C(1) << 23) - 1)

static uint64_t cookie(uint64_t ver, uint64_t pos)
{
	return (ver & VER_MASK) << POS_BITS | (pos & POS_MASK);
}

/* The version a cookie names, given the head. */
static uint64_t cookie_version(uint64_t off, uint64_t head)
{
	uint64_t low = off >> POS_BITS & VER_MASK;
	uint64_t v = (head & ~VER_MASK) | low;

	if (v > head)
		v = v >= VER_MASK + 1 ? v - (VER_MASK + 1) : 0;
	return v ? v : head;
}

/* A listing was pinned at graph version ver (dir_pin_for's listed_max). */
static void listed_note(struct gfs_view *v, uint64_t ver)
{
	uint64_t m = atomic_load(&v->listed_max);

	while (m < ver && !atomic_compare_exchange_weak(&v->listed_max, &m, ver))
		;
}

/* Points a live listing at graph version ver (0: the head). */
static int dir_repin(struct gfs_view *v, struct gfs_vdir *dh, uint64_t ver)
{
	struct ctx c;
	int rc = to_errno(ctx_get(v, ver, &c));

	if (rc)
		return rc;
	listed_note(v, c.gv->version);
	if (dh->c.gv && c.gv->version == dh->c.gv->version) {
		ctx_put(v, &c);
		return 0;
	}
	dir_reset(dh);
	for (size_t i = 0; i < dh->n_names; i++)
		free(dh->names[i]);
	free(dh->names);
	dh->names = NULL;
	dh->n_names = 0;
	tv_put(v, dh->te);
	dh->te = NULL;
	if (dh->c.ge)
		ctx_put(v, &dh->c);
	dh->c = c;
	return dir_setup(v, dh);
}

/* A live listing read from offset 0 is read from the head as it is now;
 * at any other cookie, from the version the cookie names.  The cookie
 * holds that version's low bits; the rest come from the highest version
 * this view pinned a live listing at (at or above the cookie's, which
 * this view handed out), so a listing's next batch asks the manifest
 * nothing (on etcd it read the head: two requests a batch, as many as
 * the directories a find walks, since the kernel lists without a
 * handle). */
static int dir_pin_for(struct gfs_view *v, struct gfs_vdir *dh, uint64_t off)
{
	uint64_t top;

	if (gfs_vdesc_frozen(&dh->d))
		return 0; /* versions/N: fixed */
	if (off == 0)
		return dir_repin(v, dh, dh->d.ver);
	if (dh->c.gv && (dh->c.gv->version & VER_MASK) == (off >> POS_BITS & VER_MASK))
		return 0;
	top = atomic_load(&v->listed_max);
	return dir_repin(v, dh, cookie_version(off, top ? top : view_head_version(v)));
}

int gfs_view_readdir(struct gfs_view *v, struct gfs_vdir *dh, uint64_t off,
		     gfs_view_emit_fn emit, void *arg)
{
	uint64_t pos = off & POS_MASK, ver;
	int rc = dir_pin_for(v, dh, off);

	if (rc)
		return rc;
	ver = dh->c.gv->version;
	if (pos != dh->pos && dh->have_cur) {
		gfs_vdesc_release(&dh->cur);
		dh->have_cur = false;
	}
	dh->pos = pos;
	for (;;) {
		if (!dh->have_cur) {
			rc = fill_next(v, dh);
			if (rc <= 0) {
				gfs_vdesc_release(&dh->cur);
				return to_errno(rc);
			}
			dh->have_cur = true;
			if (dh->pos < 2)
				gfs_view_getattr(v, &dh->cur, &dh->cur_st);
			else
				fresh_attr(v, &dh->cur, &dh->cur_st);
		}
		if (emit(arg, dh->cur_name, &dh->cur, &dh->cur_st,
			 cookie(ver, dh->cur_pos + 1)))
			return 0;
		gfs_vdesc_release(&dh->cur);
		dh->have_cur = false;
		dh->pos = dh->cur_pos + 1;
	}
}

int gfs_view_readdir_at(struct gfs_view *v, const struct gfs_vdesc *d,
			uint64_t off, gfs_view_emit_fn emit, void *arg,
			uint64_t *version)
{
	struct gfs_vdir *dh;
	int rc;

	*version = 0;
	/* A live directory is pinned by gfs_view_readdir, to the version
	 * the offset names. */
	rc = dir_new(v, d, gfs_vdesc_frozen(d), &dh);
	if (rc)
		return rc;
	rc = gfs_view_readdir(v, dh, off, emit, arg);
	if (dh->c.gv)
		*version = dh->c.gv->version;
	gfs_view_closedir(v, dh);
	return rc;
}

/* ---- changes between graph versions (the notifier) --------------------- */

static void diff_side(struct gfs_view *v, const struct gfs_gv *x,
		      const struct gfs_gv *y,
		      void (*fn)(void *arg, const char *table), void *arg)
{
	for (size_t i = 0; i < x->n_pins; i++) {
		if (y && gfs_gv_pin(y, x->pins[i].table) == x->pins[i].version)
			continue;
		const char *t = intern(v, x->pins[i].table);

		if (t)
			fn(arg, t);
	}
}

int gfs_view_diff(struct gfs_view *v, uint64_t a, uint64_t b,
		  void (*fn)(void *arg, const char *table), void *arg)
{
	struct gvent *ga = NULL, *gb = NULL;
	int rc;

	if (a)
		gv_get(v, a, &ga);
	rc = gv_get(v, b, &gb);
	if (rc) {
		gv_put(v, ga);
		return rc;
	}
	/* A table pinned differently shows up once from each side; the caller
	 * tolerates duplicates. */
	diff_side(v, gb->gv, ga ? ga->gv : NULL, fn, arg);
	if (ga)
		diff_side(v, ga->gv, gb->gv, fn, arg);
	gv_put(v, ga);
	gv_put(v, gb);
	return 0;
}

int gfs_view_diff_rows(struct gfs_view *v, const char *table, uint64_t a,
		       uint64_t b, gfs_tdiff_fn fn, void *arg)
{
	struct gvent *ga = NULL, *gb = NULL;
	struct tvent *ea = NULL, *eb = NULL;
	uint32_t pa = 0, pb = 0;
	int rc = gv_get(v, a, &ga);

	rc = rc ? rc : gv_get(v, b, &gb);
	if (!rc) {
		pa = gfs_gv_pin(ga->gv, table);
		pb = gfs_gv_pin(gb->gv, table);
		rc = pa && pb ? 0 : -ENOENT;
	}
	if (!rc && pa != pb) {
		rc = tv_get(v, table, pa, &ea);
		rc = rc ? rc : tv_get(v, table, pb, &eb);
		rc = rc ? rc : gfs_tver_diff(ea->tv, eb->tv, fn, arg, NULL);
	}
	tv_put(v, ea);
	tv_put(v, eb);
	gv_put(v, ga);
	gv_put(v, gb);
	return rc;
}

bool gfs_view_schema_moved(struct gfs_view *v, uint64_t a, uint64_t b)
{
	struct gvent *ga = NULL, *gb = NULL;
	bool moved = true;

	if (gv_get(v, a, &ga) == 0 && gv_get(v, b, &gb) == 0)
		moved = strcmp(ga->gv->schema_id, gb->gv->schema_id) != 0;
	gv_put(v, ga);
	gv_put(v, gb);
	return moved;
}

/* ---- lifecycle --------------------------------------------------------- */

int gfs_view_new(struct gfs_graph *g, const struct gfs_view_opts *o,
		 struct gfs_view **out)
{
	struct gfs_view *v = calloc(1, sizeof *v);
	struct stat st;

	if (!v)
		return -ENOMEM;
	v->g = g;
	v->m = gfs_graph_manifest(g);
	v->ts = gfs_graph_tables(g);
	v->o = *o;
	if (!v->o.tver_cache)
		v->o.tver_cache = 64;
	/* Files belong to the store directory's owner (DESIGN.md §5). */
	if (stat(gfs_graph_dir(g), &st) == 0) {
		v->uid = st.st_uid;
		v->gid = st.st_gid;
	} else {
		v->uid = getuid();
		v->gid = getgid();
	}
	pthread_mutex_init(&v->lock, NULL);
	pthread_mutex_init(&v->hist_lock, NULL);
	/* On LMDB a head read is a read of a mapped page: cheaper than
	 * waiting for another thread's, so each request reads its own. */
	v->share_head = gfs_manifest_etcd(v->m) != NULL &&
			!getenv("GRAPHFS_NO_SHARED_HEAD");
	pthread_mutex_init(&v->hf_lock, NULL);
	pthread_cond_init(&v->hf_cond, NULL);
	*out = v;
	return 0;
}

void gfs_view_free(struct gfs_view *v)
{
	if (!v)
		return;
	tv_close_list(v->tvs);
	gv_free_list(v->gvs);
	while (v->hist) {
		struct thist *t = v->hist;

		v->hist = t->next;
		free(t->tver);
		free(t->time_ns);
		free(t);
	}
	free(v->log_ver);
	free(v->log_end);
	for (size_t i = 0; i < v->n_bnames; i++)
		free(v->bnames[i].name);
	free(v->bnames);
	for (size_t i = 0; i < v->n_interned; i++)
		free(v->interned[i]);
	free(v->interned);
	pthread_mutex_destroy(&v->lock);
	pthread_mutex_destroy(&v->hist_lock);
	pthread_mutex_destroy(&v->hf_lock);
	pthread_cond_destroy(&v->hf_cond);
	free(v);
}

void gfs_view_stats(struct gfs_view *v, struct gfs_view_stats *out)
{
	pthread_mutex_lock(&v->lock);
	*out = v->stats;
	out->tver_open = v->n_tvs;
	pthread_mutex_unlock(&v->lock);
}
