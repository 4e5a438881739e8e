/*
 * trust — see trust.h.
 */
#include "trust.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "tier_store.h"
#include "util.h"

#define TRUST_MAX_KEYS 64

struct trust {
	struct kernel *k;
	char path[PATH_MAX];
	struct bundle_key keys[TRUST_MAX_KEYS];
	int n;
};

static int hex_in(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static void load(struct trust *t)
{
	FILE *f = fopen(t->path, "re");
	if (!f)
		return;
	char line[512];
	int lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		char name[64], id[64], pk[128];
		struct bundle_key k;
		memset(&k, 0, sizeof k);
		uint8_t want[BUNDLE_KEYID_LEN];
		if (sscanf(line, "%63s %63s %127s", name, id, pk) != 3 ||
		    !bundle_key_name_ok(name) || hex_in(id, k.id, sizeof k.id) ||
		    hex_in(pk, k.pk, sizeof k.pk) ||
		    (bundle_key_id(k.pk, want), memcmp(want, k.id, sizeof want) != 0) ||
		    t->n == TRUST_MAX_KEYS) {
			log_warn("trust", "%s:%d: not 'NAME KEYID PUBLIC-KEY' of a key; ignored",
				 t->path, lineno);
			continue;
		}
		snprintf(k.name, sizeof k.name, "%s", name);
		t->keys[t->n++] = k;
	}
	fclose(f);
}

static int save(struct trust *t, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return errf(err, errlen, LINLI_ENOMEM, "out of memory");
	fprintf(f, "# keys this node trusts for bundles ('linli trust add|remove'): "
		   "NAME KEYID PUBLIC-KEY\n");
	for (int i = 0; i < t->n; i++) {
		char id[BUNDLE_KEYID_HEX], pk[2 * BUNDLE_PK_LEN + 1];
		bundle_hex(t->keys[i].id, BUNDLE_KEYID_LEN, id);
		bundle_hex(t->keys[i].pk, BUNDLE_PK_LEN, pk);
		fprintf(f, "%s %s %s\n", t->keys[i].name, id, pk);
	}
	int rc = fclose(f) ? errf(err, errlen, LINLI_ENOMEM, "out of memory")
			   : write_file_atomic(t->path, text, len, 0640, err, errlen);
	free(text);
	return rc;
}

static struct bundle_key *find(struct trust *t, const char *name)
{
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->keys[i].name, name) == 0)
			return &t->keys[i];
	return NULL;
}

static void pack_key(msgpack_packer *pk, const struct bundle_key *k)
{
	char id[BUNDLE_KEYID_HEX];
	bundle_hex(k->id, BUNDLE_KEYID_LEN, id);
	msgpack_pack_map(pk, 2);
	mp_kv_str(pk, "name", k->name);
	mp_kv_str(pk, "key_id", id);
}

static int cmd_add(struct cmd_call *call, void *ud)
{
	struct trust *t = ud;
	if (call->argc != 3 || !call->input)
		return cmd_fail(call, LINLI_EINVAL,
				"usage: trust add NAME PUBLIC-KEY-FILE (or --stdin with the key's "
				"text)");
	const char *name = call->argv[2];
	if (!bundle_key_name_ok(name))
		return cmd_fail(
		    call, LINLI_EINVAL,
		    "trust add: key name '%.64s': [a-z0-9][a-z0-9_.-]*, at most %d bytes", name,
		    BUNDLE_KEY_NAME_MAX - 1);
	struct bundle_key k;
	memset(&k, 0, sizeof k);
	int rc = bundle_parse_pub(call->input, call->input_len, "trust add: the key", k.id, k.pk,
				  call->err, sizeof call->err);
	if (rc)
		return rc;
	snprintf(k.name, sizeof k.name, "%s", name);
	char id[BUNDLE_KEYID_HEX];
	bundle_hex(k.id, BUNDLE_KEYID_LEN, id);
	if (find(t, name))
		return cmd_fail(call, LINLI_EEXIST,
				"trust add: a key named '%s' is trusted already ('trust remove %s' "
				"first)",
				name, name);
	for (int i = 0; i < t->n; i++)
		if (memcmp(t->keys[i].id, k.id, BUNDLE_KEYID_LEN) == 0)
			return cmd_fail(call, LINLI_EEXIST,
					"trust add: key %s is trusted already, as '%s'", id,
					t->keys[i].name);
	if (t->n == TRUST_MAX_KEYS)
		return cmd_fail(call, LINLI_ELIMIT, "trust add: %d keys are trusted already",
				TRUST_MAX_KEYS);
	t->keys[t->n++] = k;
	if ((rc = save(t, call->err, sizeof call->err)) != 0) {
		t->n--;
		return rc;
	}
	char object[64], detail[64];
	snprintf(object, sizeof object, "key:%s", name);
	snprintf(detail, sizeof detail, "key id %s", id);
	tiers_audit(call->k, call->who, "trust.add", call->k->cfg.node_path, object, "allowed",
		    detail);
	log_info("trust", "%s trusts key %s (%s) from now on",
		 call->who && call->who->name ? call->who->name : "-", name, id);
	pack_key(&call->pk, &k);
	return 0;
}

