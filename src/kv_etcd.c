/* kv_etcd.c - the etcd backend of kv.h (docs/multi-host.md §2, §3).
 *
 * A store whose FORMAT names "manifest etcd://H:P,.../PREFIX" keeps its
 * manifest in etcd, over the client of etcd.c.  Key layout (docs/format.md
 * "The manifest on etcd"):
 *
 *   PREFIX/dbs/<db>        marker: sub-database <db> exists (has_db)
 *   PREFIX/gen/<db>        generation: put by every Txn that writes <db>
 *   PREFIX/<db>/<ikey>     a record; its value is the record's bytes
 *
 * ikey is the record's key bytes in a plain database.  In a DUPSORT one
 * (audit_by_op) each (key, value) pair is its own etcd key:
 *   ikey = esc(key) 0x00 0x00 value     esc: every 0x00 byte -> 0x00 0x01
 * so that memcmp order of ikeys is the order of (key, value) pairs: a key
 * that is a prefix of another ends in 0x00 0x00, below anything the longer
 * key has there (0x00 0x01 or a byte > 0x00).  The etcd value holds the
 * value again (the cursor hands it out without decoding).
 *
 * Invariants (docs/invariants.md 280-289):
 *  1. A read transaction is one etcd revision R: the first request's
 *     answer fixes it, every later get and cursor page is read at R.
 *  2. A write transaction reads at R and sees its own writes (get and
 *     cursors read the snapshot merged with the buffered puts and deletes;
 *     a delete hides, a drop hides the whole snapshot of its db).  Its
 *     commit is one etcd Txn: compares mod_revision(PREFIX/gen/<db>) < R+1
 *     for every db whose snapshot it read (a gen key never written has
 *     mod_revision 0), plus the fence hook's compares; success = the
 *     buffered writes and a put of each written db's gen key.  Any Txn
 *     that wrote a db after R moved its gen key, so the compare fails and
 *     the callback runs again (kv.h's write-callback rule) on a new R:
 *     serializable, coarse (per db), never a lost update.
 *  3. A failed fence compare is never retried: the write ends with -ENOLCK
 *     ("lease lost"), found by a failure-branch range of the fence keys.
 *  4. Conflicts are retried RETRIES times with jittered exponential
 *     backoff between runs (never inside a callback), then -EAGAIN.
 *  5. One etcd client per store URL per process (a refcounted registry, as
 *     kv_lmdb.c's); entries of a parent are ignored after fork().  The
 *     store's setup runs once per process, in the first open's first
 *     transaction.
 *  6. A db created by a write transaction (its marker put) exists for the
 *     process's other transactions only after the commit (invariant 272).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "etcd.h"
#include "kv.h"
#include "kv_etcd.h"
#include "util.h"

#define MAX_DBS 8
#define PAGE 256     /* keys per cursor page */
#define RETRIES 64   /* conflicts before -EAGAIN (invariant 4) */

struct estore {
	struct estore *next;     /* registry_lock */
	int refs;                /* registry_lock */
	pid_t pid;
	char *url;
	struct gfs_etcd *e;
	bool rdonly;
	unsigned n_dbs;
	const char *const *names;
	unsigned flags[MAX_DBS];
	char *dbpfx[MAX_DBS];    /* "PREFIX/<db>/" */
	size_t dbpfx_len[MAX_DBS];
	char *gen[MAX_DBS];      /* "PREFIX/gen/<db>" */
	char *mark[MAX_DBS];     /* "PREFIX/dbs/<db>" */
	unsigned has;            /* atomic: committed dbs */
	void *user;
	pthread_mutex_t fence_lock;
	gfs_kv_etcd_fence_fn fence;
	void *fence_arg;
};

struct ekv {
	struct gfs_kv base;
	struct estore *s;
	bool rdonly;
};

/* A buffered write: ikey -> value, or a delete. */
struct ov {
	char *k;
	size_t kl;
	char *v;
	size_t vl;
	bool del;
};

struct dbv {
	struct ov *a;
	size_t n, cap;
	bool dropped, read, written;
};

struct chunk {
	struct chunk *next;
	char data[];
};

struct etxn {
	struct gfs_kv_txn base;
	struct estore *s;
	bool write;
	int64_t rev;               /* 0 until the first answer */
	struct dbv db[MAX_DBS];
	unsigned has, created;
	struct chunk *arena;
	struct gfs_diag diag;      /* the first etcd failure */
	int err;
};

struct ecur {
	struct gfs_kv_cursor base;
	struct etxn *t;
	unsigned db;
	struct gfs_etcd_page pg;   /* snapshot keys from lo on, ascending */
	char *lo;
	size_t lol;
	bool pg_ok;
	char *pos;                 /* the current ikey (arena), NULL: none */
	size_t posl;
};

static const struct gfs_kv_ops *const ops = &gfs_kv_etcd;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct estore *registry;

/* ---- small helpers -------------------------------------------------------- */

static void *arena_alloc(struct etxn *t, size_t n)
{
	struct chunk *c = malloc(sizeof *c + n + 1);
	if (!c)
		return NULL;
	c->next = t->arena;
	t->arena = c;
	c->data[n] = 0;
	return c->data;
}

static char *arena_dup(struct etxn *t, const void *p, size_t n)
{
	char *s = arena_alloc(t, n);
	if (s && n)
		memcpy(s, p, n);
	return s;
}

