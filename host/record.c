/*
 * record — see record.h.
 *
 * A container (struct linli_record) is either a map (an array of fields kept
 * in insertion order) or an array (of values). Nested containers are separate
 * allocations owned by their parent's value slot, so a borrowed child handle
 * stays put when the parent's array grows. Lookup is a linear scan: records
 * have a handful to a few dozen fields, where a scan beats hashing; decoding
 * checks duplicates with a sort so that a hostile 100k-key map stays cheap.
 * Strings are stored with a trailing NUL so getters can hand out C strings.
 */
#include "record.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linli/error.h"
#include "mp.h"

struct rval {
	uint8_t type; /* enum linli_type */
	union {
		bool b;
		int64_t i;
		uint64_t u;
		double f;
		struct {
			char *p; /* n bytes + NUL */
			size_t n;
		} s;
		struct linli_record *c;
	} v;
};

struct rfield {
	char *key; /* NUL-terminated, no NUL inside */
	size_t klen;
	struct rval val;
};

struct linli_record {
	uint8_t kind;  /* LINLI_T_MAP or LINLI_T_ARRAY */
	uint8_t depth; /* 0 for a root */
	bool root;     /* owned by a caller, not by a parent */
	size_t n, cap;
	union {
		struct rfield *f; /* map */
		struct rval *a;	  /* array */
	} u;
};

/* ---- UTF-8 ---- */

bool record_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		unsigned cp, min;
		if ((c & 0xE0) == 0xC0) {
			len = 2, cp = c & 0x1F, min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3, cp = c & 0x0F, min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else
			return false;
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += len;
	}
	return true;
}

/* ---- containers ---- */

static struct linli_record *cont_new(uint8_t kind, uint8_t depth, bool root)
{
	struct linli_record *r = calloc(1, sizeof *r);
	if (r) {
		r->kind = kind;
		r->depth = depth;
		r->root = root;
	}
	return r;
}

static void cont_free(struct linli_record *r);

static void val_clear(struct rval *v)
{
	if (v->type == LINLI_T_STR || v->type == LINLI_T_BIN)
		free(v->v.s.p);
	else if (v->type == LINLI_T_MAP || v->type == LINLI_T_ARRAY)
		cont_free(v->v.c);
	v->type = LINLI_T_NIL;
}

static void cont_free(struct linli_record *r)
{
	if (!r)
		return;
	if (r->kind == LINLI_T_MAP) {
		for (size_t i = 0; i < r->n; i++) {
			free(r->u.f[i].key);
			val_clear(&r->u.f[i].val);
		}
		free(r->u.f);
	} else {
		for (size_t i = 0; i < r->n; i++)
			val_clear(&r->u.a[i]);
		free(r->u.a);
	}
	free(r);
}

/* Height of the subtree under r: 0 for a container holding no containers. */
static int cont_height(const struct linli_record *r)
{
	int h = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct rval *v = r->kind == LINLI_T_MAP ? &r->u.f[i].val : &r->u.a[i];
		if (v->type == LINLI_T_MAP || v->type == LINLI_T_ARRAY) {
			int ch = 1 + cont_height(v->v.c);
			if (ch > h)
				h = ch;
		}
	}
	return h;
}

static int val_copy(struct rval *dst, const struct rval *src, uint8_t depth);

/* Deep copy of src as a container at `depth`. */
static int cont_copy(const struct linli_record *src, uint8_t depth, bool root,
		     struct linli_record **out)
{
	struct linli_record *r = cont_new(src->kind, depth, root);
	if (!r)
		return LINLI_ENOMEM;
	if (src->n) {
		size_t esz = src->kind == LINLI_T_MAP ? sizeof(struct rfield) : sizeof(struct rval);
		void *mem = calloc(src->n, esz);
		if (!mem) {
			free(r);
			return LINLI_ENOMEM;
		}
		if (src->kind == LINLI_T_MAP)
			r->u.f = mem;
		else
			r->u.a = mem;
		r->cap = src->n;
	}
	for (size_t i = 0; i < src->n; i++) {
		int rc;
		if (src->kind == LINLI_T_MAP) {
			struct rfield *f = &r->u.f[i];
			f->key = malloc(src->u.f[i].klen + 1);
			if (!f->key) {
				cont_free(r);
				return LINLI_ENOMEM;
			}
			memcpy(f->key, src->u.f[i].key, src->u.f[i].klen + 1);
			f->klen = src->u.f[i].klen;
			r->n++;
			rc = val_copy(&f->val, &src->u.f[i].val, depth);
		} else {
			r->n++;
			rc = val_copy(&r->u.a[i], &src->u.a[i], depth);
		}
		if (rc) {
			cont_free(r);
			return rc;
		}
	}
	*out = r;
	return 0;
}

