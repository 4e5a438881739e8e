/*
 * idmap — a map from 64-bit ids (never 0) to pointers: open addressing with
 * linear probing and backward-shift deletion, so lookups stay O(1) however
 * many entries come and go (the kernel's timers, the bus's pending requests:
 * 10,000 requests in flight cost the same per reply as ten).
 */
#ifndef LINLI_IDMAP_H
#define LINLI_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
	struct idmap_slot {
		uint64_t id; /* 0: empty */
		void *p;
	} *slot;
	size_t cap, n; /* cap: 0 or a power of two, at most half full */
};

/* Put id -> p (id != 0, not in the map yet). 0, or LINLI_ENOMEM with the map unchanged. */
int idmap_put(struct idmap *m, uint64_t id, void *p);
/* The pointer of id, or NULL. */
void *idmap_get(const struct idmap *m, uint64_t id);
/* Remove id; its pointer, or NULL when it was not there. */
void *idmap_del(struct idmap *m, uint64_t id);
void idmap_free(struct idmap *m);

#endif
