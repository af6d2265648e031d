/* graphctl - administer a graphfs store: init, load, export, snapshot, log,
 * schema, fsck.  A thin CLI over libgraphfs (src/graph.h); every command has
 * --help; exit codes are in graphctl(1):
 *   0 success, 1 failure (bad input, constraint, I/O; fsck: problems found),
 *   2 usage error, 3 recovery needed, 4 invariant violation,
 *   5 busy (upgrade, migrate: a writer or another process has the store),
 *   6 lease lost (etcd: fenced, nothing published). */
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
#include "merge.h"
#include "recover.h"
#include "retain.h"
#include "schema_apply.h"

#include <jansson.h>

#define EXIT_USAGE 2
#define EXIT_RECOVERY 3
#define EXIT_VIOLATION 4
#define EXIT_BUSY 5
#define EXIT_LEASE 6   /* etcd: the table leases expired (fenced); nothing published */

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
	/* kv_etcd.c says -ENOLCK for a fenced write, lease_etcd.c GFS_ELEASE */
	if (rc == GFS_ELEASE || rc == -ENOLCK)
		return EXIT_LEASE;
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
	const char *branch; /* --branch NAME */
	const char *from;   /* branch create --from VERSION|BRANCH */
	const char *name;   /* NAME after STORE (cmd->takes_name) */
	uint64_t keep_last, keep_since_ns; /* gc */
	bool dry_run;                      /* gc */
	const char *manifest;              /* init, migrate --manifest etcd://... */
	unsigned batch;                    /* migrate --batch N */
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
		{ "branch", required_argument, NULL, 'b' },
		{ "from", required_argument, NULL, 'f' },
		{ "keep-last", required_argument, NULL, 'K' },
		{ "keep-since", required_argument, NULL, 'S' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "manifest", required_argument, NULL, 'M' },
		{ "batch", required_argument, NULL, 'B' },
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
		case 'b': o->branch = optarg; break;
		case 'f': o->from = optarg; break;
		case 'n': o->dry_run = true; break;
		case 'M': o->manifest = optarg; break;
		case 'B': {
			uint64_t n;
			if (gfs_parse_u64(optarg, &n) || n < 1 || n > 100000)
				return usage_error(c, "--batch takes a number of records from 1 to 100000");
			o->batch = (unsigned)n;
			break;
		}
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
	if (o->branch && !strstr(" load export snapshot log schema compact ", c->name))
		return usage_error(c, "--branch is taken by load, export, snapshot, log and schema");
	if (o->branch && o->version && strcmp(c->name, "log"))
		return usage_error(c, "--branch and --version are exclusive (a version names its branch)");
	if (o->manifest && strcmp(c->name, "init") && strcmp(c->name, "migrate"))
		return usage_error(c, "--manifest is taken by init and migrate");
	if (o->batch && strcmp(c->name, "migrate"))
		return usage_error(c, "--batch is taken by migrate");
	if (o->from && strcmp(c->name, "branch create"))
		return usage_error(c, "--from is taken by branch create");
	if (optind >= argc)
		return usage_error(c, "missing STORE");
	o->store = argv[optind++];
	/* a NAME after STORE: branch create, branch delete */
	bool takes_name = !strcmp(c->name, "branch create") ||
			  !strcmp(c->name, "branch delete");
	if (takes_name && optind >= argc)
		return usage_error(c, "missing NAME");
	if (takes_name)
		o->name = argv[optind++];
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
	rc = gfs_graph_init_url(o.store, text, len, o.schema, NULL, o.manifest, &d);
	free(text);
	if (rc)
		return fail("init", rc, &d);
	if (!o.quiet)
		printf("created store %s at graph version 1%s%s\n", o.store,
		       o.manifest ? ", manifest on " : "",
		       o.manifest ? o.manifest : "");
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
	lo.branch = o.branch;
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
	else if (!o.quiet && o.branch)
		printf("loaded %" PRIu64 " rows from %s as graph version %" PRIu64 " on branch %s\n",
		       res.rows_put, o.data, res.version, o.branch);
	else if (!o.quiet)
		printf("loaded %" PRIu64 " rows from %s as graph version %" PRIu64 "\n",
		       res.rows_put, o.data, res.version);
	return EXIT_SUCCESS;
}

/* ---- export, schema ---------------------------------------------------- */

/* The head version of branch name into *v, or an exit status. */
static int branch_version(struct gfs_graph *g, const char *name, uint64_t *v,
			  const char *what)
{
	struct gfs_gv *gv = NULL;
	int rc = gfs_manifest_branch_head(gfs_graph_manifest(g), name, &gv);

	if (rc == -ENOENT) {
		fprintf(stderr, "graphctl %s: no branch '%s' (see 'graphctl branch list')\n",
			what, name);
		return EXIT_FAILURE;
	}
	if (!rc)
		*v = gv->version;
	gfs_gv_free(gv);
	return rc ? fail(what, rc, NULL) : 0;
}

static int cmd_export(int argc, char **argv)
{
	struct gfs_diag d = {{0}};
	struct gfs_graph *g;
	struct opts o;
	int rc = begin_read("export", argc, argv, &o, &g);

	if (rc >= 0)
		return rc;
	rc = o.branch ? branch_version(g, o.branch, &o.version, "export") : 0;
	if (rc) {
		gfs_graph_close(g);
		return rc;
	}
	rc = gfs_graph_export(g, o.version, o.type, STDOUT_FILENO, &d);
	gfs_graph_close(g);
	return rc ? fail("export", rc, &d) : EXIT_SUCCESS;
}

