/* load_parse.c - the load's parse phase on every core (load_parse.h).
 *
 * The caller's thread reads: it fills free chunk slots with whole lines
 * (the partial line at a chunk's end is carried into the next one) and
 * numbers them (first line, line count), so a worker knows each line's
 * number without looking at other chunks.  Workers take the oldest ready
 * chunk and parse every line of it into the chunk's output: one packed
 * record per row.  The caller's thread then delivers the chunks' rows in
 * sequence order, and stops at the first chunk that carries an error.
 * With one thread there are no workers: the caller parses each chunk
 * itself before delivering it (the one-thread load of the tests).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "load_parse.h"

#define CHUNK_DEFAULT ((size_t)1 << 20)
#define THREADS_MAX 16u

enum slot_state { SLOT_FREE, SLOT_READY, SLOT_BUSY, SLOT_DONE };

/* A packed row in a chunk's output; the bytes follow it: line, id, src,
 * dst, then n_ukeys (u32 length, bytes) pairs; padded to 8. */
struct prec {
	uint64_t lineno;
	uint64_t data_off, data_len;
	uint32_t type_idx, id_generated;
	uint32_t line_len, id_len, src_len, dst_len;
	uint32_t n_ukeys, size;
};

struct slot {
	enum slot_state state;
	uint64_t seq;
	struct gfs_buf in;    /* whole lines of the input */
	uint64_t first_line, n_lines;
	struct gfs_buf out; /* packed rows */
	uint64_t bytes_after; /* input bytes read once this chunk was cut */
	int rc;
	struct gfs_diag diag;
};

struct parser {
	const struct gfs_parse_opts *o;
	int fd;
	size_t chunk;
	/* reader (the caller's thread only) */
	struct gfs_buf carry; /* the partial line after the last chunk */
	bool eof, stop_reading;
	uint64_t lines, bytes;
	/* slots and workers */
	struct slot *slots;
	unsigned n_slots, n_workers;
	pthread_t *workers;
	unsigned started;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	bool stop;
};

unsigned gfs_load_default_threads(void)
{
	const char *env = getenv("GRAPHFS_LOAD_THREADS");
	long n = env && *env ? strtol(env, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n > (long)THREADS_MAX ? THREADS_MAX : (unsigned)n;
}

/* ---- the reader -------------------------------------------------------- */

static int read_error(struct parser *P, struct slot *s, int err)
{
	s->rc = -err;
	gfs_diag_set(&s->diag, "reading %s: %s",
		     P->o->source ? P->o->source : "input", strerror(err));
	return s->rc;
}

static void too_long(struct slot *s, uint64_t lineno)
{
	gfs_diag_set(&s->diag, "line %" PRIu64 ": longer than the limit of %zu MiB per line",
		     lineno, GFS_MAX_LINE >> 20);
	s->rc = GFS_ETOOLONG;
}

static uint64_t count_lines(const char *p, size_t n)
{
	const char *end = p + n, *nl;
	uint64_t k = 0;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p)))) {
		k++;
		p = nl + 1;
	}
	return k + (p < end); /* a last line without '\n' */
}

/* Fills s with the next whole lines (at least P->chunk bytes unless the
 * input ends).  Returns 0 with s->in.len 0 at the end of the input; an
 * error is left in the slot (s->rc), to be reported in order. */