static int bcmp_(const void *a, size_t al, const void *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

static char *cat3(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s%s%s", a, b, c);
	return s;
}

static bool dupsort(struct etxn *t, unsigned db)
{
	return t->s->flags[db] & GFS_KV_DB_DUPSORT;
}

/* esc(k) 0x00 0x00 (the DUPSORT ikey's key part; header comment). */
static char *dup_enc(struct etxn *t, const struct gfs_kv_val *k,
		     const struct gfs_kv_val *v, size_t *out)
{
	const unsigned char *p = k->data;
	size_t n = 0, vl = v ? v->size : 0;
	for (size_t i = 0; i < k->size; i++)
		n += p[i] ? 1 : 2;
	char *s = arena_alloc(t, n + 2 + vl);
	if (!s)
		return NULL;
	n = 0;
	for (size_t i = 0; i < k->size; i++) {
		s[n++] = (char)p[i];
		if (!p[i])
			s[n++] = 1;
	}
	s[n++] = 0;
	s[n++] = 0;
	if (vl)
		memcpy(s + n, v->data, vl);
	*out = n + vl;
	return s;
}

/* The key part of a DUPSORT ikey, decoded into the arena. */
static int dup_dec(struct etxn *t, const char *ik, size_t il,
		   struct gfs_kv_val *k)
{
	char *s = arena_alloc(t, il);
	size_t n = 0, i = 0;
	if (!s)
		return -ENOMEM;
	for (; i + 1 < il; i++) {
		if (ik[i] == 0 && ik[i + 1] == 0) {
			k->data = s;
			k->size = n;
			return 0;
		}
		s[n++] = ik[i];
		if (ik[i] == 0)
			i++;
	}
	gfs_corrupt_note("manifest record on etcd is corrupt: a DUPSORT key "
			 "without its terminator");
	return GFS_ECORRUPT;
}

/* Length of the key part (up to and with 0x00 0x00) of a DUPSORT ikey. */
static size_t dup_keylen(const char *ik, size_t il)
{
	for (size_t i = 0; i + 1 < il; i++) {
		if (ik[i] == 0 && ik[i + 1] == 0)
			return i + 2;
		if (ik[i] == 0)
			i++;
	}
	return il;
}

static char *full_key(struct etxn *t, unsigned db, const char *ik, size_t il,
		      size_t *out)
{
	size_t pl = t->s->dbpfx_len[db];
	char *s = arena_alloc(t, pl + il);
	if (!s)
		return NULL;
	memcpy(s, t->s->dbpfx[db], pl);
	if (il)
		memcpy(s + pl, ik, il);
	*out = pl + il;
	return s;
}

/* Records the first etcd failure of the txn (its diag is the write's). */
static int etcd_fail(struct etxn *t, int rc, const struct gfs_diag *d)
{
	if (!t->err) {
		t->err = rc;
		t->diag = *d;
	}
	return rc;
}

/* ---- the snapshot: ranges at R ------------------------------------------- */

static int snap_range(struct etxn *t, unsigned db, const char *from,
		      size_t fl, bool desc, const char *to, size_t tl,
		      int64_t limit, struct gfs_etcd_page *pg)
{
	struct gfs_diag d = { { 0 } };
	size_t kl, el;
	char *k = full_key(t, db, from, fl, &kl), *end;
	int rc;

	memset(pg, 0, sizeof *pg);
	if (to)
		end = full_key(t, db, to, tl, &el);
	else
		end = gfs_etcd_prefix_end(t->s->dbpfx[db], t->s->dbpfx_len[db],
					  &end, &el) ? NULL : end;
	if (!k || !end) {
		if (!to)
			free(end);
		return -ENOMEM;
	}
	rc = (desc ? gfs_etcd_range_desc : gfs_etcd_range)(
		t->s->e, k, kl, end, el, t->rev, limit, pg, &d);
	if (!to)
		free(end);
	if (rc)
		return etcd_fail(t, rc, &d);
	if (!t->rev)
		t->rev = pg->header_revision;
	t->db[db].read = true;
	return 0;
}

/* ---- the buffered writes ----------------------------------------------- */

/* Index of the first entry >= (or > if excl) ik. */
static size_t ov_find(const struct dbv *v, const char *ik, size_t il, bool excl)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = bcmp_(v->a[mid].k, v->a[mid].kl, ik, il);
		if (c < 0 || (excl && c == 0))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct ov *ov_get(struct dbv *v, const char *ik, size_t il)
{
	size_t i = ov_find(v, ik, il, false);
	return i < v->n && !bcmp_(v->a[i].k, v->a[i].kl, ik, il) ? &v->a[i] : NULL;
}

static int ov_set(struct etxn *t, unsigned db, const char *ik, size_t il,
		  const void *val, size_t vl, bool del)
{
	struct dbv *v = &t->db[db];
	size_t i = ov_find(v, ik, il, false);
	char *vv = del ? NULL : arena_dup(t, val, vl);

	if (!del && !vv)
		return -ENOMEM;
	v->written = true;
	if (i < v->n && !bcmp_(v->a[i].k, v->a[i].kl, ik, il)) {
		v->a[i].v = vv;
		v->a[i].vl = vl;
		v->a[i].del = del;
		return 0;
	}
	char *kk = arena_dup(t, ik, il);
	if (!kk)
		return -ENOMEM;
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		struct ov *a = realloc(v->a, cap * sizeof *a);
		if (!a)
			return -ENOMEM;
		v->a = a;
		v->cap = cap;
	}
	memmove(&v->a[i + 1], &v->a[i], (v->n - i) * sizeof *v->a);
	v->a[i] = (struct ov){ kk, il, vv, vl, del };
	v->n++;
	return 0;
}

/* ---- the merged view: cursors -------------------------------------------- */

/* The first snapshot ikey >= from (> if excl) of the cursor's db, from the
 * cached page or a new one.  *kv NULL: none. */
static int snap_next(struct ecur *c, const char *from, size_t fl, bool excl,
		     const struct gfs_etcd_kv **kv)
{
	struct etxn *t = c->t;
	size_t pl = t->s->dbpfx_len[c->db];

	*kv = NULL;
	if (t->db[c->db].dropped)
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		if (c->pg_ok && bcmp_(c->lo, c->lol, from, fl) <= 0) {
			const struct gfs_etcd_page *p = &c->pg;
			bool covered = !p->more;
			for (size_t i = 0; i < p->n; i++) {
				int cmp = bcmp_(p->kvs[i].key + pl,
						p->kvs[i].key_len - pl, from, fl);
				if (cmp > 0 || (cmp == 0 && !excl)) {
					*kv = &p->kvs[i];
					return 0;
				}
			}
			if (covered)
				return 0;
		}
		if (pass)
			break;
		/* a new page from `from` on */
		gfs_etcd_page_release(&c->pg);
		c->pg_ok = false;
		char *lo = arena_alloc(t, fl + 1);
		if (!lo)
			return -ENOMEM;
		if (fl)
			memcpy(lo, from, fl);
		lo[fl] = 0;
		size_t lol = fl + (excl ? 1 : 0);
		int rc = snap_range(t, c->db, lo, lol, false, NULL, 0, PAGE, &c->pg);
		if (rc)
			return rc;
		c->lo = lo;
		c->lol = lol;
		c->pg_ok = true;
		from = lo;
		fl = lol;
		excl = false;
	}
	return 0;
}

/* Moves to the first merged entry >= from (> if excl); sets k, v. */
static int cur_seek(struct ecur *c, const char *from, size_t fl, bool excl,
		    struct gfs_kv_val *k, struct gfs_kv_val *v)
{
	struct etxn *t = c->t;
	struct dbv *ov = &t->db[c->db];
	size_t pl = t->s->dbpfx_len[c->db];

