/* check_manifest.c - the LMDB manifest, table locks and failpoints. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "failpoints.h"
#include "lock.h"
#include "manifest.h"
#include "store_int.h"
#include "store_raw.h"
#include "testutil.h"
#include "util.h"

#define OP1 "01HZZZZZZZZZZZZZZZZZZZZZZ1"
#define OP2 "01HZZZZZZZZZZZZZZZZZZZZZZ2"
#define OP3 "01HZZZZZZZZZZZZZZZZZZZZZZ3"

static char dir[PATH_MAX];

static void setup(void)
{
	tu_tmpdir(dir, sizeof dir);
}

static void teardown(void)
{
	tu_rmrf(dir);
}

static struct gfs_manifest *open_m(unsigned flags)
{
	struct gfs_manifest *m;
	struct gfs_diag d = { { 0 } };
	int rc = gfs_manifest_open(dir, flags, &m, &d);
	ck_assert_msg(rc == 0, "open: %s: %s", gfs_strerror(rc), d.msg);
	return m;
}

/* A store at version 1 with node:A = 1, node:B = 1, schema "s1". */
static struct gfs_manifest *new_store(void)
{
	struct gfs_manifest *m = open_m(GFS_MANIFEST_CREATE);
	struct gfs_pin pins[2] = { { "node:B", 1 }, { "node:A", 1 } };
	struct gfs_gv first = { .op = "init", .op_id = OP1, .actor = "test",
				.schema_id = "s1", .pins = pins, .n_pins = 2 };
	ck_assert_int_eq(gfs_manifest_init(m, &first), 0);
	return m;
}

static struct gfs_sc_table sct(const char *t, bool w, uint32_t e, uint32_t p)
{
	struct gfs_sc_table x = { .written = w, .expected = e, .post = p };
	snprintf(x.table, sizeof x.table, "%s", t);
	return x;
}

/* The invariant checked after every step: versions 1..head all readable,
 * consecutive, time never going backwards. */
static int check_gv(const struct gfs_gv *gv, void *arg)
{
	uint64_t *prev = arg;
	if (gv->version != prev[0] + 1 || gv->time_ns < prev[1])
		return -1;
	prev[0] = gv->version;
	prev[1] = gv->time_ns;
	return 0;
}

static void invariants(struct gfs_manifest *m)
{
	uint64_t prev[2] = { 0, 0 };
	ck_assert_int_eq(gfs_manifest_history(m, 1, 0, check_gv, prev), 0);
	ck_assert_uint_eq(prev[0], gfs_manifest_head_version(m));
}

START_TEST(test_init_head)
{
	struct gfs_manifest *m, *m2;
	struct gfs_gv *gv;
	struct gfs_diag d = { { 0 } };
	char *val;

	ck_assert_int_eq(gfs_manifest_open(dir, 0, &m, &d), -ENOENT);
	ck_assert_ptr_null(m);
	m = new_store();
	ck_assert_uint_eq(gfs_manifest_head_version(m), 1);
	ck_assert_int_eq(gfs_manifest_head(m, &gv), 0);
	ck_assert_uint_eq(gv->version, 1);
	ck_assert_uint_eq(gv->n_pins, 2);
	ck_assert_str_eq(gv->pins[0].table, "node:A"); /* sorted */
	ck_assert_uint_eq(gfs_gv_pin(gv, "node:B"), 1);
	ck_assert_uint_eq(gfs_gv_pin(gv, "node:C"), 0);
	ck_assert_str_eq(gv->schema_id, "s1");
	ck_assert_uint_gt(gv->time_ns, 0);
	ck_assert_ptr_null(gv->detail);
	ck_assert_int_eq(gfs_manifest_init(m, gv), -EEXIST);
	gfs_gv_free(gv);
	ck_assert_int_eq(gfs_manifest_get(m, 2, &gv), -ENOENT);
	ck_assert_ptr_null(gv);
	ck_assert_int_eq(gfs_manifest_meta_put(m, "store_id", "abc"), 0);

	/* a second open in this process shares the environment */
	m2 = open_m(0);
	ck_assert_int_eq(gfs_manifest_meta_get(m2, "store_id", &val), 0);
	ck_assert_str_eq(val, "abc");
	free(val);
	ck_assert_int_eq(gfs_manifest_meta_get(m2, "nope", &val), -ENOENT);
	gfs_manifest_close(m);
	ck_assert_int_eq(gfs_manifest_get(m2, 1, &gv), 0);
	gfs_gv_free(gv);
	gfs_manifest_close(m2);

	/* read-only reopen sees everything and refuses writes */
	m = open_m(GFS_MANIFEST_RDONLY);
	ck_assert_uint_eq(gfs_manifest_head_version(m), 1);
	ck_assert_int_eq(gfs_manifest_meta_put(m, "x", "y"), -EROFS);
	invariants(m);
	gfs_manifest_close(m);
}
END_TEST

START_TEST(test_publish_cas)
{
	struct gfs_manifest *m = new_store();
	struct gfs_diag d = { { 0 } };
	struct gfs_gv *h1, *gv;
	uint64_t v = 99;
	struct gfs_sc_table t[3] = { sct("node:A", true, 1, 2),
				     sct("node:B", false, 1, 1),
				     sct("node:C", true, 0, 1) };
	struct gfs_publish p = { .op = "load", .op_id = OP2, .actor = "me",
				 .detail = "{\"mode\":\"merge\",\"rows\":3}",
				 .tables = t, .n_tables = 3 };

	ck_assert_int_eq(gfs_manifest_head(m, &h1), 0);
	ck_assert_int_eq(gfs_manifest_publish(m, &p, &v, &d), 0);
	ck_assert_uint_eq(v, 2);
	ck_assert_int_eq(gfs_manifest_head(m, &gv), 0);
	ck_assert_uint_eq(gv->version, 2);
	ck_assert_uint_eq(gv->n_pins, 3);
	ck_assert_uint_eq(gfs_gv_pin(gv, "node:A"), 2);
	ck_assert_uint_eq(gfs_gv_pin(gv, "node:B"), 1);
	ck_assert_uint_eq(gfs_gv_pin(gv, "node:C"), 1);
	ck_assert_str_eq(gv->schema_id, "s1");  /* NULL keeps the head's */
	ck_assert_str_eq(gv->op, "load");
	ck_assert_str_eq(gv->op_id, OP2);
	ck_assert_str_eq(gv->detail, "{\"mode\":\"merge\",\"rows\":3}");
	ck_assert_uint_ge(gv->time_ns, h1->time_ns);
	gfs_gv_free(gv);
	gfs_gv_free(h1);

	/* the same expectation again: pins moved, nothing written */
	p.op_id = OP3;
	v = 99;
	ck_assert_int_eq(gfs_manifest_publish(m, &p, &v, &d), GFS_ECAS);
	ck_assert_uint_eq(v, 0);
	ck_assert_ptr_nonnull(strstr(d.msg, "'node:A'"));
	ck_assert_ptr_nonnull(strstr(d.msg, "expected version 1"));
	ck_assert_ptr_nonnull(strstr(d.msg, "has 2"));
	ck_assert_uint_eq(gfs_manifest_head_version(m), 2);

	/* a read table moved is a CAS failure too */
	struct gfs_sc_table t2[2] = { sct("node:A", true, 2, 3),
				      sct("node:C", false, 7, 7) };
	p.tables = t2;
	p.n_tables = 2;
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(gfs_manifest_publish(m, &p, NULL, &d), GFS_ECAS);
	ck_assert_ptr_nonnull(strstr(d.msg, "'node:C'"));
	t2[1].expected = t2[1].post = 1;
	p.schema_id = "s2";
	p.detail = "not json";
	ck_assert_int_eq(gfs_manifest_publish(m, &p, NULL, &d), -EINVAL);
	p.detail = NULL;
	ck_assert_int_eq(gfs_manifest_publish(m, &p, &v, &d), 0);
	ck_assert_uint_eq(v, 3);
	ck_assert_int_eq(gfs_manifest_get(m, 3, &gv), 0);
	ck_assert_str_eq(gv->schema_id, "s2");
	ck_assert_uint_eq(gfs_gv_pin(gv, "node:A"), 3);
	gfs_gv_free(gv);
	invariants(m);
	gfs_manifest_close(m);
}
END_TEST

