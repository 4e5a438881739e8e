/*
 * hal_api — see hal_api.h.
 *
 * A registered driver is a tracked resource (pdrv) of its plugin: quiesce
 * closes its devices before the plugin's fini, release unregisters it, and
 * suspend/resume withdraw and restore the driver's name around a reload so
 * that the new instance can register the same name. Attaching the driver's
 * devices and calling its discover waits for a kernel event after
 * registration, so a driver's ops never run inside its own init.
 *
 * A command sent by a plugin is a tracked resource (pcmd) until answered;
 * released early (the plugin stops), it is cancelled in the HAL and the
 * plugin's callback is never called.
 *
 * plugin_config, device_classes, dev_info, dev_get and dev_command do their
 * work in the *_as calls for a struct hal_actor; the C members are thin
 * wrappers that make the actor of the calling plugin (plug_principal: the
 * principal plug_authorize checks) and turn MessagePack into records.
 * script_api.c makes the actor of a script plugin or a rule and calls the
 * same functions.
 */
#include "hal_api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "hal.h"
#include "kernel.h"
#include "log.h"
#include "mp.h"
#include "plugin.h"
#include "record.h"
#include "store_cmds.h"
#include "util.h"
#include "watchdog.h"

static struct hal *hal_of(linli_ctx *ctx)
{
	return plug_kernel(plug_from_ctx(ctx))->hal;
}

/* ---- plugin_config and device_classes ---- */

int hal_api_plugin_config_as(const struct hal_actor *a, msgpack_packer *pk, char *err,
			     size_t errlen)
{
	if (a->who->kind != PRINCIPAL_PLUGIN) {
		snprintf(err, errlen,
			 "plugin_config: %s '%s' has no plugin config (plugins.NAME of linli.cfg "
			 "is read by plugins only)",
			 a->who->kind == PRINCIPAL_RULE ? "rule" : "caller", a->who->name);
		return LINLI_ESTATE;
	}
	const struct cfg *c = &a->k->cfg;
	for (int i = 0; i < c->n_plugin_conf; i++)
		if (strcmp(c->plugin_conf[i].name, a->who->name) == 0)
			return pk->callback(pk->data, c->plugin_conf[i].mp, c->plugin_conf[i].len)
				   ? LINLI_ENOMEM
				   : 0;
	return msgpack_pack_map(pk, 0) ? LINLI_ENOMEM : 0;
}

void hal_api_device_classes_as(const struct hal_actor *a, msgpack_packer *pk)
{
	const struct catalog *cat = a->k->catalog;
	int nc = cat ? cat->n_classes : 0;
	msgpack_pack_array(pk, (size_t)nc);
	for (int i = 0; i < nc; i++)
		store_pack_class(pk, &cat->classes[i], true);
}

/* ---- drivers ---- */

struct pdrv {
	struct plugin *p;
	struct plug_res *res;
	struct hal_driver *d; /* NULL while suspended */
	char name[LINLI_NAME_MAX];
	struct linli_driver_ops ops;
};

struct attach_ev {
	struct hal *h;
	uint64_t drv_id;
};

static void attach_fire(struct kernel *k, void *arg)
{
	(void)k;
	struct attach_ev *a = arg;
	struct hal_driver *d = hal_driver_by_id(a->h, a->drv_id);
	if (d)
		hal_driver_attach(a->h, d);
	free(a);
}

static void schedule_attach(struct hal *h, struct hal_driver *d)
{
	struct attach_ev *a = malloc(sizeof *a);
	if (a) {
		a->h = h;
		a->drv_id = hal_driver_id(d);
		if (kernel_post(hal_kernel(h), attach_fire, a) == 0)
			return;
		free(a);
	}
	hal_driver_attach(h, d); /* the loop is gone: attach now */
}

static void pdrv_release(void *arg)
{
	struct pdrv *r = arg;
	hal_driver_waiters_fail(plug_kernel(r->p)->hal, plug_ctx(r->p), false);
	if (r->d)
		hal_driver_remove(plug_kernel(r->p)->hal, r->d);
	free(r);
}

