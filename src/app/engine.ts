// The engine service: Lua servers on their ports, the API server, and (through the mesh) the cluster.
// With -p N > 1 the Lua servers run in N worker processes (src/workers, src/app/worker.ts, docs/multicore.md).
import type { Config } from "../config/schema";
import type { HotConfig } from "../config/hot";
import type { NodeOptions } from "./modes";
import { log } from "../log/logger";
import { onShutdown } from "../lifecycle";
import { engineQueues } from "../queue/index";
import { QueueShutdown } from "../queue/shutdown";
import { ClientIds, MAX_WORKER } from "../net/client-ids";
import { EngineNode, type NodeView } from "../engine/node";
import { listenLuaServers, luaServerStarted } from "../engine/servers";
import { Cluster, newMesh } from "../mesh/cluster";
import type { Mesh } from "../mesh/index";
import { MeshPoint, type MeshTarget } from "../mesh/server";
import type { Queues } from "../queue/queues";
import { API_TIMINGS, startApiServer, type ApiServer, type ApiTimings } from "../api/server";
import { predecessor } from "../handover/predecessor";
import { WorkerRouter } from "../workers/router";
import { PrimaryNode } from "../workers/primary";
import { WORKER_TIMINGS, Workers, type WorkerTimings } from "../workers/supervisor";
import { MESH_TIMINGS, type MeshTimings } from "../mesh/protocol";
import { LINK_TIMINGS, type LinkTimings } from "../center/protocol";
import { SWEEP_MS } from "../engine/limits";
import { checkFree } from "../handover/ports";
import { DRAIN_TIMINGS, drainEngine, type DrainTarget, type DrainTimings } from "../handover/drain";
import type { ClusterSecurity } from "../net/security";
import { nativeBuild, nativeNotes } from "../../native/compile";

/** A running engine, as a handover sees it (src/handover). */
export interface EngineService {
  nodeId: string;
  /** Stops taking clients and serves the ones it holds until they leave or engine.drainTimeout; `successor`: its node id. */
  drain(successor: string | null): Promise<void>;
}

/**
 * The engine's timings that the config file does not name, ms. Each part takes its own in its constructor,
 * with the production value as the default; they are gathered here so the composition root passes them on.
 */
export interface EngineTimings {
  /** Engine-to-engine links: pings, silence, request deadlines, redial backoff (src/mesh/protocol.ts). */
  mesh: MeshTimings;
  /** The link to the center: deadline checks, redial backoff, handshake (src/center/protocol.ts). */
  registry: LinkTimings;
  /** How long a successor waits for its mesh links before it serves. */
  settleMs: number;
  /** How often the Lua servers check readTimeout and writeTimeout (src/engine/limits.ts). */
  sweepMs: number;
  /** Closing what is left at a drain's deadline (src/handover/drain.ts). */
  drain: DrainTimings;
  /** -p N: worker start, restart backoff, stop (src/workers/supervisor.ts). */
  workers: WorkerTimings;
  /** The API server's drain grace and stall checks (src/api/server.ts). */
  api: ApiTimings;
}

export const ENGINE_TIMINGS: Readonly<EngineTimings> = {
  mesh: MESH_TIMINGS,
  registry: LINK_TIMINGS,
  settleMs: 5000,
  sweepMs: SWEEP_MS,
  drain: DRAIN_TIMINGS,
  workers: WORKER_TIMINGS,
  api: API_TIMINGS,
};

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

/** Which compiler built the native C (loaded with the imports, before the log was set up), and any trouble it had. */
function logNativeBuild(): void {
  for (const n of nativeNotes()) log[n.level](n.message);
  log.info(`native C: ${nativeBuild()}`);
}

/**
 * Start-up order (and log lines): mesh point, API server, center registration, Lua servers. The Lua servers
 * come last because client ids carry the node index, which the center assigns at registration.
 */