static struct gfs_sidecar *mk_sidecar(const char *op, uint64_t start)
{
	struct gfs_sidecar *sc = calloc(1, sizeof *sc);
	sc->format = GFS_SIDECAR_FORMAT;
	snprintf(sc->op_id, sizeof sc->op_id, "%s", op);
	snprintf(sc->kind, sizeof sc->kind, "load");
	snprintf(sc->actor, sizeof sc->actor, "tester");
	sc->start_ns = start;
	sc->tables = calloc(2, sizeof *sc->tables);
	sc->tables[0] = sct("node:A", true, 1, 2);
	sc->tables[1] = sct("node:B", false, 1, 1);
	sc->n_tables = 2;
	return sc;
}

START_TEST(test_require_sidecar)
{
	struct gfs_manifest *m = new_store();
	struct gfs_diag d = { { 0 } };
	struct gfs_sc_table t = sct("node:A", true, 1, 2);
	struct gfs_audit a = { .op_id = OP2, .decision = "roll-forward" };
	struct gfs_publish p = { .op = "recover", .op_id = OP2, .tables = &t,
				 .n_tables = 1, .sidecar = OP2,
				 .require_sidecar = true, .audit = &a };
	size_t n = 9;

	ck_assert_int_eq(gfs_manifest_publish(m, &p, NULL, &d), GFS_EGONE);
	ck_assert_uint_eq(gfs_manifest_head_version(m), 1);
	ck_assert_int_eq(gfs_manifest_audit_count(m, OP2, &n), 0);
	ck_assert_uint_eq(n, 0);
	gfs_manifest_close(m);
}
END_TEST

struct audit_seen {
	size_t n;
	char op_id[GFS_ULID_LEN + 1];
	char decision[24];
	uint64_t graph_version;
	size_t n_tables;
	uint32_t from, to;
	char *json;
};

static int collect_audit(const struct gfs_audit *a, void *arg)
{
	struct audit_seen *s = arg;
	s->n++;
	memcpy(s->op_id, a->op_id, sizeof s->op_id);
	memcpy(s->decision, a->decision, sizeof s->decision);
	s->graph_version = a->graph_version;
	s->n_tables = a->n_tables;
	if (a->n_tables) {
		s->from = a->tables[0].expected;
		s->to = a->tables[0].post;
	}
	free(s->json);
	s->json = gfs_audit_to_json(a);
	return 0;
}

