/* fuzz_records.c - libFuzzer: the manifest's record decoders (src/store.c:
 * graph versions, recovery sidecars, audit records, branches, the
 * table-version index) on arbitrary bytes.
 *
 * Input: one byte choosing the database, one byte giving the key's length
 * (at most what follows), the key, then the record's payload.  The payload
 * is sealed here (gfs_manifest_debug_decode) so the decoder behind the
 * checksum sees it as it would a stored record.  Checked: the result is 0,
 * GFS_ECORRUPT or GFS_EFORMAT (a sidecar that does not parse is refused
 * and kept, never fatal), and a decoded record's public JSON is one line
 * of valid JSON.  Aborts otherwise; ASan/UBSan catch the rest.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store_int.h"

#define FAIL(...)                                                             \
	do {                                                                  \
		fprintf(stderr, "fuzz_records: " __VA_ARGS__);                \
		fputc('\n', stderr);                                          \
		abort();                                                      \
	} while (0)

static const char *const dbs[] = { "sidecars", "versions", "audit",
				   "branches", "tver",     "next" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *db;
	size_t klen;
	char *json = NULL;
	json_t *v;
	int rc;

	if (size < 2)
		return 0;
	db = dbs[data[0] % (sizeof dbs / sizeof dbs[0])];
	klen = data[1] <= size - 2 ? data[1] : size - 2;
	rc = gfs_manifest_debug_decode(db, data + 2, klen, data + 2 + klen,
				       size - 2 - klen, &json);
	if (rc && rc != GFS_ECORRUPT && rc != GFS_EFORMAT && rc != -ENOMEM)
		FAIL("%s: rc %d (%s)", db, rc, gfs_strerror(rc));
	if (json) {
		if (strchr(json, '\n'))
			FAIL("%s: JSON of a record spans lines: %s", db, json);
		v = json_loads(json, 0, NULL);
		if (!v)
			FAIL("%s: public JSON does not parse: %s", db, json);
		json_decref(v);
	}
	free(json);
	return 0;
}
