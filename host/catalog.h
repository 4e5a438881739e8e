/*
 * catalog — the data resource catalog (数据资源目录): dataset schemas, device
 * classes and the plugin index, loaded from `catalog/` (see catalog/README.md).
 *
 * catalog_load reads every file, checks each key against the format and then
 * cross-checks the whole (a ref to a missing dataset, a capability naming an
 * unknown dataset or class, a plugin requiring an unknown one, duplicate
 * names, a device class claimed by two plugins' `classes`). Any problem
 * fails the load with "file:line: what: reason" and no half-built result.
 * A loaded catalog is immutable and reference-counted: catalog_load returns it
 * with one reference (its loader's); catalog_ref/catalog_unref add and drop
 * one, and the last catalog_unref (or catalog_free) frees it. A running node
 * swaps versions (store_swap_catalog): a reader takes a reference to the
 * current version for its operation and the old one goes when the last
 * reader drops it. It never opens the store or changes anything outside
 * itself.
 */
#ifndef LINLI_CATALOG_H
#define LINLI_CATALOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scope.h"

#define CAT_NAME_MAX   64 /* longest name, bytes */
#define CAT_MAX_FIELDS 64 /* fields per dataset (the store keeps a 64-bit mask) */

enum cat_type {
	CAT_STRING = 1,
	CAT_INTEGER,
	CAT_FLOAT,
	CAT_BOOLEAN,
	CAT_TIME, /* int64 milliseconds since 1970-01-01T00:00:00Z */
	CAT_ENUM,
	CAT_REF, /* the id of a record of another dataset */
	CAT_GEO, /* {lat, lon}, WGS-84 degrees */
};

enum cat_sensitive {
	CAT_SENS_NONE = 0,
	CAT_SENS_ID_NUMBER,
	CAT_SENS_PHONE,
	CAT_SENS_NAME,
	CAT_SENS_ADDRESS,
	CAT_SENS_HEALTH,
};

enum cat_sharing { CAT_SHARED = 1, CAT_CONDITIONAL, CAT_NOT_SHARED };
enum cat_source { CAT_SRC_CITY = 1, CAT_SRC_COMMUNITY };
enum cat_access { CAT_READ = 1, CAT_WRITE = 2 };
enum cat_severity { CAT_SEV_CRITICAL = 1, CAT_SEV_MAJOR, CAT_SEV_MINOR, CAT_SEV_INFO };

struct cat_dataset;

/* A value slot: a dataset field, a device resource or a command argument. */
struct cat_field {
	char *name;
	enum cat_type type;
	bool required;		      /* dataset fields; command args are all required */
	bool indexed;		      /* dataset fields */
	enum cat_sensitive sensitive; /* dataset fields */
	int access;		      /* resources: CAT_READ | CAT_WRITE */
	char *unit;		      /* resources and args; NULL when none */
	char **values;		      /* enum: the allowed values */
	int n_values;
	char *ref;			  /* ref: dataset name */
	const struct cat_dataset *ref_ds; /* ref: resolved at load */
	bool has_min, has_max;
	int64_t imin, imax; /* integer */
	double fmin, fmax;  /* float */
	int64_t max_len;    /* string: bytes; 0 = no limit of its own */
	int line;
};

struct cat_dataset {
	char *name, *title_zh, *title_en, *owner, *family;
	enum tier_level level; /* the tier whose nodes hold its records */
	enum cat_sharing sharing;
	enum cat_source source;
	bool restricted;
	bool up; /* its changes go up to the parent tier (federation's change log) */
	bool down; /* its records go down to the children (federation's down log), and a
		      reader below sees those kept at the scopes above it */
	bool system; /* the kernel's own (accounts, sessions, audit, apikeys): no data commands,
			plugins or HTTP reach it */
	char *written_by; /* NULL, or the console word of the kernel subsystem that alone writes
			     its records (devices: the HAL); data commands, plugins and
			     scripts may read them, never write */
	struct cat_field *fields;
	int n_fields;
	char *file;
	int line;
};

struct cat_command {
	char *name;
	struct cat_field *args;
	int n_args;
	int line;
};

/* A field of an event's details (`data`) the class marks sensitive. */
struct cat_event_field {
	char *name;
	enum cat_sensitive sensitive; /* never CAT_SENS_NONE */
};

struct cat_event {
	char *name;
	enum cat_severity severity;
	bool unjournaled; /* `journal = false`: telemetry-like, not kept in the journal */
	int line;
	/* `sensitive = ( { name = "holder"; mask = "name"; } )`: masked for readers
	 * without the grant sensitive:devices (hal_event_mask) */
	struct cat_event_field *sensitive;
	int n_sensitive;
};

struct cat_device_class {
	char *name, *title_zh, *title_en;
	int64_t heartbeat; /* seconds */
	struct cat_field *resources;
	int n_resources;
	struct cat_command *commands;
	int n_commands;
	struct cat_event *events;
	int n_events;
	char *file;
	const char *plugin; /* the plugin whose `classes` name it (its events become alarms
			       there), or NULL; points into that plugin's entry */
};

struct cat_plugin {
	char *name, *family, *version, *sdk, *description;
	char **requires;
	int n_requires;
	char **capabilities;
	int n_capabilities;
	char **classes; /* the device classes whose events this plugin turns into alarms; a
			   class is claimed by at most one plugin */
	int n_classes;
	int line;
};

