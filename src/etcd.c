/* etcd.c - etcd's v3 API through its JSON gateway (see etcd.h).
 *
 * Every unary call is one HTTP POST of a JSON body to http://ENDPOINT/v3/...
 * (the gateway that etcd 3.4 serves on its client URL), answered by JSON in
 * which bytes are base64 and 64-bit integers are decimal strings.  An error
 * answer is {"error": ..., "message": ..., "code": <gRPC code>}.  Streaming
 * calls (lease keepalive, watch) answer with one JSON object a line,
 * {"result": {...}} or {"error": {...}}; a watch's stream stays open after
 * the request body ends, so the watch thread ends it itself.
 *
 * Invariants:
 *   1. A call tries endpoints from the one that answered last, in URL order,
 *      each at most opts.rounds times, and retries only what another member
 *      may serve (no connection, a timeout, gRPC Unavailable or
 *      DeadlineExceeded); any other answer is final.
 *   2. A failed call's diagnostic names every endpoint tried, with why.
 * The watch is in etcd_watch.c (its invariants there); what the two share
 * is in etcd_int.h.
 */
#include <config.h>

#include "etcd_int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>



/* ---- URL --------------------------------------------------------------- */

void gfs_etcd_url_release(struct gfs_etcd_url *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++)
		free(u->endpoints[i]);
	free(u->endpoints);
	free(u->prefix);
	memset(u, 0, sizeof(*u));
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/* Checks one "host:port" (len bytes at s); 0 or -EINVAL with d set. */
static int check_endpoint(const char *url, const char *s, size_t len, size_t idx,
			  struct gfs_diag *d)
{
	size_t h = 0, colon;
	if (len && s[0] == '[') {
		while (h < len && s[h] != ']')
			h++;
		if (h == len || h == 1)
			goto bad_host;
		h++;
	} else {
		while (h < len && host_char(s[h]))
			h++;
		if (h == 0)
			goto bad_host;
	}
	colon = h;
	if (colon == len || s[colon] != ':') {
		gfs_diag_set(d, "etcd URL '%s': endpoint %zu '%.*s' has no port (expected HOST:PORT, e.g. 127.0.0.1:2379)",
			     url, idx + 1, (int)len, s);
		return -EINVAL;
	}
	unsigned long port = 0;
	size_t p = colon + 1;
	for (; p < len && s[p] >= '0' && s[p] <= '9' && p - colon <= 5; p++)
		port = port * 10 + (unsigned long)(s[p] - '0');
	if (p != len || p == colon + 1 || port == 0 || port > 65535) {
		gfs_diag_set(d, "etcd URL '%s': endpoint %zu '%.*s': port must be a number 1..65535",
			     url, idx + 1, (int)len, s);
		return -EINVAL;
	}
	return 0;
bad_host:
	gfs_diag_set(d, "etcd URL '%s': endpoint %zu '%.*s': bad host (a name, an IPv4 address or [IPv6])",
		     url, idx + 1, (int)len, s);
	return -EINVAL;
}

static int check_prefix(const char *url, const char *p, struct gfs_diag *d)
{
	size_t n = strlen(p);
	if (n == 0 || n > 255) {
		gfs_diag_set(d, "etcd URL '%s': the key prefix after the endpoints must be 1..255 bytes (e.g. etcd://127.0.0.1:2379/graphs/mine)", url);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		bool sep = c == '/';
		if (sep && (i == 0 || i == n - 1 || p[i - 1] == '/')) {
			gfs_diag_set(d, "etcd URL '%s': prefix '%s' has an empty component", url, p);
			return -EINVAL;
		}
		if (!sep && !host_char(c) && c != '_') {
			gfs_diag_set(d, "etcd URL '%s': prefix '%s': byte %zu '%c' is not one of [A-Za-z0-9._-/]",
				     url, p, i + 1, c >= 0x20 && c < 0x7f ? c : '?');
			return -EINVAL;
		}
	}
	return 0;
}

static int url_add(struct gfs_etcd_url *u, const char *s, size_t len, size_t *cap)
{
	char **v = gfs_array_grow(u->endpoints, cap, u->n, sizeof(*v), 4);
	if (!v)
		return -ENOMEM;
	u->endpoints = v;
	if (!(v[u->n] = gfs_memdup(s, len)))
		return -ENOMEM;
	u->n++;
	return 0;
}

