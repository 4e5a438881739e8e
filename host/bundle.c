/*
 * bundle — see bundle.h.
 */
#include "bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "linli/error.h"

/* errf without util.c (the tool links this file alone). */
__attribute__((format(printf, 4, 5))) static int berr(char *err, size_t errlen, int rc,
						      const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int bundle_crypto_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

void bundle_hash(const void *data, size_t len, uint8_t out[BUNDLE_HASH_LEN])
{
	crypto_generichash(out, BUNDLE_HASH_LEN, data, len, NULL, 0);
}

void bundle_key_id(const uint8_t pk[BUNDLE_PK_LEN], uint8_t id[BUNDLE_KEYID_LEN])
{
	uint8_t h[crypto_generichash_BYTES_MAX]; /* BLAKE2b-512, its first 8 bytes */
	crypto_generichash(h, sizeof h, pk, BUNDLE_PK_LEN, NULL, 0);
	memcpy(id, h, BUNDLE_KEYID_LEN);
}

void bundle_hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

bool bundle_key_name_ok(const char *s)
{
	size_t n = strnlen(s, BUNDLE_KEY_NAME_MAX);
	if (n == 0 || n == BUNDLE_KEY_NAME_MAX ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

/* ---- signify-style texts ---- */

#define COMMENT "untrusted comment: "

/* The base64 line of a signify text decoded into out (want bytes, "Ed" first). */
static int parse_signify(const char *text, size_t len, const char *what, const char *kind,
			 unsigned char *out, size_t want, char *err, size_t errlen)
{
	const char *end = text + len;
	const char *nl = memchr(text, '\n', len);
	if (len < sizeof COMMENT - 1 || memcmp(text, COMMENT, sizeof COMMENT - 1) != 0 || !nl)
		return berr(err, errlen, LINLI_EINVAL,
			    "%s: not a %s file: its first line must start with '%s'", what, kind,
			    COMMENT);
	const char *b = nl + 1, *e = memchr(b, '\n', (size_t)(end - b));
	if (!e)
		e = end;
	for (const char *q = e; q < end; q++)
		if (*q != '\n' && *q != '\r' && *q != ' ')
			return berr(err, errlen, LINLI_EINVAL,
				    "%s: a %s file has two lines; more follows", what, kind);
	if (e > b && e[-1] == '\r')
		e--;
	size_t got = 0;
	if (sodium_base642bin(out, want, b, (size_t)(e - b), NULL, &got, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    got != want)
		return berr(err, errlen, LINLI_EINVAL,
			    "%s: its second line is not the base64 of a %s (%zu bytes)", what, kind,
			    want);
	if (out[0] != 'E' || out[1] != 'd')
		return berr(err, errlen, LINLI_EINVAL, "%s: not an Ed25519 %s (no 'Ed')", what,
			    kind);
	return 0;
}

int bundle_parse_pub(const char *text, size_t len, const char *what, uint8_t id[BUNDLE_KEYID_LEN],
		     uint8_t pk[BUNDLE_PK_LEN], char *err, size_t errlen)
{
	unsigned char raw[2 + BUNDLE_KEYID_LEN + BUNDLE_PK_LEN];
	int rc = parse_signify(text, len, what, "public key", raw, sizeof raw, err, errlen);
	if (rc)
		return rc;
	memcpy(pk, raw + 2 + BUNDLE_KEYID_LEN, BUNDLE_PK_LEN);
	bundle_key_id(pk, id);
	if (memcmp(id, raw + 2, BUNDLE_KEYID_LEN) != 0)
		return berr(err, errlen, LINLI_ECORRUPT,
			    "%s: the key id it carries is not the one of its key", what);
	return 0;
}

int bundle_parse_sec(const char *text, size_t len, const char *what, uint8_t id[BUNDLE_KEYID_LEN],
		     uint8_t sk[BUNDLE_SK_LEN], char *err, size_t errlen)
{
	unsigned char raw[2 + BUNDLE_KEYID_LEN + BUNDLE_SK_LEN];
	int rc = parse_signify(text, len, what, "secret key", raw, sizeof raw, err, errlen);
	if (rc)
		return rc;
	memcpy(sk, raw + 2 + BUNDLE_KEYID_LEN, BUNDLE_SK_LEN);
	/* libsodium's secret key holds the public key in its second half */
	bundle_key_id(sk + 32, id);
	bool same = memcmp(id, raw + 2, BUNDLE_KEYID_LEN) == 0;
	sodium_memzero(raw, sizeof raw);
	if (!same)
		return berr(err, errlen, LINLI_ECORRUPT,
			    "%s: the key id it carries is not the one of its key", what);
	return 0;
}

int bundle_parse_sig(const char *text, size_t len, const char *what, uint8_t id[BUNDLE_KEYID_LEN],
		     uint8_t sig[BUNDLE_SIG_LEN], char *err, size_t errlen)
{
	unsigned char raw[2 + BUNDLE_KEYID_LEN + BUNDLE_SIG_LEN];
	int rc = parse_signify(text, len, what, "signature", raw, sizeof raw, err, errlen);
	if (rc)
		return rc;
	memcpy(id, raw + 2, BUNDLE_KEYID_LEN);
	memcpy(sig, raw + 2 + BUNDLE_KEYID_LEN, BUNDLE_SIG_LEN);
	return 0;
}

static char *format_signify(const char *comment, const unsigned char *raw, size_t n)
{
	size_t b64 = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
	size_t cap = sizeof COMMENT + strlen(comment) + b64 + 4;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	int off = snprintf(out, cap, COMMENT "%s\n", comment);
	sodium_bin2base64(out + off, b64, raw, n, sodium_base64_VARIANT_ORIGINAL);
	strcat(out, "\n");
	return out;
}

char *bundle_format_pub(const char *comment, const uint8_t pk[BUNDLE_PK_LEN])
{
	unsigned char raw[2 + BUNDLE_KEYID_LEN + BUNDLE_PK_LEN] = {'E', 'd'};
	bundle_key_id(pk, raw + 2);
	memcpy(raw + 2 + BUNDLE_KEYID_LEN, pk, BUNDLE_PK_LEN);
	return format_signify(comment, raw, sizeof raw);
}

char *bundle_format_sec(const char *comment, const uint8_t sk[BUNDLE_SK_LEN])
{
	unsigned char raw[2 + BUNDLE_KEYID_LEN + BUNDLE_SK_LEN] = {'E', 'd'};
	bundle_key_id(sk + 32, raw + 2);
	memcpy(raw + 2 + BUNDLE_KEYID_LEN, sk, BUNDLE_SK_LEN);
	char *s = format_signify(comment, raw, sizeof raw);
	sodium_memzero(raw, sizeof raw);
	return s;
}

char *bundle_format_sig(const char *comment, const uint8_t id[BUNDLE_KEYID_LEN],
			const uint8_t sig[BUNDLE_SIG_LEN])
{
	unsigned char raw[2 + BUNDLE_KEYID_LEN + BUNDLE_SIG_LEN] = {'E', 'd'};
	memcpy(raw + 2, id, BUNDLE_KEYID_LEN);
	memcpy(raw + 2 + BUNDLE_KEYID_LEN, sig, BUNDLE_SIG_LEN);
	return format_signify(comment, raw, sizeof raw);
}

/* ---- the manifest ---- */

static bool is_ident(const char *s, size_t n)
{
	if (n == 0 || n >= LINLI_NAME_MAX || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static bool is_token(const char *s, size_t n, size_t max)
{
	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

static bool is_file_name(const char *s, size_t n)
{
	if (n == 0 || n > BUNDLE_FILE_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return false;
	/* the bundle's own files, and what the node keeps beside them (plugin.c) */
	static const char *const taken[] = {"manifest", "manifest.sig", "installed", "current",
					    "previous"};
	for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++)
		if (n == strlen(taken[i]) && memcmp(s, taken[i], n) == 0)
			return false;
	return true;
}

/* A version is also a directory's name on the node: [A-Za-z0-9._+~-], not starting with '.'. */
static bool is_version(const char *s, size_t n)
{
	if (n == 0 || n >= LINLI_VERSION_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || (s[i] && strchr("._+~-", s[i]))))
			return false;
	return true;
}

/* Text without control bytes that is valid UTF-8 (the vendor's name). */
static bool is_text(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned c = u[i];
		size_t k = c < 0x80		? 1
			   : (c & 0xe0) == 0xc0 ? 2
			   : (c & 0xf0) == 0xe0 ? 3
			   : (c & 0xf8) == 0xf0 ? 4
						: 0;
		if (!k || i + k > n || (k == 1 && (c < ' ' || c == 0x7f)) || (k == 2 && c < 0xc2) ||
		    (k == 4 && c > 0xf4))
			return false;
		for (size_t j = 1; j < k; j++)
			if ((u[i + j] & 0xc0) != 0x80)
				return false;
		if (k == 3 && ((c == 0xe0 && u[i + 1] < 0xa0) || (c == 0xed && u[i + 1] > 0x9f)))
			return false;
		if (k == 4 && ((c == 0xf0 && u[i + 1] < 0x90) || (c == 0xf4 && u[i + 1] > 0x8f)))
			return false;
		i += k;
	}
	return true;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n > m && strcmp(s + n - m, suf) == 0;
}

int bundle_manifest_parse(const char *text, size_t len, struct bundle_manifest *m, char *err,
			  size_t errlen)
{
	memset(m, 0, sizeof *m);
	m->plugin = -1;
	if (len > BUNDLE_MANIFEST_MAX)
		return berr(err, errlen, LINLI_E2BIG, "manifest: %zu bytes, over the limit of %u",
			    len, BUNDLE_MANIFEST_MAX);
	if (len == 0 || text[len - 1] != '\n')
		return berr(err, errlen, LINLI_EINVAL,
			    "manifest: empty, or its last line does not end with a newline");
	bool seen_name = false, seen_version = false, seen_vendor = false, seen_sdk = false;
	char ds_names[BUNDLE_MAX_FILES][BUNDLE_FILE_NAME_MAX + 1];
	int ds_lines[BUNDLE_MAX_FILES], n_ds = 0;
	bool ds_dev[BUNDLE_MAX_FILES]; /* a `device` line, else a `dataset` line */
	const char *p = text, *end = text + len;
	int line = 0;
	while (p < end) {
		line++;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)(nl - p);
		if (memchr(p, '\0', n) || memchr(p, '\r', n))
			return berr(err, errlen, LINLI_EINVAL,
				    "manifest line %d: a NUL or carriage return", line);
		const char *sp = memchr(p, ' ', n);
		size_t kn = sp ? (size_t)(sp - p) : n;
		const char *v = sp ? sp + 1 : p + n;
		size_t vn = (size_t)(p + n - v);
		char key[16];
		snprintf(key, sizeof key, "%.*s", (int)(kn < 15 ? kn : 15), p);
		if (line == 1) {
			if (n != 14 || memcmp(p, "linli-bundle 1", 14) != 0)
				return berr(err, errlen, LINLI_EVERSION,
					    "manifest line 1: must be 'linli-bundle 1' (a manifest "
					    "of another format, or not a manifest)");
		} else if (n == 0) {
			return berr(err, errlen, LINLI_EINVAL, "manifest line %d: empty", line);
		} else if (!sp || vn == 0) {
			return berr(err, errlen, LINLI_EINVAL,
				    "manifest line %d: '%s' without a value", line, key);
		} else if (kn == 4 && memcmp(p, "name", 4) == 0) {
			if (seen_name)
				return berr(err, errlen, LINLI_EINVAL,
					    "manifest line %d: a second name", line);
			if (!is_ident(v, vn))
				return berr(err, errlen, LINLI_EINVAL,
					    "manifest line %d: name must match [a-z][a-z0-9_]*, at "
					    "most %d bytes",
					    line, LINLI_NAME_MAX - 1);
			memcpy(m->name, v, vn);
			seen_name = true;
		} else if (kn == 7 && memcmp(p, "version", 7) == 0) {
			if (seen_version)
				return berr(err, errlen, LINLI_EINVAL,
					    "manifest line %d: a second version", line);
			if (!is_version(v, vn))
				return berr(
				    err, errlen, LINLI_EINVAL,
				    "manifest line %d: version must be of [A-Za-z0-9._+~-], "
				    "not starting with '.' or '-', at most %d bytes",
				    line, LINLI_VERSION_MAX - 1);
			memcpy(m->version, v, vn);
			seen_version = true;
		} else if (kn == 6 && memcmp(p, "vendor", 6) == 0) {
			if (seen_vendor)
				return berr(err, errlen, LINLI_EINVAL,
					    "manifest line %d: a second vendor", line);
			if (vn >= BUNDLE_VENDOR_MAX || !is_text(v, vn))
				return berr(err, errlen, LINLI_EINVAL,
					    "manifest line %d: vendor must be UTF-8 text without "
					    "control characters, at most %d bytes",
					    line, BUNDLE_VENDOR_MAX - 1);
			memcpy(m->vendor, v, vn);
			seen_vendor = true;
		} else if (kn == 3 && memcmp(p, "sdk", 3) == 0) {
			/* MAJOR.MINOR, each 1 to 3 digits (no sign, no space: sscanf takes both) */
			unsigned a = 0, b = 0;
			size_t d1 = 0, d2 = 0;
			while (d1 < vn && v[d1] >= '0' && v[d1] <= '9')
				a = a * 10 + (unsigned)(v[d1++] - '0');
			bool dot = d1 < vn && v[d1] == '.';
			while (dot && d1 + 1 + d2 < vn && v[d1 + 1 + d2] >= '0' &&
			       v[d1 + 1 + d2] <= '9')
				b = b * 10 + (unsigned)(v[d1 + 1 + d2++] - '0');
			if (seen_sdk || !dot || d1 < 1 || d1 > 3 || d2 < 1 || d2 > 3 ||
			    d1 + 1 + d2 != vn)
				return berr(err, errlen, LINLI_EINVAL,
					    "manifest line %d: sdk must be MAJOR.MINOR, once",
					    line);
			m->sdk_major = a;
			m->sdk_minor = b;
			seen_sdk = true;
		} else if (kn == 10 && memcmp(p, "capability", 10) == 0) {
			if (m->n_caps == LINLI_MAX_CAPS)
				return berr(err, errlen, LINLI_ELIMIT,
					    "manifest line %d: more than %d capabilities", line,
					    LINLI_MAX_CAPS);
			if (!is_token(v, vn, LINLI_CAP_MAX))
				return berr(err, errlen, LINLI_EINVAL,
					    "manifest line %d: a capability is printable ASCII "
					    "without spaces, at most %d bytes",
					    line, LINLI_CAP_MAX - 1);
			memcpy(m->caps[m->n_caps++], v, vn);
		} else if (kn == 4 && memcmp(p, "file", 4) == 0) {
			if (m->n_files == BUNDLE_MAX_FILES)
				return berr(err, errlen, LINLI_ELIMIT,
					    "manifest line %d: more than %d files", line,
					    BUNDLE_MAX_FILES);
			const char *s1 = memchr(v, ' ', vn);
			const char *s2 = s1 ? memchr(s1 + 1, ' ', (size_t)(v + vn - s1 - 1)) : NULL;
			const char *h = s2 ? s2 + 1 : NULL;
			size_t fnl = s1 ? (size_t)(s1 - v) : 0;
			if (!s2 || !is_file_name(v, fnl) ||
			    (size_t)(v + vn - h) != 2 * BUNDLE_HASH_LEN)
				return berr(
				    err, errlen, LINLI_EINVAL,
				    "manifest line %d: must be 'file NAME SIZE BLAKE2B-256-HEX' "
				    "(NAME of [A-Za-z0-9._-], not starting with '.' or '-', not "
				    "manifest, installed, current or previous)",
				    line);
			struct bundle_file *f = &m->files[m->n_files];
			memcpy(f->name, v, fnl);
			f->name[fnl] = '\0';
			uint64_t size = 0;
			for (const char *q = s1 + 1; q < s2; q++) {
				if (*q < '0' || *q > '9' || s2 - (s1 + 1) > 10)
					return berr(err, errlen, LINLI_EINVAL,
						    "manifest line %d: file %s: a bad size", line,
						    f->name);
				size = size * 10 + (uint64_t)(*q - '0');
			}
			if (s2 == s1 + 1 || size > BUNDLE_MAX)
				return berr(
				    err, errlen, LINLI_EINVAL,
				    "manifest line %d: file %s: size missing or over %u bytes",
				    line, f->name, BUNDLE_MAX);
			f->size = size;
			for (int i = 0; i < BUNDLE_HASH_LEN; i++) {
				int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
				if (hi < 0 || lo < 0)
					return berr(err, errlen, LINLI_EINVAL,
						    "manifest line %d: file %s: the hash is not 64 "
						    "lowercase hex digits",
						    line, f->name);
				f->hash[i] = (uint8_t)(hi << 4 | lo);
			}
			for (int i = 0; i < m->n_files; i++)
				if (strcmp(m->files[i].name, f->name) == 0)
					return berr(err, errlen, LINLI_EINVAL,
						    "manifest line %d: file %s listed twice", line,
						    f->name);
			if (has_suffix(f->name, ".so") || has_suffix(f->name, ".lua")) {
				if (m->plugin >= 0)
					return berr(
					    err, errlen, LINLI_EINVAL,
					    "manifest line %d: a second plugin file (%s after "
					    "%s): a bundle brings one plugin",
					    line, f->name, m->files[m->plugin].name);
				m->plugin = m->n_files;
			}
			m->n_files++;
		} else if ((kn == 7 && memcmp(p, "dataset", 7) == 0) ||
			   (kn == 6 && memcmp(p, "device", 6) == 0)) {
			if (n_ds == BUNDLE_MAX_FILES)
				return berr(err, errlen, LINLI_EINVAL,
					    "manifest line %d: more than %d catalog fragments",
					    line, BUNDLE_MAX_FILES);
			if (vn < 5 || vn > BUNDLE_FILE_NAME_MAX || memcmp(v + vn - 4, ".cfg", 4) != 0)
				return berr(err, errlen, LINLI_EINVAL,
					    "manifest line %d: %s: '%.*s' is not a NAME.cfg file",
					    line, key, (int)(vn > 100 ? 100 : vn), v);
			memcpy(ds_names[n_ds], v, vn);
			ds_names[n_ds][vn] = '\0';
			ds_dev[n_ds] = kn == 6;
			ds_lines[n_ds++] = line;
		} else if ((kn == 8 && memcmp(p, "fragment", 8) == 0) ||
			   (kn == 7 && memcmp(p, "catalog", 7) == 0)) {
			return berr(err, errlen, LINLI_ENOTSUP,
				    "manifest line %d: '%s': not supported; a bundle brings "
				    "datasets and device classes ('dataset NAME.cfg', 'device "
				    "CLASS.cfg', a listed file)",
				    line, key);
		} else {
			return berr(
			    err, errlen, LINLI_EINVAL,
			    "manifest line %d: unknown key '%s' (name, version, vendor, sdk, "
			    "capability, file, dataset, device)",
			    line, key);
		}
		p = nl + 1;
	}
	const char *missing = !seen_name      ? "name"
			      : !seen_version ? "version"
			      : !seen_vendor  ? "vendor"
			      : !seen_sdk     ? "sdk"
					      : NULL;
	if (missing)
		return berr(err, errlen, LINLI_EINVAL, "manifest: no '%s' line", missing);
	if (m->plugin < 0)
		return berr(err, errlen, LINLI_EINVAL,
			    "manifest: no plugin file (a 'file' line naming a .so or .lua)");
	for (int d = 0; d < n_ds; d++) {
		int at = -1;
		for (int i = 0; i < m->n_files; i++)
			if (strcmp(m->files[i].name, ds_names[d]) == 0)
				at = i;
		if (at < 0)
			return berr(err, errlen, LINLI_EINVAL,
				    "manifest line %d: %s %s: no 'file' line lists it",
				    ds_lines[d], ds_dev[d] ? "device" : "dataset", ds_names[d]);
		if (m->files[at].dataset || m->files[at].device)
			return berr(err, errlen, LINLI_EINVAL,
				    "manifest line %d: %s %s named twice", ds_lines[d],
				    ds_dev[d] ? "device" : "dataset", ds_names[d]);
		if (ds_dev[d])
			m->files[at].device = true;
		else
			m->files[at].dataset = true;
	}
	return 0;
}

char *bundle_manifest_format(const struct bundle_manifest *m, size_t *len)
{
	size_t cap = 512 + (size_t)m->n_caps * (LINLI_CAP_MAX + 16) +
		     (size_t)m->n_files * (2 * BUNDLE_FILE_NAME_MAX + 110);
	char *s = malloc(cap);
	if (!s)
		return NULL;
	size_t off =
	    (size_t)snprintf(s, cap, "linli-bundle 1\nname %s\nversion %s\nvendor %s\nsdk %u.%u\n",
			     m->name, m->version, m->vendor, m->sdk_major, m->sdk_minor);
	for (int i = 0; i < m->n_caps; i++)
		off += (size_t)snprintf(s + off, cap - off, "capability %s\n", m->caps[i]);
	for (int i = 0; i < m->n_files; i++) {
		char hex[2 * BUNDLE_HASH_LEN + 1];
		bundle_hex(m->files[i].hash, BUNDLE_HASH_LEN, hex);
		off += (size_t)snprintf(s + off, cap - off, "file %s %llu %s\n", m->files[i].name,
					(unsigned long long)m->files[i].size, hex);
	}
	for (int i = 0; i < m->n_files; i++)
		if (m->files[i].dataset)
			off += (size_t)snprintf(s + off, cap - off, "dataset %s\n", m->files[i].name);
	for (int i = 0; i < m->n_files; i++)
		if (m->files[i].device)
			off += (size_t)snprintf(s + off, cap - off, "device %s\n",
						m->files[i].name);
	*len = off;
	return s;
}

/* ---- reading ---- */

void bundle_free(struct bundle *b)
{
	free(b->manifest);
	free(b->sig);
	for (int i = 0; i < b->n_files; i++)
		free(b->files[i].data);
	memset(b, 0, sizeof *b);
}

/* Keep one entry (name, bytes owned): manifest, manifest.sig or a file. */
static int keep(struct bundle *b, const char *name, unsigned char *data, size_t len, char *err,
		size_t errlen)
{
	if (strcmp(name, "manifest") == 0 || strcmp(name, "manifest.sig") == 0) {
		unsigned char **slot = name[8] ? &b->sig : &b->manifest;
		if (*slot) {
			free(data);
			return berr(err, errlen, LINLI_EINVAL, "bundle: %s twice", name);
		}
		*slot = data;
		*(name[8] ? &b->sig_len : &b->manifest_len) = len;
		return 0;
	}
	if (!is_file_name(name, strlen(name))) {
		free(data);
		return berr(err, errlen, LINLI_EINVAL,
			    "bundle: entry '%.100s': not a plain file name of [A-Za-z0-9._-]",
			    name);
	}
	for (int i = 0; i < b->n_files; i++)
		if (strcmp(b->files[i].name, name) == 0) {
			free(data);
			return berr(err, errlen, LINLI_EINVAL, "bundle: %s twice", name);
		}
	if (b->n_files == BUNDLE_MAX_FILES) {
		free(data);
		return berr(err, errlen, LINLI_ELIMIT, "bundle: more than %d files",
			    BUNDLE_MAX_FILES);
	}
	struct bundle_blob *f = &b->files[b->n_files++];
	snprintf(f->name, sizeof f->name, "%s", name);
	f->data = data;
	f->len = len;
	return 0;
}

static int finish_read(struct bundle *b, char *err, size_t errlen)
{
	if (!b->manifest)
		return berr(err, errlen, LINLI_EINVAL, "bundle: no manifest in it");
	if (b->manifest_len > BUNDLE_MANIFEST_MAX)
		return berr(err, errlen, LINLI_E2BIG, "bundle: its manifest is over %u bytes",
			    BUNDLE_MANIFEST_MAX);
	int rc =
	    bundle_manifest_parse((const char *)b->manifest, b->manifest_len, &b->m, err, errlen);
	if (rc)
		return rc;
	for (int i = 0; i < b->n_files; i++) {
		bool listed = false;
		for (int j = 0; j < b->m.n_files && !listed; j++)
			listed = strcmp(b->files[i].name, b->m.files[j].name) == 0;
		if (!listed)
			return berr(err, errlen, LINLI_EINVAL,
				    "bundle: %s is not listed in its manifest", b->files[i].name);
	}
	for (int j = 0; j < b->m.n_files; j++) {
		bool found = false;
		for (int i = 0; i < b->n_files && !found; i++)
			found = strcmp(b->files[i].name, b->m.files[j].name) == 0;
		if (!found)
			return berr(err, errlen, LINLI_EINVAL,
				    "bundle: %s, listed in its manifest, is not in it",
				    b->m.files[j].name);
	}
	return 0;
}

int bundle_read_mem(const void *buf, size_t len, struct bundle *b, char *err, size_t errlen)
{
	memset(b, 0, sizeof *b);
	if (len > BUNDLE_MAX)
		return berr(err, errlen, LINLI_E2BIG, "bundle: %zu bytes, over the limit of %u",
			    len, BUNDLE_MAX);
	struct archive *a = archive_read_new();
	if (!a)
		return LINLI_ENOMEM;
	archive_read_support_format_tar(a);
	archive_read_support_filter_gzip(a);
	int rc = 0;
	if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
		rc = berr(err, errlen, LINLI_EINVAL, "bundle: not a tar archive: %s",
			  archive_error_string(a) ? archive_error_string(a) : "?");
		goto out;
	}
	size_t total = 0;
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		if (!name)
			name = "";
		if (strncmp(name, "./", 2) == 0)
			name += 2;
		mode_t type = archive_entry_filetype(e);
		if (type == AE_IFDIR && (!*name || strcmp(name, ".") == 0))
			continue;
		if (type != AE_IFREG) {
			rc = berr(err, errlen, LINLI_EINVAL,
				  "bundle: entry '%.100s' is not a regular file", name);
			goto out;
		}
		la_int64_t sz = archive_entry_size(e);
		if (sz < 0 || (uint64_t)sz > BUNDLE_MAX - total) {
			rc = berr(err, errlen, LINLI_E2BIG, "bundle: entry '%.100s' too large",
				  name);
			goto out;
		}
		unsigned char *data = malloc((size_t)sz ? (size_t)sz : 1);
		if (!data) {
			rc = LINLI_ENOMEM;
			goto out;
		}
		la_ssize_t got = sz ? archive_read_data(a, data, (size_t)sz) : 0;
		if (got != sz) {
			free(data);
			rc = berr(err, errlen, LINLI_EINVAL, "bundle: entry '%.100s' is truncated",
				  name);
			goto out;
		}
		total += (size_t)sz;
		char nm[BUNDLE_FILE_NAME_MAX + 2];
		if (strlen(name) > BUNDLE_FILE_NAME_MAX) {
			free(data);
			rc = berr(err, errlen, LINLI_EINVAL, "bundle: entry name over %d bytes",
				  BUNDLE_FILE_NAME_MAX);
			goto out;
		}
		snprintf(nm, sizeof nm, "%s", name);
		if ((rc = keep(b, nm, data, (size_t)sz, err, errlen)) != 0)
			goto out;
	}
	if (r != ARCHIVE_EOF) {
		rc = berr(err, errlen, LINLI_EINVAL, "bundle: a malformed tar archive: %s",
			  archive_error_string(a) ? archive_error_string(a) : "?");
		goto out;
	}
	rc = finish_read(b, err, errlen);
out:
	archive_read_free(a);
	if (rc)
		bundle_free(b);
	return rc;
}

static int slurp(const char *path, size_t max, unsigned char **out, size_t *len, char *err,
		 size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return berr(err, errlen, errno == ENOENT ? LINLI_ENOENT : LINLI_EIO,
			    "cannot open %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		close(fd);
		return berr(err, errlen, LINLI_EINVAL, "%s: not a regular file within %zu bytes",
			    path, max);
	}
	size_t n = (size_t)st.st_size, got = 0;
	unsigned char *b = malloc(n ? n : 1);
	if (!b) {
		close(fd);
		return LINLI_ENOMEM;
	}
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(b);
			close(fd);
			return berr(err, errlen, LINLI_EIO, "cannot read %s", path);
		}
		got += (size_t)r;
	}
	close(fd);
	*out = b;
	*len = n;
	return 0;
}