struct catalog {
	char *dir; /* NULL for the empty catalog */
	struct cat_dataset *datasets;
	int n_datasets;
	struct cat_device_class *classes;
	int n_classes;
	struct cat_plugin *plugins;
	int n_plugins;
	char *plugins_file;
	uint64_t version; /* 1 when loaded; catalog_with_datasets: the caller's number */
	atomic_int refs;  /* catalog_ref/catalog_unref; thread-safe */
	/* catalog_with_datasets: the version it was made from (a reference held), whose
	   datasets and classes come first (their strings shared), whose plugins are these;
	   NULL for a loaded catalog */
	const struct catalog *base;
};

/*
 * A bundle's datasets are named NS CAT_NS_SEP NAME ("hello__visits"): the bundle's name,
 * the separator, the dataset's own name. The separator is defined here only; it is made of
 * the characters a name already has, so the full name passes every check a dataset name
 * meets (capabilities, topic filters, Lua strings, URL paths), and a catalog dataset may
 * not hold it.
 */
#define CAT_NS_SEP "__"

/* A catalog fragment a bundle brings: one dataset file in the catalog's syntax. */
struct cat_fragment {
	const char *ns;	   /* the bundle's name: its datasets' namespace */
	const char *label; /* how messages name the file: "hello/visits.cfg" (the stem is
			      the dataset's own name) */
	const char *text;  /* its text */
	size_t len;
	bool device; /* a device class (catalog/devices syntax), named NS CAT_NS_SEP NAME too;
			else a dataset */
};

/*
 * catalog_load — load and cross-check the catalog in `dir` (datasets/NAME.cfg,
 * devices/CLASS.cfg, plugins.cfg; each part may be absent). `dir` NULL gives the
 * empty catalog. Returns 0 with *out set (free with catalog_free), or
 * LINLI_ECONFIG with err "file:line: what: reason", LINLI_EIO when the
 * directory cannot be read, LINLI_ENOMEM.
 */
int catalog_load(const char *dir, struct catalog **out, char *err, size_t errlen);
/* catalog_free — drop the caller's reference (catalog_unref). */
void catalog_free(struct catalog *c);

/*
 * catalog_with_datasets — a new version: base's datasets, device classes and plugins, then
 * one dataset per fragment, validated as catalog_load validates a dataset file and named
 * NS CAT_NS_SEP NAME. Refused, with "LABEL:LINE: dataset: reason": a bad fragment, a name
 * holding CAT_NS_SEP (another namespace), a name base holds (the kernel's), a system or
 * written_by dataset, a full name over CAT_NAME_MAX bytes, a dataset twice in one
 * namespace, a ref to an unknown or system dataset. A `ref` names the bundle's own dataset
 * by its own name first, then base's. A fragment marked `device` is a device class, checked
 * as catalog_load checks devices/CLASS.cfg and named NS CAT_NS_SEP NAME; refused likewise
 * ("LABEL:LINE: device_class: reason") for a name holding CAT_NS_SEP, a kernel class's
 * name, a full name over CAT_NAME_MAX, a class twice. The version then has classes of its
 * own (base's first, shared; theirs after, freed with it: a device holding a class keeps a
 * reference to the version). The result holds a reference to base; 0 with *out
 * (refs 1, `version` as given), LINLI_ECONFIG, LINLI_EINVAL (a bad namespace), LINLI_ENOMEM.
 */
int catalog_with_datasets(const struct catalog *base, const struct cat_fragment *frags, int n,
			  uint64_t version, struct catalog **out, char *err, size_t errlen);

/* Take one more reference to c (NULL: none); returns c. Any thread. */
const struct catalog *catalog_ref(const struct catalog *c);
/* Drop one reference; the last frees c (NULL: nothing). Any thread. */
void catalog_unref(const struct catalog *c);

/* Lookups by name; NULL when absent. */
const struct cat_dataset *catalog_dataset(const struct catalog *c, const char *name);

/* The built-in system datasets (core_catalog.c), NULL-terminated. */
struct cat_core_file {
	const char *name; /* "<built-in>/accounts.cfg" */
	const char *text;
};
extern const struct cat_core_file cat_core_files[];
const struct cat_device_class *catalog_device_class(const struct catalog *c, const char *name);
const struct cat_plugin *catalog_plugin(const struct catalog *c, const char *name);
const struct cat_field *cat_dataset_field(const struct cat_dataset *d, const char *name,
					  size_t len);

/* Names of enum values, for messages and the console. */
const char *cat_type_name(enum cat_type t);
const char *cat_sensitive_name(enum cat_sensitive s);
const char *cat_sharing_name(enum cat_sharing s);
const char *cat_source_name(enum cat_source s);
const char *cat_severity_name(enum cat_severity s);

/*
 * cat_pack_schema — dataset d as the SDK's schema record (api->dataset_schema,
 * since 1.1): {"name", "title_en", "title_zh", "level", "sharing", "owner",
 * "family", "source", "restricted", "fields": [{"name", "type", "required",
 * "indexed", "sensitive" (the mask kind, or false), "values"?, "ref"?,
 * "min"?, "max"?, "max_len"?, "unit"?}]}; with `fields` false only the first
 * five (one entry of api->datasets).
 */
struct msgpack_packer;
void cat_pack_schema(struct msgpack_packer *pk, const struct cat_dataset *d, bool fields);

#endif
