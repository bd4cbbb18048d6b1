// mix.server.option(name): a value of the running server's `options` list.
import { lua } from "../../../native/lua";
import { hostOf } from "../host";
import { pushString, toString } from "../../lua/stack";
import type { ApiFamily } from "../../lua/family";

export const server: ApiFamily = {
  name: "server",
  lua: "local P, mix = ...\nmix.server = { option = function(name) return P.server_option(tostring(name)) end }",
  functions: {
    server_option(L, vm) {
      const value = hostOf(vm).option(toString(L, 1) ?? "");
      if (value === undefined) lua.lua_pushnil(L);
      else pushString(L, value);
      return 1;
    },
  },
};
