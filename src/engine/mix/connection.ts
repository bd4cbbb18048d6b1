// JS side of the connection object (connection.lua) and of the protocol events (websocket.lua, socket.lua).
import { lua, type LuaState, LUA_TSTRING } from "../../../native/lua";
import { hostOf, type SendType } from "../host";
import { pushString, toString, viewBytes } from "../../lua/stack";
import type { ApiFamily } from "../../lua/family";
import connectionLua from "./connection.lua" with { type: "text" };
import websocketLua from "./websocket.lua" with { type: "text" };
import socketLua from "./socket.lua" with { type: "text" };

/** Pushes an error text (or nothing on success) as the single result of a conn method. */
function result(L: LuaState, err: string | null): number {
  if (err === null) return 0;
  pushString(L, err);
  return 1;
}

const TYPE_NAMES = ["nil", "boolean", "userdata", "number", "string", "table", "function", "userdata", "thread"];
const typeName = (L: LuaState, idx: number) => TYPE_NAMES[lua.lua_type(L, idx)] ?? "no value";

function channelArgs(L: LuaState): string[] {
  const top = lua.lua_gettop(L);
  const list: string[] = [];
  for (let i = 2; i <= top; i++) list.push(toString(L, i) ?? "");
  return list;
}

export const connection: ApiFamily = {
  name: "connection",
  lua: connectionLua,
  functions: {
    // P.send(id, data, type): the data is a view of Lua's string; the host copies or writes it at once.
    send(L, vm) {
      const id = lua.lua_tonumber(L, 1);
      const type = lua.lua_tonumber(L, 3) as SendType;
      const data = type === 1 ? toString(L, 2) : viewBytes(L, 2);
      if (data === null) return result(L, `send expects a string, got ${typeName(L, 2)}`);
      const err = hostOf(vm).sendLocal(id, data, type, true);
      return result(L, err === "remote" ? "client not on this node" : err);
    },
    subscribe: (L, vm) => result(L, hostOf(vm).subscribe(lua.lua_tonumber(L, 1), channelArgs(L))),
    unsubscribe: (L, vm) => result(L, hostOf(vm).unsubscribe(lua.lua_tonumber(L, 1), channelArgs(L))),
    close: (L, vm) => result(L, hostOf(vm).close(lua.lua_tonumber(L, 1))),
    wake(L, vm) {
      hostOf(vm).wake(lua.lua_tonumber(L, 1));
      return 0;
    },
    handshake_result(L, vm) {
      const accept = lua.lua_toboolean(L, 2) !== 0;
      const status = lua.lua_tonumber(L, 3);
      const message = lua.lua_type(L, 4) === LUA_TSTRING ? toString(L, 4)! : "";
      hostOf(vm).handshakeResult(lua.lua_tonumber(L, 1), accept, status, message);
      return 0;
    },
  },
  blocking: {
    "connection.wait": async (args, vm) => {
      await hostOf(vm).waitContext(args[0] as number);
      return [];
    },
  },
};

export const websocketEvents: ApiFamily = { name: "websocket", lua: websocketLua };
export const socketEvents: ApiFamily = { name: "socket", lua: socketLua };

/** Event kinds, as numbered in the Lua files. */
export const EV = { open: 10, close: 11, handshake: 20, message: 21, connect: 30, data: 31 } as const;
