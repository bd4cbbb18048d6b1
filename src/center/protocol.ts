// The registry protocol between an engine and the center (docs/cluster.md): JSON messages in the mesh's
// length-prefixed frames over one TCP connection per engine. Control traffic only, so JSON is fine here.
import type { Outbox } from "../mesh/frames";

export const REGISTRY_VERSION = 1;

/**
 * Membership timings (center.registry in the config), all in ms. The center owns them and hands them to every
 * engine in `registered`, so the cluster agrees on them. An engine heartbeats every `hb`; the center drops a
 * node it has not heard from for `drop` (measured with performance.now(), so a step of the wall clock drops
 * nobody); a node dropped that way may still hold live clients, and its peers count it as failed for `doubt`.
 */
export interface Timings {
  hb: number;
  drop: number;
  doubt: number;
}

/** The defaults; an engine uses them until its center told it otherwise. */
export const TIMINGS: Readonly<Timings> = { hb: 1000, drop: 5000, doubt: 30_000 };

/** Engine -> center, first message on every connection. */
export interface RegisterMsg {
  t: "register";
  v: number; // REGISTRY_VERSION
  id: string; // node id, kept for the life of the engine process
  index: number; // the node index it had before (a center restart), 0 for none
  ip: string; // advertised IP, "" = the address the center sees
  api_port: number;
  mesh_port: number;
  peers: [string, number][]; // [node id, index] of the peers it knows, so a restarted center keeps their indexes
  after?: string; // a successor's predecessor (src/handover): same mesh address, but it is not gone
  draining?: boolean; // this node hands over to a successor and takes no new clients
}

/** Engine -> center every HEARTBEAT_MS; a graceful stop sends "leave". */
export interface HeartbeatMsg {
  t: "hb";
  clients: number;
}
export interface LeaveMsg {
  t: "leave";
}
/** The engine started draining (a successor took over its ports); it stays a node until it leaves. */
export interface DrainMsg {
  t: "drain";
}

export interface NodeInfo {
  id: string;
  index: number;
  ip: string;
  api_port: number;
  mesh_port: number;
}

/**
 * Center -> engine. `listed` is false when the center had forgotten a node it may have known (it dropped it,
 * or its first lists went out without it): the other engines stopped counting it meanwhile. Older centers
 * send neither `listed` nor the timings.
 */
export type CenterMsg =
  | ({ t: "registered"; index: number; ip: string; listed?: boolean } & Partial<Timings>)
  // complete: false while a fresh center may not know every node yet; gone: the node whose removal this list
  // brings was certainly gone (it left, or a new node took its address), not merely silent
  | { t: "nodes"; complete: boolean; nodes: NodeInfo[]; gone?: string }
  | { t: "hb" }
  | { t: "error"; m: string };

export type EngineMsg = RegisterMsg | HeartbeatMsg | LeaveMsg | DrainMsg;

const decoder = new TextDecoder();

/** Unsent registry bytes past which the other side is considered stuck and the connection is closed. */
export const MAX_UNSENT = 1 << 20;

/** Queues one JSON message as a frame; false when the other side stopped reading (close the connection). */
export function sendMsg(out: Outbox, msg: CenterMsg | EngineMsg): boolean {
  out.begin();
  out.text(JSON.stringify(msg));
  out.end();
  out.schedule();
  return !out.full;
}

export function readMsg<M>(frame: Uint8Array): M | null {
  try {
    const m = JSON.parse(decoder.decode(frame));
    return m && typeof m === "object" && typeof m.t === "string" ? (m as M) : null;
  } catch {
    return null;
  }
}

/** "host:port" or "[v6]:port" -> [host, port]; null when malformed. */
export function splitAddr(addr: string): [string, number] | null {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(addr.trim());
  const port = m ? Number(m[2]) : NaN;
  return m && m[1] && port > 0 && port < 65536 ? [m[1], port] : null;
}

/** An IP as a host part of "ip:port". */
export const hostPart = (ip: string) => (ip.includes(":") ? `[${ip}]` : ip);
