/* bench/apply_rate.c - versions and changes per second of gfs_graph_apply
 * (the engine of writes through the mount, issue 10) without FUSE: N node
 * puts into a fresh store, in batches of B changes (B = 1: one version per
 * change, as a sequential `cp` gets; B = 8: what group commit gets from 8
 * parallel writers).  `make bench-apply` runs B = 1, 8, 64.
 *
 *     bench/apply_rate STORE_DIR N B
 *
 * STORE_DIR must not exist; it is created and left for inspection. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "graph.h"

static const char SCHEMA[] =
	"node Person { slug: String @key  name: String? }\n"
	"edge Knows: Person -> Person\n";

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int run(struct gfs_graph *g, size_t n, size_t batch)
{
	struct gfs_change *ch = calloc(batch, sizeof *ch);
	char (*keys)[16] = calloc(n, sizeof *keys);
	struct gfs_apply_opts o = { .source = "bench/apply_rate" };
	struct gfs_apply_result r;
	struct gfs_diag d = {{0}};
	double t0 = now(), t;
	size_t versions = 0;

	if (!ch || !keys)
		return 1;
	for (size_t i = 0; i < n; i += batch) {
		size_t m = 0;
		for (size_t j = i; j < i + batch && j < n; j++, m++) {
			snprintf(keys[j], sizeof keys[j], "p%07zu", j);
			ch[m] = (struct gfs_change){ .kind = GFS_CH_NODE_PUT, .type = "Person",
						     .key = keys[j], .key_len = strlen(keys[j]),
						     .data = "{\"name\":\"x\"}", .data_len = 12 };
		}
		if (gfs_graph_apply(g, ch, m, &o, &r, &d) || r.failed) {
			fprintf(stderr, "apply_rate: %s %s\n", d.msg, ch[0].msg);
			return 1;
		}
		versions++;
	}
	t = now() - t0;
	printf("apply_rate: %zu puts in batches of %zu: %.2f s, %.0f changes/s, %.0f versions/s\n",
	       n, batch, t, (double)n / t, (double)versions / t);
	free(ch);
	free(keys);
	return 0;
}

int main(int argc, char **argv)
{
	struct gfs_diag d = {{0}};
	struct gfs_graph *g;
	int rc;

	if (argc != 4) {
		fprintf(stderr, "usage: apply_rate STORE_DIR N BATCH\n");
		return 2;
	}
	if (gfs_graph_init(argv[1], SCHEMA, strlen(SCHEMA), "bench.pg", "bench", &d) ||
	    gfs_graph_open(argv[1], 0, &g, &d)) {
		fprintf(stderr, "apply_rate: %s\n", d.msg);
		return 1;
	}
	rc = run(g, strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10) ?: 1);
	gfs_graph_close(g);
	return rc;
}
