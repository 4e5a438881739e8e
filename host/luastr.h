/*
 * luastr — bounded replacements for the Lua library functions a script can
 * make run long in C: string.find/match/gmatch/gsub (a pattern matcher that
 * counts its steps), string.rep, table.sort (a heapsort that charges every
 * comparison by the lengths it compares), table.insert/remove/move/concat/
 * unpack (which charge the length they will walk before walking it), and the
 * stock functions that scan a string (utf8.*, string.byte/char, tonumber,
 * math.* and string arithmetic on numerals), wrapped to charge what they scan.
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

/*
 * The same for the stock functions that scan a string without allocating
 * (they are wrapped: each call charges what it will scan, so the deadline is
 * checked at every call): utf8.len/codepoint/offset/codes/char in the utf8
 * table at `u`; every function of the math table at `m` (a numeral string
 * argument is converted); tonumber in the table at `g`.
 */
void luastr_install_utf8(lua_State *L, int u);
void luastr_install_math(lua_State *L, int m);
void luastr_install_base(lua_State *L, int g);

#endif
