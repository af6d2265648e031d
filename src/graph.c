/* graph.c - a store as a whole: init, open, schema cache, export, fsck.
 *
 * Layout (docs/format.md):
 *   FORMAT            "graphfs-store <format>\nid <ulid>\n", written last by
 *                     init: a directory without it is not a store
 *   manifest/         LMDB (store.c)
 *   tables/<t>/<N>    table versions (table.c)
 *   schemas/<id>.pg   schema texts by content id, immutable
 *   locks/<t>.lock    writer leases (lock.c)
 *   staging/          sort runs of running loads (O_TMPFILE: vanish on crash)
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "failpoints.h"
#include "graph.h"
#include "retain.h"
#include "load_int.h"

struct schema_ent {
	struct gfs_schema *s;
	struct schema_ent *next;
};

struct gfs_graph {
	char *dir;
	unsigned flags;
	struct gfs_manifest *m;
	struct gfs_tstore *ts;
	pthread_mutex_t schema_lock;
	struct schema_ent *schemas; /* protected by schema_lock */
	char actor[GFS_ACTOR_MAX];
};

static int path_join(char *out, size_t n, const char *dir, const char *rel)
{
	int k = snprintf(out, n, "%s/%s", dir, rel);

	return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

static int dir_is_empty_or_missing(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!dp)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dp)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			rc = -EEXIST;
			break;
		}
	closedir(dp);
	return rc;
}

/* Content-addressed, immutable: tmp + fsync + link; EEXIST means the same
 * bytes are already there. */
static int write_schema_file(const char *dir, const struct gfs_schema *s)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 48], sdir[PATH_MAX];
	int fd, rc;

	if ((rc = path_join(sdir, sizeof sdir, dir, "schemas")) ||
	    (rc = gfs_mkdir(sdir, GFS_DIR_MODE)))
		return rc;
	snprintf(path, sizeof path, "%s/%s.pg", sdir, s->id);
	snprintf(tmp, sizeof tmp, "%s/.tmp-%s.%d", sdir, s->id, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, GFS_FILE_MODE);
	if (fd < 0)
		return gfs_io_fail("create", tmp, -errno);
	rc = gfs_write_all(fd, s->text, s->text_len);
	if (!rc && !gfs_fp_hit(GFS_FP_SYNC_SKIP_SCHEMA) && fsync(fd) < 0)
		rc = gfs_io_fail("fsync", tmp, -errno);
	close(fd);
	if (!rc && link(tmp, path) < 0 && errno != EEXIST)
		rc = gfs_io_fail("link", path, -errno);
	unlink(tmp);
	if (rc || gfs_fp_hit(GFS_FP_SYNC_SKIP_SCHEMA_DIR))
		return rc;
	return gfs_fsync_dir(sdir);
}

int gfs_graph_schema_put(struct gfs_graph *g, const struct gfs_schema *s)
{
	return write_schema_file(g->dir, s);
}

/* Format 2: "graphfs-store 2\nid <ULID>\ncheck <xxh3 of what precedes,
 * %016x>\n".  Written to a temp file, fsync'd, renamed, directory fsync'd:
 * a crash leaves the old FORMAT or the new one. */
int gfs_graph_format_write(const char *dir, const char *store_id)
{
	char path[PATH_MAX], tmp[PATH_MAX], id[GFS_ULID_LEN + 1];
	struct gfs_buf b;
	int fd, rc = 0;

	if (store_id)
		snprintf(id, sizeof id, "%s", store_id);
	else if ((rc = gfs_ulid_new(id)))
		return rc;
	gfs_buf_init(&b);
	rc = gfs_buf_appendf(&b, "graphfs-store %d\nid %s\n", GFS_FORMAT_VERSION, id);
	if (!rc)
		rc = gfs_buf_appendf(&b, "check %016llx\n",
				     (unsigned long long)gfs_hash64(b.p, b.len));
	snprintf(path, sizeof path, "%s/FORMAT", dir);
	snprintf(tmp, sizeof tmp, "%s/.FORMAT.tmp", dir);
	fd = rc ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, GFS_FILE_MODE);
	if (!rc && fd < 0)
		rc = gfs_io_fail("create", tmp, -errno);
	if (!rc)
		rc = gfs_write_all(fd, b.p, b.len);
	if (!rc && !gfs_fp_hit(GFS_FP_SYNC_SKIP_FORMAT) && fsync(fd) < 0)
		rc = gfs_io_fail("fsync", tmp, -errno);
	if (fd >= 0)
		close(fd);
	if (!rc && rename(tmp, path) < 0)
		rc = gfs_io_fail("rename", path, -errno);
	if (rc)
		unlink(tmp);
	gfs_buf_release(&b);
	if (rc || gfs_fp_hit(GFS_FP_SYNC_SKIP_FORMAT_DIR))
		return rc;
	return gfs_fsync_dir(dir);
}

