/* check_table.c - table versions: build, read, share, verify, corrupt. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "failpoints.h"
#include "table.h"
#include "table_int.h"

#define T "node:Person"
#define E "edge:Knows"

static char g_dir[256]; /* short, so derived paths fit PATH_MAX */
static struct gfs_tstore *g_ts;

static void setup(void)
{
	tu_tmpdir(g_dir, sizeof g_dir);
	ck_assert_int_eq(gfs_tstore_open(g_dir, &g_ts), 0);
	ck_assert_int_eq(gfs_table_create(g_ts, T), 0);
	ck_assert_int_eq(gfs_table_create(g_ts, T), 0); /* idempotent */
	ck_assert_int_eq(gfs_table_create(g_ts, E), 0);
}

static void teardown(void)
{
	gfs_tstore_close(g_ts);
	tu_rmrf(g_dir);
}

/* The "spill" case runs the model tests again with builders that spill
 * their ops to disk after every few puts, so every tree is written from
 * merged runs (runs of one op, of several, and ops left in memory). */
static void setup_spill(void)
{
	setup();
	tbl_spill_bytes = 300;
}

/* ---- helpers ---------------------------------------------------------- */

static void id_of(char *buf, size_t n, int i)
{
	snprintf(buf, n, "k%07d", i);
}

/* Line of row i at generation gen; gen also varies the length. */
static int line_of(char *buf, size_t n, int i, int gen)
{
	return snprintf(buf, n,
			"{\"type\":\"Person\",\"data\":{\"id\":\"k%07d\",\"gen\":%d,"
			"\"pad\":\"%.*s\"}}\n",
			i, gen, (i * 7 + gen * 13) % 40, "........................................");
}

static struct gfs_tbuild *builder(const char *t, struct gfs_tver *parent,
				  unsigned nu, unsigned flags)
{
	struct gfs_tbuild *b;

	ck_assert_int_eq(gfs_tbuild_new(g_ts, t, parent, nu, flags, &b), 0);
	return b;
}

static void put_row(struct gfs_tbuild *b, int i, int gen)
{
	char id[16], line[160];
	int n = line_of(line, sizeof line, i, gen);
	struct gfs_rowput r = { 0 };

	id_of(id, sizeof id, i);
	r.id = id;
	r.id_len = strlen(id);
	r.line = line;
	r.line_len = (size_t)n;
	r.data_off = 26;
	r.data_len = (uint32_t)n - 28;
	ck_assert_int_eq(gfs_tbuild_put(b, &r), 0);
}

static void del_row(struct gfs_tbuild *b, int i)
{
	char id[16];

	id_of(id, sizeof id, i);
	ck_assert_int_eq(gfs_tbuild_del(b, id, strlen(id)), 0);
}

static void commit_t(struct gfs_tbuild *b, uint32_t v)
{
	char op[GFS_ULID_LEN + 1];
	struct gfs_diag d = { { 0 } };
	int rc;

	ck_assert_int_eq(gfs_ulid_new(op), 0);
	rc = gfs_tbuild_commit(b, v, op, &d);
	ck_assert_msg(rc == 0, "commit v%u: %d %s", v, rc, d.msg);
	gfs_tbuild_free(b);
}

static struct gfs_tver *open_t(const char *t, uint32_t v)
{
	struct gfs_diag d = { { 0 } };
	struct gfs_tver *tv = NULL;
	int rc = gfs_tver_open(g_ts, t, v, &tv, &d);

	ck_assert_msg(rc == 0, "open %s v%u: %d %s", t, v, rc, d.msg);
	return tv;
}

static void verify_ok(const char *t, uint32_t v)
{
	struct gfs_diag d = { { 0 } };
	int rc = gfs_tver_verify(g_ts, t, v, &d);

	ck_assert_msg(rc == 0, "verify %s v%u: %d %s", t, v, rc, d.msg);
}

static off_t file_size(const char *t, uint32_t v)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof path, "%s/tables/%s/%u", g_dir, t, v);
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

/* gen[i] >= 0: row i present with that generation. */
static void expect_export(const int *gen, int n, struct gfs_buf *out)
{
	char line[160];

	gfs_buf_init(out);
	for (int i = 0; i < n; i++) {
		if (gen[i] < 0)
			continue;
		int len = line_of(line, sizeof line, i, gen[i]);

		ck_assert_int_eq(gfs_buf_append(out, line, (size_t)len), 0);
	}
}

/* Iterates the primary index and reads the whole export; both must equal
 * the model. */
static void check_model(struct gfs_tver *tv, const int *gen, int n)
{
	struct gfs_tver_info info;
	struct gfs_titer *it;
	struct gfs_row row;
	struct gfs_buf want, got;
	uint64_t off = 0, rows = 0;
	size_t got_n;
	char id[16];
	int i = 0, rc;

	expect_export(gen, n, &want);
	gfs_buf_init(&got);
	ck_assert_int_eq(gfs_titer_new(tv, GFS_IX_PRIMARY, NULL, 0, &it), 0);
	while ((rc = gfs_titer_next(it, &row)) == 1) {
		char buf[200];
		size_t rn;

		while (i < n && gen[i] < 0)
			i++;
		ck_assert_int_lt(i, n);
		id_of(id, sizeof id, i);
		ck_assert_uint_eq(row.id_len, strlen(id));
		ck_assert(memcmp(row.id, id, row.id_len) == 0);
		ck_assert_uint_eq(row.export_off, off);
		ck_assert_int_eq(gfs_tver_read_row(tv, &row, 0, buf, sizeof buf, &rn), 0);
		ck_assert_uint_eq(rn, row.line_len);
		ck_assert_int_eq(gfs_buf_append(&got, buf, rn), 0);
		off += row.line_len;
		rows++;
		i++;
	}
	ck_assert_int_eq(rc, 0);
	gfs_titer_free(it);
	gfs_tver_info(tv, &info);
	ck_assert_uint_eq(info.rows, rows);
	ck_assert_uint_eq(info.export_bytes, want.len);
	ck_assert_uint_eq(got.len, want.len);
	ck_assert(!want.len || memcmp(got.p, want.p, want.len) == 0);
	got.len = 0;
	ck_assert_int_eq(gfs_buf_reserve(&got, want.len + 16), 0);
	ck_assert_int_eq(gfs_tver_read_export(tv, 0, got.p, want.len + 16, &got_n), 0);
	ck_assert_uint_eq(got_n, want.len);
	ck_assert(!want.len || memcmp(got.p, want.p, want.len) == 0);
	gfs_buf_release(&got);
	gfs_buf_release(&want);
}

static void get_t(struct gfs_tver *tv, int i, struct gfs_row *row, int want)
{
	char id[16];

	id_of(id, sizeof id, i);
	ck_assert_int_eq(gfs_tver_get(tv, id, strlen(id), row), want);
}

static int *gens(int n, int g)
{
	int *a = malloc((size_t)n * sizeof *a);

	ck_assert_ptr_nonnull(a);
	for (int i = 0; i < n; i++)
		a[i] = g;
	return a;
}

static uint32_t build_full(int n, uint32_t v)
{
	struct gfs_tbuild *b = builder(T, NULL, 0, 0);

	for (int i = 0; i < n; i++)
		put_row(b, i, 0);
	commit_t(b, v);
	return v;
}

/* ---- tests ------------------------------------------------------------ */

START_TEST(test_empty)
{
	struct gfs_tver_info info;
	struct gfs_titer *it;
	struct gfs_row row;
	struct gfs_tver *tv;
	uint32_t head = 9;
	char op[GFS_ULID_LEN + 1], buf[8];
	size_t n = 5;
	struct gfs_tbuild *b = builder(T, NULL, 0, 0);
	struct gfs_diag d = { { 0 } };

	ck_assert_int_eq(gfs_table_head(g_ts, T, &head), 0);
	ck_assert_uint_eq(head, 0);
	ck_assert_int_eq(gfs_ulid_new(op), 0);
	ck_assert_int_eq(gfs_tbuild_commit(b, 1, op, &d), 0);
	gfs_tbuild_free(b);
	ck_assert_int_eq(gfs_table_head(g_ts, T, &head), 0);
	ck_assert_uint_eq(head, 1);
	ck_assert_int_eq(gfs_table_head(g_ts, "node:Nope", &head), 0);
	ck_assert_uint_eq(head, 0);
	tv = open_t(T, 1);
	gfs_tver_info(tv, &info);
	ck_assert_uint_eq(info.version, 1);
	ck_assert_uint_eq(info.parent, 0);
	ck_assert_uint_eq(info.rows, 0);
	ck_assert_uint_eq(info.export_bytes, 0);
	ck_assert_str_eq(info.op_id, op);
	ck_assert(!info.compensation);
	ck_assert_uint_gt(info.created_ns, 0);
	ck_assert_int_eq(gfs_titer_new(tv, GFS_IX_PRIMARY, NULL, 0, &it), 0);
	ck_assert_int_eq(gfs_titer_next(it, &row), 0);
	gfs_titer_free(it);
	ck_assert_int_eq(gfs_tver_get(tv, "x", 1, &row), 0);
	ck_assert_int_eq(gfs_tver_read_export(tv, 0, buf, sizeof buf, &n), 0);
	ck_assert_uint_eq(n, 0);
	gfs_tver_close(tv);
	verify_ok(T, 1);
	ck_assert_int_eq(gfs_tver_open(g_ts, T, 2, &tv, NULL), -ENOENT);
}
END_TEST

