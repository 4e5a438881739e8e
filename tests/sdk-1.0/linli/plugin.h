/*
 * linli/plugin.h — what a plugin tells linlid about itself: its descriptor.
 *
 * Every plugin `.so` contains exactly one LINLI_PLUGIN(...) line. It writes two
 * things into the binary:
 *
 *  1. a metadata block (struct linli_plugin_meta) in the ELF section
 *     `.linli_plugin`: plain bytes, no pointers. linlid reads it straight from
 *     the file, *before* loading it, and refuses the plugin — without running
 *     any of its code, not even its ELF constructors — when it was built for
 *     another SDK major or a newer minor, has a size linlid does not know, a
 *     bad name or family, duplicates a plugin already loaded, requires a plugin
 *     that is missing, or sits in a dependency cycle;
 *  2. the exported descriptor `linli_plugin_descriptor` (struct linli_plugin)
 *     holding `init` and `fini`, which linlid looks up after it has loaded the
 *     file with dlopen(RTLD_NOW | RTLD_LOCAL).
 *
 * Example (a complete plugin is in sdk/template/):
 *
 *     static int hello_init(linli_ctx *ctx, const struct linli_api *api) { ... }
 *     static void hello_fini(linli_ctx *ctx, const struct linli_api *api) { ... }
 *
 *     LINLI_PLUGIN(hello_init, hello_fini,
 *                  .name = "hello",
 *                  .version = "1.0.0",
 *                  .family = "custom",
 *                  .description = "Says hello",
 *                  .requires = {"alarms"},
 *                  .capabilities = {"bus.publish:hello/#"});
 *
 * Build with -fvisibility=hidden (the pkg-config flags add it): the descriptor
 * is then the only symbol the plugin exports, and it needs no kernel symbol.
 */
#ifndef LINLI_PLUGIN_H
#define LINLI_PLUGIN_H

#include <stdint.h>

#include "linli/version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct linli_ctx linli_ctx; /* one running plugin instance; opaque */
struct linli_api;		    /* the function table, linli/api.h */

/* Limits of the metadata block. Each string field holds a NUL inside it. */
#define LINLI_NAME_MAX 32	  /* name, family, each required name: 31 bytes + NUL */
#define LINLI_VERSION_MAX 32	  /* plugin version string */
#define LINLI_DESCRIPTION_MAX 512 /* UTF-8 description */
#define LINLI_MAX_REQUIRES 16	  /* required plugins */
#define LINLI_MAX_CAPS 64	  /* requested capabilities */
#define LINLI_CAP_MAX 96	  /* one capability string, 95 bytes + NUL */

/* The section linlid reads and the symbol it looks up. */
#define LINLI_PLUGIN_SECTION ".linli_plugin"
#define LINLI_PLUGIN_SYMBOL "linli_plugin_descriptor"
#define LINLI_META_MAGIC "LINLIPM" /* 7 bytes + NUL = 8 */

/*
 * struct linli_plugin_meta — the metadata block, since 1.0.
 *
 * Fixed layout, no pointers, no padding: it is read from the file on disk.
 * Fill it through LINLI_PLUGIN, which sets magic, size and the SDK version;
 * you give the fields below. Fields appended in later minors go at the end,
 * and `size` tells linlid which layout a plugin has.
 *
 *   name          identifier [a-z][a-z0-9_]*, at most 31 bytes; unique on a
 *                 node; also the first word of the plugin's console commands
 *   version       the plugin's own version, "MAJOR.MINOR.PATCH" (printable
 *                 ASCII, no spaces)
 *   family        governance | gov_services | public_services | safety |
 *                 driver | custom
 *   description   one line of UTF-8 for `linli plugins info`
 *   requires      names of plugins that must be running before this one is
 *                 initialised; { "a", "b" }; at most LINLI_MAX_REQUIRES
 *   capabilities  permissions requested, e.g. "store.read:residents",
 *                 "bus.publish:alarm/#"; granted by an admin (see the vendor
 *                 guide); at most LINLI_MAX_CAPS
 */
