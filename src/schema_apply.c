/* schema_apply.c - graphctl schema apply: one graph version with a new
 * schema, through the one write door (commit.h; schema_apply.h has the
 * calling sequence, docs/semantics.md "Schema changes" the rules).
 *
 * Steps of one attempt (a moved head retries the whole attempt):
 *   plan     head, its schema, the diff (schema_diff.c): refused -> stop
 *   lock     EX on every table (two applies exclude each other; writers
 *            are excluded as by SH, which the check needs); heal first
 *   pin      the pins under the locks must be the planned ones (else
 *            GFS_ECAS: plan again)
 *   check    every row of every changed type parsed under the new schema
 *            (types, nullability, enums, @range, @check), then @unique and
 *            @card over the table; a table whose rows' bytes or unique
 *            indexes change is rewritten
 *   file     schemas/<new id>.pg put-if-absent        (schema/after_file)
 *   arm      sidecar kind "schema" {old_id, new_id}; a new type's table
 *            directory exists before it, its expected pin is 0
 *   build    rewritten tables on their pin (each row keeps its serial; a
 *            row whose bytes change gets `changed` = the new version),
 *            new tables empty
 *   confirm, publish: schema id = new id, CAS on the old one (commit.c)
 * Recovery (recover.c): roll forward publishes the sidecar's new schema
 * id; roll back compensates the rewritten and new tables.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "codec.h"
#include "commit.h"
#include "failpoints.h"
#include "schema_apply.h"
#include "schema_apply_int.h"

#define SA_TRIES 8
#define SA_MAX_PROBLEMS 1000

struct sa_table {
	const struct gfs_typedef *ot, *nt; /* NULL where the type is absent */
	uint32_t planned;   /* pin at the planned head */
	bool created;       /* new type without a pin: written, expected 0 */
	bool changed;       /* rows checked under the new schema */
	bool xform;         /* --drop-property / --default name this type */
	bool rewrite;       /* some row's bytes or the unique indexes change */
};

/* A key seen in a unique index or an edge's source (@card). */
struct seen {
	char *key;
	size_t len;
	char *id;
};

struct sa {
	struct gfs_graph *g;
	const struct gfs_schema_apply_opts *o;
	struct gfs_schema_apply_result *r;
	struct gfs_diag *d;
	struct gfs_schema *nw;        /* owned */
	const struct gfs_schema *old; /* borrowed from g */
	struct gfs_gv *head;          /* the planned head */
	struct gfs_commit c;
	bool c_init;
	struct sa_table *t;           /* parallel to c.ts */
	struct gfs_rowin rin;
	struct gfs_buf line;
};

/* ---- results ------------------------------------------------------------ */

static void problems_free(struct gfs_schema_apply_result *r)
{
	for (size_t i = 0; i < r->n_problems; i++) {
		struct gfs_sproblem *p = &r->problems[i];
		free(p->type);
		free(p->id);
		free(p->prop);
		free(p->value);
		free(p->msg);
	}
	free(r->problems);
	r->problems = NULL;
	r->n_problems = r->cap_problems_ = 0;
	r->problems_total = 0;
}

void gfs_schema_apply_result_release(struct gfs_schema_apply_result *r)
{
	if (!r)
		return;
	problems_free(r);
	free(r->changes);
	memset(r, 0, sizeof *r);
}

/* A printable copy of an id (NUL bytes shown as '?'). */
static char *printable(const char *p, size_t len)
{
	char *s = gfs_memdup(p, len);

	for (size_t i = 0; s && i < len; i++)
		if (s[i] == '\0')
			s[i] = '?';
	return s;
}

