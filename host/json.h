/*
 * json — conversion between MessagePack and JSON at the edges.
 *
 * Inside the kernel everything is MessagePack; JSON appears only where a
 * person or a third-party app reads or writes (console output, HTTP). Built
 * on jansson. Binary strings become base64-free "\u"-escaped strings only if
 * valid UTF-8; otherwise they are refused rather than silently mangled.
 */
#ifndef LINLI_JSON_H
#define LINLI_JSON_H

#include <jansson.h>
#include <msgpack.h>

/* A new JSON value for `o` (caller json_decref's), or NULL on a value JSON cannot hold. */
json_t *json_from_mp(const msgpack_object *o);

/*
 * Pack JSON value `j` as MessagePack. Returns 0, or LINLI_ELIMIT when arrays
 * and objects nest deeper than MP_MAX_DEPTH (what msgpack-c unpacks): then
 * what was packed is incomplete and must be dropped.
 */
int json_to_mp(const json_t *j, msgpack_packer *pk);

/*
 * json_parse_to_mp — parse JSON text and pack it. On a syntax error returns
 * LINLI_EINVAL with "line L column C: reason" in err; on nesting deeper than
 * MP_MAX_DEPTH, LINLI_ELIMIT.
 */
int json_parse_to_mp(const char *text, size_t len, msgpack_packer *pk, char *err, size_t errlen);

#endif
