/* tests/etcd/etcd_lease.c - src/lease_etcd.c against a real cluster; run
 * by tests/etcd/lease.sh, which starts the cluster (tests/etcd/cluster.sh)
 * and calls one case at a time (TTL 2 s throughout):
 *
 *     etcd_lease rangecmp etcd://EPS/P   how etcd evaluates a range compare
 *     etcd_lease excl     etcd://EPS/P   EX excludes EX and SH, SH shares, TRY
 *                                        gives -EWOULDBLOCK and holds none
 *     etcd_lease waitrel  etcd://EPS/P   WAIT wakes on the holder's release
 *     etcd_lease waitkill etcd://EPS/P   ... and on its SIGKILL, after the TTL
 *     etcd_lease fence    etcd://EPS/P   a holder SIGSTOPped past its TTL
 *                                        cannot commit after B took over
 *     etcd_lease holds    etcd://EPS/P   graph-version holds and gc's fence
 *     etcd_lease revoked  etcd://EPS/P   a keepalive told "no such lease"
 *     etcd_lease member   etcd://EPS/P   member 0 (first endpoint) SIGKILLed
 *                                        while a lease is held: it survives
 *     etcd_lease quorum   etcd://EPS/P   members 0 and 1 SIGKILLed: the
 *                                        session reports the outage
 *     etcd_lease child    etcd://EPS/P   a "host": one session, driven by
 *                                        lines on stdin (below)
 *
 * Other processes are this program's "child" mode, spawned with pipes; the
 * parent sends a command line and reads one answer line, every read
 * bounded (poll) and scaled by GRAPHFS_TEST_TIMEOUT_FACTOR.  Member pids
 * come from ETCD_PIDS.  Prints "ok - ..." / "FAIL - ..."; exit 1 on any
 * failure. */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "etcd.h"
#include "etcd_test.h"
#include "lease_etcd.h"

extern char **environ;

static const char *self;

/* Keys under PREFIX/dir, each "key=value" on its own line, in out. */
static size_t list(struct gfs_etcd *e, const char *dir, char *out, size_t cap)
{
	char k[256], *end;
	size_t kl = key(e, k, sizeof(k), dir), elen, n = 0;
	struct gfs_etcd_page p;
	out[0] = 0;
	if (gfs_etcd_prefix_end(k, kl, &end, &elen))
		return 0;
	if (gfs_etcd_range(e, k, kl, end, elen, 0, 0, &p, &dg) == 0) {
		size_t off = 0;
		for (size_t i = 0; i < p.n; i++)
			off += (size_t)snprintf(out + off, off < cap ? cap - off : 0, "%s=%s\n",
						p.kvs[i].key, p.kvs[i].value);
		n = p.n;
		gfs_etcd_page_release(&p);
	}
	free(end);
	return n;
}

/* ---- child: a "host" with one session ------------------------------------ */

static void child_on_wait(void *arg, const char *what, const char *holder)
{
	(void)arg;
	printf("waiting %s held by %s\n", what, holder);
	fflush(stdout);
}

static void child_reply_err(int rc, const char *msg)
{
	printf("err %d %s\n", rc, msg);
}

/* The next space-separated word of *p (NUL-terminated in place), or NULL. */
static char *word(char **p)
{
	char *w = *p + strspn(*p, " \n");
	if (!*w)
		return NULL;
	char *end = w + strcspn(w, " \n");
	*p = *end ? end + 1 : end;
	*end = 0;
	return w;
}

/* Commands, one answer line each:
 *   lock EX|SH try|wait WAIT_MS TABLE...  -> ok HOLDER TOKEN... | err RC MSG
 *   release                                -> released RC
 *   commit NAME VALUE   Txn: fence compares, put PREFIX/NAME -> committed |
 *                       failed <verify rc> <msg>   (no check before the Txn)
 *   check                                  -> alive | err RC MSG
 *   quit */
