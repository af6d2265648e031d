/* manifest.h - the manifest: graph head, history, pins, sidecars, audit.
 *
 * One narrow interface (DESIGN.md §2-§4).  store.c keeps the records over
 * an ordered key/value store (kv.h) whose one backend today is LMDB
 * (kv_lmdb.c, the only file that includes <lmdb.h>); a multi-host backend
 * implements kv.h, not these functions.  Every call is one short
 * transaction; nothing here blocks on table locks or hits a failpoint inside
 * a write transaction, whose callback may run more than once (kv.h).
 *
 *     gfs_manifest_open(store_dir, 0, &m)        once per process (MDB_NOTLS)
 *     gfs_manifest_head(m, &gv)                  newest graph version
 *     gfs_manifest_sidecar_put(m, &sc)           A: arm (durable on return)
 *     gfs_manifest_sidecar_confirm(m, op_id)     B: commit point
 *     gfs_manifest_publish(m, &pub, &newver)     C: CAS + version + delete sidecar
 *     gfs_manifest_close(m)
 *
 * Never call open before fork(); never use one handle across fork().
 * Open after any fork (daemonizing included): LMDB state never survives one.
 * Opening the same store twice in one process shares one environment
 * (refcounted); a read-write open while it is open read-only is -EBUSY.
 * Handles may be shared between threads (MDB_NOTLS).  GFS_MANIFEST_RDONLY
 * falls back to LMDB's MDB_NOLOCK when the manifest directory is not
 * writable (best effort: such readers are invisible to writers).
 */
#ifndef GFS_MANIFEST_H
#define GFS_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct gfs_manifest;

#define GFS_TABLE_NAME_MAX 200
#define GFS_ACTOR_MAX 128
/* Sidecar formats: 1 the original; 2 adds per table "comp", the branch
 * ("branch":{"name","id"}), a merge's "merge" object and a schema apply's
 * "schema":{"old_id","new_id"} (format 1 still decodes; a build that knows
 * only 1 refuses a schema sidecar instead of rolling it forward with the
 * wrong schema). */
#define GFS_SIDECAR_FORMAT 2
/* A branch name: [A-Za-z0-9][A-Za-z0-9._-]{0,63} (docs/branches-design.md
 * §1.1), plus its NUL. */
#define GFS_BRANCH_NAME_MAX 65

struct gfs_pin {
	char table[GFS_TABLE_NAME_MAX];
	uint32_t version;
};

/* One graph version record. */
struct gfs_gv {
	uint64_t version;
	uint64_t time_ns;      /* commit time, taken in the publish txn, monotonic */
	char op[24];           /* "init", "load", "upsert", "delete", "recover", ... */
	char op_id[GFS_ULID_LEN + 1];
	char actor[GFS_ACTOR_MAX];
	char schema_id[17];
	char *detail;          /* free-form JSON object text or NULL (e.g. mode, rows) */
	struct gfs_pin *pins;  /* every table, sorted by name */
	size_t n_pins;
	/* The branch it was published on.  Records written before branches
	 * (store format 2) decode as "main" with an empty id. */
	char branch[GFS_BRANCH_NAME_MAX];
	char branch_id[GFS_ULID_LEN + 1];
	/* parents[0]: the branch's previous head; parents[1]: a merge's
	 * source.  Records before branches: [N-1] ([] for gv 1). */
	uint64_t parents[2];
	size_t n_parents;
	/* Removed by gc (a tombstone): gfs_manifest_get says -ENOENT; only
	 * gfs_manifest_history shows it.  Its time, op and pins stay as the
	 * record of when each table version was first published (row
	 * mtimes), but the pins name files gc may have collected. */
	bool removed;
};
void gfs_gv_free(struct gfs_gv *gv);
/* The pin of table in gv, or 0 if gv has none. */
uint32_t gfs_gv_pin(const struct gfs_gv *gv, const char *table);

/* One table of a sidecar or publish. written: expected -> post; else a read
 * table whose pin must still equal expected. */
