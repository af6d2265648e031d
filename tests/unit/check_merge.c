/* check_merge.c - the row-level three-way merge (merge.h): one test per
 * conflict kind (changed on both sides, deleted vs changed, an edge whose
 * endpoint the other side deleted, each way), --prefer on each, results
 * that fail validation (@unique, @card) listed and never resolved, a
 * merged version that references no segment of the source (invariant
 * 149), colliding serials of rows added on both sides, and the cost:
 * O(rows changed) pages on a 100,000-row table.
 *
 * The engine takes three versions of each table; branches are not
 * needed for it, so each test loads a base, then builds the target's and
 * the source's versions of a table on the base by hand (versions base+1
 * and base+2), and the merged one at base+3. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "codec.h"
#include "commit.h"
#include "graph.h"
#include "manifest.h"
#include "merge.h"
#include "table.h"
#include "testutil.h"

static const char SCHEMA[] =
	"node Person { slug: String @key  name: String?  email: String? @unique }\n"
	"node Company { name: String @key }\n"
	"edge Knows: Person -> Person @card(0..2) { since: Date? }\n"
	"edge WorksAt: Person -> Company\n";

#include "teststore.h"

enum { PERSON = 0, COMPANY = 1, KNOWS = 2, WORKSAT = 3, NT = 4 };

static const char SEED[] =
	"{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"Alice\"}}\n"
	"{\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"name\":\"Bob\"}}\n"
	"{\"type\":\"Person\",\"data\":{\"slug\":\"dave\",\"name\":\"Dave\"}}\n"
	"{\"type\":\"Person\",\"data\":{\"slug\":\"erin\",\"name\":\"Erin\"}}\n"
	"{\"type\":\"Company\",\"data\":{\"name\":\"acme\"}}\n"
	"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"id\":\"k1\"}}\n"
	"{\"edge\":\"WorksAt\",\"from\":\"bob\",\"to\":\"acme\",\"data\":{\"id\":\"w1\"}}\n";

struct world {
	struct gfs_graph *g;
	const struct gfs_schema *s;
	char table[NT][GFS_TABLE_NAME_MAX];
	uint32_t b[NT], t[NT], sv[NT], merged[NT];
	struct gfs_tver *bv[NT], *tv[NT], *svv[NT];
	struct gfs_merge *m;
};

static void load_text(struct gfs_graph *g, const char *text)
{
	struct gfs_load_opts o = { .mode = GFS_LOAD_MERGE, .source = "seed.jsonl" };
	struct gfs_load_result res;
	struct gfs_diag d = {{0}};
	int fd = memfd_create("in", MFD_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(gfs_write_all(fd, text, strlen(text)), 0);
	lseek(fd, 0, SEEK_SET);
	ck_assert_msg(gfs_graph_load(g, fd, &o, &res, &d) == 0, "seed: %s", d.msg);
	close(fd);
}

/* Opens the store, loads seed, takes the base pins; t and sv start equal
 * to the base. */
static void world_open(struct world *W, const char *seed)
{
	struct gfs_diag d = {{0}};
	struct gfs_gv *gv;

	memset(W, 0, sizeof *W);
	W->g = open_g();
	load_text(W->g, seed);
	ck_assert_int_eq(gfs_manifest_head(gfs_graph_manifest(W->g), &gv), 0);
	ck_assert_msg(gfs_graph_schema(W->g, gv->schema_id, &W->s, &d) == 0, "%s", d.msg);
	ck_assert_int_eq((int)W->s->n_types, NT);
	for (size_t t = 0; t < NT; t++) {
		gfs_typedef_table(&W->s->types[t], W->table[t], sizeof W->table[t]);
		W->b[t] = W->t[t] = W->sv[t] = W->merged[t] = gfs_gv_pin(gv, W->table[t]);
	}
	gfs_gv_free(gv);
}

static void world_close(struct world *W)
{
	gfs_merge_free(W->m);
	for (size_t t = 0; t < NT; t++) {
		gfs_tver_close(W->bv[t]);
		gfs_tver_close(W->tv[t]);
		gfs_tver_close(W->svv[t]);
	}
	gfs_graph_close(W->g);
}

/* One op of a hand-built version: a load line (put) or an id (delete). */
struct hop {
	struct gfs_rowin r;
	bool del;
	const char *id;
};

static int hop_cmp(const void *a, const void *b)
{
	const struct hop *x = a, *y = b;
	const char *xi = x->del ? x->id : x->r.id.p, *yi = y->del ? y->id : y->r.id.p;
	size_t xl = x->del ? strlen(x->id) : x->r.id.len, yl = y->del ? strlen(y->id) : y->r.id.len;
	int c = memcmp(xi, yi, xl < yl ? xl : yl);

	return c ? c : xl < yl ? -1 : xl > yl;
}

/* Builds version `v` of type t on version `on` from ops: "+<load line>"
 * puts, "-<id>" deletes.  Returns v. */
static uint32_t build(struct world *W, size_t t, uint32_t on, uint32_t v,
		      const char *const *ops, size_t n)
{
	struct gfs_tstore *ts = gfs_graph_tables(W->g);
	struct gfs_diag d = {{0}};
	struct gfs_tver *parent;
	struct gfs_tbuild *b;
	struct hop *h = calloc(n + 1, sizeof *h);

	for (size_t i = 0; i < n; i++) {
		gfs_rowin_init(&h[i].r);
		h[i].del = ops[i][0] == '-';
		h[i].id = ops[i] + 1;
		if (!h[i].del)
			ck_assert_msg(gfs_codec_parse_line(W->s, ops[i] + 1, strlen(ops[i] + 1), i + 1,
							   &h[i].r, &d) == 0, "%s", d.msg);
	}
	qsort(h, n, sizeof *h, hop_cmp);
	ck_assert_int_eq(gfs_tver_open(ts, W->table[t], on, &parent, &d), 0);
	ck_assert_int_eq(gfs_tbuild_new(ts, W->table[t], parent,
					(unsigned)gfs_codec_n_unique(&W->s->types[t]), 0, &b), 0);
	for (size_t i = 0; i < n; i++) {
		struct gfs_rowin *r = &h[i].r;
		struct gfs_rowput rp = {
			.id = r->id.p, .id_len = r->id.len,
			.src = W->s->types[t].is_edge ? r->src.p : NULL, .src_len = r->src.len,
			.dst = W->s->types[t].is_edge ? r->dst.p : NULL, .dst_len = r->dst.len,
			.line = r->line.p, .line_len = r->line.len,
			.data_off = (uint32_t)r->data_off, .data_len = (uint32_t)r->data_len,
			.ukeys = r->ukeys, .n_ukeys = r->n_ukeys,
		};
		if (h[i].del)
			ck_assert_int_eq(gfs_tbuild_del(b, h[i].id, strlen(h[i].id)), 0);
		else
			ck_assert_int_eq(gfs_tbuild_put(b, &rp), 0);
	}
	ck_assert_msg(gfs_tbuild_commit(b, v, "01TESTTESTTESTTESTTESTTEST", &d) == 0, "%s", d.msg);
	gfs_tbuild_free(b);
	gfs_tver_close(parent);
	for (size_t i = 0; i < n; i++)
		gfs_rowin_release(&h[i].r);
	free(h);
	return v;
}