static int child_main(void)
{
	struct gfs_etcd *e = open_url(url, 3000);
	struct gfs_lease_opts o = {.ttl_s = 2, .on_wait = child_on_wait};
	struct gfs_lease_session *s;
	struct gfs_leaseset *held[8] = {NULL}, *ls = NULL; /* ls = the newest */
	size_t nheld = 0;
	char line[1024];
	int rc;

	memset(&dg, 0, sizeof(dg));
	if ((rc = gfs_lease_session_open(e, &o, &s, &dg))) {
		child_reply_err(rc, dg.msg);
		return 1;
	}
	printf("ready %" PRIx64 " %ld\n", (uint64_t)gfs_lease_session_id(s), (long)getpid());
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		char *save = line, *cmd = word(&save);
		memset(&dg, 0, sizeof(dg));
		if (!cmd)
			continue;
		if (!strcmp(cmd, "lock")) {
			const char *mode = word(&save), *how = word(&save);
			const char *ms = word(&save), *tables[8];
			enum gfs_lock_mode modes[8];
			size_t n = 0;
			for (char *t; n < 8 && (t = word(&save));) {
				tables[n] = t;
				modes[n++] = mode && !strcmp(mode, "EX") ? GFS_LOCK_EX : GFS_LOCK_SH;
			}
			rc = gfs_lease_tables(s, tables, modes, n, how && !strcmp(how, "try") ? GFS_LOCK_TRY : GFS_LOCK_WAIT,
					      ms ? (unsigned)strtoul(ms, NULL, 10) : 0, &ls, &dg);
			if (rc) {
				ls = nheld ? held[nheld - 1] : NULL;
				child_reply_err(rc, dg.msg);
			} else if (nheld == 8) {
				child_reply_err(-ENOSPC, "child: 8 locksets at most");
				gfs_lease_release(ls, NULL);
				ls = held[nheld - 1];
			} else {
				held[nheld++] = ls;
				printf("ok %s", gfs_leaseset_holder(ls));
				for (size_t i = 0; i < n; i++)
					printf(" %" PRId64, gfs_leaseset_token(ls, tables[i]));
				printf("\n");
			}
		} else if (!strcmp(cmd, "release")) {
			rc = gfs_lease_release(ls, &dg);
			if (nheld)
				nheld--;
			ls = nheld ? held[nheld - 1] : NULL;
			printf("released %d\n", rc);
		} else if (!strcmp(cmd, "commit")) {
			const char *name = word(&save), *val = word(&save);
			char k[256];
			size_t kl = key(e, k, sizeof(k), name ? name : "x");
			const struct gfs_etcd_cmp *cmps = NULL;
			size_t nc = 0;
			struct gfs_etcd_txn_result r;
			if (ls)
				gfs_lease_fence_cmps(ls, &cmps, &nc);
			struct gfs_etcd_op put = {.kind = GFS_ETCD_PUT, .key = k, .key_len = kl,
						  .value = val ? val : "", .value_len = val ? strlen(val) : 0};
			rc = gfs_etcd_txn(e, cmps, nc, &put, 1, NULL, 0, &r, &dg);
			if (rc) {
				child_reply_err(rc, dg.msg);
			} else if (r.succeeded) {
				printf("committed\n");
			} else {
				int vrc = ls ? gfs_lease_verify(ls, &dg) : 0;
				printf("failed %d %s\n", vrc, dg.msg);
			}
			if (!rc)
				gfs_etcd_txn_result_release(&r);
		} else if (!strcmp(cmd, "check")) {
			rc = gfs_lease_session_check(s, &dg);
			if (rc)
				child_reply_err(rc, dg.msg);
			else
				printf("alive\n");
		} else if (!strcmp(cmd, "quit")) {
			break;
		}
		fflush(stdout);
	}
	while (nheld)
		gfs_lease_release(held[--nheld], NULL);
	gfs_lease_session_close(s);
	gfs_etcd_close(e);
	return 0;
}

/* ---- parent side of a child ---------------------------------------------------- */

struct child {
	pid_t pid;
	int to, from;   /* its stdin, its stdout */
	char buf[4096];
	size_t len;
	char line[4096];
};

static bool spawn_child(struct child *c)
{
	int in[2], out[2];
	posix_spawn_file_actions_t fa;
	char *argv[] = {(char *)self, (char *)"child", (char *)url, NULL};
	memset(c, 0, sizeof(*c));
	if (pipe(in) || pipe(out))
		return false;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addclose(&fa, in[1]);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	int rc = posix_spawn(&c->pid, self, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	c->to = in[1];
	c->from = out[0];
	return rc == 0;
}

/* Reads the child's next line within secs (scaled): true and c->line set. */
static bool child_line(struct child *c, int secs)
{
	double until = now_s() + secs * factor();
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			memcpy(c->line, c->buf, n);
			c->line[n] = 0;
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return true;
		}
		int left = (int)((until - now_s()) * 1000);
		if (left <= 0 || c->len >= sizeof(c->buf) - 1)
			break;
		struct pollfd p = {.fd = c->from, .events = POLLIN};
		if (poll(&p, 1, left) <= 0)
			continue;
		ssize_t r = read(c->from, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
		if (r <= 0)
			break;
		c->len += (size_t)r;
	}
	snprintf(c->line, sizeof(c->line), "(no line within %d s)", secs * factor());
	return false;
}