struct gfs_sc_table {
	char table[GFS_TABLE_NAME_MAX];
	bool written;
	uint32_t expected;
	uint32_t post;        /* gfs_manifest_sidecar_put with post == 0 on a
				 written table: reserve next[T] (W3) */
	uint32_t comp;        /* the compensation reserved for a roll back
				 (gfs_manifest_sidecar_reserve_comp), 0 none */
};

/* A merge's sidecar (kind "merge", docs/branches-design.md §5): what it
 * merges, so that a roll forward publishes parents [H, S] and gc keeps
 * the gvs it names.  source_gv 0: not a merge. */
struct gfs_sc_merge {
	char source[GFS_BRANCH_NAME_MAX];
	char source_id[GFS_ULID_LEN + 1];
	uint64_t source_gv, base_gv, target_gv;
};

/* A gc's plan (kind "gc", docs/branches-design.md §6.3): the graph
 * versions it removes and the table-version files it unlinks. */
struct gfs_sc_unlink {
	char table[GFS_TABLE_NAME_MAX];
	uint32_t version;
	uint64_t bytes;
};
struct gfs_sc_gc {
	uint64_t *remove;            /* ascending */
	size_t n_remove;
	struct gfs_sc_unlink *unlink; /* by table, then descending version */
	size_t n_unlink;
};

struct gfs_sidecar {
	int format;            /* GFS_SIDECAR_FORMAT */
	char op_id[GFS_ULID_LEN + 1];
	char kind[24];         /* writer kind: "load", "mount", "recover", ... */
	char actor[GFS_ACTOR_MAX];
	uint64_t start_ns;
	bool confirmed;
	struct gfs_sc_table *tables; /* sorted by name */
	size_t n_tables;
	/* The branch it publishes on; "" (sidecars written before branches,
	 * and writers that name none) means main. */
	char branch[GFS_BRANCH_NAME_MAX];
	char branch_id[GFS_ULID_LEN + 1];
	struct gfs_sc_merge merge;
	struct gfs_sc_gc *gc;  /* kind "gc": its plan, else NULL */
	char *raw;             /* set when the record did not parse: its bytes */
	uint64_t rev;          /* revision of the record as read: a hash of its
				  stored bytes (gfs_publish.sidecar_rev) */
	/* kind "schema" (format 2): the schema ids it moves from and to; both
	 * empty for every other kind.  A roll forward publishes schema_new. */
	char schema_old[17], schema_new[17];
	/* etcd stores: the writer's lease holder (lock.c, "<lease id>.<n>"),
	 * host and pid, so a sweep resolves it only when that holder's
	 * leases are gone (gfs_lockset_owner_gone); "" for flock() locks. */
	char holder[48];
	char holder_host[64];
	int64_t holder_pid;
};
void gfs_sidecar_free(struct gfs_sidecar *sc);
/* Records holder with this process's host name and pid. */
void gfs_sidecar_set_holder(struct gfs_sidecar *sc, const char *holder);

struct gfs_audit {
	char op_id[GFS_ULID_LEN + 1];
	char decision[24];     /* "roll-forward", "roll-back", "discard" */
	char kind[24];
	char actor[GFS_ACTOR_MAX];
	char resolver[GFS_ACTOR_MAX]; /* "pid 123 on host (graphfs mount /mnt)" */
	uint64_t time_ns;
	uint64_t graph_version;       /* version published, 0 if none */
	struct gfs_sc_table *tables;  /* written tables: expected = from, post = to */
	size_t n_tables;
};
void gfs_audit_free(struct gfs_audit *a);

enum gfs_manifest_flags {
	GFS_MANIFEST_RDONLY = 1 << 0,
	GFS_MANIFEST_CREATE = 1 << 1, /* create the environment (init only) */
	GFS_MANIFEST_UPGRADE = 1 << 2, /* accept format 1 (graphctl upgrade only) */
};

int gfs_manifest_open(const char *store_dir, unsigned flags,
		      struct gfs_manifest **out, struct gfs_diag *d);
