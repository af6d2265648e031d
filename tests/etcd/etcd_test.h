/* etcd_test.h - what the etcd test programs (etcd_client.c, etcd_lease.c)
 * share: TAP-like "ok -"/"FAIL -" lines, the diagnostic, the timeout
 * factor, clocks, and a client open that ends the program on failure.
 * Each program is one translation unit that includes this once. */
#ifndef GFS_ETCD_TEST_H
#define GFS_ETCD_TEST_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd.h"

static int fails;
static const char *url;
static struct gfs_diag dg;

#define CHECK(cond, ...) do { \
	if (cond) { printf("ok - "); printf(__VA_ARGS__); printf("\n"); } \
	else { fails++; printf("FAIL - %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } \
	fflush(stdout); \
} while (0)
#define MUST(call) do { \
	memset(&dg, 0, sizeof(dg)); \
	int rc_ = (call); \
	if (rc_) { printf("FAIL - %s:%d: %s: %s: %s\n", __FILE__, __LINE__, #call, gfs_strerror(rc_), dg.msg); fails++; return; } \
} while (0)

/* GRAPHFS_TEST_TIMEOUT_FACTOR (1..99; anything else is 1). */
static inline int factor(void)
{
	const char *s = getenv("GRAPHFS_TEST_TIMEOUT_FACTOR");
	long f = s ? strtol(s, NULL, 10) : 1;
	return f > 0 && f < 100 ? (int)f : 1;
}

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static inline struct gfs_etcd *open_url(const char *u, unsigned timeout_ms)
{
	struct gfs_etcd_opts o = {.timeout_ms = timeout_ms};
	struct gfs_etcd *e = NULL;
	memset(&dg, 0, sizeof(dg));
	int rc = gfs_etcd_open(u, &o, &e, &dg);
	if (rc) {
		printf("FAIL - open '%s': %s: %s\n", u, gfs_strerror(rc), dg.msg);
		exit(1);
	}
	return e;
}

/* Key "PREFIX/name" under the URL's prefix, in buf. */
static inline size_t key(struct gfs_etcd *e, char *buf, size_t cap, const char *name)
{
	return (size_t)snprintf(buf, cap, "%s/%s", gfs_etcd_prefix(e), name);
}

#endif
