/*
 * plugin — see plugin.h.
 *
 * The registry knows no kind of plugin: each (plugin_so.c, plugin_lua.c)
 * registers a struct plug_kind with plug_kind_add, and the registry calls
 * its ops to read a file, start, stop and unload an instance, while it owns
 * the checks that are the same for every kind (names, families, grants,
 * duplicates, requirements, cycles), the states, the order, enable, disable,
 * reload and install, and the tracking of every resource.
 *
 * Cycles are found with Tarjan's strongly connected components: a DFS that
 * only reports back edges misses members of a cycle reached through a node
 * already finished, and every member must be refused.
 */
#include "plugin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "bundle.h"
#include "bundle_cat.h"
#include "cmd.h"
#include "grants.h"
#include "kernel.h"
#include "linli/error.h"
#include "linli/version.h"
#include "log.h"
#include "mp.h"
#include "record.h"
#include "scope.h"
#include "store_cmds.h"
#include "tier_store.h"
#include "trust.h"
#include "upload.h"
#include "util.h"
#include "watchdog.h"

struct plug_res {
	const struct plug_res_ops *ops;
	void *arg;
	bool suspended;
	struct plug_res *prev, *next;
};

struct plugin {
	struct plug_registry *reg;
	const struct plug_kind *kind;
	void *kstate;	       /* the kind's own: the checked bytes or script, the loaded copy */
	char path[PATH_MAX];   /* the file in a plugin dir (or the install source) */
	char name[LINLI_NAME_MAX]; /* "" when the file gave none */
	bool have_meta;	       /* meta passed every check and it may still start */
	bool meta_ok;	       /* meta passed plug_check_meta: its strings are safe to show */
	struct linli_plugin_meta meta;
	enum plug_state state;
	char reason[768];      /* why refused / failed / blocked / disabled */
	bool stopping;		/* in plug_stop: a fault of its fini changes nothing */
	struct plug_res *res;  /* tracked resources, newest first */
	int n_res;
	uint64_t order;	       /* init sequence number while running, else 0 */
	int64_t started_ms;    /* wall clock */
	void *ud;
	bool in_init;
	char init_err[512];
	struct plug_store_state store; /* store_api.c */
	/* Installed from a bundle: its version dir (<data_dir>/bundles/NAME/VERSION), else "". */
	char bdir[PATH_MAX];
	char signer[96]; /* "KEYNAME (KEYID)", or "unsigned" */
	/* The caller while one of its handlers serves a request (plug_act_begin). */
	const struct tier_principal *acting;
	const void *acting_tag;
	char acting_scope[SCOPE_MAX + 1]; /* the narrower of its scope and the caller's */
	/* Where it acts (installed with --scope, kept in plugins.scopes); "": the node's. */
	char scope[SCOPE_MAX + 1];
	/* graph scratch (load_all) */
	int t_index, t_low;
	bool t_onstack, t_done;
};

struct plug_registry {
	struct kernel *k;
	struct plugin **v; /* scan order; reload/enable replace in place */
	int n, cap;
	int running;
	uint64_t seq, gen;
	char statepath[PATH_MAX];
	char **disabled;
	int n_disabled;
	/* Deaths of linlid while a plugin's code ran (PLUG_QUARANTINE_DEATHS). */
	char deathpath[PATH_MAX];
	struct plug_deaths *deaths;
	int n_deaths;
	/* Plugins installed for a subtree (--scope): <data_dir>/plugins.scopes. */
	char scopepath[PATH_MAX];
	struct plug_scoped *scoped;
	int n_scoped;
	char scoped_err[300]; /* the file could not be read whole: no plugin starts unscoped */
	char bundles[PATH_MAX];	 /* <data_dir>/bundles: installed bundles */
	struct trust *trust;	 /* the keys bundles are verified with (trust.h) */
	struct uploads *uploads; /* plugins upload (upload.h) */
	/* Tarjan */
	int t_next;
	struct plugin **t_stack;
	int t_sp;
};

struct plug_deaths {
	char name[LINLI_NAME_MAX];
	int count;
	char last[WD_WHAT_MAX + WD_DETAIL_MAX + 32]; /* "its timer 7": where the last one came */
};

struct plug_scoped {
	char name[LINLI_NAME_MAX];
	char scope[SCOPE_MAX + 1];
};

static const char *const families[] = {"governance", "gov_services", "public_services",
				       "safety",     "driver",	     "custom"};

const char *plug_state_name(enum plug_state s)
{
	switch (s) {
	case PLUG_REFUSED:
		return "refused";
	case PLUG_DISABLED:
		return "disabled";
	case PLUG_BLOCKED:
		return "blocked";
	case PLUG_FAILED:
		return "failed";
	case PLUG_RUNNING:
		return "running";
	case PLUG_FAULTED:
		return "faulted";
	case PLUG_QUARANTINED:
		return "quarantined";
	}
	return "?";
}

/* ---- resource tracking ---- */

struct plug_res *plug_track(struct plugin *p, const struct plug_res_ops *ops, void *arg)
{
	struct plug_res *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->ops = ops;
	r->arg = arg;
	r->next = p->res;
	if (p->res)
		p->res->prev = r;
	p->res = r;
	p->n_res++;
	return r;
}

void plug_untrack(struct plugin *p, struct plug_res *r)
{
	if (!r)
		return;
	if (r->prev)
		r->prev->next = r->next;
	else
		p->res = r->next;
	if (r->next)
		r->next->prev = r->prev;
	p->n_res--;
	free(r);
}

void plug_release(struct plugin *p, struct plug_res *r)
{
	if (!r)
		return;
	const struct plug_res_ops *ops = r->ops;
	void *arg = r->arg;
	plug_untrack(p, r);
	ops->release(arg);
}

void *plug_find_res(struct plugin *p, const struct plug_res_ops *ops,
		    bool (*match)(void *arg, const void *key), const void *key,
		    struct plug_res **res)
{
	for (struct plug_res *r = p->res; r; r = r->next)
		if (r->ops == ops && match(r->arg, key)) {
			if (res)
				*res = r;
			return r->arg;
		}
	return NULL;
}

static void release_all(struct plugin *p)
{
	while (p->res)
		plug_release(p, p->res);
}

static void suspend_all(struct plugin *p)
{
	for (struct plug_res *r = p->res; r; r = r->next)
		if (r->ops->suspend && !r->suspended && r->ops->suspend(r->arg) == 0)
			r->suspended = true;
}

static void resume_all(struct plugin *p)
{
	for (struct plug_res *r = p->res; r; r = r->next)
		if (r->suspended) {
			int rc = r->ops->resume ? r->ops->resume(r->arg) : 0;
			if (rc)
				log_error("plugins", "%s: cannot restore a %s: %s", p->name,
					  r->ops->kind, linli_strerror(rc));
			r->suspended = false;
		}
}

struct plugin *plug_from_ctx(linli_ctx *ctx) { return (struct plugin *)ctx; }

linli_ctx *plug_ctx(struct plugin *p) { return (linli_ctx *)p; }

struct kernel *plug_kernel(const struct plugin *p) { return p->reg->k; }

const char *plug_name(const struct plugin *p) { return p->name; }

void *plug_userdata(const struct plugin *p) { return p->ud; }

void plug_set_userdata(struct plugin *p, void *ud) { p->ud = ud; }

struct plug_store_state *plug_store_state(struct plugin *p) { return &p->store; }

void plug_describe_timer(char *buf, size_t len, uint64_t id, uint64_t interval_ms)
{
	if (interval_ms)
		snprintf(buf, len, "timer %llu, every %llu ms", (unsigned long long)id,
			 (unsigned long long)interval_ms);
	else
		snprintf(buf, len, "timer %llu, once", (unsigned long long)id);
}

void plug_set_error(struct plugin *p, const char *msg)
{
	if (p->in_init)
		snprintf(p->init_err, sizeof p->init_err, "%s", msg);
	else
		log_warn(p->name, "%s", msg);
}

int plug_running(const struct kernel *k) { return k->plugins ? k->plugins->running : 0; }

void plug_each(const struct kernel *k, plug_visit_fn fn, void *ud)
{
	const struct plug_registry *reg = k->plugins;
	for (int i = 0; reg && i < reg->n; i++) {
		const struct plugin *p = reg->v[i];
		fn(p->name[0] ? p->name : p->path, p->state, p->reason, ud);
	}
}

static bool is_ident(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	if (n == 0 || n == max || !(s[0] >= 'a' && s[0] <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

static bool is_token(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	if (n == 0 || n == max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

int plug_check_meta(const struct linli_plugin_meta *m, char *err, size_t errlen)
{
	if (!is_ident(m->name, sizeof m->name))
		return errf(err, errlen, LINLI_EINVAL,
			    "bad name '%.*s': must match [a-z][a-z0-9_]*, at most %d bytes",
			    (int)sizeof m->name, m->name, LINLI_NAME_MAX - 1);
	if (!is_token(m->version, sizeof m->version))
		return errf(err, errlen, LINLI_EINVAL,
			    "bad version '%.*s': printable ASCII without spaces, at most %d bytes",
			    (int)sizeof m->version, m->version, LINLI_VERSION_MAX - 1);
	bool fam = false;
	for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
		fam |= strncmp(m->family, families[i], sizeof m->family) == 0;
	if (!fam)
		return errf(err, errlen, LINLI_EINVAL,
			    "bad family '%.*s': one of governance, gov_services, public_services, "
			    "safety, driver, custom",
			    (int)sizeof m->family, m->family);
	size_t dn = strnlen(m->description, sizeof m->description);
	if (dn == sizeof m->description || !record_utf8_valid(m->description, dn))
		return errf(err, errlen, LINLI_EINVAL,
			    "bad description: not NUL-terminated UTF-8 within %d bytes",
			    LINLI_DESCRIPTION_MAX);
	bool ended = false;
	for (int i = 0; i < LINLI_MAX_REQUIRES; i++) {
		const char *r = m->requires[i];
		if (!r[0]) {
			ended = true;
			continue;
		}
		if (ended)
			return errf(err, errlen, LINLI_EINVAL,
				    "requires: entry %d follows an empty one", i + 1);
		if (!is_ident(r, LINLI_NAME_MAX))
			return errf(err, errlen, LINLI_EINVAL,
				    "requires: entry %d '%.*s' is not a plugin name", i + 1,
				    LINLI_NAME_MAX, r);
	}
	ended = false;
	for (int i = 0; i < LINLI_MAX_CAPS; i++) {
		const char *c = m->capabilities[i];
		if (!c[0]) {
			ended = true;
			continue;
		}
		if (ended)
			return errf(err, errlen, LINLI_EINVAL,
				    "capabilities: entry %d follows an empty one", i + 1);
		if (!is_token(c, LINLI_CAP_MAX))
			return errf(err, errlen, LINLI_EINVAL,
				    "capabilities: entry %d is not printable ASCII without spaces "
				    "within %d bytes",
				    i + 1, LINLI_CAP_MAX - 1);
		/* What an admin could never grant is refused now, with the reason. */
		char why[320];
		if (tier_cap_check(c, why, sizeof why) != 0)
			return errf(err, errlen, LINLI_EINVAL, "capabilities: entry %d: %s", i + 1,
				    why);
	}
	return 0;
}

/* Write len bytes to path (new file, mode 0600 .. 0644 via `mode`). */
static int write_file(const char *path, const void *buf, size_t len, mode_t mode, char *err,
		      size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return errf(err, errlen, LINLI_EIO, "cannot create %s: %s", path, strerror(errno));
	const unsigned char *b = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t w = write(fd, b + done, len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			close(fd);
			unlink(path);
			return errf(err, errlen, LINLI_EIO, "cannot write %s: %s", path,
				    strerror(e));
		}
		done += (size_t)w;
	}
	if (close(fd) != 0) {
		unlink(path);
		return errf(err, errlen, LINLI_EIO, "cannot write %s: %s", path, strerror(errno));
	}
	return 0;
}

/* ---- the registry ---- */

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* The kinds of plugin, in the order their files are scanned (process-wide: they are code). */
#define MAX_KINDS 4
static const struct plug_kind *kinds[MAX_KINDS];
static int n_kinds;

int plug_kind_add(const struct plug_kind *kind)
{
	for (int i = 0; i < n_kinds; i++)
		if (kinds[i] == kind || strcmp(kinds[i]->suffix, kind->suffix) == 0)
			return kinds[i] == kind ? 0 : LINLI_EEXIST;
	if (n_kinds == MAX_KINDS || !kind->read || !kind->start || !kind->unload ||
	    !kind->dirs || !kind->install_dir || !kind->declares || !kind->bytes)
		return LINLI_EINVAL;
	kinds[n_kinds++] = kind;
	return 0;
}

/* The kind whose files look like `path`; NULL for none. */
static const struct plug_kind *kind_of(const char *path)
{
	for (int i = 0; i < n_kinds; i++)
		if (has_suffix(path, kinds[i]->suffix))
			return kinds[i];
	return NULL;
}

/* "*.so or *.lua", for a refusal. */
static const char *kinds_suffixes(void)
{
	static char buf[64];
	buf[0] = '\0';
	for (int i = 0; i < n_kinds; i++)
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s*%s", i ? " or " : "",
			 kinds[i]->suffix);
	return buf;
}

const char *plug_path(const struct plugin *p) { return p->path; }

const struct linli_plugin_meta *plug_meta(const struct plugin *p) { return &p->meta; }

void *plug_kind_state(const struct plugin *p) { return p->kstate; }

void plug_set_kind_state(struct plugin *p, void *state) { p->kstate = state; }

uint64_t plug_next_gen(struct plugin *p) { return ++p->reg->gen; }

void plug_init_begin(struct plugin *p)
{
	p->in_init = true;
	p->init_err[0] = '\0';
}

const char *plug_init_end(struct plugin *p)
{
	p->in_init = false;
	return p->init_err;
}


static struct plugin *find_named(struct plug_registry *reg, const char *name, bool running_only)
{
	for (int i = 0; i < reg->n; i++)
		if (strcmp(reg->v[i]->name, name) == 0 &&
		    (!running_only || reg->v[i]->state == PLUG_RUNNING))
			return reg->v[i];
	return NULL;
}

/* By name (the running one first), else by file path or file name. */
static struct plugin *lookup(struct plug_registry *reg, const char *what)
{
	struct plugin *p = find_named(reg, what, true);
	if (!p)
		p = find_named(reg, what, false);
	for (int i = 0; !p && i < reg->n; i++) {
		const char *base = strrchr(reg->v[i]->path, '/');
		base = base ? base + 1 : reg->v[i]->path;
		if (strcmp(reg->v[i]->path, what) == 0 || strcmp(base, what) == 0)
			p = reg->v[i];
	}
	return p;
}

static int reg_append(struct plug_registry *reg, struct plugin *p)
{
	if (reg->n == reg->cap) {
		int cap = reg->cap ? reg->cap * 2 : 16;
		struct plugin **v = realloc(reg->v, (size_t)cap * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		reg->v = v;
		reg->cap = cap;
	}
	reg->v[reg->n++] = p;
	return 0;
}

static void reg_replace(struct plug_registry *reg, struct plugin *old, struct plugin *np)
{
	for (int i = 0; i < reg->n; i++)
		if (reg->v[i] == old)
			reg->v[i] = np;
}

/* Free what the kind holds of an entry: what it read, or what it loaded. */
static void drop_loaded(struct plugin *p)
{
	if (p->kstate)
		p->kind->unload(p);
	p->kstate = NULL;
}

static void plugin_free(struct plugin *p)
{
	if (!p)
		return;
	drop_loaded(p);
	free(p);
}


static bool is_disabled(const struct plug_registry *reg, const char *name)
{
	for (int i = 0; i < reg->n_disabled; i++)
		if (strcmp(reg->disabled[i], name) == 0)
			return true;
	return false;
}

/* Rewrite <data_dir>/plugins.disabled whole: a temp file, fsync, rename. */
static int save_disabled(struct plug_registry *reg, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", reg->statepath);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return errf(err, errlen, LINLI_EIO, "cannot write %s: %s", tmp, strerror(errno));
	fprintf(f, "# plugins disabled with 'linli plugins disable'; one name a line\n");
	for (int i = 0; i < reg->n_disabled; i++)
		fprintf(f, "%s\n", reg->disabled[i]);
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, reg->statepath) != 0) {
		int e = errno;
		unlink(tmp);
		return errf(err, errlen, LINLI_EIO, "cannot write %s: %s", reg->statepath,
			    strerror(e));
	}
	return 0;
}

static int set_disabled(struct plug_registry *reg, const char *name, bool on, char *err,
			size_t errlen)
{
	if (on == is_disabled(reg, name))
		return 0;
	if (on) {
		char **v = realloc(reg->disabled, (size_t)(reg->n_disabled + 1) * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		reg->disabled = v;
		if (!(v[reg->n_disabled] = strdup(name)))
			return LINLI_ENOMEM;
		reg->n_disabled++;
	} else {
		for (int i = 0; i < reg->n_disabled; i++)
			if (strcmp(reg->disabled[i], name) == 0) {
				free(reg->disabled[i]);
				reg->disabled[i] = reg->disabled[--reg->n_disabled];
				break;
			}
	}
	return save_disabled(reg, err, errlen);
}

static void load_disabled(struct plug_registry *reg)
{
	FILE *f = fopen(reg->statepath, "re");
	if (!f)
		return;
	char line[256];
	int lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		if (!is_ident(line, LINLI_NAME_MAX)) {
			log_warn("plugins", "%s:%d: '%s' is not a plugin name; ignored",
				 reg->statepath, lineno, line);
			continue;
		}
		char **v = realloc(reg->disabled, (size_t)(reg->n_disabled + 1) * sizeof *v);
		if (!v)
			break;
		reg->disabled = v;
		if ((v[reg->n_disabled] = strdup(line)))
			reg->n_disabled++;
	}
	fclose(f);
}

/* ---- scoped plugins: <data_dir>/plugins.scopes, "NAME SCOPE" a line ---- */

static const char *scoped_of(const struct plug_registry *reg, const char *name)
{
	for (int i = 0; i < reg->n_scoped; i++)
		if (strcmp(reg->scoped[i].name, name) == 0)
			return reg->scoped[i].scope;
	return NULL;
}

/* Rewrite the file whole: a temp file, fsync, rename. */
static int save_scoped(struct plug_registry *reg, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", reg->scopepath);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return errf(err, errlen, LINLI_EIO, "cannot write %s: %s", tmp, strerror(errno));
	fprintf(f, "# plugins installed with 'linli plugins install ... --scope PATH': they act "
		   "only in that subtree\n");
	for (int i = 0; i < reg->n_scoped; i++)
		fprintf(f, "%s %s\n", reg->scoped[i].name, reg->scoped[i].scope);
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, reg->scopepath) != 0) {
		int e = errno;
		unlink(tmp);
		return errf(err, errlen, LINLI_EIO, "cannot write %s: %s", reg->scopepath,
			    strerror(e));
	}
	return 0;
}

