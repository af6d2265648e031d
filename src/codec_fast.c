/* codec_fast.c - the load format's common lines without a JSON tree.
 *
 * gfs_codec_parse_line tries this scanner first.  It either accepts a line
 * and fills the gfs_rowin exactly as the jansson path (codec.c) would, or
 * declines and the jansson path runs unchanged; it never reports an error,
 * so every message still comes from one place.  Its one duty is therefore:
 * never accept what the jansson path refuses, and for what it accepts,
 * produce the same bytes (tests/unit/check_codec_diff.c and
 * fuzz/fuzz_codec_diff.c compare the two).  Whatever is unusual declines:
 *   - any backslash escape, byte < 0x20 in a string, invalid UTF-8 (jansson
 *     refuses the last two, and escapes are rare in real inputs);
 *   - integers outside int64 (jansson: "too big integer"), reals longer
 *     than 63 bytes or overflowing a double ("real number overflow");
 *   - duplicate members, unknown members, nesting other than data's object
 *     and a list's or vector's flat array;
 *   - Blob, composite keys, data.id on a keyed node, more than FAST_MAX
 *     properties, and any value of the wrong type, out of range, or failing
 *     @range / @check.
 * Two passes: scan() checks the syntax and records each member's value
 * (spans into the input, numbers converted once); emit() writes the
 * canonical line, then the checks and unique keys read what was written.
 * Nothing is allocated beyond the gfs_rowin's reused buffers.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec_int.h"

/* Properties of a type the scanner handles (more: the jansson path). */
#define FAST_MAX 64

enum vkind { V_NONE, V_STR, V_INT, V_REAL, V_TRUE, V_FALSE, V_NULL, V_ARR };

/* One scanned value: a string's content (no escapes), a number's literal,
 * or an array's bytes from '[' to past ']'. */
struct val {
	enum vkind kind;
	const char *p;
	size_t n;
	long long i; /* V_INT */
	double x;    /* V_INT, V_REAL: the number as jansson's json_number_value */
	size_t elems; /* V_ARR */
};

struct member {
	const char *name;
	size_t len;
	struct val v;
};

/* A scanned line: the top-level members and data's members in order. */
struct line {
	struct val type, edge, from, to;
	bool has_data;
	struct member m[FAST_MAX + 1];
	size_t n_m;
};

struct cursor {
	const char *p, *end;
};

/* ---- scanning (jansson's grammar, or decline) ------------------------ */

static void ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
				 *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static bool eat(struct cursor *c, char ch)
{
	ws(c);
	if (c->p >= c->end || *c->p != ch)
		return false;
	c->p++;
	return true;
}

/* Length of the valid UTF-8 sequence at s, 0 when jansson would refuse it
 * (overlong, surrogate, past U+10FFFF, truncated). */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
	static const unsigned min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	unsigned c = s[0], cp;
	size_t n;

	if (c < 0xc2 || c > 0xf4)
		return 0;
	n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	if ((size_t)(end - s) < n)
		return 0;
	cp = c & (0x7fu >> n);
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3fu);
	}
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

/* Whether any of the 8 bytes at p is '"', '\\', < 0x20 or >= 0x80 (the
 * bit tricks of "Bit Twiddling Hacks": a zero byte, a byte less than n). */
static bool special8(const unsigned char *p)
{
	uint64_t w, q, b;

	memcpy(&w, p, 8);
	q = w ^ (ONES * '"');
	b = w ^ (ONES * '\\');
	return ((w - ONES * 0x20) & ~w & HIGH) | (w & HIGH) |
	       ((q - ONES) & ~q & HIGH) | ((b - ONES) & ~b & HIGH);
}

