/*
 * plugin_so — the `.so` kind of plugin (plugin_so.c): its ops for the
 * registry (plugin.h, struct plug_kind). plug_read_meta, declared in
 * plugin.h, lives there too.
 */
#ifndef LINLI_PLUGIN_SO_H
#define LINLI_PLUGIN_SO_H

#include "plugin.h"

const struct plug_kind *plugin_so_kind(void);

#endif
