/* util.h - errors, diagnostics, buffers, ids, time and file helpers.
 *
 * The bottom layer of libgraphfs: everything else includes it; it includes
 * nothing of ours.  Calling sequence for a diagnostic:
 *
 *     struct gfs_diag d = {0};
 *     rc = gfs_something(..., &d);
 *     if (rc) fprintf(stderr, "%s: %s\n", gfs_strerror(rc), d.msg);
 */
#ifndef GFS_UTIL_H
#define GFS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Error codes: actions return 0, -errno, or one of these.  The range sits
 * below LMDB's (-30800..-30999) so the two never collide.  Numbers are never
 * reused. */
enum gfs_err {
	GFS_EBASE = -40000,
	GFS_ECORRUPT = -40001,  /* on-disk bytes fail verification */
	GFS_EFORMAT = -40002,   /* unsupported on-disk format: unknown, newer, or older (upgrade) */
	GFS_ESCHEMA = -40003,   /* schema text is invalid */
	GFS_EDATA = -40004,     /* load data is invalid (type, syntax, unknown field) */
	GFS_ECONFLICT = -40005, /* key / unique / card / endpoint constraint failed */
	GFS_ECAS = -40006,      /* manifest pins moved since they were read */
	GFS_ERECOVERY = -40007, /* pending sidecar or orphan version: recovery needed */
	GFS_EVIOLATION = -40008,/* invariant violation: refuse, keep evidence */
	GFS_ETOOLONG = -40009,  /* input line over the documented limit */
	GFS_EGONE = -40010,     /* sidecar already resolved by someone else */
	GFS_ELEASE = -40011,    /* lease lost: expired or fenced; nothing was done */
	GFS_EMOVED = -40012,    /* the manifest was moved (graphctl migrate); nothing was done */
	GFS_ELAST = -40013,
};

/* The whole error text for rc (errno or GFS_E*); never NULL. */
const char *gfs_strerror(int rc);

/* Caller-owned human detail: problem first, subject quoted, where. */
struct gfs_diag {
	char msg[512];
};

/* Sets d->msg (if d is not NULL) unless a message is already there, so the
 * innermost, most precise reason wins. */
