/* tests/etcd/etcd_client.c - src/etcd.c against a real cluster; run by
 * tests/etcd/client.sh, which starts the cluster (tests/etcd/cluster.sh)
 * and calls one case at a time:
 *
 *     etcd_client url                      URL parsing, no cluster
 *     etcd_client kv       etcd://EPS/P    put/get, binary keys, paging
 *     etcd_client txn      etcd://EPS/P    compares, atomic 3-key txn
 *     etcd_client lease    etcd://EPS/P    revoke, TTL expiry, keepalive
 *     etcd_client watch    etcd://EPS/P    etcdctl's puts in order; member 0
 *                                          killed (ETCD_PIDS): resumes, no loss
 *     etcd_client compact  etcd://EPS/P    watch/range of a compacted revision
 *     etcd_client progress etcd://EPS/P    an idle watch resumes past a compaction
 *                                          (member 0 killed)
 *     etcd_client failover etcd://EPS/P    first endpoint dead: calls still work
 *     etcd_client down     etcd://EPS/P    all dead (+ a silent one): clear error
 *
 * Every wait is bounded and scaled by GRAPHFS_TEST_TIMEOUT_FACTOR.  Prints
 * "ok - ..." / "FAIL - ..." lines; exit 1 on any failure. */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "etcd.h"
#include "etcd_test.h"

/* ---- url --------------------------------------------------------------- */

static void url_bad(const char *u, const char *want)
{
	struct gfs_etcd_url x;
	struct gfs_diag d = {0};
	int rc = gfs_etcd_url_parse(u, &x, &d);
	CHECK(rc == -EINVAL && strstr(d.msg, want), "'%s' refused: %s", u, d.msg);
}

static void case_url(void)
{
	struct gfs_etcd_url x;
	struct gfs_diag d = {0};
	int rc = gfs_etcd_url_parse("etcd://a.example:2379,10.0.0.2:1,[::1]:65535/graphs/g-1_x", &x, &d);
	CHECK(rc == 0 && x.n == 3 && !strcmp(x.endpoints[0], "a.example:2379") &&
	      !strcmp(x.endpoints[2], "[::1]:65535") && !strcmp(x.prefix, "graphs/g-1_x"),
	      "a 3-endpoint URL parses (%s)", d.msg);
	gfs_etcd_url_release(&x);
	url_bad("http://127.0.0.1:2379/p", "is not etcd://");
	url_bad("etcd://127.0.0.1:2379", "no /PREFIX");
	url_bad("etcd://127.0.0.1:2379/", "1..255 bytes");
	url_bad("etcd://127.0.0.1/p", "has no port");
	url_bad("etcd://127.0.0.1:0/p", "1..65535");
	url_bad("etcd://127.0.0.1:70000/p", "1..65535");
	url_bad("etcd://127.0.0.1:2379,,127.0.0.1:2380/p", "empty endpoint 2");
	url_bad("etcd://:2379/p", "bad host");
	url_bad("etcd://127.0.0.1:2379/a//b", "empty component");
	url_bad("etcd://127.0.0.1:2379/a b", "not one of");
}

/* ---- kv ---------------------------------------------------------------- */

struct scan {
	int n, bad;
	struct gfs_etcd *e;
	char last[64];
};

static int scan_fn(void *arg, const struct gfs_etcd_kv *kv)
{
	struct scan *s = arg;
	char want[64];
	const char *name = memchr(kv->key, '/', kv->key_len);
	snprintf(want, sizeof(want), "v%d", s->n);
	if (s->n && strcmp(s->last, kv->key) >= 0)
		s->bad++;
	if (!name || strcmp(kv->value, want) != 0)
		s->bad++;
	snprintf(s->last, sizeof(s->last), "%s", kv->key);
	if (s->n == 500) {
		/* a write in the middle of the scan: the scan must not see it */
		char k[128];
		size_t kl = key(s->e, k, sizeof(k), "page/k0999~");
		if (gfs_etcd_put(s->e, k, kl, "late", 4, 0, NULL, &dg))
			s->bad += 1000;
	}
	s->n++;
	return 0;
}

