/* apply.h - a batch of small changes as one graph version (writes through
 * the mount, DESIGN.md §3 and §5; docs/semantics.md).
 *
 *     struct gfs_change ch[2] = {
 *         { .kind = GFS_CH_NODE_PUT, .type = "Person", .key = "carol",
 *           .key_len = 5, .data = "{\"name\":\"Carol\"}", .data_len = 16,
 *           .who = &w },
 *         { .kind = GFS_CH_NODE_DEL, .type = "Person", .key = "bob", .key_len = 3 },
 *     };
 *     gfs_graph_apply(g, ch, 2, &opts, &res, &d);
 *     // ch[i].rc / ch[i].msg: each change's own outcome
 *
 * One call publishes at most one graph version, through the one door of
 * DESIGN.md §3 (heal first, flock, sidecar of kind "mount", put-if-absent
 * table versions, confirm, exact CAS publish; a failure after arming is
 * undone or finished by recovery's code, as for a load).
 *
 * Changes are taken in order, each validated against the head as the
 * changes before it left it (the pins read under the locks plus the valid
 * earlier changes): a change that is invalid there gets its own rc and
 * message and is left out, and the others are still published (group
 * commit: one bad close() fails only itself).  So the result is the one
 * applying the valid changes one by one would give, in one version.
 *
 * Memory: O(size of the changes) plus, for a node delete or rename, the
 * edges incident to that node; nothing proportional to a table.
 *
 * Threads: calls on one graph handle may run at once from several threads
 * (and processes); they serialize on the table locks like any writers.
 * A change's rc: GFS_EDATA for anything wrong with its data or the graph
 * it would make (@key, @unique, @card, endpoints, types), -EEXIST (rename
 * onto a taken key), -ENOENT (delete or rename of an absent key), -EINVAL
 * (no key or endpoints given).
 */
#ifndef GFS_APPLY_H
#define GFS_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "graph.h"

enum gfs_change_kind {
	/* Upsert node `key` of node type `type` with the properties in
	 * `data` (a JSON object: the bytes of its file).  The key comes
	 * from key (the decoded file name); the @key properties (or
	 * data.id of an unkeyed type) in data must agree with it, and are
	 * filled in from it where data omits them. */
	GFS_CH_NODE_PUT,
	/* Delete node `key` and every edge incident to it (any edge type). */
	GFS_CH_NODE_DEL,
	/* Change node `key`'s key to `key2`: its @key properties (or its id)
	 * become key2's, every incident edge is re-pointed (same edge id,
	 * same data).  key2 taken -> EEXIST; key absent -> ENOENT. */
	GFS_CH_NODE_RENAME,
	/* Upsert an edge of edge type `type` from `from` to `to` with the
	 * properties in data (JSON object; NULL/0 = "{}" = no properties,
	 * the schema's defaults).  `key` is the edge id: an existing edge
	 * with that id is replaced (its from/to must equal these: EINVAL
	 * otherwise); an absent id creates the edge with that id; key NULL
	 * creates an edge whose id is data.id or a new ULID.  Both
	 * endpoints must exist once the earlier changes are applied. */
	GFS_CH_EDGE_PUT,
	/* Delete the edge with id `key` of edge type `type` (ENOENT if
	 * absent). */
	GFS_CH_EDGE_DEL,
};

/* Who asked for a change, from the FUSE request (recorded in the log). */
struct gfs_writer {
	uid_t uid;
	pid_t pid;
	char comm[17];  /* /proc/<pid>/comm, "" if unknown */
};

struct gfs_change {
	enum gfs_change_kind kind;
	const char *type;             /* "Person", "Knows" (NUL-terminated) */
	const char *key;              /* node key / edge id (canonical, may hold NULs) */
	size_t key_len;
	const char *key2;             /* NODE_RENAME: the new key */
	size_t key2_len;
	const char *from, *to;        /* EDGE_PUT: canonical endpoint ids */
	size_t from_len, to_len;
	const char *data;             /* PUT: JSON object text (not NUL-terminated) */
	size_t data_len;
	const struct gfs_writer *who; /* may be NULL */
	/* EDGE_PUT of a new edge that must be the first of its (from, to)
	 * pair, so it is named <to>.json (a symlink of that name): -EEXIST,
	 * nothing written, if an edge from -> to exists once the earlier
	 * changes are applied (it would be named <to>~<id>.json). */
	bool first_of_pair;

	/* Out. */
	int rc;           /* 0 published (or nothing to do); GFS_EDATA bad
			     data or endpoint, -EEXIST, -ENOENT, or the
			     batch's error when nothing was published */
	char msg[512];    /* why, when rc != 0: type, key, property, as
			     graphctl load prints it */
	uint64_t version; /* graph version that holds it (0: none); for a
			     change that changed nothing in a batch that
			     published nothing, the head it was checked
			     against */
};

struct gfs_apply_opts {
	const char *actor;   /* NULL = gfs_graph_actor(g) */
	const char *source;  /* for the log's detail ("mount /mnt") */
	const char *branch;  /* the branch written; NULL = main */
};

struct gfs_apply_result {
	uint64_t version;   /* graph version published, 0 if none */
	size_t applied;     /* changes with rc == 0 */
	size_t failed;      /* changes with rc != 0 */
	uint64_t rows_put, rows_deleted;
	char op_id[GFS_ULID_LEN + 1];
};

/* Validates and publishes changes[0..n) as above.  Returns 0 when every
 * valid change was published (possibly none were valid: then nothing is
 * published, version 0), or <0 / GFS_E* when the batch as a whole failed
 * (locks, I/O, recovery needed, a CAS lost more than a bounded number of
 * times): then no change is published and each change's rc is that error.
 * A lost CAS (another writer published first) is retried against the new
 * head, never reported as success.  The log record (op "write") lists
 * the changes (bounded) and every distinct writer. */
int gfs_graph_apply(struct gfs_graph *g, struct gfs_change *changes, size_t n,
		    const struct gfs_apply_opts *o, struct gfs_apply_result *res,
		    struct gfs_diag *d);

/* Validates changes[0..n) in order against the versions c has pinned
 * (every table of c->s must be open: gfs_commit_pin with all involved),
 * exactly as gfs_graph_apply validates a batch, and writes nothing: each
 * change gets its rc and msg.  The merge (merge.c) checks its result with
 * it.  GFS_APPLY_NO_CASCADE: a node delete whose node still has edges
 * fails (GFS_EDATA) instead of deleting them.  Returns 0 when every
 * change was checked (some may have failed), <0 on an error of the whole
 * (I/O, memory, a table not pinned: -EINVAL). */
struct gfs_commit;
enum gfs_apply_check_flags { GFS_APPLY_NO_CASCADE = 1 << 0 };
int gfs_apply_check(struct gfs_commit *c, struct gfs_change *changes, size_t n,
		    unsigned flags);

#endif