/* The same with the manifest's URL given (init of a store on etcd, before
 * FORMAT names it: "etcd://H:P,.../PREFIX"); url NULL = gfs_manifest_open. */
int gfs_manifest_open_url(const char *store_dir, const char *url,
			  unsigned flags, struct gfs_manifest **out,
			  struct gfs_diag *d);
void gfs_manifest_close(struct gfs_manifest *m);

/* Writes graph version 1 (init): fails -EEXIST if any version exists. */
int gfs_manifest_init(struct gfs_manifest *m, const struct gfs_gv *first);
/* After init, before the store's FORMAT names it: makes durable the names
 * the manifest's creation made (LMDB: manifest/, data.mdb); 0 or -errno
 * with d naming the directory. */
int gfs_manifest_sync_created(const char *store_dir, const char *url,
			      struct gfs_diag *d);

/* The head of branch main; *out is new, free with gfs_gv_free(). */
int gfs_manifest_head(struct gfs_manifest *m, struct gfs_gv **out);
/* The highest graph version number of any branch (numbering only), 0 on
 * error. */
uint64_t gfs_manifest_head_version(struct gfs_manifest *m);

/* ---- branches (docs/branches-design.md §1.1) ----
 *
 *     gfs_manifest_branch_create(m, "dev", "main", 0, actor, &b, d)
 *     gfs_manifest_branch_head(m, "dev", &gv)       dev's head gv
 *     gfs_manifest_publish(m, &(pub){.branch = "dev", ...}, &n, d)
 *     gfs_manifest_branch_delete(m, "dev", d)
 *
 * A branch is one record: name -> {id, head, from, created_ns, actor}.
 * `main` is written by init (and by upgrade or the first branch create on
 * an older store, whose main has no record yet: its head is then the
 * highest graph version).  Each call is one transaction; creating a branch
 * copies nothing. */
struct gfs_branch {
	char name[GFS_BRANCH_NAME_MAX];
	char id[GFS_ULID_LEN + 1];   /* "" for main of an older store */
	uint64_t head;               /* its newest graph version */
	uint64_t from;               /* the graph version it was created at */
	uint64_t created_ns;
	char actor[GFS_ACTOR_MAX];
};

bool gfs_branch_name_valid(const char *name);
/* -ENOENT: no such branch. */
int gfs_manifest_branch_get(struct gfs_manifest *m, const char *name,
			    struct gfs_branch *out);
/* The head gv of branch name; -ENOENT: no such branch. */
int gfs_manifest_branch_head(struct gfs_manifest *m, const char *name,
			     struct gfs_gv **out);
/* Both, read in one transaction (a writer records b->id in its sidecar). */
int gfs_manifest_branch_read(struct gfs_manifest *m, const char *name,
			     struct gfs_branch *b, struct gfs_gv **out);
/* Creates branch name at graph version from_gv, or at the head of branch
 * from_branch when that is not NULL (read in the same transaction); both
 * NULL and 0: at main's head.
 * -EINVAL bad name, -EEXIST taken, -ENOENT from_branch or from_gv missing;
 * d says which.  *out (may be NULL) gets the record. */
int gfs_manifest_branch_create(struct gfs_manifest *m, const char *name,
			       const char *from_branch, uint64_t from_gv,
			       const char *actor, struct gfs_branch *out,
			       struct gfs_diag *d);
/* -EPERM for main, -EBUSY while a sidecar names it (pending recovery) or
 * any sidecar cannot be read, -ENOENT no such branch. */
int gfs_manifest_branch_delete(struct gfs_manifest *m, const char *name,
			       struct gfs_diag *d);
/* Every branch, by name; *out is new (free()). */
int gfs_manifest_branch_list(struct gfs_manifest *m, struct gfs_branch **out,
			     size_t *n);
/* A counter every branch create and delete raises (meta/branches_gen, 0
 * when none ever was): a watcher that polls it sees a branch created and
 * deleted between two polls.  0 on error too. */
