/*
 * script_cmds — the `rules` console commands over a node's rule set:
 * list, show, check, install, reload, remove, log, test.
 * Owns nothing but the command handlers; the rules live in script.c.
 */
#ifndef LINLI_SCRIPT_CMDS_H
#define LINLI_SCRIPT_CMDS_H

struct kernel;
struct script_rules;

int script_cmds_register(struct kernel *k, struct script_rules *r);

#endif
