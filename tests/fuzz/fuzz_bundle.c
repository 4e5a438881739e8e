/*
 * Fuzz target: what a node reads of a bundle from outside (host/bundle.c) — the bytes as a
 * manifest, as the signify-style key and signature texts, and as the tar archive of a whole
 * bundle. A manifest that parses is written again and must parse to the same thing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "fuzzkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	static int init;
	if (!init++)
		bundle_crypto_init();
	char err[512];
	struct bundle_manifest m, again;
	if (bundle_manifest_parse((const char *)data, size, &m, err, sizeof err) == 0) {
		size_t len = 0;
		char *text = bundle_manifest_format(&m, &len);
		if (!text || bundle_manifest_parse(text, len, &again, err, sizeof err) != 0 ||
		    memcmp(&m, &again, sizeof m) != 0)
			abort();
		free(text);
	}
	uint8_t id[BUNDLE_KEYID_LEN], pk[BUNDLE_PK_LEN], sig[BUNDLE_SIG_LEN];
	bundle_parse_pub((const char *)data, size, "fuzz", id, pk, err, sizeof err);
	bundle_parse_sig((const char *)data, size, "fuzz", id, sig, err, sizeof err);
	struct bundle b;
	if (bundle_read_mem(data, size, &b, err, sizeof err) == 0) {
		const struct bundle_key *signer;
		bundle_verify(&b, NULL, 0, true, &signer, err, sizeof err);
		bundle_free(&b);
	}
	return 0;
}
