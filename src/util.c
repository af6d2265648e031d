/* util.c - errors, diagnostics, buffers, ids, time and file helpers. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "util.h"

static const char *const gfs_err_text[] = {
	[-(GFS_ECORRUPT - GFS_EBASE)] = "on-disk data is corrupt",
	[-(GFS_EFORMAT - GFS_EBASE)] = "unsupported on-disk format (older or newer)",
	[-(GFS_ESCHEMA - GFS_EBASE)] = "invalid schema",
	[-(GFS_EDATA - GFS_EBASE)] = "invalid data",
	[-(GFS_ECONFLICT - GFS_EBASE)] = "constraint violated",
	[-(GFS_ECAS - GFS_EBASE)] = "manifest changed concurrently",
	[-(GFS_ERECOVERY - GFS_EBASE)] = "recovery needed",
	[-(GFS_EVIOLATION - GFS_EBASE)] = "invariant violation",
	[-(GFS_ETOOLONG - GFS_EBASE)] = "input line too long",
	[-(GFS_EGONE - GFS_EBASE)] = "already resolved elsewhere",
	[-(GFS_ELEASE - GFS_EBASE)] = "lease lost",
	[-(GFS_EMOVED - GFS_EBASE)] = "the store's manifest was moved by 'graphctl migrate' (nothing written): open the store again",
};

const char *gfs_strerror(int rc)
{
	if (rc == 0)
		return "success";
	if (rc < GFS_EBASE && rc > GFS_ELAST) {
		const char *s = gfs_err_text[-(rc - GFS_EBASE)];
		return s ? s : "unknown graphfs error";
	}
	if (rc < 0 && rc > -4096)
		return strerror(-rc);
	return "unknown error";
}

static void diag_vset(struct gfs_diag *d, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static void diag_vset(struct gfs_diag *d, const char *fmt, va_list ap)
{
	vsnprintf(d->msg, sizeof d->msg, fmt, ap);
}

void gfs_diag_set(struct gfs_diag *d, const char *fmt, ...)
{
	va_list ap;

	if (!d || d->msg[0])
		return;
	va_start(ap, fmt);
	diag_vset(d, fmt, ap);
	va_end(ap);
}

void gfs_diag_reset(struct gfs_diag *d, const char *fmt, ...)
{
	va_list ap;

	if (!d)
		return;
	va_start(ap, fmt);
	diag_vset(d, fmt, ap);
	va_end(ap);
}

void gfs_buf_init(struct gfs_buf *b)
{
	b->p = NULL;
	b->len = b->cap = 0;
}

void gfs_buf_release(struct gfs_buf *b)
{
	free(b->p);
	gfs_buf_init(b);
}

void gfs_buf_reset(struct gfs_buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

int gfs_buf_reserve(struct gfs_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > SIZE_MAX - b->len - 1)
		return -ENOMEM;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int gfs_buf_append(struct gfs_buf *b, const void *data, size_t len)
{
	int rc = gfs_buf_reserve(b, len);

	if (rc)
		return rc;
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

int gfs_buf_appendc(struct gfs_buf *b, char c)
{
	return gfs_buf_append(b, &c, 1);
}

int gfs_buf_appendf(struct gfs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	rc = gfs_buf_reserve(b, (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

/* One escaping rule for every JSON string graphfs writes: UTF-8 passes
 * through; '"', '\\' and control characters are escaped. */
int gfs_buf_append_json_str(struct gfs_buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	int rc = gfs_buf_reserve(b, len + 2);

	if (rc)
		return rc;
	b->p[b->len++] = '"';
	for (size_t i = 0; i < len && !rc; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7] = "\\u00";

		switch (c) {
		case '"': rc = gfs_buf_append(b, "\\\"", 2); break;
		case '\\': rc = gfs_buf_append(b, "\\\\", 2); break;
		case '\n': rc = gfs_buf_append(b, "\\n", 2); break;
		case '\t': rc = gfs_buf_append(b, "\\t", 2); break;
		case '\r': rc = gfs_buf_append(b, "\\r", 2); break;
		case '\b': rc = gfs_buf_append(b, "\\b", 2); break;
		case '\f': rc = gfs_buf_append(b, "\\f", 2); break;
		default:
			if (c < 0x20) {
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				rc = gfs_buf_append(b, esc, 6);
			} else {
				rc = gfs_buf_appendc(b, (char)c);
			}
		}
	}
	return rc ? rc : gfs_buf_appendc(b, '"');
}

