/* lease_etcd.h - per-table writer leases and graph-version holds on etcd,
 * with fencing: the etcd twin of src/lock.h for the etcd manifest backend
 * (docs/multi-host.md §4).
 *
 * A session is one etcd lease of one process on one store, kept alive from
 * a thread every TTL/3.  Every lease key and hold key the process takes is
 * attached to it, so they all end together when the process stops renewing.
 * Once the session notices that its lease may be gone (etcd said so, or no
 * keepalive succeeded for a whole TTL) it is *lost* for good: every call
 * fails with GFS_ELEASE ("lease lost: paused past its TTL of 2 s; the
 * operation was left for recovery") and nothing is re-granted behind the
 * caller's back; the caller opens a new session for new work.
 *
 *     struct gfs_lease_session *s;
 *     struct gfs_lease_opts o = {.ttl_s = 10};
 *     rc = gfs_lease_session_open(e, &o, &s, &d);         e: borrowed client
 *     rc = gfs_lease_tables(s, tables, modes, n, GFS_LOCK_WAIT, 30000, &ls, &d);
 *     gfs_lease_fence_cmps(ls, &cmps, &nc);     add to every publish /
 *     rc = gfs_etcd_txn(e, cmps+own, ...);       sidecar change / audit Txn
 *     if (!res.succeeded) rc = gfs_lease_verify(ls, &d);   GFS_ELEASE: fenced
 *     gfs_lease_release(ls, &d);                 deletes the keys, frees ls
 *     gfs_lease_session_close(s);                revokes the etcd lease
 *
 * Keys under the client's PREFIX (H = the lockset's holder name,
 * "<session lease id in hex>.<n>", unique in the cluster):
 *     PREFIX/lease/<table>/x/H   an exclusive lease of table
 *     PREFIX/lease/<table>/s/H   a shared lease of table
 *     PREFIX/hold/<N>/<session>  graph version N is held (a mount reads it)
 *     PREFIX/gcfence/<N>         gc removes N (no new hold may start)
 * each attached to its session's etcd lease, value a small JSON object
 * {holder, pid, host, mode, since_ns}.  A lease key's create_revision is
 * its fencing token.
 *
 * Thread safety: a session may be used by several threads at once; a
 * lockset by one thread at a time.  Locksets must be released before their
 * session is closed. */
#ifndef GFS_LEASE_ETCD_H
#define GFS_LEASE_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd.h"
#include "lock.h"
#include "util.h"

struct gfs_lease_session;
struct gfs_leaseset;

struct gfs_lease_opts {
	int64_t ttl_s;     /* 0 = 10; etcd raises it to its minimum (2 s with
			      the test cluster's 1.3 s election timeout) */
	const char *host;  /* written into each key's value; NULL = gethostname() */
	/* Called once per wait when gfs_lease_tables / gfs_lease_hold_take
	 * starts waiting (the watch is running): what is waited for and who
	 * holds it (the holder key's JSON value; "" if it went meanwhile). */
	void (*on_wait)(void *arg, const char *what, const char *holder_json);
	void *on_wait_arg;
};

/* Grants the etcd lease (TTL o->ttl_s) and starts the keepalive thread.
 * e is borrowed (used for the keys; it must outlive the session); the
 * keepalives go through a client of their own to the same endpoints with a
 * per-request timeout of TTL/3, so an unanswered keepalive never delays the
 * next one past the TTL.  Returns a new session; _close frees it. */
int gfs_lease_session_open(struct gfs_etcd *e, const struct gfs_lease_opts *o,
			   struct gfs_lease_session **out, struct gfs_diag *d);
/* Stops the keepalive thread and revokes the etcd lease (every key of the
 * session goes at once); NULL is a no-op. */
void gfs_lease_session_close(struct gfs_lease_session *s);
/* 0 while the session is alive, GFS_ELEASE (and why, in d) once lost.
 * Lost means: etcd answered that the lease no longer exists, or no
 * keepalive succeeded for a whole TTL (measured on CLOCK_BOOTTIME from the
 * moment the last successful keepalive was sent, so a process stopped or
 * suspended past its TTL finds itself lost when it resumes, before any
 * keepalive thread has run). */
int gfs_lease_session_check(struct gfs_lease_session *s, struct gfs_diag *d);
/* The etcd lease id; its hex form names the session's hold keys. */
int64_t gfs_lease_session_id(const struct gfs_lease_session *s);
/* The TTL etcd granted, in seconds. */
int64_t gfs_lease_session_ttl(const struct gfs_lease_session *s);

