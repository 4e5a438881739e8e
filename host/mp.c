/* mp — see mp.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"

const msgpack_object *mp_get(const msgpack_object *m, const char *key)
{
	if (!m || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t n = strlen(key);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    memcmp(k->via.str.ptr, key, n) == 0)
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

bool mp_eq(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	       memcmp(o->via.str.ptr, s, n) == 0;
}

char *mp_strdup(const msgpack_object *o)
{
	if (!o || o->type != MSGPACK_OBJECT_STR)
		return NULL;
	char *s = malloc(o->via.str.size + 1);
	if (!s)
		return NULL;
	memcpy(s, o->via.str.ptr, o->via.str.size);
	s[o->via.str.size] = '\0';
	return s;
}

void mp_copy_str(const msgpack_object *o, char *out, size_t n)
{
	if (!n)
		return;
	if (o && o->type == MSGPACK_OBJECT_STR)
		snprintf(out, n, "%.*s", (int)o->via.str.size, o->via.str.ptr);
	else
		out[0] = '\0';
}
