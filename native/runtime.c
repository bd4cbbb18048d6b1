/* The runtime's C side, compiled at start-up by bun:ffi's TinyCC. No headers: this must compile on
 * machines without libc development files, so the few declarations needed are written out here.
 *
 * 1. Runaway guard: a Lua count hook that aborts a callback slice running longer than its budget.
 * It is C (compiled at start-up by bun:ffi's TinyCC) because raising a Lua error longjmps, which must
 * never cross a JavaScript frame. Every slice starts through guard_resume/guard_pcall, which bump the
 * slice generation (here, not from JS: the JIT may reorder JS stores around FFI calls it believes pure);
 * the hook stamps the time the first time it sees a new slice and errors once the slice is older than
 * the budget.
 * 2. Event dispatch: pushing one event's arguments and resuming its coroutine is one FFI call. */
typedef struct lua_State lua_State;
typedef struct lua_Debug lua_Debug;
struct timespec_ { long tv_sec; long tv_nsec; };
int clock_gettime(int clock, struct timespec_ *t);
int luaL_error(lua_State *L, const char *fmt, ...);
int lua_resume(lua_State *L, int narg);
int lua_pcall(lua_State *L, int nargs, int nresults, int errfunc);
void lua_pushnumber(lua_State *L, double n);
void lua_pushnil(lua_State *L);
void lua_pushlstring(lua_State *L, const char *s, unsigned long len);
const char *lua_tolstring(lua_State *L, int idx, unsigned long *len);
void lua_rawgeti(lua_State *L, int idx, int n);
int lua_gettop(lua_State *L);
int lua_type(lua_State *L, int idx);
#define LUA_REGISTRYINDEX (-10000)
#define LUA_YIELD 1
#define LUA_TBOOLEAN 1

static int generation;
static int budget_ms;  /* 0 = no budget */
static int seen_generation = -1;
static long long slice_started;

void guard_budget(int ms) { budget_ms = ms; }
int guard_resume(lua_State *L, int narg) { generation++; return lua_resume(L, narg); }
int guard_pcall(lua_State *L, int nargs, int nresults, int errfunc) {
  generation++;
  return lua_pcall(L, nargs, nresults, errfunc);
}

static long long now_ns(void) {
  struct timespec_ t;
  clock_gettime(1 /* CLOCK_MONOTONIC */, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

void guard_hook(lua_State *L, lua_Debug *ar) {
  long long now;
  (void)ar;
  if (budget_ms <= 0) return;
  now = now_ns();
  if (generation != seen_generation) {
    seen_generation = generation;
    slice_started = now;
    return;
  }
  if (now - slice_started > budget_ms * 1000000LL) {
    luaL_error(L, "callback exceeded its time budget of %d ms", budget_ms);
  }
}

/* ---- event dispatch ---- */

/* Address of the payload string of the event being run (Lua interns strings, so a string at this address
 * has the payload's bytes while the event runs); 0 outside events. JS reads it to skip decoding replies
 * that echo the payload. */
static const char *payload_address;

const char **dispatch_payload_address(void) { return &payload_address; }

/* Resumes coroutine `co` with (kind, id, payload, extra); `worker_ref` > 0 first pushes the worker function
 * (a fresh coroutine). len < 0 means a nil payload; `text` says the payload is the JS string JS staged
 * (only then is its address remembered in payload_address). Returns 0x100 when the callback finished (it yielded
 * `true`), otherwise the lua_resume status (LUA_YIELD: it waits on a blocking op; > 1: an error). */
int dispatch_event(lua_State *co, int worker_ref, double kind, double id, const char *data, int len, int text, double extra) {
  int status;
  unsigned long n;
  if (worker_ref > 0) lua_rawgeti(co, LUA_REGISTRYINDEX, worker_ref);
  lua_pushnumber(co, kind);
  lua_pushnumber(co, id);
  if (len >= 0) {
    lua_pushlstring(co, data, (unsigned long)len);
    if (text) payload_address = lua_tolstring(co, -1, &n);
  } else {
    lua_pushnil(co);
  }
  lua_pushnumber(co, extra);
  generation++;
  status = lua_resume(co, 4);
  payload_address = 0;
  if (status == LUA_YIELD && lua_gettop(co) == 1 && lua_type(co, 1) == LUA_TBOOLEAN) return 0x100;
  return status;
}
