// The wire contract of the engine API (/ws/v1 and HTTP) and of the center's /v1/nodes: method names,
// parameters, results, error codes, queue events. The server (dispatcher.ts, center/http.ts) and the
// TypeScript SDK (sdk/typescript) are both typed from this one module. docs/api.md describes it.

/** Error codes of `{"E":{"c":code,"m":message}}`. */
export const CODE = {
  invalidArgument: 101,
  consumeFailed: 201,
  alreadyConsuming: 202,
  cancelFailed: 203,
  callFailed: 301,
  sendFailed: 401,
  notReady: 501,
} as const;
export type ErrorCode = (typeof CODE)[keyof typeof CODE];

/** The connection methods `conn.call` may run. */
export const CONN_METHODS = ["set_context_value", "set_context", "subscribe", "unsubscribe"] as const;
export type ConnMethod = (typeof CONN_METHODS)[number];

/** A client id: a number below 2^53, or its decimal string. */
export type ClientId = number | string;
export type FrameType = "text" | "binary";

export interface SendParams {
  c: ClientId;
  /** Text, or base64 when t is "binary". */
  d: string;
  t?: FrameType;
}
export interface PublishParams {
  c: string;
  d: string;
  t?: FrameType;
}
export interface CallParams {
  c: ClientId;
  f: ConnMethod;
  a: unknown[];
}
export interface PopParams {
  t: string[];
  /** Acknowledged delivery (when the engine offers it): events carry "k", queue.ack confirms them. */
  ack?: boolean;
  /** At most this many unacknowledged items in flight. */
  w?: number;
}

/** Every method: its params and its result. */
export interface Methods {
  "mesh.send": { p: SendParams; r: { s: true } };
  "mesh.publish": { p: PublishParams; r: { s: number; f: number } };
  "conn.call": { p: CallParams; r: { s: true } };
  "queue.pop": { p: PopParams; r: { s: true } };
  "queue.unpop": { p: Record<string, never>; r: { s: true } };
  "queue.ack": { p: { k: string[] }; r: { s: true; n: number } };
}
export type Method = keyof Methods;

export interface ErrorBody {
  c: number;
  m: string;
}
/** A /ws/v1 answer (`i` echoes the request's id; HTTP answers have no `i`). */
export interface Reply<R = unknown> {
  E: ErrorBody | null;
  r?: R;
  i?: unknown;
}

/** One queue item, as the `p` of a queue.pop event. */
export interface QueueItem<D = unknown> {
  /** Node index of the engine that queued it (the one its client id carries; see docs/api.md). */
  n: number;
  /** The client whose callback pushed it ("0": none), as a decimal string. */
  c: string;
  /** The topic. */
  t: string;
  /** What the script pushed. */
  d: D;
  /** Its key for queue.ack, when the consumer asked for acknowledgements. */
  k?: string;
}
export interface QueueEvent {
  e: "queue.pop";
  p: QueueItem;
  id: null;
}

/** One engine in the center's GET /v1/nodes. */
export interface NodeInfo {
  id: string;
  /** host:port of its API server (ws://<api_server>/ws/v1). */
  api_server: string;
  mesh_point: string;
  /** Its node index: client ids carry it (nodeOf). */
  index: number;
  clients: number;
  /** Unix seconds. */
  registered_at: number;
  /** "draining" while it hands over to its successor (a reload): send no new work there. */
  state: "registered" | "draining";
}
export interface NodesReply {
  nodes: NodeInfo[];
}
export interface VersionReply {
  apis: string[];
}
