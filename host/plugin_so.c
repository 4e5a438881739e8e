/*
 * plugin_so — the kind of plugin that is a shared object built with the SDK.
 *
 * Owns what is particular to a `.so`: reading its metadata block straight
 * from the ELF section `.linli_plugin` (no code of the file runs until every
 * check passed), the private sealed in-memory copy it is loaded from, dlopen
 * and the cross-check of the exported descriptor against the block, and
 * calling its init and fini with the function table. The registry
 * (plugin.c) decides when; this file only knows how.
 *
 * Life of a file: read whole into memory → ELF section found and checked
 * (plug_read_meta) → checked by the registry against the others → the very
 * bytes that were checked are written to a private, sealed in-memory copy →
 * dlopen(RTLD_NOW | RTLD_LOCAL) → descriptor cross-checked against the block
 * → init. dlopen runs ELF constructors, so it is the first step that executes
 * plugin code and comes strictly after every refusal reason has been ruled
 * out.
 */
#include "plugin_so.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "linli/api.h"
#include "linli/error.h"
#include "sdkapi.h"
#include "util.h"
#include "watchdog.h"

#define MAX_PLUGIN_FILE (64u << 20) /* a bigger ".so" is refused unread */

/* What a .so keeps: the checked bytes until it starts, then its loaded copy. */
struct so {
	unsigned char *image;
	size_t image_len;
	char run[PATH_MAX]; /* the private copy's path while loaded, else "" */
	int run_fd;	    /* the copy (a sealed memfd) while loaded, else -1 */
	void *dl;
	const struct linli_plugin *desc;
};

static int read_file(const char *path, unsigned char **buf, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errf(err, errlen, LINLI_EIO, "cannot open: %s", strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return errf(err, errlen, LINLI_EINVAL, "not a regular file");
	}
	if ((uint64_t)st.st_size > MAX_PLUGIN_FILE) {
		close(fd);
		return errf(err, errlen, LINLI_E2BIG, "file of %lld bytes is over the %u MiB limit",
			    (long long)st.st_size, MAX_PLUGIN_FILE >> 20);
	}
	size_t n = (size_t)st.st_size, got = 0;
	unsigned char *b = malloc(n ? n : 1);
	if (!b) {
		close(fd);
		return LINLI_ENOMEM;
	}
	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = errno;
			free(b);
			close(fd);
			return errf(err, errlen, LINLI_EIO, "cannot read: %s",
				    r < 0 ? strerror(e) : "file shrank");
		}
		got += (size_t)r;
	}
	close(fd);
	*buf = b;
	*len = n;
	return 0;
}

/*
 * The private copy: the checked bytes in an anonymous, sealed in-memory file
 * (memfd), so that neither the plugin dir nor the disk is involved and a copy
 * never outlives the process. dlopen opens it as /proc/<pid>/fd/<n>, a path
 * that gdb and the sanitizers' symbolizer (other processes) can open too; the
 * fd stays open while the plugin is loaded, which also keeps the path unique
 * among loaded objects (glibc matches objects by name).
 */
static int make_run_copy(struct plugin *p, struct so *so, char *why, size_t whylen)
{
	char label[LINLI_NAME_MAX + 32];
	snprintf(label, sizeof label, "linli-%s.%llu.so", plug_name(p),
		 (unsigned long long)plug_next_gen(p));
	int fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return errf(why, whylen, LINLI_EIO,
			    "cannot make the private copy: memfd_create: %s", strerror(errno));
	const unsigned char *b = so->image;
	size_t done = 0;
	while (done < so->image_len) {
		ssize_t w = write(fd, b + done, so->image_len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			close(fd);
			return errf(why, whylen, LINLI_EIO, "cannot write the private copy: %s",
				    strerror(w < 0 ? e : ENOSPC));
		}
		done += (size_t)w;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
		int e = errno;
		close(fd);
		return errf(why, whylen, LINLI_EIO, "cannot seal the private copy: %s",
			    strerror(e));
	}
	so->run_fd = fd;
	snprintf(so->run, sizeof so->run, "/proc/%ld/fd/%d", (long)getpid(), fd);
	return 0;
}

static struct so *so_of(const struct plugin *p)
{
	return plug_kind_state(p);
}

static int so_read(struct plugin *p, struct linli_plugin_meta *meta, char *why, size_t whylen)
{
	struct so *so = calloc(1, sizeof *so);
	if (!so)
		return errf(why, whylen, LINLI_ENOMEM, "out of memory");
	so->run_fd = -1;
	plug_set_kind_state(p, so);
	int rc = read_file(plug_path(p), &so->image, &so->image_len, why, whylen);
	if (!rc)
		rc = plug_read_meta(so->image, so->image_len, meta, why, whylen);
	return rc;
}

static const void *so_bytes(const struct plugin *p, size_t *len)
{
	struct so *so = so_of(p);
	*len = so ? so->image_len : 0;
	return so ? so->image : NULL;
}