#define TARGET(W, ty, ...) do { const char *const o_[] = { __VA_ARGS__ }; \
	(W)->t[ty] = build((W), (ty), (W)->b[ty], (W)->b[ty] + 1, o_, GFS_ARRAY_SIZE(o_)); } while (0)
#define SOURCE(W, ty, ...) do { const char *const o_[] = { __VA_ARGS__ }; \
	(W)->sv[ty] = build((W), (ty), (W)->b[ty], (W)->b[ty] + 2, o_, GFS_ARRAY_SIZE(o_)); } while (0)

static struct gfs_tver *open_v(struct world *W, size_t t, uint32_t v)
{
	struct gfs_tver *tv;
	struct gfs_diag d = {{0}};

	ck_assert_msg(gfs_tver_open(gfs_graph_tables(W->g), W->table[t], v, &tv, &d) == 0,
		      "%s %u: %s", W->table[t], v, d.msg);
	return tv;
}

/* Plans the merge: diffs every type whose pins differ, resolves with
 * prefer, validates against the target's versions. */
static void plan(struct world *W, enum gfs_merge_prefer prefer)
{
	struct gfs_commit c;
	struct gfs_diag d = {{0}};

	ck_assert_int_eq(gfs_merge_new(W->s, &W->m), 0);
	for (size_t t = 0; t < NT; t++) {
		W->bv[t] = open_v(W, t, W->b[t]);
		W->tv[t] = open_v(W, t, W->t[t]);
		W->svv[t] = open_v(W, t, W->sv[t]);
		if (W->t[t] != W->sv[t])
			ck_assert_int_eq(gfs_merge_table(W->m, t, W->bv[t], W->tv[t], W->svv[t]), 0);
	}
	ck_assert_int_eq(gfs_merge_resolve(W->m, prefer), 0);
	ck_assert_int_eq(gfs_commit_init(&c, W->g, W->s, "merge", "test", "merge", &d), 0);
	for (size_t t = 0; t < NT; t++)
		c.ts[t].tv = open_v(W, t, W->t[t]);
	ck_assert_int_eq(gfs_merge_validate(W->m, &c), 0);
	gfs_commit_release(&c);
}

/* Writes the merged versions (base+3) of the tables to write. */
static void write_merged(struct world *W)
{
	struct gfs_diag d = {{0}};

	ck_assert_int_eq((int)gfs_merge_unresolved(W->m), 0);
	for (size_t t = 0; t < NT; t++) {
		enum gfs_merge_action a = gfs_merge_action(W->m, t);
		W->merged[t] = a == GFS_MERGE_KEEP ? W->t[t] : a == GFS_MERGE_ADOPT ? W->sv[t]
			: W->b[t] + 3;
		if (a == GFS_MERGE_WRITE)
			ck_assert_msg(gfs_merge_build(W->m, t, gfs_graph_tables(W->g), W->merged[t],
						      "01TESTTESTTESTTESTTESTMRGE", &d) == 0, "%s", d.msg);
	}
}

/* Every line of version v of type t in id order (a new string). */
static char *text_of(struct world *W, size_t t, uint32_t v)
{
	struct gfs_tver *tv = open_v(W, t, v);
	struct gfs_titer *it;
	struct gfs_row row;
	struct gfs_buf out;
	size_t got;

	gfs_buf_init(&out);
	gfs_buf_append(&out, "", 0);
	ck_assert_int_eq(gfs_titer_new(tv, GFS_IX_PRIMARY, NULL, 0, &it), 0);
	while (gfs_titer_next(it, &row) == 1) {
		ck_assert_int_eq(gfs_buf_reserve(&out, row.line_len + 1), 0);
		ck_assert_int_eq(gfs_tver_read_row(tv, &row, 0, out.p + out.len, row.line_len, &got), 0);
		out.len += got;
		out.p[out.len] = '\0';
	}
	gfs_titer_free(it);
	ck_assert_int_eq(gfs_tver_verify(gfs_graph_tables(W->g), W->table[t], v, &(struct gfs_diag){{0}}), 0);
	gfs_tver_close(tv);
	return out.p;
}

static void merged_is(struct world *W, size_t t, const char *want)
{
	char *got = text_of(W, t, W->merged[t]);

	ck_assert_str_eq(got, want);
	free(got);
}

static const struct gfs_merge_item *only_item(struct world *W, enum gfs_merge_kind k)
{
	const struct gfs_merge_item *it;
	size_t n = gfs_merge_items(W->m, &it);
	struct gfs_buf txt;

	gfs_buf_init(&txt);
	gfs_merge_report_text(W->m, &txt);
	ck_assert_msg(n == 1 && it[0].kind == k, "items: %zu\n%s", n, txt.p ? txt.p : "");
	gfs_buf_release(&txt);
	return &it[0];
}

#define P(slug, name) "+{\"type\":\"Person\",\"data\":{\"slug\":\"" slug "\",\"name\":\"" name "\"}}"
#define PL(slug, name) "{\"type\":\"Person\",\"data\":{\"slug\":\"" slug "\",\"name\":\"" name "\"}}\n"
#define K(id, f, t) "+{\"edge\":\"Knows\",\"from\":\"" f "\",\"to\":\"" t "\",\"data\":{\"id\":\"" id "\"}}"
#define KL(id, f, t) "{\"edge\":\"Knows\",\"from\":\"" f "\",\"to\":\"" t "\",\"data\":{\"id\":\"" id "\"}}\n"

