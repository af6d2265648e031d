/* check_recover.c - the recovery sweep's classification and decisions
 * (DESIGN.md §4), each from a state built by hand: a sidecar put through the
 * manifest API and table versions written through the table API, stamped
 * with whatever operation id the case needs.  After every sweep the checker
 * asserts the store invariants (every pin exists; a head above its pin is
 * named by a sidecar). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph.h"
#include "load_int.h"
#include "lock.h"
#include "recover.h"
#include "store_int.h"
#include "testutil.h"

static const char SCHEMA[] =
	"node Person { slug: String @key  name: String }\n"
	"node Doc { title: String @key }\n";

#define PERSON "node:Person"
#define DOC "node:Doc"

#include "teststore.h"

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

static uint32_t pin(struct gfs_graph *g, const char *table)
{
	struct gfs_gv *gv;
	uint32_t v;

	ck_assert_int_eq(gfs_manifest_head(gfs_graph_manifest(g), &gv), 0);
	v = gfs_gv_pin(gv, table);
	gfs_gv_free(gv);
	return v;
}

static uint32_t head(struct gfs_graph *g, const char *table)
{
	uint32_t h;

	ck_assert_int_eq(gfs_table_head(gfs_graph_tables(g), table, &h), 0);
	return h;
}

static struct gfs_tver_info info(struct gfs_graph *g, const char *table, uint32_t v)
{
	struct gfs_tver_info i;
	struct gfs_diag d = {{0}};
	struct gfs_tver *tv;

	ck_assert_msg(gfs_tver_open(gfs_graph_tables(g), table, v, &tv, &d) == 0, "%s", d.msg);
	gfs_tver_info(tv, &i);
	gfs_tver_close(tv);
	return i;
}

/* The whole-table export of version v: a new string, free() it. */
static char *export_of(struct gfs_graph *g, const char *table, uint32_t v)
{
	struct gfs_tver_info i = info(g, table, v);
	struct gfs_diag d = {{0}};
	struct gfs_tver *tv;
	char *buf = calloc(1, i.export_bytes + 1);
	size_t n = 0;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(gfs_tver_open(gfs_graph_tables(g), table, v, &tv, &d), 0);
	ck_assert_int_eq(gfs_tver_read_export(tv, 0, buf, i.export_bytes, &n), 0);
	ck_assert_uint_eq(n, i.export_bytes);
	gfs_tver_close(tv);
	return buf;
}

/* Does version a of table export the same bytes as version b? */
static bool same_content(struct gfs_graph *g, const char *table, uint32_t a,
			 uint32_t b)
{
	char *x = export_of(g, table, a), *y = export_of(g, table, b);
	bool same = !strcmp(x, y);

	free(x);
	free(y);
	return same;
}

/* A version v of table stamped op_id: v-1 plus one row of its own ("v<v>"),
 * so every version's bytes differ and copying the wrong version as a
 * compensation (or publishing the wrong one) fails the content checks. */
static void write_version(struct gfs_graph *g, const char *table, uint32_t v,
			  const char *op_id)
{
	struct gfs_diag d = {{0}};
	struct gfs_tbuild *b;
	struct gfs_tver *parent;
	const char *type = strchr(table, ':') + 1, *key = !strcmp(table, DOC) ? "title" : "slug";
	char id[16], line[160];
	int n = snprintf(id, sizeof id, "v%u", v);
	int len = snprintf(line, sizeof line,
			   "{\"type\":\"%s\",\"data\":{\"%s\":\"%s\"%s}}\n", type,
			   key, id, strcmp(table, DOC) ? ",\"name\":\"written by a test\"" : "");
	struct gfs_rowput r = { .id = id, .id_len = (size_t)n, .line = line,
				.line_len = (size_t)len };

	r.data_off = (uint32_t)(strstr(line, "\"data\":") + 7 - line);
	r.data_len = (uint32_t)(len - 2) - r.data_off; /* up to the outer '}' */
	ck_assert_int_eq(gfs_tver_open(gfs_graph_tables(g), table, v - 1, &parent, &d), 0);
	ck_assert_int_eq(gfs_tbuild_new(gfs_graph_tables(g), table, parent,
					0, 0, &b), 0);
	ck_assert_int_eq(gfs_tbuild_put(b, &r), 0);
	ck_assert_msg(gfs_tbuild_commit(b, v, op_id, &d) == 0, "commit: %s", d.msg);
	gfs_tbuild_free(b);
	gfs_tver_close(parent);
	ck_assert(!same_content(g, table, v - 1, v));
}

/* Arms a sidecar writing `written` (expected = its pin) and reading `read`. */
static void arm(struct gfs_graph *g, char op[GFS_ULID_LEN + 1], const char *written,
		const char *read, bool confirmed)
{
	struct gfs_sc_table t[2];
	struct gfs_sidecar sc;
	size_t n = 0;

	memset(&sc, 0, sizeof sc);
	memset(t, 0, sizeof t);
	ck_assert_int_eq(gfs_ulid_new(op), 0);
	sc.format = GFS_SIDECAR_FORMAT;
	memcpy(sc.op_id, op, sizeof sc.op_id);
	snprintf(sc.kind, sizeof sc.kind, "load");
	snprintf(sc.actor, sizeof sc.actor, "test");
	sc.start_ns = gfs_now_ns();
	if (read) { /* sorted by name: node:Doc < node:Person */
		snprintf(t[n].table, sizeof t[n].table, "%s", read);
		t[n].expected = t[n].post = pin(g, read);
		n++;
	}
	snprintf(t[n].table, sizeof t[n].table, "%s", written);
	t[n].written = true;
	t[n].expected = pin(g, written);
	t[n].post = t[n].expected + 1;
	n++;
	if (n == 2 && strcmp(t[0].table, t[1].table) > 0) {
		struct gfs_sc_table x = t[0];
		t[0] = t[1];
		t[1] = x;
	}
	sc.tables = t;
	sc.n_tables = n;
	ck_assert_int_eq(gfs_manifest_sidecar_put(gfs_graph_manifest(g), &sc), 0);
	if (confirmed)
		ck_assert_int_eq(gfs_manifest_sidecar_confirm(gfs_graph_manifest(g), op), 0);
}

static size_t n_sidecars(struct gfs_graph *g)
{
	struct gfs_sidecar **scs;
	size_t n;

	ck_assert_int_eq(gfs_manifest_sidecar_list(gfs_graph_manifest(g), &scs, &n), 0);
	for (size_t i = 0; i < n; i++)
		gfs_sidecar_free(scs[i]);
	free(scs);
	return n;
}

