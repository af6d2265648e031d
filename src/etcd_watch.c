/* etcd_watch.c - gfs_etcd_watch_*: a watch stream of etcd's JSON gateway
 * (POST /v3/watch) on a thread and a curl handle of its own (see etcd.h).
 *
 * The request body is one create_request; etcd answers with one JSON object
 * a line ({"result": {created | events | canceled}}) and keeps the stream
 * open after the body ends, so the thread ends it itself (stop, or a line
 * that ends it).  A curl multi handle lets gfs_etcd_watch_stop() wake the
 * thread at once (curl_multi_wakeup).
 *
 * Invariants:
 *   1. Each revision is delivered once, in order: a stream resumes from the
 *      last delivered revision + 1 (from the creation's header revision + 1
 *      for a watch "from now"), and only whole lines of a stream are parsed.
 *   2. A stream not created within the request timeout is abandoned (a
 *      member that accepts and never answers); the endpoints are tried in
 *      turn, with backoff 50 ms doubling to 1 s.
 *   3. Compaction of the revision to resume from ends the watch with a
 *      fatal error callback; a dropped stream only reports (not fatal).
 *   4. No callback runs after gfs_etcd_watch_stop() returns.
 *   5. A created stream that has carried no bytes (no event, no progress
 *      notification) for WATCH_IDLE_MS is checked: one POST
 *      /v3/maintenance/status to the same member, WATCH_ALIVE_MS at most.
 *      An answer keeps the stream; none drops it, and the watch resumes
 *      on the next endpoint (invariant 1) and reports (invariant 3), as
 *      when a member dies.  A frozen member (SIGSTOP, or a host behind a
 *      partition that still holds the TCP connection) keeps the stream
 *      open and silent; TCP keepalive ends it only when the host is gone,
 *      and etcd's progress notifications come every 10 min by default,
 *      so without the check a watcher would miss every commit for ever.
 *      Cost: at most one small request per WATCH_IDLE_MS per watch, and
 *      none while bytes flow; it reads no key (not a poll of versions).
 */
#include <config.h>

#include "etcd_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WATCH_BACKOFF_MIN_MS 50
#define WATCH_BACKOFF_MAX_MS 1000
/* invariant 5: a stream silent this long gets its member checked, which
 * must answer within WATCH_ALIVE_MS (a status answer is local to the
 * member: no raft round, so 1 s is generous even on a loaded host) */
#define WATCH_IDLE_MS 5000
#define WATCH_ALIVE_MS 1000

struct gfs_etcd_watch {
	struct gfs_etcd *e;
	char *key, *end;
	size_t klen, elen;
	gfs_etcd_watch_fn on_events;
	gfs_etcd_watch_err_fn on_error;
	void *arg;
	CURLM *multi;
	CURL *h;
	CURL *alive;         /* the liveness check's (invariant 5) */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;           /* protected by lock */
	int start;           /* 0 pending, 1 created, <0 failed; protected by lock */
	struct gfs_diag start_diag; /* protected by lock */
	/* the thread's own: */
	int64_t next_rev;    /* resume from here; 0 = from now */
	size_t ep;
	struct etcd_attempt tries; /* while starting: why each endpoint failed */
	struct gfs_buf line; /* the stream's unparsed tail */
	bool created;        /* this stream */
	uint64_t rx_ns;      /* when this stream last carried bytes */
	int stream_rc;       /* why the thread ended this stream */
	char why[300];
};

static bool watch_stopped(struct gfs_etcd_watch *w)
{
	pthread_mutex_lock(&w->lock);
	bool s = w->stop;
	pthread_mutex_unlock(&w->lock);
	return s;
}

