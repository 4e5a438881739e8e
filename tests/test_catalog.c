/*
 * Unit tests of host/catalog.c: the shipped catalog loads and cross-checks;
 * every kind of bad file is refused with its file and line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "linli/error.h"

/* The shipped datasets: one file each in catalog/datasets/. */
static int shipped_datasets(void)
{
	DIR *d = opendir(SRCDIR "/catalog/datasets");
	assert_non_null(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		size_t len = strlen(e->d_name);
		n += len > 4 && strcmp(e->d_name + len - 4, ".cfg") == 0;
	}
	closedir(d);
	return n;
}

static void test_shipped_catalog(void **state)
{
	(void)state;
	struct catalog *c;
	char err[1024] = "";
	int rc = catalog_load(SRCDIR "/catalog", &c, err, sizeof err);
	if (rc)
		fail_msg("%s", err);
	assert_true(shipped_datasets() >= 27);
	assert_int_equal(c->n_datasets, shipped_datasets() + 6); /* + 6 built-in system datasets */
	assert_int_equal(c->n_classes, 18);
	assert_int_equal(c->n_plugins, 17);
	const struct cat_dataset *r = catalog_dataset(c, "residents");
	assert_non_null(r);
	assert_int_equal(r->level, TIER_COMMUNITY);
	assert_int_equal(r->sharing, CAT_CONDITIONAL);
	assert_int_equal(r->source, CAT_SRC_CITY);
	const struct cat_field *f = cat_dataset_field(r, "house", 5);
	assert_non_null(f);
	assert_int_equal(f->type, CAT_REF);
	assert_ptr_equal(f->ref_ds, catalog_dataset(c, "houses"));
	assert_true(f->indexed);
	f = cat_dataset_field(r, "id_number", 9);
	assert_int_equal(f->sensitive, CAT_SENS_ID_NUMBER);
	assert_int_equal(f->max_len, 18);
	const struct cat_dataset *w = catalog_dataset(c, "watchlist");
	assert_true(w->restricted);
	assert_null(w->written_by);
	assert_string_equal(catalog_dataset(c, "devices")->written_by, "devices");
	assert_int_equal(w->sharing, CAT_NOT_SHARED);
	f = cat_dataset_field(catalog_dataset(c, "houses"), "area_m2", 7);
	assert_int_equal(f->type, CAT_FLOAT);
	assert_true(f->has_min && f->has_max);
	assert_true(f->fmax == 100000.0);
	const struct cat_device_class *cam = catalog_device_class(c, "camera");
	assert_non_null(cam);
	assert_int_equal(cam->heartbeat, 60);
	assert_true(cam->n_resources > 0 && cam->n_commands > 0 && cam->n_events > 0);
	/* journal = false marks telemetry-like events; the default keeps them. */
	const struct cat_device_class *door = catalog_device_class(c, "door");
	for (int i = 0; i < door->n_events; i++)
		assert_int_equal(door->events[i].unjournaled,
				 strcmp(door->events[i].name, "card_ok") == 0 ||
					 strcmp(door->events[i].name, "face_ok") == 0);
	/* A door event's holder is personal data, masked like a name; forced marks nothing. */
	for (int i = 0; i < door->n_events; i++) {
		const struct cat_event *e = &door->events[i];
		if (strcmp(e->name, "forced") == 0 || strcmp(e->name, "held_open") == 0) {
			assert_int_equal(e->n_sensitive, 0);
			continue;
		}
		assert_int_equal(e->n_sensitive, 1);
		assert_string_equal(e->sensitive[0].name, "holder");
		assert_int_equal(e->sensitive[0].sensitive, CAT_SENS_NAME);
	}
	const struct cat_plugin *p = catalog_plugin(c, "watch");
	assert_non_null(p);
	/* watch needs alarms for its reminders, not the access plugin that writes its hits */
	assert_int_equal(p->n_requires, 1);
	assert_string_equal(p->requires[0], "alarms");
	/* The index's `classes`: which plugin turns a class's events into alarms. */
	assert_int_equal(p->n_classes, 0);
	assert_string_equal(catalog_device_class(c, "efence")->plugin, "perimeter");
	assert_string_equal(catalog_device_class(c, "camera")->plugin, "perimeter");
	assert_string_equal(catalog_device_class(c, "smoke")->plugin, "fire");
	assert_string_equal(catalog_device_class(c, "door")->plugin, "access");
	assert_null(catalog_device_class(c, "screen")->plugin);
	assert_int_equal(catalog_plugin(c, "perimeter")->n_classes, 4);
	assert_null(catalog_dataset(c, "nope"));
	catalog_free(c);
}

