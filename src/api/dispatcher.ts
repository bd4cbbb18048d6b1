// The API's methods (spec §5), shared by both transports: HTTP routes and /ws/v1 requests both end here.
// A method returns its result as JSON text (a constant where it can, so the hot path builds no objects
// for the reply), synchronously when all the work is local, or a promise when the mesh is involved.
import { NOT_READY, type NodeView } from "../engine/node";
import type { SendType } from "../engine/host";
import { parseClientId } from "../net/client-ids";
import { MAX_CHANNEL_BYTES } from "../engine/mix/contract";
import type { EngineMetrics } from "../metrics/engine";
import { DEFAULT_WINDOW, MAX_WINDOW, type ApiSocket } from "./consumer";

import { CODE, CONN_METHODS } from "./protocol";

export { CODE };

export class ApiError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/** Largest request the API reads (an HTTP body or a /ws/v1 message); a larger one is answered with 101. */
export const MAX_REQUEST_BYTES = 1 << 20;
/** Past this Bun stops reading at all: HTTP 413 from Bun itself, or WebSocket close 1009. */
export const HARD_LIMIT_BYTES = 16 << 20;

export class TooLarge extends ApiError {
  /** `partial`: only the first `bytes` were read (a body without a Content-Length), the rest was not. */
  constructor(bytes: number, partial = false) {
    super(CODE.invalidArgument, `request too large: ${partial ? "at least " : ""}${bytes} bytes, the limit is ${MAX_REQUEST_BYTES}`);
  }
}

// An unexpected failure (a peer's promise rejected, say) is reported with the method's own failure code.
const FAILURE: Record<string, number> = {
  "mesh.send": CODE.sendFailed,
  "mesh.publish": CODE.sendFailed,
  "conn.call": CODE.callFailed,
  "queue.pop": CODE.consumeFailed,
  "queue.unpop": CODE.cancelFailed,
  "queue.consume": CODE.consumeFailed,
};

/** queue.pop's parameters: topics, whether items wait for queue.ack, and the window of items in flight. */
interface PopParams {
  topics: string[];
  ack: boolean;
  window: number;
}

/** The `"E"` member of a failure: `{"c":code,"m":message}`. */
export function errorJson(e: unknown, method: unknown): string {
  const code = e instanceof ApiError ? e.code : (FAILURE[method as string] ?? CODE.invalidArgument);
  const message = e instanceof Error ? e.message : String(e);
  return `{"c":${code},"m":${JSON.stringify(message)}}`;
}

const invalid = (message: string): never => {
  throw new ApiError(CODE.invalidArgument, message);
};

/** A mesh error as an ApiError: "node not ready" (a client on an engine this node may not know) has its own code. */
const failure = (code: number, err: string) => new ApiError(err.startsWith(NOT_READY) ? CODE.notReady : code, err);

type Params = Record<string, unknown>;
export type Result = string | Promise<string>;

const OK = '{"s":true}';
const CALLS = new Set<string>(CONN_METHODS);

function params(p: unknown): Params {
  if (p === null || typeof p !== "object" || Array.isArray(p)) invalid("p must be an object");
  return p as Params;
}

function clientId(v: unknown): number {
  return parseClientId(v) ?? invalid(`c must be a client id (a number or a decimal string), got ${JSON.stringify(v) ?? "nothing"}`);
}

/** The frame type `t` asks for: text unless "binary". */
function sendType(t: unknown): SendType {
  if (t === undefined || t === "text") return 1;
  return t === "binary" ? 2 : invalid(`t must be "text" or "binary", got ${JSON.stringify(t)}`);
}

/** `d` as the data to send: text as is, binary decoded from base64. */
function payload(d: unknown, type: SendType): string | Uint8Array {
  if (typeof d !== "string") invalid("d must be a string");
  if (type === 1) return d as string;
  try {
    return Uint8Array.fromBase64(d as string);
  } catch {
    return invalid("d must be base64 when t is binary");
  }
}

/** queue.pop: `{"t": [...], "ack": bool, "w": n}` or, as the PHP client sends it, a bare list of topics. */
function popParams(p: unknown): PopParams {
  const obj = !Array.isArray(p) && p !== null && typeof p === "object" ? (p as Params) : {};
  const list = Array.isArray(p) ? p : obj.t;
  if (!Array.isArray(list) || list.length === 0) invalid('p must be {"t": ["topic", ...]} or a list of topics');
  for (const t of list as unknown[]) if (typeof t !== "string" || t === "") invalid(`invalid topic: ${JSON.stringify(t)}`);
  if (obj.ack !== undefined && typeof obj.ack !== "boolean") invalid(`ack must be true or false, got ${JSON.stringify(obj.ack)}`);
  const w = obj.w ?? DEFAULT_WINDOW;
  if (typeof w !== "number" || !Number.isInteger(w) || w < 1 || w > MAX_WINDOW) invalid(`w must be an integer from 1 to ${MAX_WINDOW}, got ${JSON.stringify(w)}`);
  return { topics: list as string[], ack: obj.ack === true, window: w as number };
}

/** queue.ack's keys: `{"k": ["12", ...]}` (numbers accepted too). */
function ackKeys(p: Params): number[] {
  if (!Array.isArray(p.k)) invalid('p must be {"k": ["key", ...]}');
  return (p.k as unknown[]).map((k) => {
    const n = typeof k === "string" && /^\d{1,15}$/.test(k) ? Number(k) : k;
    return typeof n === "number" && Number.isSafeInteger(n) && n > 0 ? n : invalid(`invalid key: ${JSON.stringify(k)}`);
  });
}

export class Dispatcher {
  constructor(private readonly node: NodeView, private readonly metrics: EngineMetrics) {}

