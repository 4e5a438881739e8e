/*
 * hal_cmds — see hal_cmds.h.
 *
 * `devices add` shows the new device's machine secret exactly once, in its
 * reply: the registry keeps only a BLAKE2b hash (hal_secret_hash), so a lost
 * secret is replaced with `devices rekey`, never recovered. Command
 * arguments are typed from the class: `seconds=5` is an integer for a door's
 * open, a string for a screen's notice text.
 */
#include "hal_cmds.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "access.h"
#include "cmd.h"
#include "hal.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"
#include "record.h"
#include "tier.h"

/* ---- arguments ---- */

#define MAX_POS 24

struct args {
	const char *pos[MAX_POS];
	int n_pos;
	const char *scope, *cls, *state, *driver, *name, *poll, *heartbeat, *timeout, *limit,
	    *after, *building, *floor, *grid, *place;
};

#define LIST_DEFAULT 1000 /* rows of `devices list` unless --limit says otherwise */
#define LIST_MAX     5000 /* a reply must stay under the console's 1 MiB */

enum {
	O_SCOPE = 1,
	O_CLASS = 2,
	O_STATE = 4,
	O_DRIVER = 8,
	O_NAME = 16,
	O_POLL = 32,
	O_HEARTBEAT = 64,
	O_TIMEOUT = 128,
	O_LIMIT = 256,
	O_AFTER = 512,
	O_BUILDING = 1024,
	O_FLOOR = 2048,
	O_GRID = 4096,
	O_POS = 8192
};

static const struct cmd_opt opt_names[] = {{"scope", O_SCOPE},
					   {"class", O_CLASS},
					   {"state", O_STATE},
					   {"driver", O_DRIVER},
					   {"name", O_NAME},
					   {"poll", O_POLL},
					   {"heartbeat", O_HEARTBEAT},
					   {"timeout", O_TIMEOUT},
					   {"limit", O_LIMIT},
					   {"after", O_AFTER},
					   {"building", O_BUILDING},
					   {"floor", O_FLOOR},
					   {"grid", O_GRID},
					   {"pos", O_POS},
					   {NULL, 0}};

/* An option's value into its slot of struct args (the bits are in field order). */
static int take_opt(struct cmd_call *call, void *ud, int bit, const char *v)
{
	(void)call;
	struct args *a = ud;
	const char **slot[] = {&a->scope, &a->cls,   &a->state,	    &a->driver,
			       &a->name,  &a->poll,  &a->heartbeat, &a->timeout,
			       &a->limit, &a->after, &a->building,  &a->floor, &a->grid,
			       &a->place};
	for (int b = 0; b < 14; b++)
		if (bit == 1 << b)
			*slot[b] = v;
	return 0;
}

static int parse(struct cmd_call *call, int allowed, int min_pos, int max_pos, const char *usage,
		 struct args *a)
{
	memset(a, 0, sizeof *a);
	int rc = cmd_args(call, opt_names, allowed, a->pos, max_pos, &a->n_pos, usage, take_opt, a);
	if (!rc && a->n_pos < min_pos)
		rc = cmd_fail(call, LINLI_EINVAL, "usage: devices %s %s", call->argv[1], usage);
	return rc;
}

static int num_opt(struct cmd_call *call, const char *opt, const char *v, long long lo,
		   long long hi, long long *out)
{
	char *end;
	errno = 0;
	long long n = v ? strtoll(v, &end, 10) : 0;
	if (!v || !*v || *end || errno || n < lo || n > hi)
		return cmd_fail(call, LINLI_EINVAL,
				"devices %s: --%s '%.32s' is not a number in "
				"%lld..%lld",
				call->argv[1], opt, v ? v : "", lo, hi);
	*out = n;
	return 0;
}

/*
 * The device named by argv, with access for `act` checked. A device outside
 * the caller's jurisdiction is answered as absent (the refusal is still
 * audited by access_call): a reply never tells that a sibling's device
 * exists, nor where.
 */
static struct hal_dev *device_arg(struct cmd_call *call, const char *id, enum tier_action act,
				  int *rc)
{
	struct hal_dev *d = hal_find(call->k->hal, id);
	if (d) {
		bool seen = access_sees(call, hal_dev_scope(d));
		*rc = access_call(call, act, hal_dev_scope(d), hal_dev_class(d)->name);
		if (*rc == 0 && seen)
			return d;
		if (seen) /* the caller's, but not for this action: call->err says why */
			return NULL;
	}
	*rc = cmd_fail(call, LINLI_ENOENT, "no device '%.48s'; see 'devices list'", id);
	return NULL;
}

