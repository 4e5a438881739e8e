/*
 * bench_bus — the event bus against the raw library it sits on.
 *
 *   bus.inproc          publish -> handler on the kernel thread, with 1,001
 *                       subscriptions in the trie (target >= 2,000,000/s)
 *   bus.match.linear    the same 1,001 patterns scanned one by one per topic
 *                       (what the trie saves), and the ratio
 *   bus.ipc.raw         raw nng pub/sub over ipc://, one 64-byte message per
 *                       event, publisher at full speed: rate at the subscriber
 *   bus.ipc.delivered   our path: a driver thread bus_posts at full speed, an
 *                       external subscriber process long-polls `events next`
 *                       over ipc:// (batches); rate at the subscriber
 *   bus.ipc.ratio       delivered over raw (target >= 2)
 *   bus.ipc.lost        records of consequence posted but not received (target 0)
 *
 * The subscribers are separate processes (this program re-executed with
 * --raw-sub / --bus-sub). Rates are events received divided by the time from
 * the first publish to the last receipt (CLOCK_MONOTONIC is system-wide).
 * Under this overload telemetry is shed, by design: the figures say how much
 * and where (the kernel's bounded queue, or the subscriber's). One event in
 * ten is a record of consequence, and none may be lost.
 * BENCH_BUS_N sets the events per ipc run (default 2,000,000); BENCH_BUS_CFG
 * appends config text (e.g. "bus = { subscriber_queue = 65536; };") — the
 * default run measures the default limits.
 */
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "cmd.h"
#include "config.h"
#include "control.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "mp.h"

extern char **environ;

#define NDEV	    1000
#define BATCH_BYTES "8388608" /* the subscriber asks for batches of up to 8 MiB */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "bench_bus: %s: %s\n", what, why);
	exit(1);
}

static void open_kernel(struct kernel *k, const char *dir)
{
	char text[1024], err[1024];
	snprintf(text, sizeof text,
		 "node = { path = \"hefei\"; level = \"city\"; };\n"
		 "data_dir = \"%s\";\nlog_level = \"error\";\n"
		 "control = { listen = [ \"ipc://%s/ctl.sock\" ]; };\n%s",
		 dir, dir, getenv("BENCH_BUS_CFG") ? getenv("BENCH_BUS_CFG") : "");
	if (kernel_init(k) || cfg_load_string(&k->cfg, text, "bench", NULL, err, sizeof err))
		die("config", err);
	if (bus_open(k, &k->bus, err, sizeof err))
		die("bus_open", err);
}

/* {"smoke": 0.42, "battery": 87, "fw": "2.1.0"} */
static void payload(msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	mp_kv_double(&pk, "smoke", 0.42);
	mp_kv_int(&pk, "battery", 87);
	mp_kv_str(&pk, "fw", "2.1.0");
}

/* ---- in process ---- */

static int count_handler(const struct bus_event *ev, void *ud)
{
	(void)ev;
	(*(uint64_t *)ud)++;
	return 0;
}

static char topics[NDEV][64], patterns[NDEV + 1][64];

static double bench_inproc(void)
{
	struct kernel k;
	open_kernel(&k, "/tmp");
	uint64_t hits = 0, misses = 0;
	char err[256];
	for (int i = 0; i < NDEV; i++) {
		snprintf(patterns[i], sizeof patterns[i], "dev/meter/m-%04d/#", i);
		snprintf(topics[i], sizeof topics[i], "dev/smoke/sd-%04d/event/alarm", i);
		if (bus_subscribe(k.bus, patterns[i], "hefei/baohe", count_handler, &misses, NULL,
				  "meter", NULL, err, sizeof err))
			die("subscribe", err);
	}
	snprintf(patterns[NDEV], sizeof patterns[NDEV], "dev/smoke/+/event/#");
	if (bus_subscribe(k.bus, patterns[NDEV], "hefei", count_handler, &hits, NULL, "smoke", NULL,
			  err, sizeof err))
		die("subscribe", err);
	msgpack_sbuffer sb;
	payload(&sb);
	const uint64_t n = 2000000;
	uint64_t t0 = 0;
	for (uint64_t i = 0; i < n + 200000; i++) {
		if (i == 200000)
			t0 = now_ns(); /* after a warm-up */
		struct bus_msg m = {topics[i % NDEV], "driver-smoke", "hefei/baohe/binhu/yuelan",
				    sb.data, sb.size};
		if (bus_publish(k.bus, &m, NULL, err, sizeof err))
			die("publish", err);
	}
	double rate = (double)n / ((double)(now_ns() - t0) / 1e9);
	if (hits != n + 200000 || misses)
		die("inproc", "wrong number of deliveries");
	msgpack_sbuffer_destroy(&sb);
	bus_close(k.bus);
	kernel_destroy(&k);
	return rate;
}

