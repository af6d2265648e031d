/* check_gc.c - gc's plan and its invariants (docs/branches-design.md
 * §6.3; docs/invariants.md 150, 152, 165-169), on a fresh store per test.
 * After every gc the checker asserts: every kept graph version's closure
 * (every table version its pins read, through parent and content_of) is
 * on disk and verifies, and exports as it did before; a removed version
 * keeps its time and op; fsck is clean. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph.h"
#include "lock.h"
#include "retain.h"
#include "testutil.h"

static const char SCHEMA[] =
	"node Person { slug: String @key  name: String }\n"
	"node Doc { title: String @key }\n";

#define PERSON "node:Person"
#define MAXV 16

#include "teststore.h"

static char *exports[MAXV];     /* export of each graph version before gc */
static uint64_t times[MAXV];

static void load(struct gfs_graph *g, const char *text)
{
	struct gfs_load_opts o = { .source = "t.jsonl" };
	struct gfs_load_result res;
	struct gfs_diag d = {{0}};
	int fd = memfd_create("in", MFD_CLOEXEC);

	ck_assert_int_eq(gfs_write_all(fd, text, strlen(text)), 0);
	lseek(fd, 0, SEEK_SET);
	ck_assert_msg(gfs_graph_load(g, fd, &o, &res, &d) == 0, "load: %s", d.msg);
	close(fd);
}

/* n loads that each change alice: a chain of n versions of node:Person. */
static void chain(struct gfs_graph *g, int n)
{
	char line[160];

	for (int i = 0; i < n; i++) {
		snprintf(line, sizeof line,
			 "{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"A%d\"}}\n"
			 "{\"type\":\"Person\",\"data\":{\"slug\":\"p%d\",\"name\":\"P\"}}\n", i, i);
		load(g, line);
	}
}

static uint64_t head(struct gfs_graph *g)
{
	return gfs_manifest_head_version(gfs_graph_manifest(g));
}

static void remember(struct gfs_graph *g)
{
	for (uint64_t v = 1; v <= head(g) && v < MAXV; v++) {
		struct gfs_gv *gv;

		free(exports[v]);
		exports[v] = export_text(g, v, NULL);
		ck_assert_int_eq(gfs_manifest_get(gfs_graph_manifest(g), v, &gv), 0);
		times[v] = gv->time_ns;
		gfs_gv_free(gv);
	}
}

/* The invariants after a gc; returns how many versions are removed. */
static unsigned check_invariants(struct gfs_graph *g)
{
	struct gfs_tstore *ts = gfs_graph_tables(g);
	unsigned removed = 0, problems = 0;

	for (uint64_t v = 1; v <= head(g); v++) {
		struct gfs_gv *gv;
		struct gfs_diag d = {{0}};

		ck_assert_int_eq(gfs_manifest_get_any(gfs_graph_manifest(g), v, &gv), 0);
		if (v < MAXV && times[v])
			ck_assert_msg(gv->time_ns == times[v], "version %llu changed its time",
				      (unsigned long long)v);
		if (gv->removed) {
			removed++;
			gfs_gv_free(gv);
			ck_assert_int_eq(gfs_manifest_get(gfs_graph_manifest(g), v, &gv), -ENOENT);
			continue;
		}
		for (size_t i = 0; i < gv->n_pins; i++) {
			struct gfs_vset s = { 0 };

			ck_assert_msg(gfs_tclosure_add(g, gv->pins[i].table, gv->pins[i].version, &s, &d) == 0,
				      "kept version %llu: %s", (unsigned long long)v, d.msg);
			for (uint32_t k = 1; k < s.cap; k++)
				if (gfs_vset_has(&s, k))
					ck_assert_msg(gfs_tver_verify(ts, gv->pins[i].table, k, &d) == 0,
						      "kept version %llu needs %s %u: %s",
						      (unsigned long long)v, gv->pins[i].table, k, d.msg);
			gfs_vset_release(&s);
		}
		gfs_gv_free(gv);
		if (v < MAXV && exports[v]) {
			char *now = export_text(g, v, NULL);

			ck_assert_str_eq(now, exports[v]);
			free(now);
		}
	}
	ck_assert_int_eq(gfs_graph_fsck(g, NULL, NULL, &problems), 0);
	ck_assert_uint_eq(problems, 0);
	return removed;
}

