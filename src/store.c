/* store.c - the manifest of manifest.h (DESIGN.md §2-§4) over kv.h.
 *
 * The records and their rules; the bytes live in a kv.h backend (today
 * kv_lmdb.c, the only file that includes <lmdb.h>: STORE/manifest/, one
 * LMDB environment).  Sub-databases (records are one-line JSON with a
 * "format" field so a newer writer is detected, never misread):
 *
 *   meta         string key -> string value ("manifest_format", store id, ...)
 *   versions     big-endian u64 graph version -> graph version record
 *   sidecars     op id -> sidecar record
 *   audit        big-endian u64 sequence -> audit record
 *   audit_by_op  op id -> big-endian u64 sequence (DUPSORT), so counting the
 *                audit records of one operation needs no scan
 *   next         table name -> decimal u32: the smallest table-version
 *                number never reserved (format 3)
 *   tver         table name, NUL, big-endian u32 v -> table-version record
 *                (who reserved v, what became of it; format 3)
 *   branches     branch name -> {id, head, from, created_ns, actor}
 *                (docs/branches-design.md §1.1); a store made before
 *                branches has none until upgrade: its main is then the
 *                highest graph version
 *
 * The head is the last key of "versions"; there is no separate head record
 * that could disagree with the history.
 *
 * Invariants (1-3, 5 and 6, the LMDB environment's, are kv_lmdb.c's now,
 * under the same numbers, with its 7):
 *  4. Write transactions only touch the store: no failpoint, lock or fsync
 *     inside, and every write callback is safe to run again (kv.h's
 *     write-callback rule, docs/invariants.md 270-279): a backend reruns it
 *     after MDB_MAP_FULL (LMDB) or a conflict (etcd), and only the run that
 *     commits counts.  Outputs go to ctx and are rebuilt by each run; the
 *     caller's inputs are copied back only after gfs_kv_write returns 0.
 *  8. Only GFS_KV_NOTFOUND is compared here; every other kv code passes
 *     through to the backend, which translates it when the txn ends
 *     (kv_lmdb.c invariant 5).
 *  9. A manifest that graphctl migrate moved away is frozen: migrate puts
 *     meta/moved_to in it (migrate.c, after the copy and before its
 *     check), and every write transaction here reads that key first,
 *     in the same transaction, and fails with GFS_EMOVED ("moved to URL")
 *     if it is there.  So a process that opened the store before the
 *     switch can still read the old manifest, but can never commit to it
 *     after (docs/invariants.md 335-336).
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv.h"
#include "kv_etcd.h"
#include "lock.h"
#include "manifest.h"
#include "store_int.h"
#include "store_raw.h"
#include "util.h"

#define BATCH 256
#define MANIFEST_FORMAT 3
#define MANIFEST_FORMAT_SEALED 2 /* sealed values, no next/tver (upgrade 2->3) */
/* what format 1 stored under meta/manifest_format: "1", no seal */
#define MANIFEST_FORMAT_1_TEXT "1"
#define RECORD_FORMAT 1

enum db { DB_META, DB_VERSIONS, DB_SIDECARS, DB_AUDIT, DB_AUDIT_BY_OP,
	  DB_NEXT, DB_TVER, DB_BRANCHES, DB__COUNT };
static const char *const db_names[DB__COUNT] = {
	"meta", "versions", "sidecars", "audit", "audit_by_op", "next", "tver",
	"branches",
};
/* next, tver and branches are made with a new manifest (format_check) or
 * by the upgrade, never by an open: a refused upgrade must leave an older
 * manifest as it was; a format-2 manifest has no index yet (format_check
 * names the way out, graphctl upgrade); without branches, main is the
 * highest graph version. */
static const unsigned db_flags[DB__COUNT] = {
	[DB_AUDIT_BY_OP] = GFS_KV_DB_DUPSORT,
	[DB_NEXT] = GFS_KV_DB_OPTIONAL,
	[DB_TVER] = GFS_KV_DB_OPTIONAL,
	[DB_BRANCHES] = GFS_KV_DB_OPTIONAL,
};

/* What every handle of one store in this process shares (kv.h's user
 * area), set by format_check at the first open. */
struct env {
	bool rdonly;            /* the shared state is read-only */
	bool upgrade;           /* opened by upgrade: format 1 accepted */
	int format;             /* manifest format found at open */
};

struct gfs_manifest {
	struct gfs_kv *kv;
	struct env *e;          /* gfs_kv_user(kv) */
};

/* ---- transactions ------------------------------------------------------- */

typedef int (*txn_fn)(struct env *e, struct gfs_kv_txn *txn, void *ctx);

struct run {
	txn_fn fn;
	struct env *e;
	void *ctx;
	struct gfs_diag *d;     /* write runs: where "moved" is said */
};

static int run_fn(struct gfs_kv_txn *txn, void *arg)
{
	struct run *r = arg;

	return r->fn(r->e, txn, r->ctx);
}

static int moved_check(struct gfs_kv_txn *txn, struct gfs_diag *d);

/* Invariant 9: every write first reads meta/moved_to, in its own txn. */
static int run_write_fn(struct gfs_kv_txn *txn, void *arg)
{
	struct run *r = arg;
	int rc = moved_check(txn, r->d);

	return rc ? rc : r->fn(r->e, txn, r->ctx);
}

/* fn in a write transaction, run again as the backend needs (invariant 4),
 * committed when it returns 0. */
static int run_write(struct gfs_manifest *m, txn_fn fn, void *ctx,
		     struct gfs_diag *d)
{
	struct gfs_diag local = { { 0 } };
	struct run r = { fn, m->e, ctx, d ? d : &local };

	return gfs_kv_write(m->kv, run_write_fn, &r, d);
}

static int run_read(struct gfs_manifest *m, txn_fn fn, void *ctx)
{
	struct run r = { fn, m->e, ctx, NULL };

	return gfs_kv_read(m->kv, run_fn, &r);
}

/* The next and tver databases exist (format 3). */
static bool has_index(struct gfs_kv_txn *txn)
{
	return gfs_kv_txn_has_db(txn, DB_NEXT) && gfs_kv_txn_has_db(txn, DB_TVER);
}

static bool has_branches(struct gfs_kv_txn *txn)
{
	return gfs_kv_txn_has_db(txn, DB_BRANCHES);
}


/* ---- small helpers ------------------------------------------------------ */

static void be64_put(unsigned char out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)(v & 0xff);
}

static bool be64_get(const struct gfs_kv_val *k, uint64_t *v)
{
	const unsigned char *p = k->data;
	if (k->size != 8)
		return false;
	*v = 0;
	for (int i = 0; i < 8; i++)
		*v = (*v << 8) | p[i];
	return true;
}

static bool copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src ? src : "");
	if (n >= cap)
		return false;
	memcpy(dst, src ? src : "", n + 1);
	return true;
}

static struct gfs_kv_val str_val(const char *s)
{
	return (struct gfs_kv_val){ .size = strlen(s), .data = (void *)s };
}

/* ---- sealed values (manifest format 2) ----------------------------------
 *
 * Every value in every sub-database ends in SEAL_LEN bytes: u64
 * little-endian xxh3(key bytes || payload bytes).  LMDB has no checksums of
 * its own, so this is what turns a flipped bit in data.mdb into an error
 * that names the key instead of a wrong pin served with exit 0 (issue 8).
 * The key is inside the hash, so a value that lands under another key
 * fails too.  A value that does not verify is never decoded. */

#define SEAL_LEN 8

const char *gfs_manifest_last_corruption(void)
{
	const char *m = gfs_corrupt_last();
	return m[0] ? m : "manifest record does not verify";
}

static uint64_t seal_of(const struct gfs_kv_val *k, const void *p, size_t n)
{
	return gfs_hash64_2(k->data, k->size, p, n);
}

/* Key as text for messages: a number for 8-byte keys of numbered
 * databases, else the printable bytes. */
static void key_text(enum db db, const struct gfs_kv_val *k, char *out, size_t cap)
{
	uint64_t n;
	size_t i, o = 0;
	const unsigned char *p = k->data;

	if ((db == DB_VERSIONS || db == DB_AUDIT) && be64_get(k, &n)) {
		snprintf(out, cap, "%llu", (unsigned long long)n);
		return;
	}
	if (db == DB_VERSIONS || db == DB_AUDIT || k->size == 0) {
		snprintf(out, cap, "(a key of %zu bytes)", k->size);
		return;
	}
	for (i = 0; i < k->size && o + 5 < cap; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f)
			out[o++] = (char)p[i];
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
	}
	out[o] = '\0';
}

static int seal_fail(enum db db, const struct gfs_kv_val *k, const char *why)
{
	char kt[96];

	key_text(db, k, kt, sizeof kt);
	gfs_corrupt_note("manifest record %s/%s is corrupt: %s", db_names[db],
			 kt, why);
	return GFS_ECORRUPT;
}

/* Verifies v's seal; on success v is shrunk to the payload. */
static int unseal(enum db db, const struct gfs_kv_val *k, struct gfs_kv_val *v)
{
	const unsigned char *p = v->data;
	uint64_t want = 0;

	if (v->size < SEAL_LEN)
		return seal_fail(db, k, "value shorter than its checksum");
	for (int i = 0; i < 8; i++)
		want |= (uint64_t)p[v->size - SEAL_LEN + i] << (8 * i);
	if (seal_of(k, p, v->size - SEAL_LEN) != want)
		return seal_fail(db, k, "checksum mismatch");
	v->size -= SEAL_LEN;
	return 0;
}

/* gfs_kv_put of payload p (n bytes) with its seal appended. */
static int seal_put(struct gfs_kv_txn *txn, enum db db,
		    struct gfs_kv_val *k, const void *p, size_t n,
		    unsigned flags)
{
	unsigned char *b = malloc(n + SEAL_LEN);
	uint64_t h = seal_of(k, p, n);

	if (!b)
		return -ENOMEM;
	memcpy(b, p, n);
	for (int i = 0; i < 8; i++)
		b[n + i] = (unsigned char)(h >> (8 * i));
	struct gfs_kv_val v = { n + SEAL_LEN, b };
	int rc = gfs_kv_put(txn, db, k, &v, flags);
	free(b);
	return rc;
}

/* ---- migration markers (migrate.c, invariant 9) ------------------------- */

static json_t *j_load(const struct gfs_kv_val *v);

static int moved_check(struct gfs_kv_txn *txn, struct gfs_diag *d)
{
	struct gfs_kv_val k = str_val(GFS_META_MOVED_TO), v;
	int rc = gfs_kv_get(txn, DB_META, &k, &v);
	json_t *o;

	if (rc == GFS_KV_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	o = unseal(DB_META, &k, &v) ? NULL : j_load(&v);
	gfs_diag_set(d, "this store's manifest was moved to %s by 'graphctl "
		     "migrate': nothing was written here; open the store "
		     "again (a mount: unmount and mount it again)",
		     json_is_string(json_object_get(o, "to"))
			     ? json_string_value(json_object_get(o, "to"))
			     : "another backend");
	json_decref(o);
	return GFS_EMOVED;
}

unsigned gfs_manifest_raw_n_dbs(void)
{
	return DB__COUNT;
}

const char *gfs_manifest_raw_db_name(unsigned db)
{
	return db < DB__COUNT ? db_names[db] : NULL;
}

unsigned gfs_manifest_raw_db_flags(unsigned db)
{
	return db < DB__COUNT ? db_flags[db] : 0;
}

struct gfs_kv *gfs_manifest_raw_kv(struct gfs_manifest *m)
{
	return m->kv;
}

int gfs_manifest_raw_seal_put(struct gfs_kv_txn *txn, unsigned db,
			      const char *key, const char *payload)
{
	struct gfs_kv_val k = str_val(key);

	return seal_put(txn, (enum db)db, &k, payload, strlen(payload), 0);
}

int gfs_manifest_raw_unseal(unsigned db, const struct gfs_kv_val *k,
			    struct gfs_kv_val *v)
{
	return unseal((enum db)db, k, v);
}

/* ---- JSON field access -------------------------------------------------- */

static bool j_str(json_t *o, const char *k, char *out, size_t cap)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) && copy_str(out, cap, json_string_value(v));
}

static bool j_u64(json_t *o, const char *k, uint64_t *out)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static bool j_u32(json_t *o, const char *k, uint32_t *out)
{
	uint64_t v;
	if (!j_u64(o, k, &v) || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static int j_set(json_t *o, const char *k, json_t *v)
{
	return v && json_object_set_new(o, k, v) == 0 ? 0 : -ENOMEM;
}

static int j_set_time(json_t *o, const char *k, uint64_t ns)
{
	char t[40];
	gfs_time_format(ns, t);
	return j_set(o, k, json_string(t));
}

/* Record format: 0 missing, or the number. */
static int j_format(json_t *o)
{
	uint64_t f;
	if (!j_u64(o, "format", &f) || f > INT_MAX)
		return 0;
	return (int)f;
}

/* Returns new compact one-line text of o (consumed). */
static char *j_dump(json_t *o)
{
	if (!o)
		return NULL;
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static json_t *j_load(const struct gfs_kv_val *v)
{
	return json_loadb(v->data, v->size, JSON_REJECT_DUPLICATES, NULL);
}

/* ---- graph version records ---------------------------------------------- */

void gfs_gv_free(struct gfs_gv *gv)
{
	if (!gv)
		return;
	free(gv->detail);
	free(gv->pins);
	free(gv);
}

uint32_t gfs_gv_pin(const struct gfs_gv *gv, const char *table)
{
	for (size_t i = 0; gv && i < gv->n_pins; i++)
		if (strcmp(gv->pins[i].table, table) == 0)
			return gv->pins[i].version;
	return 0;
}

static int pin_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gfs_pin *)a)->table,
		      ((const struct gfs_pin *)b)->table);
}

static json_t *pins_json(const struct gfs_gv *gv)
{
	json_t *t = json_object();
	for (size_t i = 0; t && i < gv->n_pins; i++) {
		if (j_set(t, gv->pins[i].table,
			  json_integer(gv->pins[i].version))) {
			json_decref(t);
			return NULL;
		}
	}
	return t;
}

/* detail text as a JSON value; unparsable text is kept as a string. */
static json_t *detail_json(const char *detail)
{
	json_t *v = json_loads(detail, JSON_DECODE_ANY, NULL);
	return v ? v : json_string(detail);
}

