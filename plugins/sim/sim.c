/*
 * sim — the simulated device driver: a seeded, reproducible fleet of every
 * device class in the catalog, for demos, tests and load.
 *
 * Configuration: the `plugins = { sim = { ... }; };` group of linli.cfg
 * (read with api->plugin_config; unknown keys refuse the plugin's start):
 *
 *   per_class = 3;      devices discovered per class (0..10000)
 *   classes   = [ ];    class names to simulate (empty or absent: every class)
 *   seed      = 1;      the fleet's seed: the same seed and fleet give the same
 *                       sequence of readings and events
 *   tick_ms   = 1000;   how often the fleet reports (10..3600000)
 *   rate      = 0;      readings per second across the fleet; 0 = one full
 *                       round (every device reports every readable resource)
 *                       per tick. Up to 5,000,000.
 *   auto      = true;   report on the clock; false: only `linli sim step N`
 *   thread    = true;   report from a thread of its own (api->dev_post from
 *                       another thread); false: from a kernel timer
 *   events    = true;   raise events (alarms, falls, card reads, ...)
 *   discover  = true;   register the fleet when the driver starts
 *   scope     = "...";  where discovered devices live (default: the node); or a
 *                       list of up to 16 paths (a street's communities): per_class
 *                       devices of each class in each, numbered on (with two
 *                       scopes and per_class 3, 001-003 in the first, 004-006 in
 *                       the second)
 *
 * Devices are "sim-<class>-<NNN>" at address "sim:<class>:<N>"; any device
 * registered with driver sim and such an address is simulated, discovered
 * or not. Each device has its own random generator, seeded from the seed and
 * its id, and one "round" advances every device's model by one simulated
 * minute; the simulation's clock (used for times inside values, such as a
 * parking spot's occupied_since) starts at 2026-01-01T00:00:00Z, so a run
 * never depends on the wall clock.
 *
 * Concurrency: the fleet is guarded by one mutex; a round is generated into an
 * outbox under the mutex and posted after it is released, so that nothing the
 * kernel does with a reading (a rule sending a command back to a sim device)
 * can wait on the simulator.
 *
 * Console: `linli sim step [N]` runs N rounds now (kernel thread);
 * `linli sim status` shows the configuration and counters.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linli/linli.h>

#define MAXR	    24		 /* resources per class the simulator models */
#define STR_MAX	    64		 /* a string value */
#define POST_BATCH  512		 /* readings per dev_post */
#define SIM_EPOCH_S 1767225600LL /* 2026-01-01T00:00:00Z */
#define ROUND_S	    60		 /* one round is one simulated minute */

static const struct linli_api *api;

/* ---- the class view, from api->device_classes ---- */

enum kind {
	K_GENERIC,
	K_CAMERA,
	K_CHARGER,
	K_DOOR,
	K_EFENCE,
	K_ELECTRIC,
	K_GAS,
	K_WATER,
	K_HYDRANT,
	K_KIOSK,
	K_LOCKER,
	K_MANHOLE,
	K_PARKING,
	K_GATE,
	K_SCREEN,
	K_SMOKE,
	K_PIR,
	K_TRASH,
	K_WEARABLE
};

static const struct {
	const char *name;
	enum kind k;
} kinds[] = {{"camera", K_CAMERA},   {"charger", K_CHARGER},	     {"door", K_DOOR},
	     {"efence", K_EFENCE},   {"electric_meter", K_ELECTRIC}, {"gate", K_GATE},
	     {"gas_meter", K_GAS},   {"water_meter", K_WATER},	     {"hydrant", K_HYDRANT},
	     {"kiosk", K_KIOSK},     {"locker", K_LOCKER},	     {"manhole", K_MANHOLE},
	     {"parking", K_PARKING}, {"screen", K_SCREEN},	     {"smoke", K_SMOKE},
	     {"trash_bin", K_TRASH}, {"wearable", K_WEARABLE},	     {"pir", K_PIR}};

struct sres {
	char name[64];
	int type; /* LINLI_T_INT, FLOAT, BOOL, STR */
	bool is_enum, readable;
	bool has_min, has_max;
	double min, max;
	char values[16][32];
	int n_values;
};

struct sclass {
	char name[64];
	char title[64];
	enum kind kind;
	struct sres res[MAXR];
	int n_res;
	char events[32][64];
	int n_events;
};

/* ---- devices ---- */

struct val {
	int64_t i;
	double f;
	bool b;
	char s[STR_MAX];
};

/* A charger's connector (枪): its own state, session energy and register. */
struct sconn {
	int st;	  /* a C_* state (below) */
	int told; /* the state last told (status_notification), -1 none yet */
	double kwh, meter;
};

struct sdev {
	char id[49];
	const struct sclass *c;
	int n; /* its number, from the address */
	uint64_t rng;
	struct val v[MAXR];
	int64_t t0, t1; /* model timers (rounds), meaning per class */
	int mode;	/* model state, meaning per class */
	bool flag;
	struct sconn *con; /* a charger's connectors (n_con of them), else NULL */
	int n_con;
};

/* ---- the outbox: what a round produced, posted outside the mutex ---- */

struct obx {
	int kind; /* 0 reading, 1 event */
	char dev[49];
	const char *name; /* resource or event: the class's string */
	int type;
	int64_t i;
	double f;
	bool b;
	char s[STR_MAX];
	linli_record *data; /* event details */
};

struct outbox {
	struct obx *v;
	size_t n, cap;
};

struct sim {
	linli_ctx *ctx;
	/* configuration */
	int64_t per_class, tick_ms, rate;
	uint64_t seed;
	bool autorun, use_thread, events, discover;
	char scope[16][256];
	int n_scopes; /* 0: the node */
	char **only; /* classes = [...] */
	int n_only;
	/* the fleet, sorted by id */
	struct sclass *classes;
	int n_classes;
	struct sdev **fleet;
	int n_fleet, cap_fleet;
	pthread_mutex_t mu;
	int cur_dev, cur_res;
	int64_t round; /* completed rounds */
	double budget; /* readings owed (rate mode) */
	/* running */
	uint64_t timer;
	pthread_t th;
	bool have_thread;
	atomic_bool stop;
	/* counters */
	atomic_uint_fast64_t readings, events_n, shed, refused;
};

/* ---- random numbers: splitmix64 per device ---- */

static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rnd(struct sdev *d)
{
	return (double)(mix(&d->rng) >> 11) / 9007199254740992.0;
}

static bool chance(struct sdev *d, double p)
{
	return rnd(d) < p;
}

static int64_t irange(struct sdev *d, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rnd(d) * (double)(hi - lo + 1));
}

static uint64_t fnv(const char *s)
{
	uint64_t x = 1469598103934665603ull;
	for (; *s; s++)
		x = (x ^ (unsigned char)*s) * 1099511628211ull;
	return x;
}

/* ---- values by resource name ---- */

static int R(const struct sclass *c, const char *name)
{
	for (int i = 0; i < c->n_res; i++)
		if (strcmp(c->res[i].name, name) == 0)
			return i;
	return -1;
}

static double clampr(const struct sres *r, double x)
{
	if (r->has_min && x < r->min)
		x = r->min;
	if (r->has_max && x > r->max)
		x = r->max;
	return x;
}

static void setf(struct sdev *d, const char *name, double x)
{
	int i = R(d->c, name);
	if (i < 0)
		return;
	x = clampr(&d->c->res[i], x);
	if (d->c->res[i].type == LINLI_T_INT)
		d->v[i].i = (int64_t)llround(x);
	else
		d->v[i].f = round(x * 1e6) / 1e6;
}

static double getf(struct sdev *d, const char *name)
{
	int i = R(d->c, name);
	if (i < 0)
		return 0;
	return d->c->res[i].type == LINLI_T_INT ? (double)d->v[i].i : d->v[i].f;
}

static void addf(struct sdev *d, const char *name, double dx)
{
	setf(d, name, getf(d, name) + dx);
}

/* Random walk of `name` by up to `step` either way, kept within [lo, hi]. */
static void walk(struct sdev *d, const char *name, double step, double lo, double hi)
{
	double x = getf(d, name) + (rnd(d) * 2 - 1) * step;
	if (x < lo)
		x = lo;
	if (x > hi)
		x = hi;
	setf(d, name, x);
}

static void setb(struct sdev *d, const char *name, bool b)
{
	int i = R(d->c, name);
	if (i >= 0)
		d->v[i].b = b;
}

static bool getb(struct sdev *d, const char *name)
{
	int i = R(d->c, name);
	return i >= 0 && d->v[i].b;
}

static void sets(struct sdev *d, const char *name, const char *s)
{
	int i = R(d->c, name);
	if (i >= 0)
		snprintf(d->v[i].s, STR_MAX, "%s", s);
}

static const char *gets_(struct sdev *d, const char *name)
{
	int i = R(d->c, name);
	return i >= 0 ? d->v[i].s : "";
}

static bool is(struct sdev *d, const char *name, const char *s)
{
	return strcmp(gets_(d, name), s) == 0;
}

/* ---- the model ---- */

static void event(struct sim *S, struct outbox *o, struct sdev *d, const char *name,
		  linli_record *data);

