/*
 * luastr — see luastr.h.
 *
 * The pattern language, results and error messages are those of Lua 5.4's
 * string library (lstrlib.c, Copyright (C) 1994-2022 Lua.org, PUC-Rio,
 * MIT licence), so scripts see no difference. This matcher is written for
 * linli: it is the same backtracking algorithm, but every step it takes is
 * counted and charged to the running invocation (script_charge), so a
 * pattern like ".-.-.-.-.-.-.-b" over a long subject is stopped by the
 * instruction budget or the wall-clock deadline instead of running for
 * minutes. Plain finds use memmem (linear), not a quadratic scan.
 *
 * The table functions are the stock ones behind a wrapper that measures the
 * range they will walk (its length may come from a __len metamethod that
 * lies) and charges it first; table.sort is our own, charged per comparison.
 * The stock functions that scan a string (utf8.*, tonumber, math.* and
 * string arithmetic converting numerals) are wrapped the same way.
 */
#include "luastr.h"

#include <ctype.h>
#include <lauxlib.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "script.h"

#define MAXCAPTURES 32
#define MAXDEPTH    200	 /* recursion of the matcher, as Lua's MAXCCALLS */
#define TICK	    1024 /* steps charged at a time */
#define CAP_OPEN    (-1) /* capture still open */
#define CAP_POS	    (-2) /* position capture `()` */
#define ESC	    '%'
#define SPECIALS    "^$*+?.([%-"

struct matcher {
	const char *src, *src_end; /* subject */
	const char *pat_end;
	lua_State *L;
	int depth; /* recursion left */
	int ncap;
	unsigned tick; /* steps until the next charge */
	struct {
		const char *at;
		ptrdiff_t len;
	} cap[MAXCAPTURES];
};

static void step(struct matcher *m)
{
	if (--m->tick == 0) {
		m->tick = TICK;
		script_charge(m->L, TICK);
	}
}

/* Charge what is left of the current tick (called when a function is done). */
static void settle(struct matcher *m)
{
	if (m->tick < TICK)
		script_charge(m->L, TICK - m->tick);
	m->tick = TICK;
}

static void init_matcher(struct matcher *m, lua_State *L, const char *s, size_t ls, const char *p,
			 size_t lp)
{
	m->L = L;
	m->src = s;
	m->src_end = s + ls;
	m->pat_end = p + lp;
	m->tick = TICK;
	m->ncap = 0;
	m->depth = MAXDEPTH;
}

/* One class item starts at p; return where it ends. */
static const char *item_end(struct matcher *m, const char *p)
{
	char c = *p++;
	if (c == ESC) {
		if (p >= m->pat_end)
			luaL_error(m->L, "malformed pattern (ends with '%%')");
		return p + 1;
	}
	if (c == '[') {
		if (p < m->pat_end && *p == '^')
			p++;
		/* The first character of a set is taken literally, even ']'. */
		do {
			if (p >= m->pat_end)
				luaL_error(m->L, "malformed pattern (missing ']')");
			c = *p++;
			if (c == ESC && p < m->pat_end)
				p++;
		} while (p >= m->pat_end || *p != ']');
		return p + 1;
	}
	return p;
}

static int class_has(int c, int cl)
{
	int r;
	switch (tolower(cl)) {
	case 'a':
		r = isalpha(c);
		break;
	case 'c':
		r = iscntrl(c);
		break;
	case 'd':
		r = isdigit(c);
		break;
	case 'g':
		r = isgraph(c);
		break;
	case 'l':
		r = islower(c);
		break;
	case 'p':
		r = ispunct(c);
		break;
	case 's':
		r = isspace(c);
		break;
	case 'u':
		r = isupper(c);
		break;
	case 'w':
		r = isalnum(c);
		break;
	case 'x':
		r = isxdigit(c);
		break;
	case 'z': /* deprecated in Lua 5.2, still accepted by 5.4 */
		r = c == 0;
		break;
	default:
		return cl == c;
	}
	r = r != 0;
	return isupper(cl) ? !r : r;
}

