/* compress_study.c - what compressing a store's lines or pages would save and
 * cost (issue 9, requirement 7; docs/decisions.md "Compression of stored
 * pages", docs/benchmarks.md "Compression study").
 *
 *   compress_study [-q] [-r RUNS] [-d DICT_BYTES] TABLE_VERSION_FILE...
 *
 * Reads each table-version file (docs/format.md §3: header, lines, pages,
 * footer), cuts it into the units a compressed format could store, and
 * compresses every unit alone, as such a format would have to so that a read
 * still touches one unit:
 *   page        each B+tree page (leaf or internal, ~4 KiB): a page-cache
 *               miss of the mount would decompress exactly one;
 *   lines-4k    the lines region cut at line ends into blocks of >= 4 KiB
 *               (a row read decompresses one block);
 *   lines-64k   the same with >= 64 KiB blocks (better ratio, more per read);
 *   file        the whole file as one stream: the bound, not a format.
 * Codecs: lz4 (LZ4_compress_default), zstd levels 1 and 3, and zstd 3 with
 * a dictionary trained (ZDICT_trainFromBuffer) on a sample of the file's
 * units of that kind; the dictionary's bytes count as compressed bytes.
 * Every unit is decompressed and compared with the original.  Reports, per
 * unit kind and codec: units, original MB, compressed / original, compress
 * MB/s and decompress MB/s (of original bytes; decompression best of RUNS),
 * and the decompression time per unit in microseconds; and, as the yardstick,
 * what reading a unit costs today: pread from the (warm) page cache and its
 * xxh3, as the daemon does when a page enters its cache (row "pread+xxh3").
 * Then the whole file's size under each codec with pages compressed and lines
 * raw or in blocks.  -q prints only each file's layout and the totals over
 * all files.
 *
 * Not part of make check: bench/compress.sh (make bench-compress) builds and
 * runs it, or by hand (Debian's libzstd-dev, liblz4-dev, libxxhash-dev):
 *   cc -O2 -o compress_study bench/compress_study.c -lzstd -llz4 -lxxhash
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zdict.h>
#include <zstd.h>

enum unit_kind { U_PAGE, U_LINES4K, U_LINES64K, U_FILE, N_UNIT };
enum codec { C_LZ4, C_ZSTD1, C_ZSTD3, C_ZSTD3D, N_CODEC };

static const char *const unit_name[N_UNIT] = { "page", "lines-4k", "lines-64k", "file" };
static const char *const codec_name[N_CODEC] = { "lz4", "zstd-1", "zstd-3", "zstd-3+dict" };

struct unit {
	size_t off, len;
};

struct units {
	struct unit *v;
	size_t n, cap, bytes;
};

struct result {          /* one unit kind x codec, summed over files */
	uint64_t units, orig, comp;
	double ctime, dtime; /* seconds */
	int used;
};

static struct result results[N_UNIT][N_CODEC];
static struct result base[N_UNIT]; /* today: pread + xxh3 of each unit */
/* The store's size under each codec, summed over files: header and footer
 * raw, pages compressed, lines raw / in 4k blocks / in 64k blocks; and the
 * original sizes. */
static uint64_t tot_len, tot_lines, tot_fixed, tot_pages[N_CODEC], tot_l4k[N_CODEC],
	tot_l64k[N_CODEC], tot_stream[N_CODEC];
static uint64_t tree_bytes[256], file_tree_bytes[256];
static int runs = 3, quiet;
static size_t dict_cap = 64 << 10;

static void die(const char *what, const char *subject)
{
	fprintf(stderr, "compress_study: %s: %s\n", subject, what);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t le32(const unsigned char *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void push(struct units *u, size_t off, size_t len)
{
	if (u->n == u->cap) {
		u->cap = u->cap ? 2 * u->cap : 1024;
		u->v = realloc(u->v, u->cap * sizeof(*u->v));
		if (!u->v)
			die("out of memory", "units");
	}
	u->v[u->n++] = (struct unit){ off, len };
	u->bytes += len;
}

static unsigned char *read_file(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) < 0)
		die(strerror(errno), path);
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf)
		die("out of memory", path);
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, st.st_size - got);
		if (r <= 0)
			die(r < 0 ? strerror(errno) : "short read", path);
		got += r;
	}
	close(fd);
	*len = got;
	return buf;
}

