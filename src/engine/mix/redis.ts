// JS side of mix.redis (redis.lua): runs commands on the engine's Redis pools (src/redis/client.ts).
import { lua } from "../../../native/lua";
import type { EngineHost } from "../host";
import { ReplyError, type Reply } from "../../redis/client";
import { toString, type PlainValue } from "../../lua/stack";
import type { LuaFamily } from "../../lua/family";
import redisLua from "./redis.lua" with { type: "text" };

const text = (v: PlainValue) => Buffer.from(v as Uint8Array).toString();

/**
 * A reply inside an array, as Redis's own Lua scripting shows it: nil becomes false (so `#t` and ipairs see
 * every element) and an error becomes { err = message }.
 */
function element(r: Reply): unknown {
  if (r === null) return false;
  if (r instanceof ReplyError) return { err: r.message };
  return Array.isArray(r) ? r.map(element) : r;
}

export const redis: LuaFamily<Pick<EngineHost, "redis" | "nodeIndex">> = {
  name: "redis",
  lua: redisLua,
  uses: ["json"],
  functions: {
    redis_configured(L, vm) {
      lua.lua_pushboolean(L, vm.host.redis(toString(L, 1)!) ? 1 : 0);
      return 1;
    },
  },
  binaryArgs: true,
  blocking: {
    "redis.push": async ([topic, json], vm, task) => {
      const host = vm.host;
      const pool = host.redis("default");
      if (!pool) return [null, "no redis connection named 'default' in engine.luavm.redis"];
      const clientId = task.owner.id ?? 0;
      // The `p` of a queue.pop event, with the node as its index (a number): what the PHP client's
      // Client::parse() reads (it wraps the item as {"p": item}, and Message::nodeID() is an int).
      const item = `{"n":${host.nodeIndex()},"c":"${clientId}","t":${JSON.stringify(text(topic!))},"d":${text(json!)}}`;
      try {
        const reply = await pool.command("lpush", [text(topic!), item]);
        return reply instanceof ReplyError ? [null, reply.message] : [reply];
      } catch (e) {
        return [null, (e as Error).message];
      }
    },
    "redis.command": async ([name, cmd, ...args], vm) => {
      const pool = vm.host.redis(text(name!));
      if (!pool) return [null, `no redis connection named '${text(name!)}'`];
      try {
        const reply = await pool.command(text(cmd!), args.map((a) => (typeof a === "number" ? String(a) : (a as Uint8Array))));
        if (reply instanceof ReplyError) return [null, reply.message];
        return [Array.isArray(reply) ? reply.map(element) : reply];
      } catch (e) {
        return [null, (e as Error).message];
      }
    },
  },
};
