/*
 * Fuzz target: MessagePack records (host/record.c, and the store's
 * validation against a catalog dataset in host/store.c). The first byte
 * picks a dataset of the repo's catalog; the rest is the record's bytes, as
 * a plugin, a script or (later) federation hands them in.
 */
#include <stdint.h>
#include <stdlib.h>

#include "catalog.h"
#include "fuzzkit.h"
#include "record.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	if (size < 1)
		return 0;
	const struct catalog *cat = fuzz_catalog();
	const struct cat_dataset *ds = &cat->datasets[data[0] % cat->n_datasets];
	const uint8_t *rec = data + 1;
	size_t len = size - 1;
	char err[1024];
	linli_record *r = NULL;
	if (record_from_bytes(rec, len, &r, err, sizeof err) == 0) {
		/* What the kernel accepted it packs back, and that it accepts again. */
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		linli_record *again = NULL;
		if (record_pack(r, &pk) != 0 ||
		    record_from_bytes(sb.data, sb.size, &again, err, sizeof err) != 0)
			abort();
		record_free(again);
		msgpack_sbuffer_destroy(&sb);
		char json[4096];
		size_t jl;
		record_to_json(r, json, sizeof json, &jl);
		record_free(r);
	}
	struct store *s = fuzz_store();
	char id[STORE_ID_MAX + 1];
	store_put(s, ds->name, "hefei/baohe/binhu/yuelan", "f1", rec, len, id, NULL, err,
		  sizeof err);
	store_batch_end(s);
	return 0;
}
