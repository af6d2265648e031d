/* lease_etcd.c - per-table leases and graph-version holds on etcd, fenced
 * (lease_etcd.h has the key layout and the calling sequence).
 *
 * Invariants:
 *  1. A lease key exists only while its session's etcd lease does, and is
 *     created by one Txn whose compares make EX exclusive of every other key
 *     of the table and SH of every EX key; etcd serialises Txns, so two
 *     conflicting keys never coexist.
 *  2. A session that may have lost its etcd lease never says otherwise: it
 *     counts a TTL from the moment its last successful keepalive was *sent*
 *     (the server renewed no earlier), on CLOCK_BOOTTIME, and once lost it
 *     stays lost (no re-grant; the keepalive thread revokes the lease so its
 *     keys go at once if they have not).  The reason given is an outage
 *     when a keepalive failed within that TTL, a pause otherwise.
 *  3. Safety does not rest on 2: a writer's Txn carries create_revision ==
 *     token for each of its keys, which no later lease of the table can
 *     satisfy (a new key has a new create_revision).
 *  4. Waiting is on a watch from the revision the failed Txn saw + 1, so a
 *     deletion between the Txn and the watch's start is not missed; the
 *     wait is bounded by the caller's deadline and ends early when the
 *     session is lost.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lease_etcd.h"

struct gfs_lease_session {
	struct gfs_etcd *e;   /* borrowed */
	struct gfs_etcd *ka;  /* own: keepalives, short timeouts */
	const char *prefix;   /* borrowed from e */
	int64_t lease, ttl;
	char id[24];          /* lease id in hex */
	char host[256];
	pid_t pid;
	void (*on_wait)(void *, const char *, const char *);
	void *on_wait_arg;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;  /* CLOCK_MONOTONIC */
	/* protected by mu: */
	bool stop, lost;
	uint64_t seq;
	int64_t last_ok_ns;   /* CLOCK_BOOTTIME, send time of the last renewal */
	char last_err[520];
	char lost_msg[1000];
};

struct held {
	char *table;
	enum gfs_lock_mode mode;
	char *key;
	size_t key_len;
	int64_t token;
};

struct gfs_leaseset {
	struct gfs_lease_session *s;
	char holder[48];
	size_t n;
	struct held *h;
	struct gfs_etcd_cmp *cmps;
};

static int64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void abs_mono(struct timespec *ts, int64_t ms)
{
	int64_t t = clock_ns(CLOCK_MONOTONIC) + ms * 1000000;
	ts->tv_sec = t / 1000000000;
	ts->tv_nsec = t % 1000000000;
}

/* ---- loss ---------------------------------------------------------------- */

/* Marks s lost with why (mu held); the first reason stays. */
static void mark_lost(struct gfs_lease_session *s, const char *why)
{
	if (s->lost)
		return;
	s->lost = true;
	snprintf(s->lost_msg, sizeof(s->lost_msg), "lease lost: %s; the operation was left for recovery", why);
	pthread_cond_broadcast(&s->cond);
}

/* mu held: lost already, or a TTL passed since the last renewal. */
static bool check_locked(struct gfs_lease_session *s)
{
	if (s->lost)
		return true;
	if (clock_ns(CLOCK_BOOTTIME) - s->last_ok_ns < s->ttl * 1000000000) {
		return false;
	}
	char why[900];
	if (s->last_err[0])
		snprintf(why, sizeof(why), "no keepalive of etcd lease %s answered for its TTL of %" PRId64 " s (%s)",
			 s->id, s->ttl, s->last_err);
	else
		snprintf(why, sizeof(why), "paused past its TTL of %" PRId64 " s", s->ttl);
	mark_lost(s, why);
	return true;
}

int gfs_lease_session_check(struct gfs_lease_session *s, struct gfs_diag *d)
{
	pthread_mutex_lock(&s->mu);
	bool lost = check_locked(s);
	if (lost)
		gfs_diag_set(d, "%s", s->lost_msg);
	pthread_mutex_unlock(&s->mu);
	return lost ? GFS_ELEASE : 0;
}

