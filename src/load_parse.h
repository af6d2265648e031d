/* load_parse.h - the load's parse phase on every core (issue 9).
 *
 * The input is read in chunks cut at newlines; worker threads parse and
 * canonicalize whole chunks (gfs_codec_parse_line) while the caller's
 * thread reads ahead and hands the parsed rows to `row` strictly in file
 * order, one chunk after another.  So the caller sees exactly what a
 * one-thread parse would give it, and the error returned is the one of
 * the first bad line by line number: a chunk's error is only reported
 * once every earlier chunk was delivered without one.
 *
 * Memory: at most 2 * threads + 1 chunks (input and parsed output) are in
 * flight, each about chunk bytes (longer only to hold one long line, up
 * to GFS_MAX_LINE).
 */
#ifndef GFS_LOAD_PARSE_H
#define GFS_LOAD_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "schema.h"
#include "util.h"

struct gfs_parse_opts {
	const struct gfs_schema *s;
	const char *source; /* for messages: "reading SOURCE: ..." */
	unsigned threads;   /* worker threads; 0 = one per online CPU */
	size_t chunk;       /* bytes per chunk; 0 = the default (1 MiB) */
	/* Each non-blank line, in file order; r is valid during the call only
	 * (its bufs point into the chunk: never release them).  A non-zero
	 * return stops the parse and is returned. */
	int (*row)(void *arg, const struct gfs_rowin *r, uint64_t lineno);
	/* After each chunk: input bytes read and lines delivered so far. */
	void (*tick)(void *arg, uint64_t bytes, uint64_t lines);
	void *arg;
};

struct gfs_parse_stats {
	uint64_t lines; /* lines seen (blank ones included) */
	uint64_t bytes; /* input bytes read */
	unsigned threads;
};

/* Parses fd to its end.  0, or the first error: GFS_EDATA / GFS_ETOOLONG
 * with d naming the line, -errno of a read (d: "reading SOURCE: ..."),
 * -ENOMEM, or what `row` returned.  *st is filled in either case. */
int gfs_load_parse(int fd, const struct gfs_parse_opts *o,
		   struct gfs_parse_stats *st, struct gfs_diag *d);

/* The thread count a load uses by default (GRAPHFS_LOAD_THREADS, else the
 * online CPUs, at most 16). */
unsigned gfs_load_default_threads(void);

#endif
