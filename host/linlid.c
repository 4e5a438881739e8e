/*
 * linlid — the linli host daemon.
 *
 * main reads and validates the configuration, takes the data directory's
 * lock, opens the control socket and runs the kernel loop on the main thread
 * until SIGTERM/SIGINT. A separate thread waits for signals and posts them to
 * the kernel as events, so every state change happens on the kernel thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <sodium.h>
#include <systemd/sd-daemon.h>

#include "bus.h"
#include "bundle_cat.h"
#include "catalog.h"
#include "clock.h"
#include "cmd.h"
#include "config.h"
#include "control.h"
#include "http.h"
#include "opendata.h"
#include "core_cmds.h"
#include "journal.h"
#include "fed.h"
#include "retention.h"
#include "hal.h"
#include "hal_cmds.h"
#include "kernel.h"
#include "linli/error.h"
#include "log.h"
#include "plugin.h"
#include "plugin_lua.h"
#include "plugin_so.h"
#include "script.h"
#include "script_api.h"
#include "script_cmds.h"
#include "grants.h"
#include "store.h"
#include "store_cmds.h"
#include "tier_store.h"
#include "util.h"
#include "watchdog.h"

#define EXIT_CONFIG 2

/* Read without --config: /etc/linli/linli.cfg on a Debian install (meson option default_config). */
#ifndef LINLID_DEFAULT_CONFIG
#define LINLID_DEFAULT_CONFIG "/etc/linli/linli.cfg"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: linlid [--config FILE|--demo] [--check-config] [--foreground]\n"
		   "              [--test-clock] [--version] [--print-config]\n"
		   "       linlid [--config FILE|--demo] --init-admin USER   (password on stdin)\n"
		   "       linlid [--config FILE|--demo] --grant plugin:NAME|rule:NAME CAP...|--all\n"
		   "       linlid [--config FILE|--demo] --verify\n"
		   "  --config FILE    read FILE (default " LINLID_DEFAULT_CONFIG ")\n"
		   "  --demo           the embedded demo node instead, run from a source tree\n"
		   "                   (tools/demo): data under ./var, the simulated fleet\n"
		   "  --check-config   validate the configuration and exit (0 good, 2 bad)\n"
		   "  --init-admin U   first run: create the node's first administrator U and exit\n"
		   "  --grant S CAP... grant capabilities to plugin or rule S (daemon stopped), exit;\n"
		   "                   --all: every one its file in the configured dirs declares\n"
		   "  --verify         walk the store (daemon stopped): every checksum, every\n"
		   "                   table; exit 0 clean, 1 damaged (naming what)\n"
		   "  --foreground     stay attached to the terminal (default: detach)\n"
		   "  --test-clock     tests only: let an admin move the kernel's clock forward\n"
		   "                   (`linli clock`); never on a node in service\n"
		   "  --version        print the version and exit\n"
		   "  --print-config   print the embedded demo configuration (--demo) and exit\n");
}

/*
 * One daemon per data dir: an fcntl write lock on `linlid.lock`, which holds
 * the pid. fcntl locks vanish with the process, so a crash leaves no stale
 * lock; F_GETLK names the holder for the refusal message.
 */
static int take_lock(const char *dir, int *fd_out, char *err, size_t errlen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/linlid.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open lock file %s: %s", path, strerror(errno));
		return LINLI_EIO;
	}
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
		long pid = fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK ? (long)q.l_pid : -1;
		snprintf(err, errlen, "data dir %s is in use by another linlid (pid %ld, lock %s)", dir,
			 pid, path);
		close(fd);
		return LINLI_EBUSY;
	}
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("kernel", "cannot write pid to %s: %s", path, strerror(errno));
	*fd_out = fd;
	return 0;
}

/*
 * The node's identity: 32 hex digits made at random at first start and kept
 * in <data_dir>/node_id. Consoles key their sessions by it (linli login gets
 * it), so two daemons behind the same typed address are never confused and
 * one daemon reached by two spellings is one. Random, not derived from the
 * node's path, which an unauthenticated peer must not learn.
 */