/* Is c in the set [ ... ] that starts at p and whose closing ']' is at end? */
static int set_has(int c, const char *p, const char *end)
{
	int yes = 1;
	p++;
	if (*p == '^') {
		yes = 0;
		p++;
	}
	for (; p < end; p++) {
		if (*p == ESC) {
			p++;
			if (class_has(c, (unsigned char)*p))
				return yes;
		} else if (p[1] == '-' && p + 2 < end) {
			if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
				return yes;
			p += 2;
		} else if ((unsigned char)*p == c)
			return yes;
	}
	return !yes;
}

/* Does the item p..ep match the one character at s? */
static int item_matches(struct matcher *m, const char *s, const char *p, const char *ep)
{
	if (s >= m->src_end)
		return 0;
	int c = (unsigned char)*s;
	switch (*p) {
	case '.':
		return 1;
	case ESC:
		return class_has(c, (unsigned char)p[1]);
	case '[':
		return set_has(c, p, ep - 1);
	default:
		return (unsigned char)*p == c;
	}
}

static const char *match(struct matcher *m, const char *s, const char *p);

static const char *balance(struct matcher *m, const char *s, const char *p)
{
	if (p + 1 >= m->pat_end)
		luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
	if (s >= m->src_end || *s != *p)
		return NULL;
	char open = p[0], close = p[1];
	int level = 1;
	while (++s < m->src_end) {
		step(m);
		if (*s == close) {
			if (--level == 0)
				return s + 1;
		} else if (*s == open)
			level++;
	}
	return NULL;
}

/* Greedy repetition: take as many as possible, then give back one by one. */
static const char *greedy(struct matcher *m, const char *s, const char *p, const char *ep)
{
	ptrdiff_t n = 0;
	while (item_matches(m, s + n, p, ep)) {
		step(m);
		n++;
	}
	for (; n >= 0; n--) {
		const char *r = match(m, s + n, ep + 1);
		if (r)
			return r;
	}
	return NULL;
}

/* Lazy repetition: take as few as possible. */
static const char *lazy(struct matcher *m, const char *s, const char *p, const char *ep)
{
	for (;;) {
		const char *r = match(m, s, ep + 1);
		if (r)
			return r;
		if (!item_matches(m, s, p, ep))
			return NULL;
		step(m);
		s++;
	}
}

static const char *open_capture(struct matcher *m, const char *s, const char *p, ptrdiff_t what)
{
	if (m->ncap >= MAXCAPTURES)
		luaL_error(m->L, "too many captures");
	m->cap[m->ncap].at = s;
	m->cap[m->ncap].len = what;
	m->ncap++;
	const char *r = match(m, s, p);
	if (!r)
		m->ncap--;
	return r;
}

static const char *close_capture(struct matcher *m, const char *s, const char *p)
{
	int i = m->ncap - 1;
	while (i >= 0 && m->cap[i].len != CAP_OPEN)
		i--;
	if (i < 0)
		luaL_error(m->L, "invalid pattern capture");
	m->cap[i].len = s - m->cap[i].at;
	const char *r = match(m, s, p);
	if (!r)
		m->cap[i].len = CAP_OPEN;
	return r;
}

static int capture_index(struct matcher *m, int c)
{
	int i = c - '1';
	if (i < 0 || i >= m->ncap || m->cap[i].len == CAP_OPEN)
		return luaL_error(m->L, "invalid capture index %%%d", i + 1);
	return i;
}

static const char *backref(struct matcher *m, const char *s, int c)
{
	int i = capture_index(m, c);
	ptrdiff_t len = m->cap[i].len;
	if (len < 0 || m->src_end - s < len || memcmp(m->cap[i].at, s, (size_t)len) != 0)
		return NULL;
	return s + len;
}

/*
 * Match pattern p at subject position s; return the end of the match or
 * NULL. Straight runs of single items loop here; repetitions, captures and
 * alternatives recurse, at most MAXDEPTH deep.
 */