START_TEST(test_put_read)
{
	int n = 1000, *g = gens(n, 0);
	struct gfs_row row;
	struct gfs_tver *tv;
	struct gfs_tbuild *b;

	build_full(n, 1);
	tv = open_t(T, 1);
	check_model(tv, g, n);
	for (int i = 0; i < n; i += 37) {
		get_t(tv, i, &row, 1);
		ck_assert_uint_eq(row.serial, (uint64_t)i + 1);
		ck_assert_uint_eq(row.changed, 1);
		ck_assert_ptr_null(row.src);
		ck_assert_uint_eq(row.data_off, 26);
	}
	get_t(tv, n + 5, &row, 0);
	gfs_row_release(&row);
	verify_ok(T, 1);
	/* ids must increase strictly */
	b = builder(T, tv, 0, 0);
	put_row(b, 5, 1);
	{
		struct gfs_rowput r = { .id = "k0000005", .id_len = 8, .line = "x\n",
					.line_len = 2 };

		ck_assert_int_eq(gfs_tbuild_put(b, &r), -EINVAL);
		ck_assert_int_eq(gfs_tbuild_del(b, "k0000004", 8), -EINVAL);
	}
	gfs_tbuild_free(b);
	gfs_tver_close(tv);
	free(g);
}
END_TEST

START_TEST(test_incremental_small)
{
	int n = 10000, *g = gens(n, 0);
	struct gfs_tver *v1, *v2;
	struct gfs_tbuild *b;
	struct gfs_row row;

	build_full(n, 1);
	v1 = open_t(T, 1);
	b = builder(T, v1, 0, 0);
	for (int i = 0; i < n; i += 1000) {
		put_row(b, i, 1);
		g[i] = 1;
	}
	commit_t(b, 2);
	v2 = open_t(T, 2);
	check_model(v2, g, n);
	for (int i = 0; i < n; i += 250) {
		get_t(v2, i, &row, 1);
		ck_assert_uint_eq(row.serial, (uint64_t)i + 1);
		ck_assert_uint_eq(row.changed, i % 1000 ? 1 : 2);
	}
	gfs_row_release(&row);
	ck_assert_msg(file_size(T, 2) * 10 < file_size(T, 1),
		      "v2 %lld bytes, v1 %lld", (long long)file_size(T, 2),
		      (long long)file_size(T, 1));
	verify_ok(T, 1);
	verify_ok(T, 2);
	gfs_tver_close(v2);
	gfs_tver_close(v1);
	free(g);
}
END_TEST

START_TEST(test_identical_keeps)
{
	int n = 100, *g = gens(n, 0);
	struct gfs_tver *v1, *v2, *v3;
	struct gfs_tbuild *b;
	struct gfs_row row;

	build_full(n, 1);
	v1 = open_t(T, 1);
	b = builder(T, v1, 0, 0);
	for (int i = 10; i < 20; i++)
		put_row(b, i, 0);
	put_row(b, 20, 3);
	g[20] = 3;
	commit_t(b, 2);
	v2 = open_t(T, 2);
	check_model(v2, g, n);
	for (int i = 10; i < 21; i++) {
		get_t(v2, i, &row, 1);
		ck_assert_uint_eq(row.serial, (uint64_t)i + 1);
		ck_assert_uint_eq(row.changed, i == 20 ? 2 : 1);
		ck_assert_uint_eq(row.seg, i == 20 ? 2 : 1);
	}
	/* REPLACE with every row identical: nothing changes. */
	b = builder(T, v2, 0, GFS_TBUILD_REPLACE);
	for (int i = 0; i < n; i++)
		put_row(b, i, g[i]);
	commit_t(b, 3);
	v3 = open_t(T, 3);
	check_model(v3, g, n);
	get_t(v3, 20, &row, 1);
	ck_assert_uint_eq(row.changed, 2);
	get_t(v3, 21, &row, 1);
	ck_assert_uint_eq(row.changed, 1);
	gfs_row_release(&row);
	ck_assert_int_lt(file_size(T, 3), 400); /* header + footer only */
	verify_ok(T, 2);
	verify_ok(T, 3);
	gfs_tver_close(v3);
	gfs_tver_close(v2);
	gfs_tver_close(v1);
	free(g);
}
END_TEST

START_TEST(test_deletes)
{
	int n = 200, *g = gens(n, 0);
	struct gfs_tver *v1, *v2, *v3, *v4;
	struct gfs_tbuild *b;
	struct gfs_row row;
	struct gfs_tver_info info;

	build_full(n, 1);
	v1 = open_t(T, 1);
	b = builder(T, v1, 0, 0);
	for (int i = 0; i < n; i += 2) {
		del_row(b, i);
		g[i] = -1;
	}
	ck_assert_int_eq(gfs_tbuild_del(b, "zzz", 3), 0); /* absent: fine */
	commit_t(b, 2);
	v2 = open_t(T, 2);
	check_model(v2, g, n);
	get_t(v2, 4, &row, 0);
	get_t(v2, 5, &row, 1);
	gfs_row_release(&row);
	verify_ok(T, 2);
	b = builder(T, v2, 0, 0);
	for (int i = 1; i < n; i += 2) {
		del_row(b, i);
		g[i] = -1;
	}
	commit_t(b, 3);
	v3 = open_t(T, 3);
	check_model(v3, g, n);
	verify_ok(T, 3);
	b = builder(T, v3, 0, 0);
	put_row(b, 7, 1);
	commit_t(b, 4);
	v4 = open_t(T, 4);
	get_t(v4, 7, &row, 1);
	ck_assert_uint_eq(row.serial, (uint64_t)n + 1); /* serials never reused */
	gfs_row_release(&row);
	gfs_tver_info(v4, &info);
	ck_assert_uint_eq(info.rows, 1);
	ck_assert_uint_eq(info.parent, 3);
	verify_ok(T, 4);
	gfs_tver_close(v4);
	gfs_tver_close(v3);
	gfs_tver_close(v2);
	gfs_tver_close(v1);
	free(g);
}
END_TEST

START_TEST(test_replace)
{
	int n = 150, *g = gens(n, -1);
	struct gfs_tver *v1, *v2;
	struct gfs_tbuild *b;
	struct gfs_row row;

	build_full(100, 1);
	v1 = open_t(T, 1);
	b = builder(T, v1, 0, GFS_TBUILD_REPLACE);
	for (int i = 50; i < 150; i++) {
		g[i] = i < 60 ? 2 : 0;
		put_row(b, i, g[i]);
	}
	commit_t(b, 2);
	v2 = open_t(T, 2);
	check_model(v2, g, n);
	get_t(v2, 55, &row, 1);
	ck_assert_uint_eq(row.serial, 56);
	ck_assert_uint_eq(row.changed, 2);
	get_t(v2, 70, &row, 1);
	ck_assert_uint_eq(row.serial, 71);
	ck_assert_uint_eq(row.changed, 1);
	get_t(v2, 100, &row, 1);
	ck_assert_uint_eq(row.serial, 101);
	ck_assert_uint_eq(row.changed, 2);
	get_t(v2, 10, &row, 0);
	gfs_row_release(&row);
	verify_ok(T, 2);
	gfs_tver_close(v2);
	gfs_tver_close(v1);
	free(g);
}
END_TEST

START_TEST(test_read_export_random)
{
	int n = 3000, *g = gens(n, 0);
	struct gfs_tver *v1, *v2;
	struct gfs_tbuild *b;
	struct gfs_buf want;
	char *buf = malloc(9000);
	unsigned seed = 42;

	build_full(n, 1);
	v1 = open_t(T, 1);
	b = builder(T, v1, 0, 0);
	for (int i = 0; i < n; i += 17) {
		if (i % 2) {
			del_row(b, i);
			g[i] = -1;
		} else {
			put_row(b, i, 5);
			g[i] = 5;
		}
	}
	commit_t(b, 2);
	v2 = open_t(T, 2);
	expect_export(g, n, &want);
	for (int k = 0; k < 500; k++) {
		uint64_t off = (uint64_t)rand_r(&seed) % (want.len + 1);
		size_t len = (size_t)rand_r(&seed) % 9000, got;
		size_t exp = want.len - off < len ? want.len - off : len;

		ck_assert_int_eq(gfs_tver_read_export(v2, off, buf, len, &got), 0);
		ck_assert_uint_eq(got, exp);
		ck_assert(memcmp(buf, want.p + off, exp) == 0);
	}
	for (int i = 0; i < n; i += 101) {
		char id[16];
		uint64_t off = 0;
		int found;

		id_of(id, sizeof id, i);
		found = gfs_tver_export_offset(v2, id, strlen(id), &off);
		ck_assert_int_eq(found, g[i] >= 0);
		if (found) {
			char line[160];
			int len = line_of(line, sizeof line, i, g[i]);

			ck_assert(memcmp(want.p + off, line, (size_t)len) == 0);
		}
	}
	gfs_buf_release(&want);
	gfs_tver_close(v2);
	gfs_tver_close(v1);
	free(buf);
	free(g);
}
END_TEST

