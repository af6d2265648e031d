/* xsort.h - an external sorter: variable-length records in bounded memory.
 *
 *     struct gfs_xsort *x;
 *     gfs_xsort_new(dir, budget, cmp, arg, &x);
 *     gfs_xsort_add(x, rec, len) ...        any number of records
 *     gfs_xsort_finish(x);                  no adds after this
 *     struct gfs_xsort_iter *it;
 *     gfs_xsort_iter_new(x, &it);           any number of passes, also at once
 *     while ((rc = gfs_xsort_iter_next(it, &rec, &len)) == 1) ...
 *     gfs_xsort_iter_free(it);
 *     gfs_xsort_free(x);
 *
 * Records are held in memory up to `budget` bytes (record bytes + a few
 * bytes of bookkeeping each); past it the batch is sorted and written as a
 * run to an unnamed file (O_TMPFILE in `dir`: scratch, never fsynced, gone
 * when closed or on a crash).  An iterator yields the k-way merge of the
 * runs; more than GFS_XSORT_FANIN runs are first merged in groups into
 * longer runs, so an iterator holds at most FANIN read buffers whatever
 * the input size.  When everything fit in one batch nothing is written.
 *
 * The sort is stable: records that cmp calls equal come out in the order
 * they were added.  A record larger than the budget is allowed (the batch
 * then holds just it): memory is max(budget, largest record) + the
 * iterators' buffers.
 *
 * Not thread-safe; iterators of one sorter may interleave in one thread.
 */
#ifndef GFS_XSORT_H
#define GFS_XSORT_H

#include <stddef.h>
#include <stdint.h>

struct gfs_xsort;
struct gfs_xsort_iter;

/* <0, 0, >0 as memcmp. */
typedef int (*gfs_xsort_cmp)(const void *a, size_t alen, const void *b,
			     size_t blen, void *arg);

/* Runs merged by one iterator at most; more are merged in groups first. */
#define GFS_XSORT_FANIN 64

/* Returns a new sorter; free with gfs_xsort_free().  dir: where run files
 * are created (only if the budget is exceeded).  budget: bytes of records
 * kept in memory before a run is written (at least 1). */
int gfs_xsort_new(const char *dir, size_t budget, gfs_xsort_cmp cmp,
		  void *arg, struct gfs_xsort **out);
/* Copies the record in.  Records may be empty; len < 4 GiB. */
int gfs_xsort_add(struct gfs_xsort *x, const void *rec, size_t len);
/* Sorts what is left (writing it as a run if runs exist) and merges runs
 * down to at most GFS_XSORT_FANIN. */
int gfs_xsort_finish(struct gfs_xsort *x);
void gfs_xsort_free(struct gfs_xsort *x);

struct gfs_xsort_stats {
	uint64_t records;   /* added */
	uint64_t runs;      /* written by spills (merges not counted) */
	uint64_t run_bytes; /* bytes written to the run file, merges included */
	uint64_t merges;    /* group merges done by finish */
};
void gfs_xsort_stats(const struct gfs_xsort *x, struct gfs_xsort_stats *out);

/* A pass over the sorted records (after finish).  Returns a new iterator;
 * free with gfs_xsort_iter_free() before the sorter. */
int gfs_xsort_iter_new(struct gfs_xsort *x, struct gfs_xsort_iter **out);
/* 1 = *rec and *len set, 0 = end, <0 = error (-errno).  Borrowed: the
 * record stays valid through the next call on this iterator too (so a
 * caller can look one record ahead without copying) and until the call
 * after that. */
int gfs_xsort_iter_next(struct gfs_xsort_iter *it, const void **rec,
			size_t *len);
void gfs_xsort_iter_free(struct gfs_xsort_iter *it);

#endif
