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
 */
#include "hal_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hal.h"
#include "kernel.h"
#include "log.h"
#include "mp.h"
#include "plugin.h"
#include "record.h"

static struct hal *hal_of(linli_ctx *ctx)
{
	return plug_kernel(plug_from_ctx(ctx))->hal;
}

/* ---- plugin_config and device_classes ---- */

int hal_api_plugin_config(linli_ctx *ctx, linli_record **out)
{
	if (!out)
		return LINLI_EINVAL;
	struct plugin *p = plug_from_ctx(ctx);
	const struct cfg *c = &plug_kernel(p)->cfg;
	for (int i = 0; i < c->n_plugin_conf; i++)
		if (strcmp(c->plugin_conf[i].name, plug_name(p)) == 0) {
			char err[256];
			int rc = record_from_bytes(c->plugin_conf[i].mp, c->plugin_conf[i].len, out,
						   err, sizeof err);
			if (rc)
				log_error(plug_name(p), "plugins.%s: %s", plug_name(p), err);
			return rc;
		}
	*out = record_new();
	return *out ? 0 : LINLI_ENOMEM;
}

static void pack_field(msgpack_packer *pk, const struct cat_field *f, bool resource)
{
	int n = 2 + resource + (f->unit != NULL) + f->has_min + f->has_max + (f->type == CAT_ENUM);
	msgpack_pack_map(pk, (size_t)n);
	mp_kv_str(pk, "name", f->name);
	mp_kv_str(pk, "type", cat_type_name(f->type));
	if (resource)
		mp_kv_str(pk, "access",
			  f->access == (CAT_READ | CAT_WRITE) ? "rw"
			  : f->access == CAT_WRITE	      ? "w"
							      : "r");
	if (f->unit)
		mp_kv_str(pk, "unit", f->unit);
	if (f->has_min) {
		if (f->type == CAT_FLOAT)
			mp_kv_double(pk, "min", f->fmin);
		else
			mp_kv_int(pk, "min", f->imin);
	}
	if (f->has_max) {
		if (f->type == CAT_FLOAT)
			mp_kv_double(pk, "max", f->fmax);
		else
			mp_kv_int(pk, "max", f->imax);
	}
	if (f->type == CAT_ENUM) {
		mp_str(pk, "values");
		msgpack_pack_array(pk, (size_t)f->n_values);
		for (int i = 0; i < f->n_values; i++)
			mp_str(pk, f->values[i]);
	}
}

int hal_api_device_classes(linli_ctx *ctx, linli_record **out)
{
	if (!out)
		return LINLI_EINVAL;
	const struct catalog *cat = plug_kernel(plug_from_ctx(ctx))->catalog;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	int nc = cat ? cat->n_classes : 0;
	msgpack_pack_array(&pk, (size_t)nc);
	for (int i = 0; i < nc; i++) {
		const struct cat_device_class *c = &cat->classes[i];
		msgpack_pack_map(&pk, 7);
		mp_kv_str(&pk, "name", c->name);
		mp_kv_str(&pk, "title_en", c->title_en);
		mp_kv_str(&pk, "title_zh", c->title_zh);
		mp_kv_int(&pk, "heartbeat", c->heartbeat);
		mp_str(&pk, "resources");
		msgpack_pack_array(&pk, (size_t)c->n_resources);
		for (int j = 0; j < c->n_resources; j++)
			pack_field(&pk, &c->resources[j], true);
		mp_str(&pk, "commands");
		msgpack_pack_array(&pk, (size_t)c->n_commands);
		for (int j = 0; j < c->n_commands; j++) {
			msgpack_pack_map(&pk, 2);
			mp_kv_str(&pk, "name", c->commands[j].name);
			mp_str(&pk, "args");
			msgpack_pack_array(&pk, (size_t)c->commands[j].n_args);
			for (int a = 0; a < c->commands[j].n_args; a++)
				pack_field(&pk, &c->commands[j].args[a], false);
		}
		mp_str(&pk, "events");
		msgpack_pack_array(&pk, (size_t)c->n_events);
		for (int j = 0; j < c->n_events; j++) {
			msgpack_pack_map(&pk, 2);
			mp_kv_str(&pk, "name", c->events[j].name);
			mp_kv_str(&pk, "severity", cat_severity_name(c->events[j].severity));
		}
	}
	char err[256];
	int rc = record_from_bytes(sb.data, sb.size, out, err, sizeof err);
	msgpack_sbuffer_destroy(&sb);
	return rc;
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
	if (r->d)
		hal_driver_remove(plug_kernel(r->p)->hal, r->d);
	free(r);
}