static size_t n_audits(struct gfs_graph *g, const char *op)
{
	size_t n;

	ck_assert_int_eq(gfs_manifest_audit_count(gfs_graph_manifest(g), op, &n), 0);
	return n;
}

static int last_decision_cb(const struct gfs_audit *a, void *arg)
{
	snprintf(arg, 24, "%s", a->decision);
	return 0;
}

static const char *last_decision(struct gfs_graph *g)
{
	static char dec[24];

	dec[0] = '\0';
	ck_assert_int_eq(gfs_manifest_audit_list(gfs_graph_manifest(g), last_decision_cb, dec), 0);
	return dec;
}

/* The invariant checker: every pin exists, and a head above a pin is named
 * by a sidecar or settled (not an orphan). */
static void check_invariants(struct gfs_graph *g)
{
	const char *tables[] = { PERSON, DOC };

	for (size_t i = 0; i < 2; i++) {
		uint32_t p = pin(g, tables[i]), h = head(g, tables[i]);
		bool settled = false;
		ck_assert_uint_ge(h, p);
		ck_assert_int_eq(gfs_settled_above(g, tables[i], p, h, &settled), 0);
		if (h > p && !settled)
			ck_assert_uint_gt(n_sidecars(g), 0);
	}
}

static int sweep(struct gfs_graph *g, bool wait, struct gfs_recover_report *r,
		 struct gfs_diag *d)
{
	struct gfs_recover_opts o = { .wait = wait, .max_passes = 2 };

	memset(d, 0, sizeof *d);
	return gfs_recover_sweep(g, &o, r, d);
}

START_TEST(unconfirmed_nothing_committed_is_discarded_with_one_audit)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_report r;
	struct gfs_diag d;
	char op[GFS_ULID_LEN + 1];
	uint64_t v0 = gfs_manifest_head_version(gfs_graph_manifest(g));

	arm(g, op, PERSON, NULL, false);
	ck_assert_int_eq(sweep(g, true, &r, &d), 0);
	ck_assert_uint_eq(r.discarded, 1);
	ck_assert_uint_eq(n_sidecars(g), 0);
	ck_assert_uint_eq(n_audits(g, op), 1);
	ck_assert_str_eq(last_decision(g), "discard");
	ck_assert_uint_eq(gfs_manifest_head_version(gfs_graph_manifest(g)), v0);
	check_invariants(g);
	gfs_graph_close(g);
}
END_TEST

START_TEST(unconfirmed_ours_is_rolled_back_by_a_compensation)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_report r;
	struct gfs_diag d;
	char op[GFS_ULID_LEN + 1];
	struct gfs_tver_info i;

	load(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"name\":\"A\"}}\n");
	uint32_t m = pin(g, PERSON);
	arm(g, op, PERSON, NULL, false);
	write_version(g, PERSON, m + 1, op);
	ck_assert_int_eq(sweep(g, true, &r, &d), 0);
	ck_assert_uint_eq(r.rolled_back, 1);
	ck_assert_uint_eq(pin(g, PERSON), m + 2);
	i = info(g, PERSON, m + 2);
	ck_assert(i.compensation);
	ck_assert_uint_eq(i.content_of, m);
	ck_assert_str_eq(i.op_id, op);
	/* the compensation carries m's bytes, not the undone version's */
	ck_assert(same_content(g, PERSON, m + 2, m));
	ck_assert(!same_content(g, PERSON, m + 2, m + 1));
	ck_assert_str_eq(last_decision(g), "roll-back");
	ck_assert_uint_eq(n_audits(g, op), 1);
	/* a second sweep finds nothing to do */
	ck_assert_int_eq(sweep(g, true, &r, &d), 0);
	ck_assert_uint_eq(r.rolled_back + r.discarded + r.gone, 0);
	check_invariants(g);
	gfs_graph_close(g);
}
END_TEST

START_TEST(confirmed_ours_is_rolled_forward)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_report r;
	struct gfs_diag d;
	char op[GFS_ULID_LEN + 1];
	uint32_t m = pin(g, PERSON);

	arm(g, op, PERSON, DOC, false);
	write_version(g, PERSON, m + 1, op);
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(gfs_graph_manifest(g), op), 0);
	ck_assert_int_eq(sweep(g, true, &r, &d), 0);
	ck_assert_uint_eq(r.rolled_forward, 1);
	ck_assert_uint_eq(pin(g, PERSON), m + 1);
	ck_assert(!same_content(g, PERSON, m + 1, m));
	ck_assert_str_eq(last_decision(g), "roll-forward");
	ck_assert_uint_eq(n_audits(g, op), 1);
	check_invariants(g);
	gfs_graph_close(g);
}
END_TEST

START_TEST(confirmed_without_its_version_is_a_violation_and_kept)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_report r;
	struct gfs_diag d;
	char op[GFS_ULID_LEN + 1];

	arm(g, op, PERSON, NULL, true);
	ck_assert_int_eq(sweep(g, false, &r, &d), GFS_EVIOLATION);
	ck_assert_uint_eq(r.violations, 1);
	ck_assert_ptr_nonnull(strstr(d.msg, op));
	ck_assert_ptr_nonnull(strstr(d.msg, PERSON));
	ck_assert_uint_eq(n_sidecars(g), 1);
	ck_assert_uint_eq(n_audits(g, op), 0);
	gfs_graph_close(g);
}
END_TEST

START_TEST(foreign_version_is_a_violation_and_nothing_is_written)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_report r;
	struct gfs_diag d;
	char op[GFS_ULID_LEN + 1], other[GFS_ULID_LEN + 1];
	uint32_t m = pin(g, PERSON);

	arm(g, op, PERSON, NULL, false);
	ck_assert_int_eq(gfs_ulid_new(other), 0);
	write_version(g, PERSON, m + 1, other);
	ck_assert_int_eq(sweep(g, true, &r, &d), GFS_EVIOLATION);
	ck_assert_ptr_nonnull(strstr(d.msg, "foreign"));
	ck_assert_uint_eq(head(g, PERSON), m + 1); /* no compensation written */
	ck_assert_uint_eq(pin(g, PERSON), m);
	ck_assert_uint_eq(n_sidecars(g), 1);
	gfs_graph_close(g);
}
END_TEST

START_TEST(pin_above_head_is_a_violation)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_report r;
	struct gfs_diag d;
	char op[GFS_ULID_LEN + 1];
	struct gfs_sc_table t = { PERSON, true, 1, 5, 0 };
	struct gfs_publish p = { .op = "load", .op_id = "01AAAAAAAAAAAAAAAAAAAAAAAA",
				 .actor = "t", .tables = &t, .n_tables = 1 };

	/* the manifest shows a version that does not exist */
	ck_assert_int_eq(gfs_manifest_publish(gfs_graph_manifest(g), &p, NULL, &d), 0);
	arm(g, op, PERSON, NULL, false);
	ck_assert_int_eq(sweep(g, true, &r, &d), GFS_EVIOLATION);
	ck_assert_ptr_nonnull(strstr(d.msg, "violation"));
	ck_assert_uint_eq(n_sidecars(g), 1);
	gfs_graph_close(g);
}
END_TEST