static void test_empty_catalog(void **state)
{
	(void)state;
	struct catalog *c;
	char err[256];
	assert_int_equal(catalog_load(NULL, &c, err, sizeof err), 0);
	/* Without a catalog_dir only the kernel's own datasets exist. */
	assert_int_equal(c->n_datasets, 6);
	assert_true(catalog_dataset(c, "accounts")->system);
	assert_true(catalog_dataset(c, "journal_holders")->system);
	assert_true(catalog_dataset(c, "audit")->system);
	assert_true(catalog_dataset(c, "grants")->system);
	assert_null(catalog_dataset(c, "residents"));
	catalog_free(c);
	assert_int_equal(catalog_load("/nonexistent/catalog", &c, err, sizeof err), LINLI_EIO);
	assert_non_null(strstr(err, "/nonexistent/catalog"));
}

/* ---- bad catalogs, built in a temp dir ---- */

static const char good_a[] = "dataset = {\n"				 /* 1 */
			     "  name = \"a\"; title_zh = \"甲\"; title_en = \"A\";\n" /* 2 */
			     "  owner = \"test\"; family = \"core\"; level = \"community\";\n"
			     "  sharing = \"shared\"; source = \"community\";\n" /* 4 */
			     "  fields = (\n"					 /* 5 */
			     "    { name = \"x\"; type = \"string\"; },\n"	 /* 6 */
			     "    { name = \"b\"; type = \"ref\"; ref = \"b\"; }\n" /* 7 */
			     "  );\n"
			     "};\n";
static const char good_b[] = "dataset = { name = \"b\"; title_zh = \"乙\"; title_en = \"B\";\n"
			     "  owner = \"test\"; family = \"core\"; level = \"city\";\n"
			     "  sharing = \"shared\"; source = \"city\";\n"
			     "  fields = ( { name = \"n\"; type = \"integer\"; min = 0; } ); };\n";
static const char good_dev[] = "device_class = {\n"
			       "  name = \"meter\"; title_zh = \"表\"; title_en = \"Meter\";\n"
			       "  heartbeat = 60;\n"
			       "  resources = ( { name = \"reading\"; type = \"float\"; access = \"r\"; } );\n"
			       "  commands = ( { name = \"reset\"; args = (); } );\n"
			       "  events = ( { name = \"leak\"; severity = \"major\"; } );\n"
			       "};\n";
static const char good_plugins[] =
	"plugins = (\n"
	"  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	"    description = \"d\"; requires = [ ];\n"
	"    capabilities = [ \"store.read:a\", \"device.read:meter\", \"bus.publish:x/#\" ]; },\n"
	"  { name = \"q\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	"    description = \"d\"; requires = [ \"p\" ]; capabilities = [ ]; }\n"
	");\n";

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void make_catalog(char *dir, const char *a, const char *b, const char *dev,
			 const char *plugins)
{
	strcpy(dir, "/tmp/linli-cat-XXXXXX");
	assert_non_null(mkdtemp(dir));
	char sub[512];
	snprintf(sub, sizeof sub, "%s/datasets", dir);
	mkdir(sub, 0700);
	if (a)
		write_file(sub, "a.cfg", a);
	if (b)
		write_file(sub, "b.cfg", b);
	snprintf(sub, sizeof sub, "%s/devices", dir);
	mkdir(sub, 0700);
	if (dev)
		write_file(sub, "meter.cfg", dev);
	if (plugins)
		write_file(dir, "plugins.cfg", plugins);
}

