/* recover.c - the recovery sweep (DESIGN.md §4) and heal-first writers (§3).
 *
 * INVARIANTS (docs/recovery.md explains why each holds)
 *  R1  A sidecar is deleted only by a publish that also writes its one audit
 *      record (or by the writer's own publish, which needs no audit).
 *  R2  Ownership is proven from the stamp in the table-version file
 *      (op id, compensation flag, content_of), never from numbers alone.
 *  R3  Recovery never deletes or rewrites a table version; an undo is a new
 *      compensating version whose content is the pin's.
 *  R4  Every recovery publish is exact: require_sidecar (gone -> GFS_EGONE,
 *      nothing written), the sidecar's revision as classified (changed,
 *      e.g. confirmed meanwhile -> GFS_ECAS, nothing written, classified
 *      again next pass) and a CAS on every pin it observed.
 *  R11 Numbers come from the table's counter next[T] and are recorded in
 *      the index tver (docs/branches-design.md §2): classification reads
 *      the sidecar's numbers (post, comp) and the files' stamps, never the
 *      table's head; a roll back reserves its compensation's number in the
 *      sidecar before linking it (reserve_comp); an orphan is a file the
 *      index does not account for (gfs_table_orphans).
 *  R5  No failpoint, lock wait or table fsync happens inside an LMDB write
 *      transaction: each step below is its own short transaction.
 *  R6  A mount never fails on a version mismatch: GFS_ECAS keeps the sidecar
 *      for the next pass; past max_passes it is counted in retry_left.
 *
 * STATE DIAGRAM of one sidecar (function doing each transition):
 *
 *   armed --------------------(writer: gfs_manifest_sidecar_confirm)--> confirmed
 *     |                                                                   |
 *     | resolve(): classify(), decide() = BACK                            | decide() = FORWARD
 *     v                                                                   v
 *   compensating --(compensate(): one version per ours table)--+    publish_job()
 *     |                                                                   |
 *     +-- publish_job(): pins m -> c, delete, audit "roll-back" -> [gone]
 *   (compensate(): reserve_comp() records c in the sidecar first)
 *   confirmed, ours or ours compensated -- publish_job(): m -> post ---> [gone]
 *   armed, nothing committed -- publish_job(): audit "discard" ------> [gone]
 *   any, foreign/violation ---- report_violation(): kept ------------> armed/confirmed
 *   any, pins moved ----------- GFS_ECAS: kept, retried next pass ---> same
 *   any, resolved elsewhere --- GFS_EGONE / -ENOENT: nothing written -> [gone]
 *   unparseable / newer ------- refuse(): kept, reported ------------> same
 *
 * Orphans (files without a live tver record): orphan_one() writes, when
 * one is at or above next[T], a compensation of the pin above them under a
 * new op id and publishes it with audit "orphan-compensated" (a
 * compensation of the pin left by a crashed orphan pass is reused);
 * orphans below next[T] are only retired (audit "orphan-retired").
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failpoints.h"
#include "load_int.h"
#include "lock.h"
#include "recover.h"
#include "retain.h"

#define DEFAULT_PASSES 3

/* Per-table classification (DESIGN.md §4 table, in its order). */
enum cls {
	CLS_NONE,      /* p absent (and no compensation of ours): never
			  committed here */
	CLS_OURS,      /* p stamped by this op, no compensation */
	CLS_OURS_COMP, /* p ours, then c our compensation of m */
	CLS_READ,      /* a table the op only read (its pin is in the CAS) */
	CLS_VIOLATION, /* version m does not exist */
	CLS_FOREIGN,   /* someone else's version where ours should be */
};

static const char *const cls_names[] = {
	"no movement", "ours", "ours, compensated", "read", "violation", "foreign",
};

enum action { ACT_FORWARD, ACT_BACK, ACT_DISCARD, ACT_VIOLATION };

static const char *const act_names[] = {
	"roll-forward", "roll-back", "discard", "violation",
};

enum outcome {
	OUT_FORWARD, OUT_BACK, OUT_DISCARD, OUT_GONE, OUT_BUSY, OUT_RETRY,
	OUT_VIOLATION, OUT_REFUSED,
};

struct tstate {
	enum cls c;
	uint32_t m;    /* the pin at the head, re-read under the locks */
	uint32_t p;    /* the version the op writes: its post_commit_pin */
	uint32_t comp; /* its compensation's number, 0 none known */
	bool comp_present; /* a file exists at comp */
};

struct sweep {
	struct gfs_graph *g;
	const struct gfs_recover_opts *o;
	struct gfs_recover_report *r;
	struct gfs_diag *d;
	char resolver[GFS_ACTOR_MAX];
	bool held;          /* the caller holds the locks (gfs_recover_own) */
	bool live_seen;     /* etcd: a wait timed out on a live holder; the
			       rest of this sweep only tries (one TTL wait,
			       not one per table) */
	uint64_t version;   /* last graph version published */
};

/* One sidecar being resolved. */
struct job {
	struct gfs_sidecar *sc;
	struct tstate *ts;  /* one per sc->tables */
	struct gfs_lockset *locks;
	bool branch_gone;   /* its branch was deleted (or re-created): a
			       violation, never guessed about */
};

/* The branch a sidecar publishes on: "" (older sidecars) is main. */
static const char *sc_branch(const struct gfs_sidecar *sc)
{
	return sc->branch[0] ? sc->branch : "main";
}

static int fp(enum gfs_fp id)
{
	int err = gfs_fp_hit(id);

	return err ? -err : 0;
}