static void case_kv(void)
{
	struct gfs_etcd *e = open_url(url, 5000);
	struct gfs_etcd_kv kv;
	bool found;
	int64_t rev = 0, rev2;
	char k[128];
	const char bin_key[] = {'k', 0, (char)0xff, 'x'};
	char bkey[160], bval[256];
	size_t kl;

	/* binary-safe keys and values */
	kl = key(e, bkey, sizeof(bkey), "bin/");
	memcpy(bkey + kl, bin_key, sizeof(bin_key));
	kl += sizeof(bin_key);
	for (int i = 0; i < 256; i++)
		bval[i] = (char)i;
	MUST(gfs_etcd_put(e, bkey, kl, bval, sizeof(bval), 0, &rev, &dg));
	MUST(gfs_etcd_get(e, bkey, kl, 0, &kv, &found, &rev2, &dg));
	CHECK(found && kv.key_len == kl && !memcmp(kv.key, bkey, kl) &&
	      kv.value_len == 256 && !memcmp(kv.value, bval, 256),
	      "a key with NUL and 0xff bytes holds all 256 byte values");
	CHECK(kv.mod_revision == rev && kv.create_revision == rev && kv.version == 1 && rev2 >= rev,
	      "get: mod/create revision %" PRId64 "/%" PRId64 " = the put's %" PRId64 ", header %" PRId64,
	      kv.mod_revision, kv.create_revision, rev, rev2);
	gfs_etcd_kv_release(&kv);
	MUST(gfs_etcd_put(e, bkey, kl, "", 0, 0, NULL, &dg));
	MUST(gfs_etcd_get(e, bkey, kl, 0, &kv, &found, NULL, &dg));
	CHECK(found && kv.value_len == 0 && kv.version == 2 && kv.create_revision == rev,
	      "an empty value is a present key (version 2)");
	gfs_etcd_kv_release(&kv);
	MUST(gfs_etcd_get(e, bkey, kl, rev, &kv, &found, NULL, &dg));
	CHECK(found && kv.value_len == 256, "get at the older revision sees the old value");
	gfs_etcd_kv_release(&kv);
	kl = key(e, k, sizeof(k), "absent");
	MUST(gfs_etcd_get(e, k, kl, 0, &kv, &found, NULL, &dg));
	CHECK(!found && !kv.key, "an absent key: found = false");

	/* 1200 keys in txns of 100 puts, then paged reads */
	enum { N = 1200, BATCH = 100 };
	static char keys[N][64], vals[N][16];
	struct gfs_etcd_op ops[BATCH];
	for (int i = 0; i < N; i++) {
		key(e, keys[i], sizeof(keys[i]), "");
		snprintf(keys[i] + strlen(keys[i]), 40, "page/k%04d", i);
		snprintf(vals[i], sizeof(vals[i]), "v%d", i);
	}
	for (int b = 0; b < N; b += BATCH) {
		for (int i = 0; i < BATCH; i++)
			ops[i] = (struct gfs_etcd_op){.kind = GFS_ETCD_PUT, .key = keys[b + i],
				.key_len = strlen(keys[b + i]), .value = vals[b + i],
				.value_len = strlen(vals[b + i])};
		MUST(gfs_etcd_txn(e, NULL, 0, ops, BATCH, NULL, 0, NULL, &dg));
	}
	char *end;
	size_t elen, pl = key(e, k, sizeof(k), "page/");
	MUST(gfs_etcd_prefix_end(k, pl, &end, &elen));
	struct gfs_etcd_page p;
	MUST(gfs_etcd_range(e, k, pl, end, elen, 0, 100, &p, &dg));
	CHECK(p.n == 100 && p.more && p.count == N && !strcmp(p.kvs[99].value, "v99"),
	      "one page: 100 of %" PRId64 " keys, more = %d", p.count, p.more);
	gfs_etcd_page_release(&p);
	MUST(gfs_etcd_range_desc(e, k, pl, end, elen, 0, 3, &p, &dg));
	CHECK(p.n == 3 && p.more && !strcmp(p.kvs[0].value, vals[N - 1]) &&
	      !strcmp(p.kvs[2].value, vals[N - 3]),
	      "a descending page: the 3 highest keys, highest first, more = %d", p.more);
	gfs_etcd_page_release(&p);
	struct scan s = {.e = e};
	int64_t at = 0;
	MUST(gfs_etcd_range_each(e, k, pl, end, elen, 0, 128, scan_fn, &s, &at, &dg));
	CHECK(s.n == N && s.bad == 0, "range_each in pages of 128: %d keys in order, right values (%d bad), a put mid-scan unseen", s.n, s.bad);
	MUST(gfs_etcd_range(e, k, pl, end, elen, 0, 0, &p, &dg));
	CHECK(p.n == N + 1, "the put made during the scan is there now (%zu keys)", p.n);
	gfs_etcd_page_release(&p);
	int64_t del = 0;
	MUST(gfs_etcd_delete(e, k, pl, end, elen, &del, NULL, &dg));
	CHECK(del == N + 1, "delete of the prefix removed %" PRId64 " keys", del);
	free(end);
	gfs_etcd_close(e);
}