/* A string without escapes; c->p at the opening quote. */
static bool scan_str(struct cursor *c, const char **s, size_t *n)
{
	const unsigned char *p = (const unsigned char *)c->p + 1;
	const unsigned char *end = (const unsigned char *)c->end;

	*s = (const char *)p;
	while (end - p >= 8 && !special8(p))
		p += 8;
	while (p < end && *p != '"') {
		size_t q = 1;

		if (*p == '\\' || *p < 0x20)
			return false;
		if (*p >= 0x80 && !(q = utf8_len(p, end)))
			return false;
		p += q;
	}
	if (p >= end)
		return false;
	*n = (size_t)((const char *)p - *s);
	c->p = (const char *)p + 1;
	return true;
}

static const char *digits_end(const char *p, const char *end)
{
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p;
}

/* An integer literal within int64 (jansson's strtoll would say ERANGE). */
static bool int_value(const char *p, const char *end, struct val *v)
{
	bool neg = *p == '-';
	unsigned long long mag = 0;

	for (p += neg; p < end; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (mag > (~0ULL - d) / 10)
			return false;
		mag = mag * 10 + d;
	}
	if (mag > (neg ? 1ULL << 63 : (1ULL << 63) - 1))
		return false;
	v->kind = V_INT;
	v->i = neg ? (long long)(0ULL - mag) : (long long)mag;
	v->x = (double)v->i;
	return true;
}