/* Copy a value held by a container at `depth`. dst is zeroed (a NIL). */
static int val_copy(struct rval *dst, const struct rval *src, uint8_t depth)
{
	switch (src->type) {
	case LINLI_T_STR:
	case LINLI_T_BIN:
		dst->v.s.p = malloc(src->v.s.n + 1);
		if (!dst->v.s.p)
			return LINLI_ENOMEM;
		memcpy(dst->v.s.p, src->v.s.p, src->v.s.n + 1);
		dst->v.s.n = src->v.s.n;
		break;
	case LINLI_T_MAP:
	case LINLI_T_ARRAY: {
		int rc = cont_copy(src->v.c, (uint8_t)(depth + 1), false, &dst->v.c);
		if (rc)
			return rc;
		break;
	}
	default:
		dst->v = src->v;
	}
	dst->type = src->type;
	return 0;
}

/* ---- slots: where a value lives ---- */

static struct rfield *map_find(const struct linli_record *r, const char *key, size_t klen)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->u.f[i].klen == klen && memcmp(r->u.f[i].key, key, klen) == 0)
			return &r->u.f[i];
	return NULL;
}

/* The value of field key for reading: 0, LINLI_ENOENT, LINLI_ETYPE, LINLI_EINVAL. */
static int get_slot(const struct linli_record *r, const char *key, const struct rval **out)
{
	if (!r || !key)
		return LINLI_EINVAL;
	if (r->kind != LINLI_T_MAP)
		return LINLI_ETYPE;
	const struct rfield *f = map_find(r, key, strlen(key));
	if (!f)
		return LINLI_ENOENT;
	*out = &f->val;
	return 0;
}

static int arr_slot(const struct linli_record *a, size_t i, const struct rval **out)
{
	if (!a)
		return LINLI_EINVAL;
	if (a->kind != LINLI_T_ARRAY)
		return LINLI_ETYPE;
	if (i >= a->n)
		return LINLI_ENOENT;
	*out = &a->u.a[i];
	return 0;
}

static int grow(struct linli_record *r)
{
	if (r->n < r->cap)
		return 0;
	size_t cap = r->cap ? r->cap * 2 : 8;
	size_t esz = r->kind == LINLI_T_MAP ? sizeof(struct rfield) : sizeof(struct rval);
	void *old = r->kind == LINLI_T_MAP ? (void *)r->u.f : (void *)r->u.a;
	void *mem = realloc(old, cap * esz);
	if (!mem)
		return LINLI_ENOMEM;
	if (r->kind == LINLI_T_MAP)
		r->u.f = mem;
	else
		r->u.a = mem;
	r->cap = cap;
	return 0;
}

/*
 * A slot to write field key into: the existing one (its old value cleared by
 * the caller through `commit`) or a new one appended. To keep a failed write
 * from changing anything, the new value is built first and put in place last.
 */
static int put_field(struct linli_record *r, const char *key, struct rval *nv)
{
	if (!r || !key)
		return LINLI_EINVAL;
	if (r->kind != LINLI_T_MAP)
		return LINLI_ETYPE;
	size_t klen = strlen(key);
	if (!record_utf8_valid(key, klen))
		return LINLI_EINVAL;
	struct rfield *f = map_find(r, key, klen);
	if (f) {
		val_clear(&f->val);
		f->val = *nv;
		return 0;
	}
	if (grow(r))
		return LINLI_ENOMEM;
	char *k = malloc(klen + 1);
	if (!k)
		return LINLI_ENOMEM;
	memcpy(k, key, klen + 1);
	f = &r->u.f[r->n++];
	f->key = k;
	f->klen = klen;
	f->val = *nv;
	return 0;
}

static int push_val(struct linli_record *a, struct rval *nv)
{
	if (!a)
		return LINLI_EINVAL;
	if (a->kind != LINLI_T_ARRAY)
		return LINLI_ETYPE;
	if (grow(a))
		return LINLI_ENOMEM;
	a->u.a[a->n++] = *nv;
	return 0;
}

/* Build values; on failure nothing is allocated. */
static int mk_str(struct rval *v, uint8_t type, const void *p, size_t n)
{
	if (!p && n)
		return LINLI_EINVAL;
	if (type == LINLI_T_STR && !record_utf8_valid(p, n))
		return LINLI_EINVAL;
	v->type = type;
	v->v.s.p = malloc(n + 1);
	if (!v->v.s.p)
		return LINLI_ENOMEM;
	if (n)
		memcpy(v->v.s.p, p, n);
	v->v.s.p[n] = '\0';
	v->v.s.n = n;
	return 0;
}

static int mk_cont(struct rval *v, const struct linli_record *parent, uint8_t kind)
{
	if (!parent)
		return LINLI_EINVAL;
	if (parent->depth + 1 > LINLI_REC_MAX_DEPTH)
		return LINLI_ELIMIT;
	v->type = kind;
	v->v.c = cont_new(kind, (uint8_t)(parent->depth + 1), false);
	return v->v.c ? 0 : LINLI_ENOMEM;
}