/* ---- txn --------------------------------------------------------------- */

static int64_t get_rev(struct gfs_etcd *e, const char *name, char *val, size_t cap)
{
	char k[128];
	size_t kl = key(e, k, sizeof(k), name);
	struct gfs_etcd_kv kv;
	bool found;
	if (gfs_etcd_get(e, k, kl, 0, &kv, &found, NULL, &dg))
		return -2;
	if (val)
		snprintf(val, cap, "%s", found ? kv.value : "");
	int64_t r = found ? kv.mod_revision : 0;
	gfs_etcd_kv_release(&kv);
	return r;
}

static void case_txn(void)
{
	struct gfs_etcd *e = open_url(url, 5000);
	char ka[128], kb[128], kc[128], v[64];
	size_t la = key(e, ka, sizeof(ka), "t/a"), lb = key(e, kb, sizeof(kb), "t/b"),
	       lc = key(e, kc, sizeof(kc), "t/c");
	int64_t ra;
	struct gfs_etcd_txn_result r;

	MUST(gfs_etcd_put(e, ka, la, "1", 1, 0, &ra, &dg));
	struct gfs_etcd_cmp stale = {GFS_ETCD_MOD, GFS_ETCD_EQ, ka, la, ra - 1, NULL, 0, NULL, 0};
	struct gfs_etcd_op ok[3] = {
		{.kind = GFS_ETCD_PUT, .key = kb, .key_len = lb, .value = "B", .value_len = 1},
		{.kind = GFS_ETCD_PUT, .key = kc, .key_len = lc, .value = "C", .value_len = 1},
		{.kind = GFS_ETCD_DELETE, .key = ka, .key_len = la},
	};
	struct gfs_etcd_op fail[1] = {{.kind = GFS_ETCD_RANGE, .key = ka, .key_len = la}};
	MUST(gfs_etcd_txn(e, &stale, 1, ok, 3, fail, 1, &r, &dg));
	CHECK(!r.succeeded && r.n == 1 && r.pages[0].n == 1 && !strcmp(r.pages[0].kvs[0].value, "1"),
	      "a txn whose mod_revision compare fails runs its failure branch (a range: a = 1)");
	CHECK(r.header_revision == ra, "... and makes no revision (%" PRId64 " = %" PRId64 ")", r.header_revision, ra);
	gfs_etcd_txn_result_release(&r);
	CHECK(get_rev(e, "t/b", NULL, 0) == 0 && get_rev(e, "t/c", NULL, 0) == 0 &&
	      get_rev(e, "t/a", v, sizeof(v)) == ra && !strcmp(v, "1"),
	      "... and changes nothing: b, c absent, a untouched");

	struct gfs_etcd_cmp bad_value = {GFS_ETCD_VALUE, GFS_ETCD_EQ, ka, la, 0, "2", 1, NULL, 0};
	MUST(gfs_etcd_txn(e, &bad_value, 1, ok, 3, NULL, 0, &r, &dg));
	CHECK(!r.succeeded && get_rev(e, "t/b", NULL, 0) == 0, "a failed value compare changes nothing");
	gfs_etcd_txn_result_release(&r);

	/* all compares hold: 3 keys at one revision */
	struct gfs_etcd_cmp hold[4] = {
		{GFS_ETCD_MOD, GFS_ETCD_EQ, ka, la, ra, NULL, 0, NULL, 0},
		{GFS_ETCD_CREATE, GFS_ETCD_EQ, ka, la, ra, NULL, 0, NULL, 0},
		{GFS_ETCD_VERSION, GFS_ETCD_EQ, kb, lb, 0, NULL, 0, NULL, 0},
		{GFS_ETCD_VALUE, GFS_ETCD_EQ, ka, la, 0, "1", 1, NULL, 0},
	};
	MUST(gfs_etcd_txn(e, hold, 4, ok, 3, fail, 1, &r, &dg));
	int64_t rb = get_rev(e, "t/b", NULL, 0), rc = get_rev(e, "t/c", NULL, 0);
	CHECK(r.succeeded && rb == r.header_revision && rc == r.header_revision && get_rev(e, "t/a", NULL, 0) == 0,
	      "a txn over 3 keys is one revision: b, c put and a deleted at %" PRId64, r.header_revision);
	CHECK(r.n == 3 && r.pages[2].count == 1, "its responses: one per op (delete removed 1)");
	gfs_etcd_txn_result_release(&r);

	/* a watcher-free atomicity check: a reader at revision R-1 sees none */
	struct gfs_etcd_kv kv;
	bool found;
	MUST(gfs_etcd_get(e, kb, lb, rb - 1, &kv, &found, NULL, &dg));
	CHECK(!found, "at the revision before it, b does not exist");
	gfs_etcd_kv_release(&kv);

	/* the test cluster allows 1024 ops a txn (cluster.sh); 1025 is refused clearly */
	enum { MANY = 1025 };
	struct gfs_etcd_op *many = calloc(MANY, sizeof(*many));
	static char mk[MANY][64];
	for (int i = 0; i < MANY; i++) {
		key(e, mk[i], sizeof(mk[i]), "");
		snprintf(mk[i] + strlen(mk[i]), 40, "m/%04d", i);
		many[i] = (struct gfs_etcd_op){.kind = GFS_ETCD_PUT, .key = mk[i], .key_len = strlen(mk[i]), .value = "x", .value_len = 1};
	}
	MUST(gfs_etcd_txn(e, NULL, 0, many, 1024, NULL, 0, NULL, &dg));
	CHECK(1, "a txn of 1024 puts commits (--max-txn-ops 1024)");
	memset(&dg, 0, sizeof(dg));
	int err = gfs_etcd_txn(e, NULL, 0, many, MANY, NULL, 0, NULL, &dg);
	CHECK(err == -EINVAL && strstr(dg.msg, "too many operations") && !strstr(dg.msg, "attempts"),
	      "1025 ops, refused at once (no other endpoint tried): %s: %s", gfs_strerror(err), dg.msg);
	free(many);
	gfs_etcd_close(e);
}

