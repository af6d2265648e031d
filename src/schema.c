/* schema.c - the .pg schema language (DESIGN.md §1).
 *
 * Two phases.  Phase 1 is a single-pass, non-recursive descent over the raw
 * bytes (no token stream: enum values such as `on-leave` and range literals
 * such as `0..150` lex differently from everything else, so each rule reads
 * the characters it expects).  It builds every node, edge and interface in
 * declaration order and checks everything local to one declaration.
 * Phase 2 runs once the whole text is read, because declarations may come in
 * any order: it resolves edge endpoints, copies implemented interface
 * properties into nodes, then checks every constraint against the final
 * property list and computes key[].
 *
 * Ownership: every object is pushed, zeroed, into the array that owns it
 * before it is filled in, so gfs_schema_free() can release a schema that
 * failed half-way through any rule.  Nothing recurses, so no input nests the
 * C stack.
 *
 * Decisions beyond DESIGN.md, where it is silent:
 * - @range applies to numeric scalars only (I32..F64, not Date, not lists);
 *   @check to String scalars only; at least one @range bound must be given.
 * - @key is also refused on F32/F64 (no canonical id form), and a composite
 *   @key(...) may name any number of properties (>= 1).
 * - Inside strings, \" \\ \n \t are escapes; any other backslash pair is
 *   kept verbatim, so regexes like "^\.[a-z]+$" read as written.
 * - Vector(N) allows 1 <= N <= 65536.
 * - Implemented interface properties come first (interface order), then the
 *   node's own; a redeclared property keeps the node's position.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

#define MAX_VECTOR_DIM 65536u
#define MAX_NUM_LEN 63 /* longest numeric literal we accept */
/* Limits for hostile schema text (docs/format.md, "Limits"; each checked
 * by tests/limits.sh), for new schemas: a stored one parses as it was
 * accepted (gfs_schema_parse_stored).  A name becomes part of a file name ("node:<Type>",
 * STORE/locks/<table>.lock, a mount's directories) and the counts keep the
 * parser's duplicate checks, which compare pairs, fast. */
#define MAX_NAME 128        /* bytes in a type, property or enum value name */
#define MAX_TYPES 4096      /* node, edge and interface declarations */
#define MAX_PROPS 4096      /* properties of a type, implemented ones included */
#define MAX_ENUM 4096       /* values of one enum */
#define MAX_IMPLEMENTS 256  /* interfaces one node implements */
#define MAX_UNIQUE 64       /* @unique constraints of a type (TBL_MAX_UNIQUE) */
#define MAX_REGEX 1024      /* bytes of a @check pattern */
#define MAX_REGEX_NODES 10000 /* re_cost of a @check pattern */
#define MAX_REGEX_NULLREP 256 /* re_cost's *ncost: repeated empty-matching parts */
#define MAX_CONS 4096       /* constraints of a type (each checked per row) */
#define NAME_SHOWN 64  /* longest name quoted in a diagnostic */

enum decl_kind { K_NODE, K_EDGE, K_IFACE };

struct loc {
	unsigned line, col;
};

/* Where the reader is; copied to look ahead and rewind. */
struct cur {
	size_t pos;
	unsigned line;
	size_t lstart; /* offset of the current line's first byte */
};

/* An identifier in the source text (not NUL-terminated). */
struct tok {
	const char *p;
	size_t n;
	struct loc at;
};

/* Positions phase 2 needs for its diagnostics, parallel to sch->types. */
struct tside {
	struct loc from, to;
	struct loc *impl; /* one per t->implements entry */
	size_t n_impl;
};

struct pctx {
	const char *s;
	size_t n;
	struct cur c;
	const char *file;
	struct gfs_diag *d;
	int rc;
	struct gfs_schema *sch;
	struct gfs_typedef *ifaces; /* resolved away; never in sch->types */
	size_t n_ifaces;
	struct tside *side;
	size_t n_side;
	bool limits; /* a new schema: the MAX_* limits apply */
};

/* ---- diagnostics -------------------------------------------------------- */

static int __attribute__((format(printf, 3, 4)))
perr(struct pctx *x, struct loc at, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!x->rc) {
		x->rc = GFS_ESCHEMA;
		gfs_diag_set(x->d, "%s:%u:%u: %s", x->file, at.line, at.col,
			     msg);
	}
	return x->rc;
}

static int oom(struct pctx *x)
{
	if (!x->rc) {
		x->rc = -ENOMEM;
		gfs_diag_set(x->d, "%s: out of memory parsing schema", x->file);
	}
	return x->rc;
}

static int shown(size_t n)
{
	return (int)(n > NAME_SHOWN ? NAME_SHOWN : n);
}

/* ---- growable arrays ---------------------------------------------------- */

/* Makes room for element n of *arr; capacity doubles at powers of two, so
 * the capacity needs no field of its own. */
static int grow(void *arrp, size_t n, size_t sz)
{
	void **arr = arrp;
	void *q;

	if (n & (n - 1))
		return 0;
	q = reallocarray(*arr, n ? n * 2 : 1, sz);
	if (!q)
		return -ENOMEM;
	*arr = q;
	return 0;
}

/* Appends a zeroed element; returns its index or -1 (x->rc set). */
static ssize_t push_zero(struct pctx *x, void *arrp, size_t *n, size_t sz)
{
	void **arr = arrp;

	if (grow(arrp, *n, sz))
		return oom(x), -1;
	memset((char *)*arr + *n * sz, 0, sz);
	return (ssize_t)(*n)++;
}

static int push_str(struct pctx *x, char ***arr, size_t *n, const char *p,
		    size_t len)
{
	char *s = gfs_memdup(p, len);

	if (!s || grow(arr, *n, sizeof **arr)) {
		free(s);
		return oom(x);
	}
	(*arr)[(*n)++] = s;
	return 0;
}

/* ---- releasing ---------------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void annots_free(struct gfs_annot *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].name);
		free(a[i].args);
	}
	free(a);
}

static void prop_release(struct gfs_prop *p)
{
	free(p->name);
	strv_free(p->type.enum_vals, p->type.n_enum);
	free(p->embed);
	annots_free(p->annots, p->n_annots);
}

/* pattern is set only once re holds a compiled regex. */
static void cons_release(struct gfs_cons *c)
{
	strv_free(c->props, c->n_props);
	if (c->kind == GFS_C_CHECK && c->pattern)
		regfree(&c->re);
	free(c->pattern);
}

static void typedef_release(struct gfs_typedef *t)
{
	free(t->name);
	free(t->from);
	free(t->to);
	for (size_t i = 0; i < t->n_props; i++)
		prop_release(&t->props[i]);
	free(t->props);
	for (size_t i = 0; i < t->n_cons; i++)
		cons_release(&t->cons[i]);
	free(t->cons);
	free(t->key);
	free(t->description);
	strv_free(t->implements, t->n_implements);
	annots_free(t->annots, t->n_annots);
}

void gfs_schema_free(struct gfs_schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_types; i++)
		typedef_release(&s->types[i]);
	free(s->types);
	free(s->text);
	free(s);
}

static void ctx_release(struct pctx *x)
{
	for (size_t i = 0; i < x->n_ifaces; i++)
		typedef_release(&x->ifaces[i]);
	free(x->ifaces);
	for (size_t i = 0; i < x->n_side; i++)
		free(x->side[i].impl);
	free(x->side);
}

/* ---- reading characters ------------------------------------------------- */

static int peek_at(const struct pctx *x, size_t ahead)
{
	size_t at = x->c.pos + ahead;

	return at < x->n ? (unsigned char)x->s[at] : -1;
}

static int peek(const struct pctx *x)
{
	return peek_at(x, 0);
}

static void adv(struct pctx *x)
{
	if (x->s[x->c.pos] == '\n') {
		x->c.line++;
		x->c.lstart = x->c.pos + 1;
	}
	x->c.pos++;
}

static struct loc here(const struct pctx *x)
{
	struct loc l = { x->c.line, (unsigned)(x->c.pos - x->c.lstart + 1) };

	return l;
}

static bool is_space(int ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' ||
	       ch == '\f' || ch == '\v';
}

static bool is_ident_start(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       ch == '_';
}

static bool is_ident(int ch)
{
	return is_ident_start(ch) || (ch >= '0' && ch <= '9');
}

static bool is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

static int skip_block_comment(struct pctx *x)
{
	struct loc open = here(x);

	adv(x);
	adv(x);
	while (peek(x) >= 0) {
		if (peek(x) == '*' && peek_at(x, 1) == '/') {
			adv(x);
			adv(x);
			return 0;
		}
		adv(x);
	}
	return perr(x, here(x),
		    "unterminated comment (opened at %u:%u), expected '*/'",
		    open.line, open.col);
}

/* Skips whitespace and comments. */
static int skip_ws(struct pctx *x)
{
	for (;;) {
		int ch = peek(x);

		if (is_space(ch)) {
			adv(x);
		} else if (ch == '/' && peek_at(x, 1) == '/') {
			while (peek(x) >= 0 && peek(x) != '\n')
				adv(x);
		} else if (ch == '/' && peek_at(x, 1) == '*') {
			if (skip_block_comment(x))
				return x->rc;
		} else {
			return 0;
		}
	}
}

