/*
 * bench_apps (tools/bench apps) — the application families' benches, and the
 * node they run against (bench_apps.h).
 *
 *   bench_apps [FAMILY...]   governance, safety, public, government, parking (default: all,
 *                            in that order)
 *
 * Nothing else is taken: an unknown family or option is refused (exit 2)
 * with the list. Sizes come from BENCH_* variables, documented in each
 * family's file and checked by bench_env_long before anything runs. The
 * families run in a child process under one directory ($TMPDIR or /tmp),
 * which main removes however the child ends.
 */
#include "bench_apps.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "catalog.h"
#include "cmd.h"
#include "config.h"
#include "journal.h"
#include "log.h"
#include "mp.h"
#include "plugin.h"
#include "plugin_so.h"
#include "store.h"
#include "store_cmds.h"

static char top_dir[PATH_MAX];	/* the run's directory: main's, removed by main */
static char node_dir[PATH_MAX]; /* the node's directory in it while it exists */
static bool node_loop;		/* the node is wired for kernel_run (bench_node_opts) */
static int node_plugins;	/* the plugins it runs */

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_pack(linli_record *r, msgpack_sbuffer *buf)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(buf);
	msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
	record_pack(r, &pk);
	record_free(r);
}

void bench_put(struct kernel *k, const char *dataset, const char *scope, const char *id,
	       linli_record *r)
{
	char err[1024];
	msgpack_sbuffer buf;
	bench_pack(r, &buf);
	if (store_put(k->store, dataset, scope, id, buf.data, buf.size, NULL, NULL, err,
		      sizeof err))
		bench_die(dataset, err);
	msgpack_sbuffer_destroy(&buf);
}

void bench_commit_every(struct kernel *k, long *pending, long batch)
{
	if (++*pending % batch)
		return;
	if (store_batch_end(k->store))
		bench_die("store", "commit failed");
	store_changes_deliver(k->store);
}

/* The last command's reply (bench_cmd), kept until the next. */
static struct {
	int rc;
	char err[1024];
	char *data;
	size_t size;
	msgpack_unpacked up;
	bool unpacked;
} reply;

static void on_cmd_finish(struct cmd_call *call, int rc)
{
	reply.rc = rc;
	snprintf(reply.err, sizeof reply.err, "%s", call->err);
	free(reply.data);
	reply.data = NULL, reply.size = 0;
	if (!rc && call->data.size && (reply.data = malloc(call->data.size))) {
		memcpy(reply.data, call->data.data, call->data.size);
		reply.size = call->data.size;
	}
	cmd_call_free(call);
}

const msgpack_object *bench_cmd(struct kernel *k, const char *plugin, int argc,
				const char **args)
{
	char *argv[8] = {(char *)plugin};
	if (argc > 7)
		bench_die(plugin, "bench_cmd: more than 7 words");
	for (int i = 0; i < argc; i++)
		argv[i + 1] = (char *)args[i];
	struct cmd_call *c = cmd_call_new(k, argc + 1, argv);
	if (!c)
		bench_die("cmd_call_new", "out of memory");
	c->finish = on_cmd_finish;
	reply.rc = -1;
	cmd_dispatch(k->cmds, c);
	if (reply.rc)
		bench_die(argc ? args[0] : plugin, reply.err);
	if (reply.unpacked)
		msgpack_unpacked_destroy(&reply.up);
	msgpack_unpacked_init(&reply.up);
	reply.unpacked = true;
	if (!reply.size || msgpack_unpack_next(&reply.up, reply.data, reply.size, NULL) !=
			       MSGPACK_UNPACK_SUCCESS)
		bench_die(argc ? args[0] : plugin, "the reply is not MessagePack");
	return &reply.up.data;
}

