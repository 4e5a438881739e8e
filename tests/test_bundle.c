/*
 * Unit tests of host/bundle.c: the manifest (every refusal names its line), the signify-style
 * key and signature texts, a bundle read from a tar in memory and verified (unsigned, unknown
 * key, a bad signature, a changed byte), and the order of versions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>
#include <sodium.h>

#include "bundle.h"
#include "linli/error.h"

#define HASH0 "0000000000000000000000000000000000000000000000000000000000000000"
#define HEAD  "linli-bundle 1\nname hello\nversion 1.0.0\nvendor Acme 智慧社区\nsdk 1.1\n"

static int parse(const char *text, char *err)
{
	struct bundle_manifest m;
	return bundle_manifest_parse(text, strlen(text), &m, err, 512);
}

static void refused(const char *text, int code, const char *needle)
{
	char err[512] = "";
	int rc = parse(text, err);
	if (rc != code || !strstr(err, needle))
		fail_msg("%d '%s' (want %d with '%s') for:\n%s", rc, err, code, needle, text);
}

static void test_manifest(void **state)
{
	(void)state;
	struct bundle_manifest m;
	char err[512];
	const char *ok = HEAD "capability bus.publish:hello/#\nfile hello.so 12 " HASH0 "\n";
	assert_int_equal(bundle_manifest_parse(ok, strlen(ok), &m, err, sizeof err), 0);
	assert_string_equal(m.name, "hello");
	assert_string_equal(m.vendor, "Acme 智慧社区");
	assert_int_equal(m.sdk_minor, 1);
	assert_int_equal(m.n_caps, 1);
	assert_int_equal(m.n_files, 1);
	assert_int_equal(m.plugin, 0);
	assert_int_equal(m.files[0].size, 12);
	size_t len;
	char *again = bundle_manifest_format(&m, &len);
	assert_int_equal(len, strlen(ok));
	assert_memory_equal(again, ok, len);
	free(again);

	refused("linli-bundle 2\n", LINLI_EVERSION, "line 1: must be 'linli-bundle 1'");
	refused(HEAD "file hello.so 12 " HASH0, LINLI_EINVAL, "does not end with a newline");
	refused(HEAD "fragment datasets/x.cfg\n", LINLI_ENOTSUP,
		"line 6: 'fragment': not supported; a bundle brings datasets");
	/* a dataset: a listed NAME.cfg file, named once */
	const char *ds = HEAD "file hello.so 12 " HASH0 "\nfile visits.cfg 12 " HASH0
			      "\ndataset visits.cfg\n";
	assert_int_equal(bundle_manifest_parse(ds, strlen(ds), &m, err, sizeof err), 0);
	assert_false(m.files[0].dataset);
	assert_true(m.files[1].dataset);
	again = bundle_manifest_format(&m, &len);
	assert_int_equal(len, strlen(ds));
	assert_memory_equal(again, ds, len);
	free(again);
	refused(HEAD "file hello.so 12 " HASH0 "\ndataset visits.cfg\n", LINLI_EINVAL,
		"line 7: dataset visits.cfg: no 'file' line lists it");
	refused(HEAD "dataset visits.txt\n", LINLI_EINVAL,
		"line 6: dataset: 'visits.txt' is not a NAME.cfg file");
	refused(HEAD "file hello.so 12 " HASH0 "\nfile v.cfg 12 " HASH0
		     "\ndataset v.cfg\ndataset v.cfg\n",
		LINLI_EINVAL, "line 9: dataset v.cfg named twice");
	/* a device class: a listed CLASS.cfg file, after the datasets when formatted */
	const char *dv = HEAD "file hello.so 12 " HASH0 "\nfile meter.cfg 12 " HASH0
			      "\nfile visits.cfg 12 " HASH0
			      "\ndataset visits.cfg\ndevice meter.cfg\n";
	assert_int_equal(bundle_manifest_parse(dv, strlen(dv), &m, err, sizeof err), 0);
	assert_true(m.files[1].device && !m.files[1].dataset);
	assert_true(m.files[2].dataset && !m.files[2].device);
	again = bundle_manifest_format(&m, &len);
	assert_int_equal(len, strlen(dv));
	assert_memory_equal(again, dv, len);
	free(again);
	refused(HEAD "file hello.so 12 " HASH0 "\nfile v.cfg 12 " HASH0
		     "\ndataset v.cfg\ndevice v.cfg\n",
		LINLI_EINVAL, "line 9: device v.cfg named twice");
	refused(HEAD "device meter.txt\n", LINLI_EINVAL,
		"line 6: device: 'meter.txt' is not a NAME.cfg file");
	refused(HEAD "file hello.so 12 " HASH0 "\ndevice m.cfg\n", LINLI_EINVAL,
		"line 7: device m.cfg: no 'file' line lists it");
	refused(HEAD "colour blue\n", LINLI_EINVAL, "line 6: unknown key 'colour'");
	refused(HEAD "name other\n", LINLI_EINVAL, "line 6: a second name");
	refused("linli-bundle 1\nname Hello\n", LINLI_EINVAL, "line 2: name must match");
	refused("linli-bundle 1\nversion ../../etc\n", LINLI_EINVAL, "line 2: version must be");
	refused("linli-bundle 1\nversion 1/2\n", LINLI_EINVAL, "line 2: version must be");
	refused("linli-bundle 1\nvendor a\x01b\n", LINLI_EINVAL, "line 2: vendor must be UTF-8");
	refused("linli-bundle 1\nvendor \xff\n", LINLI_EINVAL, "line 2: vendor must be UTF-8");
	refused("linli-bundle 1\nsdk 1\n", LINLI_EINVAL, "line 2: sdk must be MAJOR.MINOR");
	refused("linli-bundle 1\nsdk 0.-1\n", LINLI_EINVAL, "line 2: sdk must be MAJOR.MINOR");
	refused("linli-bundle 1\nsdk 1. 2\n", LINLI_EINVAL, "line 2: sdk must be MAJOR.MINOR");
	refused(HEAD "file ../x.so 1 " HASH0 "\n", LINLI_EINVAL, "line 6: must be 'file NAME");
	refused(HEAD "file installed 1 " HASH0 "\n", LINLI_EINVAL, "line 6: must be 'file NAME");
	refused(HEAD "file x.so 1 " HASH0 "0\n", LINLI_EINVAL, "line 6: must be 'file NAME");
	refused(HEAD "file x.so 1x " HASH0 "\n", LINLI_EINVAL, "line 6: file x.so: a bad size");
	refused(HEAD "file x.so 1 " HASH0 "\nfile y.lua 1 " HASH0 "\n", LINLI_EINVAL,
		"line 7: a second plugin file (y.lua after x.so)");
	refused(HEAD "file x.so 1 " HASH0 "\nfile x.so 1 " HASH0 "\n", LINLI_EINVAL,
		"line 7: file x.so listed twice");
	refused(HEAD "file x.txt 1 " HASH0 "\n", LINLI_EINVAL, "no plugin file");
	refused("linli-bundle 1\nname x\n", LINLI_EINVAL, "no 'version' line");
	refused(HEAD "capability a b\n", LINLI_EINVAL, "line 6: a capability is printable ASCII");
	refused(HEAD "\n", LINLI_EINVAL, "line 6: empty");
	char nul[] = HEAD "name\0x\n";
	struct bundle_manifest mm;
	assert_int_equal(bundle_manifest_parse(nul, sizeof nul - 1, &mm, err, sizeof err),
			 LINLI_EINVAL);
	assert_non_null(strstr(err, "line 6: a NUL"));
}

