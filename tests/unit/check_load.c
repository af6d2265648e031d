/* check_load.c - the load pipeline end to end through the library: modes,
 * validation, the CAS under two racing processes, export round trip, fsck
 * detecting damage.  Each test makes its own store in a fresh temp dir. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graph.h"
#include "testutil.h"

static const char SCHEMA[] =
	"node Person { slug: String @key  name: String  age: I32?  email: String? @unique\n"
	"  @range(age, 0..150) }\n"
	"node Doc { text: String }\n"
	"edge Knows: Person -> Person @card(0..2) { since: Date? @unique(src, dst) }\n"
	"edge Wrote: Person -> Doc\n";

static char dir[PATH_MAX];

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

/* Loads text; returns rc and leaves the message in d. */
static int load_text(struct gfs_graph *g, const char *text, enum gfs_load_mode mode,
		     struct gfs_diag *d, uint64_t *version)
{
	struct gfs_load_opts o = { .mode = mode, .source = "test.jsonl" };
	struct gfs_load_result res;
	int fd = memfd_create("in", MFD_CLOEXEC), rc;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(gfs_write_all(fd, text, strlen(text)), 0);
	lseek(fd, 0, SEEK_SET);
	memset(d, 0, sizeof *d);
	rc = gfs_graph_load(g, fd, &o, &res, d);
	close(fd);
	if (version)
		*version = rc ? 0 : res.version;
	return rc;
}

/* Export of version v (0 = head), optionally one type, as a new string. */
static char *export_text(struct gfs_graph *g, uint64_t v, const char *type)
{
	struct gfs_diag d = {{0}};
	int fd = memfd_create("out", MFD_CLOEXEC);
	struct stat st;
	char *buf;

	ck_assert_int_ge(fd, 0);
	ck_assert_msg(gfs_graph_export(g, v, type, fd, &d) == 0, "export: %s", d.msg);
	fstat(fd, &st);
	buf = calloc(1, (size_t)st.st_size + 1);
	ck_assert_int_eq(gfs_pread_all(fd, buf, (size_t)st.st_size, 0) == 0 || st.st_size == 0, 1);
	close(fd);
	return buf;
}

static const char PEOPLE[] =
	"{\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"name\":\"Bob\",\"age\":41}}\n"
	"\n"
	"{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"Alice\",\"email\":\"a@x\"}}\n"
	"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"id\":\"k1\",\"since\":\"2020-05-01\"}}\n";

START_TEST(merge_load_then_export_is_canonical_and_sorted)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d;
	uint64_t v;
	char *out;

	ck_assert_msg(load_text(g, PEOPLE, GFS_LOAD_MERGE, &d, &v) == 0, "%s", d.msg);
	ck_assert_uint_eq(v, 2);
	out = export_text(g, 0, NULL);
	ck_assert_str_eq(out,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"Alice\",\"email\":\"a@x\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"name\":\"Bob\",\"age\":41}}\n"
		"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"id\":\"k1\",\"since\":\"2020-05-01\"}}\n");
	free(out);
	out = export_text(g, 1, NULL);
	ck_assert_str_eq(out, "");
	free(out);
	gfs_graph_close(g);
}
END_TEST

