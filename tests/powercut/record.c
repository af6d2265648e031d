/* record.c - LD_PRELOAD recorder of the file-system calls a writer makes
 * under one directory, for the power-cut checker (tests/powercut/powercut.py,
 * docs/testing.md "Simulated power loss").
 *
 *   GFS_PC_ROOT=/abs/dir GFS_PC_LOG=/abs/log LD_PRELOAD=record.so graphctl ...
 *
 * Every successful call that changes a file or a directory entry under
 * GFS_PC_ROOT, or makes one durable, is appended to GFS_PC_LOG as one
 * record: a header line of tab-separated fields, then, for writes, the bytes
 * written.  The call and its record happen under one mutex, so the order of
 * the log is the order in which the calls took effect (threads included).
 *
 *   O pid fd flags path      open/creat/mkostemp of a path under the root
 *   W pid fd off len\n<len bytes>   write/pwrite/writev/pwritev
 *   T pid fd len             ftruncate (and fallocate that grows the file)
 *   F pid fd kind            fsync, fdatasync (kind f or d)
 *   S pid                    sync(): everything durable
 *   C pid fd                 close          D pid old new   dup/dup2/F_DUPFD
 *   L pid old new            link            R pid old new   rename
 *   U pid path               unlink          K pid path      mkdir
 *   Y pid path               rmdir           A pid           write to stdout
 *   X pid what               a call the model does not know (fails the check)
 *
 * Descriptors are tracked by number per process: the checker keeps the fd
 * table.  A descriptor the recorder never saw opened (opendir() opens with
 * glibc-internal calls) is recognised through /proc/self/fd when it is
 * fsync'd or used as the directory of an *at() call.
 *
 * Built without sanitizers; under an ASan build put libasan first in
 * LD_PRELOAD (tests/powercut/powercut.sh does).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 65536

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char root[PATH_MAX];
static size_t root_len;
static int log_fd = -1;
static unsigned char tracked[MAX_FD];	/* 1 = under root, 2 = O_APPEND too */