/* Plugin `name` keeps `scope` (replacing what it had); 0 or LINLI_ENOMEM. */
static int scoped_put(struct plug_registry *reg, const char *name, const char *scope)
{
	int i = 0;
	while (i < reg->n_scoped && strcmp(reg->scoped[i].name, name) != 0)
		i++;
	if (i == reg->n_scoped) {
		struct plug_scoped *v = realloc(reg->scoped, (size_t)(reg->n_scoped + 1) * sizeof *v);
		if (!v)
			return LINLI_ENOMEM;
		reg->scoped = v;
		reg->n_scoped++;
		snprintf(v[i].name, sizeof v[i].name, "%s", name);
	}
	snprintf(reg->scoped[i].scope, sizeof reg->scoped[i].scope, "%s", scope);
	return 0;
}

/* Keep `scope` for plugin `name` (NULL or the node's own path: none kept), saved at once. */
static int set_scoped(struct plug_registry *reg, const char *name, const char *scope, char *err,
		      size_t errlen)
{
	if (scope && strcmp(scope, reg->k->cfg.node_path) == 0)
		scope = NULL;
	const char *now = scoped_of(reg, name);
	if (now ? scope && strcmp(now, scope) == 0 : !scope)
		return 0;
	if (!scope) {
		int i = 0;
		while (i < reg->n_scoped && strcmp(reg->scoped[i].name, name) != 0)
			i++;
		reg->scoped[i] = reg->scoped[--reg->n_scoped];
	} else if (scoped_put(reg, name, scope))
		return errf(err, errlen, LINLI_ENOMEM, "out of memory keeping the scope of %s",
			    name);
	return save_scoped(reg, err, errlen);
}

/*
 * Read plugins.scopes. It fails closed: a line that is not "NAME SCOPE" (too
 * long, a name twice, a scope over SCOPE_MAX) but names a plugin gives that
 * plugin the scope "<unreadable>", which plug_start refuses; a file that
 * cannot be read whole (other than absent) keeps every plugin from starting
 * (scoped_err). Neither lets a plugin run at the node's scope by mistake.
 */
static void load_scoped(struct plug_registry *reg)
{
	FILE *f = fopen(reg->scopepath, "re");
	if (!f) {
		if (errno != ENOENT)
			snprintf(reg->scoped_err, sizeof reg->scoped_err, "%s cannot be read: %s",
				 reg->scopepath, strerror(errno));
		return;
	}
	char line[LINLI_NAME_MAX + SCOPE_MAX + 16];
	int lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		bool whole = strchr(line, '\n') != NULL || feof(f);
		if (!whole) { /* the rest of an over-long line */
			int ch;
			while ((ch = getc(f)) != EOF && ch != '\n')
				;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		char *sp = strchr(line, ' ');
		if (sp)
			*sp = '\0';
		const char *scope = sp ? sp + 1 : "";
		bool twice = scoped_of(reg, line) != NULL;
		if (!is_ident(line, LINLI_NAME_MAX)) {
			log_warn("plugins", "%s:%d: not 'NAME SCOPE'; ignored (it names no plugin)",
				 reg->scopepath, lineno);
			continue;
		}
		if (!sp || !whole || strlen(scope) > SCOPE_MAX || twice) {
			log_warn("plugins", "%s:%d: %s: %s; the plugin does not start until its line is "
					    "mended (or it is installed again with --scope)",
				 reg->scopepath, lineno, line,
				 twice ? "listed twice" : "not 'NAME SCOPE' (a scope of at most 255 bytes)");
			scope = "<unreadable>";
		}
		if (scoped_put(reg, line, scope)) {
			snprintf(reg->scoped_err, sizeof reg->scoped_err,
				 "%s: out of memory reading it", reg->scopepath);
			break;
		}
	}
	if (ferror(f) && !reg->scoped_err[0])
		snprintf(reg->scoped_err, sizeof reg->scoped_err, "%s cannot be read: %s",
			 reg->scopepath, strerror(errno));
	fclose(f);
}

/*
 * Is `scope` one a plugin may be installed for on this node: a well-formed
 * path, the node's or in its subtree? 0 or LINLI_EINVAL / LINLI_EPERM with
 * a reason naming both.
 */
static int check_plugin_scope(const struct plug_registry *reg, const char *scope, char *err,
			      size_t errlen)
{
	const char *node = reg->k->cfg.node_path;
	char why[256];
	if (!scope_check(scope, why, sizeof why))
		return errf(err, errlen, LINLI_EINVAL, "--scope '%.300s' is not a node path: %s",
			    scope, why);
	if (!scope_within(node, scope))
		return errf(err, errlen, LINLI_EPERM,
			    "--scope %s is outside this node %s: a plugin is installed for the "
			    "node or a subtree of it",
			    scope, node);
	return 0;
}

/* ---- crash-loop quarantine ---- */

static struct plug_deaths *deaths_of(struct plug_registry *reg, const char *name)
{
	for (int i = 0; i < reg->n_deaths; i++)
		if (strcmp(reg->deaths[i].name, name) == 0)
			return &reg->deaths[i];
	return NULL;
}

static int deaths_count(struct plug_registry *reg, const char *name)
{
	const struct plug_deaths *d = name[0] ? deaths_of(reg, name) : NULL;
	return d ? d->count : 0;
}

/* Rewrite <data_dir>/plugins.deaths whole (rare: a start after a death, an enable). */
static int save_deaths(struct plug_registry *reg, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof tmp, "%s.tmp", reg->deathpath);
	FILE *f = fopen(tmp, "we");
	if (!f)
		return errf(err, errlen, LINLI_EIO, "cannot write %s: %s", tmp, strerror(errno));
	fprintf(f, "# deaths of linlid while a plugin's code ran: NAME COUNT WHERE-THE-LAST-CAME\n"
		   "# at %d a plugin is quarantined; 'linli plugins enable NAME' clears its line\n",
		PLUG_QUARANTINE_DEATHS);
	for (int i = 0; i < reg->n_deaths; i++)
		if (reg->deaths[i].count > 0)
			fprintf(f, "%s %d %s\n", reg->deaths[i].name, reg->deaths[i].count,
				reg->deaths[i].last);
	bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, reg->deathpath) != 0) {
		int e = errno;
		unlink(tmp);
		return errf(err, errlen, LINLI_EIO, "cannot write %s: %s", reg->deathpath,
			    strerror(e));
	}
	return 0;
}

static struct plug_deaths *deaths_add(struct plug_registry *reg, const char *name)
{
	struct plug_deaths *d = deaths_of(reg, name);
	if (d)
		return d;
	struct plug_deaths *v = realloc(reg->deaths, (size_t)(reg->n_deaths + 1) * sizeof *v);
	if (!v)
		return NULL;
	reg->deaths = v;
	d = &v[reg->n_deaths++];
	memset(d, 0, sizeof *d);
	snprintf(d->name, sizeof d->name, "%s", name);
	return d;
}

static void load_deaths(struct plug_registry *reg)
{
	FILE *f = fopen(reg->deathpath, "re");
	if (!f)
		return;
	char line[512];
	int lineno = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		char name[LINLI_NAME_MAX + 1];
		int count = 0, off = 0;
		if (sscanf(line, "%32s %d %n", name, &count, &off) < 2 ||
		    !is_ident(name, LINLI_NAME_MAX) || count < 1) {
			log_warn("plugins", "%s:%d: not 'NAME COUNT WHERE'; ignored", reg->deathpath,
				 lineno);
			continue;
		}
		struct plug_deaths *d = deaths_add(reg, name);
		if (!d)
			break;
		d->count = count;
		snprintf(d->last, sizeof d->last, "%s", line + off);
	}
	fclose(f);
}

/*
 * The last linlid of this data dir died while plugin `f->plugin` ran
 * (watchdog.h): count it. Called once, at plug_open, before any plugin loads.
 */
static void count_death(struct plug_registry *reg, const struct wd_frame *f, long pid)
{
	if (!is_ident(f->plugin, LINLI_NAME_MAX)) {
		log_warn("plugins", "%s names no plugin ('%.31s'); ignored", "plugins.running",
			 f->plugin);
		return;
	}
	struct plug_deaths *d = deaths_add(reg, f->plugin);
	if (!d)
		return;
	d->count++;
	wd_describe(f, d->last, sizeof d->last);
	char err[PATH_MAX + 128];
	if (save_deaths(reg, err, sizeof err) != 0)
		log_error("plugins", "%s", err);
	if (d->count >= PLUG_QUARANTINE_DEATHS)
		log_error("plugins",
			  "the last linlid (pid %ld) died while plugin %s ran %s: %d deaths, it is "
			  "quarantined until 'linli plugins enable %s'",
			  pid, d->name, d->last, d->count, d->name);
	else
		log_warn("plugins",
			 "the last linlid (pid %ld) died while plugin %s ran %s: death %d; at %d it "
			 "is quarantined",
			 pid, d->name, d->last, d->count, PLUG_QUARANTINE_DEATHS);
}