	for (;;) {
		const struct gfs_etcd_kv *s;
		int rc = snap_next(c, from, fl, excl, &s);
		if (rc)
			return rc;
		size_t oi = ov_find(ov, from, fl, excl);
		const struct ov *o = oi < ov->n ? &ov->a[oi] : NULL;
		const char *ik;
		size_t il;
		const void *val;
		size_t vl;
		bool hidden;

		if (!s && !o) {
			c->pos = NULL;
			return GFS_KV_NOTFOUND;
		}
		int cmp = !s ? 1 : !o ? -1
			  : bcmp_(s->key + pl, s->key_len - pl, o->k, o->kl);
		if (cmp < 0) {
			ik = s->key + pl;
			il = s->key_len - pl;
			val = s->value;
			vl = s->value_len;
			hidden = false;
		} else {
			ik = o->k;
			il = o->kl;
			val = o->v;
			vl = o->vl;
			hidden = o->del;
		}
		char *pos = arena_dup(t, ik, il);
		if (!pos)
			return -ENOMEM;
		c->pos = pos;
		c->posl = il;
		if (hidden) {
			from = pos;
			fl = il;
			excl = true;
			continue;
		}
		if (dupsort(t, c->db)) {
			rc = dup_dec(t, pos, il, k);
			v->data = arena_dup(t, val, vl);
			v->size = vl;
		} else {
			k->data = pos;
			k->size = il;
			v->data = arena_dup(t, val, vl);
			v->size = vl;
		}
		if (!rc && !v->data)
			rc = -ENOMEM;
		return rc;
	}
}

/* The last merged entry: the highest buffered put against the highest
 * snapshot key that no buffered write covers. */
static int cur_last(struct ecur *c, struct gfs_kv_val *k, struct gfs_kv_val *v)
{
	struct etxn *t = c->t;
	struct dbv *ov = &t->db[c->db];
	size_t pl = t->s->dbpfx_len[c->db];
	const struct ov *best_o = NULL;
	char *best = NULL, *hi = NULL, *bestv = NULL;
	size_t bestl = 0, hil = 0, bestvl = 0;
	int rc = 0;

	for (size_t i = ov->n; i-- > 0;)
		if (!ov->a[i].del) {
			best_o = &ov->a[i];
			break;
		}
	/* At most ov->n snapshot keys are hidden by buffered writes, so a
	 * first page of ov->n + 1 keys holds the answer if the snapshot
	 * does: a read transaction asks for one key, not a page of values
	 * (the live view reads main's head this way on every request). */
	int64_t limit = ov->n < PAGE ? (int64_t)ov->n + 1 : PAGE;

	while (!ov->dropped) {
		struct gfs_etcd_page p;
		bool found = false;
		rc = snap_range(t, c->db, "", 0, true, hi, hil, limit, &p);
		limit = PAGE;
		if (rc)
			return rc;
		for (size_t i = 0; i < p.n && !found; i++) {
			const char *ik = p.kvs[i].key + pl;
			size_t il = p.kvs[i].key_len - pl;
			if (best_o && bcmp_(ik, il, best_o->k, best_o->kl) < 0) {
				found = true; /* the buffered one is higher */
				break;
			}
			if (ov_get(ov, ik, il))
				continue;
			best = arena_dup(t, ik, il);
			bestl = il;
			/* its value too: no second request to read it */
			bestvl = p.kvs[i].value_len;
			bestv = arena_dup(t, p.kvs[i].value, bestvl);
			if (!best || !bestv)
				rc = -ENOMEM;
			found = true;
		}
		if (!found && p.more && p.n) {
			hil = p.kvs[p.n - 1].key_len - pl;
			hi = arena_dup(t, p.kvs[p.n - 1].key + pl, hil);
			if (!hi)
				rc = -ENOMEM;
		}
		bool again = !found && p.more && p.n && !rc;
		gfs_etcd_page_release(&p);
		if (rc || !again)
			break;
	}
	if (rc)
		return rc;
	if (!best && !best_o) {
		c->pos = NULL;
		return GFS_KV_NOTFOUND;
	}
	if (best) {
		/* a snapshot key no buffered write covers: it is the entry;
		 * the next move reads a page from it (pg_ok false) */
		gfs_etcd_page_release(&c->pg);
		c->pg_ok = false;
		c->pos = best;
		c->posl = bestl;
		v->data = bestv;
		v->size = bestvl;
		if (dupsort(t, c->db))
			return dup_dec(t, best, bestl, k);
		k->data = best;
		k->size = bestl;
		return 0;
	}
	/* a buffered put: position there and read it through the merged view */
	return cur_seek(c, best_o->k, best_o->kl, false, k, v);
}

/* ---- kv.h: data ---------------------------------------------------------- */

static int ikey_of(struct etxn *t, unsigned db, const struct gfs_kv_val *k,
		   const struct gfs_kv_val *v, char **ik, size_t *il)
{
	if (dupsort(t, db)) {
		*ik = dup_enc(t, k, v, il);
		return *ik ? 0 : -ENOMEM;
	}
	*ik = k->data;
	*il = k->size;
	return 0;
}

static bool etcd_txn_has_db(struct gfs_kv_txn *txn, unsigned db)
{
	struct etxn *t = (struct etxn *)txn;
	return db < MAX_DBS && (t->has & 1u << db);
}

static int etcd_db_create(struct gfs_kv_txn *txn, unsigned db)
{
	struct etxn *t = (struct etxn *)txn;

	if (db >= t->s->n_dbs || !t->write)
		return -EINVAL;
	t->has |= 1u << db;
	t->created |= 1u << db;
	return 0;
}

static int cursor_new(struct etxn *t, unsigned db, struct ecur **out)
{
	struct ecur *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->base.ops = ops;
	c->t = t;
	c->db = db;
	*out = c;
	return 0;
}

static void cursor_free(struct ecur *c)
{
	gfs_etcd_page_release(&c->pg);
	free(c);
}

/* The first value of k (DUPSORT) or k's value, through the merged view. */
static int lookup(struct etxn *t, unsigned db, const struct gfs_kv_val *k,
		  struct gfs_kv_val *v)
{
	if (db >= t->s->n_dbs || !(t->has & 1u << db))
		return -EINVAL;
	if (!dupsort(t, db)) {
		struct ov *o = ov_get(&t->db[db], k->data, k->size);
		struct gfs_etcd_page p;
		if (o) {
			if (o->del)
				return GFS_KV_NOTFOUND;
			*v = (struct gfs_kv_val){ o->vl, o->v };
			return 0;
		}
		if (t->db[db].dropped)
			return GFS_KV_NOTFOUND;
		struct gfs_diag d = { { 0 } };
		size_t kl;
		char *fk = full_key(t, db, k->data, k->size, &kl);
		if (!fk)
			return -ENOMEM;
		int rc = gfs_etcd_range(t->s->e, fk, kl, NULL, 0, t->rev, 0, &p, &d);
		if (rc)
			return etcd_fail(t, rc, &d);
		if (!t->rev)
			t->rev = p.header_revision;
		t->db[db].read = true;
		rc = GFS_KV_NOTFOUND;
		if (p.n) {
			v->data = arena_dup(t, p.kvs[0].value, p.kvs[0].value_len);
			v->size = p.kvs[0].value_len;
			rc = v->data ? 0 : -ENOMEM;
		}
		gfs_etcd_page_release(&p);
		return rc;
	}
	struct ecur *c;
	struct gfs_kv_val kk;
	size_t el;
	char *e = dup_enc(t, k, NULL, &el);
	int rc = e ? cursor_new(t, db, &c) : -ENOMEM;
	if (rc)
		return rc;
	rc = cur_seek(c, e, el, false, &kk, v);
	if (!rc && (c->posl < el || memcmp(c->pos, e, el)))
		rc = GFS_KV_NOTFOUND;
	cursor_free(c);
	return rc;
}

