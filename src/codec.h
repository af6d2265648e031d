/* codec.h - one load-format line <-> one canonical row (DESIGN.md §1).
 *
 *     struct gfs_rowin r;
 *     gfs_rowin_init(&r);
 *     for each line:
 *         rc = gfs_codec_parse_line(schema, line, len, lineno, &r, &d);
 *         // r.line is the canonical export line, r.id the canonical id
 *     gfs_rowin_release(&r);
 *
 * Canonical line: compact JSON, members in this order, a trailing '\n':
 *   node:  {"type":"T","data":{...}}
 *   edge:  {"edge":"T","from":"<src id>","to":"<dst id>","data":{...}}
 * data: "id" first for unkeyed nodes and for edges, then the properties in
 * schema order; null / absent optional properties are omitted; values in
 * canonical form (Date YYYY-MM-DD, DateTime UTC RFC 3339 'Z' without
 * trailing fractional zeros, Blob base64 without prefix, integers in
 * decimal, floats with the fewest digits that read back exactly and always
 * a '.' or an exponent, e.g. 1.0, 0.1, 1e+21).  Parsing the canonical line
 * again yields the same line.  Decisions (U64 <= INT64_MAX, Vector elements
 * as F64, ...) are listed at the top of codec.c.
 */
#ifndef GFS_CODEC_H
#define GFS_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "schema.h"
#include "util.h"

/* Lines longer than this fail with GFS_ETOOLONG naming line and limit. */
#define GFS_MAX_LINE ((size_t)32 << 20)

/* One validated input row.  Embedded: _init/_release; reused across lines. */
struct gfs_rowin {
	const struct gfs_typedef *td; /* borrowed from the schema */
	size_t type_idx;              /* index in schema->types */
	struct gfs_buf id;            /* canonical id (may hold NULs) */
	struct gfs_buf src, dst;      /* edges: canonical endpoint ids */
	struct gfs_buf line;          /* canonical export line, '\n' included */
	size_t data_off, data_len;    /* the data object inside line */
	bool id_generated;            /* no data.id: a fresh ULID */
	/* Unique keys, one per GFS_C_UNIQUE constraint of td in order (and the
	 * key constraint is not among them): canonical compact JSON array of
	 * the values; empty (len 0) when any part is null (nulls never clash). */
	struct gfs_buf *ukeys;
	size_t n_ukeys;
};
void gfs_rowin_init(struct gfs_rowin *r);
void gfs_rowin_release(struct gfs_rowin *r);

/* Parses and validates one non-blank line against the schema: top-level keys,
 * duplicate members, unknown/reserved properties, types, nullability, enums,
 * vector length, @range, @check, key and data.id agreement.  Endpoint
 * existence, uniqueness and @card need the store and are the loader's job.
 * Returns 0, GFS_EDATA (d: "line 17: Person 'alice': property 'age':
 * expected I32, got string \"x\""), GFS_ETOOLONG, or -ENOMEM.  On an error
 * r's contents are unspecified (r->td is NULL); r stays reusable. */
int gfs_codec_parse_line(const struct gfs_schema *s, const char *line,
			 size_t len, unsigned long lineno, struct gfs_rowin *r,
			 struct gfs_diag *d);

/* Canonical id of a JSON scalar given as an endpoint ("from"/"to") or key
 * part, for the key type of node type td.  Returns 0 or GFS_EDATA. */
struct json_t;
int gfs_codec_canon_ref(const struct gfs_typedef *td, const struct json_t *v,
			struct gfs_buf *out, struct gfs_diag *d);

/* Extracts the unique keys (as in gfs_rowin.ukeys) from a stored canonical
 * data object of type td (used when an old row must leave the unique index).
 * *out is a new array of n bufs; free with gfs_codec_free_ukeys(). */
int gfs_codec_ukeys_of(const struct gfs_typedef *td, const char *data,
		       size_t len, const char *src, size_t src_len,
		       const char *dst, size_t dst_len, struct gfs_buf **out,
		       size_t *n);
void gfs_codec_free_ukeys(struct gfs_buf *u, size_t n);

/* Number of GFS_C_UNIQUE constraints of td (the length of ukeys). */
size_t gfs_codec_n_unique(const struct gfs_typedef *td);

#endif