export async function startEngine(config: Config, opts: NodeOptions, security: ClusterSecurity, timings: EngineTimings = ENGINE_TIMINGS): Promise<EngineService> {
  logNativeBuild();
  const workers = workerCount(opts.cpus);
  const store = engineQueues(config);
  const queues = store.queues;
  onShutdown("queue store", store.close);
  // Registered before the API server's hook, so it runs once the API server has closed the consumers.
  const queueStop = new QueueShutdown(queues, config.engine.luavm.queue.shutdownTimeout);
  onShutdown("queue report", () => queueStop.report());
  // Built in dependency order, each part handed what it needs: the mesh (links to other nodes), the node
  // over it (with workers: the router to them, and the pool), then the mesh point serving the node.
  const { mesh, membership, links } = newMesh(config, security, timings.mesh);
  const parts = workers > 1 ? primaryParts(config, mesh, queues, workers, timings.workers, opts.hot) : engineParts(mesh, queues);
  const node = parts.node;
  const point = new MeshPoint(parts.target, mesh, links, { queues });
  const cluster = new Cluster(config, { node, mesh, membership, point }, security, timings.registry);
  cluster.listen();
  // A successor opens its API only once it reaches every node: until then its predecessor answers on that port.
  let api = predecessor ? null : await startApi(config, node, opts.hot, timings.api);
  probeLuaPorts(config);
  await cluster.register();
  if (predecessor) {
    if (!(await cluster.mesh.settled(timings.settleMs))) log.warn(`not every mesh link is up after ${timings.settleMs / 1000}s; serving anyway`);
    api = await startApi(config, node, opts.hot, timings.api);
  }
  // Runs after the Lua servers stopped (nothing new is pushed), before the API server closes the consumers.
  onShutdown("queues", () => queueStop.drain(), queueStop.ms);
  let clients: DrainTarget;
  if (parts.pool === null) {
    const engine = await listenLuaServers(config, parts.node, { hot: opts.hot, sweepMs: timings.sweepMs });
    onShutdown("lua servers", engine.stop);
    clients = {
      count: () => node.clientCount(),
      stopAccepting: () => engine.servers.forEach((s) => s.stopAccepting()),
      closeAll: () => engine.servers.forEach((s) => s.closeAll(1012, "service restart")),
    };
  } else {
    const pool = parts.pool;
    onShutdown("lua servers", () => pool.stop());
    await pool.start();
    for (const sc of config.engine.servers) luaServerStarted(sc);
    clients = pool;
  }
  return {
    nodeId: cluster.mesh.id,
    drain: (successor) => drainEngine({ config: config.engine, cluster, api: api!, clients, queues, successor, timings: timings.drain }),
  };
}

/** A single-process engine: its node holds the clients and serves other nodes' requests itself. */
function engineParts(mesh: Mesh, queues: Queues): { node: EngineNode; target: MeshTarget; pool: null } {
  // Index 1 until the center assigns one; no client id is handed out before that.
  const node = new EngineNode(new ClientIds(1), queues, { peers: mesh, name: mesh.id });
  return { node, target: node, pool: null };
}

/** A multi-core engine's primary: its clients are its workers'; the API and other nodes reach them through the router. */
function primaryParts(config: Config, mesh: Mesh, queues: Queues, workers: number, timings: WorkerTimings, hot: HotConfig): { node: PrimaryNode; target: MeshTarget; pool: Workers } {
  const router = new WorkerRouter(mesh, queues, workers);
  const pool = new Workers(config, router, workers, hot, timings);
  return { node: new PrimaryNode({ name: mesh.id, queues, peers: router, workers: pool }), target: router, pool };
}

async function startApi(config: Config, node: NodeView, hot: HotConfig, timings: ApiTimings): Promise<ApiServer> {
  const api = await startApiServer(config, node, { hot, timings });
  onShutdown("api server", api.stop);
  return api;
}

/** One worker per CPU; client ids have room for MAX_WORKER + 1. */
function workerCount(cpus: number): number {
  if (cpus <= MAX_WORKER + 1) return cpus;
  log.warn(`max_procs: ${cpus} exceeds the ${MAX_WORKER + 1} workers an engine runs, using ${MAX_WORKER + 1}`);
  return MAX_WORKER + 1;
}
