/*
 * luastr — bounded replacements for the Lua library functions a script can
 * make run long in C: string.find/match/gmatch/gsub (a pattern matcher that
 * counts its steps), string.rep, and table.insert/remove/move/concat/unpack/
 * sort (which charge the length they will walk before walking it).
 *
 * Every function charges its work to the running invocation through
 * script_charge, which stops it when the instruction budget or the wall-clock
 * deadline is passed. Never allocates outside the state's own allocator.
 */
#ifndef LINLI_LUASTR_H
#define LINLI_LUASTR_H

#include <lua.h>

#define LUASTR_MAX_PATTERN 4096 /* bytes of one pattern */

/*
 * Replace the functions above in the string table at index `str` and the
 * table library at index `tab` (absolute indices); removes string.dump.
 */
void luastr_install(lua_State *L, int str, int tab);

#endif
