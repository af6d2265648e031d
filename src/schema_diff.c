/* schema_diff.c - what a schema change means for the rows (schema_apply.h).
 *
 * Rules (docs/semantics.md "Schema changes"):
 *   allowed:  new node/edge types; new optional properties; a property
 *             made optional; new, changed or removed constraints (@unique,
 *             @range, @check, @card, enum values, a property made
 *             required): the ones that can fail are checked against the
 *             rows; properties reordered (rows rewritten in the new
 *             order); annotations kept as metadata.
 *   refused:  removing (or renaming) a property, unless --drop-property
 *             T.p (rewrite without it); a new required property, unless
 *             --default T.p=JSON (rewrite with it); changing a property's
 *             type; changing @key; changing an edge's endpoints or a
 *             node into an edge; removing a type.
 *   A type whose table has no rows may change in any way (nothing to
 *   rewrite), and may be removed.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema_apply.h"
#include "schema_apply_int.h"

static const char *const base_names[] = {
	"String", "Bool", "I32", "I64", "U32", "U64", "F32", "F64", "Date",
	"DateTime", "Blob", "enum", "Vector",
};

/* "I32?", "[String]", "enum(a, b)?", "Vector(3)" into buf. */
static const char *type_str(const struct gfs_type *t, char *buf, size_t n)
{
	struct gfs_buf b;

	gfs_buf_init(&b);
	gfs_buf_appendf(&b, "%s%s", t->list ? "[" : "", base_names[t->base]);
	if (t->base == GFS_T_ENUM) {
		gfs_buf_appendc(&b, '(');
		for (size_t i = 0; i < t->n_enum; i++)
			gfs_buf_appendf(&b, "%s%s", i ? ", " : "", t->enum_vals[i]);
		gfs_buf_appendc(&b, ')');
	}
	if (t->base == GFS_T_VECTOR)
		gfs_buf_appendf(&b, "(%u)", t->dim);
	gfs_buf_appendf(&b, "%s%s", t->list ? "]" : "", t->nullable ? "?" : "");
	snprintf(buf, n, "%s", b.p ? b.p : "?");
	gfs_buf_release(&b);
	return buf;
}

static void sig_type(struct gfs_buf *b, const struct gfs_type *t)
{
	gfs_buf_appendf(b, "%d,%d,%d,%u", (int)t->base, t->list, t->nullable, t->dim);
	for (size_t i = 0; i < t->n_enum; i++)
		gfs_buf_appendf(b, ",%s", t->enum_vals[i]);
}

static void sig_bound(struct gfs_buf *b, const struct gfs_bound *x)
{
	if (!x->set)
		gfs_buf_appendf(b, "-");
	else if (x->is_int)
		gfs_buf_appendf(b, "i%lld", (long long)x->i);
	else
		gfs_buf_appendf(b, "d%.17g", x->d);
}

static void sig_cons(struct gfs_buf *b, const struct gfs_cons *c)
{
	gfs_buf_appendf(b, "{%d", (int)c->kind);
	for (size_t i = 0; i < c->n_props; i++)
		gfs_buf_appendf(b, ",%s", c->props[i]);
	gfs_buf_appendc(b, '|');
	sig_bound(b, &c->lo);
	sig_bound(b, &c->hi);
	if (c->pattern)
		gfs_buf_appendf(b, "|%s", c->pattern);
	gfs_buf_appendc(b, '}');
}

/* Everything of a type that decides which rows are valid and their bytes
 * (not the metadata annotations).  Returns a new string or NULL. */
static char *type_sig(const struct gfs_typedef *t)
{
	struct gfs_buf b;

	gfs_buf_init(&b);
	gfs_buf_appendf(&b, "%d|%s|%s|%d|%llu|%llu|", t->is_edge, t->from ? t->from : "",
			t->to ? t->to : "", t->has_card,
			(unsigned long long)t->card_min, (unsigned long long)t->card_max);
	for (size_t i = 0; i < t->n_props; i++) {
		const struct gfs_prop *p = &t->props[i];
		gfs_buf_appendf(&b, "[%s:", p->name);
		sig_type(&b, &p->type);
		gfs_buf_appendf(&b, ":%d%d%d:%s]", p->key, p->unique, p->index,
				p->embed ? p->embed : "");
	}
	for (size_t i = 0; i < t->n_cons; i++)
		sig_cons(&b, &t->cons[i]);
	for (size_t i = 0; i < t->n_key; i++)
		gfs_buf_appendf(&b, "k%zu", t->key[i]);
	return b.p ? b.p : gfs_strdup("");
}

