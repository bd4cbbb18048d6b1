// JS side of the connection object (connection.lua) and of the protocol events (websocket.lua, socket.lua).
import { lua, type LuaState, LUA_TSTRING } from "../../../native/lua";
import type { EngineHost, SendType } from "../host";
import { pushString, toString, viewBytes } from "../../lua/stack";
import type { LuaFamily } from "../../lua/family";
import { CONN_CALL, CONTEXT, DECODED, ENCODE, EVENT_CONSTANTS, FAILED, FORGET, MAX_CHANNEL_BYTES, OVERSIZED } from "./contract";
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

/** What the connection object needs of the engine. */
type ConnectionHost = Pick<EngineHost, "sendLocal" | "subscribe" | "unsubscribe" | "close" | "wake" | "waitContext">;

export const connection: LuaFamily<ConnectionHost> = {
  name: "connection",
  lua: connectionLua,
  constants: { ...EVENT_CONSTANTS, MAX_CHANNEL_BYTES },
  uses: ["entry"],
  hooks: [FAILED, FORGET, CONN_CALL, CONTEXT],
  // A send to the connection whose event runs is usually kept in C and sent here (runtime.c's reply_send).
  reply: {
    name: "send",
    deliver: (vm, id, data, type) => void vm.host.sendLocal(id, data, type as SendType, true),
  },
  functions: {
    // host.send(id, data, type): the data is a view of Lua's string; the host copies or writes it at once.
    send(L, vm) {
      const id = lua.lua_tonumber(L, 1);
      const type = lua.lua_tonumber(L, 3) as SendType;
      const data = type === 1 ? toString(L, 2) : viewBytes(L, 2);
      if (data === null) return result(L, `send expects a string, got ${typeName(L, 2)}`);
      const err = vm.host.sendLocal(id, data, type, true);
      return result(L, err === "remote" ? "client not on this node" : err);
    },
    subscribe: (L, vm) => result(L, vm.host.subscribe(lua.lua_tonumber(L, 1), channelArgs(L))),
    unsubscribe: (L, vm) => result(L, vm.host.unsubscribe(lua.lua_tonumber(L, 1), channelArgs(L))),
    close: (L, vm) => result(L, vm.host.close(lua.lua_tonumber(L, 1))),
    wake(L, vm) {
      vm.host.wake(lua.lua_tonumber(L, 1));
      return 0;
    },
  },
  blocking: {
    "connection.wait": async (args, vm) => {
      await vm.host.waitContext(args[0] as number);
      return [];
    },
  },
};

/** The events of `websocket` servers; on_handshake's answer goes back to the engine. */
export const websocketEvents: LuaFamily<Pick<EngineHost, "handshakeResult">> = {
  name: "websocket",
  lua: websocketLua,
  constants: EVENT_CONSTANTS,
  uses: ["connection", "entry"],
  functions: {
    handshake_result(L, vm) {
      const accept = lua.lua_toboolean(L, 2) !== 0;
      const status = lua.lua_tonumber(L, 3);
      const message = lua.lua_type(L, 4) === LUA_TSTRING ? toString(L, 4)! : "";
      vm.host.handshakeResult(lua.lua_tonumber(L, 1), accept, status, message);
      return 0;
    },
  },
};

/** The events of `socket` servers: the script's framing (protocol_input, protocol_decode, protocol_encode). */
export const socketEvents: LuaFamily = {
  name: "socket",
  lua: socketLua,
  constants: EVENT_CONSTANTS,
  uses: ["connection", "entry", "log"],
  hooks: [ENCODE, DECODED, OVERSIZED],
};
