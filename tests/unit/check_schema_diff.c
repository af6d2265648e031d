/* check_schema_diff.c - the rules of a schema change (src/schema_diff.c,
 * docs/semantics.md "Schema changes") without a store: each change is
 * allowed, checked against the rows, or refused, and the options turn a
 * refusal into a rewrite; an empty table allows anything. */
#include <string.h>

#include "schema.h"
#include "schema_apply.h"
#include "testutil.h"

static const char *const V1 =
	"node Person { slug: String @key  age: I32?  email: String?  kind: enum(a, b)? }\n"
	"node Team { name: String @key }\n"
	"edge Knows: Person -> Person\n";

static struct gfs_schema *parse(const char *text)
{
	struct gfs_schema *s = NULL;
	struct gfs_diag d = { { 0 } };
	int rc = gfs_schema_parse(text, strlen(text), "t.pg", &s, &d);

	ck_assert_msg(rc == 0, "parse (%d): %s", rc, d.msg);
	return s;
}

static bool rows_yes(const char *type, void *arg) { (void)type; (void)arg; return true; }
static bool rows_no(const char *type, void *arg) { (void)type; (void)arg; return false; }

struct diff {
	struct gfs_schema_apply_result r;
	struct gfs_diag d;
	int rc;
};

/* Diffs V1 against text with options; rows says whether tables have rows. */
static void run(struct diff *x, const char *text, bool rows,
		const struct gfs_schema_apply_opts *o)
{
	struct gfs_schema *a = parse(V1), *b = parse(text);

	memset(x, 0, sizeof *x);
	x->rc = gfs_schema_diff(a, b, o, rows ? rows_yes : rows_no, NULL, &x->r, &x->d);
	gfs_schema_free(a);
	gfs_schema_free(b);
}

/* The change of type.prop whose text contains what, or NULL. */
static const struct gfs_schange *find(const struct diff *x, const char *type,
				      const char *prop, const char *what)
{
	for (size_t i = 0; i < x->r.n_changes; i++) {
		const struct gfs_schange *c = &x->r.changes[i];
		if (!strcmp(c->type, type) && !strcmp(c->prop, prop) && strstr(c->what, what))
			return c;
	}
	return NULL;
}

/* One change expected: refused or not, checked or not. */
static void expect(const char *text, bool rows, const char *type, const char *prop,
		   const char *what, bool refused, bool checked)
{
	struct diff x;
	const struct gfs_schange *c;

	run(&x, text, rows, NULL);
	ck_assert_msg(x.rc == 0, "diff rc %d: %s", x.rc, x.d.msg);
	c = find(&x, type, prop, what);
	ck_assert_msg(c, "no change %s.%s '%s' for <<%s>> (%zu changes, first: %s)", type, prop,
		      what, text, x.r.n_changes, x.r.n_changes ? x.r.changes[0].what : "-");
	ck_assert_msg(c->refused == refused, "%s.%s '%s': refused %d", type, prop, c->what, c->refused);
	ck_assert_msg(c->checked == checked, "%s.%s '%s': checked %d", type, prop, c->what, c->checked);
	ck_assert_uint_eq(x.r.n_refused, refused ? 1 : 0);
	gfs_schema_apply_result_release(&x.r);
}

START_TEST(test_allowed)
{
	expect("node Person { slug: String @key  age: I32?  email: String?  kind: enum(a, b)?  nick: String? }\n"
	       "node Team { name: String @key }\nedge Knows: Person -> Person\n",
	       true, "Person", "nick", "new optional property String?", false, false);
	expect("node Person { slug: String @key  age: I32?  email: String?  kind: enum(a, b)? }\n"
	       "node Team { name: String @key }\nnode Club { name: String @key }\nedge Knows: Person -> Person\n",
	       true, "Club", "", "new node type", false, false);
	expect("node Person { slug: String @key  age: I32?  email: String?  kind: enum(a, b, c)? }\n"
	       "node Team { name: String @key }\nedge Knows: Person -> Person\n",
	       true, "Person", "kind", "enum values changed", false, false);
}
END_TEST

START_TEST(test_checked)
{
	expect("node Person { slug: String @key  age: I32?  email: String? @unique  kind: enum(a, b)? }\n"
	       "node Team { name: String @key }\nedge Knows: Person -> Person\n",
	       true, "Person", "email", "new constraint @unique", false, true);
	expect("node Person { slug: String @key  age: I32?  email: String?  kind: enum(a, b)?  @range(age, 0..9) }\n"
	       "node Team { name: String @key }\nedge Knows: Person -> Person\n",
	       true, "Person", "age", "new constraint @range", false, true);
	expect("node Person { slug: String @key  age: I32?  email: String?  kind: enum(a)? }\n"
	       "node Team { name: String @key }\nedge Knows: Person -> Person\n",
	       true, "Person", "kind", "enum values changed", false, true);
	expect("node Person { slug: String @key  age: I32  email: String?  kind: enum(a, b)? }\n"
	       "node Team { name: String @key }\nedge Knows: Person -> Person\n",
	       true, "Person", "age", "now required", false, true);
	expect("node Person { slug: String @key  age: I32?  email: String?  kind: enum(a, b)? }\n"
	       "node Team { name: String @key }\nedge Knows: Person -> Person @card(0..1)\n",
	       true, "Knows", "", "@card changed", false, true);
}
END_TEST