static void test_versions(void **state)
{
	(void)state;
	assert_true(bundle_version_cmp("1.10.0", "1.9.2") > 0);
	assert_true(bundle_version_cmp("1.0", "1.0.1") < 0);
	assert_true(bundle_version_cmp("2.0.0", "2.0.0") == 0);
	assert_true(bundle_version_cmp("1.02", "1.2") == 0);
	assert_true(bundle_version_cmp("1.0.0", "10.0.0") < 0);
	assert_true(bundle_version_cmp("1.0.0-rc1", "1.0.0") > 0);
}

/* A tar of the given entries (name, bytes, len; NULL name ends). */
static unsigned char *tar(size_t *len, const char *const *names, const unsigned char *const *data,
			  const size_t *lens)
{
	static unsigned char buf[1 << 16];
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	size_t used = 0;
	assert_int_equal(archive_write_open_memory(a, buf, sizeof buf, &used), ARCHIVE_OK);
	for (int i = 0; names[i]; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, names[i]);
		archive_entry_set_size(e, (la_int64_t)lens[i]);
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		assert_int_equal(archive_write_data(a, data[i], lens[i]), (la_ssize_t)lens[i]);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	*len = used;
	return buf;
}

static void test_sign_and_verify(void **state)
{
	(void)state;
	assert_int_equal(bundle_crypto_init(), 0);
	uint8_t pk[32], sk[64], pk2[32], sk2[64];
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	char *pub = bundle_format_pub("linli public key acme", pk);
	char *sec = bundle_format_sec("linli secret key acme", sk);
	struct bundle_key key = {.name = "acme"};
	uint8_t id[8], sk_back[64];
	char err[512];
	assert_int_equal(
	    bundle_parse_pub(pub, strlen(pub), "acme.pub", key.id, key.pk, err, sizeof err), 0);
	assert_memory_equal(key.pk, pk, 32);
	assert_int_equal(
	    bundle_parse_sec(sec, strlen(sec), "acme.sec", id, sk_back, err, sizeof err), 0);
	assert_memory_equal(sk_back, sk, 64);
	assert_memory_equal(id, key.id, 8);
	/* a secret key is no public key, and a key id that is not its key's is refused */
	assert_int_equal(bundle_parse_pub(sec, strlen(sec), "acme.sec", id, pk2, err, sizeof err),
			 LINLI_EINVAL);
	assert_non_null(strstr(err, "acme.sec: its second line is not the base64 of a public key"));
	assert_int_equal(bundle_parse_pub("hello\n", 6, "x.pub", id, pk2, err, sizeof err),
			 LINLI_EINVAL);
	assert_non_null(strstr(err, "x.pub: not a public key file"));

	const unsigned char plugin[] = "\x7f"
				       "ELF pretend";
	struct bundle_manifest m = {
	    .name = "hello", .version = "1.0.0", .vendor = "Acme", .sdk_major = 1, .n_files = 1};
	snprintf(m.files[0].name, sizeof m.files[0].name, "hello.so");
	m.files[0].size = sizeof plugin - 1;
	bundle_hash(plugin, sizeof plugin - 1, m.files[0].hash);
	size_t mlen;
	char *mtext = bundle_manifest_format(&m, &mlen);
	uint8_t sig[64];
	crypto_sign_detached(sig, NULL, (unsigned char *)mtext, mlen, sk);
	char *sigtext = bundle_format_sig("signed", key.id, sig);
	crypto_sign_detached(sig, NULL, (unsigned char *)mtext, mlen, sk2);
	uint8_t id2[8];
	bundle_key_id(pk2, id2);
	char *sig2 = bundle_format_sig("signed by another", id2, sig);
	char *forged = bundle_format_sig("signed by another, claiming acme's id", key.id, sig);

	const char *names[] = {"manifest", "manifest.sig", "hello.so", NULL};
	const unsigned char *data[] = {(unsigned char *)mtext, (unsigned char *)sigtext, plugin};
	size_t lens[] = {mlen, strlen(sigtext), sizeof plugin - 1};
	struct bundle b;
	const struct bundle_key *signer;
	size_t len;
	unsigned char *t = tar(&len, names, data, lens);
	assert_int_equal(bundle_read_mem(t, len, &b, err, sizeof err), 0);
	assert_int_equal(bundle_verify(&b, &key, 1, false, &signer, err, sizeof err), 0);
	assert_ptr_equal(signer, &key);
	assert_non_null(bundle_plugin(&b));
	/* a removed key: nothing to verify with */
	assert_int_equal(bundle_verify(&b, &key, 0, false, &signer, err, sizeof err), LINLI_EPERM);
	assert_non_null(strstr(err, "which this node does not trust"));
	/* a changed byte */
	b.files[0].data[3] ^= 1;
	assert_int_equal(bundle_verify(&b, &key, 1, false, &signer, err, sizeof err),
			 LINLI_ECORRUPT);
	assert_non_null(strstr(err, "hello.so differs from its manifest"));
	bundle_free(&b);

	/* another key's signature under acme's id */
	data[1] = (unsigned char *)forged;
	lens[1] = strlen(forged);
	t = tar(&len, names, data, lens);
	assert_int_equal(bundle_read_mem(t, len, &b, err, sizeof err), 0);
	assert_int_equal(bundle_verify(&b, &key, 1, false, &signer, err, sizeof err),
			 LINLI_ECORRUPT);
	assert_non_null(strstr(err, "its signature does not verify with the trusted key 'acme'"));
	bundle_free(&b);
	/* an unknown key */
	data[1] = (unsigned char *)sig2;
	lens[1] = strlen(sig2);
	t = tar(&len, names, data, lens);
	assert_int_equal(bundle_read_mem(t, len, &b, err, sizeof err), 0);
	assert_int_equal(bundle_verify(&b, &key, 1, false, &signer, err, sizeof err), LINLI_EPERM);
	assert_int_equal(bundle_verify(&b, &key, 1, true, &signer, err, sizeof err), 0);
	assert_null(signer);
	bundle_free(&b);
	/* unsigned */
	const char *names2[] = {"manifest", "hello.so", NULL};
	const unsigned char *data2[] = {(unsigned char *)mtext, plugin};
	size_t lens2[] = {mlen, sizeof plugin - 1};
	t = tar(&len, names2, data2, lens2);
	assert_int_equal(bundle_read_mem(t, len, &b, err, sizeof err), 0);
	assert_int_equal(bundle_verify(&b, &key, 1, false, &signer, err, sizeof err), LINLI_EPERM);
	assert_non_null(strstr(err, "is unsigned (no manifest.sig)"));
	bundle_free(&b);
	/* a file the manifest does not list, a path, not a tar */
	const char *names3[] = {"manifest", "hello.so", "extra.txt", NULL};
	const unsigned char *data3[] = {(unsigned char *)mtext, plugin, plugin};
	size_t lens3[] = {mlen, sizeof plugin - 1, 1};
	t = tar(&len, names3, data3, lens3);
	assert_int_equal(bundle_read_mem(t, len, &b, err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "extra.txt is not listed in its manifest"));
	const char *names4[] = {"manifest", "../hello.so", NULL};
	t = tar(&len, names4, data2, lens2);
	assert_int_equal(bundle_read_mem(t, len, &b, err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "not a plain file name"));
	assert_int_equal(bundle_read_mem("hello", 5, &b, err, sizeof err), LINLI_EINVAL);
	free(pub);
	free(sec);
	free(mtext);
	free(sigtext);
	free(sig2);
	free(forged);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_manifest),
	    cmocka_unit_test(test_versions),
	    cmocka_unit_test(test_sign_and_verify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
