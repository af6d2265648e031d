/* check_schema.c - the .pg schema language: every rule, positive and
 * negative, exact positions, shipped schemas, and garbage input. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>

#include "schema.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------ */

static struct gfs_schema *parse_ok(const char *text)
{
	struct gfs_schema *s = NULL;
	struct gfs_diag d = { { 0 } };
	int rc = gfs_schema_parse(text, strlen(text), "t.pg", &s, &d);

	ck_assert_msg(rc == 0, "parse failed (%d): %s", rc, d.msg);
	ck_assert_ptr_nonnull(s);
	return s;
}

/* Parses text expecting GFS_ESCHEMA and a message containing want. */
static void parse_bad(const char *text, const char *want)
{
	struct gfs_schema *s = (struct gfs_schema *)1;
	struct gfs_diag d = { { 0 } };
	int rc = gfs_schema_parse(text, strlen(text), "t.pg", &s, &d);

	ck_assert_msg(rc == GFS_ESCHEMA, "rc %d for <<%s>> (%s)", rc, text,
		      d.msg);
	ck_assert_ptr_null(s);
	ck_assert_msg(strstr(d.msg, want), "diag <<%s>> lacks <<%s>> for <<%s>>",
		      d.msg, want, text);
}

/* Expects the whole message to be exactly want. */
static void parse_bad_exact(const char *text, const char *want)
{
	struct gfs_schema *s = NULL;
	struct gfs_diag d = { { 0 } };
	int rc = gfs_schema_parse(text, strlen(text), "t.pg", &s, &d);

	ck_assert_int_eq(rc, GFS_ESCHEMA);
	ck_assert_str_eq(d.msg, want);
}

static const struct gfs_typedef *type_of(const struct gfs_schema *s,
					 const char *name)
{
	const struct gfs_typedef *t = gfs_schema_find(s, name);

	ck_assert_msg(t != NULL, "no type %s", name);
	return t;
}

static const struct gfs_prop *prop_of(const struct gfs_typedef *t,
				      const char *name)
{
	int i = gfs_typedef_prop(t, name);

	ck_assert_msg(i >= 0, "no property %s in %s", name, t->name);
	return &t->props[i];
}

/* Finds the n-th constraint of kind on t whose first prop is p0. */
static const struct gfs_cons *cons_of(const struct gfs_typedef *t,
				      enum gfs_cons_kind kind, const char *p0)
{
	for (size_t i = 0; i < t->n_cons; i++)
		if (t->cons[i].kind == kind && t->cons[i].n_props &&
		    !strcmp(t->cons[i].props[0], p0))
			return &t->cons[i];
	ck_abort_msg("no constraint %d on %s of %s", kind, p0, t->name);
	return NULL;
}

static const char *annot_args(const struct gfs_annot *a, size_t n,
			      const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(a[i].name, name))
			return a[i].args ? a[i].args : "(none)";
	return NULL;
}

static char *read_src(const char *rel, size_t *len)
{
	static const char *const bases[] = { NULL, ".", "..", "../.." };
	char path[PATH_MAX];
	char *text = NULL;

	for (size_t i = 0; i < GFS_ARRAY_SIZE(bases); i++) {
		const char *b = i ? bases[i] : getenv("top_srcdir");

		if (!b)
			continue;
		snprintf(path, sizeof path, "%s/%s", b, rel);
		if (gfs_read_file(path, &text, len, 1 << 20) == 0)
			return text;
	}
	ck_abort_msg("cannot find %s (set top_srcdir)", rel);
	return NULL;
}

static struct gfs_schema *parse_file(const char *rel)
{
	struct gfs_schema *s = NULL;
	struct gfs_diag d = { { 0 } };
	size_t len;
	char *text = read_src(rel, &len);
	int rc = gfs_schema_parse(text, len, rel, &s, &d);

	free(text);
	ck_assert_msg(rc == 0, "%s: %s", rel, d.msg);
	return s;
}

/* ---- the DESIGN.md example ---------------------------------------------- */

static const char design_example[] =
	"interface Named { name: String @index }\n"
	"node Person @description(\"someone we know\") implements Named {\n"
	"    slug: String @key          // at most one key per node type\n"
	"    age: I32?                  // ? = optional (nullable)\n"
	"    tags: [String]?            // list\n"
	"    kind: enum(staff, guest, on-leave)?\n"
	"    born: Date?\n"
	"    seen: DateTime\n"
	"    email: String? @unique\n"
	"    @range(age, 0..150)        // body constraints, see below\n"
	"}\n"
	"node Chunk {                   // no @key\n"
	"    text: String\n"
	"    embedding: Vector(3) @embed(\"text\") @index\n"
	"}\n"
	"edge Knows: Person -> Person @card(0..1)          // body optional\n"
	"edge WorksAt: Person -> Company @card(1..) { since: Date?  @unique(src, dst) }\n"
	"node Company { domain: String @key }\n";