START_TEST(test_refused)
{
	const char *rm = "node Person { slug: String @key  age: I32?  kind: enum(a, b)? }\n"
			 "node Team { name: String @key }\nedge Knows: Person -> Person\n";
	expect(rm, true, "Person", "email", "property removed", true, false);
	expect("node Person { slug: String @key  age: I32?  email: String?  kind: enum(a, b)?  lvl: I32 }\n"
	       "node Team { name: String @key }\nedge Knows: Person -> Person\n",
	       true, "Person", "lvl", "new required property", true, false);
	expect("node Person { slug: String @key  age: I64?  email: String?  kind: enum(a, b)? }\n"
	       "node Team { name: String @key }\nedge Knows: Person -> Person\n",
	       true, "Person", "age", "type changed from I32? to I64?", true, false);
	expect("node Person { slug: String  age: I32?  email: String?  kind: enum(a, b)? }\n"
	       "node Team { name: String @key }\nedge Knows: Person -> Person\n",
	       true, "Person", "", "@key changed", true, false);
	expect("node Person { slug: String @key  age: I32?  email: String?  kind: enum(a, b)? }\n"
	       "node Team { name: String @key }\nedge Knows: Person -> Team\n",
	       true, "Knows", "", "endpoints changed", true, false);
	expect("node Person { slug: String @key  age: I32?  email: String?  kind: enum(a, b)? }\n"
	       "edge Knows: Person -> Person\n",
	       true, "Team", "", "type removed: its table has rows", true, false);
	/* an empty table: the same changes are allowed */
	expect(rm, false, "Person", "email", "property removed (the table is empty)", false, false);
	expect("node Person { slug: String @key  age: I32?  email: String?  kind: enum(a, b)? }\n"
	       "edge Knows: Person -> Person\n",
	       false, "Team", "", "type removed (its table is empty)", false, false);
}
END_TEST

START_TEST(test_options)
{
	const char *drops[] = { "Person.email" }, *defs[] = { "Person.lvl=3" };
	const char *bad_drop[] = { "Person.age" }, *bad_def[] = { "Person.nope=1" };
	const char *bad_json[] = { "Person.lvl=x{" };
	struct gfs_schema_apply_opts o = { .drops = drops, .n_drops = 1, .defaults = defs, .n_defaults = 1 };
	const char *v2 = "node Person { slug: String @key  age: I32?  kind: enum(a, b)?  lvl: I32 }\n"
			 "node Team { name: String @key }\nedge Knows: Person -> Person\n";
	struct diff x;

	run(&x, v2, true, &o);
	ck_assert_int_eq(x.rc, 0);
	ck_assert_uint_eq(x.r.n_refused, 0);
	ck_assert_ptr_nonnull(find(&x, "Person", "email", "dropped from every row"));
	ck_assert_ptr_nonnull(find(&x, "Person", "lvl", "filled with 3"));
	gfs_schema_apply_result_release(&x.r);

	o = (struct gfs_schema_apply_opts){ .drops = bad_drop, .n_drops = 1 };
	run(&x, v2, true, &o);
	ck_assert_int_eq(x.rc, GFS_ESCHEMA);
	ck_assert_msg(strstr(x.d.msg, "still declares 'age'"), "%s", x.d.msg);
	gfs_schema_apply_result_release(&x.r);
	o = (struct gfs_schema_apply_opts){ .defaults = bad_def, .n_defaults = 1 };
	run(&x, v2, true, &o);
	ck_assert_int_eq(x.rc, GFS_ESCHEMA);
	ck_assert_msg(strstr(x.d.msg, "no property 'nope'"), "%s", x.d.msg);
	gfs_schema_apply_result_release(&x.r);
	o = (struct gfs_schema_apply_opts){ .defaults = bad_json, .n_defaults = 1 };
	run(&x, v2, true, &o);
	ck_assert_int_eq(x.rc, GFS_ESCHEMA);
	ck_assert_msg(strstr(x.d.msg, "not a JSON value"), "%s", x.d.msg);
	gfs_schema_apply_result_release(&x.r);
}
END_TEST

START_TEST(test_metadata_only)
{
	struct diff x;

	run(&x, "node Person @description(\"people\") { slug: String @key  age: I32?  email: String?  kind: enum(a, b)? }\n"
		"node Team { name: String @key }\nedge Knows: Person -> Person\n", true, NULL);
	ck_assert_int_eq(x.rc, 0);
	ck_assert_uint_eq(x.r.n_changes, 0);
	gfs_schema_apply_result_release(&x.r);
}
END_TEST

static Suite *diff_suite(void)
{
	Suite *s = suite_create("schema_diff");
	TCase *tc = tcase_create("diff");

	tcase_add_test(tc, test_allowed);
	tcase_add_test(tc, test_checked);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_options);
	tcase_add_test(tc, test_metadata_only);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(diff_suite());
}
