/* etcd.h - a client of etcd's v3 API through its JSON gateway (/v3/...),
 * over libcurl and jansson (docs/decisions.md, "etcd over its JSON gateway").
 *
 * The client knows nothing of graphfs: it moves byte-string keys and values
 * (binary-safe: the gateway carries them in base64) and revisions.  The
 * manifest backend on etcd (src/kv.h) builds its keys under the URL's
 * PREFIX.  Calling sequence:
 *
 *     struct gfs_etcd *e;
 *     struct gfs_diag d = {0};
 *     rc = gfs_etcd_open("etcd://10.0.0.1:2379,10.0.0.2:2379/graphs/a", NULL, &e, &d);
 *     rc = gfs_etcd_get(e, key, klen, 0, &kv, &found, &d);      kv: _kv_release
 *     rc = gfs_etcd_range_each(e, k, kl, end, el, 0, 500, fn, arg, &rev, &d);
 *     rc = gfs_etcd_txn(e, cmps, nc, ops, no, fops, nf, &res, &d);  res: _txn_result_release
 *     rc = gfs_etcd_lease_grant(e, 2, &id, &ttl, &d); ... keepalive, revoke
 *     rc = gfs_etcd_watch_start(e, k, kl, end, el, rev, on_ev, on_err, arg, &w, &d);
 *     gfs_etcd_watch_stop(w);
 *     gfs_etcd_close(e);
 *
 * Endpoints and retries.  Each request goes to the endpoint that answered
 * last; on a connection failure, a timeout, or an answer that the member
 * cannot serve now (gRPC Unavailable / DeadlineExceeded: no leader, cut off
 * from quorum) it goes to the next one, each endpoint at most twice
 * (opts.rounds), so a call ends within rounds * n * timeout_ms.  A write
 * retried after a timeout may have been applied by the first attempt: txn
 * callers guard with compares (the second attempt then fails its compare);
 * put and delete are idempotent.  When every attempt fails the error names
 * every endpoint tried and why: "etcd unreachable: tried 127.0.0.1:2379
 * (Couldn't connect to server), ...".
 *
 * Errors: 0, or -errno: -EINVAL (bad URL or argument, or etcd refused the
 * request as invalid: too many txn ops, request too large), -ENOENT (lease
 * not found), -ESTALE (revision compacted), -ETIMEDOUT / -ECONNREFUSED /
 * -EHOSTUNREACH (no endpoint answered: the last attempt's reason), -EAGAIN
 * (members answered but none could serve: no leader), -EPROTO (an answer
 * that is not etcd's JSON), -ENOMEM, -EACCES (auth), -EIO (any other etcd
 * error); the diagnostic has etcd's own message and the endpoint.
 *
 * Thread safety: one gfs_etcd may be used by several threads at once (each
 * call takes a curl handle from a small pool); a watch runs on its own
 * thread and handle. */
#ifndef GFS_ETCD_H
#define GFS_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct gfs_etcd;
struct gfs_etcd_watch;

/* A parsed "etcd://HOST:PORT[,HOST:PORT...]/PREFIX".  HOST is a name or an
 * IPv4 address ([v6] in brackets), PORT 1..65535; PREFIX is 1..255 bytes of
 * [A-Za-z0-9._-] components separated by single '/'. Embedded: _release. */
struct gfs_etcd_url {
	char **endpoints; /* "host:port", n of them */
	size_t n;
	char *prefix;     /* without leading or trailing '/' */
};
int gfs_etcd_url_parse(const char *url, struct gfs_etcd_url *out, struct gfs_diag *d);
void gfs_etcd_url_release(struct gfs_etcd_url *u);

struct gfs_etcd_opts {
	unsigned timeout_ms;         /* per request, whole; 0 = 5000 */
	unsigned connect_timeout_ms; /* per connection attempt; 0 = 1000 */
	unsigned rounds;             /* times each endpoint is tried; 0 = 2 */
	uint64_t max_response;       /* bytes one answer may have; 0 = 64 MiB */
	unsigned first_endpoint;     /* index (mod n) of the endpoint asked first */
};

/* GRAPHFS_ETCD_FIRST=i: the endpoint this process asks first (the URL's
 * order otherwise); the tests run two "hosts" on two members with it.
 * The index for opts->first_endpoint, 0 when unset or not a number. */
unsigned gfs_etcd_first_from_env(void);

/* Parses url and returns a new client (no request is made: the first call
 * finds out whether etcd answers); the caller frees it with
 * gfs_etcd_close().  opts NULL = defaults. */
int gfs_etcd_open(const char *url, const struct gfs_etcd_opts *opts,
		  struct gfs_etcd **out, struct gfs_diag *d);
void gfs_etcd_close(struct gfs_etcd *e);
/* Sets the per-request timeout and the rounds (0 = keep either) of a
 * client before any thread uses it (not thread-safe with calls): a mount
 * bounds how long a request of its own waits for a cluster that does not
 * answer (fuse/fs.c). */
