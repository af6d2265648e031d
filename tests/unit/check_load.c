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
#include "table_int.h"
#include "testutil.h"

static const char SCHEMA[] =
	"node Person { slug: String @key  name: String  age: I32?  email: String? @unique\n"
	"  @range(age, 0..150) }\n"
	"node Doc { text: String }\n"
	"edge Knows: Person -> Person @card(0..2) { since: Date? @unique(src, dst) }\n"
	"edge Wrote: Person -> Doc\n";

#include "teststore.h"

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

/* ---- bounded-memory paths: spilled builders, long records, varints ----- */

#define BIG_N 400 /* persons */

/* Person i's slug: mostly short, some past 127 bytes (two-byte varint
 * lengths in the loader), one past 16383 (three bytes). */
static void slug_of(struct gfs_buf *b, int i)
{
	size_t pad = i == 7 ? 20000 : i % 50 == 3 ? 200 : 0;

	gfs_buf_appendf(b, "p%04d", i);
	for (size_t k = 0; k < pad; k++)
		gfs_buf_appendc(b, 'x');
}

static void person_line(struct gfs_buf *b, int i, const char *name)
{
	gfs_buf_appendf(b, "{\"type\":\"Person\",\"data\":{\"slug\":\"");
	slug_of(b, i);
	gfs_buf_appendf(b, "\",\"name\":\"%s%d\",\"email\":\"e%d@x\"}}\n", name, i, i);
}

/* Knows k<i>.<j>: p_i -> p_(i+1+6j) (two per source, within @card). */
static void knows_line(struct gfs_buf *b, int i, int j, int shift)
{
	gfs_buf_appendf(b, "{\"edge\":\"Knows\",\"from\":\"");
	slug_of(b, i);
	gfs_buf_appendf(b, "\",\"to\":\"");
	slug_of(b, (i + 1 + 6 * j + shift) % BIG_N);
	gfs_buf_appendf(b, "\",\"data\":{\"id\":\"k%04d.%d\"}}\n", i, j);
}

/* Line number n of the big file; the rows come in a scrambled order. */
static void big_line(struct gfs_buf *b, int n)
{
	int i = n % BIG_N, kind = n / BIG_N;

	if (kind == 0)
		person_line(b, i, "early");
	else if (kind < 3)
		knows_line(b, i, kind - 1, 0);
	else if (kind == 3 && i < 20) {
		gfs_buf_appendf(b, "{\"type\":\"Doc\",\"data\":{\"id\":\"D%02d\",\"text\":\"", i);
		for (int k = 0; k < (i == 5 ? 1200000 : 10); k++) /* a line past a sort run's 64 KiB read buffer */
			gfs_buf_appendc(b, (char)('a' + k % 26));
		gfs_buf_appendf(b, "\"}}\n");
	} else if (kind == 3) {
		gfs_buf_appendf(b, "{\"edge\":\"Wrote\",\"from\":\"");
		slug_of(b, i);
		gfs_buf_appendf(b, "\",\"to\":\"D%02d\",\"data\":{\"id\":\"w%04d\"}}\n", i % 20, i);
	} else if (i < 40) {
		person_line(b, i * 3, "late"); /* merge: the last line of an id wins */
	}
}

static char *big_text(void)
{
	struct gfs_buf b;
	int total = 5 * BIG_N;

	gfs_buf_init(&b);
	for (int n = 0; n < total; n++)
		big_line(&b, (int)(((long)n * 7919) % total));
	return b.p;
}

/* Moves half the Knows edges to other targets (existing rows change their
 * SRC/DST entries) and adds Wrote edges to shared pairs (PAIR_FIRST). */
static char *moved_text(void)
{
	struct gfs_buf b;

	gfs_buf_init(&b);
	for (int i = BIG_N - 1; i >= 0; i -= 2)
		knows_line(&b, i, 0, 2);
	for (int i = 0; i < 60; i++) {
		gfs_buf_appendf(&b, "{\"edge\":\"Wrote\",\"from\":\"");
		slug_of(&b, i % 3);
		gfs_buf_appendf(&b, "\",\"to\":\"D%02d\",\"data\":{\"id\":\"x%04d\"}}\n", i % 2, i);
	}
	return b.p;
}