#define REAL(ret, name, ...)                                                  \
	static ret (*real_##name)(__VA_ARGS__);                               \
	static ret (*get_##name(void))(__VA_ARGS__)                           \
	{                                                                     \
		if (!real_##name)                                             \
			*(void **)&real_##name = dlsym(RTLD_NEXT, #name);     \
		return real_##name;                                           \
	}

REAL(int, open, const char *, int, ...)
REAL(int, open64, const char *, int, ...)
REAL(int, openat, int, const char *, int, ...)
REAL(int, openat64, int, const char *, int, ...)
REAL(int, __open_2, const char *, int)
REAL(int, __open64_2, const char *, int)
REAL(int, __openat_2, int, const char *, int)
REAL(int, __openat64_2, int, const char *, int)
REAL(int, creat, const char *, mode_t)
REAL(int, creat64, const char *, mode_t)
REAL(int, mkstemp, char *)
REAL(int, mkostemp, char *, int)
REAL(int, mkstemps, char *, int)
REAL(int, mkostemps, char *, int, int)
REAL(ssize_t, write, int, const void *, size_t)
REAL(ssize_t, pwrite, int, const void *, size_t, off_t)
REAL(ssize_t, pwrite64, int, const void *, size_t, off_t)
REAL(ssize_t, writev, int, const struct iovec *, int)
REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t)
REAL(ssize_t, pwritev64, int, const struct iovec *, int, off_t)
REAL(ssize_t, pwritev2, int, const struct iovec *, int, off_t, int)
REAL(int, ftruncate, int, off_t)
REAL(int, ftruncate64, int, off_t)
REAL(int, truncate, const char *, off_t)
REAL(int, fallocate, int, int, off_t, off_t)
REAL(int, posix_fallocate, int, off_t, off_t)
REAL(int, fsync, int)
REAL(int, fdatasync, int)
REAL(int, sync_file_range, int, off_t, off_t, unsigned int)
REAL(int, msync, void *, size_t, int)
REAL(void, sync, void)
REAL(int, syncfs, int)
REAL(int, link, const char *, const char *)
REAL(int, linkat, int, const char *, int, const char *, int)
REAL(int, rename, const char *, const char *)
REAL(int, renameat, int, const char *, int, const char *)
REAL(int, renameat2, int, const char *, int, const char *, unsigned int)
REAL(int, unlink, const char *)
REAL(int, unlinkat, int, const char *, int)
REAL(int, mkdir, const char *, mode_t)
REAL(int, mkdirat, int, const char *, mode_t)
REAL(int, rmdir, const char *)
REAL(int, close, int)
REAL(int, dup, int)
REAL(int, dup2, int, int)
REAL(int, dup3, int, int, int)
REAL(int, fcntl, int, int, ...)
REAL(int, fcntl64, int, int, ...)

__attribute__((constructor)) static void rec_init(void)
{
	const char *r = getenv("GFS_PC_ROOT"), *l = getenv("GFS_PC_LOG");

	if (!r || !l || strlen(r) >= sizeof root)
		return;
	strcpy(root, r);
	root_len = strlen(root);
	while (root_len > 1 && root[root_len - 1] == '/')
		root[--root_len] = '\0';
	log_fd = get_open()(l, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static bool active(void)
{
	return log_fd >= 0;
}

/* ---- the log ---------------------------------------------------------- */

/* One record = one write(2) on an O_APPEND descriptor, so records of
 * several processes never interleave. */
static void emit(const char *hdr, size_t hl, const void *p, size_t n)
{
	char stackbuf[8192];
	char *buf = hl + n <= sizeof stackbuf ? stackbuf : malloc(hl + n);
	size_t off = 0;

	if (!buf)
		abort();
	memcpy(buf, hdr, hl);
	if (n)
		memcpy(buf + hl, p, n);
	while (off < hl + n) {
		ssize_t w = get_write()(log_fd, buf + off, hl + n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			abort();	/* a lost record would make the check lie */
		off += (size_t)w;
	}
	if (buf != stackbuf)
		free(buf);
}

__attribute__((format(printf, 1, 2))) static void rec(const char *fmt, ...)
{
	char hdr[3 * PATH_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(hdr, sizeof hdr - 1, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof hdr - 1)
		abort();
	hdr[n++] = '\n';
	emit(hdr, (size_t)n, NULL, 0);
}

/* ---- paths ------------------------------------------------------------ */

/* Lexical normalisation of an absolute path ("." "//" ".."). */
static void normalise(char *p)
{
	char out[PATH_MAX];
	size_t o = 0;
	const char *s = p;

	while (*s) {
		while (*s == '/')
			s++;
		const char *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s);
		if (n == 0 || (n == 1 && s[0] == '.')) {
		} else if (n == 2 && s[0] == '.' && s[1] == '.') {
			while (o > 0 && out[--o] != '/')
				;
		} else if (o + 1 + n < sizeof out) {
			out[o++] = '/';
			memcpy(out + o, s, n);
			o += n;
		}
		s = e;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	strcpy(p, out);
}

static bool fd_path(int fd, char *out, size_t cap)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, out, cap - 1);
	if (n <= 0)
		return false;
	out[n] = '\0';
	return out[0] == '/';
}

/* Absolute form of (dirfd, path); false when it cannot be known. */
static bool abs_path(int dirfd, const char *path, char *out)
{
	char base[PATH_MAX];

	if (!path)
		return false;
	if (path[0] == '/') {
		snprintf(out, PATH_MAX, "%s", path);
	} else {
		if (dirfd == AT_FDCWD) {
			if (!getcwd(base, sizeof base))
				return false;
		} else if (!fd_path(dirfd, base, sizeof base)) {
			return false;
		}
		if ((size_t)snprintf(out, PATH_MAX, "%s/%s", base, path) >= PATH_MAX)
			return false;
	}
	normalise(out);
	return true;
}

static bool under_root(const char *abs)
{
	return active() && strncmp(abs, root, root_len) == 0 &&
	       (abs[root_len] == '/' || abs[root_len] == '\0');
}

/* Path relative to the root ("." for the root itself). */
static const char *rel(const char *abs)
{
	return abs[root_len] ? abs + root_len + 1 : ".";
}

static bool fd_tracked(int fd)
{
	return fd >= 0 && fd < MAX_FD && tracked[fd];
}

/* An fd opened behind our back (opendir) but under the root: record it as
 * opened now, so its fsync counts. */
static bool adopt_fd(int fd)
{
	char p[PATH_MAX];

	if (fd_tracked(fd))
		return true;
	if (fd < 0 || fd >= MAX_FD || !fd_path(fd, p, sizeof p) ||
	    !under_root(p))
		return false;
	tracked[fd] = 1;
	rec("O\t%d\t%d\t%d\t%s", (int)getpid(), fd, 0, rel(p));
	return true;
}

/* ---- opens ------------------------------------------------------------ */

static void note_open(int dirfd, const char *path, int flags, int fd)
{
	char abs[PATH_MAX];

	if (fd < 0 || fd >= MAX_FD)
		return;
	tracked[fd] = 0;
	if (!abs_path(dirfd, path, abs) || !under_root(abs))
		return;
	tracked[fd] = (flags & O_APPEND) ? 2 : 1;
	rec("O\t%d\t%d\t%d\t%s", (int)getpid(), fd, flags, rel(abs));
}

static mode_t va_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

#define OPEN_BODY(call, dirfd)                                                \
	do {                                                                  \
		va_list ap;                                                   \
		va_start(ap, flags);                                          \
		mode_t mode = va_mode(flags, ap);                             \
		va_end(ap);                                                   \
		pthread_mutex_lock(&mu);                                      \
		int fd = call;                                                \
		int e = errno;                                                \
		note_open(dirfd, path, flags, fd);                            \
		pthread_mutex_unlock(&mu);                                    \
		errno = e;                                                    \
		return fd;                                                    \
	} while (0)

int open(const char *path, int flags, ...)
{
	OPEN_BODY(get_open()(path, flags, mode), AT_FDCWD);
}
int open64(const char *path, int flags, ...)
{
	OPEN_BODY(get_open64()(path, flags, mode), AT_FDCWD);
}
int openat(int dirfd, const char *path, int flags, ...)
{
	OPEN_BODY(get_openat()(dirfd, path, flags, mode), dirfd);
}
int openat64(int dirfd, const char *path, int flags, ...)
{
	OPEN_BODY(get_openat64()(dirfd, path, flags, mode), dirfd);
}

#define OPEN2_BODY(call, dirfd)                                               \
	do {                                                                  \
		pthread_mutex_lock(&mu);                                      \
		int fd = call;                                                \
		int e = errno;                                                \
		note_open(dirfd, path, flags, fd);                            \
		pthread_mutex_unlock(&mu);                                    \
		errno = e;                                                    \
		return fd;                                                    \
	} while (0)

int __open_2(const char *path, int flags)
{
	OPEN2_BODY(get___open_2()(path, flags), AT_FDCWD);
}
int __open64_2(const char *path, int flags)
{
	OPEN2_BODY(get___open64_2()(path, flags), AT_FDCWD);
}
int __openat_2(int dirfd, const char *path, int flags)
{
	OPEN2_BODY(get___openat_2()(dirfd, path, flags), dirfd);
}
int __openat64_2(int dirfd, const char *path, int flags)
{
	OPEN2_BODY(get___openat64_2()(dirfd, path, flags), dirfd);
}
int creat(const char *path, mode_t mode)
{
	int flags = O_CREAT | O_WRONLY | O_TRUNC;
	OPEN2_BODY(get_creat()(path, mode), AT_FDCWD);
}
int creat64(const char *path, mode_t mode)
{
	int flags = O_CREAT | O_WRONLY | O_TRUNC;
	OPEN2_BODY(get_creat64()(path, mode), AT_FDCWD);
}

/* glibc's mkstemp family opens with internal calls: record them here. */
#define MKS_BODY(call, xflags)                                                \
	do {                                                                  \
		const char *path = tmpl;                                      \
		int flags = O_RDWR | O_CREAT | O_EXCL | (xflags);             \
		OPEN2_BODY(call, AT_FDCWD);                                   \
	} while (0)

int mkstemp(char *tmpl)
{
	MKS_BODY(get_mkstemp()(tmpl), 0);
}
int mkostemp(char *tmpl, int fl)
{
	MKS_BODY(get_mkostemp()(tmpl, fl), fl);
}
int mkstemps(char *tmpl, int sl)
{
	MKS_BODY(get_mkstemps()(tmpl, sl), 0);
}
int mkostemps(char *tmpl, int sl, int fl)
{
	MKS_BODY(get_mkostemps()(tmpl, sl, fl), fl);
}

/* ---- data ------------------------------------------------------------- */

static off_t write_off(int fd)
{
	struct stat st;

	if (tracked[fd] == 2)
		return fstat(fd, &st) ? -1 : st.st_size;
	return lseek(fd, 0, SEEK_CUR);
}

static void rec_write(int fd, off_t off, const void *p, size_t n)
{
	char hdr[96];
	int hl = snprintf(hdr, sizeof hdr, "W\t%d\t%d\t%lld\t%zu\n",
			  (int)getpid(), fd, (long long)off, n);
	emit(hdr, (size_t)hl, p, n);
}

static void rec_writev(int fd, off_t off, const struct iovec *iov, int cnt,
		       size_t n)
{
	char *flat = malloc(n ? n : 1);
	size_t o = 0;

	if (!flat)
		abort();
	for (int i = 0; i < cnt && o < n; i++) {
		size_t k = iov[i].iov_len < n - o ? iov[i].iov_len : n - o;
		memcpy(flat + o, iov[i].iov_base, k);
		o += k;
	}
	rec_write(fd, off, flat, n);
	free(flat);
}

ssize_t write(int fd, const void *p, size_t n)
{
	if (!active())
		return get_write()(fd, p, n);
	pthread_mutex_lock(&mu);
	bool t = fd_tracked(fd);
	off_t off = t ? write_off(fd) : 0;
	ssize_t r = get_write()(fd, p, n);
	int e = errno;
	if (r > 0 && t)
		rec_write(fd, off, p, (size_t)r);
	if (r > 0 && fd == 1)
		rec("A\t%d", (int)getpid());
	pthread_mutex_unlock(&mu);
	errno = e;
	return r;
}

#define PWRITE_BODY(call)                                                     \
	do {                                                                  \
		pthread_mutex_lock(&mu);                                      \
		ssize_t r = call;                                             \
		int e = errno;                                                \
		if (r > 0 && fd_tracked(fd))                                  \
			rec_write(fd, off, p, (size_t)r);                     \
		pthread_mutex_unlock(&mu);                                    \
		errno = e;                                                    \
		return r;                                                     \
	} while (0)

ssize_t pwrite(int fd, const void *p, size_t n, off_t off)
{
	PWRITE_BODY(get_pwrite()(fd, p, n, off));
}
ssize_t pwrite64(int fd, const void *p, size_t n, off_t off)
{
	PWRITE_BODY(get_pwrite64()(fd, p, n, off));
}

#define WRITEV_BODY(call, offexpr)                                            \
	do {                                                                  \
		pthread_mutex_lock(&mu);                                      \
		bool t = fd_tracked(fd);                                      \
		off_t o = t ? (offexpr) : 0;                                  \
		ssize_t r = call;                                             \
		int e = errno;                                                \
		if (r > 0 && t)                                               \
			rec_writev(fd, o, iov, cnt, (size_t)r);               \
		pthread_mutex_unlock(&mu);                                    \
		errno = e;                                                    \
		return r;                                                     \
	} while (0)

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	WRITEV_BODY(get_writev()(fd, iov, cnt), write_off(fd));
}
ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	WRITEV_BODY(get_pwritev()(fd, iov, cnt, off), off);
}
ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	WRITEV_BODY(get_pwritev64()(fd, iov, cnt, off), off);
}
ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	WRITEV_BODY(get_pwritev2()(fd, iov, cnt, off, fl),
		    off == -1 ? write_off(fd) : off);
}