START_TEST(one_sided_changes_are_taken_and_untouched_tables_adopted)
{
	struct world W;

	world_open(&W, SEED);
	TARGET(&W, PERSON, P("alice", "Alice T"));
	SOURCE(&W, PERSON, P("bob", "Bob S"), P("carol", "Carol"), "-dave");
	SOURCE(&W, KNOWS, K("k2", "bob", "alice"));
	plan(&W, GFS_PREFER_NONE);
	ck_assert_int_eq((int)gfs_merge_items(W.m, &(const struct gfs_merge_item *){0}), 0);
	ck_assert_int_eq((int)gfs_merge_taken(W.m), 4);
	ck_assert_int_eq(gfs_merge_action(W.m, PERSON), GFS_MERGE_WRITE);
	ck_assert_int_eq(gfs_merge_action(W.m, KNOWS), GFS_MERGE_ADOPT);
	ck_assert_int_eq(gfs_merge_action(W.m, COMPANY), GFS_MERGE_KEEP);
	write_merged(&W);
	merged_is(&W, PERSON, PL("alice", "Alice T") PL("bob", "Bob S") PL("carol", "Carol")
		  PL("erin", "Erin"));
	ck_assert_int_eq(W.merged[KNOWS], W.sv[KNOWS]);
	world_close(&W);
}
END_TEST

START_TEST(identical_changes_on_both_sides_are_no_conflict)
{
	struct world W;

	world_open(&W, SEED);
	TARGET(&W, PERSON, P("alice", "Alice 2"), "-dave", P("zed", "Zed"));
	SOURCE(&W, PERSON, P("alice", "Alice 2"), "-dave", P("zed", "Zed"));
	plan(&W, GFS_PREFER_NONE);
	ck_assert_int_eq((int)gfs_merge_items(W.m, &(const struct gfs_merge_item *){0}), 0);
	ck_assert_int_eq(gfs_merge_action(W.m, PERSON), GFS_MERGE_KEEP);
	world_close(&W);
}
END_TEST

START_TEST(conflict_changed_on_both_sides)
{
	for (int prefer = GFS_PREFER_NONE; prefer <= GFS_PREFER_TARGET; prefer++) {
		struct world W;
		const struct gfs_merge_item *it;
		setup();
		world_open(&W, SEED);
		TARGET(&W, PERSON, P("alice", "Alice T"), P("bob", "Bob T"));
		SOURCE(&W, PERSON, P("alice", "Alice S"), P("erin", "Erin S"));
		plan(&W, (enum gfs_merge_prefer)prefer);
		it = only_item(&W, GFS_MC_CHANGED);
		ck_assert_str_eq(W.s->types[it->type].name, "Person");
		ck_assert_str_eq(it->key.p, "alice");
		ck_assert_str_eq(it->target.p, "{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"Alice T\"}}");
		ck_assert_str_eq(it->source.p, "{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"Alice S\"}}");
		ck_assert(it->resolved == (prefer != GFS_PREFER_NONE));
		ck_assert_int_eq((int)gfs_merge_unresolved(W.m), prefer == GFS_PREFER_NONE);
		if (prefer == GFS_PREFER_SOURCE) {
			write_merged(&W);
			merged_is(&W, PERSON, PL("alice", "Alice S") PL("bob", "Bob T")
				  PL("dave", "Dave") PL("erin", "Erin S"));
		} else if (prefer == GFS_PREFER_TARGET) {
			write_merged(&W);
			merged_is(&W, PERSON, PL("alice", "Alice T") PL("bob", "Bob T")
				  PL("dave", "Dave") PL("erin", "Erin S"));
		} else {
			char *js = gfs_merge_report_json(W.m);
			ck_assert_ptr_nonnull(strstr(js, "{\"conflicts\":[{\"type\":\"Person\",\"key\":\"alice\",\"kind\":\"changed\",\"target\":{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"name\":\"Alice T\"}}"));
			ck_assert_ptr_nonnull(strstr(js, "\"invalid\":[]"));
			free(js);
		}
		world_close(&W);
		teardown();
	}
}
END_TEST

START_TEST(conflict_deleted_on_one_side_changed_on_the_other)
{
	struct world W;
	const struct gfs_merge_item *it;
	struct gfs_buf txt;

	world_open(&W, SEED);
	TARGET(&W, PERSON, "-dave");
	SOURCE(&W, PERSON, P("dave", "Dave S"));
	plan(&W, GFS_PREFER_NONE);
	it = only_item(&W, GFS_MC_DELETED);
	ck_assert_str_eq(it->key.p, "dave");
	ck_assert(!it->in_target && it->in_source);
	gfs_buf_init(&txt);
	ck_assert_int_eq(gfs_merge_report_text(W.m, &txt), 0);
	ck_assert_str_eq(txt.p, "conflict deleted Person 'dave': target (absent) | source "
			 "{\"type\":\"Person\",\"data\":{\"slug\":\"dave\",\"name\":\"Dave S\"}}\n");
	gfs_buf_release(&txt);
	world_close(&W);
}
END_TEST

/* The source deletes erin; the target adds an edge to her. */
START_TEST(conflict_edge_whose_endpoint_the_source_deleted)
{
	for (int prefer = GFS_PREFER_NONE; prefer <= GFS_PREFER_TARGET; prefer++) {
		struct world W;
		const struct gfs_merge_item *it;
		setup();
		world_open(&W, SEED);
		TARGET(&W, KNOWS, K("k9", "alice", "erin"));
		SOURCE(&W, PERSON, "-erin");
		plan(&W, (enum gfs_merge_prefer)prefer);
		it = only_item(&W, GFS_MC_ENDPOINT);
		ck_assert_str_eq(W.s->types[it->type].name, "Knows");
		ck_assert_str_eq(it->key.p, "k9");
		ck_assert_str_eq(W.s->types[it->node_type].name, "Person");
		ck_assert_str_eq(it->node_key.p, "erin");
		ck_assert(it->deleted_by_source && it->in_target && !it->in_source);
		if (prefer == GFS_PREFER_NONE) {
			ck_assert_int_eq((int)gfs_merge_unresolved(W.m), 1);
		} else {
			write_merged(&W);
			merged_is(&W, KNOWS, prefer == GFS_PREFER_SOURCE ? KL("k1", "alice", "bob")
				  : KL("k1", "alice", "bob") KL("k9", "alice", "erin"));
			merged_is(&W, PERSON, prefer == GFS_PREFER_SOURCE
				  ? PL("alice", "Alice") PL("bob", "Bob") PL("dave", "Dave")
				  : PL("alice", "Alice") PL("bob", "Bob") PL("dave", "Dave") PL("erin", "Erin"));
		}
		world_close(&W);
		teardown();
	}
}
END_TEST