/* Graph version v, or the head of branch (NULL: main) when v is 0. */
static int get_version(struct gfs_graph *g, uint64_t v, const char *branch,
		       struct gfs_gv **gv, const char *what)
{
	struct gfs_manifest *m = gfs_graph_manifest(g);
	int rc = v ? gfs_manifest_get(m, v, gv)
		   : gfs_manifest_branch_head(m, branch ? branch : "main", gv);

	if (rc == -ENOENT && !v) {
		fprintf(stderr, "graphctl %s: no branch '%s' (see 'graphctl branch list')\n",
			what, branch ? branch : "main");
		return EXIT_FAILURE;
	}
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
	rc = get_version(g, o.version, o.branch, &gv, "schema");
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


/* ---- schema apply ------------------------------------------------------ */

#define SHOWN_PROBLEMS 20

static void apply_report_text(const struct gfs_schema_apply_result *r, FILE *f)
{
	for (size_t i = 0; i < r->n_changes; i++) {
		const struct gfs_schange *c = &r->changes[i];
		fprintf(f, "  %s%s%s%s: %s%s%s%s\n", c->refused ? "REFUSED " : "",
			c->type, c->prop[0] ? "." : "", c->prop, c->what,
			c->checked ? " [checked against the rows]" : "",
			c->hint[0] ? "; allow it with " : "", c->hint);
	}
	for (size_t i = 0; i < r->n_problems && i < SHOWN_PROBLEMS; i++) {
		const struct gfs_sproblem *p = &r->problems[i];
		fprintf(f, "  row %s '%s'%s%s%s%s: %s\n", p->type, p->id,
			p->prop[0] ? " property " : "", p->prop,
			p->value[0] ? " value " : "", p->value, p->msg);
	}
	if (r->problems_total > SHOWN_PROBLEMS)
		fprintf(f, "  ... and %" PRIu64 " more rows (%" PRIu64 " in all; --json lists up to 1000)\n",
			r->problems_total - SHOWN_PROBLEMS, r->problems_total);
}

static json_t *apply_report_json(const struct gfs_schema_apply_result *r, int rc,
				 const struct gfs_diag *d)
{
	json_t *o = json_pack("{s:b,s:s,s:s,s:I,s:b,s:I,s:I,s:I,s:I,s:I,s:[],s:[]}",
			      "ok", rc == 0, "old_schema", r->old_id, "new_schema", r->new_id,
			      "version", (json_int_t)r->version, "unchanged", r->unchanged,
			      "rows_checked", (json_int_t)r->rows_checked,
			      "rows_rewritten", (json_int_t)r->rows_rewritten,
			      "tables_rewritten", (json_int_t)r->tables_rewritten,
			      "tables_created", (json_int_t)r->tables_created,
			      "problems_total", (json_int_t)r->problems_total,
			      "changes", "problems");
	json_t *ch = json_object_get(o, "changes"), *pr = json_object_get(o, "problems");

	for (size_t i = 0; o && i < r->n_changes; i++) {
		const struct gfs_schange *c = &r->changes[i];
		json_array_append_new(ch, json_pack("{s:s,s:s,s:s,s:b,s:b,s:s}", "type", c->type,
						    "property", c->prop, "change", c->what,
						    "refused", c->refused, "checked", c->checked,
						    "hint", c->hint));
	}
	for (size_t i = 0; o && i < r->n_problems; i++) {
		const struct gfs_sproblem *p = &r->problems[i];
		json_array_append_new(pr, json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", p->type,
						    "id", p->id, "property", p->prop,
						    "value", p->value, "message", p->msg));
	}
	if (o && rc)
		json_object_set_new(o, "error", json_string(d->msg[0] ? d->msg : gfs_strerror(rc)));
	if (o && r->op_id[0])
		json_object_set_new(o, "op_id", json_string(r->op_id));
	return o;
}

struct apply_args {
	const char *store, *file;
	const char **drops, **defaults;
	size_t n_drops, n_defaults;
	bool json, quiet, dry_run;
};

static int apply_args(const struct cmd *c, int argc, char **argv,
		      struct apply_args *a)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "drop-property", required_argument, NULL, 'D' },
		{ "default", required_argument, NULL, 'F' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "hjqn", lo, NULL)) != -1) {
		switch (ch) {
		case 'h': print_help(c); return EXIT_SUCCESS;
		case 'D': a->drops[a->n_drops++] = optarg; break;
		case 'F': a->defaults[a->n_defaults++] = optarg; break;
		case 'j': a->json = true; break;
		case 'q': a->quiet = true; break;
		case 'n': a->dry_run = true; break;
		default: {
			char msg[128];
			snprintf(msg, sizeof msg, "unknown or incomplete option '%s'", argv[optind - 1]);
			return usage_error(c, msg);
		}
		}
	}
	if (argc - optind != 2)
		return usage_error(c, argc - optind < 2 ? "missing STORE or NEW.pg" : "too many arguments");
	a->store = argv[optind];
	a->file = argv[optind + 1];
	return -1;
}