/* An event with one string detail and one number detail (either may be NULL / NAN). */
static void ev2(struct sim *S, struct outbox *o, struct sdev *d, const char *name, const char *k1,
		const char *v1, const char *k2, double v2)
{
	linli_record *r = api->rec_new();
	if (r && k1)
		api->rec_set_str(r, k1, v1);
	if (r && k2)
		api->rec_set_float(r, k2, v2);
	event(S, o, d, name, r);
}

static void init_generic(struct sdev *d)
{
	for (int i = 0; i < d->c->n_res; i++) {
		const struct sres *r = &d->c->res[i];
		struct val *v = &d->v[i];
		double lo = r->has_min ? r->min : 0, hi = r->has_max ? r->max : lo + 100;
		switch (r->type) {
		case LINLI_T_INT:
			v->i = (int64_t)llround(clampr(r, lo + (hi - lo) * (0.3 + 0.4 * rnd(d))));
			break;
		case LINLI_T_FLOAT:
			v->f =
			    round(clampr(r, lo + (hi - lo) * (0.3 + 0.4 * rnd(d))) * 1000) / 1000;
			break;
		case LINLI_T_BOOL:
			v->b = true;
			break;
		default:
			if (r->is_enum && r->n_values)
				snprintf(v->s, STR_MAX, "%s", r->values[0]);
			else
				snprintf(v->s, STR_MAX, "%s-%d", r->name, d->n);
		}
	}
	/* Batteries start full-ish, the rest as above. */
	if (R(d->c, "battery") >= 0)
		setf(d, "battery", (double)irange(d, 70, 100));
}

static void init_model(struct sdev *d)
{
	init_generic(d);
	char buf[STR_MAX];
	switch (d->c->kind) {
	case K_CAMERA:
		snprintf(buf, sizeof buf, "rtsp://10.20.%d.%d/live", d->n / 250, d->n % 250 + 1);
		sets(d, "stream_url", buf);
		sets(d, "resolution", "1080p");
		setf(d, "pan", 0);
		setf(d, "tilt", -15);
		setf(d, "zoom", 1);
		break;
	case K_CHARGER: {
		/* An even-numbered pile has two connectors (双枪), the others one. */
		d->n_con = d->n % 2 == 0 ? 2 : 1;
		d->con = calloc((size_t)d->n_con, sizeof *d->con);
		if (!d->con)
			d->n_con = 0;
		double total = 0;
		for (int i = 0; i < d->n_con; i++) {
			d->con[i].told = -1; /* its status not told yet */
			d->con[i].meter = 500 + 25.0 * irange(d, 0, 200);
			total += d->con[i].meter;
		}
		sets(d, "state", "idle");
		setf(d, "connectors", d->n_con);
		setf(d, "max_power_kw", d->n % 3 == 0 ? 60 : 7);
		setf(d, "reading", total);
		setf(d, "power_kw", 0);
		setf(d, "current", 0);
		setf(d, "session_kwh", 0);
		setf(d, "voltage", d->n % 3 == 0 ? 400 : 220);
		break;
	}
	case K_DOOR:
		sets(d, "state", "closed");
		sets(d, "lock", "locked");
		sets(d, "mode", "normal");
		setf(d, "open_time", 5);
		setf(d, "passes_today", 0);
		break;
	case K_EFENCE:
		snprintf(buf, sizeof buf, "perimeter-%c", 'A' + (d->n - 1) % 26);
		sets(d, "zone", buf);
		sets(d, "sensitivity", "normal");
		setf(d, "voltage", 9);
		break;
	case K_ELECTRIC:
		setf(d, "reading", 2000 + 10.0 * irange(d, 0, 800));
		setf(d, "power", 0.8);
		setf(d, "voltage", 220);
		setf(d, "power_factor", 0.95);
		sets(d, "relay", "on");
		break;
	case K_GAS:
	case K_WATER:
		setf(d, "reading", 100 + (double)irange(d, 0, 900));
		setf(d, "flow", 0);
		sets(d, "valve", "open");
		break;
	case K_HYDRANT:
		setf(d, "pressure", 0.4);
		setb(d, "flowing", false);
		setf(d, "tilt_angle", 0.5);
		setf(d, "low_pressure_threshold", 0.15);
		break;
	case K_KIOSK:
		sets(d, "status", "idle");
		sets(d, "paper", "ok");
		sets(d, "current_item", "");
		setf(d, "volume", 60);
		d->t0 = 400; /* sheets of paper */
		break;
	case K_LOCKER:
		setf(d, "compartments_total", 60 + 20 * (d->n % 4));
		setf(d, "compartments_free", (double)irange(d, 10, 40));
		setf(d, "overdue", (double)irange(d, 0, 3));
		setf(d, "temperature", 24);
		break;
	case K_MANHOLE:
		setf(d, "tilt_angle", 0.5);
		sets(d, "lid", "closed");
		setf(d, "water_level", 0.6);
		setf(d, "tilt_threshold", 15);
		break;
	case K_PARKING:
		setb(d, "occupied", false);
		setf(d, "occupied_since", 0);
		sets(d, "plate", "");
		break;
	case K_GATE:
		sets(d, "barrier", "closed");
		setf(d, "backlog", 0);
		break;
	case K_SCREEN:
		sets(d, "power", "on");
		setf(d, "brightness", 80);
		sets(d, "layout", "community-default");
		sets(d, "notice", "欢迎回家");
		break;
	case K_PIR:
		setf(d, "last_motion", 0);
		break;
	case K_SMOKE:
		setf(d, "smoke_density", 0.05);
		setf(d, "temperature", 22);
		sets(d, "sensitivity", "normal");
		break;
	case K_TRASH: {
		static const char *const wt[] = {"recyclable", "kitchen", "hazardous", "other"};
		sets(d, "waste_type", wt[(d->n - 1) % 4]);
		setf(d, "fill_level", (double)irange(d, 0, 60));
		setf(d, "temperature", 20);
		setf(d, "full_threshold", 90);
		break;
	}
	case K_WEARABLE:
		setf(d, "heart_rate", 72);
		setf(d, "spo2", 97);
		setf(d, "steps", 0);
		setf(d, "lat", 31.8206 + 0.002 * (rnd(d) - 0.5));
		setf(d, "lon", 117.2272 + 0.002 * (rnd(d) - 0.5));
		setb(d, "worn", true);
		setf(d, "report_interval", 300);
		break;
	case K_GENERIC:
		break;
	}
}

/* Battery drain and the low_battery event, shared by battery devices. */
static void battery(struct sim *S, struct outbox *o, struct sdev *d, double per_round)
{
	if (R(d->c, "battery") < 0)
		return;
	double b = getf(d, "battery") - per_round * (0.5 + rnd(d));
	if (b < 5)
		b = 100; /* someone changed it */
	setf(d, "battery", b);
	bool low = getf(d, "battery") < 20;
	if (low && !d->flag)
		ev2(S, o, d, "low_battery", NULL, NULL, "battery", getf(d, "battery"));
	d->flag = low;
}

static void rare(struct sim *S, struct outbox *o, struct sdev *d, const char *ev, double p)
{
	if (chance(d, p))
		event(S, o, d, ev, NULL);
}

/*
 * A kiosk reports service items by their code (service_items.code: 居住证申领,
 * 社保卡补办, 老年优待证, 生育登记, 低保申请, 残疾人证), never the applicant:
 * device events carry ids, not personal data.
 */
static const char *const items[] = {"GS-HJ-0101", "GS-SB-0203", "GS-LL-0301",
				    "GS-WS-0402", "GS-MZ-0501", "GS-CL-0601"};

static void plate(struct sdev *d, char *out, size_t n)
{
	static const char letters[] = "ABCDEFGHJKLMNPQRSTUVWXYZ";
	snprintf(out, n, "皖%c·%c%c%03d", "ACDE"[irange(d, 0, 3)], letters[irange(d, 0, 23)],
		 letters[irange(d, 0, 23)], (int)irange(d, 0, 999));
}

/*
 * A charger's connectors as OCPP 1.6 names their status (the charging
 * plugin): each connector's state mapped (idle Available, plugged Preparing,
 * charging Charging, finished Finishing, reserved Reserved, fault Faulted),
 * told with status_notification {connector, status, error_code, meter_kwh}
 * when it changed, each connector on its own.
 */
enum { C_IDLE, C_PLUGGED, C_CHARGING, C_FINISHED, C_RESERVED, C_FAULT };
static const char *const cstates[] = {"idle",	  "plugged",  "charging",
				      "finished", "reserved", "fault"};

static void charger_status(struct sim *S, struct outbox *o, struct sdev *d)
{
	static const char *const to[] = {"Available", "Preparing", "Charging",
					 "Finishing", "Reserved",  "Faulted"};
	for (int i = 0; i < d->n_con; i++) {
		struct sconn *c = &d->con[i];
		if (c->told == c->st)
			continue;
		c->told = c->st;
		linli_record *r = api->rec_new();
		if (r) {
			api->rec_set_int(r, "connector", i + 1);
			api->rec_set_str(r, "status", to[c->st]);
			api->rec_set_str(r, "error_code",
					 c->st == C_FAULT ? "OtherError" : "NoError");
			api->rec_set_float(r, "meter_kwh", round(c->meter * 1e6) / 1e6);
		}
		event(S, o, d, "status_notification", r);
	}
}