/* The target deletes erin; the source adds an edge to her. */
START_TEST(conflict_edge_whose_endpoint_the_target_deleted)
{
	for (int prefer = GFS_PREFER_NONE; prefer <= GFS_PREFER_TARGET; prefer++) {
		struct world W;
		const struct gfs_merge_item *it;
		setup();
		world_open(&W, SEED);
		TARGET(&W, PERSON, "-erin");
		SOURCE(&W, KNOWS, K("k9", "erin", "alice"));
		plan(&W, (enum gfs_merge_prefer)prefer);
		it = only_item(&W, GFS_MC_ENDPOINT);
		ck_assert_str_eq(it->key.p, "k9");
		ck_assert(!it->deleted_by_source && !it->in_target && it->in_source);
		if (prefer != GFS_PREFER_NONE) {
			write_merged(&W);
			merged_is(&W, KNOWS, prefer == GFS_PREFER_SOURCE
				  ? KL("k1", "alice", "bob") KL("k9", "erin", "alice")
				  : KL("k1", "alice", "bob"));
			merged_is(&W, PERSON, prefer == GFS_PREFER_SOURCE
				  ? PL("alice", "Alice") PL("bob", "Bob") PL("dave", "Dave") PL("erin", "Erin")
				  : PL("alice", "Alice") PL("bob", "Bob") PL("dave", "Dave"));
		}
		world_close(&W);
		teardown();
	}
}
END_TEST

/* Both sides give a new person the same email: each side is valid, the
 * merge is not, and --prefer does not make it so. */
START_TEST(invalid_unique_is_listed_and_never_resolved)
{
	struct world W;
	const struct gfs_merge_item *it;

	world_open(&W, SEED);
	TARGET(&W, PERSON, "+{\"type\":\"Person\",\"data\":{\"slug\":\"x\",\"email\":\"e@x\"}}");
	SOURCE(&W, PERSON, "+{\"type\":\"Person\",\"data\":{\"slug\":\"y\",\"email\":\"e@x\"}}");
	plan(&W, GFS_PREFER_SOURCE);
	it = only_item(&W, GFS_MC_INVALID);
	ck_assert_str_eq(it->key.p, "y");
	ck_assert_msg(strstr(it->msg, "unique") && strstr(it->msg, "e@x") &&
		      strstr(it->msg, "'x'"), "%s", it->msg);
	ck_assert_int_eq((int)gfs_merge_unresolved(W.m), 1);
	world_close(&W);
}
END_TEST

/* Knows is @card(0..2): alice knows bob; each side adds one more. */
START_TEST(invalid_card_is_listed)
{
	struct world W;
	const struct gfs_merge_item *it;

	world_open(&W, SEED);
	TARGET(&W, KNOWS, K("k2", "alice", "dave"));
	SOURCE(&W, KNOWS, K("k3", "alice", "erin"));
	plan(&W, GFS_PREFER_NONE);
	it = only_item(&W, GFS_MC_INVALID);
	ck_assert_str_eq(it->key.p, "k3");
	ck_assert_msg(strstr(it->msg, "card") || strstr(it->msg, "at most"), "%s", it->msg);
	world_close(&W);
}
END_TEST

/* Invariant 149: the merged version's lines live in its own segment or
 * the target's chain, never in the source's version. */
START_TEST(merged_version_has_no_foreign_segment)
{
	struct world W;
	struct gfs_tver *tv;
	struct gfs_titer *it;
	struct gfs_row row;
	unsigned own = 0;

	world_open(&W, SEED);
	TARGET(&W, PERSON, P("alice", "Alice T"));
	SOURCE(&W, PERSON, P("bob", "Bob S"), P("carol", "Carol"));
	plan(&W, GFS_PREFER_NONE);
	write_merged(&W);
	ck_assert_int_eq(gfs_merge_action(W.m, PERSON), GFS_MERGE_WRITE);
	tv = open_v(&W, PERSON, W.merged[PERSON]);
	ck_assert_int_eq(gfs_titer_new(tv, GFS_IX_PRIMARY, NULL, 0, &it), 0);
	while (gfs_titer_next(it, &row) == 1) {
		ck_assert_uint_ne(row.seg, W.sv[PERSON]);
		ck_assert(row.seg <= W.t[PERSON] || row.seg == W.merged[PERSON]);
		own += row.seg == W.merged[PERSON];
		/* a taken row keeps the version that changed it */
		if (row.id_len == 3 && !memcmp(row.id, "bob", 3))
			ck_assert_uint_eq(row.changed, W.sv[PERSON]);
	}
	ck_assert_uint_eq(own, 2);
	gfs_titer_free(it);
	gfs_tver_close(tv);
	world_close(&W);
}
END_TEST

/* Both sides add a row: each gets the base's next serial.  The target's
 * keeps it, the source's gets one above both sides' next_serial; a row
 * the source changed keeps its serial. */
START_TEST(serial_collision_gets_a_fresh_serial)
{
	struct world W;
	struct gfs_tver *tv, *b, *s, *t;
	struct gfs_row rx, ry, ra, sy;
	struct gfs_tver_info bi, ti, si, mi;

	world_open(&W, SEED);
	TARGET(&W, PERSON, P("x", "X"));
	SOURCE(&W, PERSON, P("y", "Y"), P("alice", "Alice S"));
	plan(&W, GFS_PREFER_NONE);
	write_merged(&W);
	b = open_v(&W, PERSON, W.b[PERSON]);
	t = open_v(&W, PERSON, W.t[PERSON]);
	s = open_v(&W, PERSON, W.sv[PERSON]);
	tv = open_v(&W, PERSON, W.merged[PERSON]);
	gfs_tver_info(b, &bi);
	gfs_tver_info(t, &ti);
	gfs_tver_info(s, &si);
	gfs_tver_info(tv, &mi);
	memset(&rx, 0, sizeof rx);
	memset(&ry, 0, sizeof ry);
	memset(&ra, 0, sizeof ra);
	memset(&sy, 0, sizeof sy);
	ck_assert_int_eq(gfs_tver_get(tv, "x", 1, &rx), 1);
	ck_assert_int_eq(gfs_tver_get(tv, "y", 1, &ry), 1);
	ck_assert_int_eq(gfs_tver_get(s, "y", 1, &sy), 1);
	ck_assert_int_eq(gfs_tver_get(tv, "alice", 5, &ra), 1);
	ck_assert_uint_eq(sy.serial, bi.next_serial);  /* the collision is real */
	ck_assert_uint_eq(rx.serial, bi.next_serial);
	ck_assert_uint_eq(ry.serial, ti.next_serial > si.next_serial ? ti.next_serial : si.next_serial);
	ck_assert_uint_gt(mi.next_serial, ry.serial);
	ck_assert_uint_eq(ry.changed, W.sv[PERSON]);
	ck_assert_uint_eq(ra.changed, W.sv[PERSON]);
	ck_assert_uint_lt(ra.serial, bi.next_serial);
	gfs_row_release(&rx);
	gfs_row_release(&ry);
	gfs_row_release(&ra);
	gfs_row_release(&sy);
	gfs_tver_close(tv);
	gfs_tver_close(b);
	gfs_tver_close(t);
	gfs_tver_close(s);
	world_close(&W);
}
END_TEST