START_TEST(ours_compensated_is_published_without_a_new_version)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_report r;
	struct gfs_diag d = {{0}};
	char op[GFS_ULID_LEN + 1];
	uint32_t m = pin(g, PERSON);

	arm(g, op, PERSON, NULL, false);
	write_version(g, PERSON, m + 1, op);
	ck_assert_int_eq(gfs_table_write_compensation(gfs_graph_tables(g), PERSON, m + 2, m, op, &d), 0);
	ck_assert_int_eq(sweep(g, true, &r, &d), 0);
	ck_assert_uint_eq(r.rolled_back, 1);
	ck_assert_uint_eq(head(g, PERSON), m + 2);
	ck_assert_uint_eq(pin(g, PERSON), m + 2);
	ck_assert(same_content(g, PERSON, m + 2, m));
	check_invariants(g);
	gfs_graph_close(g);
}
END_TEST

START_TEST(moved_read_pin_keeps_the_sidecar_and_the_sweep_still_returns_0)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_report r;
	struct gfs_diag d;
	char op[GFS_ULID_LEN + 1];
	uint32_t m = pin(g, PERSON);

	arm(g, op, PERSON, DOC, false);
	write_version(g, PERSON, m + 1, op);
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(gfs_graph_manifest(g), op), 0);
	/* the read table moves behind the (expired) lease: another writer
	 * publishes Doc without healing (as a writer on another host would) */
	uint32_t md = pin(g, DOC);
	struct gfs_sc_table t = { DOC, true, md, md + 1, 0 };
	struct gfs_publish p = { .op = "load", .op_id = "01AAAAAAAAAAAAAAAAAAAAAAAA",
				 .actor = "t", .tables = &t, .n_tables = 1 };
	write_version(g, DOC, md + 1, p.op_id);
	ck_assert_int_eq(gfs_manifest_publish(gfs_graph_manifest(g), &p, NULL, &d), 0);
	ck_assert_int_eq(sweep(g, true, &r, &d), 0);
	ck_assert_uint_eq(r.retry_left, 1);
	ck_assert_uint_eq(r.rolled_forward, 0);
	ck_assert_uint_eq(n_sidecars(g), 1);
	ck_assert_uint_eq(n_audits(g, op), 0);
	gfs_graph_close(g);
}
END_TEST

START_TEST(unparseable_sidecar_is_refused_and_kept_and_blocks_orphan_work)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_opts o = { .wait = true, .orphans = true };
	struct gfs_recover_report r;
	struct gfs_diag d = {{0}};
	const char key[] = "01BBBBBBBBBBBBBBBBBBBBBBBB", val[] = "{\"format\":99}";
	char other[GFS_ULID_LEN + 1];
	uint32_t m = pin(g, PERSON);

	ck_assert_int_eq(gfs_manifest_debug_put_raw(gfs_graph_manifest(g), "sidecars", key,
						    strlen(key), val, strlen(val)), 0);
	ck_assert_int_eq(gfs_ulid_new(other), 0);
	write_version(g, PERSON, m + 1, other); /* looks like an orphan */
	ck_assert_int_eq(gfs_recover_sweep(g, &o, &r, &d), 0);
	ck_assert_uint_eq(r.refused, 1);
	ck_assert_uint_eq(r.orphans_compensated, 0);
	ck_assert_ptr_nonnull(strstr(d.msg, key));
	ck_assert_uint_eq(n_sidecars(g), 1);
	ck_assert_uint_eq(pin(g, PERSON), m);
	gfs_graph_close(g);
}
END_TEST

START_TEST(orphan_is_compensated_once_and_a_crashed_compensation_reused)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_opts o = { .wait = true, .orphans = true };
	struct gfs_recover_report r;
	struct gfs_diag d = {{0}};
	char other[GFS_ULID_LEN + 1], comp[GFS_ULID_LEN + 1];
	uint32_t m = pin(g, PERSON), md = pin(g, DOC);

	ck_assert_int_eq(gfs_ulid_new(other), 0);
	write_version(g, PERSON, m + 1, other);
	ck_assert_int_eq(gfs_recover_sweep(g, &o, &r, &d), 0);
	ck_assert_uint_eq(r.orphans_compensated, 1);
	ck_assert_uint_eq(pin(g, PERSON), m + 2);
	ck_assert(info(g, PERSON, m + 2).compensation);
	ck_assert(same_content(g, PERSON, m + 2, m));
	ck_assert(!same_content(g, PERSON, m + 2, m + 1));
	ck_assert_str_eq(last_decision(g), "orphan-compensated");
	/* a compensation of the pin left above an orphan by a crashed pass
	 * is published as is */
	write_version(g, DOC, md + 1, other);
	ck_assert_int_eq(gfs_ulid_new(comp), 0);
	ck_assert_int_eq(gfs_table_write_compensation(gfs_graph_tables(g), DOC, md + 2, md, comp, &d), 0);
	ck_assert_int_eq(gfs_recover_sweep(g, &o, &r, &d), 0);
	ck_assert_uint_eq(r.orphans_compensated, 1);
	ck_assert_uint_eq(head(g, DOC), md + 2);
	ck_assert_uint_eq(pin(g, DOC), md + 2);
	ck_assert(same_content(g, DOC, md + 2, md));
	ck_assert_uint_eq(n_audits(g, comp), 1);
	check_invariants(g);
	gfs_graph_close(g);
}
END_TEST

/* Publishes op's own version of PERSON (m -> m+1) as its writer would. */
static void writer_publish(struct gfs_graph *g, const char *op, uint32_t m)
{
	struct gfs_sc_table t = { .written = true, .expected = m, .post = m + 1 };
	struct gfs_publish p;
	struct gfs_diag d = {{0}};

	snprintf(t.table, sizeof t.table, "%s", PERSON);
	memset(&p, 0, sizeof p);
	p.op = "load";
	p.op_id = op;
	p.actor = "test";
	p.tables = &t;
	p.n_tables = 1;
	p.sidecar = op;
	ck_assert_msg(gfs_manifest_publish(gfs_graph_manifest(g), &p, NULL, &d) == 0, "%s", d.msg);
}

