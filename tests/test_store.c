/*
 * Unit tests of host/store.c, on real LMDB files in a temp dir: schema
 * validation (each type, each violation), index upkeep under update and
 * delete, scope scans, pagination, group commit, read-modify-write, map
 * growth, a full disk, damaged data files, backup and restore.
 *
 * A full disk is simulated by interposing the write calls LMDB makes
 * (pwrite, writev, write): when armed they fail with ENOSPC, as the kernel
 * does when the file system has no room left.
 */
#undef _FILE_OFFSET_BITS /* define the plain pwrite symbol liblmdb imports */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "catalog.h"
#include "json.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "store.h"

/* ---- fault injection: a full disk ---- */

static atomic_int disk_full_armed;

#define EXPORT __attribute__((visibility("default")))

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	if (atomic_load(&disk_full_armed) && fd > 2) {
		errno = ENOSPC;
		return -1;
	}
	return real(fd, buf, n, off);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	static ssize_t (*real)(int, const struct iovec *, int);
	if (!real)
		real = (ssize_t(*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
	if (atomic_load(&disk_full_armed) && fd > 2) {
		errno = ENOSPC;
		return -1;
	}
	return real(fd, iov, cnt);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	static ssize_t (*real)(int, const void *, size_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	if (atomic_load(&disk_full_armed) && fd > 2) {
		errno = ENOSPC;
		return -1;
	}
	return real(fd, buf, n);
}

/* ---- fixture: a test catalog and a store ---- */

static const char things_cfg[] =
	"dataset = { name = \"things\"; title_zh = \"物\"; title_en = \"Things\";\n"
	"  owner = \"test\"; family = \"core\"; level = \"community\";\n"
	"  sharing = \"shared\"; source = \"community\";\n"
	"  fields = (\n"
	"    { name = \"s\"; type = \"string\"; required = true; indexed = true; max_len = 8; },\n"
	"    { name = \"i\"; type = \"integer\"; min = 0; max = 100; indexed = true; },\n"
	"    { name = \"f\"; type = \"float\"; min = -1.0; max = 1.0; },\n"
	"    { name = \"b\"; type = \"boolean\"; indexed = true; },\n"
	"    { name = \"t\"; type = \"time\"; indexed = true; },\n"
	"    { name = \"e\"; type = \"enum\"; values = [ \"a\", \"b\", \"c\" ]; indexed = true; },\n"
	"    { name = \"r\"; type = \"ref\"; ref = \"others\"; },\n"
	"    { name = \"g\"; type = \"geo\"; },\n"
	"    { name = \"long\"; type = \"string\"; indexed = true; },\n"
	"    { name = \"note\"; type = \"string\"; }\n"
	"  ); };\n";
static const char others_cfg[] =
	"dataset = { name = \"others\"; title_zh = \"他\"; title_en = \"Others\";\n"
	"  owner = \"test\"; family = \"core\"; level = \"community\";\n"
	"  sharing = \"shared\"; source = \"community\";\n"
	"  fields = ( { name = \"name\"; type = \"string\"; indexed = %s; } ); };\n";
static const char gridded_cfg[] =
    "dataset = { name = \"gridded\"; title_zh = \"格\"; title_en = \"Gridded\";\n"
    "  owner = \"test\"; family = \"core\"; level = \"grid\";\n"
    "  sharing = \"shared\"; source = \"community\";\n"
    "  fields = ( { name = \"x\"; type = \"integer\"; } ); };\n";

static const char ups_cfg[] =
    "dataset = { name = \"ups\"; title_zh = \"上\"; title_en = \"Up\";\n"
    "  owner = \"test\"; family = \"core\"; level = \"community\";\n"
    "  sharing = \"conditional\"; up = true; source = \"community\";\n"
    "  fields = ( { name = \"n\"; type = \"integer\"; required = true; indexed = true; },\n"
    "    { name = \"pad\"; type = \"string\"; } ); };\n";

static const char downs_cfg[] =
    "dataset = { name = \"downs\"; title_zh = \"下\"; title_en = \"Down\";\n"
    "  owner = \"test\"; family = \"core\"; level = \"city\";\n"
    "  sharing = \"shared\"; down = true; source = \"city\";\n"
    "  fields = ( { name = \"n\"; type = \"integer\"; required = true; indexed = true; } ); };\n";

static const char nums_cfg[] =
    "dataset = { name = \"nums\"; title_zh = \"数\"; title_en = \"Numbers\";\n"
    "  owner = \"test\"; family = \"core\"; level = \"community\";\n"
    "  sharing = \"shared\"; source = \"community\";\n"
    "  fields = ( { name = \"n\"; type = \"integer\"; indexed = true; },\n"
    "    { name = \"x\"; type = \"float\"; indexed = true; },\n"
    "    { name = \"at\"; type = \"time\"; indexed = true; },\n"
    "    { name = \"k\"; type = \"enum\"; values = [ \"a\", \"b\" ]; indexed = true; },\n"
    "    { name = \"m\"; type = \"integer\"; } ); };\n";

#define YUELAN	"hefei/baohe/binhu/yuelan"
#define YUELAN2 "hefei/baohe/binhu/yuelan2"

struct fx {
	const char *origin; /* the change log's origin: kept when set */
	char dir[64];
	char cat_dir[128], data[128];
	struct catalog *cat;
	struct store *s;
	size_t map;
	bool sync;
};

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void write_catalog(struct fx *x, bool others_indexed)
{
	char ds[256], o[1024];
	snprintf(ds, sizeof ds, "%s/datasets", x->cat_dir);
	mkdir(x->cat_dir, 0700);
	mkdir(ds, 0700);
	write_file(ds, "things.cfg", things_cfg);
	snprintf(o, sizeof o, others_cfg, others_indexed ? "true" : "false");
	write_file(ds, "others.cfg", o);
	write_file(ds, "gridded.cfg", gridded_cfg);
	write_file(ds, "nums.cfg", nums_cfg);
	write_file(ds, "ups.cfg", ups_cfg);
	write_file(ds, "downs.cfg", downs_cfg);
	char err[1024];
	catalog_free(x->cat);
	x->cat = NULL;
	if (catalog_load(x->cat_dir, &x->cat, err, sizeof err))
		fail_msg("%s", err);
}

static int open_store(struct fx *x, char *err, size_t errlen)
{
	struct store_opts o = {
	    .dir = x->data, .map_size = x->map, .sync = x->sync, .origin = x->origin};
	return store_open(&o, x->cat, &x->s, err, errlen);
}

static void reopen(struct fx *x)
{
	store_close(x->s);
	x->s = NULL;
	char err[1024];
	if (open_store(x, err, sizeof err))
		fail_msg("%s", err);
}

static int setup_map(void **state, size_t map)
{
	struct fx *x = calloc(1, sizeof *x);
	strcpy(x->dir, "/tmp/linli-store-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->cat_dir, sizeof x->cat_dir, "%s/catalog", x->dir);
	snprintf(x->data, sizeof x->data, "%s/data", x->dir);
	mkdir(x->data, 0700);
	x->map = map;
	write_catalog(x, false);
	char err[1024];
	if (open_store(x, err, sizeof err))
		fail_msg("%s", err);
	*state = x;
	return 0;
}

static int setup(void **state) { return setup_map(state, 4u << 20); }
static int setup_small(void **state) { return setup_map(state, 1u << 20); }

static void rm_rf(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static int teardown(void **state)
{
	struct fx *x = *state;
	atomic_store(&disk_full_armed, 0);
	store_close(x->s);
	catalog_free(x->cat);
	rm_rf(x->dir);
	free(x);
	return 0;
}

/* ---- helpers ---- */

static char err[2048];

static int put_json(struct fx *x, const char *ds, const char *scope, const char *id,
		    const char *json, char *id_out)
{
	msgpack_sbuffer b;
	msgpack_packer pk;
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	char jerr[256];
	if (json_parse_to_mp(json, strlen(json), &pk, jerr, sizeof jerr))
		fail_msg("bad test JSON %s: %s", json, jerr);
	char idb[STORE_ID_MAX + 1];
	err[0] = '\0';
	int rc = store_put(x->s, ds, scope, id, b.data, b.size, id_out ? id_out : idb, NULL, err,
			   sizeof err);
	msgpack_sbuffer_destroy(&b);
	return rc;
}

static void must_put(struct fx *x, const char *ds, const char *scope, const char *id,
		     const char *json, char *id_out)
{
	if (put_json(x, ds, scope, id, json, id_out))
		fail_msg("put %s %s: %s", ds, json, err);
}

static void commit(struct fx *x) { assert_int_equal(store_batch_end(x->s), 0); }

/*
 * Get record id as an unpacked object (caller destroys `up`). Its strings
 * point into a buffer that lives until the next call.
 */
static int get_obj(struct fx *x, const char *ds, const char *scope, const char *id,
		   msgpack_unpacked *up)
{
	static char *keep;
	free(keep);
	msgpack_sbuffer b;
	msgpack_sbuffer_init(&b);
	int rc = store_get(x->s, ds, scope, id, &b, NULL, err, sizeof err);
	msgpack_unpacked_init(up);
	if (rc == 0) {
		size_t off = 0;
		assert_int_equal(msgpack_unpack_next(up, b.data, b.size, &off),
				 MSGPACK_UNPACK_SUCCESS);
	}
	keep = msgpack_sbuffer_release(&b);
	return rc;
}

/* Is string field `f` of the unpacked record `v`? */
static bool field_is(const msgpack_unpacked *up, const char *f, const char *v)
{
	const msgpack_object *o = mp_get(&up->data, f);
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(v) &&
	       memcmp(o->via.str.ptr, v, o->via.str.size) == 0;
}

struct coll {
	int n;
	char ids[600][STORE_ID_MAX + 1];
	char scopes[600][SCOPE_MAX + 1];
};

static int collect(void *ud, const struct store_row *r)
{
	struct coll *c = ud;
	if (c->n < 600) {
		snprintf(c->ids[c->n], sizeof c->ids[0], "%s", r->id);
		snprintf(c->scopes[c->n], sizeof c->scopes[0], "%s", r->scope);
	}
	c->n++;
	return 0;
}

/* Collects like collect() but ends each page after 7 rows. */
static int stop_at_7(void *ud, const struct store_row *r)
{
	static int in_page;
	collect(ud, r);
	if (++in_page == 7) {
		in_page = 0;
		return 1;
	}
	return 0;
}

/* Scan with up to two filters "f=v"; returns rows (or a negative code). */
static int scan(struct fx *x, const char *ds, const char *scope, const char *w1, const char *w2,
		size_t limit, const char *cursor, struct coll *c, char *cursor_out)
{
	struct store_where w[2];
	char f[2][64];
	int n = 0;
	const char *ws[2] = {w1, w2};
	for (int i = 0; i < 2; i++)
		if (ws[i]) {
			const char *eq = strchr(ws[i], '=');
			snprintf(f[n], sizeof f[n], "%.*s", (int)(eq - ws[i]), ws[i]);
			w[n].field = f[n];
			w[n].value = eq + 1;
			n++;
		}
	struct store_query q = {.dataset = ds,
				.scope = scope,
				.where = w,
				.n_where = n,
				.limit = limit,
				.cursor = cursor};
	char cb[STORE_CURSOR_MAX];
	memset(c, 0, sizeof *c);
	return store_scan(x->s, &q, collect, c, cursor_out ? cursor_out : cb, err, sizeof err);
}

static struct coll C; /* big: keep it off the stack */

/* ---- schema validation ---- */

static void test_each_type_accepted(void **state)
{
	struct fx *x = *state;
	char id[STORE_ID_MAX + 1];
	must_put(x, "things", YUELAN, NULL,
		 "{\"s\":\"héllo\",\"i\":42,\"f\":0.5,\"b\":true,\"t\":\"2026-01-02T03:04:05.250+"
		 "08:00\","
		 "\"e\":\"b\",\"r\":\"o-1\",\"g\":{\"lat\":31.8,\"lon\":117.25},\"note\":null}",
		 id);
	commit(x);
	msgpack_unpacked up;
	assert_int_equal(get_obj(x, "things", YUELAN, id, &up), 0);
	const msgpack_object *o = &up.data;
	assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
	assert_int_equal(o->via.map.size, 8); /* note: null means absent */
	assert_true(mp_eq(mp_get(o, "s"), "héllo"));
	assert_int_equal(mp_get(o, "i")->via.u64, 42);
	assert_true(mp_get(o, "f")->via.f64 == 0.5);
	assert_true(mp_get(o, "b")->via.boolean);
	/* 2026-01-01T19:04:05.250Z */
	assert_int_equal(mp_get(o, "t")->via.i64, 1767294245250LL);
	assert_true(mp_eq(mp_get(o, "e"), "b"));
	assert_true(mp_eq(mp_get(o, "r"), "o-1"));
	const msgpack_object *g = mp_get(o, "g");
	assert_true(mp_get(g, "lat")->via.f64 == 31.8 && mp_get(g, "lon")->via.f64 == 117.25);
	assert_null(mp_get(o, "note"));
	/* Fields come back in catalog order. */
	assert_true(mp_eq(&o->via.map.ptr[0].key, "s"));
	assert_true(mp_eq(&o->via.map.ptr[7].key, "g"));
	msgpack_unpacked_destroy(&up);

	/* A float field takes an integer; a time takes ms; a date alone is midnight UTC. */
	must_put(x, "things", YUELAN, "t2", "{\"s\":\"x\",\"f\":1,\"t\":-86400000}", NULL);
	must_put(x, "things", YUELAN, "t3", "{\"s\":\"x\",\"t\":\"1970-01-02\"}", NULL);
	commit(x);
	assert_int_equal(get_obj(x, "things", NULL, "t3", &up), 0);
	assert_int_equal(mp_get(&up.data, "t")->via.u64, 86400000);
	msgpack_unpacked_destroy(&up);
	assert_int_equal(get_obj(x, "things", NULL, "t2", &up), 0);
	assert_int_equal(mp_get(&up.data, "f")->type, MSGPACK_OBJECT_FLOAT64);
	msgpack_unpacked_destroy(&up);
}

struct vcase {
	const char *json;
	const char *expect;
};

static const struct vcase violations[] = {
	{"{}", "things: field 's': required"},
	{"{\"s\":null}", "things: field 's': required"},
	{"[1,2]", "things: a record must be a map of fields, not an array"},
	{"{\"s\":\"x\",\"zz\":1}", "things: field 'zz': not in the schema of things"},
	{"{\"s\":\"x\",\"id\":\"a\"}", "things: field 'id': not a field"},
	{"{\"s\":\"x\",\"scope\":\"a\"}", "things: field 'scope': not a field"},
	/* string */
	{"{\"s\":5}", "things: field 's': must be a string, not an integer"},
	{"{\"s\":\"123456789\"}", "things: field 's': 9 bytes, longer than max_len 8"},
	/* integer */
	{"{\"s\":\"x\",\"i\":1.5}", "things: field 'i': must be an integer, not a float"},
	{"{\"s\":\"x\",\"i\":\"3\"}", "things: field 'i': must be an integer, not a string"},
	{"{\"s\":\"x\",\"i\":-1}", "things: field 'i': -1 is below min 0"},
	{"{\"s\":\"x\",\"i\":101}", "things: field 'i': 101 is above max 100"},
	/* float */
	{"{\"s\":\"x\",\"f\":\"0.5\"}", "things: field 'f': must be a number, not a string"},
	{"{\"s\":\"x\",\"f\":-1.5}", "things: field 'f': -1.5 is below min -1"},
	{"{\"s\":\"x\",\"f\":2}", "things: field 'f': 2 is above max 1"},
	/* boolean */
	{"{\"s\":\"x\",\"b\":1}", "things: field 'b': must be true or false, not an integer"},
	{"{\"s\":\"x\",\"b\":\"true\"}", "things: field 'b': must be true or false, not a string"},
	/* time */
	{"{\"s\":\"x\",\"t\":\"yesterday\"}", "things: field 't': 'yesterday' is not an RFC 3339 time"},
	{"{\"s\":\"x\",\"t\":\"2026-02-30T00:00:00Z\"}", "things: field 't': '2026-02-30T00:00:00Z' is not"},
	{"{\"s\":\"x\",\"t\":\"2026-01-02T03:04:05\"}", "is not an RFC 3339 time"},
	{"{\"s\":\"x\",\"t\":1.5}", "things: field 't': must be a time"},
	{"{\"s\":\"x\",\"t\":999999999999999999}", "things: field 't': 999999999999999999 ms is outside"},
	/* enum */
	{"{\"s\":\"x\",\"e\":\"d\"}", "things: field 'e': 'd' is not one of a, b, c"},
	{"{\"s\":\"x\",\"e\":1}", "things: field 'e': must be a string, not an integer"},
	/* ref */
	{"{\"s\":\"x\",\"r\":\"a/b\"}", "things: field 'r': 'a/b' is not a record id of others"},
	{"{\"s\":\"x\",\"r\":\"\"}", "things: field 'r': '' is not a record id of others"},
	{"{\"s\":\"x\",\"r\":7}", "things: field 'r': must be a string, not an integer"},
	/* geo */
	{"{\"s\":\"x\",\"g\":{\"lat\":1}}", "things: field 'g': must be a map {\"lat\""},
	{"{\"s\":\"x\",\"g\":[1,2]}", "things: field 'g': must be a map"},
	{"{\"s\":\"x\",\"g\":{\"lat\":1,\"lon\":2,\"h\":3}}", "things: field 'g': must be a map"},
	{"{\"s\":\"x\",\"g\":{\"lat\":91,\"lon\":2}}", "things: field 'g': lat 91 is outside -90..90"},
	{"{\"s\":\"x\",\"g\":{\"lat\":1,\"lon\":-181}}", "things: field 'g': lon -181 is outside"},
	{"{\"s\":\"x\",\"g\":{\"lat\":\"1\",\"lon\":2}}", "things: field 'g': lat and lon must be numbers"},
};

/* Records JSON cannot express: bad UTF-8, duplicate keys, NaN, huge integers. */
static int put_raw(struct fx *x, void (*build)(msgpack_packer *))
{
	msgpack_sbuffer b;
	msgpack_packer pk;
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	build(&pk);
	char id[STORE_ID_MAX + 1];
	int rc = store_put(x->s, "things", YUELAN, NULL, b.data, b.size, id, NULL, err, sizeof err);
	msgpack_sbuffer_destroy(&b);
	return rc;
}
static void bad_utf8(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	mp_str(pk, "s");
	msgpack_pack_str(pk, 2);
	msgpack_pack_str_body(pk, "\xc3\x28", 2);
}
static void dup_key(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	mp_kv_str(pk, "s", "a");
	mp_kv_str(pk, "s", "b");
}
static void nan_float(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	mp_kv_str(pk, "s", "a");
	mp_kv_double(pk, "f", 0.0 / 0.0);
}
static void huge_int(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	mp_kv_str(pk, "s", "a");
	mp_kv_uint(pk, "i", UINT64_MAX);
}
static void nul_byte(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	mp_str(pk, "s");
	msgpack_pack_str(pk, 3);
	msgpack_pack_str_body(pk, "a\0b", 3);
}
static void int_key(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 1);
	msgpack_pack_int(pk, 1);
	msgpack_pack_int(pk, 2);
}

static void test_each_violation_refused(void **state)
{
	struct fx *x = *state;
	must_put(x, "things", YUELAN, "keep", "{\"s\":\"kept\",\"i\":1}", NULL);
	commit(x);
	for (size_t i = 0; i < sizeof violations / sizeof violations[0]; i++) {
		int rc = put_json(x, "things", YUELAN, NULL, violations[i].json, NULL);
		if (rc != LINLI_ESCHEMA || !strstr(err, violations[i].expect))
			fail_msg("case %zu %s: rc %d '%s', want '%s'", i, violations[i].json, rc, err,
				 violations[i].expect);
		/* Replacing an existing record with a bad one leaves it as it was. */
		rc = put_json(x, "things", YUELAN, "keep", violations[i].json, NULL);
		assert_int_equal(rc, LINLI_ESCHEMA);
	}
	struct {
		void (*build)(msgpack_packer *);
		const char *expect;
	} raw[] = {
		{bad_utf8, "things: field 's': is not valid UTF-8"},
		{nul_byte, "things: field 's': contains a NUL byte"},
		{dup_key, "things: field 's': given twice"},
		{nan_float, "things: field 'f': must be a finite number"},
		{huge_int, "things: field 'i': must be an integer, not an integer above 2^63-1"},
		{int_key, "things: field names must be strings"},
	};
	for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
		int rc = put_raw(x, raw[i].build);
		if (rc != LINLI_ESCHEMA || !strstr(err, raw[i].expect))
			fail_msg("raw case %zu: rc %d '%s', want '%s'", i, rc, err, raw[i].expect);
	}
	/* Not MessagePack at all. */
	char id[STORE_ID_MAX + 1];
	assert_int_equal(store_put(x->s, "things", YUELAN, NULL, "\xc1", 1, id, NULL, err, sizeof err),
			 LINLI_ESCHEMA);
	assert_non_null(strstr(err, "not one MessagePack map"));
	assert_int_equal(put_json(x, "nope", YUELAN, NULL, "{}", NULL), LINLI_ENOENT);
	assert_non_null(strstr(err, "no dataset 'nope'"));
	commit(x);
	/* Nothing of any refused write was stored. */
	assert_int_equal(store_count(x->s, "things"), 1);
	assert_int_equal(scan(x, "things", YUELAN, NULL, NULL, 0, NULL, &C, NULL), 1);
	msgpack_unpacked up;
	assert_int_equal(get_obj(x, "things", YUELAN, "keep", &up), 0);
	assert_true(mp_eq(mp_get(&up.data, "s"), "kept"));
	assert_int_equal(up.data.via.map.size, 2);
	msgpack_unpacked_destroy(&up);
	struct store_stats st;
	store_stats(x->s, &st);
	assert_int_equal(st.index_entries, 2); /* s and i of "keep" only */
}

static void test_scope_and_id_rules(void **state)
{
	struct fx *x = *state;
	assert_int_equal(put_json(x, "things", "hefei/baohe/binhu", NULL, "{\"s\":\"x\"}", NULL),
			 LINLI_EINVAL);
	assert_non_null(strstr(err, "things: scope 'hefei/baohe/binhu' is a street, but things "
				    "records live at the community level or below"));
	assert_int_equal(put_json(x, "gridded", YUELAN, NULL, "{\"x\":1}", NULL), LINLI_EINVAL);
	assert_non_null(strstr(err, "gridded records live at the grid level"));
	must_put(x, "gridded", YUELAN "/g03", NULL, "{\"x\":1}", NULL);
	must_put(x, "things", YUELAN "/g03", NULL, "{\"s\":\"deeper\"}", NULL);
	assert_int_equal(put_json(x, "things", "Hefei//x", NULL, "{\"s\":\"x\"}", NULL), LINLI_EINVAL);
	assert_non_null(strstr(err, "bad scope 'Hefei//x'"));
	assert_int_equal(put_json(x, "things", YUELAN, "bad/id", "{\"s\":\"x\"}", NULL), LINLI_EINVAL);
	assert_non_null(strstr(err, "bad id 'bad/id'"));
	/* Ids are unique per scope: a sibling may hold the same id. */
	must_put(x, "things", YUELAN, "same", "{\"s\":\"x\"}", NULL);
	must_put(x, "things", YUELAN2, "same", "{\"s\":\"y\"}", NULL);
	commit(x);
	assert_int_equal(store_count(x->s, "things"), 3);
	assert_int_equal(store_count(x->s, "gridded"), 1);
}

static void test_generated_ids_are_time_ordered(void **state)
{
	struct fx *x = *state;
	char prev[STORE_ID_MAX + 1] = "", id[STORE_ID_MAX + 1];
	for (int i = 0; i < 300; i++) {
		must_put(x, "others", YUELAN, NULL, "{\"name\":\"n\"}", id);
		/* TTTTTTTTTTTTSSSS-NNNNNNNNNN: time, sequence, the node's id. */
		assert_int_equal(strlen(id), 27);
		assert_int_equal(id[16], '-');
		assert_true(store_id_ok(id));
		assert_true(i == 0 || strcmp(prev + 16, id + 16) == 0);
		assert_true(strcmp(prev, id) < 0);
		strcpy(prev, id);
	}
	commit(x);
	/* A scan returns them in creation order. */
	assert_int_equal(scan(x, "others", YUELAN, NULL, NULL, 300, NULL, &C, NULL), 300);
	for (int i = 1; i < 300; i++)
		assert_true(strcmp(C.ids[i - 1], C.ids[i]) < 0);
}

/* ---- indexes ---- */

static int count_where(struct fx *x, const char *w)
{
	int n = scan(x, "things", NULL, w, NULL, 0, NULL, &C, NULL);
	if (n < 0)
		fail_msg("scan %s: %s", w, err);
	return n;
}

static void test_index_upkeep(void **state)
{
	struct fx *x = *state;
	char longv[200];
	memset(longv, 'L', sizeof longv - 1);
	longv[sizeof longv - 1] = '\0';
	char json[400];
	snprintf(json, sizeof json, "{\"s\":\"one\",\"i\":1,\"e\":\"a\",\"b\":true,\"long\":\"%s\"}",
		 longv);
	must_put(x, "things", YUELAN, "r1", json, NULL);
	must_put(x, "things", YUELAN, "r2", "{\"s\":\"two\",\"i\":1,\"e\":\"b\",\"t\":1000}", NULL);
	must_put(x, "things", YUELAN2, "r3", "{\"s\":\"one\",\"i\":2,\"e\":\"a\",\"b\":false}", NULL);
	commit(x);
	assert_int_equal(count_where(x, "i=1"), 2);
	assert_int_equal(count_where(x, "s=one"), 2);
	assert_int_equal(count_where(x, "e=a"), 2);
	assert_int_equal(count_where(x, "b=true"), 1);
	assert_int_equal(count_where(x, "b=false"), 1);
	assert_int_equal(count_where(x, "t=1000"), 1);
	assert_int_equal(count_where(x, "t=1970-01-01T00:00:01Z"), 1);
	char w[260];
	snprintf(w, sizeof w, "long=%s", longv); /* a hashed index value */
	assert_int_equal(count_where(x, w), 1);
	assert_string_equal(C.ids[0], "r1");
	longv[0] = 'M';
	snprintf(w, sizeof w, "long=%s", longv);
	assert_int_equal(count_where(x, w), 0);

	/* Update: the old values leave the index, the new ones enter it. */
	must_put(x, "things", YUELAN, "r1", "{\"s\":\"uno\",\"i\":5,\"e\":\"a\"}", NULL);
	/* Visible to the owner inside the batch already. */
	assert_int_equal(count_where(x, "s=uno"), 1);
	commit(x);
	assert_int_equal(count_where(x, "s=one"), 1);
	assert_string_equal(C.ids[0], "r3");
	assert_int_equal(count_where(x, "s=uno"), 1);
	assert_int_equal(count_where(x, "i=1"), 1);
	assert_int_equal(count_where(x, "i=5"), 1);
	assert_int_equal(count_where(x, "b=true"), 0);
	assert_int_equal(count_where(x, "e=a"), 2);
	longv[0] = 'L';
	snprintf(w, sizeof w, "long=%s", longv);
	assert_int_equal(count_where(x, w), 0);
	/* Two filters: both must hold. */
	assert_int_equal(scan(x, "things", NULL, "e=a", "i=2", 0, NULL, &C, NULL), 1);
	assert_string_equal(C.ids[0], "r3");
	assert_int_equal(scan(x, "things", NULL, "e=a", "i=3", 0, NULL, &C, NULL), 0);

	/* Delete: every index entry goes. */
	assert_int_equal(store_delete(x->s, "things", NULL, "r1", err, sizeof err), 0);
	assert_int_equal(store_delete(x->s, "things", NULL, "r2", err, sizeof err), 0);
	commit(x);
	assert_int_equal(count_where(x, "i=5"), 0);
	assert_int_equal(count_where(x, "t=1000"), 0);
	assert_int_equal(count_where(x, "e=a"), 1);
	struct store_stats st;
	store_stats(x->s, &st);
	assert_int_equal(st.records, 1);
	assert_int_equal(st.index_entries, 4); /* r3: s, i, b, e */
	assert_int_equal(store_delete(x->s, "things", NULL, "r1", err, sizeof err), LINLI_ENOENT);

	/* Filters: unknown, not indexed, badly typed. */
	assert_int_equal(count_where(x, "s=one"), 1);
	assert_int_equal(scan(x, "things", NULL, "zz=1", NULL, 0, NULL, &C, NULL), LINLI_EINVAL);
	assert_non_null(strstr(err, "no field 'zz'"));
	assert_int_equal(scan(x, "things", NULL, "f=1", NULL, 0, NULL, &C, NULL), LINLI_EINVAL);
	assert_non_null(strstr(err, "field 'f' is not indexed; filters take indexed fields (s, i, b, t, e, long)"));
	assert_int_equal(scan(x, "things", NULL, "i=x", NULL, 0, NULL, &C, NULL), LINLI_EINVAL);
	assert_int_equal(scan(x, "things", NULL, "e=z", NULL, 0, NULL, &C, NULL), LINLI_EINVAL);
	assert_non_null(strstr(err, "'z' is not one of a, b, c"));
	assert_int_equal(scan(x, "things", NULL, "b=yes", NULL, 0, NULL, &C, NULL), LINLI_EINVAL);
}

static void test_index_rebuilt_when_catalog_changes(void **state)
{
	struct fx *x = *state;
	must_put(x, "others", YUELAN, "o1", "{\"name\":\"ann\"}", NULL);
	must_put(x, "others", YUELAN, "o2", "{\"name\":\"bob\"}", NULL);
	commit(x);
	assert_int_equal(scan(x, "others", NULL, "name=ann", NULL, 0, NULL, &C, NULL), LINLI_EINVAL);
	store_close(x->s);
	x->s = NULL;
	write_catalog(x, true); /* "name" is indexed now */
	reopen(x);
	assert_int_equal(scan(x, "others", NULL, "name=ann", NULL, 0, NULL, &C, NULL), 1);
	assert_string_equal(C.ids[0], "o1");
	store_close(x->s);
	x->s = NULL;
	write_catalog(x, false); /* and not any more: its entries go */
	reopen(x);
	struct store_stats st;
	store_stats(x->s, &st);
	assert_int_equal(st.index_entries, 0);
	assert_int_equal(store_count(x->s, "others"), 2);
}

/* ---- scopes and pagination ---- */

static void test_scope_scans_never_cross_to_siblings(void **state)
{
	struct fx *x = *state;
	must_put(x, "things", YUELAN, "a1", "{\"s\":\"x\",\"e\":\"a\"}", NULL);
	must_put(x, "things", YUELAN "/g01", "a2", "{\"s\":\"x\",\"e\":\"a\"}", NULL);
	must_put(x, "things", YUELAN2, "b1", "{\"s\":\"x\",\"e\":\"a\"}", NULL);
	must_put(x, "things", YUELAN2 "/g01", "b2", "{\"s\":\"x\",\"e\":\"a\"}", NULL);
	must_put(x, "things", "hefei/baohe/binhu/yue", "c1", "{\"s\":\"x\",\"e\":\"a\"}", NULL);
	commit(x);
	const char *filters[] = {NULL, "e=a", "s=x"};
	for (int f = 0; f < 3; f++) {
		assert_int_equal(scan(x, "things", YUELAN, filters[f], NULL, 0, NULL, &C, NULL), 2);
		assert_string_equal(C.ids[0], "a1");
		assert_string_equal(C.scopes[0], YUELAN);
		assert_string_equal(C.ids[1], "a2");
		assert_string_equal(C.scopes[1], YUELAN "/g01");
		assert_int_equal(scan(x, "things", YUELAN2, filters[f], NULL, 0, NULL, &C, NULL), 2);
		assert_string_equal(C.ids[0], "b1");
		assert_int_equal(scan(x, "things", YUELAN "/g01", filters[f], NULL, 0, NULL, &C, NULL),
				 1);
		assert_int_equal(scan(x, "things", "hefei/baohe/binhu", filters[f], NULL, 0, NULL, &C,
				      NULL),
				 5);
		assert_int_equal(scan(x, "things", "hefei/baohe/binhu/yue", filters[f], NULL, 0, NULL,
				      &C, NULL),
				 1);
	}
	/* Get and delete by id honour the scope too. */
	msgpack_unpacked up;
	assert_int_equal(get_obj(x, "things", YUELAN, "b1", &up), LINLI_ENOENT);
	msgpack_unpacked_destroy(&up);
	assert_int_equal(get_obj(x, "things", YUELAN, "a2", &up), 0); /* in the subtree */
	msgpack_unpacked_destroy(&up);
	assert_int_equal(store_delete(x->s, "things", YUELAN, "b2", err, sizeof err), LINLI_ENOENT);
	commit(x);
	assert_int_equal(store_count(x->s, "things"), 5);
}

/*
 * Ids are unique per (dataset, scope): siblings with a shared prefix hold
 * the same id, and nothing a write or a lookup of one says depends on the
 * other (issue 12, defect 5).
 */
static void test_ids_per_scope(void **state)
{
	struct fx *x = *state;
	bool created = false;
	must_put(x, "things", YUELAN2, "r2", "{\"s\":\"theirs\",\"e\":\"b\"}", NULL);
	commit(x);
	/* The same id at the sibling: created, and no message at all. */
	msgpack_sbuffer b;
	msgpack_sbuffer_init(&b);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	mp_kv_str(&pk, "s", "ours");
	char id[STORE_ID_MAX + 1];
	err[0] = '\0';
	assert_int_equal(
	    store_put(x->s, "things", YUELAN, "r2", b.data, b.size, id, &created, err, sizeof err),
	    0);
	assert_true(created);
	assert_string_equal(err, "");
	/* Replacing it replaces only ours. */
	assert_int_equal(
	    store_put(x->s, "things", YUELAN, "r2", b.data, b.size, id, &created, err, sizeof err),
	    0);
	assert_false(created);
	msgpack_sbuffer_destroy(&b);
	commit(x);
	assert_int_equal(store_count(x->s, "things"), 2);

	/* A lookup within a subtree finds its own record only. */
	msgpack_unpacked up;
	char where[SCOPE_MAX + 1];
	msgpack_sbuffer_init(&b);
	assert_int_equal(store_get(x->s, "things", YUELAN, "r2", &b, where, err, sizeof err), 0);
	assert_string_equal(where, YUELAN);
	assert_int_equal(get_obj(x, "things", YUELAN2, "r2", &up), 0);
	assert_true(field_is(&up, "s", "theirs"));
	msgpack_unpacked_destroy(&up);
	/* At the exact address. */
	b.size = 0;
	assert_int_equal(store_get_at(x->s, "things", YUELAN2, "r2", &b, err, sizeof err), 0);
	assert_int_equal(store_get_at(x->s, "things", YUELAN "/g01", "r2", &b, err, sizeof err),
			 LINLI_ENOENT);
	assert_string_equal(err, "things: no record 'r2' at scope " YUELAN "/g01");
	msgpack_sbuffer_destroy(&b);

	/* Not found says the same whether or not the id exists elsewhere. */
	char absent[sizeof err];
	assert_int_equal(get_obj(x, "things", YUELAN "/g01", "r9", &up), LINLI_ENOENT);
	msgpack_unpacked_destroy(&up);
	snprintf(absent, sizeof absent, "%s", err);
	assert_int_equal(get_obj(x, "things", YUELAN "/g01", "r2", &up), LINLI_ENOENT);
	msgpack_unpacked_destroy(&up);
	assert_string_equal(absent, "things: no record 'r9' in scope " YUELAN "/g01");
	assert_string_equal(err, "things: no record 'r2' in scope " YUELAN "/g01");

	/* Several within the subtree: ask for the scope, naming only those inside it. */
	must_put(x, "things", YUELAN "/g01", "r2", "{\"s\":\"grid\"}", NULL);
	commit(x);
	assert_int_equal(get_obj(x, "things", YUELAN, "r2", &up), LINLI_EINVAL);
	msgpack_unpacked_destroy(&up);
	assert_string_equal(err, "things: 2 records have id 'r2' in scope " YUELAN " (at " YUELAN
				 ", " YUELAN "/g01); give the scope of the one you mean");
	assert_null(strstr(err, YUELAN2));
	assert_int_equal(store_delete(x->s, "things", YUELAN, "r2", err, sizeof err), LINLI_EINVAL);
	assert_null(strstr(err, YUELAN2));
	/* The whole tree sees all three. */
	assert_int_equal(get_obj(x, "things", NULL, "r2", &up), LINLI_EINVAL);
	msgpack_unpacked_destroy(&up);
	assert_non_null(strstr(err, "3 records have id 'r2'"));

	/* Delete at the exact address: only that one goes. */
	assert_int_equal(store_delete_at(x->s, "things", YUELAN, "r2", err, sizeof err), 0);
	assert_int_equal(store_delete_at(x->s, "things", YUELAN, "r2", err, sizeof err),
			 LINLI_ENOENT);
	commit(x);
	assert_int_equal(store_count(x->s, "things"), 2);
	assert_int_equal(scan(x, "things", NULL, "s=theirs", NULL, 0, NULL, &C, NULL), 1);
	assert_int_equal(scan(x, "things", NULL, "s=grid", NULL, 0, NULL, &C, NULL), 1);
	assert_int_equal(scan(x, "things", NULL, "s=ours", NULL, 0, NULL, &C, NULL), 0);
	/* Now one is left within YUELAN: found by id alone. */
	assert_int_equal(get_obj(x, "things", YUELAN, "r2", &up), 0);
	assert_true(field_is(&up, "s", "grid"));
	msgpack_unpacked_destroy(&up);
	assert_int_equal(store_delete(x->s, "things", YUELAN, "r2", err, sizeof err), 0);
	commit(x);
	assert_int_equal(get_obj(x, "things", YUELAN2, "r2", &up), 0);
	msgpack_unpacked_destroy(&up);
}

/* The kernel's registries (system datasets) keep ids unique on the node, naming no scope. */
static void test_node_wide_ids(void **state)
{
	struct fx *x = *state;
	const char *rec = "{\"user\":\"u\",\"expires\":1,\"created\":1}";
	must_put(x, "sessions", YUELAN2, "s1", rec, NULL);
	commit(x);
	assert_int_equal(put_json(x, "sessions", YUELAN, "s1", rec, NULL), LINLI_EEXIST);
	assert_string_equal(err,
			    "sessions: id 's1' is taken (ids of sessions are unique on the node)");
	must_put(x, "sessions", YUELAN2, "s1", rec, NULL); /* replacing at its own scope */
	char id[STORE_ID_MAX + 1];
	must_put(x, "sessions", YUELAN, NULL, rec, id);
	commit(x);
	assert_int_equal(store_count(x->s, "sessions"), 2);
}

static void test_pagination(void **state)
{
	struct fx *x = *state;
	char ids[250][STORE_ID_MAX + 1];
	for (int i = 0; i < 250; i++)
		must_put(x, "things", i % 2 ? YUELAN : YUELAN "/g02", NULL,
			 i % 5 ? "{\"s\":\"p\",\"e\":\"a\"}" : "{\"s\":\"p\",\"e\":\"b\"}", ids[i]);
	must_put(x, "things", YUELAN2, NULL, "{\"s\":\"p\",\"e\":\"a\"}", NULL);
	commit(x);
	char cur[STORE_CURSOR_MAX] = "", next[STORE_CURSOR_MAX];
	int seen = 0, pages = 0;
	char all[260][STORE_ID_MAX + 1];
	do {
		int n = scan(x, "things", YUELAN, NULL, NULL, 100, cur, &C, next);
		assert_true(n >= 0);
		for (int i = 0; i < n; i++)
			strcpy(all[seen + i], C.ids[i]);
		seen += n;
		pages++;
		strcpy(cur, next);
		if (pages == 1) /* a record added between pages shows up on a later page */
			must_put(x, "things", YUELAN, "zzz-late", "{\"s\":\"p\",\"e\":\"a\"}", NULL);
	} while (cur[0]);
	assert_int_equal(pages, 3);
	assert_int_equal(seen, 251);
	for (int i = 0; i < 251; i++)
		for (int j = i + 1; j < 251; j++)
			assert_string_not_equal(all[i], all[j]);
	/* Filtered pages: 200 of the 251 have e=a. */
	cur[0] = '\0';
	seen = pages = 0;
	do {
		int n = scan(x, "things", YUELAN, "e=a", "s=p", 64, cur, &C, next);
		assert_true(n >= 0 && n <= 64);
		seen += n;
		pages++;
		strcpy(cur, next);
	} while (cur[0]);
	assert_int_equal(seen, 201);
	assert_int_equal(pages, 4);
	/* A callback may end a page early; the cursor goes on after its last row. */
	struct coll *c7 = calloc(1, sizeof *c7);
	cur[0] = '\0';
	seen = 0;
	do {
		struct store_query q = {
		    .dataset = "things", .scope = YUELAN, .limit = 100, .cursor = cur};
		int n = store_scan(x->s, &q, stop_at_7, c7, next, err, sizeof err);
		assert_true(n >= 0 && n <= 7);
		seen += n;
		strcpy(cur, next);
	} while (cur[0]);
	assert_int_equal(seen, 251);
	assert_int_equal(c7->n, 251);
	for (int i = 1; i < 251; i++) { /* key order: scope "/", then id; no repeats */
		char a[320], b[320];
		snprintf(a, sizeof a, "%s/%c%s", c7->scopes[i - 1], 1, c7->ids[i - 1]);
		snprintf(b, sizeof b, "%s/%c%s", c7->scopes[i], 1, c7->ids[i]);
		assert_true(strcmp(a, b) < 0);
	}
	free(c7);
	/* An exact page leaves no cursor behind. */
	assert_int_equal(scan(x, "things", YUELAN, "e=b", NULL, 50, NULL, &C, next), 50);
	assert_string_equal(next, "");
	/* A cursor only fits its own query. */
	assert_int_equal(scan(x, "things", YUELAN, NULL, NULL, 10, NULL, &C, next), 10);
	assert_int_equal(scan(x, "things", YUELAN2, NULL, NULL, 10, next, &C, NULL), LINLI_EINVAL);
	assert_non_null(strstr(err, "the cursor does not belong to this query"));
	assert_int_equal(scan(x, "things", YUELAN, "e=a", NULL, 10, next, &C, NULL), LINLI_EINVAL);
	assert_int_equal(scan(x, "things", YUELAN, NULL, NULL, 10, "!!garbage!!", &C, NULL),
			 LINLI_EINVAL);
	assert_int_equal(scan(x, "things", YUELAN, NULL, NULL, STORE_SCAN_MAX + 1, NULL, &C, NULL),
			 LINLI_EINVAL);
}

/* ---- group commit and read-modify-write ---- */

struct waited {
	int calls, rc;
	char msg[512];
};

static void on_done(void *arg, int rc, const char *msg)
{
	struct waited *w = arg;
	w->calls++;
	w->rc = rc;
	snprintf(w->msg, sizeof w->msg, "%s", msg ? msg : "");
}

static void test_group_commit(void **state)
{
	struct fx *x = *state;
	struct waited w[3] = {{0}};
	assert_int_equal(store_on_commit(x->s, on_done, &w[0]), LINLI_ESTATE); /* nothing pending */
	for (int i = 0; i < 3; i++) {
		must_put(x, "others", YUELAN, NULL, "{\"name\":\"n\"}", NULL);
		assert_int_equal(store_on_commit(x->s, on_done, &w[i]), 0);
	}
	assert_int_equal(w[0].calls, 0);
	struct store_stats st;
	store_stats(x->s, &st);
	uint64_t commits = st.commits;
	commit(x);
	for (int i = 0; i < 3; i++)
		assert_true(w[i].calls == 1 && w[i].rc == 0);
	store_stats(x->s, &st);
	assert_int_equal(st.commits, commits + 1); /* one commit for the batch */
	assert_int_equal(store_batch_end(x->s), 0); /* nothing pending: no commit */
	store_stats(x->s, &st);
	assert_int_equal(st.commits, commits + 1);
	assert_int_equal(store_count(x->s, "others"), 3);
}

/*
 * Group commit across turns (store_batch_turn): nothing more queued commits
 * at once; more queued keeps the batch open, later writes join it, until a
 * bound; a refused write never touches the batch or its waiters.
 */
static void test_group_commit_adapts_to_load(void **state)
{
	struct fx *x = *state;
	struct store_stats st;
	store_stats(x->s, &st);
	assert_int_equal(st.group_max, STORE_GROUP_MAX_DEFAULT);
	assert_int_equal(st.group_ms, STORE_GROUP_MS_DEFAULT);
	uint64_t c0 = st.commits;

	/* A lone write on an idle node: committed at the turn's end, kept open never. */
	struct waited w[8] = {{0}};
	must_put(x, "others", YUELAN, NULL, "{\"name\":\"lone\"}", NULL);
	assert_int_equal(store_on_commit(x->s, on_done, &w[0]), 0);
	assert_int_equal(store_batch_turn(x->s, false), 0);
	assert_true(w[0].calls == 1 && w[0].rc == 0);
	store_stats(x->s, &st);
	assert_int_equal(st.commits, c0 + 1);
	assert_int_equal(st.last_batch, 1);
	assert_int_equal(st.kept_open, 0);
	assert_int_equal(store_batch_turn(x->s, true), 0); /* nothing pending: nothing to do */
	store_stats(x->s, &st);
	assert_int_equal(st.commits, c0 + 1);

	/* A storm: more is queued at each turn's end, so the batch grows across turns. */
	store_set_group(x->s, 4, 10000);
	for (int i = 1; i <= 3; i++) {
		char rec[64];
		snprintf(rec, sizeof rec, "{\"name\":\"s%d\"}", i);
		must_put(x, "others", YUELAN, NULL, rec, NULL);
		assert_int_equal(store_on_commit(x->s, on_done, &w[i]), 0);
		/* and a refused one in the same batch: nothing of it joins */
		assert_int_equal(put_json(x, "others", YUELAN, NULL, "{\"nam\":1}", NULL),
				 LINLI_ESCHEMA);
		assert_non_null(strstr(err, "nam"));
		assert_int_equal(store_batch_turn(x->s, true), 0);
		assert_int_equal(w[i].calls, 0); /* kept open: not durable yet, not told */
		assert_true(store_batch_kept(x->s)); /* the journal's flush waits for it */
	}
	store_stats(x->s, &st);
	assert_int_equal(st.commits, c0 + 1);
	assert_int_equal(st.kept_open, 3);
	/* The batch's own writes are visible to the owner meanwhile. */
	assert_int_equal(store_count(x->s, "others"), 4);
	/* The fourth write reaches group_max: the turn's end commits whatever is queued. */
	must_put(x, "others", YUELAN, NULL, "{\"name\":\"s4\"}", NULL);
	assert_int_equal(store_on_commit(x->s, on_done, &w[4]), 0);
	assert_int_equal(store_batch_turn(x->s, true), 0);
	for (int i = 1; i <= 4; i++)
		assert_true(w[i].calls == 1 && w[i].rc == 0);
	assert_false(store_batch_kept(x->s));
	store_stats(x->s, &st);
	assert_int_equal(st.commits, c0 + 2); /* four writes, one commit */
	assert_int_equal(st.last_batch, 4);
	assert_int_equal(store_count(x->s, "others"), 5);

	/* The time bound: a batch as old as group_commit_ms commits though more is queued. */
	store_set_group(x->s, 1000, 30);
	must_put(x, "others", YUELAN, NULL, "{\"name\":\"t1\"}", NULL);
	assert_int_equal(store_on_commit(x->s, on_done, &w[5]), 0);
	assert_int_equal(store_batch_turn(x->s, true), 0);
	assert_int_equal(w[5].calls, 0);
	assert_true(store_batch_kept(x->s));
	assert_int_equal(store_batch_end(x->s) == 0 && w[5].calls == 1, 1); /* a forced commit */
	assert_false(store_batch_kept(x->s));
	must_put(x, "others", YUELAN, NULL, "{\"name\":\"t2\"}", NULL);
	assert_int_equal(store_on_commit(x->s, on_done, &w[5]), 0);
	assert_int_equal(store_batch_turn(x->s, true), 0);
	assert_int_equal(w[5].calls, 1);
	usleep(40 * 1000);
	assert_int_equal(store_batch_turn(x->s, true), 0);
	assert_true(w[5].calls == 2 && w[5].rc == 0);

	/* group_commit_ms 0: every turn's end commits, as before group commit across turns. */
	store_set_group(x->s, 1000, 0);
	must_put(x, "others", YUELAN, NULL, "{\"name\":\"z\"}", NULL);
	assert_int_equal(store_on_commit(x->s, on_done, &w[6]), 0);
	assert_int_equal(store_batch_turn(x->s, true), 0);
	assert_true(w[6].calls == 1 && w[6].rc == 0);
	store_stats(x->s, &st);
	assert_int_equal(st.commits, c0 + 5);
	assert_int_equal(st.kept_open, 5);

	/* What a kept-open batch held survives a close (which commits it) and a reopen. */
	store_set_group(x->s, 1000, 10000);
	must_put(x, "others", YUELAN, "kept", "{\"name\":\"k\"}", NULL);
	assert_int_equal(store_on_commit(x->s, on_done, &w[7]), 0);
	assert_int_equal(store_batch_turn(x->s, true), 0);
	assert_int_equal(w[7].calls, 0);
	reopen(x);
	assert_true(w[7].calls == 1 && w[7].rc == 0);
	assert_int_equal(store_count(x->s, "others"), 9);
	msgpack_sbuffer b;
	msgpack_sbuffer_init(&b);
	assert_int_equal(store_get(x->s, "others", YUELAN, "kept", &b, NULL, err, sizeof err), 0);
	msgpack_sbuffer_destroy(&b);
}

static int incr(void *ud, const msgpack_object *old, msgpack_packer *out, char *e, size_t elen)
{
	int *mode = ud;
	if (*mode == 1)
		return STORE_DELETE;
	if (*mode == 2) {
		snprintf(e, elen, "refused by the test");
		return LINLI_EPERM;
	}
	if (*mode == 3)
		return STORE_KEEP;
	int64_t i = 0;
	if (old && mp_get(old, "i"))
		i = mp_get(old, "i")->via.i64;
	msgpack_pack_map(out, 2);
	mp_kv_str(out, "s", "ctr");
	mp_kv_int(out, "i", i + 1);
	return 0;
}

static void test_read_modify_write(void **state)
{
	struct fx *x = *state;
	int mode = 0;
	/* Creates when absent, then increments; all in one batch. */
	for (int k = 0; k < 50; k++)
		assert_int_equal(store_update(x->s, "things", YUELAN, "ctr", incr, &mode, err, sizeof err),
				 0);
	commit(x);
	msgpack_unpacked up;
	assert_int_equal(get_obj(x, "things", NULL, "ctr", &up), 0);
	assert_int_equal(mp_get(&up.data, "i")->via.i64, 50);
	msgpack_unpacked_destroy(&up);
	assert_int_equal(count_where(x, "i=50"), 1);
	assert_int_equal(count_where(x, "i=49"), 0);
	/* A refusal writes nothing and passes its message on. */
	mode = 2;
	assert_int_equal(store_update(x->s, "things", YUELAN, "ctr", incr, &mode, err, sizeof err),
			 LINLI_EPERM);
	assert_string_equal(err, "refused by the test");
	mode = 3;
	assert_int_equal(store_update(x->s, "things", YUELAN, "ctr", incr, &mode, err, sizeof err), 0);
	/* The result is validated like any write: 101 > max. */
	mode = 0;
	for (int k = 0; k < 50; k++)
		assert_int_equal(store_update(x->s, "things", YUELAN, "ctr", incr, &mode, err, sizeof err),
				 0);
	assert_int_equal(store_update(x->s, "things", YUELAN, "ctr", incr, &mode, err, sizeof err),
			 LINLI_ESCHEMA);
	assert_non_null(strstr(err, "101 is above max 100"));
	/* Another scope's update makes its own record: YUELAN's is not touched. */
	mode = 0;
	assert_int_equal(store_update(x->s, "things", YUELAN2, "ctr", incr, &mode, err, sizeof err),
			 0);
	assert_int_equal(count_where(x, "i=1"), 1);
	assert_int_equal(count_where(x, "i=100"), 1);
	/* Within their common parent the id is ambiguous: nothing is changed. */
	assert_int_equal(
	    store_update(x->s, "things", "hefei/baohe/binhu", "ctr", incr, &mode, err, sizeof err),
	    LINLI_EINVAL);
	assert_non_null(strstr(err, "2 records have id 'ctr'"));
	mode = 1;
	assert_int_equal(
	    store_update_at(x->s, "things", YUELAN2, "ctr", incr, &mode, err, sizeof err), 0);
	assert_int_equal(store_update(x->s, "things", YUELAN, "ctr", incr, &mode, err, sizeof err), 0);
	commit(x);
	assert_int_equal(get_obj(x, "things", NULL, "ctr", &up), LINLI_ENOENT);
	msgpack_unpacked_destroy(&up);
	assert_int_equal(count_where(x, "s=ctr"), 0);
	assert_int_equal(store_count(x->s, "things"), 0);
}

struct thread_arg {
	struct fx *x;
	int get_rc, put_rc;
};

static void *other_thread(void *p)
{
	struct thread_arg *a = p;
	msgpack_sbuffer b;
	msgpack_sbuffer_init(&b);
	char e[256];
	a->get_rc = store_get(a->x->s, "others", NULL, "o1", &b, NULL, e, sizeof e);
	a->put_rc = store_put(a->x->s, "others", YUELAN, NULL, b.data, b.size, NULL, NULL, e, sizeof e);
	msgpack_sbuffer_destroy(&b);
	return NULL;
}

static void test_other_threads_read_only(void **state)
{
	struct fx *x = *state;
	must_put(x, "others", YUELAN, "o1", "{\"name\":\"ann\"}", NULL);
	commit(x);
	struct thread_arg a = {x, 1, 1};
	pthread_t t;
	pthread_create(&t, NULL, other_thread, &a);
	pthread_join(t, NULL);
	assert_int_equal(a.get_rc, 0);
	assert_int_equal(a.put_rc, LINLI_ESTATE);
}

/* ---- map growth, full disk, durability ---- */

static void test_map_grows(void **state)
{
	struct fx *x = *state; /* a 1 MiB map */
	char note[1100], json[1300];
	memset(note, 'n', 1000);
	note[1000] = '\0';
	/* One batch three times the map: it fills mid-batch and is replayed. */
	struct waited w = {0};
	char first[STORE_ID_MAX + 1];
	for (int i = 0; i < 3000; i++) {
		snprintf(json, sizeof json, "{\"s\":\"g%d\",\"i\":%d,\"note\":\"%s\"}", i % 1000,
			 i % 100, note);
		must_put(x, "things", YUELAN, NULL, json, i ? NULL : first);
		if (i == 0)
			assert_int_equal(store_on_commit(x->s, on_done, &w), 0);
	}
	commit(x);
	assert_true(w.calls == 1 && w.rc == 0);
	struct store_stats st;
	store_stats(x->s, &st);
	assert_true(st.map_grows >= 2);
	assert_true(st.map_size >= 4u << 20);
	assert_int_equal(st.records, 3000);
	assert_int_equal(count_where(x, "i=7"), 30);
	/* Many small batches grow it further, before it is full. */
	for (int b = 0; b < 30; b++) {
		for (int i = 0; i < 100; i++) {
			snprintf(json, sizeof json, "{\"s\":\"h\",\"note\":\"%s\"}", note);
			must_put(x, "things", YUELAN2, NULL, json, NULL);
		}
		commit(x);
	}
	reopen(x);
	assert_int_equal(store_count(x->s, "things"), 6000);
	msgpack_unpacked up;
	assert_int_equal(get_obj(x, "things", NULL, first, &up), 0);
	msgpack_unpacked_destroy(&up);
	assert_int_equal(count_where(x, "s=h"), 3000); /* limit 0 = STORE_SCAN_MAX */
	assert_int_equal(scan(x, "things", YUELAN2, NULL, NULL, 0, NULL, &C, NULL), 3000);
}

static void test_disk_full_loses_nothing_committed(void **state)
{
	struct fx *x = *state;
	x->sync = true;
	reopen(x);
	for (int i = 0; i < 10; i++)
		must_put(x, "others", YUELAN, NULL, "{\"name\":\"committed\"}", NULL);
	commit(x);
	struct waited w = {0};
	char lost[STORE_ID_MAX + 1];
	for (int i = 0; i < 50; i++)
		must_put(x, "others", YUELAN, NULL, "{\"name\":\"lost\"}", lost);
	assert_int_equal(store_on_commit(x->s, on_done, &w), 0);
	atomic_store(&disk_full_armed, 1);
	int rc = store_batch_end(x->s);
	atomic_store(&disk_full_armed, 0);
	assert_int_equal(rc, LINLI_EFULL);
	assert_int_equal(w.calls, 1);
	assert_int_equal(w.rc, LINLI_EFULL);
	if (!strstr(w.msg, "the disk is full") || !strstr(w.msg, "everything committed before is intact"))
		fail_msg("message: %s", w.msg);
	/* The store goes on: committed data is there, the lost batch is not. */
	assert_int_equal(store_count(x->s, "others"), 10);
	msgpack_unpacked up;
	assert_int_equal(get_obj(x, "others", NULL, lost, &up), LINLI_ENOENT);
	msgpack_unpacked_destroy(&up);
	must_put(x, "others", YUELAN, NULL, "{\"name\":\"after\"}", NULL);
	commit(x);
	reopen(x);
	assert_int_equal(store_count(x->s, "others"), 11);
	assert_int_equal(scan(x, "others", YUELAN, NULL, NULL, 0, NULL, &C, NULL), 11);
	struct store_stats st;
	store_stats(x->s, &st);
	assert_int_equal(st.records, 11);
}

static void test_uncommitted_batch_is_lost_on_crash_only(void **state)
{
	struct fx *x = *state;
	must_put(x, "others", YUELAN, "kept", "{\"name\":\"k\"}", NULL);
	commit(x);
	/* store_close commits what is pending: a clean stop loses nothing. */
	must_put(x, "others", YUELAN, "pending", "{\"name\":\"p\"}", NULL);
	reopen(x);
	assert_int_equal(store_count(x->s, "others"), 2);
}

/* ---- damaged data files ---- */

static void expect_refused(struct fx *x, const char *expect)
{
	store_close(x->s);
	x->s = NULL;
	char e[1024] = "";
	int rc = open_store(x, e, sizeof e);
	if (rc == 0 || !strstr(e, expect))
		fail_msg("open: rc %d '%s', want '%s'", rc, e, expect);
	assert_null(x->s);
}

static void data_file(struct fx *x, char *p, size_t n)
{
	snprintf(p, n, "%s/data.mdb", x->data);
}

static void test_not_lmdb_refused(void **state)
{
	struct fx *x = *state;
	store_close(x->s);
	x->s = NULL;
	char p[256];
	data_file(x, p, sizeof p);
	FILE *f = fopen(p, "w");
	for (int i = 0; i < 2000; i++)
		fputs("this is not an LMDB file, only text. ", f);
	fclose(f);
	expect_refused(x, "data.mdb is not an LMDB data file (bad magic)");
	truncate(p, 0);
	expect_refused(x, "data.mdb is empty (0 bytes)");
	truncate(p, 10);
	expect_refused(x, "not an LMDB data file");
	/* Nothing was written over it. */
	struct stat st;
	stat(p, &st);
	assert_int_equal(st.st_size, 10);
}

static void test_truncated_refused(void **state)
{
	struct fx *x = *state;
	char note[600], json[700];
	memset(note, 'x', 500);
	note[500] = '\0';
	for (int i = 0; i < 1500; i++) {
		snprintf(json, sizeof json, "{\"s\":\"t\",\"note\":\"%s\"}", note);
		must_put(x, "things", YUELAN, NULL, json, NULL);
	}
	commit(x);
	store_close(x->s);
	x->s = NULL;
	char p[256];
	data_file(x, p, sizeof p);
	struct stat st;
	stat(p, &st);
	assert_true(st.st_size > 500000);
	assert_int_equal(truncate(p, st.st_size / 2), 0);
	expect_refused(x, "data.mdb is truncated");
	assert_int_equal(truncate(p, 4096), 0); /* only the first meta page left */
	expect_refused(x, "data.mdb");
}

static void test_foreign_lmdb_refused(void **state)
{
	struct fx *x = *state;
	store_close(x->s);
	x->s = NULL;
	char p[256];
	data_file(x, p, sizeof p);
	unlink(p);
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_open(env, x->data, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	MDB_val k = {5, "hello"}, v = {5, "world"};
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	expect_refused(x, "is an LMDB file but not a linli store (it holds 'hello')");
}

/* ---- format 1 ---- */

/* Put key/value into table `dbi` of txn. */
static void raw_put(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kn, const void *v, size_t vn)
{
	MDB_val key = {kn, (void *)k}, val = {vn, (void *)v};
	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
}

/*
 * A format-1 store as linlid 1 wrote it, with raw LMDB calls: rec keyed
 * `dataset \0 scope "/" \0 id`, ids `dataset \0 id -> scope` (unique per
 * dataset), meta "format" = "linli-store 1" and the record counts; the index
 * signatures are left out, so the indexes are rebuilt as after a catalog
 * change. Records: things t<i> at YUELAN (i = 0..n-1, s = "v<i % 3>"),
 * things y1 at YUELAN2, others o1 at YUELAN/g01.
 */
static void write_format_1(const char *dir, int n)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi rec, ids, meta, idx, journal;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	mdb_env_set_mapsize(env, 8u << 20);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "rec", MDB_CREATE, &rec), 0);
	assert_int_equal(mdb_dbi_open(txn, "idx", MDB_CREATE, &idx), 0);
	assert_int_equal(mdb_dbi_open(txn, "ids", MDB_CREATE, &ids), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
	assert_int_equal(mdb_dbi_open(txn, "journal", MDB_CREATE, &journal), 0);
	struct f1rec {
		const char *ds, *scope, *id, *s;
	} r[300];
	int m = 0;
	static char ids_buf[300][16], vals[3][4] = {"v0", "v1", "v2"};
	for (int i = 0; i < n && m < 298; i++, m++) {
		snprintf(ids_buf[i], sizeof ids_buf[i], "t%d", i);
		r[m] = (struct f1rec){"things", YUELAN, ids_buf[i], vals[i % 3]};
	}
	r[m++] = (struct f1rec){"things", YUELAN2, "y1", "v0"};
	r[m++] = (struct f1rec){"others", YUELAN "/g01", "o1", NULL};
	for (int i = 0; i < m; i++) {
		char k[512], v[128];
		size_t kn = 0;
		kn += (size_t)sprintf(k + kn, "%s", r[i].ds) + 1;
		kn += (size_t)sprintf(k + kn, "%s/", r[i].scope) + 1;
		kn += (size_t)sprintf(k + kn, "%s", r[i].id);
		msgpack_sbuffer b;
		msgpack_packer pk;
		msgpack_sbuffer_init(&b);
		msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 1);
		mp_kv_str(&pk, r[i].s ? "s" : "name", r[i].s ? r[i].s : "old");
		raw_put(txn, rec, k, kn, b.data, b.size);
		msgpack_sbuffer_destroy(&b);
		int vn = snprintf(v, sizeof v, "%s", r[i].ds) + 1;
		vn += sprintf(v + vn, "%s", r[i].id);
		raw_put(txn, ids, v, (size_t)vn, r[i].scope, strlen(r[i].scope));
	}
	int64_t things = n + 1, others = 1;
	raw_put(txn, meta, "format", 6, "linli-store 1", 13);
	raw_put(txn, meta, "count/things", 12, &things, sizeof things);
	raw_put(txn, meta, "count/others", 12, &others, sizeof others);
	unsigned char seq[8] = {0, 0, 0, 0, 0, 0, 0, 7};
	raw_put(txn, journal, seq, 8, "\x80", 1);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* A format-1 store is migrated at open: every record kept and found, ids per scope from then on. */
static void test_format_1_migrated(void **state)
{
	struct fx *x = *state;
	store_close(x->s);
	x->s = NULL;
	char p[256];
	data_file(x, p, sizeof p);
	unlink(p);
	write_format_1(x->data, 250);
	char e[1024] = "";
	if (open_store(x, e, sizeof e))
		fail_msg("open of a format-1 store: %s", e);
	/* Every record is there: counts, scans, indexes, gets by id and by address. */
	assert_int_equal(store_count(x->s, "things"), 251);
	assert_int_equal(store_count(x->s, "others"), 1);
	assert_int_equal(scan(x, "things", YUELAN, NULL, NULL, 0, NULL, &C, NULL), 250);
	assert_int_equal(scan(x, "things", NULL, "s=v0", NULL, 0, NULL, &C, NULL), 85);
	msgpack_unpacked up;
	for (int i = 0; i < 250; i++) {
		char id[16];
		snprintf(id, sizeof id, "t%d", i);
		assert_int_equal(get_obj(x, "things", NULL, id, &up), 0);
		msgpack_unpacked_destroy(&up);
	}
	char where[SCOPE_MAX + 1];
	msgpack_sbuffer b;
	msgpack_sbuffer_init(&b);
	assert_int_equal(store_get(x->s, "others", YUELAN, "o1", &b, where, err, sizeof err), 0);
	assert_string_equal(where, YUELAN "/g01");
	assert_int_equal(store_get_at(x->s, "things", YUELAN2, "y1", &b, err, sizeof err), 0);
	msgpack_sbuffer_destroy(&b);
	assert_int_equal(store_journal_last(x->s), 7);
	/* The new layout is in force: a sibling's id may be reused, and deletes keep it tidy. */
	must_put(x, "things", YUELAN, "y1", "{\"s\":\"ours\"}", NULL);
	assert_int_equal(store_delete_at(x->s, "things", YUELAN, "t0", err, sizeof err), 0);
	commit(x);
	assert_int_equal(store_count(x->s, "things"), 251);
	/* Reopened, it is a format-2 store: nothing to migrate, everything still there. */
	reopen(x);
	assert_int_equal(store_count(x->s, "things"), 251);
	assert_int_equal(get_obj(x, "things", YUELAN, "y1", &up), 0);
	assert_true(field_is(&up, "s", "ours"));
	msgpack_unpacked_destroy(&up);
	assert_int_equal(get_obj(x, "things", NULL, "t0", &up), LINLI_ENOENT);
	msgpack_unpacked_destroy(&up);
}

/* A format this linlid does not know (a newer one) stops the open, naming the file. */
static void test_unknown_format_refused(void **state)
{
	struct fx *x = *state;
	must_put(x, "things", YUELAN, "a", "{\"s\":\"x\"}", NULL);
	commit(x);
	store_close(x->s);
	x->s = NULL;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	assert_int_equal(mdb_env_open(env, x->data, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	raw_put(txn, meta, "format", 6, "linli-store 6", 13);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	expect_refused(x, "data/data.mdb has format 'linli-store 6', written by a newer linlid; "
			  "this linlid reads 'linli-store 5' (and migrates 1 to 4)");
	/* And a format no linlid wrote is damage, not a version. */
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	assert_int_equal(mdb_env_open(env, x->data, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	raw_put(txn, meta, "format", 6, "linli-stOre 3", 13);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	expect_refused(x, "has format 'linli-stOre 3', which no linlid wrote: meta entry 'format' "
			  "is damaged");
}

/* ---- the change log (format 4) ---- */

struct entries {
	int n;
	uint64_t seq[64];
	char origin[64][80], id[64][40];
	uint64_t oseq[64];
	bool deleted[64];
	int64_t nfield[64];
};

static int collect_entry(void *ud, uint64_t seq, const void *val, size_t len)
{
	struct entries *e = ud;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, val, len, NULL), MSGPACK_UNPACK_SUCCESS);
	int i = e->n++;
	e->seq[i] = seq;
	mp_copy_str(mp_get(&up.data, "o"), e->origin[i], sizeof e->origin[i]);
	mp_copy_str(mp_get(&up.data, "i"), e->id[i], sizeof e->id[i]);
	e->oseq[i] = mp_get(&up.data, "q")->via.u64;
	const msgpack_object *r = mp_get(&up.data, "r");
	e->deleted[i] = r->type == MSGPACK_OBJECT_NIL;
	e->nfield[i] = -1;
	if (!e->deleted[i]) {
		assert_int_equal(r->type, MSGPACK_OBJECT_BIN);
		msgpack_unpacked rec;
		msgpack_unpacked_init(&rec);
		assert_int_equal(msgpack_unpack_next(&rec, r->via.bin.ptr, r->via.bin.size, NULL),
				 MSGPACK_UNPACK_SUCCESS);
		e->nfield[i] = mp_get(&rec.data, "n")->via.i64;
		msgpack_unpacked_destroy(&rec);
	}
	msgpack_unpacked_destroy(&up);
	return 0;
}

static void read_log(struct fx *x, uint64_t after, struct entries *e)
{
	memset(e, 0, sizeof *e);
	if (store_outbox_read(x->s, after, 64, collect_entry, e, err, sizeof err))
		fail_msg("%s", err);
}

/*
 * With an origin, every committed change of an `up` dataset is a change log entry written in
 * the same transaction, numbered in commit order; other datasets write none; an uncommitted
 * batch leaves none; a change applied from below keeps its origin; released entries are gone
 * and the numbering goes on across a reopen, even with nothing left.
 */
static void test_change_log(void **state)
{
	struct fx *x = *state;
	x->origin = YUELAN;
	reopen(x);
	struct entries e;
	must_put(x, "ups", YUELAN, "a", "{\"n\":1}", NULL);
	must_put(x, "things", YUELAN, "t", "{\"s\":\"x\"}", NULL); /* does not go up */
	must_put(x, "ups", YUELAN, "a", "{\"n\":2}", NULL);
	read_log(x, 0, &e);
	assert_int_equal(e.n, 0); /* nothing before the commit */
	commit(x);
	assert_int_equal(store_delete_at(x->s, "ups", YUELAN, "a", err, sizeof err), 0);
	must_put(x, "ups", YUELAN, "b", "{\"n\":3}", NULL);
	commit(x);
	read_log(x, 0, &e);
	assert_int_equal(e.n, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(e.seq[i], (uint64_t)i + 1);
		assert_string_equal(e.origin[i], YUELAN);
		assert_int_equal(e.oseq[i], (uint64_t)i + 1);
	}
	assert_int_equal(e.nfield[0], 1);
	assert_int_equal(e.nfield[1], 2);
	assert_true(e.deleted[2]);
	assert_string_equal(e.id[3], "b");
	/* a batch that is lost writes no entry and takes no number */
	must_put(x, "ups", YUELAN, "c", "{\"n\":4}", NULL);
	store_close(x->s); /* commits: what was queued is not lost at a clean close */
	x->s = NULL;
	reopen(x);
	read_log(x, 4, &e);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.seq[0], 5);
	/* applied from below: the entry keeps the origin and its sequence */
	char b[16];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	mp_kv_int(&pk, "n", 9);
	assert_int_equal(store_fed_apply(x->s, YUELAN2, 77, "ups", YUELAN2, "z", sb.data, sb.size,
					 err, sizeof err),
			 0);
	assert_int_equal(store_fed_mark(x->s, YUELAN2, 12, err, sizeof err), 0);
	/* bad input from below is refused as any put: unknown dataset, schema */
	assert_int_equal(store_fed_apply(x->s, YUELAN2, 78, "nope", YUELAN2, "z", sb.data, sb.size,
					 err, sizeof err),
			 LINLI_ENOENT);
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 1);
	mp_kv_str(&pk, "n", "nine");
	assert_int_equal(store_fed_apply(x->s, YUELAN2, 79, "ups", YUELAN2, "y", sb.data, sb.size,
					 err, sizeof err),
			 LINLI_ESCHEMA);
	/* a delete of what is not there is the same outcome */
	assert_int_equal(store_fed_apply(x->s, YUELAN2, 80, "ups", YUELAN2, "never", NULL, 0, err,
					 sizeof err),
			 0);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(store_fed_applied(x->s, YUELAN2), 12); /* seen inside the batch */
	commit(x);
	read_log(x, 5, &e);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.origin[0], YUELAN2);
	assert_int_equal(e.oseq[0], 77);
	assert_int_equal(e.nfield[0], 9);
	assert_int_equal(store_fed_applied(x->s, YUELAN2), 12);
	assert_int_equal(store_fed_applied(x->s, "hefei/other"), 0);
	/* released: gone; info; the numbering survives a reopen with nothing left */
	struct store_outbox_info oi;
	assert_int_equal(store_outbox_info(x->s, &oi), 0);
	assert_int_equal(oi.first, 1);
	assert_int_equal(oi.last, 6);
	assert_int_equal(oi.count, 6);
	assert_true(oi.oldest_ms > 0 && oi.bytes > 0);
	size_t n;
	assert_int_equal(store_outbox_release(x->s, 7, &n, err, sizeof err), LINLI_EINVAL);
	assert_int_equal(store_outbox_release(x->s, 4, &n, err, sizeof err), 0);
	assert_int_equal(n, 4);
	commit(x);
	read_log(x, 0, &e);
	assert_int_equal(e.n, 2);
	assert_int_equal(e.seq[0], 5);
	assert_int_equal(store_outbox_release(x->s, 6, &n, err, sizeof err), 0);
	assert_int_equal(n, 2);
	commit(x);
	reopen(x);
	assert_int_equal(store_outbox_info(x->s, &oi), 0);
	assert_int_equal(oi.count, 0);
	assert_int_equal(oi.last, 6);
	assert_int_equal(oi.acked, 6);
	must_put(x, "ups", YUELAN, "d", "{\"n\":5}", NULL);
	commit(x);
	read_log(x, 0, &e);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.seq[0], 7);
	/* rebased past a parent's word (a replaced store): kept entries renumbered, in order */
	must_put(x, "ups", YUELAN, "d2", "{\"n\":51}", NULL);
	commit(x);
	size_t moved = 0;
	assert_int_equal(store_outbox_rebase(x->s, 3, &moved, err, sizeof err), 0); /* not past */
	assert_int_equal(moved, 0);
	assert_int_equal(store_outbox_rebase(x->s, 100, &moved, err, sizeof err), 0);
	assert_int_equal(moved, 2);
	must_put(x, "ups", YUELAN, "d3", "{\"n\":52}", NULL);
	commit(x);
	read_log(x, 0, &e);
	assert_int_equal(e.n, 3);
	assert_int_equal(e.seq[0], 101);
	assert_int_equal(e.nfield[0], 5);
	assert_int_equal(e.seq[1], 102);
	assert_int_equal(e.nfield[1], 51);
	assert_int_equal(e.seq[2], 103);
	assert_int_equal(e.nfield[2], 52);
	assert_int_equal(store_outbox_info(x->s, &oi), 0);
	assert_int_equal(oi.acked, 100);
	reopen(x);
	assert_int_equal(store_outbox_info(x->s, &oi), 0);
	assert_int_equal(oi.last, 103);
	assert_int_equal(store_outbox_release(x->s, 103, &n, err, sizeof err), 0);
	commit(x);
	/* store_set_up: the next write goes up whatever its dataset, that one only */
	store_set_up(x->s, true);
	must_put(x, "things", YUELAN, "t2", "{\"s\":\"y\"}", NULL);
	must_put(x, "things", YUELAN, "t3", "{\"s\":\"z\"}", NULL);
	commit(x);
	assert_int_equal(store_outbox_info(x->s, &oi), 0);
	assert_int_equal(oi.last, 104);
	assert_int_equal(oi.count, 1);
	assert_int_equal(store_outbox_release(x->s, 104, &n, err, sizeof err), 0);
	commit(x);
	/* the quarantine keeps what it is given, in order, until dropped */
	uint64_t q1, q2;
	assert_int_equal(store_fedq_add(x->s, "one", 3, &q1, err, sizeof err), 0);
	assert_int_equal(store_fedq_add(x->s, "two", 3, &q2, err, sizeof err), 0);
	commit(x);
	assert_int_equal(q2, q1 + 1);
	assert_int_equal(store_fedq_del(x->s, q1, err, sizeof err), 0);
	commit(x);
	assert_int_equal(store_outbox_info(x->s, &oi), 0);
	assert_int_equal(oi.quarantined, 1);
	assert_int_equal(oi.quarantine_last, q2);
	/* without an origin no change log is kept */
	x->origin = NULL;
	reopen(x);
	must_put(x, "ups", YUELAN, "e", "{\"n\":6}", NULL);
	commit(x);
	assert_int_equal(store_outbox_info(x->s, &oi), 0);
	assert_int_equal(oi.last, 104);
	(void)b;
}