static int apply_print(const struct apply_args *a, const struct gfs_schema_apply_result *r,
		       int rc, const struct gfs_diag *d)
{
	if (a->json) {
		json_t *o = apply_report_json(r, rc, d);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(o);
	} else if (rc) {
		apply_report_text(r, stderr);
	} else if (!a->quiet) {
		if (r->unchanged)
			printf("schema %s is already the schema of the head: nothing to do\n", r->old_id);
		else
			printf("schema %s -> %s%s: %zu change%s, %" PRIu64 " rows checked, %zu table%s rewritten (%" PRIu64 " rows changed), %zu created%s\n",
			       r->old_id, r->new_id, a->dry_run ? " (dry run)" : "",
			       r->n_changes, r->n_changes == 1 ? "" : "s", r->rows_checked,
			       r->tables_rewritten, r->tables_rewritten == 1 ? "" : "s",
			       r->rows_rewritten, r->tables_created, "");
		apply_report_text(r, stdout);
		if (r->version)
			printf("published graph version %" PRIu64 "\n", r->version);
	}
	return rc ? fail("schema apply", rc, d) : EXIT_SUCCESS;
}

static int cmd_schema_apply(int argc, char **argv)
{
	const struct cmd *c = find_cmd("schema");
	struct apply_args a = {0};
	struct gfs_schema_apply_result r;
	struct gfs_diag d = {{0}};
	struct gfs_graph *g;
	char *text = NULL;
	size_t len = 0;
	int rc;

	a.drops = calloc((size_t)argc + 1, sizeof *a.drops);
	a.defaults = calloc((size_t)argc + 1, sizeof *a.defaults);
	if (!a.drops || !a.defaults)
		rc = fail("schema apply", -ENOMEM, NULL);
	else
		rc = apply_args(c, argc, argv, &a);
	if (rc >= 0)
		goto out;
	rc = gfs_read_file(a.file, &text, &len, (size_t)64 << 20);
	if (rc) {
		fprintf(stderr, "graphctl schema apply: cannot read schema '%s': %s\n", a.file, gfs_strerror(rc));
		rc = EXIT_FAILURE;
		goto out;
	}
	if ((rc = open_store("schema apply", a.store, 0, &g)))
		goto out;
	struct gfs_schema_apply_opts o = {
		.drops = a.drops, .n_drops = a.n_drops,
		.defaults = a.defaults, .n_defaults = a.n_defaults,
		.dry_run = a.dry_run,
	};
	int r2 = gfs_schema_apply(g, text, len, a.file, &o, &r, &d);
	gfs_graph_close(g);
	rc = apply_print(&a, &r, r2, &d);
	gfs_schema_apply_result_release(&r);
out:
	free(text);
	free(a.drops);
	free(a.defaults);
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
	rc = get_version(g, o.version, o.branch, &gv, "snapshot");
	if (!rc) {
		gfs_time_format(gv->time_ns, when);
		if (o.json)
			printf("{\"version\":%" PRIu64 ",\"time\":\"%s\",\"schema\":\"%s\",\"branch\":\"%s\",\"tables\":{",
			       gv->version, when, gv->schema_id, gv->branch);
		else
			printf("graph version %" PRIu64 " (%s, %s, branch %s)\n%-32s %8s %12s %14s\n",
			       gv->version, when, gv->op, gv->branch, "TABLE", "VERSION", "ROWS", "EXPORT BYTES");
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
	char when[40], parents[48];

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
		printf("%6" PRIu64 "  %-30s  %-8s  %-12s (removed by gc)\n", gv->version, when,
		       gv->op, gv->branch);
		return 0;
	}
	if (gv->n_parents == 2)
		snprintf(parents, sizeof parents, "%" PRIu64 ",%" PRIu64, gv->parents[0], gv->parents[1]);
	else if (gv->n_parents == 1)
		snprintf(parents, sizeof parents, "%" PRIu64, gv->parents[0]);
	else
		snprintf(parents, sizeof parents, "-");
	printf("%6" PRIu64 "  %-30s  %-8s  %-12s %-13s  %s  %s\n", gv->version, when, gv->op,
	       gv->branch, parents, gv->op_id, gv->detail ? gv->detail : "");
	return 0;
}

/* log --branch B: B's history along parents[0] from its head, down to
 * --version FROM, printed oldest first like the whole log (versions gc
 * removed as their reduced lines). */
static int log_branch(struct gfs_graph *g, const struct opts *o)
{
	struct gfs_manifest *m = gfs_graph_manifest(g);
	struct gfs_gv *gv = NULL;
	uint64_t *vs = NULL;
	size_t n = 0, cap = 0;
	int rc = gfs_manifest_branch_head(m, o->branch, &gv);

	if (rc == -ENOENT) {
		fprintf(stderr, "graphctl log: no branch '%s' (see 'graphctl branch list')\n", o->branch);
		return EXIT_FAILURE;
	}
	while (!rc && gv && gv->version >= (o->version ? o->version : 1)) {
		void *p = gfs_array_grow(vs, &cap, n, sizeof *vs, 64);
		uint64_t parent = gv->n_parents ? gv->parents[0] : 0;
		if (!p) {
			rc = -ENOMEM;
			break;
		}
		vs = p;
		vs[n++] = gv->version;
		gfs_gv_free(gv);
		gv = NULL;
		if (parent) /* a tombstone keeps its parents: walk through gc */
			rc = gfs_manifest_get_any(m, parent, &gv);
	}
	gfs_gv_free(gv);
	while (!rc && n--) {
		rc = gfs_manifest_get_any(m, vs[n], &gv);
		if (!rc)
			rc = log_one(gv, (void *)o);
		gfs_gv_free(gv);
	}
	free(vs);
	return rc ? fail("log", rc, NULL) : EXIT_SUCCESS;
}