static int init_tables(const char *dir, const struct gfs_schema *s,
		       const char *op_id, struct gfs_pin *pins,
		       struct gfs_diag *d)
{
	struct gfs_tstore *ts;
	int rc = gfs_tstore_open(dir, &ts);

	for (size_t i = 0; !rc && i < s->n_types; i++) {
		struct gfs_tbuild *b = NULL;
		const struct gfs_typedef *t = &s->types[i];

		gfs_typedef_table(t, pins[i].table, sizeof pins[i].table);
		pins[i].version = 1;
		rc = gfs_table_create(ts, pins[i].table);
		if (!rc)
			rc = gfs_tbuild_new(ts, pins[i].table, NULL,
					    (unsigned)gfs_codec_n_unique(t), 0, &b);
		if (!rc)
			rc = gfs_tbuild_commit(b, 1, op_id, d);
		gfs_tbuild_free(b);
	}
	if (ts)
		gfs_tstore_close(ts);
	return rc;
}

static int pin_cmp(const void *a, const void *b)
{
	return strcmp(((const struct gfs_pin *)a)->table,
		      ((const struct gfs_pin *)b)->table);
}

/* Invariant 56: FORMAT is init's commit point, so everything it vouches
 * for is durable before its name can be: the names the manifest's backend
 * created (gfs_manifest_sync_created) before FORMAT is renamed into place. */
static int init_manifest(const char *dir, const struct gfs_schema *s,
			 const char *op_id, struct gfs_pin *pins,
			 const char *actor, struct gfs_diag *d)
{
	struct gfs_manifest *m;
	struct gfs_gv gv;
	int rc;

	memset(&gv, 0, sizeof gv);
	gv.version = 1;
	gv.time_ns = gfs_now_ns();
	snprintf(gv.op, sizeof gv.op, "init");
	snprintf(gv.op_id, sizeof gv.op_id, "%s", op_id);
	snprintf(gv.actor, sizeof gv.actor, "%s", actor);
	memcpy(gv.schema_id, s->id, sizeof gv.schema_id);
	qsort(pins, s->n_types, sizeof *pins, pin_cmp);
	gv.pins = pins;
	gv.n_pins = s->n_types;
	rc = gfs_manifest_open(dir, GFS_MANIFEST_CREATE, &m, d);
	if (rc)
		return rc;
	rc = gfs_manifest_init(m, &gv);
	gfs_manifest_close(m);
	return rc ? rc : gfs_manifest_sync_created(dir, d);
}

static void default_actor(char *out, size_t n, const char *prog)
{
	char host[64] = "localhost";
	const struct passwd *pw = getpwuid(getuid());
	const char *user = pw ? pw->pw_name : getenv("USER");

	gethostname(host, sizeof host - 1);
	snprintf(out, n, "%s pid %d on %s (user %s)", prog, (int)getpid(),
		 host, user ? user : "?");
}

int gfs_graph_init(const char *dir, const char *text, size_t len,
		   const char *schema_name, const char *actor,
		   struct gfs_diag *d)
{
	struct gfs_schema *s = NULL;
	struct gfs_pin *pins = NULL;
	char op_id[GFS_ULID_LEN + 1], act[GFS_ACTOR_MAX];
	int rc;

	rc = gfs_schema_check_text(text, len, schema_name, d);
	if (!rc)
		rc = gfs_schema_parse(text, len, schema_name, &s, d);
	if (rc)
		return rc;
	rc = dir_is_empty_or_missing(dir);
	if (rc == -EEXIST)
		gfs_diag_set(d, "'%s' is not empty: init needs a new or empty directory", dir);
	if (!rc && (rc = gfs_mkdir(dir, GFS_DIR_MODE)))
		gfs_diag_set(d, "cannot create '%s': %s", dir, gfs_strerror(rc));
	/* Invariant 55: the store's own name survives a power cut. */
	if (!rc && !gfs_fp_hit(GFS_FP_SYNC_SKIP_STORE_PARENT) &&
	    (rc = gfs_fsync_parent(dir)))
		gfs_diag_set(d, "cannot fsync the directory holding '%s': %s",
			     dir, gfs_strerror(rc));
	if (!rc)
		rc = gfs_ulid_new(op_id);
	pins = rc ? NULL : calloc(s->n_types ? s->n_types : 1, sizeof *pins);
	if (!rc && !pins)
		rc = -ENOMEM;
	if (!actor) {
		default_actor(act, sizeof act, "graphctl");
		actor = act;
	}
	if (!rc)
		rc = write_schema_file(dir, s);
	if (!rc)
		rc = init_tables(dir, s, op_id, pins, d);
	if (!rc)
		rc = init_manifest(dir, s, op_id, pins, actor, d);
	if (!rc && (rc = gfs_graph_format_write(dir, NULL))) {
		/* Not durable: a failed init leaves no FORMAT.  (Only init may
		 * do this: upgrade's FORMAT replaces one that must stay.) */
		char path[PATH_MAX];

		snprintf(path, sizeof path, "%s/FORMAT", dir);
		unlink(path);
	}
	free(pins);
	gfs_schema_free(s);
	return rc;
}