int bundle_read_dir(const char *dir, struct bundle *b, char *err, size_t errlen)
{
	memset(b, 0, sizeof *b);
	DIR *d = opendir(dir);
	if (!d)
		return berr(err, errlen, errno == ENOENT ? LINLI_ENOENT : LINLI_EIO,
			    "bundle %s: %s", dir, strerror(errno));
	int rc = 0;
	size_t total = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		if (name[0] == '.' || strcmp(name, "installed") == 0)
			continue; /* what the node keeps beside (".", "..", staging) */
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, name);
		unsigned char *data = NULL;
		size_t len = 0;
		if ((rc = slurp(path, BUNDLE_MAX - total, &data, &len, err, errlen)) != 0)
			break;
		total += len;
		if ((rc = keep(b, name, data, len, err, errlen)) != 0)
			break;
	}
	closedir(d);
	if (!rc)
		rc = finish_read(b, err, errlen);
	if (rc)
		bundle_free(b);
	return rc;
}

const struct bundle_blob *bundle_plugin(const struct bundle *b)
{
	if (b->m.plugin < 0)
		return NULL;
	for (int i = 0; i < b->n_files; i++)
		if (strcmp(b->files[i].name, b->m.files[b->m.plugin].name) == 0)
			return &b->files[i];
	return NULL;
}