/* Forget p's deaths (an admin enabled it). 0 or LINLI_EIO with err. */
static int clear_deaths(struct plug_registry *reg, const char *name, char *err, size_t errlen)
{
	struct plug_deaths *d = deaths_of(reg, name);
	if (!d || !d->count)
		return 0;
	d->count = 0;
	log_info("plugins", "%s: its count of linlid's deaths is cleared", name);
	return save_deaths(reg, err, errlen);
}

/* Is `name` the first word of a command the kernel (not a plugin) registered? */
static bool kernel_word(struct plug_registry *reg, const char *name)
{
	struct kernel *k = reg->k;
	if (!k->cmds)
		return false;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	cmd_pack_help(k->cmds, &pk);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	bool taken = false;
	size_t n = strlen(name);
	if (msgpack_unpack_next(&up, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS &&
	    up.data.type == MSGPACK_OBJECT_ARRAY)
		for (uint32_t i = 0; i < up.data.via.array.size && !taken; i++) {
			const msgpack_object *c = mp_get(&up.data.via.array.ptr[i], "command");
			if (c && c->type == MSGPACK_OBJECT_STR && c->via.str.size >= n &&
			    memcmp(c->via.str.ptr, name, n) == 0 &&
			    (c->via.str.size == n || c->via.str.ptr[n] == ' '))
				taken = true;
		}
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	/* A running plugin of that name owns its own word. */
	return taken && !find_named(reg, name, true);
}


/* Read the file at p->path with its kind: p->meta and p->name; 0 or an error in why. */
static int read_candidate(struct plugin *p, char *why, size_t whylen)
{
	int rc = p->kind->read(p, &p->meta, why, whylen);
	if (is_ident(p->meta.name, sizeof p->meta.name))
		memcpy(p->name, p->meta.name, sizeof p->name);
	return rc;
}

/* The capabilities p declares, as pointers into its meta; returns the count. */
static int declared_caps(const struct plugin *p, const char **out, int max)
{
	int n = 0;
	for (int i = 0; i < LINLI_MAX_CAPS && n < max && p->meta.capabilities[i][0]; i++)
		out[n++] = p->meta.capabilities[i];
	return n;
}

/* Has an admin granted every capability p declares? (grants.h) */
static int check_granted(struct plug_registry *reg, const struct plugin *p, char *why,
			 size_t whylen)
{
	const char *caps[LINLI_MAX_CAPS];
	int n = declared_caps(p, caps, LINLI_MAX_CAPS);
	return grants_check(reg->k, GRANT_PLUGIN, p->name, caps, n, why, whylen);
}

/*
 * A new entry for the file at `path` (a .so or a .lua), fully checked on its
 * own (not against the others), including its grants when `check_grants`.
 * state is PLUG_REFUSED with a reason, or PLUG_BLOCKED (= not yet decided)
 * with have_meta and the image or script kept for plug_start.
 */
static struct plugin *candidate(struct plug_registry *reg, const char *path, bool check_grants)
{
	struct plugin *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->reg = reg;
	p->kind = kind_of(path);
	snprintf(p->path, sizeof p->path, "%s", path);
	p->state = PLUG_REFUSED;
	char why[512];
	int rc = p->kind ? read_candidate(p, why, sizeof why)
			 : errf(why, sizeof why, LINLI_EINVAL, "no kind of plugin has files like it");
	if (!rc)
		rc = plug_check_meta(&p->meta, why, sizeof why);
	p->meta_ok = rc == 0;
	if (!rc && kernel_word(reg, p->name))
		rc = errf(why, sizeof why, LINLI_EEXIST,
			  "name '%s' is a kernel command word; choose another", p->name);
	if (!rc && check_grants)
		rc = check_granted(reg, p, why, sizeof why);
	const char *sc = rc ? NULL : scoped_of(reg, p->name);
	if (sc) /* checked by plug_start: an install with --scope replaces it first */
		snprintf(p->scope, sizeof p->scope, "%s", sc);
	if (rc) {
		snprintf(p->reason, sizeof p->reason, "%s", why);
		drop_loaded(p);
		return p;
	}
	p->have_meta = true;
	p->state = PLUG_BLOCKED;
	return p;
}

static void log_refused(const struct plugin *p)
{
	log_warn("plugins", "%s: refused: %s", p->path, p->reason);
}

__attribute__((format(printf, 2, 3))) static void refuse(struct plugin *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->reason, sizeof p->reason, fmt, ap);
	va_end(ap);
	p->state = PLUG_REFUSED;
	p->have_meta = false;
	drop_loaded(p);
	log_refused(p);
}

/* ---- bundles: what is installed under <data_dir>/bundles/NAME/VERSION ---- */

/* The first word of a small file (current, previous, installed) into out; 0 or -1. */
static int read_word(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[128] = "";
	bool ok = fgets(line, sizeof line, f) != NULL;
	fclose(f);
	line[strcspn(line, " \r\n")] = '\0';
	if (!ok || !line[0])
		return -1;
	snprintf(out, len, "%s", line);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* rm -rf of a dir under <data_dir>/bundles (never follows a link out). */
static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * Verify bundle b: by a trusted key (or, allowed, unsigned), every file
 * against the manifest, the SDK it needs. signer gets "KEY (ID)" or
 * "unsigned". 0 or LINLI_E* with err.
 */
static int verify_bundle(struct plug_registry *reg, const struct bundle *b, bool allow_unsigned,
			 char *signer, size_t slen, char *err, size_t errlen)
{
	const struct bundle_key *keys, *by = NULL;
	int n = trust_keys(reg->trust, &keys);
	int rc = bundle_verify(b, keys, n, allow_unsigned, &by, err, errlen);
	if (rc)
		return rc;
	if (b->m.sdk_major != LINLI_SDK_MAJOR || b->m.sdk_minor > LINLI_SDK_MINOR)
		return errf(err, errlen, LINLI_EVERSION,
			    "bundle %s %s needs SDK %u.%u; this linlid takes SDK %d.0 to %s",
			    b->m.name, b->m.version, b->m.sdk_major, b->m.sdk_minor,
			    LINLI_SDK_MAJOR, LINLI_SDK_VERSION);
	if (by) {
		char hex[BUNDLE_KEYID_HEX];
		bundle_hex(by->id, BUNDLE_KEYID_LEN, hex);
		snprintf(signer, slen, "%s (%s)", by->name, hex);
	} else
		snprintf(signer, slen, "unsigned");
	return 0;
}

static struct plugin *refused_entry(struct plug_registry *reg, const char *path, const char *name,
				    const char *why)
{
	struct plugin *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->reg = reg;
	snprintf(p->path, sizeof p->path, "%s", path);
	snprintf(p->bdir, sizeof p->bdir, "%s", path);
	if (is_ident(name, LINLI_NAME_MAX))
		snprintf(p->name, sizeof p->name, "%s", name);
	p->state = PLUG_REFUSED;
	snprintf(p->reason, sizeof p->reason, "%s", why);
	return p;
}

/* Do the plugin's own descriptor and bytes agree with the manifest? 0 or a reason in why. */
static int matches_manifest(const struct plugin *p, const struct bundle_manifest *m, char *why,
			    size_t whylen)
{
	if (strcmp(p->meta.name, m->name) != 0 || strcmp(p->meta.version, m->version) != 0)
		return errf(why, whylen, LINLI_EINVAL,
			    "the plugin is '%s' %s, its manifest says '%s' %s", p->meta.name,
			    p->meta.version, m->name, m->version);
	if (p->meta.sdk_major &&
	    (p->meta.sdk_major != m->sdk_major || p->meta.sdk_minor != m->sdk_minor))
		return errf(why, whylen, LINLI_EINVAL,
			    "the plugin was built for SDK %u.%u, its manifest says %u.%u",
			    p->meta.sdk_major, p->meta.sdk_minor, m->sdk_major, m->sdk_minor);
	int n = 0;
	while (n < LINLI_MAX_CAPS && p->meta.capabilities[n][0])
		n++;
	bool same = n == m->n_caps;
	for (int i = 0; same && i < n; i++) {
		bool found = false;
		for (int j = 0; j < m->n_caps && !found; j++)
			found = strcmp(p->meta.capabilities[i], m->caps[j]) == 0;
		same = found;
	}
	if (!same)
		return errf(
		    why, whylen, LINLI_EINVAL,
		    "the capabilities the plugin declares are not those its manifest lists");
	size_t len = 0;
	const void *bytes = p->kind->bytes(p, &len);
	uint8_t h[BUNDLE_HASH_LEN];
	bundle_hash(bytes, len, h);
	if (!bytes || len != m->files[m->plugin].size ||
	    memcmp(h, m->files[m->plugin].hash, sizeof h) != 0)
		return errf(why, whylen, LINLI_ECORRUPT,
			    "%s changed after it was verified (BLAKE2b-256 differs)",
			    m->files[m->plugin].name);
	return 0;
}

/*
 * A candidate for the installed bundle in version dir vdir: read and
 * verified again (the trust may have changed: a removed key verifies
 * nothing), then its plugin file read by its kind, which must be what the
 * manifest says, byte for byte. Refused (with the reason) or BLOCKED as
 * candidate() makes it; NULL only when out of memory.
 */
static struct plugin *bundle_candidate(struct plug_registry *reg, const char *vdir,
				       bool check_grants)
{
	struct bundle b;
	char why[768], signer[96], mark[64] = "";
	char path[PATH_MAX + 128];
	snprintf(path, sizeof path, "%s/installed", vdir);
	read_word(path, mark, sizeof mark);
	int rc = bundle_read_dir(vdir, &b, why, sizeof why);
	if (rc) {
		const char *slash = strrchr(vdir, '/');
		char name[LINLI_NAME_MAX] = "";
		if (slash) { /* .../bundles/NAME/VERSION */
			const char *s2 = slash;
			while (s2 > vdir && s2[-1] != '/')
				s2--;
			snprintf(name, sizeof name, "%.*s", (int)(slash - s2), s2);
		}
		return refused_entry(reg, vdir, name, why);
	}
	rc = verify_bundle(reg, &b, strcmp(mark, "unsigned") == 0, signer, sizeof signer, why,
			   sizeof why);
	if (rc) {
		struct plugin *p = refused_entry(reg, vdir, b.m.name, why);
		bundle_free(&b);
		return p;
	}
	snprintf(path, sizeof path, "%s/%s", vdir, b.m.files[b.m.plugin].name);
	struct plugin *p = candidate(reg, path, check_grants);
	if (p) {
		snprintf(p->bdir, sizeof p->bdir, "%s", vdir);
		snprintf(p->signer, sizeof p->signer, "%s", signer);
		if (p->state != PLUG_REFUSED && matches_manifest(p, &b.m, why, sizeof why) != 0)
			refuse(p, "%s", why);
	}
	bundle_free(&b);
	return p;
}

/* The bundles installed: the current version of each <data_dir>/bundles/NAME. */
static void scan_bundles(struct plug_registry *reg)
{
	struct dirent **ents;
	int n = scandir(reg->bundles, &ents, NULL, alphasort);
	if (n < 0)
		return;
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		char path[PATH_MAX * 2], ver[LINLI_VERSION_MAX];
		snprintf(path, sizeof path, "%s/%s/current", reg->bundles, name);
		if (name[0] != '.' && read_word(path, ver, sizeof ver) == 0) {
			snprintf(path, sizeof path, "%s/%s/%s", reg->bundles, name, ver);
			struct plugin *p = bundle_candidate(reg, path, true);
			if (!p || reg_append(reg, p) != 0) {
				plugin_free(p);
				log_error("plugins", "out of memory reading %s", path);
			} else if (p->state == PLUG_REFUSED)
				log_refused(p);
		}
		free(ents[i]);
	}
	free(ents);
}

/* ---- loading and unloading one instance ---- */

/*
 * Load the checked plugin with its kind and run init. On failure the state
 * is PLUG_FAILED, the reason says why, and nothing of the plugin remains:
 * neither what its init made nor what its kind loaded.
 */
static int plug_start(struct plugin *p)
{
	struct plug_registry *reg = p->reg;
	char why[512] = "", swhy[400];
	int rc = 0;
	if (reg->scoped_err[0]) {
		rc = LINLI_EIO;
		snprintf(why, sizeof why, "the plugins' scopes: %s (no plugin starts unscoped)",
			 reg->scoped_err);
	} else if (p->scope[0] &&
		   (rc = check_plugin_scope(reg, p->scope, swhy, sizeof swhy)) != 0)
		snprintf(why, sizeof why, "its scope (%s): %s", reg->scopepath, swhy);
	else
		rc = p->kind->start(p, why, sizeof why);
	if (rc) {
		release_all(p);
		drop_loaded(p);
		p->state = PLUG_FAILED;
		snprintf(p->reason, sizeof p->reason, "%s", why);
		log_warn("plugins", "%s: %s failed: %s", p->path, p->name, why);
		return rc;
	}
	p->state = PLUG_RUNNING;
	p->reason[0] = '\0';
	p->order = ++reg->seq;
	p->started_ms = wall_ms();
	reg->running++;
	reg->k->plugin_count = reg->running;
	log_info("plugins", "%s %s started (order %llu, %s)", p->name, p->meta.version,
		 (unsigned long long)p->order, p->path);
	return 0;
}

/* fini, remove what is left, unload. The caller sets the new state. */
static void plug_stop(struct plugin *p)
{
	if (p->state != PLUG_RUNNING)
		return;
	p->stopping = true;
	for (struct plug_res *r = p->res; r; r = r->next)
		if (r->ops->quiesce && !r->suspended)
			r->ops->quiesce(r->arg);
	if (p->kind->fini)
		p->kind->fini(p);
	p->stopping = false;
	int left = p->n_res;
	release_all(p);
	drop_loaded(p);
	p->order = 0;
	p->reg->running--;
	p->reg->k->plugin_count = p->reg->running;
	log_info("plugins", "%s stopped (%d resource(s) it still held removed)", p->name, left);
}