/* ---- lease ------------------------------------------------------------- */

static bool present(struct gfs_etcd *e, const char *k, size_t kl)
{
	struct gfs_etcd_kv kv;
	bool found = false;
	if (gfs_etcd_get(e, k, kl, 0, &kv, &found, NULL, &dg))
		return true;
	gfs_etcd_kv_release(&kv);
	return found;
}

static void case_lease(void)
{
	struct gfs_etcd *e = open_url(url, 5000);
	int64_t id, ttl, granted, left;
	char k[128];
	size_t kl = key(e, k, sizeof(k), "l/revoked");

	MUST(gfs_etcd_lease_grant(e, 2, &id, &granted, &dg));
	CHECK(granted == 2, "a 2 s lease is granted 2 s");
	MUST(gfs_etcd_put(e, k, kl, "x", 1, id, NULL, &dg));
	struct gfs_etcd_kv kv;
	bool found;
	MUST(gfs_etcd_get(e, k, kl, 0, &kv, &found, NULL, &dg));
	CHECK(found && kv.lease == id, "the key carries the lease");
	gfs_etcd_kv_release(&kv);
	MUST(gfs_etcd_lease_ttl(e, id, &left, &granted, &dg));
	CHECK(left >= 0 && left <= 2 && granted == 2, "timetolive: %" PRId64 " s left of %" PRId64, left, granted);
	MUST(gfs_etcd_lease_revoke(e, id, &dg));
	CHECK(!present(e, k, kl), "after revoke the key is gone at once");
	MUST(gfs_etcd_lease_ttl(e, id, &left, NULL, &dg));
	CHECK(left == -1, "timetolive of a revoked lease: -1");
	memset(&dg, 0, sizeof(dg));
	int rc = gfs_etcd_lease_keepalive(e, id, &ttl, &dg);
	CHECK(rc == -ENOENT && ttl == 0, "keepalive of a revoked lease: %s (%s)", gfs_strerror(rc), dg.msg);
	memset(&dg, 0, sizeof(dg));
	rc = gfs_etcd_lease_revoke(e, id, &dg);
	CHECK(rc == -ENOENT && strstr(dg.msg, "lease not found"), "revoke again: %s (%s)", gfs_strerror(rc), dg.msg);

	/* expiry without keepalive, and a kept-alive lease beside it */
	int64_t id_exp, id_kept;
	char ke[128], kk[128];
	size_t kel = key(e, ke, sizeof(ke), "l/expires"), kkl = key(e, kk, sizeof(kk), "l/kept");
	MUST(gfs_etcd_lease_grant(e, 2, &id_exp, &granted, &dg));
	MUST(gfs_etcd_lease_grant(e, 2, &id_kept, &granted, &dg));
	MUST(gfs_etcd_put(e, ke, kel, "x", 1, id_exp, NULL, &dg));
	MUST(gfs_etcd_put(e, kk, kkl, "x", 1, id_kept, NULL, &dg));
	double t0 = now_s(), gone_at = 0, limit = 10.0 * factor();
	bool kept_ok = true;
	while (now_s() - t0 < limit) {
		if (!gone_at && !present(e, ke, kel))
			gone_at = now_s() - t0;
		if (gfs_etcd_lease_keepalive(e, id_kept, &ttl, &dg) || ttl != 2)
			kept_ok = false;
		if (!present(e, kk, kkl))
			kept_ok = false;
		if (gone_at && now_s() - t0 >= 4.0)
			break;
		nap_ms(200);
	}
	CHECK(gone_at >= 1.0 && gone_at < limit, "a 2 s lease without keepalive: its key went after %.1f s", gone_at);
	CHECK(kept_ok && now_s() - t0 >= 4.0 && present(e, kk, kkl),
	      "keepalive every 0.2 s kept the other 2 s lease's key for %.1f s", now_s() - t0);
	MUST(gfs_etcd_lease_revoke(e, id_kept, &dg));
	gfs_etcd_close(e);
}

