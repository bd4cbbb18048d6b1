// The Lua 5.1 C API as bun:ffi symbols, plus the constants of lua.h that the code uses.
// Only what the code calls is bound (and only the constants it reads are defined); every binding is one FFI crossing, so callers count them.
import { dlopen, FFIType, type Pointer } from "bun:ffi";
import { functionAddress, type NumberPointers } from "./ffi";
import { loadLuaLibraries } from "./libs";

// size_t is u64 on x86_64 Linux; FFIType.usize (also 8) exists at run time but not in bun-types.
const { ptr, i32, f64, void: none, cstring, u64: usize } = FFIType;
const L = ptr;

const libs = loadLuaLibraries();

// `as const` keeps each args list a tuple, so bun-types checks every call argument by argument.
const api = dlopen(libs.lua, {
  luaL_newstate: { args: [], returns: L },
  luaL_openlibs: { args: [L], returns: none },
  lua_close: { args: [L], returns: none },
  luaL_loadbuffer: { args: [L, ptr, usize, cstring], returns: i32 },
  lua_newthread: { args: [L], returns: L },
  lua_xmove: { args: [L, L, i32], returns: none },
  lua_gettop: { args: [L], returns: i32 },
  lua_checkstack: { args: [L, i32], returns: i32 },
  lua_settop: { args: [L, i32], returns: none },
  lua_type: { args: [L, i32], returns: i32 },
  lua_pushnil: { args: [L], returns: none },
  lua_pushnumber: { args: [L, f64], returns: none },
  lua_pushboolean: { args: [L, i32], returns: none },
  lua_pushlstring: { args: [L, ptr, usize], returns: none },
  lua_pushcclosure: { args: [L, ptr, i32], returns: none },
  lua_pushlightuserdata: { args: [L, ptr], returns: none },
  lua_tonumber: { args: [L, i32], returns: f64 },
  lua_toboolean: { args: [L, i32], returns: i32 },
  lua_tolstring: { args: [L, i32, ptr], returns: ptr },
  lua_createtable: { args: [L, i32, i32], returns: none },
  lua_getfield: { args: [L, i32, cstring], returns: none },
  lua_setfield: { args: [L, i32, cstring], returns: none },
  lua_rawset: { args: [L, i32], returns: none },
  lua_rawgeti: { args: [L, i32, i32], returns: none },
  lua_rawseti: { args: [L, i32, i32], returns: none },
  lua_next: { args: [L, i32], returns: i32 },
  luaL_ref: { args: [L, i32], returns: i32 },
  luaL_unref: { args: [L, i32, i32], returns: none },
  lua_sethook: { args: [L, ptr, i32, i32], returns: i32 },
  lua_gc: { args: [L, i32, i32], returns: i32 },
} as const);

const bitop = dlopen(libs.bitop, { luaopen_bit: { args: [L], returns: i32 } });

export const lua = api.symbols as NumberPointers<typeof api.symbols>;
/** Address of LuaBitOp's `luaopen_bit`, registered as `package.preload.bit`. */
export const luaopenBit = functionAddress(bitop.symbols.luaopen_bit);

export type LuaState = Pointer;

// lua.h constants (Lua 5.1)
export const LUA_REGISTRYINDEX = -10000;
export const LUA_GLOBALSINDEX = -10002;
export const LUA_OK = 0;
export const LUA_YIELD = 1;
export const LUA_ERRMEM = 4;
export const LUA_TNIL = 0;
export const LUA_TBOOLEAN = 1;
export const LUA_TNUMBER = 3;
export const LUA_TSTRING = 4;
export const LUA_TTABLE = 5;
export const LUA_TFUNCTION = 6;
export const LUA_MASKCOUNT = 8;
export const LUA_GCCOUNT = 3;
export const LUA_GCCOLLECT = 2;