static void remove_catalog(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Load a catalog whose file `which` is `text` (others good); return the error. */
static int load_with(const char *which, const char *text, char *err, size_t errlen)
{
	char dir[64];
	bool a = !strcmp(which, "a"), b = !strcmp(which, "b"), d = !strcmp(which, "dev"),
	     p = !strcmp(which, "plugins");
	make_catalog(dir, a ? text : good_a, b ? text : good_b, d ? text : good_dev,
		     p ? text : good_plugins);
	struct catalog *c = NULL;
	err[0] = '\0';
	int rc = catalog_load(dir, &c, err, errlen);
	catalog_free(c);
	remove_catalog(dir);
	return rc;
}

static void test_good_small_catalog(void **state)
{
	(void)state;
	char err[1024];
	int rc = load_with("a", good_a, err, sizeof err);
	if (rc)
		fail_msg("%s", err);
}

struct bad {
	const char *which; /* a, b, dev, plugins */
	const char *text;
	const char *expect; /* substring of the error, with file and line */
};

#define DS_HEAD                                                                                    \
	"dataset = {\n"                                                                            \
	"  name = \"a\"; title_zh = \"甲\"; title_en = \"A\";\n"                                   \
	"  owner = \"test\"; family = \"core\"; level = \"community\";\n"                          \
	"  sharing = \"shared\"; source = \"community\";\n"                                        \
	"  fields = (\n"
#define DS_TAIL                                                                                    \
	"  );\n"                                                                                   \
	"};\n"

static const struct bad bad_cases[] = {
	/* unknown type */
	{"a", DS_HEAD "    { name = \"x\"; type = \"strin\"; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'x': type: unknown type 'strin'"},
	/* reference to a missing dataset */
	{"a", DS_HEAD "    { name = \"x\"; type = \"string\"; },\n    { name = \"h\"; type = \"ref\"; ref = \"houses\"; }\n" DS_TAIL,
	 "datasets/a.cfg:7: field 'h': ref: no dataset 'houses' in the catalog"},
	/* duplicate field name */
	{"a", DS_HEAD "    { name = \"x\"; type = \"string\"; },\n    { name = \"x\"; type = \"integer\"; }\n" DS_TAIL,
	 "datasets/a.cfg:7: dataset: duplicate name 'x' (first at line 6)"},
	/* bad (unknown) key */
	{"a", DS_HEAD "    { name = \"x\"; type = \"string\"; indexd = true; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'x': unknown key 'indexd'"},
	{"a",
	 "dataset = {\n  name = \"a\"; title_zh = \"甲\"; title_en = \"A\"; colour = \"red\";\n"
	 "  owner = \"test\"; family = \"core\"; level = \"community\";\n"
	 "  sharing = \"shared\"; source = \"community\";\n"
	 "  fields = ( { name = \"x\"; type = \"string\"; } );\n};\n",
	 "datasets/a.cfg:2: dataset: unknown key 'colour'"},
	{"a", "datasett = { };\n", "datasets/a.cfg:1: datasett: unknown key"},
	/* wrong type of a key */
	{"a", DS_HEAD "    { name = \"x\"; type = \"string\"; required = \"yes\"; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'x': required: must be a boolean"},
	/* syntax */
	{"a", "dataset = { name = \"a\" \n", "datasets/a.cfg:2: syntax error"},
	/* missing required key */
	{"a",
	 "dataset = {\n  name = \"a\"; title_zh = \"甲\"; title_en = \"A\";\n"
	 "  family = \"core\"; level = \"community\";\n"
	 "  sharing = \"shared\"; source = \"community\";\n"
	 "  fields = ( { name = \"x\"; type = \"string\"; } );\n};\n",
	 "datasets/a.cfg:1: dataset: missing required key 'owner'"},
	/* name differs from the file */
	{"a",
	 "dataset = {\n  name = \"zz\"; title_zh = \"甲\"; title_en = \"A\";\n"
	 "  owner = \"test\"; family = \"core\"; level = \"community\";\n"
	 "  sharing = \"shared\"; source = \"community\";\n"
	 "  fields = ( { name = \"x\"; type = \"string\"; } );\n};\n",
	 "datasets/a.cfg:2: dataset: name: 'zz' must equal the file name 'a'"},
	/* values outside their sets */
	{"a",
	 "dataset = {\n  name = \"a\"; title_zh = \"甲\"; title_en = \"A\";\n"
	 "  owner = \"test\"; family = \"core\"; level = \"village\";\n"
	 "  sharing = \"shared\"; source = \"community\";\n"
	 "  fields = ( { name = \"x\"; type = \"string\"; } );\n};\n",
	 "datasets/a.cfg:3: dataset: level: 'village' is not one of"},
	{"a",
	 "dataset = {\n  name = \"a\"; title_zh = \"甲\"; title_en = \"A\";\n"
	 "  owner = \"test\"; family = \"core\"; level = \"community\";\n"
	 "  sharing = \"shared\"; source = \"community\"; restricted = true;\n"
	 "  fields = ( { name = \"x\"; type = \"string\"; } );\n};\n",
	 "datasets/a.cfg:4: dataset: restricted: a restricted dataset must be sharing"},
	{"a",
	 "dataset = {\n  name = \"a\"; title_zh = \"甲\"; title_en = \"A\";\n"
	 "  owner = \"test\"; family = \"core\"; level = \"community\";\n"
	 "  sharing = \"not_shared\"; source = \"community\"; up = true;\n"
	 "  fields = ( { name = \"x\"; type = \"string\"; } );\n};\n",
	 "datasets/a.cfg:4: dataset: up: a dataset whose changes go up to the parent tier cannot "
	 "be sharing = \"not_shared\""},
	{"a",
	 "dataset = {\n  name = \"a\"; title_zh = \"甲\"; title_en = \"A\";\n"
	 "  owner = \"test\"; family = \"core\"; level = \"community\";\n"
	 "  sharing = \"shared\"; source = \"community\"; up = true;\n  down = true;\n"
	 "  fields = ( { name = \"x\"; type = \"string\"; } );\n};\n",
	 "datasets/a.cfg:5: dataset: down: a dataset goes one way between the tiers: up (its "
	 "changes to the parent) or down (its records to the children), not both"},
	{"a",
	 "dataset = {\n  name = \"a\"; title_zh = \"甲\"; title_en = \"A\";\n"
	 "  owner = \"test\"; family = \"core\"; level = \"community\";\n"
	 "  sharing = \"shared\"; source = \"community\"; up = \"yes\";\n"
	 "  fields = ( { name = \"x\"; type = \"string\"; } );\n};\n",
	 "datasets/a.cfg:4: dataset: up"},
	{"a",
	 "dataset = {\n  name = \"a\"; title_zh = \"甲\"; title_en = \"A\";\n"
	 "  owner = \"test\"; family = \"core\"; level = \"community\";\n"
	 "  sharing = \"shared\"; source = \"community\"; written_by = \"Devices!\";\n"
	 "  fields = ( { name = \"x\"; type = \"string\"; } );\n};\n",
	 "datasets/a.cfg:4: dataset: written_by: 'Devices!' is not a command word"},
	{"a", DS_HEAD "    { name = \"x\"; type = \"string\"; sensitive = \"secret\"; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'x': sensitive: 'secret' is not one of"},
	/* type-specific keys */
	{"a", DS_HEAD "    { name = \"n\"; type = \"integer\"; min = 0.0; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'n': min: an integer field takes an integer literal"},
	{"a", DS_HEAD "    { name = \"n\"; type = \"float\"; max = 5; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'n': max: a float field takes a float literal (write 5.0)"},
	{"a", DS_HEAD "    { name = \"n\"; type = \"integer\"; min = 5; max = 1; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'n': min is greater than max"},
	{"a", DS_HEAD "    { name = \"n\"; type = \"string\"; min = 1; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'n': min: only integer and float fields take min"},
	{"a", DS_HEAD "    { name = \"e\"; type = \"enum\"; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'e': an enum needs 'values'"},
	{"a", DS_HEAD "    { name = \"e\"; type = \"enum\"; values = [ \"a\", \"a\" ]; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'e': values: 'a' is listed twice"},
	{"a", DS_HEAD "    { name = \"e\"; type = \"string\"; values = [ \"a\" ]; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'e': values: only enum fields take values"},
	{"a", DS_HEAD "    { name = \"r\"; type = \"ref\"; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'r': a ref field needs 'ref'"},
	{"a", DS_HEAD "    { name = \"s\"; type = \"string\"; max_len = 0; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 's': max_len: must be > 0"},
	{"a", DS_HEAD "    { name = \"g\"; type = \"geo\"; indexed = true; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'g': indexed: a geo field cannot be indexed"},
	{"a", DS_HEAD "    { name = \"id\"; type = \"string\"; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'id': name: 'id' is reserved"},
	{"a", DS_HEAD "    { name = \"Bad\"; type = \"string\"; }\n" DS_TAIL,
	 "datasets/a.cfg:6: field 'Bad': name: 'Bad' is not a name"},
	{"a", DS_HEAD DS_TAIL, "datasets/a.cfg:5: dataset: fields: needs 1 to 64 fields, has 0"},
	/* device classes */
	{"dev",
	 "device_class = { name = \"meter\"; title_zh = \"表\"; title_en = \"M\"; heartbeat = 60;\n"
	 "  resources = ( { name = \"v\"; type = \"float\"; access = \"x\"; } ); };\n",
	 "devices/meter.cfg:2: resource 'v': access: 'x' is not one of r, w, rw"},
	{"dev",
	 "device_class = { name = \"meter\"; title_zh = \"表\"; title_en = \"M\"; heartbeat = 60;\n"
	 "  resources = ( { name = \"v\"; type = \"time\"; access = \"r\"; } ); };\n",
	 "devices/meter.cfg:2: resource 'v': type: unknown type 'time'"},
	{"dev",
	 "device_class = { name = \"meter\"; title_zh = \"表\"; title_en = \"M\"; heartbeat = 60;\n"
	 "  commands = ( { name = \"c\"; args = (); },\n"
	 "               { name = \"c\"; args = (); } ); };\n",
	 "devices/meter.cfg:3: device_class: duplicate command 'c' (first at line 2)"},
	{"dev",
	 "device_class = { name = \"meter\"; title_zh = \"表\"; title_en = \"M\"; heartbeat = 60;\n"
	 "  events = ( { name = \"e\"; severity = \"awful\"; } ); };\n",
	 "devices/meter.cfg:2: event 'e': severity: 'awful' is not one of"},
	{"dev",
	 "device_class = { name = \"meter\"; title_zh = \"表\"; title_en = \"M\"; heartbeat = 60;\n"
	 "  events = ( { name = \"e\"; severity = \"info\"; journal = \"no\"; } ); };\n",
	 "devices/meter.cfg:2: event 'e': journal"},
	{"dev",
	 "device_class = { name = \"meter\"; title_zh = \"表\"; title_en = \"M\"; heartbeat = 60;\n"
	 "  events = ( { name = \"e\"; severity = \"info\";\n"
	 "    sensitive = ( { name = \"who\"; mask = \"face\"; } ); } ); };\n",
	 "devices/meter.cfg:3: event 'e': sensitive[0]: mask: 'face' is not one of id_number, "
	 "phone, name, address, health"},
	{"dev",
	 "device_class = { name = \"meter\"; title_zh = \"表\"; title_en = \"M\"; heartbeat = 60;\n"
	 "  events = ( { name = \"e\"; severity = \"info\";\n"
	 "    sensitive = ( { name = \"who\"; mask = \"name\"; },\n"
	 "                  { name = \"who\"; mask = \"phone\"; } ); } ); };\n",
	 "devices/meter.cfg:4: event 'e': sensitive[1]: field 'who' is listed twice"},
	{"dev",
	 "device_class = { name = \"meter\"; title_zh = \"表\"; title_en = \"M\"; heartbeat = 60;\n"
	 "  events = ( { name = \"e\"; severity = \"info\";\n"
	 "    sensitive = ( { name = \"who\"; } ); } ); };\n",
	 "devices/meter.cfg:3: event 'e': sensitive[0]: missing required key 'mask'"},
	{"dev",
	 "device_class = { name = \"meter\"; title_zh = \"表\"; title_en = \"M\"; heartbeat = 60;\n"
	 "  events = ( { name = \"e\"; severity = \"info\"; sensitive = \"who\"; } ); };\n",
	 "devices/meter.cfg:2: event 'e': sensitive"},
	{"dev",
	 "device_class = { name = \"meter\"; title_zh = \"表\"; title_en = \"M\"; heartbeat = 0; };\n",
	 "devices/meter.cfg:1: device_class: heartbeat: must be > 0"},
	{"dev",
	 "device_class = { name = \"meter\"; title_zh = \"表\"; title_en = \"M\"; heartbeat = 5;\n"
	 "  commands = ( { name = \"c\"; args = ( { name = \"a\"; type = \"integer\"; access = \"r\"; } ); } ); };\n",
	 "devices/meter.cfg:2: arg 'a': unknown key 'access'"},
	/* the plugin index */
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; capabilities = [ ]; },\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; capabilities = [ ]; }\n);\n",
	 "plugins.cfg:4: plugins: duplicate plugin 'p' (first at line 2)"},
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; capabilities = [ \"store.read:houses\" ]; }\n);\n",
	 "plugins.cfg:2: plugin 'p': capability 'store.read:houses': no dataset 'houses'"},
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; capabilities = [ \"sensitive\", \"sensitive:houses\" ]; }\n);\n",
	 "plugins.cfg:2: plugin 'p': capability 'sensitive:houses': no dataset 'houses'"},
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; capabilities = [ \"device.read:toaster\" ]; }\n);\n",
	 "plugins.cfg:2: plugin 'p': capability 'device.read:toaster': no device class"},
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; capabilities = [ \"fly\" ]; }\n);\n",
	 "plugins.cfg:2: plugin 'p': capability 'fly': needs ':<argument>'"},
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; capabilities = [ \"bus.publish:a/#/b\" ]; }\n);\n",
	 "plugins.cfg:2: plugin 'p': capability 'bus.publish:a/#/b': 'a/#/b' is not a topic filter"},
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; requires = [ \"zz\" ]; capabilities = [ ]; }\n);\n",
	 "plugins.cfg:2: plugin 'p': requires: no plugin 'zz' in the index"},
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; requires = [ \"q\" ]; capabilities = [ ]; },\n"
	 "  { name = \"q\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; requires = [ \"p\" ]; capabilities = [ ]; }\n);\n",
	 "plugins.cfg:2: plugin 'p': requires: a cycle"},
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; capabilities = [ ]; }\n);\n",
	 "plugins.cfg:2: plugin 'p': version: '1.0' is not MAJOR.MINOR.PATCH"},
	/* a device class claimed by two plugins, one that does not exist, one listed twice */
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; classes = [ \"meter\" ]; capabilities = [ ]; },\n"
	 "  { name = \"q\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; classes = [ \"meter\" ]; capabilities = [ ]; }\n);\n",
	 "plugins.cfg:4: plugin 'q': classes: device class 'meter' is claimed by plugin 'p' "
	 "(line 2) and plugin 'q'; one plugin turns a class's events into alarms"},
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; classes = [ \"toaster\" ]; capabilities = [ ]; }\n);\n",
	 "plugins.cfg:2: plugin 'p': classes: no device class 'toaster' in the catalog"},
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; classes = [ \"meter\", \"meter\" ]; capabilities = [ ]; }\n);\n",
	 "plugins.cfg:2: plugin 'p': classes: 'meter' is listed twice"},
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"custom\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; classes = \"meter\"; capabilities = [ ]; }\n);\n",
	 "plugins.cfg:3: plugin 'p': classes: must be an array [ ... ] of strings"},
	{"plugins",
	 "plugins = (\n"
	 "  { name = \"p\"; family = \"toys\"; version = \"1.0.0\"; sdk = \"1.0\";\n"
	 "    description = \"d\"; capabilities = [ ]; }\n);\n",
	 "plugins.cfg:2: plugin 'p': family: 'toys' is not one of"},
};

