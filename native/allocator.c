/* Bun's own allocator as bun:ffi's TinyCC links C code against it (mimalloc, inside the bun executable, which
 * does not export it): runtime.c's Lua states allocate from it whichever compiler built runtime.c. */
void *realloc(void *p, unsigned long n);
void free(void *p);

void *bun_realloc(void) { return (void *)realloc; }
void *bun_free(void) { return (void *)free; }