static int etcd_get(struct gfs_kv_txn *txn, unsigned db,
		    const struct gfs_kv_val *k, struct gfs_kv_val *v)
{
	return lookup((struct etxn *)txn, db, k, v);
}

static int etcd_put(struct gfs_kv_txn *txn, unsigned db,
		    const struct gfs_kv_val *k, const struct gfs_kv_val *v,
		    unsigned flags)
{
	struct etxn *t = (struct etxn *)txn;
	struct gfs_kv_val old;
	char *ik;
	size_t il;
	int rc;

	if (!t->write)
		return -EROFS;
	if (db >= t->s->n_dbs || !(t->has & 1u << db))
		return -EINVAL;
	if (flags & GFS_KV_NOOVERWRITE) {
		rc = lookup(t, db, k, &old);
		if (!rc)
			return GFS_KV_KEYEXIST;
		if (rc != GFS_KV_NOTFOUND)
			return rc;
	}
	/* GFS_KV_APPEND is a hint: the buffered write goes in key order all
	 * the same, and etcd has no cheaper append. */
	rc = ikey_of(t, db, k, v, &ik, &il);
	return rc ? rc : ov_set(t, db, ik, il, v->data, v->size, false);
}

static int etcd_del(struct gfs_kv_txn *txn, unsigned db,
		    const struct gfs_kv_val *k)
{
	struct etxn *t = (struct etxn *)txn;
	struct gfs_kv_val v, kk;
	int rc;

	if (!t->write)
		return -EROFS;
	if (!dupsort(t, db)) {
		rc = lookup(t, db, k, &v);
		return rc ? rc : ov_set(t, db, k->data, k->size, NULL, 0, true);
	}
	/* every value of k: each (k, value) ikey in the merged view */
	struct ecur *c;
	size_t el;
	char *e = db < t->s->n_dbs && (t->has & 1u << db)
			  ? dup_enc(t, k, NULL, &el) : NULL;
	if (!e)
		return db < t->s->n_dbs ? -ENOMEM : -EINVAL;
	if ((rc = cursor_new(t, db, &c)))
		return rc;
	size_t n = 0;
	rc = cur_seek(c, e, el, false, &kk, &v);
	while (!rc && c->posl >= el && !memcmp(c->pos, e, el)) {
		char *pos = c->pos;
		size_t pl = c->posl;
		rc = ov_set(t, db, pos, pl, NULL, 0, true);
		n++;
		if (!rc)
			rc = cur_seek(c, pos, pl, true, &kk, &v);
	}
	cursor_free(c);
	if (rc == GFS_KV_NOTFOUND || !rc)
		rc = n ? 0 : GFS_KV_NOTFOUND;
	return rc;
}

static int etcd_drop(struct gfs_kv_txn *txn, unsigned db)
{
	struct etxn *t = (struct etxn *)txn;

	if (!t->write)
		return -EROFS;
	if (db >= t->s->n_dbs || !(t->has & 1u << db))
		return -EINVAL;
	t->db[db].n = 0;
	t->db[db].dropped = true;
	t->db[db].written = true;
	return 0;
}

static int etcd_cursor_open(struct gfs_kv_txn *txn, unsigned db,
			    struct gfs_kv_cursor **out)
{
	struct etxn *t = (struct etxn *)txn;
	struct ecur *c;
	int rc;

	*out = NULL;
	if (db >= t->s->n_dbs || !(t->has & 1u << db))
		return -EINVAL;
	if ((rc = cursor_new(t, db, &c)))
		return rc;
	*out = &c->base;
	return 0;
}

static int etcd_cursor_get(struct gfs_kv_cursor *cur, struct gfs_kv_val *k,
			   struct gfs_kv_val *v, enum gfs_kv_cursor_op op)
{
	struct ecur *c = (struct ecur *)cur;
	struct etxn *t = c->t;
	char *ik, *prev;
	size_t il, prevl, prevk;
	int rc;

	switch (op) {
	case GFS_KV_FIRST:
		return cur_seek(c, "", 0, false, k, v);
	case GFS_KV_LAST:
		return cur_last(c, k, v);
	case GFS_KV_NEXT:
		if (!c->pos)
			return cur_seek(c, "", 0, false, k, v);
		return cur_seek(c, c->pos, c->posl, true, k, v);
	case GFS_KV_SET:
	case GFS_KV_SET_RANGE:
		if (dupsort(t, c->db)) {
			ik = dup_enc(t, k, NULL, &il);
			if (!ik)
				return -ENOMEM;
		} else {
			ik = arena_dup(t, k->data, k->size);
			il = k->size;
			if (!ik)
				return -ENOMEM;
		}
		rc = cur_seek(c, ik, il, false, k, v);
		if (rc || op == GFS_KV_SET_RANGE)
			return rc;
		if (dupsort(t, c->db) ? c->posl < il || memcmp(c->pos, ik, il)
				      : bcmp_(c->pos, c->posl, ik, il)) {
			return GFS_KV_NOTFOUND;
		}
		return 0;
	case GFS_KV_NEXT_DUP:
		if (!c->pos || !dupsort(t, c->db))
			return c->pos ? GFS_KV_NOTFOUND : EINVAL;
		prev = c->pos;
		prevl = c->posl;
		prevk = dup_keylen(prev, prevl);
		rc = cur_seek(c, prev, prevl, true, k, v);
		if (rc == GFS_KV_NOTFOUND ||
		    (!rc && (c->posl < prevk || memcmp(c->pos, prev, prevk)))) {
			/* LMDB leaves the cursor where it was */
			c->pos = prev;
			c->posl = prevl;
			return GFS_KV_NOTFOUND;
		}
		return rc;
	}
	return EINVAL;
}

static void etcd_cursor_close(struct gfs_kv_cursor *cur)
{
	cursor_free((struct ecur *)cur);
}

