// How a VM installs its families (family.ts): in the order their `uses` require, each chunk called with the
// table its declaration names, and the hooks it returns kept by reference.
import type { Pointer } from "bun:ffi";
import { lua, type LuaState, LUA_REGISTRYINDEX, LUA_TFUNCTION, LUA_TTABLE } from "../../native/lua";
import { jsCall, replySend } from "../../native/runtime";
import { pushValue } from "./stack";
import { CHUNK_FIELDS, type LuaFamily, type LuaFunction } from "./family";

/** Registry refs of what the prelude hands to every chunk. */
export interface RuntimeRefs {
  block: number;
  handlers: number;
  state: number;
  mix: number;
}

/** The families in installation order: each after the families it uses, otherwise in list order. */
export function installOrder<H>(families: LuaFamily<H>[]): LuaFamily<H>[] {
  const byName = new Map<string, LuaFamily<H>>();
  for (const f of families) {
    if (byName.has(f.name)) throw new Error(`two Lua families are named ${f.name}`);
    byName.set(f.name, f);
  }
  const order: LuaFamily<H>[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (f: LuaFamily<H>) => {
    if (state.get(f.name) === "done") return;
    if (state.get(f.name) === "visiting") throw new Error(`Lua families use each other in a cycle through ${f.name}`);
    state.set(f.name, "visiting");
    for (const name of f.uses ?? []) {
      const used = byName.get(name);
      if (!used) throw new Error(`Lua family ${f.name} uses ${name}, which is not installed`);
      visit(used);
    }
    state.set(f.name, "done");
    order.push(f);
  };
  for (const f of families) visit(f);
  return order;
}

const cString = (name: string) => Buffer.from(name + "\0");

/**
 * Pushes the table `F` a family's chunk gets: exactly what its declaration names. `exports` holds the
 * registry refs of the exports of the families installed so far; `pointer` gives a JS function's callback.
 */
export function pushChunkArgument<H>(
  L: LuaState,
  family: LuaFamily<H>,
  runtime: RuntimeRefs,
  exports: Map<string, number>,
  pointer: (fn: LuaFunction<H>) => Pointer,
): void {
  const set = (name: string, push: () => void) => {
    push();
    lua.lua_setfield(L, -2, cString(name));
  };
  const ref = (n: number) => () => lua.lua_rawgeti(L, LUA_REGISTRYINDEX, n);
  lua.lua_createtable(L, 0, 8);
  set("host", () => {
    lua.lua_createtable(L, 0, 8);
    for (const [name, fn] of Object.entries(family.functions ?? {})) {
      lua.lua_pushlightuserdata(L, pointer(fn));
      if (family.reply?.name === name) {
        lua.lua_pushnil(L); // upvalue 2: the kept string
        lua.lua_pushcclosure(L, replySend, 2);
      } else {
        lua.lua_pushcclosure(L, jsCall, 1);
      }
      lua.lua_setfield(L, -2, cString(name));
    }
    for (const [name, address] of Object.entries(family.native ?? {})) {
      if (family.functions?.[name]) throw new Error(`Lua family ${family.name}: host.${name} is both a JS and a native function`);
      lua.lua_pushcclosure(L, address, 0);
      lua.lua_setfield(L, -2, cString(name));
    }
  });
  set("block", ref(runtime.block));
  set("H", ref(runtime.handlers));
  set("S", ref(runtime.state));
  set("mix", ref(runtime.mix));
  const taken = new Set<string>(CHUNK_FIELDS);
  const claim = (name: string) => {
    if (taken.has(name)) throw new Error(`Lua family ${family.name}: ${name} names two things in its chunk's argument`);
    taken.add(name);
  };
  for (const [name, value] of Object.entries(family.constants ?? {})) {
    claim(name);
    set(name, () => pushValue(L, value));
  }
  for (const name of family.uses ?? []) {
    claim(name);
    set(name, ref(exports.get(name)!));
  }
}

/** Takes a registry ref to each hook the family declared from the table its chunk returned (`hooksRef`, released). */
export function keepHooks<H>(L: LuaState, family: LuaFamily<H>, hooksRef: number, hooks: Map<string, number>): void {
  lua.lua_rawgeti(L, LUA_REGISTRYINDEX, hooksRef);
  lua.luaL_unref(L, LUA_REGISTRYINDEX, hooksRef);
  for (const { name } of family.hooks ?? []) {
    if (hooks.has(name)) throw new Error(`Lua family ${family.name}: another family returned the hook ${name}`);
    if (lua.lua_type(L, -1) === LUA_TTABLE) lua.lua_getfield(L, -1, cString(name));
    else lua.lua_pushnil(L);
    if (lua.lua_type(L, -1) !== LUA_TFUNCTION) {
      lua.lua_settop(L, 0);
      throw new Error(`Lua family ${family.name} did not return its hook ${name}`);
    }
    hooks.set(name, lua.luaL_ref(L, LUA_REGISTRYINDEX));
  }
  lua.lua_settop(L, -2);
}
