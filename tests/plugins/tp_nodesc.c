/* A plain shared object without LINLI_PLUGIN: refused as "no plugin descriptor". */
#include <stdio.h>
#include <unistd.h>

__attribute__((constructor)) static void announce(void)
{
	static const char line[] = "CONSTRUCTOR RAN nodesc\n";
	ssize_t w = write(2, line, sizeof line - 1);
	(void)w;
}

__attribute__((visibility("default"))) int nodesc_answer(void) { return 42; }
