/* lock.c - per-table writer leases: flock() on STORE/locks/<table>.lock,
 * or, on a store whose manifest is on etcd, fenced etcd leases
 * (src/lease_etcd.c; the second half of this file, docs/multi-host.md
 * §4.1), and graph-version holds on either.
 *
 * Why flock and one descriptor per acquisition: flock locks belong to the
 * open file description, so two descriptors exclude each other even within
 * one process (threads of a mount), and the kernel drops the lock when the
 * process dies — a sidecar whose locks can be taken belongs to a dead
 * writer (DESIGN.md §3).  Lock files are created on first use and never
 * unlinked or renamed: unlinking would let a second writer lock a fresh
 * inode while the first still holds the old one.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "etcd.h"
#include "kv_etcd.h"
#include "lease_etcd.h"
#include "lock.h"
#include "util.h"

struct lease_store;

struct gfs_lockset {
	/* etcd store: its leases; NULL for flock() locks */
	struct gfs_leaseset *lease;
	struct lease_store *st;
	struct gfs_lockset *tl_next;   /* this thread's live etcd locksets */
	struct gfs_lease_gone *gone;   /* owner-gone compares (recovery) */
	size_t n_gone;
	size_t n;
	int fds[];
};

struct want {
	const char *table;
	enum gfs_lock_mode mode;
};

static int want_cmp(const void *a, const void *b)
{
	return strcmp(((const struct want *)a)->table,
		      ((const struct want *)b)->table);
}

static bool table_name_ok(const char *t)
{
	return t && t[0] && strchr(t, '/') == NULL && strcmp(t, ".") &&
	       strcmp(t, "..") && strlen(t) < NAME_MAX - 5;
}

/* Sorted, deduplicated (exclusive wins); returns the new count. */
static size_t wants_sort(struct want *w, size_t n)
{
	size_t k = 0;
	qsort(w, n, sizeof *w, want_cmp);
	for (size_t i = 0; i < n; i++) {
		if (k && strcmp(w[k - 1].table, w[i].table) == 0) {
			if (w[i].mode == GFS_LOCK_EX)
				w[k - 1].mode = GFS_LOCK_EX;
			continue;
		}
		w[k++] = w[i];
	}
	return k;
}

static int lock_open(const char *store_dir, const char *table)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int n = snprintf(dir, sizeof dir, "%s/locks", store_dir);
	int m = snprintf(path, sizeof path, "%s/%s.lock", dir, table);
	if (n < 0 || m < 0 || (size_t)m >= sizeof path)
		return -ENAMETOOLONG;
	for (int tries = 0;; tries++) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, GFS_FILE_MODE);
		if (fd >= 0)
			return fd;
		if (errno == EACCES || errno == EROFS) /* reader of a ro store */
			fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno != ENOENT || tries)
			return gfs_io_fail("open lock file", path, -errno);
		int rc = gfs_mkdir(dir, GFS_DIR_MODE);
		if (rc)
			return rc;
	}
}

