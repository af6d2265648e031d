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
	int fd;
	pthread_mutex_t mu;
	struct hold *v;   /* protected by mu; few: the versions open now */
	size_t nv, cap;   /* protected by mu */
};

int gfs_holds_new(const char *store_dir, struct gfs_holds **out)
{
	struct gfs_holds *h = calloc(1, sizeof *h);
	int rc;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	rc = gfs_holds_open(store_dir, &h->fd);
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
	close(h->fd); /* drops every lock of the description */
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

int gfs_holds_ref(struct gfs_holds *h, uint64_t n)
{
	struct hold *x;
	int rc = 0;

	if (!h || !n)
		return 0;
	pthread_mutex_lock(&h->mu);
	x = find(h, n);
	if (x) { /* held already: gc cannot have removed n since */
		x->refs++;
		goto out;
	}
	x = gfs_array_grow(h->v, &h->cap, h->nv, sizeof *h->v, 8);
	if (!x) {
		rc = -ENOMEM;
		goto out;
	}
	h->v = x;
	/* Waits while a gc has fenced n (from its check to its commit): the
	 * caller then finds n removed, or gc failed and n stays. */
	rc = gfs_hold_take(h->fd, n);
	if (!rc) {
		h->v[h->nv++] = (struct hold){ n, 1 };
		rc = 1;
	}
out:
	pthread_mutex_unlock(&h->mu);
	return rc;
}

void gfs_holds_unref(struct gfs_holds *h, uint64_t n)
{
	struct hold *x;

	if (!h || !n)
		return;
	pthread_mutex_lock(&h->mu);
	x = find(h, n);
	if (x && --x->refs == 0) {
		gfs_hold_drop(h->fd, n);
		*x = h->v[--h->nv];
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
