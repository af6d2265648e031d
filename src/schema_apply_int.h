/* schema_apply_int.h - shared by schema_diff.c and schema_apply.c. */
#ifndef GFS_SCHEMA_APPLY_INT_H
#define GFS_SCHEMA_APPLY_INT_H

#include <stdbool.h>

#include "schema.h"
#include "schema_apply.h"

struct json_t;

/* Same validity and bytes of rows (every field but metadata annotations). */
bool gfs_sa_same_rows(const struct gfs_typedef *a, const struct gfs_typedef *b);
/* Same unique constraints in the same order (the same unique indexes). */
bool gfs_sa_same_uniques(const struct gfs_typedef *a, const struct gfs_typedef *b);
/* Options: is T.p dropped; the JSON text of T.p's default or NULL. */
bool gfs_sa_dropped(const struct gfs_schema_apply_opts *o, const char *t,
		    const char *p);
const char *gfs_sa_default(const struct gfs_schema_apply_opts *o,
			   const char *t, const char *p);
/* Parses a default's JSON text (any value, null excluded); *out (may be
 * NULL) gets a new reference.  0 or GFS_ESCHEMA. */
int gfs_sa_default_parse(const char *text, struct json_t **out);

#endif