static bool exists(uint32_t v)
{
	char path[PATH_MAX * 2];
	struct stat st;

	snprintf(path, sizeof path, "%s/tables/%s/%u", dir, PERSON, v);
	return stat(path, &st) == 0;
}

static void gc(struct gfs_graph *g, uint64_t keep_last, struct gfs_gc_result *r)
{
	struct gfs_gc_opts o = { .keep_last = keep_last };
	struct gfs_diag d = {{0}};

	ck_assert_msg(gfs_graph_gc(g, &o, r, &d) == 0, "gc: %s", d.msg);
}

/* Without compaction the kept head still reads its whole chain: gc
 * removes graph versions but may unlink none of the chain. */
START_TEST(closure_is_kept)
{
	struct gfs_graph *g = open_g();
	struct gfs_gc_result r;

	chain(g, 5);
	remember(g);
	gc(g, 1, &r);
	ck_assert_uint_eq(r.n_removed, head(g) - 1);
	for (uint32_t v = 1; v <= 6; v++)
		ck_assert_msg(exists(v), "version %u of the head's chain was unlinked", v);
	ck_assert_uint_eq(check_invariants(g), head(g) - 1);
	gfs_gc_result_release(&r);
	gfs_graph_close(g);
}
END_TEST

/* After compact the old chain is needed by no kept version: gc unlinks
 * it, and only it. */
START_TEST(compacted_chain_is_collected)
{
	struct gfs_graph *g = open_g();
	struct gfs_compact_result cr;
	struct gfs_gc_result r;
	struct gfs_diag d = {{0}};

	chain(g, 5);
	ck_assert_msg(gfs_graph_compact(g, "Person", NULL, NULL, &cr, &d) == 0, "compact: %s", d.msg);
	ck_assert_uint_eq(cr.n_tables, 1);
	ck_assert_uint_eq(cr.tables[0].from, 6);
	ck_assert_uint_eq(cr.tables[0].to, 7);
	remember(g);
	gc(g, 1, &r);
	for (uint32_t v = 1; v <= 6; v++)
		ck_assert_msg(!exists(v), "version %u of the old chain is still there", v);
	ck_assert(exists(7));
	ck_assert_uint_ge(r.n_unlinked, 6);
	ck_assert_uint_gt(r.bytes_freed, 0);
	check_invariants(g);
	gfs_gc_result_release(&r);
	gfs_compact_result_release(&cr);
	gfs_graph_close(g);
}
END_TEST

/* keep-last 2 after compact: the version before the compact is kept, so
 * its chain is too. */
START_TEST(window_keeps_the_chain_of_its_versions)
{
	struct gfs_graph *g = open_g();
	struct gfs_compact_result cr;
	struct gfs_gc_result r;
	struct gfs_diag d = {{0}};

	chain(g, 4);
	ck_assert_int_eq(gfs_graph_compact(g, NULL, NULL, NULL, &cr, &d), 0);
	remember(g);
	gc(g, 2, &r);
	for (uint32_t v = 1; v <= 5; v++)
		ck_assert_msg(exists(v), "version %u, read by a kept version, was unlinked", v);
	check_invariants(g);
	gfs_gc_result_release(&r);
	gfs_compact_result_release(&cr);
	gfs_graph_close(g);
}
END_TEST

/* A version another description holds (a mount's read lock) is kept with
 * its closure; once dropped, the next gc removes it; its time stays. */
