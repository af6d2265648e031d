/* check_util.c - util: buffers, JSON string escaping, ULIDs, time, errors. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "util.h"

START_TEST(buf_grows_and_terminates)
{
	struct gfs_buf b;

	gfs_buf_init(&b);
	for (int i = 0; i < 10000; i++)
		ck_assert_int_eq(gfs_buf_appendf(&b, "%d,", i % 10), 0);
	ck_assert_uint_eq(b.len, 20000);
	ck_assert_int_eq(b.p[b.len], '\0');
	ck_assert_int_eq(memcmp(b.p, "0,1,2,", 6), 0);
	gfs_buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	gfs_buf_release(&b);
	ck_assert_ptr_null(b.p);
}
END_TEST

START_TEST(json_string_escapes)
{
	struct gfs_buf b;
	const char in[] = "a\"b\\c\n\x01\0z\xc3\xa9";

	gfs_buf_init(&b);
	ck_assert_int_eq(gfs_buf_append_json_str(&b, in, sizeof in - 1), 0);
	ck_assert_str_eq(b.p, "\"a\\\"b\\\\c\\n\\u0001\\u0000z\xc3\xa9\"");
	gfs_buf_release(&b);
}
END_TEST

START_TEST(ulids_are_valid_unique_and_ordered)
{
	char a[GFS_ULID_LEN + 1], b[GFS_ULID_LEN + 1];

	ck_assert_int_eq(gfs_ulid_new(a), 0);
	ck_assert(gfs_ulid_valid(a));
	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(gfs_ulid_new(b), 0);
		ck_assert(gfs_ulid_valid(b));
		ck_assert_str_ne(a, b);
		/* time prefix (10 chars) never goes backwards */
		ck_assert(strncmp(a, b, 10) <= 0);
	}
	ck_assert(!gfs_ulid_valid("not-a-ulid"));
	ck_assert(!gfs_ulid_valid("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
}
END_TEST

START_TEST(time_format_trims_fraction)
{
	char out[40];

	gfs_time_format(1767323045000000000ull, out);
	ck_assert_str_eq(out, "2026-01-02T03:04:05Z");
	gfs_time_format(1767323045120000000ull, out);
	ck_assert_str_eq(out, "2026-01-02T03:04:05.12Z");
}
END_TEST

START_TEST(strerror_covers_both_ranges)
{
	ck_assert_str_eq(gfs_strerror(GFS_ERECOVERY), "recovery needed");
	ck_assert_str_eq(gfs_strerror(-ENOENT), strerror(ENOENT));
	for (int e = GFS_EBASE - 1; e > GFS_ELAST; e--)
		ck_assert_ptr_nonnull(gfs_strerror(e));
}
END_TEST

START_TEST(checked_number_parsing)
{
	uint64_t u;
	int64_t i;

	ck_assert_int_eq(gfs_parse_u64("42", &u), 0);
	ck_assert_uint_eq(u, 42);
	ck_assert_int_ne(gfs_parse_u64("-1", &u), 0);
	ck_assert_int_ne(gfs_parse_u64("12x", &u), 0);
	ck_assert_int_ne(gfs_parse_u64("", &u), 0);
	ck_assert_int_ne(gfs_parse_u64("99999999999999999999999", &u), 0);
	ck_assert_int_eq(gfs_parse_i64("-7", &i), 0);
	ck_assert_int_eq(i, -7);
}
END_TEST

START_TEST(array_grow_doubles_and_keeps_contents)
{
	size_t cap = 0, n;
	int *v = NULL, *p;

	for (n = 0; n < 1000; n++) {
		p = gfs_array_grow(v, &cap, n, sizeof *v, 4);
		ck_assert_ptr_nonnull(p);
		v = p;
		ck_assert_uint_gt(cap, n);
		v[n] = (int)n;
	}
	ck_assert_uint_eq(cap, 1024);
	for (n = 0; n < 1000; n++)
		ck_assert_int_eq(v[n], (int)n);
	/* an impossible size fails and leaves the array alone */
	ck_assert_ptr_null(gfs_array_grow(v, &cap, cap, SIZE_MAX / 2, 4));
	ck_assert_uint_eq(cap, 1024);
	free(v);
}
END_TEST

/* gfs_umask reads the umask without changing it (docs/format.md,
 * "Permissions"); the files the store creates are masked by it. */
START_TEST(umask_is_read_not_changed)
{
	static const mode_t masks[] = { 022, 077, 027, 002, 0 };

	for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
		umask(masks[i]);
		ck_assert_uint_eq(gfs_umask(), masks[i]);
		ck_assert_uint_eq(umask(masks[i]), masks[i]); /* unchanged */
	}
	umask(022);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, buf_grows_and_terminates);
	tcase_add_test(tc, json_string_escapes);
	tcase_add_test(tc, ulids_are_valid_unique_and_ordered);
	tcase_add_test(tc, time_format_trims_fraction);
	tcase_add_test(tc, strerror_covers_both_ranges);
	tcase_add_test(tc, checked_number_parsing);
	tcase_add_test(tc, array_grow_doubles_and_keeps_contents);
	tcase_add_test(tc, umask_is_read_not_changed);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