START_TEST(test_sidecars)
{
	struct gfs_manifest *m = new_store();
	struct gfs_diag d = { { 0 } };
	struct gfs_sidecar *s1 = mk_sidecar(OP3, 100), *s2 = mk_sidecar(OP2, 200),
			   *s3 = mk_sidecar(OP1, 200), *got, **list;
	size_t n;

	ck_assert_int_eq(gfs_manifest_sidecar_put(m, s2), 0);
	ck_assert_int_eq(gfs_manifest_sidecar_put(m, s1), 0);
	ck_assert_int_eq(gfs_manifest_sidecar_put(m, s3), 0);
	ck_assert_int_eq(gfs_manifest_sidecar_put(m, s3), -EEXIST);

	/* oldest first: start time, then op id */
	ck_assert_int_eq(gfs_manifest_sidecar_list(m, &list, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(list[0]->op_id, OP3);
	ck_assert_str_eq(list[1]->op_id, OP1);
	ck_assert_str_eq(list[2]->op_id, OP2);
	for (size_t i = 0; i < n; i++)
		gfs_sidecar_free(list[i]);
	free(list);

	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP2, &got), 0);
	ck_assert(!got->confirmed);
	ck_assert_uint_eq(got->n_tables, 2);
	ck_assert_str_eq(got->tables[0].table, "node:A");
	ck_assert(got->tables[0].written);
	ck_assert_uint_eq(got->tables[0].post, 2);
	ck_assert(!got->tables[1].written);
	ck_assert_uint_eq(got->start_ns, 200);
	ck_assert_ptr_null(got->raw);
	gfs_sidecar_free(got);
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(m, OP2), 0);
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP2, &got), 0);
	ck_assert(got->confirmed);
	gfs_sidecar_free(got);
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(m, "01HNOPE"), -ENOENT);
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, "01HNOPE", &got), -ENOENT);
	ck_assert_ptr_null(got);

	/* publish deletes the sidecar and writes the audit, all at once */
	struct gfs_audit a = { .op_id = OP2, .decision = "roll-forward",
			       .kind = "load", .actor = "tester",
			       .resolver = "pid 1", .tables = s2->tables,
			       .n_tables = 1 };
	struct gfs_publish p = { .op = "recover", .op_id = OP2,
				 .tables = s2->tables, .n_tables = 2,
				 .sidecar = OP2, .require_sidecar = true,
				 .audit = &a };
	uint64_t v;
	ck_assert_int_eq(gfs_manifest_publish(m, &p, &v, &d), 0);
	ck_assert_uint_eq(v, 2);
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP2, &got), -ENOENT);
	ck_assert_int_eq(gfs_manifest_audit_count(m, OP2, &n), 0);
	ck_assert_uint_eq(n, 1);
	struct audit_seen seen = { 0 };
	ck_assert_int_eq(gfs_manifest_audit_list(m, collect_audit, &seen), 0);
	ck_assert_uint_eq(seen.n, 1);
	ck_assert_str_eq(seen.op_id, OP2);
	ck_assert_uint_eq(seen.graph_version, 2);
	ck_assert_uint_eq(seen.n_tables, 1);
	ck_assert_uint_eq(seen.from, 1);
	ck_assert_uint_eq(seen.to, 2);
	ck_assert_ptr_nonnull(strstr(seen.json, "\"tables\":[{\"table\":"
					       "\"node:A\",\"from\":1,\"to\":2}]"));
	free(seen.json);

	/* a second resolver finds it gone: nothing written, one audit */
	ck_assert_int_eq(gfs_manifest_publish(m, &p, &v, &d), GFS_EGONE);
	ck_assert_int_eq(gfs_manifest_audit_count(m, OP2, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(gfs_manifest_head_version(m), 2);
	invariants(m);
	gfs_sidecar_free(s1);
	gfs_sidecar_free(s2);
	gfs_sidecar_free(s3);
	gfs_manifest_close(m);
}
END_TEST

START_TEST(test_audit_atomic)
{
	struct gfs_manifest *m = new_store();
	struct gfs_diag d = { { 0 } };
	struct gfs_sidecar *sc = mk_sidecar(OP2, 5), *got;
	struct gfs_audit a = { .op_id = OP2, .decision = "roll-back",
			       .kind = "load", .resolver = "me" };
	struct gfs_sc_table bad = sct("node:A", false, 9, 9);
	struct gfs_publish p = { .sidecar = OP2, .require_sidecar = true,
				 .audit = &a, .no_version = true,
				 .tables = &bad, .n_tables = 1 };
	size_t n = 7;
	uint64_t v = 7;

	ck_assert_int_eq(gfs_manifest_sidecar_put(m, sc), 0);
	/* CAS fails: sidecar kept, no audit */
	ck_assert_int_eq(gfs_manifest_publish(m, &p, &v, &d), GFS_ECAS);
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP2, &got), 0);
	gfs_sidecar_free(got);
	ck_assert_int_eq(gfs_manifest_audit_count(m, OP2, &n), 0);
	ck_assert_uint_eq(n, 0);
	/* nothing to publish: delete + audit only */
	bad.expected = bad.post = 1;
	ck_assert_int_eq(gfs_manifest_publish(m, &p, &v, &d), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_uint_eq(gfs_manifest_head_version(m), 1);
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP2, &got), -ENOENT);
	ck_assert_int_eq(gfs_manifest_audit_count(m, OP2, &n), 0);
	ck_assert_uint_eq(n, 1);
	struct audit_seen seen = { 0 };
	ck_assert_int_eq(gfs_manifest_audit_list(m, collect_audit, &seen), 0);
	ck_assert_uint_eq(seen.graph_version, 0);
	ck_assert_str_eq(seen.decision, "roll-back");
	free(seen.json);
	gfs_sidecar_free(sc);
	gfs_manifest_close(m);
}
END_TEST

/* Issue 8: every value carries a seal over key and payload.  A byte
 * flipped inside a version record on disk (the issue: a pin digit) is
 * GFS_ECORRUPT naming versions/N, never a record with another pin; the
 * other records keep reading; gfs_manifest_check reports exactly it. */
static void count_msgs(const char *msg, void *arg)
{
	(void)msg;
	(*(int *)arg)++;
}

static void flip_in_file(const char *path, const char *needle, size_t at)
{
	FILE *f = fopen(path, "r+b");
	size_t len = strlen(needle), n;
	char *b;

	ck_assert_ptr_nonnull(f);
	b = malloc(1 << 22);
	ck_assert_ptr_nonnull(b);
	n = fread(b, 1, 1 << 22, f);
	/* every copy: stale ones sit in LMDB's free pages */
	for (size_t i = 0; i + len <= n; i++)
		if (memcmp(b + i, needle, len) == 0) {
			b[i + at] ^= 0x01;
			ck_assert_int_eq(fseek(f, (long)(i + at), SEEK_SET), 0);
			ck_assert_int_eq(fputc((unsigned char)b[i + at], f), (unsigned char)b[i + at]);
		}
	free(b);
	fclose(f);
}

START_TEST(test_sealed_values)
{
	struct gfs_manifest *m = new_store();
	struct gfs_sc_table t = sct("node:A", true, 1, 2);
	struct gfs_publish p = { .op = "load", .op_id = OP2, .actor = "me",
				 .tables = &t, .n_tables = 1 };
	struct gfs_diag d = { { 0 } };
	struct gfs_gv *gv;
	char path[PATH_MAX + 32];
	int n = 0;

	ck_assert_int_eq(gfs_manifest_publish(m, &p, NULL, &d), 0);
	t = sct("node:A", true, 2, 3);
	ck_assert_int_eq(gfs_manifest_publish(m, &p, NULL, &d), 0);
	ck_assert_int_eq(gfs_manifest_check(m, count_msgs, &n), 0);
	gfs_manifest_close(m);

	/* version 2 pins node:A at 2: flip the digit to 3 (valid JSON, the
	 * key still agrees: only the seal can tell) */
	snprintf(path, sizeof path, "%s/manifest/data.mdb", dir);
	flip_in_file(path, "\"node:A\":2,", strlen("\"node:A\":"));
	m = open_m(GFS_MANIFEST_RDONLY);
	ck_assert_int_eq(gfs_manifest_get(m, 2, &gv), GFS_ECORRUPT);
	ck_assert_ptr_null(gv);
	ck_assert_str_eq(gfs_manifest_last_corruption(),
			 "manifest record versions/2 is corrupt: checksum mismatch");
	ck_assert_int_eq(gfs_manifest_get(m, 3, &gv), 0);
	ck_assert_uint_eq(gfs_gv_pin(gv, "node:A"), 3);
	gfs_gv_free(gv);
	ck_assert_int_eq(gfs_manifest_head(m, &gv), 0);
	ck_assert_uint_eq(gv->version, 3);
	gfs_gv_free(gv);
	n = 0;
	ck_assert_int_eq(gfs_manifest_check(m, count_msgs, &n), 1);
	ck_assert_int_eq(n, 1);
	gfs_manifest_close(m);
}
END_TEST

