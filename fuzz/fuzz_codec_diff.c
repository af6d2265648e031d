/* fuzz_codec_diff.c - libFuzzer: both load-codec paths on arbitrary bytes.
 *
 * Input: one byte choosing the schema (below, modulo their number), then
 * the line.  Aborts when the fast path (src/codec_fast.c) and the jansson
 * path disagree in any way tests/unit/codec_diff.h checks.  Build with
 * ./configure --enable-fuzz; run with `make fuzz` (docs/testing.md).
 * Whatever it finds goes into tests/unit/codec_diff.jsonl as a regression.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec_diff.h"
#include "schema.h"

static const char *const files[] = {
	"tests/unit/codec_diff.pg", "examples/people.pg", "bench/synth.pg",
	"tests/data/pkggraph.pg",
};
static struct gfs_schema *S[sizeof files / sizeof files[0]];
static struct cdiff X;

static void load_schema(size_t i)
{
	char path[4096], *text;
	struct gfs_diag d = { { 0 } };
	FILE *f;
	long n;

	snprintf(path, sizeof path, "%s/%s", GFS_SRCDIR, files[i]);
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0) {
		fprintf(stderr, "fuzz_codec_diff: cannot read %s\n", path);
		abort();
	}
	rewind(f);
	text = malloc((size_t)n);
	if (!text || fread(text, 1, (size_t)n, f) != (size_t)n ||
	    gfs_schema_parse(text, (size_t)n, files[i], &S[i], &d)) {
		fprintf(stderr, "fuzz_codec_diff: %s: %s\n", path, d.msg);
		abort();
	}
	free(text);
	fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		load_schema(i);
	cdiff_init(&X);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t si;
	const char *why;

	if (size < 1)
		return 0;
	si = data[0] % (sizeof files / sizeof files[0]);
	why = cdiff_line(&X, S[si], (const char *)data + 1, size - 1);
	if (why) {
		fprintf(stderr, "fuzz_codec_diff: %s against %s\n"
			"  jansson: rc %d %s\n  with fast path: rc %d %s\n",
			why, files[si], X.ra, X.da.msg, X.rb, X.db.msg);
		abort();
	}
	return 0;
}