/* Sends cmd and returns whether the answer (within secs) starts with want. */
static bool ask(struct child *c, const char *cmd, const char *want, int secs)
{
	if (cmd && (write(c->to, cmd, strlen(cmd)) < 0 || write(c->to, "\n", 1) < 0))
		return false;
	return child_line(c, secs) && !strncmp(c->line, want, strlen(want));
}

/* The holder name of an "ok HOLDER TOKEN..." answer. */
static void holder_of(const char *line, char *out, size_t cap)
{
	const char *h = line + 3;
	size_t n = strcspn(h, " ");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, h, n);
	out[n] = 0;
}

static bool child_start(struct child *c, char *lease_hex, size_t cap)
{
	if (!spawn_child(c) || !ask(c, NULL, "ready ", 20))
		return false;
	holder_of(c->line + 3, lease_hex, cap);
	return true;
}

static void child_end(struct child *c, bool kill_it)
{
	if (!c->pid)
		return;
	if (kill_it)
		kill(c->pid, SIGKILL);
	else if (write(c->to, "quit\n", 5) < 0)
		kill(c->pid, SIGKILL);
	close(c->to);
	close(c->from);
	int st;
	waitpid(c->pid, &st, 0);
	c->pid = 0;
}

/* ---- rangecmp ---------------------------------------------------------------- */

static bool txn_if_empty(struct gfs_etcd *e, const char *dir, const char *mark, bool *succeeded)
{
	char k[256], m[256], *end;
	size_t kl = key(e, k, sizeof(k), dir), ml = key(e, m, sizeof(m), mark), elen;
	if (gfs_etcd_prefix_end(k, kl, &end, &elen))
		return false;
	struct gfs_etcd_cmp c = {GFS_ETCD_VERSION, GFS_ETCD_EQ, k, kl, 0, NULL, 0, end, elen};
	struct gfs_etcd_op put = {.kind = GFS_ETCD_PUT, .key = m, .key_len = ml, .value = "y", .value_len = 1};
	struct gfs_etcd_txn_result r;
	int rc = gfs_etcd_txn(e, &c, 1, &put, 1, NULL, 0, &r, &dg);
	free(end);
	if (rc)
		return false;
	*succeeded = r.succeeded;
	gfs_etcd_txn_result_release(&r);
	return true;
}

/* etcd 3.4 (applyCompare): a range compare holds when every key of the
 * range satisfies it; on an empty range it compares a zero key.  So
 * "version == 0 over the range" = "no key under it", the EX test. */
static void case_rangecmp(void)
{
	struct gfs_etcd *e = open_url(url, 5000);
	bool ok = false;
	char k[256];
	size_t kl;

	CHECK(txn_if_empty(e, "rc/a/", "rc/m1", &ok) && ok, "version == 0 over an empty range holds (%s)", dg.msg);
	kl = key(e, k, sizeof(k), "rc/a/one");
	MUST(gfs_etcd_put(e, k, kl, "1", 1, 0, NULL, &dg));
	CHECK(txn_if_empty(e, "rc/a/", "rc/m2", &ok) && !ok, "... fails once one key is in the range");
	kl = key(e, k, sizeof(k), "rc/a/two");
	MUST(gfs_etcd_put(e, k, kl, "2", 1, 0, NULL, &dg));
	kl = key(e, k, sizeof(k), "rc/a/one");
	MUST(gfs_etcd_delete(e, k, kl, NULL, 0, NULL, NULL, &dg));
	CHECK(txn_if_empty(e, "rc/a/", "rc/m3", &ok) && !ok, "... fails with another key there (the last of the range)");
	kl = key(e, k, sizeof(k), "rc/a0");
	MUST(gfs_etcd_put(e, k, kl, "x", 1, 0, NULL, &dg));
	kl = key(e, k, sizeof(k), "rc/a/two");
	MUST(gfs_etcd_delete(e, k, kl, NULL, 0, NULL, NULL, &dg));
	CHECK(txn_if_empty(e, "rc/a/", "rc/m4", &ok) && ok, "... holds again once the range is empty; a key just past it ('rc/a0') does not count");
	/* a VALUE compare on an empty range fails: not usable for "absent" */
	char s[256], *end;
	size_t sl = key(e, s, sizeof(s), "rc/b/"), elen;
	MUST(gfs_etcd_prefix_end(s, sl, &end, &elen));
	struct gfs_etcd_cmp c = {GFS_ETCD_VALUE, GFS_ETCD_NE, s, sl, 0, "z", 1, end, elen};
	struct gfs_etcd_txn_result r;
	MUST(gfs_etcd_txn(e, &c, 1, NULL, 0, NULL, 0, &r, &dg));
	CHECK(!r.succeeded, "a VALUE != compare over an empty range fails (an absent key has no value)");
	gfs_etcd_txn_result_release(&r);
	free(end);
	gfs_etcd_close(e);
}

