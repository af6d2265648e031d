/* closure.c - the version files a table version reads (retain.h).
 *
 * A version built on a parent shares the parent's pages and lines, and
 * so transitively its whole parent chain; a compensation points at its
 * content_of's root.  The manifest's `tver` index records both links
 * (store format 3), so the walk reads no header; a number without a
 * record (none should exist) falls back to the file's header. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "retain.h"
#include "table_int.h"

void gfs_vset_release(struct gfs_vset *s)
{
	free(s->bits);
	s->bits = NULL;
	s->cap = 0;
}

bool gfs_vset_has(const struct gfs_vset *s, uint32_t v)
{
	return v < s->cap && (s->bits[v >> 3] >> (v & 7) & 1);
}

int gfs_vset_add(struct gfs_vset *s, uint32_t v)
{
	if (v == UINT32_MAX)
		return -EINVAL;
	if (v >= s->cap) {
		uint32_t cap = s->cap ? s->cap : 64;
		uint8_t *nb;

		while (cap <= v)
			cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
		nb = realloc(s->bits, cap / 8 + 1);
		if (!nb)
			return -ENOMEM;
		memset(nb + (s->cap ? s->cap / 8 + 1 : 0), 0,
		       cap / 8 + 1 - (s->cap ? s->cap / 8 + 1 : 0));
		s->bits = nb;
		s->cap = cap;
	}
	s->bits[v >> 3] |= (uint8_t)(1u << (v & 7));
	return 0;
}

/* parent and content_of of version v: from the index (store format 3),
 * or, for a number it has no record of, from the file's header. */
static int links_of(struct gfs_graph *g, const char *table, uint32_t v,
		    uint32_t *parent, uint32_t *content_of, struct gfs_diag *d)
{
	struct gfs_tver_rec r;
	struct gfs_tver *tv = NULL;
	struct gfs_tver_info info;
	int rc = gfs_manifest_tver_get(gfs_graph_manifest(g), table, v, &r);

	if (!rc && (r.state == GFS_TVER_PUBLISHED || r.state == GFS_TVER_RETIRED ||
		    r.state == GFS_TVER_RESERVED)) {
		*parent = r.parent;
		*content_of = r.content_of;
		return 0;
	}
	if (!rc && r.state == GFS_TVER_COLLECTED) {
		gfs_diag_set(d, "table '%s' version %u was collected by gc", table, v);
		return -ENOENT;
	}
	rc = gfs_tver_open(gfs_graph_tables(g), table, v, &tv, d);
	if (rc)
		return rc;
	gfs_tver_info(tv, &info);
	gfs_tver_close(tv);
	*parent = info.parent;
	*content_of = info.content_of;
	return 0;
}

int gfs_tclosure_add(struct gfs_graph *g, const char *table, uint32_t v,
		     struct gfs_vset *s, struct gfs_diag *d)
{
	int rc = 0;

	/* Each step goes to a lower number (parent < v, content_of < v), so
	 * the walk ends; a compensation's parent is walked too (design §6.3:
	 * the union over parent and content_of, never less than needed). */
	while (!rc && v && !gfs_vset_has(s, v)) {
		uint32_t parent = 0, content_of = 0;

		rc = links_of(g, table, v, &parent, &content_of, d);
		if (rc)
			break;
		if (parent >= v || content_of >= v) {
			gfs_diag_set(d, "table '%s' version %u: parent %u, content_of %u (not below it)",
				     table, v, parent, content_of);
			return GFS_ECORRUPT;
		}
		rc = gfs_vset_add(s, v);
		if (!rc && content_of)
			rc = gfs_tclosure_add(g, table, content_of, s, d);
		v = parent;
	}
	return rc;
}

int gfs_tclosure_bytes(struct gfs_tstore *ts, const char *table,
		       const struct gfs_vset *s, uint64_t *bytes)
{
	*bytes = 0;
	for (uint32_t v = 1; v < s->cap; v++) {
		char path[PATH_MAX];
		struct stat st;
		int rc;

		if (!gfs_vset_has(s, v))
			continue;
		rc = tbl_verpath(path, sizeof path, ts->dir, table, v);
		if (rc)
			return rc;
		if (stat(path, &st))
			return gfs_io_fail("stat", path, -errno);
		*bytes += (uint64_t)st.st_size;
	}
	return 0;
}