static int cmd_log(int argc, char **argv)
{
	struct gfs_graph *g;
	struct opts o;
	int rc = begin_read("log", argc, argv, &o, &g);

	if (rc >= 0)
		return rc;
	if (o.branch) {
		rc = log_branch(g, &o);
		gfs_graph_close(g);
		return rc;
	}
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
		       garbage ? " (and garbage: temp files of dead writers or unpublished schema files, see above)" : "");
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

/* ---- branch ------------------------------------------------------------ */

static const struct cmd branch_cmds[];

/* --from VERSION (all digits) or BRANCH. */
static void parse_from(const char *from, const char **branch, uint64_t *gv)
{
	*branch = NULL;
	*gv = 0;
	if (!from)
		*branch = "main";
	else if (from[0] && strspn(from, "0123456789") == strlen(from) &&
		 !gfs_parse_u64(from, gv) && *gv)
		return;
	else
		*branch = from;
}

static int branch_fail(const char *what, int rc, const struct gfs_diag *d)
{
	fprintf(stderr, "graphctl %s: %s\n", what, d->msg[0] ? d->msg : gfs_strerror(rc));
	/* pending recovery names the branch: the exit code of "recovery needed" */
	return rc == -EBUSY ? EXIT_RECOVERY : exit_for(rc);
}

static int cmd_branch_create(int argc, char **argv)
{
	const struct cmd *c = &branch_cmds[0];
	struct gfs_diag d = {{0}};
	struct gfs_branch b;
	struct gfs_graph *g;
	const char *from_branch;
	uint64_t from_gv;
	struct opts o;
	int rc = parse_opts(c, argc, argv, &o);

	if (rc >= 0)
		return rc;
	parse_from(o.from, &from_branch, &from_gv);
	if ((rc = open_store("branch create", o.store, 0, &g)))
		return rc;
	rc = gfs_manifest_branch_create(gfs_graph_manifest(g), o.name, from_branch,
					from_gv, gfs_graph_actor(g), &b, &d);
	gfs_graph_close(g);
	if (rc)
		return branch_fail("branch create", rc, &d);
	if (o.json) {
		char *j = gfs_branch_to_json(&b);
		if (j)
			puts(j);
		free(j);
	} else if (!o.quiet) {
		printf("created branch %s at graph version %" PRIu64 "\n", b.name, b.from);
	}
	return EXIT_SUCCESS;
}

static int cmd_branch_delete(int argc, char **argv)
{
	const struct cmd *c = &branch_cmds[1];
	struct gfs_diag d = {{0}};
	struct gfs_graph *g;
	struct opts o;
	int rc = parse_opts(c, argc, argv, &o);

	if (rc >= 0)
		return rc;
	if ((rc = open_store("branch delete", o.store, 0, &g)))
		return rc;
	rc = gfs_manifest_branch_delete(gfs_graph_manifest(g), o.name, &d);
	gfs_graph_close(g);
	if (rc)
		return branch_fail("branch delete", rc, &d);
	if (!o.quiet)
		printf("deleted branch %s\n", o.name);
	return EXIT_SUCCESS;
}

static int cmd_branch_list(int argc, char **argv)
{
	const struct cmd *c = &branch_cmds[2];
	struct gfs_branch *bs = NULL;
	struct gfs_graph *g;
	size_t n = 0;
	struct opts o;
	int rc = parse_opts(c, argc, argv, &o);

	if (rc >= 0)
		return rc;
	if ((rc = open_store("branch list", o.store, GFS_GRAPH_RDONLY, &g)))
		return rc;
	rc = gfs_manifest_branch_list(gfs_graph_manifest(g), &bs, &n);
	gfs_graph_close(g);
	if (rc)
		return fail("branch list", rc, NULL);
	if (o.json)
		printf("[");
	else
		printf("%-20s %8s %8s  %-26s  %s\n", "BRANCH", "HEAD", "FROM", "ID", "CREATED");
	for (size_t i = 0; i < n; i++) {
		char when[40];
		char *j = o.json ? gfs_branch_to_json(&bs[i]) : NULL;
		gfs_time_format(bs[i].created_ns, when);
		if (o.json)
			printf("%s%s", i ? "," : "", j ? j : "null");
		else
			printf("%-20s %8" PRIu64 " %8" PRIu64 "  %-26s  %s\n", bs[i].name,
			       bs[i].head, bs[i].from, bs[i].id[0] ? bs[i].id : "-",
			       bs[i].created_ns ? when : "-");
		free(j);
	}
	if (o.json)
		printf("]\n");
	free(bs);
	return EXIT_SUCCESS;
}

