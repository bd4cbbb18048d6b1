// JS side of mix.queue (queue.lua). Each item carries the id of the client whose callback pushed it (the
// owner of the running callback, also inside a pcall's inner coroutine); consumers receive it as "c".
import { lua } from "../../../native/lua";
import type { EngineHost } from "../host";
import { pushString, toString } from "../../lua/stack";
import type { LuaFamily } from "../../lua/family";
import queueLua from "./queue.lua" with { type: "text" };

export const queue: LuaFamily<Pick<EngineHost, "queuesElsewhere" | "queuePush" | "queuePushRemote">> = {
  name: "queue",
  lua: queueLua,
  uses: ["json"],
  functions: {
    queue_push(L, vm) {
      const clientId = vm.scheduler.running?.owner.id ?? 0;
      const host = vm.host;
      if (host.queuesElsewhere()) {
        // The queues are the primary's (a worker of a multi-core engine): queue.lua pushes through a blocking op.
        lua.lua_pushnil(L);
        lua.lua_pushnil(L);
        lua.lua_pushnumber(L, clientId);
        return 3;
      }
      const [n, err] = host.queuePush(toString(L, 1)!, toString(L, 2)!, clientId);
      if (err !== null) {
        lua.lua_pushnil(L);
        pushString(L, err);
        return 2;
      }
      lua.lua_pushnumber(L, n);
      return 1;
    },
  },
  blocking: {
    "queue.push": async ([topic, json, clientId], vm) => {
      const [n, err] = await vm.host.queuePushRemote(topic as string, json as string, clientId as number);
      return err === null ? [n] : [null, err];
    },
  },
};