static int mk_copy(struct rval *v, const struct linli_record *parent,
		   const struct linli_record *src)
{
	if (!parent || !src)
		return LINLI_EINVAL;
	if (parent->depth + 1 + cont_height(src) > LINLI_REC_MAX_DEPTH)
		return LINLI_ELIMIT;
	v->type = src->kind;
	return cont_copy(src, (uint8_t)(parent->depth + 1), false, &v->v.c);
}

/* Put nv under key, or free it when that fails. */
static int set_or_drop(struct linli_record *r, const char *key, struct rval *nv)
{
	int rc = put_field(r, key, nv);
	if (rc)
		val_clear(nv);
	return rc;
}

static int push_or_drop(struct linli_record *a, struct rval *nv)
{
	int rc = push_val(a, nv);
	if (rc)
		val_clear(nv);
	return rc;
}

/* ---- typed reads of a slot ---- */

static int rd_str(const struct rval *v, uint8_t type, const void **p, size_t *len)
{
	if (!p)
		return LINLI_EINVAL;
	if (v->type != type)
		return LINLI_ETYPE;
	*p = v->v.s.p;
	if (len)
		*len = v->v.s.n;
	return 0;
}

static int rd_int(const struct rval *v, int64_t *out)
{
	if (!out)
		return LINLI_EINVAL;
	if (v->type == LINLI_T_UINT)
		return LINLI_E2BIG;
	if (v->type != LINLI_T_INT)
		return LINLI_ETYPE;
	*out = v->v.i;
	return 0;
}

static int rd_float(const struct rval *v, double *out)
{
	if (!out)
		return LINLI_EINVAL;
	if (v->type == LINLI_T_FLOAT)
		*out = v->v.f;
	else if (v->type == LINLI_T_INT)
		*out = (double)v->v.i;
	else if (v->type == LINLI_T_UINT)
		*out = (double)v->v.u;
	else
		return LINLI_ETYPE;
	return 0;
}

static int rd_bool(const struct rval *v, bool *out)
{
	if (!out)
		return LINLI_EINVAL;
	if (v->type != LINLI_T_BOOL)
		return LINLI_ETYPE;
	*out = v->v.b;
	return 0;
}

static int rd_cont(const struct rval *v, uint8_t kind, linli_record **child)
{
	if (!child)
		return LINLI_EINVAL;
	if (v->type != kind)
		return LINLI_ETYPE;
	*child = v->v.c;
	return 0;
}

/* ---- public: whole records ---- */

linli_record *record_new(void) { return cont_new(LINLI_T_MAP, 0, true); }

linli_record *record_new_array(void) { return cont_new(LINLI_T_ARRAY, 0, true); }

int record_free(linli_record *r)
{
	if (!r)
		return 0;
	if (!r->root)
		return LINLI_EINVAL;
	cont_free(r);
	return 0;
}

int record_copy(const linli_record *r, linli_record **out)
{
	if (!r || !out)
		return LINLI_EINVAL;
	return cont_copy(r, 0, true, out);
}

int record_kind(const linli_record *r) { return r ? r->kind : LINLI_EINVAL; }

size_t record_count(const linli_record *r) { return r ? r->n : 0; }

int record_key(const linli_record *r, size_t i, const char **key)
{
	if (!r || !key)
		return LINLI_EINVAL;
	if (r->kind != LINLI_T_MAP)
		return LINLI_ETYPE;
	if (i >= r->n)
		return LINLI_ENOENT;
	*key = r->u.f[i].key;
	return 0;
}

int record_type(const linli_record *r, const char *key)
{
	const struct rval *v;
	int rc = get_slot(r, key, &v);
	if (rc == LINLI_ENOENT)
		return LINLI_T_NONE;
	return rc ? rc : v->type;
}

bool record_has(const linli_record *r, const char *key)
{
	const struct rval *v;
	return get_slot(r, key, &v) == 0;
}

int record_remove(linli_record *r, const char *key)
{
	const struct rval *v;
	int rc = get_slot(r, key, &v);
	if (rc)
		return rc;
	struct rfield *f = (struct rfield *)((const char *)v - offsetof(struct rfield, val));
	size_t i = (size_t)(f - r->u.f);
	free(f->key);
	val_clear(&f->val);
	memmove(&r->u.f[i], &r->u.f[i + 1], (r->n - i - 1) * sizeof *f);
	r->n--;
	return 0;
}

/* ---- public: by key ---- */

#define GET_BY_KEY(call)                                                                           \
	const struct rval *v;                                                                      \
	int rc = get_slot(r, key, &v);                                                             \
	return rc ? rc : (call)

int record_get_str(const linli_record *r, const char *key, const char **s, size_t *len)
{
	GET_BY_KEY(rd_str(v, LINLI_T_STR, (const void **)s, len));
}