static int fill(struct parser *P, struct slot *s)
{
	struct gfs_buf *in = &s->in;
	int rc;

	s->rc = 0;
	s->diag.msg[0] = '\0';
	gfs_buf_reset(&s->out);
	gfs_buf_reset(in);
	rc = gfs_buf_append(in, P->carry.p, P->carry.len);
	gfs_buf_reset(&P->carry);
	for (; !rc;) {
		if (in->len >= P->chunk || P->eof) {
			const char *nl = memrchr(in->p, '\n', in->len);
			if (nl || P->eof) {
				size_t cut = nl && !P->eof ? (size_t)(nl - in->p) + 1 : in->len;
				rc = gfs_buf_append(&P->carry, in->p + cut, in->len - cut);
				in->len = cut;
				break;
			}
			/* One line so far and no end in sight: a long line. */
			if (in->len > GFS_MAX_LINE) {
				too_long(s, P->lines + 1);
				in->len = 0;
				return s->rc;
			}
		}
		if ((rc = gfs_buf_reserve(in, P->chunk)))
			break;
		/* gfs_buf keeps one byte for a NUL */
		ssize_t n = read(P->fd, in->p + in->len, in->cap - in->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			in->len = 0;
			return read_error(P, s, errno);
		}
		if (n == 0)
			P->eof = true;
		in->len += (size_t)n;
		P->bytes += (uint64_t)n;
	}
	if (rc) {
		in->len = 0;
		return s->rc = rc;
	}
	s->first_line = P->lines + 1;
	s->n_lines = count_lines(in->p, in->len);
	P->lines += s->n_lines;
	s->bytes_after = P->bytes;
	return 0;
}

/* ---- parsing a chunk (any thread) --------------------------------------- */

static bool blank(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return false;
	return true;
}

/* memcpy that takes a NULL source with n == 0 (an empty gfs_buf). */
static char *put(char *p, const void *src, size_t n)
{
	if (n)
		memcpy(p, src, n);
	return p + n;
}

static int pack(struct gfs_buf *out, const struct gfs_rowin *r, uint64_t lineno)
{
	struct prec h = {
		.lineno = lineno,
		.data_off = r->data_off, .data_len = r->data_len,
		.type_idx = (uint32_t)r->type_idx, .id_generated = r->id_generated,
		.line_len = (uint32_t)r->line.len, .id_len = (uint32_t)r->id.len,
		.src_len = (uint32_t)r->src.len, .dst_len = (uint32_t)r->dst.len,
		.n_ukeys = (uint32_t)r->n_ukeys,
	};
	size_t size = sizeof h + r->line.len + r->id.len + r->src.len + r->dst.len;
	size_t at = out->len;
	int rc;

	for (size_t k = 0; k < r->n_ukeys; k++)
		size += sizeof(uint32_t) + r->ukeys[k].len;
	size = (size + 7) & ~(size_t)7;
	h.size = (uint32_t)size;
	if ((rc = gfs_buf_reserve(out, size)))
		return rc;
	char *p = out->p + at;
	memcpy(p, &h, sizeof h);
	p += sizeof h;
	p = put(p, r->line.p, r->line.len);
	p = put(p, r->id.p, r->id.len);
	p = put(p, r->src.p, r->src.len);
	p = put(p, r->dst.p, r->dst.len);
	for (size_t k = 0; k < r->n_ukeys; k++) {
		uint32_t l = (uint32_t)r->ukeys[k].len;
		p = put(p, &l, sizeof l);
		p = put(p, r->ukeys[k].p, l);
	}
	memset(p, 0, (size_t)(out->p + at + size - p));
	out->len = at + size;
	return 0;
}

static void parse_slot(const struct parser *P, struct slot *s, struct gfs_rowin *r)
{
	const char *p = s->in.p, *end = s->in.p + s->in.len;
	uint64_t lineno = s->first_line;

	gfs_buf_reset(&s->out);
	while (!s->rc && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (ll > GFS_MAX_LINE)
			too_long(s, lineno);
		else if (!blank(p, ll)) {
			s->rc = gfs_codec_parse_line(P->o->s, p, ll, lineno, r, &s->diag);
			if (!s->rc)
				s->rc = pack(&s->out, r, lineno);
		}
		p += ll + 1;
		lineno++;
	}
}