static void who_of(const struct cmd_call *call, char *buf, size_t n)
{
	const struct tier_principal *w = call->who;
	if (!w)
		snprintf(buf, n, "?");
	else
		snprintf(buf, n, "%s '%s' of %s",
			 w->kind == PRINCIPAL_PLUGIN	? "plugin"
			 : w->kind == PRINCIPAL_MACHINE ? "machine"
			 : w->kind == PRINCIPAL_KERNEL	? "kernel"
							: "person",
			 w->name ? w->name : "?", w->scope ? w->scope : "?");
}

/* ---- list, show, readings, stats ---- */

static int cmd_list(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct args a;
	int rc = parse(call, O_SCOPE | O_CLASS | O_STATE | O_DRIVER | O_LIMIT | O_AFTER, 0, 0,
		       "[--scope PATH] [--class C] [--state online|unavailable] [--driver D] "
		       "[--limit N] [--after ID]",
		       &a);
	if (rc)
		return rc;
	long long limit = LIST_DEFAULT;
	if (a.limit && (rc = num_opt(call, "limit", a.limit, 1, LIST_MAX, &limit)))
		return rc;
	if (a.state && strcmp(a.state, "online") && strcmp(a.state, "unavailable"))
		return cmd_fail(call, LINLI_EINVAL, "--state '%.32s' is not online or unavailable",
				a.state);
	char scope[SCOPE_MAX + 1];
	if ((rc = access_scope(call, a.scope, "devices list", ACT_DEVICE_READ, a.cls, scope)))
		return rc;
	struct hal_dev **v;
	int n = hal_list(call->k->hal, scope, &v);
	if (n < 0)
		return cmd_fail(call, n, "out of memory");
	int keep = 0;
	for (int i = 0; i < n && keep < limit; i++)
		if ((!a.after || strcmp(hal_dev_id(v[i]), a.after) > 0) &&
		    (!a.cls || strcmp(hal_dev_class(v[i])->name, a.cls) == 0) &&
		    (!a.state || strcmp(hal_state_name(hal_dev_state(v[i])), a.state) == 0) &&
		    (!a.driver || strcmp(hal_dev_driver(v[i]), a.driver) == 0))
			v[keep++] = v[i];
	msgpack_pack_array(&call->pk, (size_t)keep);
	for (int i = 0; i < keep; i++)
		hal_pack_dev(call->k->hal, v[i], &call->pk, false);
	free(v);
	return 0;
}

static int cmd_show(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct args a;
	int rc = parse(call, 0, 1, 1, "ID", &a);
	if (rc)
		return rc;
	struct hal_dev *d = device_arg(call, a.pos[0], ACT_DEVICE_READ, &rc);
	if (!d)
		return rc;
	hal_pack_dev(call->k->hal, d, &call->pk, true);
	return 0;
}

static int cmd_readings(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct args a;
	int rc = parse(call, 0, 1, 1, "ID", &a);
	if (rc)
		return rc;
	struct hal_dev *d = device_arg(call, a.pos[0], ACT_DEVICE_READ, &rc);
	if (!d)
		return rc;
	hal_pack_latest(d, NULL, &call->pk);
	return 0;
}

/*
 * Totals over the devices of a jurisdiction (--scope, by default the
 * caller's). The layer's own counters (drivers, shed readings, commands,
 * timeouts) are the node's: they show only when the scope covers the node.
 */