START_TEST(test_corrupt_sidecar)
{
	struct gfs_manifest *m = new_store();
	struct gfs_sidecar *got, **list;
	static const char junk[] = "{not json";
	static const char newer[] = "{\"format\":99,\"op_id\":\"" OP3 "\"}";
	size_t n;

	ck_assert_int_eq(gfs_manifest_debug_put_raw(m, "sidecars", OP1, 26,
						    junk, strlen(junk)), 0);
	ck_assert_int_eq(gfs_manifest_debug_put_raw(m, "sidecars", OP3, 26,
						    newer, strlen(newer)), 0);
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP1, &got), GFS_EFORMAT);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got->raw, junk);
	ck_assert_str_eq(got->op_id, OP1);
	char *js = gfs_sidecar_to_json(got);
	ck_assert_ptr_nonnull(strstr(js, "\"unparsable\":\"{not json\""));
	free(js);
	gfs_sidecar_free(got);
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP3, &got), GFS_EFORMAT);
	ck_assert_int_eq(got->format, 99);
	ck_assert_str_eq(got->raw, newer);
	gfs_sidecar_free(got);
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(m, OP1), GFS_EFORMAT);

	/* listed (refused loudly) and still on disk */
	ck_assert_int_eq(gfs_manifest_sidecar_list(m, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_ptr_nonnull(list[0]->raw);
	ck_assert_ptr_nonnull(list[1]->raw);
	for (size_t i = 0; i < n; i++)
		gfs_sidecar_free(list[i]);
	free(list);
	gfs_manifest_close(m);
	m = open_m(0);
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP1, &got), GFS_EFORMAT);
	gfs_sidecar_free(got);

	/* a corrupt version record is GFS_ECORRUPT, a newer one GFS_EFORMAT */
	unsigned char k2[8] = { 0, 0, 0, 0, 0, 0, 0, 2 };
	ck_assert_int_eq(gfs_manifest_debug_put_raw(m, "versions", k2, 8,
						    "[]", 2), 0);
	struct gfs_gv *gv;
	/* main's head is gv 1 (its branch record), not the last key */
	ck_assert_int_eq(gfs_manifest_get(m, 2, &gv), GFS_ECORRUPT);
	ck_assert_int_eq(gfs_manifest_debug_put_raw(m, "versions", k2, 8,
						    "{\"format\":2}", 12), 0);
	ck_assert_int_eq(gfs_manifest_get(m, 2, &gv), GFS_EFORMAT);
	gfs_manifest_close(m);
}
END_TEST

static int count_gv(const struct gfs_gv *gv, void *arg)
{
	uint64_t *c = arg;
	if (gv->version != c[0] + c[1] || gfs_gv_pin(gv, "node:A") != gv->version)
		return -1;
	c[1]++;
	return c[1] == c[2] ? 42 : 0;
}

static void publish_n(struct gfs_manifest *m, uint32_t from, uint32_t to)
{
	struct gfs_diag d = { { 0 } };
	for (uint32_t i = from; i < to; i++) {
		struct gfs_sc_table t = sct("node:A", true, i, i + 1);
		struct gfs_publish p = { .op = "load", .op_id = OP2,
					 .tables = &t, .n_tables = 1 };
		int rc = gfs_manifest_publish(m, &p, NULL, &d);
		ck_assert_msg(rc == 0, "publish %u: %s %s", i, gfs_strerror(rc),
			      d.msg);
	}
}

static int put_moved(struct gfs_kv_txn *txn, void *arg)
{
	(void)arg;
	return gfs_manifest_raw_seal_put(txn, 0 /* meta */, GFS_META_MOVED_TO,
					 "{\"store\":\"X\",\"to\":\"etcd://h:1/p\",\"time_ns\":1}");
}

/* Invariant 336 (store.c 9): a manifest marked moved_to commits no write,
 * whichever it is, and says where the manifest went; reads go on. */
START_TEST(test_moved_refuses_writes)
{
	struct gfs_manifest *m = new_store();
	struct gfs_diag d = { { 0 } };
	struct gfs_sidecar *s2 = mk_sidecar(OP2, 200), *s3 = mk_sidecar(OP3, 300), *got;
	struct gfs_branch b;
	struct gfs_gv *head;
	uint64_t v = 0;

	ck_assert_str_eq(gfs_manifest_raw_db_name(0), "meta");
	ck_assert_int_eq(gfs_manifest_sidecar_put(m, s2), 0);
	ck_assert_int_eq(gfs_kv_write(gfs_manifest_raw_kv(m), put_moved, NULL, &d), 0);

	ck_assert_int_eq(gfs_manifest_sidecar_put(m, s3), GFS_EMOVED);
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(m, OP2), GFS_EMOVED);
	struct gfs_publish p = { .op = "load", .op_id = OP2, .tables = s2->tables,
				 .n_tables = 2, .sidecar = OP2 };
	ck_assert_int_eq(gfs_manifest_publish(m, &p, &v, &d), GFS_EMOVED);
	ck_assert_ptr_nonnull(strstr(d.msg, "moved to etcd://h:1/p"));
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(gfs_manifest_branch_create(m, "dev", "main", 0, "t", &b, &d),
			 GFS_EMOVED);
	ck_assert_ptr_nonnull(strstr(d.msg, "graphctl migrate"));
	ck_assert_str_eq(gfs_strerror(GFS_EMOVED),
			 "the store's manifest was moved by 'graphctl migrate' (nothing written): open the store again");

	/* reads: the state at the freeze */
	ck_assert_int_eq(gfs_manifest_head(m, &head), 0);
	ck_assert_uint_eq(head->version, 1);
	gfs_gv_free(head);
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP2, &got), 0);
	ck_assert(!got->confirmed);
	gfs_sidecar_free(got);
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP3, &got), -ENOENT);
	ck_assert_int_eq(gfs_manifest_branch_get(m, "dev", &b), -ENOENT);
	invariants(m);
	gfs_sidecar_free(s2);
	gfs_sidecar_free(s3);
	gfs_manifest_close(m);
}
END_TEST

START_TEST(test_history)
{
	struct gfs_manifest *m = new_store();
	uint64_t c[3] = { 1, 0, 0 };

	publish_n(m, 1, 10000);
	ck_assert_uint_eq(gfs_manifest_head_version(m), 10000);
	ck_assert_int_eq(gfs_manifest_history(m, 1, 0, count_gv, c), 0);
	ck_assert_uint_eq(c[1], 10000);
	/* a sub-range crossing batch boundaries */
	c[0] = 250;
	c[1] = 0;
	ck_assert_int_eq(gfs_manifest_history(m, 250, 777, count_gv, c), 0);
	ck_assert_uint_eq(c[1], 528);
	/* the callback's nonzero return stops and is returned */
	c[0] = 1;
	c[1] = 0;
	c[2] = 300;
	ck_assert_int_eq(gfs_manifest_history(m, 0, 0, count_gv, c), 42);
	ck_assert_uint_eq(c[1], 300);
	invariants(m);
	gfs_manifest_close(m);
}
END_TEST