void plug_fault(struct plugin *p, const char *why)
{
	if (p->state != PLUG_RUNNING || p->stopping)
		return;
	int left = p->n_res;
	release_all(p);
	p->state = PLUG_FAULTED;
	snprintf(p->reason, sizeof p->reason, "%s", why);
	p->order = 0;
	p->reg->running--;
	p->reg->k->plugin_count = p->reg->running;
	log_warn("plugins",
		 "%s faulted, %d resource(s) it held removed; 'linli plugins reload %s' restarts "
		 "it: %s",
		 p->name, left, p->name, why);
}

/* ---- ordering: requirements, cycles ---- */

/* Is `q` (transitively, through running plugins) requiring `name`? */
static bool requires_name(struct plug_registry *reg, const struct plugin *q, const char *name,
			  int depth)
{
	if (depth > reg->n)
		return true; /* cannot happen among running plugins; be safe */
	for (int i = 0; i < LINLI_MAX_REQUIRES && q->meta.requires[i][0]; i++) {
		const char *r = q->meta.requires[i];
		if (strcmp(r, name) == 0)
			return true;
		const struct plugin *d = find_named(reg, r, true);
		if (d && requires_name(reg, d, name, depth + 1))
			return true;
	}
	return false;
}

static bool pending(const struct plugin *p) { return p->have_meta && p->state == PLUG_BLOCKED; }

static struct plugin *find_pending(struct plug_registry *reg, const char *name)
{
	for (int i = 0; i < reg->n; i++)
		if (pending(reg->v[i]) && strcmp(reg->v[i]->name, name) == 0)
			return reg->v[i];
	return NULL;
}

/* Refuse, until nothing changes, every pending plugin whose requirement is not pending. */
static void refuse_unmet(struct plug_registry *reg)
{
	bool changed = true;
	while (changed) {
		changed = false;
		for (int i = 0; i < reg->n; i++) {
			struct plugin *p = reg->v[i];
			if (!pending(p))
				continue;
			for (int j = 0; j < LINLI_MAX_REQUIRES && p->meta.requires[j][0]; j++) {
				const char *r = p->meta.requires[j];
				if (find_pending(reg, r))
					continue;
				const struct plugin *q = find_named(reg, r, false);
				if (q)
					refuse(p, "requires '%s', which was refused (%s)", r,
					       q->path);
				else
					refuse(p, "requires '%s', which is not installed", r);
				changed = true;
				break;
			}
		}
	}
}

static void tarjan(struct plug_registry *reg, struct plugin *v)
{
	v->t_index = v->t_low = ++reg->t_next;
	reg->t_stack[reg->t_sp++] = v;
	v->t_onstack = true;
	bool self = false;
	for (int j = 0; j < LINLI_MAX_REQUIRES && v->meta.requires[j][0]; j++) {
		struct plugin *w = find_pending(reg, v->meta.requires[j]);
		if (!w)
			continue;
		if (w == v)
			self = true;
		if (!w->t_index) {
			tarjan(reg, w);
			if (w->t_low < v->t_low)
				v->t_low = w->t_low;
		} else if (w->t_onstack && w->t_index < v->t_low)
			v->t_low = w->t_index;
	}
	if (v->t_low != v->t_index)
		return;
	/* v is the root of a component: pop it. */
	int start = reg->t_sp;
	do
		start--;
	while (reg->t_stack[start] != v);
	int size = reg->t_sp - start;
	if (size > 1 || self) {
		char members[512] = "";
		size_t off = 0;
		for (int i = start; i < reg->t_sp && off < sizeof members; i++)
			off += (size_t)snprintf(members + off, sizeof members - off, "%s%s",
						i > start ? ", " : "", reg->t_stack[i]->name);
		for (int i = start; i < reg->t_sp; i++)
			reg->t_stack[i]->t_done = true; /* marked; refused after the walk */
		for (int i = start; i < reg->t_sp; i++) {
			struct plugin *m = reg->t_stack[i];
			m->t_onstack = false;
			if (size == 1)
				snprintf(m->reason, sizeof m->reason, "requires itself");
			else
				snprintf(m->reason, sizeof m->reason, "dependency cycle among %s",
					 members);
		}
	} else
		v->t_onstack = false;
	reg->t_sp = start;
}

static void refuse_cycles(struct plug_registry *reg)
{
	reg->t_stack = calloc((size_t)reg->n + 1, sizeof *reg->t_stack);
	if (!reg->t_stack)
		return;
	reg->t_next = reg->t_sp = 0;
	for (int i = 0; i < reg->n; i++) {
		reg->v[i]->t_index = reg->v[i]->t_low = 0;
		reg->v[i]->t_onstack = reg->v[i]->t_done = false;
	}
	for (int i = 0; i < reg->n; i++)
		if (pending(reg->v[i]) && !reg->v[i]->t_index)
			tarjan(reg, reg->v[i]);
	for (int i = 0; i < reg->n; i++) {
		struct plugin *p = reg->v[i];
		if (pending(p) && p->t_done) {
			char why[sizeof p->reason];
			memcpy(why, p->reason, sizeof why);
			refuse(p, "%s", why);
		}
	}
	free(reg->t_stack);
	reg->t_stack = NULL;
}

/* Post-order DFS: requirements before dependents, otherwise scan order. */
static void topo(struct plug_registry *reg, struct plugin *p, struct plugin **out, int *n)
{
	if (p->t_done)
		return;
	p->t_done = true;
	for (int j = 0; j < LINLI_MAX_REQUIRES && p->meta.requires[j][0]; j++) {
		struct plugin *q = find_pending(reg, p->meta.requires[j]);
		if (q)
			topo(reg, q, out, n);
	}
	out[(*n)++] = p;
}

/* The first requirement of p that is not running, or NULL. */
static const char *unmet(struct plug_registry *reg, const struct plugin *p,
			 const struct plugin **which)
{
	for (int j = 0; j < LINLI_MAX_REQUIRES && p->meta.requires[j][0]; j++) {
		const char *r = p->meta.requires[j];
		if (!find_named(reg, r, true)) {
			*which = find_named(reg, r, false);
			return r;
		}
	}
	return NULL;
}

static void block(struct plugin *p, const char *req, const struct plugin *q)
{
	p->state = PLUG_BLOCKED;
	snprintf(p->reason, sizeof p->reason, "requires '%s', which is %s", req,
		 q ? plug_state_name(q->state) : "not installed");
	log_warn("plugins", "%s: %s not started: %s", p->path, p->name, p->reason);
}

/* Decide and start one checked candidate whose requirements were ordered before it. */
static void bring_up(struct plug_registry *reg, struct plugin *p)
{
	const struct plugin *q = NULL;
	const char *req;
	const struct plug_deaths *dd;
	if (is_disabled(reg, p->name)) {
		p->state = PLUG_DISABLED;
		snprintf(p->reason, sizeof p->reason, "disabled by an admin");
		drop_loaded(p);
		log_info("plugins", "%s: %s is disabled", p->path, p->name);
	} else if ((dd = deaths_of(reg, p->name)) && dd->count >= PLUG_QUARANTINE_DEATHS) {
		p->state = PLUG_QUARANTINED;
		snprintf(p->reason, sizeof p->reason,
			 "linlid died %d times while it ran (the last time in %s); 'linli plugins "
			 "enable %s' starts it again",
			 dd->count, dd->last, p->name);
		drop_loaded(p);
		log_warn("plugins", "%s: %s not started, quarantined: %s", p->path, p->name,
			 p->reason);
	} else if ((req = unmet(reg, p, &q))) {
		block(p, req, q);
		drop_loaded(p);
	} else
		plug_start(p);
}

/* Add the `*<suffix>` files of dir. A missing dir is logged unless `optional`. */
static int scan_dir(struct plug_registry *reg, const char *dir, const char *suffix, bool optional)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort);
	if (n < 0) {
		if (!optional || errno != ENOENT)
			log_warn("plugins", "plugin dir %s: %s; skipped", dir, strerror(errno));
		return 0;
	}
	for (int i = 0; i < n; i++) {
		const char *f = ents[i]->d_name;
		if (f[0] != '.' && has_suffix(f, suffix)) {
			char path[PATH_MAX];
			snprintf(path, sizeof path, "%s/%s", dir, f);
			struct stat st;
			if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
				free(ents[i]);
				continue;
			}
			struct plugin *p = candidate(reg, path, true);
			if (!p || reg_append(reg, p) != 0) {
				plugin_free(p);
				log_error("plugins", "out of memory reading %s", path);
			} else if (p->state == PLUG_REFUSED)
				log_refused(p);
		}
		free(ents[i]);
	}
	free(ents);
	return 0;
}

int plug_load_all(struct kernel *k)
{
	struct plug_registry *reg = k->plugins;
	if (!reg)
		return 0;
	for (int i = 0; i < n_kinds; i++) {
		char dirs[CFG_MAX_DIRS][PATH_MAX];
		bool optional;
		int nd = kinds[i]->dirs(&k->cfg, false, dirs, CFG_MAX_DIRS, &optional);
		for (int d = 0; d < nd; d++)
			scan_dir(reg, dirs[d], kinds[i]->suffix, optional);
	}
	scan_bundles(reg); /* after the packaged ones: a duplicate name is the bundle's refusal */
	/* Duplicates: the first in dir order, then file name order, wins. */
	for (int i = 0; i < reg->n; i++) {
		struct plugin *p = reg->v[i];
		for (int j = 0; pending(p) && j < i; j++)
			if (pending(reg->v[j]) && strcmp(reg->v[j]->name, p->name) == 0)
				refuse(p, "duplicate name '%s': already provided by %s", p->name,
				       reg->v[j]->path);
	}
	refuse_unmet(reg);
	refuse_cycles(reg);
	refuse_unmet(reg);
	struct plugin **order = calloc((size_t)reg->n + 1, sizeof *order);
	if (!order)
		return reg->running;
	int n = 0;
	for (int i = 0; i < reg->n; i++)
		reg->v[i]->t_done = false;
	for (int i = 0; i < reg->n; i++)
		if (pending(reg->v[i]))
			topo(reg, reg->v[i], order, &n);
	for (int i = 0; i < n; i++)
		bring_up(reg, order[i]);
	free(order);
	int refused = 0;
	for (int i = 0; i < reg->n; i++)
		refused += reg->v[i]->state != PLUG_RUNNING;
	log_info("plugins", "%d plugin(s) running, %d not (see 'linli plugins list')",
		 reg->running, refused);
	return reg->running;
}

void plug_close(struct kernel *k)
{
	struct plug_registry *reg = k->plugins;
	if (!reg)
		return;
	/* fini in the reverse order of init. */
	for (;;) {
		struct plugin *last = NULL;
		for (int i = 0; i < reg->n; i++)
			if (reg->v[i]->state == PLUG_RUNNING &&
			    (!last || reg->v[i]->order > last->order))
				last = reg->v[i];
		if (!last)
			break;
		plug_stop(last);
		last->state = PLUG_DISABLED;
	}
	if (k->cmds)
		cmd_unregister_owner(k->cmds, reg);
	trust_close(reg->trust);
	upload_close(reg->uploads);
	for (int i = 0; i < reg->n; i++)
		plugin_free(reg->v[i]);
	free(reg->v);
	for (int i = 0; i < reg->n_disabled; i++)
		free(reg->disabled[i]);
	free(reg->disabled);
	free(reg->scoped);
	free(reg->deaths);
	free(reg);
	k->plugins = NULL;
	k->plugin_count = 0;
}

/* ---- operations behind the console commands ---- */

/*
 * Can candidate np start next to the running plugins? Its requirements must
 * be running and must not (through theirs) require np: that would be a cycle.
 */
static int check_requires(struct plug_registry *reg, const struct plugin *np, char *err,
			  size_t errlen)
{
	for (int j = 0; j < LINLI_MAX_REQUIRES && np->meta.requires[j][0]; j++) {
		const char *r = np->meta.requires[j];
		const struct plugin *q = find_named(reg, r, true);
		if (strcmp(r, np->name) == 0)
			return errf(err, errlen, LINLI_EINVAL, "%s requires itself", np->name);
		if (!q) {
			q = find_named(reg, r, false);
			return errf(err, errlen, LINLI_ESTATE, "%s requires '%s', which is %s",
				    np->name, r, q ? plug_state_name(q->state) : "not installed");
		}
		if (requires_name(reg, q, np->name, 0))
			return errf(err, errlen, LINLI_EINVAL,
				    "dependency cycle: %s requires '%s', which requires %s",
				    np->name, r, np->name);
	}
	return 0;
}

/* A checked candidate for p's file that may replace p (enable, reload). */
static int fresh(struct plug_registry *reg, const struct plugin *p, struct plugin **out,
		 char *err, size_t errlen)
{
	struct plugin *np =
	    p->bdir[0] ? bundle_candidate(reg, p->bdir, false) : candidate(reg, p->path, false);
	if (!np)
		return LINLI_ENOMEM;
	int rc = 0;
	char why[768];
	if (np->state == PLUG_REFUSED)
		rc = errf(err, errlen, LINLI_EINVAL, "%s: refused: %s", np->path, np->reason);
	else if (strcmp(np->name, p->name) != 0)
		rc = errf(err, errlen, LINLI_EINVAL, "%s now holds plugin '%s', not '%s'",
			  np->path, np->name, p->name);
	else if ((rc = check_granted(reg, np, why, sizeof why)) != 0)
		errf(err, errlen, rc, "%s: refused: %s", np->path, why);
	else
		rc = check_requires(reg, np, err, errlen);
	if (rc) {
		plugin_free(np);
		return rc;
	}
	*out = np;
	return 0;
}

static int op_enable(struct plug_registry *reg, struct plugin *p, char *err, size_t errlen)
{
	if (p->state == PLUG_RUNNING)
		return 0;
	if (!p->name[0])
		return errf(err, errlen, LINLI_EINVAL, "%s has no plugin name: %s", p->path,
			    p->reason);
	int rc = set_disabled(reg, p->name, false, err, errlen);
	if (!rc)
		rc = clear_deaths(reg, p->name, err, errlen);
	if (rc)
		return rc;
	struct plugin *running = find_named(reg, p->name, true);
	if (running)
		return errf(err, errlen, LINLI_EEXIST, "a plugin named '%s' is running from %s",
			    p->name, running->path);
	struct plugin *np;
	rc = fresh(reg, p, &np, err, errlen);
	if (rc) {
		p->state = rc == LINLI_ESTATE ? PLUG_BLOCKED : PLUG_REFUSED;
		snprintf(p->reason, sizeof p->reason, "%s", err);
		return rc;
	}
	reg_replace(reg, p, np);
	plugin_free(p);
	rc = plug_start(np);
	if (rc)
		return errf(err, errlen, rc, "%s: %s", np->name, np->reason);
	return 0;
}

