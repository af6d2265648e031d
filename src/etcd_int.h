/* etcd_int.h - what etcd.c (requests, KV, txn, leases) shares with
 * etcd_watch.c (the watch stream).  Not a public interface. */
#ifndef GFS_ETCD_INT_H
#define GFS_ETCD_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <curl/curl.h>
#include <jansson.h>

#include "etcd.h"

#define ETCD_POOL_MAX 8

struct gfs_etcd {
	struct gfs_etcd_url url;
	struct gfs_etcd_opts opts;
	pthread_mutex_t lock;
	CURL *pool[ETCD_POOL_MAX]; /* idle handles; protected by lock */
	size_t npool;              /* protected by lock */
	size_t cur;                /* endpoint that answered last; protected by lock */
	/* liveness checks of silent watch streams (etcd_watch.c invariant 5) */
	atomic_uint_least64_t alive_checks, alive_failed;
};

/* The failures of one call: the last reason of each endpoint (etcd.c
 * invariant 2).  why is n entries; "" = not tried. */
struct etcd_attempt {
	int rc;
	size_t n;
	char (*why)[300];
	unsigned tries;
};
void etcd_tried_add(struct etcd_attempt *a, size_t i, const char *why, int rc);
/* Sets d: "etcd unreachable, N attempts: ep (why), ..." (or "cannot serve
 * PATH now" when members answered without a leader). */
void etcd_tried_diag(const struct etcd_attempt *a, const struct gfs_etcd *e,
		     const char *path, struct gfs_diag *d);

/* curl: options of every request; its errors as -errno and in words. */
void etcd_set_common(CURL *h, const struct gfs_etcd_opts *o, char *errbuf);
int etcd_curl_rc(CURLcode c);
void etcd_curl_why(CURLcode c, const char *errbuf, char *out, size_t cap);

/* JSON of the gateway: bytes are base64, int64 decimal strings. */
json_t *etcd_j_int(int64_t v);
int etcd_j_set(json_t *obj, const char *name, json_t *v); /* consumes v */
int64_t etcd_header_rev(const json_t *obj);
/* An int64 member (absent = 0); -EPROTO if not a number. */
int etcd_j_get_int(const json_t *obj, const char *name, int64_t *out);
int etcd_parse_kv(const json_t *o, struct gfs_etcd_kv *kv);
json_t *etcd_range_req(const void *key, size_t klen, const void *end, size_t elen,
		       int64_t rev, int64_t limit);
/* An answer's error message (borrowed from j) and *rc, or NULL. */
const char *etcd_answer_error(const json_t *j, int *rc);
int etcd_check_args(const void *key, size_t klen, struct gfs_diag *d);

#endif
