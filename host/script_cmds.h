/*
 * script_cmds — the `rules` console commands over a node's rule set:
 * list, show, check, install, reload, remove, log, test; and the hooks that
 * put rules on the bus. Owns nothing but these; the rules live in script.c.
 */
#ifndef LINLI_SCRIPT_CMDS_H
#define LINLI_SCRIPT_CMDS_H

struct kernel;
struct script_rules;
struct script_rules_ops;

int script_cmds_register(struct kernel *k, struct script_rules *r);

/* Hooks that subscribe each ready rule to its `on` on k->bus (open the bus first). */
void script_cmds_bus_ops(struct kernel *k, struct script_rules_ops *ops);

#endif