/* Random batches over many versions, each checked against a model and
 * verified: splits, path copies, emptied pages and regrowth. */
START_TEST(test_random_versions)
{
	int n = 4000, *g = gens(n, -1), *prev = gens(n, -1);
	unsigned seed = 7;
	struct gfs_tver *parent = NULL;

	for (uint32_t v = 1; v <= 25; v++) {
		bool replace = v % 6 == 0;
		struct gfs_tbuild *b = builder(T, parent, 0,
					       replace ? GFS_TBUILD_REPLACE : 0);
		int span = (int)(rand_r(&seed) % (unsigned)n) + 1;
		int lo = (int)(rand_r(&seed) % (unsigned)(n - span + 1));
		int dens = (int)(rand_r(&seed) % 4); /* 0 dense .. 3 sparse */

		memcpy(prev, g, (size_t)n * sizeof *g);
		for (int i = 0; i < n; i++) {
			bool touch = i >= lo && i < lo + span &&
				     rand_r(&seed) % (1u << (2 * dens)) == 0;
			int r = (int)(rand_r(&seed) % 3);

			if (replace && !touch && g[i] >= 0) {
				put_row(b, i, g[i]); /* kept as is */
				continue;
			}
			if (replace && !touch)
				continue;
			if (!touch)
				continue;
			if (r == 0) {
				del_row(b, i);
				g[i] = -1;
			} else {
				g[i] = r == 1 && g[i] >= 0 ? g[i] : (int)v;
				put_row(b, i, g[i]);
			}
		}
		commit_t(b, v);
		gfs_tver_close(parent);
		parent = open_t(T, v);
		check_model(parent, g, n);
		verify_ok(T, v);
	}
	gfs_tver_close(parent);
	free(prev);
	free(g);
}
END_TEST

/* ---- edges ------------------------------------------------------------ */

struct edge {
	const char *id, *src, *dst;
	size_t src_len, dst_len;
};

static void put_edge(struct gfs_tbuild *b, const struct edge *e, int gen)
{
	char line[200];
	int n = snprintf(line, sizeof line, "{\"edge\":\"Knows\",\"id\":\"%s\",\"g\":%d}\n",
			 e->id, gen);
	struct gfs_rowput r = { 0 };

	r.id = e->id;
	r.id_len = strlen(e->id);
	r.src = e->src;
	r.src_len = e->src_len;
	r.dst = e->dst;
	r.dst_len = e->dst_len;
	r.line = line;
	r.line_len = (size_t)n;
	ck_assert_int_eq(gfs_tbuild_put(b, &r), 0);
}

static const struct edge g_edges[] = {
	{ "e1", "a", "b", 1, 1 },
	{ "e2", "a", "b", 1, 1 },
	{ "e3", "a", "c", 1, 1 },
	{ "e4", "b", "a", 1, 1 },
	{ "e5", "a\0", "b", 2, 1 },
	{ "e6", "", "a", 0, 1 },
};

static void expect_seq(struct gfs_titer *it, const char *const *ids, int n)
{
	struct gfs_row row;

	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(gfs_titer_next(it, &row), 1);
		ck_assert_msg(row.id_len == strlen(ids[i]) &&
				      !memcmp(row.id, ids[i], row.id_len),
			      "entry %d: got %.*s want %s", i, (int)row.id_len,
			      row.id, ids[i]);
	}
	gfs_titer_free(it);
}

static uint32_t flags_of(struct gfs_tver *tv, const char *id)
{
	struct gfs_row row;
	uint32_t f;

	ck_assert_int_eq(gfs_tver_get(tv, id, strlen(id), &row), 1);
	f = row.flags;
	gfs_row_release(&row);
	return f;
}

START_TEST(test_edges)
{
	static const char *const from_a[] = { "e1", "e2", "e3", "e5", "e4" };
	static const char *const all_src[] = { "e6", "e1", "e2", "e3", "e5", "e4" };
	static const char *const to_b[] = { "e1", "e2", "e5", "e3" };
	struct gfs_tver *v1, *v2, *v3;
	struct gfs_tbuild *b;
	struct gfs_titer *it;
	struct gfs_row row;
	const struct edge e7 = { "e7", "a", "b", 1, 1 };
	const struct edge e8 = { "e8", "a", "b", 1, 1 };

	b = builder(E, NULL, 0, 0);
	for (size_t i = 0; i < GFS_ARRAY_SIZE(g_edges); i++)
		put_edge(b, &g_edges[i], 0);
	commit_t(b, 1);
	v1 = open_t(E, 1);
	ck_assert_int_eq(gfs_titer_new(v1, GFS_IX_SRC, "a", 1, &it), 0);
	expect_seq(it, from_a, 5);
	ck_assert_int_eq(gfs_titer_new(v1, GFS_IX_SRC, NULL, 0, &it), 0);
	expect_seq(it, all_src, 6);
	ck_assert_int_eq(gfs_titer_new(v1, GFS_IX_DST, "b", 1, &it), 0);
	expect_seq(it, to_b, 4);
	ck_assert_int_eq(gfs_titer_new_pair(v1, GFS_IX_SRC, "a", 1, "c", 1, &it), 0);
	expect_seq(it, from_a + 2, 1);
	ck_assert_int_eq(gfs_tver_get(v1, "e5", 2, &row), 1);
	ck_assert_uint_eq(row.src_len, 2);
	ck_assert(!memcmp(row.src, "a\0", 2));
	ck_assert_int_eq(gfs_tver_get(v1, "e6", 2, &row), 1);
	ck_assert_ptr_nonnull(row.src); /* an edge with an empty source id */
	ck_assert_uint_eq(row.src_len, 0);
	gfs_row_release(&row);
	ck_assert_uint_eq(flags_of(v1, "e1"), GFS_ROW_PAIR_FIRST);
	ck_assert_uint_eq(flags_of(v1, "e2"), 0);
	ck_assert_uint_eq(flags_of(v1, "e3"), GFS_ROW_PAIR_FIRST);
	ck_assert_uint_eq(flags_of(v1, "e4"), GFS_ROW_PAIR_FIRST);
	ck_assert_uint_eq(flags_of(v1, "e5"), GFS_ROW_PAIR_FIRST);
	ck_assert_uint_eq(flags_of(v1, "e6"), GFS_ROW_PAIR_FIRST);
	verify_ok(E, 1);

	/* v2: e1 changes (keeps its flag), e7 joins an existing pair. */
	b = builder(E, v1, 0, 0);
	put_edge(b, &g_edges[0], 1);
	put_edge(b, &e7, 0);
	commit_t(b, 2);
	v2 = open_t(E, 2);
	ck_assert_uint_eq(flags_of(v2, "e1"), GFS_ROW_PAIR_FIRST);
	ck_assert_uint_eq(flags_of(v2, "e7"), 0);
	ck_assert_int_eq(gfs_titer_new_pair(v2, GFS_IX_SRC, "a", 1, "b", 1, &it), 0);
	{
		static const char *const ab[] = { "e1", "e2", "e7" };

		expect_seq(it, ab, 3);
	}
	verify_ok(E, 2);

	/* v3: every a->b edge goes, e8 comes: it is the pair's first again. */
	b = builder(E, v2, 0, 0);
	ck_assert_int_eq(gfs_tbuild_del(b, "e1", 2), 0);
	ck_assert_int_eq(gfs_tbuild_del(b, "e2", 2), 0);
	ck_assert_int_eq(gfs_tbuild_del(b, "e7", 2), 0);
	put_edge(b, &e8, 0);
	commit_t(b, 3);
	v3 = open_t(E, 3);
	ck_assert_uint_eq(flags_of(v3, "e8"), GFS_ROW_PAIR_FIRST);
	ck_assert_int_eq(gfs_titer_new(v3, GFS_IX_DST, "b", 1, &it), 0);
	{
		static const char *const tb[] = { "e8", "e5", "e3" };

		expect_seq(it, tb, 3);
	}
	verify_ok(E, 3);
	gfs_tver_close(v3);
	gfs_tver_close(v2);
	gfs_tver_close(v1);
}
END_TEST

/* ---- unique indexes ---------------------------------------------------- */

static void put_uk(struct gfs_tbuild *b, int i, int gen, const char *key)
{
	char id[16], line[160];
	struct gfs_buf uk = { (char *)key, strlen(key), 0 };
	int n = line_of(line, sizeof line, i, gen);
	struct gfs_rowput r = { 0 };

	id_of(id, sizeof id, i);
	r.id = id;
	r.id_len = strlen(id);
	r.line = line;
	r.line_len = (size_t)n;
	r.ukeys = &uk;
	r.n_ukeys = 1;
	ck_assert_int_eq(gfs_tbuild_put(b, &r), 0);
}