static int lock_fd(int fd, enum gfs_lock_mode mode, unsigned flags)
{
	int op = (mode == GFS_LOCK_EX ? LOCK_EX : LOCK_SH) |
		 (flags & GFS_LOCK_TRY ? LOCK_NB : 0);
	while (flock(fd, op)) {
		if (errno == EWOULDBLOCK)
			return -EWOULDBLOCK;
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static void lease_free(struct gfs_lockset *ls);

void gfs_lockset_free(struct gfs_lockset *ls)
{
	if (!ls)
		return;
	if (ls->st) {
		lease_free(ls);
		return;
	}
	for (size_t i = 0; i < ls->n; i++)
		close(ls->fds[i]); /* closing the only descriptor releases */
	free(ls);
}

static int acquire(const char *store_dir, const struct want *w, size_t n,
		   unsigned flags, struct gfs_lockset *ls)
{
	for (size_t i = 0; i < n; i++) {
		int fd = lock_open(store_dir, w[i].table);
		if (fd < 0)
			return fd;
		int rc = lock_fd(fd, w[i].mode, flags);
		if (rc) {
			close(fd);
			return rc;
		}
		ls->fds[ls->n++] = fd;
	}
	return 0;
}

static int lease_tables(const char *url, const struct want *w, size_t n,
			unsigned flags, struct gfs_lockset **out, struct gfs_diag *d);

int gfs_lock_tables(const char *store_dir, const char *const *tables,
		    const enum gfs_lock_mode *modes, size_t n, unsigned flags,
		    struct gfs_lockset **out)
{
	return gfs_lock_tables_d(store_dir, tables, modes, n, flags, out, NULL);
}

int gfs_lock_tables_d(const char *store_dir, const char *const *tables,
		      const enum gfs_lock_mode *modes, size_t n, unsigned flags,
		      struct gfs_lockset **out, struct gfs_diag *d)
{
	char *url = NULL;
	int urc;

	*out = NULL;
	assert(!gfs_in_write_cb()); /* kv.h: no lock wait in a write callback */
	/* Which backend: the FORMAT file's manifest line.  An unreadable
	 * FORMAT keeps flock() (the manifest's open reports it). */
	urc = gfs_kv_manifest_url(store_dir, &url, NULL);
	if (!urc && url) {
		struct want *w = calloc(n + 1, sizeof *w);
		int rc = w ? 0 : -ENOMEM;
		for (size_t i = 0; !rc && i < n; i++) {
			if (!table_name_ok(tables[i]))
				rc = -EINVAL;
			w[i] = (struct want){ tables[i], modes ? modes[i] : GFS_LOCK_EX };
		}
		if (!rc)
			rc = lease_tables(url, w, n, flags, out, d);
		free(w);
		free(url);
		return rc;
	}
	struct want *w = calloc(n + 1, sizeof *w);
	struct gfs_lockset *ls = calloc(1, sizeof *ls + (n + 1) * sizeof(int));
	int rc = w && ls ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		if (!table_name_ok(tables[i]))
			rc = -EINVAL;
		w[i] = (struct want){ tables[i], modes ? modes[i] : GFS_LOCK_EX };
	}
	if (!rc)
		rc = acquire(store_dir, w, wants_sort(w, n), flags, ls);
	free(w);
	if (rc) {
		gfs_lockset_free(ls); /* holds none on failure */
		return rc;
	}
	*out = ls;
	return 0;
}

/* ---- graph-version holds ------------------------------------------------- */

int gfs_holds_open(const char *store_dir, int *fd)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int n = snprintf(dir, sizeof dir, "%s/locks", store_dir);
	int m = snprintf(path, sizeof path, "%s/versions.lock", dir);

	*fd = -1;
	if (n < 0 || m < 0 || (size_t)m >= sizeof path)
		return -ENAMETOOLONG;
	for (int tries = 0;; tries++) {
		int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, GFS_FILE_MODE);

		if (f < 0 && (errno == EACCES || errno == EROFS))
			f = open(path, O_RDONLY | O_CLOEXEC);
		if (f >= 0) {
			*fd = f;
			return 0;
		}
		if (errno != ENOENT || tries)
			return gfs_io_fail("open lock file", path, -errno);
		int rc = gfs_mkdir(dir, GFS_DIR_MODE);
		if (rc)
			return rc;
	}
}

