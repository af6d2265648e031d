/* check_xsort.c - the external sorter (src/xsort.c) against an in-memory
 * stable sort: random records, tiny budgets (many runs, group merges),
 * duplicates, empty and oversized records, interleaved passes. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "testutil.h"
#include "xsort.h"

/* Records: a key of 0..4 bytes from a small alphabet (many duplicates),
 * then a 4-byte sequence number, then 0..n filler bytes.  The comparator
 * looks at the key only, so the sequence number shows stability. */
struct rec {
	unsigned char key[4];
	size_t klen;
	uint32_t seq;
	size_t fill;
};

static int key_cmp(const void *a, size_t alen, const void *b, size_t blen,
		   void *arg)
{
	const unsigned char *pa = a, *pb = b;
	size_t ka = pa[0], kb = pb[0];
	int c;

	(void)alen;
	(void)blen;
	(*(unsigned long *)arg)++;
	c = memcmp(pa + 1, pb + 1, ka < kb ? ka : kb);
	if (c)
		return c;
	return ka < kb ? -1 : ka > kb;
}

static size_t encode(const struct rec *r, unsigned char *out)
{
	size_t n = 0;

	out[n++] = (unsigned char)r->klen;
	memcpy(out + n, r->key, r->klen);
	n += r->klen;
	memcpy(out + n, &r->seq, 4);
	n += 4;
	memset(out + n, 'a' + (int)(r->seq % 26), r->fill);
	return n + r->fill;
}

static int rec_qcmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);

	if (c)
		return c;
	if (x->klen != y->klen)
		return x->klen < y->klen ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq; /* stable */
}

static struct rec *gen(unsigned seed, size_t n, size_t maxfill)
{
	struct rec *v = calloc(n, sizeof *v);

	ck_assert_ptr_nonnull(v);
	srandom(seed);
	for (size_t i = 0; i < n; i++) {
		v[i].klen = (size_t)(random() % 5);
		for (size_t k = 0; k < v[i].klen; k++)
			v[i].key[k] = (unsigned char)("\0abz\377"[random() % 5]);
		v[i].seq = (uint32_t)i;
		v[i].fill = maxfill ? (size_t)(random() % (long)(maxfill + 1)) : 0;
	}
	return v;
}

static bool dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool empty = true;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = false;
	closedir(d);
	return empty;
}

/* Sorts v through the sorter with this budget and checks every record of
 * the pass, twice (two passes may run at once). */
static void sort_and_check(struct rec *v, size_t n, size_t budget,
			   struct gfs_xsort_stats *st)
{
	char dir[PATH_MAX];
	struct gfs_xsort *x;
	struct gfs_xsort_iter *it[2];
	unsigned char buf[64 + 4096];
	unsigned long calls = 0;

