/* check_codec_diff.c - the fast path of the load codec against jansson's.
 *
 * codec_fast.c may accept a line only if the jansson path accepts it, and
 * must then fill the row with the same bytes; with it on, every rc and
 * message stays as it was (tests/unit/codec_diff.h says what is compared).
 * Inputs, each line against every schema below:
 *   - every .jsonl under tests/ and examples/ (tests/unit/codec_diff.jsonl
 *     holds the edge cases and the regressions the fuzzer found), and the
 *     line literals of tests/unit/check_codec.c;
 *   - a sample of bench/synth.py's lines (the fast path must take them all);
 *   - GFS_CODEC_DIFF_MUTANTS (default 300000) mutants of those lines: byte
 *     and bit flips, insertions of JSON fragments, escapes, odd numbers and
 *     bad UTF-8, deletions, truncation, swapped and duplicated members,
 *     replaced values.  The seed is printed; GFS_CODEC_DIFF_SEED replays.
 * GFS_CODEC_DIFF_FILE=x.jsonl GFS_CODEC_DIFF_SCHEMA=x.pg instead compares a
 * whole file and times both paths (docs/testing.md, docs/decisions.md).
 */
#include "config.h"

#include <ftw.h>
#include <inttypes.h>
#include <time.h>

#include "codec_diff.h"
#include "schema.h"
#include "testutil.h"
#include "util.h"

#define MAX_SCHEMAS 16
#define MAX_LINE 8192

static const char *const schema_files[] = {
	"tests/unit/codec_diff.pg", "examples/people.pg", "bench/synth.pg",
	"bench/blob.pg", "tests/data/pkggraph.pg",
	"tests/data/schemas/commerce.pg", "tests/data/schemas/knowledge.pg",
};

/* The corpus: lines, and for each the first schema accepting it or -1. */
struct corpus {
	char **line;
	size_t *len;
	int *home;
	size_t n, cap;
};

static struct gfs_schema *S[MAX_SCHEMAS];
static const char *S_name[MAX_SCHEMAS];
static size_t n_S;
static struct corpus C;
static struct cdiff X;

static const char *srcdir(void)
{
	const char *t = getenv("top_srcdir");

	return t && *t ? t : "..";
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	long n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	p = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void add_schema(const char *text, size_t len, const char *name)
{
	struct gfs_diag d = { { 0 } };

	ck_assert_uint_lt(n_S, MAX_SCHEMAS);
	ck_assert_msg(gfs_schema_parse(text, len, name, &S[n_S], &d) == 0,
		      "%s: %s", name, d.msg);
	S_name[n_S++] = name;
}

static void add_line(const char *p, size_t n)
{
	if (C.n == C.cap) {
		C.cap = C.cap ? 2 * C.cap : 256;
		C.line = realloc(C.line, C.cap * sizeof *C.line);
		C.len = realloc(C.len, C.cap * sizeof *C.len);
		C.home = realloc(C.home, C.cap * sizeof *C.home);
		ck_assert(C.line && C.len && C.home);
	}
	C.line[C.n] = malloc(n + 1);
	ck_assert_ptr_nonnull(C.line[C.n]);
	memcpy(C.line[C.n], p, n);
	C.line[C.n][n] = '\0';
	C.len[C.n] = n;
	C.home[C.n++] = -1;
}

static void add_lines(const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		if (n)
			add_line(p, n);
		p += n + 1;
	}
}

static int add_jsonl(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	size_t n = strlen(path), len;
	char *text;

	if (flag != FTW_F || n < 6 || strcmp(path + n - 6, ".jsonl"))
		return 0;
	text = slurp(path, &len);
	add_lines(text, len);
	free(text);
	return 0;
}

/* One C string literal group at *p ("a" "b" concatenated), unescaped. */
static size_t c_literal(const char **p, char *out, size_t cap)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == '"') {
		for (s++; *s && *s != '"'; s++) {
			char ch = *s;

			if (ch == '\\') {
				s++;
				ch = *s == 'n' ? '\n' : *s == 't' ? '\t' :
				     *s == '0' ? '\0' : *s;
			}
			if (n < cap)
				out[n++] = ch;
		}
		if (*s)
			s++;
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
	}
	*p = s;
	return n;
}

