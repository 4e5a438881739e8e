/*
 * metrics — the node's figures in the Prometheus text format, and what is
 * degraded, for the HTTP endpoints (opendata.c). Kernel thread.
 */
#ifndef LINLI_METRICS_H
#define LINLI_METRICS_H

#include <stddef.h>

#include <jansson.h>

struct kernel;

/* The text exposition (version 0.0.4), malloc'd into *out; 0 or LINLI_ENOMEM. */
int metrics_text(struct kernel *k, char **out, size_t *len);

/*
 * What is degraded, an array (empty when nothing is): a plugin failed,
 * faulted, blocked or quarantined, a rule faulted or broken, less free disk
 * under data_dir than http.health_min_free_mb. Each item names the part and
 * its state only; the reasons stay behind `plugins info` and `rules show`.
 * NULL when out of memory.
 */
json_t *metrics_degraded(struct kernel *k);

#endif