#define FD_BODY(call, ...)                                                    \
	do {                                                                  \
		pthread_mutex_lock(&mu);                                      \
		int r = call;                                                 \
		int e = errno;                                                \
		if (r == 0 && fd_tracked(fd))                                 \
			rec(__VA_ARGS__);                                     \
		pthread_mutex_unlock(&mu);                                    \
		errno = e;                                                    \
		return r;                                                     \
	} while (0)

int ftruncate(int fd, off_t len)
{
	FD_BODY(get_ftruncate()(fd, len), "T\t%d\t%d\t%lld", (int)getpid(), fd,
		(long long)len);
}
int ftruncate64(int fd, off_t len)
{
	FD_BODY(get_ftruncate64()(fd, len), "T\t%d\t%d\t%lld", (int)getpid(),
		fd, (long long)len);
}

/* Growing allocations change the size the checker must model; others
 * (KEEP_SIZE, punching holes) are not used by graphfs: flag them. */
static void rec_alloc(int fd, int mode, off_t off, off_t len)
{
	struct stat st;

	if (mode & ~FALLOC_FL_KEEP_SIZE)
		rec("X\t%d\tfallocate mode %d", (int)getpid(), mode);
	else if (!(mode & FALLOC_FL_KEEP_SIZE) && !fstat(fd, &st))
		rec("T\t%d\t%d\t%lld", (int)getpid(), fd,
		    (long long)(st.st_size > off + len ? st.st_size : off + len));
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	pthread_mutex_lock(&mu);
	int r = get_fallocate()(fd, mode, off, len), e = errno;
	if (r == 0 && fd_tracked(fd))
		rec_alloc(fd, mode, off, len);
	pthread_mutex_unlock(&mu);
	errno = e;
	return r;
}

