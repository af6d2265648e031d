/* failpoints.c - the failpoint catalog and its libfiu-backed actions.
 *
 * The name table is always compiled (tools and the lint test list it).  With
 * --enable-failpoints, gfs_fp_init() arms points from GRAPHFS_FAILPOINTS
 * through libfiu, so points armed by fiu-run/fiu-ctrl behave the same:
 *
 *   GRAPHFS_FAILPOINTS = spec[,spec...]
 *   spec   = name "=" action [ "@" N [ "+" ] ]
 *   action = "error:" errno      errno as a number or a name (EIO, ENOSPC, ...)
 *          | "exit"              _exit(86) on the spot, nothing flushed
 *          | "park"              announce, block until released
 *   @N     fire on the Nth hit only; @N+ on the Nth and every later hit;
 *          without @ on every hit.
 *   @arm   fire on a hit only while "$GRAPHFS_FP_DIR/<name, '/' -> '_'>.arm"
 *          exists, and take that file (the hit that unlinks it fires, so
 *          one arm fires once): a test arms a point at the moment it
 *          chooses, in a running process, with fp_arm (tests/lib.sh),
 *          without LD_PRELOAD (fiu-ctrl needs fiu-run, which ASan refuses).
 *
 * park writes "$GRAPHFS_FP_DIR/<name, '/' -> '_'>.<pid>.reached" (holding
 * the pid), created atomically by rename, and blocks until that file is
 * deleted; tests/lib.sh has fp_wait_reached / fp_release.  Park with
 * GRAPHFS_FP_DIR unset returns EINVAL at the call site.
 *
 * Every time an armed point fires (its action is taken: error, exit or
 * park), one line "<name> <action> <pid>\n" is appended to
 * $GRAPHFS_FP_LOG (a test's own record, so a loop can fail when a point it
 * expects is never reached) and to $GRAPHFS_FP_COVERAGE (set by `make
 * check` for the whole suite: tests/lint_failpoints.sh counts a point as
 * covered only if it is there).  One O_APPEND write per line, so lines of
 * concurrent processes never interleave; written before _exit and park.
 */
#include "config.h"

#include "failpoints.h"

const char *const gfs_fp_names[GFS_FP__COUNT] = {
#define GFS_FP_NAME(id, name) [GFS_FP_##id] = name,
	GFS_FAILPOINT_CATALOG(GFS_FP_NAME)
#undef GFS_FP_NAME
};

#ifdef GFS_FAILPOINTS_ENABLED

#define FIU_ENABLE 1
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <fiu-control.h>
#include <fiu.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define EXIT_STATUS 86
#define PARK_POLL_NS 5000000L

/* Hit counting for @N; failinfo of the libfiu point. */
struct arm {
	uint64_t nth;
	bool and_later;
	bool gated;                /* @arm */
	int fp;
	atomic_uint_fast64_t hits;
};

static struct arm arms[GFS_FP__COUNT];
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool init_done;
static int init_rc;              /* protected by init_lock until init_done */
static char init_msg[256];       /* the bad spec, for later callers */

static const struct {
	const char *name;
	int num;
} errnos[] = {
	{ "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EINTR", EINTR },
	{ "EAGAIN", EAGAIN }, { "ENOMEM", ENOMEM }, { "EROFS", EROFS },
	{ "EACCES", EACCES }, { "EDQUOT", EDQUOT }, { "EPERM", EPERM },
	{ "ENOENT", ENOENT }, { "EEXIST", EEXIST }, { "EBUSY", EBUSY },
	{ "EFBIG", EFBIG }, { "EMFILE", EMFILE }, { "EINVAL", EINVAL },
};

static int fp_lookup(const char *name, size_t len)
{
	for (int i = 0; i < GFS_FP__COUNT; i++)
		if (strlen(gfs_fp_names[i]) == len &&
		    memcmp(gfs_fp_names[i], name, len) == 0)
			return i;
	return -1;
}