static void *worker(void *arg)
{
	struct parser *P = arg;
	struct gfs_rowin r;

	gfs_rowin_init(&r);
	pthread_setname_np(pthread_self(), "gfs-parse");
	pthread_mutex_lock(&P->mu);
	for (;;) {
		struct slot *job = NULL;
		for (unsigned i = 0; i < P->n_slots; i++) {
			struct slot *s = &P->slots[i];
			if (s->state == SLOT_READY && (!job || s->seq < job->seq))
				job = s;
		}
		if (P->stop)
			break;
		if (!job) {
			pthread_cond_wait(&P->work, &P->mu);
			continue;
		}
		job->state = SLOT_BUSY;
		pthread_mutex_unlock(&P->mu);
		parse_slot(P, job, &r);
		pthread_mutex_lock(&P->mu);
		job->state = SLOT_DONE;
		pthread_cond_broadcast(&P->done);
	}
	pthread_mutex_unlock(&P->mu);
	gfs_rowin_release(&r);
	return NULL;
}

/* ---- delivering a chunk (the caller's thread) --------------------------- */

struct view {
	struct gfs_rowin r; /* bufs point into a slot's output */
	size_t uk_cap;
};

static int deliver(struct parser *P, struct slot *s, struct view *v)
{
	/* an empty chunk's output may have no buffer: NULL + 0 is undefined
	 * (UBSan, found by fuzz/fuzz_jsonl.c on an empty file) */
	const char *p = s->out.p, *end = p ? p + s->out.len : p;
	int rc = 0;

	while (!rc && p < end) {
		struct prec h;
		memcpy(&h, p, sizeof h);
		const char *q = p + sizeof h;
		struct gfs_rowin *r = &v->r;

		r->type_idx = h.type_idx;
		r->td = &P->o->s->types[h.type_idx];
		r->id_generated = h.id_generated;
		r->data_off = (size_t)h.data_off;
		r->data_len = (size_t)h.data_len;
		r->line = (struct gfs_buf){ (char *)q, h.line_len, h.line_len };
		q += h.line_len;
		r->id = (struct gfs_buf){ (char *)q, h.id_len, h.id_len };
		q += h.id_len;
		r->src = (struct gfs_buf){ (char *)q, h.src_len, h.src_len };
		q += h.src_len;
		r->dst = (struct gfs_buf){ (char *)q, h.dst_len, h.dst_len };
		q += h.dst_len;
		if (h.n_ukeys > v->uk_cap) {
			struct gfs_buf *u = realloc(r->ukeys, h.n_ukeys * sizeof *u);
			if (!u)
				return -ENOMEM;
			r->ukeys = u;
			v->uk_cap = h.n_ukeys;
		}
		r->n_ukeys = h.n_ukeys;
		for (uint32_t k = 0; k < h.n_ukeys; k++) {
			uint32_t l;
			memcpy(&l, q, sizeof l);
			r->ukeys[k] = (struct gfs_buf){ (char *)q + sizeof l, l, l };
			q += sizeof l + l;
		}
		rc = P->o->row(P->o->arg, r, h.lineno);
		p += h.size;
	}
	if (!rc && P->o->tick)
		P->o->tick(P->o->arg, s->bytes_after, s->first_line + s->n_lines - 1);
	return rc;
}

/* ---- the whole parse ---------------------------------------------------- */

/* Threads that cannot be created (EAGAIN, no memory for a stack) are
 * not an error: the parse goes on with those that were, or inline. */
static void start_workers(struct parser *P)
{
	if (!(P->workers = calloc(P->n_workers, sizeof *P->workers))) {
		P->n_workers = 0;
		return;
	}
	for (; P->started < P->n_workers; P->started++)
		if (pthread_create(&P->workers[P->started], NULL, worker, P))
			break;
	P->n_workers = P->started;
}

static void stop_workers(struct parser *P)
{
	pthread_mutex_lock(&P->mu);
	P->stop = true;
	pthread_cond_broadcast(&P->work);
	pthread_mutex_unlock(&P->mu);
	for (unsigned i = 0; i < P->started; i++)
		pthread_join(P->workers[i], NULL);
	free(P->workers);
}