/* ---- excl ------------------------------------------------------------------ */

static void case_excl(void)
{
	struct gfs_etcd *e = open_url(url, 5000);
	struct child a, b;
	char la[64], lb[64], ha[128], hb[128], keys[4096];

	CHECK(child_start(&a, la, sizeof(la)) && child_start(&b, lb, sizeof(lb)),
	      "two hosts with sessions %s, %s", la, lb);
	CHECK(ask(&a, "lock EX try 0 t", "ok ", 10), "A: EX t (%s)", a.line);
	holder_of(a.line, ha, sizeof(ha));
	CHECK(ask(&b, "lock EX try 0 t", "err -11 ", 10) && strstr(b.line, ha),
	      "B: EX t TRY -> -EWOULDBLOCK naming A (%s)", b.line);
	CHECK(ask(&b, "lock SH try 0 t", "err -11 ", 10), "B: SH t TRY -> -EWOULDBLOCK (%s)", b.line);
	CHECK(ask(&a, "lock EX try 0 t", "err -11 ", 10),
	      "A again, a second lockset of the same session: -EWOULDBLOCK, as two flock()s of one process");
	double t0 = now_s();
	CHECK(ask(&b, "lock EX wait 600 t", "waiting ", 10) && ask(&b, NULL, "err -110 ", 10) &&
	      strstr(b.line, ha) && strstr(b.line, "still there after waiting") && now_s() - t0 >= 0.6,
	      "B: EX t WAIT 600 ms -> -ETIMEDOUT after %.2f s, naming A (%s)", now_s() - t0, b.line);
	CHECK(ask(&b, "lock EX try 0 t a", "err -11 ", 10) && list(e, "lease/a/", keys, sizeof(keys)) == 0,
	      "B: {a, t} EX TRY fails on t and holds none: nothing under lease/a/ (%s)", keys);
	CHECK(ask(&a, "release", "released 0", 10) && list(e, "lease/t/", keys, sizeof(keys)) == 0,
	      "A released: lease/t/ empty");
	CHECK(ask(&a, "lock SH try 0 t", "ok ", 10), "A: SH t (%s)", a.line);
	holder_of(a.line, ha, sizeof(ha));
	CHECK(ask(&b, "lock SH try 0 t u", "ok ", 10), "B: SH t shares with A, + SH u (%s)", b.line);
	holder_of(b.line, hb, sizeof(hb));
	size_t n = list(e, "lease/t/s/", keys, sizeof(keys));
	CHECK(n == 2 && strstr(keys, ha) && strstr(keys, hb) && strstr(keys, "\"mode\":\"SH\""),
	      "two shared keys, each with its holder's JSON:\n%s", keys);
	struct child c;
	char lc[64];
	CHECK(child_start(&c, lc, sizeof(lc)) && ask(&c, "lock EX try 0 t", "err -11 ", 10),
	      "C: EX t TRY while shared -> -EWOULDBLOCK (%s)", c.line);
	CHECK(ask(&c, "lock EX try 0 u", "err -11 ", 10), "C: EX u TRY (B's SH) -> -EWOULDBLOCK");
	CHECK(ask(&c, "lock EX try 0 v", "ok ", 10) && ask(&c, "release", "released 0", 10),
	      "C: EX v (nobody's) taken and released");
	child_end(&c, false);
	child_end(&a, false);
	child_end(&b, false);
	CHECK(list(e, "lease/", keys, sizeof(keys)) == 0, "hosts gone: no lease key left (%s)", keys);
	gfs_etcd_close(e);
}

/* ---- waitrel / waitkill ------------------------------------------------------ */

/* Polls with etcdctl (another client) until PREFIX/lease/t/ holds exactly
 * the keys of holder (and nothing of other): bounded. */
static bool etcdctl_keys_are(const char *prefix, const char *holder, const char *other, int secs)
{
	char cmd[1024], out[4096];
	double until = now_s() + secs * factor();
	const char *eps = getenv("ETCD_ENDPOINTS");
	snprintf(cmd, sizeof(cmd), "ETCDCTL_API=3 timeout %d etcdctl --endpoints=%s get --prefix --keys-only %s/lease/t/",
		 10 * factor(), eps ? eps : "", prefix);
	while (now_s() < until) {
		FILE *p = popen(cmd, "r");
		size_t n = p ? fread(out, 1, sizeof(out) - 1, p) : 0;
		if (p)
			pclose(p);
		out[n] = 0;
		if (strstr(out, holder) && !strstr(out, other))
			return true;
		nap_ms(100);
	}
	return false;
}

