/*
 * store_cmds — the console's commands over the store and the catalog:
 * `data get|put|del|query`, `store stats|backup`, `catalog list|show`, and
 * the glue that runs the store's group commit at the kernel's batch end.
 *
 * Turns argv and JSON into store calls and the results into reply maps;
 * writes are acknowledged only after their commit (CMD_PENDING). Every
 * request passes access_call (access.h) first. Never touches LMDB itself.
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

#endif