static void test_bad_catalogs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		char err[1024];
		int rc = load_with(bad_cases[i].which, bad_cases[i].text, err, sizeof err);
		if (rc != LINLI_ECONFIG || !strstr(err, bad_cases[i].expect))
			fail_msg("case %zu: rc %d, error '%s', want '%s'", i, rc, err,
				 bad_cases[i].expect);
	}
}

/* Every shipped dataset file with one field's type broken is refused by name. */
/* ---- a bundle's datasets: catalog_with_datasets ---- */

#define FRAG(name, extra)                                                                   \
	"dataset = { name = \"" name "\"; title_zh = \"访\"; title_en = \"Visits\";\n"           \
	"  owner = \"vendor\"; family = \"public_services\"; level = \"community\";\n"                    \
	"  sharing = \"shared\"; source = \"community\";" extra "\n"                             \
	"  fields = ( { name = \"who\"; type = \"string\"; indexed = true; },\n"                 \
	"    { name = \"at\"; type = \"time\"; } ); };\n"

static int with(const struct catalog *base, const char *ns, const char *label, const char *text,
		struct catalog **out, char *err, size_t errlen)
{
	struct cat_fragment f = {ns, label, text, strlen(text), false};
	return catalog_with_datasets(base, &f, 1, 2, out, err, errlen);
}

