/* closure.c - the version files a table version reads (retain.h).
 *
 * A version built on a parent shares the parent's pages and lines, and
 * so transitively its whole parent chain; a compensation points at its
 * content_of's root.  Both links are in the version's header.  Until the
 * manifest's `tver` index records them (h11-num), this reads one header
 * per version, each version once per set. */
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

int gfs_tclosure_add(struct gfs_tstore *ts, const char *table, uint32_t v,
		     struct gfs_vset *s, struct gfs_diag *d)
{
	int rc = 0;

	/* Each step goes to a lower number (parent < v, content_of < v), so
	 * the walk ends; a compensation's parent is walked too (design §6.3:
	 * the union over parent and content_of, never less than needed). */
	while (!rc && v && !gfs_vset_has(s, v)) {
		struct gfs_tver *tv = NULL;
		struct gfs_tver_info info;

		rc = gfs_tver_open(ts, table, v, &tv, d);
		if (rc)
			break;
		gfs_tver_info(tv, &info);
		gfs_tver_close(tv);
		if (info.parent >= v || info.content_of >= v) {
			gfs_diag_set(d, "table '%s' version %u: header names parent %u, content_of %u (not below it)",
				     table, v, info.parent, info.content_of);
			return GFS_ECORRUPT;
		}
		rc = gfs_vset_add(s, v);
		if (!rc && info.content_of)
			rc = gfs_tclosure_add(ts, table, info.content_of, s, d);
		v = info.parent;
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