/* One keepalive and what it means (mu not held). */
static void keepalive_once(struct gfs_lease_session *s)
{
	struct gfs_diag d = {{0}};
	int64_t sent = clock_ns(CLOCK_BOOTTIME), ttl = 0;
	int rc = gfs_etcd_lease_keepalive(s->ka, s->lease, &ttl, &d);
	pthread_mutex_lock(&s->mu);
	if (rc == 0 && !s->lost && sent - s->last_ok_ns < s->ttl * 1000000000) {
		s->last_ok_ns = sent;
		s->last_err[0] = 0;
	} else if (rc == -ENOENT) {
		char why[160];
		if (sent - s->last_ok_ns >= s->ttl * 1000000000)
			snprintf(why, sizeof(why), "paused past its TTL of %" PRId64 " s", s->ttl);
		else
			snprintf(why, sizeof(why), "etcd lease %s was revoked", s->id);
		mark_lost(s, why);
	} else if (rc && clock_ns(CLOCK_BOOTTIME) - s->last_ok_ns < s->ttl * 1000000000) {
		/* evidence of an outage only if it failed while the lease could
		 * still be renewed: a request in flight when the process was
		 * stopped fails after it resumes, and that is a pause */
		snprintf(s->last_err, sizeof(s->last_err), "%s", d.msg[0] ? d.msg : gfs_strerror(rc));
	}
	check_locked(s); /* a renewal that came too late does not revive it */
	pthread_mutex_unlock(&s->mu);
}

static void *keepalive_main(void *arg)
{
	struct gfs_lease_session *s = arg;
	int64_t every_ms = s->ttl * 1000 / 3, next = clock_ns(CLOCK_MONOTONIC);
	pthread_mutex_lock(&s->mu);
	while (!s->stop && !s->lost) {
		/* every TTL/3 from the previous start, however long it took */
		struct timespec ts;
		int64_t now = clock_ns(CLOCK_MONOTONIC);
		next += every_ms * 1000000;
		if (next < now)
			next = now;
		abs_mono(&ts, (next - now) / 1000000);
		int rc = 0;
		while (!s->stop && !s->lost && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&s->cond, &s->mu, &ts);
		if (s->stop || s->lost)
			break;
		pthread_mutex_unlock(&s->mu);
		keepalive_once(s);
		pthread_mutex_lock(&s->mu);
	}
	bool revoke = s->lost;
	pthread_mutex_unlock(&s->mu);
	if (revoke) { /* invariant 2: its keys go now if they have not */
		struct gfs_diag d = {{0}};
		gfs_etcd_lease_revoke(s->ka, s->lease, &d);
	}
	return NULL;
}

/* ---- session --------------------------------------------------------------- */

/* A client to e's endpoints whose calls end within about ms. */
static int open_ka(struct gfs_etcd *e, int64_t ms, struct gfs_etcd **out, struct gfs_diag *d)
{
	const struct gfs_etcd_url *u = gfs_etcd_endpoints(e);
	struct gfs_buf b;
	int rc;
	gfs_buf_init(&b);
	rc = gfs_buf_append(&b, "etcd://", 7);
	for (size_t i = 0; i < u->n && !rc; i++) {
		if (i)
			rc = gfs_buf_appendc(&b, ',');
		if (!rc)
			rc = gfs_buf_append(&b, u->endpoints[i], strlen(u->endpoints[i]));
	}
	if (!rc)
		rc = gfs_buf_appendc(&b, '/');
	if (!rc)
		rc = gfs_buf_append(&b, u->prefix, strlen(u->prefix));
	struct gfs_etcd_opts o = {.timeout_ms = (unsigned)(ms < 300 ? 300 : ms),
				  .connect_timeout_ms = (unsigned)(ms < 300 ? 300 : ms),
				  .rounds = 1};
	if (!rc)
		rc = gfs_etcd_open(b.p, &o, out, d);
	gfs_buf_release(&b);
	return rc;
}