/* ---- table leases: the etcd twin of gfs_lock_tables() ------------------ */
/* Takes the leases in table-name order, one Txn each (exclusive wins when a
 * table is named twice):
 *   EX: succeeds only when no key exists under PREFIX/lease/<table>/
 *       (compare version == 0 over that range);
 *   SH: succeeds only when no key exists under PREFIX/lease/<table>/x/.
 * GFS_LOCK_TRY: -EWOULDBLOCK if one is held elsewhere.  GFS_LOCK_WAIT:
 * waits on a watch of the table's lease directory (no polling) for a
 * deletion, at most wait_ms in all (0 = 30000): -ETIMEDOUT then, naming the
 * holder.  Either way, on failure it holds none.  GFS_ELEASE when the
 * session is (or becomes, while waiting) lost.  Returns a new lockset. */
int gfs_lease_tables(struct gfs_lease_session *s, const char *const *tables,
		     const enum gfs_lock_mode *modes, size_t n, unsigned flags,
		     unsigned wait_ms, struct gfs_leaseset **out, struct gfs_diag *d);
/* Deletes the lockset's keys (one Txn) and frees it, whatever the Txn's
 * outcome (the keys die with the session's lease anyway).  NULL: 0. */
int gfs_lease_release(struct gfs_leaseset *ls, struct gfs_diag *d);
/* The holder name to record with the operation (sidecar), so a recovery
 * sweep can ask whether its owner is gone.  Borrowed, valid until release. */
const char *gfs_leaseset_holder(const struct gfs_leaseset *ls);
/* The fencing token of table's lease (its key's create_revision), 0 if the
 * lockset does not hold table. */
int64_t gfs_leaseset_token(const struct gfs_leaseset *ls, const char *table);

/* Fencing: the compares every publish, sidecar change and audit write of
 * the lockset's holder must carry in its Txn: create_revision == token for
 * each held key.  If the lease expired the keys are gone (a later lease of
 * the table has another key and token), so the Txn fails whatever the
 * writer believes.  Borrowed, valid until release; *n = held tables. */
void gfs_lease_fence_cmps(const struct gfs_leaseset *ls,
			  const struct gfs_etcd_cmp **cmps, size_t *n);
/* After a Txn carrying the fence compares failed: 0 if every key is still
 * the lockset's (the failure was another compare: retry), GFS_ELEASE if one
 * is gone or changed (then the session is lost too: "lease lost: ..."). */
int gfs_lease_verify(struct gfs_leaseset *ls, struct gfs_diag *d);

/* "Owner gone": the compares that hold only when holder has no key under
 * table's lease directory (version == 0 of its x/ and s/ keys), for the Txn
 * of a recovery sweep that resolves holder's sidecar.  So a sweep and the
 * owner's publish can never both commit.  Embedded: _release. */
struct gfs_lease_gone {
	char *keys[2];
	struct gfs_etcd_cmp cmps[2];
};
int gfs_lease_gone_init(struct gfs_lease_gone *g, const char *prefix,
			const char *table, const char *holder);
void gfs_lease_gone_release(struct gfs_lease_gone *g);

/* ---- graph-version holds: the etcd twin of gfs_hold_*() ----------------- */
/* Puts PREFIX/hold/<n>/<session> unless PREFIX/gcfence/<n> exists (one
 * Txn).  Taking a hold the session has is a no-op.  While gc fences n:
 * GFS_LOCK_TRY gives -EWOULDBLOCK, GFS_LOCK_WAIT watches the fence key
 * until it goes, at most wait_ms (0 = 30000). */
int gfs_lease_hold_take(struct gfs_lease_session *s, uint64_t n, unsigned flags,
			unsigned wait_ms, struct gfs_diag *d);
int gfs_lease_hold_drop(struct gfs_lease_session *s, uint64_t n, struct gfs_diag *d);
/* Whether a session other than s holds n. */
int gfs_lease_hold_probe(struct gfs_lease_session *s, uint64_t n, bool *held,
			 struct gfs_diag *d);
/* gc's fence: one Txn that puts PREFIX/gcfence/<n> (on s's lease) only when
 * no key exists under PREFIX/hold/<n>/; -EWOULDBLOCK (nothing kept) when n
 * is held.  f receives the compare gc's commit Txn carries
 * (create_revision of the fence key == its token), so a gc whose lease
 * expired cannot commit either.  Embedded: f is released by _unfence. */
struct gfs_lease_fence {
	char *key;
	struct gfs_etcd_cmp cmp;
};
int gfs_lease_hold_fence(struct gfs_lease_session *s, uint64_t n,
			 struct gfs_lease_fence *f, struct gfs_diag *d);
/* Deletes the fence key (if still f's) and releases f. */
int gfs_lease_hold_unfence(struct gfs_lease_session *s, struct gfs_lease_fence *f,
			   struct gfs_diag *d);

#endif