int posix_fallocate(int fd, off_t off, off_t len)
{
	pthread_mutex_lock(&mu);
	int r = get_posix_fallocate()(fd, off, len);
	if (r == 0 && fd_tracked(fd))
		rec_alloc(fd, 0, off, len);
	pthread_mutex_unlock(&mu);
	return r;
}

int truncate(const char *path, off_t len)
{
	char abs[PATH_MAX];
	pthread_mutex_lock(&mu);
	int r = get_truncate()(path, len), e = errno;
	if (r == 0 && abs_path(AT_FDCWD, path, abs) && under_root(abs))
		rec("X\t%d\ttruncate by path %s", (int)getpid(), rel(abs));
	pthread_mutex_unlock(&mu);
	errno = e;
	return r;
}

/* ---- durability ------------------------------------------------------- */

#define SYNC_BODY(call, kind)                                                 \
	do {                                                                  \
		pthread_mutex_lock(&mu);                                      \
		bool t = active() && adopt_fd(fd);                            \
		int r = call;                                                 \
		int e = errno;                                                \
		if (r == 0 && t)                                              \
			rec("F\t%d\t%d\t%s", (int)getpid(), fd, kind);        \
		pthread_mutex_unlock(&mu);                                    \
		errno = e;                                                    \
		return r;                                                     \
	} while (0)