START_TEST(a_held_version_is_kept)
{
	struct gfs_graph *g = open_g();
	struct gfs_compact_result cr;
	struct gfs_gc_result r;
	struct gfs_diag d = {{0}};
	int fd;

	chain(g, 4);
	ck_assert_int_eq(gfs_graph_compact(g, NULL, NULL, NULL, &cr, &d), 0);
	remember(g);
	ck_assert_int_eq(gfs_holds_open(dir, &fd), 0);
	ck_assert_int_eq(gfs_hold_take(fd, 3), 0);
	gc(g, 1, &r);
	ck_assert_uint_eq(r.n_held, 1);
	ck_assert_uint_eq(r.held[0], 3);
	ck_assert(exists(3) && exists(2) && exists(1));
	check_invariants(g);
	gfs_gc_result_release(&r);
	ck_assert_int_eq(gfs_hold_drop(fd, 3), 0);
	gc(g, 1, &r);
	ck_assert_uint_eq(r.n_removed, 1);
	ck_assert_uint_eq(r.removed[0], 3);
	ck_assert(!exists(3));
	ck_assert_uint_eq(check_invariants(g), head(g) - 1);
	gfs_gc_result_release(&r);
	close(fd);
	gfs_compact_result_release(&cr);
	gfs_graph_close(g);
}
END_TEST

/* A probe sees another description's hold, never its own fence. */
START_TEST(probe_sees_holds)
{
	bool held = true;
	int a, b;

	ck_assert_int_eq(gfs_holds_open(dir, &a), 0);
	ck_assert_int_eq(gfs_holds_open(dir, &b), 0);
	ck_assert_int_eq(gfs_hold_probe(b, 7, &held), 0);
	ck_assert(!held);
	ck_assert_int_eq(gfs_hold_take(a, 7), 0);
	ck_assert_int_eq(gfs_hold_probe(b, 7, &held), 0);
	ck_assert(held);
	ck_assert_int_eq(gfs_hold_fence(b, 7), -EWOULDBLOCK);
	ck_assert_int_eq(gfs_hold_probe(b, 8, &held), 0);
	ck_assert(!held);
	close(a); /* the kernel drops a's lock with its description */
	ck_assert_int_eq(gfs_hold_probe(b, 7, &held), 0);
	ck_assert(!held);
	close(b);
}
END_TEST

/* The commit point refuses to tombstone the head. */
START_TEST(gc_commit_refuses_the_head)
{
	struct gfs_graph *g = open_g();
	struct gfs_sidecar sc, *back;
	struct gfs_diag d = {{0}};
	uint64_t h;

	chain(g, 2);
	h = head(g);
	memset(&sc, 0, sizeof sc);
	ck_assert_int_eq(gfs_ulid_new(sc.op_id), 0);
	snprintf(sc.kind, sizeof sc.kind, "gc");
	snprintf(sc.actor, sizeof sc.actor, "test");
	ck_assert_int_eq(gfs_manifest_sidecar_put(gfs_graph_manifest(g), &sc), 0);
	ck_assert_int_eq(gfs_manifest_sidecar_get(gfs_graph_manifest(g), sc.op_id, &back), 0);
	ck_assert_int_eq(gfs_manifest_gc_commit(gfs_graph_manifest(g), sc.op_id, back->rev, &h, 1, &d),
			 GFS_ECAS);
	ck_assert_int_eq(gfs_manifest_gc_commit(gfs_graph_manifest(g), sc.op_id, back->rev + 1, NULL, 0, &d),
			 GFS_ECAS);
	gfs_sidecar_free(back);
	ck_assert_int_eq(gfs_manifest_sidecar_get(gfs_graph_manifest(g), sc.op_id, &back), 0);
	ck_assert(!back->confirmed);
	gfs_sidecar_free(back);
	gfs_graph_close(g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gc");
	TCase *tc = tcase_create("gc");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, closure_is_kept);
	tcase_add_test(tc, compacted_chain_is_collected);
	tcase_add_test(tc, window_keeps_the_chain_of_its_versions);
	tcase_add_test(tc, a_held_version_is_kept);
	tcase_add_test(tc, probe_sees_holds);
	tcase_add_test(tc, gc_commit_refuses_the_head);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