void *gfs_array_grow(void *v, size_t *cap, size_t n, size_t size, size_t first)
{
	size_t c = *cap ? *cap : first;
	void *p;

	if (n < *cap)
		return v;
	while (c <= n && c <= SIZE_MAX / 2)
		c *= 2;
	if (c <= n || c > SIZE_MAX / size)
		return NULL;
	p = realloc(v, c * size);
	if (p)
		*cap = c;
	return p;
}

char *gfs_strdup(const char *s)
{
	return s ? gfs_memdup(s, strlen(s)) : NULL;
}

char *gfs_memdup(const void *p, size_t len)
{
	char *q = malloc(len + 1);

	if (!q)
		return NULL;
	if (len)
		memcpy(q, p, len);
	q[len] = '\0';
	return q;
}

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* 128 bits as 26 base32 digits, most significant first (the first digit
 * carries 3 bits). */
static void ulid_text(const uint8_t raw[16], char out[GFS_ULID_LEN + 1])
{
	for (int i = 0; i < GFS_ULID_LEN; i++) {
		int bit = 128 - 5 * (GFS_ULID_LEN - i); /* may be negative */
		unsigned v = 0;
		for (int k = 0; k < 5; k++) {
			int pos = bit + k;
			if (pos < 0)
				continue;
			v = (v << 1) | ((raw[pos / 8] >> (7 - pos % 8)) & 1u);
		}
		out[i] = crockford[v];
	}
	out[GFS_ULID_LEN] = '\0';
}

int gfs_ulid_new(char out[GFS_ULID_LEN + 1])
{
	uint8_t raw[16];
	uint64_t ms = gfs_now_ns() / 1000000u;
	size_t got = 0;

	for (int i = 5; i >= 0; i--, ms >>= 8)
		raw[i] = (uint8_t)(ms & 0xff);
	while (got < 10) {
		ssize_t n = getrandom(raw + 6 + got, 10 - got, 0);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			got += (size_t)n;
	}
	ulid_text(raw, out);
	return 0;
}

/* GRAPHFS_TEST_ID_SEED=N makes generated row ids a function of N and the
 * row's line: two loads of one file then export the same bytes whatever
 * their thread count (tests only; real ids stay random). */
int gfs_ulid_for_line(char out[GFS_ULID_LEN + 1], uint64_t lineno)
{
	const char *env = getenv("GRAPHFS_TEST_ID_SEED");
	uint64_t seed, h[2], ms = 1700000000000u;
	uint8_t raw[16];

	if (!env || !*env)
		return gfs_ulid_new(out);
	seed = strtoull(env, NULL, 10);
	h[0] = XXH3_64bits_withSeed(&lineno, sizeof lineno, seed);
	h[1] = XXH3_64bits_withSeed(&lineno, sizeof lineno, ~seed);
	for (int i = 5; i >= 0; i--, ms >>= 8)
		raw[i] = (uint8_t)(ms & 0xff);
	memcpy(raw + 6, h, 10);
	ulid_text(raw, out);
	return 0;
}

bool gfs_ulid_valid(const char *s)
{
	if (!s || strlen(s) != GFS_ULID_LEN || s[0] > '7')
		return false;
	for (size_t i = 0; i < GFS_ULID_LEN; i++)
		if (!strchr(crockford, s[i]) || !s[i])
			return false;
	return true;
}

uint64_t gfs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void gfs_time_format(uint64_t ns, char out[40])
{
	time_t sec = (time_t)(ns / 1000000000u);
	unsigned frac = (unsigned)(ns % 1000000000u);
	struct tm tm;
	char f[12] = "";
	size_t n;

	gmtime_r(&sec, &tm);
	if (frac) {
		snprintf(f, sizeof f, ".%09u", frac);
		n = strlen(f);
		while (n > 1 && f[n - 1] == '0')
			f[--n] = '\0';
	}
	snprintf(out, 40, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, f);
}

uint64_t gfs_hash64(const void *p, size_t len)
{
	return (uint64_t)XXH3_64bits(p, len);
}

/* ---- the last I/O failure of this thread ------------------------------------ */

static __thread struct {
	int rc;
	char msg[PATH_MAX + 96];
} io_last;

int gfs_io_fail(const char *op, const char *path, int rc)
{
	if (!rc)
		return 0;
	io_last.rc = rc;
	snprintf(io_last.msg, sizeof io_last.msg, "%s '%s': %s", op,
		 path ? path : "?", gfs_strerror(rc));
	return rc;
}

void gfs_io_note(int rc, const char *msg)
{
	io_last.rc = rc;
	snprintf(io_last.msg, sizeof io_last.msg, "%s", msg);
}

/* The file behind fd, from /proc (an O_TMPFILE shows as "dir/#ino
 * (deleted)", which still says where). */