/* The change log's numbering is replayed with the batch when the map grows mid-commit. */
static void test_change_log_survives_map_growth(void **state)
{
	struct fx *x = *state;
	x->origin = YUELAN;
	reopen(x);
	char pad[2100], json[2200];
	memset(pad, 'p', sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	for (int i = 0; i < 1500; i++) {
		char id[16];
		snprintf(id, sizeof id, "r%d", i);
		snprintf(json, sizeof json, "{\"n\":%d,\"pad\":\"%s\"}", i, pad);
		must_put(x, "ups", YUELAN, id, json, NULL);
	}
	commit(x);
	struct store_outbox_info oi;
	assert_int_equal(store_outbox_info(x->s, &oi), 0);
	assert_int_equal(oi.count, 1500);
	assert_int_equal(oi.first, 1);
	assert_int_equal(oi.last, 1500);
	struct entries e;
	read_log(x, 1450, &e);
	assert_int_equal(e.n, 50);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(e.seq[i], 1451 + (uint64_t)i);
		assert_int_equal(e.nfield[i], 1450 + i);
	}
}

/* A format-3 store (no change log) is migrated at open: its records kept, the tables made. */
static void test_format_3_migrated(void **state)
{
	struct fx *x = *state;
	must_put(x, "ups", YUELAN, "a", "{\"n\":1}", NULL);
	commit(x);
	store_close(x->s);
	x->s = NULL;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta, t;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	assert_int_equal(mdb_env_open(env, x->data, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	static const char *const tabs[] = {"outbox", "fedin", "fedq"};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(mdb_dbi_open(txn, tabs[i], 0, &t), 0);
		assert_int_equal(mdb_drop(txn, t, 1), 0);
	}
	assert_int_equal(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	raw_put(txn, meta, "format", 6, "linli-store 3", 13);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	struct store_verify_report rep;
	assert_int_equal(store_verify(x->data, &rep), 0);
	assert_int_equal(rep.format, 3);
	assert_int_equal(rep.damaged, 0);
	x->origin = YUELAN;
	reopen(x);
	msgpack_sbuffer b;
	msgpack_sbuffer_init(&b);
	assert_int_equal(store_get(x->s, "ups", YUELAN, "a", &b, NULL, err, sizeof err), 0);
	msgpack_sbuffer_destroy(&b);
	must_put(x, "ups", YUELAN, "b", "{\"n\":2}", NULL);
	commit(x);
	struct entries e;
	read_log(x, 0, &e);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.seq[0], 1);
	assert_int_equal(store_verify(x->data, &rep), 0);
	assert_int_equal(rep.format, 5);
	assert_int_equal(rep.damaged, 0);
	assert_int_equal(rep.entries[5], 1);
}

static int collect_down(void *ud, uint64_t seq, const void *val, size_t len)
{
	struct entries *e = ud;
	int i = e->n;
	collect_entry(ud, seq, val, len);
	/* the down test names records by scope too: the scope's last segment before the id */
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	assert_int_equal(msgpack_unpack_next(&up, val, len, NULL), MSGPACK_UNPACK_SUCCESS);
	char sc[SCOPE_MAX + 1], id[64];
	mp_copy_str(mp_get(&up.data, "s"), sc, sizeof sc);
	snprintf(id, sizeof id, "%s:%s", strrchr(sc, '/') ? strrchr(sc, '/') + 1 : sc, e->id[i]);
	snprintf(e->id[i], sizeof e->id[i], "%s", id);
	msgpack_unpacked_destroy(&up);
	return 0;
}

static void read_down(struct fx *x, uint64_t after, struct entries *e)
{
	memset(e, 0, sizeof *e);
	if (store_down_read(x->s, after, 64, collect_down, e, err, sizeof err))
		fail_msg("%s", err);
}

static int count_rows(void *ud, const struct store_row *r)
{
	(void)r;
	(*(int *)ud)++;
	return 0;
}

/*
 * The down log: a dataset that goes down writes an entry per committed change, the record's
 * earlier entry replaced (each record once, its last change); deletions stay until trimmed;
 * the records held before the log knew them (no origin then) are entered at open; a scan
 * `exact` at a scope sees that scope's records only, not those below.
 */
static void test_down_log(void **state)
{
	struct fx *x = *state;
	must_put(x, "downs", "hefei", "before", "{\"n\":0}", NULL); /* no origin: no log */
	commit(x);
	x->origin = "hefei/baohe";
	reopen(x);
	struct entries e;
	read_down(x, 0, &e); /* entered at open, once */
	assert_int_equal(e.n, 1);
	assert_string_equal(e.id[0], "hefei:before");
	assert_int_equal(store_down_last(x->s), 1);
	reopen(x);
	assert_int_equal(store_down_last(x->s), 1);
	must_put(x, "downs", "hefei", "a", "{\"n\":1}", NULL);
	must_put(x, "downs", "hefei/baohe/binhu", "a", "{\"n\":2}", NULL);
	must_put(x, "ups", YUELAN, "u", "{\"n\":3}", NULL); /* goes up, not down */
	must_put(x, "downs", "hefei", "a", "{\"n\":4}", NULL); /* replaces its entry 2 */
	commit(x);
	read_down(x, 0, &e);
	assert_int_equal(e.n, 3);
	assert_int_equal(e.seq[0], 1);
	assert_int_equal(e.seq[1], 3);
	assert_string_equal(e.id[1], "binhu:a");
	assert_int_equal(e.seq[2], 4);
	assert_string_equal(e.id[2], "hefei:a");
	assert_int_equal(e.nfield[2], 4);
	assert_string_equal(e.origin[2], "hefei/baohe");
	assert_int_equal(e.oseq[2], 4);
	/* a deletion is an entry (nil) replacing the record's; applied from above keeps its origin */
	assert_int_equal(store_delete_at(x->s, "downs", "hefei", "before", err, sizeof err), 0);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	mp_kv_int(&pk, "n", 7);
	assert_int_equal(store_fed_apply(x->s, "hefei", 40, "downs", "hefei", "c", sb.data, sb.size,
					 err, sizeof err),
			 0);
	msgpack_sbuffer_destroy(&sb);
	commit(x);
	read_down(x, 4, &e);
	assert_int_equal(e.n, 2);
	assert_int_equal(e.seq[0], 5);
	assert_true(e.deleted[0]);
	assert_string_equal(e.id[0], "hefei:before");
	assert_string_equal(e.origin[1], "hefei");
	assert_int_equal(e.oseq[1], 40);
	uint64_t n = 0;
	assert_int_equal(store_down_count(x->s, &n), 0);
	assert_int_equal(n, 4);
	/* trimmed: the deletions up to 5 go, the records stay; the numbering goes on */
	size_t trimmed = 0;
	assert_int_equal(store_down_trim(x->s, 5, &trimmed, err, sizeof err), 0);
	assert_int_equal(trimmed, 1);
	commit(x);
	read_down(x, 0, &e);
	assert_int_equal(e.n, 3);
	assert_int_equal(e.seq[2], 6);
	/* the deleted record put again: a new entry (its key was trimmed with it) */
	must_put(x, "downs", "hefei", "before", "{\"n\":8}", NULL);
	commit(x);
	reopen(x);
	read_down(x, 6, &e);
	assert_int_equal(e.n, 1);
	assert_int_equal(e.seq[0], 7);
	assert_int_equal(store_down_last(x->s), 7);
	/* exact: the records at hefei itself, not binhu's below it */
	int rows = 0;
	char cur[STORE_CURSOR_MAX];
	struct store_query q = {.dataset = "downs", .scope = "hefei", .exact = true};
	assert_int_equal(store_scan(x->s, &q, count_rows, &rows, cur, err, sizeof err), 3);
	q.exact = false;
	rows = 0;
	assert_int_equal(store_scan(x->s, &q, count_rows, &rows, cur, err, sizeof err), 4);
	struct store_where w = {"n", "2"};
	q = (struct store_query){
	    .dataset = "downs", .scope = "hefei", .exact = true, .where = &w, .n_where = 1};
	assert_int_equal(store_scan(x->s, &q, count_rows, &rows, cur, err, sizeof err), 0);
	q.exact = false;
	assert_int_equal(store_scan(x->s, &q, count_rows, &rows, cur, err, sizeof err), 1);
	struct store_range rg = {"n", ">", "1"};
	q = (struct store_query){
	    .dataset = "downs", .scope = "hefei", .exact = true, .range = &rg, .n_range = 1};
	assert_int_equal(store_scan(x->s, &q, count_rows, &rows, cur, err, sizeof err), 3);
	/* verify counts the down log's tables */
	struct store_verify_report rep;
	assert_int_equal(store_verify(x->data, &rep), 0);
	assert_int_equal(rep.damaged, 0);
	assert_int_equal(rep.entries[8], 4);
	assert_int_equal(rep.entries[9], 4);
}

/* ---- checksums (format 3) ---- */

/* Open the store's file with raw LMDB, table `name` in a write txn. */
static void raw_begin(struct fx *x, const char *name, MDB_env **env, MDB_txn **txn, MDB_dbi *dbi)
{
	assert_int_equal(mdb_env_create(env), 0);
	mdb_env_set_maxdbs(*env, 8);
	assert_int_equal(mdb_env_open(*env, x->data, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(*env, NULL, 0, txn), 0);
	assert_int_equal(mdb_dbi_open(*txn, name, 0, dbi), 0);
}

static void raw_end(MDB_env *env, MDB_txn *txn)
{
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/*
 * Flip byte `at` (from the end when negative) of the value of key k in
 * table `name`, as a damaged page would show it: LMDB itself sees nothing.
 */
static void flip_value(struct fx *x, const char *name, const void *k, size_t kn, long at)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	raw_begin(x, name, &env, &txn, &dbi);
	MDB_val key = {kn, (void *)k}, val;
	assert_int_equal(mdb_get(txn, dbi, &key, &val), 0);
	unsigned char b[4096];
	assert_true(val.mv_size <= sizeof b);
	memcpy(b, val.mv_data, val.mv_size);
	size_t i = at < 0 ? val.mv_size - (size_t)-at : (size_t)at;
	assert_true(i < val.mv_size);
	b[i] ^= 0x20;
	val.mv_data = b;
	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
	raw_end(env, txn);
}

/* Change every copy of `from` in data.mdb's bytes to `to` (same length); how many. */
static int edit_file(struct fx *x, const char *from, const char *to)
{
	char p[256];
	data_file(x, p, sizeof p);
	FILE *f = fopen(p, "r+b");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	char *b = malloc((size_t)n);
	rewind(f);
	assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
	int hits = 0;
	size_t fl = strlen(from);
	for (long i = 0; i + (long)fl <= n; i++)
		if (memcmp(b + i, from, fl) == 0) {
			fseek(f, i, SEEK_SET);
			fwrite(to, 1, fl, f);
			hits++;
		}
	fclose(f);
	free(b);
	return hits;
}

/* A record whose bytes changed in the file is refused by get and scan, naming it; others serve. */
static void test_damaged_record_refused(void **state)
{
	struct fx *x = *state;
	must_put(x, "things", YUELAN, "a", "{\"s\":\"v1\",\"note\":\"QZXJWKVQ\"}", NULL);
	must_put(x, "things", YUELAN, "b", "{\"s\":\"v1\",\"note\":\"fine\"}", NULL);
	commit(x);
	store_close(x->s);
	x->s = NULL;
	assert_true(edit_file(x, "QZXJWKVQ", "QZXJWKVR") >= 1);
	char e[1024];
	if (open_store(x, e, sizeof e))
		fail_msg("open: %s", e);
	msgpack_unpacked up;
	assert_int_equal(get_obj(x, "things", NULL, "a", &up), LINLI_ECORRUPT);
	msgpack_unpacked_destroy(&up);
	if (!strstr(err, "record dataset things, scope " YUELAN ", id 'a': its checksum does not "
			 "match") ||
	    !strstr(err, "data/data.mdb is damaged; restore a backup"))
		fail_msg("get: %s", err);
	assert_int_equal(get_obj(x, "things", NULL, "b", &up), 0);
	assert_true(field_is(&up, "note", "fine"));
	msgpack_unpacked_destroy(&up);
	/* A scan of the records, and one through an index, both stop at it. */
	assert_int_equal(scan(x, "things", YUELAN, NULL, NULL, 0, NULL, &C, NULL), LINLI_ECORRUPT);
	assert_non_null(strstr(err, "record dataset things, scope " YUELAN ", id 'a'"));
	assert_int_equal(scan(x, "things", NULL, "s=v1", NULL, 0, NULL, &C, NULL), LINLI_ECORRUPT);
	assert_non_null(strstr(err, "id 'a'"));
	/* Nor is it replaced or deleted over: its index entries are unknown. */
	assert_int_equal(put_json(x, "things", YUELAN, "a", "{\"s\":\"v2\"}", NULL),
			 LINLI_ECORRUPT);
	assert_non_null(strstr(err, "id 'a': its checksum does not match"));
	assert_int_equal(store_delete(x->s, "things", YUELAN, "a", err, sizeof err),
			 LINLI_ECORRUPT);
}

/* A damaged index entry (its value, or its key) is refused by the scan that walks it. */
static void test_damaged_index_entry_refused(void **state)
{
	struct fx *x = *state;
	must_put(x, "things", YUELAN, "a", "{\"s\":\"v1\",\"i\":7}", NULL);
	must_put(x, "things", YUELAN, "b", "{\"s\":\"v2\",\"i\":9}", NULL);
	commit(x);
	store_close(x->s);
	x->s = NULL;
	/* things \0 s \0 (len 2) v1 YUELAN/ \0 a */
	char k[256];
	size_t kn = 0;
	memcpy(k, "things\0s\0\0\2v1", 13);
	kn = 13;
	kn += (size_t)sprintf(k + kn, "%s/", YUELAN) + 1;
	kn += (size_t)sprintf(k + kn, "a");
	flip_value(x, "idx", k, kn, 0);
	char e[1024];
	if (open_store(x, e, sizeof e))
		fail_msg("open: %s", e);
	assert_int_equal(scan(x, "things", NULL, "s=v1", NULL, 0, NULL, &C, NULL), LINLI_ECORRUPT);
	if (!strstr(err, "index entry things.s of scope " YUELAN ", id 'a': its checksum does not "
			 "match"))
		fail_msg("scan: %s", err);
	assert_int_equal(scan(x, "things", NULL, "s=v2", NULL, 0, NULL, &C, NULL), 1);
	/*
	 * A key changed in place (b's entry v2 -> v4: it now claims another
	 * value, its checksum intact) is caught too, as is damage in the
	 * entries a range walks.
	 */
	store_close(x->s);
	x->s = NULL;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	raw_begin(x, "idx", &env, &txn, &dbi);
	kn = 13;
	memcpy(k, "things\0s\0\0\2v2", 13);
	kn += (size_t)sprintf(k + kn, "%s/", YUELAN) + 1;
	kn += (size_t)sprintf(k + kn, "b");
	MDB_val key = {kn, k}, val;
	assert_int_equal(mdb_get(txn, dbi, &key, &val), 0);
	unsigned char v[8];
	assert_int_equal(val.mv_size, 8);
	memcpy(v, val.mv_data, 8);
	assert_int_equal(mdb_del(txn, dbi, &key, NULL), 0);
	k[12] = '4';
	val = (MDB_val){8, v};
	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
	raw_end(env, txn);
	memcpy(k, "things\0i\0\0\x08", 11);
	uint64_t seven = 7ull ^ (1ull << 63);
	for (int i = 7; i >= 0; i--, seven >>= 8)
		k[11 + i] = (char)(seven & 0xff);
	kn = 19;
	kn += (size_t)sprintf(k + kn, "%s/", YUELAN) + 1;
	kn += (size_t)sprintf(k + kn, "a");
	flip_value(x, "idx", k, kn, 3);
	if (open_store(x, e, sizeof e))
		fail_msg("reopen: %s", e);
	assert_int_equal(scan(x, "things", NULL, "s=v4", NULL, 0, NULL, &C, NULL), LINLI_ECORRUPT);
	assert_non_null(strstr(err, "index entry things.s of scope " YUELAN ", id 'b'"));
	struct store_range r = {"i", ">", "1"};
	struct store_query q = {.dataset = "things", .range = &r, .n_range = 1};
	char cur[STORE_CURSOR_MAX];
	assert_int_equal(store_scan(x->s, &q, collect, &C, cur, err, sizeof err), LINLI_ECORRUPT);
	assert_non_null(strstr(err, "index entry things.i of scope " YUELAN ", id 'a'"));
}

/* The ids table and the journal are checked too. */
static void test_damaged_ids_and_journal_refused(void **state)
{
	struct fx *x = *state;
	must_put(x, "others", YUELAN, "o1", "{\"name\":\"n\"}", NULL);
	assert_int_equal(store_journal_append(x->s, 5, "\x81\xa1k\xa1v", 5, err, sizeof err), 0);
	commit(x);
	store_close(x->s);
	x->s = NULL;
	char k[256];
	size_t kn = (size_t)sprintf(k, "others") + 1;
	kn += (size_t)sprintf(k + kn, "o1") + 1;
	kn += (size_t)sprintf(k + kn, "%s/", YUELAN);
	flip_value(x, "ids", k, kn, 7);
	unsigned char seq[8] = {0, 0, 0, 0, 0, 0, 0, 5};
	flip_value(x, "journal", seq, 8, -1);
	char e[1024];
	if (open_store(x, e, sizeof e))
		fail_msg("open: %s", e);
	msgpack_unpacked up;
	assert_int_equal(get_obj(x, "others", NULL, "o1", &up), LINLI_ECORRUPT);
	msgpack_unpacked_destroy(&up);
	if (!strstr(err, "id entry of dataset others, id 'o1', scope " YUELAN ": its checksum"))
		fail_msg("get: %s", err);
	assert_int_equal(store_journal_scan(x->s, 0, 10, NULL, NULL, err, sizeof err),
			 LINLI_ECORRUPT);
	assert_non_null(strstr(err, "journal event 5: its checksum does not match"));
}

/*
 * A format-2 store (no checksums) as the linlid before this one wrote it,
 * with raw LMDB calls: records, ids per scope, an index entry, counts, the
 * node id, the journal.
 */
static void write_format_2(const char *dir, int n)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi rec, ids, meta, idx, journal;
	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 16);
	mdb_env_set_mapsize(env, 8u << 20);
	assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "rec", MDB_CREATE, &rec), 0);
	assert_int_equal(mdb_dbi_open(txn, "idx", MDB_CREATE, &idx), 0);
	assert_int_equal(mdb_dbi_open(txn, "ids", MDB_CREATE, &ids), 0);
	assert_int_equal(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
	assert_int_equal(mdb_dbi_open(txn, "journal", MDB_CREATE, &journal), 0);
	char ixsig[64];
	snprintf(ixsig, sizeof ixsig, "v1,name:string");
	static char big[20001];
	memset(big, 'x', sizeof big - 1);
	for (int i = 0; i < n; i++) {
		char k[512], id[16], name[16];
		snprintf(id, sizeof id, "o%d", i);
		snprintf(name, sizeof name, "n%d", i % 4);
		if (i == n / 2)
			name[0] = 'b'; /* one record on overflow pages: "big" below */
		const char *scope = i % 2 ? YUELAN2 : YUELAN;
		size_t kn = (size_t)sprintf(k, "others") + 1;
		kn += (size_t)sprintf(k + kn, "%s/", scope) + 1;
		kn += (size_t)sprintf(k + kn, "%s", id);
		msgpack_sbuffer b;
		msgpack_packer pk;
		msgpack_sbuffer_init(&b);
		msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, name[0] == 'b' ? 2 : 1);
		mp_kv_str(&pk, "name", name);
		if (name[0] == 'b')
			mp_kv_str(&pk, "note", big); /* not in the catalog: read back as it is */
		raw_put(txn, rec, k, kn, b.data, b.size);
		msgpack_sbuffer_destroy(&b);
		kn = (size_t)sprintf(k, "others") + 1;
		kn += (size_t)sprintf(k + kn, "%s", id) + 1;
		kn += (size_t)sprintf(k + kn, "%s/", scope);
		raw_put(txn, ids, k, kn, "", 0);
		kn = (size_t)sprintf(k, "others") + 1;
		kn += (size_t)sprintf(k + kn, "name") + 1;
		k[kn++] = 0;
		k[kn++] = (char)strlen(name);
		kn += (size_t)sprintf(k + kn, "%s%s/", name, scope) + 1;
		kn += (size_t)sprintf(k + kn, "%s", id);
		raw_put(txn, idx, k, kn, "", 0);
	}
	int64_t count = n;
	raw_put(txn, meta, "format", 6, "linli-store 2", 13);
	raw_put(txn, meta, "node", 4, "0123456789", 10);
	raw_put(txn, meta, "count/others", 12, &count, sizeof count);
	raw_put(txn, meta, "ixsig/others", 12, ixsig, strlen(ixsig));
	for (unsigned s = 1; s <= 3; s++) {
		unsigned char seq[8] = {0, 0, 0, 0, 0, 0, 0, (unsigned char)s};
		raw_put(txn, journal, seq, 8, "\x81\xa1k\xa1v", 5);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static int count_journal(void *ud, uint64_t seq, const void *ev, size_t len)
{
	(void)seq;
	assert_int_equal(len, 5);
	assert_memory_equal(ev, "\x81\xa1k\xa1v", 5);
	++*(int *)ud;
	return 0;
}

/* A format-2 store is migrated at open: every entry kept and checked from then on. */
static void test_format_2_migrated(void **state)
{
	struct fx *x = *state;
	store_close(x->s);
	x->s = NULL;
	write_catalog(x, true); /* others.name indexed: the signature written above */
	char p[256];
	data_file(x, p, sizeof p);
	unlink(p);
	write_format_2(x->data, 3000); /* several pages of every table */
	char e[1024] = "";
	if (open_store(x, e, sizeof e))
		fail_msg("open of a format-2 store: %s", e);
	assert_int_equal(store_count(x->s, "others"), 3000);
	assert_int_equal(scan(x, "others", YUELAN, NULL, NULL, 0, NULL, &C, NULL), 1500);
	assert_int_equal(scan(x, "others", NULL, "name=n1", NULL, 0, NULL, &C, NULL), 750);
	msgpack_unpacked up;
	assert_int_equal(get_obj(x, "others", NULL, "o1500", &up), 0);
	const msgpack_object *note = mp_get(&up.data, "note");
	assert_non_null(note);
	assert_int_equal(note->via.str.size, 20000);
	msgpack_unpacked_destroy(&up);
	for (int i = 0; i < 3000; i += 7) {
		char id[16];
		snprintf(id, sizeof id, "o%d", i);
		assert_int_equal(get_obj(x, "others", NULL, id, &up), 0);
		msgpack_unpacked_destroy(&up);
	}
	int nj = 0;
	assert_int_equal(store_journal_scan(x->s, 0, 10, count_journal, &nj, err, sizeof err), 3);
	assert_int_equal(nj, 3);
	char id[STORE_ID_MAX + 1];
	must_put(x, "others", YUELAN, NULL, "{\"name\":\"new\"}", id);
	assert_non_null(strstr(id, "-0123456789")); /* the node id kept */
	commit(x);
	/* Every value now has its checksum: one flipped byte is caught. */
	reopen(x);
	assert_int_equal(store_count(x->s, "others"), 3001);
	store_close(x->s);
	x->s = NULL;
	char k[256];
	size_t kn = (size_t)sprintf(k, "others") + 1;
	kn += (size_t)sprintf(k + kn, "%s/", YUELAN2) + 1;
	kn += (size_t)sprintf(k + kn, "o2999");
	flip_value(x, "rec", k, kn, -1);
	if (open_store(x, e, sizeof e))
		fail_msg("reopen: %s", e);
	assert_int_equal(get_obj(x, "others", NULL, "o2999", &up), LINLI_ECORRUPT);
	msgpack_unpacked_destroy(&up);
	assert_non_null(strstr(err, "record dataset others, scope " YUELAN2 ", id 'o2999'"));
}

/* store_verify walks everything in a child: clean, then damage of each kind named and counted. */
static void test_verify_walks_everything(void **state)
{
	struct fx *x = *state;
	for (int i = 0; i < 40; i++) {
		char id[16];
		snprintf(id, sizeof id, "t%d", i);
		must_put(x, "things", YUELAN, id, "{\"s\":\"v1\",\"i\":5}", NULL);
	}
	assert_int_equal(store_journal_append(x->s, 9, "\x81\xa1k\xa1v", 5, err, sizeof err), 0);
	commit(x);
	struct store_verify_report *r = malloc(sizeof *r);
	/* Beside the open store (a running linlid), and clean. */
	assert_int_equal(store_verify(x->data, r), 0);
	assert_int_equal(r->damaged, 0);
	assert_int_equal(r->format, 5);
	assert_true(r->checksums);
	assert_int_equal(r->entries[0], 40);
	assert_int_equal(r->entries[1], 40 * 2); /* s and i */
	assert_int_equal(r->entries[2], 40);
	assert_int_equal(r->entries[3], 1);
	store_close(x->s);
	x->s = NULL;
	char k[256];
	size_t kn = (size_t)sprintf(k, "things") + 1;
	kn += (size_t)sprintf(k + kn, "%s/", YUELAN) + 1;
	kn += (size_t)sprintf(k + kn, "t7");
	flip_value(x, "rec", k, kn, -2);
	unsigned char seq[8] = {0, 0, 0, 0, 0, 0, 0, 9};
	flip_value(x, "journal", seq, 8, 0);
	/* An ids entry whose record is gone: the tables disagree. */
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	raw_begin(x, "rec", &env, &txn, &dbi);
	kn = (size_t)sprintf(k, "things") + 1;
	kn += (size_t)sprintf(k + kn, "%s/", YUELAN) + 1;
	kn += (size_t)sprintf(k + kn, "t8");
	MDB_val key = {kn, k};
	assert_int_equal(mdb_del(txn, dbi, &key, NULL), 0);
	raw_end(env, txn);
	assert_int_equal(store_verify(x->data, r), 0);
	for (int i = 0; i < r->n_named; i++)
		printf("named: %s\n", r->named[i]);
	assert_int_equal(r->n_named, (int)r->damaged);
	assert_string_equal(r->named[0], "record dataset things, scope " YUELAN
					 ", id 't7': its checksum does not match");
	bool ids = false, journal = false;
	for (int i = 0; i < r->n_named; i++) {
		ids |= strcmp(r->named[i], "id entry of dataset things, id 't8', scope " YUELAN
					   ": it names a record that is not there") == 0;
		journal |= strcmp(r->named[i], "journal event 9: its checksum does not match") == 0;
	}
	assert_true(ids && journal);
	assert_int_equal(r->entries[0], 39);
	FILE *f = tmpfile();
	assert_int_equal(store_verify_print(x->data, r, f), 1);
	fclose(f);
	/* No store at all: nothing to verify. */
	char p[256];
	snprintf(p, sizeof p, "%s/none", x->dir);
	assert_int_equal(store_verify(p, r), 0);
	assert_true(r->absent);
	assert_int_equal(r->damaged, 0);
	free(r);
}

/* An LMDB error at open names the file and says what it means, not only LMDB's phrase. */
static void test_lmdb_open_error_in_words(void **state)
{
	struct fx *x = *state;
	store_close(x->s);
	x->s = NULL;
	char p[256];
	data_file(x, p, sizeof p);
	FILE *f = fopen(p, "r+b");
	assert_non_null(f);
	uint32_t version = 999; /* the first meta page's mm_version, after its magic */
	fseek(f, 20, SEEK_SET);
	fwrite(&version, 4, 1, f);
	fclose(f);
	expect_refused(x,
		       "data/data.mdb (or lock.mdb) is damaged or truncated: "
		       "MDB_VERSION_MISMATCH: Database environment version mismatch: data.mdb or "
		       "lock.mdb was written by another LMDB version, or is damaged; refusing to "
		       "start on it; restore a backup");
}

/* A damaged count is counted again, never served wrong. */
static void test_damaged_count_recounted(void **state)
{
	struct fx *x = *state;
	for (int i = 0; i < 5; i++)
		must_put(x, "others", YUELAN, NULL, "{\"name\":\"n\"}", NULL);
	commit(x);
	store_close(x->s);
	x->s = NULL;
	flip_value(x, "meta", "count/others", 12, 8);
	char e[1024];
	if (open_store(x, e, sizeof e))
		fail_msg("open: %s", e);
	assert_int_equal(store_count(x->s, "others"), 5);
	must_put(x, "others", YUELAN, NULL, "{\"name\":\"n\"}", NULL);
	commit(x);
	reopen(x);
	assert_int_equal(store_count(x->s, "others"), 6);
}

/* ---- backup and restore ---- */

struct bwait {
	atomic_int done;
	int rc;
	char msg[512];
};

static void backup_done(void *arg, int rc, const char *msg)
{
	struct bwait *b = arg;
	b->rc = rc;
	snprintf(b->msg, sizeof b->msg, "%s", msg ? msg : "");
	atomic_store(&b->done, 1);
}

static void test_backup_and_restore(void **state)
{
	struct fx *x = *state;
	char id[STORE_ID_MAX + 1];
	for (int i = 0; i < 500; i++)
		must_put(x, "things", YUELAN, NULL, "{\"s\":\"before\",\"e\":\"c\"}", id);
	commit(x);
	/* Deleted records are not copied: the copy is compacted. */
	assert_int_equal(store_delete(x->s, "things", NULL, id, err, sizeof err), 0);
	commit(x);
	char dst[256];
	snprintf(dst, sizeof dst, "%s/backup", x->dir);
	struct bwait b = {0};
	assert_int_equal(store_backup_start(x->s, dst, backup_done, &b, err, sizeof err), 0);
	/* Map room was reserved: the map cannot grow under the copy. */
	struct store_stats st;
	store_stats(x->s, &st);
	assert_true(st.map_size >= (1u << 30));
	/* The store keeps serving writes while the copy runs. */
	for (int i = 0; i < 200; i++) {
		must_put(x, "things", YUELAN, NULL, "{\"s\":\"during\"}", NULL);
		commit(x);
	}
	while (!atomic_load(&b.done))
		usleep(1000);
	if (b.rc)
		fail_msg("backup: %s", b.msg);
	assert_int_equal(store_backup_start(x->s, dst, backup_done, &b, err, sizeof err), LINLI_EEXIST);
	assert_non_null(strstr(err, "already exists"));
	assert_int_equal(store_backup_start(x->s, "relative/dir", backup_done, &b, err, sizeof err),
			 LINLI_EINVAL);
	assert_non_null(strstr(err, "absolute"));

	/* Restore: a store opened on the copy. */
	struct fx y = *x;
	y.s = NULL;
	snprintf(y.data, sizeof y.data, "%s", dst);
	char e[1024];
	if (open_store(&y, e, sizeof e))
		fail_msg("%s", e);
	assert_int_equal(store_count(y.s, "things") >= 499, 1);
	assert_int_equal(scan(&y, "things", YUELAN, "e=c", NULL, 0, NULL, &C, NULL), 499);
	int before = scan(&y, "things", YUELAN, "s=before", NULL, 0, NULL, &C, NULL);
	assert_int_equal(before, 499);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	assert_int_equal(store_get(y.s, "things", NULL, id, &sb, NULL, e, sizeof e), LINLI_ENOENT);
	msgpack_sbuffer_destroy(&sb);
	store_close(y.s);
	char p[300];
	snprintf(p, sizeof p, "%s/.partial", dst);
	assert_int_equal(access(p, F_OK), -1); /* the temporary copy is gone */
}

/* ---- RFC 3339 ---- */

static void test_time_parse(void **state)
{
	(void)state;
	struct {
		const char *s;
		bool ok;
		int64_t ms;
	} cases[] = {
		{"1970-01-01T00:00:00Z", true, 0},
		{"1970-01-01t00:00:01.5z", true, 1500},
		{"2026-01-02T03:04:05+08:00", true, 1767294245000LL},
		{"2026-01-01T19:04:05.123456Z", true, 1767294245123LL},
		{"1969-12-31T23:59:59Z", true, -1000},
		{"2000-02-29T00:00:00Z", true, 951782400000LL},
		{"1900-02-29T00:00:00Z", false, 0},
		{"2026-13-01T00:00:00Z", false, 0},
		{"2026-01-01T24:00:00Z", false, 0},
		{"2026-01-01T00:00:00", false, 0},
		{"2026-01-01T00:00:00.Z", false, 0},
		{"2026-01-01T00:00:00+8:00", false, 0},
		{"2026-01-01", true, 1767225600000LL},
		{"2026-1-1", false, 0},
		{"", false, 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t ms = 0;
		bool ok = store_time_parse(cases[i].s, strlen(cases[i].s), &ms);
		if (ok != cases[i].ok || (ok && ms != cases[i].ms))
			fail_msg("%s: ok %d ms %lld", cases[i].s, ok, (long long)ms);
	}
}

/* ---- retention's primitives: journal trim and figures, scans by a time field ---- */

static void test_journal_trim_and_info(void **state)
{
	struct fx *x = *state;
	for (uint64_t seq = 1; seq <= 10; seq++)
		assert_int_equal(store_journal_append(x->s, seq, "\x80", 1, err, sizeof err), 0);
	commit(x);
	struct store_journal_info ji;
	assert_int_equal(store_journal_info(x->s, &ji), 0);
	assert_int_equal(ji.entries, 10);
	assert_int_equal(ji.first, 1);
	assert_int_equal(ji.last, 10);
	assert_true(ji.bytes > 0 && ji.writes == 10);
	/* Up to seq 4, from the front; then at most 3 more whatever the bound. */
	assert_int_equal(store_journal_trim(x->s, 4, 100, err, sizeof err), 4);
	commit(x);
	assert_int_equal(store_journal_trim(x->s, 100, 3, err, sizeof err), 3);
	commit(x);
	assert_int_equal(store_journal_info(x->s, &ji), 0);
	assert_int_equal(ji.entries, 3);
	assert_int_equal(ji.first, 8);
	assert_int_equal(ji.last, 10);
	assert_int_equal(store_journal_trim(x->s, 7, 100, err, sizeof err), 0);
	reopen(x);
	assert_int_equal(store_journal_info(x->s, &ji), 0);
	assert_int_equal(ji.first, 8); /* durable */
	assert_int_equal(store_journal_last(x->s), 10);
}

/* A map growth replays the batch's log: a trim in it must replay as a trim. */
static void test_journal_trim_replayed_on_growth(void **state)
{
	struct fx *x = *state;
	static char big[8192];
	memset(big, 0, sizeof big);
	big[0] = (char)0xc4; /* bin8 of 0 bytes, then padding the store does not read */
	for (uint64_t seq = 1; seq <= 4; seq++)
		assert_int_equal(store_journal_append(x->s, seq, big, 64, err, sizeof err), 0);
	commit(x);
	struct store_stats st0, st1;
	store_stats(x->s, &st0);
	assert_int_equal(store_journal_trim(x->s, 4, 100, err, sizeof err), 4);
	for (uint64_t seq = 5; seq <= 300; seq++) /* 2.4 MB into a 1 MiB map */
		assert_int_equal(store_journal_append(x->s, seq, big, sizeof big, err, sizeof err), 0);
	commit(x);
	store_stats(x->s, &st1);
	assert_true(st1.map_grows > st0.map_grows);
	struct store_journal_info ji;
	assert_int_equal(store_journal_info(x->s, &ji), 0);
	assert_int_equal(ji.first, 5);
	assert_int_equal(ji.entries, 296);
}

static void test_scan_by_time_across_scopes(void **state)
{
	struct fx *x = *state;
	must_put(x, "things", YUELAN2, "c", "{\"s\": \"c\", \"t\": 3000}", NULL);
	must_put(x, "things", YUELAN, "a", "{\"s\": \"a\", \"t\": 1000}", NULL);
	must_put(x, "things", YUELAN, "b", "{\"s\": \"b\", \"t\": 2000}", NULL);
	must_put(x, "things", YUELAN2, "z", "{\"s\": \"z\", \"t\": -5}", NULL);
	must_put(x, "things", YUELAN2, "n", "{\"s\": \"n\"}", NULL); /* no time: not listed */
	commit(x);
	memset(&C, 0, sizeof C);
	assert_int_equal(store_scan_by(x->s, "things", "t", 10, collect, &C, err, sizeof err), 4);
	const char *want[] = {"z", "a", "b", "c"};
	for (int i = 0; i < 4; i++)
		assert_string_equal(C.ids[i], want[i]);
	assert_string_equal(C.scopes[0], YUELAN2);
	memset(&C, 0, sizeof C);
	assert_int_equal(store_scan_by(x->s, "things", "t", 2, collect, &C, err, sizeof err), 2);
	assert_string_equal(C.ids[1], "a");
	assert_int_equal(store_scan_by(x->s, "things", "s", 2, collect, &C, err, sizeof err),
			 LINLI_EINVAL);
	assert_int_equal(store_scan_by(x->s, "things", "f", 2, collect, &C, err, sizeof err),
			 LINLI_EINVAL);
	assert_int_equal(store_scan_by(x->s, "nope", "t", 2, collect, &C, err, sizeof err),
			 LINLI_ENOENT);
	assert_int_equal(store_writes(x->s, "things"), 5);
	assert_int_equal(store_writes(x->s, "others"), 0);
}

/* ---- range filters ---- */

/*
 * Scan `nums` with filters "field OP value" (OP one of =, <, <=, >, >=),
 * every page of `limit` rows, into c (ids in order). Returns the rows, or
 * the first negative code.
 */
static int rscan(struct fx *x, const char *scope, const char *const *specs, size_t limit,
		 struct coll *c)
{
	struct store_where w[STORE_MAX_WHERE];
	struct store_range r[STORE_MAX_RANGE];
	char f[16][64], op[16][3];
	int nw = 0, nr = 0;
	for (int i = 0; specs[i]; i++) {
		size_t fl = strcspn(specs[i], "<>=!");
		size_t ol = strspn(specs[i] + fl, "<>=!");
		snprintf(f[i], sizeof f[i], "%.*s", (int)fl, specs[i]);
		snprintf(op[i], sizeof op[i], "%.*s", (int)ol, specs[i] + fl);
		if (strcmp(op[i], "=") == 0)
			w[nw++] = (struct store_where){f[i], specs[i] + fl + ol};
		else
			r[nr++] = (struct store_range){f[i], op[i], specs[i] + fl + ol};
	}
	memset(c, 0, sizeof *c);
	char cur[STORE_CURSOR_MAX] = "", next[STORE_CURSOR_MAX];
	int total = 0;
	do {
		struct store_query q = {.dataset = "nums",
					.scope = scope,
					.where = w,
					.n_where = nw,
					.range = r,
					.n_range = nr,
					.limit = limit,
					.cursor = cur};
		int n = store_scan(x->s, &q, collect, c, next, err, sizeof err);
		if (n < 0)
			return n;
		total += n;
		memcpy(cur, next, sizeof cur);
	} while (cur[0]);
	return total;
}

/* Ids of the rows in c, joined by ",", in order. */
static const char *joined(const struct coll *c)
{
	static char b[4096];
	size_t off = 0;
	b[0] = '\0';
	for (int i = 0; i < c->n && off + 1 < sizeof b; i++)
		off += (size_t)snprintf(b + off, sizeof b - off, "%s%s", i ? "," : "", c->ids[i]);
	return b;
}

/* Integers, floats and times of both signs: ranges find exactly the matching ones, by value. */
static void test_range_filters(void **state)
{
	struct fx *x = *state;
	static const struct {
		const char *id;
		long n;
		const char *xv;
		const char *at;
		const char *k;
	} rows[] = {
	    {"n5", -5, "-2.5", "2026-01-01T00:00:00Z", "a"},
	    {"n1", -1, "-0.5", "2026-01-02T00:00:00Z", "b"},
	    {"z0", 0, "0", "2026-01-03T00:00:00Z", "a"},
	    {"p3", 3, "0.25", "2026-01-04T00:00:00Z", "b"},
	    {"p7", 7, "1.5", "2099-01-01T00:00:00Z", "a"},
	    {"pc", 100, "3", "1969-12-31T23:59:59Z", "b"},
	};
	char json[256];
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		snprintf(json, sizeof json,
			 "{\"n\": %ld, \"x\": %s, \"at\": \"%s\", \"k\": \"%s\"}", rows[i].n,
			 rows[i].xv, rows[i].at, rows[i].k);
		must_put(x, "nums", YUELAN, rows[i].id, json, NULL);
		must_put(x, "nums", YUELAN2, rows[i].id, json, NULL);
	}
	commit(x);
	struct coll *c = calloc(1, sizeof *c);
	/* Integers: ascending value, negatives first; bounds combine. */
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"n>=0", NULL}, 100, c), 4);
	assert_string_equal(joined(c), "z0,p3,p7,pc");
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"n<0", NULL}, 100, c), 2);
	assert_string_equal(joined(c), "n5,n1");
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"n>-2", "n<=7", NULL}, 1, c), 4);
	assert_string_equal(joined(c), "n1,z0,p3,p7");
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"n>7", "n<100", NULL}, 100, c), 0);
	/* Floats: 0 up, then the negatives from -0 down; pages cross the gap. */
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"x<0", NULL}, 100, c), 2);
	assert_string_equal(joined(c), "n1,n5");
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"x>=-1", "x<1", NULL}, 1, c), 3);
	assert_string_equal(joined(c), "z0,p3,n1");
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"x>0", NULL}, 2, c), 3);
	assert_string_equal(joined(c), "p3,p7,pc");
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"x<=-2.5", NULL}, 100, c), 1);
	assert_string_equal(joined(c), "n5");
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"x>-3", NULL}, 4, c), 6);
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"x>1.5", "x<1.5", NULL}, 100, c), 0);
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"x<=0", "x>=0", NULL}, 100, c), 1);
	assert_string_equal(joined(c), "z0");
	/* Times: RFC 3339, ms and "now"; before 1970 too. */
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"at<now", NULL}, 100, c), 5);
	assert_string_equal(joined(c), "pc,n5,n1,z0,p3");
	assert_int_equal(
	    rscan(x, YUELAN,
		  (const char *[]){"at>=2026-01-02T08:00:00+08:00", "at<1767398400000", NULL}, 100,
		  c),
	    1);
	assert_string_equal(joined(c), "n1");
	/* With an equality filter the walk takes its index; ranges still apply. */
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"n>0", "k=a", NULL}, 1, c), 1);
	assert_string_equal(joined(c), "p7");
	/* The scope bounds a range walk: the sibling's records never come. */
	assert_int_equal(rscan(x, YUELAN2, (const char *[]){"n>=-100", NULL}, 3, c), 6);
	for (int i = 0; i < c->n; i++)
		assert_string_equal(c->scopes[i], YUELAN2);
	assert_int_equal(rscan(x, "hefei/baohe", (const char *[]){"n>=-100", NULL}, 5, c), 12);
	free(c);
}

