/*
 * tier_tree — the jurisdiction tree: nodes with path, level, code and name.
 *
 * Loaded from `tree.cfg` in the catalog directory (libconfig). Every node's
 * parent must be in the tree, paths and codes are unique, levels follow from
 * depth. Read-only after load; owns its nodes. Never decides permissions
 * (tier.c does); it only answers "which nodes exist under X".
 */
#ifndef LINLI_TIER_TREE_H
#define LINLI_TIER_TREE_H

#include <stddef.h>

#include "scope.h"

struct tier_node {
	char *path, *code, *name;
	enum tier_level level;
};

struct tier_tree {
	struct tier_node *v; /* sorted by path, so a subtree is contiguous */
	int n;
};

/*
 * Load `file`. A missing file gives an empty tree (return 0) when
 * `optional`; any bad entry fails with "file:line: reason" in err.
 */
int tier_tree_load(struct tier_tree *t, const char *file, int optional, char *err, size_t errlen);
void tier_tree_free(struct tier_tree *t);

const struct tier_node *tier_tree_find(const struct tier_tree *t, const char *path);

/* Index of the first node of `root`'s subtree and the count, via *first. */
int tier_tree_subtree(const struct tier_tree *t, const char *root, int *first);

#endif