static void uk_is(struct gfs_tver *tv, const char *key, int want_row)
{
	struct gfs_row row;
	int rc = gfs_tver_get_unique(tv, 0, key, strlen(key), &row);
	char id[16];

	ck_assert_int_eq(rc, want_row >= 0);
	if (want_row < 0)
		return;
	id_of(id, sizeof id, want_row);
	ck_assert(row.id_len == strlen(id) && !memcmp(row.id, id, row.id_len));
	gfs_row_release(&row);
}

START_TEST(test_unique)
{
	struct gfs_tver *v1, *v2, *v3;
	struct gfs_tbuild *b;
	struct gfs_titer *it;
	struct gfs_row row;
	struct gfs_diag d = { { 0 } };
	char key[32], op[GFS_ULID_LEN + 1], prev[32] = "";
	const char *k;
	size_t kl;
	int rc, count = 0;

	b = builder(T, NULL, 1, 0);
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof key, "mail-%d", i);
		put_uk(b, i, 0, i == 3 ? "" : key); /* empty: not indexed */
	}
	commit_t(b, 1);
	v1 = open_t(T, 1);
	uk_is(v1, "mail-7", 7);
	uk_is(v1, "mail-3", -1);
	uk_is(v1, "", -1);
	ck_assert_int_eq(gfs_titer_new(v1, GFS_IX_UNIQUE0, NULL, 0, &it), 0);
	while ((rc = gfs_titer_next(it, &row)) == 1) {
		gfs_titer_key(it, &k, &kl);
		ck_assert_int_lt(kl, sizeof prev);
		ck_assert_int_lt(strncmp(prev, k, kl), 1);
		memcpy(prev, k, kl);
		prev[kl] = '\0';
		ck_assert_int_eq(strncmp(k, "mail-", 5), 0);
		ck_assert_int_eq(atoi(k + 5), atoi(row.id + 1));
		count++;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(count, 49);
	gfs_titer_free(it);
	verify_ok(T, 1);

	b = builder(T, v1, 1, 0);
	put_uk(b, 7, 1, "new-7");
	del_row(b, 8);
	commit_t(b, 2);
	v2 = open_t(T, 2);
	uk_is(v2, "mail-7", -1);
	uk_is(v2, "new-7", 7);
	uk_is(v2, "mail-8", -1);
	uk_is(v2, "mail-9", 9);
	verify_ok(T, 2);

	/* v3 REPLACE: rows 9 and 10 swap keys; only rows 9..12 survive. */
	b = builder(T, v2, 1, GFS_TBUILD_REPLACE);
	put_uk(b, 9, 0, "mail-10");
	put_uk(b, 10, 0, "mail-9");
	put_uk(b, 11, 0, "mail-11");
	put_uk(b, 12, 0, "mail-12");
	commit_t(b, 3);
	v3 = open_t(T, 3);
	uk_is(v3, "mail-10", 9);
	uk_is(v3, "mail-9", 10);
	uk_is(v3, "mail-11", 11);
	uk_is(v3, "new-7", -1);
	uk_is(v3, "mail-20", -1);
	verify_ok(T, 3);

	/* Two rows with one key in one batch: refused. */
	b = builder(T, v3, 1, 0);
	put_uk(b, 13, 0, "dup");
	put_uk(b, 14, 0, "dup");
	ck_assert_int_eq(gfs_ulid_new(op), 0);
	ck_assert_int_eq(gfs_tbuild_commit(b, 4, op, &d), GFS_ECONFLICT);
	ck_assert_ptr_nonnull(strstr(d.msg, "dup"));
	gfs_tbuild_free(b);
	gfs_tver_close(v3);
	gfs_tver_close(v2);
	gfs_tver_close(v1);
}
END_TEST

START_TEST(test_compensation)
{
	int n = 100, *g1 = gens(n, 0);
	struct gfs_tver *v1, *v2, *v3;
	struct gfs_tver_info i1, i2, i3;
	struct gfs_tbuild *b;
	struct gfs_diag d = { { 0 } };
	char op[GFS_ULID_LEN + 1];

	build_full(n, 1);
	v1 = open_t(T, 1);
	b = builder(T, v1, 0, 0);
	for (int i = 0; i < 10; i++)
		put_row(b, n + i, 0);
	put_row(b, n + 10, 0);
	commit_t(b, 2);
	ck_assert_int_eq(gfs_ulid_new(op), 0);
	ck_assert_int_eq(gfs_table_write_compensation(g_ts, T, 3, 1, op, &d), 0);
	v2 = open_t(T, 2);
	v3 = open_t(T, 3);
	gfs_tver_info(v1, &i1);
	gfs_tver_info(v2, &i2);
	gfs_tver_info(v3, &i3);
	ck_assert(i3.compensation);
	ck_assert_uint_eq(i3.content_of, 1);
	ck_assert_uint_eq(i3.parent, 2);
	ck_assert_str_eq(i3.op_id, op);
	ck_assert_uint_eq(i3.rows, i1.rows);
	ck_assert_uint_eq(i3.export_bytes, i1.export_bytes);
	ck_assert_uint_ge(i3.next_serial, i2.next_serial);
	check_model(v3, g1, n);
	ck_assert_int_lt(file_size(T, 3), 400);
	verify_ok(T, 3);
	ck_assert_int_eq(gfs_table_write_compensation(g_ts, T, 3, 1, op, &d), -EEXIST);
	/* content_of 0: the table had no version before the operation. */
	ck_assert_int_eq(gfs_table_write_compensation(g_ts, T, 4, 0, op, &d), 0);
	gfs_tver_close(v3);
	v3 = open_t(T, 4);
	gfs_tver_info(v3, &i3);
	ck_assert_uint_eq(i3.rows, 0);
	gfs_tver_close(v3);
	verify_ok(T, 4);
	gfs_tver_close(v2);
	gfs_tver_close(v1);
	free(g1);
}
END_TEST

static int count_tmp(const char *t)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof path, "%s/tables/%s", g_dir, t);
	dir = opendir(path);
	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir)))
		n += !strncmp(de->d_name, ".tmp-", 5);
	closedir(dir);
	return n;
}

START_TEST(test_link_eexist)
{
	struct gfs_tbuild *b;
	struct gfs_diag d = { { 0 } };
	char op[GFS_ULID_LEN + 1];
	uint32_t head;

	build_full(10, 1);
	b = builder(T, NULL, 0, 0);
	put_row(b, 1, 9);
	ck_assert_int_eq(count_tmp(T), 1);
	ck_assert_int_eq(gfs_ulid_new(op), 0);
	ck_assert_int_eq(gfs_tbuild_commit(b, 1, op, &d), -EEXIST);
	ck_assert_ptr_nonnull(strstr(d.msg, "already exists"));
	ck_assert_int_eq(gfs_tbuild_commit(b, 2, op, &d), -EINVAL); /* once */
	gfs_tbuild_free(b);
	ck_assert_int_eq(count_tmp(T), 0);
	ck_assert_int_eq(gfs_table_head(g_ts, T, &head), 0);
	ck_assert_uint_eq(head, 1);
	verify_ok(T, 1);
	/* a builder freed without commit leaves nothing */
	b = builder(T, NULL, 0, 0);
	put_row(b, 1, 0);
	gfs_tbuild_free(b);
	ck_assert_int_eq(count_tmp(T), 0);
	/* bad op id */
	b = builder(T, NULL, 0, 0);
	ck_assert_int_eq(gfs_tbuild_commit(b, 2, "nope", &d), -EINVAL);
	gfs_tbuild_free(b);
}
END_TEST

/* ---- corruption ------------------------------------------------------- */