static const struct cmd branch_cmds[] = {
	{ "branch create", cmd_branch_create, "branch create STORE NAME [--from VERSION|BRANCH] [--json]",
	  "Create branch NAME at graph version VERSION, or at the head of BRANCH\n"
	  "(default: main).  Copies no table data: one manifest record.  NAME is a\n"
	  "letter or digit, then up to 63 letters, digits, '.', '_' or '-'.\n"
	  "Exit 1 when NAME is taken or bad or --from names nothing; nothing changed.\n",
	  false },
	{ "branch delete", cmd_branch_delete, "branch delete STORE NAME",
	  "Delete branch NAME (its graph versions stay, reachable as versions/N).\n"
	  "main cannot be deleted (exit 1); a branch a pending operation names\n"
	  "cannot be deleted until 'graphctl recover' resolved it (exit 3).\n",
	  false },
	{ "branch list", cmd_branch_list, "branch list STORE [--json]",
	  "One line per branch: name, head and start graph versions, id, creation\n"
	  "time.  --json: [{\"name\",\"id\",\"head\",\"from\",\"created\",\"actor\"}].\n",
	  false },
};

static int cmd_branch(int argc, char **argv)
{
	const struct cmd *c = find_cmd("branch");

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		print_help(c);
		return EXIT_SUCCESS;
	}
	for (size_t i = 0; argc >= 2 && i < GFS_ARRAY_SIZE(branch_cmds); i++)
		if (!strcmp(branch_cmds[i].name + 7, argv[1]))
			return branch_cmds[i].fn(argc - 1, argv + 1);
	return usage_error(c, argc < 2 ? "missing create, list or delete"
			   : "the subcommands are create, list and delete");
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
	rc = gfs_graph_compact(g, o.type, o.branch, NULL, &r, &d);
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
		printf(",\"files\":%zu,\"bytes_freed\":%" PRIu64 ",\"rounds\":%zu}\n",
		       r->n_unlinked, r->bytes_freed, r->rounds);
		return;
	}
	printf("%s %zu graph version(s)", o->dry_run ? "would remove" : "removed", r->n_removed);
	for (size_t i = 0; i < r->n_removed && i < 20; i++)
		printf("%s%" PRIu64, i ? "," : " ", r->removed[i]);
	printf("%s; %s %zu table-version file(s), %" PRIu64 " bytes",
	       r->n_removed > 20 ? ",..." : "", o->dry_run ? "would free" : "freed",
	       r->n_unlinked, r->bytes_freed);
	if (r->rounds > 1) /* etcd: one transaction could not take them all */
		printf(", in %zu rounds", r->rounds);
	printf("\n");
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

/* ---- migrate ----------------------------------------------------------- */

static void migrate_progress(const char *db, uint64_t done, void *arg)
{
	(void)arg;
	fprintf(stderr, "\rmigrate: %-12s %llu records", db, (unsigned long long)done);
	fflush(stderr);
}

static int migrate_json(const struct opts *o, const struct gfs_migrate_result *r,
			int rc, const struct gfs_diag *d)
{
	json_t *dbs = json_object(), *out;
	char *s;

	for (unsigned i = 0; dbs && i < r->n_dbs; i++)
		json_object_set_new(dbs, r->dbs[i].name,
				    json_integer((json_int_t)r->dbs[i].records));
	out = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:I, s:o, s:s, s:s?}",
			"store", o->store, "from", r->from, "to", r->to,
			"already", r->already, "thawed", r->thawed,
			"resumed", r->resumed,
			"cleared", r->cleared, "records", (json_int_t)r->records,
			"dbs", dbs,
			"check", rc ? "failed" : r->already ? "skipped" : "passed",
			"error", rc ? (d->msg[0] ? d->msg : gfs_strerror(rc)) : NULL);
	s = out ? json_dumps(out, JSON_COMPACT) : NULL;
	if (!s)
		return fail("migrate", -ENOMEM, NULL);
	printf("%s\n", s);
	free(s);
	json_decref(out);
	return 0;
}

static int cmd_migrate(int argc, char **argv)
{
	const struct cmd *c = find_cmd("migrate");
	struct gfs_migrate_result r;
	struct gfs_migrate_opts mo = { 0 };
	struct gfs_diag d = {{0}};
	struct opts o;
	int rc = parse_opts(c, argc, argv, &o);

	if (rc >= 0)
		return rc;
	if (!o.manifest)
		return usage_error(c, "missing --manifest etcd://HOST:PORT[,...]/PREFIX or --manifest lmdb");
	mo.batch = o.batch;
	if (!o.json && !o.quiet && isatty(STDERR_FILENO))
		mo.progress = migrate_progress;
	rc = gfs_graph_migrate(o.store, o.manifest, &mo, &r, &d);
	if (mo.progress && r.records)
		fputc('\n', stderr);
	if (o.json)
		migrate_json(&o, &r, rc, &d);
	if (rc) {
		int st = fail("migrate", rc, &d);
		return rc == -EBUSY ? EXIT_BUSY : st;
	}
	if (o.json || o.quiet)
		return EXIT_SUCCESS;
	if (r.already && r.thawed) {
		printf("%s: its manifest is %s; the freeze an interrupted migrate "
		       "left is lifted: writable again\n", o.store, r.to);
		return EXIT_SUCCESS;
	}
	if (r.already) {
		printf("%s: its manifest is already %s, nothing to do\n", o.store, r.to);
		return EXIT_SUCCESS;
	}
	for (unsigned i = 0; i < r.n_dbs; i++)
		printf("  %-12s %llu\n", r.dbs[i].name, (unsigned long long)r.dbs[i].records);
	printf("%s: manifest moved from %s to %s (%llu records, check passed%s);\n",
	       o.store, r.from, r.to, (unsigned long long)r.records,
	       r.resumed ? ", an interrupted run completed" : "");
	/* "etcd://EPS/PREFIX": the old keys are PREFIX/... on EPS */
	const char *eps = strncmp(r.from, "etcd://", 7) ? NULL : r.from + 7;
	const char *slash = eps ? strchr(eps, '/') : NULL;
	if (slash)
		printf("the old manifest is kept, frozen: remove it with\n"
		       "  etcdctl --endpoints=%.*s del --prefix '%s/'\n",
		       (int)(slash - eps), eps, slash + 1);
	else
		printf("the old manifest is kept, frozen: remove it with\n"
		       "  rm -r '%s/manifest'\n", o.store);
	return EXIT_SUCCESS;
}

