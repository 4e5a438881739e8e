/*
 * bundle_cat — the datasets bundles bring, on the node (bundle_cat.h).
 */
#include "bundle_cat.h"

#include <dirent.h>
#include <msgpack.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "catalog.h"
#include "hal.h"
#include "json.h"
#include "mp.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define FILE_MAX (1u << 20) /* a dataset file, bytes */

/* The whole of `path` (NUL-terminated), at most max bytes; NULL with errno. */
static char *slurp(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(max + 1);
	size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
	int bad = !buf || ferror(f) || n > max;
	fclose(f);
	if (bad) {
		free(buf);
		errno = buf ? EFBIG : ENOMEM;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* The whole mark file `path` into out ("" when absent or too long for out). */
static void read_mark(const char *path, char *out, size_t len)
{
	size_t n = 0;
	char *s = slurp(path, len - 1, &n);
	snprintf(out, len, "%s", s ? s : "");
	free(s);
}

struct frags {
	struct cat_fragment *v;
	char **texts, **labels;
	int n, cap;
};

static void frags_free(struct frags *f)
{
	for (int i = 0; i < f->n; i++) {
		free(f->texts[i]);
		free(f->labels[i]);
	}
	free(f->v);
	free(f->texts);
	free(f->labels);
	memset(f, 0, sizeof *f);
}

/* Add the dataset files of the bundle in version dir vdir (its manifest's `dataset` lines);
   `only` non-NULL: that one file alone (a dataset file of the manifest, else an error). */
static int frags_add(struct frags *f, const char *vdir, const char *only, char *err,
		     size_t errlen)
{
	char path[PATH_MAX + 128];
	snprintf(path, sizeof path, "%s/manifest", vdir);
	size_t mlen = 0;
	char *mtext = slurp(path, BUNDLE_MANIFEST_MAX, &mlen);
	if (!mtext) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return LINLI_EIO;
	}
	struct bundle_manifest m;
	int rc = bundle_manifest_parse(mtext, mlen, &m, err, errlen);
	free(mtext);
	bool found = false;
	for (int i = 0; !rc && i < m.n_files; i++) {
		const struct bundle_file *bf = &m.files[i];
		if ((!bf->dataset && !bf->device) || (only && strcmp(bf->name, only) != 0))
			continue;
		found = true;
		if (f->n == f->cap) {
			int cap = f->cap ? f->cap * 2 : 8;
			struct cat_fragment *v = realloc(f->v, (size_t)cap * sizeof *v);
			if (v)
				f->v = v;
			char **t = v ? realloc(f->texts, (size_t)cap * sizeof *t) : NULL;
			if (t)
				f->texts = t;
			char **l = t ? realloc(f->labels, (size_t)cap * sizeof *l) : NULL;
			if (!l) {
				snprintf(err, errlen, "out of memory");
				return LINLI_ENOMEM;
			}
			f->labels = l;
			f->cap = cap;
		}
		snprintf(path, sizeof path, "%s/%s", vdir, bf->name);
		size_t len = 0;
		char *text = slurp(path, FILE_MAX, &len);
		if (!text) {
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			return LINLI_EIO;
		}
		uint8_t h[BUNDLE_HASH_LEN];
		bundle_hash(text, len, h);
		if (len != bf->size || memcmp(h, bf->hash, sizeof h) != 0) {
			free(text);
			snprintf(err, errlen, "%s differs from its manifest (size or BLAKE2b-256)",
				 path);
			return LINLI_ECORRUPT;
		}
		char label[LINLI_NAME_MAX + BUNDLE_FILE_NAME_MAX + 2];
		snprintf(label, sizeof label, "%s/%s", m.name, bf->name);
		char *lab = strdup(label);
		if (!lab) {
			free(text);
			snprintf(err, errlen, "out of memory");
			return LINLI_ENOMEM;
		}
		f->texts[f->n] = text;
		f->labels[f->n] = lab;
		f->v[f->n] = (struct cat_fragment){NULL, lab, text, len, bf->device};
		f->n++;
	}
	if (!rc && only && !found) {
		snprintf(err, errlen, "%s/manifest: no catalog fragment '%s'", vdir, only);
		return LINLI_ECORRUPT;
	}
	return rc;
}

/*
 * Add the files a mark names: its first line VERSION (every dataset file of NAME/VERSION),
 * then lines "VERSION FILE" (one dataset file a rollback kept from another version).
 * *ver: the first version, for messages.
 */
static int frags_mark(struct frags *f, const char *bundles, const char *name, const char *mark,
		      char *ver, size_t verlen, char *err, size_t errlen)
{
	ver[0] = '\0';
	int rc = 0;
	for (const char *s = mark; !rc && *s;) {
		size_t n = strcspn(s, "\n");
		char line[256], v[64], file[BUNDLE_FILE_NAME_MAX + 1], dir[PATH_MAX + 128];
		snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1),
			 s);
		s += n + (s[n] == '\n');
		int k = sscanf(line, "%63s %100s", v, file);
		if (k <= 0)
			continue;
		if (!ver[0]) {
			snprintf(ver, verlen, "%s", v);
			k = 1;
		} else if (k != 2) {
			snprintf(err, errlen, "%s/%s/catalog: '%s': not VERSION FILE", bundles,
				 name, line);
			return LINLI_ECORRUPT;
		}
		if (strchr(v, '/') || v[0] == '.' || (k == 2 && strchr(file, '/'))) {
			snprintf(err, errlen, "%s/%s/catalog: '%s': not a version", bundles, name,
				 line);
			return LINLI_ECORRUPT;
		}
		snprintf(dir, sizeof dir, "%s/%s/%s", bundles, name, v);
		rc = frags_add(f, dir, k == 2 ? file : NULL, err, errlen);
	}
	return rc;
}