static void flip(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x55;
	ck_assert_int_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* Reads everything readable; any result but a crash is acceptable. */
static void read_all_quietly(const char *t, uint32_t v)
{
	struct gfs_tver *tv;
	struct gfs_titer *it;
	struct gfs_row row;
	char buf[4096];
	size_t n;

	if (gfs_tver_open(g_ts, t, v, &tv, NULL))
		return;
	for (int ix = 0; ix < 3; ix++) {
		if (gfs_titer_new(tv, ix, NULL, 0, &it))
			continue;
		for (int k = 0; k < 100000 && gfs_titer_next(it, &row) == 1; k++)
			(void)gfs_tver_read_row(tv, &row, 0, buf, sizeof buf, &n);
		gfs_titer_free(it);
	}
	for (uint64_t off = 0; off < 40000; off += 3000)
		(void)gfs_tver_read_export(tv, off, buf, sizeof buf, &n);
	if (gfs_tver_get(tv, "k0000003", 8, &row) == 1)
		gfs_row_release(&row);
	gfs_tver_close(tv);
}

static void flip_all(const char *t, uint32_t v, int stride)
{
	char path[PATH_MAX];
	off_t size = file_size(t, v);

	snprintf(path, sizeof path, "%s/tables/%s/%u", g_dir, t, v);
	for (off_t off = 0; off < size; off += stride) {
		struct gfs_diag d = { { 0 } };
		int rc;

		flip(path, off);
		rc = gfs_tver_verify(g_ts, t, v, &d);
		ck_assert_msg(rc == GFS_ECORRUPT, "flip at %lld of %lld: verify %d",
			      (long long)off, (long long)size, rc);
		ck_assert_ptr_nonnull(strstr(d.msg, t));
		read_all_quietly(t, v);
		flip(path, off);
	}
	verify_ok(t, v);
}

/* The store of the flip tests: edge table E version 1 (60 rows), table T
 * version 1 (300 rows) and version 2 (an incremental one on top).  Each
 * flip test walks one file, so each has a timeout of its own (issue 12: one
 * test walking all three timed out on a busy machine). */
static void corrupt_setup(void)
{
	struct gfs_tver *v1;
	struct gfs_tbuild *b;

	b = builder(E, NULL, 1, 0);
	for (int i = 0; i < 60; i++) {
		char id[16], src[8], dst[8], line[64];
		struct gfs_buf uk = { id, 0, 0 };
		struct gfs_rowput r = { 0 };

		id_of(id, sizeof id, i);
		snprintf(src, sizeof src, "n%d", i % 7);
		snprintf(dst, sizeof dst, "n%d", i % 5);
		r.id = id;
		r.id_len = strlen(id);
		r.src = src;
		r.src_len = strlen(src);
		r.dst = dst;
		r.dst_len = strlen(dst);
		r.line_len = (size_t)snprintf(line, sizeof line, "{\"edge\":\"K\",\"i\":%d}\n", i);
		r.line = line;
		uk.len = r.id_len;
		r.ukeys = &uk;
		r.n_ukeys = 1;
		ck_assert_int_eq(gfs_tbuild_put(b, &r), 0);
	}
	commit_t(b, 1);
	build_full(300, 1);
	v1 = open_t(T, 1);
	b = builder(T, v1, 0, 0);
	put_row(b, 5, 1);
	del_row(b, 100);
	put_row(b, 400, 0);
	commit_t(b, 2);
	gfs_tver_close(v1);
}

START_TEST(test_corrupt_flip_edges)
{
	corrupt_setup();
	flip_all(E, 1, 1);
}
END_TEST

START_TEST(test_corrupt_flip_incremental)
{
	corrupt_setup();
	flip_all(T, 2, 1);
}
END_TEST

START_TEST(test_corrupt_flip_full)
{
	corrupt_setup();
	flip_all(T, 1, 11);
}
END_TEST

/* Issue 8: a flipped bit in a line is never served.  Every read of the
 * export (sequential through a cursor in pieces of several sizes, and at
 * offsets of its own) and of a row either fails GFS_ECORRUPT or returns
 * exactly the original bytes, and the reads that cover the flipped line
 * fail. */
static void reads_never_wrong(struct gfs_tver *tv, const struct gfs_buf *want,
			      int *failed)
{
	static const size_t piece[] = { 1, 7, 100, 333, 4096, 70000 };
	char *buf = malloc(70000);

	ck_assert_ptr_nonnull(buf);
	for (size_t p = 0; p < GFS_ARRAY_SIZE(piece); p++) {
		struct gfs_tcursor *c;
		uint64_t off = 0;

		ck_assert_int_eq(gfs_tcursor_new(tv, &c), 0);
		while (off < want->len) {
			size_t n = 0;
			int rc = gfs_tcursor_read(c, off, buf, piece[p], &n);

			if (rc) {
				ck_assert_int_eq(rc, GFS_ECORRUPT);
				ck_assert_ptr_nonnull(strstr(gfs_corrupt_last(), "line checksum mismatch"));
				(*failed)++;
				off += piece[p]; /* skip on, as a reader would */
				continue;
			}
			ck_assert_uint_gt(n, 0);
			ck_assert_msg(memcmp(buf, want->p + off, n) == 0,
				      "wrong bytes served at %llu (piece %zu)",
				      (unsigned long long)off, piece[p]);
			off += n;
		}
		gfs_tcursor_free(c);
	}
	free(buf);
}

START_TEST(test_line_flip_never_served)
{
	struct gfs_buf want;
	struct gfs_tver *tv;
	char path[PATH_MAX];
	int *g = gens(300, 0);
	uint64_t lines_end;

	build_full(300, 1);
	gfs_buf_init(&want);
	expect_export(g, 300, &want);
	tv = open_t(T, 1);
	lines_end = tv->lines_end;
	snprintf(path, sizeof path, "%s/tables/%s/1", g_dir, T);
	for (uint64_t off = 128; off < lines_end; off += 997) {
		int failed = 0, row_failed = 0;

		flip(path, (off_t)off);
		reads_never_wrong(tv, &want, &failed);
		ck_assert_msg(failed > 0, "flip at %llu never reported",
			      (unsigned long long)off);
		/* rows: whole and partial reads */
		for (int i = 0; i < 300; i++) {
			struct gfs_row row;
			char buf[256], line[256];
			size_t n;
			int len = line_of(line, sizeof line, i, 0);

			get_t(tv, i, &row, 1);
			for (uint64_t o = 0; o < 3; o++) {
				int rc = gfs_tver_read_row(tv, &row, o * 5, buf,
							   o == 1 ? 4 : sizeof buf, &n);
				if (rc) {
					ck_assert_int_eq(rc, GFS_ECORRUPT);
					row_failed++;
				} else {
					ck_assert(memcmp(buf, line + o * 5, n) == 0);
					ck_assert_uint_le(o * 5 + n, (size_t)len);
				}
			}
			gfs_row_release(&row);
		}
		ck_assert_int_eq(row_failed, 3); /* one row, three reads */
		flip(path, (off_t)off);
	}
	gfs_tver_close(tv);
	gfs_buf_release(&want);
	free(g);
}
END_TEST

START_TEST(test_truncated)
{
	char path[PATH_MAX];
	off_t size;
	const off_t cuts[] = { 0, 10, 127, 128, 200, -1, -2, -24, -100 };

	build_full(100, 1);
	size = file_size(T, 1);
	snprintf(path, sizeof path, "%s/tables/%s/1", g_dir, T);
	for (size_t i = 0; i < GFS_ARRAY_SIZE(cuts); i++) {
		off_t to = cuts[i] < 0 ? size + cuts[i] : cuts[i];
		char cmd[2 * PATH_MAX + 64];
		struct gfs_tver *tv = NULL;
		struct gfs_diag d = { { 0 } };

		snprintf(cmd, sizeof cmd, "cp '%s' '%s.bak'", path, path);
		ck_assert_int_eq(system(cmd), 0);
		ck_assert_int_eq(truncate(path, to), 0);
		ck_assert_int_eq(gfs_tver_open(g_ts, T, 1, &tv, &d), GFS_ECORRUPT);
		ck_assert_ptr_null(tv);
		ck_assert_ptr_nonnull(strstr(d.msg, "tables/node:Person/1"));
		ck_assert_int_eq(gfs_tver_verify(g_ts, T, 1, NULL), GFS_ECORRUPT);
		snprintf(cmd, sizeof cmd, "mv '%s.bak' '%s'", path, path);
		ck_assert_int_eq(system(cmd), 0);
	}
	verify_ok(T, 1);
}
END_TEST

START_TEST(test_big_build)
{
	int n = 200000;
	struct timespec t0, t1;
	struct gfs_tver *v1, *v2;
	struct gfs_tver_info info;
	struct gfs_tbuild *b;
	struct gfs_row row;
	double secs;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	build_full(n, 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* O(n) builds: minutes would mean a quadratic path, not a busy machine. */
	ck_assert_msg(secs < tu_scaled(30), "200k rows took %.1f s (bound %.0f s, GRAPHFS_TEST_TIMEOUT_FACTOR)",
		      secs, tu_scaled(30));
	v1 = open_t(T, 1);
	gfs_tver_info(v1, &info);
	ck_assert_uint_eq(info.rows, (uint64_t)n);
	for (int i = 0; i < n; i += 9973) {
		get_t(v1, i, &row, 1);
		ck_assert_uint_eq(row.serial, (uint64_t)i + 1);
	}
	b = builder(T, v1, 0, 0);
	for (int i = 0; i < n; i += 2000)
		put_row(b, i, 1);
	commit_t(b, 2);
	ck_assert_int_lt(file_size(T, 2) * 20, file_size(T, 1));
	v2 = open_t(T, 2);
	get_t(v2, 2000, &row, 1);
	ck_assert_uint_eq(row.changed, 2);
	gfs_row_release(&row);
	verify_ok(T, 1);
	verify_ok(T, 2);
	gfs_tver_close(v2);
	gfs_tver_close(v1);
}
END_TEST

struct thr {
	struct gfs_tver *tv;
	int n, bad;
};

static void *reader(void *arg)
{
	struct thr *t = arg;
	struct gfs_row row;
	char id[16];

	for (int k = 0; k < 2000; k++) {
		int i = (k * 7919) % t->n;

		id_of(id, sizeof id, i);
		if (gfs_tver_get(t->tv, id, strlen(id), &row) != 1 ||
		    row.serial != (uint64_t)i + 1)
			t->bad++;
	}
	gfs_row_release(&row);
	return NULL;
}

START_TEST(test_threads)
{
	int n = 5000;
	struct gfs_tver *v1, *v2;
	struct gfs_tbuild *b;
	pthread_t th[4];
	struct thr t[4];

	build_full(n, 1);
	v1 = open_t(T, 1);
	b = builder(T, v1, 0, 0);
	for (int i = 0; i < n; i += 3)
		put_row(b, i, 1);
	commit_t(b, 2);
	v2 = open_t(T, 2);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){ v2, n, 0 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(t[i].bad, 0);
	}
	gfs_tver_close(v2);
	gfs_tver_close(v1);
}
END_TEST

/* ---- the read path: many segments, the cursor, the page cache ---------- */

#define MV_ROWS 3000
#define MV_VERSIONS 45

/* A table of MV_VERSIONS versions, each changing, deleting or adding a
 * scattered few rows, so the last one reads from every segment.  Returns
 * the model of the last (free it). */
static int *many_versions(void)
{
	int *g = gens(MV_ROWS, -1);
	struct gfs_tbuild *b = builder(T, NULL, 0, 0);

	for (int i = 0; i < MV_ROWS; i += 2) {
		put_row(b, i, 0);
		g[i] = 0;
	}
	commit_t(b, 1);
	for (uint32_t v = 2; v <= MV_VERSIONS; v++) {
		struct gfs_tver *p = open_t(T, v - 1);

		b = builder(T, p, 0, 0);
		for (int i = (int)v % 61; i < MV_ROWS; i += 61) {
			if (i % 5 == 0 && g[i] >= 0) {
				del_row(b, i);
				g[i] = -1;
			} else {
				put_row(b, i, (int)v);
				g[i] = (int)v;
			}
		}
		commit_t(b, v);
		gfs_tver_close(p);
	}
	return g;
}

/* The export as row-by-row reads of the primary index. */
static void rows_export(struct gfs_tver *tv, struct gfs_buf *out)
{
	struct gfs_titer *it;
	struct gfs_row row;
	char buf[200];
	size_t n;
	int rc;

	gfs_buf_init(out);
	ck_assert_int_eq(gfs_titer_new(tv, GFS_IX_PRIMARY, NULL, 0, &it), 0);
	while ((rc = gfs_titer_next(it, &row)) == 1) {
		ck_assert_int_eq(gfs_tver_read_row(tv, &row, 0, buf, sizeof buf, &n), 0);
		ck_assert_uint_eq(n, row.line_len);
		ck_assert_int_eq(gfs_buf_append(out, buf, n), 0);
	}
	ck_assert_int_eq(rc, 0);
	gfs_titer_free(it);
}

/* Reads the whole export through one cursor in reads of len bytes. */
static void cursor_all(struct gfs_tver *tv, size_t len, struct gfs_buf *out)
{
	struct gfs_tcursor *c;
	char *buf = malloc(len);
	uint64_t off = 0;
	size_t n;

	ck_assert_ptr_nonnull(buf);
	gfs_buf_init(out);
	ck_assert_int_eq(gfs_tcursor_new(tv, &c), 0);
	do {
		ck_assert_int_eq(gfs_tcursor_read(c, off, buf, len, &n), 0);
		ck_assert_int_eq(gfs_buf_append(out, buf, n), 0);
		off += n;
	} while (n == len);
	gfs_tcursor_free(c);
	free(buf);
}

static void buf_eq(const struct gfs_buf *a, const struct gfs_buf *b)
{
	ck_assert_uint_eq(a->len, b->len);
	ck_assert(!a->len || memcmp(a->p, b->p, a->len) == 0);
}

START_TEST(test_cursor_many_versions)
{
	int *g = many_versions();
	const size_t lens[] = { 1, 7, 100, 4096, 131072, 1 << 20 };
	struct gfs_tstore_stats st;
	struct gfs_buf want, rows, got;
	struct gfs_tver *tv;

	for (uint32_t v = 1; v <= MV_VERSIONS; v += 11)
		verify_ok(T, v);
	tv = open_t(T, MV_VERSIONS);
	expect_export(g, MV_ROWS, &want);
	rows_export(tv, &rows);
	buf_eq(&rows, &want);
	for (size_t k = 0; k < GFS_ARRAY_SIZE(lens); k++) {
		cursor_all(tv, lens[k], &got);
		buf_eq(&got, &want);
		gfs_buf_release(&got);
	}
	/* Every segment through the version's own fds, none shared. */
	gfs_tstore_stats(g_ts, &st);
	ck_assert_uint_eq(st.fd_fallbacks, 0);
	ck_assert_uint_ge(st.fds_held, MV_VERSIONS - 1);
	ck_assert_uint_gt(st.page_hits, 0);
	gfs_tver_close(tv);
	gfs_tstore_stats(g_ts, &st);
	ck_assert_uint_eq(st.fds_held, 0);
	tv = open_t(T, MV_VERSIONS);
	check_model(tv, g, MV_ROWS);
	gfs_tver_close(tv);
	gfs_buf_release(&rows);
	gfs_buf_release(&want);
	free(g);
}
END_TEST

/* Cursor reads at random offsets (seeks) and runs of small sequential
 * reads (continuations) against the model. */
START_TEST(test_cursor_random)
{
	int *g = many_versions();
	struct gfs_tver *tv = open_t(T, MV_VERSIONS);
	struct gfs_tcursor *c;
	struct gfs_buf want;
	char buf[3000];
	unsigned seed = 7;
	size_t n;

	expect_export(g, MV_ROWS, &want);
	ck_assert_int_eq(gfs_tcursor_new(tv, &c), 0);
	for (int k = 0; k < 300; k++) {
		uint64_t off = (uint64_t)rand_r(&seed) % (want.len + 2);
		int steps = rand_r(&seed) % 20;

		for (int s = 0; s <= steps; s++) {
			size_t len = (size_t)rand_r(&seed) % 300;
			size_t exp = off >= want.len ? 0
				   : want.len - off < len ? want.len - off : len;

			ck_assert_int_eq(gfs_tcursor_read(c, off, buf, len, &n), 0);
			ck_assert_uint_eq(n, exp);
			ck_assert(!n || memcmp(buf, want.p + off, n) == 0);
			off += n;
		}
	}
	/* Backwards: each read a seek. */
	for (uint64_t off = want.len; off > 0;) {
		size_t len = off < 777 ? (size_t)off : 777;

		off -= len;
		ck_assert_int_eq(gfs_tcursor_read(c, off, buf, len, &n), 0);
		ck_assert_uint_eq(n, len);
		ck_assert(memcmp(buf, want.p + off, n) == 0);
	}
	gfs_tcursor_free(c);
	gfs_tcursor_free(NULL);
	gfs_buf_release(&want);
	gfs_tver_close(tv);
	free(g);
}
END_TEST

/* Budgets of one byte (every unused page evicted at once) and of zero (no
 * cache) still read right, through every path that loads pages. */
START_TEST(test_page_cache_pressure)
{
	int *g = many_versions();
	const size_t budgets[] = { 1, 0, 64 << 10, GFS_TSTORE_PAGE_CACHE_DEFAULT };
	struct gfs_tstore_stats st;

	for (size_t k = 0; k < GFS_ARRAY_SIZE(budgets); k++) {
		struct gfs_tver *tv;
		struct gfs_buf want, got;

		gfs_tstore_set_page_cache(g_ts, budgets[k]);
		tv = open_t(T, MV_VERSIONS);
		check_model(tv, g, MV_ROWS);
		expect_export(g, MV_ROWS, &want);
		cursor_all(tv, 1000, &got);
		buf_eq(&got, &want);
		gfs_buf_release(&got);
		gfs_buf_release(&want);
		gfs_tstore_stats(g_ts, &st);
		ck_assert_uint_le(st.page_bytes, budgets[k]);
		gfs_tver_close(tv);
	}
	gfs_tstore_stats(g_ts, &st);
	ck_assert_uint_gt(st.page_evictions, 0);
	ck_assert_uint_gt(st.page_misses, 0);
	free(g);
}
END_TEST

struct creader {
	struct gfs_tver *tv;
	const struct gfs_buf *want;
	const int *g;
	unsigned seed;
	int bad;
};

static void *cursor_reader(void *arg)
{
	struct creader *r = arg;
	struct gfs_tcursor *c;
	struct gfs_row row = { 0 };
	char buf[5000], id[16];
	size_t n;

	if (gfs_tcursor_new(r->tv, &c))
		return NULL;
	for (int k = 0; k < 400; k++) {
		uint64_t off = (uint64_t)rand_r(&r->seed) % r->want->len;
		int i = rand_r(&r->seed) % MV_ROWS;

		for (int s = 0; s < 4; s++) {
			if (gfs_tcursor_read(c, off, buf, sizeof buf, &n) ||
			    (n && memcmp(buf, r->want->p + off, n)))
				r->bad++;
			off += n;
		}
		id_of(id, sizeof id, i);
		if (gfs_tver_get(r->tv, id, strlen(id), &row) != (r->g[i] >= 0))
			r->bad++;
	}
	gfs_row_release(&row);
	gfs_tcursor_free(c);
	return NULL;
}

/* Four threads share one version (its lazy fds, the page cache under a
 * small budget so pages are evicted while others read them). */
START_TEST(test_cursor_threads)
{
	int *g = many_versions();
	struct gfs_tver *tv;
	struct gfs_buf want;
	struct creader r[4];
	pthread_t th[4];

	gfs_tstore_set_page_cache(g_ts, 32 << 10);
	tv = open_t(T, MV_VERSIONS);
	expect_export(g, MV_ROWS, &want);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct creader){ tv, &want, g, (unsigned)i + 1, 0 };
		ck_assert_int_eq(pthread_create(&th[i], NULL, cursor_reader, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(r[i].bad, 0);
	}
	gfs_buf_release(&want);
	gfs_tver_close(tv);
	free(g);
}
END_TEST

/* Reads the whole export through a cursor after lowering the fd limit to
 * limit (0: unchanged); 0 if it reads right, else which step failed. */
static int fd_starved_read(struct gfs_tver *tv, const struct gfs_buf *want,
			   rlim_t limit)
{
	struct rlimit rl = { limit, limit };
	struct gfs_buf got;
	struct gfs_tcursor *c;
	char buf[1000];
	uint64_t off = 0;
	size_t n;

	if (limit && setrlimit(RLIMIT_NOFILE, &rl))
		return 2;
	gfs_buf_init(&got);
	if (gfs_tcursor_new(tv, &c))
		return 3;
	do {
		if (gfs_tcursor_read(c, off, buf, sizeof buf, &n) ||
		    gfs_buf_append(&got, buf, n))
			return 4;
		off += n;
	} while (n);
	gfs_tcursor_free(c);
	if (got.len != want->len || memcmp(got.p, want->p, got.len))
		return 5;
	gfs_buf_release(&got);
	return 0;
}

static rlim_t fds_in_use(void)
{
	rlim_t n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* In a child whose fd limit leaves room for almost nothing, reads fall
 * back on the shared fds (closing idle ones) and still succeed; an fd
 * budget of 0 takes the same path without the limit. */
START_TEST(test_fd_exhaustion)
{
	int *g = many_versions(), status;
	struct gfs_tstore_stats st;
	struct gfs_tver *tv;
	struct gfs_buf want;
	pid_t pid;

	expect_export(g, MV_ROWS, &want);
	gfs_tstore_set_page_cache(g_ts, 0);
	tv = open_t(T, MV_VERSIONS);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(fd_starved_read(tv, &want, fds_in_use() + 3));
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	gfs_tver_close(tv);
	gfs_tstore_set_fd_budget(g_ts, 0);
	tv = open_t(T, MV_VERSIONS);
	ck_assert_int_eq(fd_starved_read(tv, &want, 0), 0);
	gfs_tstore_stats(g_ts, &st);
	ck_assert_uint_eq(st.fds_held, 0);
	ck_assert_uint_gt(st.fd_fallbacks, 0);
	gfs_tver_close(tv);
	gfs_buf_release(&want);
	free(g);
}
END_TEST

/* A secondary-index listing reads each page once (the cache), not a
 * primary descent per row. */
/* n edges k<i> from s<(i * 37) % sources> to d<i % 13>, committed as
 * version 1 of E. */
static void build_edges(struct gfs_tbuild *b, int n, int sources)
{
	for (int i = 0; i < n; i++) {
		char id[16], src[16], dst[16], line[80];
		struct gfs_rowput r = { 0 };

		id_of(id, sizeof id, i);
		snprintf(src, sizeof src, "s%05d", (i * 37) % sources);
		snprintf(dst, sizeof dst, "d%05d", i % 13);
		r.id = id;
		r.id_len = strlen(id);
		r.src = src;
		r.src_len = strlen(src);
		r.dst = dst;
		r.dst_len = strlen(dst);
		r.line_len = (size_t)snprintf(line, sizeof line, "{\"i\":%d}\n", i);
		r.line = line;
		ck_assert_int_eq(gfs_tbuild_put(b, &r), 0);
	}
	commit_t(b, 1);
}

START_TEST(test_src_iter_reads)
{
	struct gfs_tbuild *b = builder(E, NULL, 0, 0);
	struct gfs_tstore_stats s0, s1;
	struct gfs_titer *it;
	struct gfs_row row;
	struct gfs_tver *tv;
	int n = 5000, rows = 0, rc;

	build_edges(b, n, 997);
	tv = open_t(E, 1);
	gfs_tstore_stats(g_ts, &s0);
	ck_assert_int_eq(gfs_titer_new(tv, GFS_IX_SRC, NULL, 0, &it), 0);
	while ((rc = gfs_titer_next(it, &row)) == 1)
		rows++;
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(rows, n);
	gfs_titer_free(it);
	gfs_tstore_stats(g_ts, &s1);
	/* Each page of PRIMARY and SRC read once: far fewer than rows. */
	ck_assert_uint_eq(s1.preads - s0.preads, s1.page_misses - s0.page_misses);
	ck_assert_uint_lt(s1.preads - s0.preads, (uint64_t)n / 10);
	gfs_tver_close(tv);
}
END_TEST

static bool id_is(const struct gfs_row *row, const char *id)
{
	return row->id_len == strlen(id) && memcmp(row->id, id, row->id_len) == 0;
}

/* gfs_titer_new_at(r) returns what the r-th next of a full iteration
 * returns, and gfs_titer_rank says where an iterator stands: on a
 * multi-level PRIMARY tree with deletes (underfull pages) and on SRC. */
static void rank_check(struct gfs_tver *tv, enum gfs_index ix, int n)
{
	char **ids = calloc((size_t)n + 1, sizeof *ids);
	struct gfs_titer *it;
	struct gfs_row row;
	int got = 0, rc;

	ck_assert_ptr_nonnull(ids);
	ck_assert_int_eq(gfs_titer_new(tv, ix, NULL, 0, &it), 0);
	ck_assert_uint_eq(gfs_titer_rank(it), 0);
	while ((rc = gfs_titer_next(it, &row)) == 1) {
		ck_assert_int_lt(got, n);
		ids[got++] = gfs_memdup(row.id, row.id_len);
		ck_assert_uint_eq(gfs_titer_rank(it), (uint64_t)got);
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(got, n);
	gfs_titer_free(it);
	for (int k = 0; k < 400; k++) {
		int r = k < 3 ? (k == 0 ? 0 : k == 1 ? n - 1 : n) : rand() % n;

		ck_assert_int_eq(gfs_titer_new_at(tv, ix, (uint64_t)r, &it), 0);
		ck_assert_uint_eq(gfs_titer_rank(it), (uint64_t)r);
		rc = gfs_titer_next(it, &row);
		if (r == n) {
			ck_assert_int_eq(rc, 0);
		} else {
			ck_assert_int_eq(rc, 1);
			ck_assert(id_is(&row, ids[r]));
			if (r + 1 < n) { /* and it goes on from there */
				ck_assert_int_eq(gfs_titer_next(it, &row), 1);
				ck_assert(id_is(&row, ids[r + 1]));
			}
		}
		gfs_titer_free(it);
	}
	for (int i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

START_TEST(test_rank_seek)
{
	struct gfs_tbuild *b;
	struct gfs_tver *tv1, *tv;
	int n = 6000, left = 0;

	build_full(n, 1);
	tv1 = open_t(T, 1);
	b = builder(T, tv1, 0, 0);
	for (int i = 0; i < n; i++)
		if (i % 3 == 0)
			del_row(b, i);
		else
			left++;
	commit_t(b, 2);
	gfs_tver_close(tv1);
	tv = open_t(T, 2);
	srand(7);
	rank_check(tv, GFS_IX_PRIMARY, left);
	gfs_tver_close(tv);

	b = builder(E, NULL, 0, 0);
	build_edges(b, 3000, 499);
	tv = open_t(E, 1);
	rank_check(tv, GFS_IX_SRC, 3000);
	rank_check(tv, GFS_IX_DST, 3000);
	gfs_tver_close(tv);
}
END_TEST

struct diffs {
	char got[64][16]; /* "+k0000001", "-…", "~…" */
	int n;
};

static int diff_cb(void *arg, const struct gfs_row *o, const struct gfs_row *n)
{
	struct diffs *d = arg;
	const struct gfs_row *r = n ? n : o;

	ck_assert_int_lt(d->n, 64);
	snprintf(d->got[d->n++], 16, "%c%.*s", !o ? '+' : !n ? '-' : '~',
		 (int)r->id_len, r->id);
	return 0;
}

static void diff_is(uint32_t va, uint32_t vb, const char *want, uint64_t max_pages)
{
	struct gfs_tver *a = open_t(T, va), *b = open_t(T, vb);
	struct diffs d = { .n = 0 };
	char all[64 * 16] = "";
	uint64_t pages = 0;

	ck_assert_int_eq(gfs_tver_diff(a, b, diff_cb, &d, &pages), 0);
	for (int i = 0; i < d.n; i++) {
		strcat(all, d.got[i]);
		strcat(all, " ");
	}
	ck_assert_str_eq(all, want);
	ck_assert_uint_le(pages, max_pages);
	gfs_tver_close(a);
	gfs_tver_close(b);
}

struct rdiff {
	const int *ga, *gb; /* generation per id, -1 absent */
	int n, seen, last;
};

static int rdiff_cb(void *arg, const struct gfs_row *o, const struct gfs_row *n)
{
	struct rdiff *d = arg;
	const struct gfs_row *r = n ? n : o;
	int i = (int)strtol(r->id + 1, NULL, 10); /* "k%07d" */

	ck_assert_int_gt(i, d->last); /* in id order, once each */
	d->last = i;
	ck_assert(d->ga[i] != d->gb[i]);
	ck_assert((o != NULL) == (d->ga[i] >= 0));
	ck_assert((n != NULL) == (d->gb[i] >= 0));
	d->seen++;
	return 0;
}

/* Random histories: every pair of versions diffs to exactly the ids
 * whose generation differs in the model. */
START_TEST(test_diff_random)
{
	enum { N = 3000, V = 12 };
	static int gen[V + 1][N];
	struct gfs_tver *tv = NULL;

	srand(11);
	for (int i = 0; i < N; i++)
		gen[1][i] = i % 5 ? 0 : -1;
	for (uint32_t v = 1; v <= V; v++) {
		struct gfs_tbuild *b = builder(T, tv, 0, 0);

		if (v > 1)
			for (int i = 0; i < N; i++) {
				int g = gen[v - 1][i], r = rand() % 100;

				gen[v][i] = g < 0 ? -1 : r < 3 ? (int)v : r < 5 ? -1 : g;
			}
		for (int i = 0; i < N; i++)
			if (gen[v][i] >= 0 && (v == 1 || gen[v][i] != gen[v - 1][i]))
				put_row(b, i, gen[v][i]);
			else if (v > 1 && gen[v][i] < 0 && gen[v - 1][i] >= 0)
				del_row(b, i);
		commit_t(b, v);
		gfs_tver_close(tv);
		tv = open_t(T, v);
	}
	gfs_tver_close(tv);
	for (uint32_t a = 1; a <= V; a += 3)
		for (uint32_t bv = 1; bv <= V; bv += 2) {
			struct gfs_tver *x = open_t(T, a), *y = open_t(T, bv);
			struct rdiff d = { gen[a], gen[bv], N, 0, -1 };
			int want = 0;

			for (int i = 0; i < N; i++)
				want += gen[a][i] != gen[bv][i];
			ck_assert_int_eq(gfs_tver_diff(x, y, rdiff_cb, &d, NULL), 0);
			ck_assert_int_eq(d.seen, want);
			gfs_tver_close(x);
			gfs_tver_close(y);
		}
}
END_TEST

/* A diff reads only the pages on the paths to what changed. */
START_TEST(test_diff)
{
	struct gfs_diag dg = {{0}};
	struct gfs_tbuild *b;
	struct gfs_tver *tv;
	char op[GFS_ULID_LEN + 1];
	int n = 20000;

	build_full(n, 1);
	tv = open_t(T, 1);
	b = builder(T, tv, 0, 0);
	put_row(b, 5, 1);
	del_row(b, 100);
	put_row(b, 9000, 0); /* byte-identical: unchanged */
	put_row(b, 9001, 2);
	put_row(b, n + 1, 0);
	commit_t(b, 2);
	gfs_tver_close(tv);
	diff_is(1, 2, "~k0000005 -k0000100 ~k0009001 +k0020001 ", 40);
	diff_is(2, 1, "~k0000005 +k0000100 ~k0009001 -k0020001 ", 40);
	diff_is(2, 2, "", 2);
	ck_assert_int_eq(gfs_ulid_new(op), 0);
	ck_assert_int_eq(gfs_table_write_compensation(g_ts, T, 3, 1, op, &dg), 0);
	diff_is(1, 3, "", 2);
	diff_is(3, 2, "~k0000005 -k0000100 ~k0009001 +k0020001 ", 40);
	/* A table emptied. */
	b = builder(T, NULL, 0, 0);
	put_row(b, 7, 0);
	commit_t(b, 4);
	tv = open_t(T, 4);
	b = builder(T, tv, 0, 0);
	del_row(b, 7);
	commit_t(b, 5);
	gfs_tver_close(tv);
	diff_is(4, 5, "-k0000007 ", 2);
	diff_is(5, 4, "+k0000007 ", 2);
}
END_TEST

START_TEST(test_head_and_names)
{
	char path[PATH_MAX];
	uint32_t head;
	struct gfs_tver *tv;
	int fd;

	for (uint32_t v = 1; v <= 3; v++)
		build_full(5, v);
	snprintf(path, sizeof path, "%s/tables/%s/.tmp-1-abc", g_dir, T);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(path, sizeof path, "%s/tables/%s/0012", g_dir, T);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	close(fd);
	ck_assert_int_eq(gfs_table_head(g_ts, T, &head), 0);
	ck_assert_uint_eq(head, 3);
	ck_assert_int_eq(gfs_table_create(g_ts, "a/b"), -EINVAL);
	ck_assert_int_eq(gfs_table_create(g_ts, ".."), -EINVAL);
	ck_assert_int_eq(gfs_tver_open(g_ts, "..", 1, &tv, NULL), -EINVAL);
}
END_TEST

#ifdef GFS_FAILPOINTS_ENABLED
/* Failpoints are armed from the environment on the first hit (creating a
 * table is one: sync/skip_table_create), and Check runs each test in a
 * fresh child, so each test arms its own before its setup: these tests run
 * in a tcase without the checked fixture. */
static void fp_commit(const char *spec, int want_rc, bool want_version)
{
	struct gfs_tbuild *b;
	struct gfs_diag d = { { 0 } };
	char op[GFS_ULID_LEN + 1];
	uint32_t head;

	if (getenv("CK_FORK") && !strcmp(getenv("CK_FORK"), "no"))
		return;
	ck_assert_int_eq(setenv("GRAPHFS_FAILPOINTS", spec, 1), 0);
	setup();
	b = builder(T, NULL, 0, 0);
	put_row(b, 1, 0);
	ck_assert_int_eq(gfs_ulid_new(op), 0);
	ck_assert_int_eq(gfs_tbuild_commit(b, 1, op, &d), want_rc);
	gfs_tbuild_free(b);
	ck_assert_int_eq(count_tmp(T), 0);
	ck_assert_int_eq(gfs_table_head(g_ts, T, &head), 0);
	ck_assert_uint_eq(head, want_version ? 1 : 0);
	if (want_version)
		verify_ok(T, 1);
	teardown();
}

START_TEST(test_fp_after_tmp_write)
{
	fp_commit("table/after_tmp_write=error:5", -EIO, false);
}
END_TEST

START_TEST(test_fp_after_link)
{
	fp_commit("table/after_link=error:28", -ENOSPC, true);
}
END_TEST
#endif

static TCase *tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("table");
	TCase *tc = tcase(s, "core");

	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_put_read);
	tcase_add_test(tc, test_incremental_small);
	tcase_add_test(tc, test_identical_keeps);
	tcase_add_test(tc, test_deletes);
	tcase_add_test(tc, test_replace);
	tcase_add_test(tc, test_read_export_random);
	tcase_add_test(tc, test_random_versions);
	tcase_add_test(tc, test_edges);
	tcase_add_test(tc, test_unique);
	tcase_add_test(tc, test_compensation);
	tcase_add_test(tc, test_link_eexist);
	tcase_add_test(tc, test_head_and_names);
#ifdef GFS_FAILPOINTS_ENABLED
	tc = tcase_create("failpoints"); /* no fixture: see fp_commit */
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	tcase_add_test(tc, test_fp_after_tmp_write);
	tcase_add_test(tc, test_fp_after_link);
#endif
	tc = tcase_create("spill");
	tcase_add_checked_fixture(tc, setup_spill, teardown);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	tcase_add_test(tc, test_incremental_small);
	tcase_add_test(tc, test_identical_keeps);
	tcase_add_test(tc, test_deletes);
	tcase_add_test(tc, test_replace);
	tcase_add_test(tc, test_random_versions);
	tcase_add_test(tc, test_edges);
	tcase_add_test(tc, test_unique);
	tc = tcase(s, "corrupt");
	tcase_add_test(tc, test_corrupt_flip_edges);
	tcase_add_test(tc, test_corrupt_flip_incremental);
	tcase_add_test(tc, test_corrupt_flip_full);
	tcase_add_test(tc, test_truncated);
	tc = tcase(s, "scale");
	tcase_add_test(tc, test_big_build);
	tcase_add_test(tc, test_threads);
	tc = tcase(s, "read path");
	tcase_add_test(tc, test_cursor_many_versions);
	tcase_add_test(tc, test_cursor_random);
	tcase_add_test(tc, test_page_cache_pressure);
	tcase_add_test(tc, test_cursor_threads);
	tcase_add_test(tc, test_fd_exhaustion);
	tcase_add_test(tc, test_src_iter_reads);
	tcase_add_test(tc, test_rank_seek);
	tcase_add_test(tc, test_diff);
	tcase_add_test(tc, test_diff_random);
	tcase_add_test(tc, test_line_flip_never_served);
	return tu_run(s);
}