static int cmd_stats(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct args a;
	int rc = parse(call, O_SCOPE, 0, 0, "[--scope PATH]", &a);
	char scope[SCOPE_MAX + 1];
	if (rc || (rc = access_scope(call, a.scope, "devices stats", ACT_DEVICE_READ, NULL, scope)))
		return rc;
	struct hal_dev **v;
	int n = hal_list(call->k->hal, scope, &v);
	if (n < 0)
		return cmd_fail(call, n, "out of memory");
	struct hal_totals t = {.devices = (uint64_t)n};
	for (int i = 0; i < n; i++) {
		t.open += hal_dev_open(v[i]);
		t.online += hal_dev_state(v[i]) == HAL_ONLINE;
		t.readings += hal_dev_readings(v[i]);
		t.events += hal_dev_events(v[i]);
		for (int r = 0; r < HAL_REF_KINDS; r++)
			t.refused += hal_dev_refused(v[i], (enum hal_refusal)r);
	}
	free(v);
	bool node = scope_within(scope, call->k->cfg.node_path);
	struct hal_totals all;
	hal_get_totals(call->k->hal, &all);
	msgpack_packer *pk = &call->pk;
	msgpack_pack_map(pk, node ? 11 : 7);
	mp_kv_str(pk, "scope", scope);
	mp_kv_uint(pk, "devices", t.devices);
	mp_kv_uint(pk, "open", t.open);
	mp_kv_uint(pk, "online", t.online);
	mp_kv_uint(pk, "readings", t.readings);
	mp_kv_uint(pk, "refused", t.refused);
	mp_kv_uint(pk, "events", t.events);
	if (node) {
		mp_kv_uint(pk, "drivers", all.drivers);
		mp_kv_uint(pk, "shed", all.shed);
		mp_kv_uint(pk, "commands", all.commands);
		mp_kv_uint(pk, "timeouts", all.timeouts);
	}
	return 0;
}

/* ---- add, remove, rekey, discover ---- */

/* A registry write's commit is known: the reply is packed already. */
static void commit_done(void *arg, int rc, const char *err)
{
	struct cmd_call *call = arg;
	if (rc)
		snprintf(call->err, sizeof call->err, "%s", err && *err ? err : linli_strerror(rc));
	cmd_finish(call, rc);
}

static int cmd_add(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct args a;
	const char *usage = "ID CLASS DRIVER ADDRESS [--scope PATH] [--name TEXT] [--heartbeat S] "
			    "[--poll RESOURCE=SECONDS,...] [--building B] [--floor N] [--grid G] "
			    "[--pos X,Y]";
	int rc = parse(call,
		       O_SCOPE | O_NAME | O_POLL | O_HEARTBEAT | O_BUILDING | O_FLOOR | O_GRID |
			   O_POS,
		       4, 4, usage, &a);
	if (rc)
		return rc;
	long long hb = 0, fl = 0;
	if (a.heartbeat && (rc = num_opt(call, "heartbeat", a.heartbeat, 1, 604800, &hb)))
		return rc;
	if (a.floor && (rc = num_opt(call, "floor", a.floor, -10, 200, &fl)))
		return rc;
	int px = 0, py = 0, pn = 0;
	if (a.place && (sscanf(a.place, "%4d,%4d%n", &px, &py, &pn) != 2 ||
			(size_t)pn != strlen(a.place) || px < 0 || px > 1000 || py < 0 ||
			py > 1000 || strspn(a.place, "0123456789,") != strlen(a.place)))
		return cmd_fail(call, LINLI_EINVAL,
				"devices add: --pos '%.32s': X,Y, two whole numbers 0..1000 (the "
				"device's place on its floor's plan, for the big screen's map)",
				a.place);
	char scope[SCOPE_MAX + 1];
	if ((rc = access_scope(call, a.scope, "devices add", ACT_DEVICE_MANAGE, a.pos[1], scope)))
		return rc;
	char secret[65], hash[80];
	tier_token_new(secret);
	hal_secret_hash(secret, hash);
	struct hal_dev_spec s = {.id = a.pos[0],
				 .class_name = a.pos[1],
				 .driver = a.pos[2],
				 .address = a.pos[3],
				 .name = a.name,
				 .scope = scope,
				 .poll = a.poll,
				 .credential = hash,
				 .heartbeat_s = hb,
				 .building = a.building,
				 .grid = a.grid,
				 .floor = fl,
				 .has_floor = a.floor != NULL,
				 .pos_x = px,
				 .pos_y = py,
				 .has_pos = a.place != NULL};
	rc = hal_add(call->k->hal, &s, commit_done, call, call->err, sizeof call->err);
	if (rc)
		return rc;
	char who[160];
	who_of(call, who, sizeof who);
	log_info("audit", "device.manage: device %s (%s) added at %s by %s", a.pos[0], a.pos[1],
		 scope, who);
	struct hal_dev *d = hal_find(call->k->hal, a.pos[0]);
	char derr[320] = "";
	hal_tell_secret(call->k->hal, a.pos[0], secret, derr, sizeof derr);
	msgpack_pack_map(&call->pk, derr[0] ? 9 : 8);
	mp_kv_str(&call->pk, "id", a.pos[0]);
	mp_kv_str(&call->pk, "class", a.pos[1]);
	mp_kv_str(&call->pk, "scope", scope);
	mp_kv_str(&call->pk, "driver", a.pos[2]);
	mp_kv_bool(&call->pk, "open", d && hal_dev_open(d));
	mp_kv_str(&call->pk, "open_error", d ? hal_dev_open_error(d) : NULL);
	mp_kv_str(&call->pk, "secret", secret);
	if (derr[0])
		mp_kv_str(&call->pk, "driver_error", derr);
	mp_kv_str(&call->pk, "note",
		  "the device's machine secret is shown this once; only its hash is kept");
	sodium_memzero(secret, sizeof secret);
	return CMD_PENDING;
}