  /** Runs method `m`; throws ApiError (or returns a promise that rejects with one). `socket` is null over HTTP. */
  call(m: unknown, p: unknown, socket: ApiSocket | null): Result {
    switch (m) {
      case "mesh.send":
        return this.ready(), this.send(params(p));
      case "mesh.publish":
        return this.ready(), this.publish(params(p));
      case "conn.call":
        return this.ready(), this.connCall(params(p));
      case "queue.pop":
      case "queue.consume": // the PHP client's AsyncNode names queue.pop so (docs/compatibility.md)
        return this.pop(p, socket);
      case "queue.unpop":
        return this.unpop(socket);
      case "queue.ack":
        return this.ack(p, socket);
      default:
        return invalid(m === undefined ? "m (the method) is missing" : `unknown method: ${JSON.stringify(m)}`);
    }
  }

  /** Mesh calls before the node knows its peers would count nobody: refused (docs/cluster.md). */
  private ready(): void {
    const why = this.node.peers?.notReady?.();
    if (why) throw new ApiError(CODE.notReady, why);
  }

  send(p: Params): Result {
    const id = clientId(p.c);
    const type = sendType(p.t);
    const data = payload(p.d, type);
    const node = this.node;
    const protocol = node.protocolOf(id);
    if (protocol !== null) {
      const t0 = performance.now();
      const err = node.sendLocal(id, data, type);
      this.metrics.sendLocal[protocol].observe((performance.now() - t0) / 1000);
      if (err !== null) throw new ApiError(CODE.sendFailed, err);
      return OK;
    }
    if (node.isLocal(id) || !node.peers) throw new ApiError(CODE.sendFailed, `client ${id} not found`);
    const t0 = performance.now();
    return node.peers.sendRemote(id, data, type).then((err) => {
      this.metrics.sendForward.observe((performance.now() - t0) / 1000);
      if (err !== null) throw failure(CODE.sendFailed, err);
      return OK;
    });
  }

  publish(p: Params): Result {
    const channel = p.c;
    if (typeof channel !== "string" || channel === "") invalid("c must be a channel name");
    const bytes = (channel as string).length > MAX_CHANNEL_BYTES / 3 ? Buffer.byteLength(channel as string) : 0;
    if (bytes > MAX_CHANNEL_BYTES) invalid(`c is ${bytes} bytes: a channel name is at most ${MAX_CHANNEL_BYTES}`);
    const type = sendType(p.t);
    const data = payload(p.d, type);
    const [ok, fail] = this.node.publishLocal(channel as string, data, type);
    const peers = this.node.peers;
    if (!peers?.hasPeers()) return `{"s":${ok},"f":${fail}}`;
    return peers.publishRemote(channel as string, data, type).then(([rok, rfail]) => `{"s":${ok + rok},"f":${fail + rfail}}`);
  }

  connCall(p: Params): Result {
    const id = clientId(p.c);
    const f = p.f;
    if (typeof f !== "string" || !CALLS.has(f)) invalid(`f must be one of ${[...CALLS].join(", ")}, got ${JSON.stringify(f)}`);
    const args = p.a ?? [];
    if (!Array.isArray(args)) invalid("a must be a list of arguments");
    const err = this.node.callLocal(id, f as string, args as unknown[]);
    if (err === null) return OK;
    if (err !== "remote") throw new ApiError(CODE.callFailed, err === "client not found" ? `client ${id} not found` : err);
    const peers = this.node.peers;
    if (!peers) throw new ApiError(CODE.callFailed, `client ${id} not found`);
    return peers.callRemote(id, f as string, args as unknown[]).then((e) => {
      if (e !== null) throw failure(CODE.callFailed, e);
      return OK;
    });
  }

  /**
   * Makes this connection a consumer of the topics; items already waiting follow the reply. The first pop
   * of a connection sets its mode (acks or not) and window; a later one must not ask for another mode.
   */
  pop(p: unknown, socket: ApiSocket | null): Result {
    if (!socket) invalid("queue.pop works over /ws/v1 only");
    const { topics, ack, window } = popParams(p);
    const queues = this.node.queues;
    const again = topics.find((t) => socket!.topics.has(t));
    if (again !== undefined) throw new ApiError(CODE.alreadyConsuming, `already consuming topic ${again}`);
    if (socket!.acks !== null && socket!.acks !== ack) invalid(`this connection already consumes ${socket!.acks ? "with" : "without"} ack`);
    const unique = new Set(topics);
    if (socket!.topics.size + unique.size > queues.maxTopics) {
      throw new ApiError(CODE.consumeFailed, `a connection consumes at most ${queues.maxTopics} topics (maxTopics)`);
    }
    socket!.acks = ack;
    socket!.window = window;
    for (const topic of unique) {
      queues.consume(topic, socket!);
      socket!.topics.add(topic);
    }
    // The reply goes out first (the caller sends it synchronously), then the items that were waiting.
    queueMicrotask(() => socket!.pull());
    return OK;
  }

  /** Settles items of this connection; answers how many of the keys were in flight. */
  ack(p: unknown, socket: ApiSocket | null): Result {
    if (!socket) invalid("queue.ack works over /ws/v1 only");
    const keys = ackKeys(params(p));
    if (socket!.acks !== true) invalid('queue.ack needs a queue.pop with "ack": true first');
    return `{"s":true,"n":${socket!.ack(keys)}}`;
  }

  unpop(socket: ApiSocket | null): Result {
    if (!socket) invalid("queue.unpop works over /ws/v1 only");
    if (socket!.topics.size === 0) throw new ApiError(CODE.cancelFailed, "not consuming any topic");
    this.node.queues.cancel(socket!, socket!.topics);
    socket!.topics.clear();
    return OK;
  }
}