static json_t *parents_json(const struct gfs_gv *gv)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < gv->n_parents && i < 2; i++)
		if (json_array_append_new(a, json_integer((json_int_t)gv->parents[i]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* stored: {"id", "name"}; public: the name (log.jsonl, manifest.json). */
static json_t *gv_branch_json(const struct gfs_gv *gv, bool stored)
{
	const char *name = gv->branch[0] ? gv->branch : "main";
	json_t *o;

	if (!stored)
		return json_string(name);
	o = json_object();
	if (j_set(o, "id", json_string(gv->branch_id)) ||
	    j_set(o, "name", json_string(name))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* stored: the record in LMDB ("format", "time_ns"); else the public shape
 * ("time" in RFC 3339). */
static json_t *gv_json(const struct gfs_gv *gv, bool stored)
{
	json_t *o = json_object();
	int rc = o ? 0 : -ENOMEM;
	if (!rc && stored)
		rc = j_set(o, "format", json_integer(RECORD_FORMAT));
	if (!rc)
		rc = j_set(o, "version", json_integer((json_int_t)gv->version));
	if (!rc)
		rc = stored ? j_set(o, "time_ns", json_integer((json_int_t)gv->time_ns))
			    : j_set_time(o, "time", gv->time_ns);
	if (!rc)
		rc = j_set(o, "op", json_string(gv->op));
	if (!rc)
		rc = j_set(o, "op_id", json_string(gv->op_id));
	if (!rc)
		rc = j_set(o, "actor", json_string(gv->actor));
	if (!rc)
		rc = j_set(o, "schema", json_string(gv->schema_id));
	if (!rc)
		rc = j_set(o, "branch", gv_branch_json(gv, stored));
	if (!rc)
		rc = j_set(o, "parents", parents_json(gv));
	if (!rc)
		rc = j_set(o, "tables", pins_json(gv));
	if (!rc && gv->detail)
		rc = j_set(o, "detail", detail_json(gv->detail));
	if (!rc && gv->removed)
		rc = j_set(o, "removed", json_true());
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A removed version as the log shows it: its line stays, reduced. */
static json_t *gv_removed_json(const struct gfs_gv *gv)
{
	json_t *o = json_object();
	int rc = o ? 0 : -ENOMEM;
	if (!rc)
		rc = j_set(o, "version", json_integer((json_int_t)gv->version));
	if (!rc)
		rc = j_set_time(o, "time", gv->time_ns);
	if (!rc)
		rc = j_set(o, "op", json_string(gv->op));
	if (!rc)
		rc = j_set(o, "removed", json_true());
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *gfs_gv_to_json(const struct gfs_gv *gv)
{
	return j_dump(gv->removed ? gv_removed_json(gv) : gv_json(gv, false));
}

static int gv_pins_parse(json_t *t, struct gfs_gv *gv)
{
	const char *name;
	json_t *v;
	if (!json_is_object(t))
		return GFS_ECORRUPT;
	gv->pins = calloc(json_object_size(t) + 1, sizeof *gv->pins);
	if (!gv->pins)
		return -ENOMEM;
	json_object_foreach(t, name, v) {
		struct gfs_pin *p = &gv->pins[gv->n_pins];
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > UINT32_MAX ||
		    !copy_str(p->table, sizeof p->table, name))
			return GFS_ECORRUPT;
		p->version = (uint32_t)json_integer_value(v);
		gv->n_pins++;
	}
	qsort(gv->pins, gv->n_pins, sizeof *gv->pins, pin_cmp);
	return 0;
}

/* branch {id, name} and parents; a record written before branches has
 * neither: main, parents [N-1]. */
static int gv_branch_parse(json_t *o, struct gfs_gv *gv)
{
	json_t *b = json_object_get(o, "branch"), *ps = json_object_get(o, "parents");
	size_t i;
	json_t *v;

	if (!b && !ps) {
		copy_str(gv->branch, sizeof gv->branch, "main");
		gv->n_parents = gv->version > 1;
		gv->parents[0] = gv->version - 1;
		return 0;
	}
	if (!json_is_object(b) || !json_is_array(ps) || json_array_size(ps) > 2 ||
	    !j_str(b, "name", gv->branch, sizeof gv->branch) ||
	    !j_str(b, "id", gv->branch_id, sizeof gv->branch_id))
		return GFS_ECORRUPT;
	json_array_foreach(ps, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    (uint64_t)json_integer_value(v) >= gv->version)
			return GFS_ECORRUPT;
		gv->parents[gv->n_parents++] = (uint64_t)json_integer_value(v);
	}
	return 0;
}

static int gv_fields_parse(json_t *o, struct gfs_gv *gv)
{
	int f = j_format(o);
	if (f > RECORD_FORMAT)
		return GFS_EFORMAT;
	if (f == 0 || !j_u64(o, "version", &gv->version) ||
	    !j_u64(o, "time_ns", &gv->time_ns) ||
	    !j_str(o, "op", gv->op, sizeof gv->op) ||
	    !j_str(o, "op_id", gv->op_id, sizeof gv->op_id) ||
	    !j_str(o, "actor", gv->actor, sizeof gv->actor) ||
	    !j_str(o, "schema", gv->schema_id, sizeof gv->schema_id))
		return GFS_ECORRUPT;
	if (gv_branch_parse(o, gv))
		return GFS_ECORRUPT;
	json_t *rm = json_object_get(o, "removed");
	if (rm && !json_is_boolean(rm))
		return GFS_ECORRUPT;
	gv->removed = json_is_true(rm);
	json_t *det = json_object_get(o, "detail");
	if (det) {
		gv->detail = json_dumps(det, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!gv->detail)
			return -ENOMEM;
	}
	return gv_pins_parse(json_object_get(o, "tables"), gv);
}

/* Decodes a versions record; the key must agree with the body. */
static int gv_decode(const struct gfs_kv_val *k, const struct gfs_kv_val *sealed,
		     struct gfs_gv **out)
{
	uint64_t key;
	struct gfs_kv_val pv = *sealed, *v = &pv;
	*out = NULL;
	int rc = unseal(DB_VERSIONS, k, v);
	if (rc)
		return rc;
	struct gfs_gv *gv = calloc(1, sizeof *gv);
	json_t *o = j_load(v);
	rc = !gv ? -ENOMEM : json_is_object(o) ? 0 : GFS_ECORRUPT;
	if (!rc)
		rc = gv_fields_parse(o, gv);
	if (!rc && (!be64_get(k, &key) || key != gv->version))
		rc = GFS_ECORRUPT;
	if (rc == GFS_ECORRUPT)
		seal_fail(DB_VERSIONS, k, "record does not parse");
	json_decref(o);
	if (rc) {
		gfs_gv_free(gv);
		gv = NULL;
	}
	*out = gv;
	return rc;
}

/* meta/head: the newest graph version, written with it.  A witness kept in
 * another B-tree: damage to the versions tree that LMDB cannot see (a page
 * header that hides its last records) leaves a last key below it. */
#define META_HEAD "head"

static int head_witness_put(struct env *e, struct gfs_kv_txn *txn, uint64_t n)
{
	char num[24];
	struct gfs_kv_val k = str_val(META_HEAD);
	snprintf(num, sizeof num, "%llu", (unsigned long long)n);
	return seal_put(txn, DB_META, &k, num, strlen(num), 0);
}

/* meta/head into *n: 0, GFS_KV_NOTFOUND, or an error. */
static int head_witness_get(struct env *e, struct gfs_kv_txn *txn, uint64_t *n)
{
	struct gfs_kv_val k = str_val(META_HEAD), v;
	char buf[24] = "";
	int rc = gfs_kv_get(txn, DB_META, &k, &v);
	if (!rc)
		rc = unseal(DB_META, &k, &v);
	if (rc)
		return rc;
	if (v.size < sizeof buf)
		memcpy(buf, v.data, v.size);
	if (gfs_parse_u64(buf, n))
		return seal_fail(DB_META, &k, "not a version number");
	return 0;
}

/* 0 when last agrees with meta/head (or there is none), else corrupt. */
static int head_witness_check(struct env *e, struct gfs_kv_txn *txn, uint64_t last)
{
	uint64_t n;
	int rc = head_witness_get(e, txn, &n);
	if (rc == GFS_KV_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (n != last) {
		gfs_corrupt_note("manifest is corrupt: the last graph version "
				 "record is versions/%llu but meta/head says %llu "
				 "(records lost inside data.mdb)",
				 (unsigned long long)last, (unsigned long long)n);
		return GFS_ECORRUPT;
	}
	return 0;
}

static int gv_put(struct env *e, struct gfs_kv_txn *txn, const struct gfs_gv *gv)
{
	unsigned char kb[8];
	be64_put(kb, gv->version);
	char *s = j_dump(gv_json(gv, true));
	if (!s)
		return -ENOMEM;
	struct gfs_kv_val k = { 8, kb };
	int rc = seal_put(txn, DB_VERSIONS, &k, s, strlen(s),
			  GFS_KV_NOOVERWRITE);
	free(s);
	if (!rc)
		rc = head_witness_put(e, txn, gv->version);
	return rc;
}

/* The last version, or GFS_KV_NOTFOUND. */
static int head_read(struct env *e, struct gfs_kv_txn *txn, struct gfs_gv **out)
{
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	*out = NULL;
	int rc = gfs_kv_cursor_open(txn, DB_VERSIONS, &c);
	if (rc)
		return rc;
	rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_LAST);
	gfs_kv_cursor_close(c);
	if (!rc)
		rc = gv_decode(&k, &v, out);
	if (!rc)
		rc = head_witness_check(e, txn, (*out)->version);
	if (rc && *out) {
		gfs_gv_free(*out);
		*out = NULL;
	}
	return rc;
}

/* ---- branch records (docs/branches-design.md §1.1) --------------------- */

static int head_version_txn_raw(struct env *e, struct gfs_kv_txn *txn, uint64_t *out);

bool gfs_branch_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n >= GFS_BRANCH_NAME_MAX ||
	    !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
		    name[0]))
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789._-") == n;
}

static json_t *branch_json(const struct gfs_branch *b, bool stored)
{
	json_t *o = json_object();
	int rc = o ? 0 : -ENOMEM;
	if (!rc && stored)
		rc = j_set(o, "format", json_integer(RECORD_FORMAT));
	if (!rc)
		rc = j_set(o, "name", json_string(b->name));
	if (!rc)
		rc = j_set(o, "id", json_string(b->id));
	if (!rc)
		rc = j_set(o, "head", json_integer((json_int_t)b->head));
	if (!rc)
		rc = j_set(o, "from", json_integer((json_int_t)b->from));
	if (!rc)
		rc = stored ? j_set(o, "created_ns", json_integer((json_int_t)b->created_ns))
			    : j_set_time(o, "created", b->created_ns);
	if (!rc)
		rc = j_set(o, "actor", json_string(b->actor));
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *gfs_branch_to_json(const struct gfs_branch *b)
{
	return j_dump(branch_json(b, false));
}

/* Decodes a branches record; the key must be its name. */
static int branch_decode(const struct gfs_kv_val *k, const struct gfs_kv_val *sealed,
			 struct gfs_branch *b)
{
	struct gfs_kv_val pv = *sealed;
	int rc = unseal(DB_BRANCHES, k, &pv);
	json_t *o = rc ? NULL : j_load(&pv);

	memset(b, 0, sizeof *b);
	if (rc)
		return rc;
	if (j_format(o) > RECORD_FORMAT)
		rc = GFS_EFORMAT;
	else if (!json_is_object(o) || j_format(o) == 0 ||
		 !j_str(o, "name", b->name, sizeof b->name) ||
		 !j_str(o, "id", b->id, sizeof b->id) ||
		 !j_u64(o, "head", &b->head) || !j_u64(o, "from", &b->from) ||
		 !j_u64(o, "created_ns", &b->created_ns) ||
		 !j_str(o, "actor", b->actor, sizeof b->actor) ||
		 k->size != strlen(b->name) ||
		 memcmp(k->data, b->name, k->size))
		rc = GFS_ECORRUPT;
	if (rc)
		seal_fail(DB_BRANCHES, k, rc == GFS_EFORMAT ? "newer record format"
			  : "record does not parse");
	json_decref(o);
	return rc;
}

static int branch_put(struct env *e, struct gfs_kv_txn *txn, const struct gfs_branch *b)
{
	struct gfs_kv_val k = str_val(b->name);
	char *s = j_dump(branch_json(b, true));
	if (!s)
		return -ENOMEM;
	int rc = seal_put(txn, DB_BRANCHES, &k, s, strlen(s), 0);
	free(s);
	return rc;
}

/* The record of branch name, or GFS_KV_NOTFOUND.  main without a record (a
 * store made before branches) is the highest graph version. */
static int branch_read(struct env *e, struct gfs_kv_txn *txn, const char *name,
		       struct gfs_branch *b)
{
	struct gfs_kv_val k = str_val(name), v;
	int rc = has_branches(txn) ? gfs_kv_get(txn, DB_BRANCHES, &k, &v)
				 : GFS_KV_NOTFOUND;

	if (!rc)
		return branch_decode(&k, &v, b);
	if (rc != GFS_KV_NOTFOUND || strcmp(name, "main"))
		return rc;
	memset(b, 0, sizeof *b);
	copy_str(b->name, sizeof b->name, "main");
	b->from = 1;
	return head_version_txn_raw(e, txn, &b->head);
}

static int gv_read(struct env *e, struct gfs_kv_txn *txn, uint64_t n, struct gfs_gv **out)
{
	unsigned char kb[8];
	struct gfs_kv_val k = { 8, kb }, v;
	int rc;

	*out = NULL;
	be64_put(kb, n);
	rc = gfs_kv_get(txn, DB_VERSIONS, &k, &v);
	if (rc == GFS_KV_NOTFOUND) {
		gfs_corrupt_note("manifest record versions/%llu, a branch head, is missing: the manifest is corrupt",
				 (unsigned long long)n);
		return GFS_ECORRUPT;
	}
	return rc ? rc : gv_decode(&k, &v, out);
}

/* Branch name's record and head gv; GFS_KV_NOTFOUND: no such branch. */
static int branch_head_read(struct env *e, struct gfs_kv_txn *txn, const char *name,
			    struct gfs_branch *b, struct gfs_gv **out)
{
	int rc = branch_read(e, txn, name, b);

	*out = NULL;
	return rc ? rc : gv_read(e, txn, b->head, out);
}

/* ---- sidecar records ---------------------------------------------------- */

static void sc_gc_free(struct gfs_sc_gc *gc)
{
	if (!gc)
		return;
	free(gc->remove);
	free(gc->unlink);
	free(gc);
}

void gfs_sidecar_free(struct gfs_sidecar *sc)
{
	if (!sc)
		return;
	free(sc->tables);
	sc_gc_free(sc->gc);
	free(sc->raw);
	free(sc);
}

void gfs_audit_free(struct gfs_audit *a)
{
	if (!a)
		return;
	free(a->tables);
	free(a);
}

static int sct_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gfs_sc_table *)a)->table,
		      ((const struct gfs_sc_table *)b)->table);
}