/* Splits a table-version file into its units; *lines_end / *pages_end from
 * the footer.  Checks only what the walk needs (magic, bounds). */
static void split(const char *path, const unsigned char *f, size_t len,
		  struct units u[N_UNIT], size_t *lines_end, size_t *pages_end)
{
	size_t flen, foot, off, start;

	if (len < 128 + 24 || memcmp(f, "GFSTBL01", 8) || memcmp(f + len - 8, "GFSTEND1", 8))
		die("not a table-version file (magic)", path);
	flen = le32(f + len - 24);
	if (flen < 80 || flen > len - 128)
		die("bad footer length", path);
	foot = len - flen;
	*lines_end = le64(f + foot + 32);
	*pages_end = le64(f + foot + 40);
	if (*lines_end < 128 || *lines_end > *pages_end || *pages_end != foot)
		die("bad footer bounds", path);
	for (off = *lines_end; off < *pages_end;) {
		uint32_t plen = le32(f + off + 8);

		if (plen < 32 || plen > *pages_end - off || (f[off] != 1 && f[off] != 2))
			die("bad page header", path);
		push(&u[U_PAGE], off, plen);
		tree_bytes[f[off + 1]] += plen;
		file_tree_bytes[f[off + 1]] += plen;
		off += plen;
	}
	for (int k = U_LINES4K; k <= U_LINES64K; k++) {
		size_t want = k == U_LINES4K ? 4096 : 65536;

		for (start = off = 128; off < *lines_end;) {
			const unsigned char *nl = memchr(f + off, '\n', *lines_end - off);

			off = nl ? (size_t)(nl - f) + 1 : *lines_end;
			if (off - start >= want || off == *lines_end) {
				push(&u[k], start, off - start);
				start = off;
			}
		}
	}
	push(&u[U_FILE], 0, len);
}

/* A dictionary trained on every k-th unit, up to ~8 MiB of samples. */
static ZSTD_CDict *train(const unsigned char *f, const struct units *u, ZSTD_DDict **dd,
			 size_t *dict_len)
{
	size_t step = u->bytes / (8 << 20) + 1, n = 0, total = 0, dlen;
	size_t *sizes = malloc((u->n / step + 1) * sizeof(*sizes));
	unsigned char *samples = malloc(u->bytes / step + (1 << 20));
	unsigned char *dict = malloc(dict_cap);
	ZSTD_CDict *cd;

	if (!sizes || !samples || !dict)
		die("out of memory", "dictionary");
	for (size_t i = 0; i < u->n && total < (8 << 20); i += step) {
		memcpy(samples + total, f + u->v[i].off, u->v[i].len);
		total += sizes[n++] = u->v[i].len;
	}
	dlen = ZDICT_trainFromBuffer(dict, dict_cap, samples, sizes, (unsigned)n);
	if (ZDICT_isError(dlen)) {
		fprintf(stderr, "compress_study: dictionary of %zu samples: %s (zstd-3 without one"
			" counted in the totals)\n", n, ZDICT_getErrorName(dlen));
		free(sizes), free(samples), free(dict);
		return NULL;
	}
	cd = ZSTD_createCDict(dict, dlen, 3);
	*dd = ZSTD_createDDict(dict, dlen);
	*dict_len = dlen;
	free(sizes), free(samples), free(dict);
	return cd;
}

struct codec_ctx {
	ZSTD_CCtx *cc;
	ZSTD_DCtx *dc;
	ZSTD_CDict *cd;
	ZSTD_DDict *dd;
};

static size_t compress_one(enum codec c, struct codec_ctx *x, unsigned char *dst, size_t cap,
			   const unsigned char *src, size_t len)
{
	size_t r;

	switch (c) {
	case C_LZ4:
		r = LZ4_compress_default((const char *)src, (char *)dst, (int)len, (int)cap);
		if (r == 0)
			die("LZ4_compress_default failed", "compress");
		return r;
	case C_ZSTD1:
	case C_ZSTD3:
		r = ZSTD_compressCCtx(x->cc, dst, cap, src, len, c == C_ZSTD1 ? 1 : 3);
		break;
	default:
		r = ZSTD_compress_usingCDict(x->cc, dst, cap, src, len, x->cd);
		break;
	}
	if (ZSTD_isError(r))
		die(ZSTD_getErrorName(r), "compress");
	return r;
}

