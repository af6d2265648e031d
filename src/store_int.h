/* store_int.h - test-only backdoors into the LMDB manifest (store.c).
 *
 * Not part of the library API: only tests/ include this.  They exist so a
 * test can plant bytes the API would never write (a corrupt sidecar, a record
 * of a newer format) and force the map-growth path with a tiny map.
 */
#ifndef GFS_STORE_INT_H
#define GFS_STORE_INT_H

#include <stddef.h>

#include "manifest.h"

/* Puts raw bytes under key in the sub-database named db ("meta",
 * "versions", "sidecars", "audit", "audit_by_op"), overwriting.  0 or
 * -errno / GFS_E*. */
int gfs_manifest_debug_put_raw(struct gfs_manifest *m, const char *db,
			       const void *key, size_t klen,
			       const void *val, size_t vlen);

/* Map size used by environments opened after the call (0: the library
 * default).  Process-global; for tests of the growth path. */
void gfs_manifest_debug_set_initial_mapsize(size_t bytes);

/* Reader slots of lock files created after the call (0: the library
 * default).  Process-global; for tests of MDB_READERS_FULL. */
void gfs_manifest_debug_set_maxreaders(unsigned n);

/* The current map size of m's environment. */
size_t gfs_manifest_debug_mapsize(struct gfs_manifest *m);
struct gfs_kv;
size_t gfs_kv_lmdb_debug_mapsize(struct gfs_kv *kv); /* kv_lmdb.c */

/* With hook set, the next write transaction of every store runs its
 * callback, throws that run away (as an optimistic backend does on a
 * conflict), calls hook(arg) outside any transaction (where a test may
 * write in between), and runs the callback again; NULL: off.
 * Process-global; for tests of kv.h's write-callback rule. */
void gfs_manifest_debug_set_rerun(void (*hook)(void *arg), void *arg);

/* How many runs of write callbacks were thrown away so (by the hook, or by
 * GRAPHFS_KV_RERUN=1 in a failpoint build: kv_lmdb.c). */
unsigned long gfs_manifest_debug_reruns(void);

/* Decodes payload as a record of db ("versions", "sidecars", "audit",
 * "branches", "tver", "next") stored under key, exactly as a read of the
 * manifest does, but with the checksum computed here so the decoder sees
 * arbitrary bytes (fuzz/fuzz_records.c).  0 with *json the record's
 * public JSON (new, free(); NULL for tver/next), or the decoder's error:
 * GFS_ECORRUPT / GFS_EFORMAT (*json: a refused sidecar's raw form), -ENOMEM,
 * -EINVAL for another db. */
int gfs_manifest_debug_decode(const char *db, const void *key, size_t klen,
			      const void *payload, size_t n, char **json);

#endif