static int cmd_list(struct cmd_call *call, void *ud)
{
	struct trust *t = ud;
	if (call->argc != 2)
		return cmd_fail(call, LINLI_EINVAL, "usage: trust list");
	msgpack_pack_array(&call->pk, (size_t)t->n);
	for (int i = 0; i < t->n; i++)
		pack_key(&call->pk, &t->keys[i]);
	return 0;
}

static int cmd_remove(struct cmd_call *call, void *ud)
{
	struct trust *t = ud;
	if (call->argc != 3)
		return cmd_fail(call, LINLI_EINVAL, "usage: trust remove NAME");
	struct bundle_key *k = find(t, call->argv[2]);
	if (!k)
		return cmd_fail(call, LINLI_ENOENT,
				"trust remove: no key named '%.64s'; see 'trust "
				"list'",
				call->argv[2]);
	struct bundle_key gone = *k;
	*k = t->keys[--t->n];
	int rc = save(t, call->err, sizeof call->err);
	if (rc) {
		t->keys[t->n++] = gone;
		return rc;
	}
	char id[BUNDLE_KEYID_HEX], object[64], detail[64];
	bundle_hex(gone.id, BUNDLE_KEYID_LEN, id);
	snprintf(object, sizeof object, "key:%s", gone.name);
	snprintf(detail, sizeof detail, "key id %s", id);
	tiers_audit(call->k, call->who, "trust.remove", call->k->cfg.node_path, object, "allowed",
		    detail);
	log_info("trust", "%s removed key %s (%s): it verifies nothing from now on",
		 call->who && call->who->name ? call->who->name : "-", gone.name, id);
	pack_key(&call->pk, &gone);
	return 0;
}

struct trust *trust_open(struct kernel *k, char *err, size_t errlen)
{
	if (bundle_crypto_init() != 0) {
		errf(err, errlen, LINLI_EIO, "libsodium did not initialise");
		return NULL;
	}
	struct trust *t = calloc(1, sizeof *t);
	if (!t) {
		errf(err, errlen, LINLI_ENOMEM, "out of memory");
		return NULL;
	}
	t->k = k;
	snprintf(t->path, sizeof t->path, "%s/trusted.keys", k->cfg.data_dir);
	load(t);
	static const struct {
		const char *sub, *usage, *summary;
		cmd_fn fn;
	} cmds[] = {
	    {"add", "NAME PUBLIC-KEY-FILE|--stdin",
	     "trust a vendor's signing key for bundles (audited)", cmd_add},
	    {"list", "", "the keys bundles may be signed with: name, key id", cmd_list},
	    {"remove", "NAME", "stop trusting a key: it verifies nothing from now on (audited)",
	     cmd_remove},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		int rc = cmd_register(k->cmds, "trust", cmds[i].sub, cmds[i].usage, cmds[i].summary,
				      cmds[i].fn, t, t);
		if (rc) {
			errf(err, errlen, rc, "cannot register 'trust %s': %s", cmds[i].sub,
			     linli_strerror(rc));
			trust_close(t);
			return NULL;
		}
	}
	return t;
}

void trust_close(struct trust *t)
{
	if (!t)
		return;
	if (t->k->cmds)
		cmd_unregister_owner(t->k->cmds, t);
	free(t);
}

int trust_keys(const struct trust *t, const struct bundle_key **keys)
{
	*keys = t ? t->keys : NULL;
	return t ? t->n : 0;
}