static double bench_linear(void)
{
	const int n = 100000;
	uint64_t matched = 0, t0 = now_ns();
	for (int i = 0; i < n; i++)
		for (int p = 0; p <= NDEV; p++)
			matched += bus_pattern_match(patterns[p], topics[i % NDEV]);
	double rate = (double)n / ((double)(now_ns() - t0) / 1e9);
	if (matched != (uint64_t)n)
		die("linear", "wrong number of matches");
	return rate;
}

/* ---- subscriber processes ---- */

static pid_t spawn_sub(const char *mode, const char *addr, FILE **out)
{
	int p[2];
	if (pipe(p))
		die("pipe", strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		die("readlink", strerror(errno));
	exe[n] = '\0';
	char *argv[] = {exe, (char *)mode, (char *)addr, NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc)
		die("posix_spawn", strerror(rc));
	*out = fdopen(p[0], "r");
	return pid;
}

static void expect_line(FILE *f, char *buf, size_t len, const char *what)
{
	if (!fgets(buf, (int)len, f))
		die(what, "subscriber process ended early");
}

static int raw_sub(const char *addr)
{
	nng_socket s;
	int rv;
	if ((rv = nng_sub0_open(&s)) || (rv = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0)))
		die("sub0", nng_strerror(rv));
	for (int i = 0; (rv = nng_dial(s, addr, NULL, 0)) != 0; i++) {
		if (i == 100)
			die("dial", nng_strerror(rv));
		usleep(20000);
	}
	printf("ready\n");
	fflush(stdout);
	uint64_t count = 0, t_last = 0, lost = 0, next = 0;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
	for (;;) {
		char *buf;
		size_t len;
		if (nng_recv(s, &buf, &len, NNG_FLAG_ALLOC) != 0)
			break;
		uint64_t seq;
		memcpy(&seq, buf, sizeof seq);
		lost += seq > next ? seq - next : 0;
		next = seq + 1;
		nng_free(buf, len);
		count++;
		t_last = now_ns();
		nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 1000); /* then stop after 1 s of silence */
	}
	printf("%llu %llu %llu\n", (unsigned long long)count, (unsigned long long)t_last,
	       (unsigned long long)lost);
	nng_close(s);
	return 0;
}

/* One control request; returns the unpacked reply's "data" in `up`. */
static const msgpack_object *request(nng_socket s, msgpack_unpacked *up, int argc,
				     const char **argv)
{
	msgpack_sbuffer b;
	msgpack_packer pk;
	msgpack_sbuffer_init(&b);
	msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	mp_kv_int(&pk, "v", 1);
	mp_str(&pk, "argv");
	msgpack_pack_array(&pk, (size_t)argc);
	for (int i = 0; i < argc; i++)
		mp_str(&pk, argv[i]);
	int rv = nng_send(s, b.data, b.size, 0);
	msgpack_sbuffer_destroy(&b);
	/* The unpacked strings point into the reply: keep it until the next request. */
	static char *rep;
	static size_t len;
	if (rep)
		nng_free(rep, len);
	rep = NULL;
	if (rv || (rv = nng_recv(s, &rep, &len, NNG_FLAG_ALLOC)))
		die("request", nng_strerror(rv));
	msgpack_unpacked_destroy(up);
	msgpack_unpacked_init(up);
	if (msgpack_unpack_next(up, rep, len, NULL) != MSGPACK_UNPACK_SUCCESS)
		die("reply", "not MessagePack");
	const msgpack_object *ok = mp_get(&up->data, "ok");
	if (!ok || ok->type != MSGPACK_OBJECT_BOOLEAN || !ok->via.boolean) {
		char *e = mp_strdup(mp_get(&up->data, "error"));
		die(argv[1], e ? e : "failed");
	}
	return mp_get(&up->data, "data");
}