int record_get_bin(const linli_record *r, const char *key, const void **p, size_t *len)
{
	GET_BY_KEY(rd_str(v, LINLI_T_BIN, p, len));
}

int record_get_int(const linli_record *r, const char *key, int64_t *out)
{
	GET_BY_KEY(rd_int(v, out));
}

int record_get_float(const linli_record *r, const char *key, double *out)
{
	GET_BY_KEY(rd_float(v, out));
}

int record_get_bool(const linli_record *r, const char *key, bool *out)
{
	GET_BY_KEY(rd_bool(v, out));
}

int record_get_time(const linli_record *r, const char *key, int64_t *ms)
{
	GET_BY_KEY(rd_int(v, ms));
}

int record_get_map(linli_record *r, const char *key, linli_record **child)
{
	GET_BY_KEY(rd_cont(v, LINLI_T_MAP, child));
}

int record_get_array(linli_record *r, const char *key, linli_record **child)
{
	GET_BY_KEY(rd_cont(v, LINLI_T_ARRAY, child));
}

int record_set_strn(linli_record *r, const char *key, const char *s, size_t len)
{
	struct rval nv = {0};
	int rc = mk_str(&nv, LINLI_T_STR, s, len);
	return rc ? rc : set_or_drop(r, key, &nv);
}

int record_set_str(linli_record *r, const char *key, const char *s)
{
	if (!s)
		return LINLI_EINVAL;
	return record_set_strn(r, key, s, strlen(s));
}

int record_set_bin(linli_record *r, const char *key, const void *p, size_t len)
{
	struct rval nv = {0};
	int rc = mk_str(&nv, LINLI_T_BIN, p, len);
	return rc ? rc : set_or_drop(r, key, &nv);
}

int record_set_int(linli_record *r, const char *key, int64_t v)
{
	struct rval nv = {.type = LINLI_T_INT, .v.i = v};
	return put_field(r, key, &nv);
}

int record_set_float(linli_record *r, const char *key, double v)
{
	struct rval nv = {.type = LINLI_T_FLOAT, .v.f = v};
	return put_field(r, key, &nv);
}

int record_set_bool(linli_record *r, const char *key, bool v)
{
	struct rval nv = {.type = LINLI_T_BOOL, .v.b = v};
	return put_field(r, key, &nv);
}

int record_set_time(linli_record *r, const char *key, int64_t ms)
{
	return record_set_int(r, key, ms);
}

int record_set_nil(linli_record *r, const char *key)
{
	struct rval nv = {.type = LINLI_T_NIL};
	return put_field(r, key, &nv);
}

static int set_cont(linli_record *r, const char *key, uint8_t kind, linli_record **child)
{
	struct rval nv = {0};
	int rc = mk_cont(&nv, r, kind);
	if (rc)
		return rc;
	struct linli_record *c = nv.v.c;
	rc = set_or_drop(r, key, &nv);
	if (!rc && child)
		*child = c;
	return rc;
}

int record_set_map(linli_record *r, const char *key, linli_record **child)
{
	return set_cont(r, key, LINLI_T_MAP, child);
}

int record_set_array(linli_record *r, const char *key, linli_record **child)
{
	return set_cont(r, key, LINLI_T_ARRAY, child);
}

int record_set_record(linli_record *r, const char *key, const linli_record *src)
{
	struct rval nv = {0};
	int rc = mk_copy(&nv, r, src);
	return rc ? rc : set_or_drop(r, key, &nv);
}

/* ---- public: arrays ---- */

#define GET_BY_INDEX(call)                                                                         \
	const struct rval *v;                                                                      \
	int rc = arr_slot(a, i, &v);                                                               \
	return rc ? rc : (call)

int record_arr_type(const linli_record *a, size_t i)
{
	const struct rval *v;
	int rc = arr_slot(a, i, &v);
	if (rc == LINLI_ENOENT)
		return LINLI_T_NONE;
	return rc ? rc : v->type;
}

int record_arr_get_str(const linli_record *a, size_t i, const char **s, size_t *len)
{
	GET_BY_INDEX(rd_str(v, LINLI_T_STR, (const void **)s, len));
}

int record_arr_get_bin(const linli_record *a, size_t i, const void **p, size_t *len)
{
	GET_BY_INDEX(rd_str(v, LINLI_T_BIN, p, len));
}

int record_arr_get_int(const linli_record *a, size_t i, int64_t *out)
{
	GET_BY_INDEX(rd_int(v, out));
}

int record_arr_get_float(const linli_record *a, size_t i, double *out)
{
	GET_BY_INDEX(rd_float(v, out));
}

int record_arr_get_bool(const linli_record *a, size_t i, bool *out)
{
	GET_BY_INDEX(rd_bool(v, out));
}

int record_arr_get_time(const linli_record *a, size_t i, int64_t *ms)
{
	GET_BY_INDEX(rd_int(v, ms));
}

int record_arr_get_map(linli_record *a, size_t i, linli_record **child)
{
	GET_BY_INDEX(rd_cont(v, LINLI_T_MAP, child));
}