static void note(struct sweep *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note(struct sweep *s, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	if (!s->o->note)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	s->o->note(msg, s->o->note_arg);
}

/* ---- locks -------------------------------------------------------------- */

/* EX on the sidecar's written tables, SH on its read ones.  A mount tries
 * (held = a live writer or another sweeper owns it: -EWOULDBLOCK). */
static int lock_job(struct sweep *s, const struct gfs_sidecar *sc,
		    struct gfs_lockset **out)
{
	const char **names = calloc(sc->n_tables + 1, sizeof *names);
	enum gfs_lock_mode *modes = calloc(sc->n_tables + 1, sizeof *modes);
	int rc = names && modes ? 0 : -ENOMEM;

	*out = NULL;
	for (size_t i = 0; !rc && i < sc->n_tables; i++) {
		names[i] = sc->tables[i].table;
		modes[i] = sc->tables[i].written ? GFS_LOCK_EX : GFS_LOCK_SH;
	}
	/* Test builds only: skipping the locks stands for an expired lease,
	 * so two sweeps can classify one sidecar and race the publish. */
	if (!rc && !gfs_fp_hit(GFS_FP_COMMIT_SKIP_LOCKS)) {
		/* etcd: a dead owner's leases end within a TTL; waiting longer
		 * would wait for a live writer, whose sidecar is not ours */
		struct gfs_diag ld = {{0}};
		rc = gfs_lock_tables_d(gfs_graph_dir(s->g), names, modes, sc->n_tables,
				       s->o->wait && !s->live_seen
				       ? GFS_LOCK_WAIT | GFS_LOCK_WAIT_TTL : GFS_LOCK_TRY,
				       out, &ld);
		if (rc == -ETIMEDOUT) {
			s->live_seen = true;
			note(s, "operation %s: %s; left for its owner or a later sweep",
			     sc->op_id[0] ? sc->op_id : "(orphans)", ld.msg);
			rc = -EWOULDBLOCK;
		} else if (rc && rc != -EWOULDBLOCK && ld.msg[0]) {
			gfs_diag_set(s->d, "%s", ld.msg);
		}
	}
	free(names);
	free(modes);
	return rc;
}

/* ---- classification ----------------------------------------------------- */

/* The stamp of version v of table: 1 read into *info, 0 absent or not
 * verifying (proves nothing is ours), <0 an error that proves nothing. */
static int stamp_of(struct gfs_graph *g, const char *table, uint32_t v,
		    struct gfs_tver_info *info)
{
	struct gfs_diag d = {{0}};
	struct gfs_tver *tv;
	int rc = gfs_tver_open(gfs_graph_tables(g), table, v, &tv, &d);

	if (rc == -ENOENT || rc == GFS_ECORRUPT || rc == GFS_EFORMAT)
		return 0;
	if (rc)
		return rc;
	gfs_tver_info(tv, info);
	gfs_tver_close(tv);
	return 1;
}

/* Is version v of table stamped op_id, with this compensation flag (and,
 * for a compensation, content_of)?  1 yes, 0 no (absent, other stamp,
 * does not verify), <0 an error that proves nothing. */
static int stamped(struct sweep *s, const char *table, uint32_t v,
		   const char *op_id, bool comp, uint32_t content_of)
{
	struct gfs_tver_info info;
	int rc = stamp_of(s->g, table, v, &info);

	if (rc <= 0)
		return rc;
	return !strcmp(info.op_id, op_id) && info.compensation == comp &&
	       (!comp || info.content_of == content_of);
}

/* Is version v's name there (a stat)?  1, 0, or <0 an I/O error. */
static int present(struct sweep *s, const char *table, uint32_t v)
{
	bool yes = false;
	int rc = v ? gfs_table_version_exists(gfs_graph_tables(s->g), table, v, &yes) : 0;

	return rc < 0 ? rc : yes;
}

/* The compensation c of one table (docs/branches-design.md §3.1): the one
 * the sidecar records, else p+1 as a candidate only, counted when it is
 * our compensation of m (an older build's, or today's tests').  Sets
 * st->comp and st->comp_present (c there; for a candidate: there and
 * ours), *ours (c is our compensation of m).  <0 an I/O error. */
static int comp_of(struct sweep *s, const struct gfs_sidecar *sc,
		   const struct gfs_sc_table *t, struct tstate *st, int *ours)
{
	uint32_t c = t->comp ? t->comp : t->post + 1;
	int there = t->post == UINT32_MAX ? 0 : present(s, t->table, c);

	*ours = there == 1 ? stamped(s, t->table, c, sc->op_id, true, st->m) : 0;
	if (there < 0 || *ours < 0)
		return there < 0 ? there : *ours;
	st->comp = t->comp;
	st->comp_present = t->comp ? there == 1 : *ours == 1;
	if (!t->comp && *ours == 1)
		st->comp = c; /* the candidate is ours: it is c */
	return 0;
}

/* §3.1, in its order, from the sidecar's numbers and the files' stamps;
 * no rule reads the table's head, so versions that others wrote above p
 * or c change nothing. */
static int classify_one(struct sweep *s, const struct gfs_sidecar *sc,
			const struct gfs_sc_table *t, struct tstate *st)
{
	uint32_t m = st->m, p = t->post;
	int pm = m ? present(s, t->table, m) : 1, pp = 0, a = 0, ours_c = 0, rc;

	st->p = p;
	st->c = CLS_FOREIGN;
	if (pm < 0)
		return pm;
	if (!pm) {
		st->c = CLS_VIOLATION;
		return 0;
	}
	if (!t->written) {
		st->c = CLS_READ;
		return 0;
	}
	pp = present(s, t->table, p);
	rc = pp < 0 ? pp : comp_of(s, sc, t, st, &ours_c);
	if (rc)
		return rc;
	if (!pp) {
		if (!st->comp_present || ours_c != 1)
			st->c = CLS_NONE;
		return 0;
	}
	a = stamped(s, t->table, p, sc->op_id, false, 0);
	if (a < 0)
		return a;
	if (t->expected != m || a != 1)
		return 0; /* foreign: another stamp, or e != m with p present */
	if (!st->comp_present)
		st->c = CLS_OURS;
	else if (ours_c == 1)
		st->c = CLS_OURS_COMP;
	return 0;
}

/* Reads the head of the sidecar's branch (re-read for every sidecar) and
 * classifies each table against its pins there.  A branch deleted or
 * re-created under the sidecar (branch delete refuses while a sidecar
 * names it) leaves j->branch_gone: a violation. */
static int classify(struct sweep *s, struct job *j)
{
	struct gfs_gv *gv = NULL;
	struct gfs_branch b;
	int rc = gfs_manifest_branch_read(gfs_graph_manifest(s->g), sc_branch(j->sc),
					  &b, &gv);

	j->branch_gone = rc == -ENOENT ||
			 (!rc && j->sc->branch_id[0] && strcmp(b.id, j->sc->branch_id));
	if (rc == -ENOENT)
		rc = 0;
	if (!rc && !(j->ts = calloc(j->sc->n_tables + 1, sizeof *j->ts)))
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < j->sc->n_tables; i++) {
		const struct gfs_sc_table *t = &j->sc->tables[i];
		j->ts[i].m = gfs_gv_pin(gv, t->table);
		rc = classify_one(s, j->sc, t, &j->ts[i]);
	}
	gfs_gv_free(gv);
	return rc;
}

static enum action decide(const struct job *j)
{
	unsigned n[CLS_FOREIGN + 1] = {0};

	for (size_t i = 0; i < j->sc->n_tables; i++)
		n[j->ts[i].c]++;
	if (n[CLS_VIOLATION] || n[CLS_FOREIGN] || j->branch_gone)
		return ACT_VIOLATION;
	if (j->sc->confirmed)
		/* A confirmed op fsync'd every version before confirming: a
		 * missing one is not ours to guess about.  Our compensation
		 * above our version comes from a sweep that classified the
		 * sidecar before the confirm and lost its publish (it compares
		 * the sidecar's revision): the confirm decides, roll forward. */
		return n[CLS_NONE] ? ACT_VIOLATION : ACT_FORWARD;
	return n[CLS_OURS] || n[CLS_OURS_COMP] ? ACT_BACK : ACT_DISCARD;
}

