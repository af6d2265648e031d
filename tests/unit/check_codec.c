/* check_codec.c - load-format line parsing and canonical form. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdint.h>

#include "codec.h"
#include "schema.h"
#include "testutil.h"
#include "util.h"

static const char schema_text[] =
	"node Person {\n"
	"  slug: String @key\n"
	"  age: I32?\n"
	"  score: F64?\n"
	"  tags: [String]?\n"
	"  email: String? @unique\n"
	"  phone: String?\n"
	"  @range(age, 0..150)\n"
	"  @range(score, ..1.5)\n"
	"  @check(phone, \"^[0-9]+$\")\n"
	"  @check(email, \"^[^@]+@[^@]+$\")\n"
	"  @unique(email, phone)\n"
	"}\n"
	"node All {\n"
	"  k: String @key\n"
	"  s: String?\n  b: Bool?\n"
	"  i32: I32?\n  i64: I64?\n  u32: U32?\n  u64: U64?\n"
	"  f32: F32?\n  f64: F64?\n"
	"  d: Date?\n  dt: DateTime?\n  bl: Blob?\n"
	"  e: enum(staff, guest, on-leave)?\n"
	"  v: Vector(3)?\n"
	"  ls: [String]?\n  li: [I32]?\n  lf: [F64]?\n  ld: [Date]?\n"
	"  r: I64?\n  @range(r, 1..)\n"
	"}\n"
	"node Req { name: String  n: I32  opt: Bool? }\n"
	"node Account { n: I64 @key  label: String? }\n"
	"node Pair { a: String  b: I32  note: String?  @key(a, b) }\n"
	"node Day { d: Date @key }\n"
	"node When { t: DateTime @key }\n"
	"node Flag { f: Bool @key }\n"
	"node Chunk { text: String  embedding: Vector(3)? }\n"
	"edge Knows: Person -> Person { since: Date?  @unique(src, dst) }\n"
	"edge Owns: Account -> Pair { w: F32? }\n"
	"edge Tagged: Chunk -> Account\n";

static struct gfs_schema *S;
static struct gfs_rowin R;
static struct gfs_diag D;

static void setup(void)
{
	struct gfs_diag d = { { 0 } };
	int rc = gfs_schema_parse(schema_text, sizeof schema_text - 1,
				  "test.pg", &S, &d);

	if (rc)
		fprintf(stderr, "schema: %s\n", d.msg);
	ck_assert_int_eq(rc, 0);
	gfs_rowin_init(&R);
}

static void teardown(void)
{
	gfs_rowin_release(&R);
	gfs_schema_free(S);
	S = NULL;
}

static int parse_n(const char *line, size_t len)
{
	memset(&D, 0, sizeof D);
	return gfs_codec_parse_line(S, line, len, 7, &R, &D);
}

static int parse(const char *line)
{
	return parse_n(line, strlen(line));
}

/* line parses to want (a canonical line without '\n'), and want to itself. */
static void ok_n(const char *line, size_t len, const char *want, size_t wlen)
{
	char *canon;
	size_t clen;
	int rc = parse_n(line, len);

	if (rc)
		fprintf(stderr, "unexpected error: %s\n", D.msg);
	ck_assert_int_eq(rc, 0);
	if (R.line.len != wlen + 1 || memcmp(R.line.p, want, wlen))
		fprintf(stderr, "got  %s\nwant %.*s\n", R.line.p, (int)wlen, want);
	ck_assert_uint_eq(R.line.len, wlen + 1);
	ck_assert(memcmp(R.line.p, want, wlen) == 0);
	ck_assert_int_eq(R.line.p[wlen], '\n');
	/* idempotence: the canonical line is its own canonical form */
	canon = gfs_memdup(R.line.p, R.line.len);
	clen = R.line.len;
	ck_assert_int_eq(parse_n(canon, clen), 0);
	ck_assert_uint_eq(R.line.len, clen);
	ck_assert(memcmp(R.line.p, canon, clen) == 0);
	free(canon);
	ck_assert(R.data_off > 0 && R.data_off + R.data_len < R.line.len);
	ck_assert_int_eq(R.line.p[R.data_off], '{');
	ck_assert_int_eq(R.line.p[R.data_off + R.data_len - 1], '}');
}

static void ok(const char *line, const char *want)
{
	ok_n(line, strlen(line), want, strlen(want));
}

/* line is rejected with GFS_EDATA and a message containing each of the
 * NULL-terminated fragments. */
static void bad(const char *line, ...)
{
	va_list ap;
	const char *frag;
	int rc = parse(line);

	if (rc != GFS_EDATA)
		fprintf(stderr, "accepted: %s -> %s", line, R.line.p);
	ck_assert_int_eq(rc, GFS_EDATA);
	va_start(ap, line);
	while ((frag = va_arg(ap, const char *)))
		ck_assert_msg(strstr(D.msg, frag), "message '%s' lacks '%s'",
			      D.msg, frag);
	va_end(ap);
	ck_assert_msg(strncmp(D.msg, "line 7: ", 8) == 0, "%s", D.msg);
}

#define BAD(line, ...) bad(line, __VA_ARGS__, (const char *)NULL)

