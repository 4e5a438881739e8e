/*
 * plugcfg — reading a plugin's group of linli.cfg (plugins.NAME), shared by the
 * family plugins (plugins/lib): every refusal names the file and the key
 * ("linli.cfg: plugins.fire.smoke_for_s: must be whole seconds, 1 to 86400")
 * and returns LINLI_ECONFIG, so that a plugin refuses a bad group at load and
 * keeps its running values when a reload (SIGHUP) brings a bad one.
 *
 * A reader leaves *out as it was when the key is absent (the default stays).
 * Built against the SDK only; the plugin passes its api table.
 */
#ifndef LINLI_PLUGCFG_H
#define LINLI_PLUGCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linli/linli.h>

/* One reading of plugins.NAME: whose group it is and where a refusal goes. */
struct plugcfg {
	const struct linli_api *api;
	const char *plugin; /* NAME */
	char *err;
	size_t errlen;
};

/* The alarm severities, most severe first (the alarms plugin's order). */
#define PLUGCFG_N_SEV 5
extern const char *const plugcfg_sev_names[PLUGCFG_N_SEV];
#define PLUGCFG_SEV_LIST "critical, major, minor, warning, indeterminate"

/* The index of severity `name` in plugcfg_sev_names, or -1. */
int plugcfg_sev(const char *name);

/* "linli.cfg: plugins.NAME.KEY: " and the message into p->err; LINLI_ECONFIG. */
int plugcfg_err(const struct plugcfg *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Every key of c one of keys[0..n): else "unknown key (it takes a, b, ...)". */
int plugcfg_keys(const struct plugcfg *p, linli_record *c, const char *const *keys, size_t n);

/*
 * An integer lo..hi ("must be WHAT, LO to HI": what is "whole seconds", "a
 * whole number", ...), stored times scale (1000: seconds into ms).
 */
int plugcfg_int(const struct plugcfg *p, linli_record *c, const char *key, int64_t lo, int64_t hi,
		int64_t scale, const char *what, int64_t *out);

/* A number lo..hi, an integer allowed ("must be a number LO to HI (UNIT)"). */
int plugcfg_num(const struct plugcfg *p, linli_record *c, const char *key, double lo, double hi,
		const char *unit, double *out);

/* true or false. */
int plugcfg_bool(const struct plugcfg *p, linli_record *c, const char *key, bool *out);

/*
 * severity = { TYPE = "SEVERITY"; ... } over the plugin's alarm types
 * types[0..n): sev[type] set to a plugcfg_sev index. A type not in the list
 * is refused naming them (and `note`, when not NULL, after a "; ").
 */
int plugcfg_sevs(const struct plugcfg *p, linli_record *c, const char *const *types, int n,
		 const char *note, int *sev);

/* The map severity = { TYPE = "SEVERITY" } into r (for a stats reply). */
void plugcfg_put_sevs(const struct linli_api *api, linli_record *r, const char *const *types, int n,
		      const int *sev);

/*
 * The plugin's group now, against the one last seen (*seen, its JSON, kept
 * here; free it at fini): 1 and *c (the caller parses and frees it) when it
 * differs, *seen then updated; 0 when unchanged; a LINLI_E* code with p->err
 * set when it cannot be read.
 */
int plugcfg_fresh(const struct plugcfg *p, linli_ctx *ctx, char **seen, linli_record **c);

/* Parses group c into the plugin's state ud, applying it only when it is good. */
typedef int (*plugcfg_parse_fn)(const struct plugcfg *p, linli_record *c, void *ud);

/*
 * plugcfg_fresh, then parse when the group changed: 0 (and *changed when a
 * new group was applied); the parse's LINLI_ECONFIG with p->err set when it
 * changed and is bad (the running values stay); another code when it could
 * not be read.
 */
int plugcfg_load(const struct plugcfg *p, linli_ctx *ctx, char **seen, plugcfg_parse_fn parse,
		 void *ud, bool *changed);

/*
 * A reload (SIGHUP) tick: plugcfg_load of plugins.NAME, its outcome logged
 * ("reload refused, keeping the running configuration: ...", counted in
 * *refused; "configuration reloaded from linli.cfg (plugins.NAME)"). True
 * when a new group was applied.
 */
bool plugcfg_reload(const struct linli_api *api, linli_ctx *ctx, const char *plugin, char **seen,
		    plugcfg_parse_fn parse, void *ud, int64_t *refused);

#endif