static void refused_frag(const struct catalog *base, const char *ns, const char *label,
			 const char *text, const char *want)
{
	struct catalog *c = NULL;
	char err[1024] = "";
	int rc = with(base, ns, label, text, &c, err, sizeof err);
	if (rc == 0)
		fail_msg("accepted %s: %s", label, text);
	assert_null(c);
	if (!strstr(err, want))
		fail_msg("'%s' not in '%s'", want, err);
}

static void refused_frag_dev(const struct catalog *base, const char *label, const char *text,
			     const char *want)
{
	struct cat_fragment f = {"bad", label, text, strlen(text), true};
	struct catalog *c = NULL;
	char err[1024] = "";
	if (catalog_with_datasets(base, &f, 1, 2, &c, err, sizeof err) == 0)
		fail_msg("accepted %s: %s", label, text);
	assert_null(c);
	if (!strstr(err, want))
		fail_msg("'%s' not in '%s'", want, err);
}

static void test_bundle_datasets(void **state)
{
	(void)state;
	struct catalog *base;
	char err[1024] = "";
	if (catalog_load(SRCDIR "/catalog", &base, err, sizeof err))
		fail_msg("%s", err);
	/* two bundles, the same dataset name: two datasets, apart */
	const char *own =
	    "dataset = { name = \"stops\"; title_zh = \"站\"; title_en = \"Stops\";\n"
	    "  owner = \"vendor\"; family = \"public_services\"; level = \"community\";\n"
	    "  sharing = \"shared\"; source = \"community\";\n"
	    "  fields = ( { name = \"visit\"; type = \"ref\"; ref = \"visits\"; },\n"
	    "    { name = \"house\"; type = \"ref\"; ref = \"houses\"; } ); };\n";
	struct cat_fragment f[3] = {
	    {"acme", "acme/visits.cfg", FRAG("visits", ""), strlen(FRAG("visits", "")), false},
	    {"acme", "acme/stops.cfg", own, strlen(own), false},
	    {"beta", "beta/visits.cfg", FRAG("visits", " up = true;"),
	     strlen(FRAG("visits", " up = true;")), false},
	};
	struct catalog *c;
	if (catalog_with_datasets(base, f, 3, 7, &c, err, sizeof err))
		fail_msg("%s", err);
	assert_int_equal(c->version, 7);
	assert_int_equal(c->n_datasets, base->n_datasets + 3);
	assert_int_equal(atomic_load(&base->refs), 2); /* the new version holds its base */
	const struct cat_dataset *a = catalog_dataset(c, "acme" CAT_NS_SEP "visits");
	const struct cat_dataset *b = catalog_dataset(c, "beta" CAT_NS_SEP "visits");
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_null(catalog_dataset(c, "visits"));
	assert_false(a->up); /* not shared upward... */
	assert_true(b->up);  /* ...unless the bundle says so */
	assert_string_equal(a->file, "acme/visits.cfg");
	/* refs: the bundle's own dataset by its own name, then the catalog's */
	const struct cat_dataset *s = catalog_dataset(c, "acme" CAT_NS_SEP "stops");
	assert_string_equal(s->fields[0].ref, "acme" CAT_NS_SEP "visits");
	assert_ptr_equal(s->fields[0].ref_ds, a);
	assert_ptr_equal(s->fields[1].ref_ds, catalog_dataset(c, "houses"));
	/* the base's datasets, classes and plugins are there, shared */
	assert_non_null(catalog_dataset(c, "residents"));
	assert_ptr_equal(catalog_dataset(c, "residents")->name,
			 catalog_dataset(base, "residents")->name);
	assert_int_equal(c->n_classes, base->n_classes);
	assert_ptr_equal(catalog_plugin(c, "fire"), catalog_plugin(base, "fire"));
	/* a version made from a version; the first can go first */
	struct catalog *c2;
	if (with(c, "gamma", "gamma/visits.cfg", FRAG("visits", ""), &c2, err, sizeof err))
		fail_msg("%s", err);
	catalog_unref(c);
	assert_non_null(catalog_dataset(c2, "acme" CAT_NS_SEP "stops"));
	assert_ptr_equal(catalog_dataset(c2, "acme" CAT_NS_SEP "stops")->fields[0].ref_ds->name,
			 catalog_dataset(c2, "acme" CAT_NS_SEP "visits")->name);
	assert_non_null(catalog_dataset(c2, "gamma" CAT_NS_SEP "visits"));
	catalog_unref(c2);
	assert_int_equal(atomic_load(&base->refs), 1);

	/* refusals, each naming the bundle's file and line */
	refused_frag(base, "acme", "acme/visits.cfg", FRAG("visits", " bogus = 1;"),
		     "acme/visits.cfg:3: dataset: unknown key 'bogus'");
	refused_frag(base, "acme", "acme/visits.cfg", "dataset = { name = \"visits\"; \n oops",
		     "acme/visits.cfg:2: syntax error");
	refused_frag(base, "acme", "acme/visits.cfg", FRAG("other", ""),
		     "acme/visits.cfg:1: dataset: name: 'other' must equal the file name 'visits'");
	refused_frag(base, "acme", "acme/residents.cfg", FRAG("residents", ""),
		     "acme/residents.cfg:1: dataset: name: 'residents' is a dataset of the catalog");
	refused_frag(base, "acme", "acme/beta__visits.cfg", FRAG("beta__visits", ""),
		     "acme/beta__visits.cfg:1: dataset: name: 'beta__visits' holds '__'");
	refused_frag(base, "acme", "acme/visits.cfg", FRAG("visits", " written_by = \"hal\";"),
		     "written_by: a bundle's dataset is neither");
	refused_frag(base, "acme", "acme/visits.cfg", FRAG("visits", " down = true;"),
		     "down: a bundle's dataset does not come down to the children");
	refused_frag(base, "acme", "acme/stops.cfg", own,
		     "acme/stops.cfg:4: dataset: field 'visit': ref: no dataset 'visits' in the "
		     "bundle or the catalog");
	refused_frag(base, "a__b", "a__b/visits.cfg", FRAG("visits", ""),
		     "'a__b' cannot name a namespace");
	refused_frag(base, "acme_", "acme_/visits.cfg", FRAG("visits", ""),
		     "'acme_' cannot name a namespace");
	refused_frag(base, "a_very_long_bundle_name_of_forty_bytes_xx",
		     "x/visits_with_a_long_name_too.cfg", FRAG("visits_with_a_long_name_too", ""),
		     "is longer than 64 bytes");
	struct cat_fragment twice[2] = {f[0], f[0]};
	c = NULL;
	assert_int_equal(catalog_with_datasets(base, twice, 2, 2, &c, err, sizeof err),
			 LINLI_ECONFIG);
	assert_non_null(strstr(err, "acme/visits.cfg:1: dataset: name: 'visits' is brought twice"));
	assert_int_equal(atomic_load(&base->refs), 1);
	catalog_free(base);
}