/* The value of property p of All canonicalises to want. */
static void all_ok(const char *p, const char *val, const char *want)
{
	char in[512], out[512];

	snprintf(in, sizeof in, "{\"type\":\"All\",\"data\":{\"k\":\"x\",\"%s\":%s}}",
		 p, val);
	snprintf(out, sizeof out, "{\"type\":\"All\",\"data\":{\"k\":\"x\",\"%s\":%s}}",
		 p, want);
	ok(in, out);
}

static void all_bad(const char *p, const char *val, const char *frag)
{
	char in[512], prop[64];

	snprintf(in, sizeof in, "{\"type\":\"All\",\"data\":{\"k\":\"x\",\"%s\":%s}}",
		 p, val);
	snprintf(prop, sizeof prop, "All 'x': property '%s': ", p);
	BAD(in, prop, frag);
}

START_TEST(test_node_canonical)
{
	ok("  {\"data\": {\"phone\":\"1\", \"age\": 30, \"slug\":\"alice\","
	   "\"tags\":null}, \"type\":\"Person\"}  ",
	   "{\"type\":\"Person\",\"data\":{\"slug\":\"alice\",\"age\":30,"
	   "\"phone\":\"1\"}}");
	ck_assert_str_eq(R.id.p, "alice");
	ck_assert(!R.id_generated);
	ck_assert_ptr_eq(R.td, gfs_schema_find(S, "Person"));
	ck_assert_str_eq(S->types[R.type_idx].name, "Person");
	ck_assert_uint_eq(R.src.len, 0);
	/* data omitted = {} */
	ok("{\"type\":\"Chunk\",\"data\":{\"id\":\"c1\",\"text\":\"t\"}}",
	   "{\"type\":\"Chunk\",\"data\":{\"id\":\"c1\",\"text\":\"t\"}}");
	ck_assert_int_eq(parse("{\"type\":\"Day\"}"), GFS_EDATA);
	ck_assert(strstr(D.msg, "property 'd': missing required property"));
}
END_TEST

START_TEST(test_strings_nul)
{
	static const char in[] =
		"{\"type\":\"All\",\"data\":{\"k\":\"a\\u0000b\",\"s\":\"x\\u0000\\n\\u001f\\u00e9\\\"\"}}";
	static const char want[] =
		"{\"type\":\"All\",\"data\":{\"k\":\"a\\u0000b\",\"s\":\"x\\u0000\\n\\u001f\xc3\xa9\\\"\"}}";

	ok(in, want);
	ck_assert_uint_eq(R.id.len, 3);
	ck_assert(memcmp(R.id.p, "a\0b", 3) == 0);
	all_ok("s", "\"\"", "\"\"");
	all_ok("s", "\"\\/\\ud83d\\ude00\"", "\"/\xf0\x9f\x98\x80\"");
	all_bad("s", "1", "expected String, got integer 1");
	all_bad("s", "{}", "expected String, got an object");
}
END_TEST

START_TEST(test_ints)
{
	all_ok("i32", "-2147483648", "-2147483648");
	all_ok("i32", "2147483647", "2147483647");
	all_bad("i32", "2147483648", "2147483648 is out of range for I32");
	all_bad("i32", "1.0", "expected I32, got real 1.0");
	all_bad("i32", "\"5\"", "expected I32, got string \"5\"");
	all_bad("i32", "true", "expected I32, got true");
	all_ok("i64", "-9223372036854775808", "-9223372036854775808");
	all_ok("u32", "4294967295", "4294967295");
	all_bad("u32", "4294967296", "out of range for U32");
	all_bad("u32", "-1", "-1 is out of range for U32");
	all_ok("u64", "9223372036854775807", "9223372036854775807");
	all_bad("u64", "-1", "out of range for U64");
	BAD("{\"type\":\"All\",\"data\":{\"k\":\"x\",\"u64\":9223372036854775808}}",
	    "invalid JSON", "U64 values above 9223372036854775807 are not supported");
	all_bad("i64", "1e3", "expected I64, got real 1000.0");
}
END_TEST

START_TEST(test_floats)
{
	all_ok("f64", "1", "1.0");
	all_ok("f64", "0.1", "0.1");
	all_ok("f64", "-0.0", "-0.0");
	all_ok("f64", "1.5e300", "1.5e+300");
	all_ok("f64", "3.141592653589793238", "3.141592653589793");
	all_ok("f64", "123456789012345678", "1.2345678901234568e+17");
	all_ok("f64", "2.5E-5", "2.5e-05");
	all_bad("f64", "\"1\"", "expected F64, got string \"1\"");
}
END_TEST

START_TEST(test_f32)
{
	all_ok("f32", "0.1", "0.1");
	all_ok("f32", "3.14159265358979", "3.1415927");
	all_ok("f32", "16777217", "16777216.0");
	all_ok("f32", "3.4028234663852886e38", "3.4028235e+38");
	all_ok("f32", "1e-50", "0.0");
	all_bad("f32", "3.5e38", "out of range for F32");
	all_bad("f32", "-1e39", "out of range for F32");
	all_bad("f32", "[1]", "expected F32, got an array");
}
END_TEST

