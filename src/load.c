/* load.c - one JSONL stream -> one graph version (DESIGN.md §1, §3).
 *
 * Phases, in order; nothing is visible before the last:
 *   1. parse    every line through the codec, chunks of lines on every
 *               core (load_parse.c), rows handed over in file order; the
 *               canonical line goes to a spool file (O_TMPFILE in
 *               STORE/staging: it vanishes on a crash), a small record per
 *               row stays in memory
 *   2. sort     records by (type, id, line); merge/overwrite keep the last
 *               line of an id, append rejects a second one
 *   3. lock     heal first (recover.c resolves dead writers' sidecars on
 *               our tables), then flock: LOCK_EX on written tables, LOCK_SH
 *               on tables validation reads (healing again if a writer died
 *               in between); then the pins are read
 *   4. validate against those pins: append conflicts, @unique, endpoints,
 *               @card, edges an overwrite would leave dangling
 *   5. write    arm sidecar -> one new version per written table ->
 *               confirm -> CAS publish (which deletes the sidecar); on a
 *               failure after arming, recovery's code undoes or finishes
 *               our own operation (finish_failed)
 *
 * Memory: per row one struct ent (40 bytes) plus its id, endpoints and
 * unique keys in the arena (a varint length each, one byte below 128, +
 * the bytes).  That is all that grows with the input: the line is on disk,
 * and a table builder holds a bounded batch of ops (table.c, "builder").
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "failpoints.h"
#include "graph.h"
#include "load_int.h"
#include "load_parse.h"
#include "lock.h"

struct ent {
	uint64_t lineno;
	uint64_t spool_off;
	uint64_t arena_off; /* id, src, dst, n_uk, ukeys: each a varint len + bytes */
	uint32_t line_len;
	uint32_t type : 31;        /* index in the schema's types */
	uint32_t id_generated : 1; /* no data.id: messages name the endpoints */
	uint32_t data_off, data_len;
};

struct span {
	const char *p;
	size_t len;
};

struct typestate {
	size_t first, count;  /* range in ents after sort */
	bool written, read;   /* EX / SH */
	uint32_t pin;
	uint32_t next;        /* the version a written table gets: pin+1, or
				 head+1 above settled versions (check_orphans) */
	struct gfs_tver *tv;
	char table[GFS_TABLE_NAME_MAX];
};

struct loader {
	struct gfs_graph *g;
	const struct gfs_schema *s;
	const struct gfs_load_opts *o;
	struct gfs_diag *d;
	struct gfs_gv *gv;
	int spool_fd;
	uint64_t spool_len;     /* bytes spooled, buffered ones included */
	struct gfs_buf spool_w; /* write buffer in front of spool_fd */
	struct ent *ents;
	size_t n, cap;
	struct gfs_buf arena;
	struct typestate *ts; /* one per schema type */
	uint64_t lines, bytes;
	int phase;              /* the phase being timed, -1 none */
	uint64_t phase_t0, phase_ns[GFS_PHASE__COUNT];
	char op_id[GFS_ULID_LEN + 1];
	struct gfs_lockset *locks;
};

static const char *const mode_names[] = { "merge", "append", "overwrite" };

int gfs_load_mode_parse(const char *s, enum gfs_load_mode *out)
{
	for (size_t i = 0; i < GFS_ARRAY_SIZE(mode_names); i++)
		if (!strcmp(s, mode_names[i])) {
			*out = (enum gfs_load_mode)i;
			return 0;
		}
	return -EINVAL;
}

