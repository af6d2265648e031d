/* tests/faults/faultinj.c - an LD_PRELOAD shim that counts file-system
 * calls and fails exactly the Nth call of one kind (docs/testing.md,
 * "I/O faults").
 *
 *   GFS_FAULT=KIND:N:ACTION   fail the Nth call of KIND (counting from 1)
 *       KIND   write pwrite writev pwritev read pread fsync fdatasync msync
 *              link linkat rename renameat unlink unlinkat open openat
 *              mmap ftruncate mkdir
 *       ACTION an errno name (EIO ENOSPC EDQUOT EROFS ENOMEM EFBIG) or
 *              "short": a write-kind call writes half its bytes (at least
 *              one) and returns that count, as a full disk would
 *   GFS_FAULT_DIR=PATH        count only calls on paths (or descriptors of
 *                             files) under PATH; default: every call
 *   GFS_FAULT_REPORT=FILE     appended to: one "fired ..." line when the
 *                             fault fires (at once, so a crash still
 *                             leaves it), and at exit one "count ..." line
 *                             per kind with a non-zero count
 *   GFS_FAULT_STICKY=1        keep failing every later call of KIND too
 *                             (a disk that stays broken)
 *   GFS_FAULT_OFFSET_MAX=B    count pwrite/pwritev calls only when they
 *                             write below offset B: with B = 2 pages of
 *                             data.mdb, only LMDB's meta-page writes (its
 *                             O_DSYNC descriptor), the write whose failure
 *                             marks the environment fatal (MDB_PANIC)
 *
 * Without GFS_FAULT it only counts, which is how a test learns how many
 * calls of each kind an operation makes before walking N = 1..count.
 *
 * Built by the test with $(CC), never with sanitizers: under an ASan
 * binary it is preloaded after libasan (whose interceptors then call ours
 * through RTLD_NEXT).  Calls the shim makes itself (readlink of
 * /proc/self/fd, the report) go straight to the kernel through syscall(2)
 * and are never counted.
 *
 * Only the libc entry points are interposed: calls glibc makes internally
 * (fopen's open) are not seen, which is fine for graphfs, whose I/O is
 * plain open/pwrite/fsync/link and LMDB's (a separate shared object).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum kind {
	K_WRITE, K_PWRITE, K_WRITEV, K_PWRITEV, K_READ, K_PREAD, K_FSYNC,
	K_FDATASYNC, K_MSYNC, K_LINK, K_LINKAT, K_RENAME, K_RENAMEAT,
	K_UNLINK, K_UNLINKAT, K_OPEN, K_OPENAT, K_MMAP, K_FTRUNCATE, K_MKDIR,
	K_NKINDS
};

static const char *const kind_names[K_NKINDS] = {
	"write", "pwrite", "writev", "pwritev", "read", "pread", "fsync",
	"fdatasync", "msync", "link", "linkat", "rename", "renameat",
	"unlink", "unlinkat", "open", "openat", "mmap", "ftruncate", "mkdir",
};

static const struct { const char *name; int err; } errnos[] = {
	{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EDQUOT", EDQUOT },
	{ "EROFS", EROFS }, { "ENOMEM", ENOMEM }, { "EFBIG", EFBIG },
};

#define ACT_SHORT (-1)

static struct {
	bool ready;
	int kind;          /* -1: count only */
	unsigned long n;   /* the call to fail, from 1 */
	int action;        /* errno, or ACT_SHORT */
	bool sticky;
	long long offset_max; /* 0: no limit */
	char dir[PATH_MAX];
	size_t dirlen;
	char report[PATH_MAX];
	unsigned long count[K_NKINDS];
	unsigned long fired;
} F = { .kind = -1 };

static __thread int busy; /* the shim's own calls are not counted */

/* ---- the shim's own output: raw syscalls only -------------------------- */