START_TEST(test_dates)
{
	all_ok("d", "\"2024-02-29\"", "\"2024-02-29\"");
	all_ok("d", "\"2000-02-29\"", "\"2000-02-29\"");
	all_ok("d", "\"0000-01-01\"", "\"0000-01-01\"");
	all_bad("d", "\"1900-02-29\"", "expected a Date YYYY-MM-DD");
	all_bad("d", "\"2023-02-29\"", "got string \"2023-02-29\"");
	all_bad("d", "\"2023-13-01\"", "Date");
	all_bad("d", "\"2023-04-31\"", "Date");
	all_bad("d", "\"2023-1-01\"", "Date");
	all_bad("d", "\"2023-01-01T00:00:00Z\"", "Date");
	all_bad("d", "\"2023-01-0\\u0000\"", "Date");
	all_bad("d", "20230101", "expected Date, got integer");
}
END_TEST

START_TEST(test_datetimes)
{
	all_ok("dt", "\"2026-01-02T03:04:05Z\"", "\"2026-01-02T03:04:05Z\"");
	all_ok("dt", "\"2020-01-01t01:02:03.500+01:00\"",
	       "\"2020-01-01T00:02:03.5Z\"");
	all_ok("dt", "\"2020-01-01T00:00:00.000000000z\"",
	       "\"2020-01-01T00:00:00Z\"");
	all_ok("dt", "\"2020-12-31T23:30:00.123456789-05:45\"",
	       "\"2021-01-01T05:15:00.123456789Z\"");
	all_ok("dt", "\"2024-03-01T00:30:00+01:00\"", "\"2024-02-29T23:30:00Z\"");
	all_ok("dt", "\"1969-12-31T23:59:59.000001Z\"",
	       "\"1969-12-31T23:59:59.000001Z\"");
	all_ok("dt", "\"0000-01-01T05:00:00+05:00\"", "\"0000-01-01T00:00:00Z\"");
	all_bad("dt", "\"0000-01-01T00:00:00+00:01\"", "outside years 0000..9999");
	all_bad("dt", "\"9999-12-31T23:59:59-00:01\"", "outside years");
	all_bad("dt", "\"2020-01-01T00:00:00.1234567891Z\"", "RFC 3339");
	all_bad("dt", "\"2020-01-01T00:00:60Z\"", "RFC 3339");
	all_bad("dt", "\"2020-01-01T24:00:00Z\"", "RFC 3339");
	all_bad("dt", "\"2020-01-01 00:00:00Z\"", "RFC 3339");
	all_bad("dt", "\"2020-01-01T00:00:00\"", "RFC 3339");
	all_bad("dt", "\"2020-01-01T00:00:00.Z\"", "RFC 3339");
	all_bad("dt", "\"2020-01-01T00:00:00+0100\"", "RFC 3339");
	all_bad("dt", "\"2020-01-01T00:00:00+01:00x\"", "RFC 3339");
	all_bad("dt", "\"2020-02-30T00:00:00Z\"", "RFC 3339");
	all_bad("dt", "1577836800", "expected DateTime, got integer");
}
END_TEST

START_TEST(test_blobs)
{
	all_ok("bl", "\"aGVsbG8=\"", "\"aGVsbG8=\"");
	all_ok("bl", "\"base64:aGVsbG8\"", "\"aGVsbG8=\"");
	all_ok("bl", "\"aGk\"", "\"aGk=\"");
	all_ok("bl", "\"aA\"", "\"aA==\"");
	all_ok("bl", "\"\"", "\"\"");
	all_ok("bl", "\"base64:\"", "\"\"");
	all_ok("bl", "\"+/+/\"", "\"+/+/\"");
	all_bad("bl", "\"aGVsbG8$\"", "expected a Blob in base64");
	all_bad("bl", "\"a\"", "base64");
	all_bad("bl", "\"aGk==\"", "base64");
	all_bad("bl", "\"aGVs bG8=\"", "base64");
	all_bad("bl", "\"aG=k\"", "base64");
	all_bad("bl", "\"-_-_\"", "base64");
	all_bad("bl", "[1,2]", "expected Blob, got an array");
}
END_TEST

START_TEST(test_bool_enum)
{
	all_ok("b", "true", "true");
	all_ok("b", "false", "false");
	all_bad("b", "0", "expected Bool, got integer 0");
	all_bad("b", "\"true\"", "expected Bool, got string");
	all_ok("e", "\"on-leave\"", "\"on-leave\"");
	all_ok("e", "\"staff\"", "\"staff\"");
	all_bad("e", "\"On-leave\"",
		"expected enum(staff, guest, on-leave), got string \"On-leave\"");
	all_bad("e", "\"staff\\u0000\"", "expected enum");
	all_bad("e", "1", "expected enum");
}
END_TEST

START_TEST(test_vectors_lists)
{
	all_ok("v", "[1, 2.5, -3e-2]", "[1.0,2.5,-0.03]");
	all_bad("v", "[1,2]", "expected Vector(3), got an array of 2");
	all_bad("v", "[1,2,3,4]", "array of 4");
	all_bad("v", "[1,\"2\",3]", "element 1: expected F64, got string");
	all_bad("v", "[1,null,3]", "element 1: expected F64, got null");
	all_bad("v", "\"1,2,3\"", "expected Vector(3), got string");
	all_ok("ls", "[]", "[]");
	all_ok("ls", "[\"a\", \"b\"]", "[\"a\",\"b\"]");
	all_bad("ls", "[\"a\", null]", "element 1: null is not allowed in a list");
	all_bad("ls", "[\"a\", 1]", "element 1: expected String, got integer 1");
	all_bad("ls", "\"a\"", "expected [String], got string");
	all_bad("ls", "[[\"a\"]]", "element 0: expected String, got an array");
	all_ok("li", "[1, 2]", "[1,2]");
	all_bad("li", "[1, 2.0]", "element 1: expected I32, got real 2.0");
	all_ok("lf", "[1, 0.5]", "[1.0,0.5]");
	all_ok("ld", "[\"2020-01-01\"]", "[\"2020-01-01\"]");
	all_bad("ld", "[\"2020-01-32\"]", "element 0: expected a Date");
}
END_TEST