/*
 * The pile's summary `state`: charging when a connector charges, else a
 * fault, else the busiest of the others (plugged, finished, reserved), else
 * idle.
 */
static void charger_summary(struct sdev *d)
{
	static const int order[] = {C_CHARGING, C_FAULT, C_PLUGGED, C_FINISHED, C_RESERVED};
	int k = C_IDLE;
	for (size_t j = 0; j < sizeof order / sizeof *order && k == C_IDLE; j++)
		for (int i = 0; i < d->n_con; i++)
			if (d->con[i].st == order[j])
				k = order[j];
	sets(d, "state", cstates[k]);
}

/* One round of a charger: each connector on its own, the pile's power shared. */
static void charger_step(struct sim *S, struct outbox *o, struct sdev *d)
{
	char buf[STR_MAX];
	double maxp = getf(d, "max_power_kw"), power = 0, session = 0;
	int charging = 0;
	for (int i = 0; i < d->n_con; i++)
		charging += d->con[i].st == C_CHARGING;
	for (int i = 0; i < d->n_con; i++) {
		struct sconn *c = &d->con[i];
		linli_record *r;
		switch (c->st) {
		case C_IDLE:
		case C_RESERVED:
			if (chance(d, 0.04))
				c->st = C_PLUGGED;
			break;
		case C_PLUGGED:
			c->st = C_CHARGING;
			c->kwh = 0;
			snprintf(buf, sizeof buf, "S%06d", (int)irange(d, 0, 999999));
			ev2(S, o, d, "session_started", "session", buf, "connector", i + 1);
			break;
		case C_CHARGING: {
			double p = maxp * (0.85 + 0.1 * rnd(d)) / (charging ? charging : 1);
			power += p;
			c->kwh += p / 60;
			c->meter += p / 60;
			addf(d, "reading", p / 60);
			if (chance(d, 0.03)) {
				c->st = C_FINISHED;
				if ((r = api->rec_new())) {
					api->rec_set_float(r, "kwh", round(c->kwh * 1e6) / 1e6);
					api->rec_set_int(r, "connector", i + 1);
				}
				event(S, o, d, "session_stopped", r);
			}
			if (chance(d, 0.0005)) {
				c->st = C_FAULT;
				if ((r = api->rec_new()))
					api->rec_set_int(r, "connector", i + 1);
				event(S, o, d, chance(d, 0.5) ? "overcurrent" : "fault", r);
			}
			break;
		}
		case C_FINISHED:
			if (chance(d, 0.2))
				c->st = C_IDLE;
			break;
		default: /* C_FAULT */
			if (chance(d, 0.1))
				c->st = C_IDLE;
			break;
		}
		if (c->st == C_CHARGING)
			session += c->kwh;
	}
	setf(d, "power_kw", power);
	setf(d, "session_kwh", session);
	double volt = (maxp > 20 ? 400 : 220) + (rnd(d) - 0.5) * 6;
	setf(d, "voltage", volt);
	setf(d, "current", getf(d, "power_kw") * 1000 / volt);
	charger_summary(d);
	charger_status(S, o, d);
}

/* The plate of gate d's k-th vehicle (the same at its entry and its exit). */
static void gate_plate(const struct sdev *d, int64_t k, char *out, size_t n)
{
	static const char letters[] = "ABCDEFGHJKLMNPQRSTUVWXYZ";
	uint64_t h = ((uint64_t)d->n * 1000003u + (uint64_t)k) * 0x9E3779B97F4A7C15ULL;
	h ^= h >> 29;
	snprintf(out, n, "皖%c%c%c%03d", "ACDE"[h % 4], letters[(h >> 8) % 24],
		 letters[(h >> 16) % 24], (int)((h >> 24) % 1000));
}

/*
 * A gate's entry or exit of its k-th vehicle: plate (sensitive in the class),
 * colour, lot "P<gate number>"; no time: the node's time of the event is the
 * gate's (a real offline gate adds `time` and `offline`).
 */
static void gate_event(struct sim *S, struct outbox *o, struct sdev *d, const char *name, int64_t k)
{
	char pl[32], lot[16];
	gate_plate(d, k, pl, sizeof pl);
	snprintf(lot, sizeof lot, "P%d", d->n);
	linli_record *r = api->rec_new();
	if (r) {
		api->rec_set_str(r, "plate", pl);
		api->rec_set_str(r, "plate_colour", k % 7 == 3 ? "green" : "blue");
		api->rec_set_str(r, "lot", lot);
	}
	event(S, o, d, name, r);
}

/*
 * 电动车进楼: now and then (about one round in 400 per camera) a camera's analytics
 * sees an e-bike enter, with the zone it watches and its building. Decided by a
 * hash of the seed, the round and the camera, not by the device's generator, so
 * that every other value and event of the fleet stays what it was.
 */
static void ebike_entry(struct sim *S, struct outbox *o, struct sdev *d, int64_t round)
{
	static const char *const zones[] = {"stairwell", "lift", "corridor", "entrance"};
	uint64_t h = S->seed ^ (uint64_t)round * 0x9E3779B97F4A7C15ULL ^
		     ((uint64_t)d->n + 1) * 0xC2B2AE3D27D4EB4FULL;
	h ^= h >> 31;
	h *= 0xBF58476D1CE4E5B9ULL;
	h ^= h >> 29;
	if (h % 400)
		return;
	char b[16];
	snprintf(b, sizeof b, "%d", d->n % 12 + 1);
	linli_record *r = api->rec_new();
	if (r) {
		api->rec_set_str(r, "zone", zones[d->n % 4]);
		api->rec_set_str(r, "building", b);
	}
	event(S, o, d, "ebike_entry", r);
}