static int problem(struct sa *S, const char *type, const char *id, size_t id_len,
		   const char *prop, const char *value, const char *msg)
{
	struct gfs_schema_apply_result *r = S->r;
	size_t max = S->o && S->o->max_problems ? S->o->max_problems : SA_MAX_PROBLEMS;
	struct gfs_sproblem *p;

	r->problems_total++;
	if (r->n_problems >= max)
		return 0;
	p = gfs_array_grow(r->problems, &r->cap_problems_, r->n_problems, sizeof *p, 16);
	if (!p)
		return -ENOMEM;
	r->problems = p;
	p = &p[r->n_problems];
	p->type = gfs_strdup(type);
	p->id = printable(id, id_len);
	p->prop = gfs_strdup(prop ? prop : "");
	p->value = gfs_strdup(value ? value : "");
	p->msg = gfs_strdup(msg);
	if (!p->type || !p->id || !p->prop || !p->value || !p->msg) {
		free(p->type);
		free(p->id);
		free(p->prop);
		free(p->value);
		free(p->msg);
		return -ENOMEM;
	}
	r->n_problems++;
	return 0;
}

/* ---- branches ----------------------------------------------------------- */

int gfs_schema_other_branches(struct gfs_graph *g, char ***names, size_t *n)
{
	struct gfs_branch *bs = NULL;
	size_t nb = 0, k = 0;
	int rc = gfs_manifest_branch_list(gfs_graph_manifest(g), &bs, &nb);

	*names = NULL;
	*n = 0;
	if (rc)
		return rc;
	if (nb && !(*names = calloc(nb, sizeof **names)))
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < nb; i++) {
		if (!strcmp(bs[i].name, "main"))
			continue;
		if (!((*names)[k] = strdup(bs[i].name)))
			rc = -ENOMEM;
		else
			k++;
	}
	free(bs);
	if (rc || !k) {
		for (size_t i = 0; i < k; i++)
			free((*names)[i]);
		free(*names);
		*names = NULL;
		k = 0;
	}
	*n = k;
	return rc;
}

static int refuse_branches(struct sa *S)
{
	char **names = NULL;
	size_t n = 0;
	struct gfs_buf b;
	int rc = gfs_schema_other_branches(S->g, &names, &n);

	if (rc || !n)
		return rc;
	gfs_buf_init(&b);
	for (size_t i = 0; i < n; i++)
		gfs_buf_appendf(&b, "%s'%s'", i ? ", " : "", names[i]);
	gfs_diag_set(S->d, "schema apply is refused while branches other than main exist (%s): merge or delete them first (a merge across schemas is refused)",
		     b.p ? b.p : "?");
	gfs_buf_release(&b);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return GFS_ECONFLICT;
}

/* ---- plan --------------------------------------------------------------- */

/* Does the table of type at the planned head have rows? */
static bool has_rows(const char *type, void *arg)
{
	struct sa *S = arg;
	const struct gfs_typedef *td = gfs_schema_find(S->old, type);
	char table[GFS_TABLE_NAME_MAX];
	struct gfs_tver_info info;
	struct gfs_tver *tv = NULL;
	uint32_t pin;

	if (!td)
		return false;
	pin = gfs_gv_pin(S->head, gfs_typedef_table(td, table, sizeof table));
	if (!pin)
		return false;
	if (gfs_tver_open(gfs_graph_tables(S->g), table, pin, &tv, NULL))
		return true; /* unreadable: assume rows (refuses more, never less) */
	gfs_tver_info(tv, &info);
	gfs_tver_close(tv);
	return info.rows > 0;
}

static bool names_type(const char *const *opts, size_t n, const char *type)
{
	size_t tl = strlen(type);

	for (size_t i = 0; i < n; i++)
		if (!strncmp(opts[i], type, tl) && opts[i][tl] == '.')
			return true;
	return false;
}

static int refused(struct sa *S)
{
	gfs_diag_set(S->d, "schema change refused: %zu change%s need%s a rewrite that no option allows (see the report)",
		     S->r->n_refused, S->r->n_refused == 1 ? "" : "s",
		     S->r->n_refused == 1 ? "s" : "");
	return GFS_ESCHEMA;
}