static int session_init(struct gfs_lease_session *s, struct gfs_etcd *e,
			const struct gfs_lease_opts *o)
{
	s->e = e;
	s->prefix = gfs_etcd_prefix(e);
	s->pid = getpid();
	if (o && o->host)
		snprintf(s->host, sizeof(s->host), "%s", o->host);
	else if (gethostname(s->host, sizeof(s->host) - 1))
		snprintf(s->host, sizeof(s->host), "?");
	if (o) {
		s->on_wait = o->on_wait;
		s->on_wait_arg = o->on_wait_arg;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = -pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!rc)
		rc = -pthread_mutex_init(&s->mu, NULL);
	return rc;
}

int gfs_lease_session_open(struct gfs_etcd *e, const struct gfs_lease_opts *o,
			   struct gfs_lease_session **out, struct gfs_diag *d)
{
	struct gfs_lease_session *s = calloc(1, sizeof(*s));
	int64_t want = o && o->ttl_s > 0 ? o->ttl_s : 10;
	int rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	if ((rc = session_init(s, e, o))) {
		free(s);
		return rc;
	}
	int64_t sent = clock_ns(CLOCK_BOOTTIME);
	rc = gfs_etcd_lease_grant(e, want, &s->lease, &s->ttl, d);
	if (rc)
		goto out_free;
	s->last_ok_ns = sent;
	snprintf(s->id, sizeof(s->id), "%" PRIx64, (uint64_t)s->lease);
	if ((rc = open_ka(e, s->ttl * 1000 / 3, &s->ka, d)))
		goto out_revoke;
	if ((rc = -pthread_create(&s->thread, NULL, keepalive_main, s))) {
		gfs_diag_set(d, "lease session: cannot start the keepalive thread");
		goto out_close;
	}
	*out = s;
	return 0;
out_close:
	gfs_etcd_close(s->ka);
out_revoke:
	gfs_etcd_lease_revoke(e, s->lease, NULL);
out_free:
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return rc;
}

void gfs_lease_session_close(struct gfs_lease_session *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	bool lost = s->lost;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	if (!lost) {
		struct gfs_diag d = {{0}};
		gfs_etcd_lease_revoke(s->ka, s->lease, &d);
	}
	gfs_etcd_close(s->ka);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

int64_t gfs_lease_session_id(const struct gfs_lease_session *s)
{
	return s->lease;
}

int64_t gfs_lease_session_ttl(const struct gfs_lease_session *s)
{
	return s->ttl;
}

/* ---- keys and values --------------------------------------------------------- */

/* "PREFIX/fmt..." as a new string (NULL: too long or no memory). */
static char *key_fmt(const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static char *key_fmt(const char *prefix, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n = snprintf(buf, sizeof(buf), "%s/", prefix);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return NULL;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)(n + m) >= sizeof(buf))
		return NULL;
	return strdup(buf);
}

static char *value_json(const struct gfs_lease_session *s, const char *holder, const char *mode)
{
	json_t *j = json_pack("{s:s, s:I, s:s, s:s, s:I}", "holder", holder, "pid", (json_int_t)s->pid,
			      "host", s->host, "mode", mode,
			      "since_ns", (json_int_t)clock_ns(CLOCK_REALTIME));
	char *v = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return v;
}

static bool table_ok(const char *t)
{
	return t && t[0] && !strchr(t, '/') && strlen(t) <= 255;
}

/* ---- waiting on a watch ---------------------------------------------------------- */

struct waiter {
	struct gfs_lease_session *s;
	struct gfs_etcd_watch *w;
	uint64_t deletes;  /* protected by s->mu */
	bool dead;         /* protected by s->mu: the watch ended (compaction) */
	int64_t deadline_ns; /* CLOCK_MONOTONIC */
	bool told;
};