/* A real literal through strtod as jansson does; overflow declines. */
static bool real_value(struct val *v)
{
	char tmp[64], *e;

	if (v->n >= sizeof tmp)
		return false;
	memcpy(tmp, v->p, v->n);
	tmp[v->n] = '\0';
	errno = 0;
	v->x = strtod(tmp, &e);
	if (e != tmp + v->n || (isinf(v->x) && errno == ERANGE))
		return false;
	v->kind = V_REAL;
	return true;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool scan_num(struct cursor *c, struct val *v)
{
	const char *p = c->p + (*c->p == '-'), *end = c->end, *q;
	bool real = false;

	if (p >= end || *p < '0' || *p > '9' ||
	    (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9'))
		return false;
	p = digits_end(p, end);
	if (p < end && *p == '.') {
		q = digits_end(p + 1, end);
		if (q == p + 1)
			return false;
		p = q;
		real = true;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p += p + 1 < end && (p[1] == '+' || p[1] == '-') ? 2 : 1;
		q = digits_end(p, end);
		if (q == p)
			return false;
		p = q;
		real = true;
	}
	v->p = c->p;
	v->n = (size_t)(p - c->p);
	c->p = p;
	return real ? real_value(v) : int_value(v->p, p, v);
}

static bool scan_word(struct cursor *c, const char *w, enum vkind k,
		      struct val *v)
{
	size_t n = strlen(w);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n))
		return false;
	v->kind = k;
	v->p = c->p;
	v->n = n;
	c->p += n;
	return true;
}

/* A scalar: string, number, true, false, null. */
static bool scan_scalar(struct cursor *c, struct val *v)
{
	ws(c);
	if (c->p >= c->end)
		return false;
	switch (*c->p) {
	case '"':
		v->kind = V_STR;
		return scan_str(c, &v->p, &v->n);
	case 't': return scan_word(c, "true", V_TRUE, v);
	case 'f': return scan_word(c, "false", V_FALSE, v);
	case 'n': return scan_word(c, "null", V_NULL, v);
	default: return scan_num(c, v);
	}
}

/* Next element of a flat array at c (after '[' or an element): *more false
 * at ']'.  The array is known to be valid when re-scanned. */
static bool array_next(struct cursor *c, bool first, struct val *e,
		       bool *more)
{
	ws(c);
	if (c->p < c->end && *c->p == ']') {
		c->p++;
		*more = false;
		return true;
	}
	if (!first && !eat(c, ','))
		return false;
	*more = true;
	return scan_scalar(c, e);
}

/* A flat array of scalars (a list or a vector). */
static bool scan_array(struct cursor *c, struct val *v)
{
	struct val e;
	bool more = true;

	v->kind = V_ARR;
	v->p = c->p++;
	v->elems = 0;
	while (more) {
		if (!array_next(c, v->elems == 0, &e, &more))
			return false;
		v->elems += more;
	}
	v->n = (size_t)(c->p - v->p);
	return true;
}

static bool scan_value(struct cursor *c, struct val *v)
{
	ws(c);
	if (c->p < c->end && *c->p == '[')
		return scan_array(c, v);
	return scan_scalar(c, v);
}

/* "key": at c; the key's content in *k, length *n. */
static bool scan_key(struct cursor *c, const char **k, size_t *n)
{
	ws(c);
	return c->p < c->end && *c->p == '"' && scan_str(c, k, n) &&
	       eat(c, ':');
}

/* Members of an object at c (after '{'), each through one(), to '}'. */
static bool scan_members(struct cursor *c, struct line *l,
			 bool (*one)(struct cursor *, struct line *,
				     const char *, size_t))
{
	const char *k;
	size_t n;

	if (eat(c, '}'))
		return true;
	do {
		if (!scan_key(c, &k, &n) || !one(c, l, k, n))
			return false;
	} while (eat(c, ','));
	return eat(c, '}');
}

static bool data_member(struct cursor *c, struct line *l, const char *k,
			size_t n)
{
	struct member *m = &l->m[l->n_m];

	if (l->n_m == FAST_MAX + 1)
		return false;
	m->name = k;
	m->len = n;
	l->n_m++;
	return scan_value(c, &m->v);
}

static bool is(const char *k, size_t n, const char *w)
{
	return strlen(w) == n && !memcmp(k, w, n);
}

static bool top_member(struct cursor *c, struct line *l, const char *k,
		       size_t n)
{
	struct val *v = is(k, n, "type") ? &l->type : is(k, n, "edge") ?
			&l->edge : is(k, n, "from") ? &l->from :
			is(k, n, "to") ? &l->to : NULL;

	if (is(k, n, "data")) {
		if (l->has_data || !eat(c, '{'))
			return false;
		l->has_data = true;
		return scan_members(c, l, data_member);
	}
	if (!v || v->kind != V_NONE)
		return false; /* unknown or duplicate */
	return scan_value(c, v);
}

static bool scan_line(const char *p, size_t len, struct line *l)
{
	struct cursor c = { p, p + len };

	l->type.kind = l->edge.kind = l->from.kind = l->to.kind = V_NONE;
	l->has_data = false;
	l->n_m = 0;
	if (!eat(&c, '{') || !scan_members(&c, l, top_member))
		return false;
	ws(&c);
	return c.p == c.end;
}

/* ---- canonical values ------------------------------------------------ */

/* Appends n bytes; the capacity test inline, as a reused row rarely grows. */
static inline bool put(struct gfs_buf *b, const char *s, size_t n)
{
	if (b->len + n >= b->cap && gfs_buf_reserve(b, n))
		return false;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return true;
}

/* "s": what gfs_buf_append_json_str writes for a string that needs no
 * escape - every string here: input strings with escapes or control bytes
 * were declined, canonical texts have none, and names are identifiers. */
static inline bool put_quoted(struct gfs_buf *b, const char *s, size_t n)
{
	if (b->len + n + 2 >= b->cap && gfs_buf_reserve(b, n + 2))
		return false;
	b->p[b->len++] = '"';
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len++] = '"';
	b->p[b->len] = '\0';
	return true;
}

/* Canonical text of scalar v of t's base (unquoted) appended to out. */
static bool scalar_text(const struct gfs_type *t, const struct val *v,
			struct gfs_buf *out)
{
	char s[64];
	double x;