/* The exact text of a format-1 FORMAT file, or of a format-2 one whose
 * check line verifies; the store id is copied out. */
static int format_parse(const char *txt, size_t len, int *ver,
			char id[GFS_ULID_LEN + 1])
{
	const size_t body = sizeof "graphfs-store 2\nid \n" - 1 + GFS_ULID_LEN;
	char want[32];
	int n = 0;

	if (sscanf(txt, "graphfs-store %d\n%n", ver, &n) != 1 || n == 0)
		return GFS_ECORRUPT;
	if (*ver < 1 || *ver > GFS_FORMAT_VERSION)
		return GFS_EFORMAT;
	if (len < body || (size_t)n + 3 + GFS_ULID_LEN != body - 1 ||
	    strncmp(txt + n, "id ", 3) || txt[body - 1] != '\n')
		return GFS_ECORRUPT;
	memcpy(id, txt + n + 3, GFS_ULID_LEN);
	id[GFS_ULID_LEN] = '\0';
	if (!gfs_ulid_valid(id))
		return GFS_ECORRUPT;
	if (*ver == 1)
		return len == body ? 0 : GFS_ECORRUPT;
	snprintf(want, sizeof want, "check %016llx\n",
		 (unsigned long long)gfs_hash64(txt, body));
	return len == body + strlen(want) && !memcmp(txt + body, want, strlen(want))
		       ? 0 : GFS_ECORRUPT;
}

int gfs_graph_format_read(const char *dir, int *ver, char id[GFS_ULID_LEN + 1],
			  struct gfs_diag *d)
{
	char path[PATH_MAX], *txt = NULL;
	size_t len = 0;
	int rc;

	*ver = 0;
	if ((rc = path_join(path, sizeof path, dir, "FORMAT")))
		return rc;
	rc = gfs_read_file(path, &txt, &len, 4096);
	if (rc == -ENOENT) {
		struct stat st;
		if (stat(dir, &st) < 0)
			gfs_diag_set(d, "store '%s' does not exist (create one with 'graphctl init %s --schema FILE.pg')", dir, dir);
		else
			gfs_diag_set(d, "'%s' is not a graphfs store (no FORMAT file)", dir);
		return -ENOENT;
	}
	if (rc) {
		gfs_diag_set(d, "cannot read '%s': %s", path, gfs_strerror(rc));
		return rc;
	}
	rc = format_parse(txt, len, ver, id);
	if (rc == GFS_EFORMAT)
		gfs_diag_set(d, "'%s': store format %d is not supported (this graphfs reads format %d)",
			     path, *ver, GFS_FORMAT_VERSION);
	else if (rc)
		gfs_diag_set(d, "'%s' is corrupt: not a valid format-%d FORMAT file (checksum or layout)",
			     path, *ver);
	free(txt);
	return rc;
}

static int check_format(const char *dir, struct gfs_diag *d)
{
	char id[GFS_ULID_LEN + 1];
	int ver, rc = gfs_graph_format_read(dir, &ver, id, d);

	if (!rc && ver != GFS_FORMAT_VERSION) {
		gfs_diag_set(d, "store '%s' has format %d, written by an older graphfs: run 'graphctl upgrade %s' (this graphfs reads format %d)",
			     dir, ver, dir, GFS_FORMAT_VERSION);
		rc = GFS_EFORMAT;
	}
	return rc;
}

int gfs_graph_open(const char *dir, unsigned flags, struct gfs_graph **out,
		   struct gfs_diag *d)
{
	struct gfs_graph *g;
	int rc;

	*out = NULL;
	rc = check_format(dir, d);
	if (rc)
		return rc;
	g = calloc(1, sizeof *g);
	if (!g || !(g->dir = gfs_strdup(dir))) {
		free(g);
		return -ENOMEM;
	}
	g->flags = flags;
	pthread_mutex_init(&g->schema_lock, NULL);
	default_actor(g->actor, sizeof g->actor,
		      program_invocation_short_name ? program_invocation_short_name : "graphfs");
	rc = gfs_manifest_open(dir, flags & GFS_GRAPH_RDONLY ? GFS_MANIFEST_RDONLY : 0,
			       &g->m, d);
	if (!rc)
		rc = gfs_tstore_open(dir, &g->ts);
	if (rc) {
		gfs_graph_close(g);
		return rc;
	}
	*out = g;
	return 0;
}

void gfs_graph_close(struct gfs_graph *g)
{
	struct schema_ent *e, *next;

	if (!g)
		return;
	for (e = g->schemas; e; e = next) {
		next = e->next;
		gfs_schema_free(e->s);
		free(e);
	}
	if (g->ts)
		gfs_tstore_close(g->ts);
	if (g->m)
		gfs_manifest_close(g->m);
	pthread_mutex_destroy(&g->schema_lock);
	free(g->dir);
	free(g);
}