static const char *match(struct matcher *m, const char *s, const char *p)
{
	if (m->depth-- == 0)
		luaL_error(m->L, "pattern too complex");
	for (;;) {
		step(m);
		if (p == m->pat_end)
			break;
		if (*p == '(') {
			s = p + 1 < m->pat_end && p[1] == ')' ? open_capture(m, s, p + 2, CAP_POS)
							      : open_capture(m, s, p + 1, CAP_OPEN);
			break;
		}
		if (*p == ')') {
			s = close_capture(m, s, p + 1);
			break;
		}
		if (*p == '$' && p + 1 == m->pat_end) {
			s = s == m->src_end ? s : NULL;
			break;
		}
		if (*p == ESC && p + 1 < m->pat_end && p[1] == 'b') {
			s = balance(m, s, p + 2);
			if (s) {
				p += 4;
				continue;
			}
			break;
		}
		if (*p == ESC && p + 1 < m->pat_end && p[1] == 'f') {
			p += 2;
			if (p >= m->pat_end || *p != '[')
				luaL_error(m->L, "missing '[' after '%%f' in pattern");
			const char *ep = item_end(m, p);
			int before = s == m->src ? '\0' : (unsigned char)s[-1];
			int here = s < m->src_end ? (unsigned char)*s : '\0';
			if (!set_has(before, p, ep - 1) && set_has(here, p, ep - 1)) {
				p = ep;
				continue;
			}
			s = NULL;
			break;
		}
		if (*p == ESC && p + 1 < m->pat_end && isdigit((unsigned char)p[1])) {
			s = backref(m, s, (unsigned char)p[1]);
			if (s) {
				p += 2;
				continue;
			}
			break;
		}
		/* A single item, perhaps followed by a repetition suffix. */
		const char *ep = item_end(m, p);
		char suffix = ep < m->pat_end ? *ep : '\0';
		if (!item_matches(m, s, p, ep)) {
			if (suffix == '*' || suffix == '?' || suffix == '-') {
				p = ep + 1;
				continue;
			}
			s = NULL;
			break;
		}
		if (suffix == '?') {
			const char *r = match(m, s + 1, ep + 1);
			if (r) {
				s = r;
				break;
			}
			p = ep + 1;
			continue;
		}
		if (suffix == '+') {
			s = greedy(m, s + 1, p, ep);
			break;
		}
		if (suffix == '*') {
			s = greedy(m, s, p, ep);
			break;
		}
		if (suffix == '-') {
			s = lazy(m, s, p, ep);
			break;
		}
		s++;
		p = ep;
	}
	m->depth++;
	return s;
}

/* ---- captures to Lua values ---- */

static void push_capture(struct matcher *m, int i, const char *s, const char *e)
{
	if (i >= m->ncap) {
		if (i != 0)
			luaL_error(m->L, "invalid capture index %%%d", i + 1);
		lua_pushlstring(m->L, s, (size_t)(e - s));
		return;
	}
	ptrdiff_t len = m->cap[i].len;
	if (len == CAP_OPEN)
		luaL_error(m->L, "unfinished capture");
	if (len == CAP_POS)
		lua_pushinteger(m->L, (m->cap[i].at - m->src) + 1);
	else
		lua_pushlstring(m->L, m->cap[i].at, (size_t)len);
}

/* Push the captures (or the whole match s..e when there are none); return the count. */
static int push_captures(struct matcher *m, const char *s, const char *e)
{
	int n = (m->ncap == 0 && s) ? 1 : m->ncap;
	luaL_checkstack(m->L, n, "too many captures");
	for (int i = 0; i < n; i++)
		push_capture(m, i, s, e);
	return n;
}

/* ---- the library functions ---- */

static size_t start_index(lua_Integer pos, size_t len)
{
	if (pos > 0)
		return (size_t)pos;
	if (pos == 0)
		return 1;
	if (pos < -(lua_Integer)len)
		return 1;
	return len + (size_t)pos + 1;
}

static const char *check_pattern(lua_State *L, int arg, size_t *lp)
{
	const char *p = luaL_checklstring(L, arg, lp);
	if (*lp > LUASTR_MAX_PATTERN)
		luaL_error(L, "pattern too long (%d bytes, at most %d)", (int)*lp,
			   LUASTR_MAX_PATTERN);
	return p;
}

static int has_specials(const char *p, size_t lp)
{
	for (size_t i = 0; i < lp; i++)
		if (p[i] && strchr(SPECIALS, p[i]))
			return 1;
	return 0;
}