START_TEST(test_nullability)
{
	ok("{\"type\":\"Req\",\"data\":{\"id\":\"r\",\"name\":\"n\",\"n\":1,\"opt\":null}}",
	   "{\"type\":\"Req\",\"data\":{\"id\":\"r\",\"name\":\"n\",\"n\":1}}");
	BAD("{\"type\":\"Req\",\"data\":{\"id\":\"r\",\"name\":\"n\"}}",
	    "line 7: Req 'r': property 'n': missing required property");
	BAD("{\"type\":\"Req\",\"data\":{\"id\":\"r\",\"name\":null,\"n\":1}}",
	    "Req 'r': property 'name': null is not allowed");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":null}}",
	    "property 'slug': missing required property (the key of Person)");
}
END_TEST

START_TEST(test_range_check)
{
	ok("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"age\":150,\"score\":1.5}}",
	   "{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"age\":150,\"score\":1.5}}");
	ok("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"age\":0,\"score\":-1e300}}",
	   "{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"age\":0,\"score\":-1e+300}}");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"age\":151}}",
	    "line 7: Person 'a': property 'age': integer 151 is outside @range(age, 0..150)");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"age\":-1}}",
	    "outside @range(age, 0..150)");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"score\":1.5000001}}",
	    "real 1.5000001 is outside @range(score, ..1.5)");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"score\":2}}",
	    "outside @range(score, ..1.5)");
	all_ok("r", "9223372036854775807", "9223372036854775807");
	all_ok("r", "1", "1");
	all_bad("r", "0", "integer 0 is outside @range(r, 1..)");
	all_bad("r", "-9223372036854775808", "outside @range(r, 1..)");
	/* @check: anchored as written */
	ok("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"phone\":\"12\","
	   "\"email\":\"x@y\"}}",
	   "{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"email\":\"x@y\","
	   "\"phone\":\"12\"}}");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"phone\":\"1a\"}}",
	    "property 'phone': \"1a\" does not match @check(phone, \"^[0-9]+$\")");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"email\":\"xy\"}}",
	    "property 'email': \"xy\" does not match @check(email");
	/* a NUL inside the string is part of what the regex sees */
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"phone\":\"1\\u0000\"}}",
	    "\"1\\x00\" does not match");
}
END_TEST

/* Points type's one-property constraint of kind k from prop `from` to `to`:
 * the schema language allows @range/@check on scalars only, but the codec
 * applies them to each element of a list, and that path is tested here. */
static void retarget(const char *type, enum gfs_cons_kind k, const char *from,
		     const char *to)
{
	struct gfs_typedef *td = (struct gfs_typedef *)gfs_schema_find(S, type);

	for (size_t i = 0; i < td->n_cons; i++) {
		if (td->cons[i].kind != k || strcmp(td->cons[i].props[0], from))
			continue;
		free(td->cons[i].props[0]);
		td->cons[i].props[0] = gfs_strdup(to);
		return;
	}
	ck_abort_msg("no such constraint");
}

START_TEST(test_list_constraints)
{
	retarget("All", GFS_C_RANGE, "r", "li");
	retarget("Person", GFS_C_CHECK, "phone", "tags");
	all_ok("li", "[1, 2000000000]", "[1,2000000000]");
	all_bad("li", "[1, 0]", "element 1: integer 0 is outside @range(li, 1..)");
	ok("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"tags\":[\"1\",\"23\"]}}",
	   "{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"tags\":[\"1\",\"23\"]}}");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"tags\":[\"1\",\"x\"]}}",
	    "property 'tags': element 1: \"x\" does not match @check(tags, \"^[0-9]+$\")");
}
END_TEST

START_TEST(test_composite_key)
{
	ok("{\"type\":\"Pair\",\"data\":{\"b\":3,\"a\":\"alice\"}}",
	   "{\"type\":\"Pair\",\"data\":{\"a\":\"alice\",\"b\":3}}");
	ck_assert_str_eq(R.id.p, "[\"alice\",3]");
	ok("{\"type\":\"Pair\",\"data\":{\"id\":[\"alice\",3],\"a\":\"alice\",\"b\":3}}",
	   "{\"type\":\"Pair\",\"data\":{\"a\":\"alice\",\"b\":3}}");
	ok("{\"type\":\"Pair\",\"data\":{\"id\":\"[\\\"a\\\\\\\"\\\",-3]\",\"a\":\"a\\\"\",\"b\":-3}}",
	   "{\"type\":\"Pair\",\"data\":{\"a\":\"a\\\"\",\"b\":-3}}");
	ck_assert_str_eq(R.id.p, "[\"a\\\"\",-3]");
	BAD("{\"type\":\"Pair\",\"data\":{\"id\":[\"alice\",4],\"a\":\"alice\",\"b\":3}}",
	    "Pair '[\"alice\",3]': data.id '[\"alice\",4]' does not match the key");
	BAD("{\"type\":\"Pair\",\"data\":{\"id\":\"[\\\"alice\\\", 3]\",\"a\":\"alice\",\"b\":3}}",
	    "is not the canonical id of a Pair");
	BAD("{\"type\":\"Pair\",\"data\":{\"id\":[\"alice\"],\"a\":\"alice\",\"b\":3}}",
	    "expected the 2-part key array of a Pair");
	BAD("{\"type\":\"Pair\",\"data\":{\"a\":\"alice\"}}",
	    "Pair: property 'b': missing key part 'b' of Pair");
	BAD("{\"type\":\"Pair\",\"data\":{\"a\":\"alice\",\"b\":\"3\"}}",
	    "Pair: property 'b': expected I32, got string \"3\"");
}
END_TEST