START_TEST(merge_upserts_and_keeps_rows_not_in_file_last_line_wins)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d;
	char *out;

	ck_assert_msg(load_text(g, PEOPLE, GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	ck_assert_msg(load_text(g,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"name\":\"Robert\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"name\":\"Bobby\"}}\n",
		GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	out = export_text(g, 0, "Person");
	ck_assert_str_eq(out,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"Alice\",\"email\":\"a@x\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"name\":\"Bobby\"}}\n");
	free(out);
	/* the older version still reads back as it was */
	out = export_text(g, 2, "Person");
	ck_assert_ptr_nonnull(strstr(out, "\"age\":41"));
	free(out);
	gfs_graph_close(g);
}
END_TEST

START_TEST(append_rejects_existing_and_repeated_ids)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d;

	ck_assert_msg(load_text(g, PEOPLE, GFS_LOAD_APPEND, &d, NULL) == 0, "%s", d.msg);
	ck_assert_int_eq(load_text(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"name\":\"B\"}}\n",
				   GFS_LOAD_APPEND, &d, NULL), GFS_ECONFLICT);
	ck_assert_msg(strstr(d.msg, "line 1") && strstr(d.msg, "'bob'"), "%s", d.msg);
	ck_assert_int_eq(load_text(g,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"zed\",\"name\":\"Z\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"zed\",\"name\":\"Z2\"}}\n",
		GFS_LOAD_APPEND, &d, NULL), GFS_ECONFLICT);
	ck_assert_msg(strstr(d.msg, "line 2") && strstr(d.msg, "line 1"), "%s", d.msg);
	ck_assert_uint_eq(gfs_manifest_head_version(gfs_graph_manifest(g)), 2);
	gfs_graph_close(g);
}
END_TEST

START_TEST(overwrite_replaces_only_mentioned_tables_and_refuses_dangling_edges)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d;
	char *out;

	ck_assert_msg(load_text(g, PEOPLE, GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	/* removing bob would leave Knows k1 without its target */
	ck_assert_int_eq(load_text(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"A\"}}\n",
				   GFS_LOAD_OVERWRITE, &d, NULL), GFS_ECONFLICT);
	ck_assert_msg(strstr(d.msg, "'bob'") && strstr(d.msg, "Knows"), "%s", d.msg);
	/* with the edge table overwritten too it goes through */
	ck_assert_msg(load_text(g,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"A\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"cat\",\"name\":\"C\"}}\n"
		"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"cat\",\"data\":{\"id\":\"k2\"}}\n",
		GFS_LOAD_OVERWRITE, &d, NULL) == 0, "%s", d.msg);
	out = export_text(g, 0, NULL);
	ck_assert_str_eq(out,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"A\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"cat\",\"name\":\"C\"}}\n"
		"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"cat\",\"data\":{\"id\":\"k2\"}}\n");
	free(out);
	gfs_graph_close(g);
}
END_TEST

START_TEST(constraints_fail_naming_line_and_leave_head)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d;

	ck_assert_msg(load_text(g, PEOPLE, GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	/* unique against the store */
	ck_assert_int_eq(load_text(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"eve\",\"name\":\"E\",\"email\":\"a@x\"}}\n",
				   GFS_LOAD_MERGE, &d, NULL), GFS_ECONFLICT);
	ck_assert_msg(strstr(d.msg, "'alice'"), "%s", d.msg);
	/* unique within the file */
	ck_assert_int_eq(load_text(g,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"x1\",\"name\":\"E\",\"email\":\"q@x\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"x2\",\"name\":\"E\",\"email\":\"q@x\"}}\n",
		GFS_LOAD_MERGE, &d, NULL), GFS_ECONFLICT);
	ck_assert_msg(strstr(d.msg, "line 2"), "%s", d.msg);
	/* moving alice's email to eve in the same file is fine */
	ck_assert_msg(load_text(g,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"Alice\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"eve\",\"name\":\"E\",\"email\":\"a@x\"}}\n",
		GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	/* dangling endpoint */
	ck_assert_int_eq(load_text(g, "{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"nobody\"}\n",
				   GFS_LOAD_MERGE, &d, NULL), GFS_ECONFLICT);
	ck_assert_msg(strstr(d.msg, "'nobody'") && strstr(d.msg, "line 1"), "%s", d.msg);
	/* endpoint defined in the same file */
	ck_assert_msg(load_text(g,
		"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"zoe\",\"data\":{\"id\":\"k9\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"zoe\",\"name\":\"Zoe\"}}\n",
		GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	/* @card(0..2): alice already knows bob and zoe */
	ck_assert_int_eq(load_text(g, "{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"eve\"}\n",
				   GFS_LOAD_MERGE, &d, NULL), GFS_ECONFLICT);
	ck_assert_msg(strstr(d.msg, "@card") && strstr(d.msg, "'alice'"), "%s", d.msg);
	/* @unique(src, dst) */
	ck_assert_int_eq(load_text(g, "{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"id\":\"k3\"}}\n",
				   GFS_LOAD_MERGE, &d, NULL), GFS_ECONFLICT);
	/* type error from the codec */
	ck_assert_int_eq(load_text(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"q\",\"name\":\"Q\",\"age\":\"old\"}}\n",
				   GFS_LOAD_MERGE, &d, NULL), GFS_EDATA);
	ck_assert_msg(strstr(d.msg, "line 1") && strstr(d.msg, "age"), "%s", d.msg);
	/* @range */
	ck_assert_int_eq(load_text(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"q\",\"name\":\"Q\",\"age\":151}}\n",
				   GFS_LOAD_MERGE, &d, NULL), GFS_EDATA);
	ck_assert_uint_eq(gfs_manifest_head_version(gfs_graph_manifest(g)), 4);
	gfs_graph_close(g);
}
END_TEST

START_TEST(empty_and_overlong_input_are_refused)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d;
	size_t big = ((size_t)32 << 20) + 100;
	char *line = malloc(big + 1);

	ck_assert_int_eq(load_text(g, "", GFS_LOAD_MERGE, &d, NULL), GFS_EDATA);
	ck_assert_msg(strstr(d.msg, "empty"), "%s", d.msg);
	ck_assert_int_eq(load_text(g, "\n  \n", GFS_LOAD_MERGE, &d, NULL), GFS_EDATA);
	memset(line, 'x', big);
	line[big] = '\0';
	memcpy(line, "{\"type\":\"Doc\",\"data\":{\"text\":\"", 30);
	ck_assert_int_eq(load_text(g, line, GFS_LOAD_MERGE, &d, NULL), GFS_ETOOLONG);
	ck_assert_msg(strstr(d.msg, "line 1") && strstr(d.msg, "32 MiB"), "%s", d.msg);
	free(line);
	ck_assert_uint_eq(gfs_manifest_head_version(gfs_graph_manifest(g)), 1);
	gfs_graph_close(g);
}
END_TEST

START_TEST(export_round_trips_into_a_fresh_store)
{
	struct gfs_graph *g = open_g(), *g2;
	struct gfs_diag d = {{0}};
	char dir2[PATH_MAX + 8], *a, *b;

	ck_assert_msg(load_text(g, PEOPLE, GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	ck_assert_msg(load_text(g, "{\"type\":\"Doc\",\"data\":{\"text\":\"hello\"}}\n"
				   "{\"edge\":\"Wrote\",\"from\":\"bob\",\"to\":\"D1\",\"data\":{}}\n",
				GFS_LOAD_MERGE, &d, NULL) == GFS_ECONFLICT, "unknown doc id accepted");
	ck_assert_msg(load_text(g, "{\"type\":\"Doc\",\"data\":{\"id\":\"D1\",\"text\":\"hello\"}}\n"
				   "{\"type\":\"Doc\",\"data\":{\"text\":\"generated id\"}}\n"
				   "{\"edge\":\"Wrote\",\"from\":\"bob\",\"to\":\"D1\"}\n",
				GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	a = export_text(g, 0, NULL);
	snprintf(dir2, sizeof dir2, "%s2", dir);
	ck_assert_int_eq(gfs_graph_init(dir2, SCHEMA, strlen(SCHEMA), "t.pg", "test", &d), 0);
	ck_assert_int_eq(gfs_graph_open(dir2, 0, &g2, &d), 0);
	ck_assert_msg(load_text(g2, a, GFS_LOAD_APPEND, &d, NULL) == 0, "%s", d.msg);
	b = export_text(g2, 0, NULL);
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	gfs_graph_close(g2);
	gfs_graph_close(g);
	tu_rmrf(dir2);
}
END_TEST

/* Two processes load at once; both must publish, in some order. */
static void racer(int rfd, const char *text)
{
	struct gfs_graph *g;
	struct gfs_diag d = {{0}};
	char c;

	if (gfs_graph_open(dir, 0, &g, &d))
		_exit(10);
	if (read(rfd, &c, 1) != 1) /* barrier: the parent releases both */
		_exit(11);
	int rc = load_text(g, text, GFS_LOAD_MERGE, &d, NULL);
	if (rc)
		fprintf(stderr, "racer: %s\n", d.msg);
	gfs_graph_close(g);
	_exit(rc ? 12 : 0);
}

static void race(const char *t1, const char *t2)
{
	int p[2], st;
	pid_t a, b;

	ck_assert_int_eq(pipe(p), 0);
	if (!(a = fork()))
		racer(p[0], t1);
	if (!(b = fork()))
		racer(p[0], t2);
	ck_assert_int_eq(write(p[1], "ab", 2), 2);
	ck_assert_int_eq(waitpid(a, &st, 0), a);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "racer a: %d", st);
	ck_assert_int_eq(waitpid(b, &st, 0), b);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "racer b: %d", st);
	close(p[0]);
	close(p[1]);
}

START_TEST(two_processes_loading_the_same_table_both_publish)
{
	struct gfs_graph *g;
	char *out;

	race("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"name\":\"A\"}}\n",
	     "{\"type\":\"Person\",\"data\":{\"slug\":\"b\",\"name\":\"B\"}}\n");
	race("{\"type\":\"Person\",\"data\":{\"slug\":\"c\",\"name\":\"C\"}}\n",
	     "{\"type\":\"Doc\",\"data\":{\"id\":\"d\",\"text\":\"D\"}}\n");
	g = open_g();
	ck_assert_uint_eq(gfs_manifest_head_version(gfs_graph_manifest(g)), 5);
	out = export_text(g, 0, NULL);
	ck_assert_str_eq(out,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"name\":\"A\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"b\",\"name\":\"B\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"c\",\"name\":\"C\"}}\n"
		"{\"type\":\"Doc\",\"data\":{\"id\":\"d\",\"text\":\"D\"}}\n");
	free(out);
	gfs_graph_close(g);
}
END_TEST

static void count_problem(const char *msg, void *arg)
{
	(void)msg;
	(*(int *)arg)++;
}

START_TEST(fsck_detects_corrupt_and_missing_table_versions)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d;
	unsigned problems = 9;
	int seen = 0, fd;
	char path[PATH_MAX + 64];
	struct stat st;
	unsigned char byte;

	ck_assert_msg(load_text(g, PEOPLE, GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	ck_assert_int_eq(gfs_graph_fsck(g, count_problem, &seen, &problems), 0);
	ck_assert_uint_eq(problems, 0);
	/* flip one byte in the middle of node:Person version 2 */
	snprintf(path, sizeof path, "%s/tables/node:Person/2", dir);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	fstat(fd, &st);
	ck_assert_int_eq(pread(fd, &byte, 1, st.st_size / 2), 1);
	byte ^= 0x40;
	ck_assert_int_eq(pwrite(fd, &byte, 1, st.st_size / 2), 1);
	close(fd);
	ck_assert_int_eq(gfs_graph_fsck(g, count_problem, &seen, &problems), 0);
	ck_assert_uint_ge(problems, 1);
	/* a missing version file */
	snprintf(path, sizeof path, "%s/tables/edge:Knows/2", dir);
	ck_assert_int_eq(unlink(path), 0);
	seen = 0;
	ck_assert_int_eq(gfs_graph_fsck(g, count_problem, &seen, &problems), 0);
	ck_assert_uint_ge(problems, 2);
	gfs_graph_close(g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("load");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, merge_load_then_export_is_canonical_and_sorted);
	tcase_add_test(tc, merge_upserts_and_keeps_rows_not_in_file_last_line_wins);
	tcase_add_test(tc, append_rejects_existing_and_repeated_ids);
	tcase_add_test(tc, overwrite_replaces_only_mentioned_tables_and_refuses_dangling_edges);
	tcase_add_test(tc, constraints_fail_naming_line_and_leave_head);
	tcase_add_test(tc, empty_and_overlong_input_are_refused);
	tcase_add_test(tc, export_round_trips_into_a_fresh_store);
	tcase_add_test(tc, two_processes_loading_the_same_table_both_publish);
	tcase_add_test(tc, fsck_detects_corrupt_and_missing_table_versions);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