/* The exact recovery publish compares the sidecar it classified: after a
 * confirm in between it fails with GFS_ECAS and writes nothing. */
START_TEST(recovery_publish_fails_if_the_sidecar_changed)
{
	struct gfs_graph *g = open_g();
	struct gfs_sidecar *sc;
	struct gfs_sc_table t = { .written = true };
	struct gfs_publish p;
	struct gfs_audit au;
	struct gfs_diag d = {{0}};
	char op[GFS_ULID_LEN + 1];
	uint64_t v0 = gfs_manifest_head_version(gfs_graph_manifest(g));
	uint32_t m = pin(g, PERSON);

	arm(g, op, PERSON, NULL, false);
	ck_assert_int_eq(gfs_manifest_sidecar_get(gfs_graph_manifest(g), op, &sc), 0);
	ck_assert_uint_ne(sc->rev, 0);
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(gfs_graph_manifest(g), op), 0);
	snprintf(t.table, sizeof t.table, "%s", PERSON);
	t.expected = t.post = m;
	memset(&au, 0, sizeof au);
	snprintf(au.op_id, sizeof au.op_id, "%s", op);
	snprintf(au.decision, sizeof au.decision, "discard");
	memset(&p, 0, sizeof p);
	p.tables = &t;
	p.n_tables = 1;
	p.sidecar = op;
	p.require_sidecar = true;
	p.sidecar_rev = sc->rev;
	p.audit = &au;
	p.no_version = true;
	ck_assert_int_eq(gfs_manifest_publish(gfs_graph_manifest(g), &p, NULL, &d), GFS_ECAS);
	ck_assert_ptr_nonnull(strstr(d.msg, "changed since it was classified"));
	ck_assert_uint_eq(n_sidecars(g), 1);
	ck_assert_uint_eq(n_audits(g, op), 0);
	ck_assert_uint_eq(gfs_manifest_head_version(gfs_graph_manifest(g)), v0);
	gfs_sidecar_free(sc);
	/* re-read, it publishes */
	ck_assert_int_eq(gfs_manifest_sidecar_get(gfs_graph_manifest(g), op, &sc), 0);
	p.sidecar_rev = sc->rev;
	ck_assert_msg(gfs_manifest_publish(gfs_graph_manifest(g), &p, NULL, &d) == 0, "%s", d.msg);
	ck_assert_uint_eq(n_audits(g, op), 1);
	gfs_sidecar_free(sc);
	gfs_graph_close(g);
}
END_TEST

/* A confirmed operation whose compensation a losing sweep left rolls
 * forward (the confirm decides); the compensation above the published
 * version is then settled: not an orphan, and the next writer writes
 * above it. */
START_TEST(confirmed_with_our_compensation_rolls_forward_and_leaves_it_settled)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_opts o = { .wait = true, .orphans = true };
	struct gfs_recover_report r;
	struct gfs_diag d = {{0}};
	char op[GFS_ULID_LEN + 1];
	uint32_t m = pin(g, PERSON);
	bool settled = true;

	arm(g, op, PERSON, NULL, false);
	write_version(g, PERSON, m + 1, op);
	ck_assert_int_eq(gfs_table_write_compensation(gfs_graph_tables(g), PERSON, m + 2, m, op, &d), 0);
	ck_assert_int_eq(gfs_settled_above(g, PERSON, m, m + 2, &settled), 0);
	ck_assert(!settled); /* its sidecar is still there */
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(gfs_graph_manifest(g), op), 0);
	ck_assert_msg(sweep(g, true, &r, &d) == 0, "%s", d.msg);
	ck_assert_uint_eq(r.rolled_forward, 1);
	ck_assert_uint_eq(pin(g, PERSON), m + 1);
	ck_assert(!same_content(g, PERSON, m + 1, m));
	ck_assert_uint_eq(head(g, PERSON), m + 2);
	ck_assert_int_eq(gfs_settled_above(g, PERSON, m + 1, m + 2, &settled), 0);
	ck_assert(settled);
	check_invariants(g);
	/* the orphan pass leaves it alone; the next writer writes m+3 */
	ck_assert_int_eq(gfs_recover_sweep(g, &o, &r, &d), 0);
	ck_assert_uint_eq(r.orphans_compensated, 0);
	ck_assert_uint_eq(pin(g, PERSON), m + 1);
	load(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"b\",\"name\":\"B\"}}\n");
	ck_assert_uint_eq(pin(g, PERSON), m + 3);
	ck_assert_uint_eq(info(g, PERSON, m + 3).parent, m + 1);
	check_invariants(g);
	gfs_graph_close(g);
}
END_TEST

/* A writer that armed above settled versions records post = head+1; a
 * crash then classifies by that number: rolled back at post+1. */
START_TEST(a_sidecar_above_settled_versions_rolls_back_by_its_post)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_report r;
	struct gfs_diag d = {{0}};
	char op[GFS_ULID_LEN + 1], op2[GFS_ULID_LEN + 1];
	uint32_t m = pin(g, PERSON);
	struct gfs_sc_table t[1];
	struct gfs_sidecar sc;

	/* a settled compensation at m+2 over a published m+1 */
	arm(g, op, PERSON, NULL, false);
	write_version(g, PERSON, m + 1, op);
	ck_assert_int_eq(gfs_table_write_compensation(gfs_graph_tables(g), PERSON, m + 2, m, op, &d), 0);
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(gfs_graph_manifest(g), op), 0);
	writer_publish(g, op, m);
	/* a writer above it: expected m+1, post m+3, dies after its version */
	memset(&sc, 0, sizeof sc);
	memset(t, 0, sizeof t);
	ck_assert_int_eq(gfs_ulid_new(op2), 0);
	sc.format = GFS_SIDECAR_FORMAT;
	memcpy(sc.op_id, op2, sizeof sc.op_id);
	snprintf(sc.kind, sizeof sc.kind, "load");
	snprintf(sc.actor, sizeof sc.actor, "test");
	snprintf(t[0].table, sizeof t[0].table, "%s", PERSON);
	t[0].written = true;
	t[0].expected = m + 1;
	t[0].post = m + 3;
	sc.tables = t;
	sc.n_tables = 1;
	ck_assert_int_eq(gfs_manifest_sidecar_put(gfs_graph_manifest(g), &sc), 0);
	write_version(g, PERSON, m + 3, op2);
	ck_assert_msg(sweep(g, true, &r, &d) == 0, "%s", d.msg);
	ck_assert_uint_eq(r.rolled_back, 1);
	ck_assert_uint_eq(pin(g, PERSON), m + 4);
	ck_assert(info(g, PERSON, m + 4).compensation);
	ck_assert(same_content(g, PERSON, m + 4, m + 1));
	ck_assert(!same_content(g, PERSON, m + 4, m + 3));
	check_invariants(g);
	gfs_graph_close(g);
}
END_TEST