const char *gfs_graph_dir(const struct gfs_graph *g) { return g->dir; }
struct gfs_manifest *gfs_graph_manifest(struct gfs_graph *g) { return g->m; }
struct gfs_tstore *gfs_graph_tables(struct gfs_graph *g) { return g->ts; }
const char *gfs_graph_actor(struct gfs_graph *g) { return g->actor; }

static int load_schema(struct gfs_graph *g, const char *id,
		       struct gfs_schema **out, struct gfs_diag *d)
{
	char path[PATH_MAX], name[64], *txt = NULL;
	size_t len = 0;
	int rc;

	snprintf(name, sizeof name, "schemas/%s.pg", id);
	if ((rc = path_join(path, sizeof path, g->dir, name)))
		return rc;
	rc = gfs_read_file(path, &txt, &len, (size_t)64 << 20);
	if (rc) {
		gfs_diag_set(d, "cannot read schema '%s': %s", path, gfs_strerror(rc));
		return rc;
	}
	rc = gfs_schema_parse_stored(txt, len, path, out, d);
	if (!rc && strcmp((*out)->id, id)) {
		gfs_diag_set(d, "schema file '%s' does not match its id", path);
		gfs_schema_free(*out);
		*out = NULL;
		rc = GFS_ECORRUPT;
	}
	free(txt);
	return rc;
}

int gfs_graph_schema(struct gfs_graph *g, const char *id,
		     const struct gfs_schema **out, struct gfs_diag *d)
{
	struct schema_ent *e;
	struct gfs_schema *s = NULL;
	int rc = 0;

	pthread_mutex_lock(&g->schema_lock);
	for (e = g->schemas; e; e = e->next)
		if (!strcmp(e->s->id, id))
			break;
	if (!e) {
		rc = load_schema(g, id, &s, d);
		e = rc ? NULL : calloc(1, sizeof *e);
		if (!rc && !e)
			rc = -ENOMEM;
		if (!rc) {
			e->s = s;
			e->next = g->schemas;
			g->schemas = e;
			s = NULL;
		}
		gfs_schema_free(s);
	}
	pthread_mutex_unlock(&g->schema_lock);
	*out = e ? e->s : NULL;
	return rc;
}

static int export_table(struct gfs_graph *g, const char *table, uint32_t ver,
			int fd, char *buf, size_t bufsz, struct gfs_diag *d)
{
	struct gfs_tver *tv;
	struct gfs_tver_info info;
	struct gfs_tcursor *c = NULL;
	uint64_t off = 0;
	int rc = gfs_tver_open(g->ts, table, ver, &tv, d);

	if (rc)
		return rc;
	gfs_tver_info(tv, &info);
	/* one cursor for the whole table: reads continue without a lookup,
	 * and its list of lines to check is allocated once */
	rc = gfs_tcursor_new(tv, &c);
	while (!rc && off < info.export_bytes) {
		size_t n = 0;
		rc = gfs_tcursor_read(c, off, buf, bufsz, &n);
		if (!rc && n == 0)
			rc = GFS_ECORRUPT;
		if (rc == GFS_ECORRUPT && !d->msg[0])
			gfs_diag_set(d, "%s", gfs_corrupt_last()[0] ? gfs_corrupt_last()
				     : "table export does not verify");
		if (!rc)
			rc = gfs_write_all(fd, buf, n);
		off += n;
	}
	gfs_tcursor_free(c);
	gfs_tver_close(tv);
	return rc;
}

/* Version n was not found: -ENOENT if gc removed it (its tombstone is
 * there) or it is above a head that verifies, else GFS_ECORRUPT (versions
 * run from 1 to the head without gaps, so a hole or an unreadable head is
 * damage). */
static int export_missing(struct gfs_graph *g, uint64_t n, struct gfs_diag *d)
{
	struct gfs_gv *head = NULL;
	int rc = gfs_manifest_get_any(g->m, n, &head);

	if (!rc && head->removed) {
		gfs_diag_set(d, "graph version %llu was removed by gc (its time stays in 'graphctl log')",
			     (unsigned long long)n);
		gfs_gv_free(head);
		return -ENOENT;
	}
	gfs_gv_free(head);
	head = NULL;
	rc = gfs_manifest_head(g->m, &head);
	if (rc == GFS_ECORRUPT || rc == -ENOENT) {
		gfs_diag_set(d, "%s", rc == GFS_ECORRUPT ? gfs_manifest_last_corruption()
			     : "manifest has no graph version: the manifest is corrupt");
		rc = GFS_ECORRUPT;
	} else if (!rc && n < head->version) {
		gfs_diag_set(d, "manifest record versions/%llu is missing below the head %llu: the manifest is corrupt (run 'graphctl fsck')",
			     (unsigned long long)n,
			     (unsigned long long)head->version);
		rc = GFS_ECORRUPT;
	} else if (!rc) {
		rc = -ENOENT;
	}
	gfs_gv_free(head);
	return rc;
}

