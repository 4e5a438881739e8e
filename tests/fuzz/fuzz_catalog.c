/*
 * Fuzz target: catalog files (host/catalog.c). The repo's catalog is copied to
 * a scratch directory once; each input replaces one of its files, so that the
 * cross-checks (refs, capabilities, requires) run against a real catalog. The
 * first byte picks the file: 0 a dataset, 1 a device class, 2 plugins.cfg. A
 * dataset or class file is named after the first `name = "..."` in the input,
 * as the loader requires, or "fz".
 */
#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "fuzzkit.h"

static char orig_plugins[1 << 16];
static size_t orig_plugins_len;

static void copy_dir(const char *sub)
{
	char src[4096];
	snprintf(src, sizeof src, "%s/catalog/%s", SRCDIR, sub);
	DIR *d = opendir(src);
	if (!d)
		abort();
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[4352], name[4352], buf[1 << 16];
		snprintf(path, sizeof path, "%s/%s", src, e->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			abort();
		size_t n = fread(buf, 1, sizeof buf, f);
		fclose(f);
		snprintf(name, sizeof name, "catalog/%s/%s", sub, e->d_name);
		fuzz_write(name, buf, n);
	}
	closedir(d);
}

static void setup(void)
{
	static int done;
	if (done++)
		return;
	fuzz_quiet();
	copy_dir("datasets");
	copy_dir("devices");
	FILE *f = fopen(SRCDIR "/catalog/plugins.cfg", "rb");
	if (!f)
		abort();
	orig_plugins_len = fread(orig_plugins, 1, sizeof orig_plugins, f);
	fclose(f);
	fuzz_write("catalog/plugins.cfg", orig_plugins, orig_plugins_len);
}

/* The first `name = "x"` of text, if x is a plain name; else "fz". */
static void name_of(const char *text, char *out, size_t n)
{
	snprintf(out, n, "fz");
	const char *p = strstr(text, "name");
	while (p && (p = strchr(p, '"'))) {
		const char *q = ++p;
		while (islower((unsigned char)*q) || isdigit((unsigned char)*q) || *q == '_')
			q++;
		if (*q == '"' && q > p && q - p < 64)
			snprintf(out, n, "%.*s", (int)(q - p), p);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size < 1)
		return 0;
	int which = data[0] % 3;
	char *text = fuzz_strndup(data + 1, size - 1);
	char name[128], file[256], saved[1 << 16];
	size_t saved_len = 0;
	bool existed = false;
	if (which == 2)
		snprintf(file, sizeof file, "catalog/plugins.cfg");
	else {
		name_of(text, name, sizeof name);
		snprintf(file, sizeof file, "catalog/%s/%s.cfg", which ? "devices" : "datasets",
			 name);
		char path[4352];
		snprintf(path, sizeof path, "%s/%s", fuzz_dir(), file);
		FILE *f = fopen(path, "rb");
		if (f) {
			existed = true;
			saved_len = fread(saved, 1, sizeof saved, f);
			fclose(f);
		}
	}
	fuzz_write(file, data + 1, size - 1);
	char dir[4352], err[1024];
	snprintf(dir, sizeof dir, "%s/catalog", fuzz_dir());
	struct catalog *c = NULL;
	if (catalog_load(dir, &c, err, sizeof err) == 0)
		catalog_free(c);
	if (which == 2)
		fuzz_write(file, orig_plugins, orig_plugins_len);
	else if (existed)
		fuzz_write(file, saved, saved_len);
	else
		fuzz_remove(file);
	free(text);
	return 0;
}