/* Reads the head and its schema, diffs; 1 = the same schema. */
static int plan(struct sa *S)
{
	int rc = gfs_manifest_head(gfs_graph_manifest(S->g), &S->head);

	if (!rc)
		rc = gfs_graph_schema(S->g, S->head->schema_id, &S->old, S->d);
	if (rc)
		return rc;
	memcpy(S->r->old_id, S->old->id, sizeof S->r->old_id);
	memcpy(S->r->new_id, S->nw->id, sizeof S->r->new_id);
	if (!strcmp(S->old->id, S->nw->id)) {
		S->r->unchanged = true;
		/* options are still checked: one that names nothing is an error */
		rc = gfs_schema_diff(S->old, S->nw, S->o, has_rows, S, S->r, S->d);
		return rc ? rc : 1;
	}
	rc = refuse_branches(S);
	if (!rc)
		rc = gfs_schema_diff(S->old, S->nw, S->o, has_rows, S, S->r, S->d);
	if (!rc && S->r->n_refused)
		rc = refused(S);
	return rc;
}

/* The commit's tables: the new schema's types, then the removed ones. */
static int involve(struct sa *S)
{
	const struct gfs_schema_apply_opts *o = S->o;
	int rc = gfs_commit_init(&S->c, S->g, S->nw, "schema", o ? o->actor : NULL,
				 "schema apply", S->d);

	S->c_init = true;
	for (size_t i = 0; !rc && i < S->old->n_types; i++) {
		char table[GFS_TABLE_NAME_MAX];
		size_t idx;
		if (!gfs_schema_find(S->nw, S->old->types[i].name))
			rc = gfs_commit_add_table(&S->c, gfs_typedef_table(&S->old->types[i], table, sizeof table), &idx);
	}
	if (!rc && !(S->t = calloc(S->c.n_ts + 1, sizeof *S->t)))
		rc = -ENOMEM;
	S->c.schema_old = S->old->id;
	S->c.schema_new = S->nw->id;
	return rc;
}

static void classify_tables(struct sa *S)
{
	for (size_t t = 0; t < S->c.n_ts; t++) {
		struct sa_table *x = &S->t[t];
		struct gfs_commit_table *ct = &S->c.ts[t];
		x->nt = t < S->nw->n_types ? &S->nw->types[t] : NULL;
		x->ot = gfs_schema_find(S->old, x->nt ? x->nt->name
					: ct->table + 5 /* "node:" / "edge:" */);
		x->planned = gfs_gv_pin(S->head, ct->table);
		x->created = x->nt && !x->planned;
		x->xform = x->nt && S->o &&
			   (names_type(S->o->drops, S->o->n_drops, x->nt->name) ||
			    names_type(S->o->defaults, S->o->n_defaults, x->nt->name));
		x->changed = x->ot && x->nt && x->planned &&
			     (x->xform || !gfs_sa_same_rows(x->ot, x->nt));
		ct->written = x->created;
		ct->read = !x->created;
		/* EX on every table, not only on those it may rewrite: two
		 * applies then exclude each other, and any later writer heals
		 * a dead apply's sidecar first (its lock set conflicts), so no
		 * other schema can be published over the old id that its roll
		 * forward compares (docs/recovery.md "Schema apply"). */
		ct->excl = true;
	}
}

static int pins_as_planned(struct sa *S)
{
	for (size_t t = 0; t < S->c.n_ts; t++)
		if (S->c.ts[t].pin != S->t[t].planned)
			return GFS_ECAS;
	return 0;
}

/* ---- one row under the new schema -------------------------------------- */

int gfs_sa_default_parse(const char *text, json_t **out)
{
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	bool ok = v && !json_is_null(v);

	if (out && ok)
		*out = v;
	else
		json_decref(v);
	return ok ? 0 : GFS_ESCHEMA;
}

