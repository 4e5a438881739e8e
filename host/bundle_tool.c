/*
 * linli-bundle — the vendor's tool: make a signing key, build and sign a
 * bundle (bundle.h), check one.
 *
 *   linli-bundle keygen NAME [-o DIR]
 *       writes DIR/NAME.pub (give it to the nodes' admins: linli trust add)
 *       and DIR/NAME.sec (mode 0600; keep it)
 *   linli-bundle build --plugin FILE.so|FILE.lua [--name N] [--version V]
 *       --vendor TEXT (--key NAME.sec | --unsigned) -o OUT.bundle
 *       [--capability CAP]... [--sdk M.N] [--file FILE]... [--dataset NAME.cfg]...
 *       [--device CLASS.cfg]...
 *       --dataset adds a catalog fragment (one dataset file, catalog/datasets syntax)
 *       --device adds a device class (one file, catalog/devices syntax)
 *       A .so gives its name, version, SDK and capabilities from its own
 *       descriptor (--name/--version, if given, must agree); a .lua needs
 *       --name, --version and each --capability.
 *   linli-bundle verify BUNDLE [--key NAME.pub]
 *       checks the files against the manifest, and the signature with the key
 *
 * Needs no running node and nothing of the kernel but bundle.c and the
 * descriptor reader (plugin_meta.c).
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "linli/error.h"
#include "linli/plugin.h"
#include "linli/version.h"

int plug_read_meta(const void *buf, size_t len, struct linli_plugin_meta *out, char *err,
		   size_t errlen);

static int usage(void)
{
	fprintf(stderr, "usage: linli-bundle keygen NAME [-o DIR]\n"
			"       linli-bundle build --plugin FILE.so|FILE.lua --vendor TEXT\n"
			"                          (--key NAME.sec | --unsigned) -o OUT.bundle\n"
			"                          [--name N] [--version V] [--capability CAP]...\n"
			"                          [--sdk M.N] [--file FILE]... [--dataset NAME.cfg]...\n"
			"                          [--device CLASS.cfg]...\n"
			"       linli-bundle verify BUNDLE [--key NAME.pub]\n");
	return 2;
}

static unsigned char *slurp(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "linli-bundle: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	size_t cap = 65536, n = 0;
	unsigned char *b = malloc(cap);
	for (;;) {
		if (!b)
			break;
		if (n == cap) {
			unsigned char *nb = cap * 2 > max + 1 ? NULL : realloc(b, cap * 2);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
		size_t r = fread(b + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	if (!b || n > max) {
		fprintf(stderr, "linli-bundle: %s: too large or out of memory\n", path);
		free(b);
		return NULL;
	}
	*len = n;
	return b;
}

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int write_new(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		fprintf(stderr, "linli-bundle: cannot create %s: %s\n", path, strerror(errno));
		return 1;
	}
	size_t n = strlen(text);
	bool ok = write(fd, text, n) == (ssize_t)n;
	ok = close(fd) == 0 && ok;
	if (!ok)
		fprintf(stderr, "linli-bundle: cannot write %s\n", path);
	return ok ? 0 : 1;
}

static int keygen(int argc, char **argv)
{
	const char *name = NULL, *dir = ".";
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (!name && argv[i][0] != '-')
			name = argv[i];
		else
			return usage();
	}
	if (!name)
		return usage();
	if (!bundle_key_name_ok(name)) {
		fprintf(stderr,
			"linli-bundle: key name '%s': [a-z0-9][a-z0-9_.-]*, at most %d bytes\n",
			name, BUNDLE_KEY_NAME_MAX - 1);
		return 1;
	}
	uint8_t pk[BUNDLE_PK_LEN], sk[BUNDLE_SK_LEN], id[BUNDLE_KEYID_LEN];
	crypto_sign_keypair(pk, sk);
	bundle_key_id(pk, id);
	char hex[BUNDLE_KEYID_HEX], comment[128], pub[4096], sec[4096];
	bundle_hex(id, sizeof id, hex);
	snprintf(pub, sizeof pub, "%s/%s.pub", dir, name);
	snprintf(sec, sizeof sec, "%s/%s.sec", dir, name);
	snprintf(comment, sizeof comment, "linli public key %s, key id %s", name, hex);
	char *pt = bundle_format_pub(comment, pk);
	snprintf(comment, sizeof comment, "linli secret key %s, key id %s", name, hex);
	char *st = bundle_format_sec(comment, sk);
	sodium_memzero(sk, sizeof sk);
	int rc = pt && st ? write_new(sec, st, 0600) : 1;
	if (!rc && (rc = write_new(pub, pt, 0644)) != 0)
		unlink(sec);
	if (st)
		sodium_memzero(st, strlen(st));
	free(pt);
	free(st);
	if (!rc)
		printf("key %s (id %s): public %s, secret %s\n", name, hex, pub, sec);
	return rc;
}

static int add_entry(struct archive *a, const char *name, const void *data, size_t len)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_mtime(e, time(NULL), 0);
	int ok = archive_write_header(a, e) == ARCHIVE_OK &&
		 (len == 0 || archive_write_data(a, data, len) == (la_ssize_t)len);
	archive_entry_free(e);
	if (!ok)
		fprintf(stderr, "linli-bundle: cannot write %s: %s\n", name,
			archive_error_string(a) ? archive_error_string(a) : "?");
	return ok ? 0 : 1;
}

static int build(int argc, char **argv)
{
	const char *plugin = NULL, *name = NULL, *version = NULL, *vendor = NULL, *key = NULL,
		   *out = NULL, *sdk = NULL;
	const char *extra[BUNDLE_MAX_FILES];
	bool extra_ds[BUNDLE_MAX_FILES] = {0};
	bool extra_dev[BUNDLE_MAX_FILES] = {0};
	int n_extra = 0;
	bool unsigned_ = false;
	struct bundle_manifest m;
	memset(&m, 0, sizeof m);
	int n_caps_arg = 0;
	char caps_arg[LINLI_MAX_CAPS][LINLI_CAP_MAX];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--unsigned") == 0) {
			unsigned_ = true;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (strcmp(a, "--plugin") == 0)
			plugin = v;
		else if (strcmp(a, "--name") == 0)
			name = v;
		else if (strcmp(a, "--version") == 0)
			version = v;
		else if (strcmp(a, "--vendor") == 0)
			vendor = v;
		else if (strcmp(a, "--key") == 0)
			key = v;
		else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
			out = v;
		else if (strcmp(a, "--sdk") == 0)
			sdk = v;
		else if (strcmp(a, "--capability") == 0 && n_caps_arg < LINLI_MAX_CAPS)
			snprintf(caps_arg[n_caps_arg++], LINLI_CAP_MAX, "%s", v);
		else if (strcmp(a, "--file") == 0 && n_extra < BUNDLE_MAX_FILES - 1)
			extra[n_extra++] = v;
		else if (strcmp(a, "--dataset") == 0 && n_extra < BUNDLE_MAX_FILES - 1) {
			extra_ds[n_extra] = true;
			extra[n_extra++] = v;
		} else if (strcmp(a, "--device") == 0 && n_extra < BUNDLE_MAX_FILES - 1) {
			extra_dev[n_extra] = true;
			extra[n_extra++] = v;
		}
		else
			return usage();
	}
	if (!plugin || !vendor || !out || (!key && !unsigned_) || (key && unsigned_)) {
		fprintf(stderr, "linli-bundle build: needs --plugin, --vendor, -o and one of --key "
				"or --unsigned\n");
		return usage();
	}
	size_t plen = 0;
	unsigned char *pbytes = slurp(plugin, BUNDLE_MAX, &plen);
	if (!pbytes)
		return 1;
	char err[512];
	size_t pn = strlen(plugin);
	bool is_so = pn > 3 && strcmp(plugin + pn - 3, ".so") == 0;
	if (is_so) {
		struct linli_plugin_meta meta;
		if (plug_read_meta(pbytes, plen, &meta, err, sizeof err) != 0) {
			fprintf(stderr, "linli-bundle: %s: %s\n", plugin, err);
			return 1;
		}
		if ((name && strcmp(name, meta.name) != 0) ||
		    (version && strcmp(version, meta.version) != 0)) {
			fprintf(stderr,
				"linli-bundle: %s is plugin '%s' version '%s'; --name/--version "
				"say otherwise\n",
				plugin, meta.name, meta.version);
			return 1;
		}
		snprintf(m.name, sizeof m.name, "%s", meta.name);
		snprintf(m.version, sizeof m.version, "%s", meta.version);
		m.sdk_major = meta.sdk_major;
		m.sdk_minor = meta.sdk_minor;
		for (int i = 0; i < LINLI_MAX_CAPS && meta.capabilities[i][0]; i++)
			snprintf(m.caps[m.n_caps++], LINLI_CAP_MAX, "%s", meta.capabilities[i]);
		if (n_caps_arg)
			fprintf(stderr,
				"linli-bundle: --capability ignored: a .so declares its own\n");
	} else {
		if (!name || !version) {
			fprintf(stderr,
				"linli-bundle: a script plugin needs --name and --version\n");
			return 1;
		}
		snprintf(m.name, sizeof m.name, "%s", name);
		snprintf(m.version, sizeof m.version, "%s", version);
		m.sdk_major = LINLI_SDK_MAJOR;
		m.sdk_minor = LINLI_SDK_MINOR;
		for (int i = 0; i < n_caps_arg; i++)
			memcpy(m.caps[m.n_caps++], caps_arg[i], LINLI_CAP_MAX);
	}
	if (sdk && sscanf(sdk, "%u.%u", &m.sdk_major, &m.sdk_minor) != 2)
		return usage();
	snprintf(m.vendor, sizeof m.vendor, "%s", vendor);
	unsigned char *fdata[BUNDLE_MAX_FILES];
	size_t flen[BUNDLE_MAX_FILES];
	fdata[0] = pbytes;
	flen[0] = plen;
	/* In the bundle the plugin is NAME.so (or NAME.lua), whatever its file was called. */
	snprintf(m.files[0].name, sizeof m.files[0].name, "%s%s", m.name, is_so ? ".so" : ".lua");
	m.n_files = 1;
	for (int i = 0; i < n_extra; i++) {
		if (!(fdata[m.n_files] = slurp(extra[i], BUNDLE_MAX, &flen[m.n_files])))
			return 1;
		snprintf(m.files[m.n_files].name, sizeof m.files[0].name, "%s", base(extra[i]));
		m.files[m.n_files].dataset = extra_ds[i];
		m.files[m.n_files].device = extra_dev[i];
		m.n_files++;
	}
	for (int i = 0; i < m.n_files; i++) {
		m.files[i].size = flen[i];
		bundle_hash(fdata[i], flen[i], m.files[i].hash);
	}
	size_t mlen = 0;
	char *mtext = bundle_manifest_format(&m, &mlen);
	struct bundle_manifest check;
	if (!mtext || bundle_manifest_parse(mtext, mlen, &check, err, sizeof err) != 0) {
		fprintf(stderr, "linli-bundle: the manifest would be refused: %s\n", err);
		return 1;
	}
	char *sigtext = NULL;
	char hex[BUNDLE_KEYID_HEX] = "";
	if (key) {
		size_t klen = 0;
		unsigned char *ktext = slurp(key, 4096, &klen);
		uint8_t id[BUNDLE_KEYID_LEN], sk[BUNDLE_SK_LEN], sig[BUNDLE_SIG_LEN];
		if (!ktext)
			return 1;
		if (bundle_parse_sec((const char *)ktext, klen, key, id, sk, err, sizeof err) !=
		    0) {
			fprintf(stderr, "linli-bundle: %s\n", err);
			return 1;
		}
		sodium_memzero(ktext, klen);
		free(ktext);
		crypto_sign_detached(sig, NULL, (const unsigned char *)mtext, mlen, sk);
		sodium_memzero(sk, sizeof sk);
		bundle_hex(id, sizeof id, hex);
		char comment[128];
		snprintf(comment, sizeof comment, "signed by key %s", hex);
		sigtext = bundle_format_sig(comment, id, sig);
	}
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", out);
	int rc = archive_write_open_filename(a, tmp) == ARCHIVE_OK ? 0 : 1;
	if (rc)
		fprintf(stderr, "linli-bundle: cannot create %s: %s\n", tmp,
			archive_error_string(a) ? archive_error_string(a) : "?");
	if (!rc)
		rc = add_entry(a, "manifest", mtext, mlen);
	if (!rc && sigtext)
		rc = add_entry(a, "manifest.sig", sigtext, strlen(sigtext));
	for (int i = 0; !rc && i < m.n_files; i++)
		rc = add_entry(a, m.files[i].name, fdata[i], flen[i]);
	if (archive_write_close(a) != ARCHIVE_OK)
		rc = 1;
	archive_write_free(a);
	if (!rc && rename(tmp, out) != 0) {
		fprintf(stderr, "linli-bundle: cannot write %s: %s\n", out, strerror(errno));
		rc = 1;
	}
	if (rc)
		unlink(tmp);
	else
		printf("%s: %s %s, %s%s\n", out, m.name, m.version,
		       key ? "signed with key " : "unsigned", hex);
	for (int i = 0; i < m.n_files; i++)
		free(fdata[i]);
	free(mtext);
	free(sigtext);
	return rc;
}