static void watch_set_start(struct gfs_etcd_watch *w, int state, const char *msg)
{
	pthread_mutex_lock(&w->lock);
	if (w->start == 0) {
		w->start = state;
		if (msg)
			gfs_diag_reset(&w->start_diag, "%s", msg);
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
}

static int watch_events(struct gfs_etcd_watch *w, const json_t *evs, int64_t hrev)
{
	size_t n = json_array_size(evs);
	struct gfs_etcd_event *ev = n ? calloc(n, sizeof(*ev)) : NULL;
	size_t ok = 0;
	int rc = 0;

	if (n && !ev)
		return -ENOMEM;
	for (; ok < n && !rc; ok++) {
		const json_t *o = json_array_get(evs, ok);
		ev[ok].type = json_is_string(json_object_get(o, "type")) &&
			      !strcmp(json_string_value(json_object_get(o, "type")), "DELETE") ?
			      GFS_ETCD_EV_DELETE : GFS_ETCD_EV_PUT;
		rc = etcd_parse_kv(json_object_get(o, "kv"), &ev[ok].kv);
		if (rc)
			break;
	}
	if (!rc && n) {
		w->on_events(w->arg, ev, n, hrev);
		w->next_rev = ev[n - 1].kv.mod_revision + 1;
	}
	for (size_t i = 0; i < ok; i++)
		gfs_etcd_kv_release(&ev[i].kv);
	free(ev);
	return rc;
}

/* One line of the stream; 0 to go on, else the stream ends (stream_rc). */
static int watch_line(struct gfs_etcd_watch *w, const char *p, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb(p, len, 0, &jerr), *r;
	int rc = 0;
	int64_t crev = 0;

	if (!j) {
		snprintf(w->why, sizeof(w->why), "a watch line that is not JSON: %s", jerr.text);
		return -EPROTO;
	}
	const char *msg = etcd_answer_error(j, &rc);
	if (msg) {
		snprintf(w->why, sizeof(w->why), "%s", msg);
		json_decref(j);
		return rc ? rc : -EIO;
	}
	r = json_object_get(j, "result");
	int64_t hrev = etcd_header_rev(r);
	if (json_is_true(json_object_get(r, "created")) && !w->created) {
		w->created = true;
		if (!w->next_rev)
			w->next_rev = hrev + 1;
		watch_set_start(w, 1, NULL);
	}
	if (json_is_true(json_object_get(r, "canceled"))) {
		(void)etcd_j_get_int(r, "compact_revision", &crev);
		const char *why = json_string_value(json_object_get(r, "cancel_reason"));
		if (crev)
			snprintf(w->why, sizeof(w->why), "watch from revision %" PRId64 " cannot resume: compacted up to %" PRId64 " (re-read, then watch again)",
				 w->next_rev, crev);
		else
			snprintf(w->why, sizeof(w->why), "watch canceled by etcd: %s", why ? why : "no reason given");
		json_decref(j);
		return crev ? -ESTALE : -EIO;
	}
	const json_t *evs = json_object_get(r, "events");
	if (json_array_size(evs) == 0 && !json_is_true(json_object_get(r, "created"))) {
		/* a progress notification: every event up to hrev was sent
		 * (etcd sends them only to a watch that has caught up) */
		if (hrev + 1 > w->next_rev) {
			w->next_rev = hrev + 1;
			w->on_events(w->arg, NULL, 0, hrev);
		}
	} else if ((rc = watch_events(w, evs, hrev))) {
		snprintf(w->why, sizeof(w->why), "a watch event that is not etcd's");
	}
	json_decref(j);
	return rc;
}

static size_t on_stream(char *p, size_t size, size_t n, void *arg)
{
	struct gfs_etcd_watch *w = arg;
	size_t len = size * n, start = 0;

	w->rx_ns = gfs_now_ns();
	if (gfs_buf_append(&w->line, p, len)) {
		w->stream_rc = -ENOMEM;
		return 0;
	}
	for (size_t i = 0; i < w->line.len; i++) {
		if (w->line.p[i] != '\n')
			continue;
		int rc = i > start ? watch_line(w, w->line.p + start, i - start) : 0;
		start = i + 1;
		if (rc) {
			w->stream_rc = rc;
			return 0;
		}
	}
	memmove(w->line.p, w->line.p + start, w->line.len - start);
	w->line.len -= start;
	return len;
}

static char *watch_req(struct gfs_etcd_watch *w)
{
	json_t *c = etcd_range_req(w->key, w->klen, w->end, w->elen, 0, 0), *req = json_object();
	char *s = NULL;
	/* progress_notify: etcd then tells an idle watch how far it has
	 * got, so a resume after a long quiet spell starts there rather than
	 * at an older revision that compaction may have removed */
	if (c && ((w->next_rev && etcd_j_set(c, "start_revision", etcd_j_int(w->next_rev))) ||
		  etcd_j_set(c, "progress_notify", json_true()))) {
		json_decref(c);
		c = NULL;
	}
	if (req && c && json_object_set_new(req, "create_request", c) == 0) {
		c = NULL;
		s = json_dumps(req, JSON_COMPACT);
	}
	json_decref(c);
	json_decref(req);
	return s;
}

static size_t on_alive(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n; /* the answer's content does not matter */
}

/* Invariant 5: does the member at ep answer a status request within
 * WATCH_ALIVE_MS?  0 if so, else -errno with w->why.  Blocks the thread
 * (and so gfs_etcd_watch_stop()) for WATCH_ALIVE_MS at most. */
static int watch_alive(struct gfs_etcd_watch *w, const char *ep)
{
	char url[600], errbuf[CURL_ERROR_SIZE], why[200];
	struct curl_slist hdr = {(char *)"Content-Type: application/json", NULL};
	long status = 0;
	CURLcode c;

	snprintf(url, sizeof(url), "http://%s/v3/maintenance/status", ep);
	curl_easy_reset(w->alive);
	etcd_set_common(w->alive, &w->e->opts, errbuf);
	curl_easy_setopt(w->alive, CURLOPT_URL, url);
	curl_easy_setopt(w->alive, CURLOPT_HTTPHEADER, &hdr);
	curl_easy_setopt(w->alive, CURLOPT_POSTFIELDS, "{}");
	curl_easy_setopt(w->alive, CURLOPT_CONNECTTIMEOUT_MS, (long)WATCH_ALIVE_MS);
	curl_easy_setopt(w->alive, CURLOPT_TIMEOUT_MS, (long)WATCH_ALIVE_MS);
	curl_easy_setopt(w->alive, CURLOPT_WRITEFUNCTION, on_alive);
	errbuf[0] = 0;
	atomic_fetch_add(&w->e->alive_checks, 1);
	c = curl_easy_perform(w->alive);
	if (c == CURLE_OK) {
		curl_easy_getinfo(w->alive, CURLINFO_RESPONSE_CODE, &status);
		if (status == 200)
			return 0;
		snprintf(why, sizeof(why), "HTTP status %ld", status);
	} else {
		etcd_curl_why(c, errbuf, why, sizeof(why));
	}
	atomic_fetch_add(&w->e->alive_failed, 1);
	snprintf(w->why, sizeof(w->why),
		 "silent for %u ms, and no answer to a status request within %u ms (%.120s): resuming on the next endpoint",
		 WATCH_IDLE_MS, WATCH_ALIVE_MS, why);
	return c == CURLE_OK ? -EPROTO : etcd_curl_rc(c);
}

/* Runs one stream on endpoint ep until it ends, the thread is stopped, or
 * a line ends it.  Returns 0 (stopped or server closed), or -errno with
 * w->why. */
static int watch_stream(struct gfs_etcd_watch *w, const char *ep)
{
	char url[600], errbuf[CURL_ERROR_SIZE];
	/* hasleader: etcd ends the stream (and refuses a new one) on a
	 * member that has lost its leader, as clientv3's WithRequireLeader
	 * does; without it a member cut off from quorum keeps the stream
	 * open and silent, and a watcher never learns of the outage. */
	struct curl_slist lead = {(char *)"Grpc-Metadata-Hasleader: true", NULL};
	struct curl_slist hdr = {(char *)"Content-Type: application/json", &lead};
	char *req = watch_req(w);
	int running = 1, rc = 0;

	if (!req)
		return -ENOMEM;
	snprintf(url, sizeof(url), "http://%s/v3/watch", ep);
	curl_easy_reset(w->h);
	etcd_set_common(w->h, &w->e->opts, errbuf);
	curl_easy_setopt(w->h, CURLOPT_URL, url);
	curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, &hdr);
	curl_easy_setopt(w->h, CURLOPT_POSTFIELDS, req);
	curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(w->h, CURLOPT_WRITEDATA, w);
	errbuf[0] = 0;
	w->created = false;
	w->stream_rc = 0;
	gfs_buf_reset(&w->line);
	curl_multi_add_handle(w->multi, w->h);
	uint64_t t0 = gfs_now_ns(), tmo = (uint64_t)w->e->opts.timeout_ms * 1000000;
	w->rx_ns = t0;
	while (running && !watch_stopped(w)) {
		if (curl_multi_perform(w->multi, &running) != CURLM_OK)
			break;
		if (!w->created && !w->stream_rc && gfs_now_ns() - t0 > tmo) {
			/* connected, but no "created" within the request timeout:
			 * a member that accepts and never answers */
			w->stream_rc = -ETIMEDOUT;
			snprintf(w->why, sizeof(w->why), "no answer within %u ms", w->e->opts.timeout_ms);
			break;
		}
		if (w->created && !w->stream_rc &&
		    gfs_now_ns() - w->rx_ns >= (uint64_t)WATCH_IDLE_MS * 1000000) {
			/* silent: a quiet store, or a frozen member (invariant 5) */
			int arc = watch_alive(w, ep);
			if (arc && !watch_stopped(w)) {
				w->stream_rc = arc;
				break;
			}
			w->rx_ns = gfs_now_ns();
		}
		if (running)
			curl_multi_poll(w->multi, NULL, 0, w->created ? 1000 : 100, NULL);
	}
	int left;
	CURLMsg *m;
	while ((m = curl_multi_info_read(w->multi, &left))) {
		if (m->msg == CURLMSG_DONE && m->data.result != CURLE_OK && !w->stream_rc) {
			rc = etcd_curl_rc(m->data.result);
			etcd_curl_why(m->data.result, errbuf, w->why, sizeof(w->why));
		}
	}
	curl_multi_remove_handle(w->multi, w->h);
	free(req);
	if (w->stream_rc)
		return w->stream_rc;
	if (!rc && !watch_stopped(w)) {
		rc = -ECONNRESET;
		snprintf(w->why, sizeof(w->why), "the watch stream ended");
	}
	return rc;
}

