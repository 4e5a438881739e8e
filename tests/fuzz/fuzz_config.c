/* Fuzz target: linli.cfg text through the config parser and validator (host/config.c). */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"
#include "fuzzkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	char *text = fuzz_strndup(data, size);
	struct cfg c;
	char err[1024];
	if (cfg_load_string(&c, text, "fuzz.cfg", fuzz_dir(), err, sizeof err) == 0)
		cfg_free(&c);
	free(text);
	return 0;
}
