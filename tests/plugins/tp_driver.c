/*
 * A test device driver, "tdrv" (capability hal.driver:tdrv). What a device
 * does depends on its address:
 *
 *   ok        opens; answers commands at once with {"echo": <command>, args...}
 *   fail      never opens ("simulated open failure")
 *   failN     fails its first N opens, then opens (N a digit)
 *   slow      opens; never answers a command (for timeouts)
 *   err       opens; answers every command with LINLI_EIO "jammed"
 *
 * Its read op answers a poll with the resource's "poll value": an integer
 * counter for integer resources, 1.5 for floats, true, or the class's first
 * enum value / "polled" for strings, so polls show up as readings.
 *
 * Console commands let a test play the devices:
 *   tdrv post ID RESOURCE TYPE VALUE   dev_post one reading on the kernel
 *                                      thread (TYPE int|float|bool|str|nan)
 *   tdrv thread ID RESOURCE N          a thread posts N integer readings 0..N-1
 *   tdrv event ID NAME [K=V ...]       dev_event with {"n": 1, K: "V", ...}
 *   tdrv auth ID SECRET                dev_auth
 *   tdrv found ID CLASS ADDRESS        dev_found outside discover
 *   tdrv opens                         how many opens / closes so far
 *   tdrv waitev ID NAME [K=V ...]      a thread calls dev_event_wait (10 s)
 *   tdrv waited                        its rc and how many have returned
 *   tdrv waitk ID NAME                 dev_event_wait on the kernel thread
 * After a waitev, fini runs one more from a thread and logs its code.
 * Each answers {"rc": code}.
 *
 * Built twice more: -DBADSIZE ("badops", a wrong ops-table size) and
 * -DNOCAP ("nocap", registers a driver without holding hal.driver).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linli/linli.h>

#if defined(BADSIZE)
#define PNAME "badops"
#define CAPS  "hal.driver:badops"
#elif defined(NOCAP)
#define PNAME "nocap"
#define CAPS  "device.read:door"
#else
#define PNAME "tdrv"
#define CAPS  "hal.driver:tdrv"
#endif

static const struct linli_api *api;
static int opens, closes, polls;
static pthread_t th;
static bool have_th;

struct tdev {
	char mode[16];
};

static int fails_left(const char *addr)
{
	static struct {
		char addr[64];
		int left;
	} seen[32];
	static int n;
	for (int i = 0; i < n; i++)
		if (strcmp(seen[i].addr, addr) == 0)
			return seen[i].left > 0 ? seen[i].left-- : 0;
	if (n == 32)
		return 0;
	snprintf(seen[n].addr, sizeof seen[n].addr, "%s", addr);
	seen[n].left = addr[4] - '0' - 1;
	n++;
	return 1;
}

static int t_open(linli_ctx *ctx, struct linli_device *dev, char *err, size_t errlen)
{
	(void)ctx;
	if (strcmp(dev->address, "fail") == 0 ||
	    (strncmp(dev->address, "fail", 4) == 0 && dev->address[4] >= '1' &&
	     dev->address[4] <= '9' && fails_left(dev->address))) {
		snprintf(err, errlen, "simulated open failure of %s", dev->address);
		return LINLI_EIO;
	}
	struct tdev *t = calloc(1, sizeof *t);
	if (!t)
		return LINLI_ENOMEM;
	snprintf(t->mode, sizeof t->mode, "%s", dev->address);
	dev->driver_data = t;
	opens++;
	return 0;
}

static void t_close(linli_ctx *ctx, struct linli_device *dev)
{
	(void)ctx;
	free(dev->driver_data);
	dev->driver_data = NULL;
	closes++;
}

static int t_read(linli_ctx *ctx, struct linli_device *dev, const char *resource)
{
	linli_record *classes = NULL;
	struct linli_reading r = {.size = sizeof r, .device = dev->id, .resource = resource};
	api->device_classes(ctx, &classes);
	for (size_t i = 0; i < api->rec_count(classes); i++) {
		linli_record *c, *res, *e;
		const char *s;
		api->arr_get_map(classes, i, &c);
		api->rec_get_str(c, "name", &s, NULL);
		if (strcmp(s, dev->class_name) != 0)
			continue;
		api->rec_get_array(c, "resources", &res);
		for (size_t j = 0; j < api->rec_count(res); j++) {
			api->arr_get_map(res, j, &e);
			api->rec_get_str(e, "name", &s, NULL);
			if (strcmp(s, resource) != 0)
				continue;
			api->rec_get_str(e, "type", &s, NULL);
			if (strcmp(s, "integer") == 0) {
				r.type = LINLI_T_INT;
				r.i = ++polls % 50;
			} else if (strcmp(s, "float") == 0) {
				r.type = LINLI_T_FLOAT;
				r.f = 1.5;
			} else if (strcmp(s, "boolean") == 0) {
				r.type = LINLI_T_BOOL;
				r.b = true;
			} else {
				linli_record *vals;
				r.type = LINLI_T_STR;
				r.s = "polled";
				if (api->rec_get_array(e, "values", &vals) == 0)
					api->arr_get_str(vals, 0, &r.s, NULL);
			}
		}
	}
	int rc = r.type ? api->dev_post(ctx, &r, 1) : LINLI_ENOENT;
	api->rec_free(classes);
	return rc;
}

static int t_command(linli_ctx *ctx, struct linli_device *dev, uint64_t req, const char *command,
		     const linli_record *args)
{
	struct tdev *t = dev->driver_data;
	if (strcmp(t->mode, "slow") == 0)
		return 0; /* never answers */
	if (strcmp(t->mode, "err") == 0)
		return api->dev_command_done(ctx, req, LINLI_EIO, NULL, "jammed");
	linli_record *out = api->rec_new();
	api->rec_set_str(out, "echo", command);
	api->rec_set_record(out, "args", args);
	int rc = api->dev_command_done(ctx, req, 0, out, NULL);
	api->rec_free(out);
	return rc;
}