/* The namespace of the fragments from `from` on: the bundle's name (owned by the caller). */
static void frags_ns(struct frags *f, int from, const char *ns)
{
	for (int i = from; i < f->n; i++)
		f->v[i].ns = ns;
}

int bundle_cat_build(const struct catalog *base, const char *bundles, const char *name,
		     const char *mark, uint64_t version, bool strict, struct catalog **out,
		     char *err, size_t errlen)
{
	*out = NULL;
	struct frags f = {0};
	struct dirent **ents = NULL;
	int n = scandir(bundles, &ents, NULL, alphasort);
	if (n < 0)
		n = 0; /* no bundles yet */
	char (*names)[LINLI_NAME_MAX] = calloc((size_t)n + 1, sizeof *names);
	int rc = names ? 0 : LINLI_ENOMEM, n_names = 0;
	for (int i = 0; !rc && i <= n; i++) {
		char path[PATH_MAX + 128], ver[64] = "";
		const char *bn;
		char *text = NULL;
		if (i < n) {
			bn = ents[i]->d_name;
			if (bn[0] == '.' || (name && strcmp(bn, name) == 0) ||
			    strlen(bn) >= LINLI_NAME_MAX)
				continue;
			snprintf(path, sizeof path, "%s/%s/catalog", bundles, bn);
			size_t len = 0;
			if (!(text = slurp(path, 4096, &len)))
				continue;
		} else if (!name || !mark || !mark[0]) {
			break;
		} else {
			bn = name;
		}
		snprintf(names[n_names], sizeof names[0], "%s", bn);
		int from = f.n;
		char e[1024];
		int r = frags_mark(&f, bundles, bn, text ? text : mark, ver, sizeof ver, e,
				   sizeof e);
		free(text);
		frags_ns(&f, from, names[n_names]);
		if (!r && f.n > from) { /* each bundle checked alone: namespaces cannot meet */
			struct catalog *one = NULL;
			r = catalog_with_datasets(base, f.v + from, f.n - from, version, &one, e,
						  sizeof e);
			catalog_unref(one);
		}
		n_names++;
		if (!r)
			continue;
		if (strict || i == n) {
			snprintf(err, errlen, "bundle %s %s: %s", bn, ver, e);
			rc = r;
			break;
		}
		log_error("catalog", "bundle %s %s: %s: its datasets are left out of the catalog",
			  bn, ver, e);
		for (int j = from; j < f.n; j++) {
			free(f.texts[j]);
			free(f.labels[j]);
		}
		f.n = from;
	}
	if (!rc && f.n == 0)
		*out = (struct catalog *)catalog_ref(base);
	else if (!rc)
		rc = catalog_with_datasets(base, f.v, f.n, version, out, err, errlen);
	if (rc == LINLI_ENOMEM)
		snprintf(err, errlen, "catalog: out of memory");
	frags_free(&f);
	free(names);
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return rc;
}