int gfs_etcd_url_parse(const char *url, struct gfs_etcd_url *out, struct gfs_diag *d)
{
	static const char scheme[] = "etcd://";
	struct gfs_etcd_url u = {0};
	size_t cap = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
		gfs_diag_set(d, "manifest URL '%s' is not etcd://HOST:PORT[,HOST:PORT...]/PREFIX", url);
		return -EINVAL;
	}
	const char *s = url + sizeof(scheme) - 1;
	const char *slash = strchr(s, '/');
	if (!slash) {
		gfs_diag_set(d, "etcd URL '%s' has no /PREFIX after the endpoints (the keys of this store live under it)", url);
		return -EINVAL;
	}
	for (const char *p = s; p <= slash;) {
		const char *q = p;
		while (q < slash && *q != ',')
			q++;
		if (q == p) {
			gfs_diag_set(d, "etcd URL '%s': empty endpoint %zu (expected HOST:PORT[,HOST:PORT...])", url, u.n + 1);
			rc = -EINVAL;
			goto out_fail;
		}
		if ((rc = check_endpoint(url, p, (size_t)(q - p), u.n, d)) ||
		    (rc = url_add(&u, p, (size_t)(q - p), &cap)))
			goto out_fail;
		p = q + 1;
	}
	if ((rc = check_prefix(url, slash + 1, d)))
		goto out_fail;
	if (!(u.prefix = gfs_strdup(slash + 1))) {
		rc = -ENOMEM;
		goto out_fail;
	}
	*out = u;
	return 0;
out_fail:
	gfs_etcd_url_release(&u);
	return rc;
}

/* ---- base64 (the gateway's bytes) ------------------------------------- */

static const char b64_alpha[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const void *src, size_t n)
{
	const unsigned char *s = src;
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		*o++ = b64_alpha[v >> 18];
		*o++ = b64_alpha[(v >> 12) & 63];
		*o++ = i + 1 < n ? b64_alpha[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? b64_alpha[v & 63] : '=';
	}
	*o = 0;
	return out;
}

static int b64_val(char c)
{
	const char *p = c ? strchr(b64_alpha, c) : NULL;
	return p ? (int)(p - b64_alpha) : -1;
}

/* Decodes padded standard base64 into a new buffer with a NUL after it. */
static int b64_decode(const char *s, size_t n, char **out, size_t *outlen)
{
	if (n % 4)
		return -EPROTO;
	char *buf = malloc(n / 4 * 3 + 1);
	size_t len = 0;
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++) {
			v[k] = b64_val(s[i + k]);
			bool pad = s[i + k] == '=' && i + 4 == n && k >= 2;
			if (pad && k == 2 && s[i + 3] != '=')
				pad = false;
			if (v[k] < 0 && !pad)
				goto out_bad;
		}
		buf[len++] = (char)(v[0] << 2 | v[1] >> 4);
		if (v[2] >= 0)
			buf[len++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
		if (v[3] >= 0)
			buf[len++] = (char)((v[2] & 3) << 6 | v[3]);
	}
	buf[len] = 0;
	*out = buf;
	*outlen = len;
	return 0;
out_bad:
	free(buf);
	return -EPROTO;
}

/* ---- JSON helpers ------------------------------------------------------ */

static json_t *j_bytes(const void *p, size_t n)
{
	char *s = b64_encode(p, n);
	json_t *j = s ? json_string(s) : NULL;
	free(s);
	return j;
}

json_t *etcd_j_int(int64_t v)
{
	char s[24];
	snprintf(s, sizeof(s), "%" PRId64, v);
	return json_string(s);
}

/* obj[name] = v, consuming v; -ENOMEM if v is NULL or the set fails. */
int etcd_j_set(json_t *obj, const char *name, json_t *v)
{
	return v && json_object_set_new(obj, name, v) == 0 ? 0 : -ENOMEM;
}

/* An int64 member: absent = 0 (the gateway omits zero values). */
int etcd_j_get_int(const json_t *obj, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(obj, name);
	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -EPROTO;
	const char *s = json_string_value(v);
	char *end;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -EPROTO;
	*out = x;
	return 0;
}

/* A bytes member (base64): absent = empty. */
static int j_get_bytes(const json_t *obj, const char *name, char **out, size_t *len)
{
	const json_t *v = json_object_get(obj, name);
	if (!v)
		return b64_decode("", 0, out, len);
	if (!json_is_string(v))
		return -EPROTO;
	return b64_decode(json_string_value(v), json_string_length(v), out, len);
}

int64_t etcd_header_rev(const json_t *obj)
{
	int64_t r = 0;
	(void)etcd_j_get_int(json_object_get(obj, "header"), "revision", &r);
	return r;
}

void gfs_etcd_kv_release(struct gfs_etcd_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

int etcd_parse_kv(const json_t *o, struct gfs_etcd_kv *kv)
{
	int rc;
	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(o))
		return -EPROTO;
	if ((rc = j_get_bytes(o, "key", &kv->key, &kv->key_len)) ||
	    (rc = j_get_bytes(o, "value", &kv->value, &kv->value_len)) ||
	    (rc = etcd_j_get_int(o, "create_revision", &kv->create_revision)) ||
	    (rc = etcd_j_get_int(o, "mod_revision", &kv->mod_revision)) ||
	    (rc = etcd_j_get_int(o, "version", &kv->version)) ||
	    (rc = etcd_j_get_int(o, "lease", &kv->lease))) {
		gfs_etcd_kv_release(kv);
		return rc;
	}
	return 0;
}