static void waiter_ev(void *arg, const struct gfs_etcd_event *ev, size_t n, int64_t hrev)
{
	struct waiter *w = arg;
	(void)hrev;
	pthread_mutex_lock(&w->s->mu);
	for (size_t i = 0; i < n; i++)
		if (ev[i].type == GFS_ETCD_EV_DELETE)
			w->deletes++;
	pthread_cond_broadcast(&w->s->cond);
	pthread_mutex_unlock(&w->s->mu);
}

static void waiter_err(void *arg, int rc, bool fatal, const char *msg)
{
	struct waiter *w = arg;
	(void)rc;
	(void)msg;
	if (!fatal)
		return;
	pthread_mutex_lock(&w->s->mu);
	w->dead = true;
	pthread_cond_broadcast(&w->s->cond);
	pthread_mutex_unlock(&w->s->mu);
}

static void waiter_stop(struct waiter *w)
{
	gfs_etcd_watch_stop(w->w);
	w->w = NULL;
}

/* After a Txn at revision rev found [key, end) in the way (the holder's
 * JSON in holder): waits for a deletion there since rev + 1, the session's
 * loss or the deadline.  0: try again; -ETIMEDOUT; GFS_ELEASE. */
static int waiter_wait(struct waiter *w, const char *what, const char *key, const char *end,
		       int64_t rev, uint64_t seen, const char *holder, struct gfs_diag *d)
{
	struct gfs_lease_session *s = w->s;
	int rc = 0;
	if (!w->w) {
		pthread_mutex_lock(&s->mu);
		w->dead = false;
		pthread_mutex_unlock(&s->mu);
		rc = gfs_etcd_watch_start(s->e, key, strlen(key), end, end ? strlen(end) : 0, rev + 1,
					  waiter_ev, waiter_err, w, &w->w, d);
		if (rc == -ESTALE) { /* compacted meanwhile: try again, from a new revision */
			if (d)
				d->msg[0] = 0;
			return 0;
		}
		if (rc)
			return rc;
	}
	if (!w->told && s->on_wait)
		s->on_wait(s->on_wait_arg, what, holder);
	w->told = true;
	pthread_mutex_lock(&s->mu);
	while (!rc && w->deletes == seen && !w->dead && !check_locked(s)) {
		int64_t left = w->deadline_ns - clock_ns(CLOCK_MONOTONIC);
		if (left <= 0) {
			rc = -ETIMEDOUT;
			break;
		}
		/* wake at least every TTL/3 to see a pause past the TTL */
		int64_t ms = left / 1000000 + 1, cap = s->ttl * 1000 / 3;
		struct timespec ts;
		abs_mono(&ts, ms < cap ? ms : cap);
		pthread_cond_timedwait(&s->cond, &s->mu, &ts);
	}
	bool dead = w->dead;
	if (!rc && s->lost) {
		rc = GFS_ELEASE;
		gfs_diag_set(d, "%s", s->lost_msg);
	}
	pthread_mutex_unlock(&s->mu);
	if (dead)
		waiter_stop(w); /* restarted from the next Txn's revision */
	if (rc == -ETIMEDOUT)
		gfs_diag_set(d, "%s is held by %s: still there after waiting", what, holder[0] ? holder : "another holder");
	return rc;
}

static uint64_t waiter_seen(struct waiter *w)
{
	pthread_mutex_lock(&w->s->mu);
	uint64_t n = w->deletes;
	pthread_mutex_unlock(&w->s->mu);
	return n;
}

/* ---- one conditional put -------------------------------------------------------- */

/* Puts key (on s's lease, value val) only when no key exists under
 * [dir, end) ... (cmp_end NULL: when key dir itself is absent).  *token =
 * the key's create_revision; -EWOULDBLOCK with *rev = the Txn's revision
 * and holder = the blocking key's value when the range is not empty (a key
 * of our own there, left by an earlier attempt that etcd applied though
 * its answer was lost, counts as taken). */
