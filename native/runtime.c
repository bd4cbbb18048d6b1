/* The runtime's C side, built by native/compile.ts (-O2 by the C compiler, or bun:ffi's TinyCC). No headers:
 * this must compile without libc development files, so the few declarations needed are written out here.
 *
 * 1. Runaway guard: a Lua count hook that aborts a callback slice running longer than its budget.
 * It is C because raising a Lua error longjmps, which must
 * never cross a JavaScript frame. Every slice starts through guard_resume/guard_pcall, which bump the
 * slice generation (here, not from JS: the JIT may reorder JS stores around FFI calls it believes pure);
 * the hook stamps the time the first time it sees a new slice and errors once the slice is older than
 * the budget.
 * 2. Event dispatch: pushing one event's arguments and resuming its coroutine is one FFI call, and the
 * common reply (conn:send to the connection whose event runs) is kept here for JS instead of a call into JS.
 * 3. Memory limit: each Lua state allocates through limited_alloc, which refuses to grow a state past its
 * limit while Lua code runs, so Lua raises "not enough memory" inside that code (a protected call or a
 * coroutine: the error ends that callback only). JS pushing and reading values between slices, and JS
 * functions called from Lua (through js_call), are never refused: a refusal there would be an unprotected
 * error (Lua exits the process) or a longjmp across a JavaScript frame. The switch lives here, not in a JS
 * typed array: the JIT may drop or reorder JS stores around FFI calls it believes pure. */
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
void *lua_touserdata(lua_State *L, int idx);
double lua_tonumber(lua_State *L, int idx);
void lua_pushvalue(lua_State *L, int idx);
void lua_replace(lua_State *L, int idx);
int lua_type(lua_State *L, int idx);
typedef int (*lua_CFunction)(lua_State *L);
typedef void *(*lua_Alloc)(void *ud, void *ptr, unsigned long osize, unsigned long nsize);
lua_State *lua_newstate(lua_Alloc f, void *ud);
lua_CFunction lua_atpanic(lua_State *L, lua_CFunction panicf);
void *realloc(void *p, unsigned long n);
void *calloc(unsigned long n, unsigned long size);
void free(void *p);
int dprintf(int fd, const char *fmt, ...);
#define LUA_TSTRING 4
#define lua_upvalueindex(i) (-10002 - (i))

static int generation;
/* 1 while Lua code of a guarded slice runs: only then does limited_alloc refuse (see 3 above). */
static int limit_on;
static int budget_ms;  /* 0 = no budget */
static int seen_generation = -1;
static long long slice_started;

void guard_budget(int ms) { budget_ms = ms; }

/* lua_resume in a new slice of the runaway guard, with the memory limit on or off. */
static int resume_slice(lua_State *L, int narg, int limit) {
  int on = limit_on, status;
  generation++;
  limit_on = limit;
  status = lua_resume(L, narg);
  limit_on = on;
  return status;
}
int guard_resume(lua_State *L, int narg) { return resume_slice(L, narg, 1); }
int guard_pcall(lua_State *L, int nargs, int nresults, int errfunc) {
  int on = limit_on, status;
  generation++;
  limit_on = 1;
  status = lua_pcall(L, nargs, nresults, errfunc);
  limit_on = on;
  return status;
}