void gfs_etcd_page_release(struct gfs_etcd_page *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		gfs_etcd_kv_release(&p->kvs[i]);
	free(p->kvs);
	memset(p, 0, sizeof(*p));
}

/* A RangeResponse (or DeleteRangeResponse: "deleted" goes to count). */
static int parse_page(const json_t *o, struct gfs_etcd_page *p)
{
	const json_t *kvs = json_object_get(o, "kvs"), *more = json_object_get(o, "more");
	int rc;
	memset(p, 0, sizeof(*p));
	p->header_revision = etcd_header_rev(o);
	if ((rc = etcd_j_get_int(o, "count", &p->count)))
		return rc;
	if (!p->count && (rc = etcd_j_get_int(o, "deleted", &p->count)))
		return rc;
	p->more = json_is_true(more);
	if (!kvs)
		return 0;
	if (!json_is_array(kvs))
		return -EPROTO;
	size_t n = json_array_size(kvs);
	if (n && !(p->kvs = calloc(n, sizeof(*p->kvs))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if ((rc = etcd_parse_kv(json_array_get(kvs, i), &p->kvs[i]))) {
			gfs_etcd_page_release(p);
			return rc;
		}
		p->n++;
	}
	return 0;
}

/* ---- the client and its handles -------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

unsigned gfs_etcd_first_from_env(void)
{
	const char *f = getenv("GRAPHFS_ETCD_FIRST");
	uint64_t i;

	return f && !gfs_parse_u64(f, &i) && i < 1000 ? (unsigned)i : 0;
}

void gfs_etcd_set_timeouts(struct gfs_etcd *e, unsigned timeout_ms, unsigned rounds)
{
	if (timeout_ms)
		e->opts.timeout_ms = timeout_ms;
	if (rounds)
		e->opts.rounds = rounds;
}

int gfs_etcd_open(const char *url, const struct gfs_etcd_opts *opts,
		  struct gfs_etcd **out, struct gfs_diag *d)
{
	struct gfs_etcd *e;
	int rc;

	*out = NULL;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		gfs_diag_set(d, "libcurl: %s", curl_easy_strerror(curl_init_rc));
		return -ENOMEM;
	}
	if (!(e = calloc(1, sizeof(*e))))
		return -ENOMEM;
	if ((rc = gfs_etcd_url_parse(url, &e->url, d))) {
		free(e);
		return rc;
	}
	if (opts)
		e->opts = *opts;
	if (!e->opts.timeout_ms)
		e->opts.timeout_ms = 5000;
	if (!e->opts.connect_timeout_ms)
		e->opts.connect_timeout_ms = 1000;
	if (!e->opts.rounds)
		e->opts.rounds = 2;
	if (!e->opts.max_response)
		e->opts.max_response = (uint64_t)64 << 20;
	e->cur = e->opts.first_endpoint % e->url.n;
	pthread_mutex_init(&e->lock, NULL);
	*out = e;
	return 0;
}

void gfs_etcd_close(struct gfs_etcd *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->npool; i++)
		curl_easy_cleanup(e->pool[i]);
	pthread_mutex_destroy(&e->lock);
	gfs_etcd_url_release(&e->url);
	free(e);
}

const char *gfs_etcd_prefix(const struct gfs_etcd *e)
{
	return e->url.prefix;
}

const struct gfs_etcd_url *gfs_etcd_endpoints(const struct gfs_etcd *e)
{
	return &e->url;
}

static CURL *handle_take(struct gfs_etcd *e)
{
	CURL *h = NULL;
	pthread_mutex_lock(&e->lock);
	if (e->npool)
		h = e->pool[--e->npool];
	pthread_mutex_unlock(&e->lock);
	return h ? h : curl_easy_init();
}

/* Returns h to the pool (its live connection kept for the next call). */
static void handle_give(struct gfs_etcd *e, CURL *h)
{
	curl_easy_reset(h);
	pthread_mutex_lock(&e->lock);
	if (e->npool < ETCD_POOL_MAX) {
		e->pool[e->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&e->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* ---- one request ------------------------------------------------------- */

struct body {
	struct gfs_buf buf;
	uint64_t max;
	bool too_big;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;
	if (b->buf.len + len > b->max) {
		b->too_big = true;
		return 0;
	}
	return gfs_buf_append(&b->buf, p, len) ? 0 : len;
}

void etcd_set_common(CURL *h, const struct gfs_etcd_opts *o, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
}

/* POSTs body to http://ep/path; 0 with *status and the answer in b, or the
 * curl error with its text in errbuf. */
static CURLcode post_once(struct gfs_etcd *e, CURL *h, const char *ep, const char *path,
			  const char *req, struct body *b, long *status, char *errbuf)
{
	char url[600];
	struct curl_slist hdr = {(char *)"Content-Type: application/json", NULL};
	CURLcode c;

	snprintf(url, sizeof(url), "http://%s%s", ep, path);
	etcd_set_common(h, &e->opts, errbuf);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, &hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, req);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)e->opts.timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	errbuf[0] = 0;
	c = curl_easy_perform(h);
	*status = 0;
	if (c == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	return c;
}

int etcd_curl_rc(CURLcode c)
{
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST: return -EHOSTUNREACH;
	case CURLE_OUT_OF_MEMORY: return -ENOMEM;
	default: return -EIO;
	}
}

/* gRPC status code (etcd's error answers) to -errno. */
static int grpc_rc(int64_t code)
{
	switch (code) {
	case 3: return -EINVAL;    /* InvalidArgument: too many ops, too large */
	case 4: return -ETIMEDOUT; /* DeadlineExceeded */
	case 5: return -ENOENT;    /* NotFound: lease */
	case 7: case 16: return -EACCES;
	case 8: return -ENOSPC;    /* ResourceExhausted: quota */
	case 11: return -ESTALE;   /* OutOfRange: compacted / future revision */
	case 14: return -EAGAIN;   /* Unavailable: no leader */
	default: return -EIO;
	}
}

/* Whether another member may serve what this one could not (invariant 1). */
static bool retryable(int rc)
{
	return rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -EHOSTUNREACH ||
	       rc == -EAGAIN || rc == -EIO;
}

/* The error of an answer: {"error":"..","message":"..","code":N} (unary) or
 * {"error":{"grpc_code":N,"message":".."}} (stream).  NULL if none. */
const char *etcd_answer_error(const json_t *j, int *rc)
{
	const json_t *err = json_object_get(j, "error");
	int64_t code = 0;
	if (!err)
		return NULL;
	if (json_is_object(err)) {
		(void)etcd_j_get_int(err, "grpc_code", &code);
		*rc = grpc_rc(code);
		const char *m = json_string_value(json_object_get(err, "message"));
		return m ? m : "error";
	}
	(void)etcd_j_get_int(j, "code", &code);
	*rc = grpc_rc(code);
	const char *m = json_string_value(json_object_get(j, "message"));
	if (!m)
		m = json_string_value(err);
	return m ? m : "error";
}


void etcd_tried_add(struct etcd_attempt *a, size_t i, const char *why, int rc)
{
	a->rc = rc;
	a->tries++;
	snprintf(a->why[i], sizeof(a->why[i]), "%s", why);
}

/* A curl failure in a few words: curl's own text, or for a timeout how long. */
void etcd_curl_why(CURLcode c, const char *errbuf, char *out, size_t cap)
{
	if (c == CURLE_OPERATION_TIMEDOUT && errbuf[0])
		snprintf(out, cap, "%s", errbuf);
	else
		snprintf(out, cap, "%s", curl_easy_strerror(c));
}

/* "ep (why), ep (why)" of the endpoints tried, into d. */
void etcd_tried_diag(const struct etcd_attempt *a, const struct gfs_etcd *e, const char *path,
		       struct gfs_diag *d)
{
	struct gfs_buf b;
	gfs_buf_init(&b);
	for (size_t i = 0; i < a->n; i++)
		if (a->why[i][0])
			(void)gfs_buf_appendf(&b, "%s%s (%s)", b.len ? ", " : "",
					      e->url.endpoints[i], a->why[i]);
	if (a->rc == -EAGAIN || (a->rc == -ETIMEDOUT && b.p && strstr(b.p, "etcdserver")))
		gfs_diag_set(d, "etcd cannot serve POST %s now (no leader or no quorum?), %u attempts: %s",
			     path, a->tries, b.p ? b.p : "");
	else
		gfs_diag_set(d, "etcd unreachable, %u attempts: %s; check that etcd runs there, or the store's etcd:// endpoints",
			     a->tries, b.p ? b.p : "");
	gfs_buf_release(&b);
}

/* Interprets one answer of endpoint ep: 0 with *out, or an error (in d when
 * final; in a when another endpoint may serve it). */
static int take_answer(const char *ep, size_t i, const char *path, long status,
		       struct body *b, bool stream, json_t **out, struct etcd_attempt *a,
		       struct gfs_diag *d)
{
	json_error_t jerr;
	json_t *j = json_loadb(b->buf.p ? b->buf.p : "", b->buf.len,
			       stream ? JSON_DISABLE_EOF_CHECK : 0, &jerr);
	int rc = 0;
	if (!j || !json_is_object(j)) {
		json_decref(j);
		gfs_diag_set(d, "etcd at %s answered HTTP %ld to POST %s with no JSON (%s): is that an etcd 3.4+ client URL?",
			     ep, status, path, j ? "not an object" : jerr.text);
		return -EPROTO;
	}
	json_t *inner = stream ? json_object_get(j, "result") : NULL;
	const char *msg = etcd_answer_error(j, &rc);
	if (!msg && status != 200) {
		msg = "unexpected HTTP status";
		rc = -EPROTO;
	}
	if (msg) {
		if (rc == -EAGAIN || rc == -ETIMEDOUT) {
			etcd_tried_add(a, i, msg, rc);
			json_decref(j);
			return 1;
		}
		gfs_diag_set(d, "etcd at %s: POST %s: %s (HTTP %ld)", ep, path, msg, status);
		json_decref(j);
		return rc;
	}
	if (stream) {
		if (!json_is_object(inner)) {
			gfs_diag_set(d, "etcd at %s: POST %s: a stream answer without \"result\"", ep, path);
			json_decref(j);
			return -EPROTO;
		}
		json_incref(inner);
		json_decref(j);
		j = inner;
	}
	*out = j;
	return 0;
}

static void round_pause(unsigned round)
{
	struct timespec ts = {0, (long)round * 100 * 1000 * 1000};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* One attempt of a call on endpoint i: 0 with *out, 1 when another
 * endpoint may serve it (the reason recorded in a), or a final error. */
static int try_endpoint(struct gfs_etcd *e, CURL *h, size_t i, const char *path,
			const char *req, bool stream, json_t **out,
			struct etcd_attempt *a, struct gfs_diag *d)
{
	const char *ep = e->url.endpoints[i];
	char errbuf[CURL_ERROR_SIZE], why[300];
	struct body b = {.max = e->opts.max_response};
	long status;
	int rc;

	gfs_buf_init(&b.buf);
	CURLcode c = post_once(e, h, ep, path, req, &b, &status, errbuf);
	if (c == CURLE_OK) {
		rc = take_answer(ep, i, path, status, &b, stream, out, a, d);
	} else if (b.too_big) {
		gfs_diag_set(d, "etcd at %s: POST %s: answer over %" PRIu64 " bytes (page the range)",
			     ep, path, e->opts.max_response);
		rc = -EFBIG;
	} else {
		etcd_curl_why(c, errbuf, why, sizeof(why));
		etcd_tried_add(a, i, why, etcd_curl_rc(c));
		rc = 1;
	}
	gfs_buf_release(&b.buf);
	return rc;
}

/* POSTs req to path on the endpoints in turn (invariant 1); on success
 * *out is the answer (its "result" for a stream). Consumes req. */
static int call(struct gfs_etcd *e, const char *path, json_t *req, bool stream,
		json_t **out, struct gfs_diag *d)
{
	struct etcd_attempt a = {.rc = -EIO, .n = e->url.n};
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	CURL *h = body ? handle_take(e) : NULL;
	size_t n = e->url.n, start;
	int rc = -ENOMEM;

	json_decref(req);
	*out = NULL;
	if (!h)
		goto out;
	if (!(a.why = calloc(a.n, sizeof(*a.why))))
		goto out_handle;
	pthread_mutex_lock(&e->lock);
	start = e->cur;
	pthread_mutex_unlock(&e->lock);
	for (unsigned k = 0; k < e->opts.rounds * n; k++) {
		size_t i = (start + k) % n;
		if (k && k % n == 0)
			round_pause(k / n);
		rc = try_endpoint(e, h, i, path, body, stream, out, &a, d);
		if (rc == 0) {
			pthread_mutex_lock(&e->lock);
			e->cur = i;
			pthread_mutex_unlock(&e->lock);
		}
		if (rc <= 0)
			goto out_handle;
	}
	rc = retryable(a.rc) ? a.rc : -EIO;
	etcd_tried_diag(&a, e, path, d);
out_handle:
	handle_give(e, h);
out:
	free(a.why);
	free(body);
	return rc;
}

/* ---- KV ---------------------------------------------------------------- */

int gfs_etcd_prefix_end(const void *prefix, size_t len, char **end, size_t *end_len)
{
	const unsigned char *p = prefix;
	size_t n = len;
	while (n && p[n - 1] == 0xff)
		n--;
	if (!n) {
		*end = gfs_memdup("", 1);
		*end_len = 1;
		return *end ? 0 : -ENOMEM;
	}
	if (!(*end = gfs_memdup(prefix, n)))
		return -ENOMEM;
	(*end)[n - 1] = (char)(p[n - 1] + 1);
	*end_len = n;
	return 0;
}

/* A RangeRequest's JSON (also a txn's request_range). */
json_t *etcd_range_req(const void *key, size_t klen, const void *end, size_t elen,
			 int64_t rev, int64_t limit)
{
	json_t *r = json_object();
	if (!r || etcd_j_set(r, "key", j_bytes(key, klen)) ||
	    (end && etcd_j_set(r, "range_end", j_bytes(end, elen))) ||
	    (rev && etcd_j_set(r, "revision", etcd_j_int(rev))) ||
	    (limit && etcd_j_set(r, "limit", etcd_j_int(limit)))) {
		json_decref(r);
		return NULL;
	}
	return r;
}

int etcd_check_args(const void *key, size_t klen, struct gfs_diag *d)
{
	if (!key || !klen) {
		gfs_diag_set(d, "etcd: an empty key");
		return -EINVAL;
	}
	return 0;
}

static int range_call(struct gfs_etcd *e, const void *key, size_t klen,
		      const void *end, size_t elen, int64_t rev, int64_t limit,
		      bool desc, struct gfs_etcd_page *out, struct gfs_diag *d)
{
	json_t *ans, *req;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = etcd_check_args(key, klen, d)))
		return rc;
	req = etcd_range_req(key, klen, end, elen, rev, limit);
	if (req && desc &&
	    (etcd_j_set(req, "sort_order", json_string("DESCEND")) ||
	     etcd_j_set(req, "sort_target", json_string("KEY")))) {
		json_decref(req);
		req = NULL;
	}
	rc = call(e, "/v3/kv/range", req, false, &ans, d);
	if (rc)
		return rc;
	rc = parse_page(ans, out);
	if (rc == -EPROTO)
		gfs_diag_set(d, "etcd: a range answer that is not etcd's RangeResponse");
	json_decref(ans);
	return rc;
}

int gfs_etcd_range(struct gfs_etcd *e, const void *key, size_t klen,
		   const void *end, size_t elen, int64_t rev, int64_t limit,
		   struct gfs_etcd_page *out, struct gfs_diag *d)
{
	return range_call(e, key, klen, end, elen, rev, limit, false, out, d);
}

int gfs_etcd_range_desc(struct gfs_etcd *e, const void *key, size_t klen,
			const void *end, size_t elen, int64_t rev, int64_t limit,
			struct gfs_etcd_page *out, struct gfs_diag *d)
{
	return range_call(e, key, klen, end, elen, rev, limit, true, out, d);
}

int gfs_etcd_get(struct gfs_etcd *e, const void *key, size_t klen, int64_t rev,
		 struct gfs_etcd_kv *kv, bool *found, int64_t *hrev, struct gfs_diag *d)
{
	struct gfs_etcd_page p;
	int rc = gfs_etcd_range(e, key, klen, NULL, 0, rev, 0, &p, d);

	memset(kv, 0, sizeof(*kv));
	*found = false;
	if (rc)
		return rc;
	if (hrev)
		*hrev = p.header_revision;
	if (p.n) {
		*kv = p.kvs[0];
		memset(&p.kvs[0], 0, sizeof(p.kvs[0]));
		*found = true;
	}
	gfs_etcd_page_release(&p);
	return 0;
}

/* The key just after k: k + "\0" (the next page's start). */
static char *key_after(const struct gfs_etcd_kv *kv, size_t *len)
{
	char *s = malloc(kv->key_len + 1);
	if (!s)
		return NULL;
	memcpy(s, kv->key, kv->key_len);
	s[kv->key_len] = 0;
	*len = kv->key_len + 1;
	return s;
}

int gfs_etcd_range_each(struct gfs_etcd *e, const void *key, size_t klen,
			const void *end, size_t elen, int64_t rev, int64_t page_size,
			gfs_etcd_kv_fn fn, void *arg, int64_t *at_rev,
			struct gfs_diag *d)
{
	char *from = NULL;
	size_t flen = klen;
	int rc;

	if (page_size <= 0)
		page_size = 512;
	if ((rc = etcd_check_args(key, klen, d)) || !(from = gfs_memdup(key, klen)))
		return rc ? rc : -ENOMEM;
	for (;;) {
		struct gfs_etcd_page p;
		if ((rc = gfs_etcd_range(e, from, flen, end, elen, rev, page_size, &p, d)))
			break;
		if (!rev)
			rev = p.header_revision;
		for (size_t i = 0; i < p.n && !rc; i++)
			rc = fn(arg, &p.kvs[i]);
		bool more = p.more && p.n;
		free(from);
		from = more && !rc ? key_after(&p.kvs[p.n - 1], &flen) : NULL;
		gfs_etcd_page_release(&p);
		if (rc || !more)
			break;
		if (!from) {
			rc = -ENOMEM;
			break;
		}
	}
	free(from);
	if (!rc && at_rev)
		*at_rev = rev;
	return rc;
}

int gfs_etcd_put(struct gfs_etcd *e, const void *key, size_t klen,
		 const void *val, size_t vlen, int64_t lease, int64_t *hrev,
		 struct gfs_diag *d)
{
	struct gfs_etcd_op op = {.kind = GFS_ETCD_PUT, .key = key, .key_len = klen,
				 .value = val, .value_len = vlen, .lease = lease};
	struct gfs_etcd_txn_result r;
	int rc = gfs_etcd_txn(e, NULL, 0, &op, 1, NULL, 0, &r, d);
	if (!rc && hrev)
		*hrev = r.header_revision;
	if (!rc)
		gfs_etcd_txn_result_release(&r);
	return rc;
}

int gfs_etcd_delete(struct gfs_etcd *e, const void *key, size_t klen,
		    const void *end, size_t elen, int64_t *deleted,
		    int64_t *hrev, struct gfs_diag *d)
{
	struct gfs_etcd_op op = {.kind = GFS_ETCD_DELETE, .key = key, .key_len = klen,
				 .end = end, .end_len = elen};
	struct gfs_etcd_txn_result r;
	int rc = gfs_etcd_txn(e, NULL, 0, &op, 1, NULL, 0, &r, d);
	if (rc)
		return rc;
	if (hrev)
		*hrev = r.header_revision;
	if (deleted)
		*deleted = r.n ? r.pages[0].count : 0;
	gfs_etcd_txn_result_release(&r);
	return 0;
}

/* ---- txn --------------------------------------------------------------- */

static json_t *cmp_json(const struct gfs_etcd_cmp *c)
{
	static const char *const targets[] = {"VALUE", "VERSION", "CREATE", "MOD"};
	static const char *const results[] = {"EQUAL", "NOT_EQUAL", "LESS", "GREATER"};
	static const char *const fields[] = {"value", "version", "create_revision", "mod_revision"};
	json_t *j = json_object();
	if (!j || etcd_j_set(j, "target", json_string(targets[c->target])) ||
	    etcd_j_set(j, "result", json_string(results[c->result])) ||
	    etcd_j_set(j, "key", j_bytes(c->key, c->key_len)) ||
	    (c->end && etcd_j_set(j, "range_end", j_bytes(c->end, c->end_len))) ||
	    etcd_j_set(j, fields[c->target], c->target == GFS_ETCD_VALUE ?
		  j_bytes(c->value, c->value_len) : etcd_j_int(c->num))) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static json_t *op_json(const struct gfs_etcd_op *o)
{
	json_t *r = NULL, *j = json_object();
	const char *name = NULL;
	switch (o->kind) {
	case GFS_ETCD_PUT:
		name = "request_put";
		r = json_object();
		if (r && (etcd_j_set(r, "key", j_bytes(o->key, o->key_len)) ||
			  etcd_j_set(r, "value", j_bytes(o->value, o->value_len)) ||
			  (o->lease && etcd_j_set(r, "lease", etcd_j_int(o->lease))))) {
			json_decref(r);
			r = NULL;
		}
		break;
	case GFS_ETCD_DELETE:
		name = "request_delete_range";
		r = etcd_range_req(o->key, o->key_len, o->end, o->end_len, 0, 0);
		break;
	case GFS_ETCD_RANGE:
		name = "request_range";
		r = etcd_range_req(o->key, o->key_len, o->end, o->end_len, 0, o->limit);
		break;
	}
	if (!j || etcd_j_set(j, name, r)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static int ops_json(json_t *req, const char *name, const struct gfs_etcd_op *ops, size_t n,
		    struct gfs_diag *d)
{
	json_t *a = json_array();
	int rc = etcd_j_set(req, name, a);
	for (size_t i = 0; i < n && !rc; i++) {
		if (!ops[i].key || !ops[i].key_len || ops[i].kind > GFS_ETCD_RANGE) {
			gfs_diag_set(d, "etcd txn: %s op %zu has no key or a bad kind", name, i + 1);
			return -EINVAL;
		}
		json_t *o = op_json(&ops[i]);
		rc = o && json_array_append_new(a, o) == 0 ? 0 : -ENOMEM;
	}
	return rc;
}

static json_t *txn_req(const struct gfs_etcd_cmp *cmps, size_t ncmp,
		       const struct gfs_etcd_op *ok, size_t nok,
		       const struct gfs_etcd_op *fail, size_t nfail, int *rc,
		       struct gfs_diag *d)
{
	json_t *req = json_object(), *ca = json_array();
	*rc = req ? etcd_j_set(req, "compare", ca) : -ENOMEM;
	for (size_t i = 0; i < ncmp && !*rc; i++) {
		if (!cmps[i].key || !cmps[i].key_len || cmps[i].target > GFS_ETCD_MOD ||
		    cmps[i].result > GFS_ETCD_GT) {
			gfs_diag_set(d, "etcd txn: compare %zu has no key or a bad target", i + 1);
			*rc = -EINVAL;
			break;
		}
		json_t *c = cmp_json(&cmps[i]);
		*rc = c && json_array_append_new(ca, c) == 0 ? 0 : -ENOMEM;
	}
	if (!*rc)
		*rc = ops_json(req, "success", ok, nok, d);
	if (!*rc)
		*rc = ops_json(req, "failure", fail, nfail, d);
	if (*rc) {
		json_decref(req);
		return NULL;
	}
	return req;
}

void gfs_etcd_txn_result_release(struct gfs_etcd_txn_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		gfs_etcd_page_release(&r->pages[i]);
	free(r->pages);
	memset(r, 0, sizeof(*r));
}

static int parse_txn(const json_t *ans, struct gfs_etcd_txn_result *r)
{
	const json_t *resps = json_object_get(ans, "responses");
	size_t n = json_array_size(resps);
	int rc = 0;

	r->succeeded = json_is_true(json_object_get(ans, "succeeded"));
	r->header_revision = etcd_header_rev(ans);
	if (n && !(r->pages = calloc(n, sizeof(*r->pages))))
		return -ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		const json_t *o = json_array_get(resps, i), *x;
		if ((x = json_object_get(o, "response_range")) ||
		    (x = json_object_get(o, "response_delete_range")))
			rc = parse_page(x, &r->pages[i]);
		else if ((x = json_object_get(o, "response_put")))
			r->pages[i].header_revision = etcd_header_rev(x);
		else
			rc = -EPROTO;
		if (!rc)
			r->n++;
	}
	return rc;
}

int gfs_etcd_txn(struct gfs_etcd *e, const struct gfs_etcd_cmp *cmps, size_t ncmp,
		 const struct gfs_etcd_op *ok, size_t nok,
		 const struct gfs_etcd_op *fail, size_t nfail,
		 struct gfs_etcd_txn_result *res, struct gfs_diag *d)
{
	struct gfs_etcd_txn_result r = {0};
	json_t *ans, *req;
	int rc;

	if (res)
		memset(res, 0, sizeof(*res));
	if (!(req = txn_req(cmps, ncmp, ok, nok, fail, nfail, &rc, d)))
		return rc;
	if ((rc = call(e, "/v3/kv/txn", req, false, &ans, d)))
		return rc;
	rc = parse_txn(ans, &r);
	json_decref(ans);
	if (rc) {
		gfs_diag_set(d, "etcd: a txn answer that is not etcd's TxnResponse");
		gfs_etcd_txn_result_release(&r);
		return rc;
	}
	if (res)
		*res = r;
	else
		gfs_etcd_txn_result_release(&r);
	return 0;
}

/* ---- leases ------------------------------------------------------------ */

static json_t *id_req(const char *name, int64_t v)
{
	json_t *r = json_object();
	if (r && etcd_j_set(r, name, etcd_j_int(v))) {
		json_decref(r);
		return NULL;
	}
	return r;
}

int gfs_etcd_lease_grant(struct gfs_etcd *e, int64_t ttl_s, int64_t *id,
			 int64_t *granted, struct gfs_diag *d)
{
	json_t *ans;
	int rc;

	*id = 0;
	if (ttl_s <= 0) {
		gfs_diag_set(d, "etcd lease: TTL %" PRId64 " s (must be > 0)", ttl_s);
		return -EINVAL;
	}
	if ((rc = call(e, "/v3/lease/grant", id_req("TTL", ttl_s), false, &ans, d)))
		return rc;
	const char *err = json_string_value(json_object_get(ans, "error"));
	if (err && *err) {
		gfs_diag_set(d, "etcd lease grant: %s", err);
		rc = -EIO;
	} else if (etcd_j_get_int(ans, "ID", id) || etcd_j_get_int(ans, "TTL", granted) || !*id) {
		gfs_diag_set(d, "etcd lease grant: an answer without ID or TTL");
		rc = -EPROTO;
	}
	json_decref(ans);
	return rc;
}

int gfs_etcd_lease_keepalive(struct gfs_etcd *e, int64_t id, int64_t *ttl,
			     struct gfs_diag *d)
{
	json_t *ans;
	int rc;

	*ttl = 0;
	if ((rc = call(e, "/v3/lease/keepalive", id_req("ID", id), true, &ans, d)))
		return rc;
	if (etcd_j_get_int(ans, "TTL", ttl))
		rc = -EPROTO;
	else if (*ttl <= 0) {
		*ttl = 0;
		gfs_diag_set(d, "etcd lease %" PRIx64 " has expired or was revoked", (uint64_t)id);
		rc = -ENOENT;
	}
	json_decref(ans);
	return rc;
}

int gfs_etcd_lease_revoke(struct gfs_etcd *e, int64_t id, struct gfs_diag *d)
{
	json_t *ans;
	int rc = call(e, "/v3/lease/revoke", id_req("ID", id), false, &ans, d);
	json_decref(ans);
	return rc;
}

int gfs_etcd_lease_ttl(struct gfs_etcd *e, int64_t id, int64_t *ttl,
		       int64_t *granted, struct gfs_diag *d)
{
	json_t *ans;
	int64_t g = 0;
	int rc;

	*ttl = -1;
	if ((rc = call(e, "/v3/lease/timetolive", id_req("ID", id), false, &ans, d)))
		return rc;
	if (etcd_j_get_int(ans, "TTL", ttl) || etcd_j_get_int(ans, "grantedTTL", &g))
		rc = -EPROTO;
	if (granted)
		*granted = g;
	json_decref(ans);
	return rc;
}