/* d names the operation, each table, its class and versions. */
static void report_violation(struct sweep *s, const struct job *j)
{
	struct gfs_buf b;

	gfs_buf_init(&b);
	gfs_buf_appendf(&b, "invariant violation: operation %s (%s by %s, %s) kept:",
			j->sc->op_id, j->sc->kind, j->sc->actor,
			j->sc->confirmed ? "confirmed" : "not confirmed");
	if (j->branch_gone)
		gfs_buf_appendf(&b, " its branch '%s' (id %s) was deleted;",
				sc_branch(j->sc), j->sc->branch_id);
	for (size_t i = 0; i < j->sc->n_tables; i++) {
		const struct gfs_sc_table *t = &j->sc->tables[i];
		gfs_buf_appendf(&b, " table '%s' %s (pin %u, expected %u, version %u, compensation %u);",
				t->table, cls_names[j->ts[i].c], j->ts[i].m,
				t->expected, j->ts[i].p, j->ts[i].comp);
	}
	gfs_buf_appendf(&b, " inspect those versions and run 'graphctl fsck %s'",
			gfs_graph_dir(s->g));
	if (b.p) {
		gfs_diag_reset(s->d, "%s", b.p);
		note(s, "%s", b.p);
	}
	gfs_buf_release(&b);
}

/* ---- roll back: one compensating version per ours table ----------------- */

/* §3.1: c is reserved in the sidecar before it is linked (a transaction
 * that compares the revision we classified, and makes a new one), so two
 * resolvers share it and a crash after the reserve reuses it. */
static int reserve_comp(struct sweep *s, struct job *j, size_t i)
{
	const struct gfs_sc_table *t = &j->sc->tables[i];
	uint64_t rev = 0;
	uint32_t c = 0;
	int rc = gfs_manifest_sidecar_reserve_comp(gfs_graph_manifest(s->g),
						   j->sc->op_id, j->sc->rev,
						   t->table, j->ts[i].m, &c, &rev);

	if (rc == -ENOENT)
		return GFS_EGONE;
	if (rc)
		return rc;
	j->sc->rev = rev; /* the publish compares the revision we made */
	j->sc->tables[i].comp = c;
	j->ts[i].comp = c;
	return fp(GFS_FP_RECOVER_AFTER_RESERVE);
}

static int compensate_one(struct sweep *s, struct job *j, size_t i)
{
	const struct gfs_sc_table *t = &j->sc->tables[i];
	uint32_t m = j->ts[i].m, c;
	struct gfs_diag d = {{0}};
	int rc = j->ts[i].comp ? 0 : reserve_comp(s, j, i);

	if (rc)
		return rc;
	c = j->ts[i].comp;
	rc = gfs_table_write_compensation_of(gfs_graph_tables(s->g), t->table,
					     c, j->ts[i].p, m, j->sc->op_id, &d);
	if (rc == -EEXIST) {
		/* Another resolver (expired lease) wrote it: ours if stamped so. */
		rc = stamped(s, t->table, c, j->sc->op_id, true, m);
		if (rc == 0) {
			j->ts[i].c = CLS_FOREIGN;
			return GFS_EVIOLATION;
		}
		rc = rc == 1 ? 0 : rc;
	}
	if (rc)
		gfs_diag_set(s->d, "compensating table '%s' version %u of operation %s: %s",
			     t->table, c, j->sc->op_id, d.msg[0] ? d.msg : gfs_strerror(rc));
	return rc;
}

static int compensate(struct sweep *s, struct job *j)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < j->sc->n_tables; i++) {
		if (j->ts[i].c != CLS_OURS)
			continue;
		rc = compensate_one(s, j, i);
		if (!rc) {
			j->ts[i].c = CLS_OURS_COMP;
			j->ts[i].comp_present = true;
			rc = fp(GFS_FP_RECOVER_AFTER_COMPENSATE);
		}
	}
	return rc;
}

/* ---- the resolving publish ---------------------------------------------- */

/* The pin a table moves to under action a (post), and whether it moves. */
static bool moves(enum action a, const struct tstate *st, uint32_t *post)
{
	*post = st->m;
	if (a == ACT_FORWARD && (st->c == CLS_OURS || st->c == CLS_OURS_COMP))
		*post = st->p;
	if (a == ACT_BACK && st->c == CLS_OURS_COMP)
		*post = st->comp;
	return *post != st->m;
}

/* CAS set (pub) and audit tables (aud) of the resolving publish.  Read
 * tables are checked only for a roll forward (its validation used them). */
static int job_tables(const struct job *j, enum action a,
		      struct gfs_sc_table **pub, size_t *np,
		      struct gfs_sc_table **aud, size_t *na)
{
	*np = *na = 0;
	*pub = calloc(j->sc->n_tables + 1, sizeof **pub);
	*aud = calloc(j->sc->n_tables + 1, sizeof **aud);
	if (!*pub || !*aud)
		return -ENOMEM;
	for (size_t i = 0; i < j->sc->n_tables; i++) {
		const struct gfs_sc_table *t = &j->sc->tables[i];
		struct gfs_sc_table x = *t;
		if (!t->written && a != ACT_FORWARD)
			continue;
		x.expected = t->written ? j->ts[i].m : t->expected;
		x.written = t->written && moves(a, &j->ts[i], &x.post);
		if (!x.written)
			x.post = x.expected;
		(*pub)[(*np)++] = x;
		if (t->written) {
			x.written = true;
			(*aud)[(*na)++] = x;
		}
	}
	return 0;
}

static int job_detail(struct sweep *s, const struct job *j, enum action a,
		      struct gfs_buf *b)
{
	int rc = gfs_buf_appendf(b, "{\"decision\":\"%s\",\"kind\":", act_names[a]);

	if (!rc)
		rc = gfs_buf_append_json_str(b, j->sc->kind, strlen(j->sc->kind));
	if (!rc)
		rc = gfs_buf_append(b, ",\"resolver\":", 12);
	if (!rc)
		rc = gfs_buf_append_json_str(b, s->resolver, strlen(s->resolver));
	if (!rc)
		rc = gfs_buf_appendc(b, '}');
	return rc;
}

static void audit_init(struct gfs_audit *au, const struct sweep *s,
		       const char *op_id, const char *decision,
		       const char *kind, const char *actor)
{
	memset(au, 0, sizeof *au);
	snprintf(au->op_id, sizeof au->op_id, "%s", op_id);
	snprintf(au->decision, sizeof au->decision, "%s", decision);
	snprintf(au->kind, sizeof au->kind, "%s", kind);
	snprintf(au->actor, sizeof au->actor, "%s", actor);
	snprintf(au->resolver, sizeof au->resolver, "%s", s->resolver);
}

static void tver_set(struct gfs_tver_set *v, size_t *n, const char *table,
		     uint32_t ver, enum gfs_tver_state st)
{
	if (!ver)
		return;
	snprintf(v[*n].table, sizeof v[*n].table, "%s", table);
	v[*n].v = ver;
	v[*n].state = st;
	(*n)++;
}