static int cond_put(struct gfs_lease_session *s, const char *dir, const char *cmp_end,
		    const char *key, const char *val, int64_t *token, int64_t *rev,
		    char *holder, size_t hcap, struct gfs_diag *d)
{
	struct gfs_etcd_cmp c = {GFS_ETCD_VERSION, GFS_ETCD_EQ, dir, strlen(dir), 0, NULL, 0,
				 cmp_end, cmp_end ? strlen(cmp_end) : 0};
	struct gfs_etcd_op ok[2] = {
		{.kind = GFS_ETCD_PUT, .key = key, .key_len = strlen(key), .value = val,
		 .value_len = strlen(val), .lease = s->lease},
		{.kind = GFS_ETCD_RANGE, .key = key, .key_len = strlen(key)},
	};
	struct gfs_etcd_op fail[1] = {{.kind = GFS_ETCD_RANGE, .key = dir, .key_len = strlen(dir),
				       .end = cmp_end, .end_len = cmp_end ? strlen(cmp_end) : 0, .limit = 2}};
	struct gfs_etcd_txn_result r;
	int rc = gfs_etcd_txn(s->e, &c, 1, ok, 2, fail, 1, &r, d);
	if (rc)
		return rc;
	*rev = r.header_revision;
	holder[0] = 0;
	if (r.succeeded && r.n == 2 && r.pages[1].n == 1) {
		*token = r.pages[1].kvs[0].create_revision;
	} else if (!r.succeeded && r.n == 1) {
		rc = -EWOULDBLOCK;
		for (size_t i = 0; i < r.pages[0].n; i++) {
			const struct gfs_etcd_kv *kv = &r.pages[0].kvs[i];
			if (!strcmp(kv->key, key) && kv->lease == s->lease && r.pages[0].n == 1) {
				*token = kv->create_revision;
				rc = 0;
			} else if (!holder[0]) {
				snprintf(holder, hcap, "%s", kv->value);
			}
		}
	} else {
		gfs_diag_set(d, "etcd txn on '%s': an answer without the expected responses", key);
		rc = -EPROTO;
	}
	gfs_etcd_txn_result_release(&r);
	return rc;
}

/* cond_put, waiting (WAIT) for a deletion under [dir, end) while blocked. */
static int cond_put_wait(struct gfs_lease_session *s, const char *what, const char *dir,
			 const char *end, const char *key, const char *val, unsigned flags,
			 int64_t deadline_ns, int64_t *token, struct gfs_diag *d)
{
	struct waiter w = {.s = s, .deadline_ns = deadline_ns};
	char holder[512];
	int64_t rev = 0;
	int rc;
	for (;;) {
		uint64_t seen = waiter_seen(&w);
		if ((rc = gfs_lease_session_check(s, d)))
			break;
		rc = cond_put(s, dir, end, key, val, token, &rev, holder, sizeof(holder), d);
		if (rc != -EWOULDBLOCK)
			break;
		if (flags & GFS_LOCK_TRY) {
			gfs_diag_set(d, "%s is held by %s", what, holder[0] ? holder : "another holder");
			break;
		}
		if ((rc = waiter_wait(&w, what, dir, end ? end : NULL, rev, seen, holder, d)))
			break;
	}
	waiter_stop(&w);
	return rc;
}

/* ---- table leases ------------------------------------------------------------------ */

static int held_cmp(const void *a, const void *b)
{
	return strcmp(((const struct held *)a)->table, ((const struct held *)b)->table);
}

static void leaseset_free(struct gfs_leaseset *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		free(ls->h[i].table);
		free(ls->h[i].key);
	}
	free(ls->h);
	free(ls->cmps);
	free(ls);
}