static void pdrv_quiesce(void *arg)
{
	struct pdrv *r = arg;
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
	if (!drv || hal_driver_ctx(drv) != ctx) {
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

/* May plugin ctx read device d? Its own driver's devices, or device.read:<class>. */
static int may(linli_ctx *ctx, struct hal_dev *d, enum tier_action act)
{
	struct plugin *p = plug_from_ctx(ctx);
	struct hal_driver *drv = hal_dev_driver_of(d);
	if (act == ACT_DEVICE_READ && drv && hal_driver_ctx(drv) == ctx)
		return 0;
	char err[320];
	int rc = plug_authorize(p, act, hal_dev_scope(d), hal_dev_class(d)->name, err, sizeof err);
	if (rc)
		log_info(act == ACT_DEVICE_COMMAND ? "audit" : "access",
			 "%s of device %s by plugin '%s' denied: %s", tier_action_name(act),
			 hal_dev_id(d), plug_name(p), err);
	return rc;
}

static int to_record(msgpack_sbuffer *sb, linli_record **out)
{
	char err[256];
	int rc = record_from_bytes(sb->data, sb->size, out, err, sizeof err);
	msgpack_sbuffer_destroy(sb);
	return rc;
}

int hal_api_dev_info(linli_ctx *ctx, const char *device, linli_record **out)
{
	struct hal *h = hal_of(ctx);
	struct hal_dev *d = h && device ? hal_find(h, device) : NULL;
	if (!out)
		return LINLI_EINVAL;
	if (!d)
		return LINLI_ENOENT;
	int rc = may(ctx, d, ACT_DEVICE_READ);
	if (rc)
		return rc;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	hal_pack_dev(h, d, &pk, true);
	return to_record(&sb, out);
}

int hal_api_dev_get(linli_ctx *ctx, const char *device, const char *resource, linli_record **out)
{
	struct hal *h = hal_of(ctx);
	struct hal_dev *d = h && device ? hal_find(h, device) : NULL;
	if (!out)
		return LINLI_EINVAL;
	if (!d)
		return LINLI_ENOENT;
	int rc = may(ctx, d, ACT_DEVICE_READ);
	if (rc)
		return rc;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (resource) {
		if ((rc = hal_pack_latest(d, resource, &pk)) != 0) {
			msgpack_sbuffer_destroy(&sb);
			return rc;
		}
	} else
		hal_pack_latest_map(d, &pk);
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
	c->fn(plug_ctx(c->p), c->req, rc, r, err, c->ud);
	record_free(r);
	free(c);
}

int hal_api_dev_command(linli_ctx *ctx, const char *device, const char *command,
			const linli_record *args, uint32_t timeout_ms, linli_dev_done_fn fn,
			void *ud, uint64_t *req)
{
	struct plugin *p = plug_from_ctx(ctx);
	struct hal *h = hal_of(ctx);
	if (!device || !command || !fn)
		return LINLI_EINVAL;
	struct hal_dev *d = h ? hal_find(h, device) : NULL;
	if (!d)
		return LINLI_ENOENT;
	int rc = may(ctx, d, ACT_DEVICE_COMMAND);
	if (rc)
		return rc;
	struct pcmd *c = calloc(1, sizeof *c);
	if (!c)
		return LINLI_ENOMEM;
	c->p = p;
	c->h = h;
	c->fn = fn;
	c->ud = ud;
	char who[96], err[512];
	snprintf(who, sizeof who, "plugin '%s'", plug_name(p));
	struct tier_principal pr = {PRINCIPAL_PLUGIN, plug_name(p), plug_kernel(p)->cfg.node_path,
				    ROLE_NONE, NULL};
	struct hal_cmd_req r = {.device = device,
				.command = command,
				.args = args,
				.timeout_ms = timeout_ms,
				.who = who,
				.principal = &pr,
				.done = pcmd_done,
				.arg = c};
	if (!(c->res = plug_track(p, &pcmd_ops, c))) {
		free(c);
		return LINLI_ENOMEM;
	}
	rc = hal_command(h, &r, &c->req, err, sizeof err);
	if (rc) {
		log_warn(plug_name(p), "dev_command %s %s: %s", device, command, err);
		plug_untrack(p, c->res);
		free(c);
		return rc;
	}
	if (req)
		*req = c->req;
	return 0;
}
