/*
 * upload — files sent to the node over the control socket in chunks, for
 * `plugins install|upgrade @ID` (a bundle is larger than one request):
 *
 *   plugins upload begin SIZE BLAKE2B-256-HEX   -> {id, chunk_max}
 *   plugins upload chunk ID OFFSET  + input: the chunk in base64 -> {received}
 *   plugins upload abort ID
 *
 * Chunks come in order (OFFSET = what was received); the upload is whole when
 * SIZE bytes came and their hash is the one announced, which upload_take
 * checks. Bounded: UPLOAD_MAX_OPEN open uploads, UPLOAD_MAX_TOTAL bytes
 * announced among them, an upload without a chunk for UPLOAD_IDLE_MS (the
 * kernel's clock) dropped. Only the account that began one may continue it.
 */
#ifndef LINLI_UPLOAD_H
#define LINLI_UPLOAD_H

#include <stddef.h>

struct kernel;
struct uploads;
struct tier_principal;

#define UPLOAD_MAX_OPEN	 4
#define UPLOAD_MAX_TOTAL (128u << 20)
#define UPLOAD_IDLE_MS	 (5 * 60 * 1000)
/* raw bytes a chunk (base64 fits a 1 MiB request); less under a smaller control.max_request */
#define UPLOAD_CHUNK_MAX (384u << 10)

struct uploads *upload_open(struct kernel *k, char *err, size_t errlen);
void upload_close(struct uploads *u);
/*
 * upload_take — "@ID" of `who`, whole and matching its hash: its bytes
 * (*data is the caller's to free) and the upload is gone. 0 or LINLI_E*
 * with err (unknown, not whole, hash differs: the upload is dropped).
 */
int upload_take(struct uploads *u, const char *ref, const struct tier_principal *who,
		unsigned char **data, size_t *len, char *err, size_t errlen);

#endif