static void wait_case(bool kill_holder)
{
	struct gfs_etcd *e = open_url(url, 5000);
	struct child a, b;
	char la[64], lb[64], ha[128];

	CHECK(child_start(&a, la, sizeof(la)) && child_start(&b, lb, sizeof(lb)), "two hosts");
	CHECK(ask(&a, "lock EX try 0 t", "ok ", 10), "A: EX t (%s)", a.line);
	holder_of(a.line, ha, sizeof(ha));
	int wait_ms = 20000 * factor();
	char cmd[64];
	snprintf(cmd, sizeof(cmd), "lock EX wait %d t", wait_ms);
	CHECK(ask(&b, cmd, "waiting ", 10) && strstr(b.line, ha), "B: EX t WAIT is waiting (%s)", b.line);
	CHECK(etcdctl_keys_are(gfs_etcd_prefix(e), ha, lb, 10), "etcdctl: lease/t/ has A's key and none of B's");
	double t0 = now_s();
	if (kill_holder) {
		kill(a.pid, SIGKILL);
		CHECK(ask(&b, NULL, "ok ", 10), "B got t after A was SIGKILLed: %.1f s (TTL 2 s) (%s)", now_s() - t0, b.line);
		CHECK(now_s() - t0 >= 1.0, "... not before A's lease expired (renewed at most TTL/3 before the kill)");
	} else {
		CHECK(ask(&a, "release", "released 0", 10), "A released t");
		CHECK(ask(&b, NULL, "ok ", 5), "B woke and got t in %.2f s, long before its %d ms deadline (%s)",
		      now_s() - t0, wait_ms, b.line);
	}
	CHECK(now_s() - t0 < 10.0 * factor(), "bounded");
	child_end(&a, kill_holder);
	child_end(&b, false);
	gfs_etcd_close(e);
}

static void case_waitrel(void) { wait_case(false); }
static void case_waitkill(void) { wait_case(true); }

/* ---- fence ----------------------------------------------------------------- */

/* A sweep's Txn resolving holder's work: owner-gone compares on t. */
static bool sweep(struct gfs_etcd *e, const char *holder, bool *committed)
{
	struct gfs_lease_gone g;
	char k[256];
	size_t kl = key(e, k, sizeof(k), "data/swept");
	if (gfs_lease_gone_init(&g, gfs_etcd_prefix(e), "t", holder))
		return false;
	struct gfs_etcd_op put = {.kind = GFS_ETCD_PUT, .key = k, .key_len = kl, .value = holder,
				  .value_len = strlen(holder)};
	struct gfs_etcd_txn_result r;
	int rc = gfs_etcd_txn(e, g.cmps, 2, &put, 1, NULL, 0, &r, &dg);
	gfs_lease_gone_release(&g);
	if (rc)
		return false;
	*committed = r.succeeded;
	gfs_etcd_txn_result_release(&r);
	return true;
}