/* check_codec.c's schema and its line literals. */
static void add_check_codec(void)
{
	static char buf[MAX_LINE];
	char path[4096];
	size_t len, n;
	char *text;

	snprintf(path, sizeof path, "%s/tests/unit/check_codec.c", srcdir());
	text = slurp(path, &len);
	for (const char *p = text; (p = strchr(p, '"'));) {
		if (p > text && (p[-1] == '\\' || p[-1] == '\''))
			{ p++; continue; }
		n = c_literal(&p, buf, sizeof buf);
		if (n > 5 && !memcmp(buf, "node ", 5) && n_S < MAX_SCHEMAS)
			add_schema(buf, n, "check_codec.c");
		else if (n && n < sizeof buf && buf[0] == '{')
			add_line(buf, n);
	}
	free(text);
}

/* Item i and Link j as bench/synth.py writes them. */
static size_t synth_line(size_t k, char *out, size_t cap)
{
	static const char *w[] = { "alpha", "bravo", "charlie", "delta",
				   "echo", "foxtrot", "golf", "hotel" };
	unsigned long i = (unsigned long)k;

	if (k % 5 < 2)
		return (size_t)snprintf(out, cap, "{\"type\":\"Item\",\"data\":"
			"{\"key\":\"n%09lu\",\"n\":%lu,\"label\":\"%s %s %lu\","
			"\"score\":%.3f}}", i, i, w[i % 8], w[i * 7 % 8], i,
			(double)(i * 2654435761UL % 1000) / 1000.0);
	return (size_t)snprintf(out, cap, "{\"edge\":\"Link\",\"from\":"
		"\"n%09lu\",\"to\":\"n%09lu\",\"data\":{\"id\":\"e%010lu\","
		"\"w\":%lu}}", i % 1000, (i * 40503 + 17) % 1000, i, i % 100);
}

static void setup(void)
{
	char path[4096];
	size_t len;
	char *text;

	for (size_t i = 0; i < GFS_ARRAY_SIZE(schema_files); i++) {
		snprintf(path, sizeof path, "%s/%s", srcdir(), schema_files[i]);
		text = slurp(path, &len);
		add_schema(text, len, schema_files[i]);
		free(text);
	}
	snprintf(path, sizeof path, "%s/tests", srcdir());
	ck_assert_int_eq(nftw(path, add_jsonl, 16, FTW_PHYS), 0);
	snprintf(path, sizeof path, "%s/examples", srcdir());
	ck_assert_int_eq(nftw(path, add_jsonl, 16, FTW_PHYS), 0);
	add_check_codec();
	cdiff_init(&X);
}

static void teardown(void)
{
	cdiff_release(&X);
	for (size_t i = 0; i < C.n; i++)
		free(C.line[i]);
	free(C.line);
	free(C.len);
	free(C.home);
	memset(&C, 0, sizeof C);
	for (size_t i = 0; i < n_S; i++)
		gfs_schema_free(S[i]);
	n_S = 0;
}

/* Fails the test with the line (escaped) when the paths differ. */
static void same(size_t si, const char *line, size_t len)
{
	const char *why = cdiff_line(&X, S[si], line, len);
	char shown[600] = "";

	if (!why)
		return;
	for (size_t i = 0, k = 0; i < len && k + 5 < sizeof shown; i++) {
		unsigned char c = (unsigned char)line[i];

		k += (size_t)snprintf(shown + k, sizeof shown - k,
				      c < 0x20 || c >= 0x7f ? "\\x%02x" : "%c", c);
	}
	ck_abort_msg("%s against %s\n  line: %s\n  jansson: rc %d %s\n"
		     "  with fast path: rc %d %s", why, S_name[si], shown,
		     X.ra, X.da.msg, X.rb, X.db.msg);
}