START_TEST(try_lock_sweep_leaves_a_held_sidecar_busy)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_report r;
	struct gfs_lockset *ls;
	struct gfs_diag d;
	char op[GFS_ULID_LEN + 1];
	const char *names[] = { PERSON };
	enum gfs_lock_mode modes[] = { GFS_LOCK_EX };

	arm(g, op, PERSON, NULL, false);
	/* a live writer: flock on its own descriptor excludes us in-process too */
	ck_assert_int_eq(gfs_lock_tables(dir, names, modes, 1, GFS_LOCK_WAIT, &ls), 0);
	ck_assert_int_eq(sweep(g, false, &r, &d), 0);
	ck_assert_uint_eq(r.busy, 1);
	ck_assert_uint_eq(n_sidecars(g), 1);
	gfs_lockset_free(ls);
	ck_assert_int_eq(sweep(g, false, &r, &d), 0);
	ck_assert_uint_eq(r.discarded, 1);
	gfs_graph_close(g);
}
END_TEST

START_TEST(heal_resolves_only_sidecars_on_its_tables)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d = {{0}};
	char op_p[GFS_ULID_LEN + 1], op_d[GFS_ULID_LEN + 1];
	const char *mine[] = { PERSON };

	arm(g, op_p, PERSON, NULL, false);
	arm(g, op_d, DOC, NULL, false);
	ck_assert_int_eq(gfs_heal_tables(g, mine, NULL, 1, &d), 0);
	ck_assert_uint_eq(n_audits(g, op_p), 1);
	ck_assert_uint_eq(n_audits(g, op_d), 0);
	ck_assert_uint_eq(n_sidecars(g), 1);
	gfs_graph_close(g);
}
END_TEST

/* Heal-first resolves only sidecars whose locks conflict with the
 * writer's: EX against anything, SH against EX.  A reader of Person does
 * not wait for a live writer of Doc that also reads Person (its locks are
 * held here: waiting for them would hang the test until Check's timeout),
 * but heals a writer of Person; a writer of Person heals both. */
START_TEST(heal_waits_only_for_conflicting_lock_sets)
{
	struct gfs_graph *g = open_g();
	struct gfs_diag d = {{0}};
	char op_r[GFS_ULID_LEN + 1], op_w[GFS_ULID_LEN + 1];
	const char *mine[] = { PERSON };
	const enum gfs_lock_mode sh[] = { GFS_LOCK_SH }, ex[] = { GFS_LOCK_EX };
	const char *live[] = { DOC, PERSON };
	const enum gfs_lock_mode live_modes[] = { GFS_LOCK_EX, GFS_LOCK_SH };
	struct gfs_lockset *ls;

	arm(g, op_r, DOC, PERSON, false);  /* writes Doc, reads Person */
	ck_assert_int_eq(gfs_lock_tables(gfs_graph_dir(g), live, live_modes, 2,
					 GFS_LOCK_TRY, &ls), 0);
	ck_assert_msg(gfs_heal_tables(g, mine, sh, 1, &d) == 0, "%s", d.msg);
	ck_assert_uint_eq(n_sidecars(g), 1);
	gfs_lockset_free(ls);
	arm(g, op_w, PERSON, NULL, false); /* writes Person */
	ck_assert_msg(gfs_heal_tables(g, mine, sh, 1, &d) == 0, "%s", d.msg);
	ck_assert_uint_eq(n_audits(g, op_w), 1);
	ck_assert_uint_eq(n_audits(g, op_r), 0);
	ck_assert_uint_eq(n_sidecars(g), 1);
	ck_assert_msg(gfs_heal_tables(g, mine, ex, 1, &d) == 0, "%s", d.msg);
	ck_assert_uint_eq(n_audits(g, op_r), 1);
	ck_assert_uint_eq(n_sidecars(g), 0);
	check_invariants(g);
	gfs_graph_close(g);
}
END_TEST

START_TEST(a_load_heals_a_dead_writer_then_writes)
{
	struct gfs_graph *g = open_g();
	char op[GFS_ULID_LEN + 1];
	uint32_t m = pin(g, PERSON);

	arm(g, op, PERSON, NULL, false);
	write_version(g, PERSON, m + 1, op);
	load(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"name\":\"A\"}}\n");
	ck_assert_uint_eq(n_audits(g, op), 1);
	ck_assert_uint_eq(pin(g, PERSON), m + 3); /* m+2 compensation, m+3 the load */
	check_invariants(g);
	gfs_graph_close(g);
}
END_TEST

START_TEST(own_resolution_of_a_resolved_sidecar_is_gone)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_own_result res;
	struct gfs_recover_report r;
	struct gfs_diag d = {{0}};
	char op[GFS_ULID_LEN + 1];

	arm(g, op, PERSON, NULL, false);
	ck_assert_int_eq(sweep(g, true, &r, &d), 0);
	ck_assert_int_eq(gfs_recover_own(g, op, &res, &d), 0);
	ck_assert(res.resolved);
	ck_assert(!res.forward);
	ck_assert_uint_eq(n_audits(g, op), 1);
	gfs_graph_close(g);
}
END_TEST

/* A dead writer's temp file in `table` (invariant 130). */
static void put_tmp(struct gfs_graph *g, const char *table, const char *name)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof path, "%s/tables/%s/%s", gfs_graph_dir(g), table, name);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

static bool has_tmp(struct gfs_graph *g, const char *table, const char *name)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof path, "%s/tables/%s/%s", gfs_graph_dir(g), table, name);
	return stat(path, &st) == 0;
}

/* Resolving a sidecar removes the temp files of the tables it writes (whose
 * LOCK_EX it holds), not of those it only reads; the whole sweep's .temps
 * removes every table's. */
START_TEST(a_resolution_removes_the_temp_files_of_its_written_tables)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_opts all = { .wait = true, .temps = true };
	struct gfs_recover_report r;
	struct gfs_diag d;
	char op[GFS_ULID_LEN + 1];

	arm(g, op, DOC, PERSON, false); /* writes Doc, reads Person */
	put_tmp(g, DOC, ".tmp-1-dead");
	put_tmp(g, PERSON, ".tmp-2-other");
	ck_assert_int_eq(sweep(g, true, &r, &d), 0);
	ck_assert_uint_eq(r.discarded, 1);
	ck_assert_uint_eq(r.temps_removed, 1);
	ck_assert(!has_tmp(g, DOC, ".tmp-1-dead"));
	ck_assert(has_tmp(g, PERSON, ".tmp-2-other"));
	/* No sidecar left: a sweep without .temps touches nothing. */
	ck_assert_int_eq(sweep(g, true, &r, &d), 0);
	ck_assert_uint_eq(r.temps_removed, 0);
	ck_assert(has_tmp(g, PERSON, ".tmp-2-other"));
	memset(&d, 0, sizeof d);
	ck_assert_int_eq(gfs_recover_sweep(g, &all, &r, &d), 0);
	ck_assert_uint_eq(r.temps_removed, 1);
	ck_assert(!has_tmp(g, PERSON, ".tmp-2-other"));
	check_invariants(g);
	gfs_graph_close(g);
}
END_TEST

