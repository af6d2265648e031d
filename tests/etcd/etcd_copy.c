/* tests/etcd/etcd_copy.c - the etcd half of a test's store copy
 * (tests/crash/crashlib.sh copy_store): after `cp -a SRC DST` of a store
 * whose manifest is on etcd, DST would share SRC's manifest.  This copies
 * every manifest key under SRC's prefix to NEW_PREFIX on the same cluster
 * (one read revision; lease, hold and gc-fence keys are a live process's,
 * not the store's, and are left behind) and rewrites DST/FORMAT to name
 * it, keeping the store id.
 *
 *     etcd_copy SRC DST NEW_PREFIX
 *
 * Test-only: no writer may run on SRC meanwhile (the tests copy a quiet
 * base store).  Exit 0, or 1 with a message. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "graph.h"
#include "kv_etcd.h"
#include "util.h"

struct copy {
	struct gfs_etcd *e;
	size_t old_len;
	const char *new_prefix;
	unsigned long n;
	struct gfs_diag *d;
};

static bool live_key(const char *rest)
{
	return !strncmp(rest, "/lease/", 7) || !strncmp(rest, "/hold/", 6) ||
	       !strncmp(rest, "/gcfence/", 9);
}

static int copy_one(void *arg, const struct gfs_etcd_kv *kv)
{
	struct copy *c = arg;
	const char *rest = kv->key + c->old_len;
	struct gfs_buf k;
	int rc;

	if (live_key(rest))
		return 0;
	gfs_buf_init(&k);
	rc = gfs_buf_append(&k, c->new_prefix, strlen(c->new_prefix));
	if (!rc)
		rc = gfs_buf_append(&k, rest, kv->key_len - c->old_len);
	if (!rc)
		rc = gfs_etcd_put(c->e, k.p, k.len, kv->value, kv->value_len, 0, NULL, c->d);
	gfs_buf_release(&k);
	c->n += !rc;
	return rc;
}

int main(int argc, char **argv)
{
	struct gfs_diag d = {{0}};
	char *url = NULL, *end = NULL, *pfx = NULL, id[GFS_ULID_LEN + 1];
	struct copy c = { .d = &d };
	size_t elen;
	int ver, rc;

	if (argc != 4) {
		fprintf(stderr, "usage: etcd_copy SRC DST NEW_PREFIX\n");
		return 2;
	}
	rc = gfs_kv_manifest_url(argv[1], &url, &d);
	if (!rc && !url) {
		fprintf(stderr, "etcd_copy: '%s' has no etcd manifest\n", argv[1]);
		return 1;
	}
	if (!rc)
		rc = gfs_graph_format_read(argv[1], &ver, id, &d);
	if (!rc)
		rc = gfs_etcd_open(url, NULL, &c.e, &d);
	if (!rc) {
		const char *old = gfs_etcd_prefix(c.e);
		size_t ol = strlen(old);
		/* "OLD/" and everything under it, never "OLDX/..." */
		if (!(pfx = malloc(ol + 2)))
			rc = -ENOMEM;
		else
			snprintf(pfx, ol + 2, "%s/", old);
		c.old_len = ol;
		c.new_prefix = argv[3];
		if (!rc)
			rc = gfs_etcd_prefix_end(pfx, ol + 1, &end, &elen);
		if (!rc)
			rc = gfs_etcd_range_each(c.e, pfx, ol + 1, end, elen, 0, 500, copy_one, &c,
						 NULL, &d);
	}
	if (!rc) {
		/* the same endpoints, the new prefix */
		char *slash = strstr(url, "://");
		slash = slash ? strchr(slash + 3, '/') : NULL;
		struct gfs_buf nu;
		gfs_buf_init(&nu);
		rc = slash ? gfs_buf_append(&nu, url, (size_t)(slash - url + 1)) : -EINVAL;
		if (!rc)
			rc = gfs_buf_append(&nu, argv[3], strlen(argv[3]));
		if (!rc)
			rc = gfs_graph_format_write_url(argv[2], id, nu.p);
		gfs_buf_release(&nu);
	}
	if (c.e)
		gfs_etcd_close(c.e);
	free(url);
	free(end);
	free(pfx);
	if (rc) {
		fprintf(stderr, "etcd_copy: %s\n", d.msg[0] ? d.msg : gfs_strerror(rc));
		return 1;
	}
	return 0;
}