/* The stored line (no '\n') with the options applied, into S->line. */
static int xform_line(struct sa *S, const struct sa_table *x, const char *line,
		      size_t len)
{
	json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, NULL), *data;
	char *out = NULL;
	int rc = 0;

	data = o ? json_object_get(o, "data") : NULL;
	if (!json_is_object(data)) {
		json_decref(o);
		return GFS_ECORRUPT;
	}
	for (size_t i = 0; i < x->ot->n_props; i++)
		if (gfs_sa_dropped(S->o, x->nt->name, x->ot->props[i].name))
			json_object_del(data, x->ot->props[i].name);
	for (size_t i = 0; !rc && i < x->nt->n_props; i++) {
		const char *name = x->nt->props[i].name;
		const char *def = gfs_sa_default(S->o, x->nt->name, name);
		json_t *v = json_object_get(data, name), *dv = NULL;
		if (def && (!v || json_is_null(v)) && !gfs_sa_default_parse(def, &dv))
			rc = json_object_set_new(data, name, dv) ? -ENOMEM : 0;
	}
	out = rc ? NULL : json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
	S->line.len = 0;
	if (!rc && (!out || gfs_buf_append(&S->line, out, strlen(out))))
		rc = -ENOMEM;
	free(out);
	json_decref(o);
	return rc;
}

/* "property 'x'" in a codec message: x into buf, or "". */
static void msg_prop(const char *msg, char *buf, size_t n)
{
	const char *p = strstr(msg, "property '"), *e;

	buf[0] = '\0';
	if (p && (e = strchr(p + 10, '\'')) && (size_t)(e - p - 10) < n)
		snprintf(buf, n, "%.*s", (int)(e - p - 10), p + 10);
}

/* The JSON of data.prop in line, or "" (absent). */
static char *line_value(const char *line, size_t len, const char *prop)
{
	json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	json_t *v = json_object_get(json_object_get(o, "data"), prop);
	char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	json_decref(o);
	if (s && strlen(s) > 200)
		memcpy(s + 196, "...", 4);
	return s ? s : gfs_strdup("");
}

static int row_problem(struct sa *S, const struct sa_table *x,
		       const struct gfs_row *row, const char *line, size_t len,
		       const struct gfs_diag *pd)
{
	char prop[128];
	char *val;
	int rc;

	msg_prop(pd->msg, prop, sizeof prop);
	val = prop[0] ? line_value(line, len, prop) : gfs_strdup("");
	rc = val ? problem(S, x->nt->name, row->id, row->id_len, prop, val, pd->msg) : -ENOMEM;
	free(val);
	return rc;
}

/* Parses one stored row under the new schema into S->rin: 0, 1 (invalid:
 * recorded as a problem) or an error. */
static int row_parse(struct sa *S, const struct sa_table *x,
		     struct gfs_tver *tv, const struct gfs_row *row)
{
	struct gfs_diag pd = {{0}};
	struct gfs_buf raw;
	size_t n = 0;
	int rc;

	gfs_buf_init(&raw);
	rc = gfs_buf_reserve(&raw, row->line_len);
	if (!rc)
		rc = gfs_tver_read_row(tv, row, 0, raw.p, row->line_len, &n);
	if (!rc && n != row->line_len)
		rc = GFS_ECORRUPT;
	raw.len = rc ? 0 : n - 1; /* without its '\n' */
	if (!rc && x->xform)
		rc = xform_line(S, x, raw.p, raw.len);
	if (!rc) {
		const struct gfs_buf *in = x->xform ? &S->line : &raw;
		rc = gfs_codec_parse_line(S->nw, in->p, in->len, 0, &S->rin, &pd);
		if (rc == GFS_EDATA || rc == GFS_ETOOLONG)
			rc = row_problem(S, x, row, in->p, in->len, &pd) ? -ENOMEM : 1;
	}
	if (!rc && (S->rin.line.len != row->line_len ||
		    memcmp(S->rin.line.p, raw.p, raw.len)))
		rc = 2; /* valid, bytes changed */
	gfs_buf_release(&raw);
	return rc;
}