/* ---- transactions ---------------------------------------------------------- */

static void txn_init(struct etxn *t, struct estore *s, bool write)
{
	memset(t, 0, sizeof *t);
	t->base.ops = ops;
	t->s = s;
	t->write = write;
	t->has = __atomic_load_n(&s->has, __ATOMIC_ACQUIRE);
}

static void txn_free(struct etxn *t)
{
	for (unsigned i = 0; i < MAX_DBS; i++)
		free(t->db[i].a);
	while (t->arena) {
		struct chunk *c = t->arena;
		t->arena = c->next;
		free(c);
	}
}

/* kv.h's codes, translated when read/write return (kv.h). */
static int xl(int rc)
{
	if (rc == GFS_KV_NOTFOUND)
		return -ENOENT;
	if (rc == GFS_KV_KEYEXIST)
		return -EEXIST;
	if (rc > 0)
		return -rc;
	return rc;
}

static int etcd_read(struct gfs_kv *kv, gfs_kv_fn fn, void *ctx)
{
	struct estore *s = ((struct ekv *)kv)->s;
	struct etxn t;

	txn_init(&t, s, false);
	int rc = fn(&t.base, ctx);
	if (rc && t.err && rc == t.err)
		gfs_io_note(rc, t.diag.msg);
	txn_free(&t);
	return xl(rc);
}

struct opv {
	struct gfs_etcd_op *a;
	size_t n, cap;
};

static int opv_add(struct opv *o, const struct gfs_etcd_op *op)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 32;
		struct gfs_etcd_op *a = realloc(o->a, cap * sizeof *a);
		if (!a)
			return -ENOMEM;
		o->a = a;
		o->cap = cap;
	}
	o->a[o->n++] = *op;
	return 0;
}

int gfs_kv_etcd_cmps_add(struct gfs_kv_etcd_cmps *c, const struct gfs_etcd_cmp *cmp)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct gfs_etcd_cmp *a = realloc(c->a, cap * sizeof *a);
		if (!a)
			return -ENOMEM;
		c->a = a;
		c->cap = cap;
	}
	c->a[c->n++] = *cmp;
	return 0;
}

struct drop_scan {
	struct etxn *t;
	unsigned db;
	struct opv *ops;
};

/* A dropped db that gets new puts: delete each snapshot key no put
 * covers (etcd refuses a put inside a delete range of the same Txn). */
static int drop_each(void *arg, const struct gfs_etcd_kv *kv)
{
	struct drop_scan *ds = arg;
	struct etxn *t = ds->t;
	size_t pl = t->s->dbpfx_len[ds->db];
	char *k;

	if (ov_get(&t->db[ds->db], kv->key + pl, kv->key_len - pl))
		return 0;
	k = arena_dup(t, kv->key, kv->key_len);
	if (!k)
		return -ENOMEM;
	return opv_add(ds->ops, &(struct gfs_etcd_op){
		.kind = GFS_ETCD_DELETE, .key = k, .key_len = kv->key_len });
}

/* The Txn's success ops: every buffered write, the gen keys, markers. */
static int build_ops(struct etxn *t, struct opv *o)
{
	static const char gen_val[] = "g";
	int rc = 0;

	for (unsigned db = 0; db < t->s->n_dbs && !rc; db++) {
		struct dbv *v = &t->db[db];
		bool puts = false;
		for (size_t i = 0; i < v->n; i++)
			puts = puts || !v->a[i].del;
		if (v->dropped && !puts) {
			char *end;
			size_t el;
			rc = gfs_etcd_prefix_end(t->s->dbpfx[db], t->s->dbpfx_len[db],
						 &end, &el);
			char *e2 = rc ? NULL : arena_dup(t, end, el);
			if (!rc)
				free(end);
			if (!rc && !e2)
				rc = -ENOMEM;
			if (!rc)
				rc = opv_add(o, &(struct gfs_etcd_op){
					.kind = GFS_ETCD_DELETE,
					.key = t->s->dbpfx[db],
					.key_len = t->s->dbpfx_len[db],
					.end = e2, .end_len = el });
		} else if (v->dropped) {
			struct drop_scan ds = { t, db, o };
			struct gfs_diag d = { { 0 } };
			char *end;
			size_t el;
			rc = gfs_etcd_prefix_end(t->s->dbpfx[db], t->s->dbpfx_len[db],
						 &end, &el);
			if (!rc) {
				rc = gfs_etcd_range_each(t->s->e, t->s->dbpfx[db],
							 t->s->dbpfx_len[db], end, el,
							 t->rev, PAGE, drop_each, &ds,
							 NULL, &d);
				free(end);
				if (rc && rc != -ENOMEM)
					etcd_fail(t, rc, &d);
			}
		}
		for (size_t i = 0; i < v->n && !rc; i++) {
			if (v->dropped && !puts)
				break;
			size_t kl;
			char *k = full_key(t, db, v->a[i].k, v->a[i].kl, &kl);
			if (!k)
				rc = -ENOMEM;
			else if (v->a[i].del)
				rc = opv_add(o, &(struct gfs_etcd_op){
					.kind = GFS_ETCD_DELETE, .key = k, .key_len = kl });
			else
				rc = opv_add(o, &(struct gfs_etcd_op){
					.kind = GFS_ETCD_PUT, .key = k, .key_len = kl,
					.value = v->a[i].v, .value_len = v->a[i].vl });
		}
		if (!rc && v->written)
			rc = opv_add(o, &(struct gfs_etcd_op){
				.kind = GFS_ETCD_PUT, .key = t->s->gen[db],
				.key_len = strlen(t->s->gen[db]), .value = gen_val,
				.value_len = 1 });
		if (!rc && (t->created & 1u << db))
			rc = opv_add(o, &(struct gfs_etcd_op){
				.kind = GFS_ETCD_PUT, .key = t->s->mark[db],
				.key_len = strlen(t->s->mark[db]), .value = "1",
				.value_len = 1 });
	}
	return rc;
}

static bool cmp_holds_kv(const struct gfs_etcd_cmp *c, const struct gfs_etcd_kv *kv)
{
	int64_t n = 0;
	int r;

	if (c->target == GFS_ETCD_VALUE) {
		if (!kv)
			return false;
		r = bcmp_(kv->value, kv->value_len, c->value, c->value_len);
	} else {
		if (kv)
			n = c->target == GFS_ETCD_VERSION ? kv->version
			    : c->target == GFS_ETCD_CREATE ? kv->create_revision
							   : kv->mod_revision;
		r = n < c->num ? -1 : n > c->num;
	}
	switch (c->result) {
	case GFS_ETCD_EQ: return r == 0;
	case GFS_ETCD_NE: return r != 0;
	case GFS_ETCD_LT: return r < 0;
	case GFS_ETCD_GT: return r > 0;
	}
	return false;
}

