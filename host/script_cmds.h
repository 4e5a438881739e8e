/*
 * script_cmds — the `rules` console commands over a node's rule set:
 * list, show, check, install, reload, remove, log, test; and the hooks that
 * put rules on the bus. Owns nothing but these; the rules live in script.c.
 */
#ifndef LINLI_SCRIPT_CMDS_H
#define LINLI_SCRIPT_CMDS_H

#include <stddef.h>

struct kernel;
struct script_rules;
struct script_rules_ops;

int script_cmds_register(struct kernel *k, struct script_rules *r);

/*
 * script_cmds_install — install (or replace) rule `text` (named `file` in messages) on k's
 * rule set, `who` granting what it declares (audited): what `rules install --grant` does,
 * for a rule that comes down from the parent tier (fed.c). The rule's name in `name`.
 */
struct tier_principal;
struct cmd_call;
int script_cmds_install(struct kernel *k, const struct tier_principal *who, const char *file,
			const char *text, size_t len, char *name, size_t namelen, char *err,
			size_t errlen);

/* The text of argv[2] FILE of a command: the request's input (--stdin), else read by linlid
   (an absolute path). 0 with *text malloc'd, or the command failed (cmd_fail). */
int script_cmds_file_text(struct cmd_call *call, const char **name, char **text, size_t *len);

/* Hooks that subscribe each ready rule to its `on` on k->bus (open the bus first). */
void script_cmds_bus_ops(struct kernel *k, struct script_rules_ops *ops);

#endif