void gfs_diag_set(struct gfs_diag *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Sets d->msg unconditionally. */
void gfs_diag_reset(struct gfs_diag *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A growable byte buffer; always NUL-terminated after a successful append
 * (the NUL is not counted in len).  Embedded: _init/_release. */
struct gfs_buf {
	char *p;
	size_t len, cap;
};
void gfs_buf_init(struct gfs_buf *b);
void gfs_buf_release(struct gfs_buf *b);
int gfs_buf_reserve(struct gfs_buf *b, size_t extra);
int gfs_buf_append(struct gfs_buf *b, const void *data, size_t len);
int gfs_buf_appendc(struct gfs_buf *b, char c);
int gfs_buf_appendf(struct gfs_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (quotes included); s may hold NULs. */
int gfs_buf_append_json_str(struct gfs_buf *b, const char *s, size_t len);
void gfs_buf_reset(struct gfs_buf *b);

/* Room for element n of a growable array v of *cap elements of size bytes:
 * returns v, or a larger copy (capacity doubled, starting at first) with
 * *cap updated; NULL on ENOMEM, v then still valid and unchanged. */
void *gfs_array_grow(void *v, size_t *cap, size_t n, size_t size, size_t first);

/* Returns a new heap copy; the caller frees it with free(). NULL on ENOMEM. */
char *gfs_strdup(const char *s);
char *gfs_memdup(const void *p, size_t len); /* adds a NUL */

/* ULID: 26 Crockford base32 characters + NUL; time-ordered, 80 random bits. */
#define GFS_ULID_LEN 26
/* Longest id, endpoint id or unique key (bytes): each is a B+tree key of a
 * table-version file (docs/format.md, "Limits").  A load refuses a row
 * over it naming line, type and id; the table builder checks it again. */
#define GFS_MAX_KEY ((size_t)1 << 20)
int gfs_ulid_new(char out[GFS_ULID_LEN + 1]);
/* A generated row id: random, or with GRAPHFS_TEST_ID_SEED set a function
 * of the seed and lineno (tests compare loads that generate ids). */
int gfs_ulid_for_line(char out[GFS_ULID_LEN + 1], uint64_t lineno);
bool gfs_ulid_valid(const char *s);

/* Wall clock in nanoseconds since the epoch (CLOCK_REALTIME). */
uint64_t gfs_now_ns(void);
/* RFC 3339 UTC with 'Z', nanoseconds without trailing zeros. */
void gfs_time_format(uint64_t ns, char out[40]);

/* 64-bit content hash (xxh3) used for checksums and schema ids. */
uint64_t gfs_hash64(const void *p, size_t len);
/* Where the last GFS_ECORRUPT of this thread came from ("corrupt table
 * file '...' at offset N: why", "manifest record versions/4 is corrupt:
 * why"): set by the read path that found it, so callers without a
 * diagnostic (the mount, cursors) can still name the file or key.
 * gfs_corrupt_last() is borrowed and thread-local ("" if none). */
void gfs_corrupt_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *gfs_corrupt_last(void);
/* xxh3 of the bytes of a followed by those of b (no copy). */
uint64_t gfs_hash64_2(const void *a, size_t alen, const void *b, size_t blen);

/* The last I/O failure of the calling thread, so that an error that
 * surfaces far from the system call still names the operation and the
 * file ("fsync '/s/tables/node:A/.tmp-1-x': Input/output error") even where
 * no gfs_diag is passed down (docs/recovery.md "I/O errors").  The helpers
 * below record their own failures; code that calls the kernel directly
 * records with gfs_io_fail() and returns its result:
 *
 *     if (fsync(fd) < 0)
 *             return gfs_io_fail_fd("fsync", fd, -errno);
 *
 * gfs_io_last(rc) is that message if the thread's last recorded failure
 * had this rc (else NULL); gfs_diag_io() copies it into an empty diag. */
int gfs_io_fail(const char *op, const char *path, int rc);
int gfs_io_fail_fd(const char *op, int fd, int rc);
const char *gfs_io_last(int rc);
/* Records msg verbatim as the last failure, with rc (the mount: corruption
 * answered EIO keeps gfs_corrupt_last()'s file and offset this way). */
void gfs_io_note(int rc, const char *msg);
void gfs_diag_io(struct gfs_diag *d, int rc);

/* kv.h's write-callback rule, checked: a backend marks the calling thread
 * while a write callback runs (enter/leave nest), and the failpoint hook,
 * the table locks and gfs_fsync_dir assert that it is not marked, so a
 * failpoint, lock wait or fsync inside a write transaction fails every
 * test that reaches it (docs/invariants.md 32 and 273). */
void gfs_write_cb_enter(void);
void gfs_write_cb_leave(void);
bool gfs_in_write_cb(void);

/* Files: whole writes/reads that retry EINTR and short counts; failures are
 * recorded (gfs_io_fail), naming the file. */
int gfs_write_all(int fd, const void *p, size_t len);
int gfs_pwrite_all(int fd, const void *p, size_t len, off_t off);
/* Reads exactly len bytes at off; short file = GFS_ECORRUPT. */
int gfs_pread_all(int fd, void *p, size_t len, off_t off);
/* fsyncs the directory path.  Never inside a write callback of the
 * manifest (asserted: see gfs_in_write_cb). */
int gfs_fsync_dir(const char *path);
/* fsyncs the directory that holds path (its name's directory entry). */
int gfs_fsync_parent(const char *path);
/* Modes of everything the store creates (docs/format.md, "Permissions"):
 * like cp or git, the creator's umask decides, so a store is never more
 * open than its creator asked for (umask 077: private; 002: a group can
 * share it, LMDB's lock file and the lock files included).  Pass these to
 * open(O_CREAT)/mkdir/mdb_env_open, which apply the umask. */
#define GFS_FILE_MODE 0666
#define GFS_DIR_MODE 0777
/* The process's umask, read from /proc/self/status without changing it
 * (umask(2) would, for every thread); 077 if it cannot be read, so a mode
 * masked with it is never wider than the real one would give. */
mode_t gfs_umask(void);
/* mkdir -p for one level (EEXIST is success). */
int gfs_mkdir(const char *path, mode_t mode);
/* Reads a whole small file into a new buffer (caller frees *out). */
int gfs_read_file(const char *path, char **out, size_t *len, size_t max);

/* Checked number parsing: whole string, no sign surprises. */
int gfs_parse_u64(const char *s, uint64_t *out);
int gfs_parse_i64(const char *s, int64_t *out);

#define GFS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