int gfs_graph_export(struct gfs_graph *g, uint64_t version, const char *type,
		     int fd, struct gfs_diag *d)
{
	const struct gfs_schema *s;
	struct gfs_gv *gv = NULL;
	size_t bufsz = (size_t)1 << 20;
	char *buf = NULL, table[GFS_TABLE_NAME_MAX];
	int rc, matched = 0;

	gfs_corrupt_note("%s", "");
	rc = version ? gfs_manifest_get(g->m, version, &gv) : gfs_manifest_head(g->m, &gv);
	if (rc == GFS_ECORRUPT)
		gfs_diag_set(d, "%s", gfs_manifest_last_corruption());
	if (rc == -ENOENT)
		rc = export_missing(g, version, d);
	if (rc == -ENOENT)
		gfs_diag_set(d, "graph version %llu does not exist (see 'graphctl log')",
			     (unsigned long long)version);
	if (!rc)
		rc = gfs_graph_schema(g, gv->schema_id, &s, d);
	if (!rc && !(buf = malloc(bufsz)))
		rc = -ENOMEM;
	for (int edges = 0; !rc && edges < 2; edges++)
		for (size_t i = 0; !rc && i < s->n_types; i++) {
			const struct gfs_typedef *t = &s->types[i];
			if (t->is_edge != (edges == 1) || (type && strcmp(type, t->name)))
				continue;
			matched++;
			gfs_typedef_table(t, table, sizeof table);
			rc = export_table(g, table, gfs_gv_pin(gv, table), fd, buf, bufsz, d);
		}
	if (!rc && type && !matched) {
		gfs_diag_set(d, "no type '%s' in the schema of graph version %llu",
			     type, (unsigned long long)gv->version);
		rc = -ENOENT;
	}
	free(buf);
	gfs_gv_free(gv);
	return rc;
}

/* ---- fsck ---------------------------------------------------------------
 * Checks, for every table of the head: every version 1..head verifies
 * (gfs_tver_verify), head >= pin, and a head above the pin is named by a
 * sidecar (else it is an orphan).  Every graph version's pins exist.  Every
 * pending sidecar is reported (recovery resolves them). */

struct fsck_ctx {
	struct gfs_graph *g;
	void (*report)(const char *msg, void *arg);
	void (*garbage_note)(const char *msg, void *arg);
	void *arg;
	unsigned problems;
	unsigned garbage;      /* temp files of dead writers */
	struct gfs_pin *heads; /* table -> head, from the head's tables */
	size_t n_heads;
	uint64_t bad_versions;
	char (*schemas)[17];   /* schema ids already checked */
	size_t n_schemas, cap_schemas;
	/* After a gc (gfs_manifest_gc_gen > 0): what the kept graph versions
	 * and pending sidecars need; a missing version outside it was
	 * collected, not lost. */
	bool gc_ran;
	struct fsck_need *need;
	size_t n_need;
};

struct fsck_need {
	char table[GFS_TABLE_NAME_MAX];
	struct gfs_vset set;
};

static void fsck_report(struct fsck_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fsck_report(struct fsck_ctx *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	c->problems++;
	if (c->report)
		c->report(msg, c->arg);
}

static bool sidecar_names(struct gfs_sidecar **scs, size_t n, const char *table)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; scs[i]->tables && k < scs[i]->n_tables; k++)
			if (scs[i]->tables[k].written &&
			    !strcmp(scs[i]->tables[k].table, table))
				return true;
	return false;
}

/* The index against the files (docs/recovery.md "Orphans"): a file whose
 * number has no live record (none, or void) is an orphan; a published or
 * retired record whose file is not in the listing is a missing version
 * (collected and void records have none).  One range read of tver[T]
 * against the one listing fsck_table made; no header is read for it. */
struct fsck_idx {
	struct fsck_ctx *c;
	const char *table;
	const uint32_t *vers;   /* the listing, sorted */
	size_t n;
	uint32_t *live;         /* numbers with a live record, sorted */
	size_t n_live, cap_live;
	unsigned missing;
};