static int count_row(void *arg, const struct gfs_row *old, const struct gfs_row *nw)
{
	(void)old;
	(void)nw;
	(*(uint64_t *)arg)++;
	return 0;
}

/* The target changes edge k1 (alice -> bob); the source deletes bob and so
 * k1: two conflicts on one edge (deleted vs changed, and its endpoint).
 * Either --prefer resolves both with one decision for k1. */
START_TEST(an_edge_in_two_conflicts_is_decided_once)
{
	for (int prefer = GFS_PREFER_SOURCE; prefer <= GFS_PREFER_TARGET; prefer++) {
		struct world W;
		const struct gfs_merge_item *it;
		struct gfs_buf tx;
		setup();
		world_open(&W, SEED);
		TARGET(&W, KNOWS, "+{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"id\":\"k1\",\"since\":\"2020-01-01\"}}");
		SOURCE(&W, KNOWS, "-k1");
		W.sv[PERSON] = build(&W, PERSON, W.b[PERSON], W.b[PERSON] + 2,
				     (const char *const[]){ "-bob" }, 1);
		W.sv[WORKSAT] = build(&W, WORKSAT, W.b[WORKSAT], W.b[WORKSAT] + 2,
				      (const char *const[]){ "-w1" }, 1);
		plan(&W, (enum gfs_merge_prefer)prefer);
		gfs_buf_init(&tx);
		gfs_merge_report_text(W.m, &tx);
		ck_assert_msg(gfs_merge_items(W.m, &it) == 2, "%s", tx.p);
		gfs_buf_release(&tx);
		ck_assert_int_eq(it[0].kind, GFS_MC_DELETED);
		ck_assert_int_eq(it[1].kind, GFS_MC_ENDPOINT);
		write_merged(&W);
		merged_is(&W, KNOWS, prefer == GFS_PREFER_SOURCE ? ""
			  : "{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"id\":\"k1\",\"since\":\"2020-01-01\"}}\n");
		merged_is(&W, PERSON, prefer == GFS_PREFER_SOURCE
			  ? PL("alice", "Alice") PL("dave", "Dave") PL("erin", "Erin")
			  : PL("alice", "Alice") PL("bob", "Bob") PL("dave", "Dave") PL("erin", "Erin"));
		world_close(&W);
		teardown();
	}
}
END_TEST

/* Random changes of people, companies and WorksAt edges on both sides,
 * conflicts included, merged with a random --prefer: nothing is left
 * unresolved or invalid, every merged edge has both endpoints, and every
 * row no item names has the value the rules give (the one side that
 * changed it, or both sides' same value).  60 seeds; GFS_MERGE_SEED=N
 * runs one. */
enum { MP = 14, MC = 3, ME = 16 };

struct gmodel {
	char person[MP][16];    /* name, "" = absent */
	bool company[MC];
	int from[ME], to[ME];   /* -1 = absent */
};

static void g_delete_person(struct gmodel *g, int i)
{
	g->person[i][0] = '\0';
	for (int e = 0; e < ME; e++)
		if (g->from[e] == i)
			g->from[e] = g->to[e] = -1;
}

static void g_mutate(struct gmodel *g, unsigned *seed, int side)
{
	for (int k = 0; k < 12; k++) {
		int r = (int)(rand_r(seed) % 6), i = (int)(rand_r(seed) % 10), e;
		if (r == 0 && g->person[i][0])
			snprintf(g->person[i], sizeof g->person[i], "%c%u", side == 1 ? 'T' : 'S', rand_r(seed) % 3);
		else if (r == 1 && g->person[i][0])
			g_delete_person(g, i);
		else if (r == 2) /* add one of this side's people (slots 10-11 / 12-13) */
			snprintf(g->person[side == 1 ? 10 + i % 2 : 12 + i % 2], 16, "N%d", side);
		else if (r == 3 && (e = (side == 1 ? 8 : 12) + i % 4, g->from[e] < 0)) {
			int f = (int)(rand_r(seed) % MP), t = (int)(rand_r(seed) % MC);
			if (g->person[f][0] && g->company[t])
				g->from[e] = f, g->to[e] = t;
		} else if (r == 4 && g->from[i % 8] >= 0)
			g->from[i % 8] = g->to[i % 8] = -1;
		else if (r == 5 && rand_r(seed) % 4 == 0) { /* a company goes, with its edges */
			int t = (int)(rand_r(seed) % MC);
			g->company[t] = false;
			for (int x = 0; x < ME; x++)
				if (g->to[x] == t)
					g->from[x] = g->to[x] = -1;
		}
	}
}

static void g_person_line(char *out, size_t n, int i, const char *name)
{
	snprintf(out, n, "{\"type\":\"Person\",\"data\":{\"slug\":\"p%02d\",\"name\":\"%s\"}}\n", i, name);
}

static void g_edge_line(char *out, size_t n, int e, int f, int t)
{
	snprintf(out, n, "{\"edge\":\"WorksAt\",\"from\":\"p%02d\",\"to\":\"c%d\",\"data\":{\"id\":\"w%02d\"}}\n", f, t, e);
}