START_TEST(test_design_example)
{
	struct gfs_schema *s = parse_ok(design_example);
	const struct gfs_typedef *p, *c, *k, *w;
	const struct gfs_prop *pr;
	const struct gfs_cons *cn;
	char buf[64], id[17];

	ck_assert_uint_eq(s->n_types, 5);
	ck_assert_ptr_null(gfs_schema_find(s, "Named"));
	p = type_of(s, "Person");
	ck_assert(!p->is_edge);
	ck_assert_str_eq(p->description, "someone we know");
	ck_assert_uint_eq(p->n_implements, 1);
	ck_assert_str_eq(p->implements[0], "Named");
	ck_assert_uint_eq(p->n_props, 8);
	ck_assert_str_eq(p->props[0].name, "name"); /* implemented first */
	ck_assert(p->props[0].index);
	ck_assert_str_eq(p->props[1].name, "slug");
	ck_assert_uint_eq(p->line, 2);
	ck_assert_uint_eq(p->col, 6);
	ck_assert_uint_eq(p->n_key, 1);
	ck_assert_str_eq(p->props[p->key[0]].name, "slug");
	ck_assert(p->props[1].key);
	pr = prop_of(p, "age");
	ck_assert_int_eq(pr->type.base, GFS_T_I32);
	ck_assert(pr->type.nullable && !pr->type.list);
	ck_assert_uint_eq(pr->line, 4);
	ck_assert_uint_eq(pr->col, 5);
	pr = prop_of(p, "tags");
	ck_assert(pr->type.list && pr->type.nullable);
	ck_assert_int_eq(pr->type.base, GFS_T_STRING);
	pr = prop_of(p, "kind");
	ck_assert_int_eq(pr->type.base, GFS_T_ENUM);
	ck_assert_uint_eq(pr->type.n_enum, 3);
	ck_assert_str_eq(pr->type.enum_vals[2], "on-leave");
	ck_assert(pr->type.nullable);
	ck_assert_int_eq(prop_of(p, "born")->type.base, GFS_T_DATE);
	ck_assert_int_eq(prop_of(p, "seen")->type.base, GFS_T_DATETIME);
	ck_assert(!prop_of(p, "seen")->type.nullable);
	ck_assert(prop_of(p, "email")->unique);
	/* property-level annotations are constraints too */
	ck_assert_uint_eq(p->n_cons, 4);
	ck_assert_int_eq(p->cons[0].kind, GFS_C_INDEX);
	ck_assert_str_eq(p->cons[0].props[0], "name");
	ck_assert_int_eq(p->cons[1].kind, GFS_C_KEY);
	ck_assert_int_eq(p->cons[2].kind, GFS_C_UNIQUE);
	cn = cons_of(p, GFS_C_RANGE, "age");
	ck_assert(cn->lo.set && cn->lo.is_int && cn->lo.i == 0);
	ck_assert(cn->hi.set && cn->hi.is_int && cn->hi.i == 150);
	ck_assert_uint_eq(cn->line, 10);
	ck_assert_uint_eq(cn->col, 5);

	c = type_of(s, "Chunk");
	ck_assert_uint_eq(c->n_key, 0);
	pr = prop_of(c, "embedding");
	ck_assert_int_eq(pr->type.base, GFS_T_VECTOR);
	ck_assert_uint_eq(pr->type.dim, 3);
	ck_assert_str_eq(pr->embed, "text");
	ck_assert(pr->index);
	ck_assert_uint_eq(pr->n_annots, 0);

	k = type_of(s, "Knows");
	ck_assert(k->is_edge && k->has_card);
	ck_assert_uint_eq(k->card_min, 0);
	ck_assert_uint_eq(k->card_max, 1);
	ck_assert_str_eq(k->from, "Person");
	ck_assert_ptr_eq(&s->types[k->from_idx], p);
	ck_assert_ptr_eq(&s->types[k->to_idx], p);
	ck_assert_uint_eq(k->n_props, 0);
	ck_assert_str_eq(annot_args(k->annots, k->n_annots, "card"), "0..1");

	w = type_of(s, "WorksAt");
	ck_assert_uint_eq(w->card_min, 1);
	ck_assert(w->card_max == UINT64_MAX);
	ck_assert_str_eq(s->types[w->to_idx].name, "Company");
	ck_assert_uint_eq(w->n_props, 1);
	cn = cons_of(w, GFS_C_UNIQUE, "src");
	ck_assert_uint_eq(cn->n_props, 2);
	ck_assert_str_eq(cn->props[1], "dst");

	ck_assert_str_eq(gfs_typedef_table(p, buf, sizeof buf), "node:Person");
	ck_assert_str_eq(gfs_typedef_table(w, buf, sizeof buf), "edge:WorksAt");
	ck_assert_int_eq(gfs_typedef_prop(p, "nope"), -1);
	snprintf(id, sizeof id, "%016" PRIx64,
		 gfs_hash64(design_example, strlen(design_example)));
	ck_assert_str_eq(s->id, id);
	ck_assert_uint_eq(strlen(s->id), 16);
	ck_assert_uint_eq(s->text_len, strlen(design_example));
	ck_assert(memcmp(s->text, design_example, s->text_len) == 0);
	gfs_schema_free(s);
}
END_TEST

/* ---- types -------------------------------------------------------------- */

START_TEST(test_all_types)
{
	static const enum gfs_base names[] = {
		GFS_T_STRING, GFS_T_BOOL, GFS_T_I32, GFS_T_I64, GFS_T_U32,
		GFS_T_U64, GFS_T_F32, GFS_T_F64, GFS_T_DATE, GFS_T_DATETIME,
		GFS_T_BLOB
	};
	struct gfs_schema *s = parse_ok(
		"node T {\n"
		" a: String, b: Bool c: I32 d: I64\n"
		" e: U32 f: U64 g: F32 h: F64 i: Date j: DateTime k: Blob\n"
		" la: [String] lb: [Bool]? lc: [I32] ld: [I64] le: [U32]\n"
		" lf: [U64] lg: [F32] lh: [F64] li: [Date]? lj: [DateTime]\n"
		" v1: Vector(1) v2: Vector( 1536 )? ka: Blob?\n"
		" sp: [ String ] ?\n"
		"}\n");
	const struct gfs_typedef *t = type_of(s, "T");

	for (size_t i = 0; i < GFS_ARRAY_SIZE(names); i++) {
		ck_assert_int_eq(t->props[i].name[0], 'a' + (int)i);
		ck_assert_int_eq(t->props[i].type.base, names[i]);
		ck_assert(!t->props[i].type.list && !t->props[i].type.nullable);
	}
	for (size_t i = 0; i < 10; i++) { /* la..lj: lists of every scalar */
		ck_assert(t->props[11 + i].type.list);
		ck_assert_int_eq(t->props[11 + i].type.base, (int)i);
	}
	ck_assert_int_eq(prop_of(t, "lj")->type.base, GFS_T_DATETIME);
	ck_assert(prop_of(t, "li")->type.nullable);
	ck_assert_uint_eq(prop_of(t, "v1")->type.dim, 1);
	ck_assert_uint_eq(prop_of(t, "v2")->type.dim, 1536);
	ck_assert(prop_of(t, "v2")->type.nullable);
	ck_assert(prop_of(t, "sp")->type.list && prop_of(t, "sp")->type.nullable);
	ck_assert(prop_of(t, "ka")->type.nullable);
	gfs_schema_free(s);
}
END_TEST

START_TEST(test_type_errors)
{
	parse_bad_exact("node T {\n  a: Int\n}", "t.pg:2:6: unknown type 'Int', "
		"expected String, Bool, I32, I64, U32, U64, F32, F64, Date, "
		"DateTime, Blob, enum(...), Vector(N) or [T]");
	parse_bad_exact("node T { a: [[String]] }",
			"t.pg:1:14: lists of lists are not allowed, expected a "
			"scalar element type");
	parse_bad("node T { a: [Vector(3)] }", "t.pg:1:14: lists of Vector");
	parse_bad("node T { a: [Blob] }", "t.pg:1:14: lists of Blob");
	parse_bad("node T { a: [enum(a, b)] }", "t.pg:1:14: lists of enum");
	parse_bad("node T { a: [String?] }", "t.pg:1:20: expected ']'");
	parse_bad("node T { a: [String }", "t.pg:1:21: expected ']'");
	parse_bad("node T { a: Vector(0) }", "t.pg:1:20: Vector dimension 0");
	parse_bad("node T { a: Vector(65537) }", "Vector dimension 65537");
	parse_bad("node T { a: Vector() }", "t.pg:1:20: expected an unsigned");
	parse_bad("node T { a: Vector(-1) }", "expected an unsigned");
	parse_bad("node T { a: Vector(99999999999999999999999) }",
		  "integer too large");
	parse_bad("node T { a: Vector 3 }", "t.pg:1:20: expected '(' after 'Vector'");
	parse_bad("node T { a: string }", "unknown type 'string'");
	parse_bad("node T { a: }", "t.pg:1:13: unknown type ''");
	parse_bad("node T { a: String?? }", "t.pg:1:20: expected a property");
}
END_TEST

START_TEST(test_enums)
{
	struct gfs_schema *s = parse_ok(
		"node T { k: enum( on-leave ,2fa,_x, -, A-B-9 ) }");
	const struct gfs_prop *p = prop_of(type_of(s, "T"), "k");

	ck_assert_uint_eq(p->type.n_enum, 5);
	ck_assert_str_eq(p->type.enum_vals[0], "on-leave");
	ck_assert_str_eq(p->type.enum_vals[1], "2fa");
	ck_assert_str_eq(p->type.enum_vals[2], "_x");
	ck_assert_str_eq(p->type.enum_vals[3], "-");
	ck_assert_str_eq(p->type.enum_vals[4], "A-B-9");
	ck_assert(!p->type.nullable);
	gfs_schema_free(s);
	parse_bad_exact("node T { k: enum(a, b, a) }",
			"t.pg:1:24: duplicate enum value 'a'");
	parse_bad("node T { k: enum() }",
		  "t.pg:1:18: expected an enum value ([A-Za-z0-9_-]+)");
	parse_bad("node T { k: enum(a,) }", "t.pg:1:20: expected an enum value");
	parse_bad("node T { k: enum(a b) }", "t.pg:1:20: expected ')' or ','");
	parse_bad("node T { k: enum(a.b) }", "t.pg:1:19: expected ')'");
	parse_bad("node T { k: enum }", "t.pg:1:18: expected '(' after 'enum'");
	parse_bad("node T { k: enum(a", "expected ')'");
}
END_TEST