int bundle_cat_swap(struct kernel *k, struct catalog *next, char *err, size_t errlen)
{
	if (k->store) {
		int rc = store_swap_catalog(k->store, next, err, errlen);
		if (rc)
			return rc;
	}
	struct catalog *old = k->catalog;
	k->catalog = (struct catalog *)catalog_ref(next);
	catalog_unref(old);
	return 0;
}

static const struct catalog *base_of(const struct catalog *c)
{
	return c->base ? c->base : c;
}

/* Is `full` in bundle `name`'s namespace (NAME CAT_NS_SEP ...)? */
static bool in_ns(const char *full, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(full, name, n) && !strncmp(full + n, CAT_NS_SEP, strlen(CAT_NS_SEP));
}

/* Does the catalog hold datasets or device classes of bundle `name`? */
static bool holds(const struct catalog *c, const char *name)
{
	for (int i = base_of(c)->n_datasets; i < c->n_datasets; i++)
		if (in_ns(c->datasets[i].name, name))
			return true;
	for (int i = base_of(c)->n_classes; i < c->n_classes; i++)
		if (in_ns(c->classes[i].name, name))
			return true;
	return false;
}

/* Does version dir vdir's manifest name a dataset? */
static bool brings(const char *vdir)
{
	struct frags f = {0};
	char e[512];
	bool yes = frags_add(&f, vdir, NULL, e, sizeof e) != 0 || f.n > 0; /* a fault: let build say */
	frags_free(&f);
	return yes;
}

/* One --migrate DATASET.FIELD=drop|DATASET.FIELD=default:VALUE, parsed. */
struct mig {
	char ds[CAT_NAME_MAX + 1]; /* the full name: NAME__DATASET */
	char field[CAT_NAME_MAX + 1];
	const char *text; /* as given, for messages */
	msgpack_sbuffer val; /* the default's MessagePack; empty: drop */
	bool drop, used;
};

static int parse_migs(const char *name, const char *const *spec, int n, struct mig *m, char *err,
		      size_t errlen)
{
	for (int i = 0; i < n; i++) {
		const char *s = spec[i], *dot = strchr(s, '.'), *eq = strchr(s, '=');
		m[i].text = s;
		if (!dot || !eq || eq < dot || dot == s || eq == dot + 1 ||
		    (size_t)(dot - s) + strlen(name) + strlen(CAT_NS_SEP) > CAT_NAME_MAX ||
		    (size_t)(eq - dot - 1) > CAT_NAME_MAX ||
		    (strcmp(eq + 1, "drop") != 0 && strncmp(eq + 1, "default:", 8) != 0)) {
			snprintf(err, errlen,
				 "--migrate %s: not DATASET.FIELD=drop or DATASET.FIELD=default:VALUE "
				 "(DATASET as the bundle names it, e.g. visits.note=drop)",
				 s);
			return LINLI_EINVAL;
		}
		snprintf(m[i].ds, sizeof m[i].ds, "%s" CAT_NS_SEP "%.*s", name, (int)(dot - s), s);
		snprintf(m[i].field, sizeof m[i].field, "%.*s", (int)(eq - dot - 1), dot + 1);
		m[i].drop = strcmp(eq + 1, "drop") == 0;
		if (!m[i].drop) { /* JSON when it is JSON (42, true, "x"), else the text itself */
			const char *v = eq + 9;
			msgpack_packer pk;
			msgpack_packer_init(&pk, &m[i].val, msgpack_sbuffer_write);
			char jerr[128];
			if (json_parse_to_mp(v, strlen(v), &pk, jerr, sizeof jerr) != 0) {
				m[i].val.size = 0;
				mp_str(&pk, v);
			}
		}
	}
	return 0;
}

static struct mig *find_mig(struct mig *m, int n, const char *ds, const char *field)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(m[i].ds, ds) && !strcmp(m[i].field, field))
			return &m[i];
	return NULL;
}