/* Loads big, then moved, then overwrites with big into a new store at
 * spill threshold `spill`; *first is the export after the first load,
 * the result the one after the second (version 3).  fsck must be clean. */
static char *big_history(const char *path, size_t spill, char **first)
{
	struct gfs_graph *g;
	struct gfs_diag d = {{0}};
	char *big = big_text(), *moved = moved_text(), *out;
	unsigned problems = 9;

	tbl_spill_bytes = spill;
	ck_assert_int_eq(gfs_graph_init(path, SCHEMA, strlen(SCHEMA), "t.pg", "test", &d), 0);
	ck_assert_int_eq(gfs_graph_open(path, 0, &g, &d), 0);
	ck_assert_msg(load_text(g, big, GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	*first = export_text(g, 0, NULL);
	ck_assert_msg(load_text(g, moved, GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	ck_assert_msg(load_text(g, *first, GFS_LOAD_OVERWRITE, &d, NULL) == 0, "%s", d.msg);
	out = export_text(g, 0, NULL);
	ck_assert_str_eq(out, *first); /* the overwrite restored the first state */
	free(out);
	out = export_text(g, 3, NULL);
	ck_assert_int_eq(gfs_graph_fsck(g, NULL, NULL, &problems), 0);
	ck_assert_uint_eq(problems, 0);
	gfs_graph_close(g);
	free(big);
	free(moved);
	tbl_spill_bytes = (size_t)8 << 20;
	return out;
}

START_TEST(spilling_builders_and_long_ids_give_the_same_graph)
{
	char d1[PATH_MAX + 8], d2[PATH_MAX + 8], *f1, *f2, *m1, *m2;

	snprintf(d1, sizeof d1, "%sA", dir);
	snprintf(d2, sizeof d2, "%sB", dir);
	m1 = big_history(d1, (size_t)8 << 20, &f1);
	m2 = big_history(d2, 200, &f2); /* a run every put or two */
	ck_assert(strcmp(f1, f2) == 0);
	ck_assert(strcmp(m1, m2) == 0);
	ck_assert(strstr(f1, "\"name\":\"late6\"") && !strstr(f1, "\"name\":\"early6\""));
	ck_assert(strstr(m1, "\"id\":\"x0059\""));
	ck_assert_uint_eq(strlen(f1) > 1200000, 1);
	free(f1);
	free(f2);
	free(m1);
	free(m2);
	tu_rmrf(d1);
	tu_rmrf(d2);
}
END_TEST

/* Consecutive edges share an endpoint lookup; a missing one is still
 * named, whether it comes first in its run or after a found one. */
START_TEST(endpoint_runs_still_report_the_missing_node)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d;

	ck_assert_msg(load_text(g, PEOPLE, GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	ck_assert_int_eq(load_text(g,
		"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"id\":\"k1\"}}\n"
		"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"zed\",\"data\":{\"id\":\"k2\"}}\n",
		GFS_LOAD_MERGE, &d, NULL), GFS_ECONFLICT);
	ck_assert_msg(strstr(d.msg, "line 2") && strstr(d.msg, "target") && strstr(d.msg, "'zed'"), "%s", d.msg);
	ck_assert_int_eq(load_text(g,
		"{\"edge\":\"Knows\",\"from\":\"carol\",\"to\":\"bob\",\"data\":{\"id\":\"k3\"}}\n"
		"{\"edge\":\"Knows\",\"from\":\"carol\",\"to\":\"alice\",\"data\":{\"id\":\"k4\"}}\n",
		GFS_LOAD_MERGE, &d, NULL), GFS_ECONFLICT);
	ck_assert_msg(strstr(d.msg, "line 1") && strstr(d.msg, "source") && strstr(d.msg, "'carol'"), "%s", d.msg);
	gfs_graph_close(g);
}
END_TEST

/* Each validation message, in full: the sort-merge validation (src/load.c)
 * keeps the formats of the in-memory one.  check_load runs once with the
 * default budget and once with GRAPHFS_LOAD_MEM_BYTES=4096
 * (tests/load_spill.sh), so both paths are held to them. */
static void expect_conflict(struct gfs_graph *g, const char *text,
			    enum gfs_load_mode mode, const char *msg)
{
	struct gfs_diag d;

	ck_assert_int_eq(load_text(g, text, mode, &d, NULL), GFS_ECONFLICT);
	ck_assert_str_eq(d.msg, msg);
}

START_TEST(validation_messages_name_line_type_id_and_value)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d;

	ck_assert_msg(load_text(g, PEOPLE, GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	expect_conflict(g,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"x\",\"name\":\"X\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"x\",\"name\":\"Y\"}}\n",
		GFS_LOAD_APPEND, "line 2: Person 'x': id already given on line 1 (append inserts each id once)");
	expect_conflict(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"name\":\"B\"}}\n",
		GFS_LOAD_APPEND, "line 1: Person 'bob': id already exists (append mode inserts only new ids; use --mode merge to update)");
	expect_conflict(g,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"x1\",\"name\":\"E\",\"email\":\"q@x\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"x3\",\"name\":\"E\",\"email\":\"r@x\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"x2\",\"name\":\"E\",\"email\":\"q@x\"}}\n",
		GFS_LOAD_MERGE, "line 3: Person 'x2': unique value [\"q@x\"] is also used by 'x1' on line 1");
	expect_conflict(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"eve\",\"name\":\"E\",\"email\":\"a@x\"}}\n",
		GFS_LOAD_MERGE, "line 1: Person 'eve': unique value [\"a@x\"] already belongs to 'alice'");
	expect_conflict(g, "\n{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"nobody\"}\n",
		GFS_LOAD_MERGE, "line 2: Knows 'alice' -> 'nobody': target node Person 'nobody' does not exist (not in this file nor in the store)");
	expect_conflict(g, "{\"edge\":\"Wrote\",\"from\":\"ghost\",\"to\":\"d1\",\"data\":{\"id\":\"w1\"}}\n"
		"{\"type\":\"Doc\",\"data\":{\"id\":\"d1\",\"text\":\"t\"}}\n",
		GFS_LOAD_MERGE, "line 1: Wrote 'w1' ('ghost' -> 'd1'): source node Person 'ghost' does not exist (not in this file nor in the store)");
	expect_conflict(g,
		"{\"edge\":\"Knows\",\"from\":\"bob\",\"to\":\"alice\",\"data\":{\"id\":\"k5\"}}\n"
		"{\"edge\":\"Knows\",\"from\":\"bob\",\"to\":\"bob\",\"data\":{\"id\":\"k6\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"zz\",\"name\":\"Z\"}}\n"
		"{\"edge\":\"Knows\",\"from\":\"bob\",\"to\":\"zz\",\"data\":{\"id\":\"k7\"}}\n",
		GFS_LOAD_MERGE, "Knows: source Person 'bob' would have 3 edges, but @card(0..2) allows fewer");
	/* Removing a node that an edge leaves names the node, not the edge's
	 * target (the in-memory version printed the target twice). */
	expect_conflict(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"name\":\"Bob\"}}\n",
		GFS_LOAD_OVERWRITE, "overwrite removes Person 'alice', but edge Knows 'k1' (alice -> bob) still points at it; delete or overwrite that edge in the same load");
	expect_conflict(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"A\"}}\n",
		GFS_LOAD_OVERWRITE, "overwrite removes Person 'bob', but edge Knows 'k1' (alice -> bob) still points at it; delete or overwrite that edge in the same load");
	ck_assert_uint_eq(gfs_manifest_head_version(gfs_graph_manifest(g)), 2);
	gfs_graph_close(g);
}
END_TEST

/* Several bad rows: the checks that name a line name the earliest one
 * (and the source before the target of one edge), whatever order the
 * sorted streams meet them in. */
START_TEST(the_earliest_bad_line_is_named)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d;

	ck_assert_msg(load_text(g, PEOPLE, GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	expect_conflict(g,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"zz\",\"name\":\"1\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"aa\",\"name\":\"2\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"zz\",\"name\":\"3\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"zz\",\"name\":\"4\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"aa\",\"name\":\"5\"}}\n",
		GFS_LOAD_APPEND, "line 3: Person 'zz': id already given on line 1 (append inserts each id once)");
	expect_conflict(g,
		"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"zed\",\"data\":{\"id\":\"k5\"}}\n"
		"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"abe\",\"data\":{\"id\":\"k6\"}}\n",
		GFS_LOAD_MERGE, "line 1: Knows 'k5' ('alice' -> 'zed'): target node Person 'zed' does not exist (not in this file nor in the store)");
	expect_conflict(g,
		"{\"edge\":\"Knows\",\"from\":\"bob\",\"to\":\"abe\",\"data\":{\"id\":\"k6\"}}\n"
		"{\"edge\":\"Knows\",\"from\":\"zed\",\"to\":\"abe\",\"data\":{\"id\":\"k5\"}}\n",
		GFS_LOAD_MERGE, "line 1: Knows 'k6' ('bob' -> 'abe'): target node Person 'abe' does not exist (not in this file nor in the store)");
	expect_conflict(g,
		"{\"edge\":\"Knows\",\"from\":\"zed\",\"to\":\"abe\",\"data\":{\"id\":\"k5\"}}\n",
		GFS_LOAD_MERGE, "line 1: Knows 'k5' ('zed' -> 'abe'): source node Person 'zed' does not exist (not in this file nor in the store)");
	expect_conflict(g,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"x1\",\"name\":\"E\",\"email\":\"a@y\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"x2\",\"name\":\"E\",\"email\":\"b@y\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"x3\",\"name\":\"E\",\"email\":\"b@y\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"x4\",\"name\":\"E\",\"email\":\"a@y\"}}\n",
		GFS_LOAD_MERGE, "line 3: Person 'x3': unique value [\"b@y\"] is also used by 'x2' on line 2");
	expect_conflict(g,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"zo\",\"name\":\"E\",\"email\":\"a@x\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"an\",\"name\":\"E\",\"email\":\"a@x\"}}\n",
		GFS_LOAD_MERGE, "line 2: Person 'an': unique value [\"a@x\"] is also used by 'zo' on line 1");
	expect_conflict(g,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"zo\",\"name\":\"E\",\"email\":\"a@x\"}}\n"
		"{\"type\":\"Person\",\"data\":{\"slug\":\"an\",\"name\":\"E\"}}\n",
		GFS_LOAD_MERGE, "line 1: Person 'zo': unique value [\"a@x\"] already belongs to 'alice'");
	gfs_graph_close(g);
}
END_TEST

/* @card counts what the load leaves: a pinned edge the file moves to
 * another source no longer counts for its old one, and one it rewrites
 * counts once. */
START_TEST(card_counts_moved_and_rewritten_edges_once)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d;

	ck_assert_msg(load_text(g, PEOPLE, GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	ck_assert_msg(load_text(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"cy\",\"name\":\"C\"}}\n"
		"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"cy\",\"data\":{\"id\":\"k2\"}}\n",
		GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	/* alice has k1, k2 (the maximum); k1 moves to bob, k3 is new: 2 */
	ck_assert_msg(load_text(g,
		"{\"edge\":\"Knows\",\"from\":\"bob\",\"to\":\"alice\",\"data\":{\"id\":\"k1\"}}\n"
		"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"alice\",\"data\":{\"id\":\"k3\"}}\n"
		"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"cy\",\"data\":{\"id\":\"k2\",\"since\":\"2021-01-01\"}}\n",
		GFS_LOAD_MERGE, &d, NULL) == 0, "%s", d.msg);
	/* now alice has k2, k3: one more is too many */
	expect_conflict(g, "{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"id\":\"k4\"}}\n",
		GFS_LOAD_MERGE, "Knows: source Person 'alice' would have 3 edges, but @card(0..2) allows fewer");
	gfs_graph_close(g);
}
END_TEST

/* A store's worth of rows through a 4 KiB budget: hundreds of runs, group
 * merges, duplicates across runs; the graph equals the one loaded in
 * memory, and the same errors come out. */
static char *many_rows(unsigned n, unsigned salt)
{
	struct gfs_buf b;

	gfs_buf_init(&b);
	for (unsigned i = 0; i < n; i++) {
		unsigned k = (i * 7919u + salt) % (n / 2); /* each id about twice */
		ck_assert_int_eq(gfs_buf_appendf(&b,
			"{\"type\":\"Person\",\"data\":{\"slug\":\"p%05u\",\"name\":\"v%u\",\"email\":\"m%05u.%u@x\"}}\n"
			"{\"edge\":\"Knows\",\"from\":\"p%05u\",\"to\":\"p%05u\",\"data\":{\"id\":\"k%05u\"}}\n",
			k, i, k, i, k, (k * 13u) % (n / 2), k), 0);
	}
	return b.p;
}

START_TEST(tiny_budget_spills_and_gives_the_same_graph)
{
	struct gfs_load_opts o = { .mode = GFS_LOAD_MERGE, .source = "many.jsonl" };
	struct gfs_load_result res[2];
	struct gfs_diag d = {{0}};
	char *text = many_rows(3000, 5), *exp[2], msg[2][sizeof d.msg];

	for (int pass = 0; pass < 2; pass++) {
		struct gfs_graph *g;
		char sub[PATH_MAX + 16];
		int fd = memfd_create("in", MFD_CLOEXEC);
		snprintf(sub, sizeof sub, "%s%d", dir, pass);
		ck_assert_msg(gfs_graph_init(sub, SCHEMA, strlen(SCHEMA), "t.pg", "test", &d) == 0, "%s", d.msg);
		ck_assert_msg(gfs_graph_open(sub, 0, &g, &d) == 0, "%s", d.msg);
		ck_assert_int_eq(setenv("GRAPHFS_LOAD_MEM_BYTES", pass ? "4096" : "67108864", 1), 0);
		ck_assert_int_eq(gfs_write_all(fd, text, strlen(text)), 0);
		lseek(fd, 0, SEEK_SET);
		ck_assert_msg(gfs_graph_load(g, fd, &o, &res[pass], &d) == 0, "%s", d.msg);
		close(fd);
		exp[pass] = export_text(g, 0, NULL);
		/* the same error either way: a second line of an id in append */
		ck_assert_int_eq(load_text(g, text, GFS_LOAD_APPEND, &d, NULL), GFS_ECONFLICT);
		snprintf(msg[pass], sizeof msg[pass], "%s", d.msg);
		gfs_graph_close(g);
	}
	ck_assert_uint_eq(res[0].sort_runs, 0);
	ck_assert_uint_gt(res[1].sort_runs, 64); /* past GFS_XSORT_FANIN: group merges */
	ck_assert_uint_eq(res[0].rows_put, res[1].rows_put);
	ck_assert_uint_eq(res[1].rows_put, 3000);
	ck_assert_str_eq(exp[0], exp[1]);
	ck_assert_str_eq(msg[0], msg[1]);
	ck_assert_str_eq(msg[0], "line 3001: Person 'p00005': id already given on line 1 (append inserts each id once)");
	free(exp[0]);
	free(exp[1]);
	free(text);
	unsetenv("GRAPHFS_LOAD_MEM_BYTES");
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
	tcase_add_test(tc, spilling_builders_and_long_ids_give_the_same_graph);
	tcase_add_test(tc, endpoint_runs_still_report_the_missing_node);
	tcase_add_test(tc, validation_messages_name_line_type_id_and_value);
	tcase_add_test(tc, card_counts_moved_and_rewritten_edges_once);
	tcase_add_test(tc, the_earliest_bad_line_is_named);
	tcase_add_test(tc, tiny_budget_spills_and_gives_the_same_graph);
	tcase_add_test(tc, two_processes_loading_the_same_table_both_publish);
	tcase_add_test(tc, fsck_detects_corrupt_and_missing_table_versions);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
