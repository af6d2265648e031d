/* graph.h - a graph store as a whole: init, open, load, export, fsck.
 *
 * The top of libgraphfs: graphctl and the FUSE driver call this (and the
 * read APIs of table.h / manifest.h it hands out).
 *
 *     gfs_graph_init(dir, schema_text, len, "people.pg", &d)   graph version 1
 *     gfs_graph_open(dir, 0, &g, &d)
 *     gfs_graph_load(g, fd, &opts, &res, &d)                   one new version
 *     gfs_graph_export(g, version, type_or_NULL, out_fd, &d)
 *     gfs_graph_close(g)
 *
 * Store layout (docs/format.md): FORMAT, manifest/ (LMDB), tables/<t>/<N>,
 * schemas/<id>.pg, locks/<t>.lock, staging/.
 */
#ifndef GFS_GRAPH_H
#define GFS_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manifest.h"
#include "schema.h"
#include "table.h"
#include "util.h"

#define GFS_FORMAT_VERSION 3

struct gfs_graph;

/* Creates the store in dir (missing or empty): FORMAT, manifest, one empty
 * version 1 of every table, graph version 1.  GFS_ESCHEMA on a bad schema
 * (nothing created), -EEXIST if dir holds a store or other files. */
int gfs_graph_init(const char *dir, const char *schema_text, size_t len,
		   const char *schema_name, const char *actor,
		   struct gfs_diag *d);
/* The same with the manifest on etcd (url "etcd://H:P,.../PREFIX", NULL:
 * LMDB in dir/manifest): FORMAT names the URL; -EEXIST if PREFIX already
 * holds keys. */
int gfs_graph_init_url(const char *dir, const char *schema_text, size_t len,
		       const char *schema_name, const char *actor,
		       const char *url, struct gfs_diag *d);

enum gfs_graph_flags {
	GFS_GRAPH_RDONLY = 1 << 0,
};
int gfs_graph_open(const char *dir, unsigned flags, struct gfs_graph **out,
		   struct gfs_diag *d);
void gfs_graph_close(struct gfs_graph *g);

/* Borrowed, valid until close. */
const char *gfs_graph_dir(const struct gfs_graph *g);
struct gfs_manifest *gfs_graph_manifest(struct gfs_graph *g);
struct gfs_tstore *gfs_graph_tables(struct gfs_graph *g);
/* Writes schemas/<s->id>.pg put-if-absent (temp, fsync, link, directory
 * fsync; the same bytes already there count as written). */
int gfs_graph_schema_put(struct gfs_graph *g, const struct gfs_schema *s);
/* The schema with this id (cached; borrowed until close; thread-safe). */
int gfs_graph_schema(struct gfs_graph *g, const char *schema_id,
		     const struct gfs_schema **out, struct gfs_diag *d);

enum gfs_load_mode {
	GFS_LOAD_MERGE,
	GFS_LOAD_APPEND,
	GFS_LOAD_OVERWRITE,
};
int gfs_load_mode_parse(const char *s, enum gfs_load_mode *out);

enum gfs_load_phase {
	GFS_PHASE_PARSE,
	GFS_PHASE_SORT,
	GFS_PHASE_LOCK,
	GFS_PHASE_VALIDATE,
	GFS_PHASE_WRITE,
	GFS_PHASE_PUBLISH,
	GFS_PHASE__COUNT
};
const char *gfs_load_phase_name(enum gfs_load_phase p);

struct gfs_load_opts {
	enum gfs_load_mode mode;
	const char *actor;  /* "user@host" or similar, NULL = derived */
	const char *source; /* name for messages ("seed.jsonl", "-") */
	/* Called now and then (at most a few times a second is the caller's
	 * business); may be NULL. */
	void (*progress)(enum gfs_load_phase phase, uint64_t bytes,
			 uint64_t rows, void *arg);
	void *progress_arg;
	unsigned threads; /* parse threads; 0 = gfs_load_default_threads() */
	const char *branch; /* the branch loaded into; NULL = main */
};

struct gfs_load_result {
	uint64_t version;   /* graph version published */
	uint64_t lines;     /* non-blank lines read */
	uint64_t rows_put;  /* rows written (new or changed) */
	uint64_t rows_kept; /* rows given but identical to the stored ones */
	uint64_t rows_deleted;
	uint64_t bytes;     /* input bytes read */
	uint64_t phase_ns[GFS_PHASE__COUNT]; /* wall time spent in each phase */
	char op_id[GFS_ULID_LEN + 1];
	/* The sorters' spills (GRAPHFS_LOAD_MEM_BYTES, src/load.c): sorted
	 * runs written, and their bytes (group merges included). */
	uint64_t sort_runs, sort_bytes;
};

