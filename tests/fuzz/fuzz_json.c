/*
 * Fuzz target: JSON to record (host/json.c, host/record.c), as the console's
 * `data put` and the HTTP API's POST bodies take it: parsed, packed, checked
 * against the catalog's "applications" dataset by the store, and turned back
 * into JSON as replies are.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzzkit.h"
#include "json.h"
#include "mp.h"
#include "record.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	const char *text = (const char *)data;
	char err[1024];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (json_parse_to_mp(text, size, &pk, err, sizeof err) == 0) {
		/* What the kernel packs must always pass its own check. */
		if (mp_check(sb.data, sb.size, MP_MAX_DEPTH, MP_STR_KEYS, err, sizeof err) != 0)
			abort();
		msgpack_unpacked up;
		msgpack_unpacked_init(&up);
		if (msgpack_unpack_next(&up, sb.data, sb.size, NULL) != MSGPACK_UNPACK_SUCCESS)
			abort();
		json_t *j = json_from_mp(&up.data);
		char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		free(s);
		json_decref(j);
		msgpack_unpacked_destroy(&up);
		struct store *st = fuzz_store();
		char id[STORE_ID_MAX + 1];
		store_put(st, "applications", "hefei/baohe/binhu/yuelan", "f1", sb.data, sb.size,
			  id, NULL, err, sizeof err);
		store_batch_end(st);
	}
	msgpack_sbuffer_destroy(&sb);
	linli_record *r = NULL;
	if (record_from_json(text, size, &r, err, sizeof err) == 0) {
		char out[4096];
		size_t len;
		record_to_json(r, out, sizeof out, &len);
		record_free(r);
	}
	return 0;
}