int record_arr_get_array(linli_record *a, size_t i, linli_record **child)
{
	GET_BY_INDEX(rd_cont(v, LINLI_T_ARRAY, child));
}

int record_arr_push_strn(linli_record *a, const char *s, size_t len)
{
	struct rval nv = {0};
	int rc = mk_str(&nv, LINLI_T_STR, s, len);
	return rc ? rc : push_or_drop(a, &nv);
}

int record_arr_push_str(linli_record *a, const char *s)
{
	if (!s)
		return LINLI_EINVAL;
	return record_arr_push_strn(a, s, strlen(s));
}

int record_arr_push_bin(linli_record *a, const void *p, size_t len)
{
	struct rval nv = {0};
	int rc = mk_str(&nv, LINLI_T_BIN, p, len);
	return rc ? rc : push_or_drop(a, &nv);
}

int record_arr_push_int(linli_record *a, int64_t v)
{
	struct rval nv = {.type = LINLI_T_INT, .v.i = v};
	return push_val(a, &nv);
}

int record_arr_push_float(linli_record *a, double v)
{
	struct rval nv = {.type = LINLI_T_FLOAT, .v.f = v};
	return push_val(a, &nv);
}

int record_arr_push_bool(linli_record *a, bool v)
{
	struct rval nv = {.type = LINLI_T_BOOL, .v.b = v};
	return push_val(a, &nv);
}

int record_arr_push_time(linli_record *a, int64_t ms) { return record_arr_push_int(a, ms); }

int record_arr_push_nil(linli_record *a)
{
	struct rval nv = {.type = LINLI_T_NIL};
	return push_val(a, &nv);
}

static int push_cont(linli_record *a, uint8_t kind, linli_record **child)
{
	struct rval nv = {0};
	int rc = mk_cont(&nv, a, kind);
	if (rc)
		return rc;
	struct linli_record *c = nv.v.c;
	rc = push_or_drop(a, &nv);
	if (!rc && child)
		*child = c;
	return rc;
}

int record_arr_push_map(linli_record *a, linli_record **child)
{
	return push_cont(a, LINLI_T_MAP, child);
}

int record_arr_push_array(linli_record *a, linli_record **child)
{
	return push_cont(a, LINLI_T_ARRAY, child);
}

int record_arr_push_record(linli_record *a, const linli_record *src)
{
	struct rval nv = {0};
	int rc = mk_copy(&nv, a, src);
	return rc ? rc : push_or_drop(a, &nv);
}

int record_arr_remove(linli_record *a, size_t i)
{
	const struct rval *v;
	int rc = arr_slot(a, i, &v);
	if (rc)
		return rc;
	val_clear(&a->u.a[i]);
	memmove(&a->u.a[i], &a->u.a[i + 1], (a->n - i - 1) * sizeof a->u.a[0]);
	a->n--;
	return 0;
}

/* ---- MessagePack ---- */

static int pack_val(const struct rval *v, msgpack_packer *pk);

static int pack_cont(const struct linli_record *r, msgpack_packer *pk)
{
	if (r->kind == LINLI_T_MAP) {
		msgpack_pack_map(pk, r->n);
		for (size_t i = 0; i < r->n; i++) {
			msgpack_pack_str(pk, r->u.f[i].klen);
			msgpack_pack_str_body(pk, r->u.f[i].key, r->u.f[i].klen);
			pack_val(&r->u.f[i].val, pk);
		}
	} else {
		msgpack_pack_array(pk, r->n);
		for (size_t i = 0; i < r->n; i++)
			pack_val(&r->u.a[i], pk);
	}
	return 0;
}

static int pack_val(const struct rval *v, msgpack_packer *pk)
{
	switch (v->type) {
	case LINLI_T_BOOL:
		return v->v.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
	case LINLI_T_INT:
		return msgpack_pack_int64(pk, v->v.i);
	case LINLI_T_UINT:
		return msgpack_pack_uint64(pk, v->v.u);
	case LINLI_T_FLOAT:
		return msgpack_pack_double(pk, v->v.f);
	case LINLI_T_STR:
		msgpack_pack_str(pk, v->v.s.n);
		return msgpack_pack_str_body(pk, v->v.s.p, v->v.s.n);
	case LINLI_T_BIN:
		msgpack_pack_bin(pk, v->v.s.n);
		return msgpack_pack_bin_body(pk, v->v.s.p, v->v.s.n);
	case LINLI_T_MAP:
	case LINLI_T_ARRAY:
		return pack_cont(v->v.c, pk);
	default:
		return msgpack_pack_nil(pk);
	}
}

int record_pack(const linli_record *r, msgpack_packer *pk)
{
	if (!r || !pk)
		return LINLI_EINVAL;
	return pack_cont(r, pk);
}