static int node_id_load(const char *dir, char out[33], char *err, size_t errlen)
{
	char path[PATH_MAX], buf[64];
	snprintf(path, sizeof path, "%s/node_id", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		bool ok = n == 32 || (n == 33 && buf[32] == '\n');
		for (int i = 0; ok && i < 32; i++)
			ok = (buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f');
		if (!ok)
			return errf(err, errlen, LINLI_ECORRUPT,
				    "%s: not a node id (32 lowercase hex digits); remove the file "
				    "and linlid makes a new one (consoles then log in again)",
				    path);
		memcpy(out, buf, 32);
		out[32] = 0;
		return 0;
	}
	if (errno != ENOENT)
		return errf(err, errlen, LINLI_EIO, "%s: %s", path, strerror(errno));
	unsigned char r[16];
	if (sodium_init() < 0)
		return errf(err, errlen, LINLI_EIO, "%s: libsodium cannot start", path);
	randombytes_buf(r, sizeof r);
	sodium_bin2hex(out, 33, r, sizeof r);
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	snprintf(buf, sizeof buf, "%s\n", out);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	bool ok = fd >= 0 && write(fd, buf, 33) == 33 && fsync(fd) == 0;
	if (fd >= 0)
		ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return errf(err, errlen, LINLI_EIO, "%s: cannot write: %s", path, strerror(e));
	}
	return 0;
}

/*
 * systemd (Type=notify): READY once serving, STOPPING on SIGTERM,
 * RELOADING/READY around a SIGHUP, and WATCHDOG=1 from the kernel loop
 * itself at half of WatchdogSec=, so a loop stuck in anything stops the
 * pings and systemd restarts the node. Without $NOTIFY_SOCKET all no-ops.
 */
static void wd_ping(struct kernel *k, void *arg)
{
	(void)k;
	(void)arg;
	sd_notify(0, "WATCHDOG=1");
}

static void notify_ready(struct kernel *k)
{
	sd_notifyf(0, "READY=1\nSTATUS=serving %s (%s)", k->cfg.node_path,
		   tier_level_name(k->cfg.node_level));
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000) {
		uint64_t every = usec / 2000; /* ms, half the period */
		kernel_timer_add(k, every, every, wd_ping, NULL);
		log_info("kernel", "systemd watchdog: a ping every %llu ms",
			 (unsigned long long)every);
	}
}

/* ---- signals: a thread turns them into kernel events ---- */

static void on_term(struct kernel *k, void *arg)
{
	(void)arg;
	if (k->stopping)
		return;
	log_info("kernel", "stopping: no new requests, draining the queue");
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
	control_stop_listening(k->control);
	kernel_stop(k);
}

/*
 * SIGHUP: the new file is validated whole before anything changes. Settings
 * that need a restart (node, data_dir, control addresses) keep their old
 * values and say so; the rest take effect at once.
 */