/* The short name of a bundle's dataset: what follows the separator. */
static const char *short_name(const char *full)
{
	const char *s = strstr(full, CAT_NS_SEP);
	return s ? s + strlen(CAT_NS_SEP) : full;
}

/*
 * An upgrade of bundle `name` from the datasets `cur` holds to those of `next`: new fields
 * and datasets pass; a dataset left out, a field removed or retyped is refused, naming it,
 * unless a migration says what the records get. Marks the migrations used.
 */
static int check_upgrade(const struct catalog *cur, const struct catalog *next, const char *name,
			 struct mig *m, int nm, char *err, size_t errlen)
{
	size_t nl = strlen(name);
	for (int i = base_of(cur)->n_datasets; i < cur->n_datasets; i++) {
		const struct cat_dataset *d = &cur->datasets[i];
		if (strncmp(d->name, name, nl) || strncmp(d->name + nl, CAT_NS_SEP, strlen(CAT_NS_SEP)))
			continue;
		const struct cat_dataset *nd = catalog_dataset(next, d->name);
		const char *sn = short_name(d->name);
		if (!nd) {
			snprintf(err, errlen,
				 "the new version of %s no longer brings dataset '%s' (%s), which "
				 "holds records: refused ('plugins remove %s --purge' drops them)",
				 name, sn, d->name, name);
			return LINLI_EINVAL;
		}
		if (d->restricted && !nd->restricted) {
			snprintf(err, errlen,
				 "dataset '%s' (%s) is no longer restricted in the new version: "
				 "refused",
				 sn, d->name);
			return LINLI_EPERM;
		}
		for (int f = 0; f < d->n_fields; f++) {
			const struct cat_field *of = &d->fields[f];
			const struct cat_field *nf = cat_dataset_field(nd, of->name, strlen(of->name));
			struct mig *g = find_mig(m, nm, d->name, of->name);
			if (!nf && (!g || !g->drop)) {
				snprintf(err, errlen,
					 "field '%s.%s' (%s) is removed in the new version: refused; "
					 "--migrate %s.%s=drop drops it from the stored records",
					 sn, of->name, d->name, sn, of->name);
				return LINLI_EINVAL;
			}
			if (nf && nf->type != of->type && !g) {
				snprintf(err, errlen,
					 "field '%s.%s' (%s) changes type from %s to %s in the new "
					 "version: refused; --migrate %s.%s=drop or "
					 "%s.%s=default:VALUE says what the stored records get",
					 sn, of->name, d->name, cat_type_name(of->type),
					 cat_type_name(nf->type), sn, of->name, sn, of->name);
				return LINLI_EINVAL;
			}
			if (nf && of->sensitive != CAT_SENS_NONE && nf->sensitive == CAT_SENS_NONE) {
				snprintf(err, errlen,
					 "field '%s.%s' (%s) loses its sensitive mark in the new "
					 "version: refused (its personal data would be shown in clear)",
					 sn, of->name, d->name);
				return LINLI_EPERM;
			}
			if (g && (!nf || nf->type != of->type))
				g->used = true;
		}
	}
	for (int i = base_of(cur)->n_classes; i < cur->n_classes; i++)
		if (in_ns(cur->classes[i].name, name) &&
		    !catalog_device_class(next, cur->classes[i].name)) {
			snprintf(err, errlen,
				 "the new version of %s no longer brings device class '%s' (%s): "
				 "refused (devices may use it; 'plugins remove %s --purge' drops "
				 "it)",
				 name, short_name(cur->classes[i].name), cur->classes[i].name,
				 name);
			return LINLI_EINVAL;
		}
	for (int i = 0; i < nm; i++)
		if (!m[i].used) {
			snprintf(err, errlen,
				 "--migrate %s: no field of that name is removed or retyped by the "
				 "new version",
				 m[i].text);
			return LINLI_EINVAL;
		}
	return 0;
}

