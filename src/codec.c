/* codec.c - one load-format line <-> one canonical row (DESIGN.md §1).
 *
 * A line is parsed with jansson (duplicate members rejected, NUL allowed in
 * strings, nothing after the value), checked member by member against the
 * type's schema, and re-emitted in one canonical form, so that two inputs
 * meaning the same row give the same bytes and the canonical line parses
 * back to itself.  Each line is first offered to the scanner of
 * codec_fast.c, which fills the row only when the result here would be the
 * same and otherwise leaves the line to this path (every error and message
 * is made here; codec_int.h holds the value rules both share).  Decisions
 * the design leaves open (docs/format.md repeats them):
 *   - U64 values above INT64_MAX are rejected: jansson's integer is a long
 *     long, and the value must never be silently rounded through a double.
 *   - F32 values are rounded to float and printed with the fewest digits
 *     that read back to the same float; F64 and Vector elements likewise as
 *     doubles.  A float always prints with '.' or an exponent ("1.0").
 *   - Vector(N) elements are kept as F64 (no precision lost on load).
 *   - DateTime: RFC 3339 with 'T'/'t', 'Z'/'z' or +-hh:mm, at most 9
 *     fractional digits, no leap second (:60); converted to UTC, year 0000
 *     to 9999 after conversion.  Date: YYYY-MM-DD, proleptic Gregorian.
 *   - Blob: standard base64 alphabet, padding optional, canonical = padded.
 *   - data.id of an unkeyed node or an edge is any JSON string (the empty
 *     string included, like an empty String key).
 *   - @check matches the canonical text of the value (a string's content, a
 *     number's digits), each element of a list; @range compares numbers.
 */
#include "config.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "codec_int.h"

/* Where a value sits, for messages: "line 3: Person 'alice': property 'age': ". */
struct vctx {
	unsigned long lineno;   /* 0: no line (gfs_codec_canon_ref) */
	char subj[192];         /* "Person 'alice'" or "" */
	const char *prop;       /* property being checked or NULL */
	const char *field;      /* or another field ("data.id", "\"from\"") */
	long elem;              /* list / vector element or -1 */
	struct gfs_diag *d;     /* NULL: no message wanted */
	struct gfs_buf tmp;     /* canonical text of the current scalar */
	struct gfs_buf aux;     /* decoded Blob bytes, key comparisons */
};

static void ctx_init(struct vctx *c, unsigned long lineno, struct gfs_diag *d)
{
	memset(c, 0, sizeof *c);
	c->lineno = lineno;
	c->elem = -1;
	c->d = d;
	gfs_buf_init(&c->tmp);
	gfs_buf_init(&c->aux);
}

static void ctx_release(struct vctx *c)
{
	gfs_buf_release(&c->tmp);
	gfs_buf_release(&c->aux);
}

/* ---- message helpers ------------------------------------------------- */

