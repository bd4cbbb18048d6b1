// Finds and loads the Lua 5.1 and LuaBitOp shared libraries so that Lua C modules see the Lua symbols.
//
// bun:ffi opens libraries RTLD_LOCAL, so a C module loaded later by `require` (which links against the
// Lua API) would fail with `undefined symbol: lua_gettop`. We first open liblua5.1 with libc's own
// dlopen(RTLD_NOW | RTLD_GLOBAL); bun:ffi then gets the same handle and C modules resolve against it.
//
// The two `with { type: "file" }` imports are plain system paths when run from source, and become files
// embedded in the executable under `bun build --compile`. An embedded file lives in Bun's virtual
// filesystem, which libc cannot open, so it is first copied to a private temp directory.
import { dlopen } from "bun:ffi";
import { mkdtempSync, writeFileSync, existsSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import luaPath from "/usr/lib/x86_64-linux-gnu/liblua5.1.so.0" with { type: "file" };
import bitopPath from "/usr/lib/x86_64-linux-gnu/liblua5.1-bitop.so.0" with { type: "file" };

const RTLD_NOW_GLOBAL = 0x102;

export interface LuaLibraries {
  /** Path of liblua5.1 that was opened globally. */
  lua: string;
  /** Path of the LuaBitOp library (exports luaopen_bit). */
  bitop: string;
}

let loaded: LuaLibraries | undefined;

/** Opens liblua5.1 globally (once per process) and returns where both libraries are. */
export function loadLuaLibraries(): LuaLibraries {
  if (loaded) return loaded;
  const paths = { lua: materialize(luaPath, "liblua5.1.so.0"), bitop: materialize(bitopPath, "liblua5.1-bitop.so.0") };
  const libc = dlopen("libc.so.6", {
    dlopen: { args: ["cstring", "i32"], returns: "ptr" },
    dlerror: { args: [], returns: "cstring" },
  } as const);
  const handle = libc.symbols.dlopen(Buffer.from(paths.lua + "\0"), RTLD_NOW_GLOBAL);
  if (!handle) {
    throw new Error(`cannot load the Lua 5.1 library ${paths.lua}: ${libc.symbols.dlerror()}`);
  }
  loaded = paths;
  return paths;
}

let privateDir: string | undefined;

/**
 * Returns a real filesystem path for `path`, copying it out of the executable when it is embedded (libc's
 * dlopen and TinyCC read only the real filesystem). Every copied file shares one directory, so a C source's `#include
 * "x.c"` finds x.c once both are copied out.
 */
export function materialize(path: string, name: string): string {
  if (!path.startsWith("/$bunfs/") && existsSync(path)) return path;
  if (!privateDir) {
    privateDir = mkdtempSync(join(tmpdir(), "connmix-lua-"));
    const dir = privateDir;
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  const out = join(privateDir, name);
  writeFileSync(out, readFileSync(path), { mode: 0o500 });
  return out;
}