static int bus_sub(const char *addr)
{
	nng_socket s;
	int rv;
	if ((rv = nng_req0_open(&s)))
		die("req0", nng_strerror(rv));
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 20000);
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 64u << 20);
	if ((rv = nng_dial(s, addr, NULL, 0)))
		die("dial", nng_strerror(rv));
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	const char *sub[] = {"events", "subscribe", "#"};
	const msgpack_object *d = request(s, &up, 3, sub);
	char id[32], cursor[32] = "0";
	snprintf(id, sizeof id, "%llu", (unsigned long long)mp_get(d, "id")->via.u64);
	printf("ready\n");
	fflush(stdout);
	uint64_t count = 0, conseq = 0, t_last = 0, lost = 0, last_seq = 0, disorder = 0;
	uint64_t idle_since = now_ns(), replies = 0;
	bool end = false;
	while (!end && now_ns() - idle_since < 10000000000ull) {
		const char *next[] = {"events", "next",	 id,	    cursor,    "--wait",
				      "1000",	"--max", "1000000", "--bytes", BATCH_BYTES};
		d = request(s, &up, 10, next);
		const msgpack_object *ev = mp_get(d, "events");
		for (uint32_t i = 0; i < ev->via.array.size; i++) {
			const msgpack_object *e = &ev->via.array.ptr[i];
			uint64_t seq = mp_get(e, "seq")->via.u64;
			disorder += seq <= last_seq;
			last_seq = seq;
			count++;
			if (mp_eq(mp_get(e, "class"), "consequence"))
				conseq++;
			if (mp_eq(mp_get(e, "topic"), "alarm/bench-end"))
				end = true;
		}
		replies++;
		if (ev->via.array.size) {
			t_last = now_ns();
			idle_since = t_last;
		}
		snprintf(cursor, sizeof cursor, "%llu",
			 (unsigned long long)mp_get(d, "cursor")->via.u64);
		lost = mp_get(d, "lost")->via.u64;
	}
	const char *unsub[] = {"events", "unsubscribe", id};
	request(s, &up, 3, unsub);
	msgpack_unpacked_destroy(&up);
	printf("%llu %llu %llu %llu %llu %llu\n", (unsigned long long)count,
	       (unsigned long long)conseq, (unsigned long long)t_last, (unsigned long long)lost,
	       (unsigned long long)disorder, (unsigned long long)replies);
	nng_close(s);
	return 0;
}

/* ---- raw nng pub/sub ---- */

static double bench_raw(const char *dir, uint64_t n, double *lost_pct)
{
	char addr[512], line[256];
	snprintf(addr, sizeof addr, "ipc://%s/raw.sock", dir);
	nng_socket s;
	int rv;
	if ((rv = nng_pub0_open(&s)) || (rv = nng_listen(s, addr, NULL, 0)))
		die("pub0", nng_strerror(rv));
	FILE *f;
	pid_t pid = spawn_sub("--raw-sub", addr, &f);
	expect_line(f, line, sizeof line, "raw subscriber");
	usleep(200000); /* let the pipe attach on this side too */
	char msg[64];
	memset(msg, 'x', sizeof msg);
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < n; i++) {
		memcpy(msg, &i, sizeof i);
		if ((rv = nng_send(s, msg, sizeof msg, 0)))
			die("send", nng_strerror(rv));
	}
	expect_line(f, line, sizeof line, "raw subscriber");
	unsigned long long count, t_last, gaps;
	if (sscanf(line, "%llu %llu %llu", &count, &t_last, &gaps) != 3 || !count)
		die("raw subscriber", "no messages received");
	fclose(f);
	waitpid(pid, NULL, 0);
	nng_close(s);
	*lost_pct = 100.0 * (double)(n - count) / (double)n;
	return (double)count / ((double)(t_last - t0) / 1e9);
}

/* ---- our path ---- */

struct ipc_run {
	struct kernel *k;
	const char *addr;
	uint64_t n;
	/* results */
	double rate;
	uint64_t received, conseq_posted, conseq_received, ingress_shed, sub_lost, disorder;
	uint64_t replies;
};