START_TEST(test_fmt_int)
{
	static const long long v[] = { 0, 1, -1, 9, 10, -10, 123456789,
				       INT32_MIN, INT32_MAX, UINT32_MAX,
				       INT64_MAX, INT64_MIN, INT64_MIN + 1 };
	char a[32], b[32];

	for (size_t i = 0; i < GFS_ARRAY_SIZE(v); i++) {
		size_t n = gfs_codec_fmt_int(a, v[i]);

		snprintf(b, sizeof b, "%lld", v[i]);
		ck_assert_str_eq(a, b);
		ck_assert_uint_eq(n, strlen(b));
	}
}
END_TEST

/* Every corpus line against every schema; how many the fast path took. */
START_TEST(test_corpus)
{
	unsigned long ok = 0, ok_plain = 0, took_plain = 0;

	ck_assert_uint_gt(C.n, 100);
	for (size_t i = 0; i < C.n; i++)
		for (size_t si = 0; si < n_S; si++) {
			same(si, C.line[i], C.len[i]);
			ok += X.ra == 0;
			if (X.ra == 0 && !memchr(C.line[i], '\\', C.len[i])) {
				ok_plain++;
				took_plain += X.took;
			}
		}
	printf("corpus: %zu lines x %zu schemas, %lu accepted, fast path took "
	       "%lu (%lu of the %lu without escapes)\n", C.n, n_S, ok, X.fast,
	       took_plain, ok_plain);
	ck_assert_uint_gt(X.fast, 0);
	/* Most accepted lines are of the kinds the fast path handles. */
	ck_assert_uint_ge(took_plain * 10, ok_plain * 7);
}
END_TEST

/* bench/synth.py's lines: the fast path must take every one. */
START_TEST(test_synth)
{
	char line[512];
	size_t si = 2, n = 20000;

	ck_assert_str_eq(S_name[si], "bench/synth.pg");
	for (size_t k = 0; k < n; k++) {
		size_t len = synth_line(k, line, sizeof line);

		same(si, line, len);
		ck_assert_msg(X.ra == 0, "synth line %zu: %s", k, X.da.msg);
		ck_assert_msg(X.took, "fast path declined synth line %s", line);
	}
	printf("synth: %zu lines, fast path took %lu\n", n, X.fast);
}
END_TEST

/* ---- mutants ---------------------------------------------------------- */

static uint64_t rng;

static uint64_t rnd(uint64_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return n ? rng % n : 0;
}

static const char *const frags[] = {
	"\"", "\\", "\\\"", "\\n", "\\u00e9", "\\ud800", "\\u0000", "\\/",
	",", ":", "{", "}", "[", "]", " ", "\t", "\r\n", "null", "true",
	"false", "-", "0", "-0", "1e400", "99999999999999999999",
	"9223372036854775808", "-9223372036854775809", "1.5", "1E5", ".", "e",
	"\xc3\xa9", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf",
	"\xe0\x80\x80", "\xef\xbb\xbf", "\x7f", "\x01", "\xff",
	"\"id\":\"x\",", "\"id\":5,", "\"data\":{},", "\"from\":\"a\",",
	"\"to\":1,", "\"type\":\"All\",", "\"edge\":\"Link\",", "\"k\":\"z\",",
};