static void cat(char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void cat(char *out, size_t n, const char *fmt, ...)
{
	size_t k = strnlen(out, n);
	va_list ap;

	if (k + 1 >= n)
		return;
	va_start(ap, fmt);
	vsnprintf(out + k, n - k, fmt, ap);
	va_end(ap);
}

/* Length of the valid UTF-8 sequence at s (0 if invalid). */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
	size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 :
		   s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;

	if (n == 0 || n > len)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Untrusted bytes made printable for a message: control bytes and invalid
 * UTF-8 as \xNN, at most max input bytes, then "…". */
static void sanitize(const char *s, size_t len, size_t max, char *out,
		     size_t n)
{
	size_t i = 0, k = 0;

	out[0] = '\0';
	while (i < len && i < max && k + 8 < n) {
		const unsigned char *u = (const unsigned char *)s + i;
		size_t q = *u >= 0x80 ? utf8_seq(u, len - i) : 1;

		if (q == 0 || *u < 0x20 || *u == 0x7f) {
			snprintf(out + k, n - k, "\\x%02x", *u);
			k += 4;
			i++;
			continue;
		}
		memcpy(out + k, u, q);
		k += q;
		i += q;
	}
	out[k] = '\0';
	if (i < len)
		cat(out, n, "…");
}

static int fail(struct vctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int fail(struct vctx *c, const char *fmt, ...)
{
	char pre[320] = "", what[400];
	va_list ap;

	if (!c->d)
		return GFS_EDATA;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	if (c->lineno)
		cat(pre, sizeof pre, "line %lu: ", c->lineno);
	if (c->subj[0])
		cat(pre, sizeof pre, "%s: ", c->subj);
	if (c->prop)
		cat(pre, sizeof pre, "property '%s': ", c->prop);
	else if (c->field)
		cat(pre, sizeof pre, "%s: ", c->field);
	if (c->elem >= 0)
		cat(pre, sizeof pre, "element %ld: ", c->elem);
	gfs_diag_set(c->d, "%s%s", pre, what);
	return GFS_EDATA;
}

/* "Person" or "Person 'alice'" (id may hold any bytes). */
static void set_subject(struct vctx *c, const char *type, const char *id,
			size_t id_len)
{
	char q[160];

	snprintf(c->subj, sizeof c->subj, "%s", type);
	if (id) {
		sanitize(id, id_len, 64, q, sizeof q);
		cat(c->subj, sizeof c->subj, " '%s'", q);
	}
}

/* What a JSON value is, for "got ...": string "x", integer 5, real 1.5. */
static void describe(const json_t *v, char *out, size_t n)
{
	char q[160];

	switch (json_typeof(v)) {
	case JSON_STRING:
		sanitize(json_string_value(v), json_string_length(v), 40, q,
			 sizeof q);
		snprintf(out, n, "string \"%s\"", q);
		break;
	case JSON_INTEGER:
		snprintf(out, n, "integer %lld",
			 (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		gfs_codec_fmt_real(q, sizeof q, json_real_value(v), false);
		snprintf(out, n, "real %s", q);
		break;
	case JSON_TRUE: snprintf(out, n, "true"); break;
	case JSON_FALSE: snprintf(out, n, "false"); break;
	case JSON_NULL: snprintf(out, n, "null"); break;
	case JSON_OBJECT: snprintf(out, n, "an object"); break;
	default: snprintf(out, n, "an array"); break;
	}
}

static const char *const base_names[] = {
	[GFS_T_STRING] = "String", [GFS_T_BOOL] = "Bool",
	[GFS_T_I32] = "I32", [GFS_T_I64] = "I64",
	[GFS_T_U32] = "U32", [GFS_T_U64] = "U64",
	[GFS_T_F32] = "F32", [GFS_T_F64] = "F64",
	[GFS_T_DATE] = "Date", [GFS_T_DATETIME] = "DateTime",
	[GFS_T_BLOB] = "Blob", [GFS_T_ENUM] = "enum", [GFS_T_VECTOR] = "Vector",
};

/* The type's name as the schema spells it; elem: the list's element type. */
static void type_name(const struct gfs_type *t, bool elem, char *out,
		      size_t n)
{
	out[0] = '\0';
	if (t->list && !elem)
		cat(out, n, "[");
	cat(out, n, "%s", (size_t)t->base < GFS_ARRAY_SIZE(base_names) ?
		base_names[t->base] : "?");
	if (t->base == GFS_T_VECTOR)
		cat(out, n, "(%u)", t->dim);
	if (t->base == GFS_T_ENUM) {
		for (size_t i = 0; i < t->n_enum; i++)
			cat(out, n, "%s%s", i ? ", " : "(", t->enum_vals[i]);
		cat(out, n, ")");
	}
	if (t->list && !elem)
		cat(out, n, "]");
}

static int expected(struct vctx *c, const struct gfs_type *t, bool elem,
		    const json_t *v)
{
	char tn[200], got[200];

	type_name(t, elem, tn, sizeof tn);
	describe(v, got, sizeof got);
	return fail(c, "expected %s, got %s", tn, got);
}

/* ---- numbers --------------------------------------------------------- */

/* Fewest digits that read back to the same double (or float): idempotent
 * because the value read back is the value printed. */
void gfs_codec_fmt_real(char *out, size_t n, double v, bool f32)
{
	int p = f32 ? 6 : 15, last = f32 ? 9 : 17;

	for (; p <= last; p++) {
		double back;

		snprintf(out, n, "%.*g", p, v);
		back = strtod(out, NULL);
		if (f32 ? (float)back == (float)v : back == v)
			break;
	}
	if (!strpbrk(out, ".eEin"))
		cat(out, n, ".0");
}

static const long long int_lo[] = { [GFS_T_I32] = INT32_MIN,
	[GFS_T_I64] = INT64_MIN, [GFS_T_U32] = 0, [GFS_T_U64] = 0 };
static const long long int_hi[] = { [GFS_T_I32] = INT32_MAX,
	[GFS_T_I64] = INT64_MAX, [GFS_T_U32] = UINT32_MAX,
	[GFS_T_U64] = INT64_MAX };

bool gfs_codec_int_fits(enum gfs_base b, long long x)
{
	return b >= GFS_T_I32 && b <= GFS_T_U64 && x >= int_lo[b] &&
	       x <= int_hi[b];
}

size_t gfs_codec_fmt_int(char *out, long long x)
{
	unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x :
			       (unsigned long long)x;
	char rev[20];
	size_t k = 0, n = 0;

	do {
		rev[k++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (x < 0)
		out[n++] = '-';
	while (k)
		out[n++] = rev[--k];
	out[n] = '\0';
	return n;
}

bool gfs_codec_real_fits(enum gfs_base b, double x)
{
	return isfinite(x) && (b != GFS_T_F32 || fabs(x) < GFS_F32_OVERFLOW);
}

static int canon_int(struct vctx *c, const struct gfs_type *t, const json_t *v)
{
	char s[24];
	long long x;

	if (!json_is_integer(v))
		return expected(c, t, true, v);
	x = (long long)json_integer_value(v);
	if (!gfs_codec_int_fits(t->base, x))
		return fail(c, "%lld is out of range for %s (%lld..%lld)", x,
			    base_names[t->base], int_lo[t->base],
			    int_hi[t->base]);
	return gfs_buf_append(&c->tmp, s, gfs_codec_fmt_int(s, x));
}

static int canon_float(struct vctx *c, const struct gfs_type *t,
		       const json_t *v)
{
	char s[64];
	double x;

	if (!json_is_number(v))
		return expected(c, t, true, v);
	x = json_number_value(v);
	if (!gfs_codec_real_fits(t->base, x))
		return fail(c, "%g is out of range for %s", x,
			    base_names[t->base]);
	if (t->base == GFS_T_F32)
		x = (float)x;
	gfs_codec_fmt_real(s, sizeof s, x, t->base == GFS_T_F32);
	return gfs_buf_append(&c->tmp, s, strlen(s));
}

/* ---- dates ----------------------------------------------------------- */

static bool digits(const char *s, size_t n, unsigned *out)
{
	unsigned x = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (unsigned)(s[i] - '0');
	}
	*out = x;
	return true;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned dm[] = { 31, 28, 31, 30, 31, 30,
				       31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : dm[m - 1];
}

/* Days since 1970-01-01 (H. Hinnant's civil calendar algorithms). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

static void civil_from_days(long long z, long long *y, unsigned *m,
			    unsigned *d)
{
	long long era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (long long)yoe + era * 400 + (*m <= 2);
}

static bool parse_ymd(const char *s, size_t n, unsigned *y, unsigned *m,
		      unsigned *d)
{
	if (n < 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, y) ||
	    !digits(s + 5, 2, m) || !digits(s + 8, 2, d))
		return false;
	return *m >= 1 && *m <= 12 && *d >= 1 && *d <= days_in_month(*y, *m);
}

bool gfs_codec_date_ok(const char *s, size_t n)
{
	unsigned y, m, d;

	return n == 10 && parse_ymd(s, 10, &y, &m, &d);
}

static int canon_date(struct vctx *c, const struct gfs_type *t,
		      const json_t *v)
{
	const char *s = json_string_value(v);
	char got[200];

	if (!s)
		return expected(c, t, true, v);
	if (!gfs_codec_date_ok(s, json_string_length(v))) {
		describe(v, got, sizeof got);
		return fail(c, "expected a Date YYYY-MM-DD (a valid calendar "
			    "date), got %s", got);
	}
	return gfs_buf_append(&c->tmp, s, 10);
}

/* A UTC instant: seconds since the epoch and nanoseconds. */
struct instant {
	long long sec;
	unsigned ns;
};

/* hh:mm:ss[.f{1,9}] at s; *used = bytes consumed. */
static bool parse_hms(const char *s, size_t n, long long *sec, unsigned *ns,
		      size_t *used)
{
	unsigned h, mi, se, k = 0;
	size_t i = 8;

	if (n < 8 || s[2] != ':' || s[5] != ':' || !digits(s, 2, &h) ||
	    !digits(s + 3, 2, &mi) || !digits(s + 6, 2, &se) || h > 23 ||
	    mi > 59 || se > 59)
		return false;
	*ns = 0;
	if (i < n && s[i] == '.') {
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++)
			if (k < 9)
				*ns = *ns * 10 + (unsigned)(s[i] - '0');
		if (k == 0 || k > 9)
			return false;
		for (; k < 9; k++)
			*ns *= 10;
	}
	*sec = h * 3600LL + mi * 60LL + se;
	*used = i;
	return true;
}

/* Z, z or +-hh:mm: seconds east of UTC. */
static bool parse_offset(const char *s, size_t n, long long *off)
{
	unsigned h, m;

	if (n == 1 && (s[0] == 'Z' || s[0] == 'z')) {
		*off = 0;
		return true;
	}
	if (n != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' ||
	    !digits(s + 1, 2, &h) || !digits(s + 4, 2, &m) || h > 23 || m > 59)
		return false;
	*off = (h * 3600LL + m * 60LL) * (s[0] == '-' ? -1 : 1);
	return true;
}

static bool parse_datetime(const char *s, size_t n, struct instant *out)
{
	unsigned y, m, d;
	long long tod, off;
	size_t used;

	if (n < 20 || !parse_ymd(s, 10, &y, &m, &d) ||
	    (s[10] != 'T' && s[10] != 't') ||
	    !parse_hms(s + 11, n - 11, &tod, &out->ns, &used) ||
	    !parse_offset(s + 11 + used, n - 11 - used, &off))
		return false;
	out->sec = days_from_civil(y, m, d) * 86400 + tod - off;
	return true;
}

static int format_datetime(struct gfs_buf *b, const struct instant *t)
{
	long long days = t->sec >= 0 ? t->sec / 86400 : -((-t->sec + 86399) / 86400);
	long long tod = t->sec - days * 86400, y;
	unsigned m, d, ns = t->ns, w = 9;
	int rc;

	civil_from_days(days, &y, &m, &d);
	rc = gfs_buf_appendf(b, "%04lld-%02u-%02uT%02lld:%02lld:%02lld", y, m,
			     d, tod / 3600, tod / 60 % 60, tod % 60);
	if (!rc && ns) {
		while (ns % 10 == 0) {
			ns /= 10;
			w--;
		}
		rc = gfs_buf_appendf(b, ".%0*u", (int)w, ns);
	}
	return rc ? rc : gfs_buf_appendc(b, 'Z');
}

/* Seconds of 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z. */
#define DT_MIN (-62167219200LL)
#define DT_END (253402300800LL)

int gfs_codec_datetime_canon(const char *s, size_t n, struct gfs_buf *out)
{
	struct instant in;

	if (!parse_datetime(s, n, &in))
		return 1;
	if (in.sec < DT_MIN || in.sec >= DT_END)
		return 2;
	return format_datetime(out, &in);
}

static int canon_datetime(struct vctx *c, const struct gfs_type *t,
			  const json_t *v)
{
	char got[200];
	int rc;

	if (!json_is_string(v))
		return expected(c, t, true, v);
	rc = gfs_codec_datetime_canon(json_string_value(v),
				      json_string_length(v), &c->tmp);
	if (rc <= 0)
		return rc;
	describe(v, got, sizeof got);
	if (rc == 1)
		return fail(c, "expected an RFC 3339 DateTime "
			    "(YYYY-MM-DDThh:mm:ss[.f]Z or +hh:mm), got %s", got);
	return fail(c, "DateTime %s is outside years 0000..9999 in UTC", got);
}

/* ---- base64 ---------------------------------------------------------- */

static int b64_val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* Standard alphabet; '=' padding optional but, if present, complete.
 * Returns 0, 1 (invalid) or -ENOMEM. */
static int b64_decode(const char *s, size_t n, struct gfs_buf *out)
{
	size_t pad = 0;
	unsigned acc = 0, bits = 0;

	while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
		pad++;
	if ((pad && n % 4) || (n - pad) % 4 == 1)
		return 1;
	for (size_t i = 0; i < n - pad; i++) {
		int x = b64_val((unsigned char)s[i]);

		if (x < 0)
			return 1;
		acc = (acc << 6 | (unsigned)x) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (gfs_buf_appendc(out, (char)(acc >> bits & 0xff)))
				return -ENOMEM;
		}
	}
	return 0;
}

static int b64_encode(const unsigned char *p, size_t n, struct gfs_buf *out)
{
	static const char a[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	int rc = gfs_buf_reserve(out, (n + 2) / 3 * 4);

	for (size_t i = 0; i < n && !rc; i += 3) {
		unsigned x = (unsigned)p[i] << 16;
		char q[4];

		x |= i + 1 < n ? (unsigned)p[i + 1] << 8 : 0;
		x |= i + 2 < n ? p[i + 2] : 0;
		q[0] = a[x >> 18];
		q[1] = a[x >> 12 & 63];
		q[2] = i + 1 < n ? a[x >> 6 & 63] : '=';
		q[3] = i + 2 < n ? a[x & 63] : '=';
		rc = gfs_buf_append(out, q, 4);
	}
	return rc ? rc : gfs_buf_append(out, "", 0);
}

static int canon_blob(struct vctx *c, const struct gfs_type *t,
		      const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	char got[200];
	int rc;

	if (!s)
		return expected(c, t, true, v);
	if (n >= 7 && !memcmp(s, "base64:", 7)) {
		s += 7;
		n -= 7;
	}
	gfs_buf_reset(&c->aux);
	rc = b64_decode(s, n, &c->aux);
	if (rc < 0)
		return rc;
	if (rc) {
		describe(v, got, sizeof got);
		return fail(c, "expected a Blob in base64, got %s", got);
	}
	return b64_encode((const unsigned char *)c->aux.p, c->aux.len, &c->tmp);
}

/* ---- scalars --------------------------------------------------------- */

static int canon_string(struct vctx *c, const struct gfs_type *t,
			const json_t *v)
{
	if (!json_is_string(v))
		return expected(c, t, true, v);
	return gfs_buf_append(&c->tmp, json_string_value(v),
			      json_string_length(v));
}

static int canon_bool(struct vctx *c, const struct gfs_type *t,
		      const json_t *v)
{
	if (!json_is_boolean(v))
		return expected(c, t, true, v);
	return gfs_buf_appendf(&c->tmp, "%s", json_is_true(v) ? "true" : "false");
}

static int canon_enum(struct vctx *c, const struct gfs_type *t,
		      const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (s && gfs_codec_enum_has(t, s, n))
		return gfs_buf_append(&c->tmp, s, n);
	return expected(c, t, true, v);
}

bool gfs_codec_enum_has(const struct gfs_type *t, const char *s, size_t n)
{
	for (size_t i = 0; i < t->n_enum; i++)
		if (strlen(t->enum_vals[i]) == n &&
		    !memcmp(t->enum_vals[i], s, n))
			return true;
	return false;
}

bool gfs_codec_quoted_base(enum gfs_base b)
{
	return b == GFS_T_STRING || b == GFS_T_DATE || b == GFS_T_DATETIME ||
	       b == GFS_T_BLOB || b == GFS_T_ENUM;
}

/* Canonical text of one scalar v of t's base type into c->tmp: a string's
 * content when gfs_codec_quoted_base(), else a JSON literal. */
static int canon_scalar(struct vctx *c, const struct gfs_type *t,
			const json_t *v)
{
	gfs_buf_reset(&c->tmp);
	switch (t->base) {
	case GFS_T_STRING: return canon_string(c, t, v);
	case GFS_T_BOOL: return canon_bool(c, t, v);
	case GFS_T_I32: case GFS_T_I64: case GFS_T_U32: case GFS_T_U64:
		return canon_int(c, t, v);
	case GFS_T_F32: case GFS_T_F64: return canon_float(c, t, v);
	case GFS_T_DATE: return canon_date(c, t, v);
	case GFS_T_DATETIME: return canon_datetime(c, t, v);
	case GFS_T_BLOB: return canon_blob(c, t, v);
	case GFS_T_ENUM: return canon_enum(c, t, v);
	default: return fail(c, "no scalar form for this type");
	}
}

/* Appends c->tmp to out as JSON. */
static int emit_tmp(struct vctx *c, enum gfs_base b, struct gfs_buf *out)
{
	if (gfs_codec_quoted_base(b))
		return gfs_buf_append_json_str(out, c->tmp.p, c->tmp.len);
	return gfs_buf_append(out, c->tmp.p, c->tmp.len);
}

static int encode_vector(struct vctx *c, const struct gfs_type *t,
			 const json_t *v, struct gfs_buf *out)
{
	static const struct gfs_type f64 = { .base = GFS_T_F64 };
	char tn[64];
	int rc = 0;

	type_name(t, false, tn, sizeof tn);
	if (!json_is_array(v) || json_array_size(v) != t->dim) {
		if (!json_is_array(v))
			return expected(c, t, false, v);
		return fail(c, "expected %s, got an array of %zu", tn,
			    json_array_size(v));
	}
	rc = gfs_buf_appendc(out, '[');
	for (size_t i = 0; i < t->dim && !rc; i++) {
		c->elem = (long)i;
		rc = canon_scalar(c, &f64, json_array_get(v, i));
		if (!rc && i)
			rc = gfs_buf_appendc(out, ',');
		if (!rc)
			rc = emit_tmp(c, GFS_T_F64, out);
	}
	c->elem = rc ? c->elem : -1;
	return rc ? rc : gfs_buf_appendc(out, ']');
}

static int encode_list(struct vctx *c, const struct gfs_type *t,
		       const json_t *v, struct gfs_buf *out)
{
	int rc;

	if (!json_is_array(v))
		return expected(c, t, false, v);
	rc = gfs_buf_appendc(out, '[');
	for (size_t i = 0; i < json_array_size(v) && !rc; i++) {
		const json_t *e = json_array_get(v, i);

		c->elem = (long)i;
		if (json_is_null(e))
			return fail(c, "null is not allowed in a list");
		rc = canon_scalar(c, t, e);
		if (!rc && i)
			rc = gfs_buf_appendc(out, ',');
		if (!rc)
			rc = emit_tmp(c, t->base, out);
	}
	c->elem = rc ? c->elem : -1;
	return rc ? rc : gfs_buf_appendc(out, ']');
}

/* Appends the canonical JSON of a non-null value v of type t to out. */
static int encode_value(struct vctx *c, const struct gfs_type *t,
			const json_t *v, struct gfs_buf *out)
{
	int rc;

	if (t->list)
		return encode_list(c, t, v, out);
	if (t->base == GFS_T_VECTOR)
		return encode_vector(c, t, v, out);
	rc = canon_scalar(c, t, v);
	return rc ? rc : emit_tmp(c, t->base, out);
}

/* ---- identity -------------------------------------------------------- */

static int prop_index(const struct gfs_typedef *td, const char *name)
{
	for (size_t i = 0; i < td->n_props; i++)
		if (!strcmp(td->props[i].name, name))
			return (int)i;
	return -1;
}

/* Composite key: the compact JSON array of the canonical parts, taken from
 * an array (src is the array) or from a data object (by property name). */
static int key_composite(struct vctx *c, const struct gfs_typedef *td,
			 const json_t *src, bool from_array,
			 struct gfs_buf *out)
{
	int rc = gfs_buf_appendc(out, '[');

	for (size_t i = 0; i < td->n_key && !rc; i++) {
		const struct gfs_prop *p = &td->props[td->key[i]];
		const json_t *v = from_array ? json_array_get(src, i) :
				  json_object_get(src, p->name);

		if (!from_array)
			c->prop = p->name;
		else
			c->elem = (long)i;
		if (!v || json_is_null(v))
			return fail(c, "missing key part '%s' of %s", p->name,
				    td->name);
		rc = canon_scalar(c, &p->type, v);
		if (!rc && i)
			rc = gfs_buf_appendc(out, ',');
		if (!rc)
			rc = emit_tmp(c, p->type.base, out);
	}
	if (rc)
		return rc;
	c->prop = NULL;
	c->elem = -1;
	return gfs_buf_appendc(out, ']');
}

/* A string standing for a non-string key must be exactly its canonical id. */
static int ref_from_string(struct vctx *c, const struct gfs_typedef *td,
			   const json_t *v, struct gfs_buf *out)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	json_t *parsed = json_loadb(s, n, JSON_DECODE_ANY, NULL);
	struct gfs_diag quiet = { { 0 } };
	struct gfs_diag *d = c->d;
	char q[160];
	int rc = GFS_EDATA;

	c->d = &quiet; /* the string's own problems are reported below */
	if (parsed && td->n_key > 1 && json_is_array(parsed) &&
	    json_array_size(parsed) == td->n_key)
		rc = key_composite(c, td, parsed, true, out);
	else if (parsed && td->n_key == 1)
		rc = canon_scalar(c, &td->props[td->key[0]].type, parsed);
	if (!rc && td->n_key == 1)
		rc = gfs_buf_append(out, c->tmp.p, c->tmp.len);
	c->d = d;
	json_decref(parsed);
	if (rc == -ENOMEM)
		return rc;
	if (!rc && out->len == n && !memcmp(out->p, s, n))
		return 0;
	sanitize(s, n, 48, q, sizeof q);
	return fail(c, "\"%s\" is not the canonical id of a %s (key %s%s)", q,
		    td->name, td->props[td->key[0]].name,
		    td->n_key > 1 ? ", ..." : "");
}

/* Canonical id of v against node type td's key, into out (reset first). */
static int canon_ref(struct vctx *c, const struct gfs_typedef *td,
		     const json_t *v, struct gfs_buf *out)
{
	const struct gfs_type *kt;
	char got[200];
	int rc;

	gfs_buf_reset(out);
	if (!v)
		return fail(c, "missing id of a %s", td->name);
	if (td->n_key == 0) {
		if (!json_is_string(v)) {
			describe(v, got, sizeof got);
			return fail(c, "expected a string id of a %s, got %s",
				    td->name, got);
		}
		return gfs_buf_append(out, json_string_value(v),
				      json_string_length(v));
	}
	if (td->n_key > 1) {
		if (json_is_string(v))
			return ref_from_string(c, td, v, out);
		if (json_is_array(v) && json_array_size(v) == td->n_key)
			return key_composite(c, td, v, true, out);
		describe(v, got, sizeof got);
		return fail(c, "expected the %zu-part key array of a %s, got %s",
			    td->n_key, td->name, got);
	}
	kt = &td->props[td->key[0]].type;
	if (json_is_string(v) && !gfs_codec_quoted_base(kt->base))
		return ref_from_string(c, td, v, out);
	rc = canon_scalar(c, kt, v);
	return rc ? rc : gfs_buf_append(out, c->tmp.p, c->tmp.len);
}

int gfs_codec_canon_ref(const struct gfs_typedef *td, const struct json_t *v,
			struct gfs_buf *out, struct gfs_diag *d)
{
	struct vctx c;
	int rc;

	ctx_init(&c, 0, d);
	rc = canon_ref(&c, td, (const json_t *)v, out);
	ctx_release(&c);
	return rc;
}

/* ---- rows ------------------------------------------------------------ */

void gfs_rowin_init(struct gfs_rowin *r)
{
	memset(r, 0, sizeof *r);
	gfs_buf_init(&r->id);
	gfs_buf_init(&r->src);
	gfs_buf_init(&r->dst);
	gfs_buf_init(&r->line);
}

void gfs_codec_free_ukeys(struct gfs_buf *u, size_t n)
{
	for (size_t i = 0; u && i < n; i++)
		gfs_buf_release(&u[i]);
	free(u);
}

void gfs_rowin_release(struct gfs_rowin *r)
{
	gfs_buf_release(&r->id);
	gfs_buf_release(&r->src);
	gfs_buf_release(&r->dst);
	gfs_buf_release(&r->line);
	gfs_codec_free_ukeys(r->ukeys, r->n_ukeys);
	r->ukeys = NULL;
	r->n_ukeys = 0;
}

size_t gfs_codec_n_unique(const struct gfs_typedef *td)
{
	size_t n = 0;

	for (size_t i = 0; i < td->n_cons; i++)
		n += td->cons[i].kind == GFS_C_UNIQUE;
	return n;
}

static struct gfs_buf *new_ukeys(size_t n)
{
	struct gfs_buf *u = n ? calloc(n, sizeof *u) : NULL;

	for (size_t i = 0; u && i < n; i++)
		gfs_buf_init(&u[i]);
	return u;
}

/* One unique key: ["v1",2] of the named values; empty when one is null. */
static int ukey_one(struct vctx *c, const struct gfs_typedef *td,
		    const struct gfs_cons *k, const json_t *data,
		    const struct gfs_buf *src, const struct gfs_buf *dst,
		    struct gfs_buf *out)
{
	int rc = gfs_buf_appendc(out, '[');

	for (size_t i = 0; i < k->n_props && !rc; i++) {
		const char *name = k->props[i];
		int pi = prop_index(td, name);
		const json_t *v = pi < 0 ? NULL : json_object_get(data, name);

		rc = i ? gfs_buf_appendc(out, ',') : 0;
		if (rc)
			break;
		if (td->is_edge && pi < 0 && !strcmp(name, "src")) {
			rc = gfs_buf_append_json_str(out, src->p, src->len);
		} else if (td->is_edge && pi < 0 && !strcmp(name, "dst")) {
			rc = gfs_buf_append_json_str(out, dst->p, dst->len);
		} else if (!v || json_is_null(v)) {
			gfs_buf_reset(out);
			return 0;
		} else {
			c->prop = td->props[pi].name;
			rc = encode_value(c, &td->props[pi].type, v, out);
		}
	}
	c->prop = NULL;
	return rc ? rc : gfs_buf_appendc(out, ']');
}

static int ukeys_fill(struct vctx *c, const struct gfs_typedef *td,
		      const json_t *data, const struct gfs_buf *src,
		      const struct gfs_buf *dst, struct gfs_buf *u)
{
	size_t j = 0;
	int rc = 0;

	for (size_t i = 0; i < td->n_cons && !rc; i++) {
		if (td->cons[i].kind != GFS_C_UNIQUE)
			continue;
		gfs_buf_reset(&u[j]);
		rc = ukey_one(c, td, &td->cons[i], data, src, dst, &u[j++]);
	}
	return rc;
}

int gfs_codec_ukeys_of(const struct gfs_typedef *td, const char *data,
		       size_t len, const char *src, size_t src_len,
		       const char *dst, size_t dst_len, struct gfs_buf **out,
		       size_t *n)
{
	struct gfs_buf s = { (char *)src, src_len, 0 };
	struct gfs_buf e = { (char *)dst, dst_len, 0 };
	size_t nu = gfs_codec_n_unique(td);
	struct gfs_buf *u = new_ukeys(nu);
	json_t *obj;
	struct vctx c;
	int rc;

	*out = NULL;
	*n = 0;
	if (nu && !u)
		return -ENOMEM;
	obj = json_loadb(data, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(obj)) {
		json_decref(obj);
		gfs_codec_free_ukeys(u, nu);
		return GFS_ECORRUPT;
	}
	ctx_init(&c, 0, NULL);
	rc = ukeys_fill(&c, td, obj, &s, &e, u);
	ctx_release(&c);
	json_decref(obj);
	if (rc) {
		gfs_codec_free_ukeys(u, nu);
		return rc == GFS_EDATA ? GFS_ECORRUPT : rc;
	}
	*out = u;
	*n = nu;
	return 0;
}

int gfs_codec_ukeys_size(struct gfs_rowin *r)
{
	size_t nu = gfs_codec_n_unique(r->td);

	if (r->n_ukeys != nu) {
		gfs_codec_free_ukeys(r->ukeys, r->n_ukeys);
		r->n_ukeys = 0;
		r->ukeys = new_ukeys(nu);
		if (nu && !r->ukeys)
			return -ENOMEM;
		r->n_ukeys = nu;
	}
	return 0;
}

static int rowin_ukeys(struct vctx *c, struct gfs_rowin *r,
		       const json_t *data)
{
	int rc = gfs_codec_ukeys_size(r);

	return rc ? rc : ukeys_fill(c, r->td, data, &r->src, &r->dst,
				    r->ukeys);
}

/* ---- constraints ----------------------------------------------------- */

static bool is_int_base(enum gfs_base b)
{
	return b >= GFS_T_I32 && b <= GFS_T_U64;
}

int gfs_codec_cmp_bound(enum gfs_base base, bool is_int, long long i,
			double x, const struct gfs_bound *b)
{
	double y = b->is_int ? (double)b->i : b->d;

	if (is_int_base(base) && is_int && b->is_int)
		return (i > b->i) - (i < b->i);
	return (x > y) - (x < y);
}

/* <0, 0, >0 as v compares with bound b. */
static int cmp_bound(enum gfs_base base, const json_t *v,
		     const struct gfs_bound *b)
{
	return gfs_codec_cmp_bound(base, json_is_integer(v),
				   json_is_integer(v) ?
				   (long long)json_integer_value(v) : 0,
				   json_number_value(v), b);
}

static void fmt_bound(const struct gfs_bound *b, char *out, size_t n)
{
	out[0] = '\0';
	if (b->set && b->is_int)
		snprintf(out, n, "%lld", (long long)b->i);
	else if (b->set)
		gfs_codec_fmt_real(out, n, b->d, false);
}

static int range_one(struct vctx *c, const struct gfs_cons *k,
		     enum gfs_base base, const json_t *v)
{
	char lo[64], hi[64], got[200];

	if (!json_is_number(v))
		return 0;
	if ((!k->lo.set || cmp_bound(base, v, &k->lo) >= 0) &&
	    (!k->hi.set || cmp_bound(base, v, &k->hi) <= 0))
		return 0;
	fmt_bound(&k->lo, lo, sizeof lo);
	fmt_bound(&k->hi, hi, sizeof hi);
	describe(v, got, sizeof got);
	return fail(c, "%s is outside @range(%s, %s..%s)", got, k->props[0],
		    lo, hi);
}

static int check_one(struct vctx *c, const struct gfs_cons *k,
		     const struct gfs_type *t, const json_t *v)
{
	char q[160];
	int rc = canon_scalar(c, t, v);

	if (rc)
		return rc;
	if (gfs_codec_check_match(k, c->tmp.p, c->tmp.len))
		return 0;
	sanitize(c->tmp.p, c->tmp.len, 48, q, sizeof q);
	return fail(c, "\"%s\" does not match @check(%s, \"%s\")", q,
		    k->props[0], k->pattern ? k->pattern : "");
}

bool gfs_codec_check_match(const struct gfs_cons *k, const char *s, size_t n)
{
	regmatch_t m = { 0, (regoff_t)n };

	return regexec(&k->re, s ? s : "", 1, &m, REG_STARTEND) == 0;
}

/* Runs one @range/@check on a value, on each element of a list/vector. */
static int cons_value(struct vctx *c, const struct gfs_cons *k,
		      const struct gfs_type *t, const json_t *v)
{
	bool many = t->list || t->base == GFS_T_VECTOR;
	size_t n = many ? json_array_size(v) : 1;
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		const json_t *e = many ? json_array_get(v, i) : v;

		c->elem = many ? (long)i : -1;
		if (k->kind == GFS_C_RANGE)
			rc = range_one(c, k, t->base, e);
		else if (t->base != GFS_T_VECTOR)
			rc = check_one(c, k, t, e);
	}
	if (!rc)
		c->elem = -1;
	return rc;
}

static int check_cons(struct vctx *c, const struct gfs_typedef *td,
		      const json_t *data)
{
	int rc = 0;

	for (size_t i = 0; i < td->n_cons && !rc; i++) {
		const struct gfs_cons *k = &td->cons[i];
		int pi;
		const json_t *v;

		if ((k->kind != GFS_C_RANGE && k->kind != GFS_C_CHECK) ||
		    k->n_props < 1)
			continue;
		pi = prop_index(td, k->props[0]);
		v = pi < 0 ? NULL : json_object_get(data, k->props[0]);
		if (!v || json_is_null(v))
			continue;
		c->prop = td->props[pi].name;
		rc = cons_value(c, k, &td->props[pi].type, v);
	}
	if (!rc)
		c->prop = NULL;
	return rc;
}

/* ---- lines ----------------------------------------------------------- */

static bool reserved_name(const char *k, bool edge)
{
	return !strcmp(k, "id") || !strncmp(k, "_row", 4) ||
	       !strcmp(k, "_tombstone") ||
	       (edge && (!strcmp(k, "src") || !strcmp(k, "dst")));
}

static void known_props(const struct gfs_typedef *td, char *out, size_t n)
{
	out[0] = '\0';
	for (size_t i = 0; i < td->n_props; i++) {
		if (strlen(out) + strlen(td->props[i].name) + 8 > n) {
			cat(out, n, ", …");
			return;
		}
		cat(out, n, "%s%s", i ? ", " : "", td->props[i].name);
	}
	if (!td->n_props)
		cat(out, n, "none");
}

/* Every member of data is a property of td or "id". */
static int check_members(struct vctx *c, const struct gfs_typedef *td,
			 const json_t *data)
{
	const char *k;
	json_t *v;
	char q[160], known[240];

	json_object_foreach((json_t *)data, k, v) {
		if (!strcmp(k, "id") || prop_index(td, k) >= 0)
			continue;
		sanitize(k, strlen(k), 48, q, sizeof q);
		c->subj[0] = '\0';
		if (reserved_name(k, td->is_edge))
			return fail(c, "reserved name '%s' in data of %s (ids "
				    "go in data.id, endpoints in \"from\"/"
				    "\"to\")", q, td->name);
		known_props(td, known, sizeof known);
		return fail(c, "unknown property '%s' of %s (known: %s)", q,
			    td->name, known);
	}
	return 0;
}

static int top_keys(struct vctx *c, json_t *root, bool *edge)
{
	bool has_t = json_object_get(root, "type"), has_e;
	const char *k;
	json_t *v;
	char q[160];

	has_e = json_object_get(root, "edge");
	if (has_t == has_e)
		return fail(c, has_t ? "a line has \"type\" (a node) or "
			    "\"edge\" (an edge), not both" : "missing \"type\" "
			    "(a node line) or \"edge\" (an edge line)");
	*edge = has_e;
	json_object_foreach(root, k, v) {
		if (!strcmp(k, "data") || !strcmp(k, has_e ? "edge" : "type") ||
		    (has_e && (!strcmp(k, "from") || !strcmp(k, "to"))))
			continue;
		sanitize(k, strlen(k), 48, q, sizeof q);
		return fail(c, "unknown top-level key '%s' (a node line has "
			    "\"type\" and \"data\"; an edge line has \"edge\", "
			    "\"from\", \"to\" and \"data\")", q);
	}
	if (has_e && !json_object_get(root, "from"))
		return fail(c, "an edge line needs \"from\"");
	if (has_e && !json_object_get(root, "to"))
		return fail(c, "an edge line needs \"to\"");
	return 0;
}

static void known_types(const struct gfs_schema *s, bool edge, char *out,
			size_t n)
{
	out[0] = '\0';
	for (size_t i = 0; i < s->n_types; i++) {
		if (s->types[i].is_edge != edge)
			continue;
		if (strlen(out) + strlen(s->types[i].name) + 8 > n) {
			cat(out, n, ", …");
			return;
		}
		cat(out, n, "%s%s", out[0] ? ", " : "", s->types[i].name);
	}
}

static int find_type(struct vctx *c, const struct gfs_schema *s,
		     const json_t *v, bool edge, size_t *idx)
{
	const char *what = edge ? "edge" : "node";
	const char *name = json_string_value(v);
	size_t n = json_string_length(v);
	char q[160], known[240];

	if (!name) {
		describe(v, q, sizeof q);
		return fail(c, "\"%s\" must be a string naming a %s type, got "
			    "%s", edge ? "edge" : "type", what, q);
	}
	for (size_t i = 0; i < s->n_types; i++) {
		if (strlen(s->types[i].name) != n || memcmp(s->types[i].name, name, n))
			continue;
		if (s->types[i].is_edge == edge) {
			*idx = i;
			return 0;
		}
		return fail(c, "'%s' is %s type: use %s", s->types[i].name,
			    edge ? "a node" : "an edge", edge ?
			    "{\"type\":…,\"data\":…}" :
			    "{\"edge\":…,\"from\":…,\"to\":…,\"data\":…}");
	}
	sanitize(name, n, 48, q, sizeof q);
	known_types(s, edge, known, sizeof known);
	return fail(c, "unknown %s type '%s' (known: %s)", what, q,
		    known[0] ? known : "none");
}

/* data.id of an unkeyed node or an edge, or a fresh ULID. */
static int free_id(struct vctx *c, const json_t *idv, struct gfs_rowin *r)
{
	char ulid[GFS_ULID_LEN + 1], got[200];
	int rc;

	r->id_generated = !idv;
	if (idv && !json_is_string(idv)) {
		describe(idv, got, sizeof got);
		c->field = "data.id";
		return fail(c, "expected a string id, got %s", got);
	}
	if (idv)
		return gfs_buf_append(&r->id, json_string_value(idv),
				      json_string_length(idv));
	rc = gfs_ulid_for_line(ulid, c->lineno);
	return rc ? rc : gfs_buf_append(&r->id, ulid, GFS_ULID_LEN);
}

/* A keyed node's id from its key properties; data.id must agree. */
static int keyed_id(struct vctx *c, const struct gfs_typedef *td,
		    const json_t *data, struct gfs_rowin *r)
{
	const json_t *idv = json_object_get(data, "id");
	const struct gfs_prop *p = &td->props[td->key[0]];
	const json_t *v = json_object_get(data, p->name);
	char a[160], b[160];
	int rc;

	if (td->n_key > 1) {
		rc = key_composite(c, td, data, false, &r->id);
	} else if (!v || json_is_null(v)) {
		c->prop = p->name;
		return fail(c, "missing required property (the key of %s)",
			    td->name);
	} else {
		c->prop = p->name;
		rc = canon_scalar(c, &p->type, v);
		rc = rc ? rc : gfs_buf_append(&r->id, c->tmp.p, c->tmp.len);
	}
	c->prop = NULL;
	if (rc || !idv)
		return rc;
	set_subject(c, td->name, r->id.p, r->id.len);
	c->field = "data.id";
	rc = canon_ref(c, td, idv, &c->aux);
	if (rc)
		return rc;
	c->field = NULL;
	if (c->aux.len == r->id.len && !memcmp(c->aux.p, r->id.p, r->id.len))
		return 0;
	sanitize(c->aux.p, c->aux.len, 48, a, sizeof a);
	sanitize(r->id.p, r->id.len, 48, b, sizeof b);
	return fail(c, "data.id '%s' does not match the key '%s'", a, b);
}

static int node_ident(struct vctx *c, const struct gfs_typedef *td,
		      const json_t *data, struct gfs_rowin *r)
{
	int rc;

	if (td->n_key)
		rc = keyed_id(c, td, data, r);
	else
		rc = free_id(c, json_object_get(data, "id"), r);
	if (!rc)
		set_subject(c, td->name, r->id.p, r->id.len);
	return rc;
}

/* from/to against the endpoint types, then the edge's own id. */
static int edge_ident(struct vctx *c, const struct gfs_schema *s,
		      const struct gfs_typedef *td, const json_t *root,
		      const json_t *data, struct gfs_rowin *r)
{
	const json_t *idv = json_object_get(data, "id");
	char a[160], b[160];
	int rc;

	if (td->from_idx >= s->n_types || td->to_idx >= s->n_types)
		return fail(c, "endpoint types of %s are not in the schema",
			    td->name);
	c->field = "\"from\"";
	rc = canon_ref(c, &s->types[td->from_idx], json_object_get(root, "from"),
		       &r->src);
	c->field = "\"to\"";
	rc = rc ? rc : canon_ref(c, &s->types[td->to_idx],
				 json_object_get(root, "to"), &r->dst);
	c->field = NULL;
	rc = rc ? rc : free_id(c, idv, r);
	if (rc)
		return rc;
	if (!r->id_generated) {
		set_subject(c, td->name, r->id.p, r->id.len);
		return 0;
	}
	sanitize(r->src.p, r->src.len, 48, a, sizeof a);
	sanitize(r->dst.p, r->dst.len, 48, b, sizeof b);
	set_subject(c, td->name, NULL, 0);
	cat(c->subj, sizeof c->subj, " '%s'->'%s'", a, b);
	return 0;
}

static int emit_prop(struct vctx *c, const struct gfs_prop *p,
		     const json_t *data, struct gfs_buf *out, bool *first)
{
	const json_t *v = json_object_get(data, p->name);
	int rc;

	if (!v || json_is_null(v)) {
		if (p->type.nullable)
			return 0;
		c->prop = p->name;
		return fail(c, v ? "null is not allowed (the property is not "
			    "nullable)" : "missing required property");
	}
	c->prop = p->name;
	rc = *first ? 0 : gfs_buf_appendc(out, ',');
	rc = rc ? rc : gfs_buf_append_json_str(out, p->name, strlen(p->name));
	rc = rc ? rc : gfs_buf_appendc(out, ':');
	rc = rc ? rc : encode_value(c, &p->type, v, out);
	if (!rc)
		c->prop = NULL;
	*first = false;
	return rc;
}

/* The data object: "id" (unkeyed nodes, edges), then properties in schema
 * order, nulls omitted. */
static int emit_data(struct vctx *c, const struct gfs_typedef *td,
		     const json_t *data, struct gfs_rowin *r)
{
	struct gfs_buf *b = &r->line;
	bool first = true;
	int rc;

	r->data_off = b->len;
	rc = gfs_buf_appendc(b, '{');
	if (!rc && (td->is_edge || !td->n_key)) {
		rc = gfs_buf_append(b, "\"id\":", 5);
		rc = rc ? rc : gfs_buf_append_json_str(b, r->id.p, r->id.len);
		first = false;
	}
	for (size_t i = 0; i < td->n_props && !rc; i++)
		rc = emit_prop(c, &td->props[i], data, b, &first);
	rc = rc ? rc : gfs_buf_appendc(b, '}');
	r->data_len = b->len - r->data_off;
	return rc ? rc : gfs_buf_append(b, "}\n", 2);
}

static int emit_line(struct vctx *c, const struct gfs_typedef *td,
		     const json_t *data, struct gfs_rowin *r)
{
	struct gfs_buf *b = &r->line;
	const char *n = td->name;
	int rc;

	gfs_buf_reset(b);
	rc = gfs_buf_append(b, td->is_edge ? "{\"edge\":" : "{\"type\":", 8);
	rc = rc ? rc : gfs_buf_append_json_str(b, n, strlen(n));
	if (!rc && td->is_edge) {
		rc = gfs_buf_append(b, ",\"from\":", 8);
		rc = rc ? rc : gfs_buf_append_json_str(b, r->src.p, r->src.len);
		rc = rc ? rc : gfs_buf_append(b, ",\"to\":", 6);
		rc = rc ? rc : gfs_buf_append_json_str(b, r->dst.p, r->dst.len);
	}
	rc = rc ? rc : gfs_buf_append(b, ",\"data\":", 8);
	return rc ? rc : emit_data(c, td, data, r);
}

static void rowin_reset(struct gfs_rowin *r)
{
	r->td = NULL;
	r->type_idx = 0;
	gfs_buf_reset(&r->id);
	gfs_buf_reset(&r->src);
	gfs_buf_reset(&r->dst);
	gfs_buf_reset(&r->line);
	r->data_off = r->data_len = 0;
	r->id_generated = false;
}

static int parse_root(struct vctx *c, const struct gfs_schema *s,
		      json_t *root, struct gfs_rowin *r)
{
	const struct gfs_typedef *td;
	json_t *data, *empty = NULL;
	bool edge = false; /* set by top_keys on success */
	int rc;

	if (!json_is_object(root))
		return fail(c, "expected a JSON object ({\"type\":…} or "
			    "{\"edge\":…})");
	rc = top_keys(c, root, &edge);
	rc = rc ? rc : find_type(c, s, json_object_get(root, edge ? "edge" :
				 "type"), edge, &r->type_idx);
	if (rc)
		return rc;
	td = &s->types[r->type_idx];
	set_subject(c, td->name, NULL, 0);
	data = json_object_get(root, "data");
	if (data && !json_is_object(data)) {
		char got[200];

		describe(data, got, sizeof got);
		return fail(c, "\"data\" must be an object, got %s", got);
	}
	if (!data && !(data = empty = json_object()))
		return -ENOMEM;
	rc = check_members(c, td, data);
	set_subject(c, td->name, NULL, 0);
	if (!rc)
		rc = edge ? edge_ident(c, s, td, root, data, r) :
		     node_ident(c, td, data, r);
	rc = rc ? rc : emit_line(c, td, data, r);
	rc = rc ? rc : check_cons(c, td, data);
	r->td = td;
	rc = rc ? rc : rowin_ukeys(c, r, data);
	json_decref(empty);
	return rc;
}

/* The fast path runs first (docs/decisions.md); tests turn it off to compare. */
static bool fast_on = true;

bool gfs_codec_set_fast(bool on)
{
	bool old = fast_on;

	fast_on = on;
	return old;
}

/* jansson's own message; a too-big integer is only ever a U64 past int64. */
static int bad_json(struct vctx *c, const json_error_t *je)
{
	char q[400];

	sanitize(je->text, strlen(je->text), 200, q, sizeof q);
	return fail(c, "invalid JSON: %s at column %d%s", q, je->column,
		    strstr(je->text, "too big integer") ? " (U64 values above "
		    "9223372036854775807 are not supported)" : "");
}

/* Ids, endpoints and unique keys become B+tree keys: at most GFS_MAX_KEY
 * bytes each.  Checked here, after either path accepted the line, so a
 * too-long one is a data error naming its line, never a failure of the
 * table builder after the writer armed its sidecar. */
static int check_key_sizes(const struct gfs_rowin *r, unsigned long lineno,
			   struct gfs_diag *d)
{
	const char *what = NULL;
	char q[160];
	size_t n = 0;

	if (r->id.len > GFS_MAX_KEY)
		what = "id", n = r->id.len;
	else if (r->src.len > GFS_MAX_KEY)
		what = "\"from\"", n = r->src.len;
	else if (r->dst.len > GFS_MAX_KEY)
		what = "\"to\"", n = r->dst.len;
	for (size_t k = 0; !what && k < r->n_ukeys; k++)
		if (r->ukeys[k].len > GFS_MAX_KEY)
			what = "a @unique key", n = r->ukeys[k].len;
	if (!what)
		return 0;
	sanitize(r->id.p, r->id.len, 48, q, sizeof q);
	gfs_diag_set(d, "line %lu: %s '%s': %s of %zu bytes is longer than "
		     "the limit of %zu bytes (1 MiB)", lineno, r->td->name, q,
		     what, n, GFS_MAX_KEY);
	return GFS_EDATA;
}

int gfs_codec_parse_line(const struct gfs_schema *s, const char *line,
			 size_t len, unsigned long lineno, struct gfs_rowin *r,
			 struct gfs_diag *d)
{
	size_t flags = JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY;
	json_error_t je;
	struct vctx c;
	json_t *root;
	int rc;

	rowin_reset(r);
	if (len > GFS_MAX_LINE) {
		gfs_diag_set(d, "line %lu: line is %zu bytes, over the limit of "
			     "%zu bytes (32 MiB)", lineno, len, GFS_MAX_LINE);
		return GFS_ETOOLONG;
	}
	if (fast_on && gfs_codec_fast_parse(s, line, len, lineno, r) > 0) {
		rc = check_key_sizes(r, lineno, d);
		if (rc)
			r->td = NULL;
		return rc;
	}
	rowin_reset(r);
	ctx_init(&c, lineno, d);
	root = json_loadb(line, len, flags, &je);
	rc = root ? parse_root(&c, s, root, r) : bad_json(&c, &je);
	rc = rc ? rc : check_key_sizes(r, lineno, d);
	if (rc)
		r->td = NULL;
	json_decref(root);
	ctx_release(&c);
	return rc;
}