/* A writer that fails after arming resolves its own sidecar under its
 * locks: a temp file left in its table goes too, on a roll back as well. */
START_TEST(own_resolution_removes_the_temp_files)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_own_result res;
	struct gfs_diag d = {{0}};
	char op[GFS_ULID_LEN + 1];
	const char *mine[] = { PERSON };
	const enum gfs_lock_mode ex[] = { GFS_LOCK_EX };
	struct gfs_lockset *ls;
	uint32_t m = pin(g, PERSON);

	ck_assert_int_eq(gfs_lock_tables(gfs_graph_dir(g), mine, ex, 1, GFS_LOCK_TRY, &ls), 0);
	arm(g, op, PERSON, NULL, false);
	write_version(g, PERSON, m + 1, op);
	put_tmp(g, PERSON, ".tmp-3-mine");
	ck_assert_msg(gfs_recover_own(g, op, &res, &d) == 0, "%s", d.msg);
	ck_assert(res.resolved);
	ck_assert(!res.forward);
	ck_assert_str_eq(last_decision(g), "roll-back");
	ck_assert(!has_tmp(g, PERSON, ".tmp-3-mine"));
	gfs_lockset_free(ls);
	check_invariants(g);
	gfs_graph_close(g);
}
END_TEST

/* ---- issue 11: one version sequence per table (docs/branches-design.md) */

/* tver[table][v] as a state (0 when there is no record). */
static int tver_state(struct gfs_graph *g, const char *table, uint32_t v)
{
	struct gfs_tver_rec r;
	int rc = gfs_manifest_tver_get(gfs_graph_manifest(g), table, v, &r);

	if (rc == -ENOENT)
		return 0;
	ck_assert_int_eq(rc, 0);
	return (int)r.state;
}

static uint32_t next_of(struct gfs_graph *g, const char *table)
{
	uint32_t n = 0;

	ck_assert_int_eq(gfs_manifest_next(gfs_graph_manifest(g), table, &n), 0);
	return n;
}

/* Arms a sidecar writing table the way a writer does (W3): post 0, so the
 * arm transaction reserves p = next[table]++.  Returns p. */
static uint32_t arm_reserved(struct gfs_graph *g, char op[GFS_ULID_LEN + 1],
			     const char *table)
{
	struct gfs_sc_table t;
	struct gfs_sidecar sc;

	memset(&sc, 0, sizeof sc);
	memset(&t, 0, sizeof t);
	ck_assert_int_eq(gfs_ulid_new(op), 0);
	sc.format = GFS_SIDECAR_FORMAT;
	memcpy(sc.op_id, op, sizeof sc.op_id);
	snprintf(sc.kind, sizeof sc.kind, "load");
	snprintf(sc.actor, sizeof sc.actor, "test");
	sc.start_ns = gfs_now_ns();
	snprintf(t.table, sizeof t.table, "%s", table);
	t.written = true;
	t.expected = pin(g, table);
	sc.tables = &t;
	sc.n_tables = 1;
	ck_assert_int_eq(gfs_manifest_sidecar_put(gfs_graph_manifest(g), &sc), 0);
	ck_assert_uint_gt(t.post, t.expected);
	return t.post;
}

/* Another branch's op (no branch records here: a sidecar reserves its
 * number, its file is linked, and a publish that moves no main pin marks
 * it published, as a publish on `dev` would). */
static uint32_t other_branch_version(struct gfs_graph *g, const char *table)
{
	struct gfs_tver_set set = { .state = GFS_TVER_PUBLISHED };
	struct gfs_publish p;
	struct gfs_diag d = {{0}};
	char op[GFS_ULID_LEN + 1];
	uint32_t q = arm_reserved(g, op, table);

	write_version(g, table, q, op);
	snprintf(set.table, sizeof set.table, "%s", table);
	set.v = q;
	memset(&p, 0, sizeof p);
	p.op = "load";
	p.op_id = op;
	p.actor = "dev";
	p.sidecar = op;
	p.tver_sets = &set;
	p.n_tver_sets = 1;
	ck_assert_msg(gfs_manifest_publish(gfs_graph_manifest(g), &p, NULL, &d) == 0, "%s", d.msg);
	ck_assert_int_eq(tver_state(g, table, q), GFS_TVER_PUBLISHED);
	return q;
}

/* Invariant 140: each number comes from next[T] in the arm transaction,
 * recorded as reserved with the op and the parent; numbers are distinct
 * and never reused, and a publish marks its pin published. */
START_TEST(numbers_come_from_the_counter)
{
	struct gfs_graph *g = open_g();
	struct gfs_tver_rec r;
	char a[GFS_ULID_LEN + 1], b[GFS_ULID_LEN + 1];
	uint32_t m = pin(g, PERSON), n0 = next_of(g, PERSON);

	ck_assert_uint_eq(n0, m + 1); /* init: published 1, next 2 */
	ck_assert_int_eq(tver_state(g, PERSON, m), GFS_TVER_PUBLISHED);
	ck_assert_uint_eq(arm_reserved(g, a, PERSON), n0);
	ck_assert_uint_eq(arm_reserved(g, b, PERSON), n0 + 1);
	ck_assert_uint_eq(next_of(g, PERSON), n0 + 2);
	ck_assert_int_eq(gfs_manifest_tver_get(gfs_graph_manifest(g), PERSON, n0, &r), 0);
	ck_assert_int_eq(r.state, GFS_TVER_RESERVED);
	ck_assert_str_eq(r.op_id, a);
	ck_assert_uint_eq(r.parent, m);
	/* a hand-built sidecar naming its own post raises the counter past it */
	char c[GFS_ULID_LEN + 1];
	struct gfs_recover_report rep;
	struct gfs_diag d;
	ck_assert_int_eq(sweep(g, true, &rep, &d), 0); /* both discarded */
	ck_assert_uint_eq(rep.discarded, 2);
	load(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"name\":\"A\"}}\n");
	ck_assert_uint_eq(pin(g, PERSON), n0 + 2); /* not m+1: taken, never reused */
	ck_assert_int_eq(tver_state(g, PERSON, n0 + 2), GFS_TVER_PUBLISHED);
	arm(g, c, PERSON, NULL, false); /* post = pin+1, chosen by the test */
	ck_assert_uint_eq(next_of(g, PERSON), n0 + 4);
	ck_assert_int_eq(tver_state(g, PERSON, n0 + 3), GFS_TVER_RESERVED);
	gfs_graph_close(g);
}
END_TEST