/* ---- interfaces --------------------------------------------------------- */

START_TEST(test_interfaces)
{
	/* interfaces may be declared after use; annotations are copied; a
	 * redeclared property keeps the node's own annotations and slot */
	struct gfs_schema *s = parse_ok(
		"node P implements A, B {\n"
		"  own: I64\n"
		"  shared: String @unique @note(\"mine\")\n"
		"}\n"
		"interface A @description(\"first\") {\n"
		"  ident: String @key @description(\"the id\")\n"
		"  shared: String @index\n"
		"}\n"
		"interface B { shared: String  extra: [F64]? @index }\n");
	const struct gfs_typedef *t = type_of(s, "P");
	const struct gfs_prop *p;

	ck_assert_uint_eq(s->n_types, 1);
	ck_assert_uint_eq(t->n_props, 4);
	ck_assert_str_eq(t->props[0].name, "ident");
	ck_assert_str_eq(t->props[1].name, "extra");
	ck_assert_str_eq(t->props[2].name, "own");
	ck_assert_str_eq(t->props[3].name, "shared");
	p = prop_of(t, "ident");
	ck_assert(p->key);
	ck_assert_str_eq(annot_args(p->annots, p->n_annots, "description"),
			 "\"the id\"");
	ck_assert_uint_eq(p->line, 6); /* where the interface declared it */
	p = prop_of(t, "shared");
	ck_assert(p->unique && !p->index);
	ck_assert_str_eq(annot_args(p->annots, p->n_annots, "note"), "\"mine\"");
	ck_assert(prop_of(t, "extra")->index);
	ck_assert_uint_eq(t->n_key, 1);
	ck_assert_str_eq(t->props[t->key[0]].name, "ident");
	/* cons: A.ident key, B.extra index, then the node's own */
	ck_assert_uint_eq(t->n_cons, 3);
	ck_assert_int_eq(t->cons[0].kind, GFS_C_KEY);
	ck_assert_uint_eq(t->cons[0].line, 6);
	ck_assert_int_eq(t->cons[1].kind, GFS_C_INDEX);
	ck_assert_str_eq(t->cons[1].props[0], "extra");
	ck_assert_int_eq(t->cons[2].kind, GFS_C_UNIQUE);
	ck_assert_ptr_null(t->description); /* not inherited */
	gfs_schema_free(s);

	parse_bad_exact("interface A { x: String }\n"
			"node P implements A {\n"
			"  x: String?\n"
			"}\n",
			"t.pg:3:3: property 'x' of 'P' differs in type from "
			"interface 'A', expected the same type");
	parse_bad("interface A { k: enum(a, b) }\n"
		  "node P implements A { k: enum(b, a) }", "t.pg:2:23: property 'k'");
	parse_bad_exact("node P implements Nope { x: I32 }",
			"t.pg:1:19: unknown interface 'Nope' implemented by 'P'");
	parse_bad("node Q { x: I32 }\nnode P implements Q { y: I32 }",
		  "t.pg:2:19: 'Q' is a node, expected an interface");
	parse_bad("node Q { x: I32 }\nedge E: Q -> Q\nnode P implements E { }",
		  "t.pg:3:19: 'E' is an edge, expected an interface");
	parse_bad("interface A { x: I32 }\ninterface B { x: I64 }\n"
		  "node P implements A, B { }",
		  "t.pg:3:22: interfaces 'A' and 'B' declare property 'x'");
	parse_bad("interface A { x: I32 }\nnode P implements A, A { }",
		  "t.pg:2:22: interface 'A' listed twice");
	parse_bad("interface A { x: I32 @range(x, 0..1) }",
		  "t.pg:1:22: constraint @range not allowed in interface 'A'");
	parse_bad("interface A { x: I32  @unique(x) }",
		  "constraint @unique not allowed in interface");
	parse_bad("interface A { x: I32? @key }", "t.pg:1:23: @key not allowed "
		  "on nullable property 'x'");
	/* an interface key plus a node key = two keys */
	parse_bad("interface A { a: String @key }\n"
		  "node P implements A { b: String @key }",
		  "t.pg:2:33: second key for 'P' (first at 1:25)");
	parse_bad("interface A { a: String }\nnode P implements { }",
		  "t.pg:2:19: expected a type name after 'implements'");
	parse_bad("interface A { a: String }\nnode P implements A B { }",
		  "t.pg:2:21: expected '{' to open the body of node 'P'");
	parse_bad("node P extends A { }",
		  "t.pg:1:8: expected 'implements' or '{' after node 'P'");
	parse_bad("interface A { a: String }\nedge E: A -> A",
		  "t.pg:2:9: endpoint 'A' of edge 'E' is an interface");
	/* interface props go through the same reserved-name rules */
	parse_bad("interface A { id: String }", "t.pg:1:15: property name 'id' "
		  "is reserved");
}
END_TEST

/* ---- annotations -------------------------------------------------------- */

START_TEST(test_annotations)
{
	struct gfs_schema *s = parse_ok(
		"node T @description(\"a \\\"quoted\\\" \\\\ thing\\n\\tx\")\n"
		"       @instruction(\"extract it\") @rename_from(\"Old\")\n"
		"       @future(a, (b, \"c)\"), d) @flag {\n"
		"  @meta(\"body-level\")\n"
		"  x: String @description(\"the x\") @rename_from(\"y\") @weird\n"
		"          @opts( k = [1, 2] ) @index\n"
		"  @after(\"goes to x\")\n"
		"}\n");
	const struct gfs_typedef *t = type_of(s, "T");
	const struct gfs_prop *p = prop_of(t, "x");

	ck_assert_str_eq(t->description, "a \"quoted\" \\ thing\n\tx");
	ck_assert_uint_eq(t->n_annots, 6);
	ck_assert_str_eq(t->annots[0].name, "description");
	ck_assert_str_eq(t->annots[1].args, "\"extract it\"");
	ck_assert_str_eq(t->annots[2].name, "rename_from");
	ck_assert_str_eq(t->annots[3].args, "a, (b, \"c)\"), d");
	ck_assert_str_eq(t->annots[4].name, "flag");
	ck_assert_ptr_null(t->annots[4].args);
	ck_assert_str_eq(t->annots[5].name, "meta");
	ck_assert_uint_eq(p->n_annots, 5); /* @after follows x: it is x's */
	ck_assert_str_eq(p->annots[0].args, "\"the x\"");
	ck_assert_str_eq(p->annots[1].name, "rename_from");
	ck_assert_str_eq(p->annots[2].name, "weird");
	ck_assert_ptr_null(p->annots[2].args);
	ck_assert_str_eq(p->annots[3].args, "k = [1, 2]");
	ck_assert(p->index);
	gfs_schema_free(s);

	parse_bad_exact("node T @description(\"a\") @description(\"b\") { }",
			"t.pg:1:27: duplicate @description");
	parse_bad("node T @description(x) { }",
		  "t.pg:1:21: expected a string literal in @description(...)");
	parse_bad("node T @instruction { }",
		  "t.pg:1:21: expected '(' after '@instruction'");
	parse_bad("node T @rename_from(\"a\" \"b\") { }",
		  "t.pg:1:25: expected ')' in @rename_from(...)");
	parse_bad("node T @future(a, (b) { }", "unterminated arguments of @future "
		  "(opened at 1:15), expected ')'");
	parse_bad("node T @ { }", "t.pg:1:10: expected an annotation name");
	parse_bad("node T @key(a) { a: String }",
		  "t.pg:1:8: @key not allowed before the body of 'T'");
	parse_bad("node T @card(0..1) { }", "t.pg:1:8: @card not allowed on 'T'");
	parse_bad("node T { a: String @card(1..) }",
		  "t.pg:1:20: @card not allowed on a property");
	parse_bad("node T { @embed(\"a\") }", "t.pg:1:10: @embed not allowed here");
	parse_bad("node T { a: String @index @index }",
		  "t.pg:1:27: duplicate @index on property 'a'");
	parse_bad("node T { a: String @unique @unique }", "duplicate @unique");
}
END_TEST