START_TEST(test_data_id)
{
	ok("{\"type\":\"Person\",\"data\":{\"id\":\"alice\",\"slug\":\"alice\"}}",
	   "{\"type\":\"Person\",\"data\":{\"slug\":\"alice\"}}");
	BAD("{\"type\":\"Person\",\"data\":{\"id\":\"bob\",\"slug\":\"alice\"}}",
	    "line 7: Person 'alice': data.id 'bob' does not match the key 'alice'");
	BAD("{\"type\":\"Person\",\"data\":{\"id\":5,\"slug\":\"5\"}}",
	    "data.id: expected String, got integer 5");
	ok("{\"type\":\"Account\",\"data\":{\"id\":5,\"n\":5}}",
	   "{\"type\":\"Account\",\"data\":{\"n\":5}}");
	ck_assert_str_eq(R.id.p, "5");
	ok("{\"type\":\"Account\",\"data\":{\"id\":\"-5\",\"n\":-5}}",
	   "{\"type\":\"Account\",\"data\":{\"n\":-5}}");
	BAD("{\"type\":\"Account\",\"data\":{\"id\":\"05\",\"n\":5}}",
	    "\"05\" is not the canonical id of a Account");
	BAD("{\"type\":\"Account\",\"data\":{\"id\":\" 5\",\"n\":5}}",
	    "not the canonical id");
	BAD("{\"type\":\"Account\",\"data\":{\"id\":6,\"n\":5}}",
	    "data.id '6' does not match the key '5'");
	/* DateTime keys compare canonically */
	ok("{\"type\":\"When\",\"data\":{\"id\":\"2020-01-01T01:00:00+01:00\","
	   "\"t\":\"2020-01-01T00:00:00.000Z\"}}",
	   "{\"type\":\"When\",\"data\":{\"t\":\"2020-01-01T00:00:00Z\"}}");
	ck_assert_str_eq(R.id.p, "2020-01-01T00:00:00Z");
	ok("{\"type\":\"Flag\",\"data\":{\"id\":\"true\",\"f\":true}}",
	   "{\"type\":\"Flag\",\"data\":{\"f\":true}}");
	ck_assert_str_eq(R.id.p, "true");
	ok("{\"type\":\"Day\",\"data\":{\"d\":\"1999-12-31\"}}",
	   "{\"type\":\"Day\",\"data\":{\"d\":\"1999-12-31\"}}");
	ck_assert_str_eq(R.id.p, "1999-12-31");
	/* unkeyed: data.id any string, else a fresh ULID */
	ok("{\"type\":\"Chunk\",\"data\":{\"id\":\"\",\"text\":\"t\"}}",
	   "{\"type\":\"Chunk\",\"data\":{\"id\":\"\",\"text\":\"t\"}}");
	ck_assert_uint_eq(R.id.len, 0);
	ck_assert(!R.id_generated);
	BAD("{\"type\":\"Chunk\",\"data\":{\"id\":7,\"text\":\"t\"}}",
	    "line 7: Chunk: data.id: expected a string id, got integer 7");
	ck_assert_int_eq(parse("{\"type\":\"Chunk\",\"data\":{\"text\":\"t\","
			       "\"embedding\":[0,0,1]}}"), 0);
	ck_assert(R.id_generated);
	ck_assert_uint_eq(R.id.len, GFS_ULID_LEN);
	ck_assert(gfs_ulid_valid(R.id.p));
	ck_assert(strncmp(R.line.p, "{\"type\":\"Chunk\",\"data\":{\"id\":\"", 30) == 0);
}
END_TEST

