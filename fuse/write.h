/* write.h - writes through the live view (docs/mount.md, "Writes";
 * docs/semantics.md, "Writes"): write handles, scratch files, pending
 * deletions and the group-commit thread.  Independent of FUSE: every
 * function returns 0 or -errno and never replies; fuse/fs.c adapts.
 *
 *     gfs_wr_new(graph, view, mountpoint, &w)
 *     gfs_wr_lookup(w, dir, name, &child, &st)     scratch names first
 *     gfs_wr_create(w, dir_ino, dir, name, &h, &child, &st)
 *     gfs_wr_open(w, ino, d, flags, &h); gfs_wr_write(w, h, off, buf, n)
 *     gfs_wr_flush(w, h, &who, &version)           commit if dirty
 *     gfs_wr_close(w, h)
 *     gfs_wr_unlink / gfs_wr_rename / gfs_wr_symlink
 *     gfs_wr_free(w)     deletes what is still pending, stops the thread
 *
 * Every change goes through one commit thread (group commit): callers
 * enqueue and wait; the thread takes everything queued, calls
 * gfs_graph_apply once and hands each caller its own outcome.
 */
#ifndef GFS_FUSE_WRITE_H
#define GFS_FUSE_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "apply.h"
#include "util.h"
#include "view.h"

/* Bytes of a write handle kept in memory; beyond, they spill to an
 * O_TMPFILE in STORE/staging. */
#define GFS_WR_MEM_MAX (1u << 20)
/* Failed writes kept for .graphfs/errors.jsonl. */
#define GFS_WR_ERRORS_MAX 1000

struct gfs_wr;
struct gfs_wobj;

int gfs_wr_new(struct gfs_graph *g, struct gfs_view *v, const char *mnt,
	       struct gfs_wr **out);
/* Commits the pending deletions (a node renamed to a scratch name whose
 * name was not written again), stops the commit thread.  NULL: no-op. */
void gfs_wr_free(struct gfs_wr *w);

/* True under versions/ (and for versions/ itself): EROFS for any write. */
bool gfs_wr_readonly(const struct gfs_vdesc *d);

/* Fills who from a request's uid and pid (comm from /proc/<pid>/comm). */
void gfs_wr_writer(uid_t uid, pid_t pid, struct gfs_writer *who);

/* The mode bits of the live view: files and directories one may write
 * in are 0644 / 0755, the rest 0444 / 0555 (versions/ always). */
void gfs_wr_mode(const struct gfs_vdesc *d, struct stat *st);

/* A name the daemon keeps (scratch file, node file being created) in the
 * directory dir (inode dir_ino): 0 and child/st set; -ENOENT if the name
 * must look absent (a node pending deletion); 1 if the view decides. */
int gfs_wr_lookup(struct gfs_wr *w, uint64_t dir_ino,
		  const struct gfs_vdesc *dir, const char *name,
		  struct gfs_vdesc *child, struct stat *st);
/* True if name in node type directory dir is a node pending deletion
 * (cheap when none is). */
bool gfs_wr_pending(struct gfs_wr *w, const struct gfs_vdesc *dir,
		    const char *name);
/* Adjusts st of d (inode ino): a WFILE's attributes, the size of a file
 * with a dirty write handle.  -ESTALE for a WFILE no longer known. */
int gfs_wr_getattr(struct gfs_wr *w, uint64_t ino, const struct gfs_vdesc *d,
		   struct stat *st);
/* Lists the names the daemon keeps in dir (inode dir_ino) from index pos
 * on (the live root: ingest; ingest/: append, overwrite, then files):
 * emit(arg, name, d, st, next) until it returns nonzero.  Returns 0. */
int gfs_wr_list(struct gfs_wr *w, uint64_t dir_ino,
		const struct gfs_vdesc *dir, uint64_t pos,
		int (*emit)(void *arg, const char *name, const struct gfs_vdesc *d,
			    const struct stat *st, uint64_t next),
		void *arg);

int gfs_wr_create(struct gfs_wr *w, uint64_t dir_ino,
		  const struct gfs_vdesc *dir, const char *name,
		  struct gfs_wobj **h, struct gfs_vdesc *child, struct stat *st);
/* Opens d (inode ino, found as name in dir: needed for an edge file)
 * for writing (a node or edge file: the handle starts from its bytes, or
 * empty with O_TRUNC) or a WFILE in any mode. */
int gfs_wr_open(struct gfs_wr *w, uint64_t ino, const struct gfs_vdesc *d,
		const struct gfs_vdesc *dir, const char *name, int flags,
		struct gfs_wobj **h);
int gfs_wr_read(struct gfs_wr *w, struct gfs_wobj *h, uint64_t off,
		void *buf, size_t len, size_t *n);
int gfs_wr_write(struct gfs_wr *w, struct gfs_wobj *h, uint64_t off,
		 const void *buf, size_t len);
int gfs_wr_truncate(struct gfs_wr *w, struct gfs_wobj *h, uint64_t size);
/* The handle's size now. */
uint64_t gfs_wr_size(struct gfs_wr *w, struct gfs_wobj *h);
/* Commits the handle's bytes if they changed since the last commit
 * (FLUSH, FSYNC); *version: the graph version holding them (0 if none). */
int gfs_wr_flush(struct gfs_wr *w, struct gfs_wobj *h,
		 const struct gfs_writer *who, uint64_t *version);
void gfs_wr_close(struct gfs_wr *w, struct gfs_wobj *h);

/* truncate(2) of a path: d is the file (inode ino). */
int gfs_wr_truncate_path(struct gfs_wr *w, uint64_t ino,
			 const struct gfs_vdesc *d, uint64_t size,
			 const struct gfs_writer *who, uint64_t *version);
int gfs_wr_unlink(struct gfs_wr *w, uint64_t dir_ino,
		  const struct gfs_vdesc *dir, const char *name,
		  const struct gfs_writer *who);
int gfs_wr_rename(struct gfs_wr *w, uint64_t dir_ino,
		  const struct gfs_vdesc *dir, const char *name,
		  uint64_t ndir_ino, const struct gfs_vdesc *ndir,
		  const char *nname, unsigned flags,
		  const struct gfs_writer *who);
/* ln -s target dir/name in nodes/<T>/<k>/{out,in}/<E>/. */
int gfs_wr_symlink(struct gfs_wr *w, const struct gfs_vdesc *dir,
		   const char *name, const char *target,
		   const struct gfs_writer *who);

/* The commit thread's counters, a JSON object for .graphfs/stats:
 * queued (changes waiting now), batches, changes, versions. */
void gfs_wr_stats(struct gfs_wr *w, struct gfs_buf *out);
/* .graphfs/errors.jsonl */
void gfs_wr_errors(struct gfs_wr *w, struct gfs_buf *out);

#endif