/* The versions of side g against base b: ops of each changed row. */
static void g_build(struct world *W, const struct gmodel *b, const struct gmodel *g, int side)
{
	static char ops[3][MP + ME][160];
	const char *p[3][MP + ME];
	size_t n[3] = { 0 };
	uint32_t *dst = side == 1 ? W->t : W->sv;

	for (int i = 0; i < MP; i++) {
		if (!strcmp(b->person[i], g->person[i]))
			continue;
		if (g->person[i][0]) {
			ops[0][n[0]][0] = '+';
			g_person_line(ops[0][n[0]] + 1, 159, i, g->person[i]);
			ops[0][n[0]][strlen(ops[0][n[0]]) - 1] = '\0';
		} else
			snprintf(ops[0][n[0]], 160, "-p%02d", i);
		p[0][n[0]] = ops[0][n[0]];
		n[0]++;
	}
	for (int c = 0; c < MC; c++)
		if (b->company[c] != g->company[c]) {
			snprintf(ops[1][n[1]], 160, "-c%d", c);
			p[1][n[1]] = ops[1][n[1]];
			n[1]++;
		}
	for (int e = 0; e < ME; e++) {
		if (b->from[e] == g->from[e] && b->to[e] == g->to[e])
			continue;
		if (g->from[e] >= 0) {
			ops[2][n[2]][0] = '+';
			g_edge_line(ops[2][n[2]] + 1, 159, e, g->from[e], g->to[e]);
			ops[2][n[2]][strlen(ops[2][n[2]]) - 1] = '\0';
		} else
			snprintf(ops[2][n[2]], 160, "-w%02d", e);
		p[2][n[2]] = ops[2][n[2]];
		n[2]++;
	}
	if (n[0])
		dst[PERSON] = build(W, PERSON, W->b[PERSON], W->b[PERSON] + side, p[0], n[0]);
	if (n[1])
		dst[COMPANY] = build(W, COMPANY, W->b[COMPANY], W->b[COMPANY] + side, p[1], n[1]);
	if (n[2])
		dst[WORKSAT] = build(W, WORKSAT, W->b[WORKSAT], W->b[WORKSAT] + side, p[2], n[2]);
}

/* The merged line of (type t, id) into out ("" absent). */
static void g_merged(struct world *W, size_t t, const char *id, char *out, size_t n)
{
	struct gfs_tver *tv = open_v(W, t, W->merged[t]);
	struct gfs_row row;
	size_t got = 0;

	memset(&row, 0, sizeof row);
	out[0] = '\0';
	if (gfs_tver_get(tv, id, strlen(id), &row) == 1) {
		ck_assert_uint_lt(row.line_len, n);
		ck_assert_int_eq(gfs_tver_read_row(tv, &row, 0, out, row.line_len, &got), 0);
		out[got] = '\0';
	}
	gfs_row_release(&row);
	gfs_tver_close(tv);
}

static bool g_named(struct world *W, size_t t, const char *id)
{
	const struct gfs_merge_item *it;
	size_t n = gfs_merge_items(W->m, &it);

	for (size_t i = 0; i < n; i++)
		if ((it[i].type == t && !strcmp(it[i].key.p, id)) ||
		    (it[i].kind == GFS_MC_ENDPOINT && it[i].node_type == t && !strcmp(it[i].node_key.p, id)))
			return true;
	return false;
}

/* What the rules give for one row: b, t, s its three values. */
static const char *g_expect(const char *b, const char *t, const char *s)
{
	return !strcmp(t, b) ? s : t;
}