	switch (t->base) {
	case GFS_T_STRING:
		return v->kind == V_STR && put(out, v->p, v->n);
	case GFS_T_BOOL:
		return (v->kind == V_TRUE || v->kind == V_FALSE) &&
		       put(out, v->p, v->n);
	case GFS_T_I32: case GFS_T_I64: case GFS_T_U32: case GFS_T_U64:
		return v->kind == V_INT && gfs_codec_int_fits(t->base, v->i) &&
		       put(out, s, gfs_codec_fmt_int(s, v->i));
	case GFS_T_F32: case GFS_T_F64:
		if ((v->kind != V_INT && v->kind != V_REAL) ||
		    !gfs_codec_real_fits(t->base, v->x))
			return false;
		x = t->base == GFS_T_F32 ? (float)v->x : v->x;
		gfs_codec_fmt_real(s, sizeof s, x, t->base == GFS_T_F32);
		return put(out, s, strlen(s));
	case GFS_T_DATE:
		return v->kind == V_STR && gfs_codec_date_ok(v->p, v->n) &&
		       put(out, v->p, v->n);
	case GFS_T_DATETIME:
		return v->kind == V_STR &&
		       gfs_codec_datetime_canon(v->p, v->n, out) == 0;
	case GFS_T_ENUM:
		return v->kind == V_STR && gfs_codec_enum_has(t, v->p, v->n) &&
		       put(out, v->p, v->n);
	default:
		return false; /* Blob (and Vector, not a scalar): the jansson path */
	}
}

/* Canonical JSON of scalar v: quoted text needs no escaping, as strings
 * with escapes or control bytes were declined. */
static bool scalar_json(const struct gfs_type *t, const struct val *v,
			struct gfs_buf *out)
{
	bool q = gfs_codec_quoted_base(t->base);

	return (!q || put(out, "\"", 1)) && scalar_text(t, v, out) &&
	       (!q || put(out, "\"", 1));
}

/* A list of t, or a vector (each element an F64). */
static bool array_json(const struct gfs_type *t, const struct val *v,
		       struct gfs_buf *out)
{
	static const struct gfs_type f64 = { .base = GFS_T_F64 };
	const struct gfs_type *et = t->list ? t : &f64;
	struct cursor c = { v->p + 1, v->p + v->n };
	struct val e;
	bool more;

	if (v->kind != V_ARR || (!t->list && v->elems != t->dim) ||
	    !put(out, "[", 1))
		return false;
	for (size_t i = 0; array_next(&c, i == 0, &e, &more) && more; i++)
		if (e.kind == V_NULL || (i && !put(out, ",", 1)) ||
		    !scalar_json(et, &e, out))
			return false;
	return put(out, "]", 1);
}

static bool value_json(const struct gfs_type *t, const struct val *v,
		       struct gfs_buf *out)
{
	if (t->list || t->base == GFS_T_VECTOR)
		return array_json(t, v, out);
	return scalar_json(t, v, out);
}

/* ---- identity -------------------------------------------------------- */

/* A string standing for a non-string key is exactly its canonical text. */
static bool ref_string(const struct gfs_type *kt, const struct val *v,
		       struct gfs_buf *out)
{
	struct cursor c = { v->p, v->p + v->n };
	struct val lit;

	if (v->n == 0 || *c.p == ' ' || !scan_scalar(&c, &lit) || c.p != c.end)
		return false;
	return scalar_text(kt, &lit, out) && out->len == v->n &&
	       !memcmp(out->p, v->p, v->n);
}

/* Canonical id of an endpoint v of node type td (codec.c canon_ref). */
static bool ref_canon(const struct gfs_typedef *td, const struct val *v,
		      struct gfs_buf *out)
{
	const struct gfs_type *kt;

	gfs_buf_reset(out);
	if (td->n_key == 0)
		return v->kind == V_STR && put(out, v->p, v->n);
	if (td->n_key > 1)
		return false;
	kt = &td->props[td->key[0]].type;
	if (v->kind == V_STR && !gfs_codec_quoted_base(kt->base))
		return ref_string(kt, v, out);
	return scalar_text(kt, v, out);
}