/* Rewrite the records of each dataset a migration names, for next's schema. */
static int run_migs(struct kernel *k, const struct catalog *next, struct mig *m, int nm,
		    uint64_t *records, char *err, size_t errlen)
{
	*records = 0;
	for (int i = 0; i < nm; i++) {
		bool first = true;
		for (int j = 0; j < i; j++)
			first = first && strcmp(m[j].ds, m[i].ds) != 0;
		if (!first || !k->store)
			continue;
		struct store_migration sm[BUNDLE_MAX_FILES * 8];
		int n = 0;
		for (int j = i; j < nm && n < (int)(sizeof sm / sizeof sm[0]); j++)
			if (!strcmp(m[j].ds, m[i].ds))
				sm[n++] = (struct store_migration){m[j].field,
								   m[j].drop ? NULL : m[j].val.data,
								   m[j].val.size};
		uint64_t c = 0;
		int rc = store_migrate(k->store, catalog_dataset(next, m[i].ds), sm, n, &c, err,
				       errlen);
		if (rc)
			return rc;
		*records += c;
	}
	return 0;
}

/*
 * Every stored record of the bundle's other datasets must fit the new schema (a
 * field made required, values or bounds narrowed): checked, refused naming the
 * record and the field, else normalised in one transaction (store_migrate with
 * nothing to migrate). Those a migration named were checked by it.
 */
static int check_fit(struct kernel *k, const struct catalog *next, const char *name,
		     const struct mig *m, int nm, char *err, size_t errlen)
{
	for (int i = base_of(next)->n_datasets; k->store && i < next->n_datasets; i++) {
		const struct cat_dataset *nd = &next->datasets[i];
		if (!in_ns(nd->name, name) || !catalog_dataset(k->catalog, nd->name))
			continue;
		bool migrated = false;
		for (int j = 0; j < nm && !migrated; j++)
			migrated = strcmp(m[j].ds, nd->name) == 0;
		if (migrated)
			continue;
		uint64_t c = 0;
		char e[768];
		int rc = store_migrate(k->store, nd, NULL, 0, &c, e, sizeof e);
		if (rc) {
			snprintf(err, errlen,
				 "the new version's schema does not accept the stored records: %s "
				 "(refused: a field it adds must be optional, its bounds must hold "
				 "the stored values)",
				 e);
			return rc;
		}
	}
	return 0;
}

int bundle_cat_apply(struct kernel *k, const char *bundles, const char *name, const char *vdir,
		     const char *const *migrate, int n_migrate, char *prev, size_t prevlen,
		     char *err, size_t errlen)
{
	char mark[PATH_MAX + 128];
	snprintf(mark, sizeof mark, "%s/%s/catalog", bundles, name);
	read_mark(mark, prev, prevlen);
	bool in = vdir && brings(vdir);
	const char *sl = vdir ? strrchr(vdir, '/') : NULL;
	char ver[64];
	snprintf(ver, sizeof ver, "%s", !vdir ? "" : sl ? sl + 1 : vdir);
	if (!in && !holds(k->catalog, name) && n_migrate <= 0) {
		if (!vdir && unlink(mark) != 0 && errno != ENOENT)
			log_warn("catalog", "cannot remove %s: %s", mark, strerror(errno));
		return 0;
	}
	struct catalog *next;
	int rc = bundle_cat_build(base_of(k->catalog), bundles, name, in ? ver : NULL,
				  k->catalog->version + 1, true, &next, err, errlen);
	if (rc)
		return rc;
	int nm = n_migrate > 0 ? n_migrate : 0;
	struct mig *m = calloc((size_t)nm + 1, sizeof *m);
	uint64_t migrated = 0;
	if (!m)
		rc = LINLI_ENOMEM;
	for (int i = 0; m && i < nm; i++)
		msgpack_sbuffer_init(&m[i].val);
	if (!rc)
		rc = parse_migs(name, migrate, nm, m, err, errlen);
	/* an upgrade (the catalog holds its datasets) or an install over kept data; not a purge */
	if (!rc && vdir)
		rc = check_upgrade(k->catalog, next, name, m, nm, err, errlen);
	if (!rc && vdir)
		rc = run_migs(k, next, m, nm, &migrated, err, errlen);
	if (!rc && vdir)
		rc = check_fit(k, next, name, m, nm, err, errlen);
	for (int i = 0; m && i < nm; i++)
		msgpack_sbuffer_destroy(&m[i].val);
	free(m);
	if (!rc)
		rc = bundle_cat_swap(k, next, err, errlen);
	catalog_unref(next);
	if (rc)
		return rc;
	if (migrated)
		log_info("catalog", "bundle %s: %llu records migrated", name,
			 (unsigned long long)migrated);
	if (in) {
		char line[80];
		snprintf(line, sizeof line, "%s\n", ver);
		if ((rc = write_file_atomic(mark, line, strlen(line), 0640, err, errlen)) != 0) {
			bundle_cat_restore(k, bundles, name, prev);
			return rc;
		}
	} else if (unlink(mark) != 0 && errno != ENOENT)
		log_warn("catalog", "cannot remove %s: %s", mark, strerror(errno));
	log_info("catalog", "bundle %s: %s; catalog version %llu (%d datasets)", name,
		 in ? "its datasets are in the catalog" : "its datasets left the catalog",
		 (unsigned long long)k->catalog->version, k->catalog->n_datasets);
	return 0;
}

