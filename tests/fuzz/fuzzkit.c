/* fuzzkit — see fuzzkit.h. */
#include "fuzzkit.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "log.h"
#include "store.h"
#include "util.h"

static char dir[4096];
static struct catalog *cat;
static struct store *st;

void fuzz_quiet(void)
{
	if (!getenv("LINLI_FUZZ_LOG"))
		log_set_level((enum log_level) - 1);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	if (st)
		store_close(st);
	st = NULL;
	catalog_free(cat);
	cat = NULL;
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_dir(void)
{
	if (!dir[0]) {
		const char *t = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/linli-fuzz-XXXXXX", t && *t ? t : "/tmp");
		if (!mkdtemp(dir)) {
			perror("fuzzkit: mkdtemp");
			abort();
		}
		atexit(cleanup);
	}
	return dir;
}

static void path_of(const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", fuzz_dir(), name);
}

void fuzz_write(const char *name, const void *data, size_t len)
{
	char path[4608];
	path_of(name, path, sizeof path);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	mkdirs(path, 0700);
	*slash = '/';
	FILE *f = fopen(path, "wb");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

void fuzz_remove(const char *name)
{
	char path[4608];
	path_of(name, path, sizeof path);
	if (remove(path) != 0 && errno != ENOENT) {
		perror(path);
		abort();
	}
}

const struct catalog *fuzz_catalog(void)
{
	if (!cat) {
		char err[512];
		if (catalog_load(SRCDIR "/catalog", &cat, err, sizeof err) != 0) {
			fprintf(stderr, "fuzzkit: %s\n", err);
			abort();
		}
	}
	return cat;
}

struct store *fuzz_store(void)
{
	if (!st) {
		char path[4608], err[512];
		path_of("store", path, sizeof path);
		mkdirs(path, 0700);
		struct store_opts o = {.dir = path, .map_size = 64u << 20, .sync = false};
		if (store_open(&o, fuzz_catalog(), &st, err, sizeof err) != 0) {
			fprintf(stderr, "fuzzkit: %s\n", err);
			abort();
		}
	}
	return st;
}

char *fuzz_strndup(const uint8_t *data, size_t len)
{
	char *s = malloc(len + 1);
	if (!s)
		abort();
	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}
