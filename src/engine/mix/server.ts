// mix.server.option(name): a value of the running server's `options` list.
import { lua } from "../../../native/lua";
import type { EngineHost } from "../host";
import { pushString, toString } from "../../lua/stack";
import type { LuaFamily } from "../../lua/family";

// Exports mix.server, where the entry family notes the callback convention.
const serverLua = `local F = ...
local host = F.host
F.mix.server = { option = function(name) return host.server_option(tostring(name)) end }
return F.mix.server`;

export const server: LuaFamily<Pick<EngineHost, "option">> = {
  name: "server",
  lua: serverLua,
  functions: {
    server_option(L, vm) {
      const value = vm.host.option(toString(L, 1) ?? "");
      if (value === undefined) lua.lua_pushnil(L);
      else pushString(L, value);
      return 1;
    },
  },
};
