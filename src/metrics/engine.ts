// The engine's metrics (spec §7). Counters are read from the node's plain stats at scrape time; the send
// duration summary is observed by whoever sends (the API server: scenario "local" for a client of this
// node, "forward" for one reached through the mesh). Its four series (websocket|socket x local|forward)
// exist from the start, NaN while empty, as in connmix's prometheus.md.
import type { NodeView, Protocol } from "../engine/node";
import type { SummaryConfig } from "../config/schema";
import { Registry, unlabeled, type Sample } from "./registry";
import { addProcessMetrics } from "./process";
import { log } from "../log/logger";
import { REQUEST_REFUSAL_REASONS, type RequestRefusals } from "../access/access";
import { refusalSamples } from "../net/refusals";
import type { Summary, SummaryChild } from "./summary";

const PROTOCOLS: Protocol[] = ["websocket", "socket"];

export interface EngineMetrics {
  registry: Registry;
  sendDuration: Summary;
  /** Children of sendDuration, looked up once. */
  sendLocal: Record<Protocol, SummaryChild>;
  sendForward: SummaryChild;
  /** The page: with the Redis queue backend, the streams' lengths are read first, waiting at most `redisMs`. */
  page(redisMs: number): Promise<string>;
}

/**
 * `forwardProtocol`: the label of forwarded sends. The node that forwards cannot see the protocol of a client
 * on another node; engines of a cluster run the same servers, so it is that of this engine's (first) server.
 */