/* ---- watch ------------------------------------------------------------- */

struct seen {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n, out_of_order, errors, fatal, last_rc;
	int64_t progress; /* the highest progress notification's revision */
	int64_t last_rev;
	char vals[64][16];
	int64_t revs[64];
	char errmsg[512];
};

static void on_ev(void *arg, const struct gfs_etcd_event *ev, size_t n, int64_t hrev)
{
	struct seen *s = arg;
	pthread_mutex_lock(&s->lock);
	if (n == 0 && hrev > s->progress)
		s->progress = hrev;
	for (size_t i = 0; i < n; i++) {
		if (ev[i].kv.mod_revision < s->last_rev || ev[i].kv.mod_revision > hrev)
			s->out_of_order++;
		s->last_rev = ev[i].kv.mod_revision;
		if (s->n < 64) {
			snprintf(s->vals[s->n], sizeof(s->vals[0]), "%s",
				 ev[i].type == GFS_ETCD_EV_DELETE ? "DEL" : ev[i].kv.value);
			s->revs[s->n] = ev[i].kv.mod_revision;
		}
		s->n++;
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void on_err(void *arg, int rc, bool fatal, const char *msg)
{
	struct seen *s = arg;
	pthread_mutex_lock(&s->lock);
	s->errors++;
	s->fatal += fatal;
	s->last_rc = rc;
	snprintf(s->errmsg, sizeof(s->errmsg), "%s", msg);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Waits until s->n >= n (or a fatal error if fatal), bounded by secs. */
static bool wait_seen(struct seen *s, int n, bool fatal, int secs)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += secs * factor();
	pthread_mutex_lock(&s->lock);
	int rc = 0;
	while (rc != ETIMEDOUT && (fatal ? !s->fatal : s->n < n))
		rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	bool ok = fatal ? s->fatal > 0 : s->n >= n;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

static int etcdctl(const char *endpoints, const char *args)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 timeout %d etcdctl --endpoints=%s --command-timeout=%ds %s >/dev/null",
		 30 * factor(), endpoints, 20 * factor(), args);
	return system(cmd);
}

/* Polls (every 0.1 s, bounded) until etcdctl finds endpoints healthy: a
 * health check is a quorum read, so this waits out a leader election. */
static bool wait_healthy(const char *endpoints, int secs)
{
	double t0 = now_s();
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 timeout 5 etcdctl --endpoints=%s --dial-timeout=1s --command-timeout=2s endpoint health >/dev/null 2>&1",
		 endpoints);
	while (now_s() - t0 < secs * factor()) {
		if (system(cmd) == 0)
			return true;
		nap_ms(100);
	}
	return false;
}

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
}