/* §3.1 end: what the resolving publish does to the op's numbers besides
 * publishing the pins it moves (the manifest marks those published).
 * Every other number the op holds is settled: retired where its file is
 * there (an undone p, a compensation a roll forward leaves), void where
 * it is not (a discarded p, a c reserved by a sweep that died). */
static struct gfs_tver_set *job_tver_sets(const struct job *j, enum action a,
					  size_t *n)
{
	struct gfs_tver_set *v = calloc(2 * j->sc->n_tables + 1, sizeof *v);

	*n = 0;
	for (size_t i = 0; v && i < j->sc->n_tables; i++) {
		const struct gfs_sc_table *t = &j->sc->tables[i];
		const struct tstate *st = &j->ts[i];
		bool ours = st->c == CLS_OURS || st->c == CLS_OURS_COMP;
		if (!t->written)
			continue;
		if (!(a == ACT_FORWARD && ours))
			tver_set(v, n, t->table, st->p,
				 ours ? GFS_TVER_RETIRED : GFS_TVER_VOID);
		if (st->comp && !(a == ACT_BACK && st->c == CLS_OURS_COMP))
			tver_set(v, n, t->table, st->comp,
				 st->comp_present ? GFS_TVER_RETIRED : GFS_TVER_VOID);
	}
	return v;
}

static int publish_job(struct sweep *s, const struct job *j, enum action a,
		       struct gfs_diag *pd)
{
	struct gfs_tver_set *sets = NULL;
	struct gfs_sc_table *pub = NULL, *aud = NULL;
	struct gfs_publish p;
	struct gfs_audit au;
	struct gfs_buf detail;
	size_t np, na;
	int rc = job_tables(j, a, &pub, &np, &aud, &na);

	gfs_buf_init(&detail);
	if (!rc)
		rc = job_detail(s, j, a, &detail);
	audit_init(&au, s, j->sc->op_id, act_names[a], j->sc->kind, j->sc->actor);
	au.tables = aud;
	au.n_tables = na;
	memset(&p, 0, sizeof p);
	p.branch = sc_branch(j->sc);
	p.branch_id = j->sc->branch_id;
	if (a == ACT_FORWARD) /* a merge's: parents [H, S] */
		p.merge_parent = j->sc->merge.source_gv;
	p.op = a == ACT_FORWARD && j->sc->kind[0] ? j->sc->kind : "recover";
	p.op_id = j->sc->op_id;
	p.actor = a == ACT_FORWARD ? j->sc->actor : s->resolver;
	p.detail = detail.p;
	p.tables = pub;
	p.n_tables = np;
	p.sidecar = j->sc->op_id;
	p.require_sidecar = true;
	p.sidecar_rev = j->sc->rev; /* decide on what was classified */
	p.audit = &au;
	p.no_version = a == ACT_DISCARD;
	if (a == ACT_FORWARD && j->sc->schema_new[0]) {
		/* a schema apply: its graph version carries the new schema,
		 * published only over the schema it was checked against */
		p.schema_id = j->sc->schema_new;
		p.expected_schema = j->sc->schema_old;
	}
	if (!rc && !(sets = job_tver_sets(j, a, &p.n_tver_sets)))
		rc = -ENOMEM;
	p.tver_sets = sets;
	if (!rc)
		rc = gfs_manifest_publish(gfs_graph_manifest(s->g), &p, &s->version, pd);
	free(sets);
	gfs_buf_release(&detail);
	free(pub);
	free(aud);
	return rc;
}

/* ---- one sidecar -------------------------------------------------------- */

static void job_release(struct job *j)
{
	gfs_lockset_free(j->locks);
	gfs_sidecar_free(j->sc);
	free(j->ts);
	memset(j, 0, sizeof *j);
}

/* The listed sidecar's tables must be the re-read one's (a sidecar only
 * ever changes its confirmed flag). */
static bool same_tables(const struct gfs_sidecar *a, const struct gfs_sidecar *b)
{
	if (a->n_tables != b->n_tables)
		return false;
	for (size_t i = 0; i < a->n_tables; i++)
		if (strcmp(a->tables[i].table, b->tables[i].table) ||
		    a->tables[i].written != b->tables[i].written)
			return false;
	return true;
}

/* Locks (unless held), then re-reads the sidecar under them.  Returns 0,
 * or an outcome > 0 (gone, busy, refused), or an error. */
static int job_open(struct sweep *s, const struct gfs_sidecar *listed,
		    const char *op_id, struct job *j)
{
	int rc = 0;

	if (listed && !s->held) {
		rc = lock_job(s, listed, &j->locks);
		if (rc == -EWOULDBLOCK)
			return OUT_BUSY;
		if (!rc)
			rc = fp(GFS_FP_RECOVER_AFTER_LOCKS);
		if (rc)
			return rc;
	}
	rc = gfs_manifest_sidecar_get(gfs_graph_manifest(s->g), op_id, &j->sc);
	if (rc == -ENOENT)
		return OUT_GONE;
	if (rc == GFS_EFORMAT)
		return OUT_REFUSED;
	/* etcd: every write resolving it also proves its owner's leases gone */
	if (!rc && j->locks)
		rc = gfs_lockset_owner_gone(j->locks, j->sc->holder);
	if (!rc && listed && !same_tables(listed, j->sc)) {
		gfs_diag_set(s->d, "sidecar %s changed its tables while it was being resolved", op_id);
		return GFS_EVIOLATION;
	}
	return rc;
}

static int outcome_of(struct sweep *s, const struct job *j, enum action a,
		      int rc, const struct gfs_diag *pd)
{
	if (rc == GFS_EGONE)
		return OUT_GONE;
	if (rc == GFS_ECAS) {
		note(s, "operation %s: pins moved (%s); kept for the next pass",
		     j->sc->op_id, pd->msg);
		return OUT_RETRY;
	}
	if (rc) {
		gfs_diag_set(s->d, "resolving operation %s: %s", j->sc->op_id,
			     pd->msg[0] ? pd->msg : gfs_strerror(rc));
		return rc;
	}
	note(s, "operation %s (%s by %s): %s%s%" PRIu64, j->sc->op_id, j->sc->kind,
	     j->sc->actor, act_names[a], s->version ? ", graph version " : "",
	     s->version);
	return a == ACT_FORWARD ? OUT_FORWARD : a == ACT_BACK ? OUT_BACK : OUT_DISCARD;
}

/* fsyncgate: the versions a publish points at may have been linked by a
 * process whose directory fsync failed (and that failed for it).  Never
 * trust such a name: fsync every moving table's directory again first; if
 * that fails, the publish does not happen and the sidecar stays. */