static int cmd_remove(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct args a;
	int rc = parse(call, 0, 1, 1, "ID", &a);
	if (rc)
		return rc;
	struct hal_dev *d = device_arg(call, a.pos[0], ACT_DEVICE_MANAGE, &rc);
	if (!d)
		return rc;
	char who[160];
	who_of(call, who, sizeof who);
	log_info("audit", "device.manage: device %s (%s) at %s removed by %s", a.pos[0],
		 hal_dev_class(d)->name, hal_dev_scope(d), who);
	char id[64];
	snprintf(id, sizeof id, "%s", a.pos[0]);
	rc = hal_remove(call->k->hal, id, commit_done, call, call->err, sizeof call->err);
	if (rc < 0)
		return rc;
	msgpack_pack_map(&call->pk, 2);
	mp_kv_str(&call->pk, "id", id);
	mp_kv_bool(&call->pk, "removed", true);
	return rc == 1 ? 0 : CMD_PENDING;
}

static int cmd_rekey(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct args a;
	int rc = parse(call, 0, 1, 1, "ID", &a);
	if (rc)
		return rc;
	struct hal_dev *d = device_arg(call, a.pos[0], ACT_DEVICE_MANAGE, &rc);
	if (!d)
		return rc;
	char secret[65], hash[80];
	tier_token_new(secret);
	hal_secret_hash(secret, hash);
	rc = hal_set_credential(call->k->hal, a.pos[0], hash, commit_done, call, call->err,
				sizeof call->err);
	if (rc)
		return rc;
	char who[160];
	who_of(call, who, sizeof who);
	log_info("audit", "device.manage: device %s: new machine credential by %s", a.pos[0], who);
	char derr[320] = "";
	hal_tell_secret(call->k->hal, a.pos[0], secret, derr, sizeof derr);
	msgpack_pack_map(&call->pk, derr[0] ? 4 : 3);
	mp_kv_str(&call->pk, "id", a.pos[0]);
	mp_kv_str(&call->pk, "secret", secret);
	if (derr[0])
		mp_kv_str(&call->pk, "driver_error", derr);
	mp_kv_str(&call->pk, "note",
		  "the new secret is shown this once; the old one no longer works");
	sodium_memzero(secret, sizeof secret);
	return CMD_PENDING;
}

static int cmd_discover(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct args a;
	int rc = parse(call, 0, 0, 1, "[DRIVER]", &a);
	if (rc || (rc = access_call(call, ACT_DEVICE_MANAGE, call->k->cfg.node_path, NULL)))
		return rc;
	struct hal *h = call->k->hal;
	struct hal_totals before, after;
	hal_get_totals(h, &before);
	int ran = 0;
	if (a.n_pos) {
		struct hal_driver *d = hal_driver_find(h, a.pos[0]);
		if (!d)
			return cmd_fail(call, LINLI_ENOENT, "no driver '%.32s' is loaded",
					a.pos[0]);
		hal_driver_attach(h, d);
		ran = 1;
	} else
		ran = hal_attach_all(h);
	hal_get_totals(h, &after);
	msgpack_pack_map(&call->pk, 2);
	mp_kv_int(&call->pk, "drivers", ran);
	mp_kv_uint(&call->pk, "new_devices", after.devices - before.devices);
	return 0;
}

/* ---- command and set ---- */