/* etcd's rule: a compare over a range holds when it holds for every key
 * there; over no key, as for an absent key (a VALUE compare fails). */
static bool cmp_holds(const struct gfs_etcd_cmp *c, const struct gfs_etcd_page *p)
{
	if (!p || !p->n)
		return cmp_holds_kv(c, NULL);
	for (size_t i = 0; i < p->n; i++)
		if (!cmp_holds_kv(c, &p->kvs[i]))
			return false;
	return true;
}

static void backoff(unsigned attempt)
{
	unsigned max_us = 1000u << (attempt < 7 ? attempt : 7); /* to 128 ms */
	unsigned seed = (unsigned)getpid() ^ (unsigned)attempt ^
			(unsigned)gfs_now_ns();
	struct timespec ts;
	unsigned us = max_us / 2 + (unsigned)rand_r(&seed) % (max_us / 2 + 1);

	ts.tv_sec = us / 1000000;
	ts.tv_nsec = (long)(us % 1000000) * 1000;
	nanosleep(&ts, NULL);
}

enum commit_res { C_DONE, C_CONFLICT };

/* One attempt to commit a run (invariant 2).  0 with *res. */
static int commit(struct etxn *t, struct gfs_kv_etcd_cmps *fc,
		  enum commit_res *res, struct gfs_diag *d)
{
	struct gfs_kv_etcd_cmps cmps = { 0 };
	struct opv o = { 0 }, fail = { 0 };
	struct gfs_etcd_txn_result r = { 0 };
	int rc = build_ops(t, &o);

	*res = C_DONE;
	if (!rc && !o.n && !t->created)
		goto out; /* nothing written: nothing to commit */
	for (unsigned db = 0; db < t->s->n_dbs && !rc; db++)
		if (t->db[db].read && t->rev)
			rc = gfs_kv_etcd_cmps_add(&cmps, &(struct gfs_etcd_cmp){
				.target = GFS_ETCD_MOD, .result = GFS_ETCD_LT,
				.key = t->s->gen[db], .key_len = strlen(t->s->gen[db]),
				.num = t->rev + 1 });
	for (unsigned db = 0; db < t->s->n_dbs && !rc; db++)
		if (t->created & 1u << db)
			rc = gfs_kv_etcd_cmps_add(&cmps, &(struct gfs_etcd_cmp){
				.target = GFS_ETCD_VERSION, .result = GFS_ETCD_EQ,
				.key = t->s->mark[db], .key_len = strlen(t->s->mark[db]),
				.num = 0 });
	for (size_t i = 0; i < fc->n && !rc; i++) {
		rc = gfs_kv_etcd_cmps_add(&cmps, &fc->a[i]);
		if (!rc)
			rc = opv_add(&fail, &(struct gfs_etcd_op){
				.kind = GFS_ETCD_RANGE, .key = fc->a[i].key,
				.key_len = fc->a[i].key_len, .end = fc->a[i].end,
				.end_len = fc->a[i].end_len });
	}
	if (rc) {
		if (t->err)
			*d = t->diag;
		goto out;
	}
	rc = gfs_etcd_txn(t->s->e, cmps.a, cmps.n, o.a, o.n, fail.a, fail.n, &r, d);
	/* -E2BIG: the write is too big for the cluster, whatever the retry
	 * (gc.c then plans a smaller round) */
	if (rc == -EINVAL && strstr(d->msg, "too many operations")) {
		char msg[sizeof d->msg];
		snprintf(msg, sizeof msg, "%s", d->msg);
		gfs_diag_reset(d, "manifest write on etcd needs %zu operations and "
			     "%zu compares in one transaction, more than the "
			     "cluster's --max-txn-ops allows (etcd's default is "
			     "128; docs/multi-host.md asks for 1024): %s",
			     o.n, cmps.n, msg);
		rc = -E2BIG;
		goto out;
	}
	if (rc == -EINVAL && strstr(d->msg, "too large")) {
		char msg[sizeof d->msg];
		snprintf(msg, sizeof msg, "%s", d->msg);
		gfs_diag_reset(d, "manifest write on etcd is larger than the "
			     "cluster's --max-request-bytes allows (etcd's "
			     "default is 1.5 MiB): %s", msg);
		rc = -E2BIG;
		goto out;
	}
	if (rc || r.succeeded)
		goto out;
	for (size_t i = 0; i < fc->n && i < r.n; i++)
		if (!cmp_holds(&fc->a[i], &r.pages[i])) {
			gfs_diag_reset(d, "lease lost: the manifest write's fence "
				     "key '%.*s' no longer holds on etcd (%s), "
				     "so nothing was written; another writer "
				     "may hold the table now",
				     (int)fc->a[i].key_len,
				     (const char *)fc->a[i].key,
				     gfs_etcd_prefix(t->s->e));
			rc = -ENOLCK;
			goto out;
		}
	*res = C_CONFLICT;
out:
	gfs_etcd_txn_result_release(&r);
	free(cmps.a);
	free(o.a);
	free(fail.a);
	return rc;
}

static int fence_cmps(struct estore *s, struct gfs_kv_etcd_cmps *fc)
{
	int rc = 0;

	fc->n = 0;
	pthread_mutex_lock(&s->fence_lock);
	if (s->fence)
		rc = s->fence(s->fence_arg, fc);
	pthread_mutex_unlock(&s->fence_lock);
	return rc;
}

/* Runs fn until one run commits (invariants 2-4).  setup: the open's
 * first txn (fn is the setup wrapper). */
static int write_loop(struct estore *s, gfs_kv_fn fn, void *ctx,
		      struct gfs_diag *d)
{
	struct gfs_kv_etcd_cmps fc = { 0 };
	struct gfs_diag dummy = { { 0 } };
	int rc = 0;

	if (!d)
		d = &dummy;
	for (unsigned attempt = 0;; attempt++) {
		struct etxn t;
		enum commit_res res = C_DONE;

		if (attempt >= RETRIES) {
			gfs_diag_set(d, "manifest write on etcd (%s) conflicted "
				     "with other writers %u times in a row; "
				     "try again", gfs_etcd_prefix(s->e), RETRIES);
			rc = -EAGAIN;
			break;
		}
		if (attempt)
			backoff(attempt);
		txn_init(&t, s, true);
		gfs_write_cb_enter();
		rc = fn(&t.base, ctx);
		gfs_write_cb_leave();
		if (rc == -ESTALE && t.err == -ESTALE) {
			/* R was compacted under a long run: a new R */
			txn_free(&t);
			continue;
		}
		if (rc && t.err && rc == t.err && !d->msg[0])
			*d = t.diag;
		if (!rc)
			rc = fence_cmps(s, &fc);
		if (!rc)
			rc = commit(&t, &fc, &res, d);
		unsigned created = t.created;
		txn_free(&t);
		if (!rc && res == C_CONFLICT)
			continue;
		if (!rc && created)
			__atomic_or_fetch(&s->has, created, __ATOMIC_RELEASE);
		break;
	}
	free(fc.a);
	return xl(rc);
}