/* ---- table-wide checks: @unique, @card ---------------------------------- */

static void seen_free(struct seen *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].key);
		free(s[i].id);
	}
	free(s);
}

static int seen_cmp(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, n);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static bool seen_eq(const struct seen *x, const struct seen *y)
{
	return x->len == y->len && !memcmp(x->key, y->key, x->len);
}

struct collect {
	struct seen **u;     /* per unique constraint */
	size_t *nu, *capu;
	size_t n_unique;
	struct seen *src;    /* edges with @card: every source */
	size_t nsrc, capsrc;
};

static int seen_add(struct seen **arr, size_t *n, size_t *cap, const char *key,
		    size_t len, const char *id, size_t idlen)
{
	struct seen *p = gfs_array_grow(*arr, cap, *n, sizeof *p, 64);

	if (!p)
		return -ENOMEM;
	*arr = p;
	p[*n].key = gfs_memdup(key, len);
	p[*n].len = len;
	p[*n].id = printable(id, idlen);
	if (!p[*n].key || !p[*n].id) {
		free(p[*n].key);
		free(p[*n].id);
		return -ENOMEM;
	}
	(*n)++;
	return 0;
}

static int collect_row(struct collect *c, const struct gfs_rowin *r, bool card)
{
	int rc = 0;

	for (size_t k = 0; !rc && k < c->n_unique && k < r->n_ukeys; k++)
		if (r->ukeys[k].len)
			rc = seen_add(&c->u[k], &c->nu[k], &c->capu[k], r->ukeys[k].p,
				      r->ukeys[k].len, r->id.p, r->id.len);
	if (!rc && card)
		rc = seen_add(&c->src, &c->nsrc, &c->capsrc, r->src.p, r->src.len,
			      r->id.p, r->id.len);
	return rc;
}

/* The k-th unique constraint of td (codec order). */
static const struct gfs_cons *unique_k(const struct gfs_typedef *td, size_t k)
{
	for (size_t i = 0; i < td->n_cons; i++)
		if (td->cons[i].kind == GFS_C_UNIQUE && k-- == 0)
			return &td->cons[i];
	return NULL;
}

static int unique_problems(struct sa *S, const struct gfs_typedef *td,
			   struct collect *c)
{
	int rc = 0;

	for (size_t k = 0; !rc && k < c->n_unique; k++) {
		const struct gfs_cons *cons = unique_k(td, k);
		struct gfs_buf props;
		struct seen *s = c->u[k];
		gfs_buf_init(&props);
		for (size_t i = 0; cons && i < cons->n_props; i++)
			gfs_buf_appendf(&props, "%s%s", i ? "," : "", cons->props[i]);
		if (c->nu[k]) /* qsort(NULL, 0) is undefined */
			qsort(s, c->nu[k], sizeof *s, seen_cmp);
		for (size_t i = 0; !rc && i < c->nu[k]; i++) {
			bool dup = (i > 0 && seen_eq(&s[i], &s[i - 1])) ||
				   (i + 1 < c->nu[k] && seen_eq(&s[i], &s[i + 1]));
			char msg[512];
			if (!dup)
				continue;
			snprintf(msg, sizeof msg, "%s '%s': @unique(%s): value %.*s is not unique",
				 td->name, s[i].id, props.p ? props.p : "", (int)(s[i].len > 200 ? 200 : s[i].len), s[i].key);
			/* one property: its value, not the key's one-element array */
			char *v = cons && cons->n_props == 1 && s[i].len > 2
				  ? gfs_memdup(s[i].key + 1, s[i].len - 2) : gfs_strdup(s[i].key);
			rc = v ? problem(S, td->name, s[i].id, strlen(s[i].id), props.p ? props.p : "", v, msg)
			       : -ENOMEM;
			free(v);
		}
		gfs_buf_release(&props);
	}
	return rc;
}

