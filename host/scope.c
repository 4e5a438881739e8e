/* scope — see scope.h. */
#include "scope.h"

#include <stdio.h>
#include <string.h>

static const char *const level_names[] = {NULL, "city", "district", "street", "community", "grid"};

const char *tier_level_name(enum tier_level lvl)
{
	return (lvl >= TIER_CITY && lvl <= TIER_GRID) ? level_names[lvl] : NULL;
}

enum tier_level tier_level_parse(const char *name)
{
	for (int i = TIER_CITY; i <= TIER_GRID; i++)
		if (strcmp(name, level_names[i]) == 0)
			return (enum tier_level)i;
	return TIER_NONE;
}

static bool seg_char(char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
		return true;
	return !first && (c == '_' || c == '-');
}

bool scope_check(const char *path, char *why, size_t whylen)
{
	const char *reason = NULL;
	size_t len = strlen(path);
	int segs = 0;
	if (len == 0)
		reason = "empty path";
	else if (len > SCOPE_MAX)
		reason = "path longer than 255 bytes";
	else {
		const char *p = path;
		while (!reason) {
			const char *end = strchr(p, '/');
			size_t n = end ? (size_t)(end - p) : strlen(p);
			if (n == 0) {
				reason = "empty segment (leading, trailing or double '/')";
				break;
			}
			if (n > SCOPE_SEG_MAX) {
				reason = "segment longer than 64 bytes";
				break;
			}
			for (size_t i = 0; i < n; i++)
				if (!seg_char(p[i], i == 0)) {
					reason = "segments use a-z, 0-9, '_' and '-' and start with a letter or digit";
					break;
				}
			segs++;
			if (!end)
				break;
			p = end + 1;
		}
		if (!reason && segs > TIER_GRID)
			reason = "more than 5 levels (city/district/street/community/grid)";
	}
	if (reason && why)
		snprintf(why, whylen, "%s", reason);
	return reason == NULL;
}

int scope_depth(const char *path)
{
	if (!*path)
		return 0;
	int n = 1;
	for (; *path; path++)
		n += *path == '/';
	return n;
}

bool scope_within(const char *root, const char *path)
{
	size_t n = strlen(root);
	if (n == 0)
		return true;
	return strncmp(root, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}