/* ---- merge ------------------------------------------------------------- */

struct merge_args {
	const char *store;
	struct gfs_merge_opts mo;
	bool json, quiet;
};

/* Its own options (STORE SOURCE, --into, --prefer): -1 to go on, or an
 * exit status. */
static int merge_args(const struct cmd *c, int argc, char **argv, struct merge_args *a)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "into", required_argument, NULL, 'i' },
		{ "prefer", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(a, 0, sizeof *a);
	a->mo.into = "main";
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "hi:p:jq", lo, NULL)) != -1) {
		switch (ch) {
		case 'h': print_help(c); return EXIT_SUCCESS;
		case 'i': a->mo.into = optarg; break;
		case 'p':
			if (gfs_merge_prefer_parse(optarg, &a->mo.prefer))
				return usage_error(c, "--prefer is source or target");
			break;
		case 'j': a->json = true; break;
		case 'q': a->quiet = true; break;
		default: {
			char msg[128];
			snprintf(msg, sizeof msg, "unknown or incomplete option '%s'", argv[optind - 1]);
			return usage_error(c, msg);
		}
		}
	}
	if (argc - optind < 2)
		return usage_error(c, optind >= argc ? "missing STORE" : "missing SOURCE (the branch to merge)");
	if (argc - optind > 2) {
		char msg[128];
		snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind + 2]);
		return usage_error(c, msg);
	}
	a->store = argv[optind];
	a->mo.source = argv[optind + 1];
	return -1;
}

static void merge_json(const struct gfs_merge_result *r)
{
	const char *rep = r->report_json ? r->report_json : "{\"conflicts\":[],\"invalid\":[]}";

	/* the report's members follow ours in the same object */
	printf("{\"version\":%" PRIu64 ",\"op_id\":\"%s\",\"fast_forward\":%s,\"already_merged\":%s,"
	       "\"base\":%" PRIu64 ",\"target\":%" PRIu64 ",\"source\":%" PRIu64 ",\"rows_taken\":%" PRIu64
	       ",\"tables_written\":%zu,\"tables_adopted\":%zu,\"resolved\":%zu,%s\n",
	       r->version, r->op_id, r->fast_forward ? "true" : "false",
	       r->already_merged ? "true" : "false", r->base_gv, r->target_gv, r->source_gv,
	       r->rows_taken, r->tables_written, r->tables_adopted, r->resolved, rep + 1);
}

static void merge_text(const struct merge_args *a, const struct gfs_merge_result *r)
{
	if (r->report_text && r->report_text[0])
		fputs(r->report_text, stdout);
	if (r->already_merged)
		printf("already merged: '%s' (graph version %" PRIu64 ") is in '%s'\n",
		       a->mo.source, r->source_gv, a->mo.into);
	else if (r->fast_forward)
		printf("fast-forward: '%s' is now graph version %" PRIu64 " (the tables of '%s' at %" PRIu64 "; no table file written)\n",
		       a->mo.into, r->version, a->mo.source, r->source_gv);
	else if (r->version)
		printf("merged '%s' into '%s' as graph version %" PRIu64 " (base %" PRIu64 "; %" PRIu64 " rows taken, %zu tables written, %zu adopted, %zu conflicts resolved)\n",
		       a->mo.source, a->mo.into, r->version, r->base_gv, r->rows_taken,
		       r->tables_written, r->tables_adopted, r->resolved);
}

static int cmd_merge(int argc, char **argv)
{
	const struct cmd *c = find_cmd("merge");
	struct gfs_merge_result r;
	struct gfs_diag d = {{0}};
	struct gfs_graph *g;
	struct merge_args a;
	int rc = merge_args(c, argc, argv, &a);

	if (rc >= 0)
		return rc;
	if ((rc = open_store("merge", a.store, 0, &g)))
		return rc;
	rc = gfs_graph_merge(g, &a.mo, &r, &d);
	gfs_graph_close(g);
	if (a.json && (!rc || rc == GFS_ECONFLICT))
		merge_json(&r);
	else if (!a.quiet && (!rc || rc == GFS_ECONFLICT))
		merge_text(&a, &r);
	gfs_merge_result_release(&r);
	return rc ? fail("merge", rc, &d) : EXIT_SUCCESS;
}

/* ---- dispatch ---------------------------------------------------------- */