static int errno_parse(const char *s, int *out)
{
	uint64_t v;
	for (size_t i = 0; i < GFS_ARRAY_SIZE(errnos); i++)
		if (strcmp(s, errnos[i].name) == 0) {
			*out = errnos[i].num;
			return 0;
		}
	if (gfs_parse_u64(s, &v) || v == 0 || v >= GFS_FP_ACTION_EXIT)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* "error:5", "exit", "park" -> failnum. */
static int action_parse(const char *s, int *failnum)
{
	if (strcmp(s, "exit") == 0)
		*failnum = GFS_FP_ACTION_EXIT;
	else if (strcmp(s, "park") == 0)
		*failnum = GFS_FP_ACTION_PARK;
	else if (strncmp(s, "error:", 6) == 0)
		return errno_parse(s + 6, failnum);
	else
		return -EINVAL;
	return 0;
}

static int arm_path(const char *name, char *out, size_t cap);

/* "@N", "@N+" or "@arm" (s points after the '@'). */
static int nth_parse(char *s, struct arm *a)
{
	size_t n = strlen(s);
	a->gated = strcmp(s, "arm") == 0;
	if (a->gated) {
		char path[PATH_MAX];
		/* park and the arm file both live in GRAPHFS_FP_DIR */
		return arm_path(gfs_fp_names[a->fp], path, sizeof path)
			       ? -EINVAL : 0;
	}
	a->and_later = n && s[n - 1] == '+';
	if (a->and_later)
		s[n - 1] = '\0';
	if (gfs_parse_u64(s, &a->nth) || a->nth == 0)
		return -EINVAL;
	return 0;
}

static int hit_cb(const char *name, int *failnum, void **failinfo,
		  unsigned int *flags)
{
	(void)name; (void)failnum; (void)flags;
	struct arm *a = *failinfo;
	if (a->gated) {
		char path[PATH_MAX];
		return !arm_path(gfs_fp_names[a->fp], path, sizeof path) &&
		       unlink(path) == 0;
	}
	uint64_t h = atomic_fetch_add(&a->hits, 1) + 1;
	return h == a->nth || (a->and_later && h > a->nth);
}

/* Arms one "name=action[@N[+]]" (modified in place). */
static int spec_arm(char *spec)
{
	char *eq = strchr(spec, '=');
	if (!eq)
		return -EINVAL;
	int fp = fp_lookup(spec, (size_t)(eq - spec));
	if (fp < 0)
		return -EINVAL;
	struct arm *a = &arms[fp];
	char *at = strchr(eq + 1, '@');
	int failnum;
	a->nth = 0;
	a->gated = false;
	a->fp = fp;
	if (at) {
		*at = '\0';
		if (nth_parse(at + 1, a))
			return -EINVAL;
	}
	if (action_parse(eq + 1, &failnum))
		return -EINVAL;
	atomic_store(&a->hits, 0);
	if (!at)
		return fiu_enable(gfs_fp_names[fp], failnum, NULL, 0) ? -EINVAL : 0;
	return fiu_enable_external(gfs_fp_names[fp], failnum, a, 0, hit_cb)
		       ? -EINVAL : 0;
}

static int specs_arm(const char *env)
{
	char *copy = gfs_strdup(env);
	if (!copy)
		return -ENOMEM;
	int rc = 0;
	for (char *s = copy; s && !rc;) {
		char *comma = strchr(s, ',');
		if (comma)
			*comma = '\0';
		if (*s) {
			snprintf(init_msg, sizeof init_msg,
				 "bad GRAPHFS_FAILPOINTS entry '%s'", s);
			rc = spec_arm(s);
		}
		s = comma ? comma + 1 : NULL;
	}
	if (!rc)
		init_msg[0] = '\0';
	free(copy);
	return rc;
}

int gfs_fp_init(struct gfs_diag *d)
{
	pthread_mutex_lock(&init_lock);
	if (!atomic_load(&init_done)) {
		const char *env = getenv("GRAPHFS_FAILPOINTS");
		init_rc = fiu_init(0) ? -EIO : 0;
		if (!init_rc && env && *env)
			init_rc = specs_arm(env);
		atomic_store(&init_done, true);
	}
	int rc = init_rc;
	pthread_mutex_unlock(&init_lock);
	if (rc)
		gfs_diag_set(d, "%s", init_msg[0] ? init_msg
						 : "libfiu initialisation failed");
	return rc;
}

/* "$GRAPHFS_FP_DIR/<name with '/' -> '_'>.<pid>.reached" */
static int reached_path(const char *dir, const char *name, char *out,
			size_t cap)
{
	int n = snprintf(out, cap, "%s/%s.%ld.reached", dir, name,
			 (long)getpid());
	if (n < 0 || (size_t)n >= cap)
		return ENAMETOOLONG;
	for (char *p = out + strlen(dir) + 1; *p; p++)
		if (*p == '/')
			*p = '_';
	return 0;
}

/* "$GRAPHFS_FP_DIR/<name with '/' -> '_'>.arm"; nonzero without the dir. */
static int arm_path(const char *name, char *out, size_t cap)
{
	const char *dir = getenv("GRAPHFS_FP_DIR");
	if (!dir || !*dir)
		return EINVAL;
	int n = snprintf(out, cap, "%s/%s.arm", dir, name);
	if (n < 0 || (size_t)n >= cap)
		return ENAMETOOLONG;
	for (char *p = out + strlen(dir) + 1; *p; p++)
		if (*p == '/')
			*p = '_';
	return 0;
}

static int announce(const char *path)
{
	char tmp[PATH_MAX + 8], pid[24];
	int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp)
		return ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	int rc = gfs_write_all(fd, pid, (size_t)len);
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc)
		unlink(tmp);
	return -rc;
}