/* audit: from/to keys, written tables only; else the sidecar shape. */
static json_t *sct_json(const struct gfs_sc_table *t, size_t n, bool audit)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++) {
		json_t *o = json_object();
		int rc = j_set(o, "table", json_string(t[i].table));
		if (!rc && !audit)
			rc = j_set(o, "written", json_boolean(t[i].written));
		if (!rc)
			rc = j_set(o, audit ? "from" : "expected",
				   json_integer(t[i].expected));
		if (!rc)
			rc = j_set(o, audit ? "to" : "post",
				   json_integer(t[i].post));
		if (!rc && !audit && t[i].comp)
			rc = j_set(o, "comp", json_integer(t[i].comp));
		if (rc || json_array_append_new(arr, o)) {
			json_decref(o);
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static bool sct_parse_one(json_t *o, bool audit, struct gfs_sc_table *t)
{
	json_t *w = json_object_get(o, "written");
	if (!json_is_object(o) || !j_str(o, "table", t->table, sizeof t->table))
		return false;
	if (audit) {
		t->written = true;
		return j_u32(o, "from", &t->expected) && j_u32(o, "to", &t->post);
	}
	if (!json_is_boolean(w))
		return false;
	t->written = json_is_true(w);
	t->comp = 0;
	if (json_object_get(o, "comp") && !j_u32(o, "comp", &t->comp))
		return false;
	return j_u32(o, "expected", &t->expected) && j_u32(o, "post", &t->post);
}

static bool sct_parse(json_t *arr, bool audit, struct gfs_sc_table **out,
		      size_t *n)
{
	size_t i;
	json_t *o;
	if (!json_is_array(arr))
		return false;
	*out = calloc(json_array_size(arr) + 1, sizeof **out);
	if (!*out)
		return false;
	json_array_foreach(arr, i, o) {
		if (!sct_parse_one(o, audit, &(*out)[i]))
			return false;
		*n = i + 1;
	}
	qsort(*out, *n, sizeof **out, sct_cmp);
	return true;
}

static json_t *sc_branch_json(const struct gfs_sidecar *sc)
{
	json_t *o = json_object();
	if (j_set(o, "id", json_string(sc->branch_id)) ||
	    j_set(o, "name", json_string(sc->branch))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *sc_gc_json(const struct gfs_sc_gc *gc)
{
	json_t *o = json_object(), *rm = json_array(), *ul = json_array();
	int rc = o && rm && ul ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < gc->n_remove; i++)
		rc = json_array_append_new(rm, json_integer((json_int_t)gc->remove[i]));
	for (size_t i = 0; !rc && i < gc->n_unlink; i++) {
		const struct gfs_sc_unlink *u = &gc->unlink[i];
		json_t *x = json_object();
		rc = j_set(x, "table", json_string(u->table));
		if (!rc)
			rc = j_set(x, "v", json_integer(u->version));
		if (!rc)
			rc = j_set(x, "bytes", json_integer((json_int_t)u->bytes));
		if (!rc)
			rc = json_array_append_new(ul, x);
		else
			json_decref(x);
	}
	if (!rc) {
		rc = j_set(o, "remove_gvs", rm);
		rm = NULL;
	}
	if (!rc) {
		rc = j_set(o, "unlink", ul);
		ul = NULL;
	}
	json_decref(rm);
	json_decref(ul);
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *sc_merge_json(const struct gfs_sc_merge *mg)
{
	json_t *o = json_pack("{s:{s:s,s:s},s:I,s:I,s:I}", "source", "id", mg->source_id,
			      "name", mg->source, "source_gv", (json_int_t)mg->source_gv,
			      "base_gv", (json_int_t)mg->base_gv,
			      "target_gv", (json_int_t)mg->target_gv);
	return o;
}

static bool sc_merge_parse(json_t *o, struct gfs_sc_merge *mg)
{
	json_t *s = json_object_get(o, "source");
	return json_is_object(o) && json_is_object(s) &&
	       j_str(s, "name", mg->source, sizeof mg->source) &&
	       j_str(s, "id", mg->source_id, sizeof mg->source_id) &&
	       j_u64(o, "source_gv", &mg->source_gv) && mg->source_gv &&
	       j_u64(o, "base_gv", &mg->base_gv) && j_u64(o, "target_gv", &mg->target_gv);
}

static bool sc_unlink_parse(json_t *x, struct gfs_sc_unlink *u)
{
	return json_is_object(x) && j_str(x, "table", u->table, sizeof u->table) &&
	       u->table[0] && j_u32(x, "v", &u->version) &&
	       j_u64(x, "bytes", &u->bytes);
}

/* The optional "gc" object; false if present and malformed. */
static bool sc_gc_parse(json_t *o, struct gfs_sidecar *sc)
{
	json_t *g = json_object_get(o, "gc"), *rm, *ul, *x;
	size_t i;
	if (!g)
		return true;
	rm = json_object_get(g, "remove_gvs");
	ul = json_object_get(g, "unlink");
	if (!json_is_object(g) || !json_is_array(rm) || !json_is_array(ul))
		return false;
	sc->gc = calloc(1, sizeof *sc->gc);
	if (!sc->gc)
		return false;
	sc->gc->remove = calloc(json_array_size(rm) + 1, sizeof *sc->gc->remove);
	sc->gc->unlink = calloc(json_array_size(ul) + 1, sizeof *sc->gc->unlink);
	if (!sc->gc->remove || !sc->gc->unlink)
		return false;
	json_array_foreach(rm, i, x) {
		if (!json_is_integer(x) || json_integer_value(x) < 1)
			return false;
		sc->gc->remove[sc->gc->n_remove++] = (uint64_t)json_integer_value(x);
	}
	json_array_foreach(ul, i, x) {
		if (!sc_unlink_parse(x, &sc->gc->unlink[i]))
			return false;
		sc->gc->n_unlink = i + 1;
	}
	return true;
}

static json_t *sidecar_json(const struct gfs_sidecar *sc, bool stored)
{
	json_t *o = json_object();
	int rc = o ? 0 : -ENOMEM;
	if (!rc && stored)
		rc = j_set(o, "format", json_integer(sc->format ? sc->format
							  : GFS_SIDECAR_FORMAT));
	if (!rc)
		rc = j_set(o, "op_id", json_string(sc->op_id));
	if (!rc)
		rc = j_set(o, "kind", json_string(sc->kind));
	if (!rc)
		rc = j_set(o, "actor", json_string(sc->actor));
	if (!rc)
		rc = stored ? j_set(o, "start_ns", json_integer((json_int_t)sc->start_ns))
			    : j_set_time(o, "start", sc->start_ns);
	if (!rc)
		rc = j_set(o, "confirmed", json_boolean(sc->confirmed));
	if (!rc && stored && sc->branch[0])
		rc = j_set(o, "branch", sc_branch_json(sc));
	else if (!rc && !stored)
		rc = j_set(o, "branch", json_string(sc->branch[0] ? sc->branch : "main"));
	if (!rc && sc->merge.source_gv)
		rc = j_set(o, "merge", sc_merge_json(&sc->merge));
	if (!rc)
		rc = j_set(o, "tables", sct_json(sc->tables, sc->n_tables, false));
	if (!rc && sc->schema_new[0])
		rc = j_set(o, "schema", json_pack("{s:s,s:s}", "old_id", sc->schema_old,
						  "new_id", sc->schema_new));
	if (!rc && sc->gc)
		rc = j_set(o, "gc", sc_gc_json(sc->gc));
	if (!rc && sc->holder[0])
		rc = j_set(o, "holder", json_pack("{s:s,s:s,s:I}", "name", sc->holder,
						  "host", sc->holder_host,
						  "pid", (json_int_t)sc->holder_pid));
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* raw as a JSON string; bytes that are not UTF-8 become '?'. */
static json_t *raw_string(const char *raw)
{
	json_t *v = json_string(raw);
	if (v)
		return v;
	char *s = gfs_strdup(raw);
	for (char *p = s; p && *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	v = s ? json_string(s) : NULL;
	free(s);
	return v;
}

/* A sidecar that did not parse: its raw bytes, shown as a string. */
static char *sidecar_raw_json(const struct gfs_sidecar *sc)
{
	json_t *o = json_object();
	if (j_set(o, "op_id", json_string(sc->op_id)) ||
	    j_set(o, "format", json_integer(sc->format)) ||
	    j_set(o, "unparsable", raw_string(sc->raw))) {
		json_decref(o);
		return NULL;
	}
	return j_dump(o);
}

void gfs_sidecar_set_holder(struct gfs_sidecar *sc, const char *holder)
{
	snprintf(sc->holder, sizeof sc->holder, "%s", holder);
	if (gethostname(sc->holder_host, sizeof sc->holder_host - 1))
		snprintf(sc->holder_host, sizeof sc->holder_host, "?");
	sc->holder_pid = getpid();
}

char *gfs_sidecar_to_json(const struct gfs_sidecar *sc)
{
	if (sc->raw)
		return sidecar_raw_json(sc);
	return j_dump(sidecar_json(sc, false));
}

static bool sidecar_fields(json_t *o, struct gfs_sidecar *sc)
{
	json_t *c = json_object_get(o, "confirmed");
	if (!j_str(o, "op_id", sc->op_id, sizeof sc->op_id) ||
	    !j_str(o, "kind", sc->kind, sizeof sc->kind) ||
	    !j_str(o, "actor", sc->actor, sizeof sc->actor) ||
	    !j_u64(o, "start_ns", &sc->start_ns) || !json_is_boolean(c))
		return false;
	sc->confirmed = json_is_true(c);
	json_t *b = json_object_get(o, "branch");
	if (b && (!json_is_object(b) ||
		  !j_str(b, "name", sc->branch, sizeof sc->branch) ||
		  !j_str(b, "id", sc->branch_id, sizeof sc->branch_id)))
		return false;
	json_t *mg = json_object_get(o, "merge");
	if (mg && !sc_merge_parse(mg, &sc->merge))
		return false;
	json_t *ho = json_object_get(o, "holder");
	if (ho) {
		json_t *pid = json_object_get(ho, "pid");
		if (!json_is_object(ho) || !json_is_integer(pid) ||
		    !j_str(ho, "name", sc->holder, sizeof sc->holder) ||
		    !j_str(ho, "host", sc->holder_host, sizeof sc->holder_host))
			return false;
		sc->holder_pid = (int64_t)json_integer_value(pid);
	}
	json_t *sch = json_object_get(o, "schema");
	if (sch && (!j_str(sch, "old_id", sc->schema_old, sizeof sc->schema_old) ||
		    !j_str(sch, "new_id", sc->schema_new, sizeof sc->schema_new) ||
		    !sc->schema_new[0]))
		return false;
	return sct_parse(json_object_get(o, "tables"), false, &sc->tables,
			 &sc->n_tables) && sc_gc_parse(o, sc);
}

/* Keeps the bytes of a record we refuse (DESIGN.md §4: refused loudly and
 * kept on disk), named by its key. */
static int sidecar_refuse(const struct gfs_kv_val *k, const struct gfs_kv_val *v,
			  struct gfs_sidecar *sc)
{
	free(sc->tables);
	sc->tables = NULL;
	sc->n_tables = 0;
	sc_gc_free(sc->gc);
	sc->gc = NULL;
	sc->confirmed = false;
	sc->start_ns = 0;
	memset(sc->op_id, 0, sizeof sc->op_id);
	if (k->size < sizeof sc->op_id)
		memcpy(sc->op_id, k->data, k->size);
	sc->raw = gfs_memdup(v->data, v->size);
	return sc->raw ? GFS_EFORMAT : -ENOMEM;
}

/* The revision of a stored sidecar: a hash of its bytes, never 0 (0 in a
 * publish means "do not compare"). */
static uint64_t sidecar_rev(const struct gfs_kv_val *v)
{
	uint64_t h = gfs_hash64(v->data, v->size);

	return h ? h : 1;
}

/* GFS_EFORMAT with *out set (raw bytes) for a record we cannot use. */
static int sidecar_decode(const struct gfs_kv_val *k, const struct gfs_kv_val *sealed,
			  struct gfs_sidecar **out)
{
	struct gfs_sidecar *sc = calloc(1, sizeof *sc);
	struct gfs_kv_val pv = *sealed, *v = &pv;
	*out = sc;
	if (!sc)
		return -ENOMEM;
	/* a record that does not verify is refused and kept, like one that
	 * does not parse (DESIGN.md §4), its bytes shown as they are */
	bool sealed_ok = unseal(DB_SIDECARS, k, v) == 0;
	json_t *o = sealed_ok ? j_load(v) : NULL;
	sc->format = json_is_object(o) ? j_format(o) : 0;
	bool ok = sealed_ok && sc->format >= 1 && sc->format <= GFS_SIDECAR_FORMAT &&
		  sidecar_fields(o, sc) && k->size == strlen(sc->op_id) &&
		  memcmp(k->data, sc->op_id, k->size) == 0;
	json_decref(o);
	sc->rev = sidecar_rev(sealed); /* the stored bytes, as sidecar_step sees them */
	int rc = ok ? 0 : sidecar_refuse(k, v, sc);
	if (rc == -ENOMEM) {
		gfs_sidecar_free(sc);
		*out = NULL;
	}
	return rc;
}

static int sidecar_put_txn(struct env *e, struct gfs_kv_txn *txn,
			   const struct gfs_sidecar *sc, unsigned flags)
{
	struct gfs_kv_val k = str_val(sc->op_id);
	char *s = j_dump(sidecar_json(sc, true));
	if (!s)
		return -ENOMEM;
	int rc = seal_put(txn, DB_SIDECARS, &k, s, strlen(s), flags);
	free(s);
	return rc;
}

static bool sidecar_valid(const struct gfs_sidecar *sc)
{
	if (sc->op_id[0] == '\0' || sc->raw ||
	    sc->format > GFS_SIDECAR_FORMAT ||
	    !memchr(sc->branch, 0, sizeof sc->branch) ||
	    !memchr(sc->branch_id, 0, sizeof sc->branch_id) ||
	    (sc->branch[0] && !gfs_branch_name_valid(sc->branch)))
		return false;
	for (size_t i = 0; i < sc->n_tables; i++)
		if (sc->tables[i].table[0] == '\0')
			return false;
	return true;
}

/* ---- audit records ------------------------------------------------------ */

static json_t *audit_json(const struct gfs_audit *a, bool stored)
{
	json_t *o = json_object();
	int rc = o ? 0 : -ENOMEM;
	if (!rc && stored)
		rc = j_set(o, "format", json_integer(RECORD_FORMAT));
	if (!rc)
		rc = j_set(o, "op_id", json_string(a->op_id));
	if (!rc)
		rc = j_set(o, "decision", json_string(a->decision));
	if (!rc)
		rc = j_set(o, "kind", json_string(a->kind));
	if (!rc)
		rc = j_set(o, "actor", json_string(a->actor));
	if (!rc)
		rc = j_set(o, "resolver", json_string(a->resolver));
	if (!rc)
		rc = stored ? j_set(o, "time_ns", json_integer((json_int_t)a->time_ns))
			    : j_set_time(o, "time", a->time_ns);
	if (!rc)
		rc = j_set(o, "graph_version",
			   json_integer((json_int_t)a->graph_version));
	if (!rc)
		rc = j_set(o, "tables", sct_json(a->tables, a->n_tables, true));
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *gfs_audit_to_json(const struct gfs_audit *a)
{
	return j_dump(audit_json(a, false));
}

static bool audit_fields(json_t *o, struct gfs_audit *a)
{
	return j_format(o) == RECORD_FORMAT &&
	       j_str(o, "op_id", a->op_id, sizeof a->op_id) &&
	       j_str(o, "decision", a->decision, sizeof a->decision) &&
	       j_str(o, "kind", a->kind, sizeof a->kind) &&
	       j_str(o, "actor", a->actor, sizeof a->actor) &&
	       j_str(o, "resolver", a->resolver, sizeof a->resolver) &&
	       j_u64(o, "time_ns", &a->time_ns) &&
	       j_u64(o, "graph_version", &a->graph_version) &&
	       sct_parse(json_object_get(o, "tables"), true, &a->tables,
			 &a->n_tables);
}

static int audit_decode(const struct gfs_kv_val *k, const struct gfs_kv_val *sealed,
			struct gfs_audit **out)
{
	struct gfs_kv_val pv = *sealed;
	*out = NULL;
	int rc = unseal(DB_AUDIT, k, &pv);
	if (rc)
		return rc;
	struct gfs_audit *a = calloc(1, sizeof *a);
	json_t *o = j_load(&pv);
	rc = !a ? -ENOMEM : json_is_object(o) && audit_fields(o, a) ? 0
							    : GFS_ECORRUPT;
	if (rc == GFS_ECORRUPT)
		seal_fail(DB_AUDIT, k, "record does not parse");
	json_decref(o);
	if (rc) {
		gfs_audit_free(a);
		a = NULL;
	}
	*out = a;
	return rc;
}

/* Appends a at sequence last+1 and indexes it by op id. */
static int audit_put(struct env *e, struct gfs_kv_txn *txn, const struct gfs_audit *a)
{
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	uint64_t seq = 0;
	unsigned char kb[8];
	int rc = gfs_kv_cursor_open(txn, DB_AUDIT, &c);
	if (rc)
		return rc;
	rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_LAST);
	gfs_kv_cursor_close(c);
	if (rc == 0 && !be64_get(&k, &seq))
		return GFS_ECORRUPT;
	if (rc && rc != GFS_KV_NOTFOUND)
		return rc;
	be64_put(kb, seq + 1);
	char *s = j_dump(audit_json(a, true));
	if (!s)
		return -ENOMEM;
	k = (struct gfs_kv_val){ 8, kb };
	rc = seal_put(txn, DB_AUDIT, &k, s, strlen(s), GFS_KV_APPEND);
	free(s);
	struct gfs_kv_val ok = str_val(a->op_id);
	return rc ? rc : seal_put(txn, DB_AUDIT_BY_OP, &ok, kb, 8, 0);
}

static bool is_format_1(const struct gfs_kv_val *v)
{
	return v->size == strlen(MANIFEST_FORMAT_1_TEXT) &&
	       memcmp(v->data, MANIFEST_FORMAT_1_TEXT, v->size) == 0;
}

static bool db_is_open_kv(struct gfs_kv *kv, enum db db)
{
	if (db == DB_NEXT || db == DB_TVER)
		return gfs_kv_has_db(kv, DB_NEXT) && gfs_kv_has_db(kv, DB_TVER);
	return gfs_kv_has_db(kv, db);
}

/* The same, as txn sees it (a database it created counts). */
static bool db_is_open(struct gfs_kv_txn *txn, enum db db)
{
	if (db == DB_NEXT || db == DB_TVER)
		return has_index(txn);
	return gfs_kv_txn_has_db(txn, db);
}

/* The next and tver databases (a new manifest, the upgrade 2 -> 3). */
static int index_create(struct gfs_kv_txn *txn)
{
	int rc = gfs_kv_db_create(txn, DB_NEXT);
	return rc ? rc : gfs_kv_db_create(txn, DB_TVER);
}

/* Format 1 (unsealed values) is refused with the way out, except when
 * upgrade opens it; anything newer than ours is refused.  The setup of
 * the first open (kv.h), in its first transaction. */
static int format_check(struct env *e, struct gfs_kv_txn *txn, struct gfs_diag *d)
{
	struct gfs_kv_val k = str_val("manifest_format"), v;
	char buf[16] = "", num[8];
	uint64_t f;
	int rc = gfs_kv_get(txn, DB_META, &k, &v);
	if (rc == GFS_KV_NOTFOUND && !e->rdonly) {
		e->format = MANIFEST_FORMAT;
		snprintf(num, sizeof num, "%d", MANIFEST_FORMAT);
		rc = index_create(txn);
		if (!rc)
			rc = gfs_kv_db_create(txn, DB_BRANCHES);
		return rc ? rc : seal_put(txn, DB_META, &k, num, strlen(num), 0);
	}
	if (rc)
		return rc == GFS_KV_NOTFOUND ? 0 : rc;
	if (is_format_1(&v)) {
		e->format = 1;
		if (e->upgrade)
			return 0;
		gfs_diag_set(d, "manifest format 1 was written by an older "
			     "graphfs: run 'graphctl upgrade STORE' (this "
			     "graphfs reads format %d)", MANIFEST_FORMAT);
		return GFS_EFORMAT;
	}
	if (unseal(DB_META, &k, &v)) {
		gfs_diag_set(d, "%s", gfs_corrupt_last());
		return GFS_ECORRUPT;
	}
	if (v.size < sizeof buf)
		memcpy(buf, v.data, v.size);
	if (gfs_parse_u64(buf, &f) || f > MANIFEST_FORMAT || f < 2) {
		gfs_diag_set(d, "manifest format '%s' is not one this "
			     "graphfs understands (%d)", buf, MANIFEST_FORMAT);
		return GFS_EFORMAT;
	}
	e->format = (int)f;
	if (f < MANIFEST_FORMAT && !e->upgrade) {
		gfs_diag_set(d, "manifest format %d was written by an older "
			     "graphfs: run 'graphctl upgrade STORE' (this "
			     "graphfs reads format %d)", (int)f, MANIFEST_FORMAT);
		return GFS_EFORMAT;
	}
	if (f == MANIFEST_FORMAT && !has_index(txn)) {
		gfs_diag_set(d, "manifest format %d has no 'next' or 'tver' "
			     "database: not a graphfs manifest", (int)f);
		return GFS_ECORRUPT;
	}
	return 0;
}

/* ---- open and close ----------------------------------------------------- */

struct setup_arg {
	bool rdonly, upgrade;
};

static int setup(struct gfs_kv_txn *txn, void *user, void *arg,
		 struct gfs_diag *d)
{
	struct env *e = user;
	const struct setup_arg *a = arg;

	e->rdonly = a->rdonly;
	e->upgrade = a->upgrade;
	return format_check(e, txn, d);
}

int gfs_manifest_open(const char *store_dir, unsigned flags,
		      struct gfs_manifest **out, struct gfs_diag *d)
{
	return gfs_manifest_open_url(store_dir, NULL, flags, out, d);
}

/* The backend: the URL's (etcd) if given, else the one the store names. */
static const struct gfs_kv_ops *backend(const char *store_dir, const char *url)
{
	return url ? &gfs_kv_etcd : gfs_kv_backend(store_dir);
}

int gfs_manifest_open_url(const char *store_dir, const char *url,
			  unsigned flags, struct gfs_manifest **out,
			  struct gfs_diag *d)
{
	return gfs_manifest_raw_open(store_dir, backend(store_dir, url), url,
				     flags, out, d);
}

int gfs_manifest_raw_open(const char *store_dir, const struct gfs_kv_ops *ops,
			  const char *url, unsigned flags,
			  struct gfs_manifest **out, struct gfs_diag *d)
{
	struct setup_arg sa = { .rdonly = flags & GFS_MANIFEST_RDONLY,
				.upgrade = flags & GFS_MANIFEST_UPGRADE };
	struct gfs_kv_open_args a = {
		.store_dir = store_dir, .url = url,
		.create = flags & GFS_MANIFEST_CREATE,
		.rdonly = sa.rdonly, .db_names = db_names, .db_flags = db_flags,
		.n_dbs = DB__COUNT, .user_size = sizeof(struct env),
		.setup = setup, .setup_arg = &sa,
	};
	struct gfs_manifest *m = calloc(1, sizeof *m);
	int rc = m ? ops->open(&a, &m->kv, d) : -ENOMEM;

	*out = NULL;
	if (rc) {
		free(m);
		return rc;
	}
	/* etcd: every write carries the fence compares of the calling
	 * thread's table leases on this store (lock.c) */
	if (ops == &gfs_kv_etcd)
		gfs_kv_etcd_set_fence(m->kv, gfs_lock_fence_hook,
				      gfs_kv_etcd_client(m->kv));
	m->e = gfs_kv_user(m->kv);
	*out = m;
	return 0;
}

void gfs_manifest_close(struct gfs_manifest *m)
{
	if (!m)
		return;
	gfs_kv_close(m->kv);
	free(m);
}

int gfs_manifest_sync_created(const char *store_dir, const char *url,
			      struct gfs_diag *d)
{
	return backend(store_dir, url)->sync_created(store_dir, d);
}

size_t gfs_manifest_debug_mapsize(struct gfs_manifest *m)
{
	return gfs_kv_lmdb_debug_mapsize(m->kv);
}

/* ---- the table-version counter and index (format 3) --------------------
 *
 * next/<table>: decimal u32, the smallest number never reserved (absent:
 * 1).  tver/<table>\0<be32 v>: a one-line JSON record.  Every number a
 * sidecar, a publish or init records gets a record and raises next past
 * it, so next stays above every recorded number whoever wrote it
 * (docs/branches-design.md §3.2, last paragraph). */

static const char *const tver_state_names[] = {
	[GFS_TVER_RESERVED] = "reserved", [GFS_TVER_PUBLISHED] = "published",
	[GFS_TVER_RETIRED] = "retired", [GFS_TVER_VOID] = "void",
	[GFS_TVER_COLLECTED] = "collected",
};

const char *gfs_tver_state_name(enum gfs_tver_state st)
{
	if ((size_t)st >= GFS_ARRAY_SIZE(tver_state_names) || !tver_state_names[st])
		return "unknown";
	return tver_state_names[st];
}

static bool tver_state_parse(const char *name, enum gfs_tver_state *st)
{
	for (size_t i = 1; i < GFS_ARRAY_SIZE(tver_state_names); i++)
		if (!strcmp(name, tver_state_names[i])) {
			*st = (enum gfs_tver_state)i;
			return true;
		}
	return false;
}

#define TVER_KEY_MAX (GFS_TABLE_NAME_MAX + 5)

static bool table_name_ok(const char *t)
{
	return t && t[0] && memchr(t, 0, GFS_TABLE_NAME_MAX);
}

static struct gfs_kv_val tver_key(unsigned char kb[TVER_KEY_MAX], const char *table,
			uint32_t v)
{
	size_t n = strlen(table);
	memcpy(kb, table, n + 1);
	for (int i = 0; i < 4; i++)
		kb[n + 1 + i] = (unsigned char)(v >> (24 - 8 * i));
	return (struct gfs_kv_val){ n + 5, kb };
}

static bool tver_key_parse(const struct gfs_kv_val *k, struct gfs_tver_rec *r)
{
	const unsigned char *p = k->data;
	size_t n;
	if (k->size < 6 || k->size - 5 >= GFS_TABLE_NAME_MAX ||
	    p[k->size - 5] != 0 || memchr(p, 0, k->size - 5))
		return false;
	n = k->size - 5;
	memcpy(r->table, p, n);
	r->table[n] = '\0';
	r->v = (uint32_t)p[n + 1] << 24 | (uint32_t)p[n + 2] << 16 |
	       (uint32_t)p[n + 3] << 8 | p[n + 4];
	return r->v != 0;
}

static int tver_decode(const struct gfs_kv_val *k, const struct gfs_kv_val *sealed,
		       struct gfs_tver_rec *r)
{
	struct gfs_kv_val v = *sealed;
	char st[16];
	json_t *o, *c;
	int rc = unseal(DB_TVER, k, &v);
	if (rc)
		return rc;
	memset(r, 0, sizeof *r);
	o = j_load(&v);
	c = json_object_get(o, "compensation");
	bool ok = json_is_object(o) && j_format(o) == RECORD_FORMAT &&
		  tver_key_parse(k, r) && j_str(o, "state", st, sizeof st) &&
		  tver_state_parse(st, &r->state) &&
		  j_str(o, "op_id", r->op_id, sizeof r->op_id) &&
		  j_u32(o, "parent", &r->parent) &&
		  j_u32(o, "content_of", &r->content_of) &&
		  json_is_boolean(c) && j_u64(o, "first_gv", &r->first_gv) &&
		  j_u64(o, "bytes", &r->bytes);
	if (ok)
		r->compensation = json_is_true(c);
	json_decref(o);
	return ok ? 0 : seal_fail(DB_TVER, k, "record does not parse");
}

static int tver_put(struct env *e, struct gfs_kv_txn *txn, const struct gfs_tver_rec *r)
{
	unsigned char kb[TVER_KEY_MAX];
	struct gfs_kv_val k = tver_key(kb, r->table, r->v);
	if (!has_index(txn))
		return GFS_EFORMAT;
	json_t *o = json_object();
	int rc = o ? 0 : -ENOMEM;
	if (!rc)
		rc = j_set(o, "format", json_integer(RECORD_FORMAT));
	if (!rc)
		rc = j_set(o, "state", json_string(gfs_tver_state_name(r->state)));
	if (!rc)
		rc = j_set(o, "op_id", json_string(r->op_id));
	if (!rc)
		rc = j_set(o, "parent", json_integer(r->parent));
	if (!rc)
		rc = j_set(o, "content_of", json_integer(r->content_of));
	if (!rc)
		rc = j_set(o, "compensation", json_boolean(r->compensation));
	if (!rc)
		rc = j_set(o, "first_gv", json_integer((json_int_t)r->first_gv));
	if (!rc)
		rc = j_set(o, "bytes", json_integer((json_int_t)r->bytes));
	if (rc) {
		json_decref(o);
		return rc;
	}
	char *s = j_dump(o);
	if (!s)
		return -ENOMEM;
	rc = seal_put(txn, DB_TVER, &k, s, strlen(s), 0);
	free(s);
	return rc;
}

/* 0, GFS_KV_NOTFOUND or an error. */
static int tver_read(struct env *e, struct gfs_kv_txn *txn, const char *table,
		     uint32_t v, struct gfs_tver_rec *r)
{
	unsigned char kb[TVER_KEY_MAX];
	struct gfs_kv_val k = tver_key(kb, table, v), val;
	if (!has_index(txn))
		return GFS_EFORMAT;
	int rc = gfs_kv_get(txn, DB_TVER, &k, &val);
	return rc ? rc : tver_decode(&k, &val, r);
}

static int next_parse(const struct gfs_kv_val *k, const struct gfs_kv_val *sealed, uint32_t *out)
{
	struct gfs_kv_val v = *sealed;
	char buf[16] = "";
	uint64_t n;
	int rc = unseal(DB_NEXT, k, &v);
	if (rc)
		return rc;
	if (v.size < sizeof buf)
		memcpy(buf, v.data, v.size);
	if (gfs_parse_u64(buf, &n) || n == 0 || n > UINT32_MAX)
		return seal_fail(DB_NEXT, k, "not a version number");
	*out = (uint32_t)n;
	return 0;
}

static int next_read(struct env *e, struct gfs_kv_txn *txn, const char *table,
		     uint32_t *out)
{
	struct gfs_kv_val k = str_val(table), v;
	*out = 1;
	if (!has_index(txn))
		return GFS_EFORMAT;
	int rc = gfs_kv_get(txn, DB_NEXT, &k, &v);
	if (rc == GFS_KV_NOTFOUND)
		return 0;
	return rc ? rc : next_parse(&k, &v, out);
}

static int next_put(struct env *e, struct gfs_kv_txn *txn, const char *table,
		    uint32_t n)
{
	struct gfs_kv_val k = str_val(table);
	char num[16];
	if (!has_index(txn))
		return GFS_EFORMAT;
	snprintf(num, sizeof num, "%u", n);
	return seal_put(txn, DB_NEXT, &k, num, strlen(num), 0);
}

/* next[table] > v afterwards. */
static int next_raise(struct env *e, struct gfs_kv_txn *txn, const char *table,
		      uint32_t v)
{
	uint32_t n;
	int rc = next_read(e, txn, table, &n);
	if (!rc && n <= v)
		rc = v == UINT32_MAX ? -EOVERFLOW : next_put(e, txn, table, v + 1);
	return rc;
}

/* A fresh reservation: *v = next[table]++ with r's fields (table, op_id,
 * parent, content_of, compensation) as a reserved record.  A number that
 * has a record already (a store written around the counter) is skipped:
 * numbers are never reused. */
static int tver_reserve(struct env *e, struct gfs_kv_txn *txn, struct gfs_tver_rec *r)
{
	struct gfs_tver_rec old;
	uint32_t n;
	int rc = next_read(e, txn, r->table, &n);
	for (int i = 0; !rc && i < 1024; i++, n++) {
		rc = n == UINT32_MAX ? -EOVERFLOW : tver_read(e, txn, r->table, n, &old);
		if (rc == GFS_KV_NOTFOUND)
			break;
	}
	if (rc != GFS_KV_NOTFOUND)
		return rc ? rc : GFS_ECORRUPT;
	r->v = n;
	r->state = GFS_TVER_RESERVED;
	rc = tver_put(e, txn, r);
	return rc ? rc : next_put(e, txn, r->table, n + 1);
}

/* A number chosen by the caller (a hand-built sidecar, an old build's
 * compensation): reserved unless it has a record, and next raised past. */
static int tver_note(struct env *e, struct gfs_kv_txn *txn, const struct gfs_tver_rec *r)
{
	struct gfs_tver_rec old;
	int rc = tver_read(e, txn, r->table, r->v, &old);
	if (rc == GFS_KV_NOTFOUND)
		rc = tver_put(e, txn, r);
	return rc ? rc : next_raise(e, txn, r->table, r->v);
}

/* Moves (table, v) to state; creates the record when absent.  published
 * keeps an earlier first_gv. */
static int tver_mark(struct env *e, struct gfs_kv_txn *txn, const char *table,
		     uint32_t v, enum gfs_tver_state st, uint64_t gv)
{
	struct gfs_tver_rec r;
	int rc = tver_read(e, txn, table, v, &r);
	if (rc == GFS_KV_NOTFOUND) {
		memset(&r, 0, sizeof r);
		copy_str(r.table, sizeof r.table, table);
		r.v = v;
		rc = 0;
	}
	if (rc || v == 0)
		return rc;
	if (st == GFS_TVER_PUBLISHED && r.state == GFS_TVER_PUBLISHED)
		return 0;
	r.state = st;
	if (st == GFS_TVER_PUBLISHED)
		r.first_gv = gv;
	rc = tver_put(e, txn, &r);
	return rc ? rc : next_raise(e, txn, table, v);
}

struct tver_get_ctx {
	const char *table;
	uint32_t v;
	struct gfs_tver_rec *out;
};

static int tver_get_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct tver_get_ctx *c = ctx;
	return tver_read(e, txn, c->table, c->v, c->out);
}

int gfs_manifest_tver_get(struct gfs_manifest *m, const char *table,
			  uint32_t v, struct gfs_tver_rec *out)
{
	struct tver_get_ctx c = { table, v, out };
	if (!table_name_ok(table) || v == 0)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	int rc = run_read(m, tver_get_txn, &c);
	if (rc)
		memset(out, 0, sizeof *out);
	return rc;
}

struct tver_list_ctx {
	const char *table;
	int (*fn)(const struct gfs_tver_rec *r, void *arg);
	void *arg;
	int ret;
};

static int tver_list_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct tver_list_ctx *c = ctx;
	unsigned char kb[TVER_KEY_MAX];
	struct gfs_kv_val k = tver_key(kb, c->table, 0), v;
	size_t plen = strlen(c->table) + 1;
	struct gfs_tver_rec r;
	struct gfs_kv_cursor *cur;
	if (!has_index(txn))
		return GFS_EFORMAT;
	int rc = gfs_kv_cursor_open(txn, DB_TVER, &cur);
	if (rc)
		return rc;
	rc = gfs_kv_cursor_get(cur, &k, &v, GFS_KV_SET_RANGE);
	while (!rc && !c->ret && k.size == plen + 4 &&
	       !memcmp(k.data, kb, plen)) {
		rc = tver_decode(&k, &v, &r);
		if (!rc)
			c->ret = c->fn(&r, c->arg);
		if (!rc && !c->ret)
			rc = gfs_kv_cursor_get(cur, &k, &v, GFS_KV_NEXT);
	}
	gfs_kv_cursor_close(cur);
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

int gfs_manifest_tver_list(struct gfs_manifest *m, const char *table,
			   int (*fn)(const struct gfs_tver_rec *r, void *arg),
			   void *arg)
{
	struct tver_list_ctx c = { table, fn, arg, 0 };
	if (!table_name_ok(table))
		return -EINVAL;
	int rc = run_read(m, tver_list_txn, &c);
	return rc ? rc : c.ret;
}

struct next_ctx {
	const char *table;
	uint32_t *out;
};

static int next_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct next_ctx *c = ctx;
	return next_read(e, txn, c->table, c->out);
}

int gfs_manifest_next(struct gfs_manifest *m, const char *table,
		      uint32_t *out)
{
	struct next_ctx c = { table, out };
	if (!table_name_ok(table))
		return -EINVAL;
	return run_read(m, next_txn, &c);
}

int gfs_manifest_format(const struct gfs_manifest *m)
{
	return m->e->format;
}

/* ---- versions ----------------------------------------------------------- */

static bool gv_fields_valid(const struct gfs_gv *gv)
{
	return gv->op[0] != '\0' && memchr(gv->op, 0, sizeof gv->op) &&
	       memchr(gv->op_id, 0, sizeof gv->op_id) &&
	       memchr(gv->actor, 0, sizeof gv->actor) &&
	       memchr(gv->schema_id, 0, sizeof gv->schema_id);
}

static bool detail_valid(const char *detail)
{
	json_t *o = detail ? json_loads(detail, 0, NULL) : NULL;
	bool ok = !detail || json_is_object(o);
	json_decref(o);
	return ok;
}

/* Version 1 on main, and main's record (docs/branches-design.md §1.1). */
static int init_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct gfs_gv gv = *(const struct gfs_gv *)ctx;
	struct gfs_branch b = { .head = 1, .from = 1 };
	struct gfs_gv *head;
	int rc = head_read(e, txn, &head);
	gfs_gv_free(head);
	if (rc != GFS_KV_NOTFOUND)
		return rc ? rc : -EEXIST;
	gv.version = 1;
	if (gv.time_ns == 0)
		gv.time_ns = gfs_now_ns();
	qsort(gv.pins, gv.n_pins, sizeof *gv.pins, pin_cmp);
	copy_str(b.name, sizeof b.name, "main");
	rc = gfs_ulid_new(b.id);
	b.created_ns = gv.time_ns;
	copy_str(b.actor, sizeof b.actor, gv.actor);
	copy_str(gv.branch, sizeof gv.branch, "main");
	memcpy(gv.branch_id, b.id, sizeof gv.branch_id);
	gv.n_parents = 0;
	if (!rc)
		rc = gv_put(e, txn, &gv);
	/* version 1 of each table exists before the store does: published by
	 * gv 1, next = 2 (docs/branches-design.md §1.1 "init") */
	for (size_t i = 0; !rc && i < gv.n_pins; i++)
		if (gv.pins[i].version)
			rc = tver_mark(e, txn, gv.pins[i].table,
				       gv.pins[i].version, GFS_TVER_PUBLISHED, 1);
	if (!rc && !has_branches(txn))
		rc = -EROFS; /* a new manifest always has it (format_check) */
	return rc ? rc : branch_put(e, txn, &b);
}

int gfs_manifest_init(struct gfs_manifest *m, const struct gfs_gv *first)
{
	if (!gv_fields_valid(first) || !detail_valid(first->detail))
		return -EINVAL;
	struct gfs_gv gv = *first;
	gv.pins = NULL;
	if (first->n_pins) {
		gv.pins = malloc(first->n_pins * sizeof *gv.pins);
		if (!gv.pins)
			return -ENOMEM;
		memcpy(gv.pins, first->pins, first->n_pins * sizeof *gv.pins);
	}
	int rc = run_write(m, init_txn, &gv, NULL);
	free(gv.pins);
	return rc;
}

static int head_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct gfs_branch b;

	return branch_head_read(e, txn, "main", &b, ctx);
}

int gfs_manifest_head(struct gfs_manifest *m, struct gfs_gv **out)
{
	*out = NULL;
	return run_read(m, head_txn, out);
}

/* The last key of versions, unchecked against meta/head. */
static int head_version_txn_raw(struct env *e, struct gfs_kv_txn *txn, uint64_t *out)
{
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	int rc = gfs_kv_cursor_open(txn, DB_VERSIONS, &c);
	if (rc)
		return rc;
	rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_LAST);
	gfs_kv_cursor_close(c);
	if (!rc && !be64_get(&k, out))
		rc = seal_fail(DB_VERSIONS, &k, "the last key is not a version number");
	return rc;
}

static int head_version_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	int rc = head_version_txn_raw(e, txn, ctx);
	uint64_t w;

	if (!rc)
		rc = head_witness_check(e, txn, *(uint64_t *)ctx);
	/* no version record at all, but meta/head names one: a damaged page
	 * hid them (LMDB finds nothing rather than faulting) */
	if (rc == GFS_KV_NOTFOUND && head_witness_get(e, txn, &w) == 0 && w) {
		gfs_corrupt_note("manifest is corrupt: no graph version record "
				 "can be read but meta/head says %llu "
				 "(records lost inside data.mdb)",
				 (unsigned long long)w);
		rc = GFS_ECORRUPT;
	}
	return rc;
}

