// JS side of mix.mesh (mesh.lua).
import { lua } from "../../../native/lua";
import type { EngineHost, SendType } from "../host";
import { MAX_CHANNEL_BYTES, TYPE } from "./contract";
import { pushString, toString, viewBytes } from "../../lua/stack";
import type { LuaFamily } from "../../lua/family";
import meshLua from "./mesh.lua" with { type: "text" };

const asData = (d: unknown, type: SendType) => (type === 1 || typeof d === "string" ? (d as string | Uint8Array) : (d as Uint8Array));

export const mesh: LuaFamily<Pick<EngineHost, "sendLocal" | "publishLocal" | "hasPeers" | "sendRemote" | "publishRemote">> = {
  name: "mesh",
  lua: meshLua,
  constants: { TYPE, MAX_CHANNEL_BYTES },
  functions: {
    // host.mesh_send(id, data, type) -> err | nil, remote
    mesh_send(L, vm) {
      const type = lua.lua_tonumber(L, 3) as SendType;
      const data = type === 1 ? toString(L, 2)! : viewBytes(L, 2)!;
      const err = vm.host.sendLocal(lua.lua_tonumber(L, 1), data, type);
      if (err === "remote") {
        lua.lua_pushnil(L);
        lua.lua_pushboolean(L, 1);
        return 2;
      }
      if (err === null) return 0;
      pushString(L, err);
      return 1;
    },
    // host.mesh_publish(channel, data, type) -> ok, fail, peers
    mesh_publish(L, vm) {
      const host = vm.host;
      const type = lua.lua_tonumber(L, 3) as SendType;
      const data = type === 1 ? toString(L, 2)! : viewBytes(L, 2)!;
      const [ok, fail] = host.publishLocal(toString(L, 1)!, data, type);
      lua.lua_pushnumber(L, ok);
      lua.lua_pushnumber(L, fail);
      lua.lua_pushboolean(L, host.hasPeers() ? 1 : 0);
      return 3;
    },
  },
  binaryArgs: true,
  blocking: {
    "mesh.send": async ([id, data, type], vm) => {
      const err = await vm.host.sendRemote(id as number, asData(data, type as SendType), type as SendType);
      return err === null ? [] : [err];
    },
    "mesh.publish": async ([channel, data, type], vm) => {
      const name = Buffer.from(channel as Uint8Array).toString();
      return vm.host.publishRemote(name, asData(data, type as SendType), type as SendType);
    },
  },
};
