/*
 * linli/version.h — the SDK version a plugin is built against.
 *
 * A plugin records LINLI_SDK_MAJOR and LINLI_SDK_MINOR in its descriptor
 * (LINLI_PLUGIN writes them). linlid loads a plugin only when the major is its
 * own and the minor is not newer than its own: within one major, everything
 * is only ever appended, so a plugin built for 1.0 runs on every 1.x kernel.
 *
 * Versioning rule for kernel developers: members, error codes and descriptor
 * fields are appended, never moved, changed or removed, within a major. Before
 * the first release every addition is "since 1.0"; after a release each
 * release that appends anything increments LINLI_SDK_MINOR and marks the new
 * members "since 1.N". Anything else is a new major.
 */
#ifndef LINLI_VERSION_H
#define LINLI_VERSION_H

#define LINLI_SDK_MAJOR 1
#define LINLI_SDK_MINOR 1

#define LINLI_SDK_STR_(x) #x
#define LINLI_SDK_STR(x) LINLI_SDK_STR_(x)
/* "1.0" */
#define LINLI_SDK_VERSION LINLI_SDK_STR(LINLI_SDK_MAJOR) "." LINLI_SDK_STR(LINLI_SDK_MINOR)

#endif