const char *gfs_load_phase_name(enum gfs_load_phase p)
{
	static const char *const names[] = { "parse", "sort", "lock",
					     "validate", "write", "publish" };
	return (unsigned)p < GFS_ARRAY_SIZE(names) ? names[p] : "?";
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Ends the phase being timed (if any) and starts ph; -1 ends the last. */
static void phase_switch(struct loader *L, int ph)
{
	uint64_t now = mono_ns();

	if (L->phase >= 0)
		L->phase_ns[L->phase] += now - L->phase_t0;
	L->phase = ph;
	L->phase_t0 = now;
}

static void progress(struct loader *L, enum gfs_load_phase ph, uint64_t rows)
{
	if ((int)ph != L->phase)
		phase_switch(L, (int)ph);
	if (L->o->progress)
		L->o->progress(ph, L->bytes, rows, L->o->progress_arg);
}

/* ---- the arena: variable-length parts of each record ------------------- */

/* Lengths are LEB128 varints: ids and keys are mostly under 128 bytes, so
 * a length takes one byte instead of four (12 bytes a row). */
static int arena_varint(struct gfs_buf *a, uint32_t v)
{
	char b[5];
	size_t n = 0;

	do {
		b[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return gfs_buf_append(a, b, n);
}

static const char *varint_get(const char *p, uint32_t *v)
{
	uint32_t x = 0;
	unsigned sh = 0;
	unsigned char c;

	do {
		c = (unsigned char)*p++;
		x |= (uint32_t)(c & 0x7f) << sh;
		sh += 7;
	} while (c & 0x80);
	*v = x;
	return p;
}

static int arena_put(struct gfs_buf *a, const char *p, size_t len)
{
	int rc = arena_varint(a, (uint32_t)len);

	return rc ? rc : gfs_buf_append(a, p, len);
}

/* Part k of a record: 0 id, 1 src, 2 dst, 3+j unique key j.  Slot 3 of
 * the layout is the count of unique keys, which has no payload. */
static struct span ent_part(const struct loader *L, const struct ent *e,
			    unsigned k)
{
	const char *p = L->arena.p + e->arena_off;
	unsigned want = k < 3 ? k : k + 1;
	uint32_t l;

	for (unsigned i = 0;; i++) {
		p = varint_get(p, &l);
		if (i == 3)
			continue;
		if (i == want)
			return (struct span){ p, l };
		p += l;
	}
}

static struct span ent_id(const struct loader *L, const struct ent *e)
{
	return ent_part(L, e, 0);
}

static int span_cmp(struct span a, struct span b)
{
	int c = memcmp(a.p, b.p, a.len < b.len ? a.len : b.len);

	if (c)
		return c;
	return a.len < b.len ? -1 : a.len > b.len;
}

static bool span_eq(struct span a, const char *p, size_t len)
{
	return a.len == len && !memcmp(a.p, p, len);
}

/* Printable excerpt of an id for messages (NULs and controls as '?'). */
static const char *show(struct span s, char *buf, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < s.len && k + 4 < n; i++)
		buf[k++] = (unsigned char)s.p[i] < 0x20 ? '?' : s.p[i];
	if (k + 4 >= n && s.len > k) {
		memcpy(buf + k, "...", 3);
		k += 3;
	}
	buf[k] = '\0';
	return buf;
}

/* ---- phase 1: parse ---------------------------------------------------- */

/* Row lines go to the spool through a 1 MiB buffer: one write per row
 * costs more than the parsing. */
#define SPOOL_WBUF ((size_t)1 << 20)

static int spool_flush(struct loader *L)
{
	int rc = gfs_write_all(L->spool_fd, L->spool_w.p, L->spool_w.len);

	gfs_buf_reset(&L->spool_w);
	return rc;
}

static int spool_write(struct loader *L, const char *p, size_t len)
{
	int rc = 0;

	if (L->spool_w.len + len > SPOOL_WBUF)
		rc = spool_flush(L);
	if (!rc && len >= SPOOL_WBUF)
		return gfs_write_all(L->spool_fd, p, len);
	return rc ? rc : gfs_buf_append(&L->spool_w, p, len);
}

static int add_ent(struct loader *L, const struct gfs_rowin *r, uint64_t lineno)
{
	struct ent *e;
	uint32_t nuk = (uint32_t)r->n_ukeys;
	int rc;

	e = gfs_array_grow(L->ents, &L->cap, L->n, sizeof *e, 4096);
	if (!e)
		return -ENOMEM;
	L->ents = e;
	e = &L->ents[L->n];
	e->lineno = lineno;
	e->spool_off = L->spool_len;
	e->arena_off = L->arena.len;
	e->line_len = (uint32_t)r->line.len;
	e->type = (uint32_t)r->type_idx & 0x7fffffffu;
	e->id_generated = r->id_generated;
	e->data_off = (uint32_t)r->data_off;
	e->data_len = (uint32_t)r->data_len;
	rc = arena_put(&L->arena, r->id.p, r->id.len);
	if (!rc)
		rc = arena_put(&L->arena, r->src.p, r->src.len);
	if (!rc)
		rc = arena_put(&L->arena, r->dst.p, r->dst.len);
	if (!rc)
		rc = arena_varint(&L->arena, nuk);
	for (size_t k = 0; !rc && k < r->n_ukeys; k++)
		rc = arena_put(&L->arena, r->ukeys[k].p, r->ukeys[k].len);
	if (!rc)
		rc = spool_write(L, r->line.p, r->line.len);
	if (rc)
		return rc;
	L->spool_len += r->line.len;
	L->n++;
	return 0;
}

/* The parse runs on every core (load_parse.c) and hands us the rows in
 * file order. */
static int parsed_row(void *arg, const struct gfs_rowin *r, uint64_t lineno)
{
	return add_ent(arg, r, lineno);
}

static void parsed_chunk(void *arg, uint64_t bytes, uint64_t lines)
{
	struct loader *L = arg;

	(void)lines;
	L->bytes = bytes;
	progress(L, GFS_PHASE_PARSE, L->n);
}

static int parse_stream(struct loader *L, int fd)
{
	struct gfs_parse_opts po = {
		.s = L->s, .source = L->o->source, .threads = L->o->threads,
		.row = parsed_row, .tick = parsed_chunk, .arg = L,
	};
	struct gfs_parse_stats st;
	int rc = gfs_load_parse(fd, &po, &st, L->d);

	L->lines = st.lines;
	L->bytes = st.bytes;
	return rc;
}

/* ---- phase 2: sort and deduplicate ------------------------------------- */

static int ent_cmp(const void *a, const void *b, void *arg)
{
	const struct loader *L = arg;
	const struct ent *x = a, *y = b;
	int c;

	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	c = span_cmp(ent_id(L, x), ent_id(L, y));
	if (c)
		return c;
	return x->lineno < y->lineno ? -1 : x->lineno > y->lineno;
}

static int dedupe(struct loader *L)
{
	size_t w = 0;
	char b1[80];

	for (size_t i = 0; i < L->n; i++) {
		const struct ent *e = &L->ents[i];
		bool dup = w > 0 && L->ents[w - 1].type == e->type &&
			   span_cmp(ent_id(L, &L->ents[w - 1]), ent_id(L, e)) == 0;
		if (dup && L->o->mode == GFS_LOAD_APPEND) {
			gfs_diag_set(L->d, "line %" PRIu64 ": %s '%s': id already given on line %" PRIu64 " (append inserts each id once)",
				     e->lineno, L->s->types[e->type].name,
				     show(ent_id(L, e), b1, sizeof b1), L->ents[w - 1].lineno);
			return GFS_ECONFLICT;
		}
		if (dup) /* merge / overwrite: the last line wins */
			w--;
		L->ents[w++] = *e;
	}
	L->n = w;
	for (size_t i = 0; i < L->n; i++) {
		struct typestate *t = &L->ts[L->ents[i].type];
		if (!t->count++)
			t->first = i;
	}
	return 0;
}

static int sort_phase(struct loader *L)
{
	progress(L, GFS_PHASE_SORT, L->n);
	qsort_r(L->ents, L->n, sizeof *L->ents, ent_cmp, L);
	return dedupe(L);
}

/* The record of type t with this id, or NULL (binary search). */
static const struct ent *find_ent(const struct loader *L, size_t t,
				  const char *id, size_t len)
{
	size_t lo = L->ts[t].first, hi = lo + L->ts[t].count;
	struct span key = { id, len };

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = span_cmp(ent_id(L, &L->ents[mid]), key);
		if (!c)
			return &L->ents[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}


/* ---- phase 3: locks and pins ------------------------------------------- */

/* Which tables this load writes (EX) and reads (SH). */
static void plan_tables(struct loader *L)
{
	const struct gfs_schema *s = L->s;

	for (size_t i = 0; i < s->n_types; i++) {
		gfs_typedef_table(&s->types[i], L->ts[i].table, sizeof L->ts[i].table);
		L->ts[i].written = L->ts[i].count > 0;
	}
	for (size_t i = 0; i < s->n_types; i++) {
		const struct gfs_typedef *t = &s->types[i];
		if (!L->ts[i].written)
			continue;
		if (t->is_edge) {
			L->ts[t->from_idx].read = true;
			L->ts[t->to_idx].read = true;
		}
		if (t->is_edge || L->o->mode != GFS_LOAD_OVERWRITE)
			continue;
		/* An overwrite of a node table may orphan edges elsewhere. */
		for (size_t k = 0; k < s->n_types; k++) {
			const struct gfs_typedef *e = &s->types[k];
			if (e->is_edge && (e->from_idx == i || e->to_idx == i))
				L->ts[k].read = true;
		}
	}
}

static bool involved(const struct typestate *t)
{
	return t->written || t->read;
}

/* Refuses while a head is above its pin with no sidecar naming it (an
 * orphan: 'graphctl recover' compensates it) or below it (a violation).
 * Versions above the pin that resolved operations settled (compensations
 * of a roll back that lost its publish, docs/recovery.md) are no orphan:
 * the table's next version goes above them.  Called under the locks,
 * after healing, with the pins just read. */
static int check_orphans(struct loader *L)
{
	int rc = 0;

	for (size_t t = 0; !rc && t < L->s->n_types; t++) {
		struct typestate *ts = &L->ts[t];
		uint32_t h = 0;
		bool settled = false;
		if (!involved(ts))
			continue;
		ts->next = ts->pin + 1;
		rc = gfs_table_head(gfs_graph_tables(L->g), ts->table, &h);
		if (!rc && h > ts->pin)
			rc = gfs_settled_above(L->g, ts->table, ts->pin, h, &settled);
		if (!rc && settled)
			ts->next = h + 1;
		else if (!rc && h != ts->pin) {
			gfs_diag_set(L->d, "recovery needed: table '%s' has version %u but the manifest shows %u (an orphan no sidecar names); run 'graphctl recover %s'",
				     ts->table, h, ts->pin, gfs_graph_dir(L->g));
			rc = h > ts->pin ? GFS_ERECOVERY : GFS_EVIOLATION;
		}
	}
	return rc;
}

/* Does sidecar sc conflict with this load: it writes a table we touch, or
 * touches one we write?  (Two readers of one table do not conflict.) */
static bool conflicts(const struct loader *L, const struct gfs_sidecar *sc)
{
	for (size_t k = 0; k < sc->n_tables; k++)
		for (size_t t = 0; t < L->s->n_types; t++)
			if (involved(&L->ts[t]) &&
			    (sc->tables[k].written || L->ts[t].written) &&
			    !strcmp(sc->tables[k].table, L->ts[t].table))
				return true;
	return false;
}

/* Under our locks: a conflicting sidecar belongs to a dead writer (a live
 * one would hold a lock we hold), one that died after we healed. */
static int dead_sidecar(struct loader *L, bool *found)
{
	struct gfs_sidecar **scs = NULL;
	size_t nsc = 0;
	int rc = gfs_manifest_sidecar_list(gfs_graph_manifest(L->g), &scs, &nsc);

	*found = false;
	for (size_t i = 0; !rc && i < nsc; i++)
		*found = *found || (!scs[i]->raw && conflicts(L, scs[i]));
	for (size_t i = 0; i < nsc; i++)
		gfs_sidecar_free(scs[i]);
	free(scs);
	return rc;
}

/* Heal first (DESIGN.md §3): resolve dead writers' sidecars whose locks
 * conflict with ours (EX against anything, SH against EX), holding none of
 * our locks.  A writer whose locks are compatible with ours is not waited
 * for, even when it is stopped. */
static int heal(struct loader *L)
{
	const char **names = calloc(L->s->n_types + 1, sizeof *names);
	enum gfs_lock_mode *modes = calloc(L->s->n_types + 1, sizeof *modes);
	size_t n = 0;
	int rc = names && modes ? 0 : -ENOMEM;

	for (size_t t = 0; !rc && t < L->s->n_types; t++)
		if (involved(&L->ts[t])) {
			names[n] = L->ts[t].table;
			modes[n++] = L->ts[t].written ? GFS_LOCK_EX : GFS_LOCK_SH;
		}
	if (!rc)
		rc = gfs_heal_tables(L->g, names, modes, n, L->d);
	free(names);
	free(modes);
	return rc;
}

static int take_locks(struct loader *L)
{
	const char **names = calloc(L->s->n_types + 1, sizeof *names);
	enum gfs_lock_mode *modes = calloc(L->s->n_types + 1, sizeof *modes);
	size_t n = 0;
	int rc = 0;

	if (!names || !modes)
		rc = -ENOMEM;
	for (size_t t = 0; !rc && t < L->s->n_types; t++)
		if (involved(&L->ts[t])) {
			names[n] = L->ts[t].table;
			modes[n++] = L->ts[t].written ? GFS_LOCK_EX : GFS_LOCK_SH;
		}
	/* Test builds only: skipping the locks stands for an expired lease. */
	if (!rc && !gfs_fp_hit(GFS_FP_COMMIT_SKIP_LOCKS))
		rc = gfs_lock_tables(gfs_graph_dir(L->g), names, modes, n,
				     GFS_LOCK_WAIT, &L->locks);
	if (rc)
		gfs_diag_set(L->d, "cannot lock tables: %s", gfs_strerror(rc));
	free(names);
	free(modes);
	return rc;
}

static int read_pins(struct loader *L)
{
	struct gfs_manifest *m = gfs_graph_manifest(L->g);
	int rc;

	gfs_gv_free(L->gv);
	L->gv = NULL;
	rc = gfs_manifest_head(m, &L->gv);
	if (rc)
		return rc;
	if (strcmp(L->gv->schema_id, L->s->id)) {
		gfs_diag_set(L->d, "the schema changed while the file was read; load again");
		return GFS_ECAS;
	}
	for (size_t t = 0; t < L->s->n_types; t++)
		L->ts[t].pin = gfs_gv_pin(L->gv, L->ts[t].table);
	return 0;
}

static int open_pinned(struct loader *L)
{
	int rc = 0;

	for (size_t t = 0; !rc && t < L->s->n_types; t++)
		if (involved(&L->ts[t]))
			rc = gfs_tver_open(gfs_graph_tables(L->g), L->ts[t].table,
					   L->ts[t].pin, &L->ts[t].tv, L->d);
	return rc;
}

/* ---- phase 4: validate against the pins -------------------------------- */

static int row_error(struct loader *L, const struct ent *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int row_error(struct loader *L, const struct ent *e, const char *fmt, ...)
{
	char idb[80], msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (L->s->types[e->type].is_edge) {
		char sb[80], db[80];
		show(ent_part(L, e, 1), sb, sizeof sb);
		show(ent_part(L, e, 2), db, sizeof db);
		if (e->id_generated)
			gfs_diag_set(L->d, "line %" PRIu64 ": %s '%s' -> '%s': %s", e->lineno,
				     L->s->types[e->type].name, sb, db, msg);
		else
			gfs_diag_set(L->d, "line %" PRIu64 ": %s '%s' ('%s' -> '%s'): %s", e->lineno,
				     L->s->types[e->type].name, show(ent_id(L, e), idb, sizeof idb),
				     sb, db, msg);
		return GFS_ECONFLICT;
	}
	gfs_diag_set(L->d, "line %" PRIu64 ": %s '%s': %s", e->lineno,
		     L->s->types[e->type].name, show(ent_id(L, e), idb, sizeof idb), msg);
	return GFS_ECONFLICT;
}

static int check_append(struct loader *L, size_t t)
{
	struct typestate *ts = &L->ts[t];
	struct gfs_row row;
	int rc = 0;

	memset(&row, 0, sizeof row);
	for (size_t i = ts->first; !rc && i < ts->first + ts->count; i++) {
		struct span id = ent_id(L, &L->ents[i]);
		rc = gfs_tver_get(ts->tv, id.p, id.len, &row);
		if (rc == 1)
			rc = row_error(L, &L->ents[i], "id already exists (append mode inserts only new ids; use --mode merge to update)");
	}
	gfs_row_release(&row);
	return rc < 0 || rc == GFS_ECONFLICT ? rc : 0;
}

struct ukref {
	size_t ent;
	struct span key;
};

static int ukref_cmp(const void *a, const void *b)
{
	return span_cmp(((const struct ukref *)a)->key, ((const struct ukref *)b)->key);
}

static int unique_in_file(struct loader *L, size_t t, unsigned k)
{
	struct typestate *ts = &L->ts[t];
	struct ukref *v = malloc((ts->count ? ts->count : 1) * sizeof *v);
	size_t n = 0;
	int rc = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = ts->first; i < ts->first + ts->count; i++) {
		struct span key = ent_part(L, &L->ents[i], 3 + k);
		if (key.len)
			v[n++] = (struct ukref){ i, key };
	}
	qsort(v, n, sizeof *v, ukref_cmp);
	for (size_t i = 1; !rc && i < n; i++)
		if (!span_cmp(v[i - 1].key, v[i].key)) {
			char idb[80], kb[120];
			const struct ent *a = &L->ents[v[i - 1].ent], *b = &L->ents[v[i].ent];
			const struct ent *later = a->lineno > b->lineno ? a : b;
			const struct ent *first = later == a ? b : a;
			char other[200];
			snprintf(other, sizeof other, "'%s' on line %" PRIu64,
				 show(ent_id(L, first), idb, sizeof idb), first->lineno);
			rc = row_error(L, later, "unique value %s is also used by %s",
				       show(v[i].key, kb, sizeof kb), other);
		}
	free(v);
	return rc;
}

static int unique_in_store(struct loader *L, size_t t, unsigned k)
{
	struct typestate *ts = &L->ts[t];
	struct gfs_row row;
	int rc = 0;

	memset(&row, 0, sizeof row);
	for (size_t i = ts->first; !rc && i < ts->first + ts->count; i++) {
		const struct ent *e = &L->ents[i];
		struct span key = ent_part(L, e, 3 + k), id = ent_id(L, e);
		if (!key.len)
			continue;
		rc = gfs_tver_get_unique(ts->tv, k, key.p, key.len, &row);
		if (rc == 1 && !span_eq(id, row.id, row.id_len) &&
		    !find_ent(L, t, row.id, row.id_len)) {
			char kb[120], ob[80];
			struct span oid = { row.id, row.id_len };
			rc = row_error(L, e, "unique value %s already belongs to '%s'",
				       show(key, kb, sizeof kb), show(oid, ob, sizeof ob));
		} else if (rc == 1 || rc == 0) {
			rc = 0;
		}
	}
	gfs_row_release(&row);
	return rc;
}

/* Does node `id` of node type t exist for this load: in the file, or at the
 * pin unless an overwrite replaces that table? */
static int node_exists(struct loader *L, size_t t, struct span id)
{
	struct gfs_row row;
	int rc;

	if (find_ent(L, t, id.p, id.len))
		return 1;
	if (L->o->mode == GFS_LOAD_OVERWRITE && L->ts[t].written)
		return 0;
	memset(&row, 0, sizeof row);
	rc = gfs_tver_get(L->ts[t].tv, id.p, id.len, &row);
	gfs_row_release(&row);
	return rc;
}

/* Edges sorted by id often share a source (ids like "<src>#n"), so the
 * last endpoint found on each side is remembered: one lookup per run. */
static int check_endpoints(struct loader *L, size_t t)
{
	const struct gfs_typedef *td = &L->s->types[t];
	struct typestate *ts = &L->ts[t];
	struct span seen[3] = { { NULL, 0 } };
	int rc = 0;

	for (size_t i = ts->first; !rc && i < ts->first + ts->count; i++) {
		const struct ent *e = &L->ents[i];
		for (unsigned side = 1; !rc && side <= 2; side++) {
			size_t nt = side == 1 ? td->from_idx : td->to_idx;
			struct span ep = ent_part(L, e, side);
			char eb[80];
			if (seen[side].p && span_eq(seen[side], ep.p, ep.len))
				continue;
			rc = node_exists(L, nt, ep);
			if (rc == 1)
				seen[side] = ep;
			if (rc == 0)
				rc = row_error(L, e, "%s node %s '%s' does not exist (not in this file nor in the store)",
					       side == 1 ? "source" : "target",
					       L->s->types[nt].name, show(ep, eb, sizeof eb));
			else if (rc == 1)
				rc = 0;
		}
	}
	return rc;
}

static int span_qcmp(const void *a, const void *b)
{
	return span_cmp(*(const struct span *)a, *(const struct span *)b);
}

/* Number of spans in sorted v equal to key. */
static size_t span_count(const struct span *v, size_t n, struct span key)
{
	size_t lo = 0, hi = n, first;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (span_cmp(v[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	while (lo < n && !span_cmp(v[lo], key))
		lo++;
	return lo - first;
}

/* Edges of table t leaving src at the pin that this load leaves in place. */
static int stored_out_degree(struct loader *L, size_t t, struct span src,
			     uint64_t *count)
{
	struct gfs_titer *it;
	struct gfs_row row;
	int rc;

	*count = 0;
	if (L->o->mode == GFS_LOAD_OVERWRITE)
		return 0;
	rc = gfs_titer_new(L->ts[t].tv, GFS_IX_SRC, src.p, src.len, &it);
	while (!rc && (rc = gfs_titer_next(it, &row)) == 1) {
		if (!span_eq(src, row.src, row.src_len)) {
			rc = 0;
			break;
		}
		if (!find_ent(L, t, row.id, row.id_len))
			(*count)++;
		rc = 0;
	}
	if (it)
		gfs_titer_free(it);
	return rc;
}

static int card_source(struct loader *L, size_t t, struct span src,
		       const struct span *filesrc, size_t nfile)
{
	const struct gfs_typedef *td = &L->s->types[t];
	uint64_t n = 0;
	int rc = stored_out_degree(L, t, src, &n);
	char sb[80], max[32] = "";

	if (rc)
		return rc;
	n += span_count(filesrc, nfile, src);
	if (n == 0 || (n >= td->card_min && n <= td->card_max))
		return 0;
	if (td->card_max != UINT64_MAX)
		snprintf(max, sizeof max, "%" PRIu64, td->card_max);
	gfs_diag_set(L->d, "%s: source %s '%s' would have %" PRIu64 " edges, but @card(%" PRIu64 "..%s) allows %s",
		     td->name, L->s->types[td->from_idx].name, show(src, sb, sizeof sb), n,
		     td->card_min, max, n < td->card_min ? "more" : "fewer");
	return GFS_ECONFLICT;
}

static int check_card(struct loader *L, size_t t)
{
	struct typestate *ts = &L->ts[t];
	struct span *filesrc, *affected;
	struct gfs_row row;
	size_t na = 0;
	int rc = 0;

	filesrc = malloc((ts->count + 1) * sizeof *filesrc);
	affected = malloc((2 * ts->count + 1) * sizeof *affected);
	if (!filesrc || !affected) {
		free(filesrc);
		free(affected);
		return -ENOMEM;
	}
	memset(&row, 0, sizeof row);
	for (size_t i = 0; i < ts->count; i++) {
		const struct ent *e = &L->ents[ts->first + i];
		struct span id = ent_id(L, e);
		filesrc[i] = affected[na++] = ent_part(L, e, 1);
		/* An edge that moves away lowers its old source's count. */
		if (L->o->mode != GFS_LOAD_OVERWRITE &&
		    gfs_tver_get(ts->tv, id.p, id.len, &row) == 1 &&
		    !span_eq(filesrc[i], row.src, row.src_len)) {
			char *copy = gfs_memdup(row.src, row.src_len);
			if (!copy) {
				rc = -ENOMEM;
				break;
			}
			/* A heap copy (freed below, told apart from arena spans). */
			affected[na++] = (struct span){ copy, row.src_len };
		}
	}
	if (!rc)
		qsort(filesrc, ts->count, sizeof *filesrc, span_qcmp);
	if (!rc)
		qsort(affected, na, sizeof *affected, span_qcmp);
	for (size_t i = 0; !rc && i < na; i++)
		if (i == 0 || span_cmp(affected[i - 1], affected[i]))
			rc = card_source(L, t, affected[i], filesrc, ts->count);
	for (size_t i = 0; i < na; i++) /* free the copied old sources */
		if (affected[i].p < L->arena.p || affected[i].p >= L->arena.p + L->arena.len)
			free((void *)affected[i].p);
	gfs_row_release(&row);
	free(filesrc);
	free(affected);
	return rc;
}

/* An overwrite of node table t removes the pinned rows not in the file; an
 * edge of another table that still points at one of them is an error
 * (nothing cascades implicitly). */
static int check_dangling_edge(struct loader *L, size_t e, enum gfs_index ix,
			       struct span id)
{
	struct gfs_titer *it;
	struct gfs_row row;
	int rc = gfs_titer_new(L->ts[e].tv, ix, id.p, id.len, &it);

	while (!rc && (rc = gfs_titer_next(it, &row)) == 1) {
		const char *ep = ix == GFS_IX_SRC ? row.src : row.dst;
		size_t eplen = ix == GFS_IX_SRC ? row.src_len : row.dst_len;
		char ib[80], sb[80], db[80];
		rc = 0;
		if (!span_eq(id, ep, eplen))
			break;
		if (find_ent(L, e, row.id, row.id_len))
			continue; /* replaced by this file: its endpoints were checked */
		gfs_diag_set(L->d, "overwrite removes %s '%s', but edge %s '%s' (%s -> %s) still points at it; delete or overwrite that edge in the same load",
			     L->s->types[ix == GFS_IX_SRC ? L->s->types[e].from_idx : L->s->types[e].to_idx].name,
			     show(id, ib, sizeof ib), L->s->types[e].name,
			     show((struct span){ row.id, row.id_len }, db, sizeof db),
			     show((struct span){ row.src, row.src_len }, sb, sizeof sb),
			     show((struct span){ row.dst, row.dst_len }, ib, sizeof ib));
		rc = GFS_ECONFLICT;
	}
	if (it)
		gfs_titer_free(it);
	return rc;
}

static int check_removed_node(struct loader *L, size_t t, struct span id)
{
	int rc = 0;

	for (size_t e = 0; !rc && e < L->s->n_types; e++) {
		const struct gfs_typedef *td = &L->s->types[e];
		if (!td->is_edge || (L->ts[e].written && L->o->mode == GFS_LOAD_OVERWRITE))
			continue;
		if (td->from_idx == t)
			rc = check_dangling_edge(L, e, GFS_IX_SRC, id);
		if (!rc && td->to_idx == t)
			rc = check_dangling_edge(L, e, GFS_IX_DST, id);
	}
	return rc;
}

static int check_dangling(struct loader *L, size_t t)
{
	struct gfs_titer *it;
	struct gfs_row row;
	int rc = gfs_titer_new(L->ts[t].tv, GFS_IX_PRIMARY, NULL, 0, &it);

	while (!rc && (rc = gfs_titer_next(it, &row)) == 1) {
		struct span id = { row.id, row.id_len };
		rc = find_ent(L, t, row.id, row.id_len) ? 0 : check_removed_node(L, t, id);
	}
	if (it)
		gfs_titer_free(it);
	return rc;
}

static int validate(struct loader *L)
{
	int rc = 0;

	progress(L, GFS_PHASE_VALIDATE, L->n);
	for (size_t t = 0; !rc && t < L->s->n_types; t++) {
		const struct gfs_typedef *td = &L->s->types[t];
		unsigned nu = (unsigned)gfs_codec_n_unique(td);
		if (!L->ts[t].written)
			continue;
		if (L->o->mode == GFS_LOAD_APPEND)
			rc = check_append(L, t);
		for (unsigned k = 0; !rc && k < nu; k++) {
			rc = unique_in_file(L, t, k);
			if (!rc && L->o->mode != GFS_LOAD_OVERWRITE)
				rc = unique_in_store(L, t, k);
		}
		if (!rc && td->is_edge)
			rc = check_endpoints(L, t);
		if (!rc && td->is_edge && td->has_card)
			rc = check_card(L, t);
		if (!rc && !td->is_edge && L->o->mode == GFS_LOAD_OVERWRITE)
			rc = check_dangling(L, t);
	}
	return rc;
}

/* ---- phase 5: arm, commit tables, confirm, publish --------------------- */

static int sc_table_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gfs_sc_table *)a)->table,
		      ((const struct gfs_sc_table *)b)->table);
}

/* The tables of this operation for the sidecar and the CAS, sorted: a
 * written table moves pin -> pin+1, a read one must stay at its pin.
 * Returns a new array (free()) or NULL on ENOMEM. */
static struct gfs_sc_table *op_tables(const struct loader *L, size_t *np)
{
	struct gfs_sc_table *tabs = calloc(L->s->n_types + 1, sizeof *tabs);
	size_t n = 0;

	for (size_t t = 0; tabs && t < L->s->n_types; t++) {
		const struct typestate *ts = &L->ts[t];
		if (!involved(ts))
			continue;
		snprintf(tabs[n].table, sizeof tabs[n].table, "%s", ts->table);
		tabs[n].written = ts->written;
		tabs[n].expected = ts->pin;
		tabs[n].post = ts->written ? ts->next : ts->pin;
		n++;
	}
	if (tabs)
		qsort(tabs, n, sizeof *tabs, sc_table_cmp);
	*np = n;
	return tabs;
}

static int arm(struct loader *L)
{
	struct gfs_sidecar sc;
	struct gfs_sc_table *tabs;
	size_t n = 0;
	int rc;

	memset(&sc, 0, sizeof sc);
	sc.format = GFS_SIDECAR_FORMAT;
	memcpy(sc.op_id, L->op_id, sizeof sc.op_id);
	snprintf(sc.kind, sizeof sc.kind, "load");
	snprintf(sc.actor, sizeof sc.actor, "%s", L->o->actor ? L->o->actor : gfs_graph_actor(L->g));
	sc.start_ns = gfs_now_ns();
	if (!(tabs = op_tables(L, &n)))
		return -ENOMEM;
	sc.tables = tabs;
	sc.n_tables = n;
	rc = gfs_manifest_sidecar_put(gfs_graph_manifest(L->g), &sc);
	free(tabs);
	if (rc)
		gfs_diag_set(L->d, "cannot record the recovery sidecar: %s", gfs_strerror(rc));
	return rc;
}

/* Reads row lines back from the spool in sorted order.  The rows of a
 * type mostly come in file order, so one pread fetches a stretch of
 * neighbouring lines (up to SPOOL_RBUF) instead of one call per row. */
#define SPOOL_RBUF ((size_t)1 << 20)
#define SPOOL_GAP 4096 /* bytes of skipped rows worth reading through */

struct spool_rd {
	struct gfs_buf win;
	uint64_t off; /* spool offset of win.p[0] */
};

/* End of the stretch that starts with row i: rows up to `end` that follow
 * in the spool, with small gaps (rows of other types, duplicates). */
static uint64_t stretch_end(const struct loader *L, size_t i, size_t end)
{
	uint64_t start = L->ents[i].spool_off;
	uint64_t stop = start + L->ents[i].line_len;

	for (size_t j = i + 1; j < end; j++) {
		const struct ent *n = &L->ents[j];

		if (n->spool_off < stop || n->spool_off - stop > SPOOL_GAP ||
		    n->spool_off + n->line_len - start > SPOOL_RBUF)
			break;
		stop = n->spool_off + n->line_len;
	}
	return stop;
}

static int spool_line(struct loader *L, struct spool_rd *r, size_t i,
		      size_t end, const char **line)
{
	const struct ent *e = &L->ents[i];
	uint64_t stop;
	int rc;

	if (e->spool_off < r->off ||
	    e->spool_off + e->line_len > r->off + r->win.len) {
		stop = stretch_end(L, i, end);
		gfs_buf_reset(&r->win);
		rc = gfs_buf_reserve(&r->win, (size_t)(stop - e->spool_off));
		if (!rc)
			rc = gfs_pread_all(L->spool_fd, r->win.p,
					   (size_t)(stop - e->spool_off),
					   (off_t)e->spool_off);
		if (rc)
			return rc;
		r->off = e->spool_off;
		r->win.len = (size_t)(stop - e->spool_off);
	}
	*line = r->win.p + (e->spool_off - r->off);
	return 0;
}

static int put_rows(struct loader *L, size_t t, struct gfs_tbuild *b,
		    struct spool_rd *rd)
{
	const struct typestate *ts = &L->ts[t];
	size_t nu = gfs_codec_n_unique(&L->s->types[t]);
	struct gfs_buf *uk = calloc(nu + 1, sizeof *uk);
	int rc = uk ? 0 : -ENOMEM;

	for (size_t i = ts->first; !rc && i < ts->first + ts->count; i++) {
		const struct ent *e = &L->ents[i];
		struct span id = ent_id(L, e), src = ent_part(L, e, 1), dst = ent_part(L, e, 2);
		struct gfs_rowput rp;
		const char *line = NULL;
		for (size_t k = 0; k < nu; k++) {
			struct span u = ent_part(L, e, 3 + (unsigned)k);
			uk[k] = (struct gfs_buf){ (char *)u.p, u.len, u.len };
		}
		rc = spool_line(L, rd, i, ts->first + ts->count, &line);
		rp = (struct gfs_rowput){
			.id = id.p, .id_len = id.len,
			.src = src.len || L->s->types[t].is_edge ? src.p : NULL, .src_len = src.len,
			.dst = dst.len || L->s->types[t].is_edge ? dst.p : NULL, .dst_len = dst.len,
			.line = line, .line_len = e->line_len,
			.data_off = e->data_off, .data_len = e->data_len,
			.ukeys = uk, .n_ukeys = nu,
		};
		if (!rc)
			rc = gfs_tbuild_put(b, &rp);
		if (!rc && (i - ts->first) % 65536 == 65535)
			progress(L, GFS_PHASE_WRITE, i);
	}
	free(uk);
	return rc;
}

static int commit_table(struct loader *L, size_t t)
{
	struct typestate *ts = &L->ts[t];
	struct gfs_tbuild *b = NULL;
	struct spool_rd rd = { .off = 0 };
	int rc;

	gfs_buf_init(&rd.win);
	rc = gfs_tbuild_new(gfs_graph_tables(L->g), ts->table, ts->tv,
			    (unsigned)gfs_codec_n_unique(&L->s->types[t]),
			    L->o->mode == GFS_LOAD_OVERWRITE ? GFS_TBUILD_REPLACE : 0, &b);
	if (!rc)
		rc = put_rows(L, t, b, &rd);
	if (!rc)
		rc = gfs_tbuild_commit(b, ts->next, L->op_id, L->d);
	if (rc == -EEXIST)
		gfs_diag_set(L->d, "table '%s' version %u already exists: another writer got there without holding the lock; run 'graphctl fsck %s'",
			     ts->table, ts->next, gfs_graph_dir(L->g));
	gfs_tbuild_free(b);
	gfs_buf_release(&rd.win);
	return rc;
}

static int publish(struct loader *L, uint64_t *version)
{
	struct gfs_sc_table *tabs;
	struct gfs_publish p;
	struct gfs_buf detail;
	size_t n = 0;
	int rc;

	gfs_buf_init(&detail);
	rc = gfs_buf_appendf(&detail, "{\"mode\":\"%s\",\"lines\":%" PRIu64 ",\"rows\":%zu,\"source\":",
			     mode_names[L->o->mode], L->lines, L->n);
	if (!rc) {
		const char *src = L->o->source ? L->o->source : "-";
		rc = gfs_buf_append_json_str(&detail, src, strlen(src));
	}
	if (!rc)
		rc = gfs_buf_appendc(&detail, '}');
	tabs = op_tables(L, &n);
	if (!tabs)
		rc = -ENOMEM;
	memset(&p, 0, sizeof p);
	p.op = "load";
	p.op_id = L->op_id;
	p.actor = L->o->actor ? L->o->actor : gfs_graph_actor(L->g);
	p.detail = rc ? NULL : detail.p;
	p.tables = tabs;
	p.n_tables = n;
	p.sidecar = L->op_id;
	if (tabs)
		rc = gfs_manifest_publish(gfs_graph_manifest(L->g), &p, version, L->d);
	free(tabs);
	gfs_buf_release(&detail);
	return rc;
}

static int fp(enum gfs_fp id)
{
	int err = gfs_fp_hit(id);

	return err ? -err : 0;
}

/* A failure after arming: resolve our own sidecar through recovery's code
 * while we still hold the locks.  Nothing committed -> discarded; some
 * tables committed -> rolled back (compensating versions); confirmed ->
 * rolled forward, i.e. published: the commit point was passed, so the load
 * succeeds.  If that fails too the sidecar stays for the next sweep. */
static int finish_failed(struct loader *L, int rc, uint64_t *version)
{
	struct gfs_recover_own_result res;
	struct gfs_diag d2 = {{0}};
	int r2;

	/* The failing system call, before recovery's own calls replace it. */
	if (L->d)
		gfs_diag_io(L->d, rc);
	r2 = gfs_recover_own(L->g, L->op_id, &res, &d2);
	if (!r2 && res.forward) {
		if (L->d)
			L->d->msg[0] = '\0';
		*version = res.version;
		return 0;
	}
	if (r2 && L->d) {
		char first[sizeof L->d->msg];
		snprintf(first, sizeof first, "%s", L->d->msg[0] ? L->d->msg : gfs_strerror(rc));
		gfs_diag_reset(L->d, "%s; operation %s is left for recovery ('graphctl recover %s'): %s",
			       first, L->op_id, gfs_graph_dir(L->g),
			       d2.msg[0] ? d2.msg
			       : gfs_io_last(r2) ? gfs_io_last(r2) : gfs_strerror(r2));
	}
	return rc;
}

/* B: one new version per written table, then confirm (the commit point). */
static int commit_tables(struct loader *L)
{
	int rc = fp(GFS_FP_COMMIT_AFTER_SIDECAR);

	for (size_t t = 0; !rc && t < L->s->n_types; t++) {
		if (!L->ts[t].written)
			continue;
		rc = commit_table(L, t);
		if (!rc)
			rc = fp(GFS_FP_COMMIT_AFTER_TABLE);
	}
	if (!rc)
		rc = gfs_manifest_sidecar_confirm(gfs_graph_manifest(L->g), L->op_id);
	if (rc == -ENOENT) /* only when locks were skipped: a lease lost */
		gfs_diag_set(L->d, "operation %s was resolved by a recovery sweep while this load was writing (its table locks were not held); nothing of it is visible: load again",
			     L->op_id);
	if (!rc)
		rc = fp(GFS_FP_COMMIT_AFTER_CONFIRM);
	if (!rc)
		rc = fp(GFS_FP_COMMIT_BEFORE_PUBLISH);
	return rc;
}

/* Temp files of writers killed before link() are garbage; we hold LOCK_EX
 * on the tables we write, so any there are not a live writer's.  Without
 * real locks (the test-only skip_locks) they might be: leave them. */
static int remove_stale_tmp(struct loader *L)
{
	int rc = 0;

	for (size_t t = 0; L->locks && !rc && t < L->s->n_types; t++) {
		unsigned n = 0;
		if (L->ts[t].written)
			rc = gfs_table_remove_tmp(gfs_graph_tables(L->g), L->ts[t].table, &n);
	}
	if (rc)
		gfs_diag_set(L->d, "cannot remove a dead writer's temp file: %s", gfs_strerror(rc));
	return rc;
}

static int write_phase(struct loader *L, uint64_t *version)
{
	int rc;

	progress(L, GFS_PHASE_WRITE, L->n);
	rc = remove_stale_tmp(L);
	if (!rc)
		rc = gfs_ulid_new(L->op_id);
	if (!rc)
		rc = arm(L);
	if (rc)
		return rc;
	rc = commit_tables(L);
	progress(L, GFS_PHASE_PUBLISH, L->n);
	if (!rc)
		rc = publish(L, version);
	if (rc)
		return finish_failed(L, rc, version);
	return fp(GFS_FP_COMMIT_AFTER_PUBLISH);
}

/* ---- the whole load ---------------------------------------------------- */

static int open_spool(struct loader *L)
{
	char dir[PATH_MAX];
	int rc;

	snprintf(dir, sizeof dir, "%s/staging", gfs_graph_dir(L->g));
	if ((rc = gfs_mkdir(dir, 0755)))
		return rc;
	L->spool_fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (L->spool_fd < 0) {
		rc = gfs_io_fail("create spool file in", dir, -errno);
		gfs_diag_set(L->d, "create spool file in '%s': %s", dir, strerror(-rc));
	}
	return rc;
}

static int setup(struct loader *L)
{
	struct gfs_gv *gv = NULL;
	int rc = gfs_manifest_head(gfs_graph_manifest(L->g), &gv);

	if (!rc)
		rc = gfs_graph_schema(L->g, gv->schema_id, &L->s, L->d);
	gfs_gv_free(gv);
	if (!rc && !(L->ts = calloc(L->s->n_types + 1, sizeof *L->ts)))
		rc = -ENOMEM;
	if (!rc)
		rc = open_spool(L);
	return rc;
}

static void teardown(struct loader *L)
{
	for (size_t t = 0; L->ts && L->s && t < L->s->n_types; t++)
		gfs_tver_close(L->ts[t].tv);
	gfs_lockset_free(L->locks);
	if (L->spool_fd >= 0)
		close(L->spool_fd);
	gfs_gv_free(L->gv);
	free(L->ts);
	free(L->ents);
	gfs_buf_release(&L->arena);
	gfs_buf_release(&L->spool_w);
}

/* Heal, lock, and if a writer died on our tables in between (its sidecar
 * is there under our locks), let go and heal again: never plan around
 * partial state.  Each round resolves at least that sidecar. */
#define HEAL_ROUNDS 16

static int heal_and_lock(struct loader *L)
{
	bool found = true;
	int rc = 0;

	for (unsigned i = 0; !rc && found && i < HEAL_ROUNDS; i++) {
		gfs_lockset_free(L->locks);
		L->locks = NULL;
		rc = heal(L);
		if (!rc)
			rc = fp(GFS_FP_LOAD_AFTER_HEAL);
		if (!rc)
			rc = take_locks(L);
		if (!rc)
			rc = fp(GFS_FP_LOAD_AFTER_LOCKS);
		if (!rc)
			rc = dead_sidecar(L, &found);
	}
	if (!rc && found) {
		gfs_diag_set(L->d, "recovery needed: writers kept dying on these tables while this load healed them; run 'graphctl recover %s'",
			     gfs_graph_dir(L->g));
		rc = GFS_ERECOVERY;
	}
	return rc;
}

static int lock_and_validate(struct loader *L)
{
	int rc;

	progress(L, GFS_PHASE_LOCK, L->n);
	rc = heal_and_lock(L);
	if (!rc)
		rc = read_pins(L);
	if (!rc)
		rc = check_orphans(L);
	if (!rc)
		rc = open_pinned(L);
	if (!rc)
		rc = validate(L);
	return rc;
}

int gfs_graph_load(struct gfs_graph *g, int fd, const struct gfs_load_opts *o,
		   struct gfs_load_result *res, struct gfs_diag *d)
{
	struct loader L = { .g = g, .o = o, .d = d, .spool_fd = -1, .phase = -1 };
	uint64_t version = 0;
	int rc;

	memset(res, 0, sizeof *res);
	phase_switch(&L, GFS_PHASE_PARSE);
	gfs_buf_init(&L.arena);
	gfs_buf_init(&L.spool_w);
	rc = setup(&L);
	if (!rc)
		rc = parse_stream(&L, fd);
	if (!rc)
		rc = spool_flush(&L);
	if (!rc && L.n == 0) {
		gfs_diag_set(d, "%s %s: nothing to load", o->source ? o->source : "input",
			     L.lines ? "has only blank lines" : "is empty");
		rc = GFS_EDATA;
	}
	if (!rc)
		rc = fp(GFS_FP_LOAD_AFTER_STAGE);
	if (!rc)
		rc = sort_phase(&L);
	if (!rc)
		plan_tables(&L);
	if (!rc)
		rc = lock_and_validate(&L);
	if (!rc)
		rc = write_phase(&L, &version);
	phase_switch(&L, -1);
	if (!rc) {
		res->version = version;
		res->lines = L.lines;
		res->rows_put = L.n;
		res->bytes = L.bytes;
		memcpy(res->phase_ns, L.phase_ns, sizeof res->phase_ns);
		memcpy(res->op_id, L.op_id, sizeof res->op_id);
	}
	teardown(&L);
	return rc;
}