static void case_fence(void)
{
	struct gfs_etcd *e = open_url(url, 5000);
	struct child a, b;
	char la[64], lb[64], ha[128], hb[128], keys[8192], kt[256];
	bool committed = true;

	CHECK(child_start(&a, la, sizeof(la)) && child_start(&b, lb, sizeof(lb)), "two hosts");
	CHECK(ask(&a, "lock EX try 0 t", "ok ", 10), "A: EX t (%s)", a.line);
	holder_of(a.line, ha, sizeof(ha));
	CHECK(sweep(e, ha, &committed) && !committed, "a sweep's Txn with A's owner-gone compares fails while A holds t");
	CHECK(ask(&a, "commit data/a1 A", "committed", 10), "A commits with its fence compares while alive");
	CHECK(kill(a.pid, SIGSTOP) == 0, "A SIGSTOPped");
	double t0 = now_s();
	while (now_s() - t0 < 10.0 * factor() && list(e, "lease/t/", keys, sizeof(keys)) > 0)
		nap_ms(100);
	CHECK(list(e, "lease/t/", keys, sizeof(keys)) == 0, "A's lease key went %.1f s after the stop (TTL 2 s)", now_s() - t0);
	CHECK(sweep(e, ha, &committed) && committed, "now the sweep's Txn with A's owner-gone compares commits");
	CHECK(ask(&b, "lock EX try 0 t", "ok ", 10), "B: EX t (%s)", b.line);
	holder_of(b.line, hb, sizeof(hb));
	CHECK(ask(&b, "commit data/x B", "committed", 10), "B commits data/x with its fence compares");
	CHECK(kill(a.pid, SIGCONT) == 0, "A SIGCONTed");
	CHECK(ask(&a, "commit data/x A", "failed ", 10) && strstr(a.line, "-40011") && strstr(a.line, "lease lost: paused past its TTL of 2 s; the operation was left for recovery"),
	      "A's Txn with its own fence compares fails; A reports: %s", a.line);
	CHECK(ask(&a, "check", "err -40011 lease lost", 10), "A's session stays lost: %s", a.line);
	CHECK(ask(&a, "lock EX try 0 w", "err -40011 lease lost", 10), "... and takes no new lease: %s", a.line);
	struct gfs_etcd_kv kv;
	bool found;
	size_t kl = key(e, kt, sizeof(kt), "data/x");
	MUST(gfs_etcd_get(e, kt, kl, 0, &kv, &found, NULL, &dg));
	CHECK(found && !strcmp(kv.value, "B") && kv.version == 1, "data/x is B's, written once");
	gfs_etcd_kv_release(&kv);
	list(e, "lease/", keys, sizeof(keys));
	CHECK(!strstr(keys, ha) && strstr(keys, hb), "no lease key of A's; B's is there:\n%s", keys);
	list(e, "data/", keys, sizeof(keys));
	char *first = strstr(keys, "=A\n");
	CHECK(first && !strstr(first + 1, "=A\n") && strstr(keys, "/data/a1=A\n"),
	      "of A's writes only data/a1, committed while its lease was alive, is in etcd:\n%s", keys);
	child_end(&a, false);
	child_end(&b, false);
	gfs_etcd_close(e);
}

/* ---- holds ------------------------------------------------------------------ */

struct waited {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool waiting, done;
	int rc;
	struct gfs_lease_session *s;
	struct gfs_diag d;
};

