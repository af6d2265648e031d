/* check_apply.c - gfs_graph_apply (apply.h): every change kind, key
 * fill-in, @unique and @card against the pins and inside a batch, the
 * delete cascade and the rename's re-pointed edges (exports compared byte
 * for byte), group commit (one bad change fails only itself), the log
 * record naming the writers, and a writer killed at each commit failpoint.
 * Each test makes its own store in a fresh temp dir. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apply.h"
#include "failpoints.h"
#include "graph.h"
#include "manifest.h"
#include "recover.h"
#include "testutil.h"

static const char SCHEMA[] =
	"node Person { slug: String @key  name: String?  age: I32?  email: String? @unique }\n"
	"node Company { name: String @key }\n"
	"node Cell { row: I32  col: I32  v: String?  @key(row, col) }\n"
	"node Note { text: String }\n"
	"edge Knows: Person -> Person @card(0..2) { since: Date? }\n"
	"edge WorksAt: Person -> Company @card(1..1)\n"
	"edge Tagged: Note -> Person\n"
	"edge Likes: Person -> Note @card(2..)\n";

#include "teststore.h"

static int load_text(struct gfs_graph *g, const char *text)
{
	struct gfs_load_opts o = { .mode = GFS_LOAD_MERGE, .source = "seed.jsonl" };
	struct gfs_load_result res;
	struct gfs_diag d = {{0}};
	int fd = memfd_create("in", MFD_CLOEXEC), rc;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(gfs_write_all(fd, text, strlen(text)), 0);
	lseek(fd, 0, SEEK_SET);
	rc = gfs_graph_load(g, fd, &o, &res, &d);
	ck_assert_msg(rc == 0, "seed: %s", d.msg);
	close(fd);
	return rc;
}

static void export_is(struct gfs_graph *g, const char *type, const char *want)
{
	char *got = export_text(g, 0, type);

	ck_assert_str_eq(got, want);
	free(got);
}

static uint64_t head(struct gfs_graph *g)
{
	return gfs_manifest_head_version(gfs_graph_manifest(g));
}

#define S(x) (x), sizeof(x) - 1
#define NPUT(t, k, dat) { .kind = GFS_CH_NODE_PUT, .type = (t), .key = S(k), .data = S(dat) }
#define NDEL(t, k) { .kind = GFS_CH_NODE_DEL, .type = (t), .key = S(k) }
#define NREN(t, k, k2) { .kind = GFS_CH_NODE_RENAME, .type = (t), .key = S(k), .key2 = S(k2) }
#define EPUT(t, id, f, dst, dat) { .kind = GFS_CH_EDGE_PUT, .type = (t), .key = S(id), \
				    .from = (f), .from_len = sizeof(f) - 1, .to = (dst), \
				    .to_len = sizeof(dst) - 1, .data = S(dat) }
#define EDEL(t, id) { .kind = GFS_CH_EDGE_DEL, .type = (t), .key = S(id) }

static int apply(struct gfs_graph *g, struct gfs_change *ch, size_t n,
		 struct gfs_apply_result *res)
{
	struct gfs_apply_opts o = { .source = "mount /mnt" };
	struct gfs_diag d = {{0}};

	return gfs_graph_apply(g, ch, n, &o, res, &d);
}

/* Applies and requires every change to succeed in one new version. */
static void apply_ok(struct gfs_graph *g, struct gfs_change *ch, size_t n)
{
	struct gfs_apply_result res;
	uint64_t before = head(g);
	int rc = apply(g, ch, n, &res);

	for (size_t i = 0; i < n; i++)
		ck_assert_msg(ch[i].rc == 0, "change %zu: %d %s", i, ch[i].rc, ch[i].msg);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(res.version, before + 1);
	ck_assert_uint_eq(head(g), before + 1);
	ck_assert_uint_eq(res.applied, n);
}

static const char SEED[] =
	"{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"email\":\"a@x\"}}\n"
	"{\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"name\":\"Bob\"}}\n"
	"{\"type\":\"Person\",\"data\":{\"slug\":\"carol\"}}\n"
	"{\"type\":\"Company\",\"data\":{\"name\":\"acme\"}}\n"
	"{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"id\":\"k1\"}}\n"
	"{\"edge\":\"Knows\",\"from\":\"bob\",\"to\":\"carol\",\"data\":{\"id\":\"k2\",\"since\":\"2020-01-02\"}}\n"
	"{\"edge\":\"Knows\",\"from\":\"bob\",\"to\":\"bob\",\"data\":{\"id\":\"k3\"}}\n"
	"{\"edge\":\"WorksAt\",\"from\":\"bob\",\"to\":\"acme\",\"data\":{\"id\":\"w1\"}}\n"
	"{\"edge\":\"WorksAt\",\"from\":\"alice\",\"to\":\"acme\",\"data\":{\"id\":\"w2\"}}\n"
	"{\"type\":\"Note\",\"data\":{\"id\":\"n1\",\"text\":\"hi\"}}\n"
	"{\"edge\":\"Tagged\",\"from\":\"n1\",\"to\":\"bob\",\"data\":{\"id\":\"t1\"}}\n";

static struct gfs_graph *seeded(void)
{
	struct gfs_graph *g = open_g();

	load_text(g, SEED);
	ck_assert_uint_eq(head(g), 2);
	return g;
}

START_TEST(node_put_fills_the_key_and_publishes_one_version)
{
	struct gfs_graph *g = seeded();
	struct gfs_change ch[] = {
		NPUT("Person", "dave", "{\"name\":\"Dave\",\"age\":7}"),
		NPUT("Person", "bob", "{\"slug\":\"bob\",\"name\":\"Robert\"}"),
	};
	struct gfs_apply_result res;

	ck_assert_int_eq(apply(g, ch, 2, &res), 0);
	ck_assert_int_eq(ch[0].rc, 0);
	ck_assert_int_eq(ch[1].rc, 0);
	ck_assert_uint_eq(res.version, 3);
	ck_assert_uint_eq(ch[0].version, 3);
	ck_assert_uint_eq(ch[1].version, 3);
	ck_assert_uint_eq(res.rows_put, 2);
	ck_assert_uint_eq(res.rows_deleted, 0);
	export_is(g, "Person",
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"email\":\"a@x\"}}\n"
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"name\":\"Robert\"}}\n"
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"carol\"}}\n"
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"dave\",\"name\":\"Dave\",\"age\":7}}\n");
	gfs_graph_close(g);
}
END_TEST