static int sync_moving(struct sweep *s, const struct job *j, enum action a)
{
	uint32_t post;
	int rc = 0;

	for (size_t i = 0; !rc && i < j->sc->n_tables; i++)
		if (moves(a, &j->ts[i], &post))
			rc = gfs_table_sync(gfs_graph_tables(s->g),
					    j->sc->tables[i].table);
	if (rc)
		gfs_diag_set(s->d, "operation %s: %s", j->sc->op_id,
			     gfs_io_last(rc) ? gfs_io_last(rc) : gfs_strerror(rc));
	return rc;
}

/* Temp files (".tmp-*") in the op's written tables, before the publish
 * that deletes its sidecar (invariant 130).  A builder creates one only
 * after its writer armed the sidecar and unlinks it before confirming, so
 * a leftover belongs to an operation whose sidecar still exists; whoever
 * resolves that sidecar holds the table's LOCK_EX, so no live writer's
 * temp file is there (under the test-only commit/skip_locks one may be:
 * its link() then fails with ENOENT, a clean failure of that writer, whose
 * sidecar this resolution settles).  Removed before the publish: a crash
 * in between keeps the sidecar, and the next resolver removes them.  The
 * one listing of the directory is here, never in a commit (issue 10).
 * A failure (an unlink, the directory's fsync) stops the resolution and
 * keeps the sidecar: after a failed fsync of a directory a later one may
 * succeed without making the earlier names durable (fsyncgate), so the
 * resolution must not go on to trust sync_moving's. */
static int remove_tmp(struct sweep *s, const struct job *j)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < j->sc->n_tables; i++) {
		const char *t = j->sc->tables[i].table;
		unsigned n = 0;
		if (!j->sc->tables[i].written)
			continue;
		rc = gfs_table_remove_tmp(gfs_graph_tables(s->g), t, &n);
		s->r->temps_removed += n;
		if (rc)
			gfs_diag_set(s->d, "operation %s: removing temp files of table '%s': %s",
				     j->sc->op_id, t,
				     gfs_io_last(rc) ? gfs_io_last(rc) : gfs_strerror(rc));
		else if (n)
			note(s, "operation %s: %u temp file(s) of a dead writer removed from table '%s'",
			     j->sc->op_id, n, t);
	}
	return rc;
}

static int act(struct sweep *s, struct job *j, enum action a)
{
	struct gfs_diag pd = {{0}};
	int rc = 0;

	if (a == ACT_BACK)
		rc = compensate(s, j);
	if (rc == GFS_EVIOLATION)
		a = ACT_VIOLATION;
	if (a == ACT_VIOLATION) {
		report_violation(s, j);
		return OUT_VIOLATION;
	}
	if (!rc)
		rc = remove_tmp(s, j);
	if (!rc && a != ACT_DISCARD)
		rc = sync_moving(s, j, a);
	if (!rc)
		rc = fp(GFS_FP_RECOVER_BEFORE_AUDIT);
	if (!rc)
		rc = publish_job(s, j, a, &pd);
	rc = outcome_of(s, j, a, rc, &pd);
	if (rc == (int)OUT_FORWARD || rc == (int)OUT_BACK || rc == (int)OUT_DISCARD) {
		int e = fp(GFS_FP_RECOVER_AFTER_PUBLISH);
		rc = e ? e : rc;
	}
	return rc;
}

/* A gc's sidecar (kind "gc", gc.c): it writes no table version, so there
 * is nothing to classify.  Not confirmed: discarded (nothing was
 * unlinked, no version removed).  Confirmed (its commit point passed):
 * rolled forward, its unlinks done again (ENOENT is done) and their
 * directories fsynced before the sidecar goes.  No graph version either
 * way. */
static int resolve_gc(struct sweep *s, struct job *j)
{
	enum action a = j->sc->confirmed ? ACT_FORWARD : ACT_DISCARD;
	struct gfs_diag pd = {{0}};
	struct gfs_publish p;
	struct gfs_audit au;
	int rc = 0;

	if (a == ACT_FORWARD && !j->sc->gc) {
		gfs_diag_set(s->d, "gc %s is confirmed but its sidecar has no plan: kept", j->sc->op_id);
		note(s, "%s", s->d->msg);
		return OUT_VIOLATION;
	}
	if (a == ACT_FORWARD)
		rc = gfs_gc_unlink(s->g, j->sc->gc, NULL, &pd);
	if (!rc)
		rc = fp(GFS_FP_RECOVER_BEFORE_AUDIT);
	audit_init(&au, s, j->sc->op_id, act_names[a], j->sc->kind, j->sc->actor);
	memset(&p, 0, sizeof p);
	p.no_version = true;
	p.sidecar = j->sc->op_id;
	p.require_sidecar = true;
	p.sidecar_rev = j->sc->rev;
	p.audit = &au;
	s->version = 0;
	if (!rc)
		rc = gfs_manifest_publish(gfs_graph_manifest(s->g), &p, NULL, &pd);
	return outcome_of(s, j, a, rc, &pd);
}

/* Resolves one sidecar.  Returns an enum outcome (>= 0) or an error. */
static int resolve(struct sweep *s, const struct gfs_sidecar *listed,
		   const char *op_id)
{
	struct job j = {0};
	int rc = job_open(s, listed, op_id, &j);

	if (!rc && !strcmp(j.sc->kind, "gc")) {
		rc = resolve_gc(s, &j);
		job_release(&j);
		return rc;
	}
	if (!rc)
		rc = classify(s, &j);
	if (!rc)
		rc = fp(GFS_FP_RECOVER_AFTER_CLASSIFY);
	if (!rc)
		rc = act(s, &j, decide(&j));
	if (rc == OUT_REFUSED) {
		gfs_diag_reset(s->d, "sidecar %s does not parse or has a newer format than %d: refused and kept; a newer graphfs must resolve it",
			       op_id, GFS_SIDECAR_FORMAT);
		note(s, "%s", s->d->msg);
	}
	job_release(&j);
	return rc;
}

/* ---- passes over the sidecars ------------------------------------------- */

/* The index of table in only_tables, or -1 (and 0 when there is no
 * restriction: the whole store). */
static long only_index(const struct sweep *s, const char *table)
{
	for (size_t k = 0; k < s->o->n_only; k++)
		if (!strcmp(table, s->o->only_tables[k]))
			return (long)k;
	return s->o->n_only ? -1 : 0;
}

static bool only_has(const struct sweep *s, const char *table)
{
	return only_index(s, table) >= 0;
}

/* Does a sidecar table conflict with the caller's lock on it?  EX against
 * anything, SH against EX; two readers never do (DESIGN.md §3). */
static bool conflicts(const struct sweep *s, const struct gfs_sc_table *t)
{
	long k = only_index(s, t->table);

	if (k < 0)
		return false;
	return t->written || !s->o->only_modes ||
	       s->o->only_modes[k] == GFS_LOCK_EX;
}

/* Heal-first resolves only sidecars whose locks conflict with the
 * writer's: one that does not could belong to a live writer (even a
 * stopped one) that the writer must not wait for, and a dead one touches
 * nothing the writer reads or writes.  A record that does not parse names
 * none it could prove, so a writer leaves it to the full sweep (its own
 * orphan check refuses a head above a pin). */