/* Random values of both signs: every range (paged) finds what a full check finds. */
static void test_range_filters_random(void **state)
{
	struct fx *x = *state;
	enum { N = 300 };
	static long nv[N];
	static double xv[N];
	srand(13);
	char json[160], id[16];
	for (int i = 0; i < N; i++) {
		nv[i] = rand() % 2001 - 1000;
		xv[i] = (rand() % 20001 - 10000) / 64.0;
		if (i % 37 == 0)
			xv[i] = 0;
		snprintf(json, sizeof json, "{\"n\": %ld, \"x\": %.17g}", nv[i], xv[i]);
		snprintf(id, sizeof id, "r%03d", i);
		must_put(x, "nums", YUELAN, id, json, NULL);
	}
	commit(x);
	struct coll *c = calloc(1, sizeof *c);
	static const char *const ops[] = {"<", "<=", ">", ">="};
	for (int t = 0; t < 200; t++) {
		bool fl = t % 2;
		const char *o1 = ops[rand() % 4], *o2 = ops[rand() % 4];
		double b1 = fl ? (rand() % 401 - 200) / 1.5 : rand() % 2201 - 1100;
		double b2 = fl ? (rand() % 401 - 200) / 1.5 : rand() % 2201 - 1100;
		if (fl && t % 10 == 1)
			b1 = 0;
		char s1[64], s2[64];
		snprintf(s1, sizeof s1, "%s%s%.17g", fl ? "x" : "n", o1, b1);
		snprintf(s2, sizeof s2, "%s%s%.17g", fl ? "x" : "n", o2, b2);
		bool two = t % 3 == 0;
		const char *specs[] = {s1, two ? s2 : NULL, NULL};
		int want = 0;
		for (int i = 0; i < N; i++) {
			double v = fl ? xv[i] : (double)nv[i];
			bool ok = true;
			for (int j = 0; j < (two ? 2 : 1); j++) {
				const char *o = j ? o2 : o1;
				double b = j ? b2 : b1;
				ok = ok && (o[0] == '<' ? (o[1] ? v <= b : v < b)
							: (o[1] ? v >= b : v > b));
			}
			want += ok;
		}
		int got = rscan(x, YUELAN, specs, (size_t)(1 + t % 9), c);
		if (got != want)
			fail_msg("%s %s: %d rows, expected %d (%s)", s1, two ? s2 : "", got, want,
				 err);
		for (int i = 0; i < c->n; i++) /* each once */
			for (int j = 0; j < i; j++)
				assert_string_not_equal(c->ids[i], c->ids[j]);
	}
	free(c);
}