static void case_watch(void)
{
	struct gfs_etcd *e = open_url(url, 3000);
	const struct gfs_etcd_url *u = gfs_etcd_endpoints(e);
	struct seen s;
	struct gfs_etcd_watch *w;
	char k[128], args[512], *end;
	size_t kl = key(e, k, sizeof(k), "w/"), elen;
	const char *pids = getenv("ETCD_PIDS");

	seen_init(&s);
	MUST(gfs_etcd_prefix_end(k, kl, &end, &elen));
	MUST(gfs_etcd_watch_start(e, k, kl, end, elen, 0, on_ev, on_err, &s, &w, &dg));
	/* etcdctl (another process) writes through member 1 */
	for (int i = 0; i < 10; i++) {
		snprintf(args, sizeof(args), "put %s/w/k%d v%d", gfs_etcd_prefix(e), i % 3, i);
		if (etcdctl(u->endpoints[1], args))
			CHECK(0, "etcdctl %s", args);
	}
	snprintf(args, sizeof(args), "del %s/w/k0", gfs_etcd_prefix(e));
	etcdctl(u->endpoints[1], args);
	CHECK(wait_seen(&s, 11, false, 10), "the watch saw etcdctl's 10 puts and a delete (%d events)", s.n);
	pthread_mutex_lock(&s.lock);
	bool order = s.out_of_order == 0;
	for (int i = 0; i < 10; i++) {
		char want[16];
		snprintf(want, sizeof(want), "v%d", i);
		if (strcmp(s.vals[i], want) || (i && s.revs[i] != s.revs[i - 1] + 1))
			order = false;
	}
	order = order && !strcmp(s.vals[10], "DEL");
	pthread_mutex_unlock(&s.lock);
	CHECK(order, "in order, one revision each, the delete last");

	/* kill member 0 (the watch's endpoint): the stream moves on, from the
	 * last revision + 1, losing and repeating nothing */
	long pid0 = pids ? strtol(pids, NULL, 10) : 0;
	CHECK(pid0 > 0 && kill((pid_t)pid0, SIGKILL) == 0, "killed member 0 (pid %ld)", pid0);
	/* if it led, the others elect a leader first: a put that timed out
	 * meanwhile might or might not be applied, and this case counts them */
	double t0 = now_s();
	CHECK(wait_healthy(u->endpoints[2], 20), "members 1 and 2 have a leader (%.1f s)", now_s() - t0);
	for (int i = 10; i < 20; i++) {
		snprintf(args, sizeof(args), "put %s/w/k%d v%d", gfs_etcd_prefix(e), i % 3, i);
		if (etcdctl(u->endpoints[2], args))
			CHECK(0, "etcdctl %s with member 0 dead", args);
	}
	CHECK(wait_seen(&s, 21, false, 20), "after member 0 died the watch resumed: %d events (errors reported: %d, last: %s)",
	      s.n, s.errors, s.errmsg);
	pthread_mutex_lock(&s.lock);
	bool ok = s.n == 21 && s.out_of_order == 0;
	for (int i = 11; i < 21 && ok; i++) {
		char want[16];
		snprintf(want, sizeof(want), "v%d", i - 1);
		ok = !strcmp(s.vals[i], want) && s.revs[i] == s.revs[i - 1] + 1;
	}
	pthread_mutex_unlock(&s.lock);
	CHECK(ok, "the 10 puts made meanwhile arrived once each, in order");
	CHECK(s.errors >= 1 && s.fatal == 0 && strstr(s.errmsg, u->endpoints[0]),
	      "the outage was reported, not fatal: %s", s.errmsg);
	gfs_etcd_watch_stop(w);
	CHECK(1, "watch stopped");
	free(end);
	gfs_etcd_close(e);
}