uint64_t gfs_manifest_head_version(struct gfs_manifest *m)
{
	uint64_t v = 0;
	return run_read(m, head_version_txn, &v) ? 0 : v;
}

struct get_ctx {
	uint64_t n;
	struct gfs_gv **out;
	bool any;  /* removed ones too */
};

static int get_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct get_ctx *g = ctx;
	unsigned char kb[8];
	be64_put(kb, g->n);
	struct gfs_kv_val k = { 8, kb }, v;
	int rc = gfs_kv_get(txn, DB_VERSIONS, &k, &v);
	uint64_t w;
	if (rc == GFS_KV_NOTFOUND && g->n >= 1 && head_witness_get(e, txn, &w) == 0 &&
	    g->n <= w) {
		gfs_corrupt_note("manifest record versions/%llu is missing below "
				 "the head %llu: the manifest is corrupt",
				 (unsigned long long)g->n, (unsigned long long)w);
		rc = GFS_ECORRUPT;
	}
	if (!rc)
		rc = gv_decode(&k, &v, g->out);
	if (!rc && (*g->out)->removed && !g->any) { /* a tombstone: gc removed it */
		gfs_gv_free(*g->out);
		*g->out = NULL;
		rc = -ENOENT;
	}
	return rc;
}

int gfs_manifest_get(struct gfs_manifest *m, uint64_t n, struct gfs_gv **out)
{
	struct get_ctx g = { n, out, false };
	*out = NULL;
	return run_read(m, get_txn, &g);
}

