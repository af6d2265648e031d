/* graphctl - administer a graphfs store: init, load, export, snapshot, log,
 * schema, fsck.  A thin CLI over libgraphfs (src/graph.h); every command has
 * --help; exit codes are in graphctl(1):
 *   0 success, 1 failure (bad input, constraint, I/O; fsck: problems found),
 *   2 usage error, 3 recovery needed, 4 invariant violation,
 *   5 busy (upgrade: another process has the store open). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "failpoints.h"
#include "graph.h"
#include "recover.h"
#include "retain.h"

#define EXIT_USAGE 2
#define EXIT_RECOVERY 3
#define EXIT_VIOLATION 4
#define EXIT_BUSY 5

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
	const char *help;
	bool guarded; /* read-only: run in a child, a crash becomes an error */
};

static int exit_for(int rc)
{
	if (rc == GFS_ERECOVERY)
		return EXIT_RECOVERY;
	if (rc == GFS_EVIOLATION)
		return EXIT_VIOLATION;
	return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int fail(const char *what, int rc, const struct gfs_diag *d)
{
	const char *io = gfs_io_last(rc); /* which file, which system call */

	if (d && d->msg[0] && io && !strstr(d->msg, io))
		fprintf(stderr, "graphctl %s: %s (%s)\n", what, d->msg, io);
	else if (d && d->msg[0])
		fprintf(stderr, "graphctl %s: %s\n", what, d->msg);
	else if (rc == GFS_ECORRUPT && gfs_corrupt_last()[0])
		fprintf(stderr, "graphctl %s: %s\n", what, gfs_corrupt_last());
	else if (io)
		fprintf(stderr, "graphctl %s: %s\n", what, io);
	else
		fprintf(stderr, "graphctl %s: %s\n", what, gfs_strerror(rc));
	return exit_for(rc);
}

static int usage_error(const struct cmd *c, const char *msg)
{
	fprintf(stderr, "graphctl %s: %s\nusage: graphctl %s\nTry 'graphctl %s --help'.\n",
		c->name, msg, c->usage, c->name);
	return EXIT_USAGE;
}

static void print_help(const struct cmd *c)
{
	printf("usage: graphctl %s\n\n%s", c->usage, c->help);
}

static const struct cmd *find_cmd(const char *name);

/* Parses the common options; returns -1 to go on, or an exit status. */
struct opts {
	const char *store;
	const char *schema, *data, *mode, *type;
	uint64_t version;
	unsigned threads; /* load --threads; 0 = default */
	bool json, quiet;
	bool list, no_wait; /* recover */
	uint64_t keep_last, keep_since_ns; /* gc */
	bool dry_run;                      /* gc */
};

/* gc --keep-since: RFC 3339 in UTC ("2026-11-30T22:00:00Z", fraction
 * optional, as graphctl log prints) or seconds since the epoch. */
static int parse_time(const char *s, uint64_t *ns)
{
	struct tm tm;
	uint64_t secs, frac = 0, scale = 1000000000u;
	const char *p;

	if (!gfs_parse_u64(s, &secs) && secs < UINT64_MAX / 1000000000u) {
		*ns = secs * 1000000000u;
		return *ns ? 0 : -1;
	}
	memset(&tm, 0, sizeof tm);
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
	if (strcmp(p, "Z") || timegm(&tm) < 0)
		return -1;
	*ns = (uint64_t)timegm(&tm) * 1000000000u + frac;
	return 0;
}

static int parse_opts(const struct cmd *c, int argc, char **argv,
		      struct opts *o)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "schema", required_argument, NULL, 's' },
		{ "data", required_argument, NULL, 'd' },
		{ "mode", required_argument, NULL, 'm' },
		{ "type", required_argument, NULL, 't' },
		{ "version", required_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "list", no_argument, NULL, 'l' },
		{ "no-wait", no_argument, NULL, 'W' },
		{ "threads", required_argument, NULL, 'T' },
		{ "keep-last", required_argument, NULL, 'K' },
		{ "keep-since", required_argument, NULL, 'S' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof *o);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "hs:d:m:t:v:jql", lo, NULL)) != -1) {
		switch (ch) {
		case 'h': print_help(c); return EXIT_SUCCESS;
		case 's': o->schema = optarg; break;
		case 'd': o->data = optarg; break;
		case 'm': o->mode = optarg; break;
		case 't': o->type = optarg; break;
		case 'j': o->json = true; break;
		case 'q': o->quiet = true; break;
		case 'l': o->list = true; break;
		case 'W': o->no_wait = true; break;
		case 'n': o->dry_run = true; break;
		case 'K':
			if (gfs_parse_u64(optarg, &o->keep_last) || !o->keep_last)
				return usage_error(c, "--keep-last takes a number of graph versions (1, 2, ...)");
			break;
		case 'S':
			if (parse_time(optarg, &o->keep_since_ns))
				return usage_error(c, "--keep-since takes a time in UTC, 2026-11-30T22:00:00Z, or seconds since 1970");
			break;
		case 'T': {
			uint64_t n;
			if (gfs_parse_u64(optarg, &n) || n < 1 || n > 16)
				return usage_error(c, "--threads takes a number from 1 to 16");
			o->threads = (unsigned)n;
			break;
		}
		case 'v':
			if (gfs_parse_u64(optarg, &o->version) || !o->version)
				return usage_error(c, "--version takes a graph version number (1, 2, ...)");
			break;
		default: {
			char msg[128];
			snprintf(msg, sizeof msg, "unknown or incomplete option '%s'", argv[optind - 1]);
			return usage_error(c, msg);
		}
		}
	}
	if (optind >= argc)
		return usage_error(c, "missing STORE");
	o->store = argv[optind++];
	if (optind < argc) {
		char msg[128];
		snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind]);
		return usage_error(c, msg);
	}
	return -1;
}