START_TEST(a_disagreeing_key_or_bad_data_fails_naming_both)
{
	struct gfs_graph *g = seeded();
	struct gfs_change ch[] = {
		NPUT("Person", "bob", "{\"slug\":\"robert\"}"),
		NPUT("Person", "bob", "{\"age\":\"x\"}"),
		NPUT("Person", "bob", "[1]"),
		NPUT("Person", "bob", "{\"age\":"),
		NPUT("Nope", "bob", "{}"),
		NPUT("Note", "n2", "{\"id\":\"n3\",\"text\":\"t\"}"),
	};
	struct gfs_apply_result res;
	char *before = export_text(g, 0, NULL);

	ck_assert_int_eq(apply(g, ch, 6, &res), 0);
	ck_assert_uint_eq(res.version, 0);
	ck_assert_uint_eq(res.failed, 6);
	ck_assert_uint_eq(head(g), 2);
	for (size_t i = 0; i < 6; i++)
		ck_assert_int_eq(ch[i].rc, GFS_EDATA);
	ck_assert_msg(strstr(ch[0].msg, "robert") && strstr(ch[0].msg, "'bob'"), "%s", ch[0].msg);
	ck_assert_msg(strstr(ch[1].msg, "Person 'bob': property 'age'"), "%s", ch[1].msg);
	ck_assert_msg(strstr(ch[2].msg, "expected a JSON object"), "%s", ch[2].msg);
	ck_assert_msg(strstr(ch[3].msg, "not valid JSON"), "%s", ch[3].msg);
	ck_assert_msg(strstr(ch[4].msg, "unknown node type 'Nope'"), "%s", ch[4].msg);
	ck_assert_msg(strstr(ch[5].msg, "n3") && strstr(ch[5].msg, "n2"), "%s", ch[5].msg);
	export_is(g, NULL, before);
	free(before);
	/* nothing at all: no change, or none with a known type */
	ck_assert_int_eq(apply(g, ch, 0, &res), 0);
	ck_assert_uint_eq(res.version, 0);
	ck_assert_int_eq(apply(g, &ch[4], 1, &res), 0);
	ck_assert_int_eq(ch[4].rc, GFS_EDATA);
	ck_assert_uint_eq(head(g), 2);
	gfs_graph_close(g);
}
END_TEST

START_TEST(composite_and_unkeyed_types)
{
	struct gfs_graph *g = seeded();
	struct gfs_change ok[] = {
		NPUT("Cell", "[1,2]", "{\"v\":\"x\"}"),
		NPUT("Cell", "[3,4]", "{\"row\":3,\"col\":4}"),
		NPUT("Note", "n2", "{\"text\":\"t\"}"),
	};
	struct gfs_change bad[] = {
		NPUT("Cell", "1", "{}"),
		NPUT("Cell", "[1,5]", "{\"col\":6}"),
	};
	struct gfs_apply_result res;

	apply_ok(g, ok, 3);
	export_is(g, "Cell",
		  "{\"type\":\"Cell\",\"data\":{\"row\":1,\"col\":2,\"v\":\"x\"}}\n"
		  "{\"type\":\"Cell\",\"data\":{\"row\":3,\"col\":4}}\n");
	export_is(g, "Note",
		  "{\"type\":\"Note\",\"data\":{\"id\":\"n1\",\"text\":\"hi\"}}\n"
		  "{\"type\":\"Note\",\"data\":{\"id\":\"n2\",\"text\":\"t\"}}\n");
	ck_assert_int_eq(apply(g, bad, 2, &res), 0);
	ck_assert_int_eq(bad[0].rc, GFS_EDATA);
	ck_assert_msg(strstr(bad[0].msg, "2 parts"), "%s", bad[0].msg);
	ck_assert_int_eq(bad[1].rc, GFS_EDATA);
	ck_assert_msg(strstr(bad[1].msg, "[1,6]") && strstr(bad[1].msg, "[1,5]"), "%s", bad[1].msg);
	ck_assert_uint_eq(head(g), 3);
	gfs_graph_close(g);
}
END_TEST

START_TEST(unique_against_the_pin_and_inside_the_batch)
{
	struct gfs_graph *g = seeded();
	struct gfs_change ch[] = {
		NPUT("Person", "bob", "{\"email\":\"a@x\"}"),   /* alice has it */
		NPUT("Person", "dave", "{\"email\":\"d@x\"}"),
		NPUT("Person", "erin", "{\"email\":\"d@x\"}"),  /* dave, in the batch */
		NPUT("Person", "alice", "{\"email\":\"a@x\"}"), /* its own key */
	};
	struct gfs_change freed[] = {
		NDEL("Person", "alice"),
		NPUT("Person", "bob", "{\"email\":\"a@x\"}"),   /* freed by the delete */
		NPUT("Person", "dave", "{\"email\":\"e@x\"}"),
		NPUT("Person", "erin", "{\"email\":\"d@x\"}"),  /* freed by the update */
	};
	struct gfs_apply_result res;

	ck_assert_int_eq(apply(g, ch, 4, &res), 0);
	ck_assert_int_eq(ch[0].rc, GFS_EDATA);
	ck_assert_msg(strstr(ch[0].msg, "unique value") && strstr(ch[0].msg, "'alice'"), "%s", ch[0].msg);
	ck_assert_int_eq(ch[1].rc, 0);
	ck_assert_int_eq(ch[2].rc, GFS_EDATA);
	ck_assert_msg(strstr(ch[2].msg, "'dave'"), "%s", ch[2].msg);
	ck_assert_int_eq(ch[3].rc, 0);
	ck_assert_uint_eq(res.version, 3);
	ck_assert_uint_eq(res.rows_put, 1); /* alice's put changed nothing */
	{ /* a batch of no-ops publishes nothing; its changes are in the head */
		struct gfs_change same[] = { NPUT("Person", "alice", "{\"email\":\"a@x\"}") };
		ck_assert_int_eq(apply(g, same, 1, &res), 0);
		ck_assert_int_eq(same[0].rc, 0);
		ck_assert_uint_eq(res.version, 0);
		ck_assert_uint_eq(same[0].version, 3);
		ck_assert_uint_eq(head(g), 3);
	}
	apply_ok(g, freed, 4);
	export_is(g, "Person",
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"bob\",\"email\":\"a@x\"}}\n"
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"carol\"}}\n"
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"dave\",\"email\":\"e@x\"}}\n"
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"erin\",\"email\":\"d@x\"}}\n");
	gfs_graph_close(g);
}
END_TEST