uint64_t gfs_manifest_branches_gen(struct gfs_manifest *m);
/* JSON text of a branch record (one line); new string, free(). */
char *gfs_branch_to_json(const struct gfs_branch *b);
/* Writes main's record when there is none (a store made before branches):
 * head = the highest graph version, from = 1.  *created says whether it
 * did.  Part of the format-3 upgrade. */
int gfs_manifest_branches_upgrade(struct gfs_manifest *m, bool *created);
/* Graph version n; -ENOENT if it never existed or was collected. */
int gfs_manifest_get(struct gfs_manifest *m, uint64_t n, struct gfs_gv **out);
/* As gfs_manifest_get, and a removed version's tombstone too (fsck). */
int gfs_manifest_get_any(struct gfs_manifest *m, uint64_t n,
			 struct gfs_gv **out);
/* Calls fn for versions from..to (inclusive, to == 0: head) in order, each
 * in its own short read transaction batch; fn's nonzero return stops and is
 * returned.  gv is borrowed for the call. */
int gfs_manifest_history(struct gfs_manifest *m, uint64_t from, uint64_t to,
			 int (*fn)(const struct gfs_gv *gv, void *arg), void *arg);

/* ---- the table-version counter and index (store format 3) -------------
 *
 * next[T] is the smallest number never reserved for table T (absent: 1);
 * tver[T][v] says who reserved v and what became of it
 * (docs/branches-design.md §1.1, §2, §3).  Numbers come only from next[T]
 * and are never reused: a gap is a `void` record. */
enum gfs_tver_state {
	GFS_TVER_RESERVED = 1,  /* a pending sidecar names it (post or comp) */
	GFS_TVER_PUBLISHED,     /* a graph version pinned it (first_gv) */
	GFS_TVER_RETIRED,       /* linked by a resolved op, never published */
	GFS_TVER_VOID,          /* reserved, then resolved without a file */
	GFS_TVER_COLLECTED,     /* gc unlinked it; the record stays */
};
const char *gfs_tver_state_name(enum gfs_tver_state s);

struct gfs_tver_rec {
	char table[GFS_TABLE_NAME_MAX];
	uint32_t v;
	enum gfs_tver_state state;
	char op_id[GFS_ULID_LEN + 1]; /* who reserved (or wrote) it; may be "" */
	uint32_t parent;        /* the version it is built on (0 none) */
	uint32_t content_of;    /* a compensation: the version it restores */
	bool compensation;
	uint64_t first_gv;      /* published: the first gv that pinned it */
	uint64_t bytes;         /* file size when known, else 0 */
};

/* A state change inside a publish (gfs_publish.tver_sets): the record of
 * (table, v) gets state (first_gv = the new gv for published).  A record
 * that is absent is created with that state. */
struct gfs_tver_set {
	char table[GFS_TABLE_NAME_MAX];
	uint32_t v;
	enum gfs_tver_state state;
};

/* tver[table][v] into *out: 0, -ENOENT, or an error. */
int gfs_manifest_tver_get(struct gfs_manifest *m, const char *table,
			  uint32_t v, struct gfs_tver_rec *out);
/* Calls fn for every record of table in number order, in one read
 * transaction (fn must not call the manifest); fn's nonzero return stops
 * and is returned. */
int gfs_manifest_tver_list(struct gfs_manifest *m, const char *table,
			   int (*fn)(const struct gfs_tver_rec *r, void *arg),
			   void *arg);
/* next[table] into *out (1 when the table has none). */
int gfs_manifest_next(struct gfs_manifest *m, const char *table,
		      uint32_t *out);