static int open_store(const char *what, const char *store, unsigned flags,
		      struct gfs_graph **g)
{
	struct gfs_diag d = {{0}};
	int rc = gfs_graph_open(store, flags, g, &d);

	return rc ? fail(what, rc, &d) : 0;
}

/* The prologue of every read command: options, then the store opened
 * read-only.  Returns -1 to go on (with *g open), or an exit status. */
static int begin_read(const char *name, int argc, char **argv, struct opts *o,
		      struct gfs_graph **g)
{
	int rc = parse_opts(find_cmd(name), argc, argv, o);

	if (rc >= 0)
		return rc;
	rc = open_store(name, o->store, GFS_GRAPH_RDONLY, g);
	return rc ? rc : -1;
}

/* ---- init -------------------------------------------------------------- */

static int cmd_init(int argc, char **argv)
{
	const struct cmd *c = find_cmd("init");
	struct gfs_diag d = {{0}};
	struct opts o;
	char *text = NULL;
	size_t len = 0;
	int rc = parse_opts(c, argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (!o.schema)
		return usage_error(c, "missing --schema FILE.pg");
	rc = gfs_read_file(o.schema, &text, &len, (size_t)64 << 20);
	if (rc) {
		fprintf(stderr, "graphctl init: cannot read schema '%s': %s\n", o.schema, gfs_strerror(rc));
		return EXIT_FAILURE;
	}
	rc = gfs_graph_init(o.store, text, len, o.schema, NULL, &d);
	free(text);
	if (rc)
		return fail("init", rc, &d);
	if (!o.quiet)
		printf("created store %s at graph version 1\n", o.store);
	return EXIT_SUCCESS;
}

/* ---- load -------------------------------------------------------------- */

struct progress_state {
	struct timespec start, last, phase_start;
	int phase;       /* the phase shown, -1 before the first */
	uint64_t total;  /* rows parsed (known once sorting starts) */
	bool shown;
};

static double secs(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* One line, redrawn: the phase, the input's size, rows done, and the
 * phase's own rates.  Parse, sort (its pass over the sorted rows) and
 * write count rows from 0; their MB/s is of the input (sort and write: the
 * share of the input their rows stand for).  Lock, validate and publish
 * show no rate. */
static void show_progress(enum gfs_load_phase ph, uint64_t bytes, uint64_t rows,
			  void *arg)
{
	struct progress_state *p = arg;
	struct timespec now;
	double el, rps = 0, mbps = 0;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((int)ph != p->phase) {
		p->phase = (int)ph;
		p->phase_start = now;
		if (ph == GFS_PHASE_SORT)
			p->total = rows;
	}
	if (p->shown && secs(&p->last, &now) < 0.2)
		return;
	p->last = now;
	p->shown = true;
	el = secs(&p->phase_start, &now);
	if (el > 0.1 && ph == GFS_PHASE_PARSE) {
		rps = (double)rows / el;
		mbps = (double)bytes / 1e6 / el;
	} else if (el > 0.1 && (ph == GFS_PHASE_SORT || ph == GFS_PHASE_WRITE) &&
		   p->total && rows <= p->total) {
		rps = (double)rows / el;
		mbps = (double)bytes / 1e6 * ((double)rows / (double)p->total) / el;
	}
	fprintf(stderr, "\r\033[K%-8s %8.1f MiB %10" PRIu64 " rows %9.0f rows/s %7.1f MB/s",
		gfs_load_phase_name(ph), (double)bytes / 1048576.0, rows, rps, mbps);
}

static int cmd_load(int argc, char **argv)
{
	const struct cmd *c = find_cmd("load");
	struct gfs_load_opts lo = { .mode = GFS_LOAD_MERGE };
	struct gfs_load_result res;
	struct progress_state ps = {0};
	struct gfs_diag d = {{0}};
	struct gfs_graph *g;
	struct opts o;
	int rc = parse_opts(c, argc, argv, &o), fd;

	if (rc >= 0)
		return rc;
	if (!o.data)
		return usage_error(c, "missing --data FILE.jsonl (or --data - for standard input)");
	if (o.mode && gfs_load_mode_parse(o.mode, &lo.mode))
		return usage_error(c, "--mode is one of merge, append, overwrite");
	fd = strcmp(o.data, "-") ? open(o.data, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0) {
		fprintf(stderr, "graphctl load: cannot open '%s': %s\n", o.data, strerror(errno));
		return EXIT_FAILURE;
	}
	if ((rc = open_store("load", o.store, 0, &g)))
		return rc;
	lo.source = o.data;
	lo.threads = o.threads;
	if (isatty(STDERR_FILENO) && !o.quiet && !o.json) {
		clock_gettime(CLOCK_MONOTONIC, &ps.start);
		ps.phase = -1;
		lo.progress = show_progress;
		lo.progress_arg = &ps;
	}
	rc = gfs_graph_load(g, fd, &lo, &res, &d);
	if (ps.shown)
		fputs("\r\033[K", stderr);
	if (fd != STDIN_FILENO)
		close(fd);
	gfs_graph_close(g);
	if (rc)
		return fail("load", rc, &d);
	if (o.json) {
		printf("{\"version\":%" PRIu64 ",\"op_id\":\"%s\",\"lines\":%" PRIu64 ",\"rows\":%" PRIu64
		       ",\"bytes\":%" PRIu64 ",\"sort_runs\":%" PRIu64 ",\"sort_bytes\":%" PRIu64
		       ",\"phases_ms\":{",
		       res.version, res.op_id, res.lines, res.rows_put, res.bytes,
		       res.sort_runs, res.sort_bytes);
		for (int ph = 0; ph < GFS_PHASE__COUNT; ph++)
			printf("%s\"%s\":%.3f", ph ? "," : "",
			       gfs_load_phase_name((enum gfs_load_phase)ph),
			       (double)res.phase_ns[ph] / 1e6);
		printf("}}\n");
	}
	else if (!o.quiet)
		printf("loaded %" PRIu64 " rows from %s as graph version %" PRIu64 "\n",
		       res.rows_put, o.data, res.version);
	return EXIT_SUCCESS;
}

/* ---- export, schema ---------------------------------------------------- */

static int cmd_export(int argc, char **argv)
{
	struct gfs_diag d = {{0}};
	struct gfs_graph *g;
	struct opts o;
	int rc = begin_read("export", argc, argv, &o, &g);

	if (rc >= 0)
		return rc;
	rc = gfs_graph_export(g, o.version, o.type, STDOUT_FILENO, &d);
	gfs_graph_close(g);
	return rc ? fail("export", rc, &d) : EXIT_SUCCESS;
}

static int get_version(struct gfs_graph *g, uint64_t v, struct gfs_gv **gv,
		       const char *what)
{
	struct gfs_manifest *m = gfs_graph_manifest(g);
	int rc = v ? gfs_manifest_get(m, v, gv) : gfs_manifest_head(m, gv);

	if (rc == -ENOENT && !gfs_manifest_get_any(m, v, gv)) {
		fprintf(stderr, "graphctl %s: graph version %" PRIu64 " was removed by gc (its time stays in 'graphctl log')\n", what, v);
		gfs_gv_free(*gv);
		*gv = NULL;
		return EXIT_FAILURE;
	}
	if (rc == -ENOENT) {
		fprintf(stderr, "graphctl %s: graph version %" PRIu64 " does not exist (see 'graphctl log')\n", what, v);
		return EXIT_FAILURE;
	}
	return rc ? fail(what, rc, NULL) : 0;
}

static int cmd_schema(int argc, char **argv)
{
	const struct gfs_schema *s;
	struct gfs_diag d = {{0}};
	struct gfs_graph *g;
	struct gfs_gv *gv = NULL;
	struct opts o;
	int rc = begin_read("schema", argc, argv, &o, &g);

	if (rc >= 0)
		return rc;
	rc = get_version(g, o.version, &gv, "schema");
	if (!rc) {
		int r = gfs_graph_schema(g, gv->schema_id, &s, &d);
		rc = r ? fail("schema", r, &d) : 0;
		if (!r)
			fwrite(s->text, 1, s->text_len, stdout);
	}
	gfs_gv_free(gv);
	gfs_graph_close(g);
	return rc;
}

/* ---- snapshot ---------------------------------------------------------- */

static int snapshot_table(struct gfs_graph *g, const struct gfs_pin *p,
			  bool json, bool first)
{
	struct gfs_tver_info info;
	struct gfs_diag d = {{0}};
	struct gfs_tver *tv;
	int rc = gfs_tver_open(gfs_graph_tables(g), p->table, p->version, &tv, &d);

	if (rc)
		return fail("snapshot", rc, &d);
	gfs_tver_info(tv, &info);
	gfs_tver_close(tv);
	if (json)
		printf("%s\"%s\":{\"version\":%u,\"rows\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
		       first ? "" : ",", p->table, p->version, info.rows, info.export_bytes);
	else
		printf("%-32s %8u %12" PRIu64 " %14" PRIu64 "\n", p->table, p->version,
		       info.rows, info.export_bytes);
	return 0;
}

static int cmd_snapshot(int argc, char **argv)
{
	struct gfs_graph *g;
	struct gfs_gv *gv = NULL;
	char when[40];
	struct opts o;
	int rc = begin_read("snapshot", argc, argv, &o, &g);

	if (rc >= 0)
		return rc;
	rc = get_version(g, o.version, &gv, "snapshot");
	if (!rc) {
		gfs_time_format(gv->time_ns, when);
		if (o.json)
			printf("{\"version\":%" PRIu64 ",\"time\":\"%s\",\"schema\":\"%s\",\"tables\":{",
			       gv->version, when, gv->schema_id);
		else
			printf("graph version %" PRIu64 " (%s, %s)\n%-32s %8s %12s %14s\n",
			       gv->version, when, gv->op, "TABLE", "VERSION", "ROWS", "EXPORT BYTES");
		for (size_t i = 0; !rc && i < gv->n_pins; i++)
			rc = snapshot_table(g, &gv->pins[i], o.json, i == 0);
		if (o.json && !rc)
			printf("}}\n");
	}
	gfs_gv_free(gv);
	gfs_graph_close(g);
	return rc;
}

/* ---- log --------------------------------------------------------------- */

static int log_one(const struct gfs_gv *gv, void *arg)
{
	const struct opts *o = arg;
	char when[40];

	if (o->json) {
		char *j = gfs_gv_to_json(gv);
		if (!j)
			return -ENOMEM;
		puts(j);
		free(j);
		return 0;
	}
	gfs_time_format(gv->time_ns, when);
	if (gv->removed) {
		printf("%6" PRIu64 "  %-30s  %-8s  (removed by gc)\n", gv->version, when, gv->op);
		return 0;
	}
	printf("%6" PRIu64 "  %-30s  %-8s  %s  %s\n", gv->version, when, gv->op,
	       gv->op_id, gv->detail ? gv->detail : "");
	return 0;
}

static int cmd_log(int argc, char **argv)
{
	struct gfs_graph *g;
	struct opts o;
	int rc = begin_read("log", argc, argv, &o, &g);

	if (rc >= 0)
		return rc;
	rc = gfs_manifest_history(gfs_graph_manifest(g), o.version ? o.version : 1, 0, log_one, &o);
	gfs_graph_close(g);
	return rc ? fail("log", rc, NULL) : EXIT_SUCCESS;
}

/* ---- fsck -------------------------------------------------------------- */

static void fsck_print(const char *msg, void *arg)
{
	const struct opts *o = arg;

	if (o->json) {
		struct gfs_buf b;
		gfs_buf_init(&b);
		if (!gfs_buf_append_json_str(&b, msg, strlen(msg)))
			printf("{\"problem\":%s}\n", b.p);
		gfs_buf_release(&b);
	} else {
		printf("%s\n", msg);
	}
}

/* Garbage (dead writers' temp files) is shown, never a problem: the exit
 * status stays 0 for it. */
static void fsck_garbage(const char *msg, void *arg)
{
	const struct opts *o = arg;

	if (o->json) {
		struct gfs_buf b;
		gfs_buf_init(&b);
		if (!gfs_buf_append_json_str(&b, msg, strlen(msg)))
			printf("{\"garbage\":%s}\n", b.p);
		gfs_buf_release(&b);
	} else if (!o->quiet) {
		printf("garbage: %s\n", msg);
	}
}

static int cmd_fsck(int argc, char **argv)
{
	struct gfs_graph *g;
	unsigned problems = 0, garbage = 0;
	struct opts o;
	int rc = begin_read("fsck", argc, argv, &o, &g);

	if (rc >= 0)
		return rc;
	rc = gfs_graph_fsck_ex(g, fsck_print, fsck_garbage, &o, &problems, &garbage);
	gfs_graph_close(g);
	if (rc)
		return fail("fsck", rc, NULL);
	if (!o.json && !o.quiet)
		printf("%s: %u problem%s found%s\n", o.store, problems,
		       problems == 1 ? "" : "s",
		       garbage ? " (and temp files of dead writers: see 'garbage' above)" : "");
	return problems ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- recover ----------------------------------------------------------- */

static void recover_note(const char *msg, void *arg)
{
	(void)arg;
	printf("%s\n", msg);
}

static int list_sidecars(struct gfs_graph *g, bool json)
{
	struct gfs_sidecar **scs = NULL;
	size_t n = 0;
	int rc = gfs_manifest_sidecar_list(gfs_graph_manifest(g), &scs, &n);

	for (size_t i = 0; !rc && i < n; i++) {
		char *j = json ? gfs_sidecar_to_json(scs[i]) : NULL, when[40];
		if (json && !j) {
			rc = -ENOMEM;
			break;
		}
		gfs_time_format(scs[i]->start_ns, when);
		if (json)
			printf("%s%s", i ? "," : "", j);
		else if (scs[i]->raw)
			printf("pending  %s  UNREADABLE (does not parse or newer format)\n", scs[i]->op_id);
		else
			printf("pending  %s  %-6s %s  %s  by %s\n", scs[i]->op_id, scs[i]->kind,
			       scs[i]->confirmed ? "confirmed    " : "not confirmed", when, scs[i]->actor);
		free(j);
	}
	for (size_t i = 0; i < n; i++)
		gfs_sidecar_free(scs[i]);
	free(scs);
	return rc;
}

struct audit_print {
	bool json;
	size_t n;
};

static int audit_one(const struct gfs_audit *a, void *arg)
{
	struct audit_print *ap = arg;
	char when[40];

	if (ap->json) {
		char *j = gfs_audit_to_json(a);
		if (!j)
			return -ENOMEM;
		printf("%s%s", ap->n++ ? "," : "", j);
		free(j);
		return 0;
	}
	gfs_time_format(a->time_ns, when);
	printf("resolved %s  %-18s %s  graph version %" PRIu64 "  (%s by %s; resolver %s)",
	       a->op_id, a->decision, when, a->graph_version, a->kind, a->actor, a->resolver);
	for (size_t i = 0; i < a->n_tables; i++)
		printf(" %s %u->%u", a->tables[i].table, a->tables[i].expected, a->tables[i].post);
	printf("\n");
	return 0;
}

static int recover_list(struct gfs_graph *g, bool json)
{
	struct audit_print ap = { .json = json };
	int rc;

	if (json)
		printf("{\"pending\":[");
	rc = list_sidecars(g, json);
	if (!rc && json)
		printf("],\"audit\":[");
	if (!rc)
		rc = gfs_manifest_audit_list(gfs_graph_manifest(g), audit_one, &ap);
	if (!rc && json)
		printf("]}\n");
	return rc ? fail("recover", rc, NULL) : EXIT_SUCCESS;
}

static void recover_summary(const struct gfs_recover_report *r, bool json)
{
	if (json) {
		printf("{\"rolled_forward\":%u,\"rolled_back\":%u,\"discarded\":%u,\"gone\":%u,"
		       "\"busy\":%u,\"retry_left\":%u,\"violations\":%u,\"refused\":%u,"
		       "\"orphans_compensated\":%u,\"temps_removed\":%u,\"orphans_retired\":%u}\n",
		       r->rolled_forward, r->rolled_back, r->discarded, r->gone, r->busy,
		       r->retry_left, r->violations, r->refused, r->orphans_compensated,
		       r->temps_removed, r->orphans_retired);
		return;
	}
	printf("%u rolled forward, %u rolled back, %u discarded, %u resolved elsewhere, "
	       "%u busy (live writer), %u orphan table(s) compensated, %u kept (pins moved), "
	       "%u violation(s), %u refused, %u temp file(s) removed\n",
	       r->rolled_forward, r->rolled_back, r->discarded, r->gone, r->busy,
	       r->orphans_compensated, r->retry_left, r->violations, r->refused,
	       r->temps_removed);
}

static int cmd_recover(int argc, char **argv)
{
	const struct cmd *c = find_cmd("recover");
	struct gfs_recover_opts ro = { .wait = true, .orphans = true, .temps = true };
	struct gfs_recover_report r;
	struct gfs_diag d = {{0}};
	struct gfs_graph *g;
	struct opts o;
	int rc = parse_opts(c, argc, argv, &o);

	if (rc >= 0)
		return rc;
	if ((rc = open_store("recover", o.store, o.list ? GFS_GRAPH_RDONLY : 0, &g)))
		return rc;
	if (o.list) {
		rc = recover_list(g, o.json);
		gfs_graph_close(g);
		return rc;
	}
	ro.wait = !o.no_wait;
	if (!o.json && !o.quiet)
		ro.note = recover_note;
	rc = gfs_recover_sweep(g, &ro, &r, &d);
	gfs_graph_close(g);
	if (rc && rc != GFS_EVIOLATION)
		return fail("recover", rc, &d);
	if (!o.quiet)
		recover_summary(&r, o.json);
	if (rc || r.refused)
		return fail("recover", GFS_EVIOLATION, &d);
	if (r.retry_left) {
		fprintf(stderr, "graphctl recover: %u operation(s) kept: their pins kept moving; run it again\n", r.retry_left);
		return EXIT_RECOVERY;
	}
	return EXIT_SUCCESS;
}

/* ---- compact ----------------------------------------------------------- */

static void compact_print(const struct gfs_compact_result *r, bool json)
{
	if (json) {
		printf("{\"version\":%" PRIu64 ",\"op_id\":\"%s\",\"tables\":{",
		       r->version, r->version ? r->op_id : "");
		for (size_t i = 0; i < r->n_tables; i++) {
			const struct gfs_compact_table *t = &r->tables[i];
			printf("%s\"%s\":{\"from\":%u,\"to\":%u,\"rows\":%" PRIu64
			       ",\"bytes_before\":%" PRIu64 ",\"bytes_after\":%" PRIu64 "}",
			       i ? "," : "", t->table, t->from, t->to, t->rows,
			       t->bytes_before, t->bytes_after);
		}
		printf("}}\n");
		return;
	}
	if (!r->version) {
		printf("nothing to compact: every chosen table is one file\n");
		return;
	}
	for (size_t i = 0; i < r->n_tables; i++) {
		const struct gfs_compact_table *t = &r->tables[i];
		printf("%s: version %u -> %u, %" PRIu64 " rows, %" PRIu64 " bytes in its files -> %" PRIu64 "\n",
		       t->table, t->from, t->to, t->rows, t->bytes_before, t->bytes_after);
	}
	printf("compacted as graph version %" PRIu64 " (gc frees the old files once no kept version needs them)\n",
	       r->version);
}

static int cmd_compact(int argc, char **argv)
{
	struct gfs_compact_result r;
	struct gfs_diag d = {{0}};
	struct gfs_graph *g;
	struct opts o;
	int rc = parse_opts(find_cmd("compact"), argc, argv, &o);

	if (rc >= 0)
		return rc;
	if ((rc = open_store("compact", o.store, 0, &g)))
		return rc;
	rc = gfs_graph_compact(g, o.type, NULL, &r, &d);
	gfs_graph_close(g);
	if (rc)
		return fail("compact", rc, &d);
	if (!o.quiet)
		compact_print(&r, o.json);
	gfs_compact_result_release(&r);
	return EXIT_SUCCESS;
}

/* ---- gc ---------------------------------------------------------------- */

static void u64_list(const char *name, const uint64_t *v, size_t n)
{
	printf(",\"%s\":[", name);
	for (size_t i = 0; i < n; i++)
		printf("%s%" PRIu64, i ? "," : "", v[i]);
	printf("]");
}

static void gc_print(const struct gfs_gc_result *r, const struct opts *o)
{
	if (o->json) {
		printf("{\"dry_run\":%s,\"op_id\":\"%s\"", o->dry_run ? "true" : "false", r->op_id);
		u64_list("removed", r->removed, r->n_removed);
		u64_list("held", r->held, r->n_held);
		printf(",\"files\":%zu,\"bytes_freed\":%" PRIu64 "}\n", r->n_unlinked, r->bytes_freed);
		return;
	}
	printf("%s %zu graph version(s)", o->dry_run ? "would remove" : "removed", r->n_removed);
	for (size_t i = 0; i < r->n_removed && i < 20; i++)
		printf("%s%" PRIu64, i ? "," : " ", r->removed[i]);
	printf("%s; %s %zu table-version file(s), %" PRIu64 " bytes\n",
	       r->n_removed > 20 ? ",..." : "", o->dry_run ? "would free" : "freed",
	       r->n_unlinked, r->bytes_freed);
	if (r->n_held) {
		printf("kept %zu version(s) held open by a mount:", r->n_held);
		for (size_t i = 0; i < r->n_held; i++)
			printf(" %" PRIu64, r->held[i]);
		printf("\n");
	}
}

static int cmd_gc(int argc, char **argv)
{
	const struct cmd *c = find_cmd("gc");
	struct gfs_gc_opts go = {0};
	struct gfs_gc_result r;
	struct gfs_diag d = {{0}};
	struct gfs_graph *g;
	struct opts o;
	int rc = parse_opts(c, argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (!o.keep_last == !o.keep_since_ns)
		return usage_error(c, "give exactly one of --keep-last N and --keep-since TIME");
	go.keep_last = o.keep_last;
	go.keep_since_ns = o.keep_since_ns;
	go.dry_run = o.dry_run;
	if ((rc = open_store("gc", o.store, 0, &g)))
		return rc;
	rc = gfs_graph_gc(g, &go, &r, &d);
	gfs_graph_close(g);
	if (rc)
		return fail("gc", rc, &d);
	if (!o.quiet)
		gc_print(&r, &o);
	gfs_gc_result_release(&r);
	return EXIT_SUCCESS;
}

/* ---- upgrade ----------------------------------------------------------- */

static int cmd_upgrade(int argc, char **argv)
{
	const struct cmd *c = find_cmd("upgrade");
	struct gfs_upgrade_result r;
	struct gfs_diag d = {{0}};
	struct opts o;
	int rc = parse_opts(c, argc, argv, &o);

	if (rc >= 0)
		return rc;
	rc = gfs_graph_upgrade(o.store, &r, &d);
	if (rc == -EBUSY) {
		fail("upgrade", rc, &d);
		return EXIT_BUSY;
	}
	if (rc)
		return fail("upgrade", rc, &d);
	if (o.json) {
		struct gfs_buf b;
		gfs_buf_init(&b);
		if (gfs_buf_append_json_str(&b, o.store, strlen(o.store)))
			return fail("upgrade", -ENOMEM, NULL);
		printf("{\"store\":%s,\"from\":%d,\"to\":%d,\"records\":%llu}\n",
		       b.p, r.from, r.to, (unsigned long long)r.records);
		gfs_buf_release(&b);
	}
	else if (!o.quiet && r.from == r.to && !r.records)
		printf("%s: already format %d, nothing to do\n", o.store, r.to);
	else if (!o.quiet)
		printf("%s: upgraded from format %d to %d (%llu manifest records rewritten)\n",
		       o.store, r.from, r.to, (unsigned long long)r.records);
	return EXIT_SUCCESS;
}

/* ---- dispatch ---------------------------------------------------------- */

static const struct cmd cmds[] = {
	{ "init", cmd_init, "init STORE --schema FILE.pg",
	  "Create a new store in STORE (a new or empty directory) with the schema in\n"
	  "FILE.pg.  The store starts at graph version 1 with every table empty.\n", false },
	{ "load", cmd_load, "load STORE --data FILE.jsonl|- [--mode merge|append|overwrite] [--threads N] [--json] [--quiet]",
	  "Load a JSON Lines file as one new graph version.  merge (default) upserts\n"
	  "by id, append inserts only new ids, overwrite replaces every table the\n"
	  "file mentions.  Everything is validated first; on any error nothing is\n"
	  "written and the message names the line, type, id and property.\n"
	  "--threads N: parse on N threads (default: one per CPU, or\n"
	  "GRAPHFS_LOAD_THREADS); the result does not depend on N.\n"
	  "A terminal shows progress on standard error (rows/s and MB/s per phase);\n"
	  "--json: {\"version\",\"op_id\",\"lines\",\"rows\",\"bytes\",\"sort_runs\",\"sort_bytes\",\n"
	  "\"phases_ms\":{...}} (sort_*: runs and bytes the sort spilled to STORE/staging).\n", false },
	{ "export", cmd_export, "export STORE [--version N] [--type TYPE]",
	  "Write graph version N (default: the newest) in load format to standard\n"
	  "output: node tables, then edge tables, each in id order.\n", true },
	{ "snapshot", cmd_snapshot, "snapshot STORE [--version N] [--json]",
	  "Show, per table, the table version graph version N pins and its rows.\n"
	  "--json: {\"version\":N,\"tables\":{\"node:Person\":{\"version\":k,\"rows\":n,\"bytes\":b}}}\n", true },
	{ "log", cmd_log, "log STORE [--version FROM] [--json]",
	  "One line per graph version, oldest first.  --json: one object per line,\n"
	  "{\"version\":N,\"time\":\"RFC 3339\",\"op\":\"load\",\"op_id\":...,\"tables\":{...}}\n", true },
	{ "schema", cmd_schema, "schema STORE [--version N]",
	  "Print the schema text of graph version N (default: the newest).\n", true },
	{ "fsck", cmd_fsck, "fsck STORE [--json]",
	  "Verify every table-version file, the manifest and the history.  Exit 0\n"
	  "when clean, 1 when problems were found (each printed on a line).\n"
	  "Temp files of dead writers are shown as garbage, not as problems.\n", true },
	{ "recover", cmd_recover, "recover STORE [--list] [--no-wait] [--json] [--quiet]",
	  "Resolve what crashed writers left behind (DESIGN.md section 4): each\n"
	  "pending sidecar is rolled forward (confirmed: published), rolled back\n"
	  "(compensating versions equal to the pinned ones) or discarded, with one\n"
	  "audit record each; then version files that no reservation made\n"
	  "(orphans) are compensated (or, below the table's counter, retired),\n"
	  "and every table's temp files of dead writers removed.  Prints one\n"
	  "line per operation and a\n"
	  "summary.  Waits for the locks of a writer that is still running;\n"
	  "--no-wait leaves such operations alone (as a mount does) and counts\n"
	  "them busy.  --list only shows the pending sidecars and the audit\n"
	  "records; with --json one object {\"pending\":[...],\"audit\":[...]}.\n"
	  "--json without --list prints the summary as one object.\n"
	  "Exit 0 resolved (or busy), 3 some kept because pins kept moving,\n"
	  "4 invariant violation or an unreadable sidecar (kept, named on stderr).\n", false },
	{ "compact", cmd_compact, "compact STORE [--type TYPE] [--json] [--quiet]",
	  "Rewrite the newest version of each table (or of TYPE) whose history spans\n"
	  "several files into one fresh file with the same rows, as one new graph\n"
	  "version (op compact).  Every row keeps its serial and last-changed\n"
	  "version, so inode numbers and mtimes in a mount do not move.  Tables\n"
	  "already in one file are left alone.  The old files are freed by a later\n"
	  "'graphctl gc' once no kept version needs them.  Prints, per table, the\n"
	  "bytes of the files its old version read and of the new file.  --json:\n"
	  "{\"version\":N,\"op_id\":...,\"tables\":{\"node:T\":{\"from\",\"to\",\"rows\",\n"
	  "\"bytes_before\",\"bytes_after\"}}} (version 0: nothing to compact).\n"
	  "Exit 0 done, 1 failed (nothing visible), 3 recovery needed.\n", false },
	{ "gc", cmd_gc, "gc STORE --keep-last N | --keep-since TIME [--dry-run] [--json] [--quiet]",
	  "Remove the graph versions of main outside the window and unlink the\n"
	  "table-version files no kept version needs.  --keep-last N keeps the newest\n"
	  "N graph versions (by number); --keep-since TIME those committed at or\n"
	  "after TIME (UTC, 2026-11-30T22:00:00Z, or seconds since 1970).  The head\n"
	  "is always kept, and so is every version a mount holds open (a file or\n"
	  "directory under versions/N: STORE/locks/versions.lock).  A removed\n"
	  "version keeps its log line (reduced) and its commit time, so row mtimes\n"
	  "do not change; versions/N disappears from mounts.  Versions share pages,\n"
	  "so run 'graphctl compact' first to free an old table chain.\n"
	  "--dry-run: plan and report only.  --json: {\"dry_run\",\"op_id\",\n"
	  "\"removed\":[N,...],\"held\":[N,...],\"files\":n,\"bytes_freed\":b}.\n"
	  "Crash-safe (recovery kind gc).  Exit 0 done, 1 failed, 2 usage,\n"
	  "3 recovery needed.\n", false },
	{ "upgrade", cmd_upgrade, "upgrade STORE [--json] [--quiet]",
	  "Bring a store written by an older graphfs to this build's format (format\n"
	  "1 -> 2: checksums on every manifest record).  Other commands refuse an\n"
	  "older store and say to run this.  Runs only while no other process has\n"
	  "the store open (stop mounts and writers first).  Crash-safe: the manifest\n"
	  "is rewritten in one transaction, then FORMAT; run it again after a crash.\n"
	  "A current store is left as it is.  --json: {\"store\":...,\"from\":1,\"to\":2,\n"
	  "\"records\":N}.  Exit 0 done, 1 failed (store unchanged), 5 busy.\n", false },
};

/* LMDB has no page checksums and trusts its page headers: a flipped bit in
 * data.mdb can make it read outside the map (SIGSEGV, SIGBUS; see
 * docs/format.md, "What a flipped bit does").  A read-only command runs in
 * a child forked before anything touches the store, so such a crash is
 * reported as a corrupt store and exit 1, never a signal. */
static int run_guarded(const struct cmd *c, int argc, char **argv)
{
	int st;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return c->fn(argc, argv);
	if (pid == 0) {
		int rc = c->fn(argc, argv);
		fflush(NULL);
		_exit(rc);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return EXIT_FAILURE;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	int sig = WTERMSIG(st);
	/* LMDB trusts its page headers: on a damaged one it faults (SIGSEGV,
	 * SIGBUS, SIGFPE, SIGILL) or fails one of its own assertions, which
	 * abort()s (SIGABRT; "mdb.c: Assertion ... failed" is on stderr). */
	bool fault = sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT ||
		     sig == SIGFPE || sig == SIGILL;
	if (!fault) {
		/* A closed pipe (`export | head`), ^C, kill: end as the child
		 * did, so the shell sees what it would without the fork. */
		fflush(NULL);
		signal(sig, SIG_DFL);
		raise(sig);
		return 128 + sig;
	}
	fprintf(stderr, "graphctl %s: died of signal %d (%s) reading the store: its manifest (manifest/data.mdb) is damaged where LMDB has no checksum; restore the store from a backup\n",
		c->name, sig, strsignal(sig));
	return EXIT_FAILURE;
}

static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < GFS_ARRAY_SIZE(cmds); i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

static void main_usage(FILE *f)
{
	fprintf(f, "usage: graphctl COMMAND STORE [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < GFS_ARRAY_SIZE(cmds); i++)
		fprintf(f, "  %s\n", cmds[i].usage);
	fprintf(f, "\n'graphctl COMMAND --help' describes one command; 'man graphctl' all.\n"
		   "Exit status: 0 ok, 1 failed (fsck: problems found), 2 usage,\n"
		   "3 recovery needed, 4 invariant violation, 5 busy (upgrade).\n");
}

int main(int argc, char **argv)
{
	const struct cmd *c;
	struct gfs_diag d = {{0}};

	if (argc < 2) {
		main_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		main_usage(stdout);
		return EXIT_SUCCESS;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("graphctl %s\n", PACKAGE_VERSION);
		return EXIT_SUCCESS;
	}
	if (!(c = find_cmd(argv[1]))) {
		fprintf(stderr, "graphctl: unknown command '%s'\n", argv[1]);
		main_usage(stderr);
		return EXIT_USAGE;
	}
	if (gfs_fp_init(&d)) {
		fprintf(stderr, "graphctl: GRAPHFS_FAILPOINTS: %s\n", d.msg);
		return EXIT_USAGE;
	}
	return c->guarded ? run_guarded(c, argc - 1, argv + 1)
			  : c->fn(argc - 1, argv + 1);
}