int gfs_manifest_get_any(struct gfs_manifest *m, uint64_t n,
			 struct gfs_gv **out)
{
	struct get_ctx g = { n, out, true };
	*out = NULL;
	return run_read(m, get_txn, &g);
}

/* A batch of consecutive records read in one short read transaction; the
 * callbacks run after it ends (invariant 2). */
struct batch {
	uint64_t next, to;
	void *item[BATCH];
	size_t n;
	bool done;
};

static int hist_fill(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct batch *b = ctx;
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	unsigned char kb[8];
	be64_put(kb, b->next);
	k = (struct gfs_kv_val){ 8, kb };
	int rc = gfs_kv_cursor_open(txn, DB_VERSIONS, &c);
	if (rc)
		return rc;
	rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_SET_RANGE);
	while (!rc && b->n < BATCH) {
		struct gfs_gv *gv;
		rc = gv_decode(&k, &v, &gv);
		if (rc)
			break;
		if (gv->version > b->to) {
			gfs_gv_free(gv);
			break;
		}
		b->item[b->n++] = gv;
		b->next = gv->version + 1;
		rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT);
	}
	gfs_kv_cursor_close(c);
	b->done = b->n < BATCH;
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

int gfs_manifest_history(struct gfs_manifest *m, uint64_t from, uint64_t to,
			 int (*fn)(const struct gfs_gv *gv, void *arg), void *arg)
{
	struct batch b = { .next = from ? from : 1, .to = to };
	int rc = to ? 0 : run_read(m, head_version_txn, &b.to);
	if (rc == -ENOENT) /* no version yet: nothing to visit */
		return 0;
	while (!rc && !b.done && b.next <= b.to) {
		b.n = 0;
		rc = run_read(m, hist_fill, &b);
		size_t i = 0;
		for (; !rc && i < b.n; i++)
			rc = fn(b.item[i], arg);
		for (i = 0; i < b.n; i++)
			gfs_gv_free(b.item[i]);
	}
	return rc;
}

/* ---- publish ------------------------------------------------------------ */

struct pub_ctx {
	const struct gfs_publish *p;
	struct gfs_diag *d;
	uint64_t version;
	struct gfs_branch b;     /* the branch published on */
};

static int check_pins(const struct gfs_gv *head, const struct gfs_publish *p,
		      struct gfs_diag *d)
{
	for (size_t i = 0; i < p->n_tables; i++) {
		const struct gfs_sc_table *t = &p->tables[i];
		uint32_t actual = gfs_gv_pin(head, t->table);
		if (actual != t->expected) {
			gfs_diag_reset(d, "table '%s' moved: expected version "
				       "%u, manifest has %u", t->table,
				       t->expected, actual);
			return GFS_ECAS;
		}
	}
	return 0;
}

/* head's pins with the written tables moved to post (new tables added). */
static int next_pins(const struct gfs_gv *head, const struct gfs_publish *p,
		     struct gfs_gv *nv)
{
	nv->pins = calloc(head->n_pins + p->n_tables + 1, sizeof *nv->pins);
	if (!nv->pins)
		return -ENOMEM;
	memcpy(nv->pins, head->pins, head->n_pins * sizeof *nv->pins);
	nv->n_pins = head->n_pins;
	for (size_t i = 0; i < p->n_tables; i++) {
		const struct gfs_sc_table *t = &p->tables[i];
		size_t j = 0;
		if (!t->written)
			continue;
		while (j < nv->n_pins && strcmp(nv->pins[j].table, t->table))
			j++;
		if (j == nv->n_pins)
			memcpy(nv->pins[nv->n_pins++].table, t->table,
			       sizeof t->table);
		nv->pins[j].version = t->post;
	}
	qsort(nv->pins, nv->n_pins, sizeof *nv->pins, pin_cmp);
	return 0;
}

/* gv last+1 on branch c->b with parents [head]; moves the branch head. */
static int write_version(struct env *e, struct gfs_kv_txn *txn, const struct gfs_gv *head,
			 const struct gfs_gv *last, struct pub_ctx *c)
{
	const struct gfs_publish *p = c->p;
	struct gfs_gv nv = *head;
	uint64_t now = gfs_now_ns();
	nv.version = last->version + 1;
	nv.time_ns = now > last->time_ns ? now : last->time_ns;
	copy_str(nv.branch, sizeof nv.branch, c->b.name);
	memcpy(nv.branch_id, c->b.id, sizeof nv.branch_id);
	nv.parents[0] = head->version;
	nv.n_parents = 1;
	if (p->merge_parent) /* a merge: its source */
		nv.parents[nv.n_parents++] = p->merge_parent;
	copy_str(nv.op, sizeof nv.op, p->op);
	copy_str(nv.op_id, sizeof nv.op_id, p->op_id);
	copy_str(nv.actor, sizeof nv.actor, p->actor);
	if (p->schema_id)
		copy_str(nv.schema_id, sizeof nv.schema_id, p->schema_id);
	nv.detail = (char *)p->detail;
	int rc = next_pins(head, p, &nv);
	if (!rc)
		rc = gv_put(e, txn, &nv);
	free(nv.pins);
	if (!rc)
		c->version = nv.version;
	c->b.head = nv.version;
	/* main of a store made before branches stays without a record */
	if (!rc && c->b.id[0])
		rc = branch_put(e, txn, &c->b);
	return rc;
}

static int sidecar_step(struct env *e, struct gfs_kv_txn *txn, struct pub_ctx *c)
{
	const struct gfs_publish *p = c->p;
	if (!p->sidecar)
		return 0;
	struct gfs_kv_val k = str_val(p->sidecar), v;
	int rc = gfs_kv_get(txn, DB_SIDECARS, &k, &v);
	if (rc == GFS_KV_NOTFOUND && p->require_sidecar) {
		gfs_diag_reset(c->d, "sidecar '%s' already resolved",
			       p->sidecar);
		return GFS_EGONE;
	}
	if (rc == GFS_KV_NOTFOUND)
		return 0;
	/* a recovery publish decides on the record it classified */
	if (!rc && p->sidecar_rev && sidecar_rev(&v) != p->sidecar_rev) {
		gfs_diag_reset(c->d, "sidecar '%s' changed since it was classified (confirmed meanwhile?)",
			       p->sidecar);
		return GFS_ECAS;
	}
	return rc ? rc : gfs_kv_del(txn, DB_SIDECARS, &k);
}

/* W6 and §3.1's resolving publish: every version a written table moves
 * to is published by this gv; then the caller's explicit moves. */
static int tver_step(struct env *e, struct gfs_kv_txn *txn, struct pub_ctx *c)
{
	const struct gfs_publish *p = c->p;
	int rc = 0;

	for (size_t i = 0; !rc && c->version && i < p->n_tables; i++)
		if (p->tables[i].written && p->tables[i].post != p->tables[i].expected)
			rc = tver_mark(e, txn, p->tables[i].table, p->tables[i].post,
				       GFS_TVER_PUBLISHED, c->version);
	for (size_t i = 0; !rc && i < p->n_tver_sets; i++)
		rc = tver_mark(e, txn, p->tver_sets[i].table, p->tver_sets[i].v,
			       p->tver_sets[i].state, c->version);
	return rc;
}

static int audit_step(struct env *e, struct gfs_kv_txn *txn, struct pub_ctx *c)
{
	if (!c->p->audit)
		return 0;
	struct gfs_audit a = *c->p->audit;
	a.graph_version = c->version;
	if (a.time_ns == 0)
		a.time_ns = gfs_now_ns();
	return audit_put(e, txn, &a);
}

/* The branch record, which must still have the id the writer read
 * (docs/branches-design.md §4 step 1), and its head. */
static int pub_branch(struct env *e, struct gfs_kv_txn *txn, struct pub_ctx *c,
		      struct gfs_gv **head)
{
	const char *name = c->p->branch ? c->p->branch : "main";
	const char *id = c->p->branch_id ? c->p->branch_id : "";
	int rc = branch_head_read(e, txn, name, &c->b, head);

	if (rc == GFS_KV_NOTFOUND && strcmp(name, "main")) {
		gfs_diag_reset(c->d, "branch '%s' was deleted", name);
		return GFS_ECAS;
	}
	if (!rc && id[0] && strcmp(id, c->b.id)) {
		gfs_diag_reset(c->d, "branch '%s' was deleted (and created again: id %s, not %s)",
			       name, c->b.id[0] ? c->b.id : "none", id);
		return GFS_ECAS;
	}
	if (!rc && c->p->expected_schema &&
	    strcmp((*head)->schema_id, c->p->expected_schema)) {
		gfs_diag_reset(c->d, "the schema of branch '%s' changed: %s, not %s",
			       name, (*head)->schema_id, c->p->expected_schema);
		return GFS_ECAS;
	}
	return rc;
}

static int publish_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct pub_ctx *c = ctx;
	struct gfs_gv *head = NULL, *last = NULL;
	c->version = 0;
	/* the sidecar first: gone means resolved elsewhere, write nothing */
	int rc = sidecar_step(e, txn, c);
	if (!rc)
		rc = pub_branch(e, txn, c, &head);
	if (!rc)
		rc = head_read(e, txn, &last);
	if (rc == GFS_KV_NOTFOUND && c->p->no_version)
		rc = 0;
	else if (rc == GFS_KV_NOTFOUND)
		gfs_diag_set(c->d, "manifest has no graph version yet");
	if (!rc && head)
		rc = check_pins(head, c->p, c->d);
	if (!rc && !c->p->no_version)
		rc = write_version(e, txn, head, last, c);
	if (!rc)
		rc = tver_step(e, txn, c);
	if (!rc)
		rc = audit_step(e, txn, c);
	gfs_gv_free(head);
	gfs_gv_free(last);
	return rc;
}