	tu_tmpdir(dir, sizeof dir);
	ck_assert_int_eq(gfs_xsort_new(dir, budget, key_cmp, &calls, &x), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(gfs_xsort_add(x, buf, encode(&v[i], buf)), 0);
	ck_assert_int_eq(gfs_xsort_finish(x), 0);
	ck_assert_int_eq(gfs_xsort_add(x, buf, 1), -EINVAL);
	ck_assert(dir_empty(dir)); /* runs live in an unnamed file */
	qsort(v, n, sizeof *v, rec_qcmp);
	ck_assert_int_eq(gfs_xsort_iter_new(x, &it[0]), 0);
	ck_assert_int_eq(gfs_xsort_iter_new(x, &it[1]), 0);
	const void *prev[2] = { NULL, NULL };
	size_t prevlen[2] = { 0, 0 };
	for (size_t i = 0; i <= n; i++)
		for (int k = 0; k < 2; k++) {
			const void *rec;
			size_t len;
			int rc = gfs_xsort_iter_next(it[k], &rec, &len);
			/* the record before stays valid through this call */
			if (i > 0) {
				ck_assert_uint_eq(prevlen[k], encode(&v[i - 1], buf));
				ck_assert_msg(!memcmp(prev[k], buf, prevlen[k]),
					      "record %zu moved under the next call", i - 1);
			}
			if (i == n) {
				ck_assert_int_eq(rc, 0);
				continue;
			}
			ck_assert_int_eq(rc, 1);
			ck_assert_uint_eq(len, encode(&v[i], buf));
			ck_assert_msg(!memcmp(rec, buf, len),
				      "record %zu (seq %u) differs", i, v[i].seq);
			prev[k] = rec;
			prevlen[k] = len;
		}
	gfs_xsort_iter_free(it[0]);
	gfs_xsort_iter_free(it[1]);
	gfs_xsort_stats(x, st);
	ck_assert_uint_eq(st->records, n);
	gfs_xsort_free(x);
	tu_rmrf(dir);
}

START_TEST(test_many_runs)
{
	/* ~20 records a run: ~1000 runs, so group merges happen too. */
	size_t n = 20000;
	struct rec *v = gen(7 + (unsigned)_i, n, 40);
	struct gfs_xsort_stats st;

	sort_and_check(v, n, 1024, &st);
	ck_assert_uint_gt(st.runs, GFS_XSORT_FANIN * 4);
	ck_assert_uint_gt(st.merges, 0);
	free(v);
}
END_TEST

START_TEST(test_few_runs)
{
	size_t n = 5000;
	struct rec *v = gen(11, n, 100);
	struct gfs_xsort_stats st;

	sort_and_check(v, n, 64 << 10, &st);
	ck_assert_uint_gt(st.runs, 1);
	ck_assert_uint_le(st.runs, GFS_XSORT_FANIN);
	ck_assert_uint_eq(st.merges, 0);
	free(v);
}
END_TEST

START_TEST(test_in_memory)
{
	size_t n = 3000;
	struct rec *v = gen(3, n, 10);
	struct gfs_xsort_stats st;

	sort_and_check(v, n, 16 << 20, &st);
	ck_assert_uint_eq(st.runs, 0);
	ck_assert_uint_eq(st.run_bytes, 0);
	free(v);
}
END_TEST

START_TEST(test_empty_and_oversized)
{
	struct rec *v = gen(5, 200, 4000);
	struct gfs_xsort_stats st;

	/* Every record is larger than the budget: one record a run. */
	for (size_t i = 0; i < 200; i++)
		v[i].fill = 100 + v[i].fill;
	sort_and_check(v, 200, 16, &st);
	ck_assert_uint_eq(st.runs, 200);
	sort_and_check(v, 0, 16, &st); /* no records at all */
	ck_assert_uint_eq(st.runs, 0);
	free(v);
}
END_TEST

/* Batches that come sorted, reversed, or all equal (the natural merge
 * sort's runs), in memory and spilled. */
START_TEST(test_presorted_and_reversed)
{
	size_t n = 6000;
	struct rec *v = gen(13, n, 20);
	struct gfs_xsort_stats st;
	size_t budget = _i & 1 ? (size_t)16 << 20 : 2048;

	qsort(v, n, sizeof *v, rec_qcmp); /* sorted, seq follows the key order */
	for (size_t i = 0; i < n; i++)
		v[i].seq = (uint32_t)i;
	if (_i >= 2) /* reversed: keys descending, seq still the input order */
		for (size_t i = 0; i < n / 2; i++) {
			struct rec t = v[i];
			v[i] = v[n - 1 - i];
			v[n - 1 - i] = t;
		}
	if (_i >= 4) /* all keys equal: only stability orders them */
		for (size_t i = 0; i < n; i++)
			v[i].klen = 0;
	for (size_t i = 0; i < n; i++)
		v[i].seq = (uint32_t)i;
	sort_and_check(v, n, budget, &st);
	if (_i & 1)
		ck_assert_uint_eq(st.runs, 0);
	else
		ck_assert_uint_gt(st.runs, 1);
	free(v);
}
END_TEST

START_TEST(test_misuse)
{
	char dir[PATH_MAX];
	struct gfs_xsort *x;
	struct gfs_xsort_iter *it;
	unsigned long calls = 0;

	tu_tmpdir(dir, sizeof dir);
	ck_assert_int_eq(gfs_xsort_new(dir, 100, key_cmp, &calls, &x), 0);
	ck_assert_int_eq(gfs_xsort_iter_new(x, &it), -EINVAL);
	ck_assert_ptr_null(it);
	gfs_xsort_free(x);
	gfs_xsort_free(NULL);
	gfs_xsort_iter_free(NULL);
	/* A run directory that does not exist fails the spill, naming errno. */
	ck_assert_int_eq(gfs_xsort_new("/nonexistent/dir", 8, key_cmp, &calls, &x), 0);
	ck_assert_int_eq(gfs_xsort_add(x, "\0", 1), 0);
	ck_assert_int_eq(gfs_xsort_add(x, "\0", 1), -ENOENT);
	gfs_xsort_free(x);
	tu_rmrf(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("xsort");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_many_runs, 0, 3);
	tcase_add_test(tc, test_few_runs);
	tcase_add_test(tc, test_in_memory);
	tcase_add_test(tc, test_empty_and_oversized);
	tcase_add_loop_test(tc, test_presorted_and_reversed, 0, 6);
	tcase_add_test(tc, test_misuse);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