void bundle_cat_restore(struct kernel *k, const char *bundles, const char *name,
			const char *prev)
{
	if (!prev[0] && !holds(k->catalog, name))
		return; /* bundle_cat_apply did nothing */
	char mark[PATH_MAX + 128], err[1024];
	snprintf(mark, sizeof mark, "%s/%s/catalog", bundles, name);
	struct catalog *next;
	int rc = bundle_cat_build(base_of(k->catalog), bundles, name, prev,
				  k->catalog->version + 1, false, &next, err, sizeof err);
	if (!rc) {
		rc = bundle_cat_swap(k, next, err, sizeof err);
		catalog_unref(next);
	}
	if (!rc && prev[0])
		rc = write_file_atomic(mark, prev, strlen(prev), 0640, err, sizeof err);
	else if (!rc)
		unlink(mark);
	if (rc)
		log_error("catalog", "bundle %s: the catalog could not be put back: %s", name,
			  err);
}

/* The version dir and file a dataset of the catalog came from, by the mark that put it in. */
static void source_of(const char *mark, const char *label, char *ver, size_t verlen, char *file,
		      size_t filelen)
{
	const char *b = strrchr(label, '/');
	snprintf(file, filelen, "%s", b ? b + 1 : label);
	ver[0] = '\0';
	bool first = true;
	for (const char *s = mark; *s;) {
		size_t n = strcspn(s, "\n");
		char line[256], v[64], f[BUNDLE_FILE_NAME_MAX + 1];
		snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1),
			 s);
		s += n + (s[n] == '\n');
		int k = sscanf(line, "%63s %100s", v, f);
		if (k <= 0)
			continue;
		if (first || (k == 2 && !strcmp(f, file)))
			snprintf(ver, verlen, "%s", v);
		first = false;
	}
}