struct gfs_publish {
	const char *branch;     /* NULL: main */
	const char *branch_id;  /* NULL or "": any id (main, older sidecars);
				   else the branch record must have it (a
				   deleted or re-created branch -> GFS_ECAS) */
	const char *expected_schema; /* NULL, or the schema id the branch
				   head must still have (else GFS_ECAS) */
	uint64_t merge_parent;  /* 0, or a merge's source gv: parents [H, S] */
	const char *op;
	const char *op_id;
	const char *actor;
	const char *schema_id;  /* NULL: keep the head's */
	const char *detail;     /* JSON object text or NULL */
	const struct gfs_sc_table *tables; /* CAS: every pin must equal expected;
					      written ones move to post */
	size_t n_tables;
	const char *sidecar;    /* op id of the sidecar to delete, or NULL */
	bool require_sidecar;   /* recovery: sidecar gone -> GFS_EGONE, nothing written */
	uint64_t sidecar_rev;   /* recovery: nonzero = the sidecar's rev as
				   classified; a different record -> GFS_ECAS
				   ("changed since it was classified"), nothing
				   written */
	const struct gfs_audit *audit; /* written in the same txn, or NULL */
	bool no_version;        /* recovery with nothing to publish: only delete
				   the sidecar and write the audit */
	const struct gfs_tver_set *tver_sets; /* states moved in the same txn
						 (after the automatic ones) */
	size_t n_tver_sets;
};
/* The CAS publish (DESIGN.md §3 C, §4; docs/branches-design.md §4).  One
 * write transaction: reads the branch record (its id must be branch_id when
 * given), checks every pin against the branch's head H (and its schema
 * against expected_schema), writes graph version N = global head + 1 on the
 * branch with parents [H] and time = max(now, the previous gv's time),
 * moves the branch head to N, deletes the sidecar, writes the audit.  GFS_ECAS (pins moved; nothing
 * written, detail names the table) or GFS_EGONE.  *out_version may be NULL. */
int gfs_manifest_publish(struct gfs_manifest *m, const struct gfs_publish *p,
			 uint64_t *out_version, struct gfs_diag *d);

/* Sidecars.  put fails -EEXIST if op_id exists.  Durable on return.
 * In the same transaction (W3): a written table with post == 0 gets
 * p = next[T], next[T] = p + 1 (stored as its post); every written post
 * and comp gets a `reserved` record (parent = expected) unless it has one,
 * and next[T] is raised past it.  The reserved posts are copied back into
 * sc->tables. */
int gfs_manifest_sidecar_put(struct gfs_manifest *m, struct gfs_sidecar *sc);
/* W4' (EEXIST on our link of post p of table): one transaction that checks
 * the sidecar is op_id's, unconfirmed and still names p, then marks
 * tver[table][p] void, reserves p' = next[table]++ and stores it as the
 * post.  *newp = p'.  GFS_ECAS if the sidecar changed (confirmed, another
 * post), -ENOENT if it is gone. */
int gfs_manifest_sidecar_repost(struct gfs_manifest *m, const char *op_id,
				const char *table, uint32_t p, uint32_t *newp);
/* §3.1: a roll back's compensation number.  One transaction: if table
 * already has a comp and the op is unconfirmed, it is returned (resolvers
 * share it); else the sidecar must still have revision rev (else GFS_ECAS,
 * -ENOENT when gone) and c = next[table]++ with tver[table][c] =
 * reserved(op, content_of = content_of) is stored in the sidecar.  *c is
 * set, *new_rev is the sidecar's revision afterwards. */
int gfs_manifest_sidecar_reserve_comp(struct gfs_manifest *m,
				      const char *op_id, uint64_t rev,
				      const char *table, uint32_t content_of,
				      uint32_t *c, uint64_t *new_rev);
int gfs_manifest_sidecar_confirm(struct gfs_manifest *m, const char *op_id);
/* -ENOENT if absent; GFS_EFORMAT (with sc->raw set) if it does not parse or
 * is newer than GFS_SIDECAR_FORMAT: then *out is still set (op_id from the
 * key, format if readable, raw = the record's bytes) and must be freed. */
int gfs_manifest_sidecar_get(struct gfs_manifest *m, const char *op_id,
			     struct gfs_sidecar **out);
