/* teststore.h - a fresh store per test for the runners that load data
 * (check_load, check_recover).  Include after defining
 *     static const char SCHEMA[] = "...";
 * and register the fixture with tcase_add_checked_fixture(tc, setup,
 * teardown): Check runs it in the test's forked child, so the store (and
 * its LMDB environment) is opened after the fork. */
#ifndef GFS_TESTSTORE_H
#define GFS_TESTSTORE_H

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph.h"
#include "testutil.h"

static char dir[PATH_MAX]; /* the store: <fresh temp dir>/store */

static void setup(void)
{
	struct gfs_diag d = {{0}};

	tu_tmpdir(dir, sizeof dir);
	strcat(dir, "/store");
	ck_assert_msg(gfs_graph_init(dir, SCHEMA, strlen(SCHEMA), "t.pg", "test", &d) == 0,
		      "init: %s", d.msg);
}

static void teardown(void)
{
	char *slash = strrchr(dir, '/');

	*slash = '\0';
	tu_rmrf(dir);
}

static struct gfs_graph *open_g(void)
{
	struct gfs_graph *g;
	struct gfs_diag d = {{0}};

	ck_assert_msg(gfs_graph_open(dir, 0, &g, &d) == 0, "open: %s", d.msg);
	return g;
}

/* Export of version v (0 = head), optionally one type, as a new string
 * (free()). */
static inline char *export_text(struct gfs_graph *g, uint64_t v, const char *type)
{
	struct gfs_diag d = {{0}};
	int fd = memfd_create("out", MFD_CLOEXEC);
	struct stat st;
	char *buf;

	ck_assert_int_ge(fd, 0);
	ck_assert_msg(gfs_graph_export(g, v, type, fd, &d) == 0, "export: %s", d.msg);
	fstat(fd, &st);
	buf = calloc(1, (size_t)st.st_size + 1);
	ck_assert(st.st_size == 0 || gfs_pread_all(fd, buf, (size_t)st.st_size, 0) == 0);
	close(fd);
	return buf;
}

#endif
