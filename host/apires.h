/*
 * apires — what an API key may read: the resource kinds, their one parser
 * and the one check every HTTP endpoint makes.
 *
 *   dataset:NAME         records of a shareable dataset (and, for
 *                        applications, submitting them)
 *   devices:CLASS        the device registry, devices of that class only;
 *                        devices:* for every class
 *   app:PLUGIN[/ROUTE]   a plugin's HTTP routes (all, or ROUTE and below)
 *   metrics              the node's metrics
 *   screen               the operators' screen feed
 *
 * A list is written "dataset:parking_spaces,devices:parking" (commas or
 * spaces). Parsing checks the syntax only; apires_validate checks a new key's
 * list against the catalog. Pure functions, no state: safe on any thread.
 * Never decides scope: a key's jurisdiction is checked beside it.
 */
#ifndef LINLI_APIRES_H
#define LINLI_APIRES_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"

#define APIRES_MAX	 64   /* resources on one key */
#define APIRES_ROUTE_MAX 128  /* the ROUTE of app:PLUGIN/ROUTE, bytes */
#define APIRES_TEXT_MAX	 2048 /* a list as text, with its NUL (the stored field's max_len) */

enum apires_kind { APIRES_DATASET, APIRES_DEVICES, APIRES_APP, APIRES_METRICS, APIRES_SCREEN };

struct apires {
	enum apires_kind kind;
	char name[CAT_NAME_MAX + 1];	  /* dataset, device class ("*": all), plugin; "" */
	char route[APIRES_ROUTE_MAX + 1]; /* app: "" = every route of the plugin */
};

struct apires_set {
	int n;
	struct apires v[APIRES_MAX];
};

/*
 * Parse a list into *out (duplicates kept once). LINLI_EINVAL with err
 * naming the entry: an unknown kind (the known ones listed), a missing or
 * malformed NAME or ROUTE, an empty list, more than APIRES_MAX entries.
 */
int apires_parse(const char *text, struct apires_set *out, char *err, size_t errlen);

/*
 * May a key with a new list have it? LINLI_ENOENT for a dataset or device
 * class the catalog does not know, LINLI_EPERM for a dataset no key may read
 * (not shared, system, or `devices`: the registry is read as devices:CLASS).
 */
int apires_validate(const struct apires_set *s, const struct catalog *c, char *err, size_t errlen);

/*
 * Does the set allow this? `name` is the dataset, device class, or plugin;
 * NULL asks "any of this kind" (is there a devices:... at all?). `route`
 * (app only, may be NULL) is the route asked for: app:P allows every route
 * of P, app:P/r allows r and r/... .
 */
bool apires_allows(const struct apires_set *s, enum apires_kind kind, const char *name,
		   const char *route);

/*
 * The resources of a stored key: its `resources` text, or (NULL) for a key
 * issued before resources existed its space-separated `datasets` list, each
 * a dataset:NAME, except `devices` (the registry) which becomes devices:*.
 * Stored records are never refused for their age; a list that does not
 * parse is LINLI_EINVAL with an empty set (the key then reads nothing).
 */
int apires_from_record(const char *resources, const char *datasets, struct apires_set *out,
		       char *err, size_t errlen);

/* The set as its canonical text (comma-separated, in order), cut to n bytes. */
void apires_format(const struct apires_set *s, char *out, size_t n);

/* One resource as text ("app:alarms/active"); snprintf's return. */
int apires_format_one(const struct apires *r, char *out, size_t n);

/* "dataset", "devices", ... */
const char *apires_kind_name(enum apires_kind k);

#endif
