/* fuzz_schema.c - libFuzzer: the .pg schema parser (src/schema.c) on
 * arbitrary bytes.
 *
 * Each input is a schema text.  A parse either succeeds (the schema is
 * walked: every type, property and table name is a NUL-terminated string
 * of the documented shape, endpoints resolve) or fails with GFS_ESCHEMA
 * and a message "fuzz.pg:LINE:COL: ..." naming a position inside the
 * text.  Parsing the same text twice gives the same schema id.  The
 * UTF-8 / size check of new schemas (gfs_schema_check_text) runs first, its
 * error naming a position the same way.  Aborts
 * otherwise; ASan/UBSan catch the rest.  docs/testing.md, "Fuzzing".
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

#define FAIL(...)                                                             \
	do {                                                                  \
		fprintf(stderr, "fuzz_schema: " __VA_ARGS__);                 \
		fputc('\n', stderr);                                          \
		abort();                                                      \
	} while (0)

/* "fuzz.pg:L:C: ..." with 1 <= L <= lines in text + 1. */
static void check_message(const char *msg, const uint8_t *t, size_t n)
{
	unsigned long line, col;
	size_t lines = 1;
	char *end;

	if (strncmp(msg, "fuzz.pg:", 8))
		FAIL("error without the file name: '%s'", msg);
	line = strtoul(msg + 8, &end, 10);
	if (*end != ':')
		FAIL("error without a line: '%s'", msg);
	col = strtoul(end + 1, &end, 10);
	if (*end != ':')
		FAIL("error without a column: '%s'", msg);
	for (size_t i = 0; i < n; i++)
		lines += t[i] == '\n';
	if (line < 1 || line > lines || col < 1)
		FAIL("error at %lu:%lu outside the text (%zu lines): '%s'",
		     line, col, lines, msg);
}

static bool name_ok(const char *s, bool type)
{
	if (!s || !s[0])
		return false;
	if (type ? !(s[0] >= 'A' && s[0] <= 'Z')
		 : !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

static void walk(const struct gfs_schema *s)
{
	char tab[512];

	for (size_t i = 0; i < s->n_types; i++) {
		const struct gfs_typedef *t = &s->types[i];

		if (!name_ok(t->name, true))
			FAIL("type name '%s' not of the grammar", t->name);
		if (gfs_schema_find(s, t->name) != t)
			FAIL("type '%s' not found by name", t->name);
		gfs_typedef_table(t, tab, sizeof tab);
		if (t->is_edge &&
		    (t->from_idx >= s->n_types || t->to_idx >= s->n_types ||
		     s->types[t->from_idx].is_edge ||
		     s->types[t->to_idx].is_edge ||
		     strcmp(s->types[t->from_idx].name, t->from) ||
		     strcmp(s->types[t->to_idx].name, t->to)))
			FAIL("edge '%s' with endpoints that are not nodes",
			     t->name);
		for (size_t k = 0; k < t->n_key; k++)
			if (t->key[k] >= t->n_props)
				FAIL("key of '%s' names no property", t->name);
		for (size_t p = 0; p < t->n_props; p++) {
			if (!name_ok(t->props[p].name, false))
				FAIL("property name '%s' of '%s'",
				     t->props[p].name, t->name);
			if (gfs_typedef_prop(t, t->props[p].name) != (int)p)
				FAIL("property '%s' of '%s' twice",
				     t->props[p].name, t->name);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gfs_schema *s = NULL, *s2 = NULL;
	struct gfs_diag d = { { 0 } };
	int rc = gfs_schema_check_text((const char *)data, size, "fuzz.pg", &d);

	if (rc && rc != GFS_ESCHEMA)
		FAIL("check_text: rc %d", rc);
	if (rc && size <= GFS_SCHEMA_MAX_TEXT)
		check_message(d.msg, data, size);
	rc = gfs_schema_parse((const char *)data, size, "fuzz.pg", &s, &d);

	if (rc == -ENOMEM)
		return 0;
	if (rc) {
		if (rc != GFS_ESCHEMA || s)
			FAIL("rc %d (not GFS_ESCHEMA) or a schema on failure", rc);
		check_message(d.msg, data, size);
		return 0;
	}
	walk(s);
	if (gfs_schema_parse((const char *)data, size, "fuzz.pg", &s2, &d) ||
	    strcmp(s->id, s2->id) || s->n_types != s2->n_types)
		FAIL("a second parse of the same text differs");
	gfs_schema_free(s2);
	gfs_schema_free(s);
	return 0;
}