static int card_problems(struct sa *S, const struct gfs_typedef *td,
			 struct collect *c)
{
	int rc = 0;

	if (c->nsrc)
		qsort(c->src, c->nsrc, sizeof *c->src, seen_cmp);
	for (size_t i = 0; !rc && i < c->nsrc;) {
		size_t j = i;
		while (j < c->nsrc && seen_eq(&c->src[j], &c->src[i]))
			j++;
		uint64_t n = j - i;
		if (n < td->card_min || n > td->card_max) {
			char msg[512], val[32], max[32] = "";
			snprintf(val, sizeof val, "%" PRIu64, n);
			if (td->card_max != UINT64_MAX)
				snprintf(max, sizeof max, "%" PRIu64, td->card_max);
			snprintf(msg, sizeof msg, "%s: source '%.*s' has %" PRIu64 " edges, @card allows %" PRIu64 "..%s",
				 td->name, (int)(c->src[i].len > 200 ? 200 : c->src[i].len),
				 c->src[i].key, n, td->card_min, max);
			rc = problem(S, td->name, c->src[i].key, c->src[i].len, "@card", val, msg);
		}
		i = j;
	}
	return rc;
}

static void collect_free(struct collect *c)
{
	for (size_t k = 0; k < c->n_unique; k++)
		seen_free(c->u[k], c->nu[k]);
	free(c->u);
	free(c->nu);
	free(c->capu);
	seen_free(c->src, c->nsrc);
}

/* ---- check -------------------------------------------------------------- */

static int check_table(struct sa *S, size_t t)
{
	struct sa_table *x = &S->t[t];
	struct gfs_tver *tv = S->c.ts[t].tv;
	struct collect c = { .n_unique = gfs_codec_n_unique(x->nt) };
	bool card = x->nt->is_edge && x->nt->has_card;
	struct gfs_titer *it = NULL;
	struct gfs_row row;
	uint64_t rows_before = S->r->rows_checked;
	int rc = 0, more;

	c.u = calloc(c.n_unique + 1, sizeof *c.u);
	c.nu = calloc(c.n_unique + 1, sizeof *c.nu);
	c.capu = calloc(c.n_unique + 1, sizeof *c.capu);
	if (!c.u || !c.nu || !c.capu)
		rc = -ENOMEM;
	if (!rc)
		rc = gfs_titer_new(tv, GFS_IX_PRIMARY, NULL, 0, &it);
	while (!rc && (more = gfs_titer_next(it, &row)) == 1) {
		S->r->rows_checked++;
		rc = row_parse(S, x, tv, &row);
		if (rc == 2) {
			x->rewrite = true;
			S->r->rows_rewritten++;
			rc = 0;
		} else if (rc == 1) {
			rc = 0;
			continue;
		}
		if (!rc)
			rc = collect_row(&c, &S->rin, card);
	}
	if (!rc && more < 0)
		rc = more;
	gfs_titer_free(it);
	if (!rc)
		rc = unique_problems(S, x->nt, &c);
	if (!rc && card)
		rc = card_problems(S, x->nt, &c);
	/* new unique indexes need every row indexed again (an empty table
	 * needs no new version: a later load builds them from nothing) */
	if (!gfs_sa_same_uniques(x->ot, x->nt) && S->r->rows_checked > rows_before)
		x->rewrite = true;
	collect_free(&c);
	return rc;
}

static int check(struct sa *S)
{
	int rc = 0;

	for (size_t t = 0; !rc && t < S->c.n_ts; t++)
		if (S->t[t].changed)
			rc = check_table(S, t);
	if (!rc && S->r->problems_total) {
		gfs_diag_set(S->d, "%" PRIu64 " problem%s with the rows under the new schema (see the report): nothing changed",
			     S->r->problems_total, S->r->problems_total == 1 ? "" : "s");
		rc = GFS_ECONFLICT;
	}
	return rc;
}