export function engineMetrics(node: NodeView, window: SummaryConfig, o: { forwardProtocol?: Protocol; apiRefusals: RequestRefusals }): EngineMetrics {
  const forwardProtocol = o.forwardProtocol ?? "websocket";
  const registry = new Registry();
  const perProtocol = (counts: Record<Protocol, number>) => (): Sample[] => PROTOCOLS.map((p) => [[p], counts[p]]);
  registry.gauge("connmix_engine_servers_clients", "Client connections held by this engine's Lua servers.", [], unlabeled(() => node.clientCount()));
  registry.counter("connmix_engine_servers_read_messages_total", "Messages read from clients (socket: packages protocol_decode turned into a message).", ["protocol"], () => {
    const read = node.readCounts();
    return PROTOCOLS.map((p) => [[p], read[p]]);
  });
  registry.counter("connmix_engine_servers_send_messages_total", "Messages sent to clients.", ["protocol"], perProtocol(node.stats.sent));
  registry.counter("connmix_engine_servers_send_errors_total", "Sends to clients that failed.", ["protocol"], perProtocol(node.stats.sendErrors));
  const sendDuration = registry.summary(
    "connmix_engine_servers_send_duration_seconds",
    "Time to hand one API send to a client (local) or to the node that holds it (forward).",
    ["protocol", "scenario"],
    window,
  );
  const byReason = (read: () => Record<string, Record<Protocol, number>>) => (): Sample[] =>
    Object.entries(read()).flatMap(([reason, counts]) => PROTOCOLS.map((p): Sample => [[p, reason], counts[p]]));
  registry.counter(
    "connmix_engine_servers_dropped_messages_total",
    "Messages from clients dropped before their script saw them (backlog_full: sent while the connection's backlog was full; too_large: a WebSocket message over 1 MiB; after_close: read with the engine's close of that connection).",
    ["protocol", "reason"],
    byReason(() => node.droppedMessages()),
  );
  registry.counter(
    "connmix_engine_servers_dropped_clients_total",
    "Clients the engine cut off, losing what they had not read or sent unprocessed (write_timeout, backlog_full, unread_bytes).",
    ["protocol", "reason"],
    byReason(() => node.stats.droppedClients),
  );
  registry.counter(
    "connmix_engine_refused_connections_total",
    "Connections the mesh point (mesh) and a multi-core engine's worker links (worker) refused before authentication.",
    ["listener", "reason"],
    () => refusalSamples(["mesh", "worker"], { worker: node.stats.refusedWorkerLinks }),
  );
  registry.counter("connmix_engine_api_refused_requests_total", "API requests refused by access control (401, 403, 429) or as too large (413).", ["reason"], () =>
    REQUEST_REFUSAL_REASONS.map((r) => [[r], o.apiRefusals[r]]),
  );
  registry.counter(
    "connmix_engine_mesh_forward_failures_total",
    "Sends, publishes and conn.calls for other nodes that got no answer from them (unreachable, congested, too large, timed out).",
    [],
    unlabeled(() => node.peers?.forwardFailures?.() ?? 0),
  );
  registry.counter("connmix_engine_lua_errors_total", "Lua callbacks that failed with an error (callback timeouts included).", [], unlabeled(() => node.luaFailures().errors));
  registry.counter("connmix_engine_lua_callback_timeouts_total", "Lua callbacks aborted for running longer than engine.luavm.callbackTimeout.", [], unlabeled(() => node.luaFailures().timeouts));
  registry.gauge("connmix_engine_queue_items", "Items waiting in a queue topic.", ["topic"], () => node.queues.list().map((q) => [[q.topic], q.items]));
  registry.gauge("connmix_engine_queue_consumers", "Consumers of a queue topic.", ["topic"], () => node.queues.list().map((q) => [[q.topic], q.consumers]));
  registry.gauge("connmix_engine_queue_unacked", "Items of a queue topic handed to consumers and not yet acknowledged (or confirmed read).", ["topic"], () => node.queues.list().map((q) => [[q.topic], q.inflight]));
  registry.counter("connmix_engine_queue_dropped_total", "Queue items lost, by topic and reason (consumer_gone, write_timeout, shutdown).", ["topic", "reason"], () => node.queues.drops.all().map(([t, r, n]) => [[t, r], n]));
  registry.counter("connmix_engine_queue_redelivered_total", "Unacknowledged queue items returned to the head of their topic when their consumer went away.", [], unlabeled(() => node.queues.redelivered));
  // Read when scraped (XLEN of each topic with items; the Redis backend only): Redis holds them, not this process.
  let streams: Sample[] = [];
  registry.gauge(
    "connmix_engine_queue_stream_length",
    "Items of a Redis queue stream not yet acknowledged (XLEN when scraped; topics with items; none while Redis does not answer).",
    ["topic"],
    () => streams,
  );
  registry.gauge("connmix_engine_queue_topic_size", "engine.luavm.queue.topicSize: the items a topic may hold.", [], unlabeled(() => node.queues.topicSize));
  const lua = (field: "used" | "limit") => (): Sample[] => node.luaMemory().map((m) => [[m.server, String(m.worker)], m[field]]);
  registry.gauge("connmix_engine_lua_memory_bytes", "Bytes held by each Lua state (garbage not yet collected included).", ["server", "worker"], lua("used"));
  registry.gauge("connmix_engine_lua_memory_limit_bytes", "engine.luavm.memoryLimit of each Lua state, in bytes (0: none).", ["server", "worker"], lua("limit"));
  addProcessMetrics(registry);
  const sendLocal = { websocket: sendDuration.child("websocket", "local"), socket: sendDuration.child("socket", "local") };
  const sendForward = { websocket: sendDuration.child("websocket", "forward"), socket: sendDuration.child("socket", "forward") };
  // One read at a time: scrapes made while Redis is slow share it rather than pile up commands there.
  let reading: Promise<Sample[]> | null = null;
  const page = async (redisMs: number) => {
    if (node.queues.durable) {
      reading ??= streamLengths(node).finally(() => (reading = null));
      streams = await within(reading, redisMs, []);
    }
    return registry.text();
  };
  return { registry, sendDuration, sendLocal, sendForward: sendForward[forwardProtocol], page };
}

/** The XLEN of each Redis queue stream with items, by topic; none when Redis fails. */
async function streamLengths(node: NodeView): Promise<Sample[]> {
  try {
    return (await node.queues.durableBacklog()).map(([t, n]) => [[t], n]);
  } catch (e) {
    log.debug(`metrics: cannot read the queue streams' lengths (${(e as Error).message})`);
    return [];
  }
}

/** What `p` gives, or `late` when that takes more than `ms`. */
async function within<T>(p: Promise<T>, ms: number, late: T): Promise<T> {
  let timer: Timer | undefined;
  try {
    return await Promise.race([p, new Promise<T>((resolve) => (timer = setTimeout(() => resolve(late), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