static void hup_apply(struct kernel *k)
{
	char err[1024];
	struct cfg nc;
	int rc = strcmp(k->cfg.source, "<embedded>") == 0
			 ? cfg_load_string(&nc, cfg_embedded_default, "<embedded>", NULL, err,
					   sizeof err)
			 : cfg_load_file(&nc, k->cfg.source, err, sizeof err);
	if (rc) {
		log_error("config", "reload refused, keeping the running configuration: %s", err);
		return;
	}
	struct cfg *oc = &k->cfg;
	bool listen_changed = nc.n_listen != oc->n_listen;
	for (int i = 0; !listen_changed && i < nc.n_listen; i++)
		listen_changed = strcmp(nc.listen[i], oc->listen[i]) != 0;
	if (strcmp(nc.node_path, oc->node_path) != 0 || nc.node_level != oc->node_level)
		log_warn("config", "node.path/node.level changed: takes effect on restart");
	if (strcmp(nc.data_dir, oc->data_dir) != 0)
		log_warn("config", "data_dir changed: takes effect on restart");
	if (listen_changed)
		log_warn("config", "control.listen changed: takes effect on restart");
	if (!oc->tls_cert != !nc.tls_cert || !oc->tls_key != !nc.tls_key ||
	    (oc->tls_cert && strcmp(oc->tls_cert, nc.tls_cert) != 0) ||
	    (oc->tls_key && strcmp(oc->tls_key, nc.tls_key) != 0) ||
	    nc.control_idle_ms != oc->control_idle_ms)
		log_warn("config", "control.tls_cert/tls_key/idle_timeout_ms changed: takes effect "
				   "on restart");
	/* Keep what needs a restart: swap the old values into the new struct. */
	char path[sizeof nc.node_path];
	memcpy(path, nc.node_path, sizeof path);
	memcpy(nc.node_path, oc->node_path, sizeof path);
	memcpy(oc->node_path, path, sizeof path);
	enum tier_level lv = nc.node_level;
	nc.node_level = oc->node_level;
	oc->node_level = lv;
#define SWAP(f)                                                                                    \
	do {                                                                                       \
		__typeof__(nc.f) t_ = nc.f;                                                        \
		nc.f = oc->f;                                                                      \
		oc->f = t_;                                                                        \
	} while (0)
	SWAP(data_dir);
	char *lst[CFG_MAX_LISTEN];
	memcpy(lst, nc.listen, sizeof lst);
	memcpy(nc.listen, oc->listen, sizeof lst);
	memcpy(oc->listen, lst, sizeof lst);
	SWAP(n_listen);
	SWAP(tls_cert);
	SWAP(tls_key);
	SWAP(control_workers);
	SWAP(control_idle_ms);
#undef SWAP
	cfg_free(oc);
	*oc = nc;
	log_set_level((enum log_level)oc->log_level);
	if (strcmp(clock_zone(), oc->time_zone) != 0) {
		char was[CLOCK_ZONE_MAX];
		snprintf(was, sizeof was, "%s", clock_zone());
		if (clock_zone_apply(oc->time_zone) == 0)
			log_info("config", "time_zone %s -> %s", was, oc->time_zone);
	}
	bus_reconfigure(k->bus, oc);
	if (k->store)
		store_set_sync(k->store, oc->store_sync);
	if (k->store)
		store_set_group(k->store, (unsigned)oc->store_group_max,
				(unsigned)oc->store_group_commit_ms);
	wd_configure((unsigned)oc->wd_warn_ms, (unsigned)oc->wd_stop_grace_ms);
	log_info("config", "reloaded %s", oc->source);
}

static void on_hup(struct kernel *k, void *arg)
{
	(void)arg;
	sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
	hup_apply(k);
	sd_notifyf(0, "READY=1\nSTATUS=serving %s (%s)", k->cfg.node_path,
		   tier_level_name(k->cfg.node_level));
}

struct sigctx {
	struct kernel *k;
	sigset_t set;
};

static void *signal_thread(void *arg)
{
	struct sigctx *s = arg;
	for (;;) {
		int sig;
		if (sigwait(&s->set, &sig) != 0)
			continue;
		if (kernel_post(s->k, sig == SIGHUP ? on_hup : on_term, NULL) != 0)
			return NULL;
		if (sig != SIGHUP)
			wd_term(sig); /* stuck past watchdog.stop_grace_ms: the watchdog ends it */
		log_info("kernel", "received %s", sig == SIGHUP ? "SIGHUP" : sigabbrev_np(sig));
	}
}

/*
 * Detach unless --foreground: the parent waits on a pipe until the child has
 * started (or failed), so its exit code tells the caller the truth.
 */
static int detach(int *ready_fd)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		char c = 1;
		ssize_t n = read(p[0], &c, 1);
		_exit(n == 1 ? (unsigned char)c : 1);
	}
	close(p[0]);
	setsid();
	int devnull = open("/dev/null", O_RDWR);
	/* stdin and stdout go; stderr stays, as the log, wherever the caller sent it. */
	if (devnull >= 0) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		close(devnull);
	}
	*ready_fd = p[1];
	return 0;
}

static void report_ready(int *fd, unsigned char code)
{
	if (*fd >= 0) {
		ssize_t n = write(*fd, &code, 1);
		(void)n;
		close(*fd);
		*fd = -1;
	}
}

/*
 * --init-admin USER: with the daemon stopped (we hold the lock), create the
 * node's first administrator. The password comes on stdin, one line.
 */
