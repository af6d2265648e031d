/* kv_etcd.h - what the etcd backend of kv.h (kv_etcd.c) offers beyond
 * struct gfs_kv_ops: the store's manifest URL and the fence hook.
 *
 *     rc = gfs_kv_manifest_url(store_dir, &url, d);   NULL: an LMDB store
 *     gfs_kv_etcd_set_fence(kv, fn, arg);             leases (lease_etcd.c)
 */
#ifndef GFS_KV_ETCD_H
#define GFS_KV_ETCD_H

#include <stddef.h>

#include "etcd.h"
#include "kv.h"

/* The manifest URL of STORE's FORMAT file ("manifest etcd://..." line), or
 * *url = NULL for a store whose manifest is LMDB (no such line, no FORMAT
 * yet).  Only the line is read: graph.c checks FORMAT's checksum, which
 * covers it.  *url: free(). */
int gfs_kv_manifest_url(const char *store_dir, char **url, struct gfs_diag *d);

/* Compares a fence hook adds to every write transaction's commit. */
struct gfs_kv_etcd_cmps {
	struct gfs_etcd_cmp *a;
	size_t n, cap;
};
int gfs_kv_etcd_cmps_add(struct gfs_kv_etcd_cmps *c, const struct gfs_etcd_cmp *cmp);

/* Called before each commit attempt of a write transaction (outside the
 * write callback): appends the compares that prove this process still
 * holds its leases (keys and values must live until the next call or
 * until the hook is replaced).  If one of them fails, the write ends with
 * -ENOLCK ("lease lost") instead of being retried.  fn NULL: no fence
 * (today's default; the lease module sets it).  kv must be an etcd
 * handle; the hook is the store's, shared by its handles in the process. */
typedef int (*gfs_kv_etcd_fence_fn)(void *arg, struct gfs_kv_etcd_cmps *out);
void gfs_kv_etcd_set_fence(struct gfs_kv *kv, gfs_kv_etcd_fence_fn fn, void *arg);

/* The client of the store's cluster (borrowed, valid until kv closes). */
struct gfs_etcd *gfs_kv_etcd_client(struct gfs_kv *kv);

#endif
