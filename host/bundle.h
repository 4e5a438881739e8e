/*
 * bundle — what a street installs: one plugin with a signed manifest.
 *
 * A bundle is a tar archive (read with libarchive) or, for development, a
 * plain directory, holding:
 *
 *   manifest      text, signed (below)
 *   manifest.sig  signify-style: Ed25519 over the manifest's exact bytes,
 *                 with the signing key's id (absent: the bundle is unsigned)
 *   NAME.so       the plugin (or NAME.lua), and any other file the manifest
 *                 lists with its size and hash
 *
 * The manifest, one "key value" a line, '\n' ends each, at most
 * BUNDLE_MANIFEST_MAX bytes:
 *
 *   linli-bundle 1                  first line, exactly
 *   name hello                      [a-z][a-z0-9_]*, the plugin's own name
 *   version 1.2.0                   printable ASCII, the plugin's own version
 *   vendor Example Vendor Ltd       UTF-8 text to the end of the line
 *   sdk 1.0                         the SDK it was built against
 *   capability bus.publish:hello/#  each capability the plugin declares (0 or more)
 *   file hello.so 16384 <hex>       NAME SIZE BLAKE2b-256; exactly one .so or .lua
 *   dataset visits.cfg              a listed file (NAME.cfg) that is a catalog fragment:
 *                                   one dataset in the syntax of catalog/datasets/NAME.cfg,
 *                                   named hello__visits on the node (catalog.h,
 *                                   catalog_with_datasets); 0 or more
 *   device meter.cfg                a listed file (CLASS.cfg) that is a device class in the
 *                                   syntax of catalog/devices/CLASS.cfg, named hello__meter
 *                                   on the node; 0 or more
 *
 * Other catalog fragments ("fragment", "catalog") are refused.
 *
 * Keys are Ed25519 (libsodium). A key id is the first 8 bytes of the BLAKE2b
 * hash of the public key. Key and signature files are signify-style: a line
 * "untrusted comment: ..." and one base64 line of "Ed" + key id + the key
 * (32 bytes public, 64 secret) or signature (64 bytes).
 *
 * Holds no state and needs neither the kernel nor its clock: the node
 * (plugin.c, trust.c) and the vendor's tool (linli-bundle) both use it.
 */
#ifndef LINLI_BUNDLE_H
#define LINLI_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linli/plugin.h"

#define BUNDLE_MAX	     (64u << 20) /* a whole bundle, bytes */
#define BUNDLE_MANIFEST_MAX  (64u << 10) /* its manifest */
#define BUNDLE_MAX_FILES     8		 /* files a manifest lists */
#define BUNDLE_FILE_NAME_MAX 100
#define BUNDLE_VENDOR_MAX    128
#define BUNDLE_KEYID_LEN     8
#define BUNDLE_KEYID_HEX     (2 * BUNDLE_KEYID_LEN + 1)
#define BUNDLE_PK_LEN	     32
#define BUNDLE_SK_LEN	     64
#define BUNDLE_SIG_LEN	     64
#define BUNDLE_HASH_LEN	     32
#define BUNDLE_KEY_NAME_MAX  32 /* a trusted key's name: [a-z0-9][a-z0-9_.-]*, 31 bytes */

struct bundle_file {
	char name[BUNDLE_FILE_NAME_MAX + 1];
	uint64_t size;
	uint8_t hash[BUNDLE_HASH_LEN];
	bool dataset; /* a `dataset` line names it: a catalog fragment */
	bool device;  /* a `device` line names it: a device-class fragment */
};

struct bundle_manifest {
	char name[LINLI_NAME_MAX];
	char version[LINLI_VERSION_MAX];
	char vendor[BUNDLE_VENDOR_MAX];
	unsigned sdk_major, sdk_minor;
	char caps[LINLI_MAX_CAPS][LINLI_CAP_MAX];
	int n_caps;
	struct bundle_file files[BUNDLE_MAX_FILES];
	int n_files;
	int plugin; /* index of the .so or .lua in files */
};

/* A key the node trusts (trust.c) or the tool signs with. */
struct bundle_key {
	char name[BUNDLE_KEY_NAME_MAX];
	uint8_t id[BUNDLE_KEYID_LEN];
	uint8_t pk[BUNDLE_PK_LEN];
};