/* Loads one JSONL stream as one graph version (DESIGN.md §1, §3).  Every
 * error leaves the store as it was; d names line, type, id and property. */
int gfs_graph_load(struct gfs_graph *g, int fd, const struct gfs_load_opts *o,
		   struct gfs_load_result *res, struct gfs_diag *d);

/* Writes the export of graph version (0 = head), nodes then edges, tables
 * in schema order, optionally one type only.  Streams. */
int gfs_graph_export(struct gfs_graph *g, uint64_t version, const char *type,
		     int fd, struct gfs_diag *d);

/* Verifies the store; calls report for each problem found.  Returns 0 and
 * sets *problems. */
int gfs_graph_fsck(struct gfs_graph *g,
		   void (*report)(const char *msg, void *arg), void *arg,
		   unsigned *problems);

/* As gfs_graph_fsck, and calls garbage (may be NULL) for each table
 * holding temp files of dead writers (".tmp-*"): never a version, not a
 * problem (graphctl recover removes them); *garbage counts the files. */
int gfs_graph_fsck_ex(struct gfs_graph *g,
		      void (*report)(const char *msg, void *arg),
		      void (*garbage_note)(const char *msg, void *arg), void *arg,
		      unsigned *problems, unsigned *garbage);

/* STORE/FORMAT: reads it (format 1 or the current one, verified; *ver set
 * whenever the first line parses) and copies the store id into id; writes
 * the current format's text for store_id (NULL: a new id), crash-safe. */
int gfs_graph_format_read(const char *dir, int *ver,
			  char id[GFS_ULID_LEN + 1], struct gfs_diag *d);
int gfs_graph_format_write(const char *dir, const char *store_id);
int gfs_graph_format_write_url(const char *dir, const char *store_id,
			       const char *url);

struct gfs_upgrade_result {
	int from, to;        /* store formats before and after */
	uint64_t records;    /* manifest values rewritten (0: was current) */
};

/* Brings a store of an earlier format to the current one (graphctl
 * upgrade): takes every table lock exclusively, refuses (-EBUSY) while
 * another process has the manifest open, rewrites the manifest in one LMDB
 * transaction, then FORMAT.  A crash in between leaves a store that upgrade
 * finishes when run again.  Table files and schemas are unchanged. */
int gfs_graph_upgrade(const char *dir, struct gfs_upgrade_result *res,
		      struct gfs_diag *d);

/* Takes every table's lock exclusively without waiting (a table with a
 * lock file or a directory under tables/): -EBUSY, d saying to stop the
 * writer and run cmd again, while any is held.  Free *ls to release. */
struct gfs_lockset;
int gfs_graph_lock_all(const char *dir, const char *cmd,
		       struct gfs_lockset **ls, struct gfs_diag *d);

struct gfs_migrate_db {
	const char *name;    /* sub-database ("meta", "versions", ...) */
	uint64_t records;    /* copied (meta: without the migration keys) */
	uint64_t digest;     /* of its records, equal on both sides */
};

struct gfs_migrate_result {
	char from[1024], to[1024]; /* "lmdb" or the etcd URL */
	bool already;              /* the store's manifest is there already */
	bool thawed;               /* ... and was frozen by an interrupted
				      migrate elsewhere: writable again */
	bool resumed;              /* the old manifest was marked moved before */
	bool cleared;              /* a partial copy of this store was cleared */
	struct gfs_migrate_db dbs[16];
	unsigned n_dbs;
	uint64_t records;          /* in all */
};

struct gfs_migrate_opts {
	unsigned batch;            /* records a target transaction; 0 = 64 */
	/* called after each batch (may be NULL): db name, records copied
	 * of it so far */
	void (*progress)(const char *db, uint64_t done, void *arg);
	void *arg;
};

/* graphctl migrate (docs/multi-host.md §7): copies the manifest of the
 * store at dir to url (an etcd URL, or NULL / "lmdb": STORE/manifest/),
 * checks that both sides hold the same records, freezes the old one
 * (meta/moved_to) and switches FORMAT.  -EBUSY (d: who) while a writer
 * holds a table lock, a sidecar is pending, or (LMDB) another process has
 * the manifest open; -EEXIST for a target holding something that is not
 * this store's.  Crash-safe: run it again.  The old manifest is kept.
 * Asked to move the manifest where it already is: nothing to do, except
 * that a freeze left by an interrupted migrate (to elsewhere) is lifted
 * (res->thawed): the way to cancel one. */
int gfs_graph_migrate(const char *dir, const char *url,
		      const struct gfs_migrate_opts *o,
		      struct gfs_migrate_result *res, struct gfs_diag *d);

/* A description of this process for sidecars and audit records:
 * "graphctl pid 123 on host". */
const char *gfs_graph_actor(struct gfs_graph *g);

#endif