static void report_line(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void report_line(const char *fmt, ...)
{
	char line[PATH_MAX + 256];
	va_list ap;
	int n, fd;

	if (!F.report[0])
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	fd = (int)syscall(SYS_openat, AT_FDCWD, F.report,
			  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	(void)syscall(SYS_write, fd, line, (size_t)n);
	(void)syscall(SYS_close, fd);
}

static void parse_fault(const char *spec)
{
	char kind[32], act[32];
	unsigned long n;

	if (sscanf(spec, "%31[a-z]:%lu:%31[A-Za-z]", kind, &n, act) != 3 || !n)
		goto bad;
	for (int k = 0; k < K_NKINDS; k++)
		if (!strcmp(kind, kind_names[k]))
			F.kind = k;
	if (F.kind < 0)
		goto bad;
	F.n = n;
	if (!strcmp(act, "short")) {
		F.action = ACT_SHORT;
		return;
	}
	for (size_t i = 0; i < sizeof errnos / sizeof *errnos; i++)
		if (!strcmp(act, errnos[i].name))
			F.action = errnos[i].err;
	if (F.action)
		return;
bad:
	/* A fault that silently does not fire would make a test pass for
	 * nothing: refuse to run. */
	dprintf(2, "faultinj: bad GFS_FAULT '%s' (want KIND:N:ERRNO|short)\n",
		spec);
	_exit(99);
}

__attribute__((constructor)) static void faultinj_init(void)
{
	const char *s;

	busy++;
	if ((s = getenv("GFS_FAULT")) && *s)
		parse_fault(s);
	F.sticky = (s = getenv("GFS_FAULT_STICKY")) && *s == '1';
	if ((s = getenv("GFS_FAULT_OFFSET_MAX")) && *s)
		F.offset_max = atoll(s);
	if ((s = getenv("GFS_FAULT_DIR")) && *s) {
		if (!realpath(s, F.dir))
			snprintf(F.dir, sizeof F.dir, "%s", s);
		F.dirlen = strlen(F.dir);
		while (F.dirlen > 1 && F.dir[F.dirlen - 1] == '/')
			F.dir[--F.dirlen] = '\0';
	}
	if ((s = getenv("GFS_FAULT_REPORT")) && *s)
		snprintf(F.report, sizeof F.report, "%s", s);
	F.ready = true;
	busy--;
}

__attribute__((destructor)) static void faultinj_fini(void)
{
	busy++;
	for (int k = 0; k < K_NKINDS; k++)
		if (F.count[k])
			report_line("count pid=%ld kind=%s calls=%lu\n",
				    (long)getpid(), kind_names[k], F.count[k]);
	report_line("exit pid=%ld fired=%lu\n", (long)getpid(), F.fired);
	busy--;
}

/* ---- which calls count ---------------------------------------------------- */

static bool under_dir(const char *abs)
{
	if (!F.dirlen)
		return true;
	return !strncmp(abs, F.dir, F.dirlen) &&
	       (abs[F.dirlen] == '/' || abs[F.dirlen] == '\0');
}

static bool fd_path(int fd, char *out, size_t cap)
{
	char link[64];
	long n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = syscall(SYS_readlinkat, AT_FDCWD, link, out, cap - 1);
	if (n <= 0)
		return false;
	out[n] = '\0';
	return true;
}

/* The absolute form of (dirfd, path), textually: good enough for a prefix
 * test of the paths graphfs and LMDB build (no "..", no symlinks). */
static bool abs_path(int dirfd, const char *path, char *out, size_t cap)
{
	char base[PATH_MAX];

	if (!path)
		return false;
	if (path[0] == '/') {
		snprintf(out, cap, "%s", path);
		return true;
	}
	if (dirfd == AT_FDCWD) {
		if (syscall(SYS_getcwd, base, sizeof base) <= 0)
			return false;
	} else if (!fd_path(dirfd, base, sizeof base)) {
		return false;
	}
	return snprintf(out, cap, "%s/%s", base, path) < (int)cap;
}

enum verdict { PASS, FAIL, SHORT };

/* Counts one call of kind k on path p; says whether to fail it. */
static enum verdict decide(enum kind k, const char *p)
{
	unsigned long n;

	if (busy || !F.ready || !under_dir(p))
		return PASS;
	n = __atomic_add_fetch(&F.count[k], 1, __ATOMIC_SEQ_CST);
	if ((int)k != F.kind || (n != F.n && !(F.sticky && n > F.n)))
		return PASS;
	__atomic_add_fetch(&F.fired, 1, __ATOMIC_SEQ_CST);
	busy++;
	report_line("fired pid=%ld kind=%s n=%lu action=%s path=%s\n",
		    (long)getpid(), kind_names[k], n,
		    F.action == ACT_SHORT ? "short" : strerrorname_np(F.action),
		    p);
	busy--;
	return F.action == ACT_SHORT ? SHORT : FAIL;
}

static enum verdict decide_fd(enum kind k, int fd)
{
	char p[PATH_MAX];

	if (busy || !F.ready)
		return PASS;
	if (F.dirlen && !fd_path(fd, p, sizeof p))
		return PASS;
	return decide(k, F.dirlen ? p : "");
}

static enum verdict decide_at(enum kind k, int dirfd, const char *path)
{
	char p[PATH_MAX];

	if (busy || !F.ready)
		return PASS;
	if (F.dirlen && !abs_path(dirfd, path, p, sizeof p))
		return PASS;
	return decide(k, F.dirlen ? p : "");
}

/* A short write: half the bytes, at least one. */
static size_t half(size_t n)
{
	return n > 1 ? n / 2 : n;
}

#define REAL(name, ret, ...)                                               \
	static ret (*real_##name)(__VA_ARGS__);                            \
	if (!real_##name)                                                  \
		real_##name = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

#define FAILWITH(rv)                                                       \
	do {                                                               \
		errno = F.action;                                          \
		return rv;                                                 \
	} while (0)

/* ---- writes ------------------------------------------------------------- */

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(write, ssize_t, int, const void *, size_t);
	switch (decide_fd(K_WRITE, fd)) {
	case FAIL: FAILWITH(-1);
	case SHORT: n = half(n); break;
	case PASS: break;
	}
	return real_write(fd, buf, n);
}

/* Outside GFS_FAULT_OFFSET_MAX: not counted. */
static bool off_counts(off_t off)
{
	return !F.offset_max || (long long)off < F.offset_max;
}

static ssize_t pwrite_common(ssize_t (*fn)(int, const void *, size_t, off_t),
			     int fd, const void *buf, size_t n, off_t off)
{
	if (!off_counts(off))
		return fn(fd, buf, n, off);
	switch (decide_fd(K_PWRITE, fd)) {
	case FAIL: FAILWITH(-1);
	case SHORT: n = half(n); break;
	case PASS: break;
	}
	return fn(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite, ssize_t, int, const void *, size_t, off_t);
	return pwrite_common(real_pwrite, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite64, ssize_t, int, const void *, size_t, off_t);
	return pwrite_common(real_pwrite64, fd, buf, n, off);
}

/* A short vectored write: the first half of the bytes (at least one),
 * through a copy of the vector cut there.  Returns the new count. */
static int short_iov(const struct iovec *iov, int cnt, struct iovec *out)
{
	size_t total = 0, want;
	int n = 0;

	if (cnt > 1024)
		cnt = 1024;
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	want = half(total);
	for (; n < cnt && want; n++) {
		out[n] = iov[n];
		if (out[n].iov_len > want)
			out[n].iov_len = want;
		want -= out[n].iov_len;
	}
	return n ? n : cnt;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	struct iovec cut[1024];

	REAL(writev, ssize_t, int, const struct iovec *, int);
	switch (decide_fd(K_WRITEV, fd)) {
	case FAIL: FAILWITH(-1);
	case SHORT: cnt = short_iov(iov, cnt, cut); iov = cut; break;
	case PASS: break;
	}
	return real_writev(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	struct iovec cut[1024];

	REAL(pwritev, ssize_t, int, const struct iovec *, int, off_t);
	if (!off_counts(off))
		return real_pwritev(fd, iov, cnt, off);
	switch (decide_fd(K_PWRITEV, fd)) {
	case FAIL: FAILWITH(-1);
	case SHORT: cnt = short_iov(iov, cnt, cut); iov = cut; break;
	case PASS: break;
	}
	return real_pwritev(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	struct iovec cut[1024];

	REAL(pwritev64, ssize_t, int, const struct iovec *, int, off_t);
	if (!off_counts(off))
		return real_pwritev64(fd, iov, cnt, off);
	switch (decide_fd(K_PWRITEV, fd)) {
	case FAIL: FAILWITH(-1);
	case SHORT: cnt = short_iov(iov, cnt, cut); iov = cut; break;
	case PASS: break;
	}
	return real_pwritev64(fd, iov, cnt, off);
}

/* ---- reads (a failing disk under a mount) -------------------------------- */

ssize_t read(int fd, void *buf, size_t n)
{
	REAL(read, ssize_t, int, void *, size_t);
	switch (decide_fd(K_READ, fd)) {
	case FAIL: FAILWITH(-1);
	case SHORT: n = half(n); break;
	case PASS: break;
	}
	return real_read(fd, buf, n);
}

static ssize_t pread_common(ssize_t (*fn)(int, void *, size_t, off_t), int fd,
			    void *buf, size_t n, off_t off)
{
	switch (decide_fd(K_PREAD, fd)) {
	case FAIL: FAILWITH(-1);
	case SHORT: n = half(n); break;
	case PASS: break;
	}
	return fn(fd, buf, n, off);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	REAL(pread, ssize_t, int, void *, size_t, off_t);
	return pread_common(real_pread, fd, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t off)
{
	REAL(pread64, ssize_t, int, void *, size_t, off_t);
	return pread_common(real_pread64, fd, buf, n, off);
}

/* ---- durability ----------------------------------------------------------- */

int fsync(int fd)
{
	REAL(fsync, int, int);
	if (decide_fd(K_FSYNC, fd) != PASS)
		FAILWITH(-1);
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	REAL(fdatasync, int, int);
	if (decide_fd(K_FDATASYNC, fd) != PASS)
		FAILWITH(-1);
	return real_fdatasync(fd);
}

int msync(void *addr, size_t len, int flags)
{
	REAL(msync, int, void *, size_t, int);
	if (decide(K_MSYNC, F.dirlen ? F.dir : "") != PASS)
		FAILWITH(-1);
	return real_msync(addr, len, flags);
}

int ftruncate(int fd, off_t len)
{
	REAL(ftruncate, int, int, off_t);
	if (decide_fd(K_FTRUNCATE, fd) != PASS)
		FAILWITH(-1);
	return real_ftruncate(fd, len);
}

int ftruncate64(int fd, off_t len)
{
	REAL(ftruncate64, int, int, off_t);
	if (decide_fd(K_FTRUNCATE, fd) != PASS)
		FAILWITH(-1);
	return real_ftruncate64(fd, len);
}

/* ---- names ------------------------------------------------------------------ */

int link(const char *from, const char *to)
{
	REAL(link, int, const char *, const char *);
	if (decide_at(K_LINK, AT_FDCWD, to) != PASS)
		FAILWITH(-1);
	return real_link(from, to);
}

int linkat(int fd1, const char *from, int fd2, const char *to, int flags)
{
	REAL(linkat, int, int, const char *, int, const char *, int);
	if (decide_at(K_LINKAT, fd2, to) != PASS)
		FAILWITH(-1);
	return real_linkat(fd1, from, fd2, to, flags);
}

int rename(const char *from, const char *to)
{
	REAL(rename, int, const char *, const char *);
	if (decide_at(K_RENAME, AT_FDCWD, to) != PASS)
		FAILWITH(-1);
	return real_rename(from, to);
}

int renameat(int fd1, const char *from, int fd2, const char *to)
{
	REAL(renameat, int, int, const char *, int, const char *);
	if (decide_at(K_RENAMEAT, fd2, to) != PASS)
		FAILWITH(-1);
	return real_renameat(fd1, from, fd2, to);
}

int renameat2(int fd1, const char *from, int fd2, const char *to,
	      unsigned flags)
{
	REAL(renameat2, int, int, const char *, int, const char *, unsigned);
	if (decide_at(K_RENAMEAT, fd2, to) != PASS)
		FAILWITH(-1);
	return real_renameat2(fd1, from, fd2, to, flags);
}

int unlink(const char *path)
{
	REAL(unlink, int, const char *);
	if (decide_at(K_UNLINK, AT_FDCWD, path) != PASS)
		FAILWITH(-1);
	return real_unlink(path);
}

int unlinkat(int fd, const char *path, int flags)
{
	REAL(unlinkat, int, int, const char *, int);
	if (decide_at(K_UNLINKAT, fd, path) != PASS)
		FAILWITH(-1);
	return real_unlinkat(fd, path, flags);
}

int mkdir(const char *path, mode_t mode)
{
	REAL(mkdir, int, const char *, mode_t);
	if (decide_at(K_MKDIR, AT_FDCWD, path) != PASS)
		FAILWITH(-1);
	return real_mkdir(path, mode);
}

/* ---- opens -------------------------------------------------------------------- */

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE
		       ? (mode_t)va_arg(ap, int)
		       : 0;
}

#define OPEN_WRAPPER(name)                                                 \
	int name(const char *path, int flags, ...)                         \
	{                                                                  \
		va_list ap;                                                \
		mode_t mode;                                               \
		REAL(name, int, const char *, int, ...);                   \
		va_start(ap, flags);                                       \
		mode = mode_arg(flags, ap);                                \
		va_end(ap);                                                \
		if (decide_at(K_OPEN, AT_FDCWD, path) != PASS)             \
			FAILWITH(-1);                                      \
		return real_##name(path, flags, mode);                     \
	}
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

#define OPENAT_WRAPPER(name)                                               \
	int name(int dirfd, const char *path, int flags, ...)              \
	{                                                                  \
		va_list ap;                                                \
		mode_t mode;                                               \
		REAL(name, int, int, const char *, int, ...);              \
		va_start(ap, flags);                                       \
		mode = mode_arg(flags, ap);                                \
		va_end(ap);                                                \
		if (decide_at(K_OPENAT, dirfd, path) != PASS)              \
			FAILWITH(-1);                                      \
		return real_##name(dirfd, path, flags, mode);              \
	}
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

/* _FORTIFY_SOURCE's variants for a call without a mode argument. */
int __open_2(const char *path, int flags)
{
	REAL(__open_2, int, const char *, int);
	if (decide_at(K_OPEN, AT_FDCWD, path) != PASS)
		FAILWITH(-1);
	return real___open_2(path, flags);
}

int __open64_2(const char *path, int flags)
{
	REAL(__open64_2, int, const char *, int);
	if (decide_at(K_OPEN, AT_FDCWD, path) != PASS)
		FAILWITH(-1);
	return real___open64_2(path, flags);
}

int __openat_2(int dirfd, const char *path, int flags)
{
	REAL(__openat_2, int, int, const char *, int);
	if (decide_at(K_OPENAT, dirfd, path) != PASS)
		FAILWITH(-1);
	return real___openat_2(dirfd, path, flags);
}

/* ---- mmap: only file mappings count (malloc maps anonymous memory) ------------ */

static void *mmap_common(void *(*fn)(void *, size_t, int, int, int, off_t),
			 void *addr, size_t len, int prot, int flags, int fd,
			 off_t off)
{
	if (fd >= 0 && !(flags & MAP_ANONYMOUS) &&
	    decide_fd(K_MMAP, fd) != PASS)
		FAILWITH(MAP_FAILED);
	return fn(addr, len, prot, flags, fd, off);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	REAL(mmap, void *, void *, size_t, int, int, int, off_t);
	return mmap_common(real_mmap, addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	REAL(mmap64, void *, void *, size_t, int, int, int, off_t);
	return mmap_common(real_mmap64, addr, len, prot, flags, fd, off);
}