#define CLS(name, extra)                                                                    \
	"device_class = { name = \"" name "\"; title_zh = \"表\"; title_en = \"Meter\";\n"   \
	"  heartbeat = 600;" extra "\n"                                                         \
	"  resources = ( { name = \"level\"; type = \"integer\"; access = \"r\"; } ); };\n"

/* A bundle's device class beside a dataset: named NS__NAME, base's classes shared and kept
   valid, base untouched; refusals with label and line. */
static void test_bundle_device_classes(void **state)
{
	(void)state;
	struct catalog *base;
	char err[1024] = "";
	if (catalog_load(SRCDIR "/catalog", &base, err, sizeof err))
		fail_msg("%s", err);
	struct cat_fragment f[2] = {
	    {"acme", "acme/visits.cfg", FRAG("visits", ""), strlen(FRAG("visits", "")), false},
	    {"acme", "acme/meter.cfg", CLS("meter", ""), strlen(CLS("meter", "")), true},
	};
	struct catalog *c = NULL;
	if (catalog_with_datasets(base, f, 2, 3, &c, err, sizeof err))
		fail_msg("%s", err);
	assert_int_equal(c->n_classes, base->n_classes + 1);
	assert_int_equal(c->n_datasets, base->n_datasets + 1);
	const struct cat_device_class *m = catalog_device_class(c, "acme__meter");
	assert_non_null(m);
	assert_string_equal(m->resources[0].name, "level");
	assert_null(catalog_device_class(c, "meter"));
	assert_null(catalog_device_class(base, "acme__meter"));
	assert_non_null(catalog_dataset(c, "acme__visits"));
	/* base's classes by value: the same strings */
	assert_ptr_equal(catalog_device_class(c, "door")->name,
			 catalog_device_class(base, "door")->name);
	catalog_unref(c);
	refused_frag_dev(base, "bad/meter.cfg", CLS("meter", " colour = 1;"),
			 "bad/meter.cfg:2: device_class: unknown key 'colour'");
	refused_frag_dev(base, "bad/door.cfg", CLS("door", ""),
			 "bad/door.cfg:1: device_class: name: 'door' is a device class of the "
			 "catalog");
	refused_frag_dev(base, "bad/m__x.cfg", CLS("m__x", ""), "holds '__'");
	refused_frag_dev(base, "bad/meter.cfg", CLS("other", ""),
			 "must be a name equal to the file name 'meter'");
	assert_int_equal(atomic_load(&base->refs), 1);
	catalog_free(base);
}

static void test_shipped_catalog_mutation(void **state)
{
	(void)state;
	char dir[64];
	make_catalog(dir, NULL, NULL, NULL, NULL);
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
		 "cp -r " SRCDIR "/catalog/. '%s'/ && sed -i 's/type = \"geo\"/type = \"point\"/' "
		 "'%s'/datasets/houses.cfg",
		 dir, dir);
	assert_int_equal(system(cmd), 0);
	struct catalog *c = NULL;
	char err[1024];
	assert_int_equal(catalog_load(dir, &c, err, sizeof err), LINLI_ECONFIG);
	assert_non_null(strstr(err, "datasets/houses.cfg:"));
	assert_non_null(strstr(err, "field 'location': type: unknown type 'point'"));
	remove_catalog(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shipped_catalog),
		cmocka_unit_test(test_empty_catalog),
		cmocka_unit_test(test_good_small_catalog),
		cmocka_unit_test(test_bad_catalogs),
		cmocka_unit_test(test_shipped_catalog_mutation),
		cmocka_unit_test(test_bundle_datasets),
		cmocka_unit_test(test_bundle_device_classes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