static int publish_valid(const struct gfs_publish *p, struct gfs_diag *d)
{
	char tmp[GFS_ACTOR_MAX];
	bool ok = (p->no_version ||
		   (p->op && p->op[0] && strlen(p->op) < 24 && p->op_id &&
		    strlen(p->op_id) <= GFS_ULID_LEN &&
		    copy_str(tmp, sizeof tmp, p->actor) &&
		    (!p->schema_id || strlen(p->schema_id) < 17) &&
		    detail_valid(p->detail))) &&
		  (!p->require_sidecar || p->sidecar) &&
		  (!p->branch || gfs_branch_name_valid(p->branch)) &&
		  (!p->branch_id || strlen(p->branch_id) <= GFS_ULID_LEN) &&
		  (!p->expected_schema || strlen(p->expected_schema) < 17) &&
		  (!p->sidecar || strlen(p->sidecar) <= GFS_ULID_LEN) &&
		  (!p->audit || p->audit->op_id[0]);
	for (size_t i = 0; ok && i < p->n_tables; i++)
		ok = memchr(p->tables[i].table, 0, GFS_TABLE_NAME_MAX) &&
		     p->tables[i].table[0];
	for (size_t i = 0; ok && i < p->n_tver_sets; i++)
		ok = table_name_ok(p->tver_sets[i].table) && p->tver_sets[i].v &&
		     (p->tver_sets[i].state != GFS_TVER_PUBLISHED || !p->no_version);
	if (!ok)
		gfs_diag_set(d, "invalid publish request");
	return ok ? 0 : -EINVAL;
}

int gfs_manifest_publish(struct gfs_manifest *m, const struct gfs_publish *p,
			 uint64_t *out_version, struct gfs_diag *d)
{
	struct pub_ctx c = { .p = p, .d = d };
	if (out_version)
		*out_version = 0;
	int rc = publish_valid(p, d);
	if (!rc)
		rc = run_write(m, publish_txn, &c, d);
	if (!rc && out_version)
		*out_version = c.version;
	return rc;
}

/* ---- branches ----------------------------------------------------------- */

struct br_ctx {
	const char *name;
	const char *from_branch;
	uint64_t from_gv;
	const char *actor;
	struct gfs_branch b;
	struct gfs_gv **gv;
	struct gfs_diag *d;
	struct gfs_branch *list;
	size_t n;
	bool created;
};

static int br_get_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct br_ctx *c = ctx;

	return branch_read(e, txn, c->name, &c->b);
}

int gfs_manifest_branch_get(struct gfs_manifest *m, const char *name,
			    struct gfs_branch *out)
{
	struct br_ctx c = { .name = name };
	int rc = gfs_branch_name_valid(name) ? run_read(m, br_get_txn, &c) : -ENOENT;

	if (!rc)
		*out = c.b;
	return rc;
}

static int br_head_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct br_ctx *c = ctx;

	return branch_head_read(e, txn, c->name, &c->b, c->gv);
}

int gfs_manifest_branch_read(struct gfs_manifest *m, const char *name,
			     struct gfs_branch *b, struct gfs_gv **out)
{
	struct br_ctx c = { .name = name, .gv = out };
	int rc;

	*out = NULL;
	rc = gfs_branch_name_valid(name) ? run_read(m, br_head_txn, &c) : -ENOENT;
	if (!rc && b)
		*b = c.b;
	return rc;
}

int gfs_manifest_branch_head(struct gfs_manifest *m, const char *name,
			     struct gfs_gv **out)
{
	return gfs_manifest_branch_read(m, name, NULL, out);
}

/* main's record for a store made before branches: head = the highest gv. */
static int main_ensure(struct env *e, struct gfs_kv_txn *txn, bool *created)
{
	struct gfs_branch b;
	int rc = branch_read(e, txn, "main", &b);

	*created = false;
	if (rc || b.id[0])
		return rc == GFS_KV_NOTFOUND ? 0 : rc; /* no gv at all: init's job */
	rc = gfs_ulid_new(b.id);
	b.created_ns = gfs_now_ns();
	copy_str(b.actor, sizeof b.actor, "graphctl upgrade");
	if (!rc)
		rc = branch_put(e, txn, &b);
	*created = !rc;
	return rc;
}

/* Counters in meta (decimal text): meta/branches_gen (branch creates and
 * deletes) and meta/gc (gc commits).  A mount's notifier polls them: a
 * change that publishes no new head still moves one. */
#define META_BRANCHES_GEN "branches_gen"
#define META_GC "gc"

static int counter_read(struct env *e, struct gfs_kv_txn *txn, const char *key, uint64_t *n)
{
	struct gfs_kv_val k = str_val(key), v;
	char buf[24] = "";
	int rc = gfs_kv_get(txn, DB_META, &k, &v);

	*n = 0;
	if (rc == GFS_KV_NOTFOUND)
		return 0;
	if (!rc)
		rc = unseal(DB_META, &k, &v);
	if (rc)
		return rc;
	if (v.size < sizeof buf)
		memcpy(buf, v.data, v.size);
	return gfs_parse_u64(buf, n) ? seal_fail(DB_META, &k, "not a number") : 0;
}

/* meta/key + 1, in the caller's write transaction. */
static int counter_bump(struct env *e, struct gfs_kv_txn *txn, const char *key)
{
	struct gfs_kv_val k = str_val(key);
	char num[24];
	uint64_t n;
	int rc = counter_read(e, txn, key, &n);

	if (rc)
		return rc;
	snprintf(num, sizeof num, "%llu", (unsigned long long)n + 1);
	return seal_put(txn, DB_META, &k, num, strlen(num), 0);
}

struct counter_ctx {
	const char *key;
	uint64_t n;
};

static int counter_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct counter_ctx *c = ctx;

	return counter_read(e, txn, c->key, &c->n);
}

static uint64_t counter_get(struct gfs_manifest *m, const char *key)
{
	struct counter_ctx c = { key, 0 };

	return run_read(m, counter_txn, &c) ? 0 : c.n;
}

uint64_t gfs_manifest_branches_gen(struct gfs_manifest *m)
{
	return counter_get(m, META_BRANCHES_GEN);
}

/* The graph version a new branch starts at; GFS_KV_NOTFOUND (d says which)
 * when from_branch or from_gv does not exist. */
static int create_from(struct env *e, struct gfs_kv_txn *txn, struct br_ctx *c,
		       uint64_t *from)
{
	struct gfs_branch fb = { .head = 0 };
	struct gfs_gv *gv = NULL;
	unsigned char kb[8];
	struct gfs_kv_val k = { 8, kb }, v;
	const char *from_branch = c->from_branch;
	int rc;

	if (!from_branch && !c->from_gv)
		from_branch = "main";
	if (from_branch) {
		rc = gfs_branch_name_valid(from_branch)
		     ? branch_read(e, txn, from_branch, &fb) : GFS_KV_NOTFOUND;
		if (rc == GFS_KV_NOTFOUND)
			gfs_diag_set(c->d, "no branch '%s' (see 'graphctl branch list')",
				     from_branch);
		*from = fb.head;
		return rc;
	}
	be64_put(kb, c->from_gv);
	rc = c->from_gv ? gfs_kv_get(txn, DB_VERSIONS, &k, &v) : GFS_KV_NOTFOUND;
	if (!rc)
		rc = gv_decode(&k, &v, &gv); /* it must be a version we can read */
	if (!rc && gv->removed) {
		gfs_diag_set(c->d, "graph version %llu was removed by gc (see 'graphctl log')",
			     (unsigned long long)c->from_gv);
		rc = -ENOENT;
	}
	gfs_gv_free(gv);
	if (rc == GFS_KV_NOTFOUND)
		gfs_diag_set(c->d, "graph version %llu does not exist (see 'graphctl log')",
			     (unsigned long long)c->from_gv);
	*from = c->from_gv;
	return rc;
}

static int br_create_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct br_ctx *c = ctx;
	struct gfs_branch old;
	bool made;
	int rc = branch_read(e, txn, c->name, &old);

	if (!rc) {
		gfs_diag_set(c->d, "branch '%s' already exists (head %llu)", c->name,
			     (unsigned long long)old.head);
		return -EEXIST;
	}
	if (rc != GFS_KV_NOTFOUND)
		return rc;
	rc = main_ensure(e, txn, &made);
	memset(&c->b, 0, sizeof c->b);
	if (!rc)
		rc = create_from(e, txn, c, &c->b.from);
	if (rc == GFS_KV_NOTFOUND)
		return -ENOENT; /* not GFS_KV_NOTFOUND: that would be "gone" */
	copy_str(c->b.name, sizeof c->b.name, c->name);
	copy_str(c->b.actor, sizeof c->b.actor, c->actor ? c->actor : "");
	c->b.head = c->b.from;
	c->b.created_ns = gfs_now_ns();
	if (!rc)
		rc = gfs_ulid_new(c->b.id);
	if (!rc)
		rc = counter_bump(e, txn, META_BRANCHES_GEN);
	return rc ? rc : branch_put(e, txn, &c->b);
}

int gfs_manifest_branch_create(struct gfs_manifest *m, const char *name,
			       const char *from_branch, uint64_t from_gv,
			       const char *actor, struct gfs_branch *out,
			       struct gfs_diag *d)
{
	struct br_ctx c = { .name = name, .from_branch = from_branch,
			    .from_gv = from_gv, .actor = actor, .d = d };
	int rc;

	if (!gfs_branch_name_valid(name)) {
		gfs_diag_set(d, "bad branch name '%s': a letter or digit, then up to 63 letters, digits, '.', '_' or '-'",
			     name ? name : "");
		return -EINVAL;
	}
	if (!gfs_kv_has_db(m->kv, DB_BRANCHES)) {
		gfs_diag_set(d, "this store has no branches database (made by a build before branches): run 'graphctl upgrade STORE'");
		return GFS_EFORMAT;
	}
	rc = run_write(m, br_create_txn, &c, d);
	if (!rc && out)
		*out = c.b;
	return rc;
}

/* The first sidecar that names branch b (by id, or by name when it has no
 * id), or that cannot be read; 0 when none, 1 when one does. */
static int named_by_sidecar(struct env *e, struct gfs_kv_txn *txn, const struct gfs_branch *b,
			    char op_id[GFS_ULID_LEN + 1], bool *unreadable)
{
	struct gfs_kv_cursor *cur;
	struct gfs_kv_val k, v;
	int rc = gfs_kv_cursor_open(txn, DB_SIDECARS, &cur), found = 0;

	if (rc)
		return rc;
	rc = gfs_kv_cursor_get(cur, &k, &v, GFS_KV_FIRST);
	while (!rc && !found) {
		struct gfs_sidecar *sc = NULL;
		int r = sidecar_decode(&k, &v, &sc);
		if (r == -ENOMEM) {
			rc = r;
			break;
		}
		*unreadable = r != 0;
		found = r != 0 || (sc->branch_id[0] ? !strcmp(sc->branch_id, b->id)
				   : !strcmp(sc->branch[0] ? sc->branch : "main", b->name));
		if (found)
			copy_str(op_id, GFS_ULID_LEN + 1, sc->op_id);
		gfs_sidecar_free(sc);
		if (!found)
			rc = gfs_kv_cursor_get(cur, &k, &v, GFS_KV_NEXT);
	}
	gfs_kv_cursor_close(cur);
	return rc == GFS_KV_NOTFOUND ? 0 : rc ? rc : found;
}

static int br_delete_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct br_ctx *c = ctx;
	char op_id[GFS_ULID_LEN + 1] = "";
	bool unreadable = false;
	struct gfs_kv_val k = str_val(c->name);
	int rc = branch_read(e, txn, c->name, &c->b);

	if (rc == GFS_KV_NOTFOUND) {
		gfs_diag_set(c->d, "no branch '%s' (see 'graphctl branch list')", c->name);
		return -ENOENT;
	}
	if (!rc)
		rc = named_by_sidecar(e, txn, &c->b, op_id, &unreadable);
	if (rc == 1) {
		gfs_diag_set(c->d, unreadable
			     ? "cannot delete branch '%s': sidecar %s cannot be read, so it may name it (pending recovery); see 'graphctl recover --list'"
			     : "cannot delete branch '%s': operation %s on it is pending recovery; run 'graphctl recover' first",
			     c->name, op_id);
		return -EBUSY;
	}
	if (!rc)
		rc = counter_bump(e, txn, META_BRANCHES_GEN);
	return rc ? rc : gfs_kv_del(txn, DB_BRANCHES, &k);
}

int gfs_manifest_branch_delete(struct gfs_manifest *m, const char *name,
			       struct gfs_diag *d)
{
	struct br_ctx c = { .name = name, .d = d };

	if (!gfs_branch_name_valid(name)) {
		gfs_diag_set(d, "no branch '%s' (see 'graphctl branch list')", name ? name : "");
		return -ENOENT;
	}
	if (!strcmp(name, "main")) {
		gfs_diag_set(d, "branch 'main' cannot be deleted");
		return -EPERM;
	}
	if (!gfs_kv_has_db(m->kv, DB_BRANCHES)) {
		gfs_diag_set(d, "no branch '%s' (see 'graphctl branch list')", name);
		return -ENOENT;
	}
	return run_write(m, br_delete_txn, &c, d);
}

static int br_push(struct br_ctx *c, const struct gfs_branch *b)
{
	size_t cap = c->n; /* exact growth: lists are short */
	void *p = realloc(c->list, (cap + 1) * sizeof *c->list);

	if (!p)
		return -ENOMEM;
	c->list = p;
	c->list[c->n++] = *b;
	return 0;
}

static int br_list_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct br_ctx *c = ctx;
	struct gfs_branch b;
	struct gfs_kv_cursor *cur;
	struct gfs_kv_val k, v;
	bool main_seen = false;
	int rc = 0;

	c->n = 0;
	if (has_branches(txn) && !(rc = gfs_kv_cursor_open(txn, DB_BRANCHES, &cur))) {
		rc = gfs_kv_cursor_get(cur, &k, &v, GFS_KV_FIRST);
		while (!rc) {
			rc = branch_decode(&k, &v, &b);
			main_seen = main_seen || (!rc && !strcmp(b.name, "main"));
			if (!rc)
				rc = br_push(c, &b);
			if (!rc)
				rc = gfs_kv_cursor_get(cur, &k, &v, GFS_KV_NEXT);
		}
		gfs_kv_cursor_close(cur);
	}
	if (rc && rc != GFS_KV_NOTFOUND)
		return rc;
	rc = main_seen ? GFS_KV_NOTFOUND : branch_read(e, txn, "main", &b);
	if (!rc)
		rc = br_push(c, &b);
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

static int br_name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gfs_branch *)a)->name,
		      ((const struct gfs_branch *)b)->name);
}

int gfs_manifest_branch_list(struct gfs_manifest *m, struct gfs_branch **out,
			     size_t *n)
{
	struct br_ctx c = { 0 };
	int rc = run_read(m, br_list_txn, &c);

	if (rc) {
		free(c.list);
		c.list = NULL;
		c.n = 0;
	}
	if (c.n)
		qsort(c.list, c.n, sizeof *c.list, br_name_cmp);
	*out = c.list;
	*n = c.n;
	return rc;
}

/* Creates the branches database if this (upgrade) open has none.  The
 * upgrade runs alone in its process, so opening a database here races
 * with no other transaction (LMDB's rule for mdb_dbi_open). */
static int br_upgrade_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct br_ctx *c = ctx;
	int rc = 0;

	if (!has_branches(txn))
		rc = gfs_kv_db_create(txn, DB_BRANCHES);
	return rc ? rc : main_ensure(e, txn, &c->created);
}

int gfs_manifest_branches_upgrade(struct gfs_manifest *m, bool *created)
{
	struct br_ctx c = { 0 };
	int rc = run_write(m, br_upgrade_txn, &c, NULL);

	*created = !rc && c.created;
	return rc;
}

/* ---- gc's commit point ------------------------------------------------- */

struct gc_ctx {
	const char *op_id;
	uint64_t rev;
	const uint64_t *remove;
	size_t n;
	struct gfs_diag *d;
};

static int tombstone(struct env *e, struct gfs_kv_txn *txn, uint64_t n)
{
	unsigned char kb[8];
	struct gfs_kv_val k = { 8, kb }, v;
	struct gfs_gv *gv = NULL;
	char *s;
	be64_put(kb, n);
	int rc = gfs_kv_get(txn, DB_VERSIONS, &k, &v);
	if (rc == GFS_KV_NOTFOUND)
		return seal_fail(DB_VERSIONS, &k, "a version gc removes is missing");
	if (!rc)
		rc = gv_decode(&k, &v, &gv);
	if (!rc && !gv->removed) {
		gv->removed = true;
		s = j_dump(gv_json(gv, true));
		rc = s ? seal_put(txn, DB_VERSIONS, &k, s, strlen(s), 0)
		       : -ENOMEM;
		free(s);
	}
	gfs_gv_free(gv);
	return rc;
}

uint64_t gfs_manifest_gc_gen(struct gfs_manifest *m)
{
	return counter_get(m, META_GC);
}

struct gfs_etcd *gfs_manifest_etcd(struct gfs_manifest *m)
{
	return m->kv->ops == &gfs_kv_etcd ? gfs_kv_etcd_client(m->kv) : NULL;
}