/* Advance d by one round (one simulated minute); events go to the outbox. */
static void step(struct sim *S, struct outbox *o, struct sdev *d, int64_t round)
{
	char buf[STR_MAX];
	int64_t now_s = SIM_EPOCH_S + round * ROUND_S;
	switch (d->c->kind) {
	case K_CAMERA:
		walk(d, "pan", 4, -180, 180);
		walk(d, "tilt", 1, -45, 10);
		walk(d, "zoom", 0.5, 1, 8);
		rare(S, o, d, "intrusion", 0.003);
		rare(S, o, d, "loitering", 0.003);
		rare(S, o, d, "crowd", 0.002);
		rare(S, o, d, "video_loss", 0.0005);
		rare(S, o, d, "tamper", 0.0003);
		rare(S, o, d, "fire_smoke", 0.0002);
		ebike_entry(S, o, d, round);
		break;
	case K_CHARGER:
		charger_step(S, o, d);
		break;
	case K_DOOR:
		sets(d, "state", "closed");
		sets(d, "lock", is(d, "mode", "always_open") ? "unlocked" : "locked");
		if (round % 1440 == 0)
			setf(d, "passes_today", 0);
		if (chance(d, 0.15) && !is(d, "mode", "always_locked")) {
			bool face = chance(d, 0.4);
			snprintf(buf, sizeof buf, "R%05d", (int)irange(d, 1, 99999));
			if (chance(d, 0.95)) {
				ev2(S, o, d, face ? "face_ok" : "card_ok", "holder", buf, NULL, 0);
				sets(d, "state", "open");
				sets(d, "lock", "unlocked");
				addf(d, "passes_today", 1);
			} else
				ev2(S, o, d, face ? "face_denied" : "card_denied", "holder", buf,
				    NULL, 0);
			if (face && chance(d, 0.002))
				ev2(S, o, d, "watchlist_hit", "holder", buf, "score",
				    0.9 + 0.09 * rnd(d));
		}
		if (chance(d, 0.0005)) {
			sets(d, "state", "open");
			event(S, o, d, "forced", NULL);
		}
		rare(S, o, d, "held_open", 0.002);
		break;
	case K_EFENCE:
		walk(d, "voltage", 0.2, 8, 10);
		if (getb(d, "armed")) {
			if (chance(d, 0.002))
				ev2(S, o, d, "crossing", "zone", gets_(d, "zone"), "segment",
				    (double)irange(d, 1, 12));
			rare(S, o, d, "tamper", 0.0003);
			rare(S, o, d, "cut", 0.0001);
		}
		rare(S, o, d, "fault", 0.0003);
		break;
	case K_ELECTRIC: {
		int hour = (int)((now_s / 3600) % 24);
		double base = (hour >= 18 && hour <= 22) ? 2.5 : hour < 6 ? 0.3 : 1.0;
		double p = is(d, "relay", "on") ? base * (0.6 + 0.8 * rnd(d)) : 0;
		if (is(d, "relay", "on") && chance(d, 0.001))
			p = 7.8; /* someone runs everything at once */
		setf(d, "power", p);
		addf(d, "reading", p / 60);
		double volt = 220 + (rnd(d) - 0.5) * 10;
		setf(d, "voltage", volt);
		setf(d, "current", p * 1000 / volt);
		setf(d, "power_factor", 0.88 + 0.1 * rnd(d));
		if (p > 7.5)
			ev2(S, o, d, "overload", NULL, NULL, "power_kw", p);
		rare(S, o, d, "outage", 0.0002);
		rare(S, o, d, "tamper", 0.0001);
		break;
	}
	case K_GAS:
	case K_WATER: {
		bool gas = d->c->kind == K_GAS;
		double flow = 0;
		if (is(d, "valve", "open") && chance(d, gas ? 0.08 : 0.12))
			flow = gas ? 0.3 + 1.2 * rnd(d) : 0.2 + 1.0 * rnd(d);
		setf(d, "flow", flow);
		addf(d, "reading", flow / 60);
		battery(S, o, d, 0.01);
		if (gas) {
			rare(S, o, d, "gas_leak", 0.0001);
			rare(S, o, d, "abnormal_flow", 0.0003);
		} else {
			rare(S, o, d, "leak", 0.0003);
			rare(S, o, d, "reverse_flow", 0.0002);
		}
		rare(S, o, d, "tamper", 0.0001);
		break;
	}
	case K_HYDRANT:
		walk(d, "pressure", 0.01, 0.3, 0.5);
		if (chance(d, 0.0005))
			setf(d, "pressure", 0.1);
		if (getf(d, "pressure") < getf(d, "low_pressure_threshold"))
			ev2(S, o, d, "low_pressure", NULL, NULL, "mpa", getf(d, "pressure"));
		walk(d, "tilt_angle", 0.1, 0, 2);
		setb(d, "flowing", chance(d, 0.0005));
		if (getb(d, "flowing"))
			event(S, o, d, "opened", NULL);
		if (chance(d, 0.0001)) {
			setf(d, "tilt_angle", 25);
			event(S, o, d, "collision", NULL);
		}
		rare(S, o, d, "leak", 0.0002);
		battery(S, o, d, 0.005);
		break;
	case K_KIOSK:
		if (is(d, "status", "out_of_service"))
			break;
		if (chance(d, 0.1)) {
			sets(d, "status", "in_use");
			sets(d, "current_item", items[irange(d, 0, 5)]);
			if (chance(d, 0.3)) {
				ev2(S, o, d, "application_submitted", "item",
				    gets_(d, "current_item"), NULL, 0);
				d->t0 -= irange(d, 1, 5);
			}
		} else {
			sets(d, "status", "idle");
			sets(d, "current_item", "");
		}
		if (d->t0 <= 0) {
			if (!is(d, "paper", "out"))
				event(S, o, d, "paper_out", NULL);
			sets(d, "paper", "out");
			if (chance(d, 0.05))
				d->t0 = 400; /* refilled */
		} else
			sets(d, "paper", d->t0 < 50 ? "low" : "ok");
		rare(S, o, d, "printer_fault", 0.0005);
		break;
	case K_LOCKER: {
		double total = getf(d, "compartments_total"), free_ = getf(d, "compartments_free");
		if (free_ > 0 && chance(d, 0.12)) {
			setf(d, "compartments_free", free_ - 1);
			ev2(S, o, d, "deposited", NULL, NULL, "compartment",
			    (double)irange(d, 1, (int64_t)total));
			if (free_ - 1 <= 0)
				event(S, o, d, "full", NULL);
		}
		if (getf(d, "compartments_free") < total && chance(d, 0.1)) {
			addf(d, "compartments_free", 1);
			ev2(S, o, d, "picked_up", NULL, NULL, "compartment",
			    (double)irange(d, 1, (int64_t)total));
		}
		if (chance(d, 0.002)) {
			addf(d, "overdue", 1);
			event(S, o, d, "overdue", NULL);
		} else if (getf(d, "overdue") > 0 && chance(d, 0.01))
			addf(d, "overdue", -1);
		walk(d, "temperature", 0.3, 10, 35);
		rare(S, o, d, "forced", 0.0001);
		/* A compartment left open (closed again 2 to 10 rounds later: d->mode is its
		 * number, d->t1 the round it closes) or jammed: the lockers plugin's alarms. */
		if (d->mode && round >= d->t1) {
			ev2(S, o, d, "door_closed", NULL, NULL, "compartment", (double)d->mode);
			d->mode = 0;
		} else if (!d->mode && chance(d, 0.0005)) {
			d->mode = (int)irange(d, 1, (int64_t)total);
			d->t1 = round + irange(d, 2, 10);
			ev2(S, o, d, "door_left_open", NULL, NULL, "compartment", (double)d->mode);
		}
		if (chance(d, 0.0002))
			ev2(S, o, d, "jammed", NULL, NULL, "compartment",
			    (double)irange(d, 1, (int64_t)total));
		break;
	}
	case K_MANHOLE:
		if (d->mode > 0) { /* tilted, recovering */
			if (--d->mode == 0)
				setf(d, "tilt_angle", 1);
		} else
			walk(d, "tilt_angle", 0.2, 0, 3);
		if (chance(d, 0.0008)) {
			setf(d, "tilt_angle", 20 + 20 * rnd(d));
			d->mode = 5;
		}
		if (getf(d, "tilt_angle") > getf(d, "tilt_threshold"))
			ev2(S, o, d, "tilted", NULL, NULL, "deg", getf(d, "tilt_angle"));
		if (chance(d, 0.0003)) {
			sets(d, "lid", "open");
			event(S, o, d, "opened", NULL);
		} else if (is(d, "lid", "open") && chance(d, 0.2))
			sets(d, "lid", "closed");
		walk(d, "water_level", 0.05, 0.2, 1.5);
		if (chance(d, 0.0001)) {
			setf(d, "water_level", 9.5);
			event(S, o, d, "overflow", NULL);
		}
		battery(S, o, d, 0.003);
		break;
	case K_GATE:
		if (is(d, "barrier", "open") && round >= d->t1)
			sets(d, "barrier", "closed");
		/* t0 vehicles have entered, mode of them are inside (at most 8): first in, first
		 * out */
		if (d->mode < 8 && chance(d, 0.1)) {
			gate_event(S, o, d, "entry", d->t0++);
			d->mode++;
		} else if (d->mode > 0 && chance(d, 0.08)) {
			gate_event(S, o, d, "exit", d->t0 - d->mode);
			d->mode--;
		}
		rare(S, o, d, "barrier_fault", 0.0002);
		break;
	case K_PARKING:
		if (!getb(d, "occupied")) {
			if (chance(d, 0.05)) {
				setb(d, "occupied", true);
				setf(d, "occupied_since", (double)now_s);
				plate(d, buf, sizeof buf);
				sets(d, "plate", buf);
				d->t0 = round;
				ev2(S, o, d, "arrived", "plate", buf, NULL, 0);
			}
		} else {
			if (round - d->t0 == 240)
				ev2(S, o, d, "overtime", "plate", gets_(d, "plate"), "minutes",
				    240);
			if (chance(d, 0.01)) {
				ev2(S, o, d, "departed", "plate", gets_(d, "plate"), "minutes",
				    (double)(round - d->t0));
				setb(d, "occupied", false);
				setf(d, "occupied_since", 0);
				sets(d, "plate", "");
			}
		}
		battery(S, o, d, 0.003);
		break;
	case K_SCREEN:
		rare(S, o, d, "panel_fault", 0.0002);
		rare(S, o, d, "overheat", 0.0001);
		break;
	case K_PIR: {
		/* Someone moves in the room: often by day, seldom at night (sim time, UTC+8). */
		int hour = (int)(((now_s + 8 * 3600) / 3600) % 24);
		bool moved = chance(d, hour >= 7 && hour < 22 ? 0.25 : 0.03);
		if (moved) {
			setf(d, "last_motion", (double)now_s);
			if (!d->mode) /* a motion starts: the event; while it goes on, the reading
				       */
				event(S, o, d, "motion", NULL);
		}
		d->mode = moved;
		rare(S, o, d, "tamper", 0.0001);
		battery(S, o, d, 0.003);
		break;
	}
	case K_SMOKE:
		if (d->mode > 0) { /* in alarm */
			setf(d, "smoke_density", 3 + 5 * rnd(d));
			setf(d, "temperature", 40 + 20 * rnd(d));
			d->mode--;
		} else {
			walk(d, "smoke_density", 0.02, 0, 0.2);
			walk(d, "temperature", 0.3, 16, 30);
			if (chance(d, 0.0005)) {
				d->mode = 3;
				setf(d, "smoke_density", 4 + 4 * rnd(d));
				ev2(S, o, d, "alarm", NULL, NULL, "density",
				    getf(d, "smoke_density"));
			}
		}
		rare(S, o, d, "fault", 0.0002);
		rare(S, o, d, "tamper", 0.0001);
		battery(S, o, d, 0.003);
		break;
	case K_TRASH: {
		double rate_ = is(d, "waste_type", "kitchen") ? 1.2 : 0.5;
		addf(d, "fill_level", rnd(d) * rate_);
		bool full = getf(d, "fill_level") >= getf(d, "full_threshold");
		if (full && !d->mode) {
			event(S, o, d, "full", NULL);
			d->mode = 1;
		}
		if (full && chance(d, 0.05)) { /* collected */
			setf(d, "fill_level", 0);
			d->mode = 0;
		}
		walk(d, "temperature", 0.3, 5, 35);
		if (chance(d, 0.00005)) {
			setf(d, "temperature", 85);
			event(S, o, d, "fire", NULL);
		}
		rare(S, o, d, "tilted", 0.0001);
		battery(S, o, d, 0.003);
		break;
	}
	case K_WEARABLE: {
		if (round % 1440 == 0)
			setf(d, "steps", 0);
		bool active = chance(d, 0.2);
		walk(d, "heart_rate", active ? 6 : 2, active ? 80 : 58, active ? 125 : 90);
		walk(d, "spo2", 1, 94, 99);
		if (getb(d, "worn") && active)
			addf(d, "steps", (double)irange(d, 20, 120));
		walk(d, "lat", 0.0002, 31.815, 31.826);
		walk(d, "lon", 0.0002, 117.222, 117.233);
		if (getb(d, "worn") && chance(d, 0.002)) {
			setb(d, "worn", false);
			event(S, o, d, "removed", NULL);
		} else if (!getb(d, "worn") && chance(d, 0.1))
			setb(d, "worn", true);
		if (chance(d, 0.0003)) {
			linli_record *r = api->rec_new();
			if (r) {
				api->rec_set_float(r, "lat", getf(d, "lat"));
				api->rec_set_float(r, "lon", getf(d, "lon"));
				api->rec_set_float(r, "impact_g", 2.5 + 2 * rnd(d));
			}
			event(S, o, d, "fall", r);
		}
		rare(S, o, d, "sos", 0.0001);
		if (chance(d, 0.0002)) {
			setf(d, "heart_rate", 135 + 20 * rnd(d));
			ev2(S, o, d, "heart_rate_abnormal", NULL, NULL, "bpm",
			    getf(d, "heart_rate"));
		}
		rare(S, o, d, "left_safe_area", 0.0001);
		battery(S, o, d, 0.02);
		break;
	}
	case K_GENERIC:
		/* A class the simulator does not know: walk every number within its range. */
		for (int i = 0; i < d->c->n_res; i++) {
			const struct sres *r = &d->c->res[i];
			if (r->type != LINLI_T_INT && r->type != LINLI_T_FLOAT)
				continue;
			double lo = r->has_min ? r->min : 0, hi = r->has_max ? r->max : lo + 100;
			walk(d, r->name, (hi - lo) * 0.02, lo, hi);
		}
		for (int i = 0; i < d->c->n_events; i++)
			rare(S, o, d, d->c->events[i], 0.0005);
		break;
	}
}

