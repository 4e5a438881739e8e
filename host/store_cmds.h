/*
 * store_cmds — the console's commands over the store and the catalog:
 * `data get|put|del|query`, `store stats|backup`, `catalog list|show`, and
 * the glue that runs the store's group commit at the kernel's batch end.
 *
 * Turns argv and JSON into store calls and the results into reply maps;
 * writes are acknowledged only after their commit (CMD_PENDING). Owns the
 * one place that decides which scopes a caller may touch
 * (store_access_check). Never touches LMDB itself.
 */
#ifndef LINLI_STORE_CMDS_H
#define LINLI_STORE_CMDS_H

#include <stdbool.h>
#include <stddef.h>

struct kernel;

/*
 * store_cmds_register — register the commands and the store's batch-end
 * hook. Needs k->store and k->catalog open. Returns 0 or a LINLI_E* code.
 */
int store_cmds_register(struct kernel *k);

/* The wake callback for store_opts: makes sure a kernel batch runs soon. */
void store_cmds_wake(void *kernel);

/*
 * store_access_check — may the caller holding `session` (NULL: the kernel or
 * a plugin acting for this node) read (write = false) or write records at
 * `scope` (a record's scope, or the root of a subtree it reads)? Every path
 * into the store (console, SDK, Lua) calls this one function. Today: the
 * scope must lie within this node's own path; the permission model (tiers,
 * accounts, roles, plugin grants) grows from here. Returns 0 or LINLI_EPERM
 * with a message.
 */
int store_access_check(const struct kernel *k, const char *session, const char *scope, bool write,
		       char *err, size_t errlen);

#endif
