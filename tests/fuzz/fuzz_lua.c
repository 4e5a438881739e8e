/*
 * Fuzz target: a Lua script's load and declaration check (host/script.c):
 * the sandbox runs the top-level chunk under small limits, then the `rule`
 * or `plugin` declaration it made is validated.
 */
#include <stdint.h>

#include "fuzzkit.h"
#include "script.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_quiet();
	if (size > 64 << 10)
		return 0;
	struct script_opts o = {
	    .kind = SCRIPT_ANY,
	    .scope = "hefei/baohe/binhu/yuelan",
	    .lim = {.memory = 2u << 20, .instructions = 200000, .time_ms = 100, .max_errors = 1},
	};
	struct script *s = NULL;
	char err[1024];
	if (script_load("fuzz.lua", (const char *)data, size, &o, &s, err, sizeof err) == 0)
		script_free(s);
	return 0;
}