/* ---- the outbox ---- */

static struct obx *ob_add(struct outbox *o)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 1024;
		struct obx *v = realloc(o->v, cap * sizeof *v);
		if (!v)
			return NULL;
		o->v = v;
		o->cap = cap;
	}
	struct obx *x = &o->v[o->n++];
	x->data = NULL;
	return x;
}

static void event(struct sim *S, struct outbox *o, struct sdev *d, const char *name,
		  linli_record *data)
{
	const char *ev = NULL; /* the class's own string, which outlives the outbox */
	for (int i = 0; i < d->c->n_events; i++)
		if (strcmp(d->c->events[i], name) == 0)
			ev = d->c->events[i];
	struct obx *x = S->events && ev ? ob_add(o) : NULL;
	if (!x) {
		api->rec_free(data);
		return;
	}
	x->kind = 1;
	snprintf(x->dev, sizeof x->dev, "%s", d->id);
	x->name = ev;
	x->data = data;
}

static void reading(struct outbox *o, struct sdev *d, int ri)
{
	const struct sres *r = &d->c->res[ri];
	struct obx *x = ob_add(o);
	if (!x)
		return;
	x->kind = 0;
	snprintf(x->dev, sizeof x->dev, "%s", d->id);
	x->name = r->name;
	x->type = r->type;
	x->i = d->v[ri].i;
	x->f = d->v[ri].f;
	x->b = d->v[ri].b;
	if (r->type == LINLI_T_STR)
		snprintf(x->s, sizeof x->s, "%s", d->v[ri].s);
}

/* Post the outbox in order (no lock held); readings in batches. */
static void flush(struct sim *S, struct outbox *o)
{
	struct linli_reading batch[POST_BATCH];
	size_t nb = 0;
	for (size_t i = 0; i <= o->n; i++) {
		struct obx *x = i < o->n ? &o->v[i] : NULL;
		if (nb && (!x || x->kind != 0 || nb == POST_BATCH)) {
			int rc = api->dev_post(S->ctx, batch, nb);
			if (rc == LINLI_EBUSY)
				atomic_fetch_add(&S->shed, nb);
			else if (rc)
				atomic_fetch_add(&S->refused, 1);
			else
				atomic_fetch_add(&S->readings, nb);
			nb = 0;
		}
		if (!x)
			break;
		if (x->kind == 0) {
			batch[nb++] = (struct linli_reading){.size = sizeof(struct linli_reading),
							     .type = x->type,
							     .device = x->dev,
							     .resource = x->name,
							     .i = x->i,
							     .f = x->f,
							     .b = x->b,
							     .s = x->s};
		} else {
			if (api->dev_event(S->ctx, x->dev, x->name, x->data, 0) == 0)
				atomic_fetch_add(&S->events_n, 1);
			api->rec_free(x->data);
			x->data = NULL;
		}
	}
	o->n = 0;
}

static void outbox_free(struct outbox *o)
{
	for (size_t i = 0; i < o->n; i++)
		api->rec_free(o->v[i].data);
	free(o->v);
	o->v = NULL;
	o->n = o->cap = 0;
}

/*
 * Generate up to `want` readings (SIZE_MAX: until the current round ends)
 * into o, continuing the round where the last call stopped. Caller holds mu.
 * Returns the readings generated.
 */
static size_t generate(struct sim *S, struct outbox *o, size_t want, bool to_round_end)
{
	size_t got = 0;
	while (S->n_fleet && (to_round_end || got < want)) {
		if (S->cur_dev >= S->n_fleet) {
			S->cur_dev = 0;
			S->cur_res = 0;
			S->round++;
			if (to_round_end)
				break;
			continue;
		}
		struct sdev *d = S->fleet[S->cur_dev];
		if (S->cur_res == 0)
			step(S, o, d, S->round);
		while (S->cur_res < d->c->n_res && (to_round_end || got < want)) {
			int ri = S->cur_res++;
			if (d->c->res[ri].readable) {
				reading(o, d, ri);
				got++;
			}
		}
		if (S->cur_res >= d->c->n_res) {
			S->cur_dev++;
			S->cur_res = 0;
		}
	}
	return got;
}

static size_t readings_per_round(const struct sim *S)
{
	size_t n = 0;
	for (int i = 0; i < S->n_fleet; i++)
		for (int r = 0; r < S->fleet[i]->c->n_res; r++)
			n += S->fleet[i]->c->res[r].readable;
	return n;
}

/* One tick's worth of reports: a round, or rate * tick readings. */
static void tick(struct sim *S, struct outbox *o)
{
	pthread_mutex_lock(&S->mu);
	if (S->rate > 0) {
		S->budget += (double)S->rate * (double)S->tick_ms / 1000.0;
		size_t want = (size_t)S->budget;
		S->budget -= (double)want;
		generate(S, o, want, false);
	} else
		generate(S, o, 0, true);
	pthread_mutex_unlock(&S->mu);
	flush(S, o);
}

static void timer_tick(linli_ctx *ctx, void *ud)
{
	(void)ctx;
	struct outbox o = {0};
	tick(ud, &o);
	outbox_free(&o);
}

static void *thread_main(void *arg)
{
	struct sim *S = arg;
	struct outbox o = {0};
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load(&S->stop)) {
		next.tv_sec += S->tick_ms / 1000;
		next.tv_nsec += (S->tick_ms % 1000) * 1000000;
		if (next.tv_nsec >= 1000000000) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000;
		}
		/* Sleep in short steps so that fini never waits long. */
		for (;;) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			if (atomic_load(&S->stop) || now.tv_sec > next.tv_sec ||
			    (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec))
				break;
			struct timespec nap = {0, 20000000};
			int64_t left = (next.tv_sec - now.tv_sec) * 1000000000LL +
				       (next.tv_nsec - now.tv_nsec);
			if (left < nap.tv_nsec)
				nap.tv_nsec = (long)left;
			nanosleep(&nap, NULL);
		}
		if (atomic_load(&S->stop))
			break;
		tick(S, &o);
	}
	outbox_free(&o);
	return NULL;
}

/* ---- the driver's ops ---- */

static struct sim *sim_of(linli_ctx *ctx)
{
	return api->userdata(ctx);
}

static const struct sclass *find_class(const struct sim *S, const char *name)
{
	for (int i = 0; i < S->n_classes; i++)
		if (strcmp(S->classes[i].name, name) == 0)
			return &S->classes[i];
	return NULL;
}

