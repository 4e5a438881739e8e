/*
 * Unit tests of host/plugin.c's file checks: plug_read_meta finds the
 * metadata block of a real test plugin, and refuses — without reading out of
 * bounds, under ASan — every truncation of the file, corrupted ELF headers
 * and section tables, and random byte flips; plug_check_meta refuses bad
 * names, versions, families, descriptions and lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli/error.h"
#include "plugin.h"

struct file {
	unsigned char *b;
	size_t n;
};

static struct file load(const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", TP_DIR, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s (build the test plugins first)", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	struct file r = {malloc((size_t)n), (size_t)n};
	assert_int_equal(fread(r.b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return r;
}

static int meta_of(const struct file *f, char *err)
{
	struct linli_plugin_meta m;
	err[0] = '\0';
	return plug_read_meta(f->b, f->n, &m, err, 256);
}

/* The section header of .linli_plugin inside the file. */
static ElfW(Shdr) *meta_shdr(struct file *f)
{
	ElfW(Ehdr) *eh = (ElfW(Ehdr) *)f->b;
	ElfW(Shdr) *sh = (ElfW(Shdr) *)(f->b + eh->e_shoff);
	const char *names = (const char *)f->b + sh[eh->e_shstrndx].sh_offset;
	for (int i = 0; i < eh->e_shnum; i++)
		if (strcmp(names + sh[i].sh_name, LINLI_PLUGIN_SECTION) == 0)
			return &sh[i];
	fail_msg("no section");
	return NULL;
}

static void test_reads_good(void **state)
{
	(void)state;
	struct file f = load("tp_good.so");
	struct linli_plugin_meta m;
	char err[256];
	assert_int_equal(plug_read_meta(f.b, f.n, &m, err, sizeof err), 0);
	assert_string_equal(m.name, "good");
	assert_string_equal(m.version, "1.0.0");
	assert_string_equal(m.family, "custom");
	assert_string_equal(m.capabilities[1], "store.read:residents");
	assert_int_equal(m.size, LINLI_META_SIZE_1_0);
	assert_int_equal(m.sdk_major, LINLI_SDK_MAJOR);
	assert_int_equal(plug_check_meta(&m, err, sizeof err), 0);
	free(f.b);
}

static void test_versions(void **state)
{
	(void)state;
	char err[256];
	struct file f = load("tp_major.so");
	assert_int_equal(meta_of(&f, err), LINLI_EVERSION);
	char want[64];
	snprintf(want, sizeof want, "built for SDK 2.%d", LINLI_SDK_MINOR);
	assert_non_null(strstr(err, want));
	free(f.b);
	f = load("tp_minor.so");
	assert_int_equal(meta_of(&f, err), LINLI_EVERSION);
	assert_non_null(strstr(err, "newer than this linlid's SDK"));
	free(f.b);
	f = load("tp_size.so");
	assert_int_equal(meta_of(&f, err), LINLI_EVERSION);
	assert_non_null(strstr(err, "descriptor size 1234"));
	free(f.b);
	f = load("tp_nodesc.so");
	assert_int_equal(meta_of(&f, err), LINLI_EINVAL);
	assert_non_null(strstr(err, "no plugin descriptor"));
	free(f.b);
}

static void test_truncations(void **state)
{
	(void)state;
	struct file f = load("tp_good.so");
	char err[256];
	/* Every prefix is refused; an exact-size copy keeps ASan watching the end. */
	for (size_t n = 0; n < f.n; n++) {
		unsigned char *b = malloc(n ? n : 1);
		memcpy(b, f.b, n);
		struct file t = {b, n};
		int rc = meta_of(&t, err);
		if (rc == 0)
			fail_msg("a %zu-byte prefix of %zu was accepted", n, f.n);
		free(b);
	}
	free(f.b);
}