START_TEST(random_conflicts_merge_valid)
{
	const char *env = getenv("GFS_MERGE_SEED");
	unsigned first = env ? (unsigned)strtoul(env, NULL, 10) : 1, last = env ? first : 60;
	unsigned kinds[4] = { 0 };

	for (unsigned sd = first; sd <= last; sd++) {
		struct gmodel b, gt, gs;
		unsigned seed = sd * 7919;
		enum gfs_merge_prefer prefer = sd % 2 ? GFS_PREFER_SOURCE : GFS_PREFER_TARGET;
		struct gfs_buf seedtxt, rep;
		struct world W;
		char line[3][200], got[200], id[8];

		memset(&b, 0, sizeof b);
		gfs_buf_init(&seedtxt);
		for (int i = 0; i < MP; i++)
			if (i < 10) {
				snprintf(b.person[i], sizeof b.person[i], "B");
				g_person_line(line[0], sizeof line[0], i, "B");
				gfs_buf_appendf(&seedtxt, "%s", line[0]);
			}
		for (int c = 0; c < MC; c++) {
			b.company[c] = true;
			gfs_buf_appendf(&seedtxt, "{\"type\":\"Company\",\"data\":{\"name\":\"c%d\"}}\n", c);
		}
		for (int e = 0; e < ME; e++) {
			b.from[e] = b.to[e] = -1;
			if (e < 8) {
				b.from[e] = (int)(rand_r(&seed) % 10);
				b.to[e] = (int)(rand_r(&seed) % MC);
				g_edge_line(line[0], sizeof line[0], e, b.from[e], b.to[e]);
				gfs_buf_appendf(&seedtxt, "%s", line[0]);
			}
		}
		gt = gs = b;
		g_mutate(&gt, &seed, 1);
		g_mutate(&gs, &seed, 2);
		setup();
		world_open(&W, seedtxt.p);
		gfs_buf_release(&seedtxt);
		g_build(&W, &b, &gt, 1);
		g_build(&W, &b, &gs, 2);
		plan(&W, prefer);
		gfs_buf_init(&rep);
		gfs_merge_report_text(W.m, &rep);
		ck_assert_msg(gfs_merge_unresolved(W.m) == 0, "seed %u (GFS_MERGE_SEED=%u): unresolved:\n%s",
			      sd, sd, rep.p ? rep.p : "");
		{
			const struct gfs_merge_item *it;
			size_t ni = gfs_merge_items(W.m, &it);
			for (size_t i = 0; i < ni; i++)
				kinds[it[i].kind]++;
		}
		write_merged(&W);
		/* every merged edge has both endpoints */
		for (int e = 0; e < ME; e++) {
			char *fp, *tp;
			snprintf(id, sizeof id, "w%02d", e);
			g_merged(&W, WORKSAT, id, got, sizeof got);
			if (!got[0])
				continue;
			fp = strstr(got, "\"from\":\"p");
			tp = strstr(got, "\"to\":\"c");
			ck_assert(fp && tp);
			snprintf(id, sizeof id, "p%.2s", fp + 9);
			g_merged(&W, PERSON, id, line[0], sizeof line[0]);
			ck_assert_msg(line[0][0], "seed %u: w%02d's source %s is gone\n%s", sd, e, id, rep.p ? rep.p : "");
			snprintf(id, sizeof id, "c%c", tp[7]);
			g_merged(&W, COMPANY, id, line[0], sizeof line[0]);
			ck_assert_msg(line[0][0], "seed %u: w%02d's target %s is gone\n%s", sd, e, id, rep.p ? rep.p : "");
		}
		/* rows no item names: the rules' value */
		for (int i = 0; i < MP; i++) {
			const struct gmodel *m3[3] = { &b, &gt, &gs };
			snprintf(id, sizeof id, "p%02d", i);
			if (g_named(&W, PERSON, id))
				continue;
			for (int k = 0; k < 3; k++) {
				line[k][0] = '\0';
				if (m3[k]->person[i][0])
					g_person_line(line[k], sizeof line[k], i, m3[k]->person[i]);
			}
			g_merged(&W, PERSON, id, got, sizeof got);
			ck_assert_msg(!strcmp(got, g_expect(line[0], line[1], line[2])),
				      "seed %u: %s is '%s'\n%s", sd, id, got, rep.p ? rep.p : "");
		}
		for (int e = 0; e < ME; e++) {
			const struct gmodel *m3[3] = { &b, &gt, &gs };
			snprintf(id, sizeof id, "w%02d", e);
			if (g_named(&W, WORKSAT, id))
				continue;
			for (int k = 0; k < 3; k++) {
				line[k][0] = '\0';
				if (m3[k]->from[e] >= 0)
					g_edge_line(line[k], sizeof line[k], e, m3[k]->from[e], m3[k]->to[e]);
			}
			g_merged(&W, WORKSAT, id, got, sizeof got);
			/* an edge the resolution of a node's conflict removes or
			 * keeps is the one exception: its endpoint is named */
			if (strcmp(got, g_expect(line[0], line[1], line[2])) && got[0] == '\0') {
				const char *f = strstr(line[1][0] ? line[1] : line[2], "\"from\":\"p");
				char pid[8];
				snprintf(pid, sizeof pid, "p%.2s", f ? f + 9 : "??");
				ck_assert_msg(g_named(&W, PERSON, pid), "seed %u: %s is gone\n%s", sd, id, rep.p ? rep.p : "");
				continue;
			}
			ck_assert_msg(!strcmp(got, g_expect(line[0], line[1], line[2])),
				      "seed %u: %s is '%s'\n%s", sd, id, got, rep.p ? rep.p : "");
		}
		gfs_buf_release(&rep);
		world_close(&W);
		teardown();
	}
	fprintf(stderr, "check_merge: random_conflicts_merge_valid: %u changed, %u deleted, %u endpoint conflicts over seeds %u..%u\n",
		kinds[GFS_MC_CHANGED], kinds[GFS_MC_DELETED], kinds[GFS_MC_ENDPOINT], first, last);
	/* the seeds must exercise every kind, or the test proves little */
	if (!env)
		ck_assert(kinds[GFS_MC_CHANGED] && kinds[GFS_MC_DELETED] && kinds[GFS_MC_ENDPOINT]);
}
END_TEST

/* Random disjoint changes on both sides (updates, deletes, adds; the adds
 * collide on serials): the merge equals the base with both change sets
 * applied, every serial is distinct, a row keeps the serial and `changed`
 * of the side it comes from.  20 seeds; GFS_MERGE_SEED=N runs one. */
enum { RN = 200 };

static void random_side(unsigned *seed, int side, const int *owner, char ops[][96],
			const char **p, size_t *n, char model[][40])
{
	*n = 0;
	for (int i = 0; i < RN; i++) {
		int r = (int)(rand_r(seed) % 10);
		if (owner[i] != side || r > 2)
			continue;
		if (r == 0) { /* delete */
			snprintf(ops[*n], 96, "-r%04d", i);
			model[i][0] = '\0';
		} else {      /* update */
			snprintf(model[i], 40, "%s%d", side == 1 ? "T" : "S", (int)(rand_r(seed) % 1000));
			snprintf(ops[*n], 96, "+{\"type\":\"Person\",\"data\":{\"slug\":\"r%04d\",\"name\":\"%.39s\"}}", i, model[i]);
		}
		p[*n] = ops[*n];
		(*n)++;
	}
	for (int k = 0; k < 5; k++) { /* adds: ids only this side uses */
		snprintf(ops[*n], 96, "+{\"type\":\"Person\",\"data\":{\"slug\":\"%c%03d\",\"name\":\"new\"}}",
			 side == 1 ? 't' : 's', k);
		p[*n] = ops[*n];
		(*n)++;
	}
}