static int fleet_pos(const struct sim *S, const char *id)
{
	int lo = 0, hi = S->n_fleet;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (strcmp(S->fleet[mid]->id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int sim_open(linli_ctx *ctx, struct linli_device *dev, char *err, size_t errlen)
{
	struct sim *S = sim_of(ctx);
	char cls[64];
	int n = 0, used = 0;
	if (sscanf(dev->address, "sim:%63[a-z0-9_]:%d%n", cls, &n, &used) != 2 ||
	    dev->address[used] || n < 1) {
		snprintf(err, errlen, "address '%s' is not sim:CLASS:N (N >= 1)", dev->address);
		return LINLI_EINVAL;
	}
	if (strcmp(cls, dev->class_name) != 0) {
		snprintf(err, errlen, "address '%s' simulates a %s, but the device is a %s",
			 dev->address, cls, dev->class_name);
		return LINLI_EINVAL;
	}
	const struct sclass *c = find_class(S, cls);
	if (!c) {
		snprintf(err, errlen, "no model for class %s (not in the catalog?)", cls);
		return LINLI_ENOENT;
	}
	struct sdev *d = calloc(1, sizeof *d);
	if (!d)
		return LINLI_ENOMEM;
	snprintf(d->id, sizeof d->id, "%s", dev->id);
	d->c = c;
	d->n = n;
	d->rng = S->seed ^ fnv(dev->id);
	mix(&d->rng);
	init_model(d);
	pthread_mutex_lock(&S->mu);
	if (S->n_fleet == S->cap_fleet) {
		int cap = S->cap_fleet ? S->cap_fleet * 2 : 64;
		struct sdev **v = realloc(S->fleet, (size_t)cap * sizeof *v);
		if (!v) {
			pthread_mutex_unlock(&S->mu);
			free(d->con);
			free(d);
			return LINLI_ENOMEM;
		}
		S->fleet = v;
		S->cap_fleet = cap;
	}
	int at = fleet_pos(S, d->id);
	memmove(&S->fleet[at + 1], &S->fleet[at], (size_t)(S->n_fleet - at) * sizeof *S->fleet);
	S->fleet[at] = d;
	S->n_fleet++;
	if (at < S->cur_dev || (at == S->cur_dev && S->cur_res > 0))
		S->cur_dev++;
	pthread_mutex_unlock(&S->mu);
	dev->driver_data = d;
	return 0;
}

static void sim_close(linli_ctx *ctx, struct linli_device *dev)
{
	struct sim *S = sim_of(ctx);
	struct sdev *d = dev->driver_data;
	if (!d)
		return;
	pthread_mutex_lock(&S->mu);
	int at = fleet_pos(S, d->id);
	if (at < S->n_fleet && S->fleet[at] == d) {
		memmove(&S->fleet[at], &S->fleet[at + 1],
			(size_t)(S->n_fleet - at - 1) * sizeof *S->fleet);
		S->n_fleet--;
		if (at < S->cur_dev)
			S->cur_dev--;
		else if (at == S->cur_dev)
			S->cur_res = 0;
	}
	pthread_mutex_unlock(&S->mu);
	free(d->con);
	free(d);
	dev->driver_data = NULL;
}

static int sim_read(linli_ctx *ctx, struct linli_device *dev, const char *resource)
{
	struct sim *S = sim_of(ctx);
	struct sdev *d = dev->driver_data;
	struct outbox o = {0};
	pthread_mutex_lock(&S->mu);
	int ri = R(d->c, resource);
	if (ri >= 0)
		reading(&o, d, ri);
	pthread_mutex_unlock(&S->mu);
	flush(S, &o);
	outbox_free(&o);
	return ri >= 0 ? 0 : LINLI_ENOENT;
}

/* Set resource `name` of d from field `key` of record r (types as the class says). */
static void set_from(struct sdev *d, const char *name, const linli_record *r, const char *key)
{
	int i = R(d->c, name);
	if (i < 0)
		return;
	double f;
	bool b;
	const char *s;
	switch (d->c->res[i].type) {
	case LINLI_T_INT:
	case LINLI_T_FLOAT:
		if (api->rec_get_float(r, key, &f) == 0)
			setf(d, name, f);
		break;
	case LINLI_T_BOOL:
		if (api->rec_get_bool(r, key, &b) == 0)
			setb(d, name, b);
		break;
	default:
		if (api->rec_get_str(r, key, &s, NULL) == 0)
			sets(d, name, s);
	}
}

static int sim_write(linli_ctx *ctx, struct linli_device *dev, uint64_t req,
		     const linli_record *values)
{
	struct sim *S = sim_of(ctx);
	struct sdev *d = dev->driver_data;
	linli_record *res = api->rec_new_array();
	pthread_mutex_lock(&S->mu);
	for (size_t i = 0; i < api->rec_count(values); i++) {
		const char *k;
		api->rec_key(values, i, &k);
		set_from(d, k, values, k);
		if (res)
			api->arr_push_str(res, k);
	}
	pthread_mutex_unlock(&S->mu);
	linli_record *out = api->rec_new();
	if (out && res)
		api->rec_set_record(out, "written", res);
	api->rec_free(res);
	int rc = api->dev_command_done(ctx, req, 0, out, NULL);
	api->rec_free(out);
	return rc;
}

static int sim_command(linli_ctx *ctx, struct linli_device *dev, uint64_t req, const char *command,
		       const linli_record *args)
{
	struct sim *S = sim_of(ctx);
	struct sdev *d = dev->driver_data;
	linli_record *out = api->rec_new();
	if (!out)
		return LINLI_ENOMEM;
	int rc = 0;
	char msg[128] = "";
	int64_t iv;
	pthread_mutex_lock(&S->mu);
	switch (d->c->kind) {
	case K_DOOR:
		if (strcmp(command, "open") == 0) {
			sets(d, "state", "open");
			sets(d, "lock", "unlocked");
			api->rec_get_int(args, "seconds", &iv);
			api->rec_set_int(out, "unlocked_for_s", iv);
		} else if (strcmp(command, "lock") == 0)
			sets(d, "lock", "locked");
		else if (strcmp(command, "set_mode") == 0)
			set_from(d, "mode", args, "mode");
		break;
	case K_PIR:
		if (strcmp(command, "self_test") == 0)
			api->rec_set_str(out, "self_test",
					 getf(d, "battery") > 10 ? "pass" : "fail");
		break;
	case K_SMOKE:
		if (strcmp(command, "reset") == 0 || strcmp(command, "silence") == 0) {
			d->mode = 0;
			setf(d, "smoke_density", 0.05);
		} else if (strcmp(command, "self_test") == 0)
			api->rec_set_str(out, "self_test",
					 getf(d, "battery") > 10 ? "pass" : "fail");
		else if (strcmp(command, "set_sensitivity") == 0)
			set_from(d, "sensitivity", args, "level");
		break;
	case K_LOCKER:
		if (strcmp(command, "reserve") == 0) {
			if (getf(d, "compartments_free") < 1) {
				rc = LINLI_EFULL;
				snprintf(msg, sizeof msg, "no free compartment");
			} else {
				addf(d, "compartments_free", -1);
				api->rec_set_int(
				    out, "compartment",
				    irange(d, 1, (int64_t)getf(d, "compartments_total")));
				api->rec_get_int(args, "hours", &iv);
				api->rec_set_int(out, "hours", iv);
			}
		} else if (strcmp(command, "release") == 0)
			addf(d, "compartments_free", 1);
		else if (strcmp(command, "open") == 0) {
			/* A pickup: the compartment opens and is free again. */
			api->rec_get_int(args, "compartment", &iv);
			api->rec_set_int(out, "opened", iv);
			if (getf(d, "compartments_free") < getf(d, "compartments_total"))
				addf(d, "compartments_free", 1);
		}
		break;
	case K_CHARGER:
		if (strcmp(command, "start_session") == 0 || strcmp(command, "stop_session") == 0) {
			/* the connector's own state; told at the next round */
			bool start = strcmp(command, "start_session") == 0;
			iv = 1;
			api->rec_get_int(args, "connector", &iv);
			struct sconn *c = iv >= 1 && iv <= d->n_con ? &d->con[iv - 1] : NULL;
			if (!c) {
				rc = LINLI_EINVAL;
				snprintf(msg, sizeof msg, "connector %lld: the charger has %d",
					 (long long)iv, d->n_con);
			} else if (start && (c->st == C_CHARGING || c->st == C_FAULT)) {
				rc = LINLI_ESTATE;
				snprintf(msg, sizeof msg, "connector %lld is %s", (long long)iv,
					 cstates[c->st]);
			} else if (start)
				c->st = C_PLUGGED;
			else if (c->st == C_CHARGING)
				c->st = C_FINISHED;
			if (c && !rc) {
				api->rec_set_int(out, "connector", iv);
				api->rec_set_str(out, "state", cstates[c->st]);
				charger_summary(d);
			}
		} else if (strcmp(command, "set_max_power") == 0)
			set_from(d, "max_power_kw", args, "kw");
		break;
	case K_ELECTRIC:
		if (strcmp(command, "relay_on") == 0 || strcmp(command, "relay_off") == 0)
			sets(d, "relay", command + 6);
		break;
	case K_GAS:
	case K_WATER:
		if (strcmp(command, "open_valve") == 0)
			sets(d, "valve", "open");
		else if (strcmp(command, "close_valve") == 0)
			sets(d, "valve", "closed");
		break;
	case K_EFENCE:
		if (strcmp(command, "arm") == 0 || strcmp(command, "disarm") == 0)
			setb(d, "armed", command[0] == 'a');
		else if (strcmp(command, "set_sensitivity") == 0)
			set_from(d, "sensitivity", args, "level");
		break;
	case K_CAMERA:
		if (strcmp(command, "ptz_move") == 0) {
			set_from(d, "pan", args, "pan");
			set_from(d, "tilt", args, "tilt");
			set_from(d, "zoom", args, "zoom");
		} else if (strcmp(command, "set_recording") == 0)
			set_from(d, "recording", args, "on");
		else if (strcmp(command, "snapshot") == 0) {
			char url[96];
			snprintf(url, sizeof url, "%s/snapshot/%lld", gets_(d, "stream_url"),
				 (long long)S->round);
			api->rec_set_str(out, "snapshot", url);
		}
		break;
	case K_MANHOLE:
		if (strcmp(command, "set_tilt_threshold") == 0)
			set_from(d, "tilt_threshold", args, "deg");
		break;
	case K_HYDRANT:
		if (strcmp(command, "set_threshold") == 0)
			set_from(d, "low_pressure_threshold", args, "mpa");
		break;
	case K_TRASH:
		if (strcmp(command, "set_full_threshold") == 0)
			set_from(d, "full_threshold", args, "percent");
		break;
	case K_SCREEN:
		if (strcmp(command, "power_on") == 0 || strcmp(command, "power_off") == 0)
			sets(d, "power", command + 6);
		else if (strcmp(command, "show_layout") == 0)
			set_from(d, "layout", args, "layout");
		else if (strcmp(command, "show_notice") == 0)
			set_from(d, "notice", args, "text");
		break;
	case K_KIOSK:
		if (strcmp(command, "set_service") == 0) {
			bool on = true;
			api->rec_get_bool(args, "in_service", &on);
			sets(d, "status", on ? "idle" : "out_of_service");
		}
		break;
	case K_WEARABLE:
		if (strcmp(command, "set_report_interval") == 0)
			set_from(d, "report_interval", args, "seconds");
		else if (strcmp(command, "locate") == 0) {
			api->rec_set_float(out, "lat", getf(d, "lat"));
			api->rec_set_float(out, "lon", getf(d, "lon"));
		}
		break;
	case K_GATE:
		/* The barrier lifts (a paid exit: the parking plugin) for a round, then closes. */
		if (strcmp(command, "open") == 0 || strcmp(command, "close") == 0) {
			sets(d, "barrier", command[0] == 'o' ? "open" : "closed");
			d->t1 = S->round + 1;
			api->rec_set_str(out, "barrier", gets_(d, "barrier"));
		}
		break;
	case K_PARKING:
	case K_GENERIC:
		break;
	}
	pthread_mutex_unlock(&S->mu);
	if (!rc)
		api->rec_set_bool(out, "ok", true);
	int r = api->dev_command_done(ctx, req, rc, rc ? NULL : out, rc ? msg : NULL);
	api->rec_free(out);
	return r;
}

static int sim_discover(linli_ctx *ctx)
{
	struct sim *S = sim_of(ctx);
	if (!S->discover)
		return 0;
	for (int i = 0; i < S->n_classes; i++) {
		const struct sclass *c = &S->classes[i];
		int sets = S->n_scopes ? S->n_scopes : 1;
		for (int64_t n = 1; n <= S->per_class * sets; n++) {
			char id[49], addr[96], name[96];
			snprintf(id, sizeof id, "sim-%s-%03lld", c->name, (long long)n);
			snprintf(addr, sizeof addr, "sim:%s:%lld", c->name, (long long)n);
			snprintf(name, sizeof name, "%s %lld", c->title, (long long)n);
			struct linli_device_info info = {.size = sizeof info,
							 .id = id,
							 .class_name = c->name,
							 .address = addr,
							 .name = name,
							 .scope = S->n_scopes ? S->scope[(n - 1) / S->per_class]
									      : NULL};
			int rc = api->dev_found(ctx, &info);
			if (rc && rc != LINLI_EEXIST)
				return rc; /* logged by the kernel */
		}
	}
	return 0;
}

static const struct linli_driver_ops ops = {
    .size = sizeof(struct linli_driver_ops),
    .open = sim_open,
    .close = sim_close,
    .read = sim_read,
    .write = sim_write,
    .command = sim_command,
    .discover = sim_discover,
};

/* ---- console ---- */

static int cmd_step(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		    char *err, size_t errlen)
{
	struct sim *S = sim_of(ctx);
	long long n = 1;
	if (req->argc > 1 ||
	    (req->argc == 1 && (sscanf(req->argv[0], "%lld", &n) != 1 || n < 1 || n > 100000))) {
		snprintf(err, errlen, "usage: sim step [ROUNDS] (1..100000)");
		return LINLI_EINVAL;
	}
	uint64_t r0 = atomic_load(&S->readings), e0 = atomic_load(&S->events_n);
	struct outbox o = {0};
	for (long long i = 0; i < n; i++) {
		pthread_mutex_lock(&S->mu);
		generate(S, &o, 0, true);
		pthread_mutex_unlock(&S->mu);
		flush(S, &o);
	}
	outbox_free(&o);
	linli_record *r = api->rec_new();
	if (!r)
		return LINLI_ENOMEM;
	api->rec_set_int(r, "rounds", n);
	api->rec_set_int(r, "readings", (int64_t)(atomic_load(&S->readings) - r0));
	api->rec_set_int(r, "events", (int64_t)(atomic_load(&S->events_n) - e0));
	api->rec_set_int(r, "round", S->round);
	*reply = r;
	return 0;
}

static int cmd_status(linli_ctx *ctx, const struct linli_cmd_req *req, linli_record **reply,
		      char *err, size_t errlen)
{
	struct sim *S = sim_of(ctx);
	if (req->argc) {
		snprintf(err, errlen, "usage: sim status");
		return LINLI_EINVAL;
	}
	linli_record *r = api->rec_new();
	if (!r)
		return LINLI_ENOMEM;
	pthread_mutex_lock(&S->mu);
	api->rec_set_int(r, "devices", S->n_fleet);
	api->rec_set_int(r, "readings_per_round", (int64_t)readings_per_round(S));
	api->rec_set_int(r, "round", S->round);
	pthread_mutex_unlock(&S->mu);
	api->rec_set_int(r, "classes", S->n_classes);
	api->rec_set_int(r, "per_class", S->per_class);
	api->rec_set_int(r, "seed", (int64_t)S->seed);
	api->rec_set_int(r, "tick_ms", S->tick_ms);
	api->rec_set_int(r, "rate", S->rate);
	api->rec_set_bool(r, "auto", S->autorun);
	api->rec_set_str(r, "mode", S->use_thread ? "thread" : "timer");
	api->rec_set_bool(r, "events_enabled", S->events);
	api->rec_set_int(r, "readings", (int64_t)atomic_load(&S->readings));
	api->rec_set_int(r, "events", (int64_t)atomic_load(&S->events_n));
	api->rec_set_int(r, "shed", (int64_t)atomic_load(&S->shed));
	api->rec_set_int(r, "refused_posts", (int64_t)atomic_load(&S->refused));
	*reply = r;
	return 0;
}

/* ---- configuration ---- */

static int cfg_int(linli_ctx *ctx, const linli_record *c, const char *k, int64_t lo, int64_t hi,
		   int64_t *out)
{
	int t = api->rec_type(c, k);
	if (t == LINLI_T_NONE)
		return 0;
	int64_t v;
	if (t != LINLI_T_INT || api->rec_get_int(c, k, &v) != 0 || v < lo || v > hi) {
		api->set_error(ctx, "plugins.sim.%s: must be an integer in %lld..%lld", k,
			       (long long)lo, (long long)hi);
		return LINLI_ECONFIG;
	}
	*out = v;
	return 0;
}

static int cfg_bool(linli_ctx *ctx, const linli_record *c, const char *k, bool *out)
{
	int t = api->rec_type(c, k);
	if (t == LINLI_T_NONE)
		return 0;
	if (t != LINLI_T_BOOL) {
		api->set_error(ctx, "plugins.sim.%s: must be true or false", k);
		return LINLI_ECONFIG;
	}
	return api->rec_get_bool(c, k, out);
}

static int read_config(linli_ctx *ctx, struct sim *S)
{
	linli_record *c = NULL;
	int rc = api->plugin_config(ctx, &c);
	if (rc) {
		api->set_error(ctx, "plugins.sim: cannot read the configuration: %s",
			       linli_strerror(rc));
		return rc;
	}
	static const char *const known[] = {"per_class", "classes", "seed",   "tick_ms",  "rate",
					    "auto",	 "thread",  "events", "discover", "scope"};
	for (size_t i = 0; i < api->rec_count(c); i++) {
		const char *k;
		api->rec_key(c, i, &k);
		bool ok = false;
		for (size_t j = 0; j < sizeof known / sizeof known[0]; j++)
			ok |= strcmp(k, known[j]) == 0;
		if (!ok) {
			api->set_error(ctx,
				       "plugins.sim: unknown key '%s' (per_class, classes, seed, "
				       "tick_ms, rate, auto, thread, events, discover, scope)",
				       k);
			api->rec_free(c);
			return LINLI_ECONFIG;
		}
	}
	int64_t seed = 1;
	S->per_class = 3;
	S->tick_ms = 1000;
	S->rate = 0;
	S->autorun = S->use_thread = S->events = S->discover = true;
	if ((rc = cfg_int(ctx, c, "per_class", 0, 10000, &S->per_class)) ||
	    (rc = cfg_int(ctx, c, "seed", 0, INT64_MAX, &seed)) ||
	    (rc = cfg_int(ctx, c, "tick_ms", 10, 3600000, &S->tick_ms)) ||
	    (rc = cfg_int(ctx, c, "rate", 0, 5000000, &S->rate)) ||
	    (rc = cfg_bool(ctx, c, "auto", &S->autorun)) ||
	    (rc = cfg_bool(ctx, c, "thread", &S->use_thread)) ||
	    (rc = cfg_bool(ctx, c, "events", &S->events)) ||
	    (rc = cfg_bool(ctx, c, "discover", &S->discover))) {
		api->rec_free(c);
		return rc;
	}
	S->seed = (uint64_t)seed;
	int t = api->rec_type(c, "scope");
	const char *s;
	linli_record *sl = NULL;
	size_t sn = 0;
	if (t == LINLI_T_STR && api->rec_get_str(c, "scope", &s, NULL) == 0) {
		snprintf(S->scope[0], sizeof S->scope[0], "%s", s);
		S->n_scopes = 1;
	} else if (t == LINLI_T_ARRAY && api->rec_get_array(c, "scope", &sl) == 0 &&
		   (sn = api->rec_count(sl)) >= 1 && sn <= 16) {
		for (size_t i = 0; i < sn; i++) {
			size_t len = 0;
			if (api->arr_get_str(sl, i, &s, &len) != 0 || len == 0 ||
			    len >= sizeof S->scope[0]) {
				api->set_error(ctx,
					       "plugins.sim.scope: element %zu must be a jurisdiction "
					       "path string",
					       i + 1);
				api->rec_free(c);
				return LINLI_ECONFIG;
			}
			snprintf(S->scope[i], sizeof S->scope[i], "%s", s);
		}
		S->n_scopes = (int)sn;
	} else if (t != LINLI_T_NONE) {
		api->set_error(ctx, "plugins.sim.scope: must be a jurisdiction path string or a list "
				    "of 1..16 of them");
		api->rec_free(c);
		return LINLI_ECONFIG;
	}
	t = api->rec_type(c, "classes");
	if (t == LINLI_T_ARRAY) {
		linli_record *a;
		api->rec_get_array(c, "classes", &a);
		size_t n = api->rec_count(a);
		S->only = calloc(n ? n : 1, sizeof *S->only);
		for (size_t i = 0; S->only && i < n; i++) {
			if (api->arr_get_str(a, i, &s, NULL) != 0) {
				api->set_error(
				    ctx, "plugins.sim.classes: entry %zu is not a string", i + 1);
				api->rec_free(c);
				return LINLI_ECONFIG;
			}
			S->only[S->n_only++] = strdup(s);
		}
	} else if (t != LINLI_T_NONE) {
		api->set_error(ctx, "plugins.sim.classes: must be a list of class names");
		api->rec_free(c);
		return LINLI_ECONFIG;
	}
	api->rec_free(c);
	return 0;
}

/* Build the class views from the catalog, keeping the configured ones. */
static int load_classes(linli_ctx *ctx, struct sim *S)
{
	linli_record *all = NULL;
	int rc = api->device_classes(ctx, &all);
	if (rc)
		return rc;
	size_t n = api->rec_count(all);
	S->classes = calloc(n ? n : 1, sizeof *S->classes);
	if (!S->classes) {
		api->rec_free(all);
		return LINLI_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		linli_record *m, *list, *e;
		const char *s;
		api->arr_get_map(all, i, &m);
		api->rec_get_str(m, "name", &s, NULL);
		bool want = S->n_only == 0;
		for (int j = 0; j < S->n_only; j++)
			want |= strcmp(S->only[j], s) == 0;
		if (!want)
			continue;
		struct sclass *c = &S->classes[S->n_classes++];
		snprintf(c->name, sizeof c->name, "%s", s);
		if (api->rec_get_str(m, "title_en", &s, NULL) == 0)
			snprintf(c->title, sizeof c->title, "%s", s);
		c->kind = K_GENERIC;
		for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
			if (strcmp(kinds[k].name, c->name) == 0)
				c->kind = kinds[k].k;
		api->rec_get_array(m, "resources", &list);
		for (size_t j = 0; j < api->rec_count(list) && c->n_res < MAXR; j++) {
			struct sres *r = &c->res[c->n_res++];
			api->arr_get_map(list, j, &e);
			api->rec_get_str(e, "name", &s, NULL);
			snprintf(r->name, sizeof r->name, "%s", s);
			api->rec_get_str(e, "type", &s, NULL);
			r->type = strcmp(s, "integer") == 0   ? LINLI_T_INT
				  : strcmp(s, "float") == 0   ? LINLI_T_FLOAT
				  : strcmp(s, "boolean") == 0 ? LINLI_T_BOOL
							      : LINLI_T_STR;
			r->is_enum = strcmp(s, "enum") == 0;
			api->rec_get_str(e, "access", &s, NULL);
			r->readable = strchr(s, 'r') != NULL;
			r->has_min = api->rec_get_float(e, "min", &r->min) == 0;
			r->has_max = api->rec_get_float(e, "max", &r->max) == 0;
			linli_record *vals;
			if (api->rec_get_array(e, "values", &vals) == 0)
				for (size_t v = 0; v < api->rec_count(vals) && r->n_values < 16;
				     v++)
					if (api->arr_get_str(vals, v, &s, NULL) == 0)
						snprintf(r->values[r->n_values++], 32, "%s", s);
		}
		api->rec_get_array(m, "events", &list);
		for (size_t j = 0; j < api->rec_count(list) && c->n_events < 32; j++) {
			api->arr_get_map(list, j, &e);
			api->rec_get_str(e, "name", &s, NULL);
			snprintf(c->events[c->n_events++], 64, "%s", s);
		}
	}
	api->rec_free(all);
	for (int j = 0; j < S->n_only; j++)
		if (!find_class(S, S->only[j])) {
			api->set_error(ctx,
				       "plugins.sim.classes: '%s' is not a device class of the "
				       "catalog",
				       S->only[j]);
			return LINLI_ECONFIG;
		}
	return 0;
}

static void sim_free(struct sim *S)
{
	if (!S)
		return;
	for (int i = 0; i < S->n_fleet; i++) {
		free(S->fleet[i]->con);
		free(S->fleet[i]);
	}
	free(S->fleet);
	free(S->classes);
	for (int i = 0; i < S->n_only; i++)
		free(S->only[i]);
	free(S->only);
	pthread_mutex_destroy(&S->mu);
	free(S);
}

static int sim_init(linli_ctx *ctx, const struct linli_api *a)
{
	api = a;
	struct sim *S = calloc(1, sizeof *S);
	if (!S)
		return LINLI_ENOMEM;
	S->ctx = ctx;
	pthread_mutex_init(&S->mu, NULL);
	api->set_userdata(ctx, S);
	int rc = read_config(ctx, S);
	if (!rc)
		rc = load_classes(ctx, S);
	if (!rc)
		rc = api->cmd_register(ctx, "step", "[ROUNDS]",
				       "advance every simulated device N rounds now", cmd_step,
				       NULL);
	if (!rc)
		rc = api->cmd_register(ctx, "status", "", "the simulator's settings and counters",
				       cmd_status, NULL);
	if (!rc)
		rc = api->driver_register(ctx, "sim", &ops);
	if (!rc && S->autorun && !S->use_thread)
		rc = api->timer_add(ctx, (uint64_t)S->tick_ms, (uint64_t)S->tick_ms, timer_tick, S,
				    &S->timer);
	if (!rc && S->autorun && S->use_thread) {
		if (pthread_create(&S->th, NULL, thread_main, S) != 0) {
			api->set_error(ctx, "cannot start the simulator's thread");
			rc = LINLI_ENOMEM;
		} else
			S->have_thread = true;
	}
	if (rc) {
		/* The kernel removes what was registered; the driver's devices were never opened.
		 */
		api->set_userdata(ctx, NULL);
		sim_free(S);
		return rc;
	}
	api->log(ctx, LINLI_LOG_INFO,
		 "%d classes, %lld per class in %d scope(s), seed %llu, %s every %lld ms%s%s",
		 S->n_classes, (long long)S->per_class, S->n_scopes ? S->n_scopes : 1,
		 (unsigned long long)S->seed,
		 S->rate ? "rate-limited" : "one round", (long long)S->tick_ms,
		 S->autorun ? (S->use_thread ? ", from its thread" : ", from a timer") : ", manual",
		 S->events ? "" : ", no events");
	return 0;
}

static void sim_fini(linli_ctx *ctx, const struct linli_api *a)
{
	(void)a;
	struct sim *S = api->userdata(ctx);
	if (!S)
		return;
	atomic_store(&S->stop, true);
	if (S->have_thread)
		pthread_join(S->th, NULL);
	sim_free(S);
}

LINLI_PLUGIN(sim_init, sim_fini, .name = "sim", .version = "0.1.0", .family = "driver",
	     .description = "Simulated devices of every catalog class, for demos and tests",
	     .capabilities = {"hal.driver:sim", "store.read:devices", "bus.publish:dev/#"});