START_TEST(card_counts_pin_and_batch)
{
	struct gfs_graph *g = seeded();
	struct gfs_change ch[] = {
		EPUT("Knows", "k4", "bob", "alice", "{}"),      /* bob has k2, k3: 3 > 2 */
		EDEL("Knows", "k3"),
		EPUT("Knows", "k5", "bob", "alice", "{}"),      /* now 2 */
		EPUT("WorksAt", "w3", "carol", "acme", "{}"),   /* 1 */
		EPUT("WorksAt", "w4", "alice", "acme", "{}"),   /* alice has w2 */
	};
	struct gfs_apply_result res;

	ck_assert_int_eq(apply(g, ch, 5, &res), 0);
	ck_assert_int_eq(ch[0].rc, GFS_EDATA);
	ck_assert_msg(strstr(ch[0].msg, "Knows: source Person 'bob' would have 3 edges, but @card(0..2) allows fewer"),
		      "%s", ch[0].msg);
	ck_assert_int_eq(ch[1].rc, 0);
	ck_assert_int_eq(ch[2].rc, 0);
	ck_assert_int_eq(ch[3].rc, 0);
	ck_assert_int_eq(ch[4].rc, GFS_EDATA);
	export_is(g, "Knows",
		  "{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"id\":\"k1\"}}\n"
		  "{\"edge\":\"Knows\",\"from\":\"bob\",\"to\":\"carol\",\"data\":{\"id\":\"k2\",\"since\":\"2020-01-02\"}}\n"
		  "{\"edge\":\"Knows\",\"from\":\"bob\",\"to\":\"alice\",\"data\":{\"id\":\"k5\"}}\n");
	gfs_graph_close(g);
}
END_TEST

START_TEST(edges_need_endpoints_and_keep_theirs)
{
	struct gfs_graph *g = seeded();
	struct gfs_change ch[] = {
		EPUT("Knows", "x", "alice", "zed", "{}"),
		EPUT("Knows", "k1", "alice", "carol", "{}"),    /* k1 goes alice -> bob */
		EDEL("Knows", "nope"),
		EPUT("Knows", "k1", "alice", "bob", "{\"since\":\"2021-03-04\"}"),
		NPUT("Person", "zed", "{}"),
		EPUT("Knows", "x", "alice", "zed", "{}"),       /* zed exists now */
		{ .kind = GFS_CH_EDGE_PUT, .type = "Tagged", .from = "n1", .from_len = 2,
		  .to = "carol", .to_len = 5 },
	};
	struct gfs_apply_result res;
	char *out;

	ck_assert_int_eq(apply(g, ch, 7, &res), 0);
	ck_assert_int_eq(ch[0].rc, GFS_EDATA);
	ck_assert_str_eq(ch[0].msg, "edge Knows 'x' (alice -> zed): target Person 'zed' does not exist");
	ck_assert_int_eq(ch[1].rc, GFS_EDATA);
	ck_assert_msg(strstr(ch[1].msg, "alice -> bob"), "%s", ch[1].msg);
	ck_assert_int_eq(ch[2].rc, -ENOENT);
	for (size_t i = 3; i < 7; i++)
		ck_assert_msg(ch[i].rc == 0, "change %zu: %s", i, ch[i].msg);
	export_is(g, "Knows",
		  "{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"id\":\"k1\",\"since\":\"2021-03-04\"}}\n"
		  "{\"edge\":\"Knows\",\"from\":\"bob\",\"to\":\"carol\",\"data\":{\"id\":\"k2\",\"since\":\"2020-01-02\"}}\n"
		  "{\"edge\":\"Knows\",\"from\":\"bob\",\"to\":\"bob\",\"data\":{\"id\":\"k3\"}}\n"
		  "{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"zed\",\"data\":{\"id\":\"x\"}}\n");
	out = export_text(g, 0, "Tagged"); /* a generated ULID id */
	ck_assert_msg(strstr(out, "\"from\":\"n1\",\"to\":\"carol\",\"data\":{\"id\":\""), "%s", out);
	free(out);
	gfs_graph_close(g);
}
END_TEST

START_TEST(delete_cascades_over_every_edge_type_both_directions)
{
	struct gfs_graph *g = seeded();
	struct gfs_change ch[] = {
		EPUT("Knows", "k9", "carol", "bob", "{}"),     /* added in the batch */
		NDEL("Person", "bob"),
	};
	struct gfs_change again[] = { NDEL("Person", "bob") };
	struct gfs_apply_result res;

	apply_ok(g, ch, 2);
	export_is(g, NULL,
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"email\":\"a@x\"}}\n"
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"carol\"}}\n"
		  "{\"type\":\"Company\",\"data\":{\"name\":\"acme\"}}\n"
		  "{\"type\":\"Note\",\"data\":{\"id\":\"n1\",\"text\":\"hi\"}}\n"
		  "{\"edge\":\"WorksAt\",\"from\":\"alice\",\"to\":\"acme\",\"data\":{\"id\":\"w2\"}}\n");
	ck_assert_int_eq(apply(g, again, 1, &res), 0);
	ck_assert_int_eq(again[0].rc, -ENOENT);
	ck_assert_uint_eq(res.version, 0);
	gfs_graph_close(g);
}
END_TEST

START_TEST(rename_repoints_edges_and_refuses_a_taken_name)
{
	struct gfs_graph *g = seeded();
	struct gfs_change ch[] = {
		NREN("Person", "bob", "robert"),
	};
	struct gfs_change bad[] = {
		NREN("Person", "alice", "carol"),
		NREN("Person", "nobody", "x"),
		NREN("Company", "acme", "acme2"),
	};
	struct gfs_apply_result res;

	apply_ok(g, ch, 1);
	export_is(g, NULL,
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"email\":\"a@x\"}}\n"
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"carol\"}}\n"
		  "{\"type\":\"Person\",\"data\":{\"slug\":\"robert\",\"name\":\"Bob\"}}\n"
		  "{\"type\":\"Company\",\"data\":{\"name\":\"acme\"}}\n"
		  "{\"type\":\"Note\",\"data\":{\"id\":\"n1\",\"text\":\"hi\"}}\n"
		  "{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"robert\",\"data\":{\"id\":\"k1\"}}\n"
		  "{\"edge\":\"Knows\",\"from\":\"robert\",\"to\":\"carol\",\"data\":{\"id\":\"k2\",\"since\":\"2020-01-02\"}}\n"
		  "{\"edge\":\"Knows\",\"from\":\"robert\",\"to\":\"robert\",\"data\":{\"id\":\"k3\"}}\n"
		  "{\"edge\":\"WorksAt\",\"from\":\"robert\",\"to\":\"acme\",\"data\":{\"id\":\"w1\"}}\n"
		  "{\"edge\":\"WorksAt\",\"from\":\"alice\",\"to\":\"acme\",\"data\":{\"id\":\"w2\"}}\n"
		  "{\"edge\":\"Tagged\",\"from\":\"n1\",\"to\":\"robert\",\"data\":{\"id\":\"t1\"}}\n");
	ck_assert_int_eq(apply(g, bad, 2, &res), 0);
	ck_assert_int_eq(bad[0].rc, -EEXIST);
	ck_assert_msg(strstr(bad[0].msg, "Person 'carol'"), "%s", bad[0].msg);
	ck_assert_int_eq(bad[1].rc, -ENOENT);
	ck_assert_uint_eq(res.version, 0);
	/* a rename of the target side, then a put under the old name */
	struct gfs_change more[] = {
		NREN("Company", "acme", "acme2"),
		NPUT("Company", "acme", "{}"),
		EPUT("WorksAt", "w5", "carol", "acme", "{}"),
	};
	apply_ok(g, more, 3);
	export_is(g, "WorksAt",
		  "{\"edge\":\"WorksAt\",\"from\":\"robert\",\"to\":\"acme2\",\"data\":{\"id\":\"w1\"}}\n"
		  "{\"edge\":\"WorksAt\",\"from\":\"alice\",\"to\":\"acme2\",\"data\":{\"id\":\"w2\"}}\n"
		  "{\"edge\":\"WorksAt\",\"from\":\"carol\",\"to\":\"acme\",\"data\":{\"id\":\"w5\"}}\n");
	gfs_graph_close(g);
}
END_TEST

