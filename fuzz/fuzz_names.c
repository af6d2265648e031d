/* fuzz_names.c - libFuzzer: the mount's key <-> file-name encoding
 * (fuse/names.c) as a round-trip property.
 *
 * Input: one mode byte, then bytes.  Even mode: the bytes are a key (or,
 * for an edge name, "<other> NUL-separated <id>"), encoded as the mount
 * does (nodes: GFS_NAME_KEY_MAX; edge parts: GFS_NAME_PART_MAX) and
 * checked:
 *   - a name is non-empty, at most its limit (< 256 bytes), holds no '/'
 *     or NUL, is never "." or "..", never starts with '.';
 *   - decode(encode(k)) == k exactly, or for a name cut by length
 *     ("%h" + hash) a prefix of k, and gfs_name_matches(k, name) holds;
 *   - an edge name "<other>~<id>.json" splits at its first '~' back into
 *     the two parts, and the node file "<k>.json" decodes to k.
 * Odd mode: the bytes are a file name; whatever key it decodes to, the
 * name is accepted (gfs_name_matches) only if it is exactly that key's
 * encoding - so a name has at most one key, and the same key never gets
 * two names.  Aborts on any violation.  docs/testing.md, "Fuzzing".
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

#define FAIL(...)                                                             \
	do {                                                                  \
		fprintf(stderr, "fuzz_names: " __VA_ARGS__);                  \
		fputc('\n', stderr);                                          \
		abort();                                                      \
	} while (0)

static void check_valid(const char *nm, size_t n, size_t max)
{
	if (n == 0 || n > max || n >= GFS_NAME_BUF)
		FAIL("name of %zu bytes (limit %zu)", n, max);
	if (strlen(nm) != n)
		FAIL("name holds a NUL or length %zu is wrong", n);
	if (memchr(nm, '/', n))
		FAIL("name '%s' holds a '/'", nm);
	if (nm[0] == '.')
		FAIL("name '%s' starts with '.'", nm);
}

/* Encodes k with max, checks the name, decodes it back; returns the
 * name's length (name in nm). */
static size_t round_trip(const char *k, size_t len, size_t max, char *nm)
{
	struct gfs_name_dec dec;
	size_t n = gfs_name_encode(k, len, max, nm);

	check_valid(nm, n, max);
	if (gfs_name_decode(nm, n, &dec))
		FAIL("encoding '%s' does not decode", nm);
	if (!dec.hashed && (dec.len != len || memcmp(dec.key, k, len)))
		FAIL("'%s' decodes to another key (%zu bytes, not %zu)", nm,
		     dec.len, len);
	if (dec.hashed && (dec.len > len || memcmp(dec.key, k, dec.len)))
		FAIL("cut name '%s' is not a prefix of its key", nm);
	if (!gfs_name_matches(k, len, max, nm, n))
		FAIL("key does not match its own name '%s'", nm);
	gfs_name_dec_release(&dec);
	return n;
}

/* An edge file name as fuse/view.c builds it: "<other>~<id>.json". */
static void edge_round_trip(const char *k, size_t len)
{
	const char *sep = memchr(k, '\0', len);
	size_t olen = sep ? (size_t)(sep - k) : len, ilen, n, stem, tilde;
	const char *id = sep ? sep + 1 : "";
	char nm[GFS_NAME_BUF + 8];

	ilen = sep ? len - olen - 1 : 0;
	n = round_trip(k, olen, GFS_NAME_PART_MAX, nm);
	nm[n++] = '~';
	n += round_trip(id, ilen, GFS_NAME_PART_MAX, nm + n);
	memcpy(nm + n, ".json", 6);
	n += 5;
	check_valid(nm, n, GFS_NAME_BUF - 1);
	if (!gfs_name_is_json(nm, n, &stem) ||
	    !gfs_name_split_edge(nm, stem, &tilde) ||
	    !gfs_name_matches(k, olen, GFS_NAME_PART_MAX, nm, tilde) ||
	    !gfs_name_matches(id, ilen, GFS_NAME_PART_MAX, nm + tilde + 1,
			      stem - tilde - 1))
		FAIL("edge name '%s' does not split back into its parts", nm);
}

static void node_round_trip(const char *k, size_t len)
{
	char nm[GFS_NAME_BUF + 8];
	size_t n = round_trip(k, len, GFS_NAME_KEY_MAX, nm), stem;

	memcpy(nm + n, ".json", 6);
	if (!gfs_name_is_json(nm, n + 5, &stem) || stem != n ||
	    !gfs_name_matches(k, len, GFS_NAME_KEY_MAX, nm, stem))
		FAIL("node file '%s' does not name its key", nm);
	/* the directory "<k>" is never a node file name */
	if (gfs_name_is_json(nm, n, &stem))
		FAIL("directory name '%.*s' ends in .json", (int)n, nm);
}

/* A name has at most one key: the one it decodes to, and only if the name
 * is that key's encoding. */
static void name_has_one_key(const char *nm, size_t n, size_t max)
{
	struct gfs_name_dec dec;
	char again[GFS_NAME_BUF + 8];
	size_t m;

	if (gfs_name_decode(nm, n, &dec))
		return;
	if (!dec.hashed && gfs_name_matches(dec.key, dec.len, max, nm, n)) {
		m = gfs_name_encode(dec.key, dec.len, max, again);
		if (m != n || memcmp(again, nm, n))
			FAIL("name accepted for a key encoding differently");
		check_valid(again, m, max);
	}
	gfs_name_dec_release(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *k = (const char *)data + 1;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		if (size - 1 < GFS_NAME_BUF) {
			name_has_one_key(k, size - 1, GFS_NAME_KEY_MAX);
			name_has_one_key(k, size - 1, GFS_NAME_PART_MAX);
		}
		return 0;
	}
	node_round_trip(k, size - 1);
	edge_round_trip(k, size - 1);
	return 0;
}