static void *coordinator(void *arg)
{
	struct ipc_run *r = arg;
	char line[256], err[256];
	FILE *f;
	pid_t pid = spawn_sub("--bus-sub", r->addr, &f);
	expect_line(f, line, sizeof line, "bus subscriber");
	msgpack_sbuffer sb;
	payload(&sb);
	/* Nine telemetry readings to one record of consequence, as a meter-heavy street. */
	static char tel[NDEV][64], alarm[NDEV][64];
	for (int i = 0; i < NDEV; i++) {
		snprintf(tel[i], sizeof tel[i], "dev/meter/m-%04d/reading/power", i);
		snprintf(alarm[i], sizeof alarm[i], "dev/smoke/sd-%04d/event/alarm", i);
	}
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < r->n; i++) {
		bool c = i % 10 == 9;
		struct bus_msg m = {c ? alarm[i % NDEV] : tel[i % NDEV], "driver-sim",
				    "hefei/baohe/binhu/yuelan", sb.data, sb.size};
		int rc = bus_post(r->k->bus, &m, err, sizeof err);
		if (rc == LINLI_EBUSY)
			r->ingress_shed++;
		else if (rc)
			die("bus_post", err);
		else if (c)
			r->conseq_posted++;
	}
	struct bus_msg end = {"alarm/bench-end", "driver-sim", "hefei", NULL, 0};
	if (bus_post(r->k->bus, &end, err, sizeof err))
		die("bus_post", err);
	r->conseq_posted++;
	expect_line(f, line, sizeof line, "bus subscriber");
	unsigned long long count, conseq, t_last, lost, disorder, replies;
	if (sscanf(line, "%llu %llu %llu %llu %llu %llu", &count, &conseq, &t_last, &lost,
		   &disorder, &replies) != 6)
		die("bus subscriber", line);
	r->replies = replies;
	fclose(f);
	waitpid(pid, NULL, 0);
	r->received = count;
	r->conseq_received = conseq;
	r->sub_lost = lost;
	r->disorder = disorder;
	r->rate = (double)count / ((double)(t_last - t0) / 1e9);
	msgpack_sbuffer_destroy(&sb);
	kernel_stop(r->k);
	return NULL;
}

static void bench_ipc(const char *dir, struct ipc_run *r)
{
	struct kernel k;
	char err[1024];
	open_kernel(&k, dir);
	k.cmds = cmd_registry_new();
	if (!k.cmds || bus_cmds_open(&k, &k.bus_remote))
		die("bus_cmds_open", "failed");
	if (control_open(&k, &k.control, err, sizeof err))
		die("control_open", err);
	r->k = &k;
	r->addr = k.cfg.listen[0];
	pthread_t t;
	pthread_create(&t, NULL, coordinator, r);
	kernel_run(&k);
	pthread_join(t, NULL);
	bus_cmds_close(k.bus_remote);
	control_close(k.control);
	bus_close(k.bus);
	cmd_registry_free(k.cmds);
	kernel_destroy(&k);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--raw-sub") == 0)
		return raw_sub(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--bus-sub") == 0)
		return bus_sub(argv[2]);
	log_set_level(LOG_ERROR);
	uint64_t n = 2000000;
	const char *e = getenv("BENCH_BUS_N");
	if (e && atoll(e) > 0)
		n = (uint64_t)atoll(e);
	char dir[] = "/tmp/linli-bench-bus-XXXXXX";
	if (!mkdtemp(dir))
		die("mkdtemp", strerror(errno));

	double inproc = bench_inproc();
	printf("bus.inproc: %.0f events/s\n", inproc);
	double linear = bench_linear();
	printf("bus.match.linear: %.0f topics/s\n", linear);
	printf("bus.match.ratio: %.1f\n", inproc / linear);
	fflush(stdout);

	double raw_lost;
	double raw = bench_raw(dir, n, &raw_lost);
	printf("bus.ipc.raw: %.0f events/s\n", raw);
	printf("bus.ipc.raw.lost: %.1f %%\n", raw_lost);
	fflush(stdout);

	struct ipc_run r = {.n = n};
	bench_ipc(dir, &r);
	printf("bus.ipc.delivered: %.0f events/s\n", r.rate);
	printf("bus.ipc.ratio: %.2f\n", r.rate / raw);
	printf("bus.ipc.lost: %llu\n", (unsigned long long)(r.conseq_posted - r.conseq_received));
	printf("bus.ipc.telemetry_shed.queue: %llu\n", (unsigned long long)r.ingress_shed);
	printf("bus.ipc.telemetry_shed.subscriber: %llu\n", (unsigned long long)r.sub_lost);
	printf("bus.ipc.events_per_reply: %.0f\n",
	       r.replies ? (double)r.received / (double)r.replies : 0.0);
	if (r.disorder)
		printf("bus.ipc.out_of_order: %llu\n", (unsigned long long)r.disorder);
	char sock[600];
	snprintf(sock, sizeof sock, "%s/raw.sock", dir);
	unlink(sock);
	rmdir(dir);
	fflush(stdout);

	/* HTTP record reads (wrk against the open-data API), beside the console. */
	const char *root = getenv("BENCH_ROOT"), *build = getenv("BENCH_BUILD");
	if (root && build) {
		char cmd[8192];
		snprintf(cmd, sizeof cmd, "bash '%s/tests/bench/bench_http.sh' '%s' '%s'", root, build,
			 root);
		if (system(cmd) != 0)
			fprintf(stderr, "bench_bus: the HTTP part failed\n");
	}
	return 0;
}