static const struct gfs_typedef *find_type(const struct gfs_schema *s,
					   const struct line *l, size_t *idx)
{
	const struct val *v = l->type.kind ? &l->type : &l->edge;

	if (v->kind != V_STR)
		return NULL;
	for (size_t i = 0; i < s->n_types; i++) {
		const char *n = s->types[i].name;

		if (!strncmp(n, v->p, v->n) && n[v->n] == '\0') {
			*idx = i;
			return s->types[i].is_edge == (v == &l->edge) ?
			       &s->types[i] : NULL;
		}
	}
	return NULL;
}

/* ---- one row --------------------------------------------------------- */

/* What emit() needs: each property's value (or NULL), data.id, and where
 * each value's JSON landed in r->line. */
struct row {
	const struct gfs_typedef *td;
	const struct val *pv[FAST_MAX];
	const struct val *idv;
	size_t off[FAST_MAX], len[FAST_MAX];
	size_t id_off; /* the id's text in the line: for a generated id */
};

static bool bind_member(struct row *w, const struct member *m, size_t *hint)
{
	const struct gfs_typedef *td = w->td;

	if (m->len == 2 && !memcmp(m->name, "id", 2)) {
		if (w->idv || (!td->is_edge && td->n_key))
			return false; /* duplicate, or data.id on a keyed node */
		w->idv = &m->v;
		return true;
	}
	for (size_t k = 0; k < td->n_props; k++) {
		size_t i = (*hint + k) % td->n_props;
		const char *n = td->props[i].name;

		if (strncmp(n, m->name, m->len) || n[m->len] != '\0')
			continue;
		if (w->pv[i])
			return false; /* duplicate */
		w->pv[i] = &m->v;
		*hint = i + 1;
		return true;
	}
	return false; /* unknown or reserved name */
}

/* Every data member names a property or is data.id. */
static bool bind(struct row *w, const struct line *l)
{
	size_t hint = 0;

	if (w->td->n_props > FAST_MAX)
		return false;
	memset(w->pv, 0, sizeof w->pv);
	w->idv = NULL;
	for (size_t j = 0; j < l->n_m; j++)
		if (!bind_member(w, &l->m[j], &hint))
			return false;
	return true;
}

static bool emit_props(struct row *w, struct gfs_buf *b, bool first)
{
	const struct gfs_typedef *td = w->td;

	for (size_t i = 0; i < td->n_props; i++) {
		const struct gfs_prop *p = &td->props[i];
		const struct val *v = w->pv[i];

		w->len[i] = 0;
		if (!v || v->kind == V_NULL) {
			if (!p->type.nullable)
				return false;
			continue;
		}
		if ((!first && !put(b, ",", 1)) ||
		    !put_quoted(b, p->name, strlen(p->name)) ||
		    !put(b, ":", 1))
			return false;
		w->off[i] = b->len;
		if (!value_json(&p->type, v, b))
			return false;
		w->len[i] = b->len - w->off[i];
		first = false;
	}
	return true;
}

/* The data object; a generated id is a placeholder until the row passed. */
static bool emit_data(struct row *w, struct gfs_rowin *r)
{
	static const char ulid0[GFS_ULID_LEN] = { 0 };
	struct gfs_buf *b = &r->line;
	bool id = w->td->is_edge || !w->td->n_key;

	r->data_off = b->len;
	if (!put(b, "{", 1) || (id && !put(b, "\"id\":\"", 6)))
		return false;
	w->id_off = b->len;
	if (id && !put(b, w->idv ? w->idv->p : ulid0,
		       w->idv ? w->idv->n : GFS_ULID_LEN))
		return false;
	if ((id && !put(b, "\"", 1)) || !emit_props(w, b, !id) ||
	    !put(b, "}", 1))
		return false;
	r->data_len = b->len - r->data_off;
	return put(b, "}\n", 2);
}

