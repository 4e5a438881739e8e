/*
 * bundle_cat — the datasets and device classes bundles bring, on the node: the catalog
 * version made from the catalog_dir's catalog (the base) and the `dataset` and `device`
 * files of the bundles installed under <data_dir>/bundles (catalog_with_datasets), and its
 * swap into the running node.
 *
 * <data_dir>/bundles/NAME/catalog names the VERSION of NAME whose fragments are in the
 * catalog (its files under NAME/VERSION), then the files a rollback kept ("VERSION FILE"). It is written when an install or upgrade puts
 * them in, kept by `plugins remove` (the data and its schema stay), and goes with
 * `remove --purge`. At start the catalog is made from these before the store opens.
 */
#ifndef LINLI_BUNDLE_CAT_H
#define LINLI_BUNDLE_CAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct catalog;
struct kernel;

/* The longest NAME/catalog text: its first line VERSION (that version's dataset files), then
   a line "VERSION FILE" for each dataset a rollback kept from a newer version. */
#define BUNDLE_CAT_MARK_MAX 1024

/*
 * bundle_cat_build — base with the datasets and device classes of every bundle under
 * `bundles` (NAME/catalog), except bundle `name` (NULL: none excepted), whose come from
 * `mark` instead (the text of a NAME/catalog: "VERSION\n" and kept "VERSION FILE\n" lines;
 * NULL or "": none). Each fragment file is checked against the size and hash its
 * manifest gives. strict: the first refused bundle fails the build (err names the bundle,
 * the file and the line); otherwise a refused bundle is logged and left out. *out: a new
 * version numbered `version`, or base itself (a reference) when no bundle brings datasets.
 */
int bundle_cat_build(const struct catalog *base, const char *bundles, const char *name,
		     const char *mark, uint64_t version, bool strict, struct catalog **out,
		     char *err, size_t errlen);

/* Use `next` from now on: the store's version, then k->catalog (kernel thread). */
int bundle_cat_swap(struct kernel *k, struct catalog *next, char *err, size_t errlen);

/*
 * bundle_cat_apply — bundle `name`'s datasets from version dir `vdir` (NULL: none: its
 * datasets leave the catalog) in place of those the catalog holds now, swapped in at once,
 * and NAME/catalog written (or removed). When the catalog holds datasets of `name` already
 * (an upgrade, or an install over data a remove kept), the new ones must keep their fields:
 * a dataset left out, a field removed or retyped is refused, naming it, unless one of
 * `migrate` (n_migrate of "DATASET.FIELD=drop" or "DATASET.FIELD=default:VALUE", DATASET
 * as the bundle names it; VALUE as JSON, else text) says what the stored records get:
 * they are rewritten in one transaction (store_migrate) before the swap.
 * `prev` (BUNDLE_CAT_MARK_MAX bytes) receives the mark
 * the catalog held before ("" when none), for bundle_cat_restore. Nothing happens (0)
 * when neither the catalog nor vdir holds datasets of `name`. 0 or LINLI_E* with err.
 */
int bundle_cat_apply(struct kernel *k, const char *bundles, const char *name, const char *vdir,
		     const char *const *migrate, int n_migrate, char *prev, size_t prevlen,
		     char *err, size_t errlen);

/* Undo bundle_cat_apply or _rollback: the catalog as it was with mark `prev` of `name`
   ("": none). */
void bundle_cat_restore(struct kernel *k, const char *bundles, const char *name,
			const char *prev);

/*
 * bundle_cat_rollback — `plugins rollback`: bundle `name`'s datasets return to those of its
 * version `version` (a dir under NAME). A dataset that version lacks stays in the catalog
 * with its records, as remove keeps it (NAME/catalog names the newer file it comes from).
 * The records are not rewritten: a field the newer version added stays in them, so the
 * older schema must accept every stored record, or the rollback is refused naming the
 * record and the field. `prev` (BUNDLE_CAT_MARK_MAX bytes): the mark before, for
 * bundle_cat_restore. 0 or LINLI_E* with err.
 */
int bundle_cat_rollback(struct kernel *k, const char *bundles, const char *name,
			const char *version, char *prev, size_t prevlen, char *err, size_t errlen);

/* Refuse (LINLI_EBUSY, err naming them) while devices use a device class of bundle `name`. */
int bundle_cat_in_use(struct kernel *k, const char *name, char *err, size_t errlen);

/*
 * bundle_cat_purge — `remove --purge`: bundle `name`'s datasets leave the catalog and their
 * records the store (store_purge_dataset). *datasets, *records: how many went.
 */
int bundle_cat_purge(struct kernel *k, const char *bundles, const char *name, int *datasets,
		     uint64_t *records, char *err, size_t errlen);

#endif
