/* main.c - graphfs STORE MNT [options]: parse, check, daemonize, mount.
 *
 * Daemonizing (DESIGN.md §2, §5): the parent forks before anything touches
 * the store (nothing LMDB may cross fork()); the child opens the store,
 * creates the session, mounts and reports over a pipe; the parent exits
 * with that status, so `graphfs S M && ls M` works and a failed mount fails
 * the command.  fuse_daemonize() is never called.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "lock.h"
#include "log.h"
#include "recover.h"

struct cli {
	char *store;
	double live_timeout;
	unsigned poll_ms;
	unsigned tver_cache;
	unsigned max_inodes;
	unsigned readahead_kb;
	int opendir;
	int nonempty;
	int ro;         /* -o ro: no recovery sweep, the store opened read-only */
};

enum { KEY_RO = 1 };

#define CLI_OPT(t, p) { t, offsetof(struct cli, p), 1 }

static const struct fuse_opt cli_spec[] = {
	{ "live_timeout=%lf", offsetof(struct cli, live_timeout), 0 },
	{ "poll_ms=%u", offsetof(struct cli, poll_ms), 0 },
	{ "tver_cache=%u", offsetof(struct cli, tver_cache), 0 },
	{ "max_inodes=%u", offsetof(struct cli, max_inodes), 0 },
	{ "readahead_kb=%u", offsetof(struct cli, readahead_kb), 0 },
	CLI_OPT("opendir", opendir),
	CLI_OPT("nonempty", nonempty),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_END
};

/* The first non-option is the store; the second (the mount point) is
 * left for fuse_parse_cmdline. */
static int cli_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct cli *c = data;

	if (key == KEY_RO) {
		c->ro = 1;
		return 1; /* and keep it: the kernel mounts read-only too */
	}
	if (key == FUSE_OPT_KEY_NONOPT && !c->store) {
		c->store = strdup(arg);
		return c->store ? 0 : -1;
	}
	return 1;
}

