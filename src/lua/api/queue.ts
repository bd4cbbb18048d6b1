// JS side of mix.queue (queue.lua).
import { lua } from "../../../native/lua";
import { hostOf } from "../../engine/host";
import { pushString, toString } from "../stack";
import type { ApiFamily } from "../family";
import queueLua from "./queue.lua" with { type: "text" };

export const queue: ApiFamily = {
  name: "queue",
  lua: queueLua,
  functions: {
    queue_push(L, vm) {
      const [n, err] = hostOf(vm).queuePush(toString(L, 1)!, toString(L, 2)!);
      if (err !== null) {
        lua.lua_pushnil(L);
        pushString(L, err);
        return 2;
      }
      lua.lua_pushnumber(L, n);
      return 1;
    },
  },
};
