/* testutil.h - helpers shared by the Check runners. */
#ifndef GFS_TESTUTIL_H
#define GFS_TESTUTIL_H

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh temporary directory per test (under $TMPDIR or /tmp); removed by
 * tu_rmrf at the end of the test.  Returns a static buffer per call site. */
static inline void tu_tmpdir(char *out, size_t n)
{
	const char *base = getenv("TMPDIR");
	snprintf(out, n, "%s/gfs-test-XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(out));
}

static inline void tu_rmrf(const char *path)
{
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
	ck_assert_int_eq(system(cmd), 0);
}

/* tu_scaled(secs): secs times GRAPHFS_TEST_TIMEOUT_FACTOR (default 1), as
 * tests/lib.sh `scaled`: every bound on waiting or on elapsed time goes
 * through it, so a busy or slow machine only needs a larger factor.  (Check
 * scales its own per-test timeouts with CK_TIMEOUT_MULTIPLIER, which
 * Makefile.am sets from the same factor.) */
static inline double tu_scaled(double secs)
{
	const char *f = getenv("GRAPHFS_TEST_TIMEOUT_FACTOR");
	double x = f && *f ? strtod(f, NULL) : 1.0;

	return secs * (x >= 1.0 ? x : 1.0);
}

/* Runs a suite and returns the process exit status. */
static inline int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
