// What an engine shows the console (GET /v1/introspect on its API server, role read): its Lua servers,
// counters, clients with their context and channels, channels with subscriber counts, queues, and its
// recent log. Bounded: at most MAX_CLIENTS clients (the total is given), contexts cut at MAX_CONTEXT
// characters of JSON. With -p N the clients live in the workers: each one sends its ClientsView (the
// primary asks over the control channel, src/workers) and the views are merged.
import { versionLine } from "../version";
import type { Config } from "../config/schema";
import { recentLines } from "../log/recent";
import { WsConnection, type Connection } from "./connection";
import type { EngineNode, NodeView } from "./node";
import { CONTEXT } from "./mix/contract";

export const MAX_CLIENTS = 500;
const MAX_CONTEXT = 2000;
const LOG_LINES = 100;
const startedAt = Math.floor(Date.now() / 1000);

export interface ClientView {
  id: string;
  remote: string;
  server: number;
  context: unknown;
  channels: string[];
}

function channelsOf(conn: Connection): string[] {
  const ws = conn instanceof WsConnection ? conn.ws : null;
  return ws ? ws.subscriptions : [...(conn.channels ?? [])];
}

function contextOf(conn: Connection): unknown {
  let ctx: unknown;
  try {
    ctx = conn.server.vm.call(CONTEXT, conn.id);
  } catch (e) {
    return { error: (e as Error).message };
  }
  // An empty Lua table reads as an empty list: a context is a mapping.
  if (ctx === null || (Array.isArray(ctx) && ctx.length === 0)) return {};
  const text = JSON.stringify(ctx, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : v));
  return text.length <= MAX_CONTEXT ? JSON.parse(text) : { truncated: text.slice(0, MAX_CONTEXT) };
}

/** The clients and channels of one process (an engine, or one worker of it). */
export interface ClientsView {
  clients: ClientView[];
  total: number;
  channels: [name: string, subscribers: number][];
}

export function localClients(node: EngineNode): ClientsView {
  const conns = [...node.connections.values()].filter((c) => c.open);
  const channels = new Map<string, number>();
  for (const conn of conns) for (const ch of channelsOf(conn)) channels.set(ch, (channels.get(ch) ?? 0) + 1);
  return {
    clients: conns.slice(0, MAX_CLIENTS).map((c): ClientView => ({
      id: String(c.id),
      remote: c.remoteAddr,
      server: c.server.config.port,
      context: contextOf(c),
      channels: channelsOf(c).sort(),
    })),
    total: conns.length,
    channels: [...channels],
  };
}

/** The whole view as JSON; `summary` leaves out the clients and the log (the console's overview). */
export async function introspect(node: NodeView, config: Config, summary: boolean): Promise<string> {
  const views = await node.clientViews();
  const channels = new Map<string, number>();
  for (const v of views) for (const [ch, n] of v.channels) channels.set(ch, (channels.get(ch) ?? 0) + n);
  const { read, sent, sendErrors } = node.stats;
  const view = {
    id: node.name,
    index: node.index,
    version: versionLine(),
    started_at: startedAt,
    servers: config.engine.servers.map((s) => ({
      protocol: s.protocol,
      bind: s.bind,
      port: s.port,
      path: s.options.find((o) => o.name === "path")?.value ?? "/",
    })),
    stats: {
      clients: node.clientCount(),
      read,
      sent,
      send_errors: sendErrors,
      lua: node.luaFailures(),
      lua_memory: node.luaMemory(),
      rss: process.memoryUsage.rss(),
    },
    channels: [...channels].map(([name, subscribers]) => ({ name, subscribers })).sort((a, b) => a.name.localeCompare(b.name)),
    queues: node.queues.list(),
    ...(summary
      ? {}
      : {
          clients_total: views.reduce((n, v) => n + v.total, 0),
          clients: views.flatMap((v) => v.clients).slice(0, MAX_CLIENTS),
          log: recentLines(LOG_LINES),
        }),
  };
  return JSON.stringify(view);
}