/* Reads ahead into every free slot. */
static void read_ahead(struct parser *P, uint64_t *seq_read, uint64_t seq_next)
{
	while (!P->stop_reading && *seq_read - seq_next < P->n_slots) {
		struct slot *s = &P->slots[*seq_read % P->n_slots];
		int rc = fill(P, s);

		if (!rc && s->in.len == 0) {
			P->stop_reading = true; /* the end: this slot stays free */
			break;
		}
		s->seq = (*seq_read)++;
		if (rc)
			P->stop_reading = true;
		pthread_mutex_lock(&P->mu);
		s->state = rc ? SLOT_DONE : SLOT_READY;
		pthread_cond_signal(&P->work);
		pthread_mutex_unlock(&P->mu);
	}
}

int gfs_load_parse(int fd, const struct gfs_parse_opts *o,
		   struct gfs_parse_stats *st, struct gfs_diag *d)
{
	struct parser P = { .o = o, .fd = fd };
	unsigned threads = o->threads ? o->threads : gfs_load_default_threads();
	const char *env = getenv("GRAPHFS_LOAD_CHUNK");
	struct gfs_rowin own;
	struct view v = { .uk_cap = 0 };
	uint64_t seq_read = 0, seq_next = 0;
	int rc = 0;

	memset(st, 0, sizeof *st);
	P.chunk = o->chunk ? o->chunk : env && *env ? strtoul(env, NULL, 10) : CHUNK_DEFAULT;
	if (P.chunk < 1)
		P.chunk = 1;
	P.n_workers = threads > 1 ? threads : 0;
	P.n_slots = 2 * threads + 1;
	memset(&v.r, 0, sizeof v.r);
	gfs_rowin_init(&own);
	pthread_mutex_init(&P.mu, NULL);
	pthread_cond_init(&P.work, NULL);
	pthread_cond_init(&P.done, NULL);
	/* jansson seeds its hash function once; do it before any thread. */
	json_object_seed(0);
	if (!(P.slots = calloc(P.n_slots, sizeof *P.slots)))
		rc = -ENOMEM;
	for (unsigned i = 0; !rc && i < P.n_slots; i++) {
		gfs_buf_init(&P.slots[i].in);
		gfs_buf_init(&P.slots[i].out);
	}
	if (!rc && P.n_workers)
		start_workers(&P);
	while (!rc) {
		struct slot *s;

		read_ahead(&P, &seq_read, seq_next);
		if (seq_next == seq_read)
			break;
		s = &P.slots[seq_next % P.n_slots];
		pthread_mutex_lock(&P.mu);
		while (P.n_workers && s->state != SLOT_DONE)
			pthread_cond_wait(&P.done, &P.mu);
		pthread_mutex_unlock(&P.mu);
		if (!P.n_workers && s->state == SLOT_READY) /* one thread */
			parse_slot(&P, s, &own);
		rc = deliver(&P, s, &v);
		if (!rc && s->rc) {
			rc = s->rc;
			if (d && s->diag.msg[0])
				gfs_diag_set(d, "%s", s->diag.msg);
		}
		pthread_mutex_lock(&P.mu); /* workers scan the states */
		s->state = SLOT_FREE;
		pthread_mutex_unlock(&P.mu);
		seq_next++;
	}
	if (P.workers)
		stop_workers(&P);
	st->lines = P.lines;
	st->bytes = P.bytes;
	st->threads = P.n_workers ? P.n_workers : 1;
	for (unsigned i = 0; P.slots && i < P.n_slots; i++) {
		gfs_buf_release(&P.slots[i].in);
		gfs_buf_release(&P.slots[i].out);
	}
	free(P.slots);
	gfs_buf_release(&P.carry);
	free(v.r.ukeys);
	gfs_rowin_release(&own);
	pthread_cond_destroy(&P.work);
	pthread_cond_destroy(&P.done);
	pthread_mutex_destroy(&P.mu);
	return rc;
}