/* Bad range filters are refused naming the field and the reason. */
static void test_range_filters_refused(void **state)
{
	struct fx *x = *state;
	struct coll *c = calloc(1, sizeof *c);
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"n!=3", NULL}, 10, c), LINLI_EINVAL);
	assert_non_null(strstr(err, "field 'n': '!=' is not a range operator"));
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"k>a", NULL}, 10, c), LINLI_EINVAL);
	assert_non_null(strstr(err, "field 'k' is of type enum: ranges"));
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"m>1", NULL}, 10, c), LINLI_EINVAL);
	assert_non_null(strstr(err, "field 'm' is not indexed"));
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"n<abc", NULL}, 10, c), LINLI_EINVAL);
	assert_non_null(strstr(err, "field 'n': 'abc' is not an integer"));
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"x<nan", NULL}, 10, c), LINLI_EINVAL);
	assert_non_null(strstr(err, "field 'x': 'nan' is not a number"));
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"at<yesterday", NULL}, 10, c),
			 LINLI_EINVAL);
	assert_non_null(strstr(err, "field 'at': 'yesterday' is not a time"));
	assert_int_equal(rscan(x, YUELAN, (const char *[]){"nope<1", NULL}, 10, c), LINLI_EINVAL);
	assert_non_null(strstr(err, "no field 'nope'"));
	/* A cursor of a walk over another field does not fit. */
	for (int i = 0; i < 3; i++)
		must_put(x, "nums", YUELAN, NULL, "{\"n\": 1, \"x\": 1}", NULL);
	commit(x);
	char next[STORE_CURSOR_MAX];
	struct store_range r = {"n", ">", "0"};
	struct store_query q = {
	    .dataset = "nums", .scope = YUELAN, .range = &r, .n_range = 1, .limit = 1};
	assert_int_equal(store_scan(x->s, &q, NULL, NULL, next, err, sizeof err), 1);
	assert_true(next[0]);
	struct store_range r2 = {"x", ">", "0"};
	char other[STORE_CURSOR_MAX];
	q.range = &r2;
	q.cursor = next;
	assert_int_equal(store_scan(x->s, &q, NULL, NULL, other, err, sizeof err), LINLI_EINVAL);
	assert_non_null(strstr(err, "does not belong to this query"));
	free(c);
}

