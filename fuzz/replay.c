/* replay.c - runs a libFuzzer harness without libFuzzer: every file named
 * on the command line (or every file in a directory named there) goes
 * through LLVMFuzzerTestOneInput once.  Linked with each fuzz/fuzz_*.c
 * into tests/fuzz/replay_* in every build, so `make check` replays the
 * seed corpora and every input a fuzzer once crashed on
 * under ASan/UBSan (without arguments: fuzz/corpus/FUZZ_CORPUS).  Exit 0
 * after all; a failing input aborts inside the harness, its name printed
 * just before on stderr.
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__asan_default_options(void);

/* Under ASan, an allocation over 2 GiB fails the replay as it fails a
 * libFuzzer run (-malloc_limit_mb = -rss_limit_mb = 2048): hostile bytes
 * must never make a reader ask for that much (docs/format.md, "Limits"). */
const char *__asan_default_options(void)
{
	return "max_allocation_size_mb=2048:allocator_may_return_null=0";
}
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		if (f)
			fclose(f);
		return 1;
	}
	rewind(f);
	p = malloc((size_t)n + 1); /* +1: never malloc(0) */
	if (!p || fread(p, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		free(p);
		fclose(f);
		return 1;
	}
	fclose(f);
	fprintf(stderr, "replay: %s (%ld bytes)\n", path, n);
	LLVMFuzzerTestOneInput(p, (size_t)n);
	free(p);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, unsigned *count)
{
	char **names = NULL, path[4096];
	size_t n = 0, cap = 0;
	struct dirent *e;
	int bad = 0;
	DIR *d = opendir(dir);

	if (!d)
		return run_file(dir) ? 1 : (++*count, 0);
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			names = realloc(names, cap * sizeof *names);
			if (!names)
				return 1;
		}
		if (!(names[n++] = strdup(e->d_name)))
			return 1;
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		bad |= run_file(path);
		++*count;
		free(names[i]);
	}
	free(names);
	return bad;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int bad = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		bad |= run_dir(argv[i], &count);
#ifdef FUZZ_CORPUS
	if (argc < 2) /* as a test of make check: the harness's own corpus */
		bad |= run_dir(GFS_SRCDIR "/fuzz/corpus/" FUZZ_CORPUS, &count);
#endif
	printf("replayed %u inputs\n", count);
	return bad;
}