static int verify(int argc, char **argv)
{
	const char *path = NULL, *key = NULL;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
			key = argv[++i];
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else
			return usage();
	}
	if (!path)
		return usage();
	char err[512];
	struct bundle_key k;
	memset(&k, 0, sizeof k);
	int nk = 0;
	if (key) {
		size_t klen;
		unsigned char *t = slurp(key, 4096, &klen);
		if (!t)
			return 1;
		int rc = bundle_parse_pub((const char *)t, klen, key, k.id, k.pk, err, sizeof err);
		free(t);
		if (rc) {
			fprintf(stderr, "linli-bundle: %s\n", err);
			return 1;
		}
		snprintf(k.name, sizeof k.name, "%s", "given");
		nk = 1;
	}
	struct bundle b;
	struct stat st;
	int rc;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		rc = bundle_read_dir(path, &b, err, sizeof err);
	else {
		size_t len;
		unsigned char *buf = slurp(path, BUNDLE_MAX, &len);
		if (!buf)
			return 1;
		rc = bundle_read_mem(buf, len, &b, err, sizeof err);
		free(buf);
	}
	const struct bundle_key *signer = NULL;
	if (!rc)
		rc = bundle_verify(&b, &k, nk, !key, &signer, err, sizeof err);
	if (rc) {
		fprintf(stderr, "linli-bundle: %s\n", err);
		return 1;
	}
	printf("%s: %s %s by %s, sdk %u.%u, %d file(s), %s\n", path, b.m.name, b.m.version,
	       b.m.vendor, b.m.sdk_major, b.m.sdk_minor, b.m.n_files,
	       signer  ? "signature verified"
	       : b.sig ? "signed (no key given)"
		       : "unsigned");
	bundle_free(&b);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (bundle_crypto_init() != 0) {
		fprintf(stderr, "linli-bundle: libsodium did not initialise\n");
		return 1;
	}
	if (strcmp(argv[1], "keygen") == 0)
		return keygen(argc, argv);
	if (strcmp(argv[1], "build") == 0)
		return build(argc, argv);
	if (strcmp(argv[1], "verify") == 0)
		return verify(argc, argv);
	return usage();
}