static int t_write(linli_ctx *ctx, struct linli_device *dev, uint64_t req,
		   const linli_record *values)
{
	(void)dev;
	linli_record *out = api->rec_new();
	api->rec_set_record(out, "wrote", values);
	int rc = api->dev_command_done(ctx, req, 0, out, NULL);
	api->rec_free(out);
	return rc;
}

static const struct linli_driver_ops ops = {
#ifdef BADSIZE
    .size = sizeof(struct linli_driver_ops) + 8,
#else
    .size = sizeof(struct linli_driver_ops),
#endif
    .open = t_open,
    .close = t_close,
    .read = t_read,
    .write = t_write,
    .command = t_command,
};

static int reply_rc(linli_record **reply, int rc)
{
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "rc", rc);
	api->rec_set_str(r, "name", linli_errname(rc));
	*reply = r;
	return 0;
}

static int c_post(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		  size_t errlen)
{
	if (req->argc != 4) {
		snprintf(err, errlen, "usage: tdrv post ID RESOURCE TYPE VALUE");
		return LINLI_EINVAL;
	}
	const char *ty = req->argv[2], *v = req->argv[3];
	struct linli_reading r = {
	    .size = sizeof r, .device = req->argv[0], .resource = req->argv[1]};
	if (strcmp(ty, "int") == 0) {
		r.type = LINLI_T_INT;
		r.i = strtoll(v, NULL, 10);
	} else if (strcmp(ty, "float") == 0) {
		r.type = LINLI_T_FLOAT;
		r.f = strtod(v, NULL);
	} else if (strcmp(ty, "nan") == 0) {
		r.type = LINLI_T_FLOAT;
		r.f = __builtin_nan("");
	} else if (strcmp(ty, "bool") == 0) {
		r.type = LINLI_T_BOOL;
		r.b = strcmp(v, "true") == 0;
	} else {
		r.type = LINLI_T_STR;
		r.s = v;
	}
	return reply_rc(reply, api->dev_post(ctx, &r, 1));
}

struct job {
	linli_ctx *ctx;
	char id[64], res[64];
	long n;
};

static void *poster(void *arg)
{
	struct job *j = arg;
	for (long i = 0; i < j->n; i++) {
		struct linli_reading r = {.size = sizeof r,
					  .type = LINLI_T_INT,
					  .device = j->id,
					  .resource = j->res,
					  .i = i};
		while (api->dev_post(j->ctx, &r, 1) == LINLI_EBUSY)
			; /* the kernel is behind: offer it again */
	}
	free(j);
	return NULL;
}

static int c_thread(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc != 3) {
		snprintf(err, errlen, "usage: tdrv thread ID RESOURCE N");
		return LINLI_EINVAL;
	}
	if (have_th)
		pthread_join(th, NULL);
	struct job *j = calloc(1, sizeof *j);
	j->ctx = ctx;
	snprintf(j->id, sizeof j->id, "%s", req->argv[0]);
	snprintf(j->res, sizeof j->res, "%s", req->argv[1]);
	j->n = strtol(req->argv[2], NULL, 10);
	have_th = pthread_create(&th, NULL, poster, j) == 0;
	return reply_rc(reply, have_th ? 0 : LINLI_ENOMEM);
}

static int c_event(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	if (req->argc < 2) {
		snprintf(err, errlen, "usage: tdrv event ID NAME [KEY=STRING ...]");
		return LINLI_EINVAL;
	}
	linli_record *d = api->rec_new();
	api->rec_set_int(d, "n", 1);
	for (int i = 2; i < req->argc; i++) {
		char key[64];
		const char *eq = strchr(req->argv[i], '=');
		if (!eq || (size_t)(eq - req->argv[i]) >= sizeof key)
			continue;
		snprintf(key, sizeof key, "%.*s", (int)(eq - req->argv[i]), req->argv[i]);
		api->rec_set_str(d, key, eq + 1);
	}
	int rc = api->dev_event(ctx, req->argv[0], req->argv[1], d, 0);
	api->rec_free(d);
	return reply_rc(reply, rc);
}