/* ---- constraints -------------------------------------------------------- */

START_TEST(test_constraints)
{
	struct gfs_schema *s = parse_ok(
		"node T {\n"
		"  org: String  code: I64  n: F64?  m: I32  u: U64 s: String?\n"
		"  @key(code, org) @unique(org, n) @index(n, m, code)\n"
		"  @range(n, -1.5..2e3) @range(m, ..-10) @range(u, 5 .. )\n"
		"  @check(s, \"^[a-z]+\\.[a-z]+$\")\n"
		"}\n");
	const struct gfs_typedef *t = type_of(s, "T");
	const struct gfs_cons *c;

	ck_assert_uint_eq(t->n_key, 2);
	ck_assert_str_eq(t->props[t->key[0]].name, "code");
	ck_assert_str_eq(t->props[t->key[1]].name, "org");
	ck_assert(!prop_of(t, "code")->key); /* flags are annotations only */
	ck_assert_uint_eq(cons_of(t, GFS_C_UNIQUE, "org")->n_props, 2);
	ck_assert_uint_eq(cons_of(t, GFS_C_INDEX, "n")->n_props, 3);
	c = cons_of(t, GFS_C_RANGE, "n");
	ck_assert(c->lo.set && !c->lo.is_int && c->lo.d == -1.5);
	ck_assert(c->hi.set && !c->hi.is_int && c->hi.d == 2000.0);
	c = cons_of(t, GFS_C_RANGE, "m");
	ck_assert(!c->lo.set && c->hi.set && c->hi.is_int && c->hi.i == -10);
	ck_assert(c->hi.d == -10.0);
	c = cons_of(t, GFS_C_RANGE, "u");
	ck_assert(c->lo.set && c->lo.i == 5 && !c->hi.set);
	c = cons_of(t, GFS_C_CHECK, "s");
	ck_assert_str_eq(c->pattern, "^[a-z]+\\.[a-z]+$");
	ck_assert_uint_eq(c->line, 5);
	ck_assert_uint_eq(c->col, 3);
	ck_assert_int_eq(regexec(&c->re, "ab.cd", 0, NULL, 0), 0);
	ck_assert_int_ne(regexec(&c->re, "abxcd", 0, NULL, 0), 0);
	ck_assert_int_ne(regexec(&c->re, "Ab.cd", 0, NULL, 0), 0);
	gfs_schema_free(s);

	/* extreme integer bounds */
	s = parse_ok("node T { x: I64 @range(x, -9223372036854775808..9223372036854775807) }");
	c = cons_of(type_of(s, "T"), GFS_C_RANGE, "x");
	ck_assert(c->lo.i == INT64_MIN && c->hi.i == INT64_MAX);
	gfs_schema_free(s);

	parse_bad_exact("node T {\n  s: String\n  @check(s, \"([a-z\")\n}",
			"t.pg:3:13: bad regex in @check: Unmatched [, [^, [:, "
			"[., or [=");
	parse_bad("node T { s: String @check(s, \"(\") }", "t.pg:1:30: bad regex");
	parse_bad_exact("node T {\n  a: I32\n  @range(b, 0..1)\n}",
			"t.pg:3:3: unknown property 'b' in @range of 'T'");
	parse_bad("node T { a: I32 @unique(a, zz) }",
		  "t.pg:1:17: unknown property 'zz' in @unique of 'T'");
	parse_bad("node T { a: I32 @index(a, a) }",
		  "t.pg:1:27: property 'a' named twice in @index(...)");
	parse_bad("node T { a: I32 @index() }", "t.pg:1:24: expected a property "
		  "name in @index(...)");
	parse_bad("node T { a: I32 @index(a,) }", "t.pg:1:26: expected a property");
	parse_bad("node T { a: I32 @index(Foo) }", "property name 'Foo' must match");
	parse_bad("node T { a: String @range(a, 0..1) }",
		  "t.pg:1:20: @range not allowed on property 'a', expected a "
		  "numeric (I32..F64) property");
	parse_bad("node T { a: Date @range(a, 0..1) }", "@range not allowed");
	parse_bad("node T { a: [I32] @range(a, 0..1) }", "@range not allowed");
	parse_bad("node T { a: I32 @check(a, \"x\") }",
		  "t.pg:1:17: @check not allowed on property 'a', expected a "
		  "String property");
	parse_bad("node T { a: [String] @check(a, \"x\") }", "@check not allowed");
	parse_bad("node T { a: I32 @range(a, 5..1) }",
		  "t.pg:1:27: empty @range (lower bound above upper)");
	parse_bad("node T { a: F64 @range(a, 1.5..1.25) }", "empty @range");
	parse_bad("node T { a: I32 @range(a, ..) }",
		  "t.pg:1:27: @range without bounds");
	parse_bad("node T { a: I32 @range(a, 1-2) }", "t.pg:1:28: expected '..'");
	parse_bad("node T { a: I32 @range(a, 1...2) }", "t.pg:1:30: expected ')'");
	parse_bad("node T { a: I32 @range(a, -..2) }",
		  "t.pg:1:27: expected a number in @range");
	parse_bad("node T { a: I64 @range(a, 9223372036854775808..) }",
		  "t.pg:1:27: integer out of range in @range");
	parse_bad("node T { a: F64 @range(a, 1e999..) }", "number out of range");
	parse_bad("node T { a: I32 @range(a 0..1) }",
		  "t.pg:1:26: expected ',' after the property name in @range");
	parse_bad("node T { a: String @check(a) }",
		  "t.pg:1:28: expected ',' after the property name in @check");
	parse_bad("node T { a: String @check(a, x) }",
		  "t.pg:1:30: expected a string literal (the regex)");
}
END_TEST