static bool listed(const uint32_t *a, size_t n, uint32_t v)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (a[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && a[lo] == v;
}

static int fsck_rec(const struct gfs_tver_rec *r, void *arg)
{
	struct fsck_idx *x = arg;
	void *p;

	if ((r->state == GFS_TVER_PUBLISHED || r->state == GFS_TVER_RETIRED) &&
	    !listed(x->vers, x->n, r->v) && x->missing++ < 20)
		fsck_report(x->c, "table '%s': version %u is %s in the index but its file is missing",
			    x->table, r->v, gfs_tver_state_name(r->state));
	if (r->state == GFS_TVER_VOID)
		return 0;
	p = gfs_array_grow(x->live, &x->cap_live, x->n_live, sizeof *x->live, 64);
	if (!p)
		return -ENOMEM;
	x->live = p;
	x->live[x->n_live++] = r->v; /* in key order: sorted */
	return 0;
}

static void fsck_index(struct fsck_ctx *c, const struct gfs_pin *pin,
		       struct gfs_sidecar **scs, size_t nsc,
		       const uint32_t *vers, size_t n)
{
	struct fsck_idx x = { .c = c, .table = pin->table, .vers = vers, .n = n };
	int rc = gfs_manifest_tver_list(c->g->m, pin->table, fsck_rec, &x);

	if (rc)
		fsck_report(c, "table '%s': cannot read its index: %s", pin->table,
			    gfs_strerror(rc));
	/* a table a pending sidecar writes may hold an older build's
	 * compensation with no record: its resolver decides */
	for (size_t i = 0; !rc && !sidecar_names(scs, nsc, pin->table) && i < n; i++)
		if (!listed(x.live, x.n_live, vers[i]))
			fsck_report(c, "table '%s': orphan version %u %s pin %u: no reservation made it (run 'graphctl recover')",
				    pin->table, vers[i],
				    vers[i] > pin->version ? "above" : "below", pin->version);
	free(x.live);
}

/* Temp files are garbage, not corruption: counted and noted, never a
 * problem (a resolver of their sidecar or graphctl recover removes them). */
static void fsck_tmp(struct fsck_ctx *c, const char *table, unsigned n)
{
	char msg[512];

	if (!n)
		return;
	c->garbage += n;
	snprintf(msg, sizeof msg, "table '%s': %u temp file%s (.tmp-*) of dead writers: garbage, never a version ('graphctl recover' removes them)",
		 table, n, n == 1 ? "" : "s");
	if (c->garbage_note)
		c->garbage_note(msg, c->arg);
}

static struct fsck_need *need_of(struct fsck_ctx *c, const char *table)
{
	struct fsck_need *n;

	for (size_t i = 0; i < c->n_need; i++)
		if (!strcmp(c->need[i].table, table))
			return &c->need[i];
	n = realloc(c->need, (c->n_need + 1) * sizeof *n);
	if (!n)
		return NULL;
	c->need = n;
	n = &n[c->n_need++];
	memset(n, 0, sizeof *n);
	snprintf(n->table, sizeof n->table, "%s", table);
	return n;
}

static void need_add(struct fsck_ctx *c, uint64_t gv, const char *table,
		     uint32_t v)
{
	struct fsck_need *n = need_of(c, table);
	struct gfs_diag d = {{0}};
	int rc = n ? gfs_tclosure_add(c->g, table, v, &n->set, &d) : -ENOMEM;

	if (rc && c->bad_versions++ < 20)
		fsck_report(c, "graph version %llu needs table '%s' version %u and the versions it reads: %s%s%s",
			    (unsigned long long)gv, table, v, gfs_strerror(rc),
			    d.msg[0] ? ": " : "", d.msg);
}

static int need_gv(const struct gfs_gv *gv, void *arg)
{
	struct fsck_ctx *c = arg;

	for (size_t i = 0; !gv->removed && i < gv->n_pins; i++)
		need_add(c, gv->version, gv->pins[i].table, gv->pins[i].version);
	return 0;
}

/* After a gc: the closure of every kept version's pins, and of what
 * pending sidecars name, each version checked to exist on the way. */
static void fsck_needs(struct fsck_ctx *c, struct gfs_sidecar **scs, size_t nsc)
{
	c->gc_ran = gfs_manifest_gc_gen(c->g->m) > 0;
	if (!c->gc_ran)
		return;
	gfs_manifest_history(c->g->m, 1, 0, need_gv, c);
	for (size_t i = 0; i < nsc; i++)
		for (size_t k = 0; k < scs[i]->n_tables; k++) {
			const struct gfs_sc_table *t = &scs[i]->tables[k];
			struct fsck_need *n = need_of(c, t->table);

			if (n)
				gfs_vset_add(&n->set, t->post);
			if (n && t->expected)
				gfs_vset_add(&n->set, t->expected);
		}
}

/* One listing of the table directory: the head, the temp files, the
 * index comparison, and every listed version verified (numbers have
 * gaps: only the files that are there). */
static void fsck_table(struct fsck_ctx *c, const struct gfs_pin *pin,
		       struct gfs_sidecar **scs, size_t nsc, uint32_t *head)
{
	uint32_t *vers = NULL, h;
	unsigned tmps = 0;
	size_t n = 0;
	int rc = gfs_table_list(c->g->ts, pin->table, &vers, &n, &tmps);

	*head = h = n ? vers[n - 1] : 0;
	if (rc) {
		fsck_report(c, "table '%s': cannot read its directory: %s", pin->table, gfs_strerror(rc));
		return;
	}
	fsck_tmp(c, pin->table, tmps);
	if (h < pin->version)
		fsck_report(c, "table '%s': the manifest pins version %u but the newest file is version %u (missing table-version file)",
			    pin->table, pin->version, h);
	fsck_index(c, pin, scs, nsc, vers, n);
	for (size_t i = 0; i < n; i++) {
		struct gfs_diag d = {{0}};
		rc = gfs_tver_verify(c->g->ts, pin->table, vers[i], &d);
		if (rc)
			fsck_report(c, "table '%s' version %u: %s%s%s", pin->table, vers[i],
				    gfs_strerror(rc), d.msg[0] ? ": " : "", d.msg);
	}
	free(vers);
}

/* Every graph version's schema: the file exists and its xxh3 is its id
 * (gfs_graph_schema checks both); each id once. */
static void fsck_schema(struct fsck_ctx *c, const struct gfs_gv *gv)
{
	const struct gfs_schema *s;
	struct gfs_diag d = {{0}};
	void *p;

	for (size_t i = 0; i < c->n_schemas; i++)
		if (!strcmp(c->schemas[i], gv->schema_id))
			return;
	p = gfs_array_grow(c->schemas, &c->cap_schemas, c->n_schemas,
			   sizeof *c->schemas, 4);
	if (p) {
		c->schemas = p;
		memcpy(c->schemas[c->n_schemas++], gv->schema_id, 17);
	}
	if (gfs_graph_schema(c->g, gv->schema_id, &s, &d))
		fsck_report(c, "graph version %llu: schema %s: %s",
			    (unsigned long long)gv->version, gv->schema_id,
			    d.msg);
}

/* schemas/<id>.pg that no graph version and no pending sidecar names: a
 * schema apply that stopped before publishing wrote it.  Garbage, not a
 * problem, and kept: content-addressed, so the next apply of that schema
 * reuses it (removing it could race an apply between its file and its
 * sidecar; docs/recovery.md "Schema apply"). */
static void fsck_schema_files(struct fsck_ctx *c, struct gfs_sidecar **scs,
			      size_t nsc)
{
	char dir[PATH_MAX], msg[512];
	struct dirent *de;
	DIR *dp;

	if (path_join(dir, sizeof dir, c->g->dir, "schemas") || !(dp = opendir(dir)))
		return;
	while ((de = readdir(dp))) {
		size_t n = strlen(de->d_name);
		bool named = false;
		if (n != 19 || strcmp(de->d_name + 16, ".pg"))
			continue;
		for (size_t i = 0; i < c->n_schemas && !named; i++)
			named = !strncmp(c->schemas[i], de->d_name, 16);
		for (size_t i = 0; i < nsc && !named; i++)
			named = !strncmp(scs[i]->schema_new, de->d_name, 16);
		if (named)
			continue;
		c->garbage++;
		snprintf(msg, sizeof msg, "schemas/%s: named by no graph version (a schema apply that did not publish): garbage, kept for the next apply of that schema",
			 de->d_name);
		if (c->garbage_note)
			c->garbage_note(msg, c->arg);
	}
	closedir(dp);
}

static int fsck_gv(const struct gfs_gv *gv, void *arg)
{
	struct fsck_ctx *c = arg;

	fsck_schema(c, gv);
	for (size_t i = 0; i < gv->n_pins; i++) {
		const struct gfs_pin *p = &gv->pins[i];
		uint32_t h = 0;
		bool known = false;
		for (size_t k = 0; k < c->n_heads; k++)
			if (!strcmp(c->heads[k].table, p->table)) {
				h = c->heads[k].version;
				known = true;
			}
		if (!known && gfs_table_head(c->g->ts, p->table, &h) == 0)
			known = true;
		if (p->version > h && c->bad_versions++ < 20)
			fsck_report(c, "graph version %llu pins '%s' at version %u, which does not exist",
				    (unsigned long long)gv->version, p->table, p->version);
	}
	return 0;
}

/* The newest graph version that decodes (a corrupt head is reported by
 * gfs_manifest_check; the tables are still checked against the one before). */
static int fsck_newest(struct fsck_ctx *c, struct gfs_gv **gv)
{
	uint64_t n = gfs_manifest_head_version(c->g->m);
	/* an initialized store has version 1 at least: none readable is
	 * corruption (gfs_corrupt_last() says where), never "no such file" */
	int rc = GFS_ECORRUPT;

	for (; n && rc; n--)
		rc = gfs_manifest_get(c->g->m, n, gv);
	if (rc == -ENOENT || (rc == GFS_ECORRUPT && !gfs_corrupt_last()[0])) {
		gfs_corrupt_note("manifest/data.mdb is corrupt: no graph version record can be read");
		rc = GFS_ECORRUPT;
	}
	if (rc)
		fsck_report(c, "cannot read any graph version of the manifest: %s",
			    gfs_corrupt_last()[0] ? gfs_corrupt_last() : gfs_strerror(rc));
	return rc;
}

/* Each version on its own, so one corrupt record (reported by
 * gfs_manifest_check) does not hide the others. */
static void fsck_history(struct fsck_ctx *c)
{
	uint64_t head = gfs_manifest_head_version(c->g->m);

	for (uint64_t v = 1; v <= head; v++) {
		struct gfs_gv *gv = NULL;
		int rc = gfs_manifest_get_any(c->g->m, v, &gv);
		if (rc == -ENOENT && c->bad_versions++ < 20)
			fsck_report(c, "graph version %llu is missing from the manifest",
				    (unsigned long long)v);
		if (!rc && gv->removed) /* a tombstone: its files may be collected */
			fsck_schema(c, gv);
		else if (!rc)
			fsck_gv(gv, c);
		gfs_gv_free(gv);
	}
}

int gfs_graph_fsck(struct gfs_graph *g,
		   void (*report)(const char *msg, void *arg), void *arg,
		   unsigned *problems)
{
	unsigned garbage;

	return gfs_graph_fsck_ex(g, report, NULL, arg, problems, &garbage);
}

/* Every branch's head and origin are graph versions that exist, its head
 * is on it (or is the version it was created at), and its id is a ULID. */
static void fsck_branches(struct fsck_ctx *c)
{
	struct gfs_branch *bs = NULL;
	size_t n = 0;
	int rc = gfs_manifest_branch_list(c->g->m, &bs, &n);

	if (rc)
		fsck_report(c, "cannot list the branches: %s", gfs_strerror(rc));
	for (size_t i = 0; !rc && i < n; i++) {
		const struct gfs_branch *b = &bs[i];
		struct gfs_gv *gv = NULL;
		int e = gfs_manifest_get(c->g->m, b->head, &gv);
		if (e)
			fsck_report(c, "branch '%s': its head, graph version %llu, cannot be read: %s",
				    b->name, (unsigned long long)b->head, gfs_strerror(e));
		else if (b->id[0] && b->head != b->from && strcmp(gv->branch, b->name))
			fsck_report(c, "branch '%s': its head, graph version %llu, is on branch '%s'",
				    b->name, (unsigned long long)b->head, gv->branch);
		gfs_gv_free(gv);
		if (b->id[0] && !gfs_ulid_valid(b->id))
			fsck_report(c, "branch '%s': id '%s' is not a ULID", b->name, b->id);
		if (b->from > b->head)
			fsck_report(c, "branch '%s': created at graph version %llu, above its head %llu",
				    b->name, (unsigned long long)b->from,
				    (unsigned long long)b->head);
	}
	free(bs);
}

int gfs_graph_fsck_ex(struct gfs_graph *g,
		      void (*report)(const char *msg, void *arg),
		      void (*garbage_note)(const char *msg, void *arg), void *arg,
		      unsigned *problems, unsigned *garbage)
{
	struct fsck_ctx c = { .g = g, .report = report,
			      .garbage_note = garbage_note, .arg = arg };
	struct gfs_sidecar **scs = NULL;
	struct gfs_gv *gv = NULL;
	const struct gfs_schema *s;
	struct gfs_diag d = {{0}};
	size_t nsc = 0;
	int rc;

	c.problems += (unsigned)gfs_manifest_check(g->m, report, arg);
	rc = fsck_newest(&c, &gv);
	if (rc)
		goto out;
	if (gfs_graph_schema(g, gv->schema_id, &s, &d))
		fsck_report(&c, "schema %s of the head: %s", gv->schema_id, d.msg);
	rc = gfs_manifest_sidecar_list(g->m, &scs, &nsc);
	if (rc)
		fsck_report(&c, "cannot list sidecars: %s", gfs_strerror(rc));
	for (size_t i = 0; i < nsc; i++)
		fsck_report(&c, "pending sidecar: operation %s (%s by %s, %s): recovery needed (run 'graphctl recover')",
			    scs[i]->op_id, scs[i]->kind, scs[i]->actor,
			    scs[i]->confirmed ? "confirmed" : "not confirmed");
	fsck_needs(&c, scs, nsc);
	c.heads = calloc(gv->n_pins ? gv->n_pins : 1, sizeof *c.heads);
	if (!c.heads) {
		rc = -ENOMEM;
		goto out;
	}
	c.n_heads = gv->n_pins;
	for (size_t i = 0; i < gv->n_pins; i++) {
		c.heads[i] = gv->pins[i];
		fsck_table(&c, &gv->pins[i], scs, nsc, &c.heads[i].version);
	}
	fsck_history(&c);
	fsck_branches(&c);
	fsck_schema_files(&c, scs, nsc);
	rc = 0;
out:
	for (size_t i = 0; i < c.n_need; i++)
		gfs_vset_release(&c.need[i].set);
	free(c.need);
	free(c.schemas);
	for (size_t i = 0; i < nsc; i++)
		gfs_sidecar_free(scs[i]);
	free(scs);
	free(c.heads);
	gfs_gv_free(gv);
	*problems = c.problems;
	*garbage = c.garbage;
	return rc;
}