/* ---- write -------------------------------------------------------------- */

static int build_rewrite(struct sa *S, size_t t)
{
	struct sa_table *x = &S->t[t];
	struct gfs_commit_table *ct = &S->c.ts[t];
	struct gfs_tbuild *b = NULL;
	struct gfs_titer *it = NULL;
	struct gfs_row row;
	int rc, more = 0;

	rc = gfs_tbuild_new(gfs_graph_tables(S->g), ct->table, ct->tv,
			    (unsigned)gfs_codec_n_unique(x->nt), GFS_TBUILD_REPLACE, &b);
	if (!rc)
		rc = gfs_titer_new(ct->tv, GFS_IX_PRIMARY, NULL, 0, &it);
	while (!rc && (more = gfs_titer_next(it, &row)) == 1) {
		rc = row_parse(S, x, ct->tv, &row);
		if (rc == 1) /* checked under the same locks: cannot happen */
			rc = GFS_EVIOLATION;
		if (rc == 2)
			rc = 0;
		if (!rc) {
			const struct gfs_rowin *r = &S->rin;
			struct gfs_rowput rp = {
				.id = r->id.p, .id_len = r->id.len,
				.src = x->nt->is_edge ? r->src.p : NULL,
				.src_len = x->nt->is_edge ? r->src.len : 0,
				.dst = x->nt->is_edge ? r->dst.p : NULL,
				.dst_len = x->nt->is_edge ? r->dst.len : 0,
				.line = r->line.p, .line_len = r->line.len,
				.data_off = (uint32_t)r->data_off,
				.data_len = (uint32_t)r->data_len,
				.ukeys = r->ukeys, .n_ukeys = r->n_ukeys,
			};
			rc = gfs_tbuild_put(b, &rp);
		}
	}
	if (!rc && more < 0)
		rc = more;
	gfs_titer_free(it);
	if (!rc)
		rc = gfs_commit_linked(&S->c, t, gfs_tbuild_commit(b, ct->next, S->c.op_id, S->d));
	gfs_tbuild_free(b);
	return rc;
}

static int build_created(struct sa *S, size_t t)
{
	struct gfs_commit_table *ct = &S->c.ts[t];
	struct gfs_tbuild *b = NULL;
	int rc = gfs_tbuild_new(gfs_graph_tables(S->g), ct->table, NULL,
				(unsigned)gfs_codec_n_unique(S->t[t].nt), 0, &b);

	if (!rc)
		rc = gfs_commit_linked(&S->c, t, gfs_tbuild_commit(b, ct->next, S->c.op_id, S->d));
	gfs_tbuild_free(b);
	return rc;
}