static int find_or_match(lua_State *L, int find)
{
	size_t ls, lp;
	const char *s = luaL_checklstring(L, 1, &ls);
	const char *p = luaL_checklstring(L, 2, &lp);
	size_t init = start_index(luaL_optinteger(L, 3, 1), ls) - 1;
	if (init > ls) {
		luaL_pushfail(L);
		return 1;
	}
	bool plain = find && (lua_toboolean(L, 4) || !has_specials(p, lp));
	if (!plain)
		check_pattern(L, 2, &lp);
	if (plain) {
		script_charge(L, (ls - init) / 64 + 1);
		const char *at = lp == 0 ? s + init : memmem(s + init, ls - init, p, lp);
		if (!at) {
			luaL_pushfail(L);
			return 1;
		}
		lua_pushinteger(L, (at - s) + 1);
		lua_pushinteger(L, (lua_Integer)((at - s) + (ptrdiff_t)lp));
		return 2;
	}
	struct matcher m;
	const char *s1 = s + init;
	int anchor = lp > 0 && *p == '^';
	if (anchor) {
		p++;
		lp--;
	}
	init_matcher(&m, L, s, ls, p, lp);
	do {
		m.ncap = 0;
		m.depth = MAXDEPTH;
		const char *e = match(&m, s1, p);
		if (e) {
			settle(&m);
			if (find) {
				lua_pushinteger(L, (s1 - s) + 1);
				lua_pushinteger(L, e - s);
				return push_captures(&m, NULL, NULL) + 2;
			}
			return push_captures(&m, s1, e);
		}
	} while (s1++ < m.src_end && !anchor);
	settle(&m);
	luaL_pushfail(L);
	return 1;
}

static int str_find(lua_State *L)
{
	return find_or_match(L, 1);
}

static int str_match(lua_State *L)
{
	return find_or_match(L, 0);
}

/* gmatch's iterator state, a userdata upvalue beside the subject and pattern. */
struct gm {
	size_t pos;	  /* where the next search starts */
	size_t lastmatch; /* end of the last match, or SIZE_MAX */
	struct matcher m;
};

static int gmatch_next(lua_State *L)
{
	size_t ls, lp;
	const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
	const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
	struct gm *g = lua_touserdata(L, lua_upvalueindex(3));
	/* Rebuilt each call: the iterator may run on another coroutine. */
	init_matcher(&g->m, L, s, ls, p, lp);
	for (size_t at = g->pos; at <= ls; at++) {
		g->m.ncap = 0;
		g->m.depth = MAXDEPTH;
		const char *e = match(&g->m, s + at, p);
		if (e && (size_t)(e - s) != g->lastmatch) {
			g->pos = g->lastmatch = (size_t)(e - s);
			settle(&g->m);
			return push_captures(&g->m, s + at, e);
		}
	}
	g->pos = ls + 1;
	settle(&g->m);
	return 0;
}

static int str_gmatch(lua_State *L)
{
	size_t ls, lp;
	luaL_checklstring(L, 1, &ls);
	check_pattern(L, 2, &lp);
	size_t init = start_index(luaL_optinteger(L, 3, 1), ls) - 1;
	lua_settop(L, 2);
	struct gm *g = lua_newuserdatauv(L, sizeof *g, 0);
	g->pos = init > ls ? ls + 1 : init;
	g->lastmatch = SIZE_MAX;
	lua_pushcclosure(L, gmatch_next, 3);
	return 1;
}

/* Append the replacement string (argument 3) for the match s..e. */
static void add_repl_string(struct matcher *m, luaL_Buffer *b, const char *s, const char *e)
{
	lua_State *L = m->L;
	size_t l;
	const char *r = lua_tolstring(L, 3, &l);
	const char *end = r + l;
	while (r < end) {
		const char *pc = memchr(r, ESC, (size_t)(end - r));
		if (!pc) {
			luaL_addlstring(b, r, (size_t)(end - r));
			break;
		}
		luaL_addlstring(b, r, (size_t)(pc - r));
		pc++;
		if (pc < end && *pc == ESC)
			luaL_addchar(b, ESC);
		else if (pc < end && *pc == '0')
			luaL_addlstring(b, s, (size_t)(e - s));
		else if (pc < end && isdigit((unsigned char)*pc)) {
			push_capture(m, *pc - '1', s, e);
			luaL_tolstring(L, -1, NULL); /* a position capture is an integer */
			lua_remove(L, -2);
			luaL_addvalue(b);
		} else
			luaL_error(L, "invalid use of '%c' in replacement string", ESC);
		r = pc + 1;
	}
}