bool gfs_sa_same_rows(const struct gfs_typedef *a, const struct gfs_typedef *b)
{
	char *x = type_sig(a), *y = type_sig(b);
	bool same = x && y && !strcmp(x, y);

	free(x);
	free(y);
	return same;
}

/* The unique constraints in codec order (gfs_codec_n_unique): the same
 * list means the same unique indexes. */
bool gfs_sa_same_uniques(const struct gfs_typedef *a, const struct gfs_typedef *b)
{
	struct gfs_buf x, y;
	bool same;

	gfs_buf_init(&x);
	gfs_buf_init(&y);
	for (size_t i = 0; i < a->n_cons; i++)
		if (a->cons[i].kind == GFS_C_UNIQUE)
			sig_cons(&x, &a->cons[i]);
	for (size_t i = 0; i < b->n_cons; i++)
		if (b->cons[i].kind == GFS_C_UNIQUE)
			sig_cons(&y, &b->cons[i]);
	same = x.len == y.len && (!x.len || !memcmp(x.p, y.p, x.len));
	gfs_buf_release(&x);
	gfs_buf_release(&y);
	return same;
}

/* ---- options ------------------------------------------------------------ */

/* "T.p" or "T.p=..." of opt: does it name type t, property p? */
static bool opt_names(const char *opt, const char *t, const char *p)
{
	size_t tl = strlen(t), pl = strlen(p);

	return !strncmp(opt, t, tl) && opt[tl] == '.' && !strncmp(opt + tl + 1, p, pl) &&
	       (opt[tl + 1 + pl] == '\0' || opt[tl + 1 + pl] == '=');
}

bool gfs_sa_dropped(const struct gfs_schema_apply_opts *o, const char *t,
		    const char *p)
{
	for (size_t i = 0; o && i < o->n_drops; i++)
		if (opt_names(o->drops[i], t, p))
			return true;
	return false;
}

const char *gfs_sa_default(const struct gfs_schema_apply_opts *o,
			   const char *t, const char *p)
{
	for (size_t i = 0; o && i < o->n_defaults; i++)
		if (opt_names(o->defaults[i], t, p))
			return strchr(o->defaults[i], '=') + 1;
	return NULL;
}

/* Every option must name a property it can apply to. */
static int check_opts(const struct gfs_schema *old, const struct gfs_schema *nw,
		      const struct gfs_schema_apply_opts *o, struct gfs_diag *d)
{
	for (size_t i = 0; o && i < o->n_drops; i++) {
		const char *s = o->drops[i], *dot = strchr(s, '.');
		char t[128];
		if (!dot || dot == s || !dot[1] || (size_t)(dot - s) >= sizeof t) {
			gfs_diag_set(d, "--drop-property '%s': expected TYPE.PROPERTY", s);
			return GFS_ESCHEMA;
		}
		snprintf(t, sizeof t, "%.*s", (int)(dot - s), s);
		const struct gfs_typedef *ot = gfs_schema_find(old, t);
		const struct gfs_typedef *nt = gfs_schema_find(nw, t);
		if (!ot || gfs_typedef_prop(ot, dot + 1) < 0) {
			gfs_diag_set(d, "--drop-property '%s': the current schema has no property '%s' in type '%s'", s, dot + 1, t);
			return GFS_ESCHEMA;
		}
		if (nt && gfs_typedef_prop(nt, dot + 1) >= 0) {
			gfs_diag_set(d, "--drop-property '%s': the new schema still declares '%s' in type '%s'", s, dot + 1, t);
			return GFS_ESCHEMA;
		}
	}
	for (size_t i = 0; o && i < o->n_defaults; i++) {
		const char *s = o->defaults[i], *dot = strchr(s, '.'), *eq = strchr(s, '=');
		char t[128], p[128];
		if (!dot || !eq || eq < dot || dot == s || eq == dot + 1 ||
		    (size_t)(dot - s) >= sizeof t || (size_t)(eq - dot) > sizeof p) {
			gfs_diag_set(d, "--default '%s': expected TYPE.PROPERTY=JSON", s);
			return GFS_ESCHEMA;
		}
		snprintf(t, sizeof t, "%.*s", (int)(dot - s), s);
		snprintf(p, sizeof p, "%.*s", (int)(eq - dot - 1), dot + 1);
		const struct gfs_typedef *nt = gfs_schema_find(nw, t);
		if (!nt || gfs_typedef_prop(nt, p) < 0) {
			gfs_diag_set(d, "--default '%s': the new schema has no property '%s' in type '%s'", s, p, t);
			return GFS_ESCHEMA;
		}
		if (gfs_sa_default_parse(eq + 1, NULL)) {
			gfs_diag_set(d, "--default '%s': '%s' is not a JSON value", s, eq + 1);
			return GFS_ESCHEMA;
		}
	}
	return 0;
}

