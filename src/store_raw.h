/* store_raw.h - a manifest's records as bytes, for graphctl migrate
 * (migrate.c), which copies every sub-database from one kv.h backend to
 * another without decoding what it copies.
 *
 *     gfs_manifest_raw_open(dir, &gfs_kv_lmdb, NULL, flags, &m, d)
 *     kv = gfs_manifest_raw_kv(m)              borrowed, until close
 *     for db < gfs_manifest_raw_n_dbs(): name, flags (kv.h db flags)
 *     gfs_kv_read / gfs_kv_write on kv         records as stored (sealed)
 *
 * Only migrate.c uses it: everything else goes through manifest.h, whose
 * write transactions keep store.c's invariants (9: a moved manifest is
 * frozen), which raw writes do not check.
 */
#ifndef GFS_STORE_RAW_H
#define GFS_STORE_RAW_H

#include "kv.h"
#include "manifest.h"

/* meta keys of a migration (docs/format.md "Moving between backends"),
 * values sealed one-line JSON:
 *   moved_to       in the old manifest after the copy, before the check
 *                  (deleted again if the check fails):
 *                  {"store":ID,"to":URL|"lmdb","time_ns":T}; every
 *                  write transaction of store.c refuses it (-ESTALE)
 *   migrated_from  in the new one, put before the first record is copied:
 *                  {"store":ID,"from":URL|"lmdb","time_ns":T}; marks a
 *                  partial copy as this store's, so a rerun may clear it */
#define GFS_META_MOVED_TO "moved_to"
#define GFS_META_MIGRATED_FROM "migrated_from"

/* gfs_manifest_open_url with the backend given (ops) instead of the one
 * STORE/FORMAT names: url for etcd, NULL for LMDB (STORE/manifest/). */
int gfs_manifest_raw_open(const char *store_dir, const struct gfs_kv_ops *ops,
			  const char *url, unsigned flags,
			  struct gfs_manifest **out, struct gfs_diag *d);

unsigned gfs_manifest_raw_n_dbs(void);
const char *gfs_manifest_raw_db_name(unsigned db);
unsigned gfs_manifest_raw_db_flags(unsigned db);
struct gfs_kv *gfs_manifest_raw_kv(struct gfs_manifest *m);

/* Puts payload (a string) under the string key with its seal. */
int gfs_manifest_raw_seal_put(struct gfs_kv_txn *txn, unsigned db,
			      const char *key, const char *payload);
/* Verifies v's seal; on 0, v is shrunk to the payload. */
int gfs_manifest_raw_unseal(unsigned db, const struct gfs_kv_val *k,
			    struct gfs_kv_val *v);

#endif