/* Append the replacement for s..e; return whether the text changed. */
static int add_replacement(struct matcher *m, luaL_Buffer *b, const char *s, const char *e, int tr)
{
	lua_State *L = m->L;
	if (tr == LUA_TFUNCTION) {
		lua_pushvalue(L, 3);
		int n = push_captures(m, s, e);
		lua_call(L, n, 1);
	} else if (tr == LUA_TTABLE) {
		push_capture(m, 0, s, e);
		lua_gettable(L, 3);
	} else {
		add_repl_string(m, b, s, e);
		return 1;
	}
	if (!lua_toboolean(L, -1)) {
		lua_pop(L, 1);
		luaL_addlstring(b, s, (size_t)(e - s));
		return 0;
	}
	if (!lua_isstring(L, -1))
		return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
	luaL_addvalue(b);
	return 1;
}

static int str_gsub(lua_State *L)
{
	size_t ls, lp;
	const char *src = luaL_checklstring(L, 1, &ls);
	const char *p = check_pattern(L, 2, &lp);
	const char *lastmatch = NULL;
	int tr = lua_type(L, 3);
	lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
	luaL_argexpected(
	    L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
	    "string/function/table");
	int anchor = lp > 0 && *p == '^';
	if (anchor) {
		p++;
		lp--;
	}
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	struct matcher m;
	init_matcher(&m, L, src, ls, p, lp);
	lua_Integer n = 0;
	int changed = 0;
	while (n < max) {
		m.ncap = 0;
		m.depth = MAXDEPTH;
		const char *e = match(&m, src, p);
		if (e && e != lastmatch) {
			n++;
			changed |= add_replacement(&m, &b, src, e, tr);
			src = lastmatch = e;
		} else if (src < m.src_end)
			luaL_addchar(&b, *src++);
		else
			break;
		if (anchor)
			break;
	}
	settle(&m);
	if (!changed)
		lua_pushvalue(L, 1);
	else {
		luaL_addlstring(&b, src, (size_t)(m.src_end - src));
		luaL_pushresult(&b);
	}
	lua_pushinteger(L, n);
	return 2;
}

/*
 * string.rep: the stock one loops n times even when the result is empty
 * (`string.rep("", 1e15)` never returns), and copies without charging.
 */
static int str_rep(lua_State *L)
{
	size_t l, lsep;
	const char *s = luaL_checklstring(L, 1, &l);
	lua_Integer n = luaL_checkinteger(L, 2);
	const char *sep = luaL_optlstring(L, 3, "", &lsep);
	if (n <= 0 || l + lsep == 0) {
		lua_pushliteral(L, "");
		return 1;
	}
	if (l + lsep < l || l + lsep > (size_t)LUA_MAXINTEGER / (size_t)n)
		return luaL_error(L, "resulting string too large");
	size_t total = (size_t)n * l + (size_t)(n - 1) * lsep;
	luaL_Buffer b;
	char *out = luaL_buffinitsize(L, &b, total); /* the memory cap refuses first */
	script_charge(L, (uint64_t)n / 4 + total / 64);
	for (lua_Integer i = 0; i < n; i++) {
		memcpy(out, s, l);
		out += l;
		if (lsep > 0 && i + 1 < n) {
			memcpy(out, sep, lsep);
			out += lsep;
		}
	}
	luaL_pushresultsize(&b, total);
	return 1;
}

/* ---- table functions: charge the range, then call the stock function ---- */

static lua_Integer len_of(lua_State *L, int idx)
{
	luaL_checktype(L, idx, LUA_TTABLE);
	return luaL_len(L, idx); /* may run a __len metamethod: Lua code, under the hook */
}

static uint64_t span(lua_Integer a, lua_Integer b)
{
	if (b < a)
		return 0;
	/* b - a may overflow a signed integer: compute unsigned. */
	return (uint64_t)b - (uint64_t)a + 1;
}

/* Call the stock function (upvalue 1) with this call's arguments. */
static int call_stock(lua_State *L)
{
	int n = lua_gettop(L);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, n, LUA_MULTRET);
	return lua_gettop(L);
}

static int tab_insert(lua_State *L)
{
	lua_Integer n = len_of(L, 1);
	script_charge(L, n > 0 ? (uint64_t)n : 1);
	return call_stock(L);
}

static int tab_remove(lua_State *L)
{
	lua_Integer n = len_of(L, 1);
	script_charge(L, n > 0 ? (uint64_t)n : 1);
	return call_stock(L);
}