/* A lockset of the sorted, deduplicated wants; no key taken yet. */
static int leaseset_new(struct gfs_lease_session *s, const char *const *tables,
			const enum gfs_lock_mode *modes, size_t n, struct gfs_leaseset **out,
			struct gfs_diag *d)
{
	struct gfs_leaseset *ls = calloc(1, sizeof(*ls));
	if (!ls || !(ls->h = calloc(n ? n : 1, sizeof(*ls->h))) ||
	    !(ls->cmps = calloc(n ? n : 1, sizeof(*ls->cmps)))) {
		if (ls)
			free(ls->h);
		free(ls);
		return -ENOMEM;
	}
	ls->s = s;
	pthread_mutex_lock(&s->mu);
	snprintf(ls->holder, sizeof(ls->holder), "%s.%" PRIu64, s->id, ++s->seq);
	pthread_mutex_unlock(&s->mu);
	for (size_t i = 0; i < n; i++) {
		if (!table_ok(tables[i])) {
			gfs_diag_set(d, "table lease: bad table name '%s'", tables[i] ? tables[i] : "(null)");
			leaseset_free(ls);
			return -EINVAL;
		}
		ls->h[i].table = (char *)tables[i]; /* borrowed until copied below */
		ls->h[i].mode = modes[i];
	}
	qsort(ls->h, n, sizeof(*ls->h), held_cmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (k && !strcmp(ls->h[k - 1].table, ls->h[i].table)) {
			if (ls->h[i].mode == GFS_LOCK_EX)
				ls->h[k - 1].mode = GFS_LOCK_EX;
			continue;
		}
		ls->h[k++] = ls->h[i];
	}
	for (size_t i = 0; i < k; i++) {
		ls->h[i].table = strdup(ls->h[i].table);
		ls->h[i].key = NULL;
	}
	ls->n = k;
	for (size_t i = 0; i < k; i++) {
		if (!ls->h[i].table) {
			leaseset_free(ls);
			return -ENOMEM;
		}
	}
	*out = ls;
	return 0;
}

/* Takes table i of ls. */
static int take_one(struct gfs_leaseset *ls, size_t i, unsigned flags, int64_t deadline_ns,
		    struct gfs_diag *d)
{
	struct gfs_lease_session *s = ls->s;
	struct held *h = &ls->h[i];
	bool ex = h->mode == GFS_LOCK_EX;
	char *dir = key_fmt(s->prefix, "lease/%s/%s", h->table, ex ? "" : "x/");
	char *key = key_fmt(s->prefix, "lease/%s/%c/%s", h->table, ex ? 'x' : 's', ls->holder);
	char *val = value_json(s, ls->holder, ex ? "EX" : "SH");
	char *end = NULL, what[320];
	size_t elen;
	int rc = dir && key && val ? gfs_etcd_prefix_end(dir, strlen(dir), &end, &elen) : -ENOMEM;
	snprintf(what, sizeof(what), "table '%s' (%s)", h->table, ex ? "exclusive" : "shared");
	if (!rc)
		rc = cond_put_wait(s, what, dir, end, key, val, flags, deadline_ns, &h->token, d);
	if (!rc) {
		h->key = key;
		h->key_len = strlen(key);
		key = NULL;
		ls->cmps[i] = (struct gfs_etcd_cmp){GFS_ETCD_CREATE, GFS_ETCD_EQ, h->key, h->key_len,
						    h->token, NULL, 0, NULL, 0};
	}
	free(dir);
	free(key);
	free(val);
	free(end);
	return rc;
}

/* Deletes the keys taken so far (one Txn). */
static int drop_keys(struct gfs_leaseset *ls, struct gfs_diag *d)
{
	struct gfs_etcd_op *ops = calloc(ls->n ? ls->n : 1, sizeof(*ops));
	size_t k = 0;
	if (!ops)
		return -ENOMEM;
	for (size_t i = 0; i < ls->n; i++)
		if (ls->h[i].key)
			ops[k++] = (struct gfs_etcd_op){.kind = GFS_ETCD_DELETE, .key = ls->h[i].key,
							.key_len = ls->h[i].key_len};
	int rc = k ? gfs_etcd_txn(ls->s->e, NULL, 0, ops, k, NULL, 0, NULL, d) : 0;
	free(ops);
	return rc;
}