static bool wanted(const struct sweep *s, const struct gfs_sidecar *sc)
{
	if (!s->o->n_only)
		return true;
	for (size_t i = 0; !sc->raw && i < sc->n_tables; i++)
		if (conflicts(s, &sc->tables[i]))
			return true;
	return false;
}

static bool in_set(char (*ids)[GFS_ULID_LEN + 1], size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ids[i], id))
			return true;
	return false;
}

static void tally(struct gfs_recover_report *r, int out)
{
	unsigned *c[] = {
		[OUT_FORWARD] = &r->rolled_forward, [OUT_BACK] = &r->rolled_back,
		[OUT_DISCARD] = &r->discarded, [OUT_GONE] = &r->gone,
		[OUT_BUSY] = &r->busy, [OUT_RETRY] = NULL,
		[OUT_VIOLATION] = &r->violations, [OUT_REFUSED] = &r->refused,
	};

	if (out >= 0 && (size_t)out < GFS_ARRAY_SIZE(c) && c[out])
		(*c[out])++;
}

struct pass {
	char (*prev)[GFS_ULID_LEN + 1]; /* retry set of the previous pass */
	size_t n_prev;                 /* SIZE_MAX: first pass, take all */
	char (*next)[GFS_ULID_LEN + 1];
	size_t n_next;
	int err;                       /* first hard error */
};

static int pass_run(struct sweep *s, struct pass *p)
{
	struct gfs_sidecar **scs = NULL;
	size_t n = 0;
	int rc = gfs_manifest_sidecar_list(gfs_graph_manifest(s->g), &scs, &n);

	if (!rc && !(p->next = calloc(n + 1, sizeof *p->next)))
		rc = -ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		const struct gfs_sidecar *sc = scs[i];
		bool raw = sc->raw != NULL;
		if ((p->n_prev != SIZE_MAX && !in_set(p->prev, p->n_prev, sc->op_id)) ||
		    !wanted(s, sc))
			continue;
		int out = resolve(s, raw ? NULL : sc, sc->op_id);
		if (out == OUT_RETRY)
			memcpy(p->next[p->n_next++], sc->op_id, sizeof *p->next);
		else if (out < 0 && !p->err)
			p->err = out;
		tally(s->r, out);
	}
	for (size_t i = 0; i < n; i++)
		gfs_sidecar_free(scs[i]);
	free(scs);
	return rc;
}

static int passes(struct sweep *s)
{
	unsigned max = s->o->max_passes ? s->o->max_passes : DEFAULT_PASSES;
	struct pass p = { .n_prev = SIZE_MAX };
	int rc = 0;

	for (unsigned k = 0; !rc && k < max; k++) {
		rc = pass_run(s, &p);
		free(p.prev);
		p.prev = p.next;
		p.n_prev = p.n_next;
		p.next = NULL;
		p.n_next = 0;
		if (!p.n_prev)
			break;
	}
	s->r->retry_left = rc ? 0 : (unsigned)p.n_prev;
	free(p.prev);
	free(p.next);
	return rc ? rc : p.err;
}

/* ---- settled versions (the pre-index rule) ------------------------------
 * No longer used by the library (the index tver says what a number is);
 * kept for the unit tests' invariant checker, which states the old rule
 * and must keep holding on a store with only main. */

/* Is version v of table a compensation stamped by an operation no sidecar
 * names?  1 yes, 0 no, <0 an error. */
static int settled_one(struct gfs_graph *g, const char *table, uint32_t v)
{
	struct gfs_tver_info info;
	struct gfs_sidecar *sc = NULL;
	int rc = stamp_of(g, table, v, &info);

	if (rc <= 0)
		return rc;
	if (!info.compensation)
		return 0;
	rc = gfs_manifest_sidecar_get(gfs_graph_manifest(g), info.op_id, &sc);
	gfs_sidecar_free(sc);
	if (rc == -ENOENT)
		return 1;
	return rc == 0 || rc == GFS_EFORMAT ? 0 : rc;
}

int gfs_settled_above(struct gfs_graph *g, const char *table, uint32_t pin,
		      uint32_t head, bool *settled)
{
	int rc = 1;

	for (uint32_t v = pin + 1; rc == 1 && v <= head; v++)
		rc = settled_one(g, table, v);
	*settled = rc == 1 && head > pin;
	return rc < 0 ? rc : 0;
}

/* ---- orphans ------------------------------------------------------------ */

/* Does a sidecar name table (any role), or is any unreadable?  Then the
 * version above the pin may be a sidecar's business, not an orphan. */
static int named(struct sweep *s, const char *table, bool *yes)
{
	struct gfs_sidecar **scs = NULL;
	size_t n = 0;
	int rc = gfs_manifest_sidecar_list(gfs_graph_manifest(s->g), &scs, &n);

	*yes = false;
	for (size_t i = 0; !rc && i < n; i++) {
		*yes = *yes || scs[i]->raw;
		for (size_t k = 0; k < scs[i]->n_tables; k++)
			*yes = *yes || !strcmp(scs[i]->tables[k].table, table);
	}
	for (size_t i = 0; i < n; i++)
		gfs_sidecar_free(scs[i]);
	free(scs);
	return rc;
}

/* ---- orphans against the index (docs/branches-design.md §3.3) --------- */

/* The version files of one table that the index does not account for:
 * no tver record, or a `void` one (a number reserved, then resolved
 * without a file; a file there was made by no reservation).  One listing
 * of the directory and one range read of tver[T]; no header is read. */
struct orphan_scan {
	uint32_t *known;        /* numbers with a live record, sorted */
	size_t n_known, cap_known;
	uint32_t *orph;         /* orphan numbers, sorted */
	size_t n_orph, cap_orph;
};

static int push_u32(uint32_t **a, size_t *n, size_t *cap, uint32_t v)
{
	void *p = gfs_array_grow(*a, cap, *n, sizeof **a, 64);

	if (!p)
		return -ENOMEM;
	*a = p;
	(*a)[(*n)++] = v;
	return 0;
}

static int known_cb(const struct gfs_tver_rec *r, void *arg)
{
	struct orphan_scan *o = arg;

	if (r->state == GFS_TVER_VOID)
		return 0;
	return push_u32(&o->known, &o->n_known, &o->cap_known, r->v);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}


static void orphan_scan_free(struct orphan_scan *o)
{
	free(o->known);
	free(o->orph);
	memset(o, 0, sizeof *o);
}