int bundle_verify(const struct bundle *b, const struct bundle_key *keys, int n_keys,
		  bool allow_unsigned, const struct bundle_key **signer, char *err, size_t errlen)
{
	*signer = NULL;
	if (!b->sig) {
		if (!allow_unsigned)
			return berr(err, errlen, LINLI_EPERM,
				    "bundle %s %s is unsigned (no manifest.sig): refused; an admin "
				    "may install it with --unsigned",
				    b->m.name, b->m.version);
	} else {
		uint8_t id[BUNDLE_KEYID_LEN], sig[BUNDLE_SIG_LEN];
		char hex[BUNDLE_KEYID_HEX];
		int rc = bundle_parse_sig((const char *)b->sig, b->sig_len, "manifest.sig", id, sig,
					  err, errlen);
		if (rc && !allow_unsigned)
			return rc;
		const struct bundle_key *k = NULL;
		for (int i = 0; !rc && i < n_keys && !k; i++)
			if (memcmp(keys[i].id, id, BUNDLE_KEYID_LEN) == 0)
				k = &keys[i];
		bundle_hex(id, BUNDLE_KEYID_LEN, hex);
		if (!rc && !k && !allow_unsigned)
			return berr(err, errlen, LINLI_EPERM,
				    "bundle %s %s is signed with key %s, which this node does not "
				    "trust (see 'linli trust list'; 'linli trust add NAME FILE' "
				    "adds a vendor's key)",
				    b->m.name, b->m.version, hex);
		if (k &&
		    crypto_sign_verify_detached(sig, b->manifest, b->manifest_len, k->pk) != 0) {
			if (!allow_unsigned)
				return berr(
				    err, errlen, LINLI_ECORRUPT,
				    "bundle %s %s: its signature does not verify with the "
				    "trusted key '%s' (%s): the manifest was altered or signed "
				    "with another key",
				    b->m.name, b->m.version, k->name, hex);
			k = NULL;
		}
		*signer = k;
	}
	for (int j = 0; j < b->m.n_files; j++) {
		const struct bundle_file *f = &b->m.files[j];
		const struct bundle_blob *blob = NULL;
		for (int i = 0; i < b->n_files && !blob; i++)
			if (strcmp(b->files[i].name, f->name) == 0)
				blob = &b->files[i];
		if (!blob)
			return berr(err, errlen, LINLI_EINVAL, "bundle: %s is missing", f->name);
		if (blob->len != f->size)
			return berr(
			    err, errlen, LINLI_ECORRUPT,
			    "bundle %s %s: %s has %zu bytes, its manifest says %llu: refused",
			    b->m.name, b->m.version, f->name, blob->len,
			    (unsigned long long)f->size);
		uint8_t h[BUNDLE_HASH_LEN];
		bundle_hash(blob->data, blob->len, h);
		if (memcmp(h, f->hash, BUNDLE_HASH_LEN) != 0)
			return berr(err, errlen, LINLI_ECORRUPT,
				    "bundle %s %s: %s differs from its manifest (BLAKE2b-256 "
				    "mismatch: a changed byte?): refused",
				    b->m.name, b->m.version, f->name);
	}
	return 0;
}

int bundle_version_cmp(const char *a, const char *b)
{
	while (*a || *b) {
		if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
			while (*a == '0' && a[1] >= '0' && a[1] <= '9')
				a++;
			while (*b == '0' && b[1] >= '0' && b[1] <= '9')
				b++;
			size_t na = strspn(a, "0123456789"), nb = strspn(b, "0123456789");
			if (na != nb)
				return na < nb ? -1 : 1;
			int c = strncmp(a, b, na);
			if (c)
				return c;
			a += na;
			b += nb;
			continue;
		}
		if (*a != *b) {
			/* a part that ends sorts first: "1.0" < "1.0.1"; a '.' before a letter */
			if (!*a)
				return -1;
			if (!*b)
				return 1;
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		}
		a++;
		b++;
	}
	return 0;
}