static int gc_check_heads(struct env *e, struct gfs_kv_txn *txn, struct gc_ctx *c)
{
	struct gfs_kv_cursor *cur;
	struct gfs_kv_val k, v;
	struct gfs_branch b;
	int rc;

	if (!has_branches(txn))
		return 0;
	if ((rc = gfs_kv_cursor_open(txn, DB_BRANCHES, &cur)))
		return rc;
	rc = gfs_kv_cursor_get(cur, &k, &v, GFS_KV_FIRST);
	while (!rc) {
		rc = branch_decode(&k, &v, &b);
		for (size_t i = 0; !rc && i < c->n; i++)
			if (c->remove[i] == b.head) {
				gfs_diag_set(c->d, "gc: graph version %llu became the head of branch '%s' while gc planned",
					     (unsigned long long)b.head, b.name);
				rc = GFS_ECAS;
			}
		if (!rc)
			rc = gfs_kv_cursor_get(cur, &k, &v, GFS_KV_NEXT);
	}
	gfs_kv_cursor_close(cur);
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

static int gc_commit_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct gc_ctx *c = ctx;
	struct gfs_kv_val k = str_val(c->op_id), v;
	struct gfs_sidecar *sc = NULL;
	uint64_t head = 0;
	int rc = gfs_kv_get(txn, DB_SIDECARS, &k, &v);
	if (rc == GFS_KV_NOTFOUND) {
		gfs_diag_set(c->d, "gc %s: its sidecar was resolved meanwhile", c->op_id);
		return GFS_EGONE;
	}
	if (!rc && sidecar_rev(&v) != c->rev) {
		gfs_diag_set(c->d, "gc %s: its sidecar changed since it was planned", c->op_id);
		return GFS_ECAS;
	}
	if (!rc)
		rc = head_version_txn(e, txn, &head);
	for (size_t i = 0; !rc && i < c->n; i++)
		if (c->remove[i] >= head) {
			gfs_diag_set(c->d, "gc: graph version %llu became the head while gc planned",
				     (unsigned long long)c->remove[i]);
			return GFS_ECAS;
		}
	/* a branch created (or moved) at a version gc removes since it
	 * planned: that version is a branch head now, and stays */
	if (!rc)
		rc = gc_check_heads(e, txn, c);
	for (size_t i = 0; !rc && i < c->n; i++)
		rc = tombstone(e, txn, c->remove[i]);
	if (!rc)
		rc = counter_bump(e, txn, META_GC);
	if (!rc)
		rc = sidecar_decode(&k, &v, &sc);
	/* the files it unlinks next are collected from now on: the index
	 * keeps their records (parent, first_gv) */
	for (size_t i = 0; !rc && sc->gc && i < sc->gc->n_unlink; i++)
		rc = tver_mark(e, txn, sc->gc->unlink[i].table, sc->gc->unlink[i].version,
			       GFS_TVER_COLLECTED, 0);
	if (!rc) {
		sc->confirmed = true;
		rc = sidecar_put_txn(e, txn, sc, 0);
	}
	gfs_sidecar_free(sc);
	return rc;
}

int gfs_manifest_gc_commit(struct gfs_manifest *m, const char *op_id,
			   uint64_t rev, const uint64_t *remove, size_t n,
			   struct gfs_diag *d)
{
	struct gc_ctx c = { op_id, rev, remove, n, d };
	if (!op_id[0] || strlen(op_id) > GFS_ULID_LEN || !rev)
		return -EINVAL;
	return run_write(m, gc_commit_txn, &c, d);
}

/* ---- sidecars ----------------------------------------------------------- */

/* A reservation record of sidecar sc for one of its numbers. */
static struct gfs_tver_rec sc_rec(const struct gfs_sidecar *sc,
				  const struct gfs_sc_table *t, uint32_t v,
				  bool comp)
{
	struct gfs_tver_rec r;
	memset(&r, 0, sizeof r);
	copy_str(r.table, sizeof r.table, t->table);
	copy_str(r.op_id, sizeof r.op_id, sc->op_id);
	r.v = v;
	r.state = GFS_TVER_RESERVED;
	/* a compact's version is built on nothing (branches-design §6.4):
	 * its closure is itself, so gc can free the chain it replaced */
	r.parent = comp || !strcmp(sc->kind, "compact") ? 0 : t->expected;
	r.content_of = comp ? t->expected : 0;
	r.compensation = comp;
	return r;
}

/* W3: the numbers of the sidecar's written tables, in the arm txn. */
static int sc_reserve(struct env *e, struct gfs_kv_txn *txn, struct gfs_sidecar *sc)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < sc->n_tables; i++) {
		struct gfs_sc_table *t = &sc->tables[i];
		struct gfs_tver_rec r = sc_rec(sc, t, t->post, false);
		if (!t->written)
			continue;
		if (t->post == 0) {
			rc = tver_reserve(e, txn, &r);
			t->post = r.v;
		} else {
			rc = tver_note(e, txn, &r);
		}
		if (!rc && t->comp) {
			r = sc_rec(sc, t, t->comp, true);
			rc = tver_note(e, txn, &r);
		}
	}
	return rc;
}

struct sc_put_ctx {
	struct gfs_sidecar sc;            /* .tables is work */
	const struct gfs_sc_table *orig;  /* the caller's: read, never written */
	struct gfs_sc_table *work;        /* this run's numbers */
};

/* Every run starts from the caller's numbers (invariant 271): one that
 * started from an earlier run's would note, not reserve, a number another
 * writer may have reserved since that run was thrown away. */
static int sc_put_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct sc_put_ctx *c = ctx;
	struct gfs_kv_val k = str_val(c->sc.op_id), v;
	int rc = gfs_kv_get(txn, DB_SIDECARS, &k, &v);

	if (rc != GFS_KV_NOTFOUND)
		return rc ? rc : -EEXIST;
	if (c->sc.n_tables) /* no tables: orig may be NULL (UBSan) */
		memcpy(c->work, c->orig, c->sc.n_tables * sizeof *c->work);
	rc = sc_reserve(e, txn, &c->sc);
	return rc ? rc : sidecar_put_txn(e, txn, &c->sc, GFS_KV_NOOVERWRITE);
}

int gfs_manifest_sidecar_put(struct gfs_manifest *m, struct gfs_sidecar *sc)
{
	if (!sidecar_valid(sc))
		return -EINVAL;
	struct sc_put_ctx c = { .sc = *sc, .orig = sc->tables };
	c.sc.format = GFS_SIDECAR_FORMAT;
	c.work = calloc(sc->n_tables + 1, sizeof *c.work);
	if (!c.work)
		return -ENOMEM;
	c.sc.tables = c.work;
	int rc = run_write(m, sc_put_txn, &c, NULL);
	/* the numbers reserved, once they are durable */
	if (!rc && sc->n_tables)
		memcpy(sc->tables, c.work, sc->n_tables * sizeof *c.work);
	free(c.work);
	return rc;
}

/* The sidecar op_id as stored, decoded, with its revision. */
static int sc_load(struct env *e, struct gfs_kv_txn *txn, const char *op_id,
		   struct gfs_sidecar **out)
{
	struct gfs_kv_val k = str_val(op_id), v;
	int rc = gfs_kv_get(txn, DB_SIDECARS, &k, &v);
	*out = NULL;
	if (rc)
		return rc;
	rc = sidecar_decode(&k, &v, out);
	if (rc == GFS_EFORMAT) {
		gfs_sidecar_free(*out);
		*out = NULL;
	}
	return rc;
}

static struct gfs_sc_table *sc_table(struct gfs_sidecar *sc, const char *table)
{
	for (size_t i = 0; i < sc->n_tables; i++)
		if (sc->tables[i].written && !strcmp(sc->tables[i].table, table))
			return &sc->tables[i];
	return NULL;
}

struct repost_ctx {
	const char *op_id, *table;
	uint32_t p, newp;
	uint64_t rev, new_rev;
	uint32_t content_of;
};

static int repost_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct repost_ctx *c = ctx;
	struct gfs_sidecar *sc;
	struct gfs_sc_table *t;
	int rc = sc_load(e, txn, c->op_id, &sc);

	if (rc)
		return rc;
	t = sc_table(sc, c->table);
	rc = sc->confirmed || !t || t->post != c->p ? GFS_ECAS : 0;
	if (!rc)
		rc = tver_mark(e, txn, c->table, c->p, GFS_TVER_VOID, 0);
	if (!rc) {
		struct gfs_tver_rec r = sc_rec(sc, t, 0, false);
		rc = tver_reserve(e, txn, &r);
		c->newp = t->post = r.v;
	}
	sc->format = GFS_SIDECAR_FORMAT;
	if (!rc)
		rc = sidecar_put_txn(e, txn, sc, 0);
	gfs_sidecar_free(sc);
	return rc;
}

int gfs_manifest_sidecar_repost(struct gfs_manifest *m, const char *op_id,
				const char *table, uint32_t p, uint32_t *newp)
{
	struct repost_ctx c = { .op_id = op_id, .table = table, .p = p };
	if (!op_id || !op_id[0] || strlen(op_id) > GFS_ULID_LEN ||
	    !table_name_ok(table) || !p)
		return -EINVAL;
	int rc = run_write(m, repost_txn, &c, NULL);
	*newp = rc ? 0 : c.newp;
	return rc;
}

static int reserve_comp_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct repost_ctx *c = ctx;
	struct gfs_kv_val k = str_val(c->op_id), v;
	struct gfs_sidecar *sc = NULL;
	struct gfs_sc_table *t;
	int rc = gfs_kv_get(txn, DB_SIDECARS, &k, &v);

	if (!rc)
		rc = sc_load(e, txn, c->op_id, &sc);
	t = rc ? NULL : sc_table(sc, c->table);
	if (!rc && !t)
		rc = -EINVAL;
	/* Another resolver reserved it first (an expired lease): shared, as
	 * long as the op is still unconfirmed; the publish compares the
	 * revision returned here. */
	if (!rc && t->comp && !sc->confirmed) {
		c->newp = t->comp;
		c->new_rev = sidecar_rev(&v);
		gfs_sidecar_free(sc);
		return 0;
	}
	if (!rc && sidecar_rev(&v) != c->rev)
		rc = GFS_ECAS; /* changed since it was classified */
	if (!rc) {
		struct gfs_tver_rec r = sc_rec(sc, t, 0, true);
		r.content_of = c->content_of;
		rc = tver_reserve(e, txn, &r);
		c->newp = t->comp = r.v;
	}
	if (sc)
		sc->format = GFS_SIDECAR_FORMAT; /* it may carry a comp now */
	if (!rc)
		rc = sidecar_put_txn(e, txn, sc, 0);
	if (!rc)
		rc = gfs_kv_get(txn, DB_SIDECARS, &k, &v);
	if (!rc)
		c->new_rev = sidecar_rev(&v);
	gfs_sidecar_free(sc);
	return rc;
}

int gfs_manifest_sidecar_reserve_comp(struct gfs_manifest *m,
				      const char *op_id, uint64_t rev,
				      const char *table, uint32_t content_of,
				      uint32_t *c, uint64_t *new_rev)
{
	struct repost_ctx x = { .op_id = op_id, .table = table, .rev = rev,
				.content_of = content_of };
	if (!op_id || !op_id[0] || strlen(op_id) > GFS_ULID_LEN ||
	    !table_name_ok(table))
		return -EINVAL;
	int rc = run_write(m, reserve_comp_txn, &x, NULL);
	*c = rc ? 0 : x.newp;
	*new_rev = rc ? 0 : x.new_rev;
	return rc;
}

static int sc_confirm_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct gfs_kv_val k = str_val(ctx), v;
	struct gfs_sidecar *sc;
	int rc = gfs_kv_get(txn, DB_SIDECARS, &k, &v);
	if (rc)
		return rc;
	rc = sidecar_decode(&k, &v, &sc);
	if (!rc) {
		sc->confirmed = true;
		rc = sidecar_put_txn(e, txn, sc, 0);
	}
	gfs_sidecar_free(sc);
	return rc;
}

int gfs_manifest_sidecar_confirm(struct gfs_manifest *m, const char *op_id)
{
	if (!op_id[0] || strlen(op_id) > GFS_ULID_LEN)
		return -EINVAL;
	return run_write(m, sc_confirm_txn, (void *)op_id, NULL);
}

struct sc_get_ctx {
	const char *op_id;
	struct gfs_sidecar **out;
};

static int sc_get_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct sc_get_ctx *g = ctx;
	struct gfs_kv_val k = str_val(g->op_id), v;
	int rc = gfs_kv_get(txn, DB_SIDECARS, &k, &v);
	return rc ? rc : sidecar_decode(&k, &v, g->out);
}

int gfs_manifest_sidecar_get(struct gfs_manifest *m, const char *op_id,
			     struct gfs_sidecar **out)
{
	struct sc_get_ctx g = { op_id, out };
	*out = NULL;
	if (!op_id[0] || strlen(op_id) > GFS_ULID_LEN)
		return -ENOENT;
	return run_read(m, sc_get_txn, &g);
}

struct sc_list {
	struct gfs_sidecar **v;
	size_t n, cap;
};

static int sc_list_push(struct sc_list *l, struct gfs_sidecar *sc)
{
	void *p = gfs_array_grow(l->v, &l->cap, l->n, sizeof *l->v, 8);

	if (!p)
		return -ENOMEM;
	l->v = p;
	l->v[l->n++] = sc;
	return 0;
}

static int sc_list_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	int rc = gfs_kv_cursor_open(txn, DB_SIDECARS, &c);
	if (rc)
		return rc;
	rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_FIRST);
	while (!rc) {
		struct gfs_sidecar *sc;
		rc = sidecar_decode(&k, &v, &sc);
		if (rc == GFS_EFORMAT) /* listed with raw set: refused loudly */
			rc = 0;
		if (!rc)
			rc = sc_list_push(ctx, sc);
		if (rc) {
			gfs_sidecar_free(sc);
			break;
		}
		rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT);
	}
	gfs_kv_cursor_close(c);
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

static int sc_order(const void *a, const void *b)
{
	const struct gfs_sidecar *x = *(struct gfs_sidecar *const *)a;
	const struct gfs_sidecar *y = *(struct gfs_sidecar *const *)b;
	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	return strcmp(x->op_id, y->op_id);
}

int gfs_manifest_sidecar_list(struct gfs_manifest *m, struct gfs_sidecar ***out,
			      size_t *n)
{
	struct sc_list l = { 0 };
	*out = NULL;
	*n = 0;
	int rc = run_read(m, sc_list_txn, &l);
	if (rc) {
		for (size_t i = 0; i < l.n; i++)
			gfs_sidecar_free(l.v[i]);
		free(l.v);
		return rc;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof *l.v, sc_order);
	*out = l.v;
	*n = l.n;
	return 0;
}

/* ---- audit -------------------------------------------------------------- */

static int audit_fill(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct batch *b = ctx;
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	unsigned char kb[8];
	be64_put(kb, b->next);
	k = (struct gfs_kv_val){ 8, kb };
	int rc = gfs_kv_cursor_open(txn, DB_AUDIT, &c);
	if (rc)
		return rc;
	rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_SET_RANGE);
	while (!rc && b->n < BATCH) {
		uint64_t seq;
		if (!be64_get(&k, &seq)) {
			rc = seal_fail(DB_AUDIT, &k, "key is not a sequence number");
			break;
		}
		rc = audit_decode(&k, &v, (struct gfs_audit **)&b->item[b->n]);
		if (rc)
			break;
		b->n++;
		b->next = seq + 1;
		rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT);
	}
	gfs_kv_cursor_close(c);
	b->done = b->n < BATCH;
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

int gfs_manifest_audit_list(struct gfs_manifest *m,
			    int (*fn)(const struct gfs_audit *a, void *arg),
			    void *arg)
{
	struct batch b = { .next = 1, .to = UINT64_MAX };
	int rc = 0;
	while (!rc && !b.done) {
		b.n = 0;
		rc = run_read(m, audit_fill, &b);
		size_t i = 0;
		for (; !rc && i < b.n; i++)
			rc = fn(b.item[i], arg);
		for (i = 0; i < b.n; i++)
			gfs_audit_free(b.item[i]);
	}
	return rc;
}

struct count_ctx {
	const char *op_id;
	size_t n;
};