/* ---- change notices ---- */

struct heard {
	struct fx *x;
	char log[4096];
	int n;
	uint64_t self;	   /* this watcher's id */
	bool echo;	   /* write to `others` from the callback */
	bool stop;	   /* unwatch itself at the first change */
	struct heard *add; /* watch with this one at the first change */
};

static void heard_fn(void *ud, const struct store_change *c)
{
	struct heard *h = ud;
	size_t off = strlen(h->log);
	snprintf(h->log + off, sizeof h->log - off, "%s%s %s %s %s", h->n++ ? "; " : "",
		 store_change_kind_name(c->kind), c->dataset, c->scope, c->id);
	if (h->echo) /* a write of its own: the next batch; never told back to it */
		must_put(h->x, "others", c->scope, "echo", "{\"name\":\"e\"}", NULL);
	if (h->stop)
		assert_int_equal(store_unwatch(h->x->s, h->self), 0);
	if (h->add) {
		uint64_t id;
		assert_int_equal(store_watch(h->x->s, "others", heard_fn, h->add, &id, err, sizeof err),
				 0);
		h->add = NULL;
	}
}

/* ---- the catalog swapped at run time ---- */

static const char extra_cfg[] =
    "dataset = { name = \"extra\"; title_zh = \"加\"; title_en = \"Extra\";\n"
    "  owner = \"test\"; family = \"core\"; level = \"community\";\n"
    "  sharing = \"shared\"; source = \"community\";\n"
    "  fields = ( { name = \"k\"; type = \"string\"; indexed = true; },\n"
    "    { name = \"n\"; type = \"integer\"; indexed = true; } ); };\n";