static bool emit(struct row *w, struct gfs_rowin *r)
{
	struct gfs_buf *b = &r->line;
	const char *n = w->td->name;

	gfs_buf_reset(b);
	if (!put(b, w->td->is_edge ? "{\"edge\":" : "{\"type\":", 8) ||
	    !put_quoted(b, n, strlen(n)))
		return false;
	if (w->td->is_edge &&
	    (!put(b, ",\"from\":", 8) ||
	     !put_quoted(b, r->src.p, r->src.len) ||
	     !put(b, ",\"to\":", 6) ||
	     !put_quoted(b, r->dst.p, r->dst.len)))
		return false;
	return put(b, ",\"data\":", 8) && emit_data(w, r);
}

/* The id: a keyed node's key text (as written in the line), else data.id
 * (the generated one is filled in by finish()). */
static bool ident(const struct row *w, struct gfs_rowin *r)
{
	const struct gfs_typedef *td = w->td;
	size_t k = td->n_key ? td->key[0] : 0;
	bool q = td->n_key && gfs_codec_quoted_base(td->props[k].type.base);

	gfs_buf_reset(&r->id);
	if (td->is_edge || !td->n_key)
		return !w->idv || (w->idv->kind == V_STR &&
				   put(&r->id, w->idv->p, w->idv->n));
	if (!w->len[k])
		return false;
	return put(&r->id, r->line.p + w->off[k] + q, w->len[k] - 2 * q);
}

/* ---- constraints and unique keys ------------------------------------- */

static bool in_range(const struct gfs_cons *k, enum gfs_base base,
		     const struct val *v)
{
	bool is_int = v->kind == V_INT;

	if (!is_int && v->kind != V_REAL)
		return true; /* @range ignores what is not a number */
	return (!k->lo.set ||
		gfs_codec_cmp_bound(base, is_int, v->i, v->x, &k->lo) >= 0) &&
	       (!k->hi.set ||
		gfs_codec_cmp_bound(base, is_int, v->i, v->x, &k->hi) <= 0);
}

/* One @check on a canonical value text v (a string's content or a literal). */
static bool check_ok(const struct gfs_cons *k, const struct val *v)
{
	return gfs_codec_check_match(k, v->p, v->n);
}

/* Runs @range on the input value(s) or @check on the canonical one(s). */
static bool cons_ok(const struct gfs_cons *k, const struct gfs_type *t,
		    const struct val *in, const struct val *canon)
{
	const struct val *v = k->kind == GFS_C_RANGE ? in : canon;
	struct cursor c = { v->p + 1, v->p + v->n };
	struct val e;
	bool more;

	if (!t->list && t->base != GFS_T_VECTOR)
		return k->kind == GFS_C_RANGE ? in_range(k, t->base, v) :
		       check_ok(k, v);
	if (k->kind == GFS_C_CHECK && t->base == GFS_T_VECTOR)
		return true;
	for (size_t i = 0; array_next(&c, i == 0, &e, &more) && more; i++)
		if (k->kind == GFS_C_RANGE ? !in_range(k, t->base, &e) :
		    !check_ok(k, &e))
			return false;
	return true;
}

/* The canonical value of property i as written in the line, re-scanned. */
static bool canon_val(const struct row *w, const struct gfs_rowin *r,
		      size_t i, struct val *out)
{
	struct cursor c = { r->line.p + w->off[i],
			    r->line.p + w->off[i] + w->len[i] };

	return scan_value(&c, out);
}

static bool check_cons(const struct row *w, const struct gfs_rowin *r)
{
	const struct gfs_typedef *td = w->td;

	for (size_t j = 0; j < td->n_cons; j++) {
		const struct gfs_cons *k = &td->cons[j];
		struct val canon;
		int pi;

		if ((k->kind != GFS_C_RANGE && k->kind != GFS_C_CHECK) ||
		    k->n_props < 1)
			continue;
		pi = gfs_typedef_prop(td, k->props[0]);
		if (pi < 0 || !w->len[pi])
			continue; /* absent or null */
		if (!canon_val(w, r, (size_t)pi, &canon) ||
		    !cons_ok(k, &td->props[pi].type, w->pv[pi], &canon))
			return false;
	}
	return true;
}