/* All sidecars, oldest first (by start time, then op id).  *out is a new
 * array of n pointers: free each with gfs_sidecar_free, then free(*out).
 * Records that do not parse are listed too, with raw set and start_ns 0
 * (so first): the sweep refuses them loudly; they stay on disk. */
int gfs_manifest_sidecar_list(struct gfs_manifest *m, struct gfs_sidecar ***out,
			      size_t *n);

/* gc's commit point (G3), one write transaction: checks that the
 * sidecar op_id is still the record of revision rev (else GFS_ECAS;
 * gone: GFS_EGONE) and that no graph version in remove is the head
 * (GFS_ECAS), then marks each of them removed and confirms the sidecar.
 * A version already removed stays so; one that does not exist is
 * GFS_ECORRUPT. */
int gfs_manifest_gc_commit(struct gfs_manifest *m, const char *op_id,
			   uint64_t rev, const uint64_t *remove, size_t n,
			   struct gfs_diag *d);

/* How many gc commits there were (0 if none, or on error): a mount polls
 * it to drop removed versions from versions/ and shorten their log lines. */
uint64_t gfs_manifest_gc_gen(struct gfs_manifest *m);

/* The etcd client of a store whose manifest is on etcd (borrowed, valid
 * until the manifest is closed), or NULL for an LMDB store: a mount
 * watches the store's generation keys through it instead of polling
 * (fuse/notify.c, docs/multi-host.md §5). */
struct gfs_etcd;
struct gfs_etcd *gfs_manifest_etcd(struct gfs_manifest *m);

/* Audit records in resolution order. */
int gfs_manifest_audit_list(struct gfs_manifest *m,
			    int (*fn)(const struct gfs_audit *a, void *arg),
			    void *arg);
int gfs_manifest_audit_count(struct gfs_manifest *m, const char *op_id,
			     size_t *n);

/* Converts an environment opened with GFS_MANIFEST_UPGRADE to the current
 * manifest format in one write transaction (every value gets its checksum,
 * every graph-version and audit record must decode); *records counts the
 * values rewritten, 0 when it already was current.  A crash leaves format 1
 * or the current format, never a mix. */
int gfs_manifest_upgrade(struct gfs_manifest *m, uint64_t *records,
			 struct gfs_diag *d);

/* Format 2 -> 3 (graphctl upgrade): in one write transaction writes every
 * next and tver record given (computed from the table files by upgrade.c)
 * and sets the manifest format to 3.  Does nothing (*done = false) when the
 * manifest already is format 3.  Pending sidecars' numbers are given by the
 * caller as reserved records. */
int gfs_manifest_upgrade_index(struct gfs_manifest *m,
			       const struct gfs_tver_rec *recs, size_t n,
			       const struct gfs_pin *nexts, size_t n_next,
			       bool *done, struct gfs_diag *d);
/* The manifest format found at open (1, 2 or 3). */
int gfs_manifest_format(const struct gfs_manifest *m);

/* Checks every value of every database (checksum, and that versions,
 * sidecars and audit records decode), calling report once per bad key.
 * Returns the number reported, or <0 if the manifest cannot be read. */
int gfs_manifest_check(struct gfs_manifest *m,
		       void (*report)(const char *msg, void *arg), void *arg);

/* What the last GFS_ECORRUPT of this thread from the manifest was: the
 * record's database and key, and why.  Borrowed, thread-local. */
const char *gfs_manifest_last_corruption(void);

/* Store-level metadata key/values (format, store id); small strings. */
int gfs_manifest_meta_get(struct gfs_manifest *m, const char *key, char **val);
int gfs_manifest_meta_put(struct gfs_manifest *m, const char *key,
			  const char *val);

/* JSON text of a record (one line, no newline), for --json and .graphfs/.
 * Returns a new string; free(). */
char *gfs_gv_to_json(const struct gfs_gv *gv);
char *gfs_sidecar_to_json(const struct gfs_sidecar *sc);
char *gfs_audit_to_json(const struct gfs_audit *a);

#endif