/* A second catalog directory: the fixture's with `others` indexed and a dataset `extra`. */
static void write_catalog_b(struct fx *x, char *dir, size_t len)
{
	char ds[256], o[1024];
	snprintf(dir, len, "%s/catalog-b", x->dir);
	snprintf(ds, sizeof ds, "%s/datasets", dir);
	mkdir(dir, 0700);
	mkdir(ds, 0700);
	write_file(ds, "things.cfg", things_cfg);
	snprintf(o, sizeof o, others_cfg, "true");
	write_file(ds, "others.cfg", o);
	write_file(ds, "gridded.cfg", gridded_cfg);
	write_file(ds, "nums.cfg", nums_cfg);
	write_file(ds, "ups.cfg", ups_cfg);
	write_file(ds, "downs.cfg", downs_cfg);
	write_file(ds, "extra.cfg", extra_cfg);
}

struct swap_reader {
	struct store *s;
	atomic_bool stop;
	atomic_int reads, versions_seen;
	char why[512];
};

/* Reads as the HTTP threads do while the owner swaps versions under it. */
static void *swap_reader_fn(void *arg)
{
	struct swap_reader *r = arg;
	char e[512];
	msgpack_sbuffer b;
	msgpack_sbuffer_init(&b);
	uint64_t last = 0;
	while (!atomic_load(&r->stop) && !r->why[0]) {
		b.size = 0;
		int rc = store_get(r->s, "things", YUELAN, "t1", &b, NULL, e, sizeof e);
		if (rc) {
			snprintf(r->why, sizeof r->why, "get: %d %s", rc, e);
			break;
		}
		struct store_query q = {.dataset = "things"};
		char cur[STORE_CURSOR_MAX];
		int n = 0;
		rc = store_scan(r->s, &q, count_rows, &n, cur, e, sizeof e);
		if (rc != 3 || n != 3) {
			snprintf(r->why, sizeof r->why, "scan: %d rows (%d) %s", rc, n, e);
			break;
		}
		if (store_count(r->s, "things") != 3) {
			snprintf(r->why, sizeof r->why, "count: %llu",
				 (unsigned long long)store_count(r->s, "things"));
			break;
		}
		/* A version held across swaps stays whole until dropped. */
		const struct catalog *c = store_catalog(r->s);
		if (c->version != last) {
			last = c->version;
			atomic_fetch_add(&r->versions_seen, 1);
		}
		sched_yield();
		const struct cat_dataset *d = catalog_dataset(c, "others");
		if (!d || strcmp(d->fields[0].name, "name") != 0 || !catalog_dataset(c, "things")) {
			snprintf(r->why, sizeof r->why, "a held version changed under its reader");
			catalog_unref(c);
			break;
		}
		catalog_unref(c);
		atomic_fetch_add(&r->reads, 1);
	}
	msgpack_sbuffer_destroy(&b);
	return NULL;
}