void gfs_etcd_set_timeouts(struct gfs_etcd *e, unsigned timeout_ms, unsigned rounds);
/* Borrowed, valid until close. */
const char *gfs_etcd_prefix(const struct gfs_etcd *e);
const struct gfs_etcd_url *gfs_etcd_endpoints(const struct gfs_etcd *e);

/* One key-value as etcd returns it.  key and value are heap copies with a
 * NUL after their bytes (not counted).  Embedded: _kv_release. */
struct gfs_etcd_kv {
	char *key;
	size_t key_len;
	char *value;
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
};
void gfs_etcd_kv_release(struct gfs_etcd_kv *kv);

/* The smallest key after every key with the given prefix, for range ends;
 * a prefix of only 0xff bytes (or empty) gives "\0" (= to the end of the
 * keyspace, as etcd reads it).  Returns a new buffer (free()). */
int gfs_etcd_prefix_end(const void *prefix, size_t len, char **end, size_t *end_len);

/* Reads one key at revision rev (0 = newest).  *found false (and *kv
 * zeroed) if absent; header_rev (may be NULL) = the store's revision that
 * answered. */
int gfs_etcd_get(struct gfs_etcd *e, const void *key, size_t klen, int64_t rev,
		 struct gfs_etcd_kv *kv, bool *found, int64_t *header_rev,
		 struct gfs_diag *d);

/* One page of a range: at most limit keys of [key, end) in key order at
 * revision rev (0 = newest).  end NULL = the one key; more = keys remain
 * after the last one.  Embedded: _page_release. */
struct gfs_etcd_page {
	struct gfs_etcd_kv *kvs;
	size_t n;
	bool more;
	int64_t header_revision;
	int64_t count; /* keys in the whole range (etcd's count) */
};
void gfs_etcd_page_release(struct gfs_etcd_page *p);
int gfs_etcd_range(struct gfs_etcd *e, const void *key, size_t klen,
		   const void *end, size_t elen, int64_t rev, int64_t limit,
		   struct gfs_etcd_page *out, struct gfs_diag *d);

/* The same in descending key order (sort_order DESCEND): the last limit
 * keys of [key, end), highest first; more = keys remain below the last. */
int gfs_etcd_range_desc(struct gfs_etcd *e, const void *key, size_t klen,
			const void *end, size_t elen, int64_t rev, int64_t limit,
			struct gfs_etcd_page *out, struct gfs_diag *d);

/* Calls fn for each key of [key, end) in order, page_size keys a request
 * (0 = 512), every page read at the same revision (rev, or the first page's
 * header revision when rev is 0), so the whole scan is one snapshot; never
 * holds more than one page.  fn returns 0 to go on, anything else to stop
 * (returned).  at_rev (may be NULL) = the revision read. */
typedef int (*gfs_etcd_kv_fn)(void *arg, const struct gfs_etcd_kv *kv);
int gfs_etcd_range_each(struct gfs_etcd *e, const void *key, size_t klen,
			const void *end, size_t elen, int64_t rev, int64_t page_size,
			gfs_etcd_kv_fn fn, void *arg, int64_t *at_rev,
			struct gfs_diag *d);

int gfs_etcd_put(struct gfs_etcd *e, const void *key, size_t klen,
		 const void *val, size_t vlen, int64_t lease, int64_t *header_rev,
		 struct gfs_diag *d);
/* Deletes [key, end) (end NULL: the one key); *deleted (may be NULL) = how
 * many keys. */
int gfs_etcd_delete(struct gfs_etcd *e, const void *key, size_t klen,
		    const void *end, size_t elen, int64_t *deleted,
		    int64_t *header_rev, struct gfs_diag *d);

/* ---- transactions: if (all compares hold) success ops else failure ops -- */
enum gfs_etcd_target {
	GFS_ETCD_VALUE,   /* cmp.value */
	GFS_ETCD_VERSION, /* cmp.num: 0 = the key is absent */
	GFS_ETCD_CREATE,  /* cmp.num = create_revision (0 = absent) */
	GFS_ETCD_MOD,     /* cmp.num = mod_revision (0 = absent) */
};
enum gfs_etcd_result { GFS_ETCD_EQ, GFS_ETCD_NE, GFS_ETCD_LT, GFS_ETCD_GT };
/* "key's TARGET RESULT (num | value)", e.g. {GFS_ETCD_MOD, GFS_ETCD_EQ, k, kl, 42}.
 * With end set, the compare is over the range [key, end): etcd 3.4 holds it
 * when every key of the range satisfies it, and on an empty range compares
 * an absent key's zeros (version, create and mod revision 0; a VALUE
 * compare fails), so {GFS_ETCD_VERSION, GFS_ETCD_EQ, dir, .., 0, .., end}
 * reads "no key under dir" (tests/etcd/lease.sh case rangecmp). */
