/* upgrade.c - graphctl upgrade: a store of an earlier format to the current
 * one (DESIGN.md §2: every newer build opens or upgrades every earlier
 * format).
 *
 * Format 1 -> 2 (issue 8): every manifest value gains its checksum
 * (store.c, "sealed values") and FORMAT gains a check line.  Table files
 * and schemas are the same in both formats.
 *
 *   1. take every table lock LOCK_EX without waiting (a writer of any build
 *      holds one while it writes): -EBUSY naming the table otherwise;
 *   2. refuse (-EBUSY) while another process has the manifest open: every
 *      open LMDB environment holds a read lock on byte 0 of lock.mdb, so
 *      F_GETLK for a write lock there names such a process (a mount, a
 *      long-running graphctl of the old build, which would go on writing
 *      values without checksums);
 *   3. rewrite the manifest in one LMDB write transaction
 *      (gfs_manifest_upgrade): a crash leaves format 1 or format 2;
 *   4. write FORMAT (temp file, fsync, rename, directory fsync).
 * A crash between 3 and 4 leaves FORMAT at 1 over a format-2 manifest:
 * every command but upgrade refuses it, and upgrade run again finds the
 * manifest current (nothing rewritten) and writes FORMAT.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "failpoints.h"
#include "graph.h"
#include "lock.h"

struct names {
	char **v;
	size_t n, cap;
};

static void names_free(struct names *nm)
{
	for (size_t i = 0; i < nm->n; i++)
		free(nm->v[i]);
	free(nm->v);
}

/* The tables that have a lock file (every table a writer ever locked). */
static int lock_names(const char *dir, struct names *nm)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *dp;

	snprintf(path, sizeof path, "%s/locks", dir);
	dp = opendir(path);
	if (!dp)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dp))) {
		size_t len = strlen(de->d_name);
		void *p;
		if (len <= 5 || strcmp(de->d_name + len - 5, ".lock"))
			continue;
		p = gfs_array_grow(nm->v, &nm->cap, nm->n, sizeof *nm->v, 8);
		if (p)
			nm->v = p;
		if (!p || !(nm->v[nm->n] = gfs_memdup(de->d_name, len - 5))) {
			closedir(dp);
			return -ENOMEM;
		}
		nm->n++;
	}
	closedir(dp);
	return 0;
}

static int lock_all(const char *dir, struct gfs_lockset **ls,
		    struct gfs_diag *d)
{
	struct names nm = { 0 };
	enum gfs_lock_mode *modes = NULL;
	int rc = lock_names(dir, &nm);

	*ls = NULL;
	if (!rc && nm.n && !(modes = calloc(nm.n, sizeof *modes)))
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < nm.n; i++)
		modes[i] = GFS_LOCK_EX;
	if (!rc && nm.n)
		rc = gfs_lock_tables(dir, (const char *const *)nm.v, modes, nm.n,
				     GFS_LOCK_TRY, ls);
	if (rc == -EWOULDBLOCK) {
		gfs_diag_set(d, "store '%s' has a writer at work (a table lock is held): stop it, then run upgrade again", dir);
		rc = -EBUSY;
	} else if (rc) {
		gfs_diag_set(d, "cannot lock the tables of '%s': %s", dir,
			     gfs_strerror(rc));
	}
	free(modes);
	names_free(&nm);
	return rc;
}

/* Another process with the manifest open holds a read lock on byte 0 of
 * lock.mdb (LMDB's liveness lock); 0 if none. */
static int manifest_user(const char *dir, struct gfs_diag *d)
{
	char path[PATH_MAX];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = 0, .l_len = 1 };
	int fd, rc = 0;

	snprintf(path, sizeof path, "%s/manifest/lock.mdb", dir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : gfs_io_fail("open", path, -errno);
	if (fcntl(fd, F_GETLK, &fl) < 0)
		rc = gfs_io_fail("fcntl(F_GETLK)", path, -errno);
	else if (fl.l_type != F_UNLCK) {
		gfs_diag_set(d, "store '%s' is open in process %d (a mount or another graphctl): stop it, then run upgrade again",
			     dir, (int)fl.l_pid);
		rc = -EBUSY;
	}
	close(fd);
	return rc;
}

/* Issue 11 (h11-branch's part of the format-3 upgrade): main gets its
 * branch record (docs/branches-design.md §1.1), in a transaction of its
 * own after the rewrite: a crash between them leaves a store whose main has
 * no record, which reads as main = the highest graph version, and upgrade
 * run again writes it. */
static int upgrade_branches(struct gfs_manifest *m, struct gfs_upgrade_result *res,
			    struct gfs_diag *d)
{
	bool created = false;
	int rc = gfs_manifest_branches_upgrade(m, &created);

	if (rc)
		gfs_diag_set(d, "cannot record branch main: %s", gfs_strerror(rc));
	if (created)
		res->records++;
	return rc;
}

static int upgrade_manifest(const char *dir, struct gfs_upgrade_result *res,
			    struct gfs_diag *d)
{
	struct gfs_manifest *m;
	int rc = gfs_manifest_open(dir, GFS_MANIFEST_UPGRADE, &m, d);

	if (rc)
		return rc;
	rc = gfs_manifest_upgrade(m, &res->records, d);
	if (!rc)
		rc = upgrade_branches(m, res, d);
	gfs_manifest_close(m);
	return rc;
}

int gfs_graph_upgrade(const char *dir, struct gfs_upgrade_result *res,
		      struct gfs_diag *d)
{
	char id[GFS_ULID_LEN + 1];
	struct gfs_lockset *ls = NULL;
	int rc, err;

	memset(res, 0, sizeof *res);
	rc = gfs_graph_format_read(dir, &res->from, id, d);
	if (rc)
		return rc;
	res->to = GFS_FORMAT_VERSION;
	rc = lock_all(dir, &ls, d);
	if (!rc)
		rc = manifest_user(dir, d);
	if (!rc)
		rc = upgrade_manifest(dir, res, d);
	err = rc ? 0 : gfs_fp_hit(GFS_FP_UPGRADE_AFTER_MANIFEST);
	if (err)
		rc = -err;
	if (!rc && res->from != GFS_FORMAT_VERSION) {
		rc = gfs_graph_format_write(dir, id);
		if (rc)
			gfs_diag_set(d, "cannot write '%s/FORMAT': %s", dir,
				     gfs_strerror(rc));
	} else if (!rc) {
		/* Current already, but an earlier run may have failed at its
		 * directory fsync after renaming FORMAT into place: make the
		 * name durable now rather than trust the page cache. */
		rc = gfs_fsync_dir(dir);
		if (rc)
			gfs_diag_io(d, rc);
	}
	gfs_lockset_free(ls);
	return rc;
}