int gfs_io_fail_fd(const char *op, int fd, int rc)
{
	char link[64], path[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof path - 1);
	if (n < 0)
		snprintf(path, sizeof path, "descriptor %d", fd);
	else
		path[n] = '\0';
	return gfs_io_fail(op, path, rc);
}

const char *gfs_io_last(int rc)
{
	return rc && io_last.rc == rc ? io_last.msg : NULL;
}

void gfs_diag_io(struct gfs_diag *d, int rc)
{
	const char *m = gfs_io_last(rc);

	if (m)
		gfs_diag_set(d, "%s", m);
}

/* Thread-local: the library's calls return codes, and many read paths
 * (cursors, manifest reads) have no diagnostic to fill. */
static __thread char corrupt_msg[512];

void gfs_corrupt_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(corrupt_msg, sizeof corrupt_msg, fmt, ap);
	va_end(ap);
}

const char *gfs_corrupt_last(void)
{
	return corrupt_msg;
}

uint64_t gfs_hash64_2(const void *a, size_t alen, const void *b, size_t blen)
{
	XXH3_state_t st;

	/* the state lives on the stack: no allocation, cannot fail */
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, a, alen);
	XXH3_64bits_update(&st, b, blen);
	return (uint64_t)XXH3_64bits_digest(&st);
}

int gfs_write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len) {
		ssize_t n = write(fd, c, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return gfs_io_fail_fd("write", fd, -errno);
		}
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

int gfs_pwrite_all(int fd, const void *p, size_t len, off_t off)
{
	const char *c = p;

	while (len) {
		ssize_t n = pwrite(fd, c, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return gfs_io_fail_fd("write", fd, -errno);
		}
		c += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int gfs_pread_all(int fd, void *p, size_t len, off_t off)
{
	char *c = p;

	while (len) {
		ssize_t n = pread(fd, c, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return gfs_io_fail_fd("read", fd, -errno);
		}
		if (n == 0)
			return gfs_io_fail_fd("read (file too short)", fd,
					      GFS_ECORRUPT);
		c += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

static __thread int write_cb_depth;

void gfs_write_cb_enter(void)
{
	write_cb_depth++;
}

void gfs_write_cb_leave(void)
{
	assert(write_cb_depth > 0);
	write_cb_depth--;
}

bool gfs_in_write_cb(void)
{
	return write_cb_depth > 0;
}

int gfs_fsync_dir(const char *path)
{
	int fd;
	int rc = 0;

	assert(!gfs_in_write_cb()); /* kv.h: no fsync in a write callback */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return gfs_io_fail("open directory", path, -errno);
	if (fsync(fd) < 0)
		rc = gfs_io_fail("fsync directory", path, -errno);
	close(fd);
	return rc;
}

int gfs_fsync_parent(const char *path)
{
	char parent[PATH_MAX];
	size_t n = strlen(path);
	const char *slash;

	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n >= sizeof parent)
		return -ENAMETOOLONG;
	memcpy(parent, path, n);
	parent[n] = '\0';
	slash = strrchr(parent, '/');
	if (!slash)
		return gfs_fsync_dir(".");
	parent[slash == parent ? 1 : (size_t)(slash - parent)] = '\0';
	return gfs_fsync_dir(parent);
}

mode_t gfs_umask(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[128], *end;
	unsigned long m;
	mode_t mask = 077;

	if (!f)
		return mask;
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "Umask:", 6) != 0)
			continue;
		errno = 0;
		m = strtoul(line + 6, &end, 8);
		if (!errno && end != line + 6 && (*end == '\n' || !*end) && m <= 0777)
			mask = (mode_t)m;
		break;
	}
	fclose(f);
	return mask;
}

int gfs_mkdir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return gfs_io_fail("mkdir", path, -errno);
	return 0;
}

int gfs_read_file(const char *path, char **out, size_t *len, size_t max)
{
	struct gfs_buf b;
	char chunk[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	*out = NULL;
	if (fd < 0)
		return gfs_io_fail("open", path, -errno);
	gfs_buf_init(&b);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = gfs_io_fail("read", path, -errno);
			break;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max) {
			rc = -EFBIG;
			break;
		}
		rc = gfs_buf_append(&b, chunk, (size_t)n);
		if (rc)
			break;
	}
	close(fd);
	if (!rc && !b.p)
		rc = gfs_buf_reserve(&b, 0);
	if (rc) {
		gfs_buf_release(&b);
		return rc;
	}
	b.p[b.len] = '\0';
	*out = b.p;
	if (len)
		*len = b.len;
	return 0;
}

int gfs_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return errno ? -errno : -EINVAL;
	*out = v;
	return 0;
}

int gfs_parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return errno ? -errno : -EINVAL;
	*out = v;
	return 0;
}
