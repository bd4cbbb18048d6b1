// The engine service: Lua servers on their ports, the API server, and (through the mesh) the cluster.
import type { Config } from "../config/schema";
import type { NodeOptions } from "../modes";
import { log } from "../log/logger";
import { onShutdown } from "../lifecycle";
import { engineFamilies } from "../lua/api";
import { Queues } from "../queue/queues";
import { ClientIds } from "./ids";
import { EngineNode } from "./node";
import { WebSocketServer } from "./websocket-server";
import { SocketServer } from "./socket-server";
import type { LuaServer } from "./lua-server";
import { Cluster } from "../mesh/cluster";
import { startApiServer } from "../api/server";
import { redisPools } from "../redis/client";

export interface Engine {
  node: EngineNode;
  servers: LuaServer[];
  stop(): Promise<void>;
}

/** Starts the Lua servers of `config.engine.servers` on a node of its own with index `nodeIndex`. */
export function startLuaServers(config: Config, nodeIndex: number, worker = 0): Promise<Engine> {
  return listenLuaServers(config, new EngineNode(new ClientIds(nodeIndex, worker), new Queues(config.engine.luavm.queue)));
}

/** Starts the Lua servers of `config.engine.servers` on `node`. */
export async function listenLuaServers(config: Config, node: EngineNode): Promise<Engine> {
  const redis = redisPools(config.engine.luavm.redis);
  for (const sc of config.engine.servers) {
    const opts = { config: sc, node, families: engineFamilies, redis, budgetMs: config.engine.luavm.callbackTimeout };
    const server = sc.protocol === "websocket" ? new WebSocketServer(opts) : new SocketServer(opts);
    try {
      await server.listen();
    } catch (e) {
      throw new Error(`cannot listen on ${sc.bind}:${sc.port} (${(e as Error).message})`);
    }
    node.servers.push(server);
    log.info(`start the lua server ${server.entry} (${sc.bind}:${sc.port})`);
  }
  const stop = async () => {
    await Promise.all(node.servers.map((s) => s.stop()));
    for (const pool of redis.values()) pool.close();
  };
  return { node, servers: node.servers, stop };
}

/** A Lua server's port that is taken fails the start now, not once the center answers (which may be never). */
function probeLuaPorts(config: Config): void {
  for (const sc of config.engine.servers) {
    try {
      Bun.listen({ hostname: sc.bind, port: sc.port, socket: { data() {} } }).stop(true);
    } catch (e) {
      throw new Error(`cannot listen on ${sc.bind}:${sc.port} (${(e as Error).message})`);
    }
  }
}

/**
 * Start-up order (and log lines): mesh point, API server, center registration, Lua servers. The Lua servers
 * come last because client ids carry the node index, which the center assigns at registration.
 */
export async function startEngine(config: Config, _opts: NodeOptions): Promise<void> {
  // Index 1 until the center assigns one; no client id is handed out before that.
  const node = new EngineNode(new ClientIds(1), new Queues(config.engine.luavm.queue));
  const cluster = new Cluster(config, node);
  cluster.listen();
  const api = await startApiServer(config, node);
  onShutdown("api server", api.stop);
  probeLuaPorts(config);
  await cluster.register();
  const engine = await listenLuaServers(config, node);
  onShutdown("lua servers", engine.stop);
}