int gfs_lease_tables(struct gfs_lease_session *s, const char *const *tables,
		     const enum gfs_lock_mode *modes, size_t n, unsigned flags,
		     unsigned wait_ms, struct gfs_leaseset **out, struct gfs_diag *d)
{
	struct gfs_leaseset *ls;
	int64_t deadline = clock_ns(CLOCK_MONOTONIC) + (int64_t)(wait_ms ? wait_ms : 30000) * 1000000;
	int rc;

	*out = NULL;
	if ((rc = gfs_lease_session_check(s, d)))
		return rc;
	if ((rc = leaseset_new(s, tables, modes, n, &ls, d)))
		return rc;
	for (size_t i = 0; i < ls->n && !rc; i++)
		rc = take_one(ls, i, flags, deadline, d);
	if (rc) {
		drop_keys(ls, NULL);
		leaseset_free(ls);
		return rc;
	}
	*out = ls;
	return 0;
}

int gfs_lease_release(struct gfs_leaseset *ls, struct gfs_diag *d)
{
	if (!ls)
		return 0;
	int rc = drop_keys(ls, d);
	leaseset_free(ls);
	return rc;
}

const char *gfs_leaseset_holder(const struct gfs_leaseset *ls)
{
	return ls->holder;
}

int64_t gfs_leaseset_token(const struct gfs_leaseset *ls, const char *table)
{
	for (size_t i = 0; i < ls->n; i++)
		if (!strcmp(ls->h[i].table, table))
			return ls->h[i].token;
	return 0;
}

void gfs_lease_fence_cmps(const struct gfs_leaseset *ls, const struct gfs_etcd_cmp **cmps, size_t *n)
{
	*cmps = ls->cmps;
	*n = ls->n;
}

int gfs_lease_verify(struct gfs_leaseset *ls, struct gfs_diag *d)
{
	struct gfs_lease_session *s = ls->s;
	int rc = gfs_lease_session_check(s, d);
	for (size_t i = 0; i < ls->n && !rc; i++) {
		struct gfs_etcd_kv kv;
		bool found;
		rc = gfs_etcd_get(s->e, ls->h[i].key, ls->h[i].key_len, 0, &kv, &found, NULL, d);
		if (rc)
			break;
		if (!found || kv.create_revision != ls->h[i].token) {
			char why[400];
			snprintf(why, sizeof(why), "the lease of table '%s' (token %" PRId64 ") is gone, fenced",
				 ls->h[i].table, ls->h[i].token);
			pthread_mutex_lock(&s->mu);
			if (!check_locked(s))
				mark_lost(s, why);
			gfs_diag_set(d, "%s", s->lost_msg);
			pthread_mutex_unlock(&s->mu);
			rc = GFS_ELEASE;
		}
		gfs_etcd_kv_release(&kv);
	}
	return rc;
}

int gfs_lease_gone_init(struct gfs_lease_gone *g, const char *prefix, const char *table,
			const char *holder)
{
	memset(g, 0, sizeof(*g));
	if (!table_ok(table) || !holder || !*holder || strchr(holder, '/'))
		return -EINVAL;
	g->keys[0] = key_fmt(prefix, "lease/%s/x/%s", table, holder);
	g->keys[1] = key_fmt(prefix, "lease/%s/s/%s", table, holder);
	if (!g->keys[0] || !g->keys[1]) {
		gfs_lease_gone_release(g);
		return -ENOMEM;
	}
	for (int i = 0; i < 2; i++)
		g->cmps[i] = (struct gfs_etcd_cmp){GFS_ETCD_VERSION, GFS_ETCD_EQ, g->keys[i],
						   strlen(g->keys[i]), 0, NULL, 0, NULL, 0};
	return 0;
}

void gfs_lease_gone_release(struct gfs_lease_gone *g)
{
	free(g->keys[0]);
	free(g->keys[1]);
	memset(g, 0, sizeof(*g));
}

/* ---- graph-version holds -------------------------------------------------------------- */

