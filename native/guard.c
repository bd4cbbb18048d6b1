/* Runaway guard: a Lua count hook that aborts a callback slice running longer than its budget.
 * It is C (compiled at start-up by bun:ffi's TinyCC) because raising a Lua error longjmps, which must
 * never cross a JavaScript frame. Every slice starts through guard_resume/guard_pcall, which bump the
 * slice generation (here, not from JS: the JIT may reorder JS stores around FFI calls it believes pure);
 * the hook stamps the time the first time it sees a new slice and errors once the slice is older than
 * the budget. No headers: this must compile on machines without libc development files. */
typedef struct lua_State lua_State;
typedef struct lua_Debug lua_Debug;
struct timespec_ { long tv_sec; long tv_nsec; };
int clock_gettime(int clock, struct timespec_ *t);
int luaL_error(lua_State *L, const char *fmt, ...);
int lua_resume(lua_State *L, int narg);
int lua_pcall(lua_State *L, int nargs, int nresults, int errfunc);

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
