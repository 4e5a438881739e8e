/*
 * plugin_lua — the script kind of plugin (plugin_lua.c): its ops for the
 * registry (plugin.h, struct plug_kind).
 */
#ifndef LINLI_PLUGIN_LUA_H
#define LINLI_PLUGIN_LUA_H

#include "plugin.h"

const struct plug_kind *plugin_lua_kind(void);

#endif
