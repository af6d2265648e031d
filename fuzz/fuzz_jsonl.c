/* fuzz_jsonl.c - libFuzzer: the load's JSONL decoder and row validator
 * (src/load_parse.c over src/codec.c) on arbitrary bytes against one fixed
 * schema, tests/unit/codec_diff.pg (every type, key kind and constraint).
 *
 * Input: one byte choosing the chunk size (so lines are cut across chunk
 * boundaries at varied places) and one or two parse threads (bit 2), then
 * the file.  The file is parsed as `graphctl load` parses it.  Checked:
 *   - every row delivered is in order of its line number, and its
 *     canonical line parses again to the same bytes and id (codec.h: the
 *     canonical form is a fixed point);
 *   - a failure is GFS_EDATA or GFS_ETOOLONG with a message that starts
 *     with "line N:" for a line N of the input.
 * Aborts otherwise; ASan/UBSan catch the rest.  docs/testing.md.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "codec.h"
#include "load_parse.h"
#include "schema.h"

#define FAIL(...)                                                             \
	do {                                                                  \
		fprintf(stderr, "fuzz_jsonl: " __VA_ARGS__);                  \
		fputc('\n', stderr);                                          \
		abort();                                                      \
	} while (0)

static struct gfs_schema *S;
static struct gfs_rowin R2;
static int fd = -1;

struct run {
	uint64_t last, lines;
};

static int on_row(void *arg, const struct gfs_rowin *r, uint64_t lineno)
{
	struct run *u = arg;
	struct gfs_diag d = { { 0 } };
	int rc;

	if (lineno <= u->last || lineno > u->lines)
		FAIL("row of line %" PRIu64 " after line %" PRIu64, lineno,
		     u->last);
	u->last = lineno;
	rc = gfs_codec_parse_line(S, r->line.p, r->line.len, lineno, &R2, &d);
	if (rc)
		FAIL("canonical line %" PRIu64 " does not parse again: %s\n%.*s",
		     lineno, d.msg, (int)r->line.len, r->line.p);
	if (R2.line.len != r->line.len ||
	    memcmp(R2.line.p, r->line.p, r->line.len) ||
	    R2.id.len != r->id.len ||
	    (r->id.len && memcmp(R2.id.p, r->id.p, r->id.len)))
		FAIL("canonical line %" PRIu64 " is not a fixed point:\n%.*s%.*s",
		     lineno, (int)r->line.len, r->line.p, (int)R2.line.len,
		     R2.line.p);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *path = GFS_SRCDIR "/tests/unit/codec_diff.pg";
	struct gfs_diag d = { { 0 } };
	char *text;
	FILE *f = fopen(path, "rb");
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0)
		FAIL("cannot read %s", path);
	rewind(f);
	text = malloc((size_t)n);
	if (!text || fread(text, 1, (size_t)n, f) != (size_t)n ||
	    gfs_schema_parse(text, (size_t)n, "codec_diff.pg", &S, &d))
		FAIL("%s: %s", path, d.msg);
	free(text);
	fclose(f);
	gfs_rowin_init(&R2);
	fd = memfd_create("fuzz_jsonl", MFD_CLOEXEC);
	if (fd < 0)
		FAIL("memfd_create failed");
	return 0;
}

static void check_error(int rc, const char *msg, uint64_t lines)
{
	uint64_t line;
	char *end;

	if (rc == -ENOMEM)
		return;
	if (rc != GFS_EDATA && rc != GFS_ETOOLONG)
		FAIL("rc %d (%s): %s", rc, gfs_strerror(rc), msg);
	if (strncmp(msg, "line ", 5))
		FAIL("error without its line: '%s'", msg);
	line = strtoull(msg + 5, &end, 10);
	if (end == msg + 5 || *end != ':' || line < 1 || line > lines)
		FAIL("error names line %" PRIu64 " of %" PRIu64 ": '%s'", line,
		     lines, msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunks[] = { 1, 7, 64, 4096 };
	struct gfs_parse_opts o = { .s = S, .source = "fuzz.jsonl",
				    .row = on_row };
	struct gfs_parse_stats st;
	struct gfs_diag d = { { 0 } };
	struct run u = { 0, 1 };
	int rc;

	if (size < 1)
		return 0;
	o.chunk = chunks[data[0] % 4];
	o.threads = data[0] & 4 ? 2 : 1; /* workers: chunks out of order */
	o.arg = &u;
	for (size_t i = 1; i < size; i++)
		u.lines += data[i] == '\n';
	if (ftruncate(fd, 0) || pwrite(fd, data + 1, size - 1, 0) !=
	    (ssize_t)(size - 1) || lseek(fd, 0, SEEK_SET))
		FAIL("cannot write the memfd");
	rc = gfs_load_parse(fd, &o, &st, &d);
	if (rc)
		check_error(rc, d.msg, u.lines);
	return 0;
}