static int tab_move(lua_State *L)
{
	lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);
	script_charge(L, span(f, e) + 1);
	return call_stock(L);
}

static int tab_concat(lua_State *L)
{
	lua_Integer last = lua_isnoneornil(L, 4) ? len_of(L, 1) : luaL_checkinteger(L, 4);
	lua_Integer first = luaL_optinteger(L, 3, 1);
	script_charge(L, span(first, last) + 1);
	return call_stock(L);
}

static int tab_unpack(lua_State *L)
{
	lua_Integer first = luaL_optinteger(L, 2, 1);
	lua_Integer last = lua_isnoneornil(L, 3) ? luaL_len(L, 1) : luaL_checkinteger(L, 3);
	script_charge(L, span(first, last) + 1);
	return call_stock(L);
}

/*
 * table.sort, our own: the stock one charges nothing per comparison, and
 * comparing two long strings is one C call (strcoll over their common
 * prefix), so 100,000 references to one 1 MB string never finished. A
 * heapsort (written for linli; 2 n log n comparisons at worst, no recursion,
 * indices always in 1..n whatever the order function answers) that charges
 * each comparison by what it compares: 1 unit, plus one per 64 bytes of the
 * shorter string when both are strings. Units are charged in batches of
 * SORT_BATCH, or at once for a long comparison, so the deadline is checked
 * at most that far apart. Elements are read and written with lua_geti and
 * lua_seti (metamethods included), as the stock sort does; it is not stable
 * (nor is the stock one).
 */
#define SORT_BATCH 256

struct sorter {
	lua_State *L;
	bool fn;	  /* an order function is argument 2 */
	uint64_t pending; /* units not charged yet */
};

static void sort_charge(struct sorter *so, uint64_t units)
{
	so->pending += units;
	if (so->pending >= SORT_BATCH) {
		script_charge(so->L, so->pending);
		so->pending = 0;
	}
}

/* Is the value at stack index a less than the one at b (by the order function, if any)? */
static bool sort_lt(struct sorter *so, int a, int b)
{
	lua_State *L = so->L;
	uint64_t units = 1;
	if (lua_type(L, a) == LUA_TSTRING && lua_type(L, b) == LUA_TSTRING) {
		size_t la = lua_rawlen(L, a), lb = lua_rawlen(L, b);
		units += (la < lb ? la : lb) / 64;
	}
	sort_charge(so, units); /* before comparing: a long comparison is charged first */
	if (!so->fn)
		return lua_compare(L, a, b, LUA_OPLT);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, a);
	lua_pushvalue(L, b);
	lua_call(L, 2, 1);
	bool r = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return r;
}

/*
 * The value on top of the stack sinks into the heap t[1..m] from the hole at
 * k (children of k: 2k, 2k + 1): the larger child moves up into the hole
 * until the value is not less than it. Two reads, one write and two
 * comparisons per level.
 */
static void sort_sift(struct sorter *so, lua_Integer k, lua_Integer m)
{
	lua_State *L = so->L;
	int v = lua_gettop(L);
	while (k <= m / 2) {
		lua_Integer c = 2 * k;
		lua_geti(L, 1, c);
		if (c < m) {
			lua_geti(L, 1, c + 1);
			if (sort_lt(so, v + 1, v + 2)) {
				lua_remove(L, v + 1);
				c++;
			} else
				lua_pop(L, 1);
		}
		if (!sort_lt(so, v, v + 1)) {
			lua_pop(L, 1);
			break;
		}
		lua_seti(L, 1, k); /* the child moves up into the hole */
		k = c;
	}
	lua_seti(L, 1, k);
}

static int tab_sort(lua_State *L)
{
	lua_Integer n = len_of(L, 1);
	if (n > 1) {
		luaL_argcheck(L, n < INT_MAX, 1, "array too big");
		if (!lua_isnoneornil(L, 2))
			luaL_checktype(L, 2, LUA_TFUNCTION);
		lua_settop(L, 2);
		luaL_checkstack(L, 6, "table.sort");
		struct sorter so = {.L = L, .fn = !lua_isnil(L, 2)};
		for (lua_Integer k = n / 2; k >= 1; k--) {
			lua_geti(L, 1, k);
			sort_sift(&so, k, n);
		}
		for (lua_Integer m = n; m > 1; m--) {
			lua_geti(L, 1, m); /* sinks from the root once the largest is at m */
			lua_geti(L, 1, 1);
			lua_seti(L, 1, m);
			sort_sift(&so, 1, m - 1);
		}
		if (so.pending)
			script_charge(L, so.pending);
	}
	return 0;
}