static int c_auth(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		  size_t errlen)
{
	if (req->argc != 2) {
		snprintf(err, errlen, "usage: tdrv auth ID SECRET");
		return LINLI_EINVAL;
	}
	return reply_rc(reply, api->dev_auth(ctx, req->argv[0], req->argv[1]));
}

static int c_found(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	if (req->argc != 3) {
		snprintf(err, errlen, "usage: tdrv found ID CLASS ADDRESS");
		return LINLI_EINVAL;
	}
	struct linli_device_info i = {.size = sizeof i,
				      .id = req->argv[0],
				      .class_name = req->argv[1],
				      .address = req->argv[2]};
	return reply_rc(reply, api->dev_found(ctx, &i));
}

static int c_opens(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	(void)ctx;
	(void)req;
	(void)err;
	(void)errlen;
	linli_record *r = api->rec_new();
	api->rec_set_int(r, "opens", opens);
	api->rec_set_int(r, "closes", closes);
	*reply = r;
	return 0;
}

/* ---- dev_event_wait (SDK 1.1) from a thread of the driver ---- */

static pthread_t wth;
static bool have_wth;
static _Atomic int wait_rc, waits_done;
static char wait_dev[64], wait_ev[64];
static linli_record *wait_data;

static void *waiter(void *arg)
{
	linli_ctx *ctx = arg;
	atomic_store(&wait_rc, api->dev_event_wait(ctx, wait_dev, wait_ev, wait_data, 0, 10000));
	atomic_fetch_add(&waits_done, 1);
	return NULL;
}

static void join_waiter(void)
{
	if (have_wth)
		pthread_join(wth, NULL);
	have_wth = false;
	api->rec_free(wait_data);
	wait_data = NULL;
}

/* tdrv waitev ID NAME [K=V ...]: a thread calls dev_event_wait; `tdrv waited` tells. */
static int c_waitev(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	if (req->argc < 2) {
		snprintf(err, errlen, "usage: tdrv waitev ID NAME [KEY=STRING ...]");
		return LINLI_EINVAL;
	}
	join_waiter();
	snprintf(wait_dev, sizeof wait_dev, "%s", req->argv[0]);
	snprintf(wait_ev, sizeof wait_ev, "%s", req->argv[1]);
	wait_data = api->rec_new();
	for (int i = 2; i < req->argc; i++) {
		char key[64];
		const char *eq = strchr(req->argv[i], '=');
		if (!eq || (size_t)(eq - req->argv[i]) >= sizeof key)
			continue;
		snprintf(key, sizeof key, "%.*s", (int)(eq - req->argv[i]), req->argv[i]);
		api->rec_set_str(wait_data, key, eq + 1);
	}
	have_wth = pthread_create(&wth, NULL, waiter, ctx) == 0;
	return reply_rc(reply, have_wth ? 0 : LINLI_ENOMEM);
}

static int c_waited(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	(void)ctx;
	(void)req;
	(void)err;
	(void)errlen;
	reply_rc(reply, atomic_load(&wait_rc));
	api->rec_set_int(*reply, "done", atomic_load(&waits_done));
	return 0;
}

/* tdrv waitk ID NAME: dev_event_wait on the kernel thread (refused). */
static int c_waitk(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply, char *err,
		   size_t errlen)
{
	if (req->argc != 2) {
		snprintf(err, errlen, "usage: tdrv waitk ID NAME");
		return LINLI_EINVAL;
	}
	return reply_rc(reply, api->dev_event_wait(ctx, req->argv[0], req->argv[1], NULL, 0, 1000));
}

static int t_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	int rc = api->cmd_register(ctx, "post", NULL, NULL, c_post, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "thread", NULL, NULL, c_thread, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "event", NULL, NULL, c_event, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "auth", NULL, NULL, c_auth, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "found", NULL, NULL, c_found, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "opens", NULL, NULL, c_opens, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "waitev", NULL, NULL, c_waitev, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "waited", NULL, NULL, c_waited, NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "waitk", NULL, NULL, c_waitk, NULL);
	if (!rc)
		rc = api->driver_register(ctx, PNAME, &ops);
	return rc;
}

static void t_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)ctx;
	(void)a;
	if (have_th)
		pthread_join(th, NULL);
	have_th = false;
	/* After a waitev, one more from a thread while stopping: refused, never blocking fini. */
	if (have_wth) {
		join_waiter();
		wait_data = api->rec_new();
		if (pthread_create(&wth, NULL, waiter, ctx) == 0) {
			pthread_join(wth, NULL);
			api->log(ctx, LINLI_LOG_INFO, "fini: dev_event_wait from a thread -> %s",
				 linli_errname(atomic_load(&wait_rc)));
		}
		api->rec_free(wait_data);
		wait_data = NULL;
	}
}

LINLI_PLUGIN(t_init, t_fini, .name = PNAME, .version = "1.0.0", .family = "driver",
	     .description = "test device driver", .capabilities = {CAPS});