static void pdrv_quiesce(void *arg)
{
	struct pdrv *r = arg;
	/* Its threads waiting in dev_event_wait wake up before fini joins them. */
	hal_driver_waiters_fail(plug_kernel(r->p)->hal, plug_ctx(r->p), true);
	if (r->d)
		hal_driver_quiesce(plug_kernel(r->p)->hal, r->d);
}

static int pdrv_suspend(void *arg)
{
	struct pdrv *r = arg;
	if (r->d)
		hal_driver_remove(plug_kernel(r->p)->hal, r->d);
	r->d = NULL;
	return 0;
}

static int pdrv_resume(void *arg)
{
	struct pdrv *r = arg;
	struct hal *h = plug_kernel(r->p)->hal;
	char err[512];
	int rc = hal_driver_add(h, r->name, &r->ops, plug_ctx(r->p), plug_name(r->p), &r->d, err,
				sizeof err);
	if (rc) {
		log_error(plug_name(r->p), "cannot restore driver %s: %s", r->name, err);
		return rc;
	}
	hal_driver_set_scope(r->d, plug_scope(r->p));
	schedule_attach(h, r->d);
	return 0;
}

static void pdrv_describe(void *arg, char *buf, size_t len)
{
	struct pdrv *r = arg;
	snprintf(buf, len, "driver %s%s", r->name, r->d ? "" : " (suspended)");
}

static const struct plug_res_ops pdrv_ops = {
    .kind = "driver",
    .release = pdrv_release,
    .suspend = pdrv_suspend,
    .resume = pdrv_resume,
    .describe = pdrv_describe,
    .quiesce = pdrv_quiesce,
};

int hal_api_driver_register(linli_ctx *ctx, const char *name, const struct linli_driver_ops *ops)
{
	struct plugin *p = plug_from_ctx(ctx);
	struct hal *h = hal_of(ctx);
	char err[512], cap[LINLI_CAP_MAX + 16];
	snprintf(cap, sizeof cap, "hal.driver:%s", name ? name : "");
	int rc = 0;
	if (!h) {
		rc = LINLI_ESTATE;
		snprintf(err, sizeof err, "this linlid has no device layer");
	} else if (name && !plug_has_cap(p, cap)) {
		rc = LINLI_EPERM;
		snprintf(err, sizeof err, "driver %s: plugin '%s' holds no granted capability %s",
			 name, plug_name(p), cap);
	}
	struct pdrv *r = NULL;
	if (!rc) {
		r = calloc(1, sizeof *r);
		if (!r)
			return LINLI_ENOMEM;
		r->p = p;
		rc = hal_driver_add(h, name, ops, ctx, plug_name(p), &r->d, err, sizeof err);
		if (!rc)
			hal_driver_set_scope(r->d, plug_scope(p));
	}
	if (rc) {
		free(r);
		log_warn(plug_name(p), "%s", err);
		plug_set_error(p, err);
		return rc;
	}
	snprintf(r->name, sizeof r->name, "%s", name);
	memcpy(&r->ops, ops, ops->size < sizeof r->ops ? ops->size : sizeof r->ops);
	r->ops.size = sizeof r->ops;
	if (!(r->res = plug_track(p, &pdrv_ops, r))) {
		hal_driver_remove(h, r->d);
		free(r);
		return LINLI_ENOMEM;
	}
	schedule_attach(h, r->d);
	return 0;
}

/* ---- what drivers report (any thread) ---- */

int hal_api_dev_post(linli_ctx *ctx, const struct linli_reading *r, size_t n)
{
	struct hal *h = hal_of(ctx);
	if (!h)
		return LINLI_ESTATE;
	char err[256];
	return hal_post(h, ctx, r, n, err, sizeof err);
}

