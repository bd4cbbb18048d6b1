// The node of a multi-core engine's primary: it holds no connection, its clients (their count, views and
// Lua memory) are its workers' (src/workers/supervisor.ts), and every client is reached through the worker
// router. It is what the API server, the metrics, the console and the cluster see of this engine.
import type { DroppedMessages, LuaMemory, NodeStats, NodeView, Protocol } from "../engine/node";
import type { ClientsView } from "../engine/introspect";
import type { Queues } from "../queue/queues";
import type { WorkerRouter } from "./router";

/** What the primary asks of its workers. */
export interface WorkerPool {
  /** What exited workers counted plus what the running ones last reported. */
  readonly stats: NodeStats;
  clientCount(): number;
  luaMemory(): LuaMemory[];
  renumber(index: number): Promise<number>;
  closeClients(code: number, reason: string): Promise<number>;
  introspect(): Promise<ClientsView[]>;
}

export interface PrimaryParts {
  /** The node id (the mesh's). */
  name: string;
  queues: Queues;
  peers: WorkerRouter;
  workers: WorkerPool;
}

export class PrimaryNode implements NodeView {
  readonly name: string;
  readonly queues: Queues;
  readonly peers: WorkerRouter;
  private readonly workers: WorkerPool;
  /** Index 1 until the center assigns one (as an EngineNode's ids). */
  private nodeIndex = 1;

  constructor(p: PrimaryParts) {
    this.name = p.name;
    this.queues = p.queues;
    this.peers = p.peers;
    this.workers = p.workers;
  }

  get index(): number {
    return this.nodeIndex;
  }

  get stats(): NodeStats {
    return this.workers.stats;
  }

  // No client is this process's own: every send, publish and call goes through the router (peers).
  isLocal(): boolean {
    return false;
  }

  protocolOf(): Protocol | null {
    return null;
  }

  sendLocal(): "remote" {
    return "remote";
  }

  publishLocal(): [number, number] {
    return [0, 0];
  }

  callLocal(): "remote" {
    return "remote";
  }

  clientCount(): number {
    return this.workers.clientCount();
  }

  readCounts(): Record<Protocol, number> {
    return { ...this.stats.read };
  }

  luaFailures(): { errors: number; timeouts: number } {
    return { ...this.stats.lua };
  }

  droppedMessages(): DroppedMessages {
    return this.stats.droppedMessages;
  }

  luaMemory(): LuaMemory[] {
    return this.workers.luaMemory();
  }

  clientViews(): Promise<ClientsView[]> {
    return this.workers.introspect();
  }

  renumber(index: number): Promise<number> {
    this.nodeIndex = index;
    return this.workers.renumber(index);
  }

  closeClients(code: number, reason: string): Promise<number> {
    return this.workers.closeClients(code, reason);
  }
}
