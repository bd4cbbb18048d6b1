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

export interface Engine {
  node: EngineNode;
  servers: LuaServer[];
  stop(): Promise<void>;
}

/** Starts the Lua servers of `config.engine.servers` for node index `nodeIndex`. */
export async function startLuaServers(config: Config, nodeIndex: number, worker = 0): Promise<Engine> {
  const node = new EngineNode(new ClientIds(nodeIndex, worker), new Queues(config.engine.luavm.queue));
  for (const sc of config.engine.servers) {
    const opts = { config: sc, node, families: engineFamilies };
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
  };
  return { node, servers: node.servers, stop };
}

export async function startEngine(config: Config, _opts: NodeOptions): Promise<void> {
  const engine = await startLuaServers(config, 1);
  onShutdown("lua servers", engine.stop);
}
