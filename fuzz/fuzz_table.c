/* fuzz_table.c - libFuzzer: the table-version reader (src/table.c,
 * table_store.c, table_verify.c) on arbitrary file bytes.
 *
 * Each input is the bytes of one table-version file.  Its checksums
 * (header, footer, every page the footer's page area holds, every line a
 * leaf of tree 0 in this file points at) are recomputed first, following
 * docs/format.md §3, so the fuzzer reaches the structure behind them; a
 * wrong checksum alone is tests/corrupt/bitflip.sh's business.  The file
 * becomes version V of table node:Person in a scratch store (V = the
 * header's version when 1..8, else 1) whose versions 1..4 are the seeds
 * Person-1..4 (so references into older segments resolve), and is read
 * the ways the mount and the tools read: open and info, every index
 * iterated, each row fetched by id (and by unique key) with its line and
 * export offset, the whole export through a cursor, a read at an offset,
 * a listing from a rank, the diff against its parent, fsck's verify.  Checked:
 * every call returns 0, 1, -ENOENT, GFS_ECORRUPT or GFS_EFORMAT (or
 * -ENOMEM), never anything else; ASan/UBSan catch the rest.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "table.h"
#include "util.h"

#define FAIL(...)                                                             \
	do {                                                                  \
		fprintf(stderr, "fuzz_table: " __VA_ARGS__);                  \
		fputc('\n', stderr);                                          \
		abort();                                                      \
	} while (0)

#define TABLE "node:Person"
#define N_FIX 4
#define MAX_STEPS 4096 /* rows per walk: bounds the time of one input */

static char store[4096], dir[4200];
static uint8_t *fix[N_FIX + 1];
static size_t fix_len[N_FIX + 1];

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Leaf entries of tree 0: each value is a row record whose line may live
 * in this file (seg == v); give it the line's hash. */
static void fix_lines(uint8_t *f, size_t n, size_t pg, size_t plen,
		      uint32_t v)
{
	size_t o = pg + 24, end = pg + plen - 8;

	for (uint32_t e = get32(f + pg + 4); e && o + 8 <= end; e--) {
		size_t kl = get32(f + o), vl;

		if (kl > end - o - 8)
			return;
		o += 4 + kl;
		vl = get32(f + o);
		o += 4;
		if (vl > end - o)
			return;
		if (vl >= 60 && get32(f + o + 24) == v) {
			uint64_t at = get64(f + o + 28);
			uint32_t ll = get32(f + o + 36);

			if (at <= n && ll <= n - at)
				put64(f + o + 16, gfs_hash64(f + at, ll));
		}
		o += vl;
	}
}

static void fix_checksums(uint8_t *f, size_t n, uint32_t v)
{
	size_t flen, fo, off, end;

	if (n < 128)
		return;
	put64(f + 120, gfs_hash64(f, 120));
	if (n < 128 + 24)
		return;
	flen = get32(f + n - 24);
	if (flen < 80 || flen > n - 128)
		return;
	fo = n - flen;
	off = get64(f + fo + 32);   /* lines_end */
	end = get64(f + fo + 40);   /* pages_end */
	if (end > fo)
		end = fo;
	while (off >= 128 && off < end && end - off >= 32) {
		size_t plen = get32(f + off + 8);

		if (plen < 32 || plen > end - off)
			break;
		if (f[off] == 1 && f[off + 1] == 0)
			fix_lines(f, n, off, plen, v);
		put64(f + off + plen - 8, gfs_hash64(f + off, plen - 8));
		off += plen;
	}
	put64(f + n - 16, gfs_hash64(f + fo, flen - 16));
}

static void write_file(uint32_t v, const uint8_t *p, size_t n)
{
	char path[4300], tmp[4300];
	int fd;

	snprintf(path, sizeof path, "%s/%u", dir, v);
	snprintf(tmp, sizeof tmp, "%s/.tmp-fuzz", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n) || close(fd) ||
	    rename(tmp, path))
		FAIL("cannot write %s", path);
}

static void remove_file(uint32_t v)
{
	char path[4300];

	snprintf(path, sizeof path, "%s/%u", dir, v);
	unlink(path);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 ||
	    !(p = malloc((size_t)n + 1))) {
		fclose(f);
		return NULL;
	}
	rewind(f);
	if (fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return p;
}