static void case_compact(void)
{
	struct gfs_etcd *e = open_url(url, 5000);
	const struct gfs_etcd_url *u = gfs_etcd_endpoints(e);
	char k[128], args[256];
	size_t kl = key(e, k, sizeof(k), "c/key");
	int64_t r1, r3;
	struct seen s;
	struct gfs_etcd_watch *w = NULL;

	MUST(gfs_etcd_put(e, k, kl, "1", 1, 0, &r1, &dg));
	MUST(gfs_etcd_put(e, k, kl, "2", 1, 0, NULL, &dg));
	MUST(gfs_etcd_put(e, k, kl, "3", 1, 0, &r3, &dg));
	snprintf(args, sizeof(args), "compaction %" PRId64, r3);
	CHECK(etcdctl(u->endpoints[0], args) == 0, "etcdctl compaction %" PRId64, r3);
	struct gfs_etcd_kv kv;
	bool found;
	memset(&dg, 0, sizeof(dg));
	int rc = gfs_etcd_get(e, k, kl, r1, &kv, &found, NULL, &dg);
	CHECK(rc == -ESTALE && strstr(dg.msg, "compacted"), "get at a compacted revision: %s (%s)", gfs_strerror(rc), dg.msg);
	seen_init(&s);
	memset(&dg, 0, sizeof(dg));
	rc = gfs_etcd_watch_start(e, k, kl, NULL, 0, r1, on_ev, on_err, &s, &w, &dg);
	if (rc == 0) {
		CHECK(wait_seen(&s, 0, true, 10) && s.last_rc == -ESTALE && strstr(s.errmsg, "compacted"),
		      "a watch from a compacted revision ends with a fatal error: %s", s.errmsg);
		gfs_etcd_watch_stop(w);
	} else {
		CHECK(rc == -ESTALE && strstr(dg.msg, "compacted"), "a watch from a compacted revision fails: %s", dg.msg);
	}
	CHECK(s.n == 0, "and delivered nothing");
	gfs_etcd_close(e);
}

/* Waits until a progress notification reaches rev, bounded by secs. */
static bool wait_progress(struct seen *s, int64_t rev, int secs)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += secs * factor();
	pthread_mutex_lock(&s->lock);
	int rc = 0;
	while (rc != ETIMEDOUT && s->progress < rev)
		rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	bool ok = s->progress >= rev;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/* An idle watch learns from progress notifications how far the store got:
 * after a compaction past its last event and the death of its member it
 * resumes from there, not from the compacted revision. */
static void case_progress(void)
{
	struct gfs_etcd *e = open_url(url, 3000);
	const struct gfs_etcd_url *u = gfs_etcd_endpoints(e);
	struct seen s;
	struct gfs_etcd_watch *w;
	char k[128], other[128], args[256];
	size_t kl = key(e, k, sizeof(k), "p/key"), ol = key(e, other, sizeof(other), "p-other");
	int64_t rev = 0;
	const char *pids = getenv("ETCD_PIDS");

	seen_init(&s);
	MUST(gfs_etcd_put(e, k, kl, "0", 1, 0, NULL, &dg));
	MUST(gfs_etcd_watch_start(e, k, kl, NULL, 0, 0, on_ev, on_err, &s, &w, &dg));
	for (int i = 0; i < 5; i++)
		MUST(gfs_etcd_put(e, other, ol, "x", 1, 0, &rev, &dg));
	CHECK(wait_progress(&s, rev, 10), "an idle watch was told it is up to revision %" PRId64 " (progress %" PRId64 ")",
	      rev, s.progress);
	snprintf(args, sizeof(args), "compaction %" PRId64, rev);
	CHECK(etcdctl(u->endpoints[1], args) == 0, "compacted to %" PRId64, rev);
	long pid0 = pids ? strtol(pids, NULL, 10) : 0;
	CHECK(pid0 > 0 && kill((pid_t)pid0, SIGKILL) == 0, "killed member 0, the watch's (pid %ld)", pid0);
	CHECK(wait_healthy(u->endpoints[2], 20), "members 1 and 2 have a leader");
	snprintf(args, sizeof(args), "put %s/p/key after", gfs_etcd_prefix(e));
	CHECK(etcdctl(u->endpoints[2], args) == 0, "etcdctl put on member 2");
	CHECK(wait_seen(&s, 1, false, 20) && s.fatal == 0 && !strcmp(s.vals[0], "after"),
	      "the watch resumed past the compaction and saw it (%d events, fatal %d: %s)", s.n, s.fatal, s.errmsg);
	gfs_etcd_watch_stop(w);
	gfs_etcd_close(e);
}

/* ---- endpoints dead ---------------------------------------------------- */