START_TEST(test_edges)
{
	ok("{\"to\":\"bob\",\"data\":{\"since\":\"2020-05-01\",\"id\":\"k1\"},"
	   "\"from\":\"alice\",\"edge\":\"Knows\"}",
	   "{\"edge\":\"Knows\",\"from\":\"alice\",\"to\":\"bob\",\"data\":"
	   "{\"id\":\"k1\",\"since\":\"2020-05-01\"}}");
	ck_assert_str_eq(R.src.p, "alice");
	ck_assert_str_eq(R.dst.p, "bob");
	ck_assert_str_eq(R.id.p, "k1");
	ck_assert(!R.id_generated);
	/* int-keyed source, composite-keyed target */
	ok("{\"edge\":\"Owns\",\"from\":7,\"to\":[\"a\",1],\"data\":{\"id\":\"o\",\"w\":0.5}}",
	   "{\"edge\":\"Owns\",\"from\":\"7\",\"to\":\"[\\\"a\\\",1]\",\"data\":"
	   "{\"id\":\"o\",\"w\":0.5}}");
	ck_assert_str_eq(R.src.p, "7");
	ck_assert_str_eq(R.dst.p, "[\"a\",1]");
	ok("{\"edge\":\"Owns\",\"from\":\"-7\",\"to\":\"[\\\"a\\\",1]\",\"data\":{\"id\":\"o\"}}",
	   "{\"edge\":\"Owns\",\"from\":\"-7\",\"to\":\"[\\\"a\\\",1]\",\"data\":{\"id\":\"o\"}}");
	BAD("{\"edge\":\"Owns\",\"from\":7.0,\"to\":[\"a\",1]}",
	    "line 7: Owns: \"from\": expected I64, got real 7.0");
	BAD("{\"edge\":\"Owns\",\"from\":\"x\",\"to\":[\"a\",1]}",
	    "\"from\": \"x\" is not the canonical id of a Account");
	BAD("{\"edge\":\"Owns\",\"from\":1,\"to\":[\"a\",\"1\"]}",
	    "\"to\": element 1: expected I32, got string \"1\"");
	BAD("{\"edge\":\"Knows\",\"from\":1,\"to\":\"b\"}",
	    "\"from\": expected String, got integer 1");
	BAD("{\"edge\":\"Tagged\",\"from\":1,\"to\":2}",
	    "\"from\": expected a string id of a Chunk, got integer 1");
	/* generated edge id */
	ck_assert_int_eq(parse("{\"edge\":\"Tagged\",\"from\":\"c\",\"to\":2}"), 0);
	ck_assert(R.id_generated);
	ck_assert(gfs_ulid_valid(R.id.p));
	ck_assert_str_eq(R.dst.p, "2");
	/* an error on a generated-id edge names its endpoints */
	BAD("{\"edge\":\"Knows\",\"from\":\"a\",\"to\":\"b\",\"data\":{\"since\":1}}",
	    "line 7: Knows 'a'->'b': property 'since': expected Date, got integer 1");
	BAD("{\"edge\":\"Knows\",\"from\":\"a\"}", "an edge line needs \"to\"");
	BAD("{\"edge\":\"Knows\",\"to\":\"a\"}", "an edge line needs \"from\"");
}
END_TEST

START_TEST(test_top_level)
{
	BAD("{\"typ\":\"Person\",\"data\":{}}", "missing \"type\"");
	BAD("{\"type\":\"Person\",\"typ\":1,\"data\":{\"slug\":\"a\"}}",
	    "line 7: unknown top-level key 'typ' (a node line has \"type\" and "
	    "\"data\"; an edge line has \"edge\", \"from\", \"to\" and \"data\")");
	BAD("{\"type\":\"Person\",\"from\":\"a\",\"data\":{\"slug\":\"a\"}}",
	    "unknown top-level key 'from'");
	BAD("{\"type\":\"Person\",\"edge\":\"Knows\"}", "not both");
	BAD("{\"type\":\"Persn\",\"data\":{}}",
	    "line 7: unknown node type 'Persn' (known: Person, All, Req, Account");
	BAD("{\"edge\":\"Person\",\"from\":\"a\",\"to\":\"b\"}",
	    "'Person' is a node type");
	BAD("{\"type\":\"Knows\"}", "'Knows' is an edge type");
	BAD("{\"type\":7}", "\"type\" must be a string naming a node type, got integer 7");
	BAD("{\"type\":\"Person\",\"data\":[]}", "\"data\" must be an object, got an array");
	BAD("{\"type\":\"Person\",\"data\":null}", "\"data\" must be an object, got null");
	BAD("[1]", "expected a JSON object");
	BAD("\"x\"", "expected a JSON object");
	BAD("", "invalid JSON");
	BAD("{\"type\":\"Day\",\"data\":{\"d\":\"2020-01-01\"}} {}", "invalid JSON");
	BAD("{\"type\":\"Day\",\"data\":{\"d\":\"2020-01-01\"}}x", "invalid JSON");
}
END_TEST

START_TEST(test_duplicates_reserved_unknown)
{
	BAD("{\"type\":\"Person\",\"type\":\"Person\",\"data\":{\"slug\":\"a\"}}",
	    "invalid JSON", "duplicate");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"slug\":\"b\"}}",
	    "invalid JSON", "duplicate");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"agee\":3}}",
	    "line 7: unknown property 'agee' of Person (known: slug, age, "
	    "score, tags, email, phone)");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"_rowid\":3}}",
	    "reserved name '_rowid' in data of Person");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"_tombstone\":true}}",
	    "reserved name '_tombstone'");
	BAD("{\"edge\":\"Knows\",\"from\":\"a\",\"to\":\"b\",\"data\":{\"src\":\"a\"}}",
	    "reserved name 'src' in data of Knows");
	BAD("{\"edge\":\"Knows\",\"from\":\"a\",\"to\":\"b\",\"data\":{\"dst\":\"a\"}}",
	    "reserved name 'dst'");
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"b\\u0001\":3}}",
	    "unknown property 'b\\x01' of Person");
}
END_TEST

