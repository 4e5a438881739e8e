/*
 * scope — jurisdiction paths and tier levels.
 *
 * A path names a node of the tree: `hefei/baohe/binhu/yuelan[/g03]`, one
 * segment per level (city, district, street, community, grid). Owns only pure
 * functions over strings; it never allocates and never touches the store.
 */
#ifndef LINLI_SCOPE_H
#define LINLI_SCOPE_H

#include <stdbool.h>
#include <stddef.h>

enum tier_level {
	TIER_NONE = 0,
	TIER_CITY = 1,
	TIER_DISTRICT = 2,
	TIER_STREET = 3,
	TIER_COMMUNITY = 4,
	TIER_GRID = 5,
};

#define SCOPE_MAX 255	   /* longest path, bytes, without the NUL */
#define SCOPE_SEG_MAX 64   /* longest segment */

/* "city", "district", ...; NULL for an out-of-range value. */
const char *tier_level_name(enum tier_level lvl);
/* Parse a level name; TIER_NONE when unknown. */
enum tier_level tier_level_parse(const char *name);

/*
 * scope_check — is `path` a well-formed node path? Segments are
 * [a-z0-9][a-z0-9_-]*, at most SCOPE_SEG_MAX bytes, 1..5 of them, no empty
 * segment, no leading or trailing '/'. On failure writes a reason to `why`
 * (may be NULL) and returns false.
 */
bool scope_check(const char *path, char *why, size_t whylen);

/* Number of segments of a well-formed path (its tier level). */
int scope_depth(const char *path);

/*
 * scope_within — is `path` equal to `root` or inside its subtree? Compares
 * whole segments: `a/b` is within `a` but `a/bc` is not within `a/b`.
 * An empty root is the whole tree.
 */
bool scope_within(const char *root, const char *path);

#endif