static int init_admin_run(struct kernel *k, const char *user)
{
	char err[1024], line[512];
	if (tiers_open(k, err, sizeof err) != 0) {
		log_error("tiers", "%s", err);
		return EXIT_CONFIG;
	}
	if (isatty(STDIN_FILENO))
		fprintf(stderr, "password for %s: ", user);
	if (!fgets(line, sizeof line, stdin)) {
		log_error("tiers", "--init-admin: no password on stdin");
		return 1;
	}
	line[strcspn(line, "\r\n")] = '\0';
	int rc = tiers_bootstrap_admin(k, user, line, err, sizeof err);
	explicit_bzero(line, sizeof line);
	if (rc) {
		log_error("tiers", "--init-admin: %s", err);
		return 1;
	}
	printf("created administrator %s of %s; log in with: linli login %s\n", user,
	       k->cfg.node_path, user);
	return 0;
}

/*
 * --grant plugin:NAME|rule:NAME CAP...: with the daemon stopped, grant the
 * capabilities (provisioning, and the demo's simulator), audited as the local
 * administrator. A running daemon is granted through `linli plugins grant`.
 */
static int grant_run(struct kernel *k, const char *subject, bool all, char **caps, int n)
{
	char err[1024];
	static char declared[LINLI_MAX_CAPS][LINLI_CAP_MAX];
	const char *dv[LINLI_MAX_CAPS];
	if (all && n > 0) {
		log_error("grants", "--grant %s --all: name no capability besides", subject);
		return EXIT_CONFIG;
	}
	if (all) { /* what the plugin's or rule's file declares, found in the configured dirs */
		const char *colon = strchr(subject, ':');
		int rc = plug_find_declared(&k->cfg, strncmp(subject, "rule:", 5) == 0,
					    colon ? colon + 1 : subject, declared, LINLI_MAX_CAPS,
					    err, sizeof err);
		if (rc < 0) {
			log_error("grants", "--grant %s --all: %s", subject, err);
			return 1;
		}
		if (rc == 0) {
			printf("%s declares no capability: nothing to grant\n", subject);
			return 0;
		}
		for (int i = 0; i < rc; i++)
			dv[i] = declared[i];
		caps = (char **)dv;
		n = rc;
	}
	if (n == 0) {
		log_error("grants", "--grant %s: name at least one capability", subject);
		return EXIT_CONFIG;
	}
	if (tiers_open(k, err, sizeof err) != 0) {
		log_error("tiers", "%s", err);
		return EXIT_CONFIG;
	}
	if (grants_bootstrap(k, subject, (const char *const *)caps, n, err, sizeof err) != 0) {
		log_error("grants", "--grant: %s", err);
		return 1;
	}
	char list[GRANTS_LIST_MAX];
	const char *name = strchr(subject, ':') + 1;
	if (grants_get(k, strncmp(subject, "rule:", 5) == 0 ? GRANT_RULE : GRANT_PLUGIN, name, list,
		       sizeof list, err, sizeof err) == 0)
		printf("%s now holds: %s\n", subject, list);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'k'},
		{"foreground", no_argument, NULL, 'f'},	  {"version", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},	  {"init-admin", required_argument, NULL, 'i'},
		{"grant", required_argument, NULL, 'g'},  {"all", no_argument, NULL, 'a'},
		{"test-clock", no_argument, NULL, 't'},	  {"verify", no_argument, NULL, 'V'},
		{"demo", no_argument, NULL, 'D'},	  {"print-config", no_argument, NULL, 'P'},
		{NULL, 0, NULL, 0}};
	const char *init_admin = NULL, *grant = NULL;
	bool grant_all = false;
	const char *cfg_path = NULL;
	bool check = false, foreground = false, test_clock = false, verify = false, demo = false;
	int o;
	/* The kinds of plugin the registry loads: shared objects and Lua scripts. */
	plug_kind_add(plugin_so_kind());
	plug_kind_add(plugin_lua_kind());
	while ((o = getopt_long(argc, argv, "c:kfvhi:", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			cfg_path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'i':
			init_admin = optarg;
			foreground = true;
			break;
		case 'g':
			grant = optarg;
			foreground = true;
			break;
		case 'a':
			grant_all = true;
			break;
		case 'f':
			foreground = true;
			break;
		case 't':
			test_clock = true;
			break;
		case 'D':
			demo = true;
			break;
		case 'V':
			verify = true;
			foreground = true;
			break;
		case 'v':
			printf("linlid %s\n", LINLI_VERSION);
			return 0;
		case 'P':
			fputs(cfg_embedded_default, stdout);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_CONFIG;
		}
	}
	if ((optind != argc || grant_all) && !grant) {
		usage(stderr);
		return EXIT_CONFIG;
	}
	if (demo && cfg_path) {
		fprintf(stderr, "linlid: --demo and --config exclude each other\n");
		return EXIT_CONFIG;
	}
	/*
	 * Without --config: the installed configuration, never the demo node
	 * (a daemon that silently ran the demo in ./var would be worse than none).
	 */
	if (!demo && !cfg_path) {
		cfg_path = LINLID_DEFAULT_CONFIG;
		if (access(cfg_path, F_OK) != 0) {
			fprintf(stderr,
				"linlid: no configuration: %s: %s; pass --config FILE (an example "
				"is in the docs: linli.cfg(5)), or --demo for the demo node from a "
				"source tree\n",
				cfg_path, strerror(errno));
			return EXIT_CONFIG;
		}
	}

	struct kernel k;
	if (kernel_init(&k) != 0) {
		fprintf(stderr, "linlid: cannot initialise the kernel\n");
		return 1;
	}
	char err[1024];
	int rc = cfg_path ? cfg_load_file(&k.cfg, cfg_path, err, sizeof err)
			  : cfg_load_string(&k.cfg, cfg_embedded_default, "<embedded>", NULL, err,
					    sizeof err);
	if (!rc)
		rc = control_check_tls(&k.cfg, err, sizeof err);
	if (rc) {
		log_error("config", "%s", err);
		kernel_destroy(&k);
		return EXIT_CONFIG;
	}
	if (check) {
		printf("%s: configuration ok (node %s, %s, time zone %s)\n", k.cfg.source,
		       k.cfg.node_path, tier_level_name(k.cfg.node_level), k.cfg.time_zone);
		kernel_destroy(&k);
		return 0;
	}
	log_set_level((enum log_level)k.cfg.log_level);
	/* Before any thread starts: later reloads replace TZ in place (clock.h). */
	if (clock_zone_apply(k.cfg.time_zone) != 0) {
		log_error("config", "cannot set the time zone %s", k.cfg.time_zone);
		kernel_destroy(&k);
		return 1;
	}
	k.test_clock = test_clock;

	int ready_fd = -1;
	if (!foreground && detach(&ready_fd) != 0) {
		log_error("kernel", "cannot detach: %s", strerror(errno));
		return 1;
	}

	/* Signals are taken by the signal thread only; block them everywhere else. */
	struct sigctx sc = {.k = &k};
	sigemptyset(&sc.set);
	sigaddset(&sc.set, SIGTERM);
	sigaddset(&sc.set, SIGINT);
	sigaddset(&sc.set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sc.set, NULL);
	signal(SIGPIPE, SIG_IGN);

	int lock_fd = -1, exit_code = 1;
	bool have_st = false;
	pthread_t st;
	if ((mkdirs(k.cfg.data_dir, 0750) != 0 &&
	     errf(err, sizeof err, LINLI_EIO, "data_dir: cannot create %s: %s", k.cfg.data_dir,
		  strerror(errno))) ||
	    take_lock(k.cfg.data_dir, &lock_fd, err, sizeof err) != 0) {
		log_error("kernel", "%s", err);
		goto out;
	}
	if (verify) {
		exit_code = store_verify_cli(k.cfg.data_dir);
		goto out;
	}
	if (node_id_load(k.cfg.data_dir, k.node_id, err, sizeof err) != 0) {
		log_error("kernel", "%s", err);
		goto out;
	}
	if (catalog_load(k.cfg.catalog_dir, &k.catalog, err, sizeof err) != 0) {
		log_error("catalog", "%s", err);
		exit_code = EXIT_CONFIG;
		goto out;
	}
	if (!k.cfg.catalog_dir)
		log_warn("catalog", "no catalog_dir configured: the store has no datasets");
	else
		log_info("catalog", "%s: %d datasets, %d device classes, %d plugins",
			 k.cfg.catalog_dir, k.catalog->n_datasets, k.catalog->n_classes,
			 k.catalog->n_plugins);
	{ /* the datasets the installed bundles bring, before the store opens on them */
		char bdir[PATH_MAX];
		snprintf(bdir, sizeof bdir, "%s/bundles", k.cfg.data_dir);
		struct catalog *with;
		if (bundle_cat_build(k.catalog, bdir, NULL, NULL, 2, false, &with, err,
				     sizeof err) == 0) {
			if (with != k.catalog)
				log_info("catalog", "with the bundles' datasets: %d datasets",
					 with->n_datasets);
			catalog_free(k.catalog);
			k.catalog = with;
		} else
			log_error("catalog", "the bundles' datasets: %s", err);
	}
	struct store_opts so = {.dir = k.cfg.data_dir,
				.map_size = k.cfg.store_map_size,
				.sync = k.cfg.store_sync,
				.wake = store_cmds_wake,
				.wake_ud = &k,
				/* a node in a tree keeps the down log for its children; one with a
				   parent the change log of what goes up too */
				.origin = k.cfg.fed.url ? k.cfg.node_path : NULL,
				.down_only = !k.cfg.fed.parent_domain,
				.on_outbox = fed_on_outbox,
				.outbox_ud = &k};
	if (store_open(&so, k.catalog, &k.store, err, sizeof err) != 0) {
		log_error("store", "%s", err);
		goto out;
	}
	if (init_admin) {
		exit_code = init_admin_run(&k, init_admin);
		goto out;
	}
	if (grant) {
		exit_code = grant_run(&k, grant, grant_all, argv + optind, argc - optind);
		goto out;
	}
	k.cmds = cmd_registry_new();
	if (!k.cmds || core_cmds_register(&k) != 0 || store_cmds_register(&k) != 0 ||
	    clock_cmds_register(&k) != 0) {
		log_error("kernel", "cannot register commands");
		goto out;
	}
	if (tiers_open(&k, err, sizeof err) != 0) {
		log_error("tiers", "%s", err);
		exit_code = EXIT_CONFIG;
		goto out;
	}
	if (opendata_register_cmds(&k) != 0) {
		log_error("http", "cannot register the apikeys commands");
		goto out;
	}
	if (bus_open(&k, &k.bus, err, sizeof err) != 0) {
		log_error("bus", "cannot start the event bus: %s", err);
		goto out;
	}
	if ((rc = bus_cmds_open(&k, &k.bus_remote)) != 0) {
		log_error("bus", "cannot register the bus commands: %s", linli_strerror(rc));
		goto out;
	}
	if ((rc = journal_attach(&k)) != 0) {
		log_error("bus", "cannot attach the journal: %s", linli_strerror(rc));
		goto out;
	}
	if ((rc = retention_open(&k)) != 0) {
		log_error("retention", "cannot start: %s", linli_strerror(rc));
		goto out;
	}
	if ((rc = fed_open(&k)) != 0) {
		log_error("federation", "cannot start: %s", linli_strerror(rc));
		goto out;
	}
	if (hal_open(&k, &k.hal, err, sizeof err) != 0) {
		log_error("hal", "cannot start the device layer: %s", err);
		goto out;
	}
	if ((rc = hal_cmds_register(&k)) != 0) {
		log_error("hal", "cannot register the device commands: %s", linli_strerror(rc));
		goto out;
	}
	/*
	 * What plugin code runs now, in <data_dir>/plugins.running: plug_open
	 * counts a death for the plugin it named if the last linlid died; from
	 * here on exit() from plugin code and a stuck stop are caught.
	 */
	if (wd_open(k.cfg.data_dir, err, sizeof err) != 0)
		log_warn("plugins", "%s: running without crash-loop quarantine", err);
	if (wd_start((unsigned)k.cfg.wd_warn_ms, (unsigned)k.cfg.wd_stop_grace_ms) != 0) {
		log_error("kernel", "cannot start the watchdog thread");
		goto out;
	}
	if (plug_open(&k, err, sizeof err) != 0) {
		log_error("plugins", "%s", err);
		goto out;
	}
	script_api_init(&k); /* linli.* for every script from here on */
	struct script_rules_ops rule_ops;
	script_cmds_bus_ops(&k, &rule_ops);
	k.rules = script_rules_new(&k.cfg, &rule_ops);
	if (!k.rules || script_cmds_register(&k, k.rules) != 0) {
		log_error("script", "cannot set up the Lua rules");
		goto out;
	}
	log_info("script", "%d rule(s) loaded", script_rules_load_dirs(k.rules));
	if (control_open(&k, &k.control, err, sizeof err) != 0) {
		log_error("control", "%s", err);
		goto out;
	}
	/* Before the plugins' init: SIGTERM must reach the watchdog if one never returns. */
	if (pthread_create(&st, NULL, signal_thread, &sc) != 0) {
		log_error("kernel", "cannot start the signal thread");
		goto out;
	}
	have_st = true;
	plug_load_all(&k); /* refusals and failures are logged; the daemon carries on */
	if (k.cfg.http_listen &&
	    (http_open(&k, k.cfg.http_listen, k.cfg.http_max_body, &k.http, err, sizeof err) != 0 ||
	     opendata_register(&k, k.http) != 0 || http_start(k.http, err, sizeof err) != 0)) {
		log_error("http", "%s", err);
		goto out;
	}
	if (k.http)
		log_info("http", "open-data API on %s (port %d)", k.cfg.http_listen, http_port(k.http));
	log_info("kernel", "linlid %s serving %s (%s) from %s, config %s, time zone %s",
		 LINLI_VERSION, k.cfg.node_path, tier_level_name(k.cfg.node_level), k.cfg.data_dir,
		 k.cfg.source, k.cfg.time_zone);
	if (k.test_clock)
		log_warn("kernel", "--test-clock: admins may move this node's clock forward "
				   "(`linli clock`); a node in service never runs so");
	report_ready(&ready_fd, 0);
	notify_ready(&k);
	kernel_run(&k);
	cmd_cancel_pending(k.cmds); /* long polls and the like get "shutting down" */
	exit_code = 0;
	plug_close(&k); /* fini in reverse init order, still on the kernel thread */
	/*
	 * No plugin code runs from here on: the record is cleared (a clean
	 * stop) and the grace period ends. What remains is the kernel's own
	 * closing (sockets that drain, a backup to finish), not a stuck plugin.
	 */
	wd_close();
	log_info("kernel", "stopped");
out:
	report_ready(&ready_fd, (unsigned char)exit_code);
	kernel_close(&k);
	if (have_st) {
		/* The signal thread's next post fails on the closed kernel: it returns. */
		pthread_kill(st, SIGTERM);
		pthread_join(st, NULL);
	}
	bus_cmds_close(k.bus_remote); /* answers waiting polls: before the socket closes */
	http_close(k.http);
	opendata_close();
	control_close(k.control);
	script_rules_free(k.rules);
	plug_close(&k);
	hal_close(k.hal); /* after the drivers are gone; writes last_seen back */
	fed_close(&k);
	retention_close(&k);
	bus_close(k.bus);
	tiers_close(&k);
	wd_close(); /* no plugin code runs any more: a clean stop clears the record */
	/* Commits what is pending and waits for a running backup. */
	store_close(k.store);
	cmd_registry_free(k.cmds);
	catalog_free(k.catalog);
	if (lock_fd >= 0)
		close(lock_fd); /* the file stays: unlinking it would race a starting daemon */
	kernel_destroy(&k);
	/*
	 * Every socket is closed, but nng frees their listeners and pipes on its
	 * reaper thread: returning while it is half way through one leaves
	 * blocks only it referenced, which LeakSanitizer reports and aborts on
	 * (the rare SIGABRT after a clean stop under ASan). nng_fini waits for
	 * the reaper to drain and frees nng's globals. What it cannot help is
	 * nng 1.5.2 itself losing a listener and its pipes, in a cycle, when a
	 * connection races the socket's close (1 stop in ~50 with consoles
	 * connecting, with or without closing the listeners first); the test
	 * harness forgives exactly that report (harness.py nng_exit_race).
	 */
	nng_fini();
	return exit_code;
}