int gfs_table_orphans(struct gfs_graph *g, const char *table,
		      uint32_t **orphans, size_t *n)
{
	struct orphan_scan o = { 0 };
	uint32_t *vers = NULL;
	size_t nv = 0;
	unsigned tmps;
	int rc = gfs_manifest_tver_list(gfs_graph_manifest(g), table, known_cb, &o);

	*orphans = NULL;
	*n = 0;
	if (!rc)
		rc = gfs_table_list(gfs_graph_tables(g), table, &vers, &nv, &tmps);
	for (size_t i = 0; !rc && i < nv; i++) /* vers sorted: so is orph */
		if (!o.n_known || !bsearch(&vers[i], o.known, o.n_known, sizeof *vers, u32_cmp))
			rc = push_u32(&o.orph, &o.n_orph, &o.cap_orph, vers[i]);
	free(vers);
	if (rc) {
		orphan_scan_free(&o);
		return rc;
	}
	free(o.known);
	*orphans = o.orph;
	*n = o.n_orph;
	return 0;
}

/* The compensation of pin m for orphans at or above next[T]: the highest
 * orphan itself when it is already one of m (a crashed orphan pass), else
 * a new one at the number above every orphan and the counter. */
static int orphan_comp(struct sweep *s, const char *table, uint32_t m,
		       uint32_t top, uint32_t next, uint32_t *target,
		       char op_id[GFS_ULID_LEN + 1])
{
	struct gfs_tver_info info = {0};
	uint32_t undone = top;
	int rc = stamp_of(s->g, table, top, &info);

	if (rc < 0)
		return rc;
	if (rc == 1 && info.compensation && info.content_of == m) {
		*target = top;
		memcpy(op_id, info.op_id, GFS_ULID_LEN + 1);
		return 0;
	}
	/* serials go above the orphan's when it opens; one that does not (a
	 * copy made by hand) was never shown to anyone: above the pin's */
	if (rc == 0)
		undone = m;
	*target = top + 1 > next ? top + 1 : next;
	rc = gfs_ulid_new(op_id);
	if (!rc) {
		struct gfs_diag d = {{0}};
		rc = gfs_table_write_compensation_of(gfs_graph_tables(s->g), table,
						     *target, undone, m, op_id, &d);
		if (rc)
			gfs_diag_set(s->d, "compensating orphan version %u of table '%s': %s",
				     top, table, d.msg[0] ? d.msg : gfs_strerror(rc));
	}
	return rc ? rc : fp(GFS_FP_RECOVER_AFTER_COMPENSATE);
}

/* What an orphan publish did: counted and said; GFS_ECAS (the pin moved)
 * leaves the table for the next pass. */
static int orphan_done(struct sweep *s, const char *table, uint32_t m,
		       uint32_t target, const char *op_id, size_t n, int rc,
		       const struct gfs_diag *pd)
{
	const char *decision = target ? "orphan-compensated" : "orphan-retired";

	if (rc == GFS_ECAS) {
		s->r->retry_left++;
		return 0;
	}
	if (rc) {
		gfs_diag_set(s->d, "publishing the %s of table '%s': %s", decision, table,
			     pd->msg[0] ? pd->msg : gfs_strerror(rc));
		return rc;
	}
	if (!target) {
		s->r->orphans_retired++;
		note(s, "table '%s': %zu orphan version(s) below its counter retired (operation %s)",
		     table, n, op_id);
		return 0;
	}
	s->r->orphans_compensated++;
	note(s, "table '%s': orphan versions above pin %u compensated by version %u (operation %s), graph version %" PRIu64,
	     table, m, target, op_id, s->version);
	return fp(GFS_FP_RECOVER_AFTER_PUBLISH);
}

/* One publish: the orphans retired; with a target, the compensation
 * published on main (audit orphan-compensated), else no graph version
 * (audit orphan-retired: nothing pins a void number).  The CAS checks
 * that the pin is still m. */
static int orphan_publish(struct sweep *s, const char *table, uint32_t m,
			  uint32_t target, const char *op_id,
			  const uint32_t *orph, size_t n)
{
	struct gfs_sc_table t = { .written = target != 0, .expected = m,
				  .post = target ? target : m };
	const char *decision = target ? "orphan-compensated" : "orphan-retired";
	struct gfs_tver_set *sets = calloc(n + 1, sizeof *sets);
	struct gfs_diag pd = {{0}};
	struct gfs_publish p = { .op = "recover", .op_id = op_id,
				 .actor = s->resolver, .tables = &t,
				 .n_tables = 1, .no_version = !target };
	struct gfs_audit au;
	char detail[64];
	int rc;

	if (!sets)
		return -ENOMEM;
	snprintf(t.table, sizeof t.table, "%s", table);
	snprintf(detail, sizeof detail, "{\"decision\":\"%s\"}", decision);
	audit_init(&au, s, op_id, decision, "recover", s->resolver);
	au.tables = &t;
	au.n_tables = 1;
	p.detail = detail;
	p.audit = &au;
	for (size_t i = 0; i < n; i++)
		if (orph[i] != target)
			tver_set(sets, &p.n_tver_sets, table, orph[i], GFS_TVER_RETIRED);
	p.tver_sets = sets;
	rc = fp(GFS_FP_RECOVER_BEFORE_AUDIT);
	if (!rc)
		rc = gfs_manifest_publish(gfs_graph_manifest(s->g), &p, &s->version, &pd);
	free(sets);
	return orphan_done(s, table, m, target, op_id, n, rc, &pd);
}

/* Under the table's lock: re-read pin, sidecars, index and listing, then
 * act (§3.3). */
static int orphan_locked(struct sweep *s, const char *table)
{
	char op_id[GFS_ULID_LEN + 1];
	struct gfs_gv *gv = NULL;
	uint32_t *orph = NULL, m, next = 1, target = 0;
	size_t n = 0;
	bool busy = false;
	int rc = named(s, table, &busy);

	if (!rc && !busy)
		rc = gfs_manifest_head(gfs_graph_manifest(s->g), &gv);
	if (rc || busy)
		return rc;
	m = gfs_gv_pin(gv, table);
	gfs_gv_free(gv);
	rc = gfs_table_orphans(s->g, table, &orph, &n);
	if (!rc && n)
		rc = gfs_manifest_next(gfs_graph_manifest(s->g), table, &next);
	if (!rc && n && orph[n - 1] >= next) {
		rc = orphan_comp(s, table, m, orph[n - 1], next, &target, op_id);
		if (!rc && (rc = gfs_table_sync(gfs_graph_tables(s->g), table)))
			gfs_diag_set(s->d, "orphan compensation of table '%s': %s", table,
				     gfs_io_last(rc) ? gfs_io_last(rc) : gfs_strerror(rc));
	} else if (!rc && n) {
		rc = gfs_ulid_new(op_id);
	}
	if (!rc && n)
		rc = orphan_publish(s, table, m, target, op_id, orph, n);
	free(orph);
	return rc;
}

static int orphan_one(struct sweep *s, const char *table)
{
	struct gfs_sidecar sc = { .n_tables = 1 };
	struct gfs_sc_table t = { .written = true };
	struct gfs_lockset *ls = NULL;
	int rc;

	snprintf(t.table, sizeof t.table, "%s", table);
	sc.tables = &t;
	rc = lock_job(s, &sc, &ls);
	if (rc == -EWOULDBLOCK) {
		s->r->busy++;
		return 0;
	}
	if (!rc)
		rc = orphan_locked(s, table);
	gfs_lockset_free(ls);
	return rc;
}