static void cleanup(void)
{
	for (uint32_t v = 1; v <= 8; v++)
		remove_file(v);
	rmdir(dir);
	snprintf(dir, sizeof dir, "%s/tables", store);
	rmdir(dir);
	rmdir(store);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *t = getenv("TMPDIR");
	char path[4300];

	snprintf(store, sizeof store, "%s/fuzz_table.XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(store))
		FAIL("mkdtemp %s", store);
	snprintf(dir, sizeof dir, "%s/tables", store);
	mkdir(dir, 0700);
	snprintf(dir, sizeof dir, "%s/tables/" TABLE, store);
	if (mkdir(dir, 0700))
		FAIL("mkdir %s", dir);
	atexit(cleanup);
	for (uint32_t v = 1; v <= N_FIX; v++) {
		snprintf(path, sizeof path, "%s/fuzz/corpus/table/Person-%u",
			 GFS_SRCDIR, v);
		fix[v] = slurp(path, &fix_len[v]);
		if (fix[v])
			write_file(v, fix[v], fix_len[v]);
	}
	return 0;
}

static void ok_rc(const char *what, int rc)
{
	if (rc < 0 && rc != -ENOENT && rc != GFS_ECORRUPT &&
	    rc != GFS_EFORMAT && rc != -ENOMEM)
		FAIL("%s: rc %d (%s)", what, rc, gfs_strerror(rc));
}

static int on_diff(void *arg, const struct gfs_row *o, const struct gfs_row *n)
{
	unsigned *steps = arg;

	return ++*steps > MAX_STEPS ? 1 : 0;
}

/* false when the table has no index ix (a unique index past n_unique) */
static bool walk_index(struct gfs_tver *tv, enum gfs_index ix)
{
	struct gfs_titer *it = NULL;
	struct gfs_row row, got;
	char buf[256];
	const char *key;
	size_t n, klen;
	uint64_t off;
	int rc = gfs_titer_new(tv, ix, NULL, 0, &it), steps = 0;

	if (rc == -EINVAL && ix >= GFS_IX_UNIQUE0)
		return false;
	ok_rc("titer_new", rc);
	memset(&got, 0, sizeof got);
	while (!rc && steps++ < MAX_STEPS &&
	       (rc = gfs_titer_next(it, &row)) == 1) {
		ok_rc("tver_read_row", gfs_tver_read_row(tv, &row, 0, buf,
							  sizeof buf, &n));
		ok_rc("tver_get", gfs_tver_get(tv, row.id, row.id_len, &got));
		if (ix == GFS_IX_PRIMARY)
			ok_rc("tver_export_offset",
			      gfs_tver_export_offset(tv, row.id, row.id_len,
						     &off));
		else if (ix >= GFS_IX_UNIQUE0) {
			gfs_titer_key(it, &key, &klen);
			ok_rc("tver_get_unique",
			      gfs_tver_get_unique(tv, ix - GFS_IX_UNIQUE0, key,
						  klen, &got));
		}
	}
	ok_rc("titer_next", rc);
	gfs_row_release(&got);
	if (it)
		gfs_titer_free(it);
	return true;
}

static void rank_walk(struct gfs_tver *tv, uint64_t rank)
{
	struct gfs_titer *it = NULL;
	struct gfs_row row;
	int rc = gfs_titer_new_at(tv, GFS_IX_PRIMARY, rank, &it), steps = 0;

	ok_rc("titer_new_at", rc);
	while (!rc && steps++ < 16 && (rc = gfs_titer_next(it, &row)) == 1)
		;
	ok_rc("titer_next after new_at", rc);
	if (it)
		gfs_titer_free(it);
}

static void read_all(struct gfs_tstore *ts, uint32_t v)
{
	struct gfs_tver *tv = NULL, *parent = NULL;
	struct gfs_tver_info info;
	struct gfs_tcursor *c = NULL;
	struct gfs_diag d = { { 0 } };
	char buf[4096];
	uint64_t off = 0;
	size_t n = 0;
	unsigned steps = 0;
	int rc = gfs_tver_open(ts, TABLE, v, &tv, &d);

	ok_rc("tver_open", rc);
	if (rc)
		return;
	gfs_tver_info(tv, &info);
	for (int ix = 0; ix < 3 + 64 && walk_index(tv, (enum gfs_index)ix);
	     ix++)
		;
	rc = gfs_tcursor_new(tv, &c);
	ok_rc("tcursor_new", rc);
	while (!rc && steps++ < MAX_STEPS &&
	       !(rc = gfs_tcursor_read(c, off, buf, sizeof buf, &n)) && n)
		off += n;
	ok_rc("tcursor_read", rc);
	if (c)
		gfs_tcursor_free(c);
	/* the mount's random access: an export offset, a listing rank */
	ok_rc("tver_read_export", gfs_tver_read_export(tv, info.export_bytes / 3,
							buf, 100, &n));
	rank_walk(tv, info.rows / 2);
	if (info.parent && info.parent < v &&
	    !gfs_tver_open(ts, TABLE, info.parent, &parent, &d)) {
		ok_rc("tver_diff", gfs_tver_diff(parent, tv, on_diff, &steps,
						  NULL));
		gfs_tver_close(parent);
	}
	gfs_tver_close(tv);
	ok_rc("tver_verify", gfs_tver_verify(ts, TABLE, v, &d));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gfs_tstore *ts = NULL;
	uint32_t v = size >= 20 ? get32(data + 16) : 1;
	uint8_t *f = malloc(size + 1);

	if (!f)
		return 0;
	if (v < 1 || v > 8)
		v = 1;
	memcpy(f, data, size);
	fix_checksums(f, size, v);
	write_file(v, f, size);
	free(f);
	if (gfs_tstore_open(store, &ts))
		FAIL("tstore_open %s", store);
	gfs_tstore_set_page_cache(ts, 1 << 16);
	read_all(ts, v);
	gfs_tstore_close(ts);
	if (v <= N_FIX && fix[v])
		write_file(v, fix[v], fix_len[v]);
	else
		remove_file(v);
	return 0;
}