int fsync(int fd)
{
	SYNC_BODY(get_fsync()(fd), "f");
}
int fdatasync(int fd)
{
	SYNC_BODY(get_fdatasync()(fd), "d");
}

/* sync_file_range() makes nothing durable (no metadata, no cache flush):
 * recorded as nothing. */
int sync_file_range(int fd, off_t off, off_t n, unsigned int fl)
{
	return get_sync_file_range()(fd, off, n, fl);
}

int msync(void *addr, size_t len, int fl)
{
	pthread_mutex_lock(&mu);
	int r = get_msync()(addr, len, fl), e = errno;
	if (r == 0 && active())
		rec("X\t%d\tmsync (writes through mmap are not recorded)",
		    (int)getpid());
	pthread_mutex_unlock(&mu);
	errno = e;
	return r;
}

void sync(void)
{
	pthread_mutex_lock(&mu);
	get_sync()();
	if (active())
		rec("S\t%d", (int)getpid());
	pthread_mutex_unlock(&mu);
}

int syncfs(int fd)
{
	pthread_mutex_lock(&mu);
	int r = get_syncfs()(fd), e = errno;
	if (r == 0 && active())
		rec("S\t%d", (int)getpid());
	pthread_mutex_unlock(&mu);
	errno = e;
	return r;
}

/* ---- names ------------------------------------------------------------ */

/* Records "<tag> pid a [b]" when a (or b) is under the root. */
static void rec_names(char tag, int d1, const char *p1, int d2, const char *p2)
{
	char a[PATH_MAX], b[PATH_MAX];
	bool ia = abs_path(d1, p1, a) && under_root(a);
	bool ib = p2 && abs_path(d2, p2, b) && under_root(b);

	if (!p2 && ia)
		rec("%c\t%d\t%s", tag, (int)getpid(), rel(a));
	else if (ia && ib)
		rec("%c\t%d\t%s\t%s", tag, (int)getpid(), rel(a), rel(b));
	else if (ia || ib)
		rec("X\t%d\t%c across the root: %s -> %s", (int)getpid(), tag,
		    p1, p2);
}

#define NAME_BODY(call, ...)                                                  \
	do {                                                                  \
		pthread_mutex_lock(&mu);                                      \
		int r = call;                                                 \
		int e = errno;                                                \
		if (r == 0 && active())                                       \
			rec_names(__VA_ARGS__);                               \
		pthread_mutex_unlock(&mu);                                    \
		errno = e;                                                    \
		return r;                                                     \
	} while (0)