/* Each table once: an unlocked look first (most tables have none, and a
 * table a sidecar names is left to its resolver), then under LOCK_EX. */
static int orphans(struct sweep *s)
{
	struct gfs_gv *gv = NULL;
	int rc = gfs_manifest_head(gfs_graph_manifest(s->g), &gv), first = 0;

	for (size_t i = 0; !rc && i < gv->n_pins; i++) {
		const char *t = gv->pins[i].table;
		uint32_t *orph = NULL;
		size_t n = 0;
		bool busy = false;
		int e;
		if (!only_has(s, t))
			continue;
		e = gfs_table_orphans(s->g, t, &orph, &n);
		free(orph);
		if (!e && n)
			e = named(s, t, &busy);
		if (!e && n && !busy)
			e = orphan_one(s, t);
		if (e && !first)
			first = e;
	}
	gfs_gv_free(gv);
	return rc ? rc : first;
}

/* ---- temp files of older builds ----------------------------------------- */

/* graphctl recover: every table's ".tmp-*" files, under its LOCK_EX (tried
 * by a no-wait sweep: a held one is a live writer's business).  Resolving
 * a sidecar removes its tables' temp files (remove_tmp); this catches the
 * ones that older builds left without one (they removed temp files in
 * every commit instead).  A failure is the sweep's error (fsyncgate: a
 * failed directory fsync is never left for a later one to hide). */
static int temps_one(struct sweep *s, const char *table)
{
	struct gfs_sidecar sc = { .n_tables = 1 };
	struct gfs_sc_table t = { .written = true };
	struct gfs_lockset *ls = NULL;
	unsigned n = 0;
	int rc;

	snprintf(t.table, sizeof t.table, "%s", table);
	sc.tables = &t;
	rc = lock_job(s, &sc, &ls);
	if (rc == -EWOULDBLOCK)
		return 0;
	if (!rc)
		rc = gfs_table_remove_tmp(gfs_graph_tables(s->g), table, &n);
	s->r->temps_removed += n;
	if (rc)
		gfs_diag_set(s->d, "removing temp files of table '%s': %s", table,
			     gfs_io_last(rc) ? gfs_io_last(rc) : gfs_strerror(rc));
	else if (n)
		note(s, "table '%s': %u temp file(s) of dead writers removed", table, n);
	gfs_lockset_free(ls);
	return rc;
}

static int temps(struct sweep *s)
{
	struct gfs_gv *gv = NULL;
	int rc = gfs_manifest_head(gfs_graph_manifest(s->g), &gv), first = 0;

	for (size_t i = 0; !rc && i < gv->n_pins; i++) {
		int e = only_has(s, gv->pins[i].table) ? temps_one(s, gv->pins[i].table) : 0;
		if (e && !first)
			first = e;
	}
	gfs_gv_free(gv);
	return rc ? rc : first;
}

/* ---- entry points ------------------------------------------------------- */

static void sweep_init(struct sweep *s, struct gfs_graph *g,
		       const struct gfs_recover_opts *o,
		       struct gfs_recover_report *r, struct gfs_diag *d)
{
	memset(s, 0, sizeof *s);
	s->g = g;
	s->o = o;
	s->r = r;
	s->d = d;
	snprintf(s->resolver, sizeof s->resolver, "%s",
		 o->resolver ? o->resolver : gfs_graph_actor(g));
	memset(r, 0, sizeof *r);
}

int gfs_recover_sweep(struct gfs_graph *g, const struct gfs_recover_opts *o,
		      struct gfs_recover_report *r, struct gfs_diag *d)
{
	struct sweep s;
	int rc;

	sweep_init(&s, g, o, r, d);
	rc = passes(&s);
	/* An unreadable sidecar might name any table: no orphan is provable. */
	if (!rc && o->orphans && !r->refused)
		rc = orphans(&s);
	if (!rc && o->temps)
		rc = temps(&s);
	if (!rc && r->violations)
		rc = GFS_EVIOLATION;
	return rc;
}

int gfs_heal_tables(struct gfs_graph *g, const char *const *tables,
		    const enum gfs_lock_mode *modes, size_t n, struct gfs_diag *d)
{
	struct gfs_recover_opts o = { .wait = true, .only_tables = tables,
				      .n_only = n, .only_modes = modes };
	struct gfs_recover_report r;
	int rc = gfs_recover_sweep(g, &o, &r, d);

	if (!rc && r.retry_left) {
		gfs_diag_set(d, "recovery needed: %u operation(s) on these tables could not be resolved (pins kept moving); run 'graphctl recover %s'",
			     r.retry_left, gfs_graph_dir(g));
		rc = GFS_ERECOVERY;
	}
	return rc;
}

struct audit_find {
	const char *op_id;
	bool forward;
	uint64_t version;
};

static int audit_find_cb(const struct gfs_audit *a, void *arg)
{
	struct audit_find *f = arg;

	if (!strcmp(a->op_id, f->op_id) && !strcmp(a->decision, act_names[ACT_FORWARD])) {
		f->forward = true;
		f->version = a->graph_version;
	}
	return 0;
}

/* The writer's sidecar is gone: did a sweep roll the operation forward
 * (its lease had expired)?  Then it is published, at *version. */
static bool gone_forward(struct gfs_graph *g, const char *op_id, uint64_t *version)
{
	struct audit_find f = { .op_id = op_id };
	size_t n = 0;

	if (gfs_manifest_audit_count(gfs_graph_manifest(g), op_id, &n) || !n ||
	    gfs_manifest_audit_list(gfs_graph_manifest(g), audit_find_cb, &f))
		return false;
	if (f.forward)
		*version = f.version;
	return f.forward;
}

int gfs_recover_own(struct gfs_graph *g, const char *op_id,
		    struct gfs_recover_own_result *res, struct gfs_diag *d)
{
	struct gfs_recover_opts o = { .wait = true };
	struct gfs_recover_report r;
	struct sweep s;
	int out;

	sweep_init(&s, g, &o, &r, d);
	s.held = true;
	memset(res, 0, sizeof *res);
	out = resolve(&s, NULL, op_id);
	if (out < 0)
		return out;
	res->version = s.version;
	res->forward = out == OUT_FORWARD;
	if (out == OUT_GONE && gone_forward(g, op_id, &res->version))
		res->forward = true;
	res->resolved = out == OUT_FORWARD || out == OUT_BACK || out == OUT_DISCARD ||
			out == OUT_GONE;
	if (out == OUT_VIOLATION)
		return GFS_EVIOLATION;
	if (!res->resolved) {
		gfs_diag_set(d, "operation %s could not be resolved now (%s)", op_id,
			     out == OUT_RETRY ? "pins moved" : "refused");
		return GFS_ERECOVERY;
	}
	return 0;
}