struct linli_plugin_meta {
	char magic[8];	    /* LINLI_META_MAGIC */
	uint32_t size;	    /* sizeof(struct linli_plugin_meta) the plugin was built with */
	uint16_t sdk_major; /* LINLI_SDK_MAJOR at build time */
	uint16_t sdk_minor; /* LINLI_SDK_MINOR at build time */
	char name[LINLI_NAME_MAX];
	char version[LINLI_VERSION_MAX];
	char family[LINLI_NAME_MAX];
	char description[LINLI_DESCRIPTION_MAX];
	char requires[LINLI_MAX_REQUIRES][LINLI_NAME_MAX];
	char capabilities[LINLI_MAX_CAPS][LINLI_CAP_MAX];
};

/* The size of the 1.0 layout; linlid refuses a block of any size it does not know. */
#define LINLI_META_SIZE_1_0 7280u
#ifndef __cplusplus
_Static_assert(sizeof(struct linli_plugin_meta) == LINLI_META_SIZE_1_0,
	       "struct linli_plugin_meta changed layout: append fields and add a size");
#endif

/*
 * init — called once, on the kernel thread, after every required plugin has
 * been initialised. `api` is valid until fini returns; keep the pointer.
 * Register commands, timers and the rest here. Return 0, or a negative
 * LINLI_E* code (api->set_error gives the reason shown to the admin): the
 * kernel then removes everything this instance registered and does not call
 * fini.
 *
 * fini — called once on the kernel thread when the plugin is disabled,
 * reloaded (after its replacement's init succeeded) or the daemon stops, in
 * the reverse order of init. May be NULL. Anything still registered when
 * fini returns is removed by the kernel; free your own memory here.
 */
typedef int (*linli_init_fn)(linli_ctx *ctx, const struct linli_api *api);
typedef void (*linli_fini_fn)(linli_ctx *ctx, const struct linli_api *api);

/* struct linli_plugin — the exported descriptor, since 1.0. */
struct linli_plugin {
	uint32_t size;			       /* sizeof(struct linli_plugin) at build time */
	uint16_t sdk_major, sdk_minor;	       /* same as in the metadata block */
	const struct linli_plugin_meta *meta; /* the block in .linli_plugin */
	linli_init_fn init;		       /* required */
	linli_fini_fn fini;		       /* may be NULL */
};

#define LINLI_PLUGIN_SIZE_1_0 ((uint32_t)sizeof(struct linli_plugin))

/*
 * LINLI_PLUGIN(init, fini, .name = ..., ...) — declare the plugin. Use once,
 * at file scope, in one source file of the plugin. The designated initialisers
 * after init and fini fill struct linli_plugin_meta; a string that does not
 * fit its field is a compile error.
 */
#define LINLI_PLUGIN(init_fn, fini_fn, ...)                                                        \
	__attribute__((section(LINLI_PLUGIN_SECTION), used, aligned(8))) static const struct      \
		linli_plugin_meta linli_plugin_meta_ = {.magic = LINLI_META_MAGIC,                 \
							.size = sizeof(struct linli_plugin_meta),  \
							.sdk_major = LINLI_SDK_MAJOR,              \
							.sdk_minor = LINLI_SDK_MINOR,              \
							__VA_ARGS__};                              \
	__attribute__((visibility("default"))) extern const struct linli_plugin                    \
		linli_plugin_descriptor;                                                           \
	const struct linli_plugin linli_plugin_descriptor = {                                      \
		.size = sizeof(struct linli_plugin),                                               \
		.sdk_major = LINLI_SDK_MAJOR,                                                      \
		.sdk_minor = LINLI_SDK_MINOR,                                                      \
		.meta = &linli_plugin_meta_,                                                       \
		.init = (init_fn),                                                                 \
		.fini = (fini_fn)}

#ifdef __cplusplus
}
#endif

#endif
