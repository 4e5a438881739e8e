/* tier_tree — see tier_tree.h. */
#include "tier_tree.h"

#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli/error.h"

static int cmp_node(const void *a, const void *b)
{
	/* Sort by path with '/' lowest, so that "a/b" < "a/b/c" < "a/b2". */
	const unsigned char *x = (const unsigned char *)((const struct tier_node *)a)->path;
	const unsigned char *y = (const unsigned char *)((const struct tier_node *)b)->path;
	for (; *x && *x == *y; x++, y++)
		;
	int cx = *x == '/' ? 1 : *x ? *x + 1 : 0, cy = *y == '/' ? 1 : *y ? *y + 1 : 0;
	return cx - cy;
}

void tier_tree_free(struct tier_tree *t)
{
	for (int i = 0; i < t->n; i++) {
		free(t->v[i].path);
		free(t->v[i].code);
		free(t->v[i].name);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

int tier_tree_load(struct tier_tree *t, const char *file, int optional, char *err, size_t errlen)
{
	memset(t, 0, sizeof *t);
	config_t cf;
	config_init(&cf);
	int rc = LINLI_ECONFIG;
	if (config_read_file(&cf, file) != CONFIG_TRUE) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO) {
			if (optional) {
				config_destroy(&cf);
				return 0;
			}
			snprintf(err, errlen, "%s: cannot read: %s", file, strerror(errno));
		} else
			snprintf(err, errlen, "%s:%d: syntax error: %s", file,
				 config_error_line(&cf), config_error_text(&cf));
		goto out;
	}
	config_setting_t *list = config_lookup(&cf, "tree");
	if (!list || !config_setting_is_aggregate(list) || config_setting_is_group(list)) {
		snprintf(err, errlen, "%s: tree: missing, or not a list ( ... )", file);
		goto out;
	}
	int n = config_setting_length(list);
	t->v = calloc((size_t)n + 1, sizeof *t->v);
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		int line = (int)config_setting_source_line(e);
		const char *path = NULL, *code = NULL, *name = NULL;
		char why[128];
		if (!config_setting_is_group(e) || !config_setting_lookup_string(e, "path", &path) ||
		    !config_setting_lookup_string(e, "code", &code) ||
		    !config_setting_lookup_string(e, "name", &name)) {
			snprintf(err, errlen, "%s:%d: tree entry %d needs path, code and name strings",
				 file, line, i + 1);
			goto out;
		}
		for (int k = 0; k < config_setting_length(e); k++) {
			const char *key = config_setting_name(config_setting_get_elem(e, (unsigned)k));
			if (strcmp(key, "path") && strcmp(key, "code") && strcmp(key, "name")) {
				snprintf(err, errlen, "%s:%d: tree entry %d: unknown key '%s'", file,
					 line, i + 1, key);
				goto out;
			}
		}
		if (!scope_check(path, why, sizeof why)) {
			snprintf(err, errlen, "%s:%d: bad path '%s': %s", file, line, path, why);
			goto out;
		}
		for (int j = 0; j < t->n; j++) {
			if (strcmp(t->v[j].path, path) == 0) {
				snprintf(err, errlen, "%s:%d: duplicate path '%s'", file, line, path);
				goto out;
			}
			if (strcmp(t->v[j].code, code) == 0) {
				snprintf(err, errlen, "%s:%d: code '%s' of %s is already %s's", file,
					 line, code, path, t->v[j].path);
				goto out;
			}
		}
		/* The parent must come first in the file: the tree reads top-down. */
		const char *slash = strrchr(path, '/');
		if (slash) {
			char parent[SCOPE_MAX + 1];
			snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
			bool found = false;
			for (int j = 0; j < t->n && !found; j++)
				found = strcmp(t->v[j].path, parent) == 0;
			if (!found) {
				snprintf(err, errlen, "%s:%d: %s: parent %s is not listed before it",
					 file, line, path, parent);
				goto out;
			}
		}
		struct tier_node *nd = &t->v[t->n++];
		nd->path = strdup(path);
		nd->code = strdup(code);
		nd->name = strdup(name);
		nd->level = (enum tier_level)scope_depth(path);
	}
	qsort(t->v, (size_t)t->n, sizeof *t->v, cmp_node);
	rc = 0;
out:
	if (rc)
		tier_tree_free(t);
	config_destroy(&cf);
	return rc;
}

const struct tier_node *tier_tree_find(const struct tier_tree *t, const char *path)
{
	struct tier_node key = {.path = (char *)path};
	return bsearch(&key, t->v, (size_t)t->n, sizeof *t->v, cmp_node);
}

int tier_tree_subtree(const struct tier_tree *t, const char *root, int *first)
{
	int i = 0;
	while (i < t->n && !scope_within(root, t->v[i].path))
		i++;
	*first = i;
	int j = i;
	while (j < t->n && scope_within(root, t->v[j].path))
		j++;
	return j - i;
}