/* One unique key: the values' JSON as written in the line, src/dst of an
 * edge as strings; empty when a value is absent or null. */
static bool ukey_one(const struct row *w, const struct gfs_rowin *r,
		     const struct gfs_cons *k, struct gfs_buf *out)
{
	const struct gfs_typedef *td = w->td;

	gfs_buf_reset(out);
	for (size_t i = 0; i < k->n_props; i++) {
		const char *name = k->props[i];
		int pi = gfs_typedef_prop(td, name);
		bool src = td->is_edge && pi < 0 && !strcmp(name, "src");
		bool dst = td->is_edge && pi < 0 && !strcmp(name, "dst");
		const struct gfs_buf *e = src ? &r->src : &r->dst;

		if (!src && !dst && (pi < 0 || !w->len[pi])) {
			gfs_buf_reset(out);
			return true;
		}
		if (!put(out, i ? "," : "[", 1) ||
		    !(src || dst ? put_quoted(out, e->p, e->len) :
		      put(out, r->line.p + w->off[pi], w->len[pi])))
			return false;
	}
	return put(out, k->n_props ? "]" : "[]", k->n_props ? 1 : 2);
}

static bool ukeys(const struct row *w, struct gfs_rowin *r)
{
	size_t j = 0;

	if (gfs_codec_ukeys_size(r))
		return false;
	for (size_t i = 0; i < w->td->n_cons; i++)
		if (w->td->cons[i].kind == GFS_C_UNIQUE &&
		    !ukey_one(w, r, &w->td->cons[i], &r->ukeys[j++]))
			return false;
	return true;
}

/* The row passed: a generated id is drawn now, so a declined line never
 * consumed one. */
static bool finish(const struct row *w, struct gfs_rowin *r,
		   unsigned long lineno)
{
	char ulid[GFS_ULID_LEN + 1];

	r->id_generated = (w->td->is_edge || !w->td->n_key) && !w->idv;
	if (!r->id_generated)
		return true;
	if (gfs_ulid_for_line(ulid, lineno))
		return false;
	memcpy(r->line.p + w->id_off, ulid, GFS_ULID_LEN);
	return put(&r->id, ulid, GFS_ULID_LEN);
}

static bool endpoints(const struct gfs_schema *s, const struct line *l,
		      const struct gfs_typedef *td, struct gfs_rowin *r)
{
	if (!td->is_edge)
		return l->from.kind == V_NONE && l->to.kind == V_NONE;
	if (td->from_idx >= s->n_types || td->to_idx >= s->n_types ||
	    l->from.kind == V_NONE || l->to.kind == V_NONE)
		return false;
	return ref_canon(&s->types[td->from_idx], &l->from, &r->src) &&
	       ref_canon(&s->types[td->to_idx], &l->to, &r->dst);
}

int gfs_codec_fast_parse(const struct gfs_schema *s, const char *line,
			 size_t len, unsigned long lineno, struct gfs_rowin *r)
{
	struct line l;
	struct row w;

	if (!scan_line(line, len, &l) ||
	    (l.type.kind != V_NONE) == (l.edge.kind != V_NONE) ||
	    !(w.td = find_type(s, &l, &r->type_idx)) ||
	    (w.td->n_key > 1) || !bind(&w, &l) ||
	    !endpoints(s, &l, w.td, r) || !emit(&w, r) || !ident(&w, r) ||
	    !check_cons(&w, r))
		return 0;
	r->td = w.td;
	if (!ukeys(&w, r) || !finish(&w, r, lineno)) {
		r->td = NULL;
		return 0;
	}
	return 1;
}