static void case_failover(void)
{
	struct gfs_etcd *e = open_url(url, 5000);
	char k[128];
	size_t kl = key(e, k, sizeof(k), "f/key");
	struct gfs_etcd_kv kv;
	bool found;
	double t0 = now_s();

	MUST(gfs_etcd_put(e, k, kl, "v", 1, 0, NULL, &dg));
	MUST(gfs_etcd_get(e, k, kl, 0, &kv, &found, NULL, &dg));
	CHECK(found && !strcmp(kv.value, "v"), "first endpoint dead: put and get went to the next (%.2f s)", now_s() - t0);
	gfs_etcd_kv_release(&kv);
	int64_t id, ttl;
	MUST(gfs_etcd_lease_grant(e, 5, &id, &ttl, &dg));
	MUST(gfs_etcd_lease_revoke(e, id, &dg));
	CHECK(1, "leases too");
	gfs_etcd_close(e);
}

static void case_down(void)
{
	/* a silent endpoint: a listening socket nobody accepts on (the kernel
	 * completes the handshake, nothing ever answers): the request times out */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl)) {
		CHECK(0, "silent socket: %s", strerror(errno));
		return;
	}
	char u2[1024];
	const char *slash = strchr(url + strlen("etcd://"), '/');
	if (!slash) {
		CHECK(0, "no prefix in '%s'", url);
		close(fd);
		return;
	}
	snprintf(u2, sizeof(u2), "%.*s,127.0.0.1:%d%s", (int)(slash - url), url,
		 ntohs(sa.sin_port), slash);
	unsigned tmo = 1000;
	struct gfs_etcd *e = open_url(u2, tmo);
	const struct gfs_etcd_url *u = gfs_etcd_endpoints(e);
	char k[128];
	size_t kl = key(e, k, sizeof(k), "d/key");
	struct gfs_etcd_kv kv;
	bool found;
	double t0 = now_s();
	memset(&dg, 0, sizeof(dg));
	int rc = gfs_etcd_get(e, k, kl, 0, &kv, &found, NULL, &dg);
	double took = now_s() - t0;
	bool all = true;
	for (size_t i = 0; i < u->n; i++)
		all = all && strstr(dg.msg, u->endpoints[i]);
	CHECK(rc != 0 && all && strstr(dg.msg, "etcd unreachable") && strstr(dg.msg, "imed out"),
	      "all endpoints down: %s: %s", gfs_strerror(rc), dg.msg);
	/* 2 rounds; the silent endpoint costs timeout_ms each, the others refuse at once */
	CHECK(took < (2 * tmo / 1000.0 + 1.5) * factor(), "within the bound: %.2f s (timeout %u ms, 2 rounds)", took, tmo);
	memset(&dg, 0, sizeof(dg));
	int64_t id, ttl;
	rc = gfs_etcd_lease_grant(e, 2, &id, &ttl, &dg);
	CHECK(rc != 0 && strstr(dg.msg, u->endpoints[0]), "lease grant too: %s", dg.msg);
	struct seen s;
	struct gfs_etcd_watch *w = NULL;
	seen_init(&s);
	memset(&dg, 0, sizeof(dg));
	rc = gfs_etcd_watch_start(e, k, kl, NULL, 0, 0, on_ev, on_err, &s, &w, &dg);
	all = true;
	for (size_t i = 0; i < u->n; i++)
		all = all && strstr(dg.msg, u->endpoints[i]);
	CHECK(rc != 0 && !w && all && strstr(dg.msg, "no answer within"), "a watch fails to start: %s: %s", gfs_strerror(rc), dg.msg);
	gfs_etcd_close(e);
	close(fd);
}

int main(int argc, char **argv)
{
	static const struct { const char *name; void (*fn)(void); bool url; } cases[] = {
		{"url", case_url, false}, {"kv", case_kv, true}, {"txn", case_txn, true},
		{"lease", case_lease, true}, {"watch", case_watch, true},
		{"compact", case_compact, true}, {"progress", case_progress, true},
		{"failover", case_failover, true},
		{"down", case_down, true},
	};
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; argc >= 2 && i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strcmp(argv[1], cases[i].name))
			continue;
		if (cases[i].url && argc < 3)
			break;
		url = argc >= 3 ? argv[2] : NULL;
		cases[i].fn();
		return fails ? 1 : 0;
	}
	fprintf(stderr, "usage: etcd_client url | kv|txn|lease|watch|compact|progress|failover|down etcd://EPS/PREFIX\n");
	return 2;
}