/* Announces "reached" and blocks until the test deletes the file. */
static int park(const char *name)
{
	const char *dir = getenv("GRAPHFS_FP_DIR");
	char path[PATH_MAX];
	if (!dir || !*dir)
		return EINVAL;
	int err = reached_path(dir, name, path, sizeof path);
	if (!err)
		err = announce(path);
	if (err)
		return err;
	struct timespec ts = { 0, PARK_POLL_NS };
	while (access(path, F_OK) == 0)
		nanosleep(&ts, NULL);
	return 0;
}

static void log_to(const char *var, const char *line, size_t len)
{
	const char *path = getenv(var);
	if (!path || !*path)
		return;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return; /* a test that needs the record fails on its absence */
	(void)gfs_write_all(fd, line, len);
	close(fd);
}

/* Records that an armed point fired (see the header comment). */
static void log_fired(enum gfs_fp fp, int n)
{
	const char *act = n == GFS_FP_ACTION_EXIT ? "exit" :
			  n == GFS_FP_ACTION_PARK ? "park" : "error";
	char line[160];
	int len = snprintf(line, sizeof line, "%s %s %ld\n", gfs_fp_names[fp],
			   act, (long)getpid());
	if (len <= 0 || (size_t)len >= sizeof line)
		return;
	log_to("GRAPHFS_FP_LOG", line, (size_t)len);
	log_to("GRAPHFS_FP_COVERAGE", line, (size_t)len);
}

int gfs_fp_hit(enum gfs_fp fp)
{
	if ((unsigned)fp >= GFS_FP__COUNT)
		return 0;
	assert(!gfs_in_write_cb()); /* kv.h: no failpoint in a write callback */
	if (!atomic_load(&init_done))
		gfs_fp_init(NULL);
	if (init_rc)
		return EINVAL; /* a bad spec must not pass silently */
	int n = fiu_fail(gfs_fp_names[fp]);
	if (n == 0)
		return 0;
	log_fired(fp, n);
	if (n == GFS_FP_ACTION_EXIT)
		_exit(EXIT_STATUS);
	if (n == GFS_FP_ACTION_PARK)
		return park(gfs_fp_names[fp]);
	return n > 0 && n < 4096 ? n : EIO;
}

#endif
