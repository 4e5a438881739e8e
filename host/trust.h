/*
 * trust — the signing keys a node trusts for bundles (bundle.h):
 * `linli trust add NAME (FILE|--stdin)`, `trust list`, `trust remove NAME`.
 *
 * Kept in <data_dir>/trusted.keys (one "NAME KEYID PUBLIC-KEY-HEX" a line,
 * rewritten whole: a temp file, fsync, rename), every change audited
 * (trust.add, trust.remove). A removed key verifies nothing from then on:
 * the bundles it signed are refused at install, and at the next start.
 */
#ifndef LINLI_TRUST_H
#define LINLI_TRUST_H

#include <stddef.h>

#include "bundle.h"

struct kernel;
struct trust;

/* Read the file and register the commands; NULL with err on failure. */
struct trust *trust_open(struct kernel *k, char *err, size_t errlen);
void trust_close(struct trust *t);
/* The keys trusted now (valid until the next trust command); returns how many. */
int trust_keys(const struct trust *t, const struct bundle_key **keys);

#endif