static const char *const values[] = {
	"null", "true", "false", "0", "-0", "1", "-1", "1.0", "1e2", "1E+2",
	"0.1", "2.5e-3", "-1.5", "80", "80.000001", "1000", "1001",
	"2147483647", "2147483648", "-2147483648", "-2147483649",
	"4294967295", "4294967296", "4000000001", "9223372036854775807",
	"9223372036854775808", "-9223372036854775808", "18446744073709551616",
	"1.7976931348623157e308", "1e309", "-1e309", "3.4028235e38",
	"3.5e38", "3.4028235677973366e38", "1e-400", "4.9e-324",
	"123456789012345678901234567890", "0.30000000000000004", "1e300",
	"-1e301", "16777217", "\"\"", "\"a\"", "\"x\"", "\"ABC\"",
	"\"xyz\"", "\"2024-02-29\"", "\"2023-02-29\"", "\"2024-13-01\"",
	"\"2024-01-01T00:00:00Z\"", "\"2024-01-01T00:00:00+01:00\"",
	"\"0000-01-01T00:00:00Z\"", "\"0000-01-01T00:30:00+01:00\"",
	"\"9999-12-31T23:59:59-01:00\"", "\"2024-01-01t00:00:00.5z\"",
	"\"2024-01-01T00:00:00.1234567891Z\"", "\"2024-01-01T24:00:00Z\"",
	"\"2024-01-01T00:00:00.000Z\"", "\"staff\"", "\"on-leave\"",
	"\"guest\"", "\"b-c\"", "\"a\"", "\"QQ==\"", "\"base64:QR\"",
	"\"-42\"", "\"042\"", "\"42\"", "\"true\"", "\"1.5\"", "[]",
	"[1,2,3]", "[1,2]", "[0.5,-1,1e-3]", "[\"x\",\"y\"]", "[\"a\",null]",
	"[1.5,\"a\"]", "[true]", "[[1]]", "{}", "{\"a\":1}", "[\"x\",1]",
	"\"n000000001\"", "\"0ad\"", "\"e\\u0301\"", "\"caf\xc3\xa9\"",
	"\"\xed\xa0\x80\"", "[ 1 , 2 , 3 ]", "[\"2020-01-01\"]",
};

static size_t insert(char *b, size_t n, size_t at, const char *s, size_t k)
{
	if (n + k >= MAX_LINE)
		return n;
	memmove(b + at + k, b + at, n - at);
	memcpy(b + at, s, k);
	return n + k;
}

static size_t cut(char *b, size_t n, size_t at, size_t k)
{
	k = at + k > n ? n - at : k;
	memmove(b + at, b + at + k, n - at - k);
	return n - k;
}

/* Position of the next c at or after at (n when none). */
static size_t next(const char *b, size_t n, size_t at, const char *set)
{
	while (at < n && !strchr(set, b[at]))
		at++;
	return at;
}

/* ",A,B" -> ",B,A" or ",A" -> ",A,A" (a duplicate member). */
static size_t members(char *b, size_t n, bool dup)
{
	static char t[MAX_LINE];
	size_t p = next(b, n, (size_t)rnd(n), ","), q, r;

	if (p >= n || (q = next(b, n, p + 1, ",}")) >= n)
		return n;
	if (dup)
		return insert(b, n, q, b + p, q - p);
	if (b[q] != ',' || (r = next(b, n, q + 1, ",}")) >= n)
		return n;
	memcpy(t, b + q + 1, r - q - 1);      /* B */
	t[r - q - 1] = ',';
	memcpy(t + (r - q), b + p + 1, q - p - 1); /* A */
	memcpy(b + p + 1, t, r - p - 1);
	return n;
}

static size_t mutate(char *b, size_t n)
{
	size_t at = (size_t)rnd(n + 1), v, e;
	const char *s;

	switch (rnd(12)) {
	case 0: if (n) b[at % n] = (char)rnd(256); return n;
	case 1: if (n) b[at % n] ^= (char)(1 << rnd(8)); return n;
	case 2:
		s = frags[rnd(GFS_ARRAY_SIZE(frags))];
		return insert(b, n, at, s, strlen(s));
	case 3: return at < n ? cut(b, n, at, 1 + (size_t)rnd(8)) : n;
	case 4: return at;
	case 5: case 6: case 9: case 10: case 11: /* a value after ':' */
		v = next(b, n, at, ":");
		if (v >= n)
			return n;
		e = next(b, n, v + 1, b[v + 1] == '[' ? "]" : ",}");
		e += e < n && b[e] == ']';
		n = cut(b, n, v + 1, e - v - 1);
		s = values[rnd(GFS_ARRAY_SIZE(values))];
		return insert(b, n, v + 1, s, strlen(s));
	case 7: return members(b, n, false);
	default: return members(b, n, true); /* 8 */
	}
}