START_TEST(one_bad_change_fails_only_itself_and_the_log_names_the_writers)
{
	struct gfs_graph *g = seeded();
	struct gfs_writer w1 = { .uid = 1000, .pid = 42, .comm = "vim" };
	struct gfs_writer w2 = { .uid = 1001, .pid = 43, .comm = "cp" };
	struct gfs_change ch[] = {
		NPUT("Person", "dave", "{}"),
		NPUT("Person", "erin", "{\"age\":\"x\"}"),
		NPUT("Company", "initech", "{}"),
		NPUT("Person", "frank", "{}"),
	};
	struct gfs_apply_result res;
	struct gfs_gv *gv = NULL;

	ch[0].who = &w1;
	ch[1].who = &w2;
	ch[2].who = &w2;
	ch[3].who = &w1;
	ck_assert_int_eq(apply(g, ch, 4, &res), 0);
	ck_assert_int_eq(ch[1].rc, GFS_EDATA);
	ck_assert_uint_eq(ch[1].version, 0);
	ck_assert_uint_eq(res.applied, 3);
	ck_assert_uint_eq(res.failed, 1);
	ck_assert_uint_eq(res.version, 3);
	ck_assert_uint_eq(ch[0].version, 3);
	ck_assert_uint_eq(ch[2].version, 3);
	ck_assert_uint_eq(head(g), 3);
	ck_assert_int_eq(gfs_manifest_head(gfs_graph_manifest(g), &gv), 0);
	ck_assert_str_eq(gv->op, "write");
	ck_assert_str_eq(gv->op_id, res.op_id);
	ck_assert_str_eq(gv->detail,
		"{\"source\":\"mount /mnt\",\"changes\":["
		"{\"op\":\"put\",\"type\":\"Person\",\"key\":\"dave\",\"uid\":1000,\"pid\":42,\"comm\":\"vim\"},"
		"{\"op\":\"put\",\"type\":\"Company\",\"key\":\"initech\",\"uid\":1001,\"pid\":43,\"comm\":\"cp\"},"
		"{\"op\":\"put\",\"type\":\"Person\",\"key\":\"frank\",\"uid\":1000,\"pid\":42,\"comm\":\"vim\"}],"
		"\"writers\":[{\"uid\":1000,\"pid\":42,\"comm\":\"vim\"},{\"uid\":1001,\"pid\":43,\"comm\":\"cp\"}]}");
	gfs_gv_free(gv);
	gfs_graph_close(g);
}
END_TEST

START_TEST(the_log_lists_at_most_64_changes)
{
	struct gfs_graph *g = open_g();
	struct gfs_change ch[70];
	char keys[70][8];
	struct gfs_gv *gv = NULL;

	memset(ch, 0, sizeof ch);
	for (int i = 0; i < 70; i++) {
		snprintf(keys[i], sizeof keys[i], "p%02d", i);
		ch[i] = (struct gfs_change){ .kind = GFS_CH_NODE_PUT, .type = "Person",
					     .key = keys[i], .key_len = 3 };
	}
	apply_ok(g, ch, 70);
	ck_assert_int_eq(gfs_manifest_head(gfs_graph_manifest(g), &gv), 0);
	ck_assert_msg(strstr(gv->detail, "\"key\":\"p63\"") && !strstr(gv->detail, "\"key\":\"p64\"") &&
		      strstr(gv->detail, "\"more\":6"), "%s", gv->detail);
	gfs_gv_free(gv);
	gfs_graph_close(g);
}
END_TEST

static void keep_report(const char *msg, void *arg)
{
	char *buf = arg;
	size_t n = strlen(buf);

	snprintf(buf + n, 4096 - n, "%s\n", msg);
}

/* fsck's problem count; its reports into buf (4096 bytes) if not NULL. */
static unsigned fsck_problems(struct gfs_graph *g, char *buf)
{
	char scratch[4096] = "";
	unsigned problems = 0;

	ck_assert_int_eq(gfs_graph_fsck(g, keep_report, buf ? buf : scratch, &problems), 0);
	return problems;
}

static size_t count_lines(const char *text)
{
	size_t n = 0;

	for (const char *p = text; (p = strchr(p, '\n')); p++)
		n++;
	return n;
}

/* A node with thousands of edges of two types, in and out: a rename
 * re-points them all, a delete takes them all, one version each. */
