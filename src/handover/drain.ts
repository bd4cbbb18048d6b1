// How an engine drains once its successor serves: it tells the center (the node shows as draining), stops
// accepting (Lua servers and the API server close their listeners, so every new connection goes to the
// successor), closes its /ws/v1 connections with 1012 so backends reconnect to the successor, and moves its
// queue items there. Everything else goes on as before: the clients it holds keep their Lua callbacks, sends,
// publishes and calls in both directions, through the mesh, where this node is still listed under its own
// index. It is done when its last client has gone, or at engine.drainTimeout, when the rest are closed:
// WebSocket clients with 1012 (service restart), socket clients once their pending bytes are written.
import type { ApiServer } from "../api/server";
import type { EngineConfig } from "../config/schema";
import { log } from "../log/logger";
import type { Cluster } from "../mesh/cluster";
import type { Queues } from "../queue/queues";
import { QueueMover } from "./queue-mover";

/** The client connections of an engine: its Lua servers', or those of its workers (-p N). */
export interface DrainTarget {
  count(): number;
  /** Closes the listeners; resolves once count() includes every client accepted before. */
  stopAccepting(): void | Promise<void>;
  /** Closes every client: WebSocket with 1012, sockets after their pending bytes. */
  closeAll(): void;
}

export interface DrainParts {
  config: EngineConfig;
  cluster: Cluster;
  api: ApiServer;
  clients: DrainTarget;
  queues: Queues;
  /** The successor's node id, where queue items go. */
  successor: string | null;
  timings?: DrainTimings;
}

export interface DrainTimings {
  /** How long the clients closed at the deadline get to go, and the queue items left to move. */
  closeMs: number;
  /** How often the client count is checked. */
  pollMs: number;
}

export const DRAIN_TIMINGS: Readonly<DrainTimings> = { closeMs: 3000, pollMs: 50 };

async function until(done: () => boolean, deadline: number, pollMs: number): Promise<boolean> {
  while (!done()) {
    if (performance.now() >= deadline) return false;
    await Bun.sleep(pollMs);
  }
  return true;
}

export async function drainEngine(p: DrainParts): Promise<void> {
  const { closeMs, pollMs } = p.timings ?? DRAIN_TIMINGS;
  const timeoutMs = p.config.drainTimeout * 1000;
  p.cluster.drain();
  const stopped = p.clients.stopAccepting();
  // With a successor, backends reconnect there (where the queue items go); without one, they are served here to the end.
  if (p.successor) p.api.drain();
  // Durable queues stay in Redis, where the successor reads them: nothing to move.
  const mover = p.queues.durable ? null : new QueueMover(p.queues, () => (p.successor ? p.cluster.mesh.link(p.successor) : undefined));
  await stopped;
  log.info(`drain: ${p.clients.count()} client connections left, closing them in ${p.config.drainTimeout}s at the latest`);
  const gone = await until(() => p.clients.count() === 0, performance.now() + timeoutMs, pollMs);
  if (!gone) {
    log.info(`drain: drainTimeout reached, closing ${p.clients.count()} client connections (1012 service restart)`);
    p.clients.closeAll();
    await until(() => p.clients.count() === 0, performance.now() + closeMs, pollMs);
  } else {
    log.info("drain: every client connection has closed");
  }
  await mover?.finish(closeMs);
}
