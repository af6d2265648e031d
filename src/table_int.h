/* table_int.h - private to table.c (and its tests): the version file format.
 *
 * The layout itself is described at the top of table.c; these are its
 * numbers and the little-endian accessors every encoder/decoder uses, so a
 * test can build or poke at a file without duplicating them.
 */
#ifndef GFS_TABLE_INT_H
#define GFS_TABLE_INT_H

#include <stddef.h>
#include <stdint.h>

#define TBL_MAGIC "GFSTBL01"     /* first 8 bytes of every version file */
#define TBL_END_MAGIC "GFSTEND1" /* last 8 bytes: a torn file lacks them */
#define TBL_FORMAT 1u

#define TBL_HDR_LEN 128u      /* fixed header, checksum in its last 8 bytes */
#define TBL_FOOT_FIXED 56u    /* footer counters before the root table */
#define TBL_FOOT_ROOT 16u     /* one root reference per tree */
#define TBL_TRAILER 24u       /* footer_len, pad, checksum, end magic */

#define TBL_PAGE_HDR 24u      /* kind tree level pad n len seg off */
#define TBL_PAGE_CSUM 8u
#define TBL_PAGE_TARGET 4096u /* split point; a page may exceed it by one entry */
#define TBL_PAGE_MAX (64u << 20)
#define TBL_MAX_HEIGHT 32
#define TBL_MAX_KEY (1u << 20) /* ids, endpoint ids and unique keys */
#define TBL_MAX_UNIQUE 64u

/* Builder memory: ops beyond this many bytes are sorted and spilled to a
 * temp file (table.c, "builder").  A variable so tests can make small
 * builds spill; nothing else changes it. */
extern size_t tbl_spill_bytes;

#define TBL_IENT_FIXED 36u    /* klen4 seg4 off8 len4 count8 bytes8 (+ key) */

/* Row record (PRIMARY leaf value) field offsets; variable part follows:
 * src, dst, then n_ukeys x (u32 len, bytes). */
#define TBL_REC_SERIAL 0u
#define TBL_REC_CHANGED 8u
#define TBL_REC_FLAGS 12u
#define TBL_REC_HASH 16u
#define TBL_REC_SEG 24u
#define TBL_REC_SEGOFF 28u
#define TBL_REC_LINELEN 36u
#define TBL_REC_DATAOFF 40u
#define TBL_REC_DATALEN 44u
#define TBL_REC_SRCLEN 48u
#define TBL_REC_DSTLEN 52u
#define TBL_REC_NUKEYS 56u
#define TBL_REC_FIXED 60u

/* Stored flag bit (never exported in gfs_row.flags): the row is an edge,
 * so an empty src/dst still means "edge with an empty endpoint id". */
#define TBL_REC_EDGE (1u << 31)

enum tbl_page_kind { TBL_PG_LEAF = 1, TBL_PG_INTERNAL = 2 };

static inline void tbl_put32(char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (char)(v >> (8 * i));
}

static inline void tbl_put64(char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (char)(v >> (8 * i));
}

static inline uint32_t tbl_get32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 |
	       (uint32_t)u[3] << 24;
}

static inline uint64_t tbl_get64(const char *p)
{
	return (uint64_t)tbl_get32(p) | (uint64_t)tbl_get32(p + 4) << 32;
}

#endif