START_TEST(a_hub_is_renamed_then_deleted_with_all_its_edges)
{
	enum { N = 3000 };
	struct gfs_graph *g = open_g();
	struct gfs_buf seed;
	struct gfs_change ren[] = { NREN("Person", "hub", "hub2") };
	struct gfs_change del[] = { NDEL("Person", "hub2") };
	struct gfs_apply_result res;
	char *out;

	gfs_buf_init(&seed);
	ck_assert_int_eq(gfs_buf_appendf(&seed, "{\"type\":\"Person\",\"data\":{\"slug\":\"hub\"}}\n"), 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(gfs_buf_appendf(&seed,
			"{\"type\":\"Person\",\"data\":{\"slug\":\"p%05d\"}}\n"
			"{\"type\":\"Note\",\"data\":{\"id\":\"n%05d\",\"text\":\"t\"}}\n"
			"{\"edge\":\"Knows\",\"from\":\"p%05d\",\"to\":\"hub\",\"data\":{\"id\":\"k%05d\"}}\n"
			"{\"edge\":\"Tagged\",\"from\":\"n%05d\",\"to\":\"hub\",\"data\":{\"id\":\"t%05d\"}}\n",
			i, i, i, i, i, i), 0);
	ck_assert_int_eq(gfs_buf_appendf(&seed,
		"{\"edge\":\"Knows\",\"from\":\"hub\",\"to\":\"hub\",\"data\":{\"id\":\"loop\"}}\n"
		"{\"edge\":\"Knows\",\"from\":\"hub\",\"to\":\"p00000\",\"data\":{\"id\":\"out\"}}\n"), 0);
	ck_assert_int_eq(gfs_buf_appendc(&seed, '\0'), 0);
	load_text(g, seed.p);
	gfs_buf_release(&seed);
	ck_assert_int_eq(apply(g, ren, 1, &res), 0);
	ck_assert_msg(ren[0].rc == 0, "%s", ren[0].msg);
	/* the node twice (old deleted, new put), every edge put again */
	ck_assert_uint_eq(res.rows_put, 1 + 2 * N + 2);
	ck_assert_uint_eq(res.rows_deleted, 1);
	out = export_text(g, 0, "Knows");
	ck_assert_uint_eq(count_lines(out), N + 2);
	ck_assert_ptr_null(strstr(out, "\"hub\""));
	ck_assert_ptr_nonnull(strstr(out, "{\"edge\":\"Knows\",\"from\":\"hub2\",\"to\":\"hub2\",\"data\":{\"id\":\"loop\"}}\n"));
	free(out);
	out = export_text(g, 0, "Tagged");
	ck_assert_uint_eq(count_lines(out), N);
	ck_assert_ptr_null(strstr(out, "\"hub\""));
	free(out);
	ck_assert_int_eq(apply(g, del, 1, &res), 0);
	ck_assert_int_eq(del[0].rc, 0);
	ck_assert_uint_eq(res.rows_deleted, 1 + 2 * N + 2);
	out = export_text(g, 0, "Knows");
	ck_assert_str_eq(out, "");
	free(out);
	out = export_text(g, 0, "Tagged");
	ck_assert_str_eq(out, "");
	free(out);
	ck_assert_uint_eq(fsck_problems(g, NULL), 0);
	gfs_graph_close(g);
}
END_TEST

/* A change that makes many overlay entries (a cascade over 40 edges)
 * and then fails (@card min) is undone exactly: the next change and the
 * published version see every edge it had deleted. */
START_TEST(a_large_failed_change_is_undone_exactly)
{
	struct gfs_graph *g = open_g();
	struct gfs_buf seed;
	struct gfs_change ch[] = {
		NDEL("Note", "nx"),      /* p would keep 1 Likes: @card(2..) */
		NPUT("Person", "q00", "{\"name\":\"x\"}"),
		EDEL("Tagged", "t39"),
	};
	struct gfs_apply_result res;
	char *out;

	gfs_buf_init(&seed);
	ck_assert_int_eq(gfs_buf_appendf(&seed,
		"{\"type\":\"Person\",\"data\":{\"slug\":\"p\"}}\n"
		"{\"type\":\"Note\",\"data\":{\"id\":\"nx\",\"text\":\"x\"}}\n"
		"{\"type\":\"Note\",\"data\":{\"id\":\"ny\",\"text\":\"y\"}}\n"
		"{\"edge\":\"Likes\",\"from\":\"p\",\"to\":\"nx\",\"data\":{\"id\":\"l1\"}}\n"
		"{\"edge\":\"Likes\",\"from\":\"p\",\"to\":\"ny\",\"data\":{\"id\":\"l2\"}}\n"), 0);
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(gfs_buf_appendf(&seed,
			"{\"type\":\"Person\",\"data\":{\"slug\":\"q%02d\"}}\n"
			"{\"edge\":\"Tagged\",\"from\":\"nx\",\"to\":\"q%02d\",\"data\":{\"id\":\"t%02d\"}}\n",
			i, i, i), 0);
	ck_assert_int_eq(gfs_buf_appendc(&seed, '\0'), 0);
	load_text(g, seed.p);
	gfs_buf_release(&seed);
	ck_assert_int_eq(apply(g, ch, 3, &res), 0);
	ck_assert_int_eq(ch[0].rc, GFS_EDATA);
	ck_assert_msg(strstr(ch[0].msg, "Likes: source Person 'p' would have 1 edges, but @card(2..) allows more"),
		      "%s", ch[0].msg);
	ck_assert_msg(ch[1].rc == 0 && ch[2].rc == 0, "%s / %s", ch[1].msg, ch[2].msg);
	ck_assert_uint_eq(res.rows_put, 1);
	ck_assert_uint_eq(res.rows_deleted, 1);
	out = export_text(g, 0, "Tagged");
	ck_assert_uint_eq(count_lines(out), 39);
	ck_assert_ptr_nonnull(strstr(out, "\"id\":\"t00\""));
	ck_assert_ptr_null(strstr(out, "\"id\":\"t39\""));
	free(out);
	out = export_text(g, 0, "Note");
	ck_assert_uint_eq(count_lines(out), 2);
	free(out);
	gfs_graph_close(g);
}
END_TEST

/* Copies STORE/tables/<table>/<from> to <to> (a version nobody armed). */
static void copy_version(const char *table, unsigned from, unsigned to)
{
	char cmd[PATH_MAX * 2 + 64];

	snprintf(cmd, sizeof cmd, "cp '%s/tables/%s/%u' '%s/tables/%s/%u'",
		 dir, table, from, dir, table, to);
	ck_assert_int_eq(system(cmd), 0);
}

START_TEST(orphans_above_the_pin_and_missing_pins_are_refused)
{
	struct gfs_graph *g = seeded();
	struct gfs_change ch[] = { NPUT("Person", "dave", "{}") };
	struct gfs_apply_result res;
	struct gfs_diag d = {{0}};
	struct gfs_gv *gv = NULL;
	char path[PATH_MAX + 64];
	uint32_t pin;
	int rc;

	ck_assert_int_eq(gfs_manifest_head(gfs_graph_manifest(g), &gv), 0);
	pin = gfs_gv_pin(gv, "node:Person");
	gfs_gv_free(gv);
	/* a copy of the pinned version as pin+1: no sidecar's version (nor a
	 * valid one: it says it is the pin), found above the pin */
	copy_version("node:Person", pin, pin + 1);
	rc = gfs_graph_apply(g, ch, 1, NULL, &res, &d);
	ck_assert_msg(rc == GFS_ECORRUPT || rc == GFS_ERECOVERY, "rc %d: %s", rc, d.msg);
	ck_assert_int_eq(ch[0].rc, rc);
	ck_assert_uint_eq(head(g), 2);
	snprintf(path, sizeof path, "%s/tables/node:Person/%u", dir, pin + 1);
	ck_assert_int_eq(unlink(path), 0);
	apply_ok(g, ch, 1); /* gone: the next version is pin+1 again */
	ck_assert_int_eq(unlink(path), 0); /* now the pinned version is missing */
	ck_assert_int_eq(gfs_graph_apply(g, ch, 1, NULL, &res, &d), GFS_EVIOLATION);
	ck_assert_msg(strstr(d.msg, "table 'node:Person' has version") &&
		      strstr(d.msg, "but the manifest shows"), "%s", d.msg);
	gfs_graph_close(g);
}
END_TEST

/* ---- one batch = the changes one by one ---------------------------------
 * apply.h promises that a batch gives what applying its valid changes one
 * by one would give, in one version.  Random batches over a few keys (so
 * that unique keys, @card, cascades, renames and endpoints collide) go to
 * two stores: as one batch into one, change by change into the other;
 * each change's rc and message and then the exports must agree.
 * GFS_APPLY_DIFF_SEED=N replays one seed; GFS_APPLY_DIFF_ROUNDS sets the
 * rounds (make stress runs more). */

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

#define PICK(x, arr) (arr)[rng_next(x) % (sizeof(arr) / sizeof *(arr))]

struct rchange {
	struct gfs_change ch;
	char key[16], key2[16], from[16], to[16], data[96];
};

static void random_change(uint64_t *x, struct rchange *r)
{
	static const char *const people[] = { "p0", "p1", "p2", "p3", "p4" };
	static const char *const firms[] = { "c0", "c1", "c2" };
	static const char *const emails[] = { "\"a@x\"", "\"b@x\"", "null" };
	static const char *const ages[] = { "1", "2", "\"bad\"" };
	static const char *const notes[] = { "n0", "n1", "n2" };
	unsigned k = (unsigned)(rng_next(x) % 14);

	memset(r, 0, sizeof *r);
	snprintf(r->key, sizeof r->key, "%s", PICK(x, people));
	snprintf(r->key2, sizeof r->key2, "%s", PICK(x, people));
	if (k < 3) {
		snprintf(r->data, sizeof r->data, "{\"email\":%s,\"age\":%s}",
			 PICK(x, emails), PICK(x, ages));
		r->ch = (struct gfs_change){ .kind = GFS_CH_NODE_PUT, .type = "Person" };
	} else if (k == 3) {
		r->ch = (struct gfs_change){ .kind = GFS_CH_NODE_DEL, .type = "Person" };
	} else if (k == 4) {
		r->ch = (struct gfs_change){ .kind = GFS_CH_NODE_RENAME, .type = "Person" };
	} else if (k == 5) {
		snprintf(r->key, sizeof r->key, "%s", PICK(x, firms));
		snprintf(r->key2, sizeof r->key2, "%s", PICK(x, firms));
		r->ch = (struct gfs_change){ .kind = rng_next(x) % 2 ? GFS_CH_NODE_PUT :
					     GFS_CH_NODE_RENAME, .type = "Company" };
	} else if (k < 9) {
		bool works = k == 8;
		snprintf(r->key, sizeof r->key, "%c%u", works ? 'w' : 'k',
			 (unsigned)(rng_next(x) % 6));
		snprintf(r->from, sizeof r->from, "%s", PICK(x, people));
		snprintf(r->to, sizeof r->to, "%s", works ? PICK(x, firms) : PICK(x, people));
		r->ch = (struct gfs_change){ .kind = GFS_CH_EDGE_PUT,
					     .type = works ? "WorksAt" : "Knows" };
	} else if (k == 9) {
		snprintf(r->key, sizeof r->key, "k%u", (unsigned)(rng_next(x) % 6));
		r->ch = (struct gfs_change){ .kind = GFS_CH_EDGE_DEL, .type = "Knows" };
	} else if (k < 12) { /* Likes: @card(2..) */
		snprintf(r->key, sizeof r->key, "l%u", (unsigned)(rng_next(x) % 6));
		snprintf(r->from, sizeof r->from, "%s", PICK(x, people));
		snprintf(r->to, sizeof r->to, "%s", PICK(x, notes));
		r->ch = (struct gfs_change){ .kind = k == 10 ? GFS_CH_EDGE_PUT : GFS_CH_EDGE_DEL,
					     .type = "Likes" };
	} else {
		snprintf(r->key, sizeof r->key, "%s", PICK(x, notes));
		snprintf(r->data, sizeof r->data, "{\"text\":\"t\"}");
		r->ch = (struct gfs_change){ .kind = k == 12 ? GFS_CH_NODE_PUT : GFS_CH_NODE_DEL,
					     .type = "Note" };
	}
	r->ch.key = r->key;
	r->ch.key_len = strlen(r->key);
	r->ch.key2 = r->key2;
	r->ch.key2_len = strlen(r->key2);
	r->ch.from = r->from;
	r->ch.from_len = strlen(r->from);
	r->ch.to = r->to;
	r->ch.to_len = strlen(r->to);
	r->ch.data = r->data;
	r->ch.data_len = strlen(r->data);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	uint64_t v;

	return s && *s && !gfs_parse_u64(s, &v) ? v : dflt;
}

START_TEST(a_batch_gives_what_its_changes_give_one_by_one)
{
	char dir2[PATH_MAX];
	struct gfs_diag d = {{0}};
	struct gfs_graph *ga, *gb;
	uint64_t seed0 = env_u64("GFS_APPLY_DIFF_SEED", 0);
	uint64_t rounds = seed0 ? 1 : env_u64("GFS_APPLY_DIFF_ROUNDS", 40);
	size_t seen[5] = { 0 };

	tu_tmpdir(dir2, sizeof dir2);
	strcat(dir2, "/store");
	ck_assert_msg(gfs_graph_init(dir2, SCHEMA, strlen(SCHEMA), "t.pg", "test", &d) == 0, "%s", d.msg);
	ga = open_g();
	ck_assert_int_eq(gfs_graph_open(dir2, 0, &gb, &d), 0);
	for (int k = 0; k < 2; k++) /* p0 likes two notes: @card(2..) in play */
		load_text(k ? gb : ga,
			  "{\"type\":\"Person\",\"data\":{\"slug\":\"p0\"}}\n"
			  "{\"type\":\"Note\",\"data\":{\"id\":\"n0\",\"text\":\"t\"}}\n"
			  "{\"type\":\"Note\",\"data\":{\"id\":\"n1\",\"text\":\"t\"}}\n"
			  "{\"edge\":\"Likes\",\"from\":\"p0\",\"to\":\"n0\",\"data\":{\"id\":\"l0\"}}\n"
			  "{\"edge\":\"Likes\",\"from\":\"p0\",\"to\":\"n1\",\"data\":{\"id\":\"l1\"}}\n");
	for (uint64_t round = 0; round < rounds; round++) {
		uint64_t seed = seed0 ? seed0 : 20261130 + round, x = seed;
		struct rchange r[12];
		struct gfs_apply_result res;
		char *ea, *eb;
		size_t n = 1 + rng_next(&x) % 12;
		for (size_t i = 0; i < n; i++)
			random_change(&x, &r[i]);
		{
			struct gfs_change batch[12];
			for (size_t i = 0; i < n; i++)
				batch[i] = r[i].ch;
			ck_assert_int_eq(apply(ga, batch, n, &res), 0);
			for (size_t i = 0; i < n; i++) {
				struct gfs_change one = r[i].ch;
				ck_assert_int_eq(apply(gb, &one, 1, &res), 0);
				ck_assert_msg(one.rc == batch[i].rc && !strcmp(one.msg, batch[i].msg),
					      "seed %" PRIu64 " change %zu: alone %d '%s', in the batch %d '%s'",
					      seed, i, one.rc, one.msg, batch[i].rc, batch[i].msg);
				seen[one.rc == 0 ? 0 : one.rc == GFS_EDATA ? 1 :
				     one.rc == -ENOENT ? 2 : one.rc == -EEXIST ? 3 : 4]++;
			}
		}
		ea = export_text(ga, 0, NULL);
		eb = export_text(gb, 0, NULL);
		ck_assert_msg(!strcmp(ea, eb), "seed %" PRIu64 ": batch\n%s\none by one\n%s", seed, ea, eb);
		free(ea);
		free(eb);
	}
	/* the batches met every outcome (a seed replay may not) */
	ck_assert_msg(seed0 || (seen[0] && seen[1] && seen[2] && seen[3] && !seen[4]),
		      "outcomes: %zu ok, %zu EDATA, %zu ENOENT, %zu EEXIST, %zu other",
		      seen[0], seen[1], seen[2], seen[3], seen[4]);
	ck_assert_uint_eq(fsck_problems(ga, NULL), 0);
	ck_assert_uint_eq(fsck_problems(gb, NULL), 0);
	gfs_graph_close(ga);
	gfs_graph_close(gb);
	*strrchr(dir2, '/') = '\0';
	tu_rmrf(dir2);
}
END_TEST

/* Two processes apply at once to the same tables: both publish, in some
 * order, and neither change is lost. */
static void racer(int rfd, const char *key)
{
	struct gfs_change ch[] = {
		{ .kind = GFS_CH_NODE_PUT, .type = "Person", .key = key, .key_len = strlen(key) },
		{ .kind = GFS_CH_EDGE_PUT, .type = "Knows", .from = key, .from_len = strlen(key),
		  .to = "carol", .to_len = 5 },
		{ .kind = GFS_CH_NODE_RENAME, .type = "Company", .key = "acme", .key_len = 4,
		  .key2 = key, .key2_len = strlen(key) },
	};
	struct gfs_apply_result res;
	struct gfs_graph *g;
	struct gfs_diag d = {{0}};
	char c;
	int rc;

	if (gfs_graph_open(dir, 0, &g, &d))
		_exit(10);
	if (read(rfd, &c, 1) != 1) /* barrier: the parent releases both */
		_exit(11);
	rc = apply(g, ch, 3, &res);
	gfs_graph_close(g);
	/* one of the two renames finds acme gone: -ENOENT, only itself */
	_exit(rc || ch[0].rc || ch[1].rc || (ch[2].rc && ch[2].rc != -ENOENT) ? 12 :
	      ch[2].rc ? 1 : 0);
}

START_TEST(two_processes_applying_at_once_both_publish)
{
	struct gfs_graph *g = seeded();
	int p[2], st[2];
	pid_t a, b;
	char *out;

	gfs_graph_close(g);
	ck_assert_int_eq(pipe(p), 0);
	if (!(a = fork()))
		racer(p[0], "ann");
	if (!(b = fork()))
		racer(p[0], "ben");
	ck_assert_int_eq(write(p[1], "ab", 2), 2);
	ck_assert_int_eq(waitpid(a, &st[0], 0), a);
	ck_assert_int_eq(waitpid(b, &st[1], 0), b);
	ck_assert(WIFEXITED(st[0]) && WIFEXITED(st[1]));
	/* exactly one rename won */
	ck_assert_int_eq(WEXITSTATUS(st[0]) + WEXITSTATUS(st[1]), 1);
	g = open_g();
	ck_assert_uint_eq(head(g), 4);
	out = export_text(g, 0, "Person");
	ck_assert_msg(strstr(out, "\"slug\":\"ann\"") && strstr(out, "\"slug\":\"ben\""), "%s", out);
	free(out);
	out = export_text(g, 0, "Knows");
	ck_assert_msg(strstr(out, "\"from\":\"ann\",\"to\":\"carol\"") &&
		      strstr(out, "\"from\":\"ben\",\"to\":\"carol\""), "%s", out);
	free(out);
	out = export_text(g, 0, "Company");
	ck_assert_msg(!strcmp(out, "{\"type\":\"Company\",\"data\":{\"name\":\"ann\"}}\n") ||
		      !strcmp(out, "{\"type\":\"Company\",\"data\":{\"name\":\"ben\"}}\n"), "%s", out);
	free(out);
	gfs_graph_close(g);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* Threads of one process (the mount's) applying at once on one handle:
 * they serialize on the table locks, every change is published. */
struct tharg {
	struct gfs_graph *g;
	int id, failed;
};

static void *th_apply(void *p)
{
	struct tharg *a = p;

	for (int i = 0; i < 15; i++) {
		char key[16];
		struct gfs_change ch[2];
		struct gfs_apply_result res;
		struct gfs_diag d = {{0}};
		snprintf(key, sizeof key, "t%d-%02d", a->id, i);
		memset(ch, 0, sizeof ch);
		ch[0] = (struct gfs_change){ .kind = GFS_CH_NODE_PUT, .type = "Person",
					     .key = key, .key_len = strlen(key) };
		ch[1] = (struct gfs_change){ .kind = GFS_CH_EDGE_PUT, .type = "Knows",
					     .from = key, .from_len = strlen(key),
					     .to = "carol", .to_len = 5 };
		if (gfs_graph_apply(a->g, ch, 2, NULL, &res, &d) || res.failed || !res.version)
			a->failed++;
	}
	return NULL;
}

START_TEST(threads_applying_on_one_handle_all_publish)
{
	struct gfs_graph *g = seeded();
	struct tharg a[4];
	pthread_t th[4];
	char *out;
	size_t lines = 0;

	for (int i = 0; i < 4; i++) {
		a[i] = (struct tharg){ .g = g, .id = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, th_apply, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(a[i].failed, 0);
	}
	ck_assert_uint_eq(head(g), 2 + 60);
	out = export_text(g, 0, "Knows");
	for (const char *p = out; (p = strchr(p, '\n')); p++)
		lines++;
	ck_assert_uint_eq(lines, 3 + 60);
	free(out);
	ck_assert_uint_eq(fsck_problems(g, NULL), 0);
	gfs_graph_close(g);
}
END_TEST

#ifdef GFS_FAILPOINTS_ENABLED
#include <fiu-control.h>

/* A writer killed at each step of the commit: the next process's heal
 * (a sweep, as a mount does) leaves the old or the new state, fsck clean. */
START_TEST(a_writer_killed_at_each_commit_step_leaves_old_or_new)
{
	static const char *const points[] = {
		"apply/after_heal", "apply/after_locks", "commit/after_sidecar",
		"commit/after_table", "commit/after_confirm", "commit/before_publish",
		"table/after_tmp_write", "table/after_link", "commit/after_publish",
	};
	/* past the commit point (confirmed): rolled forward */
	static const bool forward[] = { false, false, false, false, true, true,
					false, false, true };
	/* killed with its sidecar armed: fsck names the pending "mount" */
	static const bool armed[] = { false, false, true, true, true, true,
				      true, true, false };
	for (size_t p = 0; p < sizeof points / sizeof *points; p++) {
		struct gfs_graph *g;
		struct gfs_recover_opts ro = { .wait = true };
		struct gfs_recover_report rep;
		struct gfs_diag d = {{0}};
		char *old, *now, spec[80], report[4096];
		uint64_t v0;
		pid_t pid;
		int st;

		if (p > 0) { /* a fresh store each round */
			teardown();
			setup();
		}
		g = seeded();
		old = export_text(g, 0, NULL);
		v0 = head(g);
		gfs_graph_close(g);
		snprintf(spec, sizeof spec, "%s=exit", points[p]);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			struct gfs_change ch[] = {
				NREN("Person", "bob", "bobby"),
				NPUT("Person", "zoe", "{\"name\":\"Zoe\"}"),
			};
			struct gfs_apply_result res;
			/* this process read GRAPHFS_FAILPOINTS long ago (the
			 * fixture's init): arm the point through libfiu */
			if (fiu_enable(points[p], GFS_FP_ACTION_EXIT, NULL, 0))
				_exit(4);
			if (gfs_graph_open(dir, 0, &g, &d))
				_exit(3);
			apply(g, ch, 2, &res);
			_exit(0);
		}
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 86, "%s: status %d", spec, st);
		g = open_g();
		memset(report, 0, sizeof report);
		if (armed[p])
			ck_assert_msg(fsck_problems(g, report) > 0 &&
				      strstr(report, "pending sidecar") && strstr(report, "(mount by"),
				      "%s: %s", spec, report);
		else
			ck_assert_msg(fsck_problems(g, report) == 0, "%s: %s", spec, report);
		ck_assert_msg(gfs_recover_sweep(g, &ro, &rep, &d) == 0, "%s: sweep: %s", spec, d.msg);
		now = export_text(g, 0, NULL);
		/* rolled back: the old content (a roll back publishes its
		 * compensations as one more version); else fully new */
		ck_assert_msg(!strcmp(now, old) == !forward[p], "%s: %s", spec, now);
		if (strcmp(now, old)) {
			ck_assert_uint_eq(head(g), v0 + 1);
			ck_assert_msg(strstr(now, "\"slug\":\"bobby\"") && strstr(now, "\"slug\":\"zoe\"") &&
				      strstr(now, "\"from\":\"bobby\",\"to\":\"carol\"") &&
				      !strstr(now, "\"bob\""), "%s: %s", spec, now);
		}
		ck_assert_msg(fsck_problems(g, NULL) == 0, "%s: fsck after the sweep", spec);
		/* and the store takes the same batch afterwards */
		{
			struct gfs_change ch[] = { NPUT("Person", "zoe", "{\"name\":\"Zoe\"}") };
			struct gfs_apply_result res;
			ck_assert_int_eq(apply(g, ch, 1, &res), 0);
			ck_assert_msg(ch[0].rc == 0, "%s: %s", spec, ch[0].msg);
		}
		free(old);
		free(now);
		gfs_graph_close(g);
	}
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create("apply");
	TCase *tc = tcase_create("apply");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, node_put_fills_the_key_and_publishes_one_version);
	tcase_add_test(tc, a_disagreeing_key_or_bad_data_fails_naming_both);
	tcase_add_test(tc, composite_and_unkeyed_types);
	tcase_add_test(tc, unique_against_the_pin_and_inside_the_batch);
	tcase_add_test(tc, card_counts_pin_and_batch);
	tcase_add_test(tc, edges_need_endpoints_and_keep_theirs);
	tcase_add_test(tc, delete_cascades_over_every_edge_type_both_directions);
	tcase_add_test(tc, rename_repoints_edges_and_refuses_a_taken_name);
	tcase_add_test(tc, one_bad_change_fails_only_itself_and_the_log_names_the_writers);
	tcase_add_test(tc, the_log_lists_at_most_64_changes);
	tcase_add_test(tc, two_processes_applying_at_once_both_publish);
	tcase_add_test(tc, a_batch_gives_what_its_changes_give_one_by_one);
	tcase_add_test(tc, orphans_above_the_pin_and_missing_pins_are_refused);
	tcase_add_test(tc, threads_applying_on_one_handle_all_publish);
	tcase_add_test(tc, a_hub_is_renamed_then_deleted_with_all_its_edges);
	tcase_add_test(tc, a_large_failed_change_is_undone_exactly);
#ifdef GFS_FAILPOINTS_ENABLED
	tcase_add_test(tc, a_writer_killed_at_each_commit_step_leaves_old_or_new);
#endif
	suite_add_tcase(s, tc);
	return tu_run(s);
}