static void decompress_one(enum codec c, struct codec_ctx *x, unsigned char *dst, size_t len,
			   const unsigned char *src, size_t clen)
{
	size_t r;

	if (c == C_LZ4)
		r = LZ4_decompress_safe((const char *)src, (char *)dst, (int)clen, (int)len) == (int)len
			    ? len : 0;
	else if (c == C_ZSTD3D)
		r = ZSTD_decompress_usingDDict(x->dc, dst, len, src, clen, x->dd);
	else
		r = ZSTD_decompressDCtx(x->dc, dst, len, src, clen);
	if (ZSTD_isError(r) || r != len)
		die("decompression failed or short", codec_name[c]);
}

/* Compresses every unit of u with c, then decompresses them RUNS times (best
 * time) and checks the bytes.  Returns the compressed bytes. */
static uint64_t study(const unsigned char *f, const struct units *u, enum unit_kind k,
		      enum codec c, struct codec_ctx *x, uint64_t extra)
{
	struct result *r = &results[k][c];
	size_t maxlen = 0, total_cap = 0, *clen = malloc(u->n * sizeof(*clen));
	unsigned char *out, *tmp, *p;
	double t, best = 1e30;

	for (size_t i = 0; i < u->n; i++) {
		size_t b = c == C_LZ4 ? (size_t)LZ4_compressBound((int)u->v[i].len)
				      : ZSTD_compressBound(u->v[i].len);
		total_cap += b;
		if (u->v[i].len > maxlen)
			maxlen = u->v[i].len;
	}
	out = malloc(total_cap);
	tmp = malloc(maxlen);
	if (!clen || !out || !tmp)
		die("out of memory", "study");
	t = now();
	p = out;
	for (size_t i = 0; i < u->n; i++) {
		clen[i] = compress_one(c, x, p, out + total_cap - p, f + u->v[i].off, u->v[i].len);
		p += clen[i];
	}
	r->ctime += now() - t;
	for (int run = 0; run < runs; run++) {
		t = now();
		p = out;
		for (size_t i = 0; i < u->n; i++) {
			decompress_one(c, x, tmp, u->v[i].len, p, clen[i]);
			p += clen[i];
		}
		t = now() - t;
		if (t < best)
			best = t;
	}
	r->dtime += best;
	p = out;
	for (size_t i = 0; i < u->n; i++) { /* and the bytes are the same */
		decompress_one(c, x, tmp, u->v[i].len, p, clen[i]);
		if (memcmp(tmp, f + u->v[i].off, u->v[i].len))
			die("round trip differs", codec_name[c]);
		p += clen[i];
	}
	r->units += u->n;
	r->orig += u->bytes;
	r->comp += (uint64_t)(p - out) + extra;
	r->used = 1;
	free(out), free(tmp), free(clen);
	return (uint64_t)(p - out) + extra;
}

/* Today's cost of reading every unit: pread into a buffer and xxh3 over it,
 * best of RUNS (the file is in the page cache: read_file just read it). */
static void baseline(const char *path, const struct units *u, enum unit_kind k)
{
	size_t maxlen = 0;
	unsigned char *buf;
	double t, best = 1e30;
	uint64_t sink = 0;
	int fd = open(path, O_RDONLY);

	for (size_t i = 0; i < u->n; i++)
		if (u->v[i].len > maxlen)
			maxlen = u->v[i].len;
	buf = malloc(maxlen ? maxlen : 1);
	if (fd < 0 || !buf)
		die(fd < 0 ? strerror(errno) : "out of memory", path);
	for (int run = 0; run < runs; run++) {
		t = now();
		for (size_t i = 0; i < u->n; i++) {
			if (pread(fd, buf, u->v[i].len, (off_t)u->v[i].off) != (ssize_t)u->v[i].len)
				die("short pread", path);
			sink += XXH3_64bits(buf, u->v[i].len);
		}
		t = now() - t;
		if (t < best)
			best = t;
	}
	close(fd);
	free(buf);
	base[k].units += u->n, base[k].orig += u->bytes, base[k].comp += u->bytes;
	base[k].dtime += best, base[k].used = 1;
	if (sink == 42) /* keep the hashes */
		fputs("", stdout);
}