START_TEST(test_key_rules)
{
	/* the exact message of the brief, col 27 = the '@' of @key */
	parse_bad_exact("node X {\n  a: String\n  b: I32\n"
			"  email: String?  @unique @key\n}",
			"t.pg:4:27: @key not allowed on nullable property 'email'");
	parse_bad("node X { a: [String] @key }",
		  "t.pg:1:22: @key not allowed on list property 'a'");
	parse_bad("node X { a: Vector(2) @key }",
		  "@key not allowed on Vector property 'a'");
	parse_bad("node X { a: Blob @key }", "@key not allowed on Blob property");
	parse_bad("node X { a: F64 @key }",
		  "@key not allowed on floating-point property 'a'");
	parse_bad("node X { a: String b: String?  @key(a, b) }",
		  "t.pg:1:32: @key not allowed on nullable property 'b'");
	parse_bad_exact("node X {\n  a: String @key\n  b: String @key\n}",
			"t.pg:3:13: second key for 'X' (first at 2:13), expected "
			"one key per node type; use @key(a, b) for a composite key");
	parse_bad("node X { a: String @key  @key(a) }",
		  "t.pg:1:26: second key for 'X' (first at 1:20)");
	parse_bad("node X { a: String b: I32 @key(a) @key(b) }",
		  "t.pg:1:35: second key");
	parse_bad("node X { a: String @key @key }", "t.pg:1:25: duplicate @key");
	parse_bad("node X { a: String }\nedge E: X -> X { w: String @key }",
		  "t.pg:2:28: @key not allowed on edges");
	parse_bad("node X { a: String }\nedge E: X -> X { w: String @key(w) }",
		  "t.pg:2:28: @key not allowed on edges");
	parse_bad("node X { a: String @key(a, zz) }",
		  "t.pg:1:20: unknown property 'zz' in @key of 'X'");
	parse_bad("node X { a: String @key() }", "expected a property name");

	/* allowed key types: enum, Bool, integers, Date, DateTime, composite */
	struct gfs_schema *s = parse_ok(
		"node A { k: enum(x, y) @key }\nnode B { k: Bool @key }\n"
		"node C { k: U64 @key }\nnode D { k: Date @key }\n"
		"node E { k: DateTime @key }\n"
		"node F { a: I32 b: String c: Date @key(c, a, b) }\n");

	ck_assert_uint_eq(type_of(s, "F")->n_key, 3);
	ck_assert_uint_eq(type_of(s, "F")->key[0], 2);
	gfs_schema_free(s);
}
END_TEST

/* ---- edges -------------------------------------------------------------- */

START_TEST(test_edges)
{
	struct gfs_schema *s = parse_ok(
		"edge E1: A -> B\n"
		"edge E2 : A->A @card( 2 .. 7 ) @description(\"d\") {\n"
		"  w: F32 @index  @unique(src)  @index(dst, w)\n"
		"}\n"
		"edge E3: B -> A @x(1) @card(0..) { }\n"
		"edge E4: A -> B { src_note: String, dst2: I32 }\n"
		"node A { a: I32 } node B { b: I32 }\n");
	const struct gfs_typedef *e;

	ck_assert_uint_eq(s->n_types, 6);
	ck_assert_str_eq(s->types[0].name, "E1"); /* declaration order */
	e = type_of(s, "E1");
	ck_assert(e->is_edge && !e->has_card);
	ck_assert_uint_eq(e->from_idx, 4);
	ck_assert_uint_eq(e->to_idx, 5);
	e = type_of(s, "E2");
	ck_assert(e->has_card && e->card_min == 2 && e->card_max == 7);
	ck_assert_str_eq(e->description, "d");
	ck_assert_uint_eq(e->n_annots, 2);
	ck_assert_str_eq(e->annots[0].args, "2 .. 7");
	ck_assert_uint_eq(e->n_cons, 3);
	ck_assert_str_eq(cons_of(e, GFS_C_INDEX, "dst")->props[1], "w");
	e = type_of(s, "E3");
	ck_assert(e->card_min == 0 && e->card_max == UINT64_MAX);
	ck_assert_str_eq(e->annots[0].name, "x");
	ck_assert_uint_eq(type_of(s, "E4")->n_props, 2);
	gfs_schema_free(s);

	parse_bad_exact("node A { a: I32 }\nedge E: A -> Nope",
			"t.pg:2:14: unknown node type 'Nope' in edge 'E'");
	parse_bad("node A { a: I32 }\nedge F: A -> A\nedge E: F -> A",
		  "t.pg:3:9: endpoint 'F' of edge 'E' is an edge, expected a "
		  "node type");
	parse_bad("node A { }\nedge E A -> A", "t.pg:2:8: expected ':' after "
		  "edge name 'E'");
	parse_bad("node A { }\nedge E: A => A",
		  "t.pg:2:11: expected '->' after the source type of edge 'E'");
	parse_bad("node A { }\nedge E: A - > A", "t.pg:2:11: expected '->'");
	parse_bad("node A { }\nedge E: -> A",
		  "t.pg:2:9: expected a type name (the source node type) of "
		  "edge 'E'");
	parse_bad("node A { }\nedge E: A -> a",
		  "t.pg:2:14: type name 'a' must match");
	parse_bad("node A { }\nedge E: A -> A { src: I32 }",
		  "t.pg:2:18: property name 'src' is reserved");
	parse_bad("node A { }\nedge E: A -> A { dst: I32 }", "'dst' is reserved");
	parse_bad("node A { }\nedge E: A -> A { w: I32 @range(src, 0..1) }",
		  "unknown property 'src' in @range of 'E'");
	parse_bad("node A { }\nedge E: A -> A { w: String @check(dst, \"x\") }",
		  "unknown property 'dst' in @check");
	parse_bad("node A { src: I32 @unique(src, dst) }",
		  "t.pg:1:19: unknown property 'dst' in @unique of 'A'");
	parse_bad("node B { s: I32 @unique(src, s) }",
		  "t.pg:1:17: unknown property 'src' in @unique of 'B'");
	parse_bad("node A { }\nedge E: A -> A @card(2..1)",
		  "t.pg:2:16: empty @card range on edge 'E'");
	parse_bad("node A { }\nedge E: A -> A @card(0..0)", "empty @card range");
	parse_bad("node A { }\nedge E: A -> A @card(..1)",
		  "t.pg:2:22: expected an unsigned integer (the minimum)");
	parse_bad("node A { }\nedge E: A -> A @card(1)",
		  "t.pg:2:23: expected '..' in @card");
	parse_bad("node A { }\nedge E: A -> A @card(1..2", "t.pg:2:26: expected ')'");
	parse_bad("node A { }\nedge E: A -> A @card(1..2) @card(1..3)",
		  "t.pg:2:28: duplicate @card");
	parse_bad("node A { }\nedge E: A -> A @card(-1..)", "expected an unsigned");
	parse_bad("node A { }\nedge E: A -> A { w: I32 ", "unterminated body of 'E'");
	parse_bad("node A { }\nedge E: A -> A implements X",
		  "t.pg:2:16: expected 'node', 'edge' or 'interface'");
	parse_bad("node A { }\nedge E: A -> A { @card(0..1) }",
		  "t.pg:2:18: @card not allowed here");
}
END_TEST

/* ---- names and declarations --------------------------------------------- */