/* "name=value" typed by field f into record r. */
static int put_typed(struct cmd_call *call, linli_record *r, const struct cat_field *f,
		     const char *name, const char *v)
{
	char *end;
	errno = 0;
	if (!f) /* unknown: hal_command names it */
		return record_set_str(r, name, v);
	switch (f->type) {
	case CAT_INTEGER: {
		long long n = strtoll(v, &end, 10);
		if (!*v || *end || errno)
			return cmd_fail(call, LINLI_EINVAL, "'%s': '%.32s' is not an integer", name,
					v);
		return record_set_int(r, name, n);
	}
	case CAT_FLOAT: {
		double x = strtod(v, &end);
		if (!*v || *end || errno)
			return cmd_fail(call, LINLI_EINVAL, "'%s': '%.32s' is not a number", name,
					v);
		return record_set_float(r, name, x);
	}
	case CAT_BOOLEAN:
		if (strcmp(v, "true") && strcmp(v, "false"))
			return cmd_fail(call, LINLI_EINVAL, "'%s': '%.32s' is not true or false",
					name, v);
		return record_set_bool(r, name, v[0] == 't');
	default:
		return record_set_str(r, name, v);
	}
}

struct ccall {
	struct cmd_call *call;
	struct hal *h;
	uint64_t req;
	char dev[64], what[80];
};

static void ccall_cancel(struct cmd_call *call, void *arg)
{
	(void)call;
	struct ccall *c = arg;
	hal_command_cancel(c->h, c->req);
	free(c);
}

static void ccall_done(void *arg, int rc, const void *result, size_t len, const char *err)
{
	struct ccall *c = arg;
	struct cmd_call *call = c->call;
	call->on_cancel = NULL;
	if (rc) {
		cmd_finish(call, cmd_fail(call, rc, "%s", err && *err ? err : linli_strerror(rc)));
		free(c);
		return;
	}
	msgpack_pack_map(&call->pk, 4);
	mp_kv_str(&call->pk, "device", c->dev);
	mp_kv_str(&call->pk, "command", c->what);
	mp_kv_uint(&call->pk, "request", c->req);
	mp_str(&call->pk, "result");
	if (len)
		msgpack_sbuffer_write(&call->data, result, len);
	else
		msgpack_pack_map(&call->pk, 0);
	cmd_finish(call, 0);
	free(c);
}

static int send_cmd(struct cmd_call *call, const struct args *a, const char *command,
		    linli_record *args)
{
	long long tmo = 0;
	int rc = 0;
	if (a->timeout &&
	    (rc = num_opt(call, "timeout", a->timeout, 1, HAL_CMD_TIMEOUT_MAX_MS, &tmo))) {
		record_free(args);
		return rc;
	}
	struct ccall *c = calloc(1, sizeof *c);
	if (!c) {
		record_free(args);
		return cmd_fail(call, LINLI_ENOMEM, "out of memory");
	}
	char who[160];
	who_of(call, who, sizeof who);
	c->call = call;
	c->h = call->k->hal;
	snprintf(c->dev, sizeof c->dev, "%s", a->pos[0]);
	snprintf(c->what, sizeof c->what, "%s", command ? command : "write");
	struct hal_cmd_req r = {.device = a->pos[0],
				.command = command,
				.args = args,
				.timeout_ms = (uint32_t)tmo,
				.who = who,
				.principal = call->who,
				.done = ccall_done,
				.arg = c};
	rc = hal_command(call->k->hal, &r, &c->req, call->err, sizeof call->err);
	record_free(args);
	if (rc) {
		free(c);
		return rc;
	}
	call->on_cancel = ccall_cancel;
	call->cancel_arg = c;
	return CMD_PENDING;
}

static int cmd_command(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct args a;
	int rc =
	    parse(call, O_TIMEOUT, 2, MAX_POS, "ID COMMAND [ARG=VALUE ...] [--timeout MS]", &a);
	if (rc)
		return rc;
	struct hal_dev *d = device_arg(call, a.pos[0], ACT_DEVICE_COMMAND, &rc);
	if (!d) {
		if (hal_find(call->k->hal, a.pos[0])) { /* there, but not the caller's to command */
			char who[160];
			who_of(call, who, sizeof who);
			log_info("audit", "device.command %s %s by %s: denied: %s", a.pos[0],
				 a.pos[1], who, call->err);
		}
		return rc;
	}
	const struct cat_device_class *cls = hal_dev_class(d);
	const struct cat_command *cc = NULL;
	for (int i = 0; i < cls->n_commands; i++)
		if (strcmp(cls->commands[i].name, a.pos[1]) == 0)
			cc = &cls->commands[i];
	linli_record *args = record_new();
	if (!args)
		return cmd_fail(call, LINLI_ENOMEM, "out of memory");
	for (int i = 2; i < a.n_pos; i++) {
		const char *eq = strchr(a.pos[i], '=');
		if (!eq || eq == a.pos[i] || eq - a.pos[i] > CAT_NAME_MAX) {
			record_free(args);
			return cmd_fail(call, LINLI_EINVAL,
					"devices command: '%.64s' is not ARG=VALUE", a.pos[i]);
		}
		char name[CAT_NAME_MAX + 1];
		snprintf(name, sizeof name, "%.*s", (int)(eq - a.pos[i]), a.pos[i]);
		const struct cat_field *f = NULL;
		for (int j = 0; cc && j < cc->n_args; j++)
			if (strcmp(cc->args[j].name, name) == 0)
				f = &cc->args[j];
		if (record_has(args, name)) {
			record_free(args);
			return cmd_fail(call, LINLI_EINVAL, "devices command: '%s' given twice",
					name);
		}
		if ((rc = put_typed(call, args, f, name, eq + 1)) != 0) {
			record_free(args);
			if (!call->err[0])
				cmd_fail(call, rc, "devices command: '%s': %s", name,
					 linli_strerror(rc));
			return rc;
		}
	}
	return send_cmd(call, &a, a.pos[1], args);
}