struct gfs_etcd_cmp {
	enum gfs_etcd_target target;
	enum gfs_etcd_result result;
	const void *key;
	size_t key_len;
	int64_t num;
	const void *value;
	size_t value_len;
	const void *end;  /* NULL = the one key */
	size_t end_len;
};
enum gfs_etcd_op_kind { GFS_ETCD_PUT, GFS_ETCD_DELETE, GFS_ETCD_RANGE };
struct gfs_etcd_op {
	enum gfs_etcd_op_kind kind;
	const void *key;
	size_t key_len;
	const void *end;   /* DELETE, RANGE: NULL = the one key */
	size_t end_len;
	const void *value; /* PUT */
	size_t value_len;
	int64_t lease;     /* PUT: 0 = none */
	int64_t limit;     /* RANGE: 0 = no limit (keep ranges small) */
};
/* What the executed branch returned: one page per op of that branch, in
 * order (empty for PUT; DELETE's count of deleted keys in count).
 * Embedded: _txn_result_release. */
struct gfs_etcd_txn_result {
	bool succeeded;
	int64_t header_revision;
	struct gfs_etcd_page *pages;
	size_t n;
};
void gfs_etcd_txn_result_release(struct gfs_etcd_txn_result *r);
/* res may be NULL when the caller needs only success (returns 0 either way:
 * read res->succeeded).  etcd caps ops per branch (--max-txn-ops, 128 by
 * default; -EINVAL above it). */
int gfs_etcd_txn(struct gfs_etcd *e, const struct gfs_etcd_cmp *cmps, size_t ncmp,
		 const struct gfs_etcd_op *success, size_t nsuccess,
		 const struct gfs_etcd_op *failure, size_t nfailure,
		 struct gfs_etcd_txn_result *res, struct gfs_diag *d);

/* ---- leases ------------------------------------------------------------ */
/* etcd raises a TTL below its minimum (ceil(1.5 * election timeout), 2 s by
 * default) to it: *granted_ttl says what was given. */
int gfs_etcd_lease_grant(struct gfs_etcd *e, int64_t ttl_s, int64_t *id,
			 int64_t *granted_ttl, struct gfs_diag *d);
/* One keepalive: renews the lease to its full TTL; -ENOENT if it expired
 * or was revoked (then *ttl = 0). */
int gfs_etcd_lease_keepalive(struct gfs_etcd *e, int64_t id, int64_t *ttl,
			     struct gfs_diag *d);
/* Revokes the lease and deletes its keys; -ENOENT if it no longer exists. */
int gfs_etcd_lease_revoke(struct gfs_etcd *e, int64_t id, struct gfs_diag *d);
/* *ttl = seconds left, -1 if the lease no longer exists; *granted (may be
 * NULL) = its granted TTL. */
int gfs_etcd_lease_ttl(struct gfs_etcd *e, int64_t id, int64_t *ttl,
		       int64_t *granted, struct gfs_diag *d);

/* ---- watch ------------------------------------------------------------- */
enum gfs_etcd_event_type { GFS_ETCD_EV_PUT, GFS_ETCD_EV_DELETE };
struct gfs_etcd_event {
	enum gfs_etcd_event_type type;
	struct gfs_etcd_kv kv; /* DELETE: key and mod_revision only */
};
/* Events of one message of the stream, in revision order; borrowed for the
 * call.  n = 0 (ev NULL): a progress notification, every event up to
 * header_rev has been delivered (etcd sends them to an idle watch every
 * --experimental-watch-progress-notify-interval, 10 min by default).  Runs
 * on the watch's thread: it may call other gfs_etcd functions, but not
 * gfs_etcd_watch_stop() of its own watch. */
typedef void (*gfs_etcd_watch_fn)(void *arg, const struct gfs_etcd_event *ev,
				  size_t n, int64_t header_rev);
/* Trouble: fatal = false while the stream is down and being reconnected
 * (rc says why, e.g. -ECONNREFUSED); fatal = true when the watch ended for
 * good (-ESTALE: the revision to resume from was compacted; the caller
 * re-reads and starts a new watch).  msg is borrowed for the call. */
typedef void (*gfs_etcd_watch_err_fn)(void *arg, int rc, bool fatal, const char *msg);

/* Watches [key, end) (end NULL: the one key) from start_rev (0 = from now)
 * on a thread of its own (on_error may be NULL).  The stream goes to the endpoints in turn; when
 * it drops it reconnects (backoff 50 ms doubling to 1 s) from the last
 * delivered revision + 1, so no event is lost or delivered twice.  Returns
 * once the first stream is created (or fails: then no thread is left). */
int gfs_etcd_watch_start(struct gfs_etcd *e, const void *key, size_t klen,
			 const void *end, size_t elen, int64_t start_rev,
			 gfs_etcd_watch_fn on_events, gfs_etcd_watch_err_fn on_error,
			 void *arg, struct gfs_etcd_watch **out, struct gfs_diag *d);
/* Stops the stream and joins the thread; no callback runs after it
 * returns.  NULL is a no-op. */
void gfs_etcd_watch_stop(struct gfs_etcd_watch *w);

/* How many times a watch of e found its stream silent for 5 s and checked
 * that its member answers (one status request, 1 s), and how many of those
 * checks found it not answering (the stream was then resumed on the next
 * endpoint).  See etcd_watch.c, invariant 5. */
void gfs_etcd_watch_alive_stats(struct gfs_etcd *e, uint64_t *checks, uint64_t *failed);

#endif