static void print_row(const char *file, enum unit_kind k, enum codec c, const struct result *r)
{
	char comp[32] = "-";

	if ((int)c >= 0)
		snprintf(comp, sizeof(comp), "%.0f", r->orig / 1e6 / (r->ctime > 0 ? r->ctime : 1e-9));
	printf("%-14s %-10s %-12s %9llu %9.1f %7.3f %9s %9.0f %8.2f\n", file, unit_name[k],
	       (int)c < 0 ? "pread+xxh3" : codec_name[c], (unsigned long long)r->units, r->orig / 1e6,
	       r->orig ? (double)r->comp / r->orig : 0, comp,
	       r->orig / 1e6 / (r->dtime > 0 ? r->dtime : 1e-9),
	       r->units ? r->dtime * 1e6 / r->units : 0);
}

static void header(void)
{
	printf("%-14s %-10s %-12s %9s %9s %7s %9s %9s %8s\n", "file", "unit", "codec", "units",
	       "orig MB", "ratio", "comp MB/s", "dec MB/s", "us/unit");
}

static const char *short_name(const char *path)
{
	static char buf[64];
	const char *b = strrchr(path, '/'), *t;

	if (!b)
		return path;
	for (t = b - 1; t > path && *t != '/'; t--)
		;
	snprintf(buf, sizeof(buf), "%.*s", (int)(strlen(t + (*t == '/'))), t + (*t == '/'));
	return buf;
}

static void one_file(const char *path)
{
	size_t len, lines_end, pages_end;
	unsigned char *f = read_file(path, &len);
	struct units u[N_UNIT] = { 0 };
	uint64_t size[N_UNIT][N_CODEC] = { { 0 } };
	struct result saved[N_UNIT][N_CODEC];
	char name[64], num[32];
	struct codec_ctx x = { ZSTD_createCCtx(), ZSTD_createDCtx(), NULL, NULL };

	memset(file_tree_bytes, 0, sizeof(file_tree_bytes));
	split(path, f, len, u, &lines_end, &pages_end);
	snprintf(name, sizeof(name), "%s", short_name(path));
	printf("%s%s: %zu bytes: lines %.1f%%, pages %.1f%% (%zu pages, mean %.0f B; tree 0 %.1f%%,"
	       " 1-2 %.1f%%), header and footer %zu\n", quiet ? "" : "\n", path, len,
	       100.0 * (lines_end - 128) / len, 100.0 * (pages_end - lines_end) / len, u[U_PAGE].n,
	       u[U_PAGE].n ? (double)u[U_PAGE].bytes / u[U_PAGE].n : 0,
	       100.0 * file_tree_bytes[0] / len,
	       100.0 * (file_tree_bytes[1] + file_tree_bytes[2]) / len, 128 + len - pages_end);
	if (!quiet)
		header();
	memcpy(saved, results, sizeof(saved));
	memset(results, 0, sizeof(results));
	for (int k = 0; k < N_UNIT; k++) {
		if (!u[k].n)
			continue;
		struct result before = base[k];

		baseline(path, &u[k], k);
		if (!quiet) {
			struct result mine = base[k];

			mine.units -= before.units, mine.orig -= before.orig, mine.comp -= before.comp;
			mine.dtime -= before.dtime;
			print_row(name, k, (enum codec)-1, &mine);
		}
		for (int c = 0; c < N_CODEC; c++) {
			size_t dlen = 0;

			if (c == C_ZSTD3D) {
				if (k == U_FILE || !(x.cd = train(f, &u[k], &x.dd, &dlen)))
					continue;
			}
			size[k][c] = study(f, &u[k], k, c, &x, dlen);
			if (!quiet)
				print_row(name, k, c, &results[k][c]);
			if (c == C_ZSTD3D) {
				ZSTD_freeCDict(x.cd), ZSTD_freeDDict(x.dd);
				x.cd = NULL, x.dd = NULL;
			}
		}
	}
	/* The whole file under each codec: pages compressed one by one, lines
	 * raw or in blocks, header and footer raw. */
	for (int c = 0; c < N_CODEC; c++) {
		uint64_t fixed = 128 + (len - pages_end), pages = u[U_PAGE].n ? size[U_PAGE][c] : 0;

		/* no dictionary (too few samples): count zstd-3 without one */
		for (int k = 0; k < U_FILE; k++)
			if (c == C_ZSTD3D && u[k].n && !size[k][c])
				size[k][c] = k == U_PAGE ? (pages = size[k][C_ZSTD3]) : size[k][C_ZSTD3];
		tot_pages[c] += pages, tot_l4k[c] += size[U_LINES4K][c];
		tot_l64k[c] += size[U_LINES64K][c], tot_stream[c] += size[U_FILE][c];
		if (c == 0)
			tot_len += len, tot_lines += lines_end - 128, tot_fixed += fixed;
		if (quiet)
			continue;
		printf("%-14s whole file  %-12s pages only %.3f, pages + lines-4k %.3f,"
		       " pages + lines-64k %.3f, one stream %s\n", name, codec_name[c],
		       (double)(fixed + pages + lines_end - 128) / len,
		       (double)(fixed + pages + size[U_LINES4K][c]) / len,
		       (double)(fixed + pages + size[U_LINES64K][c]) / len,
		       c == C_ZSTD3D ? "-" : (snprintf(num, sizeof(num), "%.3f",
						       (double)size[U_FILE][c] / len), num));
	}
	for (int k = 0; k < N_UNIT; k++) { /* add this file to the totals */
		for (int c = 0; c < N_CODEC; c++) {
			struct result *s = &saved[k][c], *r = &results[k][c];

			s->units += r->units, s->orig += r->orig, s->comp += r->comp;
			s->ctime += r->ctime, s->dtime += r->dtime, s->used |= r->used;
		}
		free(u[k].v);
	}
	memcpy(results, saved, sizeof(saved));
	ZSTD_freeCCtx(x.cc), ZSTD_freeDCtx(x.dc);
	free(f);
}

