/* schema.h - the .pg schema language (DESIGN.md §1): parse, query, free.
 *
 *     struct gfs_schema *s;
 *     struct gfs_diag d = {0};
 *     rc = gfs_schema_parse(text, len, "people.pg", &s, &d);
 *     // rc == GFS_ESCHEMA: d.msg = "people.pg:3:14: expected ':' after property name 'age'"
 *     const struct gfs_typedef *t = gfs_schema_find(s, "Person");
 *     gfs_schema_free(s);
 *
 * The parsed schema is plain read-only data after parse; it is safe to share
 * between threads.  Interfaces are resolved at parse time: a node's props
 * already contain the properties it implements.
 */
#ifndef GFS_SCHEMA_H
#define GFS_SCHEMA_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum gfs_base {
	GFS_T_STRING,
	GFS_T_BOOL,
	GFS_T_I32,
	GFS_T_I64,
	GFS_T_U32,
	GFS_T_U64,
	GFS_T_F32,
	GFS_T_F64,
	GFS_T_DATE,
	GFS_T_DATETIME,
	GFS_T_BLOB,
	GFS_T_ENUM,
	GFS_T_VECTOR,
};

struct gfs_type {
	enum gfs_base base;
	bool list;        /* [T] */
	bool nullable;    /* T? */
	unsigned dim;     /* Vector(N) */
	char **enum_vals; /* ENUM: n_enum values, declaration order */
	size_t n_enum;
};

/* An annotation kept as metadata or ignored: @name(args).  args is the raw
 * argument text between the parentheses (NULL when there were none). */
struct gfs_annot {
	char *name;
	char *args;
};

struct gfs_prop {
	char *name;
	struct gfs_type type;
	bool key, unique, index; /* property annotations */
	char *embed;             /* @embed("prop") or NULL */
	struct gfs_annot *annots; /* every other annotation, in order */
	size_t n_annots;
	unsigned line, col;
};

enum gfs_cons_kind {
	GFS_C_KEY,    /* @key(a[, b]) in a body, or @key on a property */
	GFS_C_UNIQUE, /* @unique(a, ...) or @unique on a property; edges may name src, dst */
	GFS_C_INDEX,
	GFS_C_RANGE,  /* @range(p, lo..hi) */
	GFS_C_CHECK,  /* @check(p, "regex") */
};

/* A numeric bound of @range.  is_int: the literal had no '.', 'e' or 'E'. */
struct gfs_bound {
	bool set;
	bool is_int;
	int64_t i;
	double d;
};

struct gfs_cons {
	enum gfs_cons_kind kind;
	char **props; /* property names ("src"/"dst" allowed on edges) */
	size_t n_props;
	struct gfs_bound lo, hi; /* RANGE */
	char *pattern;           /* CHECK: the regex source */
	regex_t re;              /* CHECK: compiled, REG_EXTENDED|REG_NOSUB, anchored as written */
	unsigned line, col;
};

struct gfs_typedef {
	char *name;
	bool is_edge;
	/* Edges: endpoint type names and their indexes in gfs_schema.types. */
	char *from, *to;
	size_t from_idx, to_idx;
	/* Edges: @card(min..max); has_card false = unconstrained. */
	bool has_card;
	uint64_t card_min, card_max; /* card_max == UINT64_MAX: open */
	struct gfs_prop *props; /* declared + implemented, declaration order */
	size_t n_props;
	struct gfs_cons *cons; /* every constraint, property-level ones included */
	size_t n_cons;
	/* The key: indexes into props, in key order; n_key == 0 = unkeyed. */
	size_t *key;
	size_t n_key;
	char *description; /* @description text or NULL */
	char **implements;
	size_t n_implements;
	struct gfs_annot *annots; /* every type-level annotation, in order */
	size_t n_annots;
	unsigned line, col;
};

struct gfs_schema {
	struct gfs_typedef *types; /* nodes and edges, declaration order */
	size_t n_types;
	char *text;      /* the source text, verbatim */
	size_t text_len;
	char id[17];     /* 16 hex digits of gfs_hash64(text) */
};

/* Parses text (need not be NUL-terminated) as a new schema: names of at
 * most 128 bytes, at most 4096 declarations, ... (docs/format.md "Limits").
 * On success *out is a new schema the caller frees with gfs_schema_free().
 * On failure returns GFS_ESCHEMA (or -ENOMEM) with "file:line:col: what,
 * expected what" in d. */
int gfs_schema_parse(const char *text, size_t len, const char *filename,
		     struct gfs_schema **out, struct gfs_diag *d);
/* The same for a schema the store already holds (STORE/schemas/): the
 * grammar without the limits on names and counts that gfs_schema_parse
 * applies to new text (docs/format.md "Limits"), so a limit added later
 * never makes an existing store unreadable. */
int gfs_schema_parse_stored(const char *text, size_t len,
			    const char *filename, struct gfs_schema **out,
			    struct gfs_diag *d);
void gfs_schema_free(struct gfs_schema *s);

/* What a new schema's text must be beyond the grammar (graphctl init,
 * schema apply; a stored schema is parsed as it was accepted): at most
 * GFS_SCHEMA_MAX_TEXT bytes of well-formed UTF-8 without NUL bytes.
 * 0, or GFS_ESCHEMA with "file:line:col: invalid UTF-8 (byte 0xff), ..."
 * in d.  docs/format.md, "Limits". */
#define GFS_SCHEMA_MAX_TEXT ((size_t)1 << 20)
int gfs_schema_check_text(const char *text, size_t len, const char *filename,
			  struct gfs_diag *d);

/* Borrowed; NULL when there is no such type. */
const struct gfs_typedef *gfs_schema_find(const struct gfs_schema *s,
					  const char *name);
/* Index of a property in t->props, or -1. */
int gfs_typedef_prop(const struct gfs_typedef *t, const char *name);
/* "node:Person" / "edge:Knows" into buf; returns buf. */
const char *gfs_typedef_table(const struct gfs_typedef *t, char *buf, size_t n);

#endif