static int so_start(struct plugin *p, char *why, size_t whylen)
{
	struct so *so = so_of(p);
	const struct linli_plugin_meta *meta = plug_meta(p);
	int rc = make_run_copy(p, so, why, whylen);
	if (rc)
		return rc;
	free(so->image);
	so->image = NULL;
	dlerror();
	struct wd_frame wd;
	wd_enter(&wd, plug_name(p), "load", NULL, 0); /* its ELF constructors run */
	so->dl = dlopen(so->run, RTLD_NOW | RTLD_LOCAL);
	wd_leave(&wd);
	if (!so->dl) {
		const char *e = dlerror();
		return errf(why, whylen, LINLI_EINVAL, "cannot load: %s", e ? e : "dlopen failed");
	}
	const struct linli_plugin *d = so->desc = dlsym(so->dl, LINLI_PLUGIN_SYMBOL);
	if (!d)
		return errf(why, whylen, LINLI_EINVAL,
			    "no exported symbol %s (is it declared with LINLI_PLUGIN?)",
			    LINLI_PLUGIN_SYMBOL);
	if (d->size != LINLI_PLUGIN_SIZE_1_0 || d->sdk_major != meta->sdk_major ||
	    d->sdk_minor != meta->sdk_minor || !d->meta || memcmp(d->meta, meta, meta->size) != 0)
		return errf(why, whylen, LINLI_ECORRUPT,
			    "descriptor %s does not match the %s block", LINLI_PLUGIN_SYMBOL,
			    LINLI_PLUGIN_SECTION);
	if (!d->init)
		return errf(why, whylen, LINLI_EINVAL, "descriptor has no init function");
	plug_init_begin(p);
	wd_enter(&wd, plug_name(p), "init", NULL, 0);
	rc = d->init(plug_ctx(p), sdkapi_table());
	wd_leave(&wd);
	const char *ierr = plug_init_end(p);
	if (rc) {
		int code = rc < 0 ? rc : LINLI_EINVAL;
		errf(why, whylen, code, "init returned %s (%s)%s%s", linli_errname(rc),
		     linli_strerror(rc), ierr[0] ? ": " : "", ierr);
		return code;
	}
	return 0;
}

static void so_fini(struct plugin *p)
{
	struct so *so = so_of(p);
	if (so && so->desc && so->desc->fini) {
		struct wd_frame wd;
		wd_enter(&wd, plug_name(p), "fini", NULL, 0);
		so->desc->fini(plug_ctx(p), sdkapi_table());
		wd_leave(&wd);
	}
}

static void so_unload(struct plugin *p)
{
	struct so *so = so_of(p);
	if (!so)
		return;
	free(so->image);
	if (so->dl) {
		struct wd_frame wd;
		wd_enter(&wd, plug_name(p), "unload", NULL, 0); /* its ELF destructors run */
		dlclose(so->dl);
		wd_leave(&wd);
	}
	if (so->run_fd >= 0)
		close(so->run_fd);
	free(so);
	plug_set_kind_state(p, NULL);
}

static const char *so_loaded_from(const struct plugin *p)
{
	struct so *so = so_of(p);
	return so && so->run[0] ? so->run : NULL;
}

static int so_dirs(const struct cfg *c, bool rule, char (*out)[PATH_MAX], int max, bool *optional)
{
	*optional = false;
	int n = 0;
	for (int i = 0; !rule && i < c->n_plugin_dirs && n < max; i++)
		snprintf(out[n++], PATH_MAX, "%s", c->plugin_dirs[i]);
	return n;
}

static int so_install_dir(const struct cfg *c, char *dir, size_t len, char *err, size_t errlen)
{
	if (c->n_plugin_dirs == 0)
		return errf(err, errlen, LINLI_ECONFIG,
			    "no plugin_dirs configured: nowhere to install to");
	snprintf(dir, len, "%s", c->plugin_dirs[0]);
	return 0;
}

/* Does the .so at path declare plugin `name`? Fills caps. 1 yes, 0 no (rules are scripts). */
static int so_declares(const struct cfg *c, const char *path, bool rule, const char *name,
		       char (*caps)[LINLI_CAP_MAX], int max, int *n)
{
	(void)c;
	char why[512];
	struct linli_plugin_meta m;
	if (!rule) {
		unsigned char *buf;
		size_t len;
		if (read_file(path, &buf, &len, why, sizeof why) != 0)
			return 0;
		int rc = plug_read_meta(buf, len, &m, why, sizeof why);
		free(buf);
		if (rc || strcmp(m.name, name) != 0)
			return 0;
		for (*n = 0; *n < max && *n < LINLI_MAX_CAPS && m.capabilities[*n][0]; (*n)++)
			snprintf(caps[*n], LINLI_CAP_MAX, "%s", m.capabilities[*n]);
		return 1;
	}
	return 0;
}

static const struct plug_kind so_kind = {
    .name = "so",
    .suffix = ".so",
    .dirs = so_dirs,
    .install_dir = so_install_dir,
    .read = so_read,
    .declares = so_declares,
    .bytes = so_bytes,
    .start = so_start,
    .fini = so_fini,
    .unload = so_unload,
    .loaded_from = so_loaded_from,
};

const struct plug_kind *plugin_so_kind(void)
{
	return &so_kind;
}