static struct catalog *load_cat(const char *dir, uint64_t version)
{
	struct catalog *c;
	char e[1024];
	if (catalog_load(dir, &c, e, sizeof e))
		fail_msg("%s", e);
	c->version = version;
	return c;
}

/*
 * store_swap_catalog while another thread reads: each read sees one whole version, an old
 * version lives while a reader holds it and goes with its last reference (ASan: no use after
 * free, no leak); a new dataset starts empty and usable, an index the new version adds is
 * built from the records; watchers follow their dataset, a dataset left out keeps its records.
 */
static void test_catalog_swap(void **state)
{
	struct fx *x = *state;
	char dir_b[256];
	write_catalog_b(x, dir_b, sizeof dir_b);
	must_put(x, "things", YUELAN, "t1", "{\"s\":\"a\"}", NULL);
	must_put(x, "things", YUELAN, "t2", "{\"s\":\"b\"}", NULL);
	must_put(x, "things", YUELAN2, "t3", "{\"s\":\"c\"}", NULL);
	must_put(x, "others", YUELAN, "o1", "{\"name\":\"x\"}", NULL);
	must_put(x, "others", YUELAN2, "o2", "{\"name\":\"x\"}", NULL);
	commit(x);
	uint64_t writes = store_writes(x->s, "things");
	assert_int_equal(writes, 3);
	struct heard a = {.x = x}, b = {.x = x};
	uint64_t ida, idb;
	assert_int_equal(store_watch(x->s, "things", heard_fn, &a, &ida, err, sizeof err), 0);
	a.self = ida;
	/* not indexed in the first version */
	assert_int_equal(scan(x, "others", NULL, "name=x", NULL, 0, NULL, &C, NULL), LINLI_EINVAL);

	const struct catalog *held = store_catalog(x->s);
	assert_ptr_equal(held, x->cat);
	assert_int_equal(atomic_load(&held->refs), 3); /* the fixture's, the store's, ours */

	struct swap_reader r = {.s = x->s};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, swap_reader_fn, &r), 0);
	char dir_a[160];
	snprintf(dir_a, sizeof dir_a, "%s", x->cat_dir);
	int swaps = 0;
	for (; swaps < 400 && !r.why[0] && (swaps < 40 || atomic_load(&r.reads) < 200); swaps++) {
		bool to_b = swaps % 2 == 0;
		struct catalog *c = load_cat(to_b ? dir_b : dir_a, (uint64_t)swaps + 2);
		if (store_swap_catalog(x->s, c, err, sizeof err))
			fail_msg("swap %d: %s", swaps, err);
		catalog_free(c); /* the store's reference (and the readers') keep it */
		if (swaps == 0) {
			catalog_free(x->cat); /* the first version: only `held` keeps it now */
			x->cat = NULL;
		}
	}
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	if (r.why[0])
		fail_msg("reader: %s (after %d swaps)", r.why, swaps);
	assert_true(atomic_load(&r.reads) > 0);
	assert_true(atomic_load(&r.versions_seen) >= 2);
	/* the first version, held all along, is whole; its last reference frees it */
	assert_int_equal(atomic_load(&held->refs), 1);
	assert_int_equal(held->version, 1);
	assert_non_null(catalog_dataset(held, "things"));
	assert_null(catalog_dataset(held, "extra"));
	catalog_unref(held);

	/* end on version B: `extra` is there and empty, `others` indexed from its records */
	if (swaps % 2 == 0) {
		struct catalog *c = load_cat(dir_b, 1000);
		assert_int_equal(store_swap_catalog(x->s, c, err, sizeof err), 0);
		catalog_free(c);
	}
	const struct catalog *cur = store_catalog(x->s);
	assert_non_null(catalog_dataset(cur, "extra"));
	catalog_unref(cur);
	assert_int_equal(store_count(x->s, "extra"), 0);
	assert_int_equal(scan(x, "others", NULL, "name=x", NULL, 0, NULL, &C, NULL), 2);
	assert_int_equal(store_writes(x->s, "things"), writes); /* the counters follow by name */
	must_put(x, "extra", YUELAN, "e1", "{\"k\":\"v\",\"n\":5}", NULL);
	must_put(x, "things", YUELAN, "t4", "{\"s\":\"d\"}", NULL);
	commit(x);
	assert_int_equal(store_count(x->s, "extra"), 1);
	assert_int_equal(scan(x, "extra", NULL, "k=v", "n=5", 0, NULL, &C, NULL), 1);
	store_changes_deliver(x->s);
	assert_string_equal(a.log, "created things " YUELAN " t4"); /* followed its dataset */
	assert_int_equal(store_watch(x->s, "extra", heard_fn, &b, &idb, err, sizeof err), 0);
	b.self = idb;

	/* a version without `extra`: refused by name, its records and watcher left behind */
	struct catalog *c = load_cat(dir_a, 2000);
	must_put(x, "things", YUELAN, "t5", "{\"s\":\"e\"}", NULL); /* pending: committed first */
	assert_int_equal(store_swap_catalog(x->s, c, err, sizeof err), 0);
	catalog_free(c);
	assert_int_equal(put_json(x, "extra", YUELAN, "e2", "{\"k\":\"w\"}", NULL), LINLI_ENOENT);
	assert_non_null(strstr(err, "no dataset 'extra'"));
	assert_int_equal(store_count(x->s, "things"), 5);
	c = load_cat(dir_b, 2001);
	assert_int_equal(store_swap_catalog(x->s, c, err, sizeof err), 0);
	catalog_free(c);
	assert_int_equal(store_count(x->s, "extra"), 1); /* kept while out of the catalog */
	must_put(x, "extra", YUELAN, "e3", "{\"k\":\"w\"}", NULL);
	commit(x);
	store_changes_deliver(x->s);
	assert_int_equal(b.n, 0); /* its watcher went with the dataset */
	assert_string_equal(a.log, "created things " YUELAN " t4; created things " YUELAN " t5");
	/* only the owner swaps */
	assert_int_equal(store_swap_catalog(x->s, NULL, err, sizeof err), LINLI_EINVAL);
	/* reopened on version B: the indexes built by the swaps are the ones it expects */
	x->cat = load_cat(dir_b, 1);
	reopen(x);
	assert_int_equal(scan(x, "extra", NULL, "k=w", NULL, 0, NULL, &C, NULL), 1);
	assert_int_equal(scan(x, "others", NULL, "name=x", NULL, 0, NULL, &C, NULL), 2);
}