START_TEST(test_names)
{
	struct gfs_schema *s = parse_ok(
		"node T_1x { _private: I32  aB9_: String  node: I32 edge: I32 "
		"interface: I32 implements: I32 ids: I32 _ro: I32 tombstone: "
		"I32 src: I32 dst: I32 }\nnode String { x: I32 }\n");

	ck_assert_uint_eq(type_of(s, "T_1x")->n_props, 11);
	gfs_schema_free(s);

	parse_bad_exact("node Person { a: I32 }\n\n"
			"interface Named { b: I32 }\n"
			"node Person { c: I32 }\n",
			"t.pg:4:1: duplicate type 'Person' (first declared at 1:6)");
	parse_bad("interface Named { b: I32 }\nedge Named: A -> A",
		  "t.pg:2:1: duplicate type 'Named' (first declared at 1:11)");
	parse_bad("node A { }\nnode B { } edge A: B -> B", "t.pg:2:12: duplicate "
		  "type 'A'");
	parse_bad_exact("node T {\n  a: I32\n  b: I32\n  a: String\n}",
			"t.pg:4:3: duplicate property 'a' (first declared at 2:3)");
	parse_bad("node T { id: String }", "t.pg:1:10: property name 'id' is "
		  "reserved, expected another name");
	parse_bad("node T { _row: I32 }", "property name '_row' is reserved");
	parse_bad("node T { _rowid: I32 }", "property name '_rowid' is reserved");
	parse_bad("node T { _tombstone: Bool }", "'_tombstone' is reserved");
	parse_bad("node T { Name: String }",
		  "t.pg:1:10: property name 'Name' must match [a-z_][A-Za-z0-9_]*");
	parse_bad("node t { }", "t.pg:1:6: type name 't' must match "
		  "[A-Z][A-Za-z0-9_]*");
	parse_bad("node _T { }", "type name '_T' must match");
	parse_bad("node { }", "t.pg:1:6: expected a type name after 'node'");
	parse_bad("interface 9 { }", "t.pg:1:11: expected a type name after "
		  "'interface'");
	parse_bad("Node T { }", "t.pg:1:1: expected 'node', 'edge' or 'interface'");
	parse_bad("  \n  ;", "t.pg:2:3: expected 'node', 'edge' or 'interface'");
	parse_bad("node T { 9a: I32 }", "t.pg:1:10: expected a property, a "
		  "constraint or '}' in the body of 'T'");
}
END_TEST

START_TEST(test_syntax_positions)
{
	parse_bad_exact("node Person {\n  slug: String @key\n  age  I32?\n}",
			"t.pg:3:8: expected ':' after property name 'age'");
	parse_bad_exact("node T {\n\ta: I32\n", "t.pg:3:1: unterminated body of "
			"'T' (opened at 1:8), expected '}'");
	parse_bad_exact("node T", "t.pg:1:7: expected '{' to open the body of "
			"node 'T'");
	parse_bad_exact("interface I a: I32", "t.pg:1:13: expected '{' to open "
			"the body of interface 'I'");
	/* columns count bytes: a UTF-8 comment before the error */
	parse_bad_exact("/* é */ node T { a I32 }",
			"t.pg:1:21: expected ':' after property name 'a'");
	/* CRLF line ends */
	parse_bad_exact("node T {\r\n  a I32\r\n}",
			"t.pg:2:5: expected ':' after property name 'a'");
	parse_bad_exact("node T { a: I32 } }", "t.pg:1:19: expected 'node', "
			"'edge' or 'interface'");
}
END_TEST

/* ---- comments, separators, strings -------------------------------------- */

START_TEST(test_comments)
{
	struct gfs_schema *s = parse_ok(
		"// head\n/* block\n * comment */interface/**/I/**/{/**/"
		"x/**/:/**/String/**/@index/**/}\n"
		"node/* a */T // b\n"
		"  @description /* c */ ( /* d */ \"t\" /* e */ ) // f\n"
		"  implements /* g */ I /* h */ {\n"
		"  a /*i*/ : /*j*/ [ /*k*/ I32 /*l*/ ] /*m*/ ? // n\n"
		"  k /*o*/ : enum /*p*/ ( /*q*/ a /*r*/ , /*s*/ b-c /*t*/ )\n"
		"  v: Vector /*u*/ ( /*v*/ 3 /*w*/ ) @embed /*x*/ (/*y*/\"s\"/*z*/)\n"
		"  s: String  n /*0*/ : /*00*/ I32\n"
		"  @range /*1*/ ( /*2*/ n /*3*/ , /*4*/ 0 /*5*/ .. /*6*/ 9 /*7*/ )\n"
		"  /* 8 */ @unique(/*9*/s/*10*/,/*11*/k/*12*/)\n"
		"}// end\n"
		"edge/**/E/**/:/**/T/**/->/**/T/**/@card/**/(/**/1/**/../**/)"
		"/**/{/**/}/* trailing */");
	const struct gfs_typedef *t = type_of(s, "T");

	ck_assert_uint_eq(t->n_props, 6);
	ck_assert_uint_eq(cons_of(t, GFS_C_RANGE, "n")->hi.i, 9);
	ck_assert_str_eq(t->description, "t");
	ck_assert(prop_of(t, "x")->index);
	ck_assert(prop_of(t, "a")->type.list && prop_of(t, "a")->type.nullable);
	ck_assert_str_eq(prop_of(t, "k")->type.enum_vals[1], "b-c");
	ck_assert_str_eq(prop_of(t, "v")->embed, "s");
	ck_assert(type_of(s, "E")->card_min == 1);
	ck_assert(type_of(s, "E")->card_max == UINT64_MAX);
	gfs_schema_free(s);

	/* empty and comment-only schemas are valid and empty */
	s = parse_ok("");
	ck_assert_uint_eq(s->n_types, 0);
	gfs_schema_free(s);
	s = parse_ok(" // nothing\n/* here */\n");
	ck_assert_uint_eq(s->n_types, 0);
	gfs_schema_free(s);

	parse_bad_exact("node T { }\n  /* open\n\n",
			"t.pg:4:1: unterminated comment (opened at 2:3), "
			"expected '*/'");
	parse_bad("node T { a: I32 / b: I32 }", "t.pg:1:17: expected a property");
}
END_TEST

START_TEST(test_separators)
{
	struct gfs_schema *s = parse_ok(
		"node T { a: I32, b: I32,, c: I32 d: I32 @unique(a, b), , }\n"
		"node U{a:I32 @index@unique b:String}node V{}\n");

	ck_assert_uint_eq(type_of(s, "T")->n_props, 4);
	ck_assert(prop_of(type_of(s, "U"), "a")->unique);
	ck_assert_uint_eq(type_of(s, "V")->n_props, 0);
	gfs_schema_free(s);
}
END_TEST

START_TEST(test_strings)
{
	static const char nul_text[] = "node T @description(\"a\0b\") { }";
	struct gfs_schema *s = parse_ok(
		"node T @description(\"multi\nline // not a comment */\") "
		"@note(\"x\\\")(\") { s: String @check(s, \"^\\d\\\\\\\\\") }");
	struct gfs_schema *o = (struct gfs_schema *)1;
	struct gfs_diag d = { { 0 } };
	const struct gfs_typedef *t = type_of(s, "T");

	ck_assert_str_eq(t->description, "multi\nline // not a comment */");
	ck_assert_str_eq(t->annots[1].args, "\"x\\\")(\"");
	/* unknown escapes stay verbatim for regexes; \\ is one backslash */
	ck_assert_str_eq(t->cons[0].pattern, "^\\d\\\\");
	gfs_schema_free(s);

	parse_bad("node T @description(\"abc) { }", "t.pg:1:21: unterminated "
		  "string, expected '\"'");
	parse_bad("node T @description(\"abc\\", "t.pg:1:21: unterminated string");
	parse_bad("node T @x(\"abc) { }", "t.pg:1:11: unterminated string");
	ck_assert_int_eq(gfs_schema_parse(nul_text, sizeof nul_text - 1, "t.pg",
					  &o, &d),
			 GFS_ESCHEMA);
	ck_assert_ptr_null(o);
	ck_assert_str_eq(d.msg, "t.pg:1:23: NUL byte in string");
}
END_TEST