START_TEST(test_invalid_utf8)
{
	static const char l1[] = "{\"type\":\"Person\",\"data\":{\"slug\":\"a\xff\"}}";
	static const char l2[] = "{\"type\":\"Person\",\"data\":{\"slug\":\"\xc3\"}}";
	static const char l3[] = "{\"type\":\"Person\",\"data\":{\"slug\":\"\xed\xa0\x80\"}}";

	BAD(l1, "line 7: invalid JSON: ", "at column");
	BAD(l2, "invalid JSON");
	BAD(l3, "invalid JSON");
	/* a lone surrogate escape */
	BAD("{\"type\":\"Person\",\"data\":{\"slug\":\"\\ud800\"}}", "invalid JSON");
	/* a NUL byte outside a string is just invalid JSON */
	ck_assert_int_eq(parse_n("{\"type\":\0\"Person\"}", 19), GFS_EDATA);
}
END_TEST

START_TEST(test_unique_keys)
{
	const struct gfs_typedef *p = gfs_schema_find(S, "Person");
	const struct gfs_typedef *k = gfs_schema_find(S, "Knows");
	struct gfs_buf *u;
	size_t n;

	ck_assert_uint_eq(gfs_codec_n_unique(p), 2);
	ck_assert_uint_eq(gfs_codec_n_unique(k), 1);
	ck_assert_uint_eq(gfs_codec_n_unique(gfs_schema_find(S, "Pair")), 0);
	ck_assert_int_eq(parse("{\"type\":\"Person\",\"data\":{\"slug\":\"a\","
			       "\"email\":\"x@y\"}}"), 0);
	ck_assert_uint_eq(R.n_ukeys, 2);
	ck_assert_str_eq(R.ukeys[0].p, "[\"x@y\"]");
	ck_assert_uint_eq(R.ukeys[1].len, 0); /* phone is null */
	ck_assert_int_eq(gfs_codec_ukeys_of(p, R.line.p + R.data_off, R.data_len,
					    NULL, 0, NULL, 0, &u, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(u[0].p, "[\"x@y\"]");
	ck_assert_uint_eq(u[1].len, 0);
	gfs_codec_free_ukeys(u, n);
	ck_assert_int_eq(parse("{\"type\":\"Person\",\"data\":{\"slug\":\"a\","
			       "\"email\":\"x@y\",\"phone\":\"1\"}}"), 0);
	ck_assert_str_eq(R.ukeys[1].p, "[\"x@y\",\"1\"]");
	ck_assert_int_eq(parse("{\"type\":\"Person\",\"data\":{\"slug\":\"a\"}}"), 0);
	ck_assert_uint_eq(R.ukeys[0].len, 0);
	/* a node type without unique constraints, then an edge with src/dst */
	ck_assert_int_eq(parse("{\"type\":\"Day\",\"data\":{\"d\":\"2020-01-01\"}}"), 0);
	ck_assert_uint_eq(R.n_ukeys, 0);
	ck_assert_int_eq(parse("{\"edge\":\"Knows\",\"from\":\"a\\u0000\",\"to\":\"b\"}"), 0);
	ck_assert_uint_eq(R.n_ukeys, 1);
	ck_assert_str_eq(R.ukeys[0].p, "[\"a\\u0000\",\"b\"]");
	ck_assert_int_eq(gfs_codec_ukeys_of(k, R.line.p + R.data_off, R.data_len,
					    R.src.p, R.src.len, R.dst.p,
					    R.dst.len, &u, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(u[0].p, R.ukeys[0].p);
	gfs_codec_free_ukeys(u, n);
	ck_assert_int_eq(gfs_codec_ukeys_of(k, "{nope", 5, "a", 1, "b", 1, &u, &n),
			 GFS_ECORRUPT);
	ck_assert_ptr_null(u);
}
END_TEST

START_TEST(test_canon_ref)
{
	struct gfs_buf b;
	struct gfs_diag d = { { 0 } };
	json_t *v = json_integer(42);

	gfs_buf_init(&b);
	ck_assert_int_eq(gfs_codec_canon_ref(gfs_schema_find(S, "Account"), v,
					     &b, &d), 0);
	ck_assert_str_eq(b.p, "42");
	json_decref(v);
	v = json_string("2020-01-01T00:00:00+00:00");
	ck_assert_int_eq(gfs_codec_canon_ref(gfs_schema_find(S, "When"), v, &b,
					     &d), 0);
	ck_assert_str_eq(b.p, "2020-01-01T00:00:00Z");
	ck_assert_int_eq(gfs_codec_canon_ref(gfs_schema_find(S, "Account"), v,
					     &b, &d), GFS_EDATA);
	ck_assert(strstr(d.msg, "is not the canonical id of a Account"));
	json_decref(v);
	gfs_buf_release(&b);
}
END_TEST

START_TEST(test_every_type_roundtrip)
{
	ok("{\"type\":\"All\",\"data\":{\"ld\":[\"2020-02-02\"],\"lf\":[1e-7],"
	   "\"li\":[5],\"ls\":[\"\\t\"],\"v\":[0.1,0.2,0.3],\"e\":\"guest\","
	   "\"bl\":\"base64:AAEC\",\"dt\":\"2020-06-30T23:59:59.999+00:00\","
	   "\"d\":\"2020-06-30\",\"f64\":1e21,\"f32\":1.1,\"u64\":18,"
	   "\"u32\":17,\"i64\":-16,\"i32\":15,\"b\":false,\"s\":\"\\u007f\","
	   "\"k\":\"key\"}}",
	   "{\"type\":\"All\",\"data\":{\"k\":\"key\",\"s\":\"\x7f\",\"b\":false,"
	   "\"i32\":15,\"i64\":-16,\"u32\":17,\"u64\":18,\"f32\":1.1,"
	   "\"f64\":1e+21,\"d\":\"2020-06-30\","
	   "\"dt\":\"2020-06-30T23:59:59.999Z\",\"bl\":\"AAEC\",\"e\":\"guest\","
	   "\"v\":[0.1,0.2,0.3],\"ls\":[\"\\t\"],\"li\":[5],\"lf\":[1e-07],"
	   "\"ld\":[\"2020-02-02\"]}}");
}
END_TEST

START_TEST(test_too_long)
{
	size_t n = GFS_MAX_LINE + 1;
	char *p = malloc(n);

	ck_assert_ptr_nonnull(p);
	memset(p, ' ', n);
	memset(&D, 0, sizeof D);
	ck_assert_int_eq(gfs_codec_parse_line(S, p, n, 12, &R, &D), GFS_ETOOLONG);
	ck_assert(strstr(D.msg, "line 12: "));
	ck_assert(strstr(D.msg, "33554432"));
	free(p);
}
END_TEST

static const char *const samples[] = {
	"{\"type\":\"All\",\"data\":{\"k\":\"x\",\"s\":\"a\\u0000\",\"f32\":1.5,"
	"\"dt\":\"2020-01-01T00:00:00.5+01:00\",\"bl\":\"base64:aGk\","
	"\"v\":[1,2,3],\"ls\":[\"a\"],\"li\":[3],\"e\":\"on-leave\"}}",
	"{\"edge\":\"Owns\",\"from\":7,\"to\":[\"a\",1],\"data\":{\"id\":\"o\",\"w\":0.5}}",
	"{\"type\":\"Pair\",\"data\":{\"id\":\"[\\\"a\\\",1]\",\"a\":\"a\",\"b\":1}}",
	"{\"type\":\"Person\",\"data\":{\"slug\":\"a\",\"tags\":[\"x\"],\"email\":\"a@b\"}}",
};

static void must_not_crash(const char *p, size_t n)
{
	int rc = parse_n(p, n);

	ck_assert(rc == 0 || rc == GFS_EDATA);
	if (rc)
		ck_assert(D.msg[0] != '\0');
	else
		ck_assert(R.line.len > 0 && R.line.p[R.line.len - 1] == '\n');
}

START_TEST(test_fuzz)
{
	unsigned seed = 12345;
	char buf[256];

	for (size_t s = 0; s < GFS_ARRAY_SIZE(samples); s++) {
		size_t n = strlen(samples[s]);
		char *m = gfs_memdup(samples[s], n);

		ck_assert_int_eq(parse(samples[s]), 0);
		for (size_t k = 0; k < n; k++) /* every truncation */
			must_not_crash(samples[s], k);
		for (int i = 0; i < 3000; i++) { /* byte mutations */
			size_t at = (size_t)rand_r(&seed) % n;
			char old = m[at];

			m[at] = (char)rand_r(&seed);
			must_not_crash(m, n);
			if (rand_r(&seed) % 4)
				m[at] = old;
		}
		free(m);
	}
	for (int i = 0; i < 3000; i++) { /* random bytes, JSON-ish alphabet too */
		size_t n = (size_t)rand_r(&seed) % sizeof buf;
		static const char al[] = "{}[]\",:0123456789.eE+-tfnul\\ abTZ";

		for (size_t k = 0; k < n; k++)
			buf[k] = i % 2 ? (char)rand_r(&seed) :
				 al[(size_t)rand_r(&seed) % (sizeof al - 1)];
		must_not_crash(buf, n);
	}
}
END_TEST

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_node_canonical);
	tcase_add_test(tc, test_strings_nul);
	tcase_add_test(tc, test_ints);
	tcase_add_test(tc, test_floats);
	tcase_add_test(tc, test_f32);
	tcase_add_test(tc, test_dates);
	tcase_add_test(tc, test_datetimes);
	tcase_add_test(tc, test_blobs);
	tcase_add_test(tc, test_bool_enum);
	tcase_add_test(tc, test_vectors_lists);
	tcase_add_test(tc, test_nullability);
	tcase_add_test(tc, test_range_check);
	tcase_add_test(tc, test_list_constraints);
	tcase_add_test(tc, test_composite_key);
	tcase_add_test(tc, test_data_id);
	tcase_add_test(tc, test_edges);
	tcase_add_test(tc, test_top_level);
	tcase_add_test(tc, test_duplicates_reserved_unknown);
	tcase_add_test(tc, test_invalid_utf8);
	tcase_add_test(tc, test_unique_keys);
	tcase_add_test(tc, test_canon_ref);
	tcase_add_test(tc, test_every_type_roundtrip);
	tcase_add_test(tc, test_too_long);
	tcase_add_test(tc, test_fuzz);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tu_run(codec_suite());
}