START_TEST(random_disjoint_changes_merge_to_both)
{
	const char *env = getenv("GFS_MERGE_SEED");
	unsigned first = env ? (unsigned)strtoul(env, NULL, 10) : 1, last = env ? first : 20;

	for (unsigned sd = first; sd <= last; sd++) {
		static char ops_t[RN + 8][96], ops_s[RN + 8][96], model[RN][40];
		const char *pt[RN + 8], *ps[RN + 8];
		int owner[RN];
		size_t nt, ns;
		unsigned seed = sd;
		struct gfs_buf base, want;
		struct world W;
		char *got;

		gfs_buf_init(&base);
		for (int i = 0; i < RN; i++) {
			owner[i] = 1 + (int)(rand_r(&seed) % 2);
			snprintf(model[i], sizeof model[i], "B%d", i);
			gfs_buf_appendf(&base, "{\"type\":\"Person\",\"data\":{\"slug\":\"r%04d\",\"name\":\"B%d\"}}\n", i, i);
		}
		setup();
		world_open(&W, base.p);
		gfs_buf_release(&base);
		random_side(&seed, 1, owner, ops_t, pt, &nt, model);
		random_side(&seed, 2, owner, ops_s, ps, &ns, model);
		W.t[PERSON] = build(&W, PERSON, W.b[PERSON], W.b[PERSON] + 1, pt, nt);
		W.sv[PERSON] = build(&W, PERSON, W.b[PERSON], W.b[PERSON] + 2, ps, ns);
		plan(&W, GFS_PREFER_NONE);
		ck_assert_msg(gfs_merge_items(W.m, &(const struct gfs_merge_item *){0}) == 0, "seed %u: items", sd);
		write_merged(&W);
		gfs_buf_init(&want);
		for (int i = 0; i < RN; i++)
			if (model[i][0])
				gfs_buf_appendf(&want, PL("r%04d", "%s"), i, model[i]);
		for (int k = 0; k < 5; k++)
			gfs_buf_appendf(&want, PL("s%03d", "new"), k);
		for (int k = 0; k < 5; k++)
			gfs_buf_appendf(&want, PL("t%03d", "new"), k);
		got = text_of(&W, PERSON, W.merged[PERSON]);
		ck_assert_msg(!strcmp(got, want.p), "seed %u (GFS_MERGE_SEED=%u replays it):\n%s\nwanted\n%s", sd, sd, got, want.p);
		free(got);
		gfs_buf_release(&want);
		{ /* serials distinct; each row's serial and changed from its side */
			struct gfs_tver *mv = open_v(&W, PERSON, W.merged[PERSON]);
			struct gfs_titer *it;
			struct gfs_row row, o;
			uint64_t *ser = calloc(RN + 16, sizeof *ser);
			size_t n = 0;
			ck_assert_int_eq(gfs_titer_new(mv, GFS_IX_PRIMARY, NULL, 0, &it), 0);
			while (gfs_titer_next(it, &row) == 1) {
				struct gfs_tver *from = row.id[0] == 's' ? W.svv[PERSON]
					: row.id[0] == 't' ? W.tv[PERSON] : NULL;
				for (size_t k = 0; k < n; k++)
					ck_assert_msg(ser[k] != row.serial, "seed %u: serial %" PRIu64 " twice", sd, row.serial);
				ser[n++] = row.serial;
				if (!from) {
					int i = atoi(row.id + 1);
					from = owner[i] == 2 ? W.svv[PERSON] : W.tv[PERSON];
				}
				memset(&o, 0, sizeof o);
				ck_assert_int_eq(gfs_tver_get(from, row.id, row.id_len, &o), 1);
				ck_assert_uint_eq(row.changed, o.changed);
				if (from == W.tv[PERSON] || row.id[0] != 's')
					ck_assert_uint_eq(row.serial, o.serial);
				gfs_row_release(&o);
			}
			gfs_titer_free(it);
			gfs_tver_close(mv);
			free(ser);
		}
		world_close(&W);
		teardown();
	}
}
END_TEST

/* 100,000 people; each side changes 10: the diffs read O(changed) pages,
 * not O(table). */
START_TEST(cost_is_o_changed)
{
	enum { N = 100000 };
	struct gfs_buf seed;
	struct world W;
	char ops_t[10][96], ops_s[10][96];
	const char *pt[10], *ps[10];
	struct gfs_tver *bv, *empty;
	struct gfs_tver_info bi;
	uint64_t pages, full = 0, rows = 0;

	gfs_buf_init(&seed);
	for (int i = 0; i < N; i++)
		gfs_buf_appendf(&seed, "{\"type\":\"Person\",\"data\":{\"slug\":\"p%06d\",\"name\":\"Person number %d\"}}\n", i, i);
	world_open(&W, seed.p);
	gfs_buf_release(&seed);
	for (int i = 0; i < 10; i++) {
		snprintf(ops_t[i], sizeof ops_t[i], "+{\"type\":\"Person\",\"data\":{\"slug\":\"p%06d\",\"name\":\"T\"}}", i * 9973);
		snprintf(ops_s[i], sizeof ops_s[i], "+{\"type\":\"Person\",\"data\":{\"slug\":\"p%06d\",\"name\":\"S\"}}", i * 9973 + 1);
		pt[i] = ops_t[i];
		ps[i] = ops_s[i];
	}
	W.t[PERSON] = build(&W, PERSON, W.b[PERSON], W.b[PERSON] + 1, pt, 10);
	W.sv[PERSON] = build(&W, PERSON, W.b[PERSON], W.b[PERSON] + 2, ps, 10);
	plan(&W, GFS_PREFER_NONE);
	pages = gfs_merge_pages(W.m);
	bv = open_v(&W, PERSON, W.b[PERSON]);
	gfs_tver_info(bv, &bi);
	ck_assert_uint_eq(bi.rows, N);
	/* the control: the same walk from the empty version 1 reads them all */
	empty = open_v(&W, PERSON, 1);
	ck_assert_int_eq(gfs_tver_diff(empty, bv, count_row, &rows, &full), 0);
	ck_assert_uint_eq(rows, N);
	gfs_tver_close(empty);
	gfs_tver_close(bv);
	fprintf(stderr, "check_merge: cost_is_o_changed: %" PRIu64 " pages read by the merge's diffs (%d rows, 10 changes per side); %" PRIu64 " for a walk of the whole table\n",
		pages, N, full);
	ck_assert_uint_le(pages, 200);
	ck_assert_uint_gt(pages, 0);
	ck_assert_uint_lt(pages * 10, full);
	ck_assert_int_eq((int)gfs_merge_items(W.m, &(const struct gfs_merge_item *){0}), 0);
	ck_assert_int_eq((int)gfs_merge_taken(W.m), 10);
	write_merged(&W);
	world_close(&W);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("merge");
	TCase *tc = tcase_create("merge");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, one_sided_changes_are_taken_and_untouched_tables_adopted);
	tcase_add_test(tc, identical_changes_on_both_sides_are_no_conflict);
	tcase_add_test(tc, conflict_deleted_on_one_side_changed_on_the_other);
	tcase_add_test(tc, invalid_unique_is_listed_and_never_resolved);
	tcase_add_test(tc, invalid_card_is_listed);
	tcase_add_test(tc, merged_version_has_no_foreign_segment);
	tcase_add_test(tc, serial_collision_gets_a_fresh_serial);
	tcase_add_test(tc, cost_is_o_changed);
	suite_add_tcase(s, tc);
	/* These make a fresh store per --prefer value themselves. */
	tc = tcase_create("prefer");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, conflict_changed_on_both_sides);
	tcase_add_test(tc, conflict_edge_whose_endpoint_the_source_deleted);
	tcase_add_test(tc, conflict_edge_whose_endpoint_the_target_deleted);
	tcase_add_test(tc, an_edge_in_two_conflicts_is_decided_once);
	tcase_add_test(tc, random_disjoint_changes_merge_to_both);
	tcase_add_test(tc, random_conflicts_merge_valid);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