static long long now_ns(void) {
  struct timespec_ t;
  clock_gettime(1 /* CLOCK_MONOTONIC */, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The runtime's own short Lua code in a coroutine (Scheduler.take's adopt): a new slice, the limit off, so
 * bookkeeping never fails for want of memory (like JS pushing values). */
int runtime_resume(lua_State *L, int narg) { return resume_slice(L, narg, 0); }

/* A script's own coroutine.yield answered with nothing: same slice (no generation bump), limit on. */
int guard_resume_same_slice(lua_State *L, int narg) {
  int on = limit_on, status;
  limit_on = 1;
  status = lua_resume(L, narg);
  limit_on = on;
  return status;
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

/* A send kept for JS: the first conn:send of a dispatched event to that event's own connection (an echo, a
 * reply), made before the event called any JS function. reply_send keeps it here instead of calling into JS;
 * JS delivers it as soon as the slice returns (dispatch_event's status says so), or before the next JS function
 * Lua calls runs (js_call's `kept_for_js` says so), so sends keep their order. JS allows it (dispatch_event's
 * `reply_to`) only while that connection takes data at once, so the send's result (success) is known here. */
typedef struct { const char *data; double id; int len; } kept_reply;
static kept_reply kept;
/* The client id a send may be kept for; 0: none (between events, once one was kept, once JS was called). */
static double reply_to;
/* What JS must know of a kept send not yet handed to JS: KEPT_REPLY plus KEPT_PAYLOAD (its string is the
 * event's payload: JS has it already) and KEPT_BINARY; 0 when there is none. These bits sit above lua_resume's
 * statuses (0-5), so that dispatch_event returns them with the status and the common echo needs no read. */
#define KEPT_REPLY 0x100
#define KEPT_PAYLOAD 0x200
#define KEPT_BINARY 0x400
static int kept_flags;
/* kept_flags as the JS function Lua is calling finds it (js_call): read by that function's JS wrapper on entry. */
static int kept_for_js;

int *kept_for_js_slot(void) { return &kept_for_js; }

kept_reply *reply_slot(void) { return &kept; }

int js_call(lua_State *L);

/* conn:send's function: (id, data, type). Upvalue 1 is the JS function (as for js_call), which does every
 * other send; upvalue 2 holds the kept string, so that Lua cannot collect it before JS delivered it. */
int reply_send(lua_State *L) {
  unsigned long n;
  const char *data;
  if (reply_to != 0 && lua_type(L, 2) == LUA_TSTRING && lua_tonumber(L, 1) == reply_to) {
    data = lua_tolstring(L, 2, &n);
    if (n < 0x7fffffff) {
      kept.data = data;
      kept.id = reply_to;
      kept.len = (int)n;
      kept_flags = KEPT_REPLY | (data == payload_address ? KEPT_PAYLOAD : 0) | (lua_tonumber(L, 3) == 2 ? KEPT_BINARY : 0);
      reply_to = 0;
      lua_pushvalue(L, 2);
      lua_replace(L, lua_upvalueindex(2));
      return 0;
    }
  }
  return js_call(L);
}

/* Where JS stages event payloads (stack.ts's scratch area): dispatch_event reads them from here. */
static const char *staged;
void dispatch_staging(const char *area) { staged = area; }

#define EVENT_KIND 0xff
#define EVENT_TEXT 0x100  /* the payload is the JS string JS staged: its address is remembered in payload_address */
#define EVENT_REPLY 0x200 /* the event's first send to `id` may be kept (reply_send) */

/* Starts coroutine `co` (its address, as a double: bun:ffi converts doubles and ints faster than pointers) on
 * the worker function it holds at stack index 1 (its only value between events, see Scheduler.take), with
 * (kind, id, payload, extra), kind and the EVENT_ bits in `flags`. The payload is the first `len` staged bytes;
 * len < 0 means nil. Returns lua_resume's status (0 when the callback finished, LUA_YIELD when it waits on a
 * blocking op or the script yielded, > 1 on an error) plus the kept_flags of a send JS must deliver now. */
int dispatch_event(double co_address, int flags, double id, int len, double extra) {
  lua_State *co = (lua_State *)(unsigned long)co_address;
  int status, on = limit_on;
  unsigned long n;
  lua_pushvalue(co, 1);
  lua_pushnumber(co, flags & EVENT_KIND);
  lua_pushnumber(co, id);
  if (len >= 0) {
    lua_pushlstring(co, staged, (unsigned long)len);
    if (flags & EVENT_TEXT) payload_address = lua_tolstring(co, -1, &n);
  } else {
    lua_pushnil(co);
  }
  lua_pushnumber(co, extra);
  generation++;
  limit_on = 1;
  reply_to = flags & EVENT_REPLY ? id : 0;
  status = lua_resume(co, 4) | kept_flags;
  kept_flags = 0;
  reply_to = 0;
  limit_on = on;
  payload_address = 0;
  return status;
}

/* ---- memory limit ---- */

/* Small blocks a state freed, kept for its next allocations of the same class (16-byte classes up to 256
 * bytes, at most SMALL_KEPT bytes per state). Lua frees most blocks in the collector's sweep, long after it
 * allocated them, and allocates the same few sizes for every frame (the payload string, the msg table and
 * its hash part): a block it freed a moment ago is still in the cache, where the allocator's next free block
 * often is not. Every block of up to SMALL_MAX bytes comes whole from its class, so any kept block of a class
 * fits any size of it. */
#define SMALL_MAX 256
#define SMALL_CLASSES (SMALL_MAX >> 4)
#define SMALL_KEPT (1 << 20)
#define CLASS(n) (((n) + 15) >> 4)

/* Bytes a state holds and may hold (0: no limit), doubles first, so that JS reads them with read.f64; then the
 * kept small blocks (linked through their first word) and their bytes. */
typedef struct { double used; double limit; void *kept[SMALL_CLASSES + 1]; unsigned long kept_bytes; } lua_memory;

/* The allocator Lua's memory comes from: libc's, unless memory_allocator installs another. JS installs Bun's
 * own (mimalloc, which bun:ffi's TinyCC links C against; native/allocator.c): it is faster than glibc's for
 * Lua's many small blocks, and code built by another compiler would otherwise get glibc's. */
typedef void *(*realloc_fn)(void *p, unsigned long n);
typedef void (*free_fn)(void *p);
static realloc_fn lua_realloc = realloc;
static free_fn lua_free = free;

void memory_allocator(realloc_fn r, free_fn f) {
  lua_realloc = r;
  lua_free = f;
}

void *memcpy(void *to, const void *from, unsigned long n);

/* A block of class c: a kept one, else a new one of the class's full size. */
static void *take_small(lua_memory *m, unsigned long c) {
  void *p = m->kept[c];
  if (!p) return lua_realloc(0, c << 4);
  m->kept[c] = *(void **)p;
  m->kept_bytes -= c << 4;
  return p;
}

/* Frees a block Lua sized `size`: kept when small and the cache has room. */
static void release(lua_memory *m, void *p, unsigned long size) {
  unsigned long c = CLASS(size);
  if (size > SMALL_MAX || m->kept_bytes + (c << 4) > SMALL_KEPT) {
    lua_free(p);
    return;
  }
  *(void **)p = m->kept[c];
  m->kept[c] = p;
  m->kept_bytes += c << 4;
}

static void *limited_alloc(void *ud, void *ptr, unsigned long osize, unsigned long nsize) {
  lua_memory *m = (lua_memory *)ud;
  void *p;
  if (!ptr) osize = 0; /* Lua 5.1 passes osize 0 with a NULL ptr anyway */
  if (nsize == 0) {
    if (ptr) release(m, ptr, osize);
    m->used -= (double)osize;
    return 0;
  }
  if (limit_on && nsize > osize && m->limit > 0 && m->used + (double)(nsize - osize) > m->limit) return 0;
  if (nsize > SMALL_MAX && (!ptr || osize > SMALL_MAX)) {
    p = lua_realloc(ptr, nsize);
  } else if (ptr && osize <= SMALL_MAX && nsize <= SMALL_MAX && CLASS(osize) == CLASS(nsize)) {
    p = ptr;
  } else {
    /* Into another class, or between the classes and larger blocks: a new block, the bytes copied. */
    p = nsize <= SMALL_MAX ? take_small(m, CLASS(nsize)) : lua_realloc(0, nsize);
    if (p && ptr) {
      memcpy(p, ptr, osize < nsize ? osize : nsize);
      release(m, ptr, osize);
    } else if (!p && ptr && nsize < osize) {
      p = ptr; /* Lua assumes a shrink never fails: the bigger block stays (it fits the smaller size) */
    }
  }
  if (p) m->used += (double)nsize - (double)osize;
  return p;
}

/* What luaL_newstate's panic does: say why, then Lua exits the process. */
static int panic(lua_State *L) {
  dprintf(2, "PANIC: unprotected error in call to Lua API (%s)\n", lua_tolstring(L, -1, 0));
  return 0;
}

/* The accounting of a new state limited to `limit` bytes; freed with memory_free after lua_close. */
lua_memory *memory_new(double limit) {
  lua_memory *m = (lua_memory *)calloc(1, sizeof(lua_memory));
  if (m) m->limit = limit;
  return m;
}
void memory_free(lua_memory *m) {
  unsigned long c;
  void *p;
  for (c = 1; c <= SMALL_CLASSES; c++) {
    while ((p = m->kept[c]) != 0) {
      m->kept[c] = *(void **)p;
      lua_free(p);
    }
  }
  free(m);
}

lua_State *memory_newstate(lua_memory *m) {
  lua_State *L = lua_newstate(limited_alloc, m);
  if (L) lua_atpanic(L, panic);
  return L;
}

void memory_set_limit(lua_memory *m, double limit) { m->limit = limit; }

/* Every JS function Lua calls is this C closure, with the JSCallback's address as upvalue 1: the JS function
 * runs with the limit off, and what it returns (results, or lua_yield's -1) goes back to Lua unchanged. A kept
 * send is handed to it (kept_for_js, valid on its entry only) to deliver first. Once JS ran, the event's later
 * sends are not kept (JS may have changed what the connection can take). */
int js_call(lua_State *L) {
  lua_CFunction f = (lua_CFunction)lua_touserdata(L, lua_upvalueindex(1));
  int on = limit_on, n;
  reply_to = 0;
  limit_on = 0;
  kept_for_js = kept_flags;
  kept_flags = 0;
  n = f(L);
  kept_for_js = 0;
  limit_on = on;
  return n;
}