START_TEST(test_map_growth)
{
	gfs_manifest_debug_set_initial_mapsize(64 << 10);
	struct gfs_manifest *m = new_store();
	size_t initial = gfs_manifest_debug_mapsize(m);
	char val[4096];
	char key[16];

	ck_assert_uint_le(initial, 64 << 10);
	memset(val, 'x', sizeof val - 1);
	val[sizeof val - 1] = '\0';
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof key, "k%03d", i);
		ck_assert_int_eq(gfs_manifest_meta_put(m, key, val), 0);
	}
	ck_assert_uint_ge(gfs_manifest_debug_mapsize(m), 4 * initial);
	publish_n(m, 1, 50);
	invariants(m);
	gfs_manifest_close(m);
	m = open_m(0);
	char *got;
	ck_assert_int_eq(gfs_manifest_meta_get(m, "k199", &got), 0);
	ck_assert_str_eq(got, val);
	free(got);
	ck_assert_uint_eq(gfs_manifest_head_version(m), 50);
	gfs_manifest_close(m);
	gfs_manifest_debug_set_initial_mapsize(0);
}
END_TEST

static void put_many(struct gfs_manifest *m, int n, const char *val)
{
	char key[16];
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof key, "k%03d", i);
		ck_assert_int_eq(gfs_manifest_meta_put(m, key, val), 0);
	}
}

/* Another process grows the map: our next transaction adopts its size
 * (MDB_MAP_RESIZED).  The parent's handle exists across the fork on purpose:
 * the child must get an environment of its own, not the inherited one. */
START_TEST(test_map_resized)
{
	static char val[4096];
	int go[2], st;
	char c, *got;

	memset(val, 'y', sizeof val - 1);
	gfs_manifest_debug_set_initial_mapsize(64 << 10);
	struct gfs_manifest *m = new_store();
	size_t before = gfs_manifest_debug_mapsize(m);
	ck_assert_int_eq(pipe(go), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct gfs_manifest *cm;
		if (read(go[0], &c, 1) != 1 || gfs_manifest_open(dir, 0, &cm, NULL))
			_exit(2);
		put_many(cm, 200, val);
		gfs_manifest_close(cm);
		_exit(0);
	}
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(gfs_manifest_meta_get(m, "k199", &got), 0);
	ck_assert_str_eq(got, val);
	free(got);
	ck_assert_uint_gt(gfs_manifest_debug_mapsize(m), before);
	put_many(m, 250, "z");
	invariants(m);
	gfs_manifest_close(m);
}
END_TEST

struct stress {
	struct gfs_manifest *m;
	int id, rc;
};

static void *stress_writer(void *arg)
{
	static char val[3000];
	struct stress *s = arg;
	char key[32];
	memset(val, 's', sizeof val - 1);
	for (int i = 0; i < 60 && !s->rc; i++) {
		snprintf(key, sizeof key, "t%d-%d", s->id, i);
		s->rc = gfs_manifest_meta_put(s->m, key, val);
	}
	return NULL;
}

static void *stress_reader(void *arg)
{
	struct stress *s = arg;
	for (int i = 0; i < 300 && !s->rc; i++) {
		struct gfs_gv *gv;
		s->rc = gfs_manifest_head(s->m, &gv);
		gfs_gv_free(gv);
	}
	return NULL;
}

/* Threads writing through map growth while others read: no deadlock, no
 * lost write (invariant 2 of store.c). */
START_TEST(test_growth_threads)
{
	pthread_t th[6];
	struct stress st[6];
	gfs_manifest_debug_set_initial_mapsize(64 << 10);
	struct gfs_manifest *m = new_store();
	for (int i = 0; i < 6; i++) {
		st[i] = (struct stress){ m, i, 0 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, i < 4 ? stress_writer
							: stress_reader, &st[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(st[i].rc, 0);
	}
	char *got;
	ck_assert_int_eq(gfs_manifest_meta_get(m, "t3-59", &got), 0);
	ck_assert_uint_eq(strlen(got), 2999);
	free(got);
	gfs_manifest_close(m);
}
END_TEST

/* Child of the race: open after fork, read the head, tell the parent, wait
 * for "go", publish with the pin read.  Exit 0 won, 1 GFS_ECAS, 2 else. */
static void racer(int ready, int go)
{
	struct gfs_manifest *m;
	struct gfs_gv *gv;
	char c = 'r';
	if (gfs_manifest_open(dir, 0, &m, NULL) || gfs_manifest_head(m, &gv))
		_exit(2);
	struct gfs_sc_table t = sct("node:A", true, gfs_gv_pin(gv, "node:A"),
				    gfs_gv_pin(gv, "node:A") + 1);
	struct gfs_publish p = { .op = "load", .op_id = OP2, .tables = &t,
				 .n_tables = 1 };
	gfs_gv_free(gv);
	if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 1)
		_exit(2);
	int rc = gfs_manifest_publish(m, &p, NULL, NULL);
	gfs_manifest_close(m);
	_exit(rc == 0 ? 0 : rc == GFS_ECAS ? 1 : 2);
}

START_TEST(test_race_publish)
{
	int ready[2], go[2], st[2];
	pid_t pid[2];
	char c;

	gfs_manifest_close(new_store()); /* nothing LMDB crosses fork() */
	ck_assert_int_eq(pipe(ready), 0);
	ck_assert_int_eq(pipe(go), 0);
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		ck_assert_int_ge(pid[i], 0);
		if (pid[i] == 0)
			racer(ready[1], go[0]);
	}
	for (int i = 0; i < 2; i++) /* both have read the head */
		ck_assert_int_eq(read(ready[0], &c, 1), 1);
	ck_assert_int_eq(write(go[1], "gg", 2), 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(waitpid(pid[i], &st[i], 0), pid[i]);
		ck_assert(WIFEXITED(st[i]));
	}
	ck_assert_int_eq(WEXITSTATUS(st[0]) + WEXITSTATUS(st[1]), 1);
	struct gfs_manifest *m = open_m(0);
	ck_assert_uint_eq(gfs_manifest_head_version(m), 2);
	invariants(m);
	gfs_manifest_close(m);
}
END_TEST

static int lock1(const char *table, enum gfs_lock_mode mode, unsigned flags,
		 struct gfs_lockset **ls)
{
	return gfs_lock_tables(dir, &table, &mode, 1, flags, ls);
}