static int etcd_write(struct gfs_kv *kv, gfs_kv_fn fn, void *ctx,
		      struct gfs_diag *d)
{
	struct ekv *h = (struct ekv *)kv;

	if (h->rdonly) {
		gfs_diag_set(d, "manifest is open read-only");
		return -EROFS;
	}
	return write_loop(h->s, fn, ctx, d);
}

/* ---- open and close ---------------------------------------------------- */

struct setup_ctx {
	struct estore *s;
	const struct gfs_kv_open_args *a;
	struct gfs_diag *d;
};

/* The open's first transaction: which dbs exist (markers), a new store's
 * required dbs and its prefix's emptiness, then the store's setup. */
static int setup_fn(struct gfs_kv_txn *txn, void *arg)
{
	struct setup_ctx *sc = arg;
	struct etxn *t = (struct etxn *)txn;
	struct estore *s = sc->s;
	const struct gfs_kv_open_args *a = sc->a;
	struct gfs_etcd_page p;
	struct gfs_diag d = { { 0 } };
	const char *pfx = gfs_etcd_prefix(s->e);
	char *mk = cat3(pfx, "/dbs/", ""), *end = NULL;
	size_t el;
	int rc = mk ? gfs_etcd_prefix_end(mk, strlen(mk), &end, &el) : -ENOMEM;

	if (!rc)
		rc = gfs_etcd_range(s->e, mk, strlen(mk), end, el, 0, 0, &p, &d);
	free(end);
	if (rc) {
		free(mk);
		return etcd_fail(t, rc, &d);
	}
	t->rev = p.header_revision;
	t->has = 0;
	for (size_t i = 0; i < p.n; i++)
		for (unsigned db = 0; db < s->n_dbs; db++)
			if (p.kvs[i].key_len == strlen(s->mark[db]) &&
			    !memcmp(p.kvs[i].key, s->mark[db], p.kvs[i].key_len))
				t->has |= 1u << db;
	gfs_etcd_page_release(&p);
	free(mk);
	if (a->create && !t->has) {
		/* a new store: nothing may live under PREFIX/ */
		char *pk = cat3(pfx, "/", "");
		rc = pk ? gfs_etcd_prefix_end(pk, strlen(pk), &end, &el) : -ENOMEM;
		if (!rc)
			rc = gfs_etcd_range(s->e, pk, strlen(pk), end, el, t->rev,
					    1, &p, &d);
		free(end);
		if (rc) {
			free(pk);
			return etcd_fail(t, rc, &d);
		}
		if (p.n) {
			gfs_diag_set(sc->d, "etcd prefix '%s' already holds keys "
				     "(e.g. '%.*s'): another store's manifest "
				     "or other data; init needs a prefix "
				     "nothing else uses", pfx,
				     (int)(p.kvs[0].key_len > 200 ? 200
					   : p.kvs[0].key_len), p.kvs[0].key);
			rc = -EEXIST;
		}
		gfs_etcd_page_release(&p);
		free(pk);
		for (unsigned db = 0; db < s->n_dbs && !rc; db++)
			if (!(a->db_flags[db] & GFS_KV_DB_OPTIONAL))
				rc = etcd_db_create(txn, db);
		if (rc)
			return rc;
	} else if (a->create) {
		gfs_diag_set(sc->d, "etcd prefix '%s' already holds a graphfs "
			     "store's manifest: init needs a prefix nothing "
			     "else uses", pfx);
		return -EEXIST;
	}
	for (unsigned db = 0; db < s->n_dbs; db++)
		if (!(a->db_flags[db] & GFS_KV_DB_OPTIONAL) &&
		    !(t->has & 1u << db)) {
			gfs_diag_set(sc->d, "etcd '%s' has no graphfs manifest "
				     "under '%s' (no key '%s'): was the store "
				     "initialised with this URL?",
				     s->url, pfx, s->mark[db]);
			return -ENOENT;
		}
	if (!a->setup)
		return 0;
	return a->setup(txn, s->user, a->setup_arg, sc->d);
}

static void store_free(struct estore *s)
{
	if (!s)
		return;
	gfs_etcd_close(s->e);
	for (unsigned i = 0; i < MAX_DBS; i++) {
		free(s->dbpfx[i]);
		free(s->gen[i]);
		free(s->mark[i]);
	}
	pthread_mutex_destroy(&s->fence_lock);
	free(s->user);
	free(s->url);
	free(s);
}

