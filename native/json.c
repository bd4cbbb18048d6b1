/* mix.json_encode / mix.json_decode / mix.null as lua_CFunctions (docs/lua-codec.md "JSON"), built by
 * native/compile.ts like runtime.c (no headers: the few declarations needed are written out).
 * A call never enters JS. They run inside Lua with the state's memory limit on, so any Lua allocation may
 * raise "not enough memory" (a longjmp): every byte they hold is the C stack or Lua-managed (a userdata kept
 * on the Lua stack), never malloc'd. Bad input returns nil, err; errors travel up as a 0 return, with the
 * message in the walker's `err`. Strings are bytes: NUL and invalid UTF-8 pass through unchanged. */
typedef struct lua_State lua_State;
int lua_gettop(lua_State *L);
void lua_settop(lua_State *L, int idx);
int lua_type(lua_State *L, int idx);
int lua_checkstack(lua_State *L, int n);
double lua_tonumber(lua_State *L, int idx);
int lua_toboolean(lua_State *L, int idx);
void *lua_touserdata(lua_State *L, int idx);
const char *lua_tolstring(lua_State *L, int idx, unsigned long *len);
void lua_pushnil(lua_State *L);
void lua_pushnumber(lua_State *L, double n);
void lua_pushboolean(lua_State *L, int b);
void lua_pushlstring(lua_State *L, const char *s, unsigned long len);
void lua_pushstring(lua_State *L, const char *s);
void lua_pushlightuserdata(lua_State *L, void *p);
void lua_pushvalue(lua_State *L, int idx);
void lua_replace(lua_State *L, int idx);
void *lua_newuserdata(lua_State *L, unsigned long size);
void lua_createtable(lua_State *L, int narr, int nrec);
void lua_getfield(lua_State *L, int idx, const char *k);
void lua_rawget(lua_State *L, int idx);
void lua_rawset(lua_State *L, int idx);
void lua_rawgeti(lua_State *L, int idx, int n);
void lua_rawseti(lua_State *L, int idx, int n);
int lua_next(lua_State *L, int idx);
int lua_rawequal(lua_State *L, int a, int b);
int lua_getmetatable(lua_State *L, int idx);
int lua_setmetatable(lua_State *L, int idx);
void *memcpy(void *d, const void *s, unsigned long n);
int snprintf(char *s, unsigned long n, const char *fmt, ...);
double strtod(const char *s, char **end);
#define LUA_REGISTRYINDEX (-10000)
#define LUA_TNIL 0
#define LUA_TBOOLEAN 1
#define LUA_TLIGHTUSERDATA 2
#define LUA_TNUMBER 3
#define LUA_TSTRING 4
#define LUA_TTABLE 5
#define MAX_DEPTH 1000
/* Registry key of the metatable that marks a table as a JSON object (json.lua sets it). */
#define OBJECT_KEY "connmix.json_object"
#define SAFE_INTEGER 9007199254740991.0
#define BUFFER_SLOT 2 /* the stack slot a buffer that outgrew the C stack lives in (a userdata) */

static const char *type_name(int t) {
  static const char *names[] = { "nil", "boolean", "userdata", "number", "string", "table", "function", "userdata", "thread" };
  return t >= 0 && t <= 8 ? names[t] : "no value";
}

/* nil, message; drops whatever was pushed (arguments after the first too). */
static int fail(lua_State *L, const char *message) {
  lua_settop(L, 1);
  lua_pushnil(L);
  lua_pushstring(L, message);
  return 2;
}

/* Bytes a scan through a string's contents stops at: its closing quote, an escape, a control byte (which
 * needs an escape, or is the NUL that ends every Lua string). A table lookup per byte is the fastest loop
 * TinyCC compiles. */
#define STOP8(c) [c] = 1, [c + 1] = 1, [c + 2] = 1, [c + 3] = 1, [c + 4] = 1, [c + 5] = 1, [c + 6] = 1, [c + 7] = 1
static const unsigned char string_stop[256] = { STOP8(0), STOP8(8), STOP8(16), STOP8(24), ['"'] = 1, ['\\'] = 1 };

/* A growable byte buffer: first on the C stack, then a userdata in BUFFER_SLOT (collected by Lua). */
typedef struct { lua_State *L; char *p; unsigned long n, cap; } buffer;

static char *reserve(buffer *b, unsigned long extra) {
  char *p;
  unsigned long cap = b->cap * 2;
  if (b->n + extra <= b->cap) return b->p + b->n;
  while (cap < b->n + extra) cap *= 2;
  p = (char *)lua_newuserdata(b->L, cap);
  memcpy(p, b->p, b->n);
  lua_replace(b->L, BUFFER_SLOT);
  b->p = p;
  b->cap = cap;
  return p + b->n;
}

static void put(buffer *b, const char *s, unsigned long n) {
  memcpy(reserve(b, n), s, n);
  b->n += n;
}

static void put_byte(buffer *b, char c) {
  *reserve(b, 1) = c;
  b->n++;
}

/* One byte, without a call while there is room (TinyCC inlines nothing). */
#define PUT1(b, c) ((b)->n < (b)->cap ? (void)((b)->p[(b)->n++] = (c)) : put_byte(b, c))

#include "json-encode.c"
#include "json-decode.c"
