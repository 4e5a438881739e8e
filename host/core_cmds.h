/* core_cmds — the kernel's own console commands (status, help). */
#ifndef LINLI_CORE_CMDS_H
#define LINLI_CORE_CMDS_H

struct kernel;
int core_cmds_register(struct kernel *k);

#endif