static const struct cmd cmds[] = {
	{ "init", cmd_init, "init STORE --schema FILE.pg [--manifest etcd://HOST:PORT[,HOST:PORT...]/PREFIX]",
	  "Create a new store in STORE (a new or empty directory) with the schema in\n"
	  "FILE.pg.  The store starts at graph version 1 with every table empty.\n"
	  "--manifest: keep the manifest in an etcd cluster under PREFIX (nothing\n"
	  "may live there yet) instead of STORE/manifest; STORE/FORMAT names the\n"
	  "URL and every command and mount then uses etcd (docs/multi-host.md).\n", false },
	{ "load", cmd_load, "load STORE --data FILE.jsonl|- [--mode merge|append|overwrite] [--threads N] [--branch NAME] [--json] [--quiet]",
	  "Load a JSON Lines file as one new graph version.  merge (default) upserts\n"
	  "by id, append inserts only new ids, overwrite replaces every table the\n"
	  "file mentions.  Everything is validated first; on any error nothing is\n"
	  "written and the message names the line, type, id and property.\n"
	  "--threads N: parse on N threads (default: one per CPU, or\n"
	  "GRAPHFS_LOAD_THREADS); the result does not depend on N.\n"
	  "A terminal shows progress on standard error (rows/s and MB/s per phase);\n"
	  "--json: {\"version\",\"op_id\",\"lines\",\"rows\",\"bytes\",\"sort_runs\",\"sort_bytes\",\n"
	  "\"phases_ms\":{...}} (sort_*: runs and bytes the sort spilled to STORE/staging).\n", false },
	{ "export", cmd_export, "export STORE [--version N | --branch NAME] [--type TYPE]",
	  "Write graph version N (default: main's head) in load format to standard\n"
	  "output: node tables, then edge tables, each in id order.\n", true },
	{ "snapshot", cmd_snapshot, "snapshot STORE [--version N | --branch NAME] [--json]",
	  "Show, per table, the table version graph version N pins and its rows.\n"
	  "--json: {\"version\":N,\"branch\":\"main\",\"tables\":{\"node:Person\":{\"version\":k,\"rows\":n,\"bytes\":b}}}\n", true },
	{ "log", cmd_log, "log STORE [--version FROM] [--branch NAME] [--json]",
	  "One line per graph version, oldest first.  --json: one object per line,\n"
	  "{\"version\":N,\"time\":\"RFC 3339\",\"op\":\"load\",\"op_id\":...,\"branch\":\"main\",\n"
	  "\"parents\":[N-1],\"tables\":{...}}.  --branch NAME: that branch's history\n"
	  "along first parents, from its head.\n", true },
	{ "schema", cmd_schema, "schema STORE [--version N | --branch NAME] | schema apply STORE NEW.pg [--drop-property T.p ...] [--default T.p=JSON ...] [--dry-run] [--json] [--quiet]",
	  "Print the schema text of graph version N (default: main's head).\n"
	  "schema apply: publish one graph version whose schema is NEW.pg, when every\n"
	  "row is valid under it (docs/semantics.md, \"Schema changes\").  New types,\n"
	  "new optional properties and relaxed or new constraints are allowed (new\n"
	  "constraints are checked against the rows, each offending row listed).\n"
	  "Removing a property, a new required property, changing a property's type\n"
	  "or @key, or removing a type with rows are refused with a report, unless\n"
	  "--drop-property T.p (rewrite the rows without it) or --default T.p=JSON\n"
	  "(fill it where absent) says how.  Refused while a branch other than main\n"
	  "exists.  --dry-run: plan and check only.  --json: one object {\"ok\",\n"
	  "\"old_schema\",\"new_schema\",\"version\",\"changes\":[...],\"problems\":[...],\n"
	  "\"problems_total\",...}.  Exit 0 applied (or unchanged), 1 refused, invalid\n"
	  "rows or a schema that does not parse (nothing changed), 2 usage, 3 recovery\n"
	  "needed.\n", true },
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
	{ "branch", cmd_branch, "branch create|list|delete STORE [NAME] [--from VERSION|BRANCH] [--json]",
	  "Branches (a line of history with its own head; the root of a mount and\n"
	  "every command without --branch is main):\n"
	  "  branch create STORE NAME [--from VERSION|BRANCH]   at a version or a\n"
	  "                                    branch's head (default main); no data copied\n"
	  "  branch list STORE [--json]        name, head, from, id, created\n"
	  "  branch delete STORE NAME          not main; not while a pending operation\n"
	  "                                    names it (exit 3: run 'graphctl recover')\n"
	  "load, export, snapshot, log and schema take --branch NAME; log --branch\n"
	  "walks the branch's first parents from its head.\n", false },
	{ "compact", cmd_compact, "compact STORE [--type TYPE] [--branch NAME] [--json] [--quiet]",
	  "Rewrite the newest version of each table (or of TYPE) whose history spans\n"
	  "several files into one fresh file with the same rows, as one new graph\n"
	  "version (op compact) on main, or on branch NAME.  Every row keeps its\n"
	  "serial and last-changed version, so inode numbers and mtimes in a mount\n"
	  "do not move.  Tables\n"
	  "already in one file are left alone.  The old files are freed by a later\n"
	  "'graphctl gc' once no kept version needs them.  Prints, per table, the\n"
	  "bytes of the files its old version read and of the new file.  --json:\n"
	  "{\"version\":N,\"op_id\":...,\"tables\":{\"node:T\":{\"from\",\"to\",\"rows\",\n"
	  "\"bytes_before\",\"bytes_after\"}}} (version 0: nothing to compact).\n"
	  "Exit 0 done, 1 failed (nothing visible), 3 recovery needed.\n", false },
	{ "gc", cmd_gc, "gc STORE --keep-last N | --keep-since TIME [--dry-run] [--json] [--quiet]",
	  "Remove the graph versions outside the window and unlink the table-version\n"
	  "files no kept version needs.  The window is per branch: --keep-last N\n"
	  "keeps each branch's newest N graph versions (those published on it);\n"
	  "--keep-since TIME those committed at or after TIME (UTC,\n"
	  "2026-11-30T22:00:00Z, or seconds since 1970).  A deleted branch's versions\n"
	  "are in no window.  Always kept: every branch's head, the highest graph\n"
	  "version, the merge base of every two branches, what a pending merge\n"
	  "names, and every version a mount holds open (a file or directory\n"
	  "under versions/N:\n"
	  "STORE/locks/versions.lock).  A removed\n"
	  "version keeps its log line (reduced) and its commit time, so row mtimes\n"
	  "do not change; versions/N disappears from mounts.  Versions share pages,\n"
	  "so run 'graphctl compact' first to free an old table chain.\n"
	  "On an etcd store gc works in rounds of at most 256 versions, oldest\n"
	  "first (fewer if the cluster's --max-txn-ops refuses that many), each a\n"
	  "gc of its own with its audit record.\n"
	  "--dry-run: plan and report only.  --json: {\"dry_run\",\"op_id\" (the\n"
	  "last round's),\"removed\":[N,...],\"held\":[N,...],\"files\":n,\n"
	  "\"bytes_freed\":b,\"rounds\":n}.\n"
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
	{ "migrate", cmd_migrate, "migrate STORE --manifest etcd://HOST:PORT[,...]/PREFIX|lmdb [--batch N] [--json] [--quiet]",
	  "Move the store's manifest (history, branches, audit log, table-version\n"
	  "index: every record) to another backend: an etcd cluster under PREFIX,\n"
	  "or LMDB in STORE/manifest.  Table files stay where they are.  Copies in\n"
	  "transactions of --batch records (default 64: within etcd's default\n"
	  "--max-txn-ops of 128), freezes the old manifest (a process that opened\n"
	  "the store before can still read it, but its writes fail: 'moved to\n"
	  "...'; reopen), checks that both sides hold the same records (if not:\n"
	  "thawed, nothing switched, exit 1), then switches STORE/FORMAT.\n"
	  "Refused (exit 5) while a writer holds a table lock, an operation is\n"
	  "pending (run 'graphctl recover'), an LMDB store is open in another\n"
	  "process (a mount), or an etcd store's prefix holds a lease or hold key\n"
	  "(a writer or a mount on any host).  A target that holds anything but a\n"
	  "partial copy or an old manifest of this store is refused (exit 1), as\n"
	  "is an etcd prefix equal to or nested with the store's own.\n"
	  "Crash-safe: run it again to finish.  The old manifest is kept: the\n"
	  "summary prints the command that removes it ('rm -r STORE/manifest', or\n"
	  "'etcdctl --endpoints=... del --prefix PREFIX/').  A store already there:\n"
	  "nothing to do, exit 0 (a freeze left by an interrupted migrate is lifted:\n"
	  "the way to cancel one).  Progress on a terminal.  --json: {\"store\",\n"
	  "\"from\",\"to\",\"already\",\"thawed\",\"resumed\",\"cleared\",\"records\",\n"
	  "\"dbs\":{\"meta\":n,...},\"check\":\"passed\"|\"failed\"|\"skipped\",\"error\"}\n"
	  "(also on failure).  Exit 0 done, 1 failed (the store keeps its old\n"
	  "manifest unless the error says to run again), 2 usage, 5 busy.\n", false },
	{ "merge", cmd_merge, "merge STORE SOURCE [--into TARGET] [--prefer source|target] [--json] [--quiet]",
	  "Merge branch SOURCE into branch TARGET (default main) as one graph\n"
	  "version on TARGET whose parents are TARGET's head and SOURCE's head.\n"
	  "Rows are merged three-way against the common ancestor: a row changed on\n"
	  "one side only is taken; changed differently on both sides, deleted on\n"
	  "one side and changed on the other, or an edge whose endpoint the other\n"
	  "side deleted is a conflict.  The result is validated like a load\n"
	  "(@unique, @card, endpoints).  On any conflict or invalid row nothing is\n"
	  "published and every one is listed (type, key, both values), exit 1;\n"
	  "--prefer source|target resolves the conflicts (not invalid rows).\n"
	  "A fast-forward (TARGET is the ancestor) writes no table file.\n"
	  "--json: {\"version\",\"op_id\",\"fast_forward\",\"already_merged\",\"base\",\n"
	  "\"target\",\"source\",\"rows_taken\",\"tables_written\",\"tables_adopted\",\n"
	  "\"resolved\",\"conflicts\":[...],\"invalid\":[...]} (also on a refusal).\n"
	  "Exit 0 merged or already merged, 1 conflicts, invalid rows, an unknown\n"
	  "branch, merging a branch into itself or across schemas (nothing changed),\n"
	  "2 usage, 3 recovery needed.\n", false },
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
		   "3 recovery needed, 4 invariant violation, 5 busy (upgrade, migrate),\n"
		   "6 lease lost (a store on etcd: nothing published).\n");
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
	if (!strcmp(c->name, "schema") && argc > 2 && !strcmp(argv[2], "apply"))
		return cmd_schema_apply(argc - 2, argv + 2);
	return c->guarded ? run_guarded(c, argc - 1, argv + 1)
			  : c->fn(argc - 1, argv + 1);
}
