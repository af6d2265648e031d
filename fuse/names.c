/* names.c - reversible key encoding for file names (see names.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "util.h"

#define HASH_SUFFIX_LEN 18 /* "%h" + 16 hex digits */

static const char hexd[] = "0123456789ABCDEF";

static bool must_escape(const char *key, size_t len, size_t i)
{
	unsigned char c = (unsigned char)key[i];

	if (c < 0x20 || c == 0x7f || c == '/' || c == '%' || c == '~')
		return true;
	if (c == '.' && i == 0)
		return true;
	/* the dot of a trailing ".json" */
	return c == '.' && len >= 5 && i == len - 5 &&
	       memcmp(key + i, ".json", 5) == 0;
}

/* Writes the plain encoding into out (no limit); returns its length.
 * out must hold 3 * len + 2 bytes. */
static size_t encode_full(const char *key, size_t len, char *out)
{
	size_t o = 0;

	if (len == 0) {
		out[o++] = '%';
		out[o] = '\0';
		return o;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];

		if (must_escape(key, len, i)) {
			out[o++] = '%';
			out[o++] = hexd[c >> 4];
			out[o++] = hexd[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return o;
}

/* Appends "%h<hash>" after a prefix cut at most at max - 18, never inside
 * an escape. */
static size_t encode_hashed(const char *key, size_t len, size_t max,
			    char *out)
{
	size_t cut = max - HASH_SUFFIX_LEN, o = 0, i = 0;
	uint64_t h = gfs_hash64(key, len);

	while (i < len) {
		size_t w = must_escape(key, len, i) ? 3 : 1;

		if (o + w > cut)
			break;
		if (w == 3) {
			out[o++] = '%';
			out[o++] = hexd[(unsigned char)key[i] >> 4];
			out[o++] = hexd[(unsigned char)key[i] & 15];
		} else {
			out[o++] = key[i];
		}
		i++;
	}
	out[o++] = '%';
	out[o++] = 'h';
	for (int s = 60; s >= 0; s -= 4)
		out[o++] = hexd[(h >> s) & 15];
	out[o] = '\0';
	return o;
}

static size_t encoded_len(const char *key, size_t len)
{
	size_t n = len ? 0 : 1;

	for (size_t i = 0; i < len; i++)
		n += must_escape(key, len, i) ? 3 : 1;
	return n;
}

size_t gfs_name_encode(const char *key, size_t len, size_t max, char *out)
{
	if (encoded_len(key, len) <= max)
		return encode_full(key, len, out);
	return encode_hashed(key, len, max, out);
}

bool gfs_name_matches(const char *key, size_t len, size_t max,
		      const char *name, size_t nlen)
{
	char buf[GFS_NAME_BUF + 8];
	size_t n;

	if (max > GFS_NAME_BUF - 1 || nlen > max)
		return false;
	n = gfs_name_encode(key, len, max, buf);
	return n == nlen && memcmp(buf, name, n) == 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool is_hash_suffix(const char *s, size_t n)
{
	if (n != HASH_SUFFIX_LEN || s[0] != '%' || s[1] != 'h')
		return false;
	for (size_t i = 2; i < n; i++)
		if (hexval(s[i]) < 0)
			return false;
	return true;
}

int gfs_name_decode(const char *name, size_t nlen, struct gfs_name_dec *dec)
{
	size_t body = nlen, o = 0;

	memset(dec, 0, sizeof *dec);
	if (nlen >= HASH_SUFFIX_LEN &&
	    is_hash_suffix(name + nlen - HASH_SUFFIX_LEN, HASH_SUFFIX_LEN)) {
		dec->hashed = true;
		body = nlen - HASH_SUFFIX_LEN;
	}
	dec->key = malloc(body + 1);
	if (!dec->key)
		return -ENOMEM;
	if (!dec->hashed && nlen == 1 && name[0] == '%')
		goto done; /* the empty key */
	for (size_t i = 0; i < body; i++) {
		if (name[i] != '%') {
			dec->key[o++] = name[i];
			continue;
		}
		if (i + 2 >= body)
			goto bad;
		int hi = hexval(name[i + 1]), lo = hexval(name[i + 2]);

		if (hi < 0 || lo < 0)
			goto bad;
		dec->key[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
done:
	dec->key[o] = '\0';
	dec->len = o;
	return 0;
bad:
	gfs_name_dec_release(dec);
	return -ENOENT;
}

void gfs_name_dec_release(struct gfs_name_dec *dec)
{
	free(dec->key);
	dec->key = NULL;
	dec->len = 0;
}

bool gfs_name_is_json(const char *name, size_t nlen, size_t *stem_len)
{
	if (nlen < 5 || memcmp(name + nlen - 5, ".json", 5) != 0)
		return false;
	*stem_len = nlen - 5;
	return true;
}

bool gfs_name_split_edge(const char *stem, size_t nlen, size_t *tilde)
{
	const char *t = memchr(stem, '~', nlen);

	if (!t)
		return false;
	*tilde = (size_t)(t - stem);
	return true;
}