static int store_open(const char *url, const struct gfs_kv_open_args *a,
		      struct estore **out, struct gfs_diag *d)
{
	struct estore *s = calloc(1, sizeof *s);
	int rc;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->fence_lock, NULL);
	s->pid = getpid();
	s->rdonly = a->rdonly;
	s->n_dbs = a->n_dbs;
	s->names = a->db_names;
	s->url = strdup(url);
	s->user = calloc(1, a->user_size ? a->user_size : 1);
	rc = s->url && s->user ? 0 : -ENOMEM;
	if (!rc && a->n_dbs > MAX_DBS)
		rc = -EINVAL;
	if (!rc) {
		/* GRAPHFS_ETCD_FIRST=i: this process asks member i first (the
		 * URL's order otherwise; tests put two writers on two members) */
		struct gfs_etcd_opts o = { .first_endpoint = gfs_etcd_first_from_env() };
		rc = gfs_etcd_open(url, &o, &s->e, d);
	}
	for (unsigned i = 0; !rc && i < a->n_dbs; i++) {
		const char *p = gfs_etcd_prefix(s->e);
		char sub[64];
		s->flags[i] = a->db_flags[i];
		snprintf(sub, sizeof sub, "/%s/", a->db_names[i]);
		s->dbpfx[i] = cat3(p, sub, "");
		s->gen[i] = cat3(p, "/gen/", a->db_names[i]);
		s->mark[i] = cat3(p, "/dbs/", a->db_names[i]);
		if (!s->dbpfx[i] || !s->gen[i] || !s->mark[i])
			rc = -ENOMEM;
		else
			s->dbpfx_len[i] = strlen(s->dbpfx[i]);
	}
	if (!rc) {
		struct setup_ctx sc = { s, a, d };
		if (a->rdonly) {
			struct etxn t;
			txn_init(&t, s, false);
			rc = setup_fn(&t.base, &sc);
			if (rc && t.err && rc == t.err && !d->msg[0])
				*d = t.diag;
			if (!rc)
				s->has = t.has;
			txn_free(&t);
			rc = xl(rc);
		} else {
			/* the markers seen by the committing run are the
			 * store's: write_loop ORs the created ones in; the
			 * ones found are set by the wrapper below */
			rc = write_loop(s, setup_fn, &sc, d);
			if (!rc) {
				/* re-read what exists (one range, no txn) */
				struct etxn t;
				txn_init(&t, s, false);
				struct gfs_kv_open_args a2 = *a;
				a2.create = false;
				a2.setup = NULL;
				struct setup_ctx sc2 = { s, &a2, d };
				rc = setup_fn(&t.base, &sc2);
				if (rc && t.err && rc == t.err && !d->msg[0])
					*d = t.diag;
				if (!rc)
					s->has = t.has;
				txn_free(&t);
				rc = xl(rc);
			}
		}
	}
	if (rc) {
		store_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static int etcd_open(const struct gfs_kv_open_args *a, struct gfs_kv **out,
		     struct gfs_diag *d)
{
	char *url = NULL;
	int rc = 0;

	*out = NULL;
	if (a->url)
		url = strdup(a->url);
	else if ((rc = gfs_kv_manifest_url(a->store_dir, &url, d)))
		return rc;
	if (!url) {
		if (!a->url)
			gfs_diag_set(d, "store '%s' names no etcd manifest",
				     a->store_dir);
		return a->url ? -ENOMEM : -ENOENT;
	}
	struct ekv *h = calloc(1, sizeof *h);
	if (!h) {
		free(url);
		return -ENOMEM;
	}
	pthread_mutex_lock(&registry_lock);
	struct estore *s = NULL;
	for (s = registry; s; s = s->next)
		if (s->pid == getpid() && !strcmp(s->url, url))
			break;
	if (s && s->rdonly && !a->rdonly) {
		gfs_diag_set(d, "manifest '%s' is already open read-only in "
			     "this process", url);
		rc = -EBUSY;
	} else if (s && a->create) {
		gfs_diag_set(d, "manifest '%s' is already open in this process",
			     url);
		rc = -EEXIST;
	} else if (s) {
		s->refs++;
	} else if ((rc = store_open(url, a, &s, d)) == 0) {
		s->refs = 1;
		s->next = registry;
		registry = s;
	}
	pthread_mutex_unlock(&registry_lock);
	free(url);
	if (rc) {
		free(h);
		return rc;
	}
	h->base.ops = ops;
	h->s = s;
	h->rdonly = a->rdonly;
	*out = &h->base;
	return 0;
}

static void etcd_close(struct gfs_kv *kv)
{
	struct estore *s = ((struct ekv *)kv)->s;

	free(kv);
	pthread_mutex_lock(&registry_lock);
	if (s->pid == getpid() && --s->refs == 0) {
		struct estore **pp = &registry;
		while (*pp != s)
			pp = &(*pp)->next;
		*pp = s->next;
		store_free(s);
	}
	pthread_mutex_unlock(&registry_lock);
}

static void *etcd_user(struct gfs_kv *kv)
{
	return ((struct ekv *)kv)->s->user;
}

static bool etcd_has_db(struct gfs_kv *kv, unsigned db)
{
	struct estore *s = ((struct ekv *)kv)->s;
	return db < MAX_DBS &&
	       (__atomic_load_n(&s->has, __ATOMIC_ACQUIRE) & 1u << db);
}

/* The upgrade's question: nothing to upgrade on etcd (format 3 from the
 * start), and no local process list to ask. */
static int etcd_in_use(const char *store_dir, struct gfs_diag *d)
{
	(void)store_dir;
	(void)d;
	return 0;
}

/* etcd's answer to a Txn comes after its Raft commit: nothing local. */
static int etcd_sync_created(const char *store_dir, struct gfs_diag *d)
{
	(void)store_dir;
	(void)d;
	return 0;
}

void gfs_kv_etcd_set_fence(struct gfs_kv *kv, gfs_kv_etcd_fence_fn fn, void *arg)
{
	struct estore *s = ((struct ekv *)kv)->s;

	pthread_mutex_lock(&s->fence_lock);
	s->fence = fn;
	s->fence_arg = arg;
	pthread_mutex_unlock(&s->fence_lock);
}

struct gfs_etcd *gfs_kv_etcd_client(struct gfs_kv *kv)
{
	return ((struct ekv *)kv)->s->e;
}

const struct gfs_kv_ops gfs_kv_etcd = {
	.name = "etcd",
	.open = etcd_open,
	.close = etcd_close,
	.user = etcd_user,
	.has_db = etcd_has_db,
	.read = etcd_read,
	.write = etcd_write,
	.txn_has_db = etcd_txn_has_db,
	.db_create = etcd_db_create,
	.get = etcd_get,
	.put = etcd_put,
	.del = etcd_del,
	.drop = etcd_drop,
	.cursor_open = etcd_cursor_open,
	.cursor_get = etcd_cursor_get,
	.cursor_close = etcd_cursor_close,
	.in_use = etcd_in_use,
	.sync_created = etcd_sync_created,
};

/* ---- which backend ------------------------------------------------------ */

int gfs_kv_manifest_url(const char *store_dir, char **url, struct gfs_diag *d)
{
	char path[PATH_MAX], *txt = NULL;
	size_t len = 0;
	int rc;

	*url = NULL;
	if ((size_t)snprintf(path, sizeof path, "%s/FORMAT", store_dir) >= sizeof path)
		return -ENAMETOOLONG;
	rc = gfs_read_file(path, &txt, &len, 4096);
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		gfs_diag_set(d, "cannot read '%s': %s", path, gfs_strerror(rc));
		return rc;
	}
	for (char *l = txt; l && *l;) {
		char *nl = memchr(l, '\n', len - (size_t)(l - txt));
		if (!nl)
			break;
		if (!strncmp(l, "manifest ", 9)) {
			*url = gfs_memdup(l + 9, (size_t)(nl - l - 9));
			rc = *url ? 0 : -ENOMEM;
			break;
		}
		l = nl + 1;
	}
	free(txt);
	return rc;
}

const struct gfs_kv_ops *gfs_kv_backend(const char *store_dir)
{
	char *url = NULL;
	struct gfs_diag d = { { 0 } };

	/* An unreadable FORMAT: LMDB's open names what is wrong (as before) */
	if (gfs_kv_manifest_url(store_dir, &url, &d) || !url)
		return &gfs_kv_lmdb;
	free(url);
	return &gfs_kv_etcd;
}
