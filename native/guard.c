/* Runaway guard: a Lua count hook that aborts a callback slice running longer than its budget.
 * It is C (compiled at start-up by bun:ffi's TinyCC) because raising a Lua error longjmps, which must
 * never cross a JavaScript frame. JS announces each new slice by bumping `state[0]` (shared memory, no
 * FFI call); the hook stamps the time the first time it sees a new slice and errors once the slice is
 * older than `state[1]` milliseconds (0 = no budget). No headers: this must compile on machines
 * without libc development files. */
typedef struct lua_State lua_State;
typedef struct lua_Debug lua_Debug;
struct timespec_ { long tv_sec; long tv_nsec; };
int clock_gettime(int clock, struct timespec_ *t);
int luaL_error(lua_State *L, const char *fmt, ...);

static int state[2];  /* [0] slice generation, [1] budget in ms */
static int seen_generation = -1;
static long long slice_started;

int *guard_state(void) { return state; }

static long long now_ns(void) {
  struct timespec_ t;
  clock_gettime(1 /* CLOCK_MONOTONIC */, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

void guard_hook(lua_State *L, lua_Debug *ar) {
  long long now;
  (void)ar;
  if (state[1] <= 0) return;
  now = now_ns();
  if (state[0] != seen_generation) {
    seen_generation = state[0];
    slice_started = now;
    return;
  }
  if (now - slice_started > state[1] * 1000000LL) {
    luaL_error(L, "callback exceeded its time budget of %d ms", state[1]);
  }
}