/*
 * ---- stock functions that scan: charge what they will scan, then call ----
 *
 * A C call is not interrupted by the count hook, which runs every
 * SCRIPT_HOOK_EVERY VM instructions: 250 calls of utf8.len over 8 MB between
 * two hooks held the kernel thread seconds. Charging each call checks the
 * deadline at every call, so the overrun is one call's work. The charge is
 * what the call walks (one unit per 64 bytes, as growth is charged), not the
 * size of its arguments: s:byte(i) on a long string stays cheap.
 */

static void charge_bytes(lua_State *L, size_t n)
{
	script_charge(L, 1 + n / 64);
}

/* A 1-based position as lutf8lib's u_posrelat (negative: from the end). */
static lua_Integer posrelat(lua_Integer pos, size_t len)
{
	if (pos >= 0)
		return pos;
	if ((size_t)0 - (size_t)pos > len)
		return 0;
	return (lua_Integer)len + pos + 1;
}

/* Bytes from i to j, both clamped to the string. */
static size_t range_of(lua_Integer i, lua_Integer j, size_t len)
{
	if (i < 1)
		i = 1;
	if (j > (lua_Integer)len)
		j = (lua_Integer)len;
	return j >= i ? (size_t)(j - i + 1) : 0;
}

/* utf8.len(s [, i [, j]]): scans i..j. */
static int u_len(lua_State *L)
{
	size_t len;
	luaL_checklstring(L, 1, &len);
	lua_Integer i = posrelat(luaL_optinteger(L, 2, 1), len);
	lua_Integer j = posrelat(luaL_optinteger(L, 3, -1), len);
	charge_bytes(L, range_of(i, j, len));
	return call_stock(L);
}

/* utf8.codepoint and string.byte (s [, i [, j]]): one value pushed per byte of i..j at most. */
static int push_range(lua_State *L)
{
	size_t len;
	luaL_checklstring(L, 1, &len);
	lua_Integer i = posrelat(luaL_optinteger(L, 2, 1), len);
	lua_Integer j = posrelat(luaL_optinteger(L, 3, i), len);
	script_charge(L, 1 + range_of(i, j, len));
	return call_stock(L);
}

/* utf8.offset(s, n [, i]): walks from i to the answer (or the end); charged after. */
static int u_offset(lua_State *L)
{
	size_t len;
	luaL_checklstring(L, 1, &len);
	lua_Integer n = luaL_checkinteger(L, 2);
	lua_Integer i = posrelat(luaL_optinteger(L, 3, n >= 0 ? 1 : (lua_Integer)len + 1), len);
	int nres = call_stock(L);
	size_t walked = len;
	if (nres >= 1 && lua_isinteger(L, 1)) {
		lua_Integer at = lua_tointeger(L, 1);
		walked = at > i ? (size_t)(at - i) : (size_t)(i - at);
	}
	charge_bytes(L, walked);
	return nres;
}

/* The iterator utf8.codes returns, wrapped: charged by how far it moved. */
static int u_codes_next(lua_State *L)
{
	size_t len = 0;
	if (lua_type(L, 1) == LUA_TSTRING)
		lua_tolstring(L, 1, &len);
	lua_Integer from = lua_tointeger(L, 2);
	int nres = call_stock(L);
	lua_Integer to = nres >= 1 && lua_isinteger(L, 1) ? lua_tointeger(L, 1) : (lua_Integer)len;
	charge_bytes(L, to > from ? (size_t)(to - from) : 0);
	return nres;
}

static int u_codes(lua_State *L)
{
	int nres = call_stock(L); /* iterator, s, 0 */
	if (nres >= 1) {
		lua_pushvalue(L, 1);
		lua_pushcclosure(L, u_codes_next, 1);
		lua_replace(L, 1);
	}
	return nres;
}