/* Skips blanks, then reads [A-Za-z_][A-Za-z0-9_]* if present. */
static int word(struct pctx *x, struct tok *t, bool *found)
{
	*found = false;
	if (skip_ws(x))
		return x->rc;
	t->at = here(x);
	t->p = x->s + x->c.pos;
	t->n = 0;
	if (!is_ident_start(peek(x)))
		return 0;
	while (is_ident(peek(x))) {
		adv(x);
		t->n++;
	}
	*found = true;
	return 0;
}

static bool tok_is(const struct tok *t, const char *s)
{
	return strlen(s) == t->n && memcmp(t->p, s, t->n) == 0;
}

/* Skips blanks; true (and consumed) when the next byte is ch. */
static int accept(struct pctx *x, int ch, bool *got)
{
	*got = false;
	if (skip_ws(x))
		return x->rc;
	if (peek(x) == ch) {
		adv(x);
		*got = true;
	}
	return 0;
}

static int __attribute__((format(printf, 3, 4)))
expect(struct pctx *x, int ch, const char *fmt, ...)
{
	char what[200];
	va_list ap;
	bool got;

	if (accept(x, ch, &got))
		return x->rc;
	if (got)
		return 0;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return perr(x, here(x), "expected '%c' %s", ch, what);
}

/* ---- literals ----------------------------------------------------------- */

static int string_char(struct pctx *x, struct gfs_buf *b, struct loc open)
{
	int ch = peek(x);

	if (ch == 0)
		return perr(x, here(x), "NUL byte in string");
	adv(x);
	if (ch != '\\')
		return gfs_buf_appendc(b, (char)ch) ? oom(x) : 0;
	ch = peek(x);
	if (ch < 0)
		return perr(x, open, "unterminated string, expected '\"'");
	if (ch == 0)
		return perr(x, here(x), "NUL byte in string");
	adv(x);
	if (ch == 'n' || ch == 't')
		ch = ch == 'n' ? '\n' : '\t';
	else if (ch != '"' && ch != '\\' && gfs_buf_appendc(b, '\\'))
		return oom(x);
	return gfs_buf_appendc(b, (char)ch) ? oom(x) : 0;
}

/* Reads a "..." literal (blanks skipped first); *out is a new C string. */
static int read_string(struct pctx *x, char **out, const char *what)
{
	struct gfs_buf b;
	struct loc open;

	*out = NULL;
	if (skip_ws(x))
		return x->rc;
	open = here(x);
	if (peek(x) != '"')
		return perr(x, open, "expected a string literal %s", what);
	adv(x);
	gfs_buf_init(&b);
	while (peek(x) != '"') {
		if (peek(x) < 0) {
			gfs_buf_release(&b);
			return perr(x, open, "unterminated string, expected '\"'");
		}
		if (string_char(x, &b, open)) {
			gfs_buf_release(&b);
			return x->rc;
		}
	}
	adv(x);
	*out = b.p ? b.p : gfs_strdup("");
	return *out ? 0 : oom(x);
}

static int read_u64(struct pctx *x, uint64_t *v, const char *what)
{
	struct loc at;
	uint64_t n = 0;

	if (skip_ws(x))
		return x->rc;
	at = here(x);
	if (!is_digit(peek(x)))
		return perr(x, at, "expected an unsigned integer %s", what);
	while (is_digit(peek(x))) {
		unsigned dg = (unsigned)(peek(x) - '0');

		if (n > (UINT64_MAX - dg) / 10)
			return perr(x, at, "integer too large %s", what);
		n = n * 10 + dg;
		adv(x);
	}
	*v = n;
	return 0;
}

/* Copies -?D+(.D+)?([eE][+-]?D+)? into buf; *is_int when no '.'/'e'. */
static int scan_number(struct pctx *x, char *buf, bool *is_int)
{
	struct loc at = here(x);
	size_t start = x->c.pos, len;

	*is_int = true;
	if (peek(x) == '-')
		adv(x);
	if (!is_digit(peek(x)))
		return perr(x, at, "expected a number in @range");
	while (is_digit(peek(x)))
		adv(x);
	if (peek(x) == '.' && is_digit(peek_at(x, 1))) {
		*is_int = false;
		for (adv(x); is_digit(peek(x));)
			adv(x);
	}
	if ((peek(x) == 'e' || peek(x) == 'E') &&
	    (is_digit(peek_at(x, 1)) ||
	     ((peek_at(x, 1) == '-' || peek_at(x, 1) == '+') &&
	      is_digit(peek_at(x, 2))))) {
		*is_int = false;
		for (adv(x), adv(x); is_digit(peek(x));)
			adv(x);
	}
	len = x->c.pos - start;
	if (len > MAX_NUM_LEN)
		return perr(x, at, "number too long in @range");
	memcpy(buf, x->s + start, len);
	buf[len] = '\0';
	return 0;
}

/* An optional @range bound: absent when the next byte starts no number. */
static int read_bound(struct pctx *x, struct gfs_bound *b)
{
	char buf[MAX_NUM_LEN + 1];
	struct loc at;
	char *end;

	if (skip_ws(x))
		return x->rc;
	at = here(x);
	if (!is_digit(peek(x)) && peek(x) != '-')
		return 0;
	if (scan_number(x, buf, &b->is_int))
		return x->rc;
	b->set = true;
	if (b->is_int) {
		if (gfs_parse_i64(buf, &b->i))
			return perr(x, at, "integer out of range in @range");
		b->d = (double)b->i;
		return 0;
	}
	errno = 0;
	b->d = strtod(buf, &end);
	if (errno == ERANGE || *end || !isfinite(b->d))
		return perr(x, at, "number out of range in @range");
	return 0;
}

/* ---- names -------------------------------------------------------------- */

static bool is_type_name(const struct tok *t)
{
	return t->n && t->p[0] >= 'A' && t->p[0] <= 'Z';
}

static bool is_prop_name(const struct tok *t)
{
	return t->n && ((t->p[0] >= 'a' && t->p[0] <= 'z') || t->p[0] == '_');
}

static int name_length(struct pctx *x, const struct tok *t, const char *kind)
{
	if (!x->limits || t->n <= MAX_NAME)
		return 0;
	return perr(x, t->at, "%s name '%.*s…' of %zu bytes is longer than "
		    "the limit of %d bytes", kind, shown(t->n), t->p, t->n,
		    MAX_NAME);
}

static int type_name(struct pctx *x, struct tok *t, const char *what)
{
	bool found;

	if (word(x, t, &found))
		return x->rc;
	if (!found)
		return perr(x, t->at, "expected a type name %s", what);
	if (name_length(x, t, "type"))
		return x->rc;
	if (!is_type_name(t))
		return perr(x, t->at,
			    "type name '%.*s' must match [A-Z][A-Za-z0-9_]*, "
			    "expected a capitalised name %s",
			    shown(t->n), t->p, what);
	return 0;
}

static int prop_name(struct pctx *x, struct tok *t, const char *what)
{
	bool found;

	if (word(x, t, &found))
		return x->rc;
	if (!found)
		return perr(x, t->at, "expected a property name %s", what);
	if (name_length(x, t, "property"))
		return x->rc;
	if (!is_prop_name(t))
		return perr(x, t->at,
			    "property name '%.*s' must match [a-z_][A-Za-z0-9_]*",
			    shown(t->n), t->p);
	return 0;
}

static int check_reserved(struct pctx *x, const struct tok *t,
			  enum decl_kind kind)
{
	bool endpoint = tok_is(t, "src") || tok_is(t, "dst");

	if (tok_is(t, "id") || tok_is(t, "_tombstone") ||
	    (t->n >= 4 && memcmp(t->p, "_row", 4) == 0) ||
	    (kind == K_EDGE && endpoint))
		return perr(x, t->at,
			    "property name '%.*s' is reserved, expected "
			    "another name",
			    shown(t->n), t->p);
	return 0;
}