/* Decoding keeps the path of the value being read for error messages. */
struct dec {
	char path[512];
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4))) static int dec_fail(struct dec *d, int rc, const char *fmt,
							  ...)
{
	if (!d->err || !d->errlen)
		return rc;
	int n = d->path[0] ? snprintf(d->err, d->errlen, "field '%s': ", d->path) : 0;
	if (n < 0 || (size_t)n >= d->errlen)
		return rc;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

struct keyref {
	const char *p;
	size_t n;
};

static int keycmp(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	size_t n = x->n < y->n ? x->n : y->n;
	int c = n ? memcmp(x->p, y->p, n) : 0; /* an empty key's pointer may be NULL */
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Find a duplicate key of map o; 0 if none, else 1 with *dup set. */
static int find_dup(const msgpack_object *o, struct keyref *dup)
{
	uint32_t n = o->via.map.size;
	if (n < 2)
		return 0;
	if (n <= 16) {
		for (uint32_t i = 0; i < n; i++)
			for (uint32_t j = i + 1; j < n; j++) {
				const msgpack_object_str *a = &o->via.map.ptr[i].key.via.str;
				const msgpack_object_str *b = &o->via.map.ptr[j].key.via.str;
				if (a->size == b->size &&
				    (!a->size || memcmp(a->ptr, b->ptr, a->size) == 0)) {
					*dup = (struct keyref){a->ptr, a->size};
					return 1;
				}
			}
		return 0;
	}
	struct keyref *v = malloc(n * sizeof *v);
	if (!v)
		return -1;
	for (uint32_t i = 0; i < n; i++)
		v[i] = (struct keyref){o->via.map.ptr[i].key.via.str.ptr,
				       o->via.map.ptr[i].key.via.str.size};
	qsort(v, n, sizeof *v, keycmp);
	int found = 0;
	for (uint32_t i = 1; i < n && !found; i++)
		if (keycmp(&v[i - 1], &v[i]) == 0) {
			*dup = v[i];
			found = 1;
		}
	free(v);
	return found;
}

static int dec_cont(struct dec *d, const msgpack_object *o, uint8_t depth,
		    struct linli_record *r);

static int dec_val(struct dec *d, const msgpack_object *o, uint8_t depth, struct rval *v)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		v->type = LINLI_T_NIL;
		return 0;
	case MSGPACK_OBJECT_BOOLEAN:
		v->type = LINLI_T_BOOL;
		v->v.b = o->via.boolean;
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > (uint64_t)INT64_MAX) {
			v->type = LINLI_T_UINT;
			v->v.u = o->via.u64;
		} else {
			v->type = LINLI_T_INT;
			v->v.i = (int64_t)o->via.u64;
		}
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		v->type = LINLI_T_INT;
		v->v.i = o->via.i64;
		return 0;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		v->type = LINLI_T_FLOAT;
		v->v.f = o->via.f64;
		return 0;
	case MSGPACK_OBJECT_STR:
		if (!record_utf8_valid(o->via.str.ptr, o->via.str.size))
			return dec_fail(d, LINLI_EPROTO, "string is not valid UTF-8");
		return mk_str(v, LINLI_T_STR, o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		return mk_str(v, LINLI_T_BIN, o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_MAP:
	case MSGPACK_OBJECT_ARRAY: {
		if (depth + 1 > LINLI_REC_MAX_DEPTH)
			return dec_fail(d, LINLI_ELIMIT, "nested deeper than %d levels",
					LINLI_REC_MAX_DEPTH);
		uint8_t kind = o->type == MSGPACK_OBJECT_MAP ? LINLI_T_MAP : LINLI_T_ARRAY;
		struct linli_record *c = cont_new(kind, (uint8_t)(depth + 1), false);
		if (!c)
			return LINLI_ENOMEM;
		v->type = kind;
		v->v.c = c;
		return dec_cont(d, o, (uint8_t)(depth + 1), c);
	}
	case MSGPACK_OBJECT_EXT:
		return dec_fail(d, LINLI_ETYPE, "MessagePack extension type %d is not supported",
				o->via.ext.type);
	default:
		return dec_fail(d, LINLI_ETYPE, "unknown MessagePack type %d", (int)o->type);
	}
}

/* Fill container r (already of the right kind) from o. On failure r holds what was read. */
static int dec_cont(struct dec *d, const msgpack_object *o, uint8_t depth,
		    struct linli_record *r)
{
	size_t plen = strlen(d->path);
	uint32_t n = o->type == MSGPACK_OBJECT_MAP ? o->via.map.size : o->via.array.size;
	if (n) {
		size_t esz = r->kind == LINLI_T_MAP ? sizeof(struct rfield) : sizeof(struct rval);
		void *mem = calloc(n, esz);
		if (!mem)
			return LINLI_ENOMEM;
		if (r->kind == LINLI_T_MAP)
			r->u.f = mem;
		else
			r->u.a = mem;
		r->cap = n;
	}
	if (r->kind == LINLI_T_MAP) {
		for (uint32_t i = 0; i < n; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key;
			if (k->type != MSGPACK_OBJECT_STR)
				return dec_fail(d, LINLI_EPROTO,
						"key %u is not a string (MessagePack type %d)", i,
						(int)k->type);
			/* msgpack-c gives an empty string a NULL pointer: no memchr on it. */
			if ((k->via.str.size && memchr(k->via.str.ptr, 0, k->via.str.size)) ||
			    !record_utf8_valid(k->via.str.ptr, k->via.str.size))
				return dec_fail(d, LINLI_EPROTO,
						"key %u has a NUL byte or invalid UTF-8", i);
		}
		struct keyref dup;
		int fd = find_dup(o, &dup);
		if (fd < 0)
			return LINLI_ENOMEM;
		if (fd)
			return dec_fail(d, LINLI_EPROTO, "duplicate key '%.*s'", (int)dup.n, dup.p);
		for (uint32_t i = 0; i < n; i++) {
			const msgpack_object_str *k = &o->via.map.ptr[i].key.via.str;
			struct rfield *f = &r->u.f[i];
			f->key = malloc(k->size + 1);
			if (!f->key)
				return LINLI_ENOMEM;
			if (k->size)
				memcpy(f->key, k->ptr, k->size);
			f->key[k->size] = '\0';
			f->klen = k->size;
			f->val.type = LINLI_T_NIL;
			r->n++;
			snprintf(d->path + plen, sizeof d->path - plen, "%s%.*s", plen ? "." : "",
				 (int)k->size, k->ptr);
			int rc = dec_val(d, &o->via.map.ptr[i].val, depth, &f->val);
			if (rc)
				return rc;
		}
	} else {
		for (uint32_t i = 0; i < n; i++) {
			r->u.a[i].type = LINLI_T_NIL;
			r->n++;
			snprintf(d->path + plen, sizeof d->path - plen, "[%u]", i);
			int rc = dec_val(d, &o->via.array.ptr[i], depth, &r->u.a[i]);
			if (rc)
				return rc;
		}
	}
	d->path[plen] = '\0';
	return 0;
}

int record_from_mp(const msgpack_object *o, linli_record **out, char *err, size_t errlen)
{
	struct dec d = {.err = err, .errlen = errlen};
	if (err && errlen)
		err[0] = '\0';
	if (!o || !out)
		return LINLI_EINVAL;
	if (o->type != MSGPACK_OBJECT_MAP && o->type != MSGPACK_OBJECT_ARRAY)
		return dec_fail(&d, LINLI_ETYPE, "a record must be a map or an array, not type %d",
				(int)o->type);
	struct linli_record *r =
		cont_new(o->type == MSGPACK_OBJECT_MAP ? LINLI_T_MAP : LINLI_T_ARRAY, 0, true);
	if (!r)
		return LINLI_ENOMEM;
	int rc = dec_cont(&d, o, 0, r);
	if (rc) {
		cont_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int record_from_bytes(const void *buf, size_t len, linli_record **out, char *err, size_t errlen)
{
	char why[160];
	/* Sizes first: msgpack-c allocates what a header declares before reading on. */
	if (mp_check(buf, len, MP_MAX_DEPTH, 0, why, sizeof why) != 0) {
		if (err && errlen)
			snprintf(err, errlen, "not one MessagePack object: %s", why);
		return LINLI_EPROTO;
	}
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	int rc;
	msgpack_unpack_return ur = msgpack_unpack_next(&up, buf, len, &off);
	if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
		if (err && errlen)
			snprintf(err, errlen, "not one MessagePack object (unpack error %d)",
				 (int)ur);
		rc = LINLI_EPROTO;
	} else
		rc = record_from_mp(&up.data, out, err, errlen);
	msgpack_unpacked_destroy(&up);
	return rc;
}

/* ---- JSON ---- */

static json_t *json_of_cont(const struct linli_record *r);

static json_t *json_of_val(const struct rval *v)
{
	switch (v->type) {
	case LINLI_T_BOOL:
		return json_boolean(v->v.b);
	case LINLI_T_INT:
		return json_integer((json_int_t)v->v.i);
	case LINLI_T_UINT:
		return json_real((double)v->v.u);
	case LINLI_T_FLOAT:
		return json_real(v->v.f);
	case LINLI_T_STR:
	case LINLI_T_BIN: /* as the console shows it; bytes that are not UTF-8 are refused */
		return json_stringn(v->v.s.p, v->v.s.n);
	case LINLI_T_MAP:
	case LINLI_T_ARRAY:
		return json_of_cont(v->v.c);
	default:
		return json_null();
	}
}

static json_t *json_of_cont(const struct linli_record *r)
{
	json_t *j = r->kind == LINLI_T_MAP ? json_object() : json_array();
	for (size_t i = 0; j && i < r->n; i++) {
		json_t *x = json_of_val(r->kind == LINLI_T_MAP ? &r->u.f[i].val : &r->u.a[i]);
		int bad = !x || (r->kind == LINLI_T_MAP
					 ? json_object_setn_new(j, r->u.f[i].key, r->u.f[i].klen, x)
					 : json_array_append_new(j, x));
		if (bad) {
			json_decref(j);
			return NULL;
		}
	}
	return j;
}

int record_to_json(const linli_record *r, char *buf, size_t cap, size_t *len)
{
	if (!r || (!buf && cap))
		return LINLI_EINVAL;
	json_t *j = json_of_cont(r);
	if (!j)
		return LINLI_EINVAL; /* a bin value that is not UTF-8, or out of memory */
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	if (!s)
		return LINLI_ENOMEM;
	size_t n = strlen(s);
	if (len)
		*len = n;
	int rc = 0;
	if (n + 1 > cap) {
		if (cap)
			buf[0] = '\0';
		rc = LINLI_E2BIG;
	} else
		memcpy(buf, s, n + 1);
	free(s);
	return rc;
}

static int from_json_cont(struct dec *d, const json_t *j, struct linli_record *r);

static int from_json_val(struct dec *d, const json_t *j, uint8_t depth, struct rval *v)
{
	switch (json_typeof(j)) {
	case JSON_NULL:
		v->type = LINLI_T_NIL;
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
		v->type = LINLI_T_BOOL;
		v->v.b = json_is_true(j);
		return 0;
	case JSON_INTEGER:
		v->type = LINLI_T_INT;
		v->v.i = (int64_t)json_integer_value(j);
		return 0;
	case JSON_REAL:
		v->type = LINLI_T_FLOAT;
		v->v.f = json_real_value(j);
		return 0;
	case JSON_STRING:
		return mk_str(v, LINLI_T_STR, json_string_value(j), json_string_length(j));
	case JSON_OBJECT:
	case JSON_ARRAY: {
		if (depth + 1 > LINLI_REC_MAX_DEPTH)
			return dec_fail(d, LINLI_ELIMIT, "nested deeper than %d levels",
					LINLI_REC_MAX_DEPTH);
		uint8_t kind = json_is_object(j) ? LINLI_T_MAP : LINLI_T_ARRAY;
		v->v.c = cont_new(kind, (uint8_t)(depth + 1), false);
		if (!v->v.c)
			return LINLI_ENOMEM;
		v->type = kind;
		return from_json_cont(d, j, v->v.c);
	}
	}
	return LINLI_EINVAL;
}

static int from_json_cont(struct dec *d, const json_t *j, struct linli_record *r)
{
	size_t plen = strlen(d->path);
	if (r->kind == LINLI_T_MAP) {
		const char *k;
		json_t *x;
		void *tmp;
		json_object_foreach_safe((json_t *)j, tmp, k, x)
		{
			size_t klen = strlen(k);
			snprintf(d->path + plen, sizeof d->path - plen, "%s%s", plen ? "." : "", k);
			if (grow(r))
				return LINLI_ENOMEM;
			struct rfield *f = &r->u.f[r->n];
			f->key = malloc(klen + 1);
			if (!f->key)
				return LINLI_ENOMEM;
			memcpy(f->key, k, klen + 1);
			f->klen = klen;
			f->val.type = LINLI_T_NIL;
			r->n++;
			int rc = from_json_val(d, x, r->depth, &f->val);
			if (rc)
				return rc;
		}
	} else {
		size_t i;
		json_t *x;
		json_array_foreach(j, i, x)
		{
			snprintf(d->path + plen, sizeof d->path - plen, "[%zu]", i);
			if (grow(r))
				return LINLI_ENOMEM;
			r->u.a[r->n].type = LINLI_T_NIL;
			r->n++;
			int rc = from_json_val(d, x, r->depth, &r->u.a[r->n - 1]);
			if (rc)
				return rc;
		}
	}
	d->path[plen] = '\0';
	return 0;
}

int record_from_json(const char *text, size_t len, linli_record **out, char *err, size_t errlen)
{
	struct dec d = {.err = err, .errlen = errlen};
	if (err && errlen)
		err[0] = '\0';
	if (!text || !out)
		return LINLI_EINVAL;
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return dec_fail(&d, LINLI_EINVAL, "malformed JSON at line %d column %d: %s",
				je.line, je.column, je.text);
	if (!json_is_object(j) && !json_is_array(j)) {
		json_decref(j);
		return dec_fail(&d, LINLI_EINVAL, "a record must be a JSON object or array");
	}
	struct linli_record *r = cont_new(json_is_object(j) ? LINLI_T_MAP : LINLI_T_ARRAY, 0, true);
	int rc = r ? from_json_cont(&d, j, r) : LINLI_ENOMEM;
	json_decref(j);
	if (rc) {
		cont_free(r);
		return rc;
	}
	*out = r;
	return 0;
}