/*
 * A commit waiter may write (it opens the next batch): a swap commits that batch the
 * normal way before its own raw transaction — the write of an `up` dataset reaches the
 * change log and the counts — and a swap to a catalog with fewer datasets leaves no
 * pending write numbered by the old one (ASan would see the read past the array).
 */
struct swap_waiter {
	struct fx *x;
	const char *ds, *id;
	int rc;
};

static void swap_waiter_fn(void *arg, int rc, const char *msg)
{
	(void)rc;
	(void)msg;
	struct swap_waiter *w = arg;
	w->rc = put_json(w->x, w->ds, YUELAN, w->id, "{\"n\":7}", NULL);
}

static void test_catalog_swap_after_a_writing_waiter(void **state)
{
	struct fx *x = *state;
	x->origin = YUELAN;
	reopen(x);
	char dir_b[256];
	write_catalog_b(x, dir_b, sizeof dir_b);
	struct store_outbox_info oi;
	assert_int_equal(store_outbox_info(x->s, &oi), 0);
	uint64_t before = oi.last;
	struct swap_waiter w = {.x = x, .ds = "ups", .id = "u1", .rc = -1};
	must_put(x, "things", YUELAN, "t1", "{\"s\":\"a\"}", NULL); /* a pending batch */
	assert_int_equal(store_on_commit(x->s, swap_waiter_fn, &w), 0);
	struct catalog *c = load_cat(dir_b, 2);
	assert_int_equal(store_swap_catalog(x->s, c, err, sizeof err), 0);
	catalog_free(c);
	assert_int_equal(w.rc, 0);
	commit(x);
	assert_int_equal(store_count(x->s, "ups"), 1);
	assert_int_equal(store_outbox_info(x->s, &oi), 0);
	assert_true(oi.last > before); /* the waiter's write of ups is in the change log */
	/* Back to A, which lacks B's last dataset, with a waiter writing it. */
	struct swap_waiter w2 = {.x = x, .ds = "extra", .id = "e1", .rc = -1};
	must_put(x, "things", YUELAN, "t2", "{\"s\":\"b\"}", NULL);
	assert_int_equal(store_on_commit(x->s, swap_waiter_fn, &w2), 0);
	c = load_cat(x->cat_dir, 3);
	assert_int_equal(store_swap_catalog(x->s, c, err, sizeof err), 0);
	catalog_free(c);
	assert_int_equal(w2.rc, 0);
	must_put(x, "things", YUELAN, "t3", "{\"s\":\"c\"}", NULL);
	commit(x);
	msgpack_sbuffer gb;
	msgpack_sbuffer_init(&gb);
	assert_int_equal(store_get(x->s, "things", YUELAN, "t3", &gb, NULL, err, sizeof err), 0);
	msgpack_sbuffer_destroy(&gb);
}

/* After a commit every put, update and delete of a watched dataset is told, once, in order. */
static void test_change_notices(void **state)
{
	struct fx *x = *state;
	struct heard a = {.x = x}, b = {.x = x}, late = {.x = x};
	uint64_t ida, idb;
	assert_int_equal(store_watch(x->s, "others", heard_fn, &a, &ida, err, sizeof err), 0);
	assert_int_equal(store_watch(x->s, "nums", heard_fn, &b, &idb, err, sizeof err), 0);
	assert_true(ida > 0 && idb > ida);
	a.self = ida;
	assert_int_equal(store_watch(x->s, "nope", heard_fn, &a, &ida, err, sizeof err),
			 LINLI_ENOENT);
	assert_non_null(strstr(err, "no dataset 'nope'"));
	must_put(x, "others", YUELAN, "o1", "{\"name\":\"x\"}", NULL);
	must_put(x, "others", YUELAN, "o1", "{\"name\":\"y\"}", NULL);
	must_put(x, "others", YUELAN2, "o2", "{\"name\":\"z\"}", NULL);
	must_put(x, "things", YUELAN, "t1", "{\"s\":\"a\"}", NULL); /* nobody watches things */
	store_changes_deliver(x->s);
	assert_int_equal(a.n, 0); /* nothing before the commit */
	commit(x);
	store_changes_deliver(x->s);
	assert_string_equal(a.log, "created others " YUELAN " o1; updated others " YUELAN
				   " o1; created others " YUELAN2 " o2");
	assert_int_equal(b.n, 0);
	a.log[0] = '\0';
	a.n = 0;
	assert_int_equal(store_delete(x->s, "others", YUELAN2, "o2", err, sizeof err), 0);
	commit(x);
	store_changes_deliver(x->s);
	store_changes_deliver(x->s); /* told once */
	assert_string_equal(a.log, "deleted others " YUELAN2 " o2");
	/* A lost batch (a full disk) tells nobody. */
	x->sync = true;
	reopen(x);
	assert_int_equal(store_watch(x->s, "others", heard_fn, &a, &ida, err, sizeof err), 0);
	a.self = ida;
	a.log[0] = '\0';
	a.n = 0;
	must_put(x, "others", YUELAN, "lost", "{\"name\":\"l\"}", NULL);
	atomic_store(&disk_full_armed, 1);
	assert_int_equal(store_batch_end(x->s), LINLI_EFULL);
	atomic_store(&disk_full_armed, 0);
	store_changes_deliver(x->s);
	assert_int_equal(a.n, 0);
	/* A callback's own write is not told back to it, but to the others; a watcher
	   added during a delivery hears only later batches; one may stop itself. */
	assert_int_equal(store_watch(x->s, "others", heard_fn, &b, &idb, err, sizeof err), 0);
	b.self = idb;
	a.echo = true;
	a.add = &late;
	must_put(x, "others", YUELAN, "o3", "{\"name\":\"w\"}", NULL);
	commit(x);
	store_changes_deliver(x->s);
	assert_string_equal(a.log, "created others " YUELAN " o3");
	assert_string_equal(b.log, "created others " YUELAN " o3");
	assert_int_equal(late.n, 0);
	a.echo = false;
	commit(x); /* a's echo */
	store_changes_deliver(x->s);
	assert_string_equal(a.log, "created others " YUELAN " o3");
	assert_string_equal(b.log, "created others " YUELAN " o3; created others " YUELAN " echo");
	assert_string_equal(late.log, "created others " YUELAN " echo");
	b.stop = true;
	assert_int_equal(store_delete(x->s, "others", YUELAN, "o3", err, sizeof err), 0);
	assert_int_equal(store_delete(x->s, "others", YUELAN, "echo", err, sizeof err), 0);
	commit(x);
	store_changes_deliver(x->s);
	assert_int_equal(b.n, 3); /* it stopped after the first of the two */
	assert_int_equal(late.n, 3);
	assert_int_equal(store_unwatch(x->s, idb), LINLI_ENOENT);
	assert_int_equal(store_unwatch(x->s, ida), 0);
	assert_int_equal(store_unwatch(x->s, ida), LINLI_ENOENT);
	/* Pending notices of a store that closes are freed (ASan checks). */
	must_put(x, "others", YUELAN, "o4", "{\"name\":\"v\"}", NULL);
	commit(x);
}

int main(int argc, char **argv)
{
	log_set_level(LOG_ERROR);
	if (argc > 1) /* run only the tests matching argv[1] */
		cmocka_set_test_filter(argv[1]);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_each_type_accepted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_each_violation_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scope_and_id_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_generated_ids_are_time_ordered, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_upkeep, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_index_rebuilt_when_catalog_changes, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_scope_scans_never_cross_to_siblings, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_ids_per_scope, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_node_wide_ids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pagination, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_group_commit_adapts_to_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_read_modify_write, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_threads_read_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_map_grows, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_disk_full_loses_nothing_committed, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_uncommitted_batch_is_lost_on_crash_only, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_not_lmdb_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_lmdb_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_format_1_migrated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_format_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_change_log, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_change_log_survives_map_growth, setup_small,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_format_3_migrated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_down_log, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_record_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_index_entry_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_ids_and_journal_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_format_2_migrated, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_count_recounted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_verify_walks_everything, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lmdb_open_error_in_words, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backup_and_restore, setup, teardown),
	    cmocka_unit_test(test_time_parse),
	    cmocka_unit_test_setup_teardown(test_journal_trim_and_info, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_journal_trim_replayed_on_growth, setup_small,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_scan_by_time_across_scopes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_range_filters, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_range_filters_random, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_range_filters_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_change_notices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_catalog_swap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_catalog_swap_after_a_writing_waiter, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
