/* holds.c - the mount's holds on graph versions (holds.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "holds.h"
#include "lock.h"
#include "util.h"

struct hold {
	uint64_t n;
	size_t refs;
};

struct gfs_holds {
	struct gfs_vhold *vh;  /* lock.h: OFD locks, or hold keys on etcd */
	pthread_mutex_t mu;
	struct hold *v;   /* protected by mu; few: the versions open now */
	size_t nv, cap;   /* protected by mu */
	uint64_t keep;    /* protected by mu: held on with no reference */
};

int gfs_holds_new(const char *store_dir, struct gfs_holds **out)
{
	struct gfs_holds *h = calloc(1, sizeof *h);
	int rc;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	rc = gfs_vhold_open(store_dir, &h->vh, NULL);
	if (rc) {
		free(h);
		return rc;
	}
	pthread_mutex_init(&h->mu, NULL);
	*out = h;
	return 0;
}

void gfs_holds_free(struct gfs_holds *h)
{
	if (!h)
		return;
	gfs_vhold_close(h->vh); /* drops every hold */
	pthread_mutex_destroy(&h->mu);
	free(h->v);
	free(h);
}

static struct hold *find(struct gfs_holds *h, uint64_t n)
{
	for (size_t i = 0; i < h->nv; i++)
		if (h->v[i].n == n)
			return &h->v[i];
	return NULL;
}

/* Under h->mu: 0 = n already held (one more reference), 1 = locked now
 * and recorded, -EWOULDBLOCK = a gc fences n, or an error.  The entry
 * exists exactly while the lock is held: a lock is only ever recorded by
 * a try under the mutex, never by the wait outside it. */
static int ref_locked(struct gfs_holds *h, uint64_t n)
{
	struct hold *x = find(h, n);
	int rc;

	if (x) { /* held already: gc cannot have removed n since */
		x->refs++;
		return 0;
	}
	x = gfs_array_grow(h->v, &h->cap, h->nv, sizeof *h->v, 8);
	if (!x)
		return -ENOMEM;
	h->v = x;
	rc = gfs_vhold_take(h->vh, n, GFS_LOCK_TRY);
	if (rc)
		return rc;
	h->v[h->nv++] = (struct hold){ n, 1 };
	return 1;
}

int gfs_holds_ref(struct gfs_holds *h, uint64_t n)
{
	int rc;

	if (!h || !n)
		return 0;
	for (;;) {
		pthread_mutex_lock(&h->mu);
		rc = ref_locked(h, n);
		pthread_mutex_unlock(&h->mu);
		if (rc != -EWOULDBLOCK)
			return rc;
		/* A gc fences n from its plan to its commit point: wait for it
		 * without the mutex (opens of other versions go on), then try
		 * again under it; the caller then finds n removed, or gc
		 * failed and n stays. */
		rc = gfs_vhold_take(h->vh, n, GFS_LOCK_WAIT);
		if (rc)
			return rc;
	}
}

int gfs_holds_ref_held(struct gfs_holds *h, uint64_t n)
{
	struct hold *x;

	if (!h || !n)
		return -ENOENT;
	pthread_mutex_lock(&h->mu);
	x = find(h, n);
	if (x)
		x->refs++;
	pthread_mutex_unlock(&h->mu);
	return x ? 0 : -ENOENT;
}

void gfs_holds_unref(struct gfs_holds *h, uint64_t n)
{
	struct hold *x;

	if (!h || !n)
		return;
	pthread_mutex_lock(&h->mu);
	x = find(h, n);
	if (x && --x->refs == 0 && n != h->keep) {
		gfs_vhold_drop(h->vh, n);
		*x = h->v[--h->nv];
	}
	pthread_mutex_unlock(&h->mu);
}

void gfs_holds_keep(struct gfs_holds *h, uint64_t n)
{
	struct hold *x;

	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	if (h->keep != n) {
		x = find(h, h->keep);
		if (x && x->refs == 0) { /* lingering: no handle needs it */
			gfs_vhold_drop(h->vh, x->n);
			*x = h->v[--h->nv];
		}
		h->keep = n;
	}
	pthread_mutex_unlock(&h->mu);
}

size_t gfs_holds_count(struct gfs_holds *h)
{
	size_t n;

	if (!h)
		return 0;
	pthread_mutex_lock(&h->mu);
	n = h->nv;
	pthread_mutex_unlock(&h->mu);
	return n;
}