static void test_corrupt_headers(void **state)
{
	(void)state;
	char err[256];
	struct file f = load("tp_good.so");
	unsigned char *orig = malloc(f.n);
	memcpy(orig, f.b, f.n);
	ElfW(Ehdr) *eh = (ElfW(Ehdr) *)f.b;
#define RESET() memcpy(f.b, orig, f.n)

	eh->e_ident[EI_CLASS] = ELFCLASS32;
	assert_int_equal(meta_of(&f, err), LINLI_EINVAL);
	assert_non_null(strstr(err, "word size"));
	RESET();
	eh->e_type = ET_EXEC;
	assert_int_equal(meta_of(&f, err), LINLI_EINVAL);
	assert_non_null(strstr(err, "not a shared object"));
	RESET();
	eh->e_machine = EM_S390;
	assert_int_equal(meta_of(&f, err), LINLI_EINVAL);
	assert_non_null(strstr(err, "another machine"));
	RESET();
	eh->e_shoff = 0;
	assert_int_equal(meta_of(&f, err), LINLI_ECORRUPT);
	RESET();
	eh->e_shoff = (ElfW(Off))f.n - 8;
	assert_int_equal(meta_of(&f, err), LINLI_ECORRUPT);
	RESET();
	eh->e_shoff = UINT64_MAX - 4;
	assert_int_equal(meta_of(&f, err), LINLI_ECORRUPT);
	RESET();
	eh->e_shnum = 60000;
	assert_int_equal(meta_of(&f, err), LINLI_ECORRUPT);
	assert_non_null(strstr(err, "outside the file"));
	RESET();
	eh->e_shstrndx = eh->e_shnum;
	assert_int_equal(meta_of(&f, err), LINLI_ECORRUPT);
	RESET();
	eh->e_shentsize = 12;
	assert_int_equal(meta_of(&f, err), LINLI_ECORRUPT);
	RESET();

	ElfW(Shdr) *sh = meta_shdr(&f);
	sh->sh_offset = f.n - 16;
	assert_int_equal(meta_of(&f, err), LINLI_ECORRUPT);
	assert_non_null(strstr(err, "outside the file"));
	RESET();
	sh = meta_shdr(&f);
	sh->sh_size = UINT64_MAX;
	assert_int_equal(meta_of(&f, err), LINLI_ECORRUPT);
	RESET();
	sh = meta_shdr(&f);
	sh->sh_size = 8;
	assert_int_equal(meta_of(&f, err), LINLI_ECORRUPT);
	assert_non_null(strstr(err, "too small"));
	RESET();
	sh = meta_shdr(&f);
	sh->sh_type = SHT_NOBITS;
	assert_int_equal(meta_of(&f, err), LINLI_ECORRUPT);
	RESET();
	sh = meta_shdr(&f);
	sh->sh_size = 100; /* header fine, block cut short */
	assert_int_equal(meta_of(&f, err), LINLI_ECORRUPT);
	assert_non_null(strstr(err, "section holds 100"));
	RESET();
	sh = meta_shdr(&f);
	sh->sh_name = 0xFFFFFFF0u;
	assert_int_equal(meta_of(&f, err), LINLI_EINVAL);
	assert_non_null(strstr(err, "no plugin descriptor"));
	RESET();
	sh = meta_shdr(&f);
	f.b[sh->sh_offset] = 'X'; /* magic */
	assert_int_equal(meta_of(&f, err), LINLI_ECORRUPT);
	assert_non_null(strstr(err, "magic"));
	RESET();
	assert_int_equal(meta_of(&f, err), 0);
#undef RESET
	free(orig);
	free(f.b);
}

/* Random flips in the ELF header, the section table and the block: never a crash. */
static void test_flips(void **state)
{
	(void)state;
	struct file f = load("tp_good.so");
	unsigned char *orig = malloc(f.n);
	memcpy(orig, f.b, f.n);
	ElfW(Ehdr) *eh = (ElfW(Ehdr) *)orig;
	size_t shoff = eh->e_shoff, shlen = (size_t)eh->e_shnum * sizeof(ElfW(Shdr));
	size_t moff = meta_shdr(&f)->sh_offset;
	srand(12345);
	char err[256];
	int refused = 0;
	for (int i = 0; i < 20000; i++) {
		memcpy(f.b, orig, f.n);
		for (int k = 0; k < 1 + rand() % 4; k++) {
			size_t at;
			switch (rand() % 3) {
			case 0:
				at = (size_t)rand() % sizeof(ElfW(Ehdr));
				break;
			case 1:
				at = shoff + (size_t)rand() % shlen;
				break;
			default:
				at = moff + (size_t)rand() % 64;
			}
			f.b[at] ^= (unsigned char)(1u << (rand() % 8));
		}
		struct linli_plugin_meta m;
		int rc = plug_read_meta(f.b, f.n, &m, err, sizeof err);
		if (rc)
			refused++;
		else
			plug_check_meta(&m, err, sizeof err); /* must not overrun either */
	}
	assert_true(refused > 1000);
	free(orig);
	free(f.b);
}