static void holds_on_wait(void *arg, const char *what, const char *holder)
{
	struct waited *w = arg;
	(void)what;
	(void)holder;
	pthread_mutex_lock(&w->mu);
	w->waiting = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

static void *hold_waiter(void *arg)
{
	struct waited *w = arg;
	int rc = gfs_lease_hold_take(w->s, 7, GFS_LOCK_WAIT, 20000, &w->d);
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->done = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static bool waited_for(struct waited *w, bool *flag, int secs)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += secs * factor();
	pthread_mutex_lock(&w->mu);
	int rc = 0;
	while (!*flag && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&w->cond, &w->mu, &ts);
	bool ok = *flag;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

static void case_holds(void)
{
	struct gfs_etcd *e = open_url(url, 5000);
	struct waited w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	struct gfs_lease_opts om = {.ttl_s = 2, .on_wait = holds_on_wait, .on_wait_arg = &w};
	struct gfs_lease_opts og = {.ttl_s = 2};
	struct gfs_lease_session *mount, *gc;
	struct gfs_lease_fence f;
	bool held;

	MUST(gfs_lease_session_open(e, &om, &mount, &dg));
	MUST(gfs_lease_session_open(e, &og, &gc, &dg));
	MUST(gfs_lease_hold_take(mount, 7, GFS_LOCK_TRY, 0, &dg));
	MUST(gfs_lease_hold_take(mount, 7, GFS_LOCK_TRY, 0, &dg));
	CHECK(1, "a mount holds version 7 (twice: a no-op)");
	memset(&dg, 0, sizeof(dg));
	int rc = gfs_lease_hold_fence(gc, 7, &f, &dg);
	CHECK(rc == -EWOULDBLOCK && strstr(dg.msg, "held by") && !f.key, "gc cannot fence a held version: %s", dg.msg);
	MUST(gfs_lease_hold_probe(gc, 7, &held, &dg));
	CHECK(held, "gc's probe: 7 is held elsewhere");
	MUST(gfs_lease_hold_probe(mount, 7, &held, &dg));
	CHECK(!held, "the mount's own probe: not held by anyone else");
	MUST(gfs_lease_hold_fence(gc, 8, &f, &dg));
	CHECK(f.key && f.cmp.num > 0, "gc fences unheld version 8 (token %" PRId64 ")", f.cmp.num);
	memset(&dg, 0, sizeof(dg));
	rc = gfs_lease_hold_take(mount, 8, GFS_LOCK_TRY, 0, &dg);
	CHECK(rc == -EWOULDBLOCK, "a new hold of a fenced version: TRY -> -EWOULDBLOCK (%s)", dg.msg);
	struct gfs_etcd_op nop = {.kind = GFS_ETCD_RANGE, .key = f.key, .key_len = strlen(f.key)};
	struct gfs_etcd_txn_result r;
	MUST(gfs_etcd_txn(e, &f.cmp, 1, &nop, 1, NULL, 0, &r, &dg));
	CHECK(r.succeeded, "gc's commit Txn with its fence compare succeeds while fenced");
	gfs_etcd_txn_result_release(&r);
	char stale_key[256];
	snprintf(stale_key, sizeof(stale_key), "%s", f.key);
	struct gfs_etcd_cmp stale = f.cmp;
	stale.key = stale_key;
	nop.key = stale_key;
	MUST(gfs_lease_hold_unfence(gc, &f, &dg));
	MUST(gfs_lease_hold_take(mount, 8, GFS_LOCK_TRY, 0, &dg));
	CHECK(1, "after gc's unfence the version can be held");
	MUST(gfs_etcd_txn(e, &stale, 1, &nop, 1, NULL, 0, &r, &dg));
	CHECK(!r.succeeded, "a commit with the old fence compare fails after unfence");
	gfs_etcd_txn_result_release(&r);

	/* WAIT wakes when gc unfences; the mount's drop lets gc fence */
	memset(&dg, 0, sizeof(dg));
	CHECK(gfs_lease_hold_fence(gc, 7, &f, &dg) == -EWOULDBLOCK, "7 is still held: no fence (%s)", dg.msg);
	MUST(gfs_lease_hold_drop(mount, 7, &dg));
	MUST(gfs_lease_hold_fence(gc, 7, &f, &dg));
	CHECK(1, "the mount dropped 7: gc fences it");
	pthread_t th;
	w.s = mount;
	pthread_create(&th, NULL, hold_waiter, &w);
	CHECK(waited_for(&w, &w.waiting, 10) && !w.done, "a mount's hold of 7 (WAIT) waits on the fence");
	double t0 = now_s();
	MUST(gfs_lease_hold_unfence(gc, &f, &dg));
	CHECK(waited_for(&w, &w.done, 5) && w.rc == 0, "... and gets it %.2f s after the unfence (%s)", now_s() - t0, w.d.msg);
	pthread_join(th, NULL);
	gfs_lease_session_close(gc);
	gfs_lease_session_close(mount);
	char keys[2048];
	CHECK(list(e, "hold/", keys, sizeof(keys)) == 0 && list(e, "gcfence/", keys, sizeof(keys)) == 0,
	      "sessions closed: no hold or fence key left");
	gfs_etcd_close(e);
}

/* ---- member / quorum ----------------------------------------------------------- */

static pid_t member_pid(int i)
{
	const char *p = getenv("ETCD_PIDS");
	for (int k = 0; p && k < i; k++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? (pid_t)strtol(p, NULL, 10) : 0;
}

static void case_member(void)
{
	struct gfs_etcd *e = open_url(url, 3000);
	struct gfs_lease_opts o = {.ttl_s = 2};
	struct gfs_lease_session *s;
	struct gfs_leaseset *ls;
	const char *t[] = {"t"};
	enum gfs_lock_mode m[] = {GFS_LOCK_EX};

	MUST(gfs_lease_session_open(e, &o, &s, &dg));
	MUST(gfs_lease_tables(s, t, m, 1, GFS_LOCK_TRY, 0, &ls, &dg));
	int64_t token = gfs_leaseset_token(ls, "t");
	pid_t p0 = member_pid(0);
	CHECK(p0 > 0 && kill(p0, SIGKILL) == 0, "member 0 (the first endpoint, not the leader) SIGKILLed, pid %ld", (long)p0);
	/* three TTLs: without keepalives reaching another member it would end */
	double t0 = now_s();
	bool alive = true;
	while (now_s() - t0 < 6.0 && alive) {
		alive = gfs_lease_session_check(s, &dg) == 0;
		nap_ms(200);
	}
	CHECK(alive, "the session stayed alive for %.1f s (3 TTLs) (%s)", now_s() - t0, dg.msg);
	const struct gfs_etcd_cmp *c;
	size_t nc;
	gfs_lease_fence_cmps(ls, &c, &nc);
	struct gfs_etcd_txn_result r;
	MUST(gfs_etcd_txn(e, c, nc, NULL, 0, NULL, 0, &r, &dg));
	CHECK(r.succeeded && nc == 1 && c[0].num == token, "its fence compare still holds (token %" PRId64 ")", token);
	gfs_etcd_txn_result_release(&r);
	MUST(gfs_lease_release(ls, &dg));
	gfs_lease_session_close(s);
	gfs_etcd_close(e);
}

/* The keepalive's answer "no such lease" (here: revoked by another
 * client) makes the session lost at once, before its TTL ran out. */
static void case_revoked(void)
{
	struct gfs_etcd *e = open_url(url, 3000);
	struct gfs_lease_opts o = {.ttl_s = 5};
	struct gfs_lease_session *s;
	struct gfs_leaseset *ls;
	const char *t[] = {"r"};
	enum gfs_lock_mode m[] = {GFS_LOCK_SH};

	MUST(gfs_lease_session_open(e, &o, &s, &dg));
	MUST(gfs_lease_tables(s, t, m, 1, GFS_LOCK_TRY, 0, &ls, &dg));
	MUST(gfs_etcd_lease_revoke(e, gfs_lease_session_id(s), &dg));
	double t0 = now_s();
	int rc = 0;
	while (now_s() - t0 < 10.0 * factor() && rc == 0) {
		memset(&dg, 0, sizeof(dg));
		rc = gfs_lease_session_check(s, &dg);
		nap_ms(50);
	}
	CHECK(rc == GFS_ELEASE && strstr(dg.msg, "was revoked") && now_s() - t0 < 4.0,
	      "a 5 s session whose lease was revoked elsewhere is lost after %.1f s (the next keepalive): %s",
	      now_s() - t0, dg.msg);
	memset(&dg, 0, sizeof(dg));
	CHECK(gfs_lease_verify(ls, &dg) == GFS_ELEASE, "its lockset verifies as lost");
	gfs_lease_release(ls, NULL);
	gfs_lease_session_close(s);
	gfs_etcd_close(e);
}

static void case_quorum(void)
{
	struct gfs_etcd *e = open_url(url, 1000);
	struct gfs_lease_opts o = {.ttl_s = 2};
	struct gfs_lease_session *s;
	struct gfs_leaseset *ls;
	const char *t[] = {"q"};
	enum gfs_lock_mode m[] = {GFS_LOCK_EX};

	MUST(gfs_lease_session_open(e, &o, &s, &dg));
	MUST(gfs_lease_tables(s, t, m, 1, GFS_LOCK_TRY, 0, &ls, &dg));
	pid_t p0 = member_pid(0), p1 = member_pid(1);
	CHECK(p0 > 0 && p1 > 0 && kill(p0, SIGKILL) == 0 && kill(p1, SIGKILL) == 0,
	      "members 0 and 1 SIGKILLed: no quorum");
	double t0 = now_s();
	int rc = 0;
	while (now_s() - t0 < 10.0 * factor() && rc == 0) {
		memset(&dg, 0, sizeof(dg));
		rc = gfs_lease_session_check(s, &dg);
		nap_ms(100);
	}
	CHECK(rc == GFS_ELEASE && strstr(dg.msg, "lease lost: no keepalive") && strstr(dg.msg, "TTL of 2 s") &&
	      strstr(dg.msg, "left for recovery"),
	      "after %.1f s the session reports the outage: %s", now_s() - t0, dg.msg);
	CHECK(now_s() - t0 < 2.0 + 1.5 * factor(), "within the TTL and one keepalive period or so");
	memset(&dg, 0, sizeof(dg));
	struct gfs_leaseset *ls2 = NULL;
	const char *t2[] = {"q2"};
	rc = gfs_lease_tables(s, t2, m, 1, GFS_LOCK_TRY, 0, &ls2, &dg);
	CHECK(rc == GFS_ELEASE && !ls2, "a new lease fails: %s", dg.msg);
	memset(&dg, 0, sizeof(dg));
	rc = gfs_lease_verify(ls, &dg);
	CHECK(rc == GFS_ELEASE, "the held lockset verifies as lost: %s", dg.msg);
	gfs_lease_release(ls, NULL);
	gfs_lease_session_close(s);
	gfs_etcd_close(e);
}

int main(int argc, char **argv)
{
	static const struct { const char *name; void (*fn)(void); } cases[] = {
		{"rangecmp", case_rangecmp}, {"excl", case_excl}, {"waitrel", case_waitrel},
		{"waitkill", case_waitkill}, {"fence", case_fence}, {"holds", case_holds},
		{"revoked", case_revoked}, {"member", case_member}, {"quorum", case_quorum},
	};
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	self = argv[0];
	if (argc == 3 && !strcmp(argv[1], "child")) {
		url = argv[2];
		return child_main();
	}
	for (size_t i = 0; argc == 3 && i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strcmp(argv[1], cases[i].name))
			continue;
		url = argv[2];
		cases[i].fn();
		return fails ? 1 : 0;
	}
	fprintf(stderr, "usage: etcd_lease rangecmp|excl|waitrel|waitkill|fence|holds|revoked|member|quorum|child etcd://EPS/PREFIX\n");
	return 2;
}
