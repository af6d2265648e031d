/* codec_int.h - what codec.c (the jansson path) shares with codec_fast.c
 * (the scanner that handles the common lines first; docs/decisions.md).
 *
 *     rc = gfs_codec_fast_parse(s, line, len, lineno, r);
 *     // 1: r is filled exactly as gfs_codec_parse_line's jansson path
 *     //    would fill it; 0: not handled, run the jansson path (which
 *     //    gives every error and its message).
 *
 * The helpers below are the value rules both paths must agree on; they
 * take plain C values (no json_t) so that both call the same code.
 */
#ifndef GFS_CODEC_INT_H
#define GFS_CODEC_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "codec.h"
#include "schema.h"
#include "util.h"

/* Smallest magnitude that rounds to float infinity: half an ulp past FLT_MAX. */
#define GFS_F32_OVERFLOW 0x1.ffffffp+127

/* Fewest digits that read back to the same double (or float), always with a
 * '.' or an exponent ("1.0"). */
void gfs_codec_fmt_real(char *out, size_t n, double v, bool f32);

/* Whether x fits integer base b (I32/I64/U32/U64; U64 stops at INT64_MAX). */
bool gfs_codec_int_fits(enum gfs_base b, long long x);

/* Whether x is storable as float base b (finite; F32 below its overflow). */
bool gfs_codec_real_fits(enum gfs_base b, double x);

/* Canonical decimal of x into out (at least 21 bytes); returns its length.
 * The same bytes as "%lld", without the printf machinery. */
size_t gfs_codec_fmt_int(char *out, long long x);

/* A Date's text is YYYY-MM-DD of a valid proleptic Gregorian day. */
bool gfs_codec_date_ok(const char *s, size_t n);

/* Appends the canonical UTC form of RFC 3339 DateTime text s to out.
 * Returns 0, 1 (not a DateTime), 2 (outside years 0000..9999) or -ENOMEM. */
int gfs_codec_datetime_canon(const char *s, size_t n, struct gfs_buf *out);

/* Whether s is one of t's enum values. */
bool gfs_codec_enum_has(const struct gfs_type *t, const char *s, size_t n);

/* True when the canonical form of base b is a JSON string. */
bool gfs_codec_quoted_base(enum gfs_base b);

/* <0, 0, >0 as a number compares with bound b: is_int/i for an integer
 * value (x its double), else x alone (as codec.c's @range does). */
int gfs_codec_cmp_bound(enum gfs_base base, bool is_int, long long i,
			double x, const struct gfs_bound *b);

/* Whether the canonical text s of a value matches @check k. */
bool gfs_codec_check_match(const struct gfs_cons *k, const char *s, size_t n);

/* Sizes r->ukeys for r->td (one buffer per GFS_C_UNIQUE constraint).
 * Returns 0 or -ENOMEM. */
int gfs_codec_ukeys_size(struct gfs_rowin *r);

/* The fast path (codec_fast.c): 1 = accepted and r filled, 0 = not handled
 * (r's buffers hold garbage; the caller resets them). Never an error. */
int gfs_codec_fast_parse(const struct gfs_schema *s, const char *line,
			 size_t len, unsigned long lineno, struct gfs_rowin *r);

/* Test switch: false makes gfs_codec_parse_line use jansson only.  Not
 * thread-safe; set it before any parse (default: true).  Returns the old
 * value. */
bool gfs_codec_set_fast(bool on);

#endif