/* Waits ms, or less if the watch is stopped meanwhile. */
static void watch_pause(struct gfs_etcd_watch *w, unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&w->lock);
}

static void *watch_main(void *arg)
{
	struct gfs_etcd_watch *w = arg;
	size_t n = w->e->url.n, fails = 0;
	unsigned backoff = WATCH_BACKOFF_MIN_MS;
	char msg[512];

	while (!watch_stopped(w)) {
		const char *ep = w->e->url.endpoints[w->ep];
		int rc = watch_stream(w, ep);
		if (watch_stopped(w))
			break;
		snprintf(msg, sizeof(msg), "etcd watch on %s: %s", ep, w->why);
		if (rc == -ESTALE) {
			watch_set_start(w, rc, msg);
			if (w->on_error)
				w->on_error(w->arg, rc, true, msg);
			break;
		}
		fails = w->created ? 0 : fails + 1;
		if (w->created)
			backoff = WATCH_BACKOFF_MIN_MS;
		pthread_mutex_lock(&w->lock);
		bool starting = w->start == 0;
		pthread_mutex_unlock(&w->lock);
		if (starting) {
			etcd_tried_add(&w->tries, w->ep, w->why, rc);
			if (fails >= n * w->e->opts.rounds) {
				struct gfs_diag d = {0};
				etcd_tried_diag(&w->tries, w->e, "/v3/watch", &d);
				watch_set_start(w, rc, d.msg);
				break;
			}
		}
		if (!starting && w->on_error)
			w->on_error(w->arg, rc, false, msg);
		w->ep = (w->ep + 1) % n;
		watch_pause(w, backoff);
		backoff = backoff * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

static void watch_free(struct gfs_etcd_watch *w)
{
	if (w->h)
		curl_easy_cleanup(w->h);
	if (w->alive)
		curl_easy_cleanup(w->alive);
	if (w->multi)
		curl_multi_cleanup(w->multi);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	gfs_buf_release(&w->line);
	free(w->tries.why);
	free(w->key);
	free(w->end);
	free(w);
}

static int watch_new(struct gfs_etcd *e, const void *key, size_t klen, const void *end,
		     size_t elen, struct gfs_etcd_watch **out)
{
	struct gfs_etcd_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	gfs_buf_init(&w->line);
	w->e = e;
	w->klen = klen;
	w->elen = elen;
	w->key = gfs_memdup(key, klen);
	w->end = end ? gfs_memdup(end, elen) : NULL;
	w->multi = curl_multi_init();
	w->h = curl_easy_init();
	w->alive = curl_easy_init();
	w->tries.n = e->url.n;
	w->tries.why = calloc(e->url.n, sizeof(*w->tries.why));
	if (!w->key || (end && !w->end) || !w->multi || !w->h || !w->alive || !w->tries.why) {
		watch_free(w);
		return -ENOMEM;
	}
	pthread_mutex_lock(&e->lock);
	w->ep = e->cur;
	pthread_mutex_unlock(&e->lock);
	*out = w;
	return 0;
}

int gfs_etcd_watch_start(struct gfs_etcd *e, const void *key, size_t klen,
			 const void *end, size_t elen, int64_t start_rev,
			 gfs_etcd_watch_fn on_events, gfs_etcd_watch_err_fn on_error,
			 void *arg, struct gfs_etcd_watch **out, struct gfs_diag *d)
{
	struct gfs_etcd_watch *w;
	int rc;

	*out = NULL;
	if ((rc = etcd_check_args(key, klen, d)))
		return rc;
	if (!on_events) {
		gfs_diag_set(d, "etcd watch: no event callback");
		return -EINVAL;
	}
	if (start_rev < 0) {
		gfs_diag_set(d, "etcd watch: start revision %" PRId64 " < 0", start_rev);
		return -EINVAL;
	}
	if ((rc = watch_new(e, key, klen, end, elen, &w)))
		return rc;
	w->next_rev = start_rev;
	w->on_events = on_events;
	w->on_error = on_error;
	w->arg = arg;
	if ((rc = -pthread_create(&w->thread, NULL, watch_main, w))) {
		watch_free(w);
		return rc;
	}
	pthread_mutex_lock(&w->lock);
	while (w->start == 0)
		pthread_cond_wait(&w->cond, &w->lock);
	rc = w->start < 0 ? w->start : 0;
	if (rc)
		gfs_diag_set(d, "%s", w->start_diag.msg);
	pthread_mutex_unlock(&w->lock);
	if (rc) {
		gfs_etcd_watch_stop(w);
		return rc;
	}
	*out = w;
	return 0;
}

void gfs_etcd_watch_stop(struct gfs_etcd_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	curl_multi_wakeup(w->multi);
	pthread_join(w->thread, NULL);
	watch_free(w);
}

void gfs_etcd_watch_alive_stats(struct gfs_etcd *e, uint64_t *checks, uint64_t *failed)
{
	*checks = atomic_load(&e->alive_checks);
	*failed = atomic_load(&e->alive_failed);
}
