// The engine service: Lua servers on their ports, the API server, and (through the mesh) the cluster.
// With -p N > 1 the Lua servers run in N worker processes (src/workers, docs/multicore.md).
import { resolve } from "node:path";
import type { Config, ServerConfig } from "../config/schema";
import type { NodeOptions } from "../modes";
import { log } from "../log/logger";
import { onShutdown } from "../lifecycle";
import { engineFamilies } from "./mix";
import { engineQueues } from "../queue/index";
import { QueueShutdown } from "../queue/shutdown";
import { ClientIds, MAX_WORKER } from "../net/client-ids";
import { EngineNode } from "./node";
import { WebSocketServer } from "./websocket-server";
import { SocketServer } from "./socket-server";
import type { LuaServer } from "./lua-server";
import { Cluster } from "../mesh/cluster";
import { startApiServer, type ApiServer } from "../api/server";
import { predecessor } from "../handover/predecessor";
import { redisPools } from "../redis/client";
import { PrimaryNode, WorkerRouter } from "../workers/router";
import { Workers } from "../workers/supervisor";
import { checkFree } from "../handover/ports";
import { drainEngine, type DrainTarget } from "../handover/drain";
import type { ClusterSecurity } from "../net/security";

export interface Engine {
  node: EngineNode;
  servers: LuaServer[];
  stop(): Promise<void>;
}

/** A running engine, as a handover sees it (src/handover). */
export interface EngineService {
  nodeId: string;
  /** Stops taking clients and serves the ones it holds until they leave or engine.drainTimeout; `successor`: its node id. */
  drain(successor: string | null): Promise<void>;
}

const MIB = 1 << 20;

/** Starts the Lua servers of `config.engine.servers` on a node of its own with index `nodeIndex`. */
export function startLuaServers(config: Config, nodeIndex: number, worker = 0): Promise<Engine> {
  return listenLuaServers(config, new EngineNode(new ClientIds(nodeIndex, worker), engineQueues(config).queues));
}

/**
 * Starts the Lua servers of `config.engine.servers` on `node`. Ports are shared (SO_REUSEPORT) with the other
 * workers of a multi-core engine and with a successor (src/handover); a `worker`'s primary logs the start
 * once for all of them.
 */
export async function listenLuaServers(config: Config, node: EngineNode, worker = false): Promise<Engine> {
  const redis = redisPools(config.engine.luavm.redis);
  for (const sc of config.engine.servers) {
    const opts = { config: sc, node, families: engineFamilies, redis, budgetMs: config.engine.luavm.callbackTimeout, memoryLimit: config.engine.luavm.memoryLimit * MIB, reusePort: true };
    const server = sc.protocol === "websocket" ? new WebSocketServer(opts) : new SocketServer(opts);
    try {
      await server.listen();
    } catch (e) {
      throw new Error(`cannot listen on ${sc.bind}:${sc.port} (${(e as Error).message})`);
    }
    node.servers.push(server);
    if (!worker) started(sc);
  }
  const stop = async () => {
    await Promise.all(node.servers.map((s) => s.stop()));
    for (const pool of redis.values()) pool.close();
  };
  return { node, servers: node.servers, stop };
}

function started(sc: ServerConfig): void {
  log.info(`start the lua server ${resolve(sc.entry)} (${sc.bind}:${sc.port})`);
}

/** How long a successor waits for its mesh links before it serves. */
const SETTLE_MS = 5000;

/** A Lua server's port that is taken fails the start now, not once the center answers (which may be never). */
function probeLuaPorts(config: Config): void {
  for (const sc of config.engine.servers) {
    try {
      checkFree(sc.bind, sc.port);
    } catch (e) {
      throw new Error(`cannot listen on ${sc.bind}:${sc.port} (${(e as Error).message})`);
    }
  }
}

/**
 * Start-up order (and log lines): mesh point, API server, center registration, Lua servers. The Lua servers
 * come last because client ids carry the node index, which the center assigns at registration.
 */
export async function startEngine(config: Config, opts: NodeOptions, security: ClusterSecurity): Promise<EngineService> {
  const workers = workerCount(opts.cpus);
  // Index 1 until the center assigns one; no client id is handed out before that.
  const ids = new ClientIds(1);
  const store = engineQueues(config);
  const queues = store.queues;
  onShutdown("queue store", store.close);
  // Registered before the API server's hook, so it runs once the API server has closed the consumers.
  const queueStop = new QueueShutdown(queues, config.engine.luavm.queue.shutdownTimeout);
  onShutdown("queue report", () => queueStop.report());
  const node = workers > 1 ? new PrimaryNode(ids, queues) : new EngineNode(ids, queues);
  // With workers, the node's clients are theirs: the API and the other nodes reach them through the router.
  const router = node instanceof PrimaryNode ? new WorkerRouter(node, workers) : null;
  const cluster = new Cluster(config, node, router ?? node, security);
  cluster.listen();
  // The node's one route to other workers and nodes, set here only: the router with workers, else the mesh.
  if (router) router.mesh = cluster.mesh;
  node.peers = router ?? cluster.mesh;
  // A successor opens its API only once it reaches every node: until then its predecessor answers on that port.
  let api = predecessor ? null : await startApi(config, node);
  probeLuaPorts(config);
  await cluster.register();
  if (predecessor) {
    if (!(await cluster.mesh.settled(SETTLE_MS))) log.warn(`not every mesh link is up after ${SETTLE_MS / 1000}s; serving anyway`);
    api = await startApi(config, node);
  }
  // Runs after the Lua servers stopped (nothing new is pushed), before the API server closes the consumers.
  onShutdown("queues", () => queueStop.drain(), queueStop.ms);
  let clients: DrainTarget;
  if (!router) {
    const engine = await listenLuaServers(config, node);
    onShutdown("lua servers", engine.stop);
    clients = {
      count: () => node.clientCount(),
      stopAccepting: () => engine.servers.forEach((s) => s.stopAccepting()),
      closeAll: () => engine.servers.forEach((s) => s.closeAll(1012, "service restart")),
    };
  } else {
    const pool = new Workers(config, node as PrimaryNode, router, workers);
    onShutdown("lua servers", () => pool.stop());
    await pool.start();
    for (const sc of config.engine.servers) started(sc);
    clients = pool;
  }
  return {
    nodeId: cluster.mesh.id,
    drain: (successor) => drainEngine({ config: config.engine, cluster, api: api!, clients, queues, successor }),
  };
}

async function startApi(config: Config, node: EngineNode): Promise<ApiServer> {
  const api = await startApiServer(config, node);
  onShutdown("api server", api.stop);
  return api;
}

/** One worker per CPU; client ids have room for MAX_WORKER + 1. */
function workerCount(cpus: number): number {
  if (cpus <= MAX_WORKER + 1) return cpus;
  log.warn(`max_procs: ${cpus} exceeds the ${MAX_WORKER + 1} workers an engine runs, using ${MAX_WORKER + 1}`);
  return MAX_WORKER + 1;
}