/* What a bundle holds, read into memory. */
struct bundle_blob {
	char name[BUNDLE_FILE_NAME_MAX + 1];
	unsigned char *data;
	size_t len;
};
struct bundle {
	unsigned char *manifest, *sig; /* sig NULL: unsigned */
	size_t manifest_len, sig_len;
	struct bundle_blob files[BUNDLE_MAX_FILES];
	int n_files;
	struct bundle_manifest m; /* parsed by bundle_read_* */
};

/* sodium_init once; 0 or -1. */
int bundle_crypto_init(void);

void bundle_key_id(const uint8_t pk[BUNDLE_PK_LEN], uint8_t id[BUNDLE_KEYID_LEN]);
/* n bytes as lowercase hex into out (2n+1 bytes). */
void bundle_hex(const uint8_t *b, size_t n, char *out);
/* Is s a key name: [a-z0-9][a-z0-9_.-]*, at most BUNDLE_KEY_NAME_MAX-1 bytes? */
bool bundle_key_name_ok(const char *s);

/*
 * The signify-style texts. parse: 0 or LINLI_E* with err naming `what` (a
 * file name) and the fault. format: a malloc'd NUL-terminated text.
 */
int bundle_parse_pub(const char *text, size_t len, const char *what, uint8_t id[BUNDLE_KEYID_LEN],
		     uint8_t pk[BUNDLE_PK_LEN], char *err, size_t errlen);
int bundle_parse_sec(const char *text, size_t len, const char *what, uint8_t id[BUNDLE_KEYID_LEN],
		     uint8_t sk[BUNDLE_SK_LEN], char *err, size_t errlen);
int bundle_parse_sig(const char *text, size_t len, const char *what, uint8_t id[BUNDLE_KEYID_LEN],
		     uint8_t sig[BUNDLE_SIG_LEN], char *err, size_t errlen);
char *bundle_format_pub(const char *comment, const uint8_t pk[BUNDLE_PK_LEN]);
char *bundle_format_sec(const char *comment, const uint8_t sk[BUNDLE_SK_LEN]);
char *bundle_format_sig(const char *comment, const uint8_t id[BUNDLE_KEYID_LEN],
			const uint8_t sig[BUNDLE_SIG_LEN]);

/* Parse a manifest (bytes, not NUL-terminated): 0 or LINLI_E* with err naming the line. */
int bundle_manifest_parse(const char *text, size_t len, struct bundle_manifest *m, char *err,
			  size_t errlen);
/* The manifest's text (malloc'd, NUL-terminated, *len without the NUL). */
char *bundle_manifest_format(const struct bundle_manifest *m, size_t *len);

/* Read a bundle: a tar archive in memory, or a directory. Parses the manifest. */
int bundle_read_mem(const void *buf, size_t len, struct bundle *b, char *err, size_t errlen);
int bundle_read_dir(const char *dir, struct bundle *b, char *err, size_t errlen);
void bundle_free(struct bundle *b);

/*
 * bundle_verify — the signature first (unless allow_unsigned: then a
 * missing or unverifiable signature is no refusal and *signer is NULL),
 * then every file against its size and hash. Refusals, each named:
 * unsigned (LINLI_EPERM), a key id no key of `keys` has (LINLI_EPERM), a
 * signature that does not verify (LINLI_ECORRUPT), a file that differs
 * (LINLI_ECORRUPT). *signer: the key that verified, or NULL.
 */
int bundle_verify(const struct bundle *b, const struct bundle_key *keys, int n_keys,
		  bool allow_unsigned, const struct bundle_key **signer, char *err, size_t errlen);

/* The blob of the plugin file, or NULL. */
const struct bundle_blob *bundle_plugin(const struct bundle *b);

/* BLAKE2b-256 of data. */
void bundle_hash(const void *data, size_t len, uint8_t out[BUNDLE_HASH_LEN]);

/* Compare dotted versions ("1.10.0" > "1.9.2"; numeric parts as numbers): <0, 0, >0. */
int bundle_version_cmp(const char *a, const char *b);

#endif