int bundle_cat_rollback(struct kernel *k, const char *bundles, const char *name,
			const char *version, char *prev, size_t prevlen, char *err, size_t errlen)
{
	char mark[PATH_MAX + 128], vdir[PATH_MAX + 128];
	snprintf(mark, sizeof mark, "%s/%s/catalog", bundles, name);
	snprintf(vdir, sizeof vdir, "%s/%s/%s", bundles, name, version);
	read_mark(mark, prev, prevlen);
	if (!brings(vdir) && !holds(k->catalog, name))
		return 0;
	/* the previous version's datasets, then those of the newer it lacks: kept, as remove
	   keeps them, with their records */
	char text[BUNDLE_CAT_MARK_MAX];
	size_t tl = (size_t)snprintf(text, sizeof text, "%s\n", version);
	struct catalog *only;
	int rc = bundle_cat_build(base_of(k->catalog), bundles, name, text,
				  k->catalog->version + 1, true, &only, err, errlen);
	if (rc)
		return rc;
	const struct catalog *cur = k->catalog;
	int kept = 0;
	int nd = cur->n_datasets - base_of(cur)->n_datasets;
	for (int i = 0; i < nd + cur->n_classes - base_of(cur)->n_classes && tl < sizeof text;
	     i++) {
		const struct cat_dataset *d =
		    i < nd ? &cur->datasets[base_of(cur)->n_datasets + i] : NULL;
		const struct cat_device_class *dc =
		    d ? NULL : &cur->classes[base_of(cur)->n_classes + i - nd];
		const char *full = d ? d->name : dc->name;
		bool there = d ? catalog_dataset(only, full) != NULL
			       : catalog_device_class(only, full) != NULL;
		if (!in_ns(full, name) || there)
			continue;
		char v[64], file[BUNDLE_FILE_NAME_MAX + 1];
		source_of(prev, d ? d->file : dc->file, v, sizeof v, file, sizeof file);
		tl += (size_t)snprintf(text + tl, sizeof text - tl, "%s %s\n", v, file);
		kept++;
	}
	catalog_unref(only);
	if (tl >= sizeof text) {
		snprintf(err, errlen, "bundle %s: too many datasets kept for its catalog mark", name);
		return LINLI_EINVAL;
	}
	struct catalog *next;
	if ((rc = bundle_cat_build(base_of(cur), bundles, name, text, cur->version + 1, true, &next,
				   err, errlen)))
		return rc;
	/* The records stay as they are (a field the newer version added stays in them): the
	   previous version's schema must accept every one, or the rollback is refused naming the
	   record and the field (store_migrate with nothing to migrate: a check, then the
	   records normalised for that schema in one transaction). */
	for (int i = base_of(next)->n_datasets; !rc && k->store && i < next->n_datasets; i++) {
		const struct cat_dataset *nd = &next->datasets[i];
		if (!catalog_dataset(cur, nd->name))
			continue;
		uint64_t c = 0;
		char e[768];
		if ((rc = store_migrate(k->store, nd, NULL, 0, &c, e, sizeof e)))
			snprintf(err, errlen,
				 "version %s's schema does not accept the stored records: %s "
				 "(the rollback would leave them so: refused)",
				 version, e);
	}
	if (!rc)
		rc = bundle_cat_swap(k, next, err, errlen);
	catalog_unref(next);
	if (!rc && (rc = write_file_atomic(mark, text, strlen(text), 0640, err, errlen)) != 0)
		bundle_cat_restore(k, bundles, name, prev);
	if (!rc)
		log_info("catalog",
			 "bundle %s: version %s's datasets are in the catalog (%d kept from the newer); "
			 "catalog version %llu",
			 name, version, kept, (unsigned long long)k->catalog->version);
	return rc;
}

int bundle_cat_in_use(struct kernel *k, const char *name, char *err, size_t errlen)
{
	if (!k->hal)
		return 0;
	struct hal_dev **v = NULL;
	int n = hal_list(k->hal, NULL, &v);
	if (n < 0)
		return n;
	int used = 0;
	size_t o = 0;
	char list[512] = "";
	for (int i = 0; i < n; i++) {
		const struct cat_device_class *c = hal_dev_class(v[i]);
		if (!in_ns(c->name, name))
			continue;
		if (used++ < 8 && o + 1 < sizeof list)
			o += (size_t)snprintf(list + o, sizeof list - o, "%s%s (%s)", o ? ", " : "",
					      hal_dev_id(v[i]), c->name);
	}
	free(v);
	if (used)
		snprintf(err, errlen,
			 "%d device%s use%s %s's device classes: %s%s; 'devices remove ID' them "
			 "first (or remove without --purge: the classes stay)",
			 used, used == 1 ? "" : "s", used == 1 ? "s" : "", name, list,
			 used > 8 ? ", ..." : "");
	return used ? LINLI_EBUSY : 0;
}

int bundle_cat_purge(struct kernel *k, const char *bundles, const char *name, int *datasets,
		     uint64_t *records, char *err, size_t errlen)
{
	*datasets = 0;
	*records = 0;
	const struct catalog *c = catalog_ref(k->catalog);
	size_t nl = strlen(name);
	char prev[BUNDLE_CAT_MARK_MAX];
	int rc = bundle_cat_apply(k, bundles, name, NULL, NULL, 0, prev, sizeof prev, err, errlen);
	for (int i = base_of(c)->n_datasets; !rc && i < c->n_datasets; i++) {
		const char *ds = c->datasets[i].name;
		if (strncmp(ds, name, nl) || strncmp(ds + nl, CAT_NS_SEP, strlen(CAT_NS_SEP)))
			continue;
		uint64_t n = 0;
		if (k->store && (rc = store_purge_dataset(k->store, ds, &n, err, errlen)) == 0) {
			(*datasets)++;
			*records += n;
		}
	}
	catalog_unref(c);
	return rc;
}
