// The Lua servers of `config.engine.servers`, listening on one node: an engine's own, or one worker's of a
// multi-core engine (src/app/worker.ts).
import { resolve } from "node:path";
import type { Config, ServerConfig } from "../config/schema";
import { log } from "../log/logger";
import type { HotConfig } from "../config/hot";
import { engineFamilies } from "./mix";
import { engineQueues } from "../queue/index";
import { ClientIds } from "../net/client-ids";
import { EngineNode } from "./node";
import { WebSocketServer } from "./websocket-server";
import { SocketServer } from "./socket-server";
import type { LuaServer } from "./lua-server";
import { redisPools } from "../redis/client";

export interface Engine {
  node: EngineNode;
  servers: readonly LuaServer[];
  stop(): Promise<void>;
}

const MIB = 1 << 20;

/** Starts the Lua servers of `config.engine.servers` on a node of its own with index `nodeIndex`. */
export function startLuaServers(config: Config, nodeIndex: number, worker = 0, o: Omit<ListenOptions, "worker"> = {}): Promise<Engine> {
  return listenLuaServers(config, new EngineNode(new ClientIds(nodeIndex, worker), engineQueues(config).queues), o);
}

export interface ListenOptions {
  /** These are a worker's: its primary logs the start once for all of them. */
  worker?: boolean;
  /** The process's hot config, which the servers' timeouts follow. */
  hot?: HotConfig;
  /** How often readTimeout and writeTimeout are checked, ms (1 s by default, engine/limits.ts; tests shorten it). */
  sweepMs?: number;
}

/**
 * Starts the Lua servers of `config.engine.servers` on `node`. Ports are shared (SO_REUSEPORT) with the other
 * workers of a multi-core engine and with a successor (src/handover).
 */
export async function listenLuaServers(config: Config, node: EngineNode, o: ListenOptions = {}): Promise<Engine> {
  const redis = redisPools(config.engine.luavm.redis);
  for (const sc of config.engine.servers) {
    const opts = { config: sc, node, families: engineFamilies, redis, budgetMs: config.engine.luavm.callbackTimeout, memoryLimit: config.engine.luavm.memoryLimit * MIB, reusePort: true, sweepMs: o.sweepMs, hot: o.hot };
    const server = sc.protocol === "websocket" ? new WebSocketServer(opts) : new SocketServer(opts);
    try {
      await server.listen();
    } catch (e) {
      throw new Error(`cannot listen on ${sc.bind}:${sc.port} (${(e as Error).message})`);
    }
    node.addServer(server);
    if (!o.worker) luaServerStarted(sc);
  }
  const stop = async () => {
    await Promise.all(node.servers.map((s) => s.stop()));
    for (const pool of redis.values()) pool.close();
  };
  return { node, servers: node.servers, stop };
}

/** The log line of a Lua server that listens (a multi-core engine's primary writes it for its workers). */
export function luaServerStarted(sc: ServerConfig): void {
  log.info(`start the lua server ${resolve(sc.entry)} (${sc.bind}:${sc.port})`);
}