static int audit_count_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct count_ctx *cc = ctx;
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k = str_val(cc->op_id), v;
	size_t n = 0;
	int rc = gfs_kv_cursor_open(txn, DB_AUDIT_BY_OP, &c);
	if (rc)
		return rc;
	rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_SET);
	while (!rc) {
		struct gfs_kv_val pv = v;
		rc = unseal(DB_AUDIT_BY_OP, &k, &pv);
		if (!rc && pv.size != 8)
			rc = seal_fail(DB_AUDIT_BY_OP, &k, "value is not a sequence");
		if (rc)
			break;
		n++;
		rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT_DUP);
	}
	gfs_kv_cursor_close(c);
	cc->n = n;
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

int gfs_manifest_audit_count(struct gfs_manifest *m, const char *op_id,
			     size_t *n)
{
	struct count_ctx cc = { op_id, 0 };
	*n = 0;
	if (!op_id[0])
		return -EINVAL;
	int rc = run_read(m, audit_count_txn, &cc);
	if (!rc)
		*n = cc.n;
	return rc;
}

/* ---- meta --------------------------------------------------------------- */

struct meta_ctx {
	const char *key;
	const char *val;
	char **out;
};

static int meta_get_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct meta_ctx *mc = ctx;
	struct gfs_kv_val k = str_val(mc->key), v;
	int rc = gfs_kv_get(txn, DB_META, &k, &v);
	if (!rc)
		rc = unseal(DB_META, &k, &v);
	if (rc)
		return rc;
	*mc->out = gfs_memdup(v.data, v.size);
	return *mc->out ? 0 : -ENOMEM;
}

int gfs_manifest_meta_get(struct gfs_manifest *m, const char *key, char **val)
{
	struct meta_ctx mc = { .key = key, .out = val };
	*val = NULL;
	if (!key[0])
		return -EINVAL;
	return run_read(m, meta_get_txn, &mc);
}

static int meta_put_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct meta_ctx *mc = ctx;
	struct gfs_kv_val k = str_val(mc->key);
	return seal_put(txn, DB_META, &k, mc->val, strlen(mc->val), 0);
}

int gfs_manifest_meta_put(struct gfs_manifest *m, const char *key,
			  const char *val)
{
	struct meta_ctx mc = { .key = key, .val = val };
	if (!key[0] || strlen(key) > 255)
		return -EINVAL;
	return run_write(m, meta_put_txn, &mc, NULL);
}

/* ---- upgrade and check -------------------------------------------------- */

struct kv {
	struct gfs_kv_val k, v;
};

struct kv_list {
	struct kv *a;
	size_t n, cap;
};

static void kv_list_free(struct kv_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->a[i].k.data);
		free(l->a[i].v.data);
	}
	free(l->a);
	l->a = NULL;
	l->n = l->cap = 0;
}

static int kv_list_push(struct kv_list *l, const struct gfs_kv_val *k, const struct gfs_kv_val *v)
{
	void *p = gfs_array_grow(l->a, &l->cap, l->n, sizeof *l->a, 64);
	if (!p)
		return -ENOMEM;
	l->a = p;
	struct kv *e = &l->a[l->n];
	e->k = (struct gfs_kv_val){ k->size, gfs_memdup(k->data, k->size) };
	e->v = (struct gfs_kv_val){ v->size, gfs_memdup(v->data, v->size) };
	l->n++;
	return e->k.data && e->v.data ? 0 : -ENOMEM;
}

/* Every (key, value) of db, duplicates included, copied out. */
static int db_copy(struct env *e, struct gfs_kv_txn *txn, enum db db, struct kv_list *l)
{
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	int rc = gfs_kv_cursor_open(txn, db, &c);
	if (rc)
		return rc;
	rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_FIRST);
	while (!rc) {
		rc = kv_list_push(l, &k, &v);
		if (!rc)
			rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT);
	}
	gfs_kv_cursor_close(c);
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

/* Rewrites every format-1 value of db with its seal. */
static int db_seal_all(struct env *e, struct gfs_kv_txn *txn, enum db db, uint64_t *n)
{
	struct kv_list l = { 0 };
	int rc = db_copy(e, txn, db, &l);
	if (!rc)
		rc = gfs_kv_drop(txn, db);
	for (size_t i = 0; !rc && i < l.n; i++) {
		rc = seal_put(txn, db, &l.a[i].k, l.a[i].v.data,
			      l.a[i].v.size, 0);
		(*n)++;
	}
	kv_list_free(&l);
	return rc;
}

/* Messages collected inside a read transaction, reported after it. */
struct msgs {
	char **m;
	size_t n, cap;
};

static void msgs_add(struct msgs *ms, const char *msg)
{
	void *p = gfs_array_grow(ms->m, &ms->cap, ms->n, sizeof *ms->m, 8);
	if (!p)
		return;
	ms->m = p;
	ms->m[ms->n] = gfs_strdup(msg);
	if (ms->m[ms->n])
		ms->n++;
}

/* One value: its seal, then what it must decode to. */
static void check_value(enum db db, const struct gfs_kv_val *k, const struct gfs_kv_val *v,
			struct msgs *ms)
{
	struct gfs_kv_val pv = *v;
	struct gfs_gv *gv = NULL;
	struct gfs_audit *a = NULL;
	struct gfs_branch br;
	int rc = unseal(db, k, &pv);

	if (!rc && db == DB_VERSIONS)
		rc = gv_decode(k, v, &gv);
	else if (!rc && db == DB_AUDIT)
		rc = audit_decode(k, v, &a);
	else if (!rc && db == DB_BRANCHES)
		rc = branch_decode(k, v, &br);
	else if (!rc && db == DB_AUDIT_BY_OP && pv.size != 8)
		rc = seal_fail(db, k, "value is not a sequence number");
	else if (!rc && db == DB_TVER) {
		struct gfs_tver_rec r;
		rc = tver_decode(k, v, &r);
	} else if (!rc && db == DB_NEXT) {
		uint32_t n;
		rc = next_parse(k, v, &n);
	}
	if (rc == GFS_ECORRUPT || rc == GFS_EFORMAT)
		msgs_add(ms, gfs_corrupt_last());
	gfs_gv_free(gv);
	gfs_audit_free(a);
}

struct check_ctx {
	struct msgs ms;
	enum db db;
};

static int check_db_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct check_ctx *cc = ctx;
	struct gfs_kv_cursor *c;
	struct gfs_kv_val k, v;
	int rc = gfs_kv_cursor_open(txn, cc->db, &c);
	if (rc)
		return rc;
	rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_FIRST);
	while (!rc) {
		check_value(cc->db, &k, &v, &cc->ms);
		rc = gfs_kv_cursor_get(c, &k, &v, GFS_KV_NEXT);
	}
	gfs_kv_cursor_close(c);
	return rc == GFS_KV_NOTFOUND ? 0 : rc;
}

int gfs_manifest_check(struct gfs_manifest *m,
		       void (*report)(const char *msg, void *arg), void *arg)
{
	int bad = 0;

	for (int db = 0; db < DB__COUNT; db++) {
		struct check_ctx cc = { .db = (enum db)db };
		if (!db_is_open_kv(m->kv, (enum db)db))
			continue;
		int rc = run_read(m, check_db_txn, &cc);
		for (size_t i = 0; i < cc.ms.n; i++) {
			report(cc.ms.m[i], arg);
			free(cc.ms.m[i]);
		}
		free(cc.ms.m);
		bad += (int)cc.ms.n;
		if (rc) {
			char msg[256];
			snprintf(msg, sizeof msg, "manifest database '%s' cannot "
				 "be read: %s", db_names[db], gfs_strerror(rc));
			report(msg, arg);
			bad++;
		}
	}
	uint64_t last;
	if (run_read(m, head_version_txn, &last) == GFS_ECORRUPT) {
		report(gfs_corrupt_last(), arg);
		bad++;
	}
	return bad;
}

struct upgrade_ctx {
	uint64_t records;
	struct gfs_diag *d;
};

/* After sealing: every record must decode, or nothing is committed. */
static int upgrade_verify(struct env *e, struct gfs_kv_txn *txn, struct gfs_diag *d)
{
	for (int db = 0; db < DB__COUNT; db++) {
		struct check_ctx cc = { .db = (enum db)db };
		if (db == DB_SIDECARS || !db_is_open(txn, (enum db)db))
			continue; /* sidecars: kept even when unparsable (§4) */
		int rc = check_db_txn(e, txn, &cc);
		if (!rc && cc.ms.n) {
			gfs_diag_set(d, "cannot upgrade: %s", cc.ms.m[0]);
			rc = GFS_ECORRUPT;
		}
		for (size_t i = 0; i < cc.ms.n; i++)
			free(cc.ms.m[i]);
		free(cc.ms.m);
		if (rc)
			return rc;
	}
	return 0;
}

static int upgrade_head_witness(struct env *e, struct gfs_kv_txn *txn)
{
	uint64_t last = 0;
	int rc = head_version_txn_raw(e, txn, &last);
	if (rc == GFS_KV_NOTFOUND)
		return 0;
	return rc ? rc : head_witness_put(e, txn, last);
}

static int upgrade_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct upgrade_ctx *u = ctx;
	struct gfs_kv_val k = str_val("manifest_format"), v;
	char num[8];
	int rc = gfs_kv_get(txn, DB_META, &k, &v);

	u->records = 0;
	if (rc == 0 && !is_format_1(&v))
		return unseal(DB_META, &k, &v) ? GFS_ECORRUPT : 0;
	if (rc)
		return rc;
	for (int db = 0; db < DB__COUNT && !rc; db++)
		if (db_is_open(txn, (enum db)db))
			rc = db_seal_all(e, txn, (enum db)db, &u->records);
	/* sealed now; the index (format 3) is gfs_manifest_upgrade_index's */
	snprintf(num, sizeof num, "%d", MANIFEST_FORMAT_SEALED);
	if (!rc)
		rc = seal_put(txn, DB_META, &k, num, strlen(num), 0);
	if (!rc)
		rc = upgrade_head_witness(e, txn);
	if (!rc)
		rc = upgrade_verify(e, txn, u->d);
	return rc;
}

int gfs_manifest_upgrade(struct gfs_manifest *m, uint64_t *records,
			 struct gfs_diag *d)
{
	struct upgrade_ctx u = { 0, d };
	*records = 0;
	int rc = run_write(m, upgrade_txn, &u, d);
	if (rc == GFS_ECORRUPT && d && !d->msg[0])
		gfs_diag_set(d, "%s", gfs_manifest_last_corruption());
	if (!rc) {
		*records = u.records;
		if (m->e->format < MANIFEST_FORMAT_SEALED)
			m->e->format = MANIFEST_FORMAT_SEALED;
	}
	return rc;
}

struct index_ctx {
	const struct gfs_tver_rec *recs;
	size_t n;
	const struct gfs_pin *nexts;
	size_t n_next;
	bool done;
};

static int upgrade_index_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct index_ctx *c = ctx;
	struct gfs_kv_val k = str_val("manifest_format"), v;
	char buf[16] = "", num[8];
	uint64_t f = 0;
	int rc = gfs_kv_get(txn, DB_META, &k, &v);

	c->done = false;
	if (!rc)
		rc = unseal(DB_META, &k, &v);
	if (!rc && v.size < sizeof buf)
		memcpy(buf, v.data, v.size);
	if (!rc && gfs_parse_u64(buf, &f))
		rc = GFS_ECORRUPT;
	if (rc || f >= MANIFEST_FORMAT)
		return rc;
	if (f != MANIFEST_FORMAT_SEALED)
		return GFS_EFORMAT;
	rc = index_create(txn);
	if (!rc)
		rc = gfs_kv_drop(txn, DB_TVER);
	if (!rc)
		rc = gfs_kv_drop(txn, DB_NEXT);
	for (size_t i = 0; !rc && i < c->n; i++)
		rc = tver_put(e, txn, &c->recs[i]);
	for (size_t i = 0; !rc && i < c->n_next; i++)
		rc = next_put(e, txn, c->nexts[i].table, c->nexts[i].version);
	snprintf(num, sizeof num, "%d", MANIFEST_FORMAT);
	if (!rc)
		rc = seal_put(txn, DB_META, &k, num, strlen(num), 0);
	c->done = !rc;
	return rc;
}

int gfs_manifest_upgrade_index(struct gfs_manifest *m,
			       const struct gfs_tver_rec *recs, size_t n,
			       const struct gfs_pin *nexts, size_t n_next,
			       bool *done, struct gfs_diag *d)
{
	struct index_ctx c = { recs, n, nexts, n_next, false };
	for (size_t i = 0; i < n; i++)
		if (!table_name_ok(recs[i].table) || !recs[i].v)
			return -EINVAL;
	for (size_t i = 0; i < n_next; i++)
		if (!table_name_ok(nexts[i].table) || !nexts[i].version)
			return -EINVAL;
	int rc = run_write(m, upgrade_index_txn, &c, d);
	if (rc == GFS_EFORMAT)
		gfs_diag_set(d, "cannot index the manifest: it is not format %d",
			     MANIFEST_FORMAT_SEALED);
	*done = !rc && c.done;
	if (*done)
		m->e->format = MANIFEST_FORMAT;
	return rc;
}

/* ---- test backdoor ------------------------------------------------------ */

struct raw_ctx {
	int db;
	struct gfs_kv_val k, v;
};

static int raw_put_txn(struct env *e, struct gfs_kv_txn *txn, void *ctx)
{
	struct raw_ctx *r = ctx;
	/* sealed: tests plant records that verify but mean something bad */
	return seal_put(txn, r->db, &r->k, r->v.data, r->v.size, 0);
}

int gfs_manifest_debug_put_raw(struct gfs_manifest *m, const char *db,
			       const void *key, size_t klen,
			       const void *val, size_t vlen)
{
	struct raw_ctx r = { .db = -1 };
	for (int i = 0; i < DB__COUNT; i++)
		if (strcmp(db, db_names[i]) == 0)
			r.db = i;
	if (r.db < 0 || klen == 0 || !db_is_open_kv(m->kv, (enum db)r.db))
		return -EINVAL;
	r.k = (struct gfs_kv_val){ klen, (void *)key };
	r.v = (struct gfs_kv_val){ vlen, (void *)val };
	return run_write(m, raw_put_txn, &r, NULL);
}

/* ---- test hook: the record decoders on arbitrary bytes ----------------- */

/* Seals payload under key as a put would (so the decoder behind the
 * checksum sees the bytes), decodes it as a record of db, and on success
 * gives its public JSON. */
static int decode_one(enum db db, const struct gfs_kv_val *k, const struct gfs_kv_val *sv,
		      char **json)
{
	struct gfs_sidecar *sc = NULL;
	struct gfs_audit *a = NULL;
	struct gfs_gv *gv = NULL;
	struct gfs_branch b;
	struct gfs_tver_rec tr;
	uint32_t nx;
	int rc;

	switch (db) {
	case DB_VERSIONS:
		rc = gv_decode(k, sv, &gv);
		*json = rc ? NULL : gfs_gv_to_json(gv);
		gfs_gv_free(gv);
		return rc;
	case DB_SIDECARS:
		rc = sidecar_decode(k, sv, &sc);
		*json = sc ? gfs_sidecar_to_json(sc) : NULL;
		rc = rc ? rc : sidecar_valid(sc) ? 0 : GFS_EFORMAT;
		gfs_sidecar_free(sc);
		return rc;
	case DB_AUDIT:
		rc = audit_decode(k, sv, &a);
		*json = rc ? NULL : gfs_audit_to_json(a);
		gfs_audit_free(a);
		return rc;
	case DB_BRANCHES:
		rc = branch_decode(k, sv, &b);
		*json = rc ? NULL : gfs_branch_to_json(&b);
		return rc;
	case DB_TVER:
		return tver_decode(k, sv, &tr);
	case DB_NEXT:
		return next_parse(k, sv, &nx);
	default:
		return -EINVAL;
	}
}

int gfs_manifest_debug_decode(const char *db, const void *key, size_t klen,
			      const void *payload, size_t n, char **json)
{
	unsigned char *b = malloc(n + SEAL_LEN);
	struct gfs_kv_val k = { klen, (void *)key }, v = { n + SEAL_LEN, b };
	uint64_t h = seal_of(&k, payload, n);
	int rc = -EINVAL;

	*json = NULL;
	if (!b)
		return -ENOMEM;
	if (n)
		memcpy(b, payload, n);
	for (int i = 0; i < 8; i++)
		b[n + i] = (unsigned char)(h >> (8 * i));
	for (int i = 0; i < DB__COUNT; i++)
		if (strcmp(db, db_names[i]) == 0)
			rc = decode_one((enum db)i, &k, &v, json);
	free(b);
	return rc;
}