static ssize_t find_prop(const struct gfs_prop *p, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(p[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

static ssize_t find_prop_tok(const struct gfs_typedef *t, const struct tok *k)
{
	for (size_t i = 0; i < t->n_props; i++)
		if (tok_is(k, t->props[i].name))
			return (ssize_t)i;
	return -1;
}

/* ---- types -------------------------------------------------------------- */

static const struct {
	const char *name;
	enum gfs_base base;
} base_names[] = {
	{ "String", GFS_T_STRING }, { "Bool", GFS_T_BOOL },
	{ "I32", GFS_T_I32 },	    { "I64", GFS_T_I64 },
	{ "U32", GFS_T_U32 },	    { "U64", GFS_T_U64 },
	{ "F32", GFS_T_F32 },	    { "F64", GFS_T_F64 },
	{ "Date", GFS_T_DATE },	    { "DateTime", GFS_T_DATETIME },
	{ "Blob", GFS_T_BLOB },
};

static int enum_value(struct pctx *x, struct gfs_type *ty)
{
	struct loc at;
	size_t start;

	if (skip_ws(x))
		return x->rc;
	at = here(x);
	start = x->c.pos;
	while (is_ident(peek(x)) || peek(x) == '-')
		adv(x);
	if (x->c.pos == start)
		return perr(x, at, "expected an enum value ([A-Za-z0-9_-]+)");
	if (x->limits && x->c.pos - start > MAX_NAME)
		return perr(x, at, "enum value of %zu bytes is longer than the "
			    "limit of %d bytes", x->c.pos - start, MAX_NAME);
	if (x->limits && ty->n_enum >= MAX_ENUM)
		return perr(x, at, "more than %d values in one enum", MAX_ENUM);
	for (size_t i = 0; i < ty->n_enum; i++)
		if (strlen(ty->enum_vals[i]) == x->c.pos - start &&
		    !memcmp(ty->enum_vals[i], x->s + start, x->c.pos - start))
			return perr(x, at, "duplicate enum value '%.*s'",
				    shown(x->c.pos - start), x->s + start);
	return push_str(x, &ty->enum_vals, &ty->n_enum, x->s + start,
			x->c.pos - start);
}

static int parse_enum(struct pctx *x, struct gfs_type *ty)
{
	bool more = true;

	ty->base = GFS_T_ENUM;
	if (expect(x, '(', "after 'enum'"))
		return x->rc;
	while (more) {
		if (enum_value(x, ty) || accept(x, ',', &more))
			return x->rc;
	}
	return expect(x, ')', "or ',' in enum(...)");
}

static int parse_vector(struct pctx *x, struct gfs_type *ty)
{
	uint64_t dim;
	struct loc at;

	ty->base = GFS_T_VECTOR;
	if (expect(x, '(', "after 'Vector'") || skip_ws(x))
		return x->rc;
	at = here(x);
	if (read_u64(x, &dim, "in Vector(N)"))
		return x->rc;
	if (dim < 1 || dim > MAX_VECTOR_DIM)
		return perr(x, at,
			    "Vector dimension %" PRIu64 " out of range, "
			    "expected 1 to %u",
			    dim, MAX_VECTOR_DIM);
	ty->dim = (unsigned)dim;
	return expect(x, ')', "after the Vector dimension");
}

static int list_elem_ok(struct pctx *x, const struct tok *t,
			const struct gfs_type *ty)
{
	const char *bad = ty->base == GFS_T_ENUM     ? "enum"
			  : ty->base == GFS_T_VECTOR ? "Vector"
			  : ty->base == GFS_T_BLOB   ? "Blob"
						     : NULL;
	if (!bad)
		return 0;
	return perr(x, t->at,
		    "lists of %s are not allowed, expected an enum-free "
		    "scalar element type",
		    bad);
}

static int parse_base(struct pctx *x, struct gfs_type *ty, bool in_list)
{
	struct tok t;
	bool found;

	if (word(x, &t, &found))
		return x->rc;
	if (!found && in_list && peek(x) == '[')
		return perr(x, t.at, "lists of lists are not allowed, "
				     "expected a scalar element type");
	if (found && tok_is(&t, "enum")) {
		ty->base = GFS_T_ENUM;
		return in_list ? list_elem_ok(x, &t, ty) : parse_enum(x, ty);
	}
	if (found && tok_is(&t, "Vector")) {
		ty->base = GFS_T_VECTOR;
		return in_list ? list_elem_ok(x, &t, ty) : parse_vector(x, ty);
	}
	for (size_t i = 0; found && i < GFS_ARRAY_SIZE(base_names); i++) {
		if (tok_is(&t, base_names[i].name)) {
			ty->base = base_names[i].base;
			return in_list ? list_elem_ok(x, &t, ty) : 0;
		}
	}
	return perr(x, t.at,
		    "unknown type '%.*s', expected String, Bool, I32, I64, "
		    "U32, U64, F32, F64, Date, DateTime, Blob, enum(...), "
		    "Vector(N) or [T]",
		    shown(t.n), t.p);
}

static int parse_type(struct pctx *x, struct gfs_type *ty)
{
	bool got;

	if (accept(x, '[', &got))
		return x->rc;
	if (got) {
		ty->list = true;
		if (parse_base(x, ty, true) ||
		    expect(x, ']', "to close the list type"))
			return x->rc;
	} else if (parse_base(x, ty, false)) {
		return x->rc;
	}
	if (accept(x, '?', &got))
		return x->rc;
	ty->nullable = got;
	return 0;
}

static bool type_eq(const struct gfs_type *a, const struct gfs_type *b)
{
	if (a->base != b->base || a->list != b->list ||
	    a->nullable != b->nullable || a->dim != b->dim ||
	    a->n_enum != b->n_enum)
		return false;
	for (size_t i = 0; i < a->n_enum; i++)
		if (strcmp(a->enum_vals[i], b->enum_vals[i]))
			return false;
	return true;
}

/* ---- annotations -------------------------------------------------------- */

/* Trimmed copy of text[from, to) into *out. */
static int slice(struct pctx *x, size_t from, size_t to, char **out)
{
	while (from < to && is_space((unsigned char)x->s[from]))
		from++;
	while (to > from && is_space((unsigned char)x->s[to - 1]))
		to--;
	*out = gfs_memdup(x->s + from, to - from);
	return *out ? 0 : oom(x);
}

/* Skips a string inside raw arguments; the opening quote is next. */
static int skip_raw_string(struct pctx *x)
{
	struct loc open = here(x);

	for (adv(x); peek(x) != '"'; adv(x)) {
		if (peek(x) == '\\' && peek_at(x, 1) >= 0)
			adv(x);
		if (peek(x) < 0)
			return perr(x, open,
				    "unterminated string, expected '\"'");
	}
	adv(x);
	return 0;
}

/* Arguments of an annotation we do not interpret: everything up to the
 * matching ')', strings respected.  A depth counter, not recursion. */
static int raw_args(struct pctx *x, const struct tok *name, char **out)
{
	struct loc open = here(x);
	size_t from, depth = 1;

	adv(x);
	from = x->c.pos;
	while (depth) {
		int ch = peek(x);

		if (ch < 0)
			return perr(x, here(x),
				    "unterminated arguments of @%.*s (opened at "
				    "%u:%u), expected ')'",
				    shown(name->n), name->p, open.line,
				    open.col);
		if (ch == '"') {
			if (skip_raw_string(x))
				return x->rc;
			continue;
		}
		depth += ch == '(';
		depth -= ch == ')';
		adv(x);
	}
	return slice(x, from, x->c.pos - 1, out);
}

/* @name("text"): *str the unescaped text, *raw the text between parens. */
static int string_args(struct pctx *x, const struct tok *name, char **str,
		       char **raw)
{
	char what[NAME_SHOWN + 16];
	size_t from;

	*str = *raw = NULL;
	snprintf(what, sizeof what, "after '@%.*s'", shown(name->n), name->p);
	if (expect(x, '(', "%s", what))
		return x->rc;
	from = x->c.pos;
	snprintf(what, sizeof what, "in @%.*s(...)", shown(name->n), name->p);
	if (read_string(x, str, what) || expect(x, ')', "%s", what) ||
	    slice(x, from, x->c.pos - 1, raw)) {
		free(*str);
		*str = NULL;
		return x->rc;
	}
	return 0;
}

static bool is_meta_string(const struct tok *n)
{
	return tok_is(n, "description") || tok_is(n, "instruction") ||
	       tok_is(n, "rename_from");
}

static bool is_constraint(const struct tok *n)
{
	return tok_is(n, "key") || tok_is(n, "unique") || tok_is(n, "index") ||
	       tok_is(n, "range") || tok_is(n, "check");
}

static int push_annot(struct pctx *x, struct gfs_annot **arr, size_t *n,
		      const struct tok *name, char *raw)
{
	ssize_t i = push_zero(x, arr, n, sizeof **arr);

	if (i < 0) {
		free(raw);
		return x->rc;
	}
	(*arr)[i].args = raw;
	(*arr)[i].name = gfs_memdup(name->p, name->n);
	return (*arr)[i].name ? 0 : oom(x);
}

/* A metadata annotation (@description, @instruction, @rename_from or an
 * unknown one), already named; kept in arr.  *desc (may be NULL) receives
 * the @description text. */
static int meta_annot(struct pctx *x, const struct tok *name,
		      struct gfs_annot **arr, size_t *n, char **desc)
{
	char *raw = NULL, *str = NULL;

	if (is_meta_string(name)) {
		if (string_args(x, name, &str, &raw))
			return x->rc;
	} else {
		if (skip_ws(x))
			return x->rc;
		if (peek(x) == '(' && raw_args(x, name, &raw))
			return x->rc;
	}
	if (desc && tok_is(name, "description")) {
		if (*desc) {
			free(str);
			free(raw);
			return perr(x, name->at, "duplicate @description");
		}
		*desc = str;
		str = NULL;
	}
	free(str);
	return push_annot(x, arr, n, name, raw);
}

/* Reads '@' and the annotation name; at is the '@'. */
static int annot_name(struct pctx *x, struct tok *name, struct loc *at)
{
	bool found;

	*at = here(x);
	adv(x);
	if (word(x, name, &found))
		return x->rc;
	if (!found)
		return perr(x, name->at, "expected an annotation name after '@'");
	return 0;
}

/* ---- constraints -------------------------------------------------------- */

static ssize_t push_cons(struct pctx *x, struct gfs_typedef *t,
			 enum gfs_cons_kind kind, struct loc at)
{
	ssize_t i;

	if (x->limits && t->n_cons >= MAX_CONS)
		return perr(x, at, "more than %d constraints in '%s'",
			    MAX_CONS, t->name), -1;
	i = push_zero(x, &t->cons, &t->n_cons, sizeof *t->cons);
	if (i >= 0) {
		t->cons[i].kind = kind;
		t->cons[i].line = at.line;
		t->cons[i].col = at.col;
	}
	return i;
}

static int cons_prop(struct pctx *x, struct gfs_cons *c, const char *what)
{
	struct tok t;

	if (prop_name(x, &t, what))
		return x->rc;
	for (size_t i = 0; i < c->n_props; i++)
		if (tok_is(&t, c->props[i]))
			return perr(x, t.at, "property '%.*s' named twice %s",
				    shown(t.n), t.p, what);
	return push_str(x, &c->props, &c->n_props, t.p, t.n);
}

/* @key(a, b) / @unique(...) / @index(...): the name list. */
static int cons_list(struct pctx *x, struct gfs_cons *c, const struct tok *n)
{
	char what[32];
	bool more = true;

	snprintf(what, sizeof what, "in @%.*s(...)", shown(n->n), n->p);
	if (expect(x, '(', "after '@%.*s' in a body", shown(n->n), n->p))
		return x->rc;
	while (more)
		if (cons_prop(x, c, what) || accept(x, ',', &more))
			return x->rc;
	return expect(x, ')', "or ',' %s", what);
}

static bool bound_gt(const struct gfs_bound *lo, const struct gfs_bound *hi)
{
	if (lo->is_int && hi->is_int)
		return lo->i > hi->i;
	return lo->d > hi->d;
}

static int cons_range(struct pctx *x, struct gfs_cons *c)
{
	struct loc at;

	if (expect(x, '(', "after '@range'") ||
	    cons_prop(x, c, "in @range(...)") ||
	    expect(x, ',', "after the property name in @range(...)") ||
	    skip_ws(x))
		return x->rc;
	at = here(x);
	if (read_bound(x, &c->lo) || skip_ws(x))
		return x->rc;
	if (peek(x) != '.' || peek_at(x, 1) != '.')
		return perr(x, here(x), "expected '..' in @range(p, lo..hi)");
	adv(x);
	adv(x);
	if (read_bound(x, &c->hi) ||
	    expect(x, ')', "after the bounds of @range(...)"))
		return x->rc;
	if (!c->lo.set && !c->hi.set)
		return perr(x, at, "@range without bounds, expected lo.., ..hi "
				   "or lo..hi");
	if (c->lo.set && c->hi.set && bound_gt(&c->lo, &c->hi))
		return perr(x, at, "empty @range (lower bound above upper)");
	return 0;
}

/* Skips a bracket expression "[...]" at p (p at '['); returns the ']'
 * that closes it, or NULL.  Inside one a backslash is an ordinary byte. */
static const char *skip_bracket(const char *p)
{
	p++;
	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	for (; *p && *p != ']'; p++) {
		char k = p[1];

		if (*p != '[' || (k != ':' && k != '.' && k != '='))
			continue;
		for (p += 2; *p && !(*p == k && p[1] == ']'); p++)
			;
		if (!*p)
			return NULL;
		p++;
	}
	return *p ? p : NULL;
}

/* A back-reference (\1 .. \9, a glibc extension of ERE) makes glibc
 * match by backtracking: ^((a*)*)*(\1|\2)*$ took 13 s on a 101-byte value
 * (tests/limits.sh).  Without one its matcher is polynomial. */
static bool has_backref(const char *p)
{
	for (; *p; p++) {
		if (*p == '\\' && p[1] >= '1' && p[1] <= '9')
			return true;
		if (*p == '\\' && p[1])
			p++;
		else if (*p == '[' && !(p = skip_bracket(p)))
			return false; /* unterminated: regcomp refuses it */
	}
	return false;
}

#define RE_COST_CAP ((uint64_t)1 << 40)

static uint64_t re_mul(uint64_t a, uint64_t b)
{
	return b && a > RE_COST_CAP / b ? RE_COST_CAP : a * b;
}

/* How many copies of its operand a repetition at *pp makes in glibc's
 * regcomp ("+" is "a a*": 2; "{n,m}": m; "{n,}": n + 1; "*", "?": 1);
 * 0 when *pp is no repetition.  Moves *pp past it. */
static uint64_t re_dup(const char **pp, bool *min0)
{
	const char *p = *pp;
	unsigned long n = 0, m = 0;
	bool comma = false, have_m = false;

	*min0 = *p != '+';
	if (*p == '*' || *p == '?' || *p == '+') {
		*pp = p + 1;
		return *p == '+' ? 2 : 1;
	}
	if (*p != '{')
		return 0;
	for (p++; *p >= '0' && *p <= '9'; p++)
		n = n < 100000 ? n * 10 + (unsigned long)(*p - '0') : n;
	if (*p == ',') {
		comma = true;
		for (p++; *p >= '0' && *p <= '9'; p++, have_m = true)
			m = m < 100000 ? m * 10 + (unsigned long)(*p - '0') : m;
	}
	if (*p != '}')
		return 0; /* not an interval: regcomp decides */
	*pp = p + 1;
	*min0 = n == 0;
	if (!comma)
		return n ? n : 1;
	if (!have_m)
		return n + 1;
	return m > n ? m : (n ? n : 1);
}

/* An upper bound of the nodes glibc's regcomp builds for the ERE at *pp
 * up to an unmatched ')' or the end: it copies the operand of each
 * repetition (re_dup), so nested repetitions multiply.  "a+++...+" with
 * 20 '+' made it allocate 700 MB (found by fuzz/fuzz_schema's out-of-memory
 * report; tests/limits.sh).  depth bounds the recursion by the pattern's
 * length (MAX_REGEX).  Saturates at RE_COST_CAP.
 * *ncost grows by the size of every repetition of a part that can match
 * the empty string (*nullable: the whole can), times one more than what
 * such repetitions inside it cost: glibc's epsilon-closure work is about
 * cubic in one such repetition and exponential when they stack,
 * whatever the node count ("^a+++?++++++", about 2,000 nodes, did not
 * finish in minutes; "^(a?){0,255}" took 0.6 s: fuzz/fuzz_schema's timeout
 * report in CI). */
static uint64_t re_cost(const char **pp, unsigned depth, bool *nullable,
			uint64_t *ncost)
{
	const char *p = *pp;
	uint64_t total = 1, piece, n;
	bool alt_null = false, seq_null = true, empty, min0;

	while (*p && *p != ')') {
		const char *a = p;

		if (*p == '|') {
			p++;
			total++;
			alt_null = alt_null || seq_null;
			seq_null = true;
			continue;
		}
		empty = false;
		n = 0;
		if (*p == '(' && depth < MAX_REGEX) {
			p++;
			piece = re_cost(&p, depth + 1, &empty, &n) + 1;
			if (*p == ')')
				p++;
		} else if (*p == '[') {
			const char *e = skip_bracket(p);
			p = e ? e + 1 : p + strlen(p);
			piece = 1;
		} else {
			empty = *p == '^' || *p == '$'; /* anchors match "" */
			p += (*p == '\\' && p[1]) ? 2 : 1;
			piece = 1;
		}
		for (uint64_t k; (k = re_dup(&p, &min0)) != 0;) {
			piece = re_mul(piece, k) + 1;
			/* a repetition of what can match "": glibc's closure
			 * work grows with the cube of this, exponentially when
			 * stacked */
			if (empty) /* stacked: each multiplies what it repeats */
				n = re_mul(piece, n + 1);
			empty = empty || min0;
		}
		*ncost = *ncost + n > RE_COST_CAP ? RE_COST_CAP : *ncost + n;
		seq_null = seq_null && empty;
		if (p == a)
			p++;
		total = total + piece > RE_COST_CAP ? RE_COST_CAP : total + piece;
	}
	*nullable = alt_null || seq_null;
	*pp = p;
	return total;
}

static int cons_check(struct pctx *x, struct gfs_cons *c)
{
	char *pat, err[200];
	struct loc at;
	int rc;

	if (expect(x, '(', "after '@check'") ||
	    cons_prop(x, c, "in @check(...)") ||
	    expect(x, ',', "after the property name in @check(...)") ||
	    skip_ws(x))
		return x->rc;
	at = here(x);
	if (read_string(x, &pat, "(the regex) in @check(...)"))
		return x->rc;
	if (x->limits && strlen(pat) > MAX_REGEX) {
		free(pat);
		return perr(x, at, "regex of @check longer than the limit of "
			    "%d bytes", MAX_REGEX);
	}
	if (x->limits && has_backref(pat)) {
		free(pat);
		return perr(x, at, "back-reference in the regex of @check "
			    "(its matching can take exponential time), "
			    "expected a regex without \\1..\\9");
	}
	if (x->limits) {
		const char *q = pat;
		uint64_t cost = 0, ncost = 0;
		bool nullable;

		while (*q) {
			cost += re_cost(&q, 0, &nullable, &ncost);
			if (*q == ')') /* unmatched: regcomp refuses it */
				q++;
		}
		if (cost > MAX_REGEX_NODES) {
			free(pat);
			return perr(x, at, "regex of @check too large once "
				    "compiled (nested repetitions multiply: "
				    "about %" PRIu64 " nodes, the limit is %d), "
				    "expected fewer or smaller repetitions",
				    cost, MAX_REGEX_NODES);
		}
		if (ncost > MAX_REGEX_NULLREP) {
			free(pat);
			return perr(x, at, "regex of @check repeats parts that "
				    "can match the empty string too much (about "
				    "%" PRIu64 " nodes, the limit is %d; glibc's "
				    "regcomp takes cubic to exponential time in "
				    "them), expected e.g. a+ instead of (a?)+ or "
				    "(a*){0,50}", ncost, MAX_REGEX_NULLREP);
		}
	}
	rc = regcomp(&c->re, pat, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		regerror(rc, &c->re, err, sizeof err);
		free(pat);
		return perr(x, at, "bad regex in @check: %s", err);
	}
	c->pattern = pat;
	return expect(x, ')', "after the regex of @check(...)");
}

/* A '@' item inside a body: a constraint or a type-level annotation. */
static int body_annot(struct pctx *x, struct gfs_typedef *t,
		      enum decl_kind kind)
{
	static const enum gfs_cons_kind kinds[] = {
		GFS_C_KEY, GFS_C_UNIQUE, GFS_C_INDEX, GFS_C_RANGE, GFS_C_CHECK
	};
	static const char *const names[] = { "key", "unique", "index",
					     "range", "check" };
	struct tok n;
	struct loc at;
	ssize_t ci;
	size_t k;

	if (annot_name(x, &n, &at))
		return x->rc;
	if (tok_is(&n, "embed") || tok_is(&n, "card"))
		return perr(x, at, "@%.*s not allowed here, expected it %s",
			    shown(n.n), n.p,
			    n.p[0] == 'e' ? "after a Vector property"
					  : "after an edge's endpoints");
	if (!is_constraint(&n))
		return meta_annot(x, &n, &t->annots, &t->n_annots,
				  &t->description);
	if (kind == K_IFACE)
		return perr(x, at, "constraint @%.*s not allowed in interface "
				   "'%s', expected properties only",
			    shown(n.n), n.p, t->name);
	if (kind == K_EDGE && tok_is(&n, "key"))
		return perr(x, at, "@key not allowed on edges");
	for (k = 0; !tok_is(&n, names[k]); k++)
		;
	ci = push_cons(x, t, kinds[k], at);
	if (ci < 0)
		return x->rc;
	if (k < 3)
		return cons_list(x, &t->cons[ci], &n);
	return k == 3 ? cons_range(x, &t->cons[ci]) : cons_check(x, &t->cons[ci]);
}

/* ---- properties --------------------------------------------------------- */

/* @key / @unique / @index after a property: a flag plus a one-prop cons. */
static int prop_flag(struct pctx *x, struct gfs_typedef *t, size_t pi,
		     const struct tok *n, struct loc at, enum decl_kind kind)
{
	struct gfs_prop *p = &t->props[pi];
	enum gfs_cons_kind ck = tok_is(n, "key")      ? GFS_C_KEY
				: tok_is(n, "unique") ? GFS_C_UNIQUE
						      : GFS_C_INDEX;
	bool *flag = ck == GFS_C_KEY ? &p->key
		     : ck == GFS_C_UNIQUE ? &p->unique : &p->index;
	ssize_t ci;

	if (kind == K_EDGE && ck == GFS_C_KEY)
		return perr(x, at, "@key not allowed on edges");
	if (*flag)
		return perr(x, at, "duplicate @%.*s on property '%s'",
			    shown(n->n), n->p, p->name);
	*flag = true;
	ci = push_cons(x, t, ck, at);
	if (ci < 0)
		return x->rc;
	return push_str(x, &t->cons[ci].props, &t->cons[ci].n_props, p->name,
			strlen(p->name));
}

static int prop_embed(struct pctx *x, struct gfs_prop *p, struct loc at)
{
	struct tok n = { "embed", 5, at };
	char *raw;

	if (p->type.base != GFS_T_VECTOR)
		return perr(x, at, "@embed not allowed on non-Vector property "
				   "'%s', expected a Vector(N) property",
			    p->name);
	if (p->embed)
		return perr(x, at, "duplicate @embed on property '%s'", p->name);
	if (string_args(x, &n, &p->embed, &raw))
		return x->rc;
	free(raw);
	return 0;
}

/* One annotation after a property's type.  *done: it belongs to the body
 * instead (a constraint with arguments), and the reader is rewound. */
static int prop_annot(struct pctx *x, struct gfs_typedef *t, size_t pi,
		      enum decl_kind kind, bool *done)
{
	struct cur save = x->c;
	struct tok n;
	struct loc at;

	if (annot_name(x, &n, &at) || skip_ws(x))
		return x->rc;
	if (tok_is(&n, "range") || tok_is(&n, "check") ||
	    (is_constraint(&n) && peek(x) == '(')) {
		x->c = save;
		*done = true;
		return 0;
	}
	if (is_constraint(&n))
		return prop_flag(x, t, pi, &n, at, kind);
	if (tok_is(&n, "embed"))
		return prop_embed(x, &t->props[pi], at);
	if (tok_is(&n, "card"))
		return perr(x, at, "@card not allowed on a property, expected "
				   "it after an edge's endpoints");
	return meta_annot(x, &n, &t->props[pi].annots, &t->props[pi].n_annots,
			  NULL);
}

static int parse_prop(struct pctx *x, struct gfs_typedef *t,
		      enum decl_kind kind)
{
	struct tok n;
	ssize_t pi;
	bool done = false;

	if (prop_name(x, &n, "") || check_reserved(x, &n, kind))
		return x->rc;
	pi = find_prop_tok(t, &n);
	if (pi >= 0)
		return perr(x, n.at, "duplicate property '%.*s' (first "
				     "declared at %u:%u)",
			    shown(n.n), n.p, t->props[pi].line,
			    t->props[pi].col);
	if (x->limits && t->n_props >= MAX_PROPS)
		return perr(x, n.at, "more than %d properties in '%s'",
			    MAX_PROPS, t->name);
	pi = push_zero(x, &t->props, &t->n_props, sizeof *t->props);
	if (pi < 0)
		return x->rc;
	t->props[pi].line = n.at.line;
	t->props[pi].col = n.at.col;
	t->props[pi].name = gfs_memdup(n.p, n.n);
	if (!t->props[pi].name)
		return oom(x);
	if (expect(x, ':', "after property name '%.*s'", shown(n.n), n.p) ||
	    parse_type(x, &t->props[pi].type))
		return x->rc;
	while (!done) {
		if (skip_ws(x))
			return x->rc;
		if (peek(x) != '@')
			return 0;
		if (prop_annot(x, t, (size_t)pi, kind, &done))
			return x->rc;
	}
	return 0;
}

/* { props | constraints }, the '{' already read at open. */
static int parse_body(struct pctx *x, struct gfs_typedef *t,
		      enum decl_kind kind, struct loc open)
{
	for (;;) {
		int ch;

		if (skip_ws(x))
			return x->rc;
		ch = peek(x);
		if (ch == '}' || ch == ',') {
			adv(x);
			if (ch == '}')
				return 0;
		} else if (ch == '@') {
			if (body_annot(x, t, kind))
				return x->rc;
		} else if (is_ident_start(ch)) {
			if (parse_prop(x, t, kind))
				return x->rc;
		} else if (ch < 0) {
			return perr(x, here(x),
				    "unterminated body of '%s' (opened at "
				    "%u:%u), expected '}'",
				    t->name, open.line, open.col);
		} else {
			return perr(x, here(x),
				    "expected a property, a constraint or '}' "
				    "in the body of '%s'",
				    t->name);
		}
	}
}

/* ---- declarations ------------------------------------------------------- */

static const struct gfs_typedef *find_decl(const struct pctx *x,
					   const struct tok *n, bool *iface)
{
	for (size_t i = 0; i < x->sch->n_types; i++) {
		if (tok_is(n, x->sch->types[i].name)) {
			*iface = false;
			return &x->sch->types[i];
		}
	}
	for (size_t i = 0; i < x->n_ifaces; i++) {
		if (tok_is(n, x->ifaces[i].name)) {
			*iface = true;
			return &x->ifaces[i];
		}
	}
	return NULL;
}

/* Reads the declared name and pushes a new typedef (plus its side entry). */
static struct gfs_typedef *new_decl(struct pctx *x, enum decl_kind kind,
				    struct loc kw, const char *what)
{
	const struct gfs_typedef *old;
	struct gfs_typedef *t;
	struct tok n;
	ssize_t i;
	bool iface;

	if (type_name(x, &n, what))
		return NULL;
	if (x->limits && x->sch->n_types + x->n_ifaces >= MAX_TYPES)
		return perr(x, kw, "more than %d declarations in one schema",
			    MAX_TYPES), NULL;
	old = find_decl(x, &n, &iface);
	if (old)
		return perr(x, kw, "duplicate type '%.*s' (first declared at "
				   "%u:%u)",
			    shown(n.n), n.p, old->line, old->col), NULL;
	if (kind == K_IFACE) {
		i = push_zero(x, &x->ifaces, &x->n_ifaces, sizeof *x->ifaces);
		t = i < 0 ? NULL : &x->ifaces[i];
	} else {
		if (push_zero(x, &x->side, &x->n_side, sizeof *x->side) < 0)
			return NULL;
		i = push_zero(x, &x->sch->types, &x->sch->n_types,
			      sizeof *x->sch->types);
		t = i < 0 ? NULL : &x->sch->types[i];
	}
	if (!t)
		return NULL;
	t->is_edge = kind == K_EDGE;
	t->from_idx = t->to_idx = SIZE_MAX;
	t->line = n.at.line;
	t->col = n.at.col;
	t->name = gfs_memdup(n.p, n.n);
	return t->name ? t : (oom(x), NULL);
}

/* @card(min..[max]); *raw the text between the parentheses. */
static int edge_card(struct pctx *x, struct gfs_typedef *t, struct loc at,
		     char **raw)
{
	size_t from;
	bool got;

	if (t->has_card)
		return perr(x, at, "duplicate @card on edge '%s'", t->name);
	t->has_card = true;
	t->card_max = UINT64_MAX;
	if (expect(x, '(', "after '@card'"))
		return x->rc;
	from = x->c.pos;
	if (read_u64(x, &t->card_min, "(the minimum) in @card(min..max)") ||
	    skip_ws(x))
		return x->rc;
	if (peek(x) != '.' || peek_at(x, 1) != '.')
		return perr(x, here(x), "expected '..' in @card(min..max)");
	adv(x);
	adv(x);
	if (skip_ws(x))
		return x->rc;
	if (is_digit(peek(x)) &&
	    read_u64(x, &t->card_max, "(the maximum) in @card(min..max)"))
		return x->rc;
	if (accept(x, ')', &got))
		return x->rc;
	if (!got)
		return perr(x, here(x), "expected ')' after the bounds of @card");
	if (t->card_max < t->card_min || t->card_max == 0)
		return perr(x, at, "empty @card range on edge '%s', expected "
				   "min <= max and max >= 1",
			    t->name);
	return slice(x, from, x->c.pos - 1, raw);
}

/* Annotations between a declaration's name/endpoints and its body. */
static int type_annots(struct pctx *x, struct gfs_typedef *t,
		       enum decl_kind kind)
{
	struct tok n;
	struct loc at;
	char *raw;

	for (;;) {
		if (skip_ws(x))
			return x->rc;
		if (peek(x) != '@')
			return 0;
		if (annot_name(x, &n, &at))
			return x->rc;
		if (is_constraint(&n) || tok_is(&n, "embed"))
			return perr(x, at, "@%.*s not allowed before the body "
					   "of '%s', expected it inside '{ }'",
				    shown(n.n), n.p, t->name);
		if (!tok_is(&n, "card")) {
			if (meta_annot(x, &n, &t->annots, &t->n_annots,
				       &t->description))
				return x->rc;
			continue;
		}
		if (kind != K_EDGE)
			return perr(x, at, "@card not allowed on '%s', expected "
					   "it on an edge", t->name);
		if (edge_card(x, t, at, &raw) ||
		    push_annot(x, &t->annots, &t->n_annots, &n, raw))
			return x->rc;
	}
}

static int implements_list(struct pctx *x, struct gfs_typedef *t,
			   struct tside *sd)
{
	bool more = true;
	struct tok n;

	while (more) {
		if (type_name(x, &n, "after 'implements'"))
			return x->rc;
		if (x->limits && t->n_implements >= MAX_IMPLEMENTS)
			return perr(x, n.at, "more than %d interfaces in "
				    "'implements'", MAX_IMPLEMENTS);
		for (size_t i = 0; i < t->n_implements; i++)
			if (tok_is(&n, t->implements[i]))
				return perr(x, n.at, "interface '%.*s' listed "
						     "twice in 'implements'",
					    shown(n.n), n.p);
		if (grow(&sd->impl, sd->n_impl, sizeof *sd->impl))
			return oom(x);
		sd->impl[sd->n_impl++] = n.at;
		if (push_str(x, &t->implements, &t->n_implements, n.p, n.n) ||
		    accept(x, ',', &more))
			return x->rc;
	}
	return 0;
}

static int open_body(struct pctx *x, struct gfs_typedef *t,
		     enum decl_kind kind, const char *after)
{
	struct loc open;

	if (skip_ws(x))
		return x->rc;
	open = here(x);
	if (peek(x) != '{')
		return perr(x, open, "expected '{' %s '%s'", after, t->name);
	adv(x);
	return parse_body(x, t, kind, open);
}

static int parse_node(struct pctx *x, struct loc kw)
{
	struct gfs_typedef *t = new_decl(x, K_NODE, kw, "after 'node'");
	struct tok w;
	bool found;

	if (!t || type_annots(x, t, K_NODE) || word(x, &w, &found))
		return x->rc;
	if (found && !tok_is(&w, "implements"))
		return perr(x, w.at, "expected 'implements' or '{' after node "
				     "'%s'",
			    t->name);
	if (found && implements_list(x, t, &x->side[x->n_side - 1]))
		return x->rc;
	return open_body(x, t, K_NODE, "to open the body of node");
}

static int parse_iface(struct pctx *x, struct loc kw)
{
	struct gfs_typedef *t = new_decl(x, K_IFACE, kw, "after 'interface'");

	if (!t || type_annots(x, t, K_IFACE))
		return x->rc;
	return open_body(x, t, K_IFACE, "to open the body of interface");
}

static int endpoint_name(struct pctx *x, const struct gfs_typedef *t,
			 char **name, struct loc *at, const char *which)
{
	char what[NAME_SHOWN + 48];
	struct tok n;

	snprintf(what, sizeof what, "(the %s node type) of edge '%s'", which,
		 t->name);
	if (type_name(x, &n, what))
		return x->rc;
	*at = n.at;
	*name = gfs_memdup(n.p, n.n);
	return *name ? 0 : oom(x);
}

static int parse_edge(struct pctx *x, struct loc kw)
{
	struct gfs_typedef *t = new_decl(x, K_EDGE, kw, "after 'edge'");
	struct tside *sd;

	if (!t)
		return x->rc;
	sd = &x->side[x->n_side - 1];
	if (expect(x, ':', "after edge name '%s'", t->name) ||
	    endpoint_name(x, t, &t->from, &sd->from, "source") || skip_ws(x))
		return x->rc;
	if (peek(x) != '-' || peek_at(x, 1) != '>')
		return perr(x, here(x), "expected '->' after the source type "
					"of edge '%s'",
			    t->name);
	adv(x);
	adv(x);
	if (endpoint_name(x, t, &t->to, &sd->to, "target") ||
	    type_annots(x, t, K_EDGE) || skip_ws(x))
		return x->rc;
	if (peek(x) != '{')
		return 0; /* the body is optional */
	return open_body(x, t, K_EDGE, "to open the body of edge");
}

static int parse_decls(struct pctx *x)
{
	struct tok kw;
	bool found;

	for (;;) {
		if (word(x, &kw, &found))
			return x->rc;
		if (!found && peek(x) < 0)
			return 0;
		if (found && tok_is(&kw, "node"))
			parse_node(x, kw.at);
		else if (found && tok_is(&kw, "edge"))
			parse_edge(x, kw.at);
		else if (found && tok_is(&kw, "interface"))
			parse_iface(x, kw.at);
		else
			return perr(x, kw.at, "expected 'node', 'edge' or "
					      "'interface'");
		if (x->rc)
			return x->rc;
	}
}

/* ---- phase 2: endpoints ------------------------------------------------- */

static int endpoint(struct pctx *x, const struct gfs_typedef *e,
		    const char *name, struct loc at, size_t *idx)
{
	for (size_t i = 0; i < x->sch->n_types; i++) {
		if (strcmp(x->sch->types[i].name, name))
			continue;
		if (x->sch->types[i].is_edge)
			return perr(x, at, "endpoint '%s' of edge '%s' is an "
					   "edge, expected a node type",
				    name, e->name);
		*idx = i;
		return 0;
	}
	for (size_t i = 0; i < x->n_ifaces; i++)
		if (!strcmp(x->ifaces[i].name, name))
			return perr(x, at, "endpoint '%s' of edge '%s' is an "
					   "interface, expected a node type",
				    name, e->name);
	return perr(x, at, "unknown node type '%s' in edge '%s'", name,
		    e->name);
}

/* ---- phase 2: interfaces ------------------------------------------------ */

static int strv_copy(char ***dst, size_t *dn, char *const *src, size_t n)
{
	*dst = NULL;
	*dn = 0;
	if (!n)
		return 0;
	*dst = calloc(n, sizeof **dst);
	if (!*dst)
		return -ENOMEM;
	for (; *dn < n; (*dn)++) {
		(*dst)[*dn] = gfs_strdup(src[*dn]);
		if (!(*dst)[*dn])
			return -ENOMEM;
	}
	return 0;
}

static int annots_copy(struct gfs_annot **dst, size_t *dn,
		       const struct gfs_annot *src, size_t n)
{
	*dst = NULL;
	*dn = 0;
	if (!n)
		return 0;
	*dst = calloc(n, sizeof **dst);
	if (!*dst)
		return -ENOMEM;
	for (; *dn < n; (*dn)++) {
		struct gfs_annot *a = &(*dst)[*dn];

		a->name = gfs_strdup(src[*dn].name);
		a->args = gfs_strdup(src[*dn].args);
		if (!a->name || (src[*dn].args && !a->args)) {
			(*dn)++; /* release what was copied */
			return -ENOMEM;
		}
	}
	return 0;
}

/* dst is zeroed; on failure it holds a partial copy for prop_release. */
static int prop_copy(struct gfs_prop *dst, const struct gfs_prop *src)
{
	*dst = *src;
	dst->name = gfs_strdup(src->name);
	dst->embed = gfs_strdup(src->embed);
	dst->type.enum_vals = NULL;
	dst->type.n_enum = 0;
	dst->annots = NULL;
	dst->n_annots = 0;
	if (!dst->name || (src->embed && !dst->embed))
		return -ENOMEM;
	if (strv_copy(&dst->type.enum_vals, &dst->type.n_enum,
		      src->type.enum_vals, src->type.n_enum))
		return -ENOMEM;
	return annots_copy(&dst->annots, &dst->n_annots, src->annots,
			   src->n_annots);
}

static int cons_copy(struct gfs_cons *dst, const struct gfs_cons *src)
{
	char *pat;

	*dst = *src;
	dst->pattern = NULL;
	if (strv_copy(&dst->props, &dst->n_props, src->props, src->n_props))
		return -ENOMEM;
	if (src->kind != GFS_C_CHECK || !src->pattern)
		return 0;
	pat = gfs_strdup(src->pattern);
	if (!pat || regcomp(&dst->re, pat, REG_EXTENDED | REG_NOSUB)) {
		free(pat);
		return -ENOMEM;
	}
	dst->pattern = pat;
	return 0;
}

/* A property of interface ifs[i] is copied into t when t does not declare
 * it and no earlier interface supplied it. */
static bool copied_from(const struct gfs_typedef *t,
			const struct gfs_typedef *const *ifs, size_t i,
			const char *name)
{
	if (find_prop(t->props, t->n_props, name) >= 0)
		return false;
	for (size_t j = 0; j < i; j++)
		if (find_prop(ifs[j]->props, ifs[j]->n_props, name) >= 0)
			return false;
	return true;
}

static int find_iface(struct pctx *x, const struct gfs_typedef *t, size_t k,
		      struct loc at, const struct gfs_typedef **out)
{
	const char *name = t->implements[k];

	for (size_t i = 0; i < x->n_ifaces; i++) {
		if (!strcmp(x->ifaces[i].name, name)) {
			*out = &x->ifaces[i];
			return 0;
		}
	}
	for (size_t i = 0; i < x->sch->n_types; i++)
		if (!strcmp(x->sch->types[i].name, name))
			return perr(x, at, "'%s' is %s, expected an interface "
					   "after 'implements'",
				    name, x->sch->types[i].is_edge ? "an edge"
								   : "a node");
	return perr(x, at, "unknown interface '%s' implemented by '%s'", name,
		    t->name);
}

static int check_conflicts(struct pctx *x, const struct gfs_typedef *t,
			   const struct gfs_typedef *const *ifs,
			   const struct tside *sd)
{
	for (size_t k = 0; k < t->n_implements; k++) {
		for (size_t j = 0; j < ifs[k]->n_props; j++) {
			const struct gfs_prop *ip = &ifs[k]->props[j];
			ssize_t own = find_prop(t->props, t->n_props, ip->name);

			if (own >= 0 && !type_eq(&ip->type, &t->props[own].type))
				return perr(x,
					    (struct loc){ t->props[own].line,
							  t->props[own].col },
					    "property '%s' of '%s' differs in "
					    "type from interface '%s', expected "
					    "the same type",
					    ip->name, t->name, ifs[k]->name);
			for (size_t i = 0; own < 0 && i < k; i++) {
				ssize_t q = find_prop(ifs[i]->props,
						      ifs[i]->n_props, ip->name);

				if (q >= 0 &&
				    !type_eq(&ip->type, &ifs[i]->props[q].type))
					return perr(x, sd->impl[k],
						    "interfaces '%s' and '%s' "
						    "declare property '%s' with "
						    "different types",
						    ifs[i]->name, ifs[k]->name,
						    ip->name);
			}
		}
	}
	return 0;
}

/* Prepends the implemented property-level constraints to t->cons.  Runs
 * before merge_props: copied_from() must see only t's own properties. */
static int merge_cons(struct pctx *x, struct gfs_typedef *t,
		      const struct gfs_typedef *const *ifs)
{
	size_t bound = t->n_cons, k = 0;
	struct gfs_cons *nc;

	for (size_t i = 0; i < t->n_implements; i++)
		bound += ifs[i]->n_cons;
	if (x->limits && bound > MAX_CONS)
		return perr(x, (struct loc){ t->line, t->col },
			    "more than %d constraints in '%s' with those of "
			    "the interfaces it implements", MAX_CONS, t->name);
	nc = calloc(bound ? bound : 1, sizeof *nc);
	if (!nc)
		return oom(x);
	for (size_t i = 0; i < t->n_implements; i++) {
		for (size_t j = 0; j < ifs[i]->n_cons; j++) {
			const struct gfs_cons *c = &ifs[i]->cons[j];

			if (c->n_props != 1 || !copied_from(t, ifs, i, c->props[0]))
				continue;
			if (cons_copy(&nc[k++], c))
				goto out_free;
		}
	}
	if (t->n_cons)
		memcpy(nc + k, t->cons, t->n_cons * sizeof *nc);
	free(t->cons);
	t->cons = nc;
	t->n_cons += k;
	return 0;
out_free:
	while (k)
		cons_release(&nc[--k]);
	free(nc);
	return oom(x);
}

static int merge_props(struct pctx *x, struct gfs_typedef *t,
		       const struct gfs_typedef *const *ifs)
{
	size_t bound = t->n_props, k = 0;
	struct gfs_prop *np;

	for (size_t i = 0; i < t->n_implements; i++)
		bound += ifs[i]->n_props;
	/* counted per interface, shared names too: the merge below compares
	 * every pair, so the bound comes first */
	if (x->limits && bound > MAX_PROPS)
		return perr(x, (struct loc){ t->line, t->col },
			    "more than %d properties in '%s' with those of "
			    "the interfaces it implements", MAX_PROPS,
			    t->name);
	np = calloc(bound ? bound : 1, sizeof *np);
	if (!np)
		return oom(x);
	for (size_t i = 0; i < t->n_implements; i++) {
		for (size_t j = 0; j < ifs[i]->n_props; j++) {
			const struct gfs_prop *ip = &ifs[i]->props[j];

			if (!copied_from(t, ifs, i, ip->name))
				continue;
			if (prop_copy(&np[k++], ip))
				goto out_free;
		}
	}
	if (t->n_props)
		memcpy(np + k, t->props, t->n_props * sizeof *np);
	free(t->props);
	t->props = np;
	t->n_props += k;
	return 0;
out_free:
	while (k)
		prop_release(&np[--k]);
	free(np);
	return oom(x);
}

static int implement(struct pctx *x, struct gfs_typedef *t,
		     const struct tside *sd)
{
	const struct gfs_typedef **ifs = calloc(t->n_implements, sizeof *ifs);

	if (!ifs)
		return oom(x);
	for (size_t k = 0; k < t->n_implements && !x->rc; k++)
		find_iface(x, t, k, sd->impl[k], &ifs[k]);
	if (!x->rc && !check_conflicts(x, t, ifs, sd) &&
	    !merge_cons(x, t, ifs))
		merge_props(x, t, ifs);
	free(ifs);
	return x->rc;
}

/* ---- phase 2: checks ---------------------------------------------------- */

static const char *cons_name(enum gfs_cons_kind k)
{
	static const char *const names[] = { "key", "unique", "index",
					     "range", "check" };

	return names[k];
}

static int key_prop_ok(struct pctx *x, const struct gfs_prop *p,
		       struct loc at)
{
	const struct gfs_type *ty = &p->type;
	const char *bad = ty->list		       ? "list"
			  : ty->base == GFS_T_VECTOR ? "Vector"
			  : ty->base == GFS_T_BLOB   ? "Blob"
			  : ty->nullable	       ? "nullable"
			  : ty->base == GFS_T_F32 || ty->base == GFS_T_F64
			      ? "floating-point"
			      : NULL;

	if (!bad)
		return 0;
	return perr(x, at, "@key not allowed on %s property '%s'", bad,
		    p->name);
}

static bool is_numeric(enum gfs_base b)
{
	return b >= GFS_T_I32 && b <= GFS_T_F64;
}

/* The one-property rules of @range and @check. */
static int value_cons_ok(struct pctx *x, const struct gfs_cons *c,
			 const struct gfs_prop *p, struct loc at)
{
	if (c->kind == GFS_C_RANGE && (p->type.list || !is_numeric(p->type.base)))
		return perr(x, at, "@range not allowed on property '%s', "
				   "expected a numeric (I32..F64) property",
			    p->name);
	if (c->kind == GFS_C_CHECK &&
	    (p->type.list || p->type.base != GFS_T_STRING))
		return perr(x, at, "@check not allowed on property '%s', "
				   "expected a String property",
			    p->name);
	return 0;
}

static int set_key(struct pctx *x, struct gfs_typedef *t,
		   const struct gfs_cons *c)
{
	t->key = calloc(c->n_props, sizeof *t->key);
	if (!t->key)
		return oom(x);
	for (size_t i = 0; i < c->n_props; i++)
		t->key[i] = (size_t)find_prop(t->props, t->n_props, c->props[i]);
	t->n_key = c->n_props;
	return 0;
}

static int one_cons(struct pctx *x, const struct gfs_typedef *t,
		    const struct gfs_cons *c, const struct gfs_cons **key)
{
	struct loc at = { c->line, c->col };
	bool ends = t->is_edge &&
		    (c->kind == GFS_C_UNIQUE || c->kind == GFS_C_INDEX);

	if (c->kind == GFS_C_KEY && t->is_edge)
		return perr(x, at, "@key not allowed on edges");
	if (c->kind == GFS_C_KEY && *key)
		return perr(x, at, "second key for '%s' (first at %u:%u), "
				   "expected one key per node type; use "
				   "@key(a, b) for a composite key",
			    t->name, (*key)->line, (*key)->col);
	if (c->kind == GFS_C_KEY)
		*key = c;
	for (size_t j = 0; j < c->n_props; j++) {
		const char *n = c->props[j];
		ssize_t pi = find_prop(t->props, t->n_props, n);

		if (pi < 0 && ends && (!strcmp(n, "src") || !strcmp(n, "dst")))
			continue;
		if (pi < 0)
			return perr(x, at, "unknown property '%s' in @%s of "
					   "'%s'",
				    n, cons_name(c->kind), t->name);
		if ((c->kind == GFS_C_KEY && key_prop_ok(x, &t->props[pi], at)) ||
		    value_cons_ok(x, c, &t->props[pi], at))
			return x->rc;
	}
	return 0;
}

static int check_embeds(struct pctx *x, const struct gfs_typedef *t)
{
	for (size_t i = 0; i < t->n_props; i++) {
		const struct gfs_prop *p = &t->props[i];
		ssize_t q;

		if (!p->embed)
			continue;
		q = find_prop(t->props, t->n_props, p->embed);
		if (q < 0 || t->props[q].type.base != GFS_T_STRING ||
		    t->props[q].type.list)
			return perr(x, (struct loc){ p->line, p->col },
				    "@embed on '%s' names '%s', expected a "
				    "String property of '%s'",
				    p->name, p->embed, t->name);
	}
	return 0;
}

static int check_type(struct pctx *x, struct gfs_typedef *t, bool iface)
{
	const struct gfs_cons *key = NULL;
	size_t uniq = 0;

	for (size_t i = 0; i < t->n_cons; i++) {
		if (one_cons(x, t, &t->cons[i], &key))
			return x->rc;
		if (x->limits && t->cons[i].kind == GFS_C_UNIQUE &&
		    ++uniq > MAX_UNIQUE)
			return perr(x, (struct loc){ t->cons[i].line,
						     t->cons[i].col },
				    "more than %d @unique constraints in '%s'",
				    MAX_UNIQUE, t->name);
	}
	if (!iface && check_embeds(x, t))
		return x->rc;
	return key && !iface ? set_key(x, t, key) : 0;
}

static int resolve(struct pctx *x)
{
	struct gfs_schema *s = x->sch;

	for (size_t i = 0; i < x->n_ifaces; i++)
		if (check_type(x, &x->ifaces[i], true))
			return x->rc;
	for (size_t i = 0; i < s->n_types; i++) {
		struct gfs_typedef *t = &s->types[i];
		const struct tside *sd = &x->side[i];

		if (t->is_edge &&
		    (endpoint(x, t, t->from, sd->from, &t->from_idx) ||
		     endpoint(x, t, t->to, sd->to, &t->to_idx)))
			return x->rc;
		if (!t->is_edge && t->n_implements && implement(x, t, sd))
			return x->rc;
	}
	for (size_t i = 0; i < s->n_types; i++)
		if (check_type(x, &s->types[i], false))
			return x->rc;
	return 0;
}

/* ---- public ------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, at most U+10FFFF), 0 if there is none. */
static size_t utf8_len(const unsigned char *s, size_t len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, lo = s[0] == 0xe0 ? 0xa0 : 0x80,
		hi = s[0] == 0xed ? 0x9f : 0xbf;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, lo = s[0] == 0xf0 ? 0x90 : 0x80,
		hi = s[0] == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (n > len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

int gfs_schema_check_text(const char *text, size_t len, const char *filename,
			  struct gfs_diag *d)
{
	const unsigned char *u = (const unsigned char *)text;
	size_t i = 0, lstart = 0, q;
	unsigned line = 1;

	if (!filename)
		filename = "<schema>";
	if (len > GFS_SCHEMA_MAX_TEXT) {
		gfs_diag_set(d, "%s: schema of %zu bytes is longer than the "
			     "limit of %zu bytes (1 MiB)", filename, len,
			     GFS_SCHEMA_MAX_TEXT);
		return GFS_ESCHEMA;
	}
	for (; i < len; i += q) {
		q = u[i] ? utf8_len(u + i, len - i) : 0;
		if (!q) {
			gfs_diag_set(d, "%s:%u:%zu: %s (byte 0x%02x), expected "
				     "UTF-8 text", filename, line,
				     i - lstart + 1, u[i] ? "invalid UTF-8"
				     : "a NUL byte", u[i]);
			return GFS_ESCHEMA;
		}
		if (u[i] == '\n')
			line++, lstart = i + 1;
	}
	return 0;
}

static int parse(const char *text, size_t len, const char *filename,
		 bool limits, struct gfs_schema **out, struct gfs_diag *d)
{
	struct pctx x = { .limits = limits };

	*out = NULL;
	x.s = text ? text : "";
	x.n = text ? len : 0;
	x.c.line = 1;
	x.file = filename ? filename : "<schema>";
	x.d = d;
	x.sch = calloc(1, sizeof *x.sch);
	if (!x.sch)
		return oom(&x);
	x.sch->text = gfs_memdup(x.s, x.n);
	x.sch->text_len = x.n;
	snprintf(x.sch->id, sizeof x.sch->id, "%016" PRIx64,
		 gfs_hash64(x.s, x.n));
	if (!x.sch->text)
		oom(&x);
	else if (!parse_decls(&x))
		resolve(&x);
	ctx_release(&x);
	if (x.rc) {
		gfs_schema_free(x.sch);
		return x.rc;
	}
	*out = x.sch;
	return 0;
}

int gfs_schema_parse(const char *text, size_t len, const char *filename,
		     struct gfs_schema **out, struct gfs_diag *d)
{
	return parse(text, len, filename, true, out, d);
}

int gfs_schema_parse_stored(const char *text, size_t len,
			    const char *filename, struct gfs_schema **out,
			    struct gfs_diag *d)
{
	return parse(text, len, filename, false, out, d);
}

const struct gfs_typedef *gfs_schema_find(const struct gfs_schema *s,
					  const char *name)
{
	for (size_t i = 0; s && name && i < s->n_types; i++)
		if (!strcmp(s->types[i].name, name))
			return &s->types[i];
	return NULL;
}

int gfs_typedef_prop(const struct gfs_typedef *t, const char *name)
{
	if (!t || !name)
		return -1;
	return (int)find_prop(t->props, t->n_props, name);
}

const char *gfs_typedef_table(const struct gfs_typedef *t, char *buf,
			      size_t n)
{
	if (n)
		snprintf(buf, n, "%s:%s", t->is_edge ? "edge" : "node",
			 t->name);
	return buf;
}
