/*
 * linli/linli.h — the one header a plugin includes.
 *
 *   version.h  LINLI_SDK_MAJOR / LINLI_SDK_MINOR
 *   error.h    LINLI_OK, LINLI_E* codes, linli_strerror
 *   plugin.h   the descriptor and LINLI_PLUGIN(...)
 *   record.h   records: types, ownership, time
 *   store.h    the store's limits, query and callback types
 *   api.h      struct linli_api, the function table init receives
 *   device.h   the device layer: driver ops, readings (included by api.h)
 *   time.h     local calendar time: struct linli_tm (included by api.h; 1.1)
 *
 * Build flags come from `pkg-config --cflags linli-sdk`; a plugin needs no
 * library (`--libs` is empty). See the vendor guide, sdk/README.md.
 */
#ifndef LINLI_LINLI_H
#define LINLI_LINLI_H

#include "linli/version.h"
#include "linli/error.h"
#include "linli/plugin.h"
#include "linli/record.h"
#include "linli/store.h"
#include "linli/api.h"

#endif
