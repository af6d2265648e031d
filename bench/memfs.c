/* memfs.c - the ceiling of FUSE on this machine, for bench/mount.sh.
 *
 *   memfs [-o size=BYTES] [FUSE options] MOUNTPOINT
 *
 * A low-level FUSE server exposing one read-only file, MOUNTPOINT/data, of
 * BYTES bytes (default 1 GiB), whose READ replies point into a buffer in
 * memory: no lookup, no decoding, no copy but the kernel's.  Reading it
 * with `cat` measures what any FUSE daemon could do here at best, with the
 * same mount and connection settings graphfs uses:
 *   - the superblock mounted read-only, keep_cache on open,
 *     FUSE_CAP_AUTO_INVAL_DATA and the writeback cache dropped (fuse/fs.c);
 *   - libfuse's options parsed the same way (fuse_parse_cmdline, then
 *     fuse_session_new), so `-o max_read=N`, `-s`, `-o max_threads=N`,
 *     `-o clone_fd` mean what they mean to graphfs; `-o max_write=N`,
 *     `-o max_readahead=N` and the other fuse_conn_info options are applied
 *     in init, which graphfs leaves at libfuse's defaults today.
 * Daemonizes once mounted, so `memfs M && cat M/data` works.  Built by
 * bench/mount.sh with cc at bench time; not installed.
 *
 * The file's bytes are JSONL-looking text repeating with a period of
 * PERIOD; the buffer holds PERIOD + SPAN bytes so any read of up to SPAN
 * bytes (libfuse's buffer bounds every read to 1 MiB) is one contiguous
 * slice, and the daemon's memory does not grow with the file.
 */
#define FUSE_USE_VERSION 314

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PERIOD = 4 << 20, SPAN = 4 << 20 };
enum { INO_ROOT = FUSE_ROOT_ID, INO_DATA = 2 };

static const char data_name[] = "data";

struct memfs {
	unsigned long long size;
	char *buf;      /* PERIOD + SPAN bytes */
	struct fuse_conn_info_opts *conn_opts;
};

static const struct fuse_opt memfs_spec[] = {
	{ "size=%llu", offsetof(struct memfs, size), 0 },
	FUSE_OPT_END
};

static struct memfs *mfs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void fill_buffer(char *b, size_t n)
{
	size_t off = 0;
	unsigned long i = 0;

	while (off < n) {
		char line[160];
		int len = snprintf(line, sizeof line,
				   "{\"type\":\"Doc\",\"data\":{\"key\":\"d%09lu\",\"body\":\"%0*lu\"}}\n",
				   i, 90, i * 2654435761UL % 1000000007UL);
		size_t k = (size_t)len < n - off ? (size_t)len : n - off;

		memcpy(b + off, line, k);
		off += k;
		i++;
	}
}

static void stat_of(const struct memfs *m, fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof *st);
	st->st_ino = ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_nlink = 1;
	if (ino == INO_ROOT) {
		st->st_mode = S_IFDIR | 0555;
		return;
	}
	st->st_mode = S_IFREG | 0444;
	st->st_size = (off_t)m->size;
	st->st_blocks = (blkcnt_t)((m->size + 511) / 512);
}

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct memfs *m = userdata;

	fuse_apply_conn_info_opts(m->conn_opts, conn);
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e = { .ino = INO_DATA, .attr_timeout = 1e9,
				      .entry_timeout = 1e9 };

	if (parent != INO_ROOT || strcmp(name, data_name)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	stat_of(mfs(req), INO_DATA, &e.attr);
	fuse_reply_entry(req, &e);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != INO_ROOT && ino != INO_DATA) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	stat_of(mfs(req), ino, &st);
	fuse_reply_attr(req, &st, 1e9);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	const char *names[] = { ".", "..", data_name };
	fuse_ino_t inos[] = { INO_ROOT, INO_ROOT, INO_DATA };
	char buf[512];
	size_t used = 0;

	(void)fi;
	if (ino != INO_ROOT) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	for (off_t i = off; i < 3; i++) {
		struct stat st = { .st_ino = inos[i],
				   .st_mode = i < 2 ? S_IFDIR : S_IFREG };
		size_t n = fuse_add_direntry(req, buf + used, sizeof buf - used,
					     names[i], &st, i + 1);

		if (n > sizeof buf - used || used + n > size)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != INO_DATA) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->keep_cache = 1; /* as graphfs: the bytes of an inode never change */
	fuse_reply_open(req, fi);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	const struct memfs *m = mfs(req);
	unsigned long long left;

	(void)ino;
	(void)fi;
	if (off < 0 || (unsigned long long)off >= m->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	left = m->size - (unsigned long long)off;
	if (size > left)
		size = (size_t)left;
	if (size > SPAN)
		size = SPAN;
	fuse_reply_buf(req, m->buf + (unsigned long long)off % PERIOD, size);
}

static const struct fuse_lowlevel_ops memfs_ops = {
	.init = ll_init,
	.lookup = ll_lookup,
	.getattr = ll_getattr,
	.readdir = ll_readdir,
	.open = ll_open,
	.read = ll_read,
};

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
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct memfs m = { .size = 1ULL << 30 };
	struct fuse_cmdline_opts o = {0};
	struct fuse_session *se = NULL;
	int rc = 1;

	if (fuse_opt_parse(&args, &m, memfs_spec, NULL) ||
	    fuse_parse_cmdline(&args, &o))
		goto out_args;
	if (!o.mountpoint) {
		fprintf(stderr, "usage: %s [-o size=BYTES] [FUSE options] MOUNTPOINT\n", argv[0]);
		goto out_args;
	}
	m.conn_opts = fuse_parse_conn_info_opts(&args);
	m.buf = malloc(PERIOD + SPAN);
	if (!m.conn_opts || !m.buf || fuse_opt_add_arg(&args, "-oro,fsname=memfs,subtype=memfs"))
		goto out_free;
	fill_buffer(m.buf, PERIOD);
	memcpy(m.buf + PERIOD, m.buf, SPAN);
	se = fuse_session_new(&args, &memfs_ops, sizeof memfs_ops, &m);
	if (!se)
		goto out_free;
	if (fuse_set_signal_handlers(se))
		goto out_session;
	if (fuse_session_mount(se, o.mountpoint))
		goto out_handlers;
	if (fuse_daemonize(o.foreground) == 0)
		rc = run_loop(se, &o) < 0;
	fuse_session_unmount(se);
out_handlers:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_free:
	free(m.conn_opts);
	free(m.buf);
	free(o.mountpoint);
out_args:
	fuse_opt_free_args(&args);
	return rc;
}