static int ofd_lock(int fd, uint64_t n, short type, int cmd)
{
	struct flock fl;

	if (n > (uint64_t)INT64_MAX)
		return -EINVAL;
	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)n;
	fl.l_len = 1;
	while (fcntl(fd, cmd, &fl)) {
		if (errno == EAGAIN || errno == EACCES)
			return -EWOULDBLOCK;
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int gfs_hold_take(int fd, uint64_t n)
{
	return ofd_lock(fd, n, F_RDLCK, F_OFD_SETLKW);
}

int gfs_hold_try(int fd, uint64_t n)
{
	return ofd_lock(fd, n, F_RDLCK, F_OFD_SETLK);
}

int gfs_hold_drop(int fd, uint64_t n)
{
	return ofd_lock(fd, n, F_UNLCK, F_OFD_SETLK);
}

int gfs_hold_fence(int fd, uint64_t n)
{
	return ofd_lock(fd, n, F_WRLCK, F_OFD_SETLK);
}

int gfs_hold_probe(int fd, uint64_t n, bool *held)
{
	int rc = gfs_hold_fence(fd, n);

	*held = rc == -EWOULDBLOCK;
	if (rc == -EWOULDBLOCK)
		return 0;
	return rc ? rc : gfs_hold_drop(fd, n);
}

/* ---- etcd stores: table leases with fencing ------------------------------
 *
 * Why here: every writer (commit.c, recover.c, gc.c, upgrade.c, the mount
 * through apply.c) already takes its locks through gfs_lock_tables, so an
 * etcd store gets leases without any caller knowing.  One lease session per
 * store and process (issue 13 req. 3): every lease the process takes on the
 * store is attached to one etcd lease, kept alive by one thread.  A session
 * once lost stays lost (lease_etcd.h); the next gfs_lock_tables opens a new
 * one, and the old one is closed when its last lockset goes.
 *
 * Fencing: a live etcd lockset is on a process-wide list with the thread
 * that took it; the kv_etcd fence hook adds the compares of the calling
 * thread's locksets on that store to every write transaction, so a
 * sidecar arm or confirm, publish, recovery publish, audit record or gc
 * commit made under the lockset fails once its leases are gone. */

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>

struct lease_sess {
	struct gfs_lease_session *s;
	unsigned refs;           /* reg_mu: live locksets, +1 while current */
};

struct lease_store {
	struct lease_store *next;
	pid_t pid;               /* a child after fork() ignores its parent's */
	char *url;
	struct gfs_etcd *e;      /* the session's client (own, never closed) */
	struct lease_sess *cur;  /* reg_mu */
};

struct lease_info {
	struct lease_sess *ss;
	pthread_t owner;
	char **tables;           /* sorted, as taken */
	size_t n_tables;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct lease_store *reg;
static struct gfs_lockset *live;      /* reg_mu: every live etcd lockset */
struct gfs_vhold;
static int vhold_cmps(const char *prefix, pthread_t self, struct gfs_kv_etcd_cmps *out);
static bool atexit_set;

/* The lockset's session and bookkeeping live behind the flexible array:
 * lease locksets have no fds. */
static struct lease_info *info_of(const struct gfs_lockset *ls)
{
	return (struct lease_info *)(void *)&ls->fds[0];
}

static int64_t env_num(const char *name, int64_t dflt, int64_t max)
{
	const char *v = getenv(name);
	uint64_t n;

	if (v && *v && !gfs_parse_u64(v, &n) && n > 0 && n <= (uint64_t)max)
		return (int64_t)n;
	return dflt;
}

/* "pid 123 on host h (lease 7f2a.1)" from a holder key's JSON value. */
static void holder_text(const char *json, char *out, size_t cap)
{
	json_t *j = json && *json ? json_loads(json, 0, NULL) : NULL;
	const char *host = j ? json_string_value(json_object_get(j, "host")) : NULL;
	const char *h = j ? json_string_value(json_object_get(j, "holder")) : NULL;
	json_t *pid = j ? json_object_get(j, "pid") : NULL;

	if (host && h && json_is_integer(pid))
		snprintf(out, cap, "pid %" JSON_INTEGER_FORMAT " on host %s (lease %s)",
			 json_integer_value(pid), host, h);
	else
		snprintf(out, cap, "%s", json && *json ? json : "a holder that just let go");
	json_decref(j);
}

/* On a terminal (or GRAPHFS_LEASE_VERBOSE=1): who we wait for. */
static void on_wait(void *arg, const char *what, const char *holder_json)
{
	const char *v = getenv("GRAPHFS_LEASE_VERBOSE");
	char who[600];

	(void)arg;
	if (!isatty(STDERR_FILENO) && !(v && !strcmp(v, "1")))
		return;
	holder_text(holder_json, who, sizeof who);
	/* the bound depends on the caller (a recovery waits a TTL + 5 s, a
	 * writer GRAPHFS_LOCK_WAIT_S): the timeout's message names it */
	fprintf(stderr, "graphfs: waiting for %s, held by %s\n", what, who);
}

/* reg_mu held. */
static void sess_put(struct lease_sess *ss)
{
	if (ss && --ss->refs == 0) {
		gfs_lease_session_close(ss->s);
		free(ss);
	}
}

/* At exit: revoke the sessions no lockset uses any more (their keys are
 * gone already; a lockset still live keeps its keys until the TTL, as a
 * crashed process's would, since another thread may still be using it). */
static void close_all(void)
{
	pthread_mutex_lock(&reg_mu);
	for (struct lease_store *st = reg; st; st = st->next)
		if (st->pid == getpid() && st->cur && st->cur->refs == 1) {
			sess_put(st->cur);
			st->cur = NULL;
		}
	pthread_mutex_unlock(&reg_mu);
}

static unsigned lk_timeout_ms, lk_rounds; /* reg_mu; 0: etcd.c's defaults */

void gfs_lock_set_etcd_timeouts(unsigned timeout_ms, unsigned rounds)
{
	pthread_mutex_lock(&reg_mu);
	lk_timeout_ms = timeout_ms;
	lk_rounds = rounds;
	pthread_mutex_unlock(&reg_mu);
}

/* reg_mu held: the store of url in this process, made on first use. */
static int store_get(const char *url, struct lease_store **out, struct gfs_diag *d)
{
	struct gfs_etcd_opts o = { .first_endpoint = gfs_etcd_first_from_env() };
	struct lease_store *st;
	int rc;

	for (st = reg; st; st = st->next)
		if (st->pid == getpid() && !strcmp(st->url, url)) {
			*out = st;
			return 0;
		}
	if (!(st = calloc(1, sizeof *st)) || !(st->url = strdup(url))) {
		free(st);
		return -ENOMEM;
	}
	rc = gfs_etcd_open(url, &o, &st->e, d);
	if (rc) {
		free(st->url);
		free(st);
		return rc;
	}
	if (lk_timeout_ms)
		gfs_etcd_set_timeouts(st->e, lk_timeout_ms, lk_rounds);
	st->pid = getpid();
	st->next = reg;
	reg = st;
	if (!atexit_set)
		atexit_set = atexit(close_all) == 0;
	*out = st;
	return 0;
}

/* reg_mu held: a live session of st (a lost one is replaced), one more
 * reference to it. */
static int sess_get(struct lease_store *st, struct lease_sess **out, struct gfs_diag *d)
{
	struct lease_sess *ss = st->cur;
	int rc;

	if (ss && gfs_lease_session_check(ss->s, NULL)) {
		sess_put(ss);
		st->cur = ss = NULL;
	}
	if (!ss) {
		struct gfs_lease_opts o = {
			.ttl_s = env_num("GRAPHFS_LEASE_TTL", 10, 3600),
			.on_wait = on_wait,
		};
		if (!(ss = calloc(1, sizeof *ss)))
			return -ENOMEM;
		rc = gfs_lease_session_open(st->e, &o, &ss->s, d);
		if (rc) {
			free(ss);
			return rc;
		}
		ss->refs = 1;
		st->cur = ss;
	}
	ss->refs++;
	*out = ss;
	return 0;
}

static int lease_tables(const char *url, const struct want *w, size_t n,
			unsigned flags, struct gfs_lockset **out, struct gfs_diag *d)
{
	struct gfs_lockset *ls = calloc(1, sizeof *ls + sizeof(struct lease_info));
	const char **names = calloc(n + 1, sizeof *names);
	enum gfs_lock_mode *modes = calloc(n + 1, sizeof *modes);
	struct lease_store *st = NULL;
	struct lease_sess *ss = NULL;
	struct lease_info *li;
	int rc = ls && names && modes ? 0 : -ENOMEM;

	for (size_t i = 0; !rc && i < n; i++) {
		names[i] = w[i].table;
		modes[i] = w[i].mode;
	}
	if (!rc) {
		pthread_mutex_lock(&reg_mu);
		rc = store_get(url, &st, d);
		if (!rc)
			rc = sess_get(st, &ss, d);
		pthread_mutex_unlock(&reg_mu);
	}
	if (!rc) {
		unsigned wait_ms = (unsigned)env_num("GRAPHFS_LOCK_WAIT_S", 120, 86400) * 1000;
		if (flags & GFS_LOCK_WAIT_TTL)
			wait_ms = (unsigned)(gfs_lease_session_ttl(ss->s) + 5) * 1000;
		rc = gfs_lease_tables(ss->s, names, modes, n, flags & GFS_LOCK_TRY,
				      wait_ms, &ls->lease, d);
		if (rc == -ETIMEDOUT && d) {
			char m[sizeof d->msg];
			snprintf(m, sizeof m, "%s", d->msg[0] ? d->msg : "a table lease is held elsewhere");
			gfs_diag_reset(d, "%.400s %u s (%s)", m, wait_ms / 1000,
				       flags & GFS_LOCK_WAIT_TTL ? "the lease TTL + 5 s: a live holder"
								 : "GRAPHFS_LOCK_WAIT_S");
		}
	}
	if (!rc) {
		li = info_of(ls);
		li->tables = calloc(n + 1, sizeof *li->tables);
		for (size_t i = 0; li->tables && i < n; i++)
			if ((li->tables[li->n_tables] = strdup(names[i])))
				li->n_tables++;
		if (!li->tables || li->n_tables != n) {
			for (size_t i = 0; li->tables && i < li->n_tables; i++)
				free(li->tables[i]);
			free(li->tables);
			gfs_lease_release(ls->lease, NULL);
			rc = -ENOMEM;
		}
	}
	free(names);
	free(modes);
	if (rc) {
		pthread_mutex_lock(&reg_mu);
		sess_put(ss);
		pthread_mutex_unlock(&reg_mu);
		free(ls);
		return rc;
	}
	li->ss = ss;
	li->owner = pthread_self();
	ls->st = st;
	pthread_mutex_lock(&reg_mu);
	ls->tl_next = live;
	live = ls;
	pthread_mutex_unlock(&reg_mu);
	*out = ls;
	return 0;
}

static void lease_free(struct gfs_lockset *ls)
{
	struct lease_info *li = info_of(ls);

	pthread_mutex_lock(&reg_mu);
	for (struct gfs_lockset **p = &live; *p; p = &(*p)->tl_next)
		if (*p == ls) {
			*p = ls->tl_next;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
	/* the keys go now; if this fails they die with the session's lease */
	gfs_lease_release(ls->lease, NULL);
	for (size_t i = 0; i < ls->n_gone; i++)
		gfs_lease_gone_release(&ls->gone[i]);
	free(ls->gone);
	for (size_t i = 0; i < li->n_tables; i++)
		free(li->tables[i]);
	free(li->tables);
	pthread_mutex_lock(&reg_mu);
	sess_put(li->ss);
	pthread_mutex_unlock(&reg_mu);
	free(ls);
}

const char *gfs_lockset_holder(const struct gfs_lockset *ls)
{
	return ls && ls->lease ? gfs_leaseset_holder(ls->lease) : NULL;
}

int gfs_lockset_owner_gone(struct gfs_lockset *ls, const char *holder)
{
	struct lease_info *li;
	struct gfs_lease_gone *g;
	int rc = 0;

	if (!ls || !ls->lease || !holder || !holder[0] ||
	    !strcmp(holder, gfs_leaseset_holder(ls->lease)))
		return 0;
	li = info_of(ls);
	if (!(g = calloc(li->n_tables + 1, sizeof *g)))
		return -ENOMEM;
	for (size_t i = 0; !rc && i < li->n_tables; i++)
		rc = gfs_lease_gone_init(&g[i], gfs_etcd_prefix(ls->st->e), li->tables[i], holder);
	if (rc) {
		for (size_t i = 0; i < li->n_tables; i++)
			gfs_lease_gone_release(&g[i]);
		free(g);
		/* a holder name that cannot be a key: the sidecar is not one
		 * of ours to guard; the lease exclusion still holds */
		return rc == -EINVAL ? 0 : rc;
	}
	pthread_mutex_lock(&reg_mu); /* the hook reads gone under reg_mu */
	for (size_t i = 0; i < ls->n_gone; i++)
		gfs_lease_gone_release(&ls->gone[i]);
	free(ls->gone);
	ls->gone = g;
	ls->n_gone = li->n_tables;
	pthread_mutex_unlock(&reg_mu);
	return 0;
}

int gfs_lockset_check(struct gfs_lockset *ls, struct gfs_diag *d)
{
	if (!ls || !ls->lease)
		return 0;
	return gfs_lease_session_check(info_of(ls)->ss->s, d);
}

int gfs_lock_fence_hook(void *arg, struct gfs_kv_etcd_cmps *out)
{
	const char *prefix = gfs_etcd_prefix(arg);
	pthread_t self = pthread_self();
	int rc = 0;

	pthread_mutex_lock(&reg_mu);
	for (struct gfs_lockset *ls = live; ls && !rc; ls = ls->tl_next) {
		const struct gfs_etcd_cmp *c;
		size_t n;
		if (!pthread_equal(info_of(ls)->owner, self) ||
		    strcmp(gfs_etcd_prefix(ls->st->e), prefix))
			continue;
		gfs_lease_fence_cmps(ls->lease, &c, &n);
		for (size_t i = 0; !rc && i < n; i++)
			rc = gfs_kv_etcd_cmps_add(out, &c[i]);
		for (size_t i = 0; !rc && i < ls->n_gone; i++)
			for (int k = 0; !rc && k < 2; k++)
				rc = gfs_kv_etcd_cmps_add(out, &ls->gone[i].cmps[k]);
	}
	if (!rc)
		rc = vhold_cmps(prefix, self, out);
	pthread_mutex_unlock(&reg_mu);
	return rc;
}

/* ---- etcd: watching for released leases ---------------------------------- */

struct gfs_lock_watch {
	struct gfs_etcd_watch *w;
	void (*fn)(void *arg, bool ended);
	void *arg;
};

static void rel_ev(void *arg, const struct gfs_etcd_event *ev, size_t n, int64_t hrev)
{
	struct gfs_lock_watch *lw = arg;

	(void)hrev;
	for (size_t i = 0; i < n; i++)
		if (ev[i].type == GFS_ETCD_EV_DELETE) {
			lw->fn(lw->arg, false);
			return;
		}
}

static void rel_err(void *arg, int rc, bool fatal, const char *msg)
{
	struct gfs_lock_watch *lw = arg;

	(void)rc;
	(void)msg;
	if (fatal) /* compacted past us: deletions may be missed, start over */
		lw->fn(lw->arg, true);
}

int gfs_lock_watch_releases(const char *store_dir, void (*fn)(void *arg, bool ended),
			    void *arg, struct gfs_lock_watch **out, struct gfs_diag *d)
{
	struct gfs_lock_watch *lw;
	struct lease_store *st = NULL;
	char *url = NULL, *key = NULL, *end = NULL;
	size_t elen;
	int rc;

	*out = NULL;
	rc = gfs_kv_manifest_url(store_dir, &url, d);
	if (rc || !url)
		return rc;
	pthread_mutex_lock(&reg_mu);
	rc = store_get(url, &st, d);
	pthread_mutex_unlock(&reg_mu);
	free(url);
	if (rc)
		return rc;
	lw = calloc(1, sizeof *lw);
	if (lw && asprintf(&key, "%s/lease/", gfs_etcd_prefix(st->e)) < 0)
		key = NULL;
	rc = lw && key ? gfs_etcd_prefix_end(key, strlen(key), &end, &elen) : -ENOMEM;
	if (!rc) {
		lw->fn = fn;
		lw->arg = arg;
		rc = gfs_etcd_watch_start(st->e, key, strlen(key), end, elen, 0, rel_ev, rel_err,
					  lw, &lw->w, d);
	}
	free(key);
	free(end);
	if (rc) {
		free(lw);
		return rc;
	}
	*out = lw;
	return 0;
}

void gfs_lock_watch_stop(struct gfs_lock_watch *lw)
{
	if (!lw)
		return;
	gfs_etcd_watch_stop(lw->w);
	free(lw);
}

/* ---- graph-version holds on either backend --------------------------------
 *
 * LMDB: the OFD locks above on one descriptor.  etcd: hold and gc-fence
 * keys (lease_etcd.h) on the process's session of the store.  A handle
 * remembers what it holds and fences, so closing it lets go of all of it
 * (a descriptor's close does that on LMDB), and a mount whose session was
 * lost takes its holds again on a new one.  gc's fences are fence compares
 * of its commit: a live handle with fences is registered with its thread,
 * and gfs_lock_fence_hook adds them. */

struct gfs_vhold {
	int fd;                        /* LMDB; -1 on etcd */
	struct lease_store *st;        /* etcd */
	struct lease_sess *ss;
	pthread_t owner;
	pthread_mutex_t mu;            /* the two lists */
	uint64_t *held;
	size_t n_held, cap_held;
	struct gfs_lease_fence *fences;
	size_t n_fences, cap_fences;
	struct gfs_vhold *next;        /* reg_mu: vlive */
};

static struct gfs_vhold *vlive;        /* reg_mu: etcd handles */

int gfs_vhold_open(const char *store_dir, struct gfs_vhold **out, struct gfs_diag *d)
{
	struct gfs_vhold *h = calloc(1, sizeof *h);
	char *url = NULL;
	int rc = h ? gfs_kv_manifest_url(store_dir, &url, NULL) : -ENOMEM;

	*out = NULL;
	if (rc)
		goto fail;
	h->fd = -1;
	pthread_mutex_init(&h->mu, NULL);
	if (!url) {
		rc = gfs_holds_open(store_dir, &h->fd);
		if (rc)
			goto fail_mu;
		*out = h;
		return 0;
	}
	pthread_mutex_lock(&reg_mu);
	rc = store_get(url, &h->st, d);
	if (!rc)
		rc = sess_get(h->st, &h->ss, d);
	if (!rc) {
		h->owner = pthread_self();
		h->next = vlive;
		vlive = h;
	}
	pthread_mutex_unlock(&reg_mu);
	free(url);
	if (rc)
		goto fail_mu;
	*out = h;
	return 0;
fail_mu:
	pthread_mutex_destroy(&h->mu);
fail:
	free(url);
	free(h);
	return rc;
}

void gfs_vhold_close(struct gfs_vhold *h)
{
	if (!h)
		return;
	if (h->fd >= 0) {
		close(h->fd); /* drops every lock of the description */
	} else {
		pthread_mutex_lock(&reg_mu);
		for (struct gfs_vhold **p = &vlive; *p; p = &(*p)->next)
			if (*p == h) {
				*p = h->next;
				break;
			}
		pthread_mutex_unlock(&reg_mu);
		for (size_t i = 0; i < h->n_fences; i++)
			gfs_lease_hold_unfence(h->ss->s, &h->fences[i], NULL);
		for (size_t i = 0; i < h->n_held; i++)
			gfs_lease_hold_drop(h->ss->s, h->held[i], NULL);
		pthread_mutex_lock(&reg_mu);
		sess_put(h->ss);
		pthread_mutex_unlock(&reg_mu);
	}
	free(h->held);
	free(h->fences);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* h->mu held: a lost session replaced, the holds taken again on the new
 * one (a gc may have fenced one meanwhile: that one is let go, and the
 * caller that opened it finds the version removed or not, as on a hold
 * that waited). */
static int vhold_renew(struct gfs_vhold *h, struct gfs_diag *d)
{
	struct lease_sess *ns = NULL;
	int rc;

	if (!gfs_lease_session_check(h->ss->s, NULL))
		return 0;
	pthread_mutex_lock(&reg_mu);
	rc = sess_get(h->st, &ns, d);
	if (!rc) {
		sess_put(h->ss);
		h->ss = ns;
	}
	pthread_mutex_unlock(&reg_mu);
	for (size_t i = 0; !rc && i < h->n_held; i++)
		if (gfs_lease_hold_take(h->ss->s, h->held[i], GFS_LOCK_TRY, 0, NULL))
			h->held[i--] = h->held[--h->n_held];
	return rc;
}

/* The handle's session (a lost one replaced), with a reference of the
 * caller's own: another thread may replace h->ss meanwhile, and the old
 * session must outlive this call.  *rc: the replacement's failure. */
static struct lease_sess *vhold_sess(struct gfs_vhold *h, int *rc)
{
	struct lease_sess *ss;

	pthread_mutex_lock(&h->mu);
	*rc = vhold_renew(h, NULL);
	pthread_mutex_lock(&reg_mu);
	ss = h->ss;
	ss->refs++;
	pthread_mutex_unlock(&reg_mu);
	pthread_mutex_unlock(&h->mu);
	return ss;
}

static void vhold_unsess(struct lease_sess *ss)
{
	pthread_mutex_lock(&reg_mu);
	sess_put(ss);
	pthread_mutex_unlock(&reg_mu);
}

static bool has_n(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

int gfs_vhold_take(struct gfs_vhold *h, uint64_t n, unsigned flags)
{
	int rc;

	if (h->fd >= 0)
		return flags & GFS_LOCK_TRY ? gfs_hold_try(h->fd, n) : gfs_hold_take(h->fd, n);
	struct lease_sess *ss = vhold_sess(h, &rc);
	if (!rc)
		rc = gfs_lease_hold_take(ss->s, n, flags & GFS_LOCK_TRY,
					 (unsigned)env_num("GRAPHFS_LOCK_WAIT_S", 120, 86400) * 1000, NULL);
	vhold_unsess(ss);
	if (rc)
		return rc;
	pthread_mutex_lock(&h->mu);
	if (!has_n(h->held, h->n_held, n)) {
		uint64_t *v = gfs_array_grow(h->held, &h->cap_held, h->n_held, sizeof *v, 8);
		if (v) {
			h->held = v;
			h->held[h->n_held++] = n;
		} else {
			rc = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&h->mu);
	return rc;
}

int gfs_vhold_drop(struct gfs_vhold *h, uint64_t n)
{
	if (h->fd >= 0)
		return gfs_hold_drop(h->fd, n);
	pthread_mutex_lock(&h->mu);
	for (size_t i = 0; i < h->n_held; i++)
		if (h->held[i] == n) {
			h->held[i] = h->held[--h->n_held];
			break;
		}
	pthread_mutex_unlock(&h->mu);
	int rc;
	struct lease_sess *ss = vhold_sess(h, &rc);
	rc = gfs_lease_hold_drop(ss->s, n, NULL);
	vhold_unsess(ss);
	return rc;
}

int gfs_vhold_fence(struct gfs_vhold *h, uint64_t n, struct gfs_diag *d)
{
	struct gfs_lease_fence f;
	int rc;

	if (h->fd >= 0)
		return gfs_hold_fence(h->fd, n);
	rc = gfs_lease_hold_fence(h->ss->s, n, &f, d);
	if (rc)
		return rc;
	pthread_mutex_lock(&reg_mu); /* the hook reads fences under reg_mu */
	struct gfs_lease_fence *v = gfs_array_grow(h->fences, &h->cap_fences, h->n_fences,
						   sizeof *v, 16);
	if (v) {
		h->fences = v;
		h->fences[h->n_fences++] = f;
	}
	pthread_mutex_unlock(&reg_mu);
	if (!v) {
		gfs_lease_hold_unfence(h->ss->s, &f, NULL);
		return -ENOMEM;
	}
	return 0;
}

/* reg_mu held: the fence compares of this thread's handles on prefix. */
static int vhold_cmps(const char *prefix, pthread_t self, struct gfs_kv_etcd_cmps *out)
{
	int rc = 0;

	for (struct gfs_vhold *h = vlive; h && !rc; h = h->next) {
		if (!pthread_equal(h->owner, self) || strcmp(gfs_etcd_prefix(h->st->e), prefix))
			continue;
		for (size_t i = 0; !rc && i < h->n_fences; i++)
			rc = gfs_kv_etcd_cmps_add(out, &h->fences[i].cmp);
	}
	return rc;
}