/* Invariant 140: a reservation that is discarded leaves a void gap, which
 * no later writer fills and fsck does not count as a problem. */
START_TEST(a_discarded_reservation_leaves_a_void_gap)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_report r;
	struct gfs_diag d;
	char op[GFS_ULID_LEN + 1];
	unsigned problems = 9;
	uint32_t m = pin(g, PERSON), p = arm_reserved(g, op, PERSON);

	ck_assert_int_eq(sweep(g, true, &r, &d), 0);
	ck_assert_uint_eq(r.discarded, 1);
	ck_assert_int_eq(tver_state(g, PERSON, p), GFS_TVER_VOID);
	load(g, "{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"name\":\"A\"}}\n");
	ck_assert_uint_eq(pin(g, PERSON), p + 1);
	ck_assert_uint_eq(info(g, PERSON, p + 1).parent, m);
	ck_assert_uint_eq(head(g, PERSON), p + 1);
	ck_assert_int_eq(gfs_graph_fsck(g, NULL, NULL, &problems), 0);
	ck_assert_uint_eq(problems, 0);
	gfs_graph_close(g);
}
END_TEST

/* Invariant 142: classification reads the sidecar's numbers and the
 * stamps, never the head: versions another branch wrote above p (the old
 * rule saw head != p: foreign) change nothing.  Rolled back, the
 * compensation goes to the counter's next number; rolled forward, p is
 * published. */
START_TEST(other_branch_versions_above_ours_do_not_matter)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_report r;
	struct gfs_diag d;
	struct gfs_sidecar *sc;
	char op[GFS_ULID_LEN + 1], op2[GFS_ULID_LEN + 1];
	uint32_t m = pin(g, PERSON), p, q, c, p2, q2;
	struct gfs_tver_info i;

	p = arm_reserved(g, op, PERSON);
	write_version(g, PERSON, p, op);
	q = other_branch_version(g, PERSON);
	ck_assert_uint_eq(q, p + 1);
	ck_assert_uint_eq(head(g, PERSON), q);
	ck_assert_msg(sweep(g, true, &r, &d) == 0, "%s", d.msg);
	ck_assert_uint_eq(r.rolled_back, 1);
	c = pin(g, PERSON);
	ck_assert_uint_eq(c, q + 1); /* not p+1: that is the other branch's */
	i = info(g, PERSON, c);
	ck_assert(i.compensation);
	ck_assert_uint_eq(i.content_of, m);
	ck_assert_str_eq(i.op_id, op);
	ck_assert(same_content(g, PERSON, c, m));
	ck_assert_int_eq(tver_state(g, PERSON, p), GFS_TVER_RETIRED);
	ck_assert_int_eq(tver_state(g, PERSON, q), GFS_TVER_PUBLISHED);
	ck_assert_int_eq(tver_state(g, PERSON, c), GFS_TVER_PUBLISHED);
	ck_assert_uint_eq(n_audits(g, op), 1);

	/* confirmed, with another branch's version above ours: forward */
	p2 = arm_reserved(g, op2, PERSON);
	write_version(g, PERSON, p2, op2);
	q2 = other_branch_version(g, PERSON);
	ck_assert_uint_gt(q2, p2);
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(gfs_graph_manifest(g), op2), 0);
	ck_assert_msg(sweep(g, true, &r, &d) == 0, "%s", d.msg);
	ck_assert_uint_eq(r.rolled_forward, 1);
	ck_assert_uint_eq(pin(g, PERSON), p2);
	ck_assert_int_eq(tver_state(g, PERSON, p2), GFS_TVER_PUBLISHED);
	ck_assert_int_eq(gfs_manifest_sidecar_get(gfs_graph_manifest(g), op2, &sc), -ENOENT);
	gfs_sidecar_free(sc);
	gfs_graph_close(g);
}
END_TEST

/* Invariant 143: a roll back reserves its compensation's number in the
 * sidecar before linking it, so resolvers share it.  A resolver that
 * reserved and died (recover/after_reserve) leaves c recorded: the next
 * one writes c, not a second number.  One that also linked c and died:
 * the next one finds our compensation there and publishes it.  A reserve
 * on a revision that is not the one classified fails GFS_ECAS. */