static int op_disable(struct plug_registry *reg, struct plugin *p, char *err, size_t errlen)
{
	if (!p->name[0])
		return errf(err, errlen, LINLI_EINVAL, "%s has no plugin name: %s", p->path,
			    p->reason);
	if (p->state == PLUG_RUNNING) {
		for (int i = 0; i < reg->n; i++) {
			struct plugin *q = reg->v[i];
			if (q == p || q->state != PLUG_RUNNING)
				continue;
			for (int j = 0; j < LINLI_MAX_REQUIRES && q->meta.requires[j][0]; j++)
				if (strcmp(q->meta.requires[j], p->name) == 0)
					return errf(err, errlen, LINLI_EBUSY,
						    "cannot disable '%s': '%s' requires it "
						    "(disable '%s' first)",
						    p->name, q->name, q->name);
		}
	}
	int rc = set_disabled(reg, p->name, true, err, errlen);
	if (rc)
		return rc;
	plug_stop(p);
	drop_loaded(p); /* a faulted script's state */
	p->state = PLUG_DISABLED;
	snprintf(p->reason, sizeof p->reason, "disabled by an admin");
	log_info("plugins", "%s disabled", p->name);
	return 0;
}

static int op_reload(struct plug_registry *reg, struct plugin *old, char *err, size_t errlen)
{
	if (old->state == PLUG_FAULTED) /* nothing runs: reloading is starting it again */
		return op_enable(reg, old, err, errlen);
	if (old->state != PLUG_RUNNING)
		return errf(err, errlen, LINLI_ESTATE, "'%s' is not running (%s); use 'plugins "
			    "enable %s'", old->name[0] ? old->name : old->path,
			    plug_state_name(old->state), old->name[0] ? old->name : old->path);
	struct plugin *np;
	int rc = fresh(reg, old, &np, err, errlen);
	if (rc) {
		log_warn("plugins", "reload of %s refused, %s %s keeps running: %s", old->name,
			 old->name, old->meta.version, err);
		return rc;
	}
	/* New first: withdraw what would clash, init the new, then retire the old. */
	suspend_all(old);
	rc = plug_start(np);
	if (rc) {
		resume_all(old);
		errf(err, errlen, rc, "reload of %s failed, %s %s keeps running: %s", old->name,
		     old->name, old->meta.version, np->reason);
		plugin_free(np);
		return rc;
	}
	reg_replace(reg, old, np);
	plug_stop(old);
	log_info("plugins", "%s reloaded: %s -> %s", np->name, old->meta.version,
		 np->meta.version);
	plugin_free(old);
	return 0;
}

/*
 * Keep `scope` (NULL: the node's) for np's name before np starts; *old gets
 * what was kept, for scope_undo when it does not start. 0 or LINLI_E*.
 */
static int scope_keep(struct plug_registry *reg, struct plugin *np, const char *scope,
		      char old[SCOPE_MAX + 1], char *err, size_t errlen)
{
	const char *was = scoped_of(reg, np->name);
	snprintf(old, SCOPE_MAX + 1, "%s", was ? was : "");
	snprintf(np->scope, sizeof np->scope, "%s", scope ? scope : "");
	return set_scoped(reg, np->name, scope, err, errlen);
}

static void scope_undo(struct plug_registry *reg, const char *name, const char *old)
{
	char err[256];
	if (set_scoped(reg, name, old[0] ? old : NULL, err, sizeof err) != 0)
		log_error("plugins", "%s: %s", name, err);
}

/*
 * Install the plugin file at `src`. With `grant`, `who` (an admin) grants
 * every capability it declares first; without, each must be granted already.
 * `scope` (checked; NULL: the node's) is where it will act.
 */
static int op_install(struct plug_registry *reg, const char *src, const struct tier_principal *who,
		      bool grant, const char *scope, struct plugin **out, char *err,
		      size_t errlen)
{
	struct kernel *k = reg->k;
	if (src[0] != '/')
		return errf(err, errlen, LINLI_EINVAL,
			    "'%s': give an absolute path (the daemon reads it, not the console)",
			    src);
	const struct plug_kind *kind = kind_of(src);
	if (!kind)
		return errf(err, errlen, LINLI_EINVAL, "'%s': not a plugin file (%s)", src,
			    kinds_suffixes());
	char dir[PATH_MAX], dest[PATH_MAX + 64], part[PATH_MAX + 80];
	int rc = kind->install_dir(&k->cfg, dir, sizeof dir, err, errlen);
	if (rc)
		return rc;
	struct plugin *np = candidate(reg, src, false);
	if (!np)
		return LINLI_ENOMEM;
	struct plugin *same = np->name[0] ? find_named(reg, np->name, false) : NULL;
	if (np->state == PLUG_REFUSED)
		rc = errf(err, errlen, LINLI_EINVAL, "%s: refused: %s", src, np->reason);
	else if (same)
		rc = errf(err, errlen, LINLI_EEXIST,
			  "plugin '%s' is already installed (%s, %s); replace that file and use "
			  "'plugins reload %s'",
			  np->name, same->path, plug_state_name(same->state), np->name);
	else
		rc = check_requires(reg, np, err, errlen);
	char why[768];
	if (!rc && !grant && (rc = check_granted(reg, np, why, sizeof why)) != 0)
		errf(err, errlen, rc, "%s: refused: %s (or install it with --grant)", src, why);
	if (!rc && grant) {
		const char *caps[LINLI_MAX_CAPS];
		int n = declared_caps(np, caps, LINLI_MAX_CAPS);
		if (n)
			rc = grants_change(k, who, GRANT_PLUGIN, np->name, caps, n, true, err,
					   errlen);
	}
	if (rc) {
		plugin_free(np);
		return rc;
	}
	snprintf(dest, sizeof dest, "%s/%s%s", dir, np->name, kind->suffix);
	snprintf(part, sizeof part, "%s/.%s%s.part", dir, np->name, kind->suffix);
	if (access(dest, F_OK) == 0) {
		plugin_free(np);
		return errf(err, errlen, LINLI_EEXIST, "%s exists already", dest);
	}
	unlink(part);
	size_t len = 0;
	const void *bytes = kind->bytes(np, &len);
	rc = write_file(part, bytes, len, 0644, err, errlen);
	if (!rc && rename(part, dest) != 0) {
		rc = errf(err, errlen, LINLI_EIO, "cannot install %s: %s", dest, strerror(errno));
		unlink(part);
	}
	if (rc) {
		plugin_free(np);
		return rc;
	}
	if (kind->run_installed) { /* what runs is the installed file's, named by its path */
		plugin_free(np);
		np = candidate(reg, dest, true);
		if (!np || np->state == PLUG_REFUSED) {
			rc = np ? errf(err, errlen, LINLI_EIO, "%s: refused after install: %s",
				       dest, np->reason)
				: LINLI_ENOMEM;
			unlink(dest);
			plugin_free(np);
			return rc;
		}
	}
	snprintf(np->path, sizeof np->path, "%s", dest);
	char was[SCOPE_MAX + 1];
	if ((rc = scope_keep(reg, np, scope, was, err, errlen)) != 0) {
		unlink(dest);
		plugin_free(np);
		return rc;
	}
	rc = plug_start(np);
	if (rc) {
		unlink(dest); /* nothing installed: the admin can fix it and try again */
		scope_undo(reg, np->name, was);
		errf(err, errlen, rc, "%s did not start, so it was not installed: %s", np->name,
		     np->reason);
		plugin_free(np);
		return rc;
	}
	if ((rc = reg_append(reg, np)) != 0) {
		plug_stop(np);
		unlink(dest);
		scope_undo(reg, np->name, was);
		plugin_free(np);
		return rc;
	}
	log_info("plugins", "%s installed from %s to %s", np->name, src, dest);
	*out = np;
	return 0;
}

/* ---- bundles: install, upgrade, rollback, remove ---- */

static void stop_dependents(struct plug_registry *reg, const struct plugin *p, const char *how);

static void bundle_audit(struct plug_registry *reg, const struct tier_principal *who,
			 const char *action, const char *name, const char *detail)
{
	char object[LINLI_NAME_MAX + 8];
	snprintf(object, sizeof object, "plugin:%s", name);
	tiers_audit(reg->k, who, action, reg->k->cfg.node_path, object, "allowed", detail);
	log_info("plugins", "%s: %s %s by %s", action, name, detail,
		 who && who->name ? who->name : "-");
}

