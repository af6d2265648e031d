/* lock.c - per-table writer leases: flock() on STORE/locks/<table>.lock.
 *
 * Why flock and one descriptor per acquisition: flock locks belong to the
 * open file description, so two descriptors exclude each other even within
 * one process (threads of a mount), and the kernel drops the lock when the
 * process dies — a sidecar whose locks can be taken belongs to a dead
 * writer (DESIGN.md §3).  Lock files are created on first use and never
 * unlinked or renamed: unlinking would let a second writer lock a fresh
 * inode while the first still holds the old one.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "lock.h"
#include "util.h"

struct gfs_lockset {
	size_t n;
	int fds[];
};

struct want {
	const char *table;
	enum gfs_lock_mode mode;
};

static int want_cmp(const void *a, const void *b)
{
	return strcmp(((const struct want *)a)->table,
		      ((const struct want *)b)->table);
}

static bool table_name_ok(const char *t)
{
	return t && t[0] && strchr(t, '/') == NULL && strcmp(t, ".") &&
	       strcmp(t, "..") && strlen(t) < NAME_MAX - 5;
}

/* Sorted, deduplicated (exclusive wins); returns the new count. */
static size_t wants_sort(struct want *w, size_t n)
{
	size_t k = 0;
	qsort(w, n, sizeof *w, want_cmp);
	for (size_t i = 0; i < n; i++) {
		if (k && strcmp(w[k - 1].table, w[i].table) == 0) {
			if (w[i].mode == GFS_LOCK_EX)
				w[k - 1].mode = GFS_LOCK_EX;
			continue;
		}
		w[k++] = w[i];
	}
	return k;
}

static int lock_open(const char *store_dir, const char *table)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int n = snprintf(dir, sizeof dir, "%s/locks", store_dir);
	int m = snprintf(path, sizeof path, "%s/%s.lock", dir, table);
	if (n < 0 || m < 0 || (size_t)m >= sizeof path)
		return -ENAMETOOLONG;
	for (int tries = 0;; tries++) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, GFS_FILE_MODE);
		if (fd >= 0)
			return fd;
		if (errno == EACCES || errno == EROFS) /* reader of a ro store */
			fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno != ENOENT || tries)
			return gfs_io_fail("open lock file", path, -errno);
		int rc = gfs_mkdir(dir, GFS_DIR_MODE);
		if (rc)
			return rc;
	}
}

static int lock_fd(int fd, enum gfs_lock_mode mode, unsigned flags)
{
	int op = (mode == GFS_LOCK_EX ? LOCK_EX : LOCK_SH) |
		 (flags & GFS_LOCK_TRY ? LOCK_NB : 0);
	while (flock(fd, op)) {
		if (errno == EWOULDBLOCK)
			return -EWOULDBLOCK;
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

void gfs_lockset_free(struct gfs_lockset *ls)
{
	if (!ls)
		return;
	for (size_t i = 0; i < ls->n; i++)
		close(ls->fds[i]); /* closing the only descriptor releases */
	free(ls);
}

static int acquire(const char *store_dir, const struct want *w, size_t n,
		   unsigned flags, struct gfs_lockset *ls)
{
	for (size_t i = 0; i < n; i++) {
		int fd = lock_open(store_dir, w[i].table);
		if (fd < 0)
			return fd;
		int rc = lock_fd(fd, w[i].mode, flags);
		if (rc) {
			close(fd);
			return rc;
		}
		ls->fds[ls->n++] = fd;
	}
	return 0;
}

int gfs_lock_tables(const char *store_dir, const char *const *tables,
		    const enum gfs_lock_mode *modes, size_t n, unsigned flags,
		    struct gfs_lockset **out)
{
	*out = NULL;
	assert(!gfs_in_write_cb()); /* kv.h: no lock wait in a write callback */
	struct want *w = calloc(n + 1, sizeof *w);
	struct gfs_lockset *ls = calloc(1, sizeof *ls + (n + 1) * sizeof(int));
	int rc = w && ls ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		if (!table_name_ok(tables[i]))
			rc = -EINVAL;
		w[i] = (struct want){ tables[i], modes ? modes[i] : GFS_LOCK_EX };
	}
	if (!rc)
		rc = acquire(store_dir, w, wants_sort(w, n), flags, ls);
	free(w);
	if (rc) {
		gfs_lockset_free(ls); /* holds none on failure */
		return rc;
	}
	*out = ls;
	return 0;
}

/* ---- graph-version holds ------------------------------------------------- */

int gfs_holds_open(const char *store_dir, int *fd)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int n = snprintf(dir, sizeof dir, "%s/locks", store_dir);
	int m = snprintf(path, sizeof path, "%s/versions.lock", dir);

	*fd = -1;
	if (n < 0 || m < 0 || (size_t)m >= sizeof path)
		return -ENAMETOOLONG;
	for (int tries = 0;; tries++) {
		int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, GFS_FILE_MODE);

		if (f < 0 && (errno == EACCES || errno == EROFS))
			f = open(path, O_RDONLY | O_CLOEXEC);
		if (f >= 0) {
			*fd = f;
			return 0;
		}
		if (errno != ENOENT || tries)
			return gfs_io_fail("open lock file", path, -errno);
		int rc = gfs_mkdir(dir, GFS_DIR_MODE);
		if (rc)
			return rc;
	}
}

static int ofd_lock(int fd, uint64_t n, short type, int cmd)
{
	struct flock fl;

	if (n > (uint64_t)INT64_MAX)
		return -EINVAL;
	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)n;
	fl.l_len = 1;
	while (fcntl(fd, cmd, &fl)) {
		if (errno == EAGAIN || errno == EACCES)
			return -EWOULDBLOCK;
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int gfs_hold_take(int fd, uint64_t n)
{
	return ofd_lock(fd, n, F_RDLCK, F_OFD_SETLKW);
}

int gfs_hold_try(int fd, uint64_t n)
{
	return ofd_lock(fd, n, F_RDLCK, F_OFD_SETLK);
}

int gfs_hold_drop(int fd, uint64_t n)
{
	return ofd_lock(fd, n, F_UNLCK, F_OFD_SETLK);
}

int gfs_hold_fence(int fd, uint64_t n)
{
	return ofd_lock(fd, n, F_WRLCK, F_OFD_SETLK);
}

int gfs_hold_probe(int fd, uint64_t n, bool *held)
{
	int rc = gfs_hold_fence(fd, n);

	*held = rc == -EWOULDBLOCK;
	if (rc == -EWOULDBLOCK)
		return 0;
	return rc ? rc : gfs_hold_drop(fd, n);
}