START_TEST(two_resolvers_share_one_compensation)
{
	struct gfs_graph *g = open_g();
	struct gfs_manifest *mf = gfs_graph_manifest(g);
	struct gfs_recover_report r;
	struct gfs_diag d = {{0}};
	struct gfs_sidecar *sc;
	char op[GFS_ULID_LEN + 1];
	uint32_t m = pin(g, PERSON), p, c = 0, c2 = 0, n;
	uint64_t rev = 0, rev2 = 0;

	p = arm_reserved(g, op, PERSON);
	write_version(g, PERSON, p, op);
	ck_assert_int_eq(gfs_manifest_sidecar_get(mf, op, &sc), 0);
	/* resolver A reserves, then dies */
	ck_assert_int_eq(gfs_manifest_sidecar_reserve_comp(mf, op, sc->rev, PERSON, m, &c, &rev), 0);
	ck_assert_uint_eq(c, p + 1);
	ck_assert_uint_ne(rev, sc->rev);
	ck_assert_int_eq(tver_state(g, PERSON, c), GFS_TVER_RESERVED);
	/* a second resolver that classified the same revision gets the same
	 * c back (no new number) and the revision that now holds it */
	ck_assert_int_eq(gfs_manifest_sidecar_reserve_comp(mf, op, sc->rev, PERSON, m, &c2, &rev2), 0);
	ck_assert_uint_eq(c2, c);
	ck_assert_uint_eq(rev2, rev);
	gfs_sidecar_free(sc);
	n = next_of(g, PERSON);
	ck_assert_uint_eq(n, c + 1);
	/* resolver B: writes c and publishes it */
	ck_assert_msg(sweep(g, true, &r, &d) == 0, "%s", d.msg);
	ck_assert_uint_eq(r.rolled_back, 1);
	ck_assert_uint_eq(pin(g, PERSON), c);
	ck_assert_uint_eq(next_of(g, PERSON), n);
	ck_assert(info(g, PERSON, c).compensation);
	ck_assert_int_eq(tver_state(g, PERSON, c), GFS_TVER_PUBLISHED);
	ck_assert_int_eq(tver_state(g, PERSON, p), GFS_TVER_RETIRED);

	/* A reserved and linked c, then died: B counts it as written */
	m = pin(g, PERSON);
	p = arm_reserved(g, op, PERSON);
	write_version(g, PERSON, p, op);
	ck_assert_int_eq(gfs_manifest_sidecar_get(mf, op, &sc), 0);
	ck_assert_int_eq(gfs_manifest_sidecar_reserve_comp(mf, op, sc->rev, PERSON, m, &c, &rev), 0);
	gfs_sidecar_free(sc);
	ck_assert_int_eq(gfs_table_write_compensation_of(gfs_graph_tables(g), PERSON, c, p, m, op, &d), 0);
	n = next_of(g, PERSON);
	ck_assert_msg(sweep(g, true, &r, &d) == 0, "%s", d.msg);
	ck_assert_uint_eq(r.rolled_back, 1);
	ck_assert_uint_eq(pin(g, PERSON), c);
	ck_assert_uint_eq(head(g, PERSON), c);
	ck_assert_uint_eq(next_of(g, PERSON), n);
	ck_assert_uint_eq(n_audits(g, op), 1);

	/* confirmed since it was classified: the reserve refuses (GFS_ECAS),
	 * takes no number, and the next sweep rolls forward; the c an
	 * earlier resolver reserved (and never linked) becomes void */
	p = arm_reserved(g, op, PERSON);
	write_version(g, PERSON, p, op);
	ck_assert_int_eq(gfs_manifest_sidecar_get(mf, op, &sc), 0);
	ck_assert_int_eq(gfs_manifest_sidecar_reserve_comp(mf, op, sc->rev, PERSON, pin(g, PERSON), &c, &rev), 0);
	ck_assert_int_eq(gfs_manifest_sidecar_confirm(mf, op), 0);
	n = next_of(g, PERSON);
	ck_assert_int_eq(gfs_manifest_sidecar_reserve_comp(mf, op, sc->rev, PERSON, pin(g, PERSON), &c2, &rev2), GFS_ECAS);
	gfs_sidecar_free(sc);
	ck_assert_uint_eq(next_of(g, PERSON), n);
	ck_assert_msg(sweep(g, true, &r, &d) == 0, "%s", d.msg);
	ck_assert_uint_eq(r.rolled_forward, 1);
	ck_assert_uint_eq(pin(g, PERSON), p);
	ck_assert_int_eq(tver_state(g, PERSON, c), GFS_TVER_VOID);
	gfs_graph_close(g);
}
END_TEST

/* §3.3: an orphan below the counter (a file at a void number, e.g. left
 * where a reservation was discarded) is only retired, with no graph
 * version; fsck reports it until then. */
START_TEST(an_orphan_below_the_counter_is_retired_without_a_version)
{
	struct gfs_graph *g = open_g();
	struct gfs_recover_opts o = { .wait = true, .orphans = true };
	struct gfs_recover_report r;
	struct gfs_diag d = {{0}};
	char op[GFS_ULID_LEN + 1], other[GFS_ULID_LEN + 1];
	unsigned problems = 0;
	uint32_t p = arm_reserved(g, op, PERSON);
	uint64_t v0;

	ck_assert_int_eq(sweep(g, true, &r, &d), 0); /* discarded: p void */
	ck_assert_int_eq(gfs_ulid_new(other), 0);
	write_version(g, PERSON, p, other);       /* a fenced writer's link */
	ck_assert_int_eq(gfs_graph_fsck(g, NULL, NULL, &problems), 0);
	ck_assert_uint_eq(problems, 1);
	v0 = gfs_manifest_head_version(gfs_graph_manifest(g));
	ck_assert_msg(gfs_recover_sweep(g, &o, &r, &d) == 0, "%s", d.msg);
	ck_assert_uint_eq(r.orphans_compensated, 0);
	ck_assert_uint_eq(gfs_manifest_head_version(gfs_graph_manifest(g)), v0);
	ck_assert_int_eq(tver_state(g, PERSON, p), GFS_TVER_RETIRED);
	ck_assert_str_eq(last_decision(g), "orphan-retired");
	ck_assert_int_eq(gfs_graph_fsck(g, NULL, NULL, &problems), 0);
	ck_assert_uint_eq(problems, 0);
	gfs_graph_close(g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("recover");
	TCase *tc = tcase_create("recover");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, unconfirmed_nothing_committed_is_discarded_with_one_audit);
	tcase_add_test(tc, unconfirmed_ours_is_rolled_back_by_a_compensation);
	tcase_add_test(tc, confirmed_ours_is_rolled_forward);
	tcase_add_test(tc, confirmed_without_its_version_is_a_violation_and_kept);
	tcase_add_test(tc, foreign_version_is_a_violation_and_nothing_is_written);
	tcase_add_test(tc, pin_above_head_is_a_violation);
	tcase_add_test(tc, ours_compensated_is_published_without_a_new_version);
	tcase_add_test(tc, moved_read_pin_keeps_the_sidecar_and_the_sweep_still_returns_0);
	tcase_add_test(tc, unparseable_sidecar_is_refused_and_kept_and_blocks_orphan_work);
	tcase_add_test(tc, orphan_is_compensated_once_and_a_crashed_compensation_reused);
	tcase_add_test(tc, recovery_publish_fails_if_the_sidecar_changed);
	tcase_add_test(tc, confirmed_with_our_compensation_rolls_forward_and_leaves_it_settled);
	tcase_add_test(tc, a_sidecar_above_settled_versions_rolls_back_by_its_post);
	tcase_add_test(tc, try_lock_sweep_leaves_a_held_sidecar_busy);
	tcase_add_test(tc, heal_resolves_only_sidecars_on_its_tables);
	tcase_add_test(tc, heal_waits_only_for_conflicting_lock_sets);
	tcase_add_test(tc, a_load_heals_a_dead_writer_then_writes);
	tcase_add_test(tc, own_resolution_of_a_resolved_sidecar_is_gone);
	tcase_add_test(tc, a_resolution_removes_the_temp_files_of_its_written_tables);
	tcase_add_test(tc, own_resolution_removes_the_temp_files);
	tcase_add_test(tc, numbers_come_from_the_counter);
	tcase_add_test(tc, a_discarded_reservation_leaves_a_void_gap);
	tcase_add_test(tc, other_branch_versions_above_ours_do_not_matter);
	tcase_add_test(tc, two_resolvers_share_one_compensation);
	tcase_add_test(tc, an_orphan_below_the_counter_is_retired_without_a_version);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
