/* names.h - reversible file names for arbitrary keys (docs/mount.md).
 *
 *     char name[GFS_NAME_BUF];
 *     gfs_name_encode(key, key_len, GFS_NAME_KEY_MAX, name);   // "a%2Fb"
 *     struct gfs_name_dec dec;
 *     gfs_name_decode(name, strlen(name), &dec);   // dec.key = "a/b", exact
 *     ...
 *     gfs_name_dec_release(&dec);
 *
 * Rules (one function, used for every component):
 *   - bytes 0x00-0x1F, 0x7F, '/', '%', '~' become %XX (upper-case hex);
 *   - a leading '.' becomes %2E (no hidden names, never "." or "..");
 *   - the '.' of a trailing ".json" becomes %2E (so a node's directory
 *     "<key>" can never be confused with a node file "<key>.json");
 *   - the empty key is "%";
 *   - an encoding longer than max is cut (never inside %XX) and followed by
 *     "%h" and 16 hex digits of gfs_hash64(key): "%h" is not a valid escape,
 *     so such names are recognised, and lookup finds the key by iterating
 *     the ids that start with the decoded prefix and re-encoding each.
 * A name is accepted only if it is exactly the encoding of the key found,
 * so every key has one name and every name at most one key.
 */
#ifndef GFS_FUSE_NAMES_H
#define GFS_FUSE_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest encoded node key / edge source (dir or "<key>.json"). */
#define GFS_NAME_KEY_MAX 200
/* Longest encoded part of an edge file name "<dst>~<id>.json". */
#define GFS_NAME_PART_MAX 120
#define GFS_NAME_BUF 256

/* Encodes key into out (NUL-terminated, at most max bytes); returns the
 * length.  max must be >= 40; out must hold max + 1 bytes. */
size_t gfs_name_encode(const char *key, size_t len, size_t max, char *out);

struct gfs_name_dec {
	char *key;     /* decoded bytes (exact key, or the prefix when hashed) */
	size_t len;
	bool hashed;   /* name ended in %h<16 hex>: key is only a prefix */
};
/* 0, or -ENOENT if name is not a well-formed encoding.  dec->key is new;
 * release with gfs_name_dec_release. */
int gfs_name_decode(const char *name, size_t nlen, struct gfs_name_dec *dec);
void gfs_name_dec_release(struct gfs_name_dec *dec);

/* True if the encoding of key (with max) equals name[0..nlen). */
bool gfs_name_matches(const char *key, size_t len, size_t max,
		      const char *name, size_t nlen);

/* True if name ends with ".json"; *stem_len = length without it. */
bool gfs_name_is_json(const char *name, size_t nlen, size_t *stem_len);

/* Splits an edge stem "<dst>[~<id>]" at its separator; false if none. */
bool gfs_name_split_edge(const char *stem, size_t nlen, size_t *tilde);

#endif