/* ---- the diff ----------------------------------------------------------- */

static int add(struct gfs_schema_apply_result *r, const char *type,
	       const char *prop, bool refused, bool checked, const char *hint,
	       const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static int add(struct gfs_schema_apply_result *r, const char *type,
	       const char *prop, bool refused, bool checked, const char *hint,
	       const char *fmt, ...)
{
	struct gfs_schange *c;
	va_list ap;

	c = gfs_array_grow(r->changes, &r->cap_changes_, r->n_changes, sizeof *c, 8);
	if (!c)
		return -ENOMEM;
	r->changes = c;
	c = &c[r->n_changes++];
	memset(c, 0, sizeof *c);
	snprintf(c->type, sizeof c->type, "%s", type);
	snprintf(c->prop, sizeof c->prop, "%s", prop ? prop : "");
	snprintf(c->hint, sizeof c->hint, "%s", refused && hint ? hint : "");
	c->refused = refused;
	c->checked = checked;
	va_start(ap, fmt);
	vsnprintf(c->what, sizeof c->what, fmt, ap);
	va_end(ap);
	r->n_refused += refused;
	return 0;
}

/* @rename_from("old") of a new property, or NULL. */
static const char *renamed_to(const struct gfs_typedef *nt, const char *old)
{
	char want[160];

	snprintf(want, sizeof want, "\"%s\"", old);
	for (size_t i = 0; i < nt->n_props; i++)
		for (size_t k = 0; k < nt->props[i].n_annots; k++) {
			const struct gfs_annot *a = &nt->props[i].annots[k];
			if (!strcmp(a->name, "rename_from") && a->args &&
			    strstr(a->args, want))
				return nt->props[i].name;
		}
	return NULL;
}

struct dctx {
	const struct gfs_typedef *ot, *nt;
	const struct gfs_schema_apply_opts *o;
	struct gfs_schema_apply_result *r;
	bool empty; /* the table has no rows: nothing is refused */
};

static int removed_props(struct dctx *x)
{
	const char *T = x->nt->name;
	char hint[160];
	int rc = 0;

	for (size_t i = 0; !rc && i < x->ot->n_props; i++) {
		const char *p = x->ot->props[i].name, *to;
		if (gfs_typedef_prop(x->nt, p) >= 0)
			continue;
		snprintf(hint, sizeof hint, "--drop-property %s.%s", T, p);
		to = renamed_to(x->nt, p);
		if (gfs_sa_dropped(x->o, T, p))
			rc = add(x->r, T, p, false, false, NULL, "property removed: dropped from every row (--drop-property)");
		else if (to)
			rc = add(x->r, T, p, !x->empty, false, hint, "property renamed to '%s': renaming needs a rewrite, which is not supported; drop it and fill '%s' with --default, or load the values again", to, to);
		else
			rc = add(x->r, T, p, !x->empty, false, hint, "property removed%s", x->empty ? " (the table is empty)" : "");
	}
	return rc;
}

static int new_props(struct dctx *x)
{
	const char *T = x->nt->name;
	char hint[160], ts[256];
	int rc = 0;

	for (size_t i = 0; !rc && i < x->nt->n_props; i++) {
		const struct gfs_prop *p = &x->nt->props[i];
		const char *def = gfs_sa_default(x->o, T, p->name);
		if (gfs_typedef_prop(x->ot, p->name) >= 0)
			continue;
		type_str(&p->type, ts, sizeof ts);
		snprintf(hint, sizeof hint, "--default %s.%s=JSON", T, p->name);
		if (def)
			rc = add(x->r, T, p->name, false, true, NULL, "new property %s, filled with %s in every row (--default)", ts, def);
		else if (p->type.nullable)
			rc = add(x->r, T, p->name, false, false, NULL, "new optional property %s", ts);
		else
			rc = add(x->r, T, p->name, !x->empty, false, hint, "new required property %s without a default%s", ts, x->empty ? " (the table is empty)" : "");
	}
	return rc;
}

static bool enum_subset(const struct gfs_type *a, const struct gfs_type *b)
{
	for (size_t i = 0; i < a->n_enum; i++) {
		bool in = false;
		for (size_t k = 0; k < b->n_enum && !in; k++)
			in = !strcmp(a->enum_vals[i], b->enum_vals[k]);
		if (!in)
			return false;
	}
	return true;
}

static int changed_prop(struct dctx *x, const struct gfs_prop *op,
			const struct gfs_prop *np)
{
	const struct gfs_type *a = &op->type, *b = &np->type;
	const char *T = x->nt->name, *def = gfs_sa_default(x->o, T, np->name);
	char sa[256], sb[256];
	int rc = 0;

	type_str(a, sa, sizeof sa);
	type_str(b, sb, sizeof sb);
	if (a->base != b->base || a->list != b->list || a->dim != b->dim)
		return add(x->r, T, np->name, !x->empty, false, NULL, "type changed from %s to %s%s", sa, sb, x->empty ? " (the table is empty)" : ": a conversion of the stored values, which is not supported");
	if (a->base == GFS_T_ENUM && !(enum_subset(a, b) && enum_subset(b, a)))
		rc = add(x->r, T, np->name, false, !enum_subset(a, b), NULL, "enum values changed from %s to %s", sa, sb);
	if (!rc && a->nullable && !b->nullable)
		rc = add(x->r, T, np->name, false, true, NULL, def ? "now required; rows without it get %s (--default)" : "now required%s", def ? def : "");
	if (!rc && !a->nullable && b->nullable)
		rc = add(x->r, T, np->name, false, false, NULL, "now optional");
	/* @unique on a property is also a constraint: changed_cons says it */
	if (!rc && (op->index != np->index ||
		    (op->embed == NULL) != (np->embed == NULL) ||
		    (op->embed && strcmp(op->embed, np->embed))))
		rc = add(x->r, T, np->name, false, false, NULL, "@index or @embed changed");
	return rc;
}

static bool cons_in(const struct gfs_cons *c, const struct gfs_typedef *t)
{
	struct gfs_buf a, b;
	bool in = false;

	gfs_buf_init(&a);
	sig_cons(&a, c);
	for (size_t i = 0; i < t->n_cons && !in; i++) {
		gfs_buf_init(&b);
		sig_cons(&b, &t->cons[i]);
		in = a.len == b.len && a.p && b.p && !memcmp(a.p, b.p, a.len);
		gfs_buf_release(&b);
	}
	gfs_buf_release(&a);
	return in;
}

static const char *const cons_names[] = { "@key", "@unique", "@index", "@range", "@check" };

static int changed_cons(struct dctx *x)
{
	const char *T = x->nt->name;
	int rc = 0;

	for (size_t i = 0; !rc && i < x->nt->n_cons; i++) {
		const struct gfs_cons *c = &x->nt->cons[i];
		if (c->kind == GFS_C_KEY || cons_in(c, x->ot))
			continue;
		rc = add(x->r, T, c->n_props ? c->props[0] : "", false, c->kind != GFS_C_INDEX, NULL,
			 "new constraint %s (line %u)", cons_names[c->kind], c->line);
	}
	for (size_t i = 0; !rc && i < x->ot->n_cons; i++) {
		const struct gfs_cons *c = &x->ot->cons[i];
		if (c->kind == GFS_C_KEY || cons_in(c, x->nt))
			continue;
		rc = add(x->r, T, c->n_props ? c->props[0] : "", false, false, NULL,
			 "constraint %s removed", cons_names[c->kind]);
	}
	if (!rc && (x->ot->has_card != x->nt->has_card ||
		    x->ot->card_min != x->nt->card_min || x->ot->card_max != x->nt->card_max))
		rc = add(x->r, T, "", false, x->nt->has_card, NULL, "@card changed");
	return rc;
}

static bool same_key(const struct gfs_typedef *a, const struct gfs_typedef *b)
{
	if (a->n_key != b->n_key)
		return false;
	for (size_t i = 0; i < a->n_key; i++)
		if (strcmp(a->props[a->key[i]].name, b->props[b->key[i]].name))
			return false;
	return true;
}

/* Are the properties both have in the same relative order? */
static bool same_order(const struct gfs_typedef *a, const struct gfs_typedef *b)
{
	int last = -1;

	for (size_t i = 0; i < b->n_props; i++) {
		int k = gfs_typedef_prop(a, b->props[i].name);
		if (k < 0)
			continue;
		if (k < last)
			return false;
		last = k;
	}
	return true;
}

static int diff_type(struct dctx *x)
{
	const struct gfs_typedef *ot = x->ot, *nt = x->nt;
	const char *T = nt->name;
	size_t before = x->r->n_changes;
	int rc = 0;

	if (gfs_sa_same_rows(ot, nt))
		return 0;
	if (ot->is_edge != nt->is_edge ||
	    (nt->is_edge && (strcmp(ot->from, nt->from) || strcmp(ot->to, nt->to))))
		return add(x->r, T, "", !x->empty, false, NULL, "%s changed (from %s %s%s%s%s to %s %s%s%s%s)%s",
			   ot->is_edge == nt->is_edge ? "endpoints" : "kind",
			   ot->is_edge ? "edge" : "node", T, ot->is_edge ? ": " : "",
			   ot->is_edge ? ot->from : "", ot->is_edge ? " -> ..." : "",
			   nt->is_edge ? "edge" : "node", T, nt->is_edge ? ": " : "",
			   nt->is_edge ? nt->from : "", nt->is_edge ? " -> ..." : "",
			   x->empty ? " (the table is empty)" : ": a type change, which is not supported");
	if (!same_key(ot, nt))
		rc = add(x->r, T, "", !x->empty, false, NULL, "@key changed%s", x->empty ? " (the table is empty)" : ": the ids of the rows would change, which is not supported");
	if (!rc)
		rc = removed_props(x);
	if (!rc)
		rc = new_props(x);
	for (size_t i = 0; !rc && i < nt->n_props; i++) {
		int k = gfs_typedef_prop(ot, nt->props[i].name);
		if (k >= 0)
			rc = changed_prop(x, &ot->props[k], &nt->props[i]);
	}
	if (!rc)
		rc = changed_cons(x);
	if (!rc && !same_order(ot, nt))
		rc = add(x->r, T, "", false, false, NULL, "properties reordered: rows rewritten in the new order");
	if (!rc && x->r->n_changes == before)
		rc = add(x->r, T, "", false, true, NULL, "definition changed");
	return rc;
}

int gfs_schema_diff(const struct gfs_schema *old, const struct gfs_schema *nw,
		    const struct gfs_schema_apply_opts *o,
		    bool (*has_rows)(const char *type, void *arg), void *arg,
		    struct gfs_schema_apply_result *res, struct gfs_diag *d)
{
	int rc = check_opts(old, nw, o, d);

	for (size_t i = 0; !rc && i < nw->n_types; i++) {
		const struct gfs_typedef *nt = &nw->types[i];
		struct dctx x = { gfs_schema_find(old, nt->name), nt, o, res, false };
		if (!x.ot) {
			rc = add(res, nt->name, "", false, false, NULL, "new %s type", nt->is_edge ? "edge" : "node");
			continue;
		}
		x.empty = !has_rows(nt->name, arg);
		rc = diff_type(&x);
	}
	for (size_t i = 0; !rc && i < old->n_types; i++) {
		const struct gfs_typedef *ot = &old->types[i];
		bool rows;
		if (gfs_schema_find(nw, ot->name))
			continue;
		rows = has_rows(ot->name, arg);
		rc = add(res, ot->name, "", rows, false, NULL, rows ? "type removed: its table has rows (delete them first)" : "type removed (its table is empty)");
	}
	return rc;
}