/* {"old":"..","new":"..","rewritten":[..],"created":[..]} */
static char *detail_of(struct sa *S)
{
	json_t *o = json_pack("{s:s,s:s,s:[],s:[]}", "old", S->old->id, "new", S->nw->id,
			      "rewritten", "created");
	char *s = NULL;

	for (size_t t = 0; o && t < S->c.n_ts; t++) {
		const char *k = S->t[t].created ? "created" : S->t[t].rewrite ? "rewritten" : NULL;
		if (k && S->c.ts[t].written)
			json_array_append_new(json_object_get(o, k), json_string(S->c.ts[t].table));
	}
	if (o)
		s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* Marks rewritten tables written; creates new tables' directories. */
static int prepare(struct sa *S)
{
	int rc = 0;

	for (size_t t = 0; !rc && t < S->c.n_ts; t++) {
		struct sa_table *x = &S->t[t];
		if (x->changed && x->rewrite) {
			S->c.ts[t].written = true;
			S->r->tables_rewritten++;
		}
		if (x->created) {
			S->r->tables_created++;
			rc = gfs_table_create(gfs_graph_tables(S->g), S->c.ts[t].table);
		}
	}
	return rc;
}

static int publish_schema(struct sa *S)
{
	char *detail = NULL;
	int rc = gfs_graph_schema_put(S->g, S->nw);

	if (rc)
		gfs_diag_set(S->d, "cannot write schemas/%s.pg: %s", S->nw->id, gfs_strerror(rc));
	if (!rc)
		rc = gfs_commit_fp(GFS_FP_SCHEMA_AFTER_FILE);
	if (!rc)
		rc = prepare(S);
	if (!rc)
		rc = gfs_commit_arm(&S->c);
	if (rc)
		return rc;
	rc = gfs_commit_fp(GFS_FP_COMMIT_AFTER_SIDECAR);
	for (size_t t = 0; !rc && t < S->c.n_ts; t++)
		if (S->c.ts[t].written)
			rc = S->t[t].created ? build_created(S, t) : build_rewrite(S, t);
	if (!rc)
		rc = gfs_commit_confirm(&S->c);
	if (!rc && !(detail = detail_of(S)))
		rc = -ENOMEM;
	rc = gfs_commit_finish(&S->c, rc, "schema", detail, &S->r->version);
	free(detail);
	if (!rc)
		memcpy(S->r->op_id, S->c.op_id, sizeof S->r->op_id);
	return rc;
}

/* ---- one attempt -------------------------------------------------------- */

static void attempt_release(struct sa *S)
{
	if (S->c_init)
		gfs_commit_release(&S->c);
	S->c_init = false;
	free(S->t);
	S->t = NULL;
	gfs_gv_free(S->head);
	S->head = NULL;
}

static void result_reset(struct gfs_schema_apply_result *r)
{
	problems_free(r);
	free(r->changes);
	r->changes = NULL;
	r->n_changes = r->n_refused = r->cap_changes_ = 0;
	r->rows_checked = r->rows_rewritten = 0;
	r->tables_rewritten = r->tables_created = 0;
}

static int attempt(struct sa *S)
{
	int rc;

	result_reset(S->r);
	rc = plan(S);
	if (rc == 1)
		return 0;
	if (!rc)
		rc = involve(S);
	if (!rc) {
		classify_tables(S);
		rc = gfs_commit_lock(&S->c, GFS_FP_SCHEMA_AFTER_HEAL, GFS_FP_SCHEMA_AFTER_LOCKS);
	}
	if (!rc)
		rc = gfs_commit_pin(&S->c);
	if (!rc)
		rc = pins_as_planned(S);
	if (!rc)
		rc = check(S);
	if (!rc && !(S->o && S->o->dry_run))
		rc = publish_schema(S);
	return rc;
}

int gfs_schema_apply(struct gfs_graph *g, const char *text, size_t len,
		     const char *filename,
		     const struct gfs_schema_apply_opts *o,
		     struct gfs_schema_apply_result *res, struct gfs_diag *d)
{
	struct sa S = { .g = g, .o = o, .r = res, .d = d };
	int rc;

	memset(res, 0, sizeof *res);
	rc = gfs_schema_check_text(text, len, filename, d);
	if (!rc)
		rc = gfs_schema_parse(text, len, filename, &S.nw, d);
	gfs_rowin_init(&S.rin);
	gfs_buf_init(&S.line);
	for (unsigned i = 0; !rc && i < SA_TRIES; i++) {
		if (d)
			d->msg[0] = '\0';
		rc = attempt(&S);
		attempt_release(&S);
		if (rc != GFS_ECAS)
			break;
		rc = i + 1 < SA_TRIES ? 0 : rc;
	}
	if (rc == GFS_ECAS)
		gfs_diag_set(d, "the head kept moving (%d tries): %s", SA_TRIES,
			     d && d->msg[0] ? d->msg : "other writers published first");
	gfs_buf_release(&S.line);
	gfs_rowin_release(&S.rin);
	gfs_schema_free(S.nw);
	return rc;
}