static void usage(const char *prog)
{
	printf("usage: %s [options] STORE MOUNTPOINT\n\n"
	       "graphfs options:\n"
	       "    -o live_timeout=SEC    kernel cache timeout of the live view, the bound on\n"
	       "                           staleness if the notifier fails (default 60)\n"
	       "    -o poll_ms=MS          head poll interval of the notifier (default 20)\n"
	       "    -o tver_cache=N        unused open table versions kept (default 64)\n"
	       "    -o max_inodes=N        inodes the daemon tracks before it asks the kernel\n"
	       "                           to drop the least recently used (default 200000)\n"
	       "    -o opendir             keep OPENDIR/RELEASEDIR: live listings are then\n"
	       "                           not cached by the kernel (default: cached until\n"
	       "                           the notifier invalidates them)\n"
	       "    -o readahead_kb=N      the mount's readahead, so big files are read in\n"
	       "                           requests of up to N KiB (default 1024; root only)\n"
	       "    -o nonempty            allow a non-empty mount point\n\n",
	       prog);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

static int fail(const char *what, const char *subject, const char *why)
{
	fprintf(stderr, "graphfs: %s '%s': %s\n", what, subject, why);
	return 1;
}

/* A missing, non-directory, already mounted or (without nonempty)
 * non-empty mount point is refused before anything else happens. */
static int check_mountpoint(const char *mnt, bool nonempty)
{
	struct stat st, up;
	char parent[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (stat(mnt, &st))
		return fail("mount point", mnt, errno == ENOTCONN ?
			    "stale FUSE mount (try fusermount3 -u)" :
			    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail("mount point", mnt, strerror(ENOTDIR));
	snprintf(parent, sizeof parent, "%s/..", mnt);
	if (stat(parent, &up) == 0 &&
	    (up.st_dev != st.st_dev || up.st_ino == st.st_ino))
		return fail("mount point", mnt, "already a mount point (already mounted?)");
	if (nonempty)
		return 0;
	d = opendir(mnt);
	if (!d)
		return fail("mount point", mnt, strerror(errno));
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			break;
	closedir(d);
	return de ? fail("mount point", mnt,
			 "not empty (use -o nonempty to mount over it)") : 0;
}

static int check_store(const char *store, char *abs)
{
	struct stat st;

	if (!realpath(store, abs))
		return fail("store", store, strerror(errno));
	if (stat(abs, &st) || !S_ISDIR(st.st_mode))
		return fail("store", store, strerror(ENOTDIR));
	return 0;
}

static void report(int fd, unsigned char status)
{
	if (fd < 0)
		return;
	while (write(fd, &status, 1) < 0 && errno == EINTR)
		;
	close(fd);
}

/* Parent side: wait for the child's verdict. */
static int wait_child(int fd)
{
	unsigned char status = 1;
	ssize_t r;

	while ((r = read(fd, &status, 1)) < 0 && errno == EINTR)
		;
	close(fd);
	if (r != 1) {
		fprintf(stderr, "graphfs: daemon exited before mounting\n");
		return 1;
	}
	return status;
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

static char *options_text(const struct cli *c, const char *store,
			  const struct fuse_cmdline_opts *o,
			  const struct fuse_args *args)
{
	struct gfs_buf b;

	gfs_buf_init(&b);
	gfs_buf_appendf(&b, "store=%s\nmountpoint=%s\nlive_timeout=%g\n"
			"poll_ms=%u\ntver_cache=%u\nmax_inodes=%u\nreadahead_kb=%u\nforeground=%d\n"
			"singlethread=%d\ndebug=%d\n", store, o->mountpoint,
			c->live_timeout, c->poll_ms, c->tver_cache, c->max_inodes,
			c->readahead_kb,
			o->foreground, o->singlethread, o->debug);
	gfs_buf_append(&b, "fuse_args=", 10);
	for (int i = 1; i < args->argc; i++)
		gfs_buf_appendf(&b, "%s%s", i > 1 ? " " : "", args->argv[i]);
	gfs_buf_appendc(&b, '\n');
	return b.p;
}

static int run_loop(struct fuse_session *se, const struct fuse_cmdline_opts *o)
{
	struct fuse_loop_config *cfg;
	int rc;

	if (o->singlethread)
		return fuse_session_loop(se);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, (unsigned)o->clone_fd);
	fuse_loop_cfg_set_max_threads(cfg, o->max_threads);
	if (o->max_idle_threads != UINT_MAX) /* UINT_MAX: not given */
		fuse_loop_cfg_set_idle_threads(cfg, o->max_idle_threads);
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

struct mount {
	struct gfs_graph *g;
	struct gfs_fs *fs;
	struct fuse_session *se;
	bool mounted;
};

static void mount_release(struct mount *m)
{
	if (m->fs)
		gfs_fs_notifier_stop(m->fs);
	if (m->mounted)
		fuse_session_unmount(m->se);
	if (m->se)
		fuse_session_destroy(m->se);
	gfs_fs_free(m->fs);
	if (m->g)
		gfs_graph_close(m->g);
}

/* ---- shutdown ------------------------------------------------------------
 *
 * libfuse's own handlers (fuse_set_signal_handlers) end the session loop
 * from the signal handler: the multithreaded loop then cancels its workers
 * while the notifier may be blocked in fuse_lowlevel_notify_inval_* on a
 * directory lock that a pending LOOKUP holds.  Nobody answers that LOOKUP
 * any more, the notify never returns, and the daemon is wedged for good
 * (docs/mount.md, Shutdown).  So a signal here only wakes the stopper
 * thread, which (1) stops and joins the notifier while the workers still
 * serve (gfs_fs_notifier_stop, bounded: it aborts the connection if the
 * join does not finish), then (2) ends the loop and wakes the main thread
 * out of its wait.  An unmount ends the loop by itself (the kernel closes
 * the connection); the notifier's calls then fail at once. */

static int sig_pipe[2] = { -1, -1 };

static void on_stop_signal(int sig)
{
	unsigned char c = (unsigned char)sig;
	int e = errno;

	if (write(sig_pipe[1], &c, 1) < 0) {
		/* pipe full: a stop is already pending */
	}
	errno = e;
}

static void on_wake_signal(int sig)
{
	(void)sig; /* only interrupts the loop's wait (no SA_RESTART) */
}

struct stopper {
	struct mount *m;
	pthread_t main_thread, thread;
	atomic_bool loop_done;
	bool running;
};

static void *stopper_main(void *arg)
{
	struct stopper *s = arg;
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	unsigned char c = 0;
	ssize_t r;

	while ((r = read(sig_pipe[0], &c, 1)) < 0 && errno == EINTR)
		;
	if (r != 1 || c == 0)
		return NULL; /* the loop ended by itself */
	gfs_fs_notifier_stop(s->m->fs);
	fuse_session_exit(s->m->se);
	/* The loop checks "exited" before each wait: a wake-up that lands
	 * between the check and the wait is lost, so repeat it until the
	 * loop is seen to have returned. */
	while (!atomic_load(&s->loop_done)) {
		pthread_kill(s->main_thread, SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int set_handler(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

static int stopper_start(struct stopper *s, struct mount *m)
{
	static const int stops[] = { SIGTERM, SIGINT, SIGHUP };
	sigset_t all, old;
	int rc;

	s->m = m;
	s->main_thread = pthread_self();
	atomic_init(&s->loop_done, false);
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	/* The read end blocks: only the stopper reads it. */
	fcntl(sig_pipe[0], F_SETFL, 0);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = -pthread_create(&s->thread, NULL, stopper_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return rc;
	s->running = true;
	for (size_t i = 0; i < GFS_ARRAY_SIZE(stops); i++)
		if (set_handler(stops[i], on_stop_signal))
			return -errno;
	if (set_handler(SIGUSR1, on_wake_signal) ||
	    set_handler(SIGPIPE, SIG_IGN))
		return -errno;
	return 0;
}

/* After the loop returned: restore the defaults, end the stopper. */
static void stopper_end(struct stopper *s)
{
	unsigned char zero = 0;

	set_handler(SIGTERM, SIG_DFL);
	set_handler(SIGINT, SIG_DFL);
	set_handler(SIGHUP, SIG_DFL);
	atomic_store(&s->loop_done, true);
	if (s->running) {
		if (write(sig_pipe[1], &zero, 1) < 0) {
			/* full: the stopper is awake already */
		}
		pthread_join(s->thread, NULL);
		s->running = false;
	}
	for (int i = 0; i < 2; i++)
		if (sig_pipe[i] >= 0)
			close(sig_pipe[i]);
	sig_pipe[0] = sig_pipe[1] = -1;
}

static void sweep_note(const char *msg, void *arg)
{
	fprintf(stderr, "graphfs: recovery: %s\n", msg);
	(void)arg;
}

/* Every read-write mount runs the recovery sweep before it serves
 * (DESIGN.md §4): locks are only tried, so a live writer's or another
 * sweeper's sidecar is left to its owner and this mount never waits.  An
 * invariant violation refuses the read-write mount; -o ro still works. */
static int sweep(struct gfs_graph *g, const char *store, const char *mnt)
{
	char who[GFS_ACTOR_MAX], host[64] = "localhost";
	struct gfs_recover_opts ro = { .wait = false, .resolver = who,
				       .note = sweep_note };
	struct gfs_recover_report rr;
	struct gfs_diag d = {{0}};
	int rc;

	gethostname(host, sizeof host - 1);
	snprintf(who, sizeof who, "pid %d on %s (graphfs mount %s)", (int)getpid(), host, mnt);
	rc = gfs_recover_sweep(g, &ro, &rr, &d);
	if (rc && gfs_io_last(rc) && !strstr(d.msg, gfs_io_last(rc))) {
		/* which file and system call failed (util.h) */
		size_t n = strlen(d.msg);
		snprintf(d.msg + n, sizeof d.msg - n, "%s%s%s", n ? " (" : "",
			 gfs_io_last(rc), n ? ")" : "");
	}
	if (rc) {
		/* d.msg, when set, already starts with what happened */
		fprintf(stderr, "graphfs: store '%s': %s\n"
			"graphfs: the read-write mount is refused; 'graphctl fsck %s' shows the state, "
			"'-o ro' mounts the last published version\n",
			store, d.msg[0] ? d.msg : gfs_strerror(rc), store);
		return rc;
	}
	if (d.msg[0])
		fprintf(stderr, "graphfs: recovery: %s\n", d.msg);
	if (rr.busy || rr.retry_left)
		fprintf(stderr, "graphfs: recovery: %u operation(s) left to their owners; see .graphfs/sidecars.jsonl\n",
			rr.busy + rr.retry_left);
	return 0;
}

/* etcd stores: a sidecar the first sweep left busy may be a dead writer's
 * whose leases live on until their TTL (a SIGKILLed process's do).  The
 * mount then sweeps again whenever lease keys of the store are deleted (a
 * watch, no polling), so mounts converge without 'graphctl recover'.
 * LMDB: a dead writer's flock() ends with it, nothing to wait for. */
struct resweep {
	struct gfs_graph *g;
	char who[GFS_ACTOR_MAX];
	struct gfs_lock_watch *lw;
	pthread_t thread;
	bool running;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool pending, ended, stop;   /* mu */
};

static void resweep_kick(void *arg, bool ended)
{
	struct resweep *r = arg;

	pthread_mutex_lock(&r->mu);
	r->pending = true;
	r->ended = r->ended || ended;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->mu);
}

static void *resweep_main(void *arg)
{
	struct resweep *r = arg;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->stop && !r->pending)
			pthread_cond_wait(&r->cond, &r->mu);
		if (r->stop)
			break;
		bool ended = r->ended;
		r->pending = r->ended = false;
		pthread_mutex_unlock(&r->mu);
		struct gfs_recover_opts ro = { .wait = false, .resolver = r->who,
					       .note = sweep_note };
		struct gfs_recover_report rr;
		struct gfs_diag d = {{0}};
		if (ended) { /* the watch ended: a new one, then sweep */
			gfs_lock_watch_stop(r->lw);
			r->lw = NULL;
			if (gfs_lock_watch_releases(gfs_graph_dir(r->g), resweep_kick, r, &r->lw, &d))
				fprintf(stderr, "graphfs: recovery: cannot watch the store's leases again: %s\n",
					d.msg);
			d.msg[0] = 0;
		}
		int rc = gfs_recover_sweep(r->g, &ro, &rr, &d);
		if (rc || d.msg[0])
			fprintf(stderr, "graphfs: recovery: %s\n", d.msg[0] ? d.msg : gfs_strerror(rc));
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* Before the first sweep: the watch, so no release after it is missed. */
static int resweep_watch(struct resweep *r, struct gfs_graph *g, const char *mnt)
{
	char host[64] = "localhost";
	struct gfs_diag d = {{0}};
	int rc;

	r->g = g;
	gethostname(host, sizeof host - 1);
	snprintf(r->who, sizeof r->who, "pid %d on %s (graphfs mount %s)", (int)getpid(), host, mnt);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cond, NULL);
	rc = gfs_lock_watch_releases(gfs_graph_dir(g), resweep_kick, r, &r->lw, &d);
	if (rc)
		fprintf(stderr, "graphfs: store '%s': cannot watch its leases: %s\n", gfs_graph_dir(g),
			d.msg[0] ? d.msg : gfs_strerror(rc));
	return rc;
}

static int resweep_start(struct resweep *r)
{
	if (!r->lw)
		return 0;
	int rc = -pthread_create(&r->thread, NULL, resweep_main, r);
	r->running = rc == 0;
	return rc;
}

static void resweep_stop(struct resweep *r)
{
	if (!r->g)
		return;
	if (r->running) {
		pthread_mutex_lock(&r->mu);
		r->stop = true;
		pthread_cond_signal(&r->cond);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->thread, NULL);
		r->running = false;
	}
	gfs_lock_watch_stop(r->lw);
	r->lw = NULL;
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->mu);
	r->g = NULL;
}

/* In the child (or in the foreground): open, recover, mount, report, serve. */
static int serve(const char *store, struct fuse_args *args,
		 const struct fuse_cmdline_opts *o, struct gfs_fs_opts *fo,
		 int report_fd, bool ro)
{
	struct gfs_diag d = {{0}};
	struct stopper stop = {0};
	struct resweep rs = {0};
	struct mount m = {0};
	int rc;

	/* Worker threads would each grow a malloc arena of their own; two
	 * keep the daemon's memory near what it uses (docs/mount.md). */
	mallopt(M_ARENA_MAX, 2);
	rc = gfs_graph_open(store, ro ? GFS_GRAPH_RDONLY : 0, &m.g, &d);
	if (rc)
		gfs_diag_io(&d, rc);
	if (rc) {
		fprintf(stderr, "graphfs: store '%s': %s%s%s\n", store,
			gfs_strerror(rc), d.msg[0] ? ": " : "", d.msg);
		goto out;
	}
	if (!ro && (rc = resweep_watch(&rs, m.g, o->mountpoint)))
		goto out;
	if (!ro && (rc = sweep(m.g, store, o->mountpoint)))
		goto out;
	if (!ro && (rc = resweep_start(&rs)))
		goto out;
	rc = gfs_fs_new(m.g, fo, &m.fs);
	if (!rc) {
		m.se = fuse_session_new(args, gfs_fs_ops(), sizeof(struct fuse_lowlevel_ops), m.fs);
		rc = m.se ? 0 : -EINVAL;
	}
	if (!rc)
		rc = stopper_start(&stop, &m);
	if (!rc) {
		rc = fuse_session_mount(m.se, o->mountpoint) ? -EIO : 0;
		m.mounted = rc == 0;
	}
	if (!rc)
		rc = gfs_fs_notifier_start(m.fs, m.se);
	if (rc) {
		fprintf(stderr, "graphfs: cannot mount '%s' on '%s'\n", store,
			o->mountpoint);
		goto out;
	}
	report(report_fd, 0);
	report_fd = -1;
	if (!o->foreground) {
		detach_stdio();
		gfs_log_to_syslog();
		if (chdir("/"))
			rc = 0; /* nothing depends on the cwd */
	}
	rc = run_loop(m.se, o);
	if (rc > 0)
		rc = 0; /* ended by SIGTERM/SIGINT/SIGHUP: a clean unmount */
out:
	report(report_fd, 1);
	stopper_end(&stop);
	resweep_stop(&rs);
	mount_release(&m);
	return rc ? 1 : 0;
}

/* Adds "-o fsname=STORE,subtype=graphfs": mount(8) shows the store.  -o ro
 * stays in the arguments (cli_proc), so only then is the superblock
 * read-only.  Without it the superblock is writable, as writes through the
 * live view (issue 10) need: the daemon answers EROFS itself for every
 * write it does not implement, and for every write under versions/.  On a writable superblock the kernel marks
 * an inode's atime stale whenever it fetches the inode's pages from the
 * daemon (READ, READDIR, READLINK: fuse_invalidate_atime), so the next
 * stat of that inode sends one GETATTR although its attributes are cached
 * forever; once answered, nothing is sent again until reclaim drops the
 * pages.  Measured and weighed against a second, read-only session on
 * versions/ (which makes a plain `umount MNT` fail with EBUSY) in
 * docs/mount.md, "A writable superblock". */
static int add_fsname(struct fuse_args *args, const char *store)
{
	char *opts = NULL, *fsname;
	size_t n = strlen(store) + 8;
	int rc;

	fsname = malloc(n);
	if (!fsname)
		return -1;
	snprintf(fsname, n, "fsname=%s", store);
	rc = fuse_opt_add_opt_escaped(&opts, fsname);
	rc = rc ? rc : fuse_opt_add_opt(&opts, "subtype=graphfs");
	/* Writable unless -o ro (kept in args); the kernel checks mode bits
	 * (only the mounting user may write by default). */
	rc = rc ? rc : fuse_opt_add_opt(&opts, "default_permissions");
	rc = rc ? rc : fuse_opt_add_arg(args, "-o");
	rc = rc ? rc : fuse_opt_add_arg(args, opts);
	free(fsname);
	free(opts);
	return rc;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct cli c = { .live_timeout = 60.0, .poll_ms = 20, .tver_cache = 64,
			 .max_inodes = 200000, .readahead_kb = 1024 };
	struct fuse_cmdline_opts o = {0};
	struct gfs_fs_opts fo;
	char store[PATH_MAX], *otext = NULL;
	int pfd[2] = { -1, -1 }, rc = 1;

	/* Every exit goes through out_free: LeakSanitizer checks this path. */
	if (fuse_opt_parse(&args, &c, cli_spec, cli_proc) ||
	    fuse_parse_cmdline(&args, &o))
		goto out_free;
	if (o.show_help || o.show_version) {
		if (o.show_help)
			usage(argv[0]);
		else
			printf("graphfs %s\n", PACKAGE_VERSION);
		if (o.show_version)
			fuse_lowlevel_version();
		rc = 0;
		goto out_free;
	}
	if (!c.store || !o.mountpoint) {
		fprintf(stderr, "usage: %s [options] STORE MOUNTPOINT (see --help)\n",
			argv[0]);
		goto out_free;
	}
	if (c.live_timeout < 0 || c.poll_ms == 0 || c.poll_ms > 60000) {
		fprintf(stderr, "graphfs: bad live_timeout or poll_ms\n");
		goto out_free;
	}
	if (check_store(c.store, store) || check_mountpoint(o.mountpoint, c.nonempty) ||
	    add_fsname(&args, store))
		goto out_free;
	otext = options_text(&c, store, &o, &args);
	fo = (struct gfs_fs_opts){ .live_timeout = c.live_timeout,
				   .poll_ms = c.poll_ms,
				   .tver_cache = c.tver_cache,
				   .max_vnodes = c.max_inodes,
				   .with_opendir = c.opendir,
				   .readahead_kb = c.readahead_kb,
				   .options_text = otext,
				   .mountpoint = o.mountpoint };
	if (!o.foreground) {
		pid_t pid;

		if (pipe2(pfd, O_CLOEXEC)) {
			rc = fail("pipe", "", strerror(errno));
			goto out_free;
		}
		pid = fork(); /* before the store is touched */
		if (pid < 0) {
			rc = fail("fork", "", strerror(errno));
			goto out_free;
		}
		if (pid > 0) {
			close(pfd[1]);
			rc = wait_child(pfd[0]);
			goto out_free;
		}
		close(pfd[0]);
		setsid();
	}
	rc = serve(store, &args, &o, &fo, pfd[1], c.ro);
out_free:
	free(otext);
	free(o.mountpoint);
	free(c.store);
	fuse_opt_free_args(&args);
	return rc;
}