int gfs_lease_hold_take(struct gfs_lease_session *s, uint64_t n, unsigned flags,
			unsigned wait_ms, struct gfs_diag *d)
{
	char *fence = key_fmt(s->prefix, "gcfence/%" PRIu64, n);
	char *key = key_fmt(s->prefix, "hold/%" PRIu64 "/%s", n, s->id);
	char *val = value_json(s, s->id, "hold");
	char what[64];
	int64_t token;
	int rc = fence && key && val ? 0 : -ENOMEM;
	snprintf(what, sizeof(what), "graph version %" PRIu64 " (gc)", n);
	if (!rc)
		rc = cond_put_wait(s, what, fence, NULL, key, val, flags,
				   clock_ns(CLOCK_MONOTONIC) + (int64_t)(wait_ms ? wait_ms : 30000) * 1000000,
				   &token, d);
	free(fence);
	free(key);
	free(val);
	return rc;
}

int gfs_lease_hold_drop(struct gfs_lease_session *s, uint64_t n, struct gfs_diag *d)
{
	char *key = key_fmt(s->prefix, "hold/%" PRIu64 "/%s", n, s->id);
	int rc = key ? gfs_etcd_delete(s->e, key, strlen(key), NULL, 0, NULL, NULL, d) : -ENOMEM;
	free(key);
	return rc;
}

int gfs_lease_hold_probe(struct gfs_lease_session *s, uint64_t n, bool *held, struct gfs_diag *d)
{
	char *dir = key_fmt(s->prefix, "hold/%" PRIu64 "/", n);
	char *own = key_fmt(s->prefix, "hold/%" PRIu64 "/%s", n, s->id), *end = NULL;
	size_t elen;
	struct gfs_etcd_page p;
	int rc = dir && own ? gfs_etcd_prefix_end(dir, strlen(dir), &end, &elen) : -ENOMEM;
	*held = false;
	if (!rc)
		rc = gfs_etcd_range(s->e, dir, strlen(dir), end, elen, 0, 2, &p, d);
	if (!rc) {
		for (size_t i = 0; i < p.n; i++)
			if (strcmp(p.kvs[i].key, own))
				*held = true;
		gfs_etcd_page_release(&p);
	}
	free(dir);
	free(own);
	free(end);
	return rc;
}

int gfs_lease_hold_fence(struct gfs_lease_session *s, uint64_t n, struct gfs_lease_fence *f,
			 struct gfs_diag *d)
{
	char *dir = key_fmt(s->prefix, "hold/%" PRIu64 "/", n), *end = NULL, holder[512];
	char *val = value_json(s, s->id, "gcfence");
	size_t elen;
	int64_t token = 0, rev;
	int rc;

	memset(f, 0, sizeof(*f));
	f->key = key_fmt(s->prefix, "gcfence/%" PRIu64, n);
	rc = dir && val && f->key ? gfs_etcd_prefix_end(dir, strlen(dir), &end, &elen) : -ENOMEM;
	if (!rc)
		rc = gfs_lease_session_check(s, d);
	if (!rc)
		rc = cond_put(s, dir, end, f->key, val, &token, &rev, holder, sizeof(holder), d);
	if (rc == -EWOULDBLOCK)
		gfs_diag_set(d, "graph version %" PRIu64 " is held by %s", n, holder);
	if (!rc)
		f->cmp = (struct gfs_etcd_cmp){GFS_ETCD_CREATE, GFS_ETCD_EQ, f->key, strlen(f->key),
					       token, NULL, 0, NULL, 0};
	else {
		free(f->key);
		f->key = NULL;
	}
	free(dir);
	free(val);
	free(end);
	return rc;
}

int gfs_lease_hold_unfence(struct gfs_lease_session *s, struct gfs_lease_fence *f,
			   struct gfs_diag *d)
{
	int rc = 0;
	if (f->key) {
		struct gfs_etcd_op del = {.kind = GFS_ETCD_DELETE, .key = f->key, .key_len = strlen(f->key)};
		rc = gfs_etcd_txn(s->e, &f->cmp, 1, &del, 1, NULL, 0, NULL, d);
		free(f->key);
	}
	memset(f, 0, sizeof(*f));
	return rc;
}