/* Bytes of the string arguments from `first` on (numerals a function converts); -1: none. */
static int64_t string_args_from(lua_State *L, int first)
{
	int64_t bytes = -1;
	for (int i = first, n = lua_gettop(L); i <= n; i++)
		if (lua_type(L, i) == LUA_TSTRING)
			bytes = (bytes < 0 ? 0 : bytes) + (int64_t)lua_rawlen(L, i);
	return bytes;
}

static int64_t string_args(lua_State *L)
{
	return string_args_from(L, 1);
}

/* utf8.char and string.char (...): one unit per argument, and the numerals' bytes. */
static int per_arg(lua_State *L)
{
	int64_t bytes = string_args(L);
	script_charge(L, 1 + (uint64_t)lua_gettop(L) + (bytes > 0 ? (uint64_t)bytes / 64 : 0));
	return call_stock(L);
}

/*
 * A function whose numbers may come as strings: converting a numeral scans
 * it (strtod over 8 MB: ~9 ms). Charged only when an argument is a string,
 * so math.floor(x) costs no clock read.
 */
static int numerals(lua_State *L)
{
	int64_t bytes = string_args(L); /* every argument: math.max(table.unpack(t)) */
	if (bytes >= 0)
		charge_bytes(L, (size_t)bytes);
	return call_stock(L);
}

/*
 * string.sub (s, i, j): i and j may be numerals (`s:sub(n)` with n 8 MB of
 * blanks and a digit scans 8 MB); s itself is not read, so it is not charged.
 */
static int numeral_args(lua_State *L)
{
	int64_t bytes = string_args_from(L, 2);
	if (bytes >= 0)
		charge_bytes(L, (size_t)bytes);
	return call_stock(L);
}

static void wrap(lua_State *L, int tab, const char *name, lua_CFunction fn)

{
	lua_getfield(L, tab, name);
	lua_pushcclosure(L, fn, 1);
	lua_setfield(L, tab, name);
}

void luastr_install(lua_State *L, int str, int tab)
{
	static const luaL_Reg sfns[] = {{"find", str_find},	{"match", str_match},
					{"gmatch", str_gmatch}, {"gsub", str_gsub},
					{"rep", str_rep},	{NULL, NULL}};
	for (const luaL_Reg *r = sfns; r->name; r++) {
		lua_pushcfunction(L, r->func);
		lua_setfield(L, str, r->name);
	}
	lua_pushnil(L);
	lua_setfield(L, str, "dump");
	wrap(L, str, "byte", push_range);
	wrap(L, str, "char", per_arg);
	wrap(L, str, "sub", numeral_args);
	/* Arithmetic on strings ("1" + 1) runs these metamethods: they convert numerals. */
	static const char *const arith[] = {"__add", "__sub",  "__mul", "__mod", "__pow",
					    "__div", "__idiv", "__unm", NULL};
	lua_pushliteral(L, "");
	if (lua_getmetatable(L, -1)) {
		int mt = lua_gettop(L);
		for (int i = 0; arith[i]; i++)
			if (lua_getfield(L, mt, arith[i]) == LUA_TFUNCTION) {
				lua_pop(L, 1);
				wrap(L, mt, arith[i], numerals);
			} else
				lua_pop(L, 1);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	wrap(L, tab, "insert", tab_insert);
	wrap(L, tab, "remove", tab_remove);
	wrap(L, tab, "move", tab_move);
	wrap(L, tab, "concat", tab_concat);
	wrap(L, tab, "unpack", tab_unpack);
	lua_pushcfunction(L, tab_sort);
	lua_setfield(L, tab, "sort");
}

void luastr_install_utf8(lua_State *L, int u)
{
	wrap(L, u, "len", u_len);
	wrap(L, u, "codepoint", push_range);
	wrap(L, u, "offset", u_offset);
	wrap(L, u, "codes", u_codes);
	wrap(L, u, "char", per_arg);
}

void luastr_install_math(lua_State *L, int m)
{
	lua_pushnil(L);
	while (lua_next(L, m)) {
		if (lua_type(L, -1) == LUA_TFUNCTION && lua_type(L, -2) == LUA_TSTRING) {
			lua_pushcclosure(L, numerals, 1);
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, m); /* replacing an existing key keeps lua_next valid */
		} else
			lua_pop(L, 1);
	}
}

void luastr_install_base(lua_State *L, int g)
{
	wrap(L, g, "tonumber", numerals);
}
