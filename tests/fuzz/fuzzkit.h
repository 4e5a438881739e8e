/*
 * fuzzkit — what the libFuzzer targets of tests/fuzz share: quiet logs, a
 * scratch directory removed at exit, the repo's catalog and a store on it.
 * Everything is made once per process and reused by every input.
 */
#ifndef LINLI_FUZZKIT_H
#define LINLI_FUZZKIT_H

#include <stddef.h>
#include <stdint.h>

struct catalog;
struct store;

/* Silence the kernel's log (set LINLI_FUZZ_LOG=1 to see it). Idempotent. */
void fuzz_quiet(void);

/* A private scratch directory, created on first use and removed at exit. */
const char *fuzz_dir(void);

/* Write len bytes to fuzz_dir()/name (directories made as needed), or remove it. */
void fuzz_write(const char *name, const void *data, size_t len);
void fuzz_remove(const char *name);

/* The repo's catalog (SRCDIR/catalog), loaded once. */
const struct catalog *fuzz_catalog(void);

/* A store in fuzz_dir()/store over fuzz_catalog(), opened once on this thread. */
struct store *fuzz_store(void);

/* A NUL-terminated copy of data (caller frees). */
char *fuzz_strndup(const uint8_t *data, size_t len);

#endif
