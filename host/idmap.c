/* idmap — see idmap.h. */
#include "idmap.h"

#include <stdlib.h>

#include "linli/error.h"

static size_t home(uint64_t id, size_t cap)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static int grow(struct idmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	struct idmap_slot *s = calloc(cap, sizeof *s);
	if (!s)
		return LINLI_ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slot[i].id)
			continue;
		size_t j = home(m->slot[i].id, cap);
		while (s[j].id)
			j = (j + 1) & (cap - 1);
		s[j] = m->slot[i];
	}
	free(m->slot);
	m->slot = s;
	m->cap = cap;
	return 0;
}

int idmap_put(struct idmap *m, uint64_t id, void *p)
{
	if ((m->n + 1) * 2 > m->cap && grow(m) != 0)
		return LINLI_ENOMEM;
	size_t i = home(id, m->cap);
	while (m->slot[i].id)
		i = (i + 1) & (m->cap - 1);
	m->slot[i].id = id;
	m->slot[i].p = p;
	m->n++;
	return 0;
}

static size_t find(const struct idmap *m, uint64_t id)
{
	if (!m->cap || !id)
		return SIZE_MAX;
	for (size_t i = home(id, m->cap); m->slot[i].id; i = (i + 1) & (m->cap - 1))
		if (m->slot[i].id == id)
			return i;
	return SIZE_MAX;
}

void *idmap_get(const struct idmap *m, uint64_t id)
{
	size_t i = find(m, id);
	return i == SIZE_MAX ? NULL : m->slot[i].p;
}

void *idmap_del(struct idmap *m, uint64_t id)
{
	size_t i = find(m, id);
	if (i == SIZE_MAX)
		return NULL;
	void *p = m->slot[i].p;
	m->slot[i].id = 0;
	m->n--;
	/* Backward shift: pull up every later entry of the run that may sit in the hole. */
	size_t mask = m->cap - 1;
	for (size_t j = (i + 1) & mask; m->slot[j].id; j = (j + 1) & mask) {
		size_t h = home(m->slot[j].id, m->cap);
		/* Stays when its home lies cyclically in (i, j]. */
		if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
			continue;
		m->slot[i] = m->slot[j];
		m->slot[j].id = 0;
		i = j;
	}
	return p;
}

void idmap_free(struct idmap *m)
{
	free(m->slot);
	m->slot = NULL;
	m->cap = m->n = 0;
}