int main(int argc, char **argv)
{
	char num[32];
	int opt;

	while ((opt = getopt(argc, argv, "qr:d:")) != -1) {
		char *end;
		long v;

		if (opt == 'q') {
			quiet = 1;
			continue;
		}
		if (opt != 'r' && opt != 'd')
			return 2;
		v = strtol(optarg, &end, 10);

		if (*end || v <= 0)
			die("expects a positive number", opt == 'r' ? "-r" : "-d");
		if (opt == 'r')
			runs = (int)v;
		else
			dict_cap = (size_t)v;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: compress_study [-q] [-r RUNS] [-d DICT_BYTES] TABLE_VERSION_FILE...\n");
		return 2;
	}
	printf("compress_study: lz4 %s, zstd %s, decompression best of %d, dictionary <= %zu bytes\n",
	       LZ4_versionString(), ZSTD_versionString(), runs, dict_cap);
	for (int i = optind; i < argc; i++)
		one_file(argv[i]);
	if (argc - optind > 1 || quiet) {
		printf("\nall files\n");
		header();
		for (int k = 0; k < N_UNIT; k++) {
			if (base[k].used)
				print_row("all", k, (enum codec)-1, &base[k]);
			for (int c = 0; c < N_CODEC; c++)
				if (results[k][c].used)
					print_row("all", k, c, &results[k][c]);
		}
	}
	printf("\nall files: %.1f MB: lines %.1f%%, pages %.1f%% (tree 0 %.1f%%, trees 1-2 %.1f%%,"
	       " unique trees %.1f%%)\n", tot_len / 1e6, 100.0 * tot_lines / tot_len,
	       100.0 * (tot_len - tot_lines - tot_fixed) / tot_len, 100.0 * tree_bytes[0] / tot_len,
	       100.0 * (tree_bytes[1] + tree_bytes[2]) / tot_len,
	       100.0 * (tot_len - tot_lines - tot_fixed - tree_bytes[0] - tree_bytes[1] - tree_bytes[2]) / tot_len);
	printf("compressed / original, whole files: %-12s %10s %16s %17s %10s\n", "codec", "pages only",
	       "pages + lines-4k", "pages + lines-64k", "one stream");
	for (int c = 0; c < N_CODEC; c++)
		printf("                                    %-12s %10.3f %16.3f %17.3f %10s\n",
		       codec_name[c], (double)(tot_fixed + tot_pages[c] + tot_lines) / tot_len,
		       (double)(tot_fixed + tot_pages[c] + tot_l4k[c]) / tot_len,
		       (double)(tot_fixed + tot_pages[c] + tot_l64k[c]) / tot_len,
		       c == C_ZSTD3D ? "-" : (snprintf(num, sizeof(num), "%.3f",
						       (double)tot_stream[c] / tot_len), num));
	return 0;
}