/* In a child: try table in mode; exit 0 taken, 1 EWOULDBLOCK, 2 else. */
static int child_try(const char *table, enum gfs_lock_mode mode)
{
	pid_t pid = fork();
	int st;
	if (pid == 0) {
		struct gfs_lockset *ls;
		int rc = lock1(table, mode, GFS_LOCK_TRY, &ls);
		_exit(rc == 0 ? 0 : rc == -EWOULDBLOCK ? 1 : 2);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(test_locks_processes)
{
	struct gfs_lockset *ls;
	int p[2], st;
	char c;

	ck_assert_int_eq(lock1("node:A", GFS_LOCK_EX, GFS_LOCK_WAIT, &ls), 0);
	ck_assert_int_eq(child_try("node:A", GFS_LOCK_EX), 1);
	ck_assert_int_eq(child_try("node:A", GFS_LOCK_SH), 1);
	ck_assert_int_eq(child_try("node:B", GFS_LOCK_EX), 0);
	gfs_lockset_free(ls);
	ck_assert_int_eq(child_try("node:A", GFS_LOCK_EX), 0);

	ck_assert_int_eq(lock1("node:A", GFS_LOCK_SH, 0, &ls), 0);
	ck_assert_int_eq(child_try("node:A", GFS_LOCK_SH), 0);
	ck_assert_int_eq(child_try("node:A", GFS_LOCK_EX), 1);
	gfs_lockset_free(ls);

	/* the kernel releases a dead holder's lock */
	ck_assert_int_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		if (lock1("edge:K", GFS_LOCK_EX, 0, &ls) || write(p[1], "x", 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	ck_assert_int_eq(lock1("edge:K", GFS_LOCK_EX, GFS_LOCK_TRY, &ls),
			 -EWOULDBLOCK);
	ck_assert_ptr_null(ls);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(lock1("edge:K", GFS_LOCK_EX, GFS_LOCK_TRY, &ls), 0);
	gfs_lockset_free(ls);

	struct stat sb;
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/locks/edge:K.lock", dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(lock1("../x", GFS_LOCK_EX, 0, &ls), -EINVAL);
}
END_TEST

struct waiter {
	struct gfs_lockset *ls;
	int rc;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	w->rc = lock1("node:A", GFS_LOCK_EX, GFS_LOCK_WAIT, &w->ls);
	return NULL;
}

static void *try_thread(void *arg)
{
	struct waiter *w = arg;
	w->rc = lock1("node:A", GFS_LOCK_SH, GFS_LOCK_TRY, &w->ls);
	return NULL;
}

START_TEST(test_locks_threads)
{
	struct gfs_lockset *a, *b;
	struct waiter w = { 0 };
	pthread_t th;
	const char *three[3] = { "node:C", "node:B", "node:A" };
	enum gfs_lock_mode ex3[3] = { GFS_LOCK_EX, GFS_LOCK_EX, GFS_LOCK_EX };
	const char *dup[2] = { "node:A", "node:A" };
	enum gfs_lock_mode shex[2] = { GFS_LOCK_SH, GFS_LOCK_EX };

	ck_assert_int_eq(lock1("node:A", GFS_LOCK_EX, 0, &a), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, try_thread, &w), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(w.rc, -EWOULDBLOCK);
	/* even the same thread: every acquisition has its own descriptor */
	ck_assert_int_eq(lock1("node:A", GFS_LOCK_EX, GFS_LOCK_TRY, &b),
			 -EWOULDBLOCK);
	/* a blocked waiter gets it when the holder releases */
	ck_assert_int_eq(pthread_create(&th, NULL, wait_thread, &w), 0);
	gfs_lockset_free(a);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(w.rc, 0);
	gfs_lockset_free(w.ls);

	/* TRY on a partly held set keeps nothing */
	ck_assert_int_eq(lock1("node:B", GFS_LOCK_EX, 0, &a), 0);
	ck_assert_int_eq(gfs_lock_tables(dir, three, ex3, 3, GFS_LOCK_TRY, &b),
			 -EWOULDBLOCK);
	ck_assert_int_eq(lock1("node:A", GFS_LOCK_EX, GFS_LOCK_TRY, &b), 0);
	gfs_lockset_free(b);
	gfs_lockset_free(a);
	ck_assert_int_eq(gfs_lock_tables(dir, three, ex3, 3, 0, &a), 0);
	gfs_lockset_free(a);

	/* named twice: exclusive wins */
	ck_assert_int_eq(gfs_lock_tables(dir, dup, shex, 2, 0, &a), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, try_thread, &w), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(w.rc, -EWOULDBLOCK);
	gfs_lockset_free(a);
}
END_TEST

START_TEST(test_json_shapes)
{
	struct gfs_pin pins[2] = { { "edge:K", 2 }, { "node:Person", 4 } };
	struct gfs_gv gv = { .version = 7, .time_ns = 1500000000, .op = "load",
			     .op_id = OP1, .actor = "ann", .schema_id = "abcd",
			     .detail = "{\"rows\":3}", .pins = pins, .n_pins = 2 };
	char *s = gfs_gv_to_json(&gv);
	ck_assert_str_eq(s, "{\"version\":7,\"time\":\"1970-01-01T00:00:01.5Z\","
		"\"op\":\"load\",\"op_id\":\"" OP1 "\",\"actor\":\"ann\","
		"\"schema\":\"abcd\",\"branch\":\"main\",\"parents\":[],"
		"\"tables\":{\"edge:K\":2,\"node:Person\":4},"
		"\"detail\":{\"rows\":3}}");
	free(s);
	struct gfs_sidecar *sc = mk_sidecar(OP2, 0);
	s = gfs_sidecar_to_json(sc);
	ck_assert_str_eq(s, "{\"op_id\":\"" OP2 "\",\"kind\":\"load\","
		"\"actor\":\"tester\",\"start\":\"1970-01-01T00:00:00Z\","
		"\"confirmed\":false,\"branch\":\"main\",\"tables\":[{\"table\":\"node:A\","
		"\"written\":true,\"expected\":1,\"post\":2},{\"table\":"
		"\"node:B\",\"written\":false,\"expected\":1,\"post\":1}]}");
	free(s);
	struct gfs_audit a = { .op_id = OP2, .decision = "discard",
			       .kind = "load", .actor = "x", .resolver = "y",
			       .time_ns = 0, .graph_version = 0 };
	s = gfs_audit_to_json(&a);
	ck_assert_str_eq(s, "{\"op_id\":\"" OP2 "\",\"decision\":\"discard\","
		"\"kind\":\"load\",\"actor\":\"x\",\"resolver\":\"y\","
		"\"time\":\"1970-01-01T00:00:00Z\",\"graph_version\":0,"
		"\"tables\":[]}");
	free(s);
	gfs_sidecar_free(sc);
}
END_TEST

START_TEST(test_fp_names)
{
	for (int i = 0; i < GFS_FP__COUNT; i++) {
		ck_assert_ptr_nonnull(gfs_fp_names[i]);
		ck_assert_ptr_nonnull(strchr(gfs_fp_names[i], '/'));
		for (int j = 0; j < i; j++)
			ck_assert_str_ne(gfs_fp_names[i], gfs_fp_names[j]);
	}
	ck_assert_str_eq(gfs_fp_names[GFS_FP_STORE_MAP_GROW], "store/map_grow");
}
END_TEST

/* ---- the table-version counter and index (store format 3) -------------- */

static int count_cb(const struct gfs_tver_rec *r, void *arg)
{
	uint32_t *seen = arg;

	ck_assert_str_eq(r->table, "node:A");
	ck_assert_uint_gt(r->v, seen[1]); /* in number order */
	seen[1] = r->v;
	seen[0]++;
	return 0;
}

static enum gfs_tver_state state_of(struct gfs_manifest *m, const char *t,
				    uint32_t v)
{
	struct gfs_tver_rec r;

	ck_assert_int_eq(gfs_manifest_tver_get(m, t, v, &r), 0);
	return r.state;
}

/* The calls the branch, merge and gc work build on: init's records, the
 * range read of one table only (node:A's keys are a prefix of node:AB's
 * names, not of their keys), next, and a state set in a publish (gc's
 * `collected`), which keeps first_gv. */
START_TEST(test_tver_api)
{
	struct gfs_manifest *m = new_store();
	struct gfs_diag d = { { 0 } };
	struct gfs_sidecar *sc = mk_sidecar(OP2, 5);
	struct gfs_sc_table t = sct("node:A", true, 1, 2), ab = sct("node:AB", true, 0, 0);
	struct gfs_tver_set set = { .table = "node:A", .v = 1, .state = GFS_TVER_COLLECTED };
	struct gfs_publish p = { .op = "load", .op_id = OP2, .actor = "t",
				 .tables = &t, .n_tables = 1, .sidecar = OP2,
				 .tver_sets = &set, .n_tver_sets = 1 };
	struct gfs_tver_rec r;
	uint32_t n = 0, seen[2] = { 0, 0 };
	uint64_t ver = 0;

	ck_assert_int_eq(gfs_manifest_next(m, "node:A", &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(gfs_manifest_next(m, "node:Nope", &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(gfs_manifest_tver_get(m, "node:A", 1, &r), 0);
	ck_assert_int_eq(r.state, GFS_TVER_PUBLISHED);
	ck_assert_uint_eq(r.first_gv, 1);
	ck_assert_int_eq(gfs_manifest_tver_get(m, "node:A", 2, &r), -ENOENT);
	/* node:AB: a reservation of its own (post 0: next is 1) */
	sc->tables[0].post = 0;
	ck_assert_int_eq(gfs_manifest_sidecar_put(m, sc), 0);
	ck_assert_uint_eq(sc->tables[0].post, 2);
	gfs_sidecar_free(sc);
	sc = mk_sidecar(OP3, 6);
	sc->tables[0] = ab;
	sc->n_tables = 1;
	ck_assert_int_eq(gfs_manifest_sidecar_put(m, sc), 0);
	ck_assert_uint_eq(sc->tables[0].post, 1);
	ck_assert_int_eq(gfs_manifest_tver_list(m, "node:A", count_cb, seen), 0);
	ck_assert_uint_eq(seen[0], 2); /* 1 published, 2 reserved; not node:AB's */
	ck_assert_int_eq(state_of(m, "node:A", 2), GFS_TVER_RESERVED);
	ck_assert_msg(gfs_manifest_publish(m, &p, &ver, &d) == 0, "%s", d.msg);
	ck_assert_int_eq(state_of(m, "node:A", 2), GFS_TVER_PUBLISHED);
	ck_assert_int_eq(gfs_manifest_tver_get(m, "node:A", 2, &r), 0);
	ck_assert_uint_eq(r.first_gv, ver);
	ck_assert_int_eq(gfs_manifest_tver_get(m, "node:A", 1, &r), 0);
	ck_assert_int_eq(r.state, GFS_TVER_COLLECTED);
	ck_assert_uint_eq(r.first_gv, 1); /* the time stays known */
	ck_assert_int_eq(gfs_manifest_tver_get(m, "node:A", 0, &r), -EINVAL);
	gfs_sidecar_free(sc);
	invariants(m);
	gfs_manifest_close(m);
}
END_TEST

/* W4': the repost checks the sidecar (ours, unconfirmed, still naming p),
 * voids p and reserves the next number as the post. */
START_TEST(test_sidecar_repost)
{
	struct gfs_manifest *m = new_store();
	struct gfs_sidecar *sc = mk_sidecar(OP2, 5), *got = NULL;
	uint32_t np = 0, n = 0;

	sc->tables[0].post = 0;
	ck_assert_int_eq(gfs_manifest_sidecar_put(m, sc), 0);
	ck_assert_uint_eq(sc->tables[0].post, 2);
	ck_assert_int_eq(gfs_manifest_sidecar_repost(m, OP2, "node:A", 3, &np), GFS_ECAS);
	ck_assert_int_eq(gfs_manifest_sidecar_repost(m, OP3, "node:A", 2, &np), -ENOENT);
	ck_assert_int_eq(gfs_manifest_sidecar_repost(m, OP2, "node:A", 2, &np), 0);
	ck_assert_uint_eq(np, 3);
	ck_assert_int_eq(state_of(m, "node:A", 2), GFS_TVER_VOID);
	ck_assert_int_eq(state_of(m, "node:A", 3), GFS_TVER_RESERVED);
	ck_assert_int_eq(gfs_manifest_next(m, "node:A", &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(gfs_manifest_sidecar_get(m, OP2, &got), 0);
	ck_assert_uint_eq(got->tables[0].post, 3);
	ck_assert_int_eq(got->format, GFS_SIDECAR_FORMAT);
	gfs_sidecar_free(got);
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(m, OP2), 0);
	ck_assert_int_eq(gfs_manifest_sidecar_repost(m, OP2, "node:A", 3, &np), GFS_ECAS);
	ck_assert_uint_eq(np, 0);
	gfs_sidecar_free(sc);
	gfs_manifest_close(m);
}
END_TEST

#ifdef GFS_FAILPOINTS_ENABLED
/* Runs body in a child with GRAPHFS_FAILPOINTS=spec; returns its status. */
static int fp_child(const char *spec, int (*body)(void))
{
	pid_t pid = fork();
	int st;
	if (pid == 0) {
		setenv("GRAPHFS_FAILPOINTS", spec, 1);
		_exit(body());
	}
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return st;
}

static int fp_errors(void)
{
	struct gfs_diag d = { { 0 } };
	if (gfs_fp_init(&d))
		return 10;
	if (gfs_fp_hit(GFS_FP_COMMIT_AFTER_SIDECAR) != EIO ||
	    gfs_fp_hit(GFS_FP_COMMIT_AFTER_SIDECAR) != EIO)
		return 11;
	if (gfs_fp_hit(GFS_FP_COMMIT_AFTER_TABLE) != 0 ||
	    gfs_fp_hit(GFS_FP_COMMIT_AFTER_TABLE) != ENOSPC ||
	    gfs_fp_hit(GFS_FP_COMMIT_AFTER_TABLE) != 0)
		return 12;
	if (gfs_fp_hit(GFS_FP_TABLE_AFTER_LINK) != 0 ||
	    gfs_fp_hit(GFS_FP_TABLE_AFTER_LINK) != 0 ||
	    gfs_fp_hit(GFS_FP_TABLE_AFTER_LINK) != 7 ||
	    gfs_fp_hit(GFS_FP_TABLE_AFTER_LINK) != 7)
		return 13;
	if (gfs_fp_hit(GFS_FP_LOAD_AFTER_STAGE) != 0)
		return 14;
	return 0;
}

static int fp_exit_body(void)
{
	gfs_fp_hit(GFS_FP_COMMIT_AFTER_CONFIRM);
	return 0; /* not reached */
}

static int fp_bad_body(void)
{
	struct gfs_diag d = { { 0 } };
	int rc = gfs_fp_init(&d);
	if (rc != -EINVAL || !strstr(d.msg, "GRAPHFS_FAILPOINTS"))
		return 1;
	return gfs_fp_hit(GFS_FP_COMMIT_AFTER_SIDECAR) == EINVAL ? 0 : 2;
}

static int fp_park_body(void)
{
	/* lazy init: no explicit gfs_fp_init */
	return gfs_fp_hit(GFS_FP_RECOVER_AFTER_LOCKS) == 0 ? 0 : 1;
}

START_TEST(test_failpoints)
{
	int st = fp_child("commit/after_sidecar=error:5,"
			  "commit/after_table=error:ENOSPC@2,"
			  "table/after_link=error:7@3+", fp_errors);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	st = fp_child("commit/after_confirm=exit", fp_exit_body);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 86);
	st = fp_child("commit/nope=exit", fp_bad_body);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	static const char *const bad[] = {
		"commit/after_sidecar=error:5@0", "commit/after_sidecar",
		"commit/after_sidecar=explode", "commit/after_sidecar=error:x",
		"load/after_stage=exit,commit/after_sidecar=park@",
	};
	for (size_t i = 0; i < GFS_ARRAY_SIZE(bad); i++) {
		st = fp_child(bad[i], fp_bad_body);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s", bad[i]);
	}
}
END_TEST

/* store/map_grow=error: a write that needs a bigger map fails with that
 * errno and writes nothing; the store stays usable. */
static int fp_grow_body(void)
{
	static char val[4096];
	struct gfs_manifest *m;
	char key[16], *got;
	int rc = 0, i;
	memset(val, 'g', sizeof val - 1);
	/* 128 KiB: the empty store's eight databases (issue 11: next, tver,
	 * branches) leave room for a few values before the map is full */
	gfs_manifest_debug_set_initial_mapsize(128 << 10);
	if (gfs_manifest_open(dir, 0, &m, NULL))
		return 20;
	for (i = 0; i < 1000 && !rc; i++) {
		snprintf(key, sizeof key, "k%03d", i);
		rc = gfs_manifest_meta_put(m, key, val);
	}
	if (rc != -ENOSPC || i == 1000)
		return 21;
	if (gfs_manifest_meta_get(m, key, &got) != -ENOENT)
		return 22;
	snprintf(key, sizeof key, "k%03d", i - 2);
	if (gfs_manifest_meta_get(m, key, &got))
		return 23;
	free(got);
	rc = gfs_manifest_head_version(m) == 1 ? 0 : 24;
	gfs_manifest_close(m);
	return rc;
}

START_TEST(test_failpoint_map_grow)
{
	gfs_manifest_debug_set_initial_mapsize(128 << 10);
	gfs_manifest_close(new_store());
	int st = fp_child("store/map_grow=error:ENOSPC", fp_grow_body);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

START_TEST(test_failpoint_park)
{
	char path[PATH_MAX + 64], *pidtxt;
	size_t len;
	int st;
	uint64_t got;

	setenv("GRAPHFS_FP_DIR", dir, 1);
	pid_t pid = fork();
	if (pid == 0) {
		setenv("GRAPHFS_FAILPOINTS", "recover/after_locks=park", 1);
		_exit(fp_park_body());
	}
	snprintf(path, sizeof path, "%s/recover_after_locks.%ld.reached", dir,
		 (long)pid);
	struct timespec ts = { 0, 5000000 };
	for (int i = 0; access(path, F_OK) != 0; i++) {
		ck_assert_msg(i < tu_scaled(6000), "child never parked");
		nanosleep(&ts, NULL);
	}
	ck_assert_int_eq(gfs_read_file(path, &pidtxt, &len, 64), 0);
	ck_assert_uint_gt(len, 1);
	pidtxt[len - 1] = '\0'; /* newline */
	ck_assert_int_eq(gfs_parse_u64(pidtxt, &got), 0);
	ck_assert_uint_eq(got, (uint64_t)pid);
	free(pidtxt);
	ck_assert_int_eq(waitpid(pid, &st, WNOHANG), 0); /* still parked */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST
#endif

static Suite *manifest_suite(void)
{
	Suite *s = suite_create("manifest");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_init_head);
	tcase_add_test(tc, test_publish_cas);
	tcase_add_test(tc, test_require_sidecar);
	tcase_add_test(tc, test_sidecars);
	tcase_add_test(tc, test_audit_atomic);
	tcase_add_test(tc, test_corrupt_sidecar);
	tcase_add_test(tc, test_history);
	tcase_add_test(tc, test_moved_refuses_writes);
	tcase_add_test(tc, test_map_growth);
	tcase_add_test(tc, test_map_resized);
	tcase_add_test(tc, test_growth_threads);
	tcase_add_test(tc, test_race_publish);
	tcase_add_test(tc, test_locks_processes);
	tcase_add_test(tc, test_locks_threads);
	tcase_add_test(tc, test_json_shapes);
	tcase_add_test(tc, test_fp_names);
	tcase_add_test(tc, test_sealed_values);
	tcase_add_test(tc, test_tver_api);
	tcase_add_test(tc, test_sidecar_repost);
#ifdef GFS_FAILPOINTS_ENABLED
	tcase_add_test(tc, test_failpoints);
	tcase_add_test(tc, test_failpoint_park);
	tcase_add_test(tc, test_failpoint_map_grow);
#endif
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(manifest_suite());
}