START_TEST(test_embed)
{
	struct gfs_schema *s = parse_ok(
		"interface Doc { text: String? }\n"
		"node C implements Doc { v: Vector(2)? @embed(\"text\") }\n"
		"interface Emb { e: Vector(4) @embed(\"body\") }\n"
		"node D implements Emb { body: String }\n"
		"node Y { }\nedge E: Y -> Y { t: String  v: Vector(2) @embed(\"t\") }\n");

	ck_assert_str_eq(prop_of(type_of(s, "C"), "v")->embed, "text");
	ck_assert_str_eq(prop_of(type_of(s, "D"), "e")->embed, "body");
	gfs_schema_free(s);

	parse_bad("node T { s: String @embed(\"s\") }",
		  "t.pg:1:20: @embed not allowed on non-Vector property 's'");
	parse_bad_exact("node T {\n  v: Vector(3) @embed(\"txt\")\n  text: String\n}",
			"t.pg:2:3: @embed on 'v' names 'txt', expected a String "
			"property of 'T'");
	parse_bad("node T { v: Vector(3) @embed(\"n\") n: I32 }",
		  "@embed on 'v' names 'n'");
	parse_bad("node T { v: Vector(3) @embed(\"n\") n: [String] }",
		  "@embed on 'v' names 'n'");
	parse_bad("node T { v: Vector(3) @embed(\"v\") }", "@embed on 'v' names 'v'");
	parse_bad("node T { v: Vector(3) @embed(n) n: String }",
		  "t.pg:1:30: expected a string literal in @embed(...)");
	parse_bad("node T { v: Vector(3) @embed }", "t.pg:1:30: expected '(' after "
		  "'@embed'");
	parse_bad("node T { s: String v: Vector(3) @embed(\"s\") @embed(\"s\") }",
		  "t.pg:1:45: duplicate @embed");
	parse_bad("interface Emb { e: Vector(4) @embed(\"body\") }\n"
		  "node D implements Emb { }", "@embed on 'e' names 'body'");
}
END_TEST

/* ---- shipped schemas ---------------------------------------------------- */

START_TEST(test_people_example)
{
	struct gfs_schema *s = parse_file("examples/people.pg");
	const struct gfs_typedef *p = type_of(s, "Person");
	const struct gfs_typedef *pj = type_of(s, "Project");
	const struct gfs_typedef *c = type_of(s, "Chunk");

	ck_assert_str_eq(p->props[p->key[0]].name, "slug");
	ck_assert_int_ge(gfs_typedef_prop(p, "name"), 0);
	ck_assert_int_ge(gfs_typedef_prop(p, "created"), 0);
	ck_assert_str_eq(prop_of(p, "kind")->type.enum_vals[2], "on-leave");
	ck_assert_uint_eq(pj->n_key, 2);
	ck_assert_str_eq(pj->props[pj->key[0]].name, "org");
	ck_assert_uint_eq(prop_of(c, "embedding")->type.dim, 3);
	ck_assert_str_eq(prop_of(c, "embedding")->embed, "text");
	ck_assert(type_of(s, "WorksAt")->card_max == UINT64_MAX);
	ck_assert_uint_eq(type_of(s, "Owns")->card_max, 1);
	ck_assert_uint_eq(cons_of(type_of(s, "Knows"), GFS_C_UNIQUE, "src")->n_props,
			  2);
	gfs_schema_free(s);
}
END_TEST

START_TEST(test_real_schemas)
{
	struct gfs_schema *s = parse_file("tests/data/schemas/knowledge.pg");
	const struct gfs_typedef *t = type_of(s, "Organization");
	const struct gfs_prop *p;

	ck_assert_str_eq(t->description,
			 "A company, institution, agency or other group");
	ck_assert_str_eq(annot_args(t->annots, t->n_annots, "instruction"),
			 "\"Only extract organizations named explicitly in the "
			 "text\"");
	p = prop_of(t, "summary");
	ck_assert_str_eq(annot_args(p->annots, p->n_annots, "instruction"),
			 "\"one sentence, present tense\"");
	ck_assert_str_eq(annot_args(prop_of(t, "hq_country")->annots, 1,
				    "rename_from"), "\"country\"");
	t = type_of(s, "Human");
	ck_assert_str_eq(annot_args(t->annots, t->n_annots, "rename_from"),
			 "\"Person\"");
	ck_assert_int_eq(cons_of(t, GFS_C_CHECK, "wikidata_id")->kind,
			 GFS_C_CHECK);
	ck_assert(cons_of(t, GFS_C_RANGE, "birth_year")->lo.i == -3000);
	p = prop_of(type_of(s, "Passage"), "embedding");
	ck_assert_str_eq(annot_args(p->annots, p->n_annots, "hnsw"),
			 "m = 16, ef = 200");
	t = type_of(s, "EmployedBy");
	ck_assert_uint_eq(cons_of(t, GFS_C_UNIQUE, "src")->n_props, 3);
	ck_assert(cons_of(type_of(s, "RelatedTo"), GFS_C_RANGE, "weight")->hi.d ==
		  1000.0);
	ck_assert(type_of(s, "PartOf")->card_max == 1);
	gfs_schema_free(s);

	s = parse_file("tests/data/schemas/commerce.pg");
	t = type_of(s, "Order");
	ck_assert_uint_eq(t->n_key, 2);
	ck_assert_str_eq(type_of(s, "Customer")->props[1].name, "email");
	ck_assert_str_eq(prop_of(type_of(s, "Customer"), "tier")->type.enum_vals[3],
			 "legacy-2019");
	ck_assert_uint_eq(type_of(s, "Contains")->card_max, 500);
	gfs_schema_free(s);
}
END_TEST

/* ---- hostile input ------------------------------------------------------ */

/* Any result is fine except a crash, a leak or a malformed error. */
static void parse_any(const char *text, size_t len)
{
	struct gfs_schema *s = NULL;
	struct gfs_diag d = { { 0 } };
	int rc = gfs_schema_parse(text, len, "f.pg", &s, &d);

	if (rc == 0) {
		ck_assert_ptr_nonnull(s);
		gfs_schema_free(s);
		return;
	}
	ck_assert_int_eq(rc, GFS_ESCHEMA);
	ck_assert_ptr_null(s);
	ck_assert_msg(strncmp(d.msg, "f.pg:", 5) == 0, "bad diag <<%s>>", d.msg);
}

START_TEST(test_truncated_prefixes)
{
	size_t len, oks = 0;
	char *text = read_src("examples/people.pg", &len);

	for (size_t n = 0; n <= len; n++) {
		/* a heap copy of exactly n bytes lets ASan see any overread */
		char *cut = malloc(n ? n : 1);

		memcpy(cut, text, n);
		parse_any(cut, n);
		{
			struct gfs_schema *s = NULL;
			struct gfs_diag d = { { 0 } };

			if (!gfs_schema_parse(cut, n, "f.pg", &s, &d))
				oks++;
			gfs_schema_free(s);
		}
		free(cut);
	}
	ck_assert_uint_gt(oks, 2);
	free(text);
}
END_TEST