START_TEST(test_mutants)
{
	const char *e = getenv("GFS_CODEC_DIFF_MUTANTS");
	const char *se = getenv("GFS_CODEC_DIFF_SEED");
	unsigned long n = e ? strtoul(e, NULL, 10) : 300000, ok = 0;
	static char b[MAX_LINE];

	rng = se ? strtoull(se, NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
	rng = rng ? rng : 1;
	printf("mutants: seed %" PRIu64 " (GFS_CODEC_DIFF_SEED replays)\n", rng);
	for (size_t i = 0; i < C.n; i++)
		for (size_t si = 0; si < n_S && C.home[i] < 0; si++)
			if (cdiff_line(&X, S[si], C.line[i], C.len[i]) == NULL &&
			    X.ra == 0)
				C.home[i] = (int)si;
	X.lines = X.fast = 0;
	for (unsigned long m = 0; m < n; m++) {
		size_t i = (size_t)rnd(C.n), len = C.len[i];
		size_t si = C.home[i] >= 0 && rnd(4) ? (size_t)C.home[i] :
			    (size_t)rnd(n_S);

		if (len >= MAX_LINE)
			continue;
		memcpy(b, C.line[i], len);
		for (uint64_t k = 1 + rnd(2); k; k--)
			len = mutate(b, len);
		same(si, b, len);
		ok += X.ra == 0;
	}
	printf("mutants: %lu lines, %lu accepted, fast path took %lu\n",
	       X.lines, ok, X.fast);
	ck_assert_uint_gt(X.fast, n / 50);
}
END_TEST

/* GFS_CODEC_DIFF_FILE against GFS_CODEC_DIFF_SCHEMA: compare, and time
 * each path alone (jansson only, then the fast path first). */
static double parse_all(const struct gfs_schema *s, const char *text,
			size_t len, bool fast)
{
	struct gfs_rowin r;
	struct gfs_diag d;
	uint64_t t0 = gfs_now_ns();
	unsigned long lineno = 0;

	gfs_rowin_init(&r);
	gfs_codec_set_fast(fast);
	for (const char *p = text, *end = text + len; p < end; lineno++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		if (n)
			gfs_codec_parse_line(s, p, n, lineno, &r, &d);
		p += n + 1;
	}
	gfs_codec_set_fast(true);
	gfs_rowin_release(&r);
	return (double)(gfs_now_ns() - t0) / 1e6;
}

START_TEST(test_file)
{
	const char *f = getenv("GFS_CODEC_DIFF_FILE");
	const char *sf = getenv("GFS_CODEC_DIFF_SCHEMA");
	struct gfs_schema *s;
	size_t len, slen;
	char *text, *stext;
	double tj, tf;

	if (!f || !sf)
		return;
	stext = slurp(sf, &slen);
	text = slurp(f, &len);
	add_schema(stext, slen, sf);
	s = S[n_S - 1];
	X.lines = X.fast = 0;
	for (const char *p = text, *end = text + len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);

		if (n)
			same(n_S - 1, p, n);
		p += n + 1;
	}
	tj = parse_all(s, text, len, false);
	tf = parse_all(s, text, len, true);
	printf("%s: %lu lines, fast path took %lu (%.2f%%); parse alone: "
	       "jansson %.0f ms (%.1f MB/s), fast path first %.0f ms "
	       "(%.1f MB/s), %.2fx\n", f, X.lines, X.fast,
	       100.0 * (double)X.fast / (double)(X.lines ? X.lines : 1), tj,
	       (double)len / 1e3 / tj, tf, (double)len / 1e3 / tf, tj / tf);
	free(text);
	free(stext);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("codec_diff");
	TCase *tc = tcase_create("diff");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_fmt_int);
	tcase_add_test(tc, test_corpus);
	tcase_add_test(tc, test_synth);
	tcase_add_test(tc, test_mutants);
	tcase_add_test(tc, test_file);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