int link(const char *a, const char *b)
{
	NAME_BODY(get_link()(a, b), 'L', AT_FDCWD, a, AT_FDCWD, b);
}
int linkat(int da, const char *a, int db, const char *b, int fl)
{
	if (fl & AT_EMPTY_PATH) {
		pthread_mutex_lock(&mu);
		int r = get_linkat()(da, a, db, b, fl), e = errno;
		if (r == 0 && active() && fd_tracked(da))
			rec("X\t%d\tlinkat(AT_EMPTY_PATH)", (int)getpid());
		pthread_mutex_unlock(&mu);
		errno = e;
		return r;
	}
	NAME_BODY(get_linkat()(da, a, db, b, fl), 'L', da, a, db, b);
}
int rename(const char *a, const char *b)
{
	NAME_BODY(get_rename()(a, b), 'R', AT_FDCWD, a, AT_FDCWD, b);
}
int renameat(int da, const char *a, int db, const char *b)
{
	NAME_BODY(get_renameat()(da, a, db, b), 'R', da, a, db, b);
}
int renameat2(int da, const char *a, int db, const char *b, unsigned int fl)
{
	/* RENAME_EXCHANGE (2) is not modelled: flag it; NOREPLACE is a rename. */
	NAME_BODY(get_renameat2()(da, a, db, b, fl), (fl & 2) ? 'x' : 'R', da,
		  a, db, b);
}
int unlink(const char *p)
{
	NAME_BODY(get_unlink()(p), 'U', AT_FDCWD, p, AT_FDCWD, NULL);
}
int unlinkat(int d, const char *p, int fl)
{
	NAME_BODY(get_unlinkat()(d, p, fl), (fl & AT_REMOVEDIR) ? 'Y' : 'U', d,
		  p, AT_FDCWD, NULL);
}
int mkdir(const char *p, mode_t m)
{
	NAME_BODY(get_mkdir()(p, m), 'K', AT_FDCWD, p, AT_FDCWD, NULL);
}
int mkdirat(int d, const char *p, mode_t m)
{
	NAME_BODY(get_mkdirat()(d, p, m), 'K', d, p, AT_FDCWD, NULL);
}
int rmdir(const char *p)
{
	NAME_BODY(get_rmdir()(p), 'Y', AT_FDCWD, p, AT_FDCWD, NULL);
}

/* ---- descriptors ------------------------------------------------------ */

int close(int fd)
{
	pthread_mutex_lock(&mu);
	bool t = fd_tracked(fd);
	int r = get_close()(fd), e = errno;
	if (t) {
		tracked[fd] = 0;
		rec("C\t%d\t%d", (int)getpid(), fd);
	}
	pthread_mutex_unlock(&mu);
	errno = e;
	return r;
}

static void note_dup(int old, int nfd)
{
	if (nfd < 0 || nfd >= MAX_FD || nfd == old)
		return;
	if (fd_tracked(nfd))
		rec("C\t%d\t%d", (int)getpid(), nfd);	/* dup2 closed it */
	tracked[nfd] = 0;
	if (fd_tracked(old)) {
		tracked[nfd] = tracked[old];
		rec("D\t%d\t%d\t%d", (int)getpid(), old, nfd);
	}
}

#define DUP_BODY(call, old)                                                   \
	do {                                                                  \
		pthread_mutex_lock(&mu);                                      \
		int r = call;                                                 \
		int e = errno;                                                \
		if (r >= 0)                                                   \
			note_dup(old, r);                                     \
		pthread_mutex_unlock(&mu);                                    \
		errno = e;                                                    \
		return r;                                                     \
	} while (0)

int dup(int old)
{
	DUP_BODY(get_dup()(old), old);
}
int dup2(int old, int nfd)
{
	DUP_BODY(get_dup2()(old, nfd), old);
}
int dup3(int old, int nfd, int fl)
{
	DUP_BODY(get_dup3()(old, nfd, fl), old);
}

#define FCNTL_BODY(getter)                                                    \
	do {                                                                  \
		va_list ap;                                                   \
		va_start(ap, cmd);                                            \
		void *arg = va_arg(ap, void *);                               \
		va_end(ap);                                                   \
		if (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC)                 \
			return getter()(fd, cmd, arg);                        \
		DUP_BODY(getter()(fd, cmd, arg), fd);                         \
	} while (0)

int fcntl(int fd, int cmd, ...)
{
	FCNTL_BODY(get_fcntl);
}
int fcntl64(int fd, int cmd, ...)
{
	FCNTL_BODY(get_fcntl64);
}
