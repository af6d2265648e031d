/* failpoints.h - the one catalog of failpoint names (DESIGN.md §7).
 *
 * Every name is spelled once, here.  Call sites use the enum, so a typo does
 * not compile in any build:
 *
 *     err = gfs_fp_hit(GFS_FP_COMMIT_AFTER_SIDECAR);
 *     if (err) { rc = -err; goto out_unlock; }
 *
 * gfs_fp_hit() returns 0 (not armed / not this hit) or a positive errno to
 * inject.  The "exit" and "park" actions never return to the caller as an
 * error: exit _exit()s on the spot, park blocks until released, then
 * returns 0.  Arming (docs/testing.md):
 *
 *   GRAPHFS_FAILPOINTS="commit/after_confirm=exit,table/after_link=error:5@2"
 *   GRAPHFS_FP_DIR=/tmp/x   (where park announces "reached")
 *
 * or libfiu's fiu-run/fiu-ctrl with failnum = errno (error), 10000 (exit),
 * 10001 (park).  Names are area/step and are never renamed or reused.
 * Never hit a failpoint inside an LMDB write transaction.
 */
#ifndef GFS_FAILPOINTS_H
#define GFS_FAILPOINTS_H

/* GFS_FAILPOINTS_ENABLED comes from config.h: a file that forgot it would
 * silently call the stubs below in a failpoint build. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

/* sync/skip_* points leave out one durability call (any nonzero return =
 * skip it): tests/powercut/skip_sync.sh proves that the power-cut checker
 * notices each one missing. */
#define GFS_FAILPOINT_CATALOG(X)                                           \
	X(LOAD_AFTER_STAGE, "load/after_stage")                            \
	X(LOAD_AFTER_LOCKS, "load/after_locks")                            \
	X(COMMIT_SKIP_LOCKS, "commit/skip_locks")                          \
	X(COMMIT_AFTER_SIDECAR, "commit/after_sidecar")                    \
	X(COMMIT_AFTER_TABLE, "commit/after_table")                        \
	X(COMMIT_AFTER_CONFIRM, "commit/after_confirm")                    \
	X(COMMIT_BEFORE_PUBLISH, "commit/before_publish")                  \
	X(COMMIT_AFTER_PUBLISH, "commit/after_publish")                    \
	X(TABLE_AFTER_TMP_WRITE, "table/after_tmp_write")                  \
	X(TABLE_AFTER_LINK, "table/after_link")                            \
	X(RECOVER_AFTER_LOCKS, "recover/after_locks")                      \
	X(RECOVER_AFTER_CLASSIFY, "recover/after_classify")                \
	X(RECOVER_AFTER_COMPENSATE, "recover/after_compensate")            \
	X(RECOVER_BEFORE_AUDIT, "recover/before_audit")                    \
	X(RECOVER_AFTER_PUBLISH, "recover/after_publish")                  \
	X(STORE_MAP_GROW, "store/map_grow")                                \
	X(LOAD_AFTER_HEAL, "load/after_heal")                              \
	X(NOTIFIER_BEFORE_APPLY, "notifier/before_apply")                  \
	X(SYNC_SKIP_TABLE_TMP, "sync/skip_table_tmp")                      \
	X(SYNC_SKIP_TABLE_DIR, "sync/skip_table_dir")                      \
	X(SYNC_SKIP_FORMAT, "sync/skip_format")                            \
	X(SYNC_SKIP_SCHEMA, "sync/skip_schema")                            \
	X(SYNC_SKIP_COMPENSATION, "sync/skip_compensation")                \
	X(SYNC_SKIP_STORE_PARENT, "sync/skip_store_parent")                \
	X(SYNC_SKIP_MANIFEST_DIR, "sync/skip_manifest_dir")                \
	X(UPGRADE_AFTER_MANIFEST, "upgrade/after_manifest")                \
	X(SYNC_SKIP_FORMAT_DIR, "sync/skip_format_dir")                    \
	X(SYNC_SKIP_SCHEMA_DIR, "sync/skip_schema_dir")                    \
	X(SYNC_SKIP_TABLE_CREATE, "sync/skip_table_create")               \
	X(APPLY_AFTER_HEAL, "apply/after_heal")                            \
	X(APPLY_AFTER_LOCKS, "apply/after_locks")                          \
	X(RECOVER_AFTER_RESERVE, "recover/after_reserve")                  \
	X(MERGE_AFTER_PLAN, "merge/after_plan")                            \
	X(MERGE_AFTER_HEAL, "merge/after_heal")                            \
	X(MERGE_AFTER_LOCKS, "merge/after_locks")                          \
	X(SCHEMA_AFTER_HEAL, "schema/after_heal")                          \
	X(SCHEMA_AFTER_LOCKS, "schema/after_locks")                        \
	X(SCHEMA_AFTER_FILE, "schema/after_file")                          \
	X(COMPACT_AFTER_HEAL, "compact/after_heal")                        \
	X(COMPACT_AFTER_LOCKS, "compact/after_locks")                      \
	X(GC_AFTER_ARM, "gc/after_arm")                                    \
	X(GC_AFTER_COMMIT, "gc/after_commit")                              \
	X(GC_AFTER_UNLINK, "gc/after_unlink")                              \
	X(GC_BEFORE_AUDIT, "gc/before_audit")                              \
	X(MIGRATE_AFTER_BATCH, "migrate/after_batch")                      \
	X(MIGRATE_AFTER_COPY, "migrate/after_copy")                        \
	X(MIGRATE_AFTER_MARK, "migrate/after_mark")                        \
	X(MIGRATE_AFTER_FORMAT, "migrate/after_format")                    \
	X(VIEW_AFTER_HEAD_READ, "view/after_head_read")                    \
	X(VIEW_HEAD_WAIT, "view/head_wait")

enum gfs_fp {
#define GFS_FP_ENUM(id, name) GFS_FP_##id,
	GFS_FAILPOINT_CATALOG(GFS_FP_ENUM)
#undef GFS_FP_ENUM
	GFS_FP__COUNT
};

/* failnum values with a meaning beyond "inject this errno". */
#define GFS_FP_ACTION_EXIT 10000
#define GFS_FP_ACTION_PARK 10001

/* Names indexed by enum gfs_fp. */
extern const char *const gfs_fp_names[GFS_FP__COUNT];

#ifdef GFS_FAILPOINTS_ENABLED
/* Reads GRAPHFS_FAILPOINTS once; idempotent, cheap after the first call.
 * Returns 0 or -EINVAL with the bad spec in d (may be NULL). */
struct gfs_diag;
int gfs_fp_init(struct gfs_diag *d);
int gfs_fp_hit(enum gfs_fp fp);
#else
static inline int gfs_fp_init(void *d) { (void)d; return 0; }
static inline int gfs_fp_hit(enum gfs_fp fp) { (void)fp; return 0; }
#endif

#endif