/* Pack a map record; NULL gives len 0. */
static int pack_map(const linli_record *r, msgpack_sbuffer *sb)
{
	msgpack_sbuffer_init(sb);
	if (!r)
		return 0;
	if (record_kind(r) != LINLI_T_MAP)
		return LINLI_EINVAL;
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	return record_pack(r, &pk);
}

int hal_api_dev_event(linli_ctx *ctx, const char *device, const char *event,
		      const linli_record *data, int64_t time_ms)
{
	struct hal *h = hal_of(ctx);
	if (!h)
		return LINLI_ESTATE;
	msgpack_sbuffer sb;
	int rc = pack_map(data, &sb);
	if (!rc) {
		char err[320];
		rc = hal_event(h, ctx, device, event, sb.data, sb.size, time_ms, err, sizeof err);
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

int hal_api_dev_available(linli_ctx *ctx, const char *device, bool online, const char *why)
{
	struct hal *h = hal_of(ctx);
	if (!h)
		return LINLI_ESTATE;
	char err[320];
	return hal_avail(h, ctx, device, online, why, err, sizeof err);
}

int hal_api_dev_event_wait(linli_ctx *ctx, const char *device, const char *event,
			   const linli_record *data, int64_t time_ms, uint32_t timeout_ms)
{
	struct hal *h = hal_of(ctx);
	if (!h)
		return LINLI_ESTATE;
	msgpack_sbuffer sb;
	int rc = pack_map(data, &sb);
	if (!rc) {
		char err[400];
		rc = hal_event_wait(h, ctx, device, event, sb.data, sb.size, time_ms, timeout_ms, err,
				    sizeof err);
		if (rc && rc != LINLI_ETIMEDOUT)
			log_warn(plug_name(plug_from_ctx(ctx)), "%s", err);
	}
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

int hal_api_dev_command_done(linli_ctx *ctx, uint64_t req, int rc, const linli_record *result,
			     const char *err)
{
	struct hal *h = hal_of(ctx);
	if (!h)
		return LINLI_ESTATE;
	msgpack_sbuffer sb;
	int r = pack_map(result, &sb);
	if (!r) {
		char e[256];
		r = hal_command_done(h, ctx, req, rc, sb.data, sb.size, err, e, sizeof e);
	}
	msgpack_sbuffer_destroy(&sb);
	return r;
}

/* ---- kernel-thread members ---- */

int hal_api_dev_found(linli_ctx *ctx, const struct linli_device_info *info)
{
	struct plugin *p = plug_from_ctx(ctx);
	struct hal *h = hal_of(ctx);
	struct hal_driver *d = h ? hal_driver_of(h, ctx) : NULL;
	if (!d) {
		log_warn(plug_name(p), "dev_found: this plugin registered no driver");
		return LINLI_EPERM;
	}
	char err[512];
	/* A device it finds is where the plugin acts: its scope (plug_scope) by default, and
	   never outside it (a driver installed for one community finds none in another). */
	struct linli_device_info in;
	if (info && info->size >= LINLI_DEVICE_INFO_SIZE_1_0) {
		memcpy(&in, info, LINLI_DEVICE_INFO_SIZE_1_0);
		in.size = LINLI_DEVICE_INFO_SIZE_1_0;
		if (!in.scope || !*in.scope)
			in.scope = plug_scope(p);
		else if (!scope_within(plug_scope(p), in.scope)) {
			log_warn(plug_name(p), "dev_found: scope %.300s is outside plugin '%s''s scope "
				 "%s", in.scope, plug_name(p), plug_scope(p));
			return LINLI_EPERM;
		}
		info = &in;
	}
	int rc = hal_found(h, d, info, err, sizeof err);
	if (rc && rc != LINLI_EEXIST)
		log_warn(plug_name(p), "dev_found: %s", err);
	return rc;
}

/* The device, if one of ctx's drivers drives it (NULL otherwise, with *rc set). */
static struct hal_dev *own_dev(linli_ctx *ctx, const char *id, int *rc)
{
	struct hal *h = hal_of(ctx);
	struct hal_dev *d = h && id ? hal_find(h, id) : NULL;
	if (!d) {
		*rc = LINLI_ENOENT;
		return NULL;
	}
	struct hal_driver *drv = hal_dev_driver_of(d);
	/* A driver installed for a subtree (--scope) drives nothing outside it, whoever bound
	   the device to it (devices add --driver, or before the scope was given). */
	if (!drv || hal_driver_ctx(drv) != ctx ||
	    !scope_within(plug_scope(plug_from_ctx(ctx)), hal_dev_scope(d))) {
		*rc = LINLI_EPERM;
		return NULL;
	}
	*rc = 0;
	return d;
}

int hal_api_dev_auth(linli_ctx *ctx, const char *device, const char *secret)
{
	int rc;
	struct hal_dev *d = own_dev(ctx, device, &rc);
	if (!d)
		return rc;
	return hal_dev_auth(d, secret) ? 0 : LINLI_EAUTH;
}

/* ---- what applications ask of devices, for any actor ---- */

/* How the audit log line names the actor: "plugin 'x'", "rule 'y'". */
static void actor_words(const struct hal_actor *a, char *buf, size_t len)
{
	snprintf(buf, len, "%s '%s'", a->who->kind == PRINCIPAL_RULE ? "rule" : "plugin",
		 a->who->name);
}

/* The device `id` for call `what`, or NULL with the code in *rc and the reason in err. */
static struct hal_dev *find_dev(const struct hal_actor *a, const char *what, const char *id,
				int *rc, char *err, size_t errlen)
{
	struct hal *h = a->k->hal;
	struct hal_dev *d = h && id ? hal_find(h, id) : NULL;
	if (!d)
		*rc = errf(err, errlen, LINLI_ENOENT, "%s: no device '%.64s'%s", what,
			    id ? id : "", h ? "" : " (this linlid has no device layer)");
	return d;
}

/*
 * May the actor do `act` on device d? A C plugin's own driver's devices may
 * be read; otherwise access_check (jurisdiction and device.read:CLASS /
 * device.command:CLASS; the denial audited and logged), and one more line
 * naming the device.
 */
static int may(const struct hal_actor *a, struct hal_dev *d, enum tier_action act, const char *what,
	       char *err, size_t errlen)
{
	struct hal_driver *drv = hal_dev_driver_of(d);
	if (act == ACT_DEVICE_READ && a->driver_ctx && drv && hal_driver_ctx(drv) == a->driver_ctx &&
	    scope_within(plug_scope(plug_from_ctx(a->driver_ctx)), hal_dev_scope(d)))
		return 0;
	char why[320], by[128];
	int rc = access_check(a->k, a->who, act, hal_dev_scope(d), hal_dev_class(d)->name, why,
			      sizeof why);
	if (!rc)
		return 0;
	actor_words(a, by, sizeof by);
	log_info(act == ACT_DEVICE_COMMAND ? "audit" : "access", "%s of device %s by %s denied: %s",
		 tier_action_name(act), hal_dev_id(d), by, why);
	return errf(err, errlen, rc, "%s %s: %s", what, hal_dev_id(d), why);
}

int hal_api_dev_info_as(const struct hal_actor *a, const char *device, msgpack_packer *pk,
			char *err, size_t errlen)
{
	int rc;
	struct hal_dev *d = find_dev(a, "dev_info", device, &rc, err, errlen);
	if (!d || (rc = may(a, d, ACT_DEVICE_READ, "dev_info", err, errlen)) != 0)
		return rc;
	hal_pack_dev(a->k->hal, d, pk, true);
	return 0;
}

int hal_api_dev_get_as(const struct hal_actor *a, const char *device, const char *resource,
		       msgpack_packer *pk, char *err, size_t errlen)
{
	int rc;
	struct hal_dev *d = find_dev(a, "dev_get", device, &rc, err, errlen);
	if (!d || (rc = may(a, d, ACT_DEVICE_READ, "dev_get", err, errlen)) != 0)
		return rc;
	if (!resource) {
		hal_pack_latest_map(d, pk);
		return 0;
	}
	const struct cat_device_class *c = hal_dev_class(d);
	const struct cat_field *f = NULL;
	for (int i = 0; i < c->n_resources && !f; i++)
		if (strcmp(c->resources[i].name, resource) == 0)
			f = &c->resources[i];
	if (!f || !(f->access & CAT_READ)) {
		char list[512] = "";
		size_t o = 0;
		for (int i = 0; i < c->n_resources && o + 1 < sizeof list; i++)
			if (c->resources[i].access & CAT_READ)
				o += (size_t)snprintf(list + o, sizeof list - o, "%s%s",
						      o ? ", " : "", c->resources[i].name);
		return errf(err, errlen, LINLI_ENOENT,
			     "dev_get %s: class %s has no %s resource '%.64s' (it has: %s)",
			     hal_dev_id(d), c->name, f ? "readable" : "such", resource,
			     o ? list : "none");
	}
	if (hal_pack_latest(d, resource, pk) != 0)
		return errf(err, errlen, LINLI_ENOENT,
			     "dev_get %s: no value of '%s' yet (the device has not reported it)",
			     hal_dev_id(d), resource);
	return 0;
}

int hal_api_dev_command_as(const struct hal_actor *a, const char *device, const char *command,
			   const linli_record *args, uint32_t timeout_ms, hal_cmd_fn done,
			   void *arg, uint64_t *req, char *err, size_t errlen)
{
	int rc;
	if (!command || !*command || !done)
		return errf(err, errlen, LINLI_EINVAL, "dev_command %s: no %s given",
			     device ? device : "", !done ? "callback" : "command");
	struct hal_dev *d = find_dev(a, "dev_command", device, &rc, err, errlen);
	if (!d || (rc = may(a, d, ACT_DEVICE_COMMAND, "dev_command", err, errlen)) != 0)
		return rc;
	char by[128], why[512];
	actor_words(a, by, sizeof by);
	struct hal_cmd_req r = {.device = device,
				.command = command,
				.args = args,
				.timeout_ms = timeout_ms,
				.who = by,
				.principal = a->who,
				.done = done,
				.arg = arg};
	rc = hal_command(a->k->hal, &r, req, why, sizeof why);
	if (rc) {
		log_warn(a->log_name, "dev_command %s %s: %s", device, command, why);
		return errf(err, errlen, rc, "dev_command %s %s: %s", device, command, why);
	}
	return 0;
}

/* ---- the members of the C table: the calling plugin as the actor ---- */

struct plugin_actor {
	struct hal_actor a;
	struct tier_principal who;
	const char *grants[LINLI_MAX_CAPS + 1];
};

static const struct hal_actor *plugin_actor(linli_ctx *ctx, struct plugin_actor *pa)
{
	struct plugin *p = plug_from_ctx(ctx);
	plug_principal(p, &pa->who, pa->grants); /* the principal plug_authorize checks */
	pa->a = (struct hal_actor){plug_kernel(p), &pa->who, plug_name(p), ctx};
	return &pa->a;
}

static int to_record(msgpack_sbuffer *sb, linli_record **out)
{
	char err[256];
	int rc = record_from_bytes(sb->data, sb->size, out, err, sizeof err);
	msgpack_sbuffer_destroy(sb);
	return rc;
}

/* Pack into a fresh buffer for a C member; *sb is the caller's to give to to_record. */
static msgpack_packer *packer(msgpack_sbuffer *sb, msgpack_packer *pk)
{
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
	return pk;
}

int hal_api_plugin_config(linli_ctx *ctx, linli_record **out)
{
	if (!out)
		return LINLI_EINVAL;
	struct plugin_actor pa;
	const struct hal_actor *a = plugin_actor(ctx, &pa);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char err[256];
	int rc = hal_api_plugin_config_as(a, packer(&sb, &pk), err, sizeof err);
	if (rc) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	if ((rc = to_record(&sb, out)) != 0)
		log_error(a->log_name, "plugins.%s: cannot be read (%s)", a->who->name,
			  linli_strerror(rc));
	return rc;
}

int hal_api_device_classes(linli_ctx *ctx, linli_record **out)
{
	if (!out)
		return LINLI_EINVAL;
	struct plugin_actor pa;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	hal_api_device_classes_as(plugin_actor(ctx, &pa), packer(&sb, &pk));
	return to_record(&sb, out);
}

int hal_api_dev_info(linli_ctx *ctx, const char *device, linli_record **out)
{
	if (!out)
		return LINLI_EINVAL;
	struct plugin_actor pa;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	char err[512];
	int rc = hal_api_dev_info_as(plugin_actor(ctx, &pa), device, &pk, err, sizeof err);
	if (rc) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	return to_record(&sb, out);
}

int hal_api_dev_get(linli_ctx *ctx, const char *device, const char *resource, linli_record **out)
{
	if (!out)
		return LINLI_EINVAL;
	struct plugin_actor pa;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	char err[512];
	int rc = hal_api_dev_get_as(plugin_actor(ctx, &pa), device, resource, &pk, err, sizeof err);
	if (rc) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	return to_record(&sb, out);
}

/* ---- commands sent by a plugin ---- */

struct pcmd {
	struct plugin *p;
	struct plug_res *res;
	struct hal *h;
	uint64_t req;
	linli_dev_done_fn fn;
	void *ud;
};

static void pcmd_release(void *arg)
{
	struct pcmd *c = arg;
	hal_command_cancel(c->h, c->req);
	free(c);
}

static void pcmd_describe(void *arg, char *buf, size_t len)
{
	struct pcmd *c = arg;
	snprintf(buf, len, "device command #%llu", (unsigned long long)c->req);
}

static const struct plug_res_ops pcmd_ops = {
    .kind = "device command",
    .release = pcmd_release,
    .describe = pcmd_describe,
};

static void pcmd_done(void *arg, int rc, const void *result, size_t len, const char *err)
{
	struct pcmd *c = arg;
	linli_record *r = NULL;
	char e[256];
	if (!rc && len && record_from_bytes(result, len, &r, e, sizeof e) != 0)
		r = NULL;
	if (!r)
		r = record_new();
	plug_untrack(c->p, c->res);
	struct wd_frame wd;
	wd_enter(&wd, plug_name(c->p), "device reply", NULL, c->req);
	c->fn(plug_ctx(c->p), c->req, rc, r, err, c->ud);
	wd_leave(&wd);
	record_free(r);
	free(c);
}

int hal_api_dev_command(linli_ctx *ctx, const char *device, const char *command,
			const linli_record *args, uint32_t timeout_ms, linli_dev_done_fn fn,
			void *ud, uint64_t *req)
{
	if (!device || !command || !fn)
		return LINLI_EINVAL;
	struct plugin_actor pa;
	const struct hal_actor *a = plugin_actor(ctx, &pa);
	struct plugin *p = plug_from_ctx(ctx);
	struct pcmd *c = calloc(1, sizeof *c);
	if (!c)
		return LINLI_ENOMEM;
	c->p = p;
	c->h = a->k->hal;
	c->fn = fn;
	c->ud = ud;
	if (!(c->res = plug_track(p, &pcmd_ops, c))) {
		free(c);
		return LINLI_ENOMEM;
	}
	char err[768];
	int rc = hal_api_dev_command_as(a, device, command, args, timeout_ms, pcmd_done, c, &c->req,
					err, sizeof err);
	if (rc) {
		plug_untrack(p, c->res);
		free(c);
		return rc;
	}
	if (req)
		*req = c->req;
	return 0;
}