const char *bench_str(const msgpack_object *o, const char *key, char *buf, size_t len)
{
	const msgpack_object *v = o && o->type == MSGPACK_OBJECT_MAP ? mp_get(o, key) : NULL;
	buf[0] = '\0';
	if (v && v->type == MSGPACK_OBJECT_STR && v->via.str.size < len) {
		memcpy(buf, v->via.str.ptr, v->via.str.size);
		buf[v->via.str.size] = '\0';
	}
	return buf;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "bench_apps: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void remove_dir(char *dir)
{
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	dir[0] = '\0';
}

static void remove_node_dir(void)
{
	remove_dir(node_dir);
}

void bench_die(const char *what, const char *why)
{
	fprintf(stderr, "bench_apps: %s: %s\n", what, why);
	remove_node_dir();
	exit(1);
}

long bench_env_long(const char *name, long def, long min, long max)
{
	const char *v = getenv(name);
	if (!v)
		return def;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (!*v || *end || errno || n < min || n > max) {
		fprintf(stderr, "bench_apps: %s='%s': must be a whole number from %ld to %ld\n",
			name, v, min, max);
		remove_node_dir();
		exit(2);
	}
	return n;
}

const char *bench_node_open(struct kernel *k, const struct bench_node_opts *o)
{
	char err[1024], data[PATH_MAX], pdir[PATH_MAX], so[PATH_MAX], text[4096];
	snprintf(node_dir, sizeof node_dir, "%s/node-XXXXXX", top_dir);
	if (!mkdtemp(node_dir)) {
		snprintf(err, sizeof err, "%s: %s", node_dir, strerror(errno));
		node_dir[0] = '\0';
		bench_die("mkdtemp", err);
	}
	snprintf(data, sizeof data, "%s/data", node_dir);
	snprintf(pdir, sizeof pdir, "%s/plugins", node_dir);
	if (mkdir(data, 0700) || mkdir(pdir, 0700))
		bench_die(node_dir, strerror(errno));
	/* The loader runs private copies of what it finds in plugin_dirs: copy the plugins. */
	const char *const sos[2] = {o->plugin_so, o->also_so};
	for (int i = 0; i < 2 && sos[i]; i++) {
		const char *base = strrchr(sos[i], '/');
		snprintf(so, sizeof so, "%s/%s", pdir, base ? base + 1 : sos[i]);
		FILE *in = fopen(sos[i], "rb"), *out = in ? fopen(so, "wb") : NULL;
		size_t n;
		while (out && (n = fread(text, 1, sizeof text, in)) > 0)
			if (fwrite(text, 1, n, out) != n)
				break;
		if (!in || !out || ferror(in) || fclose(out)) {
			snprintf(err, sizeof err, "cannot copy it to %s: %s", pdir,
				 strerror(errno));
			bench_die(sos[i], err);
		}
		fclose(in);
	}
	node_plugins = o->also_so ? 2 : 1;
	snprintf(text, sizeof text,
		 "node = { path = \"%s\"; level = \"%s\"; };\n"
		 "data_dir = \"%s\";\nlog_level = \"error\";\n"
		 "control = { listen = [ \"ipc://%s/ctl.sock\" ]; };\n"
		 "plugin_dirs = [ \"%s\" ];\n",
		 o->node, o->level, data, node_dir, pdir);
	if (kernel_init(k) || cfg_load_string(&k->cfg, text, "bench", NULL, err, sizeof err))
		bench_die("config", err);
	if (catalog_load(SRCDIR "/catalog", &k->catalog, err, sizeof err))
		bench_die("catalog", err);
	struct store_opts so_ = {.dir = data,
				 .map_size = (size_t)1 << 30,
				 .sync = o->sync,
				 .wake = o->loop ? store_cmds_wake : NULL,
				 .wake_ud = k};
	if (store_open(&so_, k->catalog, &k->store, err, sizeof err))
		bench_die("store", err);
	k->cmds = cmd_registry_new();
	if (!k->cmds)
		bench_die("commands", "out of memory");
	node_loop = o->loop;
	return node_dir;
}

void bench_node_start(struct kernel *k)
{
	char err[1024];
	if (node_loop && store_cmds_register(k)) /* the store's batch-end commit */
		bench_die("store", "cannot register its commands");
	plug_kind_add(plugin_so_kind()); /* as linlid does: .so plugins */
	if (bus_open(k, &k->bus, err, sizeof err))
		bench_die("bus", err);
	if (node_loop && journal_attach(k)) /* records of consequence are stored before delivery */
		bench_die("bus", "cannot attach the journal");
	if (plug_open(k, err, sizeof err))
		bench_die("plugins", err);
	if (plug_load_all(k) != node_plugins)
		bench_die("plugins", "a plugin did not start (BENCH_LOG=1 says why)");
}

void bench_node_close(struct kernel *k)
{
	plug_close(k);
	if (node_loop)
		journal_detach(k);
	bus_close(k->bus);
	store_close(k->store);
	cmd_registry_free(k->cmds);
	catalog_free(k->catalog);
	kernel_destroy(k);
	remove_node_dir();
}

static const struct {
	const char *name;
	void (*sizes)(void), (*run)(void);
} families[] = {{"governance", bench_governance_sizes, bench_governance},
		{"safety", bench_safety_sizes, bench_safety},
		{"public", bench_public_sizes, bench_public},
		{"government", bench_government_sizes, bench_government},
		{"parking", bench_parking_sizes, bench_parking},
		{"screen", bench_screen_sizes, bench_screen}};
#define N_FAMILIES (sizeof families / sizeof families[0])

static volatile sig_atomic_t child; /* the bench's process, for the signal forwarder */

static void forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

/*
 * Run the families in a child process and wait: whatever ends it (a
 * failure, a crash, a signal), the run's directory, and every node in it,
 * is removed here after it, and no node outlives the program.
 */
static int run_in_child(const bool *run, bool any)
{
	const char *tmpdir = getenv("TMPDIR");
	snprintf(top_dir, sizeof top_dir, "%s/linli-bench-apps-XXXXXX",
		 tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(top_dir)) {
		fprintf(stderr, "bench_apps: cannot make %s: %s\n", top_dir, strerror(errno));
		return 1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "bench_apps: fork: %s\n", strerror(errno));
		remove_dir(top_dir);
		return 1;
	}
	if (pid == 0) {
		for (size_t f = 0; f < N_FAMILIES; f++)
			if (run[f] || !any)
				families[f].run();
		fflush(NULL);
		exit(0); /* not _exit: LeakSanitizer checks the bench at exit */
	}
	child = pid;
	struct sigaction sa = {.sa_handler = forward};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	remove_dir(top_dir);
	if (WIFSIGNALED(status)) {
		fprintf(stderr,
			"bench_apps: the bench ended on signal %d (%s); its directory is "
			"removed\n",
			WTERMSIG(status), strsignal(WTERMSIG(status)));
		return 128 + WTERMSIG(status);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static int usage(FILE *f)
{
	fprintf(f, "usage: bench_apps [FAMILY...]  (families: governance, safety, public, "
		   "government, parking, screen; default all)\n");
	return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
	log_set_level(getenv("BENCH_LOG") ? LOG_DEBUG : LOG_ERROR);
	bool run[N_FAMILIES] = {false}, any = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return usage(stdout);
		size_t f = 0;
		while (f < N_FAMILIES && strcmp(argv[i], families[f].name) != 0)
			f++;
		if (f == N_FAMILIES) {
			fprintf(stderr,
				"bench_apps: %s '%s' (families: governance, safety, public, government, "
				"parking, screen)\n",
				argv[i][0] == '-' ? "unknown option" : "no family", argv[i]);
			return usage(stderr);
		}
		run[f] = any = true;
	}
	for (size_t f = 0; f < N_FAMILIES; f++)
		if (run[f] || !any)
			families[f].sizes();
	return run_in_child(run, any);
}