static int cmd_set(struct cmd_call *call, void *ud)
{
	(void)ud;
	struct args a;
	int rc = parse(call, O_TIMEOUT, 2, MAX_POS, "ID RESOURCE=VALUE ... [--timeout MS]", &a);
	if (rc)
		return rc;
	struct hal_dev *d = device_arg(call, a.pos[0], ACT_DEVICE_COMMAND, &rc);
	if (!d)
		return rc;
	const struct cat_device_class *cls = hal_dev_class(d);
	linli_record *vals = record_new();
	if (!vals)
		return cmd_fail(call, LINLI_ENOMEM, "out of memory");
	for (int i = 1; i < a.n_pos; i++) {
		const char *eq = strchr(a.pos[i], '=');
		if (!eq || eq == a.pos[i] || eq - a.pos[i] > CAT_NAME_MAX) {
			record_free(vals);
			return cmd_fail(call, LINLI_EINVAL,
					"devices set: '%.64s' is not RESOURCE=VALUE", a.pos[i]);
		}
		char name[CAT_NAME_MAX + 1];
		snprintf(name, sizeof name, "%.*s", (int)(eq - a.pos[i]), a.pos[i]);
		const struct cat_field *f = NULL;
		for (int j = 0; j < cls->n_resources; j++)
			if (strcmp(cls->resources[j].name, name) == 0)
				f = &cls->resources[j];
		if ((rc = put_typed(call, vals, f, name, eq + 1)) != 0) {
			record_free(vals);
			return rc;
		}
	}
	return send_cmd(call, &a, NULL, vals);
}

int hal_cmds_register(struct kernel *k)
{
	static const struct {
		const char *sub, *usage, *summary;
		cmd_fn fn;
	} cmds[] = {
	    {"list", "[--scope PATH] [--class C] [--state S] [--driver D] [--limit N] [--after ID]",
	     "devices of your jurisdiction: class, state, last seen, readings", cmd_list},
	    {"show", "ID", "one device: registry entry, state, counters", cmd_show},
	    {"readings", "ID", "the latest value of each of a device's resources", cmd_readings},
	    {"add",
	     "ID CLASS DRIVER ADDRESS [--scope PATH] [--name N] [--heartbeat S] "
	     "[--poll RES=S,...] [--building B] [--floor N] [--grid G] [--pos X,Y]",
	     "register a device; shows its machine secret once", cmd_add},
	    {"remove", "ID", "close and unregister a device", cmd_remove},
	    {"rekey", "ID", "give a device a new machine secret (shown once)", cmd_rekey},
	    {"command", "ID COMMAND [ARG=VALUE ...] [--timeout MS]",
	     "send a command; answers with the driver's result", cmd_command},
	    {"set", "ID RESOURCE=VALUE ... [--timeout MS]", "write writable resources", cmd_set},
	    {"discover", "[DRIVER]", "open unopened devices and run the drivers' discovery",
	     cmd_discover},
	    {"stats", "[--scope PATH]",
	     "device totals of your jurisdiction: devices, readings, refusals (commands: node)",
	     cmd_stats},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		int rc = cmd_register(k->cmds, "devices", cmds[i].sub, cmds[i].usage,
				      cmds[i].summary, cmds[i].fn, k->hal, k->hal);
		if (rc)
			return rc;
	}
	return 0;
}