static struct linli_plugin_meta good_meta(void)
{
	struct linli_plugin_meta m = {.magic = LINLI_META_MAGIC,
				      .size = LINLI_META_SIZE_1_0,
				      .sdk_major = LINLI_SDK_MAJOR,
				      .sdk_minor = LINLI_SDK_MINOR,
				      .name = "grid",
				      .version = "0.1.0",
				      .family = "governance",
				      .description = "网格化管理",
				      .requires = {"alarms"},
				      .capabilities = {"store.read:grids"}};
	return m;
}

static void expect_bad(const struct linli_plugin_meta *m, const char *needle)
{
	char err[256] = "";
	assert_int_equal(plug_check_meta(m, err, sizeof err), LINLI_EINVAL);
	if (!strstr(err, needle))
		fail_msg("'%s' lacks '%s'", err, needle);
}

static void test_check_meta(void **state)
{
	(void)state;
	char err[256];
	struct linli_plugin_meta m = good_meta();
	assert_int_equal(plug_check_meta(&m, err, sizeof err), 0);
	strcpy(m.name, "Grid");
	expect_bad(&m, "bad name 'Grid'");
	m = good_meta();
	strcpy(m.name, "9grid");
	expect_bad(&m, "bad name");
	m = good_meta();
	memset(m.name, 'a', sizeof m.name); /* no NUL */
	expect_bad(&m, "bad name");
	m = good_meta();
	m.name[0] = '\0';
	expect_bad(&m, "bad name");
	m = good_meta();
	strcpy(m.version, "1.0 beta");
	expect_bad(&m, "bad version");
	m = good_meta();
	m.version[0] = '\0';
	expect_bad(&m, "bad version");
	m = good_meta();
	strcpy(m.family, "gov-services");
	expect_bad(&m, "bad family 'gov-services'");
	m = good_meta();
	strcpy(m.description, "\xFF\xFE");
	expect_bad(&m, "bad description");
	m = good_meta();
	memset(m.description, 'x', sizeof m.description);
	expect_bad(&m, "bad description");
	m = good_meta();
	strcpy(m.requires[2], "late");
	expect_bad(&m, "requires: entry 3 follows an empty one");
	m = good_meta();
	strcpy(m.requires[0], "Bad");
	expect_bad(&m, "requires: entry 1");
	m = good_meta();
	strcpy(m.capabilities[0], "store read");
	expect_bad(&m, "capabilities: entry 1");
	m = good_meta();
	strcpy(m.capabilities[5], "x");
	expect_bad(&m, "capabilities: entry 6 follows");
	/* Well formed for the permission model, or refused with the reason. */
	m = good_meta();
	strcpy(m.capabilities[1], "store.raed:residents");
	expect_bad(&m, "capabilities: entry 2: unknown capability 'store.raed:residents'");
	m = good_meta();
	strcpy(m.capabilities[0], "bus.publish:a/#/b");
	expect_bad(&m, "capabilities: entry 1: capability 'bus.publish:a/#/b': 'a/#/b' is not a "
		       "topic filter");
	for (int i = 0; i < 6; i++) {
		const char *fams[] = {"governance", "gov_services", "public_services",
				      "safety", "driver", "custom"};
		m = good_meta();
		strcpy(m.family, fams[i]);
		assert_int_equal(plug_check_meta(&m, err, sizeof err), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_good),	cmocka_unit_test(test_versions),
		cmocka_unit_test(test_truncations),	cmocka_unit_test(test_corrupt_headers),
		cmocka_unit_test(test_flips),		cmocka_unit_test(test_check_meta),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
