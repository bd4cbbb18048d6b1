// The control channel between a multi-core engine's primary and its workers: Bun's IPC (JSON), for the
// rare messages (start-up, config, stats, stop). Data (send, publish, conn.call, queue items) travels over
// mesh links instead (src/mesh/requests.ts), see docs/multicore.md.
import type { Config } from "../config/schema";
import type { DroppedMessages, LuaMemory, NodeStats, Protocol } from "../engine/node";
import type { LinkSecurity, PeerLink } from "../mesh/link";
import { MESH_TIMINGS } from "../mesh/protocol";
import { Keys } from "../net/auth";
import type { RefusalCounts } from "../net/refusals";
import type { ClientsView } from "../engine/introspect";

/** argv[2] of a worker process (`connmix __worker`); never typed by hand. */
export const WORKER_ARG = "__worker";

export type ToWorker =
  /**
   * Who the worker is and where its primary's mesh point for it listens. `secret` authenticates the worker
   * links: made by the primary at start, it only ever travels over this IPC channel (not argv, not env).
   */
  | { t: "start"; worker: number; id: string; index: number; sequence: number; config: Config; primary: { id: string; port: number }; secret: string }
  /** The primary's link to the worker's mesh point is up: open the Lua servers. */
  | { t: "listen" }
  /** A hot config change (logging.level, access, ...), applied as in a single process. */
  | { t: "config"; config: Config }
  /** The center assigned another node index: close the clients, hand out ids with the new one. */
  | { t: "index"; req: number; index: number }
  /** A handover (src/handover): stop accepting, keep the clients, report their count more often. */
  | { t: "drain" }
  /** The drain's deadline: close every client (WebSocket 1012, sockets after their pending bytes). */
  | { t: "close" }
  /** Close the `count` newest clients (null: all) with this close code; answered with "closed". */
  | { t: "shed"; req: number; code: number; reason: string; count: number | null }
  /** The console: answered with "introspection" (its clients and channels). */
  | { t: "introspect"; req: number }
  | { t: "stop" };

export interface WorkerStats {
  clients: number;
  read: Record<Protocol, number>;
  sent: Record<Protocol, number>;
  sendErrors: Record<Protocol, number>;
  /** Lua callbacks that failed, and those aborted by the runaway guard. */
  lua: { errors: number; timeouts: number };
  droppedMessages: DroppedMessages;
  droppedClients: NodeStats["droppedClients"];
  /** Connections refused at the worker's own link port. */
  refusedWorkerLinks: RefusalCounts;
  /** The sequence of the last client id handed out. */
  sequence: number;
  cpuSeconds: number;
  residentBytes: number;
  luaMemory: LuaMemory[];
}

export type FromWorker =
  /** The worker's mesh point listens on `port` and its link to the primary is up. */
  | { t: "point"; port: number }
  /** The Lua servers listen. */
  | { t: "ready" }
  /** The start failed (a Lua entry that does not compile, a port refused): the worker exits. */
  | { t: "failed"; message: string }
  /** Answer to "index" or "shed" number `req`: how many clients it closed, and how many it has left. */
  | { t: "closed"; req: number; closed: number; clients: number }
  | { t: "introspection"; req: number; view: ClientsView }
  | ({ t: "stats" } & WorkerStats);

/** The command that starts a worker: this same program, compiled or run by bun. */
export function workerCommand(): string[] {
  // A compiled executable's entry lives in its embedded file system (/$bunfs/...). /proc/self/exe is this very
  // executable even after an upgrade replaced the file (a restarted worker must match its primary).
  if (Bun.main.startsWith("/$bunfs/")) return ["/proc/self/exe", WORKER_ARG];
  return [process.execPath, ...process.execArgv, Bun.main, WORKER_ARG];
}

/** How the links between a primary and its workers authenticate: with the primary's own secret, never the cluster's. */
export function workerLinks(secret: string): LinkSecurity {
  return { kind: "worker", keys: new Keys([secret]), tls: null, timings: MESH_TIMINGS };
}

/** Resolves once `link` said hello both ways; rejects after `ms`. */
export async function linkUp(link: PeerLink, what: string, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!link.up) {
    if (performance.now() > end) throw new Error(`${what}: no mesh link within ${ms / 1000}s`);
    await Bun.sleep(2);
  }
}