START_TEST(test_random_bytes)
{
	static const char alphabet[] = "nodeintrfacimplsg{}()[]:,?@-.>\"\\/*\n "
				       "ABZabz09_";
	unsigned seed = 12345;
	size_t len;
	char *text = read_src("examples/people.pg", &len);

	for (int round = 0; round < 3000; round++) {
		size_t n = (size_t)rand_r(&seed) % 200;
		char *buf = malloc(n ? n : 1);

		for (size_t i = 0; i < n; i++)
			buf[i] = round % 2 ? (char)rand_r(&seed)
					   : alphabet[rand_r(&seed) %
						      (sizeof alphabet - 1)];
		parse_any(buf, n);
		free(buf);
	}
	/* mutations of a valid schema: flip, delete and duplicate bytes */
	for (int round = 0; round < 3000; round++) {
		char *buf = malloc(len + 8);
		size_t n = len, at = (size_t)rand_r(&seed) % len;

		memcpy(buf, text, len);
		if (round % 3 == 0)
			buf[at] = (char)rand_r(&seed);
		else if (round % 3 == 1)
			buf[at] = alphabet[rand_r(&seed) % (sizeof alphabet - 1)];
		else
			memmove(buf + at, buf + at + 1, --n - at);
		parse_any(buf, n);
		free(buf);
	}
	free(text);
}
END_TEST

START_TEST(test_deep_nesting)
{
	size_t n = 1 << 20;
	char *buf = malloc(n + 64);

	/* unbalanced parentheses in raw annotation arguments */
	memcpy(buf, "node T @x", 9);
	memset(buf + 9, '(', n);
	parse_any(buf, n + 9);
	parse_bad_exact("node T @x((()", "t.pg:1:14: unterminated arguments of "
			"@x (opened at 1:10), expected ')'");
	/* balanced and deep: kept verbatim */
	memset(buf + 9, '(', n / 2);
	memset(buf + 9 + n / 2, ')', n / 2);
	memcpy(buf + 9 + n, " { }", 4);
	{
		struct gfs_schema *s = NULL;
		struct gfs_diag d = { { 0 } };

		ck_assert_int_eq(gfs_schema_parse(buf, n + 13, "f.pg", &s, &d), 0);
		ck_assert_uint_eq(strlen(s->types[0].annots[0].args), n - 2);
		gfs_schema_free(s);
	}
	/* nested lists and a huge identifier */
	memcpy(buf, "node T { a: ", 12);
	memset(buf + 12, '[', n);
	parse_any(buf, n + 12);
	memcpy(buf, "node ", 5);
	memset(buf + 5, 'A', n);
	parse_any(buf, n + 5);
	/* NULs outside strings */
	parse_any("node\0T { }", 10);
	parse_any("node T { a: I32\0 }", 18);
	free(buf);
}
END_TEST

START_TEST(test_many_types)
{
	struct gfs_buf b;
	struct gfs_schema *s = NULL;
	struct gfs_diag d = { { 0 } };

	gfs_buf_init(&b);
	for (int i = 0; i < 2000; i++)
		ck_assert_int_eq(gfs_buf_appendf(&b, "node N%d { p%d: I32 @key "
						 "q: String }\nedge E%d: N%d -> N0\n",
						 i, i, i, i),
				 0);
	ck_assert_int_eq(gfs_schema_parse(b.p, b.len, "big.pg", &s, &d), 0);
	ck_assert_uint_eq(s->n_types, 4000);
	ck_assert_uint_eq(type_of(s, "E1999")->from_idx, 3998);
	gfs_schema_free(s);
	gfs_buf_release(&b);
}
END_TEST

/* The limits of new schemas (docs/format.md "Limits") never apply to a
 * schema the store already holds: an older store whose schema is past one
 * still opens (gfs_schema_parse_stored), and the UTF-8 check is separate. */
START_TEST(test_limits_new_only)
{
	char text[400];
	struct gfs_schema *s = NULL;
	struct gfs_diag d = { { 0 } };

	snprintf(text, sizeof text, "node P%0129d { k: String @key }", 0);
	parse_bad(text, "t.pg:1:6: type name 'P000");
	parse_bad(text, "of 130 bytes is longer than the limit of 128 bytes");
	ck_assert_int_eq(gfs_schema_parse_stored(text, strlen(text), "t.pg",
						 &s, &d), 0);
	ck_assert_uint_eq(strlen(s->types[0].name), 130);
	gfs_schema_free(s);
	ck_assert_int_eq(gfs_schema_check_text(text, strlen(text), "t.pg", &d),
			 0);
	ck_assert_int_eq(gfs_schema_check_text("node P\xc0\x80 {}", 11,
					       "t.pg", &d), GFS_ESCHEMA);
	ck_assert_str_eq(d.msg, "t.pg:1:7: invalid UTF-8 (byte 0xc0), "
				"expected UTF-8 text");
}
END_TEST

START_TEST(test_api_edges)
{
	struct gfs_schema *s = (struct gfs_schema *)1;
	struct gfs_diag d = { { 0 } };
	char buf[8];

	gfs_schema_free(NULL);
	ck_assert_int_eq(gfs_schema_parse(NULL, 0, NULL, &s, &d), 0);
	ck_assert_uint_eq(s->n_types, 0);
	ck_assert_ptr_null(gfs_schema_find(s, "X"));
	ck_assert_ptr_null(gfs_schema_find(NULL, "X"));
	gfs_schema_free(s);
	ck_assert_int_eq(gfs_schema_parse("x", 1, NULL, &s, &d), GFS_ESCHEMA);
	ck_assert_ptr_null(s);
	ck_assert_str_eq(d.msg, "<schema>:1:1: expected 'node', 'edge' or "
			 "'interface'");
	/* the length bounds the text: no NUL terminator needed */
	ck_assert_int_eq(gfs_schema_parse("node T { }garbage", 10, "t", &s, &d), 0);
	ck_assert_uint_eq(s->text_len, 10);
	/* a short buffer truncates, NUL-terminated */
	ck_assert_str_eq(gfs_typedef_table(&s->types[0], buf, sizeof buf),
			 "node:T");
	ck_assert_str_eq(gfs_typedef_table(&s->types[0], buf, 4), "nod");
	gfs_schema_free(s);
}
END_TEST

static Suite *schema_suite(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_design_example);
	tcase_add_test(tc, test_all_types);
	tcase_add_test(tc, test_type_errors);
	tcase_add_test(tc, test_enums);
	tcase_add_test(tc, test_interfaces);
	tcase_add_test(tc, test_annotations);
	tcase_add_test(tc, test_constraints);
	tcase_add_test(tc, test_key_rules);
	tcase_add_test(tc, test_edges);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_syntax_positions);
	tcase_add_test(tc, test_comments);
	tcase_add_test(tc, test_separators);
	tcase_add_test(tc, test_strings);
	tcase_add_test(tc, test_embed);
	tcase_add_test(tc, test_people_example);
	tcase_add_test(tc, test_real_schemas);
	tcase_add_test(tc, test_truncated_prefixes);
	tcase_add_test(tc, test_random_bytes);
	tcase_add_test(tc, test_deep_nesting);
	tcase_add_test(tc, test_many_types);
	tcase_add_test(tc, test_api_edges);
	tcase_add_test(tc, test_limits_new_only);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(schema_suite());
}