/* Read the bundle `src`: "@ID" (an upload), an absolute directory or FILE.bundle. */
static int read_bundle(struct plug_registry *reg, const char *src, const struct tier_principal *who,
		       struct bundle *b, char *err, size_t errlen)
{
	unsigned char *data = NULL;
	size_t len = 0;
	int rc;
	if (src[0] == '@') {
		rc = upload_take(reg->uploads, src, who, &data, &len, err, errlen);
	} else if (src[0] != '/') {
		return errf(err, errlen, LINLI_EINVAL,
			    "'%s': give an absolute path the daemon can read, or let the console "
			    "upload a local FILE.bundle",
			    src);
	} else if (is_dir(src)) {
		return bundle_read_dir(src, b, err, errlen);
	} else {
		int fd = open(src, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0)
			return errf(err, errlen, LINLI_EIO, "cannot open %s: %s", src,
				    strerror(errno));
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
		    (uint64_t)st.st_size > BUNDLE_MAX) {
			close(fd);
			return errf(err, errlen, LINLI_EINVAL,
				    "%s: not a regular file within %u bytes", src, BUNDLE_MAX);
		}
		len = (size_t)st.st_size;
		data = malloc(len ? len : 1);
		size_t got = 0;
		while (data && got < len) {
			ssize_t r = read(fd, data + got, len - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		close(fd);
		rc = !data	  ? LINLI_ENOMEM
		     : got != len ? errf(err, errlen, LINLI_EIO, "cannot read %s", src)
				  : 0;
	}
	if (!rc)
		rc = bundle_read_mem(data, len, b, err, errlen);
	free(data);
	return rc;
}

/* Write verified bundle b as <bundles>/NAME/VERSION (replacing a stale one); vdir out. */
static int store_bundle(struct plug_registry *reg, const struct bundle *b, const char *signer,
			char *vdir, size_t vlen, char *err, size_t errlen)
{
	char ndir[PATH_MAX], part[PATH_MAX + 80], path[PATH_MAX + 200];
	snprintf(ndir, sizeof ndir, "%s/%s", reg->bundles, b->m.name);
	int rc = mkdirs(ndir, 0755);
	if (rc)
		return errf(err, errlen, LINLI_EIO, "cannot make %s: %s", ndir, strerror(errno));
	snprintf(part, sizeof part, "%s/.%s.part", ndir, b->m.version);
	snprintf(vdir, vlen, "%s/%s", ndir, b->m.version);
	rm_tree(part);
	if (mkdir(part, 0755) != 0)
		return errf(err, errlen, LINLI_EIO, "cannot make %s: %s", part, strerror(errno));
	snprintf(path, sizeof path, "%s/manifest", part);
	rc = write_file(path, b->manifest, b->manifest_len, 0644, err, errlen);
	if (!rc && b->sig) {
		snprintf(path, sizeof path, "%s/manifest.sig", part);
		rc = write_file(path, b->sig, b->sig_len, 0644, err, errlen);
	}
	for (int i = 0; !rc && i < b->n_files; i++) {
		snprintf(path, sizeof path, "%s/%s", part, b->files[i].name);
		rc = write_file(path, b->files[i].data, b->files[i].len, 0644, err, errlen);
	}
	if (!rc) {
		snprintf(path, sizeof path, "%s/installed", part);
		const char *mark = strcmp(signer, "unsigned") == 0 ? "unsigned\n" : "signed\n";
		rc = write_file(path, mark, strlen(mark), 0644, err, errlen);
	}
	if (!rc) {
		rm_tree(vdir);
		if (rename(part, vdir) != 0)
			rc = errf(err, errlen, LINLI_EIO, "cannot install %s: %s", vdir,
				  strerror(errno));
	}
	if (rc)
		rm_tree(part);
	return rc;
}

static void bundle_path(const struct plug_registry *reg, const char *name, const char *file,
			char *out, size_t len)
{
	snprintf(out, len, "%s/%s/%s", reg->bundles, name, file);
}

/*
 * Put np (checked, granted) in the place of old (NULL: a new entry) and
 * start it: a running old one keeps running until the new one's init
 * passed, as a reload. A disabled name stays disabled. 0 or LINLI_E* with
 * err; on failure old is as it was and np freed.
 */
static int swap_in(struct plug_registry *reg, struct plugin *old, struct plugin *np, char *err,
		   size_t errlen)
{
	int rc;
	if (!old) {
		if ((rc = plug_start(np)) != 0) {
			errf(err, errlen, rc, "%s did not start, so it was not installed: %s",
			     np->name, np->reason);
			plugin_free(np);
			return rc;
		}
		if ((rc = reg_append(reg, np)) != 0) {
			plug_stop(np);
			plugin_free(np);
		}
		return rc;
	}
	if (old->state == PLUG_RUNNING) {
		suspend_all(old);
		if ((rc = plug_start(np)) != 0) {
			resume_all(old);
			errf(err, errlen, rc, "%s %s did not start, %s %s keeps running: %s",
			     np->name, np->meta.version, old->name, old->meta.version, np->reason);
			plugin_free(np);
			return rc;
		}
		reg_replace(reg, old, np);
		plug_stop(old);
		plugin_free(old);
		return 0;
	}
	if (is_disabled(reg, np->name)) {
		np->state = PLUG_DISABLED;
		snprintf(np->reason, sizeof np->reason, "disabled by an admin");
		drop_loaded(np);
	} else if ((rc = plug_start(np)) != 0) {
		errf(err, errlen, rc, "%s %s did not start: %s", np->name, np->meta.version,
		     np->reason);
		plugin_free(np);
		return rc;
	}
	reg_replace(reg, old, np);
	plugin_free(old);
	return 0;
}

/* Grant (grant) or check what np declares. */
static int grant_or_check(struct plug_registry *reg, const struct plugin *np,
			  const struct tier_principal *who, bool grant, char *err, size_t errlen)
{
	char why[768];
	if (!grant) {
		int rc = check_granted(reg, np, why, sizeof why);
		if (rc)
			errf(err, errlen, rc, "%s: refused: %s (or install it with --grant)",
			     np->name, why);
		return rc;
	}
	const char *caps[LINLI_MAX_CAPS];
	int n = declared_caps(np, caps, LINLI_MAX_CAPS);
	return n ? grants_change(reg->k, who, GRANT_PLUGIN, np->name, caps, n, true, err, errlen)
		 : 0;
}

/*
 * plugins install|upgrade BUNDLE: upgrade replaces the installed one by a
 * higher version. `scope` (checked; NULL: not given) is where it acts: an
 * install without one acts at the node, an upgrade without one keeps its own.
 */
static int op_bundle(struct plug_registry *reg, const char *src, const struct tier_principal *who,
		     bool grant, bool allow_unsigned, bool upgrade, const char *scope,
		     const char *const *migrate, int n_migrate, struct plugin **out, char *err,
		     size_t errlen)
{
	struct bundle b;
	int rc = read_bundle(reg, src, who, &b, err, errlen);
	if (rc)
		return rc;
	char signer[96], vdir[PATH_MAX], cur[LINLI_VERSION_MAX] = "", path[PATH_MAX * 2];
	rc = verify_bundle(reg, &b, allow_unsigned, signer, sizeof signer, err, errlen);
	if (rc) { /* an untrusted or altered bundle offered to the node is worth a record */
		char object[LINLI_NAME_MAX + 8];
		snprintf(object, sizeof object, "plugin:%s", b.m.name);
		tiers_audit(reg->k, who, upgrade ? "plugins.upgrade" : "plugins.install",
			    reg->k->cfg.node_path, object, "denied", err);
	}
	struct plugin *same = NULL;
	if (!rc) {
		same = find_named(reg, b.m.name, true);
		if (!same)
			same = find_named(reg, b.m.name, false);
		bundle_path(reg, b.m.name, "current", path, sizeof path);
		read_word(path, cur, sizeof cur);
	}
	if (rc)
		;
	else if (!upgrade && same)
		rc = errf(err, errlen, LINLI_EEXIST,
			  "plugin '%s' is installed already (%s, %s); 'plugins upgrade' replaces "
			  "it with a higher version",
			  b.m.name, same->path, plug_state_name(same->state));
	else if (upgrade && !same)
		rc = errf(err, errlen, LINLI_ENOENT,
			  "no plugin '%s' is installed; 'plugins install' installs it", b.m.name);
	else if (upgrade && !same->bdir[0])
		rc = errf(err, errlen, LINLI_EINVAL,
			  "'%s' is not from a bundle (%s): replace its file and 'plugins reload "
			  "%s'",
			  b.m.name, same->path, b.m.name);
	else if (upgrade && cur[0] && bundle_version_cmp(b.m.version, cur) <= 0)
		rc = errf(err, errlen, LINLI_EVERSION,
			  "%s %s is not above the installed %s: refused (a lower or equal version "
			  "is never an upgrade; 'plugins rollback %s' returns to the previous one)",
			  b.m.name, b.m.version, cur, b.m.name);
	if (!rc)
		rc = store_bundle(reg, &b, signer, vdir, sizeof vdir, err, errlen);
	char bname[LINLI_NAME_MAX], cat_prev[BUNDLE_CAT_MARK_MAX] = "";
	snprintf(bname, sizeof bname, "%s", b.m.name);
	bundle_free(&b);
	if (rc)
		return rc;
	/*
	 * The plugin is read and checked (refused, requirements, grants) before its
	 * datasets go into the catalog: a migration (--migrate) commits the stored
	 * records to the new schema, which no refusal after it could take back.
	 */
	struct plugin *np = bundle_candidate(reg, vdir, false);
	if (!np)
		rc = LINLI_ENOMEM;
	else if (np->state == PLUG_REFUSED)
		rc = errf(err, errlen, LINLI_EINVAL, "%s: refused: %s", vdir, np->reason);
	else if (!same && (rc = check_requires(reg, np, err, errlen)) != 0)
		;
	else
		rc = grant_or_check(reg, np, who, grant, err, errlen);
	if (rc) {
		plugin_free(np);
		rm_tree(vdir);
		return rc;
	}
	/* its datasets into the catalog before it starts: it uses them */
	if ((rc = bundle_cat_apply(reg->k, reg->bundles, bname, vdir, migrate, n_migrate, cat_prev,
				   sizeof cat_prev, err, errlen))) {
		plugin_free(np);
		rm_tree(vdir);
		return rc;
	}
	if (!rc) {
		const char *name = np->name;
		char ver[LINLI_VERSION_MAX], detail[256];
		snprintf(ver, sizeof ver, "%s", np->meta.version);
		char nm[LINLI_NAME_MAX], was[SCOPE_MAX + 1] = "";
		snprintf(nm, sizeof nm, "%s", name);
		if (upgrade && !scope) /* kept: the old one's */
			snprintf(np->scope, sizeof np->scope, "%s", same->scope);
		else
			rc = scope_keep(reg, np, scope, was, err, errlen);
		snprintf(detail, sizeof detail, "%s%s%s, %s%s%s%s", cur[0] && upgrade ? cur : "",
			 cur[0] && upgrade ? " -> " : "", ver,
			 strcmp(signer, "unsigned") == 0 ? "unsigned, allowed with --unsigned"
							 : "signed by ",
			 strcmp(signer, "unsigned") == 0 ? "" : signer,
			 np->scope[0] ? ", scope " : "", np->scope);
		if (!rc) {
			rc = swap_in(reg, upgrade ? same : NULL, np, err, errlen);
			if (rc && !(upgrade && !scope))
				scope_undo(reg, nm, was);
		} else
			plugin_free(np);
		np = NULL; /* swap_in owns it */
		if (!rc) {
			bundle_path(reg, nm, "current", path, sizeof path);
			char line[LINLI_VERSION_MAX + 2];
			snprintf(line, sizeof line, "%s\n", ver);
			rc = write_file_atomic(path, line, strlen(line), 0640, err, errlen);
			if (!rc && upgrade && cur[0]) {
				bundle_path(reg, nm, "previous", path, sizeof path);
				snprintf(line, sizeof line, "%s\n", cur);
				rc = write_file_atomic(path, line, strlen(line), 0640, err, errlen);
			}
			if (!rc)
				bundle_audit(reg, who,
					     upgrade ? "plugins.upgrade" : "plugins.install", nm,
					     detail);
			*out = find_named(reg, nm, false);
			return rc;
		}
	}
	plugin_free(np);
	if (n_migrate > 0) {
		/* The stored records were migrated to the new schema (--migrate): the old schema
		   is never put back over them. The catalog keeps the new version's datasets and
		   their files stay; the running version is unchanged; an upgrade again replaces
		   the files. */
		size_t el = strlen(err);
		snprintf(err + el, errlen > el ? errlen - el : 0,
			 " (the stored records were migrated: the catalog keeps the new version's "
			 "datasets, %s stays)",
			 vdir);
		log_warn("plugins", "upgrade of %s failed after its migrations: %s", bname, err);
		return rc;
	}
	bundle_cat_restore(reg->k, reg->bundles, bname, cat_prev);
	rm_tree(vdir); /* nothing installed (never the current version's dir): try again */
	return rc;
}

/* The entry of bundle NAME (the running one first), or NULL with err. */
static struct plugin *bundle_entry(struct plug_registry *reg, const char *name, char *err,
				   size_t errlen, int *rc)
{
	struct plugin *p = find_named(reg, name, true);
	if (!p)
		p = find_named(reg, name, false);
	if (!p)
		*rc = errf(err, errlen, LINLI_ENOENT, "no plugin named '%.64s'; see 'plugins list'",
			   name);
	else if (!p->bdir[0])
		*rc = errf(err, errlen, LINLI_EINVAL,
			   "'%s' was not installed from a bundle (%s): a packaged plugin goes with "
			   "its package; 'plugins disable %s' stops it",
			   name, p->path, name);
	return p && p->bdir[0] ? p : NULL;
}

static int op_rollback(struct plug_registry *reg, const char *name,
		       const struct tier_principal *who, char *err, size_t errlen)
{
	int rc = 0;
	struct plugin *old = bundle_entry(reg, name, err, errlen, &rc);
	if (!old)
		return rc;
	char path[PATH_MAX * 2], prev[LINLI_VERSION_MAX], cur[LINLI_VERSION_MAX] = "",
							  vdir[PATH_MAX * 2];
	bundle_path(reg, old->name, "previous", path, sizeof path);
	if (read_word(path, prev, sizeof prev) != 0)
		return errf(err, errlen, LINLI_ENOENT,
			    "%s has no previous version to return to (only an upgrade leaves one)",
			    old->name);
	bundle_path(reg, old->name, "current", path, sizeof path);
	read_word(path, cur, sizeof cur);
	bundle_path(reg, old->name, prev, vdir, sizeof vdir);
	char nm[LINLI_NAME_MAX], line[LINLI_VERSION_MAX + 2], detail[128];
	snprintf(nm, sizeof nm, "%s", old->name);
	/* its datasets back to the previous version's before its plugin is read (bundle_cat.h) */
	char cat_prev[BUNDLE_CAT_MARK_MAX] = "", cerr[1024];
	if ((rc = bundle_cat_rollback(reg->k, reg->bundles, nm, prev, cat_prev, sizeof cat_prev,
				      cerr, sizeof cerr)) != 0)
		return errf(err, errlen, rc, "%s %s -> %s: refused: %s", nm, cur, prev, cerr);
	struct plugin *np = bundle_candidate(reg, vdir, false);
	if (!np)
		rc = LINLI_ENOMEM;
	else if (np->state == PLUG_REFUSED)
		rc = errf(err, errlen, LINLI_EINVAL, "%s %s: refused: %s", nm, prev, np->reason);
	else
		rc = grant_or_check(reg, np, who, false, err, errlen);
	if (rc) {
		plugin_free(np);
		bundle_cat_restore(reg->k, reg->bundles, nm, cat_prev);
		return rc;
	}
	snprintf(np->scope, sizeof np->scope, "%s", old->scope); /* kept */
	if ((rc = swap_in(reg, old, np, err, errlen)) != 0) {
		bundle_cat_restore(reg->k, reg->bundles, nm, cat_prev);
		return rc;
	}
	bundle_path(reg, nm, "current", path, sizeof path);
	snprintf(line, sizeof line, "%s\n", prev);
	rc = write_file_atomic(path, line, strlen(line), 0640, err, errlen);
	bundle_path(reg, nm, "previous", path, sizeof path);
	snprintf(line, sizeof line, "%s\n", cur);
	if (!rc && cur[0])
		rc = write_file_atomic(path, line, strlen(line), 0640, err, errlen);
	snprintf(detail, sizeof detail, "%s -> %s", cur, prev);
	if (!rc)
		bundle_audit(reg, who, "plugins.rollback", nm, detail);
	return rc;
}

/* plugins remove NAME [--purge]: packs {name, version, purged, stopped}. */
static int op_remove(struct plug_registry *reg, struct cmd_call *call, const char *name, bool purge)
{
	int rc = 0;
	struct plugin *p = bundle_entry(reg, name, call->err, sizeof call->err, &rc);
	if (!p)
		return rc;
	char nm[LINLI_NAME_MAX], ver[LINLI_VERSION_MAX] = "", path[PATH_MAX * 2], detail[128];
	snprintf(nm, sizeof nm, "%s", p->name);
	/* --purge drops its device classes: refused while devices use them (nothing removed) */
	char uerr[700];
	if (purge && (rc = bundle_cat_in_use(reg->k, nm, uerr, sizeof uerr)) != 0)
		return cmd_fail(call, rc, "plugins remove %s --purge: refused: %s", nm, uerr);
	if (p->meta_ok)
		snprintf(ver, sizeof ver, "%s", p->meta.version);
	bundle_path(reg, nm, "current", path, sizeof path);
	if (!ver[0])
		read_word(path, ver, sizeof ver);
	if (unlink(path) != 0 && errno != ENOENT)
		return cmd_fail(call, LINLI_EIO, "cannot remove %s: %s", path, strerror(errno));
	bundle_path(reg, nm, "previous", path, sizeof path);
	unlink(path);
	/* The plugins that require it stop, saying why. */
	if (p->state == PLUG_RUNNING)
		stop_dependents(reg, p, "removed");
	plug_stop(p);
	for (int i = 0; i < reg->n; i++)
		if (reg->v[i] == p) {
			memmove(&reg->v[i], &reg->v[i + 1],
				(size_t)(reg->n - i - 1) * sizeof *reg->v);
			reg->n--;
			break;
		}
	plugin_free(p);
	/* Every other entry of the name (a refused duplicate) goes too. */
	for (struct plugin *q; (q = find_named(reg, nm, false)) && q->bdir[0];) {
		for (int i = 0; i < reg->n; i++)
			if (reg->v[i] == q) {
				memmove(&reg->v[i], &reg->v[i + 1],
					(size_t)(reg->n - i - 1) * sizeof *reg->v);
				reg->n--;
				break;
			}
		plugin_free(q);
	}
	int pds = 0;
	uint64_t precs = 0;
	char perr[512] = "";
	if (purge) { /* its datasets and their records go too (kept without --purge) */
		rc = bundle_cat_purge(reg->k, reg->bundles, nm, &pds, &precs, perr, sizeof perr);
		snprintf(path, sizeof path, "%s/%s", reg->bundles, nm);
		if (rc) /* its files stay: the catalog mark names what a purge again takes */
			log_error("plugins", "remove %s --purge: %s (%s kept)", nm, perr, path);
		else
			rm_tree(path);
	}
	char serr[256];
	if (set_scoped(reg, nm, NULL, serr, sizeof serr) != 0) /* installed again: the node's */
		log_error("plugins", "%s: %s", nm, serr);
	snprintf(detail, sizeof detail, "%s%s", ver, purge ? ", files purged" : "");
	if (pds)
		snprintf(detail + strlen(detail), sizeof detail - strlen(detail),
			 ", %d datasets purged (%llu records)", pds, (unsigned long long)precs);
	bundle_audit(reg, call->who, "plugins.remove", nm, detail);
	char want[LINLI_NAME_MAX + 40];
	snprintf(want, sizeof want, "requires '%s', which was removed", nm);
	int ns = 0;
	for (int i = 0; i < reg->n; i++)
		ns += reg->v[i]->state == PLUG_BLOCKED && strcmp(reg->v[i]->reason, want) == 0;
	if (rc)
		return cmd_fail(call, rc,
				"%s was stopped, but its datasets were not purged: %s (its bundle "
				"stays under %s/%s: it is installed again at the next start, and "
				"'plugins remove %s --purge' can take them then)",
				nm, perr, reg->bundles, nm, nm);
	msgpack_pack_map(&call->pk, 5);
	mp_kv_str(&call->pk, "name", nm);
	mp_kv_str(&call->pk, "version", ver);
	mp_kv_bool(&call->pk, "purged", purge);
	mp_kv_int(&call->pk, "purged_records", (int64_t)precs);
	mp_str(&call->pk, "stopped");
	msgpack_pack_array(&call->pk, (size_t)ns);
	for (int i = 0; i < reg->n; i++)
		if (reg->v[i]->state == PLUG_BLOCKED && strcmp(reg->v[i]->reason, want) == 0)
			mp_str(&call->pk, reg->v[i]->name);
	return 0;
}

/* ---- console commands ---- */

static void pack_str_or_nil(msgpack_packer *pk, const char *k, const char *v)
{
	mp_kv_str(pk, k, v && *v ? v : NULL);
}

static const char *kind_name(const struct plugin *p) { return p->kind ? p->kind->name : "?"; }

/*
 * A plugin is the node's: its name, state and descriptor show to every
 * account of the node. What it did is not: a script plugin's counters count
 * the node's events (nil unless the caller's jurisdiction covers the node),
 * and its log lines and a fault it came to may quote an event, so each shows
 * only within the jurisdiction of the event it came from (the node's for
 * its own work: init, timers, commands).
 */
static const char *shown_reason(const struct cmd_call *call, const struct plugin *p)
{
	const char *fs = p->kstate && p->kind->fault_scope ? p->kind->fault_scope(p) : NULL;
	if (!p->reason[0] || p->state != PLUG_FAULTED || !fs || access_sees(call, fs))
		return p->reason;
	return "(not shown: it concerns events outside your jurisdiction)";
}

static void pack_row(msgpack_packer *pk, const struct cmd_call *call, const struct plugin *p)
{
	msgpack_pack_map(pk, 9);
	pack_str_or_nil(pk, "name", p->name);
	mp_kv_str(pk, "kind", kind_name(p));
	mp_kv_str(pk, "state", plug_state_name(p->state));
	pack_str_or_nil(pk, "version", p->meta_ok ? p->meta.version : NULL);
	pack_str_or_nil(pk, "family", p->meta_ok ? p->meta.family : NULL);
	mp_kv_uint(pk, "order", p->order);
	mp_kv_str(pk, "file", p->path);
	mp_kv_str(pk, "scope", plug_scope(p));
	pack_str_or_nil(pk, "reason", shown_reason(call, p));
}

static void pack_list(msgpack_packer *pk, const char (*v)[LINLI_NAME_MAX], int n, int width)
{
	int c = 0;
	const char *base = (const char *)v;
	while (c < n && base[(size_t)c * (size_t)width])
		c++;
	msgpack_pack_array(pk, (size_t)c);
	for (int i = 0; i < c; i++)
		mp_str(pk, base + (size_t)i * (size_t)width);
}

static void pack_info(msgpack_packer *pk, const struct cmd_call *call, struct plug_registry *reg,
		      const struct plugin *p)
{
	bool meta = p->meta_ok;
	msgpack_pack_map(pk, 22);
	pack_str_or_nil(pk, "name", p->name);
	pack_str_or_nil(pk, "bundle", p->bdir);
	pack_str_or_nil(pk, "signed_by", p->bdir[0] ? p->signer : NULL);
	mp_kv_str(pk, "kind", kind_name(p));
	mp_kv_str(pk, "state", plug_state_name(p->state));
	pack_str_or_nil(pk, "reason", shown_reason(call, p));
	mp_kv_str(pk, "file", p->path);
	pack_str_or_nil(pk, "loaded_from",
			p->kstate && p->kind->loaded_from ? p->kind->loaded_from(p) : NULL);
	pack_str_or_nil(pk, "version", meta ? p->meta.version : NULL);
	pack_str_or_nil(pk, "family", meta ? p->meta.family : NULL);
	pack_str_or_nil(pk, "description", meta ? p->meta.description : NULL);
	char sdk[16] = "";
	if (p->meta.size)
		snprintf(sdk, sizeof sdk, "%u.%u", p->meta.sdk_major, p->meta.sdk_minor);
	pack_str_or_nil(pk, "sdk", sdk);
	mp_str(pk, "requires");
	if (meta)
		pack_list(pk, p->meta.requires, LINLI_MAX_REQUIRES, LINLI_NAME_MAX);
	else
		msgpack_pack_array(pk, 0);
	mp_str(pk, "required_by");
	int nb = 0;
	for (int pass = 0; pass < 2; pass++) {
		if (pass)
			msgpack_pack_array(pk, (size_t)nb);
		for (int i = 0; i < reg->n; i++) {
			const struct plugin *q = reg->v[i];
			if (q == p || !p->name[0] || !q->meta_ok)
				continue;
			for (int j = 0; j < LINLI_MAX_REQUIRES && q->meta.requires[j][0]; j++)
				if (strcmp(q->meta.requires[j], p->name) == 0) {
					if (pass)
						mp_str(pk, q->name);
					else
						nb++;
					break;
				}
		}
	}
	mp_str(pk, "capabilities");
	if (meta) {
		int c = 0;
		while (c < LINLI_MAX_CAPS && p->meta.capabilities[c][0])
			c++;
		msgpack_pack_array(pk, (size_t)c);
		for (int i = 0; i < c; i++)
			mp_str(pk, p->meta.capabilities[i]);
	} else
		msgpack_pack_array(pk, 0);
	mp_kv_str(pk, "scope", plug_scope(p));
	mp_kv_uint(pk, "order", p->order);
	mp_kv_int(pk, "started_ms", p->state == PLUG_RUNNING ? p->started_ms : 0);
	mp_str(pk, "resources");
	msgpack_pack_array(pk, (size_t)p->n_res);
	/* Oldest first reads better. */
	const struct plug_res *last = p->res;
	while (last && last->next)
		last = last->next;
	for (const struct plug_res *r = last; r; r = r->prev) {
		msgpack_pack_map(pk, 2);
		mp_kv_str(pk, "kind", r->ops->kind);
		char label[128] = "";
		if (r->ops->describe)
			r->ops->describe(r->arg, label, sizeof label);
		mp_kv_str(pk, "what", label);
	}
	mp_kv_int(pk, "resource_count", p->n_res);
	/* linlid's deaths while its code ran, since an admin last enabled it */
	mp_kv_int(pk, "deaths", deaths_count(reg, p->name));
	mp_str(pk, "script");
	if (p->kstate && p->kind->pack_info)
		p->kind->pack_info(p, call, pk);
	else
		msgpack_pack_nil(pk);
}

static struct plugin *arg_plugin(struct cmd_call *call, struct plug_registry *reg, int *rc)
{
	if (call->argc != 3) {
		*rc = cmd_fail(call, LINLI_EINVAL, "usage: plugins %s NAME", call->argv[1]);
		return NULL;
	}
	struct plugin *p = lookup(reg, call->argv[2]);
	if (!p)
		*rc = cmd_fail(call, LINLI_ENOENT, "no plugin named '%s'; see 'plugins list'",
			       call->argv[2]);
	return p;
}

static int cmd_list(struct cmd_call *call, void *ud)
{
	struct plug_registry *reg = ud;
	if (call->argc != 2)
		return cmd_fail(call, LINLI_EINVAL, "usage: plugins list");
	msgpack_pack_array(&call->pk, (size_t)reg->n);
	for (int i = 0; i < reg->n; i++)
		pack_row(&call->pk, call, reg->v[i]);
	return 0;
}

static int cmd_info(struct cmd_call *call, void *ud)
{
	struct plug_registry *reg = ud;
	int rc = 0;
	struct plugin *p = arg_plugin(call, reg, &rc);
	if (!p)
		return rc;
	pack_info(&call->pk, call, reg, p);
	return 0;
}

typedef int (*plug_op)(struct plug_registry *, struct plugin *, char *, size_t);

static int run_op(struct cmd_call *call, struct plug_registry *reg, plug_op op)
{
	int rc = 0;
	struct plugin *p = arg_plugin(call, reg, &rc);
	if (!p)
		return rc;
	char name[LINLI_NAME_MAX];
	snprintf(name, sizeof name, "%s", p->name);
	rc = op(reg, p, call->err, sizeof call->err);
	if (rc)
		return rc;
	/* p may have been replaced: report the entry now under that name. */
	struct plugin *now = find_named(reg, name, true);
	if (!now)
		now = lookup(reg, name);
	if (now)
		pack_row(&call->pk, call, now);
	else
		msgpack_pack_nil(&call->pk);
	return 0;
}

static int cmd_enable(struct cmd_call *call, void *ud) { return run_op(call, ud, op_enable); }

static int cmd_disable(struct cmd_call *call, void *ud) { return run_op(call, ud, op_disable); }

static int cmd_reload(struct cmd_call *call, void *ud) { return run_op(call, ud, op_reload); }

/* A bundle rather than a plugin file: an upload ("@ID"), a FILE.bundle, a directory. */
static bool is_bundle_src(const char *src)
{
	return src[0] == '@' || has_suffix(src, ".bundle") || (src[0] == '/' && is_dir(src));
}

/*
 * Take `--scope PATH` (or --scope=PATH) out of argv into out: true when
 * given and good (the node's path or in its subtree); false when not given
 * (*rc 0) or refused (*rc a LINLI_E* with call->err naming it and the node).
 */
static bool take_scope(struct cmd_call *call, struct plug_registry *reg, char *out, size_t len,
		       int *rc)
{
	*rc = 0;
	for (int i = 2; i < call->argc; i++) {
		const char *w = call->argv[i];
		bool eq = strncmp(w, "--scope=", 8) == 0;
		if (!eq && strcmp(w, "--scope") != 0)
			continue;
		if (!eq && i + 1 >= call->argc) {
			*rc = cmd_fail(call, LINLI_EINVAL, "plugins %s: option '--scope' needs a "
					     "value (a node path: this node %s or below it)",
				       call->argv[1], reg->k->cfg.node_path);
			return false;
		}
		snprintf(out, len, "%s", eq ? w + 8 : call->argv[i + 1]);
		int n = eq ? 1 : 2;
		for (int j = 0; j < n; j++)
			free(call->argv[i + j]);
		memmove(&call->argv[i], &call->argv[i + n],
			(size_t)(call->argc - i - n + 1) * sizeof(char *));
		call->argc -= n;
		if ((*rc = check_plugin_scope(reg, out, call->err, sizeof call->err)) != 0)
			return false;
		return true;
	}
	return false;
}

static int cmd_install(struct cmd_call *call, void *ud)
{
	struct plug_registry *reg = ud;
	bool grant = cmd_flag(call, "--grant");
	bool allow_unsigned = cmd_flag(call, "--unsigned");
	char scope[SCOPE_MAX + 1];
	int rc;
	bool scoped = take_scope(call, reg, scope, sizeof scope, &rc);
	if (rc)
		return rc;
	if (call->argc != 3)
		return cmd_fail(call, LINLI_EINVAL,
				"usage: plugins install /ABSOLUTE/PATH.so (or PATH.lua) [--grant] "
				"[--scope PATH], or BUNDLE [--grant] [--unsigned] [--scope PATH]");
	struct plugin *p = NULL;
	if (is_bundle_src(call->argv[2]))
		rc = op_bundle(reg, call->argv[2], call->who, grant, allow_unsigned, false,
			       scoped ? scope : NULL, NULL, 0, &p, call->err, sizeof call->err);
	else if (allow_unsigned)
		rc = cmd_fail(call, LINLI_EINVAL, "plugins install: --unsigned is for bundles");
	else
		rc = op_install(reg, call->argv[2], call->who, grant, scoped ? scope : NULL, &p,
				call->err, sizeof call->err);
	if (rc)
		return rc;
	if (p)
		pack_row(&call->pk, call, p);
	else
		msgpack_pack_nil(&call->pk);
	return grant ? store_cmds_wait_commit(call) : 0;
}

static int cmd_upgrade(struct cmd_call *call, void *ud)
{
	struct plug_registry *reg = ud;
	bool grant = cmd_flag(call, "--grant");
	bool allow_unsigned = cmd_flag(call, "--unsigned");
	char scope[SCOPE_MAX + 1];
	int rc;
	bool scoped = take_scope(call, reg, scope, sizeof scope, &rc);
	if (rc)
		return rc;
	/* --migrate DATASET.FIELD=drop|DATASET.FIELD=default:VALUE, any number (bundle_cat.h) */
	char mbuf[8][256];
	const char *migrate[8];
	int n_migrate = 0;
	for (int i = 2; i < call->argc;) {
		if (strcmp(call->argv[i], "--migrate") != 0) {
			i++;
			continue;
		}
		if (i + 1 >= call->argc || n_migrate == 8 || strlen(call->argv[i + 1]) >= 256)
			return cmd_fail(call, LINLI_EINVAL,
					"plugins upgrade: --migrate needs DATASET.FIELD=drop or "
					"DATASET.FIELD=default:VALUE (at most 8, each under 256 bytes)");
		snprintf(mbuf[n_migrate], sizeof mbuf[0], "%s", call->argv[i + 1]);
		migrate[n_migrate] = mbuf[n_migrate];
		n_migrate++;
		free(call->argv[i]);
		free(call->argv[i + 1]);
		memmove(&call->argv[i], &call->argv[i + 2],
			(size_t)(call->argc - i - 1) * sizeof *call->argv);
		call->argc -= 2;
	}
	if (call->argc != 3 || !is_bundle_src(call->argv[2]))
		return cmd_fail(
		    call, LINLI_EINVAL,
		    "usage: plugins upgrade BUNDLE [--grant] [--unsigned] [--scope PATH] [--migrate "
		    "DATASET.FIELD=drop|DATASET.FIELD=default:VALUE]... (a FILE.bundle, an upload "
		    "@ID or an absolute directory)");
	struct plugin *p = NULL;
	rc = op_bundle(reg, call->argv[2], call->who, grant, allow_unsigned, true,
		       scoped ? scope : NULL, migrate, n_migrate, &p, call->err, sizeof call->err);
	if (rc)
		return rc;
	if (p)
		pack_row(&call->pk, call, p);
	else
		msgpack_pack_nil(&call->pk);
	return grant ? store_cmds_wait_commit(call) : 0;
}

static int cmd_rollback(struct cmd_call *call, void *ud)
{
	struct plug_registry *reg = ud;
	if (call->argc != 3)
		return cmd_fail(call, LINLI_EINVAL, "usage: plugins rollback NAME");
	char name[LINLI_NAME_MAX];
	snprintf(name, sizeof name, "%s", call->argv[2]);
	int rc = op_rollback(reg, name, call->who, call->err, sizeof call->err);
	if (rc)
		return rc;
	struct plugin *p = find_named(reg, name, false);
	if (p)
		pack_row(&call->pk, call, p);
	else
		msgpack_pack_nil(&call->pk);
	return 0;
}

static int cmd_remove(struct cmd_call *call, void *ud)
{
	bool purge = cmd_flag(call, "--purge");
	if (call->argc != 3)
		return cmd_fail(call, LINLI_EINVAL, "usage: plugins remove NAME [--purge]");
	return op_remove(ud, call, call->argv[2], purge);
}

/* ---- grants (grants.h): what a plugin declares, and what a change does to it ---- */

int plug_find_declared(const struct cfg *c, bool rule, const char *name,
		       char (*caps)[LINLI_CAP_MAX], int max, char *err, size_t errlen)
{
	for (int i = 0; i < n_kinds; i++) {
		char dirs[CFG_MAX_DIRS][PATH_MAX];
		bool optional;
		int nd = kinds[i]->dirs(c, rule, dirs, CFG_MAX_DIRS, &optional);
		for (int d = 0; d < nd; d++) {
			struct dirent **ents;
			int ne = scandir(dirs[d], &ents, NULL, alphasort);
			int found = 0, n = 0;
			for (int j = 0; j < ne; j++) {
				const char *f = ents[j]->d_name;
				if (!found && f[0] != '.' && has_suffix(f, kinds[i]->suffix)) {
					char path[PATH_MAX * 2];
					snprintf(path, sizeof path, "%s/%s", dirs[d], f);
					found = kinds[i]->declares(c, path, rule, name, caps, max, &n);
				}
				free(ents[j]);
			}
			if (ne >= 0)
				free(ents);
			if (found)
				return n;
		}
	}
	/* An installed bundle's current version (<data_dir>/bundles/NAME/current). */
	char path[PATH_MAX * 2], ver[LINLI_VERSION_MAX];
	snprintf(path, sizeof path, "%s/bundles/%s/current", c->data_dir, name);
	if (!rule && is_ident(name, LINLI_NAME_MAX) && read_word(path, ver, sizeof ver) == 0) {
		struct bundle b;
		char vdir[PATH_MAX * 2], why[512];
		snprintf(vdir, sizeof vdir, "%s/bundles/%s/%s", c->data_dir, name, ver);
		if (bundle_read_dir(vdir, &b, why, sizeof why) == 0) {
			snprintf(path, sizeof path, "%s/%s", vdir, b.m.files[b.m.plugin].name);
			const struct plug_kind *kind = kind_of(path);
			int n = 0,
			    found = kind ? kind->declares(c, path, false, name, caps, max, &n) : 0;
			bundle_free(&b);
			if (found)
				return n;
		}
	}
	return errf(err, errlen, LINLI_ENOENT, "no %s named '%s' in the configured %s",
		    rule ? "rule" : "plugin", name,
		    rule ? "script_dirs" : "plugin_dirs, script_dirs and installed bundles");
}

static int grants_declared(struct kernel *k, const char *name, const char **out, int max)
{
	struct plugin *p = k->plugins ? find_named(k->plugins, name, false) : NULL;
	if (!p || !p->meta_ok)
		return -1;
	return declared_caps(p, out, max);
}

/* Stop every running plugin that requires p (theirs first), marking it blocked. */
static void stop_dependents(struct plug_registry *reg, const struct plugin *p, const char *how)
{
	for (int i = 0; i < reg->n; i++) {
		struct plugin *q = reg->v[i];
		if (q == p || q->state != PLUG_RUNNING)
			continue;
		for (int j = 0; j < LINLI_MAX_REQUIRES && q->meta.requires[j][0]; j++)
			if (strcmp(q->meta.requires[j], p->name) == 0) {
				stop_dependents(reg, q, "stopped");
				plug_stop(q);
				drop_loaded(q);
				q->state = PLUG_BLOCKED;
				snprintf(q->reason, sizeof q->reason, "requires '%s', which was %s",
					 p->name, how);
				log_warn("plugins", "%s stopped: %s", q->name, q->reason);
				break;
			}
	}
}

static void grants_changed(struct kernel *k, const char *name, bool revoked, char *state,
			   size_t len)
{
	struct plug_registry *reg = k->plugins;
	struct plugin *p = reg ? find_named(reg, name, true) : NULL;
	if (!p && reg)
		p = find_named(reg, name, false);
	if (!p) {
		snprintf(state, len, "not installed");
		return;
	}
	char why[768];
	if (revoked && p->state == PLUG_RUNNING && check_granted(reg, p, why, sizeof why) != 0) {
		stop_dependents(reg, p, "stopped");
		plug_stop(p);
		drop_loaded(p);
		p->state = PLUG_REFUSED;
		snprintf(p->reason, sizeof p->reason, "stopped: a grant was revoked: %s", why);
		log_warn("plugins", "%s %s", p->name, p->reason);
	}
	if (p->state == PLUG_RUNNING || !p->meta_ok)
		snprintf(state, len, "%s", plug_state_name(p->state));
	else if (check_granted(reg, p, why, sizeof why) == 0)
		snprintf(state, len, "%s; every declared capability is granted: 'linli plugins "
			 "enable %s' starts it", plug_state_name(p->state), p->name);
	else
		snprintf(state, len, "%s: %s", plug_state_name(p->state), why);
}

static int grants_names(struct kernel *k, const char **out, int max)
{
	struct plug_registry *reg = k->plugins;
	int n = 0;
	for (int i = 0; reg && i < reg->n && n < max; i++) {
		const struct plugin *p = reg->v[i];
		if (p->meta_ok && p->name[0] && p->meta.capabilities[0][0])
			out[n++] = p->name;
	}
	return n;
}

static const struct grants_subject_ops plug_grants_ops = {grants_declared, grants_changed,
							  grants_names};

int plug_open(struct kernel *k, char *err, size_t errlen)
{
	struct plug_registry *reg = calloc(1, sizeof *reg);
	if (!reg)
		return LINLI_ENOMEM;
	reg->k = k;
	snprintf(reg->statepath, sizeof reg->statepath, "%s/plugins.disabled", k->cfg.data_dir);
	load_disabled(reg);
	snprintf(reg->scopepath, sizeof reg->scopepath, "%s/plugins.scopes", k->cfg.data_dir);
	load_scoped(reg);
	snprintf(reg->deathpath, sizeof reg->deathpath, "%s/plugins.deaths", k->cfg.data_dir);
	load_deaths(reg);
	const struct wd_frame *last = wd_previous();
	if (last && last->depth)
		count_death(reg, last, wd_previous_pid());
	k->plugins = reg;
	static const struct {
		const char *sub, *usage, *summary;
		cmd_fn fn;
	} cmds[] = {
	    {"list", "", "every plugin file found: state, version, order, reason", cmd_list},
	    {"info", "NAME", "one plugin: descriptor, state, resources", cmd_info},
	    {"enable", "NAME",
	     "start a disabled, failed or quarantined plugin (kept across restarts)", cmd_enable},
	    {"disable", "NAME", "stop a plugin and keep it stopped across restarts", cmd_disable},
	    {"reload", "NAME", "load its file again; the old one runs until the new one is up",
	     cmd_reload},
	    {"install", "/PATH.so|/PATH.lua|BUNDLE [--grant] [--unsigned] [--scope PATH]",
	     "copy a plugin into the first plugin dir (a script into <script_dir>/apps), start "
	     "it; --grant grants what it declares, --scope makes it act only in that subtree",
	     cmd_install},
	    {"upgrade",
	     "BUNDLE [--grant] [--unsigned] [--scope PATH] [--migrate DATASET.FIELD=drop|=default:VALUE]...",
	     "replace an installed bundle by a higher version (the old runs until the new is "
	     "up; it keeps its scope unless --scope gives another)",
	     cmd_upgrade},
	    {"rollback", "NAME", "return a bundle to its previous installed version", cmd_rollback},
	    {"remove", "NAME [--purge]",
	     "stop and uninstall a bundle (plugins requiring it stop); --purge removes its files",
	     cmd_remove},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		int rc = cmd_register(k->cmds, "plugins", cmds[i].sub, cmds[i].usage,
				      cmds[i].summary, cmds[i].fn, reg, reg);
		if (rc) {
			cmd_unregister_owner(k->cmds, reg);
			plug_close(k);
			return errf(err, errlen, rc, "cannot register 'plugins %s': %s",
				    cmds[i].sub, linli_strerror(rc));
		}
	}
	snprintf(reg->bundles, sizeof reg->bundles, "%s/bundles", k->cfg.data_dir);
	int rc = 0;
	if (!(reg->trust = trust_open(k, err, errlen)) ||
	    !(reg->uploads = upload_open(k, err, errlen))) {
		cmd_unregister_owner(k->cmds, reg);
		plug_close(k);
		return LINLI_ENOMEM;
	}
	rc = grants_register(k, "plugins", GRANT_PLUGIN, &plug_grants_ops);
	if (rc) {
		cmd_unregister_owner(k->cmds, reg);
		plug_close(k);
		return errf(err, errlen, rc, "cannot register 'plugins grant': %s",
			    linli_strerror(rc));
	}
	return 0;
}

bool plug_has_cap(const struct plugin *p, const char *cap)
{
	for (int i = 0; i < LINLI_MAX_CAPS && p->meta.capabilities[i][0]; i++)
		if (tier_cap_covers(p->meta.capabilities[i], cap))
			return true;
	return false;
}

void plug_principal(struct plugin *p, struct tier_principal *who, const char **grants)
{
	int n = 0;
	for (int i = 0; i < LINLI_MAX_CAPS && p->meta.capabilities[i][0]; i++)
		grants[n++] = p->meta.capabilities[i];
	grants[n] = NULL;
	*who = (struct tier_principal){PRINCIPAL_PLUGIN, p->name, plug_scope_now(p), ROLE_NONE,
				       grants, p->acting, NULL};
}

int plug_act_begin(struct plugin *p, const struct tier_principal *caller, const void *tag,
		   struct plug_acting *saved, char *err, size_t errlen)
{
	saved->who = p->acting;
	saved->tag = p->acting_tag;
	snprintf(saved->scope, sizeof saved->scope, "%s", p->acting_scope);
	if (!caller)
		return 0;
	const char *own = plug_scope(p), *node = p->reg->k->cfg.node_path;
	const char *narrow = scope_within(own, caller->scope)	? caller->scope
			     : scope_within(caller->scope, own) ? own
								: NULL;
	if (!narrow && strcmp(own, node) != 0) {
		snprintf(err, errlen,
			 "'%s' of %s has no jurisdiction where plugin '%s' acts (its scope %s)",
			 caller->name, caller->scope, p->name, own);
		return LINLI_EPERM;
	}
	if (!narrow) {
		snprintf(err, errlen, "'%s' of %s has no jurisdiction on this node %s", caller->name,
			 caller->scope, node);
		return LINLI_EPERM;
	}
	snprintf(p->acting_scope, sizeof p->acting_scope, "%s", narrow);
	p->acting = caller;
	p->acting_tag = tag;
	return 0;
}

void plug_act_end(struct plugin *p, const struct plug_acting *saved)
{
	p->acting = saved->who;
	p->acting_tag = saved->tag;
	snprintf(p->acting_scope, sizeof p->acting_scope, "%s", saved->scope);
}

const char *plug_scope(const struct plugin *p)
{
	return p->scope[0] ? p->scope : p->reg->k->cfg.node_path;
}

const char *plug_scope_now(const struct plugin *p)
{
	return p->acting ? p->acting_scope : plug_scope(p);
}

const struct tier_principal *plug_acting(const struct plugin *p, const void **tag)
{
	if (tag)
		*tag = p->acting_tag;
	return p->acting;
}

int plug_authorize(struct plugin *p, enum tier_action act, const char *scope, const char *object,
		   char *err, size_t errlen)
{
	const char *grants[LINLI_MAX_CAPS + 1];
	struct tier_principal who;
	plug_principal(p, &who, grants);
	return access_check(p->reg->k, &who, act, scope, object, err, errlen);
}
